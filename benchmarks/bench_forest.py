"""Benchmark: compiled forest inference vs scikit-learn's predict_proba.

Features are real: the 24 multiscale features of scikit-image
(``multiscale_basic_features``: intensity, edges, texture at 6 scales) of
the DSB2018 sample images, stacked to ``--rows`` pixels (default 2048 x 2048
= 4.2 M).  Forests are trained on 30 000 of those pixels (nucleus vs
background).  For each forest the script times, in the same run:

* scikit-learn ``predict_proba`` with ``n_jobs=1`` and ``n_jobs=2``;
* :func:`pixelforest.forest.inference.forest_predict_proba` with 1 and 2 threads;

checks that every output equals scikit-learn's (max abs difference, same
argmax) and prints speed ratios, and the peak memory numpy allocates during
one call (tracemalloc; the output array included, the input X excluded).  Other processes may share the cores, so
each timing is the minimum of ``--repeats`` runs.

Run::

    PIXELFOREST_DATA_DIR=../shared/data python benchmarks/bench_forest.py
    PIXELFOREST_DATA_DIR=../shared/data python benchmarks/bench_forest.py --rows 500000 --repeats 2
"""

import argparse

import numpy as np
from _timing import best_time  # benchmarks/ is on sys.path when run as a script


def feature_rows(n_rows):
    """Return (X float32 (n_rows, 24), y int) from the real sample images."""
    from skimage.feature import multiscale_basic_features

    from pixelforest.datasets import list_samples, load_sample
    from pixelforest.preprocess.normalize import normalize_percentile

    blocks, targets, total = [], [], 0
    for name in list_samples():
        image, labels = load_sample(name)
        if image.ndim == 3:  # RGB histology: use its mean intensity
            image = image.mean(axis=-1)
        image = normalize_percentile(image)
        feats = multiscale_basic_features(image).astype(np.float32)
        blocks.append(feats.reshape(-1, feats.shape[-1]))
        targets.append((labels > 0).ravel().astype(np.int64))
        total += blocks[-1].shape[0]
        if total >= n_rows:
            break
    X = np.concatenate(blocks)
    y = np.concatenate(targets)
    reps = -(-n_rows // X.shape[0])
    if reps > 1:
        X, y = np.tile(X, (reps, 1)), np.tile(y, reps)
    return np.ascontiguousarray(X[:n_rows]), y[:n_rows]


def peak_memory(fn):
    """Peak memory (bytes) numpy allocates during one call of ``fn``."""
    import tracemalloc

    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2048 * 2048,
                        help="pixels to predict (default 2048*2048)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timings per measurement; the minimum is reported")
    parser.add_argument("--train", type=int, default=30_000,
                        help="training pixels (default 30000)")
    args = parser.parse_args(argv)

    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier

    from pixelforest.forest.inference import compile_forest, forest_predict_proba

    X, y = feature_rows(args.rows)
    rng = np.random.default_rng(0)
    train = rng.choice(X.shape[0], size=min(args.train, X.shape[0]), replace=False)
    forests = {
        "RandomForest(100), default depth": RandomForestClassifier(
            n_estimators=100, random_state=0, n_jobs=2),
        "RandomForest(32, max_depth=12)": RandomForestClassifier(
            n_estimators=32, max_depth=12, random_state=0, n_jobs=2),
        "ExtraTrees(100), default depth": ExtraTreesClassifier(
            n_estimators=100, random_state=0, n_jobs=2),
    }
    print(f"X: {X.shape[0]} pixels x {X.shape[1]} features (float32), forests "
          f"trained on {train.size} pixels; times are the minimum of "
          f"{args.repeats} runs (the 2 cores are shared with other work)")
    for name, forest in forests.items():
        forest.fit(X[train], y[train])
        compiled = compile_forest(forest)
        forest_predict_proba(forest, X[:1000], n_threads=1)  # compile or load numba cache
        times, outputs = {}, {}
        for jobs in (1, 2):
            forest.set_params(n_jobs=jobs)
            times[f"sklearn n_jobs={jobs}"], outputs[f"sklearn n_jobs={jobs}"] = best_time(
                lambda: forest.predict_proba(X), args.repeats)
        for threads in (1, 2):
            key = f"pixelforest n_threads={threads}"
            times[key], outputs[key] = best_time(
                lambda: forest_predict_proba(forest, X, n_threads=threads), args.repeats)
        memory = {}
        for jobs in (1, 2):
            forest.set_params(n_jobs=jobs)
            memory[f"sklearn n_jobs={jobs}"] = peak_memory(lambda: forest.predict_proba(X))
            memory[f"pixelforest n_threads={jobs}"] = peak_memory(
                lambda: forest_predict_proba(forest, X, n_threads=jobs))
        reference = outputs["sklearn n_jobs=1"]
        print(f"\n{name}: {compiled.n_trees} trees, {compiled.n_nodes} nodes, "
              f"max depth {max(t.tree_.max_depth for t in forest.estimators_)}")
        for key, seconds in times.items():
            diff = float(np.abs(outputs[key] - reference).max())
            same = bool(np.array_equal(outputs[key].argmax(1), reference.argmax(1)))
            assert diff <= 1e-6 and same, f"{key} differs from sklearn: {diff}"
            print(f"  {key:26s} {seconds:8.3f} s   peak memory {memory[key] / 2**20:7.1f} MiB"
                  f"   max|diff| {diff:.1e}  same argmax {same}")
        sk1, sk2 = times["sklearn n_jobs=1"], times["sklearn n_jobs=2"]
        pf1, pf2 = times["pixelforest n_threads=1"], times["pixelforest n_threads=2"]
        print(f"  speed-up, 1 thread  (sklearn / pixelforest): {sk1 / pf1:5.2f}x")
        print(f"  speed-up, 2 threads (sklearn / pixelforest): {sk2 / pf2:5.2f}x")
        print(f"  speed-up, pixelforest 2 threads vs sklearn default (n_jobs=1): "
              f"{sk1 / pf2:5.2f}x")
        print(f"  pixelforest 1 -> 2 threads: {pf1 / pf2:5.2f}x")


if __name__ == "__main__":
    main()
