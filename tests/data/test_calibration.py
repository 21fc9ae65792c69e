"""Calibration parsing on the real KITTI 2011_10_03 files, and its error paths."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from mldanet.data.calibration import (
    calibration_entry,
    image_size_from_calib,
    load_cam_to_cam,
    read_calib_file,
    velo_to_cam,
    velo_to_image,
)


@pytest.fixture(scope="module")
def calib_dir(kitti_sample):
    return kitti_sample / "2011_10_03"


@pytest.fixture(scope="module")
def real_calib_dir(real_kitti_sample):
    """The real KITTI calibration, for the tests that check its values."""
    return real_kitti_sample / "2011_10_03"


def test_real_cam_to_cam_values(real_calib_dir):
    values = load_cam_to_cam(real_calib_dir)
    assert "calib_time" not in values  # a date, not numbers
    np.testing.assert_array_equal(values["S_rect_02"], [1241.0, 376.0])
    p_rect_02 = values["P_rect_02"].reshape(3, 4)
    np.testing.assert_allclose(p_rect_02[0], [718.856, 0.0, 607.1928, 45.38225])
    np.testing.assert_allclose(p_rect_02[1, 3], -0.1130887)
    np.testing.assert_allclose(p_rect_02[2, 3], 3.779761e-03)
    np.testing.assert_allclose(values["R_rect_00"][:2], [0.9999454, 7.259129e-03])
    assert values["K_02"].shape == (9,)


def test_real_image_size_and_velodyne_transform(real_calib_dir):
    assert image_size_from_calib(real_calib_dir) == (376, 1241)
    assert image_size_from_calib(real_calib_dir, cam=3) == (376, 1241)
    transform = velo_to_cam(real_calib_dir)
    np.testing.assert_allclose(transform[0, :], [7.967514e-03, -9.999679e-01, -8.462264e-04, -1.377769e-02])
    np.testing.assert_allclose(transform[3], [0, 0, 0, 1])
    # the rotation of a real calibration is orthonormal
    np.testing.assert_allclose(transform[:3, :3] @ transform[:3, :3].T, np.eye(3), atol=1e-5)


def test_velo_to_image_is_the_kitti_chain(calib_dir):
    values = load_cam_to_cam(calib_dir)
    rect = np.eye(4)
    rect[:3, :3] = values["R_rect_00"].reshape(3, 3)
    expected = values["P_rect_03"].reshape(3, 4) @ rect @ velo_to_cam(calib_dir)
    np.testing.assert_allclose(velo_to_image(calib_dir, cam=3), expected)
    # a point 10 m ahead of the scanner lands near the principal point row and inside the image
    u, v, w = velo_to_image(calib_dir, cam=2) @ np.array([10.0, 0.0, 0.0, 1.0])
    assert 0 < u / w < 1241 and 0 < v / w < 376


def test_missing_calibration_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="calib_cam_to_cam.txt"):
        image_size_from_calib(tmp_path)
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "calib_velo_to_cam.txt")):
        velo_to_cam(tmp_path)


def test_missing_key_and_bad_lines_name_the_file(tmp_path, calib_dir):
    shutil.copy(calib_dir / "calib_velo_to_cam.txt", tmp_path / "calib_velo_to_cam.txt")
    (tmp_path / "calib_cam_to_cam.txt").write_text("S_rect_02: 1241 376\nP_rect_02: 1 2 3\n")
    with pytest.raises(ValueError, match=r"calib_cam_to_cam.txt: no 'R_rect_00'"):
        velo_to_image(tmp_path)
    path = tmp_path / "calib_cam_to_cam.txt"
    with pytest.raises(ValueError, match=r"'P_rect_02' has 3 values, expected 12"):
        calibration_entry(read_calib_file(path), "P_rect_02", (3, 4), path)
    path.write_text("S_rect_02: 1241 376\nthis line has no colon\n")
    with pytest.raises(ValueError, match=rf"{path}:2"):
        read_calib_file(path)
    with pytest.raises(ValueError, match="camera 5"):
        image_size_from_calib(tmp_path, cam=5)
