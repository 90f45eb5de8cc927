"""Read measured detector images (CBF, HDF5/NeXus, .npy, SMV, raw float, whatever fabio reads) as a
stack of panels in photons, with the usable pixels.

One entry point::

    from nbjax.io.images import read_images
    stack = read_images("run7.h5:/entry/data/data", frame=3, adu_per_photon=9.5, trusted_range=(0, 65000))
    stack.data    # (P, S, F) float64 photons = (raw - pedestal) / adu_per_photon
    stack.mask    # (P, S, F) bool, True = usable pixel
    stack.sources # what was read, for messages

``spec`` is one image (a string) or one image per panel (a list of strings, each an (S, F) image
of the same shape, stacked in order).  Each image is one of:

* CBF: byte-offset compression through fabio; any other compression the file declares
  (``x-CBF_PACKED``, the LCLS Rayonix/CSPAD files of 2013-2018, ``x-CBF_PACKED_V2``, ``x-CBF_NONE``,
  ...) or several binary sections (one array per panel, as the multi-panel CSPAD CBFs) through pycbf
  (``pip install 'nbjax[cbf]'``).
* HDF5/NeXus (``.h5``, ``.hdf5``, ``.nxs``, ``.cxi``, ... or the HDF5 signature) through h5py, with
  hdf5plugin imported first so bitshuffle/LZ4-compressed data (Eiger, Jungfrau) can be read
  (importing it registers those filters with the HDF5 library of the process).
  ``FILE.h5:/entry/data/data`` names the dataset; without one it is the NeXus default (the
  ``default`` attributes from the root to an NXdata group and its ``signal``), else the one 2-D, 3-D
  or 4-D numeric dataset in the file (soft and external links followed), else an error listing the
  candidates.  Dimensions: (S, F); (frames, S, F); (frames, P, S, F).  A 3-D dataset is read as
  frames, except that it is a panel stack (P, S, F) when ``frame=None`` or when ``panels`` equals
  its shape with P > 1.
* ``.npy``: (S, F) or (P, S, F), or (frames, P, S, F).
* SMV (``.smv``, or a file starting with an SMV header, as ``.img``): nbjax's own reader
  (:mod:`nbjax.io.smv`), unsigned 16-bit pixels; ``BYTE_ORDER`` is read as fabio and dxtbx read it.
* raw float32 (``.bin``, ``.raw``, ``.float``: nanoBragg's ``-floatfile``): the shape comes from
  ``panels`` (else the image must be square).
* anything else fabio reads (EDF, TIFF, MAR, ...; ``frame`` picks a frame of a multi-frame file).

``frame`` (from 0) picks a frame where the data has a frames axis; formats holding one image accept
only 0 (or None).  ``frame=None`` says the data has no frames axis.

The mask of usable pixels is True unless the raw value is NaN or infinite, lies outside
``trusted_range=(lo, hi)`` (raw ADU, before the pedestal, inclusive at both ends, as DIALS'
``trusted_range``), or the mask stack says so.  ``mask`` is a file (or one per panel) read like the
images (.npy, HDF5 ``FILE.h5:/dataset``, SMV, ...), of the images' shape, in which NON-ZERO MEANS
USABLE (0 masks the pixel; a NaN also masks it).  DIALS' boolean masks (True = valid pixel) follow
the same convention: save them as .npy (``numpy.stack([m.as_numpy_array() for m in mask])``); the
DIALS mask pickle itself needs cctbx and is refused.  NeXus ``pixel_mask`` datasets use the opposite
convention (non-zero = bad) and are refused rather than silently inverted.

Masked pixels keep the values read (NaN included): use ``mask``.  Photons below zero after the
pedestal (read noise around the pedestal, gaps that a detector fills with a negative value) are kept
as they are, and not masked; give ``trusted_range`` to drop such pixels (and the pixels that
detectors such as the Eiger mark with their type's largest value, e.g. 2**32 - 1).

Every bad input is an :class:`nbjax.errors.NBError` with one line naming the file, dataset, frame
or argument at fault.  fabio, h5py, hdf5plugin and pycbf are imported only when a file needs them.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass

import numpy as np

from nbjax.errors import NBError, os_error_text, shown_path

HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".he5", ".nxs", ".nx5", ".nx", ".cxi")
SMV_SUFFIXES = (".smv",)
RAW_SUFFIXES = (".bin", ".raw", ".float")
MASK_PICKLE_SUFFIXES = (".pickle", ".pkl")
CANDIDATES_SHOWN = 8  # image datasets an error message lists

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_NPY_MAGIC = b"\x93NUMPY"
_SMV_MAGIC = b"{\nHEADER_BYT"
_CBF_MAGIC = b"###CBF"
_CBF_SECTION = b"--CIF-BINARY-FORMAT-SECTION--"
_CBF_STARTER = b"\x0c\x1a\x04\xd5"


@dataclass(frozen=True, eq=False)
class ImageStack:
    """Images read by :func:`read_images`.

    ``data``: (P, S, F) float64 photons, (raw - pedestal) / adu_per_photon (masked pixels keep
    their values, NaN included); ``mask``: (P, S, F) bool, True = usable pixel; ``sources``: what
    was read, one entry per file given (``FILE``, ``FILE:/dataset``, with ``[frame N]`` where a
    frame was picked from a frames axis).
    """

    data: np.ndarray
    mask: np.ndarray
    sources: tuple[str, ...]

    @property
    def shape(self) -> tuple[int, int, int]:
        """(P, S, F)."""
        return tuple(self.data.shape)


def read_experiment_images(experiment, spec, *, adu_per_photon=1.0, pedestal=0.0, mask=None) -> ImageStack:
    """The panels of a DIALS experiment (``nbjax.io.expt.Experiment``) read from ``spec``
    (``read_images``): one (panels, slow, fast) stack when the panels share a shape, the
    trusted range of panel 0 (raw counts)."""
    panels = experiment.panels
    shape = (len(panels), *panels[0].shape) if len({p.shape for p in panels}) == 1 else None
    return read_images(
        spec,
        panels=shape,
        adu_per_photon=adu_per_photon,
        pedestal=pedestal,
        trusted_range=panels[0].trusted_range,
        mask=mask,
    )


def read_images(
    spec,
    *,
    panels=None,
    frame=0,
    adu_per_photon=1.0,
    pedestal=0.0,
    trusted_range=None,
    mask=None,
) -> ImageStack:
    """Read ``spec`` (one image file, or a list of one file per panel) as an :class:`ImageStack`
    (module docstring: formats, ``frame``, masking).

    ``panels``: the expected (P, S, F), checked (and used to shape raw float files and to read a
    3-D HDF5 dataset of that shape as panels); ``adu_per_photon`` (> 0) and ``pedestal``: photons =
    (raw - pedestal) / adu_per_photon; ``trusted_range``: (lo, hi) raw values usable, inclusive;
    ``mask``: a mask file (or one per panel), non-zero = usable.
    """
    items = _spec_items(spec, "images")
    panels = _check_panels(panels)
    frame = _check_frame(frame)
    adu = _finite_number(adu_per_photon, "adu_per_photon")
    if adu <= 0.0:
        raise NBError(f"adu_per_photon={adu_per_photon!r}: must be a positive number")
    pedestal = _finite_number(pedestal, "pedestal")
    lo_hi = _check_trusted_range(trusted_range)

    raw, sources = _read_stack(items, frame, panels, role="image")
    if panels is not None and raw.shape != panels:
        at_fault = sources[0] if len(sources) == 1 else f"{len(sources)} files ({sources[0]}, ...)"
        raise NBError(f"{at_fault}: images are {_shape_text(raw.shape)}, panels={_shape_text(panels)} expected")

    values = raw.astype(np.float64)
    data = (values - pedestal) / adu
    usable = np.isfinite(values) & np.isfinite(data)
    if lo_hi is not None:
        usable &= (values >= lo_hi[0]) & (values <= lo_hi[1])
    if mask is not None:
        usable &= _read_mask(mask, raw.shape)
    return ImageStack(data=data, mask=usable, sources=tuple(sources))


# ----------------------------------------------------------------------------------- arguments


def _spec_items(spec, what: str) -> list[str]:
    if isinstance(spec, str | bytes | os.PathLike):
        return [os.fsdecode(spec)]
    if isinstance(spec, list | tuple):
        if not spec:
            raise NBError(f"{what}: an empty list of files")
        out = []
        for item in spec:
            if not isinstance(item, str | bytes | os.PathLike):
                raise NBError(f"{what}: {type(item).__name__} {item!r:.40} in the list is not a file name")
            out.append(os.fsdecode(item))
        return out
    raise NBError(f"{what}: give a file name or a list of file names, not {type(spec).__name__}")


def _check_panels(panels):
    if panels is None:
        return None
    try:
        values = tuple(panels)
    except TypeError:
        values = ()
    if len(values) != 3 or not all(_is_int(v) and v > 0 for v in values):
        raise NBError(f"panels={panels!r:.60}: give (P, S, F), three positive integers")
    return tuple(int(v) for v in values)


def _check_frame(frame):
    if frame is None:
        return None
    if not _is_int(frame) or frame < 0:
        raise NBError(f"frame={frame!r:.40}: give a frame number from 0 (or None: no frames axis)")
    return int(frame)


def _is_int(value) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def _finite_number(value, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise NBError(f"{name}={value!r:.40}: not a number") from None
    if not math.isfinite(number):
        raise NBError(f"{name}={value!r:.40}: must be finite")
    return number


def _check_trusted_range(trusted_range):
    if trusted_range is None:
        return None
    try:
        lo, hi = (float(v) for v in trusted_range)
    except (TypeError, ValueError):
        raise NBError(f"trusted_range={trusted_range!r:.60}: give (lo, hi), two numbers (raw ADU)") from None
    if math.isnan(lo) or math.isnan(hi) or lo > hi:
        raise NBError(f"trusted_range={trusted_range!r:.60}: needs lo <= hi")
    return lo, hi


def _shape_text(shape) -> str:
    return "(" + ", ".join(str(int(n)) for n in shape) + ")"


def _one_line(exc: BaseException, limit: int = 200) -> str:
    """An exception's text as part of a one-line message (whitespace runs become one space)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[:limit] + "..."


