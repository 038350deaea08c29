import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.linear_model import LogisticRegression

from pixelforest.classify.scribbles import simulate_scribbles
from pixelforest.classify.classifier import PixelClassifier, default_estimator
from pixelforest.classify.pipeline import PredictionPipeline
from pixelforest.errors import (
    ChannelMismatchError,
    InvalidImageError,
    InvalidLabelsError,
    InvalidParameterError,
    NotFittedError,
    ShapeMismatchError,
)
from pixelforest.features import FeatureSpec

SMALL = FeatureSpec(families=("intensity", "gaussian", "dog"),
                    sigmas={"gaussian": (0.7,), "dog": (1.6, 3.0)})


def _blobs(shape=(64, 64), seed=0, n=6):
    """Bright discs on a noisy dark background, with instance labels."""
    rng = np.random.default_rng(seed)
    yy, xx = np.indices(shape)
    labels = np.zeros(shape, np.uint16)
    for i in range(n):
        cy, cx = rng.integers(10, shape[0] - 10), rng.integers(10, shape[1] - 10)
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 < rng.integers(16, 40)] = i + 1
    image = rng.normal(20, 4, shape) + 80 * (labels > 0)
    return image.astype(np.float32), labels


def _clf(**kw):
    return PixelClassifier(SMALL, estimator=default_estimator(n_estimators=10), **kw)


@pytest.fixture(scope="module")
def trained():
    image, labels = _blobs()
    scribbles = simulate_scribbles(labels, random_state=0, fraction=1.0)
    return _clf().fit(image, scribbles), image, labels


def test_fit_predict_segments_blobs(trained):
    clf, image, labels = trained
    pred = clf.predict(image)
    assert pred.shape == image.shape
    assert set(np.unique(pred)) <= {1, 2}
    fg, ref = pred == 2, labels > 0
    assert (fg & ref).sum() / (fg | ref).sum() > 0.8
    proba = clf.predict_proba(image)
    assert proba.shape == image.shape + (2,) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(-1), 1, atol=1e-5)
    np.testing.assert_array_equal(pred, clf.classes_[proba.argmax(-1)])


def test_fitted_attributes(trained):
    clf = trained[0]
    assert clf.spec_ == SMALL
    np.testing.assert_array_equal(clf.classes_, [1, 2])
    assert clf.n_channels_ == 1 and clf.n_features_in_ == 4 == len(clf.feature_names_)
    assert clf.halo_ == SMALL.halo_for(2) == (12, 12)
    assert clf.feature_importances_.shape == (4,)
    by_name = clf.feature_importances_by_name()
    assert set(by_name) == set(SMALL.names)
    assert list(by_name.values()) == sorted(by_name.values(), reverse=True)


def test_class_values_are_kept():
    image, labels = _blobs()
    s = simulate_scribbles(labels, random_state=1)
    relabelled = np.where(s == 1, 7, np.where(s == 2, 3, 0)).astype(np.uint8)
    clf = _clf().fit(image, relabelled)
    np.testing.assert_array_equal(clf.classes_, [3, 7])
    assert set(np.unique(clf.predict(image))) <= {3, 7}


@pytest.mark.parametrize("classes", [[1, 2], [3, 7, 9]])
def test_labels_of_is_argmax_with_ties_to_the_first_class(classes):
    from pixelforest.classify.pipeline import PredictionPipeline

    pipe = PredictionPipeline(spec=SMALL, normalize="robust", estimator=None,
                              classes=np.array(classes, np.uint8), n_channels=1, ndim=2,
                              channel_axis=None)
    proba = np.random.default_rng(1).random((500, len(classes))).astype(np.float32)
    proba[::3, -1] = proba[::3, 0]  # ties
    labels = pipe.labels_of(proba.reshape(20, 25, -1))
    assert labels.dtype == np.uint8 and labels.shape == (20, 25)
    np.testing.assert_array_equal(labels.ravel(), np.array(classes)[np.argmax(proba, axis=1)])


