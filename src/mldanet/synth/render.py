"""Ray casting of a :class:`~mldanet.synth.scene.Scene`: camera images, depth maps and Velodyne scans.

Rays come as a grid: M horizontal directions D_c ("columns") times R slopes k_r ("rows"); ray
(r, c) from origin o at height h is ``(o_xy + t·D_c, h − t·k_r)``. A level camera fits exactly:
column u of the image is ``D_u = forward + (u − cx)/fx · right``, row v has ``k_v = (v − cy)/fy``,
and t is then the camera depth Z. The Velodyne's beams × azimuths fit the same way, with t the
horizontal range. Because every box is axis-aligned and upright, a column meets a box's
footprint over one interval ``[t_in, t_out]`` that holds for all its rows; a row then only has
to intersect that interval with the t-range over which its height lies in ``[z0, z1]``. The
renderer therefore does the 2-D slab test once per column and box, keeps per column only the
boxes it meets (up to the first one standing on the ground tall enough to hide the rest), and
costs O(rows × columns × boxes met per column) simple array operations, worked in strips of rows
small enough for the CPU cache.

Shading is Lambertian with a constant factor per face (sun + ambient), no view-dependent terms:
a world point has the same colour in every view, which is what photometric losses assume.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from mldanet.synth import textures as tex
from mldanet.synth.rig import Intrinsics
from mldanet.synth.scene import SIDE_STREET_RESOLUTION, Scene

FACE_NEG_X, FACE_POS_X, FACE_NEG_Y, FACE_POS_Y, FACE_TOP, FACE_BOTTOM, FACE_GROUND, FACE_SKY = range(8)
NORMALS = np.array(  # outward normal per face code (none for the sky)
    [[-1, 0, 0], [1, 0, 0], [0, -1, 0], [0, 1, 0], [0, 0, 1], [0, 0, -1], [0, 0, 1], [0, 0, 0]], np.float64
)
AMBIENT = 0.45
EXPOSURE = 255.0 * 1.05
STRIP = 48  # rows shaded together, so that a strip's temporary arrays stay in the CPU cache
CAST_STRIP = 96  # rows cast together: fewer, larger strips, as casting makes few temporaries per call

# Velodyne HDL-64E-like: an upper block of 32 beams +2° … −8.33°, a lower block −8.83° … −24.8°.
VELODYNE_ELEVATIONS = np.radians(np.concatenate([np.linspace(2.0, -8.33, 32), np.linspace(-8.83, -24.8, 32)]))
VELODYNE_AZIMUTH_STEP = np.radians(0.2)
VELODYNE_MAX_RANGE = 120.0


@dataclass(frozen=True)
class Rays:
    """A grid of rays: ``directions`` M×2 (horizontal, world), ``slopes`` R (descent per unit t,
    ascending: rows run from the top of the view down).

    ``pixel_angle`` is the angular size of one sample (radians), used to pick texture mip
    levels; 0 samples textures at full detail.
    """

    origin: np.ndarray  # (x, y, height)
    directions: np.ndarray
    slopes: np.ndarray
    pixel_angle: float


@dataclass(frozen=True)
class Hits:
    """R×M ray parameters ``t`` (inf: sky), hit box index (−1: ground or sky) and face code."""

    t: np.ndarray
    box: np.ndarray
    face: np.ndarray


@dataclass(frozen=True)
class View:
    """One rendered camera image: colour, depth (inf for sky) and which surface each pixel shows."""

    rgb: np.ndarray  # H×W×3 uint8 (RGB order)
    depth: np.ndarray  # H×W float32 metres
    surface: np.ndarray  # H×W surface index: box i, road N, sidewalk N + 1, sky −1


def _check_level(pose: np.ndarray) -> None:
    pose = np.asarray(pose, np.float64)
    if pose.shape != (4, 4):
        raise ValueError(f"a camera pose must be 4×4, got shape {pose.shape}")
    if not np.allclose(pose[:3, 1], (0.0, 0.0, -1.0), atol=1e-9) or abs(pose[2, 2]) > 1e-9:
        rotation = np.array2string(pose[:3, :3], precision=3)
        raise ValueError(f"the synthetic renderer takes level cameras only (yaw, no pitch or roll); got {rotation}")


def camera_rays(pose: np.ndarray, intrinsics: Intrinsics, width: int, height: int) -> Rays:
    """The pixel-centre rays of a level camera; t along them is the camera depth Z."""
    _check_level(pose)
    u = (np.arange(width) - intrinsics.cx) / intrinsics.fx
    v = (np.arange(height) - intrinsics.cy) / intrinsics.fy
    directions = pose[None, :2, 2] + u[:, None] * pose[None, :2, 0]
    return Rays(origin=pose[:3, 3].copy(), directions=directions, slopes=v, pixel_angle=1.0 / intrinsics.fx)


def velodyne_rays(pose: np.ndarray) -> Rays:
    """The scanner's beams × azimuths, scanner at the pose's centre; t is the horizontal range.

    Column c has azimuth (c + ½) · step counter-clockwise from the heading (Velodyne y = left), so
    no beam runs exactly sideways (Velodyne x = 0).
    """
    _check_level(pose)
    azimuths = (np.arange(int(round(2 * np.pi / VELODYNE_AZIMUTH_STEP))) + 0.5) * VELODYNE_AZIMUTH_STEP
    yaw = np.arctan2(pose[1, 2], pose[0, 2])
    directions = np.stack([np.cos(yaw + azimuths), np.sin(yaw + azimuths)], axis=1)
    slopes = -np.tan(VELODYNE_ELEVATIONS)
    return Rays(origin=pose[:3, 3].copy(), directions=directions, slopes=slopes, pixel_angle=0.0)


def _column_intervals(bounds: np.ndarray, rays: Rays) -> tuple[np.ndarray, ...]:
    """2-D slab test of every box footprint against every column: N×M t_in, t_out, entered-through-x."""
    d = rays.directions.copy()
    d[d == 0.0] = 1e-12
    inv = 1.0 / d
    ox, oy = rays.origin[0], rays.origin[1]
    tx0 = (bounds[:, 0:1] - ox) * inv[None, :, 0]
    tx1 = (bounds[:, 1:2] - ox) * inv[None, :, 0]
    ty0 = (bounds[:, 2:3] - oy) * inv[None, :, 1]
    ty1 = (bounds[:, 3:4] - oy) * inv[None, :, 1]
    tx_near, ty_near = np.minimum(tx0, tx1), np.minimum(ty0, ty1)
    t_in = np.maximum(tx_near, ty_near)
    t_out = np.minimum(np.maximum(tx0, tx1), np.maximum(ty0, ty1))
    return t_in, t_out, tx_near > ty_near


def _strips(rows: int, slopes: np.ndarray, size: int = STRIP):
    """Row slices of at most ``size`` rows that never straddle the horizon (slopes ascend; 0 counts as up)."""
    horizon = int(np.searchsorted(slopes, 0.0, side="right"))
    for lo, hi in ((0, horizon), (horizon, rows)):
        for start in range(lo, hi, size):
            yield slice(start, min(start + size, hi))


def cast(scene: Scene, rays: Rays, max_distance: float = 400.0) -> Hits:
    """Nearest hit of every ray against the boxes (within ``max_distance`` of the origin) and the ground."""
    h = rays.origin[2]
    bounds = scene.boxes.bounds
    near = np.hypot(
        np.maximum(np.maximum(bounds[:, 0] - rays.origin[0], rays.origin[0] - bounds[:, 1]), 0.0),
        np.maximum(np.maximum(bounds[:, 2] - rays.origin[1], rays.origin[1] - bounds[:, 3]), 0.0),
    ) < max_distance
    box_ids = np.flatnonzero(near)
    bounds = bounds[box_ids]
    k = rays.slopes.astype(np.float64)
    rows, cols = len(k), len(rays.directions)

    ground = k > 1e-9
    t_best = np.where(ground, h / np.where(ground, k, 1.0), np.inf).astype(np.float32)[:, None].repeat(cols, axis=1)
    face = np.where(ground, FACE_GROUND, FACE_SKY).astype(np.int8)[:, None].repeat(cols, axis=1)
    box = np.full((rows, cols), -1, np.int32)
    if len(bounds) == 0:
        return Hits(t_best, box, face)

    t_in, t_out, through_x = _column_intervals(bounds, rays)
    met = (t_in < t_out) & (t_out > 0.0)
    counts = met.sum(axis=0)
    layers = int(counts.max())
    order = np.argsort(np.where(met, t_in, np.inf), axis=0, kind="stable")[:layers]
    in_layer = np.arange(layers)[:, None] < counts[None, :]
    lay_in = np.where(in_layer, np.take_along_axis(t_in, order, 0), np.inf).astype(np.float32)
    lay_out = np.where(in_layer, np.take_along_axis(t_out, order, 0), -np.inf).astype(np.float32)
    wall_x = np.where(rays.directions[:, 0] > 0, FACE_NEG_X, FACE_POS_X)[None, :]
    wall_y = np.where(rays.directions[:, 1] > 0, FACE_NEG_Y, FACE_POS_Y)[None, :]
    lay_wall = np.where(np.take_along_axis(through_x, order, 0), wall_x, wall_y).astype(np.int8)
    lay_box = box_ids[order].astype(np.int32)
    lay_bottom = (h - bounds[order, 4]).astype(np.float32)  # how far below the origin the box's bottom is …
    lay_top = (h - bounds[order, 5]).astype(np.float32)  # … and its top
    # A box standing on the ground and tall enough to meet the steepest rising ray hides everything
    # behind it in its column: later layers of that column are dropped.
    steepest = max(-float(k.min()), 0.0)
    wall = in_layer & (bounds[order, 4] <= 0.0) & (bounds[order, 5] - h >= steepest * np.maximum(lay_in, 0.0))
    hidden_after = np.where(wall.any(axis=0), wall.argmax(axis=0) + 1, layers)
    counts = np.minimum(counts, hidden_after)
    layers = int(counts.max())

    inv_k = (1.0 / np.where(k == 0.0, -1e-12, k)).astype(np.float32)[:, None]  # level rays count as rising
    for rs in _strips(rows, k, CAST_STRIP):
        down = k[rs.start] > 0
        flat = np.int8(FACE_TOP if down else FACE_BOTTOM)
        strip_t, strip_face, strip_box, strip_inv_k = t_best[rs], face[rs], box[rs], inv_k[rs]
        enter_heights, leave_heights = (lay_top, lay_bottom) if down else (lay_bottom, lay_top)
        # how far a box may start and still be met by a row of the strip: before the ground (looking
        # down; the flattest row reaches farthest), below the box's top (looking up; likewise)
        flattest = float(k[rs.start] if down else -k[rs.stop - 1])
        for j in range(layers):
            if down:
                reach = np.float32(h / flattest)
            else:
                reach = np.maximum(-lay_top[j], 0.0) / np.float32(max(flattest, 1e-12))
            live = (counts > j) & (lay_in[j] <= reach)
            n_live = int(np.count_nonzero(live))
            if n_live == 0:
                continue
            idx = slice(None) if n_live > 0.6 * cols else np.flatnonzero(live)
            # the t-range over which the ray's height h − k·t lies inside the box's [z0, z1]
            enter_z = enter_heights[j, idx][None, :] * strip_inv_k
            leave_z = leave_heights[j, idx][None, :] * strip_inv_k
            t_enter = lay_in[j, idx][None, :]
            lo = np.maximum(t_enter, enter_z)
            best = strip_t[:, idx]
            hit = (lo <= np.minimum(lay_out[j, idx][None, :], leave_z)) & (lo > 0.0) & (lo < best)
            new_face = np.where(enter_z > t_enter, flat, lay_wall[j, idx][None, :])
            if isinstance(idx, slice):
                np.copyto(strip_t, lo, where=hit)
                np.copyto(strip_face, new_face, where=hit)
                np.copyto(strip_box, np.broadcast_to(lay_box[j][None, :], hit.shape), where=hit)
            else:
                strip_t[:, idx] = np.where(hit, lo, best)
                strip_face[:, idx] = np.where(hit, new_face, strip_face[:, idx])
                strip_box[:, idx] = np.where(hit, lay_box[j, idx][None, :], strip_box[:, idx])
    return Hits(t_best, box, face)


def _rows(rays: Rays, hits: Hits, rs: slice) -> tuple[Rays, Hits]:
    """The rays and hits of rows ``rs``."""
    rays = Rays(rays.origin, rays.directions, rays.slopes[rs], rays.pixel_angle)
    return rays, Hits(hits.t[rs], hits.box[rs], hits.face[rs])


def _material_tables(scene: Scene) -> dict:
    """Per-surface tables: rows 0…N−1 the boxes, then the road (N) and the sidewalk (N + 1)."""
    boxes = scene.boxes
    n = len(boxes)
    colour = np.concatenate([boxes.colour, scene.road_colour[None], scene.sidewalk_colour[None]]).astype(np.float32)
    # each box samples its tile from its own place (golden-ratio steps), so equal materials differ
    index = np.arange(n + 2)
    offsets = [np.where(index < n, np.mod(index * step, 1.0) * tex.TILE, 0.0).astype(np.float32)
               for step in (0.618034, 0.754878)]
    return {
        "tile": np.concatenate([boxes.tile, [tex.ASPHALT, tex.PAVING]]).astype(np.intp),
        "colour": [colour[:, c].copy() for c in range(3)],
        "offset_u": offsets[0],
        "offset_v": offsets[1],
        "windowed": np.concatenate([boxes.windows[:, 0] > 0, [False, False]]),
        "window_grid": _window_grid(boxes),
    }


def _window_grid(boxes) -> np.ndarray:
    """9 × 2N float32 window parameters per (box, wall orientation): see :func:`_windows`."""
    cell_w, cell_h, win_w, win_h, first = boxes.windows.T.astype(np.float64)
    safe_w, safe_h = np.where(cell_w > 0, cell_w, 1.0), np.where(cell_h > 0, cell_h, 1.0)
    per_box = [cell_w, 1.0 / safe_w, cell_h, 1.0 / safe_h, win_w, win_h, first, boxes.bounds[:, 5] - 0.6]
    origins = np.stack([boxes.bounds[:, 0], boxes.bounds[:, 2]], axis=1).ravel()  # y-facing walls, x-facing walls
    rows = [origins] + [np.repeat(values, 2) for values in per_box]
    return np.array(rows, np.float32)


def _hit_points(rays: Rays, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """R×M float32 world x, y, z of the points at ``t`` along the rays."""
    f32 = np.float32
    px = f32(rays.origin[0]) + t * rays.directions[None, :, 0].astype(f32)
    py = f32(rays.origin[1]) + t * rays.directions[None, :, 1].astype(f32)
    pz = f32(rays.origin[2]) - t * rays.slopes[:, None].astype(f32)
    return px, py, pz


def _surfaces(scene: Scene, hits: Hits, px: np.ndarray, py: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per-surface index (box i, road N, sidewalk N + 1, sky −1), the sidewalk mask and |y| − kerb."""
    f32 = np.float32
    is_ground = hits.face == FACE_GROUND
    if not is_ground.any():  # rows above the horizon
        return hits.box.astype(np.intp), is_ground, None
    beyond_kerb = np.abs(py) - f32(scene.road_half_width)
    cells = scene.side_street.shape[1]
    cell = np.clip(((px - f32(scene.x_start)) * f32(1.0 / SIDE_STREET_RESOLUTION)).astype(np.intp), 0, cells - 1)
    side_street = np.take(scene.side_street.ravel(), cell + (py < 0) * cells)
    sidewalk = is_ground & (beyond_kerb > 0) & ~side_street
    n_boxes = len(scene.boxes)
    surface = np.where(is_ground, n_boxes + sidewalk, hits.box).astype(np.intp)  # box is −1 for sky
    return surface, sidewalk, beyond_kerb


