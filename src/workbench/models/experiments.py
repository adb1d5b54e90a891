"""Randomized invitation experiments: does inviting users to co-create keep
them around?

Input: ``workbench.tables.experiment_outcomes(ds, experiment, horizon_days=...)``
as pandas, one row per assigned user with ``arm`` (the control arm is named
``control``), ``took_part`` (co-created within the horizon), ``retained`` (not
churned by the horizon), ``observed`` (the whole horizon lies before the
observation end) and ``pre_activity`` (events in the 28 days before
assignment).

- :func:`sample_ratio_mismatch`: chi-square test of the arm counts against
  the intended allocation; a tiny p-value means the randomization or the
  logging is broken and no effect estimate can be trusted.
- :func:`itt_retention`: intent-to-treat difference in retention at the
  horizon (invited minus control) among users observed for the whole
  horizon, with a Wald interval and test (statsmodels
  ``confint_proportions_2indep`` / ``test_proportions_2indep``).
- :func:`cace`: the effect on those who took part *because* they were
  invited (complier average causal effect): two-stage least squares of
  retention on taking part, instrumented by the invitation (statsmodels
  ``IV2SLS``), with heteroskedasticity-robust (HC1) standard errors. Valid
  when the invitation changes retention only through taking part
  (exclusion) and nobody is put off taking part by the invitation
  (monotonicity).
- :func:`cuped`: the intent-to-treat difference with variance reduced by
  pre-assignment covariates (CUPED, Deng et al. 2013): subtract
  ``theta (X - mean X)`` from the outcome, ``theta`` from a pooled OLS of the
  outcome on ``X``; same target, narrower interval when ``X`` predicts
  retention.
- :func:`power_mde`: minimum detectable difference in retention for a
  planned design (statsmodels ``NormalIndPower`` on Cohen's h).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from workbench.data.contract import CONTROL_ARM
from workbench.errors import ModelError, ParameterError
from workbench.models.results import Result, summary_frame
from workbench.models.survival import _as_list, _numeric, _require_columns



# ===================================================================== input
def check_experiment(experiment: str, available) -> None:
    """ParameterError naming the experiments there are, if ``experiment`` is not one of them."""
    names = sorted(str(a) for a in available)
    if not isinstance(experiment, str) or experiment not in names:
        raise ParameterError(f"experiment {experiment!r} does not exist in this dataset's assignments; "
                             f"experiments there: {', '.join(map(repr, names)) or 'none'}. Set the experiment parameter to one of them.")


def _check_control(outcomes: pd.DataFrame, where: str) -> list[str]:
    _require_columns(outcomes, ["arm"], where, "Build it with workbench.tables.experiment_outcomes(ds, experiment).to_pandas().")
    if len(outcomes) == 0:
        raise ModelError(f"{where}: no assigned users; check the experiment name and the observation window.")
    arms = sorted(outcomes["arm"].astype(str).unique())
    if CONTROL_ARM not in arms:
        raise ModelError(f"{where}: no arm is named '{CONTROL_ARM}' (arms: {', '.join(arms)}). The control arm must be named "
                         f"'{CONTROL_ARM}' in assignments; rename it there.")
    return arms


def _arms(outcomes: pd.DataFrame, treatment_arm: str | None, where: str) -> str:
    """The treatment arm's name, after checking the arms."""
    arms = _check_control(outcomes, where)
    others = [a for a in arms if a != CONTROL_ARM]
    if not others:
        raise ModelError(f"{where}: every user is in '{CONTROL_ARM}'; there is no treatment arm to compare with.")
    if treatment_arm is None:
        if len(others) > 1:
            raise ParameterError(f"{where}: the experiment has several treatment arms ({', '.join(others)}); "
                                 "choose one with treatment_arm=...")
        treatment_arm = others[0]
    elif treatment_arm not in others:
        raise ModelError(f"{where}: treatment arm {treatment_arm!r} missing (arms: {', '.join(arms)}).")
    return treatment_arm


