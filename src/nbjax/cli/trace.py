"""C's -printout / -printout_pixel per-pixel dump, in its format."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from nbjax.ccompat.trace import pixel_trace
from nbjax.errors import NBError
from nbjax.io.cformat import cformat_g as g
from nbjax.kernel import rendered_mask, window_of

CHUNK = 4096


def trace_lines(exp, settings, image32, lambda0: float) -> list[str]:
    """Lines C prints for the traced pixels (one pixel, or every rendered pixel)."""
    if exp.physical:
        raise NBError(
            "-printout/-printout_pixel dump the C program's accumulation; they cannot be combined with -physical"
        )
    window = window_of(exp)
    f_want, s_want = settings.printout_pixel
    k = np.arange(window.n)
    fpix, spix = window.pixel(k)
    chosen = (fpix == f_want) & (spix == s_want) if f_want >= 0 else np.ones(k.size, bool)
    keep = rendered_mask(window, exp.mask)
    if keep is not None:
        chosen &= np.asarray(keep)
    fpix, spix = fpix[chosen].astype(np.int32), spix[chosen].astype(np.int32)
    lines = []
    for start in range(0, fpix.size, CHUNK):
        f, s = fpix[start : start + CHUNK], spix[start : start + CHUNK]
        trace = pixel_trace(exp, jnp.asarray(f), jnp.asarray(s))
        t = {
            key: np.asarray(getattr(trace, key))
            for key in ("stol", "pos", "hkl", "f_cell", "f_latt", "I", "polar", "omega", "capture", "cell")
        }
        for i in range(f.size):
            lines += _pixel_lines(
                int(f[i]),
                int(s[i]),
                {key: v[i] for key, v in t.items() if key != "cell"},
                t["cell"],
                float(image32[s[i], f[i]]),
                exp.steps,
                lambda0,
            )
    return lines


def _pixel_lines(f, s, t, cell, pixel, steps, lambda0):
    x, y, z = t["pos"]
    twotheta = math.atan2(math.sqrt(y * y + z * z), x)
    h, k, l = t["hkl"]
    h0, k0, l0 = (math.ceil(v - 0.5) for v in (h, k, l))
    out = [
        f"{f:4d} {s:4d} : stol = {g(t['stol'])} or {g(math.sin(twotheta / 2.0) / (lambda0 * 1e10))}",
        f"at {g(x)} {g(y)} {g(z)}",
        f"hkl= {h:f} {k:f} {l:f}  hkl0= {h0} {k0} {l0}",
        f" F_cell={g(t['f_cell'])}  F_latt={g(t['f_latt'])}   I = {g(t['I'])}",
        f"I/steps {t['I'] / steps:15.10g}",
        f"polar   {t['polar']:15.10g}",
        f"omega   {t['omega']:15.10g}",
        f"capfrac {t['capture']:15.10g}",
        f"pixel   {pixel:15.10g}",
        "real-space cell vectors (Angstrom):",
        "     " + "  ".join(f"{n:<10s}" for n in ("a", "b", "c")),
    ]
    for axis, name in enumerate("XYZ"):
        out.append(f"{name}: " + " ".join(f"{cell[v, axis] * 1e10:11.8f}" for v in range(3)))
    return out