def _surface_albedo(
    scene: Scene, tables: dict, atlas: tex.Atlas, rays: Rays, hits: Hits
) -> tuple[np.ndarray, np.ndarray]:
    """3×R×M float32 albedo (planar; garbage where the ray sees the sky) and the R×M surface index.

    The rows are one strip of :func:`_strips`: all above or all below the horizon.
    """
    f32 = np.float32
    face = hits.face
    t = np.where(face == FACE_SKY, f32(0.0), hits.t)
    dx = rays.directions[None, :, 0].astype(f32)
    dy = rays.directions[None, :, 1].astype(f32)
    k = rays.slopes[:, None].astype(f32)
    px, py, pz = _hit_points(rays, t)

    is_ground = face == FACE_GROUND
    on_x_wall = face <= FACE_POS_X
    on_wall = face <= FACE_POS_Y
    a = px + on_x_wall * (py - px)  # surface coordinates: along the face …
    b = py + on_wall * (pz - py)  # … and up it (across, on horizontal faces)

    # footprint of one sample on the surface, stretched by the incidence angle
    adx, ady, ak = np.abs(dx), np.abs(dy), np.abs(k)
    norm_d = np.sqrt(dx * dx + dy * dy + k * k)
    facing = (ak + on_x_wall * (adx - ak) + (on_wall & ~on_x_wall) * (ady - ak)) / norm_d
    footprint = t * norm_d * f32(rays.pixel_angle) / np.sqrt(np.maximum(facing, f32(0.05)))
    log_footprint = np.log2(np.maximum(footprint, f32(1e-6)))

    surface, sidewalk, beyond_kerb = _surfaces(scene, hits, px, py)
    offset_u = np.take(tables["offset_u"], surface, mode="wrap")
    offset_v = np.take(tables["offset_v"], surface, mode="wrap")
    inv_texel = f32(1.0 / tex.TEXEL)
    tile = np.take(tables["tile"], surface, mode="wrap")
    lod = log_footprint - f32(np.log2(tex.TEXEL))
    detail = atlas.sample(tile, a * inv_texel + offset_u, offset_v - b * inv_texel, lod)
    # large-scale stains: the tile's finest features span 16 texels, so level 0 does not alias
    inv_stain = f32(1.0 / tex.CLOUDS_TEXEL)
    stain = atlas.sample_finest(tex.CLOUDS, a * inv_stain + offset_v, offset_u - b * inv_stain)
    shade = detail * (f32(0.7) + f32(0.3) * stain)
    albedo = np.empty((3, *shade.shape), f32)
    for c, colour in enumerate(tables["colour"]):
        np.multiply(np.take(colour, surface, mode="wrap"), shade, out=albedo[c])

    if beyond_kerb is not None:
        _ground_markings(scene, albedo, is_ground, sidewalk, px, py, beyond_kerb, footprint, detail)
    windowed = np.flatnonzero(on_wall & np.take(tables["windowed"], surface, mode="wrap"))
    if len(windowed):
        box = hits.box.ravel()[windowed]
        # walls facing ±x run along y: their window grid starts at the box's y0, the others' at x0
        grid = tables["window_grid"][:, box * 2 + on_x_wall.ravel()[windowed]]
        flat = albedo.reshape(3, -1)
        flat[:, windowed] = _windows(flat[:, windowed], grid, a.ravel()[windowed], pz.ravel()[windowed],
                                     footprint.ravel()[windowed], detail.ravel()[windowed])
    return albedo, surface


