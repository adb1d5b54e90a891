"""Heterogeneous effects: the effect of each arm in each level of a user
attribute (segment, channel, ...), a test of whether it differs between
levels, and multiplicity control over both.

Input: ``workbench.tables.experiment_arm_stats(..., segment_by=...)`` as
pandas. Within each level the effect is estimated exactly as for the whole
experiment (:func:`~workbench.models.experiments.effects.fixed_horizon_effects`,
CUPED with that level's own theta). The interaction test is Cochran's Q,
``sum_l w_l (effect_l - pooled)^2`` with ``w_l = 1 / std_err_l^2``, against a
chi-square with (levels - 1) degrees of freedom: the Wald test that every
level has the same effect, as in a regression of the metric on arm x level
with separate variances per cell. Users with a missing value of the
attribute form their own level, ``(missing)``. P-values of the per-level
effects are adjusted over every (metric, arm, level), those of the
interaction tests over every (metric, arm).
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from workbench.models.experiments.arms import finite, metric_key
from workbench.models.experiments.effects import NO_CUPED, fixed_horizon_effects, quantile
from workbench.models.experiments.multiplicity import adjust
from workbench.models.results import Result

MISSING = "(missing)"


@dataclass(frozen=True)
class HeterogeneityResult(Result):
    """Effects per level of ``segment_by`` and the interaction tests."""

    segment_by: str
    effects: pd.DataFrame
    interactions: pd.DataFrame
    correction: str
    notes: tuple = ()
    alpha: float = 0.05

    def summary(self) -> pd.DataFrame:
        return self.effects

    def to_metrics(self, prefix: str = "experiment") -> dict:
        out = {}
        for _, r in self.interactions.iterrows():
            key = f"{prefix}.{r['metric']}.{metric_key(r['arm'])}.by_{metric_key(self.segment_by)}"
            for stat in ("p_value", "p_adjusted"):
                if finite(r[stat]):
                    out[f"{key}.interaction_{stat}"] = float(r[stat])
        for _, r in self.effects.iterrows():
            key = f"{prefix}.{r['metric']}.{metric_key(r['arm'])}.{metric_key(self.segment_by)}_{metric_key(r['level'])}"
            for stat in ("effect", "ci_low", "ci_high", "p_adjusted"):
                if finite(r[stat]):
                    out[f"{key}.{'effect_' + stat if stat.startswith('ci') else stat}"] = float(r[stat])
        return out

    def _repr_html_(self) -> str:
        cols = ["metric", "arm", "level", "n_control", "n_arm", "effect", "ci_low", "ci_high", "p_value", "p_adjusted"]
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes)
        return (f"<strong>Effects by {html.escape(self.segment_by)}</strong> ({html.escape(self.correction)} adjustment)"
                + self.effects[cols].to_html(index=False, float_format=lambda v: f"{v:,.4g}")
                + "<strong>Does the effect differ between levels?</strong> (Cochran's Q)"
                + self.interactions.to_html(index=False, float_format=lambda v: f"{v:,.4g}")
                + (f"<ul>{notes}</ul>" if notes else ""))


def heterogeneity(segment_stats: pd.DataFrame, *, segment_by: str, metrics, cuped: bool = True, correction: str = "holm",
                  alpha: float = 0.05) -> HeterogeneityResult:
    """Effect per level of ``segment_by`` for every (metric, arm), Cochran's
    Q test of equal effects across levels, adjusted p-values (and adjusted
    intervals) by ``correction``."""
    stats_ = segment_stats.copy()
    stats_[segment_by] = stats_[segment_by].astype(object).where(stats_[segment_by].notna(), MISSING).astype(str)
    parts, notes = [], []
    for level, g in stats_.groupby(segment_by, sort=True):
        eff, level_notes = fixed_horizon_effects(g, metrics=metrics, cuped=cuped, alpha=alpha)
        notes += [f"{segment_by} = {level}: {n}" for n in level_notes if not n.startswith(NO_CUPED)]
        eff.insert(2, "level", level)
        parts.append(eff)
    effects = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    inter = []
    for (metric, arm), g in effects.groupby(["metric", "arm"], sort=False):
        g = g[(g["std_err"] > 0) & np.isfinite(g["effect"])]
        if len(g) < 2:
            notes.append(f"{metric}, arm '{arm}': fewer than two levels of {segment_by} with an estimate; no interaction test.")
            inter.append({"metric": metric, "arm": arm, "levels": len(g), "q": np.nan, "df": np.nan, "p_value": np.nan})
            continue
        w = 1 / g["std_err"].to_numpy() ** 2
        e = g["effect"].to_numpy()
        pooled = float((w * e).sum() / w.sum())
        q = float((w * (e - pooled) ** 2).sum())
        inter.append({"metric": metric, "arm": arm, "levels": len(g), "q": q, "df": len(g) - 1,
                      "p_value": float(stats.chi2.sf(q, len(g) - 1))})
    interactions = pd.DataFrame(inter, columns=["metric", "arm", "levels", "q", "df", "p_value"])
    interactions["p_adjusted"], _ = adjust(interactions["p_value"], correction, alpha)
    if not effects.empty:
        effects["p_adjusted"], adj_alpha = adjust(effects["p_value"], correction, alpha)
        q_adj = np.array([quantile(adj_alpha, df) for df in effects["df"]])
        effects["adj_ci_low"] = effects["effect"] - q_adj * effects["std_err"]
        effects["adj_ci_high"] = effects["effect"] + q_adj * effects["std_err"]
    return HeterogeneityResult(segment_by=segment_by, effects=effects, interactions=interactions, correction=correction,
                               notes=tuple(notes), alpha=alpha)


__all__ = ["HeterogeneityResult", "MISSING", "heterogeneity"]
