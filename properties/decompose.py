"""Physical-mode runs written as linear combinations of C nanoBragg runs.

The C program has no physical mode, but every physical-mode factor is exact in a C run that
has one sample per pixel: one source, one phi angle, one sub-pixel and (for a layered sensor)
one layer.  So a physical image is a sum of C images:

* sources: weight w_i / sum(w) times the C image with source i alone (a one-line source file);
* phi steps: the mean of C runs at each angle phi0 + k osc/phisteps (-phisteps 1); mosaic
  domains stay inside each run (C's I/steps over domains is the same mean, and every run draws
  the same domains from the same -mosaic_seed; water background would break this: C divides it
  by the domain count, physical mode does not, so the specs here have none);
* -oversample k: each physical pixel is the sum of its k x k block of a C render on the k-times
  finer grid (pixel p/k, k times the pixels, the same distance and beam centre in mm; MOSFLM
  puts the beam half a pixel further, Fbeam = Ybeam + p/2, so there Xbeam and Ybeam grow by
  (p - p/k)/2; the other conventions have no such offset).  The fine pixel's solid angle is
  (p/k)^2/R^2 cos, the physical sample's p^2/R^2 cos averaged over k^2 samples: the same sum;
* sensor layers (physical mode: T layers of thick/T, layer t at depth t*s, capture
  exp(-t a/c) - exp(-(t+1) a/c) with a = s mu and c = diffracted . odet).  C cannot render one
  layer of a given thickness (-detector_thicksteps 1 becomes 2 layers and C multiplies the sum
  of its layers by the last layer's capture), but with a negative -detector_thick and
  -detector_thicksteps 1 it renders ONE layer 0.5 um thick, capture 1 - exp(-0.5e-6 mu'/c); with
  -detector_abs 0.5 L/(m s) (um) that is 1 - exp(-m a/c).  So layer t is
  C(m = t+1) - C(m = t) (layer 0: C(m = 1) alone), both with the detector moved t*s further
  (-distance D + t s: untilted detectors only, where the beam is the detector normal), times
  D/(D + t s) because C's solid angle uses its own close distance (not with -point_pixel, whose
  1/R^2 has none; and not with -curved_det, which puts every layer and the shifted C detector
  at the same radius, so layers on a curved detector do not decompose).
* -point_pixel: the "solid angle" is 1/R^2 per sample, not scaled by the pixel area, so a
  physical pixel is the MEAN of its k x k block (coefficient 1/k^2), as in C's own
  -oversample, where I/steps averages the sub-pixels.

``decompose(spec)`` returns the physical argv and its C components (argv, files, coefficient,
block size); the golden generator (scripts/make-physical-goldens) and the live property
(test_physical_live.py) both use it.
"""

from __future__ import annotations

import dataclasses
import itertools

from strategies import source_file_text

# Beam-centre offset of each convention in pixels (C: MOSFLM Fbeam = Ybeam + 0.5*pixel_size).
HALF_PIXEL_CONVENTIONS = {"mosflm": 0.5}
C_LAYER_UM = 0.5  # C's sensor thickness when -detector_thick < 0 and -detector_thicksteps is given
OUTPUT_FLAGS = ("-nonoise", "-nopgm", "-noprogress")


def num(x) -> str:
    """A number as C's atof and nbjax read it back exactly."""
    return repr(float(x))


@dataclasses.dataclass(frozen=True)
class Spec:
    """A physical-mode experiment that decomposes into C runs.

    ``base``: crystal and beam flags shared by every run (no detector size, pixel, distance,
    beam centre, oversample, phi or sensor flags).  ``sources``: rows (X, Y, Z, weight, lambda
    in m), or None for the nominal beam.  ``phi``: (phi0 deg, osc deg, steps) or None.
    ``layers``: (thickness um, layers >= 2, attenuation length um) or None (untilted detector
    only; C's thickness rule, which physical mode shares, turns one layer into two).
    """

    base: tuple
    pixels: int
    pixel_mm: float
    distance_mm: float
    xbeam_mm: float
    ybeam_mm: float
    convention: str = "mosflm"
    rotations: tuple = ()  # (("-detector_rotx", deg), ...)
    oversample: int = 1
    sources: tuple | None = None
    phi: tuple | None = None
    layers: tuple | None = None


@dataclasses.dataclass(frozen=True)
class Component:
    name: str
    args: tuple
    files: dict
    coefficient: float
    block: int  # sum block x block C pixels into one physical pixel