def _ground_markings(scene, albedo, is_ground, sidewalk, px, py, beyond_kerb, footprint, detail) -> None:
    """Kerb stones on the sidewalk's edge; dashed centre line and parking-strip lines on the road (in place)."""
    f32 = np.float32
    flat = albedo.reshape(3, -1)
    kerb = np.flatnonzero(sidewalk & (beyond_kerb < f32(0.18)))
    flat[:, kerb] = f32(0.62) * detail.ravel()[kerb]
    # paint: only pixels within reach of a stripe are worked on
    reach = f32(0.5) * footprint + f32(0.06)
    abs_py = np.abs(py)
    near = (abs_py < reach) if scene.centre_line else np.zeros_like(is_ground)
    if scene.parking_line > 0:
        near |= np.abs(abs_py - f32(scene.parking_line)) < reach
    near = np.flatnonzero(near & is_ground & ~sidewalk)
    if not len(near):
        return
    x, y_abs, foot = px.ravel()[near], abs_py.ravel()[near], footprint.ravel()[near]
    # metres inside the nearest stripe (negative: outside), box-filtered over the footprint
    inside = np.full_like(x, -np.inf)
    if scene.centre_line:
        phase = x - np.floor(x * f32(1 / 9.0)) * f32(9.0)  # 3 m dashes every 9 m
        inside = np.minimum(f32(1.5) - np.abs(phase - f32(1.5)), f32(0.06) - y_abs)
    if scene.parking_line > 0:
        inside = np.maximum(inside, f32(0.05) - np.abs(y_abs - f32(scene.parking_line)))
    paint = np.clip(inside / np.maximum(foot, f32(1e-6)) + f32(0.5), f32(0.0), f32(1.0))
    white = f32(0.78) + f32(0.12) * detail.ravel()[near]
    for c in range(3):
        channel = flat[c, near]
        flat[c, near] = channel + paint * (white - channel)


