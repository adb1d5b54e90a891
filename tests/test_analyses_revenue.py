"""The users-to-revenue findings: each wording branch on both sides, on
numbers made up for the purpose (the report itself is run in test_scenarios)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pandas as pd
import pytest

from workbench.analyses import revenue as rv
from workbench.analyses import wording
from workbench.errors import ParameterError


def test_estimable_needs_a_finite_estimate_and_interval():
    assert wording.estimable(0.6, 0.5, 0.7) and wording.estimable(1.0)
    assert not wording.estimable(27.43, 0.0, math.inf)
    assert not wording.estimable(float("nan"), 0.1, 0.2)
    assert not wording.estimable(1.0, None, 2.0)
    assert not wording.estimable("x")


@pytest.mark.parametrize("lo,hi,expected", [(1.2, 1.9, "higher"), (0.5, 0.8, "lower"), (0.9, 1.1, "no clear difference"),
                                            (0.5, 1.0, "no clear difference")])
def test_ratio_direction_follows_the_interval(lo, hi, expected):
    assert wording.ratio_direction(lo, hi) == expected


def test_ratio_phrase_says_the_ratio_and_whether_it_could_be_no_difference():
    up = wording.ratio_phrase("Users with segment b", "convert", 1.5, 1.2, 1.9, "those with segment a")
    assert up == "Users with segment b convert at 1.50 times the rate of those with segment a (95% CI 1.20 to 1.90)."
    down = wording.ratio_phrase("X", "convert", 0.7, 0.6, 0.8, "Y")
    assert "at 0.70 times the rate of Y (95% CI 0.60 to 0.80)." in down
    null = wording.ratio_phrase("X", "convert", 0.99, 0.94, 1.04, "Y")
    assert null.endswith("but the interval (95% CI 0.94 to 1.04) includes no difference.")
    bad = wording.ratio_phrase("X", "convert", 16557548270.59, 0.0, math.inf, "Y")
    assert "not estimable" in bad and "16" not in bad


def test_word_of_mouth_against_innovation():
    assert rv.word_of_mouth(0.01, 0.3).startswith("imitation outweighs innovation 30 to 1")
    assert rv.word_of_mouth(0.05, 0.01).startswith("innovation outweighs imitation")


@pytest.mark.parametrize("lo,hi,start", [
    (1.2, 1.4, "more than in proportion"), (0.6, 0.9, "less than in proportion"), (0.9, 1.2, "about in proportion")])
def test_scaling_shape_is_read_from_the_interval(lo, hi, start):
    assert rv.scaling_shape(lo, hi).startswith(start)


def test_metcalfe_is_ruled_out_only_outside_the_interval():
    assert rv.metcalfe_verdict(1.2, 1.4) == "Metcalfe's n² lies outside the interval."
    assert rv.metcalfe_verdict(2.1, 2.4) == "Metcalfe's n² lies outside the interval."
    assert rv.metcalfe_verdict(1.8, 2.2) == "Metcalfe's n² cannot be ruled out."


def test_scaling_answer_and_finding_refuse_an_undefined_exponent():
    ok = rv.scaling_answer(1.3, 1.25, 1.35, "power")
    assert ok.startswith("Revenue grows more than in proportion to users: exponent β = 1.30 (95% CI 1.25 to 1.35)")
    assert "multiplies revenue by 2.46" in ok and "free power law" in ok
    assert "not estimable" in rv.scaling_answer(1.3, float("nan"), float("nan"), "power")
    assert "not estimable" in rv.scaling_finding(1.3, -math.inf, math.inf, "power", "x", "hac", 10, None, 0)
    f = rv.scaling_finding(0.8, 0.7, 0.9, "linear", "the KPIs", "hac", 30, pd.Series({"linear": 0.2, "power": 0.1}), 6)
    assert "less than in proportion" in f and "power law (n^β) 0.100, linear law (Sarnoff, n) 0.200" in f


def test_conversion_answer_with_free_users_and_without():
    assert rv.conversion_answer(0.187, 0.18, 0.19, 90, False) == \
        "By day 90 after signup 18.7% of users have become paying customers (95% CI 18.0% to 19.0%)."
    assert "customer from signup" in rv.conversion_answer(1.0, 1.0, 1.0, 90, True)


def test_hazard_findings_word_each_term_by_its_interval():
    hs = pd.DataFrame({"estimate": [1.43, 3.45, 0.99], "ci_low": [1.36, 3.28, 0.94], "ci_high": [1.5, 3.62, 1.04]},
                      index=["exposed", "segment[enthusiast]", "channel[ads]"])
    out = rv.hazard_findings(hs, {"segment": "mainstream", "channel": "organic"}, ["segment", "channel"])
    assert out[0].startswith("Users who have given feedback (co-created) convert at 1.43 times the rate of users who have not yet")
    assert "compared at the same tenure, segment and channel" in out[0] and "association, not an effect" in out[0]
    assert out[1] == "Users with segment enthusiast convert at 3.45 times the rate of those with segment mainstream (95% CI 3.28 to 3.62)."
    assert out[2].endswith("includes no difference.")


def test_customer_value_finding_does_not_print_a_negative_or_infinite_r_squared():
    vs = pd.DataFrame({"estimate": [35.1, 1.15, 0.987], "ci_low": [33.9, 1.06, 0.985], "ci_high": [36.5, 1.24, 0.989]},
                      index=["first_value", "value", "retention"])
    good = rv.customer_value_finding(vs, 0.97, "week", "USD")
    assert "R² = 0.97" in good and "35.10 USD (95% CI 33.90 USD to 36.50 USD)" in good and "98.7%" in good
    for bad in (-math.inf, -0.3, float("nan")):
        text = rv.customer_value_finding(vs, bad, "week", None)
        assert "R²" not in text and "no better than its average" in text and "USD" not in text


def _comparison(free, paid, free_band, paid_band):
    def sc(total, band):
        return SimpleNamespace(summary=lambda: pd.DataFrame({"estimate": [total], "ci_low": [band[0]], "ci_high": [band[1]]},
                                                            index=["total_revenue"]))
    leader = "free" if free > paid else "paid"
    return SimpleNamespace(scenarios={"free": sc(free, free_band), "paid": sc(paid, paid_band)}, cumulative_leader_at_end=leader)


def test_scenario_answer_names_the_leader_and_whether_the_bands_overlap():
    clear = rv.scenario_answer(_comparison(100.0, 50.0, (90, 110), (40, 60)), 52, "week", "USD")
    assert clear.startswith("On the planner's assumptions the free product earns more by the end of the 52 weeks (100.00 USD against 50.00 USD)")
    assert clear.endswith("the bands do not overlap.")
    close = rv.scenario_answer(_comparison(100.0, 120.0, (80, 130), (90, 150)), 12, "month", None)
    assert "the paid product earns more" in close and "(120.00 against 100.00)" in close and "not certain" in close


def test_parameters_are_checked_before_any_work(tmp_path):
    with pytest.raises(ParameterError, match="period must be one of 'day', 'week', 'month', got 'quarter'"):
        rv.UsersToRevenue(tmp_path, period="quarter")
    with pytest.raises(ParameterError, match="paid_market_share must be a finite number > 0 and <= 1, got nan"):
        rv.UsersToRevenue(tmp_path, paid_market_share=float("nan"))
    with pytest.raises(ParameterError, match="draws must be a whole number >= 100"):
        rv.UsersToRevenue(tmp_path, draws=5)
