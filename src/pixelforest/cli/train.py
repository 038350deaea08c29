"""``pixelforest train``: train a pixel classifier from label images (scribbles)."""

from pixelforest.cli._common import add_channel_axis, add_command


def add_parser(subparsers):
    parser = add_command(
        subparsers, "train",
        help="train a random-forest pixel classifier from scribbles",
        description="Train a PixelClassifier on one or more images and their label "
                    "images (0 = unlabelled, 1, 2, ... = classes; by convention 1 = "
                    "background, 2 = nuclei) and save it as one safe .skops model file. "
                    "Prints the forest's out-of-bag score (accuracy on labelled pixels "
                    "each tree did not see; optimistic, as neighbouring pixels look "
                    "alike) and, with --reference, the IoU of the predicted foreground "
                    "(the largest class value) against each reference mask.",
        example="pixelforest train nuclei.tif --labels nuclei-scribbles.tif "
                "-o nuclei.skops --reference nuclei-labels.tif",
    )
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="training image(s)")
    parser.add_argument("--labels", nargs="+", required=True, metavar="LABELS",
                        help="one label image per IMAGE, same shape (0 = unlabelled)")
    parser.add_argument("-o", "--output", required=True, metavar="MODEL",
                        help="model file to write (.skops)")
    parser.add_argument("--overwrite", action="store_true", help="replace MODEL if it exists")
    parser.add_argument("--features", default="default", metavar="PRESET",
                        help="feature preset (see 'pixelforest features'; default: default)")
    parser.add_argument("--precision", choices=("fast", "exact"), default=None,
                        help="how the filters are computed: 'fast' (float32, within 1e-3 of "
                             "the image's range of float64 scipy, 1e-6 in practice) or "
                             "'exact' (scipy.ndimage's bits); the model file records it and "
                             "predict follows it (default: fast)")
    add_channel_axis(parser)
    parser.add_argument("--trees", type=int, default=50, metavar="N",
                        help="number of trees of the random forest (default: 50)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--labels-are-mask", action="store_true",
                        help="the label images are full masks (0 = background, 1 or 255 = "
                             "foreground), used as 1 = background, 2 = foreground")
    parser.add_argument("--reference", nargs="+", default=None, metavar="REF",
                        help="reference mask or instance labels per IMAGE (nonzero = "
                             "foreground) to report the IoU of the trained model")
    return parser


_FLAT_FORMATS = (".png", ".jpg", ".jpeg")  # 2-D only: a third axis is colour


def _spatial_shape(image, channel_axis):
    if channel_axis is None or not -image.ndim <= channel_axis < image.ndim:
        return image.shape
    return tuple(n for i, n in enumerate(image.shape) if i != channel_axis % image.ndim)


def _check_pair(image, labels, image_path, label_path, channel_axis):
    """Catch an RGB image without --channel-axis and an RGB label image, with the fix."""
    from pathlib import Path

    from pixelforest.errors import InvalidImageError, InvalidLabelsError

    rgb_like = image.ndim == 3 and image.shape[-1] in (3, 4)
    flat = Path(image_path).suffix.lower() in _FLAT_FORMATS
    if channel_axis is None and rgb_like and (flat or labels.shape == image.shape[:-1]):
        raise InvalidImageError(
            f"{image_path} of shape {image.shape} looks like an RGB image, but without "
            "--channel-axis it would be taken as a 3-D stack; pass --channel-axis -1."
        )
    spatial = _spatial_shape(image, channel_axis)
    flat_labels = Path(label_path).suffix.lower() in _FLAT_FORMATS
    if labels.ndim == len(spatial) + 1 and labels.shape[-1] in (3, 4) and (
            flat_labels or labels.shape[:-1] == spatial):
        raise InvalidLabelsError(
            f"{label_path} is a colour (RGB) image of shape {labels.shape}, but labels need "
            "one value per pixel (0 = unlabelled, 1, 2, ... = classes); save the labels as "
            "a single-channel image (e.g. napari's Labels layer, File > Save Selected "
            "Layer(s) as .tif), or convert it to one channel of class values."
        )


def _mask_to_labels(mask, path):
    """A full 0/1 (or 0/255) mask as labels 1 = background, 2 = foreground."""
    import numpy as np

    from pixelforest.errors import InvalidLabelsError

    values = set(np.unique(mask).tolist())
    if not (values <= {0, 1} or values <= {0, 255}):
        shown = ", ".join(str(v) for v in sorted(values)[:6])
        raise InvalidLabelsError(
            f"--labels-are-mask needs masks of 0 and 1 (or 0 and 255), but {path} holds "
            f"{shown}{', ...' if len(values) > 6 else ''}; drop --labels-are-mask for "
            "scribbles (0 = unlabelled, 1 = background, 2 = nuclei, ...)."
        )
    return np.where(mask > 0, 2, 1).astype(np.uint8)


