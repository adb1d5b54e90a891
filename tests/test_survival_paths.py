"""The bounded paths of the co-creation analysis against the exact ones, on a
simulated dataset where both run, with stated tolerances:

- the piecewise-exponential fit (baseline profiled out) against statsmodels'
  GLM with one dummy per bin: equal to 1e-8;
- time-varying hazard ratio, naive "ever" hazard ratio and dose-response:
  exact Cox vs the aggregated model within 2% in every hazard ratio;
- landmark IPW: exact (weighted Cox on users) vs aggregated (weighted
  piecewise-exponential on risk sets, sandwich from one engine pass) within 1%
  in the hazard ratios and 3% in the interval widths; propensity overlap and
  balance equal;
- the aggregated landmark sandwich against the same sandwich from per-user,
  per-bin rows in pandas;
- the proportional-hazards check on aggregated risk sets, quiet under
  proportional hazards and loud when violated;
- the referral rate ratio on cells against the per-user GLM.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench import tables
from workbench.data import load_dataset
from workbench.data.simulate import simulate
from workbench.errors import ModelError, ParameterError
from workbench.models import causal, referrals
from workbench.models import survival as sv

from conftest import plot_title

AGREE_HR = 0.02  # exact vs aggregated, relative, hazard ratios
KW = dict(exposure="adopted", churn="cancel_or_inactivity")  # the rule under which the planted truth holds (some churners go silent)
LANDMARKS = dict(landmarks=(30, 90, 180), covariates=("segment", "prior_activity"), bin_days=7)


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    out = tmp_path_factory.mktemp("paths") / "sim"
    # every churner cancels, so the cancel-only rule (KW) sees every churn: with
    # the default mixed churn, silent churners look alive and the cancel rule is biased
    s = simulate(users=5000, seed=3, out=out, progress=False, churn_cancel_share=1.0)
    return s.truth, load_dataset(out, validate=False)


@pytest.fixture(scope="module")
def ep(sim):
    return tables.episodes(sim[1], **KW)


def test_profiled_poisson_equals_statsmodels_glm_with_bin_dummies(sim):
    import statsmodels.api as sm

    rs = tables.risk_sets(sim[1], bin_days=7, strata=("segment",), **KW).to_pandas()
    rs = rs[rs.at_risk > 0]
    res = sv.discrete_time_hazard(rs, adjust_for=["segment"], link="poisson")
    keep = rs.groupby("tenure_bin")["events"].transform("sum") > 0
    d = rs[keep]
    X = np.column_stack([d["exposed"], (d["segment"] == "mainstream").astype(float),
                         pd.get_dummies(d["tenure_bin"].astype(str), dtype=float).to_numpy()])
    w = np.random.default_rng(0).uniform(0.5, 2, len(d))
    ref = sm.GLM(d["events"].to_numpy(float), X, family=sm.families.Poisson(), offset=np.log(d["exposure_days"].to_numpy())).fit(tol=1e-12)
    np.testing.assert_allclose(res.params.to_numpy(), ref.params[:2], atol=1e-8)
    np.testing.assert_allclose(res.cov.to_numpy(), ref.cov_params()[:2, :2], rtol=1e-7)
    # with frequency weights, and the influence rows (the coefficients' rows of the inverse information times the design)
    from workbench.models.survival.discrete import fit_binned_glm

    fit = fit_binned_glm(d["events"], d["at_risk"], X[:, :2], d["tenure_bin"].to_numpy(), link="poisson",
                         exposure_days=d["exposure_days"], weights=w)
    refw = sm.GLM(d["events"].to_numpy(float), X, family=sm.families.Poisson(), offset=np.log(d["exposure_days"].to_numpy()),
                  freq_weights=w).fit(tol=1e-12)
    np.testing.assert_allclose(fit.params, refw.params[:2], atol=1e-8)
    np.testing.assert_allclose(fit.influence, X @ np.asarray(refw.cov_params())[:2].T, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(fit.mu, np.exp(X @ refw.params), rtol=1e-7)


def test_time_varying_exact_and_aggregated_agree_and_say_which_ran(sim, ep):
    rs = tables.risk_sets(sim[1], bin_days=7, strata=("segment",), **KW)
    exact = sv.fit_time_varying(ep, rs, adjust_for=["segment"])
    agg = sv.fit_time_varying(ep, rs, adjust_for=["segment"], max_episodes=1000)
    assert exact.path == "exact" and isinstance(exact, sv.CoxResult) and "at most 5,000,000" in exact.path_reason
    assert agg.path == "aggregated" and isinstance(agg, sv.DiscreteHazardResult) and agg.link == "poisson"
    assert "exceed the exact path's limit of 1,000 (max_episodes)" in agg.path_reason and agg.path_reason in agg._repr_html_()
    for name in ("exposed", "segment[mainstream]"):
        assert agg.hazard_ratio(name)[0] == pytest.approx(exact.hazard_ratio(name)[0], rel=AGREE_HR)
    planted = sim[0]["churn"]["hazard_ratio_adopted"]
    assert agg.hazard_ratio()[1] < planted < agg.hazard_ratio()[2]
    with pytest.raises(ParameterError, match="max_episodes must be"):
        sv.fit_time_varying(ep, rs, max_episodes=-1)


def test_naive_and_dose_response_exact_and_aggregated_agree(sim, ep):
    ds = sim[1]
    n_exact = sv.fit_naive_ever(ep, tables.risk_sets(ds, naive_ever=True, **KW), adjust_for=["segment"])
    n_agg = sv.fit_naive_ever(ep, tables.risk_sets(ds, naive_ever=True, **KW), adjust_for=["segment"], max_episodes=0)
    assert (n_exact.path, n_agg.path) == ("exact", "aggregated")
    assert n_agg.hazard_ratio("ever_exposed")[0] == pytest.approx(n_exact.hazard_ratio("ever_exposed")[0], rel=AGREE_HR)
    dr = tables.dose_risk_sets(ds, max_dose=3, **KW)
    d_exact = sv.fit_dose_response(ep, dr, adjust_for=["segment"])
    d_agg = sv.fit_dose_response(ep, dr, adjust_for=["segment"], max_episodes=0)
    assert list(d_agg.levels.index) == list(d_exact.levels.index) == ["dose=1", "dose=2", "dose>=3"]
    np.testing.assert_allclose(d_agg.levels["hazard_ratio"], d_exact.levels["hazard_ratio"], rtol=AGREE_HR)
    assert d_agg.trend["hazard_ratio"] == pytest.approx(d_exact.trend["hazard_ratio"], rel=AGREE_HR)
    np.testing.assert_allclose(d_agg.exposure_by_level["churn_events"], d_exact.exposure_by_level["churn_events"])
    np.testing.assert_allclose(d_agg.exposure_by_level["person_days"], d_exact.exposure_by_level["person_days"], rtol=1e-9)
    assert d_agg.path == "aggregated" and "max_episodes" in d_agg._repr_html_()


@pytest.fixture(scope="module")
def landmark_pair(sim, ep):
    ds = sim[1]
    rs = tables.landmark_risk_sets(ds, **KW, **LANDMARKS)
    users = tables.landmark_users(ds, **KW, **LANDMARKS)
    cov = list(LANDMARKS["covariates"])
    exact = causal.fit_landmark_ipw(ep, rs, users, landmarks=LANDMARKS["landmarks"], covariates=cov)
    agg = causal.fit_landmark_ipw(ep, rs, users, landmarks=LANDMARKS["landmarks"], covariates=cov, max_episodes=0)
    return exact, agg, rs, users


def test_landmark_ipw_exact_and_aggregated_agree(landmark_pair):
    exact, agg, _, _ = landmark_pair
    assert (exact.method, agg.method) == ("exact", "aggregated") and "max_episodes" in agg.path_reason
    for col in ("users", "co_creators", "events"):
        assert (exact.estimates[col] == agg.estimates[col]).all(), col
    for which in ("unweighted", "weighted"):
        np.testing.assert_allclose(agg.estimates[f"hr_{which}"], exact.estimates[f"hr_{which}"], rtol=0.01)
        width = lambda r, w=which: np.log(r.estimates[f"hr_{w}_ci_high"] / r.estimates[f"hr_{w}_ci_low"])  # noqa: E731
        np.testing.assert_allclose(width(agg), width(exact), rtol=0.03)
    np.testing.assert_allclose(agg.balance.to_numpy(), exact.balance.to_numpy(), atol=1e-9)
    for col in ("users", "ps_median", "ess_weighted", "max_weight", "share_ps_outside_05_95"):
        np.testing.assert_allclose(agg.overlap[col], exact.overlap[col], rtol=1e-8, err_msg=col)
    assert agg.evalue.e_value == pytest.approx(exact.evalue.e_value, rel=0.02)
    assert agg.propensity["users"].sum() == exact.propensity.shape[0]
    # retention curves from each landmark, weighted and not: Kaplan-Meier on users against the piecewise-exponential curve
    for (d, g), a in exact.curves.groupby(["landmark", "group"]):
        b = agg.curves[(agg.curves.landmark == d) & (agg.curves.group == g)]
        for t in (28, 91, 182):
            i, j = np.searchsorted(a["time"], t, side="right") - 1, np.searchsorted(b["time"], t, side="right") - 1
            for col in ("survival", "survival_unweighted"):
                assert b[col].iloc[j] == pytest.approx(a[col].iloc[i], abs=0.005), (d, g, t, col)


def test_propensity_on_pattern_counts():
    """Counts per pattern: the same fit as on users; a saturated model is not
    'perfect prediction'; a pattern where nobody co-created is separation."""
    from workbench.models.causal.propensity import propensity_model

    X = np.array([[0.0], [1.0]])
    ps = propensity_model(X, ["segment[b]"], np.array([7.0, 30.0]), np.array([100.0, 100.0]), covariates=["segment"],
                          treatment="exposed", where="t")
    np.testing.assert_allclose(ps, [0.07, 0.30], atol=1e-8)
    users = np.repeat([0.0, 1.0], 100)
    treated = np.r_[np.arange(100) < 7, np.arange(100) < 30].astype(float)
    np.testing.assert_allclose(propensity_model(users[:, None], ["segment[b]"], treated, np.ones(200), covariates=["segment"],
                                                treatment="exposed", where="t")[[0, 100]], ps, atol=1e-6)
    with pytest.raises(ModelError, match=r"separates co-creators from others.*segment\[b\] = 1 \(none of its 100 users co-created\)"):
        propensity_model(X, ["segment[b]"], np.array([7.0, 0.0]), np.array([100.0, 100.0]), covariates=["segment"],
                         treatment="exposed", where="t")


def test_aggregated_landmark_sandwich_equals_the_per_user_bin_rows(landmark_pair):
    """The engine's cumulative-sum shortcut against the scores of every
    user-bin row computed in pandas from the same fit, for the pooled weighted
    hazard ratio: sum over users of (sum of w g (y - rate e) over their rows)^2."""
    _, agg, rs, users = landmark_pair
    from workbench.models.survival.discrete import fit_binned_glm

    cells = rs.to_pandas()
    u = users.to_pandas()
    prop = agg.propensity.rename(columns={"exposed": "exposed"})
    keys = ["landmark", "segment", "prior_activity", "exposed"]
    cells = cells.merge(prop[[*keys, "ipw"]], on=keys).sort_values([*keys, "tenure_bin"]).reset_index(drop=True)
    base = pd.MultiIndex.from_arrays([cells["landmark"], cells["tenure_bin"]]).factorize()[0]
    fit = fit_binned_glm(cells["events"], cells["at_risk"], cells[["exposed"]].to_numpy(float), base, link="poisson",
                         exposure_days=cells["exposure_days"], weights=cells["ipw"])
    assert fit.params[0] == pytest.approx(agg.weighted.params["exposed"], abs=1e-10)
    cells["g"], cells["rate"] = 0.0, 0.0  # bins without churn: baseline at minus infinity, rate 0, no score
    cells.loc[fit.keep, "g"], cells.loc[fit.keep, "rate"] = fit.influence[:, 0], fit.mu
    # every user-bin row: full bins before the last, then the last one with its days and the churn
    ub = u.merge(prop[[*keys, "ipw"]], on=keys)
    rep = ub.loc[ub.index.repeat(ub["tenure_bin"] + 1)].copy()
    rep["bin"] = rep.groupby(level=0).cumcount()
    last = rep["bin"] == rep["tenure_bin"]
    rep["days"] = np.where(last, rep["last_days"], 7.0)
    rep["y"] = np.where(last, rep["churned"], 0)
    rep = rep.merge(cells[[*keys, "tenure_bin", "g", "rate"]].rename(columns={"tenure_bin": "bin"}), on=[*keys, "bin"])
    assert len(rep) == int(cells["at_risk"].sum())
    z = (rep["ipw"] * rep["g"] * (rep["y"] - rep["rate"] * rep["days"])).groupby(rep["user_id"]).sum()
    assert float(agg.weighted.cov.iloc[0, 0]) == pytest.approx(float((z**2).sum()), rel=1e-9)


def test_landmark_aggregated_refuses_mismatched_inputs(landmark_pair, sim):
    _, _, rs, _ = landmark_pair
    other = tables.landmark_users(sim[1], **KW, **{**LANDMARKS, "landmarks": (30, 90)})
    with pytest.raises(ParameterError, match="do not come from the same table arguments"):
        causal.landmark_ipw_aggregated(rs, other, covariates=list(LANDMARKS["covariates"]))
    with pytest.raises(ParameterError, match="bin_days=3 does not match the table"):
        causal.landmark_ipw_aggregated(rs, other, covariates=list(LANDMARKS["covariates"]), bin_days=3)


def _synthetic_risk_sets(hr_by_bin, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for b, hr in enumerate(hr_by_bin):
        for x in (0, 1):
            n = 20000
            h = 0.02 * (1 + 0.03 * b) * (hr if x else 1.0)
            ev = rng.binomial(n, h)
            rows.append((b, x, n, ev, 7.0 * (n - ev / 2)))
    return pd.DataFrame(rows, columns=["tenure_bin", "exposed", "at_risk", "events", "exposure_days"])


def test_ph_check_on_aggregated_fits_quiet_under_ph_and_loud_when_violated():
    ph = sv.proportional_hazards_check(sv.discrete_time_hazard(_synthetic_risk_sets([0.6] * 20), link="poisson"))
    assert ph.method == "tenure_interaction" and ph.tests.loc["exposed", "p_value"] > 0.01
    assert ph.by_tenure["hazard_ratio"].between(0.5, 0.72).all()
    bad = sv.proportional_hazards_check(sv.discrete_time_hazard(_synthetic_risk_sets([0.6] * 10 + [1.0] * 10), link="poisson"))
    assert bad.tests.loc["exposed", "p_value"] < 1e-6 and bad.tests.loc["exposed", "interaction"] > 0
    assert bad.violated() == ["exposed"]
    hr = bad.by_tenure["hazard_ratio"].to_numpy()
    assert hr[0] < 0.7 and hr[-1] > 0.9 and list(bad.by_tenure["from_bin"]) == sorted(bad.by_tenure["from_bin"])
    cl = sv.proportional_hazards_check(sv.discrete_time_hazard(_synthetic_risk_sets([0.6] * 10 + [1.0] * 10)))
    assert cl.tests.loc["exposed", "p_value"] < 1e-6  # the cloglog fit too
    with pytest.raises(ParameterError, match="transform"):
        sv.proportional_hazards_check(cl, transform="km")


def test_referral_cells_equal_the_per_user_glm(sim):
    ds = sim[1]
    kw = dict(exposure="feedback", churn="cancel", period_days=28)
    rows = tables.referrals(ds, **kw)
    cells = tables.referral_counts(ds, strata=("segment",), **kw)
    agg = referrals.referral_rate_ratio_cells(cells, rows, adjust_for=["segment"])
    per = referrals.referral_rate_ratio(rows.to_pandas(), adjust_for=["segment"], period="period")
    np.testing.assert_allclose(agg.params.to_numpy(), per.params.to_numpy(), atol=1e-9)
    np.testing.assert_allclose(np.sqrt(np.diag(agg.cov)), np.sqrt(np.diag(per.cov)), rtol=1e-8)
    assert agg.dispersion == pytest.approx(per.dispersion, rel=1e-9)
    pd.testing.assert_frame_equal(agg.rates, per.rates.loc[agg.rates.index], check_dtype=False)
    assert agg.method == "cells" and agg.n_users == per.n_users and agg.n_rows == per.n_rows and agg.n_cells < agg.n_rows / 100
    assert "one engine pass" in agg._repr_html_()
    with pytest.raises(ParameterError, match="do not come from the same table arguments"):
        referrals.referral_rate_ratio_cells(cells, tables.referrals(ds, exposure="feedback", churn="cancel", period_days=14),
                                            adjust_for=["segment"])
    with pytest.raises(ModelError, match="column.*'period'"):
        referrals.referral_rate_ratio_cells(tables.referral_counts(ds, exposure="feedback", churn="cancel", period_days=None), rows)


def test_figures_of_the_aggregated_results(landmark_pair):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from workbench.plots import survival as plots

    bad = sv.proportional_hazards_check(sv.discrete_time_hazard(_synthetic_risk_sets([0.6] * 10 + [1.0] * 10), link="poisson"))
    fig = plots.plot_ph_check(bad, bin_days=7)
    ax = fig.axes[0]
    assert "p < 0.0001" in plot_title(ax) and ax.get_xlabel() == "days since signup"
    hr_points = ax.containers[0].lines[0].get_ydata()
    np.testing.assert_allclose(hr_points, bad.by_tenure["hazard_ratio"])
    _, agg, _, _ = landmark_pair
    fig2 = plots.plot_overlap(agg)
    p = agg.propensity[(agg.propensity.landmark == agg.landmarks[0]) & (agg.propensity.exposed == 1)]
    want, _ = np.histogram(p["propensity"], bins=np.linspace(0, 1, 41), weights=p["users"], density=True)
    got = [b.get_height() for b in fig2.axes[0].patches[:40]]  # the co-created histogram: patterns weighed by their users
    np.testing.assert_allclose(got, want, rtol=1e-9)
    fig3 = plots.plot_weighted_curves(agg)
    assert len(fig3.axes[0].get_lines()) == 2 and "weighted HR" in plot_title(fig3.axes[0])
    plt.close("all")
