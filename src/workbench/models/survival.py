"""Survival: retention curves, log-rank tests, Cox models with a time-varying
co-creation exposure, the proportional-hazards check, the discrete-time hazard
model on aggregated risk sets, landmark data and dose-response.

The trap this module is built around is **immortal-time bias**: users can only
co-create while they are still around, so comparing users who *ever*
co-created with those who never did credits the exposed group with the time
they had to survive in order to become exposed. The default models therefore
treat co-creation as a *time-varying* exposure on counting-process episodes
(``workbench.tables.episodes``: one row per user and interval ``(start, stop]``,
the user switching to exposed on the day of their first ``feedback`` or
``adopted`` event); :func:`cox_naive_ever` fits the biased "ever co-created"
model only so that a report can show it beside the right one, labelled.

The Cox model (:func:`fit_cox`) is the workbench's own vectorised partial
likelihood (Breslow ties, Newton steps): risk-set sums over sorted event times
are built with one ``bincount`` and one cumulative sum per quantity, so a
Newton step costs O(n p^2) after an O(n log n) set-up, with strata, case
weights and cluster-robust (sandwich) standard errors. statsmodels ``PHReg``
(``entry=start``, ``ties="breslow"``, ``groups=user_id``) is its reference and
agrees to 1e-6 (``tests/test_survival.py``); it is kept as the oracle because
it is far slower on millions of episodes (``benchmarks/bench_survival.py``).

The aggregated path (:func:`discrete_time_hazard`) fits a complementary
log-log binomial GLM (or a piecewise-exponential Poisson GLM) on counts per
(tenure bin, exposure, stratum) from ``workbench.tables.risk_sets``; its size
does not grow with the number of users.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from workbench.errors import ModelError, ParameterError
from workbench.models.results import Result, summary_frame

#: episode columns that are not user attributes
EPISODE_COLUMNS = ("user_id", "start", "stop", "exposed", "dose", "churned", "signup_at", "end_at", "duration")


# ===================================================================== input
def _require_columns(df: pd.DataFrame, columns, where: str, hint: str = "") -> None:
    if not isinstance(df, pd.DataFrame):
        raise ParameterError(f"{where}: expected a pandas DataFrame, got {type(df).__name__}. {hint}".strip())
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ModelError(
            f"{where}: column(s) {', '.join(repr(c) for c in missing)} missing (columns found: "
            f"{', '.join(map(str, df.columns))}). {hint}".strip()
        )


def _as_list(value, name: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    try:
        out = list(value)
    except TypeError:
        raise ParameterError(f"{name} must be a column name or a list of column names, got {value!r}") from None
    if not all(isinstance(v, str) for v in out):
        raise ParameterError(f"{name} must hold column names (strings), got {out!r}")
    return out


def _numeric(df: pd.DataFrame, column: str, where: str) -> np.ndarray:
    s = df[column]
    if s.dtype == bool or str(s.dtype) == "boolean":
        s = s.astype(float)
    try:
        x = pd.to_numeric(s, errors="raise").to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError):
        raise ModelError(f"{where}: column {column!r} must be numeric, found dtype {s.dtype}") from None
    bad = ~np.isfinite(x)
    if bad.any():
        raise ModelError(
            f"{where}: column {column!r} has {int(bad.sum()):,} missing or infinite value(s) "
            f"(e.g. rows {list(df.index[bad][:3])}); fill or drop them before fitting."
        )
    return x


def _is_categorical(s: pd.Series) -> bool:
    return not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s))


def design_matrix(df: pd.DataFrame, covariates, *, where: str = "design_matrix") -> tuple[np.ndarray, list[str]]:
    """Numeric design matrix (no intercept) for ``covariates``.

    Numeric and boolean columns enter as they are; any other column is
    categorical and enters as indicators ``column[level]`` against its first
    level in sorted order (the reference). Missing values are an error that
    names the column; a column with a single value is an error (it cannot be
    estimated and is usually a mistake in ``adjust_for``).
    """
    cols, names = [], []
    for c in _as_list(covariates, "covariates"):
        if c not in df.columns:
            raise ModelError(f"{where}: covariate {c!r} is not a column (columns: {', '.join(map(str, df.columns))}); "
                             "pick user attributes that exist in the table.")
        s = df[c]
        if _is_categorical(s):
            if s.isna().any():
                raise ModelError(f"{where}: covariate {c!r} has {int(s.isna().sum()):,} missing value(s); "
                                 "fill them (e.g. with 'unknown') or drop those users before fitting.")
            codes, levels = pd.factorize(s.astype(str), sort=True)
            if len(levels) < 2:
                raise ModelError(f"{where}: covariate {c!r} takes a single value ({levels[0]!r}) in these data, "
                                 "so its effect cannot be estimated; remove it from adjust_for.")
            for j, level in enumerate(levels[1:], start=1):
                cols.append((codes == j).astype(float))
                names.append(f"{c}[{level}]")
        else:
            x = _numeric(df, c, where)
            if np.ptp(x) == 0:
                raise ModelError(f"{where}: covariate {c!r} is constant ({x[0]:g}) in these data, "
                                 "so its effect cannot be estimated; remove it from adjust_for.")
            cols.append(x)
            names.append(c)
    X = np.column_stack(cols) if cols else np.empty((len(df), 0))
    return X, names


def _strata_codes(df: pd.DataFrame, strata: list[str], where: str) -> tuple[np.ndarray, int]:
    if not strata:
        return np.zeros(len(df), dtype=np.int64), 1
    for c in strata:
        if c not in df.columns:
            raise ModelError(f"{where}: stratum column {c!r} is not a column (columns: {', '.join(map(str, df.columns))}).")
        if df[c].isna().any():
            raise ModelError(f"{where}: stratum column {c!r} has {int(df[c].isna().sum()):,} missing value(s); fill or drop them.")
    codes, uniques = pd.MultiIndex.from_frame(df[strata].astype(str)).factorize()
    return np.asarray(codes, dtype=np.int64), len(uniques)


# ===================================================================== Cox engine
@dataclass
class _CoxState:
    """Risk-set bookkeeping that does not depend on the coefficients."""

    j_lo: np.ndarray  # first grid slot at which the row is at risk
    j_hi: np.ndarray  # first grid slot past the row's risk window
    j_ev: np.ndarray  # grid slot of each event row
    ev_rows: np.ndarray  # indices of event rows
    d: np.ndarray  # (weighted) events per grid slot
    grid_time: np.ndarray  # event time of each grid slot (nan on the spare slot per stratum)
    size: int


def _cox_state(start, stop, event, strata, nstrata, weights) -> _CoxState:
    ev = event > 0
    j_lo = np.empty(len(stop), dtype=np.int64)
    j_hi = np.empty(len(stop), dtype=np.int64)
    grid_times = []
    offset = 0
    for s in range(nstrata):
        rows = np.flatnonzero(strata == s) if nstrata > 1 else np.arange(len(stop))
        T = np.unique(stop[rows][ev[rows]])
        j_lo[rows] = offset + np.searchsorted(T, start[rows], side="right")
        j_hi[rows] = offset + np.searchsorted(T, stop[rows], side="right")
        grid_times.append(np.append(T, np.nan))  # one spare slot: where rows leave after the last event
        offset += len(T) + 1
    ev_rows = np.flatnonzero(ev)
    j_ev = j_hi[ev_rows] - 1  # the slot of the row's own stop time
    d = np.bincount(j_ev, weights=weights[ev_rows], minlength=offset)
    return _CoxState(j_lo, j_hi, j_ev, ev_rows, d, np.concatenate(grid_times), offset)


def _risk_sum(st: _CoxState, values: np.ndarray) -> np.ndarray:
    """Sum of ``values`` over each grid slot's risk set (rows with start < t <= stop)."""
    diff = np.bincount(st.j_lo, weights=values, minlength=st.size + 1) - np.bincount(st.j_hi, weights=values, minlength=st.size + 1)
    return np.cumsum(diff)[: st.size]


