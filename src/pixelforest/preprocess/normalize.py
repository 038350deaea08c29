"""Intensity normalization: min-max, percentile and robust two-class stretching.

Intensities are never rescaled by dtype: a 12-bit image stored as uint16
is stretched by its own values, not divided by 65535.  Every function
accepts 2D or 3D images, with an optional ``channel_axis`` (each channel is
normalized on its own), and returns float32 of the input's shape.

The percentile normalization is built from two pieces so that large images
can be processed block by block with exactly the result of the whole image:
:func:`percentile_bounds` measures the per-channel statistics once, and
:func:`apply_bounds` is purely elementwise, so applying it to a block equals
applying it to the whole image and cropping.

The robust normalization (:func:`robust_bounds`, :func:`normalize_robust`)
maps the median of the background and of the objects (the two classes of
Otsu's threshold) to 0 and 1, leaving out the pixels at a channel's
extreme values; its statistics come from a histogram, which large images
sum block by block (:mod:`pixelforest.scale.statistics`) to the same bits.
"""

import numbers
import warnings

import numpy as np

from pixelforest._shared.validation import (
    check_channel_axis,
    check_image,
    from_channel_last,
    to_channel_last,
)
from pixelforest.errors import ChannelMismatchError, ConstantImageWarning, InvalidParameterError

__all__ = [
    "normalize_minmax",
    "normalize_percentile",
    "percentile_bounds",
    "apply_bounds",
    "robust_bounds",
    "normalize_robust",
]


def _work_dtype(dtype):
    """Float type in which ``(x - lo) / (hi - lo)`` is evaluated.

    float32 represents every value of 8- and 16-bit integers, float16 and
    float32 exactly; wider types (int32, int64, float64) are computed in
    float64 so that neither precision nor range is lost before the result
    is stored as float32.
    """
    dtype = np.dtype(dtype)
    if dtype.itemsize <= 2 or dtype == np.float32:
        return np.float32
    return np.float64


def check_percentiles(low, high):
    for name, value in (("low", low), ("high", high)):
        if (isinstance(value, bool) or not isinstance(value, numbers.Real)
                or not np.isfinite(value)):
            raise InvalidParameterError(
                f"{name} must be a finite number (a percentile between 0 and 100), "
                f"got {value!r}."
            )
    if not 0 <= low < high <= 100:
        raise InvalidParameterError(
            f"percentiles must satisfy 0 <= low < high <= 100, got low={low!r} and "
            f"high={high!r}; the usual choice is low=1.0, high=99.8."
        )


def _check_bounds(bounds, n_channels):
    arr = np.asarray(bounds, dtype=np.float64)
    if arr.ndim == 1 and arr.shape == (2,):
        arr = arr[np.newaxis]
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise InvalidParameterError(
            f"bounds must have shape (n_channels, 2) holding (low, high) per channel, "
            f"got shape {arr.shape}; compute them with percentile_bounds(image)."
        )
    if arr.shape[0] != n_channels:
        raise ChannelMismatchError(
            f"bounds hold {arr.shape[0]} channel(s) but the image has {n_channels}; "
            "compute the bounds on an image with the same channels and pass the "
            "same channel_axis to both functions."
        )
    if not np.isfinite(arr).all():
        raise InvalidParameterError(
            f"bounds contain NaN or infinite values ({arr.tolist()}); compute them "
            "with percentile_bounds on a finite image."
        )
    bad = np.flatnonzero(arr[:, 1] < arr[:, 0])
    if bad.size:
        c = int(bad[0])
        raise InvalidParameterError(
            f"bounds of channel {c} are reversed (low={arr[c, 0]!r} > high={arr[c, 1]!r}); "
            "pass them as (low, high)."
        )
    return arr


#: Warning of a channel whose bounds are equal (formatted with ``c`` and ``value``).
CONSTANT_BOUNDS_MESSAGE = (
    "the low and high bounds of channel {c} are equal ({value:g}), so it "
    "cannot be stretched and becomes all zeros; check that the channel is "
    "not empty, or use wider percentiles."
)


