"""nanoBragg's curved detector (``-curved_det``): every pixel at the same distance from the sample.

The planar pixel position p is replaced by the point at ``distance`` along the beam, rotated
about sdet by p_y/distance and then about fdet by p_z/distance (lab Y and Z components of the
planar position), which places pixels on a sphere for a beam along x (the MOSFLM frame).
Golden case: curved-detector.
"""

import jax.numpy as jnp
from jaxtyping import Array, Float

from nbjax.experiment import Detector
from nbjax.physics.rotations import rotate_axis


def curved_positions(pos: Float[Array, "*batch 3"], det: Detector) -> Float[Array, "*batch 3"]:
    """(..., 3) planar positions (m) -> positions on the sphere of radius ``distance``."""
    distance = jnp.dot(det.pix0, det.odet) / det.ratio
    start = jnp.broadcast_to(distance * det.beam, pos.shape)
    turned = rotate_axis(start, det.sdet, pos[..., 1:2] / distance, jnp)
    return rotate_axis(turned, det.fdet, pos[..., 2:3] / distance, jnp)
