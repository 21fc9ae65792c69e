"""FolderDataset: your own sequences with a camera file, checked against KITTI's dataset on the same renders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from mldanet.config import DataConfig
from mldanet.data.base import MissingFilesError, build_dataset
from mldanet.data.folder import (
    SCORED_DEPTH,
    FolderDataset,
    check_depth_size,
    check_ground_truth,
    depth_map_path,
    find_sequences,
    generate_split,
    read_camera_file,
    read_depth_map,
    read_frame_depth,
    target_frames,
    unit_hint,
)
from mldanet.data.ground_truth import calib_dir, generate_depth_map, velodyne_path
from mldanet.data.kitti_raw import KittiRawDataset
from mldanet.synth import write_synthetic_drives
from mldanet.synth.layouts import DATE, drive_folder, sequence_folder

SIZE = {"drives": 2, "frames": 8, "seed": 5, "width": 320, "height": 96}


@pytest.fixture(scope="module")
def renders(tmp_path_factory) -> dict[str, Path]:
    """The same two synthetic drives in both layouts (PNG: the pixels are exactly the renderer's)."""
    root = tmp_path_factory.mktemp("layouts")
    kitti, folder = root / "kitti", root / "folder"
    write_synthetic_drives(kitti, workers=1, progress=False, img_ext=".png", **SIZE)
    write_synthetic_drives(folder, workers=1, progress=False, img_ext=".png", layout="folder", **SIZE)
    return {"kitti": kitti, "folder": folder}


def folder_copy(renders, tmp_path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(renders["folder"], target)
    return target


def test_synth_folder_layout(renders):
    root = renders["folder"]
    assert sorted(find_sequences(root)) == ["drive_0001", "drive_0002"]  # right/ and depth/ are not sequences
    frames = find_sequences(root)["drive_0001"]
    assert frames == [f"{i:010d}.png" for i in range(8)]
    for frame in frames:
        stem = frame[:-4]
        assert (root / "drive_0001" / "right" / frame).is_file() and (root / "drive_0001" / "depth" / f"{stem}.npy").is_file()
    info = json.loads((root / "synth_info.json").read_text())
    assert info["layout"] == "folder" and [d["folder"] for d in info["drives"]] == ["drive_0001", "drive_0002"]


def test_camera_file_gives_kitti_normalised_intrinsics(renders):
    camera = read_camera_file(renders["folder"] / "camera.yaml")
    expected = np.array([[0.58, 0, 0.5, 0], [0, 1.92, 0.5, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    np.testing.assert_allclose(camera.normalised_K, expected, atol=1e-6)
    assert camera.image_size == (320, 96) and camera.baseline == 0.54


def test_samples_equal_kitti_samples_of_the_same_render(renders):
    """Two implementations, one scene: every tensor of a folder sample equals the KITTI sample's."""
    frame_ids = (0, -1, 1, "s")
    kitti = KittiRawDataset(
        renders["kitti"], [f"{DATE}/{drive_folder(1)} 4 l"], 96, 320, frame_ids, train=True, img_ext=".png",
        load_gt=False, seed=3,
    )
    folder = FolderDataset(
        renders["folder"], [f"{sequence_folder(1)} 0000000004.png"], 96, 320, frame_ids, train=True, seed=3
    )
    for epoch in (0, 1, 2):  # different flips and jitters, the same in both
        kitti.set_epoch(epoch)
        folder.set_epoch(epoch)
        a, b = kitti[0], folder[0]
        for frame_id in frame_ids:
            assert torch.equal(a.images[frame_id], b.images[frame_id])
            assert torch.equal(a.net_images[frame_id], b.net_images[frame_id])
        torch.testing.assert_close(a.K, b.K, atol=1e-4, rtol=1e-6)
        torch.testing.assert_close(a.inv_K, b.inv_K, atol=1e-6, rtol=1e-4)
        assert torch.equal(a.stereo_T, b.stereo_T) and a.flipped == b.flipped
    assert folder.stereo_baseline == kitti.stereo_baseline == 0.54


def test_depth_maps_agree_with_the_velodyne_ground_truth(renders):
    """The dense depth maps are the renderer's; where the simulated Velodyne hit, both say the same depth."""
    folder = FolderDataset(renders["folder"], ["drive_0001 0000000003.png"], 96, 320, (0,), train=False, load_gt=True)
    dense = folder.ground_truth(folder.items[0])
    root, drive = renders["kitti"], f"{DATE}/{drive_folder(0)}"
    sparse = generate_depth_map(calib_dir(root, drive), velodyne_path(root, drive, 3), 2)
    hit = sparse > 0
    assert hit.sum() > 100 and dense.shape == sparse.shape == (96, 320)
    relative = np.abs(dense[hit] - sparse[hit]) / sparse[hit]
    assert np.median(relative) < 0.01
    assert (dense[~np.isfinite(dense)]).size == 0 and (dense == 0).any()  # the sky is unknown, stored as 0


def test_frame_step_takes_neighbours_further_away(renders):
    folder = FolderDataset(
        renders["folder"], ["drive_0001 0000000004.png"], 96, 320, (0, -1, 1), train=False, frame_step=2
    )
    item = folder.items[0]
    assert folder.frame_path(item, -1).name == "0000000002.png" and folder.frame_path(item, 1).name == "0000000006.png"
    with pytest.raises(MissingFilesError, match=r"line 1: frame .*0000000001.png has no frame -2 \(frame id -1 × frame step 2\)"):
        FolderDataset(renders["folder"], ["drive_0001 0000000001.png"], 96, 320, (0, -1, 1), frame_step=2)


def test_generated_split_holds_out_every_nth_target(renders):
    lines = generate_split(renders["folder"], (0, -1, 1, "s"), frame_step=1, val_every=3)
    # targets 1..6 of each drive (both neighbours needed); the 2nd of every 3 (index 1, 4) held out
    assert lines["val"] == [f"drive_000{d} 00000000{i:02d}.png" for d in (1, 2) for i in (2, 5)]
    assert lines["test"] == lines["val"]
    assert len(lines["train"]) == 2 * 6 - 4 and not set(lines["train"]) & set(lines["val"])
    assert generate_split(renders["folder"], (0,), 1, 0)["val"] == []


def test_stereo_targets_need_their_right_image(renders, tmp_path):
    root = folder_copy(renders, tmp_path)
    (root / "drive_0001" / "right" / "0000000003.png").unlink()
    frames = find_sequences(root)["drive_0001"]
    assert "0000000003.png" not in target_frames("drive_0001", frames, root, (0, -1, 1, "s"), 1)
    assert "0000000003.png" in target_frames("drive_0001", frames, root, (0, -1, 1), 1)


def test_a_sequence_camera_file_wins_and_cropped_frames_are_refused(renders, tmp_path):
    root = folder_copy(renders, tmp_path)
    (root / "drive_0002" / "camera.yaml").write_text("K: [[100, 0, 160], [0, 100, 48], [0, 0, 1]]\nimage_size: [640, 192]\n")
    dataset = FolderDataset(root, ["drive_0001 0000000002.png", "drive_0002 0000000002.png"], 96, 320, (0, -1, 1))
    k1, k2 = dataset[0].K[0], dataset[1].K[0]
    assert k1[0, 0].item() == pytest.approx(0.58 * 320, rel=1e-5)
    assert k2[0, 0].item() == pytest.approx(100 / 640 * 320, rel=1e-5) and k2[0, 2].item() == pytest.approx(80)
    (root / "drive_0002" / "camera.yaml").write_text("K: [[100, 0, 160], [0, 100, 48], [0, 0, 1]]\nimage_size: [320, 120]\n")
    with pytest.raises(ValueError, match=r"0000000000.png is 320×96 .* but .*drive_0002/camera.yaml gives K for 320×120"):
        FolderDataset(root, ["drive_0002 0000000002.png"], 96, 320, (0, -1, 1))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("image_size: [320, 96]\n", "has no K"),
        ("K: [[1, 0, 1], [0, 1, 1]]\nimage_size: [320, 96]\n", "3×3 matrix of finite numbers, got shape (2, 3)"),
        ("K: [[1, 0.5, 1], [0, 1, 1], [0, 0, 1]]\nimage_size: [320, 96]\n", "no skew"),
        ("K: [[-1, 0, 1], [0, 1, 1], [0, 0, 1]]\nimage_size: [320, 96]\n", "focal lengths"),
        ("K: [[1, 0, 1], [0, 1, 1], [0, 0, 1]]\nimage_size: [320]\n", "image_size must be [width, height]"),
        ("K: [[1, 0, 1], [0, 1, 1], [0, 0, 1]]\nimage_size: [320, 96]\nbaseline: -2\n", "baseline must be a distance"),
        ("K: [[1, 0, 1], [0, 1, 1], [0, 0, 1]]\nimage_size: [320, 96]\nfocal: 3\n", "unknown key(s) focal"),
        ("K: [[1, 0, 1], [0, 1, 1], [0, 0, 1]]\nimage_size: [320, 96]\ndepth_scale: 0\n", "depth_scale must be the metres"),
        ("K: [[1, 0, 1], [0, 1, 1], [0, 0, 1]]\nimage_size: [320, 96]\ndepth_scale: mm\n", "depth_scale must be the metres"),
        ("K: [[a, 0, 1], [0, 1, 1], [0, 0, 1]]\nimage_size: [320, 96]\n", "K must be a 3×3 matrix of numbers"),
        ("[1, 2]\n", "must be a mapping"),
        ("K: [[1, 0\n", "not valid YAML or JSON"),
    ],
)
def test_bad_camera_files_are_named(tmp_path, text, message):
    path = tmp_path / "cam.yaml"
    path.write_text(text)
    with pytest.raises(ValueError) as error:
        read_camera_file(path)
    assert str(path) in str(error.value) and message in str(error.value)


def test_json_camera_file(tmp_path):
    path = tmp_path / "cam.json"
    path.write_text(json.dumps({"K": [[500, 0, 320], [0, 500, 240], [0, 0, 1]], "image_size": [640, 480]}))
    camera = read_camera_file(path)
    assert camera.normalised_K[0, 0] == pytest.approx(500 / 640) and camera.normalised_K[1, 2] == pytest.approx(0.5)
    assert camera.baseline == 0.0


def test_missing_camera_and_baseline_are_explained(renders, tmp_path):
    root = folder_copy(renders, tmp_path)
    (root / "camera.yaml").unlink()
    with pytest.raises(FileNotFoundError, match="no camera for sequence .*drive_0001: give --intrinsics FILE"):
        FolderDataset(root, ["drive_0001 0000000002.png"], 96, 320, (0, -1, 1))
    (root / "camera.yaml").write_text("K: [[185.6, 0, 160], [0, 184.32, 48], [0, 0, 1]]\nimage_size: [320, 96]\n")
    FolderDataset(root, ["drive_0001 0000000002.png"], 96, 320, (0, -1, 1))  # M needs no baseline
    with pytest.raises(ValueError, match=r"camera.yaml gives no baseline, which modes S and MS need"):
        FolderDataset(root, ["drive_0001 0000000002.png"], 96, 320, (0, "s"))


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("drive_0001", "is not '<sequence> <frame file name>'"),
        ("drive_0009 0000000002.png", "no sequence folder"),
        ("drive_0001 0000000099.png", "frame .*0000000099.png not found"),
        ("drive_0001 0000000000.png", "has no frame -1"),
    ],
)
def test_bad_split_lines_name_the_line(renders, line, message):
    # a malformed line is a ValueError; a line naming a frame that is not there a MissingFilesError,
    # which data.skip_missing=true drops
    with pytest.raises((ValueError, MissingFilesError), match=rf"split.txt, line 1: .*{message}"):
        FolderDataset(renders["folder"], [line], 96, 320, (0, -1, 1), source="split.txt")


def test_missing_depth_maps_are_missing_files(renders, tmp_path):
    root = folder_copy(renders, tmp_path)
    (root / "drive_0001" / "depth" / "0000000002.npy").unlink()
    lines = ["drive_0001 0000000002.png", "drive_0001 0000000003.png"]
    with pytest.raises(MissingFilesError, match=r"depth/0000000002.npy not found \(needed by line 1"):
        FolderDataset(root, lines, 96, 320, (0,), load_gt=True)
    dataset = FolderDataset(root, lines, 96, 320, (0,), load_gt=True, skip_missing=True)
    assert dataset.lines == [lines[1]] and dataset.skipped == [lines[0]]


def test_depth_png_in_kitti_format(tmp_path):
    import cv2

    depth = np.array([[0, 256 * 12], [256 * 3 + 128, 65535]], dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "d.png"), depth)
    np.testing.assert_array_equal(read_depth_map(tmp_path / "d.png"), [[0, 12], [3.5, 65535 / 256]])
    np.save(tmp_path / "bad.npy", np.zeros((2, 2, 3)))
    with pytest.raises(ValueError, match="bad.npy is not an H×W array"):
        read_depth_map(tmp_path / "bad.npy")
    np.save(tmp_path / "inf.npy", np.array([[np.inf, 2.0]], dtype=np.float32))
    np.testing.assert_array_equal(read_depth_map(tmp_path / "inf.npy"), [[0, 2]])


