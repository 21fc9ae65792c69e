"""Geometry against closed forms, float64 NumPy formulas and SciPy's rotations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from mldanet.data.kitti import NORMALISED_K
from mldanet.geometry import (
    backproject,
    depth_to_sigmoid_logit,
    disp_to_depth,
    pixels_to_grid,
    pose_to_matrix,
    project,
    scale_intrinsics,
    warp,
)

K_NORM = torch.from_numpy(NORMALISED_K)


def intrinsics(batch: int, height: int, width: int, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    K = scale_intrinsics(K_NORM, height, width).to(dtype).expand(batch, 4, 4)
    return K, torch.linalg.inv(K)


def translation(batch: int, x: float = 0.0, y: float = 0.0, z: float = 0.0, dtype=torch.float64) -> torch.Tensor:
    T = torch.eye(4, dtype=dtype).repeat(batch, 1, 1)
    T[:, :3, 3] = torch.tensor([x, y, z], dtype=dtype)
    return T


def test_disp_to_depth_maps_the_sigmoid_range_onto_the_depth_range():
    disp = torch.tensor([0.0, 0.5, 1.0])
    scaled, depth = disp_to_depth(disp, min_depth=0.1, max_depth=100.0)
    expected_scaled = 0.01 + (10.0 - 0.01) * disp
    assert torch.allclose(scaled, expected_scaled)
    assert torch.allclose(depth, 1 / expected_scaled)
    assert depth[0].item() == pytest.approx(100.0) and depth[2].item() == pytest.approx(0.1)


@pytest.mark.parametrize("depth, min_depth, max_depth", [(2.5, 0.1, 100.0), (0.2, 0.1, 100.0), (40.0, 1e-3, 80.0)])
def test_depth_to_sigmoid_logit_inverts_disp_to_depth(depth, min_depth, max_depth):
    logit = depth_to_sigmoid_logit(depth, min_depth, max_depth)
    _, recovered = disp_to_depth(torch.sigmoid(torch.tensor(logit, dtype=torch.float64)), min_depth, max_depth)
    assert recovered.item() == pytest.approx(depth, rel=1e-12)


def test_depth_to_sigmoid_logit_refuses_depths_outside_the_range():
    with pytest.raises(ValueError, match="depth 100.0 must lie strictly between min_depth 0.1 and max_depth 100.0"):
        depth_to_sigmoid_logit(100.0)


def test_scale_intrinsics_multiplies_rows_by_the_image_size():
    K = scale_intrinsics(K_NORM, 192, 640)
    assert K[0, 0] == pytest.approx(0.58 * 640) and K[0, 2] == pytest.approx(320)
    assert K[1, 1] == pytest.approx(1.92 * 192) and K[1, 2] == pytest.approx(96)
    assert torch.equal(K[2:], K_NORM[2:])
    batched = scale_intrinsics(K_NORM.expand(3, 4, 4), 192, 640)
    assert torch.equal(batched, K.expand(3, 4, 4))


@pytest.mark.parametrize("angle", [0.0, 1e-6, 1e-3, 0.3, 2.0, 3.1])
def test_pose_to_matrix_matches_scipy_rotations(angle):
    generator = torch.Generator().manual_seed(1)
    axes = torch.nn.functional.normalize(torch.randn(4, 3, generator=generator, dtype=torch.float64), dim=1)
    rotvec = axes * angle
    t = torch.randn(4, 3, generator=generator, dtype=torch.float64)
    M = pose_to_matrix(rotvec, t)
    expected = Rotation.from_rotvec(rotvec.numpy()).as_matrix()
    np.testing.assert_allclose(M[:, :3, :3].numpy(), expected, atol=1e-12)
    np.testing.assert_allclose(M[:, :3, 3].numpy(), t.numpy())
    np.testing.assert_array_equal(M[:, 3].numpy(), np.tile([0, 0, 0, 1], (4, 1)))


def test_inverted_pose_is_the_inverse_transform():
    generator = torch.Generator().manual_seed(2)
    rotvec = torch.randn(5, 3, generator=generator, dtype=torch.float64)
    t = torch.randn(5, 3, generator=generator, dtype=torch.float64)
    forward = pose_to_matrix(rotvec, t)
    inverse = pose_to_matrix(rotvec, t, invert=True)
    eye = torch.eye(4, dtype=torch.float64).expand(5, 4, 4)
    assert torch.allclose(inverse @ forward, eye, atol=1e-12)
    assert torch.allclose(inverse, torch.linalg.inv(forward), atol=1e-12)


def test_pose_gradient_is_finite_at_zero_rotation():
    rotvec = torch.zeros(2, 3, requires_grad=True)
    pose_to_matrix(rotvec, torch.zeros(2, 3)).sum().backward()
    assert torch.isfinite(rotvec.grad).all()
    # d/dv of Σ R at v = 0 is Σ [e_i]×, whose entries sum to zero for every axis
    assert torch.allclose(rotvec.grad, torch.zeros(2, 3))


def test_pose_to_matrix_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(2, 2\)"):
        pose_to_matrix(torch.zeros(2, 3), torch.zeros(2, 2))


def test_backproject_matches_the_direct_formula():
    height, width = 3, 5
    K, inv_K = intrinsics(2, height, width)
    depth = torch.rand(2, 1, height, width, dtype=torch.float64) * 10 + 0.5
    points = backproject(depth, inv_K)
    assert points.shape == (2, 4, height * width)
    Kn = K[0].numpy()
    for b in range(2):
        for v in range(height):
            for u in range(width):
                d = depth[b, 0, v, u].item()
                x = (u - Kn[0, 2]) / Kn[0, 0] * d
                y = (v - Kn[1, 2]) / Kn[1, 1] * d
                np.testing.assert_allclose(points[b, :, v * width + u].numpy(), [x, y, d, 1.0], atol=1e-12)


def test_project_matches_the_direct_formula_and_round_trips():
    height, width = 4, 6
    K, inv_K = intrinsics(2, height, width)
    depth = torch.rand(2, 1, height, width, dtype=torch.float64) * 10 + 1
    points = backproject(depth, inv_K)

    pixels = project(points, K, translation(2), height, width)
    v, u = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    np.testing.assert_allclose(pixels[..., 0].numpy(), np.broadcast_to(u, (2, height, width)), atol=1e-9)
    np.testing.assert_allclose(pixels[..., 1].numpy(), np.broadcast_to(v, (2, height, width)), atol=1e-9)

    rotation = torch.tensor([[0.02, -0.05, 0.01]] * 2, dtype=torch.float64)
    T = pose_to_matrix(rotation, torch.tensor([[0.1, -0.2, 0.3]] * 2, dtype=torch.float64))
    pixels = project(points, K, T, height, width)
    cam = (T[0] @ points[0]).numpy()[:3]
    expected = (K[0, :3, :3].numpy() @ cam)
    expected = (expected[:2] / expected[2]).reshape(2, height, width)
    np.testing.assert_allclose(pixels[0].permute(2, 0, 1).numpy(), expected, atol=1e-6)

    stacked = project(points, K, torch.stack([translation(2), T]), height, width)
    assert torch.allclose(stacked[1], pixels)


def test_pixels_to_grid_uses_pixel_centres():
    pixels = torch.tensor([[[[0.0, 0.0], [7.0, 3.0], [-0.5, 3.5]]]])
    grid = pixels_to_grid(pixels, height=4, width=8)
    expected = torch.tensor([[[[-1 + 1 / 8, -1 + 1 / 4], [1 - 1 / 8, 1 - 1 / 4], [-1.0, 1.0]]]])
    assert torch.allclose(grid, expected)


def test_identity_warp_returns_the_image_for_any_depth():
    height, width = 7, 12
    generator = torch.Generator().manual_seed(3)
    image = torch.rand(2, 3, height, width, generator=generator, dtype=torch.float64)
    depth = torch.rand(2, 1, height, width, generator=generator, dtype=torch.float64) * 80 + 0.1
    K, inv_K = intrinsics(2, height, width)
    assert torch.allclose(warp(image, depth, K, inv_K, translation(2)), image, atol=1e-10)
    # float32: only rounding in K·K⁻¹ remains (a half-pixel convention error would be ~0.5)
    out32 = warp(image.float(), depth.float(), K.float(), inv_K.float(), translation(2, dtype=torch.float32))
    assert (out32 - image.float()).abs().max() < 1e-4


def test_stereo_translation_shifts_by_focal_times_baseline_over_depth():
    height, width = 6, 32
    K, inv_K = intrinsics(1, height, width)
    fx = K[0, 0, 0].item()
    generator = torch.Generator().manual_seed(4)
    target = torch.rand(1, 3, height, width, generator=generator, dtype=torch.float64)
    baseline = 0.1

    def depth_for(shift: float) -> torch.Tensor:
        return torch.full((1, 1, height, width), fx * baseline / shift, dtype=torch.float64)

    # integer shift: the source seen at u + 3 holds the target's pixel u
    source = torch.roll(target, shifts=3, dims=-1)
    warped = warp(source, depth_for(3.0), K, inv_K, translation(1, x=baseline))
    assert torch.allclose(warped[..., : width - 3], target[..., : width - 3], atol=1e-10)

    # non-integer shift: linear interpolation of each source row at u + 2.3
    shift = 2.3
    warped = warp(source, depth_for(shift), K, inv_K, translation(1, x=baseline))
    u = np.arange(width - 3)
    for c in range(3):
        for v in range(height):
            expected = np.interp(u + shift, np.arange(width), source[0, c, v].numpy())
            np.testing.assert_allclose(warped[0, c, v, : width - 3].numpy(), expected, atol=1e-10)


def test_warping_stacked_sources_equals_warping_each():
    height, width = 8, 16
    K, inv_K = intrinsics(2, height, width, dtype=torch.float32)
    generator = torch.Generator().manual_seed(5)
    images = torch.rand(3, 2, 3, height, width, generator=generator)
    depth = torch.rand(2, 1, height, width, generator=generator) * 20 + 1
    rotations = torch.randn(3, 2, 3, generator=generator) * 0.05
    translations = torch.randn(3, 2, 3, generator=generator) * 0.2
    transforms = torch.stack([pose_to_matrix(r, t) for r, t in zip(rotations, translations)])
    stacked = warp(images, depth, K, inv_K, transforms)
    for i in range(3):
        assert torch.allclose(stacked[i], warp(images[i], depth, K, inv_K, transforms[i]), atol=1e-6)


def test_points_behind_the_camera_project_outside_the_image():
    K, _ = intrinsics(1, 4, 6)
    points = torch.tensor([[[0.5, 0.0], [0.0, 0.0], [-2.0, 1.0], [1.0, 1.0]]], dtype=torch.float64)
    pixels = project(points, K, translation(1), height=1, width=2)
    # with "+ eps" the point behind would land at u = cx − fx·0.25 = 2.13, inside the image
    assert pixels[0, 0, 0].abs().max() > 1e5
    assert pixels[0, 0, 1, 0] == pytest.approx(K[0, 0, 2].item())  # on the optical axis: u = cx
