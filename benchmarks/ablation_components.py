"""Which part of MLDA-Net does what: a component ablation on the synthetic drive (``ablation_components``).

    .venv/bin/python -m benchmarks.ablation_components [--steps 1000] [--seeds 0 1] [--rows ...]
        [--eval-every 100] [--out ablation_components] [--report-only]

The demo's data and recipe (presets/demo.yaml: 192×64, batch 4, MS + depth hints + learned loss
weights, cosine lr with warm-up, from scratch), one change per row:

- ``baseline``: monodepth2's ResNet + U-Net (no image branch, no attention, no decoder norm);
- ``guided_ca_off``: MLDA-Net as shipped: the guided SA (the specification's form), no channel attention in
  the decoder (both the defaults since 2026-12-07); ``shipped_sa_off``: the same with the structure attention off;
- ``sa_guided``: the guided SA with the decoder's channel attention (the specification's decoder);
- ``full``: the residual SA with the decoder's channel attention (the default when the study began);
- ``sa_off``: the structure attention off (the identity), decoder CA on;
- ``sa_seed``: the source's Eq. 8 SA, decoder CA on;
- ``ca_off``: the residual-SA MLDA-Net with the decoder's channel attention off;
- ``single_level``: the residual-SA MLDA-Net without the image branch and its global attention (backbone features only);
- ``sa_mix_lr``: the residual SA with its mixing weights γ at 20× the learning rate.

Every ``--eval-every`` steps each run scores the held-out drive: the seven metrics on the
Velodyne points and iBims-1's depth boundary errors on the rendered dense depth. A finished run's
result (final scores, held-out curve, SA probe, machine) goes at once into the tracked
``benchmarks/ablation_components.json``, under the steps and the ATen kernels it ran with
(``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2`` forces the AVX2 ones), so the study survives
a fresh machine once that file is committed. Finished runs are skipped; a run killed midway resumes
from its last checkpoint in ``<out>/runs`` (every ``--eval-every`` steps) while that folder is
there, so rerunning the same command continues the study. The table gives mean ± std over the
seeds done, and says which differences from the MLDA-Net a row changes one thing of (:data:`VERDICTS`)
exceed the seed spread (|Δmean| > std_reference + std_row); the plot shows each row's held-out curves.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from benchmarks.results import machine_line, write_section
from benchmarks.seed_stats import beyond_spread, seed_stats, stats_table

from mldanet.config import apply_overrides
from mldanet.evaluation.metrics import LOWER_IS_BETTER
from mldanet.demo import DemoSettings, StageClock, demo_config, evaluate_on_test, load_demo_data, prepare_data
from mldanet.folder_lock import FolderLock, FolderLocked

STUDY = Path(__file__).resolve().parent / "ablation_components.json"
PROBE_FRAMES = 16

# Each MLDA-Net row names its structure attention form and whether the decoder has channel attention:
# the rows were first run under other defaults (residual SA, decoder CA on), and a finished run is
# found again by its row name alone.
CA_ON = "model.decoder_attention=true"
CA_OFF = "model.decoder_attention=false"
ROWS = {
    "baseline": ("baseline (monodepth2-style)", ["model.variant=baseline"]),
    # ca_off's gain (abs_rel, a1, ε_acc beyond the seed spread over the residual form) asked whether it held
    # on the guided form; it did on abs_rel, and this is the form shipped since 2026-12-07.
    "guided_ca_off": ("MLDA-Net as shipped (guided SA, no decoder CA)", ["model.structure_attention=guided", CA_OFF]),
    "shipped_sa_off": ("shipped, SA off", ["model.structure_attention=none", CA_OFF]),
    "sa_guided": ("MLDA-Net (guided SA, decoder CA)", ["model.structure_attention=guided", CA_ON]),
    "full": ("MLDA-Net (residual SA, decoder CA)", ["model.structure_attention=residual", CA_ON]),
    "sa_off": ("SA off (decoder CA)", ["model.structure_attention=none", CA_ON]),
    "sa_seed": ("SA seed (Eq. 8, decoder CA)", ["model.structure_attention=seed", CA_ON]),
    "ca_off": ("residual SA, no decoder CA", ["model.structure_attention=residual", CA_OFF]),
    "single_level": ("multi-level features off (residual SA)", ["model.structure_attention=residual", CA_ON, "model.multi_level=false"]),
    # Issue 22 item 5's first candidate: γ stays at its initial 0.1 at the shared rate (Adam moves it
    # ~lr a step), so the residual form never finds out how much SA to mix in; 20× lets it travel 0..1.
    "sa_mix_lr": ("residual SA, γ at 20× lr", ["model.structure_attention=residual", CA_ON, "optim.structure_mix_lr_scale=20"]),
}
# reference row → the rows compared with it: each row against the MLDA-Net it changes one thing of.
VERDICTS = {
    "guided_ca_off": ("baseline", "shipped_sa_off", "sa_guided"),
    "sa_guided": ("baseline", "sa_off", "full", "sa_seed"),
    "full": ("ca_off", "single_level", "sa_mix_lr"),
}
# The paper's claim first: the baseline, the shipped network and its SA off over every seed, then the other rows.
FIRST = ("baseline", "guided_ca_off", "shipped_sa_off", "sa_guided", "sa_off")
COLUMNS = ("abs_rel", "a1", "dbe_acc", "dbe_comp", "edge_f1")


def run_order(rows: list[str], seeds: list[int]) -> list[tuple[str, int]]:
    first = [(r, s) for s in seeds for r in rows if r in FIRST]
    return first + [(r, s) for s in seeds for r in rows if r not in FIRST]


def train_one(data, settings: DemoSettings, row: str, seed: int, run_dir: Path, eval_every: int) -> dict:
    """Train one row from one seed (resuming its run folder when a checkpoint is there) → its study entry:
    final held-out scores, the held-out curve and the SA probe."""
    from mldanet.training.datasets import build_datasets, derived_config
    from mldanet.training.trainer import Trainer

    config = apply_overrides(demo_config(settings, data.root, data.splits_dir, data.hints_dir, run_dir, seed), ROWS[row][1])
    config.train.checkpoint_every = eval_every
    config.train.log_every = eval_every
    last = run_dir / "checkpoints" / "last.pt"
    train_set, _ = build_datasets(config)
    config = derived_config(config, train_set)
    trainer: Trainer
    curve = run_dir / "heldout.jsonl"

    def held_out(step: int, _values: dict[str, float]) -> None:
        if step % eval_every == 0 and step < config.optim.max_steps:
            metrics, _ = evaluate_on_test(trainer.depth_net, data, config)
            with curve.open("a") as handle:
                handle.write(json.dumps({"step": step, **metrics}) + "\n")

    tick = time.perf_counter()
    trainer = Trainer(config, train_set, None, resume=last if last.is_file() else None, progress=False, on_log=held_out)
    trainer.train()
    metrics, _ = evaluate_on_test(trainer.depth_net, data, config)
    with curve.open("a") as handle:
        handle.write(json.dumps({"step": config.optim.max_steps, **metrics}) + "\n")
    points = {p["step"]: p for p in map(json.loads, curve.read_text().splitlines())}  # a resumed step counts once
    return {
        "metrics": metrics,
        "curve": [points[step] for step in sorted(points)],
        "probe": probe_run(trainer.depth_net, data, config),
        "seconds": round(time.perf_counter() - tick),
        "machine": machine_line(),
        "date": f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
    }


def probe_run(net, data, config) -> dict | None:
    """The trained network's SA probe on the first :data:`PROBE_FRAMES` held-out frames (``None`` without SA)."""
    import torch

    from mldanet.demo import held_out_set
    from mldanet.evaluation.structure_probe import probe_structure_attention

    test_set = held_out_set(data, config)
    images = torch.stack([test_set[i].images[0] for i in range(min(PROBE_FRAMES, len(test_set)))])
    probe = probe_structure_attention(net, images)
    return None if probe is None else asdict(probe)


