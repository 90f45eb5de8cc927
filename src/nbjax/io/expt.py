"""DIALS/dxtbx experiment lists (``.expt``/``.json``): read, and write back with refined values.

Plain JSON, no dxtbx.  What nbjax reads of an experiment (``/work``-checked facts:
``shared/design/real-experiments.md``):

* beam: ``direction`` is a unit vector from the sample **towards the source** (nanoBragg's
  ``-beam_vector`` is its negative), ``wavelength`` in Angstrom, ``polarization_normal`` (the
  normal of the polarization plane; the E vector is normal x propagation) and
  ``polarization_fraction`` f (nanoBragg's Kahn factor is 2f - 1);
* detector: ``panels`` (origin, fast_axis, slow_axis in mm, ``image_size`` [fast, slow],
  ``pixel_size`` [fast, slow] in mm, ``thickness`` mm, ``mu`` 1/mm, ``trusted_range``), and
  optionally a ``hierarchy`` of groups whose leaves are ``{"panel": i}``.  With a hierarchy
  every node's and panel's origin and axes are in its parent's frame: with the parent's global
  frame R = [fast, slow, fast x slow] (columns) and origin o, global axis = R local axis and
  global origin = o + R local origin (dxtbx ``PanelFrame::update_global_frame``);
* crystal: ``real_space_a/b/c`` (Angstrom, lab frame), ``space_group_hall_symbol``,
  ``ML_half_mosaicity_deg`` and ``ML_domain_size_ang`` (stills);
* imageset: the image file names (``images`` or ``template``).

``ExperimentList.refined`` returns the file's JSON with only the refined values replaced (a
panel's global origin goes back into its parent's frame), so a list read and written unchanged
is the same JSON.  Every error is one line naming the file and the key at fault.
"""

from __future__ import annotations

import copy
import json
import math
import os
from dataclasses import dataclass

import numpy as np

from nbjax.errors import NBError, os_error_text, shown_path


@dataclass(frozen=True)
class Beam:
    """A monochromatic beam: ``direction`` (unit, towards the source), wavelength (Angstrom)."""

    direction: np.ndarray
    wavelength: float
    polarization_normal: np.ndarray
    polarization_fraction: float
    divergence: float = 0.0
    sigma_divergence: float = 0.0

    @property
    def propagation(self) -> np.ndarray:
        """Unit vector along the beam (source to sample): nanoBragg's ``-beam_vector``."""
        return -self.direction

    @property
    def kahn(self) -> float:
        """nanoBragg's Kahn polarization factor, 2f - 1."""
        return 2.0 * self.polarization_fraction - 1.0

    @property
    def e_vector(self) -> np.ndarray:
        """The polarization (E) vector, normal x propagation: nanoBragg's ``-polar_vector``."""
        e = np.cross(self.polarization_normal, self.propagation)
        return e / np.linalg.norm(e)


@dataclass(frozen=True)
class Panel:
    """One flat panel in the lab frame (global), lengths in mm."""

    name: str
    origin: np.ndarray  # outer corner of pixel (0, 0), mm
    fast: np.ndarray  # unit
    slow: np.ndarray  # unit
    pixel_size: tuple[float, float]  # (fast, slow) mm
    image_size: tuple[int, int]  # (fast, slow) pixels
    thickness: float  # mm
    mu: float  # 1/mm
    trusted_range: tuple[float, float]

    @property
    def normal(self) -> np.ndarray:
        n = np.cross(self.fast, self.slow)
        return n / np.linalg.norm(n)

    @property
    def shape(self) -> tuple[int, int]:
        """(slow, fast): the panel's image shape."""
        return int(self.image_size[1]), int(self.image_size[0])


