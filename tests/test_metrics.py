import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from skimage.measure import label as connected_components

import pixelforest
from pixelforest.errors import InvalidImageError, InvalidLabelsError, InvalidParameterError
from pixelforest.errors import ShapeMismatchError
from pixelforest.evaluate.metrics import (
    DSB_THRESHOLDS,
    ObjectMatch,
    average_precision,
    confusion_matrix,
    dice,
    iou,
    iou_per_class,
    match_objects,
    mean_iou,
)

# ------------------------------------------------------------ pixel level


def test_iou_dice_hand_computed():
    ref = np.array([[0, 1, 1, 1], [0, 0, 0, 0]])
    pred = np.array([[1, 1, 1, 0], [0, 0, 0, 0]])
    # tp 2, fp 1, fn 1
    assert iou(pred, ref) == 0.5
    assert dice(pred, ref) == pytest.approx(4 / 6)


def test_iou_dice_nonzero_is_foreground():
    ref = np.array([[0, 3, 3], [7, 0, 0]], dtype=np.uint16)  # instance labels
    pred = np.array([[False, True, True], [False, False, True]])
    assert iou(pred, ref) == pytest.approx(2 / 4)
    assert dice(pred, ref) == pytest.approx(4 / 6)


def test_iou_dice_empty_conventions():
    empty = np.zeros((4, 4), dtype=bool)
    full = np.ones((4, 4), dtype=bool)
    assert iou(empty, empty) == 1.0 and dice(empty, empty) == 1.0
    assert iou(empty, full) == 0.0 and dice(full, empty) == 0.0
    assert iou(full, full) == 1.0


def test_iou_3d():
    ref = np.zeros((3, 4, 5), dtype=bool)
    ref[1] = True
    pred = np.zeros_like(ref)
    pred[1:, :2] = True
    assert iou(pred, ref) == pytest.approx(10 / (20 + 10))


def test_top_level_names():
    assert pixelforest.iou is iou
    assert pixelforest.dice is dice


def test_confusion_matrix_hand_computed():
    ref = np.array([[0, 0, 1, 1], [0, 2, 2, 1]])
    pred = np.array([[0, 1, 1, 1], [0, 2, 1, 1]])
    cm = confusion_matrix(pred, ref)
    np.testing.assert_array_equal(cm, [[2, 1, 0], [0, 3, 0], [0, 1, 1]])
    assert cm.dtype == np.int64
    # rows and columns follow the given labels; unlisted values are dropped
    np.testing.assert_array_equal(confusion_matrix(pred, ref, labels=[2, 0]),
                                  [[1, 0], [0, 2]])
    np.testing.assert_array_equal(confusion_matrix(pred, ref, labels=[0, 1, 2, 9]),
                                  [[2, 1, 0, 0], [0, 3, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0]])


def test_confusion_matrix_matches_sklearn():
    from sklearn.metrics import confusion_matrix as sk_confusion_matrix

    rng = np.random.default_rng(0)
    ref = rng.integers(0, 5, size=(6, 20, 30))
    pred = np.where(rng.random(ref.shape) < 0.7, ref, rng.integers(0, 5, size=ref.shape))
    np.testing.assert_array_equal(confusion_matrix(pred, ref),
                                  sk_confusion_matrix(ref.ravel(), pred.ravel()))


def test_iou_per_class_and_mean():
    ref = np.array([[0, 0, 1, 1], [0, 2, 2, 1]])
    pred = np.array([[0, 1, 1, 1], [0, 2, 1, 1]])
    np.testing.assert_allclose(iou_per_class(pred, ref), [2 / 3, 3 / 5, 1 / 2])
    assert mean_iou(pred, ref) == pytest.approx((2 / 3 + 3 / 5 + 1 / 2) / 3)
    # a class absent from both images scores 1.0
    np.testing.assert_allclose(iou_per_class(pred, ref, labels=[1, 5]), [3 / 5, 1.0])
    assert mean_iou(pred, ref, labels=[1]) == pytest.approx(3 / 5)


def test_binary_iou_is_iou_per_class_of_foreground():
    rng = np.random.default_rng(1)
    a, b = rng.random((2, 30, 30)) < 0.4
    assert iou(a, b) == pytest.approx(iou_per_class(a, b, labels=[True])[0])


@pytest.mark.parametrize("labels, match", [
    ([], "non-empty"),
    ([[0, 1]], "1-D"),
    ([1, 1], "more than once"),
])
def test_confusion_matrix_bad_labels(labels, match):
    with pytest.raises(InvalidParameterError, match=match):
        confusion_matrix(np.zeros((2, 2)), np.zeros((2, 2)), labels=labels)


# ----------------------------------------------------------- object level


