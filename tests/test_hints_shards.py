"""``mldanet hints --shard K/N``: disjoint, balanced, machine-independent shares; shards running at
once into one folder write exactly the files of one run; the settings file agreed under races;
one lock per shard."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mldanet import cli
from mldanet.commands.hints import hints_folder_lock, shard_lock_name
from mldanet.data import depth_hints as hints
from mldanet.data.depth_hints import HintJob, Shard, agree_settings_file, create_exclusive, parse_shard, shard_jobs
from mldanet.folder_lock import LOCK_NAME, FolderLock, FolderLocked

from .data.kitti_layout import FOLDER, make_kitti_drive, write_lines

SRC = Path(__file__).resolve().parents[1] / "src"
SMALL = ["--height", "48", "--width", "160", "--block-sizes", "1", "--num-disparities", "16", "--workers", "1"]


@pytest.mark.parametrize(("text", "shard"), [("1/1", Shard(1, 1)), ("2/4", Shard(2, 4)), (" 4 / 4 ", Shard(4, 4))])
def test_parse_shard_reads_k_of_n_counting_from_one(text, shard):
    assert parse_shard(text) == shard and str(shard) == text.replace(" ", "")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("3/2", "--shard 3/2: K must be between 1 and N=2 (K counts from 1)"),
        ("0/2", "--shard 0/2: K must be between 1 and N=2 (K counts from 1)"),
        ("0/0", "--shard 0/0: N (the number of shards) must be at least 1"),
        ("x/y", "--shard 'x/y' is not K/N (two whole numbers, such as 1/4)"),
        ("/4", "--shard '/4' is not K/N (two whole numbers, such as 1/4)"),
        ("-1/2", "--shard '-1/2' is not K/N (two whole numbers, such as 1/4)"),
        ("1/2/3", "--shard '1/2/3' is not K/N (two whole numbers, such as 1/4)"),
        ("", "--shard '' is not K/N (two whole numbers, such as 1/4)"),
    ],
)
def test_parse_shard_names_a_bad_value(text, message):
    with pytest.raises(ValueError) as refused:
        parse_shard(text)
    assert str(refused.value) == message


def test_a_bad_shard_is_a_one_line_user_error(tmp_path, capsys):
    argv = ["hints", "--data-path", str(tmp_path), "--split-file", "x", "--out", str(tmp_path / "h"), "--shard", "3/2"]
    assert cli.main(argv) == 2
    assert capsys.readouterr().err == "mldanet hints: error: --shard 3/2: K must be between 1 and N=2 (K counts from 1)\n"
    assert not (tmp_path / "h").exists()  # refused before the folder is made


def jobs_under(out: Path, names: list[str]) -> list[HintJob]:
    return [HintJob(f"img/{name}", f"other/{name}", str(out / name), 0.58) for name in names]


def test_shards_are_disjoint_balanced_and_the_same_on_every_machine():
    # names whose order differs between locales (case, '-' vs '_', accents) and one job listed twice
    names = [f"2011_09_26/drive_{d:04d}_sync/image_0{s}/{f:010d}.npy" for d in (1, 2) for s in (2, 3) for f in range(5)]
    names += ["B/x.npy", "a/x.npy", "a-b/x.npy", "a_b/x.npy", "é/x.npy", "e/x.npy"]
    jobs = jobs_under(Path("/mnt/cluster/hints"), names + names[:1])
    # the reference: rank in code-point order of the relative path, taken modulo N
    ranked = sorted(names, key=lambda name: [ord(c) for c in name])
    for count in (1, 2, 3, 7, len(names), len(names) + 3):
        shares = [[Path(j.out).relative_to("/mnt/cluster/hints").as_posix() for j in
                   shard_jobs(jobs, "/mnt/cluster/hints", Shard(k, count))] for k in range(1, count + 1)]
        assert shares == [[n for i, n in enumerate(ranked) if i % count == k] for k in range(count)]
        assert sorted(sum(shares, [])) == sorted(names)  # disjoint, and together every job
        assert max(map(len, shares)) - min(map(len, shares)) <= 1
    # another machine: the folder mounted elsewhere (a relative path), the jobs listed in another order
    elsewhere = jobs_under(Path("hints"), list(reversed(names)))
    for k in (1, 2, 3):
        here = [Path(j.out).relative_to("/mnt/cluster/hints") for j in shard_jobs(jobs, "/mnt/cluster/hints", Shard(k, 3))]
        there = [Path(j.out).relative_to("hints") for j in shard_jobs(elsewhere, "hints", Shard(k, 3))]
        assert here == there


def shard_process(root: Path, split: Path, out: Path, shard: str) -> subprocess.Popen:
    argv = ["--data-path", str(root), "--split-file", str(split), "--out", str(out), *SMALL, "--shard", shard]
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.Popen([sys.executable, "-m", "mldanet", "hints", *argv], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_two_shards_at_once_write_exactly_the_files_of_one_run(kitti_sample, tmp_path, capsys):
    root = make_kitti_drive(kitti_sample, tmp_path / "kitti")
    lines = [f"{FOLDER} {frame} {side}" for frame in (0, 1, 2) for side in ("l", "r")][:5]  # 5 jobs: 3 + 2
    split = write_lines(tmp_path / "lines.txt", lines)
    one, sharded = tmp_path / "one", tmp_path / "sharded"
    assert cli.main(["hints", "--data-path", str(root), "--split-file", str(split), "--out", str(one), *SMALL]) == 0
    assert "5 hints computed" in capsys.readouterr().out

    runs = [shard_process(root, split, sharded, shard) for shard in ("1/2", "2/2")]
    (out1, err1), (out2, err2) = (run.communicate(timeout=300) for run in runs)
    assert [run.returncode for run in runs] == [0, 0], err1 + err2
    assert out1.startswith("shard 1/2: 3 of 5 jobs; 3 hints computed, 0 already present, 0 missing inputs;")
    assert out2.startswith("shard 2/2: 2 of 5 jobs; 2 hints computed, 0 already present, 0 missing inputs;")
    assert "depth hints, shard 1/2 (3 of 5 jobs)" in err1 and "depth hints, shard 2/2 (2 of 5 jobs)" in err2

    def files(folder: Path) -> dict[str, bytes]:
        return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}

    expected = files(one)
    assert len([name for name in expected if name.endswith(".npy")]) == 5 and hints.SETTINGS_FILE in expected
    assert files(sharded).keys() == expected.keys()  # no lock, temporary or other file left
    for name, data in files(sharded).items():
        assert data == expected[name], name  # byte for byte, the settings file too

    # a run without --shard finds everything done; a shard run again finds its share done
    argv = ["hints", "--data-path", str(root), "--split-file", str(split), "--out", str(sharded), *SMALL]
    assert cli.main(argv) == 0
    assert capsys.readouterr().out.startswith("0 hints computed, 5 already present")
    assert cli.main([*argv, "--shard", "2/2"]) == 0
    assert capsys.readouterr().out.startswith("shard 2/2: 2 of 5 jobs; 0 hints computed, 2 already present")


def test_a_shard_with_other_settings_is_refused_naming_the_keys(kitti_sample, tmp_path, capsys):
    root = make_kitti_drive(kitti_sample, tmp_path / "kitti", frames=(1,))
    split = write_lines(tmp_path / "lines.txt", [f"{FOLDER} 1 l", f"{FOLDER} 1 r"])
    out = tmp_path / "hints"
    argv = ["hints", "--data-path", str(root), "--split-file", str(split), "--out", str(out), *SMALL]
    assert cli.main([*argv, "--shard", "1/2"]) == 0
    recorded = (out / hints.SETTINGS_FILE).read_bytes()
    capsys.readouterr()
    assert cli.main([*argv, "--shard", "2/2", "--width", "192"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"mldanet hints: error: the hints in {out} were computed with other settings ({out / hints.SETTINGS_FILE}: "
        "width 160 there, 192 asked): pass --overwrite to compute them again with these, or choose another --out"
    )
    assert (out / hints.SETTINGS_FILE).read_bytes() == recorded and len(list(out.rglob("*.npy"))) == 1


ASKED = {"height": 48, "width": 160, "block_sizes": [1]}


@pytest.mark.parametrize("theirs", [ASKED, {**ASKED, "width": 320, "block_sizes": [1, 3]}])
def test_a_settings_file_appearing_between_check_and_write_is_compared(tmp_path, monkeypatch, theirs):
    path = tmp_path / hints.SETTINGS_FILE
    real_link = os.link

    def another_shard_first(source, target):  # the other shard creates the record after our check
        Path(target).write_text(json.dumps(theirs))
        return real_link(source, target)

    monkeypatch.setattr(hints.os, "link", another_shard_first)
    if theirs == ASKED:
        agree_settings_file(path, ASKED)
    else:
        with pytest.raises(ValueError) as refused:
            agree_settings_file(path, ASKED)
        assert f"({path}: width 320 there, 160 asked; block_sizes [1, 3] there, [1] asked)" in str(refused.value)
    assert json.loads(path.read_text()) == theirs  # theirs stays, never overwritten
    assert [p.name for p in tmp_path.iterdir()] == [hints.SETTINGS_FILE]  # no temporary file left


def test_create_exclusive_without_hard_links_still_creates_once(tmp_path, monkeypatch):
    def no_links(source, target):
        raise PermissionError(1, "Operation not permitted", str(source))

    monkeypatch.setattr(hints.os, "link", no_links)
    path = tmp_path / "record.json"
    assert create_exclusive(path, b"first") and path.read_bytes() == b"first"
    assert not create_exclusive(path, b"second") and path.read_bytes() == b"first"
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]


RACER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from mldanet.data.depth_hints import agree_settings_file
    folder, width, count = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    while not (folder / "go").exists():
        time.sleep(0.001)
    refused = []
    for i in range(count):
        try:
            agree_settings_file(folder / f"{i}.json", {"height": 48, "width": width})
        except ValueError:
            refused.append(i)
    print(json.dumps(refused))
    """
)


