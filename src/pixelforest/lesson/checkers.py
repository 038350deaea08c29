"""Exercise checkers for the lesson "So you want to segment with machine learning".

Each checker takes the learner's answer (a function or an array), runs it on
cases it builds itself with NumPy, and either prints one line that starts
with ``✓`` or raises :class:`~pixelforest.errors.ExerciseCheckError` whose
message names the cause and how to fix it.  A checker diagnoses a cause only
when it has tested it: "integer arithmetic" only if the same function is right
on the same values as floats, "that is the Dice coefficient" only if the
answer equals the Dice coefficient on every case, and so on.

An exercise that is still the lesson's skeleton (a function whose body is only
``...``, a value that is still ``...``, or the unchanged starting features) is
*not done yet*: the checker prints a line that says so and returns, without
raising, so that "Run all" in the learner's notebook goes on to the end.

- :func:`check_normalize`: exercise 1, a min-max normalization function;
- :func:`check_kmeans`: exercise 2, a two-cluster K-means segmentation;
- :func:`check_iou`: exercise 3, an intersection-over-union function;
- :func:`check_features`: exercise 4, a per-pixel feature function;
- :func:`check_improvement`: exercise 5, tables of IoU scores on held-out
  data and their conclusion;
- :func:`check_count`: exercise 6, the number of nuclei of an instance label
  image and the mean area of those away from the border.

The learner's code runs with NumPy's floating-point warnings silenced, so a
division by zero shows up as the hint about it, not as a stray warning.
"""

import contextlib
import dis
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
    "check_count",
    "NOT_DONE",
]

#: The start of the line a checker prints for an exercise still in its skeleton.
NOT_DONE = "is not done yet"


# -- shared helpers ---------------------------------------------------------------

def _fail(exercise, problem, hint):
    raise ExerciseCheckError(f"Exercise {exercise}: {problem} Hint: {hint}")


def _passed(message):
    print(f"\N{CHECK MARK} {message}")


def _not_done(exercise, message):
    print(f"\N{WRITING HAND} Exercise {exercise} {NOT_DONE}: {message}")


@contextlib.contextmanager
def _quiet():
    """Silence NumPy floating-point warnings raised by the learner's code."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


_SKELETON_OPS = {"RESUME", "NOP", "LOAD_CONST", "RETURN_VALUE", "RETURN_CONST", "POP_TOP",
                 "CACHE"}


def _is_skeleton(fn):
    """True for a function whose body is only ``...`` or ``pass`` (and a docstring)."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return False
    ops = list(dis.get_instructions(code))
    return (all(ins.opname in _SKELETON_OPS for ins in ops)
            and all(ins.argval in (None, Ellipsis) or ins.opname != "LOAD_CONST"
                    or ins.offset == 0 for ins in ops)
            and all(ins.argval is None for ins in ops
                    if ins.opname in ("RETURN_CONST",)))


def _is_placeholder(value):
    return value is Ellipsis


def _check_callable(fn, exercise, what):
    if not callable(fn):
        _fail(exercise, f"expected your function, got {type(fn).__name__}.",
              f"pass the function itself, without calling it: {what}(my_function).")


_READS = {"LOAD_FAST", "LOAD_FAST_CHECK", "LOAD_FAST_AND_CLEAR", "LOAD_FAST_LOAD_FAST",
          "LOAD_DEREF", "LOAD_CLOSURE", "MAKE_CELL", "DELETE_FAST"}


