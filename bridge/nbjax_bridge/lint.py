"""Report inputs the reference C program mishandles, before anyone runs it.

Severities: ``error`` = C will fail (exit, crash) or produce a NaN image; ``warn`` = C runs but the
result differs from what the user most likely meant; ``info`` = harmless but worth knowing.
Rules follow the reference notes (sections 0, 1, 2 D1-D4/D27-D28, 4).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from nbjax.ctables.constants import DEFAULT_DUMP, HC_EV_ANGSTROM, SOURCE_DISTANCE
from nbjax.io.cformat import c_atoi

from . import cflags, ctext

ERROR, WARN, INFO = "error", "warn", "info"
SOURCE_ANGLE_LIMIT_DEG = 10.0


@dataclass
class Finding:
    severity: str
    code: str
    message: str

    def line(self) -> str:
        return f"{self.severity:5s} {self.code}: {self.message}"

    def to_json(self) -> dict:
        return asdict(self)


def has_errors(findings) -> bool:
    return any(f.severity == ERROR for f in findings)


def _lines_text(numbers: list[int], limit: int = 5) -> str:
    head = ", ".join(str(n) for n in numbers[:limit])
    more = f" (+{len(numbers) - limit} more)" if len(numbers) > limit else ""
    word = "line" if len(numbers) == 1 else "lines"
    return f"{word} {head}{more}"


def _float(tok: str | None, default: float | None = None) -> float | None:
    if tok is None:
        return default
    return ctext.c_atof(tok)


def _resolve(cwd: Path, given: str) -> Path:
    return Path(given) if os.path.isabs(given) else cwd / given


# ------------------------------------------------------------------------------------ argv rules

_HINTS = {
    "-trace_pixel": "upstream C silently ignores it (older fork only)",
    "-h": "C has no help flag",
    "-help": "C has no help flag",
    "--help": "C has no help flag",
}


def _flag_findings(p: cflags.ParsedArgv) -> list[Finding]:
    out: list[Finding] = []
    toks = p.tokens
    for j in p.unknown:
        hint = _HINTS.get(toks[j], "C ignores unknown flags silently")
        out.append(Finding(WARN, "unknown_flag", f"{toks[j]} matches no C option: {hint}"))
    for j, h in p.starved:
        own = [f.name for f in p.by_index(j)]
        if h.name == "-misset" and "-misset_seed" in own:
            out.append(
                Finding(
                    WARN,
                    "misset_seed_fires_misset",
                    f"{toks[j]} also fires C's numeric -misset handler as soon as 3 "
                    f"tokens follow it (e.g. when -floatfile is appended): misset = "
                    f"({ctext.c_atof(toks[j + 1]):g} deg, ...), cancelling -misset random",
                )
            )
        elif own:
            out.append(
                Finding(
                    INFO,
                    "collision_not_fired",
                    f"{toks[j]} also matches C's {h.name} handler, which does not fire "
                    f"here only because fewer than {h.c_needs} tokens follow",
                )
            )
        else:
            out.append(
                Finding(WARN, "missing_values", f"{toks[j]} needs {h.c_needs} value(s) after it; C ignores it here")
            )
    indices = sorted({f.index for f in p.firings})
    for j in indices:
        fired = p.by_index(j)
        names = {f.name for f in fired}
        tok = toks[j]
        # handlers that read a value past the end (C tests argc >= i+1: reads argv[argc])
        for f in fired:
            if f.handler.c_needs < f.handler.values and j + f.handler.c_needs + 1 >= len(toks):
                out.append(
                    Finding(
                        ERROR, "flag_reads_past_end", f"{tok} is last: C reads the missing value from argv[argc] (NULL)"
                    )
                )
        if "-twotheta_axis" in names and "-twotheta" in names:
            x = toks[j + 1]
            out.append(
                Finding(
                    WARN,
                    "twotheta_axis_sets_twotheta",
                    f"{tok} {' '.join(toks[j + 1 : j + 4])} also fires -twotheta: C sets "
                    f"2theta = {ctext.c_atof(x):g} deg (the axis x component) and pivot "
                    f"SAMPLE, replacing any earlier -twotheta",
                )
            )
            names -= {"-twotheta_axis", "-twotheta"}
        if "-misset_seed" in names:
            if "-misset" in names:
                vals = [ctext.c_atof(t) for t in toks[j + 1 : j + 4]]
                had_random = any(f.index < j for f in p.named("-misset random"))
                extra = "; it also cancels the earlier -misset random" if had_random else ""
                out.append(
                    Finding(
                        WARN,
                        "misset_seed_fires_misset",
                        f"{tok} {toks[j + 1]} also fires the numeric -misset handler: "
                        f"misset = ({vals[0]:g}, {vals[1]:g}, {vals[2]:g}) deg{extra}",
                    )
                )
            names -= {"-misset_seed", "-misset", "-misset random"}
        if "-dump" in names and tok != "-dump":
            out.append(
                Finding(
                    WARN,
                    "dump_pixel_is_dump" if "pixel" in tok else "substring_dump",
                    f"{tok} is taken as -dump: the Fdump cache file is named '{toks[j + 1]}' (upstream has no {tok})",
                )
            )
            names -= {"-dump"}
        if len(names) > 1 and frozenset(names) not in cflags.BENIGN_COMBOS:
            out.append(Finding(WARN, "flag_collision", f"{tok} fires several C handlers: {', '.join(sorted(names))}"))
        elif len(names) == 1 and tok not in cflags.CANONICAL:
            (name,) = names
            out.append(Finding(INFO, "substring_alias", f"{tok} is accepted by C as {name}"))
    return out


def _convention_findings(p: cflags.ParsedArgv) -> list[Finding]:
    out: list[Finding] = []
    conv = cflags.convention(p)
    if conv != "CUSTOM" and p.named("-pivot"):
        out.append(
            Finding(
                WARN,
                "pivot_ignored",
                f"-pivot has no effect in {conv} convention (C re-forces the pivot; only CUSTOM keeps it)",
            )
        )
    if conv != "CUSTOM":
        for name in ("-Xclose", "-Yclose"):
            if p.named(name):
                where = " (only the header BEAM_CENTER changes)" if conv in ("XDS", "DIALS") else ""
                out.append(
                    Finding(WARN, "close_ignored", f"{name} has no geometric effect in {conv} convention{where}")
                )
    if conv in ("MOSFLM", "ADXV", "DENZO"):
        for name in ("-ORGX", "-ORGY"):
            if p.named(name):
                out.append(
                    Finding(
                        WARN, "orgxy_ignored", f"{name} is ignored in {conv} convention (works in XDS/DIALS/CUSTOM)"
                    )
                )
    if p.named("-pix0_vector"):
        out.append(
            Finding(
                WARN,
                "pix0_ignored",
                "-pix0_vector values are ignored by C (pix0 is always recomputed); "
                "it only switches the convention to CUSTOM",
            )
        )
    if p.named("-distance") and p.named("-close_distance"):
        out.append(
            Finding(
                WARN,
                "distance_ignored",
                "-distance is ignored when -close_distance is given (C uses close_distance/ratio)",
            )
        )
    return out


def _lambda0(p: cflags.ParsedArgv) -> float:
    lam = 1e-10
    for f in sorted(p.named("-lambda") + p.named("-energy"), key=lambda f: f.index):
        v = ctext.c_atof(p.value(f) or "")
        if f.name == "-lambda":
            lam = v * 1e-10
        elif v != 0:
            lam = HC_EV_ANGSTROM / v * 1e-10
    return lam


def _misc_findings(p: cflags.ParsedArgv, cwd: Path) -> list[Finding]:
    out: list[Finding] = []
    toks = p.tokens
    # required inputs (C prints usage and exits 9)
    default_f = _float(p.last_value("-default_F"), 0.0)
    dump_name = p.last_value("-dump", DEFAULT_DUMP)
    has_dump = _resolve(cwd, dump_name).is_file()
    if not p.named("-hkl") and not has_dump and default_f == 0.0:
        out.append(
            Finding(
                ERROR, "no_structure_factors", "no -hkl, no Fdump file and -default_F is 0: C prints usage and exits 9"
            )
        )
    has_cell = any(toks[f.index + 1][:1] != "-" and ctext.c_atof(toks[f.index + 1]) != 0 for f in p.named("-cell"))
    if not p.named("-mat") and not has_cell:
        out.append(Finding(ERROR, "no_cell", "no -mat and no -cell: C prints usage and exits 9"))
    # random misset without a seed is not reproducible
    if p.named("-misset random") and not p.named("-misset_seed"):
        out.append(
            Finding(
                WARN, "random_misset_unseeded", "-misset random uses a time-based seed: two runs give different images"
            )
        )
    # phi == 0 reuses a stale orientation (D19)
    phi0 = _float(p.last_value("-phi"), 0.0)
    steps = c_atoi(p.last_value("-phisteps") or "0")  # C: atoi
    osc = _float(p.last_value("-osc"), 0.0) or 0.0
    phistep = _float(p.last_value("-phistep"), 0.0) or 0.0
    multi = steps > 1 or (steps <= 0 and osc > 0) or (osc > 0 and phistep > 0 and osc / phistep > 1.5)
    if phi0 == 0.0 and multi:
        out.append(
            Finding(
                WARN,
                "phi_zero_reuse",
                "phi starts at exactly 0 with several phi steps: C skips the rotation "
                "at phi=0 and reuses the previous step's orientation (thread-dependent); "
                "use -phi 1e-12 for the intended average",
            )
        )
    if p.named("-nopolar") and p.named("-oversample_polar"):
        out.append(Finding(WARN, "nopolar_overridden", "-nopolar with -oversample_polar: C still applies polarization"))
    abs_hits = p.named("-detector_abs")
    thick_hits = p.named("-detector_thick")
    for a in abs_hits:
        v = (toks[a.index + 1] if a.index + 1 < len(toks) else "").lower()
        if v in ("inf", "0") or ctext.c_atof(v) == 0:
            if any(t.index > a.index for t in thick_hits):
                out.append(
                    Finding(
                        WARN,
                        "detector_thick_zeroes_image",
                        f"-detector_abs {v} then -detector_thick: C ends with mu=0 and "
                        f"thickness>0, so the image is all zero",
                    )
                )
    if (p.named("-detector_thicksteps") or p.named("-thicksteps")) and not thick_hits:
        out.append(
            Finding(INFO, "thicksteps_alone", "thickness steps without -detector_thick do nothing (thickness is 0)")
        )
    return out


# ------------------------------------------------------------------------------------ files


def lint_sourcefile(
    path: Path, beam=(1.0, 0.0, 0.0), conv: str = "MOSFLM", lambda0: float = 1e-10, name: str | None = None
) -> list[Finding]:
    name = name or str(path)
    text = Path(path).read_bytes().decode("latin-1")
    lines = ctext.read_source_file(text)
    out: list[Finding] = []
    if not lines:
        return [Finding(ERROR, "source_empty", f"{name}: no sources; C exits 9")]
    causes: dict[str, list[int]] = {}
    lams, weights, off_axis = [], [], []
    worst_angle = 0.0

    def note(code: str, n: int):
        causes.setdefault(code, []).append(n)

    for ln in lines:
        vals = list(ln.values)
        defaults = [-SOURCE_DISTANCE * beam[0], -SOURCE_DISTANCE * beam[1], -SOURCE_DISTANCE * beam[2], 1.0, lambda0]
        given_lam = vals[4]
        given_w = vals[3]
        vals = [d if math.isnan(v) else v for v, d in zip(vals, defaults, strict=True)]
        x, y, z, _w, lam = vals
        norm = math.sqrt(x * x + y * y + z * z)
        nan_image = norm == 0.0 or lam == 0.0 or not math.isfinite(lam) or not math.isfinite(norm)
        short = len(ln.tokens) < 5
        if ln.nonnumeric:
            is_comment = ln.tokens and ln.tokens[0].startswith("#")
            note(
                ("source_comment_line" if is_comment else "source_nonnumeric") + ("" if nan_image else ":warn"),
                ln.lineno,
            )
        elif ln.crlf and short:
            note("source_crlf_short_line" + ("" if nan_image else ":warn"), ln.lineno)
        elif ln.no_newline and short:
            note("source_no_final_newline" + ("" if nan_image else ":warn"), ln.lineno)
        elif nan_image:
            note("source_degenerate", ln.lineno)
        if ln.nonnumeric or (short and (ln.crlf or ln.no_newline)):
            continue  # already reported; its zero-filled values would only add noise below
        if not math.isnan(given_lam) and math.isfinite(given_lam) and given_lam != 0:
            lams.append((ln.lineno, given_lam))
        if not math.isnan(given_w):
            weights.append(given_w)
        if norm > 0 and math.isfinite(norm):
            inc = (-x / norm, -y / norm, -z / norm)
            cosang = max(-1.0, min(1.0, sum(a * b for a, b in zip(inc, beam, strict=True))))
            ang = math.degrees(math.acos(cosang))
            if ang > SOURCE_ANGLE_LIMIT_DEG:
                off_axis.append(ln.lineno)
                worst_angle = max(worst_angle, ang)

    messages = {
        "source_comment_line": "comment line(s) are read as sources (non-numeric tokens become 0)",
        "source_nonnumeric": "non-numeric token(s) are read as 0 by C",
        "source_crlf_short_line": "CRLF line(s) with fewer than 5 columns: C fills the missing "
        "columns with 0, not the defaults",
        "source_no_final_newline": "last line has fewer than 5 columns and no final newline: C fills "
        "the missing columns with 0, not the defaults",
        "source_degenerate": "source(s) at the origin or with wavelength 0",
    }
    for key, nums in causes.items():
        code, _, sev = key.partition(":")
        if sev:
            out.append(Finding(WARN, code, f"{name} {_lines_text(nums)}: {messages[code]}"))
        else:
            out.append(
                Finding(ERROR, code, f"{name} {_lines_text(nums)}: {messages[code]}; the C image will be entirely NaN")
            )
    big = [n for n, lam in lams if abs(lam) > 1e-6]
    if big:
        example = next(lam for n, lam in lams if abs(lam) > 1e-6)
        out.append(
            Finding(
                WARN,
                "source_lambda_units",
                f"{name} {_lines_text(big)}: wavelength column {example:g} looks like "
                f"Angstrom; C reads it in meters (e.g. 1.0e-10 for 1 A)",
            )
        )
    elif lams and any(abs(lam - lambda0) > 1e-6 * lambda0 for _, lam in lams):
        out.append(
            Finding(
                INFO,
                "source_lambda_column",
                f"{name}: C uses the file's wavelength column, not -lambda ({lambda0 * 1e10:g} A) for these sources",
            )
        )
    if len(set(weights)) > 1:
        out.append(
            Finding(
                WARN,
                "source_weights_ignored",
                f"{name}: weights {sorted(set(weights))[:4]} differ, but C ignores the "
                f"weight column (every source counts equally)",
            )
        )
    if off_axis:
        ax = {(1.0, 0.0, 0.0): "+x", (0.0, 0.0, 1.0): "+z"}.get(tuple(beam), str(tuple(beam)))
        out.append(
            Finding(
                WARN,
                "source_direction",
                f"{name} {_lines_text(off_axis)}: source(s) up to {worst_angle:.0f} deg "
                f"off the beam axis; the sample-to-source direction should be opposite "
                f"the {conv} beam ({ax})",
            )
        )
    return out


def lint_hkl(path: Path, name: str | None = None) -> list[Finding]:
    name = name or str(path)
    text = Path(path).read_bytes().decode("latin-1")
    scan = ctext.scan_hkl(text)
    out: list[Finding] = []
    if scan.stop_line is not None and scan.entries == 0:
        out.append(
            Finding(
                ERROR,
                "hkl_header",
                f"{name} line {scan.stop_line}: '{scan.stop_token}' is not a number; C "
                f"reads no HKL entries ('not enough HKL indices') and exits 9",
            )
        )
    elif scan.stop_line is not None:
        out.append(
            Finding(
                WARN,
                "hkl_truncated",
                f"{name} line {scan.stop_line}: C stops reading at '{scan.stop_token}'; later entries are ignored",
            )
        )
    elif scan.entries == 0:
        out.append(Finding(ERROR, "hkl_empty", f"{name}: no HKL entries; C exits 9"))
    if scan.first_bad_columns is not None:
        counts = ", ".join(f"{n} columns x{k}" for n, k in sorted(scan.columns.items()))
        out.append(
            Finding(
                ERROR,
                "hkl_columns",
                f"{name} line {scan.first_bad_columns}: C reads 4 numbers at a time "
                f"across lines ({counts}); indices and F are misassigned "
                f"(a 5-column file crashed C in the reference tests)",
            )
        )
    if scan.noninteger_line is not None:
        out.append(
            Finding(
                WARN,
                "hkl_noninteger",
                f"{name} line {scan.noninteger_line}: non-integer h/k/l; C's second "
                f"pass reads integers and stops there",
            )
        )
    return out


# ------------------------------------------------------------------------------------ entry


def lint(args: list[str], cwd: Path | str = ".") -> list[Finding]:
    """All findings for nanoBragg ARGS run in folder cwd (input files resolved there)."""
    cwd = Path(cwd)
    p = cflags.parse(args)
    findings = _flag_findings(p) + _convention_findings(p) + _misc_findings(p, cwd)
    conv, beam = cflags.beam_direction(p)
    seen: set[tuple[str, str]] = set()
    for f in p.firings:
        if f.handler.role != "input":
            continue
        given = p.value(f)
        if given is None or (f.name, given) in seen:
            continue
        seen.add((f.name, given))
        path = _resolve(cwd, given)
        if not path.is_file():
            findings.append(Finding(ERROR, "missing_input", f"{f.token} {given}: file not found"))
            continue
        try:
            if f.name == "-sourcefile":
                findings += lint_sourcefile(path, beam, conv, _lambda0(p), given)
            elif f.name == "-hkl":
                findings += lint_hkl(path, given)
        except OSError as exc:
            findings.append(Finding(ERROR, "unreadable_input", f"{given}: {exc.strerror or exc}"))
    order = {ERROR: 0, WARN: 1, INFO: 2}
    return sorted(findings, key=lambda f: order[f.severity])
