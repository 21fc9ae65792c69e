"""Run by the DDP tests under ``torchrun``: ``ddp_worker.py CONFIG.yaml OUT``.

Each rank first puts its half of a fixed input through a synchronised batch norm (output, input
gradient and parameter gradients saved), then trains CONFIG for its ``optim.max_steps`` and saves
its own networks: what the tests compare across ranks and against one process.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

from mldanet.config import load_config_file
from mldanet.training import distributed
from mldanet.training.datasets import build_datasets
from mldanet.training.trainer import Trainer


def batchnorm_inputs() -> tuple[torch.Tensor, torch.Tensor, nn.BatchNorm2d]:
    """A 4×3×5×6 input (rows 0-1 for rank 0, 2-3 for rank 1), an output weighting and an affine layer."""
    generator = torch.Generator().manual_seed(7)
    x = torch.randn(4, 3, 5, 6, generator=generator) * 3 + 1
    weights = torch.randn(4, 3, 5, 6, generator=generator)
    layer = nn.BatchNorm2d(3)
    with torch.no_grad():
        layer.weight.copy_(torch.rand(3, generator=generator) + 0.5)
        layer.bias.copy_(torch.randn(3, generator=generator))
    return x, weights, layer


def batchnorm_check(context: distributed.DistributedContext, out: Path) -> None:
    x, weights, layer = batchnorm_inputs()
    layer = distributed.convert_batchnorm(layer, torch.device("cpu"))
    rows = slice(2 * context.rank, 2 * context.rank + 2)
    mine = x[rows].clone().requires_grad_()
    output = layer(mine)
    # The loss of the whole batch is the sum over the ranks of their rows' share.
    (output * weights[rows]).sum().backward()
    torch.save(
        {
            "output": output.detach(),
            "input_grad": mine.grad,
            "weight_grad": layer.weight.grad,
            "bias_grad": layer.bias.grad,
            "running_mean": layer.running_mean,
            "running_var": layer.running_var,
        },
        out / f"batchnorm_rank{context.rank}.pt",
    )


def main(config_path: str, out: str) -> None:
    out_dir = Path(out)
    config = load_config_file(config_path)
    train_set, _ = build_datasets(config)
    trainer = Trainer(config, train_set, progress=False)
    batchnorm_check(trainer.dist, out_dir)
    trainer.train()
    state = {
        "depth_net": trainer.depth_net.state_dict(),
        "pose_net": trainer.pose_net.state_dict() if trainer.pose_net is not None else None,
        "loss_weighting": trainer.weighting.state_dict(),
    }
    torch.save(state, out_dir / f"rank{trainer.dist.rank}.pt")
    distributed.cleanup()


if __name__ == "__main__":
    main(*sys.argv[1:])