def _windows(albedo, grid, along, z, footprint, detail) -> np.ndarray:
    """A façade's window grid: light frames and dark glass, edges filtered over the footprint.

    ``albedo`` 3×n is changed in place and returned. ``grid`` rows: origin along the wall, cell
    width and its inverse, cell height and its inverse, window width, window height, first-floor
    height, top of the windowed band.
    """
    f32 = np.float32
    origin, cell_w, inv_cell_w, cell_h, inv_cell_h, win_w, win_h, first, top = grid
    along = along - origin
    zz = z - first
    column, floor = np.floor(along * inv_cell_w), np.floor(zz * inv_cell_h)
    across = f32(0.5) * win_w - np.abs(along - (column + f32(0.5)) * cell_w)
    up = f32(0.5) * win_h - np.abs(zz - (floor + f32(0.5)) * cell_h)
    # metres inside the nearest window (negative: outside), within the band of floors; a box filter
    # over the footprint turns it into coverage (the minimum approximates the rectangle's corners)
    inside = np.minimum(np.minimum(across, up), np.minimum(zz, top - z))
    near = np.flatnonzero(inside > f32(-0.08) - f32(0.5) * footprint)  # the rest is plain wall
    inside, detail, column, floor, origin = (x[near] for x in (inside, detail, column, floor, origin))
    inv_footprint = f32(1.0) / np.maximum(footprint[near], f32(1e-6))
    glass = np.clip(inside * inv_footprint + f32(0.5), f32(0.0), f32(1.0))
    frame = np.clip((inside + f32(0.08)) * inv_footprint + f32(0.5), f32(0.0), f32(1.0))
    frame_colour = f32(0.72) + f32(0.1) * detail
    # every window its own shade (blinds, reflections), so a façade's windows are not all alike and
    # stereo matching cannot slip by one window: a hash of the window's place on the wall
    random = np.sin(column * f32(12.9898) + floor * f32(78.233) + origin * f32(0.731)) * f32(43758.547)
    random -= np.floor(random)
    glass_shade = (f32(0.6) + f32(0.4) * detail) * (f32(0.4) + f32(3.0) * random * random)
    for c, tint in enumerate((0.1, 0.13, 0.17)):
        channel = albedo[c, near]
        channel += frame * (frame_colour - channel)
        channel += glass * (f32(tint) * glass_shade - channel)
        albedo[c, near] = channel
    return albedo