def stretch_channel_last(image_cl, bounds, *, clip, constant_message=CONSTANT_BOUNDS_MESSAGE):
    """Stretch a checked channel-last image with validated ``bounds``; return float32.

    No checks: the seam for callers that validated image and bounds once.
    """
    work = _work_dtype(image_cl.dtype)
    out = np.empty(image_cl.shape, dtype=np.float32)
    for c in range(image_cl.shape[-1]):
        lo, hi = bounds[c]
        if hi == lo:
            warnings.warn(constant_message.format(c=c, value=float(lo)),
                          ConstantImageWarning, stacklevel=3)
            out[..., c] = 0.0
            continue
        work_c = work
        if work is np.float32 and not (
                max(abs(lo), abs(hi), hi - lo) < 1e37 and np.float32(hi) > np.float32(lo)):
            work_c = np.float64  # the bounds do not fit float32 (huge range or tiny span)
        channel = image_cl[..., c].astype(work_c)
        with np.errstate(over="ignore"):  # only reachable with far-off bounds; clip fixes it
            channel -= work_c(lo)
            channel /= work_c(hi) - work_c(lo)
        if clip:
            np.clip(channel, 0.0, 1.0, out=channel)
        out[..., c] = channel
    return out


def bounds_channel_last(image_cl, low, high):
    """:func:`percentile_bounds` of an already checked channel-last image (no checks).

    The seam for code that validated its input once at its own public edge
    (the prediction pipeline); ``low`` and ``high`` are trusted too.
    """
    flat = image_cl.reshape(-1, image_cl.shape[-1])
    if flat.dtype in _HISTOGRAM_DTYPES and _count_values is not None:
        return _histogram_percentiles(flat, low, high)
    q = np.percentile(flat, [low, high], axis=0)
    return np.ascontiguousarray(q.T, dtype=np.float64)


def percentile_bounds(image, low=1.0, high=99.8, *, channel_axis=None):
    """Per-channel intensity percentiles, the statistics of :func:`normalize_percentile`.

    Parameters
    ----------
    image : array_like
        2D or 3D image, with channels along ``channel_axis`` if given.
    low, high : float, optional
        Percentiles (0 to 100, ``low < high``) mapped to 0 and 1.
    channel_axis : int or None, optional
        Axis holding channels; None for a single-channel image.

    Returns
    -------
    bounds : ndarray of float64, shape (n_channels, 2)
        ``bounds[c] = (low percentile, high percentile)`` of channel ``c``
        over all its pixels (``np.percentile``, linear interpolation).
        A single-channel image gives shape ``(1, 2)``.

    Raises
    ------
    InvalidImageError
        The image is empty, has the wrong number of dimensions, or holds
        NaN or infinite values.
    InvalidParameterError
        ``low`` and ``high`` are not percentiles with ``low < high``.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.arange(101, dtype=np.uint8).reshape(1, 101)
    >>> percentile_bounds(image, 10, 90)
    array([[10., 90.]])
    """
    check_percentiles(low, high)
    image = check_image(image, channel_axis=channel_axis)
    image_cl, n_channels = to_channel_last(
        image, check_channel_axis(channel_axis, image.ndim))
    return bounds_channel_last(image_cl, low, high)


def percentile_positions(n, low, high):
    """The order statistics ``np.percentile`` interpolates for ``n`` values.

    Returns the ranks ``previous`` and ``next`` (intp, one per percentile)
    and the float64 weight ``gamma`` (shape ``(2, 1)``) of numpy's
    ``"linear"`` method, computed as numpy computes them.
    """
    q = np.true_divide([low, high], 100)
    virtual = (n - 1) * q
    previous = np.floor(virtual)
    nxt = previous + 1
    above = virtual >= n - 1
    previous[above] = n - 1
    nxt[above] = n - 1
    gamma = (virtual - previous).reshape(2, 1)
    return previous.astype(np.intp), nxt.astype(np.intp), gamma


def lerp(a, b, t):
    # numpy's own linear interpolation of np.percentile (numpy/lib/_function_base_impl.py),
    # evaluated on the same operand types so that the result is identical bit for bit.
    diff_b_a = b - a
    out = np.add(a, diff_b_a * t)
    np.subtract(b, diff_b_a * (1 - t), out=out, where=t >= 0.5, casting="unsafe",
                dtype=type(out.dtype))
    return out


#: Integer types whose percentiles come from one histogram of every value.
_HISTOGRAM_DTYPES = tuple(np.dtype(t) for t in (np.uint8, np.int8, np.uint16, np.int16))


