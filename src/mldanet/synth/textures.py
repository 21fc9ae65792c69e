"""Procedural surface textures, fixed in world coordinates, packed with their mip levels in one atlas.

Each material is a seamless N×N single-channel "detail" tile (a multiplicative factor around 1)
made of several octaves of value noise plus its structure (paving slabs, bricks, concrete panels),
so that it carries detail from a centimetre to metres: SGM and photometric losses find texture at
640×192 as well as at 320×96. The renderer samples a tile at world coordinates divided by the
texel size (1 cm), trilinearly between mip levels chosen from the pixel's footprint on the
surface: minified detail is averaged instead of aliased, so two views of a point agree.

Atlas layout: one row band per tile, levels side by side (level 0 first), each level padded by
PAD texels copied from its opposite edge so that bilinear lookups wrap without a special case.
Two channels: level l itself, and level l + 1 enlarged to level l's grid, so that one lookup
returns both ends of a trilinear blend.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np

TILE = 1024  # texels per tile side
LEVELS = 8  # 1024 … 8 texels
PAD = 2
DETAIL_RANGE = 2.0  # detail factors are stored as uint8 over [0, DETAIL_RANGE)

ASPHALT, PAVING, BRICK, PLASTER, CONCRETE, METAL, CLOUDS = range(7)
TILE_NAMES = ("asphalt", "paving", "brick", "plaster", "concrete", "metal", "clouds")
# metres per texel of every tile but CLOUDS (sizes below are in texels and divide TILE: seamless)
TEXEL = 0.01
CLOUDS_TEXEL = 0.08  # the stain / cloud tile is sampled at this scale (an 82 m period)


@dataclass(frozen=True)
class Atlas:
    """uint8 2-channel atlas of every tile's mip chain; ``level_x[l]`` / ``tile_y[t]`` locate level l of tile t."""

    image: np.ndarray
    level_x: np.ndarray  # LEVELS float32: left edge of each level's padded block
    tile_y: np.ndarray  # tiles float32: top edge of each tile's band

    @cached_property
    def levels(self) -> np.ndarray:
        """Channel 0 alone (the levels themselves), for single-level lookups."""
        return np.ascontiguousarray(self.image[..., 0])

    def sample(self, tile: np.ndarray | int, u: np.ndarray, v: np.ndarray, lod: np.ndarray) -> np.ndarray:
        """Trilinear detail factor at level-0 texel coordinates ``u, v`` (float32 arrays of one shape).

        ``lod`` is log2 of the footprint in texels (clipped to the mip chain); ``tile`` a tile
        index per sample or one for all. A level-l texel covers 2^l level-0 texels, so level-0
        coordinate u sits at (u + 0.5) / 2^l − 0.5 in level l (texel centres at integers in both).
        """
        f32 = np.float32
        lod = np.clip(lod, f32(0.0), f32(LEVELS - 1))
        lower = np.minimum(lod.astype(np.intp), LEVELS - 2)
        frac = lod - lower
        inv_tile = f32(1.0 / TILE)
        um = u - np.floor(u * inv_tile) * f32(TILE) + f32(0.5)  # np.mod is several times slower
        vm = v - np.floor(v * inv_tile) * f32(TILE) + f32(0.5)
        top = self.tile_y + f32(PAD - 0.5)
        top = top[tile] if np.ndim(tile) == 0 else np.take(top, tile)
        left = self.level_x + f32(PAD - 0.5)
        scale = np.take(np.exp2(-np.arange(LEVELS, dtype=f32)), lower)
        both = cv2.remap(self.image, np.take(left, lower) + um * scale, top + vm * scale, cv2.INTER_LINEAR)
        fine = both[..., 0].astype(f32)
        return (fine + frac * (both[..., 1] - fine)) * f32(DETAIL_RANGE / 255.0)

    def sample_finest(self, tile: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Bilinear lookup at level 0 only: for tiles whose finest structure spans many texels."""
        f32 = np.float32
        inv_tile = f32(1.0 / TILE)
        x = u - np.floor(u * inv_tile) * f32(TILE) + f32(self.level_x[0] + PAD)
        y = v - np.floor(v * inv_tile) * f32(TILE) + f32(self.tile_y[tile] + PAD)
        return cv2.remap(self.levels, x, y, cv2.INTER_LINEAR) * f32(DETAIL_RANGE / 255.0)


def _periodic_cubic(n: int) -> np.ndarray:
    """TILE×n matrix interpolating a periodic lattice of n values onto TILE texels (Catmull-Rom)."""
    s = (np.arange(TILE) + 0.5) * (n / TILE) - 0.5
    j0 = np.floor(s).astype(np.int64)
    f = s - j0
    weights = (
        ((-f + 2.0) * f - 1.0) * f * 0.5,
        ((3.0 * f - 5.0) * f * f + 2.0) * 0.5,
        ((-3.0 * f + 4.0) * f + 1.0) * f * 0.5,
        (f - 1.0) * f * f * 0.5,
    )
    matrix = np.zeros((TILE, n))
    for offset, w in zip((-1, 0, 1, 2), weights):
        np.add.at(matrix, (np.arange(TILE), (j0 + offset) % n), w)
    return matrix.astype(np.float32)


def periodic_noise(rng: np.random.Generator, cell: int) -> np.ndarray:
    """TILE×TILE seamless value noise with lattice spacing ``cell`` texels, unit variance."""
    n = TILE // cell
    grid = rng.standard_normal((n, n), dtype=np.float32)
    if cell == 1:
        return grid
    if cell <= 32:
        # cv2's bicubic resize of the lattice padded by two wrapped cells (the kernel's reach) is
        # exactly periodic after the crop, and cheap while the padding stays small
        pad = 2
        big = cv2.resize(np.pad(grid, pad, mode="wrap"), ((n + 2 * pad) * cell,) * 2, interpolation=cv2.INTER_CUBIC)
        out = big[pad * cell : pad * cell + TILE, pad * cell : pad * cell + TILE]
    else:
        interpolate = _periodic_cubic(n)
        out = interpolate @ grid @ interpolate.T
    return out / max(float(out.std()), 1e-6)


def fbm(rng: np.random.Generator, cells: tuple[int, ...], slope: float) -> np.ndarray:
    """Sum of value-noise octaves with amplitude ∝ cell^slope, normalised to zero mean, unit std."""
    total = sum(periodic_noise(rng, c) * np.float32(c**slope) for c in cells)
    total -= total.mean()
    return total / max(float(total.std()), 1e-6)


def blocks(rng: np.random.Generator, width: int, height: int, stagger: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per-block random N(0, 1) values and the texel distance to the nearest block edge.

    Blocks are ``width`` × ``height`` texels; ``stagger`` shifts every other row of blocks by
    half a block (running bond).
    """
    values = rng.standard_normal((TILE // height, TILE // width), dtype=np.float32)
    per_texel = np.repeat(np.repeat(values, height, axis=0), width, axis=1)
    x = np.arange(TILE)
    edge_x = np.minimum(x % width, width - 1 - x % width)
    edge_y = np.minimum(x % height, height - 1 - x % height)
    odd_rows = (x // height) % 2 == 1
    edge_rows = np.broadcast_to(edge_x, (TILE, TILE)).copy()
    if stagger:
        per_texel[odd_rows] = np.roll(per_texel[odd_rows], -(width // 2), axis=1)
        edge_rows[odd_rows] = np.roll(edge_x, -(width // 2))
    return per_texel, np.minimum(edge_rows, edge_y[:, None]).astype(np.float32)


def make_tiles(seed: int) -> list[np.ndarray]:
    """The detail tiles (float32, factor around 1) in TILE_NAMES order."""
    rng = np.random.default_rng([seed, 0x7E47])
    fine = (1, 2, 4, 8, 16, 32, 64)
    tiles = []

    white = rng.standard_normal((TILE, TILE), dtype=np.float32)
    stones = cv2.GaussianBlur(((white > 2.0) * 1.0 - (white < -2.2) * 0.8).astype(np.float32), (3, 3), 0.7)
    tiles.append(1.0 + 0.16 * fbm(rng, fine, 0.45) + 0.6 * stones)  # asphalt: grain + chippings

    slab, edge = blocks(rng, 64, 64, stagger=True)  # 64 cm slabs
    joint = np.clip(edge / 1.5, 0.0, 1.0)
    tiles.append((1.0 + 0.12 * slab + 0.1 * fbm(rng, fine[:6], 0.5)) * (0.5 + 0.5 * joint))  # paving slabs

    brick, edge = blocks(rng, 32, 8, stagger=True)  # 32×8 cm bricks
    mortar = edge < 1.0
    bricks = 1.0 + 0.25 * brick + 0.1 * fbm(rng, fine[:5], 0.4)
    tiles.append(np.where(mortar, 1.35 + 0.05 * periodic_noise(rng, 1), bricks))  # brick, light mortar

    tiles.append(1.0 + 0.2 * fbm(rng, (1, 2, 4, 8, 16, 32, 64, 128, 256), 0.75))  # plaster with stains

    panel, edge = blocks(rng, 128, 64, stagger=False)  # 1.28×0.64 m panels
    pores = (periodic_noise(rng, 1) > 2.4) * -0.5
    concrete = 1.0 + 0.07 * panel + 0.13 * fbm(rng, fine, 0.55) + pores
    tiles.append(concrete * np.where(edge < 1.5, 0.6, 1.0))  # concrete panels with dark joints

    tiles.append(1.0 + 0.18 * fbm(rng, fine[:6], 0.6))  # painted metal, dirt
    tiles.append(1.0 + 0.45 * fbm(rng, (16, 32, 64, 128, 256, 512), 1.0))  # large-scale stains / clouds
    return [np.clip(t, 0.05, DETAIL_RANGE - 0.05).astype(np.float32) for t in tiles]


def _mip_chain(tile: np.ndarray) -> list[np.ndarray]:
    levels = [tile]
    for _ in range(LEVELS - 1):
        t = levels[-1]
        levels.append(0.25 * (t[0::2, 0::2] + t[1::2, 0::2] + t[0::2, 1::2] + t[1::2, 1::2]))
    return levels


def _enlarge(level: np.ndarray) -> np.ndarray:
    """A periodic level resampled bilinearly onto the grid of the level below it (twice the size)."""
    n = level.shape[0]
    big = cv2.resize(np.pad(level, 1, mode="wrap"), (2 * (n + 2),) * 2, interpolation=cv2.INTER_LINEAR)
    return big[2 : 2 + 2 * n, 2 : 2 + 2 * n]


def build_atlas(tiles: list[np.ndarray]) -> Atlas:
    widths = [TILE // 2**lev + 2 * PAD for lev in range(LEVELS)]
    level_x = np.concatenate([[0], np.cumsum(widths)[:-1]]).astype(np.float32)
    band = TILE + 2 * PAD
    image = np.zeros((band * len(tiles), int(sum(widths)), 2), np.uint8)
    for t, tile in enumerate(tiles):
        chain = _mip_chain(tile)
        for lev, level in enumerate(chain):
            coarser = _enlarge(chain[lev + 1]) if lev + 1 < LEVELS else level
            for channel, values in enumerate((level, coarser)):
                padded = np.pad(values, PAD, mode="wrap")
                x0, y0 = int(level_x[lev]), t * band
                image[y0 : y0 + padded.shape[0], x0 : x0 + padded.shape[1], channel] = np.clip(
                    np.rint(padded * (255.0 / DETAIL_RANGE)), 0, 255
                )
    return Atlas(image=image, level_x=level_x, tile_y=np.arange(len(tiles), dtype=np.float32) * band)


_ATLASES: dict[int, Atlas] = {}


def texture_atlas(seed: int) -> Atlas:
    """The atlas of ``seed``, built once per process (about a second)."""
    if seed not in _ATLASES:
        if len(_ATLASES) >= 2:
            _ATLASES.clear()
        _ATLASES[seed] = build_atlas(make_tiles(seed))
    return _ATLASES[seed]


def install_atlas(seed: int, atlas: Atlas) -> None:
    """Hand a worker process the atlas its parent built, instead of building it again."""
    _ATLASES[seed] = atlas
