"""The experiment readout: every fixed-horizon test against statsmodels on the
per-user values (1e-8), the delta-method ratio interval against a bootstrap,
RMST against numerical integration and lifelines, CUPED against the
per-user estimator, the confidence sequence against its mixture martingale,
planted effects recovered, bad input as notes or clear errors, metrics.json
names; the long checks (coverage over 200 simulations, A/A with a look every
day) are marked slow."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, optimize, stats

from workbench.data import load_dataset
from workbench.errors import DataError, ModelError, ParameterError
from workbench.models import experiments as ex
from workbench.models.experiments import sequential as sq
from workbench.tables import experiments as te

from conftest import plot_title

ROOT = Path(__file__).resolve().parents[1]
H = 30


def _load_sim():
    spec = importlib.util.spec_from_file_location("experiment_sim", ROOT / "benchmarks" / "experiment_sim.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["experiment_sim"] = mod
    spec.loader.exec_module(mod)
    return mod


es = _load_sim()


@pytest.fixture(scope="module")
def sim3(tmp_path_factory):
    """Three arms, assigned at signup, 24,000 users; planted effects from experiment_sim.Design."""
    folder = es.write(es.simulate(24_000, 7), tmp_path_factory.mktemp("sim3") / "d")
    return load_dataset(folder)


@pytest.fixture(scope="module")
def data3(sim3):
    """The engine's tables for sim3 (30-day horizon, churn by cancel events), as pandas."""
    return ex.experiment_data(sim3, "onboarding", horizon_days=H, churn="cancel")


@pytest.fixture(scope="module")
def readout3(data3):
    return ex.readout(data3, cuped=False, sequential=True)


@pytest.fixture(scope="module")
def users3(sim3):
    return te.experiment_users(sim3, "onboarding", horizon_days=H, churn="cancel").to_pandas()


@pytest.fixture(scope="module")
def sim_pre(tmp_path_factory):
    """Two arms, assigned 0-60 days after signup (a pre-assignment window to use for CUPED)."""
    design = es.Design(arms={"control": 0.5, "treatment": 0.5}, churn_hr={"treatment": 0.9}, conversion_hr={"treatment": 1.2},
                       spend_multiplier={"treatment": 1.1}, idea_hr={}, assign_delay_days=60.0, observation_days=240.0)
    folder = es.write(es.simulate(16_000, 3, design), tmp_path_factory.mktemp("pre") / "d", design)
    return load_dataset(folder)


def per_arm(users: pd.DataFrame, column: str, arm: str) -> np.ndarray:
    v = users.loc[users["arm"] == arm, column]
    return v[v.notna()].to_numpy(float)


# ------------------------------------------------------------------ reference results
def test_proportions_and_means_match_statsmodels(readout3, users3):
    """Binary metrics: Wald interval (confint_proportions_2indep) and pooled z-test (proportions_ztest);
    counts and amounts: Welch's t-test, degrees of freedom and interval (ttest_ind / CompareMeans);
    relative effect: the delta method on the ratio of the two means; all to 1e-8."""
    from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest
    from statsmodels.stats.weightstats import CompareMeans, DescrStatsW, ttest_ind

    checked = 0
    for _, r in readout3.effects.iterrows():
        kind = te.METRICS[r["metric"]].kind
        if kind not in ("binary", "mean"):
            continue
        y1, y0 = per_arm(users3, r["metric"], r["arm"]), per_arm(users3, r["metric"], "control")
        if kind == "binary":
            count, nobs = [y1.sum(), y0.sum()], [len(y1), len(y0)]
            z, p = proportions_ztest(count, nobs)
            lo, hi = confint_proportions_2indep(count[0], nobs[0], count[1], nobs[1], method="wald", compare="diff")
            assert r["p_value"] == pytest.approx(p, rel=1e-8, abs=1e-300)
            assert (r["ci_low"], r["ci_high"]) == (pytest.approx(lo, abs=1e-8), pytest.approx(hi, abs=1e-8))
            assert r["test"] == "two-proportion z (pooled)"
        elif kind == "mean":
            t, p, df = ttest_ind(y1, y0, usevar="unequal")
            lo, hi = CompareMeans(DescrStatsW(y1), DescrStatsW(y0)).tconfint_diff(usevar="unequal")
            assert r["p_value"] == pytest.approx(p, rel=1e-8, abs=1e-300)
            assert r["df"] == pytest.approx(df, rel=1e-8)
            assert r["effect"] / r["std_err"] == pytest.approx(t, rel=1e-8)
            assert (r["ci_low"], r["ci_high"]) == (pytest.approx(lo, rel=1e-8), pytest.approx(hi, rel=1e-8))
        m1, m0 = y1.mean(), y0.mean()
        v1 = y1.var(ddof=0 if kind == "binary" else 1) / len(y1)
        v0 = y0.var(ddof=0 if kind == "binary" else 1) / len(y0)
        assert r["effect"] == pytest.approx(m1 - m0, rel=1e-10, abs=1e-12)
        assert r["relative_effect"] == pytest.approx(m1 / m0 - 1, rel=1e-10)
        half = 1.959963984540054 * np.sqrt(v1 / m0**2 + m1**2 * v0 / m0**4)
        assert r["relative_ci_high"] - r["relative_effect"] == pytest.approx(half, rel=1e-8)
        checked += 1
    assert checked == 2 * 7  # two arms x (4 binary + 3 mean metrics)


