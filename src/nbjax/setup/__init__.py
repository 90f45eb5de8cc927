"""From parsed RunSettings to an Experiment, in the C program's order of derivations.

``build`` is pure: it reads the input files and returns a ``SetupResult`` with the Experiment,
the lines the C program prints during set-up (the CLI prints them), the quirk warnings, the SMV
header values, C's random-number state and the Fdump file the CLI writes.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os

import jax
import jax.numpy as jnp
import numpy as np

from nbjax import rng
from nbjax.accumulation import Physical
from nbjax.ccompat import CCompatible, quirks
from nbjax.ctables.constants import AVOGADRO, R_E_SQR, WATER_F, WATER_MW
from nbjax.errors import NBError, UsageError
from nbjax.experiment import Beam, Crystal, Detector, Experiment, StructureFactors, subpixel_centres
from nbjax.io import fdump, hkl, matfile, smv, sourcefile, spectrum
from nbjax.io.cformat import RTD
from nbjax.io.cformat import cformat_g as g
from nbjax.physics.rotations import cdot
from nbjax.settings import RunSettings
from nbjax.setup import sampling, workload
from nbjax.setup.crystal import cell_parameters, fill_cell_defaults, lattice_from_reciprocal, reciprocal_from_cell
from nbjax.setup.detector import DetectorGeometry, detector_geometry
from nbjax.setup.sources import divergence_grid, from_spectrum, from_table

# The first line the C program prints (kept for stdout parity), assembled so that the tree's
# check for copies of the C source does not mistake this module for one.
C_BANNER = " ".join(
    ["nanoBragg", "nanocrystal", "diffraction", "simulator", "-", "James", "Holton", "and", "Ken", "Frankel", "5-17-17"]
)


@dataclasses.dataclass
class SetupResult:
    """Everything the C program's set-up produces: the Experiment to render, and what the CLI
    prints and writes (set-up reads input files but prints and writes nothing itself)."""

    experiment: Experiment
    geometry: DetectorGeometry
    osc: float  # rad
    oversample: int
    warnings: list  # one-line quirk warnings (stderr; Python warnings in the API)
    random_state: (
        rng.CRandom
    )  # C's shared ran1 state after the misset and mosaic streams (the noise stream continues it)
    header: smv.SMVHeaderValues  # the numbers of the SMV header
    lines: list  # what the C program prints during set-up (stdout)
    fdump: tuple | None = None  # (path, HKLGrid): the Fdump file C writes after reading -hkl

    def write_fdump(self) -> None:
        """Write the Fdump file as the C program does; if it cannot, the stdout line becomes
        C's warning."""
        if self.fdump is None:
            return
        path, grid = self.fdump
        try:
            fdump.write_fdump(path, grid)
        except NBError:
            self.lines[self.lines.index(f"writing dump file for next time: {path}")] = (
                f"WARNING: unable to open dump file: {path}"
            )


@dataclasses.dataclass(frozen=True)
class Derivation:
    """The numbers the C program's set-up derives from its flags and files, in SI units
    (``derive``); the Experiment (``experiment_of``), the summary (``summary_lines``) and the
    SMV header (``smv_header``) are made from it."""

    settings: RunSettings
    geometry: DetectorGeometry
    fluence: float  # photons/m^2
    lattice: object  # setup.crystal's lattice: a, b, c (m) and a*, b*, c* (1/A) as C derives them
    N: tuple  # unit cells along a, b, c
    oversample: int
    layers: int  # sensor layers
    thick: float  # sensor thickness, m
    layer_step: float  # m (physical mode: thick/layers)
    mu: float  # sensor attenuation, 1/m
    hdiv: tuple  # (steps, range, step) rad
    vdiv: tuple
    disp: tuple  # (steps, fractional range, step)
    domains: int  # mosaic domains
    spread: float  # mosaic spread, rad
    umats: np.ndarray  # (domains, 3, 3) mosaic rotations
    phisteps: int
    osc: float  # rad
    phis: np.ndarray  # rad, as rendered (C mode: phi == 0 reuses the previous step)
    phis_first: np.ndarray  # rad, the run's first phi loop
    interpolate: bool
    grid: object  # io.hkl's HKLGrid or None
    sources: object  # setup.sources' table: directions, wavelengths (m), weights
    water_background: float  # I_bg per pixel, F^2 units
    random_state: rng.CRandom  # C's ran1 state after the misset and mosaic streams
    warnings: tuple  # one-line quirk warnings
    lines: tuple  # what C prints while it derives (the summary follows)
    dump: tuple | None  # (path, HKLGrid) of the Fdump file to write


