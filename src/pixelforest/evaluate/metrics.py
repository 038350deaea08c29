"""How good is a segmentation? Pixel and object scores against a reference.

Pixel level (semantic segmentation):

- :func:`iou` and :func:`dice` of two binary masks (nonzero = foreground);
- :func:`confusion_matrix`, :func:`iou_per_class` and :func:`mean_iou` for
  label images with several classes, all computed from one confusion matrix.

Object level (instance segmentation, one integer label per object):

- :func:`match_objects` pairs predicted and reference objects whose overlap
  (IoU) exceeds a threshold and counts true positives, false positives and
  false negatives;
- :func:`average_precision` averages ``TP / (TP + FP + FN)`` over the IoU
  thresholds 0.5, 0.55, ..., 0.95, the score of the 2018 Data Science Bowl.

Which pixels of a prediction are foreground: :func:`prediction_foreground`
reads pixelforest's output metadata (labels: the foreground class; mask:
nonzero; probabilities: refused), and warns when nonzero = foreground looks
wrong (an intensity image, or labels 1/2 without metadata).

A binary mask (bool, or holding only 0 and 1) given where objects are
needed is split into objects by connected components
(:func:`skimage.measure.label` with full connectivity: 8 neighbours in 2D,
26 in 3D).

Conventions for empty inputs: two empty masks agree perfectly (IoU and Dice
1.0); with no objects on either side every object score is 1.0; a ratio
whose denominator is zero for any other reason is 0.0.
"""

import dataclasses
import numbers
import warnings

import numpy as np

from pixelforest._shared.validation import check_image, check_same_shape
from pixelforest.errors import (
    InvalidImageError,
    InvalidLabelsError,
    InvalidParameterError,
    SuspiciousPredictionWarning,
)

__all__ = [
    "iou",
    "dice",
    "confusion_matrix",
    "iou_per_class",
    "mean_iou",
    "ObjectMatch",
    "match_objects",
    "average_precision",
    "prediction_foreground",
    "DSB_THRESHOLDS",
    "MAX_PREDICTION_VALUES",
]

#: IoU thresholds of the 2018 Data Science Bowl: 0.5, 0.55, ..., 0.95.
DSB_THRESHOLDS = np.round(np.arange(0.5, 1.0, 0.05), 2)

#: A prediction without metadata with more distinct values than this, that
#: changes value between most neighbouring pixels, looks like an intensity
#: image (instance labels change value only at object borders).
MAX_PREDICTION_VALUES = 64


# ----------------------------------------------------------------- helpers


def _check_pair(pred, ref, *, names=("prediction", "reference")):
    pred = check_image(pred, name=names[0])
    ref = check_image(ref, name=names[1])
    check_same_shape(pred, ref, names=names)
    return pred, ref


def _ratio(num, den, *, both_empty):
    """``num / den``; 1.0 if nothing exists on either side, else 0.0 for 0/0."""
    if den == 0:
        return 1.0 if both_empty else 0.0
    return float(num) / float(den)


def _binary_counts(pred, ref):
    """``(tn, fp, fn, tp)`` of two validated arrays, nonzero = foreground."""
    cm = confusion_matrix(pred != 0, ref != 0, labels=[False, True])
    return cm[0, 0], cm[0, 1], cm[1, 0], cm[1, 1]


# ------------------------------------------------------------ pixel level