def _two_arm_frame(outcomes, treatment_arm, where, columns, observed_only=True):
    arm = _arms(outcomes, treatment_arm, where)
    _require_columns(outcomes, columns, where)
    df = outcomes.loc[outcomes["arm"].astype(str).isin([CONTROL_ARM, arm])]
    excluded = 0
    if observed_only and "observed" in df.columns:
        obs = _numeric(df, "observed", where) > 0
        excluded = int((~obs).sum())
        df = df.loc[obs]
    z = (df["arm"].astype(str) == arm).to_numpy().astype(float)
    for level, name in ((1.0, arm), (0.0, CONTROL_ARM)):
        if (z == level).sum() < 2:
            raise ModelError(f"{where}: arm {name!r} has {(z == level).sum()} user(s) observed for the whole horizon; "
                             "an estimate needs more (a shorter horizon or a later observation end).")
    return df, z, arm, excluded


# ===================================================================== SRM
@dataclass(frozen=True)
class SRMResult(Result):
    """Sample-ratio-mismatch check: arm counts against the intended allocation."""

    counts: pd.DataFrame
    chi2: float
    df: int
    p_value: float
    threshold: float

    @property
    def mismatch(self) -> bool:
        return bool(self.p_value < self.threshold)

    def summary(self) -> pd.DataFrame:
        return self.counts

    def to_metrics(self, prefix: str = "experiment") -> dict:
        return {f"{prefix}.srm_p_value": self.p_value, f"{prefix}.srm_chi2": self.chi2}

    def _repr_html_(self) -> str:
        verdict = ("<b>sample ratio mismatch: do not trust the effect estimates</b>" if self.mismatch
                   else "no sample ratio mismatch")
        return (f"<strong>Sample ratio check</strong>: chi2 = {self.chi2:.2f} ({self.df} df), p = {self.p_value:.3g}: {verdict}"
                + self.counts.to_html(float_format=lambda v: f"{v:,.4g}"))


def sample_ratio_mismatch(outcomes: pd.DataFrame, *, allocation: dict | None = None, threshold: float = 0.001) -> SRMResult:
    """Chi-square goodness-of-fit test of users per arm (all assigned users,
    observed or not) against ``allocation`` (arm -> intended share; default
    equal shares). A p-value below ``threshold`` (default 0.001, the usual
    SRM alarm level) flags a mismatch."""
    where = "sample_ratio_mismatch"
    _check_control(outcomes, where)
    counts = outcomes["arm"].astype(str).value_counts().sort_index()
    arms = list(counts.index)
    if allocation is None:
        shares = pd.Series(1.0 / len(arms), index=arms)
    else:
        if not isinstance(allocation, dict) or not allocation:
            raise ParameterError(f"{where}: allocation must be a dict arm -> intended share, e.g. {{'control': 0.5, 'invited': 0.5}}")
        unknown = sorted(set(allocation) - set(arms))
        missing = sorted(set(arms) - set(allocation))
        if missing:
            raise ParameterError(f"{where}: allocation gives no share for arm(s) {', '.join(missing)} (arms: {', '.join(arms)}).")
        if unknown:
            raise ModelError(f"{where}: arm(s) {', '.join(unknown)} are in the allocation but no user was assigned to them: "
                             "that is itself a sample ratio mismatch (or a misspelt arm).")
        shares = pd.Series({a: float(allocation[a]) for a in arms})
        if (shares <= 0).any() or abs(shares.sum() - 1) > 1e-6:
            raise ParameterError(f"{where}: allocation shares must be positive and sum to 1, got {dict(shares)}")
    expected = shares * counts.sum()
    chi2, p = stats.chisquare(counts.to_numpy(dtype=float), expected.to_numpy())
    table = pd.DataFrame({"users": counts, "expected": expected, "share": counts / counts.sum(), "intended_share": shares})
    table.index.name = "arm"
    return SRMResult(counts=table, chi2=float(chi2), df=len(arms) - 1, p_value=float(p), threshold=threshold)