def _unread_arguments(fn):
    """The names of ``fn``'s positional parameters that its code never reads."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return []
    params = code.co_varnames[:code.co_argcount]
    read = set()
    for ins in dis.get_instructions(code):
        if ins.opname in _READS:
            read.update(ins.argval if isinstance(ins.argval, tuple) else (ins.argval,))
    # nested functions and comprehensions that use a parameter read it as a free variable
    for const in code.co_consts:
        if hasattr(const, "co_freevars"):
            read.update(const.co_freevars)
    return [p for p in params if p not in read]


def _check_reads_arguments(fn, exercise):
    unread = _unread_arguments(fn)
    if not unread:
        return
    arrays = [name for name in getattr(fn, "__code__").co_names
              if isinstance(getattr(fn, "__globals__", {}).get(name), np.ndarray)]
    used = (f" and uses the notebook's variable {', '.join(repr(a) for a in arrays)} instead"
            if arrays else "")
    names = ", ".join(repr(p) for p in unread)
    _fail(exercise, f"your function never reads its argument {names}{used}, so it "
                    "gives the same answer whatever it is given.",
          "compute everything from the function's own arguments (inside the function, "
          "use the parameter's name, not a variable of the notebook).")


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
    if isinstance(result, tuple) and any(isinstance(r, np.ndarray) for r in result):
        _fail(exercise, f"your function returned a tuple of {len(result)} values on {case}.",
              "return only the array (not also the minimum, maximum or other values).")
    if not isinstance(result, np.ndarray):
        _fail(exercise, f"your function returned {type(result).__name__} on {case}, "
                        "not a NumPy array.",
              "return the array you computed (np.asarray(...) if you built a list).")
    return result


def _rounded_to(values, decimals=(0, 1, 2, 3)):
    """The fewest decimals ``values`` are rounded to (as float32 or float64), or None."""
    values = np.asarray(values, dtype=np.float64)
    for d in decimals:
        if np.allclose(values, np.round(values, d), rtol=0, atol=1e-6):
            return d
    return None


# -- exercise 1: min-max normalization -----------------------------------------------

def _normalize_cases():
    rng = np.random.default_rng(0)
    eight = rng.integers(10, 201, size=(5, 7)).astype(np.uint8)
    eight[0, 0], eight[-1, -1] = 10, 200
    twelve = rng.integers(100, 4001, size=(6, 4)).astype(np.uint16)
    twelve[0, 0], twelve[-1, -1] = 100, 4000
    return [
        ("an 8-bit image with values 10..200 (shape 5x7)", eight),
        ("a 12-bit camera image stored as uint16 (values 100..4000, shape 6x4)", twelve),
        ("a float image with negative values (-3.5..2.0, shape 4x5)",
         rng.uniform(-3.5, 2.0, size=(4, 5))),
    ]


def _expected_minmax(image):
    image = np.asarray(image, dtype=np.float64)
    return (image - image.min()) / (image.max() - image.min())


def _minmax_error(out, image):
    """None if ``out`` is the min-max normalization of ``image``, else the largest error."""
    out = np.asarray(out)
    if out.shape != image.shape or not np.issubdtype(out.dtype, np.floating):
        return np.inf
    with _quiet():
        err = float(np.max(np.abs(out.astype(np.float64) - _expected_minmax(image))))
    return None if err <= 1e-5 else err


def _diagnose_minmax(fn, out, image, case):
    """Name the cause of a wrong min-max result ``out`` of ``fn(image)``."""
    expected = _expected_minmax(image)
    values = out.astype(np.float64)
    if np.issubdtype(image.dtype, np.integer):
        # the formula, given the very same values as floats: is the dtype the problem?
        as_float = image.astype(np.float64)
        try:
            with _quiet():
                again = fn(as_float.copy())
        except Exception:  # noqa: BLE001 - the integer case is what we report on
            again = None
        if again is not None and _minmax_error(again, as_float) is None:
            wrapped = bool(np.any(values < -1e-6) or np.any(values > 1 + 1e-6))
            _fail(1, f"your formula is right on the same values given as float64, but wrong "
                     f"on {case}: the arithmetic was done in the image's integer dtype "
                     f"{image.dtype}, which "
                     + ("wraps around (in uint8, 5 - 10 is 251 and 200 * 2 is 144)."
                        if wrapped else "rounds, truncates or wraps around intermediate "
                        "values."),
                  "cast to float before any arithmetic: image = image.astype(np.float32).")
    if np.allclose(values, 1 - expected, atol=1e-5):
        _fail(1, f"the result is inverted for {case}: the brightest pixel became 0 and the "
                 "darkest 1.",
              "compute (image - min) / (max - min), not (max - image) / (max - min).")
    if np.allclose(values, 100 * expected, atol=1e-3):
        _fail(1, f"the result runs from 0 to 100 for {case}: a percentage.",
              "do not multiply by 100; normalized values lie between 0 and 1.")
    for axis, name in ((0, "column"), (1, "row")):
        low = image.astype(np.float64).min(axis=axis, keepdims=True)
        span = np.ptp(image.astype(np.float64), axis=axis, keepdims=True)
        with _quiet():
            per_axis = np.where(span > 0, (image - low) / np.where(span > 0, span, 1), 0)
        if np.allclose(values, per_axis, atol=1e-5):
            _fail(1, f"each {name} was normalized on its own for {case}.",
                  f"take the minimum and maximum of the whole image: np.min(image) and "
                  f"np.max(image), without axis={axis}.")
    if np.all(np.isin(values, (0.0, 1.0))) and np.unique(expected).size > 2:
        _fail(1, f"every value is 0 or 1 for {case}, as if the division were done "
                 "on integers.",
              "use true division '/', not floor division '//', and cast to float first.")
    got_lo, got_hi = float(values.min()), float(values.max())
    scale = float(image.max()) / got_hi if got_hi > 0 else 0.0
    if (abs(got_lo) > 1e-6 and scale and abs(scale - float(image.max())) > 1e-3
            and np.allclose(values * scale, image, rtol=1e-5, atol=1e-4)):
        _fail(1, f"you divided by a fixed number ({scale:.6g}) for {case}: the "
                 f"result runs from {got_lo:.4g} to {got_hi:.4g}, not from 0 to 1.",
              "never rescale by the dtype's range (255, 65535): a 12-bit image never "
              "reaches 65535; use this image's own np.min and np.max.")
    if abs(got_lo) <= 1e-6 and abs(got_hi - 1) <= 1e-6:
        at_ends = int(np.sum((values <= 1e-6) | (values >= 1 - 1e-6)))
        if at_ends > int(np.sum((expected <= 1e-6) | (expected >= 1 - 1e-6))):
            _fail(1, f"{at_ends} of the {values.size} pixels of {case} are exactly 0 or 1: "
                     "values "
                     "were clipped (percentile normalization, np.clip).",
                  "min-max normalization uses the very darkest and brightest pixel, "
                  "np.min(image) and np.max(image), so nothing needs clipping.")
    if abs(got_lo) > 1e-6:
        _fail(1, f"the minimum should be 0 but is {got_lo:.4g} for {case}.",
              "subtract np.min(image) before dividing.")
    if abs(got_hi - 1) > 1e-6:
        _fail(1, f"the maximum should be 1 but is {got_hi:.4g} for {case}.",
              "divide by (np.max(image) - np.min(image)) of this image, not by the "
              "maximum alone nor by the dtype's range (255, 65535).")
    err = float(np.max(np.abs(values - expected)))
    if out.dtype == np.float16:
        _fail(1, f"values differ from (image - min) / (max - min) by up to {err:.3g} for "
                 f"{case}: float16 keeps only about 3 significant digits.",
              "use np.float32 or np.float64.")
    decimals = _rounded_to(values)
    if decimals is not None:
        _fail(1, f"the values are rounded to {decimals} decimal(s) for {case} (off by up "
                 f"to {err:.3g}).",
              "do not round: keep the full floating-point result.")
    _fail(1, f"values differ from (image - min) / (max - min) by up to {err:.3g} "
             f"for {case}.",
          "compute (image - low) / (high - low) with low = np.min(image) and "
          "high = np.max(image), both from the original image.")


def check_normalize(fn, image=None):
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
    image : array_like, optional
        The lesson's image: when given, the answer is also compared with
        :func:`pixelforest.normalize_minmax` on it.

    Raises
    ------
    ExerciseCheckError
        On the first case that fails, with its cause: arithmetic in the
        image's integer dtype (wrap-around, truncation; tested by giving the
        same values as floats), floor division, an inverted result, a
        percentage, per-row or per-column normalization, a division by the
        dtype's range, clipping, rounding, float16, a constant image, a
        changed shape, a modified input, or an argument the function never
        reads.

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
    >>> def my_minmax(image):
    ...     ...
    >>> check_normalize(my_minmax)  # the lesson's skeleton # doctest: +ELLIPSIS
    ✍ Exercise 1 is not done yet: ...
    >>> check_normalize(lambda image: image / 255)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pixelforest.errors.ExerciseCheckError: Exercise 1: you divided by a fixed number (255)...dtype...
    """
    _check_callable(fn, 1, "check_normalize")
    if _is_skeleton(fn):
        _not_done(1, "the function's body is still '...'. Write it where it says "
                     "'# your code here' and run the cell again.")
        return
    _check_reads_arguments(fn, 1)
    for case, image_case in _normalize_cases():
        out = _as_array(_call(fn, 1, case, image_case), 1, case)
        if out.shape != image_case.shape:
            _fail(1, f"the result has shape {out.shape} for {case} of shape "
                     f"{image_case.shape}.",
                  "normalization works pixel by pixel: return an array of the image's "
                  "shape, and keep the image's shape (use np.min/np.max of the whole "
                  "image, without axis=, and no ravel or reshape).")
        if not np.issubdtype(out.dtype, np.floating):
            _fail(1, f"the result has dtype {out.dtype} for {case}; values between 0 "
                     "and 1 cannot be stored in integers (integer division truncates "
                     "them to 0 or 1).",
                  "cast to float before dividing, e.g. image = image.astype(np.float32), "
                  "and keep the result in float.")
        if not np.all(np.isfinite(out)):
            _fail(1, f"the result holds NaN or infinity for {case}.",
                  "check the denominator: divide by (max - min) of the image.")
        if _minmax_error(out, image_case) is not None:
            _diagnose_minmax(fn, out, image_case, case)
    case = "a constant image (every pixel 7)"
    constant = np.full((3, 4), 7, dtype=np.uint8)
    out = _as_array(_call(fn, 1, case, constant), 1, case)
    if out.shape != constant.shape:
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
    extra = ""
    if image is not None:
        from pixelforest.preprocess.normalize import normalize_minmax

        image = np.asarray(image)
        case = f"the lesson's image (shape {image.shape}, {image.dtype})"
        out = _as_array(_call(fn, 1, case, image), 1, case)
        if out.shape != image.shape or _minmax_error(out, image) is not None:
            _diagnose_minmax(fn, np.asarray(out, dtype=np.float64), image, case)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            diff = float(np.max(np.abs(out - normalize_minmax(image))))
        extra = (f" On the lesson's image it differs from pixelforest.normalize_minmax by "
                 f"at most {diff:.2g}.")
    _passed("Exercise 1 passed: min-max normalization is right on 8-bit, 12-bit, "
            "negative-valued and constant images." + extra)


# -- exercise 2: K-means segmentation -------------------------------------------------

