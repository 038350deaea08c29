"""``pixelforest measure``: one table row per object of an instance label image."""

from pixelforest.cli._common import add_channel_axis, add_command


def add_parser(subparsers):
    parser = add_command(
        subparsers, "measure",
        help="measure every object of a label image (CSV table)",
        description="Measure each object of an instance label image (0 = background, "
                    "1..N = objects, e.g. from PixelClassifier.predict_instances): size in "
                    "pixels and physical units, centroid, bounding box, axis lengths, "
                    "eccentricity and solidity, whether it touches the border, and the "
                    "mean/min/max/sum intensity of every channel of each IMAGE. Written "
                    "atomically as CSV; --summary also writes one row for the whole image "
                    "(count, mean size, coverage, density).",
        example="pixelforest measure nuclei-instances.tif nuclei.tif -o nuclei.csv\n"
                "pixelforest measure cells.tif dapi.tif gfp.tif -o cells.csv "
                "--spacing 0.65 0.65 --summary cells-summary.csv",
    )
    parser.add_argument("labels", metavar="LABELS", help="instance label image")
    parser.add_argument("images", metavar="IMAGE", nargs="*",
                        help="images to measure intensities in (same spatial shape); several "
                             "files name their columns after the file")
    parser.add_argument("-o", "--output", required=True, metavar="TABLE.csv",
                        help="output table (.csv)")
    parser.add_argument("--summary", default=None, metavar="SUMMARY.csv",
                        help="also write the per-image summary to this .csv file")
    parser.add_argument("--spacing", type=float, nargs="+", default=None, metavar="S",
                        help="physical pixel size, one number or one per axis (z y x); "
                             "default 1")
    add_channel_axis(parser)
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the output files if they exist")
    return parser


def _channel_names(paths, arrays, channel_axis):
    """Column names of the channels of several image files: their stems."""
    from pathlib import Path

    names = []
    for path, array in zip(paths, arrays):
        stem = Path(path).name.split(".")[0]
        n = 1 if channel_axis is None else array.shape[channel_axis]
        names.extend([stem] if n == 1 else [f"{stem}_ch{c}" for c in range(n)])
    if len(set(names)) != len(names):
        names = [f"{name}_{i}" for i, name in enumerate(names)]
    return names


def run(args):
    from pathlib import Path

    import numpy as np

    from pixelforest._shared.atomic import check_not_input
    from pixelforest.errors import InvalidParameterError
    from pixelforest.io.images import imread
    from pixelforest.objects.measure import measure, summarize, write_csv

    outputs = [args.output] + ([args.summary] if args.summary else [])
    for out in outputs:
        if Path(out).suffix.lower() != ".csv":
            raise InvalidParameterError(f"{out}: the table is written as CSV; name it *.csv.")
        check_not_input(out, [args.labels, *args.images])
    if args.summary and Path(args.summary).resolve() == Path(args.output).resolve():
        raise InvalidParameterError("--summary must be another file than -o.")
    spacing = args.spacing
    if spacing is not None and len(spacing) == 1:
        spacing = spacing[0]
    labels = imread(args.labels)
    image, names = None, None
    if args.images:
        arrays = [imread(p) for p in args.images]
        if len(arrays) == 1:
            image = arrays[0]
        else:
            names = _channel_names(args.images, arrays, args.channel_axis)
            if args.channel_axis is None:
                image = np.stack(arrays, axis=-1)
            else:
                image = np.concatenate([np.moveaxis(a, args.channel_axis, -1) for a in arrays],
                                       axis=-1)
    channel_axis = args.channel_axis if len(args.images) <= 1 else (
        -1 if args.images else None)
    table = measure(labels, image, spacing=spacing, channel_axis=channel_axis,
                    channel_names=names)
    summary = summarize(table, shape=np.shape(labels), spacing=spacing)
    write_csv(table, args.output, overwrite=args.overwrite)
    if args.summary:
        write_csv(summary, args.summary, overwrite=args.overwrite)
    row = summary.iloc[0]
    size = "area" if np.ndim(labels) == 2 else "volume"
    print(f"wrote {args.output} ({len(table)} objects, mean {size} "
          f"{row[f'mean_{size}']:.1f} px, {int(row['touching_border'])} touching the border)"
          + (f" and {args.summary}" if args.summary else ""))
    return 0
