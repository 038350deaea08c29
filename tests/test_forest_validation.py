import numpy as np
import pytest
from sklearn.ensemble import (
    BaggingClassifier,
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier, ExtraTreeClassifier
from sklearn.tree._tree import Tree

from pixelforest.errors import ModelFileError
from pixelforest.forest.validation import ADVICE, check_forest, check_tree


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5)).astype(np.float32)
    y = np.where(X[:, 0] + 0.5 * X[:, 1] + rng.normal(0, 0.5, 300) > 0, 3, 8)
    return X, y


@pytest.mark.parametrize("estimator", [
    RandomForestClassifier(5, random_state=0),
    ExtraTreesClassifier(5, random_state=0),
    DecisionTreeClassifier(random_state=0),
    ExtraTreeClassifier(random_state=0),
    DecisionTreeClassifier(max_leaf_nodes=9, random_state=0),  # best first: not preorder
    DecisionTreeClassifier(ccp_alpha=0.01, random_state=0),     # pruned
    RandomForestClassifier(3, max_depth=1, random_state=0),
], ids=lambda e: f"{type(e).__name__}-{e.get_params().get('max_leaf_nodes')}")
def test_fitted_trees_pass(estimator, data):
    X, y = data
    estimator.fit(X, y)
    check_forest(estimator, 5, [3, 8])


@pytest.mark.parametrize("estimator", [
    LogisticRegression(),
    make_pipeline(StandardScaler(), LogisticRegression()),
    HistGradientBoostingClassifier(max_iter=3),
])
def test_estimators_without_trees_pass_untouched(estimator, data):
    X, y = data
    estimator.fit(X, y)
    before = estimator.predict_proba(X)
    check_forest(estimator, 5, [3, 8])
    np.testing.assert_array_equal(estimator.predict_proba(X), before)


def test_nested_trees_are_checked(data):
    X, y = data
    for est in (BaggingClassifier(DecisionTreeClassifier(), n_estimators=3, random_state=0),
                GradientBoostingClassifier(n_estimators=3, random_state=0),
                make_pipeline(StandardScaler(), RandomForestClassifier(3, random_state=0))):
        est.fit(X, y)
        check_forest(est, 5, [3, 8])
    bagging = BaggingClassifier(DecisionTreeClassifier(), n_estimators=3,
                                random_state=0).fit(X, y)
    bagging.estimators_[2].tree_.feature[0] = 50
    with pytest.raises(ModelFileError, match=r"estimator\.estimators_\[2\]\.tree_, node 0: "
                                             "it tests feature 50"):
        check_forest(bagging, 5, [3, 8])
    boosting = GradientBoostingClassifier(n_estimators=3, random_state=0).fit(X, y)
    boosting.estimators_[1, 0].tree_.children_right[0] = 10**6
    with pytest.raises(ModelFileError, match="right child 1000000 is out of range"):
        check_forest(boosting, 5, [3, 8])


def test_model_level_mismatches(data):
    X, y = data
    forest = RandomForestClassifier(3, random_state=0).fit(X, y)
    with pytest.raises(ModelFileError, match="expects 5 features, but the model computes 6"):
        check_forest(forest, 6, [3, 8])
    with pytest.raises(ModelFileError, match=r"its classes \[3, 8\] differ from the model's "
                                             r"\[3, 9\]"):
        check_forest(forest, 5, [3, 9])
    with pytest.raises(ModelFileError, match="n_classes_ 2, but the model has 3 classes"):
        check_forest(forest, 5, [3, 8, 9])


def test_message_is_one_line_naming_tree_node_and_fix(data):
    X, y = data
    forest = RandomForestClassifier(4, random_state=0).fit(X, y)
    forest.estimators_[3].tree_.threshold[0] = np.nan
    with pytest.raises(ModelFileError) as err:
        check_forest(forest, 5, [3, 8], source="m.skops")
    message = str(err.value)
    assert message == (f"m.skops: tree 3 of 4, node 0: its threshold is nan, not a finite "
                       f"number; {ADVICE}")
    assert "\n" not in message


def _chain(depth, n_features=1):
    """A valid tree of the given depth: every left child is a leaf (a caterpillar)."""
    n = 2 * depth + 1
    template = DecisionTreeClassifier().fit([[0.0] * n_features, [1.0] * n_features],
                                            [0, 1]).tree_
    state = template.__getstate__()
    nodes = np.zeros(n, dtype=state["nodes"].dtype)
    nodes["left_child"] = nodes["right_child"] = -1
    nodes["feature"], nodes["threshold"] = -2, -2.0
    internal = np.arange(0, n - 1, 2)
    nodes["left_child"][internal] = internal + 1
    nodes["right_child"][internal] = internal + 2
    nodes["feature"][internal] = 0
    nodes["threshold"][internal] = np.arange(internal.size, dtype=float)
    values = np.full((n, 1, 2), 0.5)
    tree = Tree(n_features, np.array([2], dtype=np.intp), 1)
    tree.__setstate__({"max_depth": depth, "node_count": n, "nodes": nodes, "values": values})
    return tree


def test_deep_tree_is_checked_without_recursion():
    check_tree(_chain(20_000), n_features=1, n_classes=2)  # deeper than Python's stack
    shallow = _chain(50)
    shallow.__setstate__({**shallow.__getstate__(), "max_depth": 3})
    with pytest.raises(ModelFileError, match="max_depth 3 is less than its depth 50"):
        check_tree(shallow, n_features=1, n_classes=2)


def test_not_a_tree():
    with pytest.raises(ModelFileError, match="it is a NoneType, not a fitted tree"):
        check_tree(None, n_features=1)