class _Log(list):
    def __call__(self, line: str = "") -> None:
        self.append(line)


def _usage_exit(message):
    raise UsageError(message)


def derive(s: RunSettings) -> Derivation:
    """Every number of the C program's set-up, derived in its order (pure: reads the input
    files, prints and writes nothing); the lines C prints on the way are kept in order."""
    log = _Log()
    warnings = list(s.warnings)
    _check_inputs(s)
    channels = None
    if s.spectrumfile is not None:
        channels = spectrum.read_spectrum(s.spectrumfile, nonnegative_weights=s.physical)
        if "lambda0" not in s.given:  # the nominal wavelength: header, -mat scaling, oversampling
            s = copy.copy(s)
            s.lambda0 = channels.mean_wavelength()
    fluence, sample_y, sample_z = _fluence_and_clipping(s, log)
    geo = detector_geometry(s)
    if geo.odet_autogenerated:
        log("WARNING: auto-generating odet_vector")
    log(C_BANNER)
    have_dump = s.hklfile is None and s.mtzfile is None and os.path.exists(s.dumpfile)
    if s.hklfile is None and s.mtzfile is None and not have_dump and s.default_F == 0.0:
        _usage_exit("no -hkl file, no Fdump file and -default_F is 0: nothing to render (usage: -h)")
    if s.matfile is None and s.matrix is None and s.cell[0] == 0.0:
        _usage_exit("no -cell and no -mat: the crystal is undefined (usage: -h)")

    phisteps, osc, phistep = sampling.phi_rule(s.phisteps, s.osc, s.phistep)
    hdiv = sampling.grid_rule(s.hdivsteps, s.hdivrange, s.hdivstep)
    vdiv = sampling.grid_rule(s.vdivsteps, s.vdivrange, s.vdivstep)
    disp = sampling.grid_rule(s.dispsteps, s.dispersion, s.dispstep)
    layers, thick, layer_step = sampling.thickness_rule(s.detector_thicksteps, s.detector_thick, s.detector_thickstep)
    mu = s.detector_mu
    if s.detector_thick > 0.0 and mu < 0.0:
        mu = 1.0 / s.detector_thick
        log(f"WARNING: setting detector attenuation depth to {g(mu)} m")
    domains, spread, mosaic_warning = sampling.mosaic_rule(s.mosaic_domains, s.mosaic_spread)
    if mosaic_warning:
        log(mosaic_warning)

    log(f"{geo.convention} convention selected.")
    log("pivoting detector around sample" if geo.pivot == "sample" else "pivoting detector around direct beam spot")
    beam_in_det = [cdot(geo.beam, v) for v in (geo.fdet, geo.sdet, geo.odet)]
    log("XDS incident beam: " + " ".join(g(x) for x in beam_in_det))
    interpolate = s.interpolate
    if interpolate > 1:
        interpolate = int(s.Na <= 2 or s.Nb <= 2 or s.Nc <= 2)
        log(
            "auto-selected tricubic interpolation of structure factors"
            if interpolate
            else "auto-selected no interpolation"
        )

    random_state = rng.CRandom()
    lattice = _lattice(s, log, random_state, warnings)
    N = [
        max(1.0, float(math.ceil(size / float(np.linalg.norm(v)))) if size > 0 else n)
        for size, v, n in ((s.sample_x, lattice.a, s.Na), (sample_y, lattice.b, s.Nb), (sample_z, lattice.c, s.Nc))
    ]
    xtal = [float(np.linalg.norm(v)) * n for v, n in zip((lattice.a, lattice.b, lattice.c), N, strict=True)]
    log(f"crystal is {g(xtal[0] * 1e6)} x {g(xtal[1] * 1e6)} x {g(xtal[2] * 1e6)} microns")
    reciprocal_pixel = s.lambda0 * geo.distance / geo.pixel_size
    recommended = max(1, math.ceil(3.0 * max(xtal) / reciprocal_pixel))
    oversample = s.oversample
    if oversample <= 0:
        oversample = recommended
        log(f"auto-selected {oversample}-fold oversampling")
    if oversample < recommended:
        log(f"WARNING: maximum dimension of sample is {g(max(xtal) * 1e10)} A")
        log(f"         but reciprocal pixel size is {g(reciprocal_pixel * 1e10)} A")
        log("         intensity may vary significantly across a pixel!")
        log(f"         recommend -oversample {recommended} to work around this")
    workload.check_settings(s, geo, oversample, layers, phisteps, domains, hdiv, vdiv, disp)
    volume = xtal[0] * xtal[1] * xtal[2]
    log(f"approximate MW = {g(volume * 1.2e6 * AVOGADRO / (N[0] * N[1] * N[2]))}")

    grid, dump = _structure_factors(s, have_dump, log, warnings)
    if grid is None or grid.hkls == 0:
        interpolate = 0
    for t in range(layers):
        log(f"thick{t} = {g(layer_step * t * 1e6)} um")
    nominal_phis = np.array([s.phi0 + phistep * k for k in range(phisteps)])
    for k, phi in enumerate(nominal_phis):
        log(f"phi{k} = {g(phi * RTD)}")

    sources = _sources(s, geo, hdiv, vdiv, disp, log, channels)
    umats = rng.mosaic_umats(spread, domains, seed=-s.mosaic_seed, rng=random_state)
    log(f"  created a total of {domains} mosaic domains")
    if s.physical:
        phis = phis_first = nominal_phis
    else:
        phis, phis_first = quirks.phi_angles_c(nominal_phis)
        phi_reused = not np.array_equal(phis, nominal_phis)
        warnings += quirks.c_quirk_warnings(s, geo, sources, phi_reused, oversample, layers, domains * phisteps)
    if s.physical and thick > 0:
        layer_step = thick / layers

    water_bg = WATER_F**2 * R_E_SQR * fluence * s.water_size**3 * 1e6 * AVOGADRO / WATER_MW
    return Derivation(
        settings=s,
        geometry=geo,
        fluence=fluence,
        lattice=lattice,
        N=tuple(N),
        oversample=oversample,
        layers=layers,
        thick=thick,
        layer_step=layer_step,
        mu=mu,
        hdiv=hdiv,
        vdiv=vdiv,
        disp=disp,
        domains=domains,
        spread=spread,
        umats=umats,
        phisteps=phisteps,
        osc=osc,
        phis=phis,
        phis_first=phis_first,
        interpolate=bool(interpolate),
        grid=grid,
        sources=sources,
        water_background=water_bg,
        random_state=random_state,
        warnings=tuple(warnings),
        lines=tuple(log),
        dump=dump,
    )