def _check_classes(labels, paths):
    """A 0/1 mask given as labels holds one class: say what 0 means and how to fix it."""
    import numpy as np

    from pixelforest.errors import InvalidLabelsError

    if not all(np.issubdtype(lab.dtype, np.integer) or lab.dtype == bool for lab in labels):
        return  # the classifier says how to convert float labels
    values = set()
    for lab in labels:
        values |= set(np.unique(lab).tolist())
    classes = values - {0}
    if len(classes) == 1 and classes <= {1, 255}:
        (value,) = classes
        names = ", ".join(str(p) for p in paths[:3]) + (", ..." if len(paths) > 3 else "")
        raise InvalidLabelsError(
            f"{names}: the labels hold only the values 0 and {value}, so one class (it "
            "looks like a mask): 0 = unlabelled; paint background as 1 and nuclei as 2, "
            "or pass --labels-are-mask."
        )


def run(args):
    import dataclasses
    import warnings
    from pathlib import Path

    from pixelforest._shared.atomic import check_not_input
    from pixelforest.classify.classifier import PixelClassifier, default_estimator
    from pixelforest.errors import InvalidParameterError, OutputExistsError
    from pixelforest.features import FeatureSpec
    from pixelforest.io.images import imread
    from pixelforest.evaluate.metrics import iou
    from pixelforest.io.model_file import save_model

    if len(args.labels) != len(args.images):
        raise InvalidParameterError(
            f"got {len(args.images)} images but {len(args.labels)} label files; give one "
            "--labels file per image, in the same order."
        )
    if args.reference is not None and len(args.reference) != len(args.images):
        raise InvalidParameterError(
            f"got {len(args.images)} images but {len(args.reference)} references; give one "
            "--reference per image, in the same order."
        )
    if args.trees < 1:
        raise InvalidParameterError(f"--trees must be at least 1, got {args.trees}.")
    check_not_input(args.output, [*args.images, *args.labels, *(args.reference or [])])
    if Path(args.output).exists() and not args.overwrite:
        raise OutputExistsError(
            f"{args.output} already exists; pass --overwrite to replace it or choose "
            "another -o."
        )
    spec = FeatureSpec.preset(args.features)
    if args.precision is not None:
        spec = dataclasses.replace(spec, precision=args.precision)
    images = [imread(p) for p in args.images]
    labels = [imread(p) for p in args.labels]
    for image, lab, image_path, label_path in zip(images, labels, args.images, args.labels):
        _check_pair(image, lab, image_path, label_path, args.channel_axis)
    if args.labels_are_mask:
        labels = [_mask_to_labels(lab, p) for lab, p in zip(labels, args.labels)]
    else:
        _check_classes(labels, args.labels)
    estimator = default_estimator(n_estimators=args.trees).set_params(oob_score=True)
    clf = PixelClassifier(spec, estimator, channel_axis=args.channel_axis,
                          random_state=args.seed)
    print(f"training on {len(images)} image(s), "
          f"{sum(int((lab > 0).sum()) for lab in labels)} labelled pixels, "
          f"{args.trees} trees, features '{args.features}' ({spec.precision} filters)")
    with warnings.catch_warnings():
        # few trees: some pixels are in every bootstrap sample; the score
        # then ignores them, which is what we report anyway
        warnings.filterwarnings("ignore", message="Some inputs do not have OOB scores")
        clf.fit(images, labels)
    print(f"classes: {clf.classes_.tolist()}, {clf.n_features_in_} features, "
          f"{clf.n_channels_} channel(s)")
    oob = getattr(clf.estimator_, "oob_score_", None)
    if oob is not None:
        print(f"out-of-bag score: {oob:.4f}")
    if args.reference is not None:
        foreground = clf.classes_[-1]
        for path, image, ref_path in zip(args.images, images, args.reference):
            pred = clf.predict(image) == foreground
            print(f"IoU {iou(pred, imread(ref_path) > 0):.4f}  {path} "
                  f"(class {foreground} vs {ref_path})")
    save_model(clf, args.output)
    print(f"wrote {args.output}")
    top = list(clf.feature_importances_by_name().items())[:5]
    print("top features: " + ", ".join(f"{name} {value:.3f}" for name, value in top))
    return 0
