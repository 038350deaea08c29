"""Segmentation without labels: K-means clustering and Otsu thresholding.

:func:`kmeans_segment` clusters pixels by intensity with scikit-learn's
:class:`~sklearn.cluster.KMeans` and, unlike a bare K-means, numbers the
clusters by their mean intensity (0 the darkest).  K-means numbers its
clusters in whatever order its random start gives, so a naive use labels
the bright nuclei of a fluorescence image 0 in about one image in four;
here the nuclei are always ``n_clusters - 1``.

:func:`otsu_segment` is the classic non-learning baseline (one global
threshold, :func:`skimage.filters.threshold_otsu`) to compare against.

Both accept 2D and 3D images, with an optional ``channel_axis``.
"""

import numbers
import warnings

import numpy as np

from pixelforest._shared.validation import check_channel_axis, check_image, to_channel_last
from pixelforest.errors import ConstantImageWarning, InvalidParameterError

__all__ = ["kmeans_segment", "otsu_segment"]

#: K-means restarts; the best of them (lowest inertia) is kept.
_N_INIT = 4


def _check_positive_int(value, name, *, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise InvalidParameterError(
            f"{name} must be an integer >= {minimum}, got {value!r}."
        )
    return int(value)


def _pixel_features(image, channel_axis):
    """Validated image -> (features (n_pixels, C) float32 in [0, 1], spatial shape).

    Each channel is min-max normalized on its own, so that no channel
    dominates the distances because of its units.  Returns None for the
    features if every channel is constant.
    """
    from pixelforest.preprocess.normalize import normalize_minmax

    image = check_image(image, channel_axis=channel_axis)
    axis = check_channel_axis(channel_axis, image.ndim)
    image_cl, n_channels = to_channel_last(image, axis)
    spatial_shape = image_cl.shape[:-1]
    flat = image_cl.reshape(-1, n_channels)
    constant = flat.min(axis=0) == flat.max(axis=0)
    if constant.all():
        return None, spatial_shape
    with warnings.catch_warnings():
        # a constant channel among others carries no information; it is
        # normalized to zeros and simply does not count in the distances
        warnings.simplefilter("ignore", ConstantImageWarning)
        features = normalize_minmax(image_cl, channel_axis=-1)
    return features.reshape(-1, n_channels), spatial_shape


def _constant_result(spatial_shape, what):
    warnings.warn(
        f"the image is constant (every pixel has the same value), so {what} cannot "
        "separate anything and every pixel is labelled 0; check that the right "
        "image or channel was loaded.",
        ConstantImageWarning, stacklevel=3,
    )
    return np.zeros(spatial_shape, dtype=np.uint8)


def kmeans_segment(image, n_clusters=2, *, channel_axis=None, random_state=0,
                   max_samples=100_000):
    """Segment an image by K-means clustering of pixel intensities.

    Clusters are numbered by mean intensity, 0 the darkest, so in a
    fluorescence image (bright nuclei on a dark background) the nuclei are
    always ``n_clusters - 1``, whatever order K-means found them in.

    Parameters
    ----------
    image : array_like
        2D or 3D image, with channels along ``channel_axis`` if given.
    n_clusters : int, optional
        Number of clusters (2 to 255).
    channel_axis : int or None, optional
        Axis holding channels; None for a single-channel image.
    random_state : int, RandomState instance or None, optional
        Seed of the pixel sample and of the K-means initialisation; the
        result is deterministic for a given seed.
    max_samples : int, optional
        K-means is fitted on at most this many pixels, drawn at random
        (seeded) without replacement; every pixel is then assigned to the
        nearest cluster centre.  Images with fewer pixels are fitted on all
        of them.

    Returns
    -------
    labels : ndarray of uint8, shape of the image without its channel axis
        Cluster of each pixel, ordered by intensity: 0 is the darkest.

    Raises
    ------
    InvalidImageError
        The image is empty, not numeric, has the wrong number of
        dimensions, or holds NaN or infinite values.
    InvalidParameterError
        ``n_clusters`` or ``max_samples`` is not a valid integer, or the
        sampled pixels hold fewer distinct values than ``n_clusters``.

    Warns
    -----
    ConstantImageWarning
        The image is constant; every pixel is labelled 0.

    Notes
    -----
    Each channel is first min-max normalized to [0, 1] (see
    :func:`pixelforest.preprocess.normalize.normalize_minmax`), so that channels with
    large values do not dominate the distances; the pixels are then
    clustered with :class:`sklearn.cluster.KMeans` (k-means++, 4 seeded
    restarts).  Identical pixel values in the sample are clustered once,
    weighted by how often they occur, which minimises the same objective
    with far less work for 8- and 16-bit images.  With several channels,
    clusters are ordered by the mean over channels of their normalized
    centre, i.e. by overall brightness.

    In stained bright-field and histology images nuclei are dark, so they
    are cluster 0 there, not ``n_clusters - 1``.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.array([[200, 10, 12],
    ...                   [11, 205, 9]], dtype=np.uint8)
    >>> kmeans_segment(image)
    array([[1, 0, 0],
           [0, 1, 0]], dtype=uint8)
    >>> three = np.array([[5, 100, 200],
    ...                   [0, 110, 190]], dtype=np.uint8)
    >>> kmeans_segment(three, n_clusters=3)
    array([[0, 1, 2],
           [0, 1, 2]], dtype=uint8)
    """
    from sklearn.cluster import KMeans
    from sklearn.utils import check_random_state
    from sklearn.utils.random import sample_without_replacement
    from threadpoolctl import threadpool_limits

    n_clusters = _check_positive_int(n_clusters, "n_clusters", minimum=2)
    if n_clusters > 255:
        raise InvalidParameterError(
            f"n_clusters={n_clusters} does not fit the uint8 labels; use at most 255."
        )
    max_samples = _check_positive_int(max_samples, "max_samples", minimum=1)
    features, spatial_shape = _pixel_features(image, channel_axis)
    if features is None:
        return _constant_result(spatial_shape, "K-means")

    rng = check_random_state(random_state)
    n_pixels = features.shape[0]
    if n_pixels > max_samples:
        index = np.sort(sample_without_replacement(n_pixels, max_samples, random_state=rng))
        sample = features[index]
    else:
        sample = features
    # identical pixels are clustered once, weighted by their count: the same
    # K-means objective, far less work for 8- and 16-bit images
    values, counts = np.unique(sample, axis=0, return_counts=True)
    n_distinct = len(values)
    if n_distinct < n_clusters:
        raise InvalidParameterError(
            f"the image{' sample' if sample is not features else ''} holds only "
            f"{n_distinct} distinct pixel values, fewer than n_clusters={n_clusters}; "
            f"use n_clusters <= {n_distinct}."
        )
    model = KMeans(n_clusters=n_clusters, n_init=_N_INIT, random_state=rng)
    # the fit set is small (at most max_samples rows): one thread is fastest,
    # and avoids OpenMP's per-iteration barriers stalling on a busy machine
    with threadpool_limits(limits=1, user_api="openmp"):
        model.fit(values, sample_weight=counts)
    # rank[k] = position of cluster k when sorted by brightness
    brightness = model.cluster_centers_.mean(axis=1)
    rank = np.empty(n_clusters, dtype=np.uint8)
    rank[np.argsort(brightness, kind="stable")] = np.arange(n_clusters, dtype=np.uint8)
    labels = rank[model.predict(features)]
    return labels.reshape(spatial_shape)


def otsu_segment(image, *, channel_axis=None):
    """Segment an image with one global Otsu threshold (the non-learning baseline).

    Parameters
    ----------
    image : array_like
        2D or 3D image, with channels along ``channel_axis`` if given.
    channel_axis : int or None, optional
        Axis holding channels; None for a single-channel image.

    Returns
    -------
    mask : ndarray of uint8, shape of the image without its channel axis
        1 where the intensity is above the Otsu threshold, else 0.

    Raises
    ------
    InvalidImageError
        The image is empty, not numeric, has the wrong number of
        dimensions, or holds NaN or infinite values.

    Warns
    -----
    ConstantImageWarning
        The image is constant, so no threshold separates anything; every
        pixel is labelled 0.

    Notes
    -----
    A single-channel image is thresholded on its own values with
    :func:`skimage.filters.threshold_otsu`.  A multichannel image is
    thresholded on the mean of its channels, each min-max normalized to
    [0, 1] first (see :func:`pixelforest.preprocess.normalize.normalize_minmax`).

    Examples
    --------
    >>> import numpy as np
    >>> image = np.array([[200, 10, 12],
    ...                   [11, 205, 9]], dtype=np.uint8)
    >>> otsu_segment(image)
    array([[1, 0, 0],
           [0, 1, 0]], dtype=uint8)
    """
    from skimage.filters import threshold_otsu

    image = check_image(image, channel_axis=channel_axis)
    axis = check_channel_axis(channel_axis, image.ndim)
    if axis is None:
        values = image
    else:
        features, spatial_shape = _pixel_features(image, axis)
        if features is None:
            return _constant_result(spatial_shape, "Otsu thresholding")
        values = features.mean(axis=1).reshape(spatial_shape)
    if values.min() == values.max():
        return _constant_result(values.shape, "Otsu thresholding")
    threshold = threshold_otsu(values)
    return (values > threshold).astype(np.uint8)
