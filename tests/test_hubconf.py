"""``hubconf.py``: ``torch.hub.load`` from the local clone, installed or not."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mldanet.config import Config
from mldanet.models import build_depth_net
from mldanet.models.checkpoint import load_depth_net
from mldanet.training.checkpoint import save_checkpoint

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    config = Config()
    config.model.variant = "baseline"
    config.model.weights_init = "scratch"
    config.data.height, config.data.width = 64, 128
    torch.manual_seed(0)
    net = build_depth_net("resnet18", "baseline", pretrained=False)
    payload = {"config": config.to_dict(), "depth_net": net.state_dict(), "pose_net": None, "step": 0, "epoch": 0}
    return save_checkpoint(payload, tmp_path_factory.mktemp("ckpt") / "baseline.pt")


def test_hub_load_with_a_checkpoint_gives_its_network(checkpoint):
    net = torch.hub.load(str(REPO), "mldanet", source="local", checkpoint=str(checkpoint))
    reference, _ = load_depth_net(checkpoint)
    assert not net.training
    image = torch.rand(2, 3, 64, 128, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out, expected = net(image), reference(image)
    assert sorted(out) == [0, 1, 2, 3]
    for scale in out:
        torch.testing.assert_close(out[scale], expected[scale], rtol=0, atol=0)


def test_hub_load_without_a_checkpoint_builds_the_named_network():
    net = torch.hub.load(str(REPO), "mldanet", source="local", variant="baseline", scales=(0,))
    reference = build_depth_net("resnet18", "baseline", scales=(0,))
    assert sum(p.numel() for p in net.parameters()) == sum(p.numel() for p in reference.parameters())
    with torch.no_grad():
        assert list(net(torch.rand(1, 3, 32, 64))) == [0]
    with pytest.raises(ValueError, match="architecture comes from its config"):
        torch.hub.load(str(REPO), "mldanet", source="local", checkpoint="x.pt", backbone="resnet50")


def test_hub_load_from_a_clone_that_is_not_installed(checkpoint):
    script = f"""
import importlib.util, sys
from pathlib import Path
src = Path({str(REPO / "src")!r}).resolve()
sys.path[:] = [p for p in sys.path if not p or Path(p).resolve() != src]
assert importlib.util.find_spec("mldanet") is None, "mldanet is still importable"
import torch
net = torch.hub.load({str(REPO)!r}, "mldanet", source="local", checkpoint={str(checkpoint)!r})
print(type(net).__module__, tuple(net(torch.rand(1, 3, 64, 128))[0].shape))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd="/")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["mldanet.models.depth_net", "(1,", "1,", "64,", "128)"]
