"""Exercise checkers for the lesson "So you want to segment with machine learning".

Each checker takes the learner's answer (a function or an array), runs it on
several cases it builds itself with NumPy, and either prints one line that
starts with ``✓`` or raises :class:`~pixelforest.errors.ExerciseCheckError`
whose message says which case failed and how to fix the answer (integer
division, a missing float cast, a constant image, an empty union, inverted
clusters, a wrong shape after ``reshape``...).

- :func:`check_normalize`: exercise 1, a min-max normalization function;
- :func:`check_kmeans`: exercise 2, a two-cluster K-means segmentation;
- :func:`check_iou`: exercise 3, an intersection-over-union function;
- :func:`check_features`: exercise 4, a per-pixel feature function;
- :func:`check_improvement`: exercise 5, a table of IoU scores and its
  conclusion.

The learner's code runs with NumPy's floating-point warnings silenced, so a
division by zero shows up as the hint about it, not as a stray warning.
"""

import contextlib
import numbers
import warnings
from collections.abc import Mapping

import numpy as np

from pixelforest._shared.validation import check_image
from pixelforest.errors import ExerciseCheckError, PixelforestError

__all__ = [
    "check_normalize",
    "check_kmeans",
    "check_iou",
    "check_features",
    "check_improvement",
]


# -- shared helpers ---------------------------------------------------------------

def _fail(exercise, problem, hint):
    raise ExerciseCheckError(f"Exercise {exercise}: {problem} Hint: {hint}")


def _passed(message):
    print(f"\N{CHECK MARK} {message}")


@contextlib.contextmanager
def _quiet():
    """Silence NumPy floating-point warnings raised by the learner's code."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _check_callable(fn, exercise, what):
    if not callable(fn):
        _fail(exercise, f"expected your function, got {type(fn).__name__}.",
              f"pass the function itself, without calling it: {what}(my_function).")


def _call(fn, exercise, case, *args):
    """Call the learner's ``fn(*args)`` on copies; explain any exception it raises."""
    copies = [np.array(a, copy=True) for a in args]
    try:
        with _quiet():
            result = fn(*copies)
    except ZeroDivisionError as exc:
        raise ExerciseCheckError(
            f"Exercise {exercise}: your function raised ZeroDivisionError ({exc}) on {case}. "
            "Hint: a denominator is 0 in that case; handle it before dividing."
        ) from exc
    except Exception as exc:
        raise ExerciseCheckError(
            f"Exercise {exercise}: your function raised {type(exc).__name__}: {exc} "
            f"on {case}. Hint: run it yourself on that input and read the traceback."
        ) from exc
    for original, copy in zip(args, copies):
        if not np.array_equal(original, copy, equal_nan=True):
            _fail(exercise, f"your function changed its input array in place on {case}.",
                  "work on a copy, e.g. image = image.astype(np.float32), instead of "
                  "in-place operators such as image -= ... on the argument.")
    if result is None:
        _fail(exercise, f"your function returned None on {case}.",
              "end it with a return statement.")
    return result


def _as_array(result, exercise, case):
    if not isinstance(result, np.ndarray):
        _fail(exercise, f"your function returned {type(result).__name__} on {case}, "
                        "not a NumPy array.",
              "return the array you computed (np.asarray(...) if you built a list).")
    return result


# -- exercise 1: min-max normalization -----------------------------------------------

def _normalize_cases():
    rng = np.random.default_rng(0)
    return [
        ("an 8-bit image with values 10..200 (shape 5x7)",
         rng.integers(10, 201, size=(5, 7)).astype(np.uint8)),
        ("a 12-bit camera image stored as uint16 (values 100..4000, shape 6x4)",
         rng.integers(100, 4001, size=(6, 4)).astype(np.uint16)),
        ("a float image with negative values (-3.5..2.0, shape 4x5)",
         rng.uniform(-3.5, 2.0, size=(4, 5))),
    ]


