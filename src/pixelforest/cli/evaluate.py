"""``pixelforest evaluate``: score a segmentation against a reference."""

from pixelforest.cli._common import add_command


def add_parser(subparsers):
    parser = add_command(
        subparsers, "evaluate",
        help="score a segmentation against a reference (IoU, Dice, F1, AP)",
        description="Compare a predicted segmentation with a reference. Pixel scores "
                    "(IoU, Dice) use foreground = nonzero (or PRED == --foreground). "
                    "Object scores (F1 at IoU 0.5, DSB2018 average precision over "
                    "IoU 0.5:0.95) use instance labels; binary masks are split into "
                    "objects by connected components.",
        example="pixelforest evaluate nuclei-otsu.tif nuclei-labels.tif --json",
    )
    parser.add_argument("prediction", metavar="PRED", help="predicted mask or label image")
    parser.add_argument("reference", metavar="REF", help="reference mask or label image")
    parser.add_argument("--foreground", type=int, default=None, metavar="V",
                        help="PRED value that means foreground (e.g. 2 for a "
                             "PixelClassifier trained with 1=background, 2=nuclei); "
                             "default: every nonzero value")
    parser.add_argument("--threshold", type=float, default=0.5,
                        help="IoU needed for two objects to match (default: 0.5)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser


def evaluate_files(prediction, reference, *, foreground=None, threshold=0.5):
    """Return the scores of ``pixelforest evaluate`` as a dict."""
    from pixelforest.evaluate import metrics
    from pixelforest.io.images import imread

    pred = imread(prediction)
    ref = imread(reference)
    if foreground is not None:
        pred = pred == foreground
    match = metrics.match_objects(pred, ref, threshold=threshold)
    return {
        "prediction": str(prediction),
        "reference": str(reference),
        "iou": metrics.iou(pred, ref),
        "dice": metrics.dice(pred, ref),
        "object_threshold": threshold,
        "true_positives": match.tp,
        "false_positives": match.fp,
        "false_negatives": match.fn,
        "precision": match.precision,
        "recall": match.recall,
        "f1": match.f1,
        "average_precision": metrics.average_precision(pred, ref),
    }


def run(args):
    import json

    scores = evaluate_files(args.prediction, args.reference, foreground=args.foreground,
                            threshold=args.threshold)
    if args.json:
        print(json.dumps(scores, indent=2))
        return 0
    for key, value in scores.items():
        shown = f"{value:.4f}" if isinstance(value, float) else value
        print(f"{key.replace('_', ' '):<20} {shown}")
    return 0
