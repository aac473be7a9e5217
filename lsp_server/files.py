"""Reading a file that a setting names, without trusting what it is.

A settings file or an init option can name any path: a FIFO (opening it for reading blocks until
a writer appears, i.e. forever), `/dev/zero` (reading never ends) or a multi-GB file. Each is
opened without blocking, must be a regular file, and is read only up to a bound.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


class FileRefused(Exception):
    """The path is not a regular file of acceptable size; the message names it and says why."""


def read_bounded(path: Path | str, max_bytes: int, what: str = "file") -> bytes:
    """The bytes of the regular file at `path` (symlinks followed), at most `max_bytes`.

    Raises FileNotFoundError when it does not exist, FileRefused when it is not a regular file or
    is too large, OSError for other failures.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)  # O_NONBLOCK: a FIFO opens at once instead of waiting for a writer
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise FileRefused(f"{path}: not a regular file (a {what} must be one)")
        if st.st_size > max_bytes:
            raise FileRefused(f"{path}: {st.st_size} bytes; a {what} may have at most "
                              f"{max_bytes} bytes")
        chunks: list[bytes] = []
        size = 0
        while size <= max_bytes:  # the file may grow while we read
            chunk = os.read(fd, min(1 << 16, max_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > max_bytes:
            raise FileRefused(f"{path}: grew past {max_bytes} bytes while being read")
        return b"".join(chunks)
    finally:
        os.close(fd)
