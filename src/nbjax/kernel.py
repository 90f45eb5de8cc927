"""The pixel kernel: one pure function from an Experiment to an image.

For each pixel the C program sums, over sensor layers t, sub-pixels q, sources s, phi steps
and mosaic domains (in that loop order), I += F_cell^2 F_latt^2 with the fractional Miller
indices h = A (d - i)/lambda (A: rotated direct-space cell, d: diffracted unit vector, i:
incident unit vector).  Then pixel = r_e^2 fluence I / steps times the capture fraction,
polarization and solid angle (``quirks.py`` says which samples C takes them from).

Pixels are processed in tiles of ``tile`` pixels (``lax.map``), so peak memory depends on the
tile, not the detector; inside a tile every other loop is an array axis.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from nbjax import quirks
from nbjax.experiment import R_E_SQR, Experiment
from nbjax.physics import structure_factors as sf
from nbjax.physics.detector_response import capture_fraction, polarization, solid_angle
from nbjax.physics.lattice import lattice_amplitude, lattice_sq
from nbjax.physics.rotations import rotate_axis

# sub-pixel x source x orientation samples per tile: bounds peak memory (about 100 bytes each)
CPU_TILE_EVALS = 1 << 20
ACCELERATOR_TILE_EVALS = 1 << 24


def orientation_matrices(crystal, dtype, first_loop=False):
    """(P*M, 3, 3) rotated cells, phi outer and mosaic inner; rows are a, b, c (m).

    a = U_m R(spindle, phi_k) a0, as C applies the mosaic rotation after the phi rotation.
    ``first_loop`` uses the angles of C's first phi loop (quirk D19).
    """
    cell = jnp.stack([crystal.a, crystal.b, crystal.c]).astype(dtype)  # (3 vectors, 3)
    phi = (crystal.phi_first if first_loop else crystal.phi).astype(dtype)
    rotated = rotate_axis(cell[None, :, :], crystal.spindle.astype(dtype), phi[:, None, None], jnp)  # (P, 3, 3)
    umats = crystal.mosaic_umats.astype(dtype)
    mats = jnp.einsum("mij,pvj->pmvi", umats, rotated)
    return mats.reshape(-1, 3, 3)


def _rounded(product):
    """``product`` rounded to its dtype before it is summed, as C sums: XLA fuses a product
    into the following addition (a fused multiply-add), which moves a pixel that C puts
    exactly on the direct beam 1e-19 m off it.  The select is the identity (NaN stays NaN)
    but keeps the fusion from seeing the multiply."""
    return jnp.where(jnp.isnan(product), jnp.nan, product)


def _subpixel_positions(det, fpix, spix, dtype):
    """Sub-pixel centres in the lab frame, (T, L, Q, 3), C order: layer, slow sub, fast sub."""
    os = det.oversample
    ss, ff = np.meshgrid(np.arange(os), np.arange(os), indexing="ij")
    Fdet = det.fast_positions[fpix[:, None] * os + ff.reshape(-1)[None, :]]  # (T, Q)
    Sdet = det.slow_positions[spix[:, None] * os + ss.reshape(-1)[None, :]]
    Odet = jnp.arange(det.layers, dtype=dtype) * det.layer_step  # (L,)
    pix0 = det.pix0_offset + _rounded(det.distance * det.pivot_axis)  # Detector.pix0, unfused
    pos = (
        _rounded(Fdet[:, None, :, None] * det.fdet)
        + _rounded(Sdet[:, None, :, None] * det.sdet)
        + _rounded(Odet[None, :, None, None] * det.odet)
        + pix0
    )
    if det.curved:
        pos = quirks.curved_detector_positions(pos, det)
    return pos


def _pixel_samples(exp: Experiment, fpix, spix, dtype, first_loop=False):
    """Everything per evaluation for a tile of pixels: hkl, F_latt^2 and the factors.

    Geometry and Miller indices are computed in float64; the lattice transform, structure
    factors and sums in ``dtype``, from h reduced to its nearest integer (so float32 keeps the
    peak shapes).  ``first_loop``: the tile is the run's first pixel, whose first executed phi
    loop C renders with the true phi = 0 orientation (quirk D19).
    """
    det, beam, xtal = exp.detector, exp.beam, exp.crystal
    geo = jnp.float64
    pos = _subpixel_positions(det, fpix, spix, geo)
    airpath = jnp.linalg.norm(pos, axis=-1)  # (T, L, Q)
    diffracted = _unit(pos, airpath)
    close_distance = jnp.dot(det.pix0, det.odet)
    omega = solid_angle(airpath, close_distance, det.pixel_size, det.point_pixel)
    if det.thick:
        layer = jnp.arange(det.layers, dtype=geo)[None, :, None]
        capture = capture_fraction(diffracted, det.odet, layer, det.layer_step, det.mu)
    else:
        capture = jnp.ones_like(omega)
    directions = _unit(beam.directions, jnp.linalg.norm(beam.directions, axis=-1))
    incident = -directions  # (S, 3)
    inv_lambda = 1.0 / beam.wavelengths  # (S,)
    scattering = (diffracted[:, :, :, None, :] - incident) * inv_lambda[:, None]  # (T, L, Q, S, 3)
    stol_sq = 0.25 * lax.stop_gradient(jnp.sum(scattering * scattering, axis=-1))  # (sin(theta)/lambda)^2
    dmin_skip = (exp.dmin > 0.0) & (stol_sq > 0.0) & (4.0 * exp.dmin * exp.dmin * stol_sq > 1.0)  # d < dmin
    polar = _polarization_samples(exp, incident, diffracted, dmin_skip)
    hkl = _miller_indices(orientation_matrices(xtal, geo), diffracted, incident, inv_lambda)
    if first_loop:
        hkl_first = _miller_indices(orientation_matrices(xtal, geo, True), diffracted, incident, inv_lambda)
        group = jnp.arange(np.prod(dmin_skip.shape[1:])).reshape(dmin_skip.shape[1:]) == quirks.first_unskipped_index(dmin_skip)[:, None, None, None]
        hkl = jnp.where(group[..., None, None], hkl_first, hkl)
    if xtal.shape == "square":
        frac = (hkl - jnp.round(hkl)).astype(dtype)
        f_latt_sq = lattice_sq(frac, xtal.N.astype(dtype), xtal.shape, xtal.fudge.astype(dtype), xtal.recip.astype(dtype))
    else:  # cheap, and the tophat threshold must fall where C's double precision puts it
        f_latt_sq = lattice_sq(hkl, xtal.N, xtal.shape, xtal.fudge, xtal.recip, c_sinc3=not exp.physical).astype(dtype)
    cast = lambda x: x.astype(dtype)  # noqa: E731
    return dict(hkl=hkl, f_latt_sq=f_latt_sq, omega=cast(omega), capture=cast(capture), polar=cast(polar), dmin_skip=dmin_skip, pos=pos, stol_sq=stol_sq)


def _polarization_samples(exp, incident, diffracted, dmin_skip):
    """Polarization per (T, L, Q, S) sample where it is used per sample (physical mode,
    -oversample_polar), else only C's cached value, at the first sample not skipped by dmin,
    as (T, 1, 1, 1)."""
    beam = exp.beam
    per_sample = exp.physical or exp.oversample_polar
    if beam.nopolar and not (exp.oversample_polar and not exp.physical):
        return jnp.ones((dmin_skip.shape[0], 1, 1, 1), diffracted.dtype)
    if per_sample:
        return polarization(incident, diffracted[:, :, :, None, :], beam.polar_vector, beam.kahn)
    L, Q, S = dmin_skip.shape[1:]
    first = quirks.first_unskipped_index(dmin_skip)
    t = jnp.arange(first.shape[0])
    d = diffracted[t, first // (Q * S), (first // S) % Q]
    computed = jnp.any(~dmin_skip.reshape(first.shape[0], -1), axis=1)  # C leaves it 0 otherwise
    polar = jnp.where(computed, polarization(incident[first % S], d, beam.polar_vector, beam.kahn), 0.0)
    return polar[:, None, None, None]


def _unit(v, magnitude):
    """v / |v| by true division per component, as C's unitize: XLA turns a division by a
    broadcast magnitude into a product with its reciprocal, which can leave a vector on the
    direct beam 1 ulp off the beam direction (and h off 0 there)."""
    return jnp.stack([v[..., k] / magnitude for k in range(3)], axis=-1)


def _miller_indices(mats, diffracted, incident, inv_lambda):
    """h = A S with S = (d - i)/lambda formed first, as C does: (T, L, Q, S, K, 3).

    On the direct beam d == i, so S and h are exactly 0 (C's sinc3 gives 1 there); a pixel
    1 ulp off the beam keeps its tiny S, which A d - A i would round away."""
    scattering = (diffracted[:, :, :, None, :] - incident) * inv_lambda[:, None]
    return jnp.einsum("kij,tlqsj->tlqski", mats, scattering)


def _f_cell(exp, hkl, use_interp):
    sfac = exp.structure_factors
    if sfac.grid is None:
        return jnp.broadcast_to(sfac.default_F, hkl.shape[:-1])
    near = sf.nearest(hkl, sfac.grid, sfac.lo, sfac.hi, sfac.default_F)
    if not sfac.interpolate:
        return near
    return jnp.where(use_interp, sf.tricubic(hkl, sfac.grid, sfac.lo), near)


def _squared_amplitudes(exp, s, use_interp, dtype):
    """x = F_cell^2 F_latt^2 per sample, 0 where dmin skips it."""
    f_cell = _f_cell(exp, s["hkl"], use_interp).astype(dtype)
    return jnp.where(s["dmin_skip"][..., None], 0.0, f_cell * f_cell * s["f_latt_sq"]), f_cell


def _reaches_f_cell(exp, s):
    """Evaluations on which C gets as far as the structure factor (not skipped by dmin, or by
    F_latt == 0 without water background)."""
    skipped = s["dmin_skip"][..., None] | ((s["f_latt_sq"] == 0.0) & (exp.background == 0.0))
    return ~skipped


def _tile_first_out_of_range(exp: Experiment, fpix, spix, dtype):
    """Per pixel, the first evaluation index at which C's interpolation range test fails
    (the number of evaluations when it never does)."""
    s = _pixel_samples(exp, fpix, spix, dtype)
    sfac = exp.structure_factors
    oor = sf.out_of_interpolation_range(s["hkl"], sfac.lo, sfac.hi) & _reaches_f_cell(exp, s)
    flat = oor.reshape(oor.shape[0], -1)
    return jnp.where(jnp.any(flat, axis=1), jnp.argmax(flat, axis=1), flat.shape[1])


def _tile_pixels(exp: Experiment, fpix, spix, interp_stop, dtype, first_loop=False):
    """(pixel values, solid-angle sums) for a tile; interp_stop = (imgidx, eval) of C's first
    out-of-range interpolation, before which evaluations are interpolated."""
    s = _pixel_samples(exp, fpix, spix, dtype, first_loop)
    hkl = s["hkl"]
    n_eval = int(np.prod(hkl.shape[1:-1]))
    imgidx = spix * exp.detector.fpixels + fpix
    eval_idx = jnp.arange(n_eval).reshape(hkl.shape[1:-1])
    use_interp = (imgidx[:, None, None, None, None] < interp_stop[0]) | (
        (imgidx[:, None, None, None, None] == interp_stop[0]) & (eval_idx < interp_stop[1])
    )
    x, _ = _squared_amplitudes(exp, s, use_interp, dtype)
    if exp.physical:
        intensity = _physical_sum(exp, x, s)
    else:
        accumulated, factor = quirks.c_pixel_sum(exp, x, s, _reaches_f_cell(exp, s))
        intensity = accumulated / exp.steps * factor
    value = (R_E_SQR * exp.beam.fluence).astype(dtype) * intensity
    omega_sum = quirks.c_solid_angle_sum(exp, s["omega"])
    return value, omega_sum


@jax.jit
def pixel_trace(exp: Experiment, fpix, spix):
    """What C's -printout prints for pixels (fpix, spix): the last sample's stol (1/m), sub-pixel
    position (m), hkl, F_cell and signed F_latt, the accumulated I, the cached polarization,
    solid angle and capture fraction, and the last rotated cell (m)."""
    dtype = jnp.float64
    s = _pixel_samples(exp, fpix, spix, dtype)
    hkl = s["hkl"]
    x, f_cell = _squared_amplitudes(exp, s, jnp.asarray(True), dtype)
    accumulated, _ = quirks.c_pixel_sum(exp, x, s, _reaches_f_cell(exp, s))
    last = hkl.reshape(hkl.shape[0], -1, 3)[:, -1]
    xtal = exp.crystal
    return dict(
        stol=jnp.sqrt(s["stol_sq"].reshape(hkl.shape[0], -1)[:, -1]),
        pos=s["pos"][:, -1, -1],
        hkl=last,
        f_cell=f_cell.reshape(hkl.shape[0], -1)[:, -1],
        f_latt=lattice_amplitude(last, xtal.N, xtal.shape, xtal.fudge, xtal.recip, c_sinc3=not exp.physical),
        I=accumulated,
        polar=quirks.first_unskipped_polar(s["polar"], s["dmin_skip"]),  # (T,1,1,1) already cached
        omega=s["omega"][:, 0, 0],
        capture=s["capture"][:, -1, 0],
        cell=orientation_matrices(xtal, dtype)[-1],
    )


def _physical_sum(exp: Experiment, x, s):
    """Intended physics: every sample carries its own solid angle, polarization and capture;
    sources are weighted; sensor layers add.  Mean over sub-pixels and orientations."""
    w = exp.beam.weights / jnp.sum(exp.beam.weights)
    per_source = exp.background + jnp.mean(x, axis=-1)  # (T, L, Q, S)
    factors = s["omega"][..., None] * s["capture"][..., None] * s["polar"]
    weighted = jnp.sum(per_source * factors * w, axis=-1)  # (T, L, Q)
    return jnp.mean(jnp.sum(weighted, axis=1), axis=-1)


def default_tile(exp: Experiment) -> int:
    """Pixels per tile so one tile holds about 1M samples on CPU, 16M on an accelerator."""
    per_pixel = exp.detector.layers * exp.detector.oversample**2 * exp.beam.wavelengths.shape[0] * exp.crystal.phi.shape[0] * exp.crystal.mosaic_umats.shape[0]
    budget = CPU_TILE_EVALS if jax.default_backend() == "cpu" else ACCELERATOR_TILE_EVALS
    tile = max(16, budget // max(per_pixel, 1))
    return int(min(tile, budget // 16))


class RoiWindow(NamedTuple):
    """The rendered rectangle: first fast/slow pixel and its size.  Flat index k (slow-major,
    C order) is pixel (x0 + k % nf, y0 + k // nf)."""

    x0: int
    y0: int
    nf: int
    ns: int

    @classmethod
    def of(cls, exp: Experiment) -> "RoiWindow":
        xmin, xmax, ymin, ymax = exp.roi
        d = exp.detector
        x0, y0 = max(xmin, 0), max(ymin, 0)
        return cls(x0, y0, max(min(xmax, d.fpixels - 1) + 1 - x0, 0), max(min(ymax, d.spixels - 1) + 1 - y0, 0))

    @property
    def n(self) -> int:
        return self.nf * self.ns

    def pixel(self, k):
        return self.x0 + k % self.nf, self.y0 + k // self.nf

    def mask_values(self, mask):
        """Rendered (non-zero) mask pixels over the window, flat in C order; None: no mask."""
        if mask is None:
            return None
        return jnp.asarray(mask)[self.y0 : self.y0 + self.ns, self.x0 : self.x0 + self.nf].reshape(-1) != 0


def _map_tiles_impl(exp, starts, interp_stop, window, tile, dtype, first_oor=False, first_loop=False, remat=True):
    """lax.map over tiles of ``tile`` consecutive ROI pixels starting at ``starts``; ``remat``
    recomputes each tile in the backward pass (bounded memory under jax.grad)."""

    def body(start):
        k = jnp.minimum(start + jnp.arange(tile, dtype=jnp.int32), window.n - 1)
        f, s_ = window.pixel(k)
        if first_oor:
            return _tile_first_out_of_range(exp, f, s_, dtype)
        tile_fn = lambda e, f, s_: _tile_pixels(e, f, s_, interp_stop, dtype, first_loop)  # noqa: E731
        return (jax.checkpoint(tile_fn) if remat else tile_fn)(exp, f, s_)

    return lax.map(body, starts)


_STATIC = ("window", "tile", "dtype", "first_oor", "first_loop", "remat")
# XLA:CPU (jaxlib 0.10) hands small reductions to its "YNN" library by default, which makes
# this kernel about 1.8x slower (measured by scripts/bench); keep them in XLA's own loops.
_CPU_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": ""}
_map_tiles_jit = {
    "cpu": jax.jit(_map_tiles_impl, static_argnames=_STATIC, compiler_options=_CPU_OPTIONS),
    "other": jax.jit(_map_tiles_impl, static_argnames=_STATIC),
}


def _map_tiles(*args, **kwargs):
    if jax.default_backend() == "cpu" and "cpu" in _map_tiles_jit:
        try:
            return _map_tiles_jit["cpu"](*args, **kwargs)
        except Exception as exc:  # an XLA without this option: use its defaults from now on
            if "ynn" not in str(exc).lower():
                raise
            del _map_tiles_jit["cpu"]
    return _map_tiles_jit["other"](*args, **kwargs)


def _interp_stop(exp, window, tile, dtype, calls, keep):
    """C's global cut-off for interpolation: (imgidx, eval index) of the first out-of-range
    evaluation in loop order (past the end when there is none), and, outside a trace, that
    pixel and its Miller indices for C's warning."""
    none = jnp.array([np.iinfo(np.int32).max, 0], dtype=jnp.int32)
    sfac = exp.structure_factors
    if sfac.grid is None or not sfac.interpolate or exp.physical:
        return none, None
    first = jnp.concatenate([_map_tiles(exp, st, none, window, tile, dtype, first_oor=True).reshape(-1) for st in calls])[: window.n]
    hit = first < exp.steps * exp.detector.layers
    if keep is not None:
        hit = hit & keep
    k = jnp.argmax(hit)
    f, s = window.pixel(k)
    any_hit = jnp.any(hit)
    stop = jnp.where(any_hit, jnp.stack([s * exp.detector.fpixels + f, first[k]]).astype(jnp.int32), none)
    try:
        if not bool(any_hit):
            return stop, None
    except jax.errors.ConcretizationTypeError:
        return stop, None
    hkl = np.asarray(_sample_hkl(exp, jnp.atleast_1d(f).astype(jnp.int32), jnp.atleast_1d(s).astype(jnp.int32), first[k]))
    return stop, {"pixel": (int(f), int(s)), "hkl": tuple(float(x) for x in hkl)}


@jax.jit
def _sample_hkl(exp, fpix, spix, eval_index):
    """Fractional Miller indices of one evaluation of one pixel (for C's warning text)."""
    return _pixel_samples(exp, fpix, spix, jnp.float64)["hkl"].reshape(-1, 3)[eval_index]


def render_with_stats(exp: Experiment, *, dtype=jnp.float64, tile: int | None = None, tiles_per_call: int | None = None, progress=None, differentiable=True):
    """Render the image; returns (image (spixels, fpixels), C's solid-angle sum, info).

    ``tiles_per_call`` splits the work into several jitted calls (for a progress meter);
    ``progress(done, total)`` is called after each.  Traceable: works under jax.jit/grad;
    ``differentiable=False`` (the CLI) skips the per-tile rematerialisation set-up.
    """
    d = exp.detector
    window = RoiWindow.of(exp)
    if window.n == 0:
        return jnp.zeros((d.spixels, d.fpixels), dtype), jnp.zeros((), dtype), {"interp_stop": None}
    tile = min(tile or default_tile(exp), window.n)
    starts = np.arange(0, window.n, tile, dtype=np.int32)
    per_call = tiles_per_call or starts.size
    calls = [starts[i : i + per_call] for i in range(0, starts.size, per_call)]
    keep = window.mask_values(exp.mask)
    stop, stop_info = _interp_stop(exp, window, tile, dtype, calls, keep)
    values, omegas = [], []
    for done, st in enumerate(calls, 1):
        v, o = _map_tiles(exp, st, stop, window, tile, dtype, remat=differentiable)
        values.append(v.reshape(-1))
        omegas.append(o.reshape(-1))
        if progress is not None:
            progress(done, len(calls))
    values = values[0] if len(values) == 1 else jnp.concatenate(values)
    omega_total = _rendered_sum(omegas[0] if len(omegas) == 1 else jnp.concatenate(omegas), keep, window.n)
    if exp.crystal.first_loop_differs and not exp.physical:
        first = jnp.zeros((1,), jnp.int32) if keep is None else jnp.argmax(keep)[None].astype(jnp.int32)
        v1, _ = _map_tiles(exp, first, stop, window, 1, dtype, first_loop=True)
        values = values.at[first[0]].set(v1.reshape(-1)[0])
    image = _assemble(values, keep, window, (d.spixels, d.fpixels), dtype)
    return image, omega_total, {"interp_stop": stop_info}


@functools.partial(jax.jit, static_argnames=("n",))
def _rendered_sum(per_pixel, keep, n):
    """Sum over the n rendered ROI pixels (tile padding dropped, masked pixels skipped)."""
    per_pixel = per_pixel[:n]
    return jnp.sum(per_pixel if keep is None else jnp.where(keep, per_pixel, 0.0))


@functools.partial(jax.jit, static_argnames=("window", "shape", "dtype"))
def _assemble(values, keep, window, shape, dtype):
    """The detector image from the ROI values (C order); 0 outside the ROI and where masked."""
    values = values[: window.n]
    if keep is not None:
        values = jnp.where(keep, values, 0.0)
    block = values.reshape(window.ns, window.nf).astype(dtype)
    if (window.ns, window.nf) == shape:
        return block
    return lax.dynamic_update_slice(jnp.zeros(shape, dtype), block, (window.y0, window.x0))


def render(exp: Experiment, *, dtype=jnp.float64, tile: int | None = None):
    """The float image (spixels, fpixels) in photons per pixel; differentiable in ``exp``."""
    return render_with_stats(exp, dtype=dtype, tile=tile)[0]

