"""``mldanet train``: a preset or YAML config, ``--set key=value`` overrides, then the common flags.

The same command runs under ``torchrun`` (one process per GPU, see
:mod:`mldanet.training.distributed`). ``--resume auto`` continues from ``<out>/checkpoints/last.pt``
when it exists and starts afresh otherwise; workers that ``torchrun --max-restarts`` restarts
after a failure do that without being asked.

Nothing is lost without being asked: a new run refuses an ``--out`` that holds a run (unless
``--overwrite``), ``--resume DIR`` writes into DIR (not into the ``train.out`` saved in the
checkpoint, which may be the run DIR was copied from), and Ctrl-C or SIGTERM stop after the
current step with ``last.pt`` written (exit code 130).
"""

from __future__ import annotations

import argparse
import copy
import sys
import typing
from pathlib import Path
from typing import Literal

from mldanet.config import Config, apply_overrides, config_from_dict, field_types, load_config_file, load_preset
from mldanet.folder_lock import FolderLock
from mldanet.paths import require_dir, require_writable_dir

# --flag -> (config key, help). The flag's type and choices come from the key's declared type in
# mldanet.config; a flag left unset keeps the preset's value.
FLAGS: dict[str, tuple[str, str]] = {
    "dataset": ("data.dataset", "layout of --data-path: {datasets}; kitti is KITTI raw (the default), folder your "
                                "own sequences (a folder of frames per sequence and a camera file, see README)"),
    "data_path": ("data.data_path", "the dataset's root: KITTI raw, or the folder of your sequences"),
    "intrinsics": ("data.intrinsics", "--dataset folder: camera file with the 3×3 K in pixels and its image size "
                                      "(default DATA/camera.yaml; a sequence's own camera.yaml wins)"),
    "frame_step": ("data.frame_step", "temporal neighbours are this many frames away: subsamples a high frame rate"),
    "splits_dir": ("data.splits_dir", "folder holding split folders (default $MLDANET_SPLITS_DIR)"),
    "split": ("data.split", "split name, e.g. eigen_zhou (M, MS) or eigen_full (S)"),
    "hints_dir": ("data.hints_dir", "precomputed depth hints (mldanet hints --out)"),
    "img_ext": ("data.img_ext", "image extension of the KITTI copy (.jpg in every preset)"),
    "height": ("data.height", "network input height in pixels, a multiple of 32"),
    "width": ("data.width", "network input width in pixels, a multiple of 32"),
    "num_workers": ("data.num_workers", "DataLoader worker processes; 0 loads in the training process"),
    "batch_size": ("optim.batch_size", "samples per step and process; under torchrun the batch is this × the processes"),
    "epochs": ("optim.epochs", "passes over the training split"),
    "max_steps": ("optim.max_steps", "stop after this many steps, before the epochs are done"),
    "lr": ("optim.lr", "learning rate of Adam before the schedule"),
    "out": ("train.out", "run folder: checkpoints/, tensorboard/, config.yaml (a new run refuses one that holds a run: "
                         "see --resume and --overwrite)"),
    "device": ("train.device", "auto: CUDA when available, else the CPU"),
    "seed": ("train.seed", "seed of the weights, batch order and augmentation"),
    "mode": ("train.mode", "training signal: M monocular video, S stereo pairs, MS both"),
    "checkpoint_every": ("train.checkpoint_every", "write OUT/checkpoints/last.pt every this many steps; 0: only at the "
                                                   "end of each epoch"),
    "keep": ("train.keep", "checkpoints to keep: both; last (never writes best.pt); best (a finished run drops last.pt, "
                           "so it cannot be resumed)"),
    "log_every": ("train.log_every", "TensorBoard scalars (and the --no-progress line) every this many steps"),
    "amp": ("train.amp", "mixed precision on CUDA (ignored on the CPU)"),
    "sync_bn": ("train.sync_bn", "under torchrun: batch-norm statistics over the samples of all processes"),
    "profile": ("train.profile_steps", "write a torch.profiler trace of STEPS steps (default 5, after 3 warm-up steps) "
                                       "to OUT/profile/trace.json and an operator table to OUT/profile/operators.txt"),
    "weights_init": ("model.weights_init", "pretrained | scratch | path to a torchvision ResNet state dict"),
    "backbone": ("model.backbone", "encoder of the depth network: resnet18 | resnet50"),
    "loss_weighting": ("loss.weighting", "fixed loss weights, or learned ones (homoscedastic uncertainty)"),
}


