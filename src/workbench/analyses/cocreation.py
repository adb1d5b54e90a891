"""The co-creation and retention report: do users who help shape the product
(submit ideas, see them adopted) stay longer and bring others in?

``CoCreation(dataset, exposure=..., churn=...)`` loads the dataset once; each
method returns a :class:`~workbench.analyses.Section`, fitting what it needs
on first use (cached), and :meth:`CoCreation.answer` states which hazard
ratio answers the question and why the naive one differs. What the dataset
cannot support becomes a note, once, here. The wording functions at the
bottom (:mod:`workbench.analyses.retention_words`) decide every word that
depends on a number.

Every model is fitted exactly on per-user rows up to a size and on
engine-aggregated tables above it (``max_episodes`` for the survival models,
``max_referral_rows`` for the referral rate ratio); each section says which
path ran and why, so memory stays bounded at any number of users.
"""

from __future__ import annotations

import json
from functools import cached_property

import numpy as np
import pandas as pd

from workbench import tables
from workbench.analyses import format as fmt
from workbench.analyses import retention_words as words
from workbench.analyses.common import Notes, check_choice, check_names, check_whole, load
from workbench.analyses.section import Answer, Section
from workbench.analyses.wording import estimable
from workbench.errors import ModelError, ParameterError
from workbench.models.survival.paths import DEFAULT_MAX_EPISODES, choose_path

EXPOSED_WORD = {"feedback": "submitted an idea", "adopted": "had an idea adopted"}
#: the per-user referral GLM (clustered by user, dense period dummies) needs about 9 GB per
#: million rows; above this many rows the rate ratio comes from aggregated cells
DEFAULT_MAX_REFERRAL_ROWS = 250_000
#: numeric attributes enter the aggregated propensity model coarsened to about this many bins
PROPENSITY_BINS = 8
CHURN_RULES = ("cancel", "inactivity", "cancel_or_inactivity")


