"""Discrete-time hazard models on aggregated risk sets: the path whose cost
does not grow with the number of users."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from workbench.errors import ModelError, ParameterError
from workbench.models.inputs import as_list, design_matrix, numeric, require_columns
from workbench.models.results import Result
from workbench.models.survival.summaries import hr_metrics, hr_table

@dataclass(frozen=True)
class DiscreteHazardResult(Result):
    """Discrete-time hazard model fitted on aggregated risk sets.

    ``params``/``cov`` hold the covariate effects (the per-bin baseline terms
    are not reported); with ``link="cloglog"`` exp(coefficient) is the hazard
    ratio of the grouped-time proportional-hazards model, with
    ``link="poisson"`` the rate ratio of the piecewise-exponential model.
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

    def hazard_ratio(self, name: str | None = None) -> tuple[float, float, float]:
        name = name or self.exposure
        row = self.summary().loc[name]
        return float(row["hazard_ratio"]), float(row["hr_ci_low"]), float(row["hr_ci_high"])

    def summary(self) -> pd.DataFrame:
        t = hr_table(self.params.index, self.params.to_numpy(), np.sqrt(np.diag(self.cov.to_numpy())), alpha=self.alpha)
        return t

    def to_metrics(self, prefix: str = "discrete_hazard") -> dict:
        out = {}
        out.update(hr_metrics(prefix, self.summary()))
        return out

    def _repr_html_(self) -> str:
        head = (f"<strong>{self.label}</strong><br>{self.n_cells:,} cells, {self.n_bins} tenure bins "
                f"({self.dropped_bins} without events dropped), {self.n_events:,.0f} events<br>")
        return head + self.summary()[["hazard_ratio", "hr_ci_low", "hr_ci_high", "p_value", "estimate", "std_err"]].to_html(
            float_format=lambda v: f"{v:.4g}")


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
    import statsmodels.api as sm

    where = "discrete_time_hazard"
    if link not in ("cloglog", "poisson"):
        raise ParameterError(f"{where}: link must be 'cloglog' or 'poisson', got {link!r}")
    adjust_for = [c for c in as_list(adjust_for, "adjust_for") if c != exposure]
    need = [time_col, exposure, events, at_risk] + adjust_for + ([exposure_days] if link == "poisson" else [])
    require_columns(risk_sets, need, where, "Build the table with workbench.tables.risk_sets(ds, ...).to_pandas().")
    df = risk_sets.loc[numeric(risk_sets, at_risk, where) > 0]
    if link == "poisson":
        df = df.loc[numeric(df, exposure_days, where) > 0]
    if len(df) == 0:
        raise ModelError(f"{where}: no cell has anyone at risk.")
    ev = numeric(df, events, where)
    n = numeric(df, at_risk, where)
    if (ev > n).any() and link == "cloglog":
        raise ModelError(f"{where}: {int((ev > n).sum())} cell(s) have more events than users at risk; the risk sets are inconsistent.")
    if ev.sum() == 0:
        raise ModelError(f"{where}: no churn events in the risk sets; nothing to fit.")
    x = numeric(df, exposure, where)
    for level, word in ((1.0, "exposed"), (0.0, "unexposed")):
        if n[x == level].sum() == 0:
            raise ModelError(f"{where}: nobody is ever at risk while {word}; the exposure effect cannot be estimated.")
        if ev[x == level].sum() == 0:
            raise ModelError(f"{where}: no churn event while {word}, so the hazard ratio would be "
                             f"{'0' if level else 'infinite'}; " + ("the exposure never precedes churn." if level else "check the data."))
    bins = df[time_col].to_numpy()
    ev_by_bin = pd.Series(ev).groupby(bins).sum()
    n_by_bin = pd.Series(n).groupby(bins).sum()
    informative = ev_by_bin.index[(ev_by_bin > 0) & ((ev_by_bin < n_by_bin) | (link == "poisson"))]
    keep = np.isin(bins, informative)
    dropped = int(len(ev_by_bin) - len(informative))
    df, ev, n = df.loc[keep], ev[keep], n[keep]
    B = pd.get_dummies(pd.Categorical(df[time_col].to_numpy()), prefix="bin", dtype=float)
    X, names = design_matrix(df, [exposure, *adjust_for], where=where)
    exog = np.column_stack([X, B.to_numpy()])
    if link == "cloglog":
        endog = np.column_stack([ev, n - ev])
        model = sm.GLM(endog, exog, family=sm.families.Binomial(link=sm.families.links.CLogLog()))
        start = np.r_[np.zeros(X.shape[1]), _bin_start(B.to_numpy(), ev, n)]
    else:
        off = np.log(numeric(df, exposure_days, where))
        model = sm.GLM(ev, exog, family=sm.families.Poisson(), offset=off)
        start = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # convergence on the deviance: absolute 1e-8 plus relative 1e-12, since with millions of users
        # the deviance of huge counts carries rounding noise far above any fixed absolute tolerance
        fit = model.fit(start_params=start, maxiter=200, tol=1e-8, atol=1e-8, rtol=1e-12)
    if not fit.converged:
        raise ModelError(f"{where}: the GLM did not converge; coarsen the tenure bins (bin_days) or drop sparse strata.")
    k = X.shape[1]
    idx = pd.Index(names, name="covariate")
    # observed and fitted churn per bin and exposure state, pooled over strata (for the plot)
    rate = n if link == "cloglog" else numeric(df, exposure_days, where)
    mu = np.asarray(fit.fittedvalues) * (n if link == "cloglog" else 1.0)
    per = pd.DataFrame({"tenure_bin": df[time_col].to_numpy(), "exposed": x[keep], "events": ev, "denominator": rate, "expected": mu})
    fitted = per.groupby(["tenure_bin", "exposed"], as_index=False)[["events", "denominator", "expected"]].sum()
    fitted["observed"] = fitted["events"] / fitted["denominator"]
    fitted["fitted"] = fitted["expected"] / fitted["denominator"]
    fitted["scale"] = "per user-bin" if link == "cloglog" else "per person-day"
    label = ("Discrete-time hazard (cloglog on risk sets)" if link == "cloglog" else "Piecewise-exponential (Poisson on risk sets)")
    if adjust_for:
        label += f", adjusted for {', '.join(adjust_for)}"
    return DiscreteHazardResult(label=label, link=link, params=pd.Series(fit.params[:k], index=idx),
                                cov=pd.DataFrame(fit.cov_params()[:k, :k], index=idx, columns=idx), exposure=exposure,
                                n_cells=len(df), n_bins=B.shape[1], n_events=float(ev.sum()), n_at_risk=float(n.sum()),
                                dropped_bins=dropped, alpha=alpha, fitted=fitted)


def _bin_start(B, ev, n):
    """Starting values: cloglog of each bin's crude hazard."""
    h = (B.T @ ev) / np.maximum(B.T @ n, 1e-12)
    h = np.clip(h, 1e-6, 1 - 1e-6)
    return np.log(-np.log1p(-h))


__all__ = ["DiscreteHazardResult", "discrete_time_hazard"]
