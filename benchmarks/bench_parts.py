"""Where the time of fit and predict goes: the parts timed one by one.

On the 2048 x 2048 mosaic of ``bench_predict.py`` (same image, same
scribbles), prints the best-of-3 time of ``PixelClassifier().fit``,
``predict``, the whole-image feature stack, the compiled forest on its 4.2 M
rows and the forest fit on the labelled rows, plus the size of the trees.
Run it before and after a change to see what the change bought; set
``PIXELFOREST_NUM_THREADS=1`` for one thread::

    PIXELFOREST_DATA_DIR=../shared/data python benchmarks/bench_parts.py
    PIXELFOREST_DATA_DIR=../shared/data PIXELFOREST_NUM_THREADS=1 python benchmarks/bench_parts.py
"""

import argparse

import numpy as np
from _timing import best_time  # benchmarks/ is on sys.path when run as a script
from bench_predict import make_mosaic


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048, help="mosaic side (default 2048)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per timing (best kept)")
    args = parser.parse_args(argv)

    from sklearn.base import clone

    from pixelforest import PixelClassifier
    from pixelforest._shared.threads import resolve_n_threads

    image, _, scribbles, name = make_mosaic(args.size)
    print(f"mosaic {image.shape} of {name}, {np.count_nonzero(scribbles)} scribbled pixels, "
          f"{resolve_n_threads()} thread(s), best of {args.repeats}")
    t, clf = best_time(lambda: PixelClassifier().fit(image, scribbles), args.repeats)
    print(f"fit                        {t:7.3f} s")
    t, _ = best_time(lambda: clf.predict(image), args.repeats)
    print(f"predict                    {t:7.3f} s")
    image_cl = image[..., None]
    pipe = clf.pipeline_
    bounds = pipe.statistics(image_cl)
    t, feats = best_time(lambda: pipe.features_block(image_cl, bounds, n_threads=None),
                         args.repeats)
    print(f"features, whole image      {t:7.3f} s  ({clf.n_features_in_} features)")
    X = feats.reshape(-1, feats.shape[-1])
    t, _ = best_time(lambda: pipe.predict_proba_rows(X, n_threads=None), args.repeats)
    print(f"{f'forest, {X.shape[0]} rows':27}{t:7.3f} s")
    labelled = scribbles > 0
    Xl, yl = feats[labelled], scribbles[labelled]
    forest = clone(clf.estimator_)
    t, _ = best_time(lambda: forest.fit(Xl, yl), args.repeats)
    print(f"{f'forest fit, {Xl.shape[0]} rows':27}{t:7.3f} s  (n_jobs=1)")
    trees = [e.tree_ for e in clf.estimator_.estimators_]
    print(f"trees: {len(trees)}, mean depth {np.mean([t.max_depth for t in trees]):.2f}, "
          f"mean leaves {np.mean([t.n_leaves for t in trees]):.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