def _two_objects():
    ref = np.zeros((10, 10), dtype=np.uint16)
    ref[1:5, 1:5] = 1
    ref[6:9, 6:9] = 2
    return ref


def test_match_objects_hand_computed():
    ref = np.array([[1, 1, 0, 2, 2],
                    [1, 1, 0, 2, 2]])
    pred = np.array([[5, 5, 0, 0, 7],
                     [5, 5, 0, 0, 0]])
    m = match_objects(pred, ref)
    assert isinstance(m, ObjectMatch)
    assert (m.tp, m.fp, m.fn, m.n_pred, m.n_ref) == (1, 1, 1, 2, 2)
    assert (m.precision, m.recall, m.f1, m.accuracy) == (0.5, 0.5, 0.5, 1 / 3)
    assert m.threshold == 0.5
    np.testing.assert_array_equal(m.pairs, [[5, 1]])
    np.testing.assert_array_equal(m.pair_ious, [1.0])
    # object 7 overlaps object 2 with IoU 1/4: a match only below 0.25
    low = match_objects(pred, ref, threshold=0.2)
    assert low.tp == 2
    np.testing.assert_array_equal(low.pairs, [[5, 1], [7, 2]])
    np.testing.assert_allclose(low.pair_ious, [1.0, 0.25])


def test_match_objects_result_is_frozen():
    m = match_objects(_two_objects(), _two_objects())
    with pytest.raises(AttributeError):
        m.tp = 0


def test_match_is_strictly_greater_than_threshold():
    ref = np.array([[1, 1]])
    pred = np.array([[1, 0]])  # IoU exactly 0.5
    assert match_objects(pred, ref, threshold=0.5).tp == 0
    assert match_objects(pred, ref, threshold=0.49).tp == 1


def test_match_below_half_is_one_to_one():
    # one reference object half-covered by each of two predictions: IoU 0.5 each
    ref = np.array([[1, 1, 1, 1]])
    pred = np.array([[1, 1, 2, 2]])
    m = match_objects(pred, ref, threshold=0.3)
    assert (m.tp, m.fp, m.fn) == (1, 1, 0)
    # most matches first: ref A overlaps pred X (0.6) and Y (0.4); ref B only X
    ref = np.array([[1, 1, 1, 1, 1, 2, 2, 2, 2, 2]])
    pred = np.array([[3, 3, 3, 4, 4, 4, 4, 4, 0, 0]])
    m = match_objects(pred, ref, threshold=0.3)
    assert m.tp == 2
    np.testing.assert_array_equal(m.pairs, [[3, 1], [4, 2]])


def test_binary_masks_become_connected_components():
    ref = _two_objects()
    pred_mask = ref > 0  # bool: split into its two components
    m = match_objects(pred_mask, ref)
    assert (m.tp, m.fp, m.fn) == (2, 0, 0)
    # a {0, 1} integer mask too, 8-connected in 2D
    diagonal = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0]], dtype=np.uint8)
    assert match_objects(diagonal, diagonal).n_pred == 1
    apart = np.array([[1, 0, 1]], dtype=np.uint8)
    assert match_objects(apart, apart).n_ref == 2


def test_binary_masks_3d_26_connected():
    mask = np.zeros((3, 3, 3), dtype=bool)
    mask[0, 0, 0] = mask[1, 1, 1] = mask[2, 0, 2] = True  # corner-touching chain
    assert match_objects(mask, mask).n_pred == 1


def test_match_objects_3d_labels():
    ref = np.zeros((4, 6, 6), dtype=np.int32)
    ref[:2, :3, :3] = 1
    ref[2:, 3:, 3:] = 2
    pred = ref.copy()
    pred[0] = 0  # object 1 loses half its voxels: IoU 0.5, not a match
    m = match_objects(pred, ref)
    assert (m.tp, m.fp, m.fn) == (1, 1, 1)


def test_match_objects_empty_conventions():
    empty = np.zeros((5, 5), dtype=np.uint16)
    ref = _two_objects()[:5, :5]
    both = match_objects(empty, empty)
    assert (both.tp, both.fp, both.fn) == (0, 0, 0)
    assert both.precision == both.recall == both.f1 == both.accuracy == 1.0
    missed = match_objects(empty, ref)
    assert (missed.fn, missed.precision, missed.recall, missed.f1) == (1, 0.0, 0.0, 0.0)
    spurious = match_objects(ref, empty)
    assert (spurious.fp, spurious.precision, spurious.recall) == (1, 0.0, 0.0)
    assert spurious.pairs.shape == (0, 2)


def test_labels_without_background_and_non_consecutive():
    ref = np.array([[4, 4, 9, 9]])
    pred = np.array([[10, 10, 10, 30]])
    m = match_objects(pred, ref)
    np.testing.assert_array_equal(m.pairs, [[10, 4]])
    assert m.pair_ious[0] == pytest.approx(2 / 3)
    assert (m.tp, m.fp, m.fn) == (1, 1, 1)


