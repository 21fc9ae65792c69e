"""KITTI split files (monodepth2's): reading, validating, listing, and ``mldanet splits``.

A split is a folder ``<splits dir>/<name>/`` holding ``train_files.txt``, ``val_files.txt``
and/or ``test_files.txt``; each line is ``<date>/<drive folder> <frame index> <l|r>``. The
splits directory comes from ``--splits-dir`` or ``$MLDANET_SPLITS_DIR``. ``mldanet splits
--download`` fetches monodepth2's files at a pinned commit and checks their SHA-256.
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from mldanet.paths import write_atomic

SPLITS_ENV = "MLDANET_SPLITS_DIR"
SPLIT_FILES = {"train": "train_files.txt", "val": "val_files.txt", "test": "test_files.txt"}

MONODEPTH2_REPO = "nianticlabs/monodepth2"
MONODEPTH2_COMMIT = "bd03a9ec1305082e80199bc2753ef5adb252e405"
MONODEPTH2_SPLITS: dict[str, str] = {
    "eigen/test_files.txt": "e226d4ca16e0e6e9695435014347dcf973588531330536fd8a68d298ef091a6b",
    "eigen_benchmark/test_files.txt": "d56e5e509e6960a01fb93795f85028ac6e4a82ad40e64b6e968988e4db95b9be",
    "eigen_full/train_files.txt": "1b491141d87b7af9e6706609b7ce858c198c3a4ca61d180c7dc90815d5f2a986",
    "eigen_full/val_files.txt": "9c4446772ec58aaa60acbeef0fa6d1e8ef1b346ad4f78272d056d10cf1993af9",
    "eigen_zhou/train_files.txt": "00173a231642151c4693274e701ddd4cae7916520a757c7a94eae8e1173f7b0c",
    "eigen_zhou/val_files.txt": "64a868b8d2c66c3979a2d74c22ea2e9146850d5b9f5786ed8e5f92201ba1ad04",
    "kitti_archives_to_download.txt": "9899630a856ea2661a06d223440561395792e15538ebe97f3b719a04b91e4386",
}


def resolve_splits_dir(splits_dir: str | Path | None = None) -> Path:
    """``splits_dir``, else ``$MLDANET_SPLITS_DIR``; an error says which was tried when neither is usable."""
    if splits_dir:
        path, origin = Path(splits_dir), "--splits-dir"
    elif os.environ.get(SPLITS_ENV):
        path, origin = Path(os.environ[SPLITS_ENV]), f"${SPLITS_ENV}"
    else:
        raise ValueError(
            f"no splits directory: give --splits-dir or set ${SPLITS_ENV} "
            "(`mldanet splits --download --dest DIR` fetches monodepth2's splits)"
        )
    if path.is_file():
        raise NotADirectoryError(f"splits directory {path} (from {origin}) is a file, not a folder")
    if not path.is_dir():
        raise FileNotFoundError(f"splits directory not found: {path} (from {origin})")
    return path


def split_file(name: str, which: str = "train", splits_dir: str | Path | None = None) -> Path:
    """Path of ``<splits dir>/<name>/<which>_files.txt``; an error names it when it is absent."""
    if which not in SPLIT_FILES:
        raise ValueError(f"split part {which!r} is not one of {', '.join(SPLIT_FILES)}")
    folder = resolve_splits_dir(splits_dir) / name
    if not folder.is_dir():
        raise FileNotFoundError(f"split '{name}' not found: no folder {folder}")
    path = folder / SPLIT_FILES[which]
    if not path.is_file():
        raise FileNotFoundError(f"split '{name}' has no {which} list: {path} not found")
    return path


def parse_split_line(line: str, path: str | Path = "<lines>", lineno: int = 0) -> tuple[str, int, str]:
    """``"<date>/<drive> <frame> <l|r>"`` → (folder, frame index, side); errors name file and line."""
    where = f"{path}:{lineno}"
    parts = line.split()
    if len(parts) != 3:
        raise ValueError(f"{where}: expected '<date>/<drive folder> <frame index> <l|r>', got {line.strip()!r}")
    folder, frame, side = parts
    if folder.count("/") != 1 or not all(folder.split("/")):
        raise ValueError(f"{where}: folder {folder!r} is not '<date>/<drive folder>'")
    # isdigit() alone accepts other scripts' digits ("²", "٣") that int() refuses.
    if not (frame.isascii() and frame.isdigit()):
        raise ValueError(f"{where}: frame index {frame!r} is not a non-negative integer")
    if side not in ("l", "r"):
        raise ValueError(f"{where}: side {side!r} is not 'l' or 'r'")
    return folder, int(frame), side


def read_lines_file(path: str | Path, check: Callable[[str, Path, int], object] | None = parse_split_line) -> list[str]:
    """The non-blank lines of one split file, each validated by ``check`` (KITTI's format unless
    told; None: by the dataset later); an empty file is an error naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"split file not found: {path}")
    lines = []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path} is not a text file ({error.reason} at byte {error.start})") from None
    for lineno, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            if check is not None:
                check(line, path, lineno)
            lines.append(line.strip())
    if not lines:
        raise ValueError(f"split file is empty: {path}")
    return lines