def confusion_matrix(pred, ref, *, labels=None):
    """Count pixels by (reference class, predicted class).

    Parameters
    ----------
    pred, ref : array_like
        Predicted and reference label images of the same 2D or 3D shape.
    labels : array_like, optional
        Class values to count, in the order of the rows and columns.
        Pixels whose value is not listed (in either image) are not counted.
        Default: every value found in either image, sorted
        (``np.union1d(np.unique(pred), np.unique(ref))``).

    Returns
    -------
    cm : ndarray of int64, shape (n_classes, n_classes)
        ``cm[i, j]`` is the number of pixels of reference class
        ``labels[i]`` predicted as ``labels[j]`` (rows: reference,
        columns: prediction, as in :func:`sklearn.metrics.confusion_matrix`).

    Raises
    ------
    ShapeMismatchError
        The two images differ in shape.
    InvalidImageError
        An image is empty, not numeric, not 2D/3D or holds NaN.
    InvalidParameterError
        ``labels`` is empty or holds a value twice.

    Examples
    --------
    >>> import numpy as np
    >>> ref = np.array([[0, 0, 1, 1],
    ...                 [0, 2, 2, 1]])
    >>> pred = np.array([[0, 1, 1, 1],
    ...                  [0, 2, 1, 1]])
    >>> confusion_matrix(pred, ref)
    array([[2, 1, 0],
           [0, 3, 0],
           [0, 1, 1]])
    """
    return _confusion(pred, ref, labels)[0]


def _check_labels(labels):
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise InvalidParameterError(
            f"labels must be a non-empty 1-D list of class values, got shape "
            f"{labels.shape}; leave labels=None to use every value present."
        )
    if np.unique(labels).size != labels.size:
        raise InvalidParameterError(
            f"labels hold a value more than once ({labels.tolist()}); list each "
            "class once."
        )
    return labels


def _confusion(pred, ref, labels):
    """``(confusion matrix, labels of its rows)``; see :func:`confusion_matrix`."""
    pred, ref = _check_pair(pred, ref)
    pred, ref = pred.ravel(), ref.ravel()
    if labels is None:
        labels = np.union1d(np.unique(pred), np.unique(ref))
    else:
        labels = _check_labels(labels)
    n = labels.size
    sorter = np.argsort(labels, kind="stable")
    sorted_labels = labels[sorter]

    def index(values):
        pos = np.searchsorted(sorted_labels, values)
        pos_clipped = np.minimum(pos, n - 1)
        known = sorted_labels[pos_clipped] == values
        return sorter[pos_clipped], known

    p_idx, p_known = index(pred)
    r_idx, r_known = index(ref)
    keep = p_known & r_known
    if not keep.all():
        p_idx, r_idx = p_idx[keep], r_idx[keep]
    flat = r_idx.astype(np.int64) * n + p_idx
    cm = np.bincount(flat, minlength=n * n).reshape(n, n).astype(np.int64)
    return cm, labels


def iou(pred, ref):
    """Intersection over union (Jaccard index) of two binary masks.

    Parameters
    ----------
    pred, ref : array_like
        Predicted and reference masks of the same 2D or 3D shape; nonzero
        pixels are foreground (so label images work too).

    Returns
    -------
    float
        ``|pred & ref| / |pred | ref|`` in [0, 1]; 1.0 if both are empty.

    Raises
    ------
    ShapeMismatchError
        The two masks differ in shape.
    InvalidImageError
        A mask is empty, not numeric, not 2D/3D or holds NaN.

    See Also
    --------
    dice : ``iou = dice / (2 - dice)``.

    Examples
    --------
    >>> import numpy as np
    >>> ref = np.array([[0, 1, 1, 1]])
    >>> pred = np.array([[1, 1, 1, 0]])
    >>> iou(pred, ref)
    0.5
    """
    pred, ref = _check_pair(pred, ref)
    _, fp, fn, tp = _binary_counts(pred, ref)
    return _ratio(tp, tp + fp + fn, both_empty=True)


