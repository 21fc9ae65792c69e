"""Training runs on a KITTI-layout fixture built from the real frame (tests/conftest.py)."""

import pytest
import torch

from mldanet.cli import main
from mldanet.evaluation.validation import Validator
from mldanet.geometry import disp_to_depth
from mldanet.models.checkpoint import load_checkpoint
from mldanet.training.datasets import build_datasets
from mldanet.training.trainer import Trainer

from .configs import small_config


@pytest.mark.parametrize("mode, variant", [("M", "baseline"), ("S", "baseline"), ("MS", "mlda")])
def test_two_steps_in_each_mode_write_a_checkpoint(kitti_fixture, tmp_path, mode, variant):
    config = small_config(kitti_fixture, tmp_path / mode, mode=mode, variant=variant, max_steps=2)
    train_set, _ = build_datasets(config)
    before = {k: v.clone() for k, v in Trainer(config, train_set, progress=False).depth_net.state_dict().items()}
    trainer = Trainer(config, train_set, progress=False)
    state = trainer.train()
    assert state.step == 2
    ckpt = load_checkpoint(tmp_path / mode / "checkpoints" / "last.pt")
    assert ckpt["step"] == 2 and ckpt["config"]["train"]["mode"] == mode
    assert (ckpt["pose_net"] is None) == (mode == "S")
    changed = [k for k, v in ckpt["depth_net"].items() if v.is_floating_point() and not torch.equal(v, before[k])]
    assert changed, "two optimisation steps changed no depth-net weight"
    assert (tmp_path / mode / "checkpoints" / "config.yaml").is_file()
    assert any(h.get("loss/reprojection", 0) > 0 for h in ckpt["history"])
    if "S" in mode:
        assert any("loss/hints" in h for h in ckpt["history"])
    # The guards' statistics, every step under their own names: an untrained map is far from flat.
    for h in ckpt["history"]:
        assert 0 < h["train/grad_norm"] < float("inf") and 1e-3 < h["collapse/disp_variation"] < 1
        gates = sorted(k for k in h if k.startswith("gates/"))
        if variant == "mlda":
            assert gates == [f"gates/{k}/{s}" for k in range(5) for s in ("mean", "saturated")]
            assert all(0.2 < h[f"gates/{k}/mean"] < 0.8 and 0 <= h[f"gates/{k}/saturated"] < 0.5 for k in range(5))
        else:
            assert gates == []
    assert ckpt["collapse_monitor"]["streak"] == 0


def test_init_depth_starts_the_untrained_network_at_that_depth(kitti_fixture, tmp_path):
    config = small_config(kitti_fixture, tmp_path, mode="S")
    config.model.init_depth = 2.5
    train_set, _ = build_datasets(config)
    trainer = Trainer(config, train_set, progress=False)
    with torch.no_grad():
        disps = trainer.depth_net.eval()(train_set[0].images[0][None])
    _, depth = disp_to_depth(disps[0], config.model.min_depth, config.model.max_depth)
    # The random head weights scatter the depth around the requested start; PyTorch's init is at 0.2.
    assert 1.5 < depth.median().item() < 4.0


def test_resume_is_bit_identical(kitti_fixture, tmp_path):
    # 8 lines, batch 2 -> 4 steps per epoch; 6 steps cross an epoch boundary.
    straight = small_config(kitti_fixture, tmp_path / "straight", max_steps=6, checkpoint_every=100, schedule="cosine", warmup_steps=2)
    train_set, _ = build_datasets(straight)
    Trainer(straight, train_set, progress=False).train()

    first = small_config(kitti_fixture, tmp_path / "resumed", max_steps=6, checkpoint_every=100, schedule="cosine", warmup_steps=2)
    Trainer(first, build_datasets(first)[0], progress=False).train(stop_at_step=3)
    assert load_checkpoint(tmp_path / "resumed")["step"] == 3
    second = small_config(kitti_fixture, tmp_path / "resumed", max_steps=6, checkpoint_every=100, schedule="cosine", warmup_steps=2)
    Trainer(second, build_datasets(second)[0], resume=tmp_path / "resumed", progress=False).train()

    a = load_checkpoint(tmp_path / "straight")
    b = load_checkpoint(tmp_path / "resumed")
    assert a["step"] == b["step"] == 6
    for net in ("depth_net", "pose_net", "loss_weighting"):
        for key in a[net]:
            assert torch.equal(a[net][key], b[net][key]), f"{net}.{key} differs after resume"


