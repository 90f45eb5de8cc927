"""Bit-exact ports of the C program's random-number generators.

The C program keeps its generator state in ``static`` variables: ``ran1``'s 32-entry shuffle table
``iv`` and its last output ``iy`` are shared by every seed stream, ``gaussdev`` keeps one spare
deviate, and ``poidev`` caches values derived from its last mean.  :class:`CRandom` holds that state;
its methods take the C seed variable (a ``long``) and return the deviate together with the updated
seed, so the misset stream, the mosaic stream and the noise stream can run in the C order on one
instance.  A stream (re)loads the shared table whenever its seed is <= 0; the C program stores every
user seed negated (``seed = -atoi(arg)``), so each stream starts fresh, except a stream whose typed
seed was negative, which continues with the table left by the previous stream.

Where the C code uses ``float`` the port rounds to single precision (``_f32``) at the same places,
so every deviate equals the C value bit for bit.
"""

import ctypes
import ctypes.util
import math

import numpy as np

IA = 16807
IM = 2147483647
AM = 1.0 / IM
IQ = 127773
IR = 2836
NTAB = 32
NDIV = 1 + (IM - 1) // NTAB
RNMX = 1.0 - 1.2e-7

_libm = ctypes.CDLL(ctypes.util.find_library("m"))
_libm.powf.argtypes = (ctypes.c_float, ctypes.c_float)
_libm.powf.restype = ctypes.c_float
_ONE_THIRD_F = ctypes.c_float(1.0 / 3.0).value
_LANCZOS = (
    76.18009172947146,
    -86.50532032941677,
    24.01409824083091,
    -1.231739572450155,
    0.1208650973866179e-2,
    -0.5395239384953e-5,
)


def _f32(x: float) -> float:
    """Round a double to the nearest single-precision value, as a C ``(float)`` conversion does."""
    return ctypes.c_float(x).value


_RNMX_F = _f32(RNMX)


def _exp(x: float) -> float:
    """C ``exp``: +inf on overflow instead of Python's OverflowError."""
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def _floor(x: float) -> float:
    """C ``floor`` on a double: NaN and infinities pass through."""
    return float(math.floor(x)) if math.isfinite(x) else x


def gammln(xx: float) -> float:
    """ln Gamma(xx) by the Lanczos series (Numerical Recipes), float argument and result as in C."""
    x = y = _f32(xx)
    tmp = x + 5.5
    tmp -= (x + 0.5) * math.log(tmp)
    ser = 1.000000000190015
    for cof in _LANCZOS:
        y += 1.0
        ser += cof / y
    return _f32(-tmp + math.log(2.5066282746310005 * ser / x))


