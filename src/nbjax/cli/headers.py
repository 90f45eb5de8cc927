"""The C pre-pass: geometry from ``-mask`` and ``-img`` SMV headers (reference D13-D15).

C scans argv for ``-img`` and ``-mask`` (substring match) before parsing anything else, reads
the mask first and the img second whatever their order, so the img header wins; flags parsed
later override both.  Header values are read with the last-substring rule (``DISTANCE``
matches inside ``CLOSE_DISTANCE``), ``TWOTHETA`` is read into a scratch variable and ignored,
and the mask's BEAM_CENTER_Y is flipped to detsize_s - value.
"""

from __future__ import annotations

import math

import numpy as np

from nbjax.ctables.constants import RTD
from nbjax.errors import NBError, quote_text
from nbjax.io.smv import read_smv
from nbjax.settings import RunSettings


def header_files(argv: list[str]) -> tuple[str | None, str | None]:
    """(mask file, img file) as the C pre-pass finds them (last occurrence wins)."""
    mask = img = None
    for i, token in enumerate(argv[:-1]):
        if token.startswith("-"):
            if "-img" in token:
                img = argv[i + 1]
            if "-mask" in token:
                mask = argv[i + 1]
    return mask, img


# Header values that must be positive, and the flags that would override them.
POSITIVE_KEYS = {"PIXEL_SIZE": ("-pixel",), "WAVELENGTH": ("-lambda", "-wave", "-energy")}


def _check_positive(path: str, frame, argv: list[str]) -> None:
    """NBError naming the file for a header value C would use although it is not positive
    (unless a flag overrides it)."""
    for key, flags in POSITIVE_KEYS.items():
        value = frame.value(key)
        overridden = any(t.startswith("-") and f in t for t in argv for f in flags)
        if not math.isnan(value) and not value > 0 and not overridden:
            raise NBError(
                f"{path}: the SMV header says {key}={value:g}, which is not positive; fix the header or give {flags[0]}"
            )


def apply_headers(s: RunSettings, argv: list[str], log=None) -> None:
    """Set geometry from the mask header, then the img header, as C does; ``log`` collects
    the 'reading FILE' lines C prints."""
    mask_file, img_file = header_files(argv)
    for path, is_mask in ((mask_file, True), (img_file, False)):
        if path is None:
            continue
        frame = read_smv(path)
        _check_positive(path, frame, argv)
        if log is not None:
            log.append(f"reading {path}")
        s.fpixels, s.spixels = frame.width, frame.height
        value = frame.value
        if not math.isnan(value("PIXEL_SIZE")):
            s.pixel_size = value("PIXEL_SIZE") / 1000.0
        s.detsize_f = s.pixel_size * s.fpixels
        s.detsize_s = s.pixel_size * s.spixels
        # C divides: value/1000.0, /1e10, /RTD (a multiplication can round differently)
        for key, attr, divisor in (
            ("DISTANCE", "distance", 1000.0),
            ("CLOSE_DISTANCE", "close_distance", 1000.0),
            ("WAVELENGTH", "lambda0", 1e10),
            ("BEAM_CENTER_X", "Xbeam", 1000.0),
            ("ORGX", "ORGX", 1.0),
            ("ORGY", "ORGY", 1.0),
            ("PHI", "phi0", RTD),
            ("OSC_RANGE", "osc", RTD),
        ):
            if not math.isnan(value(key)):
                setattr(s, attr, value(key) / divisor)
                if attr == "lambda0":  # a given wavelength (-spectrum keeps it)
                    s.given[attr] = f"{'-mask' if is_mask else '-img'} {quote_text(str(path))}"
        y = value("BEAM_CENTER_Y")
        if not math.isnan(y):
            s.Ybeam = s.detsize_s - y / 1000.0 if is_mask else y / 1000.0
        if is_mask:
            s.mask = np.asarray(frame.data[: s.spixels, : s.fpixels]).copy()
            s.maskfile = path
