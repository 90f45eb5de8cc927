"""nanoBragg's tables, in one place: its command line, its detector conventions and the
constants it writes as literals.

Plain data and the standard library only (no JAX, no NumPy), so the CLI, the JAX-free bridge
(``nbjax_bridge``) and the property tests import the same rows instead of copying them:

- :mod:`nbjax.ctables.argv`: every option handler of the C main loop, in source order, with
  its match rule, values and help text (the CLI adds only how each one sets RunSettings);
- :mod:`nbjax.ctables.conventions`: the beam and detector vectors and the pivot each
  convention imposes, and the start-up (CUSTOM) vectors;
- :mod:`nbjax.ctables.constants`: the C program's literal constants (RTD, DBL_MIN, the source
  distance, hc in eV*A, default file names).
"""
