"""SIGTERM and SIGHUP stop a batch as cleanly as Ctrl-C, and a re-run removes the
stale temporaries of earlier killed runs (issue 10, section 3)."""

import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import tifffile

from pixelforest.classify.classifier import PixelClassifier, default_estimator
from pixelforest.classify.pipeline import PredictionPipeline
from pixelforest.datasets import synthetic_nuclei
from pixelforest.features import FeatureSpec
from pixelforest.io.images import imwrite
from pixelforest.io.model_file import save_model
from pixelforest.scale.batch import predict_files

pytestmark = [
    pytest.mark.filterwarnings(
        "ignore:`sklearn.utils.parallel.delayed` should be used:UserWarning"),
    pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="POSIX signals"),
]

#: Every block of the child process sleeps this long, so that a batch of a few
#: small images lasts a few seconds whatever the machine (the rest is the real CLI).
SLOW_CHILD = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGHUP, signal.SIG_DFL)  # as in a terminal, even under nohup\n"
    "from pixelforest.classify.pipeline import PredictionPipeline\n"
    "original = PredictionPipeline.predict_proba_block\n"
    "def slow(self, *args, **kwargs):\n"
    "    time.sleep(0.05)\n"
    "    return original(self, *args, **kwargs)\n"
    "PredictionPipeline.predict_proba_block = slow\n"
    "from pixelforest.cli.main import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def _scribbles(labels):
    from scipy import ndimage as ndi

    scrib = np.zeros(labels.shape, np.uint8)
    fg = labels > 0
    scrib[~ndi.binary_dilation(fg, iterations=4) & (np.arange(labels.shape[-1]) % 5 == 0)] = 1
    scrib[ndi.binary_erosion(fg, iterations=2)] = 2
    return scrib


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """A saved model and eight small images."""
    folder = tmp_path_factory.mktemp("signals")
    image, labels = synthetic_nuclei((96, 96), n=8, seed=0)
    clf = PixelClassifier(FeatureSpec(sigmas=(1.0, 2.0)),
                          estimator=default_estimator(n_estimators=4)).fit(image,
                                                                           _scribbles(labels))
    save_model(clf, folder / "model.skops")
    images = {}
    for seed in range(8):
        images[f"im{seed}"] = synthetic_nuclei((64, 64), n=4, seed=seed)[0]
        imwrite(folder / "in" / f"im{seed}.tif", images[f"im{seed}"])
    return folder, clf, images


