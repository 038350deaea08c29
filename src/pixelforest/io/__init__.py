"""Files in and out: images (:mod:`.images`) and safe model files (:mod:`.model_file`)."""

from pixelforest.io.images import (
    READ_EXTENSIONS,
    WRITE_EXTENSIONS,
    imread,
    imread_lazy,
    imwrite,
    read_metadata,
)

__all__ = ["READ_EXTENSIONS", "WRITE_EXTENSIONS", "imread", "imread_lazy", "imwrite",
           "read_metadata"]
