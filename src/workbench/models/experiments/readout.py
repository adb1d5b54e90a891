"""One call for an experiment readout: every arm against control, for every
metric, with the design check, capping, CUPED, multiplicity, sequential
intervals, time-to-event comparisons and heterogeneity, as one result a
report section can render.

    data = experiment_data(ds, "onboarding", horizon_days=30, cap_percentile=99)   # the engine's tables, as pandas
    result = readout(data, correction="holm", sequential=True)                      # or readout(ds, experiment=...)
    result.summary(); result.to_metrics(); result.notes

What cannot be estimated (a metric the dataset has no events for, an arm
without users, a horizon longer than the follow-up, ...) is a note in
``result.notes``, not an error; errors are kept for what makes the whole
readout meaningless (no control arm, an unknown experiment or attribute).
"""

from __future__ import annotations

import html
import numbers
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from workbench.data.contract import CONTROL_ARM
from workbench.errors import ModelError, ParameterError
from workbench.models.experiments.arms import check_control, finite, metric_key
from workbench.models.experiments.design import SRMResult, sample_ratio_mismatch
from workbench.models.experiments.effects import EFFECT_COLUMNS, fixed_horizon_effects, quantile
from workbench.models.experiments.heterogeneity import HeterogeneityResult, heterogeneity
from workbench.models.experiments.multiplicity import adjust, check_correction
from workbench.models.experiments.sequential import mixture_scale, sequential_effects
from workbench.models.experiments.time_to_event import TimeToEventResult, time_to_event_effects
from workbench.models.results import Result
from workbench.tables.common import DEFAULT_CHURN
from workbench.tables.experiments import FIXED_HORIZON_METRICS, METRICS, TIME_TO_EVENT_METRICS, check_metrics

DEFAULTS = {"horizon_days": 30, "churn": DEFAULT_CHURN, "churn_after_days": 30, "cap_percentile": None, "segment_by": None}


@dataclass(frozen=True)
class ExperimentData:
    """The engine's tables for one experiment, pulled into pandas (all of
    them small: rows per arm, metric and day, never per user), with the
    arguments they were built with and the metrics the dataset cannot support."""

    experiment: str
    horizon_days: float
    churn: str
    churn_after_days: float
    cap_percentile: float | None
    segment_by: str | None
    metrics: tuple
    unsupported: dict
    arms: pd.DataFrame
    arm_stats: pd.DataFrame | None
    daily: pd.DataFrame | None
    time_to_event: pd.DataFrame | None
    segment_stats: pd.DataFrame | None


def experiment_data(ds, experiment: str, *, metrics=None, horizon_days: float = 30, churn: str = DEFAULT_CHURN,
                    churn_after_days: float = 30, cap_percentile: float | None = None, segment_by: str | None = None,
                    daily: bool = True) -> ExperimentData:
    """Build :func:`workbench.tables.experiment_tables` on ``ds`` (one scan of
    the events, cached in the engine) and pull the aggregates into pandas.
    Metrics whose events the dataset lacks (e.g. no purchases) are left out
    and listed in ``unsupported`` with the reason."""
    from workbench.tables.experiments import experiment_tables

    metrics = check_metrics("experiment_data", metrics)
    if getattr(ds, "assignments", None) is None:
        raise ParameterError(f"experiment_data(): dataset {ds.name!r} has no assignments table, so it holds no experiments; "
                             "add assignments.parquet or assignments.csv to the dataset folder")
    counts = ds.event_counts()
    unsupported = {}
    for m in metrics:
        missing = [t for t in METRICS[m].needs if counts.get(t, 0) == 0]
        if missing:
            unsupported[m] = f"the dataset has no {' or '.join(missing)} events"
    keep = [m for m in metrics if m not in unsupported]
    t = experiment_tables(ds, experiment, metrics=keep or None, horizon_days=horizon_days, churn=churn,
                          churn_after_days=churn_after_days, cap_percentile=cap_percentile, segment_by=segment_by,
                          daily=daily)

    def pull(expr):
        return None if expr is None or not keep else expr.to_pandas()

    return ExperimentData(experiment=experiment, horizon_days=float(horizon_days), churn=churn,
                          churn_after_days=float(churn_after_days), cap_percentile=cap_percentile, segment_by=segment_by,
                          metrics=tuple(keep), unsupported=unsupported, arms=t.arms.to_pandas(), arm_stats=pull(t.arm_stats),
                          daily=pull(t.daily), time_to_event=pull(t.time_to_event), segment_stats=pull(t.segment_stats))