def check_normalize(fn):
    """Check a min-max normalization function (exercise 1).

    ``fn(image)`` must return a floating-point array of the same shape whose
    values are ``(image - image.min()) / (image.max() - image.min())``:
    0 at the darkest pixel, 1 at the brightest, whatever the dtype (no
    rescaling by the dtype's range), without changing the input.  A
    constant image (max == min) must give zeros, not NaN.

    Parameters
    ----------
    fn : callable
        The learner's function, taking and returning an array.

    Raises
    ------
    ExerciseCheckError
        On the first case that fails, with a hint (integer division, no
        float cast, dividing by the maximum or by the dtype's range,
        constant image, shape changed, input modified).

    Examples
    --------
    >>> import numpy as np
    >>> def my_minmax(image):
    ...     image = np.asarray(image, dtype=np.float32)
    ...     low, high = np.min(image), np.max(image)
    ...     if high == low:
    ...         return np.zeros_like(image)
    ...     return (image - low) / (high - low)
    >>> check_normalize(my_minmax)
    ✓ Exercise 1 passed: min-max normalization is right on 8-bit, 12-bit, negative-valued and constant images.
    >>> check_normalize(lambda image: image / 255)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pixelforest.errors.ExerciseCheckError: Exercise 1: you divided by a fixed number (255)...dtype...
    """
    _check_callable(fn, 1, "check_normalize")
    for case, image in _normalize_cases():
        out = _as_array(_call(fn, 1, case, image), 1, case)
        if out.shape != image.shape:
            _fail(1, f"the result has shape {out.shape} for {case}.",
                  "normalization works pixel by pixel: the result must keep the "
                  "image's shape (use np.min/np.max of the whole image, without axis=).")
        if not np.issubdtype(out.dtype, np.floating):
            _fail(1, f"the result has dtype {out.dtype} for {case}; values between 0 "
                     "and 1 cannot be stored in integers (integer division truncates "
                     "them to 0 or 1).",
                  "cast to float before dividing, e.g. image = image.astype(np.float32), "
                  "and keep the result in float.")
        lo, hi = float(image.min()), float(image.max())
        expected = (image.astype(np.float64) - lo) / (hi - lo)
        if not np.all(np.isfinite(out)):
            _fail(1, f"the result holds NaN or infinity for {case}.",
                  "check the denominator: divide by (max - min) of the image.")
        got_lo, got_hi = float(out.min()), float(out.max())
        middle = np.unique(expected[(expected > 0.01) & (expected < 0.99)])
        if middle.size and np.all(np.isin(out, (0.0, 1.0))):
            _fail(1, f"every value is 0 or 1 for {case}, as if the division were done "
                     "on integers.",
                  "use true division '/', not floor division '//', and cast to float "
                  "first.")
        scale = float(image.max()) / got_hi if got_hi > 0 else 0.0
        if (abs(got_lo) > 1e-6 and scale and abs(scale - float(image.max())) > 1e-3
                and np.allclose(out * scale, image, rtol=1e-5, atol=1e-4)):
            _fail(1, f"you divided by a fixed number ({scale:.6g}) for {case}: the "
                     f"result runs from {got_lo:.4g} to {got_hi:.4g}, not from 0 to 1.",
                  "never rescale by the dtype's range (255, 65535): a 12-bit image never "
                  "reaches 65535; use this image's own np.min and np.max.")
        if abs(got_lo) > 1e-6:
            _fail(1, f"the minimum should be 0 but is {got_lo:.4g} for {case}.",
                  "subtract np.min(image) before dividing.")
        if abs(got_hi - 1) > 1e-6:
            _fail(1, f"the maximum should be 1 but is {got_hi:.4g} for {case}.",
                  "divide by (np.max(image) - np.min(image)) of this image, not by the "
                  "maximum alone nor by the dtype's range (255, 65535): a 12-bit image "
                  "never reaches 65535.")
        err = float(np.max(np.abs(out - expected)))
        if err > 1e-5:
            _fail(1, f"values differ from (image - min) / (max - min) by up to {err:.3g} "
                     f"for {case}.",
                  "compute (image - low) / (high - low) with low = np.min(image) and "
                  "high = np.max(image), both from the original image.")
    case = "a constant image (every pixel 7)"
    image = np.full((3, 4), 7, dtype=np.uint8)
    out = _as_array(_call(fn, 1, case, image), 1, case)
    if out.shape != image.shape:
        _fail(1, f"the result has shape {out.shape} for {case}.",
              "return an array of the image's shape.")
    if not np.all(np.isfinite(out)):
        _fail(1, f"the result is NaN for {case}: max - min is 0 there, so you divided "
                 "by zero.",
              "when np.max(image) == np.min(image), return np.zeros(image.shape, "
              "np.float32) instead of dividing.")
    if not np.all(out == 0):
        _fail(1, f"{case} should become all zeros (nothing to stretch), got values "
                 f"{np.unique(out)[:5]}.",
              "return zeros when np.max(image) == np.min(image).")
    _passed("Exercise 1 passed: min-max normalization is right on 8-bit, 12-bit, "
            "negative-valued and constant images.")


