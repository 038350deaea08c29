"""Compiled Gaussian filters, bit for bit those of :func:`scipy.ndimage.gaussian_filter`.

:func:`gaussian_crop` returns ``scipy.ndimage.gaussian_filter(image, sigma,
order=order, mode="reflect", truncate=4.0, output=np.float32)[crop]`` for a
float32 image, with the same bits, computing only what ``crop`` needs
(vectorized numba passes; ``benchmarks/bench_parts.py`` times them).

How it stays exact.  scipy filters one axis after the other (axis 0 first),
stores each pass in the float32 output (so every pass is rounded to
float32) and, per output pixel, converts the line to float64 and computes,
for a symmetric kernel ``w`` of radius ``r`` (the Gaussian), ::

    acc = x[i] * w[r]
    for k = r, r-1, ..., 1:   acc += (x[i-k] + x[i+k]) * w[r-k]

and ``(x[i-k] - x[i+k])`` for an antisymmetric kernel (odd derivatives);
scipy's Linux and Windows wheels compile this without fused multiply-add.
The kernels here do the same float64 operations in the same order (numba
does not contract them into FMA without ``fastmath``), only vectorized
across the pixels of a row instead of one pixel at a time, and read the
weights from scipy itself (the filter of a unit impulse), so the results
are the same bits; ``tests/test_gaussian.py`` checks it on odd shapes,
lines shorter than the kernel, every order and anisotropic sigmas.

Why it is faster.  scipy copies every line (rows and columns) into a
float64 buffer and filters it pixel by pixel; here a pass along an outer
axis adds whole float32 rows into a float64 accumulator row (contiguous,
SIMD), and a pass along the last axis slides over one reflected line.  With
a ``crop``, each pass is computed only where a later pass or the crop reads
it (scipy filters the whole array), which saves the halo's share of work on
blocks.

Without numba (or if it fails to compile) :func:`gaussian_crop` calls scipy
on the region the crop needs: the same numbers, at scipy's speed.
"""

import functools

import numpy as np

__all__ = ["gaussian_crop", "gaussian_weights", "grow_crop", "kernel_radius", "TRUNCATE"]

#: Filters are truncated at this many standard deviations (scipy's default).
TRUNCATE = 4.0


def kernel_radius(sigma):
    """Radius (pixels) of scipy's Gaussian kernel of standard deviation ``sigma``.

    Examples
    --------
    >>> kernel_radius(1.0), kernel_radius(10.0)
    (4, 40)
    """
    return int(TRUNCATE * float(sigma) + 0.5)


def grow_crop(crop, margin, shape):
    """``crop`` (pairs ``(lo, hi)`` per axis) grown by ``margin``, clipped to ``shape``.

    Examples
    --------
    >>> grow_crop(((2, 5), (0, 4)), (3, 3), (10, 6))
    ((0, 8), (0, 6))
    """
    return tuple((max(lo - m, 0), min(hi + m, n)) for (lo, hi), m, n in zip(crop, margin, shape))


@functools.lru_cache(maxsize=256)
def gaussian_weights(sigma, order):
    """The weights scipy correlates with for ``gaussian_filter1d(sigma, order)``.

    Read from scipy itself: the float64 filter of a unit impulse is the
    kernel (each output is one weight times 1.0 plus zeros, exact), so the
    weights are scipy's own bits whatever its version computes.

    Parameters
    ----------
    sigma : float
        Standard deviation, in pixels.
    order : int
        Derivative order (0 = smoothing).

    Returns
    -------
    weights : ndarray of float64, shape ``(2 r + 1,)``
        Read-only; ``weights[r - k]`` multiplies the pixel ``k`` before the
        centre.
    antisymmetric : bool
        True for odd orders (the kernel changes sign around its centre).

    Examples
    --------
    >>> w, anti = gaussian_weights(1.0, 0)
    >>> w.shape, anti, bool(abs(w.sum() - 1) < 1e-12)
    ((9,), False, True)
    """
    from scipy import ndimage as ndi

    r = kernel_radius(sigma)
    impulse = np.zeros(2 * r + 1)
    impulse[r] = 1.0
    kernel = ndi.gaussian_filter1d(impulse, float(sigma), order=int(order), mode="constant",
                                   truncate=TRUNCATE)
    weights = np.ascontiguousarray(kernel[::-1])
    weights.setflags(write=False)
    return weights, bool(int(order) % 2)