READOUT_COLUMNS = EFFECT_COLUMNS + ["p_adjusted", "adj_ci_low", "adj_ci_high", "seq_ci_low", "seq_ci_high", "seq_p_value"]


@dataclass(frozen=True)
class ReadoutResult(Result):
    """An experiment readout. ``effects``: one row per (metric, arm other
    than control), see docs/experiments.md for every column; ``srm``: the
    sample-ratio check; ``sequential``: the effect and its always-valid
    interval on every day since the start (``sequential=True``);
    ``time_to_event``: per time-to-event metric, curves, RMST and hazard
    ratios; ``heterogeneity``: effects by ``segment_by``; ``notes``: what
    could not be estimated and why."""

    experiment: str
    horizon_days: float
    churn: str
    churn_after_days: float
    cap_percentile: float | None
    cuped: bool
    correction: str
    alpha: float
    metrics: tuple
    arms: pd.DataFrame
    srm: SRMResult | None
    effects: pd.DataFrame
    sequential: pd.DataFrame | None = None
    time_to_event: dict = field(default_factory=dict)
    heterogeneity: HeterogeneityResult | None = None
    notes: tuple = ()

    def summary(self) -> pd.DataFrame:
        cols = ["metric", "arm", "control_value", "arm_value", "effect", "ci_low", "ci_high", "relative_effect",
                "p_value", "p_adjusted", "adj_ci_low", "adj_ci_high"]
        if self.sequential is not None:
            cols += ["seq_ci_low", "seq_ci_high"]
        return self.effects[cols].set_index(["metric", "arm"])

    def effect(self, metric: str, arm: str) -> pd.Series:
        """The row of ``effects`` for one metric and arm."""
        row = self.effects[(self.effects["metric"] == metric) & (self.effects["arm"] == arm)]
        if row.empty:
            raise ParameterError(f"no estimate for metric {metric!r}, arm {arm!r}; estimated: "
                                 f"{', '.join(f'{m}/{a}' for m, a in zip(self.effects['metric'], self.effects['arm'])) or 'none'}")
        return row.iloc[0]

    def to_metrics(self, prefix: str = "experiment") -> dict:
        out = {}
        if self.srm is not None:
            out[f"{prefix}.srm_p_value"] = self.srm.p_value
        stats = [("effect", "effect"), ("effect_ci_low", "ci_low"), ("effect_ci_high", "ci_high"),
                 ("relative_effect", "relative_effect"), ("p_value", "p_value"), ("p_adjusted", "p_adjusted")]
        if self.sequential is not None:
            stats += [("seq_ci_low", "seq_ci_low"), ("seq_ci_high", "seq_ci_high")]
        for _, r in self.effects.iterrows():
            key = f"{prefix}.{r['metric']}.{metric_key(r['arm'])}"
            for name, col in stats:
                if finite(r[col]):
                    out[f"{key}.{name}"] = float(r[col])
        for tte in self.time_to_event.values():
            out.update(tte.to_metrics(prefix))
        return out

    def _repr_html_(self) -> str:
        cap = f"capped at the {self.cap_percentile:g}th percentile" if self.cap_percentile is not None else "not capped"
        head = (f"<strong>Experiment {html.escape(self.experiment)}</strong>: {self.horizon_days:g}-day horizon, churn rule "
                f"{html.escape(self.churn)}, values {cap}, CUPED {'on' if self.cuped else 'off'}, "
                f"{html.escape(self.correction)} adjustment over {int(np.isfinite(self.effects['p_value']).sum())} comparisons")
        srm = ""
        if self.srm is not None:
            srm = ("<br><b>sample ratio mismatch: do not trust the estimates</b>" if self.srm.mismatch
                   else f"<br>arm sizes match the intended split (SRM p = {self.srm.p_value:.3g})")
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes)
        return (head + srm + self.summary().to_html(float_format=lambda v: f"{v:,.4g}")
                + (f"<ul>{notes}</ul>" if notes else ""))


def _resolve(source, experiment, metrics, table_args, sequential):
    """The ExperimentData to read out, built from a dataset if need be."""
    if isinstance(source, ExperimentData):
        if experiment is not None and experiment != source.experiment:
            raise ParameterError(f"readout(): experiment={experiment!r}, but the tables given are for {source.experiment!r}")
        for name, value in table_args.items():
            if value is not None and value != getattr(source, name):
                raise ParameterError(f"readout(): {name}={value!r}, but the tables given were built with "
                                     f"{name}={getattr(source, name)!r}; rebuild them with experiment_data(...)")
        if sequential and source.daily is None and source.arm_stats is not None:
            raise ParameterError("readout(): sequential=True needs the daily table; build the data with experiment_data(..., daily=True)")
        return source
    if not isinstance(experiment, str):
        raise ParameterError("readout(): give the experiment's name, e.g. readout(ds, experiment='onboarding')")
    args = {k: (DEFAULTS[k] if v is None else v) for k, v in table_args.items()}
    return experiment_data(source, experiment, metrics=metrics, daily=sequential, **args)


