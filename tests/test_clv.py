"""BG/NBD, Pareto/NBD and Gamma-Gamma: published CDNOW results, independent
checks of the likelihoods and predictions, planted truth, bad input.

Published values (CDNOW 1/10 sample, 2,357 customers, weeks, calibration end
1997-09-30): Fader, Hardie and Lee (2005), "Counting your customers the easy
way", and Fader and Hardie's notes on the Pareto/NBD and Gamma-Gamma models.
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, special
from statsmodels.tools import numdiff

from workbench.data import load_dataset
from workbench.data.simulate import simulate_bgnbd_summary, simulate_gamma_gamma_spend, simulate_pareto_nbd_summary
from workbench.errors import DataError, ModelError, ParameterError, WorkbenchError
from workbench.models import clv
from workbench.models.clv import (
    BGNBDResult,
    ParetoNBDResult,
    bgnbd_loglik,
    customer_lifetime_value,
    fit_bgnbd,
    fit_gamma_gamma,
    fit_pareto_nbd,
    gamma_gamma_loglik,
    holdout_comparison,
    pareto_nbd_loglik,
)
from workbench.models.results import summary_frame
from workbench.tables import repeat_summary, repeat_summary_compressed
from workbench.tables.tracking import calibration_window, repeat_tracking

CAL, HOLD = "1997-09-30", "1998-06-30"
PUBLISHED = {
    "bgnbd": {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426, "loglik": -9582.4},
    "pareto_nbd": {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669, "loglik": -9595.0},
    "gamma_gamma": {"p": 6.25, "q": 3.74, "gamma": 15.44},
}


def _decimals(value: float) -> int:
    text = f"{value}"
    return len(text.split(".")[1]) if "." in text else 0


# ----------------------------------------------------------------- CDNOW
@pytest.fixture(scope="module")
def cdnow():
    return load_dataset("cdnow-sample")


@pytest.fixture(scope="module")
def cdnow_summary(cdnow):
    return repeat_summary(cdnow, time_unit="week", calibration_end=CAL, holdout_end=HOLD).to_pandas()


@pytest.fixture(scope="module")
def cdnow_compressed(cdnow):
    return repeat_summary_compressed(cdnow, time_unit="week", calibration_end=CAL, holdout_end=HOLD).to_pandas()


@pytest.fixture(scope="module")
def cdnow_bg(cdnow_compressed):
    return fit_bgnbd(cdnow_compressed, time_unit="week")


@pytest.fixture(scope="module")
def cdnow_pn(cdnow_compressed):
    return fit_pareto_nbd(cdnow_compressed, time_unit="week")


@pytest.fixture(scope="module")
def cdnow_gg(cdnow_summary):
    return fit_gamma_gamma(cdnow_summary)


def test_cdnow_summary_is_the_published_input(cdnow_summary, cdnow_compressed):
    assert len(cdnow_summary) == 2357
    assert int((cdnow_summary.frequency > 0).sum()) == 946
    assert int(cdnow_summary.frequency.sum()) == 2457
    assert int(cdnow_compressed.n.sum()) == 2357
    assert len(cdnow_compressed) < len(cdnow_summary)


@pytest.mark.parametrize("model", ["bgnbd", "pareto_nbd", "gamma_gamma"])
def test_cdnow_matches_published_values(model, cdnow_bg, cdnow_pn, cdnow_gg):
    res = {"bgnbd": cdnow_bg, "pareto_nbd": cdnow_pn, "gamma_gamma": cdnow_gg}[model]
    for name, published in PUBLISHED[model].items():
        fitted = res.loglik if name == "loglik" else float(res.params.loc[name, "estimate"])
        assert round(fitted, _decimals(published)) == published, f"{model} {name}: fitted {fitted} vs published {published}"
    assert res.converged


def test_cdnow_repeat_customers_in_gamma_gamma(cdnow_gg):
    assert cdnow_gg.customers == 946
    assert cdnow_gg.transactions == 2457
    assert cdnow_gg.mean_spend == pytest.approx(cdnow_gg.p * cdnow_gg.gamma / (cdnow_gg.q - 1))


def test_compressed_fit_equals_per_customer_fit(cdnow_summary, cdnow_bg, cdnow_pn):
    bg = fit_bgnbd(cdnow_summary)
    pn = fit_pareto_nbd(cdnow_summary)
    np.testing.assert_allclose(bg.values, cdnow_bg.values, rtol=1e-7)
    np.testing.assert_allclose(pn.values, cdnow_pn.values, rtol=1e-6)
    assert bg.loglik == pytest.approx(cdnow_bg.loglik, abs=1e-6)
    assert pn.loglik == pytest.approx(cdnow_pn.loglik, abs=1e-6)
    assert bg.customers == cdnow_bg.customers == 2357
    assert cdnow_bg.patterns == len(cdnow_summary.groupby(["frequency", "recency", "T"]))


def _natural_se(loglik_rows, values, weights):
    """Standard errors from an independent numerical Hessian of the total log-likelihood on the natural scale."""
    H = numdiff.approx_hess3(np.asarray(values), lambda p: float(weights @ loglik_rows(p)))
    return np.sqrt(np.diag(np.linalg.inv(-H)))


def test_standard_errors_match_an_independent_hessian(cdnow_compressed, cdnow_bg, cdnow_pn, cdnow_summary, cdnow_gg):
    x, tx, T, n = (cdnow_compressed[c].to_numpy(float) for c in ("frequency", "recency", "T", "n"))
    se_bg = _natural_se(lambda p: bgnbd_loglik(p, x, tx, T), cdnow_bg.values, n)
    np.testing.assert_allclose(cdnow_bg.params["std_err"], se_bg, rtol=2e-3)
    se_pn = _natural_se(lambda p: pareto_nbd_loglik(p, x, tx, T), cdnow_pn.values, n)
    np.testing.assert_allclose(cdnow_pn.params["std_err"], se_pn, rtol=2e-3)
    rep = cdnow_summary[cdnow_summary.frequency > 0]
    gg_vals = cdnow_gg.params["estimate"].to_numpy()
    se_gg = _natural_se(lambda p: gamma_gamma_loglik(p, rep.frequency.to_numpy(float), rep.monetary_value.to_numpy()), gg_vals, np.ones(len(rep)))
    np.testing.assert_allclose(cdnow_gg.params["std_err"], se_gg, rtol=2e-3)


def test_intervals_are_log_scale_wald(cdnow_pn):
    t = cdnow_pn.summary()
    assert list(t.columns) == ["estimate", "std_err", "ci_low", "ci_high"]
    assert (t.std_err > 0).all() and (t.ci_low > 0).all()
    assert (t.ci_low < t.estimate).all() and (t.estimate < t.ci_high).all()
    se_log = t.std_err / t.estimate
    np.testing.assert_allclose(np.log(t.ci_high / t.estimate), 1.959964 * se_log, rtol=1e-5)
    np.testing.assert_allclose(np.log(t.estimate / t.ci_low), 1.959964 * se_log, rtol=1e-5)


def test_metrics_names(cdnow_bg, cdnow_pn, cdnow_gg):
    m = {**cdnow_bg.to_metrics(), **cdnow_pn.to_metrics(), **cdnow_gg.to_metrics()}
    for name in ("clv.bgnbd.r", "clv.bgnbd.alpha", "clv.bgnbd.a", "clv.bgnbd.b", "clv.bgnbd.loglik", "clv.pareto_nbd.r",
                 "clv.pareto_nbd.alpha", "clv.pareto_nbd.s", "clv.pareto_nbd.beta", "clv.pareto_nbd.loglik",
                 "clv.gamma_gamma.p", "clv.gamma_gamma.q", "clv.gamma_gamma.gamma", "clv.bgnbd.r_ci_low"):
        assert isinstance(m[name], float) and math.isfinite(m[name]), name
    assert m["clv.pareto_nbd.beta_ci_low"] < m["clv.pareto_nbd.beta"] < m["clv.pareto_nbd.beta_ci_high"]
    assert "BGNBDResult" in cdnow_bg._repr_html_() and "<table" in cdnow_bg._repr_html_()


# ----------------------------------------------------------------- likelihoods, independently
def _pnbd_by_integration(params, x, tx, T):
    """Pareto/NBD log-likelihood from its definition: alive through T, or dying at tau in (t_x, T],
    integrated numerically over tau (no hypergeometric function)."""
    r, a, s, b = params
    const = special.gammaln(r + x) - special.gammaln(r) + r * math.log(a) + s * math.log(b)
    alive = -(r + x) * math.log(a + T) - s * math.log(b + T)
    log_f = lambda u: -(r + x) * math.log(a + u) - (s + 1) * math.log(b + u)  # noqa: E731
    peak = log_f(tx)
    val, _ = integrate.quad(lambda u: math.exp(log_f(u) - peak), tx, T, epsabs=0, epsrel=1e-12, limit=200)
    dead = math.log(s) + peak + math.log(val) if val > 0 else -math.inf
    return const + np.logaddexp(alive, dead)


ROWS = [(0, 0.0, 39.0), (1, 5.0, 39.0), (5, 30.0, 39.0), (50, 38.5, 39.0), (300, 38.9, 39.0), (800, 30.0, 39.0), (2, 0.1, 0.2), (3, 12.0, 12.0)]


@pytest.mark.parametrize(
    "params",
    [(0.553, 10.578, 0.606, 11.669), (0.55, 10.0, 0.6, 300.0), (0.55, 300.0, 0.6, 2.0), (5.0, 0.5, 3.0, 0.01), (0.01, 0.01, 0.01, 1000.0)],
    ids=["cdnow", "beta>>alpha", "alpha>>beta", "large-r", "extreme"],
)
def test_pareto_nbd_likelihood_equals_numerical_integration(params):
    x, tx, T = (np.array(v, dtype=float) for v in zip(*ROWS))
    ours = pareto_nbd_loglik(params, x, tx, T)
    ref = np.array([_pnbd_by_integration(params, *row) for row in ROWS])
    assert np.isfinite(ours).all()
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-9)


def _bgnbd_direct(params, x, tx, T):
    """FHL (2005) eq. 6 term by term with math.lgamma (a different code path from the model's)."""
    r, a_, a, b = params
    lb = lambda p, q: math.lgamma(p) + math.lgamma(q) - math.lgamma(p + q)  # noqa: E731
    base = math.lgamma(r + x) - math.lgamma(r) + r * math.log(a_)
    t1 = lb(a, b + x) - lb(a, b) - (r + x) * math.log(a_ + T)
    if x == 0:
        return base + t1
    t2 = lb(a + 1, b + x - 1) - lb(a, b) - (r + x) * math.log(a_ + tx)
    return base + max(t1, t2) + math.log1p(math.exp(min(t1, t2) - max(t1, t2)))


def test_bgnbd_likelihood_equals_direct_formula_incl_hundreds_of_purchases():
    params = (0.243, 4.414, 0.793, 2.426)
    x, tx, T = (np.array(v, dtype=float) for v in zip(*ROWS))
    ours = bgnbd_loglik(params, x, tx, T)
    ref = np.array([_bgnbd_direct(params, *row) for row in ROWS])
    assert np.isfinite(ours).all()
    np.testing.assert_allclose(ours, ref, rtol=1e-12)
    # small counts: the plain (non-log) formula too
    r, al, a, b = params
    B = special.beta
    x1, tx1, T1 = 2, 10.0, 30.0
    plain = B(a, b + x1) / B(a, b) * special.gamma(r + x1) * al**r / (special.gamma(r) * (al + T1) ** (r + x1)) + B(a + 1, b + x1 - 1) / B(
        a, b
    ) * special.gamma(r + x1) * al**r / (special.gamma(r) * (al + tx1) ** (r + x1))
    assert bgnbd_loglik(params, [x1], [tx1], [T1])[0] == pytest.approx(math.log(plain), rel=1e-12)


def test_analytic_gradients_match_numerical(cdnow_compressed, cdnow_summary):
    x, tx, T, n = (cdnow_compressed[c].to_numpy(float) for c in ("frequency", "recency", "T", "n"))
    p = np.array([0.3, 5.0, 0.9, 2.0])
    _, g = bgnbd_loglik(p, x, tx, T, gradient=True)
    num = numdiff.approx_fprime(p, lambda q: float(n @ bgnbd_loglik(q, x, tx, T)), centered=True)
    np.testing.assert_allclose(n @ g, num, rtol=1e-6)
    rep = cdnow_summary[cdnow_summary.frequency > 0]
    xx, m = rep.frequency.to_numpy(float), rep.monetary_value.to_numpy()
    q = np.array([5.0, 3.0, 12.0])
    _, g = gamma_gamma_loglik(q, xx, m, gradient=True)
    num = numdiff.approx_fprime(q, lambda v: float(gamma_gamma_loglik(v, xx, m).sum()), centered=True)
    np.testing.assert_allclose(g.sum(axis=0), num, rtol=1e-6)


def test_heavy_buyers_do_not_overflow():
    """Customers with hundreds of purchases: finite likelihoods, fits and predictions."""
    rng = np.random.default_rng(3)
    s = simulate_bgnbd_summary(n=3000, r=2.0, alpha=0.2, a=0.5, b=30.0, T=39.0, seed=rng)  # ~10 purchases/week
    assert s.frequency.max() > 300
    for fit in (fit_bgnbd, fit_pareto_nbd):
        res = fit(s)
        assert np.isfinite(res.loglik) and res.converged
        alive = res.probability_alive(s)
        e = res.expected_purchases(s, t=10.0)
        assert np.all((alive >= 0) & (alive <= 1)) and np.all(np.isfinite(e)) and np.all(e >= 0)
        heavy = s.frequency.to_numpy() > 300
        # a heavy, recent buyer is expected to keep buying at about her own rate
        recent = heavy & (s.recency.to_numpy() > 38.0)
        rate = s.frequency.to_numpy()[recent] / s.recency.to_numpy()[recent]
        assert np.median(e[recent] / (10.0 * rate)) == pytest.approx(1.0, abs=0.15)


# ----------------------------------------------------------------- predictions
def _result(cls, values):
    """A result carrying given parameter values (for checking prediction formulas at the truth)."""
    return cls(params=summary_frame(cls.NAMES, values), theta=np.log(values), cov=np.zeros((4, 4)), loglik=0.0, customers=0, patterns=0,
               repeat_customers=0, repeat_transactions=0, converged=True, iterations=0)


def _simulate_bgnbd_two_periods(n, r, alpha, a, b, T, t, rng):
    """Calibration summary, holdout purchases and the latent 'alive at T' of BG/NBD customers,
    purchase by purchase."""
    lam = rng.gamma(r, 1 / alpha, n)
    p = rng.beta(a, b, n)
    clock = np.zeros(n)
    x = np.zeros(n, int)
    tx = np.zeros(n)
    hold = np.zeros(n, int)
    active = np.ones(n, bool)  # not dropped out yet
    running = np.ones(n, bool)  # still simulating
    while running.any():
        i = np.flatnonzero(running)
        clock[i] += rng.exponential(1 / lam[i])
        end = clock[i] > T + t
        running[i[end]] = False
        buy = i[~end]
        cal = clock[buy] <= T
        x[buy[cal]] += 1
        tx[buy[cal]] = clock[buy[cal]]
        hold[buy[~cal]] += 1
        drop = rng.random(buy.size) < p[buy]
        dropped = buy[drop]
        active[dropped[clock[dropped] <= T]] = False
        running[dropped] = False
    alive_at_T = active
    return pd.DataFrame({"frequency": x, "recency": tx, "T": T}), hold, alive_at_T


def test_bgnbd_predictions_match_simulated_future_at_the_truth():
    truth = (0.25, 4.0, 0.8, 2.5)
    rng = np.random.default_rng(11)
    s, hold, alive = _simulate_bgnbd_two_periods(60_000, *truth, T=39.0, t=39.0, rng=rng)
    res = _result(BGNBDResult, truth)
    e = res.expected_purchases(s, t=39.0)
    pa = res.probability_alive(s)
    for group in (s.frequency == 0, s.frequency.between(1, 3), s.frequency > 3):
        g = group.to_numpy()
        assert e[g].sum() == pytest.approx(hold[g].sum(), rel=0.05)
    assert pa.mean() == pytest.approx(alive.mean(), abs=0.01)
    rep = s.frequency.to_numpy() > 0
    assert pa[rep].mean() == pytest.approx(alive[rep].mean(), abs=0.01)
    # unconditional: E[X(39)] is the mean calibration frequency of customers observed for 39 weeks
    assert res.expected_purchases_new(39.0)[0] == pytest.approx(s.frequency.mean(), rel=0.03)


def test_pareto_nbd_predictions_match_simulated_future_at_the_truth():
    truth = dict(r=0.55, alpha=10.5, s=0.6, beta=11.5)
    rng = np.random.default_rng(12)
    n, T, t = 60_000, 39.0, 39.0
    lam = rng.gamma(truth["r"], 1 / truth["alpha"], n)
    mu = rng.gamma(truth["s"], 1 / truth["beta"], n)
    life = rng.exponential(1 / mu)
    x = rng.poisson(lam * np.minimum(life, T))
    tx = np.where(x > 0, np.minimum(life, T) * rng.beta(np.maximum(x, 1), 1), 0.0)
    hold = rng.poisson(lam * np.clip(life - T, 0, t))
    s = pd.DataFrame({"frequency": x, "recency": tx, "T": T})
    res = _result(ParetoNBDResult, list(truth.values()))
    e = res.expected_purchases(s, t=t)
    pa = res.probability_alive(s)
    for group in (x == 0, (x >= 1) & (x <= 3), x > 3):
        assert e[group].sum() == pytest.approx(hold[group].sum(), rel=0.05)
    assert pa.mean() == pytest.approx((life > T).mean(), abs=0.01)
    r, a, s_, b = truth.values()
    closed = r * b / (a * (s_ - 1)) * (1 - (b / (b + t)) ** (s_ - 1))  # Schmittlein et al. E[X(t)]
    assert res.expected_purchases_new(t)[0] == pytest.approx(closed, rel=1e-10)


def test_gamma_gamma_expected_spend_shrinks_towards_the_truth():
    rng = np.random.default_rng(5)
    freq = 1 + rng.poisson(1.5, 20_000)
    s = simulate_gamma_gamma_spend(freq, p=6.0, q=4.0, gamma=15.0, seed=rng)
    res = fit_gamma_gamma(s)
    true_mean = 6.0 / s.nu.to_numpy()  # each customer's true mean spend per transaction
    e = res.expected_spend(s)
    assert np.mean(e - true_mean) == pytest.approx(0.0, abs=0.5)
    assert np.mean((e - true_mean) ** 2) < 0.8 * np.mean((s.monetary_value - true_mean) ** 2)
    # a customer without repeat purchases gets the population mean
    none = res.expected_spend(pd.DataFrame({"frequency": [0], "monetary_value": [np.nan]}))
    assert none[0] == pytest.approx(res.mean_spend)


def test_clv_formula(cdnow_summary, cdnow_bg, cdnow_gg):
    no_disc = customer_lifetime_value(cdnow_bg, cdnow_gg, cdnow_summary, horizon=52.0, discount_rate=0.0, step=52.0)
    e = cdnow_bg.expected_purchases(cdnow_summary, t=52.0)
    m = cdnow_gg.expected_spend(cdnow_summary)
    np.testing.assert_allclose(no_disc.customers.clv, e * m, rtol=1e-12)
    # monthly steps with an annual rate: one customer by hand
    res = customer_lifetime_value(cdnow_bg, cdnow_gg, cdnow_summary, horizon=52.0, discount_rate=0.1)
    row = cdnow_summary.iloc[[0]]
    step = 365.25 / 7 / 12
    grid = np.minimum(np.arange(0, math.ceil(52 / step) + 1) * step, 52.0)
    cum = np.array([cdnow_bg.expected_purchases(row, t=g)[0] if g > 0 else 0.0 for g in grid])
    by_hand = cdnow_gg.expected_spend(row)[0] * np.sum(np.diff(cum) * 1.1 ** (-grid[1:] / (365.25 / 7)))
    assert res.customers.clv.iloc[0] == pytest.approx(by_hand, rel=1e-10)
    assert res.mean_clv < no_disc.mean_clv
    assert res.mean_clv == pytest.approx(res.customers.clv.mean())
    assert res.to_metrics()["clv.mean_clv"] == pytest.approx(res.mean_clv)
    assert 0 < res.top_share(0.2) < 1 and res.median_clv < res.mean_clv  # right-skewed


def test_predictions_agree_with_lifetimes(cdnow_summary, cdnow_bg, cdnow_pn, cdnow_gg):
    """Cross-check with the reference implementation (only where the benchmark peer is installed)."""
    lifetimes = pytest.importorskip("lifetimes")
    f, r, T = cdnow_summary.frequency, cdnow_summary.recency, cdnow_summary["T"]
    lb = lifetimes.BetaGeoFitter()
    lb.params_ = pd.Series(dict(zip(["r", "alpha", "a", "b"], cdnow_bg.values)))
    lp = lifetimes.ParetoNBDFitter()
    lp.params_ = pd.Series(dict(zip(["r", "alpha", "s", "beta"], cdnow_pn.values)))
    for t in (1.0, 39.0):
        np.testing.assert_allclose(
            cdnow_bg.expected_purchases(cdnow_summary, t=t), lb.conditional_expected_number_of_purchases_up_to_time(t, f, r, T), rtol=1e-9
        )
        np.testing.assert_allclose(
            cdnow_pn.expected_purchases(cdnow_summary, t=t), lp.conditional_expected_number_of_purchases_up_to_time(t, f, r, T), rtol=1e-9
        )
    np.testing.assert_allclose(cdnow_bg.probability_alive(cdnow_summary), lb.conditional_probability_alive(f, r, T), atol=1e-12)
    np.testing.assert_allclose(cdnow_pn.probability_alive(cdnow_summary), lp.conditional_probability_alive(f, r, T), atol=1e-12)
    # CLV with lifetimes' conventions: 4.345-week months, a monthly rate of 1%
    lg = lifetimes.GammaGammaFitter()
    lg.params_ = pd.Series(dict(p=cdnow_gg.p, q=cdnow_gg.q, v=cdnow_gg.gamma))
    lb.predict = lb.conditional_expected_number_of_purchases_up_to_time
    ref = lg.customer_lifetime_value(lb, f, r, T, cdnow_summary.monetary_value.fillna(0), time=12, discount_rate=0.01, freq="W")
    annual = 1.01 ** ((365.25 / 7) / 4.345) - 1
    ours = customer_lifetime_value(cdnow_bg, cdnow_gg, cdnow_summary, horizon=12 * 4.345, discount_rate=annual, step=4.345)
    np.testing.assert_allclose(ours.customers.clv, ref.to_numpy(), rtol=1e-9)


# ----------------------------------------------------------------- validation tables
def test_holdout_comparison_on_cdnow(cdnow_summary, cdnow_compressed, cdnow_bg):
    h = holdout_comparison(cdnow_bg, cdnow_summary, max_frequency=7)
    assert list(h.table.index) == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert h.table.customers.sum() == 2357
    assert h.actual_total == 1882  # repeat purchase days in weeks 40-78
    assert h.expected_total == pytest.approx(cdnow_bg.expected_purchases(cdnow_summary, t=39.0).sum())
    assert abs(h.total_error) < 0.15
    # actual means rise with calibration frequency, and so do the expectations
    assert h.table.actual.is_monotonic_increasing or h.table.actual.iloc[-1] > 5 * h.table.actual.iloc[0]
    assert h.table.expected.is_monotonic_increasing
    # the compressed table with summed holdout purchases gives the same comparison
    hc = holdout_comparison(cdnow_bg, cdnow_compressed, duration=39.0)
    pd.testing.assert_frame_equal(hc.table, h.table, check_exact=False, rtol=1e-10)
    assert h.to_metrics()["clv.holdout.bg_nbd.actual_total"] == 1882


def test_tracking_counts_and_expectations(cdnow, cdnow_bg):
    daily = repeat_tracking(cdnow, calibration_end=CAL, holdout_end=HOLD).to_pandas()
    assert daily.new_customers.sum() == 2357
    cal_day = (pd.Timestamp(CAL) - pd.Timestamp("1970-01-01")).days
    assert daily.loc[daily.day <= cal_day, "repeat_purchases"].sum() == 2457
    assert daily.repeat_purchases.sum() == 2457 + 1882
    track = clv.tracking_table(daily, models={"BG/NBD": cdnow_bg}, time_unit="week")
    assert len(track) == 78 and track.actual.sum() == 4339
    # the model reproduces calibration within a few percent and the total within 10%
    assert track.loc[track.time <= 39, "expected_BG/NBD"].sum() == pytest.approx(2457, rel=0.05)
    assert track["expected_BG/NBD"].sum() == pytest.approx(4339, rel=0.10)
    # one cohort: n * E[X(t)]
    one = clv.expected_cumulative_repeat(cdnow_bg, acquisitions=pd.DataFrame({"t": [0.0], "n": [100.0]}), times=[10.0, 20.0])
    np.testing.assert_allclose(one.expected_cumulative, 100 * cdnow_bg.expected_purchases_new([10.0, 20.0]))


def test_heatmap_grid(cdnow_bg):
    g = cdnow_bg.expected_purchases_grid(t=52.0, max_frequency=10, T=38.86, recency_points=20)
    assert set(g.frequency) == set(range(11))
    assert (g[g.frequency == 0].recency == 0).all()
    assert g.probability_alive.between(0, 1).all()
    f5 = g[g.frequency == 5].sort_values("recency")
    assert f5.probability_alive.is_monotonic_increasing and f5.expected_purchases.is_monotonic_increasing


# ----------------------------------------------------------------- planted truth (one large draw each)
def test_bgnbd_recovers_planted_values():
    truth = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5}
    rng = np.random.default_rng(21)
    s = simulate_bgnbd_summary(n=30_000, T=39.0 - rng.uniform(0, 12, 30_000), seed=rng, **truth)
    res = fit_bgnbd(s)
    for name, value in truth.items():
        row = res.params.loc[name]
        assert abs(row.estimate - value) < 3.5 * row.std_err, name
        assert row.estimate == pytest.approx(value, rel=0.25)


