"""Tests of pixelforest.forest.inference: compiled forest inference equals scikit-learn."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier, ExtraTreeClassifier

from pixelforest.forest import inference as _forest
from pixelforest.forest.inference import (
    CompiledForest,
    compile_forest,
    float32_thresholds,
    forest_predict_proba,
    is_supported,
)
from pixelforest.errors import (ChannelMismatchError, InvalidImageError, InvalidParameterError,
                               NotFittedError)

F32 = np.finfo(np.float32)


def assert_exact(estimator, X, **kwargs):
    """Compiled output equals sklearn's within 1e-6, with the same argmax."""
    ours = forest_predict_proba(estimator, X, **kwargs)
    ref = estimator.predict_proba(X)
    assert ours.shape == ref.shape and ours.dtype == np.float64
    assert np.abs(ours - ref).max() <= 1e-6
    np.testing.assert_array_equal(ours.argmax(axis=1), ref.argmax(axis=1))
    return ours, ref


def random_data(n, n_features, n_classes, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_features)).astype(np.float32)
    # learnable classes plus label noise, so trees have real splits
    score = X[:, 0] + 0.5 * X[:, -1] + rng.normal(scale=0.5, size=n)
    y = np.digitize(score, np.quantile(score, np.linspace(0, 1, n_classes + 1)[1:-1]))
    return X, y


def edge_rows(estimator, X, seed=0):
    """Rows whose values sit exactly at, just below and just above thresholds."""
    trees = getattr(estimator, "estimators_", [estimator])
    rng = np.random.default_rng(seed)
    rows = []
    for tree in trees:
        t = tree.tree_
        internal = np.flatnonzero(t.children_left != -1)
        for node in internal[:40]:
            t64 = t.threshold[node]
            t32 = np.float32(t64)  # round to nearest: may sit above t64
            for value in (t32, np.nextafter(t32, np.float32(-np.inf)),
                          np.nextafter(t32, np.float32(np.inf)), float32_thresholds(t64)):
                row = X[rng.integers(X.shape[0])].copy()
                row[t.feature[node]] = value
                rows.append(row)
    return np.asarray(rows, dtype=np.float32)


@pytest.mark.parametrize("max_depth", [1, 4, 12, None])
@pytest.mark.parametrize("n_classes,n_features", [(2, 1), (3, 5), (5, 24)])
def test_random_forest_equals_sklearn(max_depth, n_classes, n_features):
    X, y = random_data(600, n_features, n_classes, seed=n_features)
    rf = RandomForestClassifier(n_estimators=7, max_depth=max_depth, random_state=0).fit(X, y)
    Xtest, _ = random_data(3000, n_features, n_classes, seed=99)
    ours, ref = assert_exact(rf, Xtest)
    # n_jobs=None sums trees in the same order: bit for bit equal
    np.testing.assert_array_equal(ours, ref)
    assert_exact(rf, edge_rows(rf, Xtest))


@pytest.mark.parametrize("cls", [ExtraTreesClassifier, RandomForestClassifier])
def test_deep_forest_on_noise(cls):
    rng = np.random.default_rng(1)
    X = rng.random((1500, 6), dtype=np.float32)
    y = rng.integers(0, 3, 1500)  # pure noise: trees grow to one sample per leaf
    forest = cls(n_estimators=5, random_state=0).fit(X, y)
    assert max(e.tree_.max_depth for e in forest.estimators_) > 12
    assert_exact(forest, rng.random((4000, 6), dtype=np.float32))
    assert_exact(forest, edge_rows(forest, X))


@pytest.mark.parametrize("tree", [DecisionTreeClassifier(random_state=0),
                                  ExtraTreeClassifier(random_state=0),
                                  DecisionTreeClassifier(max_leaf_nodes=20, random_state=0)])
def test_single_tree(tree):
    X, y = random_data(800, 4, 3, seed=2)
    tree.fit(X, y)
    ours, ref = assert_exact(tree, random_data(2000, 4, 3, seed=3)[0])
    np.testing.assert_array_equal(ours, ref)
    assert_exact(tree, edge_rows(tree, X))


