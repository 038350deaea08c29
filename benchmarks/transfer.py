"""Benchmark: train on the scribbles of two images, predict the rest of the experiment.

``quality.py`` trains and predicts on the same image.  Users scribble on two
or three images of an experiment and apply the model to the others; this
measures that, on the public DSB2018 sample images (``pixelforest.datasets``;
set ``PIXELFOREST_DATA_DIR=../shared/data``), in one run.

**Experiments.** An experiment is stood in for by a *group*: the images of
one kind (fluorescence, bright-field, histology) and one image size; groups
of at least 4 images are used (fluorescence 256 x 256, 360 x 360 and
520 x 696, bright-field 1024 x 1024, histology 256 x 320).

**Protocol "pairs".** In each group, 3 training pairs (distinct, drawn with
a fixed seed from all the pairs of the group's images): train on the two
images' simulated scribbles
(:func:`pixelforest.classify.scribbles.simulate_scribbles`,
``random_state=0`` unless ``--seed`` says otherwise), predict every other
image of the group and score the IoU of the predicted foreground (class 2)
against ``labels > 0``.  A group's score is the mean over its 3 x (n - 2)
predictions; *pooled* is the mean over every prediction of every group.

**Protocol "fluorescence-3".** Train on 3 fluorescence images (the first
three of ``list_samples("fluorescence")``, then the next three, then the
next: 3 rotations) and predict all 20 fluorescence images.

**Methods**, in the same run:

* ``otsu``: :func:`pixelforest.segment.unsupervised.otsu_segment` on every
  predicted image, no training; the polarity is given per kind (nuclei are
  the brighter class in fluorescence, the darker one in bright-field and
  histology), which is knowledge the learning methods must find for
  themselves;
* ``skimage``: scikit-image's trainable segmentation recipe of
  ``quality.py`` (``multiscale_basic_features`` sigma 1-16 +
  ``RandomForestClassifier(50, max_depth=10, random_state=0)``), fitted on
  the labelled pixels of the training images together, as
  ``skimage.future.fit_segmenter`` fits one;
* ``pixelforest``: ``PixelClassifier(**params)`` with its defaults unless
  ``--param name=value`` says otherwise.

Targets (issue 13), printed as PASS/FAIL lines: pooled pixelforest >=
otsu + 0.05 and >= skimage + 0.10; no fluorescence group below otsu.

Run::

    PIXELFOREST_DATA_DIR=../shared/data python benchmarks/transfer.py
    PIXELFOREST_DATA_DIR=../shared/data python benchmarks/transfer.py \\
        --param normalize=percentile --no-skimage --groups fluorescence
"""

import argparse
import ast
import collections
import itertools
import time

import numpy as np

#: Kinds whose nuclei are darker than the background (Otsu's polarity).
DARK_KINDS = ("brightfield", "histology")

#: Training pairs per group.
N_PAIRS = 3


def groups(min_size=4):
    """``{(kind, shape): [names]}`` of the sample images, groups of at least ``min_size``."""
    from pixelforest.datasets import list_samples, load_sample, sample_info

    out = collections.defaultdict(list)
    for name in list_samples():
        image, _ = load_sample(name)
        out[(sample_info(name)["kind"], image.shape[:2])].append(name)
    return {k: v for k, v in out.items() if len(v) >= min_size}


def training_pairs(n, n_pairs=N_PAIRS, seed=0):
    """``n_pairs`` distinct pairs of ``range(n)``, drawn with a fixed seed."""
    pairs = list(itertools.combinations(range(n), 2))
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(pairs), size=min(n_pairs, len(pairs)), replace=False)
    return [pairs[i] for i in sorted(pick)]


