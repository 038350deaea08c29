"""The image of an out-of-core prediction as a channel-last dask array, checked once."""

import os
from pathlib import Path

import numpy as np

from pixelforest._shared.validation import check_channel_axis, check_image, check_layout

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
        # the checks of an in-memory image but for finiteness, which the
        # statistics pass checks while it reads the pixels
        axis = check_layout(image.shape, image.dtype, channel_axis=channel_axis, name=name)
        if image.dtype == bool:
            image = image.astype(np.uint8)
        image_cl = image[..., np.newaxis] if axis is None else da.moveaxis(image, axis, -1)
    else:
        arr = check_image(image, channel_axis=channel_axis, name=name)
        axis = check_channel_axis(channel_axis, arr.ndim, name=name)
        arr_cl = arr[..., np.newaxis] if axis is None else np.moveaxis(arr, axis, -1)
        image_cl = da.from_array(arr_cl, chunks=arr_cl.shape)
    return image_cl, source
