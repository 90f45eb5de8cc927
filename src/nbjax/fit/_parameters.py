"""Free parameters of a fit: named, in user units, with their transforms.

Each parameter maps an unconstrained vector theta to user-unit values u (wavelengths in
Angstrom, angles in mrad or degrees, distances in mm) and applies u to the Experiment, or to the
linear part of the model

    model(pixel) = scale * sum_s w_s I_s(pixel; theta) + background,   sum_s w_s = 1,

where I_s is the physical image of source s alone (``nbjax.Physical.per_source``).  Roles:
``"experiment"`` parameters change I_s, ``"weights"`` the w_s, ``"scale"`` and ``"background"``
the rest.  A ``per_source`` experiment parameter changes source s's image only through its own
entries (entry s of each component), which lets the fitter take all sources' derivatives in
one forward-mode pass.

Transforms: identity (optionally with ``bounds=(lo, hi)``: u = lo + (hi - lo) sigmoid(theta)),
log for positive quantities, and for the weights the simplex with the first logit fixed at 0
(the gauge: the overall intensity belongs to ``Scale``).  ``prior=(mean, sigma)`` in user units
adds the Gaussian restraint 1/2 ((u - mean)/sigma)^2 to the loss.
"""

import abc
import math
from typing import ClassVar, final

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from nbjax.errors import NBError
from nbjax.experiment import Experiment
from nbjax.physics.rotations import axis_angle_matrix, rotate_axis, rotate_xyz
from nbjax.setup import sampling
from nbjax.setup.crystal import lattice_from_cell

ANGSTROM = 1e-10
MRAD = 1e-3
# Whose copy of a parameter's values it is: one per shot (an image or a still's panels; the
# default), one per panel of a shot, one for the whole data set (every shot: ``nbjax.ensemble``
# refines these jointly), or one per panel for the whole data set (detector metrology).
SCOPES = ("shot", "panel", "global", "global_panel")


class AbstractParameter(eqx.Module):
    """One named group of free values (see the module docstring)."""

    start: tuple | float | None = eqx.field(
        static=True, default=None, kw_only=True
    )  # user units; None: from the Experiment
    bounds: tuple | None = eqx.field(static=True, default=None, kw_only=True)
    prior: tuple | None = eqx.field(static=True, default=None, kw_only=True)  # (mean, sigma), user units
    scope: str = eqx.field(static=True, default="shot", kw_only=True)  # one of SCOPES: whose copy it is

    name: eqx.AbstractClassVar[str]  # the label stem of its values (``labels``)
    units: eqx.AbstractClassVar[str]
    role: eqx.AbstractClassVar[str]  # "experiment", "weights", "scale" or "background"
    per_source: ClassVar[bool] = False
    positive: ClassVar[bool] = False
    beam_only: ClassVar[bool] = False  # apply() changes only beam.wavelengths / beam.directions

    def __check_init__(self):
        if self.scope not in SCOPES:
            raise NBError(f"{type(self).__name__}: scope '{self.scope}' is not one of {', '.join(SCOPES)}")

    @property
    def per_panel(self) -> bool:
        """One copy per panel of a shot (scopes "panel" and "global_panel")."""
        return self.scope in ("panel", "global_panel")

    @property
    def shared_by_shots(self) -> bool:
        """One copy for the whole data set (scopes "global" and "global_panel")."""
        return self.scope in ("global", "global_panel")

    def changes_lattice(self, exp: Experiment) -> bool:
        """True when apply() changes the lattice transform G other than through the Miller
        indices (``fit._tangents`` then differentiates G by plain forward mode)."""
        return False

    def labels(self, exp: Experiment) -> list[str]:
        """One label per user value (``name`` or ``name[i]``)."""
        n = int(np.size(self.initial(exp)))
        return [self.name] if n == 1 and np.ndim(self.initial(exp)) == 0 else [f"{self.name}[{i}]" for i in range(n)]

    def initial(self, exp: Experiment) -> np.ndarray:
        """Starting user values: ``start`` if given, else what the Experiment holds."""
        if self.start is not None:
            return np.asarray(self.start, dtype=np.float64).reshape(np.shape(self.current(exp)))
        return np.asarray(self.current(exp), dtype=np.float64)

    @abc.abstractmethod
    def current(self, exp: Experiment):
        """The user values the Experiment holds (before the fit)."""

    @classmethod
    def from_settings(cls, settings) -> "AbstractParameter":
        """The parameter for a starting model built from ``settings`` (``nbjax.settings.RunSettings``):
        the parameters of a sampling grid take its steps from them; others need nothing."""
        return cls()

    # ---- transforms between theta (unconstrained) and user values
    def to_theta(self, u):
        u = jnp.asarray(u, jnp.float64)
        if self.bounds is not None:
            lo, hi = self.bounds
            p = jnp.clip((u - lo) / (hi - lo), 1e-12, 1 - 1e-12)
            return jnp.log(p) - jnp.log1p(-p)
        return jnp.log(u) if self.positive else u

    def from_theta(self, theta):
        if self.bounds is not None:
            lo, hi = self.bounds
            return lo + (hi - lo) * jax.nn.sigmoid(theta)
        return jnp.exp(theta) if self.positive else theta

    def transform_bounds(self) -> tuple | None:
        """(lo, hi) where the transform is u = lo + (hi - lo) sigmoid(theta), entry by entry,
        else None (no ``bounds``, or a transform that does not use them)."""
        return self.bounds


