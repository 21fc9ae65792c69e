"""Texture tiles and their mip-mapped atlas: seamless tiles, exact lookups, box-filtered levels."""

from __future__ import annotations

import numpy as np
import pytest

from mldanet.synth import textures as tex

QUANTUM = tex.DETAIL_RANGE / 255.0  # the atlas stores uint8


@pytest.fixture(scope="module")
def tiles():
    return tex.make_tiles(0)


@pytest.fixture(scope="module")
def atlas():
    return tex.texture_atlas(0)


def test_tiles_are_seamless(tiles):
    """The wrap-around seam looks like the tile's inner lines of the same phase of every block pattern."""
    period = 128  # a multiple of every block size and row stagger
    for name, tile in zip(tex.TILE_NAMES, tiles):
        for axis in (0, 1):
            t = np.moveaxis(tile, axis, 0)
            seam = np.abs(t[0] - t[-1]).mean()
            inner = [np.abs(t[k] - t[k - 1]).mean() for k in range(period, tex.TILE, period)]
            assert 0.5 * min(inner) <= seam <= 1.5 * max(inner), (name, axis, seam, inner)


def test_level_zero_lookup_returns_the_texels(tiles, atlas):
    rng = np.random.default_rng(1)
    u = rng.integers(0, tex.TILE, (20, 30)).astype(np.float32)
    v = rng.integers(0, tex.TILE, (20, 30)).astype(np.float32)
    for t, tile in enumerate(tiles):
        got = atlas.sample(t, u, v, np.zeros_like(u))
        np.testing.assert_allclose(got, tile[v.astype(int), u.astype(int)], atol=0.51 * QUANTUM + 1e-6)


def test_lookups_wrap_around_the_tile(atlas):
    rng = np.random.default_rng(2)
    u = rng.uniform(0, tex.TILE, (16, 16)).astype(np.float32)
    v = rng.uniform(0, tex.TILE, (16, 16)).astype(np.float32)
    lod = rng.uniform(0, tex.LEVELS - 1, (16, 16)).astype(np.float32)
    base = atlas.sample(tex.BRICK, u, v, lod)
    moved = atlas.sample(tex.BRICK, u + np.float32(3 * tex.TILE), v - np.float32(7 * tex.TILE), lod)
    np.testing.assert_allclose(moved, base, atol=2 * QUANTUM)


@pytest.mark.parametrize("level", [1, 3, 5])
def test_mip_level_is_the_mean_of_the_texels_it_covers(tiles, atlas, level):
    """At lod = l, the centre of a 2^l-texel block reads that block's mean (a box-filtered pyramid)."""
    size = 2**level
    rng = np.random.default_rng(level)
    i = rng.integers(0, tex.TILE // size, 50)
    j = rng.integers(0, tex.TILE // size, 50)
    centre_u = (j * size + (size - 1) / 2).astype(np.float32)[None]
    centre_v = (i * size + (size - 1) / 2).astype(np.float32)[None]
    tile = tiles[tex.PAVING]
    expected = np.array([tile[a * size : (a + 1) * size, b * size : (b + 1) * size].mean() for a, b in zip(i, j)])
    got = atlas.sample(tex.PAVING, centre_u, centre_v, np.full_like(centre_u, level))
    np.testing.assert_allclose(got[0], expected, atol=QUANTUM)
