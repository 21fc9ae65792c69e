"""Learning-rate schedules as pure functions of the global step (so resuming needs no scheduler object)."""

from __future__ import annotations

import math

from mldanet.config import OptimConfig


def lr_factor(step: int, steps_per_epoch: int, total_steps: int, optim: OptimConfig) -> float:
    """Multiplier of the base learning rate at optimisation step ``step`` (0-based).

    ``step``: the preset's step decay, ×gamma every ``step_epochs`` epochs (monodepth2's StepLR).
    ``cosine``: half-cosine from 1 to 0.05 over ``total_steps``; short runs (the demo) learn more
    per step with it than with a constant rate. Both start with a linear warm-up of
    ``warmup_steps`` steps, which keeps the attention softmaxes and the learned loss weights from
    jumping on the first, noisy gradients.
    """
    warmup = 1.0 if step >= optim.warmup_steps else (step + 1) / optim.warmup_steps
    if optim.schedule == "step":
        epoch = step // max(1, steps_per_epoch)
        return warmup * optim.gamma ** (epoch // max(1, optim.step_epochs))
    progress = min(1.0, max(0, step - optim.warmup_steps) / max(1, total_steps - optim.warmup_steps))
    floor = 0.05
    return warmup * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))
