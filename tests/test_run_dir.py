"""The run folder's layout and its resume/overwrite policy (mldanet.run_dir): pure paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from mldanet.run_dir import (
    RunDir,
    named_checkpoint,
    refuse_existing_run,
    remove_previous_run,
    resume_checkpoint,
    resumed_run,
)


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_the_layout_is_spelled_as_the_docs_say(tmp_path):
    run = RunDir(tmp_path)
    assert run.last == tmp_path / "checkpoints" / "last.pt"
    assert run.best == tmp_path / "checkpoints" / "best.pt"
    assert run.healthy == tmp_path / "checkpoints" / "healthy.pt"
    assert run.checkpoint("best.pt") == run.best
    assert run.config == tmp_path / "config.yaml" and run.checkpoint_config == tmp_path / "checkpoints" / "config.yaml"
    assert run.tensorboard == tmp_path / "tensorboard" and run.trained_lines == tmp_path / "train_files.txt"
    assert RunDir(str(tmp_path)) == run  # a string or a Path, the same folder


def test_only_a_checkpoint_makes_a_folder_a_run(tmp_path):
    run = RunDir(tmp_path)
    assert not run.is_run()
    touch(run.config)
    touch(run.checkpoint_config)
    assert not run.is_run() and run.run_files() == [run.checkpoint_config, run.config]
    touch(run.best)
    assert run.is_run() and run.checkpoint_files() == [run.best]


def test_a_folder_stands_for_its_last_pt(tmp_path):
    loose = touch(tmp_path / "some.pt")
    assert RunDir.resolve(loose) == loose
    assert RunDir.resolve(tmp_path / "missing.pt") == tmp_path / "missing.pt"
    run = tmp_path / "run"
    run.mkdir()
    # nothing written yet: the run folder's last.pt, which a loader then names as missing
    assert RunDir.resolve(run) == run / "checkpoints" / "last.pt"
    touch(run / "checkpoints" / "last.pt")
    assert RunDir.resolve(run) == run / "checkpoints" / "last.pt"
    assert RunDir.resolve(run / "checkpoints") == run / "checkpoints" / "last.pt"  # a folder of checkpoints


def test_a_checkpoint_knows_its_run(tmp_path):
    assert RunDir.of_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt") == RunDir(tmp_path / "run")
    assert RunDir.of_checkpoint(tmp_path / "best.pt") is None
    run = RunDir(tmp_path / "run")
    assert run.holds(tmp_path / "run" / "checkpoints" / "last.pt")
    (tmp_path / "run" / "x").mkdir(parents=True)
    assert run.holds(tmp_path / "run" / "x" / ".." / "checkpoints" / "last.pt")  # the same folder, spelled otherwise
    assert not run.holds(tmp_path / "other" / "checkpoints" / "last.pt") and not run.holds(None)


def test_resume_names_a_checkpoint_auto_and_none_do_not(tmp_path):
    assert named_checkpoint(None) is None and named_checkpoint("auto") is None
    assert named_checkpoint(str(tmp_path / "a.pt")) == tmp_path / "a.pt"
    assert named_checkpoint(str(tmp_path)) == tmp_path / "checkpoints" / "last.pt"


def test_a_resumed_run_writes_into_the_folder_that_holds_its_checkpoint(tmp_path):
    assert resumed_run(tmp_path / "copy" / "checkpoints" / "last.pt", out_given=False) == RunDir(tmp_path / "copy")
    assert resumed_run(tmp_path / "loose.pt", out_given=True) is None
    with pytest.raises(ValueError, match=r"--resume .*loose\.pt: the checkpoint is not in a run folder's checkpoints/ folder.*--out"):
        resumed_run(tmp_path / "loose.pt", out_given=False)


def test_continuing_prefers_the_run_folders_last_pt(tmp_path):
    asked = []

    def out_for(named):
        asked.append(named)
        return tmp_path / "out"

    named = tmp_path / "old" / "checkpoints" / "last.pt"
    assert resume_checkpoint(str(named), False, out_for) == named and asked == []
    assert resume_checkpoint(str(named), True, out_for) == named  # no last.pt in out yet
    assert asked == [named]
    last = touch(tmp_path / "out" / "checkpoints" / "last.pt")
    assert resume_checkpoint("auto", True, out_for) == last
    assert resume_checkpoint(None, False, out_for) is None


def test_a_new_run_refuses_a_folder_holding_a_run_unless_asked(tmp_path):
    run = RunDir(tmp_path / "out")
    touch(run.config)
    refuse_existing_run(run, None, overwrite=False)  # a config alone is no run
    touch(run.last)
    touch(run.healthy)
    with pytest.raises(ValueError) as raised:
        refuse_existing_run(run, None, overwrite=False)
    assert str(raised.value) == (
        f"--out {run.root} already holds a run (checkpoints/last.pt, checkpoints/healthy.pt): continue it with "
        f"--resume {run.root}, train into a new --out, or add --overwrite to replace it"
    )
    with pytest.raises(ValueError):
        refuse_existing_run(run, tmp_path / "other" / "checkpoints" / "last.pt", overwrite=False)
    refuse_existing_run(run, None, overwrite=True)
    refuse_existing_run(run, run.last, overwrite=False)  # --resume auto finds last.pt and continues it


def test_resume_auto_does_not_restart_over_a_finished_keep_best_run(tmp_path):
    # train.keep=best dropped last.pt at the end: nothing to continue, and a fresh start would
    # overwrite best.pt at its first validation
    run = RunDir(tmp_path / "out")
    touch(run.best)
    assert resume_checkpoint("auto", True, lambda named: run.root) is None
    with pytest.raises(ValueError, match=r"already holds a run \(checkpoints/best.pt\)"):
        refuse_existing_run(run, None, overwrite=False)


def test_overwrite_removes_the_run_and_its_events_only(tmp_path):
    run = RunDir(tmp_path)
    for path in (run.last, run.best, run.checkpoint_config, run.config, run.tensorboard / "events.out.tfevents.1.host"):
        touch(path)
    kept = [touch(run.trained_lines), touch(run.tensorboard / "notes.txt"), touch(run.checkpoints / "mine.pt")]
    removed = remove_previous_run(run)
    assert removed == ["checkpoints/last.pt", "checkpoints/best.pt", "checkpoints/config.yaml", "config.yaml",
                       "1 TensorBoard event files"]
    assert sorted(p for p in tmp_path.rglob("*") if p.is_file()) == sorted(kept)
    assert remove_previous_run(run) == []
