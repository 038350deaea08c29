"""The CLI's shared behaviour and the foundation commands (normalize, kmeans,
otsu, evaluate, demo), run in-process through ``main`` and once as a real
console script."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tifffile

from pixelforest import datasets
from pixelforest.cli.main import build_parser, main
from pixelforest.io.images import imread


@pytest.fixture(scope="module")
def sample_files(tmp_path_factory, sample_data):
    """A real fluorescence image and its labels as TIFF files."""
    folder = tmp_path_factory.mktemp("cli")
    image, labels = sample_data("1a75e9f15481")
    tifffile.imwrite(folder / "image.tif", image)
    tifffile.imwrite(folder / "labels.tif", labels)
    return folder


def test_every_command_has_help_with_an_example(capsys):
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    assert {"demo", "normalize", "kmeans", "otsu", "evaluate"} <= set(commands)
    for name, sub in commands.items():
        text = sub.format_help()
        assert "example:" in text and f"pixelforest {name}" in text, name


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_normalize_minmax_and_percentile(sample_files, capsys):
    out = sample_files / "norm.tif"
    assert main(["normalize", str(sample_files / "image.tif"), "-o", str(out),
                 "--method", "minmax"]) == 0
    result = imread(out)
    assert result.dtype == np.float32
    assert result.min() == 0.0 and result.max() == 1.0
    out2 = sample_files / "norm-pct.tif"
    assert main(["normalize", str(sample_files / "image.tif"), "-o", str(out2)]) == 0
    assert 0.0 <= imread(out2).min() and imread(out2).max() <= 1.0
    assert "wrote" in capsys.readouterr().out


def test_kmeans_and_otsu_then_evaluate(sample_files, capsys):
    image_path = sample_files / "image.tif"
    labels_path = sample_files / "labels.tif"
    for command in ("kmeans", "otsu"):
        out = sample_files / f"{command}.tif"
        assert main([command, str(image_path), "-o", str(out)]) == 0
        mask = imread(out)
        assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 1}
        capsys.readouterr()
        assert main(["evaluate", str(out), str(labels_path), "--json"]) == 0
        scores = json.loads(capsys.readouterr().out)
        assert 0.7 < scores["iou"] <= 1.0, command  # nuclei found, not inverted (inverted: < 0.1)
        assert scores["dice"] == pytest.approx(2 * scores["iou"] / (1 + scores["iou"]))
        assert 0.0 <= scores["average_precision"] <= scores["f1"] <= 1.0


def test_evaluate_foreground_value_selects_a_class(sample_files, capsys):
    labels = tifffile.imread(sample_files / "labels.tif")
    classes = np.where(labels > 0, 2, 1).astype(np.uint8)  # a classifier's output
    tifffile.imwrite(sample_files / "classes.tif", classes)
    main(["evaluate", str(sample_files / "classes.tif"), str(sample_files / "labels.tif"),
          "--json", "--foreground", "2"])
    assert json.loads(capsys.readouterr().out)["iou"] == 1.0
    main(["evaluate", str(sample_files / "classes.tif"), str(sample_files / "labels.tif"),
          "--json"])
    # without --foreground every nonzero pixel, i.e. the whole image, is foreground
    assert json.loads(capsys.readouterr().out)["iou"] < 0.5


def test_missing_file_is_one_error_line(tmp_path, capsys):
    code = main(["otsu", str(tmp_path / "nope.tif"), "-o", str(tmp_path / "out.tif")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("pixelforest: error:") and err.count("\n") == 1
    assert "nope.tif" in err and "Traceback" not in err
    assert not (tmp_path / "out.tif").exists()


def test_corrupt_tiff_is_one_error_line(tmp_path, capsys):
    bad = tmp_path / "truncated.tif"
    tifffile.imwrite(bad, np.zeros((64, 64), np.uint16))
    bad.write_bytes(bad.read_bytes()[:100])
    assert main(["kmeans", str(bad), "-o", str(tmp_path / "out.tif")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pixelforest: error:") and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == [bad]  # nothing half-written


def test_unsupported_extension_and_debug_traceback(tmp_path, capsys):
    src = tmp_path / "image.xyz"
    src.write_bytes(b"0")
    assert main(["otsu", str(src), "-o", str(tmp_path / "o.tif")]) == 2
    assert "error" in capsys.readouterr().err
    from pixelforest.errors import PixelforestError

    with pytest.raises(PixelforestError):
        main(["otsu", str(src), "-o", str(tmp_path / "o.tif"), "--debug"])


def test_refuses_to_overwrite_the_input(sample_files, tmp_path, capsys):
    src = tmp_path / "image.tif"
    shutil.copy(sample_files / "image.tif", src)
    before = src.read_bytes()
    assert main(["normalize", str(src), "-o", str(src), "--overwrite"]) == 2
    assert "input" in capsys.readouterr().err
    assert src.read_bytes() == before


def test_existing_output_needs_overwrite(sample_files, tmp_path, capsys):
    out = tmp_path / "otsu.tif"
    out.write_bytes(b"keep me")
    assert main(["otsu", str(sample_files / "image.tif"), "-o", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert out.read_bytes() == b"keep me"
    assert main(["otsu", str(sample_files / "image.tif"), "-o", str(out), "--overwrite"]) == 0


def test_constant_image_is_reported_not_nan(tmp_path, capsys):
    src = tmp_path / "flat.tif"
    tifffile.imwrite(src, np.full((16, 16), 7, np.uint8))
    with pytest.warns(UserWarning, match="constant"):
        code = main(["normalize", str(src), "-o", str(tmp_path / "n.tif"), "--method", "minmax"])
    assert code == 0
    assert not np.isnan(imread(tmp_path / "n.tif")).any()


def test_demo_lists_samples(capsys):
    assert main(["demo", "--list"]) == 0
    out = capsys.readouterr().out
    assert len(out.splitlines()) == len(datasets.list_samples()) == 28
    assert "fluorescence" in out


def test_console_script_runs_the_demo(tmp_path):
    """`pixelforest demo` as a user runs it: prints the table and writes the figure."""
    exe = shutil.which("pixelforest")
    cmd = [exe] if exe else [sys.executable, "-m", "pixelforest.cli.main"]
    done = subprocess.run(cmd + ["demo", "--out", str(tmp_path)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("method"))
    rows = lines[header + 1: header + 4]
    assert [r.split()[0] for r in rows] == ["otsu", "kmeans", "random"]
    ious = [float(r.split()[-4]) for r in rows]
    assert all(0.5 < v <= 1.0 for v in ious)
    assert any(tmp_path.glob("demo-*.png"))


# ------------------------------------------ no tracebacks without --debug

def _one_line_error(err):
    assert err.startswith("pixelforest: error:") and err.count("\n") == 1, err
    assert "Traceback" not in err


def test_truncated_compressed_tiff_is_one_line(tmp_path, capsys):
    tifffile.imwrite(tmp_path / "z.tif", np.arange(256 * 256, dtype=np.uint16).reshape(256, 256),
                     compression="zlib", tile=(64, 64))
    full = (tmp_path / "z.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(full[: len(full) // 2])
    assert main(["otsu", str(tmp_path / "cut.tif"), "-o", str(tmp_path / "o.tif")]) == 2
    err = capsys.readouterr().err
    _one_line_error(err)
    assert "cut.tif" in err and "truncated" in err


def test_corrupt_zarr_chunk_is_one_line_naming_the_chunk(tmp_path, capsys):
    import zarr

    z = zarr.create_array(store=str(tmp_path / "img.zarr"), shape=(32, 32), chunks=(16, 16),
                          dtype="u2")
    z[...] = 7
    (tmp_path / "img.zarr" / "c" / "0" / "1").write_bytes(b"garbage" * 8)
    assert main(["kmeans", str(tmp_path / "img.zarr"), "-o", str(tmp_path / "o.tif")]) == 2
    err = capsys.readouterr().err
    _one_line_error(err)
    assert "chunk 'c/0/1'" in err and "img.zarr" in err


def test_png_renamed_tif_is_one_line_with_the_fix(tmp_path, capsys):
    from pixelforest.io.images import imwrite

    imwrite(tmp_path / "a.png", np.zeros((8, 8), np.uint8))
    (tmp_path / "a.png").rename(tmp_path / "a.tif")
    assert main(["otsu", str(tmp_path / "a.tif"), "-o", str(tmp_path / "o.tif")]) == 2
    err = capsys.readouterr().err
    _one_line_error(err)
    assert "is not a TIFF file (it looks like PNG); rename it to .png" in err


def _raising(exc):
    def run(args):
        raise exc
    return run


def test_memory_error_says_what_to_lower(monkeypatch, tmp_path, capsys):
    import pixelforest.cli.predict

    monkeypatch.setattr(pixelforest.cli.predict, "run", _raising(MemoryError()))
    assert main(["predict", "m.skops", "in.tif", "-o", str(tmp_path / "o.tif")]) == 2
    err = capsys.readouterr().err
    _one_line_error(err)
    assert "out of memory" in err and "--chunks" in err and "--workers" in err
    with pytest.raises(MemoryError):
        main(["predict", "m.skops", "in.tif", "-o", str(tmp_path / "o.tif"), "--debug"])


def test_unexpected_error_is_one_line_and_debug_shows_it(monkeypatch, capsys):
    import pixelforest.cli.features

    monkeypatch.setattr(pixelforest.cli.features, "run", _raising(RuntimeError("boom\nmore")))
    assert main(["features"]) == 2
    err = capsys.readouterr().err
    _one_line_error(err)
    assert "RuntimeError: boom" in err and "--debug" in err
    with pytest.raises(RuntimeError, match="boom"):
        main(["features", "--debug"])


def test_ctrl_c_exits_130_in_one_line(monkeypatch, capsys):
    import pixelforest.cli.features

    monkeypatch.setattr(pixelforest.cli.features, "run", _raising(KeyboardInterrupt()))
    assert main(["features"]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "interrupted" in err and "Traceback" not in err


def test_channel_mismatch_names_the_command_line_option(monkeypatch, tmp_path, capsys):
    import pixelforest.cli.predict
    from pixelforest.errors import ChannelMismatchError

    error = ChannelMismatchError("image has 1 channel(s) but the model was trained on 3; "
                                 "pass channel_axis=-1.")
    monkeypatch.setattr(pixelforest.cli.predict, "run", _raising(error))
    assert main(["predict", "m.skops", "in.tif", "-o", str(tmp_path / "o.tif")]) == 2
    err = capsys.readouterr().err
    _one_line_error(err)
    assert "pixelforest train --channel-axis -1" in err


def test_broken_pipe_in_process_exits_quietly(monkeypatch, capsys):
    class ClosedPipe:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

        def fileno(self):
            raise OSError("no file descriptor")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["features"]) == 0
    monkeypatch.undo()
    assert capsys.readouterr().err == ""


def test_broken_pipe_like_head_exits_quietly():
    """`pixelforest features | head -0`: the reader is gone before anything is written."""
    import os

    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody reads: every write fails with EPIPE
    try:
        done = subprocess.run(
            [sys.executable, "-c", "import sys; from pixelforest.cli.main import main; "
                                   "sys.exit(main(['features']))"],
            stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_before_or_after_the_command_shows_the_traceback(tmp_path, where):
    from pixelforest.errors import ModelFileError

    missing = str(tmp_path / "missing.skops")
    argv = ["--debug", "info", missing] if where == "before" else ["info", missing, "--debug"]
    with pytest.raises(ModelFileError):
        main(argv)
