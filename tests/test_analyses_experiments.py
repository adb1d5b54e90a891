"""The experiment readout's words: which arms moved which metrics (after
adjustment), the sample-ratio verdict, the always-valid verdict and each
effect sentence, on both sides of every branch; the readout end to end."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from workbench.analyses import experiments as xr
from workbench.errors import ParameterError


def _row(metric="converted", arm="guided", effect=0.03, lo=0.01, hi=0.05, adj_lo=0.005, adj_hi=0.055, p=0.001, p_adj=0.004,
         control=0.10, arm_value=0.13, rel=0.3, seq=(0.001, 0.06)):
    return {"metric": metric, "arm": arm, "effect": effect, "ci_low": lo, "ci_high": hi, "adj_ci_low": adj_lo, "adj_ci_high": adj_hi,
            "p_value": p, "p_adjusted": p_adj, "control_value": control, "arm_value": arm_value, "relative_effect": rel,
            "seq_ci_low": seq[0], "seq_ci_high": seq[1], "mde": 0.01}


def test_moves_sentence_names_what_moved_and_which_way_or_says_nothing_did():
    up = pd.DataFrame([_row()])
    text = xr.moves_sentence(xr.significant_moves(up), 6, "holm")
    assert "After Holm adjustment over 6 comparisons" in text and "1 effect stands" in text
    assert "guided raised conversion (first purchase) by 1.0 points" not in text  # the size is the effect, not the bound
    assert "guided raised conversion (first purchase) by 3.0 points (an improvement; adjusted p = 0.004)" in text
    churn = pd.DataFrame([_row(metric="time_to_churn", effect=-2.5, lo=-3, hi=-2, adj_lo=-3.2, adj_hi=-1.8)])
    t = xr.moves_sentence(xr.significant_moves(churn), 3, "bh", "USD")
    assert "shortened time to churn by 2.5 days (a worsening" in t and "Benjamini-Hochberg" in t
    idea = pd.DataFrame([_row(metric="time_to_idea", effect=-5.0, lo=-5.3, hi=-4.8, adj_lo=-5.4, adj_hi=-4.7, p_adj=0.0001)])
    assert "shortened time to first idea by 5.0 days (an improvement; adjusted p < 0.001)" in xr.moves_sentence(xr.significant_moves(idea), 3, "holm")
    null = pd.DataFrame([_row(adj_lo=-0.01, adj_hi=0.07)])
    assert xr.moves_sentence(xr.significant_moves(null), 6, "holm").startswith("No arm clearly moved any metric")


def test_money_effects_carry_the_currency_and_no_double_sign():
    row = _row(metric="revenue", effect=-0.17, lo=-0.25, hi=-0.08, adj_lo=-0.26, adj_hi=-0.07)
    text = xr.moves_sentence(xr.significant_moves(pd.DataFrame([row])), 4, "holm", "USD")
    assert "lowered revenue per user by 0.17 USD (a worsening" in text and "--" not in text
    assert xr.value_text("revenue", 0.5, "EUR") == "+0.50 EUR" and xr.value_text("revenue", -0.5, None) == "-0.50"


def test_srm_sentence_both_sides():
    assert xr.srm_sentence(False, 0.61).startswith("The arm sizes match the intended split (sample ratio check, p = 0.61)")
    bad = xr.srm_sentence(True, 1e-9)
    assert bad.startswith("Warning:") and "p < 0.001" in bad and "do not trust" in bad


def test_effect_sentence_holds_after_adjustment_or_only_on_its_own_or_not_at_all():
    holds = xr.effect_sentence(pd.Series(_row()), "holm")
    assert "raised, an improvement, and it holds after adjustment (adjusted p = 0.004)" in holds
    alone = xr.effect_sentence(pd.Series(_row(adj_lo=-0.002, p_adj=0.08)), "holm")
    assert "looks like an effect on its own (p = 0.001) but not after adjusting" in alone
    unadjusted = xr.effect_sentence(pd.Series(_row(adj_lo=-0.002, p_adj=0.08)), "none")
    assert unadjusted.endswith("no clear effect.")
    none = xr.effect_sentence(pd.Series(_row(lo=-0.01, adj_lo=-0.02, p=0.3, p_adj=0.9)), "holm")
    assert none.endswith("no clear effect.")
    undefined = xr.effect_sentence(pd.Series(_row(lo=float("nan"))), "holm")
    assert "not estimable" in undefined


def test_sequential_sentence_both_sides():
    held = pd.DataFrame([_row()])
    assert "exclude zero for conversion (first purchase) (guided)" in xr.sequential_sentence(xr.significant_moves(held), held)
    not_held = pd.DataFrame([_row(seq=(-0.01, 0.07))])
    assert "None of the effects excludes zero" in xr.sequential_sentence(xr.significant_moves(not_held), not_held)


def test_heterogeneity_sentence_both_sides():
    it = pd.DataFrame({"metric": ["converted"], "arm": ["guided"], "p_value": [0.001], "p_adjusted": [0.01]})
    assert "differs between levels of segment" in xr.heterogeneity_sentence(it, "segment")
    it["p_adjusted"] = 0.4
    assert xr.heterogeneity_sentence(it, "segment").startswith("No effect clearly differs")


def test_parameters_are_checked(tmp_path):
    with pytest.raises(ParameterError, match="correction must be one of 'holm', 'bh', 'none'"):
        xr.ExperimentReadout(tmp_path, correction="bonferroni")
    with pytest.raises(ParameterError, match=r"metrics \['ltv'\] are not experiment metrics"):
        xr.ExperimentReadout(tmp_path, metrics=["ltv"])
    with pytest.raises(ParameterError, match="cap_percentile must be a finite number >= 0 and <= 100"):
        xr.ExperimentReadout(tmp_path, cap_percentile=101)


def test_a_dataset_without_the_experiment_gets_a_note_not_a_crash():
    study = xr.ExperimentReadout("cdnow-sample")
    assert "no assignments table" in study.answer().headline
    assert "No readout" in study.design().notes[0]
    assert not study.family("binary").blocks


def test_readout_on_the_tiny_dataset_builds_every_section(tiny_dataset):
    study = xr.ExperimentReadout(tiny_dataset, metrics=["converted", "revenue", "revenue_per_purchase", "time_to_churn"])
    answer = study.answer()
    assert "sample ratio check" in answer.sentences[0]
    assert set(study.result.arms["arm"]) == {"control", "guided", "checklist"}
    design = study.design()
    assert any(k.startswith("experiment.converted.guided.") for k in design.metrics)
    assert study.family("time").figures and study.family("binary").tables and study.family("ratios").tables
    assert study.sequential_section().figures and study.power_section().tables


@pytest.fixture(scope="module")
def sample_dataset(tmp_path_factory):
    """The dataset `make run` builds (20,000 users, seed 1), with the simulator's
    three-arm ``onboarding`` experiment and its A/A test ``aa_test``."""
    from workbench.data.simulate import simulate

    out = tmp_path_factory.mktemp("data") / "sample"
    simulate(users=20000, seed=1, out=out, progress=False)
    return out


#: truth.json's outcome names -> the readout's metrics (rmst_days: restricted mean time to churn up to the horizon)
TRUTH_METRICS = {"converted": "converted", "purchases": "purchases", "revenue": "revenue", "retained": "retained",
                 "rmst_days": "time_to_churn"}


def _truth(folder, experiment):
    return json.loads((folder / "truth.json").read_text())["experiments"][experiment]


def test_onboarding_readout_finds_the_planted_effects_with_intervals_covering_them(sample_dataset):
    truth = _truth(sample_dataset, "onboarding")
    # the truth is uncapped revenue at the simulator's horizon
    study = xr.ExperimentReadout(sample_dataset, experiment="onboarding", horizon_days=truth["horizon_days"], cap_percentile=100)
    r = study.result
    assert not r.srm.mismatch
    e = r.effects.set_index(["metric", "arm"])
    checked = 0
    for arm, effects in truth["population"]["effects"].items():
        for name, t in effects.items():
            row = e.loc[(TRUTH_METRICS[name], arm)]
            # Holm's adjusted intervals are Bonferroni intervals: they cover every truth at once with >= 95%
            assert row["adj_ci_low"] <= t["difference"] <= row["adj_ci_high"], (arm, name, t["difference"], row)
            # and at this seed every raw 95% interval covers its truth too
            assert row["ci_low"] <= t["difference"] <= row["ci_high"], (arm, name, t["difference"], row)
            if t["difference"] > 0:
                assert row["effect"] > 0, (arm, name, row["effect"])
            checked += 1
    assert checked == 10
    moved = xr.significant_moves(r.effects)
    found = set(zip(moved["metric"], moved["arm"]))
    assert ("converted", "guided") in found  # the largest planted effect survives Holm over 24 comparisons
    zero = {(TRUTH_METRICS[n], a) for a, d in truth["population"]["effects"].items() for n, t in d.items() if t["difference"] == 0}
    assert not found & zero
    assert "guided raised conversion (first purchase)" in study.answer().sentences[1]


def test_aa_test_finds_nothing_after_correction_nor_at_any_daily_look(sample_dataset):
    truth = _truth(sample_dataset, "aa_test")
    assert all(t["difference"] == 0 for d in truth["population"]["effects"].values() for t in d.values())
    study = xr.ExperimentReadout(sample_dataset, experiment="aa_test")
    r = study.result
    assert not r.srm.mismatch
    assert xr.significant_moves(r.effects).empty
    assert study.answer().sentences[1].startswith("No arm clearly moved any metric")
    seq = r.sequential
    assert not seq.empty and ((seq["seq_ci_low"] <= 0) & (seq["seq_ci_high"] >= 0)).all()
