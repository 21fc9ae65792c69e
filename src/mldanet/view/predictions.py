"""What ``mldanet view`` shows: depth, the input image and the camera, and the point cloud from them.

A :class:`Prediction` is kept at display size (at most :data:`MAX_SIDE` pixels on its long side):
the page reads the depth under the pointer from it and the cloud is back-projected from it, with
the checkpoint's camera scaled to that size (pixel centres at integer coordinates, K's first row ×
width and second row × height, as everywhere in this package).

Uploads are decoded from memory and never written to disk. Folder predictions are the files
``mldanet predict`` wrote (``NAME_depth.npy``, listed in its manifest); predict does not copy the
inputs, so the input image ``NAME.<ext>`` is looked up in the folders given (``--images``, then the
prediction folder itself, which is the input folder when predict ran with ``--out`` on it).
"""

from __future__ import annotations

import glob
import io
import math
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath

import cv2
import numpy as np
import torch
from torch import nn

from mldanet.config import Config
from mldanet.data.base import trained_camera
from mldanet.data.folder import read_camera_file
from mldanet.data.kitti import NORMALISED_K
from mldanet.data.npy import load_npy
from mldanet.predict import IMAGE_EXTENSIONS, MANIFEST

MAX_SIDE = 1280  # display size: a KITTI frame (1242×375) is shown at its own size
MAX_POINTS = 60_000  # the page redraws this many points while it is dragged
MAX_PIXELS = 50_000_000  # an upload's decoded size (a 50 MP photo is 150 MB of RGB)
DEPTH_SUFFIX = "_depth.npy"


@dataclass
class Prediction:
    """One depth map at display size and what goes with it.

    depth: h×w float32 (metres, or relative depth for monocular models; ≤ 0 or non-finite: none),
    image: h×w×3 uint8 RGB or None, K: 3×3 pixel intrinsics for h×w.
    """

    name: str
    depth: np.ndarray
    image: np.ndarray | None
    K: np.ndarray
    source: str  # "folder" or "upload"
    note: str = ""
    _cloud: tuple[np.ndarray, np.ndarray, int] | None = field(default=None, repr=False)

    def cloud(self) -> tuple[np.ndarray, np.ndarray, int]:
        """:func:`cloud_points` of this prediction (computed once)."""
        if self._cloud is None:
            self._cloud = cloud_points(self.depth, self.K, self.image)
        return self._cloud


def checkpoint_camera(config: Config, camera_file: str | Path | None = None) -> tuple[np.ndarray, str]:
    """(3×3 normalised K: row 0 ÷ width, row 1 ÷ height, and where it came from) for a checkpoint.

    ``camera_file`` (a camera file as ``--dataset folder`` reads) wins; else the camera the
    checkpoint's dataset knows (:meth:`mldanet.data.base.FrameDataset.trained_camera`), and
    otherwise KITTI's K, said so.
    """
    if camera_file:
        camera = read_camera_file(camera_file)
        return camera.normalised_K[:3, :3].copy(), f"camera file {camera.path}"
    trained = trained_camera(config.data)
    if trained.normalised_K is None:
        return NORMALISED_K[:3, :3].copy(), f"KITTI's normalised K: {trained.unknown} (give --camera FILE)"
    return (
        np.array(trained.normalised_K, dtype=np.float64)[:3, :3],
        f"{trained.source} (the checkpoint was trained on data.dataset={config.data.dataset})",
    )


def pixel_intrinsics(normalised: np.ndarray, height: int, width: int) -> np.ndarray:
    """3×3 normalised K → 3×3 K in pixels of a height×width image (row 0 × width, row 1 × height)."""
    K = np.array(normalised, dtype=np.float64)[:3, :3].copy()
    K[0] *= width
    K[1] *= height
    return K


def display_size(height: int, width: int, max_side: int = MAX_SIDE) -> tuple[int, int]:
    """(h, w) with the aspect ratio of height×width and the long side at most ``max_side``."""
    if height <= 0 or width <= 0:
        raise ValueError(f"image size {width}×{height} must be positive")
    factor = min(1.0, max_side / max(height, width))
    return max(1, round(height * factor)), max(1, round(width * factor))


