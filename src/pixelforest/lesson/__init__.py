"""The lesson's exercise checkers (:mod:`.checkers`)."""

from pixelforest.lesson.checkers import *  # noqa: F401,F403
from pixelforest.lesson.checkers import __all__  # noqa: F401