def test_build_dataset_from_config_generates_the_split(renders):
    data = DataConfig(dataset="folder", data_path=str(renders["folder"]), height=96, width=320, val_every=4)
    lines, source = FolderDataset.split_lines(data, "val", (0, -1, 1))
    assert "generated" in str(source) and lines == ["drive_0001 0000000003.png", "drive_0002 0000000003.png"]
    dataset = build_dataset(data, lines, (0, -1, 1), train=False, source=source, load_gt=True)
    sample = dataset[0]
    assert sample.depth_gt.shape == (1, 96, 320) and float(sample.depth_gt.max()) > 1.0
    empty = DataConfig(dataset="folder", data_path=str(renders["folder"]), frame_step=9)
    with pytest.raises(ValueError, match=r"no train frames in .*: no frame has everything the mode needs \(neighbours -9, \+9\)"):
        FolderDataset.split_lines(empty, "train", (0, -1, 1))


def test_synth_never_writes_into_a_users_folder(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "camera.yaml").write_text("K: my camera\n")
    with pytest.raises(FileExistsError, match="camera.yaml exists and .* is not a synth output"):
        write_synthetic_drives(tmp_path / "mine", drives=1, frames=3, width=64, height=32, workers=1, progress=False,
                               layout="folder")
    assert (tmp_path / "mine" / "camera.yaml").read_text() == "K: my camera\n"
    again = tmp_path / "synth"
    for _ in range(2):  # an earlier synth output is replaced
        write_synthetic_drives(again, drives=1, frames=3, width=64, height=32, workers=1, progress=False, layout="folder")
    assert sorted(p.name for p in again.iterdir()) == ["camera.yaml", "drive_0001", "synth_info.json"]


