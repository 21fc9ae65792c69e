"""KittiRawDataset on a KITTI-layout tree built from the real frame: fields, values, flips, errors."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest
import torch
from skimage.transform import resize as skimage_resize

from mldanet.data.augment import color_jitter
from mldanet.data.base import MissingFilesError
from mldanet.data.kitti_raw import KittiRawDataset
from mldanet.data.ground_truth import generate_depth_map
from mldanet.data.kitti import hint_path
from mldanet.types import collate_samples

from .kitti_layout import FOLDER, make_kitti_drive

H, W = 96, 320
FRAMES = (0, -1, 1, "s")


@pytest.fixture(scope="module")
def kitti(kitti_sample, tmp_path_factory):
    """The tree, with a hint for frame 1 on both sides saved at twice the network size."""
    root = make_kitti_drive(kitti_sample, tmp_path_factory.mktemp("kitti"))
    hints = root / "hints"
    rng = np.random.default_rng(0)
    for side in ("l", "r"):
        path = hint_path(hints, FOLDER, 1, side)
        path.parent.mkdir(parents=True, exist_ok=True)
        hint = rng.uniform(1, 50, (2 * H, 2 * W)).astype(np.float32)
        hint[rng.random(hint.shape) < 0.3] = 0
        np.save(path, hint)
    return root


def reference_image(path) -> torch.Tensor:
    """Independent read: OpenCV BGR → RGB, area resize, 3×H×W in [0, 1]."""
    image = cv2.resize(cv2.imread(str(path))[:, :, ::-1], (W, H), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(image.copy()).permute(2, 0, 1).float() / 255


def dataset(root, lines, **kwargs) -> KittiRawDataset:
    kwargs.setdefault("hints_dir", root / "hints")
    return KittiRawDataset(root, lines, H, W, kwargs.pop("frame_ids", FRAMES), **kwargs)


def test_validation_sample_fields_and_values(kitti, kitti_sample):
    data = dataset(kitti, [f"{FOLDER} 1 l", f"{FOLDER} 1 r"], train=False, load_gt=True)
    assert len(data) == 2 and data.skipped == []
    sample = data[0]
    assert set(sample.images) == set(sample.net_images) == set(FRAMES)
    # frame ids map to the right files: -1/+1 are neighbours on the same side, "s" the other camera
    expected = {
        0: "image_02/data/0000000001.jpg",
        -1: "image_02/data/0000000000.jpg",
        1: "image_02/data/0000000002.jpg",
        "s": "image_03/data/0000000001.jpg",
    }
    for frame_id, relative in expected.items():
        image = sample.images[frame_id]
        assert image.shape == (3, H, W) and image.dtype == torch.float32
        torch.testing.assert_close(image, reference_image(kitti / FOLDER / relative), atol=0, rtol=0)
        assert torch.equal(sample.net_images[frame_id], image)  # no jitter outside training
    assert not torch.equal(sample.images[-1], sample.images[0])

    assert sample.K.shape == sample.inv_K.shape == (4, 4, 4)
    for s in range(4):
        fx, fy, cx, cy = 0.58 * W / 2**s, 1.92 * H / 2**s, 0.5 * W / 2**s, 0.5 * H / 2**s
        expected_k = torch.tensor([[fx, 0, cx, 0], [0, fy, cy, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
        torch.testing.assert_close(sample.K[s], expected_k)
        torch.testing.assert_close(sample.inv_K[s] @ sample.K[s], torch.eye(4), atol=1e-6, rtol=0)

    expected_t = torch.eye(4)
    expected_t[0, 3] = -0.1
    assert torch.equal(sample.stereo_T, expected_t)
    assert data[1].stereo_T[0, 3] == pytest.approx(0.1)

    saved = np.load(hint_path(kitti / "hints", FOLDER, 1, "l"))
    nearest = skimage_resize(saved, (H, W), order=0, preserve_range=True, anti_aliasing=False)
    assert sample.depth_hint.shape == sample.hint_mask.shape == (1, H, W)
    np.testing.assert_array_equal(sample.depth_hint[0].numpy(), nearest)
    assert torch.equal(sample.hint_mask, (sample.depth_hint > 0).float())

    native = generate_depth_map(kitti_sample / "2011_10_03", kitti / FOLDER / "velodyne_points/data/0000000001.bin")
    # monodepth2 resizes validation ground truth with scikit-image, order 0
    expected_gt = skimage_resize(
        native, (375, 1242), order=0, preserve_range=True, mode="constant", anti_aliasing=False
    )
    assert sample.depth_gt.shape == (1, 375, 1242)
    np.testing.assert_array_equal(sample.depth_gt[0].numpy(), expected_gt)
    assert sample.flipped is False and sample.index == 0 and data[1].index == 1

    batch = collate_samples([data[0], data[1]])
    assert batch.images["s"].shape == (2, 3, H, W) and batch.stereo_T.shape == (2, 4, 4)
    assert batch.depth_gt.shape == (2, 1, 375, 1242)


def find_epoch(data, index, flip, jitter) -> int:
    for epoch in range(200):
        data.set_epoch(epoch)
        draw = data.augmentation(index)
        if draw.flip == flip and (draw.jitter is not None) == jitter:
            return epoch
    raise AssertionError("no such draw in 200 epochs")


@pytest.mark.parametrize("side", ["l", "r"])
def test_flip_mirrors_frames_hint_and_gt_and_negates_baseline(kitti, side):
    line = [f"{FOLDER} 1 {side}"]
    plain = dataset(kitti, line, train=False, load_gt=True)[0]
    data = dataset(kitti, line, train=True, load_gt=True, seed=7)
    data.set_epoch(find_epoch(data, 0, flip=True, jitter=False))
    flipped = data[0]
    assert flipped.flipped is True
    for frame_id in FRAMES:
        assert torch.equal(flipped.images[frame_id], plain.images[frame_id].flip(-1))
        assert torch.equal(flipped.net_images[frame_id], flipped.images[frame_id])
    assert torch.equal(flipped.depth_hint, plain.depth_hint.flip(-1))
    assert torch.equal(flipped.hint_mask, plain.hint_mask.flip(-1))
    assert torch.equal(flipped.depth_gt, plain.depth_gt.flip(-1))
    assert flipped.stereo_T[0, 3] == -plain.stereo_T[0, 3] == (0.1 if side == "l" else -0.1)
    assert torch.equal(flipped.K, plain.K)


def test_jitter_touches_only_network_images_with_one_draw(kitti):
    line = [f"{FOLDER} 1 l"]
    plain = dataset(kitti, line, train=False)[0]
    data = dataset(kitti, line, train=True, seed=3)
    data.set_epoch(find_epoch(data, 0, flip=False, jitter=True))
    sample = data[0]
    jitter = data.augmentation(0).jitter
    for frame_id in FRAMES:
        assert torch.equal(sample.images[frame_id], plain.images[frame_id])
        torch.testing.assert_close(
            sample.net_images[frame_id], color_jitter(plain.images[frame_id], jitter), atol=1e-6, rtol=0
        )
        assert not torch.equal(sample.net_images[frame_id], sample.images[frame_id])


def test_randomness_is_per_sample_and_epoch_not_per_order_or_worker(kitti):
    lines = [f"{FOLDER} 1 l", f"{FOLDER} 1 r"] * 4
    data = dataset(kitti, lines, train=True, seed=11, frame_ids=(0, "s"), hints_dir=None)
    data.set_epoch(2)
    forward = [data[i] for i in range(len(data))]
    backward = [data[i] for i in reversed(range(len(data)))][::-1]
    for a, b in zip(forward, backward, strict=True):
        assert a.flipped == b.flipped and torch.equal(a.net_images[0], b.net_images[0])
    assert len({s.flipped for s in forward}) == 2  # both outcomes occur among 8 draws
    loader = torch.utils.data.DataLoader(data, batch_size=4, num_workers=2, collate_fn=collate_samples)
    for batch, start in zip(loader, (0, 4), strict=True):
        assert batch.flipped.tolist() == [s.flipped for s in forward[start : start + 4]]
        assert torch.equal(batch.net_images["s"], torch.stack([s.net_images["s"] for s in forward[start : start + 4]]))
    epoch_two = [data.augmentation(i) for i in range(8)]
    data.set_epoch(3)
    assert [data.augmentation(i) for i in range(8)] != epoch_two  # a new epoch draws anew
    other_seed = dataset(kitti, lines, train=True, seed=12, frame_ids=(0, "s"), hints_dir=None)
    other_seed.set_epoch(2)
    assert [other_seed.augmentation(i) for i in range(8)] != epoch_two


@pytest.mark.parametrize(
    "line, kwargs, missing",
    [
        (f"{FOLDER} 0 l", {}, "image_02/data/-000000001.jpg"),  # first frame: no −1 neighbour
        (f"{FOLDER} 2 l", {}, "image_02/data/0000000003.jpg"),  # last frame: no +1 neighbour
        (
            f"{FOLDER} 2 l",
            {"frame_ids": (0, "s")},
            "hints/2011_10_03/2011_10_03_drive_0000_sync/image_02/0000000002.npy",
        ),
        (
            f"{FOLDER} 2 l",
            {"frame_ids": (0,), "hints_dir": None, "load_gt": True},
            "velodyne_points/data/0000000002.bin",
        ),
    ],
)
def test_missing_files_fail_or_are_skipped(kitti, caplog, line, kwargs, missing):
    good = f"{FOLDER} 1 l"
    with pytest.raises(FileNotFoundError, match=missing) as error:
        dataset(kitti, [good, line], **kwargs)
    # the data layer names no flag: each command says how it drops lines (evaluation cannot)
    assert "line 2" in str(error.value) and "skip_missing" not in str(error.value)
    assert isinstance(error.value, MissingFilesError)
    with caplog.at_level(logging.WARNING):
        data = dataset(kitti, [good, line], skip_missing=True, **kwargs)
    assert data.lines == [good] and data.skipped == [line] and len(data) == 1
    assert "skipped 1 of 2 lines" in caplog.text


def test_missing_partner_and_no_usable_lines(kitti_sample, kitti, tmp_path):
    root = make_kitti_drive(kitti_sample, tmp_path / "kitti", frames=(1,))
    (root / FOLDER / "image_03/data/0000000001.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="image_03/data/0000000001.jpg not found"):
        dataset(root, [f"{FOLDER} 1 l"], frame_ids=(0, "s"), hints_dir=None)
    with pytest.raises(ValueError, match="no usable lines in <lines>: 1 given, 1 skipped"):
        dataset(root, [f"{FOLDER} 1 l"], frame_ids=(0, "s"), hints_dir=None, skip_missing=True)
    with pytest.raises(ValueError, match="must include 0"):
        dataset(kitti, [f"{FOLDER} 1 l"], frame_ids=(-1, 1))
    with pytest.raises(ValueError, match="<lines>:1"):
        dataset(kitti, [f"{FOLDER} 1"])


def test_corrupt_files_at_load_time_name_the_path(kitti_sample, tmp_path):
    root = make_kitti_drive(kitti_sample, tmp_path / "kitti")
    truncated = root / FOLDER / "image_02/data/0000000002.jpg"
    truncated.write_bytes(truncated.read_bytes()[:5000])
    data = dataset(root, [f"{FOLDER} 1 l"], frame_ids=(0, -1, 1), hints_dir=None, train=False)
    with pytest.raises(ValueError, match=f"truncated JPEG.*{truncated}"):
        data[0]
    hint = hint_path(root / "hints", FOLDER, 1, "l")
    hint.parent.mkdir(parents=True)
    np.save(hint, np.ones((H, W), np.float32))
    data = dataset(root, [f"{FOLDER} 1 l"], frame_ids=(0,), train=False)
    hint.write_bytes(b"garbage")  # damaged after the dataset was built: found at load time
    with pytest.raises(ValueError) as error:
        data[0]
    assert str(error.value) == (
        f"depth hint {hint} is not a NumPy .npy array (it lacks the .npy signature): write it with numpy.save"
    )
    hint.unlink()
    with pytest.raises(FileNotFoundError, match=f"depth hint not found: {hint}"):
        data[0]


def test_object_array_hints_are_refused_unread(kitti_sample, tmp_path):
    root = make_kitti_drive(kitti_sample, tmp_path / "kitti")
    hint = hint_path(root / "hints", FOLDER, 1, "l")
    hint.parent.mkdir(parents=True)
    marker = tmp_path / "pwned"
    objects = np.empty(1, dtype=object)
    objects[0] = RunsACommand(marker)
    np.save(hint, objects, allow_pickle=True)
    # at construction (the first hint's header is read) and at load time
    with pytest.raises(ValueError) as error:
        dataset(root, [f"{FOLDER} 1 l"], frame_ids=(0,), train=False)
    np.save(hint, np.ones((H, W), np.float32))
    data = dataset(root, [f"{FOLDER} 1 l"], frame_ids=(0,), train=False)
    np.save(hint, objects, allow_pickle=True)
    with pytest.raises(ValueError) as at_load:
        data[0]
    for message in (str(error.value), str(at_load.value)):
        assert message == (
            f"depth hint {hint} holds Python objects (an object array), not numbers: it was refused unread, since "
            "unpickling could run code; save a numeric array with numpy.save"
        )
        assert "allow_pickle" not in message and "unsafe" not in message
    assert not marker.exists()


class RunsACommand:
    """Unpickling this would create ``marker`` (a file never unpickled leaves none)."""

    def __init__(self, marker) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def write_hint(root, frame: int, side: str, shape: tuple[int, int]):
    path = hint_path(root / "hints", FOLDER, frame, side)
    path.parent.mkdir(parents=True, exist_ok=True)
    hint = np.random.default_rng(frame).uniform(1, 50, shape).astype(np.float32)
    np.save(path, hint)
    return path, hint


def test_hints_of_another_shape_are_refused_naming_the_file(kitti_sample, tmp_path):
    root = make_kitti_drive(kitti_sample, tmp_path / "kitti")
    wrong, _ = write_hint(root, 1, "l", (7, 9))
    with pytest.raises(ValueError) as error:
        dataset(root, [f"{FOLDER} 1 l"], frame_ids=(0,), train=False)
    image = root / FOLDER / "image_02/data/0000000001.jpg"
    assert str(error.value) == (
        f"depth hint {wrong} is 9×7 (width/height 1.29) but its image {image} is 1241×376 (3.30): it was computed "
        "for other images; compute the hints again with `mldanet hints --overwrite`"
    )
    # a later hint of another shape than the first: refused when it is loaded
    write_hint(root, 1, "l", (H, W))
    later, _ = write_hint(root, 1, "r", (H, H))
    data = dataset(root, [f"{FOLDER} 1 l", f"{FOLDER} 1 r"], frame_ids=(0,), train=False)
    data[0]
    with pytest.raises(ValueError, match=f"depth hint {later} is {H}×{H} "):
        data[1]


def test_hints_of_another_size_are_resized_with_one_warning(kitti_sample, tmp_path, caplog):
    root = make_kitti_drive(kitti_sample, tmp_path / "kitti")
    # 320×100 for 1241×376 images: 3 % off in aspect (as monodepth2's 1024×320 for KITTI), resized to 320×96
    first, saved = write_hint(root, 1, "l", (100, W))
    write_hint(root, 1, "r", (100, W))
    with caplog.at_level(logging.WARNING, logger="mldanet.data.base"):
        data = dataset(root, [f"{FOLDER} 1 l", f"{FOLDER} 1 r"], frame_ids=(0,), train=False)
        samples = [data[i % 2] for i in range(6)]
    warnings = [r.getMessage() for r in caplog.records if "depth hints" in r.getMessage()]
    assert warnings == [
        f"depth hints such as {first} are {W}×100, not the network's {W}×{H}: they are resized (nearest neighbour) "
        f"at every load; `mldanet hints --width {W} --height {H}` computes them at this size"
    ]
    # nearest neighbour at pixel centres: output row i samples source row floor((i + ½)·100/96) (never a tie)
    rows = (2 * np.arange(H) + 1) * 100 // (2 * H)
    np.testing.assert_array_equal(samples[0].depth_hint[0].numpy(), saved[rows])
    # a hint of exactly the network size is used as saved, without a warning
    caplog.clear()
    exact_path, exact = write_hint(root, 1, "l", (H, W))
    with caplog.at_level(logging.WARNING, logger="mldanet.data.base"):
        sample = dataset(root, [f"{FOLDER} 1 l"], frame_ids=(0,), train=False)[0]
    assert not caplog.records
    np.testing.assert_array_equal(sample.depth_hint[0].numpy(), exact)


def test_a_frame_of_another_size_is_refused_naming_both_files(kitti_sample, tmp_path):
    root = make_kitti_drive(kitti_sample, tmp_path / "kitti")
    neighbour = root / FOLDER / "image_02/data/0000000000.jpg"
    cv2.imwrite(str(neighbour), cv2.resize(cv2.imread(str(neighbour)), (1224, 370)))
    data = dataset(root, [f"{FOLDER} 1 l"], frame_ids=(0, -1), hints_dir=None, train=False)
    target = root / FOLDER / "image_02/data/0000000001.jpg"
    with pytest.raises(ValueError, match=f"{neighbour} is 1224×370 but the target frame {target} is 1241×376"):
        data[0]


def test_absent_drive_names_the_drive_and_the_split_line(kitti, tmp_path):
    split = tmp_path / "train_files.txt"
    lines = [f"{FOLDER} 1 l", "2011_10_03/2011_10_03_drive_0042_sync 1 l"]
    with pytest.raises(FileNotFoundError) as error:
        dataset(kitti, lines, frame_ids=(0,), hints_dir=None, source=split)
    assert str(error.value).startswith(f"drive folder {kitti / '2011_10_03/2011_10_03_drive_0042_sync'} not found")
    assert f"line 2 of {split}" in str(error.value)
    with pytest.raises(ValueError, match=f"{split}:1: side 'x'"):
        dataset(kitti, [f"{FOLDER} 1 x"], frame_ids=(0,), hints_dir=None, source=split)