@pytest.mark.parametrize("widths", [(160, 160), (160, 320)])
def test_two_processes_racing_for_the_settings_file_end_up_agreeing(tmp_path, widths):
    count = 200
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    racers = [subprocess.Popen([sys.executable, "-c", RACER, str(tmp_path), str(width), str(count)], env=env,
                               stdout=subprocess.PIPE, text=True) for width in widths]
    time.sleep(1.0)  # both import and wait for the start
    (tmp_path / "go").touch()
    refused = [set(json.loads(racer.communicate(timeout=120)[0])) for racer in racers]
    records = [json.loads((tmp_path / f"{i}.json").read_text())["width"] for i in range(count)]
    if widths[0] == widths[1]:
        assert refused == [set(), set()] and records == [160] * count
    else:
        # each file holds exactly one racer's record, and the other racer (only it) was refused
        for i, width in enumerate(records):
            loser = widths.index(width) ^ 1
            assert i in refused[loser] and i not in refused[1 - loser]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["go", *(f"{i}.json" for i in range(count))])


def test_shards_share_a_folder_but_not_a_shard(tmp_path):
    def refused(shard: Shard | None) -> str:
        with pytest.raises(FolderLocked) as error:
            hints_folder_lock(str(tmp_path), shard).acquire()
        return str(error.value)

    with hints_folder_lock(str(tmp_path), Shard(1, 2)):
        assert (tmp_path / shard_lock_name(Shard(1, 2))).is_file()
        assert "is in use by `mldanet hints --shard 1/2` (PID" in refused(Shard(1, 2))
        with hints_folder_lock(str(tmp_path), Shard(2, 2)):
            assert "`mldanet hints --shard 1/2`" in refused(None)  # a whole run would write the shards' files
            assert "`mldanet hints --shard" in refused(Shard(1, 3))  # other shares overlap this N's
        assert str(tmp_path / shard_lock_name(Shard(1, 2))) in refused(Shard(3, 4))
    with hints_folder_lock(str(tmp_path), None):
        assert "is in use by `mldanet hints` (PID" in refused(Shard(1, 2))
        assert "is in use by `mldanet hints` (PID" in refused(None)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # every refusal took its own lock back


