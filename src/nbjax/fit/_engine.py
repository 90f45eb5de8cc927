"""The compiled passes of a fit: model images, the loss, its gradient and the Fisher matrix.

theta (flat, unconstrained) -> per-parameter user values -> (Experiment, weights w, scale,
background) per image -> model pixels

    m_p = q_r(p) scale sum_s w_s I_s(p) + background [+ c_k + gx_k dx + gy_k dy]

(q_r: the factor of the pixel's reflection slot r, ``ReflectionFactors``, 1 without; the
bracket: the plane of its shoebox k, ``BackgroundPlanes``) over the usable pixels only (masked
pixels cost nothing: the pixel list holds only the pixels to fit, in tiles of ``tile``).
The Jacobian J = dm/dtheta of a tile comes from forward-mode derivatives of the per-source
images I_s: one tangent per global experiment value and ONE per component of a per-source
parameter (wavelengths, source angles), because source s's image depends only on source s's
entries; the weight, scale and background columns come from the I_s themselves.  Each tile adds

    loss += sum_p l(m_p, d_p),   g += J^T dl/dm,   F += J^T diag(Fisher weight) J

so the gradient and the Gauss-Newton / Fisher matrix cost one pass, with memory bounded by the
tile.  The planes' and reflection factors' columns have one to three entries per pixel and are
added sparsely (``_with_sparse``).  Restraints (Gaussian priors in user units) add their
terms afterwards.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int

from nbjax import kernel
from nbjax.experiment import Experiment
from nbjax.fit import _source_gradient as source_gradient
from nbjax.fit import _tangents as shared_lattice


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where each parameter's theta lives in the flat vector, for one image."""

    params: tuple  # AbstractParameter, shared ones first
    spans: tuple  # (start, stop) in the flat theta of each parameter (for this image)
    shapes: tuple  # theta shape of each parameter

    @property
    def slices(self):
        return tuple(slice(a, b) for a, b in self.spans)


@dataclasses.dataclass(frozen=True)
class Tangents:
    """Forward-mode tangents of the experiment parameters of one image: ``vectors`` (n_t, n)
    in flat theta space, and per parameter ``blocks[j]`` = (start, stop, per_source, tangent ids):
    a per-source parameter of shape (S, C) has one tangent per component c, whose source-s
    derivative is column start + s C + c; a global parameter has one tangent per value."""

    vectors: np.ndarray
    blocks: tuple


def tangents_for(layout: Layout, n_theta: int, n_sources: int) -> Tangents:
    vectors, blocks = [], []
    for p, (start, stop) in zip(layout.params, layout.spans, strict=True):
        if p.role != "experiment":
            continue
        flat = np.arange(start, stop)
        ids = []
        groups = flat.reshape(n_sources, -1).T if p.per_source else flat[:, None]
        for group in groups:
            v = np.zeros(n_theta)
            v[group] = 1.0
            ids.append(len(vectors))
            vectors.append(v)
        blocks.append((start, stop, p.per_source, tuple(ids)))
    return Tangents(np.array(vectors).reshape(-1, n_theta), tuple(blocks))


def split(theta: Float[Array, " n"], layout: Layout) -> list[Float[Array, "..."]]:
    return [theta[sl].reshape(shape) for sl, shape in zip(layout.slices, layout.shapes, strict=True)]


def linear_parts(
    reference: Experiment, layout: Layout, theta: Float[Array, " n"]
) -> tuple[Float[Array, " S"], Float[Array, ""], Float[Array, ""]]:
    """(weights (S,), scale, background) for flat theta."""
    w = reference.beam.weights / jnp.sum(reference.beam.weights)
    scale, background = jnp.ones((), theta.dtype), jnp.zeros((), theta.dtype)
    for p, t in zip(layout.params, split(theta, layout), strict=True):
        u = p.from_theta(t)
        if p.role == "weights":
            w = p.weights(reference, u)
        elif p.role == "scale":
            scale = u
        elif p.role == "background":
            background = u
    return w, scale, background


def plane_span(layout: Layout) -> tuple[int, int, int] | None:
    """(start, stop, values per shoebox) in theta of the per-shoebox background planes (c, gx,
    gy; or c alone), or None."""
    for p, span in zip(layout.params, layout.spans, strict=True):
        if p.role == "background_planes":
            return (*span, p.per_shoebox)
    return None


