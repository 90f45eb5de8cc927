"""The bench's printed table and PNG (matplotlib, optional)."""

from __future__ import annotations

from nbjax.bench.workloads import OVERHEAD_PIXELS


def _fmt(x, spec=".3g"):
    return "-" if x is None else format(x, spec)


def table(report: dict) -> list[str]:
    hdr = [
        "workload",
        "prec",
        "first s",
        "warm s",
        "samples/s",
        "images/s",
        "GFLOP/s",
        "% peak",
        "C s",
        "C/nb",
        "notes",
    ]
    rows = []
    for r in report["workloads"]:
        pf = r.get("peak_fraction")
        rows.append(
            [
                r["workload"],
                r["precision"],
                _fmt(r.get("first_s")),
                _fmt(r.get("warm_s")),
                _fmt(r.get("samples_per_s")),
                _fmt(r.get("images_per_s")),
                _fmt(None if r.get("flops_per_s") is None else r["flops_per_s"] / 1e9),
                _fmt(None if pf is None else 100 * pf, ".2g"),
                _fmt(r.get("c_s")),
                _fmt(r.get("c_over_nbjax")),
                "; ".join(r.get("notes", [])),
            ]
        )
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(hdr)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()
        for cells in [hdr, ["-" * w for w in widths]] + rows
    ]
    meta, peak, comp, grad, mem = (
        report["meta"],
        report["peak_flops"],
        report["compile"],
        report["grad"],
        report["memory"],
    )
    lines += [
        "",
        f"device: {meta['device']} ({meta['device_kind']}; renders split over {meta.get('local_devices', 1)} local "
        f"devices), jax {meta['jax']}; peak FP32 {_fmt(peak.get('float32'))} "
        f"FP64 {_fmt(peak.get('float64'))} FLOP/s ({peak['source']})",
        f"warm per-call overhead, {OVERHEAD_PIXELS}^2 image: {1e3 * report['overhead_64px_s']:.2f} ms",
        (
            "first render call in a fresh process: skipped (--no-compile)"
            if len(comp) == 1
            else f"first render call in a fresh process: {_fmt(comp.get('cold_first_call_s'))} s with an empty "
            "compilation cache, "
            f"{_fmt(comp.get('cached_first_call_s'))} s from the filled cache (JAX + nbjax import "
            f"{_fmt(comp.get('cached_import_s'))} s)" + (f"; error: {comp['error']}" if "error" in comp else "")
        ),
        f"value_and_grad / forward (sum(image^2) w.r.t. wavelengths and directions, {grad_args_label(report)}): "
        f"{grad['ratio']:.2f} "
        f"({grad['value_and_grad_s']:.4g} s / {grad['forward_s']:.4g} s)",
        f"peak memory: {mem['peak_bytes'] / 2**20:.0f} MiB ({mem['source']})",
        "samples: pixels x sub-pixels x sources x phi x mosaic x layers; % peak: XLA cost-analysis FLOPs per sample "
        "x samples/s over the peak; C/nb: C whole process / nbjax warm",
    ]
    return lines


def grad_args_label(report: dict) -> str:
    return f"workload 1024_1src{' (quick size)' if report['meta']['quick'] else ''}, double"


def write_png(report: dict, path: str) -> str:
    """Throughput and peak fraction per workload; returns a note (written, or why not)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "PNG not written: matplotlib is not installed (pip install 'nbjax[report]')"
    rows = [r for r in report["workloads"] if r.get("samples_per_s")]
    labels = [f"{r['workload']}\n{r['precision']}" for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(max(8, 1.6 * len(rows)), 4.5))
    ax1.bar(labels, [r["samples_per_s"] for r in rows], color="tab:blue")
    ax1.set_yscale("log")
    ax1.set_ylabel("samples / s")
    ax1.set_title("throughput")
    ax2.bar(labels, [100 * (r.get("peak_fraction") or 0.0) for r in rows], color="tab:orange")
    ax2.set_ylabel("% of peak FLOP/s")
    ax2.set_title(f"roofline fraction ({report['peak_flops']['source']})", fontsize=9)
    for ax in (ax1, ax2):
        ax.tick_params(axis="x", labelsize=7)
    fig.suptitle(f"nbjax bench on {report['meta']['device_kind'] or report['meta']['device']}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return f"PNG written to {path}"