def _histogram_percentiles(flat, low, high):
    """``np.percentile(flat, [low, high], axis=0).T`` for 8- and 16-bit integers, exactly.

    One compiled pass counts every value of every channel; the order
    statistics numpy would interpolate are read off the cumulative counts
    and interpolated by numpy's own formula (:func:`lerp`), so the result
    is the same bits, without sorting.
    """
    info = np.iinfo(flat.dtype)
    n, n_channels = flat.shape
    counts = np.zeros((n_channels, int(info.max) - int(info.min) + 1), dtype=np.int64)
    _count_values(flat, counts, -int(info.min))
    previous, nxt, gamma = percentile_positions(n, low, high)
    cumulative = np.cumsum(counts, axis=1)
    # the value of rank k is the first whose cumulative count exceeds k
    prev_vals = np.empty((2, n_channels), dtype=flat.dtype)
    next_vals = np.empty((2, n_channels), dtype=flat.dtype)
    for c in range(n_channels):
        prev_vals[:, c] = np.searchsorted(cumulative[c], previous, side="right") + info.min
        next_vals[:, c] = np.searchsorted(cumulative[c], nxt, side="right") + info.min
    return np.ascontiguousarray(lerp(prev_vals, next_vals, gamma).T, dtype=np.float64)


def _count_values(flat, counts, offset):
    # four interleaved histograms, summed at the end: consecutive pixels of
    # one value do not wait on each other's increment (3x faster on 8 bits)
    n, n_channels = flat.shape
    n_bins = counts.shape[1]
    sub = np.zeros((n_channels, 4, n_bins), dtype=np.int64)
    n4 = n - n % 4
    for i in range(0, n4, 4):
        for c in range(n_channels):
            sub[c, 0, np.int64(flat[i, c]) + offset] += 1
            sub[c, 1, np.int64(flat[i + 1, c]) + offset] += 1
            sub[c, 2, np.int64(flat[i + 2, c]) + offset] += 1
            sub[c, 3, np.int64(flat[i + 3, c]) + offset] += 1
    for i in range(n4, n):
        for c in range(n_channels):
            sub[c, 0, np.int64(flat[i, c]) + offset] += 1
    for c in range(n_channels):
        for b in range(n_bins):
            counts[c, b] += sub[c, 0, b] + sub[c, 1, b] + sub[c, 2, b] + sub[c, 3, b]


try:
    import numba

    _count_values = numba.njit(nogil=True, cache=True)(_count_values)
except ImportError:  # pragma: no cover - numba is a dependency
    _count_values = None


def apply_bounds(image, bounds, *, clip=True, channel_axis=None):
    """Stretch each channel linearly so that its bounds map to 0 and 1.

    Purely elementwise: applying it to a block equals applying it to the
    whole image and cropping, which is what tiled prediction relies on.

    Parameters
    ----------
    image : array_like
        2D or 3D image, with channels along ``channel_axis`` if given.
    bounds : array_like, shape (n_channels, 2)
        ``(low, high)`` per channel, e.g. from :func:`percentile_bounds`.
        A single pair ``(low, high)`` is accepted for a single channel.
    clip : bool, optional
        Clip the result to [0, 1].
    channel_axis : int or None, optional
        Axis holding channels; None for a single-channel image.

    Returns
    -------
    out : ndarray of float32, same shape as ``image``
        ``out = (image - low) / (high - low)`` per channel, then clipped to
        [0, 1] if ``clip``.  The formula is evaluated in float32 for inputs
        of at most 16 bits and for float32 inputs (exact), in float64 for
        wider types, and stored as float32.  A channel with
        ``high == low`` becomes all zeros, with a
        :class:`~pixelforest.errors.ConstantImageWarning`.

    Raises
    ------
    InvalidImageError
        The image is empty, has the wrong number of dimensions, or holds
        NaN or infinite values.
    ChannelMismatchError
        ``bounds`` has a different number of channels than the image.
    InvalidParameterError
        ``bounds`` has the wrong shape, is not finite, or ``low > high``.

    Examples
    --------
    >>> import numpy as np
    >>> apply_bounds(np.array([[0, 5, 10, 20]], dtype=np.uint16), [[0, 10]])
    array([[0. , 0.5, 1. , 1. ]], dtype=float32)
    >>> apply_bounds(np.array([[0, 5, 10, 20]]), [[0, 10]], clip=False)
    array([[0. , 0.5, 1. , 2. ]], dtype=float32)
    """
    image = check_image(image, channel_axis=channel_axis)
    axis = check_channel_axis(channel_axis, image.ndim)
    image_cl, n_channels = to_channel_last(image, axis)
    bounds = _check_bounds(bounds, n_channels)
    out = stretch_channel_last(
        image_cl, bounds, clip=clip,
    )
    return from_channel_last(out, axis)