@pytest.mark.parametrize("correction,method", [("holm", "holm"), ("bh", "fdr_bh")])
def test_multiplicity_matches_multipletests(data3, correction, method):
    from statsmodels.stats.multitest import multipletests

    res = ex.readout(data3, correction=correction, cuped=False)
    p = res.effects["p_value"].to_numpy()
    reject, adjusted, _, _ = multipletests(p, alpha=0.05, method=method)
    np.testing.assert_allclose(res.effects["p_adjusted"], adjusted, rtol=1e-12)
    m = len(p)
    level = 0.05 / m if correction == "holm" else 0.05 * max(reject.sum(), 1) / m
    z = stats.norm.ppf(1 - level / 2)
    ratio = res.effects[res.effects["kind"] == "ratio"].iloc[0]
    assert ratio["adj_ci_high"] - ratio["effect"] == pytest.approx(z * ratio["std_err"], rel=1e-10)
    none = ex.readout(data3, correction="none", cuped=False)
    np.testing.assert_allclose(none.effects["p_adjusted"], none.effects["p_value"])


def test_ratio_metric_delta_method_agrees_with_a_bootstrap(readout3, users3):
    """Width of the delta-method interval of each arm's difference in revenue per purchase and per
    active day within 5% of the bootstrap one (2,000 resamples of users within each arm; the
    bootstrap's own standard error of a width is about 1.6%)."""
    rng = np.random.default_rng(11)
    for metric, den in (("revenue_per_purchase", "purchases"), ("revenue_per_active_day", "active_days")):
        for arm in ("guided", "checklist"):
            r = readout3.effect(metric, arm)
            ratios = []
            for a in (arm, "control"):
                rows = users3[(users3.arm == a) & (users3.observed == 1)]
                y, d = rows["revenue"].to_numpy(float), rows[den].to_numpy(float)
                idx = rng.integers(0, len(y), (2000, len(y)))
                ratios.append(y[idx].sum(axis=1) / d[idx].sum(axis=1))
                assert (r["arm_value"] if a == arm else r["control_value"]) == pytest.approx(y.sum() / d.sum(), rel=1e-12)
            boot = ratios[0] - ratios[1]
            width_boot = 2 * 1.959963984540054 * boot.std(ddof=1)
            width = r["ci_high"] - r["ci_low"]
            assert width == pytest.approx(width_boot, rel=0.05), (metric, arm, width, width_boot)


