"""Tests of pixelforest.scale.tiled: tiled == in-memory, exact global statistics,
streamed outputs, interruption, and a real dask.distributed cluster."""

import os
import sys
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import tifffile
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import ndimage as ndi

from pixelforest.classify.pipeline import PredictionPipeline
from pixelforest.scale import chunking, statistics, tiled
from pixelforest.scale.chunking import block_chunks as block_chunks_of
from pixelforest.scale.engine import map_blocks_with_halo
from pixelforest.scale.writers import auto_progress
from pixelforest.classify.classifier import PixelClassifier, default_estimator
from pixelforest.datasets import synthetic_nuclei
from pixelforest.errors import (
    ChannelMismatchError,
    InvalidImageError,
    InvalidParameterError,
    NotFittedError,
    OutputExistsError,
    UnsupportedFormatError,
)
from pixelforest.features import FeatureSpec
from pixelforest.io.images import imwrite
from pixelforest.preprocess.normalize import percentile_bounds
from pixelforest.scale.tiled import (
    choose_chunks,
    lazy_percentile_bounds,
    predict_tiled,
    predict_to_file,
)


# scikit-learn's joblib wrapper empties the global warning filters while it runs
# (warnings.resetwarnings in sklearn.utils.parallel._FuncWrapper), so a forest
# predicting in another thread at that moment may warn that "delayed should be
# used with Parallel": a race in scikit-learn, harmless to the results.
pytestmark = pytest.mark.filterwarnings(
    "ignore:`sklearn.utils.parallel.delayed` should be used:UserWarning")

SPEC = FeatureSpec(sigmas=(1.0, 2.0))


def _scribbles(labels):
    """Foreground strokes on object rows, background strokes far from objects."""
    scrib = np.zeros(labels.shape, np.uint8)
    fg = labels > 0
    bg = ~ndi.binary_dilation(fg, iterations=4)
    scrib[bg & (np.indices(labels.shape).sum(0) % 7 == 0)] = 1
    scrib[ndi.binary_erosion(fg, iterations=2) & (np.indices(labels.shape)[-1] % 3 == 0)] = 2
    return scrib


def _fit(image, labels, **kwargs):
    clf = PixelClassifier(SPEC, estimator=default_estimator(n_estimators=8), **kwargs)
    return clf.fit(image, _scribbles(labels))


@pytest.fixture(scope="module")
def data2d():
    image, labels = synthetic_nuclei((96, 80), n=8, seed=3)
    return image, labels, _fit(image, labels)


@pytest.fixture(scope="module")
def data3d():
    image, labels = synthetic_nuclei((40, 48, 44), n=6, seed=4)
    return image, labels, _fit(image, labels)


@pytest.fixture(scope="module")
def data_rgb():
    image, labels = synthetic_nuclei((70, 64), n=6, seed=5)
    rng = np.random.default_rng(0)
    # channels first, each channel a different stretch plus noise
    rgb = np.stack([image, image // 2 + 50, rng.integers(0, 300, image.shape)]).astype(np.uint16)
    return rgb, labels, _fit(rgb, labels, channel_axis=0)


# --------------------------------------------------------------------------
# exact percentiles without loading the image
# --------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16", "int32", "uint32",
                                   "int64", "float16", "float32", "float64"])
@pytest.mark.parametrize("low,high", [(1.0, 99.8), (0.0, 100.0), (33.3, 66.7)])
def test_lazy_percentile_bounds_equal_numpy(dtype, low, high):
    rng = np.random.default_rng(7)
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        image = rng.integers(info.min, info.max, size=(41, 3, 29), dtype=dtype, endpoint=True)
    else:
        image = (rng.standard_normal((41, 3, 29)) * 10 ** rng.uniform(-3, 3, (41, 3, 29))
                 ).astype(dtype)
    expected = percentile_bounds(image, low, high, channel_axis=1)
    got = lazy_percentile_bounds(da.from_array(image, chunks=(7, 1, 11)), low, high,
                                 channel_axis=1, scheduler="synchronous")
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, expected)