def test_a_sequence_camera_may_be_json(renders, tmp_path):
    root = folder_copy(renders, tmp_path)
    (root / "drive_0002" / "camera.json").write_text(
        json.dumps({"K": [[64, 0, 160], [0, 64, 48], [0, 0, 1]], "image_size": [320, 96]})
    )
    dataset = FolderDataset(root, ["drive_0002 0000000002.png"], 96, 320, (0, -1, 1))
    assert dataset[0].K[0, 0, 0].item() == pytest.approx(64.0)


def test_folder_hints_equal_kitti_hints_of_the_same_render(renders, tmp_path):
    """`mldanet hints --dataset folder` computes what the KITTI path computes for the same pair."""
    from mldanet import cli
    from mldanet.data.kitti import hint_path

    common = ["--width", "320", "--height", "96", "--num-disparities", "32", "48", "--workers", "1"]
    kitti_lines = tmp_path / "kitti.txt"
    kitti_lines.write_text(f"{DATE}/{drive_folder(1)} 4 l\n")
    assert cli.main(["hints", "--data-path", str(renders["kitti"]), "--split-file", str(kitti_lines), "--img-ext", ".png",
                     "--out", str(tmp_path / "kh"), *common]) == 0
    folder_lines = tmp_path / "folder.txt"
    folder_lines.write_text(f"{sequence_folder(1)} 0000000004.png\n")
    assert cli.main(["hints", "--dataset", "folder", "--data-path", str(renders["folder"]), "--split-file",
                     str(folder_lines), "--out", str(tmp_path / "fh"), *common]) == 0
    kitti = np.load(hint_path(tmp_path / "kh", f"{DATE}/{drive_folder(1)}", 4, "l"))
    folder = np.load(tmp_path / "fh" / sequence_folder(1) / "0000000004.npy")
    assert (folder > 0).mean() > 0.5 and np.array_equal(folder, kitti)
    sample = FolderDataset(
        renders["folder"], [f"{sequence_folder(1)} 0000000004.png"], 96, 320, (0, "s"), hints_dir=tmp_path / "fh",
        train=False,
    )[0]
    assert torch.equal(sample.depth_hint[0], torch.from_numpy(folder)) and torch.equal(sample.hint_mask, (sample.depth_hint > 0).float())