def normalize_minmax(image, *, channel_axis=None):
    """Stretch each channel so that its minimum becomes 0 and its maximum 1.

    Parameters
    ----------
    image : array_like
        2D or 3D image, with channels along ``channel_axis`` if given.
    channel_axis : int or None, optional
        Axis holding channels (each is stretched on its own); None for a
        single-channel image.

    Returns
    -------
    out : ndarray of float32 in [0, 1], same shape as ``image``
        ``(image - min) / (max - min)`` per channel.  A constant channel
        becomes all zeros (never NaN), with a
        :class:`~pixelforest.errors.ConstantImageWarning`.

    Raises
    ------
    InvalidImageError
        The image is empty, not numeric, has the wrong number of
        dimensions, or holds NaN or infinite values (a ``ValueError``).

    See Also
    --------
    normalize_percentile : robust to a few very bright or dark pixels.

    Examples
    --------
    >>> import numpy as np
    >>> normalize_minmax(np.array([[10, 20], [30, 50]], dtype=np.uint16))
    array([[0.  , 0.25],
           [0.5 , 1.  ]], dtype=float32)

    Channels are stretched independently:

    >>> rgb = np.array([[[0, 100], [10, 300]]])  # shape (1, 2, 2), channels last
    >>> normalize_minmax(rgb, channel_axis=-1)
    array([[[0., 0.],
            [1., 1.]]], dtype=float32)
    """
    image = check_image(image, channel_axis=channel_axis)
    axis = check_channel_axis(channel_axis, image.ndim)
    image_cl, n_channels = to_channel_last(image, axis)
    flat = image_cl.reshape(-1, n_channels)
    bounds = np.stack([flat.min(axis=0), flat.max(axis=0)], axis=1).astype(np.float64)
    out = stretch_channel_last(
        image_cl, bounds, clip=True,
        constant_message=(
            "channel {c} of the image is constant (every pixel is {value:g}), so it "
            "cannot be stretched and becomes all zeros; check that the right image "
            "or channel was loaded."
        ),
    )
    return from_channel_last(out, axis)


def normalize_percentile(image, low=1.0, high=99.8, *, clip=True, channel_axis=None):
    """Stretch each channel so that its ``low`` and ``high`` percentiles map to 0 and 1.

    More robust than :func:`normalize_minmax`: a few hot or dead pixels do
    not squeeze the rest of the intensities.  Equivalent to
    ``apply_bounds(image, percentile_bounds(image, low, high), clip=clip)``.

    Parameters
    ----------
    image : array_like
        2D or 3D image, with channels along ``channel_axis`` if given.
    low, high : float, optional
        Percentiles (0 to 100, ``low < high``) mapped to 0 and 1.
    clip : bool, optional
        Clip the result to [0, 1]; if False, pixels outside the
        percentiles fall below 0 or above 1.
    channel_axis : int or None, optional
        Axis holding channels (each is stretched on its own); None for a
        single-channel image.

    Returns
    -------
    out : ndarray of float32, same shape as ``image``
        In [0, 1] if ``clip``.  A channel whose two percentiles are equal
        becomes all zeros, with a
        :class:`~pixelforest.errors.ConstantImageWarning`.

    Raises
    ------
    InvalidImageError
        The image is empty, not numeric, has the wrong number of
        dimensions, or holds NaN or infinite values (a ``ValueError``).
    InvalidParameterError
        ``low`` and ``high`` are not percentiles with ``low < high``.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.arange(101, dtype=np.uint8).reshape(1, 101)
    >>> out = normalize_percentile(image, 10, 90)
    >>> out[0, [0, 10, 50, 90, 100]]
    array([0. , 0. , 0.5, 1. , 1. ], dtype=float32)
    """
    image = check_image(image, channel_axis=channel_axis)
    bounds = percentile_bounds(image, low, high, channel_axis=channel_axis)
    axis = check_channel_axis(channel_axis, image.ndim)
    image_cl, _ = to_channel_last(image, axis)
    out = stretch_channel_last(
        image_cl, bounds, clip=clip,
        constant_message=(
            f"the {low} and {high} percentiles of channel {{c}} are equal "
            "({value:g}), so it cannot be stretched and becomes all zeros; check "
            "the channel, or use wider percentiles (e.g. low=0, high=100)."
        ),
    )
    return from_channel_last(out, axis)