def readout(source, *, experiment: str | None = None, metrics=None, horizon_days: float | None = None,
            churn: str | None = None, churn_after_days: float | None = None, cap_percentile: float | None = None,
            cuped: bool = True, correction: str = "holm", alpha: float = 0.05, sequential: bool = False,
            segment_by: str | None = None, allocation: dict | None = None, rmst_horizon_days: float | None = None) -> ReadoutResult:
    """Every arm against ``control`` for every metric (default: every metric
    the dataset supports). ``source`` is a dataset (then ``experiment`` is
    required and the engine tables are built: ``horizon_days`` default 30,
    ``churn`` / ``churn_after_days`` as in ``tables.survival``) or an
    :class:`ExperimentData` from :func:`experiment_data`.

    ``cap_percentile``: cap every non-binary value at that pooled percentile
    (stated in the output); ``cuped``: adjust each metric by its
    pre-assignment value; ``correction``: ``holm``, ``bh`` or ``none``
    across all arms x metrics; ``sequential``: add always-valid intervals by
    day since the start; ``segment_by``: effects per level of that user
    attribute; ``allocation``: the intended split for the sample-ratio check
    (default equal); ``rmst_horizon_days``: where RMST is measured (default
    the horizon).
    """
    check_correction(correction)
    if not (isinstance(alpha, numbers.Real) and 0 < alpha < 0.5):
        raise ParameterError(f"readout(): alpha must be between 0 and 0.5, got {alpha!r}")
    table_args = {"horizon_days": horizon_days, "churn": churn, "churn_after_days": churn_after_days,
                  "cap_percentile": cap_percentile, "segment_by": segment_by}
    data = _resolve(source, experiment, metrics, table_args, sequential)
    wanted = check_metrics("readout", metrics) if metrics is not None else list(data.metrics) + list(data.unsupported)
    notes = [f"{m}: not estimated: {data.unsupported[m]}." for m in wanted if m in data.unsupported]
    missing = [m for m in wanted if m not in data.metrics and m not in data.unsupported]
    if missing:
        raise ParameterError(f"readout(): metric(s) {', '.join(missing)} are not in the tables given (they hold "
                             f"{', '.join(data.metrics)}); rebuild them with experiment_data(..., metrics=...)")
    fixed = [m for m in wanted if m in data.metrics and m in FIXED_HORIZON_METRICS]
    tte = [m for m in wanted if m in data.metrics and m in TIME_TO_EVENT_METRICS]

    arms = data.arms.copy()
    arms["arm"] = arms["arm"].astype(str)
    check_control(arms["arm"], f"readout({data.experiment})")
    srm = _srm(arms, allocation, notes)
    _follow_up_notes(arms, data, notes)

    parts = []
    if fixed and data.arm_stats is not None:
        eff, more = fixed_horizon_effects(data.arm_stats, metrics=fixed, cuped=cuped, alpha=alpha)
        parts.append(eff)
        notes += more
    tte_results = {}
    tau = float(rmst_horizon_days if rmst_horizon_days is not None else data.horizon_days)
    for m in tte:
        try:
            res = time_to_event_effects(data.time_to_event, metric=m, horizon=tau, alpha=alpha)
        except ModelError as exc:
            notes.append(f"{m}: not estimated: {exc}")
            continue
        tte_results[m] = res
        notes += list(res.notes)
        parts.append(_tte_rows(res))
    effects = pd.concat([p for p in parts if not p.empty], ignore_index=True) if any(not p.empty for p in parts) else \
        pd.DataFrame(columns=EFFECT_COLUMNS)
    effects = effects.reindex(columns=READOUT_COLUMNS)
    effects["p_adjusted"], adj_alpha = adjust(effects["p_value"], correction, alpha)
    q = np.array([quantile(adj_alpha, df) for df in effects["df"].astype(float)]) if len(effects) else np.array([])
    effects["adj_ci_low"] = effects["effect"] - q * effects["std_err"]
    effects["adj_ci_high"] = effects["effect"] + q * effects["std_err"]

    seq = None
    if sequential:
        seq = sequential_effects(data.daily, metrics=fixed, cuped=cuped, alpha=alpha) if fixed and data.daily is not None \
            else sequential_effects(pd.DataFrame(columns=["metric", "day"]), metrics=[], alpha=alpha)
        last = seq.sort_values("day").groupby(["metric", "arm"]).tail(1).set_index(["metric", "arm"])
        for col in ("seq_ci_low", "seq_ci_high", "seq_p_value"):
            effects[col] = [last[col].get((m, a), np.nan) for m, a in zip(effects["metric"], effects["arm"])]
        if tte:
            notes.append(f"sequential intervals are for the fixed-horizon metrics; the time-to-event ones "
                         f"({', '.join(tte)}) have fixed-horizon intervals only.")
        notes.append(f"always-valid intervals: normal-mixture confidence sequence, mixing variance {mixture_scale(alpha):.2f} "
                     "x the effect's variance on the last day (tightest there).")

    het = None
    if data.segment_by is not None and data.segment_stats is not None and fixed:
        het = heterogeneity(data.segment_stats, segment_by=data.segment_by, metrics=fixed, cuped=cuped,
                            correction=correction, alpha=alpha)
        notes += list(het.notes)
    elif data.segment_by is not None and tte:
        notes.append(f"effects by {data.segment_by} are for the fixed-horizon metrics only.")
    return ReadoutResult(experiment=data.experiment, horizon_days=data.horizon_days, churn=data.churn,
                         churn_after_days=data.churn_after_days, cap_percentile=data.cap_percentile, cuped=bool(cuped),
                         correction=correction, alpha=float(alpha), metrics=tuple(fixed + tte), arms=arms, srm=srm,
                         effects=effects.reset_index(drop=True), sequential=seq, time_to_event=tte_results,
                         heterogeneity=het, notes=tuple(dict.fromkeys(notes)))


