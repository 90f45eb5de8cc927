"""Shoebox refinement of one still: a DIALS experiment's panels fitted in shoeboxes around the
spots the starting model predicts, with a background plane per shoebox.

    result = refine_still(experiment, data, ["misset", "cell", "N", "scale", "background_planes"],
                          ["-default_F", "100"])

1. Every panel is rendered from the starting model (``nbjax.panels``: one physical-mode
   Experiment per panel, sharing the beam and the crystal).
2. Spots: local maxima of the predicted image (within ``size`` // 2 pixels) brighter than
   ``threshold`` times the brightest predicted spot of the still.  A shoebox is the ``size`` x
   ``size`` square around each spot (cut at the panel's edge), brighter spots first; a pixel
   belongs to the first shoebox that takes it.  Pixels outside the shoeboxes, and masked data pixels, cost
   nothing (they are not computed).
3. The model of a shoebox pixel is scale sum_s w_s I_s + c_k + gx_k dx + gy_k dy (``BackgroundPlanes``,
   started at the low quartile of the shoebox's data; ``tilt=False``: constant planes), fitted
   with the panels as images of one joint fit (``nbjax.fit.fit``): every free parameter is
   shared by the panels except ``panel_shifts`` (one per panel).
4. The refined experiment goes back into the DIALS list (``ExperimentList.refined``): crystal
   vectors, mosaicity and domain size, wavelength, panel origins; only refined values change.

Names (``-free``): those of ``nbjax.fit.PARAMETERS``; here ``distance`` is the whole detector
along the beam (``detector_distance``), ``cell`` is constrained by the space group's crystal
system (``Cell(system=cell_system(...))``), ``misset`` rotates the crystal, ``mosaic`` is the
mosaic spread, ``N`` the domain size in cells.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from nbjax.errors import NBError

PLANES_MULTIPLE = 64  # a list of stills: background planes rounded up to this (one compilation)
TILES_MULTIPLE = 4  # ... and the pixel tiles, of SHARED_TILE pixels
SHARED_TILE = 1024
MIN_TILT_PHOTONS = 5.0  # a shoebox's background (photons/pixel) below which its plane has no tilt
STILL_ALIASES = {"distance": "detector_distance"}  # names that mean another parameter for a still


@dataclasses.dataclass(frozen=True)
class Shoeboxes:
    """Shoeboxes over the panels: per panel an id map (slow, fast; -1 outside every shoebox)
    and the pixel offsets from the shoebox centre (dx, dy in pixels), and the spots (panel,
    slow, fast) in the order of the ids."""

    ids: list
    offsets: list
    spots: np.ndarray  # (K, 3) int: panel, slow, fast of each spot
    size: int

    @property
    def count(self) -> int:
        return int(self.spots.shape[0])


def find_spots(images, size: int = 11, threshold: float = 0.01, masks=None) -> np.ndarray:
    """(K, 3) (panel, slow, fast) of the predicted spots, brightest first: pixels that are the
    largest within ``size`` // 2 pixels and brighter than ``threshold`` times the brightest."""
    r = max(1, size // 2)
    peak = max(float(np.max(image)) for image in images)
    spots = []
    for p, image in enumerate(images):
        image = np.asarray(image, dtype=np.float64)
        local = _window_max(image, r)
        keep = (image >= local) & (image > threshold * peak) & (image > 0)
        if masks is not None:
            keep &= np.asarray(masks[p], bool)
        for s, f in zip(*np.nonzero(keep), strict=True):
            spots.append((image[s, f], p, s, f))
    spots.sort(key=lambda t: -t[0])
    return np.array([(p, s, f) for _, p, s, f in spots], dtype=np.int64).reshape(-1, 3)


def _window_max(image, r: int) -> np.ndarray:
    """The largest value within r pixels (a (2r + 1)^2 square, cut at the edges) of every pixel:
    the maximum along the fast axis, then along the slow axis (max is associative: the same
    numbers as the square window, in 4r comparisons per pixel instead of (2r + 1)^2 - 1)."""
    shape = image.shape
    padded = np.pad(image, r, mode="constant", constant_values=-np.inf)
    rows = padded[:, : shape[1]].copy()
    for k in range(1, 2 * r + 1):
        np.maximum(rows, padded[:, k : k + shape[1]], out=rows)
    local = rows[: shape[0]].copy()
    for k in range(1, 2 * r + 1):
        np.maximum(local, rows[k : k + shape[0]], out=local)
    return local


def shoeboxes(images, size: int = 11, threshold: float = 0.01, masks=None) -> Shoeboxes:
    """The shoeboxes around the spots of the predicted ``images`` (module docstring)."""
    if size < 3:
        raise NBError(f"shoebox size {size}: at least 3 pixels")
    spots = find_spots(images, size, threshold, masks)
    ids = [np.full(np.shape(image), -1, np.int32) for image in images]
    offsets = [np.zeros((2,) + np.shape(image)) for image in images]
    half = size // 2
    kept = []
    for p, s, f in spots:
        shape = ids[p].shape
        s0, s1 = max(0, s - half), min(shape[0], s - half + size)
        f0, f1 = max(0, f - half), min(shape[1], f - half + size)
        free = ids[p][s0:s1, f0:f1] < 0
        if not np.any(free):
            continue
        k = len(kept)
        kept.append((p, s, f))
        ss, ff = np.mgrid[s0:s1, f0:f1]
        ids[p][s0:s1, f0:f1] = np.where(free, k, ids[p][s0:s1, f0:f1])
        offsets[p][0, s0:s1, f0:f1] = np.where(free, ff - f, offsets[p][0, s0:s1, f0:f1])
        offsets[p][1, s0:s1, f0:f1] = np.where(free, ss - s, offsets[p][1, s0:s1, f0:f1])
    return Shoeboxes(ids, offsets, np.array(kept, dtype=np.int64).reshape(-1, 3), size)


def monochromatic(experiments):
    """The Experiments with their sources replaced by one: the weighted mean wavelength along
    the weighted mean direction (for predicting where the spots are: a 100-channel spectrum
    would cost 100 renders of every pixel)."""
    import equinox as eqx
    import jax.numpy as jnp

    out = []
    for e in experiments:
        w = e.beam.weights / jnp.sum(e.beam.weights)
        direction = jnp.sum(w[:, None] * e.beam.directions, axis=0)
        beam = (direction[None, :], jnp.sum(w * e.beam.wavelengths)[None], jnp.ones((1,), w.dtype))
        out.append(eqx.tree_at(lambda x: (x.beam.directions, x.beam.wavelengths, x.beam.weights), e, beam))
    return out


def _faint_shoeboxes(start: np.ndarray) -> np.ndarray:
    """(K,) True where the shoebox's background (``plane_start``: its data's lower quartile) is below
    ``MIN_TILT_PHOTONS``: its plane is a constant (zero offsets: the tilt columns are empty and
    gx, gy stay 0).  A tilt over a faint shoebox is barely determined and its corners keep
    reaching the Poisson model's edge (m <= 0): Levenberg-Marquardt then crawls (bench-still
    --water 0.6: 100 halved steps, not converged) where constant planes converge."""
    return start[:, 0] < MIN_TILT_PHOTONS


def plane_start(data, masks, boxes: Shoeboxes, floor: float = 0.1) -> np.ndarray:
    """Starting planes (K, 3): c_k the lower quartile of the shoebox's usable data (at least
    ``floor`` photons: a Poisson model must be positive), no tilt."""
    start = np.zeros((boxes.count, 3))
    start[:, 0] = floor
    for p, ids in enumerate(boxes.ids):
        usable = (ids >= 0) & np.asarray(masks[p], bool)
        for k in np.unique(ids[usable]):
            start[k, 0] = max(floor, float(np.percentile(np.asarray(data[p])[usable & (ids == k)], 25)))
    return start


@dataclasses.dataclass(frozen=True)
class StillResult:
    """A refined still: the fit (``FitResult``: panels as images), its shoeboxes, the refined
    DIALS list (JSON), and the predicted images before and after (panels)."""

    fit: object
    shoeboxes: Shoeboxes
    refined_expt: dict
    before: list
    after: list
    free: tuple
    per_panel: tuple


def still_parameters(
    names, built, experiment, boxes, data, masks, tilt: bool = True, planes: int | None = None, start=None
):
    """(shared, per-panel) fit parameters for the ``-free`` names of a still; ``planes``: the
    background planes' count (at least the shoeboxes; the rest have no pixels); ``start``: the
    planes' ``plane_start`` when the caller has it."""
    from nbjax.fit._parameters import PARAMETERS, BackgroundPlanes, Cell, _cell_constants, cell_system, parameter

    shared, per_panel = [], []
    for raw in names:
        name = STILL_ALIASES.get(raw.strip(), raw.strip())
        if not name:
            continue
        if name == "background_planes":
            start = plane_start(data, masks, boxes) if start is None else start
            count = max(planes or 0, boxes.count)
            start = np.concatenate([start, np.tile(start[-1:], (count - len(start), 1))])  # planes without pixels
            rows = tuple(tuple(float(x) for x in row[: 3 if tilt else 1]) for row in start)  # c[, gx, gy]
            shared.append(BackgroundPlanes(shoeboxes=count, start=rows, tilt=tilt))
        elif name == "cell":
            constants = _cell_constants(built.experiments[0])  # a, b, c (A), alpha, beta, gamma (deg)
            shared.append(Cell(system=cell_system(experiment.crystal.hall_symbol, constants)))
        elif name.lower() in {k.lower() for k in PARAMETERS}:
            p = parameter(name, built.settings)
            (per_panel if p.per_panel else shared).append(p)
        else:
            known = ", ".join(sorted(set(PARAMETERS) | set(STILL_ALIASES)))
            raise NBError(f"unknown fit parameter '{raw.strip()}' (known: {known})")
    return shared, per_panel


def check_panels(data, experiment, name: str = "") -> None:
    """One-line error unless ``data`` has the experiment's panels, each of its shape."""
    shapes = [p.shape for p in experiment.panels]
    if len(data) != len(shapes) or any(np.shape(d) != s for d, s in zip(data, shapes, strict=False)):
        have = [tuple(np.shape(d)) for d in data]
        where = f"{name}: " if name else ""
        raise NBError(f"{where}the data have {len(data)} panel(s) of {have}; the experiment's panels are {shapes}")


def refine_still(
    elist,
    index: int,
    data,
    masks,
    free,
    user_args,
    *,
    size: int = 11,
    threshold: float = 0.01,
    tilt: bool = True,
    loss=None,
    method=None,
    progress=None,
    shared_shapes: bool = False,
) -> StillResult:
    """Refine experiment ``index`` of the DIALS list ``elist`` against ``data`` (panels, slow,
    fast; photons) with usable-pixel ``masks`` (module docstring).  ``shared_shapes``: round the
    shoebox count up to a multiple of ``PLANES_MULTIPLE`` (planes without pixels: no data, no
    effect) and the pixel tiles to ``TILES_MULTIPLE`` tiles of ``SHARED_TILE``, so that the stills
    of a list share one compilation."""
    from nbjax.fit._data import Observation
    from nbjax.fit._fit import fit
    from nbjax.fit._losses import Poisson
    from nbjax.fit._solvers import LevenbergMarquardt
    from nbjax.panels import panel_experiments, render_panels

    experiment = elist.experiment(index)
    built = panel_experiments(experiment, list(user_args))
    check_panels(data, experiment)
    before = [np.asarray(image) for image in render_panels(monochromatic(built.experiments))]
    boxes = shoeboxes(before, size, threshold, masks)
    if boxes.count == 0:
        raise NBError(f"no spot is predicted above {threshold:g} of the brightest: lower the spot threshold")
    planes = -(-boxes.count // PLANES_MULTIPLE) * PLANES_MULTIPLE if shared_shapes else boxes.count
    start = plane_start(data, masks, boxes)  # the planes' start, and which shoeboxes are faint
    shared, per_panel = still_parameters(free, built, experiment, boxes, data, masks, tilt, planes, start)
    flat = _faint_shoeboxes(start) if tilt else np.zeros(boxes.count, bool)
    observations = []
    for p, (ids, offsets) in enumerate(zip(boxes.ids, boxes.offsets, strict=True)):
        offsets = np.where(flat[np.maximum(ids, 0)] & (ids >= 0), 0.0, offsets)  # faint: no tilt
        usable = (ids >= 0) & np.asarray(masks[p], bool)
        observations.append(
            Observation(
                image=np.asarray(data[p], np.float64),
                mask=usable,
                shoebox=np.where(usable, ids, -1),
                offsets=offsets,
                name=experiment.panels[p].name,
            )
        )
    result = fit(
        built.experiments,
        observations,
        shared,
        per_image=per_panel,
        loss=loss or Poisson(),
        method=method or LevenbergMarquardt(),
        progress=progress,
        tile=SHARED_TILE if shared_shapes else None,
        tiles_multiple=TILES_MULTIPLE if shared_shapes else 1,
    )
    after = [np.asarray(image) for image in render_panels(monochromatic(result.experiments))]
    roles = {p.name for p in shared} | {p.name for p in per_panel}
    mosaic = result.value("mosaic_spread") if "mosaic_spread" in roles else None
    refined = refined_list(elist, index, result.experiments, roles, mosaic)
    return StillResult(result, boxes, refined, before, after, tuple(shared), tuple(per_panel))


def refined_list(elist, index: int, fitted, roles, mosaic_deg: float | None = None) -> dict:
    """The DIALS list with the refined crystal, mosaicity (``mosaic_deg``), domain size,
    wavelength and panel origins of experiment ``index`` (only what ``roles``, the refined
    parameters' names, say was refined); ``fitted``: the refined Experiment of every panel.
    One home for the still fit and the ensemble."""
    exp0 = fitted[0]
    changes = {}
    if roles & {"misset", "cell"}:
        changes["real_space"] = np.stack(
            [np.asarray(v) * 1e10 for v in (exp0.crystal.a, exp0.crystal.b, exp0.crystal.c)]
        )
    if "N" in roles:
        lengths = np.linalg.norm(changes.get("real_space", elist.experiment(index).crystal.real_space), axis=1)
        changes["domain_size_ang"] = float(np.mean(np.asarray(exp0.crystal.N) * lengths))
    if "mosaic_spread" in roles and mosaic_deg is not None:
        changes["half_mosaicity_deg"] = mosaic_deg
    if roles & {"wavelength", "spectrum_shift", "spectrum_scale"}:
        w = np.asarray(exp0.beam.weights, np.float64)
        changes["wavelength"] = float(np.sum(w * np.asarray(exp0.beam.wavelengths)) / np.sum(w) * 1e10)
    if roles & {"detector_distance", "panel_shift", "panel_rotation"}:
        changes["panel_origins"] = {k: np.asarray(e.detector.pix0) * 1e3 for k, e in enumerate(fitted)}
    if "panel_rotation" in roles:
        changes["panel_axes"] = {
            k: (np.asarray(e.detector.fdet), np.asarray(e.detector.sdet)) for k, e in enumerate(fitted)
        }
    return elist.refined(index, **changes)