# Tall-and-skinny products are written as column loops: multithreaded BLAS
# matrix-vector products on millions of rows with two or three columns are
# tens of times slower than plain element-wise numpy on a shared machine.
def _linpred(cols, beta) -> np.ndarray:
    eta = np.zeros(len(cols[0]) if cols else 0)
    for k, x in enumerate(cols):
        eta += beta[k] * x
    return eta


def _cox_derivatives(beta, cols, st: _CoxState, weights, x_ev, w_ev, *, need_hessian=True):
    eta = _linpred(cols, beta)
    c = eta.max() if len(eta) else 0.0
    r = weights * np.exp(eta - c)
    p = len(cols)
    S0 = _risk_sum(st, r)
    m = np.flatnonzero(st.d > 0)
    S0m = S0[m]
    dm = st.d[m]
    ll = float((w_ev * eta[st.ev_rows]).sum() - (dm * (np.log(S0m) + c)).sum())
    xbar = np.zeros((st.size, p))
    rx = []
    for k in range(p):
        rx.append(r * cols[k])
        xbar[m, k] = _risk_sum(st, rx[k])[m] / S0m
    xm = xbar[m]
    grad = np.array([(w_ev * x_ev[:, k]).sum() - (dm * xm[:, k]).sum() for k in range(p)])
    if not need_hessian:
        return ll, grad, None, xbar, S0, c
    info = np.zeros((p, p))
    for k in range(p):
        for l in range(k, p):
            S2 = _risk_sum(st, rx[k] * cols[l])[m]
            info[k, l] = info[l, k] = (dm * (S2 / S0m - xm[:, k] * xm[:, l])).sum()
    return ll, grad, info, xbar, S0, c


def _newton(cols, st, weights, x_ev, w_ev, *, max_iter=60, tol=1e-10, where="fit_cox"):
    p = len(cols)
    beta = np.zeros(p)
    ll, grad, info, *_ = _cox_derivatives(beta, cols, st, weights, x_ev, w_ev)
    ll0 = ll
    for it in range(1, max_iter + 1):
        try:
            step = np.linalg.solve(info, grad)
        except np.linalg.LinAlgError:
            raise ModelError(f"{where}: the information matrix is singular: two covariates are collinear or one never varies "
                             "within a stratum; drop one of them from adjust_for.") from None
        halvings = 0
        while True:
            new = beta + step
            ll_new, g_new, i_new, *_ = _cox_derivatives(new, cols, st, weights, x_ev, w_ev)
            if np.isfinite(ll_new) and ll_new >= ll - 1e-10 * max(1.0, abs(ll)):
                break
            step = step / 2
            halvings += 1
            if halvings > 30:
                raise ModelError(f"{where}: Newton steps stopped improving the partial likelihood; the model is not identified "
                                 "(check for covariates that perfectly predict churn).")
        beta, ll, grad, info = new, ll_new, g_new, i_new
        if np.max(np.abs(beta)) > 25:
            raise ModelError(f"{where}: a coefficient ran off to {beta[np.argmax(np.abs(beta))]:+.1f} (a hazard ratio of 0 or "
                             "infinity): some covariate level has no churn events, or churn happens only in it. "
                             "Check the event counts by group.")
        if np.max(np.abs(step)) < tol:
            return beta, ll, ll0, grad, info, it
    raise ModelError(f"{where}: Newton-Raphson did not converge in {max_iter} iterations (last step "
                     f"{np.max(np.abs(step)):.2g}); the data may not identify the model.")


