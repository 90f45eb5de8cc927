"""Synthetic serial-crystallography data: many XFEL stills of one crystal with a known table.

``truth_table`` draws the structure factors of one crystal: the reflections of the Laue group's
asymmetric unit (gemmi's ``ReciprocalAsu``, Friedel mates tied, systematic absences left out)
to ``dmin``, each with F = sqrt(I), I ~ Exponential(mean ``WILSON_MEAN``) clipped below at
``WILSON_FLOOR`` times the mean (an acentric Wilson distribution without near-zero F).

``make_shots`` renders stills of that crystal on a flat detector of ``panels`` panels side by
side (gap ``GAP_MM``), the beam near the centre of the whole detector.  Every shot has its own
random start orientation U0 (uniform over rotations), written to ``shot_NNNNN.expt``; the truth
crystal is U0's real-space rows turned by ``misset_deg`` about lab x, then y, then z
(``nbjax.physics.rotations.rotate_xyz``: ``nbjax.fit.Misset``'s convention), so a misset fitted
from the .expt recovers ``misset_deg``.  The truth image is rendered with the fluence times the
shot's scale s_i (log-normal, geometric mean over the shots exactly 1), ``-N``, the P1 table
(``truth.hkl``), the spectrum (``spectrum.txt``: equal-weight channels along the beam) and
``-water`` (a smooth background), then Poisson noise is drawn (numpy, from the seed).

Renderers: "nbjax" (``nbjax.panels.panel_experiments`` + ``render_panels``, physical mode) or
"c" (the C nanoBragg per panel with the argv of ``nbjax.panels.panel_argv``; C has no
``-spectrum``, so the same channels go in as ``-sourcefile sources_c.txt``, one source per
channel at C's default position, -10 m along the beam).  With "c" the first shot's Bragg image
(no water) is rendered by both and must agree to ``PARITY_RTOL`` of its maximum.

Files in OUTDIR: truth.mtz, truth.hkl, spectrum.txt, sources_c.txt (renderer "c"),
shot_NNNNN.expt and shot_NNNNN.npy (float32 photons, (panels, slow, fast)), shots.lst (one line
per shot: expt, npy, spectrum, relative to OUTDIR) and truth.json.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from nbjax.errors import NBError

WILSON_MEAN = 1e4  # mean intensity, F^2 units
WILSON_FLOOR = 0.05  # I clipped below at this fraction of the mean
GAP_MM = 1.0  # between neighbouring panels
BEAM_OFFSET_MM = (0.31, 0.23)  # beam off the detector's centre (fast, slow): no symmetric pixel grid
POLARIZATION_FRACTION = 0.999
PARITY_RTOL = 1e-5  # C vs nbjax Bragg image, max |diff| / max, float32
SPOT_PHOTONS = 20.0  # a spot's peak pixel holds at least this many Bragg photons
DMIN_MARGIN = 0.98  # the default table reaches this fraction of the corner's d (shortest wavelength)
WATER_UM_C = 0.55  # -water of the C renderer: ~10 photons/pixel at the default geometry and fluence
SOURCE_DISTANCE_M = 10.0  # C's default source distance
C_THREADS = "2"


@dataclasses.dataclass(frozen=True, eq=False)
class Table:
    """A structure-factor table: the Laue group's asymmetric unit to ``dmin`` (Angstrom).

    ``space_group`` gemmi's Hermann-Mauguin name, ``cell`` (a, b, c in Angstrom, alpha, beta,
    gamma in degrees), ``hkl`` (n, 3) int64 in gemmi's ReciprocalAsu, sorted, ``F`` (n,)
    amplitudes (electrons)."""

    space_group: str
    cell: tuple[float, float, float, float, float, float]
    hkl: np.ndarray
    F: np.ndarray
    dmin: float

    def p1(self) -> tuple[np.ndarray, np.ndarray]:
        """(hkl (m, 3) int64, F (m,)): every symmetry mate and Friedel mate, unique, sorted."""
        return p1_expansion(self)

    def p1_hkl_lines(self) -> list[str]:
        """The lines of a nanoBragg ``-hkl`` file (``h k l F``) of the P1 expansion."""
        hkl, F = self.p1()
        return [f"{h} {k} {l} {f!r}\n" for (h, k, l), f in zip(hkl.tolist(), F.tolist(), strict=True)]


@dataclasses.dataclass(frozen=True, eq=False)
class Truth:
    """What ``make_shots`` wrote and the truth behind it.

    ``list_path`` shots.lst; ``shots`` per shot (expt path, npy path); ``scales`` (n,) s_i;
    ``missets_deg`` (n, 3) the truth's turn from the .expt's crystal (deg about x, y, z);
    ``rows`` (n, 3, 3) the truth's real-space rows a, b, c (Angstrom, lab frame);
    ``user_args`` the flags of a shot's model apart from structure factors and scale (with the
    .expt: ``panel_experiments(experiment, user_args)``; absolute paths; ``model_args`` reads
    them back from truth.json); ``render_args`` the truth's nbjax
    flags at scale 1 (user_args, the truth's spectrum, -hkl, -water); ``spectrum`` spectrum.txt; ``renderer``
    "nbjax" or "c"; ``parity`` the C vs nbjax Bragg max |diff| / max (renderer "c"), else None;
    ``spots`` (n,) spots per shot whose Bragg peak pixel holds >= SPOT_PHOTONS; ``seen`` per
    shot the table rows of those spots; ``background`` (n,) median water photons per pixel."""

    table: Table
    outdir: str
    list_path: str
    shots: tuple[tuple[str, str], ...]
    scales: np.ndarray
    missets_deg: np.ndarray
    rows: np.ndarray
    user_args: list[str]
    render_args: list[str]
    spectrum: str
    renderer: str
    parity: float | None
    spots: np.ndarray
    seen: tuple[np.ndarray, ...]
    background: np.ndarray
    panel_shift_mm: np.ndarray | None = None  # (panels, 3): the truth's panels moved from the .expt's
    panel_rotation_mrad: np.ndarray | None = None  # (panels, 3): and turned (PanelRotation's convention)
    spectrum_shift_A: float = 0.0  # the truth's channels lie this far from spectrum.txt's


def _gemmi():
    try:
        import gemmi
    except ImportError:
        raise NBError("synthetic data sets need gemmi: pip install 'nbjax[mtz]'") from None
    return gemmi


def _space_group(name: str):
    gemmi = _gemmi()
    try:
        return gemmi.SpaceGroup(name)
    except (ValueError, RuntimeError):
        raise NBError(f"space group '{name}' is not one gemmi knows") from None


def _unit_cell(cell):
    if len(cell) == 3:
        cell = (*cell, 90.0, 90.0, 90.0)
    if len(cell) != 6 or not all(math.isfinite(x) and x > 0 for x in cell):
        raise NBError(f"cell {tuple(cell)}: give a, b, c (A) and optionally alpha, beta, gamma (deg), all > 0")
    return tuple(float(x) for x in cell)


def asu_hkl(space_group: str, cell, dmin: float) -> np.ndarray:
    """The reflections of the Laue group's asymmetric unit with d >= dmin (Angstrom), without
    systematic absences and (0, 0, 0): (n, 3) int64, sorted.  |h| <= |a| / dmin bounds the box."""
    gemmi = _gemmi()
    sg = _space_group(space_group)
    uc = gemmi.UnitCell(*_unit_cell(cell))
    if not (math.isfinite(dmin) and dmin > 0):
        raise NBError(f"dmin {dmin:g} A: give a resolution > 0")
    lengths = np.array([uc.a, uc.b, uc.c])
    hmax = np.floor(lengths / dmin).astype(int)
    grid = np.stack(
        np.meshgrid(*[np.arange(-m, m + 1) for m in hmax], indexing="ij"),
        axis=-1,
    ).reshape(-1, 3)
    q = grid @ np.asarray(uc.frac.mat.tolist())  # s = h a* + k b* + l c*: the rows of gemmi's frac matrix
    grid, q = grid[np.any(grid != 0, axis=1)], q[np.any(grid != 0, axis=1)]
    grid = grid[1.0 / np.sqrt(np.einsum("ni,ni->n", q, q)) >= dmin]
    asu = gemmi.ReciprocalAsu(sg)
    ops = sg.operations()
    keep = [asu.is_in(h) and not ops.is_systematically_absent(h) for h in grid.tolist()]
    out = grid[np.asarray(keep, bool)]
    out = out[np.lexsort(out.T[::-1])]
    return out.astype(np.int64)


def truth_table(
    space_group: str = "P 43 21 2",
    cell=(52.0, 52.0, 78.0),
    dmin: float = 2.4,
    seed: int = 0,
) -> Table:
    """The table of one crystal (module docstring): ASU reflections to ``dmin`` (Angstrom) with
    Wilson amplitudes drawn from ``np.random.default_rng(seed)``."""
    sg = _space_group(space_group)
    uc = _unit_cell(cell)
    hkl = asu_hkl(space_group, uc, dmin)
    if not len(hkl):
        raise NBError(f"no reflections to dmin {dmin:g} A in cell {uc}")
    intensity = np.random.default_rng(seed).exponential(WILSON_MEAN, len(hkl))
    F = np.sqrt(np.maximum(intensity, WILSON_FLOOR * WILSON_MEAN))
    return Table(sg.xhm(), uc, hkl, F, float(dmin))


def _rotations(space_group: str) -> np.ndarray:
    """The space group's integer rotation matrices (m, 3, 3), h -> h R (gemmi's apply_to_hkl)."""
    ops = _space_group(space_group).operations()
    return np.array([np.array(op.rot) // op.DEN for op in ops.sym_ops], dtype=np.int64)


def p1_expansion(table: Table) -> tuple[np.ndarray, np.ndarray]:
    """(hkl, F) of every symmetry mate and Friedel mate of the table's reflections (unique,
    sorted); NBError when two reflections give one index two amplitudes (not an ASU)."""
    from nbjax.io.mtz import expand_to_p1

    F = np.asarray(table.F, np.float64)
    hkl, values, _ = expand_to_p1(table.hkl, F, F, _rotations(table.space_group))
    unique, first, inverse = np.unique(hkl, axis=0, return_index=True, return_inverse=True)
    out = values[first]
    if np.any(values != out[inverse.reshape(-1)]):
        raise NBError(f"the table's reflections are not one asymmetric unit of {table.space_group}")
    return unique, out


def write_hkl(table: Table, path) -> str:
    """Write the P1 expansion as a nanoBragg ``-hkl`` text file (``h k l F`` per line)."""
    Path(path).write_text("".join(table.p1_hkl_lines()))
    return str(path)


def write_mtz(table: Table, path) -> str:
    """Write the table as an MTZ file (gemmi): columns H K L and F (type F)."""
    gemmi = _gemmi()
    mtz = gemmi.Mtz(with_base=True)
    mtz.spacegroup = _space_group(table.space_group)
    mtz.set_cell_for_all(gemmi.UnitCell(*table.cell))
    mtz.add_dataset("synthetic")
    mtz.add_column("F", "F")
    data = np.column_stack([table.hkl, table.F]).astype(np.float32)
    mtz.set_data(data)
    mtz.set_cell_for_all(gemmi.UnitCell(*table.cell))
    mtz.write_to_file(os.fspath(path))
    return str(path)


def spectrum_wavelengths(wavelength: float, bandwidth: float, channels: int) -> np.ndarray:
    """``channels`` wavelengths (Angstrom) evenly spanning wavelength * (1 -+ bandwidth / 2)."""
    if channels < 1 or not wavelength > 0 or not bandwidth >= 0:
        raise NBError(f"spectrum: {channels} channels, wavelength {wavelength:g} A, bandwidth {bandwidth:g}")
    if channels == 1:
        return np.array([float(wavelength)])
    return wavelength * (1.0 + bandwidth * np.linspace(-0.5, 0.5, channels))


def write_spectrum(path, wavelengths) -> str:
    """Write a ``-spectrum`` file: wavelengths (Angstrom) with equal weights 1."""
    lines = ["# A\n"] + [f"{w!r} 1.0\n" for w in np.asarray(wavelengths, np.float64).tolist()]
    Path(path).write_text("".join(lines))
    return str(path)


def write_sourcefile(path, wavelengths, propagation) -> str:
    """Write the spectrum as a C ``-sourcefile`` (X Y Z I lambda, metres): each channel a
    source -10 m along the beam ``propagation`` (unit), weight 1, as nbjax builds ``-spectrum``."""
    position = -SOURCE_DISTANCE_M * np.asarray(propagation, np.float64)
    xyz = " ".join(repr(float(x)) for x in position)
    lines = [f"{xyz} 1.0 {w / 1e10!r}\n" for w in np.asarray(wavelengths, np.float64).tolist()]
    Path(path).write_text("".join(lines))
    return str(path)


def detector_json(panels: int, size, pixel_mm: float, distance_mm: float) -> dict:
    """A flat DIALS detector: ``panels`` panels of ``size`` (fast, slow) pixels side by side
    along fast (lab x) with GAP_MM between them, at ``distance_mm`` along -z, the beam (along -z)
    near the centre of the whole detector (BEAM_OFFSET_MM off it)."""
    nf, ns = (int(x) for x in size)
    if panels < 1 or nf < 1 or ns < 1 or not pixel_mm > 0 or not distance_mm > 0:
        raise NBError(f"detector: {panels} panels of {nf}x{ns} pixels of {pixel_mm:g} mm at {distance_mm:g} mm")
    width = panels * nf * pixel_mm + (panels - 1) * GAP_MM
    x0 = -width / 2 + BEAM_OFFSET_MM[0]
    y0 = ns * pixel_mm / 2 - BEAM_OFFSET_MM[1]
    out = []
    for k in range(panels):
        origin = [x0 + k * (nf * pixel_mm + GAP_MM), y0, -float(distance_mm)]
        out.append(
            {
                "name": f"P{k}",
                "type": "SENSOR_PAD",
                "fast_axis": [1.0, 0.0, 0.0],
                "slow_axis": [0.0, -1.0, 0.0],
                "origin": origin,
                "raw_image_offset": [0, 0],
                "image_size": [nf, ns],
                "pixel_size": [float(pixel_mm), float(pixel_mm)],
                "trusted_range": [-10.0, 1e9],
                "thickness": 0.0,
                "material": "Si",
                "mu": 0.0,
                "identifier": "",
                "mask": [],
                "gain": 1.0,
                "pedestal": 0.0,
                "px_mm_strategy": {"type": "SimplePxMmStrategy"},
            }
        )
    return {"panels": out}


def moved_detector(detector: dict, shift_mm=None, rotation_mrad=None) -> dict:
    """``detector`` with panel k turned by ``rotation_mrad[k]`` about lab x, then y, then z
    through its centre, then moved by ``shift_mm[k]`` (``nbjax.fit.PanelRotation`` and
    ``PanelShift``'s conventions; None: not at all)."""
    from nbjax.physics.rotations import rotate_xyz

    out = json.loads(json.dumps(detector))
    for k, p in enumerate(out["panels"]):
        o, f, s = (np.asarray(p[key], np.float64) for key in ("origin", "fast_axis", "slow_axis"))
        if rotation_mrad is not None:
            r = np.asarray(rotation_mrad[k], np.float64) * 1e-3
            (nf, ns), (pf, ps) = p["image_size"], p["pixel_size"]
            centre = o + 0.5 * (nf * pf * f + ns * ps * s)
            o = centre + rotate_xyz(o - centre, *r)
            f, s = rotate_xyz(f, *r), rotate_xyz(s, *r)
        if shift_mm is not None:
            o = o + np.asarray(shift_mm[k], np.float64)
        p["origin"], p["fast_axis"], p["slow_axis"] = ([float(x) for x in v] for v in (o, f, s))
    return out


def corner_dmin(detector: dict, wavelength: float) -> float:
    """The smallest d (Angstrom) any pixel corner of ``detector`` reaches at ``wavelength``
    with the beam along -z."""
    best = math.inf
    for p in detector["panels"]:
        o, f, s = (np.asarray(p[k], np.float64) for k in ("origin", "fast_axis", "slow_axis"))
        (nf, ns), (pf, ps) = p["image_size"], p["pixel_size"]
        for a in (0.0, nf * pf):
            for b in (0.0, ns * ps):
                v = o + a * f + b * s
                two_theta = math.acos(-v[2] / np.linalg.norm(v))
                best = min(best, wavelength / (2 * math.sin(two_theta / 2)))
    return best


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A rotation matrix drawn uniformly (a normalised 4-D Gaussian quaternion)."""
    w, x, y, z = rng.normal(size=4)
    n = math.sqrt(w * w + x * x + y * y + z * z)
    w, x, y, z = w / n, x / n, y / n, z / n
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def cell_rows(cell, rotation: np.ndarray) -> np.ndarray:
    """The real-space rows a, b, c (Angstrom) of ``cell`` turned by ``rotation`` (gemmi's
    orthogonalization: a along x, b in the xy plane)."""
    orth = np.asarray(_gemmi().UnitCell(*_unit_cell(cell)).orth.mat.tolist())  # columns a, b, c
    return (rotation @ orth).T


def shot_json(rows: np.ndarray, hall: str, domain_ang: float, detector: dict, wavelength: float, image: str) -> dict:
    """A one-experiment DIALS list: the crystal ``rows`` (Angstrom), the detector, a beam along
    -z (direction +z, towards the source) of ``wavelength`` Angstrom."""
    crystal = {"__id__": "crystal", "space_group_hall_symbol": hall, "ML_domain_size_ang": float(domain_ang)}
    for key, row in zip(("real_space_a", "real_space_b", "real_space_c"), rows, strict=True):
        crystal[key] = [float(x) for x in row]
    beam = {
        "__id__": "monochromatic",
        "direction": [0.0, 0.0, 1.0],
        "wavelength": float(wavelength),
        "divergence": 0.0,
        "sigma_divergence": 0.0,
        "polarization_normal": [0.0, 1.0, 0.0],
        "polarization_fraction": POLARIZATION_FRACTION,
        "flux": 0.0,
        "transmission": 1.0,
    }
    return {
        "__id__": "ExperimentList",
        "experiment": [
            {"__id__": "Experiment", "identifier": "", "beam": 0, "detector": 0, "crystal": 0, "imageset": 0}
        ],
        "imageset": [{"__id__": "ImageSet", "images": [image], "mask": "", "gain": "", "pedestal": ""}],
        "beam": [beam],
        "detector": [detector],
        "goniometer": [],
        "scan": [],
        "crystal": [crystal],
        "profile": [],
        "scaling_model": [],
    }


def turned_rows(rows: np.ndarray, misset_deg) -> np.ndarray:
    """``rows`` (3, 3) turned by ``misset_deg`` about lab x, then y, then z (rotate_xyz)."""
    from nbjax.physics.rotations import rotate_xyz

    r = np.radians(np.asarray(misset_deg, np.float64))
    return np.stack([rotate_xyz(np.asarray(v, np.float64), r[0], r[1], r[2], np) for v in rows])


def render_nbjax(experiment, args: list[str]) -> np.ndarray:
    """nbjax's physical-mode image stack (panels, slow, fast) of a DIALS experiment, float64
    where JAX's 64-bit mode is on."""
    from nbjax.panels import panel_experiments, render_panels

    return np.asarray(render_panels(panel_experiments(experiment, args).experiments), np.float64)


def render_c(c_bin: str, experiment, args: list[str]) -> np.ndarray:
    """The C program's image stack (panels, slow, fast), float32: one run per panel with the
    argv of ``panel_argv`` (A matrix in A.mat), OMP_NUM_THREADS=C_THREADS."""
    from nbjax.panels import panel_argv

    argv, matrix, _ = panel_argv(experiment, args)
    images = []
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "A.mat").write_text("".join(" ".join(repr(float(x)) for x in row) + "\n" for row in matrix))
        env = dict(os.environ, OMP_NUM_THREADS=C_THREADS)
        for panel, a in zip(experiment.panels, argv, strict=True):
            cmd = [c_bin, *a, "-floatfile", "c.bin", "-nonoise", "-nopgm", "-intfile", "c.img"]
            run = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True)
            if run.returncode != 0:
                tail = " ".join(run.stdout.split()[-12:])
                raise NBError(f"{c_bin} failed on panel '{panel.name}' (exit {run.returncode}): {tail}")
            images.append(np.fromfile(Path(tmp, "c.bin"), "<f4").reshape(panel.shape))
    return np.stack(images)


