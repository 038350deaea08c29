"""The image of an out-of-core prediction as a channel-last dask array, checked once."""

import os
from pathlib import Path

import numpy as np

from pixelforest._shared.validation import check_channel_axis, check_image
from pixelforest.errors import InvalidImageError

__all__ = ["as_dask_channel_last"]


def as_dask_channel_last(image, channel_axis, *, name="image"):
    """Return ``(dask array with channels last, source path or None)``."""
    import dask.array as da

    source = None
    if isinstance(image, (str, os.PathLike)):
        from pixelforest.io.images import imread_lazy

        source = Path(os.path.abspath(image))  # workers elsewhere may have another cwd
        image = imread_lazy(source)
    if isinstance(image, da.Array):
        if image.dtype == bool:
            image = image.astype(np.uint8)
        if not (np.issubdtype(image.dtype, np.integer)
                or np.issubdtype(image.dtype, np.floating)):
            raise InvalidImageError(
                f"{name} has dtype {image.dtype}, which is not a number type; "
                "convert it to an integer or float array first."
            )
        axis = check_channel_axis(channel_axis, image.ndim, name=name)
        n_spatial = image.ndim - (axis is not None)
        if n_spatial not in (2, 3):
            hint = (" If an axis holds channels, train the model with channel_axis."
                    if axis is None and image.ndim == 4 else "")
            raise InvalidImageError(
                f"{name} must have 2-D or 3-D spatial dimensions, got shape {image.shape}"
                f"{' with channel_axis=' + str(axis) if axis is not None else ''}.{hint}"
            )
        if image.size == 0:
            raise InvalidImageError(
                f"{name} is empty (shape {image.shape}); check that the file or slice "
                "holds pixels."
            )
        image_cl = image[..., np.newaxis] if axis is None else da.moveaxis(image, axis, -1)
    else:
        arr = check_image(image, channel_axis=channel_axis, name=name)
        axis = check_channel_axis(channel_axis, arr.ndim, name=name)
        arr_cl = arr[..., np.newaxis] if axis is None else np.moveaxis(arr, axis, -1)
        image_cl = da.from_array(arr_cl, chunks=arr_cl.shape)
    return image_cl, source
