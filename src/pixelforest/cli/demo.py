"""``pixelforest demo``: the lesson's pipeline on a real image, measured."""

from pixelforest.cli._common import add_command


def add_parser(subparsers):
    parser = add_command(
        subparsers, "demo",
        help="run the lesson's pipeline on a real nuclei image and score it",
        description="Load a real nuclei image with its reference mask (DSB2018; "
                    "PIXELFOREST_DATA_DIR or a checked download), segment it with "
                    "Otsu, K-means and a random forest trained from simulated "
                    "scribbles, print IoU / Dice / object F1 / AP for each, and save "
                    "a figure colouring each method's errors. With no data and no "
                    "network it says so and uses a synthetic image.",
        example="pixelforest demo --sample 8d05fb18ee0c --out pixelforest-demo",
    )
    parser.add_argument("--sample", default=None, metavar="NAME",
                        help="sample name (see --list); default: 942d56861fc8, a "
                             "dim fluorescence image of 51 nuclei")
    parser.add_argument("--out", default="pixelforest-demo", metavar="DIR",
                        help="folder for the figure (default: pixelforest-demo)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--list", action="store_true",
                        help="list the sample names with their kinds and exit")
    return parser


def run(args):
    import sys

    from pixelforest.demo import compare_forest, format_table, run_demo

    if args.list:
        from pixelforest import datasets

        for name in datasets.list_samples():
            info = datasets.sample_info(name)
            print(f"{name}  {info['kind']:<13} {info['height']}x{info['width']}  "
                  f"{info['nuclei']} nuclei")
        return 0
    result = run_demo(sample=args.sample, out=args.out, random_state=args.seed,
                      log=lambda message: print(message, file=sys.stderr))
    for note in result.notes:
        print(f"note: {note}")
    print(f"\n{result.sample} ({result.kind}): scores against the reference mask\n")
    print(format_table(result.rows))
    print(f"\n{compare_forest(result.rows)}")
    if result.top_features:
        print("\nrandom forest, top features by importance:")
        for name, importance in result.top_features:
            print(f"  {importance:6.3f}  {name}")
    if result.figure is not None:
        print(f"\nfigure: {result.figure}")
    return 0
