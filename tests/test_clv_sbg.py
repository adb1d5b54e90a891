"""The shifted-beta-geometric retention model: Fader and Hardie's (2007)
published example, the residual-lifetime formula, planted truth, bad input,
and the survivors table it is fitted on."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from workbench.data import load_dataset
from workbench.data.simulate import simulate_sbg_cohorts
from workbench.errors import DataError, ModelError, ParameterError
from workbench.models.retention_sbg import fit_sbg, sbg_churn_probability, sbg_survival
from workbench.tables.subscriptions import subscription_survivors

# Fader and Hardie (2007), "How to project customer retention", Table 1 (per 1,000 customers, years 0-12);
# the model is fitted on years 0-7.
REGULAR = [1000, 631, 468, 382, 326, 289, 262, 241, 223, 207, 194, 183, 173]
HIGH_END = [1000, 869, 743, 653, 593, 551, 517, 491, 468, 445, 427, 409, 397]
PUBLISHED = {"regular": (0.704, 1.182), "high_end": (0.668, 3.806)}


@pytest.mark.parametrize("name,data", [("regular", REGULAR), ("high_end", HIGH_END)])
def test_published_example(name, data):
    res = fit_sbg(data[:8])
    alpha, beta = PUBLISHED[name]
    assert round(res.alpha, 3) == alpha and round(res.beta, 3) == beta
    # the log-likelihood, computed by hand from P(T = t) and S(7)
    n = np.array(data[:8], dtype=float)
    by_hand = sum((n[t - 1] - n[t]) * math.log(sbg_churn_probability(t, res.alpha, res.beta)) for t in range(1, 8)) + n[7] * math.log(
        sbg_survival(7, res.alpha, res.beta)
    )
    assert res.loglik == pytest.approx(by_hand, rel=1e-12)
    # the projection for years 8-12 tracks what happened (the paper's point): within 10%
    proj = res.projection(periods=12)
    np.testing.assert_allclose(proj.survival.iloc[8:], np.array(data[8:]) / 1000, rtol=0.10)
    np.testing.assert_allclose(proj.observed_survival.iloc[:8], n / 1000)
    assert proj.observed_survival.iloc[8:].isna().all()
    # retention among survivors rises over time
    assert np.all(np.diff(res.retention_rate(np.arange(1, 13))) > 0)


def test_survival_and_churn_probabilities_are_consistent():
    a, b = 0.7, 1.2
    t = np.arange(1, 30)
    np.testing.assert_allclose(sbg_survival(t - 1, a, b) - sbg_survival(t, a, b), sbg_churn_probability(t, a, b), rtol=1e-12)
    np.testing.assert_allclose(sbg_survival(t, a, b) / sbg_survival(t - 1, a, b), (b + t - 1) / (a + b + t - 1), rtol=1e-12)


def test_residual_lifetime_closed_form_equals_the_sum():
    res = fit_sbg(HIGH_END[:8])
    a, b = res.alpha, res.beta
    for n in (0, 3, 7):
        for d in (0.05, 0.10):
            j = np.arange(1, 20_000)
            direct = np.sum(sbg_survival(n + j, a, b) / sbg_survival(n, a, b) * (1 + d) ** -(j - 1.0))
            assert res.residual_lifetime(periods_survived=n, discount_rate=d) == pytest.approx(direct, rel=1e-9)
    assert math.isinf(res.residual_lifetime(discount_rate=0.0))  # alpha < 1: heavy tail, infinite mean
    with pytest.raises(ParameterError):
        res.residual_lifetime(periods_survived=-1)


def test_undiscounted_residual_lifetime_when_alpha_exceeds_one():
    data = simulate_sbg_cohorts(alpha=3.0, beta=6.0, cohort_size=20_000, periods=10, seed=3)
    res = fit_sbg(data)
    assert res.residual_lifetime(periods_survived=2) == pytest.approx((res.beta + 2) / (res.alpha - 1), rel=1e-12)


def test_several_cohorts_in_any_form():
    data = simulate_sbg_cohorts(alpha=0.7, beta=1.2, cohort_size=[1000, 800, 600], periods=6, seed=4)
    frame_fit = fit_sbg(data)
    lists = [g.survivors.tolist() for _, g in data.groupby("cohort")]
    list_fit = fit_sbg(lists)
    assert frame_fit.alpha == pytest.approx(list_fit.alpha, rel=1e-10)
    assert frame_fit.customers == 2400 and len(frame_fit.cohorts) == 3
    # cohorts of different lengths: the shorter is censored earlier
    uneven = fit_sbg([lists[0], lists[1][:4]])
    assert uneven.customers == 1800 and np.isfinite(uneven.loglik)


def test_planted_truth_one_large_draw():
    data = simulate_sbg_cohorts(alpha=0.7, beta=1.2, cohort_size=[5000] * 3, periods=8, seed=5)
    res = fit_sbg(data)
    for name, value in (("alpha", 0.7), ("beta", 1.2)):
        row = res.params.loc[name]
        assert abs(row.estimate - value) < 3.5 * row.std_err
        assert row.ci_low < row.estimate < row.ci_high
    m = res.to_metrics()
    assert m["clv.sbg.alpha"] == res.alpha and "clv.sbg.beta_ci_low" in m and m["clv.sbg.loglik"] < 0


def test_bad_survivor_counts():
    empty = pd.DataFrame({"cohort": [], "period": [], "survivors": []})  # e.g. a dataset with cancels but no purchases
    with pytest.raises(ModelError, match="no subscription cohorts"):
        fit_sbg(empty)
    with pytest.raises(DataError, match="cannot increase"):
        fit_sbg([1000, 900, 950, 800])
    with pytest.raises(DataError, match="whole numbers >= 0"):
        fit_sbg([1000, 900.5, 800])
    with pytest.raises(DataError, match="whole numbers >= 0"):
        fit_sbg([1000, -5, -6])
    with pytest.raises(ModelError, match="at least 2 periods"):
        fit_sbg([1000, 900])
    with pytest.raises(ModelError, match="nobody churned"):
        fit_sbg([1000, 1000, 1000])
    with pytest.raises(ParameterError, match="period and survivors"):
        fit_sbg(pd.DataFrame({"cohort": [0], "active": [10]}))
    with pytest.raises(DataError, match="without gaps"):
        fit_sbg(pd.DataFrame({"cohort": [0, 0, 0], "period": [0, 1, 3], "survivors": [10, 8, 5]}))
    with pytest.raises(ParameterError, match="level"):
        fit_sbg([1000, 900, 800], level=1.5)


def _subscribers_by_hand(folder, start):
    """Each subscriber's start and first cancel after it, from the raw files (pandas)."""
    users = pd.read_parquet(folder / "users.parquet")
    events = pd.read_parquet(folder / "events.parquet")
    cancels = events[events.event_type == "cancel"]
    if start == "signup":
        subs = users.set_index("user_id").signup_at.rename("start")
    else:
        subs = events[events.event_type == "purchase"].groupby("user_id").event_at.min().rename("start")
        early = cancels.merge(subs.reset_index(), on="user_id")
        subs = subs.drop(early.loc[early.event_at < early.start, "user_id"].unique())  # cancelled before paying
    after = cancels.merge(subs.reset_index(), on="user_id")
    first_cancel = after[after.event_at >= after.start].groupby("user_id").event_at.min()
    out = subs.to_frame().assign(cancel=first_cancel)
    out["cohort"] = out.start.dt.to_period("M").dt.start_time
    return out


