"""Benchmark: instance segmentation (touching nuclei split) from simulated scribbles.

Scores, on the public DSB2018 sample images (``pixelforest.datasets``; set
``PIXELFOREST_DATA_DIR=../shared/data``), with the 2018 Data Science Bowl's
object metric (:mod:`pixelforest.evaluate.metrics`), in one run:

* ``otsu+cc``: Otsu's threshold (brighter class,
  :func:`pixelforest.segment.unsupervised.otsu_segment`) and connected
  components (8-connected);
* ``otsu+dtws``: Otsu's threshold and the classic distance-transform
  watershed (scikit-image's recipe: ``peak_local_max`` of the distance with
  ``min_distance=--min-distance`` px within each component, ``watershed``
  of the negated distance);
* ``forest+cc``: ``PixelClassifier(random_state=0)`` (all defaults)
  trained on the scribbles, connected components of its foreground;
* ``pixelforest``: the same classifier's ``predict_instances`` with all its
  defaults.

With ``--alternatives`` it also measures the variants the defaults were
chosen from (same forest, same scribbles):

* ``forest+dtws``: the forest's foreground with the classic distance
  watershed of ``otsu+dtws``;
* ``distance-only``: ``instances_from_probability`` of the binary
  foreground (the landscape is the capped distance alone);
* ``probability-ws``: a watershed of the smoothed probability alone (seeds:
  its h-maxima, same radius-scaled smoothing and depth as the default);
* ``prob-guide``: ``predict_instances(guide="probability")``;
* ``no-outline``: ``predict_instances(outline=None)`` (image-guided split,
  outline of the thresholded probability);
* ``3class``: a forest with a third, boundary class painted on the rims of
  the scribbled nuclei (a one-pixel inner outline: more painting than the
  other methods get); objects are split on the nuclei-class probability,
  then grown back by one pixel into nuclei-or-boundary pixels.

Protocol, for each image: scribbles simulated from its reference instance
labels as in ``benchmarks/quality.py``
(:func:`pixelforest.classify.scribbles.simulate_scribbles`,
``random_state=0`` unless ``--seeds`` says otherwise); supervised methods
train on the scribbles alone; every method labels the whole image; scores
against the reference instances: AP@0.5 = TP / (TP + FP + FN) at IoU 0.5,
F1@0.5, and mAP = the mean of TP / (TP + FP + FN) over IoU 0.5, 0.55, ...,
0.95 (the DSB score).  Means per image kind.

Targets (issue 12), fluorescence images: pixelforest AP@0.5 >= 0.78,
mAP >= 0.55, and both above every baseline's.

Run::

    PIXELFOREST_DATA_DIR=../shared/data python benchmarks/objects.py
    PIXELFOREST_DATA_DIR=../shared/data python benchmarks/objects.py --alternatives
    PIXELFOREST_DATA_DIR=../shared/data python benchmarks/objects.py --quick --per-image
"""

import argparse
import collections
import time

import numpy as np

BASELINES = ("otsu+cc", "otsu+dtws", "forest+cc")
DEFAULT = "pixelforest"
ALTERNATIVES = ("forest+dtws", "distance-only", "probability-ws", "prob-guide",
                "no-outline", "3class")
TARGETS = {"ap50": 0.78, "map": 0.55}


def connected_components(mask):
    from scipy import ndimage as ndi

    return ndi.label(mask, structure=np.ones((3,) * mask.ndim))[0]


def distance_watershed(mask, min_distance):
    """scikit-image's distance-transform watershed recipe."""
    from scipy import ndimage as ndi
    from skimage.feature import peak_local_max
    from skimage.segmentation import watershed

    distance = ndi.distance_transform_edt(mask)
    coords = peak_local_max(distance, min_distance=min_distance,
                            labels=connected_components(mask), exclude_border=False)
    markers = np.zeros(mask.shape, np.int32)
    markers[tuple(coords.T)] = np.arange(1, len(coords) + 1)
    return watershed(-distance, markers, mask=mask)