def test_pipeline_block_api_equals_predict_proba(trained):
    clf, image, _ = trained
    pipe = clf.pipeline_
    image_cl = pipe.check_image(image)
    bounds = pipe.statistics(image_cl)
    assert bounds.shape == (1, 4)  # robust: (low, high) and the fill of a constant region
    np.testing.assert_array_equal(pipe.predict_proba_block(image_cl, bounds),
                                  clf.predict_proba(image))
    # a block cut with halo_ gives the interior bit for bit
    h = clf.halo_
    box = (slice(20, 40), slice(25, 45))
    cut = tuple(slice(b.start - m, b.stop + m) for b, m in zip(box, h))
    block = pipe.predict_proba_block(image_cl[cut], bounds)
    np.testing.assert_array_equal(block[h[0]:-h[0], h[1]:-h[1]], clf.predict_proba(image)[box])
    X = np.zeros((3, clf.n_features_in_), np.float32)
    assert pipe.predict_proba_rows(X).shape == (3, 2)


def test_clone_and_determinism():
    image, labels = _blobs(seed=3)
    s = simulate_scribbles(labels, random_state=0)
    clf = _clf(random_state=5)
    twin = clone(clf)
    assert twin.get_params()["random_state"] == 5 and not hasattr(twin, "estimator_")
    a = clf.fit(image, s).predict_proba(image)
    b = twin.fit(image, s).predict_proba(image)
    np.testing.assert_array_equal(a, b)
    other = clone(clf).set_params(random_state=6).fit(image, s)
    assert other.estimator_.random_state != clf.estimator_.random_state
    thresholds = [t.tree_.threshold.tolist() for t in clf.estimator_.estimators_]
    assert thresholds != [t.tree_.threshold.tolist() for t in other.estimator_.estimators_]


def test_multi_image_training_of_different_shapes():
    (i1, l1), (i2, l2) = _blobs((64, 64), seed=1), _blobs((50, 72), seed=2)
    s1, s2 = simulate_scribbles(l1, random_state=0), simulate_scribbles(l2, random_state=0)
    clf = _clf().fit([i1, i2], [s1, s2])
    assert clf.predict(i2).shape == (50, 72)
    # same rows as the concatenation of both images' labelled features
    n_labelled = (s1 > 0).sum() + (s2 > 0).sum()
    est = clf.estimator_
    assert sum(est.estimators_[0].tree_.n_node_samples[:1]) <= n_labelled
    # training on an image with no labels at all is allowed next to labelled ones
    clf2 = _clf().fit([i1, i2], [s1, np.zeros_like(s2)])
    np.testing.assert_array_equal(clf2.predict_proba(i1), _clf().fit(i1, s1).predict_proba(i1))


class _Recorder(BaseEstimator, ClassifierMixin):
    """Keeps the training rows it is given."""

    def fit(self, X, y):
        self.X_, self.y_ = X.copy(), y.copy()
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        return np.full((len(X), len(self.classes_)), 1 / len(self.classes_))


def test_training_rows_are_whole_image_features_of_labelled_pixels():
    # features are computed only on the pieces holding labels; the rows must
    # still equal the whole-image features, bit for bit
    from pixelforest.features import compute_features
    from pixelforest.preprocess.normalize import normalize_robust

    image, labels = _blobs((90, 90), seed=4)
    s = simulate_scribbles(labels, random_state=0)
    s[:40] = 0
    s[40:45, 50:60], s[60:62, 60:70] = 1, 2
    clf = PixelClassifier(SMALL, estimator=_Recorder()).fit(image, s)
    whole = compute_features(normalize_robust(image), SMALL)  # the default normalization
    np.testing.assert_array_equal(clf.estimator_.X_, whole[s > 0])
    np.testing.assert_array_equal(clf.estimator_.y_, s[s > 0])


