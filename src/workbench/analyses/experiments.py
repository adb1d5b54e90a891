"""The experiment readout report: did any arm of a randomized experiment move
conversion, spend, retention or co-creation, by how much, with evidence
that survives looking at many metrics and looking every day?

``ExperimentReadout(dataset, experiment=..., metrics=[...])`` builds the
engine tables once (:func:`workbench.models.experiments.experiment_data`)
and reads them out; each method returns a :class:`~workbench.analyses.Section`
and :meth:`ExperimentReadout.answer` says which arms move which metrics and
whether the sample ratio is healthy. The words are decided by the functions
at the bottom, tested on both sides of each branch.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd

from workbench.analyses import format as fmt
from workbench.analyses.common import check_choice, check_names, check_number, load
from workbench.analyses.section import Answer, Section
from workbench.analyses.wording import estimable
from workbench.errors import ParameterError
from workbench.models.experiments.arms import metric_key

#: what each metric is called in a sentence, how its effect is written, and whether more is better
METRICS = {
    "retained": ("retention at the horizon", "binary", True),
    "converted": ("conversion (first purchase)", "binary", True),
    "feedback": ("submitting an idea", "binary", True),
    "adopted": ("having an idea adopted", "binary", True),
    "purchases": ("purchases per user", "mean", True),
    "revenue": ("revenue per user", "money", True),
    "active_days": ("active days per user", "mean", True),
    "revenue_per_purchase": ("revenue per purchase", "money", True),
    "revenue_per_active_day": ("revenue per active day", "money", True),
    "time_to_churn": ("time to churn", "days", True),
    "time_to_purchase": ("time to first purchase", "days", False),
    "time_to_idea": ("time to first idea", "days", False),
}
FAMILIES = {
    "binary": ("retained", "converted", "feedback", "adopted"),
    "means": ("purchases", "revenue", "active_days"),
    "ratios": ("revenue_per_purchase", "revenue_per_active_day"),
    "time": ("time_to_churn", "time_to_purchase", "time_to_idea"),
}


class ExperimentReadout:
    """The readout of one experiment in a dataset's assignments (see the module docstring)."""

    def __init__(self, dataset, *, experiment: str = "onboarding", metrics=(), horizon_days: float = 30,
                 cap_percentile: float = 99.0, correction: str = "holm", sequential: bool = True, segment_by: str = "segment",
                 churn: str = "cancel_or_inactivity", churn_after_days: float = 30):
        self.experiment = experiment
        self.metrics = check_names("metrics", metrics) or None
        unknown = [m for m in self.metrics or () if m not in METRICS]
        if unknown:
            raise ParameterError(f"metrics {unknown} are not experiment metrics; choose from {', '.join(METRICS)} (empty: all)")
        self.horizon_days = check_number("horizon_days", horizon_days, low=0, open_low=True)
        cap = check_number("cap_percentile", cap_percentile, low=0, high=100)
        self.cap_percentile = cap if 0 < cap < 100 else None
        self.correction = check_choice("correction", correction, ("holm", "bh", "none"))
        if not isinstance(sequential, bool):
            raise ParameterError(f"sequential must be true or false, got {sequential!r}")
        self.sequential = sequential
        self.segment_by = segment_by or None
        self.churn = check_choice("churn", churn, ("cancel", "inactivity", "cancel_or_inactivity"))
        self.churn_after_days = check_number("churn_after_days", churn_after_days, low=0, open_low=True)
        self.ds = load(dataset)
        self.currency = self.ds.meta.get("currency") or None

    @cached_property
    def problem(self) -> str | None:
        """Why this dataset cannot be read out for this experiment (None if it can)."""
        if self.ds.assignments is None:
            return "the dataset has no assignments table, so it holds no randomized experiment"
        names = sorted(str(x) for x in self.ds.assignments.select("experiment").distinct().to_pandas()["experiment"].dropna())
        if self.experiment not in names:
            return f"experiment {self.experiment!r} is not in this dataset's assignments (they hold: {', '.join(names)})"
        if self.segment_by and self.segment_by not in self.ds.users.columns:
            self.segment_note = f"segment_by: the users table has no column {self.segment_by!r}; effects by segment are skipped."
            self.segment_by = None
        return None

    @cached_property
    def result(self):
        from workbench.models import experiments as ex

        if self.problem:
            return None
        return ex.readout(self.ds, experiment=self.experiment, metrics=self.metrics, horizon_days=self.horizon_days,
                          churn=self.churn, churn_after_days=self.churn_after_days, cap_percentile=self.cap_percentile,
                          correction=self.correction, sequential=self.sequential, segment_by=self.segment_by)

    @property
    def effects(self) -> pd.DataFrame:
        return self.result.effects if self.result is not None else pd.DataFrame()

    # ------------------------------------------------------------ answer
    def answer(self) -> Answer:
        q = f"Did any arm of experiment {self.experiment} move the metrics, and can the result be trusted?"
        if self.result is None:
            return Answer(q, [f"This dataset cannot answer it: {self.problem}."])
        r = self.result
        sentences, metrics = [], {}
        if r.srm is not None:
            sentences.append(srm_sentence(r.srm.mismatch, r.srm.p_value))
            metrics["experiment.srm_p_value"] = r.srm.p_value
        moved = significant_moves(r.effects)
        sentences.append(moves_sentence(moved, len(r.effects), self.correction, self.currency))
        for _, row in moved.head(2).iterrows():
            metrics[f"experiment.{row['metric']}.{metric_key(row['arm'])}.effect"] = float(row["effect"])
        if self.sequential and r.sequential is not None:
            sentences.append(sequential_sentence(moved, r.effects))
        sentences.append(f"Read out {fmt.number(r.horizon_days)} days after each user's assignment; users not yet followed "
                         "that long are left out of the fixed-horizon metrics and censored in the time-to-event ones, never counted as failures.")
        return Answer(q, sentences, metrics)

    # ------------------------------------------------------------ sections
    def design(self) -> Section:
        s = Section("Arms and sample ratio")
        if self.result is None:
            return s.note(f"No readout: {self.problem}.")
        r = self.result
        a = r.arms
        s.table(pd.DataFrame({"arm": a["arm"], "assigned": [fmt.count(v) for v in a["users"]],
                              "followed for the whole horizon": [fmt.count(v) for v in a["observed"]],
                              "customers at assignment": [fmt.count(v) for v in a["customers_at_assignment"]]}), "Users per arm")
        if r.srm is not None:
            s.finding(srm_sentence(r.srm.mismatch, r.srm.p_value) + f" ({fmt.plural(len(a), 'arm')}, chi-square against the intended split.)")
        for n in r.notes:
            s.note(n)
        if getattr(self, "segment_note", None):
            s.note(self.segment_note)
        s.record(r.to_metrics())  # every estimate, as experiment.<metric>.<arm>.<stat>
        return s

    def family(self, name: str) -> Section:
        """One metric family (``binary``, ``means``, ``ratios``, ``time``): the effects table, a figure, findings."""
        from workbench.plots import experiments as plots

        title = {"binary": "Binary metrics", "means": "Counts and means per user", "ratios": "Ratio metrics",
                 "time": "Time to event"}[check_choice("family", name, tuple(FAMILIES))]
        s = Section(title)
        if self.result is None:
            return s
        e = self.effects[self.effects["metric"].isin(FAMILIES[name])]
        if e.empty:
            return s.note(f"No {title.lower()} were estimated (the dataset lacks their events, or they were not chosen).")
        if name == "time":
            for metric in self.result.time_to_event:
                s.figure(plots.plot_arm_survival(self.result, metric))
        else:
            s.figure(plots.plot_effects(self.result, metrics=list(dict.fromkeys(e["metric"])), currency=self.currency))
        s.table(effects_table(e, self.currency, self.correction))
        for _, row in e.iterrows():
            s.finding(effect_sentence(row, self.correction, self.currency))
        if self.cap_percentile is not None and name in ("means", "ratios"):
            s.note(f"Values per user are capped at the {fmt.number(self.cap_percentile)}th percentile of all arms pooled "
                   "(caps in the table's cap column), so a few very large buyers cannot decide the result.")
        return s

    def sequential_section(self) -> Section:
        from workbench.plots import experiments as plots

        s = Section("Looking every day")
        r = self.result
        if r is None or not self.sequential or r.sequential is None or r.sequential.empty:
            return s.note("Sequential intervals are off (sequential = false), or there is nothing to show.")
        moved = significant_moves(r.effects)
        fixed = r.effects[~r.effects["metric"].isin(FAMILIES["time"])]
        pick = moved[~moved["metric"].isin(FAMILIES["time"])] if not moved.empty else fixed
        for metric in list(dict.fromkeys(pick["metric"]))[:2]:
            s.figure(plots.plot_sequential(r, metric, currency=self.currency))
        s.finding(sequential_sentence(moved, r.effects))
        return s

    def heterogeneity_section(self) -> Section:
        s = Section("Effects by segment")
        r = self.result
        if r is None or r.heterogeneity is None:
            return s.note("No segment attribute to split by (segment_by is empty or missing from the users table).") if r is not None else s
        h = r.heterogeneity
        it = h.interactions
        s.table(pd.DataFrame({"metric": [METRICS[m][0] for m in it["metric"]], "arm": it["arm"].astype(str),
                              "effect differs between levels (p)": [fmt.p_value(p) for p in it["p_value"]],
                              "adjusted p": [fmt.p_value(p) for p in it["p_adjusted"]]}), f"Does the effect differ by {h.segment_by}?")
        s.finding(heterogeneity_sentence(it, h.segment_by))
        for n in h.notes:
            s.note(n)
        return s

    def power_section(self) -> Section:
        s = Section("What the experiment could detect")
        r = self.result
        if r is None:
            return s
        e = r.effects[np.isfinite(r.effects["mde"].astype(float))]
        if e.empty:
            return s.note("No minimum detectable effects to show.")
        s.table(pd.DataFrame({"metric": [METRICS[m][0] for m in e["metric"]], "arm": e["arm"].astype(str),
                              "smallest effect detected (80% power, 5% two-sided)": [value_text(m, v, self.currency, signed=False)
                                                                                     for m, v in zip(e["metric"], e["mde"])]}))
        s.finding("An effect smaller than these would likely be missed at this sample size: \"no clear effect\" above means "
                  "\"not larger than this\", not \"none\".")
        return s


