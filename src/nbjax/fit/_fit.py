"""``nbjax.fit.fit``: fit free parameters of physical-mode Experiments to observed images.

    result = fit(experiment, observation, [Weights(), Wavelengths(), Scale()])

The model of each image is m = scale sum_s w_s I_s + background (``_parameters``); the loss
is a likelihood (``_losses``: Poisson by default) plus Gaussian restraints; the optimiser is
Levenberg-Marquardt on the Fisher matrix by default (``_solvers``).  Error bars: the covariance
of the user values is G F^-1 G^T, with F the Fisher information of the chosen likelihood (plus
the restraints' curvature) at the optimum and G = du/dtheta.

A value at its bound has no error bar.  With ``bounds=(lo, hi)`` the transform is
u = lo + (hi - lo) s, s = sigmoid(theta), so du/dtheta = (hi - lo) s (1 - s): where the data push
u against lo or hi, s goes to 0 or 1 and G F^-1 G^T shrinks to a meaningless ~0.  A value is
"at bound" when s = (u - lo)/(hi - lo) is within ``AT_BOUND`` = 1e-6 of 0 or 1: du/dtheta is
then below 1e-6 (hi - lo), under 4e-6 of its value mid-interval, (hi - lo)/4, so the error bar is
at most 4e-6 of what the same Fisher information gives there.  Its ``stderr`` is NaN
(``error(name)`` too), the printed table says ``at bound`` and ``as_dict`` gives
``"at_bound": true, "stderr": null``; its rows of ``covariance`` and ``correlation`` are kept as
computed and mean nothing either.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from nbjax.distributed import local_indices
from nbjax.errors import NBError
from nbjax.experiment import Experiment
from nbjax.fit import _engine
from nbjax.fit._data import Observation
from nbjax.fit._losses import AbstractLoss, Poisson
from nbjax.fit._parameters import AbstractParameter
from nbjax.fit._solvers import AbstractMethod, LevenbergMarquardt

AT_BOUND = 1e-6  # sigmoid(theta) this close to 0 or 1: the value is at its bound (module docstring)


class FitResult(eqx.Module):
    """Fitted values in user units with standard errors, covariance and correlation (from the
    Fisher information at the optimum), the loss history, and per image the fitted Experiment,
    model image and residual (data - model; 0 where masked).  ``at_bound``: the values at a
    bound of their ``bounds``, whose ``stderr`` is NaN (module docstring)."""

    names: tuple = eqx.field(static=True)
    units: tuple = eqx.field(static=True)
    values: np.ndarray
    start: np.ndarray
    stderr: np.ndarray
    at_bound: np.ndarray
    covariance: np.ndarray
    correlation: np.ndarray
    loss_history: tuple = eqx.field(static=True)
    converged: bool = eqx.field(static=True)
    message: str = eqx.field(static=True)
    experiments: list
    model_images: list
    residuals: list
    theta: np.ndarray

    def value(self, label: str) -> float:
        return float(self.values[self.names.index(label)])

    def error(self, label: str) -> float:
        """The standard error of a value; NaN for a value at its bound."""
        return float(self.stderr[self.names.index(label)])

    def as_dict(self) -> dict:
        """Plain JSON-ready values; a value at its bound has ``"stderr": null, "at_bound": true``."""
        return {
            "parameters": [
                {
                    "name": n,
                    "units": u,
                    "start": float(s),
                    "value": float(v),
                    "stderr": None if b else float(e),
                    "at_bound": bool(b),
                }
                for n, u, s, v, e, b in zip(
                    self.names, self.units, self.start, self.values, self.stderr, self.at_bound, strict=True
                )
            ],
            "covariance": np.asarray(self.covariance).tolist(),
            "correlation": np.asarray(self.correlation).tolist(),
            "loss_history": list(self.loss_history),
            "converged": self.converged,
            "message": self.message,
        }

    def __str__(self) -> str:
        width = max(len(n) for n in self.names) if self.names else 4
        lines = [f"{'parameter':<{width}}  {'start':>14}  {'fitted':>14}  {'+-':>11}  units"]
        for n, u, s, v, e, b in zip(
            self.names, self.units, self.start, self.values, self.stderr, self.at_bound, strict=True
        ):
            error = f"{'at bound':>11}" if b else f"{e:11.4g}"
            lines.append(f"{n:<{width}}  {s:14.8g}  {v:14.8g}  {error}  {u}")
        lines.append(
            f"loss {self.loss_history[0]:.10g} -> {self.loss_history[-1]:.10g} in {len(self.loss_history) - 1} "
            f"steps; {'converged' if self.converged else 'NOT converged'}: {self.message}"
        )
        return "\n".join(lines)


@dataclasses.dataclass
class Objective:
    """The loss of theta with restraints: ``value`` (loss only) and ``normal`` (loss, gradient,
    Fisher matrix), compiled, or ``traceable`` inside another jit."""

    passes: object
    refs: tuple
    data: tuple
    restraint: object  # theta -> (loss, g, F) of the Gaussian restraints
    reduce: object = None  # sums a pass's outputs over the processes of a distributed fit

    def _sum(self, out, traceable):
        if self.reduce is None:
            return out
        if traceable:
            raise NBError(
                "fit: a distributed fit (jax.distributed) runs Levenberg-Marquardt; L-BFGS and Adam are single-process"
            )
        return self.reduce(out)

    def value(self, theta, traceable=False):
        f = self.passes.traceable_value if traceable else self.passes.value
        return self._sum(f(theta, self.refs, self.data), traceable) + self.restraint(theta)[0]

    def gradient(self, theta, traceable=False):
        f = self.passes.traceable_gradient if traceable else self.passes.gradient
        L, g = self._sum(f(theta, self.refs, self.data), traceable)
        rL, rg, _ = self.restraint(theta)
        return L + rL, g + rg

    def normal(self, theta, traceable=False):
        f = self.passes.traceable_normal if traceable else self.passes.normal
        L, g, F = self._sum(f(theta, self.refs, self.data), traceable)
        rL, rg, rF = self.restraint(theta)
        return L + rL, g + rg, F + rF


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _of_image(p, i: int):
    """Image ``i``'s copy of a per-image parameter: ``p`` itself, or ``p[i]`` of a tuple of
    copies that differ in static settings (a panel group's turning point, ``PanelRotation``)."""
    return p[i] if isinstance(p, tuple) else p


def _check(exps, free, per_image):
    per_image = [_of_image(p, 0) for p in per_image]
    for e in exps:
        if not isinstance(e, Experiment):
            raise NBError("fit: expected nbjax Experiments (nbjax.experiment_from_args(..., physical=True))")
        if e.model.c_compatible:
            weights = any(p.role == "weights" for p in list(free) + list(per_image))
            what = (
                "freeing source weights in C-compatible mode (the C program ignores them)"
                if weights
                else "fitting the C-compatible model"
            )
            raise NBError(f"fit: {what} is refused; build the Experiment with physical=True")
        w = np.asarray(e.beam.weights)
        if np.any(w < 0) or not np.any(w > 0):
            raise NBError("fit: source weights must be >= 0 and not all zero")
    roles = [p.role for p in free] + [p.role for p in per_image]
    for role in ("weights", "scale", "background", "background_planes", "reflection_factors"):
        if roles.count(role) > 1:
            raise NBError(f"fit: more than one free parameter sets the {role}")
    names = [p.name for p in free] + [p.name for p in per_image]
    if len(set(names)) != len(names):
        raise NBError(f"fit: a parameter is free twice: {names}")


@dataclasses.dataclass
class Problem:
    """A fit set up: the objective of the flat theta, its start, and how to read it."""

    objective: Objective
    theta0: np.ndarray
    labels: list
    units: list
    layouts: list
    packed: list
    user_values: object
    local: list  # indices of the images this process computes
    experiments: list  # the starting Experiment of every image
    observations: list
    bounds: list = dataclasses.field(default_factory=list)  # per user value: (lo, hi) of its transform, or None


def build_problem(
    exps, obs, free, per_image=(), loss=Poisson(), dtype=jnp.float64, tile=None, distributed=False, tiles_multiple=1
) -> Problem:
    """The objective of a fit (``fit`` without optimising): for benchmarks and custom loops,
    ``problem.objective.gradient(theta)`` is the one-pass (loss, gradient).  ``distributed``:
    this process computes images process_index, process_index + process_count, ... and the
    passes are summed over the processes (``nbjax.distributed``).  ``tiles_multiple`` > 1 keeps
    ``tile`` as given and pads every image's tile count up to a multiple of it, so fits of other
    data with the same parameters (a list of stills) run the same compiled passes."""
    exps, obs = _as_list(exps), _as_list(obs)
    if len(exps) == 1 and len(obs) > 1:
        exps = exps * len(obs)
    if len(exps) != len(obs):
        raise NBError(f"fit: {len(obs)} observations but {len(exps)} experiments")
    free, per_image = tuple(free), tuple(per_image)
    _check(exps, free, per_image)
    if not jax.config.jax_enable_x64 and dtype == jnp.float64:
        raise NBError("fit: float64 needs jax.config.update('jax_enable_x64', True) before building the Experiment")

    theta0, labels, units, layouts, bounds = _theta_layout(exps, obs, free, per_image)
    n = theta0.size
    if n == 0:
        raise NBError("fit: no free parameters")

    S = exps[0].beam.wavelengths.shape[0]
    tangent_sets = [_engine.tangents_for(layout, n, S) for layout in layouts]
    tile = tile or min(_engine.default_tile(e, t.vectors.shape[0]) for e, t in zip(exps, tangent_sets, strict=True))
    too_few = "fit: {n} images for {count} processes; give every process at least one image"
    local = local_indices(len(exps), distributed, too_few)
    if tiles_multiple <= 1:
        tile = min(tile, max(1, max(int(np.count_nonzero(obs[i].mask)) for i in local)))
    packed = _pack_data(exps, obs, local, tile, dtype, tiles_multiple)
    # the compiled passes depend on the transforms, not on the starting values: fits that differ
    # only in ``start`` (a shoebox fit's background planes) share one compilation
    engine_layouts = tuple(_unstarted(layouts[i]) for i in local)
    passes = _engine.make_passes(engine_layouts, n, S, loss, jnp.dtype(dtype))

    user_values = functools.partial(_user_values, tuple(layouts), len(free))

    restraint = _restraints(layouts, free)
    reduce = None
    if distributed:
        from nbjax.distributed import sum_over_processes as reduce
    objective = Objective(passes, tuple(exps[i] for i in local), tuple(packed), restraint, reduce)
    return Problem(objective, theta0, labels, units, layouts, packed, user_values, local, exps, obs, bounds=bounds)


def _unstarted(layout):
    """``layout`` with its parameters' starting values and priors dropped (they are in theta0
    and the restraint, not in the compiled passes: shots whose priors are centred on their own
    starts share one compilation)."""
    params = tuple(
        dataclasses.replace(p, start=None, prior=None) if p.start is not None or p.prior is not None else p
        for p in layout.params
    )
    return _engine.Layout(params, layout.spans, layout.shapes)


def _theta_layout(exps, obs, free, per_image):
    """The flat theta: the shared parameters' values, then each image's own block.  Returns
    (theta0, labels, units, one engine Layout per image, the transform's (lo, hi) or None per
    user value)."""
    theta0, labels, units, layouts, bounds = [], [], [], [], []
    offset = 0
    shared_spans = []
    for p in free:
        t = np.asarray(p.to_theta(p.initial(exps[0])))
        shared_spans.append(((offset, offset + t.size), t.shape))
        theta0.append(t.reshape(-1))
        labels += p.labels(exps[0])
        units += [p.units] * len(p.labels(exps[0]))
        bounds += [p.transform_bounds()] * len(p.labels(exps[0]))
        offset += t.size
    for i, e in enumerate(exps):
        spans, shapes = [s for s, _ in shared_spans], [sh for _, sh in shared_spans]
        own = tuple(_of_image(p, i) for p in per_image)
        for p in own:
            t = np.asarray(p.to_theta(p.initial(e)))
            spans.append((offset, offset + t.size))
            shapes.append(t.shape)
            theta0.append(t.reshape(-1))
            suffix = f"@{obs[i].name}" if len(exps) > 1 else ""
            labels += [lab + suffix for lab in p.labels(e)]
            units += [p.units] * len(p.labels(e))
            bounds += [p.transform_bounds()] * len(p.labels(e))
            offset += t.size
        layouts.append(_engine.Layout(free + own, tuple(spans), tuple(shapes)))
    return (np.concatenate(theta0) if theta0 else np.zeros(0)), labels, units, layouts, bounds


def _pack_data(exps, obs, local, tile, dtype, tiles_multiple=1):
    """The usable pixels of this process's images as tiles of ``tile``: per image (fpix, spix,
    valid, data, sigma, shoebox k, dx, dy, reflection slot r), each (n_tiles, tile), padded
    to one tile count."""
    packed = []
    for i, (e, o) in enumerate(zip(exps, obs, strict=True)):
        if i not in local:
            continue
        shape = (e.detector.spixels, e.detector.fpixels)
        if tuple(np.shape(o.image)) != shape:
            raise NBError(
                f"fit: {o.name} is {np.shape(o.image)[1]}x{np.shape(o.image)[0]} pixels, the model detector "
                f"{shape[1]}x{shape[0]}"
            )
        fpix, spix, valid = _engine.pixel_tiles(o.mask, tile)
        image = np.asarray(o.image, np.float64)
        sigma = np.ones_like(image) if o.sigma is None else np.asarray(o.sigma, np.float64)
        if o.shoebox is None:
            k, dx, dy = np.full(fpix.shape, -1, np.int32), np.zeros(fpix.shape), np.zeros(fpix.shape)
        else:
            k = np.asarray(o.shoebox, np.int32)[spix, fpix]
            dx, dy = (np.asarray(o.offsets[c], np.float64)[spix, fpix] for c in (0, 1))
        r = np.full(fpix.shape, -1, np.int32)
        if o.reflection is not None:
            r = np.asarray(o.reflection, np.int32)[spix, fpix]
        data = (image[spix, fpix].astype(dtype), sigma[spix, fpix].astype(dtype))
        packed.append((fpix, spix, valid, *data, k, dx.astype(dtype), dy.astype(dtype), r))
    return _pad_tiles(packed, tiles_multiple)


def _user_values(layouts, n_shared, theta):
    """Every parameter's user values, flat: the shared ones once, then each image's own."""
    out = []
    for k, layout in enumerate(layouts):
        parts = _engine.split(theta, layout)
        for j, (p, t) in enumerate(zip(layout.params, parts, strict=True)):
            if j < n_shared and k > 0:
                continue
            out.append(jnp.ravel(p.from_theta(t)))
    return jnp.concatenate(out)


def _pad_tiles(packed, multiple=1):
    """Pad every image's tiles to the same count, a multiple of ``multiple`` (with invalid
    copies of its last tile), so images of one static shape can be vmapped."""
    most = max(p[0].shape[0] for p in packed)
    most = -(-most // multiple) * multiple
    out = []
    for fpix, spix, valid, *rest in packed:
        extra = most - fpix.shape[0]
        padded = (_pad_rows(fpix, extra), _pad_rows(spix, extra), _pad_rows(valid, extra, False))
        out.append(tuple(jnp.asarray(a) for a in (*padded, *(_pad_rows(r, extra) for r in rest))))
    return out


def _pad_rows(a, extra, fill=None):
    """``a`` with ``extra`` more rows: copies of its last row, or ``fill``."""
    if not extra:
        return a
    rows = np.repeat(a[-1:], extra, axis=0) if fill is None else np.full((extra,) + a.shape[1:], fill)
    return np.concatenate([a, rows])


def _user_values_of(p, sl, shape, theta):
    """Parameter ``p``'s user values (flat) from the whole theta."""
    return jnp.ravel(p.from_theta(theta[sl].reshape(shape)))


def fit(
    experiment: Experiment | Sequence[Experiment],
    data: Observation | Sequence[Observation],
    free: Sequence[AbstractParameter],
    *,
    per_image: Sequence[AbstractParameter] = (),
    loss: AbstractLoss = Poisson(),
    method: AbstractMethod = LevenbergMarquardt(),
    dtype=jnp.float64,
    tile: int | None = None,
    progress=None,
    distributed: bool = False,
    tiles_multiple: int = 1,
) -> FitResult:
    """Fit ``free`` (shared by all images) and ``per_image`` parameters (one copy per image; a
    tuple of one parameter per image where the copies differ in static settings) of
    physical-mode Experiments (one per image, same source count) to the observations.
    ``progress(step, loss, damping)`` is called after every step.  ``distributed=True`` (after
    ``nbjax.distributed.initialize``; every process passes the same arguments): each process
    computes its share of the images and the loss, gradient and Fisher matrix are summed over
    the processes, so every process takes the same steps and returns the same values; model
    images and residuals are filled in for this process's images only (None for the others).
    ``tiles_multiple``: see ``build_problem``."""
    problem = build_problem(experiment, data, free, per_image, loss, dtype, tile, distributed, tiles_multiple)
    exps, obs = problem.experiments, problem.observations
    objective, theta0, labels, units, layouts, packed, user_values = (
        problem.objective,
        problem.theta0,
        problem.labels,
        problem.units,
        problem.layouts,
        problem.packed,
        problem.user_values,
    )
    theta, history, converged, message = method.run(objective, jnp.asarray(theta0, dtype), progress)

    _, _, F = objective.normal(theta)
    cov_theta = np.linalg.pinv(np.asarray(F), hermitian=True)
    G = np.asarray(jax.jacfwd(user_values)(theta))
    values = np.asarray(user_values(theta))
    start = np.asarray(user_values(jnp.asarray(theta0, dtype)))
    cov = G @ cov_theta @ G.T
    stderr = np.sqrt(np.maximum(np.diag(cov), 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = np.where(np.outer(stderr, stderr) > 0, cov / np.outer(stderr, stderr), 0.0)
    at_bound = at_bounds(values, problem.bounds)
    stderr = np.where(at_bound, np.nan, stderr)

    fitted_exps = [_engine.experiment(e, layout, theta) for e, layout in zip(exps, layouts, strict=True)]
    model_images, residuals = [None] * len(exps), [None] * len(exps)
    flat = objective.passes.images(theta, objective.refs, tuple(packed))
    for i, m, (fpix, spix, valid, *_) in zip(problem.local, flat, packed, strict=True):
        e, o = exps[i], obs[i]
        img = np.zeros((e.detector.spixels, e.detector.fpixels))
        v = np.asarray(valid).reshape(-1)
        img[np.asarray(spix).reshape(-1)[v], np.asarray(fpix).reshape(-1)[v]] = np.asarray(m)[v]
        model_images[i] = img
        residuals[i] = np.where(np.asarray(o.mask), np.asarray(o.image) - img, 0.0)
    return FitResult(
        names=tuple(labels),
        units=tuple(units),
        values=values,
        start=start,
        stderr=stderr,
        at_bound=at_bound,
        covariance=cov,
        correlation=corr,
        loss_history=tuple(history),
        converged=converged,
        message=message,
        experiments=fitted_exps,
        model_images=model_images,
        residuals=residuals,
        theta=np.asarray(theta),
    )


def at_bounds(values, bounds) -> np.ndarray:
    """Which user values sit at a bound of their transform: s = (u - lo)/(hi - lo), which is
    sigmoid(theta), within ``AT_BOUND`` of 0 or 1 (module docstring)."""
    out = np.zeros(len(values), dtype=bool)
    for i, (u, b) in enumerate(zip(np.asarray(values, np.float64), bounds, strict=True)):
        if b is not None:
            lo, hi = b
            s = (u - lo) / (hi - lo)
            out[i] = s <= AT_BOUND or s >= 1.0 - AT_BOUND
    return out


def _restraints(layouts, free):
    """theta -> (loss, g, F) of the Gaussian priors (user units): 1/2 ((u - mean)/sigma)^2;
    scalar zeros when no parameter has a prior."""
    terms = []
    for k, layout in enumerate(layouts):
        for j, (p, sl, shape) in enumerate(zip(layout.params, layout.slices, layout.shapes, strict=True)):
            if p.prior is None or (j < len(free) and k > 0):
                continue
            terms.append((p, sl, shape))

    def restraint(theta):
        if not terms:  # no priors: scalar zeros (they add to any loss, gradient or matrix)
            zero = jnp.zeros((), theta.dtype)
            return zero, zero, zero
        n = theta.shape[0]
        L = jnp.zeros((), theta.dtype)
        g = jnp.zeros((n,), theta.dtype)
        F = jnp.zeros((n, n), theta.dtype)
        for p, sl, shape in terms:
            mean, sigma = p.prior
            u_of = functools.partial(_user_values_of, p, sl, shape)
            r = (u_of(theta) - jnp.asarray(mean, theta.dtype)) / sigma
            Gp = jax.jacfwd(u_of)(theta) / sigma
            L = L + 0.5 * jnp.sum(r * r)
            g = g + Gp.T @ r
            F = F + Gp.T @ Gp
        return L, g, F

    return restraint