# ------------------------------------------------------------------------------- stack, mask


def _read_stack(items, frame, panels, role):
    """(raw (P, S, F) array, sources) of one file or of one file per panel."""
    if len(items) == 1:
        raw, label = _read_one(items[0], frame, panels, role)
        return raw, [label]
    per_panel = None if panels is None else (1, *panels[1:])
    arrays, labels = [], []
    for item in items:
        raw, label = _read_one(item, frame, per_panel, role)
        if raw.shape[0] != 1:
            raise NBError(f"{label}: {raw.shape[0]} panels in it; with one file per panel each is one (S, F) image")
        if arrays and raw.shape != arrays[0].shape:
            raise NBError(
                f"{label}: image is {_shape_text(raw.shape[1:])}, the first file's {_shape_text(arrays[0].shape[1:])}"
                " (one file per panel needs equal (S, F))"
            )
        arrays.append(raw)
        labels.append(label)
    return np.concatenate(arrays, axis=0), labels


def _read_mask(mask, shape) -> np.ndarray:
    items = _spec_items(mask, "mask")
    for item in items:
        if item.lower().endswith(MASK_PICKLE_SUFFIXES):
            raise NBError(
                f"mask {shown_path(item)}: a DIALS mask pickle needs cctbx to read; save it as .npy "
                "(numpy.stack([m.as_numpy_array() for m in mask]), True = usable)"
            )
    raw, sources = _read_stack(items, None, tuple(shape), role="mask")
    if raw.shape != tuple(shape):
        at_fault = sources[0] if len(sources) == 1 else f"{len(sources)} files ({sources[0]}, ...)"
        raise NBError(f"mask {at_fault}: {_shape_text(raw.shape)}, the images {_shape_text(shape)}")
    if raw.dtype.kind == "f":
        return (raw != 0) & ~np.isnan(raw)
    return raw != 0