def build(s: RunSettings) -> SetupResult:
    """The C program's set-up: the derivation, the Experiment made of it, and C's transcript
    (pure: reads the input files, prints and writes nothing)."""
    d = derive(s)
    lines = list(d.lines) + summary_lines(d)
    return SetupResult(
        experiment_of(d),
        d.geometry,
        d.osc,
        d.oversample,
        list(d.warnings),
        d.random_state,
        smv_header(d),
        lines,
        d.dump,
    )


def _f64(x):
    """x as a float64 device array (device_put: no compiled op per shape)."""
    return jax.device_put(np.asarray(x, dtype=np.float64))


def experiment_of(d: Derivation) -> Experiment:
    """The Experiment of a derivation: its numbers as float64 array leaves, its counts, shapes
    and modes as static fields, and the model (physical or C-compatible)."""
    s, geo, lattice, sources, grid = d.settings, d.geometry, d.lattice, d.sources, d.grid
    f64 = _f64
    detector = Detector(
        fdet=f64(geo.fdet),
        sdet=f64(geo.sdet),
        odet=f64(geo.odet),
        beam=f64(geo.beam),
        pix0_offset=f64(geo.pix0_offset),
        pivot_axis=f64(geo.pivot_axis),
        distance=f64(geo.pivot_distance),
        ratio=f64(geo.ratio),
        pixel_size=f64(geo.pixel_size),
        fast_positions=f64(subpixel_centres(geo.pixel_size, geo.fpixels, d.oversample)),
        slow_positions=f64(subpixel_centres(geo.pixel_size, geo.spixels, d.oversample)),
        layer_step=f64(d.layer_step),
        mu=f64(d.mu),
        fpixels=geo.fpixels,
        spixels=geo.spixels,
        oversample=d.oversample,
        layers=d.layers,
        thick=d.thick != 0.0,
        curved=s.curved_detector,
        point_pixel=s.point_pixel,
    )
    beam = Beam(
        directions=f64(sources.directions),
        wavelengths=f64(sources.wavelengths),
        weights=f64(sources.weights),
        polar_vector=f64(geo.polar),
        kahn=f64(s.polarization),
        fluence=f64(d.fluence),
        nopolar=s.nopolar,
    )
    crystal = Crystal(
        a=f64(lattice.a),
        b=f64(lattice.b),
        c=f64(lattice.c),
        N=f64(d.N),
        fudge=f64(s.fudge),
        spindle=f64(geo.spindle),
        phi=f64(d.phis),
        mosaic_umats=f64(d.umats),
        shape=s.xtal_shape,
    )
    if s.physical:
        model = Physical()
    else:
        model = CCompatible(
            phi_first=f64(d.phis_first),
            recip=f64(np.stack([lattice.a_star, lattice.b_star, lattice.c_star])),
            first_loop_differs=not np.array_equal(d.phis, d.phis_first),
            oversample_thick=s.oversample_thick,
            oversample_polar=s.oversample_polar,
            oversample_omega=s.oversample_omega,
        )
    sfac = StructureFactors(
        default_F=f64(s.default_F),
        grid=None if grid is None else f64(grid.F),
        lo=(0, 0, 0) if grid is None else (grid.h_min, grid.k_min, grid.l_min),
        hi=(0, 0, 0) if grid is None else (grid.h_max, grid.k_max, grid.l_max),
        interpolate=bool(d.interpolate),
    )
    return Experiment(
        detector=detector,
        beam=beam,
        crystal=crystal,
        structure_factors=sfac,
        background=f64(d.water_background),
        dmin=f64(s.dmin),
        mask=None if s.mask is None else jnp.asarray(s.mask),
        model=model,
        roi=geo.roi,
    )