def test_rmst_matches_numerical_integration_and_lifelines(data3, readout3):
    """RMST and its variance from the Kaplan-Meier curve of the engine's counts: the area by
    scipy's cumulative trapezoid over the curve sampled on either side of every jump, and
    sum_j A_j^2 d_j / (n_j (n_j - d_j)) with each A_j read off the same cumulative integral;
    lifelines' restricted_mean_survival_time when it is installed."""
    from scipy.integrate import cumulative_trapezoid

    counts = data3.time_to_event
    for metric in ("time_to_churn", "time_to_purchase"):
        tte = readout3.time_to_event[metric]
        for arm, g in counts[counts.metric == metric].groupby("arm"):
            km = ex.time_to_event.km_estimate(g["days"].to_numpy(), g["event"].to_numpy(float), g["users"].to_numpy(float))
            value, var = ex.rmst(km, H)
            jumps = km.times[km.times <= H]
            grid = np.unique(np.r_[0.0, jumps - 1e-9, jumps, H].clip(0, H))
            curve = km.at(grid)[0]  # right-continuous: 1e-9 before a jump it still has the value before it
            cum = cumulative_trapezoid(curve, grid, initial=0.0)
            assert value == pytest.approx(cum[-1], abs=1e-6)
            tail = cum[-1] - np.interp(jumps, grid, cum)
            d, n = km.n_events[km.times <= H], km.n_risk[km.times <= H]
            terms = np.where(n > d, tail**2 * d / (n * (n - d)), 0.0)
            assert var == pytest.approx(terms.sum(), rel=1e-6)
            row = tte.rmst.set_index("arm").loc[arm]
            assert row["rmst"] == value and row["std_err"] == pytest.approx(np.sqrt(var))
            try:
                from lifelines import KaplanMeierFitter
                from lifelines.utils import restricted_mean_survival_time
            except ImportError:
                continue
            kmf = KaplanMeierFitter().fit(g["days"], g["event"], weights=g["users"])
            assert value == pytest.approx(restricted_mean_survival_time(kmf, t=H), abs=1e-6)
        comp = tte.comparisons.set_index("arm").loc["guided"]
        rm = tte.rmst.set_index("arm")["rmst"]
        assert comp["rmst_difference"] == pytest.approx(rm["guided"] - rm["control"])


def test_cuped_matches_the_per_user_estimator(sim_pre):
    """With a pre-assignment window, the readout's CUPED (from sums) equals workbench's per-user
    cuped() (pooled OLS theta, Welch variance), and narrows the interval."""
    res = ex.readout(sim_pre, experiment="onboarding", horizon_days=H, churn="cancel", metrics=["revenue", "purchases", "retained"])
    raw = ex.readout(sim_pre, experiment="onboarding", horizon_days=H, churn="cancel", metrics=["revenue", "purchases", "retained"],
                     cuped=False)
    users = te.experiment_users(sim_pre, "onboarding", horizon_days=H, churn="cancel").to_pandas()
    for metric in ("revenue", "purchases", "retained"):
        pre = te.METRICS[metric].pre
        frame = users.loc[users[metric].notna(), ["arm", metric, pre]].assign(observed=1)
        want = ex.cuped(frame, covariates=[pre], outcome=metric)
        r = res.effect(metric, "treatment")
        assert r["cuped"] and r["effect"] == pytest.approx(want.estimate, rel=1e-8)
        assert r["std_err"] == pytest.approx(want.std_err, rel=1e-8)
        assert r["theta"] == pytest.approx(want.theta[pre], rel=1e-8)
        assert r["variance_reduction"] == pytest.approx(want.variance_reduction, rel=1e-6)
        assert r["std_err"] < raw.effect(metric, "treatment")["std_err"]
    assert res.effect("revenue", "treatment")["variance_reduction"] > 0.03


def test_confidence_sequence_is_the_mixture_boundary():
    """The half-width solves M(estimate) = 1/alpha for the normal-mixture likelihood ratio
    M = integral of N(est; theta, V) / N(est; 0, V) dN(theta; 0, tau^2), here by quadrature;
    the tuning s* minimises the width at the last look."""
    alpha, V = 0.05, 0.37
    s = sq.mixture_scale(alpha)
    tau2 = s * V

    def mixture(est):
        f = lambda th: np.exp(th * est / V - th**2 / (2 * V)) * stats.norm.pdf(th, 0, np.sqrt(tau2))  # noqa: E731
        return integrate.quad(f, -60, 60, limit=200)[0]

    edge = optimize.brentq(lambda e: mixture(e) - 1 / alpha, 1e-6, 20)
    assert sq.half_width(V, tau2, alpha) == pytest.approx(edge, rel=1e-7)
    width = lambda x: sq.half_width(V, x * V, alpha)  # noqa: E731
    assert width(s) < width(s * 1.1) and width(s) < width(s / 1.1)
    assert sq.half_width(V, tau2, alpha) > stats.norm.ppf(0.975) * np.sqrt(V)
    p = sq.always_valid_p([edge, 2 * edge, 0.0], [V, V, V], tau2)
    assert p[0] == pytest.approx(alpha, rel=1e-6) and p[1] < alpha and p[2] == p[1]  # running minimum


