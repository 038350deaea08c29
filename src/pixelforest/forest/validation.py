"""Check the trees of a loaded model before any compiled code walks them.

A fitted scikit-learn tree is a set of arrays (children, features,
thresholds, leaf values) that scikit-learn's Cython code and the numba
kernels of :mod:`pixelforest.forest.inference` index *without bounds
checks*.  A model file holds those arrays as data, so a file made only of
trusted types can still point a child past the end of the node table, test
a feature the image does not have, or link the nodes into a cycle: out of
bounds memory access, driven by the file.  :func:`check_forest` proves
every tree well formed first, in time and memory linear in the number of
nodes (level by level, no recursion), and raises
:class:`~pixelforest.errors.ModelFileError` naming the tree, the node and
the problem otherwise.

A tree is well formed when:

* ``node_count`` is at least 1 and equals the number of stored nodes;
* a leaf has both children -1; an internal node has two children in
  ``1 .. node_count - 1``; every node but the root is the child of exactly
  one node, and every node is reached from the root (no cycle, no shared or
  detached part); ``max_depth`` is not below the depth reached;
* an internal node tests a feature in ``0 .. n_features - 1`` against a
  finite threshold, and the leaf values are finite;
* a classifier's tree has one output and as many class columns as the
  model has classes.

Trees nested in other scikit-learn estimators (a pipeline, bagging,
boosting, calibration) are checked too, against the features of the tree's
own estimator; estimators without trees pass through untouched.
"""

import numpy as np

from pixelforest.errors import ModelFileError

__all__ = ["ADVICE", "check_forest", "check_tree"]

#: How every message of :func:`check_forest` ends.
ADVICE = ("the file is damaged or was crafted; do not use it, retrain or ask for a "
          "fresh copy.")

_LEAF = -1


def _fail(source, where, problem):
    raise ModelFileError(f"{source}: {where}: {problem}; {ADVICE}")


def check_tree(tree, *, n_features, n_classes=None, source="the model", where="tree"):
    """Check that one fitted scikit-learn ``Tree`` is well formed.

    Parameters
    ----------
    tree : sklearn.tree._tree.Tree
        The ``tree_`` of a fitted decision tree.
    n_features : int
        Number of features of the rows the tree is applied to; every split
        must test one of them, and the tree must record exactly this many.
    n_classes : int, optional
        For a classifier's tree: the number of classes, which the tree must
        have, with a single output.  None (a regressor's tree, say) checks
        the structure only.
    source : str, optional
        What the tree comes from, to start the message (e.g. the file).
    where : str, optional
        Which tree this is, for the message (e.g. ``"tree 3 of 50"``).

    Raises
    ------
    ModelFileError
        The tree is malformed; the message names the node and the problem.

    Examples
    --------
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> tree = DecisionTreeClassifier(random_state=0).fit(X, [0, 0, 1, 1])
    >>> check_tree(tree.tree_, n_features=1, n_classes=2)
    >>> check_tree(tree.tree_, n_features=2, n_classes=2)
    Traceback (most recent call last):
    ...
    pixelforest.errors.ModelFileError: the model: tree: it records 1 feature(s), but the model has 2; the file is damaged or was crafted; do not use it, retrain or ask for a fresh copy.
    """
    from sklearn.tree._tree import Tree

    if not isinstance(tree, Tree):
        _fail(source, where, f"it is a {type(tree).__name__}, not a fitted tree")
    n = int(tree.node_count)
    # read the sizes first: the node arrays are views of node_count entries
    capacity = int(getattr(tree, "capacity", n))
    if n < 1:
        _fail(source, where, f"it has node_count {n}; a tree has at least one node")
    if n != capacity:
        _fail(source, where, f"its node_count {n} differs from the {capacity} nodes stored")
    if int(tree.n_features) != int(n_features):
        _fail(source, where, f"it records {int(tree.n_features)} feature(s), but the model "
                             f"has {int(n_features)}")
    if n_classes is not None:
        if int(tree.n_outputs) != 1:
            _fail(source, where, f"it has {int(tree.n_outputs)} outputs; a pixel classifier "
                                 "has one")
        if int(tree.max_n_classes) != n_classes or int(tree.n_classes[0]) != n_classes:
            _fail(source, where, f"it has {int(tree.max_n_classes)} class column(s), but "
                                 f"the model has {n_classes} classes")

    left = np.asarray(tree.children_left, dtype=np.int64)
    right = np.asarray(tree.children_right, dtype=np.int64)
    leaf = left == _LEAF
    internal = ~leaf

    bad = np.flatnonzero(leaf & (right != _LEAF))
    if bad.size:
        _fail(source, f"{where}, node {bad[0]}", f"it is a leaf (left child -1) but its right "
                                                 f"child is {right[bad[0]]}")
    for side, child in (("left", left), ("right", right)):
        bad = np.flatnonzero(internal & ((child < 1) | (child >= n)))
        if bad.size:
            value = child[bad[0]]
            problem = ("points back to the root (a cycle)" if value == 0 else
                       f"{value} is out of range (the tree has {n} nodes)")
            _fail(source, f"{where}, node {bad[0]}", f"its {side} child {problem}")

    # every node but the root has exactly one parent ...
    parents = np.bincount(np.concatenate([left[internal], right[internal]]), minlength=n)
    bad = np.flatnonzero(parents > 1)
    if bad.size:
        _fail(source, f"{where}, node {bad[0]}", f"it is the child of {parents[bad[0]]} "
                                                 "nodes (a shared subtree or a cycle)")
    # ... so a walk from the root, level by level, meets each node at most once
    reached = np.zeros(n, dtype=bool)
    reached[0] = True
    level = np.zeros(1, dtype=np.int64)
    depth = 0
    while True:
        level = level[internal[level]]
        if not level.size:
            break
        level = np.concatenate([left[level], right[level]])
        reached[level] = True
        depth += 1
    bad = np.flatnonzero(~reached)
    if bad.size:
        _fail(source, f"{where}, node {bad[0]}", "it cannot be reached from the root (a "
                                                 "cycle or a detached part)")
    if int(tree.max_depth) < depth:
        _fail(source, where, f"its max_depth {int(tree.max_depth)} is less than its depth "
                             f"{depth}")

    feature = np.asarray(tree.feature, dtype=np.int64)
    bad = np.flatnonzero(internal & ((feature < 0) | (feature >= n_features)))
    if bad.size:
        _fail(source, f"{where}, node {bad[0]}", f"it tests feature {feature[bad[0]]}, but "
                                                 f"the model has {n_features} (0 to "
                                                 f"{n_features - 1})")
    threshold = np.asarray(tree.threshold, dtype=np.float64)
    bad = np.flatnonzero(internal & ~np.isfinite(threshold))
    if bad.size:
        _fail(source, f"{where}, node {bad[0]}", f"its threshold is {threshold[bad[0]]}, "
                                                 "not a finite number")
    value = np.asarray(tree.value)
    expected = (n, 1, n_classes) if n_classes is not None else (n,) + value.shape[1:]
    if value.shape != expected:
        _fail(source, where, f"its leaf values have shape {value.shape}, expected "
                             f"{expected}")
    bad = np.flatnonzero(leaf & ~np.isfinite(value).all(axis=(1, 2)))
    if bad.size:
        _fail(source, f"{where}, node {bad[0]}", "its leaf values are not finite")