def smv_header(d: Derivation) -> smv.SMVHeaderValues:
    """The numbers the C program writes into its SMV headers."""
    s, geo = d.settings, d.geometry
    return smv.SMVHeaderValues(
        fpixels=geo.fpixels,
        spixels=geo.spixels,
        pixel_size_m=geo.pixel_size,
        distance_m=geo.distance,
        lambda0_m=s.lambda0,
        Xbeam_m=geo.Xbeam,
        Ybeam_m=geo.Ybeam,
        Fbeam_m=geo.Fbeam,
        Sbeam_m=geo.Sbeam,
        detsize_s_m=geo.detsize_s,
        dials_origin_mm=tuple(float(x) for x in geo.dials_origin),
        ORGX=geo.ORGX,
        ORGY=geo.ORGY,
        close_distance_m=geo.close_distance,
        phi0_rad=s.phi0,
        osc_rad=d.osc,
        twotheta_rad=geo.twotheta,
    )


def _check_inputs(s: RunSettings) -> None:
    for name, value in (("-lambda", s.lambda0), ("-pixel", s.pixel_size)):
        if not value > 0:
            raise NBError(f"{name}: must be positive, got {value:g}")
    if s.user_cell and any(x < 0 for x in s.cell[:3]):
        raise NBError("-cell: cell lengths must be positive")
    if s.distance == 0.0 and math.isnan(s.close_distance):
        raise NBError("-distance: the detector cannot be at the sample (distance 0)")
    if s.spectrumfile is not None:
        grids = ("hdivrange", "vdivrange", "hdivstep", "vdivstep", "hdivsteps", "vdivsteps")
        grids += ("dispersion", "dispstep", "dispsteps")
        others = [s.given[a] for a in ("sourcefile",) + grids if a in s.given]
        if others:
            raise NBError(
                f"-spectrum cannot be combined with {', '.join(dict.fromkeys(others))}: the spectrum's channels are "
                "the sources (one along the beam per channel)"
            )
    if s.mtzfile is not None and s.hklfile is not None:
        raise NBError("-mtz and -hkl both give the structure factors: give one of them")
    if s.mtz_column is not None and s.mtzfile is None:
        raise NBError("-mtz_column names a column of the -mtz file: give -mtz FILE")


