import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pixelforest.errors import (
    ChannelMismatchError,
    ConstantImageWarning,
    InvalidImageError,
    InvalidParameterError,
)
from pixelforest.preprocess.normalize import (
    apply_bounds,
    normalize_minmax,
    normalize_percentile,
    percentile_bounds,
)

# ---------------------------------------------------------------- min-max


def test_minmax_hand_computed():
    image = np.array([[10, 20], [30, 50]], dtype=np.uint16)
    out = normalize_minmax(image)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[0, 0.25], [0.5, 1]])


def test_minmax_never_rescales_by_dtype():
    # a 12-bit image in uint16 is stretched by its values, not by 65535
    image = np.array([[0, 1000], [2000, 4000]], dtype=np.uint16)
    np.testing.assert_allclose(normalize_minmax(image), [[0, 0.25], [0.5, 1]])
    # a float image already in a small range is still stretched
    image = np.array([[0.1, 0.2]], dtype=np.float64)
    np.testing.assert_allclose(normalize_minmax(image), [[0, 1]])


def test_minmax_per_channel_any_axis():
    rng = np.random.default_rng(0)
    image = rng.normal(size=(3, 8, 9)) * np.array([1, 100, 0.01])[:, None, None]
    out = normalize_minmax(image, channel_axis=0)
    assert out.shape == image.shape
    for c in range(3):
        ref = (image[c] - image[c].min()) / np.ptp(image[c])
        np.testing.assert_allclose(out[c], ref, rtol=1e-6, atol=1e-6)
    out_last = normalize_minmax(np.moveaxis(image, 0, -1), channel_axis=-1)
    np.testing.assert_array_equal(np.moveaxis(out_last, -1, 0), out)


def test_minmax_3d():
    image = np.arange(2 * 3 * 4, dtype=np.int32).reshape(2, 3, 4) - 5
    out = normalize_minmax(image)
    assert out.shape == (2, 3, 4)
    assert out.min() == 0 and out.max() == 1
    np.testing.assert_allclose(out.ravel(), np.linspace(0, 1, 24), rtol=1e-6)


def test_minmax_constant_gives_zeros_and_warning():
    with pytest.warns(ConstantImageWarning, match="constant"):
        out = normalize_minmax(np.full((4, 4), 7, dtype=np.uint8))
    assert out.dtype == np.float32
    assert not np.isnan(out).any()
    np.testing.assert_array_equal(out, 0)


def test_minmax_constant_channel_only_that_channel():
    image = np.stack([np.arange(16.0).reshape(4, 4), np.full((4, 4), 3.0)], axis=-1)
    with pytest.warns(ConstantImageWarning, match="channel 1"):
        out = normalize_minmax(image, channel_axis=-1)
    np.testing.assert_array_equal(out[..., 1], 0)
    assert out[..., 0].min() == 0 and out[..., 0].max() == 1


def test_bool_image_is_accepted():
    out = normalize_minmax(np.array([[True, False]]))
    np.testing.assert_array_equal(out, [[1, 0]])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("func", [normalize_minmax, normalize_percentile, percentile_bounds])
def test_nonfinite_raises_value_error(func, bad):
    image = np.ones((4, 4))
    image[1, 2] = bad
    with pytest.raises(ValueError, match="NaN") as info:
        func(image)
    assert isinstance(info.value, InvalidImageError)


def test_nonfinite_raises_in_apply_bounds():
    image = np.ones((4, 4), dtype=np.float32)
    image[0, 0] = np.nan
    with pytest.raises(InvalidImageError, match="nan_to_num"):
        apply_bounds(image, [[0, 1]])


@pytest.mark.parametrize("func", [normalize_minmax, normalize_percentile])
@pytest.mark.parametrize("image, kwargs, match", [
    (np.zeros((0, 4)), {}, "empty"),
    (np.zeros(5), {}, "reshape it to"),
    (np.zeros((2, 2, 2, 2, 2)), {}, "spatial dimensions"),
    (np.array([["a", "b"]]), {}, "not a number"),
    (np.zeros((4, 4)), {"channel_axis": 5}, "out of range"),
    (np.zeros((4, 4, 3)), {"channel_axis": 1.5}, "integer"),
])
def test_bad_images(func, image, kwargs, match):
    with pytest.raises(InvalidImageError, match=match):
        func(image, **kwargs)


# -------------------------------------------------------------- percentile