def _classifier_attributes(est, *, n_features, n_classes, source, where):
    """Check the fitted attributes a tree or forest classifier predicts with."""
    attrs = {}
    for name in ("n_outputs_", "n_features_in_", "n_classes_", "classes_"):
        if not hasattr(est, name):
            _fail(source, where, f"it has no fitted attribute {name}")
        attrs[name] = getattr(est, name)
    if not isinstance(attrs["n_outputs_"], (int, np.integer)) or attrs["n_outputs_"] != 1:
        _fail(source, where, f"it predicts {attrs['n_outputs_']!r} outputs; a pixel "
                             "classifier predicts one")
    if (not isinstance(attrs["n_features_in_"], (int, np.integer))
            or attrs["n_features_in_"] != n_features):
        _fail(source, where, f"it expects {attrs['n_features_in_']!r} features, but the "
                             f"model computes {n_features}")
    if (not isinstance(attrs["n_classes_"], (int, np.integer))
            or attrs["n_classes_"] != n_classes):
        _fail(source, where, f"it has n_classes_ {attrs['n_classes_']!r}, but the model "
                             f"has {n_classes} classes")
    try:
        own = np.asarray(attrs["classes_"])
    except ValueError:
        own = None
    if own is None or own.ndim != 1 or own.shape[0] != n_classes:
        _fail(source, where, f"its classes_ are not {n_classes} values")
    return own


