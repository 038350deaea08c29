"""Benchmark: object classification, clumps of touching nuclei vs single nuclei.

Task: a semantic segmentation merges touching nuclei into one connected
component; a biologist wants those clumps flagged (or split) before
counting.  On the public DSB2018 fluorescence samples
(``pixelforest.datasets``; set ``PIXELFOREST_DATA_DIR=../shared/data``),
the objects are the connected components (4-connected) of each reference
mask's foreground, and an object's true class is ``clump`` when it holds
two or more reference nuclei, else ``single``.

Protocol: ``--per-class`` clumps and as many single nuclei, drawn at random
(seed ``s``) from the objects of one training image (``--train``), are the
annotations; :class:`pixelforest.objects.ObjectClassifier`
(``random_state=s``) learns from them; every object of every other
fluorescence image is held out and predicted.  For each feature set and
seed it prints accuracy, balanced accuracy (the mean of the two classes'
recalls: a rare class counts as much as a common one), and the clumps'
recall and precision, then the mean over seeds.  Baselines measured in the
same run, on the same held-out objects:

* ``all single``: every object is a single nucleus (the majority class);
* ``area > k x median``: a clump is an object larger than ``k`` times the
  median object area of its own image (``--factor``), an unsupervised
  rule that needs no annotation.

Run from the repository root::

    PIXELFOREST_DATA_DIR=../shared/data python benchmarks/object_classes.py
"""

import argparse

import numpy as np

#: Feature sets compared (None: the classifier's defaults).
FEATURE_SETS = {
    "default": None,
    "shape": ["solidity", "eccentricity"],
    "shape+relative": ["area_relative", "solidity", "eccentricity"],
    "shape+size": ["area_physical", "solidity", "eccentricity"],
}


def components(name):
    """Image, connected components of the reference foreground and their true classes."""
    from skimage.measure import label as connected

    from pixelforest import datasets

    image, reference = datasets.load_sample(name)
    comp = connected(reference > 0, connectivity=1)
    inside = reference > 0
    pairs = np.unique(np.stack([comp[inside], reference[inside]]), axis=1)
    nuclei = np.bincount(pairs[0], minlength=comp.max() + 1)
    truth = np.array(["clump" if nuclei[k] >= 2 else "single"
                      for k in range(1, comp.max() + 1)])
    return image, comp, truth


def scores(y_true, y_pred):
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    clump, single = y_true == "clump", y_true == "single"
    recall = (y_pred[clump] == "clump").mean()
    specificity = (y_pred[single] == "single").mean()
    called = y_pred == "clump"
    precision = (y_true[called] == "clump").mean() if called.any() else float("nan")
    return {"accuracy": (y_true == y_pred).mean(), "balanced": (recall + specificity) / 2,
            "recall": recall, "precision": precision}


def main(argv=None):
    from pixelforest import datasets
    from pixelforest.objects import ObjectClassifier, measure

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", default="e23e11414ee6",
                        help="training image (default: e23e11414ee6, 26 clumps of 167)")
    parser.add_argument("--per-class", type=int, default=8,
                        help="labelled objects per class (default: 8)")
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default: 5)")
    parser.add_argument("--factor", type=float, default=1.5,
                        help="k of the 'area > k x median' baseline (default: 1.5)")
    args = parser.parse_args(argv)

    train_image, train_comp, train_truth = components(args.train)
    train_table = measure(train_comp, train_image)
    held = [components(n) for n in datasets.list_samples("fluorescence") if n != args.train]
    held_tables = [measure(c, im) for im, c, _ in held]
    y_true = np.concatenate([t for _, _, t in held])
    print(f"train {args.train}: {len(train_truth)} objects, "
          f"{(train_truth == 'clump').sum()} clumps; {args.per_class} labelled per class")
    print(f"held out: {len(held)} images, {len(y_true)} objects, "
          f"{(y_true == 'clump').sum()} clumps\n")
    header = f"{'method':<22}{'seed':>5}{'acc':>8}{'bal.acc':>9}{'recall':>8}{'prec.':>8}"
    print(header)
    print("-" * len(header))

    def show(method, seed, s):
        print(f"{method:<22}{seed:>5}{s['accuracy']:>8.3f}{s['balanced']:>9.3f}"
              f"{s['recall']:>8.3f}{s['precision']:>8.3f}")

    show("all single", "-", scores(y_true, np.full(len(y_true), "single")))
    rule = np.concatenate([np.where(t["area"] > args.factor * t["area"].median(), "clump",
                                    "single") for t in held_tables])
    show(f"area > {args.factor:g} x median", "-", scores(y_true, rule))
    clumps = np.flatnonzero(train_truth == "clump")
    singles = np.flatnonzero(train_truth == "single")
    for name, features in FEATURE_SETS.items():
        rows = []
        for seed in range(args.seeds):
            rng = np.random.default_rng(seed)
            picked = np.r_[rng.choice(clumps, min(args.per_class, len(clumps)), replace=False),
                           rng.choice(singles, args.per_class, replace=False)]
            classes = np.full(len(train_table), None, dtype=object)
            classes[picked] = train_truth[picked]
            clf = ObjectClassifier(features=features, random_state=seed)
            clf.fit_table(train_table, classes)
            y_pred = np.concatenate([clf.predict_table(t).to_numpy() for t in held_tables])
            rows.append(scores(y_true, y_pred))
            show(f"forest {name}", seed, rows[-1])
        mean = {k: float(np.nanmean([r[k] for r in rows])) for k in rows[0]}
        show(f"forest {name}", "mean", mean)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
