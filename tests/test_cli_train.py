import dataclasses
import json

import numpy as np
import pytest

from pixelforest import PixelClassifier
from pixelforest.classify.scribbles import simulate_scribbles
from pixelforest.cli.main import main
from pixelforest.features import FeatureSpec
from pixelforest.features.spec import DEFAULT_PRECISION, PRECISIONS
from pixelforest.forest.defaults import default_estimator
from pixelforest.io.images import imread, imwrite
from pixelforest.io.model_file import load_model


@pytest.fixture()
def files(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.zeros((64, 72), np.uint16)
    yy, xx = np.indices(labels.shape)
    for i, (cy, cx) in enumerate([(15, 15), (40, 20), (30, 50), (52, 55)]):
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 < 40] = i + 1
    image = np.clip(rng.normal(30, 5, labels.shape) + 120 * (labels > 0), 0, 255).astype(np.uint8)
    paths = {"image": tmp_path / "img.tif", "labels": tmp_path / "scribbles.tif",
             "ref": tmp_path / "ref.tif", "model": tmp_path / "m.skops"}
    imwrite(paths["image"], image)
    imwrite(paths["labels"], simulate_scribbles(labels, random_state=0))
    imwrite(paths["ref"], labels)
    return paths, image


def _train(paths, *extra):
    return main(["train", str(paths["image"]), "--labels", str(paths["labels"]),
                 "-o", str(paths["model"]), "--trees", "12", "--features", "small", *extra])


def test_train_prints_oob_and_iou_and_saves(files, capsys):
    paths, image = files
    assert _train(paths, "--reference", str(paths["ref"])) == 0
    out = capsys.readouterr().out
    oob = float(out.split("out-of-bag score: ")[1].split()[0])
    assert 0.9 <= oob <= 1.0
    iou = float(out.split("IoU ")[1].split()[0])
    assert iou > 0.7
    clf = load_model(paths["model"])
    assert clf.estimator_.n_estimators == 12 and clf.spec_.sigmas_for("dog")[-1] == 4.096
    assert "top features:" in out


def test_train_refuses_to_overwrite(files, capsys):
    paths, _ = files
    assert _train(paths) == 0
    capsys.readouterr()
    assert _train(paths) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert _train(paths, "--overwrite") == 0


def test_train_bad_input_is_one_line(files, capsys):
    paths, _ = files
    code = main(["train", str(paths["image"]), "--labels", str(paths["labels"]),
                 str(paths["labels"]), "-o", str(paths["model"])])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "one --labels file per image" in err
    float_labels = paths["labels"].with_name("float.tif")
    imwrite(float_labels, np.ones((64, 72), np.float32))
    code = main(["train", str(paths["image"]), "--labels", str(float_labels),
                 "-o", str(paths["model"])])
    err = capsys.readouterr().err
    assert code == 2 and "astype" in err and not paths["model"].exists()
    code = _train(paths, "--features", "huge")
    assert code == 2 and "choose from" in capsys.readouterr().err


