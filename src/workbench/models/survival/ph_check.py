"""The proportional-hazards check of a Cox fit: scaled Schoenfeld residuals
and the Grambsch-Therneau slope test (R's legacy ``cox.zph``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from workbench.errors import ModelError, ParameterError
from workbench.models.results import Result
from workbench.models.survival.cox import CoxResult
from workbench.models.survival.summaries import metric_name

@dataclass(frozen=True)
class PHCheckResult(Result):
    """Proportional-hazards check from scaled Schoenfeld residuals.

    ``tests``: per covariate, the correlation ``rho`` between the scaled
    residuals and transformed event time, the Grambsch-Therneau chi-square
    (1 df) and its p-value, plus a ``GLOBAL`` row. ``residuals``: event time
    and scaled residual per covariate (``beta + D V r``: an estimate of the
    log hazard ratio at that time), subsampled for plotting; ``smooth``: a
    lowess curve of each against time.
    """

    label: str
    transform: str
    tests: pd.DataFrame
    residuals: pd.DataFrame
    smooth: pd.DataFrame
    params: pd.Series
    alpha: float = 0.05

    def summary(self) -> pd.DataFrame:
        return self.tests

    def violated(self, level: float = 0.01) -> list[str]:
        """Covariates whose test rejects proportional hazards at ``level``."""
        t = self.tests.drop(index="GLOBAL", errors="ignore")
        return list(t.index[t["p_value"] < level])

    def to_metrics(self, prefix: str = "ph_check") -> dict:
        out = {}
        for name, row in self.tests.iterrows():
            out[f"{prefix}.{metric_name(name)}.p_value"] = float(row["p_value"])
        return out

    def _repr_html_(self) -> str:
        return (f"<strong>Proportional-hazards check ({self.label})</strong>, time transform: {self.transform}"
                + self.tests.to_html(float_format=lambda v: f"{v:.4g}"))


def proportional_hazards_check(result: CoxResult, *, transform: str = "rank", max_points: int = 4000,
                               seed: int = 0) -> PHCheckResult:
    """Scaled Schoenfeld residuals and the Grambsch-Therneau test of each
    covariate's slope against (transformed) time, as in R's legacy ``cox.zph``:
    ``chi2_k = (sum g_i r*_ik)^2 / (D V_kk sum g_i^2)`` with ``g`` the centred
    time transform (``"rank"``, ``"identity"`` or ``"log"``), ``r*`` the
    scaled residuals minus beta and ``V`` the model-based covariance.
    A small p-value says the hazard ratio drifts over tenure."""
    if result.schoenfeld is None:
        raise ParameterError(f"{result.label}: fitted without residuals; refit with keep_residuals=True.")
    if result.weighted:
        raise ParameterError(f"{result.label}: the Grambsch-Therneau test here is for unweighted fits; check the "
                             "unweighted model instead.")
    if transform not in ("rank", "identity", "log"):
        raise ParameterError(f"transform must be 'rank', 'identity' or 'log', got {transform!r}")
    sch = result.schoenfeld
    names = list(result.params.index)
    R = sch[names].to_numpy()
    t = sch["time"].to_numpy()
    D = len(t)
    if D < 3:
        raise ModelError(f"{result.label}: only {D} events; the proportional-hazards check needs at least 3.")
    V = result.cov_model.to_numpy()
    scaled = D * R @ V  # scaled residuals minus beta
    g = {"rank": stats.rankdata(t), "identity": t, "log": np.log(np.maximum(t, 1e-9))}[transform]
    g = g - g.mean()
    test = g @ scaled
    sgg = float(g @ g)
    chi2 = test**2 / (np.diag(V) * D * sgg)
    rho = [float(np.corrcoef(g, scaled[:, k])[0, 1]) if np.ptp(scaled[:, k]) > 0 else np.nan for k in range(len(names))]
    raw = g @ R
    glob = float(raw @ V @ raw * D / sgg)
    tests = pd.DataFrame({"rho": rho + [np.nan], "chi2": list(chi2) + [glob], "df": [1] * len(names) + [len(names)]},
                         index=pd.Index(names + ["GLOBAL"], name="covariate"))
    tests["p_value"] = stats.chi2.sf(tests["chi2"], tests["df"])
    beta = result.params.to_numpy()
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(D, size=min(D, max_points), replace=False))
    res = pd.DataFrame(scaled[keep] + beta, columns=names)
    res.insert(0, "time", t[keep])
    from statsmodels.nonparametric.smoothers_lowess import lowess

    order = np.argsort(res["time"].to_numpy())
    sm = {"time": res["time"].to_numpy()[order]}
    for k, name in enumerate(names):
        sm[name] = lowess(res[name].to_numpy()[order], sm["time"], frac=0.3, return_sorted=False, it=0)
    return PHCheckResult(label=result.label, transform=transform, tests=tests, residuals=res.iloc[order].reset_index(drop=True),
                         smooth=pd.DataFrame(sm), params=result.params, alpha=result.alpha)


__all__ = ["PHCheckResult", "proportional_hazards_check"]
