"""Conversion (workbench.models.conversion): the Kaplan-Meier curve against
published values and statsmodels, censoring handled, the aggregated
discrete-time hazard model equal to the per-person-period fit, planted hazard
ratios, ARPU/ARPPU, and clear errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.duration.survfunc import SurvfuncRight

from workbench.errors import ModelError, ParameterError
from workbench.models.conversion import (
    ConversionDataWarning,
    conversion_curve,
    fit_conversion_hazard,
    monetization,
)


def _users(times, events, observed=None):
    times = np.asarray(times, float)
    events = np.asarray(events, int)
    obs = times if observed is None else np.asarray(observed, float)
    return pd.DataFrame(
        {"converted": events, "days_to_convert": np.where(events == 1, times, np.nan), "observed_days": np.where(events == 1, np.maximum(obs, times), times)}
    )


# ----------------------------------------------------------------- Kaplan-Meier
def test_kaplan_meier_matches_the_published_6mp_leukaemia_values():
    """Freireich et al. (1963) 6-MP arm, the textbook Kaplan-Meier example
    (e.g. Kleinbaum & Klein, Survival Analysis, ch. 2): S(t) and Greenwood
    standard errors at each event time. Here 'conversion' = relapse."""
    times = [6, 6, 6, 7, 10, 13, 16, 22, 23, 6, 9, 10, 11, 17, 19, 20, 25, 32, 32, 34, 35]
    events = [1] * 9 + [0] * 12
    r = conversion_curve(_users(times, events), horizon_days=23, max_days=35)
    published = {6: (0.857, 0.076), 7: (0.807, 0.087), 10: (0.753, 0.096), 13: (0.690, 0.107), 16: (0.627, 0.114), 22: (0.538, 0.128), 23: (0.448, 0.135)}
    for day, (s, se) in published.items():
        row = r.curve[(r.curve["group"] == "all") & (r.curve["day"] == day)].iloc[0]
        assert 1 - row["share"] == pytest.approx(s, abs=5e-4), day
        assert row["std_err"] == pytest.approx(se, abs=5e-4), day
    assert r.share == pytest.approx(1 - 0.448, abs=5e-4)
    # log-log interval at day 23 (R's conf.type="log-log", lifelines' default):
    # S^exp(+-1.96 se / (S |log S|)) with S = 0.448, se = 0.135 gives S in (0.188, 0.680)
    assert r.shares.loc["all", "ci_low"] == pytest.approx(1 - 0.680, abs=2e-3)
    assert r.shares.loc["all", "ci_high"] == pytest.approx(1 - 0.188, abs=2e-3)


def test_compressed_fit_equals_statsmodels_on_one_row_per_user():
    rng = np.random.default_rng(3)
    n = 3000
    t = np.round(rng.exponential(60, n))  # whole days: many ties, so compression matters
    obs = np.round(rng.uniform(20, 200, n))
    d = _users(np.minimum(t, obs), (t <= obs).astype(int))
    r = conversion_curve(d, max_days=150)
    sf = SurvfuncRight(np.minimum(t, obs), (t <= obs).astype(int))
    for day in (0, 5, 30, 90, 150):
        k = np.searchsorted(sf.surv_times, day, side="right") - 1
        row = r.curve[r.curve["day"] == day].iloc[0]
        assert row["share"] == pytest.approx(1 - (sf.surv_prob[k] if k >= 0 else 1.0), abs=1e-12)
        assert row["std_err"] == pytest.approx(sf.surv_prob_se[k] if k >= 0 else 0.0, abs=1e-12)


def test_censoring_is_handled_where_the_naive_share_is_biased():
    """A user observed 20 days has not had 90 days to convert."""
    rng = np.random.default_rng(4)
    n, rate = 20000, 0.004
    t = rng.exponential(1 / rate, n)
    obs = rng.uniform(5, 150, n)  # many users seen for less than 90 days
    d = _users(np.minimum(t, obs), (t <= obs).astype(int), observed=obs)
    truth = 1 - np.exp(-90 * rate)
    r = conversion_curve(d)
    assert r.shares.loc["all", "ci_low"] <= truth <= r.shares.loc["all", "ci_high"]
    naive = ((d["converted"] == 1) & (d["days_to_convert"] <= 90)).mean()
    assert naive < truth - 0.05  # the naive share is far too low
    m = r.to_metrics()
    assert m["conversion.share_90d"] == r.share and m["conversion.share_90d_ci_low"] < r.share < m["conversion.share_90d_ci_high"]


def test_curves_by_group_and_share_at():
    rng = np.random.default_rng(5)
    n = 8000
    seg = rng.choice(["a", "b"], n)
    rate = np.where(seg == "a", 0.01, 0.002)
    t = rng.exponential(1 / rate)
    obs = rng.uniform(100, 200, n)
    d = _users(np.minimum(t, obs), (t <= obs).astype(int), observed=obs).assign(segment=seg)
    r = conversion_curve(d, by="segment")
    for g, lam in (("a", 0.01), ("b", 0.002)):
        row = r.shares.loc[g]
        assert row["ci_low"] <= 1 - np.exp(-90 * lam) <= row["ci_high"]
    assert list(r.summary().index) == ["share_90d", "share_90d[segment=a]", "share_90d[segment=b]"]
    assert r.to_metrics()["conversion.share_90d.a"] == r.shares.loc["a", "estimate"]
    np.testing.assert_allclose(r.share_at([0, 90]), [0.0, r.share], atol=1e-12)
    curve = r.curve[r.curve["group"] == "all"]
    assert np.all(np.diff(curve["share"]) >= 0) and (curve["ci_low"] <= curve["share"]).all() and (curve["share"] <= curve["ci_high"]).all()


def test_simulator_conversion_share_end_to_end(tiny_dataset):
    from workbench import tables
    from workbench.data import load_dataset

    truth = json.loads((tiny_dataset / "truth.json").read_text())["conversion"]
    ds = load_dataset(tiny_dataset)
    r = conversion_curve(tables.conversion(ds).to_pandas(), by="segment")
    assert r.share == pytest.approx(truth["share_by_horizon"]["overall"], abs=0.02)
    for seg in ("mainstream", "enthusiast"):
        row = r.shares.loc[seg]
        assert row["ci_low"] <= truth["share_by_horizon"][seg] <= row["ci_high"], seg


def test_curve_errors_are_clear():
    d = _users([5, 10, 20], [1, 0, 1])
    with pytest.raises(ModelError, match="nobody has been observed for 90 days.*longest is 20"):
        conversion_curve(d)
    with pytest.raises(ParameterError, match=r"\['observed_days'\] not in the data"):
        conversion_curve(d.drop(columns="observed_days"))
    bad = pd.concat([d, pd.DataFrame({"converted": [1], "days_to_convert": [np.nan], "observed_days": [100.0]})], ignore_index=True)
    with pytest.warns(ConversionDataWarning, match="left out 1 of 4"):
        conversion_curve(bad, horizon_days=10)


# ----------------------------------------------------------------- hazard model
def _person_periods(rng, n=6000, bins=12, base=0.04, hr_exposed=1.6, hr_segment=2.5):
    """One row per person and weekly bin at risk: discrete-time conversion with
    cloglog hazards 1 - exp(-exp(eta)), exposure switching on at a random bin,
    censoring at a random bin."""
    seg = rng.choice(["mainstream", "enthusiast"], n, p=[0.7, 0.3])
    switch = rng.integers(1, 30, n)  # first exposed bin
    censor = rng.integers(3, bins + 1, n)  # bins observed
    rows = []
    for i in range(n):
        for b in range(censor[i]):
            exposed = int(b >= switch[i])
            eta = np.log(-np.log(1 - base)) + np.log(hr_exposed) * exposed + np.log(hr_segment) * (seg[i] == "enthusiast") - 0.05 * b
            h = 1 - np.exp(-np.exp(eta))
            event = int(rng.random() < h)
            rows.append((b, exposed, seg[i], event))
            if event:
                break
    return pd.DataFrame(rows, columns=["tenure_bin", "exposed", "segment", "event"])


@pytest.fixture(scope="module")
def person_periods():
    return _person_periods(np.random.default_rng(6))


def _aggregate(pp):
    return pp.groupby(["tenure_bin", "exposed", "segment"], as_index=False).agg(at_risk=("event", "size"), events=("event", "sum"))


def test_aggregated_fit_equals_the_per_person_period_fit(person_periods):
    """The point of the design: a fit on risk-set counts is the per-row fit."""
    rs = _aggregate(person_periods)
    assert len(rs) < len(person_periods) / 50
    r = fit_conversion_hazard(rs, covariates=("exposed", "segment"), min_events_per_piece=1, reference={"segment": "mainstream"})
    pp = person_periods
    X = pd.get_dummies(pp["tenure_bin"], prefix="b", dtype=float)
    X["exposed"] = pp["exposed"].astype(float)
    X["segment[enthusiast]"] = (pp["segment"] == "enthusiast").astype(float)
    ref = sm.GLM(pp["event"].astype(float), X, family=sm.families.Binomial(link=sm.families.links.CLogLog())).fit()
    for term in ("exposed", "segment[enthusiast]"):
        assert r.coefficients.loc[term, "estimate"] == pytest.approx(ref.params[term], rel=1e-7)
        assert r.coefficients.loc[term, "std_err"] == pytest.approx(ref.bse[term], rel=1e-6)
    np.testing.assert_allclose(r.baseline["log_hazard"], ref.params[[f"b_{b}" for b in r.baseline["tenure_bin"]]], rtol=1e-6)


def test_planted_hazard_ratios_are_recovered(person_periods):
    r = fit_conversion_hazard(_aggregate(person_periods), covariates=("exposed", "segment"), reference={"segment": "mainstream"})
    s = r.summary()
    assert s.loc["exposed", "ci_low"] <= 1.6 <= s.loc["exposed", "ci_high"]
    assert s.loc["segment[enthusiast]", "ci_low"] <= 2.5 <= s.loc["segment[enthusiast]", "ci_high"]
    assert r.hazard_ratio("segment[enthusiast]") == pytest.approx(2.5, rel=0.15)
    m = r.to_metrics()
    assert m["conversion.hazard.hr.exposed"] == pytest.approx(r.hazard_ratio("exposed"))
    assert m["conversion.hazard.hr.segment.enthusiast"] == pytest.approx(r.hazard_ratio("segment[enthusiast]"))
    # cumulative conversion of a profile is 1 - prod(1 - per-bin probability)
    c = r.conversion_by_bin(exposed=1, segment="enthusiast")
    p = 1 - np.exp(-np.exp(r.baseline["log_hazard"] + r.coefficients.loc["exposed", "estimate"] + r.coefficients.loc["segment[enthusiast]", "estimate"]))
    np.testing.assert_allclose(c["cumulative"], 1 - np.cumprod(1 - p))
    assert (c["cumulative"].iloc[-1] > r.conversion_by_bin()["cumulative"].iloc[-1])


def test_poisson_link_recovers_rate_ratios_with_person_time():
    """Piecewise-exponential model: exact exposure time, censoring mid-bin."""
    rng = np.random.default_rng(8)
    n = 20000
    seg = rng.choice(["a", "b"], n)
    lam = np.where(seg == "b", 0.01 * 2.0, 0.01)
    t = rng.exponential(1 / lam)
    obs = rng.uniform(10, 120, n)
    dur, ev = np.minimum(t, obs), (t <= obs).astype(int)
    rows = []
    for b in range(0, 18):
        lo, hi = 7 * b, 7 * (b + 1)
        at = dur > lo
        for s in ("a", "b"):
            m = at & (seg == s)
            rows.append((b, s, int(m.sum()), int((m & (dur <= hi) & (ev == 1)).sum()), float(np.clip(dur[m], lo, hi).sum() - lo * m.sum())))
    rs = pd.DataFrame(rows, columns=["tenure_bin", "segment", "at_risk", "events", "exposure_days"])
    r = fit_conversion_hazard(rs, covariates=("segment",), link="poisson", bin_days=7, reference={"segment": "a"})
    s = r.summary()
    assert s.loc["segment[b]", "ci_low"] <= 2.0 <= s.loc["segment[b]", "ci_high"]
    assert np.exp(r.baseline["log_hazard"]).mean() == pytest.approx(0.01, rel=0.1)


def test_hazard_errors_are_clear(person_periods):
    rs = _aggregate(person_periods)
    no_events = rs.assign(events=0)
    with pytest.raises(ModelError, match="no conversions in the risk sets"):
        fit_conversion_hazard(no_events)
    dead = rs.copy()
    dead.loc[dead["segment"] == "enthusiast", "events"] = 0
    with pytest.raises(ModelError, match="no conversions at all for segment = 'enthusiast'.*Merge or drop"):
        fit_conversion_hazard(dead, covariates=("segment",))
    with pytest.raises(ModelError, match="between 0 and 'at_risk'"):
        fit_conversion_hazard(rs.assign(events=rs["at_risk"] + 1))
    with pytest.raises(ParameterError, match=r"\['channel'\] not in the data"):
        fit_conversion_hazard(rs, covariates=("channel",))
    with pytest.raises(ModelError, match="single value"):
        fit_conversion_hazard(rs.assign(exposed=1))
    with pytest.raises(ParameterError, match="not a level"):
        fit_conversion_hazard(rs, covariates=("segment",), reference={"segment": "vip"})


def test_baseline_pieces_pool_sparse_tail_bins():
    rs = pd.DataFrame({"tenure_bin": range(10), "exposed": [0, 1] * 5, "at_risk": [100] * 10, "events": [6, 6, 1, 1, 1, 1, 1, 0, 0, 1]})
    r = fit_conversion_hazard(rs, min_events_per_piece=5)
    assert r.pieces == {0: "0", 1: "1", **{b: "2-9" for b in range(2, 10)}}


# ----------------------------------------------------------------- monetization
def test_arpu_arppu_and_customer_share():
    k = pd.DataFrame(
        {
            "period": pd.date_range("2024-01-01", periods=30, freq="W-MON"),
            "active_users": np.linspace(100, 400, 30),
            "customers": np.linspace(10, 60, 30),
            "revenue": np.linspace(300, 2000, 30),
        }
    )
    k.loc[5, ["active_users", "customers", "revenue"]] = 0  # a dead period is skipped
    r = monetization(k)
    ok = k["active_users"] > 0
    arpu = k.loc[ok, "revenue"] / k.loc[ok, "active_users"]
    np.testing.assert_allclose(r.table.loc[ok.to_numpy(), "arpu"], arpu)
    assert np.isnan(r.table.loc[5, "arpu"]) and r.n_periods == 29
    lags = int(np.floor(4 * (29 / 100) ** (2 / 9)))  # the Newey-West rule: 3
    ref = sm.OLS(arpu.to_numpy(), np.ones((29, 1))).fit(cov_type="HAC", cov_kwds={"maxlags": lags})
    s = r.summary()
    assert s.loc["arpu", "estimate"] == pytest.approx(arpu.mean()) and s.loc["arpu", "std_err"] == pytest.approx(ref.bse[0])
    assert s.loc["arppu_pooled", "estimate"] == pytest.approx(k["revenue"].sum() / k["customers"].sum())
    assert s.loc["customer_share_pooled", "estimate"] == pytest.approx(k["customers"].sum() / k["active_users"].sum())
    m = r.to_metrics()
    assert m["monetization.arppu_last"] == pytest.approx(2000 / 60)
    with pytest.raises(ModelError, match="several rows per period"):
        monetization(pd.concat([k, k]))


def test_signup_at_first_purchase_gives_a_share_of_one():
    """CDNOW-style data: every user is a customer from day 0."""
    d = _users([0.0] * 50, [1] * 50)
    r = conversion_curve(d)
    assert r.share == 1.0 and (r.curve["share"] == 1.0).all()


def test_plots_of_curves_and_hazard_ratios(person_periods):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from workbench.plots.conversion import plot_conversion_curve, plot_hazard_ratios

    h = fit_conversion_hazard(_aggregate(person_periods), covariates=("exposed", "segment"))
    ax = plot_hazard_ratios(h)
    from workbench.plots.style import term_label

    assert [t.get_text() for t in ax.get_yticklabels()] == [term_label(t) for t in h.summary().index]
    assert "co-created" in [t.get_text() for t in ax.get_yticklabels()]
    assert ax.get_xscale() == "log"
    d = _users([5, 10, 20, 100, 120], [1, 0, 1, 0, 1])
    ax = plot_conversion_curve(conversion_curve(d))
    assert any("by day 90" in t.get_text() for t in ax.texts)
    plt.close("all")
    with pytest.raises(ParameterError, match="ConversionHazardResult"):
        plot_hazard_ratios(d)