def _score_residuals(beta, cols, st: _CoxState, weights, x_ev, w_ev):
    """Per-row score residuals U_i (Breslow), unweighted: the score is sum_i w_i U_i."""
    _, _, _, xbar, S0, c = _cox_derivatives(beta, cols, st, weights, x_ev, w_ev, need_hessian=False)
    p = len(cols)
    dL = np.zeros(st.size)
    m = st.d > 0
    dL[m] = st.d[m] / S0[m]
    P0 = np.concatenate([[0.0], np.cumsum(dL)])
    H0 = P0[st.j_hi] - P0[st.j_lo]
    risk = np.exp(_linpred(cols, beta) - c)
    U = np.empty((len(risk), p))
    for k in range(p):
        P1 = np.concatenate([[0.0], np.cumsum(dL * xbar[:, k])])
        U[:, k] = -risk * (cols[k] * H0 - (P1[st.j_hi] - P1[st.j_lo]))
    U[st.ev_rows] += x_ev - xbar[st.j_ev]
    return U, xbar


def _cluster_meat(U, weights, codes):
    G = np.column_stack([np.bincount(codes, weights=U[:, k] * weights) for k in range(U.shape[1])])
    return G.T @ G


# ===================================================================== Cox results
@dataclass(frozen=True)
class CoxResult(Result):
    """A fitted Cox proportional-hazards model.

    ``params`` are log hazard ratios; ``cov`` is the covariance used for
    intervals (cluster-robust by user when ``robust``), ``cov_model`` the
    inverse information. ``exposure`` names the covariate whose hazard ratio
    the report is about.
    """

    label: str
    params: pd.Series
    cov: pd.DataFrame
    cov_model: pd.DataFrame
    exposure: str | None
    adjusted_for: tuple
    strata: tuple
    ties: str
    robust: bool
    weighted: bool
    n_rows: int
    n_users: int
    n_events: float
    loglike: float
    loglike_null: float
    iterations: int
    alpha: float = 0.05
    schoenfeld: pd.DataFrame | None = field(default=None, repr=False, compare=False)

    @property
    def std_errs(self) -> pd.Series:
        return pd.Series(np.sqrt(np.diag(self.cov.to_numpy())), index=self.params.index)

    def hazard_ratio(self, name: str | None = None) -> tuple[float, float, float]:
        """(hazard ratio, CI low, CI high) of ``name`` (default: the exposure)."""
        name = name or self.exposure
        if name not in self.params.index:
            raise ParameterError(f"{self.label}: no coefficient {name!r}; coefficients: {', '.join(self.params.index)}")
        row = self.summary().loc[name]
        return float(row["hazard_ratio"]), float(row["hr_ci_low"]), float(row["hr_ci_high"])

    def summary(self) -> pd.DataFrame:
        """Log hazard ratios (estimate, std_err, ci_low, ci_high), hazard ratios with
        their interval, z and p-value, one row per covariate."""
        t = summary_frame(self.params.index, self.params.to_numpy(), self.std_errs.to_numpy(), alpha=self.alpha)
        t["hazard_ratio"] = np.exp(t["estimate"])
        t["hr_ci_low"] = np.exp(t["ci_low"])
        t["hr_ci_high"] = np.exp(t["ci_high"])
        t["z"] = t["estimate"] / t["std_err"]
        t["p_value"] = 2 * stats.norm.sf(np.abs(t["z"]))
        return t

    def to_metrics(self, prefix: str = "cox") -> dict:
        out = {f"{prefix}.n_users": self.n_users, f"{prefix}.n_events": float(self.n_events)}
        out.update(_hr_metrics(prefix, self.summary()))
        return out

    def _repr_html_(self) -> str:
        se = "cluster-robust (by user)" if self.robust else "model-based"
        head = (f"<strong>{self.label}</strong><br>{self.n_users:,} users, {self.n_rows:,} rows, {self.n_events:,.0f} churn events; "
                f"{self.ties} ties; {se} standard errors"
                + (f"; strata: {', '.join(self.strata)}" if self.strata else "") + "<br>")
        cols = ["hazard_ratio", "hr_ci_low", "hr_ci_high", "p_value", "estimate", "std_err"]
        return head + self.summary()[cols].to_html(float_format=lambda v: f"{v:.4g}")


def _metric_name(name: str) -> str:
    return name.replace("[", "_").replace("]", "").replace(" ", "_").replace(">=", "ge").replace("=", "")


def _hr_metrics(prefix: str, table: pd.DataFrame) -> dict:
    """``prefix.hr.<term>`` with ``_ci_low``/``_ci_high`` from a hazard-ratio summary."""
    out = {}
    for name, row in table.iterrows():
        key = f"{prefix}.hr.{_metric_name(name)}"
        out[key] = float(row["hazard_ratio"])
        out[f"{key}_ci_low"] = float(row["hr_ci_low"])
        out[f"{key}_ci_high"] = float(row["hr_ci_high"])
    return out


