"""KITTI raw image files: where they are, how they are read and resized.

Layout: ``<root>/<date>/<drive>_sync/image_0{2,3}/data/<10-digit frame>.{jpg,png}``; the left
colour camera (side ``l``) is ``image_02``, the right one (``r``) ``image_03``.
Only NumPy and OpenCV here, so hint worker processes stay free of torch.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

CAMERA_FOLDERS = {"l": "image_02", "r": "image_03"}
CAMERA_NUMBERS = {"l": 2, "r": 3}
OTHER_SIDE = {"l": "r", "r": "l"}
IMAGE_EXTENSIONS = (".jpg", ".png")


def frame_name(frame_index: int) -> str:
    """KITTI's zero-padded frame file stem, e.g. ``0000000042``."""
    return f"{frame_index:010d}"


def image_path(root: str | Path, folder: str, frame_index: int, side: str, img_ext: str = ".jpg") -> Path:
    """``<root>/<folder>/image_0{2|3}/data/<frame><img_ext>`` for side ``l`` or ``r``."""
    if side not in CAMERA_FOLDERS:
        raise ValueError(f"side {side!r} is not 'l' or 'r'")
    if img_ext not in IMAGE_EXTENSIONS:
        raise ValueError(f"image extension {img_ext!r} is not one of {', '.join(IMAGE_EXTENSIONS)}")
    return Path(root) / folder / CAMERA_FOLDERS[side] / "data" / f"{frame_name(frame_index)}{img_ext}"


def load_image(path: str | Path) -> np.ndarray:
    """H×W×3 uint8 RGB image; a missing, unreadable or truncated file raises an error naming it.

    libjpeg decodes a JPEG cut short with only a warning (the missing rows come out grey), so
    a JPEG must also end with its end-of-image marker.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"image not found: {path}") from None
    if data[:2] == b"\xff\xd8" and not data.rstrip(b"\x00\r\n ")[-2:] == b"\xff\xd9":
        raise ValueError(f"truncated JPEG (no end-of-image marker): {path}")
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cannot decode image (corrupt or not an image): {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_image_size(path: str | Path) -> tuple[int, int]:
    """(height, width) of an image from its header alone (the pixels are not decoded).

    Pillow reads only the header (OpenCV would decode the pixels).
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            width, height = image.size
    except FileNotFoundError:
        raise FileNotFoundError(f"image not found: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"cannot read the size of image {path} (corrupt or not an image: {error})") from None
    return height, width


def resize_image(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize to height×width: area averaging when shrinking (no aliasing), bilinear when enlarging."""
    if image.shape[:2] == (height, width):
        return image
    shrinking = height <= image.shape[0] and width <= image.shape[1]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