def test_a_conflicting_lock_of_a_dead_process_does_not_block(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    stale = {"host": socket.gethostname(), "pid": child.pid, "command": "mldanet hints", "started": time.time()}
    (tmp_path / LOCK_NAME).write_text(json.dumps(stale))
    with FolderLock(tmp_path, "mldanet hints --shard 1/2", name=".mldanet-x.lock", conflicts=lambda name: True):
        assert (tmp_path / ".mldanet-x.lock").is_file()
    assert (tmp_path / LOCK_NAME).is_file()  # not ours to remove: only its own name's lock is taken over


def test_a_second_process_on_the_same_shard_is_refused_by_the_command(kitti_sample, tmp_path, capsys):
    root = make_kitti_drive(kitti_sample, tmp_path / "kitti", frames=(1,))
    split = write_lines(tmp_path / "lines.txt", [f"{FOLDER} 1 l", f"{FOLDER} 1 r"])
    out = tmp_path / "hints"
    argv = ["hints", "--data-path", str(root), "--split-file", str(split), "--out", str(out), *SMALL]
    with hints_folder_lock(str(out.mkdir() or out), Shard(1, 2)):
        assert cli.main([*argv, "--shard", "1/2"]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"mldanet hints: error: hints folder --out {out} is in use by `mldanet hints --shard 1/2`")
        assert cli.main([*argv, "--shard", "2/2"]) == 0
        assert capsys.readouterr().out.startswith("shard 2/2: 1 of 2 jobs; 1 hints computed")
    assert len(list(out.rglob("*.npy"))) == 1
