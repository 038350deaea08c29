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


def add_parser(subparsers):
    parser = add_command(
        subparsers, "predict",
        help="predict labels with a trained model (large images, many files, clusters)",
        description=(
            "Apply a trained model (.skops, from 'pixelforest train') to images block by "
            "block, so images larger than memory work. INPUT may be image files, .zarr "
            "stores, folders or quoted glob patterns; each gets one output, written "
            "atomically. A re-run skips outputs that already exist (resumable); an input "
            "that fails is reported and the others continue (exit code 1). Memory is "
            "about workers x (chunk + 2 x halo)^2 x features x 12 bytes: lower --chunks "
            "or --workers to use less."
        ),
        example=(
            "pixelforest predict model.skops images/ -o predictions/\n"
            "pixelforest predict model.skops big.zarr -o big-labels.zarr --chunks 1024\n"
            "pixelforest predict model.skops 'plates/*.tif' -o out/ "
            "--scheduler tcp://127.0.0.1:8786"
        ),
    )
    parser.add_argument("model", metavar="MODEL", help="trained model file (.skops)")
    parser.add_argument("inputs", metavar="INPUT", nargs="+",
                        help="image files, .zarr stores, folders or glob patterns")
    parser.add_argument("-o", "--output", required=True, metavar="OUT",
                        help="output file (.tif or .zarr) for one input, else a folder")
    parser.add_argument("--overwrite", action="store_true",
                        help="predict again inputs whose output exists (default: skip them)")
    parser.add_argument("--probabilities", action="store_true",
                        help="write class probabilities (float32, classes last) "
                             "instead of labels")
    parser.add_argument("--chunks", type=_positive_int, default=None, metavar="N",
                        help="block side in pixels (default: chosen from the memory "
                             "budget); smaller uses less memory")
    parser.add_argument("--workers", type=_positive_int, default=None, metavar="N",
                        help="local threads (default: every core)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="address of a running dask.distributed scheduler, e.g. "
                             "tcp://host:8786 (outputs must be on a shared disk)")
    parser.add_argument("--format", choices=("tif", "zarr"), default=None,
                        help="output format in a folder (default: tif, tiled BigTIFF)")
    return parser


def run(args):
    import sys

    from pixelforest.scale.batch import predict_files
    from pixelforest.io.model_file import load_model

    if args.scheduler is not None and args.workers is not None:
        print("pixelforest: note: --workers applies to local runs; the cluster's "
              "workers are used with --scheduler", file=sys.stderr)
    model = load_model(args.model)
    report = predict_files(model, args.inputs, args.output,
                           probabilities=args.probabilities, chunks=args.chunks,
                           workers=args.workers, scheduler=args.scheduler,
                           overwrite=args.overwrite, format=args.format)
    for _, out in report.written:
        print(f"wrote {out}")
    print(report.summary())
    return report.exit_code
