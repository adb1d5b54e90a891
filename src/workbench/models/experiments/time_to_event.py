"""Time-to-event outcomes of an experiment: Kaplan-Meier per arm, the
difference in restricted mean survival time (RMST) at a horizon, and the
hazard ratio of each arm against control.

Input: ``workbench.tables.experiment_time_to_event`` as pandas, counts of
users per (metric, arm, days since assignment on an hourly grid, event); users whose follow-up
ends before the horizon are censored there, never counted as events.

- Kaplan-Meier per arm with Greenwood errors and log-log bands
  (:func:`workbench.models.survival.kaplan_meier`, frequency weights).
- RMST at ``tau``: the area under the Kaplan-Meier curve up to ``tau``, with
  the variance ``sum_j A_j^2 d_j / (n_j (n_j - d_j))`` over event times
  ``t_j <= tau``, where ``A_j`` is the area under the curve from ``t_j`` to
  ``tau`` (Klein and Moeschberger 2003, eq. 4.5.2). The difference between
  two arms is independent-sample: variances add; normal interval and test.
- Hazard ratio: a Cox model with one indicator per arm against control
  (:func:`workbench.models.survival.fit_cox`, Breslow ties, frequency
  weights, model-based errors), fitted on users with positive time (a user
  who churned before assignment is an event at day 0: in the curve, not in
  the hazard ratio).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from workbench.data.contract import CONTROL_ARM
from workbench.errors import ModelError
from workbench.models.experiments.design import mde_hazard_ratio
from workbench.models.results import Result
from workbench.models.survival import KMEstimate, SurvivalCurves, fit_cox, kaplan_meier, km_estimate

RMST_COLUMNS = ["arm", "users", "events", "rmst", "std_err", "ci_low", "ci_high"]
COMPARISON_COLUMNS = ["arm", "rmst_difference", "std_err", "ci_low", "ci_high", "relative_effect", "p_value",
                      "hazard_ratio", "hr_ci_low", "hr_ci_high", "hr_p_value", "events", "mde_hazard_ratio"]


def rmst(km: KMEstimate, tau: float) -> tuple[float, float]:
    """(RMST up to ``tau``, its variance) of one Kaplan-Meier curve."""
    keep = km.times <= tau
    t, s, d, n = km.times[keep], km.survival[keep], km.n_events[keep], km.n_risk[keep]
    grid = np.r_[0.0, t, tau]
    area = np.r_[1.0, s] * np.diff(grid)  # S is constant on [grid_i, grid_i+1)
    tail = np.cumsum(area[::-1])[::-1][1:]  # A_j: the area from t_j to tau
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(n > d, tail**2 * d / (n * (n - d)), 0.0)
    return float(area.sum()), float(terms.sum())


@dataclass(frozen=True)
class TimeToEventResult(Result):
    """One time-to-event metric: curves per arm, RMST per arm, and each arm against control."""

    metric: str
    horizon: float
    curves: SurvivalCurves
    rmst: pd.DataFrame
    comparisons: pd.DataFrame
    notes: tuple = ()
    alpha: float = 0.05

    def summary(self) -> pd.DataFrame:
        return self.comparisons

    def to_metrics(self, prefix: str = "experiment") -> dict:
        from workbench.models.experiments.arms import finite, metric_key

        out = {}
        for _, r in self.comparisons.iterrows():
            key = f"{prefix}.{self.metric}.{metric_key(r['arm'])}"
            for stat, col in (("rmst_difference", "rmst_difference"), ("rmst_difference_ci_low", "ci_low"),
                              ("rmst_difference_ci_high", "ci_high"), ("hazard_ratio", "hazard_ratio"),
                              ("hazard_ratio_ci_low", "hr_ci_low"), ("hazard_ratio_ci_high", "hr_ci_high")):
                if finite(r[col]):
                    out[f"{key}.{stat}"] = float(r[col])
        return out

    def _repr_html_(self) -> str:
        import html

        notes = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes)
        return (f"<strong>{html.escape(self.metric)}: restricted mean up to {self.horizon:g} days, hazard ratio</strong>"
                + self.rmst.to_html(index=False, float_format=lambda v: f"{v:,.4g}")
                + self.comparisons.to_html(index=False, float_format=lambda v: f"{v:,.4g}")
                + (f"<ul>{notes}</ul>" if notes else ""))


def time_to_event_effects(counts: pd.DataFrame, *, metric: str, horizon: float, alpha: float = 0.05) -> TimeToEventResult:
    """Kaplan-Meier per arm, RMST at ``horizon`` days and the hazard ratio of
    each arm against control for one metric of ``counts`` (columns metric,
    arm, days, event, users). Raises ModelError without a control arm or
    users; what cannot be estimated for one arm is a note."""
    where = f"time_to_event_effects({metric})"
    sub = counts[counts["metric"] == metric].copy()
    sub["arm"] = sub["arm"].astype(str)
    sub = sub[sub["users"] > 0]
    if sub.empty or CONTROL_ARM not in set(sub["arm"]):
        raise ModelError(f"{where}: no users in the control arm for this metric.")
    notes = []
    curves = kaplan_meier(sub, duration="days", event="event", group="arm", weights="users", alpha=alpha,
                          label=f"{metric} by arm", time_origin="assignment", logrank=False)
    z = stats.norm.ppf(1 - alpha / 2)
    per_arm = {}
    for arm, g in sub.groupby("arm", sort=True):
        km = km_estimate(g["days"].to_numpy(float), g["event"].to_numpy(float), g["users"].to_numpy(float))
        users, events = float(g["users"].sum()), float(g.loc[g["event"] == 1, "users"].sum())
        follow = float(g["days"].max())
        if follow < horizon and (len(km.survival) == 0 or km.survival[-1] > 0):
            notes.append(f"{metric}: arm '{arm}' is followed for at most {follow:g} days after assignment, less than the "
                         f"{horizon:g}-day horizon, so its restricted mean time cannot be estimated; choose a shorter horizon.")
            value, var = np.nan, np.nan
        else:
            value, var = rmst(km, horizon)
        se = np.sqrt(var) if np.isfinite(var) else np.nan
        per_arm[arm] = {"arm": arm, "users": users, "events": events, "rmst": value, "std_err": se,
                        "ci_low": value - z * se, "ci_high": value + z * se}
    table = pd.DataFrame(per_arm.values(), columns=RMST_COLUMNS)
    hr = _hazard_ratios(sub, metric, alpha, notes)
    comps = []
    c = per_arm[CONTROL_ARM]
    for arm, a in per_arm.items():
        if arm == CONTROL_ARM:
            continue
        diff = a["rmst"] - c["rmst"]
        se = np.sqrt(a["std_err"] ** 2 + c["std_err"] ** 2)
        rel = a["rmst"] / c["rmst"] - 1 if c["rmst"] else np.nan
        events = a["events"] + c["events"]
        h = hr.get(arm, (np.nan, np.nan, np.nan, np.nan))
        share = a["users"] / (a["users"] + c["users"])
        mde = mde_hazard_ratio(events=events, alpha=alpha, allocation=share).hazard_ratio if events > 0 and 0 < share < 1 else np.nan
        comps.append({"arm": arm, "rmst_difference": diff, "std_err": se, "ci_low": diff - z * se, "ci_high": diff + z * se,
                      "relative_effect": rel, "p_value": float(2 * stats.norm.sf(abs(diff / se))) if se > 0 else np.nan,
                      "hazard_ratio": h[0], "hr_ci_low": h[1], "hr_ci_high": h[2], "hr_p_value": h[3], "events": events,
                      "mde_hazard_ratio": mde})
    return TimeToEventResult(metric=metric, horizon=float(horizon), curves=curves, rmst=table,
                             comparisons=pd.DataFrame(comps, columns=COMPARISON_COLUMNS), notes=tuple(notes), alpha=alpha)


def _hazard_ratios(sub: pd.DataFrame, metric: str, alpha: float, notes: list) -> dict:
    """arm -> (HR, CI low, CI high, p) from one Cox model with an indicator per arm."""
    data = sub[sub["days"] > 0].copy()
    arms = sorted(a for a in data["arm"].unique() if a != CONTROL_ARM)
    if not arms or CONTROL_ARM not in set(data["arm"]):
        return {}
    cols = []
    for arm in arms:
        col = f"arm[{arm}]"
        data[col] = (data["arm"] == arm).astype(float)
        cols.append(col)
    try:
        fit = fit_cox(data, covariates=cols, stop="days", event="event", start=None, weights="users", cluster=None,
                      se="model", keep_residuals=False, label=f"{metric}: Cox model by arm", alpha=alpha)
    except ModelError as exc:
        notes.append(f"{metric}: no hazard ratio: {exc}")
        return {}
    t = fit.summary()
    return {arm: (float(t.loc[col, "hazard_ratio"]), float(t.loc[col, "hr_ci_low"]), float(t.loc[col, "hr_ci_high"]),
                  float(t.loc[col, "p_value"])) for arm, col in zip(arms, cols)}


__all__ = ["COMPARISON_COLUMNS", "RMST_COLUMNS", "TimeToEventResult", "rmst", "time_to_event_effects"]
