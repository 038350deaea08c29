"""The napari plugin: paint scribbles, watch the segmentation follow, live.

Install with ``pip install "pixelforest[napari]"``; napari then lists the
dock widget "Pixel classifier" under *Plugins*.  From Python::

    import napari
    from pixelforest.napari import PixelClassifierWidget

    viewer = napari.Viewer()
    viewer.add_image(image)
    widget = PixelClassifierWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Pixel classifier")

Modules: :mod:`pixelforest.napari.live` (the training and prediction engine,
no Qt), ``_widget`` (the dock widget) and ``_sample_data`` (sample images
for napari's *File > Open Sample*).  ``import pixelforest.napari`` does not
import napari or Qt; :class:`PixelClassifierWidget` does, when first used.
"""

__all__ = ["PixelClassifierWidget"]


def __getattr__(name):
    if name == "PixelClassifierWidget":
        from pixelforest.napari._widget import PixelClassifierWidget

        return PixelClassifierWidget
    raise AttributeError(f"module 'pixelforest.napari' has no attribute {name!r}")
