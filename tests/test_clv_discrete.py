"""BG/BB (discrete opportunities) and MBG/NBD: the published donations fit,
agreement with ``lifetimes`` (the test oracle, 1e-4), likelihoods checked by
direct integration, planted truth, the opportunity table by hand, bad input."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from workbench.data import load_dataset
from workbench.errors import DataError, ModelError, ParameterError
from workbench.models.clv import bgbb_loglik, fit_bgbb, fit_mbgnbd, mbgnbd_loglik
from workbench.tables import repeat_opportunities, repeat_summary

from conftest import REPO
from test_tables import random_tables

DONATIONS = REPO / "data" / "raw" / "donations" / "donations.csv"
# Fader, Hardie and Shang (2010), the BG/BB fit to the 1995 donor cohort (6 annual opportunities)
PUBLISHED_BGBB = {"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783}


@pytest.fixture(scope="module")
def donations():
    return pd.read_csv(DONATIONS)


@pytest.fixture(scope="module")
def donations_fit(donations):
    return fit_bgbb(donations)


# ----------------------------------------------------------------- BG/BB, published and lifetimes
def test_donations_reproduce_the_published_bgbb_fit(donations, donations_fit):
    assert donations.weights.sum() == 11_104 and set(donations.periods) == {6}
    res = donations_fit
    for name, published in PUBLISHED_BGBB.items():
        assert round(res.param(name), 3) == published, (name, res.param(name))
    assert round(res.loglik, 1) == -33225.6
    assert res.customers == 11_104 and res.periods == 6 and res.converged
    assert (res.params.ci_low < res.params.estimate).all() and (res.params.std_err > 0).all()


def test_bgbb_agrees_with_lifetimes(donations, donations_fit):
    lifetimes = pytest.importorskip("lifetimes")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = lifetimes.BetaGeoBetaBinomFitter().fit(donations.frequency, donations.recency, donations.periods, weights=donations.weights)
    ours = donations_fit
    np.testing.assert_allclose(ours.values, ref.params_[list(ours.NAMES)].to_numpy(), rtol=1e-4)
    np.testing.assert_allclose(ours.params.std_err, ref.standard_errors_[list(ours.NAMES)].to_numpy(), rtol=1e-3)
    f, r, n = donations.frequency, donations.recency, donations.periods
    for m in (1, 5, 10):
        np.testing.assert_allclose(ours.expected_purchases(donations, t=m), ref.conditional_expected_number_of_purchases_up_to_time(m, f, r, n), rtol=1e-4)
        np.testing.assert_allclose(ours.probability_alive(donations, ahead=m), ref.conditional_probability_alive(m, f, r, n), rtol=1e-4)
    # at lifetimes' own parameters the formulas agree to rounding
    ref.params_ = pd.Series(dict(zip(ours.NAMES, ours.values)))
    np.testing.assert_allclose(ours.expected_purchases(donations, t=5), ref.conditional_expected_number_of_purchases_up_to_time(5, f, r, n), rtol=1e-9)
    expected_new = ref.expected_number_of_transactions_in_first_n_periods(6)
    by_x = (expected_new["model"] / donations.weights.sum()) @ expected_new.index.to_numpy()
    assert ours.expected_purchases_new(6) == pytest.approx(by_x, rel=1e-9)


def _bgbb_by_integration(params, x, tx, n):
    """The BG/BB likelihood from its definition: a customer alive for k opportunities (dying before
    opportunity k+1, or alive through n) transacts with probability p at each; p ~ Beta(alpha, beta)
    and theta ~ Beta(gamma, delta) are independent, so each term is a product of two one-dimensional
    integrals, done numerically here (no beta functions)."""
    a, b, g, d = params

    def over_p(k):  # E[p^x (1-p)^(k-x)]
        return integrate.quad(lambda p: p**x * (1 - p) ** (k - x) * stats.beta.pdf(p, a, b), 0, 1, epsabs=0, epsrel=1e-11, limit=200)[0]

    def over_theta(f):
        return integrate.quad(lambda th: f(th) * stats.beta.pdf(th, g, d), 0, 1, epsabs=0, epsrel=1e-11, limit=200)[0]

    alive_through = over_p(n) * over_theta(lambda th: (1 - th) ** n)
    died = sum(over_p(k) * over_theta(lambda th, k=k: th * (1 - th) ** k) for k in range(tx, n))
    return math.log(alive_through + died)


@pytest.mark.parametrize("row", [(0, 0, 6), (1, 1, 6), (2, 5, 6), (6, 6, 6), (3, 4, 9)])
def test_bgbb_likelihood_equals_direct_integration(row):
    params = (1.2, 0.75, 1.66, 2.78)  # gamma > 1 keeps the Beta density bounded for quadrature
    x, tx, n = row
    assert bgbb_loglik(params, [x], [tx], [n])[0] == pytest.approx(_bgbb_by_integration(params, x, tx, n), rel=1e-8)


def _simulate_bgbb(n_customers, alpha, beta, gamma, delta, n, future, rng):
    """Calibration (x, t_x, n) and transactions in the next ``future`` opportunities, opportunity by
    opportunity; and whether each customer is alive at opportunity n."""
    p = rng.beta(alpha, beta, n_customers)
    th = rng.beta(gamma, delta, n_customers)
    life = rng.geometric(th) - 1  # opportunities survived before death
    x = np.zeros(n_customers, int)
    tx = np.zeros(n_customers, int)
    hold = np.zeros(n_customers, int)
    for j in range(1, n + future + 1):
        buy = (life >= j) & (rng.random(n_customers) < p)
        if j <= n:
            x += buy
            tx = np.where(buy, j, tx)
        else:
            hold += buy
    return pd.DataFrame({"frequency": x, "recency": tx, "periods": n}), hold, life >= n


def test_bgbb_planted_truth_and_predictions():
    truth = PUBLISHED_BGBB
    rng = np.random.default_rng(41)
    s, hold, alive = _simulate_bgbb(60_000, *truth.values(), n=6, future=5, rng=rng)
    patterns = s.groupby(["frequency", "recency", "periods"]).size().rename("n").reset_index()
    res = fit_bgbb(patterns)
    for name, value in truth.items():
        row = res.params.loc[name]
        assert abs(row.estimate - value) < 3.5 * row.std_err, name
    e = res.expected_purchases(s, t=5)
    pa = res.probability_alive(s)
    for group in (s.frequency == 0, s.frequency.between(1, 3), s.frequency > 3):
        g = group.to_numpy()
        assert e[g].sum() == pytest.approx(hold[g].sum(), rel=0.06)
    assert pa.mean() == pytest.approx(alive.mean(), abs=0.01)
    pred = res.predict(s.head(200), t=5)
    assert ((pred.expected_purchases_ci_low <= pred.expected_purchases) & (pred.expected_purchases <= pred.expected_purchases_ci_high)).all()
    last = (s.head(200).recency == 6).to_numpy()  # bought at the last opportunity: certainly alive
    assert (pred.probability_alive[last] == 1).all() and (pred.probability_alive_ci_low[last] == 1).all()
    inside = pred[~last]
    assert ((inside.probability_alive_ci_low > 0) & (inside.probability_alive_ci_low < inside.probability_alive)
            & (inside.probability_alive < inside.probability_alive_ci_high) & (inside.probability_alive_ci_high < 1)).all()


def test_bgbb_refuses_unequal_opportunities_and_impossible_patterns(donations):
    mixed = pd.concat([donations, donations.assign(periods=7)], ignore_index=True)
    with pytest.raises(
        ModelError, match=r"same number of transaction opportunities.*periods: 6 \(11,104 customers\), 7 \(11,104 customers\).*one acquisition cohort"
    ):
        fit_bgbb(mixed)
    bad = pd.DataFrame({"frequency": [3, 1, 0, 2], "recency": [2, 7, 1, 0], "periods": [6, 6, 6, 6], "weights": [1, 1, 1, 1]})
    with pytest.raises(DataError) as err:
        fit_bgbb(bad)
    text = str(err.value)
    assert "cannot exceed recency" in text and "recency must be <= periods" in text and "recency must be 0 when frequency is 0" in text
    with pytest.raises(ModelError, match="nobody transacted"):
        fit_bgbb(pd.DataFrame({"frequency": [0], "recency": [0], "periods": [6], "n": [500]}))
    with pytest.raises(ParameterError, match="whole number of opportunities"):
        fit_bgbb(donations).expected_purchases(donations, t=2.5)


# ----------------------------------------------------------------- the opportunity table
def test_repeat_opportunities_by_hand(tmp_path):
    folder = tmp_path / "rnd"
    folder.mkdir()
    for name, df in random_tables(n_users=300, seed=7).items():
        df.to_parquet(folder / f"{name}.parquet", index=False)
    ds = load_dataset(folder)
    cal = pd.Timestamp("2024-06-20")
    got = repeat_opportunities(ds, period="month", calibration_end=cal).to_pandas()
    events = pd.read_parquet(folder / "events.parquet")
    p = events[(events.event_type == "purchase") & (events.event_at.dt.normalize() <= cal)].copy()
    p["k"] = p.event_at.dt.year * 12 + p.event_at.dt.month - 1
    last = 2024 * 12 + 5 - 1  # May 2024: the last month that ended by 2024-06-20
    rows = []
    for _, g in p.groupby("user_id"):
        k0 = g.k.min()
        if k0 >= last:
            continue
        later = sorted(set(g.k[(g.k > k0) & (g.k <= last)]))
        rows.append((pd.Timestamp(year=k0 // 12, month=k0 % 12 + 1, day=1), len(later), (later[-1] - k0) if later else 0, last - k0))
    ref = (
        pd.DataFrame(rows, columns=["cohort", "frequency", "recency", "periods"])
        .groupby(["cohort", "frequency", "recency", "periods"])
        .size()
        .rename("n")
        .reset_index()
    )
    got["cohort"] = pd.to_datetime(got.cohort)
    pd.testing.assert_frame_equal(got, ref, check_dtype=False)
    assert got.groupby("cohort").periods.nunique().eq(1).all()  # one number of opportunities per cohort
    with pytest.raises(ParameterError, match="period="):
        repeat_opportunities(ds, period="day")
    with pytest.raises(ParameterError, match="after the observation end"):
        repeat_opportunities(ds, calibration_end="2031-01-01")


def test_cdnow_monthly_cohorts_fit_bgbb_one_at_a_time():
    t = repeat_opportunities(load_dataset("cdnow-sample"), period="month", calibration_end="1998-06-30").to_pandas()
    assert t.groupby("cohort").n.sum().tolist() == [781, 857, 719] and t.groupby("cohort").periods.first().tolist() == [17, 16, 15]
    with pytest.raises(ModelError, match="one acquisition cohort"):
        fit_bgbb(t)
    res = fit_bgbb(t[t.cohort == t.cohort.min()])
    assert res.periods == 17 and res.customers == 781


# ----------------------------------------------------------------- MBG/NBD
@pytest.fixture(scope="module")
def cdnow_summary():
    return repeat_summary(load_dataset("cdnow-sample"), time_unit="week", calibration_end="1997-09-30", holdout_end="1998-06-30").to_pandas()


def test_mbgnbd_agrees_with_lifetimes(cdnow_summary):
    lifetimes = pytest.importorskip("lifetimes")
    s = cdnow_summary
    ours = fit_mbgnbd(s, time_unit="week")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = lifetimes.ModifiedBetaGeoFitter().fit(s.frequency, s.recency, s["T"])
    np.testing.assert_allclose(ours.values, ref.params_[["r", "alpha", "a", "b"]].to_numpy(), rtol=1e-4)
    np.testing.assert_allclose(ours.params.std_err, ref.standard_errors_[["r", "alpha", "a", "b"]].to_numpy(), rtol=1e-3)
    f, r, T = s.frequency, s.recency, s["T"]
    theirs = mbgnbd_loglik(ref.params_[["r", "alpha", "a", "b"]].to_numpy(), f.to_numpy(float), r.to_numpy(float), T.to_numpy(float)).sum()
    assert theirs <= ours.loglik + 1e-6 and theirs == pytest.approx(ours.loglik, abs=1e-3)  # the same optimum
    for t in (1.0, 39.0):
        np.testing.assert_allclose(ours.expected_purchases(s, t=t), ref.conditional_expected_number_of_purchases_up_to_time(t, f, r, T), rtol=1e-4)
    np.testing.assert_allclose(ours.probability_alive(s), ref.conditional_probability_alive(f, r, T), rtol=1e-4)
    np.testing.assert_allclose(ours.expected_purchases_new([10.0, 39.0]), ref.expected_number_of_purchases_up_to_time(np.array([10.0, 39.0])), rtol=1e-4)
    # at lifetimes' parameters the formulas agree to rounding
    ref.params_ = pd.Series(dict(zip(["r", "alpha", "a", "b"], ours.values)))
    np.testing.assert_allclose(ours.expected_purchases(s, t=39.0), ref.conditional_expected_number_of_purchases_up_to_time(39.0, f, r, T), rtol=1e-9)


def test_mbgnbd_analytic_gradient_matches_numerical(cdnow_summary):
    from statsmodels.tools import numdiff

    s = cdnow_summary
    x, tx, T = (s[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    p = np.array([0.52, 6.2, 0.89, 1.6])
    _, g = mbgnbd_loglik(p, x, tx, T, gradient=True)
    num = numdiff.approx_fprime(p, lambda q: mbgnbd_loglik(q, x, tx, T).sum(), centered=True)
    np.testing.assert_allclose(g.sum(axis=0), num, rtol=1e-6)


def test_mbgnbd_planted_truth():
    """Customers may drop out at time 0 (before any repeat purchase) and after each purchase."""
    r, alpha, a, b = 0.5, 6.0, 0.9, 2.0
    rng = np.random.default_rng(43)
    n = 40_000
    T = (273 - rng.integers(0, 84, n)) / 7.0
    lam = rng.gamma(r, 1 / alpha, n)
    p = rng.beta(a, b, n)
    dead = rng.random(n) < p  # dropped out at time 0
    clock = np.zeros(n)
    x = np.zeros(n, int)
    tx = np.zeros(n)
    running = ~dead
    while running.any():
        i = np.flatnonzero(running)
        clock[i] += rng.exponential(1 / lam[i])
        over = clock[i] > T[i]
        running[i[over]] = False
        buy = i[~over]
        x[buy] += 1
        tx[buy] = np.floor(clock[buy] * 7) / 7
        drop = buy[rng.random(buy.size) < p[buy]]
        running[drop] = False
    res = fit_mbgnbd(pd.DataFrame({"frequency": x, "recency": tx, "T": T}))
    for name, value in dict(r=r, alpha=alpha, a=a, b=b).items():
        row = res.params.loc[name]
        assert abs(row.estimate - value) < 3.5 * row.std_err, (name, row.estimate)
    assert (res.probability_alive(pd.DataFrame({"frequency": [0], "recency": [0.0], "T": [30.0]})) < 1).all()