def _with_fluence(args: list[str], fluence: float) -> list[str]:
    out = list(args)
    out[out.index("-fluence") + 1] = repr(float(fluence))
    return out


def _c_args(args: list[str], sourcefile: str) -> list[str]:
    """``args`` with ``-spectrum FILE`` replaced by ``-sourcefile sourcefile`` (C has no -spectrum)."""
    out = list(args)
    k = out.index("-spectrum")
    out[k : k + 2] = ["-sourcefile", sourcefile]
    return out


def find_spots(bragg: np.ndarray, threshold: float = SPOT_PHOTONS) -> list[tuple[int, int, int]]:
    """(panel, slow, fast) of the peak pixel of every connected region (8-neighbours) of
    ``bragg`` (panels, slow, fast) >= ``threshold`` photons."""
    from scipy import ndimage

    out = []
    for p, image in enumerate(bragg):
        labels, n = ndimage.label(image >= threshold, structure=np.ones((3, 3)))
        if n:
            for s, f in ndimage.maximum_position(image, labels, range(1, n + 1)):
                out.append((p, int(s), int(f)))
    return out


def spot_rows(table: Table, spots, detector: dict, rows: np.ndarray, wavelengths) -> np.ndarray:
    """The table rows of ``spots`` (find_spots): h = rows . (s - s0) at the peak pixel's
    centre, at the channel whose h lies nearest integers, mapped to the ASU; -1 off the table."""
    gemmi = _gemmi()
    sg = _space_group(table.space_group)
    asu, ops = gemmi.ReciprocalAsu(sg), sg.operations()
    index = {tuple(h): k for k, h in enumerate(table.hkl.tolist())}
    out = []
    for p, s, f in spots:
        panel = detector["panels"][p]
        pix = panel["pixel_size"][0]
        v = np.asarray(panel["origin"]) + (f + 0.5) * pix * np.asarray(panel["fast_axis"])
        v = v + (s + 0.5) * pix * np.asarray(panel["slow_axis"])
        unit = v / np.linalg.norm(v)
        best = None
        for w in np.asarray(wavelengths, np.float64):
            h = rows @ ((unit - np.array([0.0, 0.0, -1.0])) / w)
            err = float(np.max(np.abs(h - np.rint(h))))
            if best is None or err < best[0]:
                best = (err, np.rint(h).astype(int))
        hkl, _ = asu.to_asu(best[1].tolist(), ops)
        out.append(index.get(tuple(hkl), -1))
    return np.asarray(out, np.int64)


