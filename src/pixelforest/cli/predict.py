"""``pixelforest predict``: apply a trained model to many or very large images."""

from pixelforest.cli._common import add_command


def _positive_int(text):
    import argparse

    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _positive_seconds(text):
    import argparse
    import math

    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _spacing(text):
    import argparse
    import math

    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if not values or not all(math.isfinite(v) and v > 0 for v in values):
        raise argparse.ArgumentTypeError(
            f"expected positive pixel sizes separated by commas (e.g. 2,0.5,0.5), got {text!r}")
    return values[0] if len(values) == 1 else tuple(values)


def add_parser(subparsers):
    parser = add_command(
        subparsers, "predict",
        help="predict labels with a trained model (large images, many files, clusters)",
        description=(
            "Apply a trained model (.skops, from 'pixelforest train') to images block by "
            "block, so images larger than memory work. INPUT may be image files, .zarr "
            "stores, folders or quoted glob patterns; each gets one output, written "
            "atomically. A re-run skips outputs that already exist (resumable); an input "
            "that fails is reported and the others continue (exit code 1). Ctrl-C, "
            "SIGTERM and SIGHUP stop cleanly (exit code 128 + the signal): run the same "
            "command again to resume. Outputs name their classes in their metadata "
            "(labels: the class values, e.g. 1 = background, 2 = nuclei). Memory is "
            "about workers x (chunk + 2 x halo)^2 x features x 12 bytes: lower --chunks "
            "or --workers to use less. --kind instances splits the foreground class into "
            "objects (uint32 labels, 0 = background), as the library's predict_instances, "
            "with blocks overlapping by more than the largest object (--overlap)."
        ),
        example=(
            "pixelforest predict model.skops images/ -o predictions/\n"
            "pixelforest predict model.skops cells.tif -o cells-mask.png --kind mask\n"
            "pixelforest predict model.skops big.zarr -o big-labels.zarr --chunks 1024\n"
            "pixelforest predict model.skops big.zarr -o nuclei.zarr --kind instances\n"
            "pixelforest predict model.skops 'plates/*.tif' -o out/ "
            "--scheduler tcp://127.0.0.1:8786"
        ),
    )
    parser.add_argument("model", metavar="MODEL", help="trained model file (.skops)")
    parser.add_argument("inputs", metavar="INPUT", nargs="+",
                        help="image files, .zarr stores, folders or glob patterns")
    parser.add_argument("-o", "--output", required=True, metavar="OUT",
                        help="output file (.tif, .zarr, .ome.zarr or .png) for one input, else "
                             "a folder")
    parser.add_argument("--overwrite", action="store_true",
                        help="predict again inputs whose output exists (default: skip them)")
    parser.add_argument("--kind", choices=("labels", "mask", "probabilities", "instances"),
                        default=None,
                        help="what to write: labels (class values, the default), mask "
                             "(0/255 of the --foreground class, visible in any viewer), "
                             "probabilities (float32, classes last) or instances (the "
                             "--foreground class split into objects: uint32, 0 = background, "
                             "one label per object)")
    parser.add_argument("--foreground", default=None, metavar="VALUE",
                        help="the class of --kind mask or instances (default: the largest "
                             "class value, 2 for a model trained on 1 = background, "
                             "2 = foreground)")
    parser.add_argument("--overlap", type=_positive_int, default=None, metavar="PIXELS",
                        help="with --kind instances: pixels each block reads around its "
                             "core, more than the largest object or clump (default: 8 "
                             "typical object radii, estimated from the image)")
    parser.add_argument("--spacing", type=_spacing, default=None, metavar="SIZES",
                        help="with --kind instances: physical pixel size per axis, e.g. "
                             "2,0.5,0.5 for a z step of 4 pixels (default: 1)")
    parser.add_argument("--guide", choices=("image", "probability"), default=None,
                        help="with --kind instances: what splits touching objects and draws "
                             "outlines, the image's contrast (default) or the probability")
    parser.add_argument("--probabilities", action="store_true",
                        help="the same as --kind probabilities")
    parser.add_argument("--chunks", type=_positive_int, default=None, metavar="N",
                        help="block side in pixels (default: chosen from the memory "
                             "budget); smaller uses less memory")
    parser.add_argument("--workers", type=_positive_int, default=None, metavar="N",
                        help="local threads (default: every core)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="address of a running dask.distributed scheduler, e.g. "
                             "tcp://host:8786 (outputs must be on a shared disk)")
    parser.add_argument("--timeout", type=_positive_seconds, default=None, metavar="SECONDS",
                        help="with --scheduler: fail when the cluster has no worker or makes "
                             "no progress for this long (default: 60)")
    parser.add_argument("--format", choices=("tif", "zarr", "ome-zarr"), default=None,
                        help="output format in a folder (default: tif, tiled BigTIFF; "
                             "ome-zarr: label images with OME-NGFF metadata, for napari)")
    return parser


def _stopped_message(exc):
    """One line: which signal, what was finished, and that a re-run resumes."""
    import signal

    try:
        name = signal.Signals(exc.signum).name
    except (AttributeError, ValueError):
        name = "SIGINT"
    how = "Ctrl-C (SIGINT)" if name == "SIGINT" else name
    report = getattr(exc, "report", None)
    if report is None:
        return (f"pixelforest: interrupted by {how} before any output was written; run the "
                "same command again to start.")
    n = len(report.written)
    done = f"{n} output{'s' * (n != 1)} finished and kept"
    if report.skipped:
        done += f" ({len(report.skipped)} more done before)"
    return (f"pixelforest: interrupted by {how}: {done}, unfinished ones removed; run the "
            "same command again to resume (finished outputs are skipped).")


def run(args):
    import signal
    import sys

    from pixelforest._shared.signals import signals_as_interrupt

    debug = getattr(args, "debug", False)
    if args.scheduler is not None and args.workers is not None:
        print("pixelforest: note: --workers applies to local runs; the cluster's "
              "workers are used with --scheduler", file=sys.stderr)
    if args.scheduler is None and args.timeout is not None:
        print("pixelforest: note: --timeout applies to --scheduler runs", file=sys.stderr)
    instances = None
    if args.kind == "instances":
        instances = {"overlap": args.overlap, "spacing": args.spacing,
                     "guide": args.guide or "image"}
    elif any(v is not None for v in (args.overlap, args.spacing, args.guide)):
        print("pixelforest: note: --overlap, --spacing and --guide apply to --kind instances",
              file=sys.stderr)
    try:
        with signals_as_interrupt():
            from pixelforest.io.model_file import load_model
            from pixelforest.scale.batch import predict_files

            model = load_model(args.model)
            report = predict_files(model, args.inputs, args.output, kind=args.kind,
                                   probabilities=args.probabilities,
                                   foreground=args.foreground, chunks=args.chunks,
                                   workers=args.workers, scheduler=args.scheduler,
                                   overwrite=args.overwrite, format=args.format,
                                   timeout=args.timeout, instances=instances)
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM, SIGHUP: the same clean stop
        print(_stopped_message(exc), file=sys.stderr)
        return 128 + getattr(exc, "signum", signal.SIGINT)
    for _, out in report.written:
        print(f"wrote {out}")
    if debug:
        for inp, text in report.tracebacks:
            print(f"pixelforest: traceback of {inp}:\n{text}", file=sys.stderr, end="")
    print(report.summary())
    return report.exit_code
