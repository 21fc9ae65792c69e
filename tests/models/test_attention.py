"""Channel attention against a direct einsum reimplementation; softmax saturation; structure attention."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mldanet.models.attention import COSINE_TEMPERATURE, ChannelAttention, GlobalAttention, StructureAttention


def einsum_channel_attention(module: ChannelAttention, f: torch.Tensor) -> torch.Tensor:
    """CA(f) = softmax(M) H + H, written out from the formulas: M = Q Vᵀ, / sqrt(hw) when scaled,
    τ·cos(Q_i, V_j) with explicit norms when cosine."""
    c = module.channels
    weight = module.hqv.weight
    h_f, q_f, v_f = (F.conv2d(f, weight[i * c : (i + 1) * c], padding=1) for i in range(3))
    hw = f.shape[-2] * f.shape[-1]
    m = torch.einsum("bihw,bjhw->bij", q_f, v_f)
    if module.affinity == "scaled":
        m = m / math.sqrt(hw)
    if module.affinity == "cosine":
        norms = torch.einsum("bihw,bihw->bi", q_f, q_f).sqrt()[:, :, None] * torch.einsum("bjhw,bjhw->bj", v_f, v_f).sqrt()[:, None, :]
        m = COSINE_TEMPERATURE * m / norms
    theta = torch.softmax(m, dim=-1)
    return torch.einsum("bij,bjhw->bihw", theta, h_f) + h_f


@pytest.mark.parametrize("affinity", ["raw", "scaled", "cosine"])
def test_channel_attention_matches_einsum(affinity: str) -> None:
    torch.manual_seed(0)
    module = ChannelAttention(6, affinity=affinity).double()
    f = torch.randn(2, 6, 5, 7, dtype=torch.float64) * 0.3
    torch.testing.assert_close(module(f), einsum_channel_attention(module, f), rtol=1e-10, atol=1e-10)


def test_cosine_affinity_is_scale_invariant_and_bounded() -> None:
    """Growing features (×100) leave θ unchanged, so CA is linear in their scale; the dot-product
    forms' θ changes with the scale and saturates."""
    torch.manual_seed(8)
    f = realistic_features(16, 24, 40)
    rows = {}
    for affinity in ("cosine", "scaled"):
        module = ChannelAttention(16, affinity=affinity)
        with torch.no_grad():
            _, q, v = module.hqv(f).chunk(3, dim=1)
            small, large = module.attention(q, v), module.attention(100 * q, 100 * v)
            rows[affinity] = large.max(-1).values
            if affinity == "cosine":
                torch.testing.assert_close(small, large)
                torch.testing.assert_close(module(100 * f), 100 * module(f), rtol=1e-4, atol=1e-3)
    bound = math.exp(2 * COSINE_TEMPERATURE) / (math.exp(2 * COSINE_TEMPERATURE) + 15)
    assert rows["cosine"].max() <= bound + 1e-6
    assert rows["scaled"].min() > 0.999  # one-hot rows


def test_cosine_affinity_of_a_dead_channel_is_finite() -> None:
    module = ChannelAttention(4)
    f = torch.zeros(1, 4, 6, 6)
    out = module(f)
    assert torch.isfinite(out).all() and out.abs().max() == 0


def test_channel_attention_rejects_unknown_affinity() -> None:
    with pytest.raises(ValueError, match="'dot'.*cosine, scaled, raw"):
        ChannelAttention(4, affinity="dot")


