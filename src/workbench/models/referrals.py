"""Referrals: do co-creators bring in more users?

Two fits of one model. :func:`referral_rate_ratio_cells` (the path that
scales) fits the Poisson rate model on ``workbench.tables.referral_counts``
(counts and exposure per period, state and stratum: its sufficient statistics,
so the estimates equal the per-user fit's) and computes the user-clustered
sandwich in one more engine pass over the per-user rows
(:func:`workbench.tables.influence.cluster_score_products`), so no per-user
row is held in memory. :func:`referral_rate_ratio` fits the same model (or a
negative binomial one) on the per-user rows in memory: the reference on
small data.

:func:`referral_rate_ratio` fits a rate model on
``workbench.tables.referrals`` (one row per user and exposure state, with the
days observed alive in that state and the users referred meanwhile):
``log E[referrals] = log(exposure_days) + b * exposed + covariates``, a Poisson
GLM (or a negative binomial one for overdispersed counts) with the exposure
time as offset. exp(b) is the rate ratio: referrals per day alive while a
co-creator against before/without co-creating. Standard errors are
cluster-robust by user (a user contributes a row in each state), which also
keeps the Poisson intervals valid under overdispersion.

Calendar time. The referral base rate usually changes with calendar time
(word of mouth fades as the market saturates), and a user's co-creating time
comes later in calendar time than their non-co-creating time, so a ratio
pooled over the whole period is biased (toward 1 when the rate falls). When
the table is split by calendar period
(``workbench.tables.referrals(ds, ..., period_days=28)`` adds a ``period``
column), pass ``period="period"`` to compare within periods (one fixed effect
each).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from workbench.errors import ModelError, ParameterError
from workbench.models.inputs import as_list, design_matrix, numeric, require_columns, to_ibis, to_pandas
from workbench.models.results import Result, summary_frame

METHODS = {
    "per_user": "GLM on the per-user rows, cluster-robust by user",
    "cells": "Poisson GLM on aggregated cells; user-clustered sandwich from one engine pass over the per-user rows",
}


@dataclass(frozen=True)
class RateRatioResult(Result):
    """Referral rate ratio of co-creators versus others.

    ``rates``: per exposure state, users, person-days, referrals and the crude
    rate per 1,000 days. ``params``/``cov``: log rate ratios of the
    exposure and covariates (cluster-robust by user).
    """

    label: str
    family: str
    params: pd.Series
    cov: pd.DataFrame
    exposure: str
    rates: pd.DataFrame
    adjusted_for: tuple
    period: str | None
    n_users: int
    dispersion: float
    alpha: float = 0.05
    method: str = "per_user"
    n_rows: int = 0
    n_cells: int = 0

    def rate_ratio(self, name: str | None = None) -> tuple[float, float, float]:
        row = self.summary().loc[name or self.exposure]
        return float(row["rate_ratio"]), float(row["rr_ci_low"]), float(row["rr_ci_high"])

    def summary(self) -> pd.DataFrame:
        t = summary_frame(self.params.index, self.params.to_numpy(), np.sqrt(np.diag(self.cov.to_numpy())), alpha=self.alpha)
        t["rate_ratio"] = np.exp(t["estimate"])
        t["rr_ci_low"] = np.exp(t["ci_low"])
        t["rr_ci_high"] = np.exp(t["ci_high"])
        t["p_value"] = 2 * stats.norm.sf(np.abs(t["estimate"] / t["std_err"]))
        return t

    def to_metrics(self, prefix: str = "referrals") -> dict:
        rr, lo, hi = self.rate_ratio()
        return {f"{prefix}.rate_ratio": rr, f"{prefix}.rate_ratio_ci_low": lo, f"{prefix}.rate_ratio_ci_high": hi,
                f"{prefix}.dispersion": self.dispersion, f"{prefix}.method": self.method}

    def _repr_html_(self) -> str:
        cells = f" on {self.n_cells:,} cells" if self.method == "cells" else ""
        head = (f"<strong>{self.label}</strong><br>{self.family} GLM{cells}, offset log(exposure days), cluster-robust by user "
                f"({self.n_users:,} users, {self.n_rows:,} user rows); Pearson dispersion {self.dispersion:.2f}<br>"
                f"<em>{METHODS[self.method]}</em><br>")
        return head + self.summary()[["rate_ratio", "rr_ci_low", "rr_ci_high", "p_value"]].to_html(
            float_format=lambda v: f"{v:.4g}") + self.rates.to_html(float_format=lambda v: f"{v:,.3f}")


def referral_rate_ratio(referrals: pd.DataFrame, *, exposure: str = "exposed", adjust_for=(), period: str | None = None,
                        family: str = "poisson", alpha: float = 0.05) -> RateRatioResult:
    """Referral rate ratio, co-creators versus others, from a Poisson
    (``family="poisson"``) or negative binomial (``"negative_binomial"``,
    dispersion estimated by maximum likelihood) GLM with log exposure days as
    offset, adjusted for ``adjust_for`` and, if ``period`` names a calendar
    period column, compared within periods. Rows with no exposure time are
    dropped."""
    import statsmodels.api as sm

    where = "referral_rate_ratio"
    if family not in ("poisson", "negative_binomial"):
        raise ParameterError(f"{where}: family must be 'poisson' or 'negative_binomial', got {family!r}")
    adjust_for = [c for c in as_list(adjust_for, "adjust_for") if c != exposure]
    require_columns(referrals, ["user_id", exposure, "exposure_days", "referrals", *adjust_for] + ([period] if period else []),
                     where, "Build it with workbench.tables.referrals(ds, exposure=...).to_pandas().")
    df = referrals.loc[numeric(referrals, "exposure_days", where) > 0]
    if len(df) == 0:
        raise ModelError(f"{where}: no row has positive exposure time.")
    y = numeric(df, "referrals", where)
    if (y < 0).any():
        raise ModelError(f"{where}: negative referral counts in {int((y < 0).sum())} rows.")
    x = numeric(df, exposure, where)
    _check_states(y, x, where)
    X, names = design_matrix(df, [exposure, *adjust_for], where=where)
    if period:
        P = pd.get_dummies(df[period].astype(str), prefix="period", drop_first=True, dtype=float)
        X = np.column_stack([X, P.to_numpy()])
    exog = np.column_stack([np.ones(len(df)), X])
    off = np.log(numeric(df, "exposure_days", where))
    groups = pd.factorize(df["user_id"])[0]
    from statsmodels.tools.sm_exceptions import ConvergenceWarning, HessianInversionWarning, PerfectSeparationError, PerfectSeparationWarning

    model = f"the {family.replace('_', ' ')} model of referrals on {', '.join([exposure, *adjust_for])}" + (f" within {period}" if period else "")
    todo = ("Drop or coarsen the covariate(s) named in adjust_for, pool rare levels" + (" or longer periods" if period else "")
            + (", or use family='poisson' (its robust intervals remain valid under overdispersion)" if family != "poisson" else "") + ".")
    with warnings.catch_warnings():
        warnings.simplefilter("error", PerfectSeparationWarning)
        # convergence and a singular Hessian are checked on the result below; overflow shows up there too
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", HessianInversionWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            if family == "poisson":
                fit = sm.GLM(y, exog, family=sm.families.Poisson(), offset=off).fit(cov_type="cluster", cov_kwds={"groups": groups})
                converged = bool(fit.converged)
            else:
                from statsmodels.discrete.discrete_model import NegativeBinomial

                fit = NegativeBinomial(y, exog, offset=off).fit(disp=0, maxiter=200, cov_type="cluster", cov_kwds={"groups": groups})
                converged = bool(fit.mle_retvals.get("converged", False))
        except (PerfectSeparationWarning, PerfectSeparationError, np.linalg.LinAlgError) as exc:
            raise ModelError(f"{where}: {model} cannot be fitted ({type(exc).__name__}: {exc}); some covariate pattern "
                             f"predicts the referral counts exactly. {todo}") from None
    if not converged:
        raise ModelError(f"{where}: {model} did not converge, so its rate ratios cannot be trusted. {todo}")
    params = np.asarray(fit.params)[1: 1 + len(names)]
    cov = np.asarray(fit.cov_params())[1: 1 + len(names), 1: 1 + len(names)]
    bad = [n for n, b, v in zip(names, params, np.diag(cov)) if not (np.isfinite(b) and np.isfinite(v) and v > 0 and abs(b) < 20)]
    if bad:
        raise ModelError(f"{where}: {model} gives no usable estimate for {', '.join(bad)} (an infinite or undefined log "
                         f"rate ratio: some level of it has no referrals, or it is collinear with the others). {todo}")
    if family == "poisson":
        mu = fit.fittedvalues
        dispersion = float(((y - mu) ** 2 / mu).sum() / max(len(y) - exog.shape[1], 1))
    else:
        dispersion = float(fit.params[-1])
    idx = pd.Index(names, name="covariate")
    rates = pd.DataFrame({"state": np.where(x == 1, "co-creator", "not (yet) co-creator"), "user_id": df["user_id"].to_numpy(),
                          "days": np.exp(off), "referrals": y})
    rates = rates.groupby("state").agg(users=("user_id", "nunique"), person_days=("days", "sum"), referrals=("referrals", "sum"))
    rates["per_1000_days"] = 1000 * rates["referrals"] / rates["person_days"]
    label = "Referral rate ratio, co-creators vs others" + (f", adjusted for {', '.join(adjust_for)}" if adjust_for else "")
    if period:
        label += f", within {period}"
    return RateRatioResult(label=label, family=family, params=pd.Series(np.asarray(params), index=idx),
                           cov=pd.DataFrame(np.asarray(cov), index=idx, columns=idx), exposure=exposure, rates=rates,
                           adjusted_for=tuple(adjust_for), period=period, n_users=int(groups.max() + 1), dispersion=dispersion,
                           alpha=alpha, method="per_user", n_rows=len(df), n_cells=0)


def referral_rate_ratio_cells(cells, rows, *, exposure: str = "exposed", adjust_for=(), period: str | None = "period",
                               alpha: float = 0.05) -> RateRatioResult:
    """Referral rate ratio, co-creators versus others, from the Poisson GLM
    ``log E[referrals] = log(exposure_days) + b * exposed + covariates
    (+ one effect per period)`` fitted on aggregated cells, with the
    user-clustered sandwich variance.

    ``cells``: ``workbench.tables.referral_counts(ds, ..., strata=...)`` (an
    Ibis table or its pandas frame); ``rows``: the per-user table it sums,
    ``workbench.tables.referrals(ds, ...)`` with the same exposure, churn and
    ``period_days``, as an Ibis table (it stays in the engine; a DataFrame
    is run through DuckDB). ``adjust_for`` must be among the cells' strata;
    ``period=None`` for cells without periods.

    Estimates equal the per-user Poisson fit's (the cells are its sufficient
    statistics). The variance is ``A^-1 (sum over users of s_u s_u^T) A^-1``
    with ``s_u`` the user's score, computed in the engine as
    ``z_u = sum over the user's rows of g_c (y - rate_c e)`` (``g_c`` = the
    coefficients' rows of ``A^-1`` times the cell's design row), with the
    small-sample factor G/(G-1) (N-1)/(N-K) of statsmodels' cluster option:
    valid under overdispersion and for users contributing several rows.
    """
    from workbench.models.survival.discrete import fit_binned_glm
    from workbench.tables.influence import cluster_score_products, meat_matrix

    where = "referral_rate_ratio_cells"
    adjust_for = [c for c in as_list(adjust_for, "adjust_for") if c != exposure]
    df = to_pandas(cells, where)
    need = [exposure, "exposure_days", "referrals", "users", *adjust_for] + ([period] if period else [])
    require_columns(df, need, where, "Build it with workbench.tables.referral_counts(ds, exposure=..., strata=...).")
    keys = [c for c in df.columns if c not in ("users", "exposure_days", "referrals")]
    df = df.loc[numeric(df, "exposure_days", where) > 0].reset_index(drop=True)
    if len(df) == 0:
        raise ModelError(f"{where}: no cell has positive exposure time.")
    y = numeric(df, "referrals", where)
    e = numeric(df, "exposure_days", where)
    x = numeric(df, exposure, where)
    _check_states(y, x, where)
    X, names = design_matrix(df, [exposure, *adjust_for], where=where)
    k = len(names)
    # one base rate per period (a single one without periods), profiled out of the likelihood
    groups = pd.factorize(df[period])[0] if period else np.zeros(len(df), dtype=np.int64)
    fit = fit_binned_glm(y, np.ones(len(df)), X, groups, link="poisson", exposure_days=e, where=where)
    G = np.zeros((len(df), k))  # per cell: g_c, the coefficients' rows of A^-1 times the cell's design row
    rate = np.zeros(len(df))  # periods without any referral: rate 0, no score (their base rate is at minus infinity)
    G[fit.keep], rate[fit.keep] = fit.influence, fit.mu
    n_params = k + int(groups.max()) + 1  # as statsmodels counts them: intercept, period dummies, covariates
    coefs = df[keys].copy()
    coefs["rate"] = rate
    for j in range(k):  # the score of a user row: g_c (y - rate_c e) = b y - a e
        coefs[f"a{j}"] = G[:, j] * rate
        coefs[f"b{j}"] = G[:, j]
    rows_t = to_ibis(rows, where)
    pr = cluster_score_products(rows_t, coefs, keys, outcome="referrals", exposure="exposure_days", rate="rate",
                                table_fn=where).to_pandas().iloc[0]
    n_clusters, n_rows = int(pr["clusters"]), int(pr["rows"])
    if n_rows != int(df["users"].sum()):
        raise ParameterError(f"{where}: rows ({n_rows:,} user rows) and cells ({int(df['users'].sum()):,}) do not come from "
                             "the same table arguments; build both with the same exposure, churn, churn_after_days and "
                             "period_days.")
    meat = meat_matrix(pr, k)
    factor = n_clusters / (n_clusters - 1) * (n_rows - 1) / (n_rows - n_params)
    cov = factor * meat
    params = fit.params
    bad = [n for n, b, v in zip(names, params, np.diag(cov)) if not (np.isfinite(b) and np.isfinite(v) and v > 0 and abs(b) < 20)]
    if bad:
        raise ModelError(f"{where}: the Poisson model gives no usable estimate for {', '.join(bad)}; pool rare levels or "
                         "use longer periods.")
    idx = pd.Index(names, name="covariate")
    state = np.where(x == 1, "co-creator", "not (yet) co-creator")
    rates = pd.DataFrame({"state": state, "days": e, "referrals": y}).groupby("state").sum()
    rates.insert(0, "users", pd.Series({"co-creator": int(pr["users_exposed"]), "not (yet) co-creator": int(pr["users_unexposed"])}))
    rates = rates.rename(columns={"days": "person_days"})
    rates["per_1000_days"] = 1000 * rates["referrals"] / rates["person_days"]
    label = "Referral rate ratio, co-creators vs others" + (f", adjusted for {', '.join(adjust_for)}" if adjust_for else "")
    if period:
        label += f", within {period}"
    return RateRatioResult(label=label, family="poisson", params=pd.Series(params, index=idx),
                           cov=pd.DataFrame(cov, index=idx, columns=idx), exposure=exposure, rates=rates,
                           adjusted_for=tuple(adjust_for), period=period, n_users=n_clusters,
                           dispersion=float(pr["pearson"]) / max(n_rows - n_params, 1), alpha=alpha, method="cells",
                           n_rows=n_rows, n_cells=len(df))


def _check_states(y, x, where):
    if not (x == 1).any():
        raise ModelError(f"{where}: no user time is exposed (nobody co-created), so co-creators cannot be compared with others.")
    if not (x == 0).any():
        raise ModelError(f"{where}: all user time is exposed; there is no unexposed time to compare with.")
    if y.sum() == 0:
        raise ModelError(f"{where}: nobody referred anyone in these data; there is no rate to compare.")
    for level, word in ((1, "co-creators"), (0, "others")):
        if y[x == level].sum() == 0:
            raise ModelError(f"{where}: {word} made no referrals at all, so the rate ratio would be "
                             f"{'0' if level else 'infinite'}; there is too little referral data.")


__all__ = ["RateRatioResult", "referral_rate_ratio", "referral_rate_ratio_cells"]