def _sky(atlas: tex.Atlas, rays: Rays) -> np.ndarray:
    """3×R×M sky colour, a function of the ray direction only (the sky is at infinity)."""
    f32 = np.float32
    dx, dy = rays.directions[:, 0], rays.directions[:, 1]
    rise = (-rays.slopes[:, None] / np.hypot(dx, dy)[None, :]).astype(f32)
    azimuth = np.broadcast_to(np.arctan2(dy, dx)[None, :].astype(f32), rise.shape)
    scale = f32(500.0)  # cloud texels per radian; the tile's finest features span 16 texels
    clouds = atlas.sample_finest(tex.CLOUDS, azimuth * scale, -rise * scale)
    height = np.clip(rise * f32(3.0), f32(0.0), f32(1.0))
    cover = np.clip((clouds - f32(1.05)) * f32(1.6), f32(0.0), f32(0.85))
    colours = []
    for horizon, zenith, cloud in zip((0.78, 0.84, 0.9), (0.42, 0.6, 0.86), (0.93, 0.93, 0.95)):
        blue = f32(horizon) + height * f32(zenith - horizon)
        colours.append(blue + cover * (f32(cloud) - blue))
    return np.stack(colours)


def shade(scene: Scene, atlas: tex.Atlas, rays: Rays, hits: Hits) -> tuple[np.ndarray, np.ndarray]:
    """R×M×3 uint8 colours of the hits and their R×M surface index (see :func:`_surfaces`)."""
    f32 = np.float32
    tables = _material_tables(scene)
    light = (AMBIENT + (1.0 - AMBIENT) * np.maximum(NORMALS @ scene.sun, 0.0)).astype(f32) * f32(EXPOSURE)
    rgb = np.empty((*hits.t.shape, 3), np.uint8)
    surface = np.empty(hits.t.shape, np.intp)
    for rs in _strips(len(rays.slopes), rays.slopes):
        strip_rays, strip_hits = _rows(rays, hits, rs)
        albedo, surface[rs] = _surface_albedo(scene, tables, atlas, strip_rays, strip_hits)
        colour = albedo * np.take(light, strip_hits.face.astype(np.intp))
        sky = strip_hits.face == FACE_SKY
        if sky.any():
            colour += sky * (_sky(atlas, strip_rays) * f32(EXPOSURE) - colour)
        rgb[rs] = cv2.convertScaleAbs(cv2.merge(list(colour)))  # rounds and saturates to 0…255
    return rgb, surface


