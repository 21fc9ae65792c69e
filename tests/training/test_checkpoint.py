import errno
import os

import pytest
import torch

from mldanet.config import Config
from mldanet.models.checkpoint import FORMAT, checkpoint_config, load_checkpoint, read_checkpoint_config
from mldanet.training.checkpoint import remove_partial_writes, require_training_state, save_checkpoint, weights_payload


def test_round_trip_is_weights_only_loadable(tmp_path):
    path = save_checkpoint({"config": Config().to_dict(), "depth_net": {"w": torch.arange(3.0)}, "step": 4}, tmp_path / "c" / "last.pt")
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == FORMAT and raw["step"] == 4
    loaded = load_checkpoint(tmp_path / "c" / "last.pt")
    assert torch.equal(loaded["depth_net"]["w"], torch.arange(3.0))
    # a run folder resolves to its checkpoints/last.pt
    run = tmp_path / "run"
    save_checkpoint({"step": 1}, run / "checkpoints" / "last.pt")
    assert load_checkpoint(run)["step"] == 1


def test_config_is_read_with_the_tensors_mapped_not_loaded(tmp_path):
    config = Config()
    config.model.backbone, config.optim.lr = "resnet50", 3e-5
    path = save_checkpoint({"config": config.to_dict(), "depth_net": {"w": torch.arange(4.0)}}, tmp_path / "last.pt")
    assert read_checkpoint_config(path) == config
    mapped = load_checkpoint(path, mmap=True)["depth_net"]["w"]
    assert torch.equal(mapped, torch.arange(4.0))
    # The tensors are views of the file mapped into memory, not a copy read from it.
    assert str(path) in open("/proc/self/maps").read()
    del mapped
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match=f"checkpoint {path} is corrupt or truncated"):
        read_checkpoint_config(path)


def test_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint({"step": 1}, path)

    def broken_save(obj, handle):
        handle.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint({"step": 2}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_a_full_disk_is_named_as_such(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint({"step": 1}, path)

    def save_onto_a_full_disk(obj, handle):
        # What torch.save does when the disk fills: the OSError is only the RuntimeError's context.
        handle.write(b"the first bytes")
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 768 vs 662")

    monkeypatch.setattr(torch, "save", save_onto_a_full_disk)
    with pytest.raises(OSError, match=rf"no space left on the disk to write checkpoint {path} \(\d+ MiB free") as caught:
        save_checkpoint({"step": 2}, path)
    assert caught.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


class Malicious:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_malicious_pickle_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": FORMAT, "payload": Malicious()}, path)
    with pytest.raises(ValueError, match=r"evil.pt was refused unread by weights-only loading \(it would call posix.system") as error:
        load_checkpoint(path)
    # PyTorch's own message advises weights_only=False, which would run the payload: it is not passed on
    assert "weights_only" not in str(error.value)


def test_corrupt_missing_and_foreign_files_name_the_path(tmp_path):
    good = save_checkpoint({"step": 1}, tmp_path / "good.pt")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:100])
    with pytest.raises(ValueError, match="truncated.pt is corrupt or truncated"):
        load_checkpoint(truncated)
    with pytest.raises(FileNotFoundError, match="nothere.pt"):
        load_checkpoint(tmp_path / "nothere.pt")
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(ValueError, match="foreign.pt is not an mldanet checkpoint"):
        load_checkpoint(foreign)


def test_partial_writes_of_a_killed_process_are_removed(tmp_path):
    good = save_checkpoint({"step": 1}, tmp_path / "last.pt")
    stale = tmp_path / ".last.pt.k3j2x9.tmp"  # what a SIGKILL during torch.save leaves
    stale.write_bytes(good.read_bytes()[:50])
    assert remove_partial_writes(tmp_path) == [stale]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"] and load_checkpoint(good)["step"] == 1
    assert remove_partial_writes(tmp_path / "absent") == []


@pytest.mark.parametrize(
    ("legacy", "affinity"), [({"attention_scale": True}, "scaled"), ({"attention_scale": False}, "raw"), ({}, "scaled")]
)
def test_checkpoints_from_before_the_attention_forms_load_with_the_forms_they_used(legacy, affinity):
    """Their model sections have no form keys (and may have attention_scale): they were trained with
    the replacing structure attention, the dot-product channel attention and unnormalised decoder
    blocks, not today's defaults."""
    forms = ("attention_affinity", "structure_attention", "decoder_norm")
    model = {k: v for k, v in Config().to_dict()["model"].items() if k not in forms}
    config = checkpoint_config({"config": {**Config().to_dict(), "model": {**model, **legacy}}})
    assert tuple(getattr(config.model, key) for key in forms) == (affinity, "guided", "none")
    today = checkpoint_config({"config": Config().to_dict()})
    assert tuple(getattr(today.model, key) for key in forms) == ("cosine", "guided", "group")


