"""What the training data decides about a run: derived on a copy of the config, and said so."""

from __future__ import annotations

import copy

import pytest
import yaml

from mldanet import cli
from mldanet.config import Config
from mldanet.training.datasets import build_datasets, derived_config


@pytest.fixture(scope="module")
def folder_drive(tmp_path_factory):
    root = tmp_path_factory.mktemp("derived")
    data = root / "drives"
    assert cli.main(["synth", "--layout", "folder", "--out", str(data), "--drives", "2", "--frames", "8", "--width", "192",
                     "--height", "64", "--workers", "1", "--no-progress", "--seed", "2"]) == 0
    camera = yaml.safe_load((data / "camera.yaml").read_text())
    camera["baseline"] = 0.3  # another rig than KITTI's 0.54 (the config's default)
    (data / "camera.yaml").write_text(yaml.safe_dump(camera))
    return data


def folder_config(data, mode: str) -> Config:
    config = Config()
    config.data.dataset, config.data.data_path, config.data.height, config.data.width = "folder", str(data), 64, 192
    config.train.mode = mode
    config.train.validate = False
    return config


def test_a_stereo_run_without_hints_derives_the_rig_and_hints_off(folder_drive):
    config = folder_config(folder_drive, "MS")
    given = copy.deepcopy(config)
    train_set, _ = build_datasets(config)
    derived = derived_config(config, train_set)
    assert config == given  # the user's config is read, never written
    assert derived.data.baseline == 0.3 and derived.loss.use_hints is False
    assert derived.derived == (
        "loss.use_hints false: the folder training set has no depth hints",
        "data.baseline 0.3: the stereo rig of the folder training set",
    )
    assert derived.depth_scale == pytest.approx(0.3 / 0.1)
    # derived again (a resume of its saved config) it keeps the record and adds nothing
    assert derived_config(derived, train_set).derived == derived.derived


def test_a_monocular_run_derives_nothing(folder_drive):
    config = folder_config(folder_drive, "M")
    train_set, _ = build_datasets(config)
    derived = derived_config(config, train_set)
    assert derived == config and derived is not config and derived.derived == ()


def test_a_note_goes_when_its_value_no_longer_holds(folder_drive):
    config = folder_config(folder_drive, "MS")
    train_set, _ = build_datasets(config)
    saved = derived_config(config, train_set)
    # a resume that turns hints on (with hints this time) keeps the rig's note and drops the hints one
    saved.loss.use_hints = True
    train_set.hints_dir = folder_drive  # stands for the --hints-dir this resume gives
    assert derived_config(saved, train_set).derived == ("data.baseline 0.3: the stereo rig of the folder training set",)


def test_a_stereo_run_needs_the_datasets_baseline(folder_drive):
    config = folder_config(folder_drive, "MS")
    train_set, _ = build_datasets(config)
    train_set.stereo_baseline = 0.0  # a user's class that sets none
    with pytest.raises(ValueError, match=r"mode MS needs the stereo baseline of the folder dataset, which gives none .*--mode M"):
        derived_config(config, train_set)
