"""The default demo over seeds and CPU kernels (``demo_seeds`` section of RESULTS.md).

    .venv/bin/python -m benchmarks.demo_seeds [--seeds 0 1 2] [--kernels native avx2] [--steps N]
        [--jobs K] [--out DIR] [--tiny] [--results PATH]

Runs ``mldanet demo`` (its defaults; the seed renders the drives and seeds the training) once per
seed with the machine's native kernels and, where the CPU has AVX-512, again with AVX2 forced
(``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2``). Each run is its own process, because both
variables are read once when torch loads, and writes ``DIR/<kernels>_seed<k>``; a folder that
already holds a report.json is a finished run and is not run again, so an interrupted benchmark
resumes where it stopped (an unfinished folder is moved aside to ``<name>.interrupted-<time>``).
``--jobs K`` runs K at a time with cores / K torch threads each; their seconds are then not
single-run times and the table says so. The section tabulates every run's held-out metrics
against the median-depth prior, its flat-prediction flag and its seconds, then checks the
targets: mean abs_rel ≤ 0.17, mean a1 ≥ 0.78, mean abs_rel ≤ 0.80 × the prior's, every run
≤ 0.90 × its prior, no flat prediction, every run ≤ 600 s (one run at a time only).
``--tiny --steps 2 --results /tmp/RESULTS.md`` is the smoke check of this script.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mldanet.evaluation.metrics import METRIC_NAMES, is_better

from benchmarks.results import CPU_FLAGS, RESULTS, cpu_flags, write_section

KERNEL_ENV = {
    "native": {},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
}
SECONDS_LIMIT = 600.0


def default_kernels() -> list[str]:
    """Native kernels, and forced AVX2 too where native would pick AVX-512."""
    return ["native", "avx2"] if "avx512f" in cpu_flags() else ["native"]


def expected_settings(tiny: bool, steps: int | None, overrides: list[str] = ()) -> dict:
    """The demo settings a run of this benchmark records in its report.json (JSON types)."""
    from mldanet.demo import DemoSettings, report_settings

    settings = DemoSettings.tiny() if tiny else DemoSettings.default()
    settings.steps = steps
    settings.overrides = tuple(overrides)
    return json.loads(json.dumps(report_settings(settings)))


def finished_report(run_dir: Path, settings: dict) -> dict | None:
    """The run's report.json when it finished with these settings; None when it has to run.

    A finished run with other settings (another --steps or --tiny) would mix two experiments in
    one table, so it stops the benchmark instead of being reused.
    """
    path = run_dir / "report.json"
    if not path.is_file():
        return None
    report = json.loads(path.read_text())
    if report["settings"] != settings:
        changed = ", ".join(f"{k}={report['settings'].get(k)} (asked {v})" for k, v in settings.items() if report["settings"].get(k) != v)
        raise SystemExit(f"{run_dir} holds a finished run with other settings: {changed}; pass another --out")
    return report


def move_aside(run_dir: Path) -> None:
    """Keep an unfinished run's folder (its log says why it stopped) under a new name."""
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
    target = run_dir.with_name(f"{run_dir.name}.interrupted-{stamp}")
    run_dir.rename(target)
    print(f"{run_dir} is unfinished (no report.json): moved to {target}", flush=True)


REPO_ROOT = Path(__file__).resolve().parents[1]  # where `-m benchmarks.demo_seeds` is found


def run_one(run_dir: Path, kernels: str, seed: int, threads: int, jobs: int, args: argparse.Namespace) -> None:
    """One demo in its own process (environment decides the kernels), its output in run_dir/log.txt."""
    command = [sys.executable, "-m", "benchmarks.demo_seeds", "--child", str(run_dir), "--kernels", kernels, "--seeds", str(seed),
               "--threads", str(threads), "--jobs", str(jobs)]
    command += ["--steps", str(args.steps)] if args.steps is not None else []
    command += ["--tiny"] if args.tiny else []
    command += [f"--set={item}" for item in args.overrides]
    env = {**os.environ, **KERNEL_ENV[kernels], "OMP_NUM_THREADS": str(threads)}
    run_dir.mkdir(parents=True)
    print(f"{run_dir.name}: running ({threads} threads), log in {run_dir / 'log.txt'}", flush=True)
    start = time.perf_counter()
    with open(run_dir / "log.txt", "w") as log:
        code = subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT).returncode
    seconds = time.perf_counter() - start
    info_path = run_dir / "benchmark.json"
    if code == 0 and info_path.is_file():
        info = json.loads(info_path.read_text())
        info["process_seconds"] = round(seconds, 1)
        info_path.write_text(json.dumps(info, indent=2))
    print(f"{run_dir.name}: {'done' if code == 0 else f'FAILED (exit code {code})'} in {seconds:.0f} s", flush=True)


