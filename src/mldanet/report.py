"""The demo's report: metrics table, training curves and a picture grid, as Markdown and HTML."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np

METRIC_KEYS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")
ROWS = (
    ("untrained", "untrained network"),
    ("prior", "median-depth prior of the training drives"),
    ("trained", "trained MLDA-Net"),
)


def plot_training_curves(history: list[dict[str, float]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [h["step"] for h in history if "loss/total" in h]
    series = {
        "total loss": [h["loss/total"] for h in history if "loss/total" in h],
        "reprojection": [h.get("loss/reprojection", np.nan) for h in history if "loss/total" in h],
        "hints": [h.get("loss/hints", np.nan) for h in history if "loss/total" in h],
    }
    weights = {k: [h.get(k, np.nan) for h in history if "loss/total" in h] for k in sorted({k for h in history for k in h if k.startswith("weight/")})}
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    for name, values in series.items():
        axes[0].plot(steps, values, label=name, lw=1)
    axes[0].set_title("losses")
    axes[0].set_xlabel("step")
    axes[0].set_yscale("log")
    axes[0].legend()
    for name, values in weights.items():
        axes[1].plot(steps, values, label=name.split("/", 1)[1], lw=1)
    axes[1].set_title("learned loss weights exp(-s)")
    axes[1].set_xlabel("step")
    axes[1].set_yscale("log")
    if weights:
        axes[1].legend()
    axes[2].plot(steps, [h.get("lr", np.nan) for h in history if "loss/total" in h], lw=1)
    axes[2].set_title("learning rate")
    axes[2].set_xlabel("step")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_picture_grid(
    images: list[Path], pred_depths: list[np.ndarray], gt_depths: list[np.ndarray], hints: list[np.ndarray], path: Path
) -> Path:
    """Rows of input / predicted depth / ground truth / depth hint, one colour scale per row (metres)."""
    import cv2
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = len(images)
    fig, axes = plt.subplots(rows, 4, figsize=(16, 1.55 * rows + 0.6), squeeze=False)
    for r, (image_file, pred, gt, hint) in enumerate(zip(images, pred_depths, gt_depths, hints)):
        rgb = cv2.cvtColor(cv2.imread(str(image_file)), cv2.COLOR_BGR2RGB)
        h, w = rgb.shape[:2]
        pred = cv2.resize(pred, (w, h), interpolation=cv2.INTER_LINEAR)
        hint = cv2.resize(hint, (w, h), interpolation=cv2.INTER_NEAREST)
        valid_gt = gt > 0
        near = float(np.percentile(gt[valid_gt], 5)) if valid_gt.any() else float(np.percentile(pred, 5))
        # Inverse depth reads best (near = bright), as in the field's figures; one scale per row.
        panels = [
            ("input", rgb),
            ("predicted depth", 1.0 / np.maximum(pred, 1e-3)),
            ("ground truth (Velodyne)", np.where(valid_gt, 1.0 / np.maximum(gt, 1e-3), np.nan)),
            ("depth hint (fused SGM)", np.where(hint > 0, 1.0 / np.maximum(hint, 1e-3), np.nan)),
        ]
        for c, (title, picture) in enumerate(panels):
            ax = axes[r, c]
            if picture.ndim == 3:
                ax.imshow(picture)
            else:
                ax.set_facecolor("#202020")
                ax.imshow(picture, cmap="magma", vmin=0.0, vmax=1.0 / max(near, 1e-3), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def metrics_table_markdown(report: Any) -> str:
    lines = ["| | " + " | ".join(METRIC_KEYS) + " |", "|---|" + "---:|" * len(METRIC_KEYS)]
    for key, label in ROWS:
        metrics = getattr(report, key)
        lines.append(f"| {label} | " + " | ".join(f"{metrics[m]:.3f}" for m in METRIC_KEYS) + " |")
    return "\n".join(lines)


def write_report(
    out: Path,
    report: Any,
    history: list[dict[str, float]],
    images: list[Path],
    pred_depths: list[np.ndarray],
    gt_depths: list[np.ndarray],
    hints: list[np.ndarray],
) -> dict[str, str]:
    curves = plot_training_curves(history, out / "training_curves.png")
    grid = plot_picture_grid(images, pred_depths, gt_depths, hints, out / "picture_grid.png")
    times = "\n".join(f"| {name} | {seconds:.1f} |" for name, seconds in report.seconds.items())
    markdown = f"""# mldanet demo report

MLDA-Net (ResNet-18, from scratch) trained self-supervised in MS mode with fused-SGM depth hints and
uncertainty (learned) loss weighting on the synthetic drive, evaluated on the held-out drive with
the KITTI Eigen protocol (crop, 1e-3..80 m, stereo scaling ×5.4: metric depth).

{metrics_table_markdown(report)}

![picture grid]({grid.name})

![training curves]({curves.name})

| stage | seconds |
|---|---:|
{times}

Checkpoint: `{report.checkpoint}` (loads in `mldanet predict` and `mldanet evaluate`).
"""
    (out / "report.md").write_text(markdown)
    rows = "".join(
        f"<tr><td>{html.escape(label)}</td>" + "".join(f"<td>{getattr(report, key)[m]:.3f}</td>" for m in METRIC_KEYS) + "</tr>"
        for key, label in ROWS
    )
    time_rows = "".join(f"<tr><td>{html.escape(n)}</td><td>{s:.1f}</td></tr>" for n, s in report.seconds.items())
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>mldanet demo report</title>
<style>body{{font-family:sans-serif;max-width:1200px;margin:2em auto}}td,th{{padding:4px 10px;text-align:right}}
td:first-child{{text-align:left}}table{{border-collapse:collapse}}tr:nth-child(even){{background:#f3f3f3}}img{{max-width:100%}}</style>
</head><body><h1>mldanet demo report</h1>
<p>MLDA-Net (ResNet-18, from scratch) trained self-supervised in MS mode with fused-SGM depth hints and
uncertainty loss weighting on the synthetic drive; evaluated on the held-out drive (Eigen protocol, stereo scaling ×5.4).</p>
<table><tr><th></th>{''.join(f'<th>{m}</th>' for m in METRIC_KEYS)}</tr>{rows}</table>
<h2>Pictures</h2><img src="{grid.name}" alt="input, predicted depth, ground truth, hint">
<h2>Training</h2><img src="{curves.name}" alt="training curves">
<h2>Time</h2><table>{time_rows}</table>
<p>Checkpoint: <code>{html.escape(report.checkpoint)}</code></p></body></html>
"""
    (out / "report.html").write_text(page)
    return {"markdown": str(out / "report.md"), "html": str(out / "report.html"), "curves": str(curves), "grid": str(grid)}
