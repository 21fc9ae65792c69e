"""The demo's report: verdict, metrics, pictures, training curves and time, as Markdown and HTML.

A reader should know from the first two lines whether the run worked: the verdict compares the
trained network with the median-depth prior and the untrained network, and a warning says so when
the prediction is flat (one depth everywhere), which the metrics alone do not make obvious.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mldanet.evaluation.metrics import LOWER_IS_BETTER, METRIC_NAMES, is_better
from mldanet.training.collapse import disparity_variation

# Depth boundary errors on the rendered (dense) depth, pixels at the network's output size, and the edge F1.
BOUNDARY_COLUMNS = {"dbe_acc": "ε_acc px", "dbe_comp": "ε_comp px", "edge_f1": "edge F1"}
ROWS = (
    ("untrained", "untrained network"),
    ("prior", "median-depth prior of the training drives"),
    ("trained", "trained MLDA-Net"),
)

# A prediction is flat below either threshold (see measure_flatness).
FLAT_ABSOLUTE = 0.01
FLAT_RELATIVE = 0.05

FLAT_ADVICE = (
    "Its metrics score one guessed depth, not a depth map. What to try: a network trained for only a "
    "few steps is still at its initial, flat output, so train longer (`mldanet demo --steps 400`); "
    "otherwise look at the training curves below (a total loss that stopped falling, or a learned "
    "loss weight running towards 0, points at the cause) and rerun with another seed (`--seed 1`)."
)


@dataclass
class Flatness:
    """How much the predicted depth varies across an image, against the ground truth's variation."""

    prediction: float
    ground_truth: float
    threshold: float
    flat: bool

    def sentence(self) -> str:
        """The warning, in words, with the numbers behind it."""
        return (
            "The predicted depth is flat: the network collapsed to one depth everywhere (its disparity "
            f"varies by {100 * self.prediction:.1f} % of its mean across an image, the ground truth's by "
            f"{100 * self.ground_truth:.0f} %; flat means below {100 * self.threshold:.1f} %). " + FLAT_ADVICE
        )


def variation(disparity: np.ndarray) -> float:
    """The collapse monitor's variation (std / mean, :func:`mldanet.training.collapse.disparity_variation`)
    of the valid (finite, positive) values of one map; 0 for a constant map or one without valid values."""
    values = np.asarray(disparity, dtype=np.float32)
    values = values[np.isfinite(values) & (values > 0)]
    return float(disparity_variation(torch.from_numpy(values)[None])) if values.size else 0.0


def measure_flatness(pred_disps: list[np.ndarray], gt_depths: list[np.ndarray]) -> Flatness:
    """Mean per-image variation (std / mean) of the predicted disparities and of the ground truth's.

    Both are measured on disparity (inverse depth), the network's output, so the numbers do not
    depend on the stereo scale; the prediction over the whole image, the ground truth over its
    valid points. Flat means below ``FLAT_ABSOLUTE`` (0.01) or below ``FLAT_RELATIVE`` (5 %) of
    the ground truth's variation, whichever is larger (measured values: docs/ARCHITECTURE.md,
    "Flat maps: one measure, two thresholds").
    """
    prediction = float(np.mean([variation(d) for d in pred_disps]))
    ground_truth = float(np.mean([variation(1.0 / gt[gt > 0]) for gt in gt_depths]))
    threshold = max(FLAT_ABSOLUTE, FLAT_RELATIVE * ground_truth)
    return Flatness(prediction, ground_truth, threshold, prediction < threshold)


