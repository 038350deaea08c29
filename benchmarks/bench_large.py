"""Benchmark: peak memory and time of ``pixelforest predict`` on an 8192 x 8192 Zarr.

Target (issue 5): predicting an 8192 x 8192 uint8 Zarr with a default
model and default settings peaks below 1.5 GB of resident memory.  The
same bound is checked for instance labels (issue 12, ``--kind instances``:
the probability, the whole-image statistics and the objects, block by block
with an overlap larger than the objects).

The script

1. builds the input: a real DSB2018 fluorescence image (through
   :mod:`pixelforest.datasets`) tiled to ``--size`` x ``--size`` uint8,
   stored as a Zarr with 1024 x 1024 chunks;
2. trains a default :class:`~pixelforest.classify.classifier.PixelClassifier`
   (default features and forest) on simulated scribbles of that image and
   saves it with :func:`pixelforest.io.model_file.save_model`;
3. runs ``pixelforest predict MODEL big.zarr -o labels.zarr`` in a child
   process under ``/usr/bin/time -v`` (or, without it, polls the child's
   memory with psutil) and prints its peak RSS and wall time;
4. runs the peer in the same way: the in-memory ``clf.predict`` of a
   ``--peer-size`` crop of the same image in a child process, and prints the
   ratios (memory per megapixel, throughput);
5. (``--kind instances`` or ``both``, the default) runs ``pixelforest predict
   MODEL big.zarr -o instances.zarr --kind instances`` the same way, prints
   its peak RSS, wall time, object count, radius and overlap (from the
   output's metadata), the PASS/FAIL of the same memory bound, and the peer:
   the in-memory ``clf.predict_instances`` of the ``--peer-size`` crop.

The memory model printed next to the measurement is the one documented in
:mod:`pixelforest.scale.tiled`: ``workers x (chunk + 2 halo)^2 x features x 4
bytes x 3`` plus the interpreter, libraries and model.  ``--chunks`` and
``--workers`` are passed to ``pixelforest predict`` to explore it.

Run::

    PIXELFOREST_DATA_DIR=../shared/data python benchmarks/bench_large.py
    PIXELFOREST_DATA_DIR=../shared/data python benchmarks/bench_large.py --size 4096 --chunks 512
    PIXELFOREST_DATA_DIR=../shared/data python benchmarks/bench_large.py --kind instances
"""

import argparse
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TARGET_GB = 1.5


