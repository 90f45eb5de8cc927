"""The model strategy of an Experiment: what the kernel asks of the way samples add up.

``AbstractAccumulation`` declares every method ``nbjax.kernel`` calls on ``Experiment.model``
(the abstract/final pattern of equinox and diffrax's ``AbstractSolver``): the kernel has no
mode branches, and a new model is one final subclass.  The two models are
``nbjax.accumulation.Physical`` (the intended physics) and ``nbjax.ccompat.CCompatible`` (the
C program's behaviour, quirks included).

This module imports nothing of nbjax, so ``nbjax.experiment`` can name the strategy type of its
``model`` field without an import circle.  Shapes (``nbjax.samples``): T pixels of a tile,
L sensor layers, Q sub-pixels, S sources, K orientations.
"""

import abc
from typing import Any

import equinox as eqx
from jaxtyping import Array, Bool, Float, Int


class AbstractAccumulation(eqx.Module):
    """Strategy: the per-sample choices and the per-pixel sum of an Experiment's model.

    A tile stage is a method ``stage(exp, fpix, spix, context, dtype)`` of the model;
    ``pixels`` is the stage every model has, the others are a model's own (``prepare`` and
    ``finish`` run them through the callables the kernel passes in)."""

    c_compatible: eqx.AbstractClassVar[bool]  # True: the C program's behaviour, not the physics

    @abc.abstractmethod
    def polarization(self, exp, incident, diffracted, dmin_skip) -> Float[Array, " T #L #Q #S"]:
        """Polarization factors of the samples (per sample, or one per pixel as (T, 1, 1, 1))."""

    @abc.abstractmethod
    def lattice_sq(self, hkl, crystal, dtype) -> Float[Array, "T L Q S K"]:
        """|F_latt|^2 of the crystal shape at fractional indices ``hkl``."""

    @abc.abstractmethod
    def miller_indices(self, exp, diffracted, incident, inv_lambda, dmin_skip, first_pixel: bool):
        """Fractional Miller indices (T, L, Q, S, K, 3) of every sample; ``first_pixel``: the
        tile is the run's first rendered pixel."""

    @abc.abstractmethod
    def pixels(
        self, exp, fpix: Int[Array, " T"], spix: Int[Array, " T"], context, dtype
    ) -> tuple[Float[Array, " T"], Float[Array, " T"]]:
        """The tile's pixel values (photons) and solid-angle sums (sr); ``context`` is what
        ``prepare`` returned."""

    @abc.abstractmethod
    def prepare(self, exp, run_stage, keep: Bool[Array, " roi"] | None) -> tuple[Int[Array, " context"], Any]:
        """A whole-image pre-pass: (context array for the stages, host information or None).
        ``run_stage(stage)`` maps a tile stage over the image and returns (the flat values of
        the rendered pixels, the window); ``keep`` is the rendered mask, flat (None: all)."""

    @abc.abstractmethod
    def finish(self, exp, values: Float[Array, " roi"], context, run_pixel) -> Float[Array, " roi"]:
        """Last changes to the flat ROI values; ``run_pixel(stage)`` renders the run's first
        rendered pixel at ``stage`` and returns (its flat index, its value)."""