def fit_to_display(depth: np.ndarray, image: np.ndarray | None, max_side: int = MAX_SIDE) -> tuple[np.ndarray, np.ndarray | None]:
    """H×W depth and H'×W'×3 image → both at :func:`display_size` of the depth (area averaging)."""
    height, width = display_size(*depth.shape, max_side)
    if depth.shape != (height, width):
        depth = cv2.resize(depth, (width, height), interpolation=cv2.INTER_AREA)
    if image is not None and image.shape[:2] != (height, width):
        shrinking = image.shape[0] >= height and image.shape[1] >= width
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    return np.ascontiguousarray(depth, dtype=np.float32), image


def cloud_points(
    depth: np.ndarray, K: np.ndarray, image: np.ndarray | None = None, max_points: int = MAX_POINTS
) -> tuple[np.ndarray, np.ndarray, int]:
    """Back-project every ``stride``-th pixel of ``depth`` to camera space: ``D(p) · K⁻¹ p``.

    depth: H×W, K: 3×3 pixels, image: H×W×3 uint8 (point colours; None: grey) →
    (N×3 float32 x right, y down, z forward; N×3 uint8 RGB; stride), N ≤ ``max_points``.
    Pixels without depth (≤ 0 or not finite) are left out.
    """
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise ValueError(f"depth must be an H×W map, got shape {depth.shape}")
    height, width = depth.shape
    stride = max(1, math.ceil(math.sqrt(height * width / max_points)))
    while math.ceil(height / stride) * math.ceil(width / stride) > max_points:  # the edges' part rows and columns
        stride += 1
    v, u = np.mgrid[0:height:stride, 0:width:stride]
    d = depth[v, u].astype(np.float64)
    keep = np.isfinite(d) & (d > 0)
    u, v, d = u[keep], v[keep], d[keep]
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    xyz = np.stack([(u - cx) / fx * d, (v - cy) / fy * d, d], axis=1).astype(np.float32)
    rgb = image[v, u].astype(np.uint8) if image is not None else np.full((len(d), 3), 200, np.uint8)
    return xyz, np.ascontiguousarray(rgb), stride


def depth_range(depth: np.ndarray) -> tuple[float, float]:
    """(near, far): the 1st and 95th percentiles of the valid depth, so that the sky and a few
    outliers do not wash out the colours; (1, 2) when nothing is valid."""
    valid = depth[np.isfinite(depth) & (depth > 0)]
    if not valid.size:
        return 1.0, 2.0
    near, far = (float(x) for x in np.percentile(valid, [1, 95]))
    return near, max(far, near * 1.01)


