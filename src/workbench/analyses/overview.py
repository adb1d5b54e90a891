"""The data overview report: what a dataset holds, which of the workbench's
questions it can answer, and how its users behave over time.

``Overview(dataset, period=...)`` loads and checks the dataset once; each
method returns a :class:`~workbench.analyses.Section` (or the
:class:`~workbench.analyses.Answer`), computing what it needs on first use.
The small functions below the class decide the words of each finding and
are tested on both sides of every branch.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd

from workbench import tables
from workbench.analyses import format as fmt
from workbench.analyses.common import check_choice, check_whole, load
from workbench.analyses.section import Answer, Section
from workbench.plots import overview as plots

ANALYSIS_NAMES = {
    "growth": "growth of the user base",
    "scaling": "how revenue scales with users",
    "conversion": "conversion of users into customers",
    "clv": "repeat buying and customer value",
    "retention": "retention",
    "cocreation": "co-creation and retention",
    "referrals": "referrals",
    "experiments": "randomized experiments",
}


class Overview:
    """The data overview of one dataset (see the module docstring)."""

    def __init__(self, dataset, *, period: str = "month", max_cohorts: int = 12, max_periods: int = 12):
        self.period = check_choice("period", period, ("day", "week", "month"))
        self.max_cohorts = check_whole("max_cohorts", max_cohorts, minimum=1)
        self.max_periods = check_whole("max_periods", max_periods, minimum=1)
        self.ds = load(dataset)
        self.currency = self.ds.meta.get("currency") or None

    # ------------------------------------------------------------ results
    @cached_property
    def has_events(self) -> bool:
        return self.ds.users is not None and self.ds.events is not None

    @cached_property
    def totals(self) -> dict | None:
        if not self.has_events:
            return None
        return tables.dataset_totals(self.ds).to_pandas().iloc[0].to_dict()

    @cached_property
    def supports(self) -> dict:
        return self.ds.supports()

    @cached_property
    def event_counts(self) -> dict:
        return self.ds.event_counts()

    @cached_property
    def kpis(self) -> pd.DataFrame | None:
        return tables.kpis(self.ds, period=self.period).to_pandas() if self.has_events else None

    @cached_property
    def cohorts(self) -> pd.DataFrame | None:
        return tables.cohort_retention(self.ds, period=self.period).to_pandas() if self.has_events else None

    # ------------------------------------------------------------ sections
    def answer(self) -> Answer:
        t, end = self.totals, self.ds.observation_end
        sentences, metrics = [], {}
        if t is not None and t["users"]:
            sentences.append(holdings_sentence(self.ds.name, t["users"], t["events"], t["first_signup"], end))
            sentences.append(customers_sentence(t["customers"], t["users"], t["revenue"], self.currency))
            metrics.update({"data.users": int(t["users"]), "conversion.customer_share": round(t["customers"] / t["users"], 6),
                            "data.revenue": round(float(t["revenue"]), 2)})
        elif self.ds.kpis is not None:
            sentences.append(f"Dataset {self.ds.name} holds reported KPIs only (no users or events), "
                             f"observed to {fmt.date(end)}.")
        sentences.extend(supports_sentences(self.supports))
        metrics["data.analyses_supported"] = sum(why is None for why in self.supports.values())
        return Answer("What does this dataset hold, and which questions can it answer?", sentences, metrics)

    def holdings(self) -> Section:
        s = Section("What the dataset holds")
        rows = self.ds.row_counts()
        s.table(pd.DataFrame([{"table": name, "rows": fmt.count(rows[name]), "columns": ", ".join(t.columns)}
                              for name, t in self.ds.tables.items()]), "Tables")
        if self.event_counts:
            types = pd.Series(self.event_counts).sort_values(ascending=False)
            s.table(pd.DataFrame({"event type": types.index, "events": [fmt.count(v) for v in types],
                                  "share": [fmt.percent(v) for v in types / types.sum()]}), "Events by type")
        t = self.totals
        if t is not None:
            s.finding(holdings_sentence(self.ds.name, t["users"], t["events"], t["first_signup"], self.ds.observation_end)
                      + " " + customers_sentence(t["customers"], t["users"], t["revenue"], self.currency, t["purchases"]))
            s.record({"data.name": self.ds.name, "data.users": int(t["users"]), "data.events": int(t["events"]),
                      "data.customers": int(t["customers"]), "data.purchases": int(t["purchases"]),
                      "data.revenue": round(float(t["revenue"]), 2)})
        if self.ds.observation_end is not None:
            s.record({"data.observation_end": str(self.ds.observation_end.date())})
        if self.ds.meta.get("description"):
            s.note(f"{self.ds.name}: {self.ds.meta['description']}" + (f" (source: {self.ds.meta['source']})" if self.ds.meta.get("source") else ""))
        return s

    def validation(self) -> Section:
        s = Section("Validation")
        s.table(pd.DataFrame([{"analysis": ANALYSIS_NAMES.get(a, a), "supported": "yes" if why is None else "no", "why not": why or ""}
                              for a, why in self.supports.items()]))
        s.finding(" ".join(supports_sentences(self.supports)))
        s.record({"data.analyses_supported": sum(why is None for why in self.supports.values())})
        return s

    def users_by_group(self) -> Section:
        s = Section("Users by segment and channel")
        u = self.ds.users
        groups = [c for c in ("segment", "channel") if u is not None and c in u.columns]
        if not groups:
            return s.note("The users table has no segment or channel column, so there is no breakdown by them.")
        counts = u.group_by(groups).aggregate(users=u.count()).to_pandas()
        s.figure(plots.category_bars(counts, category=groups[0], by=groups[1] if len(groups) > 1 else None,
                                     title=f"Users by {' and '.join(groups)}"))
        parts = [largest_group_phrase(col, counts.groupby(col, dropna=False)["users"].sum()) for col in groups]
        s.finding("In this dataset " + "; ".join(parts) + ".")
        return s

    def kpi_trends(self) -> Section:
        s = Section("KPI trends")
        k = self.kpis
        if k is None:
            return s.note("This is a KPI-only dataset (no users and events), so KPIs cannot be computed from events.")
        s.figure(plots.kpi_trends(k, period=self.period, currency=self.currency))
        full = k[k["complete"]] if k["complete"].any() else k
        last = full.iloc[-1]
        peak = full.loc[full["active_users"].idxmax()]
        s.finding(kpi_sentence(len(k), self.period, peak, last, self.currency))
        s.record({"kpi.periods": len(k), "kpi.active_users_peak": int(peak["active_users"]),
                  "kpi.active_users_last": int(last["active_users"]), "kpi.revenue_last": round(float(last["revenue"]), 2)})
        return s

    def reported_kpis(self) -> Section:
        s = Section("Reported KPIs")
        if self.ds.kpis is None:
            return s
        reported = self.ds.kpis.to_pandas()
        units = reported["unit"].nunique() if "unit" in reported.columns else 1
        s.figure(plots.reported_kpis(reported, currency=self.currency))
        s.finding(f"The dataset also holds a reported kpis table: {fmt.plural(len(reported), 'row')} for "
                  f"{fmt.plural(units, 'unit')} from {fmt.date(reported['period'].min(), 'month')} to "
                  f"{fmt.date(reported['period'].max(), 'month')}. These series are reported aggregates, not computed from the events.")
        return s

    def cohort_retention(self) -> Section:
        s = Section("Cohort retention")
        c = self.cohorts
        if c is None:
            return s.note("No users and events: no cohorts.")
        s.figure(plots.retention_heatmap(c, period=self.period, max_cohorts=self.max_cohorts, max_periods=self.max_periods))
        r1, r3 = cohort_share(c, 1), cohort_share(c, 3)
        s.finding(cohort_sentence(c["cohort"].nunique(), self.period, r1, r3))
        if r1 is not None:
            s.record({"retention.period_1": round(r1, 6)})
        if r3 is not None:
            s.record({"retention.period_3": round(r3, 6)})
        return s

    def activity(self) -> Section:
        s = Section("Activity")
        if not self.has_events or not self.totals["events"]:
            return s.note("There are no events, so there is nothing to show about activity.")
        per_user = tables.events_per_user(self.ds).to_pandas()
        s.figure(plots.count_distribution(per_user, value="n", weight="users", xlabel="events per user",
                                          title="Events per user (users with any event)"))
        median = weighted_median(per_user["n"], per_user["users"])
        top = top_share(per_user["n"], per_user["users"], 0.10)
        s.finding(activity_sentence(int(per_user["users"].sum()), median, top))
        s.record({"activity.events_per_user_median": median, "activity.top10_event_share": round(top, 6)})
        return s

    def purchases(self) -> Section:
        s = Section("Purchases")
        t = self.totals
        if t is None or not t["purchases"]:
            return s.note("There are no purchase events, so there is nothing to show about buying.")
        buying = tables.events_per_user(self.ds, event_type="purchase").to_pandas()
        s.figure(plots.count_distribution(buying, value="n", weight="users", xlabel="purchases per customer",
                                          title="Purchases per customer", color_index=1))
        bins = tables.purchase_amounts(self.ds, bins_per_decade=8).to_pandas()
        if len(bins):
            s.figure(plots.binned_distribution(bins, low="low", high="high", weight="purchases",
                                               xlabel="purchase amount" + (f" ({self.currency})" if self.currency else "") + ", log scale",
                                               ylabel="purchases", title="Purchase amounts"))
        repeat = float(buying.loc[buying["n"] > 1, "users"].sum() / buying["users"].sum())
        s.finding(purchases_sentence(repeat, int(t["customers"]), t["amount_median"], t["amount_mean"], t["amount_p90"], self.currency))
        s.record({"purchases.repeat_customer_share": round(repeat, 6), "purchases.amount_mean": round(float(t["amount_mean"]), 4),
                  "purchases.amount_median": round(float(t["amount_median"]), 4)})
        return s

    def experiments(self) -> Section:
        s = Section("Experiments")
        a = self.ds.assignments
        if a is None:
            return s.note("The dataset has no assignments table: no randomized experiments.")
        arms = a.group_by(["experiment", "arm"]).aggregate(users=a.count()).order_by(["experiment", "arm"]).to_pandas()
        s.table(pd.DataFrame({"experiment": arms["experiment"], "arm": arms["arm"], "users": [fmt.count(v) for v in arms["users"]]}))
        n_exp = arms["experiment"].nunique()
        s.finding(f"{fmt.plural(n_exp, 'randomized experiment')} {'assigns' if n_exp == 1 else 'assign'} "
                  f"{fmt.plural(arms['users'].sum(), 'user')} to arms.")
        return s


# ------------------------------------------------------------------ wording
def holdings_sentence(name, users, events, first, end) -> str:
    span = (pd.Timestamp(end) - pd.Timestamp(first)).days if first is not None and end is not None else None
    when = f" from {fmt.date(first)} to {fmt.date(end)} ({fmt.plural(span, 'day')})" if span is not None else ""
    return f"Dataset {name} holds {fmt.plural(users, 'user')} and {fmt.plural(events, 'event')}{when}."


def customers_sentence(customers, users, revenue, currency, purchases=None) -> str:
    """How many users became customers and what they paid; no purchases said plainly."""
    if not customers:
        return "Nobody has bought anything: there are no purchases."
    bought = f" made {fmt.plural(purchases, 'purchase')} worth" if purchases is not None else " paid"
    return (f"{fmt.count(customers)} of them ({fmt.percent(customers / users)}) became customers and{bought} "
            f"{fmt.money(revenue, currency)} in total.")


def supports_sentences(supports: dict) -> list[str]:
    """Which analyses the data supports and, for each it does not, why."""
    ok = [ANALYSIS_NAMES.get(a, a) for a, why in supports.items() if why is None]
    missing = [f"{ANALYSIS_NAMES.get(a, a)} ({why})" for a, why in supports.items() if why is not None]
    if not missing:
        return [f"It supports every analysis of the workbench ({len(ok)} of {len(supports)})."]
    first = (f"It supports {len(ok)} of {len(supports)} analyses: {fmt.listing(ok)}." if ok
             else "It supports none of the workbench's analyses.")
    return [first, f"It cannot answer questions about {fmt.listing(missing)}."]


def largest_group_phrase(column: str, users_by_level: pd.Series) -> str:
    share = users_by_level.sort_values(ascending=False) / users_by_level.sum()
    top = share.index[0]
    name = "(none)" if top is None or (isinstance(top, float) and np.isnan(top)) else top
    return f"the largest {column} is {name} with {fmt.percent(share.iloc[0])} of users ({fmt.plural(len(share), column)} in all)"


def kpi_sentence(n_periods, period, peak, last, currency) -> str:
    share = last["customers"] / last["active_users"] if last["active_users"] else None
    return (f"Over {fmt.plural(n_periods, period)}, active users peaked at {fmt.count(peak['active_users'])} in "
            f"{fmt.date(peak['period'], period)}; in the last complete {period} ({fmt.date(last['period'], period)}) "
            f"{fmt.count(last['active_users'])} users were active, {fmt.count(last['new_users'])} signed up and "
            f"{fmt.count(last['customers'])} paid ({fmt.percent(share)} of active users), for revenue of "
            f"{fmt.money(last['revenue'], currency)}.")


def cohort_share(cohorts: pd.DataFrame, index: int) -> float | None:
    """Share of users active ``index`` periods after their signup period,
    over the cohorts that have lived through that period completely (cohorts
    weighted by size); None if no cohort has."""
    last = cohorts.groupby("cohort")["period_index"].transform("max")
    done = cohorts[(cohorts["period_index"] == index) & (cohorts["period_index"] < last)]
    size = done["cohort_size"].sum()
    return float(done["active"].sum() / size) if size else None


def cohort_sentence(n_cohorts, period, r1, r3) -> str:
    parts = []
    if r1 is not None:
        parts.append(f"{fmt.percent(r1)} of users were active one {period} after their signup {period}")
    if r3 is not None:
        parts.append(f"{fmt.percent(r3)} three {period}s after")
    if not parts:
        return f"No cohort has been observed for a full {period} after signing up yet."
    return f"Across the {fmt.count(n_cohorts)} cohorts, " + " and ".join(parts) + " (cohorts weighted by size)."


def weighted_median(values, weights) -> int:
    """The median of ``values`` each repeated ``weights`` times (the lower one on a tie)."""
    order = np.argsort(np.asarray(values))
    v, w = np.asarray(values)[order], np.asarray(weights, dtype=float)[order]
    cum = np.cumsum(w)
    return int(v[np.searchsorted(cum, w.sum() / 2)])


def top_share(values, weights, fraction: float) -> float:
    """The share of the total of ``values`` held by the top ``fraction`` of
    units (``weights`` units have each value), splitting a tied value pro rata."""
    v, w = np.asarray(values, dtype=float), np.asarray(weights, dtype=float)
    order = np.argsort(-v)
    v, w = v[order], w[order]
    budget = fraction * w.sum()
    taken = np.minimum(w, np.maximum(budget - (np.cumsum(w) - w), 0.0))
    total = (v * w).sum()
    return float((taken * v).sum() / total) if total else 0.0


def activity_sentence(users, median, top) -> str:
    return (f"Half of the {fmt.count(users)} users with any event have at most {fmt.plural(median, 'event')}; "
            f"the most active tenth of them account for {fmt.percent(top)} of all events.")


def purchases_sentence(repeat, customers, median, mean, p90, currency) -> str:
    return (f"{fmt.percent(repeat)} of the {fmt.count(customers)} customers bought more than once. The median purchase is "
            f"{fmt.money(median, currency)}, the mean {fmt.money(mean, currency)}, and one purchase in ten exceeds "
            f"{fmt.money(p90, currency)}.")