def dice(pred, ref):
    """Dice coefficient (F1 score of the pixels) of two binary masks.

    Parameters
    ----------
    pred, ref : array_like
        Predicted and reference masks of the same 2D or 3D shape; nonzero
        pixels are foreground.

    Returns
    -------
    float
        ``2 |pred & ref| / (|pred| + |ref|)`` in [0, 1]; 1.0 if both are
        empty.

    Raises
    ------
    ShapeMismatchError
        The two masks differ in shape.
    InvalidImageError
        A mask is empty, not numeric, not 2D/3D or holds NaN.

    Examples
    --------
    >>> import numpy as np
    >>> ref = np.array([[0, 1, 1, 1]])
    >>> pred = np.array([[1, 1, 1, 0]])
    >>> round(dice(pred, ref), 4)
    0.6667
    """
    pred, ref = _check_pair(pred, ref)
    _, fp, fn, tp = _binary_counts(pred, ref)
    return _ratio(2 * tp, 2 * tp + fp + fn, both_empty=True)


def iou_per_class(pred, ref, *, labels=None):
    """IoU of each class of two label images.

    Parameters
    ----------
    pred, ref : array_like
        Predicted and reference label images of the same 2D or 3D shape.
    labels : array_like, optional
        Classes to score, in this order (pixels of other classes still
        count in the unions).  Default: every value found in either image,
        sorted.

    Returns
    -------
    ndarray of float64, shape (n_classes,)
        ``IoU[k] = cm[k, k] / (row k + column k - cm[k, k])`` of
        :func:`confusion_matrix`; a class absent from both images scores
        1.0 (nothing to find, nothing found).

    Raises
    ------
    ShapeMismatchError
        The two images differ in shape.
    InvalidImageError
        An image is empty, not numeric, not 2D/3D or holds NaN.

    Examples
    --------
    >>> import numpy as np
    >>> ref = np.array([[0, 0, 1, 1],
    ...                 [0, 2, 2, 1]])
    >>> pred = np.array([[0, 1, 1, 1],
    ...                  [0, 2, 1, 1]])
    >>> iou_per_class(pred, ref)
    array([0.66666667, 0.6       , 0.5       ])
    """
    # every value counts in the unions, even when only some classes are scored
    cm, present_labels = _confusion(pred, ref, None)
    tp = np.diag(cm).astype(np.float64)
    union = cm.sum(axis=0) + cm.sum(axis=1) - np.diag(cm)
    scores = tp / union  # every present class has a nonzero union
    if labels is None:
        return scores
    labels = _check_labels(labels)
    out = np.ones(labels.size, dtype=np.float64)
    pos = np.searchsorted(present_labels, labels)
    pos_clipped = np.minimum(pos, present_labels.size - 1)
    found = present_labels[pos_clipped] == labels
    out[found] = scores[pos_clipped[found]]
    return out


def mean_iou(pred, ref, *, labels=None):
    """Mean over classes of :func:`iou_per_class`.

    Parameters
    ----------
    pred, ref : array_like
        Predicted and reference label images of the same 2D or 3D shape.
    labels : array_like, optional
        Classes to average over.  Default: every value found in either
        image (background included).

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> ref = np.array([[0, 0, 1, 1]])
    >>> pred = np.array([[0, 1, 1, 1]])
    >>> mean_iou(pred, ref)   # (1/2 + 2/3) / 2
    0.5833333333333333
    """
    return float(np.mean(iou_per_class(pred, ref, labels=labels)))


# ----------------------------------------------------------- object level


def _to_instances(labels, name):
    """Validated array -> integer instance labels (0 = background)."""
    from skimage.measure import label as connected_components

    arr = check_image(labels, name=name)
    if np.issubdtype(arr.dtype, np.floating):
        if not np.array_equal(arr, np.round(arr)):
            raise InvalidLabelsError(
                f"{name} holds non-integer values, so it is not a label image; pass "
                "integer object labels (0 = background) or a binary mask."
            )
        arr = arr.astype(np.int64)
    if arr.size and arr.min() < 0:
        raise InvalidLabelsError(
            f"{name} holds negative labels (min {arr.min()}); object labels must be "
            ">= 0 with 0 as background."
        )
    if arr.max() <= 1:
        # a binary mask: objects are its connected components
        return connected_components(arr.astype(bool), connectivity=arr.ndim)
    return arr


