"""Entry point of the ``pixelforest`` command.

Each subcommand lives in its own module under :mod:`pixelforest.cli` and
exposes ``add_parser(subparsers)`` and ``run(args) -> int``.  Modules import
only the standard library at top level, so ``--help`` is fast and the docs
can render the parser without heavy imports; library code is imported inside
``run``.

No command ends in a traceback unless ``--debug`` asks for it:

- errors raised on purpose (:class:`~pixelforest.errors.PixelforestError`,
  ``OSError``, ``ValueError``) are printed as one line
  ``pixelforest: error: ...`` with exit code 2;
- ``MemoryError`` says what to lower (``--chunks``, ``--workers``, the image),
  exit code 2;
- anything else is reported as an unexpected error in one line, with the
  advice to re-run with ``--debug`` and report it, exit code 2;
- Ctrl-C (and SIGTERM/SIGHUP where the command handles them) exits with 130;
- a closed output pipe (``pixelforest features | head -1``) exits quietly
  with code 0, the way Python recommends (stdout redirected to devnull).
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
    "train_objects",
    "classify_objects",
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
            # SUPPRESS: an absent --debug after the command keeps the one before it
            sub_parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                                    help="show the full traceback when something fails")
    return parser


def _one_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _channel_hint(args):
    """The command-line option to use when an image's channels do not fit the model."""
    if getattr(args, "command", None) == "predict":
        return (" On the command line: predict uses the model's channel axis, so train "
                "the model on images like these (pixelforest train --channel-axis -1 "
                "for RGB, no --channel-axis for grey images).")
    return " On the command line: pass --channel-axis -1 for RGB images, none for grey."


def _memory_message(args):
    options = []
    if hasattr(args, "chunks"):
        options.append("a smaller --chunks")
    if hasattr(args, "workers"):
        options.append("fewer --workers")
    options.append("a smaller image (or crop it)")
    return ("out of memory; use " + ", ".join(options) + ", or run on a machine with "
            "more memory.")


def _broken_pipe():
    """Stop quietly when the reader of stdout went away (``... | head -1``)."""
    import os

    # Python's advice: point stdout at devnull so the flush at exit cannot
    # raise BrokenPipeError again.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout without a file descriptor
        pass
    return 0


def main(argv=None):
    """Run ``pixelforest`` with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return 2
    from pixelforest.errors import ChannelMismatchError, PixelforestError

    try:
        code = int(args._run(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return code
    except KeyboardInterrupt:
        print("pixelforest: interrupted; finished outputs were kept, "
              "unfinished ones were removed.", file=sys.stderr)
        return 130
    except BrokenPipeError:
        if args.debug:
            raise
        return _broken_pipe()
    except MemoryError:
        if args.debug:
            raise
        print(f"pixelforest: error: {_memory_message(args)}", file=sys.stderr)
        return 2
    except (PixelforestError, OSError, ValueError) as exc:
        if args.debug:
            raise
        message = _one_line(exc)
        if isinstance(exc, ChannelMismatchError) and (
                args.command == "predict" or "--channel-axis" not in message):
            message += _channel_hint(args)
        print(f"pixelforest: error: {message}", file=sys.stderr)
        return 2
    except Exception as exc:
        if args.debug:
            raise
        print(f"pixelforest: error: unexpected {type(exc).__name__}: {_one_line(exc)} "
              "(run again with --debug for the traceback, and please report it).",
              file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
