"""``pixelforest train-objects``: learn object classes from a few labelled objects."""

from pixelforest.cli._common import add_channel_axis, add_command


def add_parser(subparsers):
    parser = add_command(
        subparsers, "train-objects",
        help="train an object classifier from a few labelled objects",
        description="Learn classes of whole objects (e.g. clumps vs single nuclei, mitotic "
                    "vs normal) from a few objects you labelled, on their measurements "
                    "(size, shape, touching the border and intensities, as 'pixelforest "
                    "measure' computes them), and save it as one safe .skops model file. "
                    "Give pairs of an instance label image and its intensity image, and one "
                    "annotation file per pair: a class image painted over objects (0 = not "
                    "annotated; each object takes the class painted on most of its "
                    "pixels, e.g. napari's Labels layer) or a CSV table with the columns "
                    "'label' and 'class' (classes may be numbers or names). Prints how many "
                    "objects of each class it learned from and the most important "
                    "measurements.",
        example="pixelforest train-objects nuclei-instances.tif nuclei.tif "
                "--annotations nuclei-classes.tif -o nuclei-classes.skops\n"
                "pixelforest train-objects a-instances.tif a.tif b-instances.tif b.tif "
                "--annotations a-clicked.csv b-clicked.csv -o classes.skops "
                "--features area_relative solidity eccentricity",
    )
    parser.add_argument("pairs", nargs="+", metavar="LABELS IMAGE",
                        help="instance label image and its intensity image, repeated for "
                             "several images")
    parser.add_argument("--annotations", nargs="+", required=True, metavar="ANN",
                        help="one per pair: class image (.tif/.png/.zarr, 0 = not "
                             "annotated) or .csv with columns label,class")
    parser.add_argument("-o", "--output", required=True, metavar="MODEL",
                        help="model file to write (.skops)")
    parser.add_argument("--overwrite", action="store_true", help="replace MODEL if it exists")
    parser.add_argument("--features", nargs="+", default=None, metavar="COLUMN",
                        help="measurement columns to learn from (default: physical size, "
                             "area_relative (size / the image's median object), axis "
                             "lengths, eccentricity, solidity, touches_border and the "
                             "mean/min/max/sum intensity of every channel); for images of "
                             "other magnifications choose scale-free ones, e.g. "
                             "area_relative solidity eccentricity")
    parser.add_argument("--spacing", type=float, nargs="+", default=None, metavar="S",
                        help="physical pixel size, one number or one per axis (z y x); "
                             "default 1")
    add_channel_axis(parser)
    parser.add_argument("--trees", type=int, default=200, metavar="N",
                        help="number of trees of the random forest (default: 200)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    return parser


def split_pairs(values, what="LABELS IMAGE"):
    """``[labels, image, labels, image, ...]`` as a list of ``(labels, image)`` pairs."""
    from pixelforest.errors import InvalidParameterError

    if len(values) % 2:
        raise InvalidParameterError(
            f"got {len(values)} files; give them as pairs {what} (a label image, then its "
            "intensity image), e.g. a-instances.tif a.tif b-instances.tif b.tif."
        )
    return list(zip(values[0::2], values[1::2]))


def spacing_of(args):
    spacing = args.spacing
    if spacing is not None and len(spacing) == 1:
        return spacing[0]
    return spacing


def read_annotations(path):
    """An annotation file: a class image, or a CSV table as ``{label: class}``."""
    from pathlib import Path

    from pixelforest.errors import ImageFileNotFoundError, InvalidLabelsError
    from pixelforest.io.images import imread

    if Path(path).suffix.lower() != ".csv":
        return imread(path)
    import pandas as pd

    if not Path(path).is_file():
        raise ImageFileNotFoundError(f"there is no annotation table at {path}; check the "
                                     "path.")
    table = pd.read_csv(path)
    missing = {"label", "class"} - set(table.columns)
    if missing:
        raise InvalidLabelsError(
            f"{path} lacks the column(s) {sorted(missing)}; an annotation table has the "
            "columns 'label' (the object's value in the label image) and 'class'."
        )
    table = table.dropna(subset=["class"])
    if table["label"].duplicated().any():
        dup = int(table["label"][table["label"].duplicated()].iloc[0])
        raise InvalidLabelsError(f"{path} gives object {dup} more than once; give each "
                                 "object one row.")
    return dict(zip(table["label"].tolist(), table["class"].tolist()))


def run(args):
    from pathlib import Path

    from pixelforest._shared.atomic import check_not_input
    from pixelforest.errors import InvalidParameterError, OutputExistsError
    from pixelforest.io.images import imread
    from pixelforest.io.model_file import save_object_model
    from pixelforest.objects.classifier import ObjectClassifier, default_object_estimator

    pairs = split_pairs(args.pairs)
    if len(args.annotations) != len(pairs):
        raise InvalidParameterError(
            f"got {len(pairs)} LABELS IMAGE pair(s) but {len(args.annotations)} annotation "
            "file(s); give one --annotations file per pair, in the same order."
        )
    if args.trees < 1:
        raise InvalidParameterError(f"--trees must be at least 1, got {args.trees}.")
    inputs = [p for pair in pairs for p in pair] + list(args.annotations)
    check_not_input(args.output, inputs)
    if Path(args.output).exists() and not args.overwrite:
        raise OutputExistsError(
            f"{args.output} already exists; pass --overwrite to replace it or choose "
            "another -o."
        )
    labels = [imread(lab) for lab, _ in pairs]
    images = [imread(img) for _, img in pairs]
    annotations = [read_annotations(p) for p in args.annotations]
    clf = ObjectClassifier(args.features, default_object_estimator(n_estimators=args.trees),
                           channel_axis=args.channel_axis, random_state=args.seed)
    clf.fit(labels, images, annotations, spacing=spacing_of(args))
    print(f"trained on {clf.n_objects_} labelled object(s) of {len(pairs)} image(s), "
          f"{clf.n_features_in_} measurements, {args.trees} trees")
    for cls, value, count in zip(clf.classes_.tolist(), clf.image_values_.tolist(),
                                 clf.class_counts_.tolist()):
        print(f"  class {cls!s}: {count} object(s), value {value} in class images")
    save_object_model(clf, args.output)
    print(f"wrote {args.output}")
    importances = getattr(clf.estimator_, "feature_importances_", None)
    if importances is not None:
        order = sorted(range(len(importances)), key=lambda k: -importances[k])[:5]
        print("top features: " + ", ".join(f"{clf.feature_names_in_[k]} {importances[k]:.3f}"
                                           for k in order))
    return 0