# ------------------------------------------------------------------ wording
def kind(metric: str) -> str:
    return METRICS[metric][1]


def value_text(metric: str, value, currency=None, signed: bool = True) -> str:
    """An effect (signed) or a level in the metric's own unit."""
    k = kind(metric)
    if k == "binary":
        return fmt.points(value) if signed else f"{fmt.fixed(100 * abs(value), 1)} points"
    if k == "money":
        v = fmt.money(value if signed else abs(value), currency)
        return "+" + v if signed and value > 0 else v
    if k == "days":
        return f"{value:+.1f} days" if signed else f"{abs(value):.1f} days"
    return f"{value:+,.3g}" if signed else f"{abs(value):,.3g}"


def level_text(metric: str, value, currency=None) -> str:
    k = kind(metric)
    if k == "binary":
        return fmt.percent(value)
    if k == "money":
        return fmt.money(value, currency)
    if k == "days":
        return f"{fmt.fixed(value, 1)} days"
    return fmt.number(value)


def significant_moves(effects: pd.DataFrame) -> pd.DataFrame:
    """The (metric, arm) effects whose adjusted interval excludes no effect, largest evidence first."""
    if effects.empty:
        return effects
    lo, hi = effects["adj_ci_low"].astype(float), effects["adj_ci_high"].astype(float)
    moved = effects[(lo > 0) | (hi < 0)]
    return moved.sort_values("p_adjusted", kind="stable")