def test_structure_mix_weights_get_their_own_learning_rate(kitti_fixture, tmp_path):
    from mldanet.training.trainer import depth_net_groups

    config = small_config(kitti_fixture, tmp_path, mode="MS", variant="mlda", max_steps=1)
    config.model.structure_attention = "residual"  # the form with γ
    net = Trainer(config, build_datasets(config)[0], progress=False).depth_net
    gammas = {id(m.gamma) for m in net.decoder.structure_attention.values()}
    assert len(depth_net_groups(net, config.optim)) == 1  # the default: one group, as before
    config.optim.structure_mix_lr_scale = 20.0
    rest, mixes = depth_net_groups(net, config.optim)
    assert {id(p) for p in mixes["params"]} == gammas and mixes["lr_scale"] == 20.0
    assert len(rest["params"]) + len(mixes["params"]) == len(list(net.parameters()))
    # one step with the learning rate of the γ group 20× the rest's: γ moves ~20× as far under Adam
    trainer = Trainer(config, build_datasets(config)[0], progress=False)
    before = [m.gamma.detach().clone() for m in trainer.depth_net.decoder.structure_attention.values()]
    trainer.train()
    rates = {g["lr_scale"]: g["lr"] for g in trainer.optimizer.param_groups}
    assert rates[20.0] == pytest.approx(20 * rates[1.0])
    moved = torch.cat([(m.gamma.detach() - b).abs().flatten() for m, b in zip(trainer.depth_net.decoder.structure_attention.values(), before)])
    # Adam's first step moves every parameter with a gradient by its learning rate exactly
    assert moved.max().item() == pytest.approx(rates[20.0], rel=1e-3)


def test_a_length_set_within_the_warm_up_trains_as_if_configured(kitti_fixture, tmp_path):
    # The demo's --minutes: a few steps timed, then the length fitted. Within the warm-up the learning
    # rate does not depend on the length, so the run is the one configured with it from the start.
    straight = small_config(kitti_fixture, tmp_path / "straight", max_steps=5, checkpoint_every=100, schedule="cosine", warmup_steps=3)
    Trainer(straight, build_datasets(straight)[0], progress=False).train()

    fitted = small_config(kitti_fixture, tmp_path / "fitted", max_steps=50, checkpoint_every=100, schedule="cosine", warmup_steps=3)
    trainer = Trainer(fitted, build_datasets(fitted)[0], progress=False)
    trainer.train(stop_at_step=2)
    trainer.set_total_steps(5)
    assert trainer.train().step == 5
    with pytest.raises(ValueError, match="at step 5 already, past the 3 asked for"):
        trainer.set_total_steps(3)

    a, b = load_checkpoint(tmp_path / "straight"), load_checkpoint(tmp_path / "fitted")
    assert b["config"]["optim"]["max_steps"] == 5
    assert [h["lr"] for h in a["history"] if "lr" in h] == [h["lr"] for h in b["history"] if "lr" in h]
    for net in ("depth_net", "pose_net", "loss_weighting"):
        for key in a[net]:
            assert torch.equal(a[net][key], b[net][key]), f"{net}.{key} differs"


def test_train_command_with_overrides_and_uncertainty(kitti_fixture, tmp_path):
    out = tmp_path / "cli"
    code = main([
        "train", "--preset", "ms_r18_640x192_adaptive", "--data-path", str(kitti_fixture["data"]),
        "--splits-dir", str(kitti_fixture["splits"]), "--split", "fixture", "--hints-dir", str(kitti_fixture["hints"]),
        "--height", "64", "--width", "192", "--weights-init", "scratch", "--max-steps", "1", "--num-workers", "0",
        "--out", str(out), "--set", "train.validate=false", "--set", "train.log_every=1", "--no-progress",
    ])
    assert code == 0
    ckpt = load_checkpoint(out)
    assert ckpt["config"]["loss"]["weighting"] == "uncertainty"
    assert any("log_var/reprojection" in h for h in ckpt["history"])


