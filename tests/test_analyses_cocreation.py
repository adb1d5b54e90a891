"""The co-creation report's words: each branch on both sides (protective,
harmful, null, not estimable), and the study end to end on simulated data
where co-creation protects and where it harms."""

from __future__ import annotations

import math

import pytest

from workbench.analyses import cocreation as cc
from workbench.analyses import retention_words as w
from workbench.errors import ParameterError


def test_headline_protective_harmful_null_and_not_estimable():
    yes = w.headline(0.6, 0.57, 0.63, "had an idea adopted")
    assert yes.startswith("Yes: once users have had an idea adopted, they churn at a rate 40% lower than users who have not (yet)")
    assert "(hazard ratio 0.60, 95% CI 0.57 to 0.63)" in yes
    no = w.headline(1.39, 1.2, 1.6, "had an idea adopted")
    assert no.startswith("No, the opposite:") and "39% higher" in no
    null = w.headline(0.97, 0.9, 1.05, "submitted an idea")
    assert null.startswith("Not clearly:") and "includes no effect" in null and "lower" not in null and "higher" not in null
    assert "cannot be estimated" in w.headline(27.43, 0.0, math.inf, "x")


@pytest.mark.parametrize("ratio,lo,hi,expected", [(0.6, 0.5, 0.7, "40% lower"), (1.5, 1.2, 1.8, "50% higher"), (0.9, 0.8, 1.01, None)])
def test_change_is_stated_only_when_the_interval_excludes_one(ratio, lo, hi, expected):
    assert w.change(ratio, lo, hi) == expected


def test_naive_contrast_says_which_way_the_naive_estimate_is_off():
    assert "more protective than it is" in w.naive_contrast(0.36, 0.59)
    assert "less protective than it is" in w.naive_contrast(0.9, 0.59)
    assert "close to the answer" in w.naive_contrast(0.6, 0.61)
    assert "could not be estimated" in w.naive_contrast(float("nan"), 0.6)


def test_no_contrast_reason_names_each_non_identified_case():
    assert w.no_contrast_reason(5, 7, True, True) is None
    assert "nobody co-created" in w.no_contrast_reason(0, 7, False, True)
    assert "everybody co-created" in w.no_contrast_reason(5, 0, True, False)
    assert "no churn was observed among co-creators" in w.no_contrast_reason(0, 7, True, True)
    assert "no churn was observed among users who had not co-created" in w.no_contrast_reason(3, 0, True, True)


def test_experiment_and_referral_headlines_follow_their_intervals():
    assert "raised retention" in w.experiment_headline(0.016, 0.002, 0.03, 90, False)
    assert "lowered retention" in w.experiment_headline(-0.02, -0.03, -0.01, 90, False)
    assert "no clear effect" in w.experiment_headline(0.01, -0.01, 0.03, 90, False)
    assert "cannot be trusted yet" in w.experiment_headline(0.016, 0.002, 0.03, 90, True)
    # nobody retained in either arm: a zero-width interval is no estimate, not "no clear effect"
    assert "not estimable" in w.experiment_headline(0.0, 0.0, 0.0, 90, False)
    assert "not estimable" in w.experiment_headline(math.nan, math.nan, math.nan, 90, False)
    flat = w.experiment_finding(False, 0.5, 90, "invited", 0.0, 0.0, 0.0, 0.0, 0.0, math.nan, 100, 0, None, None, None)
    assert "not estimable" in flat and "did not clearly change" not in flat
    assert w.referral_headline(1.99, 1.85, 2.14).startswith("Co-creators bring in more new users: 1.99 times")
    assert w.referral_headline(0.5, 0.4, 0.6).startswith("Co-creators bring in fewer new users")
    assert w.referral_headline(1.1, 0.9, 1.3).startswith("Co-creators do not clearly bring in more")


