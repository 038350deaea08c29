"""``pixelforest features``: list feature families and presets."""

from pixelforest.cli._common import add_command


def add_parser(subparsers):
    parser = add_command(
        subparsers, "features",
        help="list the feature families and presets",
        description="List the per-pixel feature families a PixelClassifier can use, "
                    "one line each, and the named presets accepted by "
                    "'pixelforest train --features'.",
        example="pixelforest features",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    return parser


def run(args):
    import json

    from pixelforest.features import FAMILIES, PRESETS, FeatureSpec

    if args.json:
        print(json.dumps({
            "families": FAMILIES,
            "presets": {name: {"description": desc, "spec": make().to_dict()}
                        for name, (desc, make) in PRESETS.items()},
        }, indent=2))
        return 0
    print("families:")
    for name, desc in FAMILIES.items():
        print(f"  {name:<10} {desc}")
    print("presets (pixelforest train --features NAME):")
    for name, (desc, make) in PRESETS.items():
        print(f"  {name:<10} {desc} [{len(make().names)} features per channel, "
              f"halo {make().halo[0]} px]")
    default = FeatureSpec()
    print(f"default: {len(default.names)} features per channel: {', '.join(default.names)}")
    return 0