def test_frames_a_pixel_off_the_camera_size_are_taken_and_said_once(renders, tmp_path, caplog):
    import logging

    root = folder_copy(renders, tmp_path)
    # frames are 320×96; a camera file for 640×193 (the frames resized, an odd row lost) is within the aspect tolerance
    (root / "camera.yaml").write_text("K: [[371.2, 0, 320], [0, 370.6, 96.5], [0, 0, 1]]\nimage_size: [640, 193]\nbaseline: 0.54\n")
    with caplog.at_level(logging.WARNING, logger="mldanet.data.folder"):
        dataset = FolderDataset(root, ["drive_0001 0000000002.png", "drive_0002 0000000002.png"], 96, 320, (0, -1, 1))
        dataset[0], dataset[1]
    notes = [r.getMessage() for r in caplog.records if "K is rescaled to the frames" in r.getMessage()]
    assert len(notes) == 1, notes
    assert f"are 320×96, {root / 'camera.yaml'} gives K for 640×193: K is rescaled to the frames" in notes[0]
    # at the camera's own size nothing is said
    from mldanet.data.folder import read_camera_file

    assert read_camera_file(root / "camera.yaml").check_frame_size(root / "x.png", (193, 640)) is None


# ---------------------------------------------------------------- ground truth as evaluation reads it
VAL = ["drive_0001 0000000003.png", "drive_0002 0000000003.png"]


