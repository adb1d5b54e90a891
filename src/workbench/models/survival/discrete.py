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
    covariate coefficients ``params`` with their model-based ``cov`` (the
    covariate block of the inverse information), per kept cell the fitted
    hazard ``h`` (cloglog: per user-bin; Poisson: per day), ``mu`` =
    exp(linear predictor) and ``influence`` (the covariates' rows of the
    inverse information times the cell's full design row, baseline included:
    what a sandwich variance needs), and which cells were kept."""

    params: np.ndarray
    cov: np.ndarray
    h: np.ndarray
    mu: np.ndarray
    influence: np.ndarray
    keep: np.ndarray
    n_baseline: int
    dropped: int


def _poisson_fixed_effects(y, e, X, codes, w, where):
    """Poisson GLM with offset log(e) and one intercept per group ``codes``,
    frequency weights ``w``. The intercepts are profiled out (given beta,
    exp(alpha_g) = sum_g w y / sum_g w e exp(x beta)), which leaves a
    likelihood in beta alone with the shape of a Cox partial likelihood whose
    risk sets are the groups: Newton steps cost O(cells k^2), whatever the
    number of groups (a dense design with one column per tenure bin and
    landmark costs O(cells groups^2)). The covariance of beta is the inverse
    of sum w mu (x - xbar_g)(x - xbar_g)^T (the Schur complement, equal to the
    full GLM's), and a cell's influence row is that inverse times (x - xbar_g).
    statsmodels' GLM with the dummies is the test oracle."""
    k = X.shape[1]
    G = int(codes.max()) + 1
    Y = np.bincount(codes, weights=w * y, minlength=G)
    beta = np.zeros(k)

    def moments(b):
        eta = X @ b
        r = w * e * np.exp(eta - eta.max())
        s0 = np.bincount(codes, weights=r, minlength=G)
        xbar = np.column_stack([np.bincount(codes, weights=r * X[:, j], minlength=G) for j in range(k)]) / s0[:, None]
        ll = float((w * y * eta).sum() - (Y * (np.log(s0) + eta.max())).sum())
        return ll, r, s0, xbar

    ll, r, s0, xbar = moments(beta)
    for _ in range(100):
        d = X - xbar[codes]
        grad = (w * y) @ X - Y @ xbar
        p = (r * Y[codes] / s0[codes])  # w mu of each cell at the profiled intercepts
        info = (d * p[:, None]).T @ d
        try:
            step = np.linalg.solve(info, grad)
        except np.linalg.LinAlgError:
            raise ModelError(f"{where}: the information matrix is singular: a covariate is collinear with the baseline "
                             "(it never varies within a tenure bin) or with another covariate.") from None
        for _ in range(30):
            ll_new, r_new, s0_new, xbar_new = moments(beta + step)
            if np.isfinite(ll_new) and ll_new >= ll - 1e-10 * max(1.0, abs(ll)):
                break
            step = step / 2
        beta = beta + step
        ll, r, s0, xbar = ll_new, r_new, s0_new, xbar_new
        if np.max(np.abs(beta)) > 25:
            raise ModelError(f"{where}: a coefficient ran off to {beta[np.argmax(np.abs(beta))]:+.1f}: some covariate level "
                             "has no events, or events only in it. Check the event counts by group.")
        if np.max(np.abs(step)) < 1e-10:
            break
    else:
        raise ModelError(f"{where}: the Poisson model did not converge; coarsen the tenure bins or drop sparse strata.")
    d = X - xbar[codes]
    p = r * Y[codes] / s0[codes]
    cov = np.linalg.inv((d * p[:, None]).T @ d)
    alpha = np.log(Y / s0)  # on the scale of exp(eta - max)
    eta = X @ beta
    rate = np.exp(alpha[codes] + eta - eta.max())
    return beta, cov, rate, d @ cov


def fit_binned_glm(events, at_risk, X, baseline, *, link: str = "cloglog", exposure_days=None, weights=None,
                   where: str = "discrete_time_hazard") -> BinnedFit:
    """Fit ``link`` on cells: ``events`` out of ``at_risk`` (cloglog) or
    ``events`` with offset log(``exposure_days``) (Poisson), design ``X``
    (covariates, no intercept) plus one intercept per ``baseline`` group,
    with frequency ``weights`` per cell (e.g. inverse probability weights;
    default 1). Baseline groups without any event (or, for cloglog, where
    everyone churned) carry no information about the covariates and are
    dropped. Poisson: :func:`_poisson_fixed_effects`; cloglog: statsmodels'
    GLM with one indicator per group."""
    import statsmodels.api as sm

    ev, n = np.asarray(events, dtype=float), np.asarray(at_risk, dtype=float)
    X = np.asarray(X, dtype=float)
    w = np.ones(len(ev)) if weights is None else np.asarray(weights, dtype=float)
    codes, _ = pd.factorize(np.asarray(baseline))
    ev_g = np.bincount(codes, weights=ev * w)
    n_g = np.bincount(codes, weights=n * w)
    ok = (ev_g > 0) & ((ev_g < n_g) | (link == "poisson"))
    keep = ok[codes] & (w > 0)
    kept_codes, _ = pd.factorize(codes[keep])
    Xk, evk, nk, wk = X[keep], ev[keep], n[keep], w[keep]
    n_base = int(kept_codes.max()) + 1 if keep.any() else 0
    k = X.shape[1]
    if link == "poisson":
        days = np.asarray(exposure_days, dtype=float)[keep]
        params, cov, rate, influence = _poisson_fixed_effects(evk, days, Xk, kept_codes, wk, where)
        return BinnedFit(params=params, cov=cov, h=rate, mu=rate, influence=influence, keep=keep, n_baseline=n_base,
                         dropped=int((~ok).sum()))
    B = np.zeros((len(kept_codes), n_base))
    B[np.arange(len(kept_codes)), kept_codes] = 1.0
    exog = np.column_stack([Xk, B])
    h0 = np.clip((B.T @ (evk * wk)) / np.maximum(B.T @ (nk * wk), 1e-12), 1e-6, 1 - 1e-6)
    start = np.r_[np.zeros(k), np.log(-np.log1p(-h0))]
    model = sm.GLM(np.column_stack([evk, nk - evk]), exog, family=sm.families.Binomial(link=sm.families.links.CLogLog()),
                   freq_weights=wk)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # convergence on the deviance: absolute 1e-8 plus relative 1e-12, since with millions of users
        # the deviance of huge counts carries rounding noise far above any fixed absolute tolerance
        fit = model.fit(start_params=start, maxiter=200, tol=1e-8, atol=1e-8, rtol=1e-12)
    if not fit.converged:
        raise ModelError(f"{where}: the GLM did not converge; coarsen the tenure bins (bin_days) or drop sparse strata.")
    cov_full = np.asarray(fit.cov_params())
    mu = np.exp(exog @ np.asarray(fit.params))  # the bin's cumulative hazard
    return BinnedFit(params=np.asarray(fit.params)[:k], cov=cov_full[:k, :k], h=-np.expm1(-mu), mu=mu,
                     influence=exog @ cov_full[:k].T, keep=keep, n_baseline=n_base, dropped=int((~ok).sum()))


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
    se_type: str = "model-based"

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
        t["se_type"] = self.se_type
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
