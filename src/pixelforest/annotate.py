"""Alias kept for code written before the subpackages: see :mod:`pixelforest.classify.scribbles`."""

from pixelforest.classify.scribbles import *  # noqa: F401,F403
from pixelforest.classify.scribbles import __all__  # noqa: F401
