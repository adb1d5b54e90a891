"""Hazard-ratio tables and metric names shared by every survival result."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from workbench.models.results import summary_frame


def metric_name(name: str) -> str:
    """A coefficient name as a metrics.json key part: ``segment[mainstream]`` -> ``segment_mainstream``."""
    return name.replace("[", "_").replace("]", "").replace(" ", "_").replace(">=", "ge").replace("=", "")


def hr_table(names, estimates, std_errs, *, alpha: float = 0.05) -> pd.DataFrame:
    """Log hazard ratios (estimate, std_err, ci_low, ci_high), hazard ratios with
    their interval (hazard_ratio, hr_ci_low, hr_ci_high), z and the two-sided p-value."""
    t = summary_frame(names, estimates, std_errs, alpha=alpha)
    t["hazard_ratio"] = np.exp(t["estimate"])
    t["hr_ci_low"] = np.exp(t["ci_low"])
    t["hr_ci_high"] = np.exp(t["ci_high"])
    t["z"] = t["estimate"] / t["std_err"]
    t["p_value"] = 2 * stats.norm.sf(np.abs(t["z"]))
    return t


def hr_metrics(prefix: str, table: pd.DataFrame) -> dict:
    """``prefix.hr.<term>`` with ``_ci_low``/``_ci_high`` from a hazard-ratio table."""
    out = {}
    for name, row in table.iterrows():
        key = f"{prefix}.hr.{metric_name(name)}"
        out[key] = float(row["hazard_ratio"])
        out[f"{key}_ci_low"] = float(row["hr_ci_low"])
        out[f"{key}_ci_high"] = float(row["hr_ci_high"])
    return out


__all__ = ["hr_metrics", "hr_table", "metric_name"]