@dataclass(frozen=True)
class Crystal:
    """Real-space cell vectors (rows a, b, c in Angstrom, lab frame) and what stills add."""

    real_space: np.ndarray  # (3, 3) rows a, b, c
    hall_symbol: str
    half_mosaicity_deg: float | None = None
    domain_size_ang: float | None = None

    @property
    def reciprocal(self) -> np.ndarray:
        """Rows a*, b*, c* (1/Angstrom): a* = (b x c) / V."""
        a, b, c = self.real_space
        volume = float(np.dot(a, np.cross(b, c)))
        return np.stack([np.cross(b, c), np.cross(c, a), np.cross(a, b)]) / volume


@dataclass(frozen=True)
class Experiment:
    """One experiment of a list: its beam, panels (global frame), crystal and image files."""

    index: int
    beam: Beam
    panels: tuple[Panel, ...]
    crystal: Crystal | None
    images: tuple[str, ...]


@dataclass(frozen=True)
class ExperimentList:
    """A DIALS experiment list as read (``raw``: the JSON) and where it came from."""

    path: str
    raw: dict

    def __len__(self) -> int:
        return len(self.raw["experiment"])

    def experiment(self, index: int = 0) -> Experiment:
        """Experiment ``index`` with its models resolved (panels in the global frame)."""
        n = len(self)
        if not -n <= index < n:
            raise NBError(f"{self.path}: no experiment {index} (the file has {n}; -expt_index counts from 0)")
        index %= n
        entry = self.raw["experiment"][index]
        beam = _beam(self._model("beam", entry, index), self.path)
        detector = self._model("detector", entry, index)
        panels = tuple(_panels(detector, self.path))
        crystal = None
        if entry.get("crystal") is not None:
            crystal = _crystal(self._model("crystal", entry, index), self.path)
        images = ()
        if entry.get("imageset") is not None:
            images = _images(self._model("imageset", entry, index), self.path)
        return Experiment(index, beam, panels, crystal, images)

    def _model(self, kind: str, entry: dict, index: int) -> dict:
        ref = entry.get(kind)
        models = self.raw.get(kind)
        if not isinstance(ref, int) or not isinstance(models, list) or not 0 <= ref < len(models):
            raise NBError(f"{self.path}: experiment {index} names no valid '{kind}' (index {ref!r})")
        return models[ref]

    def refined(
        self,
        index: int = 0,
        *,
        real_space: np.ndarray | None = None,
        wavelength: float | None = None,
        direction: np.ndarray | None = None,
        panel_origins: dict[int, np.ndarray] | None = None,
        panel_axes: dict[int, tuple] | None = None,
        half_mosaicity_deg: float | None = None,
        domain_size_ang: float | None = None,
    ) -> dict:
        """The list's JSON with experiment ``index``'s refined values put in (None: unchanged).
        ``panel_origins`` maps panel number -> global origin (mm), ``panel_axes`` panel number ->
        (fast, slow) unit axes in the lab frame; a panel under a hierarchy is written back in its
        parent's frame."""
        doc = copy.deepcopy(self.raw)
        entry = doc["experiment"][index % len(self)]
        if real_space is not None or half_mosaicity_deg is not None or domain_size_ang is not None:
            crystal = doc["crystal"][entry["crystal"]]
            if real_space is not None:
                for key, row in zip(("real_space_a", "real_space_b", "real_space_c"), real_space, strict=True):
                    crystal[key] = [float(x) for x in row]
            if half_mosaicity_deg is not None:
                crystal["ML_half_mosaicity_deg"] = float(half_mosaicity_deg)
            if domain_size_ang is not None:
                crystal["ML_domain_size_ang"] = float(domain_size_ang)
        if wavelength is not None or direction is not None:
            beam = doc["beam"][entry["beam"]]
            if wavelength is not None:
                beam["wavelength"] = float(wavelength)
            if direction is not None:
                beam["direction"] = [float(x) for x in direction]
        if panel_origins:
            detector = doc["detector"][entry["detector"]]
            parents = _parent_frames(detector, self.path)
            for p, origin in panel_origins.items():
                rotation, offset = parents[p]
                detector["panels"][p]["origin"] = [float(x) for x in rotation.T @ (np.asarray(origin) - offset)]
        if panel_axes:
            detector = doc["detector"][entry["detector"]]
            parents = _parent_frames(detector, self.path)
            for p, axes in panel_axes.items():
                rotation, _ = parents[p]
                for key, axis in zip(("fast_axis", "slow_axis"), axes, strict=True):
                    detector["panels"][p][key] = [float(x) for x in rotation.T @ np.asarray(axis, np.float64)]
        return doc


