"""The users-to-revenue report: how users arrive (Bass diffusion), how revenue
grows with users (scaling laws), how users become paying customers
(conversion), and what that implies for a free against a paid product
(scenario planner).

``UsersToRevenue(dataset, period=...)`` loads the dataset once; each method
returns a :class:`~workbench.analyses.Section`, fitting what it needs on
first use (cached), and :meth:`UsersToRevenue.answer` states the conclusion
first. The wording functions at the bottom decide every word that depends
on a number and are tested on both sides of each branch.
"""

from __future__ import annotations

from functools import cached_property, partial

import numpy as np
import pandas as pd

from workbench import tables
from workbench.analyses import format as fmt
from workbench.analyses.common import Notes, check_choice, check_number, check_whole, load
from workbench.analyses.section import Answer, Section
from workbench.analyses.wording import estimable, ratio_phrase, term_label

PERIOD_DAYS = {"day": 1.0, "week": 7.0, "month": 30.4375}
LAW_NAMES = {"linear": "linear law (Sarnoff, n)", "odlyzko": "n log n law (Odlyzko)", "metcalfe": "Metcalfe's n² law",
             "power": "free power law (n^β)"}


class UsersToRevenue(Notes):
    """The users-to-revenue analysis of one dataset (see the module docstring)."""

    def __init__(self, dataset, *, period: str = "week", holdout_periods: int = 6, horizon_periods: int = 52,
                 conversion_days: int = 90, paid_market_share: float = 0.2, paid_price_ratio: float = 0.1, draws: int = 1000):
        self.period = check_choice("period", period, ("day", "week", "month"))
        self.holdout_periods = check_whole("holdout_periods", holdout_periods)
        self.horizon_periods = check_whole("horizon_periods", horizon_periods)
        self.conversion_days = check_whole("conversion_days", conversion_days, minimum=1)
        self.paid_market_share = check_number("paid_market_share", paid_market_share, low=0, high=1, open_low=True)
        self.paid_price_ratio = check_number("paid_price_ratio", paid_price_ratio, low=0, open_low=True)
        self.draws = check_whole("draws", draws, minimum=100)
        self.ds = load(dataset)
        self.currency = self.ds.meta.get("currency") or None
        self.notes: dict[str, list[str]] = {}

    # ------------------------------------------------------------ data
    @cached_property
    def supports(self) -> dict:
        return self.ds.supports()

    @cached_property
    def has_events(self) -> bool:
        return self.ds.users is not None and self.ds.events is not None

    @cached_property
    def kpi(self) -> pd.DataFrame | None:
        """KPIs per period from the events, complete periods only (the last is usually cut short)."""
        if not self.has_events:
            return None
        k = tables.kpis(self.ds, period=self.period).to_pandas()
        return k[k["complete"]].reset_index(drop=True)

    @cached_property
    def reported(self) -> pd.DataFrame | None:
        return self.ds.kpis.to_pandas() if self.ds.kpis is not None else None

    @cached_property
    def step(self) -> str:
        """The time step the text talks about: the period parameter, or a KPI-only dataset's own step."""
        if self.has_events or self.reported is None:
            return self.period
        gap = pd.Series(sorted(pd.to_datetime(self.reported["period"]).unique())).diff().dt.days.median()
        return "day" if gap <= 1 else "week" if gap <= 7 else "month" if 28 <= gap <= 31 else "period"

    # ------------------------------------------------------------ fits
    @cached_property
    def adoptions(self) -> tuple[pd.Series, str] | None:
        if self.supports["growth"] is not None:
            self._note("growth", f"No growth analysis: {self.supports['growth']}.")
            return None
        if self.has_events:
            k = self.kpi
            series = k.set_index(pd.DatetimeIndex(k["period"]))["new_users"].astype(float)
            source = f"signups per {self.period}"
        else:
            total = self.reported.groupby("period")["new_users"].sum()
            series = pd.Series(total.to_numpy(dtype=float), index=pd.DatetimeIndex(total.index))
            source = "reported new users per period (all units together)"
        busy = np.flatnonzero(series.to_numpy() > 0)
        return (series.iloc[busy[0]:] if len(busy) else series), source

    @cached_property
    def growth(self):
        from workbench.models.growth import fit_bass

        if self.adoptions is None:
            return None
        series, source = self.adoptions
        fit = self._fit("growth", lambda: fit_bass(series))
        if fit is None:
            self.notes["growth"][-1] = f"The Bass model cannot be fitted to the {source}: {self.notes['growth'][-1]}"
        return fit

    @cached_property
    def forecast(self) -> pd.DataFrame | None:
        return self.growth.forecast(horizon=self.horizon_periods, draws=self.draws, seed=1) if self.growth is not None else None

    @cached_property
    def scaling(self):
        from workbench.models.scaling import fit_scaling

        if self.supports["scaling"] is not None:
            self._note("scaling", f"No scaling analysis: {self.supports['scaling']}.")
            return None
        r = self.reported
        if r is not None and {"users", "revenue"} <= set(r.columns) and r["revenue"].notna().any():
            data, users = r, "users"
            self.scaling_source = "the reported KPI table" + (f" ({r['unit'].nunique()} units)" if "unit" in r.columns else "")
        else:
            data, users = self.kpi, "active_users"
            self.scaling_source = f"active users and revenue per {self.period}, computed from the events"
        fit = self._fit("scaling", lambda: fit_scaling(data, users=users, holdout_periods=self.holdout_periods))
        if fit is None and self.holdout_periods and "holdout_periods" in self.notes["scaling"][-1]:
            self.notes["scaling"][-1] += " The laws are compared without a holdout."
            fit = self._fit("scaling", lambda: fit_scaling(data, users=users, holdout_periods=0))
        if fit is None:
            self.notes["scaling"][-1] = f"The scaling laws cannot be fitted to {self.scaling_source}: {self.notes['scaling'][-1]}"
        return fit

    @cached_property
    def conversion_table(self) -> pd.DataFrame | None:
        if self.supports["conversion"] is not None:
            self._note("conversion", f"No conversion analysis: {self.supports['conversion']}.")
            return None
        return tables.conversion(self.ds).to_pandas()

    @cached_property
    def conversion_groups(self) -> list[str]:
        conv = self.conversion_table
        if conv is None:
            return []
        return [c for c in ("segment", "channel") if c in conv.columns and conv[c].nunique() > 1]

    @cached_property
    def conversion(self):
        from workbench.models.conversion import conversion_curve

        conv = self.conversion_table
        if conv is None:
            return None
        by = self.conversion_groups[0] if self.conversion_groups else None
        longest = float(np.nanmax(conv["observed_days"])) if len(conv) else 0.0
        max_days = int(max(self.conversion_days, min(longest, 4 * self.conversion_days)))
        fit = self._fit("conversion", lambda: conversion_curve(conv, horizon_days=self.conversion_days, by=by, max_days=max_days))
        if fit is None:
            self.notes["conversion"][-1] = f"The conversion curve cannot be estimated: {self.notes['conversion'][-1]}"
        return fit

    @cached_property
    def instant_conversion(self) -> bool:
        """Every user pays at signup (a customer-only dataset such as CDNOW)."""
        conv = self.conversion_table
        return conv is not None and len(conv) > 0 and bool((conv["converted"] == 1).all() and (conv["days_to_convert"] == 0).all())

    @cached_property
    def conversion_hazard(self):
        from workbench.models.conversion import fit_conversion_hazard

        if self.conversion_table is None:
            return None
        covs = self.conversion_groups
        cocreation = self.supports["cocreation"] is None
        if not covs and not cocreation:
            self._note("hazard", "No conversion hazard model: the dataset has no segment, channel or co-creation data to compare.")
            return None
        rs = tables.conversion_risk_sets(self.ds, bin_days=7, strata=tuple(covs), exposure="feedback").to_pandas()
        covariates = (("exposed",) if cocreation else ()) + tuple(covs)
        fit = self._fit("hazard", lambda: fit_conversion_hazard(rs, covariates=covariates, bin_days=7))
        if fit is None:
            self.notes["hazard"][-1] = f"The conversion hazard model cannot be fitted: {self.notes['hazard'][-1]}"
        return fit

    @cached_property
    def monetization(self):
        from workbench.models.conversion import monetization

        if self.kpi is not None and len(self.kpi) >= 2:
            data, users = self.kpi, "active_users"
        elif self.reported is not None and {"users", "customers", "revenue"} <= set(self.reported.columns):
            data = self.reported.groupby("period", as_index=False)[["users", "customers", "revenue"]].sum()
            users = "users"
        else:
            self._note("money", "No ARPU or ARPPU: the dataset has neither purchase events nor reported users, customers and revenue.")
            return None
        fit = self._fit("money", lambda: monetization(data, users=users))
        if fit is None:
            self.notes["money"][-1] = f"ARPU and ARPPU cannot be computed: {self.notes['money'][-1]}"
        return fit

    @cached_property
    def customer_value(self):
        from workbench.models.scenarios import fit_customer_value

        if self.kpi is None or self.conversion is None or self.instant_conversion:
            return None
        fit = self._fit("scenarios", lambda: fit_customer_value(self.kpi))
        if fit is None:
            self.notes["scenarios"][-1] = f"Revenue per customer cannot be calibrated on the KPIs: {self.notes['scenarios'][-1]}"
        return fit

    @cached_property
    def scenarios(self):
        from workbench.models.scenarios import Strategy, compare_strategies

        if self.instant_conversion:
            self._note("scenarios", "No scenarios: every user in this dataset pays from signup, so there is no free product to compare with a paid one.")
            return None
        missing = [what for what, ok in (("a growth fit", self.growth is not None), ("a conversion curve", self.conversion is not None),
                                         ("revenue per customer calibrated on first-time customers", self.customer_value is not None),
                                         ("ARPPU", self.monetization is not None)) if not ok]
        if missing:
            self._note("scenarios", f"No scenarios: they need {fmt.listing(missing)}, which this dataset does not give.")
            return None
        v = self.customer_value
        free = Strategy("free", adoption=self.growth, conversion=self.conversion, first_value=v.first_value, value=v.value,
                        retention=v.retention, period_days=PERIOD_DAYS[self.period])
        paid = Strategy("paid", adoption=self.growth, market_scale=self.paid_market_share, conversion=1.0, value=self.price,
                        retention=v.retention, period_days=PERIOD_DAYS[self.period])
        return compare_strategies(free, paid, horizon=self.horizon_periods, draws=self.draws, seed=2)

    @property
    def price(self) -> float:
        return self.paid_price_ratio * float(self.monetization.summary().loc["arppu", "estimate"])

    # ------------------------------------------------------------ sections
    def answer(self) -> Answer:
        sentences, metrics = [], {}
        g, s, c, sc = self.growth, self.scaling, self.conversion, self.scenarios
        if g is not None:
            sentences.append(growth_answer(g, self.step, self.adoptions[0].sum()))
            metrics.update({"bass.p": g.p, "bass.q": g.q, "bass.m": g.m})
        else:
            sentences.append("The growth of the user base cannot be described by a Bass curve on this dataset: " + self._why("growth"))
        if s is not None:
            lo, hi = s.exponent_ci
            sentences.append(scaling_answer(s.exponent, lo, hi, s.best_law))
            metrics.update({"scaling.power.exponent": s.exponent, "scaling.power.exponent_ci_low": lo, "scaling.power.exponent_ci_high": hi})
        else:
            sentences.append("How revenue scales with users cannot be told from this dataset: " + self._why("scaling"))
        if c is not None:
            row = c.shares.loc["all"]
            sentences.append(conversion_answer(c.share, row["ci_low"], row["ci_high"], self.conversion_days, self.instant_conversion))
            metrics[f"conversion.share_{self.conversion_days}d"] = c.share
        if sc is not None:
            sentences.append(scenario_answer(sc, self.horizon_periods, self.period, self.currency))
        return Answer("How does the size of the user base turn into customers and revenue?", sentences, metrics)

    def _why(self, key: str) -> str:
        notes = self.notes.get(key) or ["see the section below"]
        text = notes[0]
        return fmt.lower_first(text)

    def overview(self) -> Section:
        s = Section("The data")
        end = self.ds.observation_end
        ok = [a for a in ("growth", "scaling", "conversion", "cocreation") if self.supports.get(a) is None]
        s.finding(f"{self.ds.name}, observed to {fmt.date(end)}; analyses this dataset supports here: "
                  f"{fmt.listing(ok) if ok else 'none'}. Time step: one {self.step}.")
        return s

    def growth_section(self) -> Section:
        from workbench.plots.growth import plot_bass

        s = Section("Growth")
        g = self.growth
        for n in self.notes.get("growth", []):
            s.note(n, metric="bass.note")
        if g is None:
            return s
        s.figure(plot_bass(g, self.forecast).figure)
        s.table(parameter_table(g.summary(), {"p": ("innovation p", 4), "q": ("imitation q", 3), "m": ("market m (users)", 0),
                                               "peak_time": (f"peak ({self.step}s after the first)", 1),
                                               "peak_adoptions": (f"new users per {self.step} at the peak", 0)}))
        series, source = self.adoptions
        s.finding(growth_finding(g, self.forecast, series.sum(), source, self.step, self.horizon_periods))
        s.record(g.to_metrics())
        s.results["bass"] = g
        return s

    def scaling_section(self) -> Section:
        from workbench.plots.scaling import plot_scaling

        s = Section("Scaling laws")
        r = self.scaling
        for n in self.notes.get("scaling", []):
            s.note(n, metric="scaling.note")
        if r is None:
            return s
        s.figure(plot_scaling(r).figure)
        laws = r.compare()
        s.table(fmt.display_table(laws.rename(index=LAW_NAMES), {
            "exponent": ("exponent", lambda v: fmt.fixed(v, 2)),
            "aic": ("AIC", lambda v: fmt.fixed(v, 1)), "bic": ("BIC", lambda v: fmt.fixed(v, 1)),
            "rmse": ("error in sample (RMSE of log revenue)", lambda v: fmt.fixed(v, 3)),
            "oos_rmse": ("error on held-out periods", lambda v: fmt.fixed(v, 3)),
        }, index="law"), "The four laws")
        lo, hi = r.exponent_ci
        s.finding(scaling_finding(r.exponent, lo, hi, r.best_law, self.scaling_source, r.cov_type, r.n_obs,
                                  laws["oos_rmse"] if r.holdout_periods else None, r.holdout_periods))
        s.record(r.to_metrics())
        s.results["scaling"] = r
        return s

    def conversion_section(self) -> Section:
        from workbench.plots.conversion import plot_conversion_curve

        s = Section("Conversion")
        c = self.conversion
        for n in self.notes.get("conversion", []):
            s.note(n, metric="conversion.note")
        if c is None:
            return s
        s.figure(plot_conversion_curve(c).figure)
        shares = c.shares
        s.table(fmt.display_table(shares, {"estimate": (f"paid by day {self.conversion_days}", "percent"),
                                           "ci_low": ("95% CI low", "percent"), "ci_high": ("95% CI high", "percent")},
                                  index="users"), f"Share of users who have paid by day {self.conversion_days}")
        by = self.conversion_groups[0] if self.conversion_groups else None
        s.finding(conversion_finding(c, self.conversion_days, by, self.instant_conversion))
        s.record(c.to_metrics())
        s.results["conversion"] = c
        return s

    def conversion_hazard_section(self) -> Section:
        from workbench.plots.conversion import plot_hazard_ratios

        s = Section("Conversion rates compared")
        h = self.conversion_hazard
        for n in self.notes.get("hazard", []):
            s.note(n, metric="conversion.hazard.note")
        if h is None:
            return s
        s.figure(plot_hazard_ratios(h).figure)
        hs = h.summary()
        s.table(fmt.display_table(hs.rename(index=term_label), {"estimate": ("rate ratio", "ratio"), "ci_low": ("95% CI low", "ratio"),
                                                                 "ci_high": ("95% CI high", "ratio")}, index="compared with the reference"))
        for sentence in hazard_findings(hs, h.reference, self.conversion_groups):
            s.finding(sentence)
        s.record(h.to_metrics())
        s.results["conversion_hazard"] = h
        return s

    def monetization_section(self) -> Section:
        from workbench.plots.conversion import plot_monetization

        s = Section("Revenue per user and per customer")
        m = self.monetization
        for n in self.notes.get("money", []):
            s.note(n, metric="monetization.note")
        if m is None:
            return s
        s.figure(plot_monetization(m, currency=self.currency))
        s.finding(monetization_finding(m.summary(), self.step, self.currency))
        s.record(m.to_metrics())
        s.results["monetization"] = m
        return s

    def scenarios_section(self) -> Section:
        import matplotlib.pyplot as plt

        from workbench.plots.scenarios import plot_scenarios
        from workbench.plots.style import apply

        s = Section("Scenarios")
        sc = self.scenarios
        for n in self.notes.get("scenarios", []):
            s.note(n, metric="scenarios.note")
        v = self.customer_value
        if v is not None:
            s.finding(customer_value_finding(v.summary(), v.r_squared, self.period, self.currency))
            s.record(v.to_metrics())
        if sc is None:
            return s
        apply()
        fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
        plot_scenarios(sc, ax=axes[0], currency=self.currency)
        plot_scenarios(sc, cumulative=True, ax=axes[1], currency=self.currency)
        fig.tight_layout()
        s.figure(fig)
        s.finding(scenario_finding(sc, self.paid_market_share, self.paid_price_ratio, self.price, self.period, self.currency))
        s.record(sc.to_metrics())
        s.results["scenarios"] = sc
        return s


