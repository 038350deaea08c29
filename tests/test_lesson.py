"""Tests of pixelforest.lesson.checkers: each checker accepts the reference solutions and
rejects a catalogue of typical wrong answers with a specific hint."""

import numpy as np
import pytest
from scipy import ndimage as ndi
from sklearn.cluster import KMeans

from pixelforest import lesson
from pixelforest.errors import ExerciseCheckError, PixelforestError


def _passes(capsys, check, *args, **kwargs):
    assert check(*args, **kwargs) is None
    out = capsys.readouterr().out
    assert out.startswith("\N{CHECK MARK} Exercise"), out
    return out


def test_error_type():
    assert issubclass(ExerciseCheckError, PixelforestError)
    assert issubclass(ExerciseCheckError, AssertionError)


# -- exercise 1 -------------------------------------------------------------------

def minmax_reference(image):
    image = np.asarray(image, dtype=np.float32)
    low, high = np.min(image), np.max(image)
    if high == low:
        return np.zeros_like(image)
    return (image - low) / (high - low)


def minmax_float64(image):
    image = image.astype(np.float64)
    span = image.max() - image.min()
    return (image - image.min()) / span if span else np.zeros(image.shape)


def minmax_library(image):
    import warnings

    from pixelforest import normalize_minmax
    from pixelforest.errors import ConstantImageWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConstantImageWarning)
        return normalize_minmax(image)


@pytest.mark.parametrize("fn", [minmax_reference, minmax_float64, minmax_library])
def test_normalize_accepts_references(capsys, fn):
    _passes(capsys, lesson.check_normalize, fn)


def _no_float_cast(image):  # integer arithmetic: floor division
    return (image - image.min()) // (image.max() - image.min())


def _floor_on_float(image):
    image = image.astype(np.float32)
    return (image - image.min()) // (image.max() - image.min())


def _cast_back_to_input_dtype(image):
    out = (image - image.min()) / (image.max() - image.min())
    return out.astype(image.dtype)


def _divide_by_max(image):
    image = image.astype(np.float32)
    return image / image.max()


def _divide_by_dtype_range(image):
    image = image.astype(np.float32)
    return image / np.iinfo(np.uint8).max if image.max() <= 255 else image / 65535


def _constant_nan(image):
    image = image.astype(np.float32)
    return (image - image.min()) / (image.max() - image.min())


def _constant_ones(image):
    image = image.astype(np.float32)
    span = image.max() - image.min()
    return (image - image.min()) / span if span else np.ones_like(image)


def _in_place(image):
    image -= image.min()
    image = image.astype(np.float32)
    span = image.max()
    return image / span if span else np.zeros_like(image)


def _flattened(image):
    return minmax_reference(image).ravel()


def _per_column(image):
    image = image.astype(np.float32)
    low, high = image.min(axis=0), image.max(axis=0)
    return (image - low) / np.where(high > low, high - low, 1)


def _returns_nothing(image):
    minmax_reference(image)


def _returns_list(image):
    return minmax_reference(image).tolist()


def _raises(image):
    raise RuntimeError("oops" if image.size else "empty")


def _min_max_swapped(image):
    image = image.astype(np.float32)
    span = image.max() - image.min()
    return (image.max() - image) / span if span else np.zeros_like(image)


@pytest.mark.parametrize("fn, hint", [
    (_no_float_cast, "integer division"),
    (_floor_on_float, "floor division"),
    (_cast_back_to_input_dtype, "cast to float"),
    (_divide_by_max, "subtract np.min"),
    (_divide_by_dtype_range, "dtype's range"),
    (_constant_nan, "divided by zero"),
    (_constant_ones, "all zeros"),
    (_in_place, "in place"),
    (_flattened, "keep the image's shape"),
    (_per_column, "each column was normalized on its own"),
    (_returns_nothing, "return statement"),
    (_returns_list, "not a NumPy array"),
    (_raises, "RuntimeError: oops"),
    (_min_max_swapped, "inverted"),
])
def test_normalize_rejects_wrong_answers(fn, hint):
    with pytest.raises(ExerciseCheckError, match="Exercise 1") as info:
        lesson.check_normalize(fn)
    assert hint in str(info.value)
    assert "Hint:" in str(info.value)


def test_normalize_rejects_a_result_instead_of_a_function():
    with pytest.raises(ExerciseCheckError, match="without calling it"):
        lesson.check_normalize(np.zeros((2, 2)))


def test_normalize_emits_no_warning_for_a_division_by_zero():
    # the learner's 0/0 must become the hint, not a RuntimeWarning (errors under pytest)
    with pytest.raises(ExerciseCheckError, match="divided by zero"):
        lesson.check_normalize(_constant_nan)


# -- exercise 2 -------------------------------------------------------------------

def _blob_image(shape=(24, 36), seed=0):
    rng = np.random.default_rng(seed)
    image = rng.normal(30, 5, shape)
    image[5:15, 8:20] += 120
    image[16:22, 25:33] += 100
    return np.clip(image, 0, 255).astype(np.uint8)


def _kmeans_ids(image, *, order=True, seed=0):
    km = KMeans(n_clusters=2, n_init=1, random_state=seed).fit(
        image.reshape(-1, 1).astype(np.float64))
    ids = km.labels_
    if order and km.cluster_centers_[0, 0] > km.cluster_centers_[1, 0]:
        ids = 1 - ids
    return ids, km


def test_kmeans_accepts_reference(capsys):
    image = _blob_image()
    ids, _ = _kmeans_ids(image)
    _passes(capsys, lesson.check_kmeans, ids.reshape(image.shape), image)
    # bool masks and the normalized image give the same partition
    _passes(capsys, lesson.check_kmeans, ids.reshape(image.shape) == 1,
            minmax_reference(image))


def test_kmeans_accepts_library(capsys):
    from pixelforest import kmeans_segment

    image = _blob_image()
    _passes(capsys, lesson.check_kmeans, kmeans_segment(image), image)


def _inverted_seed(image):
    for seed in range(50):
        ids, km = _kmeans_ids(image, order=False, seed=seed)
        if km.cluster_centers_[0, 0] > km.cluster_centers_[1, 0]:
            return ids
    raise AssertionError("no seed gives foreground 0")


def test_kmeans_rejects_inverted_clusters():
    image = _blob_image()
    ids = _inverted_seed(image)  # a real K-means result where nuclei are cluster 0
    with pytest.raises(ExerciseCheckError, match="inverted") as info:
        lesson.check_kmeans(ids.reshape(image.shape), image)
    assert "cluster_centers_" in str(info.value)


