"""Tests of pixelforest.segment.instances and PixelClassifier.predict_instances."""

import os

import numpy as np
import pytest
from scipy import ndimage as ndi

from pixelforest.errors import InvalidImageError, InvalidParameterError, ShapeMismatchError
from pixelforest.evaluate.metrics import match_objects
from pixelforest.segment.instances import (
    check_spacing,
    estimate_object_radius,
    foreground_contrast,
    instances_from_probability,
)


def touching_discs(shape=(160, 220), seed=0):
    """Pairs and triples of touching discs of different radii, with their true labels."""
    rng = np.random.default_rng(seed)
    yy, xx = np.indices(shape)
    truth = np.zeros(shape, np.uint16)
    label = 0
    # (centre row, first centre column, radii); discs in a group touch
    groups = [(40, 30, (14, 12)), (40, 120, (10, 10, 11)), (115, 40, (16, 13)),
              (115, 140, (9, 12)), (120, 195, (8,))]
    for cy, cx, radii in groups:
        x = cx
        for i, r in enumerate(radii):
            if i:
                x += radii[i - 1] + r - 3  # overlap by 3 px: a clear neck
            label += 1
            disc = (yy - cy - rng.integers(-2, 3)) ** 2 + (xx - x) ** 2 < r ** 2
            truth[disc & (truth == 0)] = label
    return truth


def soft_probability(mask, sigma=1.0):
    """A smooth foreground probability with a 0.5 contour on the mask's outline."""
    return ndi.gaussian_filter(mask.astype(np.float32), sigma).clip(0, 1)


def assert_same_objects(labels, truth, *, min_iou=0.8):
    m = match_objects(labels, truth, threshold=min_iou)
    assert (m.tp, m.fp, m.fn) == (int(truth.max()), 0, 0), m


# -------------------------------------------------------------- 2D splitting


def test_touching_discs_are_split_from_a_binary_mask():
    truth = touching_discs()
    labels = instances_from_probability((truth > 0).astype(np.float32))
    assert labels.dtype == np.uint32
    assert labels.shape == truth.shape
    # one connected component per group, one label per disc
    assert ndi.label(truth > 0)[1] == 5
    assert_same_objects(labels, truth)
    assert set(np.unique(labels)) == set(range(int(truth.max()) + 1))  # consecutive


def test_touching_discs_are_split_from_a_soft_probability():
    truth = touching_discs(seed=1)
    labels = instances_from_probability(soft_probability(truth > 0))
    assert_same_objects(labels, truth)


def test_image_guide_splits_where_the_image_dims():
    # two overlapping discs whose union is nearly convex: the distance alone
    # barely dips, but the image is dimmer where they meet
    yy, xx = np.mgrid[:64, :96]
    a = (yy - 32) ** 2 + (xx - 36) ** 2 < 15 ** 2
    b = (yy - 32) ** 2 + (xx - 60) ** 2 < 15 ** 2
    truth = np.zeros(a.shape, np.uint16)
    truth[a] = 1
    truth[b & ~a] = 2
    truth[a & b & (xx >= 48)] = 2
    image = np.where(a | b, 60.0, 5.0)
    image += 100 * np.exp(-((yy - 32) ** 2 + (xx - 36) ** 2) / 80)
    image += 100 * np.exp(-((yy - 32) ** 2 + (xx - 60) ** 2) / 80)
    prob = (a | b).astype(np.float32)
    labels = instances_from_probability(prob, image=image)
    assert_same_objects(labels, truth, min_iou=0.7)


def test_a_single_object_stays_whole():
    yy, xx = np.mgrid[:80, :80]
    ellipse = ((yy - 40) / 30.0) ** 2 + ((xx - 40) / 14.0) ** 2 < 1
    labels = instances_from_probability(soft_probability(ellipse))
    assert labels.max() == 1


