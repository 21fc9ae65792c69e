"""Mean ± std over training seeds, and which rows differ from a reference row beyond that spread."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

# row → key → (mean, std over seeds (nan for one seed), number of seeds)
Stats = dict[str, dict[str, tuple[float, float, int]]]


def seed_stats(runs: Mapping[str, Iterable[Mapping[str, float]]], keys: Iterable[str]) -> Stats:
    """Per row (in ``runs``' order) and key, the mean and sample std (ddof 1) over that row's runs."""
    keys = list(keys)
    out: Stats = {}
    for row, row_runs in runs.items():
        row_runs = list(row_runs)
        if row_runs:
            out[row] = {}
            for key in keys:
                values = [r[key] for r in row_runs]
                std = float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")
                out[row][key] = (float(np.mean(values)), std, len(values))
    return out


def beyond_spread(stats: Stats, reference: str, keys: Iterable[str], lower_is_better: set[str],
                  names: Mapping[str, str] | None = None, rows: Iterable[str] | None = None) -> list[str]:
    """One line per row other than ``reference`` (those of ``rows`` present, default all): the keys where
    |Δmean| > std_reference + std_row.

    A verdict needs a spread, so a row (or the reference) with fewer than 2 seeds gets none.
    """
    keys, names = list(keys), names or {}
    if reference not in stats:
        return [f"- (no {names.get(reference, reference)} run yet)"]
    lines = []
    for row in stats if rows is None else [r for r in rows if r in stats]:
        values = stats[row]
        if row == reference:
            continue
        label = names.get(row, row)
        if min(values[keys[0]][2], stats[reference][keys[0]][2]) < 2:
            lines.append(f"- {label}: fewer than 2 seeds done, no verdict yet.")
            continue
        better, worse = [], []
        for key in keys:
            (mean_ref, std_ref, _), (mean_row, std_row, _) = stats[reference][key], values[key]
            if abs(mean_row - mean_ref) > std_ref + std_row:
                reference_better = (mean_ref < mean_row) == (key in lower_is_better)
                (better if reference_better else worse).append(key)
        verdicts = [f"{word} on {', '.join(found)}" for word, found in (("better", better), ("worse", worse)) if found]
        lines.append(f"- {label}: " + (f"{names.get(reference, reference)} is {'; '.join(verdicts)} beyond the seed spread."
                                       if verdicts else "nothing differs beyond the seed spread."))
    return lines or [f"- (no row to compare with {names.get(reference, reference)} run yet)"]


def stats_table(stats: Stats, keys: Iterable[str], headers: Iterable[str] | None = None,
                names: Mapping[str, str] | None = None) -> list[str]:
    """A Markdown table: one row per entry of ``stats`` with its seed count and ``mean ± std`` cells."""
    keys, names = list(keys), names or {}
    headers = list(headers) if headers is not None else keys
    lines = ["| row | seeds | " + " | ".join(headers) + " |", "| --- | ---: |" + " ---: |" * len(keys)]
    for row, values in stats.items():
        cells = [f"{m:.3f} ± {s:.3f}" if s == s else f"{m:.3f}" for m, s, _ in (values[k] for k in keys)]
        lines.append(f"| {names.get(row, row)} | {values[keys[0]][2]} | " + " | ".join(cells) + " |")
    return lines