def test_train_command_errors_are_one_line(kitti_fixture, tmp_path, capsys):
    code = main(["train", "--preset", "ms_r18_640x192", "--data-path", str(tmp_path / "absent"), "--out", str(tmp_path / "x")])
    assert code == 2
    assert "data path not found" in capsys.readouterr().err
    code = main(["train", "--preset", "ms_r18_640x192", "--data-path", str(kitti_fixture["data"]),
                 "--splits-dir", str(kitti_fixture["splits"]), "--split", "fixture", "--height", "100"])
    assert code == 2
    assert "data.height=100 must be a positive multiple of 32" in capsys.readouterr().err


def test_validation_computes_metrics_and_keeps_the_best(kitti_fixture, tmp_path):
    config = small_config(kitti_fixture, tmp_path / "val", validate=True, max_steps=1)
    train_set, val_set = build_datasets(config)
    assert val_set is not None and len(val_set) == 2
    trainer = Trainer(config, train_set, Validator(val_set, config.optim.batch_size), progress=False)
    trainer.train()
    validation = [h for h in trainer.state.history if "val/abs_rel" in h]
    assert len(validation) == 1 and 0 < validation[0]["val/abs_rel"] < 10
    best = load_checkpoint(tmp_path / "val" / "checkpoints" / "best.pt")
    assert best["best_abs_rel"] == pytest.approx(validation[0]["val/abs_rel"])


def one_step_gradients(fixture, out, monkeypatch, clip: float) -> tuple[Trainer, dict]:
    """One MS step with learned loss weights; the gradients as the optimizer receives them."""
    config = small_config(fixture, out, mode="MS", max_steps=1, checkpoint_every=100, clip_grad_norm=clip, loss={"weighting": "uncertainty"})
    trainer = Trainer(config, build_datasets(config)[0], progress=False)
    seen = {}
    real_step = trainer.optimizer.step

    def step(*args, **kwargs):
        networks = [p.grad.double() for net in (trainer.depth_net, trainer.pose_net) for p in net.parameters() if p.grad is not None]
        seen["norm"] = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in networks])).item()
        seen["weighting"] = [p.grad.clone() for p in trainer.weighting.parameters()]
        return real_step(*args, **kwargs)

    monkeypatch.setattr(trainer.optimizer, "step", step)
    trainer.train()
    return trainer, seen


def test_gradient_norm_is_logged_before_clipping_and_clipped_to_the_limit(kitti_fixture, tmp_path, monkeypatch):
    free, unclipped = one_step_gradients(kitti_fixture, tmp_path / "free", monkeypatch, clip=0.0)
    (logged,) = [h["train/grad_norm"] for h in free.state.history]
    assert "loss/train/grad_norm" not in free.state.history[0]
    assert logged == pytest.approx(unclipped["norm"], rel=1e-5)
    assert unclipped["norm"] > 0

    limit = unclipped["norm"] / 10
    clipped_run, clipped = one_step_gradients(kitti_fixture, tmp_path / "clipped", monkeypatch, clip=limit)
    # The same step, so the same norm before clipping; after it, the limit (clip_grad_norm_ divides by norm + 1e-6).
    assert clipped_run.state.history[0]["train/grad_norm"] == pytest.approx(unclipped["norm"], rel=1e-5)
    assert clipped["norm"] == pytest.approx(limit * unclipped["norm"] / (unclipped["norm"] + 1e-6), rel=1e-5)
    # The learned loss weights are not clipped.
    assert clipped["weighting"] and all(
        torch.equal(a, b) for a, b in zip(clipped["weighting"], unclipped["weighting"], strict=True)
    )