def _hidden(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_signal_stops_the_batch_cleanly_and_a_rerun_resumes(batch, tmp_path, signum):
    folder, clf, images = batch
    out = tmp_path / "out"
    args = ["predict", str(folder / "model.skops"), str(folder / "in"), "-o", str(out),
            "--workers", "1", "--chunks", "16"]
    proc = subprocess.Popen([sys.executable, "-c", SLOW_CHILD] + args,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            if out.exists() and any(not p.name.startswith(".") for p in out.iterdir()):
                break
            time.sleep(0.01)
        assert proc.poll() is None, "the batch ended before it could be stopped"
        proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signum, stderr
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert signal.Signals(signum).name in last and "again" in last, last
    finished = sorted(p.name for p in out.iterdir())
    assert _hidden(out) == []  # no temporary file of the unfinished image
    assert 1 <= len(finished) < len(images)
    for name in finished:  # what exists is complete
        np.testing.assert_array_equal(tifffile.imread(out / name),
                                      clf.predict(images[name[:-4]]))
    # the re-run skips what was finished and completes the rest
    report = predict_files(folder / "model.skops", folder / "in", out, workers=1)
    assert sorted(o.name for _, o in report.skipped) == finished
    assert len(report.written) == len(images) - len(finished) and report.ok
    assert _hidden(out) == []


def test_predict_files_turns_sigterm_into_an_interruption_and_restores_handlers(
        batch, tmp_path, monkeypatch):
    folder, clf, _ = batch
    out = tmp_path / "out"
    received = []
    # a handler of our own: if predict_files did not install one, SIGTERM lands here
    def ours(signum, frame):
        received.append(signum)

    previous = signal.signal(signal.SIGTERM, ours)
    original = PredictionPipeline.predict_proba_block

    def slow(self, *args, **kwargs):
        time.sleep(0.02)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(PredictionPipeline, "predict_proba_block", slow)

    def kill_after_first_output():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if out.exists() and any(not p.name.startswith(".") for p in out.iterdir()):
                break
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGTERM)

    killer = threading.Thread(target=kill_after_first_output)
    try:
        killer.start()
        with pytest.raises(KeyboardInterrupt) as info:
            predict_files(clf, folder / "in", out, workers=1, chunks=16)
            time.sleep(1)  # (old code) give the signal time to arrive
        killer.join()
        handler_after = signal.getsignal(signal.SIGTERM)
    finally:
        killer.join()
        signal.signal(signal.SIGTERM, previous)
    assert received == []
    assert info.value.signum == signal.SIGTERM
    finished = sorted(p.name for p in out.iterdir())
    assert [o.name for _, o in info.value.report.written] == finished
    assert _hidden(out) == []
    assert handler_after is ours  # restored


_LEAVE_A_TEMPORARY = (
    "import os, sys, time\n"
    "from pathlib import Path\n"
    "from pixelforest._shared.atomic import atomic_output\n"
    "out = Path(sys.argv[1])\n"
    "with atomic_output(out / 'im0.tif') as tmp:\n"
    "    tmp.write_bytes(b'half a tiff')\n"
    "    with atomic_output(out / 'im1.zarr') as store:\n"
    "        (store / 'c' / '0').mkdir(parents=True)\n"
    "        (store / 'c' / '0' / '0').write_bytes(b'chunk')\n"
    "        print('ready', flush=True)\n"
    "        if sys.argv[2] == 'die':\n"
    "            os._exit(1)  # killed: no clean-up runs\n"
    "        time.sleep(600)\n"
)


def test_rerun_removes_stale_temporaries_of_dead_processes_only(batch, tmp_path):
    folder, _, images = batch
    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.run([sys.executable, "-c", _LEAVE_A_TEMPORARY, str(out), "die"],
                          capture_output=True, text=True, timeout=60)
    assert "ready" in dead.stdout, dead.stderr
    stale = _hidden(out)
    assert len(stale) == 2  # a file and a Zarr store left by a killed process
    live_dir = tmp_path / "live"
    live_dir.mkdir()
    live = subprocess.Popen([sys.executable, "-c", _LEAVE_A_TEMPORARY, str(live_dir), "live"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert live.stdout.readline().strip() == "ready"
        live_tmps = _hidden(live_dir)
        for name in live_tmps:  # a running process's temporaries, in the output folder
            os.rename(live_dir / name, out / name)
        report = predict_files(folder / "model.skops", folder / "in" / "im0.tif", out / "im0.tif")
        assert report.ok
        report = predict_files(folder / "model.skops", folder / "in", out, workers=1)
        assert report.ok and len(report.written) == len(images) - 1
        # the dead process's temporaries are gone, the live one's kept
        assert _hidden(out) == sorted(live_tmps)
    finally:
        live.kill()
        live.wait()


def test_an_ignored_signal_stays_ignored_and_threads_are_left_alone():
    from pixelforest._shared.signals import signals_as_interrupt

    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under nohup
    try:
        term = signal.getsignal(signal.SIGTERM)
        with signals_as_interrupt():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is not term
        assert signal.getsignal(signal.SIGTERM) is term
        seen = []

        def in_a_thread():  # Python cannot install handlers there: nothing happens
            with signals_as_interrupt():
                seen.append(signal.getsignal(signal.SIGTERM))

        thread = threading.Thread(target=in_a_thread)
        thread.start()
        thread.join()
        assert seen == [term]
    finally:
        signal.signal(signal.SIGHUP, previous)