def test_sequential_ends_at_the_fixed_horizon_estimate(readout3):
    seq = readout3.sequential
    assert set(seq["metric"]) == set(te.FIXED_HORIZON_METRICS)
    for (metric, arm), g in seq.groupby(["metric", "arm"]):
        g = g.sort_values("day")
        last = g.iloc[-1]
        r = readout3.effect(metric, arm)
        assert last["estimate"] == pytest.approx(r["effect"], rel=1e-12, abs=1e-12)
        assert last["n_arm"] == r["n_arm"] and last["n_control"] == r["n_control"]
        assert (g["seq_ci_low"] <= g["ci_low"] + 1e-12).all() and (g["seq_ci_high"] >= g["ci_high"] - 1e-12).all()
        assert g["n_arm"].is_monotonic_increasing
        assert r["seq_ci_low"] == last["seq_ci_low"]


# ------------------------------------------------------------------ planted truth
def test_planted_effects_are_recovered(readout3):
    """One dataset, 18 planted differences: all inside the Holm-adjusted intervals (Bonferroni level,
    simultaneous 95%: a single dataset misses one of 18 plain 95% intervals more often than not);
    the plain 95% intervals cover at least 14 of 18 (binomial: P(fewer) < 0.5%); the planted churn
    hazard ratios inside their intervals at the same simultaneous level. Nominal coverage of the
    plain intervals is checked over 200 simulations (slow test, benchmarks/coverage_experiments.py)."""
    planted = es.effects(horizon=H)
    inside_adj = inside = 0
    for (metric, arm), truth in planted.items():
        r = readout3.effect(metric, arm)
        assert r["adj_ci_low"] < truth < r["adj_ci_high"], (metric, arm, truth, r["adj_ci_low"], r["adj_ci_high"])
        inside += r["ci_low"] < truth < r["ci_high"]
        inside_adj += 1
    assert inside_adj == 18 and inside >= 14
    # the planted churn hazard ratios, at the same simultaneous level (alpha / number of comparisons)
    t = readout3.time_to_event["time_to_churn"].comparisons.set_index("arm")
    z = stats.norm.ppf(1 - 0.05 / (2 * np.isfinite(readout3.effects["p_value"]).sum()))
    for arm, hr in (("guided", 0.8), ("checklist", 1.0)):
        se = (np.log(t.loc[arm, "hr_ci_high"]) - np.log(t.loc[arm, "hr_ci_low"])) / (2 * stats.norm.ppf(0.975))
        assert abs(np.log(t.loc[arm, "hazard_ratio"] / hr)) < z * se, (arm, t.loc[arm, "hazard_ratio"])
    assert not readout3.srm.mismatch
    assert readout3.effect("revenue", "guided")["p_adjusted"] < 1e-3  # a real effect is found


def test_heterogeneity_finds_an_effect_confined_to_one_segment(tmp_path):
    design = es.Design(arms={"control": 0.5, "treatment": 0.5}, churn_hr={}, conversion_hr={}, idea_hr={},
                       spend_multiplier={"treatment": 1.0}, segment_spend={"treatment": {"a": 1.6}})
    ds = load_dataset(es.write(es.simulate(16_000, 5, design), tmp_path / "d", design))
    res = ex.readout(ds, experiment="onboarding", horizon_days=H, churn="cancel", segment_by="segment",
                     metrics=["revenue_per_purchase", "retained"])
    het = res.heterogeneity
    eff = het.effects.set_index(["metric", "level"])
    assert eff.loc[("revenue_per_purchase", "a"), "ci_low"] < 30 < eff.loc[("revenue_per_purchase", "a"), "ci_high"]
    assert eff.loc[("revenue_per_purchase", "b"), "ci_low"] < 0 < eff.loc[("revenue_per_purchase", "b"), "ci_high"]
    inter = het.interactions.set_index("metric")
    assert inter.loc["revenue_per_purchase", "p_adjusted"] < 1e-6
    # with two levels Cochran's Q is the squared z of the difference between them
    a, b = eff.loc[("retained", "a")], eff.loc[("retained", "b")]
    assert inter.loc["retained", "q"] == pytest.approx((a["effect"] - b["effect"]) ** 2 / (a["std_err"] ** 2 + b["std_err"] ** 2))
    assert inter.loc["retained", "p_value"] > 1e-3  # no heterogeneity planted
    e = eff.loc[("revenue_per_purchase", "a")]
    w = 1 / het.effects["std_err"] ** 2
    assert e["adj_ci_low"] < e["ci_low"]
    m = het.to_metrics()
    assert "experiment.revenue_per_purchase.treatment.by_segment.interaction_p_value" in m
    assert "experiment.revenue_per_purchase.treatment.segment_a.effect" in m and w.notna().all()