class AbstractExperimentParameter(AbstractParameter):
    """A parameter that changes the per-source images I_s: it is applied to the Experiment."""

    role: ClassVar[str] = "experiment"

    @abc.abstractmethod
    def apply(self, exp: Experiment, u, reference: Experiment) -> Experiment:
        """``exp`` with user values ``u``; ``reference`` is the starting Experiment (fixed)."""


class AbstractWeightsParameter(AbstractParameter):
    """A parameter that sets the normalised source weights w_s of the linear model."""

    role: ClassVar[str] = "weights"

    @abc.abstractmethod
    def weights(self, exp: Experiment, u) -> Float[Array, " S"]:
        """w_s (sum 1) for user values ``u``."""


@final
class Weights(AbstractWeightsParameter):
    """Normalised source weights w_s (sum 1): the spectrum's intensities.  theta has S-1 entries
    (the first source's logit is fixed at 0)."""

    name: ClassVar[str] = "weight"
    units: ClassVar[str] = "fraction"

    def current(self, exp):
        w = np.asarray(exp.beam.weights, dtype=np.float64)
        return w / w.sum()

    def to_theta(self, u):
        u = jnp.asarray(u, jnp.float64)
        return jnp.log(u[1:]) - jnp.log(u[0])

    def from_theta(self, theta):
        return jax.nn.softmax(jnp.concatenate([jnp.zeros((1,), theta.dtype), theta]))

    def weights(self, exp, u):
        """The user values are the weights."""
        return u

    def transform_bounds(self):
        return None  # the simplex transform has no bounds


@final
class Spectrum(AbstractWeightsParameter):
    """A parametric spectrum on the Experiment's fixed source wavelengths (the channel grid):
    w_s proportional to shape((lambda_s - centre)/width), Gaussian (width = FWHM) or Lorentzian
    (width = FWHM).  User values: (centre, FWHM) in Angstrom."""

    shape: str = eqx.field(static=True, default="gaussian")
    name: ClassVar[str] = "spectrum"
    units: ClassVar[str] = "A"

    def labels(self, exp):
        return ["spectrum_centre", "spectrum_fwhm"]

    def current(self, exp):
        lam = np.asarray(exp.beam.wavelengths) / ANGSTROM
        w = np.asarray(exp.beam.weights, dtype=np.float64)
        w = w / w.sum()
        centre = float(np.sum(w * lam))
        sd = float(np.sqrt(np.sum(w * (lam - centre) ** 2)))
        return np.array([centre, max(sd * 2.3548200450309493, 1e-6 * centre)])

    def to_theta(self, u):
        u = jnp.asarray(u, jnp.float64)
        return jnp.stack([u[0], jnp.log(u[1])])

    def from_theta(self, theta):
        return jnp.stack([theta[0], jnp.exp(theta[1])])

    def transform_bounds(self):
        return None  # centre and log FWHM: no bounds

    def weights(self, exp, u):
        """w_s of the spectrum with user values u = (centre, FWHM)."""
        lam = exp.beam.wavelengths / ANGSTROM
        x = (lam - u[0]) / u[1]
        if self.shape == "gaussian":
            logw = -4.0 * math.log(2.0) * x * x
        elif self.shape == "lorentzian":
            logw = -jnp.log1p(4.0 * x * x)
        else:
            raise ValueError(f"Spectrum: unknown shape {self.shape!r} (gaussian or lorentzian)")
        return jax.nn.softmax(logw)


@final
class Scale(AbstractParameter):
    """Overall scale of the model (fluence x exposure x detector gain), starting at 1."""

    name: ClassVar[str] = "scale"
    units: ClassVar[str] = "x"
    role: ClassVar[str] = "scale"
    positive: ClassVar[bool] = True

    def current(self, exp):
        return np.float64(1.0)


