"""Instance labels from a foreground probability map: split touching objects.

A pixel classifier says *where* the foreground is; a biologist wants each
nucleus on its own.  :func:`instances_from_probability` turns a foreground
probability map (e.g. ``PixelClassifier.predict_proba``'s nuclei column)
into an integer label image, one label per object, 0 for the background:

1. **Foreground**: pixels with probability above ``threshold``; holes
   smaller than a typical object are filled.
2. **Typical size**: the objects' typical radius ``r`` is estimated from the
   data (:func:`estimate_object_radius`: the median over connected
   components of their largest distance to the background, which a clump
   of touching nuclei does not inflate), unless given.  Every other scale
   follows from it, so the same defaults work for small and large nuclei.
3. **Landscape**: the distance to the background, capped at ``r`` and
   divided by it, plus a *guide* in [0, 1] that dips where two touching
   objects meet: the image's foreground contrast when ``image`` is given
   (the intensity direction that separates foreground from background,
   :func:`foreground_contrast`), else the probability itself; smoothed by a
   Gaussian of ``smoothing * r``.
4. **Seeds**: the landscape's h-maxima of depth ``seed_depth``
   (:func:`skimage.morphology.h_maxima`), at least one per connected
   component; a watershed (:func:`skimage.segmentation.watershed`) floods
   the foreground from them.
5. **Sizes**: fragments smaller than ``min_size`` are merged into the
   neighbours they touch (the watershed is run again without their seeds)
   or dropped when isolated; objects larger than ``max_size`` are dropped.
6. **Outlines** (with ``image`` only): each object's outline is redrawn
   where the contrast falls below ``outline`` times the object's own
   brightness (95th percentile), within ``0.3 r`` of the watershed's
   outline, so that dim and bright nuclei get outlines of their own rather
   than those of one global threshold.

Everything works in 2D and 3D; ``spacing`` (the physical size of a pixel
along each axis) makes distances, the radius and the smoothing isotropic
in physical units, so anisotropic stacks (a coarse z step) are split as the
objects really are.  The measured comparison of these choices with the
alternatives (distance or probability alone, a boundary class, no outline
step) is in ``benchmarks/README.md`` (``benchmarks/objects.py``).
"""

from __future__ import annotations

import numbers

import numpy as np

from pixelforest._shared.validation import (
    check_channel_axis,
    check_image,
    check_same_shape,
    to_channel_last,
)
from pixelforest.errors import InvalidImageError, InvalidParameterError

__all__ = [
    "instances_from_probability",
    "estimate_object_radius",
    "component_radii",
    "radius_from_radii",
    "foreground_mask",
    "foreground_contrast",
    "ContrastStatistics",
    "contrast_statistics",
    "check_spacing",
]

#: Radius (pixels) assumed when the foreground holds no object to measure.
_FALLBACK_RADIUS = 3.0


# ---------------------------------------------------------------- checks


def check_spacing(spacing, ndim):
    """Return ``spacing`` as a tuple of ``ndim`` positive floats (None: all 1).

    Parameters
    ----------
    spacing : float, sequence of float or None
        Physical size of a pixel along each spatial axis (one number for
        all axes, or one per axis in the image's axis order).
    ndim : int
        Number of spatial axes.

    Returns
    -------
    spacing : tuple of float

    Raises
    ------
    InvalidParameterError
        Wrong length, or a value that is not a positive finite number.

    Examples
    --------
    >>> check_spacing(None, 2)
    (1.0, 1.0)
    >>> check_spacing((2, 0.5, 0.5), 3)
    (2.0, 0.5, 0.5)
    """
    if spacing is None:
        return (1.0,) * ndim
    if isinstance(spacing, numbers.Real) and not isinstance(spacing, bool):
        values = [spacing] * ndim
    else:
        try:
            values = list(spacing)
        except TypeError:
            values = None
        if values is None or len(values) != ndim:
            raise InvalidParameterError(
                f"spacing must be one number or {ndim} numbers (one per spatial axis, "
                f"e.g. (z, y, x) step sizes), got {spacing!r}."
            )
    out = []
    for v in values:
        if (isinstance(v, bool) or not isinstance(v, numbers.Real)
                or not np.isfinite(v) or v <= 0):
            raise InvalidParameterError(
                f"spacing values must be positive numbers (physical pixel sizes), got "
                f"{spacing!r}."
            )
        out.append(float(v))
    return tuple(out)