def factor_span(layout: Layout) -> tuple[int, int] | None:
    """(start, stop) in theta of the per-reflection intensity factors q_r
    (``ReflectionFactors``), or None."""
    for p, span in zip(layout.params, layout.spans, strict=True):
        if p.role == "reflection_factors":
            return span
    return None


def intensity_factor(layout: Layout, theta, r):
    """Per pixel the factor q_r of its reflection slot r (1 where r < 0 or without factors)."""
    span = factor_span(layout)
    if span is None:
        return jnp.ones(r.shape, theta.dtype)
    q = theta[span[0] : span[1]]
    return jnp.where(r >= 0, q[jnp.maximum(r, 0)], 1.0)


def _plane_rows(dx, dy, per: int):
    """The plane's design row per pixel: (1, dx, dy), or (1,)."""
    ones = jnp.ones_like(dx)
    return jnp.stack([ones, dx, dy] if per == 3 else [ones], axis=-1)


def plane_term(layout: Layout, theta, k, dx, dy):
    """Per pixel c_k + gx_k dx + gy_k dy of its shoebox k (0 outside every shoebox, k < 0)."""
    span = plane_span(layout)
    if span is None:
        return jnp.zeros(k.shape, theta.dtype)
    start, stop, per = span
    u = theta[start:stop].reshape(-1, per)
    return jnp.where(k >= 0, jnp.sum(u[jnp.maximum(k, 0)] * _plane_rows(dx, dy, per), axis=-1), 0.0)


def _dense_columns(layout: Layout, n: int) -> np.ndarray:
    """The theta indices whose Jacobian columns are dense: all but the background planes and
    the reflection factors, whose columns have one to three entries per pixel (its shoebox's,
    its reflection's) and are added sparsely."""
    sparse = np.zeros(n, bool)
    for span in (plane_span(layout), factor_span(layout)):
        if span is not None:
            sparse[span[0] : span[1]] = True
    return np.flatnonzero(~sparse)


def _sparse_columns(layout: Layout, k, dx, dy, r, bragg):
    """Per pixel its sparse Jacobian entries: (cols (T, C) theta indices, rows (T, C) dm/dtheta),
    the plane's (1, dx, dy) at start + per k + (0, 1, 2) and the reflection factor's
    dm/dq_r = scale sum_s w_s I_s (``bragg``) at start + r; rows are 0 where the pixel has no
    shoebox (k < 0) or no reflection slot (r < 0)."""
    cols, rows = [], []
    span = plane_span(layout)
    if span is not None:
        per = span[2]
        rows.append(jnp.where((k >= 0)[:, None], _plane_rows(dx, dy, per), 0.0))
        cols.append(span[0] + per * jnp.maximum(k, 0)[:, None] + jnp.arange(per)[None, :])
    span = factor_span(layout)
    if span is not None:
        rows.append(jnp.where(r >= 0, bragg, 0.0)[:, None])
        cols.append(span[0] + jnp.maximum(r, 0)[:, None])
    if not cols:
        return None
    return jnp.concatenate(cols, axis=1), jnp.concatenate(rows, axis=1)


def experiment(reference: Experiment, layout: Layout, theta: Float[Array, " n"]) -> Experiment:
    exp = reference
    for p, t in zip(layout.params, split(theta, layout), strict=True):
        if p.role == "experiment":
            exp = p.apply(exp, p.from_theta(t), reference)
    return exp


def default_tile(reference, n_tangents: int) -> int:
    """The kernel's tile for the primal and its tangents, at most 4096 pixels (the Jacobian
    of a tile is tile x parameters)."""
    return min(4096, kernel.default_tile(reference, copies=1 + n_tangents))


