"""The customer lifetime value report: what is a customer worth, which model
to trust for it, who is still active, and do co-creators buy more or stay
longer as customers?

``CustomerValue(dataset, time_unit=..., calibration_end=...)`` builds the
repeat-purchase summaries once; each method returns a
:class:`~workbench.analyses.Section`, and :meth:`CustomerValue.answer` names
the model chosen on the holdout (and why) and the customer base's value with
its interval. The per-customer table (``customers.parquet``) travels with the
value section and is written into the run folder by
:func:`workbench.reports.show`.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd

from workbench import tables
from workbench.analyses import format as fmt
from workbench.analyses.common import Notes, check_choice, check_date, check_number, check_whole, load
from workbench.analyses.section import Answer, Section
from workbench.analyses.wording import estimable, ratio_direction, ratio_phrase
from workbench.errors import ModelError, ParameterError

MODELS = {"BG/NBD": "bgnbd", "Pareto/NBD": "pareto_nbd", "MBG/NBD": "mbgnbd"}
PUBLISHED = {  # Fader, Hardie and Lee (2005) and Fader and Hardie's Gamma-Gamma note: CDNOW 1/10 sample
    ("BG/NBD", "r"): (0.243, 3), ("BG/NBD", "alpha"): (4.414, 3), ("BG/NBD", "a"): (0.793, 3), ("BG/NBD", "b"): (2.426, 3),
    ("BG/NBD", "log-likelihood"): (-9582.4, 1),
    ("Pareto/NBD", "r"): (0.553, 3), ("Pareto/NBD", "alpha"): (10.578, 3), ("Pareto/NBD", "s"): (0.606, 3),
    ("Pareto/NBD", "beta"): (11.669, 3), ("Pareto/NBD", "log-likelihood"): (-9595.0, 1),
    ("Gamma-Gamma", "p"): (6.25, 2), ("Gamma-Gamma", "q"): (3.74, 2), ("Gamma-Gamma", "gamma"): (15.44, 2),
}


class CustomerValue(Notes):
    """The customer-value analysis of one dataset (see the module docstring)."""

    FIT_ERRORS = (ModelError, ParameterError)

    def __init__(self, dataset, *, time_unit: str = "week", calibration_end: str = "", holdout_end: str = "",
                 horizon: float = 52.0, discount_rate: float = 0.1, max_frequency: int = 7,
                 subscription_period_days: float = 30.0, cocreation_exposure: str = "feedback"):
        self.time_unit = check_choice("time_unit", time_unit, ("week", "day"))
        self.calibration_end_param = check_date("calibration_end", calibration_end)
        self.holdout_end_param = check_date("holdout_end", holdout_end)
        self.horizon = check_number("horizon", horizon, low=0, open_low=True)
        self.discount_rate = check_number("discount_rate", discount_rate, low=-1, high=10, open_low=True)
        self.max_frequency = check_whole("max_frequency", max_frequency, minimum=1)
        self.subscription_period_days = check_number("subscription_period_days", subscription_period_days, low=0, open_low=True)
        self.exposure = check_choice("cocreation_exposure", cocreation_exposure, ("feedback", "adopted"))
        self.ds = load(dataset)
        self.currency = self.ds.meta.get("currency") or None
        self.notes: dict[str, list[str]] = {}

    # ------------------------------------------------------------ data
    @cached_property
    def window(self) -> dict | None:
        reason = self.ds.supports()["clv"]
        if reason is not None:
            self._note("base", f"Dataset {self.ds.name} cannot support the repeat-purchase analysis: {reason}.")
            return None
        return tables.calibration_window(self.ds, calibration_end=self.calibration_end_param or "",
                                         holdout_end=self.holdout_end_param or "")

    @property
    def unit(self) -> str:
        return self.time_unit

    @cached_property
    def covariates(self) -> tuple[str, ...]:
        attrs = tables.common.attribute_columns(self.ds) if self.ds.users is not None else []
        out = ["segment"] if "segment" in attrs else []
        if self.ds.event_counts().get(self.exposure, 0):
            out.append("exposed")
        return tuple(out)

    @cached_property
    def summary(self) -> pd.DataFrame | None:
        """Per customer, calibration and holdout (with the covariates)."""
        w = self.window
        if w is None:
            return None
        return tables.repeat_summary(self.ds, time_unit=self.time_unit, calibration_end=w["calibration_end"], holdout_end=w["holdout_end"],
                                     covariates=self.covariates, exposure=self.exposure).to_pandas()

    @cached_property
    def repeaters(self) -> int:
        return int((self.summary["frequency"] > 0).sum()) if self.summary is not None else 0

    @property
    def ok(self) -> bool:
        if self.summary is None:
            return False
        if self.repeaters == 0 and "base" not in self.notes:
            self._note("base", "No customer bought again during calibration, so purchase rates and drop-out cannot be told apart; "
                               "choose a later calibration_end or a dataset with repeat purchases.")
        return self.repeaters > 0

    @property
    def holdout_length(self) -> float:
        return float(self.summary["duration_holdout"].iloc[0]) if self.summary is not None and len(self.summary) else 0.0

    @cached_property
    def fits(self) -> dict:
        from workbench.models import clv

        if not self.ok:
            return {}
        out = {}
        for label, fn in (("BG/NBD", clv.fit_bgnbd), ("Pareto/NBD", clv.fit_pareto_nbd), ("MBG/NBD", clv.fit_mbgnbd)):
            r = self._fit("models", lambda fn=fn: fn(self.summary, time_unit=self.time_unit), prefix=f"{label} could not be fitted: ")
            if r is not None:
                out[label] = r
        return out

    @cached_property
    def spend(self):
        from workbench.models import clv

        if not self.ok:
            return None
        repeat = self.summary[self.summary["frequency"] > 0]
        positive = repeat[repeat["monetary_value"] > 0]
        if len(repeat) > len(positive):
            self._note("spend", f"{fmt.plural(len(repeat) - len(positive), 'repeat customer')} with zero mean spend are left out of the "
                                "spend model (it needs positive amounts).")
        self.spend_observed_mean = float(positive["monetary_value"].mean()) if len(positive) else float("nan")
        return self._fit("spend", lambda: clv.fit_gamma_gamma(positive), prefix="The spend model could not be fitted: ")

    @cached_property
    def holdouts(self) -> dict:
        from workbench.models import clv

        if not self.fits:
            return {}
        if self.holdout_length <= 0:
            self._note("holdout", "No holdout: the calibration period ends at the observation end, so there is nothing to validate "
                                  "against and no way to choose a model on data it has not seen. Set calibration_end earlier.")
            return {}
        return {label: clv.holdout_comparison(r, self.summary, max_frequency=self.max_frequency) for label, r in self.fits.items()}

    @cached_property
    def choice(self):
        from workbench.models import clv

        return clv.choose_model(self.holdouts) if self.holdouts else None

    @property
    def chosen(self) -> str | None:
        if self.choice is not None:
            return self.choice.chosen
        return next(iter(self.fits), None)

    @cached_property
    def value(self):
        """CLV per customer (with intervals) from the chosen model and Gamma-Gamma, both refitted on
        every purchase to the end of the holdout: each customer's value as of that day."""
        from workbench.models.clv.customers import value_as_of

        if self.chosen is None or self.spend is None:
            return None
        return self._fit("value", lambda: value_as_of(self.ds, model=MODELS[self.chosen], as_of=self.window["holdout_end"],
                                                      time_unit=self.time_unit, horizon=self.horizon, discount_rate=self.discount_rate))

    @cached_property
    def covariate_fits(self) -> dict:
        """BG/NBD (the purchase rate) and Pareto/NBD (purchase and drop-out rates) with the covariates."""
        from workbench.models import clv

        if not self.ok or not self.covariates:
            if self.ok:
                self._note("covariates", "The dataset has no segment and no co-creation events, so nothing to compare customers by.")
            return {}
        out = {}
        for label, fn in (("BG/NBD", clv.fit_bgnbd), ("Pareto/NBD", clv.fit_pareto_nbd)):
            r = self._fit("covariates", lambda fn=fn: fn(self.summary, time_unit=self.time_unit, covariates=self.covariates),
                          prefix=f"{label} with covariates: ")
            if r is not None:
                out[label] = r
        return out

    @cached_property
    def sbg(self):
        from workbench.models.retention_sbg import fit_sbg

        if self.ds.users is None or not self.ds.event_counts().get("cancel", 0):
            self._note("sbg", f"Dataset {self.ds.name} has no cancel events, so it is not a subscription (contractual) setting; "
                              "the sBG retention model does not apply.")
            return None
        try:
            survivors = tables.subscription_survivors(self.ds, period_days=self.subscription_period_days).to_pandas()
        except (ParameterError, ModelError) as exc:
            self._note("sbg", str(exc))
            return None
        self.survivors = survivors
        return self._fit("sbg", lambda: fit_sbg(survivors), prefix="The sBG model could not be fitted: ")

    # ------------------------------------------------------------ the answer
    def answer(self) -> Answer:
        sentences, metrics = [], {}
        if not self.ok:
            return Answer("What is a customer worth, and which model should we trust for it?",
                          [f"This dataset cannot answer it: {self._why('base')}"], metrics)
        if self.choice is not None:
            sentences.append(choice_sentence(self.choice.chosen, self.choice.reason))
            metrics["clv.choice.chosen"] = self.choice.chosen
        elif self.chosen is not None:
            sentences.append(f"With no holdout to judge them on, the report uses {self.chosen}.")
        v = self.value
        if v is not None:
            sentences.append(value_sentence(v.total_clv, *v.total_clv_ci, v.mean_clv, *v.mean_clv_ci, int(v.n.sum()), self.horizon,
                                            self.unit, self.discount_rate, self.currency, self.window["holdout_end"]))
            alive = float(np.average(v.customers["probability_alive"], weights=v.n))
            sentences.append(f"On average a customer is still active with probability {fmt.percent(alive, 0)}; the top fifth of "
                             f"customers hold {fmt.percent(v.top_share(0.2), 0)} of the value.")
            metrics.update({"clv.total_clv": v.total_clv, "clv.total_clv_ci_low": v.total_clv_ci[0], "clv.total_clv_ci_high": v.total_clv_ci[1],
                            "clv.mean_clv": v.mean_clv})
        else:
            sentences.append("Customer value cannot be computed: " + self._why("value", "spend", "models"))
        cov = self.covariate_fits.get("Pareto/NBD")
        if cov is not None and "exposed" in self.covariates:
            sentences.append(cocreator_sentence(cov.rate_ratio("exposed=1", "alpha"), cov.rate_ratio("exposed=1", "beta")))
        return Answer("What is a customer worth, and which model should we trust for it?", sentences, metrics)

    def _why(self, *keys) -> str:
        for k in keys:
            if self.notes.get(k):
                return fmt.lower_first(self.notes[k][0])
        return "see the sections below."

    # ------------------------------------------------------------ sections
    def base(self) -> Section:
        s = Section("The customer base")
        w, summ = self.window, self.summary
        if summ is not None:
            customers, tx = len(summ), int(summ["frequency"].sum())
            s.finding(base_sentence(self.ds.name, w, customers, self.repeaters, tx, self.holdout_length, self.unit))
            s.record({"clv.dataset": self.ds.name, "clv.customers": customers, "clv.repeat_customers": self.repeaters,
                      "clv.repeat_transactions": tx, "clv.calibration_end": str(w["calibration_end"].date()),
                      "clv.holdout_end": str(w["holdout_end"].date())})
        ok = self.ok
        for n in self.notes.get("base", []):
            s.note(n)
        s.record({"clv.status": "ok" if ok else "skipped: " + self._why("base")})
        return s

    def purchase_models(self) -> Section:
        s = Section("How often customers buy, and when they stop")
        fits = self.fits
        for n in self.notes.get("models", []):
            s.note(n)
        if not fits:
            return s
        s.table(parameter_table(fits), "Parameters (95% intervals)")
        s.finding(purchase_sentence(fits, self.unit))
        for r in fits.values():
            s.record(r.to_metrics())
        s.results.update(fits)
        return s

    def spend_section(self) -> Section:
        s = Section("How much they spend")
        sp = self.spend
        for n in self.notes.get("spend", []):
            s.note(n)
        if sp is None:
            return s
        s.table(parameter_table({"Gamma-Gamma": sp}), "Spend model (95% intervals)")
        s.finding(spend_sentence(sp.mean_spend, self.spend_observed_mean, sp.frequency_spend_corr, self.currency))
        s.record(sp.to_metrics())
        s.results["gamma_gamma"] = sp
        return s

    def published(self) -> Section:
        s = Section("Published values on the CDNOW sample")
        w = self.window
        if not (self.ok and self.ds.name == "cdnow-sample"):
            return s
        if not (self.time_unit == "week" and str(w["calibration_end"].date()) == "1997-09-30"):
            return s.note("The published CDNOW values are for weekly time and calibration end 1997-09-30; this run uses other "
                          "settings, so no comparison is shown.")
        models = {**self.fits, **({"Gamma-Gamma": self.spend} if self.spend is not None else {})}
        rows, matches = [], 0
        for (model, name), (value, digits) in PUBLISHED.items():
            r = models.get(model)
            fitted = np.nan if r is None else (r.loglik if name == "log-likelihood" else float(r.params.loc[name, "estimate"]))
            match = bool(np.isfinite(fitted) and round(fitted, digits) == value)
            matches += match
            rows.append({"model": model, "quantity": name, "published": fmt.fixed(value, digits), "fitted": fmt.fixed(fitted, digits),
                         "reproduced": "yes" if match else "no"})
        s.table(pd.DataFrame(rows), "Published values on the CDNOW sample")
        s.finding(f"{matches} of {len(rows)} published values (Fader, Hardie and Lee 2005; Fader and Hardie's Gamma-Gamma note) "
                  "are reproduced to the published precision.")
        s.record({"clv.published.matches": matches, "clv.published.total": len(rows)})
        return s

    def validation(self) -> Section:
        from workbench.plots import clv as plots

        s = Section("Validation and the model to trust")
        _ = self.holdouts
        for n in self.notes.get("holdout", []):
            s.note(n)
        if not self.holdouts:
            return s
        s.figure(plots.plot_holdout(list(self.holdouts.values())).figure)
        c = self.choice
        t = c.table
        s.table(fmt.display_table(t, {"customer_mse": ("mean squared error per customer", lambda v: fmt.fixed(v, 3)),
                                      "customer_mae": ("mean absolute error per customer", lambda v: fmt.fixed(v, 3)),
                                      "total_error": ("error of the holdout total", "signed_percent"),
                                      "bin_error": ("error by calibration frequency", lambda v: fmt.fixed(v, 3))},
                                  index="model"), "Holdout errors")
        first = next(iter(self.holdouts.values()))
        s.finding(holdout_sentence(self.holdout_length, self.unit, first.table["customers"].sum(), first.actual_total,
                                   {k: (v.expected_total, v.total_error) for k, v in self.holdouts.items()}))
        s.finding(choice_sentence(c.chosen, c.reason))
        for label, h in self.holdouts.items():
            s.record(h.to_metrics(prefix=f"clv.holdout.{MODELS[label]}"))
        s.record(c.to_metrics())
        s.results.update({"holdouts": self.holdouts, "choice": c})
        return s

    def tracking(self) -> Section:
        import matplotlib.pyplot as plt

        from workbench.models import clv
        from workbench.plots import clv as plots
        from workbench.plots.style import apply

        s = Section("Repeat purchases over time")
        if not self.fits:
            return s
        w = self.window
        daily = tables.repeat_tracking(self.ds, calibration_end=w["calibration_end"], holdout_end=w["holdout_end"]).to_pandas()
        track = clv.tracking_table(daily, models=self.fits, time_unit=self.time_unit)
        origin = pd.Timestamp(daily.loc[daily["new_customers"] > 0, "date"].min())
        per = 7 if self.time_unit == "week" else 1
        cal_time = (w["calibration_end"] - origin).days / per + 1 / per
        apply()
        fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
        plots.plot_tracking(track, calibration_end=cal_time, time_unit=self.time_unit, cumulative=True, ax=axes[0])
        plots.plot_tracking(track, calibration_end=cal_time, time_unit=self.time_unit, cumulative=False, ax=axes[1])
        fig.tight_layout()
        s.figure(fig)
        total = track["actual"].sum()
        errors = {k: track[f"expected_{k}"].sum() / total - 1 for k in self.fits} if total else {}
        if errors:
            s.finding(f"By {fmt.date(w['holdout_end'])} the customers had made {fmt.count(total)} repeat purchases; "
                      + "; ".join(f"{k} tracks {fmt.count(track[f'expected_{k}'].sum())} ({fmt.signed_percent(e)})" for k, e in errors.items()) + ".")
            s.record({f"clv.tracking.{MODELS[k]}.total_error": e for k, e in errors.items()})
        return s

    def who_is_active(self) -> Section:
        import matplotlib.pyplot as plt

        from workbench.plots import clv as plots
        from workbench.plots.style import apply

        s = Section("Who is still active, and who will buy")
        if self.chosen is None:
            return s
        r, summ = self.fits[self.chosen], self.summary
        t_max = float(summ["T"].max())
        top = int(max(5, min(summ["frequency"].quantile(0.99), 40)))
        grid = r.expected_purchases_grid(t=self.horizon, max_frequency=top, T=t_max, recency_points=30)
        apply()
        fig, axes = plt.subplots(1, 2, figsize=(14, 5))
        plots.plot_heatmap(grid, value="expected_purchases", ax=axes[0],
                           title=f"{self.chosen}: expected purchases in the next {fmt.number(self.horizon)} {self.unit}s")
        plots.plot_heatmap(grid, value="probability_alive", ax=axes[1], title=f"{self.chosen}: probability still active")
        fig.tight_layout()
        s.figure(fig)
        f_show = min(5, top)
        row = grid[grid.frequency == f_show].sort_values("recency")
        early = row.iloc[int(np.argmin(np.abs(row.recency.to_numpy() - t_max / 2)))]
        late = row.iloc[-1]
        s.finding(recency_sentence(f_show, early, late, self.horizon, self.unit))
        return s

    def value_section(self) -> Section:
        from workbench.plots import clv as plots

        s = Section("Customer lifetime value")
        v = self.value
        for n in self.notes.get("value", []):
            s.note(n)
        if v is None:
            if self.chosen is not None and self.spend is None:
                s.note("CLV needs both a purchase model and the spend model; the spend model could not be fitted (see above).")
            return s
        s.figure(plots.plot_clv_distribution(v, currency=self.currency).figure)
        s.finding(value_sentence(v.total_clv, *v.total_clv_ci, v.mean_clv, *v.mean_clv_ci, int(v.n.sum()), self.horizon, self.unit,
                                 self.discount_rate, self.currency, self.window["holdout_end"])
                  + f" The median customer is worth {fmt.money(v.median_clv, self.currency)}; the top fifth hold "
                  f"{fmt.percent(v.top_share(0.2), 0)} of the value.")
        table = v.customer_table()
        ids = [c for c in ("user_id", "segment") if c in table.columns]
        table.insert(len(ids), "model", v.model)
        table.insert(len(ids) + 1, "as_of", pd.Timestamp(self.window["holdout_end"]).date())
        s.files["customers.parquet"] = table
        s.note(f"Every customer's P(alive), expected purchases, expected spend and CLV, each with its 95% interval, are in "
               f"customers.parquet beside this report ({fmt.plural(len(table), 'row')}).")
        s.record(v.to_metrics(prefix="clv"))
        s.results["clv"] = v
        return s

    def covariates_section(self) -> Section:
        from workbench.plots import clv as plots

        s = Section("Do co-creators buy more, or stay longer as customers?")
        fits = self.covariate_fits
        for n in self.notes.get("covariates", []):
            s.note(n)
        if not fits:
            return s
        pn, bg = fits.get("Pareto/NBD"), fits.get("BG/NBD")
        main = pn or bg
        s.figure(plots.plot_rate_ratios(main).figure)
        rows = []
        for label, r in fits.items():
            for (param, term), row in r.coefficients.iterrows():
                rows.append({"model": label, "compared": term_words(term), "effect on": EFFECT_WORDS.get((label, param), param),
                             "ratio": fmt.ratio(row["ratio"]), "95% CI": f"{fmt.ratio(row['ratio_ci_low'])} to {fmt.ratio(row['ratio_ci_high'])}"})
        s.table(pd.DataFrame(rows), "Effects against the reference level (ratios)")
        planted = self._planted_rate_ratio()
        reference = dict(main.covariates.reference)
        for term in main.coefficients.index.get_level_values("term").unique():
            s.finding(covariate_sentence(term, main.rate_ratio(term, "alpha"), main.rate_ratio(term, "beta") if pn is not None else None,
                                         reference.get(term.partition("=")[0])))
        if bg is not None and planted is not None and "segment=enthusiast" in bg.coefficients.index.get_level_values("term"):
            rr, lo, hi = bg.rate_ratio("segment=enthusiast", "alpha")
            s.finding(f"BG/NBD puts the enthusiasts' purchase-rate ratio at {fmt.with_interval(rr, lo, hi)}; the planted value of "
                      f"this simulated dataset is {fmt.ratio(planted)}, {'inside' if lo <= planted <= hi else 'outside'} the interval.")
        lr = main.lr_test
        s.finding(f"Together the effects {'improve' if lr.p_value < 0.05 else 'do not clearly improve'} the fit "
                  f"(likelihood-ratio test, {lr.df} degrees of freedom, {fmt.p_is(lr.p_value)}). These are associations: "
                  "co-creators differ from others in other ways too (the co-creation report adjusts for that).")
        for label, r in fits.items():
            for (param, term), row in r.coefficients.iterrows():
                s.record({f"clv.covariates.{MODELS[label]}.{param}.{term.replace('=', '_')}": float(row["ratio"])})
        s.results.update({f"{k} with covariates": v for k, v in fits.items()})
        return s

    def _planted_rate_ratio(self) -> float | None:
        from workbench.analyses.cocreation import planted_value, read_truth

        truth = read_truth(self.ds.path / "truth.json")
        g = planted_value(truth, "bgnbd", "covariates", "segment=enthusiast", "g_rate")
        return float(np.exp(g)) if g is not None else None

    def subscription(self) -> Section:
        from workbench.plots import clv as plots

        s = Section("Subscription retention (sBG)")
        r = self.sbg
        for n in self.notes.get("sbg", []):
            s.note(n)
        if r is None:
            return s
        survivors = self.survivors
        s.figure(plots.plot_retention(r, periods=int(survivors["period"].max()) + 12))
        p12 = float(r.survival(12))
        per_period = (1 + self.discount_rate) ** (self.subscription_period_days / 365.25) - 1
        derl = r.residual_lifetime(periods_survived=0, discount_rate=per_period)
        s.finding(sbg_sentence(survivors["cohort"].nunique(), r.customers, self.subscription_period_days, r.mean_churn,
                               float(r.retention_rate(1)), float(r.retention_rate(12)), p12, derl, self.discount_rate))
        s.record(r.to_metrics())
        s.record({"clv.sbg.survival_12": p12, "clv.sbg.discounted_residual_lifetime": derl})
        s.results["sbg"] = r
        return s


