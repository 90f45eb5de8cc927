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
factors are global, the ``free`` names are per shot (``panel_shifts``: per panel of a shot), the
``shared`` names are one copy for all shots: "global" (a spectrum calibration:
``spectrum_shift``, ``spectrum_scale``) or, for a per-panel parameter, "global_panel", one copy
per panel group (detector metrology: ``panel_shifts``, ``panel_rotations``; ``panel_groups``
gives each panel's group, by default its own).
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
    shared: dict = dataclasses.field(default_factory=dict)  # the shared values: names, units, start, value, stderr
    sharing: object = None  # their ``Shared`` record (places, gauges: ``Shared.in_gauge``)

    def shared_value(self, label: str) -> float:
        return float(self.shared["value"][self.shared["names"].index(label)])

    def shared_error(self, label: str) -> float:
        return float(self.shared["stderr"][self.shared["names"].index(label)])


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
    shared=(),
    panel_groups=None,
    restrain=None,
) -> EnsembleResult:
    """Refine ``reflections``' structure factors (from ``F_start``: a number or (n,)) and the
    ``free`` per-shot parameters of every shot in ``inputs`` (module docstring).  ``user_args``:
    the nanoBragg flags the shots' DIALS lists lack (-N, -fluence, -spectrum, ...).
    ``checkpoint_dir``: the state is saved there every ``checkpoint_every`` steps and, with
    ``resume``, taken up from there.  ``distributed``: shots i = process_index mod process_count
    are this process's.  ``stop_after``: return after that many steps of this call (as a killed
    job would, for tests of resuming).  ``method``: "joint" (default) or "alternating"
    (``_refine.Refinement.step``); ``prior``: None or "wilson" (``_refine``).  ``shared``: names
    of experiment parameters every shot shares (module docstring), ``panel_groups`` the group of
    each panel for the per-panel ones (default: every panel its own).  ``restrain``: {free name:
    sigma} Gaussian priors on per-shot values, centred at each shot's start, sigma in the
    parameter's user units (misset: deg; cell: A and deg alike)."""
    from nbjax.ensemble import _refine

    if method not in _refine.METHODS:
        raise NBError(f"ensemble: unknown method '{method}' (known: {', '.join(_refine.METHODS)})")
    F0 = np.broadcast_to(np.asarray(F_start, np.float64), (reflections.count,)).copy()
    refinement, local = setup_refinement(
        inputs, reflections, F0, user_args, free, size=size, threshold=threshold, tilt=tilt, loss=loss,
        progress=progress, distributed=distributed, shared=shared, panel_groups=panel_groups, restrain=restrain,
    )  # fmt: skip
    problems = refinement.problems
    refinement.method = method
    refinement.set_prior(prior)
    signature = _signature(
        inputs, reflections, free, F0, user_args, size, threshold, tilt,
        (method, prior, list(shared), panel_groups, sorted((restrain or {}).items())),
    )  # fmt: skip
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
    sigma_z, cov_gamma, shot_cov, group = refinement.errors(state, [_named(sp)[4] for sp in problems])
    sigma_F = 0.5 * state.F * sigma_z[: reflections.count]
    results = [
        _shot_result(sp, t, cov, int(group[sp.slots[0]]) if sp.slots[0] >= 0 else -1)
        for sp, t, cov in zip(problems, state.thetas, shot_cov, strict=True)
    ]
    table = _shot_table(results, local, len(inputs), refinement.reduce)
    return EnsembleResult(
        reflections, state.F, sigma_F, F0, refinement.shots_seen, group, results, local, table, tuple(state.history),
        state.converged, state.message, state.step, refinement.shared.values(state.gamma, cov_gamma),
        refinement.shared,
    )  # fmt: skip