# -- exercise 2: K-means segmentation -------------------------------------------------

def _reference_kmeans(image):
    from sklearn.cluster import KMeans

    pixels = image.reshape(-1, 1).astype(np.float64)
    km = KMeans(n_clusters=2, n_init=4, random_state=0).fit(pixels)
    bright = int(np.argmax(km.cluster_centers_[:, 0]))
    return (km.labels_ == bright).reshape(image.shape)


def check_kmeans(segmentation, image):
    """Check a two-cluster K-means segmentation of ``image`` (exercise 2).

    ``segmentation`` must have the image's shape (cluster ids reshaped back
    from one row per pixel), hold the cluster ids 0 and 1, with 1 the
    brighter cluster (foreground nuclei), and agree with a K-means of the
    pixel intensities (``image.reshape(-1, 1)``).

    Parameters
    ----------
    segmentation : array_like
        The learner's segmentation (int or bool).
    image : array_like
        The single-channel 2D or 3D image it was computed from (raw or
        normalized: a K-means of intensities gives the same partition).

    Raises
    ------
    ExerciseCheckError
        Wrong shape after reshape (not reshaped back, transposed, flattened
        in another order), not two clusters, inverted clusters (foreground
        0), or not a clustering of the intensities.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.cluster import KMeans
    >>> image = np.zeros((20, 30), np.float32)
    >>> image[5:12, 8:20] = 1.0
    >>> image += np.linspace(0, 0.1, 30, dtype=np.float32)
    >>> km = KMeans(n_clusters=2, n_init=4, random_state=0).fit(image.reshape(-1, 1))
    >>> ids = km.labels_.reshape(image.shape)
    >>> if km.cluster_centers_[0, 0] > km.cluster_centers_[1, 0]:
    ...     ids = 1 - ids  # cluster ids are arbitrary: make 1 the bright one
    >>> check_kmeans(ids, image)
    ✓ Exercise 2 passed: two clusters, foreground (1) is the brighter one, and it matches K-means (99.9%+ of 600 pixels agree).
    >>> check_kmeans(1 - ids, image)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pixelforest.errors.ExerciseCheckError: Exercise 2: the clusters are inverted...
    """
    try:
        image = check_image(image)
    except PixelforestError as exc:
        raise ExerciseCheckError(
            f"Exercise 2: the image you passed cannot be used ({exc}). Hint: pass the "
            "single-channel image you segmented as the second argument."
        ) from exc
    if segmentation is None:
        _fail(2, "the segmentation is None.",
              "pass the array of cluster ids, e.g. labels.reshape(image.shape); a "
              "function that only plots returns None.")
    seg = np.asarray(segmentation)
    if seg.shape != image.shape:
        if seg.size == image.size and seg.ndim == 1:
            _fail(2, f"the segmentation is flat (shape {seg.shape}): one value per pixel "
                     f"but not back in the image's shape {image.shape}.",
                  "reshape the predicted ids back: labels.reshape(image.shape).")
        if seg.shape == image.shape[::-1]:
            _fail(2, f"the segmentation has shape {seg.shape}, the image's shape "
                     f"{image.shape} reversed.",
                  "reshape with image.shape (rows, columns), not (width, height).")
        if seg.size == image.size:
            _fail(2, f"the segmentation has shape {seg.shape}, the image {image.shape}.",
                  "reshape the predicted ids with labels.reshape(image.shape).")
        _fail(2, f"the segmentation has {seg.size} values (shape {seg.shape}) but the "
                 f"image has {image.size} pixels (shape {image.shape}).",
              "fit and predict on the pixels of this image, image.reshape(-1, 1): "
              "one row per pixel, one column per feature.")
    if seg.dtype == bool:
        seg = seg.astype(np.uint8)
    if not (np.issubdtype(seg.dtype, np.integer)
            or (np.issubdtype(seg.dtype, np.floating) and np.all(seg == np.round(seg)))):
        _fail(2, f"the segmentation holds non-integer values (dtype {seg.dtype}).",
              "use the cluster ids from predict (or .labels_), not distances, cluster "
              "centers or the image itself.")
    ids = np.unique(seg)
    if ids.size != 2:
        _fail(2, f"the segmentation holds {ids.size} distinct value(s) {ids[:6].tolist()}, "
                 "not two clusters.",
              "use KMeans(n_clusters=2) and fit it on this image's pixels.")
    if set(ids.tolist()) != {0, 1}:
        _fail(2, f"the cluster ids are {ids.tolist()}, not 0 and 1.",
              "use the ids that K-means returns (0 and 1), with 1 the foreground.")
    values = image.astype(np.float64)
    fg, bg = values[seg == 1], values[seg == 0]
    if fg.mean() < bg.mean():
        _fail(2, f"the clusters are inverted: cluster 1 has mean intensity "
                 f"{fg.mean():.4g}, darker than cluster 0 ({bg.mean():.4g}), so the "
                 "nuclei are labelled 0.",
              "cluster ids are arbitrary: order them by cluster mean, e.g. "
              "ids = 1 - ids if kmeans.cluster_centers_[0, 0] > "
              "kmeans.cluster_centers_[1, 0].")
    if bg.max() >= fg.min():
        _fail(2, "this is not a clustering of the pixel intensities: some foreground "
                 f"pixels (value {fg.min():.4g}) are darker than some background pixels "
                 f"(value {bg.max():.4g}).",
              "with one feature (the intensity), two clusters split the pixels at one "
              "value; fit on image.reshape(-1, 1) and reshape the ids back with "
              "image.shape (same order, no transpose, no order='F').")
    reference = _reference_kmeans(values)
    agree = float(np.mean(reference == (seg == 1)))
    if agree < 0.99:
        _fail(2, f"your split agrees with a K-means of this image on only {agree:.1%} "
                 "of the pixels.",
              "fit KMeans(n_clusters=2) on this image's pixels (image.reshape(-1, 1)), "
              "not on another image or a crop, and predict on the same pixels.")
    shown = "99.9%+" if agree >= 0.999 else f"{agree:.1%}"
    _passed(f"Exercise 2 passed: two clusters, foreground (1) is the brighter one, and it "
            f"matches K-means ({shown} of {seg.size} pixels agree).")