def probe_table(runs: dict[str, dict[str, dict]]) -> list[str]:
    """Per SA level of each row with SA: γ, ‖SA(f_h) − f_h‖ / ‖f_h‖ and the disparity change with SA off,
    mean over the seeds done (Markdown table rows)."""
    lines = []
    for row in ROWS:
        probes = [entry["probe"] for entry in runs.get(row, {}).values() if entry.get("probe")]
        if not probes:
            continue
        for i, level in enumerate(probes[0]["levels"]):
            levels = [p["levels"][i] for p in probes]
            gamma = "—" if level["gamma_mean"] is None else (
                f"{np.mean([lv['gamma_mean'] for lv in levels]):.3f} [{min(lv['gamma_min'] for lv in levels):.3f}, "
                f"{max(lv['gamma_max'] for lv in levels):.3f}]"
            )
            change = 100 * np.mean([lv["feature_change"] for lv in levels])
            off = f"{100 * np.mean([p['disparity_change_off'] for p in probes]):.1f} %" if i == 0 else ""
            lines.append(f"| {ROWS[row][0]} | {len(probes)} | {level['level']} | {gamma} | {change:.1f} % | {off} |")
    if not lines:
        return []
    return [
        "| row | seeds | level k | γ mean [min, max over channels] | ‖SA(f_h) − f_h‖ / ‖f_h‖ | disparity change, SA off |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        *lines,
    ]