def direction(metric: str, effect: float) -> str:
    """"raised"/"lowered", or for a time to event "lengthened"/"shortened"."""
    if kind(metric) == "days":
        return "lengthened" if effect > 0 else "shortened"
    return "raised" if effect > 0 else "lowered"


def good_or_bad(metric: str, effect: float) -> str:
    better = METRICS[metric][2]
    return "an improvement" if (effect > 0) == better else "a worsening"


def moves_sentence(moved: pd.DataFrame, comparisons: int, correction: str, currency=None) -> str:
    adj = {"holm": "Holm", "bh": "Benjamini-Hochberg", "none": "no"}[correction]
    if moved.empty:
        return (f"No arm clearly moved any metric: after {adj} adjustment over {fmt.plural(comparisons, 'comparison')} of "
                "arms and metrics, every interval still includes no effect.")
    parts = [f"{row['arm']} {direction(row['metric'], row['effect'])} {METRICS[row['metric']][0]} by "
             f"{value_text(row['metric'], row['effect'], currency, signed=False)} ({good_or_bad(row['metric'], row['effect'])}; "
             f"{fmt.p_is(row['p_adjusted'], 'adjusted p')})" for _, row in moved.iterrows()]
    return (f"After {adj} adjustment over {fmt.plural(comparisons, 'comparison')} of arms and metrics, "
            f"{fmt.plural(len(moved), 'effect')} {'stands' if len(moved) == 1 else 'stand'}: " + "; ".join(parts) + ".")