# ------------------------------------------------------------------ tables
EFFECT_WORDS = {("BG/NBD", "alpha"): "purchase rate", ("BG/NBD", "a"): "drop-out a", ("BG/NBD", "b"): "drop-out b",
                ("Pareto/NBD", "alpha"): "purchase rate", ("Pareto/NBD", "beta"): "drop-out rate"}


def term_words(term: str) -> str:
    """``exposed=1`` -> ``co-creators against others``; ``segment=enthusiast`` -> ``segment enthusiast against the reference``."""
    if term == "exposed=1":
        return "co-creators against others"
    cov, _, level = term.partition("=")
    return f"{cov} {level} against the reference"


def parameter_table(fits: dict) -> pd.DataFrame:
    rows = []
    for label, r in fits.items():
        for name, row in r.params.iterrows():
            rows.append({"model": label, "parameter": name, "estimate": fmt.number(row["estimate"], 4),
                         "95% CI": f"{fmt.number(row['ci_low'], 4)} to {fmt.number(row['ci_high'], 4)}"
                         if estimable(row["estimate"], row["ci_low"], row["ci_high"]) else "not estimable"})
        rows.append({"model": label, "parameter": "log-likelihood", "estimate": fmt.fixed(r.loglik, 1), "95% CI": ""})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ wording
