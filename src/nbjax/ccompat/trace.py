"""What C's ``-printout`` prints about a pixel: the C-compatible model's last sample, its
accumulated I and its cached factors (``nbjax.cli.trace`` formats them as C does; golden cases
with -printout in tests/data prove them).  Only the C-compatible model can answer: it is the
one with C's cached factors (``CCompatible.pixel_sum``)."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from nbjax.accumulation import squared_amplitudes
from nbjax.ccompat.accumulation import first_unskipped_polar
from nbjax.ccompat.lattice import c_lattice_amplitude
from nbjax.experiment import Experiment
from nbjax.samples import orientation_matrices, pixel_samples


class PixelTrace(eqx.Module):
    """What C's -printout prints per pixel (T pixels): the last sample's stol (1/m), sub-pixel
    position (m), hkl, F_cell and signed F_latt, the accumulated I, the cached polarization,
    solid angle and capture fraction, and the last rotated cell (rows a, b, c in m)."""

    stol: Float[Array, " T"]
    pos: Float[Array, "T 3"]
    hkl: Float[Array, "T 3"]
    f_cell: Float[Array, " T"]
    f_latt: Float[Array, " T"]
    I: Float[Array, " T"]
    polar: Float[Array, " T"]
    omega: Float[Array, " T"]
    capture: Float[Array, " T"]
    cell: Float[Array, "3 3"]


@jax.jit
def pixel_trace(exp: Experiment, fpix: Int[Array, " T"], spix: Int[Array, " T"]) -> PixelTrace:
    """What C's -printout prints for pixels (fpix, spix): the last sample's stol (1/m), sub-pixel
    position (m), hkl, F_cell and signed F_latt, the accumulated I, the cached polarization,
    solid angle and capture fraction, and the last rotated cell (m).  C-compatible model."""
    dtype = jnp.float64
    s = pixel_samples(exp, fpix, spix, dtype)
    x, f_cell = squared_amplitudes(exp, s, jnp.asarray(True), dtype)
    accumulated, _ = exp.model.pixel_sum(exp, x, s)
    last = s.hkl.reshape(s.hkl.shape[0], -1, 3)[:, -1]
    xtal = exp.crystal
    T = s.hkl.shape[0]
    return PixelTrace(
        stol=jnp.sqrt(s.stol_sq.reshape(T, -1)[:, -1]),
        pos=s.pos[:, -1, -1],
        hkl=last,
        f_cell=f_cell.reshape(T, -1)[:, -1],
        f_latt=c_lattice_amplitude(last, xtal.N, xtal.shape, xtal.fudge, exp.model.recip),
        I=accumulated,
        polar=first_unskipped_polar(s.polar, s.dmin_skip),
        omega=s.omega[:, 0, 0],
        capture=s.capture[:, -1, 0],
        cell=orientation_matrices(xtal, dtype)[-1],
    )
