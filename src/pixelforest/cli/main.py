"""Entry point of the ``pixelforest`` command.

Each subcommand lives in its own module under :mod:`pixelforest.cli` and
exposes ``add_parser(subparsers)`` and ``run(args) -> int``.  Modules import
only the standard library at top level, so ``--help`` is fast and the docs
can render the parser without heavy imports; library code is imported inside
``run``.

Errors raised on purpose (:class:`~pixelforest.errors.PixelforestError`,
``OSError``) are printed as one line ``pixelforest: error: ...`` with exit
code 2, unless ``--debug`` asks for the traceback.  Ctrl-C exits with 130.
"""

import argparse
import importlib
import sys

#: Subcommand modules, in the order ``--help`` lists them.
COMMAND_MODULES = (
    "demo",
    "normalize",
    "kmeans",
    "otsu",
    "evaluate",
    "train",
    "predict",
    "info",
    "features",
    "measure",
)


def _version():
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pixelforest")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


def build_parser():
    """Return the full :class:`argparse.ArgumentParser` of ``pixelforest``."""
    parser = argparse.ArgumentParser(
        prog="pixelforest",
        description="Segment microscopy images with classical machine learning.",
        epilog="Run 'pixelforest COMMAND --help' for an example of each command.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback when something fails")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"pixelforest.cli.{name}")
        sub_parser = module.add_parser(sub)
        sub_parser.set_defaults(_run=module.run)
        if not any(a.dest == "debug" for a in sub_parser._actions):
            sub_parser.add_argument("--debug", action="store_true",
                                    help="show the full traceback when something fails")
    return parser


def main(argv=None):
    """Run ``pixelforest`` with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return 2
    from pixelforest.errors import PixelforestError

    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("pixelforest: interrupted; finished outputs were kept, "
              "unfinished ones were removed.", file=sys.stderr)
        return 130
    except (PixelforestError, OSError, ValueError) as exc:
        if args.debug:
            raise
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"pixelforest: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