def add_config_flag(parser: argparse.ArgumentParser, attr: str, key: str, help_text: str) -> None:
    """``--attr`` setting config ``key``, typed (and with choices) as the key is declared."""
    section, name = key.split(".")
    declared = field_types(section, name)
    options: dict = {"help": f"{help_text} ({key})"}
    if declared is bool:
        options.update(action="store_true", default=None)
    elif typing.get_origin(declared) is Literal:
        options["choices"] = typing.get_args(declared)
    else:
        options["type"] = declared
    if attr == "profile":
        options.update(nargs="?", const=5, metavar="STEPS")
    parser.add_argument(f"--{attr.replace('_', '-')}", **options)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--preset", help="a preset name (see `mldanet presets`)")
    source.add_argument("--config", help="a YAML config file (sections model/data/loss/optim/train)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override any config key, e.g. --set optim.lr=5e-5 (repeatable)")
    parser.add_argument("--resume", metavar="DIR|auto",
                        help="continue the run in DIR (or a checkpoint file, e.g. DIR/checkpoints/last.pt) exactly "
                             "where it stopped, writing into DIR (--out: elsewhere); best.pt cannot be resumed (weights "
                             "only). 'auto': continue OUT/checkpoints/last.pt if it exists, else start afresh "
                             "(the default in workers restarted by torchrun --max-restarts)")
    parser.add_argument("--overwrite", action="store_true",
                        help="start a new run in an --out that holds one, removing its checkpoints, configs and "
                             "TensorBoard events (without it such an --out is refused)")
    parser.add_argument("--split-file", help="train on the lines of this file instead of the split's train list")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bar: print a plain line every --log-every steps instead "
                             "(step, loss, steps/s), for log files")
    from mldanet.data.base import dataset_help

    for attr, (key, help_text) in FLAGS.items():
        add_config_flag(parser, attr, key, help_text.format(datasets=dataset_help()))


def resolve_config(args: argparse.Namespace, base: Config | None = None) -> Config:
    if base is not None:
        config = base
    elif args.preset:
        config = load_preset(args.preset)
    elif args.config:
        config = load_config_file(args.config)
    else:
        config = Config()
    apply_overrides(config, args.overrides)
    flags = {}
    for attr, (key, _) in FLAGS.items():
        value = getattr(args, attr, None)
        if value is not None:
            section, name = key.split(".")
            flags.setdefault(section, {})[name] = value
    config_from_dict(flags, base=config)
    fit_workers_to_machine(args, config)
    config.validate()
    return config


def fit_workers_to_machine(args: argparse.Namespace, config: Config) -> None:
    """Unless the user set the worker count, keep it to the usable cores minus one (a preset's 4 on a
    2-core box only makes processes fight for the cores, and makes torch warn twice); said once."""
    from mldanet.device import fitted_workers, usable_cores

    chosen = args.num_workers is not None or overridden(args, "data.num_workers")
    fitted = fitted_workers(config.data.num_workers)
    if not chosen and fitted < config.data.num_workers:
        from mldanet.training.distributed import context_from_environment

        if context_from_environment().is_main:
            print(f"data.num_workers {config.data.num_workers} → {fitted}: this machine gives the process "
                  f"{usable_cores()} cores (--num-workers N sets it)")
        config.data.num_workers = fitted


def check_flags(args: argparse.Namespace) -> None:
    """Refuse counts that would train nothing, naming the flag (optim.max_steps=0 means "all epochs",
    which a user who typed --max-steps 0 did not ask for)."""
    if args.max_steps is not None and args.max_steps < 1:
        raise ValueError(
            f"--max-steps {args.max_steps}: give a positive number of steps (leave the flag out to run all --epochs)"
        )
    if args.epochs is not None and args.epochs < 1:
        raise ValueError(f"--epochs {args.epochs}: give a positive number of passes over the training split")


def overridden(args: argparse.Namespace, key: str) -> bool:
    """Whether a ``--set`` override names config ``key``."""
    return any(item.split("=", 1)[0].strip() == key for item in args.overrides)


