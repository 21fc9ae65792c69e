"""Pose network: outputs, the ×0.01 output scale, and the 6-channel conv1 built from 3-channel weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

from mldanet.models import build_pose_net


def test_outputs_are_the_scaled_spatial_mean_of_the_last_conv() -> None:
    torch.manual_seed(0)
    net = build_pose_net().eval()
    last = []
    net.pose[-1].register_forward_hook(lambda module, args, out: last.append(out))
    first, second = torch.rand(2, 3, 64, 96), torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        axisangle, translation = net(first, second)
    assert axisangle.shape == (2, 3) and translation.shape == (2, 3)
    raw = last[0].mean(dim=(2, 3))
    torch.testing.assert_close(axisangle, 0.01 * raw[:, :3])
    torch.testing.assert_close(translation, 0.01 * raw[:, 3:])
    assert axisangle.abs().max() < 0.01 and translation.abs().max() < 0.01  # near-identity poses at init
    assert net.encoder.conv1.weight.shape == (64, 6, 7, 7)


def test_pretrained_conv1_is_duplicated_and_halved(tmp_path: Path) -> None:
    torch.manual_seed(0)
    resnet = torchvision.models.resnet18().eval()
    path = tmp_path / "resnet18.pth"
    torch.save(resnet.state_dict(), path)
    net = build_pose_net(weights_path=path).eval()
    w = resnet.conv1.weight.detach()
    torch.testing.assert_close(net.encoder.conv1.weight.detach(), torch.cat((w, w), dim=1) / 2)
    torch.testing.assert_close(net.encoder.layer3[1].conv2.weight, resnet.layer3[1].conv2.weight)
    # Hence the pair (x, x) gives the ImageNet features of x.
    x = torch.rand(1, 3, 64, 64)
    normalised = (x - 0.45) / 0.225
    with torch.no_grad():
        expected = resnet.layer4(resnet.layer3(resnet.layer2(resnet.layer1(resnet.maxpool(
            resnet.relu(resnet.bn1(resnet.conv1(normalised))))))))
        features = net.encoder(torch.cat((normalised, normalised), dim=1))[-1]
    torch.testing.assert_close(features, expected, atol=1e-5, rtol=1e-5)


def test_mismatched_frames_are_refused() -> None:
    net = build_pose_net()
    with pytest.raises(ValueError, match=r"\(1, 3, 64, 64\) and \(1, 3, 64, 96\)"):
        net(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 96))
