"""Atomic, locked file writes: the one place the package writes files that others read or that two processes share.

Why: a reader must never see half a file (a kill or a full disk mid-write leaves the old file intact), two writers
must not lose each other's updates (read-modify-write under one lock), and temporary files must be unique (two
writers with one fixed temp name overwrite each other's) and never left behind.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import fcntl
import io
import os
import shutil
import signal
import stat
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "check_writable_target",
    "file_lock",
    "writer_errors_as_os_errors",
]


@contextlib.contextmanager
def writer_errors_as_os_errors(path: str | Path, *, partial: str | Path | None = None) -> Iterator[None]:
    """Raise the OSError a full disk really is when a serializer reports it in its own words, and remove
    ``partial`` (a half-written file or folder) when the write fails with an OSError.

    Why: torch's zip writer says ``unexpected pos 70912 vs 70800`` (a RuntimeError) and safetensors a
    ``SafetensorError`` when the disk fills mid-write; neither names the disk, so the CLI cannot say "free space".
    Errors not about writing pass through unchanged.
    """
    from safetensors import SafetensorError

    try:
        try:
            yield
        except (RuntimeError, SafetensorError) as e:
            text = str(e)
            torch_writer = "unexpected pos" in text or "PytorchStreamWriter failed" in text
            if not (torch_writer or isinstance(e, SafetensorError)):
                raise
            target = Path(path)
            while not target.exists() and target != target.parent:
                target = target.parent
            no_space = "No space left" in text or (torch_writer and shutil.disk_usage(target).free < 1 << 20)
            if torch_writer and not no_space:
                raise
            raise OSError(
                errno.ENOSPC if no_space else errno.EIO,
                "No space left on device" if no_space else text,
                str(path),
            ) from e
    except OSError:
        if partial is not None:  # it would only hold the space
            if Path(partial).is_dir():
                shutil.rmtree(partial, ignore_errors=True)
            else:
                Path(partial).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_writable_target(path: str | Path) -> os.stat_result | None:
    """The ``lstat`` of an existing regular file at ``path``, None when nothing is there; refuses anything else.

    Why: an atomic write replaces what is at the path. A symlink would be detached (its target never updated), and
    a device, FIFO or socket (``--results-csv /dev/null``) would be replaced by a regular file.

    Raises:
        FileExistsError: ``path`` is a symlink or not a regular file (the message says which and what to do).
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        raise FileExistsError(
            f"{path} is a symbolic link: refusing to replace it (the link would be cut and its target left stale); "
            "name the file it points to, or another path"
        )
    if not stat.S_ISREG(st.st_mode):
        raise FileExistsError(
            f"{path} is not a regular file (a device, FIFO, socket or folder): refusing to replace it; name a regular "
            "file or a new path"
        )
    return st


def atomic_write_bytes(path: str | Path, data: bytes, *, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` through a unique temp file in the same folder: fsync, then ``os.replace``.

    An existing file keeps its permission bits and group (a shared registry stays group-writable); a new one gets
    ``mode``, by default the umask's (as ``open`` would). Only a regular file (or nothing) may be at ``path``
    (:func:`check_writable_target`)."""
    path = Path(path)
    existing = check_writable_target(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if existing is not None:
            os.chmod(tmp, stat.S_IMODE(existing.st_mode))
            with contextlib.suppress(PermissionError):  # the group is kept where the user may set it
                os.chown(tmp, -1, existing.st_gid)
        else:
            os.chmod(tmp, mode if mode is not None else 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | Path, text: str, *, mode: int | None = None) -> None:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"), mode=mode)


@contextlib.contextmanager
def file_lock(path: str | Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``PATH.lock`` for a read-modify-write of ``path`` (held until the block ends; the
    kernel releases it if the process dies)."""
    lock_path = Path(path).with_name(Path(path).name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def append_csv_rows(
    path: str | Path,
    rows: list[dict[str, Any]],
    *,
    columns: Sequence[str],
    check: Callable[[Path], None] | None = None,
) -> None:
    """Append ``rows`` to the CSV file ``path`` (its header written first when the file is new or empty) under
    :func:`file_lock`, rewriting the file atomically: a kill never leaves half a row, two writers never lose one.

    Why the whole file is rewritten: appending in place is not atomic. The existing bytes are kept as they are (a
    user's file is never reformatted); only the new rows are formatted, in ``columns`` order (missing keys empty).

    Args:
        check: called on ``path`` under the lock before anything is written, e.g. to refuse a file whose header is
            not ``columns``.
    """
    path = Path(path)
    with file_lock(path):
        if check is not None:
            check(path)
        old = path.read_text() if path.is_file() else ""
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\n", extrasaction="ignore")
        if not old:
            writer.writeheader()
        writer.writerows([{k: row.get(k, "") for k in columns} for row in rows])
        atomic_write_text(path, old + out.getvalue())


def fault_point(name: str) -> None:
    """A named point where the fault-injection tests kill the process (``FIXNORM_ZOO_KILL_AT=name``, SIGKILL: no
    cleanup runs, as with a power cut or the OOM killer). A no-op unless that variable names this point."""
    if os.environ.get("FIXNORM_ZOO_KILL_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
    # a signal instead, as a cluster sends it (FIXNORM_ZOO_SIGNAL_AT=name, FIXNORM_ZOO_SIGNAL=SIGTERM), to one rank
    # only when FIXNORM_ZOO_SIGNAL_RANK is set (the others must still stop at the same step)
    if os.environ.get("FIXNORM_ZOO_SIGNAL_AT") == name and os.environ.get(
        "FIXNORM_ZOO_SIGNAL_RANK", os.environ.get("RANK", "0")
    ) == os.environ.get("RANK", "0"):
        os.kill(os.getpid(), getattr(signal, os.environ.get("FIXNORM_ZOO_SIGNAL", "SIGTERM")))