def choice_sentence(chosen: str, reason: dict) -> str:
    """Which model to trust and why, from :func:`~workbench.models.clv.choose_model`'s reason."""
    code = reason.get("code")
    if code == "lower_customer_mse":
        k = abs(reason["difference"]) / reason["difference_se"] if reason.get("difference_se") else float("inf")
        return (f"Trust {chosen}: on the holdout it predicts each customer's purchases best (mean squared error "
                f"{fmt.fixed(reason['best_value'], 3)} against {fmt.fixed(reason['second_value'], 3)} for {reason['second']}, "
                f"a gap of {fmt.fixed(k, 1)} standard errors).")
    if code == "customer_mse_tie_lower_total_error":
        return (f"Trust {chosen}: per customer the models predict the holdout equally well (within two standard errors), and "
                f"{chosen} misses the holdout total by the least ({fmt.signed_percent(reason['chosen_total_error'])} against "
                f"{fmt.signed_percent(reason['other_total_error'])} for the next best).")
    if code == "lower_total_error":
        return f"Trust {chosen}: it misses the holdout total by the least."
    if code == "lower_bin_error":
        return f"Trust {chosen}: its calibration/holdout curve is closest to what customers did."
    return f"{chosen} is the only purchase model that could be fitted, so it is used."


def value_sentence(total, lo, hi, mean, mlo, mhi, customers, horizon, unit, rate, currency, as_of) -> str:
    return (f"As of {fmt.date(as_of)}, the {fmt.count(customers)} customers are worth {fmt.money(total, currency)} together over the next "
            f"{fmt.number(horizon)} {unit}s ({fmt.interval(lo, hi, lambda v: fmt.money(v, currency))}), "
            f"{fmt.money(mean, currency)} each on average ({fmt.interval(mlo, mhi, lambda v: fmt.money(v, currency))}), "
            f"discounting future spend at {fmt.percent(rate, 0)} a year.")


