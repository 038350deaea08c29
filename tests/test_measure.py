"""Tests of pixelforest.objects.measure and the ``pixelforest measure`` command."""

import numpy as np
import pandas as pd
import pytest

from pixelforest.errors import (
    InvalidLabelsError,
    InvalidParameterError,
    OutputExistsError,
    ShapeMismatchError,
)
from pixelforest.objects import measure, summarize, write_csv


def two_rectangles():
    labels = np.zeros((10, 12), np.uint16)
    labels[2:4, 3:7] = 1      # 2 x 4 = 8 px, inside
    labels[5:10, 9:12] = 7    # 5 x 3 = 15 px, touches the bottom and right borders
    image = np.zeros((10, 12, 2), np.float32)
    image[..., 0] = np.arange(120).reshape(10, 12)
    image[..., 1] = 5.0
    image[6, 10, 1] = 20.0
    return labels, image


def test_hand_computed_values_2d():
    labels, image = two_rectangles()
    t = measure(labels, image, spacing=(0.5, 0.25), channel_axis=-1,
                channel_names=["dapi", "gfp"])
    assert isinstance(t, pd.DataFrame)
    assert t["label"].tolist() == [1, 7]
    assert t["area"].tolist() == [8, 15]
    np.testing.assert_allclose(t["area_physical"], [8 * 0.125, 15 * 0.125])
    np.testing.assert_allclose(t["centroid_y"], [2.5, 7.0])
    np.testing.assert_allclose(t["centroid_x"], [4.5, 10.0])
    assert t[["bbox_min_y", "bbox_min_x", "bbox_max_y", "bbox_max_x"]].values.tolist() == [
        [2, 3, 4, 7], [5, 9, 10, 12]]
    assert t["touches_border"].tolist() == [False, True]
    # channel 0 holds 12 * row + column
    rows1, cols1 = np.mgrid[2:4, 3:7]
    v1 = 12 * rows1 + cols1
    rows7, cols7 = np.mgrid[5:10, 9:12]
    v7 = 12 * rows7 + cols7
    np.testing.assert_allclose(t["mean_dapi"], [v1.mean(), v7.mean()])
    np.testing.assert_allclose(t["min_dapi"], [v1.min(), v7.min()])
    np.testing.assert_allclose(t["max_dapi"], [v1.max(), v7.max()])
    np.testing.assert_allclose(t["sum_dapi"], [v1.sum(), v7.sum()])
    np.testing.assert_allclose(t["sum_gfp"], [8 * 5.0, 14 * 5.0 + 20.0])
    np.testing.assert_allclose(t["max_gfp"], [5.0, 20.0])
    # rectangles are convex; a 2 x 4 one's second moments: var_x = (16-1)/12, var_y = 1/4
    np.testing.assert_allclose(t["solidity"], [1.0, 1.0])
    np.testing.assert_allclose(t["eccentricity"].iloc[0],
                               np.sqrt(1 - (1 / 4) / (15 / 12)), rtol=1e-6)
    # axis lengths are physical: 4 * sqrt(variance) along each axis (x spacing 0.25)
    np.testing.assert_allclose(t["axis_major_length"].iloc[0],
                               4 * np.sqrt(15 / 12) * 0.25, rtol=1e-6)
    np.testing.assert_allclose(t["axis_minor_length"].iloc[0],
                               4 * np.sqrt(1 / 4) * 0.5, rtol=1e-6)


def test_3d_columns_and_values():
    labels = np.zeros((4, 6, 6), np.uint8)
    labels[1:3, 1:4, 2:4] = 3   # 2 x 3 x 2 = 12 voxels
    labels[0, 0, 0] = 4         # one voxel in the corner
    t = measure(labels, spacing=(2.0, 1.0, 1.0))
    assert "volume" in t and "centroid_z" in t and "eccentricity" not in t
    assert t["volume"].tolist() == [12, 1]
    np.testing.assert_allclose(t["volume_physical"], [24.0, 2.0])
    np.testing.assert_allclose(t[["centroid_z", "centroid_y", "centroid_x"]].iloc[0],
                               [1.5, 2.0, 2.5])
    assert t["touches_border"].tolist() == [False, True]
    assert t["solidity"].iloc[0] == pytest.approx(1.0)
    assert np.isnan(t["solidity"].iloc[1])  # one voxel: no convex hull
    assert not any(c.startswith("mean_") for c in t.columns)