def test_pareto_nbd_recovers_planted_values():
    truth = {"r": 0.55, "alpha": 10.5, "s": 0.6, "beta": 11.5}
    rng = np.random.default_rng(22)
    s = simulate_pareto_nbd_summary(n=30_000, T=39.0 - rng.uniform(0, 12, 30_000), seed=rng, **truth)
    res = fit_pareto_nbd(s)
    for name, value in truth.items():
        row = res.params.loc[name]
        assert abs(row.estimate - value) < 3.5 * row.std_err, name
        assert row.ci_low < value < row.ci_high or abs(row.estimate - value) < 3 * row.std_err


def test_gamma_gamma_recovers_planted_values():
    truth = {"p": 6.0, "q": 4.0, "gamma": 15.0}
    rng = np.random.default_rng(23)
    s = simulate_gamma_gamma_spend(1 + rng.poisson(2.0, 10_000), seed=rng, **truth)
    res = fit_gamma_gamma(s)
    for name, value in truth.items():
        row = res.params.loc[name]
        assert abs(row.estimate - value) < 3.5 * row.std_err, name
        assert row.estimate == pytest.approx(value, rel=0.2)


def test_coarse_to_fine_path_gives_the_direct_fit(monkeypatch, cdnow_compressed, cdnow_bg, cdnow_pn):
    """Large tables are first fitted on a coarsened copy, then polished on the data: same optimum."""
    from workbench.models.clv import counting

    monkeypatch.setattr(counting, "COARSE_ROWS", 100)
    bg = fit_bgnbd(cdnow_compressed)
    pn = fit_pareto_nbd(cdnow_compressed)
    np.testing.assert_allclose(bg.values, cdnow_bg.values, rtol=1e-6)
    np.testing.assert_allclose(pn.values, cdnow_pn.values, rtol=1e-5)
    np.testing.assert_allclose(pn.params.std_err, cdnow_pn.params.std_err, rtol=1e-3)