def child(args: argparse.Namespace) -> None:
    """Inside the run's process: the demo, then the kernels and threads it actually ran with."""
    import torch

    from mldanet.demo import run_demo

    torch.set_num_threads(args.threads)
    run_dir = Path(args.child)
    run_demo(run_dir, tiny=args.tiny, seed=args.seeds[0], steps=args.steps, overrides=args.overrides)
    info = {
        "kernels": args.kernels[0],
        "environment": KERNEL_ENV[args.kernels[0]],
        "capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "jobs": args.jobs,
    }
    (run_dir / "benchmark.json").write_text(json.dumps(info, indent=2))


def collect(out: Path, kernels: list[str], seeds: list[int], settings: dict) -> list[dict]:
    """One row per (kernels, seed): the run's report and benchmark info, or its failure."""
    rows = []
    for name in kernels:
        for seed in seeds:
            run_dir = out / f"{name}_seed{seed}"
            report = finished_report(run_dir, settings)
            info_path = run_dir / "benchmark.json"
            info = json.loads(info_path.read_text()) if info_path.is_file() else {}
            rows.append({"kernels": name, "seed": seed, "dir": run_dir, "report": report, "info": info})
    return rows


def beats_prior(report: dict, metrics: tuple[str, ...]) -> bool:
    """The trained network is better than the median-depth prior on every one of ``metrics``."""
    trained, prior = report["trained"], report["prior"]
    return all(is_better(m, trained[m], prior[m]) for m in metrics)


def mark(value: float, limit: float, below: bool, digits: int = 3) -> str:
    met = value <= limit if below else value >= limit
    return f"**{value:.{digits}f}** ({'met' if met else 'missed'}: {'≤' if below else '≥'} {limit:g})"


def run_line(row: dict) -> str:
    """A table row for one run (or its failure)."""
    report, info = row["report"], row["info"]
    head = f"| {row['kernels']} | {info.get('capability', '–')} | {row['seed']} |"
    if report is None:
        return head + f" failed: see `{row['dir'] / 'log.txt'}` |" + " |" * 10
    trained, prior = report["trained"], report["prior"]
    concurrent = "*" if info.get("jobs", 1) > 1 else ""
    process = f"{info['process_seconds']:.0f}{concurrent}" if "process_seconds" in info else "–"
    return head + (
        f" {trained['abs_rel']:.3f} | {trained['sq_rel']:.3f} | {trained['rmse']:.3f} | {trained['a1']:.3f} |"
        f" {prior['abs_rel']:.3f} | {trained['abs_rel'] / prior['abs_rel']:.2f} |"
        f" {boundary(trained)} | {boundary(prior)} |"
        f" {'yes' if report['flat_prediction'] else 'no'} | {report['seconds']['total']:.0f}{concurrent} | {process} |"
    )


def boundary(metrics: dict) -> str:
    """ε_comp in pixels (reports before the boundary metrics have none)."""
    return f"{metrics['dbe_comp']:.2f}" if "dbe_comp" in metrics else "–"