@final
class Background(AbstractParameter):
    """A constant background added to every pixel (photons per pixel).  Non-negative (log
    transform), starting at ``start`` or 1e-3; ``signed=True`` allows negative values (for a
    Gaussian fit of background-subtracted data)."""

    signed: bool = eqx.field(static=True, default=False)
    name: ClassVar[str] = "background"
    units: ClassVar[str] = "photons/pixel"
    role: ClassVar[str] = "background"

    def current(self, exp):
        return np.float64(0.0 if self.signed else 1e-3)

    def to_theta(self, u):
        if self.signed or self.bounds is not None:
            return super().to_theta(u)
        return jnp.log(jnp.maximum(jnp.asarray(u, jnp.float64), 1e-12))

    def from_theta(self, theta):
        if self.signed or self.bounds is not None:
            return super().from_theta(theta)
        return jnp.exp(theta)


@final
class BackgroundPlanes(AbstractParameter):
    """A background plane per shoebox, added to its pixels: c_k + gx_k dx + gy_k dy, with
    (dx, dy) the pixel's offset from the shoebox centre (pixels; ``Observation.shoebox`` and
    ``offsets``).  User values (shoeboxes, 3): c in photons/pixel, gx and gy in photons/pixel
    per pixel; no transform (a Poisson model pixel <= 0 is refused by the loss, so start
    positive: ``start`` from the data, (shoeboxes, 3) or (shoeboxes, 1) as a nested tuple).
    ``tilt=False``: a constant per shoebox (c alone)."""

    shoeboxes: int = eqx.field(static=True, default=0)
    tilt: bool = eqx.field(static=True, default=True)
    name: ClassVar[str] = "plane"
    units: ClassVar[str] = "photons/pixel"
    role: ClassVar[str] = "background_planes"

    @property
    def per_shoebox(self) -> int:
        """Values per shoebox: c, gx, gy (or c alone without tilt)."""
        return 3 if self.tilt else 1

    def current(self, exp):
        return np.zeros((self.shoeboxes, self.per_shoebox))

    def labels(self, exp):
        return [f"plane[{k}].{c}" for k in range(self.shoeboxes) for c in ("c", "gx", "gy")[: self.per_shoebox]]

    @classmethod
    def from_settings(cls, settings):
        raise NBError("background_planes needs shoeboxes: it is refined by the shoebox fit (nbjax fit -expt ...)")


@final
class ReflectionFactors(AbstractParameter):
    """Intensity factors q_r of reflection slots: a pixel whose Bragg intensity comes from one
    reflection (its slot r >= 0 in ``Observation.reflection``) has that intensity times q_r:
    m = q_r scale sum_s w_s I_s + background.  The ensemble refinement (``nbjax.ensemble``)
    evaluates them at 1 and maps them onto the structure factors of its table,
    q_r = (F_j / F_j,table)^2, so their Jacobian columns are the structure factors' own (the
    Bragg part, one entry per pixel, added sparsely).  Identity transform, start 1."""

    slots: int = eqx.field(static=True, default=0)
    scope: str = eqx.field(static=True, default="global", kw_only=True)
    name: ClassVar[str] = "q"
    units: ClassVar[str] = "x"
    role: ClassVar[str] = "reflection_factors"

    def current(self, exp):
        return np.ones(self.slots)


@final
class Wavelengths(AbstractExperimentParameter):
    """Every source's wavelength (Angstrom), free one by one."""

    beam_only: ClassVar[bool] = True
    name: ClassVar[str] = "wavelength"
    units: ClassVar[str] = "A"
    per_source: ClassVar[bool] = True

    def current(self, exp):
        return np.asarray(exp.beam.wavelengths) / ANGSTROM

    def apply(self, exp, u, reference):
        return eqx.tree_at(lambda e: e.beam.wavelengths, exp, u * ANGSTROM)


@final
class SpectrumShift(AbstractExperimentParameter):
    """A shift (Angstrom) of every channel of a measured spectrum together,
    lambda_s' = lambda_s + shift: diffBragg's spectrum offset, for a spectrometer whose
    wavelength calibration is off.  Acts on the wavelengths as they stand, so with
    ``SpectrumScale`` the order does not matter."""

    beam_only: ClassVar[bool] = True
    name: ClassVar[str] = "spectrum_shift"
    units: ClassVar[str] = "A"

    def current(self, exp):
        return np.float64(0.0)

    def apply(self, exp, u, reference):
        return eqx.tree_at(lambda e: e.beam.wavelengths, exp, exp.beam.wavelengths + u * ANGSTROM)


@final
class SpectrumScale(AbstractExperimentParameter):
    """A dispersion scale (dimensionless, positive) of a measured spectrum about its weighted
    mean wavelength, lambda_s' = mean + scale (lambda_s - mean), the mean weighted by the
    starting Experiment's source weights: diffBragg's spectrum scale, for a spectrometer whose
    dispersion calibration is off.  The mean of the scaled channels is the mean, so with
    ``SpectrumShift`` the order does not matter."""

    beam_only: ClassVar[bool] = True
    name: ClassVar[str] = "spectrum_scale"
    units: ClassVar[str] = "x"
    positive: ClassVar[bool] = True

    def current(self, exp):
        return np.float64(1.0)

    def apply(self, exp, u, reference):
        w = reference.beam.weights / jnp.sum(reference.beam.weights)
        lam = exp.beam.wavelengths
        mean = jnp.sum(w * lam)
        return eqx.tree_at(lambda e: e.beam.wavelengths, exp, mean + u * (lam - mean))


