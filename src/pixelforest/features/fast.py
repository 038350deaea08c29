"""Fast float32 Gaussian filter bank: every derivative order of a scale in shared passes.

The ``precision="fast"`` path of :class:`~pixelforest.features.spec.FeatureSpec`.
It filters with the same kernels as the exact path (scipy's weights,
truncated at 4 sigma, ``mode="reflect"``) and the same halo, but in float32
arithmetic: a feature differs from the float64 :mod:`scipy.ndimage` value by
about 1e-6 of the image's range (``tests/test_fast_features.py`` bounds it by
1e-3 for every family, 1D-3D; ``benchmarks/bench_features.py`` measures it).

How it is fast (each step measured in ``benchmarks/bench_features.py``):

- **float32 accumulation**, so a vector register holds twice the pixels of
  the exact path's float64 and no conversion is needed; fused multiply-add
  where the CPU has it;
- **one pass per axis feeds every derivative order of a scale**: the pass
  along the last axis reads each reflected line once and accumulates the
  smoothing, the first and the second derivative together (the symmetric
  sum ``x[i-k] + x[i+k]`` serves orders 0 and 2, the difference order 1);
  each pass along an outer axis does the same for every order that is
  needed from one input (the fastfilters2 trick);
- **every filtering of a scale is shared by the families**: the Gaussian,
  the difference of Gaussians, the gradient, the Laplacian, the Hessian and
  the structure tensor of one sigma read the same passes;
- the eigenvalues, gradient magnitudes and products are compiled loops that
  write straight into the feature stack.

Why tiled == in-memory holds bit for bit here too: each output pixel is the
same sequence of float32 operations (taps in a fixed order) on the same
input pixels wherever the block starts, and it reads only the pixels within
the exact path's halo (the kernels are the same); the vectorized body and
the scalar remainder of each loop run the same instructions.
``tests/test_fast_features.py`` checks blocks at every offset.

Every kernel is compiled by numba with ``cache=True`` (compiled once per
machine, then loaded from the cache).
"""

from __future__ import annotations

import functools
import math

import numpy as np

from pixelforest.features.gaussian import gaussian_weights, grow_crop, kernel_radius

__all__ = ["FAST_ERROR_BOUND", "eigenvalues_sym", "gaussian_orders", "interleave", "magnitude",
           "reference_features"]

#: The bound ``tests/test_fast_features.py`` holds every fast feature to:
#: max |fast - float64 scipy| / (image range, squared for the structure tensor).
FAST_ERROR_BOUND = 1e-3

_FLAGS = {"nogil": True, "cache": True, "fastmath": {"contract"}}


@functools.lru_cache(maxsize=512)
def half_kernels(sigma, scale=1.0):
    """Half kernels of orders 0, 1, 2 as float32, shape ``(3, r + 1)``.

    ``h[o, k]`` multiplies ``x[i - k] + x[i + k]`` (orders 0 and 2) or
    ``x[i - k] - x[i + k]`` (order 1), scaled by ``scale ** o`` (one over the
    pixel size, so derivatives are per unit length).  The weights are
    scipy's (:func:`~pixelforest.features.gaussian.gaussian_weights`).
    """
    r = kernel_radius(sigma)
    h = np.empty((3, r + 1), dtype=np.float64)
    for o in range(3):
        w, _ = gaussian_weights(float(sigma), o)
        h[o] = w[r::-1] * (float(scale) ** o)
    h = h.astype(np.float32)
    h.setflags(write=False)
    return h


@functools.lru_cache(maxsize=1024)
def _reflect_index(lo, hi, radius, n, offset):
    """Positions ``lo - radius .. hi + radius - 1`` reflected into ``[0, n)``, minus ``offset``."""
    pos = np.arange(lo - radius, hi + radius)
    period = 2 * n
    pos = np.mod(pos, period)
    pos = np.where(pos >= n, period - 1 - pos, pos)
    index = (pos - offset).astype(np.intp)
    index.setflags(write=False)
    return index


