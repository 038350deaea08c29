"""The fast float32 feature path: within its bound of float64 scipy, and exact tiling.

``precision="fast"`` (:mod:`pixelforest.features.fast`) must stay within
:data:`~pixelforest.features.fast.FAST_ERROR_BOUND` of the float64
:mod:`scipy.ndimage` definitions (max abs error over the image's range, its
square for the structure tensor) for every family, 1D-3D, orders 0-2, odd
sizes and lines shorter than the kernel; a block cut with the halo must give
the whole image's features bit for bit, wherever it starts; and the choice
must travel with the model file.
"""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage as ndi

from pixelforest import PixelClassifier, load_model, save_model
from pixelforest.errors import InvalidParameterError
from pixelforest.features import FAMILIES, FeatureSpec, compute_features
from pixelforest.features import fast
from pixelforest.features.compute import (feature_planes_of_block, features_at,
                                          features_of_block)
from pixelforest.features.fast import FAST_ERROR_BOUND, gaussian_orders, reference_features
from pixelforest.features.spec import DEFAULT_PRECISION, STRUCTURE_SCALES_ILASTIK

ALL_FAMILIES = tuple(FAMILIES)


def _image(shape, seed=0):
    return (np.random.default_rng(seed).normal(100, 30, shape)).astype(np.float32)


def _relative_errors(feats, ref, spec, image, ndim):
    """Max abs error per column over the image's range (squared for the structure tensor)."""
    span = float(image.max() - image.min())
    names = spec.feature_names(1, ndim)
    norm = np.array([span ** 2 if n.startswith("structure") else span for n in names])
    err = np.abs(feats.astype(np.float64) - ref).reshape(-1, len(names)).max(axis=0)
    return dict(zip(names, err / norm))


# -- the filter bank --------------------------------------------------------------

@pytest.mark.parametrize("shape", [(9,), (1, 1), (3, 50), (64, 1), (37, 41), (2, 30, 4),
                                   (9, 11, 13)])
@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.5, 10.0])
def test_every_order_within_bound_of_float64_scipy(shape, sigma):
    """Lines shorter than the kernel, odd shapes, orders 0-2 on every axis, 1D-3D."""
    image = _image(shape, seed=len(shape))
    span = float(image.max() - image.min()) or float(np.abs(image).max())  # one pixel: its value
    orders = list(itertools.product(range(3), repeat=len(shape)))
    got = gaussian_orders(image, sigma, orders)
    for order in orders:
        ref = ndi.gaussian_filter(image.astype(np.float64), sigma, order=order,
                                  mode="reflect", truncate=4.0)
        assert got[order].dtype == np.float32 and got[order].shape == shape
        assert np.abs(got[order] - ref).max() / span <= FAST_ERROR_BOUND, order
        # float32 arithmetic: far inside the bound
        assert np.abs(got[order] - ref).max() / span <= 1e-5, order


@settings(max_examples=40, deadline=None)
@given(ny=st.integers(1, 40), nx=st.integers(1, 40), sigma=st.floats(0.3, 12.0),
       order=st.tuples(st.integers(0, 2), st.integers(0, 2)), seed=st.integers(0, 2**16),
       data=st.data())
def test_crops_are_the_whole_images_bits(ny, nx, sigma, order, seed, data):
    image = np.random.default_rng(seed).uniform(-3, 3, (ny, nx)).astype(np.float32)
    y0 = data.draw(st.integers(0, ny - 1))
    y1 = data.draw(st.integers(y0 + 1, ny))
    x0 = data.draw(st.integers(0, nx - 1))
    x1 = data.draw(st.integers(x0 + 1, nx))
    whole = gaussian_orders(image, sigma, [order])[order]
    part = gaussian_orders(image, sigma, [order], ((y0, y1), (x0, x1)))[order]
    np.testing.assert_array_equal(part, whole[y0:y1, x0:x1])


def test_anisotropic_sigma_and_scale():
    image = _image((23, 40, 31), seed=1)
    sigma, scale = (0.7, 3.0, 6.4), (0.5, 1.0, 2.0)
    orders = [(0, 1, 0), (2, 0, 0), (1, 0, 1)]
    got = gaussian_orders(image, sigma, orders, scale=scale)
    span = float(image.max() - image.min())
    for order in orders:
        ref = ndi.gaussian_filter(image.astype(np.float64), sigma, order=order, truncate=4.0)
        ref *= np.prod([s ** o for s, o in zip(scale, order)])
        assert np.abs(got[order] - ref).max() / span <= 1e-5


