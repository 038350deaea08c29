"""The lesson's figure helpers: colour-blind-safe error colours, phone-sized text.

No browser needed: the colours of :func:`pixelforest.lesson.figures.error_overlay`
are compared after a simulation of deuteranopia, protanopia and tritanopia
(Machado et al. 2009), in CIEDE2000 colour differences.
"""

import itertools

import numpy as np
import pytest

from pixelforest.lesson import figures

#: Smallest colour difference (CIEDE2000) between two outcomes, or an outcome and
#: the darkened image; about 10 is "clearly different at a glance".
MIN_DELTA_E = 20


def _delta_e(a, b):
    from skimage.color import deltaE_ciede2000, rgb2lab

    lab = rgb2lab(np.array([[a, b]], dtype=np.uint8))
    return float(deltaE_ciede2000(lab[0, 0], lab[0, 1]))


def _palette():
    colours = dict(figures.ERROR_COLOURS)
    colours["image, darkest"] = (0, 0, 0)
    grey = figures.BACKGROUND_MAX
    colours["image, brightest"] = (grey, grey, grey)
    return colours


@pytest.mark.parametrize("vision", ["normal", "deuteranopia", "protanopia", "tritanopia"])
def test_error_colours_stay_apart(vision):
    colours = _palette()
    seen = {name: tuple(rgb) if vision == "normal"
            else tuple(figures.simulate_colour_vision(np.array(rgb, np.uint8), vision))
            for name, rgb in colours.items()}
    for a, b in itertools.combinations(seen, 2):
        if a.startswith("image") and b.startswith("image"):
            continue
        assert _delta_e(seen[a], seen[b]) >= MIN_DELTA_E, (vision, a, b, seen[a], seen[b])


def test_the_old_palette_fails_the_same_test():
    # the overlay of pixelforest.evaluate.figures (Okabe-Ito green, vermillion, sky
    # blue over the grey image) is what the issue found hard to tell apart
    green, blue = (0, 158, 115), (86, 180, 233)
    seen = figures.simulate_colour_vision(np.array([green, blue], np.uint8), "tritanopia")
    assert _delta_e(*seen) < MIN_DELTA_E


def test_simulation_is_the_identity_on_greys():
    greys = np.array([[0, 0, 0], [90, 90, 90], [255, 255, 255]], np.uint8)
    for kind in ("deuteranopia", "protanopia", "tritanopia"):
        assert np.abs(figures.simulate_colour_vision(greys, kind).astype(int)
                      - greys).max() <= 2


def test_overlay_colours_and_darkened_image():
    image = np.array([[0, 50, 100, 255]])
    rgb = figures.error_overlay(np.array([[1, 1, 0, 0]]), np.array([[1, 0, 1, 0]]), image)
    assert [tuple(map(int, px)) for px in rgb[0, :3]] == list(figures.ERROR_COLOURS.values())
    assert rgb[0, 3].max() <= figures.BACKGROUND_MAX
    with pytest.raises(ValueError, match="same shape"):
        figures.error_overlay(np.zeros((2, 2)), np.zeros((2, 3)))


def test_style_gives_phone_sized_text():
    import matplotlib as mpl

    with mpl.rc_context():
        figures.use_style()
        sizes = [mpl.rcParams[k] for k in ("font.size", "axes.titlesize", "axes.labelsize",
                                           "xtick.labelsize", "ytick.labelsize",
                                           "legend.fontsize")]
        from matplotlib.font_manager import FontProperties

        assert min(FontProperties(size=s).get_size_in_points()
                   for s in sizes) >= figures.MIN_FONT_PT
        width = mpl.rcParams["figure.figsize"][0]
    # a figure MAX_WIDTH_IN wide shown 340 CSS pixels wide (a 390-pixel phone) keeps
    # MIN_FONT_PT text at 12 pixels or more
    assert width <= figures.MAX_WIDTH_IN
    assert figures.MIN_FONT_PT / 72 * 340 / figures.MAX_WIDTH_IN >= 12


@pytest.mark.parametrize("vision", ["normal", "deuteranopia", "protanopia", "tritanopia"])
def test_instance_colours_stay_apart(vision):
    # the fills of touching nuclei, their black outline and the darkened image
    colours = {f"fill {k}": rgb for k, rgb in enumerate(figures.INSTANCE_COLOURS)}
    colours["outline, image darkest"] = (0, 0, 0)
    grey = figures.BACKGROUND_MAX
    colours["image, brightest"] = (grey, grey, grey)
    seen = {name: tuple(rgb) if vision == "normal"
            else tuple(figures.simulate_colour_vision(np.array(rgb, np.uint8), vision))
            for name, rgb in colours.items()}
    for a, b in itertools.combinations(seen, 2):
        if a.startswith(("outline", "image")) and b.startswith(("outline", "image")):
            continue
        assert _delta_e(seen[a], seen[b]) >= MIN_DELTA_E, (vision, a, b, seen[a], seen[b])


def _touching_pairs(labels):
    pairs = set()
    padded = np.pad(labels, 1)
    rows, cols = labels.shape
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            other = padded[1 + dy:1 + dy + rows, 1 + dx:1 + dx + cols]
            touching = (labels != other) & (labels > 0) & (other > 0)
            pairs |= set(zip(labels[touching].tolist(), other[touching].tolist()))
    return pairs


def test_touching_objects_get_different_colours():
    # a grid of touching squares (diagonals touch too) needs all four colours
    grid = np.kron(np.arange(1, 37).reshape(6, 6), np.ones((5, 5), int))
    colour = figures.instance_colours(grid)
    assert set(colour) == set(range(1, 37)) and set(colour.values()) == {0, 1, 2, 3}
    assert all(colour[a] != colour[b] for a, b in _touching_pairs(grid))
    # objects apart from each other share the colours out
    apart = np.zeros((20, 60), int)
    for k in range(8):
        apart[5:10, 2 + 7 * k:6 + 7 * k] = k + 1
    assert sorted(figures.instance_colours(apart).values()) == [0, 0, 1, 1, 2, 2, 3, 3]


def test_instance_overlay_fills_outlines_and_background():
    labels = np.zeros((12, 20), int)
    labels[2:10, 2:9], labels[2:10, 9:16] = 1, 2  # two touching nuclei
    image = np.linspace(0, 255, labels.size).reshape(labels.shape)
    rgb = figures.instance_overlay(labels, image)
    palette = [tuple(c) for c in figures.INSTANCE_COLOURS]
    inside_1, inside_2 = tuple(map(int, rgb[5, 5])), tuple(map(int, rgb[5, 12]))
    assert inside_1 in palette and inside_2 in palette and inside_1 != inside_2
    # a black line where they touch, on both sides, and around each
    assert not rgb[5, 8].any() and not rgb[5, 9].any() and not rgb[2, 5].any()
    assert rgb[labels == 0].max() <= figures.BACKGROUND_MAX
    assert rgb[0, -1].max() > rgb[0, 0].max()  # the image shows through, darkened
    with pytest.raises(ValueError, match="same shape"):
        figures.instance_overlay(labels, image[:5])