def setup_refinement(
    inputs, reflections, F0, user_args, free, *, size=11, threshold=0.01, tilt=True, loss=None, progress=None,
    distributed=False, shared=(), panel_groups=None, restrain=None,
):  # fmt: skip
    """(the ``_refine.Refinement`` of this process's shots, their indices in ``inputs``): every
    shot set up (``_shots.prepare_shot``) and compiled into one program (its background planes,
    reflection slots and pixel tiles padded to the largest shot's, over all processes); the
    ``shared`` values' places (``Shared``) in ``refinement.shared``."""
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
    common = None
    for s in shots:
        experiment = s.elist.experiment(s.index)
        observations = [c.observation() for c in s.pixels_of]
        own_shot, per_panel = still_parameters(
            free, s.built, experiment, _Count(s.shoeboxes), None, None, tilt, planes, s.plane_start,
        )  # fmt: skip
        own_shot, per_panel = restrained(restrain, own_shot, per_panel, s.built, experiment, free)
        own_shot.append(ReflectionFactors(slots=slots))
        common_shot, common_panel = shared_parameters(shared, free, s.built, experiment)
        groups = panel_groups_of(panel_groups, len(s.built.experiments), s.name)
        common_panel = [_pivoted(p, s.built.experiments, groups) for p in common_panel]
        shot_free = [p.name for p in own_shot] + [p.name for p in per_panel]
        problem = build_problem(
            s.built.experiments, observations, own_shot + common_shot, per_panel + common_panel,
            loss=loss or Poisson(), tile=SHARED_TILE, tiles_multiple=int(tile_count),
        )  # fmt: skip
        if common is None:
            common = Shared.of(problem, experiment, reflections.count, groups, "misset" in shot_free)
        links, link_at = common.places(problem, s.name)
        layout = problem.layouts[0]
        span = next(sp for p, sp in zip(layout.params, layout.spans, strict=True) if p.role == "reflection_factors")
        factors = np.arange(*span)
        own = np.setdiff1d(np.arange(problem.theta0.size), np.concatenate([factors, links]))
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
        problems.append(
            _refine.ShotProblem(slim, problem, own, factors, slot_numbers, np.array(problem.theta0), place, links,
                                link_at - reflections.count)
        )  # fmt: skip
    gauge = "scale" in (shot_free or [])
    refinement = _refine.Refinement(
        problems, reflections, gauge, reduce, shared_start=common.start, shared_gauges=common.gauges
    )
    refinement.shared = common
    return refinement, local


def restrained(restrain, own, per_panel, built, experiment, free):
    """(own, per-panel) parameters with the Gaussian priors ``restrain`` ({free name: sigma})
    centred at their starting values (the shot's own: its cell, N, ...)."""
    from nbjax.fit._still import still_parameters

    if not restrain:
        return own, per_panel
    sigmas = {}
    for name, sigma in restrain.items():
        if name not in [x.strip() for x in free]:
            raise NBError(f"ensemble: -restrain {name}: not a per-shot parameter (-free)")
        if not (np.isfinite(sigma) and sigma > 0):
            raise NBError(f"ensemble: -restrain {name}={sigma}: the sigma must be positive")
        whole, panel = still_parameters([name], built, experiment, _Count(0), None, None)
        for p in [*whole, *panel]:
            if p.role != "experiment":
                raise NBError(f"ensemble: -restrain {name}: only a parameter of the experiment (misset, cell, N, ...)")
            sigmas[p.name] = float(sigma)

    def with_prior(p, exp):
        if p.name not in sigmas:
            return p
        mean = tuple(float(x) for x in np.ravel(p.initial(exp)))
        return dataclasses.replace(p, prior=(mean, sigmas[p.name]))

    return ([with_prior(p, built.experiments[0]) for p in own],
            [with_prior(p, built.experiments[0]) for p in per_panel])  # fmt: skip


def shared_parameters(names, free, built, experiment):
    """(one copy for all shots, one copy per panel group): the parameters ``names`` (``-free``
    names of experiment parameters) with scopes "global" and "global_panel"."""
    from nbjax.fit._still import still_parameters

    names = [x.strip() for x in names if x.strip()]
    twice = sorted(set(names) & {x.strip() for x in free})
    if twice:
        raise NBError(f"ensemble: {', '.join(twice)} cannot be both per shot (-free) and shared (-shared)")
    whole, panel = still_parameters(names, built, experiment, _Count(0), None, None)
    for p in [*whole, *panel]:
        if p.role != "experiment":
            raise NBError(f"ensemble: -shared {p.name}: only a parameter of the experiment (detector, spectrum) "
                          "can be shared by the shots")  # fmt: skip
    return ([dataclasses.replace(p, scope="global") for p in whole],
            [dataclasses.replace(p, scope="global_panel") for p in panel])  # fmt: skip