# -- exercise 3: intersection over union ------------------------------------------------

def _iou_cases():
    a = np.zeros((4, 6), bool)
    b = np.zeros((4, 6), bool)
    a[0:2, 0:4] = True  # 8 pixels
    b[0:2, 2:6] = True  # 8 pixels, 4 shared -> IoU 4 / 12
    rng = np.random.default_rng(1)
    r1 = rng.random((30, 40)) < 0.4
    r2 = rng.random((30, 40)) < 0.5
    labels = np.zeros((5, 5), np.uint16)
    labels[0:2, 0:2] = 1
    labels[3:5, 3:5] = 7
    labels_pred = np.zeros((5, 5), np.uint16)
    labels_pred[0:2, 0:3] = 2
    empty = np.zeros((3, 3), bool)
    full = np.zeros((3, 3), bool)
    full[1, 1] = True
    return [
        ("two boolean masks that share 4 of 12 pixels", a, b),
        ("the same masks as 0/1 integers (uint8)", a.astype(np.uint8), b.astype(np.uint8)),
        ("two identical masks", a, a.copy()),
        ("two masks that do not overlap", a, ~a),
        ("two random 30x40 masks", r1, r2),
        ("two instance label images (nonzero = foreground)", labels_pred, labels),
        ("a mask with one pixel and an empty mask", full, empty),
        ("two empty masks (the union is empty)", empty, empty.copy()),
    ]