def cocreator_sentence(rate, dropout) -> str:
    """Do co-creators buy more often, and do they stay longer as customers (Pareto/NBD ratios)."""
    rr, rlo, rhi = rate
    dr, dlo, dhi = dropout
    if not (estimable(rr, rlo, rhi) and estimable(dr, dlo, dhi)):
        return "Whether co-creators buy more or stay longer as customers is not estimable on this dataset."
    buy = {"higher": f"buy more often ({fmt.ratio(rr)} times the purchase rate of others, {fmt.interval(rlo, rhi)})",
           "lower": f"buy less often ({fmt.ratio(rr)} times the purchase rate of others, {fmt.interval(rlo, rhi)})",
           "no clear difference": f"do not clearly buy more often (purchase-rate ratio {fmt.with_interval(rr, rlo, rhi)})"}[ratio_direction(rlo, rhi)]
    stay = {
        "lower": f"stay longer as customers (drop-out rate {fmt.ratio(dr)} times that of others, {fmt.interval(dlo, dhi)})",
        "higher": f"leave sooner as customers (drop-out rate {fmt.ratio(dr)} times that of others, {fmt.interval(dlo, dhi)})",
        "no clear difference": f"do not clearly stay longer as customers (drop-out rate ratio {fmt.with_interval(dr, dlo, dhi)})",
    }[ratio_direction(dlo, dhi)]
    return f"Co-creators {buy} and {stay}."