def panel_groups_of(panel_groups, panels: int, name: str = "") -> np.ndarray:
    """Every panel's group: ``panel_groups`` (one number per panel, 0, 1, ... without gaps) or,
    None, each panel its own."""
    if panel_groups is None:
        return np.arange(panels)
    groups = np.asarray(panel_groups, np.int64).reshape(-1)
    count = int(groups.max()) + 1 if groups.size else 0
    if groups.size != panels or groups.min(initial=0) < 0 or set(groups.tolist()) != set(range(count)):
        where = f" ({name})" if name else ""
        raise NBError(f"ensemble: -panel_groups gives {groups.size} group numbers for {panels} panels{where}; give one "
                      "per panel, numbered from 0 without gaps")  # fmt: skip
    return groups


def _centres(experiments) -> np.ndarray:
    """(panels, 3): every panel's centre (m, lab frame)."""
    out = []
    for e in experiments:
        d = e.detector
        out.append(np.asarray(d.pix0) + 0.5 * float(d.pixel_size) * (d.fpixels * np.asarray(d.fdet)
                                                                       + d.spixels * np.asarray(d.sdet)))  # fmt: skip
    return np.array(out)


def _group_centres(experiments, groups) -> np.ndarray:
    """(groups, 3): the mean of each group's panel centres (m)."""
    centres = _centres(experiments)
    return np.array([centres[groups == g].mean(axis=0) for g in range(int(groups.max()) + 1)])


def _pivoted(p, experiments, groups):
    """A shared ``PanelRotation`` as one copy per panel turning about its group's centre (a tuple,
    ``nbjax.fit.fit``'s per-image copies); other parameters as they are."""
    from nbjax.fit._parameters import PanelRotation

    if not isinstance(p, PanelRotation) or np.bincount(groups).max() == 1:
        return p
    offsets = _group_centres(experiments, groups)[groups] - _centres(experiments)
    return tuple(dataclasses.replace(p, pivot_offset=tuple(float(x) for x in o)) for o in offsets)