@pytest.mark.parametrize("transform, hint", [
    (lambda ids, shape: ids, "labels.reshape(image.shape)"),
    (lambda ids, shape: ids.reshape(shape[::-1]), "not (width, height)"),
    (lambda ids, shape: ids.reshape(shape, order="F"), "order='F'"),
    (lambda ids, shape: ids.reshape(shape).T, "not (width, height)"),
    (lambda ids, shape: ids.reshape(shape)[:, :-1], "one row per pixel"),
    (lambda ids, shape: ids.reshape(shape) + 1, "not 0 and 1"),
    (lambda ids, shape: np.zeros(shape, int), "not two clusters"),
    (lambda ids, shape: np.arange(np.prod(shape)).reshape(shape) % 3, "not two clusters"),
    (lambda ids, shape: ids.reshape(shape) * 0.5, "non-integer"),
    (lambda ids, shape: None, "None"),
])
def test_kmeans_rejects_shape_and_id_mistakes(transform, hint):
    image = _blob_image()
    ids, _ = _kmeans_ids(image)
    with pytest.raises(ExerciseCheckError, match="Exercise 2") as info:
        lesson.check_kmeans(transform(ids, image.shape), image)
    assert hint in str(info.value)


def test_kmeans_rejects_a_threshold_elsewhere():
    image = _blob_image()
    # a valid threshold split, but far from where K-means puts it
    seg = (image > np.percentile(image, 90)).astype(np.uint8)
    with pytest.raises(ExerciseCheckError, match="your split is a threshold at about"):
        lesson.check_kmeans(seg, image)


def test_kmeans_rejects_another_images_segmentation():
    image = _blob_image(seed=0)
    other = np.roll(image, 7, axis=1)
    ids, _ = _kmeans_ids(other)
    with pytest.raises(ExerciseCheckError, match="not a clustering of this image's intensities"):
        lesson.check_kmeans(ids.reshape(image.shape), image)


def test_kmeans_rejects_a_multichannel_image():
    with pytest.raises(ExerciseCheckError, match="cannot be used"):
        lesson.check_kmeans(np.zeros((4, 4, 3, 2)), np.zeros((4, 4, 3, 2)))


# -- exercise 3 -------------------------------------------------------------------

def iou_reference(prediction, reference):
    prediction, reference = np.asarray(prediction) > 0, np.asarray(reference) > 0
    union = np.logical_or(prediction, reference).sum()
    if union == 0:
        return 1.0
    return np.logical_and(prediction, reference).sum() / union


def iou_counts(prediction, reference):
    p, r = np.asarray(prediction) != 0, np.asarray(reference) != 0
    inter = int((p & r).sum())
    union = int(p.sum()) + int(r.sum()) - inter
    return inter / union if union else 1.0


def iou_library(prediction, reference):
    from pixelforest.evaluate.metrics import iou

    return iou(prediction, reference)


@pytest.mark.parametrize("fn", [iou_reference, iou_counts, iou_library])
def test_iou_accepts_references(capsys, fn):
    _passes(capsys, lesson.check_iou, fn)


def _iou_floor(p, r):
    p, r = p > 0, r > 0
    union = (p | r).sum()
    return (p & r).sum() // union if union else 1.0


def _iou_double_union(p, r):
    p, r = p > 0, r > 0
    total = p.sum() + r.sum()
    return (p & r).sum() / total if total else 1.0


def _dice(p, r):
    p, r = p > 0, r > 0
    total = p.sum() + r.sum()
    return 2 * (p & r).sum() / total if total else 1.0


def _accuracy(p, r):
    return np.mean((p > 0) == (r > 0))


def _iou_no_empty_case(p, r):
    p, r = p > 0, r > 0
    return (p & r).sum() / (p | r).sum()


def _iou_python_division(p, r):
    p, r = p > 0, r > 0
    return int((p & r).sum()) / int((p | r).sum())


def _iou_label_values(p, r):  # only value 1 counts as foreground
    p, r = np.asarray(p) == 1, np.asarray(r) == 1
    union = (p | r).sum()
    return (p & r).sum() / union if union else 1.0


def _iou_elementwise(p, r):
    return np.logical_and(p, r) / np.maximum(np.logical_or(p, r), 1)


def _iou_inverted(p, r):
    p, r = p > 0, r > 0
    inter = (p & r).sum()
    return (p | r).sum() / inter if inter else 1.0


def _iou_empty_zero(p, r):
    p, r = p > 0, r > 0
    union = (p | r).sum()
    return (p & r).sum() / union if union else 0.0


@pytest.mark.parametrize("fn, hint", [
    (_iou_floor, "division was done on integers"),
    (_iou_double_union, "counts the overlap twice"),
    (_dice, "Dice"),
    (_accuracy, "background included"),
    (_iou_no_empty_case, "union is empty"),
    (_iou_python_division, "ZeroDivisionError"),
    (_iou_label_values, "nonzero pixel as foreground"),
    (_iou_elementwise, "return one number"),
    (_iou_inverted, "upside down"),
    (_iou_empty_zero, "expected 1"),
    (lambda p, r: None if (p.size and r.size) else 0, "return statement"),
])
def test_iou_rejects_wrong_answers(fn, hint):
    with pytest.raises(ExerciseCheckError, match="Exercise 3") as info:
        lesson.check_iou(fn)
    assert hint in str(info.value)


# -- exercise 4 -------------------------------------------------------------------

def features_reference(image):
    image = np.asarray(image, dtype=np.float32)
    return np.stack([image,
                     ndi.gaussian_filter(image, 2),
                     ndi.gaussian_gradient_magnitude(image, 2),
                     ndi.gaussian_laplace(image, 3)], axis=-1)


def features_library(image):
    from pixelforest.features import compute_features

    return compute_features(image)


@pytest.mark.parametrize("fn", [features_reference, features_library])
def test_features_accept_references(capsys, fn):
    _passes(capsys, lesson.check_features, fn)


def _baseline(image):
    return features_reference(image)[..., :3]


def _first_axis(image):
    return np.moveaxis(features_reference(image), -1, 0)


def _flat(image):
    return features_reference(image).reshape(-1, 4)


def _single(image):
    return ndi.gaussian_filter(image.astype(np.float32), 2)


def _integer(image):
    return np.stack([image, ndi.gaussian_filter(image, 2), ndi.sobel(image),
                     ndi.gaussian_filter(image, 4)], axis=-1)