def surface_reflectance(scene: Scene) -> np.ndarray:
    """Velodyne reflectance per surface index (boxes, road, sidewalk, then sky last so −1 picks 0).

    The luminance of the material's base albedo: what a scanner sees, without the colour texture.
    """
    colour = np.concatenate(
        [scene.boxes.colour, scene.road_colour[None], scene.sidewalk_colour[None], np.zeros((1, 3))]
    )
    return np.clip(colour @ np.array([0.299, 0.587, 0.114]), 0.0, 1.0).astype(np.float32)


def render_view(scene: Scene, pose: np.ndarray, intrinsics: Intrinsics, width: int, height: int) -> View:
    """Render camera ``pose`` (world-from-camera, level) at ``width`` × ``height``."""
    rays = camera_rays(pose, intrinsics, width, height)
    hits = cast(scene, rays)
    rgb, surface = shade(scene, tex.texture_atlas(scene.texture_seed), rays, hits)
    return View(rgb=rgb, depth=hits.t, surface=surface)


def render_frame(
    scene: Scene, pose: np.ndarray, intrinsics: Intrinsics, width: int, height: int
) -> tuple[np.ndarray, np.ndarray]:
    """(H×W×3 uint8 RGB, H×W float32 depth in metres with inf for sky) of one camera."""
    view = render_view(scene, pose, intrinsics, width, height)
    return view.rgb, view.depth


