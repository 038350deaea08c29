"""``pixelforest evaluate``: score a segmentation against a reference."""

from pixelforest.cli._common import add_command


def add_parser(subparsers):
    parser = add_command(
        subparsers, "evaluate",
        help="score a segmentation against a reference (IoU, Dice, F1, AP)",
        description="Compare a predicted segmentation with a reference, or every image "
                    "of a folder of predictions with the reference of the same name "
                    "(a_pred.tif with a.png: extensions and endings such as _pred, _mask, "
                    "_labels are ignored; one row per image, then the mean). Foreground "
                    "of PRED: for pixelforest predict's output, the class its metadata "
                    "names (2 = nuclei for labels 1 = background, 2 = nuclei); else every "
                    "nonzero pixel, or the pixels equal to --foreground. Object scores "
                    "(F1 at IoU 0.5, DSB2018 average precision over IoU 0.5:0.95) use "
                    "instance labels; binary masks are split into objects by connected "
                    "components.",
        example="pixelforest evaluate nuclei-otsu.tif nuclei-labels.tif --json\n"
                "pixelforest evaluate predictions/ references/ --csv scores.csv",
    )
    parser.add_argument("prediction", metavar="PRED",
                        help="predicted mask or label image, or a folder of them")
    parser.add_argument("reference", metavar="REF",
                        help="reference mask or label image, or a folder of them")
    parser.add_argument("--foreground", type=_number, default=None, metavar="VALUE",
                        help="PRED value that means foreground, overriding PRED's metadata "
                             "(e.g. 2 for labels 1 = background, 2 = nuclei); default: "
                             "the metadata's foreground class, else every nonzero value")
    parser.add_argument("--threshold", type=float, default=0.5,
                        help="IoU needed for two objects to match (default: 0.5)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--csv", default=None, metavar="FILE",
                        help="also write the table (one row per image, then the mean) to "
                             "FILE, a .csv file")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the --csv FILE if it exists")
    return parser


def _number(text):
    import argparse

    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def evaluate_files(prediction, reference, *, foreground=None, threshold=0.5):
    """Return the scores of ``pixelforest evaluate`` of two files as a dict."""
    from pixelforest.evaluate.files import evaluate_file

    return evaluate_file(prediction, reference, foreground=foreground, threshold=threshold)


def _show(value):
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _print_table(rows, mean):
    from pathlib import Path

    columns = ("iou", "dice", "precision", "recall", "f1", "average_precision")
    names = [Path(row["prediction"]).name for row in rows] + ["mean"]
    width = max(len(n) for n in names + ["image"])
    print(f"{'image':<{width}}  " + "  ".join(f"{c[:8]:>8}" for c in columns)
          + f"  {'tp':>5} {'fp':>5} {'fn':>5}")
    for name, row in zip(names, rows + [mean]):
        print(f"{name:<{width}}  " + "  ".join(f"{row[c]:>8.4f}" for c in columns)
              + "  " + " ".join(f"{row[c]:>5}" for c in
                                ("true_positives", "false_positives", "false_negatives")))


def run(args):
    import json
    import sys
    import warnings

    from pixelforest.evaluate.files import evaluate_paths, mean_row, write_csv

    if args.csv is not None and not args.csv.lower().endswith(".csv"):
        from pixelforest.errors import InvalidParameterError

        raise InvalidParameterError(
            f"--csv {args.csv}: give a file name ending in .csv (e.g. --csv scores.csv)."
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows = evaluate_paths(args.prediction, args.reference, foreground=args.foreground,
                              threshold=args.threshold)
    for warning in caught:  # pixelforest's warnings: one line each, on stderr
        if warning.category.__module__.startswith("pixelforest"):
            print(f"pixelforest: warning: {str(warning.message).splitlines()[0]}",
                  file=sys.stderr)
        else:
            warnings.showwarning(warning.message, warning.category, warning.filename,
                                 warning.lineno)
    if args.csv is not None:
        write_csv(args.csv, rows, overwrite=args.overwrite,
                  inputs=[row[k] for row in rows for k in ("prediction", "reference")])
    several = len(rows) > 1
    if args.json:
        data = {"images": rows, "mean": mean_row(rows)} if several else rows[0]
        print(json.dumps(data, indent=2))
    elif several:
        _print_table(rows, mean_row(rows))
    else:
        for key, value in rows[0].items():
            print(f"{key.replace('_', ' '):<20} {_show(value)}")
    if args.csv is not None:
        print(f"wrote {args.csv}", file=sys.stderr if args.json else sys.stdout)
    return 0
