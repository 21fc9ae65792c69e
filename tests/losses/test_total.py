"""compute_losses against a second, loop-by-loop implementation written from docs/METHOD.md §7."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import mldanet.losses.hints as hints_module
import mldanet.losses.total as total_module
from mldanet.config import LossConfig
from mldanet.data.kitti import NORMALISED_K
from mldanet.geometry import disp_to_depth, pose_to_matrix, scale_intrinsics, warp
from mldanet.losses import build_loss_weighting, compute_losses
from mldanet.losses.photometric import photometric_error
from mldanet.losses.reprojection import add_tie_noise
from mldanet.losses.smoothness import edge_aware_smoothness
from mldanet.types import Batch

K_NORM = torch.from_numpy(NORMALISED_K).float()
SCALES = (0, 1, 2, 3)


def make_batch(size: int = 2, height: int = 32, width: int = 64, hints: bool = True, seed: int = 0, flat: bool = False):
    generator = torch.Generator().manual_seed(seed)
    frames = (0, -1, 1, "s")
    if flat:
        images = {f: torch.full((size, 3, height, width), 0.4) for f in frames}
    else:
        images = {f: torch.rand(size, 3, height, width, generator=generator) for f in frames}
    K = torch.stack([scale_intrinsics(K_NORM, height // 2**s, width // 2**s) for s in SCALES]).expand(size, 4, 4, 4)
    stereo_T = torch.eye(4).repeat(size, 1, 1)
    stereo_T[:, 0, 3] = -0.1
    batch = Batch(
        images=images, net_images=images, K=K, inv_K=torch.linalg.inv(K), stereo_T=stereo_T, index=torch.arange(size)
    )
    if hints:
        batch.hint_mask = (torch.rand(size, 1, height, width, generator=generator) > 0.3).float()
        batch.depth_hint = (torch.rand(size, 1, height, width, generator=generator) * 20 + 0.5) * batch.hint_mask
    rotations = torch.randn(2, size, 3, generator=generator) * 0.01
    translations = torch.randn(2, size, 3, generator=generator) * 0.1
    transforms = {
        -1: pose_to_matrix(rotations[0], translations[0], invert=True),
        1: pose_to_matrix(rotations[1], translations[1]),
        "s": stereo_T,
    }
    disps = {
        s: torch.rand(size, 1, height // 2**s, width // 2**s, generator=generator).mul(0.3).add(0.01).requires_grad_()
        for s in SCALES
    }
    return disps, batch, transforms


def reference_terms(disps, batch, transforms, config, seeds):
    """docs/METHOD.md §7 written out per source and per scale, masks as depth-hints' three-way argmin."""
    target = batch.images[0]
    height, width = target.shape[-2:]
    K, inv_K = batch.K[:, 0], batch.inv_K[:, 0]
    sources = list(transforms)
    identity = torch.cat([photometric_error(batch.images[f], target) for f in sources], dim=1)
    identity_min = add_tie_noise(identity, seeds).min(1, keepdim=True).values
    hint_err = None
    if batch.depth_hint is not None:
        hinted = warp(batch.images["s"], batch.depth_hint, K, inv_K, transforms["s"])
        hint_err = photometric_error(hinted, target) + 1000 * (1 - batch.hint_mask)
    terms = {}
    for s in SCALES:
        up = F.interpolate(disps[s], size=(height, width), mode="bilinear", align_corners=False)
        depth = disp_to_depth(up, 0.1, 100.0)[1]
        warped = [warp(batch.images[f], depth, K, inv_K, transforms[f]) for f in sources]
        errors = torch.cat([photometric_error(image, target) for image in warped], 1)
        prediction_min = errors.min(1, keepdim=True).values
        candidates = [prediction_min, identity_min] + ([hint_err] if hint_err is not None else [])
        winner = torch.cat(candidates, 1).argmin(1, keepdim=True)
        keep = (winner != 1).float()
        terms[f"reprojection/{s}"] = (prediction_min * keep).sum() / (keep.sum() + 1e-7)
        if hint_err is not None:
            use = (winner == 2).float()
            terms[f"hints/{s}"] = (torch.log(1 + (depth - batch.depth_hint).abs()) * use).sum() / (use.sum() + 1e-7)
        small_target = F.avg_pool2d(target, 2**s) if s else target
        terms[f"smoothness/{s}"] = edge_aware_smoothness(disps[s], small_target)
    return terms


@pytest.mark.parametrize("hints", [True, False])
def test_terms_match_the_reference_and_combine_by_eq12(hints):
    disps, batch, transforms = make_batch(hints=hints)
    config = LossConfig(hints_weight=0.6, smoothness_weight=1e-3)
    seeds = torch.tensor([101, 202])
    result = compute_losses(disps, batch, transforms, config, build_loss_weighting(config), noise_seed=seeds)
    expected = reference_terms(disps, batch, transforms, config, seeds)
    for name, value in expected.items():
        assert result.terms[name].item() == pytest.approx(value.item(), rel=1e-4, abs=1e-6), name
    names = ("reprojection", "hints", "smoothness") if hints else ("reprojection", "smoothness")
    assert not any(k.startswith("hints") for k in result.terms) or hints
    eq12 = [1 / 8, 1 / 16, 1 / 32, 1 / 64]
    weights = {"reprojection": 1.0, "hints": 0.6, "smoothness": 1e-3}
    for name in names:
        combined = sum(w * result.terms[f"{name}/{s}"] for w, s in zip(eq12, SCALES))
        assert result.terms[name].item() == pytest.approx(combined.item(), rel=1e-6)
        assert result.terms[f"weight/{name}"].item() == pytest.approx(weights[name])
    for s in SCALES:
        assert result.terms[f"total/{s}"].item() == pytest.approx(
            sum(weights[n] * result.terms[f"{n}/{s}"].item() for n in names), rel=1e-6
        )
    assert result.total.item() == pytest.approx(sum(weights[n] * result.terms[n].item() for n in names), rel=1e-6)