def test_lazy_percentile_bounds_refines_floats_beyond_one_pass(monkeypatch):
    # force several histogram passes before values are gathered
    monkeypatch.setattr(statistics, "_GATHER_LIMIT", 4)
    monkeypatch.setattr(statistics, "_N_BINS", 8)
    rng = np.random.default_rng(1)
    image = np.concatenate([rng.normal(size=3000), np.full(500, 0.25)]).astype(np.float32)
    image = image.reshape(50, 70)
    for low, high in [(1.0, 99.8), (10.0, 90.0), (0.0, 100.0)]:
        np.testing.assert_array_equal(
            lazy_percentile_bounds(da.from_array(image, chunks=13), low, high,
                                   scheduler="synchronous"),
            percentile_bounds(image, low, high))


@settings(max_examples=25, deadline=None)
@given(image=hnp.arrays(st.sampled_from([np.uint8, np.int16, np.float32, np.float64]),
                        hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=30),
                        elements={"allow_nan": False, "allow_infinity": False}),
       chunk=st.integers(1, 17),
       q=st.tuples(st.floats(0, 100), st.floats(0, 100)).filter(lambda t: t[0] < t[1]))
def test_lazy_percentile_bounds_property(image, chunk, q):
    np.testing.assert_array_equal(
        lazy_percentile_bounds(da.from_array(image, chunks=chunk), *q, scheduler="synchronous"),
        percentile_bounds(image, *q))


def test_lazy_percentile_bounds_rejects_nan_and_bad_percentiles():
    image = da.from_array(np.array([[1.0, np.nan], [2.0, 3.0]]), chunks=1)
    with pytest.raises(InvalidImageError, match="NaN"):
        lazy_percentile_bounds(image, scheduler="synchronous")
    with pytest.raises(InvalidParameterError, match="low < high"):
        lazy_percentile_bounds(np.ones((4, 4)), 50, 10)


# --------------------------------------------------------------------------
# the map_overlap engine with an exact filter
# --------------------------------------------------------------------------

def _smooth(block, *, sigma):
    return ndi.gaussian_filter(block[..., 0].astype(np.float32), sigma)


@pytest.mark.parametrize("shape,chunks", [((101, 89), (23, 17)), ((37, 53), (9, 53)),
                                          ((19, 41, 33), (7, 13, 11))])
def test_map_tiles_equals_whole_image_filter(shape, chunks):
    rng = np.random.default_rng(0)
    image = rng.normal(size=shape).astype(np.float32)
    halo = (int(4 * 1.5 + 0.5),) * len(shape)  # scipy's kernel radius at truncate=4
    planned = block_chunks_of(shape, chunks, halo)
    out = map_blocks_with_halo(_smooth, da.from_array(image[..., None]), halo=halo,
                               chunks=planned, n_out=None, dtype=np.float32,
                               func_kwargs={"sigma": 1.5})
    assert out.chunks == planned
    np.testing.assert_array_equal(out.compute(scheduler="synchronous"),
                                  ndi.gaussian_filter(image, 1.5))


def test_block_chunks_merge_a_last_chunk_thinner_than_the_halo():
    assert block_chunks_of((100,), (47,), (10,)) == ((47, 53),)
    assert block_chunks_of((100,), (45,), (10,)) == ((45, 45, 10),)
    assert block_chunks_of((30,), (64,), (40,)) == ((30,),)  # one block: no halo needed
    with pytest.raises(InvalidParameterError, match="smaller than the model's halo"):
        block_chunks_of((100,), (5,), (10,))


@pytest.mark.parametrize("workers", [1, 2, 16])
def test_choose_chunks_respects_the_memory_budget(workers):
    halo, n_features = (12, 12), 40
    chunks = choose_chunks((8192, 8192), n_features=n_features, halo=halo, workers=workers)
    block_bytes = np.prod([c + 2 * h for c, h in zip(chunks, halo)]) * n_features * 4
    assert workers * block_bytes * chunking._WORKING_FACTOR <= tiled.DEFAULT_MEMORY_BUDGET
    # and it does not waste the budget (the next multiple of 64 would not fit)
    bigger = np.prod([c + 64 + 2 * h for c, h in zip(chunks, halo)]) * n_features * 4
    assert workers * bigger * chunking._WORKING_FACTOR > tiled.DEFAULT_MEMORY_BUDGET
    # small axes are taken whole
    assert choose_chunks((5, 8192, 8192), n_features=n_features, halo=(2, 12, 12))[0] == 5


