"""The Cox proportional-hazards model on (counting-process) rows, with
co-creation as a time-varying exposure, and the naive "ever co-created"
model shown beside it.

:func:`fit_cox` is the workbench's own vectorised partial likelihood
(:mod:`.cox_engine`): Efron ties by default (as R's ``coxph``, lifelines and
statsmodels) or Breslow's, strata, case weights, and both the model-based
covariance (inverse information: what published Cox tables print) and the
robust sandwich (clustered on ``cluster``, e.g. the user whose episodes are
several rows; per row without a cluster). statsmodels ``PHReg`` is its test
oracle (``tests/test_survival.py``, ``tests/test_cox_reference.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from workbench.errors import ModelError, ParameterError
from workbench.models.inputs import as_list, design_matrix, numeric, require_columns, strata_codes
from workbench.models.results import Result
from workbench.models.survival import cox_engine as eng
from workbench.models.survival.summaries import hr_metrics, hr_table

#: episode columns that are not user attributes
EPISODE_COLUMNS = ("user_id", "start", "stop", "exposed", "dose", "churned", "signup_at", "end_at", "duration")
SE_TYPES = ("robust", "model")


@dataclass(frozen=True)
class CoxResult(Result):
    """A fitted Cox proportional-hazards model.

    ``params`` are log hazard ratios. ``cov_model`` is the inverse information
    (the model-based covariance published tables print), ``cov_robust`` the
    sandwich clustered on ``cluster`` (per row when ``cluster`` is None);
    ``se`` says which of the two ``cov``, ``std_errs`` and ``summary()`` use
    by default. ``exposure`` names the covariate the report is about.
    ``path``/``path_reason``: set when a function chose the exact fit over
    the aggregated one (:mod:`workbench.models.survival.paths`).
    """

    label: str
    params: pd.Series
    cov_model: pd.DataFrame
    cov_robust: pd.DataFrame
    se: str
    cluster: str | None
    exposure: str | None
    adjusted_for: tuple
    strata: tuple
    ties: str
    weighted: bool
    n_rows: int
    n_users: int
    n_events: float
    loglike: float
    loglike_null: float
    iterations: int
    alpha: float = 0.05
    schoenfeld: pd.DataFrame | None = field(default=None, repr=False, compare=False)
    path: str = "exact"
    path_reason: str = ""

    @property
    def robust(self) -> bool:
        return self.se == "robust"

    @property
    def cov(self) -> pd.DataFrame:
        """The covariance behind the default summary (``se``)."""
        return self.cov_robust if self.se == "robust" else self.cov_model

    @property
    def std_errs(self) -> pd.Series:
        return pd.Series(np.sqrt(np.diag(self.cov.to_numpy())), index=self.params.index)

    def se_description(self, se: str | None = None) -> str:
        se = se or self.se
        if se == "model":
            return "model-based (inverse information)"
        return f"robust, clustered by {self.cluster}" if self.cluster else "robust (per row, no clustering)"

    def hazard_ratio(self, name: str | None = None, *, se: str | None = None) -> tuple[float, float, float]:
        """(hazard ratio, CI low, CI high) of ``name`` (default: the exposure)."""
        name = name or self.exposure
        if name not in self.params.index:
            raise ParameterError(f"{self.label}: no coefficient {name!r}; coefficients: {', '.join(self.params.index)}")
        row = self.summary(se=se).loc[name]
        return float(row["hazard_ratio"]), float(row["hr_ci_low"]), float(row["hr_ci_high"])

    def summary(self, se: str | None = None) -> pd.DataFrame:
        """Log hazard ratios (estimate, std_err, ci_low, ci_high), hazard ratios with
        their interval, z and p-value, one row per covariate, with the standard
        errors ``se`` ("robust" or "model"; default: the fit's ``se``), named in
        the column ``se_type``."""
        se = se or self.se
        if se not in SE_TYPES:
            raise ParameterError(f"{self.label}: se must be 'robust' or 'model', got {se!r}")
        cov = self.cov_robust if se == "robust" else self.cov_model
        t = hr_table(self.params.index, self.params.to_numpy(), np.sqrt(np.diag(cov.to_numpy())), alpha=self.alpha)
        t["se_type"] = self.se_description(se)
        return t

    def to_metrics(self, prefix: str = "cox") -> dict:
        out = {f"{prefix}.n_users": self.n_users, f"{prefix}.n_events": float(self.n_events)}
        out.update(hr_metrics(prefix, self.summary()))
        return out

    def _repr_html_(self) -> str:
        who = f"{self.n_users:,} {self.cluster or 'row'} clusters, " if self.cluster else ""
        why = f"<em>{self.path_reason}</em><br>" if self.path_reason else ""
        head = (f"<strong>{self.label}</strong><br>{why}{who}{self.n_rows:,} rows, {self.n_events:,.0f} events; "
                f"{self.ties.capitalize()} ties; {self.se_description()} standard errors"
                + (f"; strata: {', '.join(self.strata)}" if self.strata else "") + "<br>")
        cols = ["hazard_ratio", "hr_ci_low", "hr_ci_high", "p_value", "estimate", "std_err"]
        return head + self.summary()[cols].to_html(float_format=lambda v: f"{v:.4g}")


def fit_cox(data: pd.DataFrame, *, covariates, stop: str = "stop", event: str = "churned", start: str | None = "start",
            strata=None, weights: str | None = None, cluster: str | None = None, ties: str = "efron", se: str | None = None,
            exposure: str | None = None, label: str = "Cox model", alpha: float = 0.05, keep_residuals: bool = True) -> CoxResult:
    """Cox proportional-hazards model on (possibly counting-process) rows.

    Each row is at risk on ``(start, stop]`` (``start=None``: from 0; a row
    entering at t is not at risk for an event at t, as in R and lifelines)
    and has ``event`` = 1 if it ends in the event. ``ties``: ``"efron"``
    (default) or ``"breslow"``. ``strata`` gives each stratum its own baseline
    hazard; ``weights`` names a column of case weights (e.g. inverse
    probability weights). ``cluster`` names the column whose rows belong
    together (the user: a user's episodes are one cluster) for the robust
    sandwich; without it the rows are taken as independent (the sandwich is
    then per row). ``se`` picks the standard errors the summary shows:
    ``"robust"`` (default with a cluster) or ``"model"`` (default without;
    what published tables print); both covariances are kept. Categorical
    covariates enter as indicators against their first level.
    """
    where = label
    cov_names = as_list(covariates, "covariates")
    strata = as_list(strata, "strata")
    if ties not in eng.TIES:
        raise ParameterError(f"{where}: ties must be 'efron' or 'breslow', got {ties!r}")
    se = se or ("robust" if cluster else "model")
    if se not in SE_TYPES:
        raise ParameterError(f"{where}: se must be 'robust' or 'model', got {se!r}")
    if isinstance(data, pd.DataFrame) and cluster and cluster not in data.columns:
        raise ModelError(f"{where}: cluster column {cluster!r} is not in the table (columns: {', '.join(map(str, data.columns))}). "
                         "Name the column that identifies whose rows belong together (e.g. cluster='id'), or pass "
                         "cluster=None to fit without clustering (rows taken as independent; model-based standard errors).")
    need = [stop, event] + ([start] if start else []) + cov_names + strata + ([weights] if weights else [])
    require_columns(data, need, where)
    if len(data) == 0:
        raise ModelError(f"{where}: no rows to fit; the table is empty.")
    if not cov_names:
        raise ParameterError(f"{where}: give at least one covariate.")
    t1 = numeric(data, stop, where)
    t0 = numeric(data, start, where) if start else np.zeros(len(data))
    bad = ~(t1 > t0)
    if bad.any():
        raise ModelError(f"{where}: {int(bad.sum()):,} row(s) with {stop} <= {start or 0} (e.g. rows {list(data.index[bad][:3])}); "
                         "every interval must have positive length.")
    ev = numeric(data, event, where)
    if not np.isin(ev, (0.0, 1.0)).all():
        raise ModelError(f"{where}: column {event!r} must be 0 or 1.")
    if ev.sum() == 0:
        raise ModelError(f"{where}: no events ({event!r} is 0 in all {len(data):,} rows), so hazards cannot be compared. "
                         "Check churn_after_days (churn may be inferred too late) or the observation window.")
    w = numeric(data, weights, where) if weights else np.ones(len(data))
    if (w < 0).any():
        raise ModelError(f"{where}: weights must be >= 0 ({int((w < 0).sum())} negative).")
    X, names = design_matrix(data, cov_names, where=where)
    codes, nstrata = strata_codes(data, strata, where)
    check_separation(X, names, ev, w, where)
    if cluster:
        ccodes, uniq = pd.factorize(data[cluster], sort=False)
        n_users = len(uniq)
    else:
        ccodes, n_users = np.arange(len(data)), len(data)
    # rows in order of their stop time: searchsorted and the bincounts then walk memory in order
    order = np.argsort(t1, kind="stable")
    t0, t1, ev, w, X, codes, ccodes = (a[order] for a in (t0, t1, ev, w, X, codes, ccodes))
    st = eng.cox_state(t0, t1, ev, codes, nstrata, w, ties)
    cols = [np.ascontiguousarray(X[:, k]) for k in range(X.shape[1])]
    x_ev, w_ev = X[st.ev_rows], w[st.ev_rows]
    beta, ll, ll0, _, info, it = eng.newton(cols, st, w, x_ev, w_ev, where=where)
    cov_model = np.linalg.inv(info)
    U, xbar = eng.score_residuals(beta, cols, st, w, x_ev, w_ev)
    cov_robust = cov_model @ eng.cluster_meat(U, w, ccodes) @ cov_model
    sch = None
    if keep_residuals:  # one row per event, in the caller's row order
        back = np.argsort(order[st.ev_rows], kind="stable")
        rows = st.ev_rows[back]
        sch = pd.DataFrame(x_ev[back] - xbar[st.j_ev[back]], columns=names, index=data.index[order[rows]])
        sch.insert(0, "time", t1[rows])
        sch.insert(1, "weight", w[rows])
        sch.insert(2, "stratum", codes[rows])
    idx = pd.Index(names, name="covariate")

    def frame(m):
        return pd.DataFrame(m, index=idx, columns=idx)

    return CoxResult(
        label=label, params=pd.Series(beta, index=idx), cov_model=frame(cov_model), cov_robust=frame(cov_robust), se=se,
        cluster=cluster, exposure=exposure if exposure in names else (names[0] if exposure is None else exposure),
        adjusted_for=tuple(c for c in cov_names if c != exposure), strata=tuple(strata), ties=ties,
        weighted=weights is not None, n_rows=len(data), n_users=n_users, n_events=float(w[ev > 0].sum()),
        loglike=ll, loglike_null=ll0, iterations=it, alpha=alpha, schoenfeld=sch,
    )


def check_separation(X, names, ev, w, where):
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
def check_episodes(episodes: pd.DataFrame, exposure: str, where: str) -> None:
    """The episodes have exposed and unexposed time, and churn in both."""
    require_columns(episodes, ["user_id", "start", "stop", "churned", exposure], where,
                    "Build the table with workbench.tables.episodes(ds, exposure=..., churn_after_days=...).to_pandas().")
    if len(episodes) == 0:
        raise ModelError(f"{where}: the episodes table is empty (no users).")
    x = numeric(episodes, exposure, where) > 0
    if not x.any():
        raise ModelError(f"{where}: no user is ever exposed ({exposure} is 0 in all {len(episodes):,} episodes), so co-creation "
                         "cannot be compared with its absence. Use a dataset with co-creation events, or the other exposure "
                         "(feedback is more common than adopted).")
    first = numeric(episodes, "start", where) <= 0
    if first.any() and x[first].all():
        raise ModelError(f"{where}: every user is exposed from signup on ({exposure} = 1 on every first episode), so there is "
                         "no unexposed time to compare with.")
    churned = numeric(episodes, "churned", where) > 0
    if not (x & churned).any():
        n_exposed = episodes.loc[x, "user_id"].nunique()
        raise ModelError(f"{where}: the exposure never precedes churn: none of the {n_exposed:,} exposed users churned "
                         "while exposed, so the hazard ratio would be 0 and cannot be estimated. Lengthen the observation "
                         "window, lower churn_after_days, or use the other exposure.")
    if not (~x & churned).any():
        raise ModelError(f"{where}: no user churned before co-creating, so the hazard ratio would be infinite and cannot be "
                         "estimated; check the exposure definition.")


def cox_time_varying(episodes: pd.DataFrame, *, exposure: str = "exposed", adjust_for=(), strata=(), ties: str = "efron",
                     se: str = "robust", label: str | None = None, alpha: float = 0.05, keep_residuals: bool = True) -> CoxResult:
    """Cox model with co-creation as a **time-varying** exposure (the default,
    unbiased by immortal time), adjusted for user attributes ``adjust_for``
    and stratified by ``strata``; standard errors cluster-robust by user
    (``se="model"`` for the model-based ones).

    ``episodes`` is ``workbench.tables.episodes(...).to_pandas()``: rows
    ``(start, stop]`` per user, ``exposed`` switching to 1 at the first
    exposure event, ``churned`` 1 on the row that ends in churn.
    """
    adjust_for = [c for c in as_list(adjust_for, "adjust_for") if c != exposure]
    label = label or ("Cox, time-varying exposure" + (f", adjusted for {', '.join(adjust_for)}" if adjust_for else ""))
    check_episodes(episodes, exposure, label)
    return fit_cox(episodes, covariates=[exposure, *adjust_for], start="start", stop="stop", event="churned", strata=strata,
                   cluster="user_id", ties=ties, se=se, exposure=exposure, label=label, alpha=alpha, keep_residuals=keep_residuals)


def ever_exposed_table(episodes: pd.DataFrame, *, exposure: str = "exposed") -> pd.DataFrame:
    """One row per user: ``duration`` (last stop), ``churned``, ``ever_exposed``
    (exposed at any time before the end) and the user's attributes. This is the
    table behind the naive, immortal-time-biased comparison."""
    require_columns(episodes, ["user_id", "stop", "churned", exposure], "ever_exposed_table")
    g = episodes.groupby("user_id", sort=False)
    out = g.agg(duration=("stop", "max"), churned=("churned", "max"), ever_exposed=(exposure, "max"))
    attrs = [c for c in episodes.columns if c not in EPISODE_COLUMNS and c != exposure]
    if attrs:
        out = out.join(g[attrs].first())
    return out.reset_index()


def cox_naive_ever(episodes: pd.DataFrame, *, exposure: str = "exposed", adjust_for=(), ties: str = "efron",
                   se: str = "robust", alpha: float = 0.05) -> CoxResult:
    """The **naive** model: users who *ever* co-created versus never, as a fixed
    covariate from signup. Biased toward protection by immortal time (a user
    had to survive until they co-created); shown only to explain why it is
    wrong. The exposure coefficient is named ``ever_exposed``."""
    label = "NAIVE Cox, 'ever co-created' (immortal-time biased)"
    check_episodes(episodes, exposure, label)
    users = ever_exposed_table(episodes, exposure=exposure)
    adjust_for = [c for c in as_list(adjust_for, "adjust_for") if c != exposure]
    return fit_cox(users, covariates=["ever_exposed", *adjust_for], start=None, stop="duration", event="churned",
                   cluster="user_id", ties=ties, se=se, exposure="ever_exposed", label=label, alpha=alpha, keep_residuals=False)


__all__ = ["EPISODE_COLUMNS", "CoxResult", "check_episodes", "cox_naive_ever", "cox_time_varying", "ever_exposed_table", "fit_cox"]