def test_multichannel_and_3d():
    image, labels = _blobs((48, 48), seed=5)
    rgb = np.stack([image, image * 0.5, 255 - image], axis=-1)
    s = simulate_scribbles(labels, random_state=0)
    clf = _clf(channel_axis=-1).fit(rgb, s)
    assert clf.n_channels_ == 3 and clf.n_features_in_ == 12
    assert clf.feature_names_[4] == "intensity[ch1]"
    assert clf.predict(rgb).shape == (48, 48)
    vol = np.stack([image] * 30)
    s3 = np.zeros(vol.shape, np.uint8)
    s3[15] = s
    clf3 = _clf().fit(vol, s3)
    assert clf3.predict_proba(vol).shape == vol.shape + (2,)
    assert clf3.halo_ == (12, 12, 12)


def test_any_sklearn_classifier():
    image, labels = _blobs()
    s = simulate_scribbles(labels, random_state=0)
    clf = PixelClassifier(SMALL, estimator=LogisticRegression(max_iter=500)).fit(image, s)
    assert clf.predict(image).shape == image.shape
    with pytest.raises(AttributeError, match="feature_importances_"):
        clf.feature_importances_


def test_normalize_options(trained):
    clf, image, _ = trained
    raw = _clf(normalize=None).fit(image, simulate_scribbles(trained[2], random_state=0,
                                                             fraction=1.0))
    assert raw.pipeline_.statistics(image[..., None]) is None
    # percentile normalization makes the model insensitive to a brightness change
    np.testing.assert_array_equal(clf.predict(image * 3 + 10), clf.predict(image))


# -- bad input ----------------------------------------------------------------

def test_not_fitted():
    with pytest.raises(NotFittedError, match="fit"):
        _clf().predict(np.zeros((40, 40)))


def test_labels_shape_differs():
    image, labels = _blobs()
    with pytest.raises(ShapeMismatchError, match="must match"):
        _clf().fit(image, simulate_scribbles(labels)[:-1])


def test_single_class_or_none():
    image, _ = _blobs()
    one = np.zeros(image.shape, np.uint8)
    one[5:10, 5:10] = 1
    with pytest.raises(InvalidLabelsError, match="at least two classes"):
        _clf().fit(image, one)
    with pytest.raises(InvalidLabelsError, match="no labelled pixels"):
        _clf().fit(image, np.zeros(image.shape, np.uint8))


def test_float_and_negative_labels():
    image, labels = _blobs()
    s = simulate_scribbles(labels)
    with pytest.raises(InvalidLabelsError, match="astype"):
        _clf().fit(image, s.astype(np.float32))
    with pytest.raises(InvalidLabelsError, match="negative"):
        _clf().fit(image, s.astype(np.int8) - 1)


def test_channel_count_differs_at_predict(trained):
    clf, image, labels = trained
    with pytest.raises(ChannelMismatchError, match="trained on 1"):
        _rgb_view(clf).predict(np.stack([image] * 2, -1))
    rgb_clf = _clf(channel_axis=-1).fit(np.stack([image] * 3, -1), simulate_scribbles(labels))
    with pytest.raises(ChannelMismatchError, match="trained on 3"):
        rgb_clf.predict(np.stack([image] * 2, -1))


def _rgb_view(clf):
    """The trained single-channel classifier, told that images have channels last."""
    import copy

    view = copy.copy(clf)
    view.channel_axis = -1
    return view


def test_training_images_with_different_channels():
    image, labels = _blobs()
    s = simulate_scribbles(labels)
    with pytest.raises(ChannelMismatchError):
        _clf(channel_axis=-1).fit([np.stack([image] * 3, -1), np.stack([image] * 2, -1)],
                                  [s, s])


def test_image_smaller_than_halo(trained):
    clf = trained[0]
    with pytest.raises(InvalidImageError, match="halo"):
        clf.predict(np.zeros((10, 64), np.float32))
    small = np.zeros((10, 64), np.float32)
    lab = np.zeros(small.shape, np.uint8)
    lab[2, :10], lab[7, :10] = 1, 2
    with pytest.raises(InvalidImageError, match="halo"):
        _clf().fit(small, lab)