def test_checkpoints_of_the_residual_default_keep_their_form(tmp_path):
    """The residual structure attention was the default until the component study (issue 22): its
    checkpoints name it and load with it, whatever today's default."""
    from mldanet.models import build_depth_net
    from mldanet.models.checkpoint import load_depth_net

    config = Config()
    config.model.structure_attention, config.model.weights_init = "residual", "scratch"
    torch.manual_seed(0)
    net = build_depth_net("resnet18", "mlda", pretrained=False, structure_attention="residual").eval()
    path = save_checkpoint({"config": config.to_dict(), "depth_net": net.state_dict(), "pose_net": None, "step": 0, "epoch": 0},
                           tmp_path / "residual.pt")
    loaded, loaded_config = load_depth_net(path)
    assert loaded_config.model.structure_attention == "residual" != Config().model.structure_attention
    assert all(m.form == "residual" and m.gamma is not None for m in loaded.decoder.structure_attention.values())
    image = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        torch.testing.assert_close(loaded(image)[0], net(image)[0], rtol=0, atol=0)


def test_checkpoints_with_the_decoder_channel_attention_keep_it(tmp_path):
    """The decoder's CA was on by default until the component study (issue 22): every checkpoint
    names the setting, and one trained with CA loads with CA and gives the same output."""
    from mldanet.models import build_depth_net
    from mldanet.models.attention import ChannelAttention
    from mldanet.models.checkpoint import load_depth_net

    config = Config()
    config.model.decoder_attention, config.model.weights_init = True, "scratch"
    torch.manual_seed(0)
    net = build_depth_net("resnet18", "mlda", pretrained=False, decoder_attention=True).eval()
    path = save_checkpoint({"config": config.to_dict(), "depth_net": net.state_dict(), "pose_net": None, "step": 0, "epoch": 0},
                           tmp_path / "decoder_ca.pt")
    loaded, loaded_config = load_depth_net(path)
    assert loaded_config.model.decoder_attention is True and Config().model.decoder_attention is False
    assert sorted(loaded.decoder.channel_attention) == ["1", "2", "3", "4"]
    assert all(isinstance(m, ChannelAttention) for m in loaded.decoder.channel_attention.values())
    image = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        torch.testing.assert_close(loaded(image)[0], net(image)[0], rtol=0, atol=0)


def test_checkpoints_from_before_the_depth_range_moved_keep_theirs():
    """min_depth/max_depth were loss keys; a checkpoint (or YAML) of that time keeps its range."""
    old = Config().to_dict()
    del old["model"]["min_depth"], old["model"]["max_depth"]
    old["loss"].update(min_depth=0.5, max_depth=50.0)
    config = checkpoint_config({"config": old, "scheduler": {"kind": "step", "step": 3}})
    assert (config.model.min_depth, config.model.max_depth) == (0.5, 50.0)
    assert "min_depth" not in config.to_dict()["loss"]


@pytest.mark.parametrize("mmap", [False, True])
@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is an empty file, not an mldanet checkpoint (a copy or download cut short?)"),
        (b"step: 4\nloss: 0.1\n", "is not an mldanet checkpoint (a text file)"),
        (b"e", "is not an mldanet checkpoint (a text file)"),
        (bytes(range(256)), "is not an mldanet checkpoint (not a PyTorch zip archive)"),
    ],
)
def test_files_that_are_not_checkpoints_are_named_without_torch_errors(tmp_path, content, message, mmap):
    """torch.load says KeyError: 101 (text), EOFError (empty), IndexError ("e"), or with mmap
    advice about torch.save options: none of them names the file."""
    path = tmp_path / "last.pt"
    path.write_bytes(content)
    with pytest.raises(ValueError) as caught:
        load_checkpoint(path, mmap=mmap)
    assert str(caught.value) == f"{path} {message}: give a checkpoints/last.pt or best.pt written by mldanet train"


def test_a_run_folder_without_a_checkpoint_names_both_places_looked(tmp_path):
    with pytest.raises(FileNotFoundError) as caught:
        load_checkpoint(tmp_path)
    assert str(caught.value) == (
        f"no checkpoint in folder {tmp_path}: neither {tmp_path / 'checkpoints' / 'last.pt'} nor {tmp_path / 'last.pt'} "
        "exists; give a run folder that has written a checkpoint, or a .pt file"
    )


def test_weights_payload_drops_the_training_state_which_resume_requires(tmp_path):
    full = {
        "config": Config().to_dict(), "depth_net": {"w": torch.ones(2)}, "pose_net": None, "loss_weighting": {},
        "optimizer": {"state": {}}, "scaler": {}, "rng": {}, "batch_in_epoch": 1, "epoch": 0, "step": 3,
        "best_abs_rel": 0.2, "history": [{"step": 1.0}],
    }
    weights = weights_payload(full)
    assert sorted(weights) == ["best_abs_rel", "config", "depth_net", "epoch", "loss_weighting", "pose_net", "step"]
    require_training_state(full, tmp_path / "checkpoints" / "last.pt")
    best = tmp_path / "checkpoints" / "best.pt"
    with pytest.raises(ValueError) as caught:
        require_training_state(weights, best)
    assert str(caught.value) == (
        f"checkpoint {best} holds the weights only (no optimizer, scaler, rng, batch_in_epoch), so a run cannot "
        f"continue from it: --resume needs the run's last.pt ({tmp_path / 'checkpoints' / 'last.pt'}), which keeps "
        "the optimiser and RNG state; best.pt is for evaluate, predict and export-onnx"
    )
