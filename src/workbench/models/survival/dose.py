"""Dose-response: churn hazard against the number of adopted ideas so far."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from workbench.errors import ModelError, ParameterError
from workbench.models.inputs import as_list, numeric, require_columns
from workbench.models.results import Result
from workbench.models.survival.cox import CoxResult, fit_cox
from workbench.models.survival.summaries import metric_name

@dataclass(frozen=True)
class DoseResponseResult(Result):
    """Churn hazard by number of adopted ideas so far (time-varying).

    ``levels``: hazard ratio per dose level against dose 0 (from a Cox model
    with indicator covariates); ``trend``: hazard ratio per additional idea
    (dose as a number, capped at ``max_dose``); ``exposure_by_level``:
    users, person-days and churn events in each dose level.
    """

    label: str
    levels: pd.DataFrame
    trend: pd.Series
    exposure_by_level: pd.DataFrame
    max_dose: int
    categorical: CoxResult = field(repr=False)
    linear: CoxResult = field(repr=False)
    alpha: float = 0.05

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
        return f"<strong>{self.label}</strong>" + t.to_html(float_format=lambda v: f"{v:.4g}") + self.exposure_by_level.to_html(
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


__all__ = ["DoseResponseResult", "dose_response"]
