"""Two-arm invitation experiments on one row per user: does inviting users
to co-create keep them around?

Input: ``workbench.tables.experiment_outcomes(ds, experiment, horizon_days=...)``
as pandas, one row per assigned user with ``arm`` (the control arm is named
``control``), ``took_part`` (co-created within the horizon), ``retained`` (not
churned by the horizon), ``observed`` (the whole horizon lies before the
observation end) and ``pre_activity`` (events in the 28 days before
assignment).

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

The sample-ratio check and power calculations are in
:mod:`workbench.models.experiments.design`; experiments with any number of
arms and metrics, from engine aggregates, in
:mod:`workbench.models.experiments.readout`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from workbench.data.contract import CONTROL_ARM
from workbench.errors import ModelError, ParameterError
from workbench.models.experiments.arms import two_arm_frame
from workbench.models.inputs import as_list as _as_list
from workbench.models.inputs import numeric as _numeric
from workbench.models.results import Result, summary_frame


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
    df, z, arm, excluded = two_arm_frame(outcomes, treatment_arm, where, [outcome])
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
    df, z, arm, _ = two_arm_frame(outcomes, treatment_arm, where, [outcome, took_part])
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
    df, z, arm, _ = two_arm_frame(outcomes, treatment_arm, where, [outcome, *covariates])
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
    if not (se > 0 and se0 > 0):  # e.g. every user has the same outcome: nothing to compare or to reduce
        raise ModelError(f"{where}: {outcome} does not vary within the arms ({n1 + n0:,} users), so the effect has no standard "
                         "error and CUPED has no variance to reduce; use a longer follow-up or more users.")
    zc = stats.norm.ppf(1 - alpha / 2)
    return CUPEDResult(treatment_arm=arm, estimate=est, std_err=se, ci_low=est - zc * se, ci_high=est + zc * se,
                       p_value=float(2 * stats.norm.sf(abs(est / se))), theta=pd.Series(theta, index=keep, name="theta"),
                       covariates=tuple(keep), dropped=tuple(dropped), variance_reduction=float(1 - (se / se0) ** 2),
                       unadjusted_std_err=se0, n=len(y), alpha=alpha)


__all__ = ["CACEResult", "CUPEDResult", "ITTResult", "cace", "cuped", "itt_retention"]