class CRandom:
    """The C program's static generator state, shared by all seed streams (see module docstring)."""

    def __init__(self) -> None:
        self.iv = [0] * NTAB
        self.iy = 0
        self.gauss_spare: float | None = None
        self.poi_oldm = -1.0
        self.poi_sq = self.poi_alxm = self.poi_g = 0.0

    def ran1(self, seed: int) -> tuple[float, int]:
        """Uniform deviate in (0, 1): Park-Miller minimal standard LCG (16807 x mod 2^31-1) with a
        Bays-Durham shuffle.  Returns (value, new seed); value is a float32 value, at most 1-1.2e-7.
        """
        iv = self.iv
        if seed <= 0 or not self.iy:
            seed = 1 if -seed < 1 else -seed
            for j in range(NTAB + 7, -1, -1):
                k = seed // IQ
                seed = IA * (seed - k * IQ) - IR * k
                if seed < 0:
                    seed += IM
                if j < NTAB:
                    iv[j] = seed
            self.iy = iv[0]
        k = seed // IQ
        seed = IA * (seed - k * IQ) - IR * k
        if seed < 0:
            seed += IM
        j = self.iy // NDIV
        self.iy = iv[j]
        iv[j] = seed
        temp = _f32(AM * self.iy)
        return (_RNMX_F if temp > RNMX else temp), seed

    def gaussdev(self, seed: int) -> tuple[float, int]:
        """Unit-variance normal deviate (Marsaglia polar method), float32; every second call
        returns the spare kept from the previous pair."""
        if self.gauss_spare is not None:
            spare, self.gauss_spare = self.gauss_spare, None
            return spare, seed
        while True:
            u, seed = self.ran1(seed)
            v1 = _f32(2.0 * u - 1.0)
            u, seed = self.ran1(seed)
            v2 = _f32(2.0 * u - 1.0)
            rsq = _f32(_f32(v1 * v1) + _f32(v2 * v2))
            if not (rsq >= 1.0 or rsq == 0):
                break
        fac = _f32(math.sqrt(-2.0 * math.log(rsq) / rsq))
        self.gauss_spare = _f32(v1 * fac)
        return _f32(v2 * fac), seed

    def poidev(self, xm: float, seed: int) -> tuple[float, int]:
        """Poisson deviate with mean ``xm`` (photons), float32 as in C.

        xm > 1e6: xm + sqrt(xm)*gaussdev.  xm < 12: count uniforms until their product drops below
        exp(-xm).  Otherwise: rejection against a Lorentzian, t = 0.9(1+y^2) exp(em ln xm -
        lnGamma(em+1) - g) with g = xm ln xm - lnGamma(xm+1).
        """
        xm = _f32(xm)
        if xm > 1.0e6:
            dev, seed = self.gaussdev(seed)
            return _f32(xm + math.sqrt(xm) * dev), seed
        if xm < 12.0:
            if xm != self.poi_oldm:
                self.poi_oldm = xm
                self.poi_g = _f32(_exp(-xm))
            g = self.poi_g
            em, t = -1.0, 1.0
            while True:
                em += 1.0
                u, seed = self.ran1(seed)
                t = _f32(t * u)
                if not t > g:
                    return em, seed
        if xm != self.poi_oldm:
            self.poi_oldm = xm
            self.poi_sq = _f32(math.sqrt(2.0 * xm))
            self.poi_alxm = _f32(math.log(xm))
            self.poi_g = _f32(_f32(xm * self.poi_alxm) - gammln(xm + 1.0))
        sq, alxm, g = self.poi_sq, self.poi_alxm, self.poi_g
        while True:
            while True:
                u, seed = self.ran1(seed)
                y = _f32(math.tan(math.pi * u))
                em = _f32(_f32(sq * y) + xm)
                if not em < 0.0:
                    break
            em = _f32(_floor(em))
            lnratio = _f32(_f32(_f32(em * alxm) - gammln(em + 1.0)) - g)
            t = _f32(0.9 * (1.0 + _f32(y * y)) * _exp(lnratio))
            u, seed = self.ran1(seed)
            if not u > t:
                return em, seed

    def mosaic_rotation(self, mosaicity: float, seed: int) -> tuple[np.ndarray, int]:
        """Random rotation matrix (3x3 float64) on a spherical cap of angular radius ``mosaicity``
        (radians, passed as a C float): three uniforms r1,r2,r3 on [-1,1], axis
        (sqrt(1-r2^2) sin(pi r1), sqrt(1-r2^2) cos(pi r1), r2), angle mosaicity*powf(1-r3^2, 1/3)
        in single precision, matrix by the Rodrigues formula.  Returns (umat, new seed).
        """
        r = []
        for _ in range(3):
            u, seed = self.ran1(seed)
            r.append(2.0 * u - 1.0)
        r1, r2, r3 = r
        xyrad = math.sqrt(1.0 - r2 * r2)
        rot = _f32(_f32(mosaicity) * _libm.powf(_f32(1.0 - r3 * r3), _ONE_THIRD_F))
        v1 = xyrad * math.sin(math.pi * r1)
        v2 = xyrad * math.cos(math.pi * r1)
        v3 = r2
        c, s = math.cos(rot), math.sin(rot)
        t2 = 1.0 - c
        t6 = t2 * v1
        t7, t11 = t6 * v2, t6 * v3
        t19 = t2 * v2 * v3
        umat = np.array(
            [
                [c + t2 * (v1 * v1), t7 - s * v3, t11 + s * v2],
                [t7 + s * v3, c + t2 * (v2 * v2), t19 - s * v1],
                [t11 - s * v2, t19 + s * v1, c + t2 * (v3 * v3)],
            ]
        )
        return umat, seed