def test_radius_is_estimated_from_the_data_and_ignores_clumps():
    truth = touching_discs()
    r = estimate_object_radius(truth > 0)
    assert 9 <= r <= 16  # the discs' radii, not a clump's extent


def test_small_holes_are_filled_and_specks_dropped_or_merged():
    yy, xx = np.mgrid[:80, :80]
    disc = (yy - 40) ** 2 + (xx - 40) ** 2 < 15 ** 2
    prob = disc.astype(np.float32)
    prob[40, 40] = prob[38:40, 30:32] = 0  # holes
    prob[5, 5] = 1  # an isolated speck
    labels = instances_from_probability(prob)
    assert labels.max() == 1
    assert labels[40, 40] == 1 and labels[38, 30] == 1
    assert labels[5, 5] == 0


def test_min_and_max_size():
    truth = touching_discs()
    sizes = np.bincount(truth.ravel())[1:]
    prob = (truth > 0).astype(np.float32)
    kept = instances_from_probability(prob, max_size=float(np.median(sizes)))
    # every kept object is at most that size, and some were dropped
    kept_sizes = np.bincount(kept.ravel())[1:]
    assert kept_sizes.max() <= np.median(sizes)
    assert 0 < kept.max() < truth.max()
    # with a min size larger than any object, nothing is left
    none = instances_from_probability(prob, min_size=float(sizes.sum() + 1))
    assert none.max() == 0


def test_empty_and_full_probability():
    assert instances_from_probability(np.zeros((20, 20))).max() == 0
    full = instances_from_probability(np.ones((20, 20)))
    assert full.max() == 1 and (full == 1).all()


def test_deterministic():
    truth = touching_discs(seed=2)
    prob = soft_probability(truth > 0)
    np.testing.assert_array_equal(instances_from_probability(prob),
                                  instances_from_probability(prob))


# ----------------------------------------------------------------------- 3D


def touching_balls(spacing):
    """Two touching balls of radius 9 (physical units) sampled with ``spacing``."""
    dz, dy, dx = spacing
    shape = (int(40 / dz), int(40 / dy), int(60 / dx))
    z, y, x = np.indices(shape).astype(float)
    z, y, x = z * dz, y * dy, x * dx
    a = (z - 20) ** 2 + (y - 20) ** 2 + (x - 21) ** 2 < 9 ** 2
    b = (z - 20) ** 2 + (y - 20) ** 2 + (x - 37) ** 2 < 9 ** 2
    truth = np.zeros(shape, np.uint16)
    truth[a] = 1
    truth[b & ~a] = 2
    return truth


def test_3d_touching_balls_isotropic():
    truth = touching_balls((1.0, 1.0, 1.0))
    labels = instances_from_probability((truth > 0).astype(np.float32))
    assert_same_objects(labels, truth)


def test_3d_anisotropic_spacing_is_respected():
    spacing = (3.0, 1.0, 1.0)  # a z step three times the xy pixel
    truth = touching_balls(spacing)
    prob = (truth > 0).astype(np.float32)
    r = estimate_object_radius(truth > 0, spacing=spacing)
    assert 7 <= r <= 10  # physical units, as the balls were drawn
    labels = instances_from_probability(prob, spacing=spacing)
    assert_same_objects(labels, truth)
    # the given radius is taken as physical too: the same objects
    same = instances_from_probability(prob, spacing=spacing, radius=9.0)
    assert_same_objects(same, truth)


# ------------------------------------------------------------ contrast guide


def test_foreground_contrast_follows_the_polarity_of_the_objects():
    image = np.full((20, 20, 3), 200.0)
    image[5:15, 5:15] = (80, 40, 160)  # dark purple nuclei on a bright field
    mask = np.zeros((20, 20), bool)
    mask[5:15, 5:15] = True
    c = foreground_contrast(image, mask, channel_axis=-1)
    assert c.dtype == np.float32
    assert c[10, 10] == pytest.approx(1.0) and c[0, 0] == pytest.approx(0.0)
    assert foreground_contrast(image, np.zeros((20, 20), bool), channel_axis=-1) is None


