"""Alias kept for code written before the subpackages: see :mod:`pixelforest.evaluate.figures`."""

from pixelforest.evaluate.figures import *  # noqa: F401,F403
from pixelforest.evaluate.figures import __all__  # noqa: F401