def mean_line(label: str, reports: list[dict]) -> str:
    """Means over finished runs of the metrics, the ratio to the prior and the seconds."""

    def mean(values: list[float]) -> float:
        return sum(values) / len(values)

    trained = {k: mean([r["trained"][k] for r in reports]) for k in ("abs_rel", "sq_rel", "rmse", "a1")}
    prior = mean([r["prior"]["abs_rel"] for r in reports])
    ratio = mean([r["trained"]["abs_rel"] / r["prior"]["abs_rel"] for r in reports])
    flat = sum(r["flat_prediction"] for r in reports)
    comp = [(r["trained"]["dbe_comp"], r["prior"]["dbe_comp"]) for r in reports if "dbe_comp" in r["trained"]]
    comps = f" {mean([t for t, _ in comp]):.2f} | {mean([p for _, p in comp]):.2f} |" if comp else " – | – |"
    return (
        f"| **{label}** | | | **{trained['abs_rel']:.3f}** | {trained['sq_rel']:.3f} | {trained['rmse']:.3f} |"
        f" **{trained['a1']:.3f}** | {prior:.3f} | {ratio:.2f} |{comps} {flat} of {len(reports)} |"
        f" {mean([r['seconds']['total'] for r in reports]):.0f} | |"
    )


def target_lines(rows: list[dict]) -> list[str]:
    """The demo's targets checked over the finished runs; a failed run is a miss of its own."""
    reports = [row["report"] for row in rows if row["report"] is not None]
    failed = len(rows) - len(reports)
    if not reports:
        return ["- no run finished: no target checked"]
    mean_abs_rel = sum(r["trained"]["abs_rel"] for r in reports) / len(reports)
    mean_a1 = sum(r["trained"]["a1"] for r in reports) / len(reports)
    mean_prior = sum(r["prior"]["abs_rel"] for r in reports) / len(reports)
    worst_ratio = max(r["trained"]["abs_rel"] / r["prior"]["abs_rel"] for r in reports)
    flat = sum(r["flat_prediction"] for r in reports)
    lines = [
        f"- mean abs_rel {mark(mean_abs_rel, 0.17, True)}",
        f"- mean a1 {mark(mean_a1, 0.78, False)}",
        f"- mean abs_rel ÷ mean prior abs_rel {mark(mean_abs_rel / mean_prior, 0.80, True, 2)}",
        f"- worst run's abs_rel ÷ its prior's {mark(worst_ratio, 0.90, True, 2)}",
        f"- flat predictions: **{flat} of {len(reports)}** ({'met' if flat == 0 else 'missed'}: none)",
    ]
    scored = [r for r in reports if "dbe_comp" in r["trained"]]
    if scored:
        ahead = sum(beats_prior(r, (*METRIC_NAMES, "dbe_comp")) for r in scored)
        lines.append(f"- runs better than their prior on all seven metrics and ε_comp: **{ahead} of {len(scored)}** "
                     f"({'met' if ahead == len(scored) else 'missed'}: all)")
    if failed:
        lines.append(f"- failed runs: **{failed}** (missed: every run must finish)")
    alone = [row for row in rows if row["report"] is not None and row["info"].get("jobs", 1) == 1]
    if len(alone) < len(reports):
        lines.append(
            f"- seconds ≤ {SECONDS_LIMIT:g} per run: not checked for the {len(reports) - len(alone)} run(s) that ran "
            "concurrently (marked *)" + (f"; slowest of the others {max(r['report']['seconds']['total'] for r in alone):.0f} s" if alone else "")
        )
    else:
        slowest = max(row["report"]["seconds"]["total"] for row in alone)
        lines.append(f"- slowest run's seconds {mark(slowest, SECONDS_LIMIT, True, 0)}")
    return lines


