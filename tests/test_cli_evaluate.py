"""``pixelforest evaluate``: predict's own output scored right, folders, CSV, warnings."""

import csv
import json

import numpy as np
import pytest

from pixelforest import datasets, metrics
from pixelforest.classify.classifier import PixelClassifier
from pixelforest.classify.scribbles import simulate_scribbles
from pixelforest.cli.main import main
from pixelforest.io import images
from pixelforest.io.images import imread, imwrite

META = {"kind": "labels", "classes": [1, 2],
        "class_names": {"1": "background", "2": "foreground"}, "foreground": 2}


def _one_line_error(err):
    assert err.startswith("pixelforest: error:") and err.count("\n") == 1, err
    assert "Traceback" not in err


def _scores(capsys, *argv):
    assert main(["evaluate", *map(str, argv), "--json"]) == 0
    captured = capsys.readouterr()
    return json.loads(captured.out), captured.err


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    folder = tmp_path_factory.mktemp("evaluate")
    image, labels = datasets.synthetic_nuclei((128, 128), n=12, seed=3)
    scribbles = simulate_scribbles(labels, random_state=0)
    imwrite(folder / "image.tif", image)
    imwrite(folder / "scribbles.tif", scribbles)
    imwrite(folder / "ref.tif", labels)
    return folder, image, labels, scribbles


def test_train_predict_evaluate_end_to_end(synthetic, capsys):
    """predict's labels (1 = background, 2 = nuclei) are scored with no extra flag."""
    folder, image, labels, _ = synthetic
    model, pred = folder / "model.skops", folder / "pred.tif"
    assert main(["train", str(folder / "image.tif"), "--labels", str(folder / "scribbles.tif"),
                 "-o", str(model), "--trees", "10", "--features", "small"]) == 0
    assert main(["predict", str(model), str(folder / "image.tif"), "-o", str(pred)]) == 0
    capsys.readouterr()
    from pixelforest.io.model_file import load_model

    in_memory = load_model(model).predict(image)
    np.testing.assert_array_equal(imread(pred), in_memory)
    expected = metrics.iou(in_memory == 2, labels > 0)
    assert expected > 0.5
    meta = images.read_metadata(pred)
    if meta is None:  # predict does not write its metadata (yet): what it should write
        pytest.fail("pixelforest predict wrote no 'pixelforest' metadata into its TIFF")
    scores, err = _scores(capsys, pred, folder / "ref.tif")
    assert scores["iou"] == pytest.approx(expected) and scores["foreground"] == 2
    assert err == ""  # no warning: the file said what its values mean


def test_labels_with_metadata_need_no_flag(synthetic, tmp_path, capsys):
    _, _, labels, _ = synthetic
    classes = np.where(labels > 0, 2, 1).astype(np.uint8)
    imwrite(tmp_path / "ref.tif", labels)
    for suffix in (".tif", ".png", ".zarr"):
        imwrite(tmp_path / f"pred{suffix}", classes, metadata=META)
        scores, err = _scores(capsys, tmp_path / f"pred{suffix}", tmp_path / "ref.tif")
        assert scores["iou"] == 1.0 and err == "", suffix
    # a mask output: nonzero is foreground
    imwrite(tmp_path / "mask.tif", (labels > 0).astype(np.uint8) * 255,
            metadata={**META, "kind": "mask", "mask_value": 255})
    assert _scores(capsys, tmp_path / "mask.tif", tmp_path / "ref.tif")[0]["iou"] == 1.0
    # --foreground overrides the metadata
    scores, _ = _scores(capsys, tmp_path / "pred.tif", tmp_path / "ref.tif",
                        "--foreground", "1")
    assert scores["iou"] == 0.0


def test_probabilities_are_refused_in_one_line(tmp_path, capsys):
    imwrite(tmp_path / "p.tif", np.full((16, 16, 2), 0.5, np.float32),
            metadata={**META, "kind": "probabilities"})
    imwrite(tmp_path / "ref.tif", np.ones((16, 16), np.uint8))
    assert main(["evaluate", str(tmp_path / "p.tif"), str(tmp_path / "ref.tif")]) == 2
    err = capsys.readouterr().err
    _one_line_error(err)
    assert "probabilities" in err and "--kind labels" in err