def test_best_first_trees_are_renumbered_in_preorder():
    # max_leaf_nodes grows trees best-first: left children are not the next node
    X, y = random_data(1000, 5, 2, seed=4)
    rf = RandomForestClassifier(n_estimators=4, max_leaf_nodes=30, random_state=0).fit(X, y)
    t = rf.estimators_[0].tree_
    internal = np.flatnonzero(t.children_left != -1)
    assert not np.array_equal(t.children_left[internal], internal + 1)
    assert_exact(rf, random_data(3000, 5, 2, seed=5)[0])
    cf = compile_forest(rf)
    assert cf.n_nodes == sum(e.tree_.node_count for e in rf.estimators_)


def test_many_classes_and_sample_weights():
    rng = np.random.default_rng(6)
    X = rng.random((3000, 8), dtype=np.float32)
    y = (X[:, 0] * 40).astype(int)  # 40 classes
    w = rng.random(3000)
    rf = RandomForestClassifier(n_estimators=6, random_state=0, class_weight="balanced")
    rf.fit(X, y, sample_weight=w)
    assert rf.n_classes_ == 40
    assert_exact(rf, rng.random((2000, 8), dtype=np.float32))


def test_string_classes_keep_order():
    X, y = random_data(500, 3, 3, seed=7)
    labels = np.array(["nucleus", "background", "edge"])[y]
    rf = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, labels)
    ours, ref = assert_exact(rf, X)
    np.testing.assert_array_equal(ours, ref)


def test_image_features(nuclei):
    from skimage.feature import multiscale_basic_features

    image, labels = nuclei  # synthetic_nuclei((96, 96), n=8, seed=0)
    feats = multiscale_basic_features(image.astype(np.float32), sigma_max=4)
    X = np.ascontiguousarray(feats.reshape(-1, feats.shape[-1]), dtype=np.float32)
    y = (labels > 0).ravel()
    rng = np.random.default_rng(0)
    train = rng.choice(X.shape[0], 1500, replace=False)
    for forest in (RandomForestClassifier(n_estimators=20, random_state=0),
                   ExtraTreesClassifier(n_estimators=10, max_depth=10, random_state=0)):
        forest.fit(X[train], y[train])
        ours, ref = assert_exact(forest, X)
        np.testing.assert_array_equal(ours, ref)


def test_float32_extremes():
    special = np.array([F32.max, -F32.max, F32.tiny, -F32.tiny, F32.smallest_subnormal,
                        -F32.smallest_subnormal, 0.0, -0.0, 1.0, -1.0, 1e30, -1e30],
                       dtype=np.float32)
    rng = np.random.default_rng(8)
    X = rng.choice(special, size=(2000, 3)).astype(np.float32)
    y = (X[:, 0] > X[:, 1]).astype(int) + (X[:, 2] > 0)
    rf = RandomForestClassifier(n_estimators=6, random_state=0)
    # scikit-learn's own finiteness check sums X in float32, which overflows
    with np.errstate(over="ignore", invalid="ignore"):
        rf.fit(X, y)
        ref = rf.predict_proba(X)
    ours = forest_predict_proba(rf, X)
    np.testing.assert_array_equal(ours, ref)
    edges = edge_rows(rf, X)
    with np.errstate(over="ignore", invalid="ignore"):
        ref = rf.predict_proba(edges)
    np.testing.assert_array_equal(forest_predict_proba(rf, edges), ref)


def test_float64_input_is_cast_like_sklearn():
    X, y = random_data(400, 3, 2, seed=9)
    rf = RandomForestClassifier(n_estimators=4, random_state=0).fit(X, y)
    # float64 values between float32 neighbours, and a Fortran-ordered view
    X64 = np.asfortranarray(X.astype(np.float64) + 1e-9)
    ours, ref = assert_exact(rf, X64)
    np.testing.assert_array_equal(ours, ref)


@settings(max_examples=300, deadline=None)
@given(t=st.floats(allow_nan=False, width=64),
       x=st.floats(allow_nan=True, width=32))
def test_float32_threshold_equivalence(t, x):
    t32 = float32_thresholds(np.array([t]))[0]
    x32 = np.float32(x)
    assert bool(np.float64(x32) <= np.float64(t)) == bool(x32 <= t32)
    assert np.float64(t32) <= t or np.isneginf(t)


