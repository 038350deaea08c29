"""Tests of pixelforest.scale.batch: expansion of inputs, resume, failures, interruption."""

import copy
import os

import numpy as np
import pytest
import tifffile
import zarr

from pixelforest.scale.batch import BatchReport, expand_inputs, predict_files
from pixelforest.classify.pipeline import PredictionPipeline
from pixelforest.datasets import synthetic_nuclei
from pixelforest.errors import InvalidParameterError, ModelFileError
from pixelforest.io.images import imwrite
from pixelforest.io.model_file import save_model


# scikit-learn's joblib wrapper empties the global warning filters while it runs
# (warnings.resetwarnings in sklearn.utils.parallel._FuncWrapper), so a forest
# predicting in another thread at that moment may warn that "delayed should be
# used with Parallel": a race in scikit-learn, harmless to the results.
pytestmark = pytest.mark.filterwarnings(
    "ignore:`sklearn.utils.parallel.delayed` should be used:UserWarning")


@pytest.fixture(scope="module")
def clf(small_classifier):
    """conftest's small model (2 sigmas, 6 trees, fitted on synthetic nuclei)."""
    return small_classifier


@pytest.fixture()
def folder(tmp_path):
    """Three good images (TIFF, Zarr, PNG-free) and a corrupt TIFF."""
    src = tmp_path / "in"
    images = {}
    for seed, name in enumerate(["a.tif", "b.zarr", "c.tiff"]):
        image = synthetic_nuclei((70 + seed * 9, 80), n=6, seed=seed + 1)[0]
        imwrite(src / name, image)
        images[name] = image
    (src / "broken.tif").write_bytes(b"II*\x00" + b"\x00" * 10 + b"not a tiff")
    (src / "notes.txt").write_text("not an image")
    return src, images


def test_expand_inputs_folders_globs_and_duplicates(folder):
    src, _ = folder
    paths, missing = expand_inputs([src, str(src / "*.tif"), src / "b.zarr",
                                    src / "missing.tif"])
    assert [p.name for p in paths] == ["a.tif", "b.zarr", "broken.tif", "c.tiff"]
    assert missing == [str(src / "missing.tif")]
    paths, missing = expand_inputs(str(src.parent / "**" / "*.zarr"))
    assert [p.name for p in paths] == ["b.zarr"] and missing == []


def test_batch_writes_one_output_per_input_and_reports_the_corrupt_one(clf, folder, tmp_path):
    src, images = folder
    out = tmp_path / "out"
    report = predict_files(clf, src, out, chunks=40, workers=2)
    assert [o.name for _, o in report.written] == ["a.tif", "b.tif", "c.tif"]
    assert [os.path.basename(i) for i, _ in report.failed] == ["broken.tif"]
    assert report.exit_code == 1 and not report.ok
    assert "3 written" in report.summary() and "broken.tif" in report.summary()
    for name, image in images.items():
        stem = name.split(".")[0]
        np.testing.assert_array_equal(tifffile.imread(out / f"{stem}.tif"), clf.predict(image))
    assert sorted(p.name for p in out.iterdir()) == ["a.tif", "b.tif", "c.tif"]


def test_batch_resumes_skipping_finished_outputs(clf, folder, tmp_path):
    src, _ = folder
    out = tmp_path / "out"
    first = predict_files(clf, [src / "a.tif", src / "b.zarr"], out, workers=1)
    assert len(first.written) == 2 and first.exit_code == 0
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    second = predict_files(clf, src, out, workers=1)
    assert sorted(o.name for _, o in second.skipped) == ["a.tif", "b.tif"]
    assert [o.name for _, o in second.written] == ["c.tif"]
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name in mtimes} == mtimes
    third = predict_files(clf, src / "a.tif", out, workers=1, overwrite=True)
    assert [o.name for _, o in third.written] == ["a.tif"]
    assert (out / "a.tif").stat().st_mtime_ns > mtimes["a.tif"]


def test_batch_single_output_file_and_formats(clf, folder, tmp_path):
    src, images = folder
    report = predict_files(clf, src / "b.zarr", tmp_path / "single.zarr", probabilities=True)
    assert report.written == [(src / "b.zarr", tmp_path / "single.zarr")]
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "single.zarr"))[:],
                                  clf.predict_proba(images["b.zarr"]))
    report = predict_files(clf, [src / "a.tif", src / "c.tiff"], tmp_path / "z", format="zarr")
    assert sorted(p.name for p in (tmp_path / "z").iterdir()) == ["a.zarr", "c.zarr"]
    with pytest.raises(InvalidParameterError, match="folder"):
        predict_files(clf, [src / "a.tif", src / "c.tiff"], tmp_path / "one.tif")