def velodyne_scan(scene: Scene, pose: np.ndarray, intrinsics: Intrinsics, view: View) -> np.ndarray:
    """N×4 float32 Velodyne points (x forward, y left, z up, reflectance) from camera 2's centre.

    Beams that fall inside camera 2's image (``view``, rendered from ``pose``) are moved to the
    nearest pixel centre (at most half a pixel, under the scanner's own angular step) and take that
    pixel's rendered depth: projected back, the scan lands on pixel centres and reproduces the
    rendered depth exactly. The others are cast. Sky gives no return, nor does anything beyond
    VELODYNE_MAX_RANGE.
    """
    rays = velodyne_rays(pose)
    hits = cast(scene, rays, max_distance=VELODYNE_MAX_RANGE + 5.0)
    reflectance = surface_reflectance(scene)
    sky = hits.face == FACE_SKY
    px, py, _ = _hit_points(rays, np.where(sky, np.float32(0.0), hits.t))
    surface, _, _ = _surfaces(scene, hits, px, py)
    azimuth = (np.arange(len(rays.directions)) + 0.5) * VELODYNE_AZIMUTH_STEP
    shape = hits.t.shape
    t = np.where(sky, 0.0, hits.t.astype(np.float64))
    cast_points = np.stack([
        np.where(sky, np.inf, t * np.cos(azimuth)[None, :]), t * np.sin(azimuth)[None, :], -t * rays.slopes[:, None],
        np.take(reflectance, surface),
    ], axis=-1)

    # beam direction → camera-2 pixel: x_cam = −y_velo, y_cam = −z_velo, z_cam = x_velo
    height, width = view.depth.shape
    cos_az = np.broadcast_to(np.cos(azimuth)[None, :], shape)
    in_front = cos_az > 0.05
    safe_cos = np.where(in_front, cos_az, 1.0)
    u = np.rint(intrinsics.cx - intrinsics.fx * np.sin(azimuth)[None, :] / safe_cos)
    v = np.rint(intrinsics.cy + intrinsics.fy * rays.slopes[:, None] / safe_cos)
    in_image = in_front & (u >= 0) & (u < width) & (v >= 0) & (v < height)
    pixel = np.where(in_image, v * width + u, 0).astype(np.int64)
    _, first = np.unique(pixel[in_image], return_index=True)
    keep = np.zeros(int(in_image.sum()), bool)
    keep[first] = True  # beams snapped onto an already used pixel would only repeat its point
    snapped = np.zeros(shape, bool)
    snapped[in_image] = keep

    u, v = np.where(in_image, u, 0).astype(np.int64), np.where(in_image, v, 0).astype(np.int64)
    z = view.depth[v, u].astype(np.float64)
    finite_z = np.where(np.isfinite(z), z, 0.0)
    snapped_points = np.stack([
        z, -finite_z * (u - intrinsics.cx) / intrinsics.fx, -finite_z * (v - intrinsics.cy) / intrinsics.fy,
        np.take(reflectance, view.surface[v, u]),
    ], axis=-1)
    points = np.where(snapped[..., None], snapped_points, cast_points)
    valid = np.where(in_image, snapped, True) & np.isfinite(points[..., 0])
    finite = np.where(valid[..., None], points[..., :3], 0.0)
    valid &= np.linalg.norm(finite, axis=-1) <= VELODYNE_MAX_RANGE
    return points[valid].astype(np.float32)
