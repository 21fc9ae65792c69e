"""The renderer against closed forms, a float64 brute-force ray caster, and stereo/temporal geometry."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mldanet.synth import BASELINE, CAMERA_HEIGHT, Intrinsics, make_drive, render_frame, right_camera_pose
from mldanet.synth.rig import camera_pose

from .conftest import box_scene

W, H = 414, 125  # a third of KITTI's size


@pytest.fixture(scope="module")
def drive():
    return make_drive(seed=0, drive=1, frames=40)


def test_intrinsics_match_the_networks_normalised_k():
    k = Intrinsics.for_size(1242, 375)
    assert (k.fx, k.fy, k.cx, k.cy) == pytest.approx((720.36, 720.0, 621.0, 187.5), abs=1e-9)


def test_empty_street_is_a_ground_plane_under_a_sky():
    k = Intrinsics.for_size(W, H)
    _, depth = render_frame(box_scene(np.zeros((0, 6))), camera_pose(3.0, -1.0, 0.2), k, W, H)
    v = np.arange(H, dtype=np.float64)
    expected = np.where(v > k.cy, CAMERA_HEIGHT * k.fy / np.where(v > k.cy, v - k.cy, 1.0), np.inf)
    np.testing.assert_allclose(depth, np.broadcast_to(expected[:, None], (H, W)), rtol=1e-6)


def test_fronto_parallel_wall_depth_is_its_distance():
    k = Intrinsics.for_size(W, H)
    scene = box_scene([[20.0, 21.0, -60.0, 60.0, 0.0, 30.0]])
    _, depth = render_frame(scene, camera_pose(0.0, 0.0, 0.0), k, W, H)
    v = np.arange(H, dtype=np.float64)[:, None]
    ground = np.where(v > k.cy, CAMERA_HEIGHT * k.fy / np.maximum(v - k.cy, 1e-9), np.inf)
    np.testing.assert_allclose(depth, np.minimum(20.0, ground) * np.ones((1, W)), rtol=1e-6)


def brute_force_depth(scene, pose, k, us, vs):
    """Camera depth of pixel rays (us, vs) by a float64 3-D slab test against every box and the ground."""
    d_cam = np.stack([(us - k.cx) / k.fx, (vs - k.cy) / k.fy, np.ones_like(us, dtype=np.float64)], axis=1)
    d = d_cam @ pose[:3, :3].T  # world direction per unit camera depth
    o = pose[:3, 3]
    best = np.where(d[:, 2] < 0, -o[2] / np.where(d[:, 2] < 0, d[:, 2], -1.0), np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        for x0, x1, y0, y1, z0, z1 in scene.boxes.bounds:
            lo_b, hi_b = np.array([x0, y0, z0]), np.array([x1, y1, z1])
            t0 = (lo_b - o) / d
            t1 = (hi_b - o) / d
            near = np.nanmax(np.minimum(t0, t1), axis=1)
            far = np.nanmin(np.maximum(t0, t1), axis=1)
            hit = (near <= far) & (near > 0)
            best = np.where(hit & (near < best), near, best)
    return best


def test_cast_matches_a_brute_force_3d_slab_test(drive):
    k = Intrinsics.for_size(W, H)
    rng = np.random.default_rng(0)
    for frame in (0, 25):
        for pose in (drive.poses[frame], right_camera_pose(drive.poses[frame])):
            _, depth = render_frame(drive.scene, pose, k, W, H)
            us, vs = rng.integers(0, W, 4000), rng.integers(0, H, 4000)
            reference = brute_force_depth(drive.scene, pose, k, us.astype(np.float64), vs.astype(np.float64))
            got = depth[vs, us].astype(np.float64)
            assert np.array_equal(np.isinf(got), np.isinf(reference))
            finite = np.isfinite(reference)
            close = np.abs(got[finite] - reference[finite]) <= 1e-5 * reference[finite] + 1e-6
            assert close.mean() > 0.999, f"{(~close).sum()} of {finite.sum()} rays disagree"


def test_the_street_varies(drive):
    """Depth is not a function of image position: façades, gaps and vehicles change along the drive."""
    k = Intrinsics.for_size(W, H)
    depths = np.stack([render_frame(drive.scene, drive.poses[f], k, W, H)[1] for f in (0, 13, 26, 39)])
    band = np.clip(depths[:, : H // 2], 0, 80)  # above the horizon: façades, sky
    spread = np.std(band, axis=0) / (np.mean(band, axis=0) + 1e-3)
    assert np.median(spread) > 0.15


def matched_disparity_errors(left_rgb, left_depth, right_rgb, right_depth, fx, step=0.25):
    """|block-matching disparity − fx·B/Z| on textured planar patches of nearly constant depth seen by both views.

    SSD over 11×11 patches at disparities on a ``step`` grid (the right image resampled bicubically
    at each fraction), refined by a parabola through the best grid point and its neighbours.
    Patches must lie on one plane (true disparity affine over the patch: no corners, whose faces
    foreshorten differently in the two views) and be visible in both views.
    """
    gl = cv2.cvtColor(left_rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    gr = cv2.cvtColor(right_rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    fractions = np.arange(0.0, 1.0, step)
    grid_y, grid_x = np.mgrid[0:H, 0:W].astype(np.float32)
    shifted = [cv2.remap(gr, grid_x - np.float32(f), grid_y, cv2.INTER_CUBIC) for f in fractions]
    r, max_d = 5, 90
    py, px = np.mgrid[-r : r + 1, -r : r + 1]
    plane = np.stack([np.ones(py.size), px.ravel(), py.ravel()], axis=1)
    errors = []
    for y in range(r, H - r, 4):
        for x in range(max_d + r, W - r, 4):
            patch_z = left_depth[y - r : y + r + 1, x - r : x + r + 1]
            patch = gl[y - r : y + r + 1, x - r : x + r + 1]
            flat = np.abs(np.diff(patch, axis=1)).mean() < 3  # no horizontal detail to match
            if not np.all(np.isfinite(patch_z)) or np.ptp(patch_z) > 0.02 * patch_z.mean() or flat:
                continue
            disparity = (fx * BASELINE / patch_z.astype(np.float64)).ravel()
            fit = plane @ np.linalg.lstsq(plane, disparity, rcond=None)[0]
            if np.abs(fit - disparity).max() > 0.02:
                continue
            true = fx * BASELINE / left_depth[y, x]
            shift = int(round(true))
            partner_z = right_depth[y - r : y + r + 1, x - shift - r : x - shift + r + 1]
            if np.any(np.abs(partner_z / patch_z - 1) > 0.03):  # partly occluded in the right view
                continue
            ssd = np.empty((max_d, len(fractions)))
            for i, image in enumerate(shifted):  # image i at column c holds the right view at c − fraction
                band = image[y - r : y + r + 1, x - max_d - r + 1 : x + r + 1]
                windows = np.lib.stride_tricks.sliding_window_view(band, 2 * r + 1, axis=1)
                ssd[:, i] = ((windows - patch[:, None, :]) ** 2).sum(axis=(0, 2))[::-1]  # index d: columns x − d ± r
            ssd = ssd.ravel()  # disparity d + fraction, in steps of ``step``
            best = int(np.argmin(ssd))
            d = best * step
            if 0 < best < len(ssd) - 1:  # parabola through the minimum and its neighbours
                denom = ssd[best - 1] - 2 * ssd[best] + ssd[best + 1]
                d += 0.5 * step * (ssd[best - 1] - ssd[best + 1]) / denom if denom > 0 else 0.0
            errors.append(abs(d - true))
    return errors


def test_stereo_disparity_is_fx_baseline_over_depth(drive):
    """Each left pixel reappears in the right image fx·B/Z pixels to the left: by geometry and by matching."""
    k = Intrinsics.for_size(W, H)
    errors = []
    for frame in (12, 30):
        pose = drive.poses[frame]
        left_rgb, left_depth = render_frame(drive.scene, pose, k, W, H)
        right_rgb, right_depth = render_frame(drive.scene, right_camera_pose(pose), k, W, H)

        # geometry: back-project, move into camera 3, project (float64, independent of the renderer)
        v, u = np.mgrid[0:H, 0:W].astype(np.float64)
        z = left_depth.astype(np.float64)
        finite = np.isfinite(z) & (z < 200)
        z = np.where(finite, z, 1.0)
        cam = np.stack([(u - k.cx) / k.fx * z, (v - k.cy) / k.fy * z, z], axis=-1)[finite]
        world = cam @ pose[:3, :3].T + pose[:3, 3]
        right = np.linalg.inv(right_camera_pose(pose))
        in_right = world @ right[:3, :3].T + right[:3, 3]
        u_right = k.fx * in_right[:, 0] / in_right[:, 2] + k.cx
        np.testing.assert_allclose(u[finite] - u_right, k.fx * BASELINE / z[finite], atol=1e-6)
        np.testing.assert_allclose(k.fy * in_right[:, 1] / in_right[:, 2] + k.cy, v[finite], atol=1e-6)
        # the right view sees that surface there (occluded pixels aside)
        ur = np.rint(u_right).astype(int)
        inside = (ur >= 0) & (ur < W)
        seen = right_depth[v[finite].astype(int)[inside], ur[inside]]
        agree = np.abs(seen / z[finite][inside] - 1) < 0.02
        assert agree.mean() > 0.93

        # photometry: the images alone give the same disparity
        errors += matched_disparity_errors(left_rgb, left_depth, right_rgb, right_depth, k.fx)
    errors = np.array(errors)
    assert len(errors) > 100
    off = int(np.sum(errors > 0.5))
    assert np.mean(errors <= 0.5) > 0.95, f"median {np.median(errors):.3f} px, {off} of {len(errors)} off by > 0.5 px"
    assert np.median(errors) < 0.15


def warp_error(target_rgb, target_depth, source_rgb, source_depth, target_pose, source_pose, k):
    """Mean absolute error of the source image warped into the target with depth and poses (float64).

    Only pixels whose point lands inside the source and is visible there (depth agrees) count.
    """
    h, w = target_depth.shape
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    z = target_depth.astype(np.float64)
    ok = np.isfinite(z) & (z < 80)
    z = np.where(ok, z, 1.0)
    cam = np.stack([(u - k.cx) / k.fx * z, (v - k.cy) / k.fy * z, z], axis=-1)
    world = cam @ target_pose[:3, :3].T + target_pose[:3, 3]
    inv = np.linalg.inv(source_pose)
    src = world @ inv[:3, :3].T + inv[:3, 3]
    us = k.fx * src[..., 0] / src[..., 2] + k.cx
    vs = k.fy * src[..., 1] / src[..., 2] + k.cy
    ok &= (src[..., 2] > 0.1) & (us >= 0) & (us <= w - 1) & (vs >= 0) & (vs <= h - 1)
    seen = source_depth[np.clip(np.rint(vs), 0, h - 1).astype(int), np.clip(np.rint(us), 0, w - 1).astype(int)]
    ok &= np.abs(seen / src[..., 2] - 1) < 0.02
    warped = cv2.remap(source_rgb.astype(np.float32), us.astype(np.float32), vs.astype(np.float32), cv2.INTER_LINEAR)
    return float(np.abs(warped - target_rgb.astype(np.float32))[ok].mean()), ok.mean()


def test_consecutive_frames_agree_when_warped_with_the_true_pose(drive):
    k = Intrinsics.for_size(W, H)
    t0, t1 = drive.poses[20], drive.poses[21]
    rgb0, depth0 = render_frame(drive.scene, t0, k, W, H)
    rgb1, depth1 = render_frame(drive.scene, t1, k, W, H)
    true_error, coverage = warp_error(rgb0, depth0, rgb1, depth1, t0, t1, k)
    wrong = t1.copy()
    wrong[:3, 3] += 0.3 * t1[:3, 2]  # 30 cm too far along the heading
    wrong_error, _ = warp_error(rgb0, depth0, rgb1, depth1, t0, wrong, k)
    static_error = float(np.abs(rgb0.astype(np.float32) - rgb1.astype(np.float32)).mean())
    assert coverage > 0.5
    assert true_error < 5.0, true_error
    assert true_error < 0.4 * wrong_error and true_error < 0.25 * static_error, (true_error, wrong_error, static_error)


def test_renderer_refuses_tilted_cameras(drive):
    pose = drive.poses[0].copy()
    tilt = np.radians(5)
    pitch = np.array([[1, 0, 0], [0, np.cos(tilt), -np.sin(tilt)], [0, np.sin(tilt), np.cos(tilt)]])
    pose[:3, :3] = pose[:3, :3] @ pitch
    with pytest.raises(ValueError, match="level cameras"):
        render_frame(drive.scene, pose, Intrinsics.for_size(W, H), W, H)