@pytest.mark.parametrize("hrs,los,his,expected", [
    ([0.91, 1.77, 4.61], [0.8, 1.5, 4.0], [1.0, 2.0, 5.2], "keeps rising"),  # the numbers: never "keeps falling"
    ([0.8, 0.6, 0.4], [0.75, 0.55, 0.35], [0.85, 0.65, 0.45], "keeps falling"),
    ([0.54, 0.62, 0.59], [0.5, 0.55, 0.5], [0.58, 0.7, 0.68], "alike"),
    ([0.5, 0.9, 0.3], [0.45, 0.85, 0.25], [0.55, 0.95, 0.35], "no steady trend"),
    ([0.5], [0.4], [0.6], "one level"),
    ([0.5, 0.55, 0.9], [0.45, 0.5, 0.85], [0.55, 0.6, 0.95], "keeps rising"),  # one level like the first is not "alike"
])
def test_dose_words_follow_the_direction_of_the_numbers(hrs, los, his, expected):
    assert w.trend_words(hrs, los, his) == expected
    text = w.dose_finding([str(i + 1) for i in range(len(hrs))], hrs, los, his, 1.0, 0.9, 1.1)
    assert ("keeps falling" in text) == (expected == "keeps falling")
    assert ("keeps rising" in text) == (expected == "keeps rising")


def test_ph_finding_both_sides():
    assert "no evidence" in w.ph_finding(0.64, 0.01)
    assert "no evidence" in w.ph_finding(0.03, 0.01)  # the check is read at 1%: many churns make tiny drifts significant
    drift = w.ph_finding(0.001, 0.2)
    assert "drifts with tenure" in drift and "+0.20" in drift and "p = 0.001" in drift


def test_comparison_finding_states_the_overstatement_only_when_there_is_one():
    t = w.comparison_finding(0.36, 0.59, 0.57, 0.61, ["segment"], 0.6)
    assert "overstates the protective effect by a factor of 1.9" in t and "0.6, inside the interval" in t
    assert "overstates" not in w.comparison_finding(0.9, 0.59, 0.57, 0.61, [], None)
    assert "outside the interval" in w.comparison_finding(0.36, 0.59, 0.57, 0.61, [], 0.8)
    assert "overstates" not in w.comparison_finding(1.5, 1.39, 1.2, 1.6, [], None)


def test_referral_finding_says_whether_the_crude_rates_agree():
    against = w.referral_finding(1.99, 1.85, 2.14, "feedback", 0.74, 0.92)
    assert "points the other way" in against and "a ratio of 0.80" in against
    along = w.referral_finding(1.99, 1.85, 2.14, "feedback", 1.2, 0.6)
    assert "points the same way" in along
    assert "includes no difference" in w.referral_finding(1.05, 0.9, 1.2, "feedback", 1.0, 1.0)


def test_experiment_finding_words_and_cuped_branches():
    base = dict(srm_mismatch=False, srm_p=0.61, horizon=90, arm="invited", rate_t=0.645, rate_c=0.629, diff=0.016, lo=0.002,
                hi=0.029, p=0.023, users=8000, excluded=0, cace=None, truth=None)
    t = w.experiment_finding(**base, cuped=(["prior_activity"], 0.001, 0.016, 0.002, 0.029))
    assert "raised retention by +1.6 points" in t and "barely changes the interval" in t and "SRM p = 0.61" in t
    t = w.experiment_finding(**{**base, "lo": -0.01}, cuped=(["x"], 0.2, 0.016, 0.004, 0.027))
    assert "did not clearly change retention" in t and "narrows the interval by 20%" in t
    t = w.experiment_finding(**{**base, "srm_mismatch": True}, cuped=None)
    assert t.startswith("The arm sizes do not match")


def test_power_finding_detected_or_not():
    assert "would be detected" in w.power_finding(5000, 0.63, 0.027, 0.04, 0.03)
    assert "would not reliably be detected" in w.power_finding(5000, 0.63, 0.027, 0.04, 0.016)
    assert w.power_finding(5000, 0.63, 0.027, 0.04, None).endswith("relative).")