def pixel_tiles(
    mask, tile: int
) -> tuple[Int[np.ndarray, "tiles T"], Int[np.ndarray, "tiles T"], Bool[np.ndarray, "tiles T"]]:
    """Usable pixels as tiles: (fpix, spix, valid) each (n_tiles, tile), padded with the last
    usable pixel (valid False); no usable pixel: one tile of pixel (0, 0), all invalid."""
    spix, fpix = np.nonzero(np.asarray(mask))
    n = fpix.size
    if n == 0:  # no usable pixel (a still's panel without shoeboxes): one tile of invalid pixels, no cost
        zeros = np.zeros((1, tile), np.int32)
        return zeros, zeros.copy(), np.zeros((1, tile), bool)
    n_tiles = -(-n // tile)
    pad = n_tiles * tile - n
    valid = np.concatenate([np.ones(n, bool), np.zeros(pad, bool)])
    fpix = np.concatenate([fpix, np.full(pad, fpix[-1])]).astype(np.int32)
    spix = np.concatenate([spix, np.full(pad, spix[-1])]).astype(np.int32)
    return fpix.reshape(n_tiles, tile), spix.reshape(n_tiles, tile), valid.reshape(n_tiles, tile)


def _tile_model_and_jacobian(
    reference: Experiment,
    layout: Layout,
    tangents: Tangents,
    theta: Float[Array, " n"],
    fpix: Int[Array, " T"],
    spix: Int[Array, " T"],
    r: Int[Array, " T"],
    dtype,
) -> tuple[Float[Array, " T"], Float[Array, "T dense"], Float[Array, " T"]]:
    """(m (T,), J (T, n_dense), bragg (T,)) for one tile, without the background planes: J's
    columns are theta's ``_dense_columns``; bragg = scale sum_s w_s I_s, before the reflection
    factor q_r (``intensity_factor``) that multiplies it in m."""
    S = reference.beam.wavelengths.shape[0]

    def per_source(th):
        exp = experiment(reference, layout, th)
        return exp.model.per_source(exp, fpix, spix, dtype)

    vecs = jnp.asarray(tangents.vectors, dtype=theta.dtype)
    if vecs.shape[0] and shared_lattice.eligible(reference, layout):
        images, d_images = shared_lattice.images_and_tangents(
            lambda th: experiment(reference, layout, th), theta, vecs, fpix, spix, dtype
        )
    elif vecs.shape[0]:
        images, d_images = jax.vmap(lambda v: jax.jvp(per_source, (theta,), (v,)), out_axes=(None, 0))(vecs)
    else:
        images, d_images = per_source(theta), jnp.zeros((0, fpix.shape[0], S), dtype)

    dense = _dense_columns(layout, theta.shape[0])
    q = intensity_factor(layout, theta, r)
    w, scale, _ = linear_parts(reference, layout, theta)
    bragg = scale * (images @ w.astype(images.dtype))

    def lin(th_dense):
        return _combine(reference, layout, theta.at[dense].set(th_dense), images, q)

    m = lin(theta[dense])
    J = jax.jacfwd(lin)(theta[dense])  # (T, dense): weight, scale and background columns (experiment ones 0)
    if not tangents.blocks:
        return m, J, bragg
    weighted = d_images * (scale * w).astype(dtype) * q.astype(dtype)[:, None]  # (n_t, T, S): per-source columns
    pieces, at = [], 0
    for start, stop, per_source, ids in tangents.blocks:
        start, stop = (int(np.searchsorted(dense, x)) for x in (start, stop))  # dense columns
        pieces.append(J[:, at:start])
        if per_source:  # (T, S, C) -> columns start + s C + c
            pieces.append(jnp.stack([weighted[i] for i in ids], axis=-1).reshape(J.shape[0], -1))
        else:
            pieces.append(jnp.stack([jnp.sum(weighted[i], axis=-1) for i in ids], axis=-1))
        at = stop
    pieces.append(J[:, at:])
    return m, jnp.concatenate(pieces, axis=1), bragg


def _combine(
    reference: Experiment,
    layout: Layout,
    theta: Float[Array, " n"],
    images: Float[Array, "T S"],
    q: Float[Array, " T"],
) -> Float[Array, " T"]:
    """m = q_r scale sum_s w_s I_s + background per pixel (q: ``intensity_factor``)."""
    w, scale, background = linear_parts(reference, layout, theta)
    return q * scale * (images @ w.astype(images.dtype)) + background


def _tile_model(
    reference: Experiment,
    layout: Layout,
    theta: Float[Array, " n"],
    fpix: Int[Array, " T"],
    spix: Int[Array, " T"],
    r: Int[Array, " T"],
    dtype,
) -> Float[Array, " T"]:
    exp = experiment(reference, layout, theta)
    q = intensity_factor(layout, theta, r)
    return _combine(reference, layout, theta, exp.model.per_source(exp, fpix, spix, dtype), q)


@dataclasses.dataclass(frozen=True, eq=False)  # compared and hashed by identity (jit of its methods)
class _Engine:
    """The passes of a fit of ``layouts`` (one per image) over a flat theta of ``n_theta``
    values: ``value``, ``normal``, ``gradient`` and ``images`` of (theta, references, data);
    ``references`` are the starting Experiments, ``data`` per image (fpix, spix, valid, d,
    sigma, shoebox k, dx, dy, reflection slot r), each (n_tiles, tile)."""

    layouts: tuple
    n_theta: int
    n_sources: int
    loss: object
    dtype: object

    tangent_sets: list = dataclasses.field(init=False)  # Tangents of each image
    canonical: tuple | None = dataclasses.field(init=False)  # one layout for all images (``_canonical``)

    def __post_init__(self):  # made now, outside any trace (they hold device arrays)
        object.__setattr__(self, "tangent_sets", [tangents_for(p, self.n_theta, self.n_sources) for p in self.layouts])
        object.__setattr__(self, "canonical", _canonical(self.layouts, self.n_sources))

    def scan_image(self, ref, layout, tangents, theta, tiles, with_jacobian, with_fisher=True, sparse_fisher=False):
        n = theta.shape[0]

        dense = _dense_columns(layout, n)
        sparse = dense.size < n
        if sparse_fisher:
            return self._scan_sparse(ref, layout, tangents, theta, tiles, dense)

        def body(carry, tile):
            fpix, spix, valid, d, sigma, k, dx, dy, r = tile
            if with_jacobian:
                m, J, bragg = _tile_model_and_jacobian(ref, layout, tangents, theta, fpix, spix, r, self.dtype)
            else:
                m = _tile_model(ref, layout, theta, fpix, spix, r, self.dtype)
            m = (m + plane_term(layout, theta, k, dx, dy)).astype(self.dtype)
            if with_jacobian:
                J = J.astype(self.dtype)
            l, dl, fw = self.loss.terms(m, d, sigma)
            l = jnp.where(valid, l, 0.0)
            total = carry[0] + jnp.sum(l)
            if not with_jacobian:
                return (total,), m
            dl = jnp.where(valid, dl, 0.0)
            fw = jnp.where(valid, fw, 0.0)
            if not sparse:
                if not with_fisher:
                    return (total, carry[1] + J.T @ dl), m
                return (total, carry[1] + J.T @ dl, carry[2] + (J * fw[:, None]).T @ J), m
            cols, rows = _sparse_columns(layout, k, dx, dy, r, bragg)
            return (total, *_with_sparse(carry[1:], J, dense, cols, rows.astype(J.dtype), dl, fw, with_fisher)), m

        init = (jnp.zeros((), self.dtype),)
        if with_jacobian:
            init += (jnp.zeros((n,), self.dtype),) + ((jnp.zeros((n, n), self.dtype),) if with_fisher else ())
        return jax.lax.scan(body, init, tiles)

    def _scan_sparse(self, ref, layout, tangents, theta, tiles, dense):
        """The normal equations of one image without an n x n matrix: carry (loss, g (n,),
        Fd (n, n_dense): F's dense columns), and per pixel its sparse columns ``cols`` (T, C)
        with the weighted products w (T, C, C) of their entries (``sparse_normal``)."""
        n = theta.shape[0]

        def body(carry, tile):
            fpix, spix, valid, d, sigma, k, dx, dy, r = tile
            m, J, bragg = _tile_model_and_jacobian(ref, layout, tangents, theta, fpix, spix, r, self.dtype)
            m = (m + plane_term(layout, theta, k, dx, dy)).astype(self.dtype)
            J = J.astype(self.dtype)
            l, dl, fw = self.loss.terms(m, d, sigma)
            total = carry[0] + jnp.sum(jnp.where(valid, l, 0.0))
            dl = jnp.where(valid, dl, 0.0)
            fw = jnp.where(valid, fw, 0.0)
            Fd = carry[2].at[dense].add((J * fw[:, None]).T @ J)
            found = _sparse_columns(layout, k, dx, dy, r, bragg)
            if found is None:
                cols = jnp.zeros((fpix.shape[0], 0), jnp.int32)
                w = jnp.zeros((fpix.shape[0], 0, 0), self.dtype)
                return (total, carry[1].at[dense].add(J.T @ dl), Fd), (m, cols, w)
            cols, rows = found
            rows = rows.astype(J.dtype)
            (g,) = _with_sparse((carry[1],), J, dense, cols, rows, dl, fw, False)
            for c in range(cols.shape[1]):
                Fd = Fd.at[cols[:, c]].add((fw * rows[:, c])[:, None] * J)
            w = fw[:, None, None] * rows[:, :, None] * rows[:, None, :]
            return (total, g, Fd), (m, cols.astype(jnp.int32), w)

        init = (jnp.zeros((), self.dtype), jnp.zeros((n,), self.dtype), jnp.zeros((n, dense.size), self.dtype))
        return jax.lax.scan(body, init, tiles)

    def sparse_normal(self, theta, refs, data):
        """(loss, g, pieces): the Fisher matrix as per-image pieces (idx: the image's theta
        indices in the full theta, dense: its dense columns (local), Fd (n_local, n_dense),
        cols (tiles, T, C) local, w (tiles, T, C, C)); ``sparse_matrix`` assembles them.  Its
        memory and cost follow the pixels, not n^2."""
        n = theta.shape[0]
        if self.canonical is not None and _same_shapes(refs) and _same_shapes(data):
            layout, tangents, idx = self.canonical
            dense = _dense_columns(layout, idx.shape[1])
            carry, ys = jax.vmap(lambda th, ref, tiles: self._scan_sparse(ref, layout, tangents, th, tiles, dense))(
                theta[idx], _stacked(refs), _stacked(data)
            )
            g = jnp.zeros((n,), self.dtype).at[idx].add(carry[1])
            pieces = [(idx[i], dense, carry[2][i], ys[1][i], ys[2][i]) for i in range(idx.shape[0])]
            return jnp.sum(carry[0]), g, pieces
        total, g, pieces = jnp.zeros((), self.dtype), jnp.zeros((n,), self.dtype), []
        for i in range(len(self.layouts)):
            dense = _dense_columns(self.layouts[i], n)
            carry, ys = self._scan_sparse(refs[i], self.layouts[i], self.tangent_sets[i], theta, data[i], dense)
            total, g = total + carry[0], g + carry[1]
            pieces.append((jnp.arange(n), dense, carry[2], ys[1], ys[2]))
        return total, g, pieces

    def per_image(self, theta, refs, data, with_jacobian, with_fisher=True):
        """Carry sums (loss[, g[, F]]) of every image in the full theta space, and the model
        values per image.  Images of one static shape and one parameter layout are vmapped."""
        n = theta.shape[0]
        if self.canonical is not None and _same_shapes(refs) and _same_shapes(data):
            layout, tangents, idx = self.canonical
            carry, m = jax.vmap(
                lambda th, ref, tiles: self.scan_image(ref, layout, tangents, th, tiles, with_jacobian, with_fisher)
            )(theta[idx], _stacked(refs), _stacked(data))
            sums = [jnp.sum(carry[0])]
            if with_jacobian:
                sums.append(jnp.zeros((n,), self.dtype).at[idx].add(carry[1]))
                if with_fisher:
                    sums.append(jnp.zeros((n, n), self.dtype).at[idx[:, :, None], idx[:, None, :]].add(carry[2]))
            return tuple(sums), [m[i] for i in range(len(self.layouts))]
        outs = [
            self.scan_image(refs[i], self.layouts[i], self.tangent_sets[i], theta, data[i], with_jacobian, with_fisher)
            for i in range(len(self.layouts))
        ]
        sums = tuple(sum(o[0][k] for o in outs) for k in range(len(outs[0][0])))
        return sums, [o[1] for o in outs]

    def value(self, theta, refs, data):
        return self.per_image(theta, refs, data, False)[0][0]

    def normal(self, theta, refs, data):
        return self.per_image(theta, refs, data, True)[0]

    def gradient(self, theta, refs, data):
        """(loss, g) in one pass over the tiles: by the written-out adjoint of
        ``_source_gradient`` where it applies, else by reverse mode inside each tile; the cost
        is independent of the parameter count either way."""
        total, g = jnp.zeros((), self.dtype), jnp.zeros_like(theta)
        for i in range(len(self.layouts)):
            ref, layout = refs[i], self.layouts[i]
            if source_gradient.eligible(ref, layout):
                l_i, g_i = self._source_pass(ref, layout, theta, data[i])
            else:
                l_i, g_i = self._reverse_pass(ref, layout, theta, data[i])
            total, g = total + l_i, g + g_i
        return total, g

    def _source_pass(self, ref, layout, theta, tiles):
        def beam_map(th):
            w, scale, background = linear_parts(ref, layout, th)
            exp = experiment(ref, layout, th)
            return source_gradient.beam_values(exp, w, scale, background), exp

        b, b_vjp, exp = jax.vjp(beam_map, theta, has_aux=True)

        def body(carry, tile):
            fpix, spix, valid, d, sigma = tile[:5]
            l, cot = source_gradient.tile_terms(exp, b, fpix, spix, valid, d, sigma, self.loss, self.dtype)
            return (
                carry[0] + l.astype(carry[0].dtype),
                jax.tree.map(lambda a, b: a + b.astype(a.dtype), carry[1], cot),
            ), None

        init = (jnp.zeros((), self.dtype), jax.tree.map(jnp.zeros_like, b))
        (l_i, cot), _ = jax.lax.scan(body, init, _split_tiles(tiles, ref.samples_per_pixel))
        (g_i,) = b_vjp(cot)
        return l_i, g_i.astype(theta.dtype)

    def _reverse_pass(self, ref, layout, theta, tiles):
        def body(carry, tile):
            fpix, spix, valid, d, sigma, k, dx, dy, r = tile

            def tile_loss(th):
                m = _tile_model(ref, layout, th, fpix, spix, r, self.dtype) + plane_term(layout, th, k, dx, dy)
                m = m.astype(self.dtype)
                return jnp.sum(jnp.where(valid, self.loss.terms(m, d, sigma)[0], 0.0))

            l, g_tile = jax.value_and_grad(tile_loss)(theta)
            return (carry[0] + l, carry[1] + g_tile.astype(carry[1].dtype)), None

        (l_i, g_i), _ = jax.lax.scan(body, (jnp.zeros((), self.dtype), jnp.zeros_like(theta)), tiles)
        return l_i, g_i

    def images(self, theta, refs, data):
        return [m.reshape(-1) for m in self.per_image(theta, refs, data, False)[1]]


@functools.lru_cache(maxsize=32)
def make_passes(layouts, n_theta, n_sources, loss, dtype):
    """Jitted functions of (theta, references, data) for a list of images (``_Engine``):

    ``value`` -> loss; ``normal`` -> (loss, g, F); ``gradient`` -> (loss, g); ``images`` -> model
    pixel values per image (flat over the tiles).  Cached: fits with the same parameters, images
    and loss reuse the compiled passes.
    """
    engine = _Engine(layouts, n_theta, n_sources, loss, dtype)
    jit = functools.partial(jax.jit, compiler_options=kernel.compiler_options())
    return Passes(
        jit(engine.value),
        jit(engine.normal),
        jit(engine.gradient),
        jit(engine.images),
        engine.value,
        engine.normal,
        engine.gradient,
        jit(engine.sparse_normal),
    )


SOURCE_TILE_SAMPLES = 1 << 16  # the adjoint pass's samples per tile: its per-sample derivatives stay in cache


def _with_sparse(carry, J, dense, cols, rows, dl, fw, with_fisher):
    """(g, F) of a tile with sparse columns (``_sparse_columns``: background planes, reflection
    factors): the dense columns J as usual, each pixel's few sparse entries ``rows`` at theta
    ``cols`` added where they are (its shoebox, its reflection), so the cost does not grow with
    the number of shoeboxes or reflections."""
    g = carry[0].at[dense].add(J.T @ dl).at[cols].add(dl[:, None] * rows)
    if not with_fisher:
        return (g,)
    F = carry[1].at[dense[:, None], dense[None, :]].add((J * fw[:, None]).T @ J)
    for c in range(cols.shape[1]):
        cross = (fw * rows[:, c])[:, None] * J  # (T, dense): d m/d sparse_c times d m/d dense, weighted
        F = F.at[cols[:, c][:, None], dense[None, :]].add(cross).at[dense[None, :], cols[:, c][:, None]].add(cross)
        for c2 in range(cols.shape[1]):
            F = F.at[cols[:, c], cols[:, c2]].add(fw * rows[:, c] * rows[:, c2])
    return g, F


def _split_tiles(tiles, samples_per_pixel):
    """Tiles (n, tile) split into (n k, tile / k) with k a power of two, until a tile holds at
    most SOURCE_TILE_SAMPLES samples (or its length is odd)."""
    n, tile = tiles[0].shape
    k = 1
    while tile % (2 * k) == 0 and (tile // k) * samples_per_pixel > SOURCE_TILE_SAMPLES:
        k *= 2
    return jax.tree.map(lambda x: x.reshape(n * k, tile // k), tiles)


def _stacked(items):
    """Pytrees of one structure as one pytree with a leading axis over the items."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *items)


def _canonical(layouts, n_sources):
    """When every image has the same parameters (shared ones first, then its own), one layout
    over a local theta (shared, then own) and the index (B, n_local) of each image's local theta
    in the full theta; None otherwise."""
    first = layouts[0]
    if len(layouts) < 2 or any(layout.params != first.params or layout.shapes != first.shapes for layout in layouts):
        return None
    spans, at = [], 0
    for a, b in first.spans:
        spans.append((at, at + b - a))
        at += b - a
    local = Layout(first.params, tuple(spans), first.shapes)
    idx = np.stack([np.concatenate([np.arange(a, b) for a, b in layout.spans]) for layout in layouts])
    return local, tangents_for(local, at, n_sources), jnp.asarray(idx)


def _same_shapes(items) -> bool:
    """True when the pytrees have one structure and equal leaf shapes and dtypes (vmappable)."""
    first = jax.tree.structure(items[0])
    leaves0 = jax.tree.leaves(items[0])
    for item in items[1:]:
        if jax.tree.structure(item) != first:
            return False
        if any(
            np.shape(a) != np.shape(b) or a.dtype != b.dtype
            for a, b in zip(jax.tree.leaves(item), leaves0, strict=True)
        ):
            return False
    return True


@dataclasses.dataclass(frozen=True)
class Passes:
    """The compiled passes, and the traceable ``value``/``normal`` for use inside another jit
    (the compiler options may only be given to a top-level jit)."""

    value: object
    normal: object
    gradient: object  # (loss, g) without the Fisher matrix
    images: object
    traceable_value: object
    traceable_normal: object
    traceable_gradient: object
    sparse_normal: object  # (loss, g, pieces of F): ``sparse_matrix`` makes F (scipy.sparse)


def sparse_matrix(n: int, pieces):
    """F (n, n) as a scipy.sparse CSR matrix from ``sparse_normal``'s pieces: every image's
    dense columns (and their transposes outside the dense rows) and its pixels' sparse-column
    products (duplicates summed)."""
    import scipy.sparse

    rows, cols, vals = [], [], []
    for idx, dense, Fd, pc, w in pieces:
        idx, dense, Fd = np.asarray(idx), np.asarray(dense), np.asarray(Fd)
        local = np.arange(Fd.shape[0])
        r, c = np.meshgrid(local, dense, indexing="ij")
        keep = Fd != 0
        rows.append(idx[r[keep]])
        cols.append(idx[c[keep]])
        vals.append(Fd[keep])
        outside = keep & ~np.isin(local, dense)[:, None]  # the transposed block: sparse rows x dense cols
        rows.append(idx[c[outside]])
        cols.append(idx[r[outside]])
        vals.append(Fd[outside])
        pc, w = np.asarray(pc), np.asarray(w)
        if pc.shape[-1]:
            a = np.broadcast_to(pc[..., :, None], w.shape)
            b = np.broadcast_to(pc[..., None, :], w.shape)
            nz = w != 0
            rows.append(idx[a[nz]])
            cols.append(idx[b[nz]])
            vals.append(w[nz])
    F = scipy.sparse.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    return F.tocsr()
