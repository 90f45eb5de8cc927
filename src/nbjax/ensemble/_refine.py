"""Joint refinement of many shots: structure factors shared by all of them, each shot's own
parameters (orientation, cell, N, scale, background planes, ...).

The loss is the sum of the shots' Poisson (or read-out) losses over their shoebox pixels.  A
shot's parameters theta_s reach only its own pixels; the structure factors F (n,) reach every
shot through the reflection factors of its pure pixels (``_shots``).  The refined values are
u_j = ln I_j = 2 ln F_j (positive intensities by construction; a shot's scale and the
intensities it sees then multiply, and the gauge below is one constant vector): the
reflection factor of slot r is q_r = exp(u_j - u_j,now), so dq_r / du_j = 1 at the current
point.  Each step is a Levenberg-Marquardt step of the
whole problem, solved by eliminating the shots (the Schur complement, as in bundle adjustment):
per shot, with H its Fisher matrix in (theta_s, q),

    A_s = H_ss + lambda diag(H_ss)
    S  += H_qq - H_qs A_s^-1 H_sq          (the shot's share of the u block, at its slots)
    r  += g_q - H_qs A_s^-1 g_s

then (S + lambda diag(sum H_qq) + gauge) du = -r, and per shot
dtheta_s = -A_s^-1 (g_s + H_sq du_slots).  Each du_j is clipped to +-``MAX_STEP_U`` first (a
box trust region on the intensities: the linear model of e^u underestimates a large increase,
and a reflection seen through a few faint pixels would otherwise be sent to e^1000); the shots'
steps are then the best ones for the clipped du.  Only S, r and the losses are summed over processes
(``nbjax.distributed.sum_over_processes``, an all-reduce): a process holds its own shots'
matrices (stored sparse: the planes couple only with their shoebox's slots) and the n x n u
block.

Shared values gamma (detector metrology, a spectrum calibration: one copy for all shots,
``_ensemble.Shared``) join u in the global vector z = (u, gamma): a shot's columns of them are
dense (every pixel), summed over the theta copies of one value (the panels of a group, Q in
``linearise``), and they are solved with u in the reduced system (their own steps unclipped).
Where the data leave a direction of gamma undetermined together with the shots' values (the
detector and every crystal turned about the beam), a gauge vector c adds mu c c^T to the step
and a row c to the bordered error matrix, as the intensities' gauge below.

Restraints: ``prior="wilson"`` adds Wilson's distribution of the intensities to the loss (per
resolution shell, its mean intensity at the step's start; ``_prior``), which holds reflections
that few or faint pixels see near their shell's mean; the shots' parameters take the Gaussian
priors of their declarations (``prior=(mean, sigma)``).

Gauge: with every shot's scale free, u -> u + e and ln scale -> ln scale - e changes nothing,
so S has the null vector 1 (over the reflections some shot sees; only nearly, because the
pixels of reflections too faint for a slot keep their structure factors fixed within a step).
Reflections that no chain of shots links form separate groups (``components``), each with its
own such direction.  The gauge fixes each group's information-weighted mean of u,
sum_j w_j du_j = 0 with w_j = S_jj (a plain mean would let a reflection seen through a few faint
pixels, sigma_u ~ 1000, move every other one through the constraint).  The step adds
mu v_c v_c^T per group (v_c = w over the group, normalised; mu the mean of the damped matrix's
diagonal).  Error bars are those of that gauge: the covariance of a group's u is
Z (Z^T S Z)^-1 Z^T at the optimum, Z an orthonormal basis of the vectors orthogonal to w (a
comparison with a truth first brings the truth to the refined scale, ``_truth``);
sigma_F = F sigma_u / 2 and sigma_I = I sigma_u; a shot's values have A_s^-1 + X Cov_u X^T with
X = A_s^-1 H_sq (the intensities' uncertainty included).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time

import jax.numpy as jnp
import numpy as np
import scipy.linalg
import scipy.sparse
import scipy.sparse.linalg

from nbjax.errors import NBError

TOLERANCE = 1e-2  # converged: an accepted step lowered the loss by less than this
DAMPING_FLOOR = 1e-3  # the damping of a reflection is at least this times the median's
MAX_STEP_U = 1.0  # a step changes no ln I by more than this (a factor e): longer ones are shortened
CHECKPOINT_VERSION = 2
# a step of everything; of the shots, then of the intensities; optax's L-BFGS (``_lbfgs``)
METHODS = ("joint", "alternating", "lbfgs")
PRIORS = (None, "wilson")  # on the intensities: none, or Wilson's distribution per resolution shell
WILSON_SHELLS = 10


@dataclasses.dataclass(eq=False)
class ShotProblem:
    """A shot's compiled fit (``nbjax.fit.build_problem``) and where its values live: ``own``
    the theta indices of its own parameters, ``factors`` those of its reflection slots, whose
    reflection numbers are ``slots`` (-1: a slot without pixels), ``links`` those of the values
    all shots share (detector metrology, a spectrum calibration), whose places in the shared
    vector are ``link_at`` (several panels of a group: one place)."""

    shot: object
    problem: object
    own: np.ndarray
    factors: np.ndarray
    slots: np.ndarray
    theta: np.ndarray
    planes: tuple | None = None  # (start, stop, per) of the background planes in the own values
    links: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.int64))
    link_at: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.int64))
    columns: tuple | None = dataclasses.field(default=None, repr=False)  # global_columns, made once

    def set_F(self, sf):
        from nbjax.ensemble._shots import with_structure_factors

        obj = self.problem.objective
        obj.refs = tuple(with_structure_factors(obj.refs, sf))

    def set_shared(self, gamma):
        """The shared values ``gamma`` (theta units) into this shot's theta."""
        self.theta[self.links] = np.asarray(gamma)[self.link_at]

    def full_theta(self, theta_own=None):
        theta = np.array(self.theta)
        if theta_own is not None:
            theta[self.own] = theta_own
        theta[self.factors] = 1.0
        return jnp.asarray(theta)