# ----------------------------------------------------------------- bad input
def _summary(**cols):
    base = {"frequency": [0, 1, 2, 0], "recency": [0.0, 3.0, 5.0, 0.0], "T": [10.0, 10.0, 12.0, 8.0]}
    base.update(cols)
    return pd.DataFrame(base)


def test_no_repeat_buyers_is_a_clear_model_error():
    s = pd.DataFrame({"frequency": [0] * 50, "recency": [0.0] * 50, "T": np.linspace(1, 30, 50)})
    for fit in (fit_bgnbd, fit_pareto_nbd):
        with pytest.raises(ModelError, match="no repeat buyers.*calibration_end"):
            fit(s)
    with pytest.raises(ModelError, match="no repeat customers"):
        fit_gamma_gamma(s.assign(monetary_value=np.nan))


def test_empty_summary_is_a_clear_model_error():
    with pytest.raises(ModelError, match="no customers"):
        fit_bgnbd(pd.DataFrame({"frequency": [], "recency": [], "T": []}))


def test_impossible_summary_values_are_listed_together():
    s = _summary(frequency=[0, -1, 2.5, 0], recency=[1.0, 3.0, 50.0, 0.0])
    with pytest.raises(DataError) as err:
        fit_bgnbd(s)
    text = str(err.value)
    assert "whole number >= 0" in text and "recency must be <= T" in text and "recency must be 0 when frequency is 0" in text
    assert len(err.value.violations) == 3


