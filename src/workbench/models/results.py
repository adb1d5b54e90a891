"""Shared pieces of model results: the summary-table shape and the HTML repr.

Every model returns a frozen dataclass that mixes in :class:`Result` and
implements ``summary()`` (a tidy DataFrame indexed by parameter with columns
``estimate, std_err, ci_low, ci_high``) and ``to_metrics()`` (a flat dict of
dotted names for ``metrics.json``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

SUMMARY_COLUMNS = ["estimate", "std_err", "ci_low", "ci_high"]


def summary_frame(names, estimates, std_errs=None, ci_low=None, ci_high=None, *, alpha=0.05) -> pd.DataFrame:
    """A summary table; missing intervals are Wald intervals from the std errs."""
    est = np.asarray(estimates, dtype=float)
    se = np.full_like(est, np.nan) if std_errs is None else np.asarray(std_errs, dtype=float)
    z = stats.norm.ppf(1 - alpha / 2)
    lo = est - z * se if ci_low is None else np.asarray(ci_low, dtype=float)
    hi = est + z * se if ci_high is None else np.asarray(ci_high, dtype=float)
    return pd.DataFrame({"estimate": est, "std_err": se, "ci_low": lo, "ci_high": hi}, index=pd.Index(list(names), name="parameter"))


def summary_metrics(prefix: str, table: pd.DataFrame) -> dict:
    """``prefix.name``, ``prefix.name_ci_low``, ``prefix.name_ci_high`` for each row."""
    out = {}
    for name, row in table.iterrows():
        out[f"{prefix}.{name}"] = float(row["estimate"])
        if np.isfinite(row.get("ci_low", np.nan)):
            out[f"{prefix}.{name}_ci_low"] = float(row["ci_low"])
            out[f"{prefix}.{name}_ci_high"] = float(row["ci_high"])
    return out


class Result:
    """Mixin for result dataclasses: notebook display from ``summary()``."""

    def summary(self) -> pd.DataFrame:  # pragma: no cover - implemented by each result
        raise NotImplementedError

    def to_metrics(self) -> dict:  # pragma: no cover
        raise NotImplementedError

    def _repr_html_(self) -> str:
        title = type(self).__name__
        return f"<strong>{title}</strong>" + self.summary().to_html(float_format=lambda v: f"{v:.4g}")