def _overlaps(pred, ref):
    """Sparse overlap table of two instance label images.

    Returns ``(pred_ids, ref_ids, pairs_p, pairs_r, pair_iou)``: the object
    labels of each side (sorted, background excluded) and, for every pair of
    objects that share at least one pixel, their indices into those arrays
    and their IoU.
    """
    pred_ids, p_idx = np.unique(pred.ravel(), return_inverse=True)
    ref_ids, r_idx = np.unique(ref.ravel(), return_inverse=True)
    # index 0 is the background when present; shift so that it always is
    p_off = 0 if pred_ids[0] == 0 else 1
    r_off = 0 if ref_ids[0] == 0 else 1
    p_idx = p_idx.astype(np.int64) + p_off
    r_idx = r_idx.astype(np.int64) + r_off
    n_p = pred_ids.size + p_off
    n_r = ref_ids.size + r_off
    pred_ids = pred_ids[1 - p_off:]
    ref_ids = ref_ids[1 - r_off:]
    p_area = np.bincount(p_idx, minlength=n_p)
    r_area = np.bincount(r_idx, minlength=n_r)
    both = (p_idx > 0) & (r_idx > 0)
    keys, inter = np.unique(r_idx[both] * n_p + p_idx[both], return_counts=True)
    pairs_r, pairs_p = np.divmod(keys, n_p)
    union = p_area[pairs_p] + r_area[pairs_r] - inter
    pair_iou = inter / union
    return pred_ids, ref_ids, pairs_p - 1, pairs_r - 1, pair_iou


def _match(pairs_p, pairs_r, pair_iou, threshold):
    """One-to-one matching of objects with IoU > threshold; returns indices."""
    from scipy.optimize import linear_sum_assignment

    candidate = pair_iou > threshold
    cp, cr, ci = pairs_p[candidate], pairs_r[candidate], pair_iou[candidate]
    if threshold >= 0.5 or cp.size == 0:
        # IoU > 0.5 with two disjoint objects is impossible: already one-to-one
        return cp, cr, ci
    # below 0.5, pick the most matches, then the highest total IoU
    rows, row_inv = np.unique(cp, return_inverse=True)
    cols, col_inv = np.unique(cr, return_inverse=True)
    big = min(rows.size, cols.size) + 1
    weight = np.zeros((rows.size, cols.size))
    weight[row_inv, col_inv] = big + ci
    ious = np.zeros((rows.size, cols.size))
    ious[row_inv, col_inv] = ci
    r_sel, c_sel = linear_sum_assignment(weight, maximize=True)
    ok = weight[r_sel, c_sel] > 0
    r_sel, c_sel = r_sel[ok], c_sel[ok]
    return rows[r_sel], cols[c_sel], ious[r_sel, c_sel]


@dataclasses.dataclass(frozen=True, eq=False)
class ObjectMatch:
    """Result of :func:`match_objects` at one IoU threshold.

    Attributes
    ----------
    threshold : float
        A predicted and a reference object match if their IoU exceeds it.
    tp, fp, fn : int
        Matched pairs, unmatched predicted objects, unmatched reference
        objects.
    n_pred, n_ref : int
        Number of predicted and reference objects.
    precision, recall, f1 : float
        ``tp / n_pred``, ``tp / n_ref`` and their harmonic mean.
    accuracy : float
        ``tp / (tp + fp + fn)``, the score the 2018 Data Science Bowl
        averages over thresholds (see :func:`average_precision`).
    pairs : ndarray of int64, shape (tp, 2)
        ``(predicted label, reference label)`` of each matched pair.
    pair_ious : ndarray of float64, shape (tp,)
        IoU of each matched pair.
    """

    threshold: float
    tp: int
    fp: int
    fn: int
    n_pred: int
    n_ref: int
    precision: float
    recall: float
    f1: float
    accuracy: float
    pairs: np.ndarray = dataclasses.field(repr=False)
    pair_ious: np.ndarray = dataclasses.field(repr=False)


