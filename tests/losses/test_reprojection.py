"""Minimum reprojection, automasking and the per-sample tie noise."""

from __future__ import annotations

import pytest
import torch

from mldanet.data.kitti import NORMALISED_K
from mldanet.geometry import pose_to_matrix, scale_intrinsics, warp
from mldanet.losses.photometric import photometric_error
from mldanet.losses.reprojection import TIE_NOISE, add_tie_noise, masked_mean, min_reprojection

K_NORM = torch.from_numpy(NORMALISED_K).float()


def test_min_reprojection_picks_the_smallest_error_and_masks_where_identity_wins():
    reprojection = torch.tensor([[[[0.3, 0.5]], [[0.2, 0.9]]]])  # B=1, S=2, H=1, W=2
    identity = torch.tensor([[[[0.4, 0.1]], [[0.6, 0.8]]]])
    best = min_reprojection(reprojection, identity)
    assert torch.equal(best.loss, torch.tensor([[[[0.2, 0.5]]]]))
    assert torch.equal(best.identity, torch.tensor([[[[0.4, 0.1]]]]))
    assert torch.equal(best.automask, torch.tensor([[[[True, False]]]]))
    assert torch.equal(best.index, torch.tensor([[[[1, 2]]]]))  # source 1; identity of source 0 (S + 0)


def test_without_identity_every_pixel_is_kept():
    reprojection = torch.rand(2, 3, 4, 5)
    best = min_reprojection(reprojection)
    assert best.identity is None and best.automask.all()
    assert torch.equal(best.loss, reprojection.min(1, keepdim=True).values)


def test_automasking_selects_the_identity_on_a_static_scene():
    height, width = 8, 24
    generator = torch.Generator().manual_seed(0)
    target = torch.rand(2, 3, height, width, generator=generator)
    sources = torch.stack([target, target])  # nothing moved: the unwarped sources are the target
    K = scale_intrinsics(K_NORM, height, width).expand(2, 4, 4)
    depth = torch.full((2, 1, height, width), 2.0)
    # the network wrongly believes the camera moved, so its warped sources differ from the target
    translations = (torch.tensor([[0.05, 0.0, 0.0]] * 2), torch.tensor([[0.0, 0.03, 0.1]] * 2))
    wrong = torch.stack([pose_to_matrix(torch.zeros(2, 3), t) for t in translations])
    warped = warp(sources, depth, K, torch.linalg.inv(K), wrong)
    reprojection = photometric_error(warped, target).squeeze(2).transpose(0, 1)
    identity = add_tie_noise(photometric_error(sources, target).squeeze(2).transpose(0, 1), torch.tensor([1, 2]))
    best = min_reprojection(reprojection, identity)
    assert not best.automask.any()
    assert (best.index >= 2).all()
    assert best.identity.abs().max() < 10 * TIE_NOISE


def test_tie_noise_depends_only_on_the_sample_seed():
    zeros = torch.zeros(3, 2, 4, 5)
    batch = add_tie_noise(zeros, torch.tensor([11, 12, 13]))
    alone = add_tie_noise(zeros[:1], torch.tensor([12]))
    assert torch.equal(batch[1], alone[0])
    assert not torch.equal(batch[0], batch[1])
    noise = add_tie_noise(torch.zeros(1, 1, 100, 100), torch.tensor([5])) / TIE_NOISE
    assert abs(noise.std().item() - 1) < 0.05 and abs(noise.mean().item()) < 0.05


def test_tie_noise_without_seeds_uses_the_global_generator():
    torch.manual_seed(7)
    first = add_tie_noise(torch.zeros(2, 1, 3, 3))
    torch.manual_seed(7)
    assert torch.equal(first, add_tie_noise(torch.zeros(2, 1, 3, 3)))
    assert first.abs().max() < 10 * TIE_NOISE


def test_bad_inputs_name_the_mismatch():
    with pytest.raises(ValueError, match="3 seeds for batch 2"):
        add_tie_noise(torch.zeros(2, 1, 3, 3), torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match=r"\(1, 2, 3, 3\).*\(1, 3, 3, 3\)"):
        min_reprojection(torch.zeros(1, 3, 3, 3), torch.zeros(1, 2, 3, 3))


def test_masked_mean_is_the_mean_over_masked_pixels():
    values = torch.tensor([[1.0, 2.0], [3.0, 10.0]])
    mask = torch.tensor([[True, False], [True, False]])
    assert masked_mean(values, mask).item() == pytest.approx(2.0)
    assert masked_mean(values, torch.zeros_like(mask)).item() == 0.0