def test_the_same_pixels_at_every_offset_of_a_line():
    """Vector body and scalar remainder compute alike: a pixel's value does not depend
    on where the computed row starts or how long it is."""
    image = _image((5, 300), seed=2)
    orders = [(0, 0), (0, 1), (1, 2), (2, 0)]
    whole = gaussian_orders(image, 1.6, orders)
    for lo in range(0, 40):
        for hi in (lo + 1, lo + 17, 260 + lo % 7, 300):
            part = gaussian_orders(image, 1.6, orders, ((0, 5), (lo, hi)))
            for order in orders:
                np.testing.assert_array_equal(part[order], whole[order][:, lo:hi])


def test_eigenvalues_sorted_and_exact_on_known_matrices():
    a = np.array([[[2.0]], [[1.0]], [[0.0]]], np.float32)
    out = [np.empty((1, 1), np.float32) for _ in range(3)]
    # diag(2, 1, 0) permuted on the diagonal
    fast.eigenvalues_sym([a[1], np.zeros((1, 1)), np.zeros((1, 1)), a[0], np.zeros((1, 1)),
                          a[2]], out)
    assert [float(o[0, 0]) for o in out] == [2.0, 1.0, 0.0]
    rng = np.random.default_rng(3)
    m = rng.normal(size=(200, 3, 3))
    m = m + m.transpose(0, 2, 1)
    m[:20] = np.eye(3) * 4  # degenerate: all equal
    m[20:40, 0, 0] = m[20:40, 1, 1]  # partly degenerate
    m = m.astype(np.float32).astype(np.float64)
    elems = [m[:, i, j].astype(np.float32)[None] for i in range(3) for j in range(i, 3)]
    out = [np.empty((1, 200), np.float32) for _ in range(3)]
    fast.eigenvalues_sym(elems, out)
    expected = np.linalg.eigvalsh(m)[:, ::-1]
    got = np.stack([o[0] for o in out], axis=1)
    assert np.all(got[:, 0] >= got[:, 1]) and np.all(got[:, 1] >= got[:, 2])
    np.testing.assert_allclose(got, expected, atol=1e-5 * np.abs(expected).max())


# -- every family against the float64 definitions -------------------------------------

CASES = [
    ((37, 41), (0.7, 1.6, 3.0), None),
    ((64, 70), (1.0, 5.0), None),
    ((31, 29), (0.5, 2.0), (1.5, 0.7)),
    ((13, 20, 22), (0.7, 1.6), None),
    ((11, 17, 15), (1.0,), (2.0, 0.5, 0.5)),
    ((5, 40, 9), (2.5,), None),  # lines shorter than the kernel
]


@pytest.mark.parametrize("shape,sigmas,spacing", CASES)
@pytest.mark.parametrize("scales", [(0.5, 1.0), STRUCTURE_SCALES_ILASTIK])
def test_every_family_within_bound(shape, sigmas, spacing, scales):
    image = _image(shape, seed=sum(shape))
    spec = FeatureSpec(families=ALL_FAMILIES, sigmas=sigmas, spacing=spacing,
                       precision="fast", structure_scales=scales)
    feats = features_of_block(image[..., None], spec)  # no halo check: short lines too
    assert feats.dtype == np.float32
    assert feats.shape == shape + (spec.n_features(1, len(shape)),)
    errors = _relative_errors(feats, reference_features(image, spec), spec, image, len(shape))
    worst = max(errors, key=errors.get)
    assert errors[worst] <= FAST_ERROR_BOUND, (worst, errors[worst])
    assert errors[worst] <= 1e-5, (worst, errors[worst])  # float32: far inside


def test_fast_and_exact_differ_only_by_rounding():
    image = _image((50, 60), seed=4)
    fast_spec = FeatureSpec(families=ALL_FAMILIES, sigmas=(1.0, 3.0), precision="fast")
    exact_spec = FeatureSpec(families=ALL_FAMILIES, sigmas=(1.0, 3.0), precision="exact")
    a, b = compute_features(image, fast_spec), compute_features(image, exact_spec)
    assert not np.array_equal(a, b)
    errors = _relative_errors(a, b.astype(np.float64), fast_spec, image, 2)
    assert max(errors.values()) <= 1e-5


def test_multichannel_and_constant_images():
    rgb = np.stack([_image((30, 32), s) for s in range(3)], axis=-1)
    spec = FeatureSpec(families=("gaussian", "hessian"), sigmas=(1,), precision="fast")
    feats = compute_features(rgb, spec, channel_axis=-1)
    assert feats.shape == (30, 32, 9)
    np.testing.assert_array_equal(feats[..., 3:6], compute_features(rgb[..., 1], spec))
    flat = np.full((20, 20), 7.0, np.float32)
    spec = FeatureSpec(families=ALL_FAMILIES, sigmas=(1.0,), precision="fast")
    feats = compute_features(flat, spec)
    np.testing.assert_allclose(feats[..., :2], 7.0, rtol=1e-6)  # intensity, gaussian
    # the truncated second-derivative kernel does not sum to 0: scipy's own 1e-3 on a constant
    np.testing.assert_allclose(feats, reference_features(flat, spec), rtol=0, atol=7e-6)


