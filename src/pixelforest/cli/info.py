"""``pixelforest info``: describe a model file."""

from pixelforest.cli._common import add_command


def add_parser(subparsers):
    parser = add_command(
        subparsers, "info",
        help="describe a trained model file",
        description="Print what a .skops model file records: feature spec, "
                    "normalization, classes, number of channels, the package versions "
                    "that wrote it, its creation time and its most important features. "
                    "The file is checked and loaded safely (no code from it runs).",
        example="pixelforest info nuclei.skops",
    )
    parser.add_argument("model", metavar="MODEL", help="model file (.skops)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    return parser


def run(args):
    import json
    import sys
    import warnings

    from pixelforest.errors import ModelVersionWarning
    from pixelforest.io.model_file import model_info

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ModelVersionWarning)
        try:
            info = model_info(args.model)
        finally:  # a newer version may be why loading failed: say so either way
            for w in caught:
                if issubclass(w.category, ModelVersionWarning):
                    print(f"pixelforest: warning: {w.message}", file=sys.stderr)
                else:
                    warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    spec = info["features"]
    sigmas = spec["sigmas"]
    if isinstance(sigmas, dict):
        sigmas = "; ".join(f"{f}: {', '.join(f'{s:g}' for s in v)}" for f, v in sigmas.items())
    else:
        sigmas = ", ".join(f"{s:g}" for s in sigmas)
    print(f"model       {args.model}")
    print(f"created     {info['created']} (format {info['format_version']})")
    print(f"written by  {versions}")
    print(f"estimator   {info['estimator']['class']}")
    print(f"features    {', '.join(spec['families'])} at sigmas {sigmas}"
          + (f", spacing {spec['spacing']}" if spec["spacing"] else "")
          + f", {spec.get('precision', 'exact')} filters")
    print(f"            {info['n_features']} columns, halo {info['halo']} px")
    print(f"normalize   {info['normalize']}")
    print(f"input       {info['ndim']}-D, {info['n_channels']} channel(s), "
          f"channel_axis {info['channel_axis']}")
    print(f"classes     {info['classes']}")
    if info["top_features"]:
        print("top features:")
        for name, value in info["top_features"]:
            print(f"  {value:.4f}  {name}")
    return 0