def plot_curves(runs: dict[str, dict[str, dict]], name: str) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 5.2))
    drawn = False
    for i, row in enumerate(ROWS):
        for seed, entry in sorted(runs.get(row, {}).items(), key=lambda item: int(item[0])):
            points = entry["curve"]
            for ax, key in zip(axes, ("abs_rel", "dbe_acc", "dbe_comp")):
                ax.plot([p["step"] for p in points], [p[key] for p in points], color=f"C{i}", lw=1.2,
                        ls=("-", "--", ":", "-.")[int(seed) % 4], label=f"{ROWS[row][0]}, seed {seed}")
            drawn = True
    if not drawn:
        plt.close(fig)
        return None
    for ax, title in zip(axes, ("abs_rel (held-out, Velodyne)", "ε_acc px (held-out, dense)", "ε_comp px (held-out, dense)")):
        ax.set_title(title)
        ax.set_xlabel("step")
    # Below the plots, not over them: with every row drawn a legend inside an axis hides curves.
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.035 * math.ceil(len(labels) / 4), 1, 1))
    path = Path(__file__).resolve().parent / f"{name}.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def study_key(steps: int) -> str:
    import torch

    return f"{steps} steps, {torch.backends.cpu.get_cpu_capability()} kernels"


def run_folder(out: Path, steps: int, row: str, seed: int) -> Path:
    """A run's folder, apart per kernel set: an AVX2-forced run must not resume from the AVX-512 run's checkpoint."""
    import torch

    return out / "runs" / f"{steps}_steps_{torch.backends.cpu.get_cpu_capability().lower()}" / f"{row}_seed{seed}"


