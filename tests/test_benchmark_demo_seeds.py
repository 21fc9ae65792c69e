"""The demo-over-seeds benchmark's RESULTS section: its name per set of overrides and its targets."""

from benchmarks.demo_seeds import beats_prior, section_name, target_lines


def report(trained: dict, prior: dict, flat: bool = False) -> dict:
    return {"trained": trained, "prior": prior, "flat_prediction": flat, "seconds": {"total": 100.0}}


SEVEN_LOWER = {"abs_rel": 0.2, "sq_rel": 2.0, "rmse": 7.0, "rmse_log": 0.3}
SEVEN_HIGHER = {"a1": 0.7, "a2": 0.85, "a3": 0.93}


def test_beats_prior_needs_every_metric_in_its_own_direction():
    prior = {**SEVEN_LOWER, **SEVEN_HIGHER, "dbe_comp": 4.0}
    better = {**{k: v * 0.9 for k, v in SEVEN_LOWER.items()}, **{k: v + 0.01 for k, v in SEVEN_HIGHER.items()}, "dbe_comp": 3.5}
    metrics = (*SEVEN_LOWER, *SEVEN_HIGHER, "dbe_comp")
    assert beats_prior(report(better, prior), metrics)
    assert not beats_prior(report({**better, "a3": 0.92}, prior), metrics)  # a1..a3: higher is better
    assert not beats_prior(report({**better, "dbe_comp": 4.0}, prior), metrics)  # a tie is not better
    assert beats_prior(report({**better, "dbe_comp": 9.0}, prior), tuple(SEVEN_LOWER) + tuple(SEVEN_HIGHER))


def test_targets_count_the_runs_ahead_of_their_prior_on_all_eight():
    prior = {**SEVEN_LOWER, **SEVEN_HIGHER, "dbe_comp": 4.0}
    ahead = {**{k: v / 2 for k, v in SEVEN_LOWER.items()}, **{k: v + 0.1 for k, v in SEVEN_HIGHER.items()}, "dbe_comp": 3.0}
    behind = {**ahead, "dbe_comp": 5.0}
    rows = [{"report": report(t, prior), "info": {"jobs": 1}} for t in (ahead, behind)]
    lines = target_lines(rows)
    assert "- runs better than their prior on all seven metrics and ε_comp: **1 of 2** (missed: all)" in lines
    old = {k: v for k, v in ahead.items() if k != "dbe_comp"}  # a report from before the boundary metrics
    assert not any("ε_comp" in line for line in target_lines([{"report": report(old, prior), "info": {"jobs": 1}}]))


def test_each_set_of_overrides_gets_its_own_section():
    assert section_name([]) == ("demo_seeds", "Demo: seeds × CPU kernels")
    name, title = section_name(["model.structure_attention=guided"])
    assert name == "demo_seeds_structure_attention_guided" and "model.structure_attention=guided" in title
    assert section_name(["optim.lr=1e-4", "model.multi_level=false"])[0] == "demo_seeds_lr_1e_4_multi_level_false"