def _check_threshold(threshold):
    if (isinstance(threshold, bool) or not isinstance(threshold, numbers.Real)
            or not 0 <= threshold <= 1):
        raise InvalidParameterError(
            f"IoU threshold must be a number in [0, 1], got {threshold!r}; 0.5 is "
            "the usual choice."
        )
    return float(threshold)


def _result(threshold, pred_ids, ref_ids, mp, mr, mi):
    n_pred, n_ref = int(pred_ids.size), int(ref_ids.size)
    tp = int(mp.size)
    fp, fn = n_pred - tp, n_ref - tp
    empty = n_pred == 0 and n_ref == 0
    order = np.argsort(mr, kind="stable")
    return ObjectMatch(
        threshold=threshold, tp=tp, fp=fp, fn=fn, n_pred=n_pred, n_ref=n_ref,
        precision=_ratio(tp, n_pred, both_empty=empty),
        recall=_ratio(tp, n_ref, both_empty=empty),
        f1=_ratio(2 * tp, n_pred + n_ref, both_empty=empty),
        accuracy=_ratio(tp, tp + fp + fn, both_empty=empty),
        pairs=np.stack([pred_ids[mp[order]], ref_ids[mr[order]]], axis=1).astype(np.int64),
        pair_ious=np.asarray(mi[order], dtype=np.float64),
    )


def _prepare_objects(pred_labels, ref_labels):
    pred, ref = _check_pair(pred_labels, ref_labels)
    return _to_instances(pred, "prediction"), _to_instances(ref, "reference")


def match_objects(pred_labels, ref_labels, threshold=0.5):
    """Match predicted objects to reference objects by overlap.

    Parameters
    ----------
    pred_labels, ref_labels : array_like
        Instance label images of the same 2D or 3D shape: 0 is background,
        each other integer one object.  A binary mask (bool, or only 0 and
        1) is split into objects by connected components (8-connected in
        2D, 26-connected in 3D).
    threshold : float, optional
        Two objects match if their IoU is strictly greater than this
        (the Data Science Bowl rule).

    Returns
    -------
    ObjectMatch
        Counts (``tp``, ``fp``, ``fn``), ``precision``, ``recall``, ``f1``,
        ``accuracy = tp / (tp + fp + fn)``, and the matched ``pairs`` with
        their ``pair_ious``.

    Raises
    ------
    ShapeMismatchError
        The two images differ in shape.
    InvalidLabelsError
        An image holds negative or non-integer labels.
    InvalidParameterError
        ``threshold`` is not in [0, 1].

    Notes
    -----
    Overlaps come from a sparse contingency table of the two label images
    (only pairs of objects that share pixels).  With ``threshold >= 0.5``
    each object can exceed it with at most one object of the other image,
    so the matches are unique without any choice.  Below 0.5, a one-to-one
    matching is chosen with :func:`scipy.optimize.linear_sum_assignment`:
    as many matches as possible, then the highest total IoU.

    If neither image has any object, precision, recall, F1 and accuracy
    are 1.0; any other ratio with a zero denominator is 0.0.

    Examples
    --------
    >>> import numpy as np
    >>> ref = np.array([[1, 1, 0, 2, 2],
    ...                 [1, 1, 0, 2, 2]])
    >>> pred = np.array([[5, 5, 0, 0, 7],
    ...                  [5, 5, 0, 0, 0]])
    >>> m = match_objects(pred, ref)
    >>> m.tp, m.fp, m.fn, m.precision, m.recall
    (1, 1, 1, 0.5, 0.5)
    >>> m.pairs.tolist(), m.pair_ious.tolist()
    ([[5, 1]], [1.0])
    """
    threshold = _check_threshold(threshold)
    pred, ref = _prepare_objects(pred_labels, ref_labels)
    pred_ids, ref_ids, pp, pr, pi = _overlaps(pred, ref)
    mp, mr, mi = _match(pp, pr, pi, threshold)
    return _result(threshold, pred_ids, ref_ids, mp, mr, mi)