@pytest.mark.parametrize("start", ["first_purchase", "signup"])
def test_subscription_survivors_table(tiny_dataset, start):
    ds = load_dataset(tiny_dataset)
    t = subscription_survivors(ds, period_days=30, start=start).to_pandas()
    subs = _subscribers_by_hand(tiny_dataset, start)
    end = ds.observation_end
    first = t.cohort.min()
    g = subs[subs.cohort == pd.Timestamp(first)]
    assert t[(t.cohort == first) & (t.period == 0)].survivors.item() == len(g)
    periods = int((end - g.start.max()).total_seconds() // (30 * 86400))
    assert t[t.cohort == first].period.max() == periods
    for k in (1, 3):
        survived = (g.cancel.isna() | ((g.cancel - g.start).dt.total_seconds() // (30 * 86400) >= k)).sum()
        assert t[(t.cohort == first) & (t.period == k)].survivors.item() == survived
    for _, c in t.groupby("cohort"):
        assert (np.diff(c.sort_values("period").survivors) <= 0).all()
    assert np.isfinite(fit_sbg(t).loglik)
    users = pd.read_parquet(tiny_dataset / "users.parquet")
    total = t[t.period == 0].survivors.sum()
    if start == "first_purchase":  # only paying users are subscribers, not every user
        assert total < 0.6 * len(users)
    else:
        assert total > 0.9 * len(users)


def test_subscribers_by_hand_on_messy_data(tmp_path):
    """Every event type at random times: users who cancel before paying, cancel twice, pay after
    cancelling."""
    from test_tables import random_tables

    for name, df in random_tables(n_users=400, seed=3).items():
        df.to_parquet(tmp_path / f"{name}.parquet", index=False)
    ds = load_dataset(tmp_path)
    for start in ("first_purchase", "signup"):
        t = subscription_survivors(ds, period_days=20, start=start).to_pandas()
        subs = _subscribers_by_hand(tmp_path, start)
        end = ds.observation_end
        for cohort, c in t.groupby("cohort"):
            g = subs[subs.cohort == pd.Timestamp(cohort)]
            assert c[c.period == 0].survivors.item() == len(g), (start, cohort)
            for k in c.period:
                survived = (g.cancel.isna() | ((g.cancel - g.start).dt.total_seconds() // (20 * 86400) >= k)).sum()
                assert c[c.period == k].survivors.item() == survived, (start, cohort, k)
            assert c.period.max() == int((end - g.start.max()).total_seconds() // (20 * 86400))
    events = pd.read_parquet(tmp_path / "events.parquet")
    first_buy = events[events.event_type == "purchase"].groupby("user_id").event_at.min()
    first_cancel = events[events.event_type == "cancel"].groupby("user_id").event_at.min()
    assert (first_cancel.reindex(first_buy.index) < first_buy).sum() > 5  # the case the rule is about occurs


def test_subscription_table_refuses_data_without_cancels():
    with pytest.raises(ModelError, match="no cancel events.*not a subscription"):
        subscription_survivors(load_dataset("cdnow-sample"))


def test_observed_survival_never_rises_across_cohorts_of_different_lengths():
    """Pooling the share of survivors over the cohorts observed at each period jumps up when a
    well-retained old cohort is the only one left; the product-limit pooling never rises."""
    cohorts = {"old, loyal": [100, 95, 92, 90, 89, 88], "new, leaky": [1000, 600, 400]}
    res = fit_sbg(cohorts)
    proj = res.projection(periods=10)
    naive = [sum(c[k] for c in cohorts.values() if len(c) > k) / sum(c[0] for c in cohorts.values() if len(c) > k) for k in range(6)]
    assert max(np.diff(naive)) > 0.3  # the naive pooled curve rises
    obs = proj.observed_survival.to_numpy()[:6]
    assert np.all(np.diff(obs) <= 0) and obs[0] == 1.0
    assert obs[3] == pytest.approx(695 / 1100 * 492 / 695 * 90 / 92)  # product of pooled retention rates
    assert proj.observed_survival.iloc[6:].isna().all()
    assert np.all(np.diff(proj.survival) < 0)  # the fitted curve falls


def test_subscription_survivors_arguments(tiny_dataset):
    ds = load_dataset(tiny_dataset)
    with pytest.raises(ParameterError):
        subscription_survivors(ds, cohort="year")
    with pytest.raises(ParameterError):
        subscription_survivors(ds, period_days=0.1)
