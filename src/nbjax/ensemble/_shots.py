"""One shot of an ensemble: its panels' Experiments, its shoeboxes and which reflection every
shoebox pixel sees.

A shot is set up once, from the starting model (the DIALS experiment, the starting structure
factors):

1. Every panel is one physical-mode Experiment (``nbjax.panels.panel_experiments``) whose
   structure factors are the ensemble's P1 grid (``Reflections.grid``).
2. Spots and shoeboxes as for one still (``nbjax.fit.refine_still``): the maxima of a
   monochromatic render, a background plane (or a constant, for faint shoeboxes) per shoebox.
3. Which reflection a pixel sees.  The Bragg part of a pixel is a sum over its samples (sources,
   sub-pixels, mosaic domains) of F(h0)^2 times the rest, with h0 the sample's nearest Miller
   index, so it is linear in the intensities I_j = F_j^2 of the reflections its samples reach.
   Rendering the shoebox pixels with I_j = 1, I_j = j + 1 and I_j = c_j + 1 (c a random
   numbering) gives, per pixel, the intensity-weighted means of j + 1 and c_j + 1: a pixel is
   *pure* when both are within ``PURITY`` of the numbers of one reflection j (all its samples
   reach j; a mixture of two reflections cannot match both numberings by chance).  A pure pixel's
   Bragg part is exactly q_j times its value at the current F, q_j = (F_j / F_j,now)^2, so its
   derivatives by the intensities are the reflection factors' columns (``ReflectionFactors``).  A pixel
   that sees no reflection (Bragg part 0), or only one too faint to say anything about its F
   (``MIN_SLOT``), keeps no slot; a mixed pixel is left out of the fit (its F derivatives
   would be split between reflections; such pixels sit between spots, where the lattice factor
   is ~0, and are rare).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from nbjax.errors import NBError

PURITY = 1e-6  # a pixel's weighted mean reflection number this close to j + 1 (relative): pure
MIN_SLOT = 1e-3  # a reflection's predicted photons in a shot, relative to its brightest's: below, no slot
RENDER_CHUNK = 4096  # shoebox pixels rendered per call when attributing them (one compilation)


@dataclasses.dataclass(frozen=True, eq=False)
class Pixels:
    """A panel's fitted pixels, compact (a shot is held this way between its set-up and its
    compilation: its full-panel arrays would cost tens of MB per megapixel shot): their
    (slow, fast) indices and, per pixel, the data, shoebox, offsets and reflection slot."""

    shape: tuple
    name: str
    spix: np.ndarray
    fpix: np.ndarray
    image: np.ndarray
    shoebox: np.ndarray
    dx: np.ndarray
    dy: np.ndarray
    reflection: np.ndarray

    @property
    def count(self) -> int:
        return int(self.spix.size)

    def observation(self):
        """The panel as an ``nbjax.fit.Observation`` (full-panel arrays, made when needed)."""
        from nbjax.fit._data import Observation

        image = np.zeros(self.shape)
        mask = np.zeros(self.shape, bool)
        shoebox = np.full(self.shape, -1, np.int32)
        offsets = np.zeros((2, *self.shape))
        reflection = np.full(self.shape, -1, np.int32)
        at = (self.spix, self.fpix)
        image[at], mask[at], shoebox[at], reflection[at] = self.image, True, self.shoebox, self.reflection
        offsets[0][at], offsets[1][at] = self.dx, self.dy
        return Observation(image=image, mask=mask, shoebox=shoebox, offsets=offsets, name=self.name,
                           reflection=reflection)  # fmt: skip


@dataclasses.dataclass(frozen=True, eq=False)
class Shot:
    """A shot set up for the ensemble (module docstring): its DIALS list and index, the panels'
    Experiments (structure factors: the grid of ``F_start``), its fitted pixels per panel
    (``Pixels``: shoebox, offsets and reflection slot per pixel), the planes' start, and
    ``slots``: the reflection number of every slot (R,)."""

    name: str
    elist: object
    index: int
    built: object
    pixels_of: list | None  # Pixels per panel (None once compiled)
    plane_start: np.ndarray
    slots: np.ndarray
    mixed: int  # shoebox pixels left out (they see two reflections)
    shoeboxes: int
    pixels: int  # pixels fitted


def with_structure_factors(experiments, sf):
    """The Experiments with structure factors ``sf`` (a ``StructureFactors``)."""
    import equinox as eqx

    return [eqx.tree_at(lambda e: e.structure_factors, e, sf, is_leaf=lambda x: x is None) for e in experiments]


def bragg_part(experiments, observations_pixels, dtype):
    """Per panel the Bragg part sum_s w_s I_s of the pixels (spix, fpix), rendered RENDER_CHUNK
    pixels at a time (one compilation for every chunk, panel and shot of one shape)."""
    out = []
    for e, (spix, fpix) in zip(experiments, observations_pixels, strict=True):
        n = spix.size
        values = np.zeros(n)
        for a in range(0, n, RENDER_CHUNK):
            s = np.full(RENDER_CHUNK, spix[a] if n else 0, np.int32)
            f = np.full(RENDER_CHUNK, fpix[a] if n else 0, np.int32)
            b = min(n, a + RENDER_CHUNK)
            s[: b - a], f[: b - a] = spix[a:b], fpix[a:b]
            values[a:b] = np.asarray(_weighted(e, jnp.asarray(f), jnp.asarray(s), dtype))[: b - a]
        out.append(values)
    return out


@functools.partial(jax.jit, static_argnums=3)
def _weighted(e, fpix, spix, dtype):
    """sum_s w_s I_s of the pixels (w normalised)."""
    w = e.beam.weights / jnp.sum(e.beam.weights)
    return e.model.per_source(e, fpix, spix, dtype) @ w.astype(dtype)


def attribute(experiments, reflections, pixels, seed: int = 0, dtype=None):
    """Per panel (reflection number (n,) or -1, pure (n,) bool, bragg (n,) at I_j = 1) of the
    pixels ``pixels`` (per panel (spix, fpix)) (module docstring, item 3)."""
    dtype = jnp.float64 if dtype is None else dtype
    n = reflections.count
    code = np.random.default_rng(seed).permutation(n).astype(np.float64)
    renders = []
    for intensity in (np.ones(n), np.arange(n) + 1.0, code + 1.0):
        exps = with_structure_factors(experiments, reflections.grid(jnp.asarray(np.sqrt(intensity))))
        renders.append(bragg_part(exps, pixels, dtype))
    out = []
    for one, first, second in zip(*renders, strict=True):
        seen = one > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            mean1 = np.where(seen, first / np.where(seen, one, 1.0), 0.0)
            mean2 = np.where(seen, second / np.where(seen, one, 1.0), 0.0)
        j = np.rint(mean1).astype(np.int64) - 1
        ok = seen & (j >= 0) & (j < n)
        jj = np.clip(j, 0, n - 1)
        pure = ok & (np.abs(mean1 - (jj + 1)) <= PURITY * (jj + 1)) & (np.abs(mean2 - (code[jj] + 1)) <= PURITY * n)
        out.append((np.where(pure, jj, -1), pure | ~seen, one))
    return out


def _slot_reflections(seen, F_start) -> np.ndarray:
    """The reflections that get a slot in a shot: those whose pure pixels' predicted Bragg
    photons (at F_start) add up to at least ``MIN_SLOT`` of the brightest reflection's.  A
    reflection whose pixels are all faint (far from diffracting) tells nothing about its F and
    only its background matters there: its pixels stay in the fit without a slot."""
    j = np.concatenate([j[j >= 0] for j, _, _ in seen] + [np.zeros(0, np.int64)])
    one = np.concatenate([b[j >= 0] for j, _, b in seen] + [np.zeros(0)])
    if not j.size:
        return j
    total = np.bincount(j, weights=one * np.asarray(F_start)[j] ** 2)
    numbers = np.flatnonzero(total > 0)
    return numbers[total[numbers] >= MIN_SLOT * total.max()]


def prepare_shot(
    name: str,
    elist,
    index: int,
    data,
    masks,
    reflections,
    F_start,
    user_args,
    *,
    size: int = 11,
    threshold: float = 0.01,
    tilt: bool = True,
    dtype=None,
) -> Shot:
    """A shot set up from its DIALS list ``elist`` (experiment ``index``), ``data`` (panels,
    slow, fast; photons) with usable ``masks``, the ensemble's ``reflections`` and starting
    structure factors ``F_start`` (module docstring)."""
    from nbjax.fit._still import _faint_shoeboxes, check_panels, monochromatic, plane_start, shoeboxes
    from nbjax.panels import panel_experiments, render_panels

    experiment = elist.experiment(index)
    built = panel_experiments(experiment, [*user_args, "-default_F", "1"])
    check_panels(data, experiment, name)
    exps = with_structure_factors(built.experiments, reflections.grid(F_start))
    built = dataclasses.replace(built, experiments=exps)
    predicted = [np.asarray(image) for image in render_panels(monochromatic(exps))]
    boxes = shoeboxes(predicted, size, threshold, masks)
    if boxes.count == 0:
        raise NBError(f"{name}: no spot is predicted above {threshold:g} of the brightest")
    start = plane_start(data, masks, boxes)
    flat = _faint_shoeboxes(start) if tilt else np.ones(boxes.count, bool)
    pixels = [np.nonzero((ids >= 0) & np.asarray(m, bool)) for ids, m in zip(boxes.ids, masks, strict=True)]
    seen = attribute(exps, reflections, pixels, dtype=dtype)
    numbers = _slot_reflections(seen, F_start)
    slot_of = {int(j): r for r, j in enumerate(numbers)}
    compact, mixed = [], 0
    for p, (ids, offsets) in enumerate(zip(boxes.ids, boxes.offsets, strict=True)):
        j, keep, _ = seen[p]
        spix, fpix = pixels[p]
        mixed += int(np.count_nonzero(~keep))
        s, f, jj = spix[keep], fpix[keep], j[keep]
        k = ids[s, f]
        faint = flat[k]  # faint shoeboxes: no tilt (zero offsets)
        compact.append(
            Pixels(
                shape=tuple(ids.shape),
                name=experiment.panels[p].name,
                spix=s.astype(np.int32),
                fpix=f.astype(np.int32),
                image=np.asarray(data[p], np.float64)[s, f],
                shoebox=k.astype(np.int32),
                dx=np.where(faint, 0.0, offsets[0][s, f]),
                dy=np.where(faint, 0.0, offsets[1][s, f]),
                reflection=np.array([slot_of.get(int(x), -1) for x in jj], np.int32),
            )
        )
    pixels_fitted = sum(c.count for c in compact)
    return Shot(name, elist, index, built, compact, start, numbers.astype(np.int64), mixed, boxes.count, pixels_fitted)