# ------------------------------------------------------------------- errors


@pytest.mark.parametrize("bad, error", [
    (np.full((10, 10), 2.0), InvalidImageError),
    (np.full((10, 10), np.nan), InvalidImageError),
    (np.zeros(10), InvalidImageError),
])
def test_bad_probability(bad, error):
    with pytest.raises(error):
        instances_from_probability(bad)


@pytest.mark.parametrize("kwargs", [
    {"threshold": 1.0}, {"threshold": -0.1}, {"seed_depth": 0}, {"smoothing": -1},
    {"radius": 0}, {"min_size": -1}, {"max_size": "big"}, {"outline": 1.5},
    {"spacing": (1, 2, 3)}, {"spacing": (1, 0)},
])
def test_bad_options(kwargs):
    with pytest.raises(InvalidParameterError):
        instances_from_probability(np.zeros((10, 10)), **kwargs)


def test_image_of_another_shape():
    with pytest.raises(ShapeMismatchError):
        instances_from_probability(np.zeros((10, 10)), image=np.zeros((10, 12)))


def test_check_spacing():
    assert check_spacing(0.5, 3) == (0.5, 0.5, 0.5)
    with pytest.raises(InvalidParameterError):
        check_spacing(True, 2)


# ------------------------------------------------------- predict_instances


def _fitted(image, truth, seed=0, features=None):
    from pixelforest.classify.classifier import PixelClassifier
    from pixelforest.classify.scribbles import simulate_scribbles

    scribbles = simulate_scribbles(truth, random_state=seed)
    return PixelClassifier(features, random_state=0).fit(image, scribbles)


def test_predict_instances_on_synthetic_nuclei():
    from pixelforest.datasets import synthetic_nuclei

    image, truth = synthetic_nuclei((192, 192), n=20, seed=3)
    clf = _fitted(image, truth)
    labels = clf.predict_instances(image)
    assert labels.dtype == np.uint32 and labels.shape == image.shape
    m = match_objects(labels, truth)
    assert m.f1 >= 0.8, m
    # foreground given explicitly, and the probability-only guide
    np.testing.assert_array_equal(labels, clf.predict_instances(image, foreground=2))
    assert clf.predict_instances(image, guide="probability").max() > 0
    with pytest.raises(InvalidParameterError, match="not a class"):
        clf.predict_instances(image, foreground=7)
    with pytest.raises(InvalidParameterError, match="guide"):
        clf.predict_instances(image, guide="edges")


def test_predict_instances_3d_with_spacing():
    from pixelforest.datasets import synthetic_nuclei

    from pixelforest.features.spec import FeatureSpec

    image, truth = synthetic_nuclei((32, 64, 64), n=6, seed=0)
    clf = _fitted(image, truth, features=FeatureSpec.for_object_size(12))
    labels = clf.predict_instances(image, spacing=(1.0, 1.0, 1.0))
    assert labels.shape == image.shape and labels.dtype == np.uint32
    assert match_objects(labels, truth).f1 >= 0.6


needs_data = pytest.mark.skipif(
    not os.environ.get("PIXELFOREST_DATA_DIR"),
    reason="set PIXELFOREST_DATA_DIR=../shared/data to use the DSB2018 samples")


@needs_data
def test_predict_instances_splits_real_touching_nuclei():
    """On a real crowded image, the split beats connected components of the same foreground."""
    from pixelforest.datasets import load_sample

    image, truth = load_sample("e23e11414ee6")
    clf = _fitted(image, truth)
    labels = clf.predict_instances(image)
    components = ndi.label(clf.predict(image) == 2, structure=np.ones((3, 3)))[0]
    split = match_objects(labels, truth)
    merged = match_objects(components, truth)
    assert split.accuracy > merged.accuracy + 0.1, (split, merged)
