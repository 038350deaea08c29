"""Alias kept for code written before the subpackages: see :mod:`pixelforest.preprocess.normalize`."""

from pixelforest.preprocess.normalize import *  # noqa: F401,F403
from pixelforest.preprocess.normalize import __all__  # noqa: F401
