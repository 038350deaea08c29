"""``pixelforest classify-objects``: classify every object with a trained object model."""

from pixelforest.cli._common import add_command


def add_parser(subparsers):
    parser = add_command(
        subparsers, "classify-objects",
        help="classify every object of label images with an object model",
        description="Apply an object classifier trained with 'pixelforest train-objects' "
                    "to every object of instance label images: each object is measured "
                    "(as in training) and given a class. Writes one class image per LABELS "
                    "IMAGE pair (each object's pixels hold its class value, 0 = "
                    "background; the values are printed and stored in the file's "
                    "metadata) and, with --table, one CSV row per object with its "
                    "measurements, class and class probabilities. Outputs are written "
                    "atomically.",
        example="pixelforest classify-objects nuclei-classes.skops nuclei-instances.tif "
                "nuclei.tif -o nuclei-classes.tif --table nuclei-classes.csv\n"
                "pixelforest classify-objects classes.skops a-instances.tif a.tif "
                "b-instances.tif b.tif -o a-classes.tif b-classes.tif --table all.csv",
    )
    parser.add_argument("model", metavar="MODEL", help="object model file (.skops)")
    parser.add_argument("pairs", nargs="+", metavar="LABELS IMAGE",
                        help="instance label image and its intensity image, repeated for "
                             "several images")
    parser.add_argument("-o", "--output", nargs="+", required=True, metavar="OUT",
                        help="one class image per pair (.tif, .png or .zarr)")
    parser.add_argument("--table", default=None, metavar="TABLE.csv",
                        help="also write one row per object (all images; the column "
                             "'image' names the intensity image)")
    parser.add_argument("--spacing", type=float, nargs="+", default=None, metavar="S",
                        help="physical pixel size, as in training (one number or one per "
                             "axis)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the outputs if they exist")
    return parser


def _load(path):
    import sys
    import warnings

    from pixelforest.errors import ModelVersionWarning
    from pixelforest.io.model_file import load_object_model

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ModelVersionWarning)
        try:
            return load_object_model(path)
        finally:
            for w in caught:
                if issubclass(w.category, ModelVersionWarning):
                    print(f"pixelforest: warning: {w.message}", file=sys.stderr)
                else:
                    warnings.showwarning(w.message, w.category, w.filename, w.lineno)


def run(args):
    from pathlib import Path

    import pandas as pd

    from pixelforest._shared.atomic import check_not_input
    from pixelforest.cli.train_objects import spacing_of, split_pairs
    from pixelforest.errors import InvalidParameterError, OutputExistsError
    from pixelforest.io.images import imread, imwrite
    from pixelforest.objects.measure import write_csv

    pairs = split_pairs(args.pairs)
    if len(args.output) != len(pairs):
        raise InvalidParameterError(
            f"got {len(pairs)} LABELS IMAGE pair(s) but {len(args.output)} output(s); give one "
            "-o class image per pair, in the same order."
        )
    outputs = list(args.output) + ([args.table] if args.table else [])
    if len({Path(o).resolve() for o in outputs}) != len(outputs):
        raise InvalidParameterError("the outputs (-o and --table) must be distinct files.")
    if args.table and Path(args.table).suffix.lower() != ".csv":
        raise InvalidParameterError(f"{args.table}: the table is written as CSV; name it "
                                    "*.csv.")
    inputs = [args.model] + [p for pair in pairs for p in pair]
    for out in outputs:
        check_not_input(out, inputs)
        if Path(out).exists() and not args.overwrite:
            raise OutputExistsError(f"{out} already exists; pass --overwrite to replace it or "
                                    "choose another output.")
    clf = _load(args.model)
    spacing = spacing_of(args)
    metadata = {"kind": "object-classes",
                "classes": clf.classes_.tolist(),
                "values": clf.image_values_.tolist(), "model": Path(args.model).name}
    names = ", ".join(f"{v} = {c!s}" for c, v in zip(clf.classes_.tolist(),
                                                     clf.image_values_.tolist()))
    print(f"class values: {names}")
    tables = []
    for (lab_path, img_path), out in zip(pairs, args.output):
        labels, image = imread(lab_path), imread(img_path)
        table = clf.measure(labels, image, spacing=spacing)
        proba = clf.predict_proba_table(table)
        predicted = clf.predict_table(table)
        imwrite(out, clf.class_image(labels, dict(zip(table["label"], predicted))),
                overwrite=args.overwrite, metadata=metadata)
        counts = predicted.value_counts()
        summary = ", ".join(f"{int(counts.get(c, 0))} {c!s}" for c in clf.classes_.tolist())
        print(f"wrote {out} ({len(table)} objects: {summary})")
        if args.table:
            rows = table.copy()
            rows.insert(0, "image", img_path)
            rows["class"] = predicted.to_numpy()
            for c in clf.classes_.tolist():
                rows[f"probability_{c}"] = proba[c].to_numpy()
            tables.append(rows)
    if args.table:
        write_csv(pd.concat(tables, ignore_index=True), args.table, overwrite=args.overwrite)
        print(f"wrote {args.table} ({sum(len(t) for t in tables)} rows)")
    return 0
