"""``mldanet predict`` on the real KITTI test image, a video written here, folders and bad inputs."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from mldanet.cli import main
from tests.checkpoints import write_checkpoint
from mldanet.geometry import disp_to_depth
from mldanet.predict import predict_paths
from mldanet.visualize import colorize_depth

HEIGHT, WIDTH = 64, 128


@pytest.fixture(scope="module")
def mlda(tmp_path_factory) -> tuple[Path, torch.nn.Module]:
    """MLDA-Net proper, for the end-to-end run on real data."""
    return write_checkpoint(tmp_path_factory.mktemp("ckpt") / "mlda.pt", "mlda", HEIGHT, WIDTH)


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory) -> Path:
    """The monodepth2-style variant (4× fewer weights), where only the file handling is under test."""
    return write_checkpoint(tmp_path_factory.mktemp("ckpt") / "baseline.pt", "baseline", HEIGHT, WIDTH)[0]


def write_video(path: Path, frames: int = 5, size: tuple[int, int] = (72, 120)) -> Path:
    height, width = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (width, height))
    assert writer.isOpened()
    y, x = np.mgrid[:height, :width]
    for i in range(frames):
        frame = np.stack([(x * 2 + i * 20) % 256, (y * 3) % 256, np.full_like(x, 40 * i)], axis=-1).astype(np.uint8)
        writer.write(frame)
    writer.release()
    return path


def write_image(path: Path, size: tuple[int, int], seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    assert cv2.imwrite(str(path), image)
    return path


def expected_disparity(net: torch.nn.Module, image_path: Path) -> np.ndarray:
    """By hand: area-resize to the network size, run, scale, resize bilinearly back to native size."""
    rgb = cv2.cvtColor(cv2.imread(str(image_path)), cv2.COLOR_BGR2RGB)
    small = cv2.resize(rgb, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)
    with torch.no_grad():
        disp = net(torch.from_numpy(small).permute(2, 0, 1)[None].float() / 255.0)[0]
    scaled = disp_to_depth(disp, 0.1, 100.0)[0][0, 0].numpy()
    return cv2.resize(scaled, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)


def test_images_video_folders_and_unreadable_inputs(mlda, kitti_sample, tmp_path, capsys):
    checkpoint, net = mlda
    kitti_image = tmp_path / "kitti_test_image.jpg"  # a driving frame at a size no network input has
    frame = cv2.imread(str(kitti_sample / "2011_10_03" / "2011_10_03_drive_0000_sync" / "image_02" / "data" / "0000000001.jpg"))
    cv2.imwrite(str(kitti_image), cv2.resize(frame, (638, 235), interpolation=cv2.INTER_AREA))
    video = write_video(tmp_path / "clip.avi")
    folder = tmp_path / "folder"
    write_image(folder / "sub" / "a.png", (40, 50), seed=1)
    write_image(folder / "b.jpg", (30, 70), seed=2)
    (folder / "notes.txt").write_text("not an image")
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8 this is not a JPEG \xff\xd9")
    missing = tmp_path / "missing.png"
    out = tmp_path / "out"

    code = main([
        "predict", "--checkpoint", str(checkpoint), str(kitti_image), str(video), str(folder), str(corrupt),
        str(missing), "--out", str(out), "--every", "2", "--batch-size", "4", "--device", "cpu",
    ])

    assert code == 1
    captured = capsys.readouterr()
    assert "wrote 6 frames" in captured.out
    assert "could not read 2 input(s)" in captured.err
    assert f"{corrupt}: cannot decode image" in captured.err and f"{missing}: not found" in captured.err
    assert "Traceback" not in captured.err

    names = sorted(p.name[: -len("_disp.npy")] for p in out.rglob("*_disp.npy"))
    assert names == ["a", "b", "clip_000000", "clip_000002", "clip_000004", "kitti_test_image"]
    # several inputs: a folder's outputs under its name, with its sub-folders kept
    assert (out / "folder" / "sub" / "a_disp.npy").is_file() and (out / "folder" / "b_disp.npy").is_file()

    disp = np.load(out / "kitti_test_image_disp.npy")
    depth = np.load(out / "kitti_test_image_depth.npy")
    assert disp.shape == depth.shape == (235, 638) and disp.dtype == depth.dtype == np.float32
    np.testing.assert_allclose(disp, expected_disparity(net, kitti_image), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(depth, 5.4 / disp, rtol=1e-6)  # stereo-trained: metres
    picture = cv2.cvtColor(cv2.imread(str(out / "kitti_test_image_depth.png")), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(picture, colorize_depth(disp))  # inverse depth: near is bright
    assert np.load(out / "clip_000002_depth.npy").shape == (72, 120)
    assert np.load(out / "folder" / "sub" / "a_depth.npy").shape == (40, 50)


def test_every_video_frame_and_folders_of_one_file_name_mirrored(small_checkpoint, tmp_path):
    video = write_video(tmp_path / "clip.avi", frames=3)
    write_image(tmp_path / "x" / "same.png", (32, 32), seed=3)
    write_image(tmp_path / "y" / "same.png", (32, 32), seed=4)
    summary = predict_paths(small_checkpoint, [video, tmp_path / "x", tmp_path / "y"], tmp_path / "out", batch_size=2,
                            device="cpu", progress=False)
    assert summary.names == ["clip_000000", "clip_000001", "clip_000002", "x/same", "y/same"]
    assert summary.failed == [] and summary.metric
    a, b = (np.load(tmp_path / "out" / folder / "same_disp.npy") for folder in ("x", "y"))
    assert not np.array_equal(a, b)  # the second image did not overwrite the first
    listed = (tmp_path / "out" / ".mldanet-predictions.txt").read_text().splitlines()
    assert "x/same_depth.png" in listed and "y/same_depth.png" in listed


def test_two_inputs_of_one_name_are_refused_before_anything_is_written(small_checkpoint, tmp_path, capsys):
    first = write_image(tmp_path / "a" / "x.jpg", (32, 32), seed=3)
    second = write_image(tmp_path / "b" / "x.jpg", (32, 32), seed=4)
    out = tmp_path / "out"
    assert main(["predict", "--checkpoint", str(small_checkpoint), str(first), str(second), "--out", str(out), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert f"{first} and {second} would both write x_depth.*" in err and "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())
    # two folders of one name collide the same way
    write_image(tmp_path / "p" / "images" / "y.jpg", (32, 32), seed=5)
    write_image(tmp_path / "q" / "images" / "y.jpg", (32, 32), seed=6)
    assert main(["predict", "--checkpoint", str(small_checkpoint), str(tmp_path / "p" / "images"),
                 str(tmp_path / "q" / "images"), "--out", str(out), "--device", "cpu"]) == 2
    assert "would both write images/y_depth.*" in capsys.readouterr().err


def monocular_copy(checkpoint: Path, path: Path) -> Path:
    """``checkpoint`` saved again at ``path`` as if trained in mode M (relative depth)."""
    payload = torch.load(checkpoint, weights_only=True)
    payload["config"]["train"]["mode"] = "M"
    torch.save(payload, path)
    return path


def test_monocular_checkpoint_gives_relative_depth(small_checkpoint, tmp_path, capsys):
    mono = monocular_copy(small_checkpoint, tmp_path / "m.pt")
    image = write_image(tmp_path / "frame.png", (48, 80), seed=5)
    assert main(["predict", "--checkpoint", str(mono), str(image), "--out", str(tmp_path / "out"), "--device", "cpu"]) == 0
    assert "relative depth" in capsys.readouterr().out
    disp = np.load(tmp_path / "out" / "frame_disp.npy")
    np.testing.assert_allclose(np.load(tmp_path / "out" / "frame_depth.npy"), 1.0 / disp, rtol=1e-6)


@pytest.mark.parametrize("flags, message", [
    (["--every", "0"], "--every 0 must be at least 1"),
    (["--height", "50"], "--height 50 must be a positive multiple of 32"),
    (["--point-cloud", "--max-depth", "0"], "--max-depth 0 must be a positive number"),
    (["--point-cloud", "--max-depth", "nan"], "--max-depth nan must be a positive number"),
    (["--intrinsics", "camera.yaml"], "--intrinsics is for point clouds: add --point-cloud"),
    (["--max-depth", "50"], "--max-depth is for point clouds: add --point-cloud"),
])
def test_bad_options_are_named(small_checkpoint, tmp_path, capsys, flags, message):
    image = write_image(tmp_path / "frame.png", (32, 32), seed=6)
    assert main(["predict", "--checkpoint", str(small_checkpoint), str(image), "--out", str(tmp_path), *flags]) == 2
    assert message in capsys.readouterr().err


def test_an_output_path_that_is_a_file_is_refused_before_any_work(tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.write_text("notes")
    assert main(["predict", "--checkpoint", str(tmp_path / "never-read.pt"), "x.png", "--out", str(taken)]) == 2
    assert f"output folder --out {taken} is a file, not a folder" in capsys.readouterr().err
    assert taken.read_text() == "notes"


def test_predicting_into_the_input_folder_twice_never_reads_its_own_outputs(small_checkpoint, tmp_path, capsys):
    folder = tmp_path / "photos"
    for i in range(2):
        write_image(folder / f"img{i}.png", (40, 60), seed=i)
    argv = ["predict", str(folder), "--checkpoint", str(small_checkpoint), "--out", str(folder), "--device", "cpu"]
    assert main(argv) == 0
    first = sorted(p.name for p in folder.iterdir())
    assert first == [".mldanet-predictions.txt", "img0.png", "img0_depth.npy", "img0_depth.png", "img0_disp.npy",
                     "img1.png", "img1_depth.npy", "img1_depth.png", "img1_disp.npy"]
    capsys.readouterr()
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"wrote 2 frames to {folder}" in out and "left out of the folders: 2 earlier predictions" in out
    assert sorted(p.name for p in folder.iterdir()) == first  # 2 images, still 8 files: no img0_depth_depth.png


def test_a_sequence_folder_gives_its_frames_not_its_depth_maps_and_right_frames_only_when_asked(small_checkpoint, tmp_path, capsys):
    sequence = tmp_path / "my_drives" / "city_01"
    (sequence / "depth").mkdir(parents=True)
    for i in range(3):
        write_image(sequence / f"{i:06d}.jpg", (40, 60), seed=i)
        write_image(sequence / "right" / f"{i:06d}.jpg", (40, 60), seed=10 + i)
        assert cv2.imwrite(str(sequence / "depth" / f"{i:06d}.png"), np.full((40, 60), 2560, np.uint16))
    mask = tmp_path / "my_drives" / "masks" / "mask.png"
    mask.parent.mkdir()
    assert cv2.imwrite(str(mask), np.zeros((40, 60), np.uint8))  # single-channel: not a photo
    summary = predict_paths(small_checkpoint, [tmp_path / "my_drives"], tmp_path / "out", device="cpu", progress=False)
    assert summary.names == [f"city_01/{i:06d}" for i in range(3)]
    skipped = str(summary.skipped)
    assert skipped == ("1 16-bit or single-channel PNGs, 3 ground-truth maps in depth/, "
                       "3 right-camera frames in right/ (--right takes them)")
    with_right = predict_paths(small_checkpoint, [sequence], tmp_path / "out_r", device="cpu", progress=False, right=True)
    assert with_right.names == [*(f"{i:06d}" for i in range(3)), *(f"right/{i:06d}" for i in range(3))]
    # Named on the command line, a depth map is refused as not a photo (and the exit code says so).
    depth_png = sequence / "depth" / "000000.png"
    assert main(["predict", str(depth_png), "--checkpoint", str(small_checkpoint), "--out", str(tmp_path / "o"),
                 "--device", "cpu"]) == 1
    assert f"{depth_png}: a 16-bit PNG (a depth map?), not a photo" in capsys.readouterr().err


def test_disp_npy_is_in_the_documented_range():
    import mldanet.predict as predict

    assert "[1 / model.max_depth, 1 / model.min_depth]" in predict.__doc__ and "5.4 / disp" in predict.__doc__


def read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def expected_points(depth: np.ndarray, fx: float, fy: float, max_depth: float) -> tuple[np.ndarray, np.ndarray]:
    """By hand: (N×3 x y z of the pixels with depth <= max_depth, row-major; their mask), principal point at (0.5·W, 0.5·H)."""
    height, width = depth.shape
    v, u = np.mgrid[:height, :width]
    mask = depth <= max_depth
    z = depth[mask].astype(np.float64)
    return np.stack([(u[mask] - 0.5 * width) * z / fx, (v[mask] - 0.5 * height) * z / fy, z], axis=1), mask


def ply_xyz_rgb(path: Path) -> tuple[dict, np.ndarray, np.ndarray]:
    from tests.test_pointcloud import read_ply  # the independent reader

    header, vertices = read_ply(path)
    xyz = np.stack([vertices[a] for a in "xyz"], axis=1)
    return header, xyz, np.stack([vertices[c] for c in ("red", "green", "blue")], axis=1)


def test_point_clouds_use_the_checkpoints_camera_or_the_default_field_of_view_with_one_warning(
    small_checkpoint, tmp_path, capsys, caplog
):
    kitti_shaped = write_image(tmp_path / "in" / "road.png", (40, 132), seed=7)  # 3.3: KITTI's 1242×375 resized
    phones = [write_image(tmp_path / "in" / f"phone{i}.png", (48, 64), seed=8 + i) for i in range(2)]  # 4:3
    out = tmp_path / "out"
    argv = ["predict", "--checkpoint", str(small_checkpoint), str(tmp_path / "in"), "--out", str(out),
            "--device", "cpu", "--batch-size", "1", "--point-cloud"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "wrote 3 point clouds (NAME.ply), 2 of them with the default 60° field of view" in printed
    warnings = [r.getMessage() for r in caplog.records if "default camera" in r.getMessage()]
    assert len(warnings) == 1, warnings  # once per run, not per frame
    assert "phone0 is 64×48" in warnings[0] and "60° horizontal field of view" in warnings[0]
    assert "--intrinsics FILE" in warnings[0]
    manifest = (out / ".mldanet-predictions.txt").read_text().splitlines()
    assert {"road.ply", "phone0.ply", "phone1.ply"} <= set(manifest)

    # KITTI's normalised K at the depth map's size (the input's, not the network's 64×128)
    depth = np.load(out / "road_depth.npy")
    assert depth.shape == (40, 132) and np.isfinite(depth).all() and depth.max() < 80.0
    header, xyz, rgb = ply_xyz_rgb(out / "road.ply")
    points, mask = expected_points(depth, 0.58 * 132, 1.92 * 40, 80.0)
    assert header["count"] == 40 * 132
    np.testing.assert_allclose(xyz, points, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(rgb, read_rgb(kitti_shaped)[mask])
    assert any("x y z in metres" in c for c in header["comments"])
    assert any("KITTI's" in c and "fx 76.56 fy 76.8 cx 66 cy 20 px at 132x40" in c for c in header["comments"])

    # the default camera: 60° horizontally, square pixels
    focal = 32 / math.tan(math.radians(30))
    depth = np.load(out / "phone1_depth.npy")
    _, xyz, rgb = ply_xyz_rgb(out / "phone1.ply")
    points, mask = expected_points(depth, focal, focal, 80.0)
    np.testing.assert_allclose(xyz, points, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(rgb, read_rgb(phones[1])[mask])

    # --max-depth cuts the far points (here the farther half)
    cut = float(np.median(depth))
    assert main([*argv, "--max-depth", str(cut), "--out", str(tmp_path / "cut")]) == 0
    _, xyz, rgb = ply_xyz_rgb(tmp_path / "cut" / "phone1.ply")
    points, mask = expected_points(depth, focal, focal, cut)
    assert 0 < len(xyz) == mask.sum() < depth.size and xyz[:, 2].max() <= cut
    np.testing.assert_allclose(xyz, points, rtol=1e-6, atol=1e-6)


def test_point_clouds_with_an_intrinsics_file_and_a_frame_it_does_not_fit(small_checkpoint, tmp_path, capsys):
    camera = tmp_path / "camera.yaml"
    camera.write_text("K: [[500, 0, 330], [0, 520, 250], [0, 0, 1]]\nimage_size: [640, 480]\n")
    fits = write_image(tmp_path / "fits.png", (48, 64), seed=11)  # the camera's picture at a tenth
    cropped = write_image(tmp_path / "cropped.png", (40, 132), seed=12)
    out = tmp_path / "out"
    code = main(["predict", "--checkpoint", str(small_checkpoint), str(fits), str(cropped), "--out", str(out),
                 "--device", "cpu", "--point-cloud", "--intrinsics", str(camera)])
    assert code == 1
    captured = capsys.readouterr()
    assert "no point cloud for 1 frame(s)" in captured.err
    assert "cropped is 132×40" in captured.err and str(camera) in captured.err and "Traceback" not in captured.err
    assert (out / "cropped_depth.npy").is_file() and not (out / "cropped.ply").exists()
    header, xyz, _ = ply_xyz_rgb(out / "fits.ply")
    depth = np.load(out / "fits_depth.npy")
    v, u = np.mgrid[:48, :64]
    np.testing.assert_allclose(xyz[:, 0], (u.ravel() - 33.0) * depth.ravel() / 50.0, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(xyz[:, 1], (v.ravel() - 25.0) * depth.ravel() / 52.0, rtol=1e-6, atol=1e-6)
    assert any(f"camera file {camera}" in c for c in header["comments"])


@pytest.mark.parametrize("content, message", [
    (None, "not found"),
    ("- just\n- a list\n", "must be a mapping with K and image_size"),
    ("K: [[500, 0, 330], [0, 520, 250]]\nimage_size: [640, 480]\n", "K must be a 3×3 matrix"),
    ("K: [[500, 0, 330], [0, 520, 250], [0, 0, 1]]\n", "has no image_size"),
])
def test_a_bad_intrinsics_file_is_named(small_checkpoint, tmp_path, capsys, content, message):
    camera = tmp_path / "cam.yaml"
    if content is not None:
        camera.write_text(content)
    image = write_image(tmp_path / "frame.png", (32, 32), seed=13)
    code = main(["predict", "--checkpoint", str(small_checkpoint), str(image), "--out", str(tmp_path / "out"),
                 "--device", "cpu", "--point-cloud", "--intrinsics", str(camera)])
    assert code == 2
    err = capsys.readouterr().err
    assert str(camera) in err and message in err and "Traceback" not in err
    assert not (tmp_path / "out" / "frame_depth.npy").exists()  # refused before any work


def test_point_clouds_of_a_monocular_checkpoint_say_relative_units(small_checkpoint, tmp_path, capsys):
    mono = monocular_copy(small_checkpoint, tmp_path / "m.pt")
    image = write_image(tmp_path / "frame.png", (40, 132), seed=14)
    assert main(["predict", "--checkpoint", str(mono), str(image), "--out", str(tmp_path / "out"), "--device", "cpu",
                 "--point-cloud"]) == 0
    printed = capsys.readouterr().out
    assert "relative depth" in printed and "and so are the point clouds' x y z" in printed
    header, xyz, _ = ply_xyz_rgb(tmp_path / "out" / "frame.ply")
    assert any("x y z in relative units (mode M: unknown scale), not metres" in c for c in header["comments"])
    np.testing.assert_allclose(xyz[:, 2], np.load(tmp_path / "out" / "frame_depth.npy").ravel(), rtol=1e-6)


def test_the_checkpoints_camera(tmp_path):
    from mldanet.config import Config
    from mldanet.predict import cloud_camera

    config = Config()
    kitti = cloud_camera(config)
    np.testing.assert_allclose(kitti.intrinsics("a", 375, 1242)[0], [[720.36, 0, 621], [0, 720, 187.5], [0, 0, 1]])
    assert kitti.intrinsics("a", 192, 640)[1] is None  # the network's size: 0.6 % off KITTI's shape
    assert "not the shape of the checkpoint's camera" in kitti.intrinsics("a", 480, 640)[1]

    config.data.dataset, config.data.data_path = "folder", str(tmp_path)
    (tmp_path / "camera.yaml").write_text("K: [[100, 0, 50], [0, 100, 40], [0, 0, 1]]\nimage_size: [100, 80]\n")
    K, why = cloud_camera(config).intrinsics("a", 160, 200)  # the run's camera file, at twice its size
    assert why is None
    np.testing.assert_allclose(K, [[200, 0, 100], [0, 200, 80], [0, 0, 1]])
    config.data.intrinsics = str(tmp_path / "moved.yaml")
    K, why = cloud_camera(config).intrinsics("a", 160, 200)
    assert f"the camera file it was trained with, {tmp_path / 'moved.yaml'}, is not here" in why
    np.testing.assert_allclose(K[0, 0], 100 / math.tan(math.radians(30)))
    config.data.dataset = "elsewhere"
    assert "predict knows no camera of data.dataset=elsewhere" in cloud_camera(config).intrinsics("a", 10, 10)[1]
