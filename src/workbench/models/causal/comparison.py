"""The side-by-side table of hazard ratios that shows why the naive estimate is wrong."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from workbench.errors import ModelError
from workbench.models.causal.landmark_ipw import LandmarkIPWResult
from workbench.models.results import Result, summary_frame

#: what each estimate in the comparison answers, and how it can be biased
ESTIMATE_NOTES = {
    "naive_ever": "NAIVE: ever co-created vs never, fixed from signup. Biased toward protection: co-creators had to survive "
                  "long enough to co-create (immortal time), and enthusiasts co-create more (confounding).",
    "time_varying": "Co-creation as a time-varying exposure, unadjusted: no immortal time, but still confounded by "
                    "who co-creates.",
    "adjusted": "Time-varying exposure, adjusted for user attributes: the per-exposure hazard ratio (the default answer).",
    "discrete_time": "Discrete-time (cloglog) model on aggregated risk sets: the scalable version of the adjusted model.",
    "landmark": "Landmark: co-created by the landmark day vs not yet, unweighted: frozen status, confounded.",
    "weighted": "Landmark with inverse probability weighting on pre-landmark covariates: effect of having co-created by "
                "the landmark (diluted toward 1 when many others co-create later).",
}


@dataclass(frozen=True)
class HazardRatioComparison(Result):
    """The naive "ever co-created" hazard ratio beside the ones that avoid
    immortal time and adjust for confounding, with what each answers."""

    table: pd.DataFrame

    def summary(self) -> pd.DataFrame:
        t = self.table
        return summary_frame(t.index, t["hazard_ratio"], None, t["ci_low"], t["ci_high"])

    def to_metrics(self, prefix: str = "retention.hr") -> dict:
        out = {}
        for name, row in self.table.iterrows():
            out[f"{prefix}.{name}"] = float(row["hazard_ratio"])
            if name != "naive_ever" and np.isfinite(row["ci_low"]):
                out[f"{prefix}.{name}_ci_low"] = float(row["ci_low"])
                out[f"{prefix}.{name}_ci_high"] = float(row["ci_high"])
        return out

    def _repr_html_(self) -> str:
        return "<strong>Hazard ratio of co-creation, estimated five ways</strong>" + self.table.to_html(
            float_format=lambda v: f"{v:.3f}")


def compare_hazard_ratios(**estimates) -> HazardRatioComparison:
    """Side-by-side table. Each keyword is a name (``naive_ever``,
    ``time_varying``, ``adjusted``, ``discrete_time``, ``landmark``,
    ``weighted`` or any other) and a result with ``hazard_ratio()`` or a
    ``(hr, ci_low, ci_high)`` tuple; None values are skipped (e.g. an analysis
    the dataset cannot support)."""
    rows = {}
    for name, value in estimates.items():
        if value is None:
            continue
        if isinstance(value, tuple):
            hr, lo, hi = value
        elif isinstance(value, LandmarkIPWResult):
            which = "unweighted" if name == "landmark" else "weighted"
            hr, lo, hi = value.hazard_ratio(which)
        else:
            hr, lo, hi = value.hazard_ratio()
        rows[name] = {"hazard_ratio": hr, "ci_low": lo, "ci_high": hi, "what it answers": ESTIMATE_NOTES.get(name, name)}
    if not rows:
        raise ModelError("compare_hazard_ratios: no estimates given.")
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "estimate"
    return HazardRatioComparison(table=table)



__all__ = ["ESTIMATE_NOTES", "HazardRatioComparison", "compare_hazard_ratios"]
