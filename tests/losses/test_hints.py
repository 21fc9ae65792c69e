"""Depth-hint error, mask and proxy loss."""

from __future__ import annotations

import math

import pytest
import torch

from mldanet.data.kitti import NORMALISED_K
from mldanet.geometry import scale_intrinsics
from mldanet.losses.hints import INVALID_PENALTY, hint_error, hint_loss, hint_mask

K_NORM = torch.from_numpy(NORMALISED_K).float()


def stereo_pair(height: int = 8, width: int = 32, shift: int = 3):
    """A target and its stereo partner for a fronto-parallel scene at the depth giving ``shift`` px."""
    K = scale_intrinsics(K_NORM, height, width).expand(1, 4, 4)
    target = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(0))
    partner = torch.roll(target, shifts=shift, dims=-1)
    T = torch.eye(4).repeat(1, 1, 1)
    T[:, 0, 3] = 0.1
    depth = K[0, 0, 0].item() * 0.1 / shift
    return target, partner, K, torch.linalg.inv(K), T, depth


def test_hint_error_is_low_for_the_true_depth_and_penalised_where_invalid():
    target, partner, K, inv_K, T, depth = stereo_pair()
    width = target.shape[-1]
    hint = torch.full((1, 1, 8, width), depth)
    valid = torch.ones_like(hint)
    valid[..., :4] = 0
    hint[..., :4] = 0  # invalid pixels carry depth 0
    hint[..., 12:16] = depth * 3  # a wrong hint
    err = hint_error(target, partner, hint, valid, K, inv_K, T)
    assert torch.isfinite(err).all()
    assert (err[..., :4] >= INVALID_PENALTY).all()
    assert err[..., 5:11].max() < 1e-5  # the true depth reproduces the target exactly
    assert err[..., 13:15].min() > 0.05


def test_hint_mask_picks_the_hint_only_where_it_beats_both():
    hint_err = torch.tensor([[[[0.1, 0.1, 0.1, 1000.0]]]])
    prediction = torch.tensor([[[[0.2, 0.05, 0.2, 0.2]]]])
    identity = torch.tensor([[[[0.3, 0.3, 0.08, 0.3]]]])
    assert hint_mask(hint_err, prediction, identity).tolist() == [[[[True, False, False, False]]]]
    assert hint_mask(hint_err, prediction).tolist() == [[[[True, False, True, False]]]]


def test_hint_loss_is_the_mean_log_error_over_masked_pixels():
    depth = torch.tensor([[[[1.0, 2.0, 5.0, 9.0]]]], requires_grad=True)
    hint = torch.tensor([[[[2.0, 2.0, 1.0, 0.0]]]])
    mask = torch.tensor([[[[True, True, True, False]]]])
    loss = hint_loss(depth, hint, mask)
    assert loss.item() == pytest.approx((math.log(2) + 0 + math.log(5)) / 3, rel=1e-6)
    loss.backward()
    # d/dd log(1 + |d − h|) = sign(d − h)/(1 + |d − h|), divided by the 3 masked pixels; unmasked: 0
    assert depth.grad.flatten().tolist() == pytest.approx([-1 / 6, 0.0, 1 / 15, 0.0], abs=1e-6)
    assert hint_loss(depth, hint, torch.zeros_like(mask)).item() == 0.0


def test_hint_error_rejects_a_hint_of_the_wrong_size():
    target, partner, K, inv_K, T, _ = stereo_pair()
    with pytest.raises(ValueError, match=r"depth hint \(1, 1, 4, 16\)"):
        hint_error(target, partner, torch.ones(1, 1, 4, 16), torch.ones(1, 1, 4, 16), K, inv_K, T)