def _geometry(spec: Spec, pixels, pixel_mm, xbeam, ybeam, distance, oversample):
    argv = [
        "-" + spec.convention,
        "-detpixels",
        str(pixels),
        "-pixel",
        num(pixel_mm),
        "-distance",
        num(distance),
        "-Xbeam",
        num(xbeam),
        "-Ybeam",
        num(ybeam),
        "-oversample",
        str(oversample),
    ]
    for flag, deg in spec.rotations:
        argv += [flag, num(deg)]
    return argv


def physical_run(spec: Spec) -> tuple[list, dict]:
    """(argv, files) of the physical-mode run."""
    argv = list(spec.base) + _geometry(
        spec, spec.pixels, spec.pixel_mm, spec.xbeam_mm, spec.ybeam_mm, spec.distance_mm, spec.oversample
    )
    files = {}
    if spec.sources is not None:
        files["sources.txt"] = source_file_text(spec.sources)
        argv += ["-sourcefile", "sources.txt"]
    if spec.phi is not None:
        phi0, osc, steps = spec.phi
        argv += ["-phi", num(phi0), "-osc", num(osc), "-phisteps", str(steps)]
    if spec.layers is not None:
        thick, n, absorb = spec.layers
        argv += ["-detector_thick", num(thick), "-detector_thicksteps", str(n), "-detector_abs", num(absorb)]
    return argv + list(OUTPUT_FLAGS), files


def _source_terms(spec):
    if spec.sources is None:
        return [("", 1.0, [], {})]
    total = sum(float(r[3]) for r in spec.sources)
    return [
        (f"s{i}", float(r[3]) / total, ["-sourcefile", "source.txt"], {"source.txt": source_file_text([r])})
        for i, r in enumerate(spec.sources)
    ]


def _phi_terms(spec):
    if spec.phi is None:
        return [("", 1.0, [])]
    phi0, osc, steps = spec.phi
    return [(f"p{k}", 1.0 / steps, ["-phi", num(phi0 + k * osc / steps)]) for k in range(steps)]


def _layer_terms(spec):
    """(name, coefficient, extra argv, distance shift mm) per C run of the sensor decomposition."""
    if spec.layers is None:
        return [("", 1.0, [], 0.0)]
    if spec.rotations or "-curved_det" in spec.base:
        raise ValueError("sensor layers decompose into shifted C runs only on a flat, untilted detector")
    thick, n, absorb = spec.layers
    if n < 2:
        raise ValueError("-detector_thicksteps 1 renders 2 layers (C's thickness rule); give 2 or more")
    step_um = thick / n
    terms = []
    for t in range(n):
        shift_mm = t * step_um / 1000.0
        far = float(num(spec.distance_mm + shift_mm))
        scale = (float(num(spec.distance_mm)) / 1000.0) / (far / 1000.0)  # physical / C close distance
        if "-point_pixel" in spec.base:
            scale = 1.0
        for m, sign in ((t + 1, 1.0), (t, -1.0)):
            if m == 0:
                continue
            length = C_LAYER_UM * absorb / (m * step_um)
            terms.append(
                (
                    f"t{t}{'a' if sign > 0 else 'b'}",
                    sign * scale,
                    ["-detector_thick", "-1", "-detector_thicksteps", "1", "-detector_abs", num(length)],
                    shift_mm,
                )
            )
    return terms


def decompose(spec: Spec) -> list[Component]:
    """The C runs whose combination (each C image's block sums times its coefficient) is the
    physical image of ``spec``."""
    k = spec.oversample
    fine_mm = spec.pixel_mm / k
    shift = HALF_PIXEL_CONVENTIONS.get(spec.convention, 0.0) * (spec.pixel_mm - fine_mm)
    out = []
    for (sn, sc, sargs, sfiles), (pn, pc, pargs), (ln, lc, largs, dz) in itertools.product(
        _source_terms(spec), _phi_terms(spec), _layer_terms(spec)
    ):
        argv = list(spec.base) + _geometry(
            spec, spec.pixels * k, fine_mm, spec.xbeam_mm + shift, spec.ybeam_mm + shift, spec.distance_mm + dz, 1
        )
        argv += sargs + pargs + largs + list(OUTPUT_FLAGS)
        name = "-".join(x for x in (sn, pn, ln) if x) or "c"
        mean = 1.0 / (k * k) if "-point_pixel" in spec.base else 1.0
        out.append(Component(name, tuple(argv), dict(sfiles), sc * pc * lc * mean, k))
    return out


def block_sum(image, k: int):
    """(n*k, n*k) -> (n, n): the sum of each k x k block."""
    n0, n1 = image.shape[0] // k, image.shape[1] // k
    return image.reshape(n0, k, n1, k).sum(axis=(1, 3))
