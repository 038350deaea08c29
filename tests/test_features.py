import dataclasses

import numpy as np
import pytest
from scipy import ndimage as ndi

from pixelforest.errors import InvalidImageError, InvalidParameterError
from pixelforest.features import FAMILIES, PRESETS, FeatureSpec, compute_features
from pixelforest.features.compute import features_at, features_of_block

ALL = FeatureSpec(families=tuple(FAMILIES), sigmas=(0.7, 1.6, 3.0))


def _rng_image(shape, seed=0):
    return np.random.default_rng(seed).normal(100, 20, shape).astype(np.float32)


def test_names_order_and_shape_2d():
    spec = FeatureSpec(families=("intensity", "gaussian", "hessian"), sigmas=(1, 2))
    feats = compute_features(_rng_image((40, 50)), spec)
    assert feats.shape == (40, 50, 7) and feats.dtype == np.float32
    assert spec.names == [
        "intensity[ch0]", "gaussian(sigma=1)[ch0]", "gaussian(sigma=2)[ch0]",
        "hessian(sigma=1, eig=0)[ch0]", "hessian(sigma=1, eig=1)[ch0]",
        "hessian(sigma=2, eig=0)[ch0]", "hessian(sigma=2, eig=1)[ch0]"]


def test_columns_match_scipy_filters():
    image = _rng_image((48, 48))
    spec = FeatureSpec(families=("intensity", "gaussian", "dog", "log", "gradient"), sigmas=(2,),
                       precision="exact")
    feats = compute_features(image, spec)
    g = lambda s, **kw: ndi.gaussian_filter(image, s, mode="reflect", output=np.float32, **kw)
    np.testing.assert_array_equal(feats[..., 0], image)
    np.testing.assert_array_equal(feats[..., 1], g(2))
    np.testing.assert_allclose(feats[..., 2], g(1.25) - g(2), atol=1e-4)
    np.testing.assert_allclose(feats[..., 3], ndi.gaussian_laplace(image, 2), atol=1e-3)
    np.testing.assert_allclose(feats[..., 4], ndi.gaussian_gradient_magnitude(image, 2),
                               rtol=1e-4, atol=1e-3)


def test_hessian_eigenvalues_sorted_and_blob_sign():
    image = np.zeros((41, 41), np.float32)
    image[20, 20] = 100
    spec = FeatureSpec(families=("hessian",), sigmas=(3,))
    feats = compute_features(image, spec)
    assert np.all(feats[..., 0] >= feats[..., 1])
    assert feats[20, 20, 0] < 0  # bright blob: both eigenvalues negative at its centre


def test_multichannel_names_and_channel_axis():
    rgb = np.stack([_rng_image((30, 32), s) for s in range(3)], axis=0)
    spec = FeatureSpec(families=("gaussian",), sigmas=(1,))
    feats = compute_features(rgb, spec, channel_axis=0)
    assert feats.shape == (30, 32, 3)
    assert spec.feature_names(3) == [f"gaussian(sigma=1)[ch{c}]" for c in range(3)]
    np.testing.assert_array_equal(feats[..., 1], compute_features(rgb[1], spec)[..., 0])


def test_3d_features():
    spec = FeatureSpec(families=("hessian", "structure", "log"), sigmas=(1,))
    feats = compute_features(_rng_image((12, 20, 22)), spec)
    assert feats.shape == (12, 20, 22, spec.n_features(1, 3)) == (12, 20, 22, 7)
    assert spec.feature_names(1, ndim=3)[2] == "hessian(sigma=1, eig=2)[ch0]"


def test_anisotropic_spacing_is_physical():
    # a stack sampled twice as coarsely along z: sigma in physical units
    image = _rng_image((16, 30, 30))
    spec = FeatureSpec(families=("gaussian",), sigmas=(2.0,), spacing=(2.0, 1.0, 1.0),
                       precision="exact")
    feats = compute_features(image, spec)
    expected = ndi.gaussian_filter(image, (1.0, 2.0, 2.0), mode="reflect", output=np.float32)
    np.testing.assert_array_equal(feats[..., 0], expected)
    fast = compute_features(image, FeatureSpec(families=("gaussian",), sigmas=(2.0,),
                                               spacing=(2.0, 1.0, 1.0), precision="fast"))
    np.testing.assert_allclose(fast[..., 0], expected, rtol=0, atol=1e-5 * np.ptp(image))
    assert spec.halo == (4, 8, 8)
    # derivatives are per unit length: a ramp along z of slope 1 per um
    ramp = np.broadcast_to((np.arange(16) * 2.0)[:, None, None], (16, 30, 30)).astype(np.float32)
    grad = compute_features(ramp, FeatureSpec(families=("gradient",), sigmas=(4.0,),
                                              spacing=(2.0, 1.0, 1.0)))
    np.testing.assert_allclose(grad[8, 15, 15, 0], 1.0, rtol=1e-2)


