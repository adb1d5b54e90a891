"""The E-value (VanderWeele & Ding 2017): how strongly an unmeasured
confounder would have to be associated with both co-creation and churn to
explain a hazard ratio away."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from workbench.errors import ParameterError
from workbench.models.results import Result


@dataclass(frozen=True)
class EValueResult(Result):
    """E-value of a hazard ratio and of its confidence limit nearest 1.

    ``risk_ratio`` is the hazard ratio on the risk-ratio scale used for the
    E-value: the hazard ratio itself when the outcome is rare (``rare_outcome``),
    otherwise VanderWeele's transformation for common outcomes
    ``RR = (1 - 0.5^sqrt(HR)) / (1 - 0.5^sqrt(1/HR))``.
    """

    hazard_ratio: float
    ci_low: float
    ci_high: float
    risk_ratio: float
    e_value: float
    e_value_ci: float
    rare_outcome: bool

    @property
    def transformation(self) -> str:
        return ("rare outcome: RR = HR" if self.rare_outcome
                else "common outcome: RR = (1 - 0.5^sqrt(HR)) / (1 - 0.5^sqrt(1/HR))")

    def summary(self) -> pd.DataFrame:
        return pd.DataFrame({"estimate": [self.e_value, self.e_value_ci], "std_err": [np.nan, np.nan],
                             "ci_low": [np.nan, np.nan], "ci_high": [np.nan, np.nan]},
                            index=pd.Index(["e_value", "e_value_ci"], name="parameter"))

    def to_metrics(self, prefix: str = "evalue") -> dict:
        return {prefix: self.e_value, f"{prefix}_ci": self.e_value_ci}

    def sentence(self) -> str:
        """The E-value in plain words."""
        return (f"an unmeasured confounder would need a risk ratio of at least {self.e_value:.2f} with both co-creation "
                f"and churn (beyond the measured covariates) to explain the hazard ratio of {self.hazard_ratio:.2f} away, "
                f"and {self.e_value_ci:.2f} to move its confidence interval to include 1")

    def _repr_html_(self) -> str:
        return (f"<strong>E-value</strong> ({self.transformation})<br>hazard ratio {self.hazard_ratio:.3f} "
                f"({self.ci_low:.3f}-{self.ci_high:.3f}) &rarr; risk ratio {self.risk_ratio:.3f}<br>"
                f"E-value {self.e_value:.3f}; for the confidence limit nearest 1: {self.e_value_ci:.3f}")


def _hr_to_rr(hr: float, rare: bool) -> float:
    if rare:
        return hr
    return (1 - 0.5 ** np.sqrt(hr)) / (1 - 0.5 ** np.sqrt(1 / hr))


def _evalue_rr(rr: float) -> float:
    rr = 1 / rr if rr < 1 else rr
    return float(rr + np.sqrt(rr * (rr - 1)))


def e_value(hazard_ratio: float, *, ci_low: float | None = None, ci_high: float | None = None,
            rare_outcome: bool | None = None, outcome_share: float | None = None) -> EValueResult:
    """E-value for a hazard ratio (VanderWeele & Ding 2017).

    With ``rare_outcome=True`` (the outcome, here churn by the end of
    follow-up, happens to less than about 15% of users) the hazard ratio is
    used as a risk ratio; otherwise it is first converted with
    ``RR = (1 - 0.5^sqrt(HR)) / (1 - 0.5^sqrt(1/HR))``. If ``rare_outcome``
    is None it is decided from ``outcome_share`` (< 0.15: rare); one of the
    two must be given. The E-value of the interval uses the limit nearest 1,
    and is 1 when the interval includes 1.
    """
    for name, v in (("hazard_ratio", hazard_ratio), ("ci_low", ci_low), ("ci_high", ci_high)):
        if v is not None and not (np.isfinite(v) and v > 0):
            raise ParameterError(f"e_value: {name} must be a positive finite number, got {v!r}")
    if rare_outcome is None:
        if outcome_share is None:
            raise ParameterError("e_value: say whether churn is rare (rare_outcome=True/False) or give outcome_share, "
                                 "the share of users who churned during follow-up.")
        rare_outcome = bool(outcome_share < 0.15)
    lo = hazard_ratio if ci_low is None else ci_low
    hi = hazard_ratio if ci_high is None else ci_high
    if not lo <= hazard_ratio <= hi:
        raise ParameterError(f"e_value: the interval ({lo}, {hi}) does not contain the hazard ratio {hazard_ratio}.")
    rr = _hr_to_rr(hazard_ratio, rare_outcome)
    ev = _evalue_rr(rr) if rr != 1 else 1.0
    if lo <= 1 <= hi:
        ev_ci = 1.0
    else:
        nearest = lo if hazard_ratio > 1 else hi
        ev_ci = _evalue_rr(_hr_to_rr(nearest, rare_outcome))
    return EValueResult(hazard_ratio=float(hazard_ratio), ci_low=float(lo), ci_high=float(hi), risk_ratio=float(rr),
                        e_value=float(ev), e_value_ci=float(ev_ci), rare_outcome=bool(rare_outcome))



__all__ = ["EValueResult", "e_value"]
