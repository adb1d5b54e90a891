"""Landmark analysis with inverse probability weighting on per-user rows
(``workbench.models.survival.landmark_data``): propensity by logistic
regression, stabilized weights, weighted Cox models per landmark and pooled.
The aggregated version for any number of users is in
:mod:`.landmark_aggregated`."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from workbench.errors import ModelError, ParameterError
from workbench.models.causal.evalue import EValueResult, e_value
from workbench.models.causal.propensity import OverlapWarning, ess, propensity_model, smd
from workbench.models.inputs import as_list, design_matrix, require_columns
from workbench.models.results import Result, summary_frame
from workbench.models.survival import CoxResult, fit_cox, km_estimate


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
    propensity and weight (for the overlap plot; aggregated: per covariate
    pattern with its number of ``users``). ``curves``: retention from each
    landmark by group, weighted (``survival``) and not
    (``survival_unweighted``): Kaplan-Meier on users, or the
    piecewise-exponential curve on aggregated risk sets; point estimates only
    (inverse probability weights are not frequency weights, so a Greenwood band
    on the weighted curves would only be approximate). ``method``: ``"exact"`` (per-user Cox) or
    ``"aggregated"`` (:func:`~workbench.models.causal.landmark_ipw_aggregated`);
    ``path_reason``: why, when a function chose.
    """

    landmarks: tuple
    covariates: tuple
    estimates: pd.DataFrame
    overlap: pd.DataFrame
    balance: pd.DataFrame
    propensity: pd.DataFrame = field(repr=False)
    curves: pd.DataFrame = field(repr=False)
    unweighted: Result = field(repr=False)
    weighted: Result = field(repr=False)
    evalue: EValueResult = field(repr=False)
    trim: float = 0.0
    alpha: float = 0.05
    method: str = "exact"
    path_reason: str = ""

    @property
    def path(self) -> str:
        return self.method

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
        why = f"<em>{self.path_reason}</em><br>" if self.path_reason else ""
        model = ("weighted Cox models" if self.method == "exact" else
                 "weighted piecewise-exponential models on aggregated landmark risk sets, robust errors from one engine pass")
        return (f"<strong>Landmark analysis with inverse probability weighting</strong> ({model})<br>{why}propensity covariates: "
                + ", ".join(self.covariates) + self.estimates[cols].to_html(float_format=lambda v: f"{v:,.4g}")
                + "<br><em>Overlap</em>" + self.overlap.to_html(float_format=lambda v: f"{v:.3g}")
                + "<br><em>Balance (standardized mean differences)</em>" + self.balance.to_html(float_format=lambda v: f"{v:.3f}"))


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
        X, names = design_matrix(df, covariates, where=f"{where} (day {d:g})")
        ps = propensity_model(X, names, t, np.ones(len(t)), covariates=covariates, treatment=treatment, where=f"{where} (day {d:g})")
        share = t.mean()
        w = np.where(t == 1, share / ps, (1 - share) / (1 - ps))
        keep = (ps >= trim) & (ps <= 1 - trim) if trim > 0 else np.ones(len(df), dtype=bool)
        extreme = float(((ps < 0.05) | (ps > 0.95)).mean())
        for level, name in ((1, "co-created"), (0, "not yet")):
            sel = t == level
            q = np.quantile(ps[sel], [0.01, 0.25, 0.5, 0.75, 0.99])
            overlap.append({"landmark": d, "group": name, "users": int(sel.sum()), "ps_p01": q[0], "ps_p25": q[1],
                            "ps_median": q[2], "ps_p75": q[3], "ps_p99": q[4], "share_ps_outside_05_95": float(((ps[sel] < 0.05) | (ps[sel] > 0.95)).mean()),
                            "trimmed": int((sel & ~keep).sum()), "ess_weighted": ess(w[sel & keep]), "max_weight": float(w[sel & keep].max())})
        if extreme > 0.1 and trim == 0:
            warnings.warn(f"{where}: at landmark day {d:g}, {extreme:.0%} of users have a propensity below 0.05 or above 0.95; "
                          "the weighted comparison leans on few users (see overlap). Consider trim=0.05.", OverlapWarning, stacklevel=2)
        for k, name in enumerate(names):
            balance.append({"landmark": d, "covariate": name, "smd_unweighted": smd(X[keep, k], t[keep]),
                            "smd_weighted": smd(X[keep, k], t[keep], w[keep])})
        df["propensity"] = ps
        df["ipw"] = w
        df = df.loc[keep]
        parts.append(df)
        for level, name in ((1, "co-created"), (0, "not yet")):
            sel = df[treatment].to_numpy() == level
            dur, churned = df["duration"].to_numpy()[sel], df["churned"].to_numpy()[sel]
            sf = km_estimate(dur, churned, df["ipw"].to_numpy()[sel])
            raw = km_estimate(dur, churned)  # same event times: every kept weight is positive
            curves.append(pd.DataFrame({"landmark": d, "group": name, "time": np.r_[0.0, sf.times], "survival": np.r_[1.0, sf.survival],
                                        "survival_unweighted": np.r_[1.0, raw.survival]}))
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



__all__ = ["LandmarkIPWResult", "landmark_ipw"]