def build_input(folder, size, sample):
    """Tile a real fluorescence image to size x size uint8 and store it as Zarr."""
    from pixelforest.datasets import list_samples, load_sample
    from pixelforest.io.images import imwrite

    name = sample or list_samples("fluorescence")[0]
    image, labels = load_sample(name)
    if image.dtype != np.uint8:
        raise SystemExit(f"sample {name} is {image.dtype}, expected uint8")
    reps = (-(-size // image.shape[0]), -(-size // image.shape[1]))
    big = np.tile(image, reps)[:size, :size]
    path = folder / "big.zarr"
    imwrite(path, big, chunks=(1024, 1024))
    return name, image, labels, path, big


def train(folder, image, labels):
    from pixelforest.classify.scribbles import simulate_scribbles
    from pixelforest.classify.classifier import PixelClassifier
    from pixelforest.io.model_file import save_model

    clf = PixelClassifier().fit(image, simulate_scribbles(labels, random_state=0))
    path = folder / "model.skops"
    save_model(clf, path)
    return clf, path


def _parse_time_v(stderr):
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", stderr)
    seconds = 0.0
    for part in wall.group(1).split(":"):
        seconds = seconds * 60 + float(part)
    return rss_kb * 1024, seconds


def measure(command, env):
    """Run ``command``; return (peak RSS bytes, wall seconds, how it was measured)."""
    time_bin = shutil.which("time") or ("/usr/bin/time" if os.path.exists("/usr/bin/time")
                                        else None)
    if time_bin:
        result = subprocess.run([time_bin, "-v"] + command, capture_output=True, text=True,
                                env=env)
        if result.returncode != 0:
            sys.stderr.write(result.stdout + result.stderr)
            raise SystemExit(f"command failed ({result.returncode}): {' '.join(command)}")
        rss, wall = _parse_time_v(result.stderr)
        return rss, wall, "/usr/bin/time -v"
    import psutil

    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=env)
    ps = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            peak = max(peak, ps.memory_info().rss
                       + sum(c.memory_info().rss for c in ps.children(recursive=True)))
        except psutil.Error:
            pass
        time.sleep(0.05)
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {proc.stderr.read()}")
    return peak, time.perf_counter() - start, "psutil polling every 50 ms"


PEER = """
import sys, numpy as np
from pixelforest.io.images import imread
from pixelforest.io.model_file import load_model
clf = load_model(sys.argv[1])
image = imread(sys.argv[2])[: int(sys.argv[3]), : int(sys.argv[3])]
labels = clf.predict(image)
print(labels.shape, int((labels == labels.max()).sum()))
"""

PEER_INSTANCES = """
import sys, numpy as np
from pixelforest.io.images import imread
from pixelforest.io.model_file import load_model
clf = load_model(sys.argv[1])
image = imread(sys.argv[2])[: int(sys.argv[3]), : int(sys.argv[3])]
labels = clf.predict_instances(image)
print(labels.shape, int(labels.max()))
"""


def run_instances(args, cli, model_path, zarr_path, folder, env, workers):
    """The instance case: tiled ``--kind instances`` and the in-memory peer."""
    from pixelforest.io.images import read_metadata

    out = folder / "instances.zarr"
    command = cli + ["predict", str(model_path), str(zarr_path), "-o", str(out),
                     "--overwrite", "--kind", "instances"]
    if args.chunks:
        command += ["--chunks", str(args.chunks)]
    if args.workers:
        command += ["--workers", str(args.workers)]
    print("command:", " ".join(command))
    rss, wall, how = measure(command, env)
    meta = read_metadata(out)
    mpx = args.size ** 2 / 1e6
    overlap = meta["overlap"]
    sides = meta["block"]  # the object pass's blocks (within the memory budget)
    print(f"tiled instances: peak RSS {rss / 1e9:.2f} GB, wall {wall:.1f} s "
          f"({mpx / wall:.2f} Mpx/s), {meta['n_objects']} objects, typical radius "
          f"{meta['radius']:.2f} px, overlap {overlap[0]} px, measured with {how}")
    block = math.prod(min(c + 2 * o, args.size) for c, o in zip(sides, overlap))
    print(f"  object pass: {workers} workers x blocks of "
          f"{' x '.join(f'({c} + 2 x {o})' for c, o in zip(sides, overlap))} = "
          f"{workers * block / 1e6:.1f} Mpx in flight")
    verdict = "PASS" if rss < TARGET_GB * 1e9 else "FAIL"
    print(f"  target peak RSS < {TARGET_GB} GB: {verdict}")
    peer_size = min(args.peer_size, args.size)
    peer = [sys.executable, "-c", PEER_INSTANCES, str(model_path), str(zarr_path),
            str(peer_size)]
    prss, pwall, _ = measure(peer, env)
    pmpx = peer_size ** 2 / 1e6
    print(f"peer, in-memory clf.predict_instances of a {peer_size} x {peer_size} crop: peak "
          f"RSS {prss / 1e9:.2f} GB, wall {pwall:.1f} s ({pmpx / pwall:.2f} Mpx/s)")
    print(f"ratios tiled / in-memory: memory per megapixel "
          f"{(rss / mpx) / (prss / pmpx):.3f}, throughput {(mpx / wall) / (pmpx / pwall):.2f}")
    return verdict


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=8192, help="image side (default 8192)")
    parser.add_argument("--chunks", type=int, default=None, help="--chunks of predict")
    parser.add_argument("--workers", type=int, default=None, help="--workers of predict")
    parser.add_argument("--peer-size", type=int, default=2048,
                        help="side of the crop predicted in memory by the peer")
    parser.add_argument("--sample", default=None, help="DSB2018 sample to tile")
    parser.add_argument("--keep", default=None, help="keep the files in this folder")
    parser.add_argument("--kind", choices=("labels", "instances", "both"), default="both",
                        help="semantic labels, instance labels, or both (default)")
    args = parser.parse_args(argv)

    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="pf-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        from pixelforest._shared.threads import available_cores
        from pixelforest.scale.chunking import (
            _WORKING_FACTOR,
            DEFAULT_MEMORY_BUDGET,
            choose_chunks,
        )

        name, image, labels, zarr_path, big = build_input(folder, args.size, args.sample)
        clf, model_path = train(folder, image, labels)
        workers = args.workers or available_cores()
        # as predict chooses them: aligned with the input's 1024 x 1024 Zarr chunks
        chunks = (args.chunks,) * 2 if args.chunks else choose_chunks(
            (args.size, args.size), n_features=clf.n_features_in_, halo=clf.halo_,
            workers=workers, base_chunks=(1024, 1024))
        block = math.prod(min(c, args.size) + 2 * h for c, h in zip(chunks, clf.halo_))
        formula = workers * block * clf.n_features_in_ * 4 * _WORKING_FACTOR
        print(f"input: {args.size} x {args.size} uint8 Zarr tiled from DSB2018 {name}; "
              f"model: default ({clf.n_features_in_} features, halo {clf.halo_}, "
              f"{clf.estimator_.n_estimators} trees)")
        how_chunks = ("given" if args.chunks else
                      f"automatic, budget {DEFAULT_MEMORY_BUDGET / 2**20:.0f} MiB")
        print(f"settings: workers={workers}, chunks={' x '.join(map(str, chunks))} "
              f"({how_chunks})")
        env = dict(os.environ)
        out = folder / "labels.zarr"
        exe = shutil.which("pixelforest")
        cli = [exe] if exe else [sys.executable, "-m", "pixelforest.cli.main"]
        if args.kind == "instances":
            verdict = run_instances(args, cli, model_path, zarr_path, folder, env, workers)
            return 0 if verdict == "PASS" else 1
        command = cli + ["predict", str(model_path), str(zarr_path), "-o", str(out),
                         "--overwrite"]
        if args.chunks:
            command += ["--chunks", str(args.chunks)]
        if args.workers:
            command += ["--workers", str(args.workers)]
        print("command:", " ".join(command))
        rss, wall, how = measure(command, env)
        mpx = args.size ** 2 / 1e6
        print(f"tiled predict: peak RSS {rss / 1e9:.2f} GB, wall {wall:.1f} s "
              f"({mpx / wall:.2f} Mpx/s), measured with {how}")
        print(f"  memory model: blocks in flight {formula / 1e9:.2f} GB "
              f"(workers x (chunk + 2 halo)^2 x features x 4 B x {_WORKING_FACTOR}) "
              "+ interpreter, libraries and model")
        verdict = "PASS" if rss < TARGET_GB * 1e9 else "FAIL"
        print(f"  target peak RSS < {TARGET_GB} GB: {verdict}")

        peer_size = min(args.peer_size, args.size)
        peer = [sys.executable, "-c", PEER, str(model_path), str(zarr_path), str(peer_size)]
        prss, pwall, _ = measure(peer, env)
        pmpx = peer_size ** 2 / 1e6
        print(f"peer, in-memory clf.predict of a {peer_size} x {peer_size} crop: peak RSS "
              f"{prss / 1e9:.2f} GB, wall {pwall:.1f} s ({pmpx / pwall:.2f} Mpx/s)")
        print(f"ratios tiled / in-memory: memory per megapixel "
              f"{(rss / mpx) / (prss / pmpx):.3f}, throughput {(mpx / wall) / (pmpx / pwall):.2f}")
        stack = args.size ** 2 * clf.n_features_in_ * 4
        print(f"  (clf.predict also works tile by tile, but it needs the whole "
              f"{args.size} x {args.size} input and output in memory; one feature stack "
              f"of that image would be {stack / 1e9:.1f} GB)")
        if args.kind == "both":
            shutil.rmtree(out, ignore_errors=True)
            instances = run_instances(args, cli, model_path, zarr_path, folder, env, workers)
            verdict = "PASS" if verdict == instances == "PASS" else "FAIL"
        return 0 if verdict == "PASS" else 1
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
