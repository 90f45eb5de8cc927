"""Multi-panel experiments: a DIALS experiment as one physical-mode Experiment per panel.

The panels share the beam and the crystal; each panel is what the C program renders with that
panel's custom vectors (the parity contract, checked against C runs in tests/data/c_panels):

    -fdet_vector f  -sdet_vector s  -odet_vector o  -beam_vector (-direction)
    -polar_vector (normal x propagation)  -polar 2f-1  -lambda wavelength
    -pixel p  -detpixels_f nf  -detpixels_s ns
    -Xclose -P.f  -Yclose -P.s  -close_distance P.o          (P: the panel's corner, mm)

and the crystal as a MOSFLM A matrix (``mosflm_matrix``: columns a*, b*, c* times the
wavelength).  The C program overwrites ``-pix0_vector`` from its pivot, so the corner is given
as SAMPLE-pivot close values, which put pix0 at P for orthonormal axes.  o is f x s, turned
round when that points back towards the sample (o . P > 0: C's solid angle uses P . o).

``panel_experiments`` returns the Experiments (one per panel, physical mode), ``render_panels``
their image stack (panels, slow, fast): panels of one shape are rendered by one compiled
program (``nbjax.render_batch`` over the stacked Experiments).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from nbjax.errors import NBError
from nbjax.io import expt as expt_io

MAX_CELLS = 100  # unit cells per axis from ML_domain_size_ang (stills' sizes can be absurd: 1e6 A)
SQUARE_PIXEL_RTOL = 1e-6  # nanoBragg's pixels are square


def _num(x: float) -> str:
    """A float as text that parses back to the same double (C's atof and Python's float)."""
    return repr(float(x))


def _vec(v) -> list[str]:
    return [_num(x) for x in v]


def panel_flags(panel: expt_io.Panel, beam: expt_io.Beam) -> list[str]:
    """The nanoBragg flags that place one panel and the beam (module docstring)."""
    pf, ps = panel.pixel_size
    if abs(pf - ps) > SQUARE_PIXEL_RTOL * max(pf, ps):
        raise NBError(f"panel '{panel.name}': pixels of {pf:g} x {ps:g} mm; nanoBragg models square pixels only")
    odet = panel.normal
    corner = np.asarray(panel.origin, dtype=np.float64)
    if float(np.dot(corner, odet)) < 0:
        odet = -odet
    close = float(np.dot(corner, odet))
    if not close > 1e-9 * max(1.0, float(np.linalg.norm(corner))):
        raise NBError(f"panel '{panel.name}': its plane passes through the sample (distance {close:g} mm)")
    flags = ["-fdet_vector", *_vec(panel.fast), "-sdet_vector", *_vec(panel.slow), "-odet_vector", *_vec(odet)]
    flags += ["-beam_vector", *_vec(beam.propagation), "-polar_vector", *_vec(beam.e_vector)]
    flags += ["-polar", _num(beam.kahn), "-lambda", _num(beam.wavelength), "-pixel", _num(pf)]
    flags += ["-detpixels_f", str(panel.image_size[0]), "-detpixels_s", str(panel.image_size[1])]
    flags += ["-Xclose", _num(-np.dot(corner, panel.fast)), "-Yclose", _num(-np.dot(corner, panel.slow))]
    flags += ["-close_distance", _num(close)]
    if panel.thickness > 0 and panel.mu > 0:
        # one sensor layer of the panel's thickness: the capture fraction 1 - exp(-mu t / cos)
        flags += ["-detector_thick", _num(panel.thickness * 1e3), "-detector_abs", _num(1e3 / panel.mu)]
        flags += ["-detector_thicksteps", "1"]
    return flags


def mosflm_matrix(crystal: expt_io.Crystal, wavelength: float) -> np.ndarray:
    """The A matrix of a ``-mat`` file: row i is (a*_i, b*_i, c*_i) times the wavelength (A)."""
    return crystal.reciprocal.T * wavelength


def crystal_flags(crystal: expt_io.Crystal, user_args: list[str]) -> tuple[list[str], list[str]]:
    """(flags for the crystal's size and mosaicity unless the user gives them, notes): N per
    axis = ML_domain_size_ang / |a_i| rounded (1 to MAX_CELLS); nanoBragg's -mosaic (the largest
    domain rotation, degrees) = ML_half_mosaicity_deg."""
    flags, notes = [], []
    given = set(user_args)
    if crystal.domain_size_ang is not None and not given & {"-N", "-Na", "-Nb", "-Nc"}:
        lengths = np.linalg.norm(crystal.real_space, axis=1)
        wanted = [crystal.domain_size_ang / x for x in lengths]
        cells = [int(min(MAX_CELLS, max(1, round(n)))) for n in wanted]
        if any(n > MAX_CELLS for n in wanted):
            notes.append(
                f"ML_domain_size_ang {crystal.domain_size_ang:g} A is {max(wanted):.3g} cells: clamped to "
                f"{MAX_CELLS} per axis (give -N to choose)"
            )
        flags += ["-Na", str(cells[0]), "-Nb", str(cells[1]), "-Nc", str(cells[2])]
    mosaic_given = any(t.startswith("-mosaic") and not t.startswith(("-mosaic_dom", "-mosaic_seed")) for t in given)
    if crystal.half_mosaicity_deg and crystal.half_mosaicity_deg > 0 and not mosaic_given:
        flags += ["-mosaic", _num(crystal.half_mosaicity_deg)]
    return flags, notes


@dataclasses.dataclass(frozen=True)
class PanelExperiments:
    """The Experiments of a DIALS experiment's panels and what was derived on the way."""

    experiments: list  # nbjax.Experiment per panel (physical mode)
    panels: tuple  # nbjax.io.expt.Panel per panel
    argv: list  # per panel: the nanoBragg argv (with -mat MATFILE standing for ``matrix``)
    matrix: np.ndarray  # the crystal's MOSFLM A matrix (the -mat file's numbers)
    notes: list  # one-line notes (clamped sizes, defaults taken)
    warnings: list  # set-up warnings (one list for all panels)
    settings: object  # the RunSettings of panel 0 (what the flags set: for fit parameters' defaults)