def true_depth(renders, sequence: str = "drive_0001", stem: str = "0000000003") -> np.ndarray:
    return np.load(renders["folder"] / sequence / "depth" / f"{stem}.npy")


def test_depth_size_against_the_frame():
    frame = (375, 1242)
    assert check_depth_size((375, 1242), frame, Path("d.npy"), Path("f.png")) is None
    for half in ((187, 621), (188, 621)):  # 187.5 rounded either way
        assert check_depth_size(half, frame, Path("d.npy"), Path("f.png")) == pytest.approx(0.5)
    assert check_depth_size((376, 1241), frame, Path("d.npy"), Path("f.png")) == pytest.approx(1241 / 1242)
    for other in ((50, 50), (1242, 375), (375, 1000), (300, 1242)):  # square, transposed, cropped, stretched
        with pytest.raises(ValueError, match=rf"depth map d.npy is {other[1]}×{other[0]} but its frame f.png is 1242×375"):
            check_depth_size(other, frame, Path("d.npy"), Path("f.png"))


def test_a_depth_map_of_another_aspect_ratio_is_refused_not_stretched(renders, tmp_path):
    """Issue 27, case 1: 50×50 maps of 320×96 frames were stretched silently by validation and evaluate."""
    root = folder_copy(renders, tmp_path)
    path = root / "drive_0001" / "depth" / "0000000003.npy"
    np.save(path, np.full((50, 50), 10.0, np.float32))
    dataset = FolderDataset(root, VAL, 96, 320, (0,), load_gt=True)
    message = rf"depth map {path} is 50×50 but its frame {root / 'drive_0001' / '0000000003.png'} is 320×96"
    with pytest.raises(ValueError, match=message):
        dataset.ground_truth(dataset.items[0])  # evaluate's read
    with pytest.raises(ValueError, match=message):
        dataset[0]  # validation's
    np.save(root / "drive_0002" / "depth" / "0000000003.npy", np.full((320, 96), 10.0, np.float32))  # transposed
    with pytest.raises(ValueError, match=message + r".* \(1 more of the 2 maps are refused; `mldanet check-data` lists"):
        check_ground_truth(dataset)  # train's, before step 1


def test_a_half_size_depth_map_is_the_frame_scaled(renders, tmp_path):
    root = folder_copy(renders, tmp_path)
    truth = true_depth(renders)
    half = truth[::2, ::2]
    np.save(root / "drive_0001" / "depth" / "0000000003.npy", half)
    read = read_frame_depth(root, "drive_0001", "0000000003.png")
    assert read.scale == 0.5 and np.array_equal(read.depth, half)
    dataset = FolderDataset(root, VAL, 96, 320, (0,), load_gt=True, train=False)
    notes = check_ground_truth(dataset)
    assert len(notes) == 1 and "0000000003.npy are their frame's size × 0.5" in notes[0]
    # validation resizes it (nearest) to the frames' size: each pixel of the half map covers 2×2
    np.testing.assert_array_equal(dataset[0].depth_gt[0].numpy()[::2, ::2], half)


