"""Intensity normalization: min-max and percentile stretching to [0, 1].

Intensities are never rescaled by dtype: a 12-bit image stored as uint16
is stretched by its own values, not divided by 65535.  Every function
accepts 2D or 3D images, with an optional ``channel_axis`` (each channel is
normalized on its own), and returns float32 of the input's shape.

The percentile normalization is built from two pieces so that large images
can be processed block by block with exactly the result of the whole image:
:func:`percentile_bounds` measures the per-channel statistics once, and
:func:`apply_bounds` is purely elementwise, so applying it to a block equals
applying it to the whole image and cropping.
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
    for i in range(flat.shape[0]):
        for c in range(flat.shape[1]):
            counts[c, np.int64(flat[i, c]) + offset] += 1


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