def _with_nan(image):
    f = features_reference(image)
    return np.concatenate([f, np.log(f[..., 3:4])], axis=-1)


def _with_constant(image):
    f = features_reference(image)
    return np.concatenate([f, np.full(f.shape[:-1] + (1,), f.mean())], axis=-1)


def _with_duplicate(image):
    f = features_reference(image)
    return np.concatenate([f, f[..., 1:2]], axis=-1)


def _rescaled_by_dtype(image):
    from skimage.filters import gaussian

    as_float = image / 255.0 if image.dtype == np.uint8 else image
    return np.stack([as_float, gaussian(image, sigma=1), gaussian(image, sigma=2),
                     gaussian(image, sigma=4)], axis=-1)


@pytest.mark.parametrize("fn, hint", [
    (_first_axis, "features are on the first axis"),
    (_flat, "already one row per pixel"),
    (_single, "a single feature"),
    (_integer, "cast the image first"),
    (_with_nan, "NaN"),
    (_with_constant, "same value at every pixel"),
    (_with_duplicate, "features 1 and 4"),
    (_rescaled_by_dtype, "rescaled the 8-bit image"),
])
def test_features_reject_wrong_answers(fn, hint):
    with pytest.raises(ExerciseCheckError, match="Exercise 4") as info:
        lesson.check_features(fn)
    assert hint in str(info.value)


def test_features_n_baseline(capsys):
    _passes(capsys, lesson.check_features, _baseline, n_baseline=2)
    with pytest.raises(ExerciseCheckError, match="n_baseline"):
        lesson.check_features(_baseline, n_baseline=-1)


# -- exercise 5 -------------------------------------------------------------------

@pytest.fixture()
def table():
    from pixelforest.evaluate.metrics import iou

    ref = np.zeros((10, 12), bool)
    ref[2:8, 3:9] = True
    preds = {"otsu": np.zeros_like(ref), "k-means": np.zeros_like(ref),
             "random forest": np.zeros_like(ref)}
    preds["otsu"][1:9, 2:10] = True
    preds["k-means"][2:6, 3:9] = True
    preds["random forest"][2:8, 3:8] = True
    scores = {name: iou(p, ref) for name, p in preds.items()}
    return scores, preds, ref


def test_improvement_accepts_right_answer(capsys, table):
    scores, preds, ref = table
    out = _passes(capsys, lesson.check_improvement, scores, preds, ref,
                  candidate="random forest", improved=True)
    assert "otsu" in out or "k-means" in out
    # and the honest "no" when the candidate is not the best
    _passes(capsys, lesson.check_improvement, scores, preds, ref,
            candidate="k-means", improved=False)


def test_improvement_rejects_wrong_conclusion(table):
    scores, preds, ref = table
    with pytest.raises(ExerciseCheckError, match="does not match the table"):
        lesson.check_improvement(scores, preds, ref, candidate="random forest",
                                 improved=False)


def test_improvement_rejects_typed_in_or_inconsistent_scores(table):
    scores, preds, ref = table
    wrong = dict(scores, otsu=0.9)
    with pytest.raises(ExerciseCheckError, match="score of 'otsu'"):
        lesson.check_improvement(wrong, preds, ref, candidate="random forest", improved=True)
    inverted = dict(preds, **{"k-means": ~preds["k-means"]})
    with pytest.raises(ExerciseCheckError, match="looks inverted"):
        lesson.check_improvement(scores, inverted, ref, candidate="random forest",
                                 improved=True)


@pytest.mark.parametrize("change, hint", [
    (lambda s, p, r: (dict(list(s.items())[:2]), p, r), "different methods"),
    (lambda s, p, r: ({"otsu": s["otsu"]}, {"otsu": p["otsu"]}, r), "at least two"),
    (lambda s, p, r: (s, dict(p, otsu=p["otsu"][:, :5]), r), "shape"),
    (lambda s, p, r: (dict(s, otsu="high"), p, r), "not a number"),
    (lambda s, p, r: (list(s.values()), p, r), "dictionaries"),
])
def test_improvement_rejects_malformed_tables(table, change, hint):
    scores, preds, ref = change(*table)
    with pytest.raises(ExerciseCheckError, match="Exercise 5") as info:
        lesson.check_improvement(scores, preds, ref, candidate="random forest", improved=True)
    assert hint in str(info.value)


def test_improvement_rejects_bad_candidate_and_answer(table):
    scores, preds, ref = table
    with pytest.raises(ExerciseCheckError, match="not in the table"):
        lesson.check_improvement(scores, preds, ref, candidate="forest", improved=True)
    with pytest.raises(ExerciseCheckError, match="True or False"):
        lesson.check_improvement(scores, preds, ref, candidate="random forest",
                                 improved="yes")


# == Lesson v2: the skeletons are "not done yet", never a pass and never a crash ==========

def _not_done(capsys, check, *args, **kwargs):
    assert check(*args, **kwargs) is None
    out = capsys.readouterr().out
    assert lesson.NOT_DONE in out and "\N{CHECK MARK}" not in out, out
    assert "your code here" in out
    return out


def test_skeletons_are_not_done(capsys):
    def my_minmax(image):
        # your code here
        ...

    def iou_score(prediction, reference):
        """A docstring does not make it done."""
        # your code here
        ...

    def my_features(image):
        image = np.asarray(image, dtype=np.float32)
        features = [image, ndi.gaussian_filter(image, 2),
                    ndi.gaussian_gradient_magnitude(image, 2)]
        # your code here: append new feature images
        return np.stack(features, axis=-1)

    _not_done(capsys, lesson.check_normalize, my_minmax)
    _not_done(capsys, lesson.check_kmeans, ..., _blob_image())
    _not_done(capsys, lesson.check_iou, iou_score)
    _not_done(capsys, lesson.check_features, my_features)
    ref = np.zeros((4, 4), bool)
    _not_done(capsys, lesson.check_improvement, {"a": ..., "b": 0.5},
              {"a": ref, "b": ref}, ref, candidate="a", improved=...)
    _not_done(capsys, lesson.check_improvement,
              {"test half": {"a": 0.1, "b": 0.2}, "second image": ...},
              {"test half": {"a": ref, "b": ref}, "second image": ...},
              {"test half": ref, "second image": ref}, candidate="a", improved=...)


