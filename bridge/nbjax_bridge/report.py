"""Plain-text tables for the terminal (metrics of one comparison; rows of a matrix)."""

from __future__ import annotations

import math

from .compare import Outcome


def fmt(x, spec: str = ".6g") -> str:
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        return format(x, spec) if math.isfinite(x) else str(x)
    return str(x)


def table(rows: list[list[str]], header: list[str]) -> str:
    cols = [header] + rows
    widths = [max(len(r[i]) for r in cols) for i in range(len(header))]

    def line(r):
        return "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def metrics_table(outcome: Outcome, c_time: float | None = None, py_time: float | None = None) -> str:
    m = outcome.metrics
    rows: list[list[str]] = []
    if m:
        req = {n: (r, ok) for n, _v, r, ok in outcome.checks or []}
        rows += [
            ["corr", fmt(m["corr"], ".8f"), req["corr"][0], fmt(req["corr"][1])],
            ["sum C", fmt(m["sum_c"], ".8g"), "", ""],
            ["sum nbjax", fmt(m["sum_py"], ".8g"), "", ""],
            [
                "sum ratio",
                fmt(m["sum_ratio"], ".8f"),
                "|r-1| " + req["abs(sum_ratio-1)"][0],
                fmt(req["abs(sum_ratio-1)"][1]),
            ],
            ["rmse", fmt(m["rmse"]), "", ""],
            ["max |diff|", fmt(m["max_abs_diff"]), "", ""],
            ["max rel diff", fmt(m["max_rel_diff"]), "", ""],
            [
                "non-finite C / nbjax",
                f"{m['nonfinite_c']} / {m['nonfinite_py']}",
                "same pixels",
                fmt(req["nonfinite_mismatch"][1]),
            ],
        ]
        pk = m["peaks"]
        rows.append(
            [
                "peaks matched",
                f"{pk['matched']}/{pk['n_c']} (median {fmt(pk['median_distance'], '.2f')} px)",
                f"gate {pk['gate']} px",
                "",
            ]
        )
        if m.get("roi"):
            rows.append(["roi (x0 x1 y0 y1)", " ".join(str(v) for v in m["roi"]), "", ""])
    if outcome.shape:
        rows.append(["shape (f x s)", f"{outcome.shape[0]}x{outcome.shape[1]}", "", ""])
    if c_time is not None or py_time is not None:
        rows.append(["time C / nbjax", f"{fmt(c_time, '.3f')} s / {fmt(py_time, '.3f')} s", "", ""])
    return table(rows, ["metric", "value", "requirement", "ok"])
