"""The C program's round-crystal lattice factor (``-round_xtal``), with its cancellation.

C evaluates sinc3(x) = 3 (sin(x)/x - cos(x))/x^2 directly (1 at x == 0 exactly): for
0 < x < ~1e-4 it cancels, and below ~1e-8 (a pixel next to the direct beam) it is 0 where the
intended value is 1 (cases round-xtal-beam-on-pixel, round-xtal-misset-beam-on-pixel).
Physical mode uses ``physics.lattice.sinc3_of_sq`` instead.
"""

import jax.numpy as jnp

from nbjax.physics.lattice import ROUND_VOLUME_FACTOR, lattice_amplitude, round_radius_sq


def sinc3_c(x):
    """C's sinc3(x): 3 (sin(x)/x - cos(x))/x^2, and 1 at x == 0."""
    zero = x == 0.0
    xs = jnp.where(zero, 1.0, x)
    return jnp.where(zero, 1.0, 3.0 * (jnp.sin(xs) / xs - jnp.cos(xs)) / (xs * xs))


def c_lattice_amplitude(hkl, N, shape: str, fudge, recip):
    """F_latt as C computes it: the round shape through C's sinc3 of pi sqrt(fudge r^2)."""
    if shape != "round":
        return lattice_amplitude(hkl, N, shape, fudge, recip)
    r2 = round_radius_sq(hkl, N) * fudge
    positive = r2 > 0.0
    x = jnp.where(positive, jnp.pi * jnp.sqrt(jnp.where(positive, r2, 1.0)), 0.0)
    return N[0] * N[1] * N[2] * ROUND_VOLUME_FACTOR * sinc3_c(x)
