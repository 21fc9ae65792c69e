"""The synthetic stereo rig: KITTI-like intrinsics, the 0.54 m baseline, and the drive's trajectory.

World frame of every synthetic drive: x along the street, y to the left, z up, ground at z = 0.
Cameras use the usual rectified convention (x right, y down, z forward); a pose is the 4×4
world-from-camera transform of camera 2 (the left colour camera). The rig only yaws, so image
rows stay level and vertical world lines stay vertical in the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mldanet.data.kitti import BASELINE as KITTI_BASELINE
from mldanet.data.kitti import NORMALISED_FX, NORMALISED_FY

CAMERA_HEIGHT = 1.65  # metres above the ground, KITTI's
BASELINE = KITTI_BASELINE  # metres; camera 3 sits this far to the right of camera 2
# the normalised K the networks assume for KITTI (docs/METHOD.md §6.2)
K_NORM = ((NORMALISED_FX, 0.0, 0.5), (0.0, NORMALISED_FY, 0.5))


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics in pixels; pixel (u, v) has its centre at integer coordinates."""

    fx: float
    fy: float
    cx: float
    cy: float

    @classmethod
    def for_size(cls, width: int, height: int) -> Intrinsics:
        """The network's normalised K scaled to ``width`` × ``height`` (720.36, 720, 621, 187.5 at 1242×375)."""
        return cls(K_NORM[0][0] * width, K_NORM[1][1] * height, K_NORM[0][2] * width, K_NORM[1][2] * height)

    @property
    def matrix(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])


def camera_pose(x: float, y: float, yaw: float) -> np.ndarray:
    """World-from-camera 4×4 of a level camera at (x, y, CAMERA_HEIGHT) heading ``yaw`` (radians, CCW from +x)."""
    c, s = np.cos(yaw), np.sin(yaw)
    pose = np.eye(4)
    pose[:3, 0] = (s, -c, 0.0)  # camera x: to the right of the heading
    pose[:3, 1] = (0.0, 0.0, -1.0)  # camera y: down
    pose[:3, 2] = (c, s, 0.0)  # camera z: the heading
    pose[:3, 3] = (x, y, CAMERA_HEIGHT)
    return pose


def right_camera_pose(left_pose: np.ndarray) -> np.ndarray:
    """World-from-camera-3 pose for a camera-2 pose: the same orientation, BASELINE along camera x."""
    offset = np.eye(4)
    offset[0, 3] = BASELINE
    return left_pose @ offset


@dataclass(frozen=True)
class Trajectory:
    """A smooth lane-following path: lateral offset ``lane + Σ a_k sin(2π x / λ_k + φ_k)``.

    The rig heads along the path's tangent, so the yaw is ``atan(dy/dx)`` (a few degrees), and
    advances ``speed · (1 + 0.08 sin(2π i / 37 + ψ))`` metres per frame along x.
    """

    lane: float
    amplitudes: tuple[float, ...]
    wavelengths: tuple[float, ...]
    phases: tuple[float, ...]
    speed: float
    speed_phase: float

    @classmethod
    def random(cls, rng: np.random.Generator, centre: float, room: float) -> Trajectory:
        """A path that keeps within ``room`` of the lateral position ``centre``."""
        amplitudes = rng.uniform(0.15, 0.45, 3)
        amplitudes *= min(1.0, 0.6 * room / amplitudes.sum())  # narrow streets: straighter paths
        slack = room - amplitudes.sum()
        return cls(
            lane=float(centre + rng.uniform(-slack, 0.5 * slack)),  # more often right of the centre
            amplitudes=tuple(amplitudes),
            wavelengths=tuple(rng.uniform(40.0, 150.0, 3)),
            phases=tuple(rng.uniform(0.0, 2 * np.pi, 3)),
            speed=float(rng.uniform(0.9, 1.1)),
            speed_phase=float(rng.uniform(0.0, 2 * np.pi)),
        )

    @property
    def max_lateral(self) -> float:
        """Bound on |y − lane| over the whole path."""
        return float(sum(self.amplitudes))

    def lateral(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(y, dy/dx) of the path at ``x``."""
        y = np.full_like(x, self.lane, dtype=np.float64)
        slope = np.zeros_like(x, dtype=np.float64)
        for a, lam, phi in zip(self.amplitudes, self.wavelengths, self.phases):
            w = 2 * np.pi / lam
            y += a * np.sin(w * x + phi)
            slope += a * w * np.cos(w * x + phi)
        return y, slope

    def forward_positions(self, frames: int) -> np.ndarray:
        """x of camera 2 at each frame, starting at 0."""
        i = np.arange(frames - 1)
        steps = self.speed * (1.0 + 0.08 * np.sin(2 * np.pi * i / 37.0 + self.speed_phase))
        return np.concatenate([[0.0], np.cumsum(steps)])

    def poses(self, frames: int) -> np.ndarray:
        """frames×4×4 world-from-camera-2 poses."""
        x = self.forward_positions(frames)
        y, slope = self.lateral(x)
        return np.stack([camera_pose(xi, yi, np.arctan(si)) for xi, yi, si in zip(x, y, slope)])
