"""``pixelforest predict`` end to end: in-process through ``main`` and as a real
console script (quiet progress in a pipe, exit codes, Ctrl-C)."""

import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tifffile
import zarr

from pixelforest import datasets
from pixelforest.classify.scribbles import simulate_scribbles
from pixelforest.classify.classifier import PixelClassifier, default_estimator
from pixelforest.cli.main import build_parser, main
from pixelforest.features import FeatureSpec
from pixelforest.io.images import imwrite
from pixelforest.io.model_file import save_model


# scikit-learn's joblib wrapper empties the global warning filters while it runs
# (warnings.resetwarnings in sklearn.utils.parallel._FuncWrapper), so a forest
# predicting in another thread at that moment may warn that "delayed should be
# used with Parallel": a race in scikit-learn, harmless to the results.
pytestmark = pytest.mark.filterwarnings(
    "ignore:`sklearn.utils.parallel.delayed` should be used:UserWarning")


@pytest.fixture(scope="module")
def setup(tmp_path_factory, sample_data):
    """A model trained on a real DSB2018 image, and three real images as files."""
    folder = tmp_path_factory.mktemp("predict")
    names = datasets.list_samples("fluorescence")[:3]
    images = {}
    for name in names:
        image, labels = sample_data(name)
        images[name] = image
    image, labels = sample_data(names[0])
    clf = PixelClassifier(FeatureSpec(sigmas=(1.0, 2.0, 4.0)),
                          estimator=default_estimator(n_estimators=10))
    clf.fit(image, simulate_scribbles(labels, random_state=0))
    save_model(clf, folder / "model.skops")
    for name, image in images.items():
        imwrite(folder / "in" / f"{name}.tif", image)
    return folder, clf, images


def test_help_has_a_runnable_example():
    parser = build_parser()
    text = parser._subparsers._group_actions[0].choices["predict"].format_help()
    assert "pixelforest predict model.skops" in text and "--scheduler" in text


def test_predict_folder_then_resume(setup, tmp_path, capsys):
    folder, clf, images = setup
    out = tmp_path / "out"
    assert main(["predict", str(folder / "model.skops"), str(folder / "in"), "-o", str(out),
                 "--chunks", "100", "--workers", "2"]) == 0
    text = capsys.readouterr().out
    assert "3 written, 0 skipped" in text and "0 failed" in text
    for name, image in images.items():
        np.testing.assert_array_equal(tifffile.imread(out / f"{name}.tif"), clf.predict(image))
    mtimes = {p: p.stat().st_mtime_ns for p in out.iterdir()}
    assert main(["predict", str(folder / "model.skops"), str(folder / "in" / "*.tif"),
                 "-o", str(out)]) == 0
    assert "0 written, 3 skipped" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in out.iterdir()} == mtimes


def test_predict_one_zarr_with_probabilities(setup, tmp_path, capsys):
    folder, clf, images = setup
    name = next(iter(images))
    out = tmp_path / "proba.zarr"
    assert main(["predict", str(folder / "model.skops"), str(folder / "in" / f"{name}.tif"),
                 "-o", str(out), "--probabilities", "--chunks", "64"]) == 0
    np.testing.assert_array_equal(zarr.open_array(str(out))[:], clf.predict_proba(images[name]))
    assert f"wrote {out}" in capsys.readouterr().out


def test_failures_give_exit_code_1_and_bad_options_2(setup, tmp_path, capsys):
    folder, _, _ = setup
    bad = tmp_path / "bad"
    shutil.copytree(folder / "in", bad)
    (bad / "zz-broken.tif").write_bytes(b"II*\x00" + b"\x00" * 12)
    assert main(["predict", str(folder / "model.skops"), str(bad), "-o",
                 str(tmp_path / "out"), "--format", "zarr"]) == 1
    out = capsys.readouterr().out
    assert "3 written" in out and "1 failed" in out and "zz-broken.tif" in out
    assert sorted(p.suffix for p in (tmp_path / "out").iterdir()) == [".zarr"] * 3
    # a missing model is an error of the command (2), not of an input
    assert main(["predict", str(tmp_path / "nope.skops"), str(bad), "-o", str(tmp_path)]) == 2
    assert "nope.skops" in capsys.readouterr().err
    # chunks smaller than the model's halo are refused with the fix
    assert main(["predict", str(folder / "model.skops"), str(bad / "*.tif"), "-o",
                 str(tmp_path / "small"), "--chunks", "3"]) == 1
    assert "at least" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["predict", str(folder / "model.skops"), str(bad), "-o", "x", "--workers", "0"])


def _console_script():
    exe = shutil.which("pixelforest")
    return [exe] if exe else [sys.executable, "-m", "pixelforest.cli.main"]