def _check_fraction(value, name, *, allow_none=False, low=0.0, high=1.0, closed_low=False):
    if value is None and allow_none:
        return None
    ok_low = value >= low if closed_low else value > low
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not np.isfinite(value) or not ok_low or value > high):
        bracket = "[" if closed_low else "("
        raise InvalidParameterError(
            f"{name} must be a number in {bracket}{low:g}, {high:g}]"
            f"{' or None' if allow_none else ''}, got {value!r}."
        )
    return float(value)


def _check_size(value, name):
    if value is None:
        return None
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not np.isfinite(value) or value < 0):
        raise InvalidParameterError(
            f"{name} must be a number of pixels >= 0 or None, got {value!r}."
        )
    return float(value)


def _check_probability(probability):
    prob = check_image(probability, name="probability")
    prob = np.asarray(prob, dtype=np.float32)
    if prob.size and (prob.min() < 0 or prob.max() > 1):
        raise InvalidImageError(
            f"probability must hold values in [0, 1], got [{prob.min():g}, {prob.max():g}]; "
            "pass a probability map (e.g. clf.predict_proba(image)[..., k]), not an image "
            "or a label image."
        )
    return prob


# --------------------------------------------------------------- helpers


def _label(mask):
    """Connected components with full connectivity (8 in 2D, 26 in 3D)."""
    from scipy import ndimage as ndi

    structure = ndi.generate_binary_structure(mask.ndim, mask.ndim)
    labels, n = ndi.label(mask, structure=structure)
    return labels, n


def _fill_small_holes(mask, max_size):
    """Fill the background components of ``mask`` of at most ``max_size`` pixels.

    Background that touches the image border is never a hole.
    """
    from scipy import ndimage as ndi

    holes, n = ndi.label(~mask)  # face connectivity: background leaks less
    if n == 0:
        return mask
    sizes = np.bincount(holes.ravel())
    border = np.zeros(n + 1, dtype=bool)
    for axis in range(mask.ndim):
        for index in (0, -1):
            border[np.unique(np.take(holes, index, axis=axis))] = True
    fill = (sizes <= max_size) & ~border
    fill[0] = False
    return mask | fill[holes]


def _component_sizes(labels):
    return np.bincount(labels.ravel())


def estimate_object_radius(mask, *, spacing=None):
    """Typical radius of the objects of a binary mask, in physical units.

    The radius of one connected component is its largest distance to the
    background (the inscribed ball); the typical radius is the median over
    the components of at least 3 pixels per axis (``3**ndim`` pixels),
    their holes filled.  A
    clump of touching round objects has about the radius of one of them,
    so clumps do not inflate the estimate as an area would.

    Parameters
    ----------
    mask : array_like of bool
        2D or 3D foreground mask.
    spacing : float or sequence of float, optional
        Physical size of a pixel along each axis (default 1).

    Returns
    -------
    radius : float
        In the units of ``spacing``; 3 pixels (times the smallest spacing)
        when the mask holds no object large enough to measure.

    Examples
    --------
    >>> import numpy as np
    >>> yy, xx = np.mgrid[:64, :64]
    >>> mask = ((yy - 20) ** 2 + (xx - 20) ** 2 < 10 ** 2)
    >>> mask |= ((yy - 44) ** 2 + (xx - 44) ** 2 < 10 ** 2)
    >>> round(estimate_object_radius(mask))
    10
    """
    from scipy import ndimage as ndi

    mask = np.asarray(check_image(mask, name="mask")) != 0
    spacing = check_spacing(spacing, mask.ndim)
    return _estimate_radius(mask, spacing)


def _estimate_radius(mask, spacing):
    _, radii = _component_radii(mask, spacing)
    return radius_from_radii(radii[~np.isnan(radii)], spacing=spacing)


def _component_radii(mask, spacing):
    from scipy import ndimage as ndi

    # holes (a dim nucleolus) would shrink the inscribed ball
    mask = ndi.binary_fill_holes(mask)
    distance = ndi.distance_transform_edt(mask, sampling=spacing)
    labels, n = _label(mask)
    if n == 0:
        return labels, np.zeros(0, dtype=np.float64)
    sizes = _component_sizes(labels)[1:]
    peaks = np.asarray(ndi.maximum(distance, labels, np.arange(1, n + 1)), dtype=np.float64)
    return labels, np.where(sizes >= 3 ** mask.ndim, peaks, np.nan)