def test_two_depth_files_for_one_frame_are_refused_naming_both(renders, tmp_path):
    """Issue 27, case 2: with 3.npy and 3.png side by side the PNG was scored, silently."""
    import cv2

    root = folder_copy(renders, tmp_path)
    folder = root / "drive_0001" / "depth"
    cv2.imwrite(str(folder / "0000000003.png"), (true_depth(renders) * 512).astype(np.uint16))
    both = rf"two depth maps for frame .*0000000003.png: {folder / '0000000003.npy'} and {folder / '0000000003.png'}"
    with pytest.raises(ValueError, match=both):
        depth_map_path(root, "drive_0001", "0000000003.png")
    data = DataConfig(dataset="folder", data_path=str(root))
    with pytest.raises(ValueError, match=both):
        FolderDataset.lines_with_ground_truth(data, VAL)  # what train and evaluate pick their lines with
    with pytest.raises(ValueError, match=both):
        FolderDataset(root, VAL, 96, 320, (0,), load_gt=True, skip_missing=True)  # not a missing file: not skipped
    (folder / "0000000003.npy").unlink()
    assert depth_map_path(root, "drive_0001", "0000000003.png") == folder / "0000000003.png"
    (folder / "0000000003.PNG").hardlink_to(folder / "0000000003.png")  # one file, as a case-insensitive disk shows it
    assert depth_map_path(root, "drive_0001", "0000000003.png") == folder / "0000000003.png"
    assert depth_map_path(root, "drive_0001", "0000000009.png") == folder / "0000000009.npy"  # none: the .npy path


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.full((96, 320), 40, np.uint8), "is an 8-bit PNG, not 16 bits"),
        (np.full((96, 320, 3), 40 * 256, np.uint16), "has 3 channels, not one"),
    ],
)
def test_png_depth_maps_must_be_single_channel_16_bit(tmp_path, image, message):
    """Issue 27, case 3: refused where the map is read, which check-data and train now do first."""
    import cv2

    path = tmp_path / "d.png"
    cv2.imwrite(str(path), image)
    with pytest.raises(ValueError, match=rf"depth map {path} {message}.*: depth maps are single-channel uint16 PNGs"):
        read_depth_map(path)


def test_integer_millimetres_are_named_and_depth_scale_reads_them(renders, tmp_path):
    """Issue 27, case 4: int64 millimetres; depth_scale: 0.001 in camera.yaml reads them as metres."""
    root = folder_copy(renders, tmp_path)
    truth = true_depth(renders)
    path = root / "drive_0001" / "depth" / "0000000003.npy"
    np.save(path, np.round(truth * 1000).astype(np.int64))
    with pytest.raises(ValueError, match=rf"depth map {path}: its values are mostly beyond 80 m .*probably millimetres "
                                         r"\(divide by 1000\).*'depth_scale: 0.001'"):
        read_depth_map(path)
    np.testing.assert_allclose(read_depth_map(path, 0.001), truth, atol=5e-4 + 1e-6)
    camera = root / "camera.yaml"
    camera.write_text(camera.read_text() + "depth_scale: 0.001\n")
    assert read_camera_file(camera).depth_scale == 0.001
    dataset = FolderDataset(root, VAL, 96, 320, (0,), load_gt=True, train=False)
    np.testing.assert_allclose(dataset.ground_truth(dataset.items[0]), truth, atol=5e-4 + 1e-6)
    assert check_ground_truth(dataset) == []
    # whole metres in integers are read, with a warning naming the unit to try
    np.save(path, np.round(truth).astype(np.int32))
    note = read_frame_depth(root, "drive_0001", "0000000003.png").note
    assert "hold integers (int32), read as whole metres" in note and "'depth_scale: 0.001' (or 0.01)" in note


def test_unit_hint_names_the_divisor():
    assert unit_hint(5000) == "probably millimetres (divide by 1000) or centimetres (divide by 100)"
    assert unit_hint(30000) == "probably millimetres (divide by 1000)"
    assert unit_hint(1e6) == "not metres (divide by the stored units per metre)"


def test_check_ground_truth_refuses_maps_without_a_scored_pixel(renders, tmp_path):
    root = folder_copy(renders, tmp_path)
    for line in VAL:
        sequence, frame = line.split()
        np.save(root / sequence / "depth" / f"{frame[:-4]}.npy", np.zeros((96, 320), np.float32))
    dataset = FolderDataset(root, VAL, 96, 320, (0,), load_gt=True, train=False)
    with pytest.raises(ValueError, match=rf"none of the 2 depth maps of {root} to score has a pixel between 0.001 and 80 m"):
        check_ground_truth(dataset)
    assert check_ground_truth(FolderDataset(root, VAL, 96, 320, (0,))) == []  # without ground truth: nothing read
    assert SCORED_DEPTH == (1e-3, 80.0)
