"""``mldanet demo``: the whole method on a synthetic drive, in minutes, on the CPU or the GPU it finds.

synth (training drives + one held-out drive, KITTI raw layout) -> fused-SGM hints -> MS training
with hints and uncertainty weighting -> evaluation of the untrained network, of the per-pixel
median-depth prior of the training drives and of the trained network (stereo scaling, metres)
-> predictions for a few test frames -> report.json / report.md / report.html with pictures.
Every stage runs through the same code as on KITTI: reader, hint generator, trainer,
ground-truth export, evaluator and ``predict``.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from mldanet.config import Config, DataConfig, apply_overrides, config_from_dict, load_preset
from mldanet.data.base import FrameDataset, compute_hints, dataset_class
from mldanet.data.ground_truth import benchmark_depth_path, load_benchmark_depth
from mldanet.data.npy import load_npy
from mldanet.data.splits import parse_split_line, read_split_lines
from mldanet.units import metric_scale
from mldanet.data.kitti import BASELINE
from mldanet.data.depth_hints import HintSettings
from mldanet.report import Flatness, measure_flatness, plot_figures, verdict, write_report

STEREO_FACTOR = metric_scale(BASELINE)
DEMO_SPLIT = "synth_demo"
DEMO_DATASET = "kitti"  # the layout the demo renders its drives in


@dataclass
class DemoSettings:
    """What a demo run renders and hints; ``default()`` is the 10-minute run, ``tiny()`` the CI one.

    The training recipe is the preset ``preset`` (``presets/demo.yaml``, ``demo_tiny.yaml``), one
    config system for the demo and for ``mldanet train``; ``steps`` (None: the preset's
    ``optim.max_steps``) shortens or lengthens it.
    """

    drives: int
    frames: int
    render_width: int
    render_height: int
    hint_width: int
    hint_height: int
    hint_block_sizes: tuple[int, ...]
    hint_num_disparities: tuple[int, ...]
    preset: str = "demo"
    steps: int | None = None
    overrides: tuple[str, ...] = ()  # ``--set KEY=VALUE`` on the preset, e.g. model.structure_attention=guided
    grid_frames: int = 4
    predict_frames: int = 4
    workers: int = 2

    @classmethod
    def default(cls) -> "DemoSettings":
        return cls(
            drives=4, frames=100, render_width=640, render_height=192,
            hint_width=640, hint_height=192, hint_block_sizes=(1, 3), hint_num_disparities=(64, 96),
        )

    @classmethod
    def gpu(cls) -> "DemoSettings":
        """More drives and frames than the CPU run, for the GPU preset's 640×192 steps (``presets/demo_gpu.yaml``)."""
        from mldanet.device import usable_cores

        return cls(
            drives=6, frames=200, render_width=640, render_height=192,
            hint_width=640, hint_height=192, hint_block_sizes=(1, 3), hint_num_disparities=(64, 96),
            preset="demo_gpu", workers=max(2, usable_cores()),
        )

    @classmethod
    def tiny(cls) -> "DemoSettings":
        return cls(
            drives=2, frames=14, render_width=320, render_height=96,
            hint_width=320, hint_height=96, hint_block_sizes=(1, 3), hint_num_disparities=(32, 48),
            preset="demo_tiny", grid_frames=2, predict_frames=2,
        )

    def recipe(self) -> Config:
        """The training config of the preset, with ``overrides`` and ``steps`` applied."""
        config = apply_overrides(load_preset(self.preset), list(self.overrides))
        if self.steps is not None:
            config.optim.max_steps = self.steps
        return config


def settings_for(device: torch.device, tiny: bool = False) -> DemoSettings:
    """The tiny run when asked, else the GPU run on a CUDA device and the CPU run elsewhere."""
    if tiny:
        return DemoSettings.tiny()
    return DemoSettings.gpu() if device.type == "cuda" else DemoSettings.default()


def report_settings(settings: DemoSettings) -> dict[str, Any]:
    """What a report records of a run's settings: the rendering and the recipe's sizes and budget."""
    recipe = settings.recipe()
    return {
        **asdict(settings), "steps": recipe.optim.max_steps, "train_width": recipe.data.width,
        "train_height": recipe.data.height, "batch_size": recipe.optim.batch_size, "lr": recipe.optim.lr,
        "warmup_steps": recipe.optim.warmup_steps,
    }