# ===================================================================== ITT
@dataclass(frozen=True)
class ITTResult(Result):
    """Intent-to-treat difference in retention at the horizon (treatment minus control)."""

    treatment_arm: str
    rates: pd.DataFrame
    difference: float
    std_err: float
    ci_low: float
    ci_high: float
    z: float
    p_value: float
    excluded_unobserved: int
    alpha: float = 0.05

    def summary(self) -> pd.DataFrame:
        t = summary_frame(["itt"], [self.difference], [self.std_err], [self.ci_low], [self.ci_high])
        t["p_value"] = self.p_value
        return t

    def to_metrics(self, prefix: str = "experiment") -> dict:
        return {f"{prefix}.itt": self.difference, f"{prefix}.itt_ci_low": self.ci_low, f"{prefix}.itt_ci_high": self.ci_high,
                f"{prefix}.itt_p_value": self.p_value}

    def _repr_html_(self) -> str:
        return (f"<strong>Intent-to-treat: retention, {self.treatment_arm} minus control</strong><br>"
                f"{self.difference:+.4f} ({self.ci_low:+.4f} to {self.ci_high:+.4f}), p = {self.p_value:.3g}; "
                f"{self.excluded_unobserved:,} users without a full horizon excluded" + self.rates.to_html(float_format=lambda v: f"{v:,.4g}"))


def _rates(df, z, arm, outcome):
    y = _numeric(df, outcome, "rates")
    return pd.DataFrame({"users": [int((z == 0).sum()), int((z == 1).sum())],
                         outcome: [float(y[z == 0].sum()), float(y[z == 1].sum())],
                         "rate": [float(y[z == 0].mean()), float(y[z == 1].mean())]},
                        index=pd.Index([CONTROL_ARM, arm], name="arm"))


def itt_retention(outcomes: pd.DataFrame, *, treatment_arm: str | None = None, outcome: str = "retained",
                  alpha: float = 0.05) -> ITTResult:
    """Difference in retention (``outcome``, 0/1) between ``treatment_arm``
    (default: the one arm that is not control) and control, among users
    observed for the whole horizon, with a Wald interval and Wald z-test
    (unpooled variances)."""
    from statsmodels.stats.proportion import confint_proportions_2indep, test_proportions_2indep

    where = "itt_retention"
    df, z, arm, excluded = _two_arm_frame(outcomes, treatment_arm, where, [outcome])
    y = _numeric(df, outcome, where)
    if not np.isin(y, (0.0, 1.0)).all():
        raise ModelError(f"{where}: {outcome!r} must be 0 or 1.")
    c1, n1 = y[z == 1].sum(), (z == 1).sum()
    c0, n0 = y[z == 0].sum(), (z == 0).sum()
    lo, hi = confint_proportions_2indep(c1, n1, c0, n0, method="wald", compare="diff", alpha=alpha)
    test = test_proportions_2indep(c1, n1, c0, n0, method="wald", compare="diff")
    diff = c1 / n1 - c0 / n0
    se = np.sqrt((c1 / n1) * (1 - c1 / n1) / n1 + (c0 / n0) * (1 - c0 / n0) / n0)
    return ITTResult(treatment_arm=arm, rates=_rates(df, z, arm, outcome), difference=float(diff), std_err=float(se),
                     ci_low=float(lo), ci_high=float(hi), z=float(test.statistic), p_value=float(test.pvalue),
                     excluded_unobserved=excluded, alpha=alpha)


