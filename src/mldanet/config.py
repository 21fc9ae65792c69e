"""Typed configuration: dataclasses, YAML presets shipped in the package, ``key=value`` overrides.

A config is resolved in this order: defaults < preset or YAML file < ``--set key=value``
overrides < plain command-line flags. The resolved config is saved beside every checkpoint.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from mldanet.units import metric_scale
from mldanet.paths import require_file
from mldanet.types import STEREO, FrameId

# The allowed values of every closed choice, declared once: the networks, the losses and the
# command-line flags read them from here (typing.get_args). Open choices — data.dataset,
# model.backbone — are registries that name their members when a name is unknown.
Mode = Literal["M", "S", "MS"]
Variant = Literal["mlda", "baseline"]
Affinity = Literal["cosine", "scaled", "raw"]
StructureAttentionForm = Literal["residual", "guided", "seed", "none"]
DecoderNorm = Literal["group", "none"]
Weighting = Literal["fixed", "uncertainty"]
Schedule = Literal["step", "cosine"]
DeviceChoice = Literal["auto", "cpu", "cuda"]
Amp = Literal["none", "bf16", "fp16"]
Keep = Literal["both", "last", "best"]
ImageExt = Literal[".jpg", ".png"]

MODES: tuple[str, ...] = typing.get_args(Mode)


def architecture(default: Any, **kwargs: Any) -> Any:
    """A ``ModelConfig`` field that shapes the network: a checkpoint resumes only under the same value."""
    return field(default=default, metadata={"architecture": True}, **kwargs)


@dataclass
class ModelConfig:
    """The depth network (models/depth_net.py ``DepthNet(model_config)``); fields made with
    :func:`architecture` decide its layers, the others how it starts or maps its output."""

    backbone: str = architecture("resnet18")  # resnet18 | resnet50 | a registered backbone (models/encoder.py)
    variant: Variant = architecture("mlda")
    # channel attention in the decoder (docs/METHOD.md §5, step 2); off since the component study found the
    # network better without it (RESULTS "Component ablation"); true: the specification's decoder
    decoder_attention: bool = architecture(False)
    attention_affinity: Affinity = architecture("cosine")  # models/attention.py ChannelAttention
    structure_attention: StructureAttentionForm = architecture("guided")  # models/attention.py StructureAttention; none: SA off
    multi_level: bool = architecture(True)  # the image branch fused by global attention (docs/METHOD.md §1–§3); false: backbone features only
    decoder_norm: DecoderNorm = architecture("group")  # MLDA-Net's decoder blocks (models/decoder.py ConvBlock); baseline: none
    scales: tuple[int, ...] = architecture((0, 1, 2, 3))
    weights_init: str = "pretrained"  # pretrained | scratch | path to a torchvision state dict
    init_depth: float = 0.0  # > 0: a new run's disparity heads start at this depth (training units); 0: PyTorch's init
    min_depth: float = 0.1  # the sigmoid output maps to depths in [min_depth, max_depth] (training units)
    max_depth: float = 100.0


def architecture_keys() -> tuple[str, ...]:
    """The ``ModelConfig`` fields that shape the network (declared beside each field)."""
    return tuple(f.name for f in dataclasses.fields(ModelConfig) if f.metadata.get("architecture"))


@dataclass
class DataConfig:
    dataset: str = "kitti"  # kitti | folder (mldanet/data/folder.py) | any registered dataset
    data_path: str = ""
    splits_dir: str = ""  # empty: $MLDANET_SPLITS_DIR
    split: str = "eigen_zhou"
    hints_dir: str = ""
    height: int = 192
    width: int = 640
    img_ext: ImageExt = ".jpg"
    num_workers: int = 4
    skip_missing: bool = False
    intrinsics: str = ""  # folder: the shared camera file (default <data_path>/camera.yaml)
    frame_step: int = 1  # temporal neighbours are this many frames away (subsamples a high frame rate)
    val_every: int = 10  # folder without split files: every N-th target frame is held out for validation
    baseline: float = 0.54  # metres between the stereo cameras the model was trained with (the metric scale); set from the data


@dataclass
class LossConfig:
    ssim_alpha: float = 0.85
    smoothness_weight: float = 1e-3
    hints_weight: float = 1.0
    use_hints: bool = True
    weighting: Weighting = "fixed"
    weight_range: float = 10.0  # uncertainty: each learned weight stays within [w/range, w·range] (.inf: unbounded)
    automask: bool = True


@dataclass
class OptimConfig:
    lr: float = 1e-4
    batch_size: int = 12  # per process: under torchrun the effective batch is batch_size × WORLD_SIZE
    epochs: int = 20
    schedule: Schedule = "step"
    step_epochs: int = 15  # step schedule: multiply lr by gamma every step_epochs epochs
    gamma: float = 0.1
    warmup_steps: int = 0
    max_steps: int = 0  # 0: run all epochs
    weight_decay: float = 0.0
    pose_lr_scale: float = 1.0
    # the residual structure attention's mixing weights γ (models/attention.py); 1 keeps one group
    structure_mix_lr_scale: float = 1.0
    clip_grad_norm: float = 5.0  # clip the global gradient norm of the depth and pose networks to this; 0: off


@dataclass
class TrainConfig:
    mode: Mode = "MS"
    out: str = "runs/mldanet"
    device: DeviceChoice = "auto"
    seed: int = 0
    checkpoint_every: int = 1000
    log_every: int = 50
    image_every: int = 500
    amp: Amp = "none"  # CUDA only
    channels_last: bool = False
    validate: bool = True
    max_val_batches: int = 0  # 0: the whole validation split
    sync_bn: bool = False  # under torchrun: batch-norm statistics over the samples of every rank
    profile_steps: int = 0  # > 0: torch.profiler trace of that many steps in <out>/profile/
    max_bad_steps: int = 5  # stop (after a checkpoint) at this many consecutive non-finite losses or gradient norms
    collapse_threshold: float = 1e-3  # a disparity map whose variation (std / mean) is below this is flat; 0: never
    collapse_patience: int = 20  # this many consecutive flat steps: the decoder has collapsed (a warning)
    stop_on_collapse: bool = False  # on collapse, stop naming the last healthy checkpoint instead of warning
    # Checkpoints a run keeps: both, last (never writes best.pt), best (a finished run drops last.pt; no resume)
    keep: Keep = "both"

    @property
    def frame_ids(self) -> tuple[FrameId, ...]:
        return {"M": (0, -1, 1), "S": (0, STEREO), "MS": (0, -1, 1, STEREO)}[self.mode]

    @property
    def metric(self) -> bool:
        """Stereo-trained models (S, MS) know the metric scale; monocular ones (M) do not."""
        return self.mode != "M"


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    description: str = ""
    # What each --resume changed and at which step ("step 200: data.height 64 → 96"), oldest first.
    history: tuple[str, ...] = ()
    # Values the training data decided, not the user ("data.baseline 0.3: the training data's stereo
    # rig"): :func:`mldanet.training.datasets.derived_config` sets them on a copy and says so here.
    derived: tuple[str, ...] = ()

    @property
    def uses_hints(self) -> bool:
        """Depth hints take part when they are on and the stereo partner is a source (they need its warp)."""
        return self.loss.use_hints and STEREO in self.train.frame_ids

    @property
    def depth_scale(self) -> float:
        """Training units → metres (×baseline/0.1, 5.4 on KITTI) for a metric model; 1 for M (relative depth)."""
        return metric_scale(self.data.baseline) if self.train.metric else 1.0

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML/JSON/``torch.load(weights_only=True)``-safe nested dict (tuples become lists)."""

        def plain(value: Any) -> Any:
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return [plain(v) for v in value]
            return value

        return plain(asdict(self))

    def validate(self) -> None:
        for key, value, allowed in _closed_choices(self):
            if value not in allowed:
                raise ValueError(f"{key}={value!r} is not one of {', '.join(allowed)}")
        for key, size in (("data.height", self.data.height), ("data.width", self.data.width)):
            if size <= 0 or size % 32:
                raise ValueError(f"{key}={size} must be a positive multiple of 32")
        if self.optim.batch_size < 1:
            raise ValueError(f"optim.batch_size={self.optim.batch_size} must be at least 1")
        self._validate_training_counts()
        init_depth = self.model.init_depth
        if not 0 < self.model.min_depth < self.model.max_depth:
            raise ValueError(
                f"model.min_depth={self.model.min_depth} and model.max_depth={self.model.max_depth} must satisfy "
                "0 < min_depth < max_depth"
            )
        if init_depth and not self.model.min_depth < init_depth < self.model.max_depth:
            raise ValueError(
                f"model.init_depth={init_depth} must be 0 (off) or between model.min_depth={self.model.min_depth} "
                f"and model.max_depth={self.model.max_depth}"
            )
        if self.train.max_bad_steps < 1:
            raise ValueError(f"train.max_bad_steps={self.train.max_bad_steps} must be at least 1")
        # `not x >= 0` also refuses NaN.
        if not self.optim.clip_grad_norm >= 0:
            raise ValueError(f"optim.clip_grad_norm={self.optim.clip_grad_norm} must be 0 (off) or positive")
        if not self.train.collapse_threshold >= 0:
            raise ValueError(f"train.collapse_threshold={self.train.collapse_threshold} must be 0 (off) or positive")
        if self.train.collapse_patience < 1:
            raise ValueError(f"train.collapse_patience={self.train.collapse_patience} must be at least 1")

    def _validate_training_counts(self) -> None:
        """The learning rate and the step counts; each message names the key and the `mldanet train`
        flag that sets it (torch's "Invalid learning rate: -1" names neither, and a count of 0 or
        less trained nothing and reported success)."""
        # `not x > 0` also refuses NaN.
        if not self.optim.lr > 0:
            raise ValueError(
                f"optim.lr={self.optim.lr} must be a positive learning rate (set by --lr or --set optim.lr=...)"
            )
        if self.optim.epochs < 1:
            raise ValueError(f"optim.epochs={self.optim.epochs} must be at least 1 (set by --epochs)")
        if self.optim.max_steps < 0:
            raise ValueError(
                f"optim.max_steps={self.optim.max_steps} must be positive, or 0 to run all optim.epochs (set by --max-steps)"
            )
        if self.optim.warmup_steps < 0:
            raise ValueError(f"optim.warmup_steps={self.optim.warmup_steps} must be 0 (off) or positive")
        if self.train.log_every < 1:
            raise ValueError(f"train.log_every={self.train.log_every} must be at least 1 (set by --log-every)")
        if self.train.checkpoint_every < 0:
            raise ValueError(
                f"train.checkpoint_every={self.train.checkpoint_every} must be 0 (only at the end of each epoch) "
                "or positive (set by --checkpoint-every)"
            )
        if self.data.frame_step < 1:
            raise ValueError(f"data.frame_step={self.data.frame_step} must be at least 1 (set by --frame-step)")
        if self.data.val_every < 0:
            raise ValueError(f"data.val_every={self.data.val_every} must be 0 (no validation) or positive")
        if self.data.num_workers < 0:
            raise ValueError(f"data.num_workers={self.data.num_workers} must be 0 or more (set by --num-workers)")