def make_shots(
    outdir,
    n_shots: int,
    seed: int = 0,
    *,
    table: Table | None = None,
    panels: int = 2,
    size=(256, 256),
    pixel_mm: float = 0.172,
    distance_mm: float = 105.0,
    wavelength: float = 1.3,
    channels: int = 5,
    bandwidth: float = 0.01,
    N: int = 10,
    fluence: float = 3e27,
    water_um: float | None = None,
    scale_sd: float = 0.2,
    misset_sd_deg: float = 0.05,
    renderer: str = "nbjax",
    c_bin: str | None = None,
    progress: Callable[[str], None] | None = None,
    panel_shift_mm=None,
    panel_rotation_mrad=None,
    spectrum_shift_A: float = 0.0,
) -> Truth:
    """Write a synthetic serial data set into ``outdir`` (module docstring) and return its truth.

    ``size`` (fast, slow) pixels per panel of ``pixel_mm``; ``distance_mm`` sample to detector;
    ``wavelength`` Angstrom; ``bandwidth`` the full relative span of the ``channels``
    wavelengths; ``N`` unit cells per axis; ``fluence`` photons/m^2 at scale 1; ``water_um``
    microns of water (None: WATER_UM_C for "c", WATER_UM_C / channels^(1/3) for "nbjax": C divides
    the water term by the source count, nbjax's physical mode does not, and both scale it with
    fluence squared, so a shot's background goes with s_i^2); ``scale_sd`` the sd of log s_i;
    ``misset_sd_deg`` the sd of each misset angle.  ``table`` None: ``truth_table(seed=seed)`` to
    the detector corners' resolution at the shortest wavelength (times DMIN_MARGIN).
    ``renderer`` "nbjax" or "c" (``c_bin``: the C executable).  ``progress`` gets a line of text
    per shot.  Miscalibrations the .expt and spectrum.txt do not know (for refining shared
    values): ``panel_shift_mm`` and ``panel_rotation_mrad`` (panels, 3) move and turn the
    truth's panels (``moved_detector``), ``spectrum_shift_A`` shifts its channels."""
    if renderer not in ("nbjax", "c"):
        raise NBError(f"renderer '{renderer}': give 'nbjax' or 'c'")
    if renderer == "c" and not (c_bin and os.path.isfile(c_bin) and os.access(c_bin, os.X_OK)):
        raise NBError(f"renderer 'c' needs the C nanoBragg executable (got {c_bin!r})")
    if n_shots < 1:
        raise NBError(f"{n_shots} shots: give at least 1")
    if water_um is None:
        water_um = WATER_UM_C if renderer == "c" else WATER_UM_C / channels ** (1 / 3)
    say = progress or (lambda line: None)
    out = Path(outdir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    detector = detector_json(panels, size, pixel_mm, distance_mm)
    true_detector = moved_detector(detector, panel_shift_mm, panel_rotation_mrad)
    waves = spectrum_wavelengths(wavelength, bandwidth, channels)
    true_waves = waves + float(spectrum_shift_A)
    if table is None:
        table = truth_table(dmin=DMIN_MARGIN * corner_dmin(detector, float(waves.min())), seed=seed)
    write_mtz(table, out / "truth.mtz")
    hkl_path = write_hkl(table, out / "truth.hkl")
    spectrum = write_spectrum(out / "spectrum.txt", waves)
    true_spectrum = spectrum if spectrum_shift_A == 0 else write_spectrum(out / "spectrum_truth.txt", true_waves)
    sourcefile = write_sourcefile(out / "sources_c.txt", true_waves, [0.0, 0.0, -1.0]) if renderer == "c" else None
    user_args = ["-N", str(int(N)), "-fluence", repr(float(fluence)), "-spectrum", spectrum]
    bragg_args = ["-N", str(int(N)), "-fluence", repr(float(fluence)), "-spectrum", true_spectrum, "-hkl", hkl_path]
    render_args = bragg_args + ["-water", repr(float(water_um))]
    hall = _space_group(table.space_group).hall
    domain = float(N) * min(table.cell[:3])

    draws = np.random.default_rng([seed, 1])
    turns = [random_rotation(draws) for _ in range(n_shots)]
    log_scale = draws.normal(0.0, scale_sd, n_shots)
    scales = np.exp(log_scale - log_scale.mean())
    missets = draws.normal(0.0, misset_sd_deg, (n_shots, 3))

    from nbjax.io import expt as expt_io

    shots, rows_all, spots, seen, background, parity = [], [], [], [], [], None
    for k in range(n_shots):
        name = f"shot_{k:05d}"
        start = cell_rows(table.cell, turns[k])
        doc = shot_json(start, hall, domain, detector, wavelength, f"{name}.npy")
        expt_io.write_expt(out / f"{name}.expt", doc)
        rows = turned_rows(start, missets[k])
        rows_all.append(rows)
        truth_doc = shot_json(rows, hall, domain, true_detector, wavelength, f"{name}.npy")
        experiment = expt_io.ExperimentList(f"{name} (truth)", truth_doc).experiment(0)
        args = _with_fluence(render_args, fluence * scales[k])
        bargs = _with_fluence(bragg_args, fluence * scales[k])
        if renderer == "c":
            mean = render_c(c_bin, experiment, _c_args(args, sourcefile)).astype(np.float64)
            bragg = None
            if k == 0:
                c_bragg = render_c(c_bin, experiment, _c_args(bargs, sourcefile))
                ours = render_nbjax(experiment, bargs).astype(np.float32)
                parity = float(np.max(np.abs(ours - c_bragg)) / np.max(c_bragg))
                say(f"C vs nbjax Bragg image of shot 0 (no water): max |diff| / max = {parity:.2e}")
                if not parity <= PARITY_RTOL:
                    raise NBError(f"C and nbjax Bragg images differ: max |diff| / max = {parity:.2e} > {PARITY_RTOL}")
                bragg = c_bragg.astype(np.float64)
        else:
            mean = render_nbjax(experiment, args)
            bragg = None
        water = _water_level(mean, bragg)
        bragg = mean - water if bragg is None else bragg
        counts = np.random.default_rng([seed, 2, k]).poisson(mean).astype(np.float32)
        np.save(out / f"{name}.npy", counts)
        found = find_spots(bragg)
        refl = spot_rows(table, found, true_detector, rows, true_waves)
        spots.append(len(found))
        seen.append(np.unique(refl[refl >= 0]))
        background.append(float(np.median(water)))
        shots.append((str(out / f"{name}.expt"), str(out / f"{name}.npy")))
        say(
            f"shot {k + 1}/{n_shots}: scale {scales[k]:.3f}, {len(found)} spots >= {SPOT_PHOTONS:g} photons, "
            f"background {background[-1]:.1f} photons/pixel"
        )
    lst = out / "shots.lst"
    lst.write_text("".join(f"{Path(e).name} {Path(n).name} spectrum.txt\n" for e, n in shots))
    truth = Truth(
        table,
        str(out),
        str(lst),
        tuple(shots),
        scales,
        missets,
        np.stack(rows_all),
        user_args,
        render_args,
        spectrum,
        renderer,
        parity,
        np.asarray(spots, np.int64),
        tuple(seen),
        np.asarray(background),
        None if panel_shift_mm is None else np.asarray(panel_shift_mm, np.float64),
        None if panel_rotation_mrad is None else np.asarray(panel_rotation_mrad, np.float64),
        float(spectrum_shift_A),
    )
    _write_truth_json(truth, out / "truth.json", seed, wavelength, waves, water_um, fluence, N)
    return truth


def model_args(folder) -> list[str]:
    """The model's flags of a data set ``make_shots`` wrote into ``folder`` (truth.json's
    ``user_args``; the files it names, kept there by their names, as paths in ``folder``).  A
    Truth in hand has them already: ``truth.user_args``."""
    doc = json.loads((Path(folder) / "truth.json").read_text())
    args = list(doc["user_args"])
    return [str(Path(folder) / a) if k > 0 and args[k - 1] == "-spectrum" else a for k, a in enumerate(args)]


def _water_level(mean: np.ndarray, bragg: np.ndarray | None) -> np.ndarray:
    """The smooth background of a noise-free image: ``mean - bragg`` where the Bragg image is
    known, else a 15-pixel median filter of each panel (spots are a few pixels wide)."""
    if bragg is not None:
        return mean - bragg
    from scipy import ndimage

    return np.stack([ndimage.median_filter(m, size=15, mode="nearest") for m in mean])


def _write_truth_json(truth: Truth, path, seed, wavelength, waves, water_um, fluence, N) -> None:
    doc = {
        "space_group": truth.table.space_group,
        "cell": list(truth.table.cell),
        "dmin": truth.table.dmin,
        "reflections": len(truth.table.hkl),
        "seed": seed,
        "renderer": truth.renderer,
        "c_parity": truth.parity,
        "wavelength": wavelength,
        "wavelengths": [float(w) for w in waves],
        "fluence": fluence,
        "N": N,
        "water_um": water_um,
        "panel_shift_mm": None if truth.panel_shift_mm is None else truth.panel_shift_mm.tolist(),
        "panel_rotation_mrad": None if truth.panel_rotation_mrad is None else truth.panel_rotation_mrad.tolist(),
        "spectrum_shift_A": truth.spectrum_shift_A,
        "user_args": [os.path.basename(a) if a == truth.spectrum else a for a in truth.user_args],
        "render_args": [os.path.basename(a) if os.path.isabs(a) else a for a in truth.render_args],
        "shots": [
            {
                "expt": Path(e).name,
                "npy": Path(n).name,
                "scale": float(truth.scales[k]),
                "misset_deg": [float(x) for x in truth.missets_deg[k]],
                "real_space": [[float(x) for x in row] for row in truth.rows[k]],
                "spots": int(truth.spots[k]),
                "background": float(truth.background[k]),
            }
            for k, (e, n) in enumerate(truth.shots)
        ],
    }
    Path(path).write_text(json.dumps(doc, indent=1) + "\n")