# ------------------------------------------------------------------ tables
def parameter_table(summary: pd.DataFrame, rows: dict) -> pd.DataFrame:
    """A model's estimates for people: ``rows`` maps a parameter to (label, decimals)."""
    out = []
    for name, (label, decimals) in rows.items():
        if name not in summary.index:
            continue
        r = summary.loc[name]
        f = partial(fmt.fixed, decimals=decimals)
        out.append({"": label, "estimate": f(r["estimate"]), "95% CI": f"{f(r['ci_low'])} to {f(r['ci_high'])}"
                    if estimable(r["estimate"], r["ci_low"], r["ci_high"]) else "not estimable"})
    return pd.DataFrame(out)


# ------------------------------------------------------------------ wording
def word_of_mouth(p: float, q: float) -> str:
    """What drives adoption: imitation (q) against innovation (p)."""
    if q > p:
        return f"imitation outweighs innovation {fmt.number(q / p, 2)} to 1, so most users came because others already had (word of mouth)"
    return "innovation outweighs imitation, so users mostly came on their own rather than through others"


def growth_answer(g, step: str, adopted: float) -> str:
    s = g.summary()
    share = adopted / g.m
    return (f"Users arrive {'mostly by word of mouth' if g.q > g.p else 'mostly on their own'}: a Bass curve with imitation "
            f"q = {fmt.fixed(g.q, 3)} and innovation p = {fmt.fixed(g.p, 4)} per {step} fits the signups, in a market of about "
            f"{fmt.number(g.m)} users ({fmt.interval(s.loc['m', 'ci_low'], s.loc['m', 'ci_high'], fmt.number)}), "
            f"{fmt.percent(share, 0)} of whom had arrived by the end of the data.")


