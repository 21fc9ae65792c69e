"""One process per output folder: an advisory lock file that a second ``train`` or ``hints`` meets.

``flock`` is unreliable on network file systems (NFS without lockd, some FUSE mounts), where
clusters keep their runs. So the lock is a file created with ``O_CREAT | O_EXCL``, atomic on
every POSIX file system NFSv3 onward, holding its holder's host, PID, command and start time;
a thread refreshes its modification time while the lock is held. A lock is stale, and is
taken over, when its holder is on this host and its PID is gone (a crash, a torchrun restart),
or when it has not been refreshed for :data:`STALE_AFTER_S` (a host that died).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
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


class FolderLock:
    """``with FolderLock(folder, "mldanet train"):`` holds ``folder/.mldanet.lock`` for the block.

    A second holder is refused with :class:`FolderLocked`, whose message names the first.
    """

    def __init__(self, folder: str | Path, command: str, what: str = "folder") -> None:
        self.path = Path(folder) / LOCK_NAME
        self.command = command
        self.what = what
        self._token: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _read(self, path: Path | None = None) -> dict | None:
        try:
            return json.loads((path or self.path).read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):  # half-written or damaged: judged by its age alone
            return {}

    def _is_stale(self, holder: dict) -> bool:
        try:
            age = time.time() - self.path.stat().st_mtime
        except FileNotFoundError:
            return True
        if holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int):
            return not _pid_alive(holder["pid"])
        return age > STALE_AFTER_S

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
        aside = self.path.with_name(f"{LOCK_NAME}.stale.{os.getpid()}.{time.time_ns()}")
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
                self._thread = threading.Thread(target=self._refresh, name="folder-lock", daemon=True)
                self._thread.start()
                return self
            holder = self._read()
            if holder is None:  # released meanwhile
                continue
            if not self._is_stale(holder):
                raise FolderLocked(
                    f"{self.what} {self.path.parent} is in use by {describe_holder(holder)}: wait for it to finish, "
                    f"or use another folder (if that process is gone, delete {self.path})"
                )
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