def fit_cox(data: pd.DataFrame, *, covariates, stop: str = "stop", event: str = "churned", start: str | None = "start",
            strata=None, weights: str | None = None, cluster: str | None = "user_id", robust: bool = True,
            exposure: str | None = None, label: str = "Cox model", alpha: float = 0.05,
            keep_residuals: bool = True) -> CoxResult:
    """Cox proportional-hazards model on (possibly counting-process) rows.

    Each row is at risk on ``(start, stop]`` (``start=None``: from 0) and has
    ``event`` = 1 if the row ends in churn. Ties are handled with Breslow's
    method. ``strata`` gives each stratum its own baseline hazard;
    ``weights`` names a column of case weights (e.g. inverse probability
    weights); with ``robust=True`` the covariance is the sandwich clustered on
    ``cluster`` (the user: a user's episodes are one cluster), as statsmodels
    ``PHReg.fit(groups=...)`` computes it. Categorical covariates enter as
    indicators against their first level (see :func:`design_matrix`).
    """
    where = label
    cov_names = _as_list(covariates, "covariates")
    strata = _as_list(strata, "strata")
    need = [stop, event] + ([start] if start else []) + cov_names + strata + ([weights] if weights else [])
    if robust and cluster:
        need.append(cluster)
    _require_columns(data, need, where)
    if len(data) == 0:
        raise ModelError(f"{where}: no rows to fit; the table is empty.")
    if not cov_names:
        raise ParameterError(f"{where}: give at least one covariate.")
    t1 = _numeric(data, stop, where)
    t0 = _numeric(data, start, where) if start else np.zeros(len(data))
    bad = ~(t1 > t0)
    if bad.any():
        raise ModelError(f"{where}: {int(bad.sum()):,} row(s) with {stop} <= {start or 0} (e.g. rows {list(data.index[bad][:3])}); "
                         "every interval must have positive length.")
    ev = _numeric(data, event, where)
    if not np.isin(ev, (0.0, 1.0)).all():
        raise ModelError(f"{where}: column {event!r} must be 0 or 1.")
    if ev.sum() == 0:
        raise ModelError(f"{where}: no churn events in {len(data):,} rows, so hazards cannot be compared. "
                         "Check churn_after_days (churn may be inferred too late) or the observation window.")
    w = _numeric(data, weights, where) if weights else np.ones(len(data))
    if (w < 0).any():
        raise ModelError(f"{where}: weights must be >= 0 ({int((w < 0).sum())} negative).")
    X, names = design_matrix(data, cov_names, where=where)
    codes, nstrata = _strata_codes(data, strata, where)
    _check_separation(X, names, ev, w, where)
    if cluster and cluster in data.columns:
        ccodes, uniq = pd.factorize(data[cluster], sort=False)
        n_users = len(uniq)
    else:
        ccodes, n_users = np.arange(len(data)), len(data)
    # rows in order of their stop time: searchsorted and the bincounts then walk memory in order
    order = np.argsort(t1, kind="stable")
    t0, t1, ev, w, X, codes, ccodes = (a[order] for a in (t0, t1, ev, w, X, codes, ccodes))
    st = _cox_state(t0, t1, ev, codes, nstrata, w)
    cols = [np.ascontiguousarray(X[:, k]) for k in range(X.shape[1])]
    x_ev, w_ev = X[st.ev_rows], w[st.ev_rows]
    beta, ll, ll0, _, info, it = _newton(cols, st, w, x_ev, w_ev, where=where)
    cov_model = np.linalg.inv(info)
    U, xbar = _score_residuals(beta, cols, st, w, x_ev, w_ev) if (robust or keep_residuals) else (None, None)
    cov = cov_model @ _cluster_meat(U, w, ccodes) @ cov_model if robust else cov_model
    sch = None
    if keep_residuals:  # one row per event, in the caller's row order
        back = np.argsort(order[st.ev_rows], kind="stable")
        rows = st.ev_rows[back]
        sch = pd.DataFrame(x_ev[back] - xbar[st.j_ev[back]], columns=names, index=data.index[order[rows]])
        sch.insert(0, "time", t1[rows])
        sch.insert(1, "weight", w[rows])
        sch.insert(2, "stratum", codes[rows])
    idx = pd.Index(names, name="covariate")
    return CoxResult(
        label=label, params=pd.Series(beta, index=idx), cov=pd.DataFrame(cov, index=idx, columns=idx),
        cov_model=pd.DataFrame(cov_model, index=idx, columns=idx), exposure=exposure if exposure in names else (names[0] if exposure is None else exposure),
        adjusted_for=tuple(c for c in cov_names if c != exposure), strata=tuple(strata), ties="breslow", robust=bool(robust),
        weighted=weights is not None, n_rows=len(data), n_users=n_users, n_events=float(w[ev > 0].sum()),
        loglike=ll, loglike_null=ll0, iterations=it, alpha=alpha, schoenfeld=sch,
    )


def _check_separation(X, names, ev, w, where):
    """Binary covariates with no events at one level give a hazard ratio of 0 or infinity."""
    for k, name in enumerate(names):
        x = X[:, k]
        if not np.isin(x, (0.0, 1.0)).all():
            continue
        for level, word in ((1.0, "with"), (0.0, "without")):
            rows = x == level
            if rows.any() and w[rows & (ev > 0)].sum() == 0:
                raise ModelError(
                    f"{where}: no churn event happens in rows {word} {name!r} ({int(rows.sum()):,} rows), so its hazard ratio "
                    f"would be {'0' if level == 1.0 else 'infinite'} and cannot be estimated. "
                    + ("If this is the exposure, co-creation never precedes churn in these data: lengthen the observation "
                       "window or pick the other exposure." if level == 1.0 else "Check the covariate's coding.")
                )


