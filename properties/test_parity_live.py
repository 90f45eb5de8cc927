"""Live parity: for random valid command lines (``strategies.command_lines``: geometries,
detectors, crystals, source files and divergence/dispersion grids, mosaicity, phi sweeps), the
nbjax image matches the C program's image within the bridge thresholds.

Needs the C nanoBragg: set NB_C_BIN to the executable, else the module is skipped.  C runs as a
subprocess in a temporary folder holding the fixture files, single-threaded (OMP_NUM_THREADS=1:
C's phi == 0 quirk, D19, depends on the thread count and nbjax reproduces one thread); nbjax
runs in-process through its CLI (``nbjax.cli.main.run``) on the same argv.  Both write
``-floatfile``; the images are judged with ``nbjax_bridge.metrics`` (corr >= 0.999,
|sum ratio - 1| <= 3e-3, no non-finite pixel; two all-zero images must be identical).

Examples per run: $NBJAX_PARITY_EXAMPLES, else 10 under the ``ci`` profile and the profile's
max_examples otherwise.  Every failing example Hypothesis tries (the shrunk one is tried last)
is written as a case of ``reports/property-failures/<UTC stamp>/cases.toml`` (one folder per
test run; $NBJAX_PROPERTY_FAILURES_DIR overrides it), with the fixture files inline, so
``OMP_NUM_THREADS=1 NB_C_BIN=... nbjax-bridge matrix <that file>`` re-runs it.  With
NBJAX_PARITY_DATABASE=off no example database is used (scripts/property-campaign's later rounds).

Excluded on purpose: command lines C turns into NaN images (nbjax rejects those inputs; the
generator never draws them, see strategies.command_lines).  An nbjax that refuses to write an
SMV header longer than 512 bytes where C's header is longer too (C writes the corrupt file
anyway; very small beam centres print long) is not failed for it: the float image it wrote
before refusing is still compared.  Refusing a header that C fits in 512 bytes is a failure.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import os
import subprocess
import tempfile
import traceback
from pathlib import Path

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis.control import current_build_context
from strategies import command_lines

from nbjax_bridge import cases as bridge_cases
from nbjax_bridge import metrics as mx

C_BIN = os.environ.get("NB_C_BIN", "")
if not C_BIN or not os.path.isfile(C_BIN) or not os.access(C_BIN, os.X_OK):
    pytest.skip("live parity needs the C nanoBragg: set NB_C_BIN to the executable", allow_module_level=True)


REPO = Path(__file__).resolve().parents[1]
C_TIMEOUT_S = 60.0
THRESHOLD = mx.DEFAULT_THRESHOLD  # corr >= 0.999
SUM_TOL = mx.DEFAULT_SUM_TOL  # |sum ratio - 1| <= 3e-3


def _max_examples() -> int:
    env = os.environ.get("NBJAX_PARITY_EXAMPLES")
    if env:
        return int(env)
    if os.environ.get("HYPOTHESIS_PROFILE", "ci") == "ci":
        return 10
    return settings.default.max_examples


# ----------------------------------------------------------------------------------------------
# failing examples -> a cases.toml the bridge's `matrix` accepts


def _toml_str(s: str) -> str:
    return json.dumps(s)  # a TOML basic string: JSON's escapes are TOML's (no \/ is produced)


class FailureLog:
    """Failing examples of this test run, rewritten to one cases.toml after each failure.

    Cases the final (shrunk) replay produced come first, as ``shrunk-N``; every other failing
    example Hypothesis tried follows as ``fail-NNNN`` in the order it was found.
    """

    def __init__(self):
        self.folder: Path | None = None
        self.failures: list[dict] = []

    def path(self) -> Path:
        if self.folder is None:
            env = os.environ.get("NBJAX_PROPERTY_FAILURES_DIR")
            stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
            self.folder = Path(env) if env else REPO / "reports" / "property-failures" / stamp
            self.folder = self.folder if self.folder.is_absolute() else REPO / self.folder
            self.folder.mkdir(parents=True, exist_ok=True)
            if env and (self.folder / "failures.json").is_file():
                # a folder named by the campaign: later rounds add to the earlier rounds' cases
                self.failures = json.loads((self.folder / "failures.json").read_text())["failures"]
        return self.folder / "cases.toml"

    def add(self, cl, kind: str, reason: str, metrics: dict | None, final: bool) -> tuple[Path, str]:
        path = self.path()
        n_final = sum(f["final"] for f in self.failures)
        case_id = f"shrunk-{n_final + 1}" if final else f"fail-{len(self.failures) - n_final + 1:04d}"
        self.failures.append(
            {
                "id": case_id,
                "final": final,
                "kind": kind,
                "args": list(cl.argv),
                "files": cl.file_dict,
                "reason": f"{kind}: {reason}",
                "samples": cl.samples,
                "shape": [cl.fpixels, cl.spixels],
                "metrics": mx.jsonable(metrics) if metrics else None,
            }
        )
        self._write(path)
        return path, case_id

    def _write(self, path: Path):
        ordered = [f for f in self.failures if f["final"]] + [f for f in self.failures if not f["final"]]
        lines = [
            "# Failing examples of properties/test_parity_live.py (shrunk-N: Hypothesis' minimal",
            "# examples, replayed last; fail-NNNN: every other failing example, in the order found).",
            f"# Re-run: OMP_NUM_THREADS=1 NB_C_BIN={C_BIN} nbjax-bridge matrix {path}",
            "# (C's phi == 0 quirk depends on the thread count; the property runs C single-threaded.)",
            "",
        ]
        for f in ordered:
            lines.append("[[case]]")
            lines.append(f"id = {_toml_str(f['id'])}")
            lines.append("args = [" + ", ".join(_toml_str(a) for a in f["args"]) + "]")
            if f["files"]:
                lines.append(
                    "files = { " + ", ".join(f"{_toml_str(k)} = {_toml_str(v)}" for k, v in f["files"].items()) + " }"
                )
            lines.append(f"threshold = {THRESHOLD!r}")
            lines.append(f"sum_tol = {SUM_TOL!r}")
            lines.append(f"note = {_toml_str(f['reason'])}")
            lines.append("")
        tmp = path.with_suffix(".toml.tmp")
        tmp.write_text("\n".join(lines))
        os.replace(tmp, path)
        (path.parent / "failures.json").write_text(
            json.dumps({"cases_toml": str(path), "c_bin": C_BIN, "failures": ordered}, indent=1)
        )


FAILURES = FailureLog()


def _is_final() -> bool:
    try:
        return bool(current_build_context().is_final)
    except Exception:  # outside a test, or an older Hypothesis
        return False


# ----------------------------------------------------------------------------------------------
# the two programs


def _stage(folder: Path, files: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def run_c(argv, folder: Path) -> tuple[np.ndarray | None, str]:
    """Run the C binary single-threaded; returns (float image or None, description)."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    try:
        proc = subprocess.run(
            [C_BIN, *argv, "-floatfile", "c_float.bin"],
            cwd=folder,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=C_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return None, f"C timed out after {C_TIMEOUT_S:g} s"
    if proc.returncode != 0:
        tail = proc.stdout.decode(errors="replace")[-600:]
        return None, f"C exited with status {proc.returncode}: ...{tail}"
    path = folder / "c_float.bin"
    if not path.is_file():
        return None, "C wrote no float image"
    return np.fromfile(path, dtype="<f4"), "ok"


def smv_header_bytes(path: Path) -> int | None:
    """Length of an SMV header as written (up to and including the closing '}\\f')."""
    try:
        data = path.read_bytes()[:4096]
    except OSError:
        return None
    end = data.find(b"}\f")
    return None if end < 0 else end + 2


RUNS = {"nbjax": 0}
CLEAR_CACHES_EVERY = 25  # examples; see run_nbjax


def run_nbjax(argv, folder: Path) -> tuple[np.ndarray | None, str, str | None]:
    """Run the nbjax CLI in-process in ``folder``; returns (float image or None, description,
    the NBError message when nbjax refused to write C's over-long SMV header, else None)."""
    import jax

    from nbjax.cli.main import run
    from nbjax.errors import NBError

    # Nearly every example has its own static shapes, so each compiles new executables; a
    # process holding a few thousand of them runs out of memory for LLVM ("Cannot allocate
    # memory"), so the jit caches are dropped now and then.
    RUNS["nbjax"] += 1
    if RUNS["nbjax"] % CLEAR_CACHES_EVERY == 0:
        jax.clear_caches()

    out, err = io.StringIO(), io.StringIO()
    old_cwd, old_cache = os.getcwd(), os.environ.get("NBJAX_CACHE_DIR")
    os.environ["NBJAX_CACHE_DIR"] = "off"  # no persistent compilation cache: one entry per shape
    os.chdir(folder)
    header_refusal = None
    try:
        with contextlib.redirect_stdout(out):
            code = run([*argv, "-floatfile", "py_float.bin"], out=out, err=err)
    except NBError as exc:
        if not str(exc).startswith("SMV header is"):
            return None, f"nbjax refused the input: {exc}", None
        # nbjax writes the float image before the SMV file; an nbjax that refuses a header
        # over 512 bytes (C writes it anyway, a corrupt file: c-reference-behavior.md
        # section 4) is judged by the caller against C's header length.
        header_refusal, code = str(exc), 0
    except Exception as exc:  # a crash on a valid argv
        return None, f"nbjax raised {type(exc).__name__}: {exc} | {traceback.format_exc(limit=4)[-800:]}", None
    finally:
        os.chdir(old_cwd)
        if old_cache is None:
            os.environ.pop("NBJAX_CACHE_DIR", None)
        else:
            os.environ["NBJAX_CACHE_DIR"] = old_cache
    if code != 0:
        return None, f"nbjax exited with status {code}: {err.getvalue()[-600:]}", None
    path = folder / "py_float.bin"
    if not path.is_file():
        return None, "nbjax wrote no float image", None
    return np.fromfile(path, dtype="<f4"), "ok", header_refusal


def compare(c_flat, py_flat, fpixels, spixels) -> tuple[bool, str, dict | None]:
    """The bridge's judgement plus: no non-finite pixel, and two all-zero images identical."""
    n = fpixels * spixels
    if c_flat.size != n or py_flat.size != n:
        return False, f"image sizes C {c_flat.size}, nbjax {py_flat.size}, expected {fpixels}x{spixels}={n}", None
    c, py = c_flat.reshape(spixels, fpixels), py_flat.reshape(spixels, fpixels)
    m = mx.compute(c, py)
    head = (
        f"corr={m['corr']!r} sum_ratio={m['sum_ratio']!r} max_rel_diff={m['max_rel_diff']!r} "
        f"sum_c={m['sum_c']!r} sum_py={m['sum_py']!r} nonfinite c/py={m['nonfinite_c']}/{m['nonfinite_py']}"
    )
    if m["nonfinite_c"] or m["nonfinite_py"]:
        return False, "non-finite pixels: " + head, m
    c_zero, py_zero = not np.any(c), not np.any(py)
    if c_zero or py_zero:
        event("image: all zero")
        ok = c_zero and py_zero
        return ok, ("all-zero images" if ok else "one image is all zero: ") + head, m
    ok, checks = mx.judge(m, THRESHOLD, SUM_TOL)
    if not ok:
        bad = ", ".join(f"{name}={value!r} (need {req})" for name, value, req, good in checks if not good)
        return False, f"below the bridge thresholds: {bad}; " + head, m
    return True, head, m


# ----------------------------------------------------------------------------------------------


class ParityFailure(AssertionError):
    """nbjax and C disagree.  One subclass per kind, so Hypothesis shrinks (and reports) each
    kind of failure separately instead of stopping at the first."""


class ImageMismatch(ParityFailure):
    """Both images exist but fail the bridge thresholds (or one is all zero)."""


class NonFiniteImage(ParityFailure):
    """An image has NaN or infinite pixels."""


class NbjaxFailed(ParityFailure):
    """nbjax raised, exited non-zero or wrote no image on a command line C renders."""


class CFailed(ParityFailure):
    """C failed on a drawn command line (a generator bug: every drawn argv must be valid)."""


class HeaderRefused(ParityFailure):
    """nbjax refused an SMV header over 512 bytes that C wrote within 512 bytes."""


# NBJAX_PARITY_DATABASE=off: no example database (the campaign's later rounds look for new
# failures instead of replaying the one an earlier round found).
@settings(
    max_examples=_max_examples(), **({"database": None} if os.environ.get("NBJAX_PARITY_DATABASE") == "off" else {})
)
@given(cl=command_lines())
def test_nbjax_matches_live_c(cl):
    for tag in cl.tags:
        event(tag)
    event(
        "samples per pixel: "
        f"{'1' if cl.samples == 1 else '2-10' if cl.samples <= 10 else '11-50' if cl.samples <= 50 else '51-200'}"
    )
    kind, metrics = None, None
    with tempfile.TemporaryDirectory(prefix="nbjax-parity-") as tmp:
        c_dir, py_dir = _stage(Path(tmp) / "c", cl.file_dict), _stage(Path(tmp) / "py", cl.file_dict)
        c_img, c_why = run_c(cl.argv, c_dir)
        py_img, py_why, refusal = run_nbjax(cl.argv, py_dir)
        c_header = smv_header_bytes(c_dir / "intimage.img")
    if c_img is None:
        kind, reason = CFailed, f"C: {c_why}" + ("" if py_img is not None else f"; nbjax: {py_why}")
    elif py_img is None:
        kind, reason = NbjaxFailed, f"nbjax: {py_why}"
    else:
        if refusal is not None:
            if c_header is not None and c_header > 512:
                # Documented C behaviour an nbjax may deliberately reject: C writes an SMV
                # header longer than its HEADER_BYTES=512 (e.g. beam centres like 3.6e-214 mm
                # print long), a corrupt file.  nbjax before commit 005c0bc stopped with an
                # error after writing the float image; the float image is still compared.
                event("SMV header over 512 bytes (C writes it, nbjax refuses): float image compared")
            else:
                kind, reason = HeaderRefused, f"nbjax: {refusal}, but C's header is {c_header} bytes"
        if kind is None:
            ok, reason, metrics = compare(c_img, py_img, cl.fpixels, cl.spixels)
            if not ok:
                kind = NonFiniteImage if reason.startswith("non-finite") else ImageMismatch
                if refusal is not None:
                    reason += (
                        f" (nbjax also refused C's {c_header}-byte SMV header after writing the "
                        "float image, so nbjax-bridge reports a runner failure for this case)"
                    )
    if kind is not None:
        path, case_id = FAILURES.add(cl, kind.__name__, reason, metrics, _is_final())
        # the written case must load as a bridge case list
        assert any(c.id == case_id for c in bridge_cases.load_cases(path))
        raise kind(
            f"nbjax differs from C ({kind.__name__}): {reason}\n  argv: {' '.join(cl.argv)}\n"
            f"  case {case_id} written to {path}\n"
            f"  re-run: OMP_NUM_THREADS=1 NB_C_BIN={C_BIN} nbjax-bridge matrix {path} --only {case_id}"
        )