def covariate_sentence(term: str, rate, dropout, reference=None) -> str:
    """How a group of customers buys and drops out against its reference group (Pareto/NBD ratios)."""
    cov, _, level = term.partition("=")
    who = "Co-creators" if term == "exposed=1" else f"Customers with {cov} {level}"
    ref = "other customers" if term == "exposed=1" else (f"customers with {cov} {reference}" if reference is not None else "the reference level")
    text = ratio_phrase(who, "buy", *rate, ref, measure="purchase rate")
    if dropout is not None:
        text += " " + ratio_phrase("Their drop-out", "runs", *dropout, ref, measure="rate")
    return text


def base_sentence(name, w, customers, repeaters, tx, holdout_length, unit) -> str:
    return (f"Dataset {name}: purchases from {fmt.date(w['first_purchase'])} to {fmt.date(w['observation_end'])}. Calibration runs to "
            f"{fmt.date(w['calibration_end'])}, the holdout to {fmt.date(w['holdout_end'])} ({fmt.number(holdout_length)} {unit}s). "
            f"{fmt.count(customers)} customers bought in calibration; {fmt.count(repeaters)} of them "
            f"({fmt.percent(repeaters / customers if customers else float('nan'))}) bought again, making {fmt.plural(tx, 'repeat purchase')}.")


