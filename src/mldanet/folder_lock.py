"""One process per output folder: an advisory lock file that a second ``train`` or ``hints`` meets.

``flock`` is unreliable on network file systems (NFS without lockd, some FUSE mounts), where
clusters keep their runs. So the lock is a file created with ``O_CREAT | O_EXCL``, atomic on
every POSIX file system NFSv3 onward, holding its holder's host, PID, command and start time;
a thread refreshes its modification time while the lock is held. A lock is stale, and is
taken over, when its holder is on this host and its PID is gone (a crash, a torchrun restart),
or when it has not been refreshed for :data:`STALE_AFTER_S` (a host that died).

Processes that may share a folder (``hints --shard``) each hold a lock of their own name and
name the others' they exclude (``conflicts``); each looks for those only after holding its own,
so of two conflicting processes starting together at least one sees the other.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

LOCK_NAME = ".mldanet.lock"
REFRESH_EVERY_S = 60.0
STALE_AFTER_S = 10 * 60.0


class FolderLocked(FileExistsError):
    """Another live process holds the folder (its lock file exists): the user's to resolve."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def describe_holder(holder: dict) -> str:
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("started", 0)))
    return f"`{holder.get('command', '?')}` (PID {holder.get('pid', '?')} on {holder.get('host', '?')}, since {started})"


def read_lock(path: Path) -> dict | None:
    """A lock file's holder record; None when there is no lock, {} when it is half-written or damaged."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):  # half-written or damaged: judged by its age alone
        return {}


def is_stale(path: Path, holder: dict) -> bool:
    """Whether the lock ``path`` held by ``holder`` may be taken over (see the module's docstring)."""
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return True
    if holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int):
        return not _pid_alive(holder["pid"])
    return age > STALE_AFTER_S


class FolderLock:
    """``with FolderLock(folder, "mldanet train"):`` holds ``folder/.mldanet.lock`` for the block.

    A second holder is refused with :class:`FolderLocked`, whose message names the first.
    ``name``: the lock file's name (``.mldanet*.lock``); ``conflicts``: which other lock files in
    ``folder`` (by name) must not be held by a live process either.
    """

    def __init__(
        self, folder: str | Path, command: str, what: str = "folder", name: str = LOCK_NAME,
        conflicts: Callable[[str], bool] | None = None,
    ) -> None:
        self.path = Path(folder) / name
        self.command = command
        self.what = what
        self.conflicts = conflicts
        self._token: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _read(self, path: Path | None = None) -> dict | None:
        return read_lock(path or self.path)

    def _in_use(self, path: Path, holder: dict) -> FolderLocked:
        return FolderLocked(
            f"{self.what} {self.path.parent} is in use by {describe_holder(holder)}: wait for it to finish, "
            f"or use another folder (if that process is gone, delete {path})"
        )

    def _live_conflict(self) -> FolderLocked | None:
        """The refusal naming a live holder of a lock that ``conflicts`` excludes, if there is one."""
        if self.conflicts is None:
            return None
        for other in sorted(self.path.parent.glob(".mldanet*.lock")):
            if other.name == self.path.name or not self.conflicts(other.name):
                continue
            holder = read_lock(other)
            if holder is not None and not is_stale(other, holder):
                return self._in_use(other, holder)
        return None

    def _create(self) -> bool:
        token = f"{socket.gethostname()}:{os.getpid()}:{time.time_ns()}"
        record = {"host": socket.gethostname(), "pid": os.getpid(), "command": self.command,
                  "started": time.time(), "token": token}
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as handle:
            json.dump(record, handle)
        self._token = token
        return True

    def _take_over(self, holder: dict) -> None:
        """Move a stale lock aside; put it back if it turned out to be a fresh one another process made
        between our read and the move (so two takers never both win)."""
        aside = self.path.with_name(f"{self.path.name}.stale.{os.getpid()}.{time.time_ns()}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return
        if self._read(aside) == holder:
            aside.unlink(missing_ok=True)
            return
        try:
            os.link(aside, self.path)
        except FileExistsError:
            pass
        aside.unlink(missing_ok=True)

    def acquire(self) -> "FolderLock":
        for _ in range(3):
            if self._create():
                conflict = self._live_conflict()
                if conflict is not None:
                    self.release()
                    raise conflict
                self._thread = threading.Thread(target=self._refresh, name="folder-lock", daemon=True)
                self._thread.start()
                return self
            holder = self._read()
            if holder is None:  # released meanwhile
                continue
            if not is_stale(self.path, holder):
                raise self._in_use(self.path, holder)
            self._take_over(holder)
        raise FolderLocked(f"{self.what} {self.path.parent}: could not take the lock {self.path} (another process keeps taking it)")

    def _refresh(self) -> None:
        while not self._stop.wait(REFRESH_EVERY_S):
            try:
                os.utime(self.path)
            except OSError:
                pass

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        holder = self._read()
        if self._token is not None and holder is not None and holder.get("token") == self._token:
            self.path.unlink(missing_ok=True)
        self._token = None

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
