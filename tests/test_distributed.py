"""dask.distributed never hangs: no workers, workers that die mid-run, a dashboard
address given as the scheduler's (issue 10, section 3).

Each test runs a real in-process cluster (``processes=False``) with timeouts of
a second or two, and closes it with a context manager."""

import threading

import numpy as np
import pytest

from pixelforest.classify.classifier import PixelClassifier, default_estimator
from pixelforest.classify.pipeline import PredictionPipeline
from pixelforest.cli.main import main
from pixelforest.datasets import synthetic_nuclei
from pixelforest.errors import ClusterTimeoutError, InvalidParameterError
from pixelforest.features import FeatureSpec
from pixelforest.io.images import imwrite
from pixelforest.io.model_file import save_model
from pixelforest.scale.batch import predict_files
from pixelforest.scale.tiled import predict_tiled, predict_to_file

distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.filterwarnings(
    "ignore:`sklearn.utils.parallel.delayed` should be used:UserWarning")


@pytest.fixture(scope="module")
def clf():
    image, labels = synthetic_nuclei((64, 64), n=5, seed=0)
    scrib = np.zeros(labels.shape, np.uint8)
    scrib[(labels == 0) & (np.arange(64) % 6 == 0)] = 1
    scrib[labels > 0] = 2
    return PixelClassifier(FeatureSpec(sigmas=(1.0,)),
                           estimator=default_estimator(n_estimators=3)).fit(image, scrib)


@pytest.fixture()
def image():
    return synthetic_nuclei((96, 96), n=6, seed=2)[0]


def _cluster(n_workers):
    return distributed.LocalCluster(n_workers=n_workers, processes=False, threads_per_worker=1,
                                    dashboard_address=":0")  # any free port


def test_a_cluster_without_workers_fails_within_the_timeout(clf, image, tmp_path):
    with _cluster(0) as lc, distributed.Client(lc, set_as_default=False) as client:
        with pytest.raises(ClusterTimeoutError, match="no workers") as info:
            predict_to_file(clf, image, tmp_path / "out.zarr", chunks=32, scheduler=client,
                            timeout=1)
        assert "dask worker" in str(info.value) and "timeout" in str(info.value)
        with pytest.raises(ClusterTimeoutError, match="no workers"):
            predict_tiled(clf, image, chunks=32, scheduler=lc.scheduler_address, timeout=1)
    assert list(tmp_path.iterdir()) == []  # neither an output nor a temporary store


def test_cli_without_workers_is_a_one_line_error(clf, image, tmp_path, capsys):
    save_model(clf, tmp_path / "model.skops")
    imwrite(tmp_path / "in" / "a.tif", image)
    with _cluster(0) as lc:
        code = main(["predict", str(tmp_path / "model.skops"), str(tmp_path / "in"), "-o",
                     str(tmp_path / "out"), "--scheduler", lc.scheduler_address,
                     "--timeout", "1"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("pixelforest: error:") and "no workers" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def _close_the_worker_after_the_first_block(monkeypatch, lc):
    """Patch the block step: the first block stops the cluster's only worker."""
    original = PredictionPipeline.predict_proba_block
    started = threading.Event()

    def step(self, *args, **kwargs):
        if not started.is_set():
            started.set()
            lc.scale(0)  # asynchronous: the worker closes once this block is done
        return original(self, *args, **kwargs)

    monkeypatch.setattr(PredictionPipeline, "predict_proba_block", step)
    return started


@pytest.mark.parametrize("name", ["out.zarr", "out.tif"])
def test_workers_dying_mid_run_fail_within_the_timeout(clf, image, tmp_path, monkeypatch,
                                                      name):
    out = tmp_path / "out"
    out.mkdir()
    with _cluster(1) as lc, distributed.Client(lc, set_as_default=False) as client:
        started = _close_the_worker_after_the_first_block(monkeypatch, lc)
        with pytest.raises(ClusterTimeoutError, match="workers") as info:
            predict_to_file(clf, image, out / name, chunks=24, scheduler=client, timeout=2)
        assert started.is_set()
        assert "2 s" in str(info.value) and "again" in str(info.value)
    assert list(out.iterdir()) == []  # the temporary output was removed


def test_a_batch_stops_at_the_first_cluster_timeout(clf, image, tmp_path, monkeypatch):
    for k in range(3):
        imwrite(tmp_path / "in" / f"im{k}.tif", image)
    with _cluster(1) as lc, distributed.Client(lc, set_as_default=False) as client:
        _close_the_worker_after_the_first_block(monkeypatch, lc)
        with pytest.raises(ClusterTimeoutError):
            predict_files(clf, tmp_path / "in", tmp_path / "out", chunks=24,
                          scheduler=client, timeout=1.5)
    out = tmp_path / "out"
    assert not out.exists() or [p for p in out.iterdir() if p.name.startswith(".")] == []


def test_distributed_still_equals_local_with_the_watchdog(clf, image, tmp_path):
    with _cluster(2) as lc, distributed.Client(lc, set_as_default=False) as client:
        out = predict_to_file(clf, image, tmp_path / "out.zarr", chunks=32, scheduler=client,
                              timeout=30)
    import zarr

    np.testing.assert_array_equal(zarr.open_array(str(out))[:], clf.predict(image))


@pytest.mark.parametrize("address", ["http://127.0.0.1:8787", "https://host:8787/status"])
def test_a_dashboard_address_is_refused_at_once(clf, image, tmp_path, capsys, address):
    with pytest.raises(InvalidParameterError, match="dashboard") as info:
        predict_to_file(clf, image, tmp_path / "out.zarr", scheduler=address)
    assert "tcp://" in str(info.value) and ":8786" in str(info.value)
    save_model(clf, tmp_path / "model.skops")
    imwrite(tmp_path / "in.tif", image)
    code = main(["predict", str(tmp_path / "model.skops"), str(tmp_path / "in.tif"), "-o",
                 str(tmp_path / "out.tif"), "--scheduler", address])
    err = capsys.readouterr().err
    assert code == 2 and "dashboard" in err and len(err.strip().splitlines()) == 1


def test_unknown_scheme_and_bad_timeout_are_refused(clf, image):
    with pytest.raises(InvalidParameterError, match="tcp://"):
        predict_tiled(clf, image, scheduler="ftp://host:8786")
    for bad in (0, -1, float("nan"), "60", True):
        with pytest.raises(InvalidParameterError, match="timeout"):
            predict_tiled(clf, image, scheduler="synchronous", timeout=bad)


def test_a_task_longer_than_the_timeout_is_progress_not_a_stall():
    import time

    import dask

    from pixelforest.scale.scheduler import open_scheduler

    with _cluster(1) as lc, distributed.Client(lc, set_as_default=False) as client:
        with open_scheduler(client, timeout=0.5) as sched:
            assert sched.compute(dask.delayed(time.sleep)(1.5)) == (None,)
