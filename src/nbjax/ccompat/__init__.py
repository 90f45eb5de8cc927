"""The C program's behaviour, quirks included: everything nbjax does only to equal nanoBragg.

``CCompatible`` is the accumulation strategy of the CLI's default mode (an
``nbjax.accumulation.AbstractAccumulation``); ``quirks`` holds the set-up-time emulations and
the one-line warnings.  Each emulation names the golden case in ``tests/data`` that proves it.
Physical mode (``nbjax.Physical``) uses none of this.
"""

from nbjax.ccompat.accumulation import CCompatible

__all__ = ["CCompatible"]
