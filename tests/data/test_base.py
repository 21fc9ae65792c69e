"""The dataset registry and the metric scale: a new dataset is one subclass and one decorator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mldanet.config import Config, DataConfig
from mldanet.data.base import (
    DATASETS,
    OPTIONAL_HOOKS,
    REQUIRED_HOOKS,
    FrameDataset,
    build_dataset,
    dataset_class,
    dataset_names,
    is_module_spec,
    overrides,
    register_dataset,
    scaled_intrinsics,
)
from mldanet.units import metric_scale


def test_builtin_datasets_are_registered():
    assert {"kitti", "folder"} <= set(dataset_names())
    assert dataset_class("kitti").__name__ == "KittiRawDataset"
    with pytest.raises(ValueError, match="data.dataset='nope' is not one of .*folder, kitti"):
        dataset_class("nope")


def test_an_unknown_dataset_is_named_with_the_known_ones(tmp_path):
    from mldanet.training.datasets import build_datasets

    config = Config()
    config.data.dataset, config.data.data_path = "cityscapes", str(tmp_path)
    with pytest.raises(ValueError, match="data.dataset='cityscapes' is not one of folder, kitti"):
        build_datasets(config)


def test_a_new_dataset_in_a_few_lines(tmp_path):
    """One subclass, one decorator: the factory builds it and samples come out with its intrinsics."""
    import cv2

    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((64, 128, 3), 40 * i, np.uint8))

    @register_dataset("flat_test")
    class Flat(FrameDataset):
        def parse_line(self, line, source, lineno):
            return ".", int(line), "l"

        def frame_path(self, item, frame_id):
            return self.root / f"{item[1] + self.offset(frame_id)}.png"

        def normalised_K(self, item):
            return np.diag([0.5, 1.0, 1.0, 1.0])

    try:
        data = DataConfig(dataset="flat_test", data_path=str(tmp_path), height=64, width=128)
        sample = build_dataset(data, ["1"], (0, -1, 1), train=False, source="lines")[0]
        assert sample.K[0, 0, 0].item() == 64.0 and sample.K[1, 1, 1].item() == 32.0
        assert abs(sample.images[-1].mean().item() - 0 / 255) < 1e-6 and abs(sample.images[1].mean().item() - 80 / 255) < 1e-6
        with pytest.raises(ValueError, match="already registered"):
            register_dataset("flat_test")(type("Other", (FrameDataset,), {}))
        with pytest.raises(ValueError, match="the flat_test dataset has no depth hints"):
            Flat(tmp_path, ["1"], 64, 128, (0,), hints_dir=tmp_path)
    finally:
        DATASETS.pop("flat_test")


def test_metric_scale():
    assert metric_scale(0.54) == 5.4
    assert metric_scale(0.3) == 3.0  # not 2.9999999999999996
    assert metric_scale(0.1) == 1.0


def test_build_dataset_names_a_missing_data_path():
    with pytest.raises(ValueError, match="no data path: give --data-path .*folder"):
        build_dataset(DataConfig(dataset="folder"), [], (0,), train=False, source="x")
    with pytest.raises(FileNotFoundError, match="data path"):
        build_dataset(DataConfig(dataset="kitti", data_path=str(Path("/nonexistent/x"))), [], (0,), train=False, source="x")


@pytest.mark.parametrize("name", dataset_names())
def test_every_registered_dataset_implements_the_interface(name):
    cls = dataset_class(name)
    assert cls.name == name and issubclass(cls, FrameDataset)
    for method in (*REQUIRED_HOOKS, "ground_truth_files", "ground_truth", "hint_name"):
        assert overrides(cls, method), f"{name} does not implement {method}"
    assert cls.has_hints() and cls.hints_required == (name == "kitti")  # KITTI runs without hints are asked for by name
    assert cls.uses_split_folders() == (name == "kitti")  # a folder makes its own splits


def test_the_required_hooks_are_the_three_that_raise():
    """Every other hook has a default: a dataset of the three alone builds (see test_a_new_dataset_in_a_few_lines)."""
    assert REQUIRED_HOOKS == ("parse_line", "frame_path", "normalised_K")
    assert not set(REQUIRED_HOOKS) & set(OPTIONAL_HOOKS)
    for hook in (*REQUIRED_HOOKS, *OPTIONAL_HOOKS):
        assert hasattr(FrameDataset, hook), hook


def test_architecture_lists_exactly_the_hooks():
    text = (Path(__file__).resolve().parents[2] / "docs" / "ARCHITECTURE.md").read_text()
    section = text.split("### Dataset hooks")[1].split("\n#")[0]
    listed = {kind: [] for kind in ("required", "optional")}
    kind = None
    for line in section.splitlines():
        if line.startswith("Required"):
            kind = "required"
        elif line.startswith("Optional"):
            kind = "optional"
        elif line.startswith("- `") and kind:
            listed[kind].append(line[3:].split("`")[0].split("(")[0])
    assert listed == {"required": list(REQUIRED_HOOKS), "optional": list(OPTIONAL_HOOKS)}


def test_scaled_intrinsics_are_the_normalised_k_times_each_scales_size():
    from mldanet.data.kitti import NORMALISED_K

    ks, inv_ks = scaled_intrinsics(NORMALISED_K, 192, 640, (0, 1, 3))
    for k, inv_k, scale in zip(ks.double(), inv_ks.double(), (0, 1, 3), strict=True):
        width, height = 640 / 2**scale, 192 / 2**scale
        fx, cx = NORMALISED_K[0, 0] * width, NORMALISED_K[0, 2] * width
        fy, cy = NORMALISED_K[1, 1] * height, NORMALISED_K[1, 2] * height
        expected = np.array([[fx, 0, cx, 0], [0, fy, cy, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
        np.testing.assert_allclose(k.numpy(), expected, rtol=1e-6)
        np.testing.assert_allclose((k @ inv_k).numpy(), np.eye(4), atol=1e-5)


def test_is_module_spec_tells_a_users_class_from_a_registered_name():
    assert is_module_spec("mypkg.mymodule:MyDataset") and is_module_spec("strips_ext:")
    assert not is_module_spec("kitti") and not is_module_spec("folder")