# --------------------------------------------------------------------------
# tiled prediction == in-memory prediction
# --------------------------------------------------------------------------

@pytest.mark.parametrize("chunks", [(29, 31), (37, 13), 12, (96, 80), 1000])
def test_predict_tiled_equals_predict_2d(data2d, chunks):
    image, _, clf = data2d
    lazy = predict_tiled(clf, image, chunks=chunks, workers=2)
    assert isinstance(lazy, da.Array)
    np.testing.assert_array_equal(lazy.compute(), clf.predict(image))
    assert lazy.dtype == clf.classes_.dtype


def test_predict_tiled_probabilities_equal_predict_proba(data2d):
    image, _, clf = data2d
    lazy = predict_tiled(clf, image, chunks=(23, 41), probabilities=True, workers=2)
    assert lazy.dtype == np.float32
    np.testing.assert_array_equal(lazy.compute(), clf.predict_proba(image))


def test_predict_tiled_3d_chunked_in_z(data3d):
    image, _, clf = data3d
    lazy = predict_tiled(clf, image, chunks=(13, 17, 19), workers=2)
    assert len(lazy.chunks[0]) > 1  # really cut along z
    np.testing.assert_array_equal(lazy.compute(), clf.predict(image))
    proba = predict_tiled(clf, image, chunks=(14, 48, 23), probabilities=True, workers=2)
    np.testing.assert_array_equal(proba.compute(), clf.predict_proba(image))


def test_predict_tiled_multichannel_channels_first(data_rgb):
    rgb, _, clf = data_rgb
    np.testing.assert_array_equal(
        predict_tiled(clf, rgb, chunks=(19, 23), workers=2).compute(), clf.predict(rgb))
    # a dask input chunked along channels too
    lazy_rgb = da.from_array(rgb, chunks=(1, 30, 30))
    np.testing.assert_array_equal(
        predict_tiled(clf, lazy_rgb, chunks=(31, 17), probabilities=True).compute(),
        clf.predict_proba(rgb))
    with pytest.raises(ChannelMismatchError, match="3"):
        predict_tiled(clf, rgb[:2], chunks=32)


def test_predict_tiled_reads_zarr_and_tiff_lazily(data2d, tmp_path):
    image, _, clf = data2d
    imwrite(tmp_path / "in.zarr", image, chunks=(16, 16))
    v2 = zarr.create_array(store=str(tmp_path / "v2.zarr"), shape=image.shape, chunks=(50, 30),
                           dtype=image.dtype, zarr_format=2)
    v2[:] = image
    tifffile.imwrite(tmp_path / "in.tif", image, tile=(32, 32))
    tifffile.imwrite(tmp_path / "strips.tif", image, rowsperstrip=7)
    expected = clf.predict(image)
    for path in (tmp_path / "in.zarr", tmp_path / "v2.zarr", tmp_path / "in.tif",
                 tmp_path / "strips.tif", str(tmp_path / "in.zarr")):
        np.testing.assert_array_equal(predict_tiled(clf, path, chunks=40).compute(), expected)