def _variant(wanted):
    """Bit mask of the orders a pass computes (1: order 0, 2: order 1, 4: order 2)."""
    return sum(1 << o for o in wanted)


@functools.lru_cache(maxsize=8)
def _slots(wanted):
    """Output slot of each order 0, 1, 2 (-1: not computed) for the sorted tuple ``wanted``."""
    slots = np.full(3, -1, dtype=np.intp)
    slots[list(wanted)] = np.arange(len(wanted))
    slots.setflags(write=False)
    return slots


# --- compiled kernels ------------------------------------------------------------
# Each pass accumulates straight into its output rows (float32), taps in the
# order k = 1 .. r after the centre, for the orders flagged in ``need``.

def _acc_taps(a0, a1, a2, lo, hi, n0, n1, n2, w0, w1, w2):
    n = a0.shape[0] if n0 else (a1.shape[0] if n1 else a2.shape[0])
    if n1:
        if n0 and n2:
            for q in range(n):
                s = lo[q] + hi[q]
                a0[q] += s * w0
                a2[q] += s * w2
                a1[q] += (lo[q] - hi[q]) * w1
        elif n0:
            for q in range(n):
                a0[q] += (lo[q] + hi[q]) * w0
                a1[q] += (lo[q] - hi[q]) * w1
        elif n2:
            for q in range(n):
                a2[q] += (lo[q] + hi[q]) * w2
                a1[q] += (lo[q] - hi[q]) * w1
        else:
            for q in range(n):
                a1[q] += (lo[q] - hi[q]) * w1
    elif n0 and n2:
        for q in range(n):
            s = lo[q] + hi[q]
            a0[q] += s * w0
            a2[q] += s * w2
    elif n0:
        for q in range(n):
            a0[q] += (lo[q] + hi[q]) * w0
    else:
        for q in range(n):
            a2[q] += (lo[q] + hi[q]) * w2


def _init_taps(a0, a1, a2, c, n0, n1, n2, w0, w2):
    n = c.shape[0]
    if n0:
        for q in range(n):
            a0[q] = c[q] * w0
    if n1:
        for q in range(n):
            a1[q] = c[q] * np.float32(0.0)
    if n2:
        for q in range(n):
            a2[q] = c[q] * w2


# Register blocking: a run of 64 pixels of every order is
# accumulated in small stack arrays (kept in vector registers) over all the
# taps, then stored once; the same float32 operations in the same order as
# _init_taps / _acc_taps (rows shorter than 64), so a pixel's value does not
# depend on where its run starts, or on being computed twice where the last
# run of a row overlaps the one before.


def _make_blk(lanes):
    """The register-blocked steps on runs of ``lanes`` pixels: init, taps, store."""

    def init(b0, b1, b2, c, q0, n0, n1, n2, w0, w2):
        if n0:
            for j in range(lanes):
                b0[j] = c[q0 + j] * w0
        if n1:
            for j in range(lanes):
                b1[j] = c[q0 + j] * np.float32(0.0)
        if n2:
            for j in range(lanes):
                b2[j] = c[q0 + j] * w2

    def taps(b0, b1, b2, lo, hi, q0, n0, n1, n2, w0, w1, w2):
        if n1:
            if n0 and n2:
                for j in range(lanes):
                    s = lo[q0 + j] + hi[q0 + j]
                    b0[j] += s * w0
                    b2[j] += s * w2
                    b1[j] += (lo[q0 + j] - hi[q0 + j]) * w1
            elif n0:
                for j in range(lanes):
                    b0[j] += (lo[q0 + j] + hi[q0 + j]) * w0
                    b1[j] += (lo[q0 + j] - hi[q0 + j]) * w1
            elif n2:
                for j in range(lanes):
                    b2[j] += (lo[q0 + j] + hi[q0 + j]) * w2
                    b1[j] += (lo[q0 + j] - hi[q0 + j]) * w1
            else:
                for j in range(lanes):
                    b1[j] += (lo[q0 + j] - hi[q0 + j]) * w1
        elif n0 and n2:
            for j in range(lanes):
                s = lo[q0 + j] + hi[q0 + j]
                b0[j] += s * w0
                b2[j] += s * w2
        elif n0:
            for j in range(lanes):
                b0[j] += (lo[q0 + j] + hi[q0 + j]) * w0
        else:
            for j in range(lanes):
                b2[j] += (lo[q0 + j] + hi[q0 + j]) * w2

    def store(b0, b1, b2, d0, d1, d2, q0, n0, n1, n2):
        if n0:
            for j in range(lanes):
                d0[q0 + j] = b0[j]
        if n1:
            for j in range(lanes):
                d1[q0 + j] = b1[j]
        if n2:
            for j in range(lanes):
                d2[q0 + j] = b2[j]

    for f in (init, taps, store):
        f.__name__ = f.__qualname__ = f"blk_{f.__name__}_{lanes}"
    return init, taps, store