class Data:
    """The images, references, scribbles and scikit-image features, loaded once."""

    def __init__(self, seed):
        self.seed = seed
        self._cache = {}
        self._features = {}

    def get(self, name):
        from pixelforest.classify.scribbles import simulate_scribbles
        from pixelforest.datasets import load_sample, sample_info

        if name not in self._cache:
            image, labels = load_sample(name)
            self._cache[name] = (image, labels > 0,
                                 simulate_scribbles(labels, random_state=self.seed),
                                 sample_info(name)["kind"])
        return self._cache[name]

    def skimage_features(self, name):
        # float32: scikit-learn's forests cast their input to float32 anyway
        from skimage.feature import multiscale_basic_features

        if name not in self._features:
            image = self.get(name)[0]
            feats = multiscale_basic_features(
                image, intensity=True, edges=True, texture=True, sigma_min=1,
                sigma_max=16, channel_axis=-1 if image.ndim == 3 else None)
            self._features[name] = feats.astype(np.float32)
        return self._features[name]

    def forget_features(self):
        self._features.clear()


def otsu_iou(data, name):
    from pixelforest.evaluate.metrics import iou
    from pixelforest.segment.unsupervised import otsu_segment

    image, ref, _, kind = data.get(name)
    mask = otsu_segment(image, channel_axis=-1 if image.ndim == 3 else None) == 1
    if kind in DARK_KINDS:
        mask = ~mask
    return float(iou(mask, ref))


def train_skimage(data, names):
    from sklearn.ensemble import RandomForestClassifier

    X, y = [], []
    for name in names:
        scribbles = data.get(name)[2]
        feats = data.skimage_features(name)
        X.append(feats[scribbles > 0])
        y.append(scribbles[scribbles > 0])
    forest = RandomForestClassifier(n_estimators=50, max_depth=10, n_jobs=1, random_state=0)
    return forest.fit(np.concatenate(X), np.concatenate(y))


def skimage_iou(data, forest, name):
    from pixelforest.evaluate.metrics import iou

    feats = data.skimage_features(name)
    pred = forest.predict(feats.reshape(-1, feats.shape[-1])).reshape(feats.shape[:-1])
    return float(iou(pred == 2, data.get(name)[1]))


def train_pixelforest(data, names, params):
    from pixelforest.classify.classifier import PixelClassifier

    image = data.get(names[0])[0]
    clf = PixelClassifier(channel_axis=-1 if image.ndim == 3 else None, **params)
    return clf.fit([data.get(n)[0] for n in names], [data.get(n)[2] for n in names])


def pixelforest_iou(data, clf, name):
    from pixelforest.evaluate.metrics import iou

    image, ref, _, _ = data.get(name)
    return float(iou(clf.predict(image) == 2, ref))


def run_protocol(data, train_sets, test_sets, methods, params, times):
    """Scores ``{method: [iou, ...]}`` of training on each set, predicting its test set."""
    scores = collections.defaultdict(list)
    for train, test in zip(train_sets, test_sets):
        if "skimage" in methods:
            t = time.perf_counter()
            forest = train_skimage(data, train)
            scores["skimage"] += [skimage_iou(data, forest, n) for n in test]
            times["skimage"] += time.perf_counter() - t
        if "pixelforest" in methods:
            t = time.perf_counter()
            clf = train_pixelforest(data, train, params)
            scores["pixelforest"] += [pixelforest_iou(data, clf, n) for n in test]
            times["pixelforest"] += time.perf_counter() - t
        if "otsu" in methods:
            t = time.perf_counter()
            scores["otsu"] += [otsu_iou(data, n) for n in test]
            times["otsu"] += time.perf_counter() - t
    return scores