def test_predict_tiled_uint8_and_float_images(data2d):
    _, labels, _ = data2d
    image8 = (synthetic_nuclei((96, 80), n=8, seed=3)[0] // 16).astype(np.uint8)
    clf = _fit(image8, labels)
    np.testing.assert_array_equal(predict_tiled(clf, image8, chunks=33).compute(),
                                  clf.predict(image8))
    imagef = image8.astype(np.float64) / 7.0
    clf = _fit(imagef, labels)
    np.testing.assert_array_equal(predict_tiled(clf, imagef, chunks=33).compute(),
                                  clf.predict(imagef))


def test_predict_tiled_without_normalization(data2d):
    image, labels, _ = data2d
    clf = _fit(image, labels, normalize=None)
    np.testing.assert_array_equal(predict_tiled(clf, image, chunks=30).compute(),
                                  clf.predict(image))


def test_predict_tiled_errors(data2d):
    image, _, clf = data2d
    with pytest.raises(NotFittedError, match="fit"):
        predict_tiled(PixelClassifier(), image)
    with pytest.raises(InvalidParameterError, match="halo"):
        predict_tiled(clf, image, chunks=5)
    with pytest.raises(InvalidParameterError, match="chunks"):
        predict_tiled(clf, image, chunks=(0, 10))
    with pytest.raises(InvalidImageError, match="spatial"):
        predict_tiled(clf, np.ones((4, 40, 40, 3, 2)))
    with pytest.raises(InvalidParameterError, match="workers"):
        predict_tiled(clf, image, workers=0)
    with pytest.raises(InvalidParameterError, match="scheduler"):
        predict_tiled(clf, image, scheduler="fast")


# --------------------------------------------------------------------------
# streamed outputs
# --------------------------------------------------------------------------

def _no_temp_files(folder):
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("name", ["out.zarr", "out.tif"])
@pytest.mark.parametrize("probabilities", [False, True])
def test_predict_to_file_equals_predict(data2d, tmp_path, name, probabilities):
    image, _, clf = data2d
    out = predict_to_file(clf, image, tmp_path / name, chunks=(31, 29), workers=2,
                          probabilities=probabilities, progress=False)
    assert out == tmp_path / name
    written = zarr.open_array(str(out))[:] if name.endswith("zarr") else tifffile.imread(out)
    expected = clf.predict_proba(image) if probabilities else clf.predict(image)
    assert written.dtype == expected.dtype
    np.testing.assert_array_equal(written, expected)
    assert _no_temp_files(tmp_path) == []


@pytest.mark.parametrize("name", ["out.zarr", "out.tif"])
def test_progress_bar_counts_every_block(data2d, tmp_path, monkeypatch, name):
    import tqdm.auto

    closed = []

    class Recording(tqdm.auto.tqdm):
        def __exit__(self, *exc):
            closed.append((self.n, self.total, self.disable))
            return super().__exit__(*exc)

    monkeypatch.setattr(tqdm.auto, "tqdm", Recording)
    image, _, clf = data2d
    predict_to_file(clf, image, tmp_path / name, chunks=(24, 40), progress=True)
    assert closed == [(8, 8, False)]  # 4 x 2 blocks
    predict_to_file(clf, image, tmp_path / ("quiet" + name), chunks=(24, 40))
    assert closed[-1][2] is True  # not a terminal (pytest captures stderr): no bar


def test_progress_only_on_a_terminal_outside_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert auto_progress(None) is True
    monkeypatch.setenv("CI", "true")
    assert auto_progress(None) is False
    assert auto_progress(True) is True and auto_progress(False) is False


def test_predict_to_file_tiled_bigtiff_3d(data3d, tmp_path):
    image, _, clf = data3d
    out = predict_to_file(clf, image, tmp_path / "vol.tiff", chunks=(15, 20, 48))
    with tifffile.TiffFile(out) as tif:
        assert tif.is_bigtiff and tif.pages[0].is_tiled
        np.testing.assert_array_equal(tif.asarray(), clf.predict(image))
    out = predict_to_file(clf, image, tmp_path / "proba.tif", chunks=(26, 48, 20),
                          probabilities=True)
    np.testing.assert_array_equal(tifffile.imread(out), clf.predict_proba(image))


def test_predict_to_file_large_tiff_has_many_tiles(tmp_path):
    image, labels = synthetic_nuclei((600, 530), n=40, seed=1)
    clf = _fit(image, labels)
    out = predict_to_file(clf, image, tmp_path / "big.tif", chunks=(170, 300), workers=2)
    with tifffile.TiffFile(out) as tif:
        assert len(tif.pages[0].dataoffsets) == 3 * 3  # 256-pixel tiles
        np.testing.assert_array_equal(tif.asarray(), clf.predict(image))


def test_predict_to_file_refuses_existing_output_and_input(data2d, tmp_path):
    image, _, clf = data2d
    out = tmp_path / "labels.zarr"
    predict_to_file(clf, image, out, chunks=48)
    before = os.stat(out / "zarr.json").st_mtime_ns
    with pytest.raises(OutputExistsError, match="overwrite"):
        predict_to_file(clf, image, out, chunks=48)
    assert os.stat(out / "zarr.json").st_mtime_ns == before
    predict_to_file(clf, image[::-1].copy(), out, chunks=48, overwrite=True)
    np.testing.assert_array_equal(zarr.open_array(str(out))[:], clf.predict(image[::-1]))
    imwrite(tmp_path / "in.tif", image)
    with pytest.raises(OutputExistsError, match="input"):
        predict_to_file(clf, tmp_path / "in.tif", tmp_path / "in.tif", overwrite=True)
    with pytest.raises(UnsupportedFormatError, match="zarr"):
        predict_to_file(clf, image, tmp_path / "labels.bmp")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif", "labels.zarr"]


def _metadata(path):
    """The "pixelforest" metadata of an output, read with zarr or tifffile directly."""
    path = Path(path)
    if path.suffix == ".zarr":
        return dict(zarr.open_array(str(path)).attrs)["pixelforest"]
    with tifffile.TiffFile(path) as tif:
        return tif.shaped_metadata[0]["pixelforest"]


@pytest.mark.parametrize("name", ["out.zarr", "out.tif"])
def test_outputs_carry_their_class_values_names_and_foreground(data2d, tmp_path, name):
    image, _, clf = data2d
    labels = clf.predict(image)
    assert clf.classes_.tolist() == [1, 2]
    names = {"1": "background", "2": "foreground"}
    out = predict_to_file(clf, image, tmp_path / name, chunks=40)
    assert _metadata(out) == {"kind": "labels", "classes": [1, 2], "class_names": names,
                              "foreground": 2}
    out = predict_to_file(clf, image, tmp_path / ("mask-" + name), chunks=40, kind="mask")
    mask = zarr.open_array(str(out))[:] if name.endswith("zarr") else tifffile.imread(out)
    assert mask.dtype == np.uint8
    np.testing.assert_array_equal(mask, np.where(labels == 2, 255, 0))
    assert _metadata(out) == {"kind": "mask", "classes": [1, 2], "class_names": names,
                              "foreground": 2, "mask_value": 255}
    out = predict_to_file(clf, image, tmp_path / ("bg-" + name), chunks=40, kind="mask",
                          foreground=1)
    mask = zarr.open_array(str(out))[:] if name.endswith("zarr") else tifffile.imread(out)
    np.testing.assert_array_equal(mask, np.where(labels == 1, 255, 0))
    assert _metadata(out)["foreground"] == 1
    for kwargs in ({"probabilities": True}, {"kind": "probabilities"}):
        out = predict_to_file(clf, image, tmp_path / name, chunks=40, overwrite=True, **kwargs)
        meta = _metadata(out)
        assert meta["kind"] == "probabilities" and meta["class_names"] == names
    assert _no_temp_files(tmp_path) == []


def test_output_kind_and_foreground_errors(data2d, tmp_path):
    image, labels, clf = data2d
    with pytest.raises(InvalidParameterError, match="foreground"):
        predict_to_file(clf, image, tmp_path / "a.zarr", kind="mask", foreground=3)
    with pytest.raises(InvalidParameterError, match="labels"):
        predict_to_file(clf, image, tmp_path / "a.zarr", kind="outline")
    with pytest.raises(InvalidParameterError, match="probabilities"):
        predict_to_file(clf, image, tmp_path / "a.zarr", kind="mask", probabilities=True)
    assert list(tmp_path.iterdir()) == []
    # three classes: named by value, the largest is the foreground
    scrib = _scribbles(labels)
    scrib[(scrib == 1) & (np.arange(image.shape[1]) < 20)] = 3
    clf3 = PixelClassifier(SPEC, estimator=default_estimator(n_estimators=4)).fit(image, scrib)
    out = predict_to_file(clf3, image, tmp_path / "three.zarr", chunks=48, kind="mask")
    assert _metadata(out)["class_names"] == {"1": "class 1", "2": "class 2", "3": "class 3"}
    assert _metadata(out)["foreground"] == 3
    np.testing.assert_array_equal(zarr.open_array(str(out))[:],
                                  np.where(clf3.predict(image) == 3, 255, 0))


def test_predict_to_png_for_labels_and_masks(data2d, data3d, tmp_path):
    import imageio.v3 as iio

    image, _, clf = data2d
    out = predict_to_file(clf, image, tmp_path / "labels.png", chunks=40)
    assert out.is_file()
    np.testing.assert_array_equal(iio.imread(out), clf.predict(image))
    out = predict_to_file(clf, image, tmp_path / "mask.png", chunks=40, kind="mask")
    np.testing.assert_array_equal(iio.imread(out), np.where(clf.predict(image) == 2, 255, 0))
    with pytest.raises(UnsupportedFormatError, match="tif"):
        predict_to_file(clf, image, tmp_path / "proba.png", probabilities=True)
    with pytest.raises(UnsupportedFormatError, match="lossy"):
        predict_to_file(clf, image, tmp_path / "labels.jpg")
    vol, _, clf3 = data3d
    with pytest.raises(UnsupportedFormatError, match="2-D"):
        predict_to_file(clf3, vol, tmp_path / "vol.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.png", "mask.png"]


class _Interrupting:
    """Replaces the pipeline's block step to fail on its n-th block."""

    def __init__(self, n, exc):
        self.n, self.exc, self.calls = n, exc, 0
        self.original = PredictionPipeline.predict_proba_block

    def install(self, monkeypatch):
        def step(pipeline, block, stats, **kwargs):
            self.calls += 1
            if self.calls == self.n:
                raise self.exc
            return self.original(pipeline, block, stats, **kwargs)

        monkeypatch.setattr(PredictionPipeline, "predict_proba_block", step)
        return self


@pytest.mark.parametrize("name", ["out.zarr", "out.tif"])
@pytest.mark.parametrize("exc", [KeyboardInterrupt(), MemoryError("simulated")])
def test_interrupted_write_leaves_nothing(data2d, tmp_path, monkeypatch, name, exc):
    image, labels, _ = data2d
    clf = _fit(image, labels)
    wrapper = _Interrupting(4, exc).install(monkeypatch)
    with pytest.raises(type(exc)):
        predict_to_file(clf, image, tmp_path / name, chunks=24, workers=2)
    assert wrapper.calls >= 4
    assert list(tmp_path.iterdir()) == []


def test_interrupted_overwrite_keeps_the_previous_output(data2d, tmp_path, monkeypatch):
    image, labels, _ = data2d
    clf = _fit(image, labels)
    out = predict_to_file(clf, image, tmp_path / "out.zarr", chunks=24)
    previous = zarr.open_array(str(out))[:]
    _Interrupting(2, KeyboardInterrupt()).install(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        predict_to_file(clf, image[:, ::-1].copy(), out, chunks=24, overwrite=True)
    np.testing.assert_array_equal(zarr.open_array(str(out))[:], previous)
    assert _no_temp_files(tmp_path) == []


# --------------------------------------------------------------------------
# training holds only the labelled pixels (issue 5, item 5)
# --------------------------------------------------------------------------


# --------------------------------------------------------------------------
# a real dask.distributed cluster (processes on loopback)
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  host="127.0.0.1", dashboard_address=":0") as lc:
        with distributed.Client(lc, set_as_default=False) as client:
            yield lc, client


def test_distributed_cluster_equals_local(cluster, data2d, data3d, tmp_path, monkeypatch):
    lc, client = cluster
    image, _, clf = data2d
    local = predict_tiled(clf, image, chunks=(29, 31)).compute()
    remote = predict_tiled(clf, image, chunks=(29, 31), scheduler=client)
    np.testing.assert_array_equal(remote.compute(scheduler=client), local)
    np.testing.assert_array_equal(local, clf.predict(image))
    # by address, from a Zarr input to a Zarr store written by the worker processes,
    # with relative paths (the workers run in another folder)
    imwrite(tmp_path / "in.zarr", image, chunks=(32, 32))
    monkeypatch.chdir(tmp_path)
    out = predict_to_file(clf, "in.zarr", "remote.zarr", chunks=(29, 31),
                          probabilities=True, scheduler=lc.scheduler_address)
    assert out == Path("remote.zarr")
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "remote.zarr"))[:],
                                  clf.predict_proba(image))
    # 3D, chunked in z, to a BigTIFF assembled here
    vol, _, clf3 = data3d
    out = predict_to_file(clf3, vol, tmp_path / "remote.tif", chunks=(13, 24, 44),
                          scheduler=client)
    np.testing.assert_array_equal(tifffile.imread(out), clf3.predict(vol))
    assert _no_temp_files(tmp_path) == []


