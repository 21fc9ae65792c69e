"""The seed statistics the ablation benchmarks write to RESULTS.md."""

import math

import pytest

from benchmarks.seed_stats import beyond_spread, seed_stats, stats_table


def runs():
    return {
        "full": [{"abs_rel": 0.10, "a1": 0.90}, {"abs_rel": 0.12, "a1": 0.88}],
        "worse": [{"abs_rel": 0.20, "a1": 0.89}, {"abs_rel": 0.22, "a1": 0.87}],
        "one_seed": [{"abs_rel": 0.5, "a1": 0.1}],
        "none_yet": [],
    }


def test_mean_and_sample_std_over_seeds():
    stats = seed_stats(runs(), ["abs_rel", "a1"])
    assert list(stats) == ["full", "worse", "one_seed"]
    mean, std, n = stats["full"]["abs_rel"]
    assert (mean, n) == (pytest.approx(0.11), 2)
    assert std == pytest.approx(math.sqrt(((0.10 - 0.11) ** 2 + (0.12 - 0.11) ** 2) / 1))
    assert math.isnan(stats["one_seed"]["a1"][1])


def test_only_differences_beyond_both_spreads_are_named():
    stats = seed_stats(runs(), ["abs_rel", "a1"])
    lines = beyond_spread(stats, "full", ["abs_rel", "a1"], {"abs_rel"}, {"full": "MLDA-Net"})
    # abs_rel: |0.21 - 0.11| = 0.1 > 0.0141 + 0.0141; a1: |0.88 - 0.89| = 0.01 < 0.0283
    assert lines[0] == "- worse: MLDA-Net is better on abs_rel beyond the seed spread."
    assert lines[1] == "- one_seed: fewer than 2 seeds done, no verdict yet."
    assert beyond_spread(stats, "missing", ["abs_rel"], set()) == ["- (no missing run yet)"]


def test_a_reference_alone_says_there_is_nothing_to_compare_yet():
    stats = seed_stats({"full": runs()["full"]}, ["abs_rel"])
    assert beyond_spread(stats, "full", ["abs_rel"], {"abs_rel"}, {"full": "MLDA-Net"}) == [
        "- (no row to compare with MLDA-Net run yet)"]
    assert beyond_spread(seed_stats(runs(), ["abs_rel"]), "full", ["abs_rel"], {"abs_rel"}, rows=["not_run"]) == [
        "- (no row to compare with full run yet)"]


def test_a_row_both_better_and_worse_gets_both_lists():
    stats = seed_stats({"full": [{"a": 1.0, "b": 1.0}, {"a": 1.1, "b": 1.1}],
                        "row": [{"a": 2.0, "b": 2.0}, {"a": 2.1, "b": 2.1}]}, ["a", "b"])
    assert beyond_spread(stats, "full", ["a", "b"], {"a"}) == ["- row: full is better on a; worse on b beyond the seed spread."]


def test_verdicts_can_be_restricted_to_some_rows_in_their_order():
    stats = seed_stats(runs(), ["abs_rel"])
    lines = beyond_spread(stats, "full", ["abs_rel"], {"abs_rel"}, rows=["one_seed", "not_run", "worse"])
    assert lines == ["- one_seed: fewer than 2 seeds done, no verdict yet.",
                     "- worse: full is better on abs_rel beyond the seed spread."]


def test_table_has_a_cell_per_key_and_drops_the_spread_of_one_seed():
    stats = seed_stats(runs(), ["abs_rel"])
    lines = stats_table(stats, ["abs_rel"], ["abs_rel ↓"], {"worse": "the worse row"})
    assert lines[0] == "| row | seeds | abs_rel ↓ |"
    assert lines[2] == "| full | 2 | 0.110 ± 0.014 |"
    assert lines[3] == "| the worse row | 2 | 0.210 ± 0.014 |"
    assert lines[4] == "| one_seed | 1 | 0.500 |"
