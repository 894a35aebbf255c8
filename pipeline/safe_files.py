"""Output files that are safe against kills, full disks, concurrent runs and planted links.

Every output is written under a hidden side name that is unique to this run and created
exclusively (``mkstemp``: ``O_CREAT | O_EXCL | O_NOFOLLOW``) in the output folder, so two runs
into one folder never touch each other's side files and a symbolic link planted at a guessable
name is never followed. Only a finished file takes its final name, atomically (``os.replace``),
so a killed run (SIGKILL, power loss) leaves the previous complete output of the same name as it
was. Any ``OSError`` while writing (a full disk: ``ENOSPC``) becomes :class:`OutputError`, and the
side file is removed.

Side names carry the writer's process id (``.clip.tracks.json.<pid>.<random>.part``), so a later
run can tell the side files of killed runs (process gone) from those of a run still writing, and
removes only the former (:func:`remove_stale_side_files`).

Example:
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> with SafeFile(folder / "a.txt", mode="w") as out:
    ...     _ = out.file.write("hello")
    >>> (folder / "a.txt").read_text(), sorted(p.name for p in folder.iterdir())
    ('hello', ['a.txt'])
"""

from __future__ import annotations

import errno
import os
import re
import tempfile
from pathlib import Path
from typing import IO, Iterable, Protocol, runtime_checkable

from .errors import OutputError, display_path
from .signals import shielded

SIDE_SUFFIX = ".part"
#: Write failures that are about the disk, not about a path: no space, quota, file too big, read-only, I/O.
FULL_DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO})


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once at import: changing it later, with threads running, would race
_SIDE_NAME = re.compile(r"^\.(?P<final>.+)\.(?P<pid>\d+)\.[^.]+\.part$")


def output_error(path: str | os.PathLike, exc: OSError) -> OutputError:
    """One line for a failed write; a full disk says so, with the fix."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return OutputError(f"disk full while writing {display_path(path)}: free some space or choose another "
                           "folder with -o (the unfinished file was removed)")
    return OutputError(f"cannot write {display_path(path)}: {exc.strerror or exc}")


def side_file(final: str | os.PathLike, mode: str = "w+b") -> tuple[IO, Path]:
    """A new, empty, exclusively created side file next to `final`: (open file, its path)."""
    final = Path(final)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{final.name}.{os.getpid()}.", suffix=SIDE_SUFFIX, dir=final.parent)
    except OSError as exc:
        raise output_error(final, exc) from None
    try:
        encoding = None if "b" in mode else "utf-8"
        return os.fdopen(fd, mode, encoding=encoding), Path(name)
    except BaseException:
        os.close(fd)
        os.unlink(name)
        raise


class SafeFile:
    """One output file: written under a unique side name, given its final name only by :meth:`commit`.

    ``discard()`` (or leaving the ``with`` block on an exception) removes the side file and leaves
    whatever was at the final name untouched.
    """

    def __init__(self, final: str | os.PathLike, mode: str = "w+b") -> None:
        self.final = Path(final)
        self.file, self.side = side_file(self.final, mode)
        self.done = False

    def commit(self) -> Path:
        """Flush to disk and atomically replace the final file; raises :class:`OutputError` on failure."""
        if self.done:
            return self.final
        try:
            if not self.file.closed:
                self.file.flush()
                os.fsync(self.file.fileno())
                self.file.close()
            os.chmod(self.side, 0o666 & ~_UMASK)  # what a plain open() would give (mkstemp makes 0600)
            os.replace(self.side, self.final)
        except OSError as exc:
            self.discard()
            raise output_error(self.final, exc) from None
        self.done = True
        return self.final

    def discard(self) -> None:
        """Remove the side file (never the final one); safe to call twice."""
        if self.done:
            return
        self.done = True
        try:
            self.file.close()
        except OSError:
            pass
        try:
            self.side.unlink()
        except FileNotFoundError:
            pass

    def __enter__(self) -> "SafeFile":
        return self

    def __exit__(self, kind, exc, tb) -> None:
        if kind is None:
            self.commit()
        else:
            self.discard()


def remove_stale_side_files(folder: str | os.PathLike, final_name: str) -> list[Path]:
    """Remove side files of `final_name` left by runs that were killed (their process is gone)."""
    removed = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for path in entries:
        match = _SIDE_NAME.match(path.name)
        if match is None or match["final"] != final_name or _alive(int(match["pid"])):
            continue
        try:
            if not path.is_symlink() and path.is_file():
                path.unlink()
                removed.append(path)
        except OSError:
            pass
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def close_all(sinks: Iterable) -> None:
    """Close every sink, each even when another fails, with stop signals held back meanwhile
    (a second Ctrl-C never leaves a file half closed); the first error is raised afterwards."""
    first: BaseException | None = None
    with shielded():
        for sink in sinks:
            try:
                sink.close()
            except Exception as exc:
                first = first or exc
    if first is not None:
        raise first


@runtime_checkable
class Discardable(Protocol):
    """A sink whose unfinished file can be dropped instead of finished."""

    def discard(self) -> None: ...


def discard_all(sinks: Iterable) -> None:
    """Drop the unfinished files of every sink that writes one (after a write failed: a full disk)."""
    with shielded():
        for sink in sinks:
            if isinstance(sink, Discardable):
                sink.discard()