def test_a_function_with_a_body_but_no_return_is_wrong_not_undone():
    def my_minmax(image):
        image = image.astype(np.float32)
        (image - image.min()) / (image.max() - image.min())

    with pytest.raises(ExerciseCheckError, match="return statement"):
        lesson.check_normalize(my_minmax)


# -- exercise 1: more wrong answers, each with the cause it must name ----------------------

def _wrap_percent(image):  # uint8 * 100 wraps around before the division
    low, high = image.min(), image.max()
    return (image - low) * 100 / (high - low) / 100 if high > low else np.zeros(image.shape)


def _wrap_square(image):  # (image - low) ** 2 in uint8 wraps around
    low, high = image.min(), image.max()
    return np.sqrt((image - low) ** 2) / (high - low) if high > low else np.zeros(image.shape)


def _uint8_rounded_back(image):  # correct formula, stored back in the input's dtype
    low, high = image.min(), image.max()
    if high == low:
        return np.zeros(image.shape)
    out = np.empty_like(image)
    out[...] = (image - low) / (high - low) * 1.0
    return out.astype(np.float64)


def _inverted(image):
    image = image.astype(np.float64)
    span = np.ptp(image)
    return (image.max() - image) / span if span else np.zeros(image.shape)


def _percentage(image):
    image = image.astype(np.float64)
    span = np.ptp(image)
    return 100 * (image - image.min()) / span if span else np.zeros(image.shape)


def _per_row(image):
    image = image.astype(np.float64)
    low, high = image.min(axis=1, keepdims=True), image.max(axis=1, keepdims=True)
    return (image - low) / np.where(high > low, high - low, 1)


def _percentile_clip(image):
    image = image.astype(np.float64)
    low, high = np.percentile(image, (5, 95))
    return np.clip((image - low) / (high - low), 0, 1) if high > low else np.zeros(image.shape)


def _rounded(image):
    return np.round(minmax_reference(image), 2)


def _float16(image):
    return minmax_reference(image).astype(np.float16)


def _uses_the_notebook_image(img):
    image = GLOBAL_IMAGE.astype(np.float32)
    return (image - image.min()) / np.ptp(image)


GLOBAL_IMAGE = np.arange(12, dtype=np.uint8).reshape(3, 4)


def _returns_tuple(image):
    image = image.astype(np.float32)
    return minmax_reference(image), image.min(), image.max()


