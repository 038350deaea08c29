"""Alias kept for code written before the subpackages: see :mod:`pixelforest.evaluate.metrics`."""

from pixelforest.evaluate.metrics import *  # noqa: F401,F403
from pixelforest.evaluate.metrics import __all__  # noqa: F401