@pytest.mark.parametrize("precision", ["exact", "fast"])
@pytest.mark.parametrize("shape,spacing", [((70, 80), None), ((30, 70, 64), (2.0, 1.0, 1.0)),
                                           ((70, 80), (1.0, 0.5))])
def test_halo_is_exact_bit_for_bit(shape, spacing, precision):
    spec = FeatureSpec(families=tuple(FAMILIES), sigmas=(0.7, 2.0), spacing=spacing,
                       precision=precision)
    image = _rng_image(shape)
    whole = compute_features(image, spec)
    halo = spec.halo_for(len(shape))
    # an interior box, and a box touching the image border
    for lo in ([h + 1 for h in halo], [0] * len(shape)):
        lo = [min(l_, n - 6) for l_, n in zip(lo, shape)]
        box = tuple(slice(a, a + 5) for a in lo)
        cut = tuple(slice(max(a - h, 0), min(a + 5 + h, n)) for a, h, n in zip(lo, halo, shape))
        feats = features_of_block(image[cut][..., None], spec)
        inner = tuple(slice(b.start - c.start, b.start - c.start + 5) for b, c in zip(box, cut))
        np.testing.assert_array_equal(feats[inner], whole[box])
    # one pixel less of margin is not enough (the halo is tight)
    small = tuple(h - 1 for h in halo)
    lo = [n // 2 for n in shape]
    cut = tuple(slice(a - h, a + 5 + h) for a, h in zip(lo, small))
    feats = features_of_block(image[cut][..., None], spec)
    inner = tuple(slice(h, h + 5) for h in small)
    assert not np.array_equal(feats[inner], whole[tuple(slice(a, a + 5) for a in lo)])


def test_per_family_sigmas_and_dict_roundtrip():
    spec = FeatureSpec(families=("intensity", "gaussian", "dog"),
                       sigmas={"gaussian": (0.5,), "dog": (2, 4)})
    assert spec.names == ["intensity[ch0]", "gaussian(sigma=0.5)[ch0]",
                          "dog(sigma=2)[ch0]", "dog(sigma=4)[ch0]"]
    assert FeatureSpec.from_dict(spec.to_dict()) == spec
    assert FeatureSpec.from_dict(ALL.to_dict()) == ALL
    assert spec.halo_for(2) == (16, 16)


def test_default_and_presets():
    assert FeatureSpec() == FeatureSpec.preset("default") == FeatureSpec.for_object_size(20)
    for name in PRESETS:
        spec = FeatureSpec.preset(name)
        assert len(spec.names) == len(set(spec.names))
    big = FeatureSpec.for_object_size(80)
    assert max(big.sigmas_for("dog")) > max(FeatureSpec.for_object_size(10).sigmas_for("dog"))


@pytest.mark.parametrize("kwargs", [dict(families=("nope",)), dict(sigmas=(0,)),
                                    dict(sigmas=(1, 1)), dict(spacing=(1.0,)),
                                    dict(families=("gaussian",), sigmas={"dog": (1,)}),
                                    dict(families=("gaussian", "dog"), sigmas={"dog": (1,)})])
def test_bad_spec(kwargs):
    with pytest.raises(InvalidParameterError):
        FeatureSpec(**kwargs)


def test_unknown_preset():
    with pytest.raises(InvalidParameterError, match="choose from"):
        FeatureSpec.preset("huge")


def test_image_smaller_than_halo():
    spec = FeatureSpec(families=("gaussian",), sigmas=(4,))
    with pytest.raises(InvalidImageError, match="halo"):
        compute_features(np.zeros((10, 100)), spec)
    compute_features(np.zeros((17, 17)), spec)  # one more than the halo is enough


def test_spacing_length_must_match():
    with pytest.raises(InvalidImageError, match="spacing"):
        compute_features(np.zeros((40, 40, 40)), FeatureSpec(sigmas=(1,), spacing=(1.0, 1.0)))


def test_nan_refused():
    image = np.zeros((40, 40))
    image[3, 3] = np.nan
    with pytest.raises(InvalidImageError, match="NaN"):
        compute_features(image)


def _scipy_reference(image, spec):
    """Plain scipy.ndimage reference of intensity/gaussian/dog: one filter per column."""
    g = lambda s: ndi.gaussian_filter(image, s, mode="reflect", truncate=4.0, output=np.float32)
    cols = [image] if "intensity" in spec.families else []
    cols += [g(s) for s in spec.sigmas_for("gaussian")]
    cols += [g(0.625 * s) - g(s) for s in spec.sigmas_for("dog")]
    return np.stack(cols, axis=-1)


@pytest.mark.parametrize("shape", [(97, 131), (23, 45, 51)])
def test_default_spec_equals_plain_scipy_reference(shape):
    # shared smoothings and crops change nothing: the same float32 numbers
    spec = FeatureSpec(families=("intensity", "gaussian", "dog"),
                       sigmas={"gaussian": (0.5, 1.0), "dog": (1.6, 2.5, 4.0)}, precision="exact")
    image = _rng_image(shape, seed=3)
    np.testing.assert_array_equal(compute_features(image, spec), _scipy_reference(image, spec))


@pytest.mark.parametrize("precision", ["exact", "fast"])
@pytest.mark.parametrize("spec,shape", [
    (FeatureSpec(), (131, 117)),
    (ALL, (61, 75)),
    (FeatureSpec(families=tuple(FAMILIES), sigmas=(0.7, 2.0), spacing=(2.0, 1.0, 1.0)),
     (19, 41, 37)),
])
def test_crop_equals_whole_block_bit_for_bit(spec, shape, precision):
    spec = dataclasses.replace(spec, precision=precision)
    image = _rng_image(shape, seed=1)[..., None]
    whole = features_of_block(image, spec)
    n = len(shape)
    crops = [tuple(slice(5, s - 9) for s in shape),          # interior
             tuple(slice(0, 7) for _ in shape),               # touching the start
             tuple(slice(s - 4, s) for s in shape),           # touching the end
             tuple(slice(3, 4) for _ in range(n))]            # one pixel
    for crop in crops:
        part = features_of_block(image, spec, crop=crop)
        assert part.shape == whole[crop].shape
        np.testing.assert_array_equal(part, whole[crop])


@pytest.mark.parametrize("precision", ["exact", "fast"])
@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("shape", [(53, 71), (17, 29, 23)])
def test_pieces_and_threads_give_the_same_numbers(monkeypatch, shape, n_threads, precision):
    # a large region is computed block by block (on threads): same bits
    import pixelforest.features.compute as features

    spec = FeatureSpec(families=("intensity", "gaussian", "dog", "gradient", "structure"),
                       sigmas=(0.7, 2.0), precision=precision)
    image = _rng_image(shape, seed=4)[..., None]
    whole = features_of_block(image, spec)
    monkeypatch.setattr(features, "_BLOCK_2D", 16)
    monkeypatch.setattr(features, "_BLOCK_3D", 7)
    np.testing.assert_array_equal(features_of_block(image, spec, n_threads=n_threads),
                                  whole)
    crop = tuple(slice(3, n - 2) for n in shape)
    np.testing.assert_array_equal(
        features_of_block(image, spec, crop=crop, n_threads=n_threads), whole[crop])


@pytest.mark.parametrize("shape, spec, n_channels", [
    ((1100, 700), FeatureSpec(), 1),                       # 3 x 2 blocks of 512
    ((40, 200, 130), FeatureSpec(sigmas=(0.7, 2.0)), 1),   # 3D blocks of 96
    ((600, 90), ALL, 2),                                    # every family, two channels
])
def test_features_at_pixels_equal_the_whole_stack(shape, spec, n_channels):
    rng = np.random.default_rng(7)
    image = rng.normal(0.5, 0.2, shape + (n_channels,)).astype(np.float32)
    whole = features_of_block(image, spec).reshape(-1, spec.n_features(n_channels,
                                                                            len(shape)))
    n_pixels = whole.shape[0]
    # clustered and scattered pixels, in any order, repeats allowed
    index = np.concatenate([rng.integers(0, n_pixels, 300), np.arange(50, 90),
                            [0, n_pixels - 1, 5, 5]])
    for n_threads in (1, 2):
        rows = features_at(image, spec, index, n_threads=n_threads)
        assert rows.dtype == np.float32 and rows.shape == (index.size, whole.shape[1])
        np.testing.assert_array_equal(rows, whole[index])


@pytest.mark.parametrize("precision", ["exact", "fast"])
def test_features_at_no_pixels_and_one_piece_only(monkeypatch, precision):
    import pixelforest.features.compute as features

    spec = FeatureSpec(precision=precision)
    image = _rng_image((1100, 1100, 1))
    assert features_at(image, spec, []).shape == (0, spec.n_features())
    # pixels in one corner: only that block is filtered
    computed = []
    name = "_channel_features_fast" if precision == "fast" else "_channel_features"
    original = getattr(features, name)
    monkeypatch.setattr(features, name,
                        lambda *a, **k: computed.append(a[5]) or original(*a, **k))
    index = np.ravel_multi_index(([3, 10, 500], [7, 400, 511]), (1100, 1100))
    rows = features_at(image, spec, index)
    assert computed == [((0, 512), (0, 512))]
    whole = features_of_block(image, spec).reshape(-1, rows.shape[1])
    np.testing.assert_array_equal(rows, whole[index])