def _beam_axes(exp):
    """(horizontal, vertical) unit axes perpendicular to the beam: the polarization axis p and
    beam x p (the axes of nanoBragg's divergence grid)."""
    beam = exp.detector.beam
    p = exp.beam.polar_vector
    p = p - jnp.dot(p, beam) * beam
    # a polarization axis along the beam defines no direction: take the lab axis most
    # perpendicular to the beam instead (tests/test_fit.py, kahn-degenerate-water)
    lab = jnp.eye(3)[jnp.argmin(jnp.abs(beam))]
    p = jnp.where(jnp.dot(p, p) > 1e-20, p, lab - jnp.dot(lab, beam) * beam)
    p = p / jnp.linalg.norm(p)
    return p, jnp.cross(beam, p)


def _tilt(directions, axes, angles):
    """Rotate unit vectors (S, 3) by angles (S, 2) (rad) about axes[0] then axes[1]."""
    d = rotate_axis(directions, axes[0], angles[:, 0:1], jnp)
    return rotate_axis(d, axes[1], angles[:, 1:2], jnp)


@final
class SourceAngles(AbstractExperimentParameter):
    """Every source's direction as two small angles (mrad) from its starting direction: about
    the polarization axis (vertical divergence) and about beam x polarization (horizontal)."""

    beam_only: ClassVar[bool] = True
    name: ClassVar[str] = "source_angle"
    units: ClassVar[str] = "mrad"
    per_source: ClassVar[bool] = True

    def labels(self, exp):
        return [f"source_angle[{s}].{c}" for s in range(exp.beam.wavelengths.shape[0]) for c in ("v", "h")]

    def current(self, exp):
        return np.zeros((exp.beam.wavelengths.shape[0], 2))

    def apply(self, exp, u, reference):
        return eqx.tree_at(
            lambda e: e.beam.directions, exp, _tilt(reference.beam.directions, _beam_axes(reference), u * MRAD)
        )


@final
class BeamDirection(AbstractExperimentParameter):
    """The whole beam (every source together) tilted by two small angles (mrad), as
    ``SourceAngles``; the detector stays where it is."""

    beam_only: ClassVar[bool] = True
    name: ClassVar[str] = "beam_angle"
    units: ClassVar[str] = "mrad"

    def labels(self, exp):
        return ["beam_angle.v", "beam_angle.h"]

    def current(self, exp):
        return np.zeros(2)

    def apply(self, exp, u, reference):
        S = reference.beam.directions.shape[0]
        angles = jnp.broadcast_to(u * MRAD, (S, 2))
        return eqx.tree_at(lambda e: e.beam.directions, exp, _tilt(exp.beam.directions, _beam_axes(reference), angles))