def _nested(estimator, skip):
    """Yield ``(path, tree, n_features)`` for every tree inside ``estimator``.

    Walks estimators' attributes, lists, tuples, dicts and object arrays
    with an explicit stack.  ``n_features`` is the ``n_features_in_`` of
    the tree's own estimator, or the tree's own count for a bare ``Tree``.
    """
    from sklearn.base import BaseEstimator
    from sklearn.tree import BaseDecisionTree
    from sklearn.tree._tree import Tree

    stack, seen = [("estimator", estimator)], set()
    while stack:
        path, obj = stack.pop()
        if id(obj) in seen or isinstance(obj, (str, bytes, int, float, bool, type(None))):
            continue
        seen.add(id(obj))
        if isinstance(obj, Tree):
            if id(obj) not in skip:
                yield path, obj, int(obj.n_features)
            continue
        if isinstance(obj, BaseDecisionTree):
            tree = getattr(obj, "tree_", None)
            if tree is not None:
                seen.add(id(tree))
                if id(tree) not in skip:
                    yield f"{path}.tree_", tree, getattr(obj, "n_features_in_", -1)
        if isinstance(obj, dict):
            stack.extend((f"{path}[{k!r}]", v) for k, v in obj.items())
        elif isinstance(obj, (list, tuple)):
            stack.extend((f"{path}[{i}]", v) for i, v in enumerate(obj))
        elif isinstance(obj, np.ndarray):
            if obj.dtype == object:
                stack.extend((f"{path}[{i}]", v) for i, v in enumerate(obj.ravel()))
        elif isinstance(obj, BaseEstimator) or hasattr(obj, "__dict__"):
            stack.extend((f"{path}.{k}", v) for k, v in vars(obj).items())


def check_forest(estimator, n_features, classes, *, source="the model"):
    """Check every tree of a fitted estimator before it predicts.

    For a ``RandomForestClassifier``, ``ExtraTreesClassifier``,
    ``DecisionTreeClassifier`` or ``ExtraTreeClassifier`` (the estimators
    :mod:`pixelforest.forest.inference` compiles) the estimator and each of
    its trees must have one output, ``n_features`` features and the model's
    classes, and each tree must be well formed (:func:`check_tree`).  Trees
    nested anywhere in another scikit-learn estimator are checked for
    structure against their own estimator's features.  An estimator without
    trees passes unchanged.

    Parameters
    ----------
    estimator : fitted estimator
        The model's classifier, as loaded from a file.
    n_features : int
        Feature columns the model computes for each pixel.
    classes : array_like
        The model's classes, in the order of the probability columns.
    source : str, optional
        What the estimator comes from (e.g. the file name), to start the
        message.

    Raises
    ------
    ModelFileError
        One line naming the tree, the node and the problem, ending with
        :data:`ADVICE`.

    Examples
    --------
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> X, y = np.arange(16.0).reshape(8, 2), [0, 0, 0, 0, 1, 1, 1, 1]
    >>> forest = RandomForestClassifier(3, random_state=0).fit(X, y)
    >>> check_forest(forest, 2, [0, 1])
    >>> forest.estimators_[1].tree_.feature[0] = 7    # a crafted split
    >>> check_forest(forest, 2, [0, 1], source="m.skops")
    Traceback (most recent call last):
    ...
    pixelforest.errors.ModelFileError: m.skops: tree 1 of 3, node 0: it tests feature 7, but the model has 2 (0 to 1); the file is damaged or was crafted; do not use it, retrain or ask for a fresh copy.
    """
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
    from sklearn.tree import DecisionTreeClassifier

    n_features = int(n_features)
    classes = np.asarray(classes)
    if classes.ndim != 1 or classes.shape[0] < 1:
        _fail(source, "the model", f"its classes {classes.tolist()!r} are not a list of "
                                   "values")
    n_classes = int(classes.shape[0])
    checked = set()
    if isinstance(estimator, (RandomForestClassifier, ExtraTreesClassifier,
                              DecisionTreeClassifier)):
        own = _classifier_attributes(estimator, n_features=n_features, n_classes=n_classes,
                                     source=source, where="the estimator")
        if not np.array_equal(own, classes):
            _fail(source, "the estimator", f"its classes {own.tolist()} differ from the "
                                           f"model's {classes.tolist()}")
        if isinstance(estimator, DecisionTreeClassifier):
            members = [("the tree", estimator)]
        else:
            trees = getattr(estimator, "estimators_", None)
            if not isinstance(trees, (list, tuple)) or not trees:
                _fail(source, "the forest", "it holds no fitted trees")
            members = [(f"tree {i} of {len(trees)}", t) for i, t in enumerate(trees)]
        for where, member in members:
            if not isinstance(member, DecisionTreeClassifier):
                _fail(source, where, f"it is a {type(member).__name__}, not a decision tree "
                                     "classifier")
            if member is not estimator:
                _classifier_attributes(member, n_features=n_features, n_classes=n_classes,
                                       source=source, where=where)
            tree = getattr(member, "tree_", None)
            check_tree(tree, n_features=n_features, n_classes=n_classes, source=source,
                       where=where)
            checked.add(id(tree))
    for path, tree, own_features in _nested(estimator, checked):
        if not isinstance(own_features, (int, np.integer)) or own_features < 0:
            _fail(source, path, "its estimator records no valid n_features_in_")
        check_tree(tree, n_features=int(own_features), source=source, where=path)
