"""Intervals on customer-level predictions (delta method) and the choice of the
model to trust: the delta-method standard errors against a parametric
bootstrap of the same covariance, the total's variance by hand, degenerate
and nested intervals, and choose_model on every branch of its rule."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special, stats

from workbench.data import load_dataset
from workbench.errors import ParameterError
from workbench.models.clv import (
    BGNBDResult,
    choose_model,
    customer_lifetime_value,
    fit_bgnbd,
    fit_gamma_gamma,
    fit_mbgnbd,
    fit_pareto_nbd,
    holdout_comparison,
)
from workbench.models.results import summary_frame
from workbench.tables import repeat_summary, repeat_summary_compressed

CAL, HOLD = "1997-09-30", "1998-06-30"
Z = stats.norm.ppf(0.975)


@pytest.fixture(scope="module")
def cdnow():
    return load_dataset("cdnow-sample")


@pytest.fixture(scope="module")
def summary(cdnow):
    return repeat_summary(cdnow, time_unit="week", calibration_end=CAL, holdout_end=HOLD).to_pandas()


@pytest.fixture(scope="module")
def compressed(cdnow):
    return repeat_summary_compressed(cdnow, time_unit="week", calibration_end=CAL, holdout_end=HOLD).to_pandas()


@pytest.fixture(scope="module")
def fits(summary):
    return {"BG/NBD": fit_bgnbd(summary), "Pareto/NBD": fit_pareto_nbd(summary), "MBG/NBD": fit_mbgnbd(summary)}


@pytest.fixture(scope="module")
def spend(summary):
    return fit_gamma_gamma(summary[summary.frequency > 0])


@pytest.fixture(scope="module")
def value(fits, spend, summary):
    return customer_lifetime_value(fits["BG/NBD"], spend, summary, horizon=52.0, discount_rate=0.1)


# ----------------------------------------------------------------- intervals
def _se(est, lo, hi, scale):
    f = np.log if scale == "log" else special.logit
    return (f(hi) - f(lo)) / (2 * Z)


@pytest.mark.parametrize("model", ["BG/NBD", "Pareto/NBD"])
def test_prediction_standard_errors_equal_a_parametric_bootstrap(model, fits, summary):
    """The same covariance propagated by simulation instead of derivatives: draws of theta, the
    predictions recomputed at each, their spread on the interval's scale."""
    res = fits[model]
    rows = summary[(summary.frequency > 0)].iloc[::60].head(12)
    pred = res.predict(rows, t=26.0)
    rng = np.random.default_rng(0)
    draws = rng.multivariate_normal(res.theta, res.cov, size=1500)
    x, tx, T = (rows[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    g = np.zeros(len(rows), dtype=np.int64)
    e = np.array([res._evaluate("expected", x, tx, T, g, 26.0, th) for th in draws])
    pa = np.array([res._evaluate("p_alive", x, tx, T, g, theta=th) for th in draws])
    np.testing.assert_allclose(_se(None, pred.expected_purchases_ci_low, pred.expected_purchases_ci_high, "log"), np.log(e).std(axis=0), rtol=0.08)
    np.testing.assert_allclose(_se(None, pred.probability_alive_ci_low, pred.probability_alive_ci_high, "logit"), special.logit(pa).std(axis=0), rtol=0.08)
    # the estimates are the point predictions
    np.testing.assert_allclose(pred.expected_purchases, res.expected_purchases(rows, t=26.0), rtol=1e-12)
    np.testing.assert_allclose(pred.probability_alive, res.probability_alive(rows), rtol=1e-12)


def test_clv_and_total_intervals_equal_a_bootstrap_of_both_models(fits, spend, summary, value):
    """CLV_i = discounted purchases_i(theta) x spend_i(psi), recomputed at joint draws of both models'
    parameters (independent fits): the spread of log CLV and log total matches the delta method."""
    purchases = fits["BG/NBD"]
    rng = np.random.default_rng(1)
    k = 400
    th = rng.multivariate_normal(purchases.theta, purchases.cov, size=k)
    ps = rng.multivariate_normal(spend.theta, spend.cov, size=k)
    x, tx, T = (summary[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    u, inv = np.unique(np.column_stack([x, tx, T]), axis=0, return_inverse=True)
    g = np.zeros(len(u), dtype=np.int64)
    step = value.step
    grid = np.minimum(np.arange(0, int(np.ceil(52.0 / step - 1e-9)) + 1) * step, 52.0)
    disc = 1.1 ** (-grid[1:] / (365.25 / 7))
    m = summary.monetary_value.to_numpy()
    pick = np.flatnonzero(summary.frequency.to_numpy() > 2)[:8]
    totals, some = [], []
    for a, b in zip(th, ps):
        cum = np.column_stack([np.zeros(len(u))] + [purchases._evaluate("expected", u[:, 0], u[:, 1], u[:, 2], g, t, a) for t in grid[1:]])
        clv = (np.diff(cum, axis=1) @ disc)[inv.ravel()] * spend.spend_at(b, x, m)
        totals.append(clv.sum())
        some.append(clv[pick])
    np.testing.assert_allclose(
        value.customers.clv,
        (np.diff(np.column_stack([np.zeros(len(u))] + [purchases._evaluate("expected", u[:, 0], u[:, 1], u[:, 2], g, t) for t in grid[1:]]), axis=1) @ disc)[
            inv.ravel()
        ]
        * spend.expected_spend(summary),
        rtol=1e-10,
    )
    lo, hi = value.total_clv_ci
    assert _se(None, lo, hi, "log") == pytest.approx(np.log(totals).std(), rel=0.12)
    c = value.customers.iloc[pick]
    np.testing.assert_allclose(_se(None, c.clv_ci_low, c.clv_ci_high, "log"), np.log(some).std(axis=0), rtol=0.12)


def test_clv_and_total_variances_by_hand(fits, spend, summary, value):
    """The delta method written out independently: CLV_i(theta, psi) and the total on the grid,
    differentiated by statsmodels' numdiff, each model's block with its own covariance."""
    from statsmodels.tools import numdiff

    purchases = fits["BG/NBD"]
    x, tx, T = (summary[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    m = summary.monetary_value.to_numpy()
    g = np.zeros(len(x), dtype=np.int64)
    step = value.step
    grid = np.minimum(np.arange(0, int(np.ceil(52.0 / step - 1e-9)) + 1) * step, 52.0)
    disc = 1.1 ** (-grid[1:] / (365.25 / 7))
    pick = np.concatenate([np.flatnonzero(x == 0)[:3], np.flatnonzero(x > 2)[:3]])

    def dp(theta, rows):
        cum = np.column_stack([np.zeros(len(rows))] + [purchases._evaluate("expected", x[rows], tx[rows], T[rows], g[rows], t, theta) for t in grid[1:]])
        return np.diff(cum, axis=1) @ disc

    every = np.arange(len(x))
    for rows, got_lo, got_hi in ((pick, value.customers.clv_ci_low.to_numpy()[pick], value.customers.clv_ci_high.to_numpy()[pick]),):
        Jt = numdiff.approx_fprime(purchases.theta, lambda th, rows=rows: np.log(dp(th, rows)), centered=True)
        Js = numdiff.approx_fprime(spend.theta, lambda ps, rows=rows: np.log(spend.spend_at(ps, x[rows], m[rows])), centered=True)
        var = np.einsum("ij,jk,ik->i", Jt, purchases.cov, Jt) + np.einsum("ij,jk,ik->i", Js, spend.cov, Js)
        np.testing.assert_allclose(_se(None, got_lo, got_hi, "log") ** 2, var, rtol=1e-4)
    d0 = dp(purchases.theta, every)
    gt = numdiff.approx_fprime(purchases.theta, lambda th: np.sum(dp(th, every) * spend.spend_at(spend.theta, x, m)), centered=True)
    gs = numdiff.approx_fprime(spend.theta, lambda ps: np.sum(d0 * spend.spend_at(ps, x, m)), centered=True)
    var_total = (gt @ purchases.cov @ gt + gs @ spend.cov @ gs) / value.total_clv**2
    assert _se(None, *value.total_clv_ci, "log") ** 2 == pytest.approx(var_total, rel=1e-4)


def test_interval_properties(fits, spend, summary, value):
    c = value.customers
    for col in ("clv", "expected_purchases", "expected_spend", "probability_alive"):
        assert (c[f"{col}_ci_low"] <= c[col]).all() and (c[col] <= c[f"{col}_ci_high"]).all(), col
    new = c.frequency == 0  # BG/NBD: certainly alive without repeat purchases; the interval is that point
    assert (c.loc[new, "probability_alive"] == 1).all() and (c.loc[new, "probability_alive_ci_low"] == 1).all()
    assert (c.loc[~new, "probability_alive_ci_high"] < 1).all()
    narrow = customer_lifetime_value(fits["BG/NBD"], spend, summary, horizon=52.0, discount_rate=0.1, level=0.5).customers
    assert ((narrow.clv_ci_high - narrow.clv_ci_low) < (c.clv_ci_high - c.clv_ci_low)).all()
    lo, hi = value.total_clv_ci
    assert lo < value.total_clv < hi
    assert value.mean_clv_ci == pytest.approx((lo / len(summary), hi / len(summary)))
    m = value.to_metrics()
    assert m["clv.total_clv_ci_low"] == lo and m["clv.mean_clv_ci_high"] == pytest.approx(hi / len(summary)) and m["clv.level"] == 0.95
    s = value.summary()
    assert s.loc["total_clv", "ci_low"] == lo and np.isnan(s.loc["median_clv", "ci_low"])
    # no parameter uncertainty, no width
    p = fits["BG/NBD"]
    exact = BGNBDResult(params=p.params, theta=p.theta, cov=np.zeros((4, 4)), loglik=0.0, customers=0, patterns=0, repeat_customers=0,
                        repeat_transactions=0.0, converged=True, iterations=0)
    pred = exact.predict(summary.head(20), t=10.0)
    np.testing.assert_allclose(pred.expected_purchases_ci_low, pred.expected_purchases)


def test_customer_table_columns(value, summary):
    t = value.customer_table()
    assert list(t.columns) == ["user_id"] + [
        f"{b}{s}" for b in ("probability_alive", "expected_purchases", "expected_spend", "clv") for s in ("", "_ci_low", "_ci_high")
    ]
    assert len(t) == len(summary) and t.user_id.tolist() == summary.user_id.tolist()


# ----------------------------------------------------------------- model choice
@pytest.fixture(scope="module")
def holdouts(fits, summary):
    return {label: holdout_comparison(res, summary) for label, res in fits.items()}


def test_holdout_errors_per_customer_by_hand(holdouts, summary, fits):
    h = holdouts["BG/NBD"]
    e = fits["BG/NBD"].expected_purchases(summary, t=39.0)
    y = summary.frequency_holdout.to_numpy()
    assert h.customer_mse == pytest.approx(np.mean((y - e) ** 2))
    assert h.customer_mae == pytest.approx(np.mean(np.abs(y - e)))
    assert h.errors()["customer_rmse"] == pytest.approx(np.sqrt(np.mean((y - e) ** 2)))


def test_compressed_table_gives_the_same_squared_error(fits, compressed, holdouts):
    hc = holdout_comparison(fits["BG/NBD"], compressed, duration=39.0)
    assert hc.customer_mse == pytest.approx(holdouts["BG/NBD"].customer_mse, rel=1e-10)
    assert np.isnan(hc.customer_mae)  # absolute errors need each customer's holdout purchases
    no_squares = holdout_comparison(fits["BG/NBD"], compressed.drop(columns="frequency_holdout_sq_sum"), duration=39.0)
    assert np.isnan(no_squares.customer_mse)
    with pytest.raises(ParameterError, match="needs each customer's holdout purchases"):
        choose_model([no_squares, holdout_comparison(fits["Pareto/NBD"], compressed.drop(columns="frequency_holdout_sq_sum"), duration=39.0)])


def test_paired_difference_by_hand(holdouts, fits, summary):
    from workbench.models.clv.holdout import _paired_mse_difference

    y = summary.frequency_holdout.to_numpy()
    a = fits["Pareto/NBD"].expected_purchases(summary, t=39.0)
    b = fits["BG/NBD"].expected_purchases(summary, t=39.0)
    d = (y - a) ** 2 - (y - b) ** 2
    mean, se = _paired_mse_difference(holdouts["Pareto/NBD"], holdouts["BG/NBD"])
    assert mean == pytest.approx(d.mean()) and se == pytest.approx(d.std(ddof=1) / np.sqrt(len(d)))


def test_cdnow_models_tie_per_customer_and_the_total_decides(holdouts):
    """On CDNOW the three models' per-customer errors are within noise of each other; the smallest
    error of the total holdout purchases (Pareto/NBD, -11.5%) decides."""
    choice = choose_model(holdouts)
    r = choice.reason
    assert r["code"] == "customer_mse_tie_lower_total_error" and not r["decisive"]
    assert set(r["tied"]) == {"BG/NBD", "Pareto/NBD", "MBG/NBD"}
    assert abs(r["difference"]) < 2 * r["difference_se"]
    assert choice.chosen == "Pareto/NBD" == choice.table.abs_total_error.idxmin()
    assert r["chosen_total_error"] == pytest.approx(holdouts["Pareto/NBD"].total_error)
    # between BG/NBD and MBG/NBD the lower squared error (MBG/NBD) and the lower total error (BG/NBD)
    # disagree: the tie goes to the total
    pair = choose_model({k: holdouts[k] for k in ("BG/NBD", "MBG/NBD")})
    assert pair.reason["best"] == "MBG/NBD" and pair.chosen == "BG/NBD" and pair.reason["code"] == "customer_mse_tie_lower_total_error"
    m = choice.to_metrics()
    assert m["clv.choice.chosen"] == "Pareto/NBD" and m["clv.choice.code"] == r["code"] and isinstance(m["clv.choice.difference_se"], float)
    assert "ModelChoice" in choice._repr_html_()


def test_a_clearly_worse_model_loses_decisively(fits, summary, holdouts):
    p = fits["BG/NBD"]
    wrong = BGNBDResult(params=summary_frame(BGNBDResult.NAMES, p.values * [2.0, 1.0, 1.0, 1.0]), theta=p.theta + np.log([2.0, 1, 1, 1]),
                        cov=p.cov, loglik=0.0, customers=0, patterns=0, repeat_customers=0, repeat_transactions=0.0, converged=True, iterations=0)
    choice = choose_model({"fitted": holdouts["BG/NBD"], "twice the purchase rate": holdout_comparison(wrong, summary)})
    assert choice.chosen == "fitted" and choice.reason["code"] == "lower_customer_mse" and choice.reason["decisive"]
    assert choice.reason["difference"] < -2 * choice.reason["difference_se"]


def test_other_rules_single_model_and_bad_input(holdouts, fits, compressed):
    by_total = choose_model(holdouts, rule="total_error")
    assert by_total.chosen == "Pareto/NBD" and by_total.reason["code"] == "lower_total_error"
    by_bins = choose_model(holdouts, rule="bin_error")
    assert by_bins.chosen == holdouts_min(holdouts, "mean_abs_error") and by_bins.reason["code"] == "lower_bin_error"
    one = choose_model([holdouts["MBG/NBD"]])
    assert one.chosen == "MBG/NBD" and one.reason["code"] == "only_model"
    with pytest.raises(ParameterError, match="rule must be"):
        choose_model(holdouts, rule="aic")
    with pytest.raises(ParameterError, match="not on the same customers"):
        choose_model([holdouts["BG/NBD"], holdout_comparison(fits["Pareto/NBD"], compressed, duration=39.0)])


def holdouts_min(holdouts, attr):
    return min(holdouts, key=lambda k: getattr(holdouts[k], attr))
