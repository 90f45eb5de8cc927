"""Per-sample detector factors: solid angle, polarization and sensor absorption.

Unit vectors: ``diffracted`` from the sample to the sub-pixel, ``incident`` along the beam
(towards the detector).  Lengths in metres.  Elementwise over any leading axes ``*batch``
(the samples' T L Q [S], ``nbjax.axes``); inputs broadcast.
"""

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float


def solid_angle(
    airpath: Float[Array, "*batch"],
    close_distance: Float[ArrayLike, ""],
    pixel_size: Float[ArrayLike, ""],
    point_pixel: bool,
) -> Float[Array, "*batch"]:
    """Pixel solid angle (sr): omega = pixel^2 / R^2 * close_distance / R, or 1/R^2 (point pixel)."""
    if point_pixel:
        return 1.0 / (airpath * airpath)
    return pixel_size * pixel_size / (airpath * airpath) * close_distance / airpath


def polarization(
    incident: Float[Array, "#*batch 3"],
    diffracted: Float[Array, "#*batch 3"],
    polar_axis: Float[Array, "3"],
    kahn: Float[ArrayLike, ""],
) -> Float[Array, "*batch"]:
    """Kahn polarization factor 0.5 (1 + cos^2 2t - K cos(2 psi) sin^2 2t).

    psi is the azimuth of the diffracted ray about the incident beam, measured from the
    E-vector E = unit(i x unit(p x i)) with p the polarization axis.  For unit vectors
    cos(2 psi) sin^2 2t = E_out^2 - B_out^2 (E_out, B_out: components of the diffracted ray
    along E and B), which has no division, so the gradient is finite at and near 2theta = 0.
    When p is parallel to the beam C's psi is 0, giving sin^2 2t.
    """
    cos2t = jnp.sum(incident * diffracted, axis=-1)
    cos2t_sq = cos2t * cos2t
    b_in = _unit(jnp.cross(polar_axis, incident))
    e_in = _unit(jnp.cross(incident, b_in))
    e_out = jnp.sum(diffracted * e_in, axis=-1)
    b_out = jnp.sum(diffracted * b_in, axis=-1)
    degenerate = jnp.sum(b_in * b_in, axis=-1) == 0.0
    azimuthal = jnp.where(degenerate, 1.0 - cos2t_sq, e_out * e_out - b_out * b_out)
    return 0.5 * (1.0 + cos2t_sq - kahn * azimuthal)


def polarization_form(
    incident: Float[Array, "S 3"], polar_axis: Float[Array, "3"], kahn: Float[ArrayLike, ""]
) -> Float[Array, "S 3 3"]:
    """M (S, 3, 3) with ``polarization`` = 1/2 (1 + d^T M d) for unit diffracted d: the Kahn
    factor as a quadratic form in d, M = i i^T - K (E E^T - B B^T) (p parallel to i: the
    azimuthal term is 1 - (i.d)^2, M = i i^T - K (1 - i i^T)).  ``nbjax.fit`` differentiates M."""
    b_in = _unit(jnp.cross(polar_axis, incident))
    e_in = _unit(jnp.cross(incident, b_in))
    degenerate = (jnp.sum(b_in * b_in, axis=-1) == 0.0)[:, None, None]
    azimuthal = jnp.where(degenerate, jnp.eye(3) - _outer(incident), _outer(e_in) - _outer(b_in))
    return _outer(incident) - kahn * azimuthal


def _outer(u):
    """u u^T of each row of ``u`` (S, 3)."""
    return u[:, :, None] * u[:, None, :]


def _unit(v):
    """v/|v|, and zero for a zero vector (as C's unitize)."""
    n2 = jnp.sum(v * v, axis=-1, keepdims=True)
    zero = n2 == 0.0
    return jnp.where(zero, 0.0, v / jnp.sqrt(jnp.where(zero, 1.0, n2)))


def capture_fraction(
    diffracted: Float[Array, "#*batch 3"],
    odet: Float[Array, "3"],
    layer: Float[Array, "#*batch"],
    layer_step: Float[ArrayLike, ""],
    mu: Float[ArrayLike, ""],
) -> Float[Array, "*batch"]:
    """Fraction absorbed in sensor layer ``layer``: exp(-t dz mu/c) - exp(-(t+1) dz mu/c), c = d.o."""
    parallax = jnp.sum(diffracted * odet, axis=-1)
    depth = layer_step * mu / parallax
    return jnp.exp(-layer * depth) - jnp.exp(-(layer + 1) * depth)
