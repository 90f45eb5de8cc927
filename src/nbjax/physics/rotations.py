"""Rotations of 3-vectors, written once for NumPy (host set-up) and jax.numpy (gradients).

Each function takes the array namespace ``xp`` so the C program's set-up arithmetic runs in
float64 NumPy for parity and the very same formulas run under ``jax.grad`` in the Python API.
Vectors are length-3 arrays (or ``(..., 3)`` stacks); NumPy in, NumPy out (the annotations
accept both kinds of array: axis names in ``nbjax.axes``).
"""

from types import ModuleType

import numpy as np
from jaxtyping import Array, ArrayLike, Float

# what ``xp`` computes with: NumPy arrays (xp = np) or JAX arrays and tracers (xp = jnp)
XpArray = Array | np.ndarray


def rotate_xyz(
    v: Float[XpArray, "*batch 3"],
    rotx: Float[ArrayLike, ""],
    roty: Float[ArrayLike, ""],
    rotz: Float[ArrayLike, ""],
    xp: ModuleType = np,
) -> Float[XpArray, "*batch 3"]:
    """Rotate ``v`` about lab x, then y, then z (radians), as the C ``rotate()``.

    x: (y, z) -> (y cos - z sin, y sin + z cos); y: (x, z) -> (x cos + z sin, -x sin + z cos);
    z: (x, y) -> (x cos - y sin, x sin + y cos).
    """
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    cx, sx = xp.cos(rotx), xp.sin(rotx)
    y, z = y * cx - z * sx, y * sx + z * cx
    cy, sy = xp.cos(roty), xp.sin(roty)
    x, z = x * cy + z * sy, -x * sy + z * cy
    cz, sz = xp.cos(rotz), xp.sin(rotz)
    x, y = x * cz - y * sz, x * sz + y * cz
    return xp.stack([x, y, z], axis=-1)


def rotate_axis(
    v: Float[XpArray, "#*batch 3"],
    axis: Float[XpArray, "#*batch 3"],
    phi: Float[ArrayLike, ""] | Float[XpArray, "#*batch 1"],
    xp: ModuleType = np,
) -> Float[XpArray, "*batch 3"]:
    """Rotate ``v`` by ``phi`` radians about the unit vector ``axis`` (Rodrigues, as C).

    v' = axis (axis.v)(1 - cos phi) + v cos phi + (axis x v) sin phi

    ``phi``: one angle, or one per vector with a trailing axis of 1; v, axis and phi broadcast.
    """
    c, s = xp.cos(phi), xp.sin(phi)
    ax, ay, az = axis[..., 0:1], axis[..., 1:2], axis[..., 2:3]
    vx, vy, vz = v[..., 0:1], v[..., 1:2], v[..., 2:3]
    dot = (ax * vx + ay * vy + az * vz) * (1.0 - c)
    # axis x v, written term by term as C does (keeps the signs of zeros C prints)
    cross = xp.concatenate([-az * vy + ay * vz, az * vx - ax * vz, -ay * vx + ax * vy], axis=-1)
    return axis * dot + v * c + cross * s


def axis_angle_matrix(
    axis: Float[XpArray, "3"], phi: Float[ArrayLike, ""], xp: ModuleType = np
) -> Float[XpArray, "3 3"]:
    """3x3 matrix R with R @ v == rotate_axis(v, axis, phi)."""
    return xp.swapaxes(rotate_axis(xp.eye(3, dtype=xp.result_type(phi, float)), axis, phi, xp), -1, -2)


def unitize(
    v: Float[XpArray, "*batch 3"], xp: ModuleType = np
) -> tuple[Float[XpArray, "*batch 3"], Float[ArrayLike, "*batch"]]:
    """(v/|v|, |v|); a zero vector stays zero, as in C.  (|v| of one NumPy vector is a NumPy
    scalar, not an array.)"""
    mag = xp.sqrt(xp.sum(v * v, axis=-1, keepdims=True))
    safe = xp.where(mag == 0.0, 1.0, mag)
    return xp.where(mag == 0.0, 0.0, v / safe), mag[..., 0]


def cdot(x: Float[XpArray, "3"], y: Float[XpArray, "3"]) -> float:
    """C's dot_product of two 3-vectors, summed left to right (np.dot may round differently,
    which shows in printed near-zero values)."""
    return float(x[0] * y[0] + x[1] * y[1] + x[2] * y[2])