def average_precision(pred_labels, ref_labels, *, thresholds=None,
                      return_thresholds=False):
    """Object-level score of the 2018 Data Science Bowl.

    At each IoU threshold ``t``, objects are matched as in
    :func:`match_objects` and scored ``TP / (TP + FP + FN)``; the result is
    the mean of these scores over the thresholds.

    Parameters
    ----------
    pred_labels, ref_labels : array_like
        Instance label images of the same 2D or 3D shape (0 = background);
        binary masks are split into connected components.
    thresholds : array_like of float, optional
        IoU thresholds in [0, 1].  Default: 0.5, 0.55, ..., 0.95
        (:data:`DSB_THRESHOLDS`).
    return_thresholds : bool, optional
        Also return the thresholds and the score at each of them.

    Returns
    -------
    ap : float
        Mean score over the thresholds, in [0, 1]: 1.0 for a perfect
        prediction (and when neither image has objects), 0.0 when the
        prediction is empty but the reference is not.
    thresholds : ndarray of float64
        Only with ``return_thresholds=True``.
    scores : ndarray of float64
        ``TP / (TP + FP + FN)`` at each threshold; only with
        ``return_thresholds=True``.

    Raises
    ------
    ShapeMismatchError
        The two images differ in shape.
    InvalidLabelsError
        An image holds negative or non-integer labels.
    InvalidParameterError
        A threshold is not in [0, 1], or none is given.

    Examples
    --------
    >>> import numpy as np
    >>> ref = np.zeros((10, 10), dtype=np.uint16)
    >>> ref[1:5, 1:5] = 1
    >>> ref[6:9, 6:9] = 2
    >>> pred = ref.copy()
    >>> pred[1, 1:5] = 0                      # first object: IoU 12/16 = 0.75
    >>> round(average_precision(pred, ref), 4)  # 5 thresholds below 0.75 score 1, 5 score 1/3
    0.6667
    >>> ap, t, scores = average_precision(pred, ref, return_thresholds=True)
    >>> t.tolist()
    [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]
    >>> np.round(scores, 2).tolist()
    [1.0, 1.0, 1.0, 1.0, 1.0, 0.33, 0.33, 0.33, 0.33, 0.33]
    """
    if thresholds is None:
        thresholds = DSB_THRESHOLDS.copy()
    else:
        thresholds = np.atleast_1d(np.asarray(thresholds, dtype=np.float64))
        if thresholds.ndim != 1 or thresholds.size == 0:
            raise InvalidParameterError(
                "thresholds must be a non-empty 1-D list of IoU values in [0, 1]; "
                "leave it None for the Data Science Bowl's 0.5, 0.55, ..., 0.95."
            )
        for t in thresholds:
            _check_threshold(t)
    pred, ref = _prepare_objects(pred_labels, ref_labels)
    pred_ids, ref_ids, pp, pr, pi = _overlaps(pred, ref)
    scores = np.array([
        _result(float(t), pred_ids, ref_ids,
                *_match(pp, pr, pi, float(t))).accuracy
        for t in thresholds
    ])
    ap = float(scores.mean())
    if return_thresholds:
        return ap, thresholds, scores
    return ap


# ------------------------------------------------------ what is foreground


def _looks_like_intensity(arr, values):
    """Float with fractions, or many values that change between most neighbours."""
    if np.issubdtype(arr.dtype, np.floating) and not np.array_equal(arr, np.round(arr)):
        return True
    if len(values) <= MAX_PREDICTION_VALUES or arr.shape[-1] < 2:
        return False
    changes = np.count_nonzero(arr[..., 1:] != arr[..., :-1]) / arr[..., 1:].size
    return changes > 0.25