def test_percentile_hand_computed():
    image = np.arange(101, dtype=np.uint8).reshape(1, 101)
    np.testing.assert_array_equal(percentile_bounds(image, 10, 90), [[10, 90]])
    out = normalize_percentile(image, 10, 90)
    np.testing.assert_allclose(out[0, [0, 10, 30, 90, 100]], [0, 0, 0.25, 1, 1])
    unclipped = normalize_percentile(image, 10, 90, clip=False)
    np.testing.assert_allclose(unclipped[0, [0, 100]], [-0.125, 1.125])


def test_percentile_is_robust_to_hot_pixel():
    image = np.tile(np.arange(100, dtype=np.float32), (10, 1))
    image[0, 0] = 1e6
    out = normalize_percentile(image, 1, 99)
    # the hot pixel does not squeeze the rest as min-max would
    assert out[5, 50] == pytest.approx(0.5, abs=0.02)
    assert normalize_minmax(image)[5, 50] < 1e-3


def test_percentile_bounds_per_channel():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 4096, size=(2, 5, 6, 7), dtype=np.uint16)  # (C, Z, Y, X)
    bounds = percentile_bounds(image, 2, 98, channel_axis=0)
    assert bounds.shape == (2, 2) and bounds.dtype == np.float64
    for c in range(2):
        np.testing.assert_array_equal(bounds[c], np.percentile(image[c], [2, 98]))
    single = percentile_bounds(image[0])
    assert single.shape == (1, 2)


def test_normalize_percentile_equals_composition():
    rng = np.random.default_rng(2)
    image = rng.gamma(2.0, 100.0, size=(20, 30, 3)).astype(np.float32)
    expected = apply_bounds(image, percentile_bounds(image, channel_axis=-1), channel_axis=-1)
    np.testing.assert_array_equal(normalize_percentile(image, channel_axis=-1), expected)


def test_apply_bounds_on_tile_equals_crop_of_whole():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 60000, size=(3, 40, 50), dtype=np.uint16)
    bounds = percentile_bounds(image, channel_axis=0)
    whole = apply_bounds(image, bounds, channel_axis=0)
    tile = apply_bounds(image[:, 7:23, 11:40], bounds, channel_axis=0)
    np.testing.assert_array_equal(tile, whole[:, 7:23, 11:40])


def test_apply_bounds_formula_and_wide_dtypes():
    image = np.array([[0, 2**31 - 1]], dtype=np.int64)
    out = apply_bounds(image, [[0, 2**31 - 1]])
    np.testing.assert_array_equal(out, [[0, 1]])
    # bounds outside float32's range are handled in float64
    big = np.array([[-3e38, 0.0, 3e38]], dtype=np.float32)
    np.testing.assert_allclose(normalize_minmax(big), [[0, 0.5, 1]])
    tiny = np.array([[0.0, 1e-40]], dtype=np.float32)
    np.testing.assert_allclose(apply_bounds(tiny, [[0.0, 1e-50]]), [[0, 1]])


def test_apply_bounds_accepts_single_pair():
    np.testing.assert_allclose(apply_bounds(np.array([[1, 3]]), (1, 3)), [[0, 1]])


def test_apply_bounds_equal_bounds_warn():
    with pytest.warns(ConstantImageWarning, match="equal"):
        out = apply_bounds(np.arange(4).reshape(2, 2), [[2, 2]])
    np.testing.assert_array_equal(out, 0)


def test_percentile_sparse_image_warns_not_nan():
    image = np.zeros((50, 50), dtype=np.uint8)
    image[0, 0] = 255  # 99.8th percentile is still 0
    with pytest.warns(ConstantImageWarning, match="wider percentiles"):
        out = normalize_percentile(image)
    assert not np.isnan(out).any()


@pytest.mark.parametrize("low, high", [
    (-1, 99), (1, 101), (50, 50), (60, 40), (np.nan, 99), ("1", 99), (True, 99),
])
def test_bad_percentiles(low, high):
    with pytest.raises(InvalidParameterError, match="low|high"):
        normalize_percentile(np.arange(16).reshape(4, 4), low, high)


@pytest.mark.parametrize("bounds, error, match", [
    ([[0, 1], [0, 1]], ChannelMismatchError, "2 channel"),
    ([[0, 1, 2]], InvalidParameterError, "shape"),
    ([[1, 0]], InvalidParameterError, "reversed"),
    ([[0, np.inf]], InvalidParameterError, "infinite"),
])
def test_bad_bounds(bounds, error, match):
    with pytest.raises(error, match=match):
        apply_bounds(np.zeros((4, 4)), bounds)


