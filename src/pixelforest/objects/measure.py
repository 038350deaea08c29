"""Measure objects: one row per object of an instance label image.

:func:`measure` builds a :class:`pandas.DataFrame` with
:func:`skimage.measure.regionprops_table` (plus exact per-channel sums from
:func:`scipy.ndimage.sum_labels`): the label, its size in pixels and in
physical units, centroid and bounding box (pixel indices), intensity
statistics per channel, shape descriptors and whether the object touches
the image border (so it may be cut off).  :func:`summarize` gives one row
per image: how many objects, their mean and median size, how much of the
image they cover and their density.  :func:`write_csv` writes a table
atomically.

Columns of :func:`measure` (2D; in 3D ``area`` is ``volume``, centroids
and boxes gain a ``z`` axis, and there is no eccentricity):

==========================  ==============================================
``label``                   the object's value in the label image
``area``                    number of pixels
``area_physical``           ``area`` times the pixel area (``spacing``)
``centroid_y/x``            centre of mass, in pixel indices
``bbox_min_y/x``            first row/column of the bounding box
``bbox_max_y/x``            one past its last row/column
``axis_major_length``       of the ellipse (ellipsoid) with the same
``axis_minor_length``       second moments, in physical units
``eccentricity``            0 for a disc, towards 1 for a line (2D only)
``solidity``                area / area of the convex hull (NaN for a
                            3D object too flat to have one)
``touches_border``          the object reaches the first or last pixel of
                            some axis
``mean/min/max/sum_<ch>``   intensity per channel ``<ch>`` (``ch0``,
                            ``ch1``, ... or ``channel_names``); only with
                            an image
==========================  ==============================================
"""

from __future__ import annotations

import warnings

import numpy as np

from pixelforest._shared.validation import check_channel_axis, check_image, to_channel_last
from pixelforest.errors import InvalidLabelsError, InvalidParameterError, ShapeMismatchError
from pixelforest.segment.instances import check_spacing

__all__ = ["measure", "summarize", "write_csv", "AXES"]

#: Axis names of the columns, by number of spatial dimensions.
AXES = {2: ("y", "x"), 3: ("z", "y", "x")}


def _check_labels(labels):
    arr = check_image(labels, name="labels")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.array_equal(arr, np.round(arr)):
            raise InvalidLabelsError(
                "labels hold non-integer values; pass an instance label image "
                "(0 = background, 1..N = objects), e.g. from predict_instances."
            )
        arr = arr.astype(np.int64)
    if arr.size and arr.min() < 0:
        raise InvalidLabelsError(
            f"labels hold negative values (minimum {arr.min()}); object labels must be "
            ">= 0 with 0 as background."
        )
    return arr


def _channel_names(n_channels, channel_names):
    if channel_names is None:
        return [f"ch{c}" for c in range(n_channels)]
    names = [str(n) for n in channel_names]
    if len(names) != n_channels or len(set(names)) != len(names):
        raise InvalidParameterError(
            f"channel_names must give {n_channels} distinct names (one per channel), got "
            f"{list(channel_names)!r}."
        )
    return names


