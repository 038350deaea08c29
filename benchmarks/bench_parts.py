"""Where the time of fit and predict goes: the parts timed one by one.

On the 2048 x 2048 mosaic of ``bench_predict.py`` (same image, same
scribbles), prints the best-of-3 time of ``PixelClassifier().fit``,
``predict``, the whole-image feature stack (on the model's feature path and
on the other one: ``precision="fast"`` and ``"exact"``), the compiled forest
on its 4.2 M rows and the forest fit on the labelled rows, plus the size of
the trees.  Each line gives the wall-clock time and, in brackets, the
process's CPU time of that best run: on a machine shared with other work
the wall clock grows with the load, the CPU time much less.
Run it before and after a change to see what the change bought; set
``PIXELFOREST_NUM_THREADS=1`` for one thread::

    PIXELFOREST_DATA_DIR=../shared/data python benchmarks/bench_parts.py
    PIXELFOREST_DATA_DIR=../shared/data PIXELFOREST_NUM_THREADS=1 python benchmarks/bench_parts.py
"""

import argparse
import dataclasses
import os
import time

import numpy as np
from bench_predict import make_mosaic


def best_time(fn, repeats):
    """``(best wall seconds, CPU seconds of that run, last result)`` of ``repeats`` calls."""
    best, cpu, result = float("inf"), float("nan"), None
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = fn()
        wall = time.perf_counter() - start
        if wall < best:
            best, cpu = wall, time.process_time() - start_cpu
    return best, cpu, result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048, help="mosaic side (default 2048)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per timing (best kept)")
    args = parser.parse_args(argv)

    from sklearn.base import clone

    from pixelforest import PixelClassifier
    from pixelforest._shared.threads import resolve_n_threads

    from pixelforest.features.compute import features_of_block

    image, _, scribbles, name = make_mosaic(args.size)
    print(f"mosaic {image.shape} of {name}, {np.count_nonzero(scribbles)} scribbled pixels, "
          f"{resolve_n_threads()} thread(s), best of {args.repeats}, "
          f"load average {os.getloadavg()[0]:.1f}")

    def line(text, t, cpu, extra=""):
        print(f"{text:27}{t:7.3f} s  (cpu {cpu:6.3f} s){extra}")

    t, cpu, clf = best_time(lambda: PixelClassifier().fit(image, scribbles), args.repeats)
    line("fit", t, cpu)
    t, cpu, _ = best_time(lambda: clf.predict(image), args.repeats)
    line("predict", t, cpu)
    image_cl = image[..., None]
    pipe = clf.pipeline_
    bounds = pipe.statistics(image_cl)
    t, cpu, feats = best_time(lambda: pipe.features_block(image_cl, bounds, n_threads=None),
                              args.repeats)
    line(f"features, {pipe.spec.precision}", t, cpu, f"  ({clf.n_features_in_} features, "
         "whole image)")
    other = dataclasses.replace(pipe.spec,
                                precision="exact" if pipe.spec.precision == "fast" else "fast")
    normalized = pipe.normalized(image_cl, bounds)
    features_of_block(normalized[:256, :256], other, n_threads=1)  # compiled / cache loaded
    t, cpu, _ = best_time(lambda: features_of_block(normalized, other, n_threads=None),
                          args.repeats)
    line(f"features, {other.precision}", t, cpu, "  (the other path, for comparison)")
    X = feats.reshape(-1, feats.shape[-1])
    t, cpu, _ = best_time(lambda: pipe.predict_proba_rows(X, n_threads=None), args.repeats)
    line(f"forest, {X.shape[0]} rows", t, cpu)
    from pixelforest.forest.inference import CompiledForest, compile_forest

    if compile_forest(clf.estimator_).voter is not None:
        # the same forest through the leaf-mask kernel's float64 leaf sums
        sums = CompiledForest.from_sklearn(clf.estimator_)
        sums.voter = None
        t, cpu, _ = best_time(lambda: sums.predict_proba(X, n_threads=None), args.repeats)
        line("forest, vote kernel off", t, cpu, "  (float64 leaf sums, for comparison)")
    labelled = scribbles > 0
    Xl, yl = feats[labelled], scribbles[labelled]
    forest = clone(clf.estimator_)
    t, cpu, _ = best_time(lambda: forest.fit(Xl, yl), args.repeats)
    line(f"forest fit, {Xl.shape[0]} rows", t, cpu, "  (n_jobs=1)")
    trees = [e.tree_ for e in clf.estimator_.estimators_]
    print(f"trees: {len(trees)}, mean depth {np.mean([t.max_depth for t in trees]):.2f}, "
          f"mean leaves {np.mean([t.n_leaves for t in trees]):.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