def test_average_precision_hand_computed():
    ref = _two_objects()
    pred = ref.copy()
    pred[1, 1:5] = 0  # object 1: IoU 12/16 = 0.75
    ap, thresholds, scores = average_precision(pred, ref, return_thresholds=True)
    np.testing.assert_allclose(thresholds, np.arange(10) * 0.05 + 0.5)
    np.testing.assert_allclose(scores, [1] * 5 + [1 / 3] * 5)
    assert ap == pytest.approx(2 / 3)
    assert average_precision(pred, ref) == ap
    assert average_precision(pred, ref, thresholds=[0.5]) == 1.0
    assert average_precision(pred, ref, thresholds=0.8) == pytest.approx(1 / 3)


def test_average_precision_conventions():
    ref = _two_objects()
    empty = np.zeros_like(ref)
    assert average_precision(ref, ref) == 1.0
    assert average_precision(empty, ref) == 0.0
    assert average_precision(ref, empty) == 0.0
    assert average_precision(empty, empty) == 1.0


def test_dsb_thresholds():
    np.testing.assert_allclose(DSB_THRESHOLDS, [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8,
                                                0.85, 0.9, 0.95])


def _brute_force_tp(pred, ref, threshold):
    """Dense IoU matrix by explicit loops; for t >= 0.5 matches are unique."""
    tp = 0
    for r in np.unique(ref[ref > 0]):
        for p in np.unique(pred[pred > 0]):
            inter = np.sum((ref == r) & (pred == p))
            union = np.sum((ref == r) | (pred == p))
            tp += inter / union > threshold
    return tp


def _random_labels(seed, shape=(24, 24)):
    rng = np.random.default_rng(seed)
    mask = rng.random(shape) < 0.45
    return connected_components(mask, connectivity=1)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**16), st.integers(0, 2**16), st.sampled_from([0.5, 0.6, 0.75, 0.9]))
def test_property_matching_agrees_with_brute_force(seed_a, seed_b, threshold):
    pred, ref = _random_labels(seed_a), _random_labels(seed_b)
    m = match_objects(pred, ref, threshold=threshold)
    assert m.tp == _brute_force_tp(pred, ref, threshold)
    assert m.tp + m.fp == len(np.unique(pred[pred > 0]))
    assert m.tp + m.fn == len(np.unique(ref[ref > 0]))
    # matching is symmetric: swapping sides swaps FP and FN
    swapped = match_objects(ref, pred, threshold=threshold)
    assert (swapped.tp, swapped.fp, swapped.fn) == (m.tp, m.fn, m.fp)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**16), st.floats(0, 0.49))
def test_property_low_threshold_matching_is_one_to_one(seed, threshold):
    pred, ref = _random_labels(seed), _random_labels(seed + 1)
    m = match_objects(pred, ref, threshold=threshold)
    assert len(set(m.pairs[:, 0])) == m.tp == len(set(m.pairs[:, 1]))
    assert np.all(m.pair_ious > threshold)
    for (p, r), value in zip(m.pairs, m.pair_ious):
        inter = np.sum((pred == p) & (ref == r))
        assert value == pytest.approx(inter / np.sum((pred == p) | (ref == r)))


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**16), st.integers(1, 1000))
def test_property_average_precision_perfect_and_empty(seed, offset):
    ref = _random_labels(seed)
    if ref.max() == 0:
        return
    relabelled = np.where(ref > 0, ref + offset, 0)  # same objects, other numbers
    assert average_precision(relabelled, ref) == 1.0
    assert average_precision(np.zeros_like(ref), ref) == 0.0
    ap = average_precision(_random_labels(seed + 7), ref)
    assert 0.0 <= ap <= 1.0


_masks = hnp.arrays(bool, st.tuples(st.integers(1, 6), st.integers(1, 6)))


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_property_iou_dice(data):
    a = data.draw(_masks)
    b = data.draw(hnp.arrays(bool, a.shape))
    i, d = iou(a, b), dice(a, b)
    assert 0.0 <= i <= d <= 1.0
    assert i == iou(b, a) and d == dice(b, a)
    assert i == pytest.approx(d / (2 - d))
    assert (i == 1.0) == bool(np.array_equal(a, b))


@settings(max_examples=50, deadline=None)
@given(st.data())
def test_property_confusion_matrix_counts_every_pixel(data):
    a = data.draw(hnp.arrays(np.uint8, st.tuples(st.integers(1, 5), st.integers(1, 5)),
                             elements=st.integers(0, 3)))
    b = data.draw(hnp.arrays(np.uint8, a.shape, elements=st.integers(0, 3)))
    cm = confusion_matrix(a, b)
    assert cm.sum() == a.size
    np.testing.assert_array_equal(confusion_matrix(b, a), cm.T)
    per_class = iou_per_class(a, b)
    assert np.all((per_class >= 0) & (per_class <= 1))
    np.testing.assert_allclose(per_class, iou_per_class(b, a))