def test_input_not_modified():
    image = np.arange(12, dtype=np.float32).reshape(3, 4)
    copy = image.copy()
    normalize_minmax(image)
    normalize_percentile(image)
    apply_bounds(image, [[0, 5]])
    np.testing.assert_array_equal(image, copy)


# ------------------------------------------------------------- properties

_shapes = hnp.array_shapes(min_dims=2, max_dims=3, min_side=1, max_side=6)
_images = st.one_of(
    hnp.arrays(dtype=st.sampled_from([np.uint8, np.uint16, np.int16, np.int64]),
               shape=_shapes),
    hnp.arrays(dtype=st.sampled_from([np.float32, np.float64]), shape=_shapes,
               elements={"allow_nan": False, "allow_infinity": False,
                         "min_value": -2.0**100, "max_value": 2.0**100}),
)


@settings(max_examples=60, deadline=None)
@given(_images)
def test_property_minmax_bounds(image):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConstantImageWarning)
        out = normalize_minmax(image)
    assert out.dtype == np.float32 and out.shape == image.shape
    assert np.isfinite(out).all()
    assert out.min() >= 0 and out.max() <= 1
    if image.min() < image.max():
        assert out.min() == 0 and out.max() == 1
        # order is preserved
        flat_in, flat_out = image.ravel(), out.ravel()
        order = np.argsort(flat_in, kind="stable")
        assert (np.diff(flat_out[order]) >= 0).all()
    else:
        assert (out == 0).all()


@settings(max_examples=60, deadline=None)
@given(_images, st.floats(0, 49), st.floats(51, 100))
def test_property_percentile_bounds(image, low, high):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConstantImageWarning)
        out = normalize_percentile(image, low, high)
    assert out.dtype == np.float32 and out.shape == image.shape
    assert np.isfinite(out).all()
    assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.uint16, np.int16])
@pytest.mark.parametrize("low, high", [(1.0, 99.8), (0.0, 100.0), (0.1, 50.0), (33.3, 66.7)])
def test_histogram_percentiles_equal_numpy(dtype, low, high):
    # 8- and 16-bit images take the histogram path: the same bits as np.percentile
    from pixelforest.preprocess.normalize import _histogram_percentiles

    info = np.iinfo(dtype)
    rng = np.random.default_rng(int(low * 10 + high))
    for shape, axis in [((1, 1), None), ((13, 17), None), ((40, 50, 3), -1), ((2, 30, 20), 0)]:
        image = rng.integers(info.min, int(info.max) + 1, shape).astype(dtype)
        image.flat[::5] = info.max  # heavy ties at the top
        flat = (image.reshape(-1, 1) if axis is None
                else np.moveaxis(image, axis, -1).reshape(-1, image.shape[axis]))
        expected = np.percentile(flat, [low, high], axis=0).T
        np.testing.assert_array_equal(_histogram_percentiles(flat, low, high), expected)
        np.testing.assert_array_equal(percentile_bounds(image, low, high, channel_axis=axis),
                                      expected)


@settings(max_examples=50, deadline=None)
@given(values=st.lists(st.integers(0, 65535), min_size=1, max_size=300),
       low=st.floats(0, 99), width=st.floats(0.01, 100))
def test_histogram_percentiles_property(values, low, width):
    from pixelforest.preprocess.normalize import _histogram_percentiles

    high = min(low + width, 100.0)
    if not low < high:
        return
    flat = np.asarray(values, dtype=np.uint16).reshape(-1, 1)
    np.testing.assert_array_equal(_histogram_percentiles(flat, low, high),
                                  np.percentile(flat, [low, high], axis=0).T)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.uint16, np.int16])
@pytest.mark.parametrize("n", [0, 1, 3, 4, 5, 1001])
def test_value_histograms_count_every_value(dtype, n):
    # four interleaved histograms inside: every remainder of n / 4, every channel
    from pixelforest.preprocess.normalize import value_histograms

    info = np.iinfo(dtype)
    flat = np.random.default_rng(n).integers(info.min, int(info.max) + 1, (n, 3)).astype(dtype)
    counts = value_histograms(flat)
    for c in range(3):
        expected = np.bincount(flat[:, c].astype(np.int64) - int(info.min),
                               minlength=counts.shape[1])
        np.testing.assert_array_equal(counts[c], expected)