def panel_argv(experiment: expt_io.Experiment, user_args: list[str], matfile: str = "A.mat"):
    """(per-panel argv, the A matrix, notes): the nanoBragg command line of every panel of
    ``experiment``, with the crystal as ``-mat matfile`` (write ``matrix`` there for C), then
    ``user_args`` (what the file lacks: -hkl/-default_F, -N, -mosaic, -fluence, sources...).
    ``-oversample 1`` unless the user gives it (C's automatic choice differs between panels)."""
    if experiment.crystal is None:
        raise NBError(f"experiment {experiment.index} has no crystal: nothing to render")
    crystal, notes = crystal_flags(experiment.crystal, user_args)
    common = ["-mat", matfile, *crystal]
    if "-oversample" not in user_args:
        common += ["-oversample", "1"]
    matrix = mosflm_matrix(experiment.crystal, experiment.beam.wavelength)
    argv = [panel_flags(p, experiment.beam) + common + list(user_args) for p in experiment.panels]
    return argv, matrix, notes


def panel_experiments(experiment: expt_io.Experiment, user_args: list[str]) -> PanelExperiments:
    """One physical-mode nbjax Experiment per panel (module docstring).  The set-up is derived
    once (crystal, sources, structure factors); each panel adds its own detector."""
    from nbjax import setup
    from nbjax.cli.flags import parse_argv
    from nbjax.settings import RunSettings
    from nbjax.setup.detector import detector_geometry

    argv, matrix, notes = panel_argv(experiment, user_args)
    settings = []
    for args in argv:
        s = RunSettings(physical=True)
        parse_argv(args, s)
        s.physical, s.matfile, s.matrix = True, None, matrix
        settings.append(s)
    first = setup.derive(settings[0])
    exps = []
    for s in settings:
        d = first if s is settings[0] else dataclasses.replace(first, settings=s, geometry=detector_geometry(s))
        exps.append(setup.experiment_of(d))
    return PanelExperiments(exps, experiment.panels, argv, matrix, notes, list(first.warnings), settings[0])


def render_panels(experiments, *, dtype=None, devices: int | None = 1):
    """The images of the panels' Experiments, (panels, slow, fast) when the panels share a
    shape, else a list of (slow, fast) images; panels of one shape run in one compiled program."""
    import jax.numpy as jnp

    import nbjax

    dtype = jnp.float64 if dtype is None else dtype
    groups: dict[tuple, list[int]] = {}
    for k, e in enumerate(experiments):
        groups.setdefault((e.detector.spixels, e.detector.fpixels), []).append(k)
    images = [None] * len(experiments)
    for members in groups.values():
        if len(members) == 1:
            images[members[0]] = nbjax.render(experiments[members[0]], dtype=dtype, devices=devices)
            continue
        stack = nbjax.render_batch(
            nbjax.stack_experiments([experiments[k] for k in members]), dtype=dtype, devices=devices
        )
        for j, k in enumerate(members):
            images[k] = stack[j]
    if len(groups) == 1:
        return jnp.stack(images)
    return images
