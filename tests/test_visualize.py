import numpy as np
import pytest

from pixelforest.errors import InvalidImageError, ShapeMismatchError
from pixelforest.evaluate.figures import ERROR_COLOURS, error_overlay, plot_comparison


def test_error_overlay_colours_each_outcome():
    pred = np.array([[1, 1, 0, 0]])
    ref = np.array([[1, 0, 1, 0]])
    rgb = error_overlay(pred, ref)
    assert tuple(rgb[0, 0]) == ERROR_COLOURS["true positive"]
    assert tuple(rgb[0, 1]) == ERROR_COLOURS["false positive"]
    assert tuple(rgb[0, 2]) == ERROR_COLOURS["false negative"]
    assert tuple(rgb[0, 3]) == (0, 0, 0)


def test_error_overlay_instance_labels_count_as_foreground():
    pred = np.array([[3, 0]])
    ref = np.array([[7, 7]])
    rgb = error_overlay(pred, ref)
    assert tuple(rgb[0, 0]) == ERROR_COLOURS["true positive"]
    assert tuple(rgb[0, 1]) == ERROR_COLOURS["false negative"]


def test_error_overlay_shows_image_under_true_negatives():
    image = np.array([[0.0, 10.0], [5.0, 10.0]])
    pred = ref = np.zeros((2, 2), dtype=bool)
    rgb = error_overlay(pred, ref, image=image)
    # true negatives show the (normalized) image in grey: R == G == B
    assert np.all(rgb[..., 0] == rgb[..., 1]) and np.all(rgb[..., 1] == rgb[..., 2])
    assert rgb[0, 0, 0] < rgb[1, 0, 0] < rgb[0, 1, 0]


def test_error_overlay_rgb_image_with_channel_axis():
    image = np.random.default_rng(0).integers(0, 255, (8, 9, 3), dtype=np.uint8)
    pred = np.zeros((8, 9), dtype=bool)
    assert error_overlay(pred, pred, image=image, channel_axis=-1).shape == (8, 9, 3)


def test_error_overlay_rejects_bad_input():
    with pytest.raises(ShapeMismatchError, match="shape"):
        error_overlay(np.zeros((3, 3)), np.zeros((3, 4)))
    with pytest.raises(ShapeMismatchError):
        error_overlay(np.zeros((3, 3)), np.zeros((3, 3)), image=np.zeros((4, 4)))
    with pytest.raises(InvalidImageError, match="2-D"):
        error_overlay(np.zeros(3), np.zeros(3))
    with pytest.raises(InvalidImageError, match="alpha"):
        error_overlay(np.zeros((2, 2)), np.zeros((2, 2)), alpha=2)


def test_plot_comparison_writes_a_png(tmp_path):
    rng = np.random.default_rng(1)
    image = rng.random((40, 50))
    ref = image > 0.5
    out = plot_comparison(image, ref, {"a": image > 0.6, "b": image > 0.4},
                          tmp_path / "figure.png", scores={"a": 0.5})
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # written atomically: no temporary files left beside it
    assert [p.name for p in tmp_path.iterdir()] == ["figure.png"]