# ===================================================================== exposure models
def _check_episodes(episodes: pd.DataFrame, exposure: str, where: str) -> None:
    _require_columns(episodes, ["user_id", "start", "stop", "churned", exposure], where,
                     "Build the table with workbench.tables.episodes(ds, exposure=..., churn_after_days=...).to_pandas().")
    if len(episodes) == 0:
        raise ModelError(f"{where}: the episodes table is empty (no users).")
    x = _numeric(episodes, exposure, where) > 0
    if not x.any():
        raise ModelError(f"{where}: no user is ever exposed ({exposure} is 0 in all {len(episodes):,} episodes), so co-creation "
                         "cannot be compared with its absence. Use a dataset with co-creation events, or the other exposure "
                         "(feedback is more common than adopted).")
    first = _numeric(episodes, "start", where) <= 0
    if first.any() and x[first].all():
        raise ModelError(f"{where}: every user is exposed from signup on ({exposure} = 1 on every first episode), so there is "
                         "no unexposed time to compare with.")
    churned = _numeric(episodes, "churned", where) > 0
    if not (x & churned).any():
        n_exposed = episodes.loc[x, "user_id"].nunique()
        raise ModelError(f"{where}: the exposure never precedes churn: none of the {n_exposed:,} exposed users churned "
                         "while exposed, so the hazard ratio would be 0 and cannot be estimated. Lengthen the observation "
                         "window, lower churn_after_days, or use the other exposure.")
    if not (~x & churned).any():
        raise ModelError(f"{where}: no user churned before co-creating, so the hazard ratio would be infinite and cannot be "
                         "estimated; check the exposure definition.")


def cox_time_varying(episodes: pd.DataFrame, *, exposure: str = "exposed", adjust_for=(), strata=(), robust: bool = True,
                     label: str | None = None, alpha: float = 0.05, keep_residuals: bool = True) -> CoxResult:
    """Cox model with co-creation as a **time-varying** exposure (the default,
    unbiased by immortal time), adjusted for user attributes ``adjust_for``
    and stratified by ``strata``; cluster-robust standard errors by user.

    ``episodes`` is ``workbench.tables.episodes(...).to_pandas()``: rows
    ``(start, stop]`` per user, ``exposed`` switching to 1 at the first
    exposure event, ``churned`` 1 on the row that ends in churn.
    """
    adjust_for = [c for c in _as_list(adjust_for, "adjust_for") if c != exposure]
    label = label or ("Cox, time-varying exposure" + (f", adjusted for {', '.join(adjust_for)}" if adjust_for else ""))
    _check_episodes(episodes, exposure, label)
    return fit_cox(episodes, covariates=[exposure, *adjust_for], start="start", stop="stop", event="churned", strata=strata,
                   cluster="user_id", robust=robust, exposure=exposure, label=label, alpha=alpha, keep_residuals=keep_residuals)


def ever_exposed_table(episodes: pd.DataFrame, *, exposure: str = "exposed") -> pd.DataFrame:
    """One row per user: ``duration`` (last stop), ``churned``, ``ever_exposed``
    (exposed at any time before the end) and the user's attributes. This is the
    table behind the naive, immortal-time-biased comparison."""
    _require_columns(episodes, ["user_id", "stop", "churned", exposure], "ever_exposed_table")
    g = episodes.groupby("user_id", sort=False)
    out = g.agg(duration=("stop", "max"), churned=("churned", "max"), ever_exposed=(exposure, "max"))
    attrs = [c for c in episodes.columns if c not in EPISODE_COLUMNS and c != exposure]
    if attrs:
        out = out.join(g[attrs].first())
    return out.reset_index()


def cox_naive_ever(episodes: pd.DataFrame, *, exposure: str = "exposed", adjust_for=(), robust: bool = True,
                   alpha: float = 0.05) -> CoxResult:
    """The **naive** model: users who *ever* co-created versus never, as a fixed
    covariate from signup. Biased toward protection by immortal time (a user
    had to survive until they co-created); shown only to explain why it is
    wrong. The exposure coefficient is named ``ever_exposed``."""
    label = "NAIVE Cox, 'ever co-created' (immortal-time biased)"
    _check_episodes(episodes, exposure, label)
    users = ever_exposed_table(episodes, exposure=exposure)
    adjust_for = [c for c in _as_list(adjust_for, "adjust_for") if c != exposure]
    return fit_cox(users, covariates=["ever_exposed", *adjust_for], start=None, stop="duration", event="churned",
                   cluster="user_id", robust=robust, exposure="ever_exposed", label=label, alpha=alpha, keep_residuals=False)


# ===================================================================== PH check
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
            out[f"{prefix}.{_metric_name(name)}.p_value"] = float(row["p_value"])
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


# ===================================================================== Kaplan-Meier
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
    strata = _as_list(strata, "strata")
    where = "logrank_test"
    _require_columns(data, [duration, event, group, *strata], where)
    groups = data[group].astype(str)
    levels = tuple(sorted(groups.unique()))
    if len(levels) < 2:
        raise ModelError(f"{where}: {group!r} takes a single value ({levels[0] if levels else 'none'}); a log-rank test needs two groups or more.")
    from statsmodels.duration.survfunc import survdiff

    t = _numeric(data, duration, where)
    e = _numeric(data, event, where)
    s = None
    if strata:
        s, _ = _strata_codes(data, strata, where)
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
            key = f"{prefix}.{_metric_name(name)}"
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


_loglog_ci = km_loglog_ci


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
    _require_columns(data, [duration, event] + ([group] if group else []) + ([weights] if weights else []), where)
    if len(data) == 0:
        raise ModelError(f"{where}: no rows; nothing to estimate.")
    t = _numeric(data, duration, where)
    e = _numeric(data, event, where)
    if (t < 0).any():
        raise ModelError(f"{where}: {int((t < 0).sum())} negative durations in {duration!r}.")
    w = _numeric(data, weights, where) if weights else None
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