@final
class Divergence(AbstractExperimentParameter):
    """Full horizontal and vertical divergence (mrad) of a nanoBragg divergence grid with
    ``hsteps`` x ``vsteps`` points (elliptically trimmed when ``round_div``, as the C program)
    and ``dispsteps`` wavelengths per point.  The grid is rebuilt in JAX: source
    (i, j) is tilted by v = vdiv (j/(vsteps-1) - 1/2) and h = hdiv (i/(hsteps-1) - 1/2)."""

    hsteps: int = eqx.field(static=True, default=1)
    vsteps: int = eqx.field(static=True, default=1)
    dispsteps: int = eqx.field(static=True, default=1)
    round_div: bool = eqx.field(static=True, default=True)
    beam_only: ClassVar[bool] = True
    name: ClassVar[str] = "divergence"
    units: ClassVar[str] = "mrad"
    positive: ClassVar[bool] = True

    @classmethod
    def from_settings(cls, settings):
        """The grid of -hdivsteps/-vdivsteps/-dispsteps (and -round_div) of the starting model."""

        def steps(n, extent, step):
            return sampling.grid_rule(n, extent, step)[0]

        s = settings
        return cls(
            hsteps=steps(s.hdivsteps, s.hdivrange, s.hdivstep),
            vsteps=steps(s.vdivsteps, s.vdivrange, s.vdivstep),
            dispsteps=steps(s.dispsteps, s.dispersion, s.dispstep),
            round_div=s.round_div,
        )

    def labels(self, exp):
        return ["divergence.h", "divergence.v"]

    def kept(self):
        """Grid points (i, j) kept by the C program's elliptical trim (steps only decide it)."""
        out = []
        for i in range(self.hsteps):
            for j in range(self.vsteps):
                fh = (i / (self.hsteps - 1) - 0.5) if self.hsteps > 1 else 0.0
                fv = (j / (self.vsteps - 1) - 0.5) if self.vsteps > 1 else 0.0
                dh = (1.0 / (self.hsteps - 1)) if self.hsteps > 1 else 0.0
                dv = (1.0 / (self.vsteps - 1)) if self.vsteps > 1 else 0.0
                test = (fh * fh - dh * dh / 4.0 * (1 - self.hsteps % 2)) + (
                    fv * fv - dv * dv / 4.0 * (1 - self.vsteps % 2)
                )
                if self.round_div and test * 4.0 > 1.1:
                    continue
                out.append((fh, fv))
        return np.array(out).reshape(-1, 2)

    def current(self, exp):
        kept = self.kept()
        if kept.shape[0] * self.dispsteps != exp.beam.wavelengths.shape[0]:
            raise ValueError(
                f"Divergence: a {self.hsteps}x{self.vsteps} grid with {self.dispsteps} wavelengths does not match "
                f"the Experiment's {exp.beam.wavelengths.shape[0]} sources"
            )
        d = np.asarray(exp.beam.directions)
        span = []  # full divergence = angle between the extreme grid points / their span in f
        for k in (0, 1):
            f = kept[:, k]
            if np.ptp(f) == 0:
                span.append(1e-3)
                continue
            i, j = int(np.argmin(f)), int(np.argmax(f))
            angle = math.acos(min(1.0, float(np.dot(d[i * self.dispsteps], d[j * self.dispsteps]))))
            span.append(max(angle / (f[j] - f[i]) / MRAD, 1e-3))
        return np.array(span)

    def apply(self, exp, u, reference):
        kept = jnp.asarray(self.kept())
        angles = jnp.repeat(jnp.stack([kept[:, 1] * u[1], kept[:, 0] * u[0]], axis=-1) * MRAD, self.dispsteps, axis=0)
        base = jnp.broadcast_to(-reference.detector.beam, angles.shape[:1] + (3,))
        return eqx.tree_at(lambda e: e.beam.directions, exp, _tilt(base, _beam_axes(reference), angles))


@final
class Dispersion(AbstractExperimentParameter):
    """Fractional bandwidth of a nanoBragg dispersion grid of ``dispsteps`` wavelengths
    lambda_k = lambda0 (1 + dispersion (k/(dispsteps-1) - 1/2)) about ``lambda0`` (the mean of
    the Experiment's wavelengths), repeated for every divergence point."""

    dispsteps: int = eqx.field(static=True, default=1)
    beam_only: ClassVar[bool] = True
    name: ClassVar[str] = "dispersion"
    units: ClassVar[str] = "fraction"
    positive: ClassVar[bool] = True

    @classmethod
    def from_settings(cls, settings):
        """The -dispsteps of the starting model."""
        s = settings
        return cls(dispsteps=sampling.grid_rule(s.dispsteps, s.dispersion, s.dispstep)[0])

    def _grid(self):
        return (np.arange(self.dispsteps) / max(self.dispsteps - 1, 1) - 0.5) if self.dispsteps > 1 else np.zeros(1)

    def current(self, exp):
        lam = np.asarray(exp.beam.wavelengths)[: self.dispsteps]
        return np.float64(max((lam.max() - lam.min()) / lam.mean(), 1e-6))

    def apply(self, exp, u, reference):
        lam0 = jnp.mean(reference.beam.wavelengths)
        grid = jnp.asarray(self._grid())
        points = reference.beam.wavelengths.shape[0] // self.dispsteps
        lam = jnp.tile(lam0 * (1.0 + u * grid), points)
        return eqx.tree_at(lambda e: e.beam.wavelengths, exp, lam)


@final
class Distance(AbstractExperimentParameter):
    """Detector distance (mm) along the pivot axis (nanoBragg's -distance)."""

    name: ClassVar[str] = "distance"
    units: ClassVar[str] = "mm"
    positive: ClassVar[bool] = True

    def current(self, exp):
        return np.float64(float(exp.detector.distance) * 1000.0)

    def apply(self, exp, u, reference):
        return eqx.tree_at(lambda e: e.detector.distance, exp, u / 1000.0)


@final
class DetectorDistance(AbstractExperimentParameter):
    """The whole detector moved along the beam by a distance (mm; the user value is the shift
    from the starting geometry, 0 at the start): every panel of a multi-panel detector moves
    together (``Distance`` moves one flat panel along its pivot axis instead)."""

    name: ClassVar[str] = "detector_distance"
    units: ClassVar[str] = "mm"

    def current(self, exp):
        return np.float64(0.0)

    def apply(self, exp, u, reference):
        det = reference.detector
        return eqx.tree_at(lambda e: e.detector.pix0_offset, exp, det.pix0_offset + (u / 1000.0) * det.beam)


