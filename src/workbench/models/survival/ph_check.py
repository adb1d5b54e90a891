"""The proportional-hazards check: of an exact Cox fit, from scaled
Schoenfeld residuals and the Grambsch-Therneau slope test (R's legacy
``cox.zph``); of a discrete-time fit on aggregated risk sets, as a tenure
interaction (each covariate times transformed tenure) in the same
grouped-time model, with the exposure's hazard ratio per tenure band."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from workbench.errors import ModelError, ParameterError
from workbench.models.inputs import design_matrix
from workbench.models.results import Result
from workbench.models.survival.cox import CoxResult
from workbench.models.survival.discrete import DiscreteHazardResult, fit_binned_glm
from workbench.models.survival.summaries import hr_table, metric_name

TRANSFORMS = ("rank", "identity", "log")

@dataclass(frozen=True)
class PHCheckResult(Result):
    """Proportional-hazards check.

    ``method="schoenfeld"`` (exact Cox): ``tests`` per covariate holds the
    correlation ``rho`` between the scaled residuals and transformed event
    time, the Grambsch-Therneau chi-square (1 df) and its p-value, plus a
    ``GLOBAL`` row; ``residuals``: event time and scaled residual per
    covariate (``beta + D V r``: an estimate of the log hazard ratio at that
    time), subsampled for plotting; ``smooth``: a lowess curve of each.

    ``method="tenure_interaction"`` (discrete time on risk sets): ``tests``
    holds each covariate's interaction with transformed tenure (Wald
    chi-square, 1 df; ``rho`` is NaN) and the joint ``GLOBAL`` test;
    ``by_tenure``: the exposure's hazard ratio in tenure bands of about equal
    churn counts (``from_bin``/``to_bin``, ``events``, ``hazard_ratio`` and
    interval); ``residuals`` and ``smooth`` are empty.
    """

    label: str
    transform: str
    tests: pd.DataFrame
    residuals: pd.DataFrame
    smooth: pd.DataFrame
    params: pd.Series
    alpha: float = 0.05
    method: str = "schoenfeld"
    by_tenure: pd.DataFrame | None = None
    exposure: str | None = None

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
        how = ("scaled Schoenfeld residuals" if self.method == "schoenfeld"
               else "tenure interaction in the discrete-time model")
        out = (f"<strong>Proportional-hazards check ({self.label})</strong>: {how}, time transform: {self.transform}"
               + self.tests.to_html(float_format=lambda v: f"{v:.4g}"))
        if self.by_tenure is not None:
            out += "<em>Hazard ratio by tenure band</em>" + self.by_tenure.to_html(float_format=lambda v: f"{v:.4g}")
        return out


def proportional_hazards_check(result, *, transform: str = "rank", max_points: int = 4000, seed: int = 0,
                               bands: int = 4) -> PHCheckResult:
    """The proportional-hazards check of ``result``: a :class:`CoxResult`
    (Schoenfeld residuals, below) or a :class:`DiscreteHazardResult` (a tenure
    interaction: each covariate times the centred transform of the tenure bin
    -- ``"rank"``: the mid-rank of its churns among all churns, as in
    ``cox.zph``; ``"identity"``: the bin; ``"log"``: log(bin + 1/2) -- added to
    the same grouped-time model, Wald tests per covariate and jointly; plus the
    exposure's hazard ratio in ``bands`` tenure bands).

    For a Cox fit: scaled Schoenfeld residuals and the Grambsch-Therneau test of each
    covariate's slope against (transformed) time, as in R's legacy ``cox.zph``:
    ``chi2_k = (sum g_i r*_ik)^2 / (D V_kk sum g_i^2)`` with ``g`` the centred
    time transform (``"rank"``, ``"identity"`` or ``"log"``), ``r*`` the
    scaled residuals minus beta and ``V`` the model-based covariance.
    A small p-value says the hazard ratio drifts over tenure."""
    if transform not in TRANSFORMS:
        raise ParameterError(f"transform must be 'rank', 'identity' or 'log', got {transform!r}")
    if isinstance(result, DiscreteHazardResult):
        return _tenure_interaction(result, transform, bands)
    if not isinstance(result, CoxResult):
        raise ParameterError(f"proportional_hazards_check: expected a Cox or discrete-time result, got {type(result).__name__}")
    if result.schoenfeld is None:
        raise ParameterError(f"{result.label}: fitted without residuals; refit with keep_residuals=True.")
    if result.weighted:
        raise ParameterError(f"{result.label}: the Grambsch-Therneau test here is for unweighted fits; check the "
                             "unweighted model instead.")
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
    for name in names:
        sm[name] = lowess(res[name].to_numpy()[order], sm["time"], frac=0.3, return_sorted=False, it=0)
    return PHCheckResult(label=result.label, transform=transform, tests=tests, residuals=res.iloc[order].reset_index(drop=True),
                         smooth=pd.DataFrame(sm), params=result.params, alpha=result.alpha,
                         exposure=result.exposure)


def _tenure_interaction(result: DiscreteHazardResult, transform: str, bands: int) -> PHCheckResult:
    where = f"{result.label}: proportional-hazards check"
    if result.data is None:
        raise ParameterError(f"{where} needs a fit from discrete_time_hazard (it keeps its cells).")
    if not isinstance(bands, int) or bands < 1:
        raise ParameterError(f"{where}: bands must be a positive whole number, got {bands!r}")
    df = result.data
    names = list(result.params.index)
    X, got = design_matrix(df, [result.exposure, *result.adjusted_for], where=where)
    ev = df["events"].to_numpy(float)
    n = df["at_risk"].to_numpy(float)
    b = df["tenure_bin"].to_numpy()
    days = df["exposure_days"].to_numpy(float) if result.link == "poisson" else None
    ub, inv = np.unique(b, return_inverse=True)
    e_bin = np.bincount(inv, weights=ev)
    if transform == "rank":  # mid-rank of a bin's churns among all churns in time order
        g_bin = np.cumsum(e_bin) - e_bin + (e_bin + 1) / 2
    elif transform == "identity":
        g_bin = ub.astype(float)
    else:
        g_bin = np.log(ub + 0.5)
    g_bin = g_bin - np.average(g_bin, weights=np.maximum(e_bin, 0)) if e_bin.sum() > 0 else g_bin
    g_bin = g_bin / (np.abs(g_bin).max() or 1.0)  # scale: coefficients per unit of the (normalized) transform
    g = g_bin[inv]
    k = X.shape[1]
    fit = fit_binned_glm(ev, n, np.column_stack([X, X * g[:, None]]), b, link=result.link, exposure_days=days, where=where)
    coef, gamma = fit.params[k:], fit.cov[k:, k:]
    chi2 = coef**2 / np.diag(gamma)
    glob = float(coef @ np.linalg.solve(gamma, coef))
    tests = pd.DataFrame({"rho": [np.nan] * (k + 1), "chi2": list(chi2) + [glob], "df": [1] * k + [k],
                          "interaction": list(coef) + [np.nan]}, index=pd.Index(got + ["GLOBAL"], name="covariate"))
    tests["p_value"] = stats.chi2.sf(tests["chi2"], tests["df"])
    # the exposure's hazard ratio per tenure band of about equal churn counts
    cum = np.cumsum(e_bin) / max(e_bin.sum(), 1)
    band_of_bin = np.minimum((cum * bands - 1e-9).astype(int), bands - 1)
    band = band_of_bin[inv]
    present = np.unique(band)
    xe = X[:, 0]
    Xb = np.column_stack([xe * (band == j) for j in present] + ([X[:, 1:]] if k > 1 else []))
    fb = fit_binned_glm(ev, n, Xb, b, link=result.link, exposure_days=days, where=where)
    t = hr_table([f"band {j + 1}" for j in present], fb.params[: len(present)], np.sqrt(np.diag(fb.cov))[: len(present)],
                 alpha=result.alpha)
    by = pd.DataFrame({"from_bin": [int(ub[band_of_bin == j].min()) for j in present],
                       "to_bin": [int(ub[band_of_bin == j].max()) for j in present],
                       "events": [float(e_bin[band_of_bin == j].sum()) for j in present]}, index=t.index)
    by = by.join(t[["hazard_ratio", "hr_ci_low", "hr_ci_high"]])
    by.index.name = "band"
    empty = pd.DataFrame(columns=["time", *names])
    return PHCheckResult(label=result.label, transform=transform, tests=tests, residuals=empty, smooth=empty, params=result.params,
                         alpha=result.alpha, method="tenure_interaction", by_tenure=by, exposure=result.exposure)


__all__ = ["PHCheckResult", "proportional_hazards_check"]