class CoCreation(Notes):
    """The co-creation and retention analysis of one dataset (see the module docstring)."""

    def __init__(self, dataset, *, exposure: str = "adopted", churn: str = "cancel_or_inactivity", churn_after_days: int = 30,
                 adjust_for=("segment",), landmarks=(30, 90, 180), experiment: str = "cocreation_invite",
                 retention_horizon_days: int = 90, referral_exposure: str = "feedback", bin_days: int = 7,
                 planned_users_per_arm: int = 5000, max_episodes: int | None = DEFAULT_MAX_EPISODES,
                 max_referral_rows: int | None = DEFAULT_MAX_REFERRAL_ROWS):
        self.exposure = check_choice("exposure", exposure, ("feedback", "adopted"))
        self.referral_exposure = check_choice("referral_exposure", referral_exposure, ("feedback", "adopted"))
        self.churn = check_choice("churn", churn, CHURN_RULES)
        self.churn_after_days = check_whole("churn_after_days", churn_after_days, minimum=1)
        self.retention_horizon_days = check_whole("retention_horizon_days", retention_horizon_days, minimum=1)
        self.bin_days = check_whole("bin_days", bin_days, minimum=1)
        self.planned_users_per_arm = check_whole("planned_users_per_arm", planned_users_per_arm, minimum=2)
        self.adjust_for = check_names("adjust_for", adjust_for)
        self.max_episodes = None if max_episodes is None else check_whole("max_episodes", max_episodes)
        self.max_referral_rows = None if max_referral_rows is None else check_whole("max_referral_rows", max_referral_rows)
        try:
            self.landmarks = sorted({float(d) for d in landmarks})
        except (TypeError, ValueError):
            self.landmarks = []
        if not self.landmarks or min(self.landmarks) < 0:
            raise ParameterError(f"landmarks must be a non-empty list of days >= 0, got {landmarks!r}")
        self.experiment = experiment
        self.ds = load(dataset)
        self.notes: dict[str, list[str]] = {}

    # ------------------------------------------------------------ data
    @property
    def rule(self) -> dict:
        return {"churn": self.churn, "churn_after_days": self.churn_after_days}

    @cached_property
    def supports(self) -> dict:
        return self.ds.supports()

    @cached_property
    def events(self) -> dict:
        return self.ds.event_counts()

    @cached_property
    def attributes(self) -> list[str]:
        u = self.ds.users
        return [c for c in u.columns if c not in ("user_id", "signup_at", "referred_by")] if u is not None else []

    @cached_property
    def adjust(self) -> list[str]:
        return [c for c in self.adjust_for if c in self.attributes]

    @cached_property
    def retention_ok(self) -> bool:
        return self.supports["retention"] is None and self.ds.users is not None

    @cached_property
    def cocreation_ok(self) -> bool:
        return self.retention_ok and self.supports["cocreation"] is None and self.events.get(self.exposure, 0) > 0

    @cached_property
    def truth(self) -> dict:
        """The simulator's planted truth, if this dataset has a readable one (else empty)."""
        return read_truth(self.ds.path / "truth.json")

    @cached_property
    def causes(self) -> pd.Series:
        if not self.retention_ok:
            return pd.Series(dtype="int64")
        c = tables.churn_causes(self.ds, **self.rule).to_pandas()
        return c.set_index("churn_cause")["users"]

    # ------------------------------------------------------------ tables and fits
    @cached_property
    def survival_table(self) -> pd.DataFrame | None:
        return tables.survival(self.ds, **self.rule).to_pandas() if self.retention_ok else None

    @cached_property
    def km_by_segment(self):
        from workbench.models import survival

        s = self.survival_table
        if s is None or not len(s):
            return None
        group = "segment" if "segment" in s.columns and s["segment"].nunique() > 1 else None
        return self._fit("curves", lambda: survival.kaplan_meier(s, group=group))

    @cached_property
    def episodes_table(self):
        """The episodes as a lazy engine table (None without co-creation)."""
        return tables.episodes(self.ds, exposure=self.exposure, **self.rule) if self.cocreation_ok else None

    @cached_property
    def n_episodes(self) -> int:
        return int(self.episodes_table.count().execute())

    @property
    def exact(self) -> bool:
        """Whether the survival models are fitted exactly on per-user episodes (at most ``max_episodes``)."""
        return self.episodes_table is not None and (self.max_episodes is None or self.n_episodes <= self.max_episodes)

    def path_reason(self, aggregated: str) -> str:
        """Which path the survival models take here and why, in words."""
        return choose_path(None, self.max_episodes, "CoCreation", aggregated, self.n_episodes)[1]

    @cached_property
    def episodes(self) -> pd.DataFrame | None:
        """The per-user episodes in memory: on the exact path only (None above ``max_episodes``)."""
        return self.episodes_table.to_pandas() if self.exact else None

    @cached_property
    def strata(self) -> list[str]:
        """The categorical adjustment attributes: the strata of the aggregated tables."""
        schema = self.ds.users.schema() if self.ds.users is not None else {}
        return [c for c in self.adjust if c in schema and not schema[c].is_numeric()]

    @cached_property
    def n_users(self) -> int:
        return self.ds.row_counts().get("users", 0)

    @cached_property
    def contrast(self) -> str | None:
        """Why co-creators cannot be compared with others here (None if they can); counted in the engine."""
        e = self.episodes_table
        if e is None:
            return None
        g = e.group_by("exposed").aggregate(rows=e.count(), churned=e.churned.sum()).to_pandas().set_index("exposed")
        rows, churned = g["rows"].to_dict(), g["churned"].to_dict()
        return words.no_contrast_reason(churned.get(1, 0), churned.get(0, 0), rows.get(1, 0) > 0, rows.get(0, 0) > 0)

    @cached_property
    def landmark_data(self) -> pd.DataFrame | None:
        from workbench.models import survival

        if self.episodes_table is None or self.contrast:
            return None
        if not self.exact:
            self._note("landmarks", "Per-user landmark curves are drawn on the exact path only. " + self.path_reason(
                "the landmark comparison is the weighted one below, on aggregated landmark risk sets") + "")
            return None
        return self._fit("landmarks", lambda: survival.landmark_data(self.episodes, landmarks=self.landmarks))

    @cached_property
    def landmark_curves(self) -> dict:
        from workbench.models import survival

        lm, out = self.landmark_data, {}
        if lm is None:
            return out
        for d in sorted(lm["landmark"].unique()):
            sub = lm[lm["landmark"] == d]
            if sub["exposed"].nunique() < 2:
                who = "nobody" if sub["exposed"].max() == 0 else "everybody"
                self._note("landmarks", f"At day {d:g} {who} still active had co-created; no comparison there.")
                continue
            out[d] = survival.kaplan_meier(sub, group="exposed", time_origin=f"day {d:g}")
        return out

    @cached_property
    def cox(self) -> dict:
        from workbench.models import survival

        out = {}
        if self.episodes_table is None:
            return out
        if self.contrast:
            self._note("cox", self.contrast)
            return out
        ep = self.episodes if self.exact else self.episodes_table
        adjust = self.adjust if self.exact else self.strata
        dropped = [c for c in self.adjust if c not in adjust]
        if dropped:
            self._note("cox", f"The aggregated models group users by categorical attributes only; {fmt.listing(dropped)} "
                              "(numeric) is not adjusted for on this path.")
        kw = {"max_episodes": self.max_episodes, "n_episodes": self.n_episodes}
        naive_rs = None if self.exact else tables.risk_sets(self.ds, exposure=self.exposure, bin_days=self.bin_days, naive_ever=True,
                                                            strata=(), **self.rule)
        rs = None if self.exact else tables.risk_sets(self.ds, exposure=self.exposure, bin_days=self.bin_days,
                                                      strata=tuple(self.strata), **self.rule).to_pandas()
        fits = {"naive_ever": lambda: survival.fit_naive_ever(ep, naive_rs, **kw),
                "time_varying": lambda: survival.fit_time_varying(ep, rs, **kw)}
        if adjust:
            fits["adjusted"] = lambda: survival.fit_time_varying(ep, rs, adjust_for=adjust, **kw)
        for key, fn in fits.items():
            r = self._fit("cox", fn, prefix=f"{key.replace('_', ' ')} model: ")
            if r is not None and estimable(*r.hazard_ratio()):
                out[key] = r
            elif r is not None:
                self._note("cox", f"{key.replace('_', ' ')} model: the hazard ratio is not estimable on this data (its interval is undefined).")
        if out:
            self._note("cox", (out.get("time_varying") or next(iter(out.values()))).path_reason)
        return out

    @property
    def main_cox(self):
        return self.cox.get("adjusted") or self.cox.get("time_varying")

    @cached_property
    def ph_check(self):
        from workbench.models import survival

        main = self.main_cox
        return self._fit("ph", lambda: survival.proportional_hazards_check(main)) if main is not None else None

    @cached_property
    def risk_sets(self) -> pd.DataFrame | None:
        if self.episodes_table is None or self.contrast:
            return None
        self.discrete_strata = list(self.strata)
        return tables.risk_sets(self.ds, exposure=self.exposure, bin_days=self.bin_days, strata=tuple(self.strata),
                                **self.rule).to_pandas()

    @cached_property
    def discrete(self):
        from workbench.models import survival

        rs = self.risk_sets
        if rs is None:
            return None
        r = self._fit("discrete", lambda: survival.discrete_time_hazard(rs, adjust_for=self.discrete_strata))
        return r if r is not None and estimable(*r.hazard_ratio()) else None

    @cached_property
    def ipw(self):
        from workbench.models import causal

        if self.episodes_table is None or self.contrast:
            return None
        if not self.exact:
            return self.ipw_aggregated
        lm = self.landmark_data
        if lm is None:
            return None
        numeric = [c for c in self.attributes if c in lm.columns and pd.api.types.is_numeric_dtype(lm[c]) and c not in self.adjust]
        covariates = self.adjust + numeric
        usable = [d for d in self.landmarks if d in self.landmark_curves]
        if not covariates:
            self._note("ipw", "No user attributes to model the propensity of co-creating; the weighted landmark analysis is skipped.")
            return None
        if not usable:
            self._note("ipw", "No landmark has both co-creators and others; the weighted landmark analysis is skipped.")
            return None
        data = lm[lm["landmark"].isin(usable)]
        missing = data[covariates].isna().any(axis=1)
        if missing.any():
            self._note("ipw", f"{fmt.plural(int(missing.sum()), 'landmark row')} with a missing {fmt.listing(covariates)} "
                              "value are left out of the propensity model.")
            data = data[~missing]
        self.ipw_covariates = covariates
        r = self._fit("ipw", lambda: causal.landmark_ipw(data, covariates=covariates))
        if r is not None:
            self._note("ipw", self.path_reason("weighted piecewise-exponential models on aggregated landmark risk sets"))
        return r if r is not None and estimable(*r.hazard_ratio("weighted")) else None

    @cached_property
    def ipw_aggregated(self):
        """Landmark IPW on aggregated landmark risk sets: categorical adjustment attributes as they are, numeric
        attributes without missing values coarsened to about PROPENSITY_BINS bins (computed in the engine)."""
        from workbench.models import causal

        u = self.ds.users
        schema = u.schema()
        numeric = [c for c in self.attributes if schema[c].is_numeric() and c not in self.adjust]
        coarsen, skipped = {}, []
        if numeric:
            stats = u.aggregate(**{f"{c}__{k}": getattr(u[c], k)() for c in numeric for k in ("min", "max")},
                                **{f"{c}__null": u[c].isnull().sum() for c in numeric}).to_pandas().iloc[0]
            for c in numeric:
                lo, hi = float(stats[f"{c}__min"]), float(stats[f"{c}__max"])
                if stats[f"{c}__null"] > 0 or not np.isfinite([lo, hi]).all():
                    skipped.append(c)
                elif hi > lo:
                    coarsen[c] = nice_width((hi - lo) / PROPENSITY_BINS)
        covariates = [c for c in self.strata] + [c for c in numeric if c not in skipped]
        if skipped:
            self._note("ipw", f"{fmt.listing(skipped)} has missing values and is left out of the aggregated propensity model.")
        if not covariates:
            self._note("ipw", "No user attributes to model the propensity of co-creating; the weighted landmark analysis is skipped.")
            return None
        if coarsen:
            self._note("ipw", "Numeric attributes enter the aggregated propensity model in bins: "
                       + "; ".join(f"{c} in bins of {fmt.number(w)}" for c, w in coarsen.items()) + ".")
        self.ipw_covariates = covariates
        kw = {"landmarks": tuple(self.landmarks), "exposure": self.exposure, "bin_days": self.bin_days, "covariates": tuple(covariates),
              "coarsen": coarsen or None, **self.rule}
        r = self._fit("ipw", lambda: causal.fit_landmark_ipw(self.episodes_table, tables.landmark_risk_sets(self.ds, **kw),
                                                              tables.landmark_users(self.ds, **kw), landmarks=self.landmarks,
                                                              covariates=covariates, bin_days=self.bin_days,
                                                              max_episodes=self.max_episodes, n_episodes=self.n_episodes))
        if r is not None:
            self._note("ipw", r.path_reason)
        return r if r is not None and estimable(*r.hazard_ratio("weighted")) else None

    @cached_property
    def comparison(self):
        from workbench.models import causal

        if not self.cox:
            return None
        return causal.compare_hazard_ratios(naive_ever=self.cox.get("naive_ever"), time_varying=self.cox.get("time_varying"),
                                            adjusted=self.cox.get("adjusted"), discrete_time=self.discrete,
                                            landmark=self.ipw, weighted=self.ipw)

    @cached_property
    def dose(self):
        from workbench.models import survival

        if not (self.retention_ok and self.supports["cocreation"] is None and self.events.get("adopted", 0) > 0):
            self._note("dose", "No adopted ideas in this dataset: no dose-response.")
            return None
        table = self.episodes_table if self.exposure == "adopted" else tables.episodes(self.ds, exposure="adopted", **self.rule)
        n = self.n_episodes if self.exposure == "adopted" else int(table.count().execute())
        exact = self.max_episodes is None or n <= self.max_episodes
        if exact:
            ep = self.episodes if self.exposure == "adopted" and self.episodes is not None else table.to_pandas()
            fit = lambda: survival.fit_dose_response(ep, None, adjust_for=self.adjust, max_episodes=self.max_episodes,  # noqa: E731
                                                     n_episodes=n)
        else:
            drs = tables.dose_risk_sets(self.ds, exposure="adopted", bin_days=self.bin_days, strata=tuple(self.strata), **self.rule)
            fit = lambda: survival.fit_dose_response(table, drs, adjust_for=self.strata,  # noqa: E731
                                                     max_episodes=self.max_episodes, n_episodes=n)
        r = self._fit("dose", fit)
        if r is not None:
            self._note("dose", r.path_reason)
        return r

    @cached_property
    def referrals(self):
        from workbench.models import referrals

        if self.supports["referrals"] is not None or not self.retention_ok or not self.events.get(self.referral_exposure, 0):
            why = self.supports["referrals"] or f"no `{self.referral_exposure}` events"
            self._note("referrals", f"No referral analysis on this dataset: {why}.")
            return None
        kw = {"exposure": self.referral_exposure, "period_days": 28, **self.rule}
        rows = tables.referrals(self.ds, **kw)
        n = int(rows.count().execute())
        if self.max_referral_rows is None or n <= self.max_referral_rows:
            limit = "no limit set" if self.max_referral_rows is None else f"at most {self.max_referral_rows:,} are fitted per user"
            why = f"Per-user Poisson model on {n:,} user-period rows ({limit}), standard errors clustered by user."
            fit = lambda: referrals.referral_rate_ratio(rows.to_pandas(), adjust_for=self.adjust, period="period")  # noqa: E731
        else:
            why = (f"{n:,} user-period rows exceed the per-user limit of {self.max_referral_rows:,} (max_referral_rows): the Poisson "
                   "model on counts per (period, state" + (", " + fmt.listing(self.strata) if self.strata else "") + "), with the "
                   "user-clustered sandwich from one engine pass over the rows; same estimate, memory independent of the users.")
            dropped = [c for c in self.adjust if c not in self.strata]
            if dropped:
                why += f" Numeric {fmt.listing(dropped)} is not adjusted for on this path."
            cells = tables.referral_counts(self.ds, strata=tuple(self.strata), **kw)
            fit = lambda: referrals.referral_rate_ratio_cells(cells, rows, adjust_for=self.strata, period="period")  # noqa: E731
        r = self._fit("referrals", fit)
        if r is not None:
            self._note("referrals", why)
        return r if r is not None and estimable(*r.rate_ratio()) else None

    @cached_property
    def outcomes(self) -> pd.DataFrame | None:
        from workbench.models import experiments

        if self.supports["experiments"] is not None:
            self._note("experiment", f"No experiment analysis: {self.supports['experiments']}.")
            return None
        available = sorted(self.ds.assignments.select("experiment").distinct().to_pandas()["experiment"].astype(str))
        try:
            experiments.check_experiment(self.experiment, available)
            return tables.experiment_outcomes(self.ds, self.experiment, horizon_days=self.retention_horizon_days, **self.rule).to_pandas()
        except (ParameterError, ModelError) as exc:
            self._note("experiment", str(exc))
            return None

    @cached_property
    def trial(self) -> dict:
        """The invitation experiment's results: srm, itt, cace, cuped (those that could be estimated)."""
        from workbench.models import experiments

        o, out = self.outcomes, {}
        if o is None:
            return out
        out["srm"] = self._fit("experiment", lambda: experiments.sample_ratio_mismatch(o))
        out["itt"] = self._fit("experiment", lambda: experiments.itt_retention(o))
        if out["itt"] is None:
            return {}
        out["cace"] = self._fit("experiment", lambda: experiments.cace(o))
        numeric = ["pre_activity"] + [c for c in self.attributes if c in o.columns and pd.api.types.is_numeric_dtype(o[c])
                                      and o[c].notna().all()]
        out["cuped"] = self._fit("experiment", lambda: experiments.cuped(o, covariates=numeric), prefix="CUPED: ")
        return {k: v for k, v in out.items() if v is not None}

    @cached_property
    def power(self):
        from workbench.models import experiments, survival

        itt = self.trial.get("itt")
        if itt is not None:
            baseline = float(itt.rates["rate"].iloc[0])
        elif self.survival_table is not None and len(self.survival_table):
            km = survival.kaplan_meier(self.survival_table)
            baseline = float(km.survival_at(self.retention_horizon_days)["survival"].iloc[0])
        else:
            baseline = None
        if baseline is None or not 0 < baseline < 1:
            self._note("power", "No retention baseline for a power calculation.")
            return None
        self.baseline = baseline
        return self._fit("power", lambda: experiments.power_mde(n_per_arm=self.planned_users_per_arm, baseline_rate=baseline))

    # ------------------------------------------------------------ the answer
    def answer(self) -> Answer:
        sentences, metrics = [], {}
        best = self.best_estimate
        if best is not None:
            name, (hr, lo, hi) = best
            sentences.append(words.headline(hr, lo, hi, EXPOSED_WORD[self.exposure]))
            main = self.main_cox
            sentences.append(words.which_estimate(name, self.adjust if name == "adjusted" and self.exact else self.strata,
                                                  getattr(main, "n_users", None) or self.n_users if main is not None else None,
                                                  aggregated=main is not None and main.path == "aggregated"))
            if main is not None and main.path == "aggregated":
                sentences.append(main.path_reason)
            naive = self.cox.get("naive_ever")
            if naive is not None:
                sentences.append(words.naive_contrast(naive.hazard_ratio()[0], hr))
            metrics.update({"retention.hr.best": hr, "retention.hr.best_ci_low": lo, "retention.hr.best_ci_high": hi})
        elif not self.retention_ok:
            sentences.append(f"This dataset cannot answer the question: {self.supports['retention'] or 'it has no users table'}.")
        else:
            why = self.contrast or self.supports.get("cocreation") or f"no `{self.exposure}` events"
            sentences.append(f"This dataset cannot tell whether co-creation keeps users: {why}.")
        itt = self.trial.get("itt")
        if itt is not None:
            sentences.append(words.experiment_headline(itt.difference, itt.ci_low, itt.ci_high, self.retention_horizon_days,
                                                       self.trial["srm"].mismatch if "srm" in self.trial else False))
            metrics.update({"experiment.itt": itt.difference})
        ref = self.referrals
        if ref is not None:
            rr, lo, hi = ref.rate_ratio()
            sentences.append(words.referral_headline(rr, lo, hi))
            metrics["referrals.rate_ratio"] = rr
        return Answer("Does co-creation keep users, and do co-creators bring others in?", sentences, metrics)

    @property
    def best_estimate(self) -> tuple[str, tuple[float, float, float]] | None:
        """The estimate that answers the question: the adjusted time-varying
        Cox model, else the unadjusted one, else the aggregated discrete-time model."""
        if "adjusted" in self.cox:
            return "adjusted", self.cox["adjusted"].hazard_ratio()
        if "time_varying" in self.cox:
            return "time_varying", self.cox["time_varying"].hazard_ratio()
        if self.discrete is not None:
            return "discrete_time", self.discrete.hazard_ratio()
        return None

    # ------------------------------------------------------------ sections
    def data(self) -> Section:
        s = Section("The data and the churn rule")
        if not self.retention_ok:
            return s.note(f"No retention analysis: {self.supports['retention'] or 'no users table'}.")
        counts = self.ds.row_counts()
        s.finding(words.data_sentence(self.ds.name, counts.get("users", 0), self.events, self.churn, self.churn_after_days,
                                      int(self.causes.get("cancel", 0)), int(self.causes.get("inactivity", 0)),
                                      EXPOSED_WORD[self.exposure], self.exposure, self.adjust))
        s.record({"retention.dataset": self.ds.name, "retention.churn_rule": self.churn,
                  "retention.churned_cancel": int(self.causes.get("cancel", 0)),
                  "retention.churned_inactivity": int(self.causes.get("inactivity", 0))})
        missing = [c for c in self.adjust_for if c not in self.attributes]
        if missing:
            s.note(f"adjust_for names column(s) this dataset does not have: {fmt.listing(missing)}; they are skipped. "
                   f"User attributes here: {fmt.listing(self.attributes) or 'none'}.")
        if self.churn == "cancel":
            both = tables.churn_causes(self.ds, churn="cancel_or_inactivity", churn_after_days=self.churn_after_days).to_pandas()
            silent = int(both.loc[both["churn_cause"] == "inactivity", "users"].sum())
            if silent:
                s.note(f"Under the cancel rule, {fmt.plural(silent, 'user')} silent for more than {self.churn_after_days} days "
                       "before the observation end count as retained; the rule cancel_or_inactivity counts them as churned.")
        if not self.cocreation_ok:
            why = self.supports["cocreation"] or f"no `{self.exposure}` events"
            s.note(f"No co-creation analysis on this dataset ({why}): retention curves only. Use a dataset with feedback "
                   "or adopted events (e.g. the simulated sample) to compare co-creators with others.")
        return s

    def retention_curves(self) -> Section:
        from workbench.plots import survival as plots

        s = Section("Retention curves")
        km, surv = self.km_by_segment, self.survival_table
        for n in self.notes.get("curves", []):
            s.note(n)
        if km is None:
            return s
        s.figure(plots.plot_survival_curves(km, title="Retention by segment" if km.group else "Retention"))
        s.record({"retention.users": len(surv), "retention.churned_share": float(surv["churned"].mean())})
        s.finding(words.curves_sentence(km, surv))
        s.results["kaplan_meier"] = km
        return s

    def landmarks_section(self) -> Section:
        from workbench.plots import survival as plots

        s = Section("Co-creators versus others at landmarks")
        _ = self.landmark_curves
        for n in self.notes.get("landmarks", []):
            s.note(n)
        if not self.landmark_curves:
            return s
        s.figure(plots.plot_landmark_curves(self.landmark_curves))
        s.finding(words.landmark_sentence(self.landmark_curves, self.landmark_data, self.retention_horizon_days))
        return s

    def cox_section(self) -> Section:
        from workbench.models import survival
        from workbench.plots import survival as plots

        s = Section("Cox model")
        _ = self.cox
        for n in self.notes.get("cox", []):
            s.note(n)
        if not self.cox:
            return s
        if "naive_ever" in self.cox and self.episodes is not None:
            naive_km = survival.kaplan_meier(survival.ever_exposed_table(self.episodes), group="ever_exposed")
            s.figure(plots.plot_survival_curves(naive_km, labels={"0": "never co-created", "1": "ever co-created"},
                                                title="The naive picture: ever co-created against never (biased by immortal time)"))
        s.table(cox_table(self.cox, self.n_users), "Hazard ratio of co-creation, by model")
        main = self.main_cox
        if main is not None:
            hr, lo, hi = main.hazard_ratio()
            s.finding(words.cox_finding(hr, lo, hi, list(main.adjusted_for) if "adjusted" in self.cox else [],
                                        self.cox["naive_ever"].hazard_ratio()[0] if "naive_ever" in self.cox else None))
            s.record({"retention.path": main.path})  # "exact" or "aggregated", so a run's metrics say which ran
        for key, r in self.cox.items():
            s.results[key] = r
            s.record(r.to_metrics(f"cox.{key}"))
        return s

    def ph_section(self) -> Section:
        from workbench.plots import survival as plots

        s = Section("Proportional-hazards check")
        ph = self.ph_check
        for n in self.notes.get("ph", []):
            s.note(n)
        if ph is None:
            return s
        s.figure(plots.plot_ph_check(ph, bin_days=self.bin_days))
        p = float(ph.tests.loc[self.main_cox.exposure, "p_value"])
        rho = float(ph.tests.loc[self.main_cox.exposure, "rho"])
        s.finding(words.ph_finding(p, rho, method=ph.method))
        s.record({"retention.ph_p_value": p})
        s.results["ph_check"] = ph
        return s

    def discrete_section(self) -> Section:
        from workbench.plots import survival as plots

        s = Section("The aggregated path")
        d = self.discrete
        for n in self.notes.get("discrete", []):
            s.note(n)
        if d is None:
            return s
        s.figure(plots.plot_discrete_hazard(d, bin_days=self.bin_days))
        ref = self.cox.get("adjusted") if self.discrete_strata else self.cox.get("time_varying")
        diff = (d.hazard_ratio()[0] / ref.hazard_ratio()[0] - 1) if ref is not None else None
        s.finding(words.discrete_finding(d.hazard_ratio(), len(self.risk_sets), self.bin_days, diff,
                                         getattr(ref, "n_rows", None), aggregated_ref=ref is not None and ref.path == "aggregated"))
        if diff is not None:
            s.record({"retention.discrete_vs_cox_pct": 100 * diff})
        s.record(d.to_metrics())
        s.results["discrete_time"] = d
        return s

    def ipw_section(self) -> Section:
        from workbench.plots import survival as plots

        s = Section("Landmark analysis with inverse probability weighting")
        r = self.ipw
        for n in self.notes.get("ipw", []):
            s.note(n)
        if r is None:
            return s
        s.figure(plots.plot_overlap(r))
        s.figure(plots.plot_weighted_curves(r))
        s.table(balance_table(r.balance), "Balance of the attributes before and after weighting")
        hw, lw, uw = r.hazard_ratio("weighted")
        s.finding(words.ipw_finding(self.ipw_covariates, float(r.balance["smd_weighted"].abs().max()), hw, lw, uw,
                                    r.hazard_ratio("unweighted")[0], r.evalue.sentence(), r.evalue.rare_outcome))
        s.record({"retention.evalue": r.evalue.e_value, "retention.evalue_ci": r.evalue.e_value_ci})
        s.results["landmark_ipw"] = r
        return s

    def comparison_section(self) -> Section:
        from workbench.plots import survival as plots

        s = Section("Naive versus right")
        c = self.comparison
        if c is None:
            return s.note("No hazard ratios to compare: " + (self.contrast or "the co-creation models could not be fitted on this dataset") + ".")
        planted = planted_value(self.truth, "churn", "hazard_ratio_adopted") if self.exposure == "adopted" else None
        s.figure(plots.plot_hazard_ratios(c, truth=planted))
        t = c.table
        names = {k: v if self.exact else v.replace("Cox", "piecewise-exponential") for k, v in words.ESTIMATE_NAMES.items()}
        s.table(fmt.display_table(t.rename(index=names), {
            "hazard_ratio": ("hazard ratio", "ratio"), "ci_low": ("95% CI low", "ratio"), "ci_high": ("95% CI high", "ratio"),
            "what it answers": ("what it answers", "text")}, index="estimate"))
        best = "adjusted" if "adjusted" in t.index else "time_varying"
        if "naive_ever" in t.index and best in t.index:
            s.finding(words.comparison_finding(t.loc["naive_ever", "hazard_ratio"], t.loc[best, "hazard_ratio"], t.loc[best, "ci_low"],
                                               t.loc[best, "ci_high"], self.adjust if best == "adjusted" else [], planted))
        s.record(c.to_metrics("retention.hr"))
        s.results["comparison"] = c
        return s

    def dose_section(self) -> Section:
        from workbench.plots import survival as plots

        s = Section("Dose-response")
        d = self.dose
        for n in self.notes.get("dose", []):
            s.note(n)
        if d is None:
            return s
        s.figure(plots.plot_dose_response(d))
        lv = d.levels
        s.table(fmt.display_table(lv.rename(index=words.dose_label), {"hazard_ratio": ("hazard ratio", "ratio"),
                                                                      "hr_ci_low": ("95% CI low", "ratio"), "hr_ci_high": ("95% CI high", "ratio")},
                                  index="adopted ideas so far (against none)"))
        s.finding(words.dose_finding([words.dose_label(k) for k in lv.index], lv["hazard_ratio"].tolist(), lv["hr_ci_low"].tolist(),
                                     lv["hr_ci_high"].tolist(), float(d.trend["hazard_ratio"]), float(d.trend["hr_ci_low"]),
                                     float(d.trend["hr_ci_high"])))
        s.record(d.to_metrics("retention.dose"))
        s.results["dose_response"] = d
        return s

    def referrals_section(self) -> Section:
        from workbench.plots import experiments as plots

        s = Section("Referrals")
        r = self.referrals
        for n in self.notes.get("referrals", []):
            s.note(n)
        if r is None:
            return s
        planted = planted_value(self.truth, "referrals", "rate_ratio_cocreator") if self.referral_exposure == "feedback" else None
        s.figure(plots.plot_referral_rates(r, truth=planted))
        rr, lo, hi = r.rate_ratio()
        crude = r.rates["per_1000_days"]
        s.finding(words.referral_finding(rr, lo, hi, self.referral_exposure, crude.get("co-creator", np.nan),
                                         crude.get("not (yet) co-creator", np.nan)))
        s.record(r.to_metrics("referrals"))
        s.results["referrals"] = r
        return s

    def experiment_section(self) -> Section:
        from workbench.plots import experiments as plots

        s = Section("Randomized invitation experiment")
        _ = self.trial
        for n in self.notes.get("experiment", []):
            s.note(n)
        t = self.trial
        if "itt" not in t:
            return s
        itt, cace, cuped = t["itt"], t.get("cace"), t.get("cuped")
        planted = self.truth.get("experiment", {}) if isinstance(self.truth.get("experiment"), dict) else {}
        sample = planted.get("population") if planted.get("name") == self.experiment and isinstance(planted.get("population"), dict) else None
        truth = None
        if sample and all(isinstance(sample.get(k), (int, float)) for k in ("itt_retention", "cace_retention")):
            truth = {"itt": sample["itt_retention"], "cace": sample["cace_retention"]}
        s.figure(plots.plot_experiment(itt, cace=cace, cuped=cuped, truth=truth))
        s.table(arms_table(itt), "Retention by arm")
        srm = t.get("srm")
        s.finding(words.experiment_finding(
            srm.mismatch if srm is not None else False, srm.p_value if srm is not None else float("nan"),
            self.retention_horizon_days, itt.treatment_arm, float(itt.rates["rate"].iloc[1]), float(itt.rates["rate"].iloc[0]),
            itt.difference, itt.ci_low, itt.ci_high, itt.p_value, int(itt.rates["users"].sum()), itt.excluded_unobserved,
            (float(cace.took_part.iloc[0]), float(cace.took_part.iloc[1]), cace.estimate, cace.ci_low, cace.ci_high) if cace is not None else None,
            (list(cuped.covariates), 1 - cuped.std_err / itt.std_err, cuped.estimate, cuped.ci_low, cuped.ci_high) if cuped is not None else None,
            truth))
        for r in (srm, itt, cace, cuped):
            if r is not None:
                s.record(r.to_metrics("experiment"))
        s.results.update(t)
        return s

    def power_section(self) -> Section:
        from workbench.plots import experiments as plots

        s = Section("Power of a planned invitation experiment")
        p = self.power
        for n in self.notes.get("power", []):
            s.note(n)
        if p is None:
            return s
        itt = self.trial.get("itt")
        s.figure(plots.plot_power(p, observed=itt.difference if itt is not None else None))
        s.finding(words.power_finding(self.planned_users_per_arm, self.baseline, p.mde, p.mde_relative,
                                      itt.difference if itt is not None else None))
        s.record(p.to_metrics("experiment"))
        s.results["power"] = p
        return s