def test_batch_reports_clashing_names_and_missing_inputs(clf, folder, tmp_path):
    src, _ = folder
    other = tmp_path / "other"
    imwrite(other / "a.zarr", synthetic_nuclei((64, 64), n=4, seed=9)[0])
    report = predict_files(clf, [src / "a.tif", other / "a.zarr", tmp_path / "nope*.tif"],
                           tmp_path / "out", workers=1)
    assert [o.name for _, o in report.written] == ["a.tif"]
    reasons = dict(report.failed)
    assert "also written to" in reasons[str(other / "a.zarr")]
    assert "matches no image" in reasons[str(tmp_path / "nope*.tif")]


def test_batch_channel_mismatch_is_reported(clf, tmp_path):
    rgb = np.stack([synthetic_nuclei((64, 64), n=4, seed=1)[0]] * 3, axis=-1)
    imwrite(tmp_path / "rgb.tif", rgb)
    report = predict_files(clf, tmp_path / "rgb.tif", tmp_path / "out")
    assert len(report.failed) == 1
    assert "ChannelMismatchError" in report.failed[0][1] or "InvalidImageError" in \
        report.failed[0][1]
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_batch_from_a_model_file(clf, folder, tmp_path):
    src, images = folder
    save_model(clf, tmp_path / "model.skops")
    report = predict_files(tmp_path / "model.skops", src / "a.tif", tmp_path / "a.tif")
    assert report.ok
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "a.tif"),
                                  clf.predict(images["a.tif"]))
    (tmp_path / "bad.skops").write_bytes(b"nope")
    with pytest.raises(ModelFileError):
        predict_files(tmp_path / "bad.skops", src / "a.tif", tmp_path / "x.tif")


def _interrupt_on_sentinel(monkeypatch, sentinel):
    """Make the pipeline's block step raise KeyboardInterrupt on a marked block."""
    original = PredictionPipeline.predict_proba_block

    def step(pipeline, block, stats, **kwargs):
        if (block == sentinel).any():
            raise KeyboardInterrupt
        return original(pipeline, block, stats, **kwargs)

    monkeypatch.setattr(PredictionPipeline, "predict_proba_block", step)


@pytest.mark.parametrize("workers", [1, 3])
def test_ctrl_c_in_a_block_stops_the_batch_and_keeps_finished_outputs(clf, tmp_path,
                                                                     monkeypatch, workers):
    src = tmp_path / "in"
    images = {}
    for seed in range(6):
        image = synthetic_nuclei((90, 90), n=6, seed=seed)[0]
        if seed == 3:
            image[45, 45] = 65535  # the block holding this pixel is "interrupted"
        images[f"im{seed}.tif"] = image
        imwrite(src / f"im{seed}.tif", image)
    model = copy.deepcopy(clf)
    _interrupt_on_sentinel(monkeypatch, 65535)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        predict_files(model, src, out, chunks=30, workers=workers, format="zarr")
    finished = sorted(p.name for p in out.iterdir()) if out.exists() else []
    assert "im3.zarr" not in finished
    assert not [name for name in finished if name.startswith(".")]  # no temporary store
    for name in finished:  # what exists is complete
        image = images[name.replace(".zarr", ".tif")]
        np.testing.assert_array_equal(zarr.open_array(str(out / name))[:], clf.predict(image))
    # the re-run skips what was finished and completes the rest
    monkeypatch.undo()
    report = predict_files(clf, src, out, chunks=30, workers=workers, format="zarr")
    assert sorted(o.name for _, o in report.skipped) == finished
    assert len(report.written) == 6 - len(finished) and report.ok


