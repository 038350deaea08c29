"""SIGTERM and SIGHUP handled like Ctrl-C, for the duration of a batch.

SLURM, ``kill`` and a closed terminal stop a process with SIGTERM or SIGHUP,
whose default action ends it at once: no ``finally`` runs, so temporary
outputs stay behind.  Within :func:`signals_as_interrupt` these signals
raise :class:`~pixelforest.errors.Interrupted` (a ``KeyboardInterrupt``)
in the main thread instead, so that they take exactly the clean-up path of
Ctrl-C.
"""

import contextlib
import signal
import threading

from pixelforest.errors import Interrupted

__all__ = ["STOP_SIGNALS", "signals_as_interrupt"]

#: The signals turned into an interruption (those this platform has).
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP")
                     if hasattr(signal, name))


@contextlib.contextmanager
def signals_as_interrupt(signums=STOP_SIGNALS):
    """Within this context, ``signums`` raise :class:`~pixelforest.errors.Interrupted`.

    Only in the main thread (elsewhere Python cannot install handlers, and
    the context does nothing).  A signal that was ignored (``nohup`` ignores
    SIGHUP) stays ignored.  The first signal raises; later ones are ignored
    while the clean-up runs.  The previous handlers are restored on exit.

    Examples
    --------
    >>> import signal
    >>> before = signal.getsignal(signal.SIGTERM)
    >>> with signals_as_interrupt():
    ...     signal.getsignal(signal.SIGTERM) is before
    False
    >>> signal.getsignal(signal.SIGTERM) is before
    True
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired = []

    def handler(signum, frame):
        if fired:  # already stopping: let the clean-up finish
            return
        fired.append(signum)
        raise Interrupted(signum)

    previous = {}
    try:
        for signum in signums:
            old = signal.getsignal(signum)
            if old is signal.SIG_IGN:
                continue
            previous[signum] = old
            signal.signal(signum, handler)
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old if old is not None else signal.SIG_DFL)