# --------------------------------------------------------------------------
# robust two-class statistics: background and objects mapped to 0 and 1

#: Range :func:`normalize_robust` clips to (background 0, objects 1).
ROBUST_CLIP = (-1.0, 2.0)

#: Histogram bins of a float (or wider than 16-bit integer) channel for
#: :func:`robust_bounds`, between its minimum and maximum.
ROBUST_BINS = 4096

#: Share of a channel's pixels at its minimum or maximum value above which
#: :func:`robust_bounds` warns of a large constant region.
CONSTANT_REGION_FRACTION = 0.02


def histogram_kind(dtype):
    """``"values"`` for 8/16-bit integers (one bin per value), else ``"bins"``."""
    return "values" if np.dtype(dtype) in _HISTOGRAM_DTYPES else "bins"


def value_histograms(flat):
    """Exact per-value counts ``(n_channels, 2 ** bits)`` of an 8/16-bit ``(n, C)`` array."""
    info = np.iinfo(flat.dtype)
    counts = np.zeros((flat.shape[1], int(info.max) - int(info.min) + 1), dtype=np.int64)
    if _count_values is not None:
        _count_values(flat, counts, -int(info.min))
    else:  # pragma: no cover - numba is a dependency
        for c in range(flat.shape[1]):
            counts[c] = np.bincount(flat[:, c].astype(np.int64) - int(info.min),
                                    minlength=counts.shape[1])
    return counts


def bin_histograms(flat, lows, highs):
    """Counts ``(n_channels, ROBUST_BINS)`` of ``np.histogram`` between each channel's extrema.

    Elementwise bin assignment: the counts of a whole image equal the sum
    of the counts of its blocks, whatever the blocks.
    """
    counts = np.zeros((flat.shape[1], ROBUST_BINS), dtype=np.int64)
    for c in range(flat.shape[1]):
        lo, hi = float(lows[c]), float(highs[c])
        if lo < hi:
            counts[c] = np.histogram(flat[:, c], bins=ROBUST_BINS, range=(lo, hi))[0]
        else:
            counts[c, 0] = flat.shape[0]
    return counts


def histogram_values(dtype, lows=None, highs=None, n_channels=1):
    """The value each histogram bin stands for, ``(n_channels, n_bins)`` float64.

    8/16-bit integers: the integer values themselves; otherwise the centre
    of each of the :data:`ROBUST_BINS` bins between the channel's extrema.
    """
    dtype = np.dtype(dtype)
    if histogram_kind(dtype) == "values":
        info = np.iinfo(dtype)
        values = np.arange(int(info.min), int(info.max) + 1, dtype=np.float64)
        return np.broadcast_to(values, (n_channels, values.size))
    out = np.empty((n_channels, ROBUST_BINS), dtype=np.float64)
    k = (np.arange(ROBUST_BINS, dtype=np.float64) + 0.5) / ROBUST_BINS
    for c in range(n_channels):
        lo, hi = float(lows[c]), float(highs[c])
        out[c] = lo * (1 - k) + hi * k if lo < hi else lo
    return out


