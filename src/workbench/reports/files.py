"""Reading and writing the files of runs, batches and the index: one clear
error for a file that cannot be read or written, and nothing half-written.

:func:`write_text` writes to a hidden ``.<name>.<pid>.part`` file beside the
target and renames it into place; if the write fails (a full disk, no
permission) the part file is removed and a :class:`ReportError` says what,
where and what to do. :func:`read_text` turns a missing file, a folder, or a
file that is not UTF-8 into one clear error of the caller's class.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from workbench.reports.errors import ReportError

#: the low-level write (a module attribute, so tests can simulate a full disk)
_write = os.write


def _why(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "no space left on the disk: free some space and run again"
    if exc.errno == errno.EDQUOT:
        return "disk quota exceeded: free some space and run again"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied: check who owns the folder"
    if exc.errno == errno.EROFS:
        return "the file system is read-only"
    return exc.strerror or str(exc)


def write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` all at once (via a part file and a rename)."""
    path = Path(path)
    part = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            while view:
                n = _write(fd, view)
                view = view[n:]
        finally:
            os.close(fd)
        os.replace(part, path)
    except OSError as exc:
        try:
            part.unlink()
        except OSError:
            pass
        raise ReportError(f"cannot write {path}: {_why(exc)}") from None
    return path


def write_text(path, text: str) -> Path:
    """Write UTF-8 text to ``path`` all at once (see :func:`write_bytes`)."""
    return write_bytes(path, text.encode("utf-8"))


def read_text(path, what: str, error: type[Exception] = ReportError) -> str:
    """The UTF-8 text of ``path``; ``error`` naming ``what`` it is if it cannot be read."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise error(f"{what} {path} is a folder, not a file: give the file itself") from None
    except UnicodeDecodeError as exc:
        raise error(f"{what} {path} is not UTF-8 text (byte {exc.start} is 0x{exc.object[exc.start]:02x}): save it as UTF-8") from None
    except OSError as exc:
        raise error(f"{what} {path} cannot be read: {_why(exc)}") from None


__all__ = ["read_text", "write_bytes", "write_text"]