# ===================================================================== CACE
@dataclass(frozen=True)
class CACEResult(Result):
    """Complier average causal effect of taking part on retention (2SLS)."""

    treatment_arm: str
    estimate: float
    std_err: float
    ci_low: float
    ci_high: float
    p_value: float
    took_part: pd.Series
    complier_share: float
    first_stage_f: float
    itt: float
    n: int
    alpha: float = 0.05

    def summary(self) -> pd.DataFrame:
        t = summary_frame(["cace", "complier_share"], [self.estimate, self.complier_share], [self.std_err, np.nan],
                          [self.ci_low, np.nan], [self.ci_high, np.nan])
        t["p_value"] = [self.p_value, np.nan]
        return t

    def to_metrics(self, prefix: str = "experiment") -> dict:
        return {f"{prefix}.cace": self.estimate, f"{prefix}.cace_ci_low": self.ci_low, f"{prefix}.cace_ci_high": self.ci_high,
                f"{prefix}.complier_share": self.complier_share, f"{prefix}.first_stage_f": self.first_stage_f}

    def _repr_html_(self) -> str:
        return (f"<strong>Complier average causal effect (2SLS, HC1)</strong><br>{self.estimate:+.4f} "
                f"({self.ci_low:+.4f} to {self.ci_high:+.4f}), p = {self.p_value:.3g}; invitation raised taking part by "
                f"{self.complier_share:.1%} (first-stage F = {self.first_stage_f:,.0f})")


def cace(outcomes: pd.DataFrame, *, treatment_arm: str | None = None, outcome: str = "retained", took_part: str = "took_part",
         alpha: float = 0.05) -> CACEResult:
    """Effect of taking part on retention among compliers (those who take
    part because they were invited): 2SLS of ``outcome`` on ``took_part``
    instrumented by being in ``treatment_arm``, via statsmodels ``IV2SLS``,
    with HC1 sandwich standard errors (computed from the 2SLS residuals,
    since the sandbox class offers only homoskedastic ones). With one binary
    instrument this is the Wald ratio ITT / (change in taking part)."""
    from statsmodels.sandbox.regression.gmm import IV2SLS

    where = "cace"
    df, z, arm, _ = _two_arm_frame(outcomes, treatment_arm, where, [outcome, took_part])
    y = _numeric(df, outcome, where)
    d = _numeric(df, took_part, where)
    n = len(y)
    share = d[z == 1].mean() - d[z == 0].mean()
    # first stage: d on z, F = t^2 with robust SE
    se_fs = np.sqrt(d[z == 1].var(ddof=1) / (z == 1).sum() + d[z == 0].var(ddof=1) / (z == 0).sum())
    if se_fs == 0 or abs(share) < 1e-12:
        raise ModelError(f"{where}: the invitation did not change taking part (share {d[z == 1].mean():.3f} invited vs "
                         f"{d[z == 0].mean():.3f} control), so it cannot identify the effect of taking part.")
    f_stat = float((share / se_fs) ** 2)
    X = np.column_stack([np.ones(n), d])
    Z = np.column_stack([np.ones(n), z])
    fit = IV2SLS(y, X, Z).fit()
    beta = np.asarray(fit.params)
    u = y - X @ beta
    Xhat = Z @ np.linalg.lstsq(Z, X, rcond=None)[0]
    bread = np.linalg.inv(Xhat.T @ Xhat)
    meat = (Xhat * (u**2)[:, None]).T @ Xhat
    V = bread @ meat @ bread * n / (n - X.shape[1])
    se = float(np.sqrt(V[1, 1]))
    zc = stats.norm.ppf(1 - alpha / 2)
    est = float(beta[1])
    return CACEResult(treatment_arm=arm, estimate=est, std_err=se, ci_low=est - zc * se, ci_high=est + zc * se,
                      p_value=float(2 * stats.norm.sf(abs(est / se))),
                      took_part=pd.Series({CONTROL_ARM: float(d[z == 0].mean()), arm: float(d[z == 1].mean())}, name="took_part"),
                      complier_share=float(share), first_stage_f=f_stat, itt=float(y[z == 1].mean() - y[z == 0].mean()), n=n,
                      alpha=alpha)


