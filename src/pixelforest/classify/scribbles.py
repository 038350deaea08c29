"""Simulated scribble annotations, as a person paints them in napari or ilastik.

Nobody paints full masks to train a pixel classifier: one draws a short
thick stroke inside a few objects and a few strokes across the background,
away from the objects.  :func:`simulate_scribbles` makes such sparse labels
from a reference instance-label image, reproducibly, so that tests,
benchmarks and the lesson can measure how well a method learns from them.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from pixelforest.errors import InvalidLabelsError, InvalidParameterError

__all__ = ["BACKGROUND", "FOREGROUND", "simulate_scribbles"]

#: Scribble value of background strokes.
BACKGROUND = 1
#: Scribble value of strokes inside objects.
FOREGROUND = 2


def _check_instance_labels(labels):
    arr = np.asarray(labels)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if not np.issubdtype(arr.dtype, np.integer):
        raise InvalidLabelsError(
            f"labels have dtype {arr.dtype}; give an integer instance-label image "
            "(0 = background, 1..N = one object each), e.g. labels.astype(np.uint16)."
        )
    if arr.ndim not in (2, 3):
        raise InvalidLabelsError(
            f"labels must be 2D (Y, X) or 3D (Z, Y, X), got shape {arr.shape}."
        )
    if arr.size == 0:
        raise InvalidLabelsError(f"labels are empty (shape {arr.shape}).")
    if arr.min() < 0:
        raise InvalidLabelsError(
            f"labels hold negative values (minimum {arr.min()}); use 0 for background "
            "and 1..N for objects."
        )
    if not (arr > 0).any():
        raise InvalidLabelsError(
            "labels hold no object (all 0); scribbles need at least one labelled object."
        )
    return arr


def _check_params(fraction, width, margin, n_background, background_distance,
                  stroke_length, background_length, n_planes):
    def bad(name, value, rule):
        raise InvalidParameterError(f"{name} must be {rule}, got {value!r}.")

    if not (isinstance(fraction, numbers.Real) and 0 < fraction <= 1):
        bad("fraction", fraction, "a number in (0, 1]")
    for name, value in (("width", width), ("n_planes", n_planes)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            bad(name, value, "a positive integer")
    if isinstance(n_background, bool) or not isinstance(n_background, numbers.Integral) \
            or n_background < 0:
        bad("n_background", n_background, "a non-negative integer")
    for name, value in (("margin", margin), ("background_distance", background_distance)):
        if not isinstance(value, numbers.Real) or not value >= 0:
            bad(name, value, "a non-negative number of pixels")
    for name, value in (("stroke_length", stroke_length),
                        ("background_length", background_length)):
        if not (isinstance(value, numbers.Real) and 0 < value <= 1):
            bad(name, value, "a number in (0, 1]")


def _stroke_mask(shape, allowed, center, angle, half_length, radius):
    """A thick straight stroke through ``center`` kept inside ``allowed``.

    The line is cut where it first leaves ``allowed`` on either side of the
    centre (one continuous stroke), then thickened by a disk of ``radius``.
    """
    from scipy import ndimage as ndi
    from skimage.draw import line
    from skimage.morphology import disk

    dy, dx = math.sin(angle), math.cos(angle)
    cy, cx = center
    pts = []
    for sign in (-1, 1):
        ey = int(round(cy + sign * dy * half_length))
        ex = int(round(cx + sign * dx * half_length))
        rr, cc = line(int(cy), int(cx), ey, ex)
        inside = (rr >= 0) & (rr < shape[0]) & (cc >= 0) & (cc < shape[1])
        rr, cc = rr[inside], cc[inside]
        ok = allowed[rr, cc]
        stop = int(np.argmin(ok)) if not ok.all() else ok.size
        pts.append((rr[:stop], cc[:stop]))
    mask = np.zeros(shape, dtype=bool)
    for rr, cc in pts:
        mask[rr, cc] = True
    if radius > 0 and mask.any():
        mask = ndi.binary_dilation(mask, structure=disk(radius))
    return mask


def _scribble_plane(labels, rng, *, fraction, min_objects, width, margin, n_background,
                    background_distance, stroke_length, background_length):
    """Scribbles of one 2D instance-label plane (0 = unlabelled, 1, 2)."""
    from scipy import ndimage as ndi
    from skimage.measure import regionprops

    out = np.zeros(labels.shape, dtype=np.uint8)
    radius = (width - 1) // 2
    regions = regionprops(labels)
    if regions:
        n_pick = min(len(regions), max(int(min_objects), math.ceil(fraction * len(regions))))
        order = rng.permutation(len(regions))
        drawn = 0
        for k in order:
            if drawn >= n_pick:
                break
            region = regions[k]
            y0, x0, y1, x1 = region.bbox
            pad = 1
            sub = np.pad(region.image, pad)
            dist = ndi.distance_transform_edt(sub)
            core = dist > margin + radius
            if not core.any():
                continue  # too small for a stroke of this width and margin
            # stroke centre: the core pixel nearest the object's centroid
            cy, cx = region.centroid_local
            cys, cxs = np.nonzero(core)
            j = int(np.argmin((cys - cy - pad) ** 2 + (cxs - cx - pad) ** 2))
            center = (cys[j], cxs[j])
            # along the long axis, as people draw, with a little jitter
            angle = math.pi / 2 - region.orientation + rng.normal(0, 0.3)
            half = 0.5 * stroke_length * max(region.axis_major_length, 1.0) \
                * rng.uniform(0.7, 1.0)
            stroke = _stroke_mask(sub.shape, core, center, angle, half, radius)
            stroke &= dist > margin
            if not stroke.any():
                continue
            stroke = stroke[pad:-pad, pad:-pad]
            view = out[y0:y1, x0:x1]
            view[stroke] = FOREGROUND
            drawn += 1
    if n_background:
        bg_dist = ndi.distance_transform_edt(labels == 0)
        allowed = bg_dist > background_distance + radius
        if allowed.any():
            ys, xs = np.nonzero(allowed)
            half = 0.5 * background_length * min(labels.shape)
            for _ in range(int(n_background)):
                j = int(rng.integers(ys.size))
                angle = rng.uniform(0, math.pi)
                stroke = _stroke_mask(labels.shape, allowed, (ys[j], xs[j]), angle,
                                      half * rng.uniform(0.6, 1.0), radius)
                stroke &= bg_dist > background_distance
                out[stroke & (out == 0)] = BACKGROUND
    return out


def simulate_scribbles(labels, *, random_state=0, fraction=0.3, min_objects=3, width=3,
                       margin=2.0, n_background=4, background_distance=5.0,
                       stroke_length=0.6, background_length=0.25, n_planes=3):
    """Simulate a person's scribbles from reference instance labels.

    Inside a random subset of the objects, one short straight stroke
    ``width`` pixels thick runs through the object's centre along its long
    axis, at least ``margin`` pixels from the object's border (objects too
    small for that get no stroke).  Across the background, ``n_background``
    straight strokes of random direction stay at least
    ``background_distance`` pixels from every object.

    Parameters
    ----------
    labels : array_like of int
        Instance labels (0 = background, 1..N = objects), 2D or 3D.  A
        binary mask is accepted too (touching objects then count as one).
    random_state : int, numpy Generator or None, optional
        Seed: the same seed gives the same scribbles.
    fraction : float, optional
        Fraction of the objects that get a stroke (at least ``min_objects``).
    min_objects : int, optional
        Minimum number of objects with a stroke (if there are that many).
    width : int, optional
        Stroke thickness in pixels (odd numbers are exact).
    margin : float, optional
        Minimum distance, in pixels, between a foreground stroke and the
        object's border.
    n_background : int, optional
        Number of background strokes (per plane in 3D).
    background_distance : float, optional
        Minimum distance, in pixels, between background strokes and objects.
    stroke_length : float, optional
        Foreground stroke length as a fraction of the object's long axis.
    background_length : float, optional
        Background stroke length as a fraction of the image's shorter side.
    n_planes : int, optional
        3D only: strokes are drawn in this many evenly spaced z-planes, as
        one annotates a stack plane by plane in napari; each plane is
        scribbled like a 2D image.

    Returns
    -------
    scribbles : ndarray of uint8, same shape as ``labels``
        0 = unlabelled, 1 = background (:data:`BACKGROUND`), 2 = foreground
        (:data:`FOREGROUND`).

    Raises
    ------
    InvalidLabelsError
        Labels that are not integer, negative, not 2D/3D or without objects.
    InvalidParameterError
        An option out of range.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.zeros((64, 64), np.uint16)
    >>> labels[8:24, 8:28] = 1
    >>> labels[36:56, 30:50] = 2
    >>> s = simulate_scribbles(labels, random_state=0)
    >>> s.dtype, sorted(np.unique(s).tolist())
    (dtype('uint8'), [0, 1, 2])
    >>> bool(np.all(labels[s == 2] > 0)), bool(np.all(labels[s == 1] == 0))
    (True, True)
    """
    from sklearn.utils import check_random_state

    labels = _check_instance_labels(labels)
    _check_params(fraction, width, margin, n_background, background_distance,
                  stroke_length, background_length, n_planes)
    if isinstance(random_state, np.random.Generator):
        rng = random_state
    else:
        seed = check_random_state(random_state).randint(np.iinfo(np.int32).max)
        rng = np.random.default_rng(seed)
    if labels.max() == 1 and labels.dtype != bool:
        from skimage.measure import label as cc_label

        labels = cc_label(labels > 0)
    kwargs = dict(fraction=fraction, min_objects=min_objects, width=width, margin=margin,
                  n_background=n_background, background_distance=background_distance,
                  stroke_length=stroke_length, background_length=background_length)
    if labels.ndim == 2:
        return _scribble_plane(labels, rng, **kwargs)
    out = np.zeros(labels.shape, dtype=np.uint8)
    n_z = labels.shape[0]
    planes = np.unique(np.round(np.linspace(0, n_z - 1, min(n_z, n_planes) + 2)[1:-1])
                       .astype(int)) if n_z > 2 else np.arange(n_z)
    for z in planes:
        out[z] = _scribble_plane(labels[z], rng, **kwargs)
    return out