# ===================================================================== landmarks
def landmark_data(episodes: pd.DataFrame, *, landmarks, exposure: str = "exposed") -> pd.DataFrame:
    """Users still at risk at each landmark day ``d`` (their follow-up runs past
    ``d``), with ``exposed`` = had their first exposure event at or before ``d``,
    ``dose`` at ``d`` (if the episodes carry it), ``duration`` = time from ``d``
    to churn or censoring, ``churned``, and the user's attributes. One row per
    (landmark, user). The exposure is frozen at the landmark, so later
    co-creation does not move a user between groups (no immortal time)."""
    where = "landmark_data"
    _require_columns(episodes, ["user_id", "start", "stop", "churned", exposure], where)
    lms = sorted({float(d) for d in _as_number_list(landmarks, "landmarks")})
    if not lms:
        raise ParameterError(f"{where}: give at least one landmark day, e.g. landmarks=[30, 60].")
    if min(lms) < 0:
        raise ParameterError(f"{where}: landmark days must be >= 0, got {lms}.")
    g = episodes.groupby("user_id", sort=False)
    users = g.agg(end=("stop", "max"), churned=("churned", "max"))
    attrs = [c for c in episodes.columns if c not in EPISODE_COLUMNS and c != exposure]
    if attrs:
        users = users.join(g[attrs].first())
    out = []
    for d in lms:
        alive = users.index[users["end"].to_numpy() > d]
        if len(alive) == 0:
            continue
        # the episode holding day d: start <= d < stop
        at = episodes.loc[(episodes["start"] <= d) & (episodes["stop"] > d), ["user_id", exposure] + (["dose"] if "dose" in episodes.columns else [])]
        at = at.drop_duplicates("user_id").set_index("user_id")
        u = users.loc[alive]
        frame = pd.DataFrame({"user_id": u.index, "landmark": d})
        frame["exposed"] = at[exposure].reindex(u.index).fillna(0).astype(int).to_numpy()
        if "dose" in at.columns:
            frame["dose"] = at["dose"].reindex(u.index).fillna(0).to_numpy()
        frame["duration"] = u["end"].to_numpy() - d
        frame["churned"] = u["churned"].to_numpy().astype(int)
        for c in attrs:
            frame[c] = u[c].to_numpy()
        out.append(frame)
    if not out:
        raise ModelError(f"{where}: no user is still at risk at any landmark {lms}; choose earlier landmark days.")
    return pd.concat(out, ignore_index=True)


def _as_number_list(value, name) -> list[float]:
    if isinstance(value, (int, float, np.integer, np.floating)):
        return [float(value)]
    try:
        return [float(v) for v in value]
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a number or a list of numbers, got {value!r}") from None


# ===================================================================== discrete time
@dataclass(frozen=True)
class DiscreteHazardResult(Result):
    """Discrete-time hazard model fitted on aggregated risk sets.

    ``params``/``cov`` hold the covariate effects (the per-bin baseline terms
    are not reported); with ``link="cloglog"`` exp(coefficient) is the hazard
    ratio of the grouped-time proportional-hazards model, with
    ``link="poisson"`` the rate ratio of the piecewise-exponential model.
    """

    label: str
    link: str
    params: pd.Series
    cov: pd.DataFrame
    exposure: str
    n_cells: int
    n_bins: int
    n_events: float
    n_at_risk: float
    dropped_bins: int
    alpha: float = 0.05
    fitted: pd.DataFrame | None = field(default=None, repr=False, compare=False)

    def hazard_ratio(self, name: str | None = None) -> tuple[float, float, float]:
        name = name or self.exposure
        row = self.summary().loc[name]
        return float(row["hazard_ratio"]), float(row["hr_ci_low"]), float(row["hr_ci_high"])

    def summary(self) -> pd.DataFrame:
        t = summary_frame(self.params.index, self.params.to_numpy(), np.sqrt(np.diag(self.cov.to_numpy())), alpha=self.alpha)
        t["hazard_ratio"] = np.exp(t["estimate"])
        t["hr_ci_low"] = np.exp(t["ci_low"])
        t["hr_ci_high"] = np.exp(t["ci_high"])
        t["p_value"] = 2 * stats.norm.sf(np.abs(t["estimate"] / t["std_err"]))
        return t

    def to_metrics(self, prefix: str = "discrete_hazard") -> dict:
        out = {}
        out.update(_hr_metrics(prefix, self.summary()))
        return out

    def _repr_html_(self) -> str:
        head = (f"<strong>{self.label}</strong><br>{self.n_cells:,} cells, {self.n_bins} tenure bins "
                f"({self.dropped_bins} without events dropped), {self.n_events:,.0f} events<br>")
        return head + self.summary()[["hazard_ratio", "hr_ci_low", "hr_ci_high", "p_value", "estimate", "std_err"]].to_html(
            float_format=lambda v: f"{v:.4g}")