@dataclasses.dataclass
class _Linearised:
    """A shot's loss, gradient and Fisher blocks at the current point (sparse): "own" its own
    values, "q" its global columns (its reflection slots' u, then the shared values it uses)."""

    loss: float
    g_own: np.ndarray
    g_q: np.ndarray
    H_own: object
    H_oq: object
    H_qq: object
    slots: np.ndarray  # the q columns' places in z = (u, gamma): reflection numbers, then n + shared index
    planes: tuple | None  # (start, stop, values per shoebox) of the background planes among the own values


def linearise(sp: ShotProblem, n: int) -> _Linearised:
    """The shot's loss, gradient and Fisher blocks at its current point, the Fisher matrix
    assembled sparse (``_engine.sparse_normal``: no n x n array for its planes and slots).  The
    global columns are Q^T of the theta ones: Q (theta, columns) maps a reflection slot to its
    column and every theta copy of a shared value (the panels of one group) to that value's
    column (the chain rule: dL/dgamma = sum of dL/dtheta over its copies)."""
    from nbjax.fit._engine import sparse_matrix

    obj = sp.problem.objective
    theta = sp.full_theta()
    L, g, pieces = obj.passes.sparse_normal(theta, obj.refs, obj.data)
    H = sparse_matrix(theta.shape[0], pieces)
    rL, rg, rF = obj.restraint(theta)  # Gaussian priors: scalars 0 without any
    if np.ndim(rF) == 2:
        H = H + scipy.sparse.csr_matrix(np.asarray(rF, np.float64))
    g = np.asarray(g, np.float64) + np.asarray(rg, np.float64)
    Q, places = global_columns(sp, n)
    o = sp.own
    H_o = H[o]
    H_oq = (H_o @ Q).tocsr()
    return _Linearised(
        float(L) + float(rL), g[o], Q.T @ g, H_o[:, o].tocsr(), H_oq, (Q.T @ H @ Q).tocsr(), places, sp.planes
    )