def _reference_kmeans(image):
    from sklearn.cluster import KMeans

    pixels = image.reshape(-1, 1).astype(np.float64)
    km = KMeans(n_clusters=2, n_init=4, random_state=0).fit(pixels)
    bright = int(np.argmax(km.cluster_centers_[:, 0]))
    threshold = float(np.mean(km.cluster_centers_[:, 0]))
    return (km.labels_ == bright).reshape(image.shape), threshold


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
        With the cause: the model, its centres or distances passed instead of
        the ids; the arguments swapped; not reshaped back, transposed or
        reshaped in Fortran order (tested by undoing it); not two clusters;
        ids other than 0 and 1 (0/255, 1/2); inverted clusters; a threshold
        somewhere else than K-means puts it; ids of other pixels.

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
    if _is_placeholder(segmentation):
        _not_done(2, "segmentation is still '...'. Replace it with your K-means "
                     "segmentation where it says '# your code here' and run the cell again.")
        return
    if segmentation is None:
        _fail(2, "the segmentation is None.",
              "pass the array of cluster ids, e.g. labels.reshape(image.shape); a "
              "function that only plots returns None.")
    if hasattr(segmentation, "cluster_centers_") or hasattr(segmentation, "fit"):
        _fail(2, f"you passed the model ({type(segmentation).__name__}), not a "
                 "segmentation.",
              "pass the cluster ids it predicts for each pixel, reshaped to the image: "
              "model.predict(pixels).reshape(image.shape).")
    if image is None or _is_placeholder(image):
        _fail(2, "the image is missing.", "pass the image you segmented as the second "
                                          "argument: check_kmeans(segmentation, normalized).")
    try:
        image = check_image(image)
    except PixelforestError as exc:
        raise ExerciseCheckError(
            f"Exercise 2: the image you passed cannot be used ({exc}). Hint: pass the "
            "single-channel image you segmented as the second argument."
        ) from exc
    try:
        seg = np.asarray(segmentation)
        if seg.dtype == object:
            raise TypeError
    except (TypeError, ValueError):
        _fail(2, f"the segmentation ({type(segmentation).__name__}) is not an array.",
              "pass the array of cluster ids reshaped to the image's shape.")
    if (seg.shape == image.shape and np.unique(image).size <= 2
            and np.unique(seg).size > 2):
        _fail(2, "the image you passed holds only two values and the segmentation many: "
                 "the two arguments are swapped.",
              "call check_kmeans(segmentation, image): the segmentation first.")
    if seg.shape != image.shape:
        if seg.size in (1, 2) or seg.shape in ((2, 1), (1, 2)):
            _fail(2, f"you passed {seg.size} value(s) (shape {seg.shape}): the cluster "
                     "centres, not a value per pixel.",
                  "predict the cluster of every pixel: kmeans.predict(pixels), then "
                  "reshape to the image's shape.")
        if seg.ndim == 2 and seg.shape[0] == image.size and seg.shape[1] > 1:
            _fail(2, f"the segmentation has shape {seg.shape}: one column per cluster, like "
                     "the distances from kmeans.transform.",
                  "use kmeans.predict(pixels), which gives one cluster id per pixel.")
        if seg.size == image.size and seg.ndim == 1:
            _fail(2, f"the segmentation is flat (shape {seg.shape}): one value per pixel "
                     f"but not back in the image's shape {image.shape}.",
                  "reshape the predicted ids back: labels.reshape(image.shape).")
        if seg.shape == image.shape[::-1]:
            _fail(2, f"the segmentation has shape {seg.shape}, the image's shape "
                     f"{image.shape} reversed.",
                  "reshape with image.shape (rows, columns), not (width, height), and do "
                  "not transpose.")
        if seg.size == image.size:
            _fail(2, f"the segmentation has shape {seg.shape}, the image {image.shape}.",
                  "reshape the predicted ids with labels.reshape(image.shape).")
        _fail(2, f"the segmentation has {seg.size} values (shape {seg.shape}) but the "
                 f"image has {image.size} pixels (shape {image.shape}): it is the "
                 "segmentation of other pixels (a crop, the other half, another image).",
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
        how = ("seg = (seg == 255)" if set(ids.tolist()) == {0, 255}
               else f"seg = (seg == {ids[1]}) with {ids[1]} the brighter cluster")
        _fail(2, f"the cluster ids are {ids.tolist()}, not 0 and 1.",
              f"use the ids that K-means returns (0 and 1), with 1 the foreground: {how}.")
    values = image.astype(np.float64)
    reference, threshold = _reference_kmeans(values)
    mask = seg == 1
    agree = float(np.mean(reference == mask))
    if agree < 0.99:
        for name, fixed, hint in (
                ("transposed (a .T, or a reshape with order='F')",
                 mask.T if mask.shape[::-1] == mask.shape else None,
                 "do not transpose, and reshape the ids with the default order: "
                 "labels.reshape(image.shape)."),
                ("reshaped in Fortran (column-major) order",
                 mask.ravel(order="F").reshape(mask.shape), "reshape with the default "
                 "order, labels.reshape(image.shape), not order='F'."),
                ("inverted", ~mask, "cluster ids are arbitrary: order them by cluster "
                 "mean, e.g. ids = 1 - ids if kmeans.cluster_centers_[0, 0] > "
                 "kmeans.cluster_centers_[1, 0].")):
            if fixed is not None and np.mean(reference == fixed) >= 0.99:
                if name == "inverted":
                    _fail(2, f"the clusters are inverted: cluster 1 has mean intensity "
                             f"{values[mask].mean():.4g}, darker than cluster 0 "
                             f"({values[~mask].mean():.4g}), so the nuclei are labelled 0.",
                          hint)
                _fail(2, f"your ids are right but {name}: undoing that makes them agree "
                         "with K-means.", hint)
        fg, bg = values[mask], values[~mask]
        if fg.mean() < bg.mean():
            _fail(2, f"the clusters are inverted: cluster 1 has mean intensity "
                     f"{fg.mean():.4g}, darker than cluster 0 ({bg.mean():.4g}), and it "
                     "does not agree with K-means either.",
                  "make 1 the brighter cluster, and fit K-means on this image's pixels.")
        if bg.max() < fg.min():
            split = (bg.max() + fg.min()) / 2
            _fail(2, f"your split is a threshold at about {split:.4g}, but K-means of this "
                     f"image puts it at {threshold:.4g} (only {agree:.1%} of the pixels "
                     "agree).",
                  "fit KMeans(n_clusters=2) on this image's pixels (image.reshape(-1, 1)) "
                  "and use its ids, instead of a threshold you chose.")
        _fail(2, "this is not a clustering of this image's intensities: some foreground "
                 f"pixels (value {fg.min():.4g}) are darker than some background pixels "
                 f"(value {bg.max():.4g}); only {agree:.1%} agree with K-means.",
              "predict the ids of this image's own pixels, image.reshape(-1, 1), (not of a "
              "'pixels' variable that holds another image) and reshape them back with "
              "image.shape.")
    shown = "99.9%+" if agree >= 0.999 else f"{agree:.1%}"
    _passed(f"Exercise 2 passed: two clusters, foreground (1) is the brighter one, and it "
            f"matches K-means ({shown} of {seg.size} pixels agree).")


# -- exercise 3: intersection over union ------------------------------------------------

def _iou_cases():
    small = np.zeros((5, 6), bool)
    big = np.zeros((5, 6), bool)
    small[0:2, 0:3] = True  # 6 pixels
    big[0:3, 1:5] = True    # 12 pixels, 4 shared -> IoU 4 / 14
    a = np.zeros((4, 6), bool)
    b = np.zeros((4, 6), bool)
    a[0:2, 0:4] = True  # 8 pixels
    b[0:2, 2:6] = True  # 8 pixels, 4 shared -> IoU 4 / 12
    rng = np.random.default_rng(1)
    r1 = rng.random((30, 40)) < 0.3
    r2 = rng.random((30, 40)) < 0.6
    labels = np.zeros((5, 5), np.uint16)
    labels[0:2, 0:2] = 1
    labels[3:5, 3:5] = 7
    labels_pred = np.zeros((5, 5), np.uint16)
    labels_pred[0:2, 0:3] = 2
    empty = np.zeros((3, 3), bool)
    one = np.zeros((3, 3), bool)
    one[1, 1] = True
    return [
        ("a 6-pixel and a 12-pixel mask that share 4 pixels", small, big),
        ("two boolean masks that share 4 of 12 pixels", a, b),
        ("the same masks as 0/1 integers (uint8)", a.astype(np.uint8), b.astype(np.uint8)),
        ("two identical masks", a, a.copy()),
        ("two masks that do not overlap", a, ~a),
        ("two random 30x40 masks", r1, r2),
        ("two instance label images (nonzero = foreground)", labels_pred, labels),
        ("a mask with one pixel and an empty mask", one, empty),
        ("two empty masks (the union is empty)", empty, empty.copy()),
    ]


def _expected_iou(a, b):
    a, b = np.asarray(a) != 0, np.asarray(b) != 0
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def _ratio(num, den):
    return num / den if den else np.nan


#: What a wrong IoU function may compute instead: name -> (formula of the
#: counts, problem, hint).  A name is only given if it fits every case.
_IOU_LOOKALIKES = {
    "floor": (lambda i, u, p, r, n: i // u if u else np.nan,
              "the division was done on integers ('//' or int()), which truncates the "
              "ratio to 0 (or 1).", "use '/', not '//', and do not cast the ratio to int."),
    "percentage": (lambda i, u, p, r, n: _ratio(100 * i, u),
                   "that is the IoU as a percentage (times 100).",
                   "return the fraction itself, between 0 and 1; multiply by 100 only "
                   "when you print it."),
    "inverted": (lambda i, u, p, r, n: _ratio(u, i),
                 "that is the union divided by the intersection, upside down.",
                 "divide the intersection by the union."),
    "distance": (lambda i, u, p, r, n: 1 - _ratio(i, u),
                 "that is 1 - IoU (the Jaccard distance).",
                 "return intersection / union itself."),
    "double union": (lambda i, u, p, r, n: _ratio(i, p + r),
                     "your union counts the overlap twice (prediction + reference).",
                     "use np.logical_or(prediction, reference).sum(), or "
                     "prediction.sum() + reference.sum() - intersection."),
    "dice": (lambda i, u, p, r, n: _ratio(2 * i, p + r),
             "that is the Dice coefficient 2|A and B| / (|A| + |B|).",
             "IoU divides the intersection by the union |A or B|."),
    "precision": (lambda i, u, p, r, n: _ratio(i, p),
                  "that is the precision |A and B| / |A| (the intersection divided by the "
                  "prediction's pixels).",
                  "divide by the union of both masks, |A or B|."),
    "recall": (lambda i, u, p, r, n: _ratio(i, r),
               "that is the recall |A and B| / |B| (the intersection divided by the "
               "reference's pixels).", "divide by the union of both masks, |A or B|."),
    "accuracy": (lambda i, u, p, r, n: (n - u + i) / n,
                 "that is the fraction of pixels where the masks agree (background "
                 "included).",
                 "IoU ignores the pixels that are background in both masks: "
                 "intersection / union of the foreground."),
    "intersection": (lambda i, u, p, r, n: float(i),
                     "that is the number of shared pixels (the intersection) itself.",
                     "divide it by the number of pixels in the union."),
    "union": (lambda i, u, p, r, n: float(u),
              "that is the number of pixels in the union itself.",
              "divide the intersection by it."),
    "background": (lambda i, u, p, r, n: _ratio(n - u, n - i),
                   "that is the IoU of the background (the pixels that are 0).",
                   "count the foreground: nonzero pixels, mask = np.asarray(mask) > 0."),
}


def _iou_value(result, case):
    if isinstance(result, np.ndarray) and result.size != 1:
        _fail(3, f"your function returned an array of shape {result.shape} for {case}.",
              "return one number: count the pixels with .sum() and divide the counts.")
    if isinstance(result, (tuple, list)):
        _fail(3, f"your function returned a {type(result).__name__} of {len(result)} values "
                 f"for {case}.", "return one number, the IoU.")
    try:
        return float(np.asarray(result).reshape(()))
    except (TypeError, ValueError):
        _fail(3, f"your function returned {type(result).__name__} for {case}, not a "
                 "number.", "return intersection / union as a number.")


def _close_iou(value, expected):
    # float32 arithmetic is right too: 1/3 in float32 is 0.33333334
    return bool(np.isclose(value, expected, rtol=1e-6, atol=1e-7))


def check_iou(fn):
    """Check an intersection-over-union function (exercise 3).

    ``fn(prediction, reference)`` must return one number,
    ``|prediction AND reference| / |prediction OR reference|``, treating every
    nonzero pixel as foreground, for boolean, 0/1 and label-image masks; two
    empty masks agree perfectly (1.0, as :func:`pixelforest.evaluate.metrics.iou`).
    Float32 arithmetic is accepted (a relative error up to 1e-6).

    Parameters
    ----------
    fn : callable
        The learner's function of two masks.

    Raises
    ------
    ExerciseCheckError
        On the first case that fails.  A wrong formula is named only if it
        fits every case with foreground pixels (Dice, precision, recall,
        pixel accuracy, a union that counts the overlap twice, a percentage,
        the ratio upside down, 1 - IoU, integer division, ...); otherwise the
        hint says which case it fails: label values not treated as
        foreground, the empty union, an array or tuple instead of a number.

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
    ✓ Exercise 3 passed: IoU is right on 9 cases (overlap, identical, disjoint, label images, empty union).
    >>> check_iou(lambda p, r: (p & r).sum() / (p.sum() + r.sum()))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pixelforest.errors.ExerciseCheckError: Exercise 3: ...counts the overlap twice...
    """
    _check_callable(fn, 3, "check_iou")
    if _is_skeleton(fn):
        _not_done(3, "the function's body is still '...'. Write it where it says "
                     "'# your code here' and run the cell again.")
        return
    _check_reads_arguments(fn, 3)
    cases = _iou_cases()
    results = []
    for case, pred, ref in cases:
        value = _iou_value(_call(fn, 3, case, pred, ref), case)
        results.append((case, pred, ref, value, _expected_iou(pred, ref)))
    wrong = [r for r in results if not _close_iou(r[3], r[4])]
    if not wrong:
        _passed(f"Exercise 3 passed: IoU is right on {len(cases)} cases (overlap, identical, "
                "disjoint, label images, empty union).")
        return
    case, pred, ref, value, expected = wrong[0]
    got = f"got {value:.6g} for {case}, expected {expected:.6g}"
    binary = [r for r in results
              if np.isin(np.asarray(r[1]), (0, 1)).all() and np.isin(np.asarray(r[2]), (0, 1)).all()]
    if all(not (np.asarray(r[1]) != 0).any() and not (np.asarray(r[2]) != 0).any()
           for r in wrong):
        if np.isnan(value):
            _fail(3, f"the result is NaN for {case}: 0 / 0.",
                  "when the union is empty both masks agree perfectly: return 1.0 "
                  "before dividing.")
        _fail(3, f"{got}: two empty masks agree perfectly.",
              "when the union is empty, return 1.0 before dividing.")
    if all(r in wrong for r in results if r not in binary) and all(r not in wrong for r in binary):
        _fail(3, f"{got}: your function is right on 0/1 masks but not on label images, "
                 "whose foreground holds other values (2, 7, ...).",
              "treat every nonzero pixel as foreground: convert with "
              "mask = np.asarray(mask) > 0 before counting.")
    for key, (formula, problem, hint) in _IOU_LOOKALIKES.items():
        fits = 0
        for _, p, r, v, _ in results:
            a, b = np.asarray(p) != 0, np.asarray(r) != 0
            counts = (int((a & b).sum()), int((a | b).sum()), int(a.sum()), int(b.sum()),
                      a.size)
            if counts[1] == 0 or not (np.isin(p, (0, 1)).all() and np.isin(r, (0, 1)).all()):
                continue  # empty unions and label images say nothing about the formula
            with _quiet():
                lookalike = float(formula(*counts))
            if np.isnan(lookalike):
                continue  # undefined there (0 / 0): the learner may return anything
            if not np.isclose(v, lookalike, rtol=1e-6, atol=1e-7):
                break
            fits += 1
        else:
            if fits >= 3:
                _fail(3, f"{got}: {problem}", hint)
    if np.isnan(value):
        _fail(3, f"the result is NaN for {case}.",
              "check that the union is computed from both masks.")
    if not 0 <= value <= 1:
        _fail(3, f"{got}; IoU always lies between 0 and 1.",
              "divide the number of shared pixels (intersection) by the number of pixels "
              "in either mask (union).")
    a, b = np.asarray(pred) != 0, np.asarray(ref) != 0
    _fail(3, f"{got} ({int((a & b).sum())} shared pixels, {int((a | b).sum())} in the "
             "union).",
          "IoU = np.logical_and(p, r).sum() / np.logical_or(p, r).sum().")


# -- exercise 4: per-pixel features ------------------------------------------------------

def _feature_image(seed=2, shape=(64, 88)):
    """A small non-square 8-bit image with blobs of two sizes and a gradient."""
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    image = 20 + 0.4 * xx
    blobs = ((14, 16, 6), (40, 52, 10), (12, 72, 3), (52, 14, 4))
    if seed != 2:
        blobs = ((50, 70, 5), (20, 30, 9), (45, 10, 3), (10, 60, 6))
    for cy, cx, r in blobs:
        image = image + 150 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r ** 2))
    image = image + np.random.default_rng(seed).normal(0, 4, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def basic_features(image):
    """The lesson's three starting features: intensity, Gaussian and gradient at sigma 2."""
    from scipy import ndimage as ndi

    image = np.asarray(image, dtype=np.float32)
    return np.stack([image, ndi.gaussian_filter(image, 2),
                     ndi.gaussian_gradient_magnitude(image, 2)], axis=-1)


def _monotone_in(g, f, tol):
    """True if ``g`` is a monotone function of ``f`` (ties in ``f`` may not differ in ``g``)."""
    order = np.argsort(f, kind="stable")
    fs, gs = f[order], g[order]
    # within runs of equal f, g must be (nearly) equal
    same = np.diff(fs) == 0
    dg = np.diff(gs)
    if np.any(np.abs(dg[same]) > tol):
        return False
    dg = dg[~same]
    return bool(np.all(dg >= -tol) or np.all(dg <= tol))


def _explain_dtype_change(narrow, wide, k):
    """Why feature ``k`` differs between the uint8 image and the same values as float32."""
    a, b = narrow[..., k].astype(np.float64), wide[..., k].astype(np.float64)
    if np.ptp(b) > 0 and np.allclose(a * 255, b, rtol=1e-3, atol=1e-3 * np.ptp(b)):
        return ("the feature computed from the uint8 image is the float32 one divided by "
                "255: a filter rescaled the 8-bit image to [0, 1] by its dtype.",
                "cast the image with image.astype(np.float32) before filtering (or use "
                "skimage.filters.gaussian with preserve_range=True).")
    circular = np.mod(a - b, 256)
    circular = np.minimum(circular, 256 - circular)  # equal up to a multiple of 256
    if np.any(b < -0.5) and np.mean(circular <= 2.5) > 0.99:  # filters in uint8 round too
        return ("where the float32 feature is negative, the uint8 one is that value plus "
                "256: the arithmetic ran in uint8 and wrapped around (in uint8, 5 - 10 is "
                "251).",
                "cast the image to float before any filter or arithmetic: "
                "image = image.astype(np.float32) at the top of the function.")
    if np.allclose(a, np.round(a)) and not np.allclose(b, np.round(b)):
        return ("the feature computed from the uint8 image holds only whole numbers: the "
                "filter ran in uint8 and rounded its result (ndi.gaussian_filter of a "
                "uint8 image returns uint8).",
                "cast the image to float before filtering: image = image.astype(np.float32) "
                "at the top of the function, not only at the end.")
    return ("it was computed in the image's integer dtype, where arithmetic rounds and "
            "wraps around (in uint8, 5 - 10 is 251).",
            "cast the image to float before any filter or arithmetic: "
            "image = image.astype(np.float32) at the top of the function.")


def check_features(fn, *, n_baseline=3):
    """Check a per-pixel feature function (exercise 4).

    ``fn(image)`` must return a float feature stack of shape
    ``image.shape + (n_features,)`` (one row per pixel after
    ``reshape(-1, n_features)``), with more than ``n_baseline`` features
    each of which tells the forest something the others do not: no NaN, no
    constant feature, none that is a copy, a scaled or shifted copy or any
    other monotone transform of another one (a forest splits each feature at
    thresholds, so it sees exactly the same), none that does not depend on
    the image at all (pixel coordinates, seeded noise) or changes from one
    call to the next (unseeded noise), and the same values for the same
    intensities whatever the dtype.

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
        feature, integer dtype, NaN, a feature that adds no information (and
        why), or features that depend on the dtype (rescaled by a filter, or
        computed in uint8: told apart by comparing the two results).

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
    ✓ Exercise 4 passed: 4 features per pixel (3 + 1 new), stacked channel-last, float, finite, each adding information.
    >>> check_features(lambda image: np.stack([image, image * 2.0], axis=-1))
    ... # doctest: +ELLIPSIS
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
    if _is_skeleton(fn):
        _not_done(4, "the function's body is still '...'. Write it where it says "
                     "'# your code here' and run the cell again.")
        return
    _check_reads_arguments(fn, 4)
    image = _feature_image()
    case = f"an 8-bit image of shape {image.shape}"
    out = _as_array(_call(fn, 4, case, image), 4, case)
    h, w = image.shape
    if (n_baseline == 3 and out.shape == image.shape + (3,)
            and np.allclose(out, basic_features(image), rtol=1e-5, atol=1e-4)):
        _not_done(4, "my_features still returns the three starting features. Add at least "
                     "one new feature image where it says '# your code here' and run the "
                     "cell again.")
        return
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
    if out.ndim == 4 and out.shape[:2] == image.shape:
        _fail(4, f"the result has shape {out.shape}: a stack of stacks (np.stack of "
                 "arrays that already have a feature axis).",
              "join a stack and single features with np.concatenate(..., axis=-1), giving "
              "each single feature a last axis with f[..., np.newaxis].")
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
    again = np.asarray(_call(fn, 4, case + " (a second time)", image))
    if again.shape == out.shape and not np.allclose(again, out, equal_nan=True):
        k = int(np.argmax(np.abs(again - out).reshape(-1, n).max(axis=0)))
        _fail(4, f"feature {k} (counting from 0) changes from one call to the next on the "
                 "same image: it is random.",
              "random numbers describe nothing about a pixel; the forest would learn noise. "
              "Use a filter of the image instead.")
    other = _feature_image(seed=5)
    other_out = np.asarray(_call(fn, 4, "another 8-bit image of the same shape", other))
    if other_out.shape == out.shape:
        for k in range(n):
            if np.allclose(other_out[..., k], out[..., k], rtol=1e-6, atol=1e-9):
                _fail(4, f"feature {k} (counting from 0) is the same for two different "
                         "images: it does not depend on the image (pixel coordinates, a "
                         "seeded random pattern, a fixed mask).",
                      "a feature must describe what the image shows around each pixel; "
                      "where the pixel is only lets the forest memorize where the training "
                      "nuclei were. Use a filter of the image instead.")
    for j in range(n):
        for k in range(j + 1, n):
            tol = 1e-6 * max(np.ptp(flat[:, k]), 1e-12)
            if np.allclose(flat[:, j], flat[:, k], rtol=1e-5, atol=1e-8):
                _fail(4, f"features {j} and {k} (counting from 0) are identical.",
                      "a copy adds nothing: change the filter or its sigma.")
            if _monotone_in(flat[:, k], flat[:, j], tol):
                scaled = np.polyfit(flat[:, j], flat[:, k], 1)
                affine = np.allclose(np.polyval(scaled, flat[:, j]), flat[:, k],
                                     rtol=1e-4, atol=1e-4 * np.ptp(flat[:, k]))
                what = (f"a scaled or shifted copy of feature {j} ({scaled[0]:.3g} x feature "
                        f"{j} + {scaled[1]:.3g})" if affine
                        else f"a monotone function of feature {j} (it orders the pixels the "
                             "same way: a power, log, threshold or clip of it)")
                _fail(4, f"feature {k} (counting from 0) is {what}, so it adds no "
                         "information: a forest splits each feature at a threshold, and "
                         "any threshold on one is a threshold on the other.",
                      "add a feature that looks at the image differently: another scale "
                      "(a larger sigma), another filter (ndi.gaussian_laplace, a local "
                      "standard deviation), not a rescaled one.")
    case = "the same image as float32"
    wide = np.asarray(_call(fn, 4, case, image.astype(np.float32)))
    if wide.shape != out.shape or not np.allclose(wide, out, rtol=1e-4,
                                                  atol=1e-4 * max(1.0, np.ptp(flat))):
        if wide.shape != out.shape:
            _fail(4, f"the result has shape {wide.shape} for {case} but {out.shape} for the "
                     "uint8 image.", "return the same features whatever the dtype.")
        diff = np.abs(wide.astype(np.float64) - out).reshape(-1, n).max(axis=0)
        k = int(np.argmax(diff))
        problem, hint = _explain_dtype_change(out, wide, k)
        _fail(4, f"feature {k} (counting from 0) changes when the same image is given as "
                 f"float32 instead of uint8: {problem}", hint)
    _passed(f"Exercise 4 passed: {n} features per pixel ({n_baseline} + {n - n_baseline} "
            "new), stacked channel-last, float, finite, each adding information.")


# -- exercise 5: did the segmentation improve? -------------------------------------------

def _binary_problem(name, pred, ref, where):
    """A hint if ``pred`` is not a foreground mask (classes 1/2, probabilities, inverted)."""
    from pixelforest.evaluate.metrics import iou

    pred = np.asarray(pred)
    values = np.unique(pred)
    if pred.dtype != bool and set(values.tolist()) <= {1, 2} and values.size == 2:
        _fail(5, f"the prediction of {name!r}{where} holds the classes 1 and 2, not a "
                 "mask: every pixel is nonzero, so IoU counts all of them as foreground.",
              "compare with the nucleus class: prediction == 2 (1 = background, 2 = "
              "nuclei).")
    if pred.dtype.kind == "f" and not np.all(np.isin(values, (0.0, 1.0))):
        _fail(5, f"the prediction of {name!r}{where} holds {values.size} different "
                 "fractional values (probabilities?), not a mask.",
              "use predict (classes), or threshold the probability: proba > 0.5.")
    if values.size == 1:
        _fail(5, f"the prediction of {name!r}{where} has the same value ({values[0]}) "
                 "everywhere.",
              "make foreground = 1 (or True) and background = 0; for the forest, "
              "prediction == 2 if it was trained with classes 1 and 2.")
    mask = pred != 0
    if mask.mean() > 0.5 and iou(~mask, ref) > iou(mask, ref):
        _fail(5, f"the prediction of {name!r}{where} looks inverted: it calls "
                 f"{mask.mean():.0%} of the pixels foreground, and its opposite matches the "
                 f"reference better (IoU {iou(~mask, ref):.3f} against "
                 f"{iou(mask, ref):.3f}).",
              "make the nuclei 1 for every method: order K-means clusters by their mean "
              "(pixelforest.kmeans_segment does), take prediction == 2 for the forest.")


def _dataset_tables(scores, predictions, reference, improved):
    """Return [(dataset, scores, predictions, reference, improved)] for flat or nested input."""
    if not isinstance(scores, Mapping) or not isinstance(predictions, Mapping):
        _fail(5, "scores and predictions must be dictionaries (method name -> value).",
              "build them as {'Otsu': ..., 'K-means': ..., 'random forest': ...}.")
    nested = [isinstance(v, Mapping) for v in predictions.values()]
    if nested and all(nested):
        if not isinstance(reference, Mapping):
            _fail(5, "predictions are given per image but reference is a single array.",
                  "pass a dictionary of references with the same keys as predictions.")
        if set(predictions) != set(reference) or set(scores) != set(predictions):
            _fail(5, f"predictions ({sorted(predictions)}), scores ({sorted(scores)}) and "
                     f"references ({sorted(reference)}) name different images.",
                  "use the same image names as keys in all three dictionaries.")
        if isinstance(improved, Mapping):
            if set(improved) != set(predictions):
                _fail(5, f"improved names the images {sorted(improved)}, the table "
                         f"{sorted(predictions)}.", "answer for every image of the table.")
            answers = dict(improved)
        else:
            answers = {key: improved for key in predictions}
        for key, table in scores.items():
            if not isinstance(table, Mapping):
                _fail(5, f"scores[{key!r}] is {table!r}, not a table of scores.",
                      "build one dictionary method -> IoU for each image.")
        return [(key, scores[key], predictions[key], reference[key], answers[key])
                for key in predictions], not isinstance(improved, Mapping)
    if isinstance(reference, Mapping):
        _fail(5, "reference is a dictionary but predictions are not given per image.",
              "pass one reference mask for a flat table.")
    return [(None, scores, predictions, reference, improved)], False


def check_improvement(scores, predictions, reference, *, candidate, improved,
                      training_reference=None):
    """Check tables of IoU scores on held-out data and their conclusion (exercise 5).

    Every score must be the IoU (:func:`pixelforest.evaluate.metrics.iou`) of
    the matching prediction with the reference, every prediction a foreground
    mask (1 or True = nuclei), and ``improved`` must say whether
    ``candidate`` scores higher than every other method.  The table can be
    flat (one held-out image) or nested, one table per held-out image (the
    test half, a second image...).

    Parameters
    ----------
    scores : mapping
        ``{method: IoU}``, or ``{image: {method: IoU}}``.
    predictions : mapping
        The masks that were scored, with the same keys.
    reference : array_like or mapping
        The reference mask (nonzero = foreground) of the held-out pixels, or
        ``{image: reference}``.
    candidate : str
        The method under test (e.g. ``"random forest"``).
    improved : bool or mapping
        The learner's answer: does ``candidate`` beat every other method?
        For nested tables, ``{image: bool}``; a single bool must hold for
        every image.
    training_reference : array_like, optional
        The reference of the pixels the candidate was trained on.  When
        given, scores and predictions of the training pixels are recognized
        as such.

    Raises
    ------
    ExerciseCheckError
        With the cause: scores on the training pixels, a prediction of the
        training pixels, classes 1/2 or probabilities instead of a mask, an
        inverted mask, a score that is the Dice coefficient, the pixel
        accuracy, a percentage, a rounded value, the score of another
        method, a shape mismatch, or a conclusion the numbers do not
        support.

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
    from pixelforest.evaluate.metrics import dice, iou

    def placeholders(value):
        if _is_placeholder(value):
            return True
        if isinstance(value, Mapping):
            return any(placeholders(v) for v in value.values())
        return False

    if any(placeholders(v) for v in (scores, predictions, reference, improved)):
        _not_done(5, "some values are still '...'. Fill them in where it says "
                     "'# your code here' and run the cell again.")
        return
    tables, single_answer = _dataset_tables(scores, predictions, reference, improved)
    train_ref = None if training_reference is None else np.asarray(training_reference) != 0
    summary = []
    for key, table, preds, ref, answer in tables:
        at = "" if key is None else f" for {key!r}"
        if set(table) != set(preds):
            missing = sorted(set(preds) - set(table))
            extra = sorted(set(table) - set(preds))
            _fail(5, f"scores and predictions{at} name different methods (no score for "
                     f"{missing}, no prediction for {extra}).",
                  "use the same names as keys in both dictionaries.")
        if len(table) < 2:
            _fail(5, f"the table{at} has {len(table)} method(s); a comparison needs at least "
                     "two.",
                  "add the unsupervised baselines (Otsu, K-means) next to the random forest.")
        if candidate not in table:
            _fail(5, f"candidate {candidate!r} is not in the table {sorted(table)}.",
                  "pass the name of the method you are judging, exactly as in the table.")
        if not isinstance(answer, (bool, np.bool_)):
            _fail(5, f"improved{at} must be True or False, got {answer!r}.",
                  "answer the question with a boolean.")
        ref = np.asarray(ref)
        refmask = ref != 0
        if train_ref is not None and train_ref.shape == refmask.shape \
                and np.array_equal(train_ref, refmask):
            _fail(5, f"the reference{at} is the training pixels' reference: you scored on the "
                     "pixels the forest learned from, where it is nearly perfect because it "
                     "memorized them (overfitting).",
                  "score on held-out pixels: pass reference_test and the predictions of the "
                  "test half (and of the second image).")
        true = {}
        for name, pred in preds.items():
            pred = np.asarray(pred)
            if pred.shape != ref.shape:
                flat_hint = (" (flat: reshape it back to the image's shape)"
                             if pred.ndim == 1 and pred.size == ref.size else "")
                _fail(5, f"the prediction of {name!r}{at} has shape {pred.shape} but the "
                         f"reference has {ref.shape}{flat_hint}.",
                      "score every method on the same held-out image as the reference.")
            if (train_ref is not None and train_ref.shape == pred.shape
                    and iou(pred != 0, train_ref) > 0.9
                    and iou(pred != 0, train_ref) > iou(pred != 0, refmask) + 0.2):
                _fail(5, f"the prediction of {name!r}{at} is a prediction of the training "
                         f"pixels: it matches their reference (IoU "
                         f"{iou(pred != 0, train_ref):.3f}) far better than the held-out one "
                         f"({iou(pred != 0, refmask):.3f}).",
                      "predict the held-out pixels: the features of the test half "
                      "(features[test]), or of the second image.")
            _binary_problem(name, pred, refmask, at)
            true[name] = iou(pred, ref)
        for name, value in table.items():
            try:
                given = float(value)
            except (TypeError, ValueError):
                _fail(5, f"the score of {name!r}{at} is {value!r}, not a number.",
                      "store the IoU as a number.")
            if np.isclose(given, true[name], rtol=0, atol=5e-4 + 1e-9):
                continue  # exact, or rounded to 3 decimals
            pred = np.asarray(preds[name]) != 0
            problem = None
            if np.isclose(given, 100 * true[name], rtol=0, atol=0.05):
                problem = ("a percentage", "store the IoU as a fraction between 0 and 1.")
            elif np.isclose(given, dice(pred, ref), rtol=0, atol=5e-4):
                problem = ("the Dice coefficient of that prediction, not its IoU",
                           "score every method with the IoU.")
            elif np.isclose(given, float(np.mean(pred == refmask)), rtol=0, atol=5e-4):
                problem = ("the fraction of correctly classified pixels (accuracy, as "
                           "forest.score gives), not the IoU",
                           "IoU ignores the easy background: use iou_score(prediction, "
                           "reference).")
            elif (train_ref is not None and train_ref.shape == pred.shape
                  and np.isclose(given, iou(pred, train_ref), rtol=0, atol=5e-4)):
                problem = ("the IoU against the training pixels' reference",
                           "score against the held-out reference (reference_test).")
            elif _rounded_to([given], (1, 2)) is not None and abs(given - true[name]) < 0.05:
                problem = ("rounded too much", "keep at least 3 decimals, or the full "
                                               "value; rounding can change the ranking.")
            else:
                others = [o for o in true if o != name and np.isclose(given, true[o],
                                                                      rtol=0, atol=5e-4)]
                if others:
                    problem = (f"the IoU of {others[0]!r}'s prediction",
                               "check that each score is computed from its own "
                               "prediction.")
            if problem is not None:
                _fail(5, f"the score of {name!r}{at} is {given:.4g}, but its prediction has "
                         f"IoU {true[name]:.4g} with the reference: {problem[0]}.", problem[1])
            near_one = given > 0.95 and true[name] < given - 0.05
            _fail(5, f"the score of {name!r}{at} is {given:.4g}, but its prediction has IoU "
                     f"{true[name]:.4g} with the reference"
                     + (" (a score near 1 is what a forest gets on the pixels it was trained "
                        "on)." if near_one else "."),
                  "compute every score with the same IoU function, from the prediction you "
                  "put in the table, on the held-out image and its reference.")
        others = {name: float(s) for name, s in table.items() if name != candidate}
        best_name = max(others, key=others.get)
        best, mine = others[best_name], float(table[candidate])
        truth = mine > best
        if bool(answer) != truth:
            if single_answer and len(tables) > 1:
                verdicts = {k: float(t[candidate]) > max(float(v) for n, v in t.items()
                                                          if n != candidate)
                            for k, t, *_ in tables}
                if len(set(verdicts.values())) > 1:
                    _fail(5, f"improved={bool(answer)} cannot be right for every image: "
                             f"{candidate} wins on "
                             f"{[k for k, v in verdicts.items() if v]} and not on "
                             f"{[k for k, v in verdicts.items() if not v]}.",
                          "answer per image: improved = {'test half': ..., "
                          "'second image': ...}.")
            _fail(5, f"your answer improved={bool(answer)}{at} does not match the table: "
                     f"{candidate} has IoU {mine:.3f} and the best other method ({best_name}) "
                     f"{best:.3f}.",
                  "compare the measured numbers, not how the pictures look.")
        summary.append((key, mine, best, best_name))
    if len(summary) == 1 and summary[0][0] is None:
        _, mine, best, best_name = summary[0]
        _passed(f"Exercise 5 passed: {candidate} has IoU {mine:.3f} against {best:.3f} for the "
                f"best other method ({best_name}): {mine - best:+.3f}.")
        return
    parts = [f"{key}: {mine:.3f} against {best:.3f} ({best_name}, {mine - best:+.3f})"
             for key, mine, best, best_name in summary]
    _passed(f"Exercise 5 passed: {candidate} on held-out data, " + "; ".join(parts) + ".")


# -- exercise 6: count and measure ------------------------------------------------------

def _one_number(value, exercise, name, what):
    """``value`` as a float; a one-element array or pandas object counts as its element."""
    if value is None:
        _fail(exercise, f"{name} is None.",
              f"assign {what} to {name} (a cell or function that only prints returns None).")
    if isinstance(value, (bool, np.bool_)):
        _fail(exercise, f"{name} is {value}, a yes/no answer.", f"{name} must be {what}.")
    if isinstance(value, str):
        _fail(exercise, f"{name} is the text {value!r}.",
              f"give the number itself, not formatted text: {name} = ... without f\"...\".")
    if hasattr(value, "to_numpy"):  # a pandas Series or DataFrame
        array = np.asarray(value.to_numpy())
    else:
        try:
            array = np.asarray(value)
        except (TypeError, ValueError):
            array = np.asarray(None, dtype=object)
    if array.shape and array.size != 1:
        kind = type(value).__name__
        _fail(exercise, f"{name} is a {kind} of {array.size} values (shape {array.shape}), "
                        "not one number.",
              f"reduce it to {what}: for a table, e.g. len(table) or a column's .mean() "
              "(table['area'].mean()).")
    if array.dtype == object or not np.issubdtype(array.dtype, np.number):
        _fail(exercise, f"{name} is a {type(value).__name__}, not a number.",
              f"{name} must be {what}.")
    return float(array.ravel()[0])


def _instance_facts(instances):
    """What the lesson's label image holds: ids, areas, border objects, blobs."""
    from scipy import ndimage as ndi

    labels = np.asarray(instances)
    ids = np.unique(labels[labels > 0])
    counts = np.bincount(labels.ravel().astype(np.int64))
    areas = counts[ids].astype(np.float64)
    edges = np.concatenate([np.take(labels, index, axis=axis).ravel()
                            for axis in range(labels.ndim) for index in (0, -1)])
    inner = ~np.isin(ids, edges)
    structure = ndi.generate_binary_structure(labels.ndim, labels.ndim)
    blobs, n_blobs = ndi.label(labels > 0, structure=structure)
    blobs4, n_blobs4 = ndi.label(labels > 0)
    blob_ids = np.arange(1, n_blobs + 1)
    blob_edges = np.concatenate([np.take(blobs, index, axis=axis).ravel()
                                 for axis in range(blobs.ndim) for index in (0, -1)])
    blob_areas = np.bincount(blobs.ravel())[1:].astype(np.float64)
    blob_inner = ~np.isin(blob_ids, blob_edges)
    return {"labels": labels, "ids": ids, "areas": areas, "inner": inner,
            "counts": counts, "n_blobs": (n_blobs, n_blobs4), "blob_areas": blob_areas,
            "blob_inner": blob_inner}


def _close_number(value, target, tol=0.501):
    """Equal up to rounding to whole pixels (or a relative 1e-6 for large values)."""
    return bool(np.isfinite(target)) and abs(value - target) <= max(tol, 1e-6 * abs(target))


def _diagnose_count(n, facts):
    ids, inner, labels = facts["ids"], facts["inner"], facts["labels"]
    true = ids.size
    known = [
        (true + 1, "you counted the background (label 0) as a nucleus: np.unique(instances) "
                   "includes 0.",
         "count only the nonzero labels: len(np.unique(instances[instances > 0])), or "
         "len(table) for the measurement table."),
        (int(labels.max()), "that is the largest label value, not the number of labels: "
                            "label values can skip numbers.",
         "count the distinct nonzero labels, len(np.unique(instances[instances > 0])), "
         "not instances.max()."),
        (int(np.count_nonzero(labels)), "that is the number of nucleus pixels, not of "
                                        "nuclei.",
         "count the distinct nonzero labels, each nucleus once."),
        (int(inner.sum()), "that leaves out the nuclei that touch the image border.",
         "count every nucleus; leave the border nuclei out of the mean area only."),
        (int((~inner).sum()), "that counts only the nuclei that touch the border.",
         "count every nucleus in instances."),
        (facts["n_blobs"][0], "that is the number of connected blobs of the mask, in "
                              "which touching nuclei are one blob.",
         "count the labels of instances (predict_instances split the touching nuclei), "
         "not ndi.label of the mask."),
        (facts["n_blobs"][1], "that is the number of connected blobs of the mask, in "
                              "which touching nuclei are one blob.",
         "count the labels of instances (predict_instances split the touching nuclei), "
         "not ndi.label of the mask."),
    ]
    for value, problem, hint in known:
        if value != true and n == value:
            _fail(6, f"n_nuclei is {n:g}: {problem}", hint)
    if n != round(n):
        _fail(6, f"n_nuclei is {n:g}, not a whole number.",
              "a count is an integer: count the labels, do not average or divide.")
    _fail(6, f"n_nuclei is {n:g}, but instances holds {'more' if true > n else 'fewer'} "
             "nuclei.",
          "count the distinct nonzero labels of instances (the image predict_instances "
          "returned), e.g. len(np.unique(instances[instances > 0])).")


def _diagnose_area(area, facts):
    areas, inner, labels = facts["areas"], facts["inner"], facts["labels"]
    true = float(areas[inner].mean())
    kept = areas[inner]
    n_background = float(np.sum(labels == 0))
    blob_inner = facts["blob_areas"][facts["blob_inner"]]
    known = [
        (float(areas.mean()), "that is the mean area of all nuclei, including those cut "
                              "by the image border.",
         "leave out the nuclei that touch the border, e.g. "
         "table[~table['touches_border']]['area'].mean()."),
        (float(areas[~inner].mean()) if (~inner).any() else np.nan,
         "that is the mean area of the nuclei that touch the border only: the selection "
         "is inverted.",
         "keep the rows where touches_border is False: table[~table['touches_border']]."),
        (float(np.median(kept)), "that is the median area, not the mean.",
         "use .mean() (np.mean), not the median."),
        (float(np.median(areas)), "that is the median area of all nuclei, not the mean of "
                                  "those away from the border.",
         "use .mean() on the nuclei that do not touch the border."),
        (float(kept.sum()), "that is the total area of those nuclei, not their mean.",
         "divide by the number of nuclei you kept, or use .mean()."),
        (float(areas.sum()), "that is the total area of all nuclei, not a mean.",
         "take the mean, over the nuclei that do not touch the border."),
        (float(kept.sum()) / labels.size, "that is the fraction of the image the nuclei "
                                          "cover, not an area in pixels.",
         "average the areas (in pixels) of the nuclei, do not divide by the image size."),
        (float(areas.sum()) / labels.size, "that is the fraction of the image the nuclei "
                                           "cover, not an area in pixels.",
         "average the areas (in pixels) of the nuclei, do not divide by the image size."),
        (float(kept.sum()) / areas.size, "that divides the area of the nuclei away from "
                                         "the border by the number of all nuclei.",
         "divide by the number of nuclei you kept, or use .mean() on the kept rows."),
        (float(np.mean(facts["counts"])), "np.bincount's first entry is the background "
                                          "(label 0), and the mean included it.",
         "drop the background before averaging: np.bincount(instances.ravel())[1:], or "
         "use the table's area column."),
        (float(np.append(kept, n_background).mean()), "the mean included the background "
                                                      "(label 0) as one more 'nucleus'.",
         "average the areas of the nonzero labels only."),
        (float(np.append(areas, n_background).mean()), "the mean included the background "
                                                       "(label 0) as one more 'nucleus'.",
         "average the areas of the nonzero labels only, away from the border."),
        (float(blob_inner.mean()) if blob_inner.size else np.nan,
         "that is the mean area of the connected blobs of the mask, in which touching "
         "nuclei are one blob.",
         "measure the labels of instances (objects.measure(instances)), not ndi.label of "
         "the mask."),
        (float(np.mean(np.sqrt(4 * kept / np.pi))), "that is a mean diameter (a length), "
                                                     "not an area.",
         "average the area column (pixels), not a diameter or axis length."),
    ]
    # a cause is named only if the answer is that value (to one decimal) and no other
    matches = {(problem, hint) for value, problem, hint in known
               if not _close_number(value, true) and _close_number(area, value, tol=0.051)}
    if len(matches) == 1:
        problem, hint = matches.pop()
        _fail(6, f"mean_area is {area:.4g}: {problem}", hint)
    if len(matches) > 1:
        _fail(6, f"mean_area is {area:.4g}, which is " + " or ".join(
                  sorted(problem.split(",")[0].removeprefix("that is ").rstrip(".")
                         for problem, _ in matches)) + ".",
              "measure instances (objects.measure(instances)), keep the rows where "
              "touches_border is False, and take the mean of their 'area' (in pixels).")
    _fail(6, f"mean_area is {area:.4g}, but the nuclei of instances that do not touch the "
             f"border have a mean area {'above' if true > area else 'below'} that.",
          "measure instances (objects.measure(instances)), keep the rows where "
          "touches_border is False, and take the mean of their 'area' (in pixels).")


def check_count(n_nuclei, mean_area, instances):
    """Check a count of nuclei and their mean area (exercise 6).

    ``n_nuclei`` must be the number of objects (distinct nonzero labels) of
    the instance label image ``instances``, and ``mean_area`` the mean area,
    in pixels, of the objects that do not touch the image border (those are
    cut off, so their area is too small).  A mean area rounded to whole
    pixels is accepted.

    Parameters
    ----------
    n_nuclei : int
        The learner's count (a one-element array or pandas object is fine).
    mean_area : float
        The learner's mean area in pixels.
    instances : array_like of int
        The instance label image that was counted (0 = background), e.g.
        from :meth:`PixelClassifier.predict_instances`.

    Raises
    ------
    ExerciseCheckError
        With the cause: the background counted as a nucleus, the largest
        label instead of the number of labels, pixels instead of objects,
        the blobs of the mask instead of the instances, border nuclei left
        out of the count (or only they counted); a mean over all nuclei or
        only the border ones, the median, a total, a fraction of the image,
        a division by the wrong count, the background in a ``bincount``, the
        blobs of the mask, a diameter; not one number, text, None, a mask
        instead of the instance labels.

    Examples
    --------
    >>> import numpy as np
    >>> instances = np.zeros((10, 12), np.uint16)
    >>> instances[0:3, 0:3] = 1      # cut by the border
    >>> instances[4:7, 4:8] = 2      # 12 pixels
    >>> instances[4:8, 8:10] = 3     # 8 pixels, touching nucleus 2
    >>> check_count(3, 10.0, instances)
    ✓ Exercise 6 passed: 3 nuclei; the 2 that do not touch the border have a mean area of 10.0 pixels.
    >>> check_count(4, 10.0, instances)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pixelforest.errors.ExerciseCheckError: Exercise 6: n_nuclei is 4: you counted the background...
    """
    waiting = [name for name, value in (("n_nuclei", n_nuclei), ("mean_area", mean_area))
               if _is_placeholder(value)]
    if waiting:
        _not_done(6, f"{' and '.join(waiting)} still '...'. Replace "
                     f"{'it' if len(waiting) == 1 else 'them'} where it says "
                     "'# your code here' and run the cell again.")
        return
    if instances is None or _is_placeholder(instances):
        _fail(6, "the label image is missing.",
              "pass the instance labels you counted as the third argument: "
              "check_count(n_nuclei, mean_area, instances).")
    try:
        labels = check_image(instances, name="instances")
    except PixelforestError as exc:
        raise ExerciseCheckError(
            f"Exercise 6: the label image you passed cannot be used ({exc}). Hint: pass "
            "the instance labels from predict_instances as the third argument.") from exc
    values = np.unique(labels)
    if labels.dtype == bool or (values.tolist() == [0, 1]
                                and _instance_facts(labels.astype(np.int64))["n_blobs"][0] > 1):
        _fail(6, "the third argument is a mask (nucleus or not), not instance labels: "
                 "every nucleus in it has the same value.",
              "pass instances, the label image of predict_instances, in which each "
              "nucleus has its own number.")
    if values.size and set(values.tolist()) <= {1, 2} and 0 not in values:
        _fail(6, "the third argument holds only the classes 1 and 2, with no 0: it is the "
                 "class prediction (1 = background, 2 = nucleus), not instance labels.",
              "pass instances = model.predict_instances(...), in which 0 is the background "
              "and each nucleus has its own number.")
    if not (np.issubdtype(labels.dtype, np.integer)
            or (np.issubdtype(labels.dtype, np.floating)
                and np.all(labels == np.round(labels)))) or labels.min() < 0:
        _fail(6, f"the third argument (dtype {labels.dtype}) is not a label image.",
              "pass instances, the integer label image of predict_instances (0 = background).")
    facts = _instance_facts(labels.astype(np.int64))
    if facts["ids"].size == 0:
        _fail(6, "the label image you passed holds no nuclei (only zeros).",
              "pass instances, the label image of predict_instances.")
    n = _one_number(n_nuclei, 6, "n_nuclei", "the number of nuclei (one integer)")
    area = _one_number(mean_area, 6, "mean_area", "one mean area in pixels")
    if n != facts["ids"].size:
        _diagnose_count(n, facts)
    if not facts["inner"].any():
        _fail(6, "every nucleus of the label image touches its border, so no mean area of "
                 "whole nuclei can be computed.",
              "pass the lesson's instances (most nuclei lie inside the image).")
    if np.isnan(area):
        _fail(6, "mean_area is NaN: the mean of an empty selection.",
              "check the filter: it must keep the nuclei that do NOT touch the border, "
              "table[~table['touches_border']] (touches_border holds True/False).")
    true = float(facts["areas"][facts["inner"]].mean())
    if not _close_number(area, true):
        _diagnose_area(area, facts)
    _passed(f"Exercise 6 passed: {facts['ids'].size} nuclei; the {int(facts['inner'].sum())} "
            f"that do not touch the border have a mean area of {true:.1f} pixels.")