# ------------------------------------------------------------------------------ one file


def _split_spec(text: str) -> tuple[str, str | None]:
    """(file, dataset or None) of ``FILE`` or ``FILE:/dataset``."""
    if ":" not in text or os.path.exists(text):
        return text, None
    colons = [i for i, c in enumerate(text) if c == ":"]
    for i in colons:
        if os.path.isfile(text[:i]):
            return text[:i], text[i + 1 :] or None
    for i in colons:
        if text[i + 1 : i + 2] == "/":
            return text[:i], text[i + 1 :]
    return text, None


def _kind(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
    except OSError as exc:
        raise NBError(f"cannot read {shown_path(path)}: {os_error_text(exc, path)}") from None
    suffix = os.path.splitext(path)[1].lower()
    if head.startswith(_HDF5_MAGIC):
        return "hdf5"
    if head.startswith(_NPY_MAGIC):
        return "npy"
    if head.startswith(_SMV_MAGIC):
        return "smv"
    if head.startswith(_CBF_MAGIC):
        return "cbf"
    by_suffix = {".npy": "npy", ".cbf": "cbf"}
    by_suffix.update(dict.fromkeys(HDF5_SUFFIXES, "hdf5"))
    by_suffix.update(dict.fromkeys(SMV_SUFFIXES, "smv"))
    by_suffix.update(dict.fromkeys(RAW_SUFFIXES, "raw"))
    return by_suffix.get(suffix, "fabio")


def _image_kind(spec) -> str:
    """The reader :func:`read_images` uses for one image ``spec`` (``FILE`` or ``FILE:/dataset``):
    ``hdf5``, ``npy``, ``smv``, ``cbf``, ``raw`` or ``fabio`` (from the file's first bytes, else
    its suffix); an NBError when the file cannot be read."""
    return _kind(_split_spec(os.fsdecode(spec))[0])


def _read_one(text: str, frame, panels, role) -> tuple[np.ndarray, str]:
    """(raw (P, S, F) numeric array, label) of one file."""
    path, dataset = _split_spec(text)
    try:
        os.stat(path)
    except OSError as exc:
        raise NBError(f"cannot read {shown_path(path)}: {os_error_text(exc, path)}") from None
    except ValueError:  # an embedded NUL
        raise NBError(f"cannot read {shown_path(path)}: not a valid file name") from None
    kind = _kind(path)
    if dataset is not None and kind != "hdf5":
        raise NBError(f"{shown_path(text)}: a ':dataset' applies to HDF5/NeXus files; {shown_path(path)} is not one")
    if kind == "hdf5":
        return _read_hdf5(path, dataset, frame, panels, role)
    label = shown_path(path)
    if kind == "npy":
        array = _load_npy(path)
        stack, index = _frames_and_panels(array.shape, frame, panels, label, three_d_is_stack=True)
        raw = np.array(array[index])  # a copy: the memory map of the file is let go
    elif kind == "smv":
        raw = _read_smv(path)
        _single_frame(frame, label)
    elif kind == "cbf":
        raw = _read_cbf(path, label)
        _single_frame(frame, label)
    elif kind == "raw":
        raw = _read_raw_float(path, panels, label)
        _single_frame(frame, label)
    else:
        raw, label = _read_fabio(path, frame, label)
    _check_numeric(raw.dtype, label)
    if raw.ndim == 2:
        raw = raw[None]
    if raw.ndim != 3:
        raise NBError(f"{label}: {raw.ndim}-D data {_shape_text(raw.shape)}; images are (S, F) or (P, S, F)")
    return raw, label


def _single_frame(frame, label):
    if frame not in (None, 0):
        raise NBError(f"{label}: frame {frame} out of range (1 frame, numbered from 0)")


def _check_numeric(dtype, label):
    if dtype.kind not in "biuf":
        raise NBError(f"{label}: holds {dtype} values, not numbers")


def _frames_and_panels(shape, frame, panels, label, three_d_is_stack):
    """The index that picks the image(s) out of an array of ``shape``, and whether it picked a
    frame (module docstring: which axis is frames)."""
    ndim = len(shape)
    if ndim not in (2, 3, 4):
        raise NBError(
            f"{label}: {ndim}-D data {_shape_text(shape)}; images are (S, F), (frames, S, F), (P, S, F)"
            " or (frames, P, S, F)"
        )
    stack = ndim == 3 and (
        three_d_is_stack or frame is None or (panels is not None and panels[0] > 1 and tuple(shape) == panels)
    )
    if ndim == 2 or stack:
        if frame not in (None, 0):
            what = "a panel stack (P, S, F)" if stack else "one image"
            raise NBError(f"{label}: frame {frame} out of range ({_shape_text(shape)} is {what}, no frames axis)")
        return False, ()
    if frame is None:
        raise NBError(f"{label}: {_shape_text(shape)} has a frames axis first; give frame=N (from 0)")
    if frame >= shape[0]:
        raise NBError(f"{label}: frame {frame} out of range ({shape[0]} frames, numbered from 0)")
    return True, (frame,)


def _read_smv(path) -> np.ndarray:
    """SMV pixels through :func:`nbjax.io.smv.read_smv` (the C program's reader), except that the
    byte order is read as fabio and dxtbx read it: ``BYTE_ORDER= little_endian`` (a space after
    the ``=``, as fabio writes) is little-endian, where C's test (``little_end`` right after the
    ``=``) takes it for big-endian."""
    from nbjax.io.smv import read_smv

    frame = read_smv(path)
    at = frame.header.rfind("BYTE_ORDER=")
    big = at >= 0 and frame.header[at + len("BYTE_ORDER=") :].lstrip(" \t").startswith("big_endian")
    if big != (frame.byte_order == "big_endian"):
        return frame.data.byteswap()
    return frame.data


def _load_npy(path):
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except OSError as exc:
        raise NBError(f"cannot read {shown_path(path)}: {os_error_text(exc, path)}") from None
    except (ValueError, EOFError) as exc:
        raise NBError(f"{shown_path(path)}: not a readable .npy array ({_one_line(exc)})") from None


def _read_raw_float(path, panels, label):
    from nbjax.io.floatimage import read_float_image

    if panels is None or panels[0] == 1:
        s, f = (None, None) if panels is None else panels[1:]
        return read_float_image(path, f, s)
    size = os.path.getsize(path)
    need = 4 * panels[0] * panels[1] * panels[2]
    if size != need:
        raise NBError(f"{label}: {size} bytes, panels={_shape_text(panels)} of float32 needs {need}")
    return read_float_image(path, panels[2], panels[0] * panels[1]).reshape(panels)


# ------------------------------------------------------------------------------------- fabio


def _fabio(path, why: str):
    try:
        import fabio
    except ImportError:
        raise NBError(f"{shown_path(path)}: reading {why} needs fabio (pip install 'nbjax[formats]')") from None
    return fabio


def _read_fabio(path, frame, label):
    fabio = _fabio(path, "this format")
    try:
        image = fabio.open(path)
        frames = int(getattr(image, "nframes", 1) or 1)
        if frame not in (None, 0) and frame >= frames:
            raise NBError(f"{label}: frame {frame} out of range ({frames} frame{'s' * (frames != 1)}, numbered from 0)")
        if frame:
            image = image.getframe(frame)
        data = np.asarray(image.data)
    except NBError:
        raise
    except Exception as exc:  # noqa: BLE001 (fabio raises many types; one line names the file)
        raise NBError(f"{label}: fabio cannot read it ({type(exc).__name__}: {_one_line(exc)})") from None
    if frames > 1:
        label = f"{label}[frame {frame or 0}]"
    return data, label


# --------------------------------------------------------------------------------------- CBF


def _cbf_sections(path, label) -> list[dict]:
    """The MIME headers of a CBF's binary sections: conversions, element type, binary id."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise NBError(f"cannot read {shown_path(path)}: {os_error_text(exc, path)}") from None
    sections, at = [], raw.find(_CBF_SECTION)
    while at >= 0:
        if raw.startswith(b"--", at + len(_CBF_SECTION)):  # a section's closing boundary
            at = raw.find(_CBF_SECTION, at + len(_CBF_SECTION))
            continue
        end = raw.find(_CBF_STARTER, at)
        if end < 0:
            raise NBError(f"{label}: CBF binary section {len(sections) + 1} has no start of data (a cut file?)")
        head = raw[at:end].decode("latin-1")
        conversions = re.search(r"conversions\s*=\s*\"?([\w.-]+)", head, re.IGNORECASE)
        element = re.search(r"X-Binary-Element-Type:\s*\"?([^\"\r\n]*)", head, re.IGNORECASE)
        binary_id = re.search(r"X-Binary-ID:\s*(\d+)", head, re.IGNORECASE)
        size = re.search(r"X-Binary-Size:\s*(\d+)", head, re.IGNORECASE)
        sections.append(
            {
                "conversions": conversions.group(1) if conversions else "x-CBF_NONE",
                "element": element.group(1).strip() if element else "",
                "id": int(binary_id.group(1)) if binary_id else len(sections) + 1,
            }
        )
        at = raw.find(_CBF_SECTION, end + len(_CBF_STARTER) + (int(size.group(1)) if size else 0))
    if not sections:
        raise NBError(f"{label}: no CBF binary section (array data) in it")
    return sections


def _read_cbf(path, label) -> np.ndarray:
    """Byte-offset CBF of one array through fabio; other compressions, or several arrays
    (panels), through pycbf."""
    sections = _cbf_sections(path, label)
    conversions = sorted({s["conversions"] for s in sections})
    if conversions == ["x-CBF_BYTE_OFFSET"] and len(sections) == 1:
        fabio = _fabio(path, "a byte-offset CBF")
        try:
            return np.asarray(fabio.open(path).data)
        except Exception as exc:  # noqa: BLE001 (fabio raises many types; one line names the file)
            raise NBError(f"{label}: fabio cannot read this CBF ({type(exc).__name__}: {_one_line(exc)})") from None
    try:
        import pycbf
    except ImportError:
        why = "several arrays" if len(sections) > 1 else f"{conversions[0]} compression"
        raise NBError(f"{label}: a CBF with {why} needs pycbf (pip install 'nbjax[cbf]')") from None
    return _read_cbf_pycbf(pycbf, path, label, {s["id"]: s for s in sections})


def _read_cbf_pycbf(pycbf, path, label, sections) -> np.ndarray:
    def text(value: str):
        return value.encode() if getattr(pycbf, "HAS_SWIG_PYTHON_STRICT_BYTE_CHAR", False) else value

    handle = pycbf.cbf_handle_struct()
    arrays = []
    try:
        handle.read_widefile(text(os.fsdecode(path)), pycbf.MSG_DIGEST)
        handle.find_category(text("array_data"))
        handle.find_column(text("data"))
        for row in range(handle.count_rows()):
            handle.select_row(row)
            params = handle.get_integerarrayparameters_wdims_fs()
            _, binary_id, _, signed, _, elements, _, _, _, fast, mid, slow, _ = params
            element = sections.get(binary_id, {}).get("element", "").lower()
            if "real" in element:
                _, _, size, elements, _, fast, mid, slow, _ = handle.get_realarrayparameters_wdims_fs()
                values = np.frombuffer(handle.get_realarray_as_string(), dtype=f"=f{size}")
            else:
                data = handle.get_integerarray_as_string()
                size = len(data) // elements if elements else 0
                if size not in (1, 2, 4, 8) or size * elements != len(data):
                    raise NBError(f"{label}: CBF array {row + 1} gave {len(data)} bytes for {elements} elements")
                values = np.frombuffer(data, dtype=f"={'i' if signed else 'u'}{size}")
            if not fast or not mid:
                raise NBError(f"{label}: CBF array {row + 1} does not give its dimensions")
            shape = (slow, mid, fast) if slow > 1 else (mid, fast)
            if values.size != math.prod(shape):
                raise NBError(f"{label}: CBF array {row + 1} has {values.size} elements, not {_shape_text(shape)}")
            arrays.append(values.reshape(shape))
    except NBError:
        raise
    except Exception as exc:  # noqa: BLE001 (pycbf raises bare Exception("CBFlib Error(s): ..."))
        raise NBError(f"{label}: pycbf cannot read this CBF ({_one_line(exc)})") from None
    if not arrays:
        raise NBError(f"{label}: no array_data in this CBF")
    if len(arrays) == 1:
        return arrays[0]
    if any(a.shape != arrays[0].shape or a.ndim != 2 for a in arrays):
        shapes = ", ".join(_shape_text(a.shape) for a in arrays[:CANDIDATES_SHOWN])
        raise NBError(f"{label}: CBF arrays of different shapes ({shapes}); nbjax stacks equal (S, F) panels")
    return np.stack(arrays)


# -------------------------------------------------------------------------------------- HDF5


def _attr_text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        if value.size != 1:
            return None
        value = value.reshape(()).item()
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value if isinstance(value, str) and value else None


def _read_hdf5(path, dataset, frame, panels, role):
    try:
        import h5py
    except ImportError:
        raise NBError(f"{shown_path(path)}: reading HDF5 needs h5py (pip install 'nbjax[formats]')") from None
    try:
        import hdf5plugin  # noqa: F401 (registers the bitshuffle/LZ4 filters with HDF5)

        have_plugins = True
    except ImportError:
        have_plugins = False
    shown = shown_path(path)
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise NBError(f"{shown}: not a readable HDF5 file ({_one_line(exc)})") from None
    with handle:
        name, ds = _pick_dataset(h5py, handle, shown, dataset)
        label = f"{shown}:{name}"
        if role == "mask" and name.rstrip("/").rsplit("/", 1)[-1] == "pixel_mask":
            raise NBError(
                f"mask {label}: a NeXus pixel_mask is non-zero = bad pixel, nbjax masks are non-zero = usable; "
                "save (pixel_mask == 0) as .npy"
            )
        _check_numeric(ds.dtype, label)
        picked, index = _frames_and_panels(ds.shape, frame, panels, label, three_d_is_stack=False)
        try:
            raw = np.asarray(ds[index] if index else ds[()])
        except (OSError, ValueError, RuntimeError) as exc:
            hint = "" if have_plugins else " (compressed data may need hdf5plugin: pip install 'nbjax[formats]')"
            raise NBError(f"{label}: cannot read the data ({_one_line(exc)}){hint}") from None
    if picked:
        label = f"{label}[frame {frame}]"
    if raw.ndim == 2:
        raw = raw[None]
    return raw, label


def _pick_dataset(h5py, handle, shown, dataset):
    """(path in the file, h5py.Dataset) of the dataset asked for, the NeXus default or the only
    image dataset."""
    if dataset is not None:
        name = dataset if dataset.startswith("/") else "/" + dataset
        try:
            obj = handle.get(name)
        except (KeyError, OSError, ValueError):
            obj = None
        if isinstance(obj, h5py.Group):
            found = _nexus_default(h5py, obj, name)
            if found is not None:
                return found
            raise NBError(f"{shown}:{name} is a group, not a dataset; {_candidates_text(h5py, handle)}")
        if not isinstance(obj, h5py.Dataset):
            raise NBError(f"{shown}: no dataset {name}; {_candidates_text(h5py, handle)}")
        return name, obj
    found = _nexus_default(h5py, handle, "")
    if found is not None:
        return found
    candidates = _image_datasets(h5py, handle)
    if len(candidates) == 1:
        return candidates[0], handle[candidates[0]]
    if not candidates:
        raise NBError(f"{shown}: no 2-D, 3-D or 4-D numeric dataset in it (and no NeXus default)")
    raise NBError(f"{shown}: {len(candidates)} image datasets, pick one as FILE:/DATASET: {_listed(candidates)}")


def _nexus_default(h5py, group, path):
    """(path, dataset) the NeXus ``default``/``signal`` attributes lead to from ``group``, or None."""
    obj = group
    for _ in range(8):
        if not isinstance(obj, h5py.Group):
            break
        signal = _attr_text(obj.attrs.get("signal"))
        target = signal or _attr_text(obj.attrs.get("default"))
        if target is None:
            return None
        try:
            child = obj.get(target)
        except (KeyError, OSError, ValueError):
            return None
        if child is None:
            return None
        path = f"{path.rstrip('/')}/{target}"
        if isinstance(child, h5py.Dataset):
            return path, child
        if signal:
            return None
        obj = child
    return None


def _image_datasets(h5py, handle) -> list[str]:
    """Paths of the 2-D to 4-D numeric datasets, soft and external links followed (each object
    once)."""
    found, seen = [], set()

    def walk(group, prefix, depth):
        if depth > 16 or group in seen:
            return
        seen.add(group)
        for key in group:
            try:
                obj = group[key]
            except (KeyError, OSError, ValueError):  # a dangling soft or external link
                continue
            path = f"{prefix}/{key}"
            if isinstance(obj, h5py.Group):
                walk(obj, path, depth + 1)
            elif isinstance(obj, h5py.Dataset) and obj not in seen:
                seen.add(obj)
                if 2 <= obj.ndim <= 4 and obj.dtype.kind in "biuf":
                    found.append(path)

    walk(handle, "", 0)
    return found


def _listed(names) -> str:
    text = ", ".join(names[:CANDIDATES_SHOWN])
    return text + (f" (and {len(names) - CANDIDATES_SHOWN} more)" if len(names) > CANDIDATES_SHOWN else "")


def _candidates_text(h5py, handle) -> str:
    candidates = _image_datasets(h5py, handle)
    if not candidates:
        return "the file has no 2-D, 3-D or 4-D numeric dataset"
    return "image datasets in it: " + _listed(candidates)
