"""One thread budget, passed down: no pool inside a pool."""

import threading

import numpy as np
import pytest

import pixelforest.classify.pipeline as pipeline_module
from pixelforest import PixelClassifier
from pixelforest.classify.scribbles import simulate_scribbles
from pixelforest.datasets import synthetic_nuclei
from pixelforest.features import FeatureSpec
from pixelforest.scale.tiled import predict_tiled, predict_to_file


@pytest.fixture
def fitted():
    image, labels = synthetic_nuclei((96, 96), n=6, seed=1)
    clf = PixelClassifier(FeatureSpec(sigmas=(1, 2)), n_jobs=2)
    return clf.fit(image, simulate_scribbles(labels, random_state=0)), image


@pytest.fixture
def budgets(monkeypatch):
    seen = []
    original = pipeline_module.feature_planes_of_block  # what predicting a block computes

    def spy(*args, n_threads=None, **kwargs):
        seen.append((threading.current_thread().name, n_threads))
        return original(*args, n_threads=n_threads, **kwargs)

    monkeypatch.setattr(pipeline_module, "feature_planes_of_block", spy)
    return seen


def test_dask_blocks_run_single_threaded(fitted, budgets, tmp_path):
    clf, image = fitted
    lazy = predict_tiled(clf, image, chunks=32, workers=2)
    lazy.compute()
    predict_to_file(clf, image, tmp_path / "out.zarr", chunks=32, workers=2)
    assert budgets and all(n == 1 for _, n in budgets)


def test_in_memory_blocks_share_the_classifier_budget(fitted, budgets):
    clf, image = fitted
    big = np.tile(image, (6, 6))  # several blocks: one pool, each block on one thread
    clf.predict(big)
    assert {n for _, n in budgets} == {1}
    assert all(name.startswith("pf-block") for name, _ in budgets)
    budgets.clear()
    clf.predict(image)  # one block: it gets the whole budget
    assert budgets == [(threading.current_thread().name, 2)]