def section(rows: list[dict], args: argparse.Namespace, settings: dict) -> str:
    """The RESULTS.md section: setup, one row per run, means, targets."""
    flags = cpu_flags()
    jobs = sorted({row["info"].get("jobs", 1) for row in rows if row["report"] is not None})
    threads = sorted({row["info"].get("threads") for row in rows if row["info"].get("threads")})
    header = [
        "| kernels | ATen | seed | abs_rel | sq_rel | rmse | a1 | prior abs_rel | ÷ prior | ε_comp px | prior ε_comp px | flat | seconds | process s |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    means = []
    finished = [row for row in rows if row["report"] is not None]
    kernels = sorted({row["kernels"] for row in finished}, key=list(KERNEL_ENV).index)
    if len(kernels) > 1:
        means += [mean_line(f"mean {k}", [r["report"] for r in finished if r["kernels"] == k]) for k in kernels]
    if finished:
        means.append(mean_line("mean (all runs)", [r["report"] for r in finished]))
    return "\n".join([
        f"`mldanet demo` ({'--tiny, ' if args.tiny else ''}{''.join(f'--set {o}, ' for o in args.overrides)}"
        f"{settings['steps']} steps) for seeds "
        f"{', '.join(map(str, args.seeds))}: the seed renders the drives and seeds the training. "
        f"Each run in its own process with {', '.join(map(str, threads)) or '?'} torch thread(s); "
        + ("one run at a time." if jobs == [1] else f"**runs at a time: {' or '.join(map(str, jobs))}; "
           "seconds marked * were measured beside other runs and are not single-run times.**"),
        "",
        "CPU flags: " + ", ".join(flag if flag in flags else f"no {flag}" for flag in CPU_FLAGS) + ". "
        "Kernels: native = torch's own choice; avx2 = " + " ".join(f"`{k}={v}`" for k, v in KERNEL_ENV["avx2"].items())
        + "; the ATen column is `torch.backends.cpu.get_cpu_capability()` inside the run.",
        "",
        "Metrics on the held-out drive (stereo scaling, metres); ÷ prior = abs_rel ÷ the median-depth prior's "
        "abs_rel of the same drives; flat = the prediction collapsed to one depth (report.json "
        "`flat_prediction`); ε_comp = iBims-1's depth boundary completeness error on the rendered dense depth "
        "(pixels, lower is better); seconds = the demo's stages, process s = the whole process.",
        "",
        *header,
        *(run_line(row) for row in rows),
        *means,
        "",
        *target_lines(rows),
        "",
        f"Run folders: `{args.out}/<kernels>_seed<k>` (report.html, report.json, log.txt).",
    ])


def section_name(overrides: list[str]) -> tuple[str, str]:
    """RESULTS.md section and title: the default demo's, or one of its own per set of overrides."""
    if not overrides:
        return "demo_seeds", "Demo: seeds × CPU kernels"
    slug = "_".join(f"{key.rsplit('.', 1)[-1]}_{value}" for key, _, value in (o.partition("=") for o in overrides))
    return f"demo_seeds_{''.join(c if c.isalnum() else '_' for c in slug)}", f"Demo: seeds × CPU kernels, {', '.join(overrides)}"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--kernels", nargs="+", choices=list(KERNEL_ENV), help="default: native, and avx2 on AVX-512 CPUs")
    parser.add_argument("--steps", type=int, help="training steps, passed to mldanet demo (default: its own)")
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time, each with cores / jobs torch threads")
    parser.add_argument("--out", default="demo_seeds", help="folder of the run folders (default: demo_seeds)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="passed to mldanet demo --set (repeatable), e.g. model.structure_attention=guided")
    parser.add_argument("--tiny", action="store_true", help="mldanet demo --tiny: the smoke check of this script")
    parser.add_argument("--results", type=Path, default=RESULTS, help=f"the results file (default: {RESULTS})")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.jobs < 1:
        parser.error(f"--jobs {args.jobs}: at least 1")
    args.kernels = args.kernels or default_kernels()
    return args


def main() -> None:
    args = parse_args()
    if args.child:
        child(args)
        return
    out, settings = Path(args.out), expected_settings(args.tiny, args.steps, args.overrides)
    pending = []
    for name in args.kernels:
        for seed in args.seeds:
            run_dir = out / f"{name}_seed{seed}"
            if finished_report(run_dir, settings) is not None:
                print(f"{run_dir.name}: finished before, kept", flush=True)
                continue
            if run_dir.exists():
                move_aside(run_dir)
            pending.append((run_dir, name, seed))
    # Runs count as concurrent only when more than one is left to run at once.
    jobs = max(1, min(args.jobs, len(pending)))
    threads = max(1, len(os.sched_getaffinity(0)) // jobs)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(lambda job: run_one(*job, threads, jobs, args), pending))
    body = section(collect(out, args.kernels, args.seeds, settings), args, settings)
    name, title = section_name(args.overrides)
    path = write_section(name, body, title=title, path=args.results)
    print(body)
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