def test_info(files, capsys):
    paths, _ = files
    _train(paths)
    capsys.readouterr()
    assert main(["info", str(paths["model"])]) == 0
    out = capsys.readouterr().out
    for word in ("created", "scikit-learn", "classes     [1, 2]", "1 channel(s)",
                 "top features:", "dog(sigma="):
        assert word in out
    assert main(["info", str(paths["model"]), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["classes"] == [1, 2] and info["features"]["families"][0] == "intensity"


def test_info_refuses_pickle(tmp_path, capsys):
    bad = tmp_path / "bad.skops"
    bad.write_bytes(b"\x80\x04K\x01.")
    assert main(["info", str(bad)]) == 2
    assert "pickle" in capsys.readouterr().err


def test_features(capsys):
    assert main(["features"]) == 0
    out = capsys.readouterr().out
    for name in ("intensity", "gaussian", "dog", "log", "gradient", "hessian", "structure",
                 "default", "small", "large"):
        assert f"  {name} " in out
    assert main(["features", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data["presets"]) >= {"default", "small", "large"}


# ------------------------------------------- mistakes get the right fix

def _one_line_error(err):
    assert err.startswith("pixelforest: error:") and err.count("\n") == 1, err
    assert "Traceback" not in err


def _mask_files(files, value):
    paths, _ = files
    ref = np.asarray(__import__("pixelforest.io.images", fromlist=["imread"]).imread(paths["ref"]))
    mask = paths["labels"].with_name(f"mask{value}.tif")
    imwrite(mask, ((ref > 0) * value).astype(np.uint8))
    return paths, mask


@pytest.mark.parametrize("value", [1, 255])
def test_mask_given_as_labels_says_what_zero_means(files, capsys, value):
    paths, mask = _mask_files(files, value)
    code = main(["train", str(paths["image"]), "--labels", str(mask), "-o", str(paths["model"]),
                 "--trees", "5", "--features", "small"])
    err = capsys.readouterr().err
    assert code == 2
    _one_line_error(err)
    assert "0 = unlabelled; paint background as 1 and nuclei as 2, or pass " \
           "--labels-are-mask" in err
    assert not paths["model"].exists()


@pytest.mark.parametrize("value", [1, 255])
def test_labels_are_mask_trains_background_and_foreground(files, capsys, value):
    paths, mask = _mask_files(files, value)
    assert main(["train", str(paths["image"]), "--labels", str(mask), "-o", str(paths["model"]),
                 "--trees", "5", "--features", "small", "--labels-are-mask",
                 "--reference", str(paths["ref"])]) == 0
    out = capsys.readouterr().out
    assert "classes: [1, 2]" in out and f"{64 * 72} labelled pixels" in out
    assert float(out.split("IoU ")[1].split()[0]) > 0.9
    # scribbles are not a mask
    assert main(["train", str(paths["image"]), "--labels", str(paths["labels"]), "-o",
                 str(paths["model"]), "--overwrite", "--labels-are-mask"]) == 2
    err = capsys.readouterr().err
    _one_line_error(err)
    assert "drop --labels-are-mask" in err


def test_rgb_label_png_says_to_save_one_channel(files, capsys):
    paths, _ = files
    from pixelforest.io.images import imread

    scribbles = imread(paths["labels"]).astype(np.uint8)
    rgb = paths["labels"].with_name("labels-rgb.png")
    imwrite(rgb, np.stack([scribbles * 100] * 3, axis=-1))
    code = main(["train", str(paths["image"]), "--labels", str(rgb), "-o", str(paths["model"])])
    err = capsys.readouterr().err
    assert code == 2
    _one_line_error(err)
    assert "single-channel image" in err and "napari" in err


def test_rgb_image_without_channel_axis_says_to_pass_it(files, capsys):
    paths, image = files
    rgb = paths["image"].with_name("rgb.png")
    imwrite(rgb, np.stack([image] * 3, axis=-1))
    args = ["train", str(rgb), "--labels", str(paths["labels"]), "-o", str(paths["model"]),
            "--trees", "5", "--features", "small"]
    assert main(args) == 2
    err = capsys.readouterr().err
    _one_line_error(err)
    assert "looks like an RGB image" in err and "pass --channel-axis -1" in err
    assert main(args + ["--channel-axis", "-1"]) == 0
    assert "3 channel(s)" in capsys.readouterr().out


@pytest.mark.parametrize("rgb_model", [True, False])
def test_predict_channel_mismatch_names_the_option(files, capsys, tmp_path, rgb_model):
    paths, image = files
    rgb = paths["image"].with_name("rgb.png")
    imwrite(rgb, np.stack([image] * 3, axis=-1))
    train_on, predict_on = (rgb, paths["image"]) if rgb_model else (paths["image"], rgb)
    extra = ["--channel-axis", "-1"] if rgb_model else []
    assert main(["train", str(train_on), "--labels", str(paths["labels"]), "-o",
                 str(paths["model"]), "--trees", "5", "--features", "small", *extra]) == 0
    capsys.readouterr()
    assert main(["predict", str(paths["model"]), str(predict_on), "-o",
                 str(tmp_path / "out.tif")]) != 0
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "Traceback" not in text
    assert "channel" in text and "--channel-axis" in text


@pytest.mark.parametrize("precision", ["exact", "fast"])
def test_train_precision_is_recorded_and_followed(files, capsys, precision):
    paths, image = files
    assert _train(paths, "--precision", precision) == 0
    assert f"({precision} filters)" in capsys.readouterr().out
    clf = load_model(paths["model"])
    assert clf.spec_.precision == precision
    # predict follows the model's path: same labels as a classifier fitted in memory
    spec = dataclasses.replace(FeatureSpec.preset("small"), precision=precision)
    # the out-of-bag score the CLI asks for does not change the trees
    direct = PixelClassifier(spec, default_estimator(n_estimators=12),
                             random_state=0).fit(image, imread(paths["labels"]))
    assert np.array_equal(clf.predict(image), direct.predict(image))
    assert main(["info", str(paths["model"])]) == 0
    assert f"{precision} filters" in capsys.readouterr().out


def test_train_precision_choices_match_the_feature_spec():
    """The parser spells the choices out (it must not import the filters): keep them in step."""
    import argparse

    from pixelforest.cli import train

    parser = train.add_parser(argparse.ArgumentParser().add_subparsers())
    required = ["img.tif", "--labels", "s.tif", "-o", "m.skops"]
    for precision in PRECISIONS:
        assert parser.parse_args(required + ["--precision", precision]).precision == precision
    with pytest.raises(SystemExit):
        parser.parse_args(required + ["--precision", "approximate"])
    assert f"(default: {DEFAULT_PRECISION})" in " ".join(parser.format_help().split())
