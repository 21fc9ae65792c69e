"""The default demo end to end, its time budget per stage and its metrics (``demo`` section of RESULTS.md).

    .venv/bin/python -m benchmarks.demo_budget [--out DIR]

Runs exactly what ``make demo`` runs (``mldanet demo``) and records the seconds of every stage
and the held-out metrics against the demo's targets: whole run ≤ 10 minutes; trained abs_rel
≤ 0.17, a1 ≥ 0.78 and abs_rel ≤ 0.80 × the median-depth prior's (one run; the targets are for
the mean over seeds and kernels, which ``demo_seeds.py`` measures).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.results import write_section

from mldanet.demo import run_demo
from mldanet.evaluation.metrics import METRIC_NAMES


def check(value: float, limit: float, below: bool) -> str:
    met = value <= limit if below else value >= limit
    return f"**{value:.3f}** ({'met' if met else 'missed'}: {'≤' if below else '≥'} {limit:g})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="demo_output")
    args = parser.parse_args()
    report = run_demo(args.out)
    total = report.seconds["total"]
    stages = [(name, seconds) for name, seconds in report.seconds.items() if name != "total"]
    lines = [
        "| stage | seconds | share |",
        "| --- | ---: | ---: |",
        *(f"| {name} | {seconds:.1f} | {100 * seconds / total:.0f} % |" for name, seconds in stages),
        f"| **whole run** | **{total:.0f}** ({'met' if total <= 600 else 'missed'}: ≤ 600) | |",
        "",
        "| held-out drive | " + " | ".join(METRIC_NAMES) + " |",
        "| --- |" + " ---: |" * len(METRIC_NAMES),
        *(
            f"| {row} | " + " | ".join(f"{getattr(report, row)[k]:.3f}" for k in METRIC_NAMES) + " |"
            for row in ("untrained", "prior", "trained")
        ),
        "",
        f"- trained abs_rel {check(report.trained['abs_rel'], 0.17, True)}",
        f"- trained a1 {check(report.trained['a1'], 0.78, False)}",
        f"- trained abs_rel ÷ prior abs_rel {check(report.trained['abs_rel'] / report.prior['abs_rel'], 0.80, True)}",
        "",
        "Settings: " + ", ".join(f"{k}={v}" for k, v in report.settings.items()),
    ]
    write_section("demo", "\n".join(lines), title="Demo: time budget and held-out metrics")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
