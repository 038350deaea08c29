"""The live-training engine behind the napari widget (no napari needed).

:class:`pixelforest.napari.live.LiveTrainer` must fit exactly what
``PixelClassifier.fit`` fits from the same scribbles while featurizing only
new pixels, and predict regions exactly.
"""

import numpy as np
import pytest

from pixelforest import PixelClassifier
from pixelforest.datasets import synthetic_nuclei
from pixelforest.errors import Cancelled, InvalidLabelsError
from pixelforest.features import FeatureSpec
from pixelforest.features.compute import features_at
from pixelforest.napari.live import (
    LiveTrainer,
    _rows_near,
    plan_regions,
    uncertainty,
)

SPEC = FeatureSpec(sigmas=(1.0, 2.0))


@pytest.fixture(scope="module")
def nuclei():
    image, labels = synthetic_nuclei((96, 120), 12, 3)
    scribbles = np.zeros(labels.shape, np.uint8)
    scribbles[2:4, 5:100] = 1
    ys, xs = np.nonzero(labels == labels.max())
    scribbles[ys[len(ys) // 2], xs[len(xs) // 2]] = 2
    return image, labels, scribbles


def _same_model(clf, ref, image):
    assert np.array_equal(clf.predict(image), ref.predict(image))
    assert np.array_equal(clf.predict_proba(image), ref.predict_proba(image))
    assert clf.get_params() == ref.get_params()


def test_import_needs_no_napari():
    import subprocess
    import sys

    code = ("import sys, pixelforest.napari, pixelforest.napari.live; "
            "assert 'napari' not in sys.modules and 'qtpy' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_stroke_by_stroke_equals_fit_from_scratch(nuclei):
    image, labels, scribbles = nuclei
    trainer = LiveTrainer(PixelClassifier(SPEC))
    current = scribbles.copy()
    trainer.fit([("a", image, current)])
    first = trainer.last_fit["featurized"]
    # new strokes: only their pixels are featurized
    current[90:93, 10:60] = 1
    ys, xs = np.nonzero(labels == 1)
    current[ys[:5], xs[:5]] = 2
    clf = trainer.fit([("a", image, current)])
    assert trainer.last_fit["featurized"] == 150 + 5
    assert first > 150
    _same_model(clf, PixelClassifier(SPEC).fit(image, current), image)


def test_erasing_uses_only_the_remaining_pixels(nuclei):
    image, _, scribbles = nuclei
    trainer = LiveTrainer(PixelClassifier(SPEC))
    current = scribbles.copy()
    current[60:62, 5:50] = 1
    trainer.fit([("a", image, current)])
    current[60:62, 5:30] = 0                      # erase part of a stroke
    clf = trainer.fit([("a", image, current)])
    assert trainer.last_fit["featurized"] == 0   # rows of what is left are cached
    _same_model(clf, PixelClassifier(SPEC).fit(image, current), image)


def test_cancelled_fit_leaves_the_cache_exact(nuclei):
    image, _, scribbles = nuclei
    trainer = LiveTrainer(PixelClassifier(SPEC))
    with pytest.raises(Cancelled):
        trainer.fit([("a", image, scribbles)], cancelled=lambda: True)
    calls = iter([False, True])
    current = scribbles.copy()
    current[50:52, 5:40] = 1
    with pytest.raises(Cancelled):  # cancelled after the rows were cached
        trainer.fit([("a", image, current)], cancelled=lambda: next(calls))
    clf = trainer.fit([("a", image, current)])
    _same_model(clf, PixelClassifier(SPEC).fit(image, current), image)


def test_several_images_and_default_settings():
    images, scribbles = [], []
    for seed in (0, 1):
        image, labels = synthetic_nuclei((80, 90), 8, seed)
        s = np.zeros(labels.shape, np.uint8)
        s[1:3, 2:80] = 1
        s[labels == 1] = 2
        images.append(image)
        scribbles.append(s)
    empty = np.zeros_like(scribbles[0])
    trainer = LiveTrainer()
    data = [("a", images[0], scribbles[0]), ("b", images[1], empty), ("c", images[1], scribbles[1])]
    clf = trainer.fit(data)
    assert trainer.last_fit["images"] == 2
    ref = PixelClassifier().fit([images[0], images[1]], [scribbles[0], scribbles[1]])
    assert clf.get_params() == PixelClassifier().get_params()
    for image in images:
        assert np.array_equal(clf.predict(image), ref.predict(image))


def test_rgb_and_3d():
    image, labels = synthetic_nuclei((20, 48, 48), 6, 0)
    s = np.zeros(labels.shape, np.uint8)
    s[10, 1:3, 2:40] = 1
    s[10][labels[10] > 0] = 2
    clf = LiveTrainer(PixelClassifier(SPEC)).fit([("v", image, s)])
    assert np.array_equal(clf.predict(image), PixelClassifier(SPEC).fit(image, s).predict(image))
    grey, labels = synthetic_nuclei((64, 64), 6, 2)
    rgb = np.stack([grey, grey // 2, 255 - grey // 4], axis=-1)
    s = np.zeros(labels.shape, np.uint8)
    s[1:3, 2:60] = 1
    s[labels > 0] = 2
    trainer = LiveTrainer(PixelClassifier(SPEC, channel_axis=-1))
    clf = trainer.fit([("rgb", rgb, s)])
    ref = PixelClassifier(SPEC, channel_axis=-1).fit(rgb, s)
    assert np.array_equal(clf.predict(rgb), ref.predict(rgb))


def test_a_new_setting_or_image_drops_the_cache(nuclei):
    image, _, scribbles = nuclei
    trainer = LiveTrainer(PixelClassifier(SPEC))
    trainer.fit([("a", image, scribbles)])
    trainer.classifier = PixelClassifier("small")
    clf = trainer.fit([("a", image, scribbles)])
    assert trainer.last_fit["featurized"] > int(np.count_nonzero(scribbles))
    _same_model(clf, PixelClassifier("small").fit(image, scribbles), image)
    other = image[::-1].copy()
    clf = trainer.fit([("a", other, scribbles)])
    _same_model(clf, PixelClassifier("small").fit(other, scribbles), other)


def test_one_class_is_refused(nuclei):
    image, _, _ = nuclei
    s = np.zeros(image.shape, np.uint8)
    s[3, 3:9] = 1
    with pytest.raises(InvalidLabelsError, match="single class"):
        LiveTrainer().fit([("a", image, s)])
    with pytest.raises(InvalidLabelsError, match="no labelled"):
        LiveTrainer().fit([("a", image, np.zeros_like(s))])


@pytest.mark.parametrize("spec", [SPEC, FeatureSpec.preset("ilastik")], ids=["small", "ilastik"])
def test_stroke_rows_equal_features_at(spec):
    rng = np.random.default_rng(0)
    norm = rng.random((300, 400, 2)).astype(np.float32)
    for index in (np.sort(rng.choice(300 * 400, 200, replace=False)),
                  np.arange(4 * 400 + 3, 4 * 400 + 390), np.array([0, 399, 299 * 400 + 399])):
        assert np.array_equal(_rows_near(norm, spec, index, 2),
                              features_at(norm, spec, index, n_threads=2))


def test_regions_visible_first_and_exact(nuclei):
    image, _, scribbles = nuclei
    trainer = LiveTrainer(PixelClassifier(SPEC))
    clf = trainer.fit([("a", image, scribbles)])
    seen = []
    visible = (slice(20, 50), slice(30, 100))
    labels, unc = trainer.predict(clf, "a", image, visible=visible, block=32,
                                  emit=lambda where, lab, u: seen.append(where))
    assert seen[0] == visible
    covered = np.zeros(image.shape, int)
    for where in seen:
        covered[where] += 1
    assert (covered == 1).all()
    assert np.array_equal(labels, clf.predict(image))
    assert np.array_equal(unc, uncertainty(clf.predict_proba(image)))
    with pytest.raises(Cancelled):
        trainer.predict(clf, "a", image, cancelled=lambda: True)


def test_plan_regions_cover_3d_once():
    regions = plan_regions((5, 40, 30), (slice(2, 3), slice(0, 25), slice(10, 20)), block=16)
    covered = np.zeros((5, 40, 30), int)
    for where in regions:
        covered[where] += 1
    assert (covered == 1).all()
    assert regions[0] == (slice(2, 3), slice(0, 25), slice(10, 20))
    assert len(plan_regions((10, 10), None, block=4)) == 9


def test_uncertainty_of_three_classes():
    proba = np.array([[0.5, 0.3, 0.2], [0.34, 0.33, 0.33]], np.float32)
    np.testing.assert_allclose(uncertainty(proba), [0.8, 0.99], rtol=1e-6)


def test_stroke_scores_leave_one_stroke_out(nuclei):
    image, labels, _ = nuclei
    scribbles = np.zeros(labels.shape, np.uint8)
    scribbles[2:4, 5:100] = 1
    scribbles[90:92, 5:100] = 1
    for k in (1, 2, 3):
        ys, xs = np.nonzero(labels == k)
        scribbles[ys[len(ys) // 2], xs[len(xs) // 2]] = 2
    trainer = LiveTrainer(PixelClassifier(SPEC))
    data = [("a", image, scribbles)]
    scores = trainer.stroke_scores(data)
    assert scores["strokes"] == 5 and scores["skipped"] == 0
    assert set(scores["per_class"]) == {1, 2}
    assert 0.5 <= scores["mean"] <= 1.0
    # the held-out fits leave the live model exact
    clf = trainer.fit(data)
    _same_model(clf, PixelClassifier(SPEC).fit(image, scribbles), image)
    lone = np.zeros_like(scribbles)
    lone[2:4, 5:100], lone[50, 50] = 1, 2
    assert trainer.stroke_scores([("a", image, lone)])["skipped"] == 2


# -- the feature-block store -------------------------------------------------

@pytest.fixture
def small_blocks(monkeypatch):
    """A grid of 32 x 32 blocks, so that the test images span many blocks."""
    from pixelforest.napari import live

    monkeypatch.setitem(live._CACHE_BLOCK, 2, (32, 32))
    monkeypatch.setitem(live._CACHE_BLOCK, 3, (4, 16, 16))


def _block_bytes(image, spec, side=32):
    return side * side * spec.n_features(1, image.ndim) * 4


def _image_bytes(image, spec):
    return image.size * spec.n_features(1, image.ndim) * 4


def test_cached_blocks_predict_exactly_and_are_reused(nuclei, small_blocks):
    image, labels, scribbles = nuclei
    trainer = LiveTrainer(PixelClassifier(SPEC))
    current = scribbles.copy()
    clf = trainer.fit([("a", image, current)])
    # the split-placement sample reaches every block: all featurized once
    n_blocks = 3 * 4
    assert trainer.cache_info()["blocks"] == n_blocks
    assert trainer.cache_info()["computed"] == n_blocks
    visible = (slice(17, 70), slice(5, 101))          # across block borders
    labels_, unc = trainer.predict(clf, "a", image, visible=visible, block=40)
    assert np.array_equal(labels_, clf.predict(image))
    assert np.array_equal(unc, uncertainty(clf.predict_proba(image)))
    lab, u = trainer.predict_region(clf, "a", image, (slice(31, 33), slice(0, 120)))
    assert np.array_equal(lab, clf.predict(image)[31:33])
    # a new stroke: only the forest runs, on stored features
    current[90:93, 10:60] = 1
    clf = trainer.fit([("a", image, current)])
    labels_, _ = trainer.predict(clf, "a", image, visible=visible)
    assert trainer.cache_info()["computed"] == n_blocks
    assert np.array_equal(labels_, PixelClassifier(SPEC).fit(image, current).predict(image))


def test_rows_from_blocks_equal_features_at(small_blocks):
    rng = np.random.default_rng(1)
    image = rng.random((100, 90)).astype(np.float32)
    trainer = LiveTrainer(PixelClassifier(SPEC, normalize=None))
    entry = trainer.cache("r", image)
    norm = image[..., None]
    index = np.sort(rng.choice(image.size, 300, replace=False))
    for compute in (False, True, False):     # nothing stored, then all, then from the store
        rows = entry.rows_at(index, n_threads=2, compute=compute)
        assert np.array_equal(rows, features_at(norm, SPEC, index, n_threads=1))
    trainer.forget("r")
    entry = trainer.cache("r", image)
    entry.block_features((1, 1), n_threads=1)    # one block stored, the others not
    rows = entry.rows_at(index, n_threads=2, compute=False)
    assert np.array_equal(rows, features_at(norm, SPEC, index, n_threads=1))


def test_budget_respected_and_view_kept(nuclei, small_blocks):
    image, _, scribbles = nuclei
    budget = 4 * _block_bytes(image, SPEC)
    trainer = LiveTrainer(PixelClassifier(SPEC), cache_bytes=budget)
    current = scribbles.copy()
    clf = trainer.fit([("a", image, current)])
    info = trainer.cache_info()
    assert info["budget"] == budget and info["bytes"] <= budget and info["blocks"] >= 4
    visible = (slice(0, 64), slice(0, 64))            # 2 x 2 blocks: they fit
    ref = clf.predict(image)
    labels_, _ = trainer.predict(clf, "a", image, visible=visible)
    assert np.array_equal(labels_, ref)
    assert trainer.cache_info()["bytes"] <= budget
    # the rest of the image evicted other blocks, never the view's
    before = trainer.cache_info()["computed"]
    lab, _ = trainer.predict_region(clf, "a", image, visible)
    assert trainer.cache_info()["computed"] == before
    assert np.array_equal(lab, ref[:64, :64])
    # a view larger than the budget: computed, exact, the budget still holds
    current[60:62, 5:50] = 1
    clf = trainer.fit([("a", image, current)])
    labels_, _ = trainer.predict(clf, "a", image, visible=(slice(0, 96), slice(0, 120)))
    assert trainer.cache_info()["bytes"] <= budget
    assert np.array_equal(labels_, PixelClassifier(SPEC).fit(image, current).predict(image))


def test_no_budget_caches_nothing_and_stays_exact(nuclei, small_blocks):
    image, _, scribbles = nuclei
    trainer = LiveTrainer(PixelClassifier(SPEC), cache_bytes=0)
    clf = trainer.fit([("a", image, scribbles)])
    labels_, _ = trainer.predict(clf, "a", image, visible=(slice(10, 50), slice(0, 60)))
    assert trainer.cache_info()["blocks"] == 0 and trainer.cache_info()["bytes"] == 0
    assert np.array_equal(labels_, PixelClassifier(SPEC).fit(image, scribbles).predict(image))


def test_store_dropped_on_feature_change_new_image_and_forget(nuclei, small_blocks):
    image, _, scribbles = nuclei
    trainer = LiveTrainer(PixelClassifier(SPEC))
    clf = trainer.fit([("a", image, scribbles)])
    trainer.predict(clf, "a", image)
    held = trainer.cache_info()["bytes"]
    assert held == _image_bytes(image, SPEC)
    # another feature spec: the blocks of the old one are dropped
    trainer.classifier = PixelClassifier("small")
    clf = trainer.fit([("a", image, scribbles)])
    small = FeatureSpec.resolve("small")
    assert trainer.cache_info()["bytes"] == _image_bytes(image, small)
    labels_, _ = trainer.predict(clf, "a", image)
    assert np.array_equal(labels_, PixelClassifier("small").fit(image, scribbles).predict(image))
    # a new array under the same key: its own blocks only
    other = np.ascontiguousarray(image[:, ::-1])
    clf = trainer.fit([("a", other, scribbles)])
    assert trainer.cache_info()["bytes"] == _image_bytes(image, small)
    labels_, _ = trainer.predict(clf, "a", other)
    assert np.array_equal(labels_, PixelClassifier("small").fit(other, scribbles).predict(other))
    trainer.forget("a")
    assert trainer.cache_info() == dict(trainer.cache_info(), bytes=0, blocks=0, images=0)


def test_erasing_keeps_the_blocks_and_stays_exact(nuclei, small_blocks):
    image, _, scribbles = nuclei
    trainer = LiveTrainer(PixelClassifier(SPEC))
    current = scribbles.copy()
    current[60:62, 5:50] = 1
    clf = trainer.fit([("a", image, current)])
    trainer.predict(clf, "a", image)
    computed = trainer.cache_info()["computed"]
    current[60:62, 5:30] = 0                         # erase part of a stroke
    clf = trainer.fit([("a", image, current)])
    labels_, unc = trainer.predict(clf, "a", image, visible=(slice(40, 80), slice(0, 64)))
    assert trainer.cache_info()["computed"] == computed
    ref = PixelClassifier(SPEC).fit(image, current)
    assert np.array_equal(labels_, ref.predict(image))
    assert np.array_equal(unc, uncertainty(ref.predict_proba(image)))


def test_cancelled_prediction_leaves_the_store_exact(nuclei, small_blocks):
    image, _, scribbles = nuclei
    budget = 5 * _block_bytes(image, SPEC)
    trainer = LiveTrainer(PixelClassifier(SPEC), cache_bytes=budget)
    current = scribbles.copy()
    clf = trainer.fit([("a", image, current)])
    for stop_after in (0, 1, 3, 7):
        calls = iter(range(100))
        with pytest.raises(Cancelled):    # cancelled between regions or blocks
            trainer.predict(clf, "a", image, visible=(slice(20, 60), slice(30, 90)), block=32,
                            cancelled=lambda: next(calls) >= stop_after)
        current[80 + stop_after:82 + stop_after, 5:60] = 1      # the stroke that cancelled it
        clf = trainer.fit([("a", image, current)])
    labels_, unc = trainer.predict(clf, "a", image, visible=(slice(20, 60), slice(30, 90)))
    ref = PixelClassifier(SPEC).fit(image, current)
    assert np.array_equal(labels_, ref.predict(image))
    assert np.array_equal(unc, uncertainty(ref.predict_proba(image)))
    assert trainer.cache_info()["bytes"] <= budget


def test_a_model_of_other_settings_is_predicted_through_its_pipeline(nuclei, small_blocks):
    image, _, scribbles = nuclei
    trainer = LiveTrainer(PixelClassifier(SPEC))
    trainer.fit([("a", image, scribbles)])
    for other in (PixelClassifier("small"), PixelClassifier(SPEC, normalize="percentile")):
        clf = other.fit(image, scribbles)          # e.g. a model file's
        labels_, unc = trainer.predict(clf, "a", image, visible=(slice(0, 40), slice(0, 40)))
        assert np.array_equal(labels_, clf.predict(image))
        assert np.array_equal(unc, uncertainty(clf.predict_proba(image)))


def test_3d_blocks_exact(small_blocks):
    image, labels = synthetic_nuclei((16, 40, 36), 5, 0)
    s = np.zeros(labels.shape, np.uint8)
    s[6, 1:3, 2:30] = 1
    s[6][labels[6] > 0] = 2
    trainer = LiveTrainer(PixelClassifier(SPEC))
    clf = trainer.fit([("v", image, s)])
    labels_, _ = trainer.predict(clf, "v", image,
                                 visible=(slice(6, 7), slice(5, 30), slice(0, 36)))
    assert np.array_equal(labels_, PixelClassifier(SPEC).fit(image, s).predict(image))


def test_training_set_of_checked_images_fits_the_same_model(nuclei):
    from pixelforest.classify.classifier import TrainingSet

    image, _, scribbles = nuclei
    ref = PixelClassifier(SPEC).fit(image, scribbles)
    image_cl = ref.pipeline_.check_image(image)
    clf = TrainingSet(PixelClassifier(SPEC), [image_cl], [scribbles], checked=True).fit()
    _same_model(clf, ref, image)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.int64])
def test_labelled_pixels_found_word_by_word_equal_flatnonzero(dtype):
    from pixelforest.classify.classifier import _labelled_index

    rng = np.random.default_rng(3)
    for shape in ((64, 64), (7, 13), (5, 16, 16)):
        for density in (0.0, 0.002, 0.05, 0.9):
            lab = ((rng.random(shape) < density) * rng.integers(1, 4, shape)).astype(dtype)
            assert np.array_equal(_labelled_index(lab), np.flatnonzero(lab))
            assert np.array_equal(_labelled_index(lab[:, ::2]), np.flatnonzero(lab[:, ::2]))
