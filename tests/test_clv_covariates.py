"""Covariates in BG/NBD, MBG/NBD and Pareto/NBD (Fader and Hardie 2007): planted
effects recovered inside their intervals, the likelihood-ratio test on both
sides, the fit on compressed patterns per level equal to the per-customer fit,
analytic gradients, the engine's covariate columns by hand, and bad input."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from statsmodels.tools import numdiff

from workbench.data import load_dataset
from workbench.data.simulator.draws import simulate_bgnbd_covariate_summary, simulate_pareto_nbd_covariate_summary
from workbench.errors import DataError, ModelError, ParameterError
from workbench.models.clv import BGNBDResult, fit_bgnbd, fit_mbgnbd, fit_pareto_nbd, rfm_arrays
from workbench.models.clv.counting import group_params
from workbench.tables import repeat_summary, repeat_summary_compressed

from conftest import plot_title
from test_tables import random_tables

BG = dict(r=0.25, alpha=4.0, a=0.8, b=2.5)
PN = dict(r=0.55, alpha=10.5, s=0.6, beta=11.5)


def _days(rng, n):
    """Observation lengths in whole days (first purchases over 12 weeks, calibration 39 weeks), as the
    engine gives them, so customers share patterns."""
    return (273 - rng.integers(0, 84, n)) / 7.0


def _whole_days(s):
    s["recency"] = np.floor(s["recency"].to_numpy() * 7.0) / 7.0
    return s


@pytest.fixture(scope="module")
def planted_bg():
    """The effect the simulator plants for enthusiasts: purchase rate x1.5, b x2, a unchanged."""
    rng = np.random.default_rng(31)
    s = _whole_days(simulate_bgnbd_covariate_summary(40_000, T=_days(rng, 40_000), seed=rng, share=0.4, g_rate=math.log(1.5), g_b=math.log(2.0), **BG))
    s["segment"] = np.where(s.z == 1, "enthusiast", "mainstream")
    return s


@pytest.fixture(scope="module")
def planted_bg_fit(planted_bg):
    return fit_bgnbd(planted_bg, covariates="segment")


def test_bgnbd_recovers_planted_effects_inside_their_intervals(planted_bg_fit):
    res = planted_bg_fit
    assert res.covariates.reference == {"segment": "mainstream"}  # the most common level
    truth = {("alpha", "segment=enthusiast"): math.log(1.5), ("a", "segment=enthusiast"): 0.0, ("b", "segment=enthusiast"): math.log(2.0)}
    for key, g in truth.items():
        row = res.coefficients.loc[key]
        assert row.ci_low <= g <= row.ci_high, (key, row.estimate, row.ci_low, row.ci_high)
        assert row.ratio == pytest.approx(math.exp(row.estimate)) and row.ratio_ci_low < math.exp(g) < row.ratio_ci_high
    ratio, lo, hi = res.rate_ratio("segment=enthusiast")
    assert 1.4 < ratio < 1.6 and lo < 1.5 < hi
    for name, value in BG.items():  # the reference level's parameters
        row = res.params.loc[name]
        assert row.ci_low <= value <= row.ci_high, name
    lr = res.lr_test
    assert lr.df == 3 and lr.statistic > 100 and lr.p_value < 1e-20
    m = res.to_metrics()
    assert m["clv.bgnbd.ratio.alpha.segment=enthusiast"] == pytest.approx(ratio)
    assert m["clv.bgnbd.lr_test.df"] == 3
    assert "alpha[segment=enthusiast]" in res.summary().index and "likelihood-ratio" in res._repr_html_()


def test_lr_statistic_equals_the_fit_without_covariates(planted_bg, planted_bg_fit):
    without = fit_bgnbd(planted_bg)
    assert planted_bg_fit.lr_test.loglik_without == pytest.approx(without.loglik, abs=1e-6)
    assert planted_bg_fit.lr_test.statistic == pytest.approx(2 * (planted_bg_fit.loglik - without.loglik), abs=1e-5)


def test_a_covariate_without_an_effect_is_not_significant():
    rng = np.random.default_rng(32)
    s = _whole_days(simulate_bgnbd_covariate_summary(20_000, T=_days(rng, 20_000), seed=rng, share=0.5, **BG))
    res = fit_bgnbd(s, covariates="z")
    assert res.lr_test.p_value > 0.05
    for key in res.coefficients.index:
        row = res.coefficients.loc[key]
        assert row.ci_low <= 0.0 <= row.ci_high, key


def test_pareto_nbd_recovers_planted_effects():
    rng = np.random.default_rng(33)
    s = _whole_days(
        simulate_pareto_nbd_covariate_summary(20_000, T=_days(rng, 20_000), seed=rng, share=0.4, g_rate=math.log(1.5), g_dropout=math.log(0.5), **PN)
    )
    res = fit_pareto_nbd(s, covariates="z")
    for (param, term), g in {("alpha", "z=1"): math.log(1.5), ("beta", "z=1"): math.log(0.5)}.items():
        row = res.coefficients.loc[(param, term)]
        assert row.ci_low <= g <= row.ci_high, (param, row.estimate)
    assert res.lr_test.df == 2 and res.lr_test.p_value < 1e-10


def test_predictions_use_each_levels_parameters(planted_bg, planted_bg_fit):
    res = planted_bg_fit
    P = res.group_params()
    ref = res.covariates.levels.index[res.covariates.levels.segment == "mainstream"][0]
    ent = res.covariates.levels.index[res.covariates.levels.segment == "enthusiast"][0]
    gamma = res.coefficients.estimate
    np.testing.assert_allclose(P[ref], res.values)
    np.testing.assert_allclose(
        P[ent], res.values * np.exp([0.0, -gamma[("alpha", "segment=enthusiast")], gamma[("a", "segment=enthusiast")], gamma[("b", "segment=enthusiast")]])
    )
    rows = planted_bg.head(50)
    pa = res.probability_alive(rows)
    e = res.expected_purchases(rows, t=10.0)
    for i, row in enumerate(rows.itertuples()):
        p = P[ent] if row.segment == "enthusiast" else P[ref]
        assert pa[i] == pytest.approx(BGNBDResult.p_alive(p, row.frequency, row.recency, row.T), rel=1e-12)
        assert e[i] == pytest.approx(BGNBDResult.conditional_expected(p, row.frequency, row.recency, row.T, 10.0), rel=1e-12)
    with pytest.raises(ParameterError, match="not in the data"):
        res.probability_alive(rows.assign(segment="newcomer"))
    with pytest.raises(ParameterError, match="lacks segment"):
        res.probability_alive(rows.drop(columns="segment"))


def test_analytic_gradient_with_covariates_matches_numerical(planted_bg):
    """The chain rule from the level parameters to the effects, checked against numdiff."""
    rfm = rfm_arrays(planted_bg.head(3000), covariates=("segment",))
    theta = np.log([0.3, 3.5, 0.9, 2.0]).tolist() + [0.3, -0.2, 0.5]

    def total(th):
        P = group_params(BGNBDResult, th, rfm.covariates)
        return sum(
            float(np.sum(rfm.n[rfm.g == k] * BGNBDResult.loglik_rows(P[k], BGNBDResult.prepare(rfm.x[rfm.g == k], rfm.tx[rfm.g == k], rfm.T[rfm.g == k]))))
            for k in range(rfm.groups)
        )

    num = numdiff.approx_fprime(np.array(theta), total, centered=True)
    grads = []
    for k in range(rfm.groups):
        P = group_params(BGNBDResult, theta, rfm.covariates)
        sel = rfm.g == k
        _, g_nat = BGNBDResult.loglik_rows(P[k], BGNBDResult.prepare(rfm.x[sel], rfm.tx[sel], rfm.T[sel]), gradient=True)
        g_log = g_nat * P[k]
        z = rfm.covariates.Z[k]
        grads.append(
            np.concatenate([(rfm.n[sel] @ g_log), [-(rfm.n[sel] @ g_log[:, 1]) * z[0], (rfm.n[sel] @ g_log[:, 2]) * z[0], (rfm.n[sel] @ g_log[:, 3]) * z[0]]])
        )
    np.testing.assert_allclose(np.sum(grads, axis=0), num, rtol=1e-6, atol=1e-4)
    # and the objective the fit maximises uses the same gradient (per customer, with the sign flipped)
    obj_grad = counting_gradient(rfm, theta)
    np.testing.assert_allclose(obj_grad * rfm.n.sum(), -num, rtol=1e-6, atol=1e-4)


def counting_gradient(rfm, theta):
    """The gradient of the mean negative log-likelihood that fit_counting builds."""
    from workbench.models.clv import counting
    from workbench.models.mle import Objective

    captured = {}
    real = counting.maximize

    def spy(obj, theta0, names, func, **kw):
        captured["obj"] = obj
        return real(obj, theta0, names, func, **kw)

    counting.maximize = spy
    try:
        counting.fit_counting(BGNBDResult, rfm_frame(rfm), frequency="frequency", recency="recency", T="T", weights="n",
                              covariates=("segment",), reference=None, level=0.95, time_unit=None, func="test")
    finally:
        counting.maximize = real
    obj = captured["obj"]
    assert isinstance(obj, Objective)
    return obj.grad(np.array(theta))


def rfm_frame(rfm):
    levels = rfm.covariates.levels
    return pd.DataFrame({"frequency": rfm.x, "recency": rfm.tx, "T": rfm.T, "n": rfm.n, "segment": levels.segment.to_numpy()[rfm.g]})


def test_mbgnbd_takes_the_same_covariates(planted_bg):
    res = fit_mbgnbd(planted_bg, covariates="segment")
    assert list(res.coefficients.index.get_level_values("parameter")) == ["alpha", "a", "b"]
    ratio, lo, hi = res.rate_ratio("segment=enthusiast")
    assert lo < 1.5 < hi  # the purchase-rate effect does not depend on the drop-out story


# ----------------------------------------------------------------- from the engine
@pytest.fixture(scope="module")
def rnd(tmp_path_factory):
    folder = tmp_path_factory.mktemp("random_cov")
    for name, df in random_tables(n_users=600, seed=11).items():
        df.to_parquet(folder / f"{name}.parquet", index=False)
    return load_dataset(folder)


def test_covariate_columns_by_hand(rnd):
    cal = pd.Timestamp("2024-05-15")
    got = repeat_summary(rnd, time_unit="day", calibration_end=cal, covariates=("segment", "channel", "exposed"), exposure="adopted").to_pandas()
    users = pd.read_parquet(rnd.path / "users.parquet").set_index("user_id")
    events = pd.read_parquet(rnd.path / "events.parquet")
    adopted = events[(events.event_type == "adopted") & (events.event_at.dt.normalize() <= cal)].user_id.unique()
    assert list(got.columns[-3:]) == ["segment", "channel", "exposed"]
    for r in got.itertuples():
        seg = users.loc[r.user_id, "segment"]
        assert pd.isna(r.segment) if pd.isna(seg) else r.segment == seg
        assert r.channel == users.loc[r.user_id, "channel"]
        assert r.exposed == int(r.user_id in adopted), r.user_id
    assert 0 < got.exposed.mean() < 1
    plain = repeat_summary(rnd, time_unit="day", calibration_end=cal).to_pandas()
    pd.testing.assert_frame_equal(got[plain.columns], plain)  # covariates add columns, change nothing else


# On the tiny dataset one level's dropout effect runs far out (log-scale near -13), so the optimiser
# rightly warns that the estimates are imprecise; what matters here is that both inputs give the same fit.
@pytest.mark.filterwarnings("ignore::workbench.models.mle.FitWarning")
def test_compressed_per_level_equals_the_per_customer_fit(tiny_dataset):
    ds = load_dataset(tiny_dataset)
    cal, hold = "2025-01-07", "2025-12-29"
    per = repeat_summary(ds, time_unit="day", calibration_end=cal, holdout_end=hold, covariates=("segment", "exposed")).to_pandas()
    comp = repeat_summary_compressed(ds, time_unit="day", calibration_end=cal, holdout_end=hold, covariates=("segment", "exposed")).to_pandas()
    expect = (per.assign(sq=per.frequency_holdout**2).groupby(["segment", "exposed", "frequency", "recency", "T"])
              .agg(n=("user_id", "size"), frequency_holdout_sum=("frequency_holdout", "sum"), frequency_holdout_sq_sum=("sq", "sum")).reset_index())
    pd.testing.assert_frame_equal(comp, expect, check_dtype=False)
    a = fit_bgnbd(per, covariates=("segment", "exposed"))
    b = fit_bgnbd(comp, covariates=("segment", "exposed"))
    np.testing.assert_allclose(a.theta, b.theta, rtol=1e-6, atol=1e-8)
    assert a.loglik == pytest.approx(b.loglik, abs=1e-6) and a.customers == b.customers == len(per)
    assert b.patterns < len(per)


def test_engine_covariate_arguments_are_checked(rnd):
    with pytest.raises(ParameterError, match="'colour' are neither user attributes"):
        repeat_summary(rnd, covariates=("colour",))
    with pytest.raises(ParameterError, match="exposure="):
        repeat_summary_compressed(rnd, covariates=("exposed",), exposure="purchase")
    with pytest.raises(ParameterError, match="twice"):
        repeat_summary(rnd, covariates=("segment", "segment"))


# ----------------------------------------------------------------- bad input
def _two_levels(no_repeat_level: bool):
    rng = np.random.default_rng(5)
    s = _whole_days(simulate_bgnbd_covariate_summary(3000, T=_days(rng, 3000), seed=rng, share=0.3, **BG))
    s["channel"] = np.where(s.z == 1, "ads", "organic")
    if no_repeat_level:  # the ads customers never bought again
        s.loc[s.channel == "ads", ["frequency", "recency"]] = [0, 0.0]
    return s


def test_a_level_without_repeat_buyers_is_a_clear_model_error():
    s = _two_levels(no_repeat_level=True)
    for fit in (fit_bgnbd, fit_pareto_nbd, fit_mbgnbd):
        with pytest.raises(ModelError, match=r"covariate 'channel' level 'ads' has no repeat buyers \(its 9\d\d customers.*Merge it"):
            fit(s, covariates="channel")
    fit_bgnbd(_two_levels(no_repeat_level=False), covariates="channel")  # the same data with repeat buyers fits


def test_covariate_input_errors():
    s = _two_levels(no_repeat_level=False)
    with pytest.raises(ModelError, match="single level"):
        fit_bgnbd(s.assign(channel="ads"), covariates="channel")
    with pytest.raises(DataError, match="must not be missing"):
        fit_bgnbd(s.assign(channel=s.channel.where(s.index % 7 != 0)), covariates="channel")
    with pytest.raises(ParameterError, match="not columns of the summary"):
        fit_bgnbd(s, covariates="segment")
    with pytest.raises(ParameterError, match="reference level 'tv'"):
        fit_bgnbd(s, covariates="channel", reference={"channel": "tv"})
    res = fit_bgnbd(s, covariates="channel", reference={"channel": "ads"})
    assert res.covariates.terms == ("channel=organic",)
    with pytest.raises(ParameterError, match="without covariates"):
        fit_bgnbd(s).rate_ratio("channel=ads")


def test_rate_ratio_plot_draws_the_fitted_effects(planted_bg_fit):
    import matplotlib

    matplotlib.use("Agg")
    from workbench.plots.clv import plot_rate_ratios

    ax = plot_rate_ratios(planted_bg_fit)
    xs = ax.lines[0].get_xdata()
    np.testing.assert_allclose(sorted(xs), sorted(planted_bg_fit.coefficients.ratio))
    assert ax.get_xscale() == "log" and "segment = mainstream" in plot_title(ax)
    with pytest.raises(ParameterError, match="without covariates"):
        plot_rate_ratios(fit_bgnbd(_two_levels(no_repeat_level=False)))
