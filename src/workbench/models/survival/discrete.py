"""Discrete-time hazard models on aggregated risk sets: the path whose cost
does not grow with the number of users.

:func:`discrete_time_hazard` fits the grouped-time proportional-hazards model
(binomial GLM, complementary log-log link, one baseline term per tenure bin)
or the piecewise-exponential Poisson model on counts per (tenure bin,
exposure, stratum). Ties need no rule here: every churn in a bin belongs to
it (the grouped-time likelihood). :func:`fit_binned_glm` is the fitting core
shared with the aggregated dose-response, landmark and proportional-hazards
models.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from workbench.errors import ModelError, ParameterError
from workbench.models.inputs import as_list, design_matrix, numeric, require_columns
from workbench.models.results import Result
from workbench.models.survival.summaries import hr_metrics, hr_table

LINKS = ("cloglog", "poisson")


@dataclass(frozen=True)
class BinnedFit:
    """A GLM with one baseline term per group of cells (``baseline``): the
    covariate coefficients ``params`` with the model-based ``cov``, the fitted
    hazard (cloglog: per user-bin) or rate (Poisson: per day) ``h`` of each cell
    kept, ``mu`` = exp(linear predictor), and which cells were kept."""

    params: np.ndarray
    cov: np.ndarray
    cov_full: np.ndarray
    exog: np.ndarray
    h: np.ndarray
    mu: np.ndarray
    keep: np.ndarray
    n_baseline: int
    dropped: int


def fit_binned_glm(events, at_risk, X, baseline, *, link: str = "cloglog", exposure_days=None, weights=None,
                   where: str = "discrete_time_hazard") -> BinnedFit:
    """Fit ``link`` on cells: ``events`` out of ``at_risk`` (cloglog) or
    ``events`` with offset log(``exposure_days``) (Poisson), design ``X``
    (covariates, no intercept) plus one indicator per ``baseline`` group,
    with frequency ``weights`` per cell (e.g. inverse probability weights;
    default 1). Baseline groups without any event (or, for cloglog, where
    everyone churned) carry no information about the covariates and are
    dropped."""
    import statsmodels.api as sm

    ev, n = np.asarray(events, dtype=float), np.asarray(at_risk, dtype=float)
    w = np.ones(len(ev)) if weights is None else np.asarray(weights, dtype=float)
    codes, _ = pd.factorize(pd.Series(list(baseline)) if not isinstance(baseline, (np.ndarray, pd.Series)) else pd.Series(baseline))
    ev_g = np.bincount(codes, weights=ev * w)
    n_g = np.bincount(codes, weights=n * w)
    ok = (ev_g > 0) & ((ev_g < n_g) | (link == "poisson"))
    keep = ok[codes] & (w > 0)
    kept_codes, _ = pd.factorize(codes[keep])
    B = np.zeros((int(keep.sum()), int(kept_codes.max()) + 1 if keep.any() else 0))
    B[np.arange(len(kept_codes)), kept_codes] = 1.0
    Xk, evk, nk, wk = X[keep], ev[keep], n[keep], w[keep]
    exog = np.column_stack([Xk, B])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if link == "cloglog":
            h0 = np.clip((B.T @ (evk * wk)) / np.maximum(B.T @ (nk * wk), 1e-12), 1e-6, 1 - 1e-6)
            start = np.r_[np.zeros(X.shape[1]), np.log(-np.log1p(-h0))]
            model = sm.GLM(np.column_stack([evk, nk - evk]), exog, family=sm.families.Binomial(link=sm.families.links.CLogLog()),
                           freq_weights=wk)
        else:
            off = np.log(np.asarray(exposure_days, dtype=float)[keep])
            start = None
            model = sm.GLM(evk, exog, family=sm.families.Poisson(), offset=off, freq_weights=wk)
        # convergence on the deviance: absolute 1e-8 plus relative 1e-12, since with millions of users
        # the deviance of huge counts carries rounding noise far above any fixed absolute tolerance
        fit = model.fit(start_params=start, maxiter=200, tol=1e-8, atol=1e-8, rtol=1e-12)
    if not fit.converged:
        raise ModelError(f"{where}: the GLM did not converge; coarsen the tenure bins (bin_days) or drop sparse strata.")
    k = X.shape[1]
    cov = np.asarray(fit.cov_params())
    eta = exog @ np.asarray(fit.params)
    mu = np.exp(eta if link == "cloglog" else eta)  # cloglog: cumulative hazard of the bin; Poisson: rate per day
    h = -np.expm1(-mu) if link == "cloglog" else mu
    return BinnedFit(params=np.asarray(fit.params)[:k], cov=cov[:k, :k], cov_full=cov, exog=exog, h=h, mu=mu, keep=keep,
                     n_baseline=B.shape[1], dropped=int((~ok).sum()))


@dataclass(frozen=True)
class DiscreteHazardResult(Result):
    """Discrete-time hazard model fitted on aggregated risk sets.

    ``params``/``cov`` hold the covariate effects (the per-bin baseline terms
    are not reported); with ``link="cloglog"`` exp(coefficient) is the hazard
    ratio of the grouped-time proportional-hazards model, with
    ``link="poisson"`` the rate ratio of the piecewise-exponential model.
    ``data`` keeps the cells fitted (small) for the proportional-hazards check.
    ``path``/``path_reason``: set when a function chose this model over the
    exact Cox fit (:func:`~workbench.models.survival.fit_time_varying`).
    """

    label: str
    link: str
    params: pd.Series
    cov: pd.DataFrame
    exposure: str
    n_cells: int
    n_bins: int
    n_events: float
    n_at_risk: float
    dropped_bins: int
    alpha: float = 0.05
    fitted: pd.DataFrame | None = field(default=None, repr=False, compare=False)
    adjusted_for: tuple = ()
    data: pd.DataFrame | None = field(default=None, repr=False, compare=False)
    path: str = "aggregated"
    path_reason: str = ""

    @property
    def ties(self) -> str:
        if self.link == "poisson":
            return "none needed (hazard constant within each tenure bin, person-time exact)"
        return "grouped by tenure bin (discrete time)"

    def hazard_ratio(self, name: str | None = None) -> tuple[float, float, float]:
        name = name or self.exposure
        if name not in self.params.index:
            raise ParameterError(f"{self.label}: no coefficient {name!r}; coefficients: {', '.join(self.params.index)}")
        row = self.summary().loc[name]
        return float(row["hazard_ratio"]), float(row["hr_ci_low"]), float(row["hr_ci_high"])

    def summary(self) -> pd.DataFrame:
        t = hr_table(self.params.index, self.params.to_numpy(), np.sqrt(np.diag(self.cov.to_numpy())), alpha=self.alpha)
        t["se_type"] = "model-based"
        return t

    def to_metrics(self, prefix: str = "discrete_hazard") -> dict:
        return hr_metrics(prefix, self.summary())

    def _repr_html_(self) -> str:
        why = f"<em>{self.path_reason}</em><br>" if self.path_reason else ""
        head = (f"<strong>{self.label}</strong><br>{why}{self.n_cells:,} cells, {self.n_bins} tenure bins "
                f"({self.dropped_bins} without events dropped), {self.n_events:,.0f} events; ties {self.ties}<br>")
        return head + self.summary()[["hazard_ratio", "hr_ci_low", "hr_ci_high", "p_value", "estimate", "std_err"]].to_html(
            float_format=lambda v: f"{v:.4g}")


def check_exposure_cells(ev, n, x, where: str) -> None:
    """Both exposure states have time at risk and churn events."""
    for level, word in ((1.0, "exposed"), (0.0, "unexposed")):
        if n[x == level].sum() == 0:
            raise ModelError(f"{where}: nobody is ever at risk while {word}; the exposure effect cannot be estimated.")
        if ev[x == level].sum() == 0:
            raise ModelError(f"{where}: no churn event while {word}, so the hazard ratio would be "
                             f"{'0' if level else 'infinite'}; " + ("the exposure never precedes churn." if level else "check the data."))


def discrete_time_hazard(risk_sets: pd.DataFrame, *, exposure: str = "exposed", adjust_for=(), link: str = "cloglog",
                         time_col: str = "tenure_bin", at_risk: str = "at_risk", events: str = "events",
                         exposure_days: str = "exposure_days", alpha: float = 0.05) -> DiscreteHazardResult:
    """Discrete-time hazard model on counts per (tenure bin, exposure, stratum):
    the path that scales to any number of users, since its input has one row
    per distinct pattern.

    ``link="cloglog"``: binomial GLM with complementary log-log link on
    ``events`` out of ``at_risk`` with one baseline term per tenure bin —
    the grouped-time version of the Cox model, so exp(beta) is a hazard
    ratio. ``link="poisson"``: piecewise-exponential Poisson GLM on
    ``events`` with offset log(``exposure_days``) (needs that column).
    ``adjust_for`` columns (e.g. the strata of ``risk_sets``) enter as
    covariates. Bins without any event carry no information about the
    covariates (their baseline goes to minus infinity) and are dropped, as are
    bins where everyone at risk churned.
    """
    where = "discrete_time_hazard"
    if link not in LINKS:
        raise ParameterError(f"{where}: link must be 'cloglog' or 'poisson', got {link!r}")
    adjust_for = [c for c in as_list(adjust_for, "adjust_for") if c != exposure]
    need = [time_col, exposure, events, at_risk] + adjust_for + ([exposure_days] if link == "poisson" else [])
    require_columns(risk_sets, need, where, "Build the table with workbench.tables.risk_sets(ds, ...).to_pandas().")
    df = risk_sets.loc[numeric(risk_sets, at_risk, where) > 0]
    if link == "poisson":
        df = df.loc[numeric(df, exposure_days, where) > 0]
    if len(df) == 0:
        raise ModelError(f"{where}: no cell has anyone at risk.")
    df = df.reset_index(drop=True)
    ev = numeric(df, events, where)
    n = numeric(df, at_risk, where)
    if (ev > n).any() and link == "cloglog":
        raise ModelError(f"{where}: {int((ev > n).sum())} cell(s) have more events than users at risk; the risk sets are inconsistent.")
    if ev.sum() == 0:
        raise ModelError(f"{where}: no churn events in the risk sets; nothing to fit.")
    x = numeric(df, exposure, where)
    check_exposure_cells(ev, n, x, where)
    X, names = design_matrix(df, [exposure, *adjust_for], where=where)
    days = numeric(df, exposure_days, where) if link == "poisson" else None
    fit = fit_binned_glm(ev, n, X, df[time_col].to_numpy(), link=link, exposure_days=days, where=where)
    keep = fit.keep
    k = X.shape[1]
    idx = pd.Index(names, name="covariate")
    # observed and fitted churn per bin and exposure state, pooled over strata (for the plot)
    denom = n[keep] if link == "cloglog" else days[keep]
    expected = fit.h * denom
    per = pd.DataFrame({"tenure_bin": df[time_col].to_numpy()[keep], "exposed": x[keep], "events": ev[keep], "denominator": denom,
                        "expected": expected})
    fitted = per.groupby(["tenure_bin", "exposed"], as_index=False)[["events", "denominator", "expected"]].sum()
    fitted["observed"] = fitted["events"] / fitted["denominator"]
    fitted["fitted"] = fitted["expected"] / fitted["denominator"]
    fitted["scale"] = "per user-bin" if link == "cloglog" else "per person-day"
    label = ("Discrete-time hazard (cloglog on risk sets)" if link == "cloglog" else "Piecewise-exponential (Poisson on risk sets)")
    if adjust_for:
        label += f", adjusted for {', '.join(adjust_for)}"
    keep_cols = list(dict.fromkeys([time_col, exposure, *adjust_for, at_risk, events] + ([exposure_days] if exposure_days in df.columns else [])))
    return DiscreteHazardResult(label=label, link=link, params=pd.Series(fit.params, index=idx),
                                cov=pd.DataFrame(fit.cov, index=idx, columns=idx), exposure=exposure,
                                n_cells=int(keep.sum()), n_bins=fit.n_baseline, n_events=float(ev[keep].sum()),
                                n_at_risk=float(n[keep].sum()), dropped_bins=fit.dropped, alpha=alpha, fitted=fitted,
                                adjusted_for=tuple(adjust_for), data=df[keep_cols].rename(columns={time_col: "tenure_bin"}))


__all__ = ["BinnedFit", "DiscreteHazardResult", "check_exposure_cells", "discrete_time_hazard", "fit_binned_glm"]
