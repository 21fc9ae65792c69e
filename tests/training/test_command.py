"""`mldanet train` as a user runs it: runs that refuse to overwrite one another, resuming a copied
run folder, weights-only best.pt, and one line per mistake naming the flag or file at fault."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

from mldanet.cli import build_parser, main
from mldanet.models.checkpoint import load_checkpoint, load_depth_net

from .configs import train_argv


def one_error_line(capsys) -> str:
    """The stderr of a refused command: exactly one line, no traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err.strip()


def snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under ``folder``: (mtime in ns, bytes)."""
    return {
        str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(folder.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def trained_run(kitti_fixture, tmp_path_factory) -> Path:
    """A run folder after 2 steps (checkpoint every step), kept read-only by the tests: they copy it."""
    out = tmp_path_factory.mktemp("trained") / "run"
    assert main(train_argv(kitti_fixture, out, "--max-steps", "2", "--checkpoint-every", "1", "--log-every", "1")) == 0
    return out


# ------------------------------------------------------------------------------------- 1. existing runs
def test_no_progress_prints_a_plain_line_every_log_every_steps(kitti_fixture, tmp_path, capsys):
    assert main(train_argv(kitti_fixture, tmp_path / "run", "--max-steps", "2", "--log-every", "1")) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("step ")]
    assert [line.split(":")[0] for line in lines] == ["step 1/2 epoch 0", "step 2/2 epoch 0"]
    for line in lines:
        assert " loss " in line and " steps/s (" in line and "samples/s), 0 skipped" in line and "\r" not in line


@pytest.mark.parametrize("files", [["checkpoints/last.pt"], ["checkpoints/best.pt"], ["checkpoints/healthy.pt"]])
def test_a_new_run_refuses_an_out_that_holds_a_run(kitti_fixture, tmp_path, capsys, monkeypatch, files):
    out = tmp_path / "run"
    for name in files:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(b"the previous run")
    before = snapshot(out)
    import mldanet.training.datasets as datasets

    # Refused before any work: the data is not even read.
    monkeypatch.setattr(datasets, "build_datasets", lambda *a, **k: pytest.fail("the data was read"))
    assert main(train_argv(kitti_fixture, out, "--max-steps", "1")) == 2
    assert one_error_line(capsys) == (
        f"mldanet train: error: --out {out} already holds a run ({', '.join(files)}): continue it with --resume {out}, "
        "train into a new --out, or add --overwrite to replace it"
    )
    assert snapshot(out) == before


def test_a_run_that_failed_before_its_first_checkpoint_can_be_started_again(kitti_fixture, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.yaml").write_text("train: {seed: 0}\n")  # all a run leaves that dies in its first step
    assert main(train_argv(kitti_fixture, out, "--max-steps", "1")) == 0
    assert load_checkpoint(out)["step"] == 1


def test_overwrite_replaces_the_run_in_out(kitti_fixture, trained_run, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(trained_run, out)
    (out / "checkpoints" / "best.pt").write_bytes(b"a best.pt of the previous run")
    assert main(train_argv(kitti_fixture, out, "--max-steps", "1", "--overwrite")) == 0
    stdout = capsys.readouterr().out
    assert (
        f"--overwrite: removed the previous run's checkpoints/last.pt, checkpoints/best.pt, checkpoints/config.yaml, "
        f"config.yaml, 1 TensorBoard event files from {out}"
    ) in stdout
    assert load_checkpoint(out)["step"] == 1
    assert not (out / "checkpoints" / "best.pt").exists()
    assert len(list((out / "tensorboard").glob("events.out.tfevents.*"))) == 1


# ------------------------------------------------------------------------------------- 2. resume
def test_resuming_a_copied_run_writes_into_the_copy_not_the_original(trained_run, tmp_path, capsys):
    original = tmp_path / "original"
    shutil.copytree(trained_run, original, copy_function=shutil.copy2)
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)
    before = snapshot(original)
    assert main(["train", "--resume", str(copy), "--max-steps", "3", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"resumed at step 2 from {copy / 'checkpoints' / 'last.pt'} -> {copy}" in out
    assert f"checkpoint {copy / 'checkpoints' / 'last.pt'}" in out
    assert snapshot(original) == before  # no byte and no mtime changed
    resumed = load_checkpoint(copy)
    assert resumed["step"] == 3 and resumed["config"]["train"]["out"] == str(copy)


def test_resume_into_another_out_that_holds_a_run_is_refused(trained_run, tmp_path, capsys):
    other = tmp_path / "other"
    (other / "checkpoints").mkdir(parents=True)
    (other / "checkpoints" / "last.pt").write_bytes(b"another run")
    assert main(["train", "--resume", str(trained_run), "--out", str(other), "--max-steps", "3"]) == 2
    assert one_error_line(capsys).startswith(f"mldanet train: error: --out {other} already holds a run (checkpoints/last.pt)")


def test_resume_from_a_loose_checkpoint_file_asks_for_out(trained_run, tmp_path, capsys):
    loose = tmp_path / "downloaded.pt"
    shutil.copy(trained_run / "checkpoints" / "last.pt", loose)
    assert main(["train", "--resume", str(loose), "--max-steps", "3"]) == 2
    assert one_error_line(capsys) == (
        f"mldanet train: error: --resume {loose}: the checkpoint is not in a run folder's checkpoints/ folder, so there "
        "is no run folder to continue in: give --out FOLDER for the resumed run"
    )


def test_resuming_a_finished_run_says_there_is_nothing_to_train(trained_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    before = snapshot(run)
    assert main(["train", "--resume", str(run), "--max-steps", "2", "--no-progress"]) == 0
    last = run / "checkpoints" / "last.pt"
    assert capsys.readouterr().out.strip() == (
        f"nothing to train: checkpoint {last} is already at step 2, the end of this run (optim.epochs=20, "
        "optim.max_steps=2); raise --epochs or --max-steps to train on"
    )
    assert snapshot(run) == before


# ------------------------------------------------------------------------------------- 4. best.pt
def test_best_pt_holds_the_weights_only_and_loads_everywhere_but_resume(kitti_fixture, tmp_path, capsys):
    out = tmp_path / "run"
    argv = train_argv(kitti_fixture, out, "--max-steps", "1", "--set", "train.validate=true", "--set", "train.max_val_batches=1")
    assert main(argv) == 0
    best, last = out / "checkpoints" / "best.pt", out / "checkpoints" / "last.pt"
    payload = load_checkpoint(best)
    assert set(payload) == {"format", "config", "depth_net", "pose_net", "loss_weighting", "epoch", "step", "best_abs_rel"}
    assert payload["step"] == 1 and 0 < payload["best_abs_rel"] < 10
    assert {"optimizer", "scaler", "rng"} <= set(load_checkpoint(last))
    # Adam keeps two moments per weight: the weights alone are about a third of last.pt.
    assert best.stat().st_size < 0.45 * last.stat().st_size
    net, config = load_depth_net(best)
    full, _ = load_depth_net(last)
    assert config.train.mode == "S" and all(torch.equal(v, full.state_dict()[k]) for k, v in net.state_dict().items())
    hub = torch.hub.load(str(Path(__file__).resolve().parents[2]), "mldanet", source="local", checkpoint=str(best))
    assert all(torch.equal(v, full.state_dict()[k]) for k, v in hub.state_dict().items())
    capsys.readouterr()
    assert main(["train", "--resume", str(best), "--max-steps", "2"]) == 2
    assert one_error_line(capsys) == (
        f"mldanet train: error: checkpoint {best} holds the weights only (no optimizer, scaler, rng, batch_in_epoch), "
        f"so a run cannot continue from it: --resume needs the run's last.pt ({last}), which keeps the optimiser and "
        "RNG state; best.pt is for evaluate, predict and export-onnx"
    )


# ------------------------------------------------------------------------------------- 5. one line per mistake
@pytest.mark.parametrize("kind", ["text", "empty", "one byte", "foreign zip"])
def test_a_file_that_is_not_a_checkpoint_is_one_line_naming_it(tmp_path, capsys, kind):
    path = tmp_path / "run" / "checkpoints" / "last.pt"
    path.parent.mkdir(parents=True)
    what = {
        "text": "(a text file)",
        "empty": "",
        "one byte": "(not a PyTorch zip archive)",
        "foreign zip": "(no 'mldanet-checkpoint/1' format tag)",
    }[kind]
    if kind == "text":
        path.write_text("epoch 1 loss 0.2\n")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "one byte":
        path.write_bytes(b"\x80")
    else:
        torch.save({"state_dict": {}}, path)
    expected = (
        f"{path} is an empty file, not an mldanet checkpoint (a copy or download cut short?)" if kind == "empty"
        else f"{path} is not an mldanet checkpoint {what}"
    ) + ": give a checkpoints/last.pt or best.pt written by mldanet train"
    assert main(["train", "--resume", str(path)]) == 2
    assert one_error_line(capsys) == f"mldanet train: error: {expected}"
    assert main(["predict", str(tmp_path), "--checkpoint", str(path), "--out", str(tmp_path / "pred")]) == 2
    assert one_error_line(capsys) == f"mldanet predict: error: {expected}"


def test_a_run_folder_without_a_checkpoint_is_named(tmp_path, capsys):
    folder = tmp_path / "empty_run"
    folder.mkdir()
    assert main(["train", "--resume", str(folder)]) == 2
    assert one_error_line(capsys) == f"mldanet train: error: checkpoint not found: {folder / 'checkpoints' / 'last.pt'}"


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--lr", "-1"], "optim.lr=-1.0 must be a positive learning rate (set by --lr or --set optim.lr=...)"),
        (["--set", "optim.lr=0"], "optim.lr=0.0 must be a positive learning rate (set by --lr or --set optim.lr=...)"),
        (["--max-steps", "-5"], "--max-steps -5: give a positive number of steps (leave the flag out to run all --epochs)"),
        (["--max-steps", "0"], "--max-steps 0: give a positive number of steps (leave the flag out to run all --epochs)"),
        (["--epochs", "0"], "--epochs 0: give a positive number of passes over the training split"),
        (["--set", "optim.epochs=0"], "optim.epochs=0 must be at least 1 (set by --epochs)"),
        (["--log-every", "0"], "train.log_every=0 must be at least 1 (set by --log-every)"),
        (["--num-workers", "-1"], "data.num_workers=-1 must be 0 or more (set by --num-workers)"),
    ],
)
def test_bad_numbers_are_one_line_naming_the_flag_and_nothing_is_written(kitti_fixture, tmp_path, capsys, flags, message):
    out = tmp_path / "run"
    assert main(train_argv(kitti_fixture, out, *flags)) == 2
    assert one_error_line(capsys) == f"mldanet train: error: {message}"
    assert not out.exists()


def test_an_out_that_is_a_file_or_read_only_is_refused_before_any_work(kitti_fixture, tmp_path, capsys, monkeypatch):
    import mldanet.training.datasets as datasets

    monkeypatch.setattr(datasets, "build_datasets", lambda *a, **k: pytest.fail("the data was read"))
    a_file = tmp_path / "out.txt"
    a_file.write_text("not a folder")
    assert main(train_argv(kitti_fixture, a_file)) == 2
    assert one_error_line(capsys) == f"mldanet train: error: run folder (--out) {a_file} is a file, not a folder"

    read_only = tmp_path / "read_only"
    read_only.mkdir()
    real_access = os.access
    # We run as root, which chmod does not stop: the check is made to see a read-only folder.
    monkeypatch.setattr(os, "access", lambda path, mode: False if Path(path) == read_only else real_access(path, mode))
    assert main(train_argv(kitti_fixture, read_only)) == 2
    assert one_error_line(capsys) == (
        f"mldanet train: error: cannot write into run folder (--out) {read_only}: the folder is not writable"
    )


def test_a_data_path_that_is_a_file_says_so(kitti_fixture, tmp_path, capsys):
    a_file = tmp_path / "kitti.tar"
    a_file.write_bytes(b"an archive, not the unpacked folder")
    assert main([*train_argv(kitti_fixture, tmp_path / "run"), "--data-path", str(a_file)]) == 2
    assert one_error_line(capsys) == f"mldanet train: error: data path {a_file} is a file, not a folder"


def test_a_hints_folder_that_is_a_file_says_so(kitti_fixture, tmp_path, capsys):
    a_file = tmp_path / "hints.tar"
    a_file.write_bytes(b"an archive")
    argv = [*train_argv(kitti_fixture, tmp_path / "run"), "--hints-dir", str(a_file), "--set", "loss.use_hints=true"]
    assert main(argv) == 2
    assert one_error_line(capsys) == f"mldanet train: error: hints folder (--hints-dir) {a_file} is a file, not a folder"


def test_a_validation_split_emptied_by_skipping_says_how_to_train_without_it(kitti_fixture, tmp_path, capsys):
    val = tmp_path / "splits" / "mine" / "val_files.txt"
    val.parent.mkdir(parents=True)
    val.write_text("2011_10_03/2011_10_03_drive_0099_sync 3 l\n")
    shutil.copy(Path(kitti_fixture["splits"]) / "fixture" / "train_files.txt", val.parent)
    argv = [*train_argv(kitti_fixture, tmp_path / "run"), "--splits-dir", str(val.parent.parent), "--split", "mine",
            "--set", "train.validate=true", "--set", "data.skip_missing=true"]
    assert main(argv) == 2
    line = one_error_line(capsys)
    assert f"no usable lines in {val}: 1 given, 1 skipped" in line
    assert line.endswith("--set train.validate=false trains without validation")


def test_missing_files_name_the_flag_that_skips_them(kitti_fixture, tmp_path, capsys):
    split = tmp_path / "train_files.txt"
    split.write_text("2011_10_03/2011_10_03_drive_0000_sync 1 l\n2011_10_03/2011_10_03_drive_0099_sync 3 r\n")
    assert main(train_argv(kitti_fixture, tmp_path / "run", "--split-file", str(split))) == 2
    line = one_error_line(capsys)
    assert "--set data.skip_missing=true drops those lines" in line and "skip_missing=True" not in line


# ------------------------------------------------------------------------------------- 6. help
def test_every_train_option_has_help_and_img_ext_has_the_choices_of_evaluate():
    parser = build_parser("train")
    train = parser._subparsers._group_actions[0].choices["train"]
    evaluate = build_parser("evaluate")._subparsers._group_actions[0].choices["evaluate"]
    options = {action.option_strings[0]: action for action in train._actions if action.option_strings}
    undocumented = [name for name, action in options.items() if not action.help]
    assert undocumented == []
    img_ext = {a.option_strings[0]: a for a in evaluate._actions if a.option_strings}["--img-ext"]
    assert tuple(options["--img-ext"].choices) == tuple(img_ext.choices) == (".jpg", ".png")


def test_an_image_extension_outside_the_choices_is_refused(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["train", "--img-ext", "jpg"])
    assert exited.value.code == 2
    assert "argument --img-ext: invalid choice: 'jpg' (choose from '.jpg', '.png')" in capsys.readouterr().err


def test_two_trainings_started_together_into_one_out_one_is_refused(kitti_fixture, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "race"
    argv = [sys.executable, "-m", "mldanet", *train_argv(kitti_fixture, out, "--max-steps", "30")]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=600), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], results
    (_, _, refused_err), = [r for r in results if r[0] == 2]
    winner = next(p for p, r in zip(procs, results) if r[0] == 0)
    assert "Traceback" not in refused_err and len(refused_err.strip().splitlines()) == 1, refused_err
    assert refused_err.startswith(f"mldanet train: error: run folder --out {out} is in use by `mldanet train` (PID {winner.pid} on ")
    assert len(list((out / "tensorboard").glob("events.out.tfevents.*"))) == 1
    assert not (out / ".mldanet.lock").exists()


def test_without_num_workers_the_workers_fit_the_machine_said_once(kitti_fixture, tmp_path, capsys, monkeypatch):
    import mldanet.device as device

    monkeypatch.setattr(device, "usable_cores", lambda: 2)
    argv = train_argv(kitti_fixture, tmp_path / "run", "--max-steps", "1")
    at = argv.index("--num-workers")
    del argv[at:at + 2]
    assert main([*argv, "--set", "data.num_workers=4"]) == 0  # chosen by the user: kept
    assert "data.num_workers" not in capsys.readouterr().out
    assert load_checkpoint(tmp_path / "run")["config"]["data"]["num_workers"] == 4
    assert main([*argv[:argv.index("--out") + 1], str(tmp_path / "fitted"), *argv[argv.index("--out") + 2:]]) == 0
    captured = capsys.readouterr()
    assert captured.out.count("data.num_workers 4 → 1: this machine gives the process 2 cores (--num-workers N sets it)") == 1
    assert "suggested max number of worker" not in captured.err
    assert load_checkpoint(tmp_path / "fitted")["config"]["data"]["num_workers"] == 1


def test_a_resume_with_other_settings_says_each_change_and_records_it(trained_run, tmp_path, capsys):
    import yaml

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    assert main(["train", "--resume", str(run), "--max-steps", "3", "--batch-size", "1", "--lr", "5e-5",
                 "--no-progress"]) == 0
    said = [line for line in capsys.readouterr().out.splitlines() if line.startswith("resumed with another setting")]
    assert said == [
        f"resumed with another setting: {change} (from step 2; recorded in the run's config history)"
        for change in ("optim.lr 0.0001 → 5e-05", "optim.batch_size 2 → 1", "optim.max_steps 2 → 3")
    ]
    history = ["step 2: optim.lr 0.0001 → 5e-05", "step 2: optim.batch_size 2 → 1", "step 2: optim.max_steps 2 → 3"]
    assert yaml.safe_load((run / "config.yaml").read_text())["history"] == history
    assert load_checkpoint(run)["config"]["history"] == history
    # Continuing with the same settings says nothing and keeps the history.
    assert main(["train", "--resume", str(run), "--max-steps", "4", "--no-progress"]) == 0
    assert capsys.readouterr().out.count("resumed with another setting") == 1  # only max_steps
    assert load_checkpoint(run)["config"]["history"] == [*history, "step 3: optim.max_steps 3 → 4"]


def test_config_changes_lists_every_differing_key_but_the_ignored():
    from mldanet.config import Config, config_changes

    before, after = Config(), Config()
    after.data.height, after.train.out, after.model.backbone = 96, "elsewhere", "resnet50"
    assert config_changes(before, after) == [
        "model.backbone 'resnet18' → 'resnet50'", f"data.height {before.data.height} → 96", "train.out 'runs/mldanet' → 'elsewhere'"
    ]
    assert config_changes(before, after, ignore=("train.out", "model.backbone")) == [f"data.height {before.data.height} → 96"]
    assert config_changes(before, Config()) == []


def test_train_says_the_checkpoint_sizes_and_keeps_what_it_is_told(kitti_fixture, tmp_path, capsys):
    assert main(train_argv(kitti_fixture, tmp_path / "both", "--max-steps", "1")) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("checkpoints: "))
    last = (tmp_path / "both" / "checkpoints" / "last.pt").stat().st_size
    shown = float(line.split("last.pt ")[1].split(" MB")[0])
    assert shown == pytest.approx(last / 1e6, rel=0.02)  # the estimate is the file's size within 2 %
    assert "train.keep=both (--keep last|best|both)" in line


def test_keep_last_writes_no_best_and_keep_best_drops_last_at_the_end(kitti_fixture, tmp_path):
    validate = ["--set", "train.validate=true", "--set", "data.val_every=2"]
    assert main([*train_argv(kitti_fixture, tmp_path / "last", "--max-steps", "2", "--keep", "last"), *validate]) == 0
    assert sorted(p.name for p in (tmp_path / "last" / "checkpoints").glob("*.pt")) == ["last.pt"]
    assert main([*train_argv(kitti_fixture, tmp_path / "best", "--max-steps", "2", "--keep", "best"), *validate]) == 0
    assert sorted(p.name for p in (tmp_path / "best" / "checkpoints").glob("*.pt")) == ["best.pt"]


def test_too_little_free_space_is_refused_with_the_numbers_before_any_checkpoint(kitti_fixture, tmp_path, capsys, monkeypatch):
    import shutil as shutil_module
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil_module, "disk_usage", lambda path: usage(10**9, 10**9 - 5_000_000, 5_000_000))
    out = tmp_path / "full"
    assert main(train_argv(kitti_fixture, out, "--max-steps", "1")) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"mldanet train: error: not enough free space for the checkpoints in {out}: they need up to ")
    assert "5.0 MB is free; free some space, train into another --out, or add --keep last (no best.pt)" in err
    assert not list(out.rglob("*.pt"))


def test_a_training_list_with_one_eigen_test_frame_is_refused_naming_it(kitti_fixture, tmp_path, capsys):
    from tests.conftest import KITTI_DATE, KITTI_DRIVE

    splits = tmp_path / "splits"
    shutil.copytree(kitti_fixture["splits"], splits)
    leaked = f"{KITTI_DATE}/{KITTI_DRIVE} 2 l"
    (splits / "eigen").mkdir()
    (splits / "eigen" / "test_files.txt").write_text(f"{KITTI_DATE}/{KITTI_DRIVE} 0 l\n{leaked}\n")
    argv = train_argv(kitti_fixture, tmp_path / "run", "--max-steps", "1")
    argv[argv.index("--splits-dir") + 1] = str(splits)
    assert main(argv) == 2
    assert one_error_line(capsys) == (
        f"mldanet train: error: the training list {splits / 'fixture' / 'train_files.txt'} holds 1 of the 2 test frames of "
        f"{splits / 'eigen' / 'test_files.txt'} (first: '{leaked}'): a model trained on the frames it is scored on reports "
        "numbers it has not earned; remove them from the training list"
    )
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_evaluate_warns_when_the_run_trained_on_frames_it_scores(trained_run, kitti_fixture, tmp_path, capsys):
    from tests.conftest import KITTI_DATE, KITTI_DRIVE

    recorded = (trained_run / "train_files.txt").read_text().splitlines()
    assert recorded == (kitti_fixture["splits"] / "fixture" / "train_files.txt").read_text().splitlines()
    split = tmp_path / "test_files.txt"
    for lines, warned in (([f"{KITTI_DATE}/{KITTI_DRIVE} 0 l", f"{KITTI_DATE}/{KITTI_DRIVE} 2 l"], True),
                          ([f"{KITTI_DATE}/{KITTI_DRIVE} 0 l"], False)):
        split.write_text("\n".join(lines) + "\n")
        assert main(["evaluate", "--checkpoint", str(trained_run), "--data-path", str(kitti_fixture["data"]),
                     "--split-file", str(split), "--num-workers", "0"]) == 0
        err = capsys.readouterr().err
        expected = (f"warning: the run of {trained_run / 'checkpoints' / 'last.pt'} trained on 1 of the 2 frames scored "
                    f"here (its {trained_run / 'train_files.txt'}; first: '{KITTI_DATE}/{KITTI_DRIVE} 2 l')")
        assert (expected in err) is warned, err