@final
class PanelShift(AbstractExperimentParameter):
    """A panel moved by (x, y, z) in the lab frame (mm, from its starting place): one copy per
    panel in a multi-panel fit (a per-image parameter; ``nbjax.ensemble`` can share it by all
    shots, scope "global_panel")."""

    scope: str = eqx.field(static=True, default="panel", kw_only=True)
    name: ClassVar[str] = "panel_shift"
    units: ClassVar[str] = "mm"

    def labels(self, exp):
        return ["panel_shift.x", "panel_shift.y", "panel_shift.z"]

    def current(self, exp):
        return np.zeros(3)

    def apply(self, exp, u, reference):
        det = exp.detector  # as it stands: a PanelRotation before or after turns about the moved centre
        return eqx.tree_at(lambda e: e.detector.pix0_offset, exp, det.pix0_offset + u / 1000.0)


@final
class PanelRotation(AbstractExperimentParameter):
    """A panel turned about lab x, then y, then z (mrad, ``rotate_xyz``: Misset's order) through
    its centre, from its starting orientation: its fast, slow and normal axes R f, R s, R o and
    its corner c + R (pix0 - c), c = pix0 + (F f + S s) pixel / 2 + ``pivot_offset``.  With
    ``PanelShift`` a rigid motion of the panel (the two commute: the shift moves the centre
    too).  One copy per panel (detector metrology); flat panels only (a curved detector's
    sphere is not a panel's).  ``pivot_offset`` (m, lab frame; default 0) moves the turning
    point from the panel's centre: the panels of a group, each given its offset to the group's
    centre, turn as one body."""

    pivot_offset: tuple = eqx.field(static=True, default=(0.0, 0.0, 0.0), kw_only=True)
    scope: str = eqx.field(static=True, default="panel", kw_only=True)
    name: ClassVar[str] = "panel_rotation"
    units: ClassVar[str] = "mrad"

    def labels(self, exp):
        return ["panel_rotation.x", "panel_rotation.y", "panel_rotation.z"]

    def current(self, exp):
        if exp.detector.curved:
            raise NBError("panel_rotation: a curved detector has no flat panel to turn")
        return np.zeros(3)

    def apply(self, exp, u, reference):
        det = exp.detector
        r = u * MRAD

        def turn(v):
            return rotate_xyz(v, r[0], r[1], r[2], jnp)

        centre = det.pix0 + 0.5 * det.pixel_size * (det.fpixels * det.fdet + det.spixels * det.sdet)
        centre = centre + jnp.asarray(self.pivot_offset)
        moved = centre + turn(det.pix0 - centre)
        return eqx.tree_at(
            lambda e: (e.detector.fdet, e.detector.sdet, e.detector.odet, e.detector.pix0_offset),
            exp,
            (turn(det.fdet), turn(det.sdet), turn(det.odet), det.pix0_offset + (moved - det.pix0)),
        )


def beam_spot(det):
    """(Fbeam, Sbeam) in mm: where the beam axis meets the detector plane, along fdet and sdet
    from the corner pixel's outer edge (pix0)."""
    t = jnp.dot(det.pix0, det.odet) / jnp.dot(det.beam, det.odet)
    spot = t * det.beam - det.pix0
    return jnp.stack([jnp.dot(spot, det.fdet), jnp.dot(spot, det.sdet)]) * 1000.0


@final
class BeamCentre(AbstractExperimentParameter):
    """Beam centre (Fbeam, Sbeam) in mm along the fast and slow axes: the detector is shifted
    in its own plane."""

    name: ClassVar[str] = "beam_centre"
    units: ClassVar[str] = "mm"

    def labels(self, exp):
        return ["beam_centre.F", "beam_centre.S"]

    def current(self, exp):
        return np.asarray(beam_spot(exp.detector))

    def apply(self, exp, u, reference):
        det = reference.detector
        shift = (u - beam_spot(det)) / 1000.0
        return eqx.tree_at(
            lambda e: e.detector.pix0_offset, exp, det.pix0_offset - shift[0] * det.fdet - shift[1] * det.sdet
        )


def _cell_constants(exp, xp=np):
    """(a, b, c in A; alpha, beta, gamma in degrees) of the crystal's cell vectors."""
    vecs = xp.stack([xp.asarray(v) for v in (exp.crystal.a, exp.crystal.b, exp.crystal.c)]) * 1e10
    lengths = xp.linalg.norm(vecs, axis=1)
    angles = [
        xp.degrees(xp.arccos(xp.dot(vecs[j], vecs[k]) / lengths[j] / lengths[k])) for j, k in ((1, 2), (0, 2), (0, 1))
    ]
    return xp.concatenate([lengths, xp.stack(angles)])