def test_float32_thresholds_at_neighbours():
    rng = np.random.default_rng(10)
    t = rng.normal(scale=1e3, size=5000)
    t32 = float32_thresholds(t)
    assert t32.dtype == np.float32
    assert (t32.astype(np.float64) <= t).all()
    # the next float32 is above the threshold: t32 is the largest one not above it
    assert (np.nextafter(t32, np.float32(np.inf)).astype(np.float64) > t).all()
    exact = np.float32([0.5, -2.0, 3.0])
    np.testing.assert_array_equal(float32_thresholds(exact.astype(np.float64)), exact)
    assert float32_thresholds([1e300])[0] == F32.max
    assert float32_thresholds([-1e300])[0] == -np.inf


@pytest.mark.parametrize("n_rows", [1, 5000, _forest.BLOCK_ROWS * 3 + 7])
def test_one_and_two_threads_are_identical(n_rows):
    X, y = random_data(800, 6, 3, seed=11)
    rf = RandomForestClassifier(n_estimators=8, random_state=0).fit(X, y)
    Xtest = random_data(n_rows, 6, 3, seed=12)[0]
    one = forest_predict_proba(rf, Xtest, n_threads=1)
    two = forest_predict_proba(rf, Xtest, n_threads=2)
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(one, rf.predict_proba(Xtest))


@pytest.mark.parametrize("forest", ["vote", "score", "walk"])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_feature_major_rows_are_read_in_place_with_the_same_bits(forest, n_threads):
    # the pipeline hands the forest feature planes: planes.reshape(F, -1).T
    X, y = random_data(3000, 7, 3, seed=21)
    if forest == "vote":  # pure leaves, small trees: the whole-vote kernel
        rf = RandomForestClassifier(n_estimators=9, max_features=None,
                                    random_state=0).fit(X, X[:, 0] > 0)
    elif forest == "score":  # impure leaves: the leaf-sum kernel
        rf = RandomForestClassifier(n_estimators=9, max_depth=4, random_state=0).fit(X, y)
    else:  # more than 64 leaves: the walking kernel
        rf = RandomForestClassifier(n_estimators=4, random_state=0).fit(X, y)
    planes = np.ascontiguousarray(random_data(_forest.BLOCK_ROWS * 2 + 5, 7, 3, seed=22)[0].T)
    rows = planes.T  # feature-major (n_rows, F): each column contiguous
    assert _forest._as_rows(rows, 7) is rows
    assert np.shares_memory(_forest._as_rows(rows[100:], 7), planes)  # a slice too
    ref = forest_predict_proba(rf, np.ascontiguousarray(rows), n_threads=n_threads)
    np.testing.assert_array_equal(forest_predict_proba(rf, rows, n_threads=n_threads), ref)
    np.testing.assert_array_equal(forest_predict_proba(rf, rows[100:], n_threads=n_threads),
                                  ref[100:])
    np.testing.assert_array_equal(ref, rf.predict_proba(np.ascontiguousarray(rows)))
    compiled = compile_forest(rf)
    kind = ("vote" if compiled.voter is not None else
            "score" if compiled.scorer is not None else "walk")
    assert kind == forest


@pytest.mark.parametrize("estimator,separable", [
    (RandomForestClassifier(n_estimators=9, max_features=None, random_state=0), True),  # votes
    (RandomForestClassifier(n_estimators=9, max_depth=4, random_state=0), False),  # leaf sums
    (RandomForestClassifier(n_estimators=4, random_state=0), False),  # walking (> 64 leaves)
    (LogisticRegression(), False),  # scikit-learn's own predict_proba
])
def test_out_receives_the_probabilities_rounded_once(estimator, separable):
    X, y = random_data(3000, 5, 3, seed=23)
    estimator.fit(X, X[:, 0] > 0 if separable else y)
    rows = random_data(5000, 5, 3, seed=24)[0]
    ref = forest_predict_proba(estimator, rows, n_threads=2)
    for dtype in (np.float32, np.float64):
        out = np.full(ref.shape, -1.0, dtype=dtype)
        assert forest_predict_proba(estimator, rows, n_threads=2, out=out) is out
        np.testing.assert_array_equal(out, ref.astype(dtype))
    for bad in (np.empty(ref.shape, np.int64), np.empty((5000, 9)), np.empty(ref.shape)[:, :1],
                np.empty(ref.shape, order="F"), [[0.0] * ref.shape[1]] * 5000):
        with pytest.raises(InvalidParameterError, match="out must be"):
            forest_predict_proba(estimator, rows, out=bad)