def measure(labels, image=None, *, spacing=None, channel_axis=None, channel_names=None):
    """One row per object: size, position, shape and intensities.

    Parameters
    ----------
    labels : array_like of int
        2D or 3D instance label image: 0 = background, each other value one
        object (e.g. :meth:`PixelClassifier.predict_instances
        <pixelforest.classify.classifier.PixelClassifier.predict_instances>`).
    image : array_like, optional
        Intensities to measure, of the labels' spatial shape, with channels
        along ``channel_axis`` if given.  Raw values: nothing is rescaled.
    spacing : float or sequence of float, optional
        Physical size of a pixel along each axis (e.g. micrometres); default
        1, so physical columns equal pixel ones.
    channel_axis : int or None, optional
        Axis of ``image`` holding channels; None for a single channel.
    channel_names : sequence of str, optional
        Names of the channels in the intensity columns (default ``ch0``,
        ``ch1``, ...).

    Returns
    -------
    table : pandas.DataFrame
        One row per object, sorted by label; the columns are listed in the
        module's documentation.  No object gives an empty table with the
        same columns.

    Raises
    ------
    InvalidLabelsError
        Negative or non-integer labels.
    ShapeMismatchError
        The image's spatial shape differs from the labels'.
    InvalidParameterError
        Bad ``spacing`` or ``channel_names``.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.zeros((6, 8), np.uint16)
    >>> labels[1:3, 1:4] = 1          # 2 x 3 pixels
    >>> labels[3:6, 6:8] = 2          # 3 x 2 pixels, on the border
    >>> image = np.arange(48, dtype=np.float32).reshape(6, 8)
    >>> t = measure(labels, image, spacing=0.5)
    >>> t[["label", "area", "area_physical", "touches_border"]].to_dict("list")
    {'label': [1, 2], 'area': [6, 6], 'area_physical': [1.5, 1.5], 'touches_border': [False, True]}
    >>> t["mean_ch0"].tolist(), t["sum_ch0"].tolist()
    ([14.0, 38.5], [84.0, 231.0])
    """
    import pandas as pd
    from scipy import ndimage as ndi
    from skimage.measure import regionprops_table

    labels = _check_labels(labels)
    ndim = labels.ndim
    spacing = check_spacing(spacing, ndim)
    axes = AXES[ndim]
    size = "area" if ndim == 2 else "volume"
    intensity = None
    if image is not None:
        image = check_image(image, channel_axis=channel_axis)
        axis = check_channel_axis(channel_axis, image.ndim)
        image_cl, n_channels = to_channel_last(image, axis)
        if image_cl.shape[:-1] != labels.shape:
            raise ShapeMismatchError(
                f"image has spatial shape {image_cl.shape[:-1]} but labels have shape "
                f"{labels.shape}; measure an image with the labels it was segmented into "
                "(and pass channel_axis for a multi-channel image)."
            )
        intensity = image_cl
        names = _channel_names(n_channels, channel_names)
    elif channel_names is not None:
        raise InvalidParameterError("channel_names needs an image to measure; pass image=.")

    properties = ["label", "num_pixels", "centroid", "bbox", "solidity"]
    if ndim == 2:
        properties.append("eccentricity")
    columns = {}
    if labels.max(initial=0) > 0:
        with warnings.catch_warnings():
            # a flat or one-voxel 3D object has no convex hull: its solidity is NaN
            warnings.filterwarnings("ignore", message="Failed to get convex hull",
                                    category=UserWarning)
            warnings.filterwarnings("ignore", message="divide by zero",
                                    category=RuntimeWarning)
            props = regionprops_table(labels, properties=properties)
        props["solidity"] = np.where(np.isfinite(props["solidity"]), props["solidity"],
                                     np.nan)
        shape_props = regionprops_table(labels, properties=("axis_major_length",
                                                            "axis_minor_length"),
                                        spacing=spacing)
    else:
        props = None
    n = 0 if props is None else len(props["label"])

    def get(key, dtype):
        return np.asarray(props[key], dtype=dtype) if props is not None else np.empty(0, dtype)

    columns["label"] = get("label", np.int64)
    columns[size] = get("num_pixels", np.int64)
    columns[f"{size}_physical"] = columns[size] * float(np.prod(spacing))
    for i, a in enumerate(axes):
        columns[f"centroid_{a}"] = get(f"centroid-{i}", np.float64)
    for i, a in enumerate(axes):
        columns[f"bbox_min_{a}"] = get(f"bbox-{i}", np.int64)
    for i, a in enumerate(axes):
        columns[f"bbox_max_{a}"] = get(f"bbox-{i + ndim}", np.int64)
    for key in ("axis_major_length", "axis_minor_length"):
        columns[key] = (np.asarray(shape_props[key], dtype=np.float64) if props is not None
                        else np.empty(0))
    if ndim == 2:
        columns["eccentricity"] = get("eccentricity", np.float64)
    columns["solidity"] = get("solidity", np.float64)
    touches = np.zeros(n, dtype=bool)
    for i, extent in enumerate(labels.shape):
        touches |= columns[f"bbox_min_{axes[i]}"] == 0
        touches |= columns[f"bbox_max_{axes[i]}"] == extent
    columns["touches_border"] = touches
    if intensity is not None:
        index = columns["label"]
        for c, name in enumerate(names):
            channel = intensity[..., c]
            if n:
                sums = np.asarray(ndi.sum_labels(channel.astype(np.float64), labels, index))
                mins = np.asarray(ndi.minimum(channel, labels, index), dtype=np.float64)
                maxs = np.asarray(ndi.maximum(channel, labels, index), dtype=np.float64)
            else:
                sums = mins = maxs = np.empty(0)
            columns[f"mean_{name}"] = sums / np.maximum(columns[size], 1)
            columns[f"min_{name}"] = mins
            columns[f"max_{name}"] = maxs
            columns[f"sum_{name}"] = sums
    return pd.DataFrame(columns)


