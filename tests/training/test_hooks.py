"""The loop's hooks: the order the loop calls them in, and each hook's state in the checkpoint."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from mldanet.models.checkpoint import load_checkpoint
from mldanet.training.datasets import build_datasets
from mldanet.training.hooks import Hook, load_fields, saved_fields
from mldanet.training.trainer import Trainer

from .configs import small_config

# What every reader of a full checkpoint finds at its top level (the format before the hooks, kept).
PAYLOAD_KEYS = {
    "format", "config", "depth_net", "pose_net", "optimizer", "loss_weighting", "scaler", "epoch", "step",
    "batch_in_epoch", "best_abs_rel", "bad_steps", "skipped_steps", "history", "collapse_monitor", "world_size", "rng",
}


@dataclass
class Counts:
    seen: int = 0
    names: list[str] = field(default_factory=list)
    scratch: int = field(default=0, metadata={"saved": False})


def test_saved_fields_are_the_dataclass_fields_a_payload_may_lack():
    counts = Counts(seen=3, names=["a"], scratch=7)
    assert saved_fields(counts) == {"seen": 3, "names": ["a"]}
    assert saved_fields(None) == {}
    fresh = Counts()
    load_fields(fresh, {"seen": 5, "other": 1})  # an older payload without "names"
    assert fresh == Counts(seen=5)


class Recorder(Hook):
    """Records the events it sees and counts the steps in a field of its own."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.state = Counts()

    def before_train(self, trainer):
        self.events.append("before_train")

    def before_epoch(self, trainer):
        self.events.append(f"before_epoch {trainer.state.epoch}")

    def record_step(self, trainer, batch, outcome):
        self.state.seen += 1
        self.events.append(f"record {trainer.state.step}")

    def after_step(self, trainer, batch, outcome):
        self.events.append(f"after {trainer.state.step}")

    def after_epoch(self, trainer, finished):
        self.events.append(f"after_epoch {finished}")

    def after_train(self, trainer):
        self.events.append("after_train")

    def close(self):
        self.events.append("close")


def test_the_loop_calls_the_hooks_in_order_and_a_new_field_is_saved_and_resumed(kitti_fixture, tmp_path):
    # 4 steps per epoch; a run of 6 crosses an epoch boundary, stopped after 5.
    config = small_config(kitti_fixture, tmp_path / "run", mode="S", checkpoint_every=100, max_steps=6, loss={"use_hints": False})
    train_set, _ = build_datasets(config)
    recorder = Recorder()
    trainer = Trainer(config, train_set, progress=False, hooks=[recorder])
    trainer.train(stop_at_step=5)
    assert recorder.events == [
        "before_train", "before_epoch 0", "record 1", "after 1", "record 2", "after 2", "record 3", "after 3",
        "record 4", "after 4", "after_epoch True", "before_epoch 1", "record 5", "after 5", "after_epoch False",
        "after_train", "close",
    ]
    assert trainer.state.seen == 5  # a hook's field reads through the state, like state.history
    payload = load_checkpoint(tmp_path / "run")
    assert set(payload) == PAYLOAD_KEYS | {"seen", "names"}
    assert payload["seen"] == 5 and payload["step"] == 5

    again = Recorder()
    resumed = Trainer(config, train_set, resume=tmp_path / "run", progress=False, hooks=[again])
    assert again.state.seen == 5 and resumed.state.step == 5
    resumed.train()
    assert again.state.seen == 6 and load_checkpoint(tmp_path / "run")["seen"] == 6


def test_a_checkpoint_without_the_new_field_resumes_with_its_default(kitti_fixture, tmp_path):
    config = small_config(kitti_fixture, tmp_path / "run", mode="S", max_steps=2, loss={"use_hints": False})
    train_set, _ = build_datasets(config)
    Trainer(config, train_set, progress=False).train()
    assert set(load_checkpoint(tmp_path / "run")) == PAYLOAD_KEYS
    late = Recorder()
    Trainer(config, train_set, resume=tmp_path / "run", progress=False, hooks=[late])
    assert late.state == Counts()


def test_a_hook_may_not_save_under_a_name_another_part_holds(kitti_fixture, tmp_path):
    @dataclass
    class Clashing:
        step: int = 0

    class Bad(Hook):
        state = Clashing()

    config = small_config(kitti_fixture, tmp_path / "run", mode="S", max_steps=1, loss={"use_hints": False})
    trainer = Trainer(config, build_datasets(config)[0], progress=False, hooks=[Bad()])
    with pytest.raises(AssertionError, match=r"Bad saves \['step'\], which another part of the checkpoint holds"):
        trainer.checkpoint_payload()


def test_the_state_names_what_it_does_not_hold(kitti_fixture, tmp_path):
    config = small_config(kitti_fixture, tmp_path / "run", mode="S", max_steps=1, loss={"use_hints": False})
    state = Trainer(config, build_datasets(config)[0], progress=False).state
    assert state.history == [] and state.skipped_steps == 0 and state.best_abs_rel == float("inf")
    with pytest.raises(AttributeError, match="no training state 'nothing'"):
        _ = state.nothing