def global_columns(sp: ShotProblem, n: int):
    """(Q (theta, columns) sparse, the columns' places in z = (u, gamma)): a shot's reflection
    slots with pixels, then the shared values it uses (``linearise``).  They depend on the
    shot's layout alone: made on the first call, kept in ``sp.columns``."""
    if sp.columns is not None:
        return sp.columns
    valid = sp.slots >= 0
    n_valid = int(np.count_nonzero(valid))
    places, column = np.unique(sp.link_at, return_inverse=True)
    rows = np.concatenate([sp.factors[valid], sp.links])
    columns = np.concatenate([np.arange(n_valid), n_valid + column])
    Q = scipy.sparse.csr_matrix((np.ones(rows.size), (rows, columns)), shape=(sp.theta.size, n_valid + places.size))
    sp.columns = (Q, np.concatenate([sp.slots[valid], n + places]))
    return sp.columns


def _damped(H_own, lam: float):
    """H_ss + lambda diag(H_ss), with 1 on the diagonal of empty rows (planes without pixels,
    tilts of faint shoeboxes: decoupled values that stay put)."""
    d = H_own.diagonal()
    empty = d <= 0
    return (H_own + scipy.sparse.diags(lam * np.where(empty, 0.0, d) + empty.astype(float))).tocsr()


class _Elimination:
    """A_s^-1 for a shot's own values, by blocks: its background planes (one small block per
    shoebox: planes of two shoeboxes share no pixel, so A_pp is block-diagonal) are eliminated
    in closed form, then the few other values (orientation, scale, ...) through their Schur
    complement S_d = A_dd - A_dp A_pp^-1 A_pd.  The products with the slots' columns stay
    sparse: a plane couples only with the reflections its shoebox sees."""

    def __init__(self, A, planes):
        start, stop, per = planes
        m = A.shape[0]
        self.p = np.arange(start, stop)
        self.d = np.setdiff1d(np.arange(m), self.p)
        K = (stop - start) // per
        App = A[self.p][:, self.p].tocoo()
        blocks = np.zeros((K, per, per))
        blocks[App.row // per, App.row % per, App.col % per] = App.data  # block-diagonal: row // per == col // per
        inverse = np.linalg.inv(blocks)
        self.Pinv = scipy.sparse.bsr_matrix((inverse, np.arange(K), np.arange(K + 1)), shape=(K * per, K * per))
        self.Adp = A[self.d][:, self.p].tocsr()
        self.AdpPinv = (self.Adp @ self.Pinv).tocsr()
        Add = A[self.d][:, self.d].toarray()
        self.Sd_inv = np.linalg.inv(Add - (self.AdpPinv @ self.Adp.T).toarray()) if self.d.size else np.zeros((0, 0))

    def solve(self, Y):
        """A^-1 Y for Y (m,) or (m, k), dense."""
        Y = np.asarray(Y, np.float64)
        xd = self.Sd_inv @ (Y[self.d] - self.AdpPinv @ Y[self.p])
        x = np.empty_like(Y)
        x[self.d] = xd
        x[self.p] = self.Pinv @ (Y[self.p] - self.Adp.T @ xd)
        return x

    def schur(self, B, g):
        """(B^T A^-1 B dense, B^T A^-1 g) for B (m, R) sparse: the sparse plane part plus the
        rank-n_d correction of the other values."""
        Bp, Bd = B[self.p], B[self.d].toarray()
        C = self.Pinv @ Bp
        W = Bd - self.AdpPinv @ Bp  # (n_d, R)
        M = (Bp.T @ C).toarray() + W.T @ (self.Sd_inv @ W)
        gp, gd = g[self.p], g[self.d]
        v = np.ravel(Bp.T @ np.ravel(self.Pinv @ gp)) + W.T @ (self.Sd_inv @ (gd - np.ravel(self.AdpPinv @ gp)))
        return np.asarray(M), np.ravel(v)


class _General:
    """A_s^-1 by a sparse LU, for shots without background planes."""

    def __init__(self, A):
        self.lu = scipy.sparse.linalg.splu(A.tocsc()) if A.shape[0] else None

    def solve(self, Y):
        Y = np.asarray(Y, np.float64)
        return self.lu.solve(Y) if self.lu is not None else Y

    def schur(self, B, g):
        Bd = B.toarray()
        Y = self.solve(np.concatenate([Bd, g[:, None]], axis=1))
        return Bd.T @ Y[:, :-1], Bd.T @ Y[:, -1]


def _factor(lin, lam: float):
    """The shot's A_s^-1 (``_Elimination`` with background planes, else ``_General``; also
    ``_General`` should the planes' block not be block-diagonal, which no model here makes)."""
    A = _damped(lin.H_own, lam)
    if lin.planes is not None:
        start, stop, per = lin.planes
        App = A[start:stop][:, start:stop].tocoo()
        if np.all(App.row // per == App.col // per):
            return _Elimination(A, lin.planes)
    return _General(A)


def _shot_schur(lin: _Linearised, lam: float):
    """(the factors of A_s, the shot's S block and r) (module docstring)."""
    solver = _factor(lin, lam)
    M, v = solver.schur(lin.H_oq, lin.g_own)
    return solver, lin.H_qq.toarray() - M, lin.g_q - v


def _own_step(lin: _Linearised, solver, du_slots) -> np.ndarray:
    """A shot's step for the intensities' step du: -A_s^-1 (g_s + H_sq du_slots)."""
    return -solver.solve(lin.g_own + lin.H_oq @ du_slots)


@dataclasses.dataclass
class State:
    """Where a refinement stands: u = ln I (n,), every local shot's own theta, the damping, the
    step count, the loss history and the shared values gamma (theta units; what a checkpoint
    holds)."""

    u: np.ndarray
    thetas: list
    lam: float
    step: int
    history: list
    converged: bool = False
    message: str = ""
    gamma: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))

    @property
    def z(self) -> np.ndarray:
        """The global values (u, gamma)."""
        return np.concatenate([self.u, self.gamma])

    @property
    def F(self) -> np.ndarray:
        """The structure factors, F = exp(u / 2)."""
        return np.exp(0.5 * self.u)