def test_zero_and_negative_spend():
    s = pd.DataFrame({"frequency": [1, 2, 3] * 10, "monetary_value": [10.0, 0.0, 5.0] * 10})
    with pytest.raises(ModelError, match=r"10 of 30 repeat customers have mean spend 0.*Drop them"):
        fit_gamma_gamma(s)
    with pytest.raises(DataError, match="spend must be >= 0"):
        fit_gamma_gamma(s.assign(monetary_value=[10.0, -4.0, 5.0] * 10))
    with pytest.raises(DataError, match="missing spend"):
        fit_gamma_gamma(s.assign(monetary_value=[10.0, np.nan, 5.0] * 10))


def test_wrong_arguments_are_parameter_errors(cdnow, cdnow_bg, cdnow_gg, cdnow_summary):
    with pytest.raises(ParameterError, match="no column 'T'"):
        fit_bgnbd(cdnow_summary.drop(columns="T"))
    with pytest.raises(ParameterError, match="to_pandas"):
        fit_bgnbd(repeat_summary(cdnow, calibration_end=CAL))
    with pytest.raises(ParameterError, match="level"):
        fit_bgnbd(cdnow_summary, level=95)
    with pytest.raises(ParameterError, match="horizon"):
        customer_lifetime_value(cdnow_bg, cdnow_gg, cdnow_summary, horizon=0, discount_rate=0.1)
    with pytest.raises(ParameterError, match="annual rate"):
        customer_lifetime_value(cdnow_bg, cdnow_gg, cdnow_summary, horizon=52, discount_rate=-2)
    with pytest.raises(ParameterError, match="time_unit"):
        customer_lifetime_value(cdnow_bg, cdnow_gg, cdnow_summary, horizon=52, discount_rate=0.1, time_unit="month")
    with pytest.raises(ParameterError, match="Gamma-Gamma"):
        customer_lifetime_value(cdnow_bg, cdnow_bg, cdnow_summary, horizon=52, discount_rate=0.1)


