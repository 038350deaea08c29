"""Tiled instance segmentation (issue 12, "At scale"): blocks with an overlap, whole-image
statistics, objects stitched by their anchor pixels, so that the result is the in-memory
``predict_instances`` up to a renumbering for every object smaller than the overlap."""

import gc

import numpy as np
import pytest
import tifffile
import zarr
from scipy import ndimage as ndi

from pixelforest.classify.classifier import PixelClassifier
from pixelforest.classify.pipeline import pipeline_of
from pixelforest.cli.main import main
from pixelforest.errors import Interrupted, InvalidParameterError, LargeObjectsWarning
from pixelforest.evaluate.metrics import match_objects
from pixelforest.features import FeatureSpec
from pixelforest.forest.defaults import default_estimator
from pixelforest.io.images import imwrite, read_metadata
from pixelforest.io.model_file import save_model
from pixelforest.preprocess.normalize import percentile_bounds
from pixelforest.scale import instances as scale_instances
from pixelforest.scale.batch import predict_files
from pixelforest.scale.instances import InstanceOptions, instances_to_store
from pixelforest.scale.scheduler import open_scheduler
from pixelforest.scale.tiled import predict_tiled, predict_to_file
from pixelforest.segment.instances import (
    contrast_statistics,
    estimate_object_radius,
    foreground_mask,
)

pytestmark = pytest.mark.filterwarnings(
    "ignore:`sklearn.utils.parallel.delayed` should be used:UserWarning")


# ------------------------------------------------------------------ data


