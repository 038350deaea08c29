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
    raise RuntimeError("oops")


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
    (_per_column, "values differ"),
    (_returns_nothing, "return statement"),
    (_returns_list, "not a NumPy array"),
    (_raises, "RuntimeError: oops"),
    (_min_max_swapped, "values differ"),
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
    with pytest.raises(ExerciseCheckError, match="agrees with a K-means"):
        lesson.check_kmeans(seg, image)


def test_kmeans_rejects_another_images_segmentation():
    image = _blob_image(seed=0)
    other = np.roll(image, 7, axis=1)
    ids, _ = _kmeans_ids(other)
    with pytest.raises(ExerciseCheckError, match="not a clustering of the pixel intensities"):
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
    (_iou_inverted, "between 0 and 1"),
    (_iou_empty_zero, "expected 1"),
    (lambda p, r: None, "return statement"),
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
    (_baseline, "add at least one new feature"),
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
    with pytest.raises(ExerciseCheckError, match="foreground = 1"):
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
