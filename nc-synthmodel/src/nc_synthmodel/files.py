"""Safe file writing shared by nc-synthmodel and napari-nanocrystal.

The one place where both packages write files:

* :func:`atomic_path` / :func:`atomic_write_bytes` / :func:`atomic_write_text` — write a
  temporary file beside the target, fsync, then ``os.replace``: a reader sees the old file or
  the new one, never half of one.  A temporary file carries the writer's process id
  (``.<stem>.<pid>.<random>.tmp<suffix>``); one left behind by a killed writer is removed by
  the next write to the same file (:func:`clean_orphans`).
* :func:`locked` — an inter-process lock (``filelock``) for read-modify-write cycles such as
  appending recipes to a dataset: two processes appending at once both keep their rows.
* :func:`check_output` — refuse to replace an existing file without ``overwrite``, and refuse
  to write over one of the command's own inputs (compared by resolved path and inode).
* :func:`check_writable_dir` — find out that an output folder cannot be written *before*
  any work is done.
* :func:`json_safe` — the one JSON sanitiser: numpy values as Python values, NaN/inf as null.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

__all__ = [
    "LOCK_TIMEOUT_S",
    "OutputError",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_output",
    "check_writable_dir",
    "clean_orphans",
    "json_safe",
    "locked",
    "lock_path",
]

logger = logging.getLogger(__name__)

#: How long :func:`locked` waits for another process before giving up (seconds).
LOCK_TIMEOUT_S = 120.0

#: Orphans from before temporary names carried a process id are removed after this age (s).
_LEGACY_ORPHAN_AGE_S = 3600.0


class OutputError(ValueError):
    """An output cannot be written: it exists (no ``overwrite``), is an input, or its folder is not writable."""


# ----------------------------------------------------------------------------------------
# temporary files and their orphans


def _temp_prefix(path: Path) -> str:
    return f".{path.stem}."


def _temp_suffix(path: Path) -> str:
    return f".tmp{path.suffix}"


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def clean_orphans(path: str | os.PathLike) -> list[Path]:
    """Remove temporary files of ``path`` left behind by writers that no longer run.

    A temporary file ``.<stem>.<pid>.<random>.tmp<suffix>`` is an orphan when process
    ``pid`` is gone (a SIGKILL or a power cut during the write).  Temporary files in the
    older format without a process id are removed once they are an hour old.  Returns the
    removed paths.
    """
    path = Path(path)
    if not path.parent.is_dir():
        return []
    prefix, suffix = _temp_prefix(path), _temp_suffix(path)
    # mkstemp's 8 random characters, after the writer's pid in the current format
    pattern = re.compile(re.escape(prefix) + r"(?:(\d+)\.)?[A-Za-z0-9_]{8}" + re.escape(suffix) + "$")
    removed = []
    try:
        candidates = [p for p in path.parent.iterdir() if p.name.startswith(prefix) and p.name.endswith(suffix)]
    except OSError:
        return []
    for candidate in candidates:
        match = pattern.match(candidate.name)
        if match is None:
            continue
        pid = match.group(1)
        try:
            if pid is not None:
                orphan = int(pid) != os.getpid() and not _pid_alive(int(pid))
            else:
                import time

                orphan = time.time() - candidate.stat().st_mtime > _LEGACY_ORPHAN_AGE_S
            if orphan:
                candidate.unlink()
                removed.append(candidate)
                logger.warning("removed %s, left behind by an interrupted write of %s", candidate.name, path.name)
        except OSError:  # vanished meanwhile, or not ours to remove
            continue
    return removed


def _file_mode(path: Path) -> int:
    if path.exists():
        return path.stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one rename.

    For writers that need a file name (``np.savez``, ``tifffile``, ``safetensors``): write to
    the yielded path inside the ``with`` block.  On error the temporary file is removed and
    ``path`` is untouched.  New files get the usual umask permissions; a replaced file keeps
    its own.  Orphaned temporary files of ``path`` (see :func:`clean_orphans`) are removed first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_orphans(path)
    fd, tmp = tempfile.mkstemp(prefix=f"{_temp_prefix(path)}{os.getpid()}.", suffix=_temp_suffix(path), dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, _file_mode(path))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file in the same folder, fsync, rename."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically (see :func:`atomic_write_bytes`)."""
    atomic_write_bytes(path, text.encode("utf-8"))


# ----------------------------------------------------------------------------------------
# locks


def lock_path(path: str | os.PathLike) -> Path:
    """The lock file guarding ``path``: ``.<name>.lock`` beside it."""
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


@contextlib.contextmanager
def locked(path: str | os.PathLike, timeout_s: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold an inter-process lock on ``path`` (for a read-modify-write of it).

    Raises ``TimeoutError`` naming the file when another process holds the lock for longer
    than ``timeout_s`` seconds.  The lock is released when the ``with`` block ends, also on
    an error; a killed holder releases it with its process (``flock``).
    """
    from filelock import FileLock, Timeout

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_path(path)), timeout=timeout_s)
    try:
        lock.acquire()
    except Timeout:
        raise TimeoutError(
            f"{path}: another process has been writing this file for over {timeout_s:g} s "
            f"(lock {lock_path(path).name}); try again when it is done"
        ) from None
    try:
        yield
    finally:
        lock.release()


# ----------------------------------------------------------------------------------------
# outputs


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.resolve() == b.resolve():
            return True
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_output(path: str | os.PathLike, *, overwrite: bool = False, inputs: Iterable = ()) -> Path:
    """Check that ``path`` may be written; return it as a Path.

    Raises :class:`OutputError` when ``path`` is one of ``inputs`` (same resolved path or
    same inode: a command never writes over its own input, even with ``overwrite``), when
    it is an existing folder, or when it exists and ``overwrite`` is False.
    """
    path = Path(path)
    for source in inputs:
        if _same_file(path, Path(source)):
            raise OutputError(f"{path}: the output would replace the input file {source}; choose another output path")
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; expected an output file path")
    if path.exists() and not overwrite:
        raise OutputError(f"{path}: exists; pass --overwrite (overwrite=True) to replace it")
    return path


def check_writable_dir(folder: str | os.PathLike) -> Path:
    """Create ``folder`` if needed and check that files can be created in it; return it.

    Raises :class:`OutputError` naming the folder when it is a file, cannot be created, or
    is not writable (permissions, read-only file system, full disk) — before any work is done.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder}: output folder is an existing file")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        reason = {errno.EACCES: "permission denied", errno.EROFS: "read-only file system", errno.ENOSPC: "no space left"}.get(
            error.errno, error.strerror or type(error).__name__
        )
        raise OutputError(f"{folder}: cannot write to the output folder ({reason})") from None
    return folder


# ----------------------------------------------------------------------------------------
# JSON


def json_safe(value):
    """A copy with numpy scalars/arrays as Python values, paths as strings and NaN/inf as None (strict JSON)."""
    import math

    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "tolist") and hasattr(value, "dtype"):  # numpy arrays and scalars
        return json_safe(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value
