"""Figures of the lesson, readable on a phone and by colour-blind readers.

* :func:`use_style` sets matplotlib so that every lesson figure is at most
  :data:`MAX_WIDTH_IN` inches wide with text of at least :data:`MIN_FONT_PT`
  points.  A figure shown at the width of a phone's screen (about 340 CSS
  pixels of a 390-pixel-wide viewport) then keeps its text at 12 pixels or
  more; the browser test of the lesson checks that on the built page.
* :func:`error_overlay` colours true positives, false positives and false
  negatives with :data:`ERROR_COLOURS` over a darkened image.  The colours
  differ by lightness as well as hue, so they stay apart under the common
  colour-vision deficiencies; :func:`simulate_colour_vision` (Machado et al.
  2009, severity 1) is what the tests use to check that.
* :func:`instance_overlay` fills each object of an instance label image
  with one of :data:`INSTANCE_COLOURS` (touching objects always differ when
  four colours allow it) and draws a black outline around each, so that
  touching nuclei stay apart by shape as well as by colour.
"""

import numpy as np

__all__ = [
    "MIN_FONT_PT",
    "MAX_WIDTH_IN",
    "DPI",
    "ERROR_COLOURS",
    "INSTANCE_COLOURS",
    "use_style",
    "error_overlay",
    "error_legend",
    "instance_colours",
    "instance_overlay",
    "show_images",
    "simulate_colour_vision",
]

#: The smallest text size (points) of the lesson's figures.
MIN_FONT_PT = 14
#: The widest lesson figure (inches).
MAX_WIDTH_IN = 5.2
#: Resolution of the figures in the page (pixels per inch).
DPI = 100

#: RGB colour (uint8) of each outcome in :func:`error_overlay`: white, orange
#: and blue, which differ in lightness and stay apart for deuteranopia,
#: protanopia and tritanopia (see the lesson's tests).
ERROR_COLOURS = {
    "found (true positive)": (255, 255, 255),
    "extra (false positive)": (230, 159, 0),
    "missed (false negative)": (0, 114, 178),
}

#: Fill colours (uint8 RGB) of :func:`instance_overlay`: Okabe-Ito sky blue,
#: yellow and vermillion and a darker blue, chosen so that every two of them,
#: the black outline and the darkened image stay apart for deuteranopia,
#: protanopia and tritanopia (see the lesson's tests).
INSTANCE_COLOURS = ((86, 180, 233), (240, 228, 66), (0, 100, 200), (213, 94, 0))

#: True negatives show the image darkened to at most this grey level (0-255),
#: so that no image pixel looks like one of the colours.
BACKGROUND_MAX = 90


def use_style():
    """Set matplotlib's defaults for the lesson's figures (size, fonts, resolution)."""
    import matplotlib as mpl

    mpl.rcParams.update({
        "figure.dpi": DPI,
        "savefig.dpi": DPI,
        "figure.figsize": (MAX_WIDTH_IN, 3.4),
        "font.size": MIN_FONT_PT,
        "axes.titlesize": MIN_FONT_PT,
        "axes.labelsize": MIN_FONT_PT,
        "xtick.labelsize": MIN_FONT_PT,
        "ytick.labelsize": MIN_FONT_PT,
        "legend.fontsize": MIN_FONT_PT,
        "figure.titlesize": MIN_FONT_PT + 1,
        "image.interpolation": "nearest",
    })


def error_overlay(prediction, reference, image=None):
    """Return an RGB picture of where ``prediction`` agrees with ``reference``.

    Parameters
    ----------
    prediction, reference : array_like, 2-D
        Masks; nonzero is foreground.
    image : array_like, 2-D, optional
        Shown darkened (at most :data:`BACKGROUND_MAX`) where both masks are
        background.

    Returns
    -------
    ndarray of uint8, shape (rows, columns, 3)

    Examples
    --------
    >>> import numpy as np
    >>> rgb = error_overlay(np.array([[1, 1, 0]]), np.array([[1, 0, 1]]))
    >>> [tuple(int(v) for v in px) for px in rgb[0]]
    [(255, 255, 255), (230, 159, 0), (0, 114, 178)]
    """
    pred = np.asarray(prediction) != 0
    ref = np.asarray(reference) != 0
    if pred.shape != ref.shape or pred.ndim != 2:
        raise ValueError(f"prediction {pred.shape} and reference {ref.shape} must be two "
                         "2-D masks of the same shape")
    if image is None:
        grey = np.zeros(pred.shape)
    else:
        img = np.asarray(image, dtype=np.float64)
        low, high = np.percentile(img, (0.5, 99.5))
        grey = np.clip((img - low) / (high - low if high > low else 1), 0, 1)
    rgb = np.repeat((grey * BACKGROUND_MAX)[..., np.newaxis], 3, axis=-1).astype(np.uint8)
    tp, fp, fn = ERROR_COLOURS.values()
    rgb[pred & ref] = tp
    rgb[pred & ~ref] = fp
    rgb[~pred & ref] = fn
    return rgb


def _grey(image, shape):
    """``image`` scaled to [0, 1] by its 0.5 and 99.5 percentiles (zeros without one)."""
    if image is None:
        return np.zeros(shape)
    img = np.asarray(image, dtype=np.float64)
    if img.shape != shape:
        raise ValueError(f"image {img.shape} and labels {shape} must have the same shape")
    low, high = np.percentile(img, (0.5, 99.5))
    return np.clip((img - low) / (high - low if high > low else 1), 0, 1)