def report(study: dict[str, dict], steps: int) -> str:
    """The RESULTS section: per kernel set run at ``steps``, the table, the spread verdicts, the probe, the plot."""
    names = {row: label for row, (label, _) in ROWS.items()}
    body = [
        f"The demo's data and recipe (4 drives × 100 frames rendered at 640×192, test on the held-out drive; MS + hints + "
        f"learned loss weights at 192×64, batch 4), {steps} steps per run; abs_rel and a1 on the Velodyne points "
        "(Eigen crop, stereo scaling), ε_acc / ε_comp (iBims-1, px at the network's 192×64, θ = 10) and edge F1 (2 px) on "
        "the rendered dense depth over the whole frame. Mean ± std over the seeds done. Each run's numbers, curve and "
        "machine are in `benchmarks/ablation_components.json`.",
    ]
    for key, runs in study.items():
        if not key.startswith(f"{steps} steps"):
            continue
        stats = seed_stats({row: [e["metrics"] for e in runs[row].values()] for row in ROWS if row in runs}, COLUMNS)
        done = [f"{row} seed {seed}" for row in ROWS for seed in sorted(runs.get(row, {}), key=int)]
        machines = sorted({e["machine"] for row in runs.values() for e in row.values()})
        plot = plot_curves(runs, "ablation_components_" + key.split(", ")[1].split()[0].lower())
        body += [
            "", f"### {key}", "", "Runs on: " + "; ".join(machines), "",
            *stats_table(stats, COLUMNS, ["abs_rel ↓", "a1 ↑", "ε_acc px ↓", "ε_comp px ↓", "edge F1 ↑"], names),
            "",
            "Differences beyond the seed spread (|Δmean| > std_reference + std_row), each row against the "
            "MLDA-Net it changes one thing of:",
            "",
            *(line for reference, rows in VERDICTS.items() for line in (
                f"Against {names[reference]}:", "", *beyond_spread(stats, reference, COLUMNS, LOWER_IS_BETTER, names, rows), "")),
            f"What the structure attention does after training, per decoder level k (first {PROBE_FRAMES} held-out "
            "frames; the residual form's γ starts at 0.1; the last column is the scale-0 disparity's mean relative "
            "change when every level is switched off):",
            "",
            *(probe_table(runs) or ["(no finished run with SA yet)"]),
            "",
            f"Runs done ({len(done)}): {', '.join(done) or 'none'}. Rerun the command to continue the study.",
            *(["", f"![held-out curves per row, {key}]({plot.name})"] if plot else []),
        ]
    return "\n".join(body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), default=list(ROWS))
    parser.add_argument("--eval-every", type=int, default=100, help="held-out evaluation and checkpoint interval")
    parser.add_argument("--out", default="ablation_components", help="data and run folders (checkpoints)")
    parser.add_argument("--report-only", action="store_true", help="write the table and plot from the runs done; train nothing")
    args = parser.parse_args()
    out = Path(args.out)
    settings = replace(DemoSettings.default(), steps=args.steps)
    study: dict[str, dict] = json.loads(STUDY.read_text()) if STUDY.exists() else {}
    start = time.perf_counter()
    if not args.report_only:
        out.mkdir(parents=True, exist_ok=True)
        try:
            with FolderLock(out, "benchmarks/ablation_components.py", what="ablation folder"):
                run_study(study, args, out, settings)
        except FolderLocked as error:
            sys.exit(f"error: {error}")
    body = report(study, args.steps)
    print(body)
    print(f"({time.perf_counter() - start:.0f} s)")
    write_section("ablation_components", body, title="Component ablation on the synthetic drive")


def run_study(study: dict[str, dict], args, out: Path, settings: DemoSettings) -> None:
    runs = study.setdefault(study_key(args.steps), {})
    data_marker = out / "data_ready"
    data = prepare_data(out, settings, seed=0, clock=StageClock()) if not data_marker.exists() else None
    if data is None:  # the drives and hints are there: only the ground truth is read again
        data = load_demo_data(out, settings)
    data_marker.write_text("rendered with data seed 0\n")
    for row, seed in run_order(args.rows, args.seeds):
        if str(seed) in runs.get(row, {}):
            continue
        entry = train_one(data, settings, row, seed, run_folder(out, args.steps, row, seed), args.eval_every)
        runs.setdefault(row, {})[str(seed)] = entry
        STUDY.write_text(json.dumps(study, indent=1) + "\n")
        metrics = entry["metrics"]
        print(f"{row}, seed {seed}: abs_rel {metrics['abs_rel']:.4f}, ε_comp {metrics['dbe_comp']:.2f} px "
              f"({entry['seconds']} s)", flush=True)


if __name__ == "__main__":
    main()
