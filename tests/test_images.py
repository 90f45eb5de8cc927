"""nbjax.io.images.read_images (issue 17 item 4): each format written by its own library (fabio,
pycbf, h5py with and without hdf5plugin's bitshuffle/LZ4, numpy) into tmp_path and read back
exactly, in photons = (raw - pedestal) / adu_per_photon, with the trusted range, mask stacks, frames,
the NeXus default and panel stacking; every bad input one NBError line naming what is at fault; and
the fit's observation(), which reads through it."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from nbjax.errors import NBError
from nbjax.io.images import ImageStack, _image_kind, read_images

fabio = pytest.importorskip("fabio")
h5py = pytest.importorskip("h5py")
hdf5plugin = pytest.importorskip("hdf5plugin")

S, F = 6, 7


def pattern(offset=0, shape=(S, F), dtype=np.int32):
    """A known image: distinct values, negatives and a large value included."""
    values = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape) * 37 - 50 + offset
    values.flat[5] = 1_000_003
    return values.astype(dtype)


def photons(raw, pedestal=0.0, adu=1.0):
    return (np.asarray(raw, np.float64) - pedestal) / adu


def one_line_error(call, *words):
    """The NBError of ``call()``: one line holding each of ``words``."""
    with pytest.raises(NBError) as caught:
        call()
    text = str(caught.value)
    assert "\n" not in text and text.strip() == text, text
    for word in words:
        assert word in text, (word, text)
    return text


# ------------------------------------------------------------------------------------ writers


def write_packed_cbf(path, arrays, compression=None):
    """A CBF with one array_data row per array, compressed x-CBF_PACKED, written by CBFlib."""
    pycbf = pytest.importorskip("pycbf")
    handle = pycbf.cbf_handle_struct()
    handle.new_datablock(b"image_1")
    handle.new_category(b"array_data")
    handle.new_column(b"data")
    for i, array in enumerate(arrays):
        if i:
            handle.new_row()
        a = np.ascontiguousarray(array, dtype="<i4")
        handle.set_integerarray_wdims_fs(
            pycbf.CBF_PACKED if compression is None else compression,
            i + 1,
            a.tobytes(),
            4,
            1,
            a.size,
            b"little_endian",
            a.shape[1],
            a.shape[0],
            1,
            0,
        )
    handle.write_widefile(str(path).encode(), pycbf.CBF, pycbf.MIME_HEADERS | pycbf.MSG_DIGEST, 0)
    return str(path)


def write_byte_offset_cbf(path, array):
    fabio.cbfimage.CbfImage(data=np.asarray(array, np.int32)).write(str(path))
    return str(path)


def write_h5(path, datasets, attrs=None, **create):
    """An HDF5 file of ``{path: array}``; ``attrs``: ``{group path: {name: value}}``."""
    with h5py.File(path, "w") as f:
        for name, array in datasets.items():
            f.create_dataset(name, data=array, **create)
        for name, values in (attrs or {}).items():
            f[name].attrs.update(values)
    return str(path)


# ---------------------------------------------------------------------------------- formats


def test_byte_offset_cbf_through_fabio(tmp_path):
    raw = pattern()
    path = write_byte_offset_cbf(tmp_path / "bo.cbf", raw)
    assert b'conversions="x-CBF_BYTE_OFFSET"' in open(path, "rb").read(2000)
    stack = read_images(path, adu_per_photon=2.5, pedestal=10.0)
    assert isinstance(stack, ImageStack) and stack.shape == (1, S, F)
    assert stack.data.dtype == np.float64 and stack.mask.dtype == bool
    np.testing.assert_array_equal(stack.data[0], (raw - 10.0) / 2.5)
    assert stack.mask.all() and stack.sources == (path,)
    assert stack.data[0, 0, 0] == (-50 - 10) / 2.5  # negative photons are kept


def test_packed_cbf_through_pycbf(tmp_path):
    raw = pattern()
    path = write_packed_cbf(tmp_path / "rayonix.cbf", [raw])
    head = open(path, "rb").read(2000)
    assert b'conversions="x-CBF_PACKED"' in head
    with pytest.raises(Exception, match="Compression scheme not yet supported"):  # why pycbf is needed
        fabio.open(path)
    stack = read_images(path, pedestal=-3.0, adu_per_photon=0.5)
    np.testing.assert_array_equal(stack.data, ((raw + 3.0) / 0.5)[None])
    assert stack.mask.all() and _image_kind(path) == "cbf"


def test_multi_array_cbf_is_a_panel_stack(tmp_path):
    arrays = [pattern(0), pattern(1000), pattern(-7)]
    path = write_packed_cbf(tmp_path / "cspad.cbf", arrays)
    stack = read_images(path, panels=(3, S, F))
    np.testing.assert_array_equal(stack.data, np.stack(arrays).astype(np.float64))


def test_packed_cbf_without_pycbf_says_which_extra(tmp_path, monkeypatch):
    path = write_packed_cbf(tmp_path / "p.cbf", [pattern()])
    monkeypatch.setitem(sys.modules, "pycbf", None)  # import pycbf raises ImportError
    one_line_error(lambda: read_images(path), "p.cbf", "x-CBF_PACKED", "pycbf", "nbjax[cbf]")


@pytest.mark.parametrize("compressed", [False, True])
def test_hdf5_frames_with_and_without_bitshuffle_lz4(tmp_path, compressed):
    frames = np.stack([pattern(100 * i, dtype=np.uint32) + 60 for i in range(4)])
    create = dict(chunks=(1, S, F), **hdf5plugin.Bitshuffle(nelems=0, cname="lz4")) if compressed else {}
    path = write_h5(tmp_path / "eiger.h5", {"entry/data/data": frames}, **create)
    with h5py.File(path) as f:
        filters = f["entry/data/data"].id.get_create_plist()
        ids = [filters.get_filter(i)[0] for i in range(filters.get_nfilters())]
    assert ids == ([32008] if compressed else [])  # 32008: bitshuffle (with LZ4)
    stack = read_images(path + ":/entry/data/data", frame=2, adu_per_photon=4.0, pedestal=1.5)
    np.testing.assert_array_equal(stack.data[0], (frames[2].astype(np.float64) - 1.5) / 4.0)
    assert stack.sources == (f"{path}:/entry/data/data[frame 2]",)
    # the only image dataset in the file is found without naming it; frame 0 by default
    np.testing.assert_array_equal(read_images(path).data[0], frames[0])


def test_hdf5_frames_of_panels(tmp_path):
    data = np.stack([np.stack([pattern(1000 * i + 10 * p) for p in range(2)]) for i in range(3)])  # (3, 2, S, F)
    path = write_h5(tmp_path / "jungfrau.h5", {"data": data.astype(np.float32)})
    stack = read_images(f"{path}:data", frame=1, panels=(2, S, F))
    np.testing.assert_array_equal(stack.data, data[1].astype(np.float32).astype(np.float64))
    one_line_error(lambda: read_images(f"{path}:data", frame=None), "jungfrau.h5:/data", "frame")


def test_hdf5_3d_is_frames_unless_said_to_be_panels(tmp_path):
    cube = np.stack([pattern(500 * p) for p in range(3)])
    path = write_h5(tmp_path / "cube.h5", {"cube": cube})
    np.testing.assert_array_equal(read_images(path, frame=1).data, cube[1:2])  # frames by default
    np.testing.assert_array_equal(read_images(path, frame=None).data, cube)  # no frames axis: panels
    np.testing.assert_array_equal(read_images(path, panels=(3, S, F)).data, cube)  # panels says so


def test_nexus_default_is_followed(tmp_path):
    wanted, other = pattern(5), pattern(9000)
    datasets = {"entry/data/frames": wanted, "entry/instrument/detector/flatfield": other}
    nexus = {"/": {"default": "entry"}, "entry": {"default": "data"}, "entry/data": {"signal": "frames"}}
    path = write_h5(tmp_path / "master.nxs", datasets, attrs=nexus)
    stack = read_images(path)
    np.testing.assert_array_equal(stack.data[0], wanted)
    assert stack.sources == (f"{path}:/entry/data/frames",)
    plain = write_h5(tmp_path / "plain.h5", datasets)  # no NeXus attributes: two candidates
    one_line_error(
        lambda: read_images(plain),
        "plain.h5",
        "2 image datasets",
        "/entry/data/frames",
        "/entry/instrument/detector/flatfield",
    )
    # a group named with ':' resolves through its NeXus signal
    np.testing.assert_array_equal(read_images(f"{path}:/entry/data").data[0], wanted)


def test_hdf5_external_link_found_among_candidates(tmp_path):
    frames = np.stack([pattern(i) for i in range(2)])
    write_h5(tmp_path / "data_000001.h5", {"data": frames})
    master = tmp_path / "master.h5"
    with h5py.File(master, "w") as f:
        f["entry/data/data_000001"] = h5py.ExternalLink("data_000001.h5", "/data")
        f["entry/loop"] = h5py.SoftLink("/entry")  # a cycle the search must survive
    stack = read_images(str(master), frame=1)
    np.testing.assert_array_equal(stack.data[0], frames[1])
    assert stack.sources == (f"{master}:/entry/data/data_000001[frame 1]",)


def test_npy_images_and_panel_stacks(tmp_path):
    image = pattern().astype(np.float64) / 8.0
    image[1, 2], image[2, 3], image[3, 4] = np.nan, np.inf, -np.inf
    np.save(tmp_path / "one.npy", image)
    stack = read_images(str(tmp_path / "one.npy"))
    np.testing.assert_array_equal(stack.data[0], image)  # NaN in the same places
    expected_mask = np.isfinite(image)
    np.testing.assert_array_equal(stack.mask[0], expected_mask)
    assert stack.mask.sum() == S * F - 3
    panels = np.stack([pattern(p, dtype=np.int16) for p in range(4)])
    np.save(tmp_path / "four.npy", panels)
    stack = read_images(str(tmp_path / "four.npy"), panels=(4, S, F), pedestal=2.0)
    np.testing.assert_array_equal(stack.data, panels - 2.0)


def test_smv_written_by_fabio(tmp_path):
    counts = (pattern(60) % 65536).astype(np.uint16)
    path = str(tmp_path / "adsc.img")
    fabio.adscimage.AdscImage(data=counts, header={}).write(path)
    assert open(path, "rb").read(12) == b"{\nHEADER_BYT" and b"BYTE_ORDER= little_endian" in open(path, "rb").read()
    assert _image_kind(path) == "smv"
    stack = read_images(path, pedestal=40.0, trusted_range=(0, 65534))
    np.testing.assert_array_equal(stack.data[0], counts - 40.0)
    np.testing.assert_array_equal(stack.mask[0], counts <= 65534)


def test_smv_written_by_nbjax_big_endian(tmp_path):
    counts = (pattern(60) % 65536).astype(np.uint16)
    header = "{\nHEADER_BYTES=512;\nDIM=2;\nBYTE_ORDER=big_endian;\nTYPE=unsigned_short;\n"
    header += f"SIZE1={F};\nSIZE2={S};\n}}\f"
    path = tmp_path / "big.smv"
    path.write_bytes(header.encode().ljust(512, b" ") + counts.astype(">u2").tobytes())
    np.testing.assert_array_equal(read_images(str(path)).data[0], counts)


def test_other_fabio_formats_and_their_frames(tmp_path):
    first, second = pattern(dtype=np.float32) / 4, pattern(77, dtype=np.float32) / 4
    edf = fabio.edfimage.EdfImage(data=first)
    edf.append_frame(data=second)
    path = str(tmp_path / "two.edf")
    edf.write(path)
    assert _image_kind(path) == "fabio"
    np.testing.assert_array_equal(read_images(path).data[0], first)
    stack = read_images(path, frame=1, adu_per_photon=0.25)
    np.testing.assert_array_equal(stack.data[0], second / 0.25)
    assert stack.sources == (f"{path}[frame 1]",)
    one_line_error(lambda: read_images(path, frame=2), "two.edf", "frame 2 out of range", "2 frames")
    tif = str(tmp_path / "one.tif")
    fabio.tifimage.TifImage(data=pattern()).write(tif)
    np.testing.assert_array_equal(read_images(tif).data[0], pattern())


def test_raw_float_shaped_by_panels(tmp_path):
    panels = np.stack([pattern(p, dtype=np.float32) / 3 for p in range(2)])
    path = tmp_path / "floatimage.bin"
    path.write_bytes(panels.astype("<f4").tobytes())
    stack = read_images(str(path), panels=(2, S, F))
    np.testing.assert_array_equal(stack.data, panels.astype(np.float64))
    one_line_error(lambda: read_images(str(path), panels=(3, S, F)), "floatimage.bin", "(3, 6, 7)")


def test_one_file_per_panel_in_order(tmp_path):
    a, b, c = pattern(0), pattern(1), pattern(2)
    np.save(tmp_path / "a.npy", a)
    cbf = write_byte_offset_cbf(tmp_path / "b.cbf", b)
    h5 = write_h5(tmp_path / "c.h5", {"d": np.stack([c + 1, c])})
    files = [str(tmp_path / "a.npy"), cbf, h5]
    stack = read_images(files, panels=(3, S, F), frame=0)
    np.testing.assert_array_equal(stack.data, np.stack([a, b, c + 1]).astype(np.float64))
    assert stack.sources == (files[0], cbf, f"{h5}:/d[frame 0]")
    np.save(tmp_path / "small.npy", pattern(shape=(S, F - 1)))
    one_line_error(
        lambda: read_images([files[0], str(tmp_path / "small.npy")]), "small.npy", "(6, 6)", "(6, 7)", "one file per"
    )
    np.save(tmp_path / "two.npy", np.stack([a, b]))
    one_line_error(lambda: read_images([files[0], str(tmp_path / "two.npy")]), "two.npy", "2 panels")


def test_trusted_range_is_inclusive_raw_adu(tmp_path):
    raw = np.arange(S * F, dtype=np.int32).reshape(S, F) + 100  # 100 ... 141
    np.save(tmp_path / "r.npy", raw)
    stack = read_images(str(tmp_path / "r.npy"), trusted_range=(105, 130), pedestal=100.0, adu_per_photon=2.0)
    np.testing.assert_array_equal(stack.mask[0], (raw >= 105) & (raw <= 130))
    assert stack.mask.sum() == 26
    np.testing.assert_array_equal(stack.data[0], (raw - 100.0) / 2.0)  # masked pixels keep their values


def test_mask_stacks_nonzero_is_usable(tmp_path):
    raw = np.stack([pattern(p) for p in range(2)]).astype(np.float64)
    raw[1, 0, 0] = np.nan
    np.save(tmp_path / "img.npy", raw)
    rng = np.random.default_rng(5)
    levels = rng.integers(0, 3, size=raw.shape).astype(np.uint8)  # 0 masked; 1 and 2 usable
    np.save(tmp_path / "mask.npy", levels)
    stack = read_images(str(tmp_path / "img.npy"), mask=str(tmp_path / "mask.npy"), trusted_range=(-50, 2000))
    expected = (levels != 0) & np.isfinite(raw) & (raw >= -50) & (raw <= 2000)
    np.testing.assert_array_equal(stack.mask, expected)
    assert 0 < stack.mask.sum() < raw.size
    # a DIALS-style boolean mask (True = valid) in an HDF5 file: its 3-D dataset is read as panels
    dials = rng.random(raw.shape) > 0.3
    h5 = write_h5(tmp_path / "mask.h5", {"mask": dials})
    np.testing.assert_array_equal(read_images(str(tmp_path / "img.npy"), mask=h5).mask, dials & np.isfinite(raw))
    # one mask file per panel, as the images; a float mask's NaN masks its pixel
    halves = [dials[0].astype(np.float32), dials[1].astype(np.float32)]
    halves[0][2, 2] = np.nan
    for i, half in enumerate(halves):
        np.save(tmp_path / f"m{i}.npy", half)
    stack = read_images(str(tmp_path / "img.npy"), mask=[str(tmp_path / "m0.npy"), str(tmp_path / "m1.npy")])
    expected = dials & np.isfinite(raw)
    expected[0, 2, 2] = False
    np.testing.assert_array_equal(stack.mask, expected)


# -------------------------------------------------------------------------------- bad input


def test_missing_file(tmp_path):
    one_line_error(lambda: read_images(str(tmp_path / "nope.cbf")), "nope.cbf", "No such file")
    one_line_error(lambda: read_images(f"{tmp_path}/nope.h5:/entry/data/data"), "nope.h5", "No such file")
    np.save(tmp_path / "img.npy", pattern())
    one_line_error(lambda: read_images(str(tmp_path / "img.npy"), mask=str(tmp_path / "m.npy")), "m.npy", "No such")


def test_unknown_dataset_lists_the_candidates(tmp_path):
    path = write_h5(tmp_path / "f.h5", {"entry/data/data": pattern(), "entry/other": pattern()[None], "x": [1, 2]})
    one_line_error(
        lambda: read_images(path + ":/entry/data/dat"),
        "f.h5",
        "no dataset /entry/data/dat",
        "/entry/data/data, /entry/other",
    )
    one_line_error(lambda: read_images(path + ":/entry"), "f.h5:/entry is a group")


def test_frame_out_of_range(tmp_path):
    path = write_h5(tmp_path / "f.h5", {"d": np.stack([pattern()] * 3)})
    one_line_error(lambda: read_images(path, frame=3), "f.h5:/d", "frame 3 out of range", "3 frames")
    np.save(tmp_path / "one.npy", pattern())
    one_line_error(lambda: read_images(str(tmp_path / "one.npy"), frame=1), "one.npy", "frame 1 out of range")
    cbf = write_byte_offset_cbf(tmp_path / "one.cbf", pattern())
    one_line_error(lambda: read_images(cbf, frame=1), "one.cbf", "frame 1 out of range")
    one_line_error(lambda: read_images(cbf, frame=-1), "frame=-1")


def test_wrong_panel_shape_names_the_file_and_both_shapes(tmp_path):
    np.save(tmp_path / "p.npy", np.stack([pattern()] * 2))
    one_line_error(
        lambda: read_images(str(tmp_path / "p.npy"), panels=(2, S, F + 1)), "p.npy", "(2, 6, 7)", "panels=(2, 6, 8)"
    )
    one_line_error(lambda: read_images(str(tmp_path / "p.npy"), panels=(2, S)), "panels=(2, 6)")


def test_mask_of_another_shape(tmp_path):
    np.save(tmp_path / "img.npy", pattern())
    np.save(tmp_path / "m.npy", np.ones((S + 1, F), bool))
    one_line_error(
        lambda: read_images(str(tmp_path / "img.npy"), mask=str(tmp_path / "m.npy")),
        "mask",
        "m.npy",
        "(1, 7, 7)",
        "(1, 6, 7)",
    )


def test_mask_conventions_that_are_refused(tmp_path):
    np.save(tmp_path / "img.npy", pattern())
    path = write_h5(tmp_path / "m.h5", {"entry/instrument/detector/pixel_mask": np.zeros((S, F), np.uint32)})
    one_line_error(
        lambda: read_images(str(tmp_path / "img.npy"), mask=path + ":/entry/instrument/detector/pixel_mask"),
        "pixel_mask",
        "non-zero = bad",
    )
    (tmp_path / "mask.pickle").write_bytes(b"not read")
    one_line_error(
        lambda: read_images(str(tmp_path / "img.npy"), mask=str(tmp_path / "mask.pickle")), "mask.pickle", "cctbx"
    )


def test_non_numeric_data(tmp_path):
    path = tmp_path / "s.h5"
    with h5py.File(path, "w") as f:
        f["names"] = np.array([[b"ab", b"cd"], [b"ef", b"gh"]])
    one_line_error(lambda: read_images(f"{path}:/names"), "s.h5:/names", "not numbers")
    np.save(tmp_path / "u.npy", np.array([["a", "b"], ["c", "d"]]))
    one_line_error(lambda: read_images(str(tmp_path / "u.npy")), "u.npy", "<U1", "not numbers")


def test_corrupt_files(tmp_path):
    (tmp_path / "bad.h5").write_bytes(b"this is not HDF5 at all" * 10)
    one_line_error(lambda: read_images(str(tmp_path / "bad.h5")), "bad.h5", "not a readable HDF5 file")
    np.save(tmp_path / "full.npy", pattern())
    (tmp_path / "cut.npy").write_bytes((tmp_path / "full.npy").read_bytes()[:140])
    one_line_error(lambda: read_images(str(tmp_path / "cut.npy")), "cut.npy", "not a readable .npy")
    good = open(write_byte_offset_cbf(tmp_path / "good.cbf", pattern()), "rb").read()
    (tmp_path / "cut.cbf").write_bytes(good[: good.index(b"\x0c\x1a\x04\xd5") + 20])
    one_line_error(lambda: read_images(str(tmp_path / "cut.cbf")), "cut.cbf", "fabio cannot read this CBF")
    (tmp_path / "empty.cbf").write_bytes(b"###CBF: VERSION 1.5\ndata_x\n_array_data.header_convention X\n")
    one_line_error(lambda: read_images(str(tmp_path / "empty.cbf")), "empty.cbf", "no CBF binary section")
    (tmp_path / "junk.edf").write_bytes(b"junk" * 50)
    one_line_error(lambda: read_images(str(tmp_path / "junk.edf")), "junk.edf", "fabio cannot read it")


def test_corrupt_packed_cbf(tmp_path):
    good = open(write_packed_cbf(tmp_path / "good.cbf", [pattern()]), "rb").read()
    start = good.index(b"\x0c\x1a\x04\xd5") + 4
    damaged = bytearray(good)
    damaged[start + 30 : start + 40] = b"\xff" * 10  # the MD5 digest no longer matches
    (tmp_path / "damaged.cbf").write_bytes(bytes(damaged))
    one_line_error(lambda: read_images(str(tmp_path / "damaged.cbf")), "damaged.cbf", "pycbf cannot read this CBF")


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        (dict(adu_per_photon=0.0), "adu_per_photon=0.0"),
        (dict(adu_per_photon=float("nan")), "adu_per_photon=nan"),
        (dict(pedestal="x"), "pedestal='x'"),
        (dict(trusted_range=(5, 1)), "trusted_range=(5, 1)"),
        (dict(trusted_range=3), "trusted_range=3"),
        (dict(frame=1.5), "frame=1.5"),
    ],
)
def test_bad_arguments_name_themselves(tmp_path, kwargs, words):
    np.save(tmp_path / "img.npy", pattern())
    one_line_error(lambda: read_images(str(tmp_path / "img.npy"), **kwargs), words)
    one_line_error(lambda: read_images([]), "empty list")


def test_dataset_path_on_a_file_that_is_not_hdf5(tmp_path):
    np.save(tmp_path / "img.npy", pattern())
    one_line_error(lambda: read_images(f"{tmp_path}/img.npy:/data"), "img.npy:/data", "HDF5")


def test_cli_prints_one_error_line_for_a_corrupt_data_file(tmp_path, capsys):
    from nbjax.cli.main import main

    (tmp_path / "bad.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 40)
    args = ["fit", "-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100", "-N", "2"]
    args += ["-detpixels", "8", "-data", str(tmp_path / "bad.h5"), "-free", "scale", "-noprogress"]
    with pytest.raises(SystemExit) as stop:
        main(args)
    err = capsys.readouterr().err
    assert stop.value.code == 2
    lines = [line for line in err.splitlines() if line.startswith("nbjax: error:")]
    assert len(lines) == 1 and "bad.h5: not a readable HDF5 file" in lines[0], err
    assert "Traceback" not in err


def test_importing_the_reader_imports_no_format_library():
    code = (
        "import sys, nbjax.io.images; "
        "print(sorted(m for m in ('fabio', 'h5py', 'hdf5plugin', 'pycbf', 'jax') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ------------------------------------------------------------- the fit's observation() reads through it


def test_observation_of_an_smv_noise_image(tmp_path):
    from nbjax.fit import observation

    counts = (pattern(60) % 65536).astype(np.uint16)
    counts[2, 2] = 65535  # an overload
    header = f"{{\nHEADER_BYTES=512;\nDIM=2;\nBYTE_ORDER=little_endian;\nSIZE1={F};\nSIZE2={S};\n}}\f"
    path = tmp_path / "noiseimage.img"
    path.write_bytes(header.encode().ljust(512, b" ") + counts.astype("<u2").tobytes())
    obs = observation(str(path), (S, F), adc=40.0, roi=(1, 5, 0, 4))
    np.testing.assert_array_equal(np.asarray(obs.image), counts - 40.0)
    fast, slow = np.meshgrid(np.arange(F), np.arange(S))
    expected = (counts < 65535) & (fast >= 1) & (fast <= 5) & (slow <= 4)
    np.testing.assert_array_equal(np.asarray(obs.mask), expected)
    assert obs.name == "noiseimage.img"


def test_observation_of_other_formats_masks_negative_pixels(tmp_path):
    from nbjax.fit import observation

    raw = pattern().astype(np.float64)
    path = write_h5(tmp_path / "obs.h5", {"entry/data/data": raw[None], "entry/data/dark": raw[None] - 5})
    np.save(tmp_path / "fitmask.npy", (np.arange(S * F).reshape(S, F) % 3 != 0).astype(np.int8))
    mask_file = str(tmp_path / "fitmask.npy")
    obs = observation(path + ":/entry/data/data", (S, F), adc=40.0, mask_file=mask_file, mask_value=24.0)
    np.testing.assert_array_equal(np.asarray(obs.image), raw)  # no adc outside SMV
    expected = (raw >= 0) & (np.arange(S * F).reshape(S, F) % 3 != 0) & (raw != 24.0)
    np.testing.assert_array_equal(np.asarray(obs.mask), expected)
    assert 0 < expected.sum() < S * F
    one_line_error(lambda: observation(path + ":/entry/data/data", (S, F + 1)), "obs.h5", "7x6", "8x6")
    one_line_error(lambda: observation(path, (S, F)), "obs.h5", "2 image datasets", "/entry/data/dark")
    one_line_error(lambda: observation(str(tmp_path / "none.h5"), (S, F)), "none.h5", "No such file")
    floats = tmp_path / "floatimage.bin"
    floats.write_bytes((raw / 8).astype("<f4").tobytes())
    np.testing.assert_array_equal(np.asarray(observation(str(floats), (S, F)).image), (raw / 8).astype(np.float32))
