"""The bench's fixed workloads (see nbjax.bench) and how each is timed."""

from __future__ import annotations

import time
from dataclasses import dataclass

CRYSTAL = [
    "-cell",
    "100",
    "100",
    "100",
    "90",
    "90",
    "90",
    "-default_F",
    "100",
    "-N",
    "5",
    "-lambda",
    "1",
    "-distance",
    "100",
]
DIV5 = ("-divergence", "1.0", "-divsteps", "5", "-square_div")
DIV10 = ("-divergence", "1.0", "-divsteps", "10", "-square_div")
OS1 = ("-oversample", "1")  # nanoBragg would choose its own oversampling otherwise


@dataclass(frozen=True)
class Workload:
    description: str
    kind: str  # "render", "batch" or "fit"
    pixels: int
    pixels_quick: int
    extra: tuple = ()
    images: int = 1
    images_quick: int = 1

    def args(self, quick: bool, pixels: int | None = None) -> list[str]:
        n = pixels or (self.pixels_quick if quick else self.pixels)
        return CRYSTAL + ["-detpixels", str(n)] + list(self.extra)


WORKLOADS = {
    "1024_1src": Workload("1024^2 x 1 source", "render", 1024, 64, OS1),
    "1024_25src_os2": Workload("1024^2 x 25 sources, oversample 2", "render", 1024, 48, DIV5 + ("-oversample", "2")),
    "4096_100src": Workload("4096^2 x 100 sources", "render", 4096, 32, DIV10 + OS1),
    "batch64_256": Workload(
        "batch of 64 x 256^2, orientations and spectra",
        "batch",
        256,
        32,
        ("-dispersion", "2", "-dispsteps", "3") + OS1,
        64,
        4,
    ),
    "fit_step": Workload("one fit step, 128^2", "fit", 128, 32, OS1),
}
OVERHEAD_PIXELS = 64
PROBE_PIXELS = 16  # cost-analysis detector: one tile, so loop bodies are counted once = exactly


def samples_per_image(exp) -> int:
    """Evaluations per image: pixels x sub-pixels x sources x phi x mosaic domains x layers."""
    return int(exp.detector.fpixels * exp.detector.spixels * exp.samples_per_pixel)


def timed(fn, repeat: int, budget_s: float = 60.0):
    """(first call seconds, min of up to ``repeat`` warm calls, kept under ``budget_s``)."""
    import jax

    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    first = time.perf_counter() - t0
    best, spent = float("inf"), 0.0
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        dt = time.perf_counter() - t0
        best, spent = min(best, dt), spent + dt
        if spent > budget_s:
            break
    return first, best


def renderer(dtype, devices=None):
    """The whole render as one compiled program, with the backend's compiler options (as
    ``nbjax.render`` applies them), its tiles split over ``devices`` local devices (None: all,
    as the ``nbjax`` command does; on a CPU that is one host device per core)."""
    import jax

    import nbjax
    from nbjax.kernel import compiler_options

    return jax.jit(lambda e: nbjax.render(e, dtype=dtype, devices=devices), compiler_options=compiler_options())


def batch_experiments(args: list[str], count: int):
    """``count`` Experiments like ``args``, each with its own misset and wavelength."""
    import numpy as np

    import nbjax

    rng = np.random.default_rng(0)
    exps = []
    for i in range(count):
        angles = [f"{a:.3f}" for a in rng.uniform(-30.0, 30.0, 3)]
        lam = f"{0.9 + 0.2 * i / max(count - 1, 1):.4f}"
        argv = list(args)
        argv[argv.index("-lambda") + 1] = lam
        exps.append(nbjax.experiment_from_args(argv + ["-misset", *angles]))
    return exps


def stack(exps):
    """One Experiment whose array leaves have a leading batch axis."""
    import jax
    import jax.numpy as jnp

    return jax.tree.map(lambda *xs: jnp.stack(xs), *exps)


