"""Alias kept for code written before the subpackages: see :mod:`pixelforest.segment.unsupervised`."""

from pixelforest.segment.unsupervised import *  # noqa: F401,F403
from pixelforest.segment.unsupervised import __all__  # noqa: F401
