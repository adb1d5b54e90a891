"""Survival models: the Cox fit against statsmodels PHReg, Kaplan-Meier and
log-rank against SurvfuncRight / survdiff, planted truth on direct draws and
on the simulator, the discrete-time model against the Cox model, the PH check,
dose-response, landmark data, and clear errors on bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.duration.hazard_regression import PHReg
from statsmodels.duration.survfunc import SurvfuncRight, survdiff

from workbench.errors import ModelError, ParameterError
from workbench.models import survival as sv

HR_EXPOSED = 0.6
HR_MAINSTREAM = 2.0


# ----------------------------------------------------------------- direct draws
def draw_episodes(n: int, seed: int, *, hr: float = HR_EXPOSED, hr_seg: float = HR_MAINSTREAM, whole_days: bool = False,
                  hr_late: float | None = None) -> pd.DataFrame:
    """Counting-process episodes with planted truth. Enthusiasts (30%) co-create
    sooner (confounding) and churn at half the mainstream hazard; from the
    first co-creation on the hazard is multiplied by ``hr`` (by ``hr_late``
    after day 120 if given: non-proportional hazards). Follow-up is censored
    uniformly between 30 and 365 days. ``whole_days`` rounds churn and
    censoring times up to whole days (tied event times) while co-creation
    times stay fractional."""
    rng = np.random.default_rng(seed)
    seg = np.where(rng.random(n) < 0.3, "enthusiast", "mainstream")
    base = np.where(seg == "mainstream", hr_seg, 1.0) / 100
    t_exp = rng.exponential(np.where(seg == "enthusiast", 30.0, 200.0))
    cens = rng.uniform(30, 365, n)
    e1 = rng.exponential(1 / base)
    if hr_late is None:
        after = rng.exponential(1 / (base * hr))
        churn = np.where(e1 < t_exp, e1, t_exp + after)
    else:  # piecewise: hr before day 120, hr_late after (exposed only)
        churn = np.empty(n)
        for i in range(n):
            if e1[i] < t_exp[i]:
                churn[i] = e1[i]
                continue
            t, h = t_exp[i], base[i] * hr
            gap = rng.exponential(1 / h)
            if t < 120 and t + gap > 120:
                t, gap = 120.0, rng.exponential(1 / (base[i] * hr_late))
            elif t >= 120:
                gap = rng.exponential(1 / (base[i] * hr_late))
            churn[i] = t + gap
    end = np.minimum(churn, cens)
    died = (churn <= cens).astype(int)
    if whole_days:
        end = np.ceil(end)
    switch = t_exp < end
    ids = np.array([f"u{i:06d}" for i in range(n)])
    first = pd.DataFrame({"user_id": ids, "start": 0.0, "stop": np.where(switch, t_exp, end), "exposed": 0, "dose": 0,
                          "churned": np.where(switch, 0, died), "segment": seg})
    second = pd.DataFrame({"user_id": ids[switch], "start": t_exp[switch], "stop": end[switch], "exposed": 1, "dose": 1,
                           "churned": died[switch], "segment": seg[switch]})
    return pd.concat([first, second], ignore_index=True).sort_values(["user_id", "start"], ignore_index=True)


@pytest.fixture(scope="module")
def episodes():
    return draw_episodes(4000, seed=1, whole_days=True)


def _phreg(ep, columns, strata=None, ties="breslow"):
    X = np.column_stack([(ep[c] == "mainstream").astype(float) if c == "segment" else ep[c].astype(float) for c in columns])
    return PHReg(ep["stop"].to_numpy(), X, status=ep["churned"].to_numpy(), entry=ep["start"].to_numpy(), ties=ties,
                 strata=None if strata is None else ep[strata].to_numpy())


def _phreg_robust_cov(model, params, groups):
    """PHReg's sandwich, with its NaN score residuals (rows it drops as never at
    risk at an event time) set to 0, their true value."""
    sr = np.nan_to_num(model.score_residuals(params))
    g = pd.DataFrame(sr).groupby(np.asarray(groups)).sum().to_numpy()
    h = np.linalg.inv(model.hessian(params))
    return h @ (g.T @ g) @ h


# ----------------------------------------------------------------- reference: PHReg
def test_cox_matches_phreg_with_tied_event_times(episodes):
    ep = episodes
    assert ep.loc[ep.churned == 1, "stop"].duplicated().sum() > 1000  # many tied churn times: Breslow matters
    res = sv.cox_time_varying(ep, adjust_for=["segment"], ties="breslow")
    model = _phreg(ep, ["exposed", "segment"])
    ref = model.fit()
    np.testing.assert_allclose(res.params.to_numpy(), ref.params, atol=1e-6)
    np.testing.assert_allclose(res.cov_model.to_numpy(), ref.cov_params(), atol=1e-8)
    assert res.loglike == pytest.approx(ref.llf, abs=1e-6)
    np.testing.assert_allclose(res.cov.to_numpy(), _phreg_robust_cov(model, ref.params, ep["user_id"]), atol=1e-8)
    # Schoenfeld residuals, row by row for the churn rows
    sch = ref.schoenfeld_residuals[ep["churned"].to_numpy() == 1]
    np.testing.assert_allclose(res.schoenfeld[list(res.params.index)].to_numpy(), sch, atol=1e-8)
    assert list(res.params.index) == ["exposed", "segment[mainstream]"]


def test_cox_efron_matches_phreg_efron_with_tied_event_times(episodes):
    """Efron ties (the default) against PHReg(ties="efron"): coefficients,
    model-based covariance and log partial likelihood; Breslow differs by far more."""
    res = sv.cox_time_varying(episodes, adjust_for=["segment"])
    assert res.ties == "efron"
    ref = _phreg(episodes, ["exposed", "segment"], ties="efron").fit()
    np.testing.assert_allclose(res.params.to_numpy(), ref.params, atol=1e-8)
    np.testing.assert_allclose(res.cov_model.to_numpy(), ref.cov_params(), atol=1e-10)
    assert res.loglike == pytest.approx(ref.llf, abs=1e-7)
    breslow = sv.cox_time_varying(episodes, adjust_for=["segment"], ties="breslow")
    assert np.abs(breslow.params.to_numpy() - ref.params).max() > 1e-3
    strat = sv.cox_time_varying(episodes, strata=["segment"])
    ref_s = _phreg(episodes, ["exposed"], strata="segment", ties="efron").fit()
    np.testing.assert_allclose(strat.params.to_numpy(), ref_s.params, atol=1e-8)
    np.testing.assert_allclose(strat.cov_model.to_numpy(), ref_s.cov_params(), atol=1e-10)


def _cluster_influence(ep, ties, weights):
    """Per user, (derivative of the score with respect to the user's weight) x inverse information,
    from the engine's score residuals."""
    from workbench.models.survival import cox_engine as eng

    w = ep[weights].to_numpy(float)
    X = np.column_stack([ep["exposed"].astype(float), (ep["segment"] == "mainstream").astype(float)])
    st = eng.cox_state(ep["start"].to_numpy(float), ep["stop"].to_numpy(float), ep["churned"].to_numpy(float),
                       np.zeros(len(ep), dtype=np.int64), 1, w, ties)
    cols = [X[:, 0].copy(), X[:, 1].copy()]
    beta, _, _, _, info, _ = eng.newton(cols, st, w, X[st.ev_rows], w[st.ev_rows])
    U, _ = eng.score_residuals(beta, cols, st, w, X[st.ev_rows], w[st.ev_rows])
    return pd.DataFrame(U * w[:, None], index=ep["user_id"].to_numpy()).groupby(level=0).sum() @ np.linalg.inv(info)


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_score_residuals_are_the_derivative_of_the_fit_in_each_users_weight(episodes, ties):
    """The robust sandwich sums, per user, the change of the estimate when that
    user's weight changes (the infinitesimal jackknife). Checked against central
    finite differences of refits, with case weights and tied event times, where
    no published oracle has Efron score residuals."""
    ep = episodes.assign(w=np.random.default_rng(0).uniform(0.5, 2.0, len(episodes)))
    infl = _cluster_influence(ep, ties, "w")
    res = sv.fit_cox(ep, covariates=["exposed", "segment"], weights="w", cluster="user_id", ties=ties)
    np.testing.assert_allclose(res.cov_robust.to_numpy(), infl.T.to_numpy() @ infl.to_numpy(), rtol=1e-10)
    tied = ep.loc[ep.churned == 1].groupby("stop")["user_id"].transform("size") > 2
    users = list(ep.loc[ep.churned == 1].loc[tied, "user_id"].iloc[:3]) + ["u000001"]
    eps = 1e-4
    for u in users:
        fits = []
        for sign in (1, -1):
            e = ep.copy()
            e.loc[e.user_id == u, "w"] *= 1 + sign * eps
            fits.append(sv.fit_cox(e, covariates=["exposed", "segment"], weights="w", ties=ties).params.to_numpy())
        np.testing.assert_allclose((fits[0] - fits[1]) / (2 * eps), infl.loc[u].to_numpy(), rtol=1e-4, atol=1e-8)


def test_cox_robust_se_matches_phreg_groups():
    ep = draw_episodes(1500, seed=5)  # continuous times: PHReg keeps every row, so fit(groups=) is defined
    res = sv.cox_time_varying(ep, adjust_for=["segment"], ties="breslow")
    ref = _phreg(ep, ["exposed", "segment"]).fit(groups=ep["user_id"].to_numpy())
    assert np.isfinite(ref.bse).all()
    np.testing.assert_allclose(res.std_errs.to_numpy(), ref.bse, atol=1e-7)
    assert res.robust and res.n_users == 1500


def test_cox_stratified_matches_phreg(episodes):
    res = sv.cox_time_varying(episodes, strata=["segment"], ties="breslow")
    ref = _phreg(episodes, ["exposed"], strata="segment").fit()
    np.testing.assert_allclose(res.params.to_numpy(), ref.params, atol=1e-6)
    np.testing.assert_allclose(res.cov_model.to_numpy(), ref.cov_params(), atol=1e-8)
    assert res.strata == ("segment",)


def test_case_weights_equal_replicated_rows(episodes):
    """Integer case weights give the fit of the data with rows repeated."""
    ep = episodes.copy()
    users = ep["user_id"].unique()
    rng = np.random.default_rng(3)
    w_user = pd.Series(rng.integers(1, 4, len(users)), index=users)
    ep["w"] = ep["user_id"].map(w_user).astype(float)
    weighted = sv.fit_cox(ep, covariates=["exposed", "segment"], weights="w", ties="breslow")
    rep = ep.loc[ep.index.repeat(ep["w"].astype(int))]
    ref = _phreg(rep, ["exposed", "segment"]).fit()
    np.testing.assert_allclose(weighted.params.to_numpy(), ref.params, atol=1e-6)
    np.testing.assert_allclose(weighted.cov_model.to_numpy(), ref.cov_params(), atol=1e-8)
    assert weighted.n_events == pytest.approx(rep["churned"].sum())


def test_row_order_does_not_matter(episodes):
    a = sv.cox_time_varying(episodes, adjust_for=["segment"])
    b = sv.cox_time_varying(episodes.sample(frac=1.0, random_state=2), adjust_for=["segment"])
    np.testing.assert_allclose(a.params.to_numpy(), b.params.to_numpy(), atol=1e-10)
    np.testing.assert_allclose(a.cov.to_numpy(), b.cov.to_numpy(), atol=1e-12)


# ----------------------------------------------------------------- planted truth
def test_planted_hazard_ratio_and_immortal_time_bias():
    ep = draw_episodes(20000, seed=7)
    adjusted = sv.cox_time_varying(ep, adjust_for=["segment"])
    crude = sv.cox_time_varying(ep)
    naive = sv.cox_naive_ever(ep, adjust_for=["segment"])
    hr, lo, hi = adjusted.hazard_ratio()
    assert lo < HR_EXPOSED < hi
    assert abs(np.log(hr / HR_EXPOSED)) < 0.08
    assert adjusted.hazard_ratio("segment[mainstream]")[1] < HR_MAINSTREAM < adjusted.hazard_ratio("segment[mainstream]")[2]
    # the naive "ever" comparison is far more protective than the truth, even adjusted for segment
    naive_hr, _, naive_hi = naive.hazard_ratio()
    assert naive_hi < HR_EXPOSED - 0.15
    # confounding alone (time-varying but unadjusted) also exaggerates protection here
    assert crude.hazard_ratio()[2] < lo
    assert naive.exposure == "ever_exposed" and "NAIVE" in naive.label


def test_ever_exposed_table():
    ep = pd.DataFrame({"user_id": ["a", "a", "b", "c", "c"], "start": [0, 5, 0, 0, 2.0], "stop": [5, 9, 7, 2, 4.0],
                       "exposed": [0, 1, 0, 0, 1], "churned": [0, 1, 0, 0, 0], "segment": ["x", "x", "y", "x", "x"]})
    t = sv.ever_exposed_table(ep).set_index("user_id")
    assert t.loc["a", "duration"] == 9 and t.loc["a", "ever_exposed"] == 1 and t.loc["a", "churned"] == 1
    assert t.loc["b", "ever_exposed"] == 0 and t.loc["c", "duration"] == 4 and t.loc["c", "segment"] == "x"


# ----------------------------------------------------------------- Kaplan-Meier, log-rank
def _users(ep):
    return sv.ever_exposed_table(ep)


def test_kaplan_meier_matches_survfuncright(episodes):
    u = _users(episodes)
    km = sv.kaplan_meier(u, group="segment", times=[0, 50, 100, 200])
    for g in ("enthusiast", "mainstream"):
        sel = u["segment"] == g
        ref = SurvfuncRight(u.loc[sel, "duration"], u.loc[sel, "churned"])
        c = km.curves[km.curves["group"] == g].iloc[1:]
        np.testing.assert_allclose(c["time"], ref.surv_times)
        np.testing.assert_allclose(c["survival"], ref.surv_prob, atol=1e-12)
        np.testing.assert_allclose(c["std_err"], ref.surv_prob_se, atol=1e-12, equal_nan=True)
        np.testing.assert_allclose(c["at_risk"], ref.n_risk)
        # number at risk at t: users whose follow-up lasts at least t
        for t in (0, 50, 100, 200):
            assert km.at_risk.loc[g, float(t)] == (u.loc[sel, "duration"] >= t).sum()
        assert km.medians.loc[g, "median"] == pytest.approx(ref.quantile(0.5))
    # bands contain the curve and stay in [0, 1]
    c = km.curves.dropna(subset=["ci_low"])
    assert ((c["ci_low"] <= c["survival"] + 1e-12) & (c["survival"] <= c["ci_high"] + 1e-12)).all()
    assert c["ci_low"].min() >= 0 and c["ci_high"].max() <= 1


def test_loglog_band_formula():
    u = _users(draw_episodes(500, seed=2))
    km = sv.kaplan_meier(u)
    c = km.curves.iloc[1:]
    s, se = c["survival"].to_numpy(), c["std_err"].to_numpy()
    ok = (s > 0) & (s < 1)
    v = se[ok] / (s[ok] * np.log(s[ok]))
    lo = s[ok] ** np.exp(-1.959963984540054 * v)  # S^exp(+-z se/(S log S)): the log-log interval
    np.testing.assert_allclose(c["ci_low"].to_numpy()[ok], lo, rtol=1e-9)


def test_logrank_matches_survdiff(episodes):
    u = _users(episodes)
    res = sv.logrank_test(u, group="ever_exposed")
    chi2, p = survdiff(u["duration"], u["churned"], u["ever_exposed"].astype(str))
    assert res.chi2 == pytest.approx(chi2, rel=1e-12) and res.p_value == pytest.approx(p, abs=1e-300)
    strat = sv.logrank_test(u, group="ever_exposed", strata="segment")
    chi2s, _ = survdiff(u["duration"], u["churned"], u["ever_exposed"].astype(str), strata=u["segment"].to_numpy())
    assert strat.chi2 == pytest.approx(chi2s, rel=1e-12)
    assert strat.chi2 != pytest.approx(res.chi2)
    km = sv.kaplan_meier(u, group="segment")
    assert km.logrank is not None and km.logrank.p_value < 1e-10  # mainstream churns twice as fast


def test_kaplan_meier_frequency_weights_equal_rows():
    u = _users(draw_episodes(800, seed=4))
    u["duration"] = np.ceil(u["duration"])
    agg = u.groupby(["duration", "churned"]).size().rename("n").reset_index()
    a = sv.kaplan_meier(u, times=[0, 100])
    b = sv.kaplan_meier(agg, weights="n", times=[0, 100])
    np.testing.assert_allclose(a.curves["survival"], b.curves["survival"], atol=1e-12)
    np.testing.assert_allclose(a.at_risk.to_numpy(), b.at_risk.to_numpy())
    # Greenwood standard errors and log-log bands do not depend on how the users are
    # compressed (statsmodels' weighted SE, Tsiatis' formula, is larger on these counts)
    for col in ("std_err", "ci_low", "ci_high", "at_risk", "events"):
        np.testing.assert_allclose(a.curves[col], b.curves[col], rtol=1e-10, atol=1e-12, equal_nan=True, err_msg=col)
    assert b.curves["std_err"].iloc[1:].gt(0).all()
    pd.testing.assert_frame_equal(a.medians, b.medians)


def test_km_estimate_median_interval_matches_survfuncright(episodes):
    u = _users(episodes)
    km = sv.km_estimate(u["duration"], u["churned"])
    ref = SurvfuncRight(u["duration"], u["churned"])
    assert km.quantile(0.5) == ref.quantile(0.5)
    assert km.quantile_ci(0.5) == pytest.approx(ref.quantile_ci(0.5))
    s, se = km.at([-1.0, 0.0, ref.surv_times[3], ref.surv_times[3] + 1e-9])
    np.testing.assert_allclose(s, [1.0, 1.0, ref.surv_prob[3], ref.surv_prob[3]])
    np.testing.assert_allclose(se, [0.0, 0.0, ref.surv_prob_se[3], ref.surv_prob_se[3]])


# ----------------------------------------------------------------- PH check
def test_ph_check_quiet_under_ph_and_loud_when_violated():
    ok = sv.cox_time_varying(draw_episodes(6000, seed=8), adjust_for=["segment"])
    bad = sv.cox_time_varying(draw_episodes(6000, seed=8, hr=0.3, hr_late=1.5), adjust_for=["segment"])
    c_ok = sv.proportional_hazards_check(ok)
    c_bad = sv.proportional_hazards_check(bad)
    assert c_ok.tests.loc["exposed", "p_value"] > 0.01
    assert c_bad.tests.loc["exposed", "p_value"] < 1e-6
    assert c_bad.tests.loc["exposed", "rho"] > 0  # the log hazard ratio rises with time
    assert "exposed" in c_bad.violated() and "exposed" not in c_ok.violated()
    assert set(c_ok.tests.index) == {"exposed", "segment[mainstream]", "GLOBAL"}
    # scaled residuals average to about beta (they estimate the log HR over time)
    assert c_ok.residuals["exposed"].mean() == pytest.approx(ok.params["exposed"], abs=0.15)


def test_ph_check_statistic_formula(episodes):
    res = sv.cox_time_varying(episodes, adjust_for=["segment"])
    chk = sv.proportional_hazards_check(res, transform="identity")
    sch = res.schoenfeld
    R = sch[list(res.params.index)].to_numpy()
    D = len(R)
    V = res.cov_model.to_numpy()
    g = sch["time"].to_numpy() - sch["time"].mean()
    k = 0
    stat = (g @ (D * R @ V)[:, k]) ** 2 / (V[k, k] * D * (g @ g))
    assert chk.tests.iloc[k]["chi2"] == pytest.approx(stat, rel=1e-10)


# ----------------------------------------------------------------- landmark data
def test_landmark_data_freezes_status_and_drops_the_departed():
    ep = pd.DataFrame({"user_id": ["a", "a", "b", "c", "c", "d"], "start": [0, 10, 0, 0, 40, 0.0],
                       "stop": [10, 50, 25, 40, 60, 31.0], "exposed": [0, 1, 0, 0, 1, 0], "dose": [0, 1, 0, 0, 1, 0],
                       "churned": [0, 1, 1, 0, 0, 1], "segment": list("xxyxxy")})
    lm = sv.landmark_data(ep, landmarks=[30]).set_index("user_id")
    assert set(lm.index) == {"a", "c", "d"}  # b churned at 25, before the landmark
    assert lm.loc["a", "exposed"] == 1 and lm.loc["c", "exposed"] == 0  # c co-creates only after day 30
    assert lm.loc["a", "duration"] == 20 and lm.loc["c", "duration"] == 30 and lm.loc["d", "duration"] == 1
    assert lm.loc["a", "churned"] == 1 and lm.loc["c", "churned"] == 0
    two = sv.landmark_data(ep, landmarks=[30, 45])
    assert sorted(two.loc[two.landmark == 45, "user_id"]) == ["a", "c"]
    assert two.loc[(two.landmark == 45) & (two.user_id == "c"), "exposed"].item() == 1
    with pytest.raises(ModelError, match="no user is still at risk"):
        sv.landmark_data(ep, landmarks=[500])
    with pytest.raises(ParameterError):
        sv.landmark_data(ep, landmarks=["soon"])


# ----------------------------------------------------------------- bad input
def test_no_exposed_users_is_a_clear_error(episodes):
    ep = episodes[episodes.start == 0].assign(exposed=0)
    with pytest.raises(ModelError, match="no user is ever exposed"):
        sv.cox_time_varying(ep)
    with pytest.raises(ModelError, match="no user is ever exposed"):
        sv.cox_naive_ever(ep)


def test_everyone_exposed_is_a_clear_error(episodes):
    ep = episodes[episodes.start == 0].assign(exposed=1)
    with pytest.raises(ModelError, match="every user is exposed from signup"):
        sv.cox_time_varying(ep)


def test_exposure_that_never_precedes_churn_is_a_clear_error(episodes):
    ep = episodes.copy()
    ep.loc[ep.exposed == 1, "churned"] = 0
    with pytest.raises(ModelError, match="never precedes churn"):
        sv.cox_time_varying(ep)


def test_other_bad_inputs(episodes):
    with pytest.raises(ModelError, match="'churned'"):
        sv.cox_time_varying(episodes.drop(columns="churned"))
    bad = episodes.copy()
    bad.loc[bad.index[:3], "stop"] = bad.loc[bad.index[:3], "start"]
    with pytest.raises(ModelError, match="positive length"):
        sv.cox_time_varying(bad)
    with pytest.raises(ModelError, match="no events .'churned' is 0 in all"):
        sv.fit_cox(episodes.assign(churned=0), covariates=["exposed"])
    with pytest.raises(ParameterError, match="ties must be 'efron' or 'breslow'"):
        sv.cox_time_varying(episodes, ties="exact")
    with pytest.raises(ParameterError, match="se must be 'robust' or 'model'"):
        sv.cox_time_varying(episodes, se="sandwich")
    with pytest.raises(ModelError, match="cluster column 'id' is not in the table.*cluster=None"):
        sv.fit_cox(episodes, covariates=["exposed"], cluster="id")
    miss = episodes.copy()
    miss.loc[miss.index[:5], "segment"] = None
    with pytest.raises(ModelError, match="'segment' has 5 missing"):
        sv.cox_time_varying(miss, adjust_for=["segment"])
    with pytest.raises(ModelError, match="single value"):
        sv.cox_time_varying(episodes.assign(segment="x"), adjust_for=["segment"])
    with pytest.raises(ModelError, match=r"column\(s\) .plan. missing"):
        sv.cox_time_varying(episodes, adjust_for=["plan"])
    with pytest.raises(ParameterError):
        sv.cox_time_varying(episodes, adjust_for=[3])


# ----------------------------------------------------------------- results
def test_result_interfaces(episodes):
    res = sv.cox_time_varying(episodes, adjust_for=["segment"])
    s = res.summary()
    assert list(s.columns[:4]) == ["estimate", "std_err", "ci_low", "ci_high"]
    assert s.loc["exposed", "hazard_ratio"] == pytest.approx(np.exp(res.params["exposed"]))
    m = res.to_metrics("retention.cox")
    assert m["retention.cox.hr.exposed"] == pytest.approx(res.hazard_ratio()[0])
    assert m["retention.cox.hr.segment_mainstream_ci_low"] < m["retention.cox.hr.segment_mainstream"]
    assert "time-varying" in res._repr_html_()
    km = sv.kaplan_meier(_users(episodes), group="segment", times=[0, 100])
    assert "km.survival_100d_mainstream" in km.to_metrics() and "km.logrank_p_value" in km.to_metrics()


# ----------------------------------------------------------------- on the simulator's world, through the tables
@pytest.fixture(scope="module")
def sim_tables(tmp_path_factory):
    """The sample dataset (as `make run` builds it: 20,000 users, seed 1; planted
    HR 0.6 for adoption, enthusiasts churn at half the hazard and adopt more;
    60% of churners cancel, the others go silent) through workbench.tables
    under the default churn rule (a cancel or 30 days of inactivity)."""
    from workbench import tables
    from workbench.data import load_dataset
    from workbench.data.simulate import simulate

    out = tmp_path_factory.mktemp("sim") / "retention"
    sim = simulate(users=20000, seed=1, out=out, progress=False)
    ds = load_dataset(out)
    ep = tables.episodes(ds, exposure="adopted").to_pandas()
    rs = tables.risk_sets(ds, exposure="adopted", bin_days=7, strata=("segment",)).to_pandas()
    return sim.truth, ep, rs


def test_simulator_truth_recovered_and_naive_biased(sim_tables):
    truth, ep, _ = sim_tables
    planted = truth["churn"]["hazard_ratio_adopted"]
    adj = sv.cox_time_varying(ep, adjust_for=["segment"])
    hr, lo, hi = adj.hazard_ratio()
    assert lo < planted < hi
    seg_hr = adj.hazard_ratio("segment[mainstream]")
    assert seg_hr[1] < 1 / truth["churn"]["segment_hazard_ratio"] < seg_hr[2]  # truth is enthusiast / mainstream
    naive = sv.cox_naive_ever(ep)
    assert naive.hazard_ratio()[2] < planted - 0.15  # immortal time: looks far more protective


def test_discrete_time_agrees_with_cox(sim_tables):
    _, ep, rs = sim_tables
    cox = sv.cox_time_varying(ep, adjust_for=["segment"]).hazard_ratio()[0]
    cl = sv.discrete_time_hazard(rs, adjust_for=["segment"])
    pe = sv.discrete_time_hazard(rs, adjust_for=["segment"], link="poisson")
    assert abs(cl.hazard_ratio()[0] / cox - 1) < 0.02
    assert abs(pe.hazard_ratio()[0] / cox - 1) < 0.01
    assert cl.n_cells == len(rs) - (rs.groupby("tenure_bin")["events"].transform("sum") == 0).sum()
    assert cl.hazard_ratio()[1] < cl.hazard_ratio()[0] < cl.hazard_ratio()[2]
    assert set(cl.to_metrics()) >= {"discrete_hazard.hr.exposed", "discrete_hazard.hr.exposed_ci_low"}
    # a thousand times the users with the same hazards: same estimate, sqrt(1000) narrower (and it converges)
    big = sv.discrete_time_hazard(rs.assign(at_risk=rs.at_risk * 1000, events=rs.events * 1000), adjust_for=["segment"])
    assert big.params["exposed"] == pytest.approx(cl.params["exposed"], abs=1e-6)
    assert big.summary().loc["exposed", "std_err"] == pytest.approx(cl.summary().loc["exposed", "std_err"] / np.sqrt(1000), rel=1e-3)
    assert cl.fitted["events"].sum() == cl.n_events


def test_discrete_time_errors(sim_tables):
    _, _, rs = sim_tables
    with pytest.raises(ModelError, match="never precedes churn"):
        sv.discrete_time_hazard(rs.assign(events=np.where(rs.exposed == 1, 0, rs.events)))
    with pytest.raises(ModelError, match="nobody is ever at risk while exposed"):
        sv.discrete_time_hazard(rs[rs.exposed == 0])
    with pytest.raises(ParameterError, match="link"):
        sv.discrete_time_hazard(rs, link="logit")


def test_dose_response_step_effect(sim_tables):
    """The simulator's effect is a step at the first adopted idea: every dose
    level is about 0.6 against none."""
    truth, ep, _ = sim_tables
    dr = sv.dose_response(ep, adjust_for=["segment"], max_dose=3)
    planted = truth["churn"]["hazard_ratio_adopted"]
    assert list(dr.levels.index) == ["dose=1", "dose=2", "dose>=3"]
    for _, row in dr.levels.iterrows():
        assert row["hr_ci_low"] < planted < row["hr_ci_high"] or abs(row["hazard_ratio"] / planted - 1) < 0.1
    assert dr.exposure_by_level["users"].sum() >= len(ep["user_id"].unique())
    with pytest.raises(ModelError, match="no user had an idea adopted"):
        sv.dose_response(ep.assign(dose=0))


# ----------------------------------------------------------------- coverage
def test_adjusted_hr_interval_coverage_direct_draws():
    """95% intervals of the adjusted time-varying HR cover the planted 0.6 in
    90-98% of 200 direct draws (the simulator-based run with ITT coverage is
    benchmarks/coverage_retention.py)."""
    hits = 0
    n = 200
    for seed in range(n):
        res = sv.cox_time_varying(draw_episodes(1500, seed=1000 + seed), adjust_for=["segment"], keep_residuals=False)
        _, lo, hi = res.hazard_ratio()
        hits += lo < HR_EXPOSED < hi
    assert 0.90 <= hits / n <= 0.98


# ----------------------------------------------------------------- the report
REQUIRED_METRICS = [
    "retention.hr.naive_ever", "retention.hr.time_varying", "retention.hr.time_varying_ci_low", "retention.hr.time_varying_ci_high",
    "retention.hr.adjusted", "retention.hr.adjusted_ci_low", "retention.hr.adjusted_ci_high", "retention.hr.weighted",
    "retention.hr.weighted_ci_low", "retention.hr.weighted_ci_high", "retention.evalue", "referrals.rate_ratio",
    "referrals.rate_ratio_ci_low", "referrals.rate_ratio_ci_high", "experiment.itt", "experiment.itt_ci_low", "experiment.itt_ci_high",
    "experiment.itt_p_value", "experiment.cace", "experiment.cace_ci_low", "experiment.cace_ci_high", "experiment.srm_p_value",
    "experiment.mde",
]


def _notes(run) -> str:
    """The text the report's sections showed (their HTML, unescaped)."""
    import html

    import nbformat

    nb = nbformat.read(next(run.run_dir.glob("*.ipynb")), as_version=4)
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            if o.get("output_type") in ("display_data", "execute_result") and "text/html" in o.get("data", {}):
                out.append(html.unescape(o["data"]["text/html"]))
    return "\n".join(out)


def test_report_notebook_is_stored_clean_with_its_parameters(repo_root):
    import nbformat

    from workbench.reports import declared_parameters

    path = repo_root / "notebooks" / "cocreation_retention.ipynb"
    nb = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")
    assert sum("parameters" in c.metadata.get("tags", []) for c in nb.cells) == 1
    params = {p.name: p for p in declared_parameters(path)}
    for name in ("dataset", "exposure", "churn_after_days", "adjust_for", "landmarks", "experiment", "retention_horizon_days"):
        assert name in params
    assert params["dataset"].default == "sample" and params["adjust_for"].default == ["segment"]


def test_report_on_simulated_data(report_runs, tiny_dataset):
    run = report_runs("cocreation_retention", dataset=str(tiny_dataset))
    assert run.status == "succeeded", run.error
    import json

    m = json.loads((run.run_dir / "metrics.json").read_text())
    missing = [k for k in REQUIRED_METRICS if k not in m]
    # the simulated users' age has missing values (as real exports do): the weighted landmark
    # analysis, which models the propensity on every numeric attribute, is skipped and says why
    weighted = {"retention.hr.weighted", "retention.hr.weighted_ci_low", "retention.hr.weighted_ci_high", "retention.evalue"}
    assert not set(missing) - weighted
    if missing:
        assert "column 'age' has" in _notes(run).replace("\\", "")
    assert "retention.hr.naive_ever_ci_low" not in m
    assert m["retention.hr.naive_ever"] < m["retention.hr.adjusted"]  # immortal time: the naive one looks more protective
    assert m["retention.hr.adjusted_ci_low"] < 0.6 < m["retention.hr.adjusted_ci_high"]  # the planted truth
    assert abs(m["retention.discrete_vs_cox_pct"]) < 5
    text = _notes(run)
    notes = [line for line in text.splitlines() if "Note.</strong>" in line]
    assert "Finding.</strong>" in text and all("age" in n for n in notes), notes  # only age's missing values may be noted
    assert f"{m['retention.hr.adjusted']:.2f}" in text  # prose numbers come from the results


def test_report_without_cocreation_or_assignments_notes_it(report_runs):
    run = report_runs("cocreation_retention", dataset="cdnow-sample")
    assert run.status == "succeeded", run.error
    import json

    m = json.loads((run.run_dir / "metrics.json").read_text())
    assert "retention.users" in m and "retention.hr.adjusted" not in m and "experiment.itt" not in m
    text = _notes(run)
    assert "No co-creation analysis on this dataset" in text
    assert "No experiment analysis: no assignments table" in text


def test_report_with_unknown_experiment_notes_it(report_runs, tiny_dataset):
    run = report_runs("cocreation_retention", dataset=str(tiny_dataset), experiment="no_such_test", exposure="feedback")
    assert run.status == "succeeded", run.error
    import json

    m = json.loads((run.run_dir / "metrics.json").read_text())
    assert "experiment.itt" not in m and "experiment.mde" in m and "retention.hr.adjusted" in m
    assert "does not exist in this dataset" in _notes(run) and "cocreation_invite" in _notes(run)


# ----------------------------------------------------------------- figures
def test_figures_show_what_the_results_hold(episodes):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from workbench.models import causal
    from workbench.plots import survival as plots

    km = sv.kaplan_meier(_users(episodes), group="segment", times=[0, 100, 200])
    fig = plots.plot_survival_curves(km)
    texts = {t.get_text() for ax in fig.axes for t in ax.texts}
    assert f"{km.at_risk.loc['mainstream', 100.0]:,.0f}" in texts and "number at risk" in texts
    assert len(fig.axes) == 2 and len(fig.axes[0].get_lines()) == 2
    res = sv.cox_time_varying(episodes, adjust_for=["segment"])
    naive = sv.cox_naive_ever(episodes)
    cmp = causal.compare_hazard_ratios(naive_ever=naive, adjusted=res)
    fig2 = plots.plot_hazard_ratios(cmp, truth=0.6)
    labels = [t.get_text() for t in fig2.axes[0].get_yticklabels()]
    assert any("NAIVE" in lab for lab in labels)
    fig3 = plots.plot_schoenfeld(sv.proportional_hazards_check(res))
    assert len(fig3.axes) == 2
    plt.close("all")
