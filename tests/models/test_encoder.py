"""The backbone registry: every backbone gives five levels that the branch reduces to LEVEL_CHANNELS."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mldanet.models.encoder import BACKBONES, LEVEL_CHANNELS, BackboneBranch, register_backbone


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_every_backbone_gives_five_levels(name):
    torch.manual_seed(0)
    branch = BackboneBranch(name).eval()
    image = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        raw = branch.resnet(image)
        levels = branch(image)
    assert [tuple(x.shape[1:]) for x in raw] == [(c, 64 >> i, 96 >> i) for i, c in enumerate(branch.resnet.channels, 1)]
    assert [tuple(x.shape[1:]) for x in levels] == [(c, 64 >> i, 96 >> i) for i, c in enumerate(LEVEL_CHANNELS, 1)]
    for have, want, reduce in zip(branch.resnet.channels, LEVEL_CHANNELS, branch.reduce):
        assert isinstance(reduce, nn.Identity) == (have == want)


def test_a_registered_backbone_is_built_by_name():
    class Pyramid(nn.Module):
        """Average-pooled copies of the image, 3 → C channels by repetition: a backbone without weights."""

        channels = (64, 64, 128, 256, 512)

        def forward(self, x):
            return [nn.functional.avg_pool2d(x, 2**i).repeat(1, c // 3 + 1, 1, 1)[:, :c] for i, c in enumerate(self.channels, 1)]

    register_backbone("pyramid_test")(lambda pretrained, weights_path: Pyramid())
    try:
        branch = BackboneBranch("pyramid_test")
        image = torch.rand(1, 3, 32, 64)
        levels = branch(image)
        torch.testing.assert_close(levels[0][:, :3], nn.functional.avg_pool2d(image, 2))
        with pytest.raises(ValueError, match="model.backbone='nope' is not one of .*pyramid_test"):
            BackboneBranch("nope")
    finally:
        BACKBONES.pop("pyramid_test")