@dataclasses.dataclass(frozen=True)
class Shared:
    """The values all shots share, gamma (theta units): per copy of a shared parameter (one, or
    one per panel group) its declaration, places in gamma and labels; the start gamma0."""

    copies: tuple  # (parameter, places (size,)) per copy
    groups: np.ndarray  # the group of every panel
    names: tuple
    units: tuple
    start: np.ndarray
    n: int  # the structure factors before them in z = (u, gamma)
    gauges: tuple = ()  # vectors c (k,): each step and the error bars hold c . dgamma = 0
    nulls: tuple = ()  # per gauge the direction v (k,) along which the data say nothing
    turns: tuple = ()  # per gauge the crystals' turn along v (a rotation vector, mrad per unit)

    @classmethod
    def of(cls, problem, experiment, n: int, groups, misset_free: bool = False) -> "Shared":
        """The shared values of a shot's compiled ``problem`` (the first one; every shot has the
        same parameters), ``groups`` the group of each panel (``panel_groups_of``).  With the
        panels' rotations and shifts shared and every crystal's orientation free, turning the
        whole detector and every crystal about the beam changes no pixel (bar polarization): the
        gauge holds the groups' summed rotation about the beam, sum_g b . drot_g = 0.  That
        direction v: per group its rotation b (mrad) and its centre's shift b x c_g (mm per
        mrad, c_g from the sample)."""
        count = int(groups.max()) + 1
        names_of = [p.name for p in experiment.panels]
        copies, names, units, start = [], [], [], []
        at = 0
        for p, (a, b) in _shared_spans(problem, 0):
            size = b - a
            labels = p.labels(problem.experiments[0])
            for g in range(count if p.scope == "global_panel" else 1):
                places = np.arange(at, at + size)
                copies.append((p, places))
                if p.scope == "global_panel":
                    members = np.flatnonzero(groups == g)
                    tag = names_of[members[0]] if members.size == 1 else f"group{g}"
                    names += [f"{x}@{tag}" for x in labels]
                    span = _shared_spans(problem, int(members[0]))
                    a0, b0 = next(sp for q, sp in span if q.name == p.name)
                    start.append(problem.theta0[a0:b0])
                else:
                    names += labels
                    start.append(problem.theta0[a:b])
                units += [p.units] * size
                at += size
        k = sum(places.size for _, places in copies)
        gauges = []
        kinds = {p.name for p, _ in copies if p.scope == "global_panel"}
        nulls, turns = [], []
        if misset_free and {"panel_rotation", "panel_shift"} <= kinds:
            beam = np.asarray(problem.experiments[0].detector.beam, np.float64)
            beam = beam / np.linalg.norm(beam)
            centres = _group_centres(problem.experiments, groups) * 1e3  # mm
            c, v = np.zeros(k), np.zeros(k)
            rotations = [places for p, places in copies if p.name == "panel_rotation"]
            shifts = [places for p, places in copies if p.name == "panel_shift"]
            for g in range(count):
                c[rotations[g]] = beam
                v[rotations[g]] = beam
                v[shifts[g]] = 1e-3 * np.cross(beam, centres[g])
            gauges.append(c)
            nulls.append(v)
            turns.append(beam)
        return cls(tuple(copies), groups, tuple(names), tuple(units), np.concatenate(start) if start else np.zeros(0),
                   n, tuple(gauges), tuple(nulls), tuple(turns))  # fmt: skip

    def _moves(self, gamma) -> list[float]:
        """Per gauge how far ``gamma`` lies from it along its null direction."""
        gamma = np.asarray(gamma, np.float64)
        return [float(c @ (gamma - self.start) / (c @ v)) for c, v in zip(self.gauges, self.nulls, strict=True)]

    def in_gauge(self, gamma, missets_deg=None):
        """``gamma`` (a truth, theta units) moved along the directions the data do not see into
        the gauge the refinement holds (first order: c . (gamma - start) = 0 for every gauge);
        with ``missets_deg`` (shots, 3), (gamma, the crystals' missets moved the same way)."""
        moves = self._moves(gamma)
        gamma = np.array(gamma, np.float64) - sum((a * v for a, v in zip(moves, self.nulls, strict=True)), 0.0)
        if missets_deg is None:
            return gamma
        turn = sum((a * t for a, t in zip(moves, self.turns, strict=True)), np.zeros(3))
        return gamma, np.asarray(missets_deg, np.float64) - np.rad2deg(1e-3 * turn)

    def places(self, problem, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(theta indices, places in z = (u, gamma)) of a shot's shared values."""
        if len(problem.layouts) != self.groups.size:
            raise NBError(f"ensemble: {name} has {len(problem.layouts)} panels, the first shot {self.groups.size}: "
                          "shared panel values need one detector")  # fmt: skip
        links, at = [], []
        for i in range(len(problem.layouts)):
            k = 0
            for p, (a, b) in _shared_spans(problem, i):
                while self.copies[k][0].name != p.name:
                    k += 1
                copy = k + (int(self.groups[i]) if p.scope == "global_panel" else 0)
                if p.scope == "global" and i > 0:
                    continue  # one span, shared by every panel's layout
                links.append(np.arange(a, b))
                at.append(self.n + self.copies[copy][1])
        if not links:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(links), np.concatenate(at)

    def values(self, gamma, cov) -> dict:
        """{names, units, start, value, stderr} in user units (standard errors through the
        transforms' Jacobians); {} without shared values."""
        if not self.copies:
            return {}
        start, value, stderr = [], [], []
        for p, places in self.copies:
            start.append(np.asarray(p.from_theta(jnp.asarray(self.start[places]))))
            value.append(np.asarray(p.from_theta(jnp.asarray(gamma[places]))))
            J = np.asarray(jax.jacfwd(p.from_theta)(jnp.asarray(gamma[places])))
            stderr.append(np.sqrt(np.maximum(np.diag(J @ cov[np.ix_(places, places)] @ J.T), 0.0)))
        return {"names": self.names, "units": self.units, "start": np.concatenate(start),
                "value": np.concatenate(value), "stderr": np.concatenate(stderr)}  # fmt: skip


def _shared_spans(problem, panel: int):
    """(parameter, theta span) of the shared parameters in ``panel``'s layout, in order (the
    reflection factors, global too, are the structure factors' own business: ``_refine``)."""
    layout = problem.layouts[panel]
    return [
        (p, sp)
        for p, sp in zip(layout.params, layout.spans, strict=True)
        if p.shared_by_shots and p.role != "reflection_factors"
    ]


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
        if p.role not in ("background_planes", "reflection_factors") and not p.shared_by_shots:
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
