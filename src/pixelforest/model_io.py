"""Alias kept for code written before the subpackages: see :mod:`pixelforest.io.model_file`."""

from pixelforest.io.model_file import *  # noqa: F401,F403
from pixelforest.io.model_file import __all__  # noqa: F401