def test_calibration_date_outside_the_data(cdnow):
    for bad in ("1996-06-01", "1999-01-01"):
        with pytest.raises(ParameterError, match=r"calibration_end .* outside the purchases .* 1997-01-01 .* 1998-06-30"):
            calibration_window(cdnow, calibration_end=bad)
    with pytest.raises(ParameterError, match="calibration_end 1999-01-01"):
        repeat_summary(cdnow, calibration_end="1999-01-01")
    # before the first purchase the summary is empty, and the fit says so
    empty = repeat_summary(cdnow, calibration_end="1996-06-01").to_pandas()
    with pytest.raises(ModelError, match="no customers"):
        fit_bgnbd(empty)
    with pytest.raises(ParameterError, match="holdout_end"):
        calibration_window(cdnow, calibration_end=CAL, holdout_end="1997-06-01")
    w = calibration_window(cdnow)
    assert str(w["calibration_end"].date()) == CAL  # the default split is the published one


def test_every_error_is_a_workbench_error():
    assert issubclass(ModelError, WorkbenchError) and issubclass(DataError, WorkbenchError) and issubclass(ParameterError, WorkbenchError)
    assert issubclass(clv.CLVWarning, RuntimeWarning)


# ----------------------------------------------------------------- plots (draw from results; never fit)
def test_plots_draw_what_they_are_given(cdnow_summary, cdnow_bg, cdnow_pn, cdnow_gg, cdnow):
    import matplotlib.pyplot as plt

    from workbench.plots import clv as plots

    hs = [holdout_comparison(m, cdnow_summary) for m in (cdnow_bg, cdnow_pn)]
    ax = plots.plot_holdout(hs)
    assert len(ax.lines) == 3 and [t.get_text() for t in ax.get_legend().get_texts()] == ["actual", "BG/NBD expected", "Pareto/NBD expected"]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), hs[0].table.actual)
    daily = repeat_tracking(cdnow, calibration_end=CAL, holdout_end=HOLD).to_pandas()
    track = clv.tracking_table(daily, models={"BG/NBD": cdnow_bg}, time_unit="week")
    ax = plots.plot_tracking(track, calibration_end=39.0)
    assert ax.lines[0].get_ydata()[-1] == 4339
    ax = plots.plot_heatmap(cdnow_bg.expected_purchases_grid(t=52, max_frequency=8, T=39.0), value="probability_alive")
    assert ax.collections  # the heatmap mesh
    with pytest.raises(ParameterError):
        plots.plot_heatmap(cdnow_bg.expected_purchases_grid(t=52, max_frequency=8, T=39.0), value="nope")
    res = customer_lifetime_value(cdnow_bg, cdnow_gg, cdnow_summary, horizon=52, discount_rate=0.1)
    assert plots.plot_clv_distribution(res).patches
    plt.close("all")