# -- tiled == in-memory, bit for bit -----------------------------------------------------

@pytest.mark.parametrize("ndim", [2, 3])
def test_blocks_with_the_halo_are_the_whole_images_bits(ndim):
    shape = (70, 83) if ndim == 2 else (21, 30, 27)
    image = _image(shape, seed=5)[..., None]
    spec = FeatureSpec(families=ALL_FAMILIES, sigmas=(0.7, 2.0), precision="fast",
                       structure_scales=STRUCTURE_SCALES_ILASTIK)
    halo = spec.halo_for(ndim)
    whole = features_of_block(image, spec)
    rng = np.random.default_rng(6)
    for _ in range(12):
        lo = [int(rng.integers(0, n - 1)) for n in shape]
        hi = [int(rng.integers(a + 1, n + 1)) for a, n in zip(lo, shape)]
        cut = tuple(slice(max(a - h, 0), min(b + h, n))
                    for a, b, h, n in zip(lo, hi, halo, shape))
        crop = tuple(slice(a - c.start, b - c.start) for a, b, c in zip(lo, hi, cut))
        part = features_of_block(image[cut], spec, crop=crop)
        np.testing.assert_array_equal(part, whole[tuple(slice(a, b) for a, b in zip(lo, hi))])


def test_features_at_are_rows_of_the_stack(monkeypatch):
    from pixelforest.features import compute

    monkeypatch.setattr(compute, "_BLOCK_2D", 32)  # several blocks, one per thread
    image = _image((90, 77), seed=7)[..., None]
    spec = FeatureSpec(families=ALL_FAMILIES, sigmas=(1.0, 4.0), precision="fast")
    stack = features_of_block(image, spec, n_threads=2).reshape(-1, spec.n_features())
    index = np.random.default_rng(8).choice(90 * 77, 300, replace=False)
    np.testing.assert_array_equal(features_at(image, spec, index, n_threads=2), stack[index])


@pytest.mark.parametrize("precision", ["fast", "exact"])
@pytest.mark.parametrize("ndim", [2, 3])
def test_feature_planes_are_the_stacks_columns(monkeypatch, precision, ndim):
    from pixelforest.features import compute

    monkeypatch.setattr(compute, "_BLOCK_2D", 32)  # planes written block by block
    monkeypatch.setattr(compute, "_BLOCK_3D", 12)
    shape = (70, 83) if ndim == 2 else (21, 30, 27)
    image = np.stack([_image(shape, seed=9), _image(shape, seed=10)], axis=-1)
    spec = FeatureSpec(families=ALL_FAMILIES, sigmas=(0.7, 2.0), precision=precision)
    stack = features_of_block(image, spec, n_threads=2)
    planes = feature_planes_of_block(image, spec, n_threads=2)
    assert planes.shape == (stack.shape[-1],) + shape and planes.flags.c_contiguous
    np.testing.assert_array_equal(np.moveaxis(planes, 0, -1), stack)
    crop = tuple(slice(3, n - 4) for n in shape)
    np.testing.assert_array_equal(
        np.moveaxis(feature_planes_of_block(image, spec, crop=crop, n_threads=1), 0, -1),
        stack[crop])


def _scribbled_nuclei(shape, seed):
    from pixelforest.datasets import synthetic_nuclei

    image, labels = synthetic_nuclei(shape, n=6, seed=seed)
    scribbles = np.zeros(labels.shape, np.uint8)
    scribbles[(labels == 0) & (np.indices(labels.shape)[-1] % 5 == 0)] = 1
    scribbles[ndi.binary_erosion(labels > 0, iterations=2)
              & (np.indices(labels.shape)[-1] % 3 == 0)] = 2
    return image, scribbles


@pytest.mark.parametrize("shape,chunks", [((96, 80), (23, 41)), ((40, 44, 42), (19, 23, 21))])
def test_tiled_prediction_equals_in_memory_on_the_fast_path(shape, chunks):
    from pixelforest.forest.defaults import default_estimator
    from pixelforest.scale.tiled import predict_tiled

    image, scribbles = _scribbled_nuclei(shape, seed=3)
    spec = FeatureSpec(families=("intensity", "gaussian", "dog", "gradient", "hessian",
                                 "structure"), sigmas=(0.7, 1.6, 3.0), precision="fast")
    clf = PixelClassifier(spec, estimator=default_estimator(n_estimators=8),
                          random_state=0).fit(image, scribbles)
    proba = predict_tiled(clf, image, chunks=chunks, probabilities=True, workers=2).compute()
    np.testing.assert_array_equal(proba, clf.predict_proba(image))