def _srm(arms: pd.DataFrame, allocation, notes: list) -> SRMResult | None:
    if allocation is not None and isinstance(allocation, dict):
        empty = sorted(set(allocation) - set(arms["arm"]))
        for a in empty:
            notes.append(f"arm '{a}' has no users: the intended split gives it a share of {allocation[a]:g}, but nobody was "
                         "assigned to it (a broken assignment or a misspelt arm name); it is left out of every estimate.")
    try:
        return sample_ratio_mismatch(arms[["arm", "users"]], allocation=allocation)
    except ModelError as exc:
        notes.append(f"sample ratio check: {exc}")
        return None


def _follow_up_notes(arms: pd.DataFrame, data: ExperimentData, notes: list) -> None:
    longest = float(arms["max_followup_days"].max())
    if int(arms["observed"].sum()) == 0:
        notes.append(f"no user has been followed for the whole {data.horizon_days:g}-day horizon (the longest follow-up since "
                     f"assignment is {longest:.1f} days), so no fixed-horizon metric can be estimated; choose "
                     f"horizon_days <= {np.floor(longest):.0f}, or wait.")
        return
    for _, r in arms.iterrows():
        if int(r["observed"]) == 0:
            notes.append(f"arm '{r['arm']}': none of its {int(r['users']):,} users has been followed for the whole "
                         f"{data.horizon_days:g}-day horizon yet.")
    unobserved = int(arms["users"].sum() - arms["observed"].sum())
    if unobserved:
        notes.append(f"{unobserved:,} of {int(arms['users'].sum()):,} assigned users have not been followed for the whole "
                     "horizon yet: left out of the fixed-horizon metrics, censored in the time-to-event ones.")


def _tte_rows(res: TimeToEventResult) -> pd.DataFrame:
    rows = []
    control = res.rmst.set_index("arm").loc[CONTROL_ARM]
    for _, c in res.comparisons.iterrows():
        arm = res.rmst.set_index("arm").loc[c["arm"]]
        rows.append({"metric": res.metric, "arm": c["arm"], "kind": "time_to_event", "test": f"RMST difference at {res.horizon:g} days (z)",
                     "n_control": int(control["users"]), "n_arm": int(arm["users"]), "control_value": control["rmst"],
                     "arm_value": arm["rmst"], "effect": c["rmst_difference"], "std_err": c["std_err"], "df": np.inf,
                     "ci_low": c["ci_low"], "ci_high": c["ci_high"], "relative_effect": c["relative_effect"],
                     "relative_ci_low": np.nan, "relative_ci_high": np.nan, "p_value": c["p_value"], "cuped": False,
                     "theta": np.nan, "variance_reduction": np.nan, "cap": np.nan, "cap_denominator": np.nan,
                     "mde": np.nan})
    return pd.DataFrame(rows, columns=EFFECT_COLUMNS)


__all__ = ["ExperimentData", "READOUT_COLUMNS", "ReadoutResult", "experiment_data", "readout"]
