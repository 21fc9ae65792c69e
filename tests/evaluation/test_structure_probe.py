"""The structure-attention probe: γ, feature change per level, disparity change with SA off."""

from __future__ import annotations

import pytest
import torch

from mldanet.evaluation.structure_probe import probe_structure_attention, structure_attention_off, structure_modules
from mldanet.models import build_depth_net


def residual_net(seed: int = 0) -> DepthNet:
    torch.manual_seed(seed)
    return build_depth_net("resnet18", "mlda", structure_attention="residual").eval()


def images() -> torch.Tensor:
    torch.manual_seed(1)
    return torch.rand(2, 3, 64, 96)


def test_sa_off_is_the_network_built_without_sa():
    net = residual_net()
    without = build_depth_net("resnet18", "mlda", structure_attention="none").eval()
    missing, unexpected = without.load_state_dict(net.state_dict(), strict=False)
    assert not missing and all(".structure_attention." in k for k in unexpected) and unexpected
    with torch.no_grad(), structure_attention_off(net):
        off = net(images())
        reference = without(images())
    for scale in reference:
        torch.testing.assert_close(off[scale], reference[scale], rtol=0, atol=0)
    with torch.no_grad():  # the hooks are gone after the block
        assert not torch.equal(net(images())[0], off[0])


def test_feature_change_matches_a_float64_recomputation_of_each_level():
    net = residual_net()
    inputs: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # the first pass (SA on); the probe's second has SA off

    def capture(level: int):
        def hook(_module, args, _out) -> None:
            inputs.setdefault(level, tuple(a.clone() for a in args))

        return hook

    handles = [m.register_forward_hook(capture(k)) for k, m in structure_modules(net).items()]
    probe = probe_structure_attention(net, images())
    for handle in handles:
        handle.remove()
    assert [level.level for level in probe.levels] == sorted(structure_modules(net))
    for level in probe.levels:
        module = structure_modules(net)[level.level]
        for dtype, tolerance in ((torch.float32, 1e-5), (torch.float64, 1e-2)):  # the guided filter's variances cancel in float32
            low, high = (t.to(dtype) for t in inputs[level.level])
            with torch.no_grad():
                refined = module.to(dtype)(low, high)[0]
            expected = ((refined - high).flatten(1).norm(dim=1) / high.flatten(1).norm(dim=1)).mean()
            assert level.feature_change == pytest.approx(float(expected), rel=tolerance)
        module.float()
        assert level.feature_change > 0
        assert level.gamma_mean == pytest.approx(0.1) and level.gamma_min == level.gamma_max == pytest.approx(0.1)


def test_gamma_zero_means_sa_changes_nothing_and_larger_gamma_changes_more():
    net = residual_net()
    before = probe_structure_attention(net, images())
    with torch.no_grad():
        for module in structure_modules(net).values():
            module.gamma.zero_()
    zero = probe_structure_attention(net, images())
    assert all(level.feature_change == 0 for level in zero.levels)
    assert zero.disparity_change_off == 0
    with torch.no_grad():
        for module in structure_modules(net).values():
            module.gamma.fill_(0.5)
    half = probe_structure_attention(net, images())
    assert half.disparity_change_off > before.disparity_change_off > 0
    assert half.levels[0].gamma_mean == pytest.approx(0.5)


def test_replacing_forms_have_no_gamma_and_networks_without_sa_no_probe():
    torch.manual_seed(0)
    guided = probe_structure_attention(build_depth_net("resnet18", "mlda", structure_attention="guided"), images())
    assert all(level.gamma_mean is None for level in guided.levels)
    assert all(level.feature_change > 0 for level in guided.levels)
    assert probe_structure_attention(build_depth_net("resnet18", "baseline"), images()) is None
    assert probe_structure_attention(build_depth_net("resnet18", "mlda", structure_attention="none"), images()) is None
