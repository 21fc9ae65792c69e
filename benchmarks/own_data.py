"""Training on your own data through the commands, on synthetic sequences of known depth (``own_data`` in RESULTS.md).

    .venv/bin/python -m benchmarks.own_data [--out DIR] [--steps 200] [--mode M]

Writes ``mldanet synth --layout folder`` drives (4 × 100 frames, 640×192, like the demo's), then
runs ``check-data``, ``train --dataset folder`` (the demo's recipe: from scratch, 192×64, batch 4,
lr 5e-4 with warm-up and cosine decay, learned loss weights; without depth hints) and
``evaluate --dataset folder`` on the held-out frames against their dense depth maps, for a 1-step
run (≈ untrained) and the full run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

from benchmarks.results import write_section

from mldanet import cli
from mldanet.evaluation.metrics import METRIC_NAMES

RECIPE = ["--height", "64", "--width", "192", "--batch-size", "4", "--lr", "5e-4", "--set", "optim.warmup_steps=20",
          "--weights-init", "scratch", "--loss-weighting", "uncertainty", "--set", "optim.schedule=cosine",
          "--set", "loss.use_hints=false", "--num-workers", "2", "--no-progress", "--log-every", "50",
          "--set", "train.validate=false"]


def command(args: list[str]) -> None:
    print("$ mldanet " + " ".join(args), flush=True)
    code = cli.main(args)
    if code:
        raise SystemExit(f"mldanet {args[0]} exited {code}")


def train_and_evaluate(data: Path, out: Path, mode: str, steps: int) -> tuple[dict, float]:
    start = time.perf_counter()
    command(["train", "--dataset", "folder", "--data-path", str(data), "--mode", mode, "--max-steps", str(steps),
             "--out", str(out), *RECIPE])
    seconds = time.perf_counter() - start
    command(["evaluate", "--checkpoint", str(out), "--dataset", "folder", "--data-path", str(data),
             "--num-workers", "0", "--json", str(out / "eval.json")])
    return json.loads((out / "eval.json").read_text()), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="own_data_benchmark")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--mode", default="M", choices=("M", "S", "MS"))
    args = parser.parse_args()
    out = Path(args.out)
    for made in [out / "my_drives", *out.glob("run_*")]:  # what an earlier run of this benchmark wrote
        shutil.rmtree(made, ignore_errors=True)
    data = out / "my_drives"
    command(["synth", "--layout", "folder", "--out", str(data), "--drives", "4", "--frames", "100",
             "--width", "640", "--height", "192", "--no-progress"])
    command(["check-data", "--data-path", str(data), "--mode", args.mode, "--no-progress"])
    rows = {}
    for name, steps in (("1 step", 1), (f"{args.steps} steps", args.steps)):
        rows[name] = train_and_evaluate(data, out / f"run_{steps}", args.mode, steps)
    first = next(iter(rows.values()))[0]
    lines = [
        f"`python -m benchmarks.own_data --steps {args.steps} --mode {args.mode}`: 4 synthetic drives × 100 frames in "
        f"the folder layout, {first['count']} held-out frames scored against their dense depth maps "
        f"({first['scaling']} scaling, no Eigen crop).",
        "",
        "| run | train s | " + " | ".join(METRIC_NAMES) + " |",
        "| --- | ---: |" + " ---: |" * len(METRIC_NAMES),
        *(f"| {name} | {seconds:.0f} | " + " | ".join(f"{result['metrics'][k]:.3f}" for k in METRIC_NAMES) + " |"
          for name, (result, seconds) in rows.items()),
    ]
    # a run with forced kernels (ATEN_CPU_CAPABILITY=avx2 …) gets its own section beside the native one
    kernels = os.environ.get("ATEN_CPU_CAPABILITY", "")
    suffix, note = (f"_{kernels}", f", {kernels.upper()} kernels forced") if kernels else ("", "")
    write_section(
        f"own_data_{args.mode}{suffix}", "\n".join(lines), title=f"Your own data (--dataset folder), mode {args.mode}{note}"
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