# -------------------------------------------------------------- bad input


_ALL = [iou, dice, confusion_matrix, iou_per_class, mean_iou, match_objects,
        average_precision]


@pytest.mark.parametrize("func", _ALL)
def test_shape_mismatch(func):
    with pytest.raises(ShapeMismatchError, match=r"\(4, 5\).*\(5, 4\)"):
        func(np.zeros((4, 5)), np.zeros((5, 4)))


@pytest.mark.parametrize("func", _ALL)
@pytest.mark.parametrize("bad, match", [
    (np.array([[0.0, np.nan]]), "NaN"),
    (np.zeros((0, 2)), "empty"),
    (np.array([["a", "b"]]), "not a number"),
])
def test_bad_arrays(func, bad, match):
    with pytest.raises(InvalidImageError, match=match):
        func(bad, np.zeros(bad.shape))
    with pytest.raises(InvalidImageError, match=match):
        func(np.zeros(bad.shape), bad)


@pytest.mark.parametrize("func", [match_objects, average_precision])
@pytest.mark.parametrize("bad, match", [
    (np.array([[0, -1, 2]]), "negative"),
    (np.array([[0.0, 1.5, 2.0]]), "non-integer"),
])
def test_bad_instance_labels(func, bad, match):
    with pytest.raises(InvalidLabelsError, match=match):
        func(bad, np.zeros(bad.shape, dtype=int))


def test_float_integer_labels_accepted():
    ref = _two_objects()
    assert match_objects(ref.astype(np.float32), ref).tp == 2


@pytest.mark.parametrize("threshold", [-0.1, 1.5, np.nan, "0.5", True])
def test_bad_threshold(threshold):
    ref = _two_objects()
    with pytest.raises(InvalidParameterError, match="threshold"):
        match_objects(ref, ref, threshold=threshold)


@pytest.mark.parametrize("thresholds", [[], [0.5, 2.0], [[0.5, 0.6]]])
def test_bad_thresholds(thresholds):
    ref = _two_objects()
    with pytest.raises(InvalidParameterError, match="threshold"):
        average_precision(ref, ref, thresholds=thresholds)


# ------------------------------------------------ which pixels are foreground

def test_prediction_foreground_from_metadata():
    import warnings

    from pixelforest.errors import SuspiciousPredictionWarning
    from pixelforest.evaluate.metrics import prediction_foreground

    labels = np.array([[1, 2, 2], [1, 1, 2]], np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = prediction_foreground(labels, metadata={"kind": "labels", "foreground": 2})
        np.testing.assert_array_equal(got, labels == 2)
        # --foreground overrides the metadata
        got = prediction_foreground(labels, metadata={"kind": "labels", "foreground": 2},
                                    foreground=1)
        np.testing.assert_array_equal(got, labels == 1)
        mask = (labels == 2).astype(np.uint8) * 255
        np.testing.assert_array_equal(prediction_foreground(mask, metadata={"kind": "mask"}),
                                      mask)
    with pytest.raises(InvalidImageError, match="probabilities.*--kind labels"):
        prediction_foreground(np.zeros((3, 3, 2), np.float32),
                              metadata={"kind": "probabilities"})
    with pytest.raises(InvalidParameterError, match="no pixel of p equals the foreground "
                                                    r"value 3 \(its values: 1, 2\)"):
        prediction_foreground(labels, foreground=3, name="p")
    with pytest.warns(SuspiciousPredictionWarning, match="--foreground 2"):
        prediction_foreground(labels)  # pixelforest labels without metadata


def test_prediction_foreground_warns_on_intensity_images_only():
    import warnings

    from pixelforest.errors import SuspiciousPredictionWarning
    from pixelforest.evaluate.metrics import prediction_foreground

    rng = np.random.default_rng(0)
    with pytest.warns(SuspiciousPredictionWarning, match="intensity image"):
        prediction_foreground(rng.random((32, 32)).astype(np.float32))
    with pytest.warns(SuspiciousPredictionWarning, match="intensity image"):
        prediction_foreground(rng.integers(0, 4096, (32, 32)).astype(np.uint16))
    # instance labels with many objects are a segmentation, not an intensity image
    instances = np.kron(np.arange(1, 101).reshape(10, 10), np.ones((8, 8), int))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        prediction_foreground(instances)
        prediction_foreground(np.array([[0, 1], [1, 1]], np.float32))  # a float mask