def component_radii(mask, *, spacing=None):
    """The connected components of a mask (holes filled) and the radius of each.

    The pieces of :func:`estimate_object_radius`, for callers that measure
    parts of an image separately and take the median of the radii
    themselves (tiled instance segmentation, :mod:`pixelforest.scale.instances`).

    Parameters
    ----------
    mask : array_like of bool
        2D or 3D foreground mask.
    spacing : float or sequence of float, optional
        Physical size of a pixel along each axis (default 1).

    Returns
    -------
    labels : ndarray of int
        The components of the mask with its holes filled (full
        connectivity), 1..N.
    radii : ndarray of float64, shape (N,)
        ``radii[k - 1]``: the largest distance of component ``k`` to the
        background (the inscribed ball's radius, in the units of
        ``spacing``), NaN for a component of fewer than ``3**ndim`` pixels
        (too small to measure).

    Examples
    --------
    >>> import numpy as np
    >>> mask = np.zeros((20, 20), bool)
    >>> mask[2:9, 2:9] = True                 # a 7 x 7 square
    >>> mask[15, 15] = True                   # a single pixel
    >>> labels, radii = component_radii(mask)
    >>> labels.max(), radii.tolist()
    (np.int32(2), [4.0, nan])
    """
    mask = np.asarray(check_image(mask, name="mask")) != 0
    spacing = check_spacing(spacing, mask.ndim)
    return _component_radii(mask, spacing)


def radius_from_radii(radii, *, spacing=None, ndim=None):
    """The typical radius: the median of measured component radii.

    Parameters
    ----------
    radii : array_like of float
        Radii of the components large enough to measure (no NaN), e.g.
        those of :func:`component_radii`.
    spacing : float or sequence of float, optional
        Physical pixel size; with no radius to take the median of, the
        fallback is 3 pixels times the smallest spacing.
    ndim : int, optional
        Number of spatial axes, needed only when ``spacing`` is one number.

    Returns
    -------
    radius : float

    Examples
    --------
    >>> radius_from_radii([4.0, 5.0, 9.0]), radius_from_radii([], spacing=(1, 0.5))
    (5.0, 1.5)
    """
    radii = np.asarray(radii, dtype=np.float64)
    if radii.size == 0:
        if spacing is None:
            return _FALLBACK_RADIUS
        if ndim is None and not isinstance(spacing, numbers.Real):
            ndim = len(spacing)
        return _FALLBACK_RADIUS * min(check_spacing(spacing, ndim or 1))
    return float(np.median(radii))


class ContrastStatistics:
    """The whole-image numbers of :func:`foreground_contrast`, to apply them to a part.

    Parameters
    ----------
    bounds : array_like, shape (n_channels, 2)
        Each channel's 1st and 99.8th percentile (the stretch to [0, 1]).
    weights : array_like, shape (n_channels,)
        How the stretched channels are combined: the difference between the
        mean foreground and the mean background colour, divided by its L1
        norm (float32).
    low, high : float
        The combined value mapped to 0 (median background pixel) and to 1
        (99th percentile of the foreground).

    Examples
    --------
    >>> import numpy as np
    >>> image = np.full((8, 8), 200.0)
    >>> image[2:6, 2:6] = 50.0
    >>> stats = contrast_statistics(image, image < 100)
    >>> stats.weights.tolist(), stats.low, stats.high
    ([-1.0], -1.0, 0.0)
    """

    __slots__ = ("bounds", "weights", "low", "high")

    def __init__(self, bounds, weights, low, high):
        self.bounds = np.asarray(bounds, dtype=np.float64)
        self.weights = np.asarray(weights, dtype=np.float32)
        self.low = float(low)
        self.high = float(high)

    def __repr__(self):
        return (f"ContrastStatistics(bounds={self.bounds.tolist()}, "
                f"weights={self.weights.tolist()}, low={self.low!r}, high={self.high!r})")