@final
class Cell(AbstractExperimentParameter):
    """Unit cell constants a, b, c (Angstrom) and alpha, beta, gamma (degrees); the crystal's
    orientation is kept (U = A B0^-1 of the cell as it stands, B0 of the starting constants, so a
    ``Misset`` before it in the list keeps its rotation).  ``system`` constrains them as the
    crystal system does (``CELL_SYSTEMS``: the free constants; the others are tied to them or
    fixed at the starting cell's value, e.g. 90 deg): triclinic (all six), monoclinic (unique
    axis b), orthorhombic, tetragonal, hexagonal (also trigonal with hexagonal axes),
    rhombohedral, cubic.  ``cell_system(hall_symbol, cell)`` names it from a space group."""

    system: str = eqx.field(static=True, default="triclinic")
    name: ClassVar[str] = "cell"
    units: ClassVar[str] = "A, deg"

    def labels(self, exp):
        return [f"cell.{n}" for n in _cell_free(self.system)]

    def current(self, exp):
        full = np.asarray(_cell_constants(exp))
        return np.array([full[CELL_NAMES.index(n)] for n in _cell_free(self.system)])

    def constants(self, u, reference):
        """The six constants (A, deg) for the free values ``u``: tied ones follow their free
        partner, fixed ones keep the starting cell's value."""
        start = _cell_constants(reference, jnp)
        free = _cell_free(self.system)
        value = {n: u[i] for i, n in enumerate(free)}
        ties = CELL_TIES.get(self.system, {})
        return jnp.stack(
            [value[n] if n in value else value[ties[n]] if n in ties else start[i] for i, n in enumerate(CELL_NAMES)]
        )

    def changes_lattice(self, exp):
        return exp.crystal.shape in ("gauss", "tophat")  # these use a*, b*, c*

    def apply(self, exp, u, reference):
        start = _cell_constants(reference, jnp)
        b0 = _cell_matrix(start)
        # the orientation of the cell as it stands (a misset applied before this keeps its turn)
        a0 = jnp.stack([exp.crystal.a, exp.crystal.b, exp.crystal.c])
        orientation = jnp.linalg.solve(b0, a0)  # rows: a0 = b0 @ orientation
        new = _cell_matrix(self.constants(u, reference)) @ orientation
        return eqx.tree_at(lambda e: (e.crystal.a, e.crystal.b, e.crystal.c), exp, (new[0], new[1], new[2]))


CELL_NAMES = ("a", "b", "c", "alpha", "beta", "gamma")
# the free cell constants of each crystal system, and the constants tied to a free one
CELL_SYSTEMS = {
    "triclinic": CELL_NAMES,
    "monoclinic": ("a", "b", "c", "beta"),
    "orthorhombic": ("a", "b", "c"),
    "tetragonal": ("a", "c"),
    "hexagonal": ("a", "c"),
    "rhombohedral": ("a", "alpha"),
    "cubic": ("a",),
}
CELL_TIES = {
    "tetragonal": {"b": "a"},
    "hexagonal": {"b": "a"},
    "rhombohedral": {"b": "a", "c": "a", "beta": "alpha", "gamma": "alpha"},
    "cubic": {"b": "a", "c": "a"},
}


def _cell_free(system: str) -> tuple[str, ...]:
    if system not in CELL_SYSTEMS:
        raise NBError(f"unknown crystal system '{system}' (known: {', '.join(CELL_SYSTEMS)})")
    return CELL_SYSTEMS[system]


def cell_system(hall_symbol: str, cell=None) -> str:
    """The ``Cell`` constraint of a space group (gemmi parses the Hall symbol): its crystal
    system, with trigonal groups as hexagonal axes unless the cell (a, b, c, alpha, beta,
    gamma) is rhombohedral (gamma not 120 deg)."""
    try:
        import gemmi
    except ImportError:
        raise NBError("constraining the cell by the space group needs gemmi (pip install gemmi)") from None
    try:
        group = gemmi.find_spacegroup_by_ops(gemmi.symops_from_hall(hall_symbol))
    except (RuntimeError, ValueError) as exc:
        raise NBError(f"space group Hall symbol '{hall_symbol.strip()}': {exc}") from None
    system = group.crystal_system_str() if group is not None else "triclinic"
    if system == "trigonal":
        system = "hexagonal" if cell is None or abs(float(cell[5]) - 120.0) < 1.0 else "rhombohedral"
    return system


def _cell_matrix(u):
    """Rows a, b, c (m) of the unrotated cell with constants u (A, deg)."""
    cell = [u[0], u[1], u[2], jnp.deg2rad(u[3]), jnp.deg2rad(u[4]), jnp.deg2rad(u[5])]
    lat = lattice_from_cell(cell, None, xp=jnp)
    return jnp.stack([lat.a, lat.b, lat.c])


