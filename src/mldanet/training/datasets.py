"""Build the training and validation datasets a config describes (any registered ``data.dataset``)."""

from __future__ import annotations

import copy
import logging

from mldanet.config import Config, flat_config
from mldanet.data.base import FrameDataset, build_dataset, data_root, dataset_class
from mldanet.data.folder import check_ground_truth
from mldanet.data.splits import overlap_error, shared_frames
from mldanet.types import STEREO

logger = logging.getLogger(__name__)


def build_datasets(config: Config, split_file: str | None = None) -> tuple[FrameDataset, FrameDataset | None]:
    """Train and val datasets from ``config.data``; ``split_file`` replaces the split's train list.

    ``config`` is read, not changed: what the data decides (the stereo rig's baseline, hints off for
    a dataset without them, which is said here) is :func:`derived_config`'s. Validation scores the
    held-out frames that have ground truth (a folder may have depth maps for some frames only);
    without any, it logs the reprojection error alone. That ground truth is read here, as validation will read it (:func:`mldanet.data.folder.check_ground_truth`), so that a bad
    map stops the run before step 1, not at the first validation an epoch later.
    """
    data = config.data
    cls = dataset_class(data.dataset)
    data_root(data)  # before the split, whose errors would hide this one
    frame_ids = config.train.frame_ids
    if config.uses_hints and not data.hints_dir and not cls.hints_required:
        why = f"was given no --hints-dir (`mldanet hints --dataset {cls.name}` computes them)" if cls.has_hints() else (
            "has no depth hints"
        )
        logger.warning("the %s dataset %s: training without depth hints (loss.use_hints=false)", cls.name, why)
    elif config.uses_hints and not data.hints_dir:
        raise ValueError(
            "depth hints are on (loss.use_hints=true) but no hints directory was given: "
            "run `mldanet hints` and pass --hints-dir, or turn hints off with --set loss.use_hints=false"
        )
    hints_dir = data.hints_dir if config.uses_hints and data.hints_dir else None
    if split_file:
        train_path = split_file
        train_lines = cls.read_split_file(split_file, data)
    else:
        train_lines, train_path = cls.split_lines(data, "train", frame_ids)
    for test_lines, test_path in cls.evaluation_splits(data, frame_ids):
        shared = shared_frames(train_lines, test_lines)
        if shared:
            raise ValueError(overlap_error(train_path, test_lines, test_path, shared))
    train_set = build_dataset(
        data, train_lines, frame_ids, train=True, source=train_path, hints_dir=hints_dir, seed=config.train.seed
    )
    val_set = None
    if config.train.validate and split_file is None:
        try:
            val_lines, val_path = cls.split_lines(data, "val", frame_ids)
        except FileNotFoundError:  # a split without a val list
            val_lines = []
        if val_lines:
            # validation scores depth against the ground truth and logs the reprojection error,
            # neither of which uses hints: `mldanet hints` need not have run on its lines
            scored = cls.lines_with_ground_truth(data, val_lines)
            if scored and len(scored) < len(val_lines):
                logger.warning(
                    "validation: %d of %d held-out frames have no ground truth and are left out",
                    len(val_lines) - len(scored), len(val_lines),
                )
            try:
                val_set = build_dataset(
                    data, scored or val_lines, frame_ids, train=False, source=val_path, load_gt=bool(scored),
                    seed=config.train.seed,
                )
            except ValueError as error:  # every line skipped: the training split may still be whole
                raise ValueError(f"{error}; --set train.validate=false trains without validation") from None
            try:
                for note in check_ground_truth(val_set):
                    logger.warning("validation: %s", note)
            except ValueError as error:
                raise ValueError(f"validation ground truth: {error}; --set train.validate=false trains without "
                                 "validation") from None
    return train_set, val_set


def derived_config(config: Config, train_set: FrameDataset) -> Config:
    """A copy of ``config`` with what ``train_set`` decides, each value named in ``derived``: a stereo
    run's ``data.baseline`` is its rig's (the metric scale that evaluation, prediction and export read
    from the checkpoint), and ``loss.use_hints`` is off when the set has no hints. ``config`` is left
    as the user gave it; the trainer saves the copy, so the run's config says what ran."""
    stereo = STEREO in config.train.frame_ids
    if stereo and not train_set.stereo_baseline > 0:
        raise ValueError(
            f"mode {config.train.mode} needs the stereo baseline of the {train_set.name} dataset, which gives none "
            f"(stereo_baseline {train_set.stereo_baseline:g}; its class sets it): train with --mode M, or give the rig's baseline"
        )
    derived = copy.deepcopy(config)
    # a note of an earlier derivation (the saved config of a resumed run) stays while its value does
    notes = [note for note in config.derived if _note_holds(note, config)]
    if config.uses_hints and train_set.hints_dir is None:
        derived.loss.use_hints = False
        notes.append(_note("loss.use_hints", False, f"the {train_set.name} training set has no depth hints"))
    if stereo and train_set.stereo_baseline != config.data.baseline:
        derived.data.baseline = train_set.stereo_baseline
        notes.append(_note("data.baseline", train_set.stereo_baseline, f"the stereo rig of the {train_set.name} training set"))
    derived.derived = tuple(dict.fromkeys(notes))
    return derived


def _note(key: str, value: object, why: str) -> str:
    """A derived note, ``"<key> <value>: <why>"`` (``data.baseline 0.3: the stereo rig of ...``)."""
    return f"{key} {_value_text(value)}: {why}"


def _note_holds(note: str, config: Config) -> bool:
    """Whether ``config`` still has the value a derived note (:func:`_note`) names."""
    key, _, value = note.partition(":")[0].partition(" ")
    return _value_text(flat_config(config).get(key)) == value


def _value_text(value: object) -> str:
    """A config value as a note writes it: ``false``, ``0.3`` (``%g``), else ``str``."""
    if isinstance(value, bool):
        return str(value).lower()
    return f"{value:g}" if isinstance(value, float) else str(value)
