"""The data overview's findings: every sentence's words decided by tested
code, on both sides of each branch, and the study end to end on data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.analyses import overview as ov
from workbench.errors import ParameterError


def test_top_share_is_the_top_tenth_not_the_top_fifth():
    # 10 users with 1 event each, and 10 users with 9: the top tenth (2 users) hold 18 of 100 events
    values, weights = np.array([1, 9]), np.array([10, 10])
    assert ov.top_share(values, weights, 0.10) == pytest.approx(18 / 100)
    assert ov.top_share(values, weights, 0.20) == pytest.approx(36 / 100)
    # a tie at the cut is split pro rata: 100 users with 2 events, the top tenth hold a tenth
    assert ov.top_share(np.array([2]), np.array([100]), 0.10) == pytest.approx(0.10)
    assert ov.top_share(np.array([0]), np.array([5]), 0.10) == 0.0


def test_weighted_median_takes_the_lower_middle():
    assert ov.weighted_median([1, 2, 3], [1, 1, 1]) == 2
    assert ov.weighted_median([1, 10], [3, 1]) == 1
    assert ov.weighted_median([5, 1], [1, 3]) == 1  # unsorted input
    assert ov.weighted_median([1, 2], [1, 1]) == 1


def test_cohort_share_uses_only_periods_each_cohort_has_lived_through():
    c = pd.DataFrame({
        "cohort": ["a"] * 3 + ["b"] * 2,
        "period_index": [0, 1, 2, 0, 1],
        "cohort_size": [100] * 3 + [50] * 2,
        "active": [100, 40, 30, 50, 5],
    })
    # cohort b's period 1 is its last (cut short): only a counts
    assert ov.cohort_share(c, 1) == pytest.approx(0.40)
    assert ov.cohort_share(c, 3) is None
    assert "40.0% of users were active one month after" in ov.cohort_sentence(2, "month", 0.4, None)
    assert "three months after" not in ov.cohort_sentence(2, "month", 0.4, None)
    assert ov.cohort_sentence(2, "week", None, None) == "No cohort has been observed for a full week after signing up yet."


def test_customers_sentence_with_and_without_purchases_and_currency():
    assert ov.customers_sentence(0, 10, 0.0, "USD") == "Nobody has bought anything: there are no purchases."
    s = ov.customers_sentence(25, 100, 1234.5, None)
    assert s == "25 of them (25.0%) became customers and paid 1,234.50 in total." and "*" not in s
    assert "made 3 purchases worth 10.00 EUR" in ov.customers_sentence(1, 4, 10, "EUR", purchases=3)


def test_supports_sentences_name_what_is_missing_and_why():
    all_ok = {"growth": None, "clv": None}
    assert ov.supports_sentences(all_ok) == ["It supports every analysis of the workbench (2 of 2)."]
    some = {"growth": None, "referrals": "no users.referred_by values"}
    first, second = ov.supports_sentences(some)
    assert first == "It supports 1 of 2 analyses: growth of the user base."
    assert second == "It cannot answer questions about referrals (no users.referred_by values)."
    none = {"growth": "no users", "clv": "no purchase events"}
    assert ov.supports_sentences(none)[0] == "It supports none of the workbench's analyses."


def test_largest_group_is_the_largest_and_names_missing_values():
    by = pd.Series({"small": 10, "big": 30, None: 5})
    assert ov.largest_group_phrase("segment", by) == "the largest segment is big with 66.7% of users (3 segments in all)"
    assert ov.largest_group_phrase("channel", pd.Series({None: 9, "x": 1})).startswith("the largest channel is (none) with 90.0%")
    assert ov.largest_group_phrase("channel", pd.Series({"ads": 3})).endswith("(1 channel in all)")


def test_kpi_sentence_without_active_users_does_not_divide_by_zero():
    row = pd.Series({"period": pd.Timestamp("2024-05-01"), "active_users": 0, "new_users": 0, "customers": 0, "revenue": 0.0})
    s = ov.kpi_sentence(3, "month", row, row, None)
    assert "(n/a of active users)" in s and "nan" not in s and "revenue of 0.00." in s


def test_bad_parameters_are_refused_before_loading(tmp_path):
    with pytest.raises(ParameterError, match="period must be one of 'day', 'week', 'month', got 'quarter'"):
        ov.Overview(tmp_path / "nowhere", period="quarter")
    with pytest.raises(ParameterError, match="max_cohorts must be a whole number >= 1, got 0"):
        ov.Overview(tmp_path / "nowhere", max_cohorts=0)


def test_overview_on_cdnow_states_what_it_can_and_cannot_answer():
    study = ov.Overview("cdnow-sample")
    answer = study.answer()
    assert answer.headline.startswith("Dataset cdnow-sample holds 2,357 users and 6,919 events from 01 Jan 1997")
    assert any("cannot answer questions about co-creation and retention (no feedback or adopted events)" in s for s in answer.sentences)
    assert answer.metrics["data.users"] == 2357 and answer.metrics["conversion.customer_share"] == 1.0
    assert study.users_by_group().notes == ["The users table has no segment or channel column, so there is no breakdown by them."]
    assert "no randomized experiments" in study.experiments().notes[0]
    p = study.purchases()
    assert p.metrics["purchases.amount_median"] == pytest.approx(25.99)
    assert "The median purchase is 25.99 USD" in p.findings[0]


def test_activity_metrics_match_a_direct_computation_on_cdnow():
    study = ov.Overview("cdnow-sample")
    a = study.activity()
    per_user = study.ds.events.group_by("user_id").aggregate(n=study.ds.events.count()).to_pandas()["n"].sort_values(ascending=False)
    k = len(per_user) / 10  # the top tenth of users (pro rata at the cut)
    whole = int(k)
    top = per_user.iloc[:whole].sum() + (k - whole) * per_user.iloc[whole]
    assert a.metrics["activity.top10_event_share"] == pytest.approx(top / per_user.sum(), abs=1e-6)
    assert a.metrics["activity.events_per_user_median"] == int(per_user.median())
    assert f"{a.metrics['activity.top10_event_share']:.1%}" in a.findings[0]