_blk_init, _blk_taps, _blk_store = _make_blk(64)


def _stack_f32(n):  # replaced by numba intrinsics below (64 or 16 floats on the stack)
    return np.empty(n, dtype=np.float32)



def _make_pass_last(variant):
    """The last-axis pass computing the orders of ``variant`` (see :func:`_variant`).

    One compiled function per combination of orders: the flags are
    constants of its code, so its loops have no branches.
    """
    n0, n1, n2 = bool(variant & 1), bool(variant & 2), bool(variant & 4)

    def pass_last(src, z0, a0, dst, slots, h, index):
        """Filter the last axis of ``src`` (Z, A, N) into ``dst`` (K, z, a, M).

        ``dst[slots[o], z, a]`` is order ``o`` of the line ``src[z0 + z, a0 + a]``
        at the positions ``index`` maps.
        """
        _pass_last_body(src, z0, a0, dst, slots, h, index, n0, n1, n2)

    pass_last.__name__ = pass_last.__qualname__ = f"pass_last_{variant}"
    return pass_last


def _pass_last_body(src, z0, a0, dst, slots, h, index, n0, n1, n2):
    r = h.shape[1] - 1
    _, n_z, n_a, n_m = dst.shape
    s0, s1, s2 = max(slots[0], 0), max(slots[1], 0), max(slots[2], 0)
    b0, b1, b2 = _stack_f32(64), _stack_f32(64), _stack_f32(64)
    n_t = n_m + 2 * r
    n_64 = n_m - n_m % 64
    n_full = n_m if n_m >= 64 else 0  # shorter rows: the plain loops
    buf = np.empty(n_t, dtype=np.float32)
    line = buf
    # the run of ``index`` that steps by one (the positions inside the
    # line) is copied straight, the reflected ends gathered
    t0 = 0
    while t0 + 1 < n_t and index[t0 + 1] != index[t0] + 1:
        t0 += 1
    t1 = t0 + 1
    while t1 < n_t and index[t1] == index[t1 - 1] + 1:
        t1 += 1
    base = index[t0] - t0
    direct = t0 == 0 and t1 == n_t  # nothing reflected: read the row in place
    for z in range(n_z):
        for a in range(n_a):
            row = src[z0 + z, a0 + a]
            if direct:
                line = row[base:base + n_t]
            else:
                line = buf
                for t in range(t0):
                    line[t] = row[index[t]]
                for t in range(t0, t1):
                    line[t] = row[base + t]
                for t in range(t1, n_t):
                    line[t] = row[index[t]]
            d0, d1, d2 = dst[s0, z, a], dst[s1, z, a], dst[s2, z, a]
            for q0 in range(0, n_64, 64):
                _blk_init(b0, b1, b2, line, r + q0, n0, n1, n2, h[0, 0], h[2, 0])
                for k in range(1, r + 1):
                    _blk_taps(b0, b1, b2, line[r + q0 - k:r + q0 - k + 64],
                              line[r + q0 + k:r + q0 + k + 64], 0,
                              n0, n1, n2, h[0, k], h[1, k], h[2, k])
                _blk_store(b0, b1, b2, d0, d1, d2, q0, n0, n1, n2)
            if n_64 < n_full:
                # a last run ending at the row's end, overlapping the one before:
                # the same pixels get the same values again
                q0 = n_m - 64
                _blk_init(b0, b1, b2, line, r + q0, n0, n1, n2, h[0, 0], h[2, 0])
                for k in range(1, r + 1):
                    _blk_taps(b0, b1, b2, line[r + q0 - k:r + q0 - k + 64],
                              line[r + q0 + k:r + q0 + k + 64], 0,
                              n0, n1, n2, h[0, k], h[1, k], h[2, k])
                _blk_store(b0, b1, b2, d0, d1, d2, q0, n0, n1, n2)
            if n_full < n_m:  # the rest of the row
                t0_, t1_ = d0[n_full:], d1[n_full:]
                t2_ = d2[n_full:]
                _init_taps(t0_, t1_, t2_, line[r + n_full:r + n_m], n0, n1, n2,
                           h[0, 0], h[2, 0])
                for k in range(1, r + 1):
                    _acc_taps(t0_, t1_, t2_, line[r - k + n_full:r - k + n_m],
                              line[r + k + n_full:r + k + n_m], n0, n1, n2,
                              h[0, k], h[1, k], h[2, k])