# ------------------------------------------------------------------ design
def test_sample_ratio_for_three_arms_and_power():
    from statsmodels.stats.power import NormalIndPower

    counts = pd.DataFrame({"arm": ["control", "guided", "checklist"], "users": [3400, 3300, 3300]})
    res = ex.sample_ratio_mismatch(counts)
    chi2, p = stats.chisquare([3300, 3400, 3300])
    assert res.p_value == pytest.approx(p) and res.df == 2 and not res.mismatch
    skewed = ex.sample_ratio_mismatch(counts, allocation={"control": 0.5, "guided": 0.25, "checklist": 0.25})
    assert skewed.mismatch
    mean = ex.power_mde_mean(n_per_arm=4000, std_dev=80.0, baseline_mean=40.0)
    assert NormalIndPower().power(effect_size=mean.mde / 80.0, nobs1=4000, alpha=0.05) == pytest.approx(0.8, abs=1e-4)
    assert mean.mde == pytest.approx(2.8016 * 80 * np.sqrt(2 / 4000), rel=1e-3) and mean.mde_relative == mean.mde / 40
    # Schoenfeld: a hazard ratio of 0.7 with 1:1 allocation, 5% two-sided, 80% power needs 247 events
    ev = ex.events_needed(hazard_ratio=0.7)
    assert np.ceil(ev.events) == 247
    # the log-rank statistic is a one-sample z-test on log HR with sd 1 / sqrt(p (1 - p) events): NormalIndPower, ratio=0
    achieved = NormalIndPower().power(effect_size=abs(np.log(0.7)) * 0.5, nobs1=ev.events, alpha=0.05, ratio=0)
    assert achieved == pytest.approx(0.8, abs=2e-6)  # NormalIndPower also counts the far tail (1e-6); Schoenfeld does not
    assert ex.mde_hazard_ratio(events=ev.events).hazard_ratio == pytest.approx(0.7, rel=1e-9)
    assert ex.events_needed(hazard_ratio=0.7, event_probability=0.25).users == pytest.approx(ev.events / 0.25)
    for call, msg in ((lambda: ex.events_needed(hazard_ratio=1.0), "other than 1"),
                      (lambda: ex.power_mde_mean(n_per_arm=100, std_dev=0.0), "std_dev must be a positive"),
                      (lambda: ex.mde_hazard_ratio(events=-3), "events must be a positive")):
        with pytest.raises(ParameterError, match=msg):
            call()


# ------------------------------------------------------------------ results
def test_metrics_names(data3, readout3):
    m = readout3.to_metrics()
    assert m["experiment.srm_p_value"] == readout3.srm.p_value
    for metric in te.FIXED_HORIZON_METRICS:
        for arm in ("guided", "checklist"):
            for stat in ("effect", "effect_ci_low", "effect_ci_high", "relative_effect", "p_value", "p_adjusted",
                         "seq_ci_low", "seq_ci_high"):
                assert f"experiment.{metric}.{arm}.{stat}" in m, (metric, arm, stat)
    for metric in te.TIME_TO_EVENT_METRICS:
        for stat in ("rmst_difference", "rmst_difference_ci_low", "rmst_difference_ci_high", "hazard_ratio", "effect", "p_adjusted"):
            assert f"experiment.{metric}.guided.{stat}" in m
    assert m["experiment.time_to_churn.guided.rmst_difference"] == m["experiment.time_to_churn.guided.effect"]
    assert all(np.isfinite(v) for v in m.values())
    fixed = ex.readout(data3)
    assert not any(k.endswith("seq_ci_low") for k in fixed.to_metrics())
    table = readout3.summary()
    assert table.loc[("revenue", "guided"), "effect"] == readout3.effect("revenue", "guided")["effect"]
    html = readout3._repr_html_()
    assert "onboarding" in html and "holm" in html


def test_names_are_escaped_in_html(tmp_path):
    design = es.Design(arms={"control": 0.5, "<b>bold</b>": 0.5}, churn_hr={}, conversion_hr={}, idea_hr={}, spend_multiplier={})
    ds = load_dataset(es.write(es.simulate(2000, 1, design), tmp_path / "d", design))
    res = ex.readout(ds, experiment="onboarding", horizon_days=H, metrics=["retained", "time_to_churn"])
    html = res._repr_html_() + res.time_to_event["time_to_churn"]._repr_html_()
    assert "<b>bold</b>" not in html and "&lt;b&gt;bold&lt;/b&gt;" in html
    assert "experiment.retained.b_bold_b.effect" in res.to_metrics()