@final
class Misset(AbstractExperimentParameter):
    """A further crystal rotation (degrees) about lab x, then y, then z (nanoBragg's -misset
    order), on top of the starting orientation."""

    name: ClassVar[str] = "misset"
    units: ClassVar[str] = "deg"

    def labels(self, exp):
        return ["misset.x", "misset.y", "misset.z"]

    def current(self, exp):
        return np.zeros(3)

    def apply(self, exp, u, reference):
        r = jnp.deg2rad(u)
        vecs = [rotate_xyz(v, r[0], r[1], r[2], jnp) for v in (exp.crystal.a, exp.crystal.b, exp.crystal.c)]
        return eqx.tree_at(lambda e: (e.crystal.a, e.crystal.b, e.crystal.c), exp, tuple(vecs))


@final
class CrystalSize(AbstractExperimentParameter):
    """Number of unit cells Na, Nb, Nc (continuous)."""

    name: ClassVar[str] = "N"
    units: ClassVar[str] = "cells"
    positive: ClassVar[bool] = True

    def labels(self, exp):
        return ["N.a", "N.b", "N.c"]

    def current(self, exp):
        return np.asarray(exp.crystal.N, dtype=np.float64)

    def changes_lattice(self, exp):
        return True

    def apply(self, exp, u, reference):
        return eqx.tree_at(lambda e: e.crystal.N, exp, u)


@final
class MosaicSpread(AbstractExperimentParameter):
    """Mosaic spread (degrees): the starting domains' rotation axes and unit angles are fixed
    draws, their angles scale with the spread (so it has a gradient).  Needs a starting model
    with -mosaic_spread > 0 and several domains."""

    name: ClassVar[str] = "mosaic_spread"
    units: ClassVar[str] = "deg"
    positive: ClassVar[bool] = True
    spread0: float = eqx.field(static=True, default=0.0)

    @classmethod
    def from_settings(cls, settings):
        """The starting model's -mosaic spread (degrees)."""
        return cls(spread0=math.degrees(max(settings.mosaic_spread, 0.0)))

    def current(self, exp):
        if self.spread0 <= 0:
            raise ValueError("MosaicSpread(spread0=...) needs the starting mosaic spread in degrees")
        return np.float64(self.spread0)

    def apply(self, exp, u, reference):
        axes, angles = _rotation_vectors(reference.crystal.mosaic_umats)
        scale = u / self.spread0
        umats = jax.vmap(lambda ax, an: axis_angle_matrix(ax, an * scale, jnp))(axes, angles)
        return eqx.tree_at(lambda e: e.crystal.mosaic_umats, exp, umats)


def _rotation_vectors(umats):
    """Unit axes (M, 3) and angles (M,) of rotation matrices (the identity: axis z, angle 0)."""
    trace = jnp.trace(umats, axis1=-2, axis2=-1)
    angle = jnp.arccos(jnp.clip((trace - 1.0) / 2.0, -1.0, 1.0))
    v = jnp.stack(
        [umats[:, 2, 1] - umats[:, 1, 2], umats[:, 0, 2] - umats[:, 2, 0], umats[:, 1, 0] - umats[:, 0, 1]], axis=-1
    )
    n = jnp.linalg.norm(v, axis=-1, keepdims=True)
    turned = n > 0
    axes = jnp.where(turned, v / jnp.where(turned, n, 1.0), jnp.array([0.0, 0.0, 1.0]))
    return axes, jnp.where(turned[:, 0], angle, 0.0)


# The free parameters by the names the command line gives them (``nbjax fit -free LIST``):
# a new parameter is its class and one line here.
PARAMETERS = {
    "weights": Weights,
    "spectrum": Spectrum,
    "wavelengths": Wavelengths,
    "spectrum_shift": SpectrumShift,
    "spectrum_scale": SpectrumScale,
    "source_angles": SourceAngles,
    "beam_angle": BeamDirection,
    "divergence": Divergence,
    "dispersion": Dispersion,
    "scale": Scale,
    "background": Background,
    "background_planes": BackgroundPlanes,
    "distance": Distance,
    "detector_distance": DetectorDistance,
    "panel_shifts": PanelShift,
    "panel_rotations": PanelRotation,
    "beam_centre": BeamCentre,
    "cell": Cell,
    "misset": Misset,
    "N": CrystalSize,
    "mosaic": MosaicSpread,
}
ALIASES = {"beam_center": "beam_centre"}


def parameter(name: str, settings) -> AbstractParameter:
    """The parameter registered as ``name`` (``PARAMETERS``, ``ALIASES``; case is ignored), for
    a starting model built from RunSettings ``settings`` (``from_settings``)."""
    key = name.strip()
    by_lower = {k.lower(): cls for k, cls in PARAMETERS.items()}
    cls = by_lower.get(ALIASES.get(key.lower(), key.lower()))
    if cls is None:
        raise NBError(f"unknown fit parameter '{key}' (known: {', '.join(PARAMETERS)})")
    return cls.from_settings(settings)