def discrete_time_hazard(risk_sets: pd.DataFrame, *, exposure: str = "exposed", adjust_for=(), link: str = "cloglog",
                         time_col: str = "tenure_bin", at_risk: str = "at_risk", events: str = "events",
                         exposure_days: str = "exposure_days", alpha: float = 0.05) -> DiscreteHazardResult:
    """Discrete-time hazard model on counts per (tenure bin, exposure, stratum):
    the path that scales to any number of users, since its input has one row
    per distinct pattern.

    ``link="cloglog"``: binomial GLM with complementary log-log link on
    ``events`` out of ``at_risk`` with one baseline term per tenure bin —
    the grouped-time version of the Cox model, so exp(beta) is a hazard
    ratio. ``link="poisson"``: piecewise-exponential Poisson GLM on
    ``events`` with offset log(``exposure_days``) (needs that column).
    ``adjust_for`` columns (e.g. the strata of ``risk_sets``) enter as
    covariates. Bins without any event carry no information about the
    covariates (their baseline goes to minus infinity) and are dropped, as are
    bins where everyone at risk churned.
    """
    import statsmodels.api as sm

    where = "discrete_time_hazard"
    if link not in ("cloglog", "poisson"):
        raise ParameterError(f"{where}: link must be 'cloglog' or 'poisson', got {link!r}")
    adjust_for = [c for c in _as_list(adjust_for, "adjust_for") if c != exposure]
    need = [time_col, exposure, events, at_risk] + adjust_for + ([exposure_days] if link == "poisson" else [])
    _require_columns(risk_sets, need, where, "Build the table with workbench.tables.risk_sets(ds, ...).to_pandas().")
    df = risk_sets.loc[_numeric(risk_sets, at_risk, where) > 0]
    if link == "poisson":
        df = df.loc[_numeric(df, exposure_days, where) > 0]
    if len(df) == 0:
        raise ModelError(f"{where}: no cell has anyone at risk.")
    ev = _numeric(df, events, where)
    n = _numeric(df, at_risk, where)
    if (ev > n).any() and link == "cloglog":
        raise ModelError(f"{where}: {int((ev > n).sum())} cell(s) have more events than users at risk; the risk sets are inconsistent.")
    if ev.sum() == 0:
        raise ModelError(f"{where}: no churn events in the risk sets; nothing to fit.")
    x = _numeric(df, exposure, where)
    for level, word in ((1.0, "exposed"), (0.0, "unexposed")):
        if n[x == level].sum() == 0:
            raise ModelError(f"{where}: nobody is ever at risk while {word}; the exposure effect cannot be estimated.")
        if ev[x == level].sum() == 0:
            raise ModelError(f"{where}: no churn event while {word}, so the hazard ratio would be "
                             f"{'0' if level else 'infinite'}; " + ("the exposure never precedes churn." if level else "check the data."))
    bins = df[time_col].to_numpy()
    ev_by_bin = pd.Series(ev).groupby(bins).sum()
    n_by_bin = pd.Series(n).groupby(bins).sum()
    informative = ev_by_bin.index[(ev_by_bin > 0) & ((ev_by_bin < n_by_bin) | (link == "poisson"))]
    keep = np.isin(bins, informative)
    dropped = int(len(ev_by_bin) - len(informative))
    df, ev, n = df.loc[keep], ev[keep], n[keep]
    B = pd.get_dummies(pd.Categorical(df[time_col].to_numpy()), prefix="bin", dtype=float)
    X, names = design_matrix(df, [exposure, *adjust_for], where=where)
    exog = np.column_stack([X, B.to_numpy()])
    if link == "cloglog":
        endog = np.column_stack([ev, n - ev])
        model = sm.GLM(endog, exog, family=sm.families.Binomial(link=sm.families.links.CLogLog()))
        start = np.r_[np.zeros(X.shape[1]), _bin_start(B.to_numpy(), ev, n)]
    else:
        off = np.log(_numeric(df, exposure_days, where))
        model = sm.GLM(ev, exog, family=sm.families.Poisson(), offset=off)
        start = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # convergence on the deviance: absolute 1e-8 plus relative 1e-12, since with millions of users
        # the deviance of huge counts carries rounding noise far above any fixed absolute tolerance
        fit = model.fit(start_params=start, maxiter=200, tol=1e-8, atol=1e-8, rtol=1e-12)
    if not fit.converged:
        raise ModelError(f"{where}: the GLM did not converge; coarsen the tenure bins (bin_days) or drop sparse strata.")
    k = X.shape[1]
    idx = pd.Index(names, name="covariate")
    # observed and fitted churn per bin and exposure state, pooled over strata (for the plot)
    rate = n if link == "cloglog" else _numeric(df, exposure_days, where)
    mu = np.asarray(fit.fittedvalues) * (n if link == "cloglog" else 1.0)
    per = pd.DataFrame({"tenure_bin": df[time_col].to_numpy(), "exposed": x[keep], "events": ev, "denominator": rate, "expected": mu})
    fitted = per.groupby(["tenure_bin", "exposed"], as_index=False)[["events", "denominator", "expected"]].sum()
    fitted["observed"] = fitted["events"] / fitted["denominator"]
    fitted["fitted"] = fitted["expected"] / fitted["denominator"]
    fitted["scale"] = "per user-bin" if link == "cloglog" else "per person-day"
    label = ("Discrete-time hazard (cloglog on risk sets)" if link == "cloglog" else "Piecewise-exponential (Poisson on risk sets)")
    if adjust_for:
        label += f", adjusted for {', '.join(adjust_for)}"
    return DiscreteHazardResult(label=label, link=link, params=pd.Series(fit.params[:k], index=idx),
                                cov=pd.DataFrame(fit.cov_params()[:k, :k], index=idx, columns=idx), exposure=exposure,
                                n_cells=len(df), n_bins=B.shape[1], n_events=float(ev.sum()), n_at_risk=float(n.sum()),
                                dropped_bins=dropped, alpha=alpha, fitted=fitted)


def _bin_start(B, ev, n):
    """Starting values: cloglog of each bin's crude hazard."""
    h = (B.T @ ev) / np.maximum(B.T @ n, 1e-12)
    h = np.clip(h, 1e-6, 1 - 1e-6)
    return np.log(-np.log1p(-h))


