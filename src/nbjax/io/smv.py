"""SMV (ADSC) images: the C program's ``intimage.img``/``noiseimage.img`` writer and its
``-img``/``-mask`` header reader.

A file is an ASCII header padded with spaces to ``HEADER_BYTES`` (512 as written), then
SIZE1*SIZE2 unsigned 16-bit pixels, fast index (SIZE1) varying fastest.
"""

import math
import os
from dataclasses import dataclass

import numpy as np

from nbjax.ctables.constants import RTD
from nbjax.errors import NBError, os_error_text, shown_path
from nbjax.io.atomic import write_bytes_atomic
from nbjax.io.cformat import c_atof, cformat_g
from nbjax.roi import Roi

HEADER_BYTES = 512


@dataclass(frozen=True)
class SMVHeaderValues:
    """The numbers the C program prints into an SMV header, in its internal units (m, rad, px)."""

    fpixels: int
    spixels: int
    pixel_size_m: float
    distance_m: float
    lambda0_m: float
    Xbeam_m: float
    Ybeam_m: float
    Fbeam_m: float
    Sbeam_m: float
    detsize_s_m: float
    dials_origin_mm: tuple[float, float, float]
    ORGX: float
    ORGY: float
    close_distance_m: float
    phi0_rad: float
    osc_rad: float
    twotheta_rad: float


def format_smv_header(v: SMVHeaderValues, noise_image: bool = False) -> bytes:
    """The 512-byte header exactly as C's fprintf calls write it (``%g`` values, mm/Angstrom/deg).

    DENZO_X/Y_BEAM is (Sbeam-0.0*px, Fbeam-0.0*px) in the int image and (Sbeam+0.0*px, ...) in the
    noise image (``noise_image=True``); both give the same number except for a -0.0 beam.
    Padded with spaces to 512 bytes; a longer text (extreme %g values) is written whole, as C
    does, although HEADER_BYTES still says 512 (see ``header_overflow``).
    """
    g = cformat_g
    px = v.pixel_size_m
    if noise_image:
        denzo_s, denzo_f = v.Sbeam_m + 0.0 * px, v.Fbeam_m + 0.0 * px
    else:
        denzo_s, denzo_f = v.Sbeam_m - 0.0 * px, v.Fbeam_m - 0.0 * px
    text = (
        "{\nHEADER_BYTES=512;\nDIM=2;\nBYTE_ORDER=little_endian;\nTYPE=unsigned_short;\n"
        f"SIZE1={int(v.fpixels)};\nSIZE2={int(v.spixels)};\n"
        f"PIXEL_SIZE={g(px * 1000.0)};\nDISTANCE={g(v.distance_m * 1000.0)};\n"
        f"WAVELENGTH={g(v.lambda0_m * 1e10)};\n"
        f"BEAM_CENTER_X={g(v.Xbeam_m * 1000.0)};\nBEAM_CENTER_Y={g(v.Ybeam_m * 1000)};\n"
        f"ADXV_CENTER_X={g(v.Fbeam_m * 1000.0)};\nADXV_CENTER_Y={g((v.detsize_s_m - v.Sbeam_m) * 1000)};\n"
        f"MOSFLM_CENTER_X={g((v.Sbeam_m - 0.5 * px) * 1000.0)};\n"
        f"MOSFLM_CENTER_Y={g((v.Fbeam_m - 0.5 * px) * 1000)};\n"
        f"DENZO_X_BEAM={g(denzo_s * 1000.0)};\nDENZO_Y_BEAM={g(denzo_f * 1000.0)};\n"
        f"DIALS_ORIGIN={','.join(g(x) for x in v.dials_origin_mm)}\n"
        f"XDS_ORGX={g(v.ORGX)};\nXDS_ORGY={g(v.ORGY)};\n"
        f"CLOSE_DISTANCE={g(v.close_distance_m * 1000.0)};\n"
        f"PHI={g(v.phi0_rad * RTD)};\nOSC_START={g(v.phi0_rad * RTD)};\nOSC_RANGE={g(v.osc_rad * RTD)};\n"
        f"TWOTHETA={g(v.twotheta_rad * RTD)};\n"
        "DETECTOR_SN=000;\nBEAMLINE=fake;\n}\f"
    ).encode("ascii")
    return text.ljust(HEADER_BYTES, b" ")


def header_overflow(values: SMVHeaderValues) -> int:
    """Bytes by which C's header text for these values exceeds HEADER_BYTES (0 when it fits)."""
    return max(0, len(format_smv_header(values)) - HEADER_BYTES)


def smv_bytes(values: SMVHeaderValues, image, noise_image: bool = False) -> bytes:
    """The whole SMV file: header + (spixels, fpixels) uint16 pixels (little-endian)."""
    data = np.asarray(image)
    if data.shape != (values.spixels, values.fpixels):
        raise NBError(
            f"SMV image: shape {data.shape} does not match SIZE2 x SIZE1 = {values.spixels} x {values.fpixels}"
        )
    return format_smv_header(values, noise_image) + np.ascontiguousarray(data, dtype="<u2").tobytes()


def write_smv(path: str | os.PathLike, values: SMVHeaderValues, image, noise_image: bool = False) -> None:
    """Write :func:`smv_bytes` to ``path`` atomically."""
    write_bytes_atomic(path, smv_bytes(values, image, noise_image))