def touching_discs(shape=(190, 230), seed=0, radius=8):
    """Pairs and triples of touching discs (and single ones) on a noisy background.

    Returns ``(image float32, truth labels)``; discs of one clump touch (their
    centres ``1.7 radius`` apart), clumps are at least ``radius`` apart.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    truth = np.zeros(shape, np.int32)
    taken = np.zeros(shape, bool)
    label = 0
    for _ in range(400):
        n = int(rng.integers(1, 4))
        cy = rng.uniform(radius + 2, shape[0] - radius - 2)
        cx = rng.uniform(radius + 2, shape[1] - 4 * radius)
        angle = rng.uniform(0, np.pi)
        centres = [(cy + 1.7 * radius * k * np.sin(angle), cx + 1.7 * radius * k * np.cos(angle))
                   for k in range(n)]
        discs = [(yy - y) ** 2 + (xx - x) ** 2 < radius ** 2 for y, x in centres]
        clump = np.logical_or.reduce(discs)
        if (ndi.binary_dilation(clump, iterations=radius) & taken).any():
            continue
        if any(not (0 < y < shape[0] - 1 and 0 < x < shape[1] - 1) for y, x in centres):
            continue
        for disc in discs:
            label += 1
            truth[disc & (truth == 0)] = label
        taken |= clump
    image = 20 + rng.normal(0, 4, shape)
    image[truth > 0] += 80
    # a darker seam where two discs touch: the contrast that splits them
    seams = ndi.morphological_gradient(truth, size=3) > 0
    image[seams & (truth > 0)] -= 30
    return ndi.gaussian_filter(image, 0.7).astype(np.float32), truth


@pytest.fixture(scope="module")
def discs():
    return touching_discs()


@pytest.fixture(scope="module")
def clf(discs):
    image, truth = discs
    scrib = np.zeros(truth.shape, np.uint8)
    scrib[(ndi.distance_transform_edt(truth == 0) > 3) & (np.arange(truth.shape[1]) % 6 == 0)] = 1
    scrib[ndi.binary_erosion(truth > 0, iterations=2)] = 2
    return PixelClassifier(FeatureSpec(sigmas=(1.0, 2.0)),
                           estimator=default_estimator(n_estimators=5),
                           random_state=0).fit(image, scrib)


# ------------------------------------------------------------ comparison


def assert_same_objects(expected, actual, *, only=None):
    """Each object of ``expected`` (all, or those with ``only[label]``) is exactly one
    object of ``actual``: the same pixels, under one label that nothing else holds."""
    assert actual.dtype == np.uint32 and actual.shape == expected.shape
    boxes = ndi.find_objects(expected)
    checked, wrong = 0, []
    for k, box in enumerate(boxes, start=1):
        if box is None or (only is not None and not only[k]):
            continue
        checked += 1
        mine = expected[box] == k
        values = np.unique(actual[box][mine])
        if len(values) != 1 or values[0] == 0 \
                or np.count_nonzero(actual == values[0]) != np.count_nonzero(mine):
            wrong.append(k)
    assert not wrong, f"{len(wrong)} of {checked} objects differ: labels {wrong[:10]}"
    return checked


def component_extents(probability, threshold=0.5):
    """Per in-memory object: the extent (pixels, largest axis) of the clump holding it."""
    comps, _ = ndi.label(probability > threshold, structure=np.ones((3,) * probability.ndim))
    sizes = [max(s.stop - s.start for s in box) for box in ndi.find_objects(comps)]
    return comps, np.array([0] + sizes)


# ------------------------------------------------------------------ tests


@pytest.mark.parametrize("guide", ["probability", "image"])
@pytest.mark.parametrize("chunks", [(29, 41), 64, 500])
def test_tiled_instances_equal_in_memory_on_touching_discs(clf, discs, guide, chunks):
    image, truth = discs
    expected = clf.predict_instances(image, guide=guide)
    tiled = predict_tiled(clf, image, kind="instances", chunks=chunks, workers=2,
                          instances={"guide": guide})
    assert tiled.dtype == np.uint32
    labels = tiled.compute()
    assert assert_same_objects(expected, labels) == expected.max() >= 20
    assert labels.max() == expected.max()  # numbered 1..N, nothing more
    # the touching discs are split (the data's point)
    assert match_objects(labels, truth).f1 > 0.9


def test_labels_are_unique_and_consecutive_across_blocks(clf, discs):
    image, _ = discs
    labels = predict_tiled(clf, image, kind="instances", chunks=30, workers=2).compute()
    n = int(labels.max())
    assert np.array_equal(np.unique(labels), np.arange(n + 1))
    for k, box in enumerate(ndi.find_objects(labels), start=1):
        # one object, one piece: never two objects of two blocks under one label
        assert ndi.label(labels[box] == k, structure=np.ones((3, 3)))[1] == 1, k


def test_whole_image_statistics_are_those_in_memory(clf, discs, tmp_path):
    image, _ = discs
    prob = clf.predict_proba(image)[..., -1]
    with open_scheduler(None, 2) as sched:
        facts = instances_to_store(pipeline_of(clf), image, tmp_path, sched, chunks=(33, 47),
                                   options=InstanceOptions())
    radius = estimate_object_radius(prob > 0.5)
    assert facts["radius"] == radius  # exact: every component measured by one block
    assert facts["cut"] == 0
    assert all(o >= scale_instances.DEFAULT_OVERLAP_RADII * radius for o in facts["overlap"])
    expected = contrast_statistics(image, foreground_mask(prob, radius=radius))
    got = facts["contrast"]
    np.testing.assert_array_equal(got.bounds, percentile_bounds(image))
    np.testing.assert_allclose(got.weights, expected.weights, rtol=1e-5)
    assert got.low == pytest.approx(expected.low, rel=1e-5, abs=1e-6)
    assert got.high == pytest.approx(expected.high, rel=1e-5)


@pytest.mark.parametrize("n", [1, 2, 999, 1000, 4097])
def test_order_values_of_blocks_are_numpys(n):
    import dask

    rng = np.random.default_rng(n)
    values = rng.normal(size=n).astype(np.float32)
    values[: n // 3] = values[0]  # ties
    cuts = np.sort(rng.integers(0, n, size=4))
    blocks = [dask.delayed(part[:, None]) for part in np.split(values, cuts) if part.size]
    with open_scheduler("synchronous") as sched:
        median = scale_instances._exact_order_value(blocks, n, sched, median=True)
        high = scale_instances._exact_order_value(blocks, n, sched, median=False)
    assert median == float(np.median(values))
    assert high == float(np.percentile(values, 99))


def test_objects_larger_than_the_overlap_are_cut_into_uniquely_labelled_pieces(clf, discs):
    image, truth = discs
    image = image.copy()
    bar = (slice(60, 90), slice(20, 200))  # a bright bar far larger than the overlap
    image[bar] = image[truth > 0].mean() + np.random.default_rng(0).normal(0, 3, (30, 180))
    prob = clf.predict_proba(image)[..., -1]
    expected = clf.predict_instances(image, radius=6.0)
    with pytest.warns(LargeObjectsWarning, match="larger than the blocks' overlap"):
        labels = predict_tiled(clf, image, kind="instances", chunks=40, workers=2,
                               instances={"radius": 6.0, "overlap": 30}).compute()
    n = int(labels.max())
    assert np.array_equal(np.unique(labels), np.arange(n + 1))
    comps, extents = component_extents(prob)
    clump_of = np.zeros(expected.max() + 1, int)
    clump_of[expected.ravel()] = comps.ravel()
    small = extents[clump_of] < 30
    small[0] = False
    assert assert_same_objects(expected, labels, only=small) >= 10
    row = labels[75, 25:195]
    assert len(np.unique(row[row > 0])) > 1  # cut at block edges, each piece its own label


def test_overlap_is_checked(clf, discs, tmp_path):
    image, _ = discs
    for bad in (0, -3, 2.5, "wide", (10, 0)):
        with pytest.raises(InvalidParameterError, match="overlap must be"):
            predict_tiled(clf, image, kind="instances", instances={"overlap": bad})
    with pytest.raises(InvalidParameterError, match="guide must be"):
        predict_tiled(clf, image, kind="instances", instances={"guide": "edges"})
    with pytest.raises(InvalidParameterError, match="unknown instance options"):
        predict_tiled(clf, image, kind="instances", instances={"overlaps": 40})
    # too small for the objects (two diameters): refused once the radius is known,
    # and nothing is left behind
    with pytest.raises(InvalidParameterError, match="less than two object diameters"):
        predict_tiled(clf, image, kind="instances", chunks=64, workers=1,
                      instances={"overlap": 8}, workdir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_the_scratch_folder_lives_as_long_as_the_array(clf, discs, tmp_path):
    image, _ = discs
    lazy = predict_tiled(clf, image, kind="instances", chunks=100, workers=1, workdir=tmp_path)
    assert len(list(tmp_path.iterdir())) == 1
    part = lazy[:50]
    del lazy
    gc.collect()
    assert part.compute().shape == (50, image.shape[1])  # still readable
    del part
    gc.collect()
    assert list(tmp_path.iterdir()) == []


def test_real_mosaic_tiled_equals_in_memory(sample_data):
    """Four DSB2018 fluorescence images as one 512 x 512 mosaic, default features."""
    from pixelforest.classify.scribbles import simulate_scribbles
    from pixelforest.datasets import list_samples

    tiles, truths = [], []
    for name in list_samples("fluorescence")[:4]:
        image, truth = sample_data(name)
        tiles.append(image[:256, :256])
        truths.append(truth[:256, :256])
    mosaic = np.block([[tiles[0], tiles[1]], [tiles[2], tiles[3]]])
    truth = np.block([[truths[0], truths[1]], [truths[2], truths[3]]])
    clf = PixelClassifier(estimator=default_estimator(n_estimators=10), random_state=0).fit(
        mosaic, simulate_scribbles(truth, random_state=0))
    for guide, chunks in (("probability", (130, 200)), ("image", (130, 200)),
                          ("image", 300)):
        expected = clf.predict_instances(mosaic, guide=guide)
        labels = predict_tiled(clf, mosaic, kind="instances", chunks=chunks, workers=2,
                               instances={"guide": guide}).compute()
        assert assert_same_objects(expected, labels) == expected.max() >= 40, (guide, chunks)
        assert labels.max() == expected.max()


def _model_and_image(clf, discs, folder):
    save_model(clf, folder / "model.skops")
    imwrite(folder / "in.tif", discs[0])
    return folder / "model.skops", folder / "in.tif"


def test_cli_writes_instances_to_zarr_and_bigtiff(clf, discs, tmp_path, capsys, leftovers):
    model, inp = _model_and_image(clf, discs, tmp_path)
    expected = clf.predict_instances(discs[0])
    for name in ("nuclei.zarr", "nuclei.tif"):
        code = main(["predict", str(model), str(inp), "-o", str(tmp_path / name),
                     "--kind", "instances", "--chunks", "48", "--workers", "2"])
        assert code == 0, capsys.readouterr().err
        meta = read_metadata(tmp_path / name)
        assert meta["kind"] == "instances" and meta["n_objects"] == expected.max()
        assert meta["foreground"] == 2 and len(meta["overlap"]) == 2
        if name.endswith(".zarr"):
            arr = zarr.open_array(str(tmp_path / name))
            assert arr.dtype == np.uint32
            labels = arr[:]
        else:
            with tifffile.TiffFile(tmp_path / name) as tif:
                assert tif.is_bigtiff and tif.pages[0].is_tiled
                labels = tif.asarray()
        assert_same_objects(expected, labels)
    assert leftovers(tmp_path) == []
    # the guide and overlap reach the segmentation
    code = main(["predict", str(model), str(inp), "-o", str(tmp_path / "p.zarr"), "--kind",
                 "instances", "--guide", "probability", "--overlap", "70"])
    assert code == 0
    assert read_metadata(tmp_path / "p.zarr")["overlap"] == [70, 70]
    assert_same_objects(clf.predict_instances(discs[0], guide="probability"),
                        zarr.open_array(str(tmp_path / "p.zarr"))[:])


def test_an_interrupted_instance_batch_resumes(clf, discs, tmp_path, monkeypatch, leftovers):
    src = tmp_path / "in"
    images = {}
    for seed in range(3):
        images[f"im{seed}"] = touching_discs((120, 140), seed=seed)[0]
        imwrite(src / f"im{seed}.tif", images[f"im{seed}"])
    original = scale_instances._block_instances

    def step(prob_path, *args, **kwargs):
        if ".im1." in prob_path:
            raise KeyboardInterrupt
        return original(prob_path, *args, **kwargs)

    monkeypatch.setattr(scale_instances, "_block_instances", step)
    out = tmp_path / "out"
    with pytest.raises(Interrupted) as info:
        predict_files(clf, src, out, kind="instances", chunks=60, workers=1, format="zarr")
    assert [o.name for _, o in info.value.report.written] == ["im0.zarr"]
    assert sorted(p.name for p in out.iterdir()) == ["im0.zarr"]
    assert leftovers(out) == []  # neither the temporary output nor its scratch folder
    monkeypatch.undo()
    report = predict_files(clf, src, out, kind="instances", chunks=60, workers=1,
                           format="zarr")
    assert [o.name for _, o in report.skipped] == ["im0.zarr"]
    assert [o.name for _, o in report.written] == ["im1.zarr", "im2.zarr"]
    for name, image in images.items():
        assert_same_objects(clf.predict_instances(image),
                            zarr.open_array(str(out / f"{name}.zarr"))[:])


def test_a_distributed_cluster_gives_the_same_instances(clf, discs, tmp_path, leftovers):
    distributed = pytest.importorskip("distributed")
    image, _ = discs
    with distributed.LocalCluster(n_workers=2, processes=False, threads_per_worker=1,
                                  dashboard_address=":0") as lc, \
            distributed.Client(lc, set_as_default=False) as client:
        predict_to_file(clf, image, tmp_path / "cluster.zarr", kind="instances", chunks=50,
                        scheduler=client, timeout=30)
    predict_to_file(clf, image, tmp_path / "threads.zarr", kind="instances", chunks=50,
                    workers=2)
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "cluster.zarr"))[:],
                                  zarr.open_array(str(tmp_path / "threads.zarr"))[:])
    assert_same_objects(clf.predict_instances(image),
                        zarr.open_array(str(tmp_path / "cluster.zarr"))[:])
    assert leftovers(tmp_path) == []


def test_instances_as_an_ome_zarr_label_image(clf, discs, tmp_path):
    from pixelforest.io.ngff import read_ome_zarr_labels

    image, _ = discs
    out = predict_to_file(clf, image, tmp_path / "nuclei.ome.zarr", kind="instances",
                          chunks=64, workers=2, instances={"spacing": (0.5, 0.5)})
    labels, info = read_ome_zarr_labels(out)
    assert info["version"] == "0.5" and info["spacing"] == (0.5, 0.5)
    assert info["metadata"]["kind"] == "instances"
    assert info["metadata"]["n_objects"] == labels.max()
    # spacing is physical: the same objects as in memory with the same spacing
    assert_same_objects(clf.predict_instances(image, spacing=(0.5, 0.5)), labels)


def test_3d_anisotropic_tiled_equals_in_memory():
    from pixelforest.datasets import synthetic_nuclei

    image, truth = synthetic_nuclei((24, 64, 72), n=8, seed=0)
    scrib = np.zeros(truth.shape, np.uint8)
    scrib[(ndi.distance_transform_edt(truth == 0) > 3) & (np.arange(72) % 5 == 0)] = 1
    scrib[ndi.binary_erosion(truth > 0, iterations=1)] = 2
    model = PixelClassifier(FeatureSpec(sigmas=(1.0,)),
                            estimator=default_estimator(n_estimators=4),
                            random_state=0).fit(image, scrib)
    spacing = (2.0, 1.0, 1.0)
    expected = model.predict_instances(image, spacing=spacing)
    # blocks 2 x 2 x 2 (z not divisible), overlap larger than the nuclei, in pixels per axis
    labels = predict_tiled(model, image, kind="instances", chunks=(13, 32, 37), workers=2,
                           instances={"spacing": spacing, "overlap": (20, 30, 30)}).compute()
    assert assert_same_objects(expected, labels) == expected.max() >= 4