def test_labels_without_metadata_warn_to_pass_foreground(synthetic, tmp_path, capsys):
    _, _, labels, _ = synthetic
    import tifffile

    tifffile.imwrite(tmp_path / "classes.tif", np.where(labels > 0, 2, 1).astype(np.uint8))
    imwrite(tmp_path / "ref.tif", labels)
    scores, err = _scores(capsys, tmp_path / "classes.tif", tmp_path / "ref.tif")
    assert scores["iou"] < 0.5  # every pixel nonzero: that is what the warning is about
    assert err.startswith("pixelforest: warning:") and err.count("\n") == 1
    assert "--foreground 2" in err
    scores, err = _scores(capsys, tmp_path / "classes.tif", tmp_path / "ref.tif",
                          "--foreground", "2")
    assert scores["iou"] == 1.0 and err == ""


def test_intensity_image_warns_and_absent_foreground_fails(synthetic, tmp_path, capsys):
    folder, image, labels, _ = synthetic
    _, err = _scores(capsys, folder / "image.tif", folder / "ref.tif")
    assert "intensity image" in err and err.count("\n") == 1
    assert main(["evaluate", str(folder / "scribbles.tif"), str(folder / "ref.tif"),
                 "--foreground", "7"]) == 2
    err = capsys.readouterr().err
    _one_line_error(err)
    assert "no pixel" in err and "foreground value 7" in err


def test_folders_one_row_per_image_then_the_mean_and_csv(tmp_path, capsys):
    preds, refs = tmp_path / "pred", tmp_path / "ref"
    expected = []
    for i in range(3):
        _, labels = datasets.synthetic_nuclei((48, 48), n=4, seed=i)
        noisy = labels.copy()
        noisy[: 4 * (i + 1)] = 0  # a different score per image
        imwrite(preds / f"img{i}_pred.tif", np.where(noisy > 0, 2, 1).astype(np.uint8),
                metadata=META)
        imwrite(refs / f"img{i}.png", (labels > 0).astype(np.uint8))
        expected.append(metrics.iou(noisy > 0, labels > 0))
    out = tmp_path / "scores.csv"
    data, err = _scores(capsys, preds, refs, "--csv", out)
    assert [row["iou"] for row in data["images"]] == pytest.approx(expected)
    assert data["mean"]["iou"] == pytest.approx(np.mean(expected))
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["prediction"].rsplit("/", 1)[-1] for r in rows] == [
        "img0_pred.tif", "img1_pred.tif", "img2_pred.tif", "mean"]
    assert float(rows[-1]["iou"]) == pytest.approx(np.mean(expected))
    assert [p.name for p in tmp_path.iterdir()] != [] and not list(tmp_path.glob(".*"))
    # the table: a header, one row per image and the mean
    assert main(["evaluate", str(preds), str(refs)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["image", "iou"] and lines[-1].startswith("mean")
    assert len(lines) == 5
    # an existing CSV needs --overwrite
    assert main(["evaluate", str(preds), str(refs), "--csv", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_folder_mistakes_are_one_line(tmp_path, capsys):
    preds, refs = tmp_path / "pred", tmp_path / "ref"
    imwrite(preds / "a.tif", np.ones((8, 8), np.uint8))
    imwrite(preds / "b.tif", np.ones((8, 8), np.uint8))
    imwrite(refs / "a_mask.tif", np.ones((8, 8), np.uint8))
    assert main(["evaluate", str(preds), str(refs)]) == 2
    err = capsys.readouterr().err
    _one_line_error(err)
    assert "no reference" in err and "b.tif" in err
    assert main(["evaluate", str(preds), str(refs / "a_mask.tif")]) == 2
    err = capsys.readouterr().err
    _one_line_error(err)
    assert "is a folder but" in err
