"""Exact, compiled random-forest inference for many pixels.

scikit-learn's ``predict_proba`` runs one tree at a time over all rows and,
for each tree, allocates and adds a float64 ``(n_rows, n_classes)`` array;
by default (``n_jobs=None``) it uses one core.  Here all trees of a fitted
forest are flattened once into one packed node table
(:class:`CompiledForest`: 16 bytes per node, left child next to its parent)
and numba kernels score a block of rows at a time on all cores, with no
per-tree array:

* when every tree has at most 64 leaves (forests trained on scribbles
  have 2 to 6), the leaf-mask kernel (QuickScorer, see
  :func:`_leaf_mask_tables`) tests every split for 256 rows at once and
  reads each row's leaf from a bit mask, without branches that depend on
  the data (faster than walking the trees: ``benchmarks/bench_forest.py``);
* when, in addition, every leaf is pure (the usual case with scribbles:
  the labelled pixels are separable) and every tree has at most 32
  leaves, the vote kernel (:func:`_vote_tables`) counts each class's votes
  as integers from the same bit masks, with no lookup of leaf values;
* otherwise each row walks every tree (rows outer, trees inner, so the
  block stays in cache; with two classes the two sums stay in registers).

The result equals scikit-learn's own ``predict_proba``:

* scikit-learn casts ``X`` to float32 and tests ``X[i, f] <= threshold`` with
  a float64 threshold.  For a float32 ``x`` that test is the same as
  ``x <= t32`` where ``t32`` is the largest float32 not above the threshold
  (:func:`float32_thresholds`), so thresholds are stored as float32.
* leaf values are the class fractions scikit-learn uses (fractions in
  ``tree_.value`` since scikit-learn 1.4, counts normalized per leaf before),
  summed in float64 in tree order and divided by the number of trees, as
  scikit-learn does; with ``n_jobs=None`` the result is bit for bit the same
  (both kernels find the same leaf, so they add the same numbers).
* NaN follows ``tree_.missing_go_to_left`` like scikit-learn, when the
  estimator accepts missing values; otherwise NaN and infinity are rejected
  with :class:`~pixelforest.errors.InvalidImageError`.

:func:`forest_predict_proba` is the entry point: it uses the compiled path
for the supported estimators and falls back to ``estimator.predict_proba``
for anything else, or when numba is unavailable.
"""

import re
import threading
import weakref

import numpy as np

from pixelforest._shared.threads import limit_blas_threads, resolve_n_threads
from pixelforest.errors import (ChannelMismatchError, InvalidImageError, InvalidParameterError,
                                NotFittedError)

__all__ = [
    "CompiledForest",
    "compile_forest",
    "float32_thresholds",
    "forest_predict_proba",
    "is_supported",
    "numba_available",
]

#: Rows per block of the kernel: a block's features and its float64
#: accumulator stay in the L2 cache while every tree is walked for it.
BLOCK_ROWS = 4096

_LEAF = -1


def float32_thresholds(threshold):
    """Return the largest float32 not above each float64 threshold.

    For every float32 ``x`` (NaN and infinities included),
    ``x <= threshold`` in float64 is equivalent to ``x <= t32`` in float32:
    if ``x <= threshold`` then ``x`` is a float32 not above the threshold,
    so ``x <= t32``; conversely ``x <= t32 <= threshold``.

    Parameters
    ----------
    threshold : array_like of float64
        Split thresholds.

    Returns
    -------
    t32 : ndarray of float32
        Rounded towards minus infinity (a threshold above the float32 range
        becomes the largest float32, one below it becomes ``-inf``).

    Examples
    --------
    >>> t = np.array([0.1, 1.0, 1e300])
    >>> t32 = float32_thresholds(t)
    >>> float(t32[0]) <= 0.1 < float(np.nextafter(t32[0], np.float32(1)))
    True
    >>> t32[1], t32[2] == np.finfo(np.float32).max
    (np.float32(1.0), np.True_)
    """
    t64 = np.asarray(threshold, dtype=np.float64)
    with np.errstate(over="ignore"):
        t32 = t64.astype(np.float32)
    above = t32.astype(np.float64) > t64
    t32[above] = np.nextafter(t32[above], np.float32(-np.inf))
    return t32


def _sklearn_stores_fractions():
    import sklearn

    major, minor = (int(p) for p in re.findall(r"\d+", sklearn.__version__)[:2])
    return (major, minor) >= (1, 4)


def _trees_of(estimator):
    """Return the list of fitted trees if ``estimator`` is supported, else None."""
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
    from sklearn.tree import DecisionTreeClassifier

    if isinstance(estimator, (RandomForestClassifier, ExtraTreesClassifier)):
        # a subclass that changes predict_proba is not ours to replace
        if type(estimator).predict_proba not in (RandomForestClassifier.predict_proba,
                                                 ExtraTreesClassifier.predict_proba):
            return None
        trees = getattr(estimator, "estimators_", None)
    elif isinstance(estimator, DecisionTreeClassifier):  # includes ExtraTreeClassifier
        if type(estimator).predict_proba is not DecisionTreeClassifier.predict_proba:
            return None
        trees = [estimator] if hasattr(estimator, "tree_") else None
    else:
        return None
    if not trees:
        raise NotFittedError(
            f"this {type(estimator).__name__} is not fitted yet; call fit(X, y) "
            "before predicting."
        )
    if getattr(estimator, "n_outputs_", 1) != 1:
        return None  # multi-output: scikit-learn returns a list, leave it to it
    return trees


