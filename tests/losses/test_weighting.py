"""Eq. 12 multi-scale weights and the fixed / uncertainty term weighting."""

from __future__ import annotations

import math

import pytest
import torch

from mldanet.config import LossConfig
from mldanet.losses.weighting import LossWeighting, build_loss_weighting, multiscale_sum, multiscale_weights

WEIGHTS = {"reprojection": 1.0, "hints": 0.5, "smoothness": 1e-3}


def test_eq12_weights():
    assert multiscale_weights(4) == [1 / 8, 1 / 16, 1 / 32, 1 / 64]
    assert multiscale_weights(1) == [0.5]
    total = multiscale_sum([torch.tensor(1.0), torch.tensor(2.0), torch.tensor(4.0), torch.tensor(8.0)])
    assert total.item() == pytest.approx((1 / 2 + 2 / 4 + 4 / 8 + 8 / 16) / 4)
    with pytest.raises(ValueError, match="n=0"):
        multiscale_weights(0)


def losses_of(theta: torch.Tensor) -> dict[str, torch.Tensor]:
    """Three terms depending differently on a stand-in 'network' parameter."""
    return {"reprojection": (theta**2).sum(), "hints": theta.sum().exp(), "smoothness": (3 * theta).abs().sum()}


def test_fixed_weighting_is_the_weighted_sum():
    theta = torch.tensor([0.3, -0.2])
    total = LossWeighting(WEIGHTS)(losses_of(theta))
    expected = sum(WEIGHTS[k] * v for k, v in losses_of(theta).items())
    assert total.item() == pytest.approx(expected.item())


def test_uncertainty_equals_fixed_at_initialisation_in_value_and_gradient():
    values, grads = [], []
    for mode in ("fixed", "uncertainty"):
        theta = torch.tensor([0.3, -0.2], requires_grad=True)
        total = LossWeighting(WEIGHTS, mode)(losses_of(theta))
        total.backward()
        values.append(total.item())
        grads.append(theta.grad.clone())
    assert values[0] == pytest.approx(values[1], rel=1e-6)
    assert torch.allclose(grads[0], grads[1])


@pytest.mark.parametrize("weight_range", [math.inf, 10.0])
def test_log_variance_gradient_is_one_minus_weighted_loss(weight_range):
    """∂L/∂s = 1 − exp(−s)·L; bounded, s = s0 + b·tanh((r − s0)/b) adds the chain factor 1 − tanh²."""
    weighting = LossWeighting(WEIGHTS, "uncertainty", weight_range=weight_range)
    with torch.no_grad():
        weighting.log_vars["hints"].add_(0.4)
    losses = {"reprojection": torch.tensor(0.2), "hints": torch.tensor(3.0), "smoothness": torch.tensor(5.0)}
    weighting(losses).backward()
    b = math.log(weight_range)
    for name, r in weighting.log_vars.items():
        s0 = -math.log(WEIGHTS[name])
        s = s0 + b * math.tanh((r.item() - s0) / b) if math.isfinite(b) else r.item()
        chain = 1 - math.tanh((r.item() - s0) / b) ** 2 if math.isfinite(b) else 1.0
        assert r.grad.item() == pytest.approx((1 - math.exp(-s) * losses[name].item()) * chain, rel=1e-5)
        assert weighting.log_variances()[name].item() == pytest.approx(s, rel=1e-6)
    expected_shift = 0.4 if math.isinf(b) else b * math.tanh(0.4 / b)
    assert weighting.weights()["hints"] == pytest.approx(0.5 * math.exp(-expected_shift), rel=1e-6)


def test_learned_weights_stay_within_their_range():
    """However far the raw parameters run (the smoothness term's balance point is ~1e4), the weights
    stay within [w/range, w·range], and the gradient still points back (never exactly 0)."""
    weighting = LossWeighting(WEIGHTS, "uncertainty", weight_range=10.0)
    with torch.no_grad():
        weighting.log_vars["smoothness"].sub_(30.0)  # towards weight 1e-3·e^30
        weighting.log_vars["reprojection"].add_(30.0)  # towards weight e^-30
    weights = weighting.weights()
    assert weights["smoothness"] == pytest.approx(1e-2, rel=1e-4)
    assert weights["reprojection"] == pytest.approx(0.1, rel=1e-4)
    assert weights["hints"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="weight_range=1.0"):
        LossWeighting(WEIGHTS, "uncertainty", weight_range=1.0)


def test_absent_and_switched_off_terms_are_skipped():
    weighting = LossWeighting({"reprojection": 1.0, "hints": 0.0, "smoothness": 0.1}, "uncertainty")
    assert set(weighting.log_vars) == {"reprojection", "smoothness"}
    assert set(weighting.weights()) == {"reprojection", "smoothness"}
    total = weighting({"reprojection": torch.tensor(2.0), "hints": torch.tensor(100.0)})
    assert total.item() == pytest.approx(2.0)


def test_parameters_and_state_only_in_uncertainty_mode():
    assert list(LossWeighting(WEIGHTS).parameters()) == []
    learned = LossWeighting(WEIGHTS, "uncertainty")
    assert len(list(learned.parameters())) == 3
    copy = LossWeighting(WEIGHTS, "uncertainty")
    with torch.no_grad():
        learned.log_vars["reprojection"].fill_(1.5)
    copy.load_state_dict(learned.state_dict())
    assert copy.weights()["reprojection"] == pytest.approx(math.exp(-math.log(10) * math.tanh(1.5 / math.log(10))))


def test_build_from_config():
    config = LossConfig(hints_weight=0.7, smoothness_weight=2e-3, weighting="uncertainty")
    weighting = build_loss_weighting(config)
    assert weighting.mode == "uncertainty"
    assert weighting.weights() == pytest.approx({"reprojection": 1.0, "hints": 0.7, "smoothness": 2e-3})
    with pytest.raises(ValueError, match=r"loss.smoothness_weight=-1"):
        build_loss_weighting(LossConfig(smoothness_weight=-1.0))


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="'adaptive'"):
        LossWeighting(WEIGHTS, "adaptive")
    with pytest.raises(ValueError, match="'depth'"):
        LossWeighting({"depth": 1.0})
    with pytest.raises(ValueError, match="hints=nan"):
        LossWeighting({"hints": float("nan")})
    with pytest.raises(ValueError, match="'photo'"):
        LossWeighting(WEIGHTS)({"photo": torch.tensor(1.0)})
