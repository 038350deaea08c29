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