def srm_sentence(mismatch: bool, p: float) -> str:
    if mismatch:
        return (f"Warning: the arm sizes do not match the intended split (sample ratio mismatch, {fmt.p_is(p)}), so the "
                "assignment may be broken: do not trust the estimates until it is explained.")
    return f"The arm sizes match the intended split (sample ratio check, {fmt.p_is(p)}), so the assignment looks healthy."


def sequential_sentence(moved: pd.DataFrame, effects: pd.DataFrame) -> str:
    seq = effects[np.isfinite(effects["seq_ci_low"].astype(float))] if "seq_ci_low" in effects else effects.iloc[:0]
    if seq.empty:
        return "No always-valid intervals were computed."
    held = seq[(seq["seq_ci_low"] > 0) | (seq["seq_ci_high"] < 0)]
    if held.empty:
        return ("None of the effects excludes zero with always-valid intervals, which stay valid however often the results "
                "were looked at: if the experiment was watched daily, wait for more data before acting.")
    names = fmt.listing(f"{METRICS[m][0]} ({a})" for m, a in zip(held["metric"], held["arm"]))
    return (f"The always-valid intervals, which stay valid however often the results were looked at, exclude zero for "
            f"{names}: these hold even if the experiment was watched every day.")


def effect_sentence(row, correction: str, currency=None) -> str:
    m = row["metric"]
    name = METRICS[m][0]
    if not estimable(row["effect"], row["ci_low"], row["ci_high"]):
        return f"{row['arm']} against control on {name}: not estimable on this data."
    adj = row["adj_ci_low"] > 0 or row["adj_ci_high"] < 0
    raw = row["ci_low"] > 0 or row["ci_high"] < 0
    head = (f"{row['arm']}: {name} {level_text(m, row['arm_value'], currency)} against {level_text(m, row['control_value'], currency)} "
            f"in control, a difference of {value_text(m, row['effect'], currency)} "
            f"({fmt.interval(row['ci_low'], row['ci_high'], lambda v: value_text(m, v, currency))}"
            + (f"; {fmt.signed_percent(row['relative_effect'])} relative" if np.isfinite(row["relative_effect"]) else "") + ")")
    if adj:
        return (head + f": {direction(m, row['effect'])}, {good_or_bad(m, row['effect'])}, and it holds after adjustment "
                f"({fmt.p_is(row['p_adjusted'], 'adjusted p')}).")
    if raw and correction != "none":
        return (head + f": it looks like an effect on its own ({fmt.p_is(row['p_value'])}) but not after adjusting for the many "
                f"comparisons ({fmt.p_is(row['p_adjusted'], 'adjusted p')}).")
    return head + ": no clear effect."


def heterogeneity_sentence(interactions: pd.DataFrame, segment_by: str) -> str:
    differs = interactions[interactions["p_adjusted"] < 0.05]
    if differs.empty:
        return (f"No effect clearly differs between levels of {segment_by} (interaction tests, adjusted): read the overall "
                "effects as holding for every level.")
    names = fmt.listing(f"{METRICS[m][0]} ({a})" for m, a in zip(differs["metric"], differs["arm"]))
    return f"The effect on {names} differs between levels of {segment_by} (adjusted interaction p < 0.05): look at each level."


def effects_table(e: pd.DataFrame, currency, correction: str) -> pd.DataFrame:
    has_seq = "seq_ci_low" in e and np.isfinite(e["seq_ci_low"].astype(float)).any()
    rows = []
    for _, r in e.iterrows():
        m = r["metric"]
        row = {"metric": METRICS[m][0] + (" (restricted mean)" if kind(m) == "days" else ""), "arm": str(r["arm"]),
               "control": level_text(m, r["control_value"], currency),
               "arm value": level_text(m, r["arm_value"], currency), "effect": value_text(m, r["effect"], currency),
               "95% CI": f"{value_text(m, r['ci_low'], currency)} to {value_text(m, r['ci_high'], currency)}",
               "relative": fmt.signed_percent(r["relative_effect"]), "p": fmt.p_value(r["p_value"])}
        if correction != "none":
            row["adjusted p"] = fmt.p_value(r["p_adjusted"])
        if has_seq and np.isfinite(r["seq_ci_low"]):
            row["always-valid CI"] = f"{value_text(m, r['seq_ci_low'], currency)} to {value_text(m, r['seq_ci_high'], currency)}"
        rows.append(row)
    out = pd.DataFrame(rows)
    return out.loc[:, [c for c in out.columns if not (out[c] == fmt.MISSING).all()]]
