"""The compiled Gaussian filters equal scipy.ndimage.gaussian_filter bit for bit."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage as ndi

from pixelforest.features import gaussian as _gaussian
from pixelforest.features.gaussian import gaussian_crop, gaussian_weights, kernel_radius


def _scipy(image, sigma, order=0):
    return ndi.gaussian_filter(image, sigma, order=order, mode="reflect", truncate=4.0,
                               output=np.float32)


def _crop(arr, crop):
    return arr[tuple(slice(a, b) for a, b in crop)]


@pytest.mark.parametrize("shape", [(9,), (1, 1), (3, 50), (64, 1), (37, 41), (2, 30, 4),
                                   (9, 11, 13)])
@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.5, 10.0])
def test_equals_scipy_every_order(shape, sigma):
    """Lines shorter than the kernel, odd shapes, orders 0-2 on every axis, 1D-3D."""
    rng = np.random.default_rng(len(shape) * 100 + int(sigma * 10))
    image = (rng.standard_normal(shape) * 50).astype(np.float32)
    for order in itertools.product(range(3), repeat=len(shape)):
        expected = _scipy(image, sigma, order)
        got = gaussian_crop(image, sigma, order)
        assert got.dtype == np.float32 and got.flags.c_contiguous
        np.testing.assert_array_equal(got, expected, err_msg=f"order {order}")


def test_anisotropic_sigma_and_crops():
    rng = np.random.default_rng(1)
    image = rng.random((23, 40, 31), dtype=np.float32)
    sigma = (0.7, 3.0, 6.4)
    expected = _scipy(image, sigma, (0, 1, 0))
    for crop in [((0, 23), (0, 40), (0, 31)), ((5, 6), (10, 30), (30, 31)),
                 ((0, 1), (0, 1), (0, 1)), ((11, 23), (0, 12), (7, 20))]:
        np.testing.assert_array_equal(gaussian_crop(image, sigma, (0, 1, 0), crop),
                                      _crop(expected, crop))


@settings(max_examples=60, deadline=None)
@given(ny=st.integers(1, 40), nx=st.integers(1, 40), sigma=st.floats(0.3, 12.0),
       order=st.tuples(st.integers(0, 2), st.integers(0, 2)), seed=st.integers(0, 2**16),
       data=st.data())
def test_crop_equals_scipy_property(ny, nx, sigma, order, seed, data):
    image = np.random.default_rng(seed).uniform(-3, 3, (ny, nx)).astype(np.float32)
    y0 = data.draw(st.integers(0, ny - 1))
    y1 = data.draw(st.integers(y0 + 1, ny))
    x0 = data.draw(st.integers(0, nx - 1))
    x1 = data.draw(st.integers(x0 + 1, nx))
    crop = ((y0, y1), (x0, x1))
    np.testing.assert_array_equal(gaussian_crop(image, sigma, order, crop),
                                  _crop(_scipy(image, sigma, order), crop))


def test_special_values_spread_like_scipy():
    image = np.zeros((20, 20), np.float32)
    image[3, 4] = np.nan
    image[15, 15] = np.inf
    image[10, 2] = np.finfo(np.float32).max
    np.testing.assert_array_equal(gaussian_crop(image, 1.5), _scipy(image, 1.5))


def test_input_is_converted_and_not_modified():
    image = np.arange(120, dtype=np.uint16).reshape(10, 12)[:, ::-1]
    before = image.copy()
    np.testing.assert_array_equal(gaussian_crop(image, 1.0),
                                  _scipy(image.astype(np.float32), 1.0))
    np.testing.assert_array_equal(image, before)


def test_weights_are_scipys():
    w, anti = gaussian_weights(2.0, 1)
    assert anti and w.shape == (2 * kernel_radius(2.0) + 1,)
    assert not w.flags.writeable
    line = np.zeros(41)
    line[20] = 1.0
    # correlating an impulse with the weights gives the kernel reversed
    np.testing.assert_array_equal(
        ndi.correlate1d(line, w, mode="constant"),
        ndi.gaussian_filter1d(line, 2.0, order=1, mode="constant"))


def test_scipy_fallback_gives_the_same_bits(monkeypatch):
    image = np.random.default_rng(3).random((30, 25), dtype=np.float32)
    crop = ((4, 20), (0, 9))
    compiled = gaussian_crop(image, (1.0, 4.0), (1, 0), crop)
    monkeypatch.setattr(_gaussian, "_NUMBA_OK", False)
    np.testing.assert_array_equal(gaussian_crop(image, (1.0, 4.0), (1, 0), crop), compiled)


def test_rejects_four_dimensions():
    with pytest.raises(ValueError, match="1 to 3 dimensions"):
        gaussian_crop(np.zeros((2, 2, 2, 2), np.float32), 1.0)
