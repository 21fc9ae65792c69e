"""Image paths, loading (RGB, truncated/corrupt files) and resizing."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from mldanet.data.images import image_path, load_image, read_image_size, resize_image

REAL = Path("2011_10_03/2011_10_03_drive_0000_sync/image_02/data/0000000001.jpg")


def test_image_path_layout(tmp_path):
    assert image_path(tmp_path, "2011_09_26/2011_09_26_drive_0001_sync", 42, "r", ".png") == (
        tmp_path / "2011_09_26/2011_09_26_drive_0001_sync/image_03/data/0000000042.png"
    )
    with pytest.raises(ValueError, match="'x'"):
        image_path(tmp_path, "a/b", 1, "x")
    with pytest.raises(ValueError, match="'.bmp'"):
        image_path(tmp_path, "a/b", 1, "l", ".bmp")


def test_load_real_jpeg_as_rgb(real_kitti_sample):
    image = load_image(real_kitti_sample / REAL)
    assert image.shape == (376, 1241, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image, cv2.imread(str(real_kitti_sample / REAL))[:, :, ::-1])


def test_png_round_trip(tmp_path, kitti_sample):
    rgb = load_image(kitti_sample / REAL)[:40, :60]
    cv2.imwrite(str(tmp_path / "a.png"), rgb[:, :, ::-1])
    np.testing.assert_array_equal(load_image(tmp_path / "a.png"), rgb)


@pytest.mark.parametrize("keep", [0.5, 0.99])
def test_truncated_jpeg_names_the_path(tmp_path, kitti_sample, keep):
    data = (kitti_sample / REAL).read_bytes()
    path = tmp_path / "0000000001.jpg"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ValueError, match=rf"truncated JPEG.*{path}"):
        load_image(path)


def test_corrupt_and_missing_images_name_the_path(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"not an image at all")
    with pytest.raises(ValueError, match=str(path)):
        load_image(path)
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "absent.jpg")):
        load_image(tmp_path / "absent.jpg")


def test_resize_shrinks_by_area_and_enlarges_bilinearly():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (8, 12, 3)).astype(np.float32)
    halved = resize_image(image, 4, 6)
    np.testing.assert_allclose(halved, image.reshape(4, 2, 6, 2, 3).mean(axis=(1, 3)), rtol=1e-6)
    enlarged = resize_image(image, 16, 24)
    np.testing.assert_allclose(enlarged, cv2.resize(image, (24, 16), interpolation=cv2.INTER_LINEAR))
    assert resize_image(image, 8, 12) is image


def test_image_size_from_the_header(real_kitti_sample, tmp_path):
    assert read_image_size(real_kitti_sample / REAL) == cv2.imread(str(real_kitti_sample / REAL)).shape[:2] == (376, 1241)
    cv2.imwrite(str(tmp_path / "small.png"), np.zeros((7, 9, 3), np.uint8))
    assert read_image_size(tmp_path / "small.png") == (7, 9)
    with pytest.raises(FileNotFoundError, match=f"image not found: {tmp_path / 'absent.jpg'}"):
        read_image_size(tmp_path / "absent.jpg")
    (tmp_path / "garbage.jpg").write_bytes(b"not an image")
    with pytest.raises(ValueError, match=f"cannot read the size of image {tmp_path / 'garbage.jpg'} \\(corrupt or not an image"):
        read_image_size(tmp_path / "garbage.jpg")