def test_list_lengths_differ():
    image, labels = _blobs()
    with pytest.raises(ValueError, match="one label"):
        _clf().fit([image, image], [labels])


def test_compiled_forest_equals_sklearn_on_a_real_image(sample_data):
    from pixelforest import datasets

    image, labels = sample_data(datasets.list_samples(kind="fluorescence")[0])
    scribbles = simulate_scribbles(labels, random_state=0)
    clf = PixelClassifier(estimator=default_estimator(n_estimators=20)).fit(image, scribbles)
    proba = clf.predict_proba(image)
    image_cl = image[..., None]
    feats = clf.pipeline_.features_block(image_cl, clf.pipeline_.statistics(image_cl))
    expected = clf.estimator_.predict_proba(feats.reshape(-1, feats.shape[-1]))
    np.testing.assert_allclose(proba.reshape(-1, 2), expected, rtol=0, atol=1e-6)
    # the compiled kernel ran (its cache holds the fitted forest)
    from pixelforest.forest import inference as _forest

    assert clf.estimator_ in _forest._CACHE


class _RowwiseSoftmax(BaseEstimator, ClassifierMixin):
    """Probabilities that change with every feature value, row by row (no BLAS)."""

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        s = np.tanh(X.astype(np.float64).sum(axis=1) * 1e-3)
        return np.stack([(1 + s) / 2, (1 - s) / 2], axis=1)


@pytest.mark.parametrize("shape,tile", [((67, 95), 20), ((67, 95), (31, 17)), ((70, 61), 500),
                                        ((21, 33, 26), 9)])
@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("estimator", ["forest", "rowwise"])
def test_tiled_in_memory_prediction_is_bit_identical(shape, tile, n_threads, estimator):
    # the row-wise estimator shows any feature change (one pixel less of
    # halo fails this test)
    ndim = len(shape)
    image, labels = _blobs(shape[-2:], seed=2)
    if ndim == 3:
        image = np.stack([np.roll(image, k, axis=0) for k in range(shape[0])])
        labels = np.stack([np.roll(labels, k, axis=0) for k in range(shape[0])])
    image = image[tuple(slice(0, n) for n in shape)]
    labels = labels[tuple(slice(0, n) for n in shape)]
    scribbles = simulate_scribbles(labels, random_state=0, fraction=1.0)
    if estimator == "forest":
        clf = _clf()
    else:
        clf = PixelClassifier(SMALL, estimator=_RowwiseSoftmax())
    clf.fit(image, scribbles)
    image_cl = image[..., None]
    pipe = clf.pipeline_
    whole = pipe.predict_proba_block(image_cl, pipe.statistics(image_cl))
    out = np.full(shape + (2,), np.nan, np.float32)
    seen = np.zeros(shape, int)

    def emit(where, proba):
        out[where] = proba
        seen[where] += 1

    pipe.run_blocks(image_cl, emit, block=tile, n_threads=n_threads)
    assert np.all(seen == 1)  # every pixel exactly once
    np.testing.assert_array_equal(out, whole)
    np.testing.assert_array_equal(clf.predict_proba(image), whole)
    np.testing.assert_array_equal(clf.predict(image), clf.classes_[np.argmax(whole, axis=-1)])


def test_block_crop_gives_the_same_pixels(trained):
    clf, image, _ = trained
    image_cl = image[..., None]
    pipe = clf.pipeline_
    bounds = pipe.statistics(image_cl)
    whole = pipe.predict_proba_block(image_cl, bounds)
    crop = (slice(3, 41), slice(17, 64))
    np.testing.assert_array_equal(pipe.predict_proba_block(image_cl, bounds, crop=crop),
                                  whole[crop])


