"""Likelihoods of observed pixels d given model pixels m, per pixel.

Each loss gives the per-pixel value l(m, d), its derivative dl/dm and the Fisher weight
E[d^2 l/dm^2] that the Gauss-Newton / Levenberg-Marquardt step and the error bars use.

* ``Poisson`` (default): l = m - d + d log(d/m) (half the Poisson deviance; the negative
  log-likelihood up to a constant, 0 for a perfect model, finite at d = 0), dl/dm = 1 - d/m,
  Fisher weight 1/m.  It is defined for m > 0 only: a pixel with m <= 0 makes the loss +inf, so
  an optimiser step there is rejected (derivatives use m floored at ``floor`` photons).
* ``Gaussian``: l = (m - d)^2 / (2 sigma^2) with a per-pixel sigma (or 1), dl/dm = (m - d)/sigma^2,
  Fisher weight 1/sigma^2.
"""

from __future__ import annotations

import abc
from typing import final

import equinox as eqx
import jax.numpy as jnp


class AbstractLoss(eqx.Module):
    """A per-pixel likelihood (module docstring)."""

    @abc.abstractmethod
    def terms(self, m, d, sigma):
        """(l, dl/dm, Fisher weight) per pixel."""


@final
class Poisson(AbstractLoss):
    floor: float = 1e-12

    def terms(self, m, d, sigma):
        defined = m > 0
        m = jnp.maximum(m, self.floor)
        counts = d > 0
        safe_d = jnp.where(counts, d, 1.0)
        log_term = jnp.where(counts, d * (jnp.log(safe_d) - jnp.log(m)), 0.0)
        return jnp.where(defined, m - d + log_term, jnp.inf), 1.0 - d / m, 1.0 / m


@final
class Gaussian(AbstractLoss):
    def terms(self, m, d, sigma):
        inv_var = 1.0 / (sigma * sigma)
        r = m - d
        return 0.5 * r * r * inv_var, r * inv_var, inv_var


@final
class Readout(AbstractLoss):
    """Poisson counts read out with Gaussian noise of ``sigma_readout`` photons: the Gaussian
    approximation with variance v = m + sigma_readout^2,

        l = (d - m)^2 / (2 v) + log(v) / 2,   dl/dm = 1/(2v) - (d - m)/v - (d - m)^2/(2 v^2),

    Fisher weight 1/v + 1/(2 v^2) (the expected curvature of a Gaussian whose variance follows
    its mean).  Defined for v > 0; with sigma_readout > 0 a model pixel may go to 0."""

    sigma_readout: float = 1.0

    def terms(self, m, d, sigma):
        v = m + self.sigma_readout**2
        defined = v > 0
        v = jnp.maximum(v, 1e-12)
        r = d - m
        value = 0.5 * r * r / v + 0.5 * jnp.log(v)
        return jnp.where(defined, value, jnp.inf), 0.5 / v - r / v - 0.5 * r * r / (v * v), 1.0 / v + 0.5 / (v * v)


# the likelihoods by the names the command line gives them (``nbjax fit -loss NAME``)
LOSSES = {"poisson": Poisson, "gaussian": Gaussian, "readout": Readout}
