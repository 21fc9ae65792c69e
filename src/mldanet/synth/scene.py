"""The world of one synthetic drive: a street of boxes on a textured ground plane, and the rig's path.

Everything solid is an axis-aligned box ``[x0, x1] × [y0, y1] × [z0, z1]`` (world frame of
:mod:`mldanet.synth.rig`: x along the street, y left, z up, ground z = 0): buildings on both sides
with their own set-backs, heights, materials and window grids; side streets (gaps, sometimes with
a far building behind); front walls, balconies, trees, poles, bins; cars, vans and trucks parked
along both kerbs and a few stopped in the other lane. The layout is drawn per drive from
``(seed, drive)``, with its own road width, building heights and parking density, so that a
per-pixel depth prior learnt on some drives does poorly on another.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mldanet.synth import textures as tex
from mldanet.synth.rig import BASELINE, Trajectory

CLEARANCE = 1.5  # metres between any box and any camera centre, so nothing fills the view
SIDE_STREET_RESOLUTION = 0.25  # metres per cell of the side-street lookup along x


@dataclass(frozen=True)
class Boxes:
    """N boxes as a structure of arrays (float64 geometry, float32 appearance)."""

    bounds: np.ndarray  # N×6: x0, x1, y0, y1, z0, z1
    tile: np.ndarray  # N int: detail tile (textures.ASPHALT …)
    colour: np.ndarray  # N×3 base albedo
    windows: np.ndarray  # N×5: cell width, cell height, window width, window height, first-floor height (0: none)

    def __len__(self) -> int:
        return len(self.bounds)


@dataclass(frozen=True)
class Scene:
    """Boxes plus the ground's layout. ``side_street[s, i]`` (s = 0 left / 1 right) marks road at
    x = x_start + i · SIDE_STREET_RESOLUTION beyond the kerb (a side street's mouth)."""

    boxes: Boxes
    road_half_width: float
    parking_line: float  # |y| of the solid line between lane and parking strip; 0: none
    centre_line: bool
    road_colour: np.ndarray
    sidewalk_colour: np.ndarray
    x_start: float
    side_street: np.ndarray
    sun: np.ndarray  # unit vector towards the sun (constant shading per face)
    texture_seed: int


@dataclass(frozen=True)
class Drive:
    scene: Scene
    trajectory: Trajectory
    poses: np.ndarray  # frames×4×4 world-from-camera-2


class _Builder:
    """Collects boxes while a drive's layout is drawn from ``rng``."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.bounds: list[tuple[float, ...]] = []
        self.tile: list[int] = []
        self.colour: list[np.ndarray] = []
        self.windows: list[tuple[float, ...]] = []

    def add(self, x0, x1, y0, y1, z0, z1, tile, colour, windows=(0.0,) * 5) -> None:
        self.bounds.append((min(x0, x1), max(x0, x1), min(y0, y1), max(y0, y1), z0, z1))
        self.tile.append(tile)
        self.colour.append(np.clip(np.asarray(colour, np.float64), 0.02, 0.95))
        self.windows.append(tuple(windows))

    def boxes(self, keep: np.ndarray) -> Boxes:
        """The boxes added so far, those marked in ``keep`` only."""
        n = len(self.bounds)
        return Boxes(
            bounds=np.array(self.bounds, np.float64).reshape(n, 6)[keep],
            tile=np.array(self.tile, np.int64)[keep],
            colour=np.array(self.colour, np.float32).reshape(n, 3)[keep],
            windows=np.array(self.windows, np.float32).reshape(n, 5)[keep],
        )


def _facade_colour(rng: np.random.Generator, tile: int) -> np.ndarray:
    if tile == tex.BRICK:
        return rng.uniform([0.42, 0.2, 0.14], [0.6, 0.32, 0.22])
    if tile == tex.CONCRETE:
        return np.full(3, rng.uniform(0.35, 0.55)) + rng.uniform(-0.03, 0.03, 3)
    return rng.uniform([0.45, 0.4, 0.3], [0.75, 0.7, 0.62])  # pastel plaster


def _vehicle_colour(rng: np.random.Generator) -> np.ndarray:
    if rng.random() < 0.4:  # grey to white; no black paint, which would carry no texture
        return np.full(3, rng.uniform(0.14, 0.7))
    return rng.uniform(0.08, 0.65, 3)


def _windows(rng: np.random.Generator) -> tuple[float, ...]:
    if rng.random() < 0.15:
        return (0.0,) * 5
    cell_w, cell_h = rng.uniform(2.2, 4.0), rng.uniform(2.8, 3.6)
    return (cell_w, cell_h, cell_w * rng.uniform(0.35, 0.65), cell_h * rng.uniform(0.35, 0.6), rng.uniform(0.6, 3.5))


def _buildings(
    b: _Builder, side: int, kerb: float, x_start: float, x_end: float, style: dict
) -> list[tuple[float, float]]:
    """One side's façades; returns the side streets' x ranges."""
    rng = b.rng
    front = kerb + rng.uniform(*style["sidewalk"])
    gaps = []
    x = x_start - rng.uniform(0.0, 15.0)
    while x < x_end:
        if rng.random() < style["gap_probability"]:
            width = rng.uniform(8.0, 16.0)
            gaps.append((x, x + width))
            if rng.random() < 0.6:  # a building across the side street
                y_far = front + 22.0 + rng.uniform(0.0, 30.0)
                tile = int(rng.choice([tex.BRICK, tex.PLASTER, tex.CONCRETE]))
                b.add(x - 4.0, x + width + 4.0, side * y_far, side * (y_far + 12.0), 0.0, rng.uniform(6.0, 28.0),
                      tile, _facade_colour(rng, tile), _windows(rng))
            x += width
            continue
        width = rng.uniform(6.0, 28.0)
        setback = 0.0 if rng.random() < style["flush_probability"] else rng.uniform(0.5, 7.0)
        height = rng.uniform(*style["heights"])
        depth = rng.uniform(8.0, 14.0)
        tile = int(rng.choice([tex.BRICK, tex.PLASTER, tex.CONCRETE], p=style["materials"]))
        face = front + setback
        b.add(x, x + width, side * face, side * (face + depth), 0.0, height,
              tile, _facade_colour(rng, tile), _windows(rng))
        if setback > 2.5 and rng.random() < style["front_walls"]:  # wall or fence on the plot's edge
            tile = int(rng.choice([tex.BRICK, tex.CONCRETE]))
            b.add(x, x + width, side * (front + 0.2), side * (front + 0.45), 0.0, rng.uniform(0.7, 2.0),
                  tile, _facade_colour(rng, tile))
        if height > 7.0 and rng.random() < 0.3:  # balconies: overhangs between the floors
            z = rng.uniform(3.0, 5.0)
            while z + 1.2 < height - 1.0:
                start = x + rng.uniform(0.5, 2.0)
                b.add(start, min(x + width - 0.5, start + rng.uniform(2.0, 6.0)), side * (face - rng.uniform(0.8, 1.5)),
                      side * face, z, z + 0.25, tex.CONCRETE, _facade_colour(rng, tex.CONCRETE))
                z += rng.uniform(2.8, 3.6)
        x += width + (rng.uniform(0.8, 3.0) if rng.random() < 0.12 else 0.0)
    _street_furniture(b, side, kerb, front, x_start, x_end, gaps, style["furniture_spacing"])
    return gaps


def _in_gap(x0: float, x1: float, gaps: list[tuple[float, float]], margin: float) -> bool:
    return any(x1 > g0 - margin and x0 < g1 + margin for g0, g1 in gaps)


def _street_furniture(
    b: _Builder, side: int, kerb: float, front: float, x_start: float, x_end: float, gaps, spacing: float
) -> None:
    """Poles, trees, bins on the sidewalk (between the kerb and the façade line), ``spacing`` apart on average."""
    rng = b.rng
    x = x_start + rng.uniform(0.0, 10.0)
    while x < x_end:
        kind = rng.random()
        y = kerb + rng.uniform(0.3, max(0.35, front - kerb - 0.6))
        if _in_gap(x - 2.0, x + 2.0, gaps, 1.0):
            pass
        elif kind < 0.35:  # pole or sign post
            s = rng.uniform(0.12, 0.3)
            b.add(x, x + s, side * y, side * (y + s), 0.0, rng.uniform(2.5, 7.0),
                  tex.METAL, np.full(3, rng.uniform(0.2, 0.6)))
            if rng.random() < 0.4:  # a sign board on it
                b.add(x - 0.3, x + s + 0.3, side * (y - 0.05), side * y, 2.0, 2.0 + rng.uniform(0.5, 1.0),
                      tex.METAL, _vehicle_colour(rng))
        elif kind < 0.6 and front - kerb > 1.8:  # tree: a trunk and a boxy crown
            r, yc = rng.uniform(1.0, 1.8), kerb + 0.5 * (front - kerb)
            b.add(x - 0.15, x + 0.15, side * (yc - 0.15), side * (yc + 0.15), 0.0, 2.6, tex.PLASTER, (0.3, 0.22, 0.15))
            b.add(x - r, x + r, side * (yc - r), side * (yc + r), 2.6, 2.6 + rng.uniform(1.5, 3.5),
                  tex.PLASTER, rng.uniform([0.12, 0.28, 0.08], [0.25, 0.45, 0.18]))
        else:  # bin, box, kiosk
            w, d = rng.uniform(0.5, 2.5), rng.uniform(0.5, 1.2)
            b.add(x, x + w, side * y, side * (y + d), 0.0, rng.uniform(0.7, 2.2), tex.METAL, _vehicle_colour(rng))
        x += rng.uniform(0.3, 1.7) * spacing


def _vehicles(b: _Builder, side: int, kerb: float, x_start: float, x_end: float, gaps) -> None:
    """Vehicles parked along one kerb, kept out of the side streets' mouths.

    How full the kerb is changes every 20–80 m (empty stretches included), so that every drive
    has crowded and clear views of its kerbs.
    """
    rng = b.rng
    x = x_start + rng.uniform(0.0, 8.0)
    stretch_end, density = x, 0.0
    while x < x_end:
        if x >= stretch_end:
            stretch_end, density = x + rng.uniform(20.0, 80.0), 0.0 if rng.random() < 0.25 else rng.uniform(0.4, 1.0)
        if rng.random() > density:
            x += rng.uniform(2.0, 10.0)
            continue
        kind = rng.random()
        if kind < 0.75:
            length, width, height = rng.uniform(3.8, 4.8), rng.uniform(1.65, 1.9), rng.uniform(1.35, 1.6)
        elif kind < 0.93:
            length, width, height = rng.uniform(4.8, 6.0), rng.uniform(1.9, 2.1), rng.uniform(1.9, 2.6)
        else:
            length, width, height = rng.uniform(7.0, 10.0), rng.uniform(2.3, 2.5), rng.uniform(2.8, 3.6)
        if not _in_gap(x, x + length, gaps, 1.5):
            y_out = kerb - rng.uniform(0.15, 0.4)
            b.add(x, x + length, side * y_out, side * (y_out - width), rng.uniform(0.15, 0.3), height,
                  tex.METAL, _vehicle_colour(rng))
        x += length + rng.uniform(0.6, 3.0)


def _side_street_table(gaps: dict[int, list[tuple[float, float]]], x_start: float, x_end: float) -> np.ndarray:
    cells = int(np.ceil((x_end - x_start) / SIDE_STREET_RESOLUTION)) + 1
    centres = x_start + (np.arange(cells) + 0.5) * SIDE_STREET_RESOLUTION
    table = np.zeros((2, cells), bool)
    for row, side in enumerate((1, -1)):
        for g0, g1 in gaps[side]:
            table[row] |= (centres >= g0) & (centres < g1)
    return table


def _clear_of_path(bounds: np.ndarray, poses: np.ndarray) -> np.ndarray:
    """Boxes whose footprint stays CLEARANCE away from every camera-2 and camera-3 centre."""
    left = poses[:, :2, 3]
    right = left + BASELINE * poses[:, :2, 0]
    centres = np.concatenate([left, right])
    dx = np.maximum(np.maximum(bounds[:, None, 0] - centres[None, :, 0], centres[None, :, 0] - bounds[:, None, 1]), 0.0)
    dy = np.maximum(np.maximum(bounds[:, None, 2] - centres[None, :, 1], centres[None, :, 1] - bounds[:, None, 3]), 0.0)
    return np.hypot(dx, dy).min(axis=1) >= CLEARANCE


def make_drive(seed: int, drive: int, frames: int) -> Drive:
    """The scene and camera path of drive ``drive`` (0-based) of dataset ``seed``; deterministic."""
    rng = np.random.default_rng([seed, drive, 0x5EED])
    half_width = rng.uniform(4.0, 8.5)
    inner = half_width - 2.3  # the parking strip is the outer 2.3 m of each half
    # the corridor between the parked rows where both cameras keep CLEARANCE from them
    room = max(inner - CLEARANCE - 0.5 * BASELINE, 0.1)
    trajectory = Trajectory.random(rng, centre=0.5 * BASELINE, room=room)
    poses = trajectory.poses(frames)
    x_start, x_end = -30.0, float(poses[-1, 0, 3]) + 170.0

    # the drive's own style: how built-up, how tall, how crowded its kerbs and sidewalks are
    low = rng.uniform(4.0, 9.0)
    style = {
        "heights": (low, low + rng.uniform(5.0, 20.0)),
        "gap_probability": rng.uniform(0.06, 0.22),
        "flush_probability": rng.uniform(0.25, 0.75),
        "materials": rng.dirichlet([2.0, 2.0, 2.0]),
        "sidewalk": tuple(np.sort(rng.uniform(1.0, 6.0, 2))),
        "front_walls": rng.uniform(0.2, 0.9),
        "furniture_spacing": rng.uniform(5.0, 30.0),
    }
    parking = {side: rng.random() < 0.85 for side in (1, -1)}
    builder = _Builder(rng)
    gaps = {}
    for side in (1, -1):
        gaps[side] = _buildings(builder, side, half_width, x_start, x_end, style)
        if parking[side]:
            _vehicles(builder, side, half_width, x_start, x_end, gaps[side])
    # vehicles stopped in the other lane, so that what is ahead is not always far
    for _ in range(rng.integers(0, 16)):
        x = rng.uniform(8.0, x_end - 20.0)
        y = rng.uniform(0.5, max(0.6, inner - 2.2))
        builder.add(x, x + rng.uniform(3.8, 5.0), y, y + rng.uniform(1.7, 1.9), 0.2, rng.uniform(1.4, 2.2),
                    tex.METAL, _vehicle_colour(rng))

    keep = _clear_of_path(np.array(builder.bounds).reshape(-1, 6), poses)
    road_grey = rng.uniform(0.22, 0.34)
    sun = np.array([rng.uniform(-0.6, 0.6), rng.uniform(-0.7, 0.7), rng.uniform(0.6, 1.0)])
    scene = Scene(
        boxes=builder.boxes(keep),
        road_half_width=float(half_width),
        parking_line=float(inner) if parking[1] or parking[-1] else 0.0,
        centre_line=bool(rng.random() < 0.8),
        road_colour=np.array([road_grey, road_grey, road_grey * 1.04], np.float32),
        sidewalk_colour=rng.uniform([0.45, 0.42, 0.38], [0.62, 0.58, 0.55]).astype(np.float32),
        x_start=x_start,
        side_street=_side_street_table(gaps, x_start, x_end),
        sun=sun / np.linalg.norm(sun),
        texture_seed=seed,
    )
    return Drive(scene=scene, trajectory=trajectory, poses=poses)