def test_backward_reaches_every_scale_and_the_poses():
    disps, batch, transforms = make_batch()
    axisangle = torch.full((2, 3), 0.01, requires_grad=True)
    transforms[1] = pose_to_matrix(axisangle, torch.full((2, 3), 0.05))
    config = LossConfig(weighting="uncertainty")
    weighting = build_loss_weighting(config)
    result = compute_losses(disps, batch, transforms, config, weighting)
    assert torch.isfinite(result.total)
    result.total.backward()
    for s in SCALES:
        assert torch.isfinite(disps[s].grad).all() and disps[s].grad.abs().sum() > 0
    assert axisangle.grad.abs().sum() > 0
    assert all(s.grad is not None for s in weighting.log_vars.values())
    assert {"log_var/reprojection", "log_var/hints", "log_var/smoothness"} <= set(result.terms)


def test_prediction_independent_work_is_done_once_per_batch(monkeypatch):
    calls = {"pe": 0, "warp": 0, "hint_pe": 0, "hint_warp": 0}

    def counting(name, fn):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return fn(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(total_module, "photometric_error", counting("pe", total_module.photometric_error))
    monkeypatch.setattr(total_module, "warp", counting("warp", total_module.warp))
    monkeypatch.setattr(hints_module, "photometric_error", counting("hint_pe", hints_module.photometric_error))
    monkeypatch.setattr(hints_module, "warp", counting("hint_warp", hints_module.warp))
    disps, batch, transforms = make_batch()
    config = LossConfig()
    compute_losses(disps, batch, transforms, config, build_loss_weighting(config))
    # one identity call for all sources, then one warp and one error call per scale for all sources
    assert calls == {"pe": 1 + len(SCALES), "warp": len(SCALES), "hint_pe": 1, "hint_warp": 1}


def test_the_true_depth_explains_a_stereo_pair_better():
    height, width, shift = 32, 64, 4
    _, batch, _ = make_batch(height=height, width=width, hints=False)
    target = batch.images[0]
    batch.images["s"] = torch.roll(target, shifts=-shift, dims=-1)  # stereo_T x = −0.1: partner shifted left
    fx = batch.K[0, 0, 0, 0].item()
    config = LossConfig(use_hints=False)

    def reprojection_for(depth: float) -> float:
        disp = (1 / depth - 1 / 100.0) / (1 / 0.1 - 1 / 100.0)
        disps = {0: torch.full((2, 1, height, width), disp)}
        result = compute_losses(disps, batch, {"s": batch.stereo_T}, config, build_loss_weighting(config))
        return result.terms["reprojection/0"].item()

    true_depth = fx * 0.1 / shift
    # only the 4 columns the partner does not see (sampled from the clamped border) stay wrong
    assert reprojection_for(true_depth) < 0.03
    assert reprojection_for(true_depth) < 0.2 * min(reprojection_for(true_depth * 2), reprojection_for(true_depth / 2))


def test_automask_off_keeps_every_pixel():
    """Without automasking the reprojection term is the plain mean of the per-pixel minimum over the
    warped sources (written out here with the geometry and photometric functions)."""
    disps, batch, transforms = make_batch(hints=False)
    config = LossConfig(automask=False, use_hints=False)
    result = compute_losses(disps, batch, transforms, config, build_loss_weighting(config))
    target = batch.images[0]
    depth = disp_to_depth(disps[0], 0.1, 100.0)[1]
    errors = torch.cat(
        [photometric_error(warp(batch.images[f], depth, batch.K[:, 0], batch.inv_K[:, 0], T), target) for f, T in transforms.items()], 1
    )
    expected = errors.min(1).values.mean()
    assert result.terms["reprojection/0"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_hints_without_the_stereo_transform_are_an_error():
    disps, batch, transforms = make_batch()
    config = LossConfig()
    del transforms["s"]
    with pytest.raises(ValueError, match=r"transforms\['s'\].*loss.use_hints=false"):
        compute_losses(disps, batch, transforms, config, build_loss_weighting(config))
    off = LossConfig(use_hints=False)
    result = compute_losses(disps, batch, transforms, off, build_loss_weighting(off))
    assert not any(name.startswith("hints") for name in result.terms)


def test_bad_inputs_name_the_value_at_fault():
    disps, batch, transforms = make_batch()
    config = LossConfig()
    weighting = build_loss_weighting(config)
    with pytest.raises(ValueError, match="at least one disparity"):
        compute_losses({}, batch, transforms, config, weighting)
    with pytest.raises(ValueError, match=r"transform for frame 1 has shape \(4, 4\)"):
        compute_losses(disps, batch, {**transforms, 1: torch.eye(4)}, config, weighting)
    with pytest.raises(ValueError, match="source frame 2"):
        compute_losses(disps, batch, {**transforms, 2: transforms[1]}, config, weighting)
    with pytest.raises(ValueError, match=r"disparity of scale 1 must be B×1×h×w with B=2, got \(2, 16, 32\)"):
        compute_losses({**disps, 1: disps[1][:, 0]}, batch, transforms, config, weighting)
    batch.hint_mask = None
    with pytest.raises(ValueError, match="hint_mask"):
        compute_losses(disps, batch, transforms, config, weighting)
