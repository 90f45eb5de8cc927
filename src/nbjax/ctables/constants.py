"""Literal constants of the C program that more than one part of nbjax needs.

Values are spelled as the C source spells them, so arithmetic on them rounds as C's does.
"""

RTD = 180.0 * 0.31830988618379067154
"""C's ``RTD = 180.0*M_1_PI``: degrees per radian, with M_1_PI rounded as the C literal."""

DBL_MIN = 2.2250738585072014e-308
"""C's DBL_MIN: the smallest normal double (replaces a zero detector/beam ratio)."""

SOURCE_DISTANCE = 10.0
"""Metres from the sample at which C places generated sources and the default source-file
position (``-10 m`` along the beam); ``-source_distance`` is commented out in C."""

HC_EV_ANGSTROM = 12398.42
"""``-energy``: lambda = 12398.42/E(eV) Angstrom, the C literal."""

DEFAULT_FLUENCE = 125932015286227086360700780544.0
"""Incident fluence default, photons/m^2 (the C literal)."""

DEFAULT_DUMP = "Fdump.bin"
"""The structure-factor cache C writes after reading -hkl and reads back without it."""

DEFAULT_FLOATFILE = "floatimage.bin"
DEFAULT_INTFILE = "intimage.img"
DEFAULT_PGMFILE = "image.pgm"
DEFAULT_NOISEFILE = "noiseimage.img"

R_E_SQR = 7.94079248018965e-30
"""Thomson cross section r_e^2 (m^2): every pixel is r_e^2 fluence times its F^2 sum."""

AVOGADRO = 6.02214179e23
"""C's Avogadro number (1/mol): the water background and the printed approximate MW."""

WATER_F = 2.57
"""Structure factor of water (electrons) in C's water background, forward-scattering value."""

WATER_MW = 18.0
"""Molar mass of water (g/mol) in C's water background."""