def auto_int_scale(max_I: float) -> float:
    """C's automatic ``-scale``: 55000/max_I counts per photon, or 1 when max_I is not positive."""
    return 55000.0 / max_I if max_I > 0.0 else 1.0


def int_image(float_image, scale: float, adc: float = 40.0, roi=None) -> np.ndarray:
    """SMV counts from photons: ROI pixels floorf(clamp(f*scale+adc, 0, 65535)+0.5), 0 outside.

    As in C, f*scale+adc is a double, the +0.5 sum is rounded to float before floorf, and the
    conversion to uint16 is C's cast (NaN gives 0).
    """
    image = np.asarray(float_image, dtype=np.float32)
    out = np.zeros(image.shape, dtype=np.uint16)
    window = Roi.clip(roi, image.shape)
    rows_per_chunk = max(1, (1 << 20) // max(image.shape[1], 1))  # bounded temporaries
    for y0 in range(window.rows.start, window.rows.stop, rows_per_chunk):
        y1 = min(y0 + rows_per_chunk, window.rows.stop)
        test = image[y0:y1, window.cols].astype(np.float64)
        test *= float(scale)
        test += float(adc)
        np.clip(test, 0.0, 65535.0, out=test)  # NaN stays NaN, and C's cast makes it 0
        test += 0.5
        counts = np.floor(test.astype(np.float32))
        counts[np.isnan(counts)] = 0.0
        out[y0:y1, window.cols] = counts.astype(np.uint16)
    return out


@dataclass(frozen=True)
class SMVFrame:
    """An SMV file as read: header text (up to HEADER_BYTES, cut at the first NUL), sizes, the
    pixel byte order and the (height, width) uint16 pixels in native order."""

    header: str
    header_size: int
    width: int
    height: int
    byte_order: str
    data: np.ndarray

    def value(self, key: str) -> float:
        """:func:`value_of` on this header."""
        return value_of(self.header, key)


def value_of(header_text: str, key: str) -> float:
    """C's ValueOf: the number after the first '=' following the LAST occurrence of ``key``.

    Occurrences are substrings, so ``DISTANCE`` also matches inside ``CLOSE_DISTANCE``.
    NaN when the key is absent, 0.0 when no '=' follows, else atof of the rest.
    """
    if not key:
        raise NBError("SMV header key must not be empty")
    end = -1
    found = header_text.find(key)
    while found != -1:
        end = found + len(key)
        found = header_text.find(key, end)
    if end < 0:
        return math.nan
    equals = header_text.find("=", end)
    if equals < 0:
        return 0.0
    return c_atof(header_text[equals + 1 :])


def _header_int(path, header: str, key: str) -> int:
    value = value_of(header, key)
    if not math.isfinite(value) or not 0 <= value < 2**31:
        raise NBError(f"{path}: SMV header has no usable {key} (got {value})")
    return int(value)


def read_smv(path: str | os.PathLike) -> SMVFrame:
    """Read an SMV file with the C program's checks (GetFrame).

    The header must start with ``{\\nHEADER_BYT``; its size is HEADER_BYTES; the pixel byte order
    is the last BYTE_ORDER value (``little_end...`` or else big-endian; little when absent);
    width/height are SIZE1/SIZE2, or DETECTOR_DIMENSIONS when SIZE1 is 0.  Unlike C, a missing,
    short or malformed file is an NBError rather than being skipped or zero-filled.
    """
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise NBError(f"cannot read {shown_path(path)}: {os_error_text(exc, path)}", exit_code=9) from None
    if len(raw) < HEADER_BYTES:
        raise NBError(f"{path}: {len(raw)} bytes, shorter than the {HEADER_BYTES}-byte SMV header", exit_code=9)

    def header_text(size: int) -> str:
        return raw[:size].decode("latin-1").split("\0", 1)[0]

    header = header_text(HEADER_BYTES)
    if not header.startswith("{\nHEADER_BYT"):  # C compares the first 12 characters
        raise NBError(f"{path} does not look like an ADSC (SMV) frame", exit_code=9)
    header_size = _header_int(path, header, "HEADER_BYTES")
    if header_size != HEADER_BYTES:
        if header_size <= 0 or header_size > len(raw):
            raise NBError(f"{path}: HEADER_BYTES={header_size} does not fit a {len(raw)}-byte file", exit_code=9)
        header = header_text(header_size)
    order_at = header.rfind("BYTE_ORDER=")
    little = order_at < 0 or header.startswith("little_end", order_at + 11)
    width = _header_int(path, header, "SIZE1")
    height = _header_int(path, header, "SIZE2")
    if width == 0:
        width = height = _header_int(path, header, "DETECTOR_DIMENSIONS")
    need = 2 * width * height
    if len(raw) < header_size + need:
        raise NBError(f"{path}: {len(raw) - header_size} pixel bytes, {width}x{height} needs {need}", exit_code=9)
    pixels = np.frombuffer(raw, dtype="<u2" if little else ">u2", count=width * height, offset=header_size)
    return SMVFrame(
        header=header,
        header_size=header_size,
        width=width,
        height=height,
        byte_order="little_endian" if little else "big_endian",
        data=pixels.astype(np.uint16).reshape(height, width),
    )