def probability_watershed(prob, threshold=0.5, smoothing=0.25, depth=0.05):
    """A watershed of the smoothed probability alone (no distance)."""
    from scipy import ndimage as ndi
    from skimage.morphology import h_maxima
    from skimage.segmentation import watershed

    from pixelforest.segment.instances import estimate_object_radius

    mask = prob > threshold
    if not mask.any():
        return np.zeros(prob.shape, np.int32)
    radius = estimate_object_radius(mask)
    surface = ndi.gaussian_filter(prob.astype(np.float32), smoothing * radius, mode="nearest")
    markers = connected_components(h_maxima(surface, depth).astype(bool) & mask)
    return watershed(-surface, markers, mask=mask)


def rim_scribbles(scribbles, labels):
    """Add class 3 on the one-pixel inner rim of every nucleus that holds a stroke."""
    from skimage.segmentation import find_boundaries

    stroked = np.unique(labels[scribbles == 2])
    stroked = stroked[stroked > 0]
    rims = find_boundaries(labels, mode="inner") & np.isin(labels, stroked)
    out = scribbles.copy()
    out[rims] = 3
    return out


def score(pred, ref):
    from pixelforest.evaluate.metrics import average_precision, match_objects

    m = match_objects(pred, ref, threshold=0.5)
    return {"ap50": m.accuracy, "f1": m.f1, "map": average_precision(pred, ref)}