def test_threads_from_environment(monkeypatch):
    X, y = random_data(300, 3, 2, seed=13)
    rf = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y)
    monkeypatch.setenv("PIXELFOREST_NUM_THREADS", "2")
    np.testing.assert_array_equal(forest_predict_proba(rf, X), rf.predict_proba(X))
    monkeypatch.setenv("PIXELFOREST_NUM_THREADS", "zero")
    with pytest.raises(ValueError, match="PIXELFOREST_NUM_THREADS"):
        forest_predict_proba(rf, X)


def test_concurrent_callers_get_correct_results():
    # dask worker threads call in parallel: one gets the pool, others run serially
    X, y = random_data(800, 5, 3, seed=14)
    rf = RandomForestClassifier(n_estimators=6, random_state=0).fit(X, y)
    blocks = [random_data(9000, 5, 3, seed=s)[0] for s in range(6)]
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda b: forest_predict_proba(rf, b, n_threads=2), blocks))
    for block, result in zip(blocks, results):
        np.testing.assert_array_equal(result, rf.predict_proba(block))
    assert not _forest._POOL_LOCK.locked()


def test_nan_follows_missing_go_to_left():
    rng = np.random.default_rng(15)
    X = rng.random((1500, 4), dtype=np.float32)
    y = (X[:, 0] > 0.5).astype(int) + (X[:, 1] > 0.3)
    Xnan = X.copy()
    Xnan[rng.random(X.shape) < 0.2] = np.nan
    test = rng.random((3000, 4), dtype=np.float32)
    test[rng.random(test.shape) < 0.3] = np.nan
    for train in (Xnan, X):  # trained with and without missing values
        for forest in (RandomForestClassifier(n_estimators=6, random_state=0),
                       DecisionTreeClassifier(random_state=0)):
            forest.fit(train, y)
            ours, ref = assert_exact(forest, test)
            np.testing.assert_array_equal(ours, ref)