# ===================================================================== dose-response
@dataclass(frozen=True)
class DoseResponseResult(Result):
    """Churn hazard by number of adopted ideas so far (time-varying).

    ``levels``: hazard ratio per dose level against dose 0 (from a Cox model
    with indicator covariates); ``trend``: hazard ratio per additional idea
    (dose as a number, capped at ``max_dose``); ``exposure_by_level``:
    users, person-days and churn events in each dose level.
    """

    label: str
    levels: pd.DataFrame
    trend: pd.Series
    exposure_by_level: pd.DataFrame
    max_dose: int
    categorical: CoxResult = field(repr=False)
    linear: CoxResult = field(repr=False)
    alpha: float = 0.05

    def summary(self) -> pd.DataFrame:
        rows = self.levels[["estimate", "std_err", "ci_low", "ci_high"]].copy()
        rows.loc["per_idea"] = self.trend[["estimate", "std_err", "ci_low", "ci_high"]]
        return rows

    def to_metrics(self, prefix: str = "dose") -> dict:
        out = {}
        for name, row in self.levels.iterrows():
            out[f"{prefix}.hr.{_metric_name(name)}"] = float(row["hazard_ratio"])
        out[f"{prefix}.hr_per_idea"] = float(self.trend["hazard_ratio"])
        out[f"{prefix}.hr_per_idea_ci_low"] = float(self.trend["hr_ci_low"])
        out[f"{prefix}.hr_per_idea_ci_high"] = float(self.trend["hr_ci_high"])
        return out

    def _repr_html_(self) -> str:
        t = self.levels[["hazard_ratio", "hr_ci_low", "hr_ci_high", "p_value"]].copy()
        t.loc["per additional idea"] = self.trend[["hazard_ratio", "hr_ci_low", "hr_ci_high", "p_value"]]
        return f"<strong>{self.label}</strong>" + t.to_html(float_format=lambda v: f"{v:.4g}") + self.exposure_by_level.to_html(
            float_format=lambda v: f"{v:,.0f}")


def dose_response(episodes: pd.DataFrame, *, dose: str = "dose", adjust_for=(), strata=(), max_dose: int = 3,
                  robust: bool = True, alpha: float = 0.05) -> DoseResponseResult:
    """Churn hazard against the number of adopted ideas so far (``dose``, time
    varying on the episodes of ``workbench.tables.episodes(ds, exposure="adopted")``).
    Levels 1, 2, ..., ``max_dose``+ are compared with 0; the trend is the
    hazard ratio per additional idea with dose capped at ``max_dose``. Levels
    with no churn events are merged into the level below."""
    where = "dose_response"
    _require_columns(episodes, ["user_id", "start", "stop", "churned", dose], where,
                     "Build the table with workbench.tables.episodes(ds, exposure='adopted', ...).to_pandas().")
    if not isinstance(max_dose, (int, np.integer)) or max_dose < 1:
        raise ParameterError(f"{where}: max_dose must be a positive integer, got {max_dose!r}")
    x = np.minimum(_numeric(episodes, dose, where), max_dose)
    ev = _numeric(episodes, "churned", where)
    if (x > 0).sum() == 0:
        raise ModelError(f"{where}: no episode has a dose above 0 (no user had an idea adopted); no dose-response to estimate.")
    # merge top levels without events downward
    top = max_dose
    while top > 1 and ev[x >= top].sum() == 0:
        top -= 1
    x = np.minimum(x, top)
    if ev[x > 0].sum() == 0:
        raise ModelError(f"{where}: nobody churned after an idea was adopted, so the hazard ratios would be 0; "
                         "the exposure never precedes churn.")
    df = episodes.copy()
    level_names = []
    for k in range(1, top + 1):
        name = f"dose={k}" if k < top else f"dose>={k}"
        df[name] = (x >= k) & (x < k + 1) if k < top else (x >= k)
        df[name] = df[name].astype(float)
        level_names.append(name)
    df["dose_capped"] = x
    adjust_for = [c for c in _as_list(adjust_for, "adjust_for") if c != dose]
    cat = fit_cox(df, covariates=[*level_names, *adjust_for], strata=strata, robust=robust, exposure=level_names[0],
                  label="Cox, adopted ideas so far (levels vs 0)", alpha=alpha, keep_residuals=False)
    lin = fit_cox(df, covariates=["dose_capped", *adjust_for], strata=strata, robust=robust, exposure="dose_capped",
                  label="Cox, per additional adopted idea", alpha=alpha, keep_residuals=False)
    levels = cat.summary().loc[level_names]
    trend = lin.summary().loc["dose_capped"]
    durations = (df["stop"] - df["start"]).to_numpy()
    lvl = pd.Series(np.where(x >= top, f"{top}+", x.astype(int).astype(str)), index=df.index)
    by = pd.DataFrame({"level": lvl, "user_id": df["user_id"], "days": durations, "churned": ev})
    expo = by.groupby("level").agg(users=("user_id", "nunique"), person_days=("days", "sum"), churn_events=("churned", "sum"))
    expo["churn_per_1000_days"] = 1000 * expo["churn_events"] / expo["person_days"]
    return DoseResponseResult(label="Dose-response: adopted ideas so far and churn", levels=levels, trend=trend,
                              exposure_by_level=expo, max_dose=top, categorical=cat, linear=lin, alpha=alpha)


__all__ = [
    "CoxResult", "DiscreteHazardResult", "DoseResponseResult", "LogRankResult", "PHCheckResult", "SurvivalCurves",
    "cox_naive_ever", "cox_time_varying", "design_matrix", "discrete_time_hazard", "dose_response",
    "KMEstimate", "ever_exposed_table", "fit_cox", "kaplan_meier", "km_estimate", "km_loglog_ci", "landmark_data", "logrank_test", "proportional_hazards_check",
]