def score_image(name, seed, *, alternatives, min_distance):
    """Scores ``{method: {"ap50", "f1", "map"}}`` and times of one image."""
    from skimage.segmentation import expand_labels

    from pixelforest.classify.classifier import PixelClassifier
    from pixelforest.classify.scribbles import simulate_scribbles
    from pixelforest.datasets import load_sample
    from pixelforest.segment.instances import instances_from_probability
    from pixelforest.segment.unsupervised import otsu_segment

    image, ref = load_sample(name)
    channel_axis = -1 if image.ndim == 3 else None
    scribbles = simulate_scribbles(ref, random_state=seed)
    results, times = {}, collections.Counter()

    def timed(method, fn):
        t = time.perf_counter()
        pred = fn()
        times[method] += time.perf_counter() - t
        results[method] = score(pred, ref)

    t = time.perf_counter()
    otsu = otsu_segment(image, channel_axis=channel_axis) == 1
    t_otsu = time.perf_counter() - t
    timed("otsu+cc", lambda: connected_components(otsu))
    timed("otsu+dtws", lambda: distance_watershed(otsu, min_distance))
    times["otsu+cc"] += t_otsu
    times["otsu+dtws"] += t_otsu

    t = time.perf_counter()
    clf = PixelClassifier(channel_axis=channel_axis, random_state=0).fit(image, scribbles)
    prob = clf.predict_proba(image)[..., -1]
    t_forest = time.perf_counter() - t
    fg = prob > 0.5  # the class predict() gives with two classes
    timed("forest+cc", lambda: connected_components(fg))
    timed(DEFAULT, lambda: clf.predict_instances(image))
    for m in ("forest+cc", DEFAULT):
        times[m] += t_forest
    if alternatives:
        timed("forest+dtws", lambda: distance_watershed(fg, min_distance))
        timed("distance-only", lambda: instances_from_probability(fg.astype(np.float32)))
        timed("probability-ws", lambda: probability_watershed(prob))
        timed("prob-guide", lambda: clf.predict_instances(image, guide="probability"))
        timed("no-outline", lambda: clf.predict_instances(image, outline=None))

        def three_class():
            try:
                clf3 = PixelClassifier(channel_axis=channel_axis, random_state=0).fit(
                    image, rim_scribbles(scribbles, ref))
            except ValueError as exc:  # a failed fit scores as an empty prediction
                print(f"3class: fit failed on {name}: {exc}", flush=True)
                return np.zeros(ref.shape, np.int32)
            proba = clf3.predict_proba(image)
            nuclei = instances_from_probability(proba[..., 1], image=image,
                                                channel_axis=channel_axis)
            grown = expand_labels(nuclei, 1)
            return np.where(proba[..., 1:].sum(axis=-1) > 0.5, grown, nuclei)

        timed("3class", three_class)
        for m in ALTERNATIVES[:-1]:  # all but 3class use the same forest
            times[m] += t_forest
    return results, times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="a subset: 6 fluorescence, 1 bright-field, 2 histology images")
    parser.add_argument("--kind", choices=("fluorescence", "brightfield", "histology"),
                        help="only the images of one kind")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0],
                        help="scribble seeds; scores are averaged over them (default: 0)")
    parser.add_argument("--alternatives", action="store_true",
                        help="also measure the variants the defaults were chosen from")
    parser.add_argument("--min-distance", type=int, default=10,
                        help="min_distance (px) of the classic distance watershed "
                             "(default 10, the best of 5, 7, 10, 15 for otsu+dtws "
                             "on the fluorescence images)")
    parser.add_argument("--per-image", action="store_true", help="print every image's scores")
    args = parser.parse_args(argv)

    from pixelforest.datasets import list_samples, sample_info

    names = list_samples(args.kind)
    if args.quick:
        names = (list_samples("fluorescence")[:6] + list_samples("brightfield")[:1]
                 + list_samples("histology")[:2])
    methods = BASELINES + (DEFAULT,) + (ALTERNATIVES if args.alternatives else ())
    by_kind = collections.defaultdict(lambda: collections.defaultdict(list))
    total_time = collections.Counter()
    start = time.perf_counter()
    for name in names:
        kind = sample_info(name)["kind"]
        per_seed = collections.defaultdict(list)
        for seed in args.seeds:
            results, times = score_image(name, seed, alternatives=args.alternatives,
                                         min_distance=args.min_distance)
            for m in methods:
                per_seed[m].append(results[m])
            total_time.update(times)
        for m in methods:
            mean = {k: float(np.mean([r[k] for r in per_seed[m]])) for k in ("ap50", "f1", "map")}
            by_kind[kind][m].append(mean)
            by_kind["all"][m].append(mean)
        if args.per_image:
            r = {m: by_kind[kind][m][-1] for m in methods}
            print(f"{name} {kind:<13}" + "".join(
                f" {m} {r[m]['ap50']:.3f}/{r[m]['map']:.3f}" for m in methods), flush=True)

    kinds = [k for k in ("fluorescence", "brightfield", "histology") if k in by_kind] + ["all"]
    means = {k: {m: {s: float(np.mean([r[s] for r in by_kind[k][m]]))
                     for s in ("ap50", "f1", "map")} for m in methods} for k in kinds}
    print(f"\ninstance segmentation, {len(names)} images, scribble seeds {args.seeds}; "
          "each cell: AP@0.5 / F1@0.5 / mAP(0.5:0.95)")
    width = 22
    print(f"{'method':<16}" + "".join(
        f"{k + f' ({len(by_kind[k][methods[0]])})':>{width}}" for k in kinds) + f"{'time (s)':>10}")
    for m in methods:
        print(f"{m:<16}" + "".join(
            f"{means[k][m]['ap50']:.3f} / {means[k][m]['f1']:.3f} / {means[k][m]['map']:.3f}"
            .rjust(width) for k in kinds) + f"{total_time[m]:>10.1f}")
    print("(times include the forest's fit and prediction where a method uses it)")

    if "fluorescence" in by_kind:
        fl = means["fluorescence"]
        pf = fl[DEFAULT]
        print("\ntargets, fluorescence images:")
        for key, label in (("ap50", "AP@0.5"), ("map", "mAP")):
            ok = pf[key] >= TARGETS[key]
            print(f"{'PASS' if ok else 'FAIL'}  pixelforest {label} {pf[key]:.3f} >= "
                  f"{TARGETS[key]:.2f} ({pf[key] - TARGETS[key]:+.3f})")
        for key, label in (("ap50", "AP@0.5"), ("map", "mAP")):
            best = max(BASELINES, key=lambda m: fl[m][key])
            ok = pf[key] > fl[best][key]
            print(f"{'PASS' if ok else 'FAIL'}  pixelforest {label} {pf[key]:.3f} > best "
                  f"baseline {best} {fl[best][key]:.3f} ({pf[key] - fl[best][key]:+.3f})")
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
