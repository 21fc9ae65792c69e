"""The demo's training step against its FLOP floor (``demo_step`` section of RESULTS.md).

    .venv/bin/python -m benchmarks.demo_step [--rounds 7] [--variant mlda|baseline] [--no-write]

The step of ``mldanet demo`` (presets/demo.yaml: MLDA-Net R18 from scratch, 192×64, batch 4, MS
with depth hints and learned loss weights, Adam) on a synthetic batch, so that data loading is
left out. The floor is the step's convolution and matrix FLOPs (forward and backward of the
depth and pose nets) ÷ this CPU's best 3×3-convolution rate, measured before and after the
steps (the faster one counts). Each round also times the step with every convolution left to oneDNN
(the A/B of models/small_map_conv.py). A profile of a few steps says where the time above the floor goes.
``--compile-trial`` times the losses with their photometric error through torch.compile (the
lever the issue names), against its compile time. Target (issue 22): step ≤ 1.8× the floor.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from benchmarks.results import machine_line, write_section
from benchmarks.workloads import _Sized, conv_rate, median_seconds, step_flops, synthetic_batch

from mldanet.config import load_preset
from mldanet.models import small_map_conv
from mldanet.training.trainer import Trainer

TARGET = 1.8
# Profiler events whose inclusive time is a part of the step (they do not nest in one another);
# the rest of the step is element-wise work, copies and reductions.
CATEGORIES = (
    ("optimizer step (Adam)", ("Optimizer.step",)),
    ("convolution backward", ("aten::convolution_backward",)),
    ("convolution forward", ("aten::convolution",)),
    ("convolutions on small maps as matrix products, fwd + bwd", ("aten::mm", "aten::im2col", "aten::col2im")),
    ("matrix products (attention)", ("aten::bmm", "aten::baddbmm")),
    ("grid sample (warps), fwd + bwd", ("aten::grid_sampler_2d", "aten::grid_sampler_2d_backward")),
)
OTHER = "the rest (element-wise, normalisation, copies, reductions)"


@contextmanager
def every_conv_by_onednn() -> Iterator[None]:
    """The step as it was before small maps trained as one matrix product (the A/B of that change)."""
    saved = small_map_conv.MAX_OUTPUT_PIXELS
    small_map_conv.MAX_OUTPUT_PIXELS = 0
    try:
        yield
    finally:
        small_map_conv.MAX_OUTPUT_PIXELS = saved


def demo_trainer(variant: str, out: str) -> tuple[Trainer, object]:
    config = load_preset("demo")
    config.model.variant = variant
    config.train.out = out
    config.train.device = "cpu"
    trainer = Trainer(config, _Sized(1000), None, progress=False)
    return trainer, synthetic_batch(config).to(trainer.device)


def profile_breakdown(trainer: Trainer, batch, steps: int = 3) -> dict[str, float]:
    """Seconds per step by part (:data:`CATEGORIES`' inclusive times; the rest of the wall time as :data:`OTHER`)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        for _ in range(steps):
            trainer.train_step(batch, epoch=0)
        wall = time.perf_counter() - start
    seconds = {name: 0.0 for name, _ in CATEGORIES}
    for event in prof.key_averages():
        for name, keys in CATEGORIES:
            if event.key in keys or (keys == ("Optimizer.step",) and event.key.startswith("Optimizer.step")):
                seconds[name] += event.cpu_time_total / 1e6
    parts = {k: v / steps for k, v in seconds.items()}
    parts[OTHER] = wall / steps - sum(parts.values())
    return dict(sorted(parts.items(), key=lambda kv: -kv[1])) | {"total": wall / steps}


def compile_trial(trainer: Trainer, batch) -> dict[str, float]:
    """The losses' forward + backward on the step's own disparities and poses, eager and with the
    photometric error (their largest element-wise part) through torch.compile → seconds of each
    (median of 9) and of the first compiled call, which compiles."""
    from mldanet.losses import total

    model, config = trainer.model, trainer.config
    disps, _ = model.depth_net(model._input(batch.net_images[0]), return_attention=True)
    disps = {s: d.detach().float().requires_grad_() for s, d in disps.items()}
    with torch.no_grad():
        transforms = model.transforms(batch)

    def losses() -> None:
        result = total.compute_losses(
            disps, batch, transforms, config.loss, model.weighting, depth_range=(config.model.min_depth, config.model.max_depth)
        )
        result.total.backward()

    eager_error = total.photometric_error
    eager = median_seconds(losses, repeats=9, warmup=3)
    # A fresh cache: a first demo compiles everything (a warm cache would hide most of it).
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="mldanet-inductor-")
    total.photometric_error = torch.compile(eager_error, dynamic=False)
    try:
        start = time.perf_counter()
        losses()
        first = time.perf_counter() - start
        compiled = median_seconds(losses, repeats=9, warmup=1)
    finally:
        total.photometric_error = eager_error
    return {"eager": eager, "compiled": compiled, "first": first}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="rounds of (conv-rate probe, 3 timed steps); the median round is reported")
    parser.add_argument("--variant", choices=["mlda", "baseline"], default="mlda")
    parser.add_argument("--compile-trial", action="store_true", help="also time the losses with torch.compile (inductor needs a C++ compiler)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    parser.add_argument("--out", default="/tmp/mldanet-demo-step", help="scratch run folder (nothing is saved)")
    args = parser.parse_args()
    device = torch.device("cpu")
    trainer, batch = demo_trainer(args.variant, args.out)
    flops = step_flops(trainer, batch)
    for _ in range(3):
        trainer.train_step(batch, epoch=0)
    # This VM's speed drifts by ±15 % within a minute: each round measures the conv rate and then
    # three steps, so that a step is compared with the floor of the same moment.
    rounds, onednn_rounds = [], []
    for _ in range(args.rounds):
        rate_now = conv_rate(device, repeats=5)
        step_now = median_seconds(lambda: trainer.train_step(batch, epoch=0), repeats=3, warmup=0)
        rounds.append((step_now / (flops / rate_now), rate_now, step_now))
        with every_conv_by_onednn():
            step_now = median_seconds(lambda: trainer.train_step(batch, epoch=0), repeats=3, warmup=0)
        onednn_rounds.append((step_now / (flops / rate_now), rate_now, step_now))
    rounds.sort()
    speedups = sorted(b[2] / a[2] for a, b in zip(rounds, onednn_rounds))
    onednn_rounds.sort()
    ratio, rate, seconds = rounds[len(rounds) // 2]
    floor = flops / rate
    spread = f"{rounds[0][0]:.2f}–{rounds[-1][0]:.2f}"
    onednn_ratio, _, onednn_seconds = onednn_rounds[len(onednn_rounds) // 2]
    breakdown = profile_breakdown(trainer, batch)
    mark = f"met: ≤ {TARGET}" if ratio <= TARGET else f"missed: ≤ {TARGET}"
    params = sum(p.numel() for p in trainer.optimizer.param_groups[0]["params"]) + sum(
        p.numel() for g in trainer.optimizer.param_groups[1:] for p in g["params"]
    )
    conv_seconds = sum(v for k, v in breakdown.items() if k.startswith("convolution"))
    conv_share = conv_seconds / breakdown["total"]
    lines = [
        f"The step of presets/demo.yaml ({args.variant}, R18 from scratch, 192×64, batch 4, MS + hints, learned weights, "
        f"Adam over {params / 1e6:.1f} M parameters) on a synthetic batch.",
        "",
        "| GFLOP (fwd + bwd) | conv rate GFLOP/s | floor s | step s | step ÷ floor (median round) | over rounds |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| {flops / 1e9:.0f} | {rate / 1e9:.0f} | {floor:.3f} | {seconds:.3f} | **{ratio:.2f}** ({mark}) | {spread} |",
        "",
        f"In the same rounds, with every convolution left to oneDNN (no small maps as one matrix product, "
        f"models/small_map_conv.py): step {onednn_seconds:.3f} s, **{onednn_ratio:.2f}×** the floor of its round "
        f"(over rounds {onednn_rounds[0][0]:.2f}–{onednn_rounds[-1][0]:.2f}); the shipped step is "
        f"{speedups[len(speedups) // 2]:.2f}× as fast (median over rounds, {speedups[0]:.2f}–{speedups[-1]:.2f}).",
        "",
        "Where a step's time goes (torch.profiler, inclusive CPU time of each part, mean of 3 profiled steps, which the "
        f"profiler slows to {breakdown['total']:.3f} s). The convolutions alone (forward, backward and the small-map "
        f"products) are {100 * conv_share:.0f} % of it: scaled to the timed step, {conv_share * seconds:.3f} s, "
        f"{conv_share * seconds / floor:.2f}× the floor that counts their FLOPs at the probe's forward rate.",
        "",
        "| part | s per step | share |",
        "| --- | ---: | ---: |",
        *(f"| {k} | {v:.3f} | {100 * v / breakdown['total']:.0f} % |" for k, v in breakdown.items() if k != "total"),
    ]
    if args.compile_trial:
        trial = compile_trial(trainer, batch)
        saved = trial["eager"] - trial["compiled"]
        steps = load_preset("demo").optim.max_steps
        payback = f"it pays back after {(trial['first'] - trial['compiled']) / saved:.0f} steps" if saved > 0 else "it saves nothing"
        lines += [
            "",
            f"torch.compile (inductor, `--compile-trial`) of the photometric error, the losses' largest element-wise part: "
            f"the losses' forward + backward take {trial['compiled']:.3f} s a step against {trial['eager']:.3f} s eager, "
            f"after a first call of {trial['first']:.0f} s that compiles; {payback} (the demo trains {steps} "
            "and runs eager).",
        ]
    body = "\n".join(lines)
    print(machine_line())
    print(body)
    if not args.no_write:
        suffix = "" if args.variant == "mlda" else f"_{args.variant}"
        write_section(f"demo_step{suffix}", body, title="Demo: the training step against its FLOP floor" + (f" ({args.variant})" if suffix else ""))


if __name__ == "__main__":
    main()
