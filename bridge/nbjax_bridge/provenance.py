"""What was run, where, and with which environment: for commands.txt and notes.md."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shlex
import shutil
import sys
from pathlib import Path

from .inputs import sha256_file


def relevant_env(env: dict[str, str] | None = None) -> dict[str, str | None]:
    """NB_C_BIN, OMP_NUM_THREADS, every JAX_* variable, XLA_FLAGS and PATH (None = unset)."""
    env = dict(os.environ if env is None else env)
    keys = ["NB_C_BIN", "OMP_NUM_THREADS", "XLA_FLAGS"]
    keys += sorted(k for k in env if k.startswith("JAX_"))
    out: dict[str, str | None] = {k: env.get(k) for k in keys}
    out["PATH"] = env.get("PATH")
    return out


def _tree_sha256(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*.py")):
        if "__pycache__" in p.parts:
            continue
        h.update(str(p.relative_to(folder)).encode() + b"\0" + sha256_file(p).encode() + b"\n")
    return h.hexdigest()


def describe_command(cmd: list[str]) -> list[dict]:
    """Files a command runs, with sha256: the program, script arguments, a ``-m`` package."""
    items: list[dict] = []
    prog = cmd[0]
    resolved = shutil.which(prog) if os.sep not in prog else prog
    if resolved and Path(resolved).is_file():
        real = Path(resolved).resolve()
        item = {"role": "program", "path": os.path.abspath(resolved), "sha256": sha256_file(real)}
        if str(real) != item["path"]:
            item["real_path"] = str(real)
        items.append(item)
    else:
        items.append({"role": "program", "path": prog, "sha256": None})
    for k, tok in enumerate(cmd[1:], start=1):
        if cmd[k - 1] == "-m":
            entry = {"role": f"module {tok}", "path": None, "sha256": None}
            same_python = bool(resolved) and os.path.abspath(resolved) == os.path.abspath(sys.executable)
            if same_python:
                try:
                    spec = importlib.util.find_spec(tok.split(".")[0])
                except (ImportError, ValueError):
                    spec = None
                if spec is not None and spec.submodule_search_locations:
                    folder = Path(list(spec.submodule_search_locations)[0])
                    entry.update(
                        path=str(folder), sha256=_tree_sha256(folder), note="sha256 over the package's *.py files"
                    )
                elif spec is not None and spec.origin and Path(spec.origin).is_file():
                    entry.update(path=spec.origin, sha256=sha256_file(Path(spec.origin)))
            items.append(entry)
        elif Path(tok).is_file():
            items.append({"role": "script", "path": str(Path(tok).resolve()), "sha256": sha256_file(Path(tok))})
    return items


def shell_line(cmd: list[str]) -> str:
    return shlex.join(cmd)
