"""``-spectrum FILE``: the reader (units by header or magnitude, one-line errors naming file and
line) and the sources it makes, against an equivalent ``-sourcefile`` rendered bit for bit in
both modes."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import nbjax
from nbjax.cli.flags import parse_argv
from nbjax.cli.main import main
from nbjax.errors import NBError
from nbjax.io.spectrum import read_spectrum
from nbjax.settings import RunSettings
from nbjax.setup import build, workload

HC = 12398.42  # eV A, the C program's -energy literal (written out: an independent value)
ENERGIES = (9400.0, 9475.5, 9500.0, 9612.25)
WEIGHTS = (0.5, 1.0, 2.25, 0.125)
BASE = [
    "-cell",
    "60",
    "70",
    "80",
    "90",
    "90",
    "90",
    "-misset",
    "10",
    "-20",
    "30",
    "-default_F",
    "100",
    "-N",
    "5",
    "-detpixels",
    "32",
    "-pixel",
    "0.4",
    "-distance",
    "60",
    "-oversample",
    "2",
    "-lambda",
    "1.3",
    "-polar",
    "0.6",
]


def _write(path, text):
    path.write_text(text)
    return str(path)


def _ev_file(tmp_path, header="# eV\n"):
    rows = "".join(f"{e!r} {w!r}\n" for e, w in zip(ENERGIES, WEIGHTS, strict=True))
    return _write(tmp_path / "ev.txt", f"# measured spectrum\n{header}\n{rows}")


def _angstrom_file(tmp_path, header="# Angstrom\n"):
    rows = "".join(f"{HC / e!r}, {w!r}   # channel\n" for e, w in zip(ENERGIES, WEIGHTS, strict=True))
    return _write(tmp_path / "a.txt", f"{header}{rows}")


def _source_file(tmp_path, beam=None):
    """The equivalent nanoBragg source file: every channel -10 m along the beam (the MOSFLM beam
    +x unless given), its weight and its wavelength in metres (as -energy converts:
    (12398.42/E)/1e10)."""
    pos = "-10 0 0" if beam is None else " ".join(repr(-10.0 * float(b)) for b in beam)
    rows = "".join(f"{pos} {w!r} {(HC / e) / 1.0e10!r}\n" for e, w in zip(ENERGIES, WEIGHTS, strict=True))
    return _write(tmp_path / "sources.txt", rows)


def test_units_by_header_and_by_magnitude_give_the_same_channels(tmp_path):
    expected = np.array([(HC / e) / 1.0e10 for e in ENERGIES])
    files = {
        "eV header": _ev_file(tmp_path),
        "A header": _angstrom_file(tmp_path),
    }
    (tmp_path / "m").mkdir()
    files["eV magnitude"] = _ev_file(tmp_path / "m", header="")
    (tmp_path / "n").mkdir()
    files["A magnitude"] = _angstrom_file(tmp_path / "n", header="# wavelength weight\n")
    sources = {"eV header": "header line 2", "A header": "header line 1"}
    for name, path in files.items():
        channels = read_spectrum(path)
        np.testing.assert_array_equal(channels.wavelengths, expected, err_msg=name)
        np.testing.assert_array_equal(channels.weights, WEIGHTS, err_msg=name)
        assert channels.unit == ("eV" if name.startswith("eV") else "A"), name
        assert channels.unit_source == sources.get(name, "magnitude"), name
    assert read_spectrum(files["eV header"]).lines == (4, 5, 6, 7)
    # the weighted mean wavelength, computed independently
    lam = np.array([HC / e for e in ENERGIES]) * 1e-10
    w = np.array(WEIGHTS)
    assert read_spectrum(files["eV header"]).mean_wavelength() == pytest.approx(np.sum(w * lam) / np.sum(w), rel=1e-15)


@pytest.mark.parametrize(
    "header, unit",
    [("# eV", "eV"), ("#EV", "eV"), ("# unit: eV", "eV"), ("# A", "A"), ("# Å", "A"), ("# units = angstroms", "A")],
)
def test_unit_headers_override_the_magnitude(header, unit, tmp_path):
    # 50 and 60 are wavelengths by magnitude: the header decides
    path = _write(tmp_path / "s.txt", f"{header}\n50 1\n60 2\n")
    channels = read_spectrum(path)
    assert channels.unit == unit and channels.unit_source == "header line 1"
    values = np.array([50.0, 60.0])
    np.testing.assert_array_equal(channels.wavelengths, (HC / values) / 1.0e10 if unit == "eV" else values / 1.0e10)


@pytest.mark.parametrize(
    "text, physical, message",
    [
        ("1.0 1\nabc 2\n", False, "line 2: 'abc' is not a number"),
        ("1.0 1\n1.1 nan\n", False, "line 2: 'nan' is not a finite number"),
        ("# A\n1.0 1\n-1.0 1\n", False, "line 3: wavelength -1 A must be positive"),
        ("# eV\n9500 1\n0 1\n", False, "line 3: photon energy 0 eV must be positive"),
        ("9500 1\n-5 1\n", False, "line 2: photon energy -5 eV must be positive"),  # by the first line's magnitude
        (
            "1.0 1\n1.1 -0.5\n",
            True,
            "line 2: weight -0.5 is negative; -physical honours the weights, which must be >= 0",
        ),
        ("1.0 1 7\n", False, "line 1: expected 2 columns (wavelength in A or energy in eV, weight), found 3"),
        ("\n\n1.0\n", False, "line 3: expected 2 columns (wavelength in A or energy in eV, weight), found 1"),
        ("# eV\n# A\n1 1\n", False, "line 2: unit 'A' contradicts '# eV' on line 1"),
        (
            "1.0 1\n9500 1\n",
            False,
            "line 2: 9500 and line 1's 1 are on both sides of 100 (values > 100 are eV, others A); add a '# eV' or "
            "'# A' header line",
        ),
        ("", False, None),
        ("# only a comment\n\n", False, None),
    ],
)
def test_bad_spectrum_files_are_one_line_errors_naming_file_and_line(text, physical, message, tmp_path):
    path = _write(tmp_path / "bad.txt", text)
    with pytest.raises(NBError) as info:
        read_spectrum(path, nonnegative_weights=physical)
    if message is None:
        message = "no spectrum channels (expected lines of: wavelength in A or energy in eV, weight)"
        assert str(info.value) == f"{path}: {message}"
    else:
        assert str(info.value) == f"{path} {message}"
    assert "\n" not in str(info.value)


def test_negative_weights_are_ignored_in_c_mode_and_refused_by_the_cli_in_physical_mode(tmp_path, monkeypatch, capsys):
    path = _write(tmp_path / "neg.txt", "# A\n1.0 1\n1.1 -0.5\n")
    assert read_spectrum(path).weights.tolist() == [1.0, -0.5]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "floatimage.bin").write_bytes(b"old")
    with pytest.raises(SystemExit) as stop:
        main(BASE + ["-spectrum", path, "-physical", "-noprogress"])
    err = capsys.readouterr().err
    assert stop.value.code == 2
    assert err.splitlines() == [
        f"nbjax: error: {path} line 3: weight -0.5 is negative; -physical honours the weights, which must be >= 0"
    ]
    assert (tmp_path / "floatimage.bin").read_bytes() == b"old" and not (tmp_path / "intimage.img").exists()


@pytest.mark.parametrize("physical", [False, True], ids=["c-compatible", "physical"])
@pytest.mark.parametrize("beam", [None, (0.08, -0.05, 0.9955)], ids=["mosflm", "custom-beam"])
def test_spectrum_renders_as_the_equivalent_source_file_bit_for_bit(physical, beam, tmp_path):
    extra = [] if beam is None else ["-beam_vector", *map(repr, beam)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exp_s = nbjax.experiment_from_args(BASE + extra + ["-spectrum", _ev_file(tmp_path)], physical=physical)
        unit_beam = np.asarray(exp_s.detector.beam)
        source_file = _source_file(tmp_path, None if beam is None else unit_beam)
        exp_f = nbjax.experiment_from_args(BASE + extra + ["-sourcefile", source_file], physical=physical)
    for leaf in ("directions", "wavelengths", "weights"):
        np.testing.assert_array_equal(getattr(exp_s.beam, leaf), getattr(exp_f.beam, leaf), err_msg=leaf)
    np.testing.assert_array_equal(exp_s.beam.weights, WEIGHTS)
    np.testing.assert_array_equal(exp_s.beam.directions, np.tile(-unit_beam, (len(ENERGIES), 1)))
    image_s, image_f = np.asarray(nbjax.render(exp_s)), np.asarray(nbjax.render(exp_f))
    assert image_s.max() > 0
    np.testing.assert_array_equal(image_s, image_f)
    quirk = [str(w.message) for w in caught if "source weights differ" in str(w.message)]
    assert len(quirk) == (0 if physical else 2), [str(w.message) for w in caught]  # C mode: ignored, and said so
    assert sum("wavelength column" in str(w.message) for w in caught) == (0 if physical else 1)  # the source file's


def test_weights_ignored_in_c_mode_honoured_in_physical_mode(tmp_path):
    """C mode: the image of the weighted spectrum equals that of equal weights; physical mode:
    it does not, and equals sum_s w_s I_s / sum_s w_s over single-channel renders."""
    weighted = _ev_file(tmp_path)
    (tmp_path / "eq").mkdir()
    rows = "".join(f"{e!r} 1\n" for e in ENERGIES)
    equal = _write(tmp_path / "eq" / "s.txt", "# eV\n" + rows)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c_w = np.asarray(nbjax.render(nbjax.experiment_from_args(BASE + ["-spectrum", weighted])))
        c_e = np.asarray(nbjax.render(nbjax.experiment_from_args(BASE + ["-spectrum", equal])))
    np.testing.assert_array_equal(c_w, c_e)
    p_w = np.asarray(nbjax.render(nbjax.experiment_from_args(BASE + ["-spectrum", weighted], physical=True)))
    singles = []
    for k, e in enumerate(ENERGIES):
        one = _write(tmp_path / f"one{k}.txt", f"# eV\n{e!r} 1\n")
        singles.append(np.asarray(nbjax.render(nbjax.experiment_from_args(BASE + ["-spectrum", one], physical=True))))
    w = np.array(WEIGHTS)
    expected = np.tensordot(w / w.sum(), np.array(singles), axes=1)
    np.testing.assert_allclose(p_w, expected, rtol=1e-12, atol=1e-12 * expected.max())
    assert np.max(np.abs(p_w - c_e)) > 1e-3 * c_e.max()


def _settings(args):
    s = RunSettings()
    parse_argv(args, s)
    return s


def test_nominal_wavelength_is_the_weighted_mean_unless_given(tmp_path):
    path = _ev_file(tmp_path)
    lam = np.array([(HC / e) / 1.0e10 for e in ENERGIES])
    w = np.array(WEIGHTS)
    no_lambda = [a for a in BASE if a not in ("-lambda", "1.3")]
    header = build(_settings(no_lambda + ["-spectrum", path])).header
    assert header.lambda0_m == pytest.approx(np.sum(w * lam) / np.sum(w), rel=1e-15)
    assert build(_settings(BASE + ["-spectrum", path])).header.lambda0_m == 1.3 / 1.0e10  # as C's -lambda
    assert build(_settings(no_lambda + ["-energy", "9000", "-spectrum", path])).header.lambda0_m == (HC / 9000) / 1e10
    s = _settings(no_lambda + ["-spectrum", path])
    assert workload.source_count(s, (1, 0, 0), (1, 0, 0), (1, 0, 0)) == len(ENERGIES)
    assert s.lambda0 == 1e-10  # set-up does not change the caller's settings


@pytest.mark.parametrize(
    "extra, named",
    [
        (["-sourcefile", "SRC"], "-sourcefile SRC"),
        (["-divergence", "1"], "-divergence 1"),
        (["-dispersion", "2", "-dispsteps", "3"], "-dispersion 2, -dispsteps 3"),
        (["-hdivsteps", "3"], "-hdivsteps 3"),
    ],
)
def test_spectrum_refuses_source_files_and_grids(extra, named, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _source_file(tmp_path)
    extra = ["sources.txt" if a == "SRC" else a for a in extra]
    with pytest.raises(NBError) as info:
        nbjax.experiment_from_args(BASE + ["-spectrum", _ev_file(tmp_path)] + extra)
    assert str(info.value) == (
        f"-spectrum cannot be combined with {named.replace('SRC', 'sources.txt')}: the spectrum's channels are the "
        "sources (one along the beam per channel)"
    )


def test_cli_spectrum_prints_its_channels_and_writes_the_source_file_image(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    path = _ev_file(tmp_path)
    args = BASE + ["-noprogress", "-nonoise", "-nopgm", "-physical"]
    with pytest.raises(SystemExit) as stop:
        main(args + ["-spectrum", path, "-floatfile", "s.bin"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert f"reading {path}: 4 channels in eV (header line 2)" in out.splitlines()
    assert "  created a total of 4 sources:" in out and "  -1 divergence steps" in out
    with pytest.raises(SystemExit) as stop:
        main(args + ["-sourcefile", _source_file(tmp_path), "-floatfile", "f.bin"])
    assert stop.value.code == 0
    assert (tmp_path / "s.bin").read_bytes() == (tmp_path / "f.bin").read_bytes()


def test_missing_file_and_help_text(tmp_path):
    from nbjax.cli.flags import usage_text

    with pytest.raises(NBError) as info:
        read_spectrum(tmp_path / "none.txt")
    assert str(info.value) == f"cannot read {tmp_path / 'none.txt'}: No such file or directory"
    help_line = next(line for line in usage_text().splitlines() if line.lstrip().startswith("-spectrum "))
    assert "'# eV' / '# A' header line, else values > 100 are eV" in help_line and "12398.42/E" in help_line
    s = _settings(["-spectrum", "s.txt", "-mtz", "f.mtz", "-mtz_column", "I(+)"])
    assert (s.spectrumfile, s.mtzfile, s.mtz_column, s.warnings) == ("s.txt", "f.mtz", "I(+)", [])