def _number(value):
    value = np.asarray(value).item()
    return int(value) if float(value).is_integer() else value


def prediction_foreground(prediction, *, metadata=None, foreground=None,
                          name="prediction"):
    """The prediction to score: which of its pixels are foreground.

    Parameters
    ----------
    prediction : array_like
        A predicted segmentation, 2D or 3D.
    metadata : dict, optional
        Its pixelforest metadata (:func:`pixelforest.io.images.read_metadata`):
        kind ``"labels"`` means foreground = ``metadata["foreground"]``, kind
        ``"mask"`` means nonzero, kind ``"probabilities"`` is refused.
    foreground : int or float, optional
        The value that means foreground; overrides ``metadata``.
    name : str, optional
        How the prediction is called in messages (e.g. its file name).

    Returns
    -------
    ndarray
        A bool mask ``prediction == foreground`` when a foreground value
        applies; else the prediction itself (nonzero = foreground; instance
        labels stay instances for the object scores).

    Raises
    ------
    InvalidImageError
        The metadata says the prediction holds probabilities.
    InvalidParameterError
        No pixel equals the foreground value.

    Warns
    -----
    SuspiciousPredictionWarning
        Without metadata or ``foreground``: the prediction looks like an
        intensity image (float with fractions, or more than
        :data:`MAX_PREDICTION_VALUES` values changing between most
        neighbouring pixels), holds exactly the values 1 and 2 (pixelforest
        labels: pass ``foreground=2``), or has no nonzero pixel.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.array([[1, 2], [2, 1]])
    >>> prediction_foreground(labels, metadata={"kind": "labels", "foreground": 2})
    array([[False,  True],
           [ True, False]])
    >>> prediction_foreground(np.array([[0, 255], [0, 0]]), metadata={"kind": "mask"})
    array([[  0, 255],
           [  0,   0]])
    """
    arr = check_image(prediction, name=name)
    kind = (metadata or {}).get("kind")
    if foreground is None and kind == "probabilities":
        raise InvalidImageError(
            f"{name} holds class probabilities, not a segmentation; threshold it first, "
            "or predict with --kind labels (the default) or --kind mask."
        )
    if foreground is None and kind == "labels" and metadata.get("foreground") is not None:
        foreground = metadata["foreground"]
    if foreground is not None:
        if isinstance(foreground, bool) or not isinstance(foreground, numbers.Real):
            raise InvalidParameterError(
                f"foreground must be a number (a value of {name}), got {foreground!r}."
            )
        mask = arr == foreground
        if not mask.any():
            values = np.unique(arr)
            shown = ", ".join(str(_number(v)) for v in values[:10])
            more = ", ..." if len(values) > 10 else ""
            raise InvalidParameterError(
                f"no pixel of {name} equals the foreground value {_number(foreground)} "
                f"(its values: {shown}{more}); pass --foreground with one of them."
            )
        return mask
    if kind is None:
        values = np.unique(arr)
        if _looks_like_intensity(arr, values):
            warnings.warn(
                f"{name} looks like an intensity image ({arr.dtype}, {len(values)} "
                "distinct values), not a segmentation; every nonzero pixel counts as "
                "foreground: pass a mask or label image, or --foreground VALUE.",
                SuspiciousPredictionWarning, stacklevel=2,
            )
        elif values.tolist() == [1, 2]:
            warnings.warn(
                f"{name} holds only the values 1 and 2, like pixelforest labels "
                "(1 = background, 2 = foreground) without metadata, and every nonzero "
                "pixel counts as foreground; pass --foreground 2 if 2 is the foreground.",
                SuspiciousPredictionWarning, stacklevel=2,
            )
        elif not values.any():
            warnings.warn(
                f"{name} has no foreground pixel (all zero), so every score is 0 unless "
                "the reference is empty too; check that it is the right file.",
                SuspiciousPredictionWarning, stacklevel=2,
            )
    return arr