class _NoNaNTree(DecisionTreeClassifier):
    """A tree whose scikit-learn validation refuses NaN."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags


def test_nan_rejected_when_sklearn_rejects_it():
    X, y = random_data(300, 3, 2, seed=16)
    tree = _NoNaNTree(random_state=0).fit(X, y)
    assert is_supported(tree)
    bad = X.copy()
    bad[5, 1] = np.nan
    with pytest.raises(ValueError):
        tree.predict_proba(bad)
    with pytest.raises(InvalidImageError, match=r"1 NaN.*nan_to_num"):
        forest_predict_proba(tree, bad)


@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_infinity_rejected(value):
    X, y = random_data(300, 3, 2, seed=17)
    rf = RandomForestClassifier(n_estimators=2, random_state=0).fit(X, y)
    bad = X.copy()
    bad[3, 2] = value
    with pytest.raises(ValueError):
        rf.predict_proba(bad)  # scikit-learn refuses it too
    with pytest.raises(InvalidImageError, match="infinite"):
        forest_predict_proba(rf, bad)


def test_bad_shapes_and_unfitted():
    X, y = random_data(200, 3, 2, seed=18)
    rf = RandomForestClassifier(n_estimators=2, random_state=0).fit(X, y)
    with pytest.raises(ChannelMismatchError, match="4 features.*trained on 3"):
        forest_predict_proba(rf, np.zeros((5, 4), np.float32))
    with pytest.raises(InvalidImageError, match="2-D"):
        forest_predict_proba(rf, np.zeros(3, np.float32))
    with pytest.raises(InvalidImageError, match="no rows"):
        forest_predict_proba(rf, np.zeros((0, 3), np.float32))
    with pytest.raises(NotFittedError, match="call fit"):
        forest_predict_proba(RandomForestClassifier(), X)
    assert not is_supported(RandomForestClassifier())


def test_other_estimators_use_their_own_predict_proba():
    X, y = random_data(300, 3, 3, seed=19)
    logistic = LogisticRegression().fit(X, y)
    assert not is_supported(logistic)
    np.testing.assert_array_equal(forest_predict_proba(logistic, X), logistic.predict_proba(X))
    with pytest.raises(TypeError, match="cannot be compiled"):
        CompiledForest.from_sklearn(logistic)
    # multi-output forests return one array per output, as in scikit-learn
    multi = RandomForestClassifier(n_estimators=2, random_state=0).fit(X, np.c_[y, y[::-1]])
    assert not is_supported(multi)
    ours = forest_predict_proba(multi, X)
    for a, b in zip(ours, multi.predict_proba(X)):
        np.testing.assert_array_equal(a, b)


def test_subclass_overriding_predict_proba_is_not_compiled():
    class Sharpened(RandomForestClassifier):
        def predict_proba(self, X):
            return super().predict_proba(X) ** 2

    X, y = random_data(300, 3, 2, seed=20)
    forest = Sharpened(n_estimators=3, random_state=0).fit(X, y)
    assert not is_supported(forest)
    np.testing.assert_array_equal(forest_predict_proba(forest, X), forest.predict_proba(X))


def test_fallback_without_numba(monkeypatch):
    X, y = random_data(500, 4, 3, seed=21)
    rf = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)

    def fail(*args, **kwargs):
        raise AssertionError("the compiled path must not run without numba")

    monkeypatch.setattr(_forest, "_NUMBA_OK", False)
    monkeypatch.setattr(CompiledForest, "predict_proba", fail)
    assert not _forest.numba_available()
    ours = forest_predict_proba(rf, X, n_threads=1)
    np.testing.assert_array_equal(ours, rf.predict_proba(X))


def test_counts_of_old_sklearn_are_normalized(monkeypatch):
    # scikit-learn < 1.4 stored weighted class counts in tree_.value and
    # normalized them in predict_proba: rebuild such a tree and compare
    from sklearn.tree._tree import Tree

    X, y = random_data(400, 3, 3, seed=22)
    tree = DecisionTreeClassifier(max_depth=4, random_state=0).fit(X, y)
    expected = tree.predict_proba(X)
    state = tree.tree_.__getstate__()
    counts = state["values"] * state["nodes"]["weighted_n_node_samples"][:, None, None]
    state["values"] = np.ascontiguousarray(counts)
    old = Tree(tree.n_features_in_, np.asarray([tree.n_classes_], dtype=np.intp), 1)
    old.__setstate__(state)
    tree.tree_ = old
    assert not np.allclose(tree.tree_.value[0].sum(), 1.0)
    monkeypatch.setattr(_forest, "_sklearn_stores_fractions", lambda: False)
    cf = CompiledForest.from_sklearn(tree)
    assert np.abs(cf.predict_proba(X, n_threads=1) - expected).max() <= 1e-12


def test_compiled_forest_layout():
    X = np.array([[0.0, 5.0], [1.0, 4.0], [2.0, 3.0], [3.0, 2.0]], dtype=np.float32)
    rf = RandomForestClassifier(n_estimators=3, random_state=0, bootstrap=False)
    rf.fit(X, [0, 0, 1, 1])
    cf = compile_forest(rf)
    assert cf.nodes.dtype == np.int32 and cf.nodes.flags.c_contiguous
    assert cf.n_trees == 3 and cf.n_classes == 2 and cf.n_features == 2
    leaves = cf.feature < 0
    assert cf.values.shape == (leaves.sum(), 2)
    # identical trees share one table whose leaves sum their votes
    votes = cf.values.sum(axis=1)
    np.testing.assert_array_equal(votes, np.round(votes))
    first_leaf = [cf.nodes[np.flatnonzero(leaves & (np.arange(len(leaves)) >= r))[0], 1]
                  for r in cf.roots]
    assert votes[first_leaf].sum() == cf.n_trees and 1 <= cf.n_tables <= cf.n_trees
    # each tree starts at its root and leaves point to distinct value rows
    assert cf.roots[0] == 0 and np.all(np.diff(cf.roots) > 0)
    assert sorted(cf.nodes[leaves, 1]) == list(range(leaves.sum()))


@pytest.mark.parametrize("n_classes", [2, 3])
def test_identical_trees_share_a_table_and_give_the_same_bits(n_classes):
    # separable labels: pure leaves, and most trees split on the same feature
    rng = np.random.default_rng(5)
    X = rng.random((400, 4), dtype=np.float32)
    y = np.minimum((X[:, 0] * n_classes).astype(int), n_classes - 1)
    rf = RandomForestClassifier(n_estimators=40, max_features=None, bootstrap=False,
                                random_state=0).fit(X, y)
    cf = compile_forest(rf)
    assert cf.n_trees == 40 and cf.n_tables < 40
    Z = rng.random((5000, 4), dtype=np.float32)
    for n_threads in (1, 2):
        np.testing.assert_array_equal(forest_predict_proba(rf, Z, n_threads=n_threads),
                                      rf.predict_proba(Z))


def _leaf_masked(cf, X):
    """Probabilities from the leaf-mask kernel (float64 leaf sums) of the same forest."""
    out = np.empty((X.shape[0], cf.n_classes))
    _forest._score_serial(X, *cf.scorer, cf.values, cf.divisor, _forest.BLOCK_ROWS, out)
    return out


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("bootstrap", [False, True])
def test_vote_kernel_counts_pure_leaves_exactly(n_classes, bootstrap):
    # separable labels: every leaf pure, so the class sums are whole votes,
    # counted as integers; the same bits as scikit-learn and as the float64
    # leaf-mask and walking kernels, NaN rows (missing values) included
    rng = np.random.default_rng(7)
    X = rng.random((40 * n_classes, 4), dtype=np.float32)  # trees of at most 32 leaves
    y = np.minimum((X[:, 0] * n_classes).astype(int), n_classes - 1)
    rf = RandomForestClassifier(n_estimators=30, max_features=2, bootstrap=bootstrap,
                                random_state=1).fit(X, y)
    cf = compile_forest(rf)
    assert cf.voter is not None
    weight, class_mask = cf.voter
    assert weight.sum() == cf.n_trees == 30 and class_mask.shape == (cf.n_tables, n_classes)
    Z = rng.random((9000, 4), dtype=np.float32) * 1.2 - 0.1
    Z[::11, 0] = np.nan
    Z[::17, 2] = np.nan
    ref = rf.predict_proba(Z)
    for n_threads in (1, 2):
        np.testing.assert_array_equal(cf.predict_proba(Z, n_threads=n_threads), ref)
    np.testing.assert_array_equal(_leaf_masked(cf, Z), ref)
    np.testing.assert_array_equal(_walking(cf, Z), ref)


def test_vote_kernel_is_not_used_for_impure_leaves_or_wide_trees():
    X = np.array([[0.0], [0.0], [1.0], [2.0]], dtype=np.float32)
    impure = RandomForestClassifier(n_estimators=3, bootstrap=False, random_state=0)
    assert compile_forest(impure.fit(X, [0, 1, 1, 1])).voter is None
    rng = np.random.default_rng(3)
    Xw = rng.random((400, 1), dtype=np.float32)
    wide = DecisionTreeClassifier(random_state=0).fit(Xw, np.arange(400) % 2)
    cf = compile_forest(wide)  # pure leaves, but more than 32: 64-bit masks or walked
    assert cf.voter is None
    np.testing.assert_array_equal(cf.predict_proba(Xw), wide.predict_proba(Xw))


def test_trees_with_impure_leaves_are_not_merged():
    # the same row twice with two labels: a leaf of fraction 0.5 in every tree
    X = np.array([[0.0], [0.0], [1.0], [2.0]], dtype=np.float32)
    rf = RandomForestClassifier(n_estimators=6, bootstrap=False, random_state=0)
    rf.fit(X, [0, 1, 1, 1])
    cf = compile_forest(rf)
    assert cf.n_tables == cf.n_trees == 6
    Z = np.linspace(-1, 3, 50, dtype=np.float32)[:, None]
    np.testing.assert_array_equal(forest_predict_proba(rf, Z, n_threads=1),
                                  rf.predict_proba(Z))


def test_compile_cache_follows_refit():
    X, y = random_data(300, 3, 2, seed=23)
    rf = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y)
    first = compile_forest(rf)
    assert compile_forest(rf) is first
    rf.set_params(n_estimators=5, random_state=1).fit(X, 1 - y)
    second = compile_forest(rf)
    assert second is not first and second.n_trees == 5
    np.testing.assert_array_equal(forest_predict_proba(rf, X), rf.predict_proba(X))


def test_releases_pool_lock_after_errors(monkeypatch):
    X, y = random_data(5000, 3, 2, seed=24)
    rf = RandomForestClassifier(n_estimators=2, random_state=0).fit(X, y)

    def boom(*args):
        raise RuntimeError("kernel failed")

    monkeypatch.setattr(_forest, "_predict_parallel", boom)
    with pytest.raises(RuntimeError, match="kernel failed"):
        forest_predict_proba(rf, X, n_threads=2)
    assert not _forest._POOL_LOCK.locked()


@pytest.mark.parametrize("max_depth", [1, 3, None])
def test_binary_kernel_equals_general_kernel(max_depth):
    # two classes take a specialised kernel (sums in registers): same bits
    X, y = random_data(800, 6, 2, seed=5)
    X[::37, 2] = np.nan
    rf = RandomForestClassifier(n_estimators=9, max_depth=max_depth, random_state=1).fit(X, y)
    cf = compile_forest(rf)
    Xt, _ = random_data(5000, 6, 2, seed=6)
    Xt[::11, 2] = np.nan
    args = (Xt, 0, Xt.shape[0], cf.nodes, cf.nodes.view(np.float32), cf.roots, cf.values,
            cf.divisor)
    general, binary = np.empty((5000, 2)), np.empty((5000, 2))
    _forest._walk_block(*args, general)
    _forest._walk_block_binary(*args, binary)
    np.testing.assert_array_equal(binary, general)
    np.testing.assert_array_equal(binary, rf.predict_proba(Xt))


def _walking(cf, X):
    """Probabilities from the tree-walking kernel of the same compiled forest."""
    out = np.empty((X.shape[0], cf.n_classes))
    _forest._predict_serial(X, cf.nodes, cf.nodes.view(np.float32), cf.roots, cf.values,
                            cf.divisor,
                            _forest.BLOCK_ROWS, out)
    return out


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("max_leaf_nodes, width", [(2, np.uint32), (32, np.uint32),
                                                   (33, np.uint64), (64, np.uint64)])
def test_leaf_mask_kernel_equals_walking_kernel(n_classes, max_leaf_nodes, width):
    # QuickScorer (any tree of at most 64 leaves) finds the same leaves as
    # walking the trees: the same sums, bit for bit, NaN rows included
    X, y = random_data(3000, 5, n_classes, seed=11)
    X[::13, 1] = np.nan
    rf = RandomForestClassifier(n_estimators=7, max_leaf_nodes=max_leaf_nodes,
                                random_state=2).fit(X, y)
    cf = compile_forest(rf)
    assert cf.scorer is not None and cf.scorer[4].dtype == width
    assert any(t.tree_.n_leaves == max_leaf_nodes for t in rf.estimators_)
    Xt, _ = random_data(2000, 5, n_classes, seed=12)
    Xt[::7, 1] = np.nan
    Xt[::5, 3] = np.nan
    scored = cf.predict_proba(Xt, n_threads=1)
    np.testing.assert_array_equal(scored, _walking(cf, Xt))
    np.testing.assert_array_equal(scored, rf.predict_proba(Xt))
    np.testing.assert_array_equal(cf.predict_proba(Xt, n_threads=2), scored)


def test_trees_over_64_leaves_are_walked():
    X, y = random_data(3000, 5, 2, seed=13)
    rf = RandomForestClassifier(n_estimators=3, max_leaf_nodes=65, random_state=0).fit(X, y)
    assert max(t.tree_.n_leaves for t in rf.estimators_) == 65
    cf = compile_forest(rf)
    assert cf.scorer is None
    np.testing.assert_array_equal(cf.predict_proba(X[:500]), rf.predict_proba(X[:500]))