def _stretched(image_cl, bounds):
    from pixelforest.preprocess.normalize import stretch_channel_last

    return np.asarray(stretch_channel_last(image_cl, bounds, clip=True), dtype=np.float32)


def _contrast_parameters(x, mask):
    """Weights and low/high of the stretched channel-last ``x`` on ``mask``, and the
    combined values; None when there is nothing to compare."""
    n_fg = int(mask.sum())
    if n_fg == 0 or n_fg == mask.size:
        return None
    direction = x[mask].mean(axis=0) - x[~mask].mean(axis=0)
    norm = float(np.abs(direction).sum())
    if norm == 0:
        return None
    weights = (direction / norm).astype(np.float32)
    c = x @ weights
    low = float(np.median(c[~mask]))
    high = float(np.percentile(c[mask], 99))
    if high <= low:
        return None
    return weights, low, high, c


def _check_contrast_inputs(image, mask, channel_axis):
    image = check_image(image, channel_axis=channel_axis)
    axis = check_channel_axis(channel_axis, image.ndim)
    image_cl, n_channels = to_channel_last(image, axis)
    mask = np.asarray(mask) != 0
    check_same_shape(mask, image_cl[..., 0], names=("mask", "the image's spatial shape"))
    return image_cl, mask


def contrast_statistics(image, mask, *, channel_axis=None):
    """The whole-image numbers that :func:`foreground_contrast` computes from ``image``.

    Parameters
    ----------
    image, mask, channel_axis
        As for :func:`foreground_contrast`.

    Returns
    -------
    statistics : ContrastStatistics or None
        None where :func:`foreground_contrast` returns None.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.full((8, 8), 200.0)
    >>> image[2:6, 2:6] = 50.0
    >>> stats = contrast_statistics(image, image < 100)
    >>> c = foreground_contrast(image[:4], image[:4] < 100, statistics=stats)
    >>> bool((c == foreground_contrast(image, image < 100)[:4]).all())
    True
    """
    from pixelforest.preprocess.normalize import percentile_bounds

    image_cl, mask = _check_contrast_inputs(image, mask, channel_axis)
    bounds = percentile_bounds(image_cl, channel_axis=-1)
    found = _contrast_parameters(_stretched(image_cl, bounds), mask)
    if found is None:
        return None
    weights, low, high, _ = found
    return ContrastStatistics(bounds, weights, low, high)


def foreground_contrast(image, mask, *, channel_axis=None, statistics=None):
    """How much each pixel looks like the foreground, from the image, in [0, 1].

    Each channel is stretched to its 1st and 99.8th percentiles; the
    channels are combined along the difference between the mean foreground
    and the mean background colour (so dark nuclei on a bright field, or
    stained nuclei in RGB histology, get a high contrast just like bright
    fluorescent ones); the result is mapped so that the median background
    pixel is 0 and the 99th percentile of the foreground is 1.  Unlike a
    classifier's probability, which saturates inside objects, the contrast
    keeps the dimmer seam between two touching nuclei.

    Parameters
    ----------
    image : array_like
        2D or 3D image, with channels along ``channel_axis`` if given.
    mask : array_like of bool
        The foreground, of the image's spatial shape.
    channel_axis : int or None, optional
        Axis holding channels; None for a single-channel image.
    statistics : ContrastStatistics, optional
        The percentiles, channel weights and low/high values to use instead
        of measuring them on ``image`` and ``mask`` (e.g. those of a whole
        image, :func:`contrast_statistics`, applied to one block of it: the
        block then gets exactly the whole image's contrast there).

    Returns
    -------
    contrast : ndarray of float32, spatial shape of ``image``, or None
        None when the mask is empty or covers the whole image (nothing to
        compare), or the foreground and background have the same mean
        (never with ``statistics``).

    Examples
    --------
    >>> import numpy as np
    >>> image = np.full((8, 8), 200.0)
    >>> image[2:6, 2:6] = 50.0                 # a dark object
    >>> c = foreground_contrast(image, image < 100)
    >>> float(c[3, 3]), float(c[0, 0])
    (1.0, 0.0)
    """
    from pixelforest.preprocess.normalize import normalize_percentile

    image_cl, mask = _check_contrast_inputs(image, mask, channel_axis)
    if statistics is not None:
        if not isinstance(statistics, ContrastStatistics):
            raise InvalidParameterError(
                f"statistics must be a ContrastStatistics (from contrast_statistics), got "
                f"{type(statistics).__name__}."
            )
        if statistics.bounds.shape != (image_cl.shape[-1], 2):
            raise InvalidParameterError(
                f"statistics hold {statistics.bounds.shape[0]} channels but the image has "
                f"{image_cl.shape[-1]}; compute them on the same image."
            )
        c = _stretched(image_cl, statistics.bounds) @ statistics.weights
        low, high = statistics.low, statistics.high
        return np.clip((c - low) / (high - low), 0, 1).astype(np.float32)
    n_fg = int(mask.sum())
    if n_fg == 0 or n_fg == mask.size:
        return None
    x = np.asarray(normalize_percentile(image_cl, channel_axis=-1), dtype=np.float32)
    found = _contrast_parameters(x, mask)
    if found is None:
        return None
    _, low, high, c = found
    return np.clip((c - low) / (high - low), 0, 1).astype(np.float32)


