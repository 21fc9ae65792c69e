"""Fused SGM (depth-hints' recipe, docs/METHOD.md §8.4): stereo depth from several SGBM matchers.

Several OpenCV SGBM matchers (block size × disparity range) each give a disparity map; per pixel
the fused map keeps the candidate whose warp of the other view best matches the base image
under the training photometric error (0.85·SSIM + 0.15·L1, 3×3 windows, reflection padding).
Pixels no matcher resolves stay 0. Depth = fx_px · baseline / disparity.

Only NumPy and OpenCV here (hint worker processes never import torch).
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

BLOCK_SIZES = (1, 2, 3)
NUM_DISPARITIES = (64, 96, 128, 160)
SSIM_WEIGHT = 0.85
SSIM_C1 = 0.01**2
SSIM_C2 = 0.03**2
TILED_FRACTION = 0.4  # score a candidate tile by tile when it touches fewer tiles than this, else whole


@functools.lru_cache(maxsize=None)
def create_matcher(block_size: int, num_disparities: int) -> cv2.StereoSGBM:
    """One SGBM matcher with the parameters of docs/METHOD.md §8.4 (P1 = 3·3·4, P2 = 3·3·32, as depth-hints)."""
    if block_size < 1:
        raise ValueError(f"SGBM block size {block_size} must be at least 1")
    if num_disparities <= 0 or num_disparities % 16:
        raise ValueError(f"SGBM numDisparities {num_disparities} must be a positive multiple of 16")
    return cv2.StereoSGBM_create(
        minDisparity=0,
        numDisparities=num_disparities,
        blockSize=block_size,
        P1=3 * 3 * 4,
        P2=3 * 3 * 32,
        preFilterCap=63,
        uniquenessRatio=10,
        speckleWindowSize=100,
        speckleRange=16,
    )


def _check_pair(base_rgb: np.ndarray, lookup_rgb: np.ndarray) -> None:
    for name, image in (("base", base_rgb), ("lookup", lookup_rgb)):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"{name} image must be H×W×3 uint8 RGB, got {image.shape} {image.dtype}")
    if base_rgb.shape != lookup_rgb.shape:
        raise ValueError(f"stereo pair sizes differ: base {base_rgb.shape}, lookup {lookup_rgb.shape}")


def sgbm_disparities(
    base_rgb: np.ndarray,
    lookup_rgb: np.ndarray,
    base_is_right: bool = False,
    block_sizes: tuple[int, ...] = BLOCK_SIZES,
    num_disparities: tuple[int, ...] = NUM_DISPARITIES,
) -> list[np.ndarray]:
    """H×W float32 disparities of the base image (pixels, ≤ 0 = invalid), one per matcher, block size major.

    SGBM only matches a left image against a right one, so a right base image is matched by
    mirroring both images (the mirrored right view is a left view of the mirrored scene).
    """
    _check_pair(base_rgb, lookup_rgb)
    if max(num_disparities) >= base_rgb.shape[1]:
        raise ValueError(f"numDisparities {max(num_disparities)} must be below the image width {base_rgb.shape[1]}")
    if base_is_right:
        base_rgb, lookup_rgb = base_rgb[:, ::-1], lookup_rgb[:, ::-1]
    base_rgb, lookup_rgb = np.ascontiguousarray(base_rgb), np.ascontiguousarray(lookup_rgb)
    disparities = []
    for block_size in block_sizes:
        for count in num_disparities:
            disparity = create_matcher(block_size, count).compute(base_rgb, lookup_rgb).astype(np.float32) / 16.0
            disparities.append(np.ascontiguousarray(disparity[:, ::-1]) if base_is_right else disparity)
    return disparities


def _box3(x: np.ndarray) -> np.ndarray:
    # BORDER_REFLECT_101 is the reflection padding of torch's ReflectionPad2d used by the loss.
    return cv2.boxFilter(x, -1, (3, 3), normalize=True, borderType=cv2.BORDER_REFLECT_101)


def _box3_valid(x: np.ndarray) -> np.ndarray:
    """3×3 means of the interior of ...×(T+2)×(T+2)×C windows → ...×T×T×C (separable sums)."""
    rows = x[..., :-2, :, :] + x[..., 1:-1, :, :] + x[..., 2:, :, :]
    return (rows[..., :-2, :] + rows[..., 1:-1, :] + rows[..., 2:, :]) / 9.0


def _error_from_moments(
    target: np.ndarray,
    target_mean: np.ndarray,
    target_mean_square: np.ndarray,
    target_variance: np.ndarray,
    source: np.ndarray,
    source_mean: np.ndarray,
    source_square_mean: np.ndarray,
    cross_mean: np.ndarray,
) -> np.ndarray:
    """0.85·clamp((1 − SSIM)/2, 0, 1) + 0.15·|target − source|, averaged over the last (channel) axis.

    The source moments (3×3 means of y, y², x·y) are fresh arrays and are overwritten: this runs
    once per candidate on a megapixel-sized array, and in-place arithmetic halves its cost.
    """
    numerator = target_mean * source_mean  # μx·μy
    covariance_term = cross_mean
    covariance_term -= numerator
    covariance_term *= 2
    covariance_term += SSIM_C2  # 2·σxy + C2
    numerator *= 2
    numerator += SSIM_C1
    numerator *= covariance_term  # (2·μx·μy + C1)(2·σxy + C2)
    denominator = source_mean
    denominator *= source_mean  # μy²
    variance_term = source_square_mean
    variance_term -= denominator
    variance_term += target_variance
    variance_term += SSIM_C2  # σx² + σy² + C2
    denominator += target_mean_square
    denominator += SSIM_C1
    denominator *= variance_term  # (μx² + μy² + C1)(σx² + σy² + C2)
    error = numerator
    error /= denominator  # SSIM
    error *= -SSIM_WEIGHT / 2
    error += SSIM_WEIGHT / 2
    np.clip(error, 0, SSIM_WEIGHT, out=error)  # 0.85·clamp((1 − SSIM)/2, 0, 1)
    l1 = np.subtract(target, source)
    np.abs(l1, out=l1)
    l1 *= 1 - SSIM_WEIGHT
    error += l1
    # summing channel slices is several times faster than a reduction over a length-3 last axis
    channel_mean = error[..., 0] + error[..., 1]
    channel_mean += error[..., 2]
    channel_mean /= 3
    return channel_mean


class StereoWarpError:
    """Photometric error of the other view warped onto the base view by candidate disparities.

    The base image's window moments are computed once. :meth:`tiles` scores only chosen T×T
    tiles (each warped with the one-pixel border its 3×3 windows need), so a candidate that
    differs from an already scored one in a few places costs a few tiles, not the whole image.
    """

    def __init__(self, base: np.ndarray, lookup: np.ndarray, base_is_right: bool = False, tile: int = 16):
        """base, lookup: H×W×3 float32 in [0, 1]."""
        height, width = base.shape[:2]
        self.base, self.lookup, self.base_is_right, self.tile = base, lookup, base_is_right, tile
        self.mean = _box3(base)
        self.mean_square = self.mean * self.mean
        self.variance = _box3(base * base) - self.mean_square
        self.grid = (-(-height // tile), -(-width // tile))
        self._window_y, self._window_x = _window_coordinates(height, width, tile)
        self._moment_tiles = [self._tiles_of(a) for a in (self.mean, self.mean_square, self.variance)]

    def __call__(self, disparity: np.ndarray) -> np.ndarray:
        """H×W disparity → H×W float32 error of the whole image."""
        source = warp_by_disparity(self.lookup, disparity, self.base_is_right)
        return _error_from_moments(
            self.base,
            self.mean,
            self.mean_square,
            self.variance,
            source,
            _box3(source),
            _box3(source * source),
            _box3(self.base * source),
        )

    def tiles(self, disparity: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Errors of the tiles (rows[i], cols[i]) (tile indices) → N×T×T, equal to ``__call__``'s there
        up to float32 rounding."""
        ys, xs = self._window_y[rows, cols], self._window_x[rows, cols]
        shift = disparity[ys, xs]
        map_x = (xs + shift) if self.base_is_right else (xs - shift)
        size = self.tile + 2
        source = cv2.remap(
            self.lookup,
            map_x.astype(np.float32).reshape(-1, size),
            ys.astype(np.float32).reshape(-1, size),
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        ).reshape(len(rows), size, size, 3)
        base = self.base[ys, xs]
        mean, mean_square, variance = (tiles[rows, cols] for tiles in self._moment_tiles)
        return _error_from_moments(
            base[:, 1:-1, 1:-1],
            mean,
            mean_square,
            variance,
            source[:, 1:-1, 1:-1],
            _box3_valid(source),
            _box3_valid(source * source),
            _box3_valid(source * base),
        )

    def tile_mask(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Tile indices (rows, cols) of the tiles holding any True pixel of the H×W mask."""
        t = self.tile
        padded = self._pad(pixels)
        if t % 8 == 0:  # test 8 pixels at a time
            padded = padded.view(np.uint64)
        return np.nonzero(padded.reshape(self.grid[0], t, self.grid[1], -1).any(axis=(1, 3)))

    def untile(self, values: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """N×T×T tile values → H×W map (inf outside the tiles)."""
        t = self.tile
        grid = np.full((*self.grid, t, t), np.inf, dtype=np.float32)
        grid[rows, cols] = values
        height, width = self.base.shape[:2]
        return grid.swapaxes(1, 2).reshape(self.grid[0] * t, self.grid[1] * t)[:height, :width]

    def _tiles_of(self, image: np.ndarray) -> np.ndarray:
        """(rows)×(cols)×T×T×C tiles of ``image`` zero-padded to whole tiles."""
        t = self.tile
        return self._pad(image).reshape(self.grid[0], t, self.grid[1], t, -1).swapaxes(1, 2)

    def _pad(self, image: np.ndarray) -> np.ndarray:
        """``image`` zero-padded at the bottom and right to whole tiles (itself when it fits)."""
        shape = (self.grid[0] * self.tile, self.grid[1] * self.tile)
        if image.shape[:2] == shape:
            return np.ascontiguousarray(image)
        padded = np.zeros((*shape, *image.shape[2:]), dtype=image.dtype)
        padded[: image.shape[0], : image.shape[1]] = image
        return padded


@functools.lru_cache(maxsize=8)
def _window_coordinates(height: int, width: int, tile: int) -> tuple[np.ndarray, np.ndarray]:
    """Image (y, x) of every pixel of every tile window: two (rows)×(cols)×(T+2)×(T+2) int32 arrays.

    Tile (i, j) covers pixels [iT, iT+T) × [jT, jT+T); its window adds the one-pixel border the
    3×3 moments need, reflected (reflect-101, as _box3) at the image border. Window pixels beyond
    the image only feed outputs that are discarded, so they are clipped onto it.
    """
    grid = (-(-height // tile), -(-width // tile))

    def reflected(cells: int, size: int) -> np.ndarray:
        index = np.abs(np.clip(np.arange(-1, cells * tile + 1), -1, size))
        return np.where(index >= size, 2 * (size - 1) - index, index).astype(np.int32)

    ys, xs = reflected(grid[0], height), reflected(grid[1], width)
    windows = np.lib.stride_tricks.sliding_window_view
    starts = np.arange(0, grid[0] * tile, tile), np.arange(0, grid[1] * tile, tile)
    window_y = windows(ys, tile + 2)[starts[0]]  # rows × (T+2)
    window_x = windows(xs, tile + 2)[starts[1]]  # cols × (T+2)
    shape = (*grid, tile + 2, tile + 2)
    return (
        np.ascontiguousarray(np.broadcast_to(window_y[:, None, :, None], shape)),
        np.ascontiguousarray(np.broadcast_to(window_x[None, :, None, :], shape)),
    )


def warp_by_disparity(image: np.ndarray, disparity: np.ndarray, base_is_right: bool = False) -> np.ndarray:
    """The other view ``image`` (H×W×C) resampled onto the base view, bilinear, edge-clamped.

    A left base pixel x sees its match at x − d in the right image; a right base pixel at x + d
    in the left one.
    """
    height, width = disparity.shape
    xs = np.arange(width, dtype=np.float32)[None, :] + (disparity if base_is_right else -disparity)
    ys = np.broadcast_to(np.arange(height, dtype=np.float32)[:, None], (height, width))
    return cv2.remap(
        image, xs.astype(np.float32), np.ascontiguousarray(ys), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def select_disparity(
    base_rgb: np.ndarray, lookup_rgb: np.ndarray, disparities: list[np.ndarray], base_is_right: bool = False
) -> np.ndarray:
    """H×W float32 fused disparity: per pixel the valid candidate with the lowest photometric error, else 0.

    Invalid candidates never win, so the fused map covers the union of the candidates' pixels.
    Successive matchers' maps are much alike (a wider disparity range mostly just invalidates a
    wider left strip), so a candidate is scored only where it differs, with the 3×3 window margin,
    from the previous one: elsewhere its disparity and error equal that one's, which the running
    minimum has already seen. Repeated candidates (OpenCV treats block sizes 2 and 3 alike) are
    skipped.
    """
    _check_pair(base_rgb, lookup_rgb)
    error_of = StereoWarpError(
        base_rgb.astype(np.float32) / 255.0, lookup_rgb.astype(np.float32) / 255.0, base_is_right
    )
    shape = base_rgb.shape[:2]
    best_error = np.full(shape, np.inf, dtype=np.float32)
    best = np.zeros(shape, dtype=np.float32)
    seen: dict[bytes, list[np.ndarray]] = {}
    previous = None
    for disparity in disparities:
        disparity = np.asarray(disparity, dtype=np.float32)
        # a sparse sample finds the candidates that may repeat one already seen; equality decides
        same_sample = seen.setdefault(disparity[::7, ::7].tobytes(), [])
        if any(np.array_equal(disparity, other) for other in same_sample):
            continue
        same_sample.append(disparity)
        region = None
        if previous is not None:
            changed = np.not_equal(disparity, previous).view(np.uint8)
            region = cv2.dilate(changed, np.ones((3, 3), np.uint8)).view(bool)
            rows, cols = error_of.tile_mask(region)
        if region is not None and len(rows) < TILED_FRACTION * error_of.grid[0] * error_of.grid[1]:
            error = error_of.untile(error_of.tiles(disparity, rows, cols), rows, cols)
            better = np.less(error, best_error)
            better &= region
        else:
            error = error_of(disparity)
            better = np.less(error, best_error)
        better &= disparity > 0
        np.copyto(best_error, error, where=better)
        np.copyto(best, disparity, where=better)
        previous = disparity
    return best


def disparity_to_depth(disparity: np.ndarray, fx_px: float, baseline: float) -> np.ndarray:
    """fx_px · baseline / disparity where disparity > 0, else 0 (float32)."""
    depth = np.zeros(disparity.shape, dtype=np.float32)
    valid = disparity > 0
    depth[valid] = fx_px * baseline / disparity[valid]
    return depth


def fused_sgm_depth(
    base_rgb: np.ndarray,
    lookup_rgb: np.ndarray,
    fx_px: float,
    baseline: float,
    base_is_right: bool = False,
    block_sizes: tuple[int, ...] = BLOCK_SIZES,
    num_disparities: tuple[int, ...] = NUM_DISPARITIES,
) -> np.ndarray:
    """Fused-SGM depth of ``base_rgb`` (H×W×3 uint8 RGB) from the stereo pair, at the inputs' size.

    Returns H×W float32 depth = fx_px · baseline / disparity, 0 where no matcher found a match;
    ``fx_px`` is the focal length in pixels at this resolution.
    """
    disparities = sgbm_disparities(base_rgb, lookup_rgb, base_is_right, tuple(block_sizes), tuple(num_disparities))
    return disparity_to_depth(select_disparity(base_rgb, lookup_rgb, disparities, base_is_right), fx_px, baseline)
