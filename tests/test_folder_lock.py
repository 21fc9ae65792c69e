"""The run-folder lock: one holder, a refusal naming it, stale locks taken over, nothing else removed."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from mldanet.folder_lock import LOCK_NAME, STALE_AFTER_S, FolderLock, FolderLocked


def write_lock(folder, **fields) -> None:
    record = {"host": socket.gethostname(), "pid": os.getpid(), "command": "mldanet train", "started": time.time(),
              "token": "theirs"} | fields
    (folder / LOCK_NAME).write_text(json.dumps(record))


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_the_lock_is_held_in_the_block_and_removed_after(tmp_path):
    with FolderLock(tmp_path, "mldanet train"):
        record = json.loads((tmp_path / LOCK_NAME).read_text())
        assert (record["host"], record["pid"], record["command"]) == (socket.gethostname(), os.getpid(), "mldanet train")
        with pytest.raises(FolderLocked) as refused:
            FolderLock(tmp_path, "mldanet hints", "hints folder --out").acquire()
        message = str(refused.value)
        assert message.startswith(f"hints folder --out {tmp_path} is in use by `mldanet train` (PID {os.getpid()} on ")
        assert str(tmp_path / LOCK_NAME) in message
    assert not (tmp_path / LOCK_NAME).exists()
    FolderLock(tmp_path, "again").acquire().release()  # free again


def test_a_live_holder_on_another_host_is_refused_until_its_lock_goes_stale(tmp_path):
    write_lock(tmp_path, host="node-7", pid=12345)
    with pytest.raises(FolderLocked, match=r"PID 12345 on node-7"):
        FolderLock(tmp_path, "mldanet train").acquire()
    old = time.time() - STALE_AFTER_S - 5
    os.utime(tmp_path / LOCK_NAME, (old, old))
    with FolderLock(tmp_path, "mldanet train"):
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()


def test_a_lock_left_by_a_dead_process_on_this_host_is_taken_over(tmp_path):
    write_lock(tmp_path, pid=dead_pid())
    with FolderLock(tmp_path, "mldanet train"):
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no moved-aside copies left


def test_release_leaves_a_lock_that_is_not_ours(tmp_path):
    lock = FolderLock(tmp_path, "mldanet train").acquire()
    (tmp_path / LOCK_NAME).unlink()  # someone removed it by hand, and another run took the folder
    write_lock(tmp_path, pid=os.getppid(), token="another run")
    lock.release()
    assert json.loads((tmp_path / LOCK_NAME).read_text())["token"] == "another run"
