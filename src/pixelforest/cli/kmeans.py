"""``pixelforest kmeans``: unsupervised segmentation by K-means clustering."""

from pixelforest.cli._common import add_channel_axis, add_command, add_output, write_output


def add_parser(subparsers):
    parser = add_command(
        subparsers, "kmeans",
        help="segment by K-means clustering of pixel intensities",
        description="Cluster pixel intensities with K-means. Labels are ordered by "
                    "cluster mean intensity: 0 is the darkest, K-1 the brightest "
                    "(the nuclei of a fluorescence image).",
        example="pixelforest kmeans nuclei.tif -o nuclei-kmeans.tif --clusters 2",
    )
    parser.add_argument("input", metavar="IN", help="input image")
    add_output(parser, help="output label image (.tif, .png or .zarr; uint8)")
    parser.add_argument("--clusters", type=int, default=2, metavar="K",
                        help="number of clusters (default: 2)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    add_channel_axis(parser)
    return parser


def run(args):
    from pixelforest.io.images import imread
    from pixelforest.segment.unsupervised import kmeans_segment

    image = imread(args.input)
    labels = kmeans_segment(image, args.clusters, channel_axis=args.channel_axis,
                            random_state=args.seed)
    write_output(labels, args)
    return 0
