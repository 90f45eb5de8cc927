"""nanoBragg's tables have one home (nbjax.ctables) and their users import it without JAX.

Also: the two argv walkers that read those rows (the CLI's ``parse_argv``, which applies them,
and the bridge's ``cflags.parse``, which simulates C without nbjax's handlers) are deliberate
copies of C's loop; they must fire the same handlers on every command line.
"""

import subprocess
import sys

import pytest

from nbjax.cli import flags
from nbjax.ctables import argv as ctable
from nbjax_bridge import cflags


def _python(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_tables_and_bridge_import_without_jax():
    out = _python(
        "import sys\n"
        "import nbjax.ctables.argv, nbjax.ctables.conventions, nbjax.ctables.constants, nbjax.roi, nbjax.io.smv, "
        "nbjax.io.pgm\n"
        "import nbjax.cli.flags, nbjax.settings\n"
        "import nbjax_bridge.cli, nbjax_bridge.lint, nbjax_bridge.metrics, nbjax_bridge.inputs\n"
        "print(sorted(m for m in sys.modules if m == 'jax' or m.startswith('jax.')))\n"
    )
    assert out == "[]"


def test_import_nbjax_leaves_jax_config_alone():
    """``import nbjax`` (and touching its public names) does not turn on 64-bit mode; building
    an Experiment without it is a clear error naming the fix."""
    out = _python(
        "import jax, nbjax\n"
        "nbjax.render, nbjax.Experiment, nbjax.lattice_from_cell\n"
        "print(jax.config.jax_enable_x64)\n"
        "try:\n"
        "    nbjax.experiment_from_args(['-cell', '100', '100', '100', '90', '90', '90', '-default_F', '1'])\n"
        "except nbjax.errors.NBError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    first, second = out.splitlines()
    assert first == "False"
    assert second.startswith("X64Error ") and "jax.config.update('jax_enable_x64', True)" in second


def test_backend_without_float64_is_refused_in_one_line(monkeypatch, tmp_path, capsys):
    """On a backend without float64 (TPU) a render or set-up is refused with one line naming
    the backend and the way out, from the library and from the command line (non-zero exit, no file written)."""
    import jax

    import nbjax
    from nbjax.cli.main import main

    monkeypatch.setattr(jax, "default_backend", lambda: "tpu")
    with pytest.raises(nbjax.errors.NBError, match="TPU, which has no float64") as info:
        nbjax.experiment_from_args(["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "1"])
    assert "\n" not in str(info.value) and "JAX_PLATFORMS=cpu" in str(info.value)
    out_file = tmp_path / "x.bin"
    with pytest.raises(SystemExit) as code:
        main(
            [
                "-default_F",
                "1",
                "-cell",
                "100",
                "100",
                "100",
                "90",
                "90",
                "90",
                "-detpixels",
                "8",
                "-floatfile",
                str(out_file),
            ]
        )
    err = capsys.readouterr().err
    assert code.value.code != 0 and "no float64" in err and len(err.strip().splitlines()) == 1
    assert not out_file.exists()


def test_public_names_resolve_to_their_modules():
    import nbjax
    from nbjax import experiment, kernel
    from nbjax.setup import crystal

    assert nbjax.render is kernel.render and nbjax.Experiment is experiment.Experiment
    assert nbjax.lattice_from_cell is crystal.lattice_from_cell
    assert all(hasattr(nbjax, name) for name in nbjax.__all__)
    assert set(nbjax.__all__) <= set(dir(nbjax))
    with pytest.raises(AttributeError):
        nbjax.no_such_name  # noqa: B018


def test_every_row_fires_on_its_own_name():
    for row in ctable.PREPASS + ctable.C_OPTIONS + ctable.NBJAX_OPTIONS:
        if row.patterns[0].rule == ctable.LONGER:  # C's -stolout needs a longer token: -stolout itself never fires
            assert not row.matches(row.name) and row.matches(row.name + "x"), row.name
        else:
            assert row.matches(row.name), row.name
    names = [row.name for row in ctable.C_OPTIONS]
    assert len(names) == len(set(names))
    # nbjax's own flags are invisible to C's patterns
    for row in ctable.NBJAX_OPTIONS:
        assert not any(c.matches(row.name) for c in ctable.C_OPTIONS), row.name


def _cli_firings(argv: list[str]) -> list[tuple[str, str]]:
    """(token, row name) of every CLI handler that fires while parse_argv walks ``argv``, in order."""
    fired: list[tuple[str, str]] = []

    def recording(flag):
        def apply(s, values, token):
            result = flag.apply(s, values, token)
            if flag.row.name != "-misset random" or result is True:
                fired.append((token, flag.row.name))
            return result

        return flags.Flag(flag.row, apply)

    saved = flags.FLAGS, flags.NBJAX_FLAGS
    flags.FLAGS, flags.NBJAX_FLAGS = (tuple(recording(f) for f in table) for table in saved)
    try:
        settings = flags.parse_argv(argv, flags.RunSettings())
    finally:
        flags.FLAGS, flags.NBJAX_FLAGS = saved
    # nbjax never calls a token unknown that one of C's handlers (pre-pass included) fires on,
    # C's off-by-one handlers aside (nbjax does not fire them without their value)
    fired_in_c = {f.token for f in cflags.parse(argv).firings if f.handler.c_needs >= f.handler.values}
    assert not [w for w in settings.warnings if any(f"flag {t} " in w for t in fired_in_c)]
    return fired


COMMAND_LINES = [
    ["-twotheta_axis", "1", "0", "0", "-N", "2"],
    ["-misset_seed", "7", "1", "2", "-misset", "random", "-misset", "1", "2", "3"],
    ["-mosaicity", "0.5", "-mosaic_domains", "3", "-mosaic", "1", "-mosaic_spread", "2"],
    ["-sample_width", "1", "-xtal_height", "2", "-width", "3", "-MW", "5", "-molecules", "4"],
    ["-detpixels", "64", "-detpixels_x", "32", "-detsize", "10", "-detsize_f", "5", "-pixel", "0.2"],
    ["-detector_absorb", "50", "-detector_thick", "100", "-thicksteps", "3", "-detector_thickness", "9"],
    ["-stol", "a", "-stolout", "b", "-4stol", "c", "-Q", "d", "-dump_pixel", "1", "-img", "x.img"],
    ["-printout_pixel", "3", "4", "-oversample_thick", "-oversample", "2", "-polar", "0.5", "-nopolar"],
    ["-phi", "1", "-phistep", "0.1", "-phisteps", "3", "-hdivstep", "1", "-vdivsteps", "2", "-curved_det", "x"],
    ["-cell", "10", "20", "-mosflm", "-xds", "-lambda", "1", "-wavelength", "2", "-energy", "9000"],
    ["-roi", "1", "2", "3", "4", "-N", "3"],
    ["-mask", "m.img", "-trace_pixel", "1", "-precision", "single", "-nosuchflag"],
]


@pytest.mark.parametrize("argv", COMMAND_LINES, ids=lambda a: a[0])
def test_cli_walker_and_bridge_simulator_fire_the_same_handlers(argv):
    # the bridge records -img once, from C's pre-pass; C's main loop fires it again (no effect)
    nbjax_only = {row.name for row in ctable.NBJAX_OPTIONS}
    cli = [(token, name) for token, name in _cli_firings(argv) if name not in nbjax_only]
    assert cli == [(f.token, f.name) for f in cflags.parse(argv).firings]


def test_off_by_one_handlers_fire_in_c_but_not_in_nbjax_when_last():
    """C tests argc >= i+1 for these and reads argv[argc] (NULL) when the flag is last; nbjax
    requires the value (the one deliberate difference between the two walkers)."""
    from nbjax.errors import NBError

    for name in ("-detector_abs", "-detector_thick", "-detector_thicksteps", "-thicksteps"):
        assert [f.name for f in cflags.parse(["-N", "1", name]).firings][-1] == name
        with pytest.raises(NBError, match=f"{name} needs 1 value, got none"):
            _cli_firings(["-N", "1", name])