def _sigmas(smoothing, radius, spacing):
    return tuple(smoothing * radius / s for s in spacing)


def _seeds(surface, mask, depth):
    """Markers: h-maxima of ``surface`` in ``mask``, at least one per component."""
    from scipy import ndimage as ndi
    from skimage.morphology import h_maxima

    peaks = h_maxima(surface, depth).astype(bool) & mask
    markers, n = _label(peaks)
    components, n_comp = _label(mask)
    if n_comp:
        seeded = np.zeros(n_comp + 1, dtype=bool)
        seeded[components[markers > 0]] = True
        missing = np.flatnonzero(~seeded[1:]) + 1
        if missing.size:
            # a component without a deep enough maximum still is one object
            where = ndi.maximum_position(surface, components, missing)
            for k, pos in enumerate(where):
                markers[pos] = n + 1 + k
    return markers


def _merge_small(labels, surface, mask, min_size):
    """Merge objects smaller than ``min_size`` into touching ones, drop isolated ones."""
    from skimage.segmentation import watershed

    sizes = _component_sizes(labels)
    small = sizes < min_size
    small[0] = False
    if not small.any():
        return labels
    markers = np.where(small[labels], 0, labels)
    # the small objects' pixels are flooded from the neighbours that touch
    # them; pixels no kept marker can reach stay background
    return watershed(-surface, markers, mask=mask & (labels > 0))


def _refine_outlines(labels, contrast, radius, spacing, fraction):
    """Redraw each outline where the contrast falls below ``fraction`` of the object's."""
    from scipy import ndimage as ndi

    reach = 0.3 * radius
    if reach > 0:
        distance, nearest = ndi.distance_transform_edt(labels == 0, sampling=spacing,
                                                       return_indices=True)
        grown = labels[tuple(nearest)]
        grown[distance > reach] = 0
    else:
        grown = labels
    out = np.zeros_like(labels)
    for value, box in enumerate(ndi.find_objects(grown), start=1):
        if box is None:
            continue
        region = grown[box] == value
        core = contrast[box][labels[box] == value]
        if core.size == 0:
            continue
        keep = region & (contrast[box] > fraction * np.percentile(core, 95))
        keep = ndi.binary_fill_holes(keep)
        parts, n = _label(keep)
        if n == 0:
            continue
        if n > 1:
            # the part holding most of the old object, not a stray neighbour's rim
            overlap = np.bincount(parts[labels[box] == value], minlength=n + 1)
            overlap[0] = 0
            keep = parts == int(np.argmax(overlap)) if overlap.any() else parts == int(
                np.argmax(np.bincount(parts.ravel())[1:]) + 1)
        out[box][keep] = value
    return out


def _ball(radius, spacing):
    """Pixels of a disc (2D) or ball (3D) of ``radius`` physical units."""
    ndim = len(spacing)
    pixel_volume = float(np.prod(spacing))
    return (np.pi * radius ** 2 if ndim == 2 else 4 / 3 * np.pi * radius ** 3) / pixel_volume


def _clean_foreground(mask, radius, spacing, min_size):
    """Fill holes smaller than an object, drop components under ``min_size`` (None: a
    tenth of an object); return ``(mask, min_size)``."""
    ball = _ball(radius, spacing)
    mask = _fill_small_holes(mask, ball)
    if min_size is None:
        min_size = 0.1 * ball
    components, _ = _label(mask)
    sizes = _component_sizes(components)
    mask &= (sizes >= min_size)[components]
    return mask, min_size


