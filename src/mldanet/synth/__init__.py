"""The synthetic drive: a ray-cast street in the exact KITTI raw layout (``mldanet synth``, docs/METHOD.md §8.5).

``write_synthetic_drives`` is the entry point; ``render_frame`` renders one camera of a drive's
scene for tests and demos (``make_drive`` gives the scene and the camera-2 poses).
"""

from mldanet.synth.render import render_frame, velodyne_scan
from mldanet.synth.rig import BASELINE, CAMERA_HEIGHT, Intrinsics, right_camera_pose
from mldanet.synth.scene import Drive, Scene, make_drive
from mldanet.synth.writer import SynthSummary, write_synthetic_drives

__all__ = [
    "BASELINE",
    "CAMERA_HEIGHT",
    "Drive",
    "Intrinsics",
    "Scene",
    "SynthSummary",
    "make_drive",
    "render_frame",
    "right_camera_pose",
    "velodyne_scan",
    "write_synthetic_drives",
]