def purchase_sentence(fits: dict, unit: str) -> str:
    parts = []
    if "BG/NBD" in fits:
        bg = fits["BG/NBD"]
        parts.append(f"BG/NBD: an active customer makes {fmt.number(bg.r / bg.alpha)} repeat purchases per {unit} on average, and "
                     f"after each purchase {fmt.percent(bg.a / (bg.a + bg.b))} of customers drop out on average.")
    if "Pareto/NBD" in fits:
        pn = fits["Pareto/NBD"]
        s_, beta = float(pn.params.loc["s", "estimate"]), float(pn.params.loc["beta", "estimate"])
        median_life = beta * (2 ** (1 / s_) - 1)  # P(lifetime > t) = (beta / (beta + t))^s
        parts.append(f"Pareto/NBD: half of new customers are still active {fmt.number(median_life)} {unit}s after their first purchase.")
    if len(fits) > 1:
        best = max(fits, key=lambda k: fits[k].loglik)
        parts.append(f"On the calibration data {best} has the highest log-likelihood; which model to trust is decided on the holdout below.")
    return " ".join(parts)


def spend_sentence(mean_spend, observed_mean, corr, currency) -> str:
    check = ("small, as the model assumes" if abs(corr) < 0.3 else
             "not small: the independence of spend and frequency the model assumes is doubtful, so treat CLV with care")
    return (f"The population mean spend per transaction is {fmt.money(mean_spend, currency)} (repeat customers' observed mean: "
            f"{fmt.money(observed_mean, currency)}); the correlation of frequency and mean spend is {fmt.fixed(corr, 2)}, {check}.")


