"""One way to read a file that leaves the machine or is trusted: a regular file, not a symlink, read once.

Why: a release folder is the user's, and what ``push`` sends to the Hub must be exactly what it checked. A symlink
named ``results.csv`` would upload whatever it points at (a key file, say); a FIFO named ``README.md`` would block the
upload forever; a file swapped between the sha256 check and the upload would put other bytes under a pinned
commit. So the bytes are read once, through a descriptor opened without following a symlink and without blocking,
after ``fstat`` shows a regular file of a known size, and those same bytes are hashed and sent.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFDIR: "a folder",
}


def read_regular_file(path: str | Path, *, max_bytes: int | None = None) -> bytes:
    """The bytes of ``path`` if it is a regular file (not a symlink, FIFO, device or folder) of at most
    ``max_bytes``.

    Raises:
        FileExistsError: ``path`` is a symlink or not a regular file, or is larger than ``max_bytes`` (the message
            names it and what to do). FileNotFoundError: it does not exist.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        if os.path.islink(path):
            raise FileExistsError(
                f"{path} is a symlink: only regular files are read here; put the file itself in its place"
            ) from None
        raise e
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = KINDS.get(stat.S_IFMT(st.st_mode), "not a regular file")
            raise FileExistsError(
                f"{path} is {kind}: only regular files are read here; put a file in its place"
            )
        if max_bytes is not None and st.st_size > max_bytes:
            raise FileExistsError(f"{path} holds {st.st_size} bytes, over the limit of {max_bytes}")
        chunks, left = [], st.st_size
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 24))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)