def is_supported(estimator):
    """Return True if :func:`forest_predict_proba` compiles ``estimator``.

    Supported: fitted single-output ``RandomForestClassifier``,
    ``ExtraTreesClassifier``, ``DecisionTreeClassifier`` and
    ``ExtraTreeClassifier``.

    Examples
    --------
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> from sklearn.linear_model import LogisticRegression
    >>> X, y = np.arange(8.0).reshape(4, 2), [0, 0, 1, 1]
    >>> is_supported(RandomForestClassifier(2, random_state=0).fit(X, y))
    True
    >>> is_supported(LogisticRegression().fit(X, y))
    False
    """
    try:
        return _trees_of(estimator) is not None
    except NotFittedError:
        return False


class CompiledForest:
    """All trees of a fitted forest flattened into one packed node table.

    Row ``k`` of ``nodes`` (int32, shape ``(n_nodes, 4)``) is one node:
    ``[feature, right, missing_left, threshold]``, the threshold stored as
    the bits of a float32 (:func:`float32_thresholds`).  Nodes are numbered
    in depth-first preorder, so the left child of node ``k`` is ``k + 1``
    and one 16-byte row holds everything a step needs.  An internal node
    sends ``x`` left if ``x <= threshold``, or if ``x`` is NaN and
    ``missing_left`` is 1, else to node ``right``.  A leaf has ``feature ==
    -1`` and ``right`` is its row in ``values``.  Tree ``t`` starts at node
    ``roots[t]``.  Identical trees of a forest whose leaves are all pure
    share one table, whose leaves hold their summed votes (see
    :func:`_merge_identical`); the sums are divided by :attr:`n_trees`.

    Build it with :meth:`from_sklearn`; :func:`compile_forest` caches it.

    Attributes
    ----------
    nodes : ndarray of int32, shape (n_nodes, 4)
    roots : ndarray of int32, shape (n_tables,)
    values : ndarray of float64, shape (n_leaves, n_classes)
        Class fractions of each leaf (summed over the trees sharing it).
    n_features : int
    scorer : tuple or None
        Tables of the leaf-mask kernel (:func:`_leaf_mask_tables`), None when
        a tree has more than 64 leaves (the trees are walked then).

    Examples
    --------
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]], dtype=np.float32)
    >>> tree = DecisionTreeClassifier(random_state=0).fit(X, [0, 0, 1, 1])
    >>> cf = CompiledForest.from_sklearn(tree)
    >>> cf.n_trees, cf.n_classes, cf.feature.tolist(), cf.threshold.tolist()
    (1, 2, [0, -1, -1], [1.5, 0.0, 0.0])
    >>> cf.values.tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    >>> cf.predict_proba(np.array([[0.5], [2.5]], dtype=np.float32)).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """

    def __init__(self, *, nodes, roots, values, n_features, n_trees=None):
        self.nodes = nodes
        self.roots = roots
        self.values = values
        self.n_features = int(n_features)
        self._n_trees = int(roots.shape[0] if n_trees is None else n_trees)
        self.scorer = _leaf_mask_tables(nodes, roots)
        self.voter = _vote_tables(values, self.scorer, self._n_trees)

    @property
    def n_trees(self):
        """Trees of the forest averaged (identical trees may share one table)."""
        return self._n_trees

    @property
    def n_tables(self):
        """Distinct trees stored in the node table (see :meth:`from_sklearn`)."""
        return int(self.roots.shape[0])

    @property
    def divisor(self):
        return float(self._n_trees)

    @property
    def n_classes(self):
        return int(self.values.shape[1])

    @property
    def n_nodes(self):
        return int(self.nodes.shape[0])

    @property
    def feature(self):
        """Feature tested by each node (-1 for leaves)."""
        return self.nodes[:, _FEATURE]

    @property
    def threshold(self):
        """float32 threshold of each node (0 for leaves)."""
        return self.nodes[:, _THRESHOLD].view(np.float32)

    @classmethod
    def from_sklearn(cls, estimator):
        """Flatten a fitted scikit-learn forest or tree classifier.

        Parameters
        ----------
        estimator : RandomForestClassifier, ExtraTreesClassifier, DecisionTreeClassifier or ExtraTreeClassifier
            Fitted, single output.

        Returns
        -------
        CompiledForest

        Raises
        ------
        NotFittedError
            The estimator is not fitted.
        TypeError
            The estimator is not one of the supported types.
        """
        trees = _trees_of(estimator)
        if trees is None:
            raise TypeError(
                f"{type(estimator).__name__} cannot be compiled; use a fitted "
                "single-output RandomForestClassifier, ExtraTreesClassifier or "
                "DecisionTreeClassifier, or call its own predict_proba."
            )
        n_classes = int(np.ravel(estimator.n_classes_)[0])
        normalize = not _sklearn_stores_fractions()
        flat = [_flatten_tree(tree.tree_, n_classes, normalize, 0, 0) for tree in trees]
        tables, values, roots = [], [], []
        node_offset = leaf_offset = 0
        for table, value in _merge_identical(flat):
            table = table.copy()
            internal = table[:, _FEATURE] >= 0
            table[:, _RIGHT] += np.where(internal, node_offset, leaf_offset).astype(np.int32)
            tables.append(table)
            values.append(value)
            roots.append(node_offset)
            node_offset += table.shape[0]
            leaf_offset += value.shape[0]
        if node_offset >= 2**31 - 1 or leaf_offset >= 2**31 - 1:
            raise TypeError(
                f"this forest has {node_offset} nodes, too many to compile; call its "
                "own predict_proba instead."
            )
        return cls(
            nodes=np.ascontiguousarray(np.concatenate(tables), dtype=np.int32),
            roots=np.asarray(roots, dtype=np.int32),
            values=np.ascontiguousarray(np.concatenate(values), dtype=np.float64),
            n_features=estimator.n_features_in_,
            n_trees=len(trees),
        )

    def predict_proba(self, X, *, n_threads=None, out=None):
        """Return the mean class fractions of all trees, shape (n, n_classes).

        ``X`` is cast to C-contiguous float32 (no copy if it already is,
        or if it is feature-major float32: each column contiguous).
        NaN and infinity are not checked here (NaN follows
        ``missing_left``); :func:`forest_predict_proba` checks them.

        Parameters
        ----------
        X : array_like, shape (n_samples, n_features)
        n_threads : int or None, optional
            Threads to use; see :func:`pixelforest._shared.threads.resolve_n_threads`.
        out : ndarray, optional
            C-contiguous float64 or float32 array of the result's shape to
            write into (float32: each fraction computed in float64 and
            rounded once, the bits of ``proba.astype(np.float32)``).

        Returns
        -------
        proba : ndarray of float64, shape (n_samples, n_classes)
            ``out`` when given.
        """
        X = _as_rows(X, self.n_features)
        out = _check_out(out, (X.shape[0], self.n_classes))
        if self.voter is not None:
            serial, parallel = _vote_serial, _vote_parallel
            args = ((X,) + self.scorer[:6] + self.voter
                    + (self._n_trees, self.divisor, BLOCK_ROWS, out))
        elif self.scorer is not None:
            serial, parallel = _score_serial, _score_parallel
            args = (X,) + self.scorer + (self.values, self.divisor, BLOCK_ROWS, out)
        else:
            serial, parallel = _predict_serial, _predict_parallel
            args = (X, self.nodes, self.nodes.view(np.float32), self.roots, self.values,
                    self.divisor, BLOCK_ROWS, out)
        n = resolve_n_threads(n_threads, maximum=numba.config.NUMBA_NUM_THREADS)
        n = min(n, -(-X.shape[0] // BLOCK_ROWS))
        # numba's workqueue threading layer must not be entered by two
        # threads at once: one caller at a time gets the thread pool, the
        # others (e.g. dask worker threads) run the serial kernel, which
        # releases the GIL.
        if n > 1 and _POOL_LOCK.acquire(blocking=False):
            try:
                previous = numba.get_num_threads()
                numba.set_num_threads(n)
                try:
                    # one block per task: a thread slowed down by other
                    # processes does not hold the others back
                    with limit_blas_threads(1), numba.parallel_chunksize(1):
                        parallel(*args)
                finally:
                    numba.set_num_threads(previous)
            finally:
                _POOL_LOCK.release()
        else:
            serial(*args)
        return out


_FEATURE, _RIGHT, _MISSING_LEFT, _THRESHOLD = range(4)


def _preorder(children_left, children_right):
    """Node ids in depth-first preorder (left subtree first)."""
    order, stack = [], [0]
    while stack:
        node = stack.pop()
        order.append(node)
        if children_left[node] != _LEAF:
            stack.append(children_right[node])
            stack.append(children_left[node])
    return np.asarray(order, dtype=np.intp)


def _flatten_tree(t, n_classes, normalize, node_offset, leaf_offset):
    """Return (node table, leaf values) of one sklearn ``Tree``."""
    left, right = t.children_left, t.children_right
    feature, threshold = t.feature, t.threshold
    missing = getattr(t, "missing_go_to_left", None)
    if missing is None:  # scikit-learn < 1.3 had no missing values
        missing = np.zeros(t.node_count, dtype=np.uint8)
    value = t.value[:, 0, :n_classes]
    internal = np.flatnonzero(left != _LEAF)
    if not np.array_equal(left[internal], internal + 1):
        # e.g. best-first trees (max_leaf_nodes): renumber in preorder
        order = _preorder(left, right)
        new_id = np.empty_like(order)
        new_id[order] = np.arange(order.size)
        is_leaf = left[order] == _LEAF
        right = np.where(is_leaf, _LEAF, new_id[right[order]])
        feature, threshold = feature[order], threshold[order]
        missing, value = np.asarray(missing)[order], value[order]
    else:
        is_leaf = left == _LEAF
    leaf_rows = np.cumsum(is_leaf) - 1 + leaf_offset
    table = np.empty((is_leaf.size, 4), dtype=np.int32)
    table[:, _FEATURE] = np.where(is_leaf, -1, feature)
    table[:, _RIGHT] = np.where(is_leaf, leaf_rows, right + node_offset)
    table[:, _MISSING_LEFT] = np.where(is_leaf, 0, np.asarray(missing) != 0)
    table[:, _THRESHOLD] = float32_thresholds(
        np.where(is_leaf, 0.0, threshold)).view(np.int32)
    value = np.asarray(value[is_leaf], dtype=np.float64)
    if normalize:  # counts before scikit-learn 1.4: as its predict_proba
        total = value.sum(axis=1, keepdims=True)
        total[total == 0.0] = 1.0
        value = value / total
    return table, value


def _merge_identical(flat):
    """Merge identical trees into one table whose leaves hold their summed values.

    ``flat`` is the list of ``(node table, leaf values)`` of every tree
    (offsets 0).  Forests trained on scribbles repeat the same one- or
    two-split trees many times (the labelled pixels are separable and
    split placement moves equivalent splits to the same valley), so a
    table per distinct tree saves most of the split tests.  The merge is
    done only when every leaf value of the forest is 0 or 1 (pure leaves,
    the usual case with scribbles): the class sums are then whole numbers,
    exact in float64 in any order, and the mean stays bit for bit
    scikit-learn's.  Otherwise every tree keeps its own table and the sums
    run in tree order.
    """
    if not all(np.all((value == 0.0) | (value == 1.0)) for _, value in flat):
        return flat
    groups = {}
    for table, value in flat:
        key = table.tobytes()
        if key in groups:
            groups[key][1] += value
        else:
            groups[key] = [table, value.copy()]
    return [(table, value) for table, value in groups.values()]


#: Most leaves per tree for the leaf-mask kernel (bits of its widest mask).
_MAX_MASK_LEAVES = 64


def _leaf_mask_tables(nodes, roots):
    """Tables of the leaf-mask kernel (QuickScorer), or None if a tree is too big.

    QuickScorer (Lucchese et al., SIGIR 2015) finds the leaf a row reaches
    without walking the tree: each tree keeps a bit mask of its leaves
    (left to right; preorder numbers them so); every split node whose test
    is false for the row (the row goes right) clears the bits of the leaves
    in its left subtree; the leaf reached is the lowest bit left.  Every
    split is tested for every row, in any order, with no branch that
    depends on the data, so the loops over rows vectorize; a tree whose
    splits send rows right at node ``n`` only rules out leaves left of the
    reached one, so the result is the tree's own leaf, and the class sums
    are the same float64 additions in tree order as the walking kernel.

    Returns
    -------
    tables : tuple or None
        ``(tree, feature, threshold, missing_left, mask, full, leaf_base)``
        over the split nodes (``mask`` uint32 when every tree has at most 32
        leaves, else uint64; ``full`` the all-ones mask; ``leaf_base[t]`` the
        row in ``values`` of tree ``t``'s first leaf), or None when a tree
        has more than 64 leaves (the walking kernel is used then).
    """
    if numba is None or _trailing_zeros is None:
        return None
    n_nodes = nodes.shape[0]
    is_leaf = nodes[:, _FEATURE] < 0
    ends = np.append(roots[1:], n_nodes).astype(np.int64)
    starts = roots.astype(np.int64)
    before = np.concatenate([[0], np.cumsum(is_leaf)])  # leaves among nodes < i
    n_leaves = before[ends] - before[starts]
    if n_leaves.max() > _MAX_MASK_LEAVES:
        return None
    bits = 32 if n_leaves.max() <= 32 else 64
    dtype = np.uint32 if bits == 32 else np.uint64
    split = np.flatnonzero(~is_leaf)
    tree = np.repeat(np.arange(roots.size), ends - starts)[split]
    first = before[starts][tree]
    # leaves of the left subtree (nodes split+1 .. right-1): positions lo..hi-1
    lo = before[split + 1] - first
    hi = before[nodes[split, _RIGHT]] - first
    full = (1 << bits) - 1
    mask = np.array([full ^ ((1 << int(h)) - (1 << int(a))) for a, h in zip(lo, hi)],
                    dtype=dtype)
    return (
        tree.astype(np.int32),
        np.ascontiguousarray(nodes[split, _FEATURE]),
        np.ascontiguousarray(nodes[split, _THRESHOLD]).view(np.float32),
        np.ascontiguousarray(nodes[split, _MISSING_LEFT] != 0),
        mask,
        dtype(full),
        np.ascontiguousarray(before[starts], dtype=np.int32),
    )


def _vote_tables(values, scorer, n_trees):
    """Tables of the vote kernel, or None unless every leaf is a whole vote.

    When every leaf of every table holds one class only, with a whole
    number of votes (the trees' pure leaves, summed over the identical trees
    sharing the table, see :func:`_merge_identical`) and the leaf masks fit
    in 32 bits, the class sums are whole numbers: they are counted as
    integers, in any order, and equal scikit-learn's float64 sums exactly.
    A table's leaf reached by a row is the lowest set bit of its mask, so
    the row's vote is ``mask & -mask & class_mask[t, c] != 0``: no lookup
    into the leaf values, and the loops over rows vectorize.

    Returns
    -------
    tables : tuple or None
        ``(weight, class_mask)``: ``weight[t]`` (int64) the votes of table
        ``t`` (the trees sharing it), ``class_mask[t, c]`` (int64) the bits
        of its leaves that vote for class ``c``.
    """
    if scorer is None or scorer[4].dtype != np.uint32:
        return None
    leaf_base = scorer[6].astype(np.int64)
    nonzero = values != 0.0
    if not (np.all(nonzero.sum(axis=1) == 1) and np.all(values == np.round(values))):
        return None
    leaf_class = np.argmax(nonzero, axis=1)
    leaf_votes = values.max(axis=1)
    ends = np.append(leaf_base[1:], values.shape[0])
    weight = np.empty(leaf_base.size, dtype=np.int64)
    class_mask = np.zeros((leaf_base.size, values.shape[1]), dtype=np.int64)
    for t, (a, z) in enumerate(zip(leaf_base, ends)):
        votes = leaf_votes[a:z]
        if not np.all(votes == votes[0]):
            return None
        weight[t] = int(votes[0])
        for bit, c in enumerate(leaf_class[a:z]):
            class_mask[t, c] |= 1 << bit
    if weight.sum() != n_trees:
        return None
    return weight, class_mask


def _check_out(out, shape):
    """A new float64 result of ``shape``, or ``out`` checked to be writable into."""
    if out is None:
        return np.empty(shape, dtype=np.float64)
    if (not isinstance(out, np.ndarray) or out.shape != shape
            or out.dtype not in (np.float32, np.float64) or not out.flags.c_contiguous
            or not out.flags.writeable):
        raise InvalidParameterError(
            f"out must be a writable C-contiguous float32 or float64 array of shape "
            f"{shape}, got {getattr(out, 'dtype', type(out).__name__)} "
            f"{getattr(out, 'shape', '')}; pass out=None to get a new array."
        )
    return out


def _as_rows(X, n_features):
    """``X`` as float32 rows the kernels read: C-contiguous, or feature-major as it is.

    A feature-major float32 ``X`` (each column contiguous, e.g.
    ``planes.reshape(F, -1).T`` of
    :func:`pixelforest.features.compute.feature_planes_of_block`) is used
    without a copy; anything else is copied to C-contiguous float32, as
    scikit-learn does.
    """
    X = np.asarray(X)
    if not (X.dtype == np.float32 and X.ndim == 2 and X.strides[0] == X.itemsize):
        X = np.ascontiguousarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise InvalidImageError(
            f"X must be a 2-D array of shape (n_pixels, n_features), got shape "
            f"{X.shape}; reshape a feature stack with X.reshape(-1, n_features)."
        )
    if X.shape[1] != n_features:
        raise ChannelMismatchError(
            f"X has {X.shape[1]} features but the forest was trained on "
            f"{n_features}; compute the same features as for training."
        )
    if X.shape[0] == 0:
        raise InvalidImageError(
            "X has no rows (0 pixels); pass at least one pixel's features."
        )
    return X


_POOL_LOCK = threading.Lock()


# --- numba kernels -----------------------------------------------------------
# One signature per layout of X (C-contiguous float32 rows, or feature-major
# columns) and dtype of out (float64, or float32 for the pipeline); the
# int32 node table and its float32 view, int32 roots, float64 values and
# int64 block do not vary.  numba compiles each kernel once per
# combination, lazily, and caches it on disk.

def _all_finite(X):
    # feature-major X, one read of each value and no temporary: x - x is 0
    # unless x is NaN or infinite (in any order of the sum a NaN stays NaN)
    acc = np.float32(0.0)
    for f in range(X.shape[1]):
        for i in range(X.shape[0]):
            acc += X[i, f] - X[i, f]
    return acc == 0.0


def _walk_block(X, start, stop, nodes, thresholds, roots, values, divisor, out):
    n_classes = values.shape[1]
    n_trees = roots.shape[0]
    acc = np.zeros((stop - start, n_classes), dtype=np.float64)
    for t in range(n_trees):  # trees inner: the block of rows stays in cache
        root = roots[t]
        for i in range(start, stop):
            node = root
            f = nodes[node, 0]
            while f >= 0:
                x = X[i, f]
                if x <= thresholds[node, 3]:
                    node += 1  # preorder: the left child is the next node
                elif x != x and nodes[node, 2]:  # NaN, like scikit-learn
                    node += 1
                else:
                    node = nodes[node, 1]
                f = nodes[node, 0]
            leaf = nodes[node, 1]
            # tree order, float64: the same sums as scikit-learn
            for c in range(n_classes):
                acc[i - start, c] += values[leaf, c]
    for i in range(start, stop):
        for c in range(n_classes):
            out[i, c] = acc[i - start, c] / divisor


def _walk_block_binary(X, start, stop, nodes, thresholds, roots, values, divisor, out):
    # two classes (the usual foreground / background): rows outer, trees
    # inner, the two sums in registers; the same additions in the same
    # (tree) order as _walk_block, so the same bits
    n_trees = roots.shape[0]
    for i in range(start, stop):
        a0 = 0.0
        a1 = 0.0
        for t in range(n_trees):
            node = roots[t]
            f = nodes[node, 0]
            while f >= 0:
                x = X[i, f]
                if x <= thresholds[node, 3]:
                    node += 1
                elif x != x and nodes[node, 2]:
                    node += 1
                else:
                    node = nodes[node, 1]
                f = nodes[node, 0]
            leaf = nodes[node, 1]
            a0 += values[leaf, 0]
            a1 += values[leaf, 1]
        out[i, 0] = a0 / divisor
        out[i, 1] = a1 / divisor


def _walk(X, start, stop, nodes, thresholds, roots, values, divisor, out):
    if values.shape[1] == 2:
        _walk_block_binary(X, start, stop, nodes, thresholds, roots, values, divisor, out)
    else:
        _walk_block(X, start, stop, nodes, thresholds, roots, values, divisor, out)


def _predict_serial(X, nodes, thresholds, roots, values, divisor, block, out):
    n = X.shape[0]
    for start in range(0, n, block):
        _walk(X, start, min(n, start + block), nodes, thresholds, roots, values, divisor,
              out)


def _predict_parallel(X, nodes, thresholds, roots, values, divisor, block, out):
    n = X.shape[0]
    n_blocks = (n + block - 1) // block
    for b in prange(n_blocks):
        start = b * block
        _walk(X, start, min(n, start + block), nodes, thresholds, roots, values, divisor,
              out)


#: Rows per pass of the leaf-mask kernel: their masks and transposed
#: features stay in the L1/L2 cache.
_SCORE_ROWS = 256


def _leaf_masks(X, start, nb, n_trees, tree, feature, threshold, missing_left, mask,
                full, xt, masks):
    # rows start..start+nb: masks[t, i] holds the leaves of tree t row i can reach
    # features column by column (the loops below vectorize), read in X's order
    if X.strides[0] == 4 and X.shape[1] > 1:  # feature-major
        for f in range(X.shape[1]):
            for i in range(nb):
                xt[f, i] = X[start + i, f]
    else:
        for i in range(nb):
            for f in range(X.shape[1]):
                xt[f, i] = X[start + i, f]
    for t in range(n_trees):
        row = masks[t]
        for i in range(nb):
            row[i] = full
    for k in range(tree.shape[0]):
        col = xt[feature[k]]
        row = masks[tree[k]]
        thr = threshold[k]
        m = mask[k]
        if missing_left[k]:
            for i in range(nb):
                x = col[i]
                row[i] &= full if (x <= thr) | (x != x) else m
        else:
            for i in range(nb):
                row[i] &= full if col[i] <= thr else m


def _score_rows(X, start, stop, tree, feature, threshold, missing_left, mask, full,
                leaf_base, values, divisor, out, xt, masks, acc):
    # QuickScorer on rows start..stop (at most _SCORE_ROWS): see _leaf_mask_tables
    nb = stop - start
    n_trees = leaf_base.shape[0]
    n_classes = values.shape[1]
    _leaf_masks(X, start, nb, n_trees, tree, feature, threshold, missing_left, mask, full,
                xt, masks)
    for i in range(nb):
        for c in range(n_classes):
            acc[i, c] = 0.0
    for t in range(n_trees):  # tree order, float64: the same sums as scikit-learn
        base = leaf_base[t]
        row = masks[t]
        if n_classes == 2:
            for i in range(nb):
                leaf = base + _trailing_zeros(row[i])
                acc[i, 0] += values[leaf, 0]
                acc[i, 1] += values[leaf, 1]
        else:
            for i in range(nb):
                leaf = base + _trailing_zeros(row[i])
                for c in range(n_classes):
                    acc[i, c] += values[leaf, c]
    for i in range(nb):
        for c in range(n_classes):
            out[start + i, c] = acc[i, c] / divisor


def _vote_rows(X, start, stop, tree, feature, threshold, missing_left, mask, full,
               weight, class_mask, n_trees, divisor, out, xt, masks, votes):
    # the leaf masks of _score_rows, then whole votes (see _vote_tables)
    nb = stop - start
    n_tables = weight.shape[0]
    n_classes = class_mask.shape[1]
    _leaf_masks(X, start, nb, n_tables, tree, feature, threshold, missing_left, mask, full,
                xt, masks)
    # with two classes only class 1 is counted: class 0 has the other votes
    first = 1 if n_classes == 2 else 0
    for c in range(first, n_classes):
        count = votes[c]
        for i in range(nb):
            count[i] = 0
        for t in range(n_tables):
            row = masks[t]
            w = weight[t]
            bits = class_mask[t, c]
            for i in range(nb):
                m = np.int64(row[i])
                count[i] += w if (m & -m & bits) != 0 else 0
    if n_classes == 2:
        for i in range(nb):
            out[start + i, 0] = (n_trees - votes[1, i]) / divisor
            out[start + i, 1] = votes[1, i] / divisor
    else:
        for i in range(nb):
            for c in range(n_classes):
                out[start + i, c] = votes[c, i] / divisor


def _vote(X, start, stop, tree, feature, threshold, missing_left, mask, full, weight,
          class_mask, n_trees, divisor, out):
    xt = np.empty((X.shape[1], _SCORE_ROWS), dtype=np.float32)
    masks = np.empty((weight.shape[0], _SCORE_ROWS), dtype=mask.dtype)
    votes = np.empty((class_mask.shape[1], _SCORE_ROWS), dtype=np.int64)
    for a in range(start, stop, _SCORE_ROWS):
        _vote_rows(X, a, min(stop, a + _SCORE_ROWS), tree, feature, threshold,
                   missing_left, mask, full, weight, class_mask, n_trees, divisor, out, xt,
                   masks, votes)


def _vote_serial(X, tree, feature, threshold, missing_left, mask, full, weight, class_mask,
                 n_trees, divisor, block, out):
    n = X.shape[0]
    for start in range(0, n, block):
        _vote(X, start, min(n, start + block), tree, feature, threshold, missing_left,
              mask, full, weight, class_mask, n_trees, divisor, out)


def _vote_parallel(X, tree, feature, threshold, missing_left, mask, full, weight,
                   class_mask, n_trees, divisor, block, out):
    n = X.shape[0]
    n_blocks = (n + block - 1) // block
    for b in prange(n_blocks):
        start = b * block
        _vote(X, start, min(n, start + block), tree, feature, threshold, missing_left,
              mask, full, weight, class_mask, n_trees, divisor, out)


def _score(X, start, stop, tree, feature, threshold, missing_left, mask, full, leaf_base,
           values, divisor, out):
    xt = np.empty((X.shape[1], _SCORE_ROWS), dtype=np.float32)
    masks = np.empty((leaf_base.shape[0], _SCORE_ROWS), dtype=mask.dtype)
    acc = np.empty((_SCORE_ROWS, values.shape[1]), dtype=np.float64)
    for a in range(start, stop, _SCORE_ROWS):
        _score_rows(X, a, min(stop, a + _SCORE_ROWS), tree, feature, threshold,
                    missing_left, mask, full, leaf_base, values, divisor, out, xt, masks,
                    acc)


def _score_serial(X, tree, feature, threshold, missing_left, mask, full, leaf_base, values,
                  divisor, block, out):
    n = X.shape[0]
    for start in range(0, n, block):
        _score(X, start, min(n, start + block), tree, feature, threshold, missing_left,
               mask, full, leaf_base, values, divisor, out)


def _score_parallel(X, tree, feature, threshold, missing_left, mask, full, leaf_base, values,
                    divisor, block, out):
    n = X.shape[0]
    n_blocks = (n + block - 1) // block
    for b in prange(n_blocks):
        start = b * block
        _score(X, start, min(n, start + block), tree, feature, threshold, missing_left,
               mask, full, leaf_base, values, divisor, out)


try:
    import numba
    from numba import prange

    _all_finite = numba.njit(nogil=True, cache=True, fastmath={"reassoc"})(_all_finite)
    _walk_block = numba.njit(nogil=True, cache=True)(_walk_block)
    _walk_block_binary = numba.njit(nogil=True, cache=True)(_walk_block_binary)
    _walk = numba.njit(nogil=True, cache=True)(_walk)
    _predict_serial = numba.njit(nogil=True, cache=True)(_predict_serial)
    _predict_parallel = numba.njit(nogil=True, cache=True, parallel=True)(_predict_parallel)
    try:  # numba's count-trailing-zeros intrinsic (LLVM cttz)
        from numba.cpython.unsafe.numbers import trailing_zeros as _trailing_zeros
    except ImportError:  # pragma: no cover - moved in some numba: walk the trees
        _trailing_zeros = None

    _leaf_masks = numba.njit(nogil=True, cache=True)(_leaf_masks)
    _score_rows = numba.njit(nogil=True, cache=True)(_score_rows)
    _score = numba.njit(nogil=True, cache=True)(_score)
    _score_serial = numba.njit(nogil=True, cache=True)(_score_serial)
    _score_parallel = numba.njit(nogil=True, cache=True, parallel=True)(_score_parallel)
    _vote_rows = numba.njit(nogil=True, cache=True)(_vote_rows)
    _vote = numba.njit(nogil=True, cache=True)(_vote)
    _vote_serial = numba.njit(nogil=True, cache=True)(_vote_serial)
    _vote_parallel = numba.njit(nogil=True, cache=True, parallel=True)(_vote_parallel)
except ImportError:  # pragma: no cover - numba is a dependency
    numba = None
    prange = range
    _trailing_zeros = None
    _all_finite = None

#: False once numba failed to compile; then scikit-learn predicts.
_NUMBA_OK = numba is not None


def numba_available():
    """Return True if the compiled kernels can be used.

    Examples
    --------
    >>> isinstance(numba_available(), bool)
    True
    """
    return _NUMBA_OK


# --- entry point ---------------------------------------------------------------

_CACHE = weakref.WeakKeyDictionary()
_CACHE_LOCK = threading.Lock()


def compile_forest(estimator):
    """Return the :class:`CompiledForest` of ``estimator``, built once and cached.

    The cache holds the estimator weakly and remembers which fitted trees it
    was built from, so refitting the estimator rebuilds it.

    Examples
    --------
    >>> from sklearn.ensemble import ExtraTreesClassifier
    >>> X, y = np.arange(8.0).reshape(4, 2), [0, 1, 1, 0]
    >>> et = ExtraTreesClassifier(3, random_state=0).fit(X, y)
    >>> compile_forest(et) is compile_forest(et)
    True
    """
    trees = _trees_of(estimator)
    if trees is None:
        return CompiledForest.from_sklearn(estimator)  # raises the TypeError
    key = tuple(tree.tree_ for tree in trees)
    with _CACHE_LOCK:
        entry = _CACHE.get(estimator)
    if entry is not None and len(entry[0]) == len(key) and all(
            a is b for a, b in zip(entry[0], key)):
        return entry[1]
    compiled = CompiledForest.from_sklearn(estimator)
    with _CACHE_LOCK:
        # the entry keeps the trees alive, so their ids cannot be reused
        _CACHE[estimator] = (key, compiled)
    return compiled


def _check_finite(estimator, X):
    """Reject infinity, and NaN unless scikit-learn accepts it for ``estimator``."""
    if _all_finite is not None and X.strides[0] == X.itemsize and X.shape[1] > 1:
        if _all_finite(X):  # feature-major: 4x faster than the float64 sum
            return
    # a float64 sum of float32 values cannot overflow: it is finite iff X is
    elif np.isfinite(np.sum(X, dtype=np.float64)):
        return
    isnan = np.isnan(X)
    n_nan = int(isnan.sum())
    n_inf = int(np.isinf(X).sum())
    if n_inf:
        raise InvalidImageError(
            f"X contains {n_inf} infinite values (and {n_nan} NaN); a forest cannot "
            "split on infinity: replace them first, e.g. np.nan_to_num(X)."
        )
    # Ask scikit-learn itself, on one row, whether this estimator accepts NaN
    # (it depends on the estimator type, its parameters and the version).
    row = int(np.flatnonzero(isnan.any(axis=1))[0])
    try:
        estimator.predict_proba(X[row:row + 1])
    except ValueError as exc:
        raise InvalidImageError(
            f"X contains {n_nan} NaN values and this {type(estimator).__name__} does "
            "not accept missing values; replace them first (e.g. np.nan_to_num(X)) "
            f"or train an estimator that supports them. scikit-learn says: {exc}"
        ) from exc


def forest_predict_proba(estimator, X, *, n_threads=None, out=None):
    """Class probabilities of ``X``, equal to ``estimator.predict_proba(X)``.

    Fitted single-output ``RandomForestClassifier``,
    ``ExtraTreesClassifier``, ``DecisionTreeClassifier`` and
    ``ExtraTreeClassifier`` are compiled once (:func:`compile_forest`) and
    run by a multi-threaded numba kernel; any other estimator, or any
    estimator when numba is unavailable, goes to its own ``predict_proba``.

    Parameters
    ----------
    estimator : fitted scikit-learn classifier
    X : array_like, shape (n_samples, n_features)
        Features, ideally C-contiguous or feature-major float32 (else a
        float32 copy is made, as scikit-learn does).
    n_threads : int or None, optional
        Threads to use; -1 for all cores; None reads the
        ``PIXELFOREST_NUM_THREADS`` environment variable, else all cores.
    out : ndarray, optional
        C-contiguous float64 or float32 array of shape ``(n_samples,
        n_classes)`` to write the result into (float32: the float64
        result rounded once, as ``astype(np.float32)`` rounds it).

    Returns
    -------
    proba : ndarray of float64, shape (n_samples, n_classes)
        Columns in the order of ``estimator.classes_``; equal to scikit-learn
        within 1e-12 (bit for bit when the estimator has ``n_jobs=None``).
        ``out`` when given.

    Raises
    ------
    ChannelMismatchError
        ``X`` has another number of features than the estimator was fit on.
    InvalidImageError
        ``X`` is not 2-D, has no rows, holds infinity, or NaN that the
        estimator does not accept.
    NotFittedError
        The estimator is not fitted.

    Examples
    --------
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.random((200, 3), dtype=np.float32)
    >>> y = (X[:, 0] > 0.5).astype(int)
    >>> rf = RandomForestClassifier(10, random_state=0).fit(X, y)
    >>> proba = forest_predict_proba(rf, X, n_threads=1)
    >>> proba.shape, bool(np.array_equal(proba, rf.predict_proba(X)))
    ((200, 2), True)
    """
    global _NUMBA_OK
    if not _NUMBA_OK or _trees_of(estimator) is None:
        return _into(_sklearn_predict_proba(estimator, X, n_threads), out)
    compiled = compile_forest(estimator)
    X = _as_rows(X, compiled.n_features)
    _check_finite(estimator, X)
    try:
        return compiled.predict_proba(X, n_threads=n_threads, out=out)
    except numba.core.errors.NumbaError:  # pragma: no cover - a broken numba install
        _NUMBA_OK = False
        return _into(_sklearn_predict_proba(estimator, X, n_threads), out)


def _into(proba, out):
    """``proba``, or ``out`` (checked) holding it."""
    if out is None:
        return proba
    out = _check_out(out, proba.shape)
    out[...] = proba
    return out


def _sklearn_predict_proba(estimator, X, n_threads):
    """scikit-learn's own predict_proba, with joblib limited to ``n_threads``."""
    from joblib import parallel_config

    with parallel_config(n_jobs=resolve_n_threads(n_threads)):
        return estimator.predict_proba(X)