def out_given(args: argparse.Namespace) -> bool:
    """Whether the command line names the run folder (--out or --set train.out=...)."""
    return args.out is not None or overridden(args, "train.out")


def resumed_config(args: argparse.Namespace, checkpoint: Path) -> Config:
    """The config saved in ``checkpoint``, writing into the run folder it was resumed from
    (:func:`mldanet.run_dir.resumed_run`), or where --out says."""
    from mldanet.models.checkpoint import read_checkpoint_config
    from mldanet.run_dir import resumed_run

    base = read_checkpoint_config(checkpoint)
    run = resumed_run(checkpoint, out_given(args))
    if run is not None:
        base.train.out = str(run.root)
    return base


def continue_last(args: argparse.Namespace) -> bool:
    """--resume auto, or a worker that torchrun restarted: continue the run folder's last.pt if it exists."""
    from mldanet.training.distributed import restarted_by_torchrun

    return args.resume == "auto" or restarted_by_torchrun()


def resume_checkpoint(args: argparse.Namespace) -> Path | None:
    """The checkpoint to continue from (:func:`mldanet.run_dir.resume_checkpoint`)."""
    from mldanet import run_dir

    def out_for(named: Path | None) -> Path:
        return Path(resolve_config(args, resumed_config(args, named) if named is not None else None).train.out)

    return run_dir.resume_checkpoint(args.resume, continue_last(args), out_for)


def check_paths(config: Config) -> None:
    """The data path is a folder, the backbone exists and the run folder can be written, before any
    work (an empty data path is build_datasets' to explain)."""
    from mldanet.data.base import dataset_class
    from mldanet.models.encoder import BACKBONES, backbone_names

    dataset_class(config.data.dataset)
    if config.model.backbone not in BACKBONES:
        raise ValueError(f"model.backbone={config.model.backbone!r} is not one of {', '.join(backbone_names())}")
    if config.data.data_path:
        require_dir(config.data.data_path, "data path")
    if config.data.hints_dir and config.uses_hints:
        require_dir(config.data.hints_dir, "hints folder (--hints-dir)")
    require_writable_dir(config.train.out, "run folder (--out)")


def build_training_data(config: Config, split_file: str | None):
    """build_datasets, with messages naming what a `mldanet train` user types."""
    from mldanet.data.base import MissingFilesError
    from mldanet.training.datasets import build_datasets

    try:
        return build_datasets(config, split_file=split_file)
    except MissingFilesError as error:
        raise FileNotFoundError(f"{error}; --set data.skip_missing=true drops those lines") from None


def run(args: argparse.Namespace) -> int:
    from mldanet.training import distributed

    check_flags(args)
    resume = resume_checkpoint(args)
    base = resumed_config(args, resume) if resume is not None else None
    saved = copy.deepcopy(base)  # the checkpoint's settings, before this command's change them
    config = resolve_config(args, base)
    out = Path(config.train.out)
    main = distributed.context_from_environment().is_main
    # Rank 0 holds the folder for the whole run, taken before the existing-run check so that two
    # trainings started together cannot both pass it.
    check_paths(config)  # names and paths first: a mistaken command leaves no run folder behind
    lock = FolderLock(out, "mldanet train", "run folder --out").acquire() if main else None
    try:
        return train_in_folder(args, config, saved, out, resume, main)
    finally:
        if lock is not None:
            lock.release()


# Where a run is written and how fast its data loads do not change what it learns.
NOT_A_CHANGE = ("train.out", "data.num_workers", "history", "derived")


def record_resume_changes(config: Config, saved: Config, step: int, main: bool) -> None:
    """Say each setting this resume changes (one line each) and add it to the run's ``history``.

    The network cannot change (the trainer refuses it); resolution, batch, learning rate and the
    rest may, but then the run is no longer an exact continuation, so it is said and recorded.
    """
    from mldanet.config import config_changes

    changes = config_changes(saved, config, ignore=NOT_A_CHANGE)
    if main:
        for change in changes:
            print(f"resumed with another setting: {change} (from step {step}; recorded in the run's config history)")
    config.history = (*config.history, *(f"step {step}: {change}" for change in changes))