def growth_finding(g, forecast, adopted, source, step, horizon) -> str:
    s = g.summary()
    peak = (f"New users peaked in {fmt.date(g.peak_period, step)}, {fmt.fixed(g.peak_time, 1)} {step}s after the first, at about "
            f"{fmt.number(g.peak_adoptions)} per {step}." if g.peak_period is not None else
            f"New users peaked {fmt.fixed(g.peak_time, 1)} periods after the first, at about {fmt.number(g.peak_adoptions)} per period.")
    text = (f"The {source} follow a Bass curve with innovation p = {fmt.estimate(g.p, s.loc['p', 'ci_low'], s.loc['p', 'ci_high'], lambda v: fmt.fixed(v, 4))} "
            f"and imitation q = {fmt.estimate(g.q, s.loc['q', 'ci_low'], s.loc['q', 'ci_high'], lambda v: fmt.fixed(v, 3))} per {step}: "
            f"{word_of_mouth(g.p, g.q)}. The market holds an estimated m = {fmt.estimate(g.m, s.loc['m', 'ci_low'], s.loc['m', 'ci_high'], fmt.number)} "
            f"users, {fmt.percent(adopted / g.m, 0)} of whom had arrived by the end of the data. {peak}")
    future = forecast[forecast["forecast"]] if forecast is not None else None
    if horizon and future is not None and len(future):
        more = future["cumulative"].iloc[-1] - adopted
        lo, hi = future["cumulative_ci_low"].iloc[-1] - adopted, future["cumulative_ci_high"].iloc[-1] - adopted
        text += (f" Over the next {fmt.plural(horizon, step)} the fit expects {fmt.count(more)} more new users "
                 f"(95% band {fmt.count(lo)} to {fmt.count(hi)}).")
    return text


