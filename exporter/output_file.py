"""Where an export's bytes go, without ever clobbering what stands at the path.

- `-`: standard output, streamed.
- A regular file, or nothing yet: a temporary file beside it, fsynced and renamed over it, so
  a reader never sees half a file; an existing file keeps its mode (and, for root, owner).
- A symlink: the same, at the file it points to (the link stays a link).
- A FIFO or a character device (a pipe, a terminal, /dev/null): written through, as a
  stream; never renamed over.
- Anything else (a folder, a socket, a block device): refused with one line.

A failure, or SIGTERM/SIGHUP, part-way removes the temporary file and leaves the path as it
was.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from connections.errors import ExportError

STDOUT = "-"


def describe_os_error(exc: OSError) -> str:
    if exc.errno == errno.ENAMETOOLONG:
        return "the file name is too long"
    return exc.strerror or str(exc)


@dataclass(frozen=True)
class Output:
    """Where an export goes, decided (and checked) before any database is asked."""

    given: str | Path  # as the user named it, for messages
    final: Path | None  # the file written, symlinks followed; None for stdout
    kind: str  # 'stdout', 'stream', 'new' or 'file'

    def write(self, write: Callable[[BinaryIO], int]) -> int:
        """Runs write(stream) into the output; returns what write returned."""
        if self.kind == "stdout":
            with stop_signals_raise():
                rows = write(sys.stdout.buffer)
                sys.stdout.buffer.flush()
            return rows
        assert self.final is not None
        if self.kind == "stream":
            try:
                with stop_signals_raise(), open(self.final, "wb") as out:
                    return write(out)
            except OSError as exc:
                raise ExportError(f"cannot write {self.given} ({describe_os_error(exc)})") from exc
        return replace_atomically(self.given, self.final, self.kind == "file", write)


def plan_output(target: str | Path) -> Output:
    """Checks the output by the rules above; ExportError (one line) when it cannot be."""
    if str(target) == STDOUT:
        return Output(STDOUT, None, "stdout")
    path = Path(target)
    final = follow_links(path)
    kind = file_kind(final)
    if kind != "stream":
        check_folder(path, final.parent)
    return Output(target, final, kind)


def check_folder(path: Path, folder: Path) -> None:
    try:
        if folder.is_dir():
            if not os.access(folder, os.W_OK | os.X_OK):
                raise ExportError(
                    f"cannot write {path}: no permission to create files in {folder}; "
                    "choose a writable --output path"
                )
            return
        what = "is not a folder" if folder.exists() else "does not exist"
    except OSError as exc:
        raise ExportError(f"cannot write {path} ({describe_os_error(exc)})") from exc
    raise ExportError(f"cannot write {path}: {folder} {what}")


def follow_links(path: Path) -> Path:
    """The file a path names once every symlink is followed (the path itself otherwise)."""
    try:
        if not path.is_symlink():
            return path
        return Path(os.path.realpath(path))
    except OSError as exc:
        raise ExportError(f"cannot read {path} ({describe_os_error(exc)})") from exc


def file_kind(path: Path) -> str:
    """'new', 'file' (regular), or 'stream' (FIFO, character device); else ExportError."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "new"
    except PermissionError as exc:
        raise ExportError(
            f"cannot write {path}: no permission to reach its folder; choose a writable "
            "--output path"
        ) from exc
    except NotADirectoryError as exc:
        raise ExportError(f"cannot write {path}: {path.parent} is not a folder") from exc
    except OSError as exc:
        raise ExportError(f"cannot write {path} ({describe_os_error(exc)})") from exc
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode):
        return "stream"
    if stat.S_ISDIR(mode):
        raise ExportError(f"{path} is a folder: give --output a file name")
    raise ExportError(
        f"will not write {path}: it is neither a regular file nor a pipe or character device"
    )


def replace_atomically(
    path: str | Path, final: Path, exists: bool, write: Callable[[BinaryIO], int]
) -> int:
    folder = final.parent
    try:
        previous = final.stat() if exists else None
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{final.name}.", suffix=".tmp")
    except OSError as exc:
        raise ExportError(
            f"cannot write {path} ({describe_os_error(exc)}): choose a writable --output path"
        ) from exc
    try:
        with stop_signals_raise(), os.fdopen(handle, "wb") as out:
            rows = write(out)
            out.flush()
            os.fsync(out.fileno())
            keep_mode_and_owner(temporary, previous)
            os.replace(temporary, final)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise ExportError(
            f"cannot write {path} ({describe_os_error(exc)}): nothing was written; free space "
            "or choose another --output path"
        ) from exc
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return rows


def keep_mode_and_owner(temporary: str, previous: os.stat_result | None) -> None:
    """A replaced file keeps its permissions (and owner, where we may set it); a new file gets
    what the umask gives any new file (mkstemp's is 0600)."""
    if previous is None:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        return
    os.chmod(temporary, stat.S_IMODE(previous.st_mode))
    if os.geteuid() == 0:
        os.chown(temporary, previous.st_uid, previous.st_gid)


class Stopped(BaseException):
    """SIGTERM or SIGHUP arrived mid-export; raised so the temporary file is removed."""

    def __init__(self, signum: int):
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


@contextlib.contextmanager
def stop_signals_raise() -> Iterator[None]:
    """SIGTERM and SIGHUP raise Stopped while the export writes (SIGINT already raises
    KeyboardInterrupt), so the cleanup above runs; their handlers are put back after."""

    def raise_stopped(signum, _frame):
        raise Stopped(signum)

    previous = {}
    for signum in (signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
            previous[signum] = signal.signal(signum, raise_stopped)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