def holdout_sentence(length, unit, customers, actual, expected: dict) -> str:
    """``expected``: per model, (expected holdout purchases, their error against the actual)."""
    return (f"In the {fmt.number(length)}-{unit} holdout the {fmt.count(customers)} customers made {fmt.count(actual)} repeat purchases; "
            + "; ".join(f"{k} expected {fmt.count(x)} ({fmt.signed_percent(e)})" for k, (x, e) in expected.items()) + ".")


def recency_sentence(f, early, late, horizon, unit) -> str:
    return (f"A customer with {fmt.plural(f, 'repeat purchase')} whose last one came {fmt.number(early.recency)} {unit}s after her "
            f"first is active with probability {fmt.fixed(early.probability_alive, 2)} and is expected to buy "
            f"{fmt.fixed(early.expected_purchases, 2)} times in the next {fmt.number(horizon)} {unit}s; had her last purchase been at "
            f"{fmt.number(late.recency)} {unit}s, these would be {fmt.fixed(late.probability_alive, 2)} and "
            f"{fmt.fixed(late.expected_purchases, 2)}: recent buyers are the ones still active.")


def sbg_sentence(cohorts, customers, period_days, mean_churn, r1, r12, p12, derl, rate) -> str:
    trend = "rises" if r12 > r1 else "falls" if r12 < r1 else "stays"
    return (f"{fmt.plural(cohorts, 'signup cohort')} ({fmt.plural(customers, 'subscriber')}, {fmt.number(period_days)}-day periods): "
            f"a new subscriber cancels in her first period with probability {fmt.percent(mean_churn)}; renewal among survivors "
            f"{trend} from {fmt.percent(r1)} in period 1 to {fmt.percent(r12)} in period 12, as the likeliest cancellers leave first; "
            f"{fmt.percent(p12)} of a cohort is projected to remain after 12 periods. A new subscriber is expected to renew "
            f"{fmt.fixed(derl, 1)} times (discounted at {fmt.percent(rate, 0)} a year).")
