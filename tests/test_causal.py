"""Causal adjustment: landmark analysis with inverse probability weighting
against an estimand computed from both potential outcomes of every user, the
E-value against its published formula, and the comparison table."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from workbench.errors import ModelError, ParameterError
from workbench.models import causal as ca
from workbench.models import survival as sv

HR = 0.6


def draw_landmark(n: int, seed: int, *, hr: float = HR, p_enthusiast_exposed: float = 0.6, p_mainstream_exposed: float = 0.15):
    """Users at a landmark: enthusiasts (30%) are more often exposed and churn at
    half the hazard (confounding); exposure multiplies the hazard by ``hr``.
    Returns the observed landmark data and the potential-outcome data (each user
    twice, exposed and not, with common random numbers)."""
    rng = np.random.default_rng(seed)
    enth = rng.random(n) < 0.3
    seg = np.where(enth, "enthusiast", "mainstream")
    prior = rng.poisson(np.where(enth, 12, 4))
    base = np.where(enth, 1.0, 2.0) / 150
    exposed = (rng.random(n) < np.where(enth, p_enthusiast_exposed, p_mainstream_exposed)).astype(int)
    e = rng.exponential(1.0, n)
    cens = rng.uniform(50, 400, n)
    t0, t1 = e / base, e / (base * hr)
    ids = np.array([f"u{i}" for i in range(n)])

    def frame(t, x):
        return pd.DataFrame({"user_id": ids, "landmark": 30.0, "exposed": x, "duration": np.minimum(t, cens),
                             "churned": (t <= cens).astype(int), "segment": seg, "prior_activity": prior})

    observed = frame(np.where(exposed == 1, t1, t0), exposed)
    both = pd.concat([frame(t1, np.ones(n, dtype=int)), frame(t0, np.zeros(n, dtype=int))], ignore_index=True)
    return observed, both


def test_ipw_recovers_the_marginal_effect_that_confounding_hides():
    obs, both = draw_landmark(30000, seed=1)
    res = ca.landmark_ipw(obs, covariates=["segment", "prior_activity"])
    # the estimand: the marginal hazard ratio had everyone been exposed vs no one
    target = sv.fit_cox(both, covariates=["exposed"], start=None, stop="duration", event="churned").hazard_ratio()[0]
    hw, lw, uw = res.hazard_ratio("weighted")
    hu, lu, uu = res.hazard_ratio("unweighted")
    assert lw < target < uw
    assert abs(np.log(hw / target)) < 0.05
    assert uu < target - 0.05  # unweighted: exposed are mostly enthusiasts, so it looks far more protective
    # balance: large differences before weighting, none after
    b = res.balance.xs(30.0, level="landmark")
    assert b.loc["segment[mainstream]", "smd_unweighted"] < -0.5
    assert (b["smd_weighted"].abs() < 0.02).all()
    # stabilized weights average to one within each group
    p = res.propensity
    for level in (0, 1):
        assert p.loc[p.exposed == level, "ipw"].sum() == pytest.approx((p.exposed == level).sum(), rel=0.03)
    ov = res.overlap.xs(30.0, level="landmark")
    assert ov.loc["co-created", "users"] == obs["exposed"].sum()
    assert 0 < ov.loc["co-created", "ess_weighted"] <= ov.loc["co-created", "users"]


def test_ipw_with_several_landmarks_pools_by_stratum():
    a, _ = draw_landmark(6000, seed=2)
    b, _ = draw_landmark(6000, seed=3)
    b["landmark"] = 90.0
    both = pd.concat([a, b], ignore_index=True)
    res = ca.landmark_ipw(both, covariates=["segment"])
    assert list(res.estimates.index) == [30.0, 90.0, "pooled"]
    assert res.weighted.strata == ("landmark",)
    pooled = res.hazard_ratio("weighted")
    singles = [res.hazard_ratio("weighted", d)[0] for d in (30, 90)]
    assert min(singles) - 0.02 < pooled[0] < max(singles) + 0.02
    assert res.estimates.loc["pooled", "rows"] == 12000
    m = res.to_metrics("retention.landmark")
    assert m["retention.landmark.pooled.hr_weighted"] == pytest.approx(pooled[0])
    assert "retention.landmark.day90.hr_unweighted_ci_low" in m
    assert res.landmarks == (30.0, 90.0)


def test_ipw_on_landmark_data_from_episodes():
    from test_survival import draw_episodes

    ep = draw_episodes(8000, seed=9)
    lm = sv.landmark_data(ep, landmarks=[30, 90])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ca.OverlapWarning)  # by day 90 most enthusiasts have co-created
        res = ca.landmark_ipw(lm, covariates=["segment"])
    hr, lo, hi = res.hazard_ratio("weighted")
    # frozen at the landmark, later co-creators sit in the comparison group: diluted toward 1, yet protective
    assert HR - 0.05 < hr < 1 and hi < 1
    assert res.evalue.e_value > 1


def test_overlap_warning_and_trimming():
    obs, _ = draw_landmark(5000, seed=4, p_enthusiast_exposed=0.995, p_mainstream_exposed=0.01)
    with pytest.warns(ca.OverlapWarning, match="propensity below 0.05 or above 0.95"):
        res = ca.landmark_ipw(obs, covariates=["segment"])
    assert res.overlap["share_ps_outside_05_95"].max() > 0.9
    obs2, _ = draw_landmark(5000, seed=6, p_enthusiast_exposed=0.9, p_mainstream_exposed=0.03)
    trimmed = ca.landmark_ipw(obs2, covariates=["segment"], trim=0.05)  # drops mainstream users (propensity ~0.03)
    assert trimmed.overlap["trimmed"].sum() == (obs2["segment"] == "mainstream").sum()
    assert trimmed.estimates.loc["pooled", "users"] == (obs2["segment"] == "enthusiast").sum()
    with pytest.raises(ParameterError, match="trim"):
        ca.landmark_ipw(obs, covariates=["segment"], trim=0.6)


def test_landmark_errors():
    obs, _ = draw_landmark(2000, seed=5)
    with pytest.raises(ModelError, match="nobody still at risk had co-created"):
        ca.landmark_ipw(obs.assign(exposed=0), covariates=["segment"])
    with pytest.raises(ModelError, match="everybody still at risk had co-created"):
        ca.landmark_ipw(obs.assign(exposed=1), covariates=["segment"])
    with pytest.raises(ModelError, match="none of the co-creators churned"):
        ca.landmark_ipw(obs.assign(churned=np.where(obs.exposed == 1, 0, obs.churned)), covariates=["segment"])
    with pytest.raises(ParameterError, match="covariates"):
        ca.landmark_ipw(obs, covariates=[])
    with pytest.raises(ModelError, match="'plan'"):
        ca.landmark_ipw(obs, covariates=["plan"])


def test_propensity_separation_is_a_clear_error():
    # quasi-complete: every enthusiast co-created, so their propensity is 1 and the
    # fit would hand the others weights of ~1e12
    obs, _ = draw_landmark(3000, seed=7, p_enthusiast_exposed=1.0)
    with pytest.raises(ModelError, match=r"separates co-creators from others.*segment\[mainstream\] = 0 \(all of"):
        ca.landmark_ipw(obs, covariates=["segment"])
    # complete: prior activity decides co-creation
    obs2, _ = draw_landmark(3000, seed=8)
    obs2["exposed"] = (obs2["prior_activity"] > 6).astype(int)
    with pytest.raises(ModelError, match=r"separates co-creators from others.*prior_activity.*positivity"):
        ca.landmark_ipw(obs2, covariates=["prior_activity"])


def test_propensity_non_convergence_is_a_clear_error(monkeypatch):
    import statsmodels.api as sm

    obs, _ = draw_landmark(2000, seed=9)
    fit = sm.GLM.fit

    def unconverged(self, *a, **k):
        res = fit(self, *a, **k)
        res.converged = False
        return res

    monkeypatch.setattr(sm.GLM, "fit", unconverged)
    with pytest.raises(ModelError, match=r"propensity model \(logistic regression of 'exposed' on segment\) did not converge"):
        ca.landmark_ipw(obs, covariates=["segment"])


# ----------------------------------------------------------------- E-value
def test_evalue_rare_outcome_published_formula():
    # VanderWeele & Ding (2017): RR = 3.9 gives E = 3.9 + sqrt(3.9 * 2.9) = 7.26
    ev = ca.e_value(3.9, ci_low=1.8, ci_high=8.7, rare_outcome=True)
    assert ev.e_value == pytest.approx(7.26, abs=0.005)
    assert ev.e_value_ci == pytest.approx(1.8 + np.sqrt(1.8 * 0.8))
    # protective: invert
    ev = ca.e_value(0.5, ci_low=0.4, ci_high=0.7, rare_outcome=True)
    assert ev.e_value == pytest.approx(2 + np.sqrt(2))
    assert ev.e_value_ci == pytest.approx(1 / 0.7 + np.sqrt(1 / 0.7 * (1 / 0.7 - 1)))


def test_evalue_common_outcome_and_null_interval():
    hr = 0.67
    rr = (1 - 0.5 ** np.sqrt(hr)) / (1 - 0.5 ** np.sqrt(1 / hr))
    ev = ca.e_value(hr, ci_low=0.6, ci_high=0.75, outcome_share=0.6)
    assert not ev.rare_outcome and ev.risk_ratio == pytest.approx(rr)
    assert ev.e_value == pytest.approx(1 / rr + np.sqrt(1 / rr * (1 / rr - 1)))
    assert ev.e_value < ca.e_value(hr, rare_outcome=True).e_value  # the transformation moves RR toward 1
    assert ca.e_value(0.9, ci_low=0.7, ci_high=1.1, rare_outcome=False).e_value_ci == 1.0
    assert "risk ratio of at least" in ev.sentence()
    with pytest.raises(ParameterError, match="rare"):
        ca.e_value(0.7)
    with pytest.raises(ParameterError, match="positive"):
        ca.e_value(-1.0, rare_outcome=True)


# ----------------------------------------------------------------- comparison table
def test_comparison_table_labels_the_naive_estimate():
    from test_survival import draw_episodes

    ep = draw_episodes(3000, seed=11)
    naive = sv.cox_naive_ever(ep)
    adj = sv.cox_time_varying(ep, adjust_for=["segment"])
    cmp = ca.compare_hazard_ratios(naive_ever=naive, adjusted=adj, weighted=(0.7, 0.6, 0.8), landmark=None)
    assert list(cmp.table.index) == ["naive_ever", "adjusted", "weighted"]
    assert "NAIVE" in cmp.table.loc["naive_ever", "what it answers"]
    m = cmp.to_metrics()
    assert m["retention.hr.naive_ever"] == pytest.approx(naive.hazard_ratio()[0])
    assert "retention.hr.naive_ever_ci_low" not in m  # the naive one is shown without an interval in metrics
    assert m["retention.hr.adjusted_ci_high"] == pytest.approx(adj.hazard_ratio()[2])
    assert m["retention.hr.weighted"] == 0.7
    with pytest.raises(ModelError):
        ca.compare_hazard_ratios(naive_ever=None)
