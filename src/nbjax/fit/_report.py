"""Files a fit writes: the fitted source file, ``fit.json``, residual and model images, and a
PNG report (matplotlib, the optional ``report`` extra)."""

from __future__ import annotations

import io
import json
import os
import sys

import numpy as np

from nbjax.io.atomic import write_bytes_atomic
from nbjax.io.floatimage import write_float_image
from nbjax.io.sourcefile import write_source_file


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    import jax
    import optax

    try:
        nbjax_version = version("nbjax")
    except PackageNotFoundError:
        nbjax_version = "unknown"
    return {
        "nbjax": nbjax_version,
        "jax": jax.__version__,
        "numpy": np.__version__,
        "optax": optax.__version__,
        "python": sys.version.split()[0],
    }


def fitted_weights(result, exp) -> np.ndarray:
    """Normalised source weights of the fitted model (free or fixed)."""
    w = np.asarray(exp.beam.weights, np.float64)
    names = [n for n in result.names if n.startswith("weight[")]
    if names and len(names) == w.size:
        return np.array([result.value(n) for n in names])
    return w / w.sum()


def write_outputs(
    result, outdir: str, meta: dict, names: tuple[str, ...], report: bool = True, warn=print, data_images=None
) -> list[str]:
    """Write every output of a fit into ``outdir``; returns the paths written."""
    written = []
    exp = result.experiments[0]
    path = os.path.join(outdir, names[0])
    write_source_file(
        path, np.asarray(exp.beam.directions), fitted_weights(result, exp), np.asarray(exp.beam.wavelengths)
    )
    written.append(path)
    warn("the C program ignores source weights: render the fitted spectrum with -physical (nbjax) to honour them")
    for i, (model, residual) in enumerate(zip(result.model_images, result.residuals, strict=True)):
        if model is None:  # another process's image (a distributed fit)
            continue
        suffix = "" if len(result.model_images) == 1 else f"_{i}"
        for stem, image in (("model", model), ("residual", residual)):
            p = os.path.join(outdir, f"{stem}{suffix}.bin")
            write_float_image(p, image.astype(np.float32))
            written.append(p)
    doc = dict(result.as_dict(), **meta, versions=versions())
    path = os.path.join(outdir, names[1])
    write_bytes_atomic(path, (json.dumps(doc, indent=1) + "\n").encode())
    written.append(path)
    if report:
        png = report_png(result, data_images)
        if png is None:
            warn("matplotlib is not installed (pip install 'nbjax[report]'): no PNG report")
        else:
            path = os.path.join(outdir, names[2])
            write_bytes_atomic(path, png)
            written.append(path)
    return written


def report_png(result, data_images=None) -> bytes | None:
    """Loss curve; fitted vs starting spectrum with error bars; data, model and residual."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, axes = plt.subplots(2, 3, figsize=(13, 8))
    ax = axes[0, 0]
    hist = np.asarray(result.loss_history)
    ax.plot(np.arange(hist.size), hist - hist.min() + 1.0, "o-")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss - min + 1")
    ax.set_title("loss")
    ax = axes[0, 1]
    idx = {n: i for i, n in enumerate(result.names)}
    S = result.experiments[0].beam.wavelengths.shape[0]
    lam_fit = np.asarray(result.experiments[0].beam.wavelengths) * 1e10
    lam_err = np.array([result.stderr[idx[f"wavelength[{s}]"]] if f"wavelength[{s}]" in idx else 0.0 for s in range(S)])
    lam_start = np.array(
        [result.start[idx[f"wavelength[{s}]"]] if f"wavelength[{s}]" in idx else lam_fit[s] for s in range(S)]
    )
    if "weight[0]" in idx:
        w_fit = np.array([result.values[idx[f"weight[{s}]"]] for s in range(S)])
        w_err = np.array([result.stderr[idx[f"weight[{s}]"]] for s in range(S)])
        w_start = np.array([result.start[idx[f"weight[{s}]"]] for s in range(S)])
    else:
        w_fit = fitted_weights(result, result.experiments[0])
        w_err, w_start = np.zeros(S), w_fit
    lam_err, w_err = np.nan_to_num(lam_err), np.nan_to_num(w_err)  # no error bar for a value at its bound
    ax.errorbar(lam_fit, w_fit, xerr=lam_err, yerr=w_err, fmt="o", capsize=3, label="fitted")
    ax.plot(lam_start, w_start, "x", label="start")
    ax.set_xlabel("wavelength (A)")
    ax.set_ylabel("normalised weight")
    ax.set_title("spectrum")
    ax.legend()
    ax = axes[0, 2]
    ax.axis("off")
    rows = [
        f"{n} = {v:.6g} at bound" if b else f"{n} = {v:.6g} +- {e:.2g}"
        for n, v, e, b in zip(result.names, result.values, result.stderr, result.at_bound, strict=True)
    ][:24]
    ax.text(
        0,
        1,
        "\n".join(rows + [("converged: " if result.converged else "NOT converged: ") + result.message]),
        va="top",
        family="monospace",
        fontsize=7,
    )
    model = result.model_images[0]
    residual = result.residuals[0]
    data = model + residual if data_images is None else data_images[0]
    vmax = float(np.percentile(data, 99.5)) or 1.0
    for ax, image, title, cmap, lim in (
        (axes[1, 0], data, "data", "gray_r", (0, vmax)),
        (axes[1, 1], model, "model", "gray_r", (0, vmax)),
        (axes[1, 2], residual, "data - model", "RdBu_r", None),
    ):
        if lim is None:
            r = float(np.percentile(np.abs(image), 99.5)) or 1.0
            lim = (-r, r)
        shown = ax.imshow(image, cmap=cmap, vmin=lim[0], vmax=lim[1], origin="upper")
        ax.set_title(title)
        fig.colorbar(shown, ax=ax, shrink=0.8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()
