"""Camera geometry for view synthesis: depth mapping, back-projection, projection, warping, poses.

Conventions (docs/METHOD.md §6.2, docs/ARCHITECTURE.md):

- Pixel (u, v) has its centre at integer coordinates (u = 0 is the centre of the first column).
- ``grid_sample`` is always called with ``align_corners=False``, whose normalised coordinate −1 is
  the *left edge* of the first pixel, so pixel coordinate u normalises to x = (2u + 1)/W − 1
  (and v to (2v + 1)/H − 1). monodepth2 normalises with u/(W − 1)·2 − 1 but samples with
  ``align_corners=False``: every warp there is off by up to half a pixel. We do not repeat it;
  with these conventions an identity transform reproduces the image exactly.
- A transform ``T`` (B×4×4) takes points from the frame-0 (target) camera into the source
  camera, so the source pixel seen by target pixel p is ``K · T · (D(p) · K⁻¹ p)``.
- ``K`` and ``inv_K`` are 4×4 pixel intrinsics (the homogeneous row and column are identity).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def disp_to_depth(disp: Tensor, min_depth: float = 0.1, max_depth: float = 100.0) -> tuple[Tensor, Tensor]:
    """Map a sigmoid output in [0, 1] to (scaled disparity, depth) in [1/max_depth, 1/min_depth].

    disp: any shape → (scaled_disp, depth) of the same shape; scaled = 1/max + (1/min − 1/max)·disp.
    """
    min_disp = 1.0 / max_depth
    max_disp = 1.0 / min_depth
    scaled_disp = min_disp + (max_disp - min_disp) * disp
    return scaled_disp, 1.0 / scaled_disp


def depth_to_sigmoid_logit(depth: float, min_depth: float = 0.1, max_depth: float = 100.0) -> float:
    """The pre-sigmoid value whose :func:`disp_to_depth` is ``depth`` (min_depth < depth < max_depth)."""
    if not min_depth < depth < max_depth:
        raise ValueError(f"depth {depth} must lie strictly between min_depth {min_depth} and max_depth {max_depth}")
    disp = (1.0 / depth - 1.0 / max_depth) / (1.0 / min_depth - 1.0 / max_depth)
    return math.log(disp / (1.0 - disp))


def scale_intrinsics(K_norm: Tensor, height: float, width: float) -> Tensor:
    """Normalised intrinsics (focal lengths and principal point as fractions of the image size) →
    pixel intrinsics for a ``height``×``width`` image.

    K_norm: 4×4 or B×4×4 → same shape (first row × width, second row × height).
    """
    K = K_norm.clone()
    K[..., 0, :] *= width
    K[..., 1, :] *= height
    return K


def pixel_grid(height: int, width: int, device: torch.device | None = None, dtype: torch.dtype | None = None) -> Tensor:
    """Homogeneous pixel coordinates of an image, row-major: 3×(H·W) rows (u, v, 1)."""
    v, u = torch.meshgrid(
        torch.arange(height, device=device, dtype=dtype),
        torch.arange(width, device=device, dtype=dtype),
        indexing="ij",
    )
    return torch.stack([u.reshape(-1), v.reshape(-1), torch.ones_like(u).reshape(-1)])


def backproject(depth: Tensor, inv_K: Tensor) -> Tensor:
    """Lift every pixel to a homogeneous camera-space point ``D(p) · K⁻¹ p``.

    depth: B×1×H×W, inv_K: B×4×4 → B×4×(H·W) (row-major pixel order, last row ones).
    """
    batch, _, height, width = depth.shape
    pixels = pixel_grid(height, width, device=depth.device, dtype=depth.dtype)
    rays = inv_K[:, :3, :3] @ pixels
    points = rays * depth.reshape(batch, 1, height * width)
    return torch.cat([points, torch.ones_like(points[:, :1])], dim=1)


def project(points: Tensor, K: Tensor, T: Tensor, height: int, width: int, eps: float = 1e-7) -> Tensor:
    """Pixel coordinates (u, v) of camera points seen by the camera ``K · T``.

    points: B×4×N with N = H·W, K: B×4×4, T: B×4×4 → B×H×W×2. Several transforms for the same
    points may be given at once as T: S×B×4×4, which returns S×B×H×W×2 (the points broadcast).
    The camera depth is clamped to ≥ eps rather than offset by eps: in-front points project
    exactly, and points behind the camera land far outside the image instead of mirrored into it.
    """
    P = (K @ T)[..., :3, :]
    cam = P @ points
    pixels = cam[..., :2, :] / cam[..., 2:3, :].clamp(min=eps)
    return pixels.reshape(*pixels.shape[:-2], 2, height, width).movedim(-3, -1)


def pixels_to_grid(pixels: Tensor, height: int, width: int) -> Tensor:
    """Pixel coordinates → ``grid_sample(align_corners=False)`` coordinates: x = (2u + 1)/W − 1.

    pixels: …×H×W×2 (u, v) → …×H×W×2.
    """
    size = torch.tensor([width, height], device=pixels.device, dtype=pixels.dtype)
    return (2.0 * pixels + 1.0) / size - 1.0


def warp(image: Tensor, depth: Tensor, K: Tensor, inv_K: Tensor, T: Tensor) -> Tensor:
    """Synthesise the target view by sampling the source ``image`` where target pixels land.

    image: B×C×H×W (source view), depth: B×1×H×W (target depth), K, inv_K, T: B×4×4 → B×C×H×W.
    Several sources seen with the same depth warp in one call: image S×B×C×H×W with
    T S×B×4×4 → S×B×C×H×W (the depth is back-projected once). Bilinear, border padding.
    """
    height, width = depth.shape[-2:]
    grid = pixels_to_grid(project(backproject(depth, inv_K), K, T, height, width), height, width)
    warped = F.grid_sample(
        image.reshape(-1, *image.shape[-3:]),
        grid.reshape(-1, height, width, 2),
        mode="bilinear",
        padding_mode="border",
        align_corners=False,
    )
    return warped.reshape(image.shape[:-2] + (height, width))


def _skew(v: Tensor) -> Tensor:
    """…×3 → …×3×3 cross-product matrix [v]× (so [v]× x = v × x)."""
    zero = torch.zeros_like(v[..., 0])
    x, y, z = v.unbind(-1)
    return torch.stack(
        [
            torch.stack([zero, -z, y], dim=-1),
            torch.stack([z, zero, -x], dim=-1),
            torch.stack([-y, x, zero], dim=-1),
        ],
        dim=-2,
    )


def rotation_from_axisangle(axisangle: Tensor) -> Tensor:
    """Rodrigues' formula R = I + A(θ)[v]× + B(θ)[v]×², θ = |v|.

    axisangle: …×3 → …×3×3. A = sin θ/θ and B = (1 − cos θ)/θ² switch to their Taylor series
    near θ = 0 so that values and gradients stay finite for a zero rotation.
    """
    theta2 = (axisangle * axisangle).sum(-1)
    small = theta2 < 1e-8
    safe2 = torch.where(small, torch.ones_like(theta2), theta2)
    theta = safe2.sqrt()
    a = torch.where(small, 1.0 - theta2 / 6.0, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24.0, (1.0 - torch.cos(theta)) / safe2)
    skew = _skew(axisangle)
    eye = torch.eye(3, device=axisangle.device, dtype=axisangle.dtype).expand_as(skew)
    return eye + a[..., None, None] * skew + b[..., None, None] * (skew @ skew)


def pose_to_matrix(axisangle: Tensor, translation: Tensor, invert: bool = False) -> Tensor:
    """4×4 rigid transforms [R t; 0 1] from axis-angle rotations and translations.

    axisangle, translation: B×3 → B×4×4. ``invert=True`` returns the inverse transform
    [Rᵀ −Rᵀt; 0 1] (the pose network predicts frame −1 → 0, which the loss needs as 0 → −1).
    """
    if axisangle.shape != translation.shape or axisangle.shape[-1] != 3:
        raise ValueError(
            f"pose_to_matrix needs axisangle and translation of the same shape …×3, "
            f"got {tuple(axisangle.shape)} and {tuple(translation.shape)}"
        )
    R = rotation_from_axisangle(axisangle)
    t = translation[..., :, None]
    if invert:
        R = R.transpose(-1, -2)
        t = -(R @ t)
    top = torch.cat([R, t], dim=-1)
    bottom = torch.zeros_like(top[..., :1, :])
    bottom[..., 0, 3] = 1.0
    return torch.cat([top, bottom], dim=-2)
