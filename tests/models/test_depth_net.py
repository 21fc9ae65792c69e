"""Depth network: outputs, sizes, variants, gradient flow, input normalisation."""

from __future__ import annotations

import pytest
import torch
import torchvision

from mldanet.models import build_depth_net
from mldanet.models.attention import ChannelAttention, GlobalAttention, StructureAttention
from mldanet.models.encoder import ImageBranch


@pytest.fixture(scope="module")
def mlda_r18() -> torch.nn.Module:
    """One MLDA-Net R18 (eval mode) shared by the tests that only run it forward."""
    torch.manual_seed(0)
    return build_depth_net("resnet18", "mlda").eval()


def count(net: torch.nn.Module, kind: type) -> int:
    return sum(isinstance(m, kind) for m in net.modules())


def check_disparities(out: dict[int, torch.Tensor], batch: int, height: int, width: int, scales=(0, 1, 2, 3)) -> None:
    assert list(out) == list(scales)
    for s, disp in out.items():
        assert disp.shape == (batch, 1, height >> s, width >> s)
        assert disp.dtype == torch.float32 and torch.isfinite(disp).all()
        assert ((disp > 0) & (disp < 1)).all()


@pytest.mark.parametrize("variant", ["mlda", "baseline"])
def test_resnet18_outputs(variant: str, mlda_r18: torch.nn.Module) -> None:
    net = mlda_r18 if variant == "mlda" else build_depth_net("resnet18", variant).eval()
    assert (net.backbone, net.variant) == ("resnet18", variant)
    with torch.no_grad():
        check_disparities(net(torch.rand(2, 3, 64, 96)), 2, 64, 96)


@pytest.mark.parametrize("variant", ["mlda", "baseline"])
def test_resnet50_outputs_at_a_tiny_size(variant: str) -> None:
    torch.manual_seed(0)
    net = build_depth_net("resnet50", variant).eval()
    assert net.backbone == "resnet50"
    with torch.no_grad():
        check_disparities(net(torch.rand(1, 3, 32, 64)), 1, 32, 64)


@pytest.mark.parametrize("size", [(32, 32), (64, 96), (96, 320)])
def test_any_multiple_of_32_works(size: tuple[int, int], mlda_r18: torch.nn.Module) -> None:
    with torch.no_grad():
        check_disparities(mlda_r18(torch.rand(1, 3, *size)), 1, *size)


def test_other_sizes_and_shapes_are_refused_with_the_size() -> None:
    net = build_depth_net(variant="baseline")
    with pytest.raises(ValueError, match="input size 100×200 \\(H×W\\) must be multiples of 32"):
        net(torch.rand(1, 3, 100, 200))
    with pytest.raises(ValueError, match=r"B×3×H×W, got shape \(1, 1, 64, 64\)"):
        net(torch.rand(1, 1, 64, 64))


def test_bad_options_are_named() -> None:
    with pytest.raises(ValueError, match="variant='unet'"):
        build_depth_net(variant="unet")
    with pytest.raises(ValueError, match="backbone='resnet34'"):
        build_depth_net(backbone="resnet34")
    with pytest.raises(ValueError, match=r"scales=\(0, 5\)"):
        build_depth_net(scales=(0, 5))


def test_baseline_is_monodepth2_resnet_unet() -> None:
    net = build_depth_net("resnet18", "baseline")
    for kind in (ChannelAttention, GlobalAttention, StructureAttention, ImageBranch):
        assert count(net, kind) == 0
    # monodepth2's decoder, counted from its definition: two 3×3 convs per level, one head per scale.
    encoder, widths = (64, 64, 128, 256, 512), (16, 32, 64, 128, 256)
    decoder = 0
    for k in range(5):
        incoming = encoder[4] if k == 4 else widths[k + 1]
        fused = widths[k] + (encoder[k - 1] if k > 0 else 0)
        decoder += 9 * incoming * widths[k] + widths[k] + 9 * fused * widths[k] + widths[k]
    decoder += sum(9 * widths[s] + 1 for s in range(4))
    resnet = sum(p.numel() for name, p in torchvision.models.resnet18().named_parameters() if not name.startswith("fc"))
    assert sum(p.numel() for p in net.encoder.parameters()) == resnet
    assert sum(p.numel() for p in net.decoder.parameters()) == decoder


def test_decoder_attention_switch_removes_only_decoder_channel_attention(mlda_r18: torch.nn.Module) -> None:
    """The decoder's CA is off by default (the component study, RESULTS "Component ablation")."""
    full = build_depth_net("resnet18", "mlda", decoder_attention=True)
    lean = build_depth_net("resnet18", "mlda", decoder_attention=False)
    assert count(full, ChannelAttention) == 10 + 4  # two per GA level, one per decoder level k = 1..4
    assert count(lean, ChannelAttention) == 10 and count(lean.decoder, ChannelAttention) == 0
    assert count(lean, StructureAttention) == 5 and count(lean, GlobalAttention) == 5
    assert count(mlda_r18, ChannelAttention) == 10


@pytest.mark.parametrize("affinity", ["raw", "scaled", "cosine"])
def test_attention_affinity_reaches_every_channel_attention(affinity: str) -> None:
    net = build_depth_net(attention_affinity=affinity)
    assert {m.affinity for m in net.modules() if isinstance(m, ChannelAttention)} == {affinity}