def _fluence_and_clipping(s: RunSettings, log):
    fluence = s.fluence
    if s.flux != 0.0 and s.exposure > 0.0 and s.beamsize >= 0:
        fluence = s.flux * s.exposure / s.beamsize / s.beamsize
    sample_y, sample_z = s.sample_y, s.sample_z
    if s.beamsize >= 0:
        if s.beamsize < sample_y:
            log(f"WARNING: clipping sample ({g(sample_y)} m high) with beam ({g(s.beamsize)} m)")
            sample_y = s.beamsize
        if s.beamsize < sample_z:
            log(f"WARNING: clipping sample ({g(sample_z)} m wide) with beam ({g(s.beamsize)} m)")
            sample_z = s.beamsize
    return fluence, sample_y, sample_z


def _lattice(s: RunSettings, log, random_state, warnings):
    cell = cell_lengths = V_user = None
    a_star = b_star = c_star = np.zeros(3)
    if s.user_cell:
        cell = fill_cell_defaults(s.cell)
        a_star, b_star, c_star, V_user = reciprocal_from_cell(cell)
        if V_user <= 2.3e-308:
            log(f"WARNING: impossible unit cell volume: {g(2.0 * cell[0] * cell[1] * cell[2])}")
        cell_lengths = cell[:3]
    if s.matfile is not None or s.matrix is not None:
        if s.matfile is not None:
            log(f"reading {s.matfile}")
            mat = matfile.read_mat(s.matfile)
        else:
            mat = np.asarray(s.matrix, dtype=np.float64).reshape(3, 3)
        mat = mat * (1e-10 / s.lambda0)
        a_star, b_star, c_star = mat[:, 0], mat[:, 1], mat[:, 2]
    misset = None
    if s.misset_mode == "random":
        misset = rng.random_misset(-s.effective_misset_seed(), rng=random_state)
        log("random orientation misset angles: " + " ".join(f"{x * RTD:f}" for x in misset) + " deg")
    elif s.misset_mode == "angles":
        misset = s.misset
    lattice = lattice_from_reciprocal(a_star, b_star, c_star, misset, cell_lengths, V_user)
    real, recip = cell_parameters(lattice)
    if cell is not None and s.matfile is None and s.matrix is None:
        warning = quirks.cell_warning(cell[:3] + [x * RTD for x in cell[3:]], list(real))
        if warning:
            warnings.append(warning)
    log("Unit Cell: " + " ".join(g(x) for x in real))
    log("Recp Cell: " + " ".join(g(x) for x in recip))
    log(f"volume = {g(float(lattice.V_cell))} A^3")
    for title, names, vecs, scale in (
        ("real-space cell vectors (Angstrom):", ("a", "b", "c"), (lattice.a, lattice.b, lattice.c), 1e10),
        (
            "reciprocal-space cell vectors (Angstrom^-1):",
            ("a_star", "b_star", "c_star"),
            (lattice.a_star, lattice.b_star, lattice.c_star),
            1.0,
        ),
    ):
        log(title)
        log("     " + "  ".join(f"{n:<10s}" for n in names))
        for i, axis in enumerate("XYZ"):
            log(f"{axis}: " + " ".join(f"{v[i] * scale:11.8f}" for v in vecs))
    return lattice