def summarize(table, *, shape, spacing=None):
    """One row for a whole image: object count, sizes, coverage and density.

    Parameters
    ----------
    table : pandas.DataFrame
        A table of :func:`measure`.
    shape : tuple of int
        The spatial shape of the label image it was measured from.
    spacing : float or sequence of float, optional
        Physical pixel size along each axis, as given to :func:`measure`.

    Returns
    -------
    summary : pandas.DataFrame
        One row: ``count``, ``touching_border`` (how many objects do),
        ``mean_<size>``, ``median_<size>`` (pixels) and
        ``mean_<size>_physical``, ``coverage`` (fraction of the image inside
        objects) and ``density`` (objects per physical unit of area or
        volume of the image); ``<size>`` is ``area`` or ``volume``.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.zeros((10, 10), np.uint8)
    >>> labels[:2, :2], labels[5:9, 5:9] = 1, 2
    >>> s = summarize(measure(labels), shape=labels.shape, spacing=2.0)
    >>> s[["count", "mean_area", "coverage", "density"]].to_dict("records")
    [{'count': 2, 'mean_area': 10.0, 'coverage': 0.2, 'density': 0.005}]
    """
    import pandas as pd

    shape = tuple(int(s) for s in shape)
    if len(shape) not in AXES:
        raise InvalidParameterError(f"shape must be 2D or 3D, got {shape!r}.")
    spacing = check_spacing(spacing, len(shape))
    size = "area" if len(shape) == 2 else "volume"
    if size not in table or f"{size}_physical" not in table:
        raise InvalidParameterError(
            f"the table has no {size!r} column for a {len(shape)}-D shape; pass the table "
            "measure() returned for that label image."
        )
    n_pixels = float(np.prod(shape))
    extent = n_pixels * float(np.prod(spacing))
    count = int(len(table))
    sizes = table[size].to_numpy()
    row = {
        "count": count,
        "touching_border": int(table["touches_border"].sum()) if count else 0,
        f"mean_{size}": float(sizes.mean()) if count else 0.0,
        f"median_{size}": float(np.median(sizes)) if count else 0.0,
        f"mean_{size}_physical": float(table[f"{size}_physical"].mean()) if count else 0.0,
        "coverage": float(sizes.sum()) / n_pixels,
        "density": count / extent,
    }
    return pd.DataFrame([row])


def write_csv(table, path, *, overwrite=True):
    """Write a table as CSV atomically (temporary file, then rename).

    Parameters
    ----------
    table : pandas.DataFrame
    path : str or Path
    overwrite : bool, optional
        Replace an existing file; if False an existing ``path`` raises
        :class:`~pixelforest.errors.OutputExistsError` before anything is
        written.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> import pandas as pd
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "objects.csv"
    >>> write_csv(pd.DataFrame({"label": [1, 2]}), path)
    >>> path.read_text().splitlines()
    ['label', '1', '2']
    """
    from pixelforest._shared.atomic import atomic_output

    with atomic_output(path, overwrite=overwrite) as tmp:
        table.to_csv(tmp, index=False)