def test_gradients_reach_every_parameter() -> None:
    torch.manual_seed(0)
    net = build_depth_net("resnet18", "mlda").train()
    out = net(torch.rand(2, 3, 32, 64))
    sum(d.mean() for d in out.values()).backward()
    missing = [name for name, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


def test_resnet50_reductions_receive_gradients() -> None:
    torch.manual_seed(0)
    net = build_depth_net("resnet50", "baseline").train()
    sum(d.mean() for d in net(torch.rand(2, 3, 32, 64)).values()).backward()
    reductions = [p for name, p in net.named_parameters() if name.startswith("encoder.reduce")]
    assert len(reductions) == 4 * 3  # levels 2–5: conv weight, BN weight and bias
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in reductions)


def test_structure_attention_maps_and_partial_scales() -> None:
    net = build_depth_net(scales=(1, 2)).eval()
    with torch.no_grad():
        disparities, maps = net(torch.rand(1, 3, 64, 96), return_attention=True)
    check_disparities(disparities, 1, 64, 96, scales=(1, 2))
    assert sorted(maps) == [1, 2, 3, 4]  # levels below the finest scale are not built
    for k, t in maps.items():
        assert t.shape == (1, 1, 64 >> (k + 1), 96 >> (k + 1)) and ((t > 0) & (t < 1)).all()
    assert "0" not in net.decoder.reduce and "0" not in net.decoder.fuse and "0" not in net.decoder.structure_attention
    baseline = build_depth_net(variant="baseline").eval()
    with torch.no_grad():
        assert baseline(torch.rand(1, 3, 64, 64), return_attention=True)[1] == {}


def test_input_is_normalised_inside() -> None:
    net = build_depth_net(variant="baseline").eval()
    seen = []
    net.encoder.register_forward_hook(lambda module, args, out: seen.append(args[0]))
    image = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        net(image)
    torch.testing.assert_close(seen[0], (image - 0.45) / 0.225)


def test_channels_last_gives_the_same_result() -> None:
    torch.manual_seed(0)
    net = build_depth_net().eval()
    image = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        expected = net(image)
        net = net.to(memory_format=torch.channels_last)
        out = net(image.contiguous(memory_format=torch.channels_last))
    for s in expected:
        torch.testing.assert_close(out[s], expected[s], atol=1e-4, rtol=1e-4)


def test_depth_net_from_config_follows_the_model_section():
    from mldanet.config import ModelConfig
    from mldanet.models import depth_net_from_config

    net = depth_net_from_config(ModelConfig(variant="baseline", scales=(0, 1)))
    assert (net.backbone, net.variant, tuple(net.scales)) == ("resnet18", "baseline", (0, 1))
    with_ca = depth_net_from_config(ModelConfig(decoder_attention=True))
    without_ca = depth_net_from_config(ModelConfig())
    assert sum(p.numel() for p in without_ca.parameters()) < sum(p.numel() for p in with_ca.parameters())


@pytest.mark.parametrize("variant", ["mlda", "baseline"])
def test_head_bias_sets_the_starting_disparity_of_every_scale(variant: str) -> None:
    torch.manual_seed(0)
    net = build_depth_net("resnet18", variant).eval()
    net.init_head_bias(-3.0)
    image = torch.rand(1, 3, 64, 96)
    random_heads = net(image)
    with torch.no_grad():
        for head in net.decoder.heads.values():
            head.weight.zero_()
    flat = net(image)
    for scale, disp in flat.items():
        # With the head weights at zero the output is the bias alone, at every pixel.
        assert torch.allclose(disp, torch.sigmoid(torch.tensor(-3.0)).expand_as(disp)), scale
        # With random weights the bias is the centre the random part scatters around.
        assert abs(torch.logit(random_heads[scale]).median().item() + 3.0) < 1.0, scale


def test_ablation_switches_remove_exactly_their_parts():
    """SA off and the multi-level features off (the component ablation's rows): those modules are
    gone, the rest is the full network's, and the output is still a disparity at every scale."""
    from mldanet.models import build_depth_net

    full = build_depth_net("resnet18", "mlda", decoder_attention=True)
    no_sa = build_depth_net("resnet18", "mlda", decoder_attention=True, structure_attention="none")
    single = build_depth_net("resnet18", "mlda", decoder_attention=True, multi_level=False)
    assert no_sa.decoder.structure_attention is None and no_sa.image_branch is not None
    assert single.image_branch is None and single.global_attention is None
    assert single.decoder.structure_attention is not None and single.decoder.channel_attention is not None
    full_names = set(full.state_dict())
    assert set(no_sa.state_dict()) == {n for n in full_names if ".structure_attention." not in n}
    assert set(single.state_dict()) == {n for n in full_names if not n.startswith(("image_branch.", "global_attention."))}
    image = torch.rand(1, 3, 64, 96)
    for net in (no_sa, single):
        disps, gates = net.eval()(image, return_attention=True)
        assert sorted(disps) == [0, 1, 2, 3] and all(((d > 0) & (d < 1)).all() for d in disps.values())
        assert bool(gates) is (net is single)


def test_the_network_is_built_from_its_config_and_options_are_config_fields():
    from mldanet.config import ModelConfig
    from mldanet.models import DepthNet, depth_net_from_config

    model = ModelConfig(backbone="resnet18", variant="mlda", structure_attention="none", multi_level=False, scales=(0, 2))
    net = DepthNet(model)
    assert net.image_branch is None and net.decoder.structure_attention is None and net.scales == (0, 2)
    torch.manual_seed(0)
    a = depth_net_from_config(model)
    torch.manual_seed(0)
    b = build_depth_net("resnet18", "mlda", structure_attention="none", multi_level=False, scales=(0, 2))
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    with pytest.raises(TypeError, match="structure_form"):
        build_depth_net(structure_form="residual")  # not a ModelConfig field