def test_no_objects_gives_an_empty_table_with_the_columns():
    empty = measure(np.zeros((5, 5), np.uint8), np.ones((5, 5)))
    full = measure(np.pad(np.ones((1, 1), np.uint8), 2), np.ones((5, 5)))
    assert len(empty) == 0 and list(empty.columns) == list(full.columns)
    s = summarize(empty, shape=(5, 5))
    assert s["count"].tolist() == [0] and s["density"].tolist() == [0.0]


def test_summary():
    labels, _ = two_rectangles()
    t = measure(labels, spacing=0.5)
    s = summarize(t, shape=labels.shape, spacing=0.5)
    row = s.iloc[0]
    assert row["count"] == 2 and row["touching_border"] == 1
    assert row["mean_area"] == pytest.approx(11.5)
    assert row["median_area"] == pytest.approx(11.5)
    assert row["mean_area_physical"] == pytest.approx(11.5 * 0.25)
    assert row["coverage"] == pytest.approx(23 / 120)
    assert row["density"] == pytest.approx(2 / (120 * 0.25))


def test_measure_predicted_instances_matches_the_objects():
    from pixelforest.datasets import synthetic_nuclei

    image, truth = synthetic_nuclei((96, 96), n=8, seed=0)
    t = measure(truth, image)
    assert len(t) == truth.max()
    np.testing.assert_array_equal(t["area"], np.bincount(truth.ravel())[1:])


def test_errors():
    labels, image = two_rectangles()
    with pytest.raises(ShapeMismatchError):
        measure(labels, image[:5], channel_axis=-1)
    with pytest.raises(ShapeMismatchError, match="channel_axis"):
        measure(labels, image)  # a 3-D array read as 3-D space
    with pytest.raises(InvalidLabelsError):
        measure(labels - 2.0)
    with pytest.raises(InvalidLabelsError):
        measure(labels + 0.5)
    with pytest.raises(InvalidParameterError):
        measure(labels, image, channel_axis=-1, channel_names=["a"])
    with pytest.raises(InvalidParameterError):
        measure(labels, spacing=(1, 1, 1))
    with pytest.raises(InvalidParameterError):
        summarize(measure(labels), shape=(2, 2, 2))


def test_write_csv_is_atomic_and_round_trips(tmp_path):
    labels, image = two_rectangles()
    t = measure(labels, image, channel_axis=-1)
    path = tmp_path / "objects.csv"
    write_csv(t, path)
    back = pd.read_csv(path)
    pd.testing.assert_frame_equal(back, t, check_dtype=False)
    with pytest.raises(OutputExistsError):
        write_csv(t, path, overwrite=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["objects.csv"]  # no temporary left


# ------------------------------------------------------------------- CLI


def test_cli_measure_writes_table_and_summary(tmp_path, capsys):
    import tifffile

    from pixelforest.cli.main import main

    labels, image = two_rectangles()
    tifffile.imwrite(tmp_path / "labels.tif", labels)
    tifffile.imwrite(tmp_path / "dapi.tif", image[..., 0])
    tifffile.imwrite(tmp_path / "gfp.tif", image[..., 1])
    out, summary = tmp_path / "objects.csv", tmp_path / "summary.csv"
    code = main(["measure", str(tmp_path / "labels.tif"), str(tmp_path / "dapi.tif"),
                 str(tmp_path / "gfp.tif"), "-o", str(out), "--summary", str(summary),
                 "--spacing", "0.5", "0.25"])
    assert code == 0
    assert "2 objects" in capsys.readouterr().out
    table = pd.read_csv(out)
    expected = measure(labels, image, spacing=(0.5, 0.25), channel_axis=-1,
                       channel_names=["dapi", "gfp"])
    pd.testing.assert_frame_equal(table, expected, check_dtype=False)
    assert pd.read_csv(summary)["count"].tolist() == [2]
    # one image: its channels are ch0, ...; existing output is kept without --overwrite
    assert main(["measure", str(tmp_path / "labels.tif"), str(tmp_path / "dapi.tif"),
                 "-o", str(out)]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["measure", str(tmp_path / "labels.tif"), str(tmp_path / "dapi.tif"),
                 "-o", str(out), "--overwrite"]) == 0
    assert "mean_ch0" in pd.read_csv(out).columns


def test_cli_measure_refuses_bad_outputs(tmp_path, capsys):
    import tifffile

    from pixelforest.cli.main import main

    labels, _ = two_rectangles()
    tifffile.imwrite(tmp_path / "labels.tif", labels)
    assert main(["measure", str(tmp_path / "labels.tif"), "-o",
                 str(tmp_path / "table.tif")]) == 2
    assert "csv" in capsys.readouterr().err
    assert not (tmp_path / "table.tif").exists()