# ------------------------------------------------------------------ helpers
def read_truth(path) -> dict:
    """The planted truth the simulator wrote, or {} for a missing, unreadable
    or foreign ``truth.json`` (a dataset's own file is never trusted blindly)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def planted_value(truth: dict, *keys) -> float | None:
    """A number at ``truth[k1][k2]...``, or None if the path or number is missing."""
    node = truth
    for k in keys:
        if not isinstance(node, dict) or k not in node:
            return None
        node = node[k]
    return float(node) if isinstance(node, (int, float)) and not isinstance(node, bool) and np.isfinite(node) else None


def cox_table(cox: dict, n_users: int | None = None) -> pd.DataFrame:
    """The hazard ratios by model, with the path each took (exact Cox or
    aggregated piecewise-exponential; ``n_users`` for the aggregated rows)."""
    rows = []
    for key, r in cox.items():
        hr, lo, hi = r.hazard_ratio()
        row = r.summary().loc[r.exposure]
        exact = r.path == "exact"
        name = words.ESTIMATE_NAMES.get(key, key)
        rows.append({"model": name if exact else name.replace("Cox", "piecewise-exponential"),
                     "fitted on": f"{fmt.count(r.n_rows)} episodes (exact Cox, {r.ties} ties)" if exact else
                     f"{fmt.count(r.n_cells)} aggregated cells",
                     "hazard ratio": fmt.ratio(hr), "95% CI": f"{fmt.ratio(lo)} to {fmt.ratio(hi)}", "p-value": fmt.p_value(row["p_value"]),
                     "users": fmt.count(r.n_users if exact else n_users), "churns": fmt.count(r.n_events)})
    return pd.DataFrame(rows)


def nice_width(raw: float) -> float:
    """A round bin width (1, 2 or 5 times a power of ten) at least ``raw``."""
    if not raw > 0:
        return 1.0
    power = 10.0 ** np.floor(np.log10(raw))
    return float(next(m * power for m in (1, 2, 5, 10) if m * power >= raw))


def balance_table(balance: pd.DataFrame) -> pd.DataFrame:
    cols = {c: ("standardized difference before weighting" if c == "smd_unweighted" else
                "after weighting" if c == "smd_weighted" else c, lambda v: fmt.fixed(v, 3))
            for c in ("smd_unweighted", "smd_weighted") if c in balance.columns}
    return fmt.display_table(balance, cols, index="attribute")


def arms_table(itt) -> pd.DataFrame:
    r = itt.rates
    return pd.DataFrame({"arm": [str(a) for a in r.index], "users observed": [fmt.count(v) for v in r["users"]],
                         "retained": [fmt.percent(v) for v in r["rate"]]})
