"""Scaling laws (workbench.models.scaling): statsmodels as oracle, the
covariance estimators checked against identities, planted truth (one panel,
the simulator's KPI panel, coverage over repeated panels), law selection and
clear errors."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from scipy import stats
from scipy.linalg import toeplitz

from workbench.errors import ModelError, ParameterError
from workbench.models.scaling import (
    ScalingDataWarning,
    ar1_covariance,
    ewc_covariance,
    fit_scaling,
    law_offset,
)

from conftest import REPO


def _bench():
    spec = importlib.util.spec_from_file_location("coverage_growth", REPO / "benchmarks" / "coverage_growth.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def bench():
    return _bench()


def _one_unit(seed=1, periods=48, beta=1.3, c=0.05):
    rng = np.random.default_rng(seed)
    users = np.geomspace(1e3, 1e6, periods) * np.exp(rng.normal(0, 0.1, periods))
    revenue = c * users**beta * np.exp(rng.normal(0, 0.2, periods))
    return pd.DataFrame({"period": pd.date_range("2020-01-01", periods=periods, freq="MS"), "users": users, "revenue": revenue})


# ----------------------------------------------------------------- oracles
def test_single_unit_power_law_equals_statsmodels_ols_with_hac():
    d = _one_unit()
    r = fit_scaling(d, cov_type="hac", maxlags=3)
    ref = sm.OLS(np.log(d["revenue"]), sm.add_constant(np.log(d["users"]))).fit(cov_type="HAC", cov_kwds={"maxlags": 3}, use_t=True)
    assert r.exponent == pytest.approx(ref.params.iloc[1], rel=1e-10)
    assert r.exponent_std_err == pytest.approx(ref.bse.iloc[1], rel=1e-8)
    np.testing.assert_allclose(r.exponent_ci, ref.conf_int().iloc[1], rtol=1e-8)
    # same Gaussian likelihood and information criteria as statsmodels
    assert r.laws.loc["power", "aic"] == pytest.approx(ref.aic, rel=1e-10)
    assert r.laws.loc["power", "bic"] == pytest.approx(ref.bic, rel=1e-10)


def test_fixed_laws_fit_only_the_scale():
    d = _one_unit()
    r = fit_scaling(d, cov_type="nonrobust")
    n = len(d)
    for law, offset in (("linear", np.log(d["users"])), ("metcalfe", 2 * np.log(d["users"])), ("odlyzko", np.log(d["users"]) + np.log(np.log(d["users"])))):
        resid = np.log(d["revenue"]) - offset
        assert r.laws.loc[law, "log_scale"] == pytest.approx(resid.mean())
        rss = float(((resid - resid.mean()) ** 2).sum())
        llf = -n / 2 * (np.log(2 * np.pi * rss / n) + 1)
        assert r.laws.loc[law, "llf"] == pytest.approx(llf)
        assert r.laws.loc[law, "bic"] == pytest.approx(-2 * llf + np.log(n))
    np.testing.assert_allclose(law_offset("odlyzko", [np.e**2]), [2 + np.log(2)])


def test_panel_with_unit_effects_equals_statsmodels_formula_with_cluster(bench):
    panel = bench.draw_scaling_panel(np.random.default_rng(5), units=6, periods=30)
    r = fit_scaling(panel)  # several units: cluster by unit
    assert r.cov_type == "cluster" and r.n_units == 6
    ref = smf.ols("np.log(revenue) ~ 0 + C(unit) + np.log(users)", data=panel).fit(
        cov_type="cluster", cov_kwds={"groups": pd.Categorical(panel["unit"]).codes}, use_t=True
    )
    assert r.exponent == pytest.approx(ref.params["np.log(users)"], rel=1e-9)
    assert r.exponent_std_err == pytest.approx(ref.bse["np.log(users)"], rel=1e-8)
    np.testing.assert_allclose(r.exponent_ci, ref.conf_int().loc["np.log(users)"], rtol=1e-8)
    effects = ref.params[[f"C(unit)[{u}]" for u in sorted(panel["unit"].unique())]].to_numpy()
    np.testing.assert_allclose(r.unit_effects["power"], effects, rtol=1e-9)
    assert r.laws.loc["power", "log_scale"] == pytest.approx(effects.mean())


def test_ewc_with_all_cosines_is_white_times_t_over_t_minus_one():
    d = _one_unit(periods=30)
    X = sm.add_constant(np.log(d["users"].to_numpy()))
    y = np.log(d["revenue"].to_numpy())
    res = sm.OLS(y, X).fit(cov_type="HC0")
    T = len(y)
    cov = ewc_covariance(X, res.resid, np.arange(T), T - 1)
    np.testing.assert_allclose(cov, res.cov_params() * T / (T - 1), rtol=1e-9)


def test_ar1_covariance_is_the_sandwich_with_a_toeplitz_error_covariance():
    d = _one_unit(periods=40)
    X = sm.add_constant(np.log(d["users"].to_numpy()))
    e = sm.OLS(np.log(d["revenue"].to_numpy()), X).fit().resid
    cov, rho = ar1_covariance(X, e, np.zeros(40, int), np.arange(40))
    raw = np.sum(e[1:] * e[:-1]) / np.sum(e**2)
    assert rho == pytest.approx(raw + (1 + 3 * raw) / 40)
    S = (e @ e / 38) * toeplitz(rho ** np.arange(40))
    B = np.linalg.inv(X.T @ X)
    np.testing.assert_allclose(cov, B @ X.T @ S @ X @ B, rtol=1e-10)


def test_ar1_standard_errors_grow_with_autocorrelated_noise():
    rng = np.random.default_rng(2)
    T = 80
    users = np.geomspace(1e3, 1e6, T)
    white = rng.normal(0, 0.1, T)
    ar = np.zeros(T)
    for t in range(1, T):
        ar[t] = 0.8 * ar[t - 1] + rng.normal(0, 0.06)
    period = pd.date_range("2020-01-01", periods=T, freq="MS")
    se_white = fit_scaling(pd.DataFrame({"period": period, "users": users, "revenue": users**1.2 * np.exp(white)})).exponent_std_err
    nonrobust_white = fit_scaling(
        pd.DataFrame({"period": period, "users": users, "revenue": users**1.2 * np.exp(white)}), cov_type="nonrobust"
    ).exponent_std_err
    d_ar = pd.DataFrame({"period": period, "users": users, "revenue": users**1.2 * np.exp(ar)})
    assert se_white == pytest.approx(nonrobust_white, rel=0.25)
    assert fit_scaling(d_ar).exponent_std_err > 2 * fit_scaling(d_ar, cov_type="nonrobust").exponent_std_err


# ----------------------------------------------------------------- planted truth
def test_planted_panel_recovers_beta_and_picks_the_power_law(bench):
    panel = bench.draw_scaling_panel(np.random.default_rng(11))
    r = fit_scaling(panel, holdout_periods=6)
    lo, hi = r.exponent_ci
    assert lo <= 1.3 <= hi and r.exponent == pytest.approx(1.3, abs=0.05)
    assert r.best_law == "power"
    assert r.laws["oos_rmse"].idxmin() == "power"
    # the mean unit effect estimates log c
    assert r.laws.loc["power", "log_scale"] == pytest.approx(np.log(0.05), abs=0.6)
    m = r.to_metrics()
    assert m["scaling.best_law"] == "power" and m["scaling.power.exponent_ci_low"] == lo and m["scaling.power.exponent_ci_high"] == hi


@pytest.mark.parametrize("beta, law", [(2.0, "metcalfe"), (1.0, "linear")])
def test_a_planted_fixed_law_is_chosen_by_bic(bench, beta, law):
    """When the truth is a fixed law, BIC prefers it to the free power law (parsimony)."""
    picks = [fit_scaling(bench.draw_scaling_panel(np.random.default_rng(s), beta=beta)).best_law for s in range(10)]
    assert picks.count(law) >= 8, picks


def test_holdout_error_is_the_error_of_the_earlier_fit_on_later_periods():
    d = _one_unit(periods=40)
    r = fit_scaling(d, holdout_periods=8)
    train, test = d.iloc[:32], d.iloc[32:]
    ref = sm.OLS(np.log(train["revenue"]), sm.add_constant(np.log(train["users"]))).fit()
    pred = ref.params.iloc[0] + ref.params.iloc[1] * np.log(test["users"])
    rmse = np.sqrt(np.mean((np.log(test["revenue"]) - pred) ** 2))
    assert r.laws.loc["power", "oos_rmse"] == pytest.approx(rmse)
    assert r.data["holdout"].sum() == 8
    # the reported estimates still use every period
    full = sm.OLS(np.log(d["revenue"]), sm.add_constant(np.log(d["users"]))).fit()
    assert r.exponent == pytest.approx(full.params.iloc[1])
    assert fit_scaling(d, holdout_periods=8, select="oos").best_law == r.laws["oos_rmse"].idxmin()


def test_simulator_kpi_panel_end_to_end(tiny_dataset):
    from workbench.data import load_dataset

    truth = json.loads((tiny_dataset / "truth.json").read_text())["scaling"]
    ds = load_dataset(tiny_dataset)
    r = fit_scaling(ds.kpis.to_pandas(), holdout_periods=6)
    lo, hi = r.exponent_ci
    assert r.n_units == 5 and r.cov_type == "cluster" and r.cov_df == 4
    # close to the planted value; whether this one interval covers it is a
    # 95% event (with this seed it just misses: 1.31-1.37 for 1.30), so the
    # coverage rate is checked over repeated panels in the coverage test below
    assert r.exponent == pytest.approx(truth["beta"], abs=0.05) and 0.01 < hi - lo < 0.2
    assert r.best_law == "power" and r.laws["oos_rmse"].idxmin() == "power"


def test_predict_follows_the_law():
    d = _one_unit()
    r = fit_scaling(d)
    assert r.predict([1000.0, 2000.0], law="power")[1] / r.predict([1000.0, 2000.0], law="power")[0] == pytest.approx(2**r.exponent)
    assert r.predict([1000.0, 2000.0], law="metcalfe")[1] / r.predict([1000.0, 2000.0], law="metcalfe")[0] == pytest.approx(4.0)
    with pytest.raises(ParameterError, match="not fitted"):
        r.predict([1.0], law="quadratic")


def test_exponent_interval_coverage_over_repeated_panels(bench):
    """400 panels like the simulator's (5 markets x 36 months, AR(1) noise)."""
    table = bench.scaling_coverage(400, units=5, periods=36)
    print(table.to_string())
    row = table.iloc[0]
    assert 0.90 <= row["coverage"] <= 0.98, row.to_dict()
    assert abs(row["bias"]) < 0.01 and row["power_law_best"] > 0.95