def size_text(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def record_trained_lines(out: Path, lines: list[str]) -> None:
    """The run's training lines into ``out``, for evaluate's check (left untouched when they are already there)."""
    from mldanet.paths import write_atomic
    from mldanet.run_dir import RunDir

    text = "".join(f"{line}\n" for line in lines)
    path = RunDir(out).trained_lines
    if not path.is_file() or path.read_text() != text:
        write_atomic(path, lambda handle: handle.write(text.encode()))


def check_disk(trainer, out: Path) -> None:
    """Say how big the checkpoints will be, and refuse before the first one when the disk cannot hold them.

    Room is needed for last.pt twice (it is written beside the old one, then renamed over it; the old
    one may live on as healthy.pt) and for best.pt unless ``train.keep=last``.
    """
    import shutil

    last, weights = trainer.checkpoint_sizes()
    keep = trainer.config.train.keep
    need = 2 * last + (weights if keep != "last" else 0)
    print(f"checkpoints: last.pt {size_text(last)} (with the optimiser state, for --resume), best.pt "
          f"{size_text(weights)}; train.keep={keep} (--keep last|best|both); up to {size_text(need)} on disk")
    free = shutil.disk_usage(out).free
    if free < need:
        raise OSError(
            f"not enough free space for the checkpoints in {out}: they need up to {size_text(need)}, "
            f"{size_text(free)} is free; free some space, train into another --out"
            + (", or add --keep last (no best.pt)" if keep != "last" else "")
        )


def train_in_folder(
    args: argparse.Namespace, config: Config, saved: Config | None, out: Path, resume: Path | None, main: bool
) -> int:
    from mldanet.run_dir import RunDir, refuse_existing_run, remove_previous_run
    from mldanet.training import distributed
    from mldanet.training.datasets import derived_config
    from mldanet.training.trainer import Trainer, TrainingInterrupted, TrainingStopped

    run = RunDir(out)
    # Every rank checks (they see the same folder): one refusing alone would leave the others waiting.
    refuse_existing_run(run, resume, args.overwrite)
    train_set, val_set = build_training_data(config, args.split_file)
    config = derived_config(config, train_set)
    if main and args.overwrite and not run.holds(resume):
        removed = remove_previous_run(run)
        if removed:
            print(f"--overwrite: removed the previous run's {', '.join(removed)} from {out}")
    try:
        validator = None
        if val_set is not None:
            from mldanet.evaluation.validation import Validator

            validator = Validator(val_set, config.optim.batch_size, config.train.max_val_batches, config.data.num_workers)
        trainer = Trainer(config, train_set, validator, resume=resume, progress=not args.no_progress,
                          log_lines=args.no_progress)
        if saved is not None:
            record_resume_changes(config, saved, trainer.state.step, main)
        if resume is not None and trainer.state.step >= trainer.total_steps:
            if main:
                print(f"nothing to train: checkpoint {resume} is already at step {trainer.state.step}, the end of this "
                      f"run (optim.epochs={config.optim.epochs}, optim.max_steps={config.optim.max_steps}); raise "
                      "--epochs or --max-steps to train on")
            return 0
        if main:
            record_trained_lines(out, train_set.lines)
            check_disk(trainer, out)
            world = trainer.dist.world_size
            print(f"training {config.model.variant} {config.model.backbone} {config.data.width}x{config.data.height} "
                  f"mode {config.train.mode}, {len(train_set)} training samples, batch {config.optim.batch_size}"
                  + (f" × {world} processes" if world > 1 else "")
                  + (f", resumed at step {trainer.state.step} from {resume}" if resume is not None else "")
                  + f" -> {config.train.out}")
        state = trainer.train()
    except TrainingStopped as error:
        if main:
            print(f"mldanet train: stopped: {error}", file=sys.stderr)
        return 1
    except TrainingInterrupted as error:
        if main:
            print(f"mldanet train: interrupted by {error.signal_name} after step {error.step}; checkpoint saved to "
                  f"{error.path}; continue with: mldanet train --resume {out}", file=sys.stderr)
        return 130
    finally:
        distributed.cleanup()
    if main:
        print(f"done: {state.step} steps ({state.skipped_steps} skipped for a non-finite loss); "
              f"checkpoint {trainer.last_path}")
    return 0