def _closed_choices(obj: Any, prefix: str = ""):
    """(key, value, allowed values) of every ``Literal`` field of a config, sections included."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            yield from _closed_choices(value, f"{prefix}{f.name}.")
        elif typing.get_origin(hints[f.name]) is Literal:
            yield f"{prefix}{f.name}", value, typing.get_args(hints[f.name])


def field_types(section: str, name: str) -> Any:
    """The declared type of config key ``section.name`` (what the command line converts a flag to)."""
    return typing.get_type_hints(type(getattr(Config(), section)))[name]


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Convert a YAML/CLI value to the dataclass field's declared type, naming the key on failure."""
    origin = typing.get_origin(annotation)
    if origin is Literal:
        allowed = typing.get_args(annotation)
        if value not in allowed:
            raise ValueError(f"{key}={value!r} is not one of {', '.join(map(str, allowed))}")
        return value
    try:
        if annotation is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
                return value.lower() in ("true", "1", "yes")
            raise TypeError
        if annotation is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise TypeError
            return int(value)
        if annotation is float:
            return float(value)
        if annotation is str:
            return "" if value is None else str(value)
        if origin is tuple:
            (item_type, _) = typing.get_args(annotation)
            items = value if isinstance(value, (list, tuple)) else [value]
            return tuple(_coerce(v, item_type, key) for v in items)
    except (TypeError, ValueError):
        pass
    else:
        return value
    raise ValueError(f"config key {key}: cannot use {value!r} as {getattr(annotation, '__name__', annotation)}")


