import numpy as np
import pytest
from scipy import ndimage as ndi

from pixelforest.classify.scribbles import BACKGROUND, FOREGROUND, simulate_scribbles
from pixelforest.errors import InvalidLabelsError, InvalidParameterError


def _labels(shape=(128, 128), n=12, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.indices(shape)
    labels = np.zeros(shape, np.uint16)
    for i in range(n):
        cy, cx = rng.integers(12, shape[0] - 12, size=2)
        labels[(yy - cy) ** 2 / 49 + (xx - cx) ** 2 / 100 < 1] = i + 1
    return labels


def test_strokes_inside_objects_and_away_from_them():
    labels = _labels()
    s = simulate_scribbles(labels, random_state=0, margin=2, background_distance=5)
    assert s.dtype == np.uint8 and s.shape == labels.shape
    assert set(np.unique(s)) == {0, BACKGROUND, FOREGROUND}
    inside = ndi.distance_transform_edt(labels > 0)
    outside = ndi.distance_transform_edt(labels == 0)
    assert np.all(inside[s == FOREGROUND] > 2)      # never touching an object's border
    assert np.all(outside[s == BACKGROUND] > 5)     # background strokes keep away
    # sparse: a small part of the image, of the objects and of the background
    assert (s > 0).mean() < 0.1
    assert (s == FOREGROUND).sum() < 0.3 * (labels > 0).sum()


def test_strokes_are_thick_lines_in_a_subset_of_objects():
    labels = _labels(n=12)
    s = simulate_scribbles(labels, random_state=0, fraction=0.3, width=3)
    hit = np.unique(labels[s == FOREGROUND])
    n_objects = len(np.unique(labels)) - 1
    assert 3 <= len(hit) < n_objects
    for obj in hit:
        stroke = (s == FOREGROUND) & (labels == obj)
        assert ndi.label(stroke)[1] == 1                    # one continuous stroke
        assert ndi.binary_erosion(stroke).any()             # thicker than one pixel
    assert ndi.label(s == BACKGROUND)[1] >= 1


def test_seeded():
    labels = _labels()
    a = simulate_scribbles(labels, random_state=3)
    np.testing.assert_array_equal(a, simulate_scribbles(labels, random_state=3))
    assert not np.array_equal(a, simulate_scribbles(labels, random_state=4))


def test_binary_mask_and_fraction_one():
    mask = _labels() > 0
    s = simulate_scribbles(mask, random_state=0, fraction=1.0)
    assert np.all(mask[s == FOREGROUND])


def test_3d_in_planes():
    labels = np.stack([_labels((64, 64), n=5)] * 9)
    s = simulate_scribbles(labels, random_state=0, n_planes=3)
    planes = np.flatnonzero((s > 0).any(axis=(1, 2)))
    assert len(planes) == 3 and 0 not in planes and 8 not in planes
    assert np.all(labels[s == FOREGROUND] > 0)


def test_bad_labels():
    with pytest.raises(InvalidLabelsError, match="integer"):
        simulate_scribbles(np.zeros((20, 20), np.float32))
    with pytest.raises(InvalidLabelsError, match="no object"):
        simulate_scribbles(np.zeros((20, 20), np.uint8))
    with pytest.raises(InvalidLabelsError, match="negative"):
        simulate_scribbles(-np.ones((20, 20), np.int16))
    with pytest.raises(InvalidLabelsError, match="2D"):
        simulate_scribbles(np.ones(20, np.uint8))


@pytest.mark.parametrize("kwargs", [dict(fraction=0), dict(width=0), dict(n_background=-1),
                                    dict(margin=-1), dict(stroke_length=2)])
def test_bad_options(kwargs):
    with pytest.raises(InvalidParameterError):
        simulate_scribbles(_labels(), **kwargs)
