"""Split placement: move a fitted forest's splits into the valley of unlabelled pixels.

Scribbles leave a wide gap between the classes along each feature, and
scikit-learn puts every split at the midpoint of that gap.
:func:`place_splits` moves it to Otsu's threshold of unlabelled pixels that
reach the node, inside the gap, so every labelled pixel is classified as
before while the outline follows the image (``split_placement="valley"`` of
:class:`~pixelforest.classify.classifier.PixelClassifier`).
"""

import numpy as np

__all__ = ["SPLIT_MIN_PIXELS", "SPLIT_SAMPLE", "is_forest", "place_splits", "rows_at_nodes"]


def is_forest(estimator):
    """True for a scikit-learn tree ensemble whose splits :func:`place_splits` can move."""
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier

    return isinstance(estimator, (RandomForestClassifier, ExtraTreesClassifier))


#: Unlabelled pixels (in all, over the training images) that place the
#: default forest's splits (see :func:`_place_splits`).
SPLIT_SAMPLE = 50_000

#: Fewest unlabelled pixels at a split for Otsu's threshold to move it.
SPLIT_MIN_PIXELS = 10


def place_splits(forest, X, U):
    """Move each split of a fitted forest into the valley of the unlabelled pixels.

    At a split node on feature ``f``, the labelled rows that reach it leave a
    gap ``[a, b)``: ``a`` the largest value of ``f`` sent left, ``b`` the
    smallest sent right.  Any threshold in the gap classifies every labelled
    row the same; scikit-learn takes the midpoint.  Scribbles lie well
    inside objects and well away from them, so the midpoint sits far from
    the real outline (bright objects come out too large).  This moves the
    threshold to Otsu's threshold of the unlabelled rows ``U`` that reach
    the node (the valley between their two modes), clipped into the gap:
    the labelled rows are classified exactly as before.  Splits reached by
    fewer than ``SPLIT_MIN_PIXELS`` unlabelled rows, or on a constant
    feature among them, keep their threshold.

    ``forest`` is modified in place (its trees' ``tree_.threshold``).
    """
    from skimage.filters import threshold_otsu

    # every root sees all of U: its valley depends on the feature only
    root_valleys = {}
    for tree in forest.estimators_:
        t = tree.tree_
        feature, threshold = t.feature, t.threshold
        left, right = t.children_left, t.children_right
        # rows reaching each node, routed by the thresholds as fitted
        px, pu = rows_at_nodes(t, X), rows_at_nodes(t, U)
        for node in np.flatnonzero(left >= 0):
            f = feature[node]
            rows_left, rows_right = px[left[node]], px[right[node]]
            if rows_left.size == 0 or rows_right.size == 0:
                continue
            a, b = float(X[rows_left, f].max()), float(X[rows_right, f].min())
            if not a < b:
                continue
            if node == 0 and f in root_valleys:
                valley = root_valleys[f]
            else:
                valley = _valley(U[pu[node], f], threshold_otsu)
                if node == 0:
                    root_valleys[f] = valley
            if valley is None:
                continue
            threshold[node] = min(max(valley, a), np.nextafter(b, a))
    return forest


def _valley(u, threshold_otsu):
    """Otsu's threshold of the unlabelled values ``u`` at a node, or None to keep the split."""
    if u.size < SPLIT_MIN_PIXELS or u.min() == u.max():
        return None
    try:
        return float(threshold_otsu(u))
    except ValueError:  # values too close for 256 histogram bins
        return None


def rows_at_nodes(tree, X):
    """Indices of the rows of float32 ``X`` that reach each node of a fitted ``Tree``.

    The rows are routed as scikit-learn's ``decision_path`` routes them
    (``X[i, f] <= threshold``, float32 features against float64
    thresholds); features here are finite, so missing values do not arise.
    Returns a list indexed by node id.
    """
    left, right = tree.children_left, tree.children_right
    feature, threshold = tree.feature, tree.threshold.copy()
    rows = [None] * tree.node_count
    rows[0] = np.arange(X.shape[0])
    stack = [0]
    while stack:
        node = stack.pop()
        if left[node] < 0:
            continue
        here = rows[node]
        go_left = X[here, feature[node]] <= threshold[node]
        rows[left[node]], rows[right[node]] = here[go_left], here[~go_left]
        stack.extend((left[node], right[node]))
    return rows
