"""Files in and out: images (:mod:`.images`), microscope files through bioio
(:mod:`.formats`, the ``formats`` extra), OME-Zarr labels (:mod:`.ngff`) and
safe model files (:mod:`.model_file`).

Optional packages (bioio and its plugins, ome-zarr) are imported only when a
file needs them, so ``import pixelforest.io`` works without the extras.
"""

from pixelforest.io.formats import read_bioio
from pixelforest.io.images import (
    READ_EXTENSIONS,
    WRITE_EXTENSIONS,
    imread,
    imread_lazy,
    imwrite,
    read_metadata,
)
from pixelforest.io.ngff import read_ome_zarr_labels, write_ome_zarr_labels

__all__ = ["READ_EXTENSIONS", "WRITE_EXTENSIONS", "imread", "imread_lazy", "imwrite",
           "read_bioio", "read_metadata", "read_ome_zarr_labels", "write_ome_zarr_labels"]