def _expected_iou(a, b):
    a, b = np.asarray(a) != 0, np.asarray(b) != 0
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def check_iou(fn):
    """Check an intersection-over-union function (exercise 3).

    ``fn(prediction, reference)`` must return one number,
    ``|prediction AND reference| / |prediction OR reference|``, treating every
    nonzero pixel as foreground, for boolean, 0/1 and label-image masks; two
    empty masks agree perfectly (1.0, as :func:`pixelforest.evaluate.metrics.iou`).

    Parameters
    ----------
    fn : callable
        The learner's function of two masks.

    Raises
    ------
    ExerciseCheckError
        On the first case that fails, with a hint (integer division, union
        that counts the overlap twice, Dice or pixel accuracy instead of IoU,
        label values not treated as foreground, empty union, an array
        returned instead of a number).

    Examples
    --------
    >>> import numpy as np
    >>> def iou_score(prediction, reference):
    ...     prediction, reference = np.asarray(prediction) > 0, np.asarray(reference) > 0
    ...     union = np.logical_or(prediction, reference).sum()
    ...     if union == 0:
    ...         return 1.0
    ...     return np.logical_and(prediction, reference).sum() / union
    >>> check_iou(iou_score)
    ✓ Exercise 3 passed: IoU is right on 8 cases (overlap, identical, disjoint, label images, empty union).
    >>> check_iou(lambda p, r: (p & r).sum() / (p.sum() + r.sum()))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pixelforest.errors.ExerciseCheckError: Exercise 3: ...counts the overlap twice...
    """
    _check_callable(fn, 3, "check_iou")
    cases = _iou_cases()
    for case, pred, ref in cases:
        result = _call(fn, 3, case, pred, ref)
        if isinstance(result, np.ndarray) and result.size != 1:
            _fail(3, f"your function returned an array of shape {result.shape} for {case}.",
                  "return one number: count the pixels with .sum() and divide the counts.")
        try:
            value = float(np.asarray(result).reshape(()))
        except (TypeError, ValueError):
            _fail(3, f"your function returned {type(result).__name__} for {case}, not a "
                     "number.", "return intersection / union as a number.")
        expected = _expected_iou(pred, ref)
        if np.isclose(value, expected, rtol=1e-9, atol=1e-12):
            continue
        a, b = np.asarray(pred) != 0, np.asarray(ref) != 0
        inter = int(np.logical_and(a, b).sum())
        if np.isnan(value):
            if not np.logical_or(a, b).any():
                _fail(3, f"the result is NaN for {case}: 0 / 0.",
                      "when the union is empty both masks agree perfectly: return 1.0 "
                      "before dividing.")
            _fail(3, f"the result is NaN for {case}.",
                  "check that the union is computed from both masks.")
        if not (np.array_equal(pred, a) and np.array_equal(ref, b)):
            _fail(3, f"got {value:.4g} for {case}, expected {expected:.4g}.",
                  "treat every nonzero pixel as foreground: convert with "
                  "mask = np.asarray(mask) > 0 before counting.")
        if value == 0 and expected > 0 and 0 < inter:
            _fail(3, f"got 0 for {case}, expected {expected:.4g}: the division was done on "
                     "integers.", "use '/', not '//', and do not cast the ratio to int.")
        if not 0 <= value <= 1:
            _fail(3, f"got {value:.4g} for {case}; IoU always lies between 0 and 1.",
                  "divide the intersection by the union (not the other way round).")
        total = int(a.sum() + b.sum())
        if total and np.isclose(value, inter / total):
            _fail(3, f"got {value:.4g} for {case}, expected {expected:.4g}: your union "
                     "counts the overlap twice (prediction + reference).",
                  "use np.logical_or(prediction, reference).sum(), or "
                  "prediction.sum() + reference.sum() - intersection.")
        if total and np.isclose(value, 2 * inter / total):
            _fail(3, f"got {value:.4g} for {case}, expected {expected:.4g}: that is the "
                     "Dice coefficient 2|A and B| / (|A| + |B|).",
                  "IoU divides the intersection by the union |A or B|.")
        if np.isclose(value, float(np.mean(a == b))):
            _fail(3, f"got {value:.4g} for {case}, expected {expected:.4g}: that is the "
                     "fraction of pixels where the masks agree (background included).",
                  "IoU ignores the pixels that are background in both masks: "
                  "intersection / union of the foreground.")
        _fail(3, f"got {value:.4g} for {case}, expected {expected:.4g} "
                 f"({inter} shared pixels, {int(np.logical_or(a, b).sum())} in the union).",
              "IoU = np.logical_and(p, r).sum() / np.logical_or(p, r).sum().")
    _passed(f"Exercise 3 passed: IoU is right on {len(cases)} cases (overlap, identical, "
            "disjoint, label images, empty union).")