def _weighted_median(values, counts):
    cum = np.cumsum(counts)
    return float(values[int(np.searchsorted(cum, (cum[-1] + 1) // 2))])


def _otsu_index(values, counts):
    """Index ``k`` of the histogram maximizing Otsu's between-class variance (class 0: ``<= k``)."""
    w0 = np.cumsum(counts, dtype=np.float64)
    s0 = np.cumsum(counts * values, dtype=np.float64)
    total, s_total = w0[-1], s0[-1]
    w1 = total - w0
    with np.errstate(divide="ignore", invalid="ignore"):
        between = w0 * w1 * (s0 / w0 - (s_total - s0) / w1) ** 2
    between[~((w0 > 0) & (w1 > 0))] = -1.0
    return int(np.argmax(between))


def bounds_from_histograms(values, counts, minima=None):
    """Robust ``(low, high)`` per channel from histograms; and the constant-region shares.

    Per channel: the pixels at the channel's minimum and at its maximum are
    set aside (a border or a block of missing data reads as one value, and
    saturated pixels as another, so they never move the statistics; in a
    real image these values hold few pixels), Otsu's threshold splits the
    rest into two classes, and each class's median is a bound: the
    background and the objects (whichever is brighter) become 0 and 1.

    Parameters
    ----------
    values : ndarray of float64, shape (n_channels, n_bins)
        The value of each bin (:func:`histogram_values`).
    counts : ndarray of int64, shape (n_channels, n_bins)
        The pixels in each bin.

    Returns
    -------
    bounds : ndarray of float64, shape (n_channels, 2)
    constant : ndarray of float64, shape (n_channels,)
        Per channel, the larger share of pixels at the minimum or the
        maximum value (0 for a channel of at most 3 values, which has no
        other pixels to leave them out for).
    fill : ndarray of float64, shape (n_channels, 2)
        Per channel, ``(value, level)``: when more than
        :data:`CONSTANT_REGION_FRACTION` of the pixels hold the channel's
        minimum ``value`` (a zero border, missing data), those pixels are
        to be read as ``level`` after normalization (0 or 1, the bound of
        the larger class: the background), so that the features of the
        pixels around them do not see an edge; NaN for no such region.
    """
    n_channels = counts.shape[0]
    bounds = np.empty((n_channels, 2), dtype=np.float64)
    constant = np.zeros(n_channels, dtype=np.float64)
    fill = np.full((n_channels, 2), np.nan)
    for c in range(n_channels):
        v, n = values[c], counts[c]
        nz = np.flatnonzero(n)
        total = int(n.sum())
        if nz.size > 3:  # an image of 2 or 3 values is all "constant regions"
            constant[c] = max(int(n[nz[0]]), int(n[nz[-1]])) / total
            low_share = int(n[nz[0]]) / total
        else:
            low_share = 0.0
        minimum = float(v[nz[0]] if minima is None else minima[c])
        if nz.size == 1:
            bounds[c] = v[nz[0]]
            continue
        kept = n.copy()
        if nz.size > 3:
            kept[nz[0]] = kept[nz[-1]] = 0
        lo_part, hi_part = nz[0] + (nz.size > 3), nz[-1] - (nz.size > 3)
        v, kept = v[lo_part:hi_part + 1], kept[lo_part:hi_part + 1]
        k = _otsu_index(v, kept)
        bounds[c] = _weighted_median(v[:k + 1], kept[:k + 1]), \
            _weighted_median(v[k + 1:], kept[k + 1:])
        if low_share > CONSTANT_REGION_FRACTION:
            fill[c] = minimum, 0.0 if kept[:k + 1].sum() >= kept[k + 1:].sum() else 1.0
    return bounds, constant, fill


#: Warning of a large constant region (formatted with ``c``, ``share`` and ``value``).
CONSTANT_REGION_MESSAGE = (
    "{share:.0%} of the pixels of channel {c} hold its minimum or maximum value "
    "(a border, missing data or saturation?); the normalization statistics "
    "leave them out (a region at the minimum is read as background), but the "
    "features near it may still change: crop it away if it is not part of the image."
)


def warn_constant_regions(constant, *, stacklevel=3):
    """Warn (:class:`~pixelforest.errors.ConstantRegionWarning`) of large constant regions."""
    from pixelforest.errors import ConstantRegionWarning

    for c, share in enumerate(np.asarray(constant)):
        if share > CONSTANT_REGION_FRACTION:
            warnings.warn(CONSTANT_REGION_MESSAGE.format(c=c, share=float(share)),
                          ConstantRegionWarning, stacklevel=stacklevel)


def robust_statistics_channel_last(image_cl, *, warn=True):
    """Robust statistics ``(n_channels, 4)`` of a checked channel-last image (no checks).

    Columns: the bounds of :func:`robust_bounds`, then the ``fill`` of
    :func:`bounds_from_histograms` (the minimum value of a large constant
    region and the level it is read as; NaN for none), as
    :func:`stretch_robust` applies them.
    """
    flat = image_cl.reshape(-1, image_cl.shape[-1])
    n_channels = flat.shape[1]
    if histogram_kind(flat.dtype) == "values":
        counts = value_histograms(flat)
        values = histogram_values(flat.dtype, n_channels=n_channels)
    else:
        lows, highs = flat.min(axis=0), flat.max(axis=0)
        counts = bin_histograms(flat, lows, highs)
        values = histogram_values(flat.dtype, lows, highs, n_channels)
    minima = None if histogram_kind(flat.dtype) == "values" else lows
    bounds, constant, fill = bounds_from_histograms(values, counts, minima)
    if warn:
        warn_constant_regions(constant, stacklevel=4)
    return np.concatenate([bounds, fill], axis=1)


def stretch_robust(image_cl, stats, clip=ROBUST_CLIP):
    """Stretch a channel-last block by robust statistics (:func:`robust_statistics_channel_last`).

    Elementwise: a block's result equals the same pixels of the whole image's.
    """
    out = stretch_channel_last(image_cl, stats[:, :2], clip=False)
    np.clip(out, *clip, out=out)
    for c in range(stats.shape[0]):
        value, level = stats[c, 2], stats[c, 3]
        if np.isfinite(value):
            out[..., c][image_cl[..., c] == value] = level
    return out


def robust_bounds(image, *, channel_axis=None):
    """Per-channel background and object levels, the statistics of :func:`normalize_robust`.

    Per channel: the pixels at the channel's minimum and maximum value are
    left out (a zero border, a block of missing data or saturated pixels
    then do not move the statistics), Otsu's threshold of the rest splits
    it into two classes, and the median of each class is returned.  8- and
    16-bit integers are counted exactly, value by value; other types in
    :data:`ROBUST_BINS` bins between their extrema (each bin stands for its
    centre).

    Parameters
    ----------
    image : array_like
        2D or 3D image, with channels along ``channel_axis`` if given.
    channel_axis : int or None, optional
        Axis holding channels; None for a single-channel image.

    Returns
    -------
    bounds : ndarray of float64, shape (n_channels, 2)
        ``(median of the darker class, median of the brighter class)``.

    Warns
    -----
    ConstantRegionWarning
        More than :data:`CONSTANT_REGION_FRACTION` of a channel's pixels
        hold its minimum or its maximum value.

    Examples
    --------
    >>> import numpy as np
    >>> image = (10 + np.arange(100) % 3).reshape(10, 10).astype(np.uint8)
    >>> image[3:6, 3:6] = [[50, 52, 51], [49, 50, 53], [51, 50, 52]]
    >>> image[0, 0], image[9, 9] = 0, 255     # a dead and a saturated pixel
    >>> robust_bounds(image)
    array([[11., 51.]])
    """
    image = check_image(image, channel_axis=channel_axis)
    image_cl, _ = to_channel_last(image, check_channel_axis(channel_axis, image.ndim))
    return robust_statistics_channel_last(image_cl)[:, :2]


def normalize_robust(image, *, clip=True, channel_axis=None):
    """Map each channel's background level to 0 and its object level to 1.

    ``apply_bounds(image, robust_bounds(image))``, clipped to
    :data:`ROBUST_CLIP`; the pixels of a large constant region at the
    channel's minimum (a zero border, missing data) read as the background
    level (see :func:`bounds_from_histograms`).  Unlike percentiles of the extremes, the levels of
    the two classes of pixels move little with the number of objects in
    view, their brightest pixels, a border or missing data, so images of
    one experiment come out alike.

    Parameters
    ----------
    image : array_like
        2D or 3D image, with channels along ``channel_axis`` if given.
    clip : bool, optional
        Clip the result to :data:`ROBUST_CLIP`.
    channel_axis : int or None, optional
        Axis holding channels; None for a single-channel image.

    Returns
    -------
    out : ndarray of float32, same shape as ``image``

    Examples
    --------
    >>> import numpy as np
    >>> image = (10 + np.arange(100) % 3).reshape(10, 10).astype(np.uint8)
    >>> image[3:6, 3:6] = [[50, 52, 51], [49, 50, 53], [51, 50, 52]]
    >>> image[0, 0], image[9, 9] = 0, 255     # a dead and a saturated pixel
    >>> out = normalize_robust(image)
    >>> float(out[0, 1]), float(out[4, 4]), float(out[9, 9])   # clipped to 2
    (0.0, 0.9750000238418579, 2.0)
    """
    image = check_image(image, channel_axis=channel_axis)
    axis = check_channel_axis(channel_axis, image.ndim)
    image_cl, _ = to_channel_last(image, axis)
    stats = robust_statistics_channel_last(image_cl)
    out = stretch_robust(image_cl, stats, clip=ROBUST_CLIP if clip else (-np.inf, np.inf))
    return from_channel_last(out, axis)