def _integer_result(image):
    span = int(image.max()) - int(image.min())
    return ((image - image.min()) * 255 // max(span, 1)).astype(np.uint8)


def _constant_half(image):
    image = image.astype(np.float32)
    span = np.ptp(image)
    return (image - image.min()) / span if span else np.full(image.shape, 0.5)


@pytest.mark.parametrize("fn, hint", [
    (_wrap_percent, "wraps around"),
    (_wrap_square, "right on the same values given as float64"),
    (_inverted, "the brightest pixel became 0"),
    (_percentage, "a percentage"),
    (_per_row, "each row was normalized on its own"),
    (_percentile_clip, "clipped"),
    (_rounded, "rounded to 2 decimal"),
    (_float16, "float16"),
    (_uses_the_notebook_image, "never reads its argument 'img' and uses the notebook's "
                               "variable 'GLOBAL_IMAGE'"),
    (_returns_tuple, "return only the array"),
    (_integer_result, "cast to float"),
    (_constant_half, "all zeros"),
])
def test_normalize_names_the_cause(fn, hint):
    with pytest.raises(ExerciseCheckError, match="Exercise 1") as info:
        lesson.check_normalize(fn)
    assert hint in str(info.value)


def test_normalize_wrap_around_is_not_blamed_on_the_formula():
    with pytest.raises(ExerciseCheckError) as info:
        lesson.check_normalize(_wrap_percent)
    message = str(info.value)
    assert "your formula is right" in message and "astype(np.float32)" in message
    assert "(image - low) / (high - low)" not in message


def _minmax_sklearn(image):
    from sklearn.preprocessing import MinMaxScaler

    column = np.asarray(image, dtype=np.float64).reshape(-1, 1)
    return MinMaxScaler().fit_transform(column).reshape(image.shape)


def _minmax_skimage(image):
    from skimage import exposure, img_as_float

    image = img_as_float(image)  # rescales by dtype, which min-max undoes
    if np.ptp(image) == 0:
        return np.zeros(image.shape)
    return exposure.rescale_intensity(image, out_range=(0.0, 1.0))


def _minmax_subtract_then_cast(image):  # image - min cannot wrap around: fine
    span = float(np.ptp(image))
    shifted = (image - image.min()).astype(np.float32)
    return shifted / span if span else shifted


def _minmax_np_divide(image):
    image = image.astype(np.float64)
    out = np.zeros_like(image)
    return np.divide(image - image.min(), np.ptp(image), out=out, where=np.ptp(image) > 0)


@pytest.mark.parametrize("fn", [_minmax_sklearn, _minmax_skimage, _minmax_subtract_then_cast,
                                _minmax_np_divide])
def test_normalize_accepts_unusual_correct_answers(capsys, fn):
    _passes(capsys, lesson.check_normalize, fn)


def test_normalize_on_the_lessons_image(capsys):
    image = _blob_image()
    out = _passes(capsys, lesson.check_normalize, minmax_reference, image)
    assert "pixelforest.normalize_minmax" in out


# -- exercise 2: more wrong answers ---------------------------------------------------------

def _square_blobs():
    image = _blob_image(shape=(30, 30), seed=3)
    image[2:9, 20:28] = 200  # an asymmetric blob: a transpose is visible
    ids, km = _kmeans_ids(image)
    return image, ids.reshape(image.shape), km


@pytest.mark.parametrize("make, hint", [
    (lambda image, seg, km: km, "you passed the model"),
    (lambda image, seg, km: km.cluster_centers_, "the cluster centres"),
    (lambda image, seg, km: km.transform(image.reshape(-1, 1).astype(float)),
     "kmeans.transform"),
    (lambda image, seg, km: seg.T, "transposed"),
    (lambda image, seg, km: seg.ravel().reshape(image.shape, order="F"), "order='F'"),
    (lambda image, seg, km: seg.astype(np.uint8) * 255, "seg == 255"),
    (lambda image, seg, km: seg == 0, "inverted"),
    (lambda image, seg, km: (image > 150).astype(int), "your split is a threshold at about"),
    (lambda image, seg, km: seg[:15], "a crop, the other half"),
    (lambda image, seg, km: np.roll(seg, 5, axis=0), "not a clustering of this image"),
    (lambda image, seg, km: [[1]], "cluster centres"),
])
def test_kmeans_names_the_cause(make, hint):
    image, seg, km = _square_blobs()
    with pytest.raises(ExerciseCheckError, match="Exercise 2") as info:
        lesson.check_kmeans(make(image, seg, km), image)
    assert hint in str(info.value)


def test_kmeans_fortran_order_on_a_non_square_image():
    image = _blob_image()
    ids, _ = _kmeans_ids(image)
    with pytest.raises(ExerciseCheckError, match="reshaped in Fortran"):
        lesson.check_kmeans(ids.reshape(image.shape, order="F"), image)


def test_kmeans_swapped_arguments():
    image, seg, _ = _square_blobs()
    with pytest.raises(ExerciseCheckError, match="arguments are swapped"):
        lesson.check_kmeans(minmax_reference(image), seg)


@pytest.mark.parametrize("make", [
    lambda image, seg: seg.astype(np.float64),            # 0.0 / 1.0
    lambda image, seg: seg.tolist(),                       # nested lists
    lambda image, seg: seg.astype(np.int64) == 1,          # bool mask
    lambda image, seg: _otsu(image),                       # Otsu splits where K-means does
])
def test_kmeans_accepts_unusual_correct_answers(capsys, make):
    image, seg, _ = _square_blobs()
    _passes(capsys, lesson.check_kmeans, make(image, seg), image)
    # the raw image and the normalized one give the same partition
    _passes(capsys, lesson.check_kmeans, make(image, seg), minmax_reference(image))


def _otsu(image):
    from skimage.filters import threshold_otsu

    return (image > threshold_otsu(image)).astype(np.uint8)


# -- exercise 3: more wrong answers ---------------------------------------------------------

def _precision(p, r):
    p, r = p > 0, r > 0
    return (p & r).sum() / p.sum() if p.sum() else 1.0


def _recall(p, r):
    p, r = p > 0, r > 0
    return (p & r).sum() / r.sum() if r.sum() else 1.0


def _iou_percent(p, r):
    return 100 * iou_reference(p, r)


def _jaccard_distance(p, r):
    return 1 - iou_reference(p, r)


def _intersection_only(p, r):
    return int(((p > 0) & (r > 0)).sum())


def _union_only(p, r):
    return int(((p > 0) | (r > 0)).sum())


def _background_iou(p, r):
    return iou_reference(p == 0, r == 0)


def _iou_of_notebook_masks(prediction, reference):
    return iou_reference(GLOBAL_IMAGE > 3, GLOBAL_IMAGE > 5)


def _iou_and_dice(p, r):
    return iou_reference(p, r), _dice(p, r)


def _iou_bitwise_on_labels(p, r):  # & and | on label values: 2 & 1 == 0
    union = np.sum(p | r)
    return np.sum(p & r) / union if union else 1.0


@pytest.mark.parametrize("fn, hint", [
    (_precision, "that is the precision"),
    (_recall, "that is the recall"),
    (_iou_percent, "as a percentage"),
    (_jaccard_distance, "1 - IoU"),
    (_intersection_only, "the number of shared pixels"),
    (_union_only, "the number of pixels in the union"),
    (_background_iou, "the IoU of the background"),
    (_iou_of_notebook_masks, "never reads its argument"),
    (_iou_and_dice, "a tuple of 2 values"),
    (_iou_bitwise_on_labels, "right on 0/1 masks but not on label images"),
    (_iou_inverted, "upside down"),
])
def test_iou_names_the_cause(fn, hint):
    with pytest.raises(ExerciseCheckError, match="Exercise 3") as info:
        lesson.check_iou(fn)
    assert hint in str(info.value)


@pytest.mark.parametrize("fn", [_precision, _recall])
def test_iou_precision_and_recall_are_not_called_dice(fn):
    with pytest.raises(ExerciseCheckError) as info:
        lesson.check_iou(fn)
    assert "Dice" not in str(info.value)


def test_iou_a_percentage_is_not_told_upside_down():
    with pytest.raises(ExerciseCheckError) as info:
        lesson.check_iou(_iou_percent)
    assert "upside down" not in str(info.value) and "other way" not in str(info.value)


def _iou_float32(p, r):
    p, r = np.asarray(p) != 0, np.asarray(r) != 0
    union = np.float32(np.count_nonzero(p | r))
    return np.float32(np.count_nonzero(p & r)) / union if union else np.float32(1)


def _iou_sklearn(p, r):
    from sklearn.metrics import jaccard_score

    return jaccard_score(np.ravel(r) != 0, np.ravel(p) != 0, zero_division=1.0)


def _iou_sets(p, r):
    a, b = set(np.flatnonzero(p)), set(np.flatnonzero(r))
    return len(a & b) / len(a | b) if a | b else 1


def _iou_array_of_one(p, r):
    return np.array([iou_reference(p, r)])


@pytest.mark.parametrize("fn", [_iou_float32, _iou_sklearn, _iou_sets, _iou_array_of_one])
def test_iou_accepts_unusual_correct_answers(capsys, fn):
    _passes(capsys, lesson.check_iou, fn)


# -- exercise 4: more wrong answers ---------------------------------------------------------

def _plus(image, *extra):
    image = np.asarray(image, dtype=np.float32)
    base = [image, ndi.gaussian_filter(image, 2), ndi.gaussian_gradient_magnitude(image, 2)]
    return np.stack(base + [f(image) for f in extra], axis=-1)


def _scaled_copy(image):
    return _plus(image, lambda im: 2 * ndi.gaussian_filter(im, 2))


def _shifted_copy(image):
    return _plus(image, lambda im: im + 10)


def _log_copy(image):
    return _plus(image, lambda im: np.log1p(im))


def _threshold_copy(image):
    return _plus(image, lambda im: (ndi.gaussian_filter(im, 2) > 60).astype(np.float32))


def _no_features_at_all(image):
    return np.zeros(image.shape + (0,), np.float32)


def _three_others(image):
    image = image.astype(np.float32)
    return np.stack([ndi.gaussian_filter(image, s) for s in (1, 4, 8)], axis=-1)


def _seeded_noise(image):
    return _plus(image, lambda im: np.random.default_rng(0).normal(size=im.shape))


def _unseeded_noise(image):
    return _plus(image, lambda im: np.random.default_rng().normal(size=im.shape))


def _coordinates(image):
    return _plus(image, lambda im: np.indices(im.shape)[0].astype(np.float32),
                 lambda im: np.indices(im.shape)[1].astype(np.float32))


def _uint8_filters_cast_at_the_end(image):
    return np.stack([image, ndi.gaussian_filter(image, 2),
                     ndi.gaussian_gradient_magnitude(image, 2),
                     ndi.gaussian_filter(image, 6)], axis=-1).astype(np.float32)


def _uint8_wrap(image):  # local contrast computed in uint8 wraps around
    return np.concatenate([_plus(image), (image - ndi.gaussian_filter(image, 4))[
        ..., np.newaxis].astype(np.float32)], axis=-1)


def _features_of_the_notebook_image(img):
    return _plus(GLOBAL_IMAGE, lambda im: ndi.gaussian_filter(im, 4))


def _stack_of_stacks(image):
    base = _plus(image)
    return np.stack([base, base + ndi.gaussian_laplace(image.astype(np.float32), 3)[
        ..., np.newaxis]], axis=-1)


@pytest.mark.parametrize("fn, hint", [
    (_scaled_copy, "a scaled or shifted copy of feature 1"),
    (_shifted_copy, "a scaled or shifted copy of feature 0"),
    (_log_copy, "a monotone function of feature 0"),
    (_threshold_copy, "a monotone function of feature 1"),
    (_no_features_at_all, "you have 0 features"),
    (_three_others, "you have 3 features"),
    (_seeded_noise, "does not depend on the image"),
    (_unseeded_noise, "it is random"),
    (_coordinates, "does not depend on the image"),
    (_uint8_filters_cast_at_the_end, "the filter ran in uint8"),
    (_uint8_wrap, "ran in uint8 and wrapped around"),
    (_features_of_the_notebook_image, "never reads its argument 'img'"),
    (_stack_of_stacks, "a stack of stacks"),
])
def test_features_name_the_cause(fn, hint):
    with pytest.raises(ExerciseCheckError, match="Exercise 4") as info:
        lesson.check_features(fn)
    assert hint in str(info.value)


def test_features_left_in_uint8_are_not_blamed_on_rescaling():
    with pytest.raises(ExerciseCheckError) as info:
        lesson.check_features(_uint8_filters_cast_at_the_end)
    assert "rescaled" not in str(info.value)


def test_features_unchanged_skeleton_is_not_done(capsys):
    _not_done(capsys, lesson.check_features, _baseline)


def _local_contrast(image):  # intensity minus its blur: a combination, not a copy
    return _plus(image, lambda im: im - ndi.gaussian_filter(im, 2))


def _local_std(image):
    return _plus(image, lambda im: ndi.generic_filter(im, np.std, size=5))


def _skimage_multiscale(image):
    from skimage.feature import multiscale_basic_features

    return multiscale_basic_features(image.astype(np.float32), sigma_min=1, sigma_max=4,
                                     num_sigma=2, edges=True, texture=False).astype(np.float32)


def _only_new_features(image):
    image = image.astype(np.float64)
    return np.stack([ndi.gaussian_filter(image, 1), ndi.gaussian_laplace(image, 2),
                     ndi.gaussian_laplace(image, 4), ndi.gaussian_filter(image, 8)], axis=-1)


@pytest.mark.parametrize("fn", [_local_contrast, _local_std, _skimage_multiscale,
                                _only_new_features])
def test_features_accept_unusual_correct_answers(capsys, fn):
    _passes(capsys, lesson.check_features, fn)


# -- exercise 5: more wrong answers ---------------------------------------------------------

def _disc_mask(shape, centres, radius):
    yy, xx = np.indices(shape)
    mask = np.zeros(shape, bool)
    for cy, cx in centres:
        mask |= (yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2
    return mask


@pytest.fixture()
def held_out():
    """A split like the lesson's: training and test halves of the same shape."""
    from pixelforest.evaluate.metrics import iou

    shape = (20, 30)
    train_ref = _disc_mask(shape, [(5, 5), (12, 20), (15, 8)], 4)
    test_ref = _disc_mask(shape, [(6, 22), (14, 10)], 5)
    forest_test = test_ref.copy()
    forest_test[4:8, 24:28] = False  # errors on the held-out pixels
    forest_test[0:3, 0:4] = True
    forest_train = train_ref.copy()  # nearly perfect where it was trained
    forest_train[0, 0] = True
    otsu = _disc_mask(shape, [(6, 22), (14, 10)], 6)
    kmeans = _disc_mask(shape, [(6, 22), (14, 10)], 4)
    preds = {"Otsu": otsu, "K-means": kmeans, "random forest": forest_test}
    scores = {name: iou(p, test_ref) for name, p in preds.items()}
    return dict(scores=scores, preds=preds, test_ref=test_ref, train_ref=train_ref,
                forest_train=forest_train)


def _check5(scores, preds, ref, train_ref, improved=True):
    lesson.check_improvement(scores, preds, ref, candidate="random forest",
                             improved=improved, training_reference=train_ref)


def test_improvement_accepts_held_out_scores(capsys, held_out):
    h = held_out
    _passes(capsys, _check5_printing, h["scores"], h["preds"], h["test_ref"], h["train_ref"])


def _check5_printing(*args, **kwargs):
    _check5(*args, **kwargs)


def _case_training_reference(h):
    from pixelforest.evaluate.metrics import iou

    preds = dict(h["preds"], **{"random forest": h["forest_train"]})
    scores = {n: iou(p, h["train_ref"]) for n, p in preds.items()}
    return scores, preds, h["train_ref"]


def _case_predicted_training_half(h):
    from pixelforest.evaluate.metrics import iou

    preds = dict(h["preds"], **{"random forest": h["forest_train"]})
    scores = {n: iou(p, h["test_ref"]) for n, p in preds.items()}
    return scores, preds, h["test_ref"]


def _case_score_from_training(h):
    return dict(h["scores"], **{"random forest": 0.998}), h["preds"], h["test_ref"]


def _case_inverted_kmeans(h):
    from pixelforest.evaluate.metrics import iou

    preds = dict(h["preds"], **{"K-means": ~h["preds"]["K-means"]})
    return {n: iou(p, h["test_ref"]) for n, p in preds.items()}, preds, h["test_ref"]


def _case_classes_1_2(h):
    from pixelforest.evaluate.metrics import iou

    classes = h["preds"]["random forest"].astype(np.uint8) + 1
    preds = dict(h["preds"], **{"random forest": classes})
    return {n: iou(p, h["test_ref"]) for n, p in preds.items()}, preds, h["test_ref"]


def _case_background_class(h):
    from pixelforest.evaluate.metrics import iou

    classes = h["preds"]["random forest"].astype(np.uint8) + 1
    preds = dict(h["preds"], **{"random forest": classes == 1})
    return {n: iou(p, h["test_ref"]) for n, p in preds.items()}, preds, h["test_ref"]


def _case_percentages(h):
    return {n: 100 * s for n, s in h["scores"].items()}, h["preds"], h["test_ref"]


def _case_dice(h):
    from pixelforest.evaluate.metrics import dice

    return ({n: dice(p, h["test_ref"]) for n, p in h["preds"].items()}, h["preds"],
            h["test_ref"])


def _case_accuracy(h):
    return ({n: float(np.mean(p == h["test_ref"])) for n, p in h["preds"].items()},
            h["preds"], h["test_ref"])


def _case_swapped(h):
    s = h["scores"]
    return dict(s, Otsu=s["K-means"], **{"K-means": s["Otsu"]}), h["preds"], h["test_ref"]


def _case_rounded(h):
    return {n: round(s, 1) for n, s in h["scores"].items()}, h["preds"], h["test_ref"]


def _case_probabilities(h):
    from pixelforest.evaluate.metrics import iou

    proba = np.where(h["preds"]["random forest"], 0.8, 0.3)
    preds = dict(h["preds"], **{"random forest": proba})
    return {n: iou(p, h["test_ref"]) for n, p in preds.items()}, preds, h["test_ref"]


def _case_flat(h):
    preds = dict(h["preds"], **{"random forest": h["preds"]["random forest"].ravel()})
    return h["scores"], preds, h["test_ref"]


def _case_nothing_found(h):
    preds = dict(h["preds"], **{"random forest": np.zeros_like(h["test_ref"])})
    return dict(h["scores"], **{"random forest": 0.0}), preds, h["test_ref"]


@pytest.mark.parametrize("case, hint", [
    (_case_training_reference, "the training pixels' reference"),
    (_case_predicted_training_half, "is a prediction of the training pixels"),
    (_case_score_from_training, "a score near 1 is what a forest gets on the pixels it was "
                                "trained on"),
    (_case_inverted_kmeans, "'K-means' looks inverted"),
    (_case_classes_1_2, "holds the classes 1 and 2"),
    (_case_background_class, "'random forest' looks inverted"),
    (_case_percentages, "a percentage"),
    (_case_dice, "the Dice coefficient"),
    (_case_accuracy, "accuracy"),
    (_case_swapped, "the IoU of 'K-means''s prediction"),
    (_case_rounded, "rounded too much"),
    (_case_probabilities, "probabilities"),
    (_case_flat, "reshape it back"),
    (_case_nothing_found, "the same value (False) everywhere"),
])
def test_improvement_names_the_cause(held_out, case, hint):
    scores, preds, ref = case(held_out)
    with pytest.raises(ExerciseCheckError, match="Exercise 5") as info:
        _check5(scores, preds, ref, held_out["train_ref"])
    assert hint in str(info.value)


def test_improvement_accepts_unusual_correct_answers(capsys, held_out):
    h = held_out
    rounded = {n: round(s, 3) for n, s in h["scores"].items()}
    _passes(capsys, _check5_printing, rounded, h["preds"], h["test_ref"], h["train_ref"])
    as_ints = {n: p.astype(np.uint8) for n, p in h["preds"].items()}
    float32 = {n: np.float32(s) for n, s in h["scores"].items()}
    _passes(capsys, _check5_printing, float32, as_ints, h["test_ref"].astype(np.uint16) * 7,
            h["train_ref"], improved=np.bool_(True))
    # without the training reference, the flat table of the seed still works
    _passes(capsys, lesson.check_improvement, h["scores"], h["preds"], h["test_ref"],
            candidate="random forest", improved=True)


@pytest.fixture()
def two_images(held_out):
    from pixelforest.evaluate.metrics import iou

    h = held_out
    second_ref = _disc_mask((16, 16), [(8, 8)], 5)
    second = {"Otsu": _disc_mask((16, 16), [(8, 8)], 5),  # Otsu wins on this image
              "K-means": _disc_mask((16, 16), [(8, 8)], 3),
              "random forest": _disc_mask((16, 16), [(8, 9)], 5)}
    preds = {"test half": h["preds"], "second image": second}
    refs = {"test half": h["test_ref"], "second image": second_ref}
    scores = {k: {n: iou(p, refs[k]) for n, p in v.items()} for k, v in preds.items()}
    return scores, preds, refs


def test_improvement_nested_tables(capsys, two_images, held_out):
    scores, preds, refs = two_images
    out = _passes(capsys, lesson.check_improvement, scores, preds, refs,
                  candidate="random forest",
                  improved={"test half": True, "second image": False},
                  training_reference=held_out["train_ref"])
    assert "test half" in out and "second image" in out
    with pytest.raises(ExerciseCheckError, match="answer per image"):
        lesson.check_improvement(scores, preds, refs, candidate="random forest",
                                 improved=True)
    with pytest.raises(ExerciseCheckError, match="for 'second image' does not match"):
        lesson.check_improvement(scores, preds, refs, candidate="random forest",
                                 improved={"test half": True, "second image": True})
    with pytest.raises(ExerciseCheckError, match="name different images"):
        lesson.check_improvement(scores, preds, {"test half": refs["test half"]},
                                 candidate="random forest", improved=True)


# == exercise 6: count the nuclei and measure them ===========================================

def _counted():
    """Instance labels: label values skip numbers, two touching nuclei, two at the border."""
    inst = np.zeros((40, 60), np.uint16)
    inst[0:5, 0:6] = 1        # 30 pixels, cut by the top and left border
    inst[10:16, 10:18] = 3    # 48 pixels ...
    inst[10:16, 18:24] = 4    # ... 36 pixels, touching nucleus 3
    inst[25:30, 30:36] = 5    # 30 pixels
    inst[35:40, 50:56] = 7    # 30 pixels, at the bottom border
    inst[20:29, 44:53] = 8    # 81 pixels
    return inst


#: The right answers for _counted(): 6 nuclei; (48 + 36 + 30 + 81) / 4 = 48.75.
COUNT, MEAN_AREA = 6, 48.75


def _count_solution(instances):
    from pixelforest import objects

    table = objects.measure(instances)
    return len(table), table[~table["touches_border"]]["area"].mean()


def test_count_solution_is_the_lessons(capsys):
    n, area = _count_solution(_counted())
    assert (n, area) == (COUNT, MEAN_AREA)
    _passes(capsys, lesson.check_count, n, area, _counted())


@pytest.mark.parametrize("n, area", [
    (np.int64(COUNT), np.float32(MEAN_AREA)),             # NumPy scalars
    (float(COUNT), MEAN_AREA),                             # a count as 6.0
    (np.array([COUNT]), np.array([[MEAN_AREA]])),          # one-element arrays
    (COUNT, round(MEAN_AREA, 1)),                          # rounded to one decimal
    (COUNT, round(MEAN_AREA)),                             # rounded to whole pixels
], ids=["numpy-scalars", "float-count", "one-element-arrays", "one-decimal", "whole-pixels"])
def test_count_accepts_unusual_correct_answers(capsys, n, area):
    _passes(capsys, lesson.check_count, n, area, _counted())


def test_count_accepts_other_correct_ways(capsys, small_classifier, nuclei):
    import pandas as pd
    from scipy import ndimage as ndi
    from skimage.measure import regionprops

    inst = _counted()
    # a pandas one-element Series (a double-bracket column selection)
    table = pd.DataFrame({"area": [48, 36, 30, 81], "label": [3, 4, 5, 8]})
    _passes(capsys, lesson.check_count, len(np.unique(inst)) - 1, table[["area"]].mean(), inst)
    # regionprops and a border test by bounding box
    props = regionprops(inst)
    inner = [p.area for p in props if min(p.bbox[:2]) > 0
             and p.bbox[2] < inst.shape[0] and p.bbox[3] < inst.shape[1]]
    _passes(capsys, lesson.check_count, len(props), np.mean(inner), inst)
    # np.bincount without the background, border labels from the edges
    areas = np.bincount(inst.ravel())
    edge = np.unique(np.concatenate([inst[0], inst[-1], inst[:, 0], inst[:, -1]]))
    keep = [v for v in np.unique(inst)[1:] if v not in edge]
    _passes(capsys, lesson.check_count, ndi.maximum(inst > 0, inst, np.unique(inst)[1:]).size,
            areas[keep].mean(), inst)
    # the lesson's own path on a real predict_instances output
    image, _ = nuclei
    instances = small_classifier.predict_instances(image)
    _passes(capsys, lesson.check_count, *_count_solution(instances), instances)


@pytest.mark.parametrize("n, hint", [
    (COUNT + 1, "counted the background"),               # len(np.unique(instances))
    (8, "largest label value"),                           # instances.max()
    (255, "number of nucleus pixels"),                    # np.count_nonzero
    (4, "leaves out the nuclei that touch"),              # border nuclei dropped
    (2, "only the nuclei that touch the border"),         # inverted selection
    (5, "connected blobs of the mask"),                   # ndi.label(mask), 8-connected
    (6.5, "not a whole number"),                          # an average
    (9, "holds fewer nuclei"),                            # something else
    (3, "holds more nuclei"),                             # something else
    (None, "is None"),                                    # printed, not assigned
    ("6", "the text '6'"),                                # f-string
    (True, "a yes/no answer"),                            # a comparison
    (np.array([1, 3, 4, 5, 7, 8]), "of 6 values"),        # np.unique(...) itself
], ids=lambda v: type(v).__name__ if not isinstance(v, str) or len(v) < 3 else v[:20])
def test_count_wrong_counts(n, hint):
    with pytest.raises(ExerciseCheckError, match=hint):
        lesson.check_count(n, MEAN_AREA, _counted())


def test_count_wrong_count_table():
    from pixelforest import objects

    with pytest.raises(ExerciseCheckError, match="DataFrame of .* not one number"):
        lesson.check_count(objects.measure(_counted()), MEAN_AREA, _counted())


def _wrong_areas():
    inst = _counted()
    areas = np.array([30, 48, 36, 30, 30, 81], float)   # labels 1, 3, 4, 5, 7, 8
    inner = np.array([False, True, True, True, False, True])
    background = float(np.sum(inst == 0))
    return [
        (areas.mean(), "including those cut by the image border"),
        (areas[~inner].mean(), "the selection is inverted"),
        (np.median(areas[inner]), "the median area"),
        (np.median(areas), "the median area of all nuclei"),
        (areas[inner].sum(), "total area of those nuclei"),
        (areas.sum(), "total area of all nuclei"),
        (areas[inner].sum() / inst.size, "fraction of the image"),
        (areas[inner].sum() / areas.size, "by the number of all nuclei"),
        (np.bincount(inst.ravel()).mean(), "bincount's first entry is the background"),
        (np.append(areas[inner], background).mean(), "background \\(label 0\\) as one more"),
        ((84 + 30 + 81) / 3, "connected blobs of the mask"),
        (np.mean(np.sqrt(4 * areas[inner] / np.pi)), "a mean diameter"),
        (np.nan, "NaN: the mean of an empty selection"),
        (120.0, "mean area below that"),
        (20.0, "mean area above that"),
        ("48.75", "the text"),
        (np.array([48, 36, 30, 81]), "of 4 values"),
    ]


@pytest.mark.parametrize("area, hint", _wrong_areas(),
                         ids=[f"area-{k}" for k in range(len(_wrong_areas()))])
def test_count_wrong_mean_areas(area, hint):
    with pytest.raises(ExerciseCheckError, match=hint):
        lesson.check_count(COUNT, area, _counted())


@pytest.mark.parametrize("labels, hint", [
    (_counted() > 0, "is a mask"),                             # the mask, not instances
    ((_counted() > 0).astype(np.uint8), "is a mask"),          # the mask as 0/1 integers
    (np.where(_counted() > 0, 2, 1).astype(np.uint8), "classes 1 and 2"),  # predict()
    (None, "label image is missing"),
    (np.zeros((10, 10), np.uint16), "holds no nuclei"),
    (_counted() * 0.5, "not a label image"),                   # non-integer values
], ids=["bool-mask", "int-mask", "classes", "none", "empty", "float"])
def test_count_wrong_label_image(labels, hint):
    with pytest.raises(ExerciseCheckError, match=hint):
        lesson.check_count(COUNT, MEAN_AREA, labels)


def test_count_not_done(capsys):
    out = _not_done(capsys, lesson.check_count, ..., ..., _counted())
    assert "n_nuclei and mean_area" in out
    out = _not_done(capsys, lesson.check_count, COUNT, ..., _counted())
    assert "mean_area still" in out and "n_nuclei" not in out