def verdict(report: Any) -> str:
    """One sentence: the trained network against the median-depth prior and the untrained network.

    abs_rel decides "beats" or "is worse than"; the metrics that disagree with it are named, and
    "it has not learned the scene yet" is said only when the prior wins on most metrics (a run can
    lose on abs_rel, which near points dominate, and still win on rmse and the a-thresholds).
    """
    trained, prior, untrained = report.trained, report.prior, report.untrained
    keys = [key for key in METRIC_NAMES if key in trained and key in prior]
    better = [key for key in keys if is_better(key, trained[key], prior[key])]
    worse = [key for key in keys if key not in better]
    beats = trained["abs_rel"] < prior["abs_rel"]
    if not worse:
        relation = "beats the median-depth prior"
    elif not better:
        relation = "is worse than the median-depth prior"
    elif beats:
        relation = f"beats the median-depth prior on abs_rel but not on {', '.join(worse)}"
    else:
        relation = f"is worse than the median-depth prior on {', '.join(worse)} but better on {', '.join(better)}"
    sentence = (
        f"The trained MLDA-Net {relation}: "
        f"abs_rel {trained['abs_rel']:.3f} = {trained['abs_rel'] / prior['abs_rel']:.2f} × the prior's "
        f"{prior['abs_rel']:.3f} and {trained['abs_rel'] / untrained['abs_rel']:.2f} × the untrained network's "
        f"{untrained['abs_rel']:.3f}; a1 {trained['a1']:.2f} vs {prior['a1']:.2f}"
    )
    if "dbe_comp" in trained and "dbe_comp" in prior:
        sentence += (
            f"; depth boundaries ε_comp {trained['dbe_comp']:.2f} px vs the prior's {prior['dbe_comp']:.2f} px "
            f"(ε_acc {trained['dbe_acc']:.2f} vs {prior['dbe_acc']:.2f})"
        )
    return sentence + ("; it has not learned the scene yet." if len(worse) > len(keys) / 2 else ".")


