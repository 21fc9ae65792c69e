"""``mldanet train``: a preset or YAML config, ``--set key=value`` overrides, then the common flags.

The same command runs under ``torchrun`` (one process per GPU, see
:mod:`mldanet.training.distributed`). ``--resume auto`` continues from ``<out>/checkpoints/last.pt``
when it exists and starts afresh otherwise; workers that ``torchrun --max-restarts`` restarts
after a failure do that without being asked.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mldanet.config import Config, apply_overrides, config_from_dict, load_config_file, load_preset

# flag -> config key; a flag left unset keeps the preset's value.
FLAG_KEYS = {
    "data_path": "data.data_path",
    "splits_dir": "data.splits_dir",
    "split": "data.split",
    "hints_dir": "data.hints_dir",
    "img_ext": "data.img_ext",
    "height": "data.height",
    "width": "data.width",
    "num_workers": "data.num_workers",
    "batch_size": "optim.batch_size",
    "epochs": "optim.epochs",
    "max_steps": "optim.max_steps",
    "lr": "optim.lr",
    "out": "train.out",
    "device": "train.device",
    "seed": "train.seed",
    "mode": "train.mode",
    "checkpoint_every": "train.checkpoint_every",
    "log_every": "train.log_every",
    "amp": "train.amp",
    "sync_bn": "train.sync_bn",
    "profile": "train.profile_steps",
    "weights_init": "model.weights_init",
    "backbone": "model.backbone",
    "loss_weighting": "loss.weighting",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--preset", help="a preset name (see `mldanet presets`)")
    source.add_argument("--config", help="a YAML config file (sections model/data/loss/optim/train)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override any config key, e.g. --set optim.lr=5e-5 (repeatable)")
    parser.add_argument("--resume", metavar="DIR|auto",
                        help="continue the run in DIR (or a checkpoint file) exactly where it stopped; "
                             "'auto': continue OUT/checkpoints/last.pt if it exists, else start afresh "
                             "(the default in workers restarted by torchrun --max-restarts)")
    parser.add_argument("--split-file", help="train on the lines of this file instead of the split's train list")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")
    parser.add_argument("--data-path", help="KITTI raw root")
    parser.add_argument("--splits-dir", help="folder holding split folders (default $MLDANET_SPLITS_DIR)")
    parser.add_argument("--split", help="split name, e.g. eigen_zhou (M, MS) or eigen_full (S)")
    parser.add_argument("--hints-dir", help="precomputed depth hints (mldanet hints --out)")
    parser.add_argument("--img-ext", help="image extension of the KITTI copy (.jpg or .png)")
    parser.add_argument("--out", help="run folder: checkpoints/, tensorboard/, config.yaml")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--weights-init", help="pretrained | scratch | path to a torchvision ResNet state dict")
    parser.add_argument("--backbone", choices=("resnet18", "resnet50"))
    parser.add_argument("--mode", choices=("M", "S", "MS"))
    parser.add_argument("--loss-weighting", choices=("fixed", "uncertainty"))
    parser.add_argument("--amp", choices=("none", "bf16", "fp16"))
    parser.add_argument("--sync-bn", action="store_true", default=None,
                        help="under torchrun: batch-norm statistics over the samples of all processes")
    for flag in ("height", "width", "batch_size", "num_workers", "seed", "epochs", "max_steps", "checkpoint_every", "log_every"):
        parser.add_argument(f"--{flag.replace('_', '-')}", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--profile", type=int, nargs="?", const=5, metavar="STEPS",
                        help="write a torch.profiler trace of STEPS steps (default 5, after 3 warm-up steps) "
                        "to OUT/profile/trace.json and an operator table to OUT/profile/operators.txt")


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
    for attr, key in FLAG_KEYS.items():
        value = getattr(args, attr, None)
        if value is not None:
            section, name = key.split(".")
            flags.setdefault(section, {})[name] = value
    config_from_dict(flags, base=config)
    config.validate()
    return config


def resume_checkpoint(args: argparse.Namespace) -> Path | None:
    """The checkpoint to continue from.

    ``--resume DIR|FILE`` names it. With ``--resume auto``, and in workers that torchrun restarted,
    the run folder's ``last.pt`` comes first when it exists: a restart continues the restarted
    run, not the checkpoint it was started from.
    """
    from mldanet.training.checkpoint import read_checkpoint_config
    from mldanet.training.distributed import restarted_by_torchrun

    named = None
    if args.resume and args.resume != "auto":
        path = Path(args.resume)
        named = path / "checkpoints" / "last.pt" if path.is_dir() else path
    if args.resume == "auto" or restarted_by_torchrun():
        base = read_checkpoint_config(named) if named is not None else None
        last = Path(resolve_config(args, base).train.out) / "checkpoints" / "last.pt"
        if last.is_file():
            return last
    return named


def run(args: argparse.Namespace) -> int:
    from mldanet.training import distributed
    from mldanet.training.checkpoint import read_checkpoint_config
    from mldanet.training.datasets import build_datasets
    from mldanet.training.trainer import Trainer, TrainingStopped

    resume = resume_checkpoint(args)
    base = read_checkpoint_config(resume) if resume is not None else None
    config = resolve_config(args, base)
    train_set, val_set = build_datasets(config, split_file=args.split_file)
    main = distributed.context_from_environment().is_main
    try:
        trainer = Trainer(config, train_set, val_set, resume=resume, progress=not args.no_progress)
        if main:
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
    finally:
        distributed.cleanup()
    if main:
        print(f"done: {state.step} steps ({state.skipped_steps} skipped for a non-finite loss); "
              f"checkpoint {Path(config.train.out) / 'checkpoints' / 'last.pt'}")
    return 0
