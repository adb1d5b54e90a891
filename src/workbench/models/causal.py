"""Causal adjustment for co-creation and retention: landmark analysis with
inverse probability weighting, the E-value, and the side-by-side table of
hazard ratios that shows why the naive estimate is wrong.

Landmark analysis (:func:`landmark_ipw`). At each landmark day ``d`` the
users still at risk are split by whether they had co-created by ``d``; their
retention is followed from ``d`` on with that status frozen, so no immortal
time enters. Because co-creators differ from others before ``d`` (e.g.
enthusiasts co-create more and churn less anyway), the propensity of having
co-created by ``d`` is modelled by logistic regression (statsmodels ``GLM``)
on pre-landmark attributes and engagement, and each user is weighted by the
inverse probability of the group they are in (stabilized ATE weights). The
weighted Cox model (the workbench's Cox fit with case weights, stratified by
landmark, cluster-robust by user) then compares the groups as if co-creation
by ``d`` had been assigned at random given those covariates. Overlap
diagnostics (propensity distributions, extreme propensities, effective sample
sizes, standardized mean differences before and after weighting) say whether
that comparison is supported by the data.

What it estimates: the effect of *having co-created by day d* on churn after
``d``, whatever happens later. Users in the comparison group may co-create
after ``d``, so this hazard ratio is closer to 1 than the per-exposure hazard
ratio of the time-varying Cox model when many of them do; it answers a
different (and more policy-like) question and is not expected to equal it.

The E-value (:func:`e_value`, VanderWeele & Ding 2017) is the minimum
strength of association, on the risk-ratio scale, that an unmeasured
confounder would need with both co-creation and churn to explain the
observed hazard ratio away.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from workbench.errors import ModelError, ParameterError, WorkbenchWarning
from workbench.models.results import Result, summary_frame
from workbench.models.inputs import as_list, design_matrix, require_columns
from workbench.models.survival import CoxResult, fit_cox, km_estimate


class OverlapWarning(WorkbenchWarning):
    """Co-creators and others barely overlap in their propensity: weights are extreme."""


# ===================================================================== E-value
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


# ===================================================================== landmark + IPW
@dataclass(frozen=True)
class LandmarkIPWResult(Result):
    """Landmark comparison of users who had co-created by day ``d`` with those
    who had not, unweighted and inverse-probability weighted.

    ``estimates``: one row per landmark and a ``pooled`` row (landmarks
    stacked, stratified by landmark, clustered by user), with users,
    co-creators, churn events, and the unweighted and weighted hazard
    ratios with intervals. ``overlap``: propensity summaries per landmark
    and group, extreme-propensity shares and effective sample sizes.
    ``balance``: standardized mean differences of each covariate before
    and after weighting. ``propensity``: per user and landmark, the
    propensity and weight (for the overlap plot). ``curves``: weighted
    Kaplan-Meier retention from each landmark by group (point estimates
    only: inverse probability weights are not frequency weights, so a
    Greenwood band on these curves would only be approximate).
    """

    landmarks: tuple
    covariates: tuple
    estimates: pd.DataFrame
    overlap: pd.DataFrame
    balance: pd.DataFrame
    propensity: pd.DataFrame = field(repr=False)
    curves: pd.DataFrame = field(repr=False)
    unweighted: CoxResult = field(repr=False)
    weighted: CoxResult = field(repr=False)
    evalue: EValueResult = field(repr=False)
    trim: float = 0.0
    alpha: float = 0.05

    def hazard_ratio(self, which: str = "weighted", landmark="pooled") -> tuple[float, float, float]:
        if which not in ("weighted", "unweighted"):
            raise ParameterError(f"which must be 'weighted' or 'unweighted', got {which!r}")
        key = landmark if landmark == "pooled" else float(landmark)
        if key not in self.estimates.index:
            raise ParameterError(f"no landmark {landmark!r}; have {list(self.estimates.index)}")
        row = self.estimates.loc[key]
        return float(row[f"hr_{which}"]), float(row[f"hr_{which}_ci_low"]), float(row[f"hr_{which}_ci_high"])

    def summary(self) -> pd.DataFrame:
        rows, names = [], []
        for key, r in self.estimates.iterrows():
            tag = "pooled" if key == "pooled" else f"day{key:g}"
            for which in ("unweighted", "weighted"):
                names.append(f"hr_{which}[{tag}]")
                rows.append((r[f"hr_{which}"], np.nan, r[f"hr_{which}_ci_low"], r[f"hr_{which}_ci_high"]))
        est, se, lo, hi = zip(*rows)
        return summary_frame(names, est, se, lo, hi)

    def to_metrics(self, prefix: str = "landmark") -> dict:
        out = {}
        for key, r in self.estimates.iterrows():
            tag = "pooled" if key == "pooled" else f"day{key:g}"
            for which in ("unweighted", "weighted"):
                out[f"{prefix}.{tag}.hr_{which}"] = float(r[f"hr_{which}"])
                out[f"{prefix}.{tag}.hr_{which}_ci_low"] = float(r[f"hr_{which}_ci_low"])
                out[f"{prefix}.{tag}.hr_{which}_ci_high"] = float(r[f"hr_{which}_ci_high"])
        out[f"{prefix}.evalue"] = self.evalue.e_value
        out[f"{prefix}.max_abs_smd_weighted"] = float(self.balance["smd_weighted"].abs().max())
        return out

    def _repr_html_(self) -> str:
        cols = ["users", "co_creators", "events", "hr_unweighted", "hr_unweighted_ci_low", "hr_unweighted_ci_high",
                "hr_weighted", "hr_weighted_ci_low", "hr_weighted_ci_high"]
        return ("<strong>Landmark analysis with inverse probability weighting</strong><br>propensity covariates: "
                + ", ".join(self.covariates) + self.estimates[cols].to_html(float_format=lambda v: f"{v:,.4g}")
                + "<br><em>Overlap</em>" + self.overlap.to_html(float_format=lambda v: f"{v:.3g}")
                + "<br><em>Balance (standardized mean differences)</em>" + self.balance.to_html(float_format=lambda v: f"{v:.3f}"))


def _separating_columns(X: np.ndarray, names: list[str], y: np.ndarray, params: np.ndarray | None) -> list[str]:
    """Design columns that (nearly) decide the treatment: an indicator whose
    users are all treated or all untreated, or a numeric column whose
    standardized coefficient is huge."""
    out = []
    for k, name in enumerate(names):
        x = X[:, k]
        if np.isin(x, (0.0, 1.0)).all():
            for v in (1.0, 0.0):  # 0 on a category indicator: the reference level (or the other levels)
                sel = x == v
                if sel.any() and np.ptp(y[sel]) == 0:
                    out.append(f"{name} = {v:g} ({'all' if y[sel][0] == 1 else 'none'} of its {int(sel.sum()):,} users co-created)")
        elif params is not None and (not np.isfinite(params[k + 1]) or abs(params[k + 1]) * np.std(x) > 10):
            out.append(f"{name} (coefficient {params[k + 1]:.3g})")
    return out


def _propensity(df: pd.DataFrame, covariates: list[str], treatment: str, where: str) -> tuple[np.ndarray, list[str], np.ndarray]:
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationError, PerfectSeparationWarning

    X, names = design_matrix(df, covariates, where=where)
    exog = np.column_stack([np.ones(len(df)), X])
    y = df[treatment].to_numpy(dtype=float)
    model = f"the propensity model (logistic regression of {treatment!r} on {', '.join(covariates)})"
    todo = ("Drop or coarsen the covariate(s) named, pool their rare levels, or restrict the analysis to users whose "
            "covariates occur among both co-creators and others (or use trim=...).")

    def separation(params):
        culprits = _separating_columns(X, names, y, params) or [f"the combination of {', '.join(covariates)}"]
        return ModelError(f"{where}: {model} separates co-creators from others perfectly or almost so: "
                          f"{'; '.join(culprits)}. Their propensities are 0 or 1, so inverse probability weights "
                          f"would be unbounded and the positivity assumption fails. {todo}")

    with warnings.catch_warnings():
        warnings.simplefilter("error", PerfectSeparationWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)  # checked below via fit.converged
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow on the way to separation; checked below
        try:
            fit = sm.GLM(y, exog, family=sm.families.Binomial()).fit(maxiter=100)
        except (PerfectSeparationWarning, PerfectSeparationError):
            raise separation(None) from None
    params = np.asarray(fit.params)
    ps = np.asarray(fit.fittedvalues)
    if not np.all(np.isfinite(params)) or not np.all(np.isfinite(ps)) or ((ps < 1e-8) | (ps > 1 - 1e-8)).any():
        raise separation(params)
    if not fit.converged:
        raise ModelError(f"{where}: {model} did not converge in 100 iterations, so the propensities and weights "
                         f"cannot be trusted. {todo}")
    return ps, names, X


def _smd(x, t, w=None):
    w = np.ones(len(x)) if w is None else w
    m1 = np.average(x[t == 1], weights=w[t == 1])
    m0 = np.average(x[t == 0], weights=w[t == 0])
    v1 = np.var(x[t == 1])  # the pooled sd of the unweighted groups in the denominator (Austin 2009)
    v0 = np.var(x[t == 0])
    sd = np.sqrt((v1 + v0) / 2)
    return float((m1 - m0) / sd) if sd > 0 else 0.0


def _ess(w):
    return float(w.sum() ** 2 / (w**2).sum()) if len(w) else 0.0


def landmark_ipw(landmark_df: pd.DataFrame, *, covariates, treatment: str = "exposed", trim: float = 0.0,
                 rare_outcome: bool | None = None, alpha: float = 0.05) -> LandmarkIPWResult:
    """Landmark analysis with inverse probability of co-creation weighting.

    ``landmark_df`` is :func:`workbench.models.survival.landmark_data` (one row
    per landmark and user at risk there, ``exposed`` frozen at the landmark,
    ``duration`` from the landmark), possibly joined with pre-landmark
    engagement columns. ``covariates`` are the pre-landmark attributes and
    engagement the propensity model uses (categorical ones as indicators).
    Weights are stabilized ATE weights ``P(T=t) / P(T=t | X)`` per landmark;
    with ``trim > 0`` users whose propensity lies outside ``[trim, 1 - trim]``
    are dropped first (reported in ``overlap``). The E-value is for the
    pooled weighted hazard ratio; whether churn is rare is decided from the
    share churned unless ``rare_outcome`` is given. A propensity model that
    does not converge, or that separates co-creators from others (some
    covariate pattern all or none co-created, so weights would be unbounded),
    is a :class:`~workbench.errors.ModelError` naming the covariates.
    """
    where = "landmark_ipw"
    covariates = as_list(covariates, "covariates")
    if not covariates:
        raise ParameterError(f"{where}: give the pre-landmark covariates of the propensity model, e.g. covariates=['segment'].")
    require_columns(landmark_df, ["user_id", "landmark", "duration", "churned", treatment, *covariates], where,
                     "Build it with workbench.models.survival.landmark_data(episodes, landmarks=[...]).")
    if not 0 <= trim < 0.5:
        raise ParameterError(f"{where}: trim must be in [0, 0.5), got {trim!r}")
    parts, overlap, balance, curves = [], [], [], []

    for d, df in landmark_df.groupby("landmark", sort=True):
        df = df.copy()
        t = df[treatment].to_numpy(dtype=float)
        n1, n0 = int((t == 1).sum()), int((t == 0).sum())
        if n1 == 0 or n0 == 0:
            raise ModelError(f"{where}: at landmark day {d:g} {'nobody' if n1 == 0 else 'everybody'} still at risk had co-created "
                             f"({len(df):,} users), so there is no comparison group; choose a {'later' if n1 == 0 else 'earlier'} landmark.")
        for level, word in ((1.0, "co-creators"), (0.0, "others")):
            if df.loc[t == level, "churned"].sum() == 0:
                raise ModelError(f"{where}: at landmark day {d:g} none of the {word} churned afterwards, so the hazard ratio "
                                 "cannot be estimated; choose another landmark or lengthen the observation window.")
        ps, names, X = _propensity(df, covariates, treatment, f"{where} (day {d:g})")
        share = t.mean()
        w = np.where(t == 1, share / ps, (1 - share) / (1 - ps))
        keep = (ps >= trim) & (ps <= 1 - trim) if trim > 0 else np.ones(len(df), dtype=bool)
        extreme = float(((ps < 0.05) | (ps > 0.95)).mean())
        for level, name in ((1, "co-created"), (0, "not yet")):
            sel = t == level
            q = np.quantile(ps[sel], [0.01, 0.25, 0.5, 0.75, 0.99])
            overlap.append({"landmark": d, "group": name, "users": int(sel.sum()), "ps_p01": q[0], "ps_p25": q[1],
                            "ps_median": q[2], "ps_p75": q[3], "ps_p99": q[4], "share_ps_outside_05_95": float(((ps[sel] < 0.05) | (ps[sel] > 0.95)).mean()),
                            "trimmed": int((sel & ~keep).sum()), "ess_weighted": _ess(w[sel & keep]), "max_weight": float(w[sel & keep].max())})
        if extreme > 0.1 and trim == 0:
            warnings.warn(f"{where}: at landmark day {d:g}, {extreme:.0%} of users have a propensity below 0.05 or above 0.95; "
                          "the weighted comparison leans on few users (see overlap). Consider trim=0.05.", OverlapWarning, stacklevel=2)
        for k, name in enumerate(names):
            balance.append({"landmark": d, "covariate": name, "smd_unweighted": _smd(X[keep, k], t[keep]),
                            "smd_weighted": _smd(X[keep, k], t[keep], w[keep])})
        df["propensity"] = ps
        df["ipw"] = w
        df = df.loc[keep]
        parts.append(df)
        for level, name in ((1, "co-created"), (0, "not yet")):
            sel = df[treatment].to_numpy() == level
            sf = km_estimate(df["duration"].to_numpy()[sel], df["churned"].to_numpy()[sel], df["ipw"].to_numpy()[sel])
            curves.append(pd.DataFrame({"landmark": d, "group": name, "time": np.r_[0.0, sf.times], "survival": np.r_[1.0, sf.survival]}))
    stacked = pd.concat(parts, ignore_index=True)
    est_rows = {}
    for d, df in stacked.groupby("landmark", sort=True):
        u = fit_cox(df, covariates=[treatment], start=None, stop="duration", event="churned", cluster="user_id",
                    exposure=treatment, label=f"Landmark day {d:g}, unweighted", alpha=alpha, keep_residuals=False)
        wt = fit_cox(df, covariates=[treatment], start=None, stop="duration", event="churned", cluster="user_id", weights="ipw",
                     exposure=treatment, label=f"Landmark day {d:g}, IP-weighted", alpha=alpha, keep_residuals=False)
        est_rows[float(d)] = _est_row(df, treatment, u, wt)
    multi = stacked["landmark"].nunique() > 1
    u = fit_cox(stacked, covariates=[treatment], start=None, stop="duration", event="churned", cluster="user_id",
                strata=["landmark"] if multi else None, exposure=treatment, label="Landmark (pooled), unweighted", alpha=alpha,
                keep_residuals=False)
    wt = fit_cox(stacked, covariates=[treatment], start=None, stop="duration", event="churned", cluster="user_id", weights="ipw",
                 strata=["landmark"] if multi else None, exposure=treatment, label="Landmark (pooled), IP-weighted", alpha=alpha,
                 keep_residuals=False)
    est_rows["pooled"] = _est_row(stacked, treatment, u, wt)
    estimates = pd.DataFrame.from_dict(est_rows, orient="index")
    estimates.index.name = "landmark"
    hr, lo, hi = wt.hazard_ratio(treatment)
    share_churned = float(stacked.drop_duplicates("user_id")["churned"].mean())
    ev = e_value(hr, ci_low=lo, ci_high=hi, rare_outcome=rare_outcome, outcome_share=share_churned)
    prop = stacked[["user_id", "landmark", treatment, "propensity", "ipw"]].rename(columns={treatment: "exposed"})
    return LandmarkIPWResult(landmarks=tuple(sorted(float(d) for d in landmark_df["landmark"].unique())), covariates=tuple(covariates),
                             estimates=estimates, overlap=pd.DataFrame(overlap).set_index(["landmark", "group"]),
                             balance=pd.DataFrame(balance).set_index(["landmark", "covariate"]), propensity=prop,
                             curves=pd.concat(curves, ignore_index=True), unweighted=u, weighted=wt, evalue=ev, trim=trim, alpha=alpha)


def _est_row(df, treatment, u: CoxResult, wt: CoxResult) -> dict:
    hu, lu, uu = u.hazard_ratio(treatment)
    hw, lw, uw = wt.hazard_ratio(treatment)
    return {"users": int(df["user_id"].nunique()), "rows": len(df), "co_creators": int((df[treatment] == 1).sum()),
            "events": int(df["churned"].sum()), "hr_unweighted": hu, "hr_unweighted_ci_low": lu, "hr_unweighted_ci_high": uu,
            "hr_weighted": hw, "hr_weighted_ci_low": lw, "hr_weighted_ci_high": uw}


# ===================================================================== comparison
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


__all__ = ["ESTIMATE_NOTES", "EValueResult", "HazardRatioComparison", "LandmarkIPWResult", "OverlapWarning",
           "compare_hazard_ratios", "e_value", "landmark_ipw"]