def test_channel_attention_keeps_channels_last() -> None:
    torch.manual_seed(1)
    module = ChannelAttention(8)
    f = torch.randn(2, 8, 6, 10)
    expected = module(f)
    out = module(f.contiguous(memory_format=torch.channels_last))
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def realistic_features(channels: int, height: int, width: int) -> torch.Tensor:
    """BN + ReLU output (unit scale, as everywhere in the network) of a conv on a smooth image."""
    torch.manual_seed(2)
    image = F.interpolate(torch.rand(1, 3, height // 4, width // 4), size=(height, width), mode="bilinear")
    layer = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU())
    with torch.no_grad():
        return layer(image)


def test_softmax_saturates_without_the_scale_and_not_with_it() -> None:
    f = realistic_features(32, 48, 160)
    stats = {}
    for scale in (False, True):
        module = ChannelAttention(32, affinity="scaled" if scale else "raw")
        torch.manual_seed(3)
        nn.init.kaiming_uniform_(module.hqv.weight, a=math.sqrt(5))  # same weights for both
        with torch.no_grad():
            _, q, v = module.hqv(f).chunk(3, dim=1)
            theta = module.attention(q, v)
        torch.testing.assert_close(theta.sum(-1), torch.ones(1, 32))
        entropy = -(theta * theta.clamp_min(1e-30).log()).sum(-1)
        stats[scale] = (theta.max(-1).values, entropy)
    peak, entropy = stats[False]
    assert peak.mean() > 0.98 and entropy.mean() < 0.05  # rows are (nearly) one-hot
    peak, entropy = stats[True]
    assert peak.max() < 0.99 and entropy.mean() > 0.5


def test_global_attention_fuses_both_branches() -> None:
    torch.manual_seed(4)
    module = GlobalAttention(4).eval()
    a, b = torch.randn(2, 4, 6, 8), torch.randn(2, 4, 6, 8)
    out = module(a, b)
    assert out.shape == (2, 4, 6, 8) and (out >= 0).all()
    assert not torch.allclose(module(a, torch.randn(2, 4, 6, 8)), out)
    assert not torch.allclose(module(torch.randn(2, 4, 6, 8), b), out)


@pytest.mark.parametrize("form", ["guided", "residual"])
def test_structure_attention_keeps_structure_of_high_resolution_features(form: str) -> None:
    """Where f_l = α·f'_l + β per channel, the filter (λ → 0) returns α·f_h + β whatever the gate;
    the residual form mixes it into f_h with its γ: f_h + γ(α·f_h + β − f_h)."""
    torch.manual_seed(5)
    module = StructureAttention(3, eps=1e-9, form=form)
    high = torch.rand(2, 3, 16, 20)
    alpha, beta = torch.tensor([1.5, -2.0, 0.5]).view(1, 3, 1, 1), torch.tensor([0.2, 0.0, -1.0]).view(1, 3, 1, 1)
    low = alpha * F.avg_pool2d(high, 2) + beta
    out, attention = module(low, high)
    assert attention.shape == (2, 1, 8, 10) and ((attention > 0) & (attention < 1)).all()
    filtered = alpha * high + beta
    expected = filtered if form == "guided" else high + module.gamma.detach() * (filtered - high)
    torch.testing.assert_close(out, expected, atol=2e-3, rtol=2e-3)


def test_seed_form_fits_the_high_resolution_guide_from_the_low_features() -> None:
    """Eq. 8 as written: f'_l ≈ a·f_l + b; where f'_l = α·f_l + β exactly, the output is α·f_h + β."""
    torch.manual_seed(6)
    module = StructureAttention(2, eps=1e-9, form="seed")
    low = torch.rand(1, 2, 8, 10)
    alpha, beta = torch.tensor([2.0, -0.5]).view(1, 2, 1, 1), torch.tensor([0.3, 1.0]).view(1, 2, 1, 1)
    # f_h whose 2×2 means are α·f_l + β: each low pixel repeated, so avg_pool2d returns it.
    high = F.interpolate(alpha * low + beta, scale_factor=2.0, mode="nearest")
    out, _ = module(low, high)
    torch.testing.assert_close(out, alpha * high + beta, atol=2e-3, rtol=2e-3)


def force_gate_logits(module: StructureAttention, logit: float) -> None:
    with torch.no_grad():
        module.psi.weight.zero_()
        module.psi.bias.fill_(logit)


def spatial_std(x: torch.Tensor) -> torch.Tensor:
    """Per-channel standard deviation over the pixels, averaged over batch and channels."""
    return x.flatten(2).std(-1).mean()


@pytest.mark.parametrize("logit", [-50.0, 50.0])
def test_residual_structure_attention_survives_saturated_gates(logit: float) -> None:
    torch.manual_seed(7)
    module = StructureAttention(4, form="residual")
    force_gate_logits(module, logit)
    low = torch.randn(2, 4, 8, 12)
    high = torch.randn(2, 4, 16, 24, requires_grad=True)
    out, gate = module(low, high)
    assert torch.all(gate == (0.0 if logit < 0 else 1.0)) or torch.all((gate < 1e-20) | (gate > 1 - 1e-6))
    # Still the features' structure: (nearly) f_h's spatial spread, not a flat map.
    assert spatial_std(out) > 0.8 * spatial_std(high)
    upstream = torch.randn_like(out)
    (out * upstream).sum().backward()
    assert high.grad is not None
    # ∂out/∂f_h ⊇ (1 − γ)·identity: most of the upstream gradient reaches f_h.
    assert torch.linalg.vector_norm(high.grad) > 0.5 * torch.linalg.vector_norm(upstream)
    assert module.gamma.grad is not None and module.gamma.grad.abs().sum() > 0


def test_guided_form_goes_flat_when_its_gate_closes() -> None:
    """The risk of the default form, which the residual form removes: with T = 0 every weight is 0,
    the fit is flat and passes no gradient (the collapse check in docs/METHOD.md §10 row 8 found no
    run where it happened)."""
    torch.manual_seed(7)
    module = StructureAttention(4, form="guided")
    force_gate_logits(module, -50.0)
    high = torch.randn(2, 4, 16, 24, requires_grad=True)
    out, _ = module(torch.randn(2, 4, 8, 12), high)
    assert spatial_std(out) < 1e-6
    out.sum().backward()
    assert high.grad.abs().max() < 1e-12


def passed_variance(out: torch.Tensor, high: torch.Tensor) -> float:
    """Share of f_h's spatial variance that the output carries: Σ_c β_c²·var_c(f_h) / Σ_c var_c(f_h),
    β_c the per-channel least-squares slope of the output on f_h (1 for out = f_h, α for α·f_h + noise)."""
    o = out.double().flatten(2)
    h = high.double().flatten(2)
    o, h = o - o.mean(-1, keepdim=True), h - h.mean(-1, keepdim=True)
    var_h = (h * h).sum(-1)
    beta = (o * h).sum(-1) / var_h
    return float((beta * beta * var_h).sum() / var_h.sum())


def structure_attention_passing(form: str, decoder_norm: str = "group") -> dict[int, float]:
    """passed_variance at every decoder level of a freshly initialised MLDA-Net on a textured image."""
    from mldanet.models import build_depth_net

    torch.manual_seed(0)
    net = build_depth_net(structure_attention=form, decoder_norm=decoder_norm).train()
    passed: dict[int, float] = {}
    for key, module in net.decoder.structure_attention.items():
        module.register_forward_hook(
            lambda m, args, result, k=int(key): passed.__setitem__(k, passed_variance(result[0], args[1]))
        )
    image = F.interpolate(torch.rand(2, 3, 24, 32), size=(96, 128), mode="bilinear") * 0.7 + 0.3 * torch.rand(2, 3, 96, 128)
    with torch.no_grad():
        net(image)
    return passed


@pytest.mark.parametrize("decoder_norm", ["group", "none"])
def test_residual_structure_attention_is_open_at_initialisation(decoder_norm: str) -> None:
    passed = structure_attention_passing("residual", decoder_norm)
    assert sorted(passed) == [0, 1, 2, 3, 4]
    assert min(passed.values()) >= 0.5, passed


def test_replacing_structure_attention_is_nearly_shut_at_initialisation() -> None:
    """Why the default form learns slowly at first: where a skip connection joins (levels 1–4) the
    guided form of earlier releases (unnormalised decoder) lets little of f_h through (measured
    2.6e-2, 4.6e-5, 2.0e-6, 7.3e-8 at levels 4..1; level 0, without a skip, is f_l upsampled and
    passes). With the GroupNorm decoder it is 0.16, 2.0e-2, 1.3e-3, 7.8e-4: shut below level 4."""
    passed = structure_attention_passing("guided", "none")
    assert max(passed[k] for k in (1, 2, 3, 4)) < 0.1, passed
    passed = structure_attention_passing("guided", "group")
    assert max(passed[k] for k in (1, 2, 3)) < 0.1 and passed[4] < 0.5, passed


def test_structure_attention_rejects_unknown_forms_and_weights() -> None:
    with pytest.raises(ValueError, match="'gated'.*residual, guided, seed"):
        StructureAttention(3, form="gated")
    with pytest.raises(ValueError, match="min_weight=0"):
        StructureAttention(3, min_weight=0.0)


def test_two_by_two_mean_is_bilinear_half_resolution() -> None:
    x = torch.rand(1, 2, 8, 12)
    torch.testing.assert_close(
        F.avg_pool2d(x, 2), F.interpolate(x, scale_factor=0.5, mode="bilinear", align_corners=False)
    )


def test_structure_attention_rejects_mismatched_sizes() -> None:
    with pytest.raises(ValueError, match=r"\(1, 3, 16, 18\).*\(1, 3, 8, 10\)"):
        StructureAttention(3)(torch.rand(1, 3, 8, 10), torch.rand(1, 3, 16, 18))