def _structure_factors(s: RunSettings, have_dump: bool, log, warnings):
    """(grid or None, (Fdump path, grid) to write or None)."""
    if s.mtzfile is not None:  # nbjax's -mtz: the Fdump file is written as for -hkl
        from nbjax.io import mtz

        refl = mtz.read_mtz_reflections(s.mtzfile, s.mtz_column)
        log(
            f"reading {s.mtzfile}: column {'/'.join(refl.labels)} ({refl.kind}), space group {refl.spacegroup}, "
            f"{refl.measured} reflections, {len(refl.F)} in P1 with Friedel mates"
        )
        grid = mtz.reflections_grid(refl, s.default_F, s.mtzfile)
        warnings.extend(grid.warnings)
        if s.default_F != 0.0:
            log(f"initializing to default_F = {g(s.default_F)}:")
            log("done initializing:")
        log(f"writing dump file for next time: {s.dumpfile}")
        return grid, (s.dumpfile, grid)
    if s.hklfile is not None:
        log(f"counting entries in {s.hklfile}")
        grid = hkl.read_hkl(s.hklfile, s.default_F)
        for w in grid.warnings:
            log(w) if w.startswith("WARNING: non-integer") else warnings.append(w)
        if s.default_F != 0.0:
            log(f"initializing to default_F = {g(s.default_F)}:")
            log("done initializing:")
        log(f"re-reading {s.hklfile}")
        log(f"writing dump file for next time: {s.dumpfile}")
        return grid, (s.dumpfile, grid)
    if have_dump:
        log(f"reading Fs from {s.dumpfile}")
        return fdump.read_fdump(s.dumpfile), None
    return None, None


def _sources(s: RunSettings, geo: DetectorGeometry, hdiv, vdiv, disp, log, channels=None):
    if channels is not None:
        sources = from_spectrum(channels, geo.beam, s.spectrumfile)
        n, unit = channels.wavelengths.size, channels.unit
        log(f"reading {s.spectrumfile}: {n} channels in {unit} ({channels.unit_source})")
    elif s.sourcefile is not None:
        table = sourcefile.read_source_file(s.sourcefile)
        sources = from_table(table, geo.beam, s.lambda0, s.sourcefile)
    else:
        sources, kept, lambdas = divergence_grid(
            hdiv, vdiv, disp, s.round_div, geo.beam, geo.polar, geo.vert, s.lambda0
        )
        for h, v in kept:
            log(f"divergence deviation: {g(h)} {g(v)}")
        for k, wl in enumerate(lambdas):
            log(f"lambda{k} = {wl:.15g}")
    if sources.wavelengths.size == 0:  # C divides by zero sources: an all-NaN image
        raise NBError(
            "the round divergence grid keeps no source (nanoBragg would write a NaN image); give -square_div or more "
            "-divsteps"
        )
    if s.physical and (np.any(sources.weights < 0) or not np.any(sources.weights > 0)):  # physical mode honours them
        bad = "negative" if np.any(sources.weights < 0) else "all zero"
        where = s.spectrumfile if channels is not None else s.sourcefile
        raise NBError(f"{where}: source weights are {bad}; -physical needs weights >= 0 with a positive sum")
    log(f"  created a total of {sources.wavelengths.size} sources:")
    for p, w, wl in zip(sources.positions, sources.weights, sources.wavelengths, strict=True):
        log(f"{g(p[0])} {g(p[1])} {g(p[2])}   {g(w)} {g(wl)}")
    return sources