# ----------------------------------------------------------------- bad input
def test_missing_columns_name_what_exists():
    d = _one_unit().rename(columns={"users": "active_users"})
    with pytest.raises(ParameterError, match=r"\['users'\] not in the data.*active_users.*users='active_users'"):
        fit_scaling(d)
    assert fit_scaling(d, users="active_users").n_obs == len(d)


def test_too_few_periods_is_a_clear_error():
    with pytest.raises(ModelError, match="too little data.*3 period"):
        fit_scaling(_one_unit(periods=3))
    with pytest.raises(ModelError, match="holdout_periods=10 leaves 2"):
        fit_scaling(_one_unit(periods=12), holdout_periods=10)


def test_zero_revenue_rows_are_left_out_with_a_warning():
    d = _one_unit()
    d.loc[[3, 7], "revenue"] = 0.0
    with pytest.warns(ScalingDataWarning, match="left out 2 of 48"):
        r = fit_scaling(d)
    assert r.n_obs == 46 and r.dropped_rows == 2


def test_duplicate_periods_and_bad_options():
    d = _one_unit()
    with pytest.raises(ModelError, match="same \\(unit, period\\)"):
        fit_scaling(pd.concat([d, d.iloc[:2]]))
    with pytest.raises(ParameterError, match="unknown law"):
        fit_scaling(d, laws=("linear", "cubic"))
    with pytest.raises(ParameterError, match="select='oos' needs holdout_periods"):
        fit_scaling(d, select="oos")
    with pytest.raises(ParameterError, match="cov_type='cluster' needs several units"):
        fit_scaling(d, cov_type="cluster")
    with pytest.raises(ParameterError, match="DataFrame"):
        fit_scaling(d.to_numpy())


def test_summary_table_shape():
    r = fit_scaling(_one_unit(), holdout_periods=4)
    s = r.summary()
    assert list(s.columns) == ["estimate", "std_err", "ci_low", "ci_high"]
    assert "power.exponent" in s.index and "metcalfe.log_scale" in s.index
    assert s.loc["power.exponent", "estimate"] == r.exponent
    assert set(r.compare().columns) == {"exponent", "n_params", "aic", "bic", "rmse", "oos_rmse"}
    q = stats.t.ppf(0.975, r.cov_df)
    assert r.exponent_ci[1] - r.exponent == pytest.approx(q * r.exponent_std_err)
    assert "best law" in r._repr_html_()


def test_plot_draws_each_law_on_log_axes(bench):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from workbench.plots.scaling import plot_scaling

    r = fit_scaling(bench.draw_scaling_panel(np.random.default_rng(2)), holdout_periods=4)
    ax = plot_scaling(r)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    assert "power law (n^β) (best)" in lines and "Metcalfe (n²)" in lines
    x, y = lines["Metcalfe (n²)"].get_data()
    assert np.log(y[-1] / y[0]) / np.log(x[-1] / x[0]) == pytest.approx(2.0)
    plt.close("all")
