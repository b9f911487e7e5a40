"""Writing files so that readers and crashes see the old file or the new one, never half of one.

The bottom layer: nothing from driftwatch is imported here, so every module (engine, store,
report, orchestration) can use it.
"""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_write", "atomic_write_bytes", "escaped", "file_hash", "shown"]

_DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def shown(path: str | os.PathLike[str]) -> str:
    """A file name as it goes into a message, a log line or a table: verbatim when every
    character is printable, else ``repr``-quoted, so that a landing file named
    ``"x\nERROR fake line.csv"`` (Linux allows any byte but "/" and NUL) or one with terminal
    escapes cannot forge a line or recolour a terminal; the quotes keep it unambiguous."""
    text = os.fspath(path)
    return text if text.isprintable() else repr(text)


def escaped(text: str) -> str:
    """Free text (an error message that may quote a file name): one line, every non-printable
    character as its Python escape (``\n``, ``\x1b``, ``\u2028``)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def atomic_write(path: str | os.PathLike[str], writer: Callable[[Path], object]) -> Path:
    """``writer(tmp)`` writes the whole file at ``tmp`` (for writers that want a path, like
    ``DataFrame.to_parquet``); then the file is fsynced, renamed over ``path`` and the directory
    fsynced, so after a crash or power loss ``path`` is the old file or the complete new one.

    A full disk raises ``OSError`` "disk full: cannot write <path>" and leaves no temp file.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
    except OSError as exc:
        _raise_if_disk_full(exc, path)
        raise
    tmp = Path(name)
    try:
        writer(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a written file gets the usual mode
        _fsync(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        _raise_if_disk_full(exc, path)
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and durably (see :func:`atomic_write`)."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def file_hash(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """The file's sha256, read in chunks (reference and batch files can be large)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable. Some filesystems cannot fsync a directory (EINVAL):
    the rename is still atomic there, only not yet on disk."""
    try:
        _fsync(directory)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EACCES):
            raise


def _raise_if_disk_full(exc: OSError, path: Path) -> None:
    """A full disk is named as such, with the file that could not be written."""
    # pyarrow reports a full disk as an OSError without errno, in its message only.
    if exc.errno in _DISK_FULL or "No space left on device" in str(exc):
        raise OSError(
            exc.errno or errno.ENOSPC, f"disk full: cannot write {path} ({exc.strerror or exc})"
        ) from exc


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
