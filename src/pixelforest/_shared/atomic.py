"""Atomic outputs: write to a temporary sibling, then rename into place.

A reader never sees a half-written file or Zarr store, and an interrupted
write (error, Ctrl-C, SIGTERM) leaves nothing behind but what was there
before.  A process killed outright (SIGKILL, power loss) cannot clean up, so
every temporary name says who made it: ``.NAME.pf<pid>-<host>-<random>.tmp<ext>``
(``<host>``: 8 hex digits of the host name).  :func:`remove_stale_temporaries`
removes those of processes that are no longer alive on this host (and,
after :data:`STALE_AGE` seconds untouched, those of other hosts and of
earlier pixelforest versions), so that re-running an interrupted batch
leaves a clean folder.
"""

import contextlib
import hashlib
import os
import re
import shutil
import socket
import time
import uuid
from pathlib import Path

from pixelforest.errors import OutputExistsError

__all__ = ["STALE_AGE", "atomic_output", "check_not_input", "remove_stale_temporaries"]

#: Seconds after which a temporary left by another host (whose processes this
#: one cannot see) or by an earlier version counts as abandoned.
STALE_AGE = 12 * 3600

#: ``.NAME.pf<pid>-<host>-<random>.tmp...`` or ``.NAME.pf<pid>-<host>-<random>.old``.
_TEMPORARY = re.compile(r"^\..+\.pf(?P<pid>\d+)-(?P<host>[0-9a-f]{8})-[0-9a-f]{8}"
                        r"\.(?:tmp(?:\..*)?|old)$")

#: The names of earlier versions: ``.NAME.<8 hex>.tmp...`` or ``.NAME.<8 hex>.old``.
_OLD_TEMPORARY = re.compile(r"^\..+\.[0-9a-f]{8}\.(?:tmp(?:\..*)?|old)$")


def _host():
    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]


def _tag():
    """Who writes: ``pf<pid>-<host>-<random>``."""
    return f"pf{os.getpid()}-{_host()}-{uuid.uuid4().hex[:8]}"


def _pid_alive(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except OSError:  # e.g. another user's process: alive
        return True
    return True


def _last_modified(path):
    """Newest modification time in ``path`` (a file, or a directory tree)."""
    newest = path.lstat().st_mtime
    if path.is_dir() and not path.is_symlink():
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                with contextlib.suppress(OSError):
                    newest = max(newest, os.lstat(os.path.join(root, name)).st_mtime)
    return newest


def remove_stale_temporaries(folder, *, max_age=STALE_AGE):
    """Remove the temporaries of :func:`atomic_output` that nobody will finish.

    A temporary of a process of this host that is no longer alive is
    removed; one of another host, or named by an earlier pixelforest, once
    nothing in it changed for ``max_age`` seconds.  Temporaries of running
    processes are kept.

    Parameters
    ----------
    folder : str or Path
        Where to look (not recursive); a missing folder holds nothing.
    max_age : float, optional
        Seconds without change after which a temporary whose writer cannot
        be checked is abandoned.

    Returns
    -------
    removed : list of Path
        What was removed.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> import os
    >>> old = d / ".a.0123abcd.tmp.tif"      # an earlier version's, untouched for long
    >>> _ = old.write_bytes(b""); os.utime(old, (0, 0))
    >>> _ = (d / "a.tif").write_bytes(b"")
    >>> [p.name for p in remove_stale_temporaries(d)], sorted(p.name for p in d.iterdir())
    (['.a.0123abcd.tmp.tif'], ['a.tif'])
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    host, now, removed = _host(), time.time(), []
    for path in sorted(folder.iterdir()):
        match = _TEMPORARY.match(path.name)
        try:
            if match and match["host"] == host:
                stale = not _pid_alive(int(match["pid"]))
            elif match or _OLD_TEMPORARY.match(path.name):
                stale = now - _last_modified(path) > max_age
            else:
                continue
        except OSError:  # removed meanwhile
            continue
        if stale:
            _remove(path)
            removed.append(path)
    return removed


def _remove(path):
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def check_not_input(output, inputs):
    """Raise :class:`OutputExistsError` if ``output`` is one of ``inputs``."""
    out = Path(output).resolve()
    for inp in inputs:
        if inp is not None and Path(inp).resolve() == out:
            raise OutputExistsError(
                f"refusing to overwrite the input {inp}; choose another output path."
            )


@contextlib.contextmanager
def atomic_output(path, *, overwrite=True):
    """Yield a temporary path that is renamed to ``path`` on success.

    The temporary path lives in the same directory (same file system), has
    the same suffix (so format detection by extension still works), starts
    with ``.`` so that batch tools ignore it, and names this process and
    host (see :func:`remove_stale_temporaries`).  On any exception,
    including ``KeyboardInterrupt``, it is removed and ``path`` is untouched.

    Parameters
    ----------
    path : str or Path
        Final destination (a file or a directory such as a Zarr store).
    overwrite : bool, optional
        Replace an existing ``path``.  If False and ``path`` exists,
        :class:`~pixelforest.errors.OutputExistsError` is raised before
        anything is written.

    Yields
    ------
    tmp : Path
        Where to write.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_output(d / "result.txt") as tmp:
    ...     _ = tmp.write_text("done")
    >>> (d / "result.txt").read_text()
    'done'
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(
            f"{path} already exists; pass overwrite=True (CLI: --overwrite) to replace it."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{_tag()}.tmp{''.join(path.suffixes)}")
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"nothing was written to the temporary file {tmp}")
        if path.is_dir() and not path.is_symlink():
            # directories (Zarr stores) cannot be replaced by one rename:
            # move the old one aside first, then drop it.
            trash = path.with_name(f".{path.name}.{_tag()}.old")
            os.replace(path, trash)
            os.replace(tmp, path)
            _remove(trash)
        else:
            os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise
