"""Ablation on the synthetic drive (``ablation_synthetic`` section of RESULTS.md).

    .venv/bin/python -m benchmarks.ablation_synthetic [--steps 60] [--width 192 --height 64] [--seeds 0 1 2]
        [--rows full baseline ...] [--weighting fixed|uncertainty] [--out DIR]

The demo's data (rendered once, data seed 0) and training recipe (MS, batch 4, cosine learning
rate with warm-up), by default at a smaller size and fewer steps so that the twelve runs take
about half an hour on a 2-core CPU, with one change per row against the full method (MLDA-Net + depth
hints + uncertainty weighting): the monodepth2-style baseline network, no hints, fixed loss
weights. Every row trains the same number of steps from each training seed; the table gives
mean ± standard deviation over seeds of the 7 metrics on the held-out drive, and says which
differences from the full method exceed the seed spread (|Δmean| > std_full + std_row).
``--rows`` picks rows by their short names and ``--weighting`` sets the loss weighting of every
row (``--rows full baseline --weighting fixed`` is MLDA-Net against the baseline network, both
with fixed weights). It stands in for the paper's ablation table until KITTI runs exist.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

from benchmarks.results import write_section
from benchmarks.seed_stats import beyond_spread, seed_stats, stats_table

from mldanet.config import apply_overrides
from mldanet.demo import DemoSettings, StageClock, demo_config, evaluate_on_test, prepare_data
from mldanet.evaluation.metrics import LOWER_IS_BETTER, METRIC_NAMES

ROWS = {
    "full": ("MLDA-Net + hints (full)", []),
    "baseline": ("baseline network (monodepth2-style)", ["model.variant=baseline"]),
    "no_hints": ("no depth hints", ["loss.use_hints=false"]),
    "fixed": ("fixed loss weights", ["loss.weighting=fixed"]),
}

def train_and_evaluate(data, settings: DemoSettings, overrides: list[str], seed: int, run_dir: Path) -> dict[str, float]:
    from mldanet.training.datasets import build_datasets, derived_config
    from mldanet.training.trainer import Trainer

    config = apply_overrides(demo_config(settings, data.root, data.splits_dir, data.hints_dir, run_dir, seed), overrides)
    config.train.checkpoint_every = 0
    train_set, _ = build_datasets(config)
    config = derived_config(config, train_set)
    trainer = Trainer(config, train_set, None, progress=False)
    trainer.train()
    metrics, _ = evaluate_on_test(trainer.depth_net, data, config)
    return metrics

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--width", type=int, default=192, help="training width")
    parser.add_argument("--height", type=int, default=64, help="training height")
    parser.add_argument("--warmup", type=int, default=10, help="warm-up steps of the cosine schedule")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), default=list(ROWS), help="rows (default: all; 'full' always runs)")
    parser.add_argument("--weighting", choices=["fixed", "uncertainty"], default="uncertainty", help="loss weighting of every row")
    parser.add_argument("--out", default="ablation_output", help="data, runs and results.json (default: ablation_output)")
    args = parser.parse_args()
    out = Path(args.out)
    settings = replace(DemoSettings.default(), steps=args.steps)
    recipe = [f"optim.warmup_steps={args.warmup}", f"data.width={args.width}", f"data.height={args.height}"]
    start = time.perf_counter()
    data = prepare_data(out, settings, seed=0, clock=StageClock())
    # "fixed" is the full row itself when every row is fixed.
    keys = ["full", *(k for k in args.rows if k != "full" and not (k == "fixed" and args.weighting == "fixed"))]
    rows = {ROWS[key][0]: [*recipe, f"loss.weighting={args.weighting}", *ROWS[key][1]] for key in keys}
    full_row = ROWS["full"][0]
    results_path = out / f"results_{args.weighting}.json"
    # Runs already done (an interrupted benchmark) are kept and not repeated.
    results: dict[str, dict[str, dict[str, float]]] = json.loads(results_path.read_text()) if results_path.exists() else {}
    for seed in args.seeds:
        for key, (row, overrides) in zip(keys, rows.items()):
            done = results.setdefault(row, {})
            if str(seed) in done:
                continue
            tick = time.perf_counter()
            run_dir = out / "runs" / f"{key}_{args.weighting}_seed{seed}"
            done[str(seed)] = train_and_evaluate(data, settings, overrides, seed, run_dir)
            results_path.write_text(json.dumps(results, indent=2))
            print(f"{row}, seed {seed}: abs_rel {done[str(seed)]['abs_rel']:.4f} ({time.perf_counter() - tick:.0f} s)", flush=True)
    stats = seed_stats({row: [results[row][str(s)] for s in args.seeds if str(s) in results.get(row, {})] for row in rows}, METRIC_NAMES)
    body = [
        f"Synthetic drive as in `mldanet demo` ({settings.drives - 1} training drives × {settings.frames} frames, "
        f"test on the held-out drive, stereo scaling), MS training at {args.width}×{args.height}, "
        f"batch {settings.recipe().optim.batch_size}, {args.steps} steps, lr {settings.recipe().optim.lr:g} cosine with "
        f"{args.warmup} warm-up steps, "
        f"{args.weighting} loss weights in every row; training seeds {', '.join(map(str, args.seeds))}; mean ± std over seeds.",
        "",
        *stats_table(stats, METRIC_NAMES),
        "",
        "Differences from the full method larger than the seed spread (|Δmean| > std_full + std_row):",
        "",
        *beyond_spread(stats, full_row, METRIC_NAMES, LOWER_IS_BETTER),
        "",
        f"Whole run: {time.perf_counter() - start:.0f} s.",
    ]
    print("\n".join(body))
    suffix = "" if args.weighting == "uncertainty" else f"_{args.weighting}"
    title = "Ablation on the synthetic drive" + ("" if not suffix else f" ({args.weighting} loss weights)")
    write_section(f"ablation_synthetic{suffix}", "\n".join(body), title=title)

if __name__ == "__main__":
    main()