# ------------------------------------------------------------------ bad input
def test_no_control_arm(tmp_path):
    design = es.Design(arms={"baseline": 0.5, "treatment": 0.5}, churn_hr={}, conversion_hr={}, idea_hr={}, spend_multiplier={})
    folder = es.write(es.simulate(1000, 1, design), tmp_path / "d", design)
    with pytest.raises(DataError, match="experiment has no arm named 'control'"):
        load_dataset(folder)
    ds = load_dataset(folder, validate=False)
    with pytest.raises(ModelError, match=r"no arm is named 'control' \(arms: baseline, treatment\)"):
        ex.readout(ds, experiment="onboarding", metrics=["retained"])


def test_an_arm_without_users_is_a_note(data3):
    res = ex.readout(data3, allocation={"control": 0.3, "guided": 0.3, "checklist": 0.3, "holdout": 0.1})
    assert any("arm 'holdout' has no users" in n for n in res.notes)
    assert any(n.startswith("sample ratio check:") and "no user was assigned" in n for n in res.notes)
    assert res.srm is None and "experiment.srm_p_value" not in res.to_metrics()
    assert len(res.effects) == 2 * len(te.METRICS)  # every other estimate is still there


def test_a_metric_the_dataset_cannot_support_is_a_note(tmp_path):
    tables = es.frames(es.simulate(3000, 2))
    tables["events"] = tables["events"][tables["events"]["event_type"] != "purchase"]
    ds = load_dataset(es.write(tables, tmp_path / "d"))
    res = ex.readout(ds, experiment="onboarding", horizon_days=H)
    for metric in ("converted", "purchases", "revenue", "revenue_per_purchase", "revenue_per_active_day", "time_to_purchase"):
        assert f"{metric}: not estimated: the dataset has no purchase events." in res.notes
        assert metric not in set(res.effects["metric"])
    assert {"retained", "feedback", "time_to_churn"} <= set(res.effects["metric"])
    with pytest.raises(ParameterError, match=r"unknown metric\(s\) 'revenu'"):
        ex.readout(ds, experiment="onboarding", metrics=["revenu"])


def test_a_horizon_longer_than_the_follow_up_is_a_note(sim3):
    res = ex.readout(sim3, experiment="onboarding", horizon_days=400, churn="cancel", metrics=["revenue", "time_to_churn"])
    assert any("no user has been followed for the whole 400-day horizon" in n and "choose horizon_days <= 179" in n
               for n in res.notes), res.notes
    assert any(n.startswith("revenue: not estimated: the control arm has 0 user(s)") for n in res.notes)
    assert any("time_to_churn: arm 'control' is followed for at most" in n for n in res.notes)
    assert res.effects["effect"].isna().all()  # no fixed-horizon effect, no RMST; the hazard ratio needs no horizon
    assert {k.rsplit(".", 1)[-1] for k in res.to_metrics() if k != "experiment.srm_p_value"} == {
        "hazard_ratio", "hazard_ratio_ci_low", "hazard_ratio_ci_high"}


def test_unknown_names_are_clear_errors(sim3, data3):
    with pytest.raises(ParameterError, match=r"segment_by='region' is not a user attribute .* \(attributes: segment, channel\)"):
        ex.readout(sim3, experiment="onboarding", segment_by="region")
    with pytest.raises(ParameterError, match=r"experiment 'onbaording' not in dataset"):
        ex.readout(sim3, experiment="onbaording")
    with pytest.raises(ParameterError, match="correction='bonferroni' is not one of 'holm', 'bh', 'none'"):
        ex.readout(sim3, experiment="onboarding", correction="bonferroni")
    with pytest.raises(ParameterError, match="horizon_days=60, but the tables given were built with horizon_days=30"):
        ex.readout(data3, horizon_days=60)
    with pytest.raises(ParameterError, match="has no assignments table"):
        ex.experiment_data(type("D", (), {"assignments": None, "name": "bare"})(), "x")