def foreground_mask(probability, *, radius, threshold=0.5, spacing=None, min_size=None):
    """The foreground that :func:`instances_from_probability` splits into objects.

    Pixels above ``threshold``, holes smaller than an object (a disc or
    ball of ``radius``) filled, components under ``min_size`` pixels
    dropped: steps 1 and 5 of the module docstring, for callers that need
    the foreground itself (e.g. to measure the whole image's contrast
    statistics block by block).

    Parameters
    ----------
    probability : array_like of float
        2D or 3D foreground probability in [0, 1].
    radius : float
        Typical object radius in the units of ``spacing``.
    threshold, spacing, min_size
        As for :func:`instances_from_probability`.

    Returns
    -------
    mask : ndarray of bool

    Examples
    --------
    >>> import numpy as np
    >>> prob = np.zeros((30, 30), np.float32)
    >>> prob[5:15, 5:15] = 0.9
    >>> prob[9, 9] = 0.1                      # a hole
    >>> prob[25, 25] = 0.9                    # a speck
    >>> mask = foreground_mask(prob, radius=5.0)
    >>> bool(mask[9, 9]), bool(mask[25, 25]), int(mask.sum())
    (True, False, 100)
    """
    prob = _check_probability(probability)
    spacing = check_spacing(spacing, prob.ndim)
    threshold = _check_threshold(threshold)
    radius = _check_radius(radius, allow_none=False)
    min_size = _check_size(min_size, "min_size")
    return _clean_foreground(prob > threshold, radius, spacing, min_size)[0]


def _check_threshold(threshold):
    threshold = _check_fraction(threshold, "threshold", closed_low=True, high=1.0)
    if threshold >= 1:
        raise InvalidParameterError(
            f"threshold must be below 1 (pixels above it are foreground), got {threshold!r}."
        )
    return threshold


def _check_radius(radius, *, allow_none=True):
    if radius is None and allow_none:
        return None
    if (isinstance(radius, bool) or not isinstance(radius, numbers.Real)
            or not np.isfinite(radius) or radius <= 0):
        raise InvalidParameterError(
            f"radius must be a positive number (physical units) or None to estimate "
            f"it, got {radius!r}."
        )
    return float(radius)


# ------------------------------------------------------------ public API