# ===================================================================== CUPED
@dataclass(frozen=True)
class CUPEDResult(Result):
    """Variance-reduced intent-to-treat difference (CUPED)."""

    treatment_arm: str
    estimate: float
    std_err: float
    ci_low: float
    ci_high: float
    p_value: float
    theta: pd.Series
    covariates: tuple
    dropped: tuple
    variance_reduction: float
    unadjusted_std_err: float
    n: int
    alpha: float = 0.05

    def summary(self) -> pd.DataFrame:
        t = summary_frame(["itt_cuped"], [self.estimate], [self.std_err], [self.ci_low], [self.ci_high])
        t["p_value"] = self.p_value
        return t

    def to_metrics(self, prefix: str = "experiment") -> dict:
        return {f"{prefix}.itt_cuped": self.estimate, f"{prefix}.itt_cuped_ci_low": self.ci_low,
                f"{prefix}.itt_cuped_ci_high": self.ci_high, f"{prefix}.cuped_variance_reduction": self.variance_reduction}

    def _repr_html_(self) -> str:
        dropped = f"; dropped (constant): {', '.join(self.dropped)}" if self.dropped else ""
        return (f"<strong>CUPED intent-to-treat</strong> (covariates: {', '.join(self.covariates)}{dropped})<br>"
                f"{self.estimate:+.4f} ({self.ci_low:+.4f} to {self.ci_high:+.4f}), p = {self.p_value:.3g}; variance reduced by "
                f"{self.variance_reduction:.1%} (std err {self.unadjusted_std_err:.4f} -> {self.std_err:.4f})")


def cuped(outcomes: pd.DataFrame, *, covariates=("pre_activity",), treatment_arm: str | None = None, outcome: str = "retained",
          alpha: float = 0.05) -> CUPEDResult:
    """CUPED: ``Y - theta (X - mean X)`` with ``theta`` the pooled OLS slope of
    ``outcome`` on the pre-assignment ``covariates`` (statsmodels ``OLS``),
    then the difference in means with unpooled (Welch) variance. Covariates
    that are constant among the analysed users (e.g. ``pre_activity`` when
    everyone is assigned at signup) are dropped and listed in ``dropped``;
    if none is left this raises ModelError. Numeric covariates only."""
    import statsmodels.api as sm

    where = "cuped"
    covariates = _as_list(covariates, "covariates")
    if not covariates:
        raise ParameterError(f"{where}: give at least one pre-assignment covariate, e.g. covariates=['pre_activity'].")
    df, z, arm, _ = _two_arm_frame(outcomes, treatment_arm, where, [outcome, *covariates])
    y = _numeric(df, outcome, where)
    keep, dropped, cols = [], [], []
    for c in covariates:
        x = _numeric(df, c, where)
        if np.ptp(x) == 0:
            dropped.append(c)
        else:
            keep.append(c)
            cols.append(x)
    if not keep:
        raise ModelError(f"{where}: every covariate is constant among these users ({', '.join(dropped)}), so CUPED cannot reduce "
                         "variance (e.g. pre_activity is 0 when users are assigned at signup). Add numeric pre-assignment user "
                         "attributes to covariates, or use the plain intent-to-treat estimate.")
    X = np.column_stack(cols)
    fit = sm.OLS(y, sm.add_constant(X, has_constant="add")).fit()
    theta = np.asarray(fit.params)[1:]
    y_adj = y - (X - X.mean(axis=0)) @ theta
    n1, n0 = (z == 1).sum(), (z == 0).sum()
    est = float(y_adj[z == 1].mean() - y_adj[z == 0].mean())
    se = float(np.sqrt(y_adj[z == 1].var(ddof=1) / n1 + y_adj[z == 0].var(ddof=1) / n0))
    se0 = float(np.sqrt(y[z == 1].var(ddof=1) / n1 + y[z == 0].var(ddof=1) / n0))
    zc = stats.norm.ppf(1 - alpha / 2)
    return CUPEDResult(treatment_arm=arm, estimate=est, std_err=se, ci_low=est - zc * se, ci_high=est + zc * se,
                       p_value=float(2 * stats.norm.sf(abs(est / se))), theta=pd.Series(theta, index=keep, name="theta"),
                       covariates=tuple(keep), dropped=tuple(dropped), variance_reduction=float(1 - (se / se0) ** 2),
                       unadjusted_std_err=se0, n=len(y), alpha=alpha)


