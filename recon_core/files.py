"""Writing files so that nothing already written is lost or left half-written.

Every file is written to a hidden temporary beside its target (``.NAME.<random>.tmp``),
synced,
then renamed over the target: a reader sees the old file or the new one. A failure removes
its own temporary and names the file in one line; a process killed mid-write leaves its
temporary behind, which `remove_stale_temporaries` clears on the next run into that folder.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "WriteError",
    "atomic_write_bytes",
    "write_all_or_none",
    "remove_stale_temporaries",
    "STALE_AFTER_S",
]

STALE_AFTER_S = 24 * 3600
"""A temporary this old was left by a run that died: no live write takes a day."""


class WriteError(OSError):
    """A file that could not be written; the message names it."""


def _describe(path: Path, exc: OSError) -> str:
    return f"{path}: cannot write it ({exc.strerror or exc})"


def _stage(path: Path, write: Callable) -> str:
    """Write a synced temporary beside ``path`` with ``write(file_object)``; its name."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise WriteError(exc.errno, _describe(path, exc)) from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes files private; give the usual mode
    except BaseException as exc:
        _unlink(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, WriteError):
            raise WriteError(exc.errno, _describe(path, exc)) from exc
        raise
    return tmp


def _unlink(name: str) -> None:
    try:
        os.unlink(name)
    except FileNotFoundError:
        pass


def atomic_write_bytes(path: str | Path, write: Callable) -> None:
    """Call ``write(file_object)`` on a temporary file beside ``path``, then rename it over
    ``path``: readers see the old file or the new one, never a partial one. A failure
    removes the temporary and raises WriteError naming ``path``."""
    write_all_or_none({Path(path): write})


def write_all_or_none(writers: dict[Path, Callable | bytes]) -> list[Path]:
    """Write several files as a set (each given by its bytes, or by a function that writes
    them to a file object): every one to its temporary first, and only when all
    are written are they renamed over their targets. A failure while writing (a full disk)
    removes every temporary and leaves every target as it was; the renames come last, and
    need no space."""
    staged: list[tuple[str, Path]] = []
    try:
        for path, write in writers.items():
            if isinstance(write, bytes):
                write = (lambda data: lambda handle: handle.write(data))(write)
            staged.append((_stage(Path(path), write), Path(path)))
        for tmp, path in staged:
            try:
                os.replace(tmp, path)
            except OSError as exc:
                raise WriteError(exc.errno, _describe(path, exc)) from exc
    finally:
        for tmp, _ in staged:
            if os.path.exists(tmp):
                _unlink(tmp)
    return [Path(p) for p in writers]


def remove_stale_temporaries(folder: str | Path, older_than_s: float = STALE_AFTER_S) -> int:
    """Remove the temporaries (``.NAME.<random>.tmp``) that killed runs left in ``folder``,
    those older than ``older_than_s``; a fresher one may belong to a run still writing.
    Returns how many were removed."""
    removed, limit = 0, time.time() - older_than_s
    try:
        candidates = list(Path(folder).glob(".*.tmp"))
    except OSError:
        return 0
    for path in candidates:
        try:
            if path.is_file() and path.stat().st_mtime < limit:
                path.unlink()
                removed += 1
        except OSError:
            continue
    return removed