def parse_params(items):
    params = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            params[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[key] = value
    return params


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0, help="scribble seed (default: 0)")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="a PixelClassifier parameter (repeatable), e.g. normalize='robust'")
    parser.add_argument("--trees", type=int, default=None,
                        help="trees of the default forest (default: its default)")
    parser.add_argument("--class-weight", default=None, choices=("balanced", "none"),
                        help="class weighting of the default forest (default: balanced)")
    parser.add_argument("--no-skimage", action="store_true",
                        help="skip scikit-image's recipe (faster; no skimage target line)")
    parser.add_argument("--groups", nargs="+", default=None, metavar="KIND",
                        help="only the groups of these kinds (default: all)")
    parser.add_argument("--no-fluo3", action="store_true",
                        help="skip the fluorescence-3 protocol")
    parser.add_argument("--per-image", action="store_true", help="print every prediction's IoU")
    args = parser.parse_args(argv)
    params = parse_params(args.param)
    if args.trees is not None or args.class_weight is not None:
        from pixelforest.forest.defaults import default_estimator

        est = default_estimator(**({} if args.trees is None else {"n_estimators": args.trees}))
        if args.class_weight is not None:
            est.set_params(class_weight=None if args.class_weight == "none"
                           else args.class_weight)
        params["estimator"] = est
    methods = ("otsu", "pixelforest") if args.no_skimage else ("otsu", "skimage", "pixelforest")

    from pixelforest.datasets import list_samples

    start = time.perf_counter()
    data = Data(args.seed)
    times = collections.Counter()
    table = {}
    pooled = collections.defaultdict(list)
    for (kind, shape), names in sorted(groups().items()):
        if args.groups and kind not in args.groups:
            continue
        pairs = training_pairs(len(names))
        train_sets = [[names[i], names[j]] for i, j in pairs]
        test_sets = [[n for n in names if n not in t] for t in train_sets]
        scores = run_protocol(data, train_sets, test_sets, methods, params, times)
        data.forget_features()
        label = f"{kind} {shape[0]}x{shape[1]} ({len(names)})"
        table[label] = {m: float(np.mean(scores[m])) for m in methods}
        table[label]["kind"] = kind
        for m in methods:
            pooled[m] += scores[m]
        if args.per_image:
            for r, (train, test) in enumerate(zip(train_sets, test_sets)):
                for k, n in enumerate(test):
                    i = r * len(test) + k
                    print(f"{label:<26} train {'+'.join(train)} -> {n}" + "".join(
                        f" {m} {scores[m][i]:.3f}" for m in methods), flush=True)
    if pooled:
        table[f"pooled ({len(pooled['otsu'])} predictions)"] = {
            m: float(np.mean(pooled[m])) for m in methods}

    fluo3 = None
    if not args.no_fluo3 and (not args.groups or "fluorescence" in args.groups):
        fl = list_samples("fluorescence")
        train_sets = [fl[3 * r:3 * r + 3] for r in range(3)]
        fluo3 = run_protocol(data, train_sets, [fl] * 3, methods, params, times)
        data.forget_features()
        fluo3 = {m: float(np.mean(fluo3[m])) for m in methods}

    print(f"\nmean foreground IoU, trained on the scribbles of 2 images of a group "
          f"(3 pairs), predicting the group's other images; scribble seed {args.seed}")
    if params:
        print(f"pixelforest parameters: {params}")
    print(f"{'group':<30}" + "".join(f"{m:>13}" for m in methods)
          + f"{'pf - otsu':>11}")
    for label, row in table.items():
        print(f"{label:<30}" + "".join(f"{row[m]:>13.3f}" for m in methods)
              + f"{row['pixelforest'] - row['otsu']:>+11.3f}")
    if fluo3:
        print(f"{'fluorescence-3 (train 3, all 20)':<30}"
              + "".join(f"{fluo3[m]:>13.3f}" for m in methods)
              + f"{fluo3['pixelforest'] - fluo3['otsu']:>+11.3f}")
    print("time (s): " + ", ".join(f"{m} {times[m]:.1f}" for m in methods)
          + f"; total {time.perf_counter() - start:.0f}")

    if not pooled:
        return
    pool = {m: float(np.mean(pooled[m])) for m in methods}
    lines = [("pooled: pixelforest >= otsu + 0.05", pool["pixelforest"] - pool["otsu"] - 0.05)]
    if "skimage" in methods:
        lines.append(("pooled: pixelforest >= skimage + 0.10",
                      pool["pixelforest"] - pool["skimage"] - 0.10))
    fl_rows = {k: r for k, r in table.items() if r.get("kind") == "fluorescence"}
    if fl_rows:
        worst = min(fl_rows, key=lambda k: fl_rows[k]["pixelforest"] - fl_rows[k]["otsu"])
        lines.append((f"every fluorescence group: pixelforest >= otsu (worst: {worst})",
                      fl_rows[worst]["pixelforest"] - fl_rows[worst]["otsu"]))
    for text, margin in lines:
        print(f"{'PASS' if margin >= 0 else 'FAIL'} {text}: margin {margin:+.3f}")


if __name__ == "__main__":
    main()