def grad_ratio(args: list[str], dtype, repeat: int) -> dict:
    """Warm time of value_and_grad of sum(image^2) w.r.t. beam wavelengths and directions,
    over the warm time of the forward sum alone."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    import nbjax

    exp = nbjax.experiment_from_args(args)

    def loss(wavelengths, directions, e):
        e = eqx.tree_at(lambda x: (x.beam.wavelengths, x.beam.directions), e, (wavelengths, directions))
        return jnp.sum(nbjax.render(e, dtype=dtype) ** 2)

    forward = jax.jit(loss)
    both = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
    wl, dirs = exp.beam.wavelengths, exp.beam.directions
    _, t_fwd = timed(lambda: forward(wl, dirs, exp), repeat)
    _, t_vg = timed(lambda: both(wl, dirs, exp), repeat)
    return {"forward_s": t_fwd, "value_and_grad_s": t_vg, "ratio": t_vg / t_fwd}


def bench_render(w: Workload, quick: bool, dtype, repeat: int) -> dict:
    import nbjax

    exp = nbjax.experiment_from_args(w.args(quick))
    render = renderer(dtype)
    first, warm = timed(lambda: render(exp), repeat)
    return {"first_s": first, "warm_s": warm, "images": 1, "samples": samples_per_image(exp), "notes": []}


def bench_batch(w: Workload, quick: bool, dtype, repeat: int) -> dict:
    import nbjax

    count = w.images_quick if quick else w.images
    exps = batch_experiments(w.args(quick), count)
    if hasattr(nbjax, "render_batch"):
        stacked = stack(exps)
        first, warm = timed(lambda: nbjax.render_batch(stacked, dtype=dtype), repeat)
        _, separate = timed(lambda: [nbjax.render(e, dtype=dtype) for e in exps], repeat)
        notes = [
            f"one nbjax.render_batch call: {separate / warm:.2f}x the throughput of {count} separate warm "
            f"nbjax.render calls ({separate:.3f} s)"
        ]
    else:
        render = renderer(dtype)
        first, warm = timed(lambda: [render(e) for e in exps], repeat)
        notes = [f"nbjax.render_batch not available: {count} separate renders"]
    return {
        "first_s": first,
        "warm_s": warm,
        "images": count,
        "samples": count * samples_per_image(exps[0]),
        "notes": notes,
    }


def bench_fit(w: Workload, quick: bool, dtype, repeat: int) -> dict:
    """One Levenberg-Marquardt step of a spectrum fit (weights, wavelengths, source angles and
    scale of every source: one Fisher/gradient pass and the solve), and the one-pass
    loss + gradient the optax methods use, on a physical-mode image."""
    import jax.numpy as jnp
    import numpy as np

    import nbjax
    import nbjax.fit as nf

    exp = nbjax.experiment_from_args(w.args(quick), physical=True)
    image = np.asarray(renderer(dtype)(exp), np.float64)
    obs = nf.Observation(image=image * (1000.0 / max(image.max(), 1e-300)) + 1.0, mask=np.ones(image.shape, bool))
    problem = nf.build_problem(exp, obs, [nf.Weights(), nf.Wavelengths(), nf.SourceAngles(), nf.Scale()], dtype=dtype)
    theta = jnp.asarray(problem.theta0, dtype)

    def lm_step():
        L, g, F = problem.objective.normal(theta)
        return nf.LevenbergMarquardt.damped_step(F, g, 1e-3)

    first, warm = timed(lm_step, repeat)
    _, grad_warm = timed(lambda: problem.objective.gradient(theta), repeat)
    one_device = renderer(dtype, devices=1)  # the fit's passes run on one device: compare like with like
    _, forward_warm = timed(lambda: one_device(exp), repeat)
    notes = [
        f"LM step, {theta.size} parameters: {warm / forward_warm:.2f}x the forward render; loss+gradient pass "
        f"{grad_warm / forward_warm:.2f}x"
    ]
    return {
        "first_s": first,
        "warm_s": warm,
        "images": 1,
        "samples": samples_per_image(exp),
        "notes": notes,
        "lm_step_over_forward": warm / forward_warm,
        "gradient_over_forward": grad_warm / forward_warm,
    }


RUNNERS = {"render": bench_render, "batch": bench_batch, "fit": bench_fit}