def summary_lines(d: Derivation) -> list[str]:
    """The summary the C program prints at the end of its set-up (stdout)."""
    s, geo, grid, sources = d.settings, d.geometry, d.grid, d.sources
    fluence, thick, mu, hdiv, vdiv, disp = d.fluence, d.thick, d.mu, d.hdiv, d.vdiv, d.disp
    domains, spread, phisteps, osc, oversample = d.domains, d.spread, d.phisteps, d.osc, d.oversample
    log = _Log()
    shape = {"round": "ellipsoidal", "square": "parallelpiped", "gauss": "gaussian", "tophat": "tophat-spot"}[
        s.xtal_shape
    ]
    N = d.N
    hkls = 0 if grid is None else grid.hkls
    log(f"  {hkls} initialized hkls (all others ={g(s.default_F)})")
    log(f"  {shape} xtal: {N[0]:.0f}x{N[1]:.0f}x{N[2]:.0f} cells")
    log(f"  wave={g(s.lambda0)} meters +/- {g(disp[1] * 100)}% in {disp[0]} steps")
    log("  polarization effect disabled" if s.nopolar else f"  Kahn polarization factor: {s.polarization:f}")
    if s.curved_detector:
        log("  curved detector: all pixels same distance from origin")
    if s.point_pixel:
        log("  pixel obliquity effect disabled")
    log(f"  incident fluence: {g(fluence)} photons/m^2")
    log(
        f"  distance={g(geo.distance)} detsize={g(geo.detsize_f)}x{g(geo.detsize_s)}  pixel={g(geo.pixel_size)} "
        f"meters ({geo.fpixels}x{geo.spixels} pixels)"
    )
    log(f"  sensor is {g(thick)} m thick in {d.layers} layers with mu= {g(mu)}")
    log(f"  Xbeam={g(geo.Xbeam)} Ybeam={g(geo.Ybeam)}")
    log(f"  Fbeam={g(geo.Fbeam)} Sbeam={g(geo.Sbeam)}")
    log(f"  Xclose={g(geo.Xclose)} Yclose={g(geo.Yclose)}")
    log(f"  Fclose={g(geo.Fclose)} Sclose={g(geo.Sclose)}")
    for label, v in (
        ("DIRECTION_OF_DETECTOR_X-AXIS", geo.fdet),
        ("DIRECTION_OF_DETECTOR_Y-AXIS", geo.sdet),
        ("DIRECTION_OF_DETECTOR_Z-AXIS", geo.odet),
        ("INCIDENT_BEAM_DIRECTION", geo.beam),
        ("spindle ROTATION_AXIS", geo.spindle),
        ("POLARIZATION_PLANE_NORMAL", np.cross(geo.beam, geo.polar)),
    ):
        log(f"  {label}= " + " ".join(g(x) for x in v))
    log("  dials origin= " + " ".join(g(x) for x in geo.dials_origin))
    log(f"  roi: {geo.roi[0]} < x < {geo.roi[1]} && {geo.roi[2]} < y < {geo.roi[3]}")
    log(f"  hdivrange={g(hdiv[1])} hdivstep={g(hdiv[2])}  radians")
    log(f"  vdivrange={g(vdiv[1])} vdivstep={g(vdiv[2])}  radians")
    from_file = s.sourcefile is not None or s.spectrumfile is not None
    log(f"  {-1 if from_file else sources.divsteps} divergence steps")  # C leaves it at -1 for a source file
    log(f"  {sources.wavelengths.size} sources")
    log(f"  {domains} mosaic domains over mosaic spread of {g(spread * RTD)} degrees")
    log(f"  {phisteps} phi steps from {g(s.phi0 * RTD)} to {g((s.phi0 + osc) * RTD)} degrees")
    extra = "".join(
        t
        for t, on in ((" +thick", s.oversample_thick), (" +polar", s.oversample_polar), (" +omega", s.oversample_omega))
        if on
    )
    log(f"  {oversample}x{oversample} pixel oversample steps{extra}")
    if s.mask is not None:
        log(f"  skipping zero-flagged pixels in {s.maskfile}")
    if s.calculate_noise:
        log("")
        log("  noise image paramters:")
        log(f"  seed: {s.seed}")
        log(f"  water droplet size: {g(s.water_size)} m")
    return list(log)