def test_files_in_parallel_share_the_workers(clf, tmp_path):
    src = tmp_path / "in"
    images = {f"im{s}.png": (synthetic_nuclei((64, 80), n=5, seed=s)[0] // 16).astype(np.uint8)
              for s in range(5)}
    for name, image in images.items():
        imwrite(src / name, image)
    report = predict_files(clf, src, tmp_path / "out", workers=3)
    assert [o.name for _, o in report.written] == [f"im{s}.tif" for s in range(5)]
    for name, image in images.items():
        np.testing.assert_array_equal(tifffile.imread(tmp_path / "out" / name.replace(
            ".png", ".tif")), clf.predict(image))


def test_report_summary_and_exit_code():
    report = BatchReport()
    assert report.ok and report.exit_code == 0
    assert report.summary() == "0 inputs: 0 written, 0 skipped (already done), 0 failed"


def test_single_input_to_a_png_file_and_masks(clf, folder, tmp_path):
    import imageio.v3 as iio

    src, images = folder
    report = predict_files(clf, src / "a.tif", tmp_path / "x.png")
    assert report.ok and (tmp_path / "x.png").is_file()  # a file, not a folder x.png/
    np.testing.assert_array_equal(iio.imread(tmp_path / "x.png"), clf.predict(images["a.tif"]))
    report = predict_files(clf, [src / "a.tif", src / "c.tiff"], tmp_path / "masks",
                           kind="mask", format="zarr")
    assert report.ok
    stored = zarr.open_array(str(tmp_path / "masks" / "c.zarr"))
    np.testing.assert_array_equal(stored[:], np.where(clf.predict(images["c.tiff"]) == 2, 255, 0))
    assert dict(stored.attrs)["pixelforest"]["kind"] == "mask"
    with pytest.raises(InvalidParameterError, match="folder"):
        predict_files(clf, [src / "a.tif", src / "c.tiff"], tmp_path / "two.png")


def test_an_output_equal_to_an_input_is_refused(clf, folder, tmp_path):
    from pixelforest.errors import OutputExistsError

    src, _ = folder
    before = {p.name: p.stat().st_mtime_ns for p in src.iterdir()}
    with pytest.raises(OutputExistsError, match="input"):
        predict_files(clf, src / "a.tif", src / "a.tif")
    with pytest.raises(OutputExistsError, match="input"):
        predict_files(clf, src, src, overwrite=True)  # a.tif would replace a.tif
    assert {p.name: p.stat().st_mtime_ns for p in src.iterdir()} == before


def test_failures_keep_their_tracebacks(clf, folder, tmp_path):
    src, _ = folder
    report = predict_files(clf, src, tmp_path / "out", workers=1)
    [(inp, text)] = report.tracebacks
    assert inp == str(src / "broken.tif")
    assert text.startswith("Traceback (most recent call last)") and "Error" in text


@pytest.mark.parametrize("workers", [1, 3])
def test_cancel_stops_the_file_under_way_and_keeps_finished_outputs(clf, tmp_path,
                                                                   monkeypatch, workers):
    import threading

    from pixelforest.errors import Cancelled

    src = tmp_path / "in"
    images = {}
    for seed in range(5):
        image = synthetic_nuclei((90, 90), n=6, seed=seed)[0]
        if seed == 2:
            image[15, 15] = 65535  # the first block of this image sets the cancel event
        images[f"im{seed}.tif"] = image
        imwrite(src / f"im{seed}.tif", image)
    cancel = threading.Event()
    original = PredictionPipeline.predict_proba_block

    def step(pipeline, block, stats, **kwargs):
        if (block == 65535).any():
            cancel.set()  # as a Cancel button would, from another thread
        return original(pipeline, block, stats, **kwargs)

    monkeypatch.setattr(PredictionPipeline, "predict_proba_block", step)
    steps = []
    out = tmp_path / "out"
    with pytest.raises(Cancelled, match="cancelled") as info:
        predict_files(copy.deepcopy(clf), src, out, chunks=30, workers=workers,
                      format="zarr", cancel=cancel, on_file=lambda n, t: steps.append((n, t)))
    finished = sorted(p.name for p in out.iterdir()) if out.exists() else []
    assert "im2.zarr" not in finished and len(finished) < 5
    assert not [name for name in finished if name.startswith(".")]  # no temporary store
    assert sorted(o.name for _, o in info.value.report.written) == finished
    for name in finished:  # what exists is complete
        image = images[name.replace(".zarr", ".tif")]
        np.testing.assert_array_equal(zarr.open_array(str(out / name))[:], clf.predict(image))
    assert [t for _, t in steps] == [5] * len(steps)
    assert [n for n, _ in steps] == list(range(1, len(steps) + 1))
    # a cancel set before the call predicts nothing
    with pytest.raises(Cancelled):
        predict_files(clf, src, tmp_path / "none", format="zarr", cancel=cancel)
    assert not (tmp_path / "none").exists() or not list((tmp_path / "none").iterdir())
    # the re-run skips what was finished and completes the rest
    monkeypatch.undo()
    report = predict_files(clf, src, out, chunks=30, workers=workers, format="zarr",
                           on_file=lambda n, t: steps.append((n, t)))
    assert sorted(o.name for _, o in report.skipped) == finished
    assert len(report.written) == 5 - len(finished) and report.ok
    assert steps[-1] == (5, 5)
