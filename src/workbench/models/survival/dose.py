"""Dose-response: churn hazard against the number of adopted ideas so far,
from the exact Cox model on episodes (:func:`dose_response`) or from the
discrete-time model on risk sets by dose level (:func:`dose_response_aggregated`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from workbench.errors import ModelError, ParameterError
from workbench.models.inputs import as_list, design_matrix, numeric, require_columns
from workbench.models.results import Result
from workbench.models.survival.cox import fit_cox
from workbench.models.survival.discrete import DiscreteHazardResult, fit_binned_glm
from workbench.models.survival.summaries import metric_name


@dataclass(frozen=True)
class DoseResponseResult(Result):
    """Churn hazard by number of adopted ideas so far (time-varying).

    ``levels``: hazard ratio per dose level against dose 0 (from a Cox model
    with indicator covariates, or the discrete-time model on risk sets by
    dose); ``trend``: hazard ratio per additional idea (dose as a number,
    capped at ``max_dose``); ``exposure_by_level``: person-days and churn
    events in each dose level (and users, on the exact path).
    ``path``/``path_reason``: which model ran and why.
    """

    label: str
    levels: pd.DataFrame
    trend: pd.Series
    exposure_by_level: pd.DataFrame
    max_dose: int
    categorical: Result = field(repr=False)
    linear: Result = field(repr=False)
    alpha: float = 0.05
    path: str = "exact"
    path_reason: str = ""

    def summary(self) -> pd.DataFrame:
        rows = self.levels[["estimate", "std_err", "ci_low", "ci_high"]].copy()
        rows.loc["per_idea"] = self.trend[["estimate", "std_err", "ci_low", "ci_high"]]
        return rows

    def to_metrics(self, prefix: str = "dose") -> dict:
        out = {}
        for name, row in self.levels.iterrows():
            out[f"{prefix}.hr.{metric_name(name)}"] = float(row["hazard_ratio"])
        out[f"{prefix}.hr_per_idea"] = float(self.trend["hazard_ratio"])
        out[f"{prefix}.hr_per_idea_ci_low"] = float(self.trend["hr_ci_low"])
        out[f"{prefix}.hr_per_idea_ci_high"] = float(self.trend["hr_ci_high"])
        return out

    def _repr_html_(self) -> str:
        t = self.levels[["hazard_ratio", "hr_ci_low", "hr_ci_high", "p_value"]].copy()
        t.loc["per additional idea"] = self.trend[["hazard_ratio", "hr_ci_low", "hr_ci_high", "p_value"]]
        why = f"<br><em>{self.path_reason}</em>" if self.path_reason else ""
        return f"<strong>{self.label}</strong>{why}" + t.to_html(float_format=lambda v: f"{v:.4g}") + self.exposure_by_level.to_html(
            float_format=lambda v: f"{v:,.0f}")


def dose_response(episodes: pd.DataFrame, *, dose: str = "dose", adjust_for=(), strata=(), max_dose: int = 3,
                  ties: str = "efron", se: str = "robust", alpha: float = 0.05) -> DoseResponseResult:
    """Churn hazard against the number of adopted ideas so far (``dose``, time
    varying on the episodes of ``workbench.tables.episodes(ds, exposure="adopted")``).
    Levels 1, 2, ..., ``max_dose``+ are compared with 0; the trend is the
    hazard ratio per additional idea with dose capped at ``max_dose``. Levels
    with no churn events are merged into the level below."""
    where = "dose_response"
    require_columns(episodes, ["user_id", "start", "stop", "churned", dose], where,
                     "Build the table with workbench.tables.episodes(ds, exposure='adopted', ...).to_pandas().")
    if not isinstance(max_dose, (int, np.integer)) or max_dose < 1:
        raise ParameterError(f"{where}: max_dose must be a positive integer, got {max_dose!r}")
    x = np.minimum(numeric(episodes, dose, where), max_dose)
    ev = numeric(episodes, "churned", where)
    if (x > 0).sum() == 0:
        raise ModelError(f"{where}: no episode has a dose above 0 (no user had an idea adopted); no dose-response to estimate.")
    # merge top levels without events downward
    top = max_dose
    while top > 1 and ev[x >= top].sum() == 0:
        top -= 1
    x = np.minimum(x, top)
    if ev[x > 0].sum() == 0:
        raise ModelError(f"{where}: nobody churned after an idea was adopted, so the hazard ratios would be 0; "
                         "the exposure never precedes churn.")
    df = episodes.copy()
    level_names = []
    for k in range(1, top + 1):
        name = f"dose={k}" if k < top else f"dose>={k}"
        df[name] = (x >= k) & (x < k + 1) if k < top else (x >= k)
        df[name] = df[name].astype(float)
        level_names.append(name)
    df["dose_capped"] = x
    adjust_for = [c for c in as_list(adjust_for, "adjust_for") if c != dose]
    cat = fit_cox(df, covariates=[*level_names, *adjust_for], strata=strata, cluster="user_id", ties=ties, se=se, exposure=level_names[0],
                  label="Cox, adopted ideas so far (levels vs 0)", alpha=alpha, keep_residuals=False)
    lin = fit_cox(df, covariates=["dose_capped", *adjust_for], strata=strata, cluster="user_id", ties=ties, se=se, exposure="dose_capped",
                  label="Cox, per additional adopted idea", alpha=alpha, keep_residuals=False)
    levels = cat.summary().loc[level_names]
    trend = lin.summary().loc["dose_capped"]
    durations = (df["stop"] - df["start"]).to_numpy()
    lvl = pd.Series(np.where(x >= top, f"{top}+", x.astype(int).astype(str)), index=df.index)
    by = pd.DataFrame({"level": lvl, "user_id": df["user_id"], "days": durations, "churned": ev})
    expo = by.groupby("level").agg(users=("user_id", "nunique"), person_days=("days", "sum"), churn_events=("churned", "sum"))
    expo["churn_per_1000_days"] = 1000 * expo["churn_events"] / expo["person_days"]
    return DoseResponseResult(label="Dose-response: adopted ideas so far and churn", levels=levels, trend=trend,
                              exposure_by_level=expo, max_dose=top, categorical=cat, linear=lin, alpha=alpha)


def dose_response_aggregated(dose_risk_sets: pd.DataFrame, *, adjust_for=(), max_dose: int = 3, link: str = "poisson",
                             alpha: float = 0.05) -> DoseResponseResult:
    """Dose-response on ``workbench.tables.dose_risk_sets`` (one row per
    tenure bin, dose level and stratum): discrete-time models with one
    baseline term per tenure bin (``link="poisson"``, the default: the
    piecewise-exponential model on person-days, which counts the part of a
    bin spent in each level exactly -- users often reach several levels within
    one bin; ``"cloglog"``: the grouped-time model on at-risk counts), the levels 1, ..., ``max_dose``+ as
    indicators against 0 and, separately, the capped dose as a number (the
    per-idea trend); ``adjust_for`` among the table's strata. Levels above
    ``max_dose`` are pooled into it and top levels without churn events are
    merged downward, as in :func:`dose_response`. Its size does not grow with
    the number of users; standard errors are model-based (the grouped-time
    likelihood factorizes over a user's bins given survival)."""
    where = "dose_response_aggregated"
    require_columns(dose_risk_sets, ["tenure_bin", "dose", "at_risk", "events", "exposure_days"], where,
                    "Build the table with workbench.tables.dose_risk_sets(ds, ...).to_pandas().")
    if not isinstance(max_dose, (int, np.integer)) or max_dose < 1:
        raise ParameterError(f"{where}: max_dose must be a positive integer, got {max_dose!r}")
    df = dose_risk_sets.loc[numeric(dose_risk_sets, "at_risk", where) > 0].reset_index(drop=True)
    x = np.minimum(numeric(df, "dose", where), max_dose)
    ev = numeric(df, "events", where)
    n = numeric(df, "at_risk", where)
    if (x > 0).sum() == 0:
        raise ModelError(f"{where}: no cell has a dose above 0 (no user had an idea adopted); no dose-response to estimate.")
    top = max_dose
    while top > 1 and ev[x >= top].sum() == 0:
        top -= 1
    x = np.minimum(x, top)
    if ev[x > 0].sum() == 0:
        raise ModelError(f"{where}: nobody churned after an idea was adopted, so the hazard ratios would be 0; "
                         "the exposure never precedes churn.")
    adjust_for = [c for c in as_list(adjust_for, "adjust_for") if c != "dose"]
    Z, znames = design_matrix(df, adjust_for, where=where) if adjust_for else (np.empty((len(df), 0)), [])
    level_names = [f"dose={k}" if k < top else f"dose>={k}" for k in range(1, top + 1)]
    L = np.column_stack([(x == k).astype(float) for k in range(1, top + 1)])
    bins = df["tenure_bin"].to_numpy()
    days = numeric(df, "exposure_days", where)
    if link not in ("poisson", "cloglog"):
        raise ParameterError(f"{where}: link must be 'poisson' or 'cloglog', got {link!r}")
    results = []
    for names, X, label in ((level_names + znames, np.column_stack([L, Z]), "adopted ideas so far (levels vs 0)"),
                            (["dose_capped"] + znames, np.column_stack([x, Z]), "per additional adopted idea")):
        label = ("Piecewise-exponential hazard, " if link == "poisson" else "Discrete-time hazard, ") + label
        fit = fit_binned_glm(ev, n, X, bins, link=link, exposure_days=days, where=where)
        idx = pd.Index(names, name="covariate")
        results.append(DiscreteHazardResult(label=label, link=link, params=pd.Series(fit.params, index=idx),
                                            cov=pd.DataFrame(fit.cov, index=idx, columns=idx), exposure=names[0],
                                            n_cells=int(fit.keep.sum()), n_bins=fit.n_baseline, n_events=float(ev[fit.keep].sum()),
                                            n_at_risk=float(n[fit.keep].sum()), dropped_bins=fit.dropped, alpha=alpha,
                                            adjusted_for=tuple(adjust_for)))
    cat, lin = results
    levels = cat.summary().loc[level_names]
    trend = lin.summary().loc["dose_capped"]
    lvl = np.where(x >= top, f"{top}+", x.astype(int).astype(str))
    expo = pd.DataFrame({"level": lvl, "person_days": numeric(df, "exposure_days", where), "churn_events": ev}).groupby("level").sum()
    expo["churn_per_1000_days"] = 1000 * expo["churn_events"] / expo["person_days"]
    return DoseResponseResult(label="Dose-response: adopted ideas so far and churn (aggregated risk sets)", levels=levels, trend=trend,
                              exposure_by_level=expo, max_dose=top, categorical=cat, linear=lin, alpha=alpha, path="aggregated")


__all__ = ["DoseResponseResult", "dose_response", "dose_response_aggregated"]
