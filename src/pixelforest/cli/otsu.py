"""``pixelforest otsu``: the classic global threshold (non-ML baseline)."""

from pixelforest.cli._common import add_channel_axis, add_command, add_output, write_output


def add_parser(subparsers):
    parser = add_command(
        subparsers, "otsu",
        help="segment with Otsu's global threshold (baseline)",
        description="Threshold the image at Otsu's value: 1 above, 0 at or below. "
                    "The classic non-machine-learning baseline.",
        example="pixelforest otsu nuclei.tif -o nuclei-otsu.tif",
    )
    parser.add_argument("input", metavar="IN", help="input image")
    add_output(parser, help="output mask (.tif, .png or .zarr; uint8)")
    add_channel_axis(parser)
    return parser


def run(args):
    from pixelforest.io.images import imread
    from pixelforest.segment.unsupervised import otsu_segment

    write_output(otsu_segment(imread(args.input), channel_axis=args.channel_axis), args)
    return 0
