"""Alias kept for code written before the subpackages: see :mod:`pixelforest.classify.classifier`."""

from pixelforest.classify.classifier import *  # noqa: F401,F403
from pixelforest.classify.classifier import __all__  # noqa: F401
