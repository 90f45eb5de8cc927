"""Optimisers: Levenberg-Marquardt on the Fisher matrix (default), and L-BFGS / Adam from optax.

All minimise the loss over the flat unconstrained theta, through an ``Objective`` that gives
the loss (``value``) or the loss, gradient g and Fisher / Gauss-Newton matrix F in one pass
(``normal``).  Each returns (theta, history, converged, message).

Levenberg-Marquardt (Fisher scoring with Marquardt damping): solve (F + lambda diag F) delta =
-g, halve delta while it leaves the likelihood's domain (a Poisson model pixel <= 0, e.g. a
background fitted towards 0); accept when the loss drops (lambda /= 3), else lambda *= 4 and
retry.  It stops when every
accepted step changes every parameter by less than ``xtol`` of its standard error
(sqrt of diag F^-1), or the loss by less than ``ftol`` relative, or after ``max_steps``; a step
that had to be halved to stay in the domain never counts as converged (it crawls along the
domain's edge: the optimum may lie beyond it, e.g. a background plane driven to zero).

The optax methods work on phi = (theta - theta0)/s with s = 1/sqrt(diag F(theta0)): every
parameter in units of its starting standard error, so one line search or learning rate fits
wavelengths, weights and scales alike.  One compiled step (gradient pass and update).
"""

from __future__ import annotations

import abc
from typing import final

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np


class AbstractMethod(eqx.Module):
    """An optimiser of the flat theta (module docstring)."""

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


@final
class LevenbergMarquardt(AbstractMethod):
    """Fisher scoring with Marquardt damping (module docstring)."""

    max_steps: int = 100
    xtol: float = 1e-7
    ftol: float = 1e-14
    lambda0: float = 1e-3
    max_halvings: int = 40

    @staticmethod
    def damped_step(F, g, damping):
        """The step delta solving (F + damping diag F) delta = -g (one compiled solve)."""
        return _solve_jit(F, g, damping)

    def run(self, objective, theta0, progress=None):
        theta = jnp.asarray(theta0)
        L, g, F = objective.normal(theta)
        history = [float(L)]
        lam = self.lambda0
        message, converged = f"stopped after {self.max_steps} steps", False
        for step in range(1, self.max_steps + 1):
            delta = _solve_jit(F, g, lam)
            L1, g1, F1 = objective.normal(theta + delta)
            halved = not bool(jnp.isfinite(L1))
            if halved:  # the step left the model's domain (m <= 0): shorter
                for _ in range(self.max_halvings):
                    delta = 0.5 * delta
                    if bool(jnp.isfinite(objective.value(theta + delta))):
                        L1, g1, F1 = objective.normal(theta + delta)
                        break
            trial = theta + delta
            if bool(jnp.isfinite(L1)) and float(L1) <= float(L):
                # F is symmetric: the eigen-decomposition pinv (3x faster than the SVD one at n ~ 900)
                sigma = np.sqrt(np.maximum(np.diag(np.linalg.pinv(np.asarray(F1), hermitian=True)), 0.0))
                # a step the domain cut short says nothing about the optimum: no convergence on it
                small = not halved and np.all(np.abs(np.asarray(delta)) <= self.xtol * np.maximum(sigma, 1e-300))
                flat = not halved and float(L) - float(L1) <= self.ftol * max(abs(float(L)), 1e-300)
                theta, L, g, F = trial, L1, g1, F1
                history.append(float(L))
                lam = max(lam / 3.0, 1e-12)
                if progress is not None:
                    progress(step, float(L), lam)
                if small or flat:
                    message, converged = (
                        ("steps below xtol x standard error" if small else "loss change below ftol"),
                        True,
                    )
                    break
            else:
                lam *= 4.0
                if progress is not None:
                    progress(step, float(L), lam)
                # the quadratic model promises less than rounding can show: at the optimum
                # (a rejected step there only measures rounding; MINPACK's predicted-reduction test)
                predicted = -float(jnp.dot(g, delta) + 0.5 * jnp.dot(delta, F @ delta))
                if bool(jnp.isfinite(L1)) and predicted <= self.ftol * max(abs(float(L)), 1e-300):
                    message, converged = "predicted loss decrease below ftol", True
                    break
                if lam > 1e12:
                    message, converged = "no further decrease of the loss (damping at its limit)", True
                    break
        return theta, history, converged, message


class AbstractOptaxMethod(AbstractMethod):
    """An optax optimiser on the preconditioned parameters (module docstring)."""

    gtol: float = 1e-6

    @abc.abstractmethod
    def optimizer(self):
        """The optax GradientTransformation."""

    def run(self, objective, theta0, progress=None):
        import optax

        opt = self.optimizer()
        theta0 = jnp.asarray(theta0)
        # precondition: theta = theta0 + s phi with s = 1/sqrt(diag F(theta0)), so phi is in units
        # of (starting) standard errors and one learning rate or line search fits every parameter
        F0 = np.diag(np.asarray(objective.normal(theta0)[2]))
        s = jnp.asarray(np.where(F0 > 0, 1.0 / np.sqrt(np.where(F0 > 0, F0, 1.0)), 1.0))

        def to_theta(phi):
            return theta0 + s * phi

        @jax.jit
        def step(phi, state):  # one compiled step: one Fisher/gradient pass and the update
            value, grad = objective.gradient(to_theta(phi), traceable=True)
            grad = grad * s

            def value_fn(p):  # for the line searches
                return objective.value(to_theta(p), traceable=True)

            updates, state = opt.update(grad, state, phi, value=value, grad=grad, value_fn=value_fn)
            return optax.apply_updates(phi, updates), state, value, jnp.max(jnp.abs(grad))

        phi = jnp.zeros_like(theta0)
        state = opt.init(phi)
        history, converged, message = [], False, f"stopped after {self.max_steps} steps"
        for k in range(1, self.max_steps + 1):
            new_phi, state, value, gmax = step(phi, state)
            history.append(float(value))
            if progress is not None:
                progress(k, float(value), None)
            if float(gmax) <= self.gtol:
                converged, message = True, "gradient below gtol (in units of the starting standard errors)"
                break
            phi = new_phi
        theta = to_theta(phi)
        history.append(float(objective.value(theta)))
        return theta, history, converged, message


@final
class LBFGS(AbstractOptaxMethod):
    """optax.lbfgs with its zoom line search."""

    max_steps: int = 300

    def optimizer(self):
        import optax

        return optax.lbfgs()


@final
class Adam(AbstractOptaxMethod):
    """optax.adam on the preconditioned parameters (units of the starting standard errors)."""

    learning_rate: float = 0.3
    max_steps: int = 2000

    def optimizer(self):
        import optax

        return optax.adam(self.learning_rate)


# the optimisers by the names the command line gives them (``nbjax fit -method NAME``)
METHODS = {"lm": LevenbergMarquardt, "lbfgs": LBFGS, "adam": Adam}