def test_errors_in_a_tile_propagate(trained, monkeypatch):
    clf, image, _ = trained

    def broken(*args, **kwargs):
        raise RuntimeError("tile failed")

    monkeypatch.setattr(PredictionPipeline, "predict_proba_block", broken)
    with pytest.raises(RuntimeError, match="tile failed"):
        clf.pipeline_.run_blocks(image[..., None], lambda *a: None, block=16, n_threads=2)


def test_default_features_include_edge_strength():
    # the measured default (benchmarks/quality.py, transfer.py): intensity, fine
    # Gaussians, differences of Gaussians, the gradient magnitude at 0.7 and 1 px
    # and the Laplacian of Gaussian at 0.7 and 1 px
    image, labels = _blobs()
    clf = PixelClassifier(estimator=default_estimator(n_estimators=5)).fit(
        image, simulate_scribbles(labels, random_state=0))
    assert clf.spec_ == FeatureSpec() == FeatureSpec.preset("default")
    assert clf.feature_names_[-4:] == ["gradient(sigma=0.7)[ch0]", "gradient(sigma=1)[ch0]",
                                       "log(sigma=0.7)[ch0]", "log(sigma=1)[ch0]"]
    assert clf.n_features_in_ == 13
    # the edge features reach 4 px: the halo is still the largest DoG's
    assert clf.halo_ == (42, 42)  # 4 x 10.48576, rounded


def test_default_beats_otsu_on_a_real_image(sample_data):
    # one fluorescence image (scribble seed 0) where both parts of the default
    # matter: placing the splits in the unlabelled pixels' valley lifts it
    # above Otsu, the edge features lift the midpoint splits (0.737 -> 0.769)
    from pixelforest.evaluate.metrics import iou
    from pixelforest.segment.unsupervised import otsu_segment

    image, labels = sample_data("942d56861fc8")
    scribbles = simulate_scribbles(labels, random_state=0)
    ref = labels > 0

    def score(**kw):
        return iou(PixelClassifier(**kw).fit(image, scribbles).predict(image) == 2, ref)

    def spec(*families):
        return FeatureSpec(families=("intensity",) + families,
                           sigmas={f: FeatureSpec().sigmas_for(f) for f in families})

    otsu = iou(otsu_segment(image) == 1, ref)
    # split_placement="midpoint" keeps scikit-learn's midpoint splits
    midpoints = score(split_placement="midpoint")
    assert score() > otsu > midpoints
    # the gradient magnitude lifts midpoint splits; the Laplacian of Gaussian
    # (in the default since issue 13) needs the valley placement: with
    # midpoint splits it scores lower on this image (0.720 against 0.769)
    edges = score(features=spec("gaussian", "dog", "gradient"), split_placement="midpoint")
    assert edges > score(features=spec("gaussian", "dog"), split_placement="midpoint")


def test_default_forest_places_splits_in_the_unlabelled_valley():
    image, labels = _blobs((80, 80), seed=6, n=8)
    image = __import__("scipy").ndimage.gaussian_filter(image, 2)  # soft outlines
    s = simulate_scribbles(labels, random_state=0)
    placed = PixelClassifier(SMALL).fit(image, s)
    plain = PixelClassifier(SMALL, split_placement="midpoint").fit(image, s)
    assert placed.estimator_.get_params() == plain.estimator_.get_params()
    t_placed = np.concatenate([t.tree_.threshold for t in placed.estimator_.estimators_])
    t_plain = np.concatenate([t.tree_.threshold for t in plain.estimator_.estimators_])
    # same trees (features, structure), thresholds moved ...
    np.testing.assert_array_equal(
        np.concatenate([t.tree_.feature for t in placed.estimator_.estimators_]),
        np.concatenate([t.tree_.feature for t in plain.estimator_.estimators_]))
    assert not np.array_equal(t_placed, t_plain)
    # ... but never across a labelled pixel: each tree still classifies every
    # labelled pixel as before
    pipe = placed.pipeline_
    feats = pipe.features_block(image[..., None], pipe.statistics(image[..., None]))
    X = feats[s > 0]
    for a, b in zip(placed.estimator_.estimators_, plain.estimator_.estimators_):
        np.testing.assert_array_equal(a.predict(X), b.predict(X))
    # the outline moves towards the reference (the midpoints over-segment)
    ref = labels > 0

    def iou(pred):
        return (pred & ref).sum() / (pred | ref).sum()

    assert iou(placed.predict(image) == 2) > iou(plain.predict(image) == 2)
    # deterministic for a given random_state, different for another
    twin = PixelClassifier(SMALL).fit(image, s)
    np.testing.assert_array_equal(
        np.concatenate([t.tree_.threshold for t in twin.estimator_.estimators_]), t_placed)
    other = PixelClassifier(SMALL, random_state=1).fit(image, s)
    assert not np.array_equal(
        np.concatenate([t.tree_.threshold for t in other.estimator_.estimators_]), t_placed)