# ------------------------------------------------------------------ long checks
def _arm_stats_from_draws(draws: dict) -> pd.DataFrame:
    """Sufficient statistics like experiment_arm_stats from per-user draws
    {arm: {metric: (y, d, x, v)}}."""
    rows = []
    for arm, metrics in draws.items():
        for metric, (y, d, x, v) in metrics.items():
            c = {"y": y, "d": d, "x": x, "v": v}
            row = {"arm": arm, "metric": metric, "n": len(y)}
            for k in "ydxv":
                row[f"sum_{k}"] = c[k].sum()
            for a, b in ("yy", "dd", "xx", "vv", "yd", "yx", "yv", "dx", "dv", "xv"):
                row[f"sum_{a}{b}"] = (c[a] * c[b]).sum()
            rows.append({**row, "cap_y": np.nan, "cap_d": np.nan, "cap_x": np.nan, "cap_v": np.nan})
    return pd.DataFrame(rows)


def _draw_users(rng, n, lift, spend):
    """One arm: retained (binary), revenue (zero-inflated, heavy-tailed: a Gamma(2, 25 x spend) amount
    per purchase), revenue per purchase; a pre-assignment value correlated with both (for CUPED)."""
    g = rng.gamma(0.8, 1.25, n)  # user propensity, mean 1
    pre = rng.poisson(2.0 * g).astype(float)
    purchases = rng.poisson(1.5 * g * lift).astype(float)
    revenue = rng.gamma(2.0 * purchases, 25.0 * spend)  # a sum of `purchases` Gamma(2, 25 spend) amounts; 0 for none
    retained = (rng.random(n) < 0.5 + 0.1 * np.tanh(g - 1) + (lift - 1) * 0.2).astype(float)
    one = np.ones(n)
    return {"retained": (retained, one, (pre > 0).astype(float), one), "revenue": (revenue, one, pre * 40.0, one),
            "revenue_per_purchase": (revenue, purchases, pre * 40.0, pre)}


def _planted(lift, spend):
    """Each metric's difference from control (lift 1, spend 1): retention + 0.2 (lift - 1), revenue
    1.5 x 50 (lift x spend - 1), revenue per purchase 50 (spend - 1)."""
    return {"retained": 0.2 * (lift - 1), "revenue": 75.0 * (lift * spend - 1), "revenue_per_purchase": 50.0 * (spend - 1)}


@pytest.mark.slow
def test_fixed_horizon_intervals_cover_over_1000_simulations():
    """Three arms x three metric kinds (binary, heavy-tailed mean, ratio), with and without CUPED,
    from per-user draws summed as the engine sums them: each 95% interval covers the planted
    difference in 93%-97% of 1,000 simulations (at 200, a rate's binomial sd is 1.5 points and
    one of twelve rates strays past 93% too often to test; the end-to-end run through the
    engine is benchmarks/coverage_experiments.py)."""
    arms = {"control": (1.0, 1.0), "a": (1.1, 1.0), "b": (1.0, 1.15)}
    hits, n_rep = {}, 1000
    for rep in range(n_rep):  # one independent stream per simulation and arm
        draws = {a: _draw_users(np.random.default_rng([2024, rep, i]), 3000, *p) for i, (a, p) in enumerate(arms.items())}
        stats_ = _arm_stats_from_draws(draws)
        for cuped in (False, True):
            eff, _ = ex.fixed_horizon_effects(stats_, metrics=["retained", "revenue", "revenue_per_purchase"], cuped=cuped)
            for _, r in eff.iterrows():
                diff = _planted(*arms[r["arm"]])[r["metric"]]
                key = (r["metric"], r["arm"], cuped)
                hits[key] = hits.get(key, 0) + (r["ci_low"] < diff < r["ci_high"])
    rates = {k: v / n_rep for k, v in hits.items()}
    print(f"coverage of 95% intervals over {n_rep} simulations:",
          {f"{m}/{a}/{'cuped' if c else 'raw'}": r for (m, a, c), r in rates.items()})
    assert len(rates) == 12
    # each rate's binomial sd is 0.7 points at 1,000 simulations: 93%-97% is about 3 sd either side
    assert all(0.93 <= v <= 0.97 for v in rates.values()), rates
    assert 0.94 <= np.mean(list(rates.values())) <= 0.96


