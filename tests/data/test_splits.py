"""Split files: the real monodepth2 lists (skipped without ../shared/data), parsing errors, listing, and
checksummed download (never online)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from mldanet import cli
from mldanet.data import splits
from mldanet.data.splits import (
    MONODEPTH2_COMMIT,
    MONODEPTH2_SPLITS,
    download_splits,
    list_splits,
    parse_split_line,
    read_split_lines,
    resolve_splits_dir,
)


def test_real_split_sizes(splits_dir):
    assert len(read_split_lines("eigen_zhou", "train", splits_dir)) == 39810
    assert len(read_split_lines("eigen_zhou", "val", splits_dir)) == 4424
    assert len(read_split_lines("eigen_full", "train", splits_dir)) == 45200
    assert len(read_split_lines("eigen", "test", splits_dir)) == 697
    assert len(read_split_lines("eigen_benchmark", "test", splits_dir)) == 652


def tiny_splits(root: Path) -> Path:
    """A splits folder in monodepth2's layout: eigen (test only, 2 lines) and mine (train 3, val 1)."""
    lists = {
        "eigen/test_files.txt": ["2011_09_26/2011_09_26_drive_0002_sync 0000000069 l", "2011_09_26/2011_09_26_drive_0002_sync 54 r"],
        "mine/train_files.txt": [f"2011_10_03/2011_10_03_drive_0000_sync {i} l" for i in (1, 2, 3)],
        "mine/val_files.txt": ["2011_10_03/2011_10_03_drive_0000_sync 4 l"],
    }
    for name, lines in lists.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("\n".join(lines) + "\n")
    return root


def test_splits_dir_from_environment_and_single_files(tmp_path, monkeypatch):
    splits_dir = tiny_splits(tmp_path / "splits")
    monkeypatch.setenv("MLDANET_SPLITS_DIR", str(splits_dir))
    lines = read_split_lines("eigen", "test")
    assert lines[0] == "2011_09_26/2011_09_26_drive_0002_sync 0000000069 l"
    assert read_split_lines(splits_dir / "eigen" / "test_files.txt") == lines
    assert parse_split_line(lines[0]) == ("2011_09_26/2011_09_26_drive_0002_sync", 69, "l")
    assert parse_split_line(lines[1]) == ("2011_09_26/2011_09_26_drive_0002_sync", 54, "r")


def test_no_splits_dir_says_how_to_give_one(monkeypatch):
    monkeypatch.delenv("MLDANET_SPLITS_DIR", raising=False)
    with pytest.raises(ValueError, match=r"--splits-dir or set \$MLDANET_SPLITS_DIR"):
        read_split_lines("eigen_zhou")


def test_a_splits_dir_that_is_a_file_or_missing_is_named(tmp_path):
    afile = tmp_path / "splits.txt"
    afile.write_text("x")
    with pytest.raises(NotADirectoryError, match=f"splits directory {afile} \\(from --splits-dir\\) is a file"):
        resolve_splits_dir(afile)
    with pytest.raises(FileNotFoundError, match=f"splits directory not found: {tmp_path / 'nope'}"):
        resolve_splits_dir(tmp_path / "nope")


def test_missing_split_and_part_are_named(tmp_path):
    splits_dir = tiny_splits(tmp_path / "splits")
    with pytest.raises(FileNotFoundError, match="split 'nope' not found"):
        read_split_lines("nope", "train", splits_dir)
    with pytest.raises(FileNotFoundError, match=r"split 'eigen' has no train list: .*eigen/train_files.txt"):
        read_split_lines("eigen", "train", splits_dir)
    with pytest.raises(FileNotFoundError, match="absent.txt"):
        read_split_lines(tmp_path / "absent.txt")


@pytest.mark.parametrize(
    "bad, message",
    [
        ("2011_09_26/2011_09_26_drive_0001_sync 12", "expected"),
        ("2011_09_26/2011_09_26_drive_0001_sync 12 x", "side 'x'"),
        ("2011_09_26/2011_09_26_drive_0001_sync -3 l", "frame index '-3'"),
        ("2011_09_26_drive_0001_sync 12 l", "is not '<date>/<drive folder>'"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, bad, message):
    path = tmp_path / "train_files.txt"
    path.write_text("2011_09_26/2011_09_26_drive_0001_sync 10 l\n\n" + bad + "\n")
    with pytest.raises(ValueError, match=message) as error:
        read_split_lines(path)
    assert f"{path}:3" in str(error.value)


def test_empty_split_file_is_an_error(tmp_path):
    path = tmp_path / "val_files.txt"
    path.write_text("\n\n")
    with pytest.raises(ValueError, match=f"split file is empty: {path}"):
        read_split_lines(path)


def test_pinned_checksums_match_monodepth2_files(splits_dir):
    assert len(MONODEPTH2_COMMIT) == 40
    for relative, digest in MONODEPTH2_SPLITS.items():
        assert hashlib.sha256((splits_dir / relative).read_bytes()).hexdigest() == digest, relative


def test_download_verifies_checksums(splits_dir, tmp_path, monkeypatch):
    requested = []

    def fake_fetch(url):
        requested.append(url)
        return (splits_dir / url.split("/splits/", 1)[1]).read_bytes()

    monkeypatch.setattr(splits, "fetch_url", fake_fetch)
    written = download_splits(tmp_path / "splits")
    assert len(written) == len(MONODEPTH2_SPLITS)
    assert all(
        MONODEPTH2_COMMIT in url and url.startswith("https://raw.githubusercontent.com/nianticlabs/monodepth2/")
        for url in requested
    )
    assert (tmp_path / "splits/eigen_zhou/val_files.txt").read_bytes() == (
        splits_dir / "eigen_zhou/val_files.txt"
    ).read_bytes()
    assert list_splits(tmp_path / "splits")["eigen_zhou"] == {"train": 39810, "val": 4424}

    monkeypatch.setattr(splits, "fetch_url", lambda url: fake_fetch(url) + b"tampered\n")
    with pytest.raises(ValueError, match=r"checksum mismatch for .*eigen/test_files.txt"):
        download_splits(tmp_path / "other")
    assert not (tmp_path / "other" / "eigen" / "test_files.txt").exists()


def test_splits_command_lists_names_and_counts(tmp_path, capsys):
    assert cli.main(["splits", "--splits-dir", str(tiny_splits(tmp_path / "splits"))]) == 0
    out = capsys.readouterr().out
    assert "mine" in out and "train 3" in out and "val 1" in out
    assert "test 2" in out
    assert cli.main(["splits", "--download"]) == 2
    assert "--dest" in capsys.readouterr().err


def test_frame_keys_ignore_the_camera_and_shared_frames_keep_test_order():
    from mldanet.data.splits import frame_key, shared_frames

    assert frame_key("2011_09_26/drive_0002_sync 69 l") == frame_key("2011_09_26/drive_0002_sync 0000000069 r")
    assert frame_key("city_01 000003.jpg") == ("city_01", "000003.jpg")
    train = ["d/a 1 l", "d/a 2 r", "d/b 5 l"]
    test = ["d/b 5 l", "d/a 3 l", "d/a 2 l"]
    assert shared_frames(train, test) == ["d/b 5 l", "d/a 2 l"]
    assert shared_frames(train, ["d/c 1 l"]) == []