def test_default_fit_memory_does_not_grow_with_the_number_of_images():
    # placing the splits samples 50 000 pixels over all the training images
    # together, and computes one whole image's stack at a time
    import tracemalloc

    from pixelforest.datasets import synthetic_nuclei

    images, scribbles = [], []
    for seed in range(6):
        image, labels = synthetic_nuclei((256, 256), n=12, seed=seed)
        images.append(image)
        scribbles.append(simulate_scribbles(labels, random_state=seed))

    def peak(n):
        clf = PixelClassifier(SMALL)
        tracemalloc.start()
        try:
            clf.fit(images[:n], scribbles[:n])
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    one, six = peak(1), peak(6)
    labelled = sum(int((s > 0).sum()) for s in scribbles)
    stack = 256 * 256 * SMALL.n_features(1, 2) * 4
    assert six < one + 2 * labelled * (SMALL.n_features(1, 2) * 4 + 64)
    assert six < one + 2 * stack


def test_default_fit_equals_fit_on_the_whole_feature_stack(monkeypatch):
    # the default forest samples pixels of the whole image to place its
    # splits; computing only the pieces that hold labelled or sampled pixels
    # must give the model the whole stack gives, bit for bit
    import pixelforest.classify.classifier as classifier
    from pixelforest.features.compute import features_of_block

    image, labels = _blobs((530, 260), seed=8, n=40)
    s = simulate_scribbles(labels, random_state=1)
    fast = PixelClassifier(SMALL).fit(image, s)

    def whole_stack_rows(image_cl, spec, index, n_threads=None):
        feats = features_of_block(image_cl, spec)
        return feats.reshape(-1, feats.shape[-1])[index]

    monkeypatch.setattr(classifier, "features_at", whole_stack_rows)
    slow = PixelClassifier(SMALL).fit(image, s)
    for a, b in zip(fast.estimator_.estimators_, slow.estimator_.estimators_):
        np.testing.assert_array_equal(a.tree_.threshold, b.tree_.threshold)
        np.testing.assert_array_equal(a.tree_.value, b.tree_.value)
    np.testing.assert_array_equal(fast.predict_proba(image), slow.predict_proba(image))


def test_fit_is_the_same_on_one_or_two_threads(monkeypatch):
    # the default forest grows its trees on every core, then predicts with
    # n_jobs=1: the model does not depend on the number of threads
    image, labels = _blobs((80, 90), seed=9)
    s = simulate_scribbles(labels, random_state=0)
    models = []
    for n in ("1", "2"):
        monkeypatch.setenv("PIXELFOREST_NUM_THREADS", n)
        models.append(PixelClassifier(SMALL).fit(image, s))
    assert models[0].estimator_.n_jobs == models[1].estimator_.n_jobs == 1
    for a, b in zip(models[0].estimator_.estimators_, models[1].estimator_.estimators_):
        np.testing.assert_array_equal(a.tree_.threshold, b.tree_.threshold)
        np.testing.assert_array_equal(a.tree_.feature, b.tree_.feature)


