"""Small DIALS experiment lists made here (no downloaded data): a tilted single panel and a
hierarchical 8-panel detector (two groups of four, each level rotated and offset), in the JSON
layout dxtbx writes (``nbjax.io.expt`` documents the facts it relies on)."""

from __future__ import annotations

import json
import math

import numpy as np


def _rot(axis, angle_deg):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    a = math.radians(angle_deg)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + math.sin(a) * k + (1 - math.cos(a)) * k @ k


def _panel(name, origin, fast, slow, size=(48, 40), pixel=0.2, thickness=0.0, mu=0.0):
    return {
        "name": name,
        "type": "SENSOR_PAD",
        "fast_axis": [float(x) for x in fast],
        "slow_axis": [float(x) for x in slow],
        "origin": [float(x) for x in origin],
        "raw_image_offset": [0, 0],
        "image_size": list(size),
        "pixel_size": [pixel, pixel],
        "trusted_range": [-10.0, 65535.0],
        "thickness": thickness,
        "material": "Si",
        "mu": mu,
        "identifier": "",
        "mask": [],
        "gain": 1.0,
        "pedestal": 0.0,
        "px_mm_strategy": {"type": "SimplePxMmStrategy"},
    }


def _crystal(cell=(61.2, 72.5, 88.1), misset=(12.0, -31.0, 47.0), hall=" P 2ac 2ab", domain=900.0, half_mos=0.02):
    u = _rot([1, 0, 0], misset[0]) @ _rot([0, 1, 0], misset[1]) @ _rot([0, 0, 1], misset[2])
    real = u @ np.diag(cell)  # columns a, b, c
    out = {
        "__id__": "crystal",
        "real_space_a": list(real[:, 0]),
        "real_space_b": list(real[:, 1]),
        "real_space_c": list(real[:, 2]),
        "space_group_hall_symbol": hall,
    }
    if domain is not None:
        out["ML_domain_size_ang"] = domain
    if half_mos is not None:
        out["ML_half_mosaicity_deg"] = half_mos
    return out


def _beam(wavelength=1.3, direction=(0.0, 0.0, 1.0), fraction=0.999):
    return {
        "__id__": "monochromatic",
        "direction": list(direction),
        "wavelength": wavelength,
        "divergence": 0.0,
        "sigma_divergence": 0.0,
        "polarization_normal": [0.0, 1.0, 0.0],
        "polarization_fraction": fraction,
        "flux": 0.0,
        "transmission": 1.0,
    }


def _list(detector, crystal, beam, images=("shot.cbf",)):
    return {
        "__id__": "ExperimentList",
        "experiment": [
            {"__id__": "Experiment", "identifier": "", "beam": 0, "detector": 0, "crystal": 0, "imageset": 0}
        ],
        "imageset": [{"__id__": "ImageSet", "images": list(images), "mask": "", "gain": "", "pedestal": ""}],
        "beam": [beam],
        "detector": [detector],
        "goniometer": [],
        "scan": [],
        "crystal": [crystal],
        "profile": [],
        "scaling_model": [],
    }


def tilted_panel() -> dict:
    """One 64x56 panel of 0.15 mm pixels at ~70 mm, tilted 25 deg about x and 10 deg about y."""
    r = _rot([1, 0, 0], 25.0) @ _rot([0, 1, 0], 10.0)
    fast, slow = r @ [1.0, 0.0, 0.0], r @ [0.0, -1.0, 0.0]
    origin = r @ [-4.9, 4.1, 0.0] + np.array([0.0, 0.0, -70.0])
    det = {"panels": [_panel("tilted", origin, fast, slow, size=(64, 56), pixel=0.15)]}
    return _list(det, _crystal(), _beam(direction=(0.0, 0.0, 1.0)))


def hierarchical_8panel(thickness: float = 0.0, mu: float = 0.0) -> dict:
    """Root group at 60 mm (slightly rotated) -> two quadrant groups (rotated 90 deg apart) ->
    four 48x40 panels each, every node in its parent's frame."""
    root_r = _rot([0, 0, 1], 3.0) @ _rot([1, 0, 0], 1.5)
    hierarchy = {
        "name": "D0",
        "type": "",
        "fast_axis": list(root_r @ [1.0, 0.0, 0.0]),
        "slow_axis": list(root_r @ [0.0, -1.0, 0.0]),
        "origin": [0.4, -0.3, -60.0],
        "children": [],
    }
    panels = []
    for q, (qangle, qorigin) in enumerate(((0.0, (-12.5, -11.0, 0.2)), (90.0, (12.0, -12.0, -0.1)))):
        qr = _rot([0, 0, 1], qangle)
        group = {
            "name": f"D0Q{q}",
            "type": "",
            "fast_axis": list(qr @ [1.0, 0.0, 0.0]),
            "slow_axis": list(qr @ [0.0, 1.0, 0.0]),
            "origin": list(qorigin),
            "children": [],
        }
        for k in range(4):
            pr = _rot([0, 0, 1], 0.3 * k - 0.4) @ _rot([1, 1, 0], 0.2 * k)
            local_origin = [(k % 2) * 10.5 - 4.0, (k // 2) * 8.8 - 3.0, 0.05 * k]
            group["children"].append({"panel": len(panels)})
            panels.append(
                _panel(
                    f"D0Q{q}S{k}",
                    local_origin,
                    pr @ [1.0, 0.0, 0.0],
                    pr @ [0.0, 1.0, 0.0],
                    thickness=thickness,
                    mu=mu,
                )
            )
        hierarchy["children"].append(group)
    det = {"panels": panels, "hierarchy": hierarchy}
    return _list(det, _crystal(), _beam(direction=(0.0, 0.0, 1.0)))


def write(doc: dict, path) -> str:
    with open(path, "w") as handle:
        json.dump(doc, handle, indent=2)
    return str(path)
