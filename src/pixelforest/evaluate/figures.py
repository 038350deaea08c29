"""Pictures that show where a segmentation is right and wrong.

Colours are from the Okabe-Ito palette, which stays distinguishable for the
common forms of colour blindness:

* true positive (foreground in both): bluish green
* false positive (predicted foreground, reference background): vermillion
* false negative (missed reference foreground): sky blue

True negatives show the image itself in grey (or black without an image).
"""

import numpy as np

from pixelforest._shared.atomic import atomic_output
from pixelforest._shared.validation import check_image, check_same_shape, to_channel_last
from pixelforest.errors import InvalidImageError

__all__ = ["ERROR_COLOURS", "error_overlay", "plot_comparison"]

#: RGB colour (uint8) of each outcome in :func:`error_overlay`.
ERROR_COLOURS = {
    "true positive": (0, 158, 115),
    "false positive": (213, 94, 0),
    "false negative": (86, 180, 233),
}


def _grey_background(image, channel_axis):
    """Return a 2-D float image in [0, 1] for display (percentile stretch)."""
    from pixelforest.preprocess.normalize import normalize_percentile

    img = normalize_percentile(image, channel_axis=channel_axis)
    if channel_axis is not None:
        img = np.moveaxis(img, channel_axis, -1).mean(axis=-1)
    return img


def error_overlay(pred, ref, *, image=None, channel_axis=None, alpha=0.6):
    """Colour true positives, false positives and false negatives.

    Parameters
    ----------
    pred, ref : array_like, 2-D
        Predicted and reference segmentations; nonzero means foreground.
    image : array_like, optional
        The image, shown in grey under the colours.
    channel_axis : int or None, optional
        Channel axis of ``image`` (channels are averaged for display).
    alpha : float, optional
        Opacity of the colours over the image, in [0, 1].

    Returns
    -------
    overlay : ndarray of uint8, shape (H, W, 3)
        An RGB picture; see :data:`ERROR_COLOURS`.

    Raises
    ------
    ShapeMismatchError
        If ``pred``, ``ref`` and the image's spatial shape differ.
    InvalidImageError
        If the arrays are not 2-D.

    Examples
    --------
    >>> import numpy as np
    >>> pred = np.array([[1, 1], [0, 0]])
    >>> ref = np.array([[1, 0], [1, 0]])
    >>> rgb = error_overlay(pred, ref)
    >>> rgb.shape, rgb.dtype
    ((2, 2, 3), dtype('uint8'))
    >>> tuple(int(v) for v in rgb[0, 0])  # true positive
    (0, 158, 115)
    >>> tuple(int(v) for v in rgb[1, 1])  # true negative, no image: black
    (0, 0, 0)
    """
    pred = check_image(pred, name="prediction", spatial_ndims=(2,)) != 0
    ref = check_image(ref, name="reference", spatial_ndims=(2,)) != 0
    check_same_shape(pred, ref)
    if not 0.0 <= alpha <= 1.0:
        raise InvalidImageError(f"alpha must be in [0, 1], got {alpha}.")
    if image is None:
        grey = np.zeros(pred.shape, dtype=np.float32)
        alpha = 1.0
    else:
        image = check_image(image, channel_axis=channel_axis, spatial_ndims=(2,))
        image_cl, _ = to_channel_last(image, channel_axis)
        check_same_shape(pred, image_cl[..., 0], names=("segmentation", "image"))
        grey = _grey_background(image, channel_axis)
    rgb = np.repeat(grey[..., np.newaxis], 3, axis=-1) * 255.0
    outcomes = {
        "true positive": pred & ref,
        "false positive": pred & ~ref,
        "false negative": ~pred & ref,
    }
    for name, where in outcomes.items():
        colour = np.asarray(ERROR_COLOURS[name], dtype=np.float64)
        rgb[where] = (1 - alpha) * rgb[where] + alpha * colour
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def plot_comparison(image, reference, segmentations, path, *, channel_axis=None,
                    scores=None, title=None):
    """Save a figure: the image, the reference, and each segmentation's errors.

    Parameters
    ----------
    image : array_like, 2-D (or 2-D with channels)
        The image.
    reference : array_like, 2-D
        Reference segmentation (nonzero = foreground; instance labels are fine).
    segmentations : dict of str to array_like
        Method name -> binary foreground mask.
    path : str or Path
        Where to save (PNG, PDF or SVG, by extension); written atomically.
    channel_axis : int or None, optional
        Channel axis of ``image``.
    scores : dict of str to float, optional
        Method name -> IoU, shown in the panel titles.
    title : str, optional
        Figure title.

    Returns
    -------
    path : Path
        The saved file.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> img = np.random.default_rng(0).random((32, 32))
    >>> ref = img > 0.5
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "fig.png"
    >>> plot_comparison(img, ref, {"threshold 0.6": img > 0.6}, out).exists()
    True
    """
    from pathlib import Path

    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    scores = scores or {}
    n_panels = 2 + len(segmentations)
    n_cols = n_panels if n_panels <= 5 else 4
    n_rows = -(-n_panels // n_cols)
    fig = Figure(figsize=(3.2 * n_cols, 3.4 * n_rows + 0.6), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False).ravel()
    image = check_image(image, channel_axis=channel_axis, spatial_ndims=(2,))
    axes[0].imshow(_grey_background(image, channel_axis), cmap="gray", vmin=0, vmax=1)
    axes[0].set_title("image")
    ref_mask = np.asarray(reference) != 0
    axes[1].imshow(ref_mask, cmap="gray", vmin=0, vmax=1)
    axes[1].set_title("reference")
    for ax, (name, seg) in zip(axes[2:], segmentations.items()):
        ax.imshow(error_overlay(seg, ref_mask, image=image, channel_axis=channel_axis))
        label = name if name not in scores else f"{name}\nIoU {scores[name]:.3f}"
        ax.set_title(label)
    for ax in axes:
        ax.set_axis_off()
    fig.legend(
        handles=[Patch(color=np.asarray(c) / 255, label=n) for n, c in ERROR_COLOURS.items()],
        loc="outside lower center", ncols=3, frameon=False,
    )
    if title:
        fig.suptitle(title)
    path = Path(path)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=110, format=path.suffix.lstrip(".") or "png")
    return path