# -- the choice of path ----------------------------------------------------------------

def test_precision_is_validated_recorded_and_shown():
    spec = FeatureSpec(sigmas=(1.0, 2.0), precision="fast")
    assert spec.to_dict()["precision"] == "fast"
    assert FeatureSpec.from_dict(spec.to_dict()) == spec
    assert "precision='fast'" in repr(spec)
    for bad in ("float32", None, 1, "FAST"):
        with pytest.raises(InvalidParameterError, match="precision"):
            FeatureSpec(precision=bad)
    for bad in ((1.0,), (0.5, 0.0), (1.0, float("nan")), "ab", None):
        with pytest.raises(InvalidParameterError, match="structure_scales"):
            FeatureSpec(structure_scales=bad)


def test_old_dicts_load_as_exact():
    old = {"families": ["intensity", "gaussian"], "sigmas": [1.0, 2.0], "spacing": None}
    spec = FeatureSpec.from_dict(old)
    assert spec.precision == "exact" and spec.structure_scales == (0.5, 1.0)
    assert spec == FeatureSpec(families=("intensity", "gaussian"), sigmas=(1.0, 2.0),
                               precision="exact")
    # a dict given as a setting (not read from a model file) asks for the default
    assert FeatureSpec.resolve(old).precision == DEFAULT_PRECISION == FeatureSpec().precision
    assert FeatureSpec.resolve({**old, "precision": "exact"}).precision == "exact"


def test_the_default_is_fast_and_old_model_files_stay_exact():
    from pathlib import Path

    assert DEFAULT_PRECISION == "fast" and FeatureSpec().precision == "fast"
    pinned = Path(__file__).parent / "fixtures" / "pinned"
    for path in sorted(pinned.glob("*.skops")):
        assert load_model(path).pipeline_.spec.precision == "exact", path.name


def test_structure_scales_name_the_columns_and_set_the_halo():
    spec = FeatureSpec(families=("structure",), sigmas=(2,), structure_scales=(1.0, 0.5))
    assert spec.names == ["structure(sigma=2, inner=1, outer=0.5, eig=0)[ch0]",
                          "structure(sigma=2, inner=1, outer=0.5, eig=1)[ch0]"]
    assert spec.halo_for(2) == (12, 12)  # radius(2) + radius(1)
    assert FeatureSpec(families=("structure",), sigmas=(2,)).names[0] == \
        "structure(sigma=2, eig=0)[ch0]"


def test_model_file_records_the_path(tmp_path):
    image, scribbles = _scribbled_nuclei((64, 64), seed=1)
    for precision in ("fast", "exact"):
        spec = FeatureSpec(sigmas=(1.0, 2.0), precision=precision,
                           structure_scales=STRUCTURE_SCALES_ILASTIK)
        clf = PixelClassifier(spec, random_state=0).fit(image, scribbles)
        path = tmp_path / f"{precision}.skops"
        save_model(clf, path)
        again = load_model(path)
        assert again.pipeline_.spec.precision == precision
        assert again.pipeline_.spec == spec
        np.testing.assert_array_equal(again.predict_proba(image), clf.predict_proba(image))


def test_default_differences_of_gaussians_share_their_gaussians(monkeypatch):
    """Each default DoG's inner Gaussian is the previous one's outer: 8 filterings, not 10."""
    from pixelforest.features.spec import DOG_RATIO

    spec = FeatureSpec()
    dog = spec.sigmas_for("dog")
    smoothings = set(spec.sigmas_for("gaussian")) | set(dog)
    assert all(s * DOG_RATIO in smoothings for s in dog), dog
    calls = []
    real = fast.gaussian_orders

    def counting(image, sigma, orders, crop=None, scale=None):
        calls.append(tuple(sigma))
        return real(image, sigma, orders, crop, scale)

    monkeypatch.setattr(fast, "gaussian_orders", counting)
    image = _image((96, 96))
    out = features_of_block(image[..., None], spec)
    # one filtering per distinct sigma: 8 Gaussians (the LoG and gradient share theirs)
    assert sorted(set(calls)) == sorted(calls) and len(calls) == len(smoothings) == 8
    monkeypatch.undo()
    assert np.array_equal(out, features_of_block(image[..., None], spec))