@dataclass(frozen=True)
class BudgetFit:
    """How ``--minutes`` set the training length: the budget, the time the other stages take and the
    measured step time, and the steps that fitted."""

    minutes: float
    spent_s: float  # before training: rendering, hints, setup, the first evaluations
    reserve_s: float  # after training (estimated): the final evaluation, predictions, report
    step_s: float
    steps: int

    def sentence(self) -> str:
        return (
            f"{self.steps} steps fitted a {self.minutes:g}-minute budget: {self.step_s:.3f} s a step (measured on the "
            f"first steps), {self.spent_s:.0f} s before training and {self.reserve_s:.0f} s estimated after it"
        )


def fit_steps(budget_s: float, spent_s: float, reserve_s: float, step_s: float, steps_done: int) -> int:
    """The run's total steps under a wall-time budget: those done, plus as many more as fit in the
    time the budget leaves (never fewer than those done)."""
    if step_s <= 0:
        raise ValueError(f"a step time must be positive, not {step_s}")
    left = budget_s - spent_s - reserve_s
    return steps_done + max(0, int(left // step_s))


# Steps timed before the budget is fitted; they stay within the warm-up, whose learning rates do not
# depend on the run's length, so a fitted run is the run of ``--steps N`` with the N that fitted.
BUDGET_PROBE_STEPS = 5
# The predictions and the report's figures after training, beside the final evaluation (measured:
# 3-6 s on a 2-core CPU).
REPORT_RESERVE_S = 10.0


@dataclass
class DemoReport:
    settings: dict[str, Any]
    device: str = "cpu"
    budget: dict[str, Any] | None = None
    untrained: dict[str, float] = field(default_factory=dict)
    prior: dict[str, float] = field(default_factory=dict)
    trained: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    checkpoint: str = ""
    files: dict[str, str] = field(default_factory=dict)
    verdict: str = ""
    # The trained network's disparity variation (std / mean per image) against the ground truth's;
    # flat_prediction when it collapsed to one depth everywhere (report.measure_flatness).
    flat_prediction: bool = False
    depth_variation: dict[str, float] = field(default_factory=dict)


class StageClock:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        print(f"\n== {name}", flush=True)
        start = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - start, 2)


def demo_config(settings: DemoSettings, data: Path, splits_dir: Path, hints: Path, run_dir: Path, seed: int) -> Config:
    """The demo's preset with this run's data, hints, run folder and seed."""
    config = settings.recipe()
    return config_from_dict(
        {
            "data": {"data_path": str(data), "splits_dir": str(splits_dir), "split": DEMO_SPLIT, "hints_dir": str(hints)},
            "train": {"out": str(run_dir), "seed": seed},
        },
        base=config,
    )


@dataclass
class DemoData:
    """A rendered synthetic drive set with its hints, test ground truth and median-depth prior."""

    root: Path
    splits_dir: Path
    hints_dir: Path
    test_lines: list[str]
    grid_lines: list[str]
    gt_test: list[np.ndarray]  # Velodyne, as KITTI's: the seven metrics
    prior_depth: np.ndarray
    dense_test: list[np.ndarray] = field(default_factory=list)  # rendered depth: the depth boundaries


def demo_split(splits_dir: Path) -> tuple[list[str], list[str]]:
    """Write the ``synth_demo`` split from ``synth``; return its train and test lines.

    A short run draws each training frame about once, so it trains on one view per frame (left
    and right alternating): both cameras are seen and every hint computed is used. It tests on
    every other frame of the held-out drive (consecutive frames are 1 m apart and much alike).
    """

    def alternate_view(line: str) -> bool:
        _, index, side = parse_split_line(line)
        return side == ("l" if index % 2 == 0 else "r")

    train = [line for line in read_split_lines("synth", "train", splits_dir) if alternate_view(line)]
    val = read_split_lines("synth", "val", splits_dir)
    test = read_split_lines("synth", "test", splits_dir)[::2]
    folder = splits_dir / DEMO_SPLIT
    folder.mkdir(parents=True, exist_ok=True)
    for which, lines in (("train", train), ("val", val), ("test", test)):
        (folder / f"{which}_files.txt").write_text("".join(line + "\n" for line in lines))
    return train, test


def spread_evenly(lines: list[str], count: int) -> list[str]:
    """``count`` lines spread evenly over ``lines`` (the frames of the picture grid)."""
    return lines[:: max(1, len(lines) // count)][:count]


def prepare_data(out: Path, settings: DemoSettings, seed: int, clock: StageClock) -> DemoData:
    """Render the drives, compute the hints the training lines need and the test ground truth."""
    from mldanet.synth import write_synthetic_drives

    root, hints_dir = out / "kitti", out / "hints"
    with clock.stage("synth: render the drives"):
        write_synthetic_drives(
            root, drives=settings.drives, frames=settings.frames, seed=seed, width=settings.render_width,
            height=settings.render_height, workers=settings.workers, img_ext=".jpg",
            layout=dataset_class(DEMO_DATASET).synth_layout,
        )
    splits_dir = root / "splits"
    train_lines, test_lines = demo_split(splits_dir)
    grid_lines = spread_evenly(test_lines, settings.grid_frames)

    with clock.stage("hints: fused SGM"):
        # the drives were just rendered anew (another seed or size renders other images), so hints
        # an earlier demo left in this folder are never reused
        hint_settings = HintSettings(
            settings.hint_height, settings.hint_width, settings.hint_block_sizes, settings.hint_num_disparities
        )
        compute_hints(
            drive_data(root), train_lines + grid_lines, hints_dir, hint_settings, workers=settings.workers, overwrite=True
        )

    with clock.stage("ground truth: Velodyne -> depth maps"):
        return load_demo_data(out, settings)


def load_demo_data(out: Path, settings: DemoSettings) -> DemoData:
    """The drives and hints already under ``out`` (written by :func:`prepare_data`), with the test
    ground truth and the median-depth prior read from them."""
    root = out / "kitti"
    splits_dir = root / "splits"
    # the split prepare_data wrote (demo_split would write it again)
    train_lines, test_lines = (read_split_lines(DEMO_SPLIT, which, splits_dir) for which in ("train", "test"))
    grid_lines = spread_evenly(test_lines, settings.grid_frames)
    gt_test = ground_truth(drive_frames(root, test_lines))
    prior_depth = median_depth_prior(ground_truth(drive_frames(root, [line for line in train_lines if line.endswith(" l")])))
    dense_test = [dense_depth_for_line(root, line) for line in test_lines]
    return DemoData(root, splits_dir, out / "hints", test_lines, grid_lines, gt_test, prior_depth, dense_test)


def score_boundaries(pred_disps: list[np.ndarray], data: DemoData, stereo_factor: float) -> dict[str, float]:
    """Depth boundary errors against the rendered depth over the whole frame (no Eigen crop: the
    crop exists for the Velodyne's field of view, and it would cut every roof line)."""
    from mldanet.evaluation.protocol import evaluate_disparities

    result = evaluate_disparities(
        pred_disps, data.dense_test, scaling="stereo", stereo_factor=stereo_factor, eigen_crop=False, boundaries=True
    )
    return dict(result.boundary or {})


def drive_frames(root: Path, lines: list[str], hints_dir: Path | None = None, height: int = 64, width: int = 192) -> FrameDataset:
    """The target frames of ``lines`` as training and evaluation read the drives (the KITTI dataset
    class: images, ground truth, hints), at ``height``×``width``."""
    from mldanet.data.base import build_dataset

    data = drive_data(root, height, width)
    return build_dataset(data, lines, (0,), train=False, source=root / "splits" / DEMO_SPLIT, hints_dir=hints_dir)


def drive_data(root: Path, height: int = 64, width: int = 192) -> DataConfig:
    """The rendered drives as a dataset config: the KITTI raw layout ``synth`` writes, at ``height``×``width``."""
    return DataConfig(dataset=DEMO_DATASET, data_path=str(root), height=height, width=width, img_ext=".jpg")


def ground_truth(frames: FrameDataset) -> list[np.ndarray]:
    """Each frame's Velodyne ground truth, projected into its camera (full image size)."""
    return [frames.ground_truth(item) for item in frames.items]


def held_out_set(data: DemoData, recipe: Config) -> FrameDataset:
    """The held-out drive's test frames (target view only) at the size ``recipe`` trains at."""
    return drive_frames(data.root, data.test_lines, height=recipe.data.height, width=recipe.data.width)


def evaluate_on_test(net: torch.nn.Module, data: DemoData, recipe: Config) -> tuple[dict[str, float], np.ndarray]:
    """The 7 metrics of ``net`` on the held-out drive (stereo scaling, metres) at the size ``recipe`` trains
    at, and its disparities."""
    from mldanet.evaluation.inference import predict_disparities
    from mldanet.evaluation.protocol import evaluate_disparities

    disps = predict_disparities(
        net.eval(), held_out_set(data, recipe), batch_size=8, device="cpu", min_depth=recipe.model.min_depth,
        max_depth=recipe.model.max_depth,
    )
    result = evaluate_disparities(list(disps), data.gt_test, scaling="stereo", stereo_factor=recipe.depth_scale)
    metrics = {k: float(v) for k, v in result.metrics.items()}
    if data.dense_test:
        metrics |= score_boundaries(list(disps), data, recipe.depth_scale)
    return metrics, disps


def evaluate_prior(data: DemoData, recipe: Config) -> dict[str, float]:
    """The seven metrics of the median-depth prior at its full size; its boundaries at the size the
    network predicts (``recipe``'s), as the network's are scored."""
    from mldanet.data.ground_truth import resize_depth_nearest
    from mldanet.evaluation.protocol import evaluate_disparities

    # The prior is metric; as a disparity it is 5.4 / depth so that stereo scaling returns it unchanged.
    prior_disp = STEREO_FACTOR / np.maximum(data.prior_depth, 1e-3)
    result = evaluate_disparities([prior_disp] * len(data.gt_test), data.gt_test, scaling="stereo")
    metrics = {k: float(v) for k, v in result.metrics.items()}
    if data.dense_test:
        small = resize_depth_nearest(prior_disp, recipe.data.height, recipe.data.width)
        metrics |= score_boundaries([small] * len(data.dense_test), data, STEREO_FACTOR)
    return metrics


def run_demo(
    out: str | Path, tiny: bool = False, seed: int = 0, steps: int | None = None, device: str = "auto",
    minutes: float | None = None, overrides: tuple[str, ...] | list[str] = (),
) -> DemoReport:
    """The whole demo into ``out``. ``device``: auto (CUDA when PyTorch sees it), cpu or cuda; on CUDA the
    GPU recipe unless ``tiny``. ``minutes``: the whole run's wall-time budget, which sets the steps
    (``steps`` is then ignored). ``overrides``: ``section.key=value`` strings on the recipe's preset."""
    from mldanet.device import resolve_device
    from mldanet.predict import predict_paths
    from mldanet.models.checkpoint import load_depth_net
    from mldanet.training.datasets import build_datasets, derived_config
    from mldanet.training.trainer import Trainer

    if minutes is not None and minutes <= 0:
        raise ValueError(f"--minutes must be positive, not {minutes}")
    started = time.perf_counter()
    torch_device = resolve_device(device)
    settings = settings_for(torch_device, tiny)
    settings.steps = steps
    settings.overrides = tuple(overrides)
    settings.recipe()  # a bad override stops the run before any rendering
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    clock = StageClock()
    report = DemoReport(settings=report_settings(settings), device=device_name(torch_device))
    data = prepare_data(out, settings, seed, clock)
    run_dir = out / "run"

    with clock.stage("setup: datasets and networks"):
        config = demo_config(settings, data.root, data.splits_dir, data.hints_dir, run_dir, seed)
        config.train.device = torch_device.type
        train_set, _ = build_datasets(config)
        config = derived_config(config, train_set)
        trainer = Trainer(config, train_set, None)
    with clock.stage("evaluate: untrained network"):
        report.untrained, _ = evaluate_on_test(trainer.depth_net, data, config)
    with clock.stage("evaluate: median-depth prior of the training drives"):
        report.prior = evaluate_prior(data, config)
    if minutes is not None:
        probe = min(BUDGET_PROBE_STEPS, config.optim.warmup_steps + 1, trainer.total_steps)
        stage = f"train: the first {probe} steps, timed for the {minutes:g}-minute budget"
        step_times: list[float] = []
        trainer.on_log = lambda _step, _values: step_times.append(time.perf_counter())
        with clock.stage(stage):
            trainer.train(stop_at_step=probe)
        timed = step_times[1:]  # the first step pays for the allocations
        step_s = (timed[-1] - timed[0]) / (len(timed) - 1) if len(timed) > 1 else clock.seconds[stage] / probe
        reserve = clock.seconds["evaluate: untrained network"] + REPORT_RESERVE_S
        spent = time.perf_counter() - started
        fit = BudgetFit(minutes, round(spent, 1), round(reserve, 1), round(step_s, 4),
                        fit_steps(60 * minutes, spent, reserve, step_s, trainer.state.step))
        trainer.set_total_steps(fit.steps)
        if fit.steps == trainer.state.step:  # no time left to train on: the timed steps' checkpoint is the run's end
            trainer.save()
        report.budget = asdict(fit)
        print(fit.sentence(), flush=True)
        # A machine that slows down (another job starts) must not overrun the budget: training ends
        # at the last step that leaves the reserve, as a shorter run, and the report says so.
        deadline = started + 60 * minutes - reserve

        def keep_to_budget(_step: int, _values: dict[str, float]) -> None:
            if time.perf_counter() + step_s > deadline:
                trainer.stop_after_this_step()

        trainer.on_log = keep_to_budget
    with clock.stage(f"train: MLDA-Net MS + hints, {trainer.total_steps} steps"):
        trainer.train()
    report.settings["steps"] = trainer.state.step
    if report.budget is not None and trainer.state.step < trainer.total_steps:
        report.budget["stopped_at"] = trainer.state.step
        print(f"the budget ran out at step {trainer.state.step} of {trainer.total_steps}: the steps slowed down", flush=True)
    checkpoint = trainer.run.last
    report.checkpoint = str(checkpoint)
    with clock.stage("evaluate: trained network"):
        net, _ = load_depth_net(checkpoint)
        report.trained, trained_disps = evaluate_on_test(net, data, config)
        flatness = measure_flatness(list(trained_disps), data.gt_test)
    grid_lines = data.grid_lines
    grid = drive_frames(data.root, grid_lines, data.hints_dir)
    images = [grid.frame_path(item, 0) for item in grid.items]
    with clock.stage("predict: test frames"):
        predict_paths(checkpoint, images[: settings.predict_frames], out / "predictions")

    with clock.stage("report: figures"):
        grid_index = [data.test_lines.index(line) for line in grid_lines]
        figures = plot_figures(
            out,
            history=trainer.state.history,
            images=images,
            pred_depths=[STEREO_FACTOR / np.maximum(trained_disps[i], 1e-6) for i in grid_index],
            gt_depths=[data.gt_test[i] for i in grid_index],
            hints=[load_npy(grid.hint_path(item), "depth hint") * STEREO_FACTOR for item in grid.items],
            dense_depths=[data.dense_test[i] for i in grid_index],
        )
    # Only small text files are written after this point (milliseconds), so the stages add up to the run.
    report.seconds = {**clock.seconds, "total": round(sum(clock.seconds.values()), 2)}
    report.verdict = verdict(report)
    report.flat_prediction = flatness.flat
    report.depth_variation = {
        "prediction": flatness.prediction, "ground_truth": flatness.ground_truth, "threshold": flatness.threshold
    }
    report.files = write_report(out, report, figures, flatness)
    (out / "report.json").write_text(json.dumps(asdict(report), indent=2))
    print_summary(report, flatness, out)
    return report


def device_name(device: torch.device) -> str:
    """The device as a reader knows it: the GPU's name, or the CPU with its torch threads."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def print_summary(report: DemoReport, flatness: Flatness, out: Path) -> None:
    """The metrics, the verdict and (when flat) the warning on the console."""
    from mldanet.evaluation.protocol import format_metrics_row

    print()
    print("                 " + format_metrics_row(report.trained).splitlines()[0])
    for name in ("untrained", "prior", "trained"):
        print(f"{name:>16s} " + format_metrics_row(getattr(report, name)).splitlines()[-1])
    print(f"\n{report.verdict}")
    if flatness.flat:
        print(f"\nWARNING: {flatness.sentence()}")
    print(f"\nreport: {out / 'report.html'}  ({report.seconds['total']:.0f} s)")


def dense_depth_for_line(root: Path, line: str) -> np.ndarray:
    """The rendered (dense) depth of a split line, metres, 0 for the sky (``proj_depth/groundtruth``)."""
    return load_benchmark_depth(benchmark_depth_path(root, *parse_split_line(line)))


def median_depth_prior(depths: list[np.ndarray]) -> np.ndarray:
    """Per-pixel median of the valid ground-truth depths; pixels never measured get the global median."""
    stack = np.stack(depths).astype(np.float32)
    stack[stack <= 0] = np.nan
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            prior = np.nanmedian(stack, axis=0)
    return np.where(np.isfinite(prior), prior, np.nanmedian(stack)).astype(np.float32)
