"""Which part of MLDA-Net does what: a component ablation on the synthetic drive (``ablation_components``).

    .venv/bin/python benchmarks/ablation_components.py [--steps 1000] [--seeds 0 1] [--rows ...]
        [--eval-every 100] [--out ablation_components] [--report-only]

The demo's data and recipe (presets/demo.yaml: 192×64, batch 4, MS + depth hints + learned loss
weights, cosine lr with warm-up, from scratch), one change per row:

- ``baseline``: monodepth2's ResNet + U-Net (no image branch, no attention, no decoder norm);
- ``full``: MLDA-Net as shipped (residual SA);
- ``sa_off``: MLDA-Net with the structure attention off (the identity);
- ``sa_guided``, ``sa_seed``: the other SA forms (the specification's, the source's Eq. 8);
- ``ca_off``: the decoder's channel attention off;
- ``single_level``: the image branch and its global attention off (backbone features only).

Every ``--eval-every`` steps each run scores the held-out drive: the seven metrics on the
Velodyne points and iBims-1's depth boundary errors on the rendered dense depth
(``<out>/runs/<row>_seed<s>/heldout.jsonl``). A finished run's result goes to ``<out>/results.json``
at once; a run killed midway resumes from its last checkpoint (every ``--eval-every`` steps), and
finished runs are skipped, so rerunning the same command continues the study. The table gives
mean ± std over the seeds done, and says which differences from ``full`` exceed the seed spread
(|Δmean| > std_full + std_row); the plot shows each row's held-out curves.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import write_section  # noqa: E402
from seed_stats import beyond_spread, seed_stats, stats_table  # noqa: E402

from mldanet.config import apply_overrides  # noqa: E402
from mldanet.demo import DemoSettings, StageClock, demo_config, evaluate_on_test, load_demo_data, prepare_data  # noqa: E402

ROWS = {
    "baseline": ("baseline (monodepth2-style)", ["model.variant=baseline"]),
    "full": ("MLDA-Net (residual SA)", []),
    "sa_off": ("SA off", ["model.structure_attention=none"]),
    "sa_guided": ("SA guided (replacing)", ["model.structure_attention=guided"]),
    "sa_seed": ("SA seed (Eq. 8)", ["model.structure_attention=seed"]),
    "ca_off": ("decoder CA off", ["model.decoder_attention=false"]),
    "single_level": ("multi-level features off", ["model.multi_level=false"]),
}
# The paper's claim first: baseline, full and SA off over every seed, then the other rows.
FIRST = ("baseline", "full", "sa_off")
COLUMNS = ("abs_rel", "a1", "dbe_acc", "dbe_comp", "edge_f1")
LOWER_IS_BETTER = {"abs_rel", "dbe_acc", "dbe_comp"}


def run_order(rows: list[str], seeds: list[int]) -> list[tuple[str, int]]:
    first = [(r, s) for s in seeds for r in rows if r in FIRST]
    return first + [(r, s) for s in seeds for r in rows if r not in FIRST]


def train_one(data, settings: DemoSettings, row: str, seed: int, run_dir: Path, eval_every: int) -> dict[str, float]:
    """Train one row from one seed (resuming its run folder when a checkpoint is there) → final held-out scores."""
    from mldanet.training.datasets import build_datasets
    from mldanet.training.trainer import Trainer

    config = apply_overrides(demo_config(settings, data.root, data.splits_dir, data.hints_dir, run_dir, seed), ROWS[row][1])
    config.train.checkpoint_every = eval_every
    config.train.log_every = eval_every
    last = run_dir / "checkpoints" / "last.pt"
    train_set, _ = build_datasets(config)
    trainer: Trainer
    curve = run_dir / "heldout.jsonl"

    def held_out(step: int, _values: dict[str, float]) -> None:
        if step % eval_every == 0 and step < config.optim.max_steps:
            metrics, _ = evaluate_on_test(trainer.depth_net, data, config)
            with curve.open("a") as handle:
                handle.write(json.dumps({"step": step, **metrics}) + "\n")

    trainer = Trainer(config, train_set, None, resume=last if last.is_file() else None, progress=False, on_log=held_out)
    trainer.train()
    metrics, _ = evaluate_on_test(trainer.depth_net, data, config)
    with curve.open("a") as handle:
        handle.write(json.dumps({"step": config.optim.max_steps, **metrics}) + "\n")
    return metrics


def probe_runs(out: Path, data, results: dict[str, dict[str, dict[str, float]]], frames: int = 16) -> list[str]:
    """Per SA level of each finished run with SA: γ, ‖SA(f_h) − f_h‖ / ‖f_h‖ and the disparity change with
    SA off, on the first ``frames`` held-out frames, mean over the seeds done (Markdown table rows).
    A run with a result has finished, so its ``last.pt`` is the final network."""
    import torch

    from mldanet.demo import held_out_set
    from mldanet.evaluation.structure_probe import probe_structure_attention
    from mldanet.models.checkpoint import load_depth_net

    lines = []
    for row in ROWS:
        probes = []
        for seed in sorted(results.get(row, {}), key=int):
            checkpoint = out / "runs" / f"{row}_seed{seed}" / "checkpoints" / "last.pt"
            net, config = load_depth_net(checkpoint)
            test_set = held_out_set(data, config)
            images = torch.stack([test_set[i].images[0] for i in range(min(frames, len(test_set)))])
            probe = probe_structure_attention(net, images)
            if probe is not None:
                probes.append(probe)
        if not probes:
            continue
        for i, level in enumerate(probes[0].levels):
            gammas = [p.levels[i].gamma_mean for p in probes]
            gamma = "—" if gammas[0] is None else (
                f"{np.mean(gammas):.3f} [{min(p.levels[i].gamma_min for p in probes):.3f}, "
                f"{max(p.levels[i].gamma_max for p in probes):.3f}]"
            )
            change = 100 * np.mean([p.levels[i].feature_change for p in probes])
            off = f"{100 * np.mean([p.disparity_change_off for p in probes]):.1f} %" if i == 0 else ""
            lines.append(f"| {ROWS[row][0]} | {len(probes)} | {level.level} | {gamma} | {change:.1f} % | {off} |")
    if not lines:
        return []
    return [
        "| row | seeds | level k | γ mean [min, max over channels] | ‖SA(f_h) − f_h‖ / ‖f_h‖ | disparity change, SA off |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        *lines,
    ]


def plot_curves(out: Path, rows: list[str], seeds: list[int]) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
    drawn = False
    for i, row in enumerate(rows):
        for seed in seeds:
            path = out / "runs" / f"{row}_seed{seed}" / "heldout.jsonl"
            if not path.is_file():
                continue
            points = sorted({p["step"]: p for p in map(json.loads, path.read_text().splitlines())}.values(), key=lambda p: p["step"])
            for ax, key in zip(axes, ("abs_rel", "dbe_acc", "dbe_comp")):
                ax.plot([p["step"] for p in points], [p[key] for p in points], color=f"C{i}", lw=1.2,
                        ls="-" if seed == seeds[0] else "--", label=f"{ROWS[row][0]}, seed {seed}")
            drawn = True
    if not drawn:
        plt.close(fig)
        return None
    for ax, title in zip(axes, ("abs_rel (held-out, Velodyne)", "ε_acc px (held-out, dense)", "ε_comp px (held-out, dense)")):
        ax.set_title(title)
        ax.set_xlabel("step")
    axes[2].legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    path = Path(__file__).resolve().parent / "ablation_components.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), default=list(ROWS))
    parser.add_argument("--eval-every", type=int, default=100, help="held-out evaluation and checkpoint interval")
    parser.add_argument("--out", default="ablation_components", help="data, runs and results.json")
    parser.add_argument("--report-only", action="store_true", help="write the table and plot from the runs done; train nothing")
    args = parser.parse_args()
    out = Path(args.out)
    settings = replace(DemoSettings.default(), steps=args.steps)
    results_path = out / f"results_{args.steps}.json"
    results: dict[str, dict[str, dict[str, float]]] = json.loads(results_path.read_text()) if results_path.exists() else {}
    start = time.perf_counter()
    data = None
    if not args.report_only:
        data_marker = out / "data_ready"
        data = prepare_data(out, settings, seed=0, clock=StageClock()) if not data_marker.exists() else None
        if data is None:  # the drives and hints are there: only the ground truth is read again
            data = load_demo_data(out, settings)
        data_marker.write_text("rendered with data seed 0\n")
        for row, seed in run_order(args.rows, args.seeds):
            if str(seed) in results.get(row, {}):
                continue
            tick = time.perf_counter()
            run_dir = out / "runs" / f"{row}_seed{seed}"
            metrics = train_one(data, settings, row, seed, run_dir, args.eval_every)
            results.setdefault(row, {})[str(seed)] = metrics
            results_path.write_text(json.dumps(results, indent=2))
            print(f"{row}, seed {seed}: abs_rel {metrics['abs_rel']:.4f}, ε_comp {metrics['dbe_comp']:.2f} px "
                  f"({time.perf_counter() - tick:.0f} s)", flush=True)
    stats = seed_stats({row: results[row].values() for row in ROWS if row in results}, COLUMNS)
    names = {row: label for row, (label, _) in ROWS.items()}
    done = [f"{row} seed {seed}" for row in ROWS for seed in sorted(results.get(row, {}), key=int)]
    plot = plot_curves(out, list(ROWS), args.seeds)
    if data is None:
        data = load_demo_data(out, settings)
    probes = probe_runs(out, data, results)
    body = [
        f"The demo's data and recipe (4 drives × 100 frames rendered at 640×192, test on the held-out drive; MS + hints + "
        f"learned loss weights at 192×64, batch 4), {args.steps} steps per run; abs_rel and a1 on the Velodyne points "
        "(Eigen crop, stereo scaling), ε_acc / ε_comp (iBims-1, px at the network's 192×64, θ = 10) and edge F1 (2 px) on "
        "the rendered dense depth over the whole frame. Mean ± std over the seeds done.",
        "",
        *stats_table(stats, COLUMNS, ["abs_rel ↓", "a1 ↑", "ε_acc px ↓", "ε_comp px ↓", "edge F1 ↑"], names),
        "",
        "Differences from the full method beyond the seed spread (|Δmean| > std_full + std_row):",
        "",
        *beyond_spread(stats, "full", COLUMNS, LOWER_IS_BETTER, names),
        "",
        "What the structure attention does after training, per decoder level k (first 16 held-out frames; "
        "the residual form's γ starts at 0.1; the last column is the scale-0 disparity's mean relative change "
        "when every level is switched off):",
        "",
        *(probes or ["(no finished run with SA yet)"]),
        "",
        f"Runs done ({len(done)}): {', '.join(done) or 'none'}. Rerun the command to continue the study.",
        *( [f"", f"![held-out curves per row]({plot.name})"] if plot else []),
    ]
    print("\n".join(body))
    print(f"({time.perf_counter() - start:.0f} s)")
    write_section("ablation_components", "\n".join(body), title="Component ablation on the synthetic drive")


if __name__ == "__main__":
    main()