def decode_upload(data: bytes, name: str, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """The uploaded bytes as H×W×3 uint8 RGB; what is not an image, is cut short or too large is a
    ValueError naming the upload. The size is read from the header before anything is decoded."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise ValueError(f"upload {name} is empty")
    try:
        with Image.open(io.BytesIO(data)) as header:
            width, height = header.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise ValueError(f"upload {name} is not an image (JPEG, PNG, BMP, TIFF or WebP)") from None
    if width * height > max_pixels:
        raise ValueError(f"upload {name} is {width}×{height}, over the {max_pixels / 1e6:g} MP this viewer decodes")
    if data[:2] == b"\xff\xd8" and data.rstrip(b"\x00\r\n ")[-2:] != b"\xff\xd9":
        raise ValueError(f"upload {name} is a truncated JPEG (no end-of-image marker)")
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"upload {name} cannot be decoded (corrupt, or a format OpenCV does not read)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def predict_image(
    net: nn.Module, config: Config, rgb: np.ndarray, device: torch.device, normalised_K: np.ndarray, name: str,
    max_side: int = MAX_SIDE,
) -> Prediction:
    """Run the depth network on one H×W×3 uint8 RGB image, as ``mldanet predict`` does (at the
    checkpoint's training size, the disparity resized back bilinearly), at display size."""
    from mldanet.data.images import resize_image
    from mldanet.evaluation.inference import predict_disparities

    height, width = display_size(*rgb.shape[:2], max_side)
    network_input = resize_image(rgb, config.data.height, config.data.width)
    tensor = torch.from_numpy(np.ascontiguousarray(network_input)).permute(2, 0, 1).float().div_(255.0)
    disp = predict_disparities(
        net, [tensor], batch_size=1, device=str(device), progress=False,
        min_depth=config.model.min_depth, max_depth=config.model.max_depth,
    )[0]
    disp = cv2.resize(disp, (width, height), interpolation=cv2.INTER_LINEAR)
    depth, image = fit_to_display((config.depth_scale / disp).astype(np.float32), rgb, max_side)
    return Prediction(name, depth, image, pixel_intrinsics(normalised_K, height, width), "upload")


def folder_names(folder: str | Path) -> list[str]:
    """The frame names ``NAME`` of ``folder``'s ``NAME_depth.npy`` files (sorted): those its predict
    manifest lists and that exist, or without a manifest every ``*_depth.npy`` below it."""
    folder = Path(folder)
    manifest = folder / MANIFEST
    if manifest.is_file():
        try:
            listed = manifest.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise ValueError(f"cannot read predict's manifest {manifest}: {error}") from None
        names = {line[: -len(DEPTH_SUFFIX)] for line in listed if line.endswith(DEPTH_SUFFIX) and inside(line)}
        return sorted(name for name in names if (folder / f"{name}{DEPTH_SUFFIX}").is_file())
    return sorted(p.relative_to(folder).as_posix()[: -len(DEPTH_SUFFIX)] for p in folder.rglob(f"*{DEPTH_SUFFIX}"))


def inside(relative: str) -> bool:
    """Whether a manifest line names a file below its folder: no absolute path, no ``..`` (a shared
    folder's manifest must not make the server hand out other files of the machine)."""
    path = PurePosixPath(relative)
    return not path.is_absolute() and not PureWindowsPath(relative).is_absolute() and ".." not in path.parts


def find_input_image(name: str, folders: list[Path]) -> Path | None:
    """The first image ``NAME.<ext>`` (any extension predict reads) in ``folders``, or None."""
    for folder in folders:
        for path in sorted(glob.glob(glob.escape(str(folder / name)) + ".*")):
            if Path(path).suffix.lower() in IMAGE_EXTENSIONS and Path(path).is_file():
                return Path(path)
    return None


def load_folder_prediction(
    folder: str | Path, name: str, image_folders: list[Path], normalised_K: np.ndarray, max_side: int = MAX_SIDE
) -> Prediction:
    """``folder/NAME_depth.npy`` and its input image (see the module docstring), at display size."""
    from mldanet.data.images import load_image

    path = Path(folder) / f"{name}{DEPTH_SUFFIX}"
    depth = load_npy(path, "depth map")
    if depth.ndim != 2 or not np.issubdtype(depth.dtype, np.floating) or min(depth.shape) < 1:
        raise ValueError(f"depth map {path} must be an H×W float array (mldanet predict's NAME_depth.npy), got {depth.dtype} {depth.shape}")
    image_path = find_input_image(name, image_folders)
    image, note = None, ""
    if image_path is None:
        note = f"no input image {name}.* in {', '.join(map(str, image_folders))} (give --images, the folder predict read)"
    else:
        try:
            image = load_image(image_path)
        except (OSError, ValueError) as error:
            note = str(error)
        else:
            aspect, expected = image.shape[1] / image.shape[0], depth.shape[1] / depth.shape[0]
            if abs(aspect / expected - 1) > 0.01:
                note = f"input {image_path} is {image.shape[1]}×{image.shape[0]}, not the depth map's picture ({depth.shape[1]}×{depth.shape[0]})"
                image = None
    depth, image = fit_to_display(depth.astype(np.float32), image, max_side)
    return Prediction(name, depth, image, pixel_intrinsics(normalised_K, *depth.shape), "folder", note)