def test_console_script_is_quiet_in_a_pipe(setup, tmp_path):
    folder, _, _ = setup
    result = subprocess.run(
        _console_script() + ["predict", str(folder / "model.skops"), str(folder / "in"),
                             "-o", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "3 written" in result.stdout
    assert "block" not in result.stderr and "%|" not in result.stderr  # no progress bar


def test_ctrl_c_leaves_no_partial_output(setup, tmp_path):
    folder, _, images = setup
    big = np.tile(next(iter(images.values())), (6, 6))  # ~1500 x 1500 real pixels
    imwrite(tmp_path / "big.tif", big)
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.Popen(
        _console_script() + ["predict", str(folder / "model.skops"), str(tmp_path / "big.tif"),
                             "-o", str(out / "big.zarr"), "--chunks", "48", "--workers", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not any(out.iterdir()) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)  # wait until the temporary store is being written
        assert proc.poll() is None, "prediction finished before it could be interrupted"
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr
    assert list(out.iterdir()) == []  # neither the output nor its temporary store


def test_unreachable_scheduler_is_a_clear_error(setup, tmp_path, capsys, monkeypatch):
    import pixelforest.scale.scheduler as scheduler

    folder, _, _ = setup
    monkeypatch.setattr(scheduler, "_CONNECT_TIMEOUT", "1s")
    code = main(["predict", str(folder / "model.skops"), str(folder / "in"), "-o",
                 str(tmp_path / "out"), "--scheduler", "tcp://127.0.0.1:9"])
    assert code == 2
    assert "cannot reach the dask scheduler at tcp://127.0.0.1:9" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_one_input_to_a_png_file(setup, tmp_path, capsys):
    import imageio.v3 as iio

    folder, clf, images = setup
    name = next(iter(images))
    out = tmp_path / "x.png"
    assert main(["predict", str(folder / "model.skops"), str(folder / "in" / f"{name}.tif"),
                 "-o", str(out), "--kind", "mask"]) == 0
    assert out.is_file()
    np.testing.assert_array_equal(iio.imread(out), np.where(clf.predict(images[name]) == 2,
                                                            255, 0))
    assert f"wrote {out}" in capsys.readouterr().out


def test_an_output_equal_to_the_input_is_an_error(setup, tmp_path, capsys):
    folder, _, images = setup
    name = next(iter(images))
    copy = tmp_path / "in.tif"
    shutil.copy(folder / "in" / f"{name}.tif", copy)
    before = copy.read_bytes()
    assert main(["predict", str(folder / "model.skops"), str(copy), "-o", str(copy)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pixelforest: error:") and "input" in err
    assert copy.read_bytes() == before


def test_kind_and_foreground_are_in_the_metadata(setup, tmp_path):
    folder, clf, images = setup
    name = next(iter(images))
    assert main(["predict", str(folder / "model.skops"), str(folder / "in" / f"{name}.tif"),
                 "-o", str(tmp_path / "m.zarr"), "--kind", "mask", "--foreground", "1"]) == 0
    stored = zarr.open_array(str(tmp_path / "m.zarr"))
    np.testing.assert_array_equal(stored[:], np.where(clf.predict(images[name]) == 1, 255, 0))
    meta = dict(stored.attrs)["pixelforest"]
    assert meta["kind"] == "mask" and meta["foreground"] == 1
    assert meta["class_names"] == {"1": "background", "2": "foreground"}
    assert main(["predict", str(folder / "model.skops"), str(folder / "in" / f"{name}.tif"),
                 "-o", str(tmp_path / "l.tif")]) == 0
    with tifffile.TiffFile(tmp_path / "l.tif") as tif:
        assert tif.shaped_metadata[0]["pixelforest"]["kind"] == "labels"
        assert tif.shaped_metadata[0]["pixelforest"]["foreground"] == 2


def test_debug_shows_the_traceback_of_each_failed_file(setup, tmp_path, capsys):
    folder, _, _ = setup
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a-broken.tif").write_bytes(b"II*\x00" + b"\x00" * 12)
    (bad / "b-broken.tif").write_bytes(b"not a tiff at all")
    assert main(["predict", str(folder / "model.skops"), str(bad), "-o", str(tmp_path / "out"),
                 "--debug"]) == 1
    err = capsys.readouterr().err
    assert err.count("pixelforest: traceback of") == 2
    assert err.count("Traceback (most recent call last)") >= 2  # (with their causes)
    assert "a-broken.tif:\nTraceback" in err and "b-broken.tif:\nTraceback" in err
    assert main(["predict", str(folder / "model.skops"), str(bad), "-o",
                 str(tmp_path / "out")]) == 1
    assert "Traceback" not in capsys.readouterr().err


def test_predict_instances_of_a_folder_as_ome_zarr_then_resume(setup, tmp_path, capsys):
    """--kind instances on real images: one OME-Zarr label image each, the objects of
    predict_instances (up to a renumbering), and a re-run skips them."""
    from scipy import ndimage as ndi

    from pixelforest.io.ngff import read_ome_zarr_labels

    folder, clf, images = setup
    out = tmp_path / "objects"
    args = ["predict", str(folder / "model.skops"), str(folder / "in"), "-o", str(out),
            "--kind", "instances", "--format", "ome-zarr", "--chunks", "90", "--workers", "2"]
    assert main(args) == 0
    assert "3 written, 0 skipped" in capsys.readouterr().out
    for name, image in images.items():
        labels, info = read_ome_zarr_labels(out / f"{name}.ome.zarr")
        expected = clf.predict_instances(image)
        assert labels.dtype == np.uint32 and info["metadata"]["kind"] == "instances"
        assert labels.max() == expected.max() > 5
        for k, box in enumerate(ndi.find_objects(expected), start=1):
            values = np.unique(labels[box][expected[box] == k])
            assert len(values) == 1 and values[0] > 0
            assert np.count_nonzero(labels == values[0]) == np.count_nonzero(expected == k)
    assert main(args) == 0
    assert "0 written, 3 skipped" in capsys.readouterr().out


def test_instance_options_without_kind_instances_are_noted(setup, tmp_path, capsys):
    folder, clf, images = setup
    name = next(iter(images))
    assert main(["predict", str(folder / "model.skops"), str(folder / "in" / f"{name}.tif"),
                 "-o", str(tmp_path / "l.tif"), "--overlap", "50"]) == 0
    assert "apply to --kind instances" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["predict", str(folder / "model.skops"), str(folder / "in"), "-o",
              str(tmp_path / "x"), "--kind", "instances", "--spacing", "0,1"])
