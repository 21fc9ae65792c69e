import os
from pathlib import Path

import pytest

from mldanet.paths import require_dir, require_file, require_writable_dir, require_writable_file, write_atomic


def deny_writes_to(monkeypatch, denied: Path) -> None:
    """Make ``os.access`` report ``denied`` as not writable (tests run as root, where chmod does not bind)."""
    real_access = os.access

    def access(path, mode, *args, **kwargs):
        if Path(path).resolve() == denied.resolve() and mode & os.W_OK:
            return False
        return real_access(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)


def test_require_dir_names_a_missing_path_and_a_file_given_as_a_folder(tmp_path):
    assert require_dir(tmp_path, "data path") == tmp_path
    with pytest.raises(FileNotFoundError, match=f"data path not found: {tmp_path / 'nope'}"):
        require_dir(tmp_path / "nope", "data path")
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match=f"data path {tmp_path / 'file'} is a file, not a folder"):
        require_dir(tmp_path / "file", "data path")


def test_require_file_names_a_missing_path_and_a_folder_given_as_a_file(tmp_path):
    (tmp_path / "a.pt").write_bytes(b"x")
    assert require_file(tmp_path / "a.pt", "checkpoint") == tmp_path / "a.pt"
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        require_file(tmp_path / "b.pt", "checkpoint")
    with pytest.raises(IsADirectoryError, match=f"checkpoint {tmp_path} is a folder, not a file"):
        require_file(tmp_path, "checkpoint")


def test_require_writable_dir_makes_missing_folders_and_refuses_files_and_read_only_folders(tmp_path, monkeypatch):
    made = require_writable_dir(tmp_path / "a" / "b", "--out")
    assert made.is_dir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match=f"--out {tmp_path / 'file'} is a file"):
        require_writable_dir(tmp_path / "file", "--out")
    with pytest.raises(NotADirectoryError, match=f"{tmp_path / 'file'} is a file, not a folder"):
        require_writable_dir(tmp_path / "file" / "sub", "--out")
    deny_writes_to(monkeypatch, tmp_path)
    with pytest.raises(PermissionError, match=f"cannot write into --out {tmp_path}"):
        require_writable_dir(tmp_path, "--out")
    with pytest.raises(PermissionError, match=f"{tmp_path} is not writable"):
        require_writable_dir(tmp_path / "new", "--out")
    assert not (tmp_path / "new").exists()


def test_require_writable_file_creates_nothing_and_refuses_folders_and_read_only_places(tmp_path, monkeypatch):
    target = tmp_path / "sub" / "metrics.json"
    assert require_writable_file(target, "--json") == target
    assert not (tmp_path / "sub").exists()
    with pytest.raises(IsADirectoryError, match=f"--json {tmp_path} is a folder"):
        require_writable_file(tmp_path, "--json")
    existing = tmp_path / "old.json"
    existing.write_text("{}")
    deny_writes_to(monkeypatch, existing)
    with pytest.raises(PermissionError, match=f"cannot write --json {existing}: the file is read-only"):
        require_writable_file(existing, "--json")
    deny_writes_to(monkeypatch, tmp_path)
    with pytest.raises(PermissionError, match=f"{tmp_path} is not writable"):
        require_writable_file(tmp_path / "new.json", "--json")


def test_write_atomic_replaces_whole_or_leaves_the_old_file(tmp_path):
    target = tmp_path / "sub" / "settings.json"
    assert write_atomic(target, lambda handle: handle.write(b"first")) == target
    assert target.read_bytes() == b"first"

    def fails_half_way(handle):
        handle.write(b"half")
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        write_atomic(target, fails_half_way)
    assert target.read_bytes() == b"first"
    assert [p.name for p in target.parent.iterdir()] == ["settings.json"]  # no temporary left behind
