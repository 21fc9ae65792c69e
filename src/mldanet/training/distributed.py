"""Data-parallel training under ``torchrun``: process group, DDP wrapping, synchronised batch norm.

``torchrun`` starts one process per device and describes the job in environment variables
(``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``); without them a run
is a single process and nothing here does anything. The backend is NCCL for CUDA devices and gloo
otherwise (CPU training, and the tests).

PyTorch's ``nn.SyncBatchNorm`` runs on GPUs only, so on other devices batch norm is synchronised
by :class:`AllReduceBatchNorm`, built from differentiable all-reduces: the same statistics (and
gradients) as one process holding every rank's samples.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel


@dataclass(frozen=True)
class DistributedContext:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 alone logs, validates and writes checkpoints."""
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name}={raw!r} is not an integer") from None


def context_from_environment() -> DistributedContext:
    """The job torchrun describes (a single process when ``WORLD_SIZE`` is unset or 1)."""
    world_size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"RANK={rank} and WORLD_SIZE={world_size} do not describe a process of the job")
    return DistributedContext(rank=rank, local_rank=local_rank, world_size=world_size)


def restarted_by_torchrun() -> bool:
    """True in the workers of a job that ``torchrun --max-restarts`` restarted after a failure."""
    return _env_int("TORCHELASTIC_RESTART_COUNT", 0) > 0


def backend_for(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def setup(device: torch.device) -> tuple[DistributedContext, torch.device]:
    """Join the torchrun job (once per process) and return it with this rank's device.

    Each rank of a CUDA job drives the GPU ``LOCAL_RANK`` of its node.
    """
    context = context_from_environment()
    if not context.enabled:
        return context, device
    if device.type == "cuda":
        if context.local_rank >= torch.cuda.device_count():
            raise ValueError(
                f"LOCAL_RANK={context.local_rank} but this node has {torch.cuda.device_count()} GPUs: "
                "give torchrun --nproc_per_node at most the number of GPUs"
            )
        device = torch.device("cuda", context.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend_for(device))
    if dist.get_world_size() != context.world_size:
        raise ValueError(
            f"the process group has {dist.get_world_size()} processes but WORLD_SIZE={context.world_size}"
        )
    return context, device


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def wrap(module: nn.Module, device: torch.device, ignore: Sequence[str] = ()) -> nn.Module:
    """DDP around ``module``: gradients are averaged over the ranks during ``backward``, except
    those of the parameters named in ``ignore`` (:func:`average_gradients` is theirs: DDP would
    wait forever for a parameter that a step leaves without a gradient)."""
    if ignore:
        DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(module, list(ignore))
    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=device_ids)


def all_ranks_agree(flags: Sequence[bool], device: torch.device) -> list[bool]:
    """Each of ``flags`` on every rank (a logical AND, one all-reduce), so that all ranks take the same branches."""
    values = torch.tensor([int(flag) for flag in flags], device=device)
    dist.all_reduce(values, op=dist.ReduceOp.MIN)
    return [bool(v) for v in values.tolist()]


def gather_ints(value: int, device: torch.device) -> list[int]:
    """``value`` of every rank, in rank order."""
    values = [torch.zeros(1, dtype=torch.long, device=device) for _ in range(dist.get_world_size())]
    dist.all_gather(values, torch.tensor([value], dtype=torch.long, device=device))
    return [int(v.item()) for v in values]


def average_gradients(parameters: Iterable[nn.Parameter]) -> None:
    """Average the gradients of parameters that DDP does not own (the learned loss weights).

    A parameter without a gradient has none on every rank (the same terms are active everywhere).
    """
    world_size = dist.get_world_size()
    for parameter in parameters:
        if parameter.grad is not None:
            dist.all_reduce(parameter.grad)
            parameter.grad.div_(world_size)


class _SumOverRanks(torch.autograd.Function):
    """Differentiable all-reduce (sum): every rank's output depends on every rank's input, so the
    gradient of an input is the sum over the ranks of the gradients of the output."""

    @staticmethod
    def forward(ctx, tensor: Tensor) -> Tensor:
        total = tensor.clone()
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        total = grad.clone()
        dist.all_reduce(total)
        return total


class AllReduceBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm whose training statistics are those of the samples of every rank (any device).

    Two all-reduces per layer (the sum, then the sum of squared deviations from the global mean)
    keep the variance as accurate as a single process's; their backward sums the statistics'
    gradients over the ranks, so each rank's gradient is its share of the gradient of the loss
    summed over all ranks (DDP then averages). Evaluation and single-process training are plain
    batch norm. The state dict is a BatchNorm's.
    """

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"batch norm expects N×C×... input, got {input.dim()} dimensions")

    def forward(self, input: Tensor) -> Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(input)
        self._check_input_dim(input)
        dims = [0, *range(2, input.dim())]
        shape = [1, -1] + [1] * (input.dim() - 2)
        # Statistics in float64, as PyTorch's CPU batch norm accumulates them.
        wide = input.double()
        count = torch.tensor([input.numel() // input.shape[1]], dtype=torch.float64, device=input.device)
        dist.all_reduce(count)
        mean = _SumOverRanks.apply(wide.sum(dims)) / count
        centred = wide - mean.view(shape)
        var = _SumOverRanks.apply(centred.square().sum(dims)) / count
        output = (centred * torch.rsqrt(var + self.eps).view(shape)).to(input.dtype)
        if self.affine:
            output = output * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                unbiased = var * (count / (count - 1).clamp(min=1))
                self.running_mean.lerp_(mean.to(self.running_mean.dtype), momentum)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), momentum)
        return output


def convert_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Every batch-norm layer of ``module`` synchronised over the ranks (in place where possible).

    CUDA uses PyTorch's fused ``SyncBatchNorm``; other devices :class:`AllReduceBatchNorm`. The
    layers keep their parameter and buffer objects, so the state dict (and an optimiser built
    afterwards) is unchanged.
    """
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, AllReduceBatchNorm):
        converted = AllReduceBatchNorm(
            module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats
        )
        if module.affine:
            converted.weight, converted.bias = module.weight, module.bias
        converted.running_mean, converted.running_var = module.running_mean, module.running_var
        converted.num_batches_tracked = module.num_batches_tracked
        converted.train(module.training)
        return converted
    for name, child in module.named_children():
        module.add_module(name, convert_batchnorm(child, device))
    return module
