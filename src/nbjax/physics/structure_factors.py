"""Structure factor F_cell(h, k, l): nearest-hkl lookup or C's tricubic Lagrange interpolation.

The table is the C program's padded grid F[h - h_min, k - k_min, l - l_min] of shape
(h_range+1, k_range+1, l_range+1) (axes Nh Nk Nl, ``nbjax.axes``); indices outside [min, max]
take ``default_F``.  Elementwise over any leading axes ``*batch`` of the indices.
"""

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float

# Lagrange basis on the nodes -1, 0, 1, 2 (offsets from floor(h)): denominators prod(x_i - x_j)
_NODES = np.array([-1.0, 0.0, 1.0, 2.0])
_DENOMS = np.array([np.prod([_NODES[i] - _NODES[j] for j in range(4) if j != i]) for i in range(4)])


def _flat_index(idx, lo, shape):
    i = idx - jnp.asarray(lo)
    return (i[..., 0] * shape[1] + i[..., 1]) * shape[2] + i[..., 2]


def nearest(
    hkl: Float[Array, "*batch 3"],
    grid: Float[Array, "Nh Nk Nl"],
    lo: tuple[int, int, int],
    hi: tuple[int, int, int],
    default_F: Float[ArrayLike, ""],
) -> Float[Array, "*batch"]:
    """F at the nearest integer indices h0 = ceil(h - 0.5), or default_F off the table."""
    h0 = jnp.ceil(hkl - 0.5).astype(jnp.int32)
    inside = jnp.all((h0 >= jnp.asarray(lo)) & (h0 <= jnp.asarray(hi)), axis=-1)
    flat = jnp.where(inside, _flat_index(h0, lo, grid.shape), 0)
    return jnp.where(inside, jnp.take(grid.reshape(-1), flat), default_F)


def out_of_interpolation_range(
    hkl: Float[Array, "*batch 3"], lo: tuple[int, int, int], hi: tuple[int, int, int]
) -> Bool[Array, "*batch"]:
    """C's test for a 4-point stencil: h - 2 < h_min or h - h_min + 3 > h_range, any axis."""
    lo = jnp.asarray(lo, dtype=hkl.dtype)
    rng = jnp.asarray(hi, dtype=hkl.dtype) - lo + 1
    return jnp.any((hkl - lo + 3 > rng) | (hkl - 2 < lo), axis=-1)


def _lagrange_weights(t):
    """Weights (..., 4) of the cubic through nodes -1, 0, 1, 2 at offset t = h - floor(h)."""
    nodes = jnp.asarray(_NODES, dtype=t.dtype)
    diffs = t[..., None] - nodes
    w = []
    for i in range(4):
        others = [diffs[..., j] for j in range(4) if j != i]
        w.append(others[0] * others[1] * others[2] / _DENOMS[i])
    return jnp.stack(w, axis=-1)


def tricubic(
    hkl: Float[Array, "*batch 3"], grid: Float[Array, "Nh Nk Nl"], lo: tuple[int, int, int]
) -> Float[Array, "*batch"]:
    """C's polin3: tensor-product cubic Lagrange interpolation on the 4x4x4 nearest nodes.

    Callers must only use it where ``out_of_interpolation_range`` is False.
    """
    base = jnp.floor(hkl)
    t = hkl - base
    base = base.astype(jnp.int32) - 1 - jnp.asarray(lo)
    w = [_lagrange_weights(t[..., a]) for a in range(3)]
    flat_grid = grid.reshape(-1)
    shape = grid.shape
    offsets = np.arange(4)
    hi_ = base[..., 0, None] + offsets
    ki_ = base[..., 1, None] + offsets
    li_ = base[..., 2, None] + offsets

    def safe(i, n):  # indices are in range where used
        return jnp.clip(i, 0, n - 1)

    flat = (safe(hi_, shape[0])[..., :, None, None] * shape[1] + safe(ki_, shape[1])[..., None, :, None]) * shape[
        2
    ] + safe(li_, shape[2])[..., None, None, :]
    values = jnp.take(flat_grid, flat)
    return jnp.einsum("...ijk,...i,...j,...k->...", values, w[0], w[1], w[2])
