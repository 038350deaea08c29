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
    add_channel_axis(parser)
    parser.add_argument("--trees", type=int, default=50, metavar="N",
                        help="number of trees of the random forest (default: 50)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--reference", nargs="+", default=None, metavar="REF",
                        help="reference mask or instance labels per IMAGE (nonzero = "
                             "foreground) to report the IoU of the trained model")
    return parser


def run(args):
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
    images = [imread(p) for p in args.images]
    labels = [imread(p) for p in args.labels]
    estimator = default_estimator(n_estimators=args.trees).set_params(oob_score=True)
    clf = PixelClassifier(spec, estimator, channel_axis=args.channel_axis,
                          random_state=args.seed)
    print(f"training on {len(images)} image(s), "
          f"{sum(int((lab > 0).sum()) for lab in labels)} labelled pixels, "
          f"{args.trees} trees, features '{args.features}'")
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