def _merge(obj: Any, updates: dict[str, Any], prefix: str = "") -> None:
    hints = typing.get_type_hints(type(obj))
    known = {f.name for f in dataclasses.fields(obj)}
    for name, value in updates.items():
        key = f"{prefix}{name}"
        if name not in known:
            raise ValueError(f"unknown config key {key!r}; known keys: {', '.join(sorted(known))}")
        current = getattr(obj, name)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ValueError(f"config key {key} is a section; give a mapping, not {value!r}")
            _merge(current, value, prefix=f"{key}.")
        else:
            setattr(obj, name, _coerce(value, hints[name], key))


# Keys that moved between sections: configs saved before the move (checkpoints, YAML files,
# --set overrides) still load. (old section, key) -> new section.
MOVED_KEYS = {("loss", "min_depth"): "model", ("loss", "max_depth"): "model"}


def upgrade_moved_keys(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with the keys of :data:`MOVED_KEYS` in their new sections (the new section's value wins)."""
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in (data or {}).items()}
    for (old, key), new in MOVED_KEYS.items():
        section = data.get(old)
        if isinstance(section, dict) and key in section:
            value = section.pop(key)
            target = data.setdefault(new, {})
            if isinstance(target, dict):
                target.setdefault(key, value)
    return data


def flat_config(config: Config) -> dict[str, Any]:
    """Every setting of ``config`` by its dotted key (``data.height``), sections flattened."""
    flat = {}
    for section, values in config.to_dict().items():
        if isinstance(values, dict):
            flat |= {f"{section}.{key}": value for key, value in values.items()}
        else:
            flat[section] = values
    return flat


def config_changes(before: Config, after: Config, ignore: tuple[str, ...] = ()) -> list[str]:
    """``key old → new`` for every setting that differs, in declaration order (``ignore``: keys left out)."""
    old, new = flat_config(before), flat_config(after)
    return [f"{key} {_shown(old[key])} → {_shown(new[key])}" for key in old if key not in ignore and old[key] != new[key]]


def _shown(value: Any) -> str:
    return f"{value!r}" if isinstance(value, str) else str(value)


def config_from_dict(data: dict[str, Any], base: Config | None = None) -> Config:
    config = base if base is not None else Config()
    _merge(config, upgrade_moved_keys(data))
    return config


def preset_names() -> list[str]:
    folder = resources.files("mldanet") / "presets"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_preset(name: str) -> Config:
    names = preset_names()
    if name not in names:
        raise ValueError(f"unknown preset {name!r}; available presets: {', '.join(names)}")
    text = (resources.files("mldanet") / "presets" / f"{name}.yaml").read_text()
    return config_from_dict(yaml.safe_load(text))


def read_yaml_file(path: str | Path, what: str, formats: str = "YAML") -> tuple[Path, Any]:
    """(path, its parsed YAML) — JSON is YAML too; a missing, binary or malformed file is one
    error naming ``what`` and the file."""
    path = require_file(path, what)
    try:
        return path, yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"{what} {path} is not a text file (not UTF-8): give a {formats} file") from None
    except yaml.YAMLError as error:
        raise ValueError(f"{what} {path} is not valid {formats}: {error}") from None


def load_config_file(path: str | Path) -> Config:
    path, data = read_yaml_file(path, "config file")
    if data is not None and not isinstance(data, dict):
        raise ValueError(f"config file {path} must hold a mapping of sections, not {type(data).__name__}")
    try:
        return config_from_dict(data or {})
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


def apply_overrides(config: Config, overrides: list[str]) -> Config:
    """Apply ``section.key=value`` strings; values are parsed as YAML scalars/lists."""
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like section.key=value")
        dotted, raw = item.split("=", 1)
        value = yaml.safe_load(raw) if raw.strip() else ""
        nested: dict[str, Any] = {}
        cursor = nested
        parts = dotted.strip().split(".")
        for part in parts[:-1]:
            cursor = cursor.setdefault(part, {})
        cursor[parts[-1]] = value
        config_from_dict(nested, base=config)
    return config


def save_config(config: Config, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
