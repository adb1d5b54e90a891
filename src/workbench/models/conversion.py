"""Conversion of users into customers.

Three views, each fitted on a small table from :mod:`workbench.tables`:

* :func:`conversion_curve` - the share of users who have become customers by
  each day since signup, from the per-user ``conversion`` table, by
  Kaplan-Meier on the time to the first purchase
  (:func:`workbench.models.survival.km_estimate` with frequency weights on the
  distinct (time, status) pairs, Greenwood standard errors). A user who has not bought is censored at the observation end (a user
  observed for 20 days has not had 90 days to convert). Churn is *not*
  censoring: a user who left without buying stays in the denominator as not
  converted, so the curve is the cumulative incidence of conversion with churn
  as a competing event that precludes it - the share of all signups who have
  paid by day t.
* :func:`fit_conversion_hazard` - a discrete-time proportional hazards model of
  the first purchase by tenure bin, segment, channel and co-creation exposure,
  fitted by a binomial GLM with a complementary log-log link on the aggregated
  risk sets (``events`` out of ``at_risk`` per tenure bin and covariate
  pattern) of ``conversion_risk_sets``. Its estimates and standard errors are
  exactly those of the same GLM on one row per person and bin (the
  likelihoods are equal), at the cost of the number of patterns.
* :func:`monetization` - ARPU (revenue per active user), ARPPU (revenue per
  paying customer) and the customer share per period from a KPI table.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

from workbench.errors import ModelError, ParameterError, WorkbenchWarning
from workbench.models.results import Result, summary_frame
from workbench.models.survival import KMEstimate, km_estimate, km_loglog_ci


class ConversionDataWarning(WorkbenchWarning):
    """Rows were left out of a conversion analysis."""


def _check_frame(fn: str, data, columns) -> None:
    if not isinstance(data, pd.DataFrame):
        raise ParameterError(f"{fn}: data must be a pandas DataFrame, got {type(data).__name__} (call .to_pandas() on an Ibis table)")
    missing = [c for c in columns if c is not None and c not in data.columns]
    if missing:
        raise ParameterError(f"{fn}: column(s) {missing} not in the data (columns: {', '.join(map(str, data.columns))})")


def _check_alpha(fn: str, alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ParameterError(f"{fn}: alpha must be between 0 and 1, got {alpha!r}")


# ================================================================= curve
def _km_at(sf: KMEstimate, days: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """1 - S(d), its Greenwood std err and log-log interval at each day ``d``."""
    s, s_se = sf.at(days)
    s_lo, s_hi = km_loglog_ci(s, s_se, alpha)
    return 1 - s, s_se, 1 - s_hi, 1 - s_lo


@dataclass(frozen=True)
class ConversionCurveResult(Result):
    """The cumulative share converted by day since signup (Kaplan-Meier, see
    :func:`conversion_curve`).

    ``curve``: one row per group and day (0..``max_days``) with ``share``
    (1 - S(day): converted by that day), ``std_err`` (Greenwood), ``ci_low``,
    ``ci_high`` (log-log pointwise interval) and ``at_risk`` (users not yet
    converted and still observed after that day). ``shares``: the share by
    ``horizon_days`` per group (group ``all`` is everyone).
    """

    curve: pd.DataFrame = field(repr=False)
    shares: pd.DataFrame
    horizon_days: float
    by: str | None
    alpha: float
    n_users: int
    n_converted: int

    @property
    def share(self) -> float:
        """Share of all users converted by ``horizon_days``."""
        return float(self.shares.loc["all", "estimate"])

    def summary(self) -> pd.DataFrame:
        h = f"{self.horizon_days:g}"
        names = [f"share_{h}d" if g == "all" else f"share_{h}d[{self.by}={g}]" for g in self.shares.index]
        out = self.shares[["estimate", "std_err", "ci_low", "ci_high", "n_users", "n_converted"]].copy()
        out.index = pd.Index(names, name="parameter")
        return out

    def to_metrics(self, prefix: str = "conversion") -> dict:
        h = f"{self.horizon_days:g}"
        out = {}
        for g, r in self.shares.iterrows():
            name = f"{prefix}.share_{h}d" if g == "all" else f"{prefix}.share_{h}d.{_slug(g)}"
            out[name] = float(r["estimate"])
            if np.isfinite(r["ci_low"]):
                out[f"{name}_ci_low"] = float(r["ci_low"])
                out[f"{name}_ci_high"] = float(r["ci_high"])
        out[f"{prefix}.n_users"] = self.n_users
        out[f"{prefix}.n_converted"] = self.n_converted
        return out

    def share_at(self, days, group="all") -> np.ndarray:
        """Share converted by each of ``days`` (whole or fractional) for a group."""
        c = self.curve[self.curve["group"] == group]
        if c.empty:
            raise ParameterError(f"share_at: unknown group {group!r}; groups: {', '.join(map(str, self.shares.index))}")
        d = np.asarray(days, dtype=float)
        idx = np.clip(np.searchsorted(c["day"].to_numpy(), d, side="right") - 1, 0, len(c) - 1)
        return c["share"].to_numpy()[idx]


def _slug(value) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in str(value))


def conversion_curve(
    data: pd.DataFrame,
    *,
    horizon_days: float = 90,
    by: str | None = None,
    converted: str = "converted",
    days_to_convert: str = "days_to_convert",
    observed_days: str = "observed_days",
    max_days: int | None = None,
    alpha: float = 0.05,
) -> ConversionCurveResult:
    """Share of users converted by each day since signup, censoring handled.

    Parameters
    ----------
    data
        One row per user (``workbench.tables.conversion(ds).to_pandas()``):
        ``converted`` (0/1), ``days_to_convert`` (first purchase, days since
        signup; null if none), ``observed_days`` (signup to the observation
        end).
    horizon_days
        The day at which the headline share is read (``share_90d``).
    by
        Optional column (e.g. ``segment``, ``channel``,
        ``cocreated_before_conversion``): a curve per group as well as overall.
        Note that grouping by co-creation *before conversion* favours
        converters' opposite: a late buyer had more time to co-create first.
    max_days
        The curve is tabulated for days ``0..max_days`` (default: the horizon).
    alpha
        ``1 - alpha`` pointwise intervals.

    The estimator is Kaplan-Meier (:func:`workbench.models.survival.km_estimate`,
    Greenwood standard errors) of the time to first purchase, a non-buyer censored at
    ``observed_days``; churn is not censoring (see the module docstring), so
    the curve is the share of all signups who have paid by each day.

    Raises
    ------
    ModelError
        No users, or nobody observed for ``horizon_days``.
    """
    _check_frame("conversion_curve", data, [converted, days_to_convert, observed_days, by])
    _check_alpha("conversion_curve", alpha)
    if not horizon_days > 0:
        raise ParameterError(f"conversion_curve: horizon_days must be > 0, got {horizon_days!r}")
    conv = pd.to_numeric(data[converted], errors="coerce").to_numpy(dtype=float)
    t_conv = pd.to_numeric(data[days_to_convert], errors="coerce").to_numpy(dtype=float)
    t_obs = pd.to_numeric(data[observed_days], errors="coerce").to_numpy(dtype=float)
    status = (conv == 1).astype(int)
    time = np.where(status == 1, t_conv, t_obs)
    ok = np.isfinite(time) & (time >= 0) & np.isin(conv, [0, 1])
    dropped = int((~ok).sum())
    if dropped:
        warnings.warn(
            f"conversion_curve: left out {dropped} of {len(data)} users with a missing or negative time "
            "(converted without days_to_convert, or no observed_days).",
            ConversionDataWarning,
            stacklevel=2,
        )
    if ok.sum() == 0:
        raise ModelError("conversion_curve: no users with usable times; check the conversion table (converted, days_to_convert, observed_days).")
    frame = pd.DataFrame({"time": time[ok], "status": status[ok], "obs": t_obs[ok]})
    frame["group"] = data.loc[ok, by].astype(str).to_numpy() if by else "all"
    longest = float(frame["time"].max())
    everyone_converted = bool((frame["status"] == 1).all())  # the curve reaches 1 and stays there
    if longest < horizon_days and not everyone_converted:
        raise ModelError(
            f"conversion_curve: nobody has been observed for {horizon_days:g} days (the longest is {longest:.1f}); "
            "the share by that day is not estimable. Use a shorter horizon_days or a longer observation window."
        )
    max_days = int(np.ceil(horizon_days)) if max_days is None else int(max_days)
    grid = np.arange(0, max_days + 1, dtype=float)

    groups = [("all", frame)]
    if by:
        groups += [(g, d) for g, d in frame.groupby("group", sort=True)]
    curves, shares = [], {}
    for g, d in groups:
        agg = d.groupby(["time", "status"]).size().rename("n").reset_index()
        sf = km_estimate(agg["time"].to_numpy(), agg["status"].to_numpy(), agg["n"].to_numpy())
        share, se, lo, hi = _km_at(sf, grid, alpha)
        at_risk = np.array([(d["time"] > day).sum() for day in grid])
        curves.append(pd.DataFrame({"group": g, "day": grid, "share": share, "std_err": se, "ci_low": lo, "ci_high": hi, "at_risk": at_risk}))
        reachable = float(d["time"].max()) >= horizon_days or bool((d["status"] == 1).all())
        h_share, h_se, h_lo, h_hi = (x[0] for x in _km_at(sf, np.array([float(horizon_days)]), alpha))
        if not reachable:
            h_share = h_se = h_lo = h_hi = np.nan
        shares[g] = {
            "estimate": h_share,
            "std_err": h_se,
            "ci_low": h_lo,
            "ci_high": h_hi,
            "n_users": int(len(d)),
            "n_converted": int(d["status"].sum()),
            "n_observed_full_horizon": int((d["obs"] >= horizon_days).sum()),
        }
    shares_df = pd.DataFrame.from_dict(shares, orient="index")
    shares_df.index.name = "group"
    return ConversionCurveResult(
        curve=pd.concat(curves, ignore_index=True),
        shares=shares_df,
        horizon_days=float(horizon_days),
        by=by,
        alpha=alpha,
        n_users=int(len(frame)),
        n_converted=int(frame["status"].sum()),
    )


# ================================================================= hazard model
def _baseline_pieces(bins: np.ndarray, events: np.ndarray, min_events: int) -> dict:
    """Map each tenure bin to a baseline piece: consecutive bins pooled from the
    start until a piece holds at least ``min_events`` events; a short tail joins
    the last piece."""
    order = np.sort(np.unique(bins))
    ev = pd.Series(events).groupby(bins).sum().reindex(order, fill_value=0).to_numpy()
    pieces, current, acc = {}, [], 0
    labels = []
    for b, e in zip(order, ev):
        current.append(b)
        acc += e
        if acc >= min_events:
            labels.append(list(current))
            current, acc = [], 0
    if current:
        if labels:
            labels[-1].extend(current)
        else:
            labels.append(list(current))
    for group in labels:
        name = f"{group[0]}" if len(group) == 1 else f"{group[0]}-{group[-1]}"
        for b in group:
            pieces[b] = name
    return pieces


@dataclass(frozen=True)
class ConversionHazardResult(Result):
    """A discrete-time proportional hazards model of the first purchase.

    ``coefficients``: log hazard ratios (cloglog link: a coefficient is the
    log of the ratio of the underlying continuous-time hazards, the grouped
    proportional hazards model) with std errs and intervals; ``summary()``
    shows them as hazard ratios. ``baseline``: the per-bin conversion
    probability of the reference profile in each baseline piece.
    """

    coefficients: pd.DataFrame
    baseline: pd.DataFrame = field(repr=False)
    pieces: dict = field(repr=False)
    reference: dict
    covariates: tuple
    link: str
    bin_days: float | None
    n_patterns: int
    n_at_risk: int
    n_events: int
    alpha: float
    llf: float
    cov_params: pd.DataFrame = field(repr=False)
    levels: dict = field(repr=False, default_factory=dict)

    def summary(self) -> pd.DataFrame:
        c = self.coefficients
        hr = np.exp(c["estimate"])
        return summary_frame(c.index, hr, hr * c["std_err"], np.exp(c["ci_low"]), np.exp(c["ci_high"]))

    def hazard_ratio(self, term: str) -> float:
        if term not in self.coefficients.index:
            raise ParameterError(f"hazard_ratio: no term {term!r}; terms: {', '.join(self.coefficients.index)}")
        return float(np.exp(self.coefficients.loc[term, "estimate"]))

    def to_metrics(self, prefix: str = "conversion.hazard") -> dict:
        out = {}
        for term, r in self.summary().iterrows():
            if "[" in term and term.endswith("]"):
                cov, level = term[:-1].split("[", 1)
                name = f"{prefix}.hr.{_slug(cov)}.{_slug(level)}"
            else:
                name = f"{prefix}.hr.{_slug(term)}"
            out[name] = float(r["estimate"])
            out[f"{name}_ci_low"] = float(r["ci_low"])
            out[f"{name}_ci_high"] = float(r["ci_high"])
        out[f"{prefix}.n_events"] = self.n_events
        out[f"{prefix}.n_patterns"] = self.n_patterns
        return out

    def _repr_html_(self) -> str:
        ref = ", ".join(f"{k}={v}" for k, v in self.reference.items()) or "none"
        return f"<strong>ConversionHazardResult</strong> (hazard ratios; reference: {ref})" + self.summary().to_html(float_format=lambda v: f"{v:.4g}")

    def conversion_by_bin(self, **profile) -> pd.DataFrame:
        """Cumulative share converted by the end of each tenure bin for a covariate
        profile (e.g. ``exposed=1, segment="enthusiast"``; unnamed covariates at
        the reference), from the fitted per-bin probabilities."""
        unknown = [k for k in profile if k not in self.covariates]
        if unknown:
            raise ParameterError(f"conversion_by_bin: unknown covariate(s) {unknown}; covariates: {', '.join(self.covariates)}")
        eta_shift = 0.0
        for cov in self.covariates:
            if cov not in profile:
                continue
            value = profile[cov]
            levels = self.levels.get(cov)
            if levels is None:  # numeric
                eta_shift += float(self.coefficients.loc[cov, "estimate"]) * float(value)
            else:
                if str(value) not in levels:
                    raise ParameterError(f"conversion_by_bin: {cov}={value!r} is not a fitted level ({', '.join(levels)})")
                term = f"{cov}[{value}]"
                if term in self.coefficients.index:
                    eta_shift += float(self.coefficients.loc[term, "estimate"])
        base = self.baseline.copy()
        eta = base["log_hazard"].to_numpy() + eta_shift
        if self.link == "cloglog":
            prob = 1 - np.exp(-np.exp(eta))
        else:  # poisson: rate per day, whole bins
            prob = 1 - np.exp(-np.exp(eta) * float(self.bin_days or 1.0))
        base["probability"] = prob
        base["cumulative"] = 1 - np.cumprod(1 - prob)
        return base[["tenure_bin", "piece", "probability", "cumulative"]]


def fit_conversion_hazard(
    risk_sets: pd.DataFrame,
    *,
    covariates=("exposed",),
    tenure: str = "tenure_bin",
    at_risk: str = "at_risk",
    events: str = "events",
    exposure_days: str = "exposure_days",
    min_events_per_piece: int = 5,
    link: str = "cloglog",
    bin_days: float | None = None,
    reference: dict | None = None,
    alpha: float = 0.05,
) -> ConversionHazardResult:
    """Fit a discrete-time hazard model of the first purchase on aggregated risk sets.

    Parameters
    ----------
    risk_sets
        One row per (tenure bin, covariate pattern) with ``at_risk`` and
        ``events`` (``workbench.tables.conversion_risk_sets(ds, ...)``).
    covariates
        Columns entering the model: numeric ones (e.g. ``exposed`` 0/1) as
        they are, text ones (``segment``, ``channel``) as categories against a
        reference level (the level with most users at risk unless
        ``reference`` names it, e.g. ``reference={"segment": "mainstream"}``).
    min_events_per_piece
        The baseline hazard is piecewise constant over tenure: consecutive
        bins are pooled from the start until each piece holds at least this
        many conversions (a bin without any would have a log hazard of minus
        infinity).
    link
        ``"cloglog"`` (default): binomial GLM, ``events`` out of ``at_risk``,
        complementary log-log link - the grouped-time proportional hazards
        model; a user at risk for part of a bin counts as at risk for the
        bin. ``"poisson"``: a piecewise-exponential model, Poisson GLM of
        ``events`` with offset log ``exposure_days`` (exact person-time, so
        partial bins count by their length); needs ``exposure_days``.
    bin_days
        Only for ``conversion_by_bin`` with ``link="poisson"``: the bin length.
    alpha
        ``1 - alpha`` intervals (Wald, model-based GLM covariance).

    Raises
    ------
    ModelError
        No events, a covariate level with no conversions (its hazard ratio
        would be zero), or the GLM does not converge.
    """
    fn = "fit_conversion_hazard"
    covariates = tuple([covariates] if isinstance(covariates, str) else covariates)
    if link not in ("cloglog", "poisson"):
        raise ParameterError(f"{fn}: link must be 'cloglog' or 'poisson', got {link!r}")
    need = [tenure, at_risk, events, *covariates] + ([exposure_days] if link == "poisson" else [])
    _check_frame(fn, risk_sets, need)
    _check_alpha(fn, alpha)
    if not isinstance(min_events_per_piece, (int, np.integer)) or min_events_per_piece < 1:
        raise ParameterError(f"{fn}: min_events_per_piece must be an integer >= 1, got {min_events_per_piece!r}")
    d = risk_sets.loc[:, list(dict.fromkeys(need))].copy()
    d[at_risk] = pd.to_numeric(d[at_risk], errors="coerce")
    d[events] = pd.to_numeric(d[events], errors="coerce")
    if d[[at_risk, events]].isna().any().any() or (d[events] < 0).any() or (d[events] > d[at_risk]).any():
        raise ModelError(f"{fn}: '{events}' must be whole numbers between 0 and '{at_risk}' on every row; check the risk-set table.")
    na_cov = d[list(covariates)].isna().any(axis=1) if covariates else pd.Series(False, index=d.index)
    if na_cov.any():
        warnings.warn(f"{fn}: left out {int(na_cov.sum())} risk-set rows with a missing covariate value.", ConversionDataWarning, stacklevel=2)
        d = d.loc[~na_cov]
    d = d.loc[d[at_risk] > 0]
    n_events = int(d[events].sum())
    if n_events == 0:
        raise ModelError(f"{fn}: there are no conversions in the risk sets; there is no hazard to model.")

    pieces = _baseline_pieces(d[tenure].to_numpy(), d[events].to_numpy(), min_events_per_piece)
    piece_names = list(dict.fromkeys(pieces[b] for b in sorted(pieces)))
    d["_piece"] = d[tenure].map(pieces)
    X = pd.DataFrame({f"baseline[{p}]": (d["_piece"] == p).astype(float) for p in piece_names}, index=d.index)
    ref, levels = {}, {}
    reference = dict(reference or {})
    for cov in covariates:
        col = d[cov]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            X[cov] = col.astype(float)
            continue
        col = col.astype(str)
        weight = d[at_risk].groupby(col).sum().sort_values(ascending=False)
        lv = sorted(weight.index.tolist())
        levels[cov] = lv
        base = reference.get(cov, weight.index[0])
        if str(base) not in lv:
            raise ParameterError(f"{fn}: reference {cov}={base!r} is not a level ({', '.join(lv)})")
        ref[cov] = str(base)
        ev_by = d[events].groupby(col).sum()
        empty = [lvl for lvl in lv if ev_by.get(lvl, 0) == 0]
        if empty:
            raise ModelError(
                f"{fn}: no conversions at all for {cov} = {', '.join(map(repr, empty))}; its hazard ratio would be 0 "
                "(the fit cannot converge). Merge or drop that level."
            )
        for lvl in lv:
            if lvl != ref[cov]:
                X[f"{cov}[{lvl}]"] = (col == lvl).astype(float)
        if len(lv) < 2:
            warnings.warn(f"{fn}: {cov} has a single level ({lv[0]}); it adds nothing to the model.", ConversionDataWarning, stacklevel=2)
    numeric_terms = [c for c in covariates if c in X.columns]
    for c in numeric_terms:
        if X[c].nunique() < 2:
            raise ModelError(f"{fn}: covariate {c!r} takes a single value ({X[c].iloc[0]:g}) in the risk sets; its effect is not identified. Drop it.")
    if np.linalg.matrix_rank(X.to_numpy()) < X.shape[1]:
        raise ModelError(
            f"{fn}: the covariates are collinear (e.g. a covariate constant within the data, or two that say the same); drop one of {list(covariates)}."
        )

    if link == "cloglog":
        endog = np.column_stack([d[events].to_numpy(float), (d[at_risk] - d[events]).to_numpy(float)])
        model = sm.GLM(endog, X, family=sm.families.Binomial(link=sm.families.links.CLogLog()))
    else:
        expo = pd.to_numeric(d[exposure_days], errors="coerce").to_numpy(float)
        if not np.all(expo > 0):
            raise ModelError(f"{fn}: '{exposure_days}' must be > 0 on every row with users at risk.")
        model = sm.GLM(d[events].to_numpy(float), X, family=sm.families.Poisson(), offset=np.log(expo))
    with warnings.catch_warnings():
        warnings.simplefilter("error", category=sm.tools.sm_exceptions.PerfectSeparationWarning)
        warnings.simplefilter("ignore", category=RuntimeWarning)
        try:
            res = model.fit(maxiter=200)
        except (sm.tools.sm_exceptions.PerfectSeparationWarning, sm.tools.sm_exceptions.PerfectSeparationError, np.linalg.LinAlgError, ValueError) as exc:
            raise ModelError(
                f"{fn}: the GLM cannot be fitted ({type(exc).__name__}: {exc}); some pattern converts "
                "always or never. Pool tenure bins (raise min_events_per_piece) or drop a covariate."
            ) from None
    converged = bool(getattr(res, "converged", True))
    if not converged or not np.all(np.isfinite(res.bse)):
        raise ModelError(f"{fn}: the GLM did not converge; pool tenure bins (raise min_events_per_piece) or drop a covariate.")

    z = stats.norm.ppf(1 - alpha / 2)
    terms = [c for c in X.columns if not c.startswith("baseline[")]
    params, bse = res.params, res.bse
    coef = pd.DataFrame(
        {
            "estimate": params[terms].to_numpy(),
            "std_err": bse[terms].to_numpy(),
            "ci_low": (params[terms] - z * bse[terms]).to_numpy(),
            "ci_high": (params[terms] + z * bse[terms]).to_numpy(),
        },
        index=pd.Index(terms, name="term"),
    )
    bins = sorted(pieces)
    base = pd.DataFrame({"tenure_bin": bins, "piece": [pieces[b] for b in bins]})
    base["log_hazard"] = [float(params[f"baseline[{p}]"]) for p in base["piece"]]
    base["std_err"] = [float(bse[f"baseline[{p}]"]) for p in base["piece"]]
    return ConversionHazardResult(
        coefficients=coef,
        baseline=base,
        pieces=pieces,
        reference=ref,
        covariates=covariates,
        link=link,
        bin_days=bin_days,
        n_patterns=int(len(d)),
        n_at_risk=int(d[at_risk].sum()),
        n_events=n_events,
        alpha=alpha,
        llf=float(res.llf),
        cov_params=pd.DataFrame(res.cov_params(), index=X.columns, columns=X.columns),
        levels=levels,
    )


# ================================================================= monetization
@dataclass(frozen=True)
class MonetizationResult(Result):
    """ARPU, ARPPU and customer share per period (``table``) and overall.

    ``summary()`` rows: the mean over periods of each ratio with a
    Newey-West (HAC) standard error (the periods are autocorrelated), and the
    pooled ratio of totals (``*_pooled``: total revenue / total user-periods,
    ...) without an interval.
    """

    table: pd.DataFrame
    params: pd.DataFrame
    n_periods: int
    alpha: float

    def summary(self) -> pd.DataFrame:
        return self.params.copy()

    def to_metrics(self, prefix: str = "monetization") -> dict:
        out = {}
        for name, r in self.params.iterrows():
            out[f"{prefix}.{name}"] = float(r["estimate"])
            if np.isfinite(r["ci_low"]):
                out[f"{prefix}.{name}_ci_low"] = float(r["ci_low"])
                out[f"{prefix}.{name}_ci_high"] = float(r["ci_high"])
        last = self.table.dropna(subset=["arpu"]).tail(1)
        if len(last):
            for col in ("arpu", "arppu", "customer_share"):
                if np.isfinite(last[col].iloc[0]):
                    out[f"{prefix}.{col}_last"] = float(last[col].iloc[0])
        out[f"{prefix}.n_periods"] = self.n_periods
        return out


def monetization(
    kpis: pd.DataFrame,
    *,
    period: str = "period",
    users: str = "active_users",
    customers: str = "customers",
    revenue: str = "revenue",
    maxlags: int | None = None,
    alpha: float = 0.05,
) -> MonetizationResult:
    """ARPU (revenue / active users), ARPPU (revenue / paying customers) and the
    customer share (customers / active users) per period of a KPI table
    (``workbench.tables.kpis(ds, period=...)`` or a dataset's ``kpis`` with
    ``users="users"``; one unit). Periods without users (or customers) give
    no ratio and are skipped in the means.

    (For revenue per customer over time and retention, see
    :func:`workbench.models.scenarios.fit_customer_value`.)
    """
    fn = "monetization"
    _check_frame(fn, kpis, [period, users, customers, revenue])
    _check_alpha(fn, alpha)
    if kpis[period].duplicated().any():
        raise ModelError(f"{fn}: several rows per period; give one unit's KPIs (filter or aggregate over units first).")
    k = kpis.sort_values(period)
    u = pd.to_numeric(k[users], errors="coerce").to_numpy(float)
    c = pd.to_numeric(k[customers], errors="coerce").to_numpy(float)
    r = pd.to_numeric(k[revenue], errors="coerce").to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        table = pd.DataFrame(
            {
                "period": k[period].to_numpy(),
                "active_users": u,
                "customers": c,
                "revenue": r,
                "arpu": np.where(u > 0, r / u, np.nan),
                "arppu": np.where(c > 0, r / c, np.nan),
                "customer_share": np.where(u > 0, c / u, np.nan),
            }
        )
    n_ok = int(np.isfinite(table["arpu"]).sum())
    if n_ok < 2:
        raise ModelError(f"{fn}: fewer than 2 periods with active users ({n_ok}); there is nothing to average.")
    rows = []
    z = stats.norm.ppf(1 - alpha / 2)
    for col in ("arpu", "arppu", "customer_share"):
        y = table[col].dropna().to_numpy()
        if len(y) >= 2:
            lags = int(np.floor(4 * (len(y) / 100) ** (2 / 9))) if maxlags is None else int(maxlags)
            res = sm.OLS(y, np.ones((len(y), 1))).fit(cov_type="HAC", cov_kwds={"maxlags": lags})
            est, se = float(res.params[0]), float(res.bse[0])
            rows.append((col, est, se, est - z * se, est + z * se))
        else:
            rows.append((col, np.nan, np.nan, np.nan, np.nan))
    with np.errstate(divide="ignore", invalid="ignore"):
        rows += [
            ("arpu_pooled", np.nansum(r) / np.nansum(u), np.nan, np.nan, np.nan),
            ("arppu_pooled", np.nansum(r) / np.nansum(c) if np.nansum(c) > 0 else np.nan, np.nan, np.nan, np.nan),
            ("customer_share_pooled", np.nansum(c) / np.nansum(u), np.nan, np.nan, np.nan),
        ]
    params = pd.DataFrame(rows, columns=["parameter", "estimate", "std_err", "ci_low", "ci_high"]).set_index("parameter")
    return MonetizationResult(table=table, params=params, n_periods=n_ok, alpha=alpha)


__all__ = [
    "ConversionCurveResult",
    "ConversionDataWarning",
    "ConversionHazardResult",
    "MonetizationResult",
    "conversion_curve",
    "fit_conversion_hazard",
    "monetization",
]