@pytest.mark.slow
def test_always_valid_intervals_under_daily_looks_in_200_aa_tests():
    """A/A: 200 experiments of 60 days, 150 new users per arm a day (revenue: zero-inflated,
    heavy-tailed), a look every day. The always-valid interval excludes 0 at some look in at most
    5% of them; the naive daily 95% interval does in far more (benchmarks/coverage_experiments.py
    prints both through the engine)."""
    rng = np.random.default_rng(7)
    n_rep, days, per_day = 200, 60, 150
    seq_hits = naive_hits = 0
    for _ in range(n_rep):
        rows = []
        for arm in ("control", "treatment"):
            y, d, x, v = _draw_users(rng, days * per_day, 1.0, 1.0)["revenue"]
            day = np.repeat(np.arange(1, days + 1), per_day)  # the day each user's value becomes known
            cum = {"n": np.cumsum(np.bincount(day, minlength=days + 1))[1:]}
            c = {"y": y, "d": d, "x": x, "v": v}
            for k in "ydxv":
                cum[f"sum_{k}"] = np.cumsum(np.bincount(day, weights=c[k], minlength=days + 1))[1:]
            for a, b in ("yy", "dd", "xx", "vv", "yd", "yx", "yv", "dx", "dv", "xv"):
                cum[f"sum_{a}{b}"] = np.cumsum(np.bincount(day, weights=c[a] * c[b], minlength=days + 1))[1:]
            rows.append(pd.DataFrame({"day": np.arange(1, days + 1), "arm": arm, "metric": "revenue", **cum}))
        daily = pd.concat(rows, ignore_index=True)
        seq = ex.sequential_effects(daily, metrics=["revenue"], cuped=False)
        seq_hits += bool(((seq["seq_ci_low"] > 0) | (seq["seq_ci_high"] < 0)).any())
        naive_hits += bool(((seq["ci_low"] > 0) | (seq["ci_high"] < 0)).any())
    seq_rate, naive_rate = seq_hits / n_rep, naive_hits / n_rep
    print(f"A/A, {n_rep} experiments, {days} daily looks: always-valid {seq_rate:.1%}, naive {naive_rate:.1%}")
    assert seq_rate <= 0.05
    assert naive_rate >= 0.2 and naive_rate >= 4 * max(seq_rate, 0.01)


def test_plots(readout3, data3):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from workbench.plots import experiments as ep
    from workbench.plots import style

    fig = ep.plot_effects(readout3)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == len(te.METRICS) and plot_title(panels[0]).startswith("retained")
    assert "Holm" in fig.get_suptitle() and "always-valid" in fig.get_suptitle()
    fig = ep.plot_sequential(readout3, "revenue")
    ax = fig.axes[0]
    assert len(ax.collections) >= 2  # one always-valid band per arm
    last = readout3.sequential[(readout3.sequential.metric == "revenue") & (readout3.sequential.arm == "guided")]
    band = ax.collections[0].get_paths()[0].vertices
    assert band[:, 0].max() == pytest.approx(last["day"].max())
    fig = ep.plot_arm_survival(readout3, "time_to_churn")
    assert "restricted mean days up to 30" in plot_title(fig.axes[0])
    assert any(line.get_xdata()[0] == 30 for line in fig.axes[0].get_lines() if len(line.get_xdata()) == 2)
    # house style: shares from 0, each arm in its colour (control grey), RMST per arm in the legend
    km = fig.axes[0]
    assert km.get_ylim()[0] == 0 and km.yaxis.get_major_formatter()(0.5, 0) == "50%"
    legend = {t.get_text(): matplotlib.colors.to_hex(h.get_color()) for t, h in zip(km.get_legend().get_texts(), km.get_legend().legend_handles)}
    rm = readout3.time_to_event["time_to_churn"].rmst.set_index("arm")["rmst"]
    assert legend[f"control: {rm['control']:.1f} days"] == style.color("control").lower()
    fig = ep.plot_effects(readout3, metrics=["converted", "revenue", "time_to_churn"], currency="EUR")
    conv, rev, tte = fig.axes[:3]
    assert "EUR" in rev.get_xlabel() and "EUR per user" in plot_title(rev) and "percentage points" in plot_title(conv)
    assert conv.xaxis.get_major_formatter()(0.02, 0) == "+2"
    assert "days" in plot_title(tte)
    thick = {round(float(np.mean(line.get_ydata())), 3): matplotlib.colors.to_hex(line.get_color()) for line in conv.get_lines()
             if line.get_linewidth() == 5}
    assert sorted(thick.values()) == sorted(c.lower() for c in style.colors(["checklist", "guided"]))
    assert fig.texts[0].get_ha() == "left"  # the legend line, left-aligned like the titles
    plt.close("all")
    with pytest.raises(ParameterError, match="no sequential results"):
        ep.plot_sequential(ex.readout(data3, metrics=["revenue"]), "revenue")
    with pytest.raises(ParameterError, match="no time-to-event result for 'revenue'"):
        ep.plot_arm_survival(readout3, "revenue")