def scaling_shape(lo: float, hi: float) -> str:
    """How revenue grows with users, judged by the exponent's interval."""
    if lo > 1:
        return "more than in proportion to users: each user brings in more revenue as the base grows, a network effect"
    if hi < 1:
        return "less than in proportion to users: each extra user brings in less than the last"
    return "about in proportion to users (an exponent of 1 lies inside the interval)"


def metcalfe_verdict(lo: float, hi: float) -> str:
    return "Metcalfe's n² lies outside the interval." if (hi < 2 or lo > 2) else "Metcalfe's n² cannot be ruled out."


def scaling_answer(beta, lo, hi, best_law) -> str:
    if not estimable(beta, lo, hi):
        return "How revenue scales with users is not estimable on this dataset (the exponent's interval is undefined)."
    return (f"Revenue grows {scaling_shape(lo, hi).split(':')[0]}: exponent β = {fmt.estimate(beta, lo, hi)}, so doubling the "
            f"user base multiplies revenue by {fmt.fixed(2 ** beta, 2)}; by BIC the best of four laws is the {LAW_NAMES.get(best_law, best_law)}.")


def scaling_finding(beta, lo, hi, best_law, source, cov_type, n_obs, oos: pd.Series | None, holdout: int) -> str:
    if not estimable(beta, lo, hi):
        return f"Using {source}, the power-law exponent is not estimable (its interval is undefined); compare the laws by their errors in the table."
    text = (f"Using {source}, revenue grows with users as a power law with exponent β = {fmt.estimate(beta, lo, hi)} "
            f"({cov_type} standard errors over {fmt.plural(n_obs, 'observation')}): doubling the user base multiplies revenue by "
            f"{fmt.fixed(2 ** beta, 2)} ({fmt.fixed(2 ** lo, 2)} to {fmt.fixed(2 ** hi, 2)}), so revenue grows {scaling_shape(lo, hi)}. "
            f"{metcalfe_verdict(lo, hi)} By BIC the best of the four laws is the {LAW_NAMES.get(best_law, best_law)}.")
    if oos is not None and oos.notna().any():
        ranked = oos.dropna().sort_values()
        text += (f" On the last {fmt.plural(holdout, 'period')}, held out, the error of log revenue (RMSE) is "
                 + ", ".join(f"{LAW_NAMES.get(law, law)} {fmt.fixed(v, 3)}" for law, v in ranked.items()) + ".")
    return text


