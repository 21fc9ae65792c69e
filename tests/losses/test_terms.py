"""The loss-term registry: every term has its weight key, and a new term is one decorated function."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from mldanet.config import LossConfig
from mldanet.losses import LOSS_TERMS, build_loss_weighting, compute_losses, register_loss_term

from .test_total import make_batch


@pytest.mark.parametrize("name", list(LOSS_TERMS))
def test_every_term_has_its_weight(name):
    term = LOSS_TERMS[name]
    keys = {f.name for f in dataclasses.fields(LossConfig)}
    assert term.weight_key is None or term.weight_key in keys
    config = LossConfig()
    expected = 1.0 if term.weight_key is None else getattr(config, term.weight_key)
    assert build_loss_weighting(config).weights()[name] == pytest.approx(expected)
    if term.weight_key is not None:
        off = dataclasses.replace(config, **{term.weight_key: 0.0})
        assert name not in build_loss_weighting(off).weights()  # weight 0 switches it off


@pytest.mark.parametrize("name", list(LOSS_TERMS))
def test_every_term_is_logged_per_scale_and_combined(name):
    disps, batch, transforms = make_batch()
    config = LossConfig()
    result = compute_losses(disps, batch, transforms, config, build_loss_weighting(config), noise_seed=torch.arange(2))
    per_scale = [float(result.terms[f"{name}/{s}"]) for s in sorted(disps)]
    eq12 = sum(2.0 ** -(i + 1) / len(per_scale) * v for i, v in enumerate(per_scale))
    assert float(result.terms[name]) == pytest.approx(eq12, rel=1e-6)


def test_a_registered_term_joins_the_total():
    disps, batch, transforms = make_batch()
    config = LossConfig()
    seeds = torch.arange(2)
    before = compute_losses(disps, batch, transforms, config, build_loss_weighting(config), noise_seed=seeds)

    @register_loss_term("mean_disparity")
    def mean_disparity(inputs):
        return inputs.disp.mean()

    try:
        after = compute_losses(disps, batch, transforms, config, build_loss_weighting(config), noise_seed=seeds)
        means = [float(disps[s].detach().mean()) for s in sorted(disps)]
        eq12 = sum(2.0 ** -(i + 1) / len(means) * v for i, v in enumerate(means))
        assert float(after.terms["mean_disparity"]) == pytest.approx(eq12, rel=1e-6)
        assert after.total.item() == pytest.approx(before.total.item() + eq12, rel=1e-6)  # weight 1
        with pytest.raises(ValueError, match="already registered"):
            register_loss_term("mean_disparity")(mean_disparity)
    finally:
        LOSS_TERMS.pop("mean_disparity")
