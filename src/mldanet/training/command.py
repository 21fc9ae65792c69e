"""``mldanet train``: a preset or YAML config, ``--set key=value`` overrides, then the common flags."""

from __future__ import annotations

import argparse
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
    parser.add_argument("--resume", metavar="DIR", help="continue the run in DIR exactly where it stopped")
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
    for flag in ("height", "width", "batch_size", "num_workers", "seed", "epochs", "max_steps", "checkpoint_every", "log_every"):
        parser.add_argument(f"--{flag.replace('_', '-')}", type=int)
    parser.add_argument("--lr", type=float)


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


def run(args: argparse.Namespace) -> int:
    from mldanet.training.checkpoint import checkpoint_config, load_checkpoint
    from mldanet.training.datasets import build_datasets
    from mldanet.training.trainer import Trainer

    base = None
    resume = None
    if args.resume:
        resume = Path(args.resume)
        ckpt = resume / "checkpoints" / "last.pt" if resume.is_dir() else resume
        base = checkpoint_config(load_checkpoint(ckpt))
        resume = ckpt
    config = resolve_config(args, base)
    train_set, val_set = build_datasets(config, split_file=args.split_file)
    print(f"training {config.model.variant} {config.model.backbone} {config.data.width}x{config.data.height} "
          f"mode {config.train.mode}, {len(train_set)} training samples -> {config.train.out}")
    trainer = Trainer(config, train_set, val_set, resume=resume, progress=not args.no_progress)
    state = trainer.train()
    print(f"done: {state.step} steps; checkpoint {Path(config.train.out) / 'checkpoints' / 'last.pt'}")
    return 0
