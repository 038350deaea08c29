"""Atomic outputs: write to a temporary sibling, then rename into place.

A reader never sees a half-written file or Zarr store, and an interrupted
write (error, Ctrl-C) leaves nothing behind but what was there before.
"""

import contextlib
import os
import shutil
import uuid
from pathlib import Path

from pixelforest.errors import OutputExistsError

__all__ = ["atomic_output", "check_not_input"]


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
    the same suffix (so format detection by extension still works), and
    starts with ``.`` so that batch tools ignore it.  On any exception,
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
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.tmp{''.join(path.suffixes)}")
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"nothing was written to the temporary file {tmp}")
        if path.is_dir() and not path.is_symlink():
            # directories (Zarr stores) cannot be replaced by one rename:
            # move the old one aside first, then drop it.
            trash = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.old")
            os.replace(path, trash)
            os.replace(tmp, path)
            _remove(trash)
        else:
            os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise
