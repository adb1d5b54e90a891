"""Invitation experiments and referrals: SRM against scipy's chi-square, ITT
against statsmodels and the textbook formula, CACE against the Wald ratio and
its influence-function variance, CUPED against regression adjustment,
power against NormalIndPower, planted truth and interval coverage on direct
draws and on the simulator, and clear errors on bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from workbench.errors import ModelError, ParameterError
from workbench.models import experiments as ex
from workbench.models import referrals as rf


def draw_experiment(n: int, seed: int, *, complier_share=0.4, always_share=0.15, effect=0.08, base=0.6, arm="invited",
                    invited_share=0.5):
    """One-row-per-user outcomes with planted truth: compliers take part only if
    invited, always-takers always; taking part raises the retention probability
    by ``effect`` (for everyone who takes part), so CACE = effect and
    ITT = complier_share * effect. ``pre_activity`` predicts retention."""
    rng = np.random.default_rng(seed)
    z = rng.random(n) < invited_share
    u = rng.random(n)
    complier = u < complier_share
    always = (u >= complier_share) & (u < complier_share + always_share)
    d = (always | (complier & z)).astype(int)
    pre = rng.poisson(5, n)
    p = np.clip(base + effect * d + 0.02 * (pre - 5), 0, 1)
    y = (rng.random(n) < p).astype(int)
    return pd.DataFrame({"user_id": [f"u{i}" for i in range(n)], "arm": np.where(z, arm, "control"), "took_part": d,
                         "retained": y, "observed": 1, "pre_activity": pre})


# ----------------------------------------------------------------- SRM
def test_srm_matches_scipy_and_flags_a_broken_split():
    df = draw_experiment(10000, seed=1)
    res = ex.sample_ratio_mismatch(df)
    counts = df["arm"].value_counts().sort_index().to_numpy()
    chi2, p = stats.chisquare(counts)
    assert res.chi2 == pytest.approx(chi2) and res.p_value == pytest.approx(p)
    assert not res.mismatch
    skewed = pd.concat([df, df[df.arm == "invited"].iloc[:800]])  # 800 duplicated invitations: p ~ 1e-7
    assert ex.sample_ratio_mismatch(skewed).mismatch
    planned = ex.sample_ratio_mismatch(draw_experiment(10000, seed=2, invited_share=0.3), allocation={"control": 0.7, "invited": 0.3})
    assert not planned.mismatch and planned.counts.loc["invited", "intended_share"] == 0.3
    assert ex.sample_ratio_mismatch(draw_experiment(10000, seed=2, invited_share=0.3)).mismatch  # against 50/50
    assert res.to_metrics()["experiment.srm_p_value"] == pytest.approx(p)


def test_srm_bad_allocation():
    df = draw_experiment(1000, seed=3)
    with pytest.raises(ParameterError, match="sum to 1"):
        ex.sample_ratio_mismatch(df, allocation={"control": 0.5, "invited": 0.6})
    with pytest.raises(ParameterError, match="no share for arm"):
        ex.sample_ratio_mismatch(df, allocation={"control": 1.0})
    with pytest.raises(ModelError, match="no user was assigned"):
        ex.sample_ratio_mismatch(df, allocation={"control": 0.4, "invited": 0.4, "invitd": 0.2})


# ----------------------------------------------------------------- ITT
def test_itt_matches_textbook_formula():
    df = draw_experiment(8000, seed=4)
    df.loc[df.index[:300], "observed"] = 0
    res = ex.itt_retention(df)
    obs = df[df.observed == 1]
    y1 = obs.loc[obs.arm == "invited", "retained"]
    y0 = obs.loc[obs.arm == "control", "retained"]
    diff = y1.mean() - y0.mean()
    se = np.sqrt(y1.mean() * (1 - y1.mean()) / len(y1) + y0.mean() * (1 - y0.mean()) / len(y0))
    assert res.difference == pytest.approx(diff)
    assert res.std_err == pytest.approx(se)
    assert res.ci_low == pytest.approx(diff - 1.959963984540054 * se) and res.ci_high == pytest.approx(diff + 1.959963984540054 * se)
    assert res.p_value == pytest.approx(2 * stats.norm.sf(abs(diff / se)))
    assert res.excluded_unobserved == 300
    assert res.rates.loc["invited", "users"] == len(y1)
    assert set(res.to_metrics()) == {"experiment.itt", "experiment.itt_ci_low", "experiment.itt_ci_high", "experiment.itt_p_value"}


def test_itt_and_cace_cover_planted_truth():
    """Over 300 direct draws the 95% intervals cover ITT = 0.4 * 0.08 and CACE = 0.08
    between 92% and 98% of the time (binomial sd of the rate ~1.3 points)."""
    n_rep, itt_hits, cace_hits = 300, 0, 0
    for seed in range(n_rep):
        df = draw_experiment(4000, seed=100 + seed)
        i = ex.itt_retention(df)
        c = ex.cace(df)
        itt_hits += i.ci_low < 0.4 * 0.08 < i.ci_high
        cace_hits += c.ci_low < 0.08 < c.ci_high
    assert 0.92 <= itt_hits / n_rep <= 0.98
    assert 0.92 <= cace_hits / n_rep <= 0.98


# ----------------------------------------------------------------- CACE
def test_cace_is_the_wald_ratio_with_influence_function_variance():
    df = draw_experiment(20000, seed=5)
    res = ex.cace(df)
    z = (df.arm == "invited").to_numpy().astype(float)
    y, d = df.retained.to_numpy(float), df.took_part.to_numpy(float)
    dy = y[z == 1].mean() - y[z == 0].mean()
    dd = d[z == 1].mean() - d[z == 0].mean()
    assert res.estimate == pytest.approx(dy / dd, rel=1e-9)
    assert res.complier_share == pytest.approx(dd)
    # just-identified IV: HC0 variance = sum u^2 (z - zbar)^2 / (sum (d - dbar)(z - zbar))^2, HC1 scales by n / (n - 2)
    a = y.mean() - res.estimate * d.mean()
    u = y - a - res.estimate * d
    n = len(y)
    var = (u**2 * (z - z.mean()) ** 2).sum() / (((d - d.mean()) * (z - z.mean())).sum() ** 2) * n / (n - 2)
    assert res.std_err == pytest.approx(np.sqrt(var), rel=1e-9)
    assert res.ci_low < 0.08 < res.ci_high
    assert res.first_stage_f > 1000
    assert res.itt == pytest.approx(dy)


def test_cace_without_first_stage_is_a_clear_error():
    df = draw_experiment(3000, seed=6, complier_share=0.0)
    df["took_part"] = 0
    with pytest.raises(ModelError, match="did not change taking part"):
        ex.cace(df)


# ----------------------------------------------------------------- CUPED
def test_cuped_reduces_variance_and_keeps_the_target():
    df = draw_experiment(20000, seed=7)
    plain = ex.itt_retention(df)
    cu = ex.cuped(df, covariates=["pre_activity"])
    assert cu.std_err < plain.std_err
    r = np.corrcoef(df.pre_activity, df.retained)[0, 1]
    assert cu.variance_reduction == pytest.approx(r**2, abs=0.01)
    # same target as regression adjustment (OLS of y on arm and centred covariate)
    import statsmodels.api as sm

    X = sm.add_constant(np.column_stack([(df.arm == "invited").astype(float), df.pre_activity - df.pre_activity.mean()]))
    ols = sm.OLS(df.retained.astype(float), X).fit()
    assert cu.estimate == pytest.approx(ols.params.iloc[1], abs=2e-4)
    assert cu.theta["pre_activity"] == pytest.approx(0.02, abs=0.004)
    assert abs(cu.estimate - 0.4 * 0.08) < 3 * cu.std_err


def test_cuped_constant_covariates():
    df = draw_experiment(3000, seed=8).assign(flat=0)
    cu = ex.cuped(df, covariates=["flat", "pre_activity"])
    assert cu.dropped == ("flat",) and cu.covariates == ("pre_activity",)
    with pytest.raises(ModelError, match="every covariate is constant"):
        ex.cuped(df, covariates=["flat"])
    with pytest.raises(ModelError, match="does not vary within the arms"):  # everyone churned: it used to divide by zero
        ex.cuped(df.assign(retained=0), covariates=["pre_activity"])


# ----------------------------------------------------------------- power
def test_power_mde_round_trip():
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    res = ex.power_mde(n_per_arm=5000, baseline_rate=0.64, alpha=0.05, power=0.8)
    h = proportion_effectsize(0.64 + res.mde, 0.64)
    achieved = NormalIndPower().power(effect_size=h, nobs1=5000, alpha=0.05, ratio=1.0)
    assert achieved == pytest.approx(0.8, abs=1e-4)  # solve_power's root-finding tolerance
    assert 0.02 < res.mde < 0.03  # ~2.8 sd of a difference of two 64% rates at n = 5000
    bigger = ex.power_mde(n_per_arm=20000, baseline_rate=0.64)
    assert bigger.mde == pytest.approx(res.mde / 2, rel=0.05)  # MDE ~ 1/sqrt(n)
    assert res.curve["mde"].is_monotonic_decreasing
    assert res.to_metrics()["experiment.mde"] == res.mde
    with pytest.raises(ParameterError, match="baseline_rate"):
        ex.power_mde(n_per_arm=100, baseline_rate=1.2)
    with pytest.raises(ParameterError, match="n_per_arm"):
        ex.power_mde(n_per_arm=1.5, baseline_rate=0.5)



def test_invitation_plots_in_the_house_style():
    """Rates from 0, arms in their role colours, differences in points, left-aligned titles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from workbench.plots import experiments as ep
    from workbench.plots import style

    df = draw_experiment(6000, seed=11)
    itt = ex.itt_retention(df)
    fig = ep.plot_experiment(itt, cace=ex.cace(df), truth={"itt": 0.032, "cace": 0.08})
    bars, effects = fig.axes
    assert bars.get_ylim()[0] == 0 and bars.get_title(loc="left") == "Retention by arm"
    assert [matplotlib.colors.to_hex(p.get_facecolor()) for p in bars.patches][0] == style.color("control").lower()
    assert bars.yaxis.get_major_formatter()(0.6, 0) == "60%"
    assert effects.xaxis.get_major_formatter()(0.032, 0) == "+3.2"
    assert "percentage points" in effects.get_xlabel()
    fig = ep.plot_power(ex.power_mde(n_per_arm=5000, baseline_rate=0.6), observed=0.03)
    ax = fig.axes[0]
    assert ax.get_ylim()[0] == 0 and "points" in ax.get_ylabel()
    assert ax.xaxis.get_major_formatter()(10000, 0) == "10,000"
    plt.close("all")


# ----------------------------------------------------------------- arms and names
def test_missing_control_arm_is_a_clear_error():
    df = draw_experiment(1000, seed=9)
    df["arm"] = df["arm"].replace({"control": "baseline"})
    for fn in (ex.itt_retention, ex.cace, ex.sample_ratio_mismatch):
        with pytest.raises(ModelError, match="no arm is named 'control' \\(arms: baseline, invited\\)"):
            fn(df)
    with pytest.raises(ModelError, match="no treatment arm"):
        ex.itt_retention(df.assign(arm="control"))


def test_several_treatment_arms_need_a_choice():
    df = draw_experiment(3000, seed=10)
    df.loc[df.index[::3], "arm"] = "invited_email"
    with pytest.raises(ParameterError, match="several treatment arms"):
        ex.itt_retention(df)
    res = ex.itt_retention(df, treatment_arm="invited_email")
    assert res.treatment_arm == "invited_email" and res.rates.loc["invited_email", "users"] == 1000
    with pytest.raises(ModelError, match="'invited_sms' missing"):
        ex.itt_retention(df, treatment_arm="invited_sms")


def test_unknown_experiment_name():
    with pytest.raises(ParameterError, match="'cocreation_invte' does not exist.*'cocreation_invite'"):
        ex.check_experiment("cocreation_invte", ["cocreation_invite", "onboarding"])
    ex.check_experiment("onboarding", ["cocreation_invite", "onboarding"])


# ----------------------------------------------------------------- simulator
@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    from workbench.data import load_dataset
    from workbench.data.simulate import simulate

    out = tmp_path_factory.mktemp("sim") / "experiment"
    s = simulate(users=20000, seed=4, out=out, progress=False)
    return s.truth, load_dataset(out)


def test_simulated_experiment_recovers_itt_and_cace(sim):
    from workbench import tables

    truth, ds = sim
    eo = tables.experiment_outcomes(ds, "cocreation_invite", horizon_days=90).to_pandas()
    itt = ex.itt_retention(eo)
    cace = ex.cace(eo)
    pop = truth["experiment"]["population"]
    assert itt.ci_low < pop["itt_retention"] < itt.ci_high
    assert cace.ci_low < pop["cace_retention"] < cace.ci_high
    assert cace.complier_share == pytest.approx(pop["complier_share"], abs=0.03)
    assert not ex.sample_ratio_mismatch(eo).mismatch
    with pytest.raises(ParameterError, match="not in dataset"):
        tables.experiment_outcomes(ds, "no_such_experiment").to_pandas()


def test_simulated_referral_rate_ratio_within_calendar_time(sim):
    """The pooled ratio is biased by the falling base rate; comparing within
    calendar periods recovers the planted 2."""
    truth, ds = sim
    from workbench import tables

    table = tables.referrals(ds, exposure="feedback", churn="cancel", period_days=28).to_pandas()
    planted = truth["referrals"]["rate_ratio_cocreator"]
    within = rf.referral_rate_ratio(table, adjust_for=["segment"], period="period")
    rr, lo, hi = within.rate_ratio()
    assert lo < planted < hi
    pooled = rf.referral_rate_ratio(tables.referrals(ds, exposure="feedback", churn="cancel").to_pandas(),
                                    adjust_for=["segment"])
    assert pooled.rate_ratio()[2] < planted  # the pooled comparison misses it
    nb = rf.referral_rate_ratio(table, adjust_for=["segment"], period="period", family="negative_binomial")
    assert nb.rate_ratio()[1] < planted < nb.rate_ratio()[2]


def test_referral_errors():
    df = pd.DataFrame({"user_id": ["a", "a", "b"], "exposed": [0, 1, 0], "exposure_days": [10.0, 5.0, 20.0], "referrals": [1, 0, 2]})
    with pytest.raises(ModelError, match="co-creators made no referrals"):
        rf.referral_rate_ratio(df)
    with pytest.raises(ModelError, match="nobody co-created"):
        rf.referral_rate_ratio(df[df.exposed == 0])
    with pytest.raises(ParameterError, match="family"):
        rf.referral_rate_ratio(df, family="binomial")


@pytest.mark.slow
def test_coverage_over_100_simulated_datasets():
    """The simulator-based coverage run (benchmarks/coverage_retention.py) at a
    smaller size: 95% intervals of the adjusted HR and of the ITT cover the
    truth in 90-98% of 100 datasets."""
    import importlib.util
    import tempfile
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("coverage_retention", Path(__file__).resolve().parents[1] / "benchmarks" / "coverage_retention.py")
    cov = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cov)
    with tempfile.TemporaryDirectory() as tmp:
        rows = [cov.one_dataset(5000 + i, 3000, Path(tmp) / "d") for i in range(100)]
    s = cov.summarize(rows)
    assert 0.90 <= s["coverage.hr_adjusted"] <= 0.98
    assert 0.90 <= s["coverage.itt_population"] <= 0.98
    assert s["mean.hr_naive"] < s["planted_hr"] - 0.15


def test_referral_covariate_level_with_no_referrals_is_a_clear_error():
    rng = np.random.default_rng(3)
    n = 400
    df = pd.DataFrame({
        "user_id": [f"u{i}" for i in range(n)],
        "exposed": np.tile([0, 1], n // 2),
        "exposure_days": rng.uniform(10, 100, n),
        "region": np.repeat(["north", "south"], n // 2),
    })
    df["referrals"] = np.where(df["region"] == "south", 0, rng.poisson(0.05 * df["exposure_days"]))
    with pytest.raises(ModelError, match=r"region\[.*south"):
        rf.referral_rate_ratio(df, adjust_for=["region"])