def _reflect_index(lo, hi, radius, n, offset):
    """Indices (minus ``offset``) of positions ``lo - radius .. hi + radius - 1``.

    Positions outside ``[0, n)`` are reflected like scipy's ``mode="reflect"``
    (``d c b a | a b c d | d c b a``), repeatedly for lines shorter than the
    radius.
    """
    pos = np.arange(lo - radius, hi + radius)
    period = 2 * n
    pos = np.mod(pos, period)
    pos = np.where(pos >= n, period - 1 - pos, pos)
    return (pos - offset).astype(np.intp)


# --- numba kernels -------------------------------------------------------------
# float64 arithmetic in scipy's order; ``weights[r - k]`` is scipy's
# ``fw[-k]``.  The accumulators are float64 and the rows float32, so the
# compiler knows they do not overlap and vectorizes the inner loops.

def _pass_outer(src, dst, weights, anti, index, a0, q0):
    """Filter along axis 1 of ``src`` (Z, N, A, Q) into ``dst`` (Z, M, A', Q').

    Output ``dst[z, m, a, q]`` is the filter at position ``m`` (source rows
    ``index[m .. m + 2r]``), column ``a0 + a``, ``q0 + q``.
    """
    r = (weights.shape[0] - 1) // 2
    n_z, n_m, n_a, n_q = dst.shape
    acc = np.empty(n_q, dtype=np.float64)
    w0 = weights[r]
    for z in range(n_z):
        for m in range(n_m):
            for a in range(n_a):
                row = src[z, index[m + r], a0 + a, q0:q0 + n_q]
                for q in range(n_q):
                    acc[q] = np.float64(row[q]) * w0
                for k in range(r, 0, -1):
                    lo = src[z, index[m + r - k], a0 + a, q0:q0 + n_q]
                    hi = src[z, index[m + r + k], a0 + a, q0:q0 + n_q]
                    wk = weights[r - k]
                    if anti:
                        for q in range(n_q):
                            acc[q] += (np.float64(lo[q]) - np.float64(hi[q])) * wk
                    else:
                        for q in range(n_q):
                            acc[q] += (np.float64(lo[q]) + np.float64(hi[q])) * wk
                out = dst[z, m, a]
                for q in range(n_q):
                    out[q] = np.float32(acc[q])


def _pass_last(src, dst, weights, anti, index):
    """Filter along the last axis of ``src`` (P, N) into ``dst`` (P, M)."""
    r = (weights.shape[0] - 1) // 2
    n_p, n_m = dst.shape
    n_line = n_m + 2 * r
    line = np.empty(n_line, dtype=np.float32)
    acc = np.empty(n_m, dtype=np.float64)
    w0 = weights[r]
    for p in range(n_p):
        row = src[p]
        for t in range(n_line):
            line[t] = row[index[t]]
        centre = line[r:r + n_m]
        for x in range(n_m):
            acc[x] = np.float64(centre[x]) * w0
        for k in range(r, 0, -1):
            lo = line[r - k:r - k + n_m]
            hi = line[r + k:r + k + n_m]
            wk = weights[r - k]
            if anti:
                for x in range(n_m):
                    acc[x] += (np.float64(lo[x]) - np.float64(hi[x])) * wk
            else:
                for x in range(n_m):
                    acc[x] += (np.float64(lo[x]) + np.float64(hi[x])) * wk
        out = dst[p]
        for x in range(n_m):
            out[x] = np.float32(acc[x])


try:
    import numba

    _pass_outer = numba.njit(nogil=True, cache=True)(_pass_outer)
    _pass_last = numba.njit(nogil=True, cache=True)(_pass_last)
    _NUMBA_OK = True
except ImportError:  # pragma: no cover - numba is a dependency
    _NUMBA_OK = False


def _scipy_crop(image, sigma, order, crop):
    """The scipy path: filter the region ``crop`` needs, return the crop."""
    from scipy import ndimage as ndi

    region = grow_crop(crop, [kernel_radius(s) for s in sigma], image.shape)
    sub = image[tuple(slice(a, b) for a, b in region)]
    res = ndi.gaussian_filter(sub, sigma, order=order, mode="reflect", truncate=TRUNCATE,
                              output=np.float32)
    return res[tuple(slice(lo - a, hi - a) for (lo, hi), (a, _) in zip(crop, region))]


