"""Parity bridge between the reference nanoBragg C program and nbjax.

It treats both sides as commands taking nanoBragg's argv (nbjax's renderer, and JAX, are never
imported; only nbjax's plain-data tables of the C program, ``nbjax.ctables``), so any two
programs can be compared. Modules: ``cflags`` (C's flag matching), ``inputs`` (staging input
files, rewriting ARGS), ``runners`` (running a program with timeout/crash capture), ``images``
(float images and their shape), ``metrics``, ``png`` (previews), ``lint``, ``ctext`` (how C reads
text inputs), ``compare``, ``bundle``, ``cases``/``caseloop``/``matrix``/``replay``, ``cli``,
``exitcodes``.
"""

__all__ = ["main"]


def main(argv=None):
    from .cli import main as _main

    return _main(argv)