def conversion_answer(share, lo, hi, days, instant) -> str:
    if instant:
        return "Every user in this dataset is a customer from signup (signup is the first purchase), so it says nothing about converting free users."
    return f"By day {days} after signup {fmt.percent(share)} of users have become paying customers ({fmt.interval(lo, hi, fmt.percent)})."


def conversion_finding(c, days, by, instant) -> str:
    row = c.shares.loc["all"]
    text = (f"By day {days} after signup, {fmt.percent(c.share)} of users had become paying customers "
            f"({fmt.interval(row['ci_low'], row['ci_high'], fmt.percent)}; {fmt.count(c.n_converted)} of {fmt.count(c.n_users)} users have paid so far).")
    if by:
        parts = [f"{g} {fmt.percent(r['estimate'])}" for g, r in c.shares.drop(index="all").iterrows() if np.isfinite(r["estimate"])]
        if parts:
            text += f" By {by}: " + ", ".join(parts) + "."
    if instant:
        text += (" In this dataset a user enters at the first purchase (signup is the first purchase), so every user is a"
                 " customer from day 0 and the conversion share is 100% by construction; it says nothing about free users.")
    return text


def hazard_findings(hs: pd.DataFrame, reference: dict, covs: list[str]) -> list[str]:
    """One sentence per compared group: how fast it converts against its reference, at equal tenure."""
    out = []
    if "exposed" in hs.index:
        r = hs.loc["exposed"]
        out.append(ratio_phrase("Users who have given feedback (co-created)", "convert", r["estimate"], r["ci_low"], r["ci_high"],
                                "users who have not yet", measure="rate")
                   + f" They are compared at the same tenure{', ' + fmt.listing(covs) if covs else ''}; this is an association, "
                   "not an effect: giving feedback requires a user who is still around, so it partly marks the users who stayed.")
    for cov in covs:
        ref = reference.get(cov)
        for term, r in hs.iterrows():
            if term.startswith(f"{cov}["):
                level = term[len(cov) + 1:-1]
                out.append(ratio_phrase(f"Users with {cov} {level}", "convert", r["estimate"], r["ci_low"], r["ci_high"],
                                        f"those with {cov} {ref}", measure="rate"))
    return out