@pytest.mark.parametrize("where", [(slice(0, 10), slice(5, 64)), (slice(30, 64), slice(0, 7)),
                                   (slice(17, 18), slice(40, 41))])
def test_predict_region_equals_the_same_pixels_of_the_whole_image(trained, where):
    clf, image, _ = trained
    pipe = clf.pipeline_
    image_cl = pipe.check_image(image)
    stats = pipe.statistics(image_cl)
    np.testing.assert_array_equal(pipe.predict_region(image_cl, where, stats),
                                  clf.predict(image)[where])
    np.testing.assert_array_equal(
        pipe.predict_region(image_cl, where, stats, probabilities=True, n_threads=1),
        clf.predict_proba(image)[where])


def test_pipeline_is_immutable_and_travels(trained):
    import pickle

    clf, image, _ = trained
    pipe = clf.pipeline_
    with pytest.raises(AttributeError, match="immutable"):
        pipe.normalize = None
    with pytest.raises(ValueError):
        pipe.classes[0] = 9
    again = pickle.loads(pickle.dumps(pipe))
    image_cl = again.check_image(image)
    np.testing.assert_array_equal(again.predict(image_cl), clf.predict(image))


def test_n_jobs_does_not_change_results(trained):
    clf, image, labels = trained
    s = simulate_scribbles(labels, random_state=0)
    one = _clf(n_jobs=1).fit(image, s)
    two = _clf(n_jobs=2).fit(image, s)
    np.testing.assert_array_equal(one.predict_proba(image), two.predict_proba(image))
    with pytest.raises(InvalidParameterError, match="n_threads|n_jobs"):
        _clf(n_jobs=0).fit(image, s)
    with pytest.raises(InvalidParameterError, match="split_placement"):
        _clf(split_placement="middle").fit(image, s)


def test_split_placement_keeps_a_split_whose_pixels_are_too_close_to_histogram():
    # unlabelled values a float32 step apart cannot make Otsu's 256 bins: the
    # split keeps scikit-learn's threshold instead of failing the fit
    from sklearn.ensemble import RandomForestClassifier

    from pixelforest.forest.split_placement import place_splits

    X = np.array([[0.0], [0.0], [2.0], [2.0]], np.float32)
    forest = RandomForestClassifier(1, bootstrap=False, random_state=0).fit(X, [1, 1, 2, 2])
    one = np.float32(1.0)
    U = np.array([[one], [np.nextafter(one, np.float32(2))]] * 10, np.float32)
    before = forest.estimators_[0].tree_.threshold.copy()
    place_splits(forest, X, U)
    np.testing.assert_array_equal(forest.estimators_[0].tree_.threshold, before)


@pytest.mark.parametrize("families,side", [(None, (64, 128, 128)),
                                           (("gaussian", "hessian", "structure"), (70, 96, 96))])
def test_3d_prediction_blocks_fit_one_feature_block(families, side):
    # 64 x 128 x 128 blocks for the default features, cubes of 96 for many columns
    from pixelforest.datasets import synthetic_nuclei

    image, labels = synthetic_nuclei((70, 140, 140), n=6, seed=2)
    spec = FeatureSpec(sigmas=(1.0, 2.0)) if families is None else \
        FeatureSpec(families=families, sigmas=(1.0, 1.5, 2.0))
    clf = PixelClassifier(spec, estimator=default_estimator(n_estimators=3))
    clf.fit(image, simulate_scribbles(labels, random_state=0))
    pipe = clf.pipeline_
    assert (pipe.n_features > 16) == (families is not None)
    seen, parts = [], np.zeros(image.shape + (2,), np.float32)

    def emit(where, result):
        seen.append(tuple(s.stop - s.start for s in where))
        parts[where] = result

    pipe.run_blocks(pipe.check_image(image), emit, n_threads=2)
    assert max(seen) == side
    np.testing.assert_array_equal(parts, clf.predict_proba(image))