def instance_colours(labels):
    """Colour index (into :data:`INSTANCE_COLOURS`) of each object of ``labels``.

    Objects are coloured in label order.  An object that touches others
    (8-connected) takes the first colour none of its coloured neighbours
    has (first fit, which colours a grid of touching squares with four
    colours), or, if all are taken, the one fewest of them have; an object
    that touches none takes the least used colour, for variety.

    Returns
    -------
    dict of int to int
        Label value -> colour index.
    """
    labels = np.asarray(labels)
    n_colours = len(INSTANCE_COLOURS)
    neighbours = {}
    padded = np.pad(labels, 1)
    rows, cols = labels.shape
    # pairs of different objects one pixel apart: right, down and both diagonals
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        other = padded[1 + dy:1 + dy + rows, 1 + dx:1 + dx + cols]
        touching = (labels != other) & (labels > 0) & (other > 0)
        for u, v in set(zip(labels[touching].tolist(), other[touching].tolist())):
            neighbours.setdefault(u, set()).add(v)
            neighbours.setdefault(v, set()).add(u)
    colour, used = {}, [0] * n_colours
    for value in np.unique(labels[labels > 0]).tolist():
        taken = [0] * n_colours
        for other in neighbours.get(value, ()):
            if other in colour:
                taken[colour[other]] += 1
        free = [c for c in range(n_colours) if not taken[c]]
        if not neighbours.get(value):
            pick = min(range(n_colours), key=lambda c: (used[c], c))
        elif free:
            pick = free[0]
        else:
            pick = min(range(n_colours), key=lambda c: (taken[c], c))
        colour[value] = pick
        used[pick] += 1
    return colour


def instance_overlay(labels, image=None):
    """Return an RGB picture of instance ``labels``, one filled colour per object.

    Parameters
    ----------
    labels : array_like of int, 2-D
        0 = background, 1..N = objects.
    image : array_like, 2-D, optional
        Shown darkened (at most :data:`BACKGROUND_MAX`) in the background.

    Returns
    -------
    ndarray of uint8, shape (rows, columns, 3)
        Objects filled with :data:`INSTANCE_COLOURS` (touching objects in
        different colours, see :func:`instance_colours`), each outlined in
        black (its own pixels next to another label or the background).

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.array([[1, 1, 2, 2, 0]])
    >>> instance_colours(labels)  # touching objects, different colours
    {1: 0, 2: 1}
    >>> rgb = instance_overlay(labels)
    >>> rgb.shape, [int(v) for v in rgb[0, 4]]  # the background, without an image
    ((1, 5, 3), [0, 0, 0])
    """
    from skimage.segmentation import find_boundaries

    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be a 2-D label image, got shape {labels.shape}")
    grey = _grey(image, labels.shape)
    rgb = np.repeat((grey * BACKGROUND_MAX)[..., np.newaxis], 3, axis=-1).astype(np.uint8)
    palette = np.asarray(INSTANCE_COLOURS, dtype=np.uint8)
    colour = instance_colours(labels)
    if colour:
        lut = np.zeros(int(labels.max()) + 1, dtype=np.intp)
        for value, c in colour.items():
            lut[value] = c
        objects = labels > 0
        rgb[objects] = palette[lut[labels[objects]]]
        rgb[find_boundaries(labels, connectivity=1, mode="inner") & objects] = 0
    return rgb


def error_legend(fig, *, ncol=1, **kwargs):
    """Add the legend of :func:`error_overlay`'s colours below ``fig``'s axes."""
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=np.array(rgb) / 255, edgecolor="0.3", label=name)
               for name, rgb in ERROR_COLOURS.items()]
    return fig.legend(handles=handles, loc="lower center", ncol=ncol, frameon=False, **kwargs)


def show_images(images, titles, *, ncols=2, cmap="gray", height=2.6):
    """Show ``images`` in a grid at most :data:`MAX_WIDTH_IN` wide; return the figure."""
    import matplotlib.pyplot as plt

    n = len(images)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(MAX_WIDTH_IN, height * nrows),
                             squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, img, title in zip(axes.flat, images, titles):
        ax.imshow(img, cmap=None if np.asarray(img).ndim == 3 else cmap)
        ax.set_title(title)
    fig.tight_layout()
    return fig


#: Machado, Oliveira & Fernandes (2009) matrices, severity 1, on linear RGB.
_MACHADO = {
    "deuteranopia": ((0.367322, 0.860646, -0.227968), (0.280085, 0.672501, 0.047413),
                     (-0.011820, 0.042940, 0.968881)),
    "protanopia": ((0.152286, 1.052583, -0.204868), (0.114503, 0.786281, 0.099216),
                   (-0.003882, -0.048116, 1.051998)),
    "tritanopia": ((1.255528, -0.076749, -0.178779), (-0.078411, 0.930809, 0.147602),
                   (0.004733, 0.691367, 0.303900)),
}


def simulate_colour_vision(rgb, kind):
    """Return ``rgb`` (uint8, ``(..., 3)``) as seen with ``kind`` of colour blindness.

    ``kind`` is ``"deuteranopia"``, ``"protanopia"`` or ``"tritanopia"``.
    """
    c = np.asarray(rgb, dtype=np.float64) / 255
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    seen = np.clip(linear @ np.asarray(_MACHADO[kind]).T, 0, 1)
    srgb = np.where(seen <= 0.0031308, 12.92 * seen, 1.055 * seen ** (1 / 2.4) - 0.055)
    return np.round(srgb * 255).astype(np.uint8)