def monetization_finding(ms: pd.DataFrame, step: str, currency) -> str:
    def est(name, f):
        return fmt.estimate(ms.loc[name, "estimate"], ms.loc[name, "ci_low"], ms.loc[name, "ci_high"], f)

    money = lambda v: fmt.money(v, currency)  # noqa: E731
    return (f"In an average {step}, revenue per active user (ARPU) was {est('arpu', money)} and revenue per paying customer "
            f"(ARPPU) {est('arppu', money)}; {fmt.percent(ms.loc['customer_share', 'estimate'])} of active users paid in a typical {step}.")


def customer_value_finding(vs: pd.DataFrame, r_squared: float, period: str, currency) -> str:
    money = lambda v: fmt.money(v, currency)  # noqa: E731

    def est(name, f):
        return fmt.estimate(vs.loc[name, "estimate"], vs.loc[name, "ci_low"], vs.loc[name, "ci_high"], f)

    fit = (f"revenue explained with R² = {fmt.fixed(r_squared, 2)}" if np.isfinite(r_squared) and r_squared >= 0
           else "the calibration explains revenue no better than its average")
    return (f"Calibrated on the KPIs ({fit}): a customer brings in {est('first_value', money)} in the {period} they first pay and "
            f"{est('value', money)} in each later {period} while they keep paying; {est('retention', fmt.percent)} of paying customers "
            f"are still paying the next {period}.")