# ===================================================================== power
@dataclass(frozen=True)
class PowerResult(Result):
    """Minimum detectable effect for a planned two-arm retention experiment."""

    n_per_arm: int
    baseline_rate: float
    alpha: float
    power: float
    ratio: float
    effect_size: float
    mde: float
    curve: pd.DataFrame = field(repr=False)

    @property
    def mde_relative(self) -> float:
        return self.mde / self.baseline_rate

    def summary(self) -> pd.DataFrame:
        return summary_frame(["mde", "mde_relative", "cohens_h"], [self.mde, self.mde_relative, self.effect_size])

    def to_metrics(self, prefix: str = "experiment") -> dict:
        return {f"{prefix}.mde": self.mde, f"{prefix}.mde_relative": self.mde_relative}

    def _repr_html_(self) -> str:
        return (f"<strong>Power</strong>: with {self.n_per_arm:,} users in control and {self.ratio * self.n_per_arm:,.0f} invited, "
                f"baseline retention {self.baseline_rate:.1%}, alpha {self.alpha}, power {self.power:.0%}: minimum detectable "
                f"difference {self.mde:+.2%} ({self.mde_relative:+.1%} relative)")


def _h_to_rate(p0: float, h: float) -> float:
    return float(np.sin(np.arcsin(np.sqrt(p0)) + h / 2) ** 2)


def power_mde(*, n_per_arm: int, baseline_rate: float, alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0,
              alternative: str = "two-sided") -> PowerResult:
    """Minimum detectable increase in retention for ``n_per_arm`` control
    users (and ``ratio`` times as many invited) at the given ``alpha`` and
    ``power``: statsmodels ``NormalIndPower`` solves for Cohen's h, turned
    back into a retention difference above ``baseline_rate``. ``curve`` holds
    the MDE for a range of sample sizes."""
    from statsmodels.stats.power import NormalIndPower

    where = "power_mde"
    if isinstance(n_per_arm, bool) or not isinstance(n_per_arm, numbers.Integral) or n_per_arm < 2:
        raise ParameterError(f"{where}: n_per_arm must be an integer >= 2, got {n_per_arm!r}")
    if not 0 < baseline_rate < 1:
        raise ParameterError(f"{where}: baseline_rate must be strictly between 0 and 1, got {baseline_rate!r}")
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ParameterError(f"{where}: alpha and power must be strictly between 0 and 1, got {alpha!r}, {power!r}")
    if ratio <= 0:
        raise ParameterError(f"{where}: ratio must be > 0, got {ratio!r}")
    if alternative not in ("two-sided", "larger"):
        raise ParameterError(f"{where}: alternative must be 'two-sided' or 'larger', got {alternative!r}")
    pw = NormalIndPower()

    def solve(n):
        return float(pw.solve_power(effect_size=None, nobs1=n, alpha=alpha, power=power, ratio=ratio, alternative=alternative))

    h = solve(n_per_arm)
    top = np.pi / 2 - np.arcsin(np.sqrt(baseline_rate))
    if h / 2 >= top:
        raise ModelError(f"{where}: with {n_per_arm} users per arm no increase from {baseline_rate:.1%} is detectable "
                         "(it would pass 100%); plan more users.")
    mde = _h_to_rate(baseline_rate, h) - baseline_rate
    ns = np.unique(np.round(n_per_arm * np.geomspace(0.125, 8, 25)).astype(int))
    ns = ns[ns >= 2]
    curve = pd.DataFrame({"n_per_arm": ns, "mde": [_h_to_rate(baseline_rate, min(solve(n), 2 * top)) - baseline_rate for n in ns]})
    return PowerResult(n_per_arm=int(n_per_arm), baseline_rate=float(baseline_rate), alpha=float(alpha), power=float(power),
                       ratio=float(ratio), effect_size=h, mde=float(mde), curve=curve)


__all__ = ["CACEResult", "CONTROL_ARM", "CUPEDResult", "ITTResult", "PowerResult", "SRMResult", "cace", "check_experiment",
           "cuped", "itt_retention", "power_mde", "sample_ratio_mismatch"]