def test_distributed_failure_leaves_nothing(cluster, data2d, tmp_path):
    """A block that fails on a worker (a corrupt chunk of the input Zarr, read
    by the worker itself) stops the job and leaves no partial output."""
    _, client = cluster
    image, _, clf = data2d
    source = tmp_path / "in"
    source.mkdir()
    imwrite(source / "in.zarr", image, chunks=(24, 24))
    chunk_files = sorted(p for p in (source / "in.zarr").rglob("*")
                         if p.is_file() and p.name != "zarr.json")
    chunk_files[len(chunk_files) // 2].write_bytes(b"not a compressed chunk" * 4)
    out = tmp_path / "out"
    out.mkdir()
    # (read by the worker: a CorruptFileError naming the chunk, or numcodecs' own error)
    with pytest.raises((RuntimeError, OSError), match="decompression"):
        predict_to_file(clf, source / "in.zarr", out / "bad.zarr", chunks=24,
                        scheduler=client)
    assert list(out.iterdir()) == []


def test_zarr_output_stores_all_zero_blocks(data2d, tmp_path):
    # a mask whose blocks are partly all background: every chunk is stored, so
    # reading it back does not warn of missing chunks (which would mean lost data)
    import warnings

    from pixelforest.errors import MissingChunksWarning
    from pixelforest.io.images import imread

    image, labels, clf = data2d
    dark = image.copy()
    rng = np.random.default_rng(0)
    background = image[labels == 0]  # half the image without objects, plain background
    dark[: dark.shape[0] // 2] = rng.choice(background, dark[: dark.shape[0] // 2].shape)
    out = predict_to_file(clf, dark, tmp_path / "mask.zarr", chunks=24, kind="mask")
    arr = zarr.open_array(str(out))
    assert arr.nchunks_initialized == arr.nchunks
    with warnings.catch_warnings():
        warnings.simplefilter("error", MissingChunksWarning)
        np.testing.assert_array_equal(imread(out), arr[:])


def test_labels_and_masks_as_ome_zarr_label_images(data2d, tmp_path):
    """``*.ome.zarr``: an OME-NGFF label image (class names and colours of semantic labels)
    with pixelforest's metadata; probabilities, which are no labels, are refused."""
    from pixelforest.io.images import read_metadata
    from pixelforest.io.ngff import read_ome_zarr_labels

    image, _, clf = data2d
    out = predict_to_file(clf, image, tmp_path / "labels.ome.zarr", chunks=(23, 31),
                          workers=2)
    stored, info = read_ome_zarr_labels(out)
    np.testing.assert_array_equal(stored, clf.predict(image))
    assert info["version"] == "0.5" and info["class_names"] == {1: "background",
                                                                2: "foreground"}
    assert read_metadata(out)["kind"] == "labels"
    mask = predict_to_file(clf, image, tmp_path / "mask.ome.zarr", kind="mask", chunks=40)
    np.testing.assert_array_equal(read_ome_zarr_labels(mask)[0],
                                  np.where(clf.predict(image) == 2, 255, 0))
    with pytest.raises(UnsupportedFormatError, match="not probabilities"):
        predict_to_file(clf, image, tmp_path / "p.ome.zarr", kind="probabilities")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.ome.zarr", "mask.ome.zarr"]
