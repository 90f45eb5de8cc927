"""The pixel kernel: one pure function from an Experiment to an image.

For each pixel the C program sums, over sensor layers t, sub-pixels q, sources s, phi steps
and mosaic domains (in that loop order), I += F_cell^2 F_latt^2 with the fractional Miller
indices h = A (d - i)/lambda (``samples.py``).  How the samples add up to the pixel value is the
Experiment's model strategy (``accumulation.py``: ``Physical``; ``ccompat``: the C program's).

Pixels are processed in tiles of ``tile`` pixels (``lax.map``), so peak memory depends on the
tile, not the detector; inside a tile every other loop is an array axis.
"""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Float

from nbjax._x64 import require_x64
from nbjax.errors import NBError
from nbjax.experiment import Experiment
from nbjax.roi import Roi

# sub-pixel x source x orientation samples per tile: bounds peak memory (about 100 bytes each)
CPU_TILE_EVALS = 1 << 20
ACCELERATOR_TILE_EVALS = 1 << 24


def default_tile(exp: Experiment, copies: int = 1) -> int:
    """Pixels per tile so one tile holds about 1M samples on CPU, 16M on an accelerator, each
    sample held ``copies`` times (a fit's forward-mode tangents, a batch's images)."""
    budget = CPU_TILE_EVALS if jax.default_backend() == "cpu" else ACCELERATOR_TILE_EVALS
    tile = max(16, budget // max(exp.samples_per_pixel * copies, 1))
    return int(min(tile, budget // 16))


def compiler_options():
    """The compiler options of a top-level jit on this backend (XLA:CPU: no YNN fusions)."""
    return _CPU_OPTIONS if jax.default_backend() == "cpu" else None


def window_of(exp: Experiment) -> Roi:
    """The rendered rectangle: the ROI clipped to the detector (C loop order inside)."""
    return Roi.clip(exp.roi, (exp.detector.spixels, exp.detector.fpixels))


def rendered_mask(window: Roi, mask):
    """Rendered (non-zero) mask pixels over the window, flat in C order; None: no mask."""
    if mask is None:
        return None
    return jnp.asarray(mask)[window.slices].reshape(-1) != 0


def _map_tiles_impl(exp, starts, context, window, tile, dtype, stage=None, remat=True):
    """lax.map of a tile stage of the model over tiles of ``tile`` consecutive ROI pixels
    starting at ``starts``: ``stage`` None is the model's ``pixels``, else a stage method of its
    class (``CCompatible.first_out_of_range``), called as ``stage(model, exp, fpix, spix,
    context, dtype)``.  ``remat`` recomputes each ``pixels`` tile in the backward pass (bounded
    memory under jax.grad)."""

    def run(e, f, s_):
        if stage is None:
            return e.model.pixels(e, f, s_, context, dtype)
        return stage(e.model, e, f, s_, context, dtype)

    def body(start):
        k = jnp.minimum(start + jnp.arange(tile, dtype=jnp.int32), window.n - 1)
        f, s_ = window.pixel(k)
        return (jax.checkpoint(run) if remat and stage is None else run)(exp, f, s_)

    return lax.map(body, starts)


_STATIC = ("window", "tile", "dtype", "stage", "remat")
# XLA:CPU (jaxlib 0.10) hands small reductions to its "YNN" library by default, which makes
# this kernel about 1.8x slower (measured by scripts/bench); keep them in XLA's own loops.
_CPU_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": ""}
_map_tiles_jit = {
    "cpu": jax.jit(_map_tiles_impl, static_argnames=_STATIC, compiler_options=_CPU_OPTIONS),
    "other": jax.jit(_map_tiles_impl, static_argnames=_STATIC),
}


def _map_tiles(*args, mesh=None, **kwargs):
    """The tile map, compiled with the CPU options when called at top level (inside another
    transformation a jit may not carry compiler options: the caller's jit decides), and split
    over the devices of ``mesh`` (a 1-D jax.sharding.Mesh) when given."""
    if mesh is not None:
        return _map_tiles_sharded(*args, mesh=mesh, **kwargs)
    traced = any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(args))
    if jax.default_backend() == "cpu" and "cpu" in _map_tiles_jit and not traced:
        try:
            return _map_tiles_jit["cpu"](*args, **kwargs)
        except Exception as exc:  # an XLA without this option: use its defaults from now on
            if "ynn" not in str(exc).lower():
                raise
            del _map_tiles_jit["cpu"]
    return _map_tiles_jit["other"](*args, **kwargs)


def _map_tiles_sharded(exp, starts, context, window, tile, dtype, stage=None, remat=True, mesh=None):
    """The tile map with the tiles dealt out to the mesh's devices in contiguous blocks
    (shard_map): every tile is computed exactly as on one device, so the image is the same."""
    n_dev = mesh.devices.size
    starts = np.asarray(starts)
    n = starts.size
    padded = np.concatenate([starts, np.repeat(starts[-1:], (-n) % n_dev)])
    return _sharded_jit(mesh, window, tile, dtype, stage, remat, n)(exp, padded, context)


@functools.lru_cache(maxsize=32)
def _sharded_jit(mesh, window, tile, dtype, stage, remat, n):
    """The sharded tile map over padded starts, cut back to the first ``n`` tiles."""
    from jax.sharding import PartitionSpec as P

    def body(exp, starts, context):
        return _map_tiles_impl(exp, starts, context, window, tile, dtype, stage, remat)

    sharded = jax.shard_map(body, mesh=mesh, in_specs=(P(), P("tiles"), P()), out_specs=P("tiles"), check_vma=False)
    return jax.jit(lambda *a: jax.tree.map(lambda x: x[:n], sharded(*a)), compiler_options=compiler_options())


def device_mesh(devices: int | None, at_most: int | None = None):
    """A 1-D mesh over ``devices`` local devices (None: all of them), but no more than
    ``at_most`` (the work items to deal out: no device without one); None when that is one."""
    local = jax.local_devices()
    n = len(local) if devices is None else int(devices)
    if n < 1 or n > len(local):
        raise NBError(f"devices: {n} requested, {len(local)} available ({jax.default_backend()})")
    if at_most is not None:
        n = min(n, at_most)
    if n <= 1:
        return None
    return jax.sharding.Mesh(np.array(local[:n]), ("tiles",))


class RenderResult(eqx.Module):
    """A rendered image and what the C program prints about it."""

    image: Float[Array, "spixels fpixels"]  # photons per pixel
    solid_angle_sum: Float[Array, ""]  # sr, summed as the model sums it (C: 'solid angle subtended')
    interpolation_stop: dict | None = eqx.field(static=True, default=None)  # C model: where interpolation stopped


def render_with_stats(
    exp: Experiment,
    *,
    dtype=jnp.float64,
    tile: int | None = None,
    tiles_per_call: int | None = None,
    progress=None,
    differentiable=True,
    devices: int | None = 1,
) -> RenderResult:
    """Render the image with its statistics.

    ``tiles_per_call`` splits the work into several jitted calls (for a progress meter);
    ``progress(done, total)`` is called after each.  Traceable: works under jax.jit/grad;
    ``differentiable=False`` (the CLI) skips the per-tile rematerialisation set-up.
    ``devices``: split the tiles over this many local devices (None: all); the image is the same.
    """
    require_x64("nbjax.render")
    d = exp.detector
    window = window_of(exp)
    if window.n == 0:
        device_mesh(devices)  # still refuses more devices than there are
        return RenderResult(jnp.zeros((d.spixels, d.fpixels), dtype), jnp.zeros((), dtype))
    tile = min(tile or default_tile(exp), window.n)
    starts = np.arange(0, window.n, tile, dtype=np.int32)
    per_call = tiles_per_call or starts.size
    mesh = device_mesh(devices, at_most=min(per_call, starts.size))
    calls = [starts[i : i + per_call] for i in range(0, starts.size, per_call)]
    keep = rendered_mask(window, exp.mask)
    no_context = np.zeros((2,), np.int32)

    def run_stage(stage):
        return _flat_values(
            tuple(_map_tiles(exp, st, no_context, window, tile, dtype, stage=stage, mesh=mesh) for st in calls),
            window.n,
        ), window

    context, stop_info = exp.model.prepare(exp, run_stage, keep)
    values, omegas = [], []
    for done, st in enumerate(calls, 1):
        v, o = _map_tiles(exp, st, context, window, tile, dtype, remat=differentiable, mesh=mesh)
        values.append(v)
        omegas.append(o)
        if progress is not None:
            progress(done, len(calls))
    values, omega_total = _values_and_solid_angle(tuple(values), tuple(omegas), keep, window.n)

    def run_pixel(stage):
        first = jnp.zeros((1,), jnp.int32) if keep is None else jnp.argmax(keep)[None].astype(jnp.int32)
        v1, _ = _map_tiles(exp, first, context, window, 1, dtype, stage=stage)
        return first[0], v1.reshape(-1)[0]

    values = exp.model.finish(exp, values, context, run_pixel)
    image = _assemble(values, keep, window, (d.spixels, d.fpixels), dtype)
    return RenderResult(image, omega_total, stop_info)


def _flatten(per_call, n):
    """The tile maps' (tiles, tile) outputs of every call as the n ROI pixels' values, flat
    (tile padding dropped)."""
    return jnp.concatenate([v.reshape(-1) for v in per_call])[:n]


_flat_values = jax.jit(_flatten, static_argnames=("n",))


@functools.partial(jax.jit, static_argnames=("n",))
def _values_and_solid_angle(values, omegas, keep, n):
    """(the n ROI pixels' values, the solid angle summed over the rendered ones: tile padding
    dropped, masked pixels skipped); one compiled call for what would be several small ones."""
    per_pixel = _flatten(omegas, n)
    return _flatten(values, n), jnp.sum(per_pixel if keep is None else jnp.where(keep, per_pixel, 0.0))


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


def render(
    exp: Experiment, *, dtype=jnp.float64, tile: int | None = None, devices: int | None = 1
) -> Float[Array, "spixels fpixels"]:
    """The float image (spixels, fpixels) in photons per pixel; differentiable in ``exp``.
    Needs JAX's 64-bit mode (the set-up geometry is float64 in both precisions)."""
    return render_with_stats(exp, dtype=dtype, tile=tile, devices=devices).image


def stack_experiments(experiments) -> Experiment:
    """One Experiment whose array leaves have a leading batch axis, from Experiments of the
    same static shape (detector size, source and orientation counts, model, crystal shape)."""
    experiments = list(experiments)
    first = jax.tree.structure(experiments[0])
    for k, e in enumerate(experiments[1:], 1):
        if jax.tree.structure(e) != first or any(
            np.shape(a) != np.shape(b)
            for a, b in zip(jax.tree.leaves(e), jax.tree.leaves(experiments[0]), strict=True)  # same structure
        ):
            raise ValueError(
                f"stack_experiments: experiment {k} differs in static shape from experiment 0 "
                "(detector size, source or orientation count, model)"
            )
    return jax.tree.map(lambda *xs: jnp.stack(xs), *experiments)


def render_batch(
    experiments: Experiment, *, dtype=jnp.float64, tile: int | None = None, devices: int | None = 1
) -> Float[Array, "B spixels fpixels"]:
    """Images (B, spixels, fpixels) of a stacked Experiment (``stack_experiments``), with one
    compilation: on an accelerator one vmapped render, on a CPU one per-image program called
    for every image; with ``devices`` > 1 (None: all local devices) the images are
    split over the devices (B is padded to a multiple of their number)."""
    require_x64("nbjax.render_batch")
    B = jax.tree.leaves(experiments)[0].shape[0]
    mesh = device_mesh(devices)
    if mesh is None and jax.default_backend() == "cpu":
        # XLA:CPU spreads one image's fusions over the cores, but not a loop or a vmap over
        # images (0.55-0.67x the throughput of separate renders, 64 x 256^2 on 2 cores): one
        # compiled per-image program, called for every image (asynchronously dispatched)
        leaves, treedef = jax.tree.flatten(experiments)  # flattened once, not per call
        item = _render_item_fn(dtype, tile, treedef)
        return jnp.stack([item(leaves, np.int32(i)) for i in range(B)])
    tile = tile or default_tile(jax.tree.map(lambda x: x[0], experiments), copies=B)
    batched = _render_batch_fn(dtype, tile, mesh)
    if mesh is None:
        return batched(experiments)
    n_dev = mesh.devices.size
    pad = (-B) % n_dev
    padded = (
        jax.tree.map(lambda x: jnp.concatenate([x, jnp.repeat(x[-1:], pad, axis=0)]), experiments)
        if pad
        else experiments
    )
    return batched(padded)[:B]


@functools.lru_cache(maxsize=16)
def _render_item_fn(dtype, tile, treedef):
    """Image i of a stacked Experiment (as its leaves), compiled once for every i."""

    def item(leaves, i):
        e = jax.tree.unflatten(treedef, [lax.dynamic_index_in_dim(x, i, keepdims=False) for x in leaves])
        return render_with_stats(e, dtype=dtype, tile=tile, differentiable=False).image

    return jax.jit(item, compiler_options=compiler_options())


@functools.lru_cache(maxsize=16)
def _render_batch_fn(dtype, tile, mesh):
    def one(e):
        return render_with_stats(e, dtype=dtype, tile=tile, differentiable=False).image

    options = compiler_options()
    if mesh is None:
        return jax.jit(jax.vmap(one), compiler_options=options)
    from jax.sharding import PartitionSpec as P

    return jax.jit(
        jax.shard_map(jax.vmap(one), mesh=mesh, in_specs=P("tiles"), out_specs=P("tiles"), check_vma=False),
        compiler_options=options,
    )
