"""Alias kept for code written before the subpackages: see :mod:`pixelforest.scale.batch`."""

from pixelforest.scale.batch import *  # noqa: F401,F403
from pixelforest.scale.batch import __all__  # noqa: F401