def release_memory() -> None:
    """Hand freed heap memory back to the system (glibc's malloc_trim; nothing elsewhere).  A
    shot's set-up and passes allocate and free tens of MB from XLA's and NumPy's threads; glibc
    keeps such freed pages in its arenas, so without this the resident memory grew by ~60 MB
    per shot of 1 megapixel where ~10 MB are live (measured: 12 shots 1050 -> 411 MB)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim():
    """glibc's malloc_trim, looked up once (it is called after every shot's pass), or None."""
    import ctypes
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim
    except (OSError, AttributeError, TypeError):
        return None


def _sum(reduce, tree):
    return tree if reduce is None else reduce(tree)


def components(S: np.ndarray) -> tuple[int, np.ndarray]:
    """(count, label per reflection) of the connected groups of the reflections in S: two
    reflections are connected when some shot sees both (S_ij != 0).  Every group has its own
    gauge: the relative scale of two groups that no shot links is not determined by the data."""
    from scipy.sparse.csgraph import connected_components

    return connected_components(scipy.sparse.csr_matrix(S != 0), directed=False)


def _gauge_vector(weights: np.ndarray) -> np.ndarray:
    """The unit gauge direction of a group: its reflections' information weights (module
    docstring), normalised."""
    return weights / np.linalg.norm(weights)


def _add_gauge(M: np.ndarray, labels: np.ndarray, weights: np.ndarray, mu: float) -> np.ndarray:
    """M + mu sum_c v_c v_c^T (v_c: ``_gauge_vector`` of group c)."""
    M = M.copy()
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        v = _gauge_vector(weights[idx])
        M[np.ix_(idx, idx)] += mu * np.outer(v, v)
    return M


class Refinement:
    """The joint Levenberg-Marquardt refinement of ``problems`` (this process's shots) over the
    ``n`` structure factors of ``reflections`` and the values all shots share (from
    ``shared_start``, theta units; none by default) (module docstring).  ``gauge``: every shot's
    scale is free (F's overall scale is then fixed by the step, see above).  ``reduce``: sums
    over the processes of a distributed job (None: one process)."""

    def __init__(
        self, problems, reflections, gauge: bool, reduce=None, lam0: float = 1e-3, method: str = "joint", prior=None,
        shared_start=None, shared_gauges=(),
    ):  # fmt: skip
        self.method = method
        self.problems = problems
        self.reflections = reflections
        self.n = reflections.count
        self.gamma0 = np.zeros(0) if shared_start is None else np.asarray(shared_start, np.float64)
        self.k = self.gamma0.size
        self.shared_gauges = tuple(np.asarray(c, np.float64) / np.linalg.norm(c) for c in shared_gauges)
        self.gauge = gauge
        self.reduce = reduce
        self.lam0 = lam0
        seen = np.zeros(self.n)
        for sp in problems:
            seen[sp.slots[sp.slots >= 0]] += 1
        self.shots_seen = np.asarray(_sum(reduce, jnp.asarray(seen)))  # shots in which a reflection is seen
        self.active = self.shots_seen > 0
        self.active_z = np.concatenate([self.active, np.ones(self.k, bool)])  # and every shared value
        self.set_prior(prior)

    def set_prior(self, prior):
        """``None`` or "wilson" (``PRIORS``)."""
        if prior not in PRIORS:
            raise NBError(f"ensemble: unknown prior '{prior}' (known: wilson)")
        self.prior = prior
        if prior == "wilson":
            self._wilson_setup()

    # ---- passes over the shots
    def _set_z(self, z):
        """The global values z = (u, gamma) into every shot."""
        sf = self.reflections.grid(jnp.exp(0.5 * jnp.asarray(z[: self.n])))
        for sp in self.problems:
            sp.set_F(sf)
            sp.set_shared(z[self.n :])

    def loss(self, z, thetas) -> float:
        """The total loss (over the processes) at global values z and the shots' own thetas."""
        self._set_z(z)
        total = 0.0
        for sp, t in zip(self.problems, thetas, strict=True):
            total += float(sp.problem.objective.value(sp.full_theta(t)))
            release_memory()
        return float(_sum(self.reduce, jnp.asarray(total))) + self._prior(z[: self.n])[0]

    def gradient(self, z, thetas):
        """(loss, dL/dz (n + k,), dL/dtheta per shot (its own values)): one gradient pass per
        shot, the reflection factors' and shared values' entries summed into z's (``Q``)."""
        self._set_z(z)
        total, gz, g_own = 0.0, np.zeros(self.n + self.k), []
        for sp, t in zip(self.problems, thetas, strict=True):
            L, g = sp.problem.objective.gradient(sp.full_theta(t))
            g = np.asarray(g, np.float64)
            Q, places = global_columns(sp, self.n)
            gz[places] += Q.T @ g  # a shot's places are distinct
            g_own.append(g[sp.own])
            total += float(L)
            release_memory()
        L_prior, g_prior, _ = self._prior(z[: self.n])
        gz[: self.n] += g_prior
        return total + L_prior, gz, g_own

    # ---- the Wilson prior (``prior="wilson"``)
    def _wilson_setup(self):
        """Per reflection its resolution shell (WILSON_SHELLS of equal counts in 1/d^2 among the
        seen reflections) and the prior's weight: 1 acentric, 1/2 centric (gemmi)."""
        import gemmi

        sg = gemmi.SpaceGroup(self.reflections.space_group)
        cell = gemmi.UnitCell(*self.reflections.cell)
        ops = sg.operations()
        s2 = np.array([1.0 / cell.calculate_d([int(x) for x in h]) ** 2 for h in self.reflections.hkl])
        self.weight = np.array([0.5 if ops.is_reflection_centric([int(x) for x in h]) else 1.0
                                for h in self.reflections.hkl])  # fmt: skip
        edges = np.quantile(s2[self.active], np.linspace(0, 1, WILSON_SHELLS + 1)[1:-1]) if self.active.any() else []
        self.shell = np.searchsorted(edges, s2)
        self.shell_mean = None

    def _update_shells(self, u):
        """The shells' mean intensities at u (held fixed through a step's tries)."""
        I = np.exp(u)
        means = np.ones(WILSON_SHELLS)
        for k in range(WILSON_SHELLS):
            inside = self.active & (self.shell == k)
            if inside.any():
                means[k] = float(np.mean(I[inside]))
        self.shell_mean = means

    def _prior(self, u):
        """(loss, gradient, curvature) in u of the Wilson prior over the seen reflections:
        acentric p(I) = exp(-I / Sigma) / Sigma, centric p(I) ~ I^-1/2 exp(-I / 2 Sigma), with
        Sigma the shell's mean intensity; in u = ln I (the Jacobian I included) the loss is
        w (I / Sigma - u), w = 1 acentric, 1/2 centric.  Zeros without the prior."""
        if self.prior != "wilson":
            return 0.0, 0.0, 0.0
        if self.shell_mean is None:
            self._update_shells(u)
        a = self.active
        x = np.where(a, np.exp(u) / self.shell_mean[np.minimum(self.shell, WILSON_SHELLS - 1)], 0.0)
        w = np.where(a, self.weight, 0.0)
        return float(np.sum(w * (x - u))), w * (x - 1.0), w * x

    def linearise(self, z, thetas):
        self._set_z(z)
        self._u = np.array(z[: self.n])
        lins = []
        for sp, t in zip(self.problems, thetas, strict=True):
            sp.theta[sp.own] = t
            lins.append(linearise(sp, self.n))
            release_memory()  # the pass's transient arrays (tens of MB for a megapixel shot)
        return lins

    def reduced(self, lins, lam, eliminate: bool = True):
        """(S, r, diag of sum H_qq, per-shot factors of A_s) over z = (u, gamma) for damping
        ``lam``, summed over the processes; ``eliminate=False``: the shots held fixed
        (S = sum H_qq, r = sum g_q, no factors)."""
        n, m = self.n, self.n + self.k
        S, r, dq = np.zeros((m, m)), np.zeros(m), np.zeros(m)
        parts = []
        for lin in lins:
            if eliminate:
                solver, S_s, r_s = _shot_schur(lin, lam)
            else:
                solver, S_s, r_s = None, lin.H_qq.toarray(), lin.g_q
            j = lin.slots
            S[np.ix_(j, j)] += S_s
            del S_s
            release_memory()
            r[j] += r_s
            dq[j] += lin.H_qq.diagonal()
            parts.append(solver)
        if self.reduce is not None:  # summed over the processes (one process: as they are)
            S, r, dq = (np.array(x) for x in self.reduce((jnp.asarray(S), jnp.asarray(r), jnp.asarray(dq))))
        if self.prior == "wilson":  # at the linearisation point
            _, g, h = self._prior(self._u)
            r[:n] += g
            S[np.arange(n), np.arange(n)] += h
            dq[:n] += h
        return S, r, dq, parts

    def solve(self, S, r, dq, lam):
        """dz over the active reflections and the shared values (0 elsewhere)."""
        a = self.active_z
        Sa = S[np.ix_(a, a)]
        M = Sa + lam * np.diag(np.maximum(dq[a], DAMPING_FLOOR * np.median(dq[a])))
        nu = int(np.count_nonzero(self.active))
        mu = float(np.mean(np.diag(M)))
        if self.gauge:  # the intensities' scale, per group of linked reflections
            Su = Sa[:nu, :nu]
            M[:nu, :nu] = _add_gauge(M[:nu, :nu], components(Su)[1], np.diag(Su), mu)
        for c in self.shared_gauges:  # the shared values' (the detector's turn about the beam)
            M[nu:, nu:] += mu * np.outer(c, c)
        dz = np.zeros(self.n + self.k)
        dz[a] = -scipy.linalg.solve(M, r[a], assume_a="sym")
        return dz

    def _clip(self, dz):
        """The step with every du_j clipped to +-MAX_STEP_U (module docstring)."""
        dz = np.array(dz)
        dz[: self.n] = np.clip(dz[: self.n], -MAX_STEP_U, MAX_STEP_U)
        return dz

    # ---- the loop
    def start(self, F0, thetas0=None) -> State:
        thetas = [np.array(sp.theta[sp.own]) for sp in self.problems] if thetas0 is None else thetas0
        u = 2.0 * np.log(np.asarray(F0, np.float64))
        state = State(u, thetas, self.lam0, 0, [], gamma=self.gamma0.copy())
        state.history.append(self.loss(state.z, thetas))
        return state

    def step(self, state: State, progress=None) -> State:
        """One accepted step (or give up after ten refusals): a new State.  ``method`` "joint":
        a step of everything (module docstring); "alternating": a step of the shots' own values
        with the intensities fixed, then one of the intensities with the shots fixed (the
        classic block scheme, for comparison: ``scripts/ensemble-calibration --method``)."""
        if self.method == "joint":
            return self._block_step(state, "joint")
        half = self._block_step(state, "shots")
        whole = self._block_step(dataclasses.replace(half, step=state.step), "intensities")
        fell = state.history[-1] - whole.history[-1]
        done = fell < TOLERANCE
        message = f"the loss fell by {fell:.3g} < {TOLERANCE:g} in a cycle" if done else ""
        return dataclasses.replace(whole, converged=done, message=message)

    def _block_step(self, state: State, block: str) -> State:
        """A Levenberg-Marquardt step of ``block``: "joint" (everything), "shots" (the shots' own
        values; du = 0) or "intensities" (u alone; the shots fixed, no elimination)."""
        z, u, thetas, lam = state.z, state.u, state.thetas, state.lam
        L0 = state.history[-1]
        if self.prior == "wilson":  # the shells' means move with u: L0 with this step's means
            L0 -= self._prior(u)[0]
            self._update_shells(u)
            L0 += self._prior(u)[0]
        lins = self.linearise(z, thetas)
        for _ in range(10):
            if block == "shots":
                du, parts = np.zeros_like(z), [_factor(lin, lam) for lin in lins]
            else:
                S, r, dq, parts = self.reduced(lins, lam, eliminate=block == "joint")
                du = self._clip(self.solve(S, r, dq, lam))
            new_thetas, pred = [], 0.0
            for lin, solver, t in zip(lins, parts, thetas, strict=True):
                dq_s = du[lin.slots]
                d_own = _own_step(lin, solver, dq_s) if solver is not None else np.zeros_like(t)
                new_thetas.append(t + d_own)
                g_d = lin.g_own @ d_own + lin.g_q @ dq_s
                Hd = (lin.H_own @ d_own + lin.H_oq @ dq_s, lin.H_oq.T @ d_own + lin.H_qq @ dq_s)
                pred -= g_d + 0.5 * (d_own @ Hd[0] + dq_s @ Hd[1])
            pred = float(_sum(self.reduce, jnp.asarray(pred)))
            L1 = self.loss(z + du, new_thetas)
            if np.isfinite(L1) and L1 < L0:
                rho = (L0 - L1) / pred if pred > 0 else 0.0
                lam = lam * max(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3)  # Nielsen's rule
                history = [*state.history, L1]
                done = L0 - L1 < TOLERANCE
                message = f"the loss fell by {L0 - L1:.3g} < {TOLERANCE:g}" if done else ""
                z1 = z + du
                return State(z1[: self.n], new_thetas, max(lam, 1e-12), state.step + 1, history, done, message,
                             z1[self.n :])  # fmt: skip
            lam *= 4.0
        done = pred < TOLERANCE
        message = f"no step lowers the loss (ten tries; the last one's predicted decrease {pred:.3g})"
        return State(u, thetas, lam, state.step + 1, state.history, done, message, state.gamma)

    def run(self, state: State, max_steps: int, progress=None, checkpoint=None) -> State:
        """Steps until converged or ``max_steps`` (``method`` "lbfgs": iterations of
        ``_lbfgs.run_lbfgs``, checkpointed only at its end)."""
        if self.method == "lbfgs":
            from nbjax.ensemble._lbfgs import run_lbfgs

            def report(it, history, per, eta):
                progress(State(state.u, state.thetas, 0.0, state.step + it, history), per, eta)

            end = run_lbfgs(self, state, max_steps, TOLERANCE, report if progress is not None else None)
            z = end["z"]
            state = State(z[: self.n], end["thetas"], 0.0, state.step + end["iterations"], end["history"],
                          end["converged"], end["message"], z[self.n :])  # fmt: skip
            if checkpoint is not None:
                checkpoint(state)
            return state
        t0, steps0 = time.perf_counter(), state.step
        while not state.converged and state.step < max_steps:
            state = self.step(state)
            release_memory()
            if progress is not None:
                per = (time.perf_counter() - t0) / max(1, state.step - steps0)
                progress(state, per, per * (max_steps - state.step))
            if checkpoint is not None:
                checkpoint(state)
        if not state.converged:
            state.message = f"{max_steps} steps without converging"
        return state

    # ---- error bars
    def errors(self, state: State, named=None):
        """(sigma of z = (u, gamma) (n + k,), NaN where unseen; the covariance of the shared
        values gamma (k, k); per shot the covariance of its own theta values at ``named[s]``
        (indices into its own values; all of them by default); the group of every reflection
        (``components``; -1: unseen)).  With the gauge, Cov = Z (Z^T S Z)^-1 Z^T, Z a basis of
        the steps that keep every group's w . du = 0 (module docstring): the top-left block of
        the inverse of the bordered matrix [[S, C^T], [C, 0]], C's rows the groups' w."""
        lins = self.linearise(state.z, state.thetas)
        S, _, _, parts = self.reduced(lins, 0.0)
        a = self.active_z
        Sa = S[np.ix_(a, a)]
        nu = int(np.count_nonzero(self.active))
        count, labels = components(Sa[:nu, :nu])
        rows = []
        if self.gauge:
            C = np.zeros((count, Sa.shape[0]))
            C[labels, np.arange(nu)] = np.diag(Sa)[:nu]
            rows.append(C)
        rows += [np.concatenate([np.zeros(nu), c])[None, :] for c in self.shared_gauges]
        if rows:
            C = np.concatenate(rows)
            bordered = np.block([[Sa, C.T], [C, np.zeros((C.shape[0], C.shape[0]))]])
            cov_a = np.linalg.inv(bordered)[: Sa.shape[0], : Sa.shape[0]]
        else:
            cov_a = np.linalg.inv(Sa)
        if self.gauge:
            single = np.flatnonzero(np.bincount(labels, minlength=count)[labels] == 1)
            cov_a[single, single] = np.inf  # a group of one reflection: its value is the gauge's
        group = np.full(self.n, -1)
        group[self.active] = labels
        sigma = np.full(self.n + self.k, np.nan)
        sigma[a] = np.sqrt(np.maximum(np.diag(cov_a), 0.0))
        position = np.cumsum(a) - 1
        shot_cov = []
        for s, (lin, solver) in enumerate(zip(lins, parts, strict=True)):
            m = lin.H_own.shape[0]
            idx = np.arange(m) if named is None else np.asarray(named[s])
            k = position[lin.slots]
            unit = np.zeros((m, idx.size))
            unit[idx, np.arange(idx.size)] = 1.0
            columns = solver.solve(unit) if idx.size else unit  # A^-1 at the named values
            X = (lin.H_oq.T @ columns).T  # rows of A^-1 H_sq at the named values
            shot_cov.append(columns[idx] + X @ cov_a[np.ix_(k, k)] @ X.T)
        return sigma, cov_a[nu:, nu:], shot_cov, group


def save_checkpoint(folder: str, state: State, process: int, signature: str) -> None:
    """``folder``/state.p<process>.npz, written atomically (a temporary file, then renamed)."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"state.p{process}.npz")
    tmp = path + ".tmp.npz"
    np.savez(
        tmp,
        version=CHECKPOINT_VERSION,
        signature=signature,
        u=state.u,
        thetas=np.array(state.thetas, dtype=object),
        lam=state.lam,
        step=state.step,
        history=np.asarray(state.history),
        converged=state.converged,
        message=state.message,
        gamma=state.gamma,
    )
    os.replace(tmp, path)


def load_checkpoint(folder: str, process: int, signature: str) -> State | None:
    """The State saved by ``save_checkpoint``, or None when there is none; NBError when it
    belongs to another refinement (other shots, reflections or parameters)."""
    path = os.path.join(folder, f"state.p{process}.npz")
    if not os.path.exists(path):
        return None
    with np.load(path, allow_pickle=True) as z:
        if int(z["version"]) != CHECKPOINT_VERSION or str(z["signature"]) != signature:
            raise NBError(f"{path}: a checkpoint of another refinement (shots, reflections or parameters differ)")
        return State(
            np.array(z["u"]),
            [np.array(t, np.float64) for t in z["thetas"]],
            float(z["lam"]),
            int(z["step"]),
            [float(x) for x in z["history"]],
            bool(z["converged"]),
            str(z["message"]),
            np.array(z["gamma"]),
        )
