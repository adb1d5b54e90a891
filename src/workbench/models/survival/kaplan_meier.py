"""Kaplan-Meier retention curves with Greenwood standard errors, log-log
bands, medians with intervals, and log-rank tests (statsmodels ``survdiff``).

:func:`km_estimate` is the workbench's one Kaplan-Meier implementation
(retention curves here, conversion curves in :mod:`workbench.models.conversion`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from workbench.errors import ModelError
from workbench.models.inputs import as_list, numeric, require_columns, strata_codes
from workbench.models.results import Result, summary_frame
from workbench.models.survival.summaries import metric_name


@dataclass(frozen=True)
class LogRankResult(Result):
    """Log-rank test (statsmodels ``survdiff``), stratified when ``strata`` is given."""

    chi2: float
    df: int
    p_value: float
    groups: tuple
    strata: tuple = ()

    def summary(self) -> pd.DataFrame:
        return pd.DataFrame({"chi2": [self.chi2], "df": [self.df], "p_value": [self.p_value]},
                            index=pd.Index(["log-rank" + (" (stratified)" if self.strata else "")], name="test"))

    def to_metrics(self, prefix: str = "logrank") -> dict:
        return {f"{prefix}.chi2": self.chi2, f"{prefix}.p_value": self.p_value}


def logrank_test(data: pd.DataFrame, *, group: str, duration: str = "duration", event: str = "churned", strata=None) -> LogRankResult:
    """Log-rank test of equal survival across ``group`` (statsmodels ``survdiff``),
    stratified by ``strata`` columns if given."""
    strata = as_list(strata, "strata")
    where = "logrank_test"
    require_columns(data, [duration, event, group, *strata], where)
    groups = data[group].astype(str)
    levels = tuple(sorted(groups.unique()))
    if len(levels) < 2:
        raise ModelError(f"{where}: {group!r} takes a single value ({levels[0] if levels else 'none'}); a log-rank test needs two groups or more.")
    from statsmodels.duration.survfunc import survdiff

    t = numeric(data, duration, where)
    e = numeric(data, event, where)
    s = None
    if strata:
        s, _ = strata_codes(data, strata, where)
    chi2, p = survdiff(t, e, groups.to_numpy(), strata=s)
    return LogRankResult(chi2=float(chi2), df=len(levels) - 1, p_value=float(p), groups=levels, strata=tuple(strata))


@dataclass(frozen=True)
class SurvivalCurves(Result):
    """Kaplan-Meier curves (:func:`km_estimate`) per group.

    ``curves``: group, time, survival, std_err (Greenwood), ci_low, ci_high
    (pointwise log-log intervals), at_risk, events; each curve starts at
    (0, 1). ``at_risk``: number still at risk at ``times`` (rows: groups).
    ``medians``: median retention per group with its interval.
    """

    label: str
    group: str | None
    curves: pd.DataFrame
    at_risk: pd.DataFrame
    medians: pd.DataFrame
    logrank: LogRankResult | None
    time_origin: str = "signup"
    alpha: float = 0.05

    @property
    def groups(self) -> list:
        return list(self.at_risk.index)

    def survival_at(self, t: float) -> pd.DataFrame:
        """Survival (and interval) per group at time ``t`` (step function, right-continuous)."""
        rows = {}
        for g, c in self.curves.groupby("group", sort=False):
            i = np.searchsorted(c["time"].to_numpy(), t, side="right") - 1
            rows[g] = c.iloc[max(i, 0)][["survival", "ci_low", "ci_high"]]
        return pd.DataFrame(rows).T.rename_axis("group")

    def summary(self) -> pd.DataFrame:
        times = [t for t in self.at_risk.columns if t > 0]
        rows = []
        for t in times:
            s = self.survival_at(t)
            for g, r in s.iterrows():
                rows.append((f"survival_{t:g}d[{g}]", r["survival"], np.nan, r["ci_low"], r["ci_high"]))
        for g, r in self.medians.iterrows():
            rows.append((f"median_days[{g}]", r["median"], np.nan, r["ci_low"], r["ci_high"]))
        names, est, se, lo, hi = zip(*rows) if rows else ([], [], [], [], [])
        return summary_frame(names, est, se, lo, hi)

    def to_metrics(self, prefix: str = "km") -> dict:
        out = {}
        for name, row in self.summary().iterrows():
            key = f"{prefix}.{metric_name(name)}"
            if np.isfinite(row["estimate"]):
                out[key] = float(row["estimate"])
        if self.logrank is not None:
            out[f"{prefix}.logrank_p_value"] = self.logrank.p_value
        return out

    def _repr_html_(self) -> str:
        lr = ""
        if self.logrank is not None:
            lr = f"<br>log-rank{' (stratified)' if self.logrank.strata else ''}: chi2 = {self.logrank.chi2:.2f}, p = {self.logrank.p_value:.3g}"
        return f"<strong>{self.label}</strong>{lr}" + self.summary().to_html(float_format=lambda v: f"{v:.4g}")


@dataclass(frozen=True)
class KMEstimate:
    """One Kaplan-Meier curve: at each distinct event time ``times`` the
    survival ``survival``, Greenwood's standard error ``std_err``, the
    (weighted) number at risk just before, ``n_risk``, and the (weighted)
    number of events, ``n_events``. Built by :func:`km_estimate`; the one
    Kaplan-Meier implementation of the workbench (retention curves here,
    conversion curves in :mod:`workbench.models.conversion`)."""

    times: np.ndarray
    survival: np.ndarray
    std_err: np.ndarray
    n_risk: np.ndarray
    n_events: np.ndarray

    def at(self, t) -> tuple[np.ndarray, np.ndarray]:
        """S(t) and its standard error at arbitrary times ``t`` (a step
        function: 1 and 0 before the first event time)."""
        t = np.atleast_1d(np.asarray(t, dtype=float))
        idx = np.searchsorted(self.times, t, side="right") - 1
        k = np.clip(idx, 0, None)
        if len(self.times) == 0:
            return np.ones(len(t)), np.zeros(len(t))
        return np.where(idx >= 0, self.survival[k], 1.0), np.where(idx >= 0, self.std_err[k], 0.0)

    def quantile(self, p: float) -> float:
        """The first event time at which S drops below ``1 - p`` (strictly, as
        SAS and statsmodels); NaN if it never does."""
        ii = np.flatnonzero(self.survival < 1 - p)
        return float(self.times[ii[0]]) if len(ii) else np.nan

    def quantile_ci(self, p: float, alpha: float = 0.05) -> tuple[float, float]:
        """Brookmeyer-Crowley interval for the ``p`` quantile on the log-log
        scale (statsmodels' ``quantile_ci(method="cloglog")``, here with
        Greenwood's standard error); the upper end is ``inf`` if the curve
        stays inside the band to the last event time, both NaN if never."""
        z = stats.norm.ppf(1 - alpha / 2)
        s, se = self.survival, self.std_err
        with np.errstate(divide="ignore", invalid="ignore"):
            r = (np.log(-np.log(s)) - np.log(-np.log(1 - p))) / (-se / (s * np.log(s)))
        ii = np.flatnonzero(np.abs(r) <= z)
        if len(ii) == 0:
            return np.nan, np.nan
        hi = np.inf if ii[-1] == len(self.times) - 1 else float(self.times[ii[-1] + 1])
        return float(self.times[ii[0]]), hi


def km_estimate(time, event, weights=None) -> KMEstimate:
    """Kaplan-Meier estimate of right-censored ``time`` with ``event`` (1 =
    event, 0 = censored) and optional frequency ``weights`` (how many users a
    row stands for). Standard errors are Greenwood's on the weighted risk-set
    counts, so counts per distinct (time, event) give exactly the estimate,
    standard errors and intervals of one row per user. (statsmodels'
    ``SurvfuncRight`` switches to Tsiatis' sampling-weight variance as soon as
    weights are given, which is not the frequency-weight answer; it is kept as
    the oracle on unweighted rows in the tests.) With inverse probability
    weights the standard errors are only approximate."""
    t = np.asarray(time, dtype=float)
    e = np.asarray(event, dtype=float)
    w = np.ones(len(t)) if weights is None else np.asarray(weights, dtype=float)
    utime, rank = np.unique(t, return_inverse=True)
    m = len(utime)
    d = np.bincount(rank, weights=e * w, minlength=m)
    n = np.cumsum(np.bincount(rank, weights=w, minlength=m)[::-1])[::-1]
    keep = d > 0
    d, n, utime = d[keep], n[keep], utime[keep]
    with np.errstate(divide="ignore", invalid="ignore"):
        q = 1 - d / n
        dead = q < 1e-16
        sp = np.exp(np.cumsum(np.log(np.where(dead, 1e-16, q))))
        sp[dead] = 0.0
        # Greenwood: S(t) sqrt(sum d / (n (n - d))); undefined from the time the risk set empties
        var = np.cumsum(np.where(n > d, d / (n * (n - d)), np.nan))
    se = sp * np.sqrt(var)
    return KMEstimate(times=utime, survival=sp, std_err=se, n_risk=n, n_events=d)


def km_loglog_ci(sp, se, alpha):
    """Pointwise log-log ("exponential Greenwood") interval for S:
    S^exp(+-z se / (S |log S|)). 1 where S = 1, 0 where S = 0, NaN where the
    standard error is undefined."""
    sp = np.asarray(sp, dtype=float)
    se = np.asarray(se, dtype=float)
    z = stats.norm.ppf(1 - alpha / 2)
    lo = np.full(len(sp), np.nan)
    hi = np.full(len(sp), np.nan)
    ok = (sp > 0) & (sp < 1) & np.isfinite(se)
    ll = np.log(-np.log(sp[ok]))
    v = se[ok] / (sp[ok] * -np.log(sp[ok]))
    lo[ok] = np.exp(-np.exp(ll + z * v))
    hi[ok] = np.exp(-np.exp(ll - z * v))
    lo[sp >= 1] = hi[sp >= 1] = 1.0
    lo[sp <= 0] = hi[sp <= 0] = 0.0
    return lo, hi



def kaplan_meier(data: pd.DataFrame, *, duration: str = "duration", event: str = "churned", group: str | None = None,
                 strata=None, weights: str | None = None, times=None, alpha: float = 0.05, label: str | None = None,
                 time_origin: str = "signup", logrank: bool = True) -> SurvivalCurves:
    """Kaplan-Meier retention curves per ``group`` with pointwise log-log
    confidence bands, at-risk counts at ``times`` (default: six ticks over the
    follow-up), medians with intervals and a log-rank test across groups
    (stratified by ``strata`` if given). ``weights`` names a column of
    frequency weights (e.g. counts on aggregated rows); the estimate, Greenwood
    standard errors, bands and medians then equal those of one row per user
    (see :func:`km_estimate`; for inverse probability weights the bands are
    approximate), and no log-rank test is run (``survdiff`` takes no weights).
    """
    where = label or "kaplan_meier"
    require_columns(data, [duration, event] + ([group] if group else []) + ([weights] if weights else []), where)
    if len(data) == 0:
        raise ModelError(f"{where}: no rows; nothing to estimate.")
    t = numeric(data, duration, where)
    e = numeric(data, event, where)
    if (t < 0).any():
        raise ModelError(f"{where}: {int((t < 0).sum())} negative durations in {duration!r}.")
    w = numeric(data, weights, where) if weights else None
    labels = data[group].astype(str).to_numpy() if group else np.full(len(data), "all", dtype=object)
    levels = sorted(pd.unique(labels))
    tmax = float(t.max())
    if times is None:
        step = _nice_step(tmax / 6) if tmax > 0 else 1.0
        times = np.arange(0, tmax + 1e-9, step)
    times = np.asarray(times, dtype=float)
    curves, risk, meds = [], {}, {}
    for g in levels:
        rows = labels == g
        tg, eg = t[rows], e[rows]
        wg = w[rows] if w is not None else None
        sf = km_estimate(tg, eg, wg)
        sp, se = sf.survival, sf.std_err
        lo, hi = km_loglog_ci(sp, se, alpha)
        c = pd.DataFrame({"group": g, "time": np.r_[0.0, sf.times], "survival": np.r_[1.0, sp], "std_err": np.r_[0.0, se],
                          "ci_low": np.r_[1.0, lo], "ci_high": np.r_[1.0, hi], "at_risk": np.r_[wg.sum() if wg is not None else rows.sum(), sf.n_risk],
                          "events": np.r_[0.0, sf.n_events]})
        curves.append(c)
        order = np.sort(tg)
        if wg is None:
            risk[g] = len(tg) - np.searchsorted(order, times, side="left")
        else:
            ws = wg[np.argsort(tg)]
            tail = np.r_[np.cumsum(ws[::-1])[::-1], 0.0]
            risk[g] = tail[np.searchsorted(order, times, side="left")]
        meds[g] = _median_with_ci(sf, alpha)
    lr = None
    if logrank and group and len(levels) > 1 and w is None:  # survdiff has no weights
        lr = logrank_test(data, group=group, duration=duration, event=event, strata=strata)
    at_risk = pd.DataFrame(risk, index=times).T
    at_risk.index.name = "group"
    medians = pd.DataFrame(meds).T.rename_axis("group")
    return SurvivalCurves(label=label or ("Retention" + (f" by {group}" if group else "")), group=group,
                          curves=pd.concat(curves, ignore_index=True), at_risk=at_risk, medians=medians, logrank=lr,
                          time_origin=time_origin, alpha=alpha)


def _median_with_ci(sf: KMEstimate, alpha) -> dict:
    lo, hi = sf.quantile_ci(0.5, alpha=alpha)
    return {"median": sf.quantile(0.5), "ci_low": lo, "ci_high": hi}


def _nice_step(x: float) -> float:
    if x <= 0:
        return 1.0
    mag = 10 ** np.floor(np.log10(x))
    for m in (1, 2, 3, 5, 7, 10):
        if m * mag >= x:
            return float(m * mag)
    return float(10 * mag)


__all__ = ["KMEstimate", "LogRankResult", "SurvivalCurves", "kaplan_meier", "km_estimate", "km_loglog_ci", "logrank_test"]
