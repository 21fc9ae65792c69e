"""Backbone weights: torchvision's weights API through the torch.hub cache, local files, and the offline error."""

from __future__ import annotations

import os
import urllib.error
from pathlib import Path

import pytest
import torch
import torch.hub
import torchvision

from mldanet.models import build_depth_net, build_pose_net
from mldanet.models.weights import load_resnet


@pytest.fixture
def hub_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty torch.hub cache, and no network: any download attempt fails like an offline machine."""

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "urlopen", offline)
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    return tmp_path / "hub"


def test_offline_download_says_both_ways_out(hub_dir: Path) -> None:
    for build in (lambda: build_depth_net("resnet18", pretrained=True), lambda: build_pose_net(pretrained=True)):
        with pytest.raises(ValueError) as error:
            build()
        message = str(error.value)
        assert "resnet18" in message and "URLError" in message
        assert "--weights-init scratch" in message and "pretrained=False" in message
        assert "--weights-init PATH" in message and "weights_path" in message


def test_pretrained_comes_from_the_hub_cache(hub_dir: Path) -> None:
    torch.manual_seed(0)
    cached = torchvision.models.resnet50()
    url = torchvision.models.ResNet50_Weights.IMAGENET1K_V1.url
    (hub_dir / "checkpoints").mkdir(parents=True)
    torch.save(cached.state_dict(), hub_dir / "checkpoints" / url.rsplit("/", 1)[1])
    model = load_resnet("resnet50", pretrained=True)
    torch.testing.assert_close(model.layer4[2].conv3.weight, cached.layer4[2].conv3.weight)


def test_weights_path_loads_into_the_depth_encoder(tmp_path: Path) -> None:
    torch.manual_seed(0)
    resnet = torchvision.models.resnet18()
    state = {k: v for k, v in resnet.state_dict().items() if not k.startswith("fc.")}  # classifier optional
    path = tmp_path / "encoder.pth"
    torch.save(state, path)
    net = build_depth_net("resnet18", "baseline", weights_path=path)
    loaded = net.encoder.resnet.state_dict()
    assert loaded.keys() == state.keys()
    for key, value in state.items():
        torch.testing.assert_close(loaded[key], value)


def test_missing_weights_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.pth"
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        build_depth_net(weights_path=path)


class Payload:
    """Would run a shell command when unpickled; weights-only loading must refuse it unrun."""

    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_unreadable_and_foreign_files_are_named(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="garbage.pth.*not a readable torch state dict"):
        load_resnet("resnet18", weights_path=garbage)
    # torch's weights-only unpickler fails on text with KeyError: 101 (the byte 'e')
    text = tmp_path / "notes.pth"
    text.write_text("experiment notes\n")
    with pytest.raises(ValueError, match=r"notes.pth is not a readable torch state dict \(a text file\): give a torchvision"):
        load_resnet("resnet18", weights_path=text)
    evil = tmp_path / "evil.pth"
    torch.save({"conv1.weight": Payload()}, evil)
    with pytest.raises(ValueError, match=r"evil.pth was refused unread by weights-only loading \(it would call posix.system") as error:
        load_resnet("resnet18", weights_path=evil)
    assert "weights_only" not in str(error.value)
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.pth is empty"):
        load_resnet("resnet18", weights_path=empty)
    with pytest.raises(IsADirectoryError, match="is a folder, not a file"):
        load_resnet("resnet18", weights_path=tmp_path)
    tensor = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), tensor)
    with pytest.raises(ValueError, match="tensor.pth does not hold a state dict"):
        load_resnet("resnet18", weights_path=tensor)
    wrong = tmp_path / "resnet50.pth"
    torch.save(torchvision.models.resnet50().state_dict(), wrong)
    with pytest.raises(ValueError, match="resnet50.pth does not fit torchvision resnet18.*unexpected.*wrong shape"):
        load_resnet("resnet18", weights_path=wrong)
    partial = tmp_path / "partial.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, partial)
    with pytest.raises(ValueError, match="partial.pth does not fit torchvision resnet18 \\(missing: bn1"):
        load_resnet("resnet18", weights_path=partial)
