"""The other optimiser the ensemble issue names, for comparison: optax's L-BFGS (zoom line
search) on the one-pass gradient of the whole problem, x = (u, gamma, every shot's own values),
preconditioned by the Fisher diagonal at the start: it works in y = D^1/2 (x - x0), D the
diagonals of sum H_qq and of every H_ss (1 where a value has no information).

The loss is a host computation (a pass per shot), so the line search, which optax runs inside
``jax.lax.while_loop``, reaches it through ``jax.pure_callback``, its gradient through a custom
VJP that returns the pass's gradient.  One process; no checkpoints (``method="lbfgs"`` of
``refine_ensemble``, compared with the joint step by ``scripts/ensemble-calibration --method``).
An iteration costs one or a few gradient passes, a joint Levenberg-Marquardt step one Fisher
pass and one or two loss passes.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from nbjax.errors import NBError


def run_lbfgs(refinement, state, max_iterations: int, tolerance: float, progress=None) -> dict:
    """L-BFGS from ``state`` (a ``_refine.State``) for at most ``max_iterations``; converged when
    an iteration lowers the loss by less than ``tolerance``.  Returns where it ended: {z, thetas,
    history, iterations, converged, message}; ``progress(iteration, history, s per iteration,
    s left at most)``."""
    import optax

    if refinement.reduce is not None:
        raise NBError("ensemble: -method lbfgs runs in one process")
    n_z = refinement.n + refinement.k
    sizes = [t.size for t in state.thetas]
    x0 = np.concatenate([state.z, *state.thetas])
    lins = refinement.linearise(state.z, state.thetas)
    _, _, dq, _ = refinement.reduced(lins, 0.0, eliminate=False)
    d = np.concatenate([dq, *[lin.H_own.diagonal() for lin in lins]])
    del lins
    scale = 1.0 / np.sqrt(np.where(d > 0, d, 1.0))  # x = x0 + scale * y

    def split(y):
        x = x0 + scale * np.asarray(y, np.float64)
        thetas, at = [], n_z
        for m in sizes:
            thetas.append(x[at : at + m])
            at += m
        return x[:n_z], thetas

    def value(y):
        z, thetas = split(y)
        return np.float64(refinement.loss(z, thetas))

    def value_and_gradient(y):
        z, thetas = split(y)
        L, gz, g_own = refinement.gradient(z, thetas)
        g = np.concatenate([gz, *g_own]) * scale
        return np.float64(L), np.where(np.isfinite(g), g, 0.0)

    shape = jax.ShapeDtypeStruct((x0.size,), jnp.float64)
    scalar = jax.ShapeDtypeStruct((), jnp.float64)

    @jax.custom_vjp
    def loss(y):
        return jax.pure_callback(value, scalar, y)

    def loss_fwd(y):
        L, g = jax.pure_callback(value_and_gradient, (scalar, shape), y)
        return L, g

    def loss_bwd(g, cotangent):
        return (cotangent * g,)

    loss.defvjp(loss_fwd, loss_bwd)

    opt = optax.lbfgs()
    y = jnp.zeros(x0.size)
    opt_state = opt.init(y)
    with_grad = optax.value_and_grad_from_state(loss)
    history = list(state.history)
    t0 = time.perf_counter()
    converged, message, it = False, f"{max_iterations} iterations without converging", 0
    for it in range(1, max_iterations + 1):
        L, g = with_grad(y, state=opt_state)
        updates, opt_state = opt.update(g, opt_state, y, value=L, grad=g, value_fn=loss)
        y = optax.apply_updates(y, updates)
        L1 = float(optax.tree_utils.tree_get(opt_state, "value"))
        fell = history[-1] - L1
        history.append(L1)
        if progress is not None:
            per = (time.perf_counter() - t0) / it
            progress(it, history, per, per * (max_iterations - it))
        if 0 <= fell < tolerance:
            converged, message = True, f"the loss fell by {fell:.3g} < {tolerance:g}"
            break
    z, thetas = split(y)
    return {"z": z, "thetas": thetas, "history": history, "iterations": it, "converged": converged,
            "message": message}  # fmt: skip
