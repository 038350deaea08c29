"""``pixelforest normalize``: rescale intensities to [0, 1] as float32."""

from pixelforest.cli._common import add_channel_axis, add_command, add_output, write_output


def add_parser(subparsers):
    parser = add_command(
        subparsers, "normalize",
        help="rescale an image's intensities to [0, 1] (float32)",
        description="Rescale intensities to [0, 1] as float32, by the image's own "
                    "minimum and maximum or by percentiles (robust to hot pixels). "
                    "Never by dtype.",
        example="pixelforest normalize nuclei.tif -o nuclei-norm.tif --method percentile",
    )
    parser.add_argument("input", metavar="IN", help="input image")
    add_output(parser, help="output image (.tif or .zarr; float32)")
    parser.add_argument("--method", choices=("minmax", "percentile"), default="percentile",
                        help="minmax: image min to 0, max to 1; percentile (default): "
                             "the --low and --high percentiles to 0 and 1")
    parser.add_argument("--low", type=float, default=1.0, help="lower percentile (default: 1.0)")
    parser.add_argument("--high", type=float, default=99.8, help="upper percentile (default: 99.8)")
    parser.add_argument("--no-clip", action="store_true",
                        help="keep values outside the percentiles (below 0, above 1)")
    add_channel_axis(parser)
    return parser


def run(args):
    from pixelforest.io.images import imread
    from pixelforest.preprocess.normalize import normalize_minmax, normalize_percentile

    image = imread(args.input)
    if args.method == "minmax":
        result = normalize_minmax(image, channel_axis=args.channel_axis)
    else:
        result = normalize_percentile(image, args.low, args.high, clip=not args.no_clip,
                                      channel_axis=args.channel_axis)
    write_output(result, args)
    return 0
