import numpy as np
import pytest

from pixelforest import datasets
from pixelforest.demo import DEFAULT_SAMPLE, format_table, run_demo
from pixelforest.errors import DataUnavailableError


def test_default_sample_is_a_fluorescence_image():
    assert DEFAULT_SAMPLE in datasets.list_samples(kind="fluorescence")


@pytest.mark.slow
def test_run_demo_on_the_default_real_sample(tmp_path):
    result = run_demo(out=tmp_path)
    assert result.sample == DEFAULT_SAMPLE and result.kind == "fluorescence"
    methods = [row["method"] for row in result.rows]
    assert methods == ["otsu", "kmeans", "random forest (scribbles)"]
    for row in result.rows:
        for key in ("iou", "dice", "f1", "ap"):
            assert 0.0 <= row[key] <= 1.0
        # Dice and IoU of one mask pair are tied by iou = dice / (2 - dice)
        assert row["iou"] == pytest.approx(row["dice"] / (2 - row["dice"]))
    # nuclei are found, not inverted: every method is far above chance
    assert min(row["iou"] for row in result.rows) > 0.6
    assert result.figure.exists() and result.figure.parent == tmp_path
    assert len(result.top_features) == 5
    assert "IoU" in format_table(result.rows).splitlines()[0]


def test_run_demo_falls_back_to_synthetic_without_data(monkeypatch, tmp_path):
    def unavailable(name):
        raise DataUnavailableError("no PIXELFOREST_DATA_DIR and no network")

    monkeypatch.setattr(datasets, "load_sample", unavailable)
    result = run_demo()
    assert result.sample == "synthetic"
    assert any("synthetic" in note for note in result.notes)
    assert result.figure is None
    assert all(0.0 <= row["iou"] <= 1.0 for row in result.rows)


def test_run_demo_named_sample_without_data_raises(monkeypatch):
    def unavailable(name):
        raise DataUnavailableError("no data")

    monkeypatch.setattr(datasets, "load_sample", unavailable)
    with pytest.raises(DataUnavailableError):
        run_demo(sample=DEFAULT_SAMPLE)


def test_run_demo_dark_nuclei_take_the_darker_class():
    name = datasets.list_samples(kind="histology")[0]
    result = run_demo(sample=name)
    assert result.kind == "histology"
    assert any("dark" in note for note in result.notes)
    scores = {row["method"]: row["iou"] for row in result.rows}
    # the darker class of a histology image holds the nuclei: clearly better
    # than the inverted choice would be (that one scores near zero)
    assert scores["otsu"] > 0.3
    assert np.isfinite(list(scores.values())).all()