def test_a_foreign_truth_file_is_ignored_not_a_crash(tmp_path):
    for content in ('{"foo": 1}', "[1, 2]", "{not json", '{"churn": {"hazard_ratio_adopted": "x"}}', ""):
        (tmp_path / "truth.json").write_text(content)
        truth = cc.read_truth(tmp_path / "truth.json")
        assert isinstance(truth, dict)
        assert cc.planted_value(truth, "churn", "hazard_ratio_adopted") is None
    assert cc.read_truth(tmp_path / "missing.json") == {}
    assert cc.planted_value({"churn": {"hazard_ratio_adopted": 0.6}}, "churn", "hazard_ratio_adopted") == 0.6


def test_parameters_are_checked(tmp_path):
    with pytest.raises(ParameterError, match="exposure must be one of 'feedback', 'adopted', got 'purchase'"):
        cc.CoCreation(tmp_path, exposure="purchase")
    with pytest.raises(ParameterError, match="churn must be one of 'cancel', 'inactivity', 'cancel_or_inactivity'"):
        cc.CoCreation(tmp_path, churn="silence")
    with pytest.raises(ParameterError, match="landmarks must be a non-empty list of days >= 0"):
        cc.CoCreation(tmp_path, landmarks=[])


@pytest.fixture(scope="module")
def harmful(tmp_path_factory):
    """A simulated product where an adopted idea raises the churn hazard (planted 1.8)."""
    from workbench.data.simulate import simulate

    out = tmp_path_factory.mktemp("harm") / "harm"
    simulate(users=4000, seed=5, out=out, churn_hazard_ratio_adopted=1.8)
    return out


def test_when_co_creation_raises_churn_the_report_says_so(harmful):
    study = cc.CoCreation(harmful, adjust_for=["segment"])
    answer = study.answer()
    assert answer.headline.startswith("No, the opposite:") and "higher" in answer.headline
    hr, lo, hi = study.best_estimate[1]
    assert lo > 1 and lo <= 1.8 <= hi * 1.15
    dose = study.dose_section()
    levels = study.dose.levels
    shape = w.trend_words(levels["hazard_ratio"].tolist(), levels["hr_ci_low"].tolist(), levels["hr_ci_high"].tolist())
    text = dose.findings[0]
    assert "keeps falling" not in text
    assert {"keeps rising": "keeps rising", "alike": "levels are alike", "no steady trend": "does not move steadily"}[shape] in text
    assert all(v > 1 for v in levels["hazard_ratio"])


def test_on_a_dataset_without_co_creation_every_section_is_a_note_not_a_crash():
    study = cc.CoCreation("cdnow-sample")
    assert study.answer().headline.startswith("This dataset cannot tell whether co-creation keeps users")
    assert study.cox_section().notes == [] and not study.cox_section().findings
    assert "No co-creation analysis" in " ".join(study.data().notes)
    assert "No referral analysis" in study.referrals_section().notes[0]
    assert "No experiment analysis" in study.experiment_section().notes[0]
    assert study.retention_curves().findings


# ------------------------------------------------------------------ the exact and the aggregated paths
@pytest.fixture(scope="module")
def both_paths(tmp_path_factory):
    """The same simulated dataset read on the exact paths (default limits) and
    on the aggregated ones (limits of 0: everything above them)."""
    from workbench.data.simulate import simulate

    out = tmp_path_factory.mktemp("paths") / "sim"
    simulate(users=4000, seed=3, out=out)
    return cc.CoCreation(out), cc.CoCreation(out, max_episodes=0, max_referral_rows=0)