def scenario_answer(sc, horizon, period, currency) -> str:
    tot = {name: s.summary().loc["total_revenue"] for name, s in sc.scenarios.items()}
    leader = sc.cumulative_leader_at_end
    other = next(n for n in tot if n != leader)
    lead, lag = tot[leader], tot[other]
    overlap = lead["ci_low"] <= lag["ci_high"]
    return (f"On the planner's assumptions the {leader} product earns more by the end of the {fmt.plural(horizon, period)} "
            f"({fmt.money(lead['estimate'], currency)} against {fmt.money(lag['estimate'], currency)})"
            + ("; the bands overlap, so this lead is not certain." if overlap else "; the bands do not overlap."))


def scenario_finding(sc, market_share, price_ratio, price, period, currency) -> str:
    d = sc.difference
    first_leader = sc.first if d["revenue_diff"].iloc[0] > 0 else sc.second

    def crossing(cumulative):
        c = sc.crossover_summary(cumulative=cumulative)
        if c["t"] is None:
            return None
        label = fmt.date(c["period"], period) if isinstance(c["period"], pd.Timestamp) else f"period {c['t']}"
        return (f"{label} (period {c['t']} from launch; the leader changes in {fmt.percent(c['share_of_draws'], 0)} of the draws, "
                f"in 95% of those between periods {fmt.count(c['t_low'])} and {fmt.count(c['t_high'])})")

    per, cum = crossing(False), crossing(True)
    tot = {name: s.summary().loc["total_revenue"] for name, s in sc.scenarios.items()}
    text = (f"The paid product reaches {fmt.percent(market_share, 0)} of the free product's market and everyone who joins pays "
            f"{fmt.money(price, currency)} per {period} ({fmt.percent(price_ratio, 0)} of today's ARPPU) while they stay. "
            f"At launch the {first_leader} product earns more per {period}. ")
    text += (
        f"Revenue per {period} changes leader in {per}. " if per else f"Revenue per {period} never changes leader over these {fmt.plural(len(d), 'period')}. "
    )
    text += f"Cumulative revenue changes leader in {cum}. " if cum else "Cumulative revenue never changes leader. "
    text += "By the end of the horizon: " + "; ".join(
        f"{name} {fmt.money(r['estimate'], currency)} in total (95% band {fmt.money(r['ci_low'], currency)} to {fmt.money(r['ci_high'], currency)})"
        for name, r in tot.items()) + f", so the {sc.cumulative_leader_at_end} product comes out ahead on these assumptions."
    return text