def instances_from_probability(probability, *, image=None, channel_axis=None, spacing=None,
                               threshold=0.5, radius=None, seed_depth=0.05,
                               smoothing=0.25, min_size=None, max_size=None,
                               outline=0.4, contrast_statistics=None):
    """Split a foreground probability map into objects (instance labels).

    Parameters
    ----------
    probability : array_like of float
        2D ``(Y, X)`` or 3D ``(Z, Y, X)`` foreground probability in [0, 1]
        (a binary mask works too).
    image : array_like, optional
        The image the probability was predicted from.  When given, its
        foreground contrast (:func:`foreground_contrast`) guides the splits
        between touching objects and redraws each object's outline (see
        ``outline``); when None, the probability guides the splits.
    channel_axis : int or None, optional
        Axis of ``image`` holding channels; None for a single channel.
    spacing : float or sequence of float, optional
        Physical size of a pixel along each axis, e.g. ``(2.0, 0.5, 0.5)``
        for a z step four times the xy pixel; default 1 for every axis.
    threshold : float, optional
        Pixels with a probability above it are foreground.
    radius : float, optional
        Typical object radius in the units of ``spacing``; None estimates it
        from the foreground (:func:`estimate_object_radius`).
    seed_depth : float, optional
        How much the landscape (distance / radius + guide, up to 2) must dip
        between two maxima for them to seed two objects; smaller values
        split more.
    smoothing : float, optional
        Gaussian smoothing of the landscape, as a fraction of the radius.
    min_size : float, optional
        Objects of fewer pixels are merged into the object they touch, or
        dropped if they touch none.  None: a tenth of a typical object (a
        disc or ball of ``radius``).
    max_size : float, optional
        Objects of more pixels are dropped (debris, unsplit clumps).  None
        keeps every size.
    outline : float or None, optional
        With ``image``: each object's outline is where the contrast falls
        below this fraction of the object's own brightness (its 95th
        percentile), within 0.3 radius of the watershed's outline.  None
        keeps the thresholded probability's outline.
    contrast_statistics : ContrastStatistics, optional
        With ``image``: the numbers of its foreground contrast measured
        elsewhere (:func:`contrast_statistics` of the whole image, when
        ``probability`` and ``image`` are one block of it), instead of on
        this ``image`` and its foreground.  Together with ``radius`` it
        makes a block's objects those of the whole image
        (:mod:`pixelforest.scale.instances`).

    Returns
    -------
    labels : ndarray of uint32, shape of ``probability``
        0 = background, 1..N = one object each, numbered consecutively.

    Raises
    ------
    InvalidImageError
        The probability is not 2D/3D, holds NaN or values outside [0, 1].
    ShapeMismatchError
        ``image`` does not have the probability's spatial shape.
    InvalidParameterError
        An option is out of range.

    Examples
    --------
    Two touching discs are one connected component but two objects:

    >>> import numpy as np
    >>> yy, xx = np.mgrid[:40, :60]
    >>> discs = ((yy - 20) ** 2 + (xx - 20) ** 2 < 12 ** 2) | \\
    ...         ((yy - 20) ** 2 + (xx - 40) ** 2 < 12 ** 2)
    >>> labels = instances_from_probability(discs.astype(np.float32))
    >>> labels.dtype, labels.max()
    (dtype('uint32'), np.uint32(2))
    >>> int(labels[20, 15]) != int(labels[20, 45])
    True
    """
    from scipy import ndimage as ndi
    from skimage.segmentation import relabel_sequential, watershed

    prob = _check_probability(probability)
    ndim = prob.ndim
    spacing = check_spacing(spacing, ndim)
    threshold = _check_threshold(threshold)
    seed_depth = _check_fraction(seed_depth, "seed_depth", high=2.0)
    smoothing = _check_fraction(smoothing, "smoothing", closed_low=True, high=2.0)
    outline = _check_fraction(outline, "outline", allow_none=True, high=1.0, closed_low=True)
    min_size = _check_size(min_size, "min_size")
    max_size = _check_size(max_size, "max_size")
    radius = _check_radius(radius)
    if image is not None:
        image = check_image(image, channel_axis=channel_axis)
        axis = check_channel_axis(channel_axis, image.ndim)
        spatial = image.shape if axis is None else image.shape[:axis] + image.shape[axis + 1:]
        check_same_shape(np.broadcast_to(np.uint8(0), spatial), prob,
                         names=("image (spatial shape)", "probability"))

    mask = prob > threshold
    if not mask.any():
        return np.zeros(prob.shape, dtype=np.uint32)
    if radius is None:
        radius = _estimate_radius(mask, spacing)
    mask, min_size = _clean_foreground(mask, radius, spacing, min_size)
    if not mask.any():
        return np.zeros(prob.shape, dtype=np.uint32)

    guide = foreground_contrast(image, mask, channel_axis=channel_axis,
                                statistics=contrast_statistics) \
        if image is not None else None
    contrast = guide
    if guide is None:
        guide = prob
    distance = ndi.distance_transform_edt(mask, sampling=spacing)
    surface = np.minimum(distance / radius, 1.0) + guide
    surface = ndi.gaussian_filter(surface.astype(np.float32),
                                  _sigmas(smoothing, radius, spacing), mode="nearest")

    markers = _seeds(surface, mask, seed_depth)
    labels = watershed(-surface, markers, mask=mask)
    labels = _merge_small(labels, surface, mask, min_size)
    if contrast is not None and outline is not None:
        smooth = ndi.gaussian_filter(contrast, _sigmas(0.5, 1.0, (1.0,) * ndim),
                                     mode="nearest")
        labels = _refine_outlines(labels, smooth, radius, spacing, outline)
        sizes = _component_sizes(labels)
        labels = np.where((sizes >= min_size)[labels], labels, 0)
    if max_size is not None:
        sizes = _component_sizes(labels)
        labels = np.where((sizes <= max_size)[labels], labels, 0)
    labels, _, _ = relabel_sequential(labels.astype(np.uint32, copy=False))
    return labels.astype(np.uint32, copy=False)