# -- exercise 4: per-pixel features ------------------------------------------------------

def _feature_image():
    """A small non-square 8-bit image with blobs of two sizes and a gradient."""
    yy, xx = np.mgrid[0:64, 0:88]
    image = 20 + 0.4 * xx
    for cy, cx, r in ((14, 16, 6), (40, 52, 10), (12, 72, 3), (52, 14, 4)):
        image = image + 150 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r ** 2))
    image = image + np.random.default_rng(2).normal(0, 4, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def check_features(fn, *, n_baseline=3):
    """Check a per-pixel feature function (exercise 4).

    ``fn(image)`` must return a float feature stack of shape
    ``image.shape + (n_features,)`` (one row per pixel after
    ``reshape(-1, n_features)``), with more than ``n_baseline`` features, no
    NaN, no feature that is constant or duplicates another, and the same
    values for the same intensities whatever the dtype (no filter that
    silently rescales 8-bit images to [0, 1]).

    Parameters
    ----------
    fn : callable
        The learner's function of a single-channel 2D image.
    n_baseline : int, optional
        How many features the lesson's starting function has; the answer
        must add at least one.

    Raises
    ------
    ExerciseCheckError
        Wrong shape (not stacked, stacked on the first axis), no new
        feature, integer dtype, NaN, constant or duplicated feature, or
        features that depend on the dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import ndimage as ndi
    >>> def my_features(image):
    ...     image = np.asarray(image, dtype=np.float32)
    ...     return np.stack([image,
    ...                      ndi.gaussian_filter(image, 2),
    ...                      ndi.gaussian_gradient_magnitude(image, 2),
    ...                      ndi.gaussian_laplace(image, 3)], axis=-1)
    >>> check_features(my_features)
    ✓ Exercise 4 passed: 4 features per pixel (3 + 1 new), stacked channel-last, float, finite, distinct.
    >>> check_features(lambda image: np.stack([image, image], axis=-1))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pixelforest.errors.ExerciseCheckError: Exercise 4: you have 2 features...
    """
    _check_callable(fn, 4, "check_features")
    if isinstance(n_baseline, bool) or not isinstance(n_baseline, numbers.Integral) \
            or n_baseline < 0:
        raise ExerciseCheckError(
            f"n_baseline must be a non-negative integer, got {n_baseline!r}. Hint: pass the "
            "number of features of the lesson's starting function (3)."
        )
    image = _feature_image()
    case = f"an 8-bit image of shape {image.shape}"
    out = _as_array(_call(fn, 4, case, image), 4, case)
    h, w = image.shape
    if out.ndim == 2 and out.shape == image.shape:
        _fail(4, f"the result has the image's shape {out.shape}: a single feature, not a "
                 "stack.",
              "compute several feature images and stack them on a new last axis: "
              "np.stack([f1, f2, ...], axis=-1).")
    if out.ndim == 3 and out.shape[1:] == image.shape and out.shape[0] != h:
        _fail(4, f"the result has shape {out.shape}: features are on the first axis.",
              "stack with axis=-1 so that reshape(-1, n_features) gives one row per "
              "pixel: np.stack(features, axis=-1).")
    if out.ndim == 2 and out.shape[0] == h * w:
        _fail(4, f"the result has shape {out.shape}: already one row per pixel.",
              "return the stack in the image's shape, (rows, columns, n_features); the "
              "lesson reshapes it with reshape(-1, n_features) afterwards.")
    if out.ndim != 3 or out.shape[:2] != image.shape:
        _fail(4, f"the result has shape {out.shape} for an image of shape {image.shape}.",
              "return image.shape + (n_features,): np.stack(features, axis=-1).")
    n = out.shape[-1]
    if n <= n_baseline:
        _fail(4, f"you have {n} features; the starting function already had "
                 f"{n_baseline}.",
              "add at least one new feature, e.g. a Gaussian at a larger sigma, "
              "ndi.gaussian_laplace or a local standard deviation.")
    if not np.issubdtype(out.dtype, np.floating):
        _fail(4, f"the features have dtype {out.dtype}: filters on integers round or "
                 "overflow.",
              "cast the image first: image = image.astype(np.float32).")
    if not np.all(np.isfinite(out)):
        bad = sorted({int(k) for k in np.nonzero(~np.isfinite(out))[-1]})
        _fail(4, f"feature(s) {bad} (counting from 0) hold NaN or infinity.",
              "look for a division by zero or a log of 0 in those features.")
    flat = out.reshape(-1, n).astype(np.float64)
    for k in range(n):
        if np.ptp(flat[:, k]) == 0:
            _fail(4, f"feature {k} (counting from 0) has the same value at every pixel, "
                     "so it cannot help to tell pixels apart.",
                  "check that it is computed from the image (and not, e.g., a filter of "
                  "a scalar or a sum over the whole image).")
    for j in range(n):
        for k in range(j + 1, n):
            if np.allclose(flat[:, j], flat[:, k], rtol=1e-5, atol=1e-8):
                _fail(4, f"features {j} and {k} (counting from 0) are identical.",
                      "a copy adds nothing: change the filter or its sigma.")
    case = "the same image as float32"
    again = np.asarray(_call(fn, 4, case, image.astype(np.float32)))
    if again.shape != out.shape or not np.allclose(again, out, rtol=1e-4,
                                                   atol=1e-4 * max(1.0, np.ptp(flat))):
        _fail(4, "the features change when the same image is given as float32 instead "
                 "of uint8.",
              "a filter rescaled the 8-bit image to [0, 1] by its dtype (e.g. "
              "skimage.filters.gaussian without preserve_range=True): cast the image "
              "with image.astype(np.float32) before filtering.")
    _passed(f"Exercise 4 passed: {n} features per pixel ({n_baseline} + {n - n_baseline} "
            "new), stacked channel-last, float, finite, distinct.")


# -- exercise 5: did the segmentation improve? -------------------------------------------

def check_improvement(scores, predictions, reference, *, candidate, improved):
    """Check a table of IoU scores and its conclusion (exercise 5).

    Every score must be the IoU (:func:`pixelforest.evaluate.metrics.iou`) of the
    matching prediction with the reference, and ``improved`` must say
    whether ``candidate`` scores higher than every other method.

    Parameters
    ----------
    scores : mapping of str to float
        The learner's table: method name -> IoU.
    predictions : mapping of str to array_like
        Method name -> the binary segmentation that was scored (same keys).
    reference : array_like
        The reference mask (nonzero = foreground) the scores were computed
        against.
    candidate : str
        The method under test (e.g. ``"random forest"``).
    improved : bool
        The learner's answer: does ``candidate`` beat every other method?

    Raises
    ------
    ExerciseCheckError
        Missing or extra methods, a shape mismatch, a score that is not the
        IoU of its prediction, or a conclusion the numbers do not support.

    Examples
    --------
    >>> import numpy as np
    >>> ref = np.array([[0, 1, 1, 1]])
    >>> preds = {"otsu": np.array([[1, 1, 0, 0]]), "random forest": np.array([[0, 1, 1, 0]])}
    >>> scores = {"otsu": 0.25, "random forest": 2 / 3}
    >>> check_improvement(scores, preds, ref, candidate="random forest", improved=True)
    ✓ Exercise 5 passed: random forest has IoU 0.667 against 0.250 for the best other method (otsu): +0.417.
    >>> check_improvement(scores, preds, ref, candidate="random forest", improved=False)
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pixelforest.errors.ExerciseCheckError: Exercise 5: your answer improved=False...
    """
    from pixelforest.evaluate.metrics import iou

    if not isinstance(scores, Mapping) or not isinstance(predictions, Mapping):
        _fail(5, "scores and predictions must be dictionaries (method name -> value).",
              "build them as {'otsu': ..., 'k-means': ..., 'random forest': ...}.")
    if set(scores) != set(predictions):
        missing = sorted(set(predictions) - set(scores))
        extra = sorted(set(scores) - set(predictions))
        _fail(5, f"scores and predictions name different methods (no score for {missing}, "
                 f"no prediction for {extra}).",
              "use the same names as keys in both dictionaries.")
    if len(scores) < 2:
        _fail(5, f"the table has {len(scores)} method(s); a comparison needs at least two.",
              "add the unsupervised baselines (Otsu, K-means) next to the random forest.")
    if candidate not in scores:
        _fail(5, f"candidate {candidate!r} is not in the table {sorted(scores)}.",
              "pass the name of the method you are judging, exactly as in the table.")
    if not isinstance(improved, (bool, np.bool_)):
        _fail(5, f"improved must be True or False, got {improved!r}.",
              "answer the question with a boolean.")
    ref = np.asarray(reference)
    for name, pred in predictions.items():
        pred = np.asarray(pred)
        if pred.shape != ref.shape:
            _fail(5, f"the prediction of {name!r} has shape {pred.shape} but the reference "
                     f"has {ref.shape}.",
                  "score every method on the same image as the reference mask.")
        true = iou(pred, ref)
        try:
            given = float(scores[name])
        except (TypeError, ValueError):
            _fail(5, f"the score of {name!r} is {scores[name]!r}, not a number.",
                  "store the IoU as a number.")
        if not np.isclose(given, true, rtol=0, atol=1e-6):
            _fail(5, f"the score of {name!r} is {given:.4g}, but its prediction has IoU "
                     f"{true:.4g} with the reference.",
                  "compute every score with the same IoU function, on the same held-out "
                  "image and reference, after making foreground = 1 for every method.")
    others = {name: float(s) for name, s in scores.items() if name != candidate}
    best_name = max(others, key=others.get)
    best, mine = others[best_name], float(scores[candidate])
    truth = mine > best
    if bool(improved) != truth:
        _fail(5, f"your answer improved={bool(improved)} does not match the table: "
                 f"{candidate} has IoU {mine:.3f} and the best other method ({best_name}) "
                 f"{best:.3f}.",
              "compare the measured numbers, not how the pictures look.")
    _passed(f"Exercise 5 passed: {candidate} has IoU {mine:.3f} against {best:.3f} for the "
            f"best other method ({best_name}): {mine - best:+.3f}.")
