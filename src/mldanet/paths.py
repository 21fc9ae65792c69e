"""Checks on the folders and files a command reads and writes, made before the work starts.

Each raises ``FileNotFoundError``, ``NotADirectoryError``, ``IsADirectoryError`` or
``PermissionError`` with a message that names the path and what it was for, so that a command
refuses in one line at once instead of failing after an hour of work (an unwritable
``--json`` file found only when the evaluation is done, a data path that is a file reported
as "not found").
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def require_dir(path: str | Path, what: str) -> Path:
    """``path`` as an existing folder; ``what`` names it in the error ("data path", "--hints-dir")."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} not found: {path}")
    if not path.is_dir():
        raise NotADirectoryError(f"{what} {path} is a file, not a folder")
    return path


def require_file(path: str | Path, what: str) -> Path:
    """``path`` as an existing regular file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} not found: {path}")
    if path.is_dir():
        raise IsADirectoryError(f"{what} {path} is a folder, not a file")
    return path


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _require_creatable(path: Path, what: str) -> None:
    """The nearest existing ancestor of ``path`` is a writable folder, so ``path`` can be made."""
    ancestor = _nearest_existing(path.parent)
    if not ancestor.is_dir():
        raise NotADirectoryError(f"cannot create {what} {path}: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot write {what} {path}: {ancestor} is not writable")


def require_writable_dir(path: str | Path, what: str) -> Path:
    """``path`` as a folder this process can write into: made (with parents) when missing."""
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise NotADirectoryError(f"{what} {path} is a file, not a folder")
        if not os.access(path, os.W_OK | os.X_OK):
            raise PermissionError(f"cannot write into {what} {path}: the folder is not writable")
        return path
    _require_creatable(path, what)
    path.mkdir(parents=True, exist_ok=True)
    return path


def require_writable_file(path: str | Path, what: str) -> Path:
    """``path`` as a file this process can write (it may exist); nothing is created."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{what} {path} is a folder, not a file")
    if path.exists():
        if not os.access(path, os.W_OK):
            raise PermissionError(f"cannot write {what} {path}: the file is read-only")
        if not os.access(path.parent, os.W_OK | os.X_OK):
            raise PermissionError(f"cannot write {what} {path}: {path.parent} is not writable")
        return path
    _require_creatable(path, what)
    return path


def write_atomic(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """Write ``path`` by calling ``write`` on a temporary file beside it, then renaming it over
    ``path``: an interrupted write leaves the previous file (or none), never a partial one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            write(handle)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path