def read_expt(path: str | os.PathLike) -> ExperimentList:
    """The experiment list in ``path`` (one-line errors for what cannot be read)."""
    try:
        with open(path, encoding="utf-8") as handle:
            raw = json.load(handle)
    except OSError as exc:
        raise NBError(f"cannot read {shown_path(path)}: {os_error_text(exc, path)}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise NBError(f"{path}: not a DIALS experiment list (not JSON: {exc})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("experiment"), list) or not raw["experiment"]:
        raise NBError(f"{path}: not a DIALS experiment list (no 'experiment' entries)")
    return ExperimentList(str(path), raw)


def write_expt(path: str | os.PathLike, doc: dict) -> None:
    """Write an experiment list (``ExperimentList.refined``) as DIALS does: indented JSON."""
    from nbjax.io.atomic import write_bytes_atomic

    write_bytes_atomic(str(path), (json.dumps(doc, indent=2) + "\n").encode("utf-8"))


def _vector(d: dict, key: str, path: str, what: str, unit: bool = False) -> np.ndarray:
    value = d.get(key)
    try:
        v = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        v = np.zeros(0)
    if v.shape != (3,) or not np.all(np.isfinite(v)):
        raise NBError(f"{path}: {what} '{key}' is not a 3-vector of finite numbers: {value!r}")
    if unit:
        n = float(np.linalg.norm(v))
        if n == 0.0:
            raise NBError(f"{path}: {what} '{key}' is a zero vector")
        v = v / n
    return v


def _number(d: dict, key: str, path: str, what: str, default=None) -> float:
    value = d.get(key, default)
    if value is None:
        raise NBError(f"{path}: {what} has no '{key}'")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise NBError(f"{path}: {what} '{key}' is not a number: {value!r}") from None
    if not math.isfinite(x):
        raise NBError(f"{path}: {what} '{key}' is not finite: {value!r}")
    return x


def _beam(d: dict, path: str) -> Beam:
    direction = _vector(d, "direction", path, "beam", unit=True)
    wavelength = _number(d, "wavelength", path, "beam")
    if wavelength <= 0:
        raise NBError(f"{path}: beam 'wavelength' must be positive, got {wavelength:g}")
    normal = _vector(d, "polarization_normal", path, "beam", unit=True) if "polarization_normal" in d else None
    if normal is None or abs(float(np.dot(normal, direction))) > 1.0 - 1e-9:
        # no normal, or one along the beam: any plane holding the beam (the fraction decides)
        helper = np.eye(3)[int(np.argmin(np.abs(direction)))]
        normal = np.cross(direction, helper)
        normal /= np.linalg.norm(normal)
    fraction = _number(d, "polarization_fraction", path, "beam", default=0.5)
    if not 0.0 <= fraction <= 1.0:
        raise NBError(f"{path}: beam 'polarization_fraction' must be in [0, 1], got {fraction:g}")
    return Beam(
        direction=direction,
        wavelength=wavelength,
        polarization_normal=normal,
        polarization_fraction=fraction,
        divergence=_number(d, "divergence", path, "beam", default=0.0),
        sigma_divergence=_number(d, "sigma_divergence", path, "beam", default=0.0),
    )


def _frame(node: dict, path: str, what: str) -> tuple[np.ndarray, np.ndarray]:
    """(R = [fast, slow, fast x slow] as columns, origin) of a node's own (local) frame."""
    fast = _vector(node, "fast_axis", path, what, unit=True)
    slow = _vector(node, "slow_axis", path, what, unit=True)
    normal = np.cross(fast, slow)
    n = float(np.linalg.norm(normal))
    if n < 1e-6:
        raise NBError(f"{path}: {what} has parallel fast and slow axes")
    return np.stack([fast, slow, normal / n], axis=1), _vector(node, "origin", path, what)


