"""Input checks shared by every public function.

Each check raises a :mod:`pixelforest.errors` exception whose message names
the problem and how to fix it.
"""

import numbers

import numpy as np

from pixelforest.errors import InvalidImageError, ShapeMismatchError

#: Images have this many spatial dimensions: (Y, X) or (Z, Y, X).
SPATIAL_NDIMS = (2, 3)


def check_channel_axis(channel_axis, ndim, *, name="image"):
    """Return ``channel_axis`` as a non-negative int (or None), validated."""
    if channel_axis is None:
        return None
    if isinstance(channel_axis, bool) or not isinstance(channel_axis, numbers.Integral):
        raise InvalidImageError(
            f"channel_axis must be an integer or None, got {channel_axis!r}."
        )
    if not -ndim <= channel_axis < ndim:
        raise InvalidImageError(
            f"channel_axis={channel_axis} is out of range for a {ndim}-D {name}; "
            f"use a value in [{-ndim}, {ndim - 1}] or None for a single-channel image."
        )
    return int(channel_axis) % ndim


def check_layout(shape, dtype, *, channel_axis=None, name="image", spatial_ndims=SPATIAL_NDIMS):
    """Validate an image's dtype and shape without reading its pixels.

    The checks every image gets, in memory or lazy (a dask or Zarr array):
    a number dtype (bool counts as uint8), a known channel axis, 2 or 3
    spatial dimensions, and at least one pixel and one channel.

    Returns
    -------
    axis : int or None
        ``channel_axis`` as a non-negative axis.

    Raises
    ------
    InvalidImageError
        Non-numeric dtype, empty array or wrong number of dimensions.
    """
    dtype = np.dtype(dtype)
    if not (dtype == bool or np.issubdtype(dtype, np.integer)
            or np.issubdtype(dtype, np.floating)):
        raise InvalidImageError(
            f"{name} has dtype {dtype}, which is not a number type; "
            "convert it to an integer or float array first."
        )
    shape = tuple(shape)
    ndim = len(shape)
    axis = check_channel_axis(channel_axis, ndim, name=name)
    n_spatial = ndim - (axis is not None)
    if n_spatial not in spatial_ndims:
        expected = " or ".join(f"{n}-D" for n in spatial_ndims)
        hint = (" It looks like a single row of values: reshape it to (1, N)."
                if ndim == 1 else "")
        if axis is None and ndim == max(spatial_ndims) + 1:
            hint = " If the last or first axis holds channels, pass channel_axis."
        raise InvalidImageError(
            f"{name} must have {expected} spatial dimensions, got shape {shape}"
            f"{' with channel_axis=' + str(axis) if axis is not None else ''}.{hint}"
        )
    if 0 in shape:
        if axis is not None and shape[axis] == 0:
            raise InvalidImageError(f"{name} has no channels along axis {axis}.")
        raise InvalidImageError(
            f"{name} is empty (shape {shape}); check that the file or slice holds pixels."
        )
    return axis


def check_image(image, *, channel_axis=None, name="image", allow_nonfinite=False,
                spatial_ndims=SPATIAL_NDIMS):
    """Validate an image array and return it as an ndarray (no copy if possible).

    Parameters
    ----------
    image : array_like
        The image.
    channel_axis : int or None, optional
        Axis holding channels, if any.
    name : str, optional
        What to call the array in messages.
    allow_nonfinite : bool, optional
        Accept NaN and infinity.
    spatial_ndims : tuple of int, optional
        Accepted numbers of spatial (non-channel) dimensions.

    Returns
    -------
    image : ndarray
        The validated image (bool as uint8).

    Raises
    ------
    InvalidImageError
        Non-numeric dtype, empty array, wrong number of dimensions or NaN/inf.
    """
    arr = np.asarray(image)
    check_layout(arr.shape, arr.dtype, channel_axis=channel_axis, name=name,
                 spatial_ndims=spatial_ndims)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if not allow_nonfinite and np.issubdtype(arr.dtype, np.floating):
        finite = np.isfinite(arr)
        if not finite.all():
            n_nan = int(np.isnan(arr).sum())
            n_inf = int(arr.size - finite.sum() - n_nan)
            raise InvalidImageError(
                f"{name} contains {n_nan} NaN and {n_inf} infinite values; replace them "
                "first (e.g. np.nan_to_num(image, nan=0.0)) or crop them away."
            )
    return arr


def to_channel_last(image, channel_axis):
    """Return ``(image with channels last, n_channels)``.

    A single-channel image (``channel_axis=None``) gains a trailing axis of
    length one, so callers can always loop over ``image[..., c]``.
    """
    if channel_axis is None:
        return image[..., np.newaxis], 1
    moved = np.moveaxis(image, channel_axis, -1)
    return moved, moved.shape[-1]


def from_channel_last(image, channel_axis):
    """Inverse of :func:`to_channel_last` for an array of the same layout."""
    if channel_axis is None:
        return image[..., 0]
    return np.moveaxis(image, -1, channel_axis)


def check_same_shape(a, b, *, names=("prediction", "reference")):
    """Raise :class:`ShapeMismatchError` if ``a`` and ``b`` differ in shape."""
    a_shape, b_shape = np.shape(a), np.shape(b)
    if a_shape != b_shape:
        raise ShapeMismatchError(
            f"{names[0]} has shape {a_shape} but {names[1]} has shape {b_shape}; "
            "they must match pixel for pixel (crop, pad or resize one of them)."
        )
