"""Optimisers: Levenberg-Marquardt on the Fisher matrix (default), and L-BFGS / Adam from optax.

All minimise the loss over the flat unconstrained theta, through an ``Objective`` that gives
the loss (``value``) or the loss, gradient g and Fisher / Gauss-Newton matrix F in one pass
(``normal``).  Each returns (theta, history, converged, message).

Levenberg-Marquardt (Fisher scoring with Marquardt damping): solve (F + lambda diag F) delta =
-g; accept when the loss drops (lambda /= 3), else lambda *= 4 and retry.  It stops when every
accepted step changes every parameter by less than ``xtol`` of its standard error
(sqrt of diag F^-1), or the loss by less than ``ftol`` relative, or after ``max_steps``.
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np


class AbstractMethod(eqx.Module):
    max_steps: int = 100

    @abc.abstractmethod
    def run(self, objective, theta0, progress=None):
        """Minimise; returns (theta, loss history, converged, message)."""


def _solve(F, g, lam):
    d = jnp.maximum(jnp.diag(F), 1e-300)
    A = F + lam * jnp.diag(d)
    # scale to unit diagonal for conditioning
    s = 1.0 / jnp.sqrt(jnp.diag(A))
    step = jnp.linalg.solve(A * s[:, None] * s[None, :], -g * s) * s
    return step


_solve_jit = jax.jit(_solve)


class LevenbergMarquardt(AbstractMethod):
    max_steps: int = 100
    xtol: float = 1e-7
    ftol: float = 1e-14
    lambda0: float = 1e-3

    def run(self, objective, theta0, progress=None):
        theta = jnp.asarray(theta0)
        L, g, F = objective.normal(theta)
        history = [float(L)]
        lam = self.lambda0
        message, converged = f"stopped after {self.max_steps} steps", False
        for step in range(1, self.max_steps + 1):
            delta = _solve_jit(F, g, lam)
            trial = theta + delta
            L1, g1, F1 = objective.normal(trial)
            if bool(jnp.isfinite(L1)) and float(L1) <= float(L):
                sigma = np.sqrt(np.maximum(np.diag(np.linalg.pinv(np.asarray(F1))), 0.0))
                small = np.all(np.abs(np.asarray(delta)) <= self.xtol * np.maximum(sigma, 1e-300))
                flat = float(L) - float(L1) <= self.ftol * max(abs(float(L)), 1e-300)
                theta, L, g, F = trial, L1, g1, F1
                history.append(float(L))
                lam = max(lam / 3.0, 1e-12)
                if progress is not None:
                    progress(step, float(L), lam)
                if small or flat:
                    message, converged = ("steps below xtol x standard error" if small else "loss change below ftol"), True
                    break
            else:
                lam *= 4.0
                if progress is not None:
                    progress(step, float(L), lam)
                if lam > 1e12:
                    message, converged = "no further decrease of the loss (damping at its limit)", True
                    break
        return theta, history, converged, message


class _OptaxMethod(AbstractMethod):
    gtol: float = 1e-8

    @abc.abstractmethod
    def optimizer(self):
        """The optax GradientTransformation."""

    def run(self, objective, theta0, progress=None):
        import optax

        opt = self.optimizer()
        theta = jnp.asarray(theta0)
        state = opt.init(theta)
        fun = objective.differentiable_value
        value_and_grad = optax.value_and_grad_from_state(fun)
        history, converged, message = [], False, f"stopped after {self.max_steps} steps"
        for step in range(1, self.max_steps + 1):
            value, grad = value_and_grad(theta, state=state)
            history.append(float(value))
            updates, state = opt.update(grad, state, theta, value=value, grad=grad, value_fn=fun)
            theta = optax.apply_updates(theta, updates)
            if progress is not None:
                progress(step, float(value), None)
            if float(jnp.max(jnp.abs(grad))) <= self.gtol * max(abs(float(value)), 1.0):
                converged, message = True, "gradient below gtol"
                break
        history.append(float(objective.value(theta)))
        return theta, history, converged, message


class LBFGS(_OptaxMethod):
    """optax.lbfgs with its zoom line search."""

    max_steps: int = 300

    def optimizer(self):
        import optax

        return optax.lbfgs()


class Adam(_OptaxMethod):
    """optax.adam; theta is in natural units (Angstrom, mrad, mm, log scale), so one rate serves."""

    learning_rate: float = 1e-3
    max_steps: int = 2000

    def optimizer(self):
        import optax

        return optax.adam(self.learning_rate)


METHODS = {"lm": LevenbergMarquardt, "lbfgs": LBFGS, "adam": Adam}
