"""Augmentation draws (reproducible, right distribution) and colour jitter against closed forms."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest
import torch

from mldanet.data.augment import ColorJitter, augmentation_rng, color_jitter, sample_augmentation


def test_draw_depends_only_on_seed_epoch_index():
    draw = lambda *key: sample_augmentation(augmentation_rng(*key))  # noqa: E731
    assert draw(0, 3, 17) == draw(0, 3, 17)
    draws = [draw(0, 0, i) for i in range(4000)]
    assert len({draw(s, e, 5) for s in range(3) for e in range(20)}) > 20  # seed and epoch matter
    flips = np.mean([d.flip for d in draws])
    jitters = [d.jitter for d in draws if d.jitter is not None]
    assert flips == pytest.approx(0.5, abs=0.03)
    assert len(jitters) / len(draws) == pytest.approx(0.5, abs=0.03)
    # flip and jitter are drawn independently
    assert np.mean([d.flip for d in draws if d.jitter is not None]) == pytest.approx(0.5, abs=0.04)
    for name, low, high in (
        ("brightness", 0.8, 1.2),
        ("contrast", 0.8, 1.2),
        ("saturation", 0.8, 1.2),
        ("hue", -0.1, 0.1),
    ):
        values = np.array([getattr(j, name) for j in jitters])
        assert values.min() >= low and values.max() <= high
        assert values.min() < low + 0.01 and values.max() > high - 0.01
    assert {j.order for j in jitters} and all(sorted(j.order) == [0, 1, 2, 3] for j in jitters)


def test_hue_shift_matches_colorsys():
    rng = np.random.default_rng(1)
    pixels = rng.uniform(0.05, 0.95, (3, 4, 5)).astype(np.float32)
    shifted = color_jitter(torch.from_numpy(pixels), ColorJitter(hue=0.07)).numpy()
    for y in range(4):
        for x in range(5):
            h, s, v = colorsys.rgb_to_hsv(*pixels[:, y, x])
            np.testing.assert_allclose(shifted[:, y, x], colorsys.hsv_to_rgb((h + 0.07) % 1.0, s, v), atol=1e-4)


def test_brightness_contrast_saturation_closed_forms():
    rng = np.random.default_rng(2)
    image = torch.from_numpy(rng.uniform(0.1, 0.6, (3, 6, 7)).astype(np.float32))
    np.testing.assert_allclose(color_jitter(image, ColorJitter(brightness=1.15)), (image * 1.15).clamp(0, 1), atol=1e-6)
    grey = 0.299 * image[0] + 0.587 * image[1] + 0.114 * image[2]
    expected = (0.85 * image + 0.15 * grey.mean()).clamp(0, 1)
    np.testing.assert_allclose(color_jitter(image, ColorJitter(contrast=0.85)), expected, atol=1e-4)
    expected = (1.2 * image + (1 - 1.2) * grey).clamp(0, 1)
    np.testing.assert_allclose(color_jitter(image, ColorJitter(saturation=1.2)), expected, atol=1e-4)
    torch.testing.assert_close(color_jitter(image, ColorJitter()), image, atol=1e-6, rtol=0)


def test_one_draw_for_all_frames_equals_per_frame_application():
    rng = np.random.default_rng(3)
    frames = torch.from_numpy(rng.uniform(0, 1, (4, 3, 8, 9)).astype(np.float32))
    jitter = ColorJitter(brightness=0.9, contrast=1.1, saturation=0.85, hue=-0.05, order=(3, 1, 0, 2))
    together = color_jitter(frames, jitter)
    for i in range(4):
        np.testing.assert_allclose(together[i], color_jitter(frames[i], jitter), atol=1e-6)
    # the order matters (brightness clamps before contrast sees the image, hue is nonlinear)
    assert not torch.allclose(together, color_jitter(frames, ColorJitter(0.9, 1.1, 0.85, -0.05, (0, 1, 2, 3))))


def test_matches_torchvision_color_jitter_ops():
    import torchvision.transforms.functional as TF

    rng = np.random.default_rng(4)
    frames = torch.from_numpy(rng.uniform(0, 1, (2, 3, 10, 12)).astype(np.float32))
    jitter = ColorJitter(brightness=1.12, contrast=0.83, saturation=1.18, hue=0.08, order=(2, 0, 3, 1))
    reference = frames
    steps = {
        0: lambda x: TF.adjust_brightness(x, 1.12),
        1: lambda x: TF.adjust_contrast(x, 0.83),
        2: lambda x: TF.adjust_saturation(x, 1.18),
        3: lambda x: TF.adjust_hue(x, 0.08),
    }
    for i in jitter.order:
        reference = steps[i](reference)
    torch.testing.assert_close(color_jitter(frames, jitter), reference, atol=1e-4, rtol=0)