def test_the_report_says_which_path_ran_and_why_on_both_sides_of_the_switch(both_paths):
    exact, agg = both_paths
    assert exact.exact and not agg.exact
    assert exact.episodes is not None and agg.episodes is None  # the aggregated path never pulls per-user episodes
    for key in ("naive_ever", "time_varying", "adjusted"):
        assert exact.cox[key].path == "exact" and agg.cox[key].path == "aggregated"
    e_cox, a_cox = exact.cox_section(), agg.cox_section()
    assert any(n.startswith("Exact fit on") and "at most 5,000,000 are fitted exactly" in n for n in e_cox.notes)
    assert any("exceed the exact path's limit of 0 (max_episodes): the piecewise-exponential model on aggregated risk sets" in n
               for n in a_cox.notes)
    assert "exact Cox, efron ties" in e_cox.tables[0]["fitted on"].iloc[1]
    assert "aggregated cells" in a_cox.tables[0]["fitted on"].iloc[1]
    assert "piecewise-exponential" in a_cox.tables[0]["model"].iloc[1]
    assert len(e_cox.figures) == 1 and len(a_cox.figures) == 0  # the per-user naive curves only where the episodes are in memory
    a_answer = " ".join(agg.answer().sentences)
    assert "time-varying piecewise-exponential model (adjusted for segment)" in a_answer and "(max_episodes)" in a_answer
    assert "time-varying Cox model adjusted for segment" in " ".join(exact.answer().sentences)
    assert agg.ph_check.method == "tenure_interaction" and exact.ph_check.method == "schoenfeld"
    assert agg.ph_section().findings[0].startswith("Tenure-interaction test")
    assert exact.ph_section().findings[0].startswith("Slope test")
    assert agg.ipw.method == "aggregated" and exact.ipw.method == "exact"
    assert any("weighted piecewise-exponential models on aggregated landmark risk sets" in n for n in agg.ipw_section().notes)
    assert any("drawn on the exact path only" in n for n in agg.landmarks_section().notes)
    assert exact.landmarks_section().findings
    assert agg.dose.path == "aggregated" and exact.dose.path == "exact"
    assert agg.referrals.method == "cells" and exact.referrals.method == "per_user"
    assert any("exceed the per-user limit of 0 (max_referral_rows)" in n for n in agg.referrals_section().notes)
    assert any(n.startswith("Per-user Poisson model") for n in exact.referrals_section().notes)
    assert "the piecewise-exponential model on the same risk sets" in agg.discrete_section().findings[0]
    assert "from the Cox model on" in exact.discrete_section().findings[0]


def test_the_exact_and_aggregated_paths_of_the_report_agree(both_paths):
    """Estimates of the two paths: within 3% for the hazard ratios (Cox against
    piecewise-exponential in weekly bins); the referral ratio is the same
    Poisson model, so equal to rounding."""
    exact, agg = both_paths
    for key in ("naive_ever", "time_varying", "adjusted"):
        assert agg.cox[key].hazard_ratio()[0] == pytest.approx(exact.cox[key].hazard_ratio()[0], rel=0.03), key
    assert agg.ipw.hazard_ratio("weighted")[0] == pytest.approx(exact.ipw.hazard_ratio("weighted")[0], rel=0.05)
    assert float(agg.dose.trend["hazard_ratio"]) == pytest.approx(float(exact.dose.trend["hazard_ratio"]), rel=0.03)
    assert agg.referrals.rate_ratio()[0] == pytest.approx(exact.referrals.rate_ratio()[0], rel=1e-6)
    assert agg.referrals.rate_ratio()[1] == pytest.approx(exact.referrals.rate_ratio()[1], rel=1e-3)


def test_path_limits_are_checked(tmp_path):
    with pytest.raises(ParameterError, match="max_episodes must be a whole number >= 0"):
        cc.CoCreation(tmp_path, max_episodes=-1)
    with pytest.raises(ParameterError, match="max_referral_rows must be a whole number >= 0"):
        cc.CoCreation(tmp_path, max_referral_rows=2.5)
    assert cc.nice_width(7.3) == 10 and cc.nice_width(0.013) == 0.02 and cc.nice_width(40) == 50


def test_data_sentence_counts_each_churn_cause_in_words():
    text = w.data_sentence("d", 3, {"active": 19}, "cancel_or_inactivity", 30, 1, 2, "had an idea adopted", "adopted", [])
    assert "1 user churned by cancelling and 2 by going silent" in text and "3 users" in text