def _parent_frames(detector: dict, path: str) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Panel number -> (R, o) of its parent's global frame (the identity for a flat list)."""
    panels = detector.get("panels")
    if not isinstance(panels, list) or not panels:
        raise NBError(f"{path}: the detector has no 'panels'")
    frames = {p: (np.eye(3), np.zeros(3)) for p in range(len(panels))}
    hierarchy = detector.get("hierarchy")
    if not hierarchy:
        return frames
    seen = set()

    def walk(node, rotation, offset, depth):
        if depth > 64:
            raise NBError(f"{path}: the detector hierarchy is deeper than 64 levels")
        if "panel" in node:
            p = node["panel"]
            if not isinstance(p, int) or not 0 <= p < len(panels) or p in seen:
                raise NBError(f"{path}: detector hierarchy names panel {p!r}, which is missing or named twice")
            seen.add(p)
            frames[p] = (rotation, offset)
            return
        local_r, local_o = _frame(node, path, f"detector group '{node.get('name', '')}'")
        r, o = rotation @ local_r, offset + rotation @ local_o
        for child in node.get("children", []):
            walk(child, r, o, depth + 1)

    walk(hierarchy, np.eye(3), np.zeros(3), 0)
    return frames


def _panels(detector: dict, path: str):
    parents = _parent_frames(detector, path)
    for p, d in enumerate(detector["panels"]):
        what = f"panel {p} ('{d.get('name', '')}')"
        local_r, local_o = _frame(d, path, what)
        rotation, offset = parents[p]
        size = d.get("image_size")
        pixel = d.get("pixel_size")
        try:
            nf, ns = (int(x) for x in size)
            pf, ps = (float(x) for x in pixel)
        except (TypeError, ValueError):
            raise NBError(f"{path}: {what} needs 'image_size' and 'pixel_size' pairs") from None
        if nf <= 0 or ns <= 0 or not (pf > 0 and ps > 0):
            raise NBError(f"{path}: {what} has image size {size} and pixel size {pixel}; both must be positive")
        trusted = d.get("trusted_range", [-math.inf, math.inf])
        yield Panel(
            name=str(d.get("name", f"panel{p}")),
            origin=offset + rotation @ local_o,
            fast=rotation @ local_r[:, 0],
            slow=rotation @ local_r[:, 1],
            pixel_size=(pf, ps),
            image_size=(nf, ns),
            thickness=_number(d, "thickness", path, what, default=0.0),
            mu=_number(d, "mu", path, what, default=0.0),
            trusted_range=(float(trusted[0]), float(trusted[1])),
        )


def _crystal(d: dict, path: str) -> Crystal:
    real = np.stack([_vector(d, k, path, "crystal") for k in ("real_space_a", "real_space_b", "real_space_c")])
    volume = float(np.dot(real[0], np.cross(real[1], real[2])))
    if not abs(volume) > 1e-6:
        raise NBError(f"{path}: the crystal's real_space_a, b, c span no volume")
    optional = {}
    for key in ("ML_half_mosaicity_deg", "ML_domain_size_ang"):
        if d.get(key) is not None:
            optional[key] = _number(d, key, path, "crystal")
    return Crystal(
        real_space=real,
        hall_symbol=str(d.get("space_group_hall_symbol", " P 1")),
        half_mosaicity_deg=optional.get("ML_half_mosaicity_deg"),
        domain_size_ang=optional.get("ML_domain_size_ang"),
    )


def _images(d: dict, path: str) -> tuple[str, ...]:
    if isinstance(d.get("images"), list):
        return tuple(str(x) for x in d["images"])
    if d.get("template"):
        return (str(d["template"]),)
    return ()