def _norm(v: list[float]) -> float:
    return math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])


def _unit(v: list[float]) -> list[float]:
    m = _norm(v)
    return [v[0] / m, v[1] / m, v[2] / m] if m > 0 else v


def _cross_unit(p: list[float], q: list[float]) -> list[float]:
    return _unit([p[1] * q[2] - p[2] * q[1], p[2] * q[0] - p[0] * q[2], p[0] * q[1] - p[1] * q[0]])


def umat2misset(umat) -> tuple[float, float, float]:
    """XYZ misset angles (rotx, roty, rotz) in radians of a rotation matrix, as C's umat2misset:
    rows are normalized, an empty row is replaced by the cross product of the other two, then
    rotx = atan2(uzy, uzz), roty = atan2(-uzx, sqrt(uzy^2+uzz^2)), rotz = atan2(uyx, uxx).
    """
    rows = [[float(x) for x in row] for row in np.asarray(umat, dtype=np.float64).reshape(3, 3)]
    mags = [_norm(row) for row in rows]
    rows = [_unit(row) for row in rows]
    identity = ([1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0])
    for keep in range(3):
        if mags[keep] >= 0 and all(mags[i] <= 0 for i in range(3) if i != keep):
            for i in range(3):
                if i != keep:
                    rows[i] = list(identity[i])
    for _ in range(2):
        crosses = [_cross_unit(rows[(i + 1) % 3], rows[(i + 2) % 3]) for i in range(3)]
        rows = [crosses[i] if mags[i] <= 0 else rows[i] for i in range(3)]
    rows = [_unit(row) for row in rows]
    (uxx, uxy, _), (uyx, uyy, _), (uzx, uzy, uzz) = rows
    if uzx * uzx < 1.0:
        return (math.atan2(uzy, uzz), math.atan2(-uzx, math.sqrt(uzy * uzy + uzz * uzz)), math.atan2(uyx, uxx))
    return math.atan2(1, 1) * 4, math.atan2(1, 1) * 2, math.atan2(uxy, -uyy)


def mosaic_umats(
    mosaic_spread_rad: float, domains: int, seed: int = 12345678, rng: CRandom | None = None
) -> np.ndarray:
    """The C program's mosaic domain orientations, shape (domains, 3, 3) float64.

    ``seed`` is the ``-mosaic_seed`` value as typed (C stores -seed; default 12345678).  Each domain
    draws mosaic_rotation((float)spread); domain 0 is then forced to the identity, after its
    three draws.  Pass the ``rng`` that ran the misset stream to keep C's shared state.
    """
    rng = rng or CRandom()
    state = -int(seed)
    umats = np.empty((max(int(domains), 0), 3, 3))
    for i in range(umats.shape[0]):
        umats[i], state = rng.mosaic_rotation(mosaic_spread_rad, state)
    if umats.shape[0]:
        umats[0] = np.eye(3)
    return umats


def random_misset(seed: int, rng: CRandom | None = None) -> tuple[float, float, float]:
    """``-misset random``: (rotx, roty, rotz) in radians from mosaic_rotation(90.0) (the 90 is
    taken as radians) and umat2misset.  ``seed`` is ``-misset_seed`` as typed (C stores -seed)."""
    umat, _ = (rng or CRandom()).mosaic_rotation(90.0, -int(seed))
    return umat2misset(umat)
