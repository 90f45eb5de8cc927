"""Find the files ARGS reference, stage them into a run folder and rewrite ARGS to match.

Each runner gets its own folder holding a copy of every input file, referenced by a plain relative
name, so default outputs (intimage.img, Fdump.bin, ...) of the two programs cannot collide and
relative names work. Any ``-floatfile``/``-floatimage`` the user gave is removed (and remembered)
and ``-floatfile <name>`` is appended so the float image is always captured.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from nbjax.ctables.constants import DEFAULT_DUMP

from . import cflags
from .exitcodes import InputIOError

FLOAT_NAME = "float.bin"


@dataclass
class InputFile:
    flag: str  # handler that reads it, e.g. "-sourcefile" ("(Fdump)" for the implicit cache)
    given: str  # the path as written in ARGS
    source: Path  # absolute path on this machine
    local: str  # name inside each run folder


@dataclass
class PreparedArgs:
    original: list[str]
    argv: list[str]  # rewritten ARGS, ending with -floatfile <float_name>
    inputs: list[InputFile] = field(default_factory=list)
    user_floatfile: str | None = None  # what the user asked for, if anything
    outputs: dict[str, str] = field(default_factory=dict)  # given path -> local name
    float_name: str = FLOAT_NAME
    effective: list[str] = field(default_factory=list)  # ARGS as run, but with the user's paths


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _local_name(source: Path, taken: dict[str, Path]) -> str:
    base = source.name or "input"
    name, k = base, 2
    while name in taken and taken[name] != source:
        name = f"{k}_{base}"
        k += 1
    return name


def prepare_args(args: list[str], cwd: Path | str = ".", float_name: str = FLOAT_NAME) -> PreparedArgs:
    """Rewrite ARGS for a run folder. Raises InputIOError when a referenced input is missing."""
    cwd = Path(cwd).resolve()
    parsed = cflags.parse(args)
    replace: dict[int, str] = {}
    drop: set[int] = set()
    inputs: list[InputFile] = []
    taken: dict[str, Path] = {}
    outputs: dict[str, str] = {}
    user_float = None

    def add_input(flag: str, given: str) -> str:
        src = (cwd / given).resolve() if not os.path.isabs(given) else Path(given).resolve()
        for inp in inputs:
            if inp.source == src:
                return inp.local
        local = _local_name(src, taken)
        taken[local] = src
        inputs.append(InputFile(flag, given, src, local))
        return local

    has_hkl = bool(parsed.named("-hkl"))
    for f in parsed.firings:
        role = f.handler.role
        vj = f.index + 1
        if role == "float":
            user_float = parsed.tokens[vj]
            drop.update({f.index, vj})
            continue
        if role not in ("input", "maybe_input", "output") or vj in replace:
            continue
        given = parsed.tokens[vj]
        path = Path(given) if os.path.isabs(given) else cwd / given
        if role == "input":
            if not path.is_file():
                raise InputIOError(f"input file not found: {given} (given to {f.token})")
            replace[vj] = add_input(f.name, given)
        elif role == "maybe_input" and not has_hkl and path.is_file():
            replace[vj] = add_input(f.name, given)
        else:  # an output name: keep it inside the run folder
            local = Path(given).name or given
            outputs[given] = local
            replace[vj] = local
    # Without -hkl C re-reads the Fdump cache (default Fdump.bin) from its working folder.
    if not has_hkl and not parsed.named("-dump") and (cwd / DEFAULT_DUMP).is_file():
        add_input("(Fdump)", DEFAULT_DUMP)
    # A dropped -floatfile may sit at the end with no value.
    for j, h in parsed.starved:
        if h.role == "float":
            drop.add(j)
    argv = [replace.get(j, t) for j, t in enumerate(parsed.tokens) if j not in drop]
    argv += ["-floatfile", float_name]
    effective = [t for j, t in enumerate(parsed.tokens) if j not in drop] + ["-floatfile", float_name]
    return PreparedArgs(list(args), argv, inputs, user_float, outputs, float_name, effective)


def stage(prepared: PreparedArgs, run_dir: Path, symlink: bool = False) -> None:
    """Copy (or symlink) every input file into run_dir under its local name."""
    run_dir.mkdir(parents=True, exist_ok=True)
    for inp in prepared.inputs:
        dest = run_dir / inp.local
        try:
            if symlink:
                dest.symlink_to(inp.source)
            else:
                shutil.copyfile(inp.source, dest)
        except OSError as exc:
            raise InputIOError(f"cannot stage {inp.given} into {run_dir}: {exc.strerror or exc}") from None


def fixture_sha256_lines(prepared: PreparedArgs) -> list[str]:
    """``sha256sum``-format lines for every input file (paths as written in ARGS)."""
    return [f"{sha256_file(inp.source)}  {inp.given}" for inp in prepared.inputs]
