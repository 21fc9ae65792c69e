"""The embedded default end to end: synth -> hints -> train -> evaluate -> predict -> report."""

import html
import json
import re
from types import SimpleNamespace

import numpy as np
import pytest

from mldanet.cli import main
from mldanet.demo import median_depth_prior
from mldanet.report import dilate_points, measure_flatness, metre_ticks, verdict


def test_median_depth_prior_ignores_missing_measurements():
    a = np.array([[1.0, 0.0], [4.0, 0.0]], np.float32)
    b = np.array([[3.0, 2.0], [0.0, 0.0]], np.float32)
    c = np.array([[5.0, 0.0], [8.0, 0.0]], np.float32)
    prior = median_depth_prior([a, b, c])
    # per pixel median of the valid values; a never-measured pixel gets the median of all valid values (3.5)
    np.testing.assert_allclose(prior, [[3.0, 2.0], [6.0, 3.5]])


def two_valued(low: float, high: float, shape=(4, 6)) -> np.ndarray:
    """A map whose left half is ``low`` and right half ``high``."""
    values = np.full(shape, low, np.float64)
    values[:, shape[1] // 2 :] = high
    return values


# Ground truth with disparities 1 and 4 on its valid points (depths 1 and 0.25) and a row of
# missing points: std / mean = 1.5 / 2.5 = 0.6, so flat means a prediction below 0.05 × 0.6 = 0.03.
GROUND_TRUTH = two_valued(1.0, 0.25)
GROUND_TRUTH[0] = 0.0


def test_a_constant_prediction_is_flat():
    flatness = measure_flatness([np.full((4, 6), 2.0)] * 2, [GROUND_TRUTH] * 2)
    assert flatness.prediction == 0.0
    assert flatness.ground_truth == pytest.approx(0.6)
    assert flatness.threshold == pytest.approx(0.03)
    assert flatness.flat
    assert "The predicted depth is flat" in flatness.sentence()


def test_a_structured_prediction_is_not_flat():
    # disparities 1 and 3: std / mean = 1 / 2
    flatness = measure_flatness([two_valued(1.0, 3.0), two_valued(3.0, 1.0)], [GROUND_TRUTH] * 2)
    assert flatness.prediction == pytest.approx(0.5)
    assert not flatness.flat


@pytest.mark.parametrize(
    ("spread", "gt_spread", "flat"),
    [
        (0.025, 0.6, True),  # below 5 % of the ground truth's 0.6
        (0.035, 0.6, False),
        (0.008, 0.1, True),  # 5 % of 0.1 is 0.005: the absolute floor 0.01 decides
        (0.012, 0.1, False),
    ],
)
def test_flat_means_below_five_percent_of_the_ground_truth_or_below_one_percent(spread, gt_spread, flat):
    prediction = two_valued(1.0 - spread, 1.0 + spread)
    ground_truth = 1.0 / two_valued(1.0 - gt_spread, 1.0 + gt_spread)
    flatness = measure_flatness([prediction], [ground_truth])
    assert flatness.prediction == pytest.approx(spread, rel=1e-5)  # the monitor's float32 statistic
    assert flatness.ground_truth == pytest.approx(gt_spread, rel=1e-5)
    assert flatness.flat is flat


def metrics(abs_rel: float, a1: float) -> dict[str, float]:
    return {"abs_rel": abs_rel, "a1": a1}


def test_verdict_when_the_network_beats_the_prior():
    report = SimpleNamespace(trained=metrics(0.162, 0.81), prior=metrics(0.208, 0.69), untrained=metrics(0.910, 0.0))
    assert verdict(report) == (
        "The trained MLDA-Net beats the median-depth prior: abs_rel 0.162 = 0.78 × the prior's 0.208 "
        "and 0.18 × the untrained network's 0.910; a1 0.81 vs 0.69."
    )


def test_verdict_says_when_a1_disagrees_with_abs_rel():
    report = SimpleNamespace(trained=metrics(0.352, 0.45), prior=metrics(0.432, 0.52), untrained=metrics(0.873, 0.0))
    assert verdict(report) == (
        "The trained MLDA-Net beats the median-depth prior on abs_rel but not on a1: abs_rel 0.352 = 0.81 × "
        "the prior's 0.432 and 0.40 × the untrained network's 0.873; a1 0.45 vs 0.52."
    )


def test_verdict_when_the_network_is_worse_than_the_prior():
    report = SimpleNamespace(trained=metrics(0.250, 0.60), prior=metrics(0.200, 0.69), untrained=metrics(1.0, 0.0))
    assert verdict(report) == (
        "The trained MLDA-Net is worse than the median-depth prior: abs_rel 0.250 = 1.25 × the prior's 0.200 "
        "and 0.25 × the untrained network's 1.000; a1 0.60 vs 0.69; it has not learned the scene yet."
    )


def test_verdict_names_the_metrics_that_disagree_with_abs_rel():
    """A run that loses on abs_rel but wins on the other six has learned something: no "not learned"."""
    prior = {"abs_rel": 0.208, "sq_rel": 2.389, "rmse": 7.501, "rmse_log": 0.311, "a1": 0.690, "a2": 0.855, "a3": 0.929}
    trained = {"abs_rel": 0.233, "sq_rel": 2.088, "rmse": 6.868, "rmse_log": 0.291, "a1": 0.706, "a2": 0.885, "a3": 0.951}
    report = SimpleNamespace(trained=trained, prior=prior, untrained={"abs_rel": 0.907, "a1": 0.0})
    assert verdict(report) == (
        "The trained MLDA-Net is worse than the median-depth prior on abs_rel but better on sq_rel, rmse, rmse_log, "
        "a1, a2, a3: abs_rel 0.233 = 1.12 × the prior's 0.208 and 0.26 × the untrained network's 0.907; a1 0.71 vs 0.69."
    )
    mostly_worse = {**trained, "rmse": 8.0, "rmse_log": 0.4, "a1": 0.6}
    assert verdict(SimpleNamespace(trained=mostly_worse, prior=prior, untrained=report.untrained)).endswith(
        "it has not learned the scene yet."
    )


def test_training_curves_leave_out_a_negative_total(tmp_path):
    """Learned weights make the total negative; the log-scale panel then shows the positive terms."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mldanet.report import plot_training_curves

    history = [
        {"step": k, "loss/total": 0.3 - 0.1 * k, "loss/reprojection": 0.02, "loss/hints": 0.3, "loss/smoothness": 0.01, "lr": 1e-4}
        for k in range(6)
    ]
    drawn = []
    original = plt.Axes.plot
    plt.Axes.plot = lambda self, x, y, label=None, **kw: drawn.append(label) or original(self, x, y, label=label, **kw)
    try:
        plot_training_curves(history, tmp_path / "curves.png")
    finally:
        plt.Axes.plot = original
    assert (tmp_path / "curves.png").stat().st_size > 0
    assert "total loss" not in drawn and {"reprojection", "hints", "smoothness"} <= set(drawn)


def test_dilated_points_grow_to_squares_and_the_nearer_point_wins():
    depth = np.zeros((5, 6))
    depth[2, 1], depth[2, 3] = 4.0, 2.0
    grown = dilate_points(depth, 3)
    expected = np.zeros((5, 6))
    expected[1:4, 0:3] = 4.0
    expected[1:4, 2:5] = 2.0  # column 2 is in both squares: the point at 2 m is in front
    np.testing.assert_allclose(grown, expected)


def test_metre_ticks_run_from_infinity_to_the_near_depth_without_crowding():
    # 7 m sits 17 % of the bar above 10 m; 5 m is 20 % below the top (4 m)
    assert metre_ticks(4.0) == [np.inf, 20.0, 10.0, 5.0, 4.0]
    # with the top at 4.6 m, 7 m is 20 % above 10 m and stays; 5 m would be 8 % below the top
    assert metre_ticks(4.6) == [np.inf, 20.0, 10.0, 7.0, 4.6]


def stage_table(markdown: str) -> tuple[list[float], str]:
    """The seconds of the stage rows of report.md's time table, and its total cell."""
    table = markdown.split("| stage | seconds | share |", 1)[1]
    rows = re.findall(r"^\| ([^|*]+) \| ([0-9.]+) \| [0-9]+ % \|$", table, re.M)
    total = re.search(r"^\| \*\*total\*\* \| \*\*([0-9.]+)\*\* \| \|$", table, re.M).group(1)
    return [float(seconds) for _, seconds in rows], total


def test_fit_steps_fills_what_the_budget_leaves():
    from mldanet.demo import fit_steps

    # 600 s budget, 100 s spent, 50 s reserved: 450 s at 2 s a step = 225 more steps after the 5 done
    assert fit_steps(600, 100, 50, 2.0, 5) == 230
    assert fit_steps(600, 100, 50, 2.3, 5) == 5 + 195  # floor(450 / 2.3) = 195.6 -> 195
    # a budget already spent keeps the steps done, never fewer
    assert fit_steps(60, 70, 10, 1.0, 4) == 4
    with pytest.raises(ValueError, match="step time must be positive, not 0"):
        fit_steps(60, 0, 0, 0.0, 1)


def test_demo_settings_follow_the_device():
    import torch

    from mldanet.config import load_preset
    from mldanet.demo import settings_for

    assert settings_for(torch.device("cpu")).preset == "demo"
    gpu = settings_for(torch.device("cuda"))
    recipe = load_preset(gpu.preset)
    assert gpu.preset == "demo_gpu" and (recipe.data.width, recipe.data.height) == (gpu.render_width, gpu.render_height)
    assert recipe.train.device == "cuda" and recipe.optim.max_steps > 10 * load_preset("demo").optim.max_steps
    assert settings_for(torch.device("cuda"), tiny=True).preset == "demo_tiny"


def test_demo_overrides_change_the_recipe_and_a_bad_one_stops_before_rendering(tmp_path, capsys):
    from mldanet.demo import DemoSettings

    settings = DemoSettings.tiny()
    settings.overrides = ("model.structure_attention=residual", "optim.lr=0.001")
    recipe = settings.recipe()
    assert (recipe.model.structure_attention, recipe.optim.lr) == ("residual", 0.001)
    untouched = DemoSettings.tiny().recipe().model  # the preset itself is unchanged
    assert untouched.structure_attention == "guided" and DemoSettings.tiny().recipe().optim.lr != 0.001

    assert main(["demo", "--tiny", "--set", "model.structure_attention=sideways", "--out", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert "structure_attention" in err and "sideways" in err and "Traceback" not in err
    assert not (tmp_path / "d").exists()


def test_demo_on_an_absent_gpu_or_a_bad_budget_is_one_line(tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["demo", "--tiny", "--device", "cuda", "--out", str(tmp_path / "d")]) == 2
    assert "--device cuda was asked for, but PyTorch sees no CUDA device" in capsys.readouterr().err
    assert main(["demo", "--tiny", "--minutes", "0", "--out", str(tmp_path / "d")]) == 2
    assert "--minutes must be positive, not 0" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("minutes", [1, 0.05])  # 0.05: spent before training, only the timed steps run
def test_tiny_demo_fits_a_budget(tmp_path, capsys, minutes):
    out = tmp_path / "demo"
    assert main(["demo", "--tiny", "--minutes", str(minutes), "--out", str(out)]) == 0
    console = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    budget = report["budget"]
    trained = budget.get("stopped_at", budget["steps"])  # a machine that slows down stops at the deadline
    assert budget["minutes"] == minutes and report["settings"]["steps"] == trained >= 5
    # the fit: the 5 steps timed plus what the budget leaves at the measured step time (the report's
    # figures are rounded, so within a step)
    left = 60 * minutes - budget["spent_s"] - budget["reserve_s"]
    assert abs(budget["steps"] - max(5, 5 + left / budget["step_s"])) <= 1
    assert f"{budget['steps']} steps fitted a {minutes:g}-minute budget" in console
    assert f"train: MLDA-Net MS + hints, {budget['steps']} steps" in report["seconds"]
    # Training ends at the last step that leaves the reserve for the stages after it; only a step that
    # runs much slower than the timed ones (another job starting on the machine) can overrun.
    stages = list(report["seconds"].items())
    until_trained = sum(s for name, s in stages[: [n for n, _ in stages].index(f"train: MLDA-Net MS + hints, {budget['steps']} steps") + 1])
    if budget["spent_s"] + budget["reserve_s"] < 60 * minutes:
        assert until_trained <= 60 * minutes - budget["reserve_s"] + 3 * budget["step_s"], report["seconds"]
    else:  # the budget was spent before training: only the timed steps ran
        assert trained == 5
    from mldanet.models.checkpoint import load_checkpoint

    checkpoint = load_checkpoint(out / "run" / "checkpoints" / "last.pt")
    assert checkpoint["step"] == trained and checkpoint["config"]["optim"]["max_steps"] == budget["steps"]
    assert report["device"].startswith("cpu (")
    run_line = f"Trained on {report['device']}: {trained} steps of batch 2 at 192×64"
    assert run_line in (out / "report.md").read_text() and run_line in (out / "report.html").read_text()
    assert f"`--minutes {minutes:g}`" in (out / "report.md").read_text()


def test_tiny_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--tiny", "--out", str(out)]) == 0
    console = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    keys = {"abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3"}
    boundary_keys = {"dbe_acc", "dbe_comp", "edge_precision", "edge_recall", "edge_f1", "count"}
    for row in ("untrained", "prior", "trained"):
        assert set(report[row]) == keys | boundary_keys
        assert 0 <= report[row]["dbe_acc"] <= 10 and 0 < report[row]["dbe_comp"] <= 10
    # Not a1: 24 steps from scratch can leave every pixel beyond the 1.25 ratio (seed 0 without the
    # decoder's CA: a1 0 before and after while abs_rel falls from 0.90 to 0.72).
    assert report["trained"]["abs_rel"] < report["untrained"]["abs_rel"]
    assert report["trained"]["rmse"] < report["untrained"]["rmse"]
    for name in ("report.md", "report.html", "training_curves.png", "picture_grid.png", "boundary_crop.png",
                 "run/checkpoints/last.pt"):
        assert (out / name).is_file(), name
    assert {
        "synth: render the drives", "setup: datasets and networks", "train: MLDA-Net MS + hints, 24 steps",
        "report: figures", "total",
    } <= set(report["seconds"])
    assert list((out / "predictions").glob("*_depth.png"))
    markdown = (out / "report.md").read_text()
    page = (out / "report.html").read_text()
    assert "picture_grid.png" in page and "boundary_crop.png" in page and "boundary_crop.png" in markdown
    assert "ε_comp px ↓" in markdown and f"{report['trained']['dbe_comp']:.2f}" in markdown

    # The trained row's boundaries are what `mldanet evaluate` measures on the drives' dense maps.
    split = out / "kitti" / "splits" / "synth_demo" / "test_files.txt"
    assert main(["evaluate", "--checkpoint", str(out / "run"), "--data-path", str(out / "kitti"), "--split-file", str(split),
                 "--benchmark-dir", str(out / "kitti"), "--no-eigen-crop", "--num-workers", "0",
                 "--json", str(tmp_path / "eval.json")]) == 0
    measured = json.loads((tmp_path / "eval.json").read_text())["boundary"]
    for key in boundary_keys:
        assert measured[key] == pytest.approx(report["trained"][key], abs=1e-6), key

    # A study that starts again on the same folder reads back the same ground truth and prior.
    from mldanet.config import load_config_file
    from mldanet.demo import DemoSettings, evaluate_prior, load_demo_data

    again = load_demo_data(out, DemoSettings.tiny())
    recipe = load_config_file(out / "run" / "config.yaml")
    assert evaluate_prior(again, recipe) == pytest.approx(report["prior"], abs=1e-9)

    # The verdict, with its ratios computed from the numbers in report.json.
    trained, prior, untrained = (report[row]["abs_rel"] for row in ("trained", "prior", "untrained"))
    relation = "beats" if trained < prior else "is worse than"
    numbers = (
        f"abs_rel {trained:.3f} = {trained / prior:.2f} × the prior's {prior:.3f} and "
        f"{trained / untrained:.2f} × the untrained network's {untrained:.3f}; "
        f"a1 {report['trained']['a1']:.2f} vs {report['prior']['a1']:.2f}"
    )
    assert report["verdict"].startswith(f"The trained MLDA-Net {relation} the median-depth prior")
    assert numbers in report["verdict"]
    for text in (markdown, html.unescape(page), console):
        assert report["verdict"] in text

    # The time table lists every stage and a total that is their sum.
    stages = [seconds for name, seconds in report["seconds"].items() if name != "total"]
    assert report["seconds"]["total"] == pytest.approx(sum(stages), abs=1e-6)
    shown, total = stage_table(markdown)
    assert shown == [float(f"{s:.1f}") for s in stages]
    assert total == f"{sum(stages):.1f}"
    assert f"<tr class=\"total\"><td>total</td><td>{sum(stages):.1f}</td>" in page

    # The flat warning appears exactly when the measured variation is below the threshold.
    variation = report["depth_variation"]
    assert report["flat_prediction"] is (variation["prediction"] < variation["threshold"])
    for text in (markdown, page, console):
        assert ("The predicted depth is flat" in text) is report["flat_prediction"]


def test_demo_split_takes_one_view_per_frame_and_every_other_test_frame(tmp_path):
    from mldanet.demo import DEMO_SPLIT, demo_split

    synth = tmp_path / "splits" / "synth"
    synth.mkdir(parents=True)
    drive, test_drive = "2000_01_01/2000_01_01_drive_0001_sync", "2000_01_01/2000_01_01_drive_0002_sync"
    (synth / "train_files.txt").write_text("".join(f"{drive} {i} {side}\n" for i in range(1, 5) for side in "lr"))
    (synth / "val_files.txt").write_text(f"{drive} 10 l\n")
    (synth / "test_files.txt").write_text("".join(f"{test_drive} {i} l\n" for i in range(1, 6)))
    train, test = demo_split(tmp_path / "splits")
    assert train == [f"{drive} 1 r", f"{drive} 2 l", f"{drive} 3 r", f"{drive} 4 l"]
    assert test == [f"{test_drive} {i} l" for i in (1, 3, 5)]
    written = tmp_path / "splits" / DEMO_SPLIT
    assert (written / "train_files.txt").read_text().splitlines() == train
    assert (written / "test_files.txt").read_text().splitlines() == test
    assert (written / "val_files.txt").read_text() == f"{drive} 10 l\n"


def test_spread_evenly_takes_count_lines_from_first_to_last_in_equal_strides():
    from mldanet.demo import spread_evenly

    lines = [str(i) for i in range(10)]
    assert spread_evenly(lines, 3) == ["0", "3", "6"]
    assert spread_evenly(lines, 5) == ["0", "2", "4", "6", "8"]
    assert spread_evenly(lines[:2], 4) == ["0", "1"]