def gaussian_crop(image, sigma, order=0, crop=None):
    """Gaussian filter (or derivative) of a float32 image at the pixels of ``crop``.

    Equal, bit for bit, to ``scipy.ndimage.gaussian_filter(image, sigma,
    order=order, mode="reflect", truncate=4.0, output=np.float32)[crop]``.

    Parameters
    ----------
    image : ndarray of float32, 1 to 3 dimensions
        C-contiguous float32 (other arrays are converted).
    sigma : float or sequence of float
        Standard deviation per axis, in pixels (positive).
    order : int or sequence of int, optional
        Derivative order per axis.
    crop : sequence of (int, int), optional
        ``(start, stop)`` per axis of the pixels to return (default: all).
        The image border is reflected as scipy does for the whole image, so
        the crop's values do not depend on how much of the image lies
        outside it beyond the kernel radius.

    Returns
    -------
    out : ndarray of float32
        The filtered crop, C-contiguous.

    Examples
    --------
    >>> from scipy import ndimage as ndi
    >>> image = np.random.default_rng(0).random((40, 30), dtype=np.float32)
    >>> ref = ndi.gaussian_filter(image, 2.0, order=(0, 1), output=np.float32)
    >>> bool(np.array_equal(gaussian_crop(image, 2.0, (0, 1)), ref))
    True
    >>> bool(np.array_equal(gaussian_crop(image, 2.0, 0, ((5, 20), (0, 7))),
    ...                     ndi.gaussian_filter(image, 2.0, output=np.float32)[5:20, :7]))
    True
    """
    image = np.ascontiguousarray(image, dtype=np.float32)
    ndim = image.ndim
    if not 1 <= ndim <= 3:
        raise ValueError(f"gaussian_crop takes 1 to 3 dimensions, got {ndim}")
    sigma = (float(sigma),) * ndim if np.isscalar(sigma) else tuple(float(s) for s in sigma)
    order = (int(order),) * ndim if np.isscalar(order) else tuple(int(o) for o in order)
    if crop is None:
        crop = tuple((0, n) for n in image.shape)
    crop = tuple((int(lo), int(hi)) for lo, hi in crop)
    if not _NUMBA_OK:
        return _scipy_crop(image, sigma, order, crop)
    radius = [kernel_radius(s) for s in sigma]
    shape = image.shape
    # the range of each axis a pass must cover: its crop once that axis has
    # been filtered, the crop grown by the radius (clipped) before
    grown = grow_crop(crop, radius, shape)
    # ``src`` covers ``cover[ax]`` of each axis (the whole image at first)
    src = image
    cover = [(0, n) for n in shape]
    for ax in range(ndim):
        weights, anti = gaussian_weights(sigma[ax], order[ax])
        lo, hi = crop[ax]
        index = _reflect_index(lo, hi, radius[ax], shape[ax], cover[ax][0])
        out_ranges = [crop[i] if i <= ax else grown[i] for i in range(ndim)]
        out_shape = tuple(b - a for a, b in out_ranges)
        dst = np.empty(out_shape, dtype=np.float32)
        if ax == ndim - 1:
            rows = int(np.prod(out_shape[:-1], dtype=np.int64))
            if ax == 0:  # 1D
                src2 = src[None, :]
            else:  # every other axis is already at its crop: rows are whole
                src2 = src.reshape(rows, src.shape[-1])
            _pass_last(src2, dst.reshape(rows, out_shape[-1]), weights, anti, index)
        else:
            # view src as (Z, N, A, Q): Z the axes before ax (already
            # cropped, whole), A the axes between ax and the last (at most
            # one), Q the last; cut A and Q to their grown ranges
            z = int(np.prod(src.shape[:ax], dtype=np.int64))
            between = ndim - ax == 3  # 3D, axis 0: A is axis 1
            a_lo = grown[1][0] - cover[1][0] if between else 0
            a_src, a_dst = (src.shape[1], out_shape[1]) if between else (1, 1)
            q_lo = grown[-1][0] - cover[-1][0]
            src4 = src.reshape((z, src.shape[ax], a_src, src.shape[-1]))
            dst4 = dst.reshape((z, out_shape[ax], a_dst, out_shape[-1]))
            _pass_outer(src4, dst4, weights, anti, index, a_lo, q_lo)
        src = dst
        cover = out_ranges
    return src