def _make_pass_outer(variant):
    """The outer-axis pass computing the orders of ``variant`` (see :func:`_make_pass_last`)."""
    n0, n1, n2 = bool(variant & 1), bool(variant & 2), bool(variant & 4)

    def pass_outer(src, dst, slots, h, index):
        """Filter axis 1 of ``src`` (Z, N, L) into ``dst`` (K, Z, M, L)."""
        _pass_outer_body(src, dst, slots, h, index, n0, n1, n2)

    pass_outer.__name__ = pass_outer.__qualname__ = f"pass_outer_{variant}"
    return pass_outer


def _pass_outer_body(src, dst, slots, h, index, n0, n1, n2):
    r = h.shape[1] - 1
    _, n_z, n_m, n_l = dst.shape
    s0, s1, s2 = max(slots[0], 0), max(slots[1], 0), max(slots[2], 0)
    b0, b1, b2 = _stack_f32(64), _stack_f32(64), _stack_f32(64)
    n_runs = -(-n_l // 64) if n_l >= 64 else 0
    n_full = n_l if n_l >= 64 else 0  # shorter rows: the plain loops
    for z in range(n_z):
        for m in range(n_m):
            d0, d1, d2 = dst[s0, z, m], dst[s1, z, m], dst[s2, z, m]
            c = src[z, index[m + r]]
            for i in range(n_runs):
                q0 = min(64 * i, n_l - 64)  # the last run ends at the row's end
                q1 = q0 + 64
                _blk_init(b0, b1, b2, c[q0:q1], 0, n0, n1, n2, h[0, 0], h[2, 0])
                for k in range(1, r + 1):
                    _blk_taps(b0, b1, b2, src[z, index[m + r - k]][q0:q1],
                              src[z, index[m + r + k]][q0:q1], 0,
                              n0, n1, n2, h[0, k], h[1, k], h[2, k])
                _blk_store(b0, b1, b2, d0[q0:q1], d1[q0:q1], d2[q0:q1], 0, n0, n1, n2)
            if n_full < n_l:  # the rest of the row
                t0_, t1_, t2_ = d0[n_full:], d1[n_full:], d2[n_full:]
                _init_taps(t0_, t1_, t2_, c[n_full:], n0, n1, n2, h[0, 0], h[2, 0])
                for k in range(1, r + 1):
                    _acc_taps(t0_, t1_, t2_, src[z, index[m + r - k]][n_full:],
                              src[z, index[m + r + k]][n_full:], n0, n1, n2,
                              h[0, k], h[1, k], h[2, k])


def _eig2(a, b, c, e0, e1):
    """Eigenvalues (largest first) of [[a, b], [b, c]] per pixel; 3D arrays."""
    nz, ny, nx = a.shape
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                p = np.float64(a[z, y, x])
                q = np.float64(c[z, y, x])
                o = np.float64(b[z, y, x])
                t = (p + q) * 0.5
                h = (p - q) * 0.5
                d = np.sqrt(h * h + o * o)
                e0[z, y, x] = t + d
                e1[z, y, x] = t - d


def _eig3(a00, a01, a02, a11, a12, a22, e0, e1, e2):
    """Eigenvalues (largest first) of a symmetric 3x3 matrix per pixel (float64 inside)."""
    nz, ny, nx = a00.shape
    third = 1.0 / 3.0
    sqrt3 = np.sqrt(3.0)
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                m00 = np.float64(a00[z, y, x])
                m11 = np.float64(a11[z, y, x])
                m22 = np.float64(a22[z, y, x])
                m01 = np.float64(a01[z, y, x])
                m02 = np.float64(a02[z, y, x])
                m12 = np.float64(a12[z, y, x])
                q = (m00 + m11 + m22) * third
                b00, b11, b22 = m00 - q, m11 - q, m22 - q
                p1 = m01 * m01 + m02 * m02 + m12 * m12
                p2 = b00 * b00 + b11 * b11 + b22 * b22 + 2.0 * p1
                if p1 == 0.0:  # diagonal: its entries, sorted
                    v0, v1, v2 = max(m00, m11), min(m00, m11), m22
                    if v2 > v1:
                        v1, v2 = v2, v1
                    if v1 > v0:
                        v0, v1 = v1, v0
                elif not p2 > 0.0:  # NaN
                    v0 = v1 = v2 = q + p2 * 0.0
                else:
                    p = np.sqrt(p2 / 6.0)
                    det = (b00 * (b11 * b22 - m12 * m12) - m01 * (m01 * b22 - m12 * m02)
                           + m02 * (m01 * m12 - b11 * m02))
                    rr = det / (2.0 * p * p * p)
                    rr = min(max(rr, -1.0), 1.0)
                    phi = np.arccos(rr) * third
                    c = np.cos(phi)  # cos(phi + 2 pi / 3) from c and sin(phi) >= 0
                    sn = np.sqrt(max(1.0 - c * c, 0.0))
                    v0 = q + 2.0 * p * c
                    v2 = q - p * (c + sqrt3 * sn)
                    v1 = 3.0 * q - v0 - v2
                    # rounding can leave v1 a hair outside [v2, v0]
                    v1 = min(max(v1, v2), v0)
                e0[z, y, x] = v0
                e1[z, y, x] = v1
                e2[z, y, x] = v2


def _interleave(planes, out, start):
    """``out[z, y, x, start + c] = planes[c, z, y, x]``, in cache-sized runs of pixels."""
    n_c, nz, ny, nx = planes.shape
    for z in range(nz):
        for y in range(ny):
            for x0 in range(0, nx, 64):
                x1 = min(x0 + 64, nx)
                for c in range(n_c):
                    p = planes[c, z, y]
                    for x in range(x0, x1):
                        out[z, y, x, start + c] = p[x]


def _magnitude(g0, g1, g2, n, out):
    """``sqrt(g0**2 + g1**2 [+ g2**2])`` (the first ``n`` of them) per pixel; 3D arrays."""
    nz, ny, nx = out.shape
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                s = g0[z, y, x] * g0[z, y, x]
                if n > 1:
                    s += g1[z, y, x] * g1[z, y, x]
                if n > 2:
                    s += g2[z, y, x] * g2[z, y, x]
                out[z, y, x] = np.sqrt(s)


try:
    import numba
    from numba import types as _types
    from numba.core import cgutils as _cgutils
    from numba.extending import intrinsic as _intrinsic
    from numba.np.numpy_support import carray as _carray

    @_intrinsic
    def _alloca_f32(typingctx, size):
        """A float32 buffer of a literal size on the stack (its pointer)."""
        if not isinstance(size, _types.IntegerLiteral):
            return None
        n = size.literal_value

        def codegen(context, builder, signature, args):
            return _cgutils.alloca_once(builder, context.get_value_type(_types.float32), size=n)

        return _types.CPointer(_types.float32)(size), codegen

    @numba.njit(inline="always", **_FLAGS)
    def _stack_f32(n):
        return _carray(_alloca_f32(64), 64)

    _acc_taps = numba.njit(inline="always", **_FLAGS)(_acc_taps)
    _init_taps = numba.njit(inline="always", **_FLAGS)(_init_taps)
    _blk_init, _blk_taps, _blk_store = (numba.njit(inline="always", **_FLAGS)(f)
                                        for f in (_blk_init, _blk_taps, _blk_store))
    _pass_last_body = numba.njit(inline="always", **_FLAGS)(_pass_last_body)
    _pass_outer_body = numba.njit(inline="always", **_FLAGS)(_pass_outer_body)
    #: the passes, by :func:`_variant` of the orders they compute
    _PASS_LAST = {v: numba.njit(**_FLAGS)(_make_pass_last(v)) for v in range(1, 8)}
    _PASS_OUTER = {v: numba.njit(**_FLAGS)(_make_pass_outer(v)) for v in range(1, 8)}
    _eig2 = numba.njit(**_FLAGS)(_eig2)
    _eig3 = numba.njit(**_FLAGS)(_eig3)
    _magnitude = numba.njit(**_FLAGS)(_magnitude)
    _interleave = numba.njit(**_FLAGS)(_interleave)
    _NUMBA_OK = True
except ImportError:  # pragma: no cover - numba is a dependency
    _NUMBA_OK = False


# --- the filter bank ---------------------------------------------------------------

def _as3d(arr):
    return arr.reshape((1,) * (3 - arr.ndim) + arr.shape)


def gaussian_orders(image, sigma, orders, crop=None, scale=None):
    """Gaussian derivatives of several orders at one scale, in float32, sharing passes.

    Parameters
    ----------
    image : ndarray, 1 to 3 dimensions
        Converted to C-contiguous float32.
    sigma : float or sequence of float
        Standard deviation per axis, in pixels.
    orders : iterable of tuple of int
        Derivative orders (0-2 per axis), one tuple per wanted filter.
    crop : sequence of (int, int), optional
        ``(start, stop)`` per axis of the pixels to return (default: all);
        the border is reflected like the whole image's.
    scale : sequence of float, optional
        Per-axis factor applied once per derivative order along that axis
        (one over the pixel size: derivatives per unit length).

    Returns
    -------
    filters : dict
        ``{order: ndarray of float32 (crop shape)}``, each within about 1e-6
        of the image's range of ``scipy.ndimage.gaussian_filter(image,
        sigma, order=order, mode="reflect", truncate=4.0)``.

    Examples
    --------
    >>> from scipy import ndimage as ndi
    >>> image = np.random.default_rng(0).random((40, 30), dtype=np.float32)
    >>> out = gaussian_orders(image, 2.0, [(0, 0), (0, 1), (2, 0)])
    >>> ref = ndi.gaussian_filter(image.astype(np.float64), 2.0, order=(0, 1))
    >>> bool(np.abs(out[0, 1] - ref).max() < 1e-6)
    True
    """
    image = np.ascontiguousarray(image, dtype=np.float32)
    ndim = image.ndim
    if not 1 <= ndim <= 3:
        raise ValueError(f"gaussian_orders takes 1 to 3 dimensions, got {ndim}")
    sigma = (float(sigma),) * ndim if np.isscalar(sigma) else tuple(float(s) for s in sigma)
    scale = (1.0,) * ndim if scale is None else tuple(float(s) for s in scale)
    orders = sorted({tuple(int(o) for o in order) for order in orders})
    if any(len(o) != ndim or min(o) < 0 or max(o) > 2 for o in orders):
        raise ValueError(f"orders must be {ndim}-tuples of 0, 1 or 2, got {orders}")
    if crop is None:
        crop = tuple((0, n) for n in image.shape)
    crop = tuple((int(lo), int(hi)) for lo, hi in crop)
    if not _NUMBA_OK:  # pragma: no cover
        return _scipy_orders(image, sigma, orders, crop, scale)
    shape = image.shape
    radius = [kernel_radius(s) for s in sigma]
    grown = grow_crop(crop, radius, shape)
    last = ndim - 1
    # stage 1: the last axis, every order wanted along it, from the image
    h = half_kernels(sigma[last], scale[last])
    wanted = tuple(sorted({o[last] for o in orders}))
    slots = _slots(wanted)
    out_ranges = [grown[i] for i in range(last)] + [crop[last]]
    out_shape = tuple(b - a for a, b in out_ranges)
    src3 = _as3d(image)
    dst = np.empty((len(wanted),) + (1,) * (3 - ndim) + out_shape, dtype=np.float32)
    z0 = grown[0][0] if ndim == 3 else 0
    a0 = grown[ndim - 2][0] if ndim >= 2 else 0
    index = _reflect_index(crop[last][0], crop[last][1], radius[last], shape[last], 0)
    _PASS_LAST[_variant(wanted)](src3, z0, a0, dst, slots, h, index)
    # results keyed by the suffix of orders already applied (axes ax..last)
    stage = {(o,): dst[slots[o]].reshape(out_shape) for o in wanted}
    cover = out_ranges
    for ax in range(last - 1, -1, -1):
        h = half_kernels(sigma[ax], scale[ax])
        nxt = {}
        out_ranges = [grown[i] if i < ax else crop[i] for i in range(ndim)]
        out_shape = tuple(b - a for a, b in out_ranges)
        index = _reflect_index(crop[ax][0], crop[ax][1], radius[ax], shape[ax], cover[ax][0])
        for suffix, src in stage.items():
            wanted = tuple(sorted({o[ax] for o in orders if o[ax + 1:] == suffix}))
            if not wanted:
                continue
            slots = _slots(wanted)
            z = math.prod(src.shape[:ax])
            length = math.prod(src.shape[ax + 1:])
            src_v = src.reshape(z, src.shape[ax], length)
            dst = np.empty((len(wanted), z, out_shape[ax], length), dtype=np.float32)
            _PASS_OUTER[_variant(wanted)](src_v, dst, slots, h, index)
            for o in wanted:
                nxt[(o,) + suffix] = dst[slots[o]].reshape(out_shape)
        stage = nxt
        cover = out_ranges
    return {o: stage[o] for o in orders}


def _scipy_orders(image, sigma, orders, crop, scale):  # pragma: no cover - without numba
    from scipy import ndimage as ndi

    region = grow_crop(crop, [kernel_radius(s) for s in sigma], image.shape)
    sub = image[tuple(slice(a, b) for a, b in region)]
    inner = tuple(slice(lo - a, hi - a) for (lo, hi), (a, _) in zip(crop, region))
    out = {}
    for order in orders:
        res = ndi.gaussian_filter(sub, sigma, order=order, mode="reflect", truncate=4.0,
                                  output=np.float32)[inner]
        factor = np.prod([s ** o for s, o in zip(scale, order)])
        out[order] = np.ascontiguousarray(res * np.float32(factor))
    return out


def eigenvalues_sym(elems, out):
    """Eigenvalues, largest first, of symmetric 2x2 or 3x3 matrices per pixel.

    ``elems`` is the row-major upper triangle (``[a00, a01, a11]`` or
    ``[a00, a01, a02, a11, a12, a22]``), arrays of one shape; ``out`` is a
    sequence of 2 or 3 arrays of that shape (may be strided views) written
    in place.  Float64 inside, written as float32.
    """
    elems = [_as3d(np.asarray(e, dtype=np.float32)) for e in elems]
    out = [_as3d(o) for o in out]
    if not _NUMBA_OK:  # pragma: no cover
        from skimage.feature import hessian_matrix_eigvals

        for o, e in zip(out, hessian_matrix_eigvals(elems)):
            o[...] = e
        return
    if len(elems) == 3:
        _eig2(elems[0], elems[1], elems[2], out[0], out[1])
    else:
        _eig3(*elems, *out)


def interleave(planes, out, start):
    """Write ``planes`` (C, spatial...) into the channel-last ``out[..., start:start + C]``."""
    planes4 = planes.reshape((planes.shape[0],) + (1,) * (4 - planes.ndim) + planes.shape[1:])
    out4 = out.reshape((1,) * (4 - out.ndim) + out.shape) if out.ndim < 4 else out
    if not _NUMBA_OK:  # pragma: no cover
        out4[..., start:start + planes.shape[0]] = np.moveaxis(planes4, 0, -1)
        return
    _interleave(planes4, out4, start)


def magnitude(grads, out):
    """``sqrt(sum g**2)`` of 1 to 3 arrays, written into ``out`` (may be a strided view)."""
    grads = [_as3d(np.asarray(g, dtype=np.float32)) for g in grads]
    out3 = _as3d(out)
    if not _NUMBA_OK:  # pragma: no cover
        out3[...] = np.sqrt(sum(g * g for g in grads))
        return
    n = len(grads)
    while len(grads) < 3:
        grads.append(grads[0])
    _magnitude(grads[0], grads[1], grads[2], n, out3)


def reference_features(image, spec):
    """The features of a single-channel image by their float64 scipy.ndimage definitions.

    The yardstick of the fast path (slow; for tests and benchmarks): every
    filter is ``scipy.ndimage.gaussian_filter`` on the float64 image with
    ``mode="reflect"``, ``truncate=4``, float64 output, the eigenvalues by
    :func:`skimage.feature.hessian_matrix_eigvals` in float64.

    Parameters
    ----------
    image : ndarray
        2D or 3D spatial image (no channel axis).
    spec : FeatureSpec

    Returns
    -------
    features : ndarray of float64, shape ``image.shape + (spec.n_features(1, ndim),)``

    Examples
    --------
    >>> from pixelforest.features import FeatureSpec, compute_features
    >>> image = np.random.default_rng(0).random((40, 40)).astype(np.float32)
    >>> spec = FeatureSpec(families=("gaussian", "hessian"), sigmas=(1, 2), precision="fast")
    >>> ref = reference_features(image, spec)
    >>> bool(np.abs(compute_features(image, spec) - ref).max() < 1e-5)
    True
    """
    from scipy import ndimage as ndi
    from skimage.feature import hessian_matrix_eigvals

    from pixelforest.features.spec import DOG_RATIO

    image = np.asarray(image, dtype=np.float64)
    ndim = image.ndim
    spacing = spec.spacing or (1.0,) * ndim

    def g(sigma, order=0, src=image):
        order = (order,) * ndim if np.isscalar(order) else tuple(order)
        res = ndi.gaussian_filter(src, spec._sigma_px(sigma, ndim), order=order,
                                  mode="reflect", truncate=4.0, output=np.float64)
        return res / np.prod([s ** o for s, o in zip(spacing, order)])

    def unit(*axes):
        order = [0] * ndim
        for ax in axes:
            order[ax] += 1
        return order

    cols = []
    if "intensity" in spec.families:
        cols.append(image)
    for fam in spec.families:
        for sigma in spec.sigmas_for(fam):
            if fam == "gaussian":
                cols.append(g(sigma))
            elif fam == "dog":
                cols.append(g(sigma * DOG_RATIO) - g(sigma))
            elif fam == "gradient":
                cols.append(np.sqrt(sum(g(sigma, unit(ax)) ** 2 for ax in range(ndim))))
            elif fam == "log":
                cols.append(sum(g(sigma, unit(ax, ax)) for ax in range(ndim)))
            elif fam == "hessian":
                elems = [g(sigma, unit(i, j)) for i in range(ndim) for j in range(i, ndim)]
                cols.extend(hessian_matrix_eigvals(elems))
            elif fam == "structure":
                inner, outer = spec.structure_scales
                grads = [g(sigma * inner, unit(ax)) for ax in range(ndim)]
                elems = [g(sigma * outer, 0, grads[i] * grads[j])
                         for i in range(ndim) for j in range(i, ndim)]
                cols.extend(hessian_matrix_eigvals(elems))
    return np.stack(cols, axis=-1)
