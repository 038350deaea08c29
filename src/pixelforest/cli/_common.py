"""Small helpers shared by the subcommand modules (standard library only)."""

import argparse
import textwrap


def add_command(subparsers, name, *, help, description, example):
    """Add a subcommand whose ``--help`` ends with a runnable example.

    ``example`` may hold several lines (one command each).
    """
    examples = "\n".join(f"  {line}" for line in example.splitlines())
    return subparsers.add_parser(
        name, help=help, description=textwrap.fill(description, 79),
        epilog=f"example:\n{examples}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_channel_axis(parser):
    parser.add_argument(
        "--channel-axis", type=int, default=None, metavar="N",
        help="axis holding colour channels (e.g. -1 for RGB); default: single channel",
    )


def add_output(parser, *, help="output file (.tif, .png or .zarr)"):
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help=help)
    parser.add_argument("--overwrite", action="store_true",
                        help="replace OUT if it exists")


def write_output(array, args):
    """Write ``array`` to ``args.output`` atomically, never over the input."""
    from pixelforest._shared.atomic import check_not_input
    from pixelforest.io.images import imwrite

    check_not_input(args.output, [getattr(args, "input", None)])
    imwrite(args.output, array, overwrite=args.overwrite)
    print(f"wrote {args.output} ({'x'.join(map(str, array.shape))}, {array.dtype})")