def plot_training_curves(history: list[dict[str, float]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [h["step"] for h in history if "loss/total" in h]
    series = {
        name: [h.get(key, np.nan) for h in history if "loss/total" in h]
        for name, key in (("total loss", "loss/total"), ("reprojection", "loss/reprojection"), ("hints", "loss/hints"), ("smoothness", "loss/smoothness"))
    }
    # With learned weights the total carries the regulariser Σ(s_k − s_k⁰), which can be negative:
    # on the log axis such a curve would break off, so it is left out (the terms are all positive).
    if min(series["total loss"], default=1.0) <= 0:
        del series["total loss"]
    weights = {k: [h.get(k, np.nan) for h in history if "loss/total" in h] for k in sorted({k for h in history for k in h if k.startswith("weight/")})}
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    for name, values in series.items():
        axes[0].plot(steps, values, label=name, lw=1)
    axes[0].set_title("losses" if "total loss" in series else "loss terms (unweighted)")
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


def dilate_points(depth: np.ndarray, size: int) -> np.ndarray:
    """Sparse depth (0 = no point) with every point grown to a size×size square; the nearer point wins.

    A Velodyne point is one pixel, which vanishes when the picture is shown at half size.
    Dilating the inverse depth (a max filter) keeps near objects in front where squares overlap.
    """
    import cv2

    inverse = np.where(depth > 0, 1.0 / np.maximum(depth, 1e-3), 0.0).astype(np.float32)
    grown = cv2.dilate(inverse, np.ones((size, size), np.uint8))
    return np.where(grown > 0, 1.0 / np.maximum(grown, 1e-6), 0.0)


def metre_ticks(near: float) -> list[float]:
    """Colour-bar ticks in metres for an inverse-depth scale from infinity up to ``near`` (the top).

    Ticks closer than 19 % of the bar to each other would overlap at a row's height, so a
    candidate that crowds the one below it is dropped (inverse depth squeezes the far range);
    the top tick is ``near`` itself, replacing a round tick that crowds it.
    """
    spacing = 0.19 / near
    ticks = [np.inf]
    for metres in (50.0, 30.0, 20.0, 10.0, 7.0, 5.0, 3.0, 2.0, 1.0):
        if metres > near and 1.0 / metres - 1.0 / ticks[-1] >= spacing:
            ticks.append(metres)
    if len(ticks) > 1 and 1.0 / near - 1.0 / ticks[-1] < spacing:
        ticks.pop()
    return ticks + [near]


def plot_picture_grid(
    images: list[Path], pred_depths: list[np.ndarray], gt_depths: list[np.ndarray], hints: list[np.ndarray], path: Path
) -> Path:
    """Rows of input / predicted depth / ground truth / depth hint, one colour scale per row in metres.

    The maps are drawn as inverse depth (near = bright, magma, as in the field's figures) from the
    row's near depth (5th percentile of its ground truth) to infinity, with a colour bar in metres.
    Pixels without a measurement are grey.
    """
    import cv2
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = len(images)
    fig, axes = plt.subplots(
        rows, 5, figsize=(16, 1.35 * rows + 0.5), squeeze=False, gridspec_kw={"width_ratios": [1, 1, 1, 1, 0.05]}
    )
    cmap = plt.get_cmap("magma").with_extremes(bad="#c8c8c8")
    for r, (image_file, pred, gt, hint) in enumerate(zip(images, pred_depths, gt_depths, hints)):
        rgb = cv2.cvtColor(cv2.imread(str(image_file)), cv2.COLOR_BGR2RGB)
        h, w = rgb.shape[:2]
        pred = cv2.resize(pred, (w, h), interpolation=cv2.INTER_LINEAR)
        hint = cv2.resize(hint, (w, h), interpolation=cv2.INTER_NEAREST)
        valid_gt = gt > 0
        near = float(np.percentile(gt[valid_gt], 5)) if valid_gt.any() else float(np.percentile(pred, 5))
        # Squares of about 1/128 of the width stay two to three screen pixels wide at the shown size.
        points = dilate_points(gt, max(3, int(round(w / 128)) | 1))
        panels = [("predicted depth", pred), ("ground truth (Velodyne points, enlarged)", points), ("depth hint (fused SGM)", hint)]
        axes[r, 0].imshow(rgb)
        for c, (_, depth) in enumerate(panels, start=1):
            inverse = np.where(depth > 0, 1.0 / np.maximum(depth, 1e-3), np.nan)
            shown = axes[r, c].imshow(inverse, cmap=cmap, vmin=0.0, vmax=1.0 / max(near, 1e-3), interpolation="antialiased")
        ticks = metre_ticks(near)
        bar = fig.colorbar(shown, cax=axes[r, 4], ticks=[1.0 / t for t in ticks])
        bar.ax.set_yticklabels(["∞" if np.isinf(t) else f"{t:.2g}" for t in ticks], fontsize=10)
        bar.ax.set_title("m", fontsize=10)
        for c, title in enumerate(["input"] + [p[0] for p in panels]):
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
            if r == 0:
                axes[r, c].set_title(title, fontsize=13)
        axes[r, 0].set_ylabel(f"frame {int(Path(image_file).stem)}", fontsize=9)
    fig.tight_layout(w_pad=0.4, h_pad=0.6)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def boundary_window(gt_edges: np.ndarray, height: int, width: int) -> tuple[int, int]:
    """(top, left) of the ``height``×``width`` window holding the most ground-truth edge pixels."""
    import cv2

    counts = cv2.boxFilter(gt_edges.astype(np.float32), -1, (width, height), normalize=False, anchor=(0, 0),
                           borderType=cv2.BORDER_CONSTANT)
    counts = counts[: gt_edges.shape[0] - height + 1, : gt_edges.shape[1] - width + 1]
    top, left = np.unravel_index(int(np.argmax(counts)), counts.shape)
    return int(top), int(left)


def plot_boundary_crop(
    image: Path, pred: np.ndarray, dense_gt: np.ndarray, hint: np.ndarray, path: Path
) -> Path:
    """One object boundary up close at the prediction's size: input, prediction, rendered depth and
    hint, each with its own edges (iBims-1's detector, orange) over the ground truth's (cyan)."""
    import cv2
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mldanet.evaluation.boundaries import depth_edges

    from mldanet.data.ground_truth import resize_depth_nearest

    # At the prediction's size, where the boundary scores are measured (evaluation/protocol.py).
    rgb = cv2.cvtColor(cv2.imread(str(image)), cv2.COLOR_BGR2RGB)
    h, w = pred.shape
    rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA) if rgb.shape[:2] != (h, w) else rgb
    dense_gt = resize_depth_nearest(dense_gt, h, w)
    hint = resize_depth_nearest(hint.astype(np.float32), h, w)
    valid = dense_gt > 0
    gt_edges = depth_edges(dense_gt, valid)
    crop_h, crop_w = max(16, h // 3), max(32, w // 5)
    top, left = boundary_window(gt_edges, crop_h, crop_w)
    window = (slice(top, top + crop_h), slice(left, left + crop_w))
    near = float(np.percentile(dense_gt[valid], 5)) if valid.any() else 1.0
    cmap = plt.get_cmap("magma").with_extremes(bad="#c8c8c8")
    panels = [
        ("prediction", pred, depth_edges(pred, valid)),
        ("ground truth (rendered depth)", dense_gt, gt_edges),
        ("depth hint (fused SGM)", hint, depth_edges(hint, valid & (hint > 0)) if (valid & (hint > 0)).any() else None),
    ]
    fig, axes = plt.subplots(1, 4, figsize=(16, 16 * crop_h / (4 * crop_w) + 0.7))
    axes[0].imshow(rgb[window], interpolation="nearest")
    axes[0].set_title(f"input, x {left}–{left + crop_w}, y {top}–{top + crop_h}", fontsize=11)
    for ax, (title, depth, edges) in zip(axes[1:], panels):
        inverse = np.where(depth > 0, 1.0 / np.maximum(depth, 1e-3), np.nan)[window]
        ax.imshow(inverse, cmap=cmap, vmin=0.0, vmax=1.0 / max(near, 1e-3), interpolation="nearest")
        overlay = np.zeros((crop_h, crop_w, 4))
        overlay[gt_edges[window]] = (0.0, 0.9, 1.0, 1.0)
        if edges is not None and edges is not gt_edges:
            overlay[edges[window]] = (1.0, 0.55, 0.0, 1.0)
        ax.imshow(overlay, interpolation="nearest")
        ax.set_title(title, fontsize=11)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("depth edges: cyan = ground truth's, orange = the map's own", fontsize=11, y=0.99)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_figures(
    out: Path,
    history: list[dict[str, float]],
    images: list[Path],
    pred_depths: list[np.ndarray],
    gt_depths: list[np.ndarray],
    hints: list[np.ndarray],
    dense_depths: list[np.ndarray] | None = None,
) -> dict[str, Path]:
    """The report's PNGs (the slow part of the report, timed as its own stage); the boundary
    close-up of the first frame when its dense depth is given."""
    figures = {
        "curves": plot_training_curves(history, out / "training_curves.png"),
        "grid": plot_picture_grid(images, pred_depths, gt_depths, hints, out / "picture_grid.png"),
    }
    if dense_depths:
        figures["boundary"] = plot_boundary_crop(images[0], pred_depths[0], dense_depths[0], hints[0], out / "boundary_crop.png")
    return figures


def stage_rows(seconds: dict[str, float]) -> tuple[list[tuple[str, float]], float]:
    """The timed stages in order and their total (``seconds`` may already hold the total)."""
    stages = [(name, s) for name, s in seconds.items() if name != "total"]
    return stages, sum(s for _, s in stages)


def metric_header(key: str) -> str:
    return f"{BOUNDARY_COLUMNS.get(key, key)} {'↓' if key in LOWER_IS_BETTER else '↑'}"


BOUNDARY_NOTE = (
    "Depth boundaries (ε_acc, ε_comp: iBims-1's boundary errors in pixels at the network's output size, "
    "truncated at 10 px; edge F1 at 2 px) against the rendered dense depth, resized to that size, over the whole frame."
)


def table_columns(report: Any) -> tuple[str, ...]:
    """The seven metrics, and the boundary columns when every row has them."""
    rows = [getattr(report, key) for key, _ in ROWS]
    return METRIC_NAMES + tuple(k for k in BOUNDARY_COLUMNS if all(k in row for row in rows))


def cell(row: dict[str, float], key: str) -> str:
    return f"{row[key]:.2f}" if key in BOUNDARY_COLUMNS and key != "edge_f1" else f"{row[key]:.3f}"


def run_sentence(report: Any) -> str:
    """Where and how long it trained: device, steps, batch and size, training time, and the budget's fit."""
    settings = report.settings
    training = sum(s for name, s in report.seconds.items() if name.startswith("train:"))
    sentence = (
        f"Trained on {report.device}: {settings['steps']} steps of batch {settings['batch_size']} at "
        f"{settings['train_width']}×{settings['train_height']} in {training:.0f} s."
    )
    if report.budget:
        sentence += (
            f" `--minutes {report.budget['minutes']:g}`: {report.budget['step_s']:.3f} s a step on the first steps; "
            f"{report.budget['spent_s']:.0f} s before training and {report.budget['reserve_s']:.0f} s reserved after it"
        )
        stopped = report.budget.get("stopped_at")
        sentence += f"; the steps slowed down and it stopped at {stopped} of {report.budget['steps']}." if stopped else "."
    return sentence


def markdown_report(report: Any, figures: dict[str, Path], flatness: Flatness) -> str:
    stages, total = stage_rows(report.seconds)
    lines = ["# mldanet demo report", "", f"**{verdict(report)}**", "", run_sentence(report), ""]
    if flatness.flat:
        lines += [f"> **Warning.** {flatness.sentence()}", ""]
    columns = table_columns(report)
    lines += [
        "| held-out drive | " + " | ".join(metric_header(m) for m in columns) + " |",
        "|---|" + "---:|" * len(columns),
        *(f"| {label} | " + " | ".join(cell(getattr(report, key), m) for m in columns) + " |" for key, label in ROWS),
        "",
        "MLDA-Net (ResNet-18, from scratch) trained self-supervised in MS mode with fused-SGM depth hints and",
        "uncertainty (learned) loss weighting on the synthetic drive, evaluated on the held-out drive with",
        "the KITTI Eigen protocol (crop, 1e-3..80 m, stereo scaling ×5.4: metric depth).",
        *([BOUNDARY_NOTE] if len(columns) > len(METRIC_NAMES) else []),
        "",
        "## Pictures",
        "",
        "One colour scale per row, in metres (bar on the right; bright = near). "
        "Ground-truth points are drawn enlarged; grey = no measurement.",
        "",
        f"![input, predicted depth, ground truth, hint]({figures['grid'].name})",
        "",
        *([f"![one boundary up close: prediction, ground truth, hint with edges]({figures['boundary'].name})", ""]
          if "boundary" in figures else []),
        "## Training",
        "",
        f"![training curves]({figures['curves'].name})",
        "",
        "## Time",
        "",
        "| stage | seconds | share |",
        "|---|---:|---:|",
        *(f"| {name} | {s:.1f} | {100 * s / total:.0f} % |" for name, s in stages),
        f"| **total** | **{total:.1f}** | |",
        "",
        f"Checkpoint: `{report.checkpoint}` (loads in `mldanet predict` and `mldanet evaluate`).",
        "",
    ]
    return "\n".join(lines)


STYLE = """
body{font-family:system-ui,sans-serif;max-width:1200px;margin:1.5em auto;padding:0 1em;color:#222}
h1{margin-bottom:.3em} h2{margin-top:1.4em}
.verdict{font-size:1.25em;font-weight:600;padding:.6em .9em;border-left:6px solid;margin:.4em 0 .8em}
.good{background:#e9f6ec;border-color:#2e8b45} .bad{background:#fff4e0;border-color:#d98200}
.warning{background:#fde8e8;border-left:6px solid #c62828;padding:.6em .9em;font-size:1.1em}
.note{color:#555;font-size:.92em}
table{border-collapse:collapse} td,th{padding:4px 12px;text-align:right}
td:first-child,th:first-child{text-align:left} tr:nth-child(even){background:#f3f3f3}
tr.trained td{font-weight:700} tr.total td{font-weight:700;border-top:2px solid #999}
img{max-width:100%}
"""


def html_text(text: str) -> str:
    """Escaped text with Markdown's `code` spans as <code> (the sentences are shared with report.md)."""
    return re.sub(r"`([^`]*)`", r"<code>\1</code>", html.escape(text))


def html_report(report: Any, figures: dict[str, Path], flatness: Flatness) -> str:
    stages, total = stage_rows(report.seconds)
    # Green only when both headline metrics beat the prior; a mixed or worse verdict is amber.
    good = report.trained["abs_rel"] < report.prior["abs_rel"] and report.trained["a1"] >= report.prior["a1"]
    warning = f'<p class="warning"><b>Warning.</b> {html_text(flatness.sentence())}</p>' if flatness.flat else ""
    columns = table_columns(report)
    metric_rows = "".join(
        f'<tr class="{key}"><td>{html.escape(label)}</td>'
        + "".join(f"<td>{cell(getattr(report, key), m)}</td>" for m in columns)
        + "</tr>"
        for key, label in ROWS
    )
    boundary_note = f'<p class="note">{html.escape(BOUNDARY_NOTE)}</p>' if len(columns) > len(METRIC_NAMES) else ""
    boundary_figure = (
        f'<h3>One boundary up close</h3><img src="{figures["boundary"].name}" alt="one boundary up close: prediction, '
        'ground truth and hint with their edges">' if "boundary" in figures else ""
    )
    time_rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{s:.1f}</td><td>{100 * s / total:.0f} %</td></tr>" for name, s in stages
    )
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>mldanet demo report</title>
<style>{STYLE}</style></head><body>
<h1>mldanet demo report</h1>
<p class="verdict {'good' if good else 'bad'}">{html.escape(verdict(report))}</p>
<p>{html_text(run_sentence(report))}</p>
{warning}
<table><tr><th>held-out drive</th>{''.join(f'<th>{html.escape(metric_header(m))}</th>' for m in columns)}</tr>{metric_rows}</table>
<p class="note">MLDA-Net (ResNet-18, from scratch) trained self-supervised in MS mode with fused-SGM depth hints and
uncertainty loss weighting on the synthetic drive; evaluated on the held-out drive (Eigen protocol, stereo scaling ×5.4: metres).</p>
{boundary_note}
<h2>Pictures</h2>
<p class="note">One colour scale per row, in metres (bar on the right; bright = near). Ground-truth points are drawn enlarged; grey = no measurement.</p>
<img src="{figures['grid'].name}" alt="input, predicted depth, ground truth, hint">
{boundary_figure}
<h2>Training</h2><img src="{figures['curves'].name}" alt="training curves">
<h2>Time</h2>
<table><tr><th>stage</th><th>seconds</th><th>share</th></tr>{time_rows}
<tr class="total"><td>total</td><td>{total:.1f}</td><td></td></tr></table>
<p>Checkpoint: <code>{html.escape(report.checkpoint)}</code></p></body></html>
"""


def write_report(out: Path, report: Any, figures: dict[str, Path], flatness: Flatness) -> dict[str, str]:
    """Write report.md and report.html (``report.seconds`` complete, figures already drawn)."""
    (out / "report.md").write_text(markdown_report(report, figures, flatness))
    (out / "report.html").write_text(html_report(report, figures, flatness))
    return {
        "markdown": str(out / "report.md"),
        "html": str(out / "report.html"),
        **{name: str(path) for name, path in figures.items()},
    }