def frame_key(line: str) -> tuple:
    """The frame a split line names, whichever camera: KITTI ``(drive folder, index)`` (a test frame seen
    through the other camera is still the test frame), otherwise the line's words (``<sequence> <file>``)."""
    words = line.split()
    if len(words) == 3 and words[2] in ("l", "r") and words[1].lstrip("-").isdigit():
        return words[0], int(words[1])
    return tuple(words)


def shared_frames(train_lines: Sequence[str], test_lines: Sequence[str]) -> list[str]:
    """The lines of ``test_lines`` whose frame a line of ``train_lines`` names too, in test order."""
    trained = {frame_key(line) for line in train_lines}
    return [line for line in test_lines if frame_key(line) in trained]


def overlap_error(train_path: str | Path, test_lines: Sequence[str], test_path: str | Path, shared: Sequence[str]) -> str:
    first = ", ".join(f"'{line}'" for line in shared[:3])
    return (
        f"the training list {train_path} holds {len(shared)} of the {len(test_lines)} test frames of {test_path} "
        f"(first: {first}{', …' if len(shared) > 3 else ''}): a model trained on the frames it is scored on "
        "reports numbers it has not earned; remove them from the training list"
    )


def resolve_split_path(name_or_file: str | Path, which: str = "train", splits_dir: str | Path | None = None) -> Path:
    """The file of split ``name_or_file``'s ``which`` list, or ``name_or_file`` itself when it is a file."""
    candidate = Path(name_or_file)
    if candidate.is_file():
        return candidate
    if candidate.suffix == ".txt" or len(candidate.parts) > 1:
        raise FileNotFoundError(f"split file not found: {candidate}")
    return split_file(str(name_or_file), which, splits_dir)


def read_split_lines(name_or_file: str | Path, which: str = "train", splits_dir: str | Path | None = None) -> list[str]:
    """Lines of split ``name_or_file``'s ``which`` list, or of the file itself when it is a path to one."""
    return read_lines_file(resolve_split_path(name_or_file, which, splits_dir))


def list_splits(splits_dir: str | Path | None = None) -> dict[str, dict[str, int]]:
    """Split name → {part: number of lines} for every folder with at least one ``*_files.txt``."""
    root = resolve_splits_dir(splits_dir)
    found: dict[str, dict[str, int]] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        counts = {}
        for which, filename in SPLIT_FILES.items():
            path = folder / filename
            if path.is_file():
                counts[which] = sum(1 for line in path.read_text().splitlines() if line.strip())
        if counts:
            found[folder.name] = counts
    return found


def fetch_url(url: str) -> bytes:
    """Download ``url`` (only ever called by ``mldanet splits --download``)."""
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.read()


def download_splits(dest: str | Path) -> list[Path]:
    """Fetch monodepth2's split files at :data:`MONODEPTH2_COMMIT` into ``dest``, checking SHA-256.

    Each file is verified before it is written (atomically), so ``dest`` never holds a file that
    does not match its checksum.
    """
    dest = Path(dest)
    written = []
    for relative, expected in MONODEPTH2_SPLITS.items():
        url = f"https://raw.githubusercontent.com/{MONODEPTH2_REPO}/{MONODEPTH2_COMMIT}/splits/{relative}"
        data = fetch_url(url)
        digest = hashlib.sha256(data).hexdigest()
        if digest != expected:
            raise ValueError(f"checksum mismatch for {url}: sha256 {digest}, expected {expected}")
        written.append(write_atomic(dest / relative, lambda handle: handle.write(data)))
    return written
