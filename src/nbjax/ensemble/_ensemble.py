"""``refine_ensemble``: structure factors and every shot's parameters refined jointly against
the shoebox pixels of many stills.

    shots = [Input(name, elist, index, data, masks), ...]
    result = refine_ensemble(shots, unique_reflections("P 43 21 2", cell, 2.0), 100.0,
                             ["-N", "10", "-fluence", "1e24"], ["misset", "scale", "background_planes"])
    result.F, result.sigma_F, result.shots[0].values

Every shot is set up as one still is (``_shots``: panels, spots, shoeboxes, background planes)
plus which reflection each shoebox pixel sees; the shots share one compiled program (their
background planes, reflection slots and pixel tiles are padded to the largest shot's counts).
The refinement (``_refine``) is a Levenberg-Marquardt step of the whole problem per iteration,
the shots eliminated by their Schur complements.  Scopes (``nbjax.fit.SCOPES``): the structure
factors are global, the ``free`` names are per shot (``panel_shifts``: per panel of a shot).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os

import jax
import jax.numpy as jnp
import numpy as np

from nbjax.errors import NBError


@dataclasses.dataclass(frozen=True)
class Input:
    """One shot to refine: a name, its DIALS list and experiment index, the data (panels, slow,
    fast; photons) and usable-pixel masks, or ``image`` (and ``mask``) specs to read them from
    when needed (``nbjax.io.images.read_images``: a process holds one shot's images at a time),
    and nanoBragg flags of its own (its ``-spectrum``)."""

    name: str
    elist: object
    index: int
    data: object = None
    masks: object = None
    args: tuple = ()
    image: str | None = None
    mask: str | None = None

    def load(self):
        """(data, masks): as given, or read from ``image``/``mask`` (trusted range: panel 0's)."""
        if self.data is not None:
            return self.data, self.masks
        from nbjax.io.images import read_experiment_images

        stack = read_experiment_images(self.elist.experiment(self.index), self.image, mask=self.mask)
        return stack.data, stack.mask


@dataclasses.dataclass(frozen=True)
class ShotResult:
    """A shot's refined values (user units) with standard errors (the structure factors'
    uncertainty included), its refined DIALS list, and its shoebox and pixel counts."""

    name: str
    names: tuple
    units: tuple
    start: np.ndarray
    values: np.ndarray
    stderr: np.ndarray
    refined_expt: dict
    shoeboxes: int
    pixels: int
    mixed: int
    group: int  # the group of its reflections (EnsembleResult.group)
    residuals: np.ndarray  # per panel: fitted pixels, mean and rms of (data - model) / sqrt(model)

    def value(self, label: str) -> float:
        return float(self.values[self.names.index(label)])

    def error(self, label: str) -> float:
        return float(self.stderr[self.names.index(label)])


@dataclasses.dataclass(frozen=True)
class EnsembleResult:
    """Refined structure factors of ``reflections`` (F, sigma_F: NaN where no shot sees the
    reflection), how many shots see each, the group of each (reflections linked by shots;
    the overall scale of each group is its own, ``_refine``), the start, per-shot results (this
    process's shots; ``shot_indices`` their place in the input list), the loss per step,
    convergence."""

    reflections: object
    F: np.ndarray
    sigma_F: np.ndarray
    F_start: np.ndarray
    shots_seen: np.ndarray
    group: np.ndarray  # per reflection its group of linked reflections (-1: unseen); scales are per group
    shots: list
    shot_indices: list
    table: dict  # every shot's (all processes'): names, units, (shots, values) start, value, stderr, counts,
    # residuals (shots, panels, 3): per panel fitted pixels, mean and rms of (d - m) / sqrt(m)
    loss_history: tuple
    converged: bool
    message: str
    steps: int


def _largest(values, reduce) -> np.ndarray:
    """Element-wise maximum over the processes of a small integer vector."""
    if reduce is None:
        return np.asarray(values)
    count, index = jax.process_count(), jax.process_index()
    table = np.zeros((count, len(values)), np.int64)
    table[index] = values
    return np.max(np.asarray(reduce(jnp.asarray(table))), axis=0)


def refine_ensemble(
    inputs,
    reflections,
    F_start,
    user_args,
    free,
    *,
    size: int = 11,
    threshold: float = 0.01,
    tilt: bool = True,
    loss=None,
    max_steps: int = 30,
    progress=None,
    checkpoint_dir: str | None = None,
    checkpoint_every: int = 1,
    resume: bool = False,
    distributed: bool = False,
    stop_after: int | None = None,
    method: str = "joint",
    prior: str | None = None,
) -> EnsembleResult:
    """Refine ``reflections``' structure factors (from ``F_start``: a number or (n,)) and the
    ``free`` per-shot parameters of every shot in ``inputs`` (module docstring).  ``user_args``:
    the nanoBragg flags the shots' DIALS lists lack (-N, -fluence, -spectrum, ...).
    ``checkpoint_dir``: the state is saved there every ``checkpoint_every`` steps and, with
    ``resume``, taken up from there.  ``distributed``: shots i = process_index mod process_count
    are this process's.  ``stop_after``: return after that many steps of this call (as a killed
    job would, for tests of resuming).  ``method``: "joint" (default) or "alternating"
    (``_refine.Refinement.step``); ``prior``: None or "wilson" (``_refine``)."""
    from nbjax.ensemble import _refine

    if method not in _refine.METHODS:
        raise NBError(f"ensemble: unknown method '{method}' (known: {', '.join(_refine.METHODS)})")
    F0 = np.broadcast_to(np.asarray(F_start, np.float64), (reflections.count,)).copy()
    refinement, local = setup_refinement(
        inputs, reflections, F0, user_args, free, size=size, threshold=threshold, tilt=tilt, loss=loss,
        progress=progress, distributed=distributed,
    )  # fmt: skip
    problems = refinement.problems
    refinement.method = method
    refinement.set_prior(prior)
    signature = _signature(inputs, reflections, free, F0, user_args, size, threshold, tilt, (method, prior))
    process = jax.process_index() if distributed else 0
    state = None
    if resume and checkpoint_dir:
        state = _refine.load_checkpoint(checkpoint_dir, process, signature)
    if state is None:
        state = refinement.start(F0)

    def checkpoint(st):
        if checkpoint_dir and (st.step % checkpoint_every == 0 or st.converged):
            _refine.save_checkpoint(checkpoint_dir, st, process, signature)

    limit = max_steps if stop_after is None else min(max_steps, state.step + stop_after)
    state = refinement.run(state, limit, progress, checkpoint if checkpoint_dir else None)
    if stop_after is not None and not state.converged and state.step < max_steps:
        state.message = f"stopped after {state.step} steps (stop_after)"
    sigma_u, shot_cov, group = refinement.errors(state, [_named(sp)[4] for sp in problems])
    sigma_F = 0.5 * state.F * sigma_u
    results = [
        _shot_result(sp, t, cov, int(group[sp.slots[0]]) if sp.slots[0] >= 0 else -1)
        for sp, t, cov in zip(problems, state.thetas, shot_cov, strict=True)
    ]
    table = _shot_table(results, local, len(inputs), refinement.reduce)
    return EnsembleResult(
        reflections, state.F, sigma_F, F0, refinement.shots_seen, group, results, local, table, tuple(state.history),
        state.converged, state.message, state.step,
    )  # fmt: skip


def setup_refinement(
    inputs, reflections, F0, user_args, free, *, size=11, threshold=0.01, tilt=True, loss=None, progress=None,
    distributed=False,
):  # fmt: skip
    """(the ``_refine.Refinement`` of this process's shots, their indices in ``inputs``): every
    shot set up (``_shots.prepare_shot``) and compiled into one program (its background planes,
    reflection slots and pixel tiles padded to the largest shot's, over all processes)."""
    from nbjax.ensemble import _refine
    from nbjax.ensemble._shots import prepare_shot
    from nbjax.fit import _engine
    from nbjax.fit._fit import build_problem
    from nbjax.fit._losses import Poisson
    from nbjax.fit._parameters import ReflectionFactors
    from nbjax.fit._still import SHARED_TILE, still_parameters

    if not jax.config.jax_enable_x64:
        raise NBError("ensemble: float64 needs jax.config.update('jax_enable_x64', True)")
    reduce = None
    if distributed:
        from nbjax.distributed import sum_over_processes as reduce
    if not np.all(np.isfinite(F0)) or not np.any(F0 > 0):
        raise NBError("ensemble: the starting structure factors must be finite and not all 0")
    from nbjax.distributed import local_indices

    too_few = "ensemble: {n} shots for {count} processes; give every process at least one shot"
    local = local_indices(len(inputs), distributed, too_few)

    shots = []
    for i in local:
        s = inputs[i]
        data, masks = s.load()
        shots.append(
            prepare_shot(
                s.name, s.elist, s.index, data, masks, reflections, F0, [*user_args, *s.args],
                size=size, threshold=threshold, tilt=tilt,
            )
        )  # fmt: skip
        del data, masks
        _refine.release_memory()
        if progress is not None:
            progress.setup(len(shots), len(local), shots[-1])
    tiles = [max(-(-c.count // SHARED_TILE) for c in s.pixels_of) for s in shots]
    planes, slots, tile_count = _largest(
        [max(s.shoeboxes for s in shots), max(len(s.slots) for s in shots), max(tiles)], reduce
    )
    planes = max(1, int(planes))
    slots = max(1, int(slots))
    problems = []
    shot_free = None
    for s in shots:
        experiment = s.elist.experiment(s.index)
        observations = [c.observation() for c in s.pixels_of]
        shared, per_panel = still_parameters(
            free, s.built, experiment, _Count(s.shoeboxes), None, None, tilt, planes, s.plane_start,
        )  # fmt: skip
        shared.append(ReflectionFactors(slots=slots))
        shot_free = [p.name for p in shared] + [p.name for p in per_panel]
        problem = build_problem(
            s.built.experiments, observations, shared, per_panel, loss=loss or Poisson(),
            tile=SHARED_TILE, tiles_multiple=int(tile_count),
        )  # fmt: skip
        layout = problem.layouts[0]
        span = next(sp for p, sp in zip(layout.params, layout.spans, strict=True) if p.role == "reflection_factors")
        factors = np.arange(*span)
        own = np.setdiff1d(np.arange(problem.theta0.size), factors)
        slot_numbers = np.full(slots, -1, np.int64)
        slot_numbers[: len(s.slots)] = s.slots
        problem.observations, problem.experiments = None, None  # the images: only the packed pixels stay
        _refine.release_memory()
        slim = dataclasses.replace(s, built=None, pixels_of=None)
        del observations
        place = None
        found = _engine.plane_span(layout)
        if found is not None:  # the planes' place among the own values (own: theta without the factors)
            place = (int(np.searchsorted(own, found[0])), int(np.searchsorted(own, found[0])) + found[1] - found[0],
                      found[2])  # fmt: skip
        problems.append(_refine.ShotProblem(slim, problem, own, factors, slot_numbers, np.array(problem.theta0), place))
    gauge = "scale" in (shot_free or [])
    return _refine.Refinement(problems, reflections, gauge, reduce), local


@dataclasses.dataclass(frozen=True)
class _Count:
    """Shoeboxes as ``still_parameters`` needs them once the planes' start is known: a count."""

    count: int


def _shot_table(results, local, n_shots, reduce) -> dict:
    """Every shot's values, errors and counts, gathered from the processes (each fills its own
    shots' rows; the rows are summed): {names, units, start, value, stderr (shots, values),
    shoeboxes, pixels, mixed (shots,)}."""
    first = results[0]
    k = len(first.names)
    rows = np.zeros((4, n_shots, k))
    counts = np.zeros((3, n_shots))
    residuals = np.zeros((n_shots, *first.residuals.shape))
    for i, r in zip(local, results, strict=True):
        rows[:, i] = (r.start, r.values, r.stderr, np.ones(k))
        counts[:, i] = (r.shoeboxes, r.pixels, r.mixed)
        residuals[i] = r.residuals
    if reduce is not None:
        rows, counts, residuals = (
            np.asarray(x) for x in reduce((jnp.asarray(rows), jnp.asarray(counts), jnp.asarray(residuals)))
        )
    return {
        "names": first.names, "units": first.units, "start": rows[0], "value": rows[1], "stderr": rows[2],
        "shoeboxes": counts[0].astype(int), "pixels": counts[1].astype(int), "mixed": counts[2].astype(int),
        "residuals": residuals,
    }  # fmt: skip


def _signature(inputs, reflections, free, F0, user_args, size, threshold, tilt, method) -> str:
    """A digest of what defines a refinement (a checkpoint of another one is refused)."""
    h = hashlib.sha256()
    for s in inputs:
        h.update(f"{s.name}|{s.index}|{s.args}|{s.image}|{s.mask}|".encode())
        if s.data is not None:
            h.update(np.ascontiguousarray(np.asarray(s.data, np.float64)).tobytes())
        for spec in (s.image, s.mask):  # files: their size and modification time
            path = None if spec is None else spec.split(":")[0]
            if path and os.path.exists(path):
                st = os.stat(path)
                h.update(f"{st.st_size}|{st.st_mtime_ns}|".encode())
    h.update(np.ascontiguousarray(reflections.hkl).tobytes())
    h.update(np.ascontiguousarray(F0).tobytes())
    h.update(repr((list(free), list(user_args), size, threshold, tilt, method)).encode())
    return h.hexdigest()


def _named(sp):
    """(names, units, user-value indices, theta indices, indices into the shot's own values) of
    the shot's named values: every parameter but the background planes and reflection factors."""
    problem = sp.problem
    layout = problem.layouts[0]
    names, units, keep_u, keep_t = [], [], [], []
    at_u = 0
    for p, (a, b) in zip(layout.params, layout.spans, strict=True):
        count = b - a
        if p.role not in ("background_planes", "reflection_factors"):
            names += problem.labels[at_u : at_u + count]
            units += problem.units[at_u : at_u + count]
            keep_u += list(range(at_u, at_u + count))
            keep_t += list(range(a, b))
        at_u += count
    position = {int(t): k for k, t in enumerate(sp.own)}
    return names, units, keep_u, keep_t, np.array([position[t] for t in keep_t], dtype=np.int64)


def _shot_result(sp, theta_own, cov_named, group: int) -> ShotResult:
    """The shot's named values (``_named``) with their errors (``cov_named``: their covariance
    in theta), and its refined DIALS list."""
    from nbjax.fit import _engine
    from nbjax.fit._still import refined_list

    problem = sp.problem
    theta = np.array(sp.theta)
    theta[sp.own] = theta_own
    theta[sp.factors] = 1.0
    names, units, keep_u, keep_t, _ = _named(sp)
    G = np.asarray(jax.jacfwd(problem.user_values)(jnp.asarray(theta)))[np.ix_(keep_u, keep_t)]
    cov = G @ cov_named @ G.T
    values = np.asarray(problem.user_values(jnp.asarray(theta)))[keep_u]
    start = np.asarray(problem.user_values(jnp.asarray(problem.theta0)))[keep_u]
    fitted = [_engine.experiment(e, lay, jnp.asarray(theta)) for e, lay in zip(
        problem.objective.refs, problem.layouts, strict=True)]  # fmt: skip
    roles = {p.name for p in problem.layouts[0].params}
    mosaic = float(values[names.index("mosaic_spread")]) if "mosaic_spread" in names else None
    refined = refined_list(sp.shot.elist, sp.shot.index, fitted, roles, mosaic)
    return ShotResult(
        sp.shot.name, tuple(names), tuple(units), start, values, np.sqrt(np.maximum(np.diag(cov), 0.0)),
        refined, sp.shot.shoeboxes, sp.shot.pixels, sp.shot.mixed, group, _panel_residuals(problem, theta),
    )  # fmt: skip


def _panel_residuals(problem, theta) -> np.ndarray:
    """(panels, 3): per panel its fitted pixels and the mean and rms of the Pearson residuals
    (d - m) / sqrt(m) at the refined model (a good model: mean ~0, rms ~1 for Poisson data)."""
    obj = problem.objective
    models = obj.passes.images(jnp.asarray(theta), obj.refs, obj.data)
    out = np.zeros((len(models), 3))
    for p, (m, tiles) in enumerate(zip(models, obj.data, strict=True)):
        valid = np.asarray(tiles[2]).reshape(-1)
        d = np.asarray(tiles[3]).reshape(-1)[valid]
        m = np.asarray(m)[valid]
        z = (d - m) / np.sqrt(np.maximum(m, 1e-12))
        out[p] = (z.size, float(np.mean(z)) if z.size else 0.0, float(np.sqrt(np.mean(z * z))) if z.size else 0.0)
    return out
