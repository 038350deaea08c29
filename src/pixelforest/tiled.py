"""Alias kept for code written before the subpackages: see :mod:`pixelforest.scale.tiled`."""

from pixelforest.scale.tiled import *  # noqa: F401,F403
from pixelforest.scale.tiled import __all__  # noqa: F401
