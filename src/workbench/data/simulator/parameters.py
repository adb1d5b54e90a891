"""Every planted parameter of the simulated world (:class:`Planted`), with
its default and its checks, and the names the world uses for its categories.

Pass any parameter to ``simulate()`` as a keyword or to the CLI as
``--set NAME=VALUE``; :func:`planted_parameters` and
:func:`parse_assignments` turn those into a checked :class:`Planted`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import numbers
from dataclasses import dataclass

import numpy as np

from workbench.errors import ParameterError

SEGMENTS = ("mainstream", "enthusiast")  # code 0, 1
CHANNELS = ("organic", "ads", "referral")  # code 0, 1, 2
#: the randomized co-creation invitation (every user, at signup)
INVITE = "cocreation_invite"
INVITE_ARMS = ("control", "invited")  # code 0, 1
#: the onboarding experiment (users signing up in its window)
ONBOARDING = "onboarding"
ONBOARDING_ARMS = ("control", "guided", "checklist")  # code 0, 1, 2
#: the A/A test (users signing up in its window): two identical arms
AA_TEST = "aa_test"
AA_ARMS = ("control", "treatment")  # code 0, 1
#: alphabetical, so sorting by code sorts by the event_type string
EVENT_TYPES = ("active", "adopted", "cancel", "feedback", "purchase")
ACTIVE, ADOPTED, CANCEL, FEEDBACK, PURCHASE = range(5)


@dataclass(frozen=True)
class Planted:
    """Every planted parameter of the simulated world, with its default.

    Rates and hazards are per day unless the name says otherwise; docs/simulator.md
    describes what each one does.
    """

    # calendar
    start: str = "2024-01-01"  # first possible signup (midnight UTC)
    horizon_weeks: int = 104  # signups spread over, and observation ends after, this many weeks
    # Bass diffusion of signups, per week; m is the number of users
    bass_p: float = 0.01
    bass_q: float = 0.3
    # segments and user attributes
    enthusiast_share: float = 0.25
    ads_share: float = 0.4  # share of non-referred users who came through ads (the rest: organic)
    prior_activity_mean_enthusiast: float = 12.0  # pre-signup activity (negative binomial count)
    prior_activity_mean_mainstream: float = 4.0
    prior_activity_shape: float = 2.0  # its gamma-mixing shape (smaller = more dispersed)
    age_mean_enthusiast: float = 31.0  # age in years: 16 + a gamma draw with this mean, whole years
    age_mean_mainstream: float = 37.0
    age_missing_share: float = 0.04  # share of users whose age is missing
    country_missing_share: float = 0.03  # share of users whose country is missing
    # activity: `active` events as a renewal process while alive; gamma gaps with this mean rate per day
    activity_rate_enthusiast: float = 0.105
    activity_rate_mainstream: float = 0.075
    activity_gap_shape: float = 3.0  # gamma shape of the gaps (1 = Poisson; larger = more regular)
    # churn: constant daily hazard per segment, times hazard_ratio_adopted after the first adoption
    churn_hazard_mainstream: float = 0.006
    churn_segment_hazard_ratio: float = 0.5  # enthusiast / mainstream
    churn_hazard_ratio_adopted: float = 0.6
    churn_cancel_share: float = 0.6  # share of churners who leave a cancel event (the rest go silent)
    # co-creation: who participates (by arm), how often participants submit ideas, adoption
    participation_control_enthusiast: float = 0.5
    participation_control_mainstream: float = 0.1
    participation_invited_enthusiast: float = 0.85
    participation_invited_mainstream: float = 0.5
    feedback_rate_enthusiast: float = 0.08  # ideas per day alive, for participants
    feedback_rate_mainstream: float = 0.04
    adoption_probability: float = 0.35  # each idea is adopted with this probability ...
    adoption_delay_mean_days: float = 10.0  # ... after a gamma-distributed delay
    adoption_delay_shape: float = 2.0
    # conversion to customer: constant daily hazard from signup while alive
    conversion_hazard_enthusiast: float = 0.006
    conversion_hazard_mainstream: float = 0.002
    conversion_horizon_days: int = 90  # the horizon of the recorded conversion shares
    # repeat purchases: BG/NBD in weeks from the first purchase (baseline = mainstream), Gamma-Gamma spend
    bgnbd_r: float = 0.25
    bgnbd_alpha: float = 4.0
    bgnbd_a: float = 0.8
    bgnbd_b: float = 2.5
    bgnbd_rate_ratio_enthusiast: float = 1.5  # enthusiasts' alpha is bgnbd_alpha / this
    bgnbd_b_ratio_enthusiast: float = 2.0  # enthusiasts' b is bgnbd_b * this
    gg_p: float = 6.0
    gg_q: float = 4.0
    gg_gamma: float = 15.0
    # referrals
    referrals_rate_ratio_cocreator: float = 2.0
    referrals_tracked_share: float = 0.2  # share of Bass imitation signups recorded as referrals
    # the randomized co-creation invitation
    experiment_invited_share: float = 0.5
    experiment_horizon_days: int = 90
    experiment_population_draws: int = 400_000  # Monte Carlo draws behind every population truth
    # the onboarding experiment: three arms, assigned at signup in a window of weeks
    onboarding_start_week: int = 8
    onboarding_weeks: int = 4
    onboarding_share_guided: float = 1 / 3
    onboarding_share_checklist: float = 1 / 3
    onboarding_conversion_hr_guided: float = 1.3  # first-purchase hazard ratio against control
    onboarding_conversion_hr_checklist: float = 1.0
    onboarding_churn_hr_guided: float = 0.85  # churn hazard ratio against control
    onboarding_churn_hr_checklist: float = 1.0
    onboarding_spend_ratio_guided: float = 1.0  # purchase amounts multiplied by this
    onboarding_spend_ratio_checklist: float = 1.1
    onboarding_horizon_days: int = 30  # the horizon of the recorded effects
    # the A/A test: two identical arms, assigned at signup in a window of weeks
    aa_test_start_week: int = 4
    aa_test_weeks: int = 4
    aa_test_treatment_share: float = 0.5
    aa_test_horizon_days: int = 30
    # the market KPI panel (revenue scaling law)
    kpis_units: int = 5
    kpis_periods: int = 36
    kpis_start: str = "2023-01-01"
    scaling_beta: float = 1.3
    scaling_c: float = 0.05
    scaling_noise_sd: float = 0.1  # stationary sd of the log-revenue noise
    scaling_ar1_rho: float = 0.5  # AR(1) coefficient of that noise over months
    currency: str = "USD"

    # ------------------------------------------------------------------ checks
    def __post_init__(self):
        def bad(name, need):
            return ParameterError(
                f"simulate: {name}={getattr(self, name)!r} is invalid: it must be {need}. "
                f"Pass a valid value (default {getattr(_DEFAULTS, name, '?')!r})."
            )

        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.type == "str":
                if not isinstance(v, str):
                    raise bad(f.name, "a string")
                continue
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not np.isfinite(v):
                raise bad(f.name, "a finite number")
            if f.type == "int" and v != int(v):
                raise bad(f.name, "a whole number")
        for name in ("start", "kpis_start"):
            try:
                dt.date.fromisoformat(getattr(self, name))
            except ValueError:
                raise bad(name, "an ISO date like 2024-01-01") from None
        shares = [
            "enthusiast_share", "ads_share", "adoption_probability", "experiment_invited_share",
            "referrals_tracked_share", "scaling_ar1_rho", "churn_cancel_share", "age_missing_share",
            "country_missing_share", "onboarding_share_guided", "onboarding_share_checklist",
            "aa_test_treatment_share",
            "participation_control_enthusiast", "participation_control_mainstream",
            "participation_invited_enthusiast", "participation_invited_mainstream",
        ]  # fmt: skip
        for name in shares:
            if not 0 <= getattr(self, name) <= 1:
                raise bad(name, "between 0 and 1")
        if self.scaling_ar1_rho >= 1:
            raise bad("scaling_ar1_rho", "below 1 (a stationary AR(1))")
        positive = [
            "horizon_weeks", "bass_p", "prior_activity_shape", "activity_gap_shape", "churn_hazard_mainstream",
            "churn_segment_hazard_ratio", "churn_hazard_ratio_adopted", "adoption_delay_mean_days",
            "adoption_delay_shape", "conversion_horizon_days", "bgnbd_r", "bgnbd_alpha", "bgnbd_a", "bgnbd_b",
            "bgnbd_rate_ratio_enthusiast", "bgnbd_b_ratio_enthusiast", "gg_p", "gg_q", "gg_gamma",
            "referrals_rate_ratio_cocreator", "experiment_horizon_days", "experiment_population_draws",
            "onboarding_weeks", "onboarding_conversion_hr_guided", "onboarding_conversion_hr_checklist",
            "onboarding_churn_hr_guided", "onboarding_churn_hr_checklist", "onboarding_spend_ratio_guided",
            "onboarding_spend_ratio_checklist", "onboarding_horizon_days", "aa_test_weeks", "aa_test_horizon_days",
            "kpis_units", "kpis_periods", "scaling_c",
        ]  # fmt: skip
        for name in positive:
            if getattr(self, name) <= 0:
                raise bad(name, "> 0")
        non_negative = [
            "bass_q", "prior_activity_mean_enthusiast", "prior_activity_mean_mainstream",
            "activity_rate_enthusiast", "activity_rate_mainstream", "feedback_rate_enthusiast",
            "feedback_rate_mainstream", "conversion_hazard_enthusiast", "conversion_hazard_mainstream",
            "scaling_beta", "scaling_noise_sd", "onboarding_start_week", "aa_test_start_week",
        ]  # fmt: skip
        for name in non_negative:
            if getattr(self, name) < 0:
                raise bad(name, ">= 0")
        for seg in SEGMENTS:
            if getattr(self, f"participation_invited_{seg}") < getattr(self, f"participation_control_{seg}"):
                raise bad(
                    f"participation_invited_{seg}",
                    f">= participation_control_{seg} (the invitation can only add participants)",
                )
            if getattr(self, f"age_mean_{seg}") <= AGE_MIN:
                raise bad(f"age_mean_{seg}", f"> {AGE_MIN} (ages start at {AGE_MIN})")
        if self.onboarding_share_guided + self.onboarding_share_checklist > 1:
            raise bad("onboarding_share_checklist", f"<= 1 - onboarding_share_guided ({1 - self.onboarding_share_guided:g})")
        for name in (ONBOARDING, AA_TEST):
            first, weeks, horizon = (getattr(self, f"{name}_{k}") for k in ("start_week", "weeks", "horizon_days"))
            if 7 * (first + weeks) + horizon > self.observation_days:
                raise bad(
                    f"{name}_horizon_days",
                    f"short enough that users assigned in weeks [{first}, {first + weeks}) are observed for it "
                    f"(at most {self.observation_days - 7 * (first + weeks)} days with horizon_weeks={self.horizon_weeks})",
                )

    # ------------------------------------------------------------------ views
    def seg(self, stem: str) -> np.ndarray:
        """``[mainstream, enthusiast]`` values of a per-segment parameter."""
        return np.array([float(getattr(self, f"{stem}_{s}")) for s in SEGMENTS])

    @property
    def churn_hazards(self) -> np.ndarray:
        h = self.churn_hazard_mainstream
        return np.array([h, h * self.churn_segment_hazard_ratio])

    @property
    def bgnbd_alphas(self) -> np.ndarray:
        """BG/NBD alpha per segment (enthusiasts buy bgnbd_rate_ratio_enthusiast times as often)."""
        return np.array([self.bgnbd_alpha, self.bgnbd_alpha / self.bgnbd_rate_ratio_enthusiast])

    @property
    def bgnbd_bs(self) -> np.ndarray:
        """BG/NBD b per segment (enthusiasts drop out less)."""
        return np.array([self.bgnbd_b, self.bgnbd_b * self.bgnbd_b_ratio_enthusiast])

    def onboarding_effects(self, effect: str) -> np.ndarray:
        """``[control, guided, checklist]`` multipliers for ``conversion_hr``, ``churn_hr`` or ``spend_ratio``."""
        return np.array([1.0] + [float(getattr(self, f"onboarding_{effect}_{arm}")) for arm in ONBOARDING_ARMS[1:]])

    @property
    def onboarding_shares(self) -> np.ndarray:
        g, c = self.onboarding_share_guided, self.onboarding_share_checklist
        return np.array([1.0 - g - c, g, c])

    @property
    def observation_days(self) -> int:
        return int(7 * self.horizon_weeks)

    def overrides(self) -> dict:
        """The parameters that differ from the defaults."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if getattr(self, f.name) != getattr(_DEFAULTS, f.name)}


#: ages are AGE_MIN plus a gamma draw (no user is younger)
AGE_MIN = 16
_DEFAULTS = Planted()
PARAMETER_NAMES = tuple(f.name for f in dataclasses.fields(Planted))


def planted_parameters(**overrides) -> Planted:
    """A :class:`Planted` with ``overrides`` applied; unknown names get a clear error."""
    unknown = [k for k in overrides if k not in PARAMETER_NAMES]
    if unknown:
        hints = []
        for k in unknown:
            close = difflib.get_close_matches(k, PARAMETER_NAMES, n=1)
            hints.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ParameterError(
            f"simulate: unknown planted parameter(s) {', '.join(hints)}. "
            f"Valid names: {', '.join(PARAMETER_NAMES)} (see docs/simulator.md)."
        )
    types = {f.name: f.type for f in dataclasses.fields(Planted)}
    clean = {}
    for k, v in overrides.items():
        if types[k] == "int" and isinstance(v, float) and v == int(v):
            v = int(v)
        clean[k] = v
    return dataclasses.replace(_DEFAULTS, **clean)


def parse_assignments(items: list[str] | None) -> dict:
    """Parse ``NAME=VALUE`` strings (the CLI's ``--set``) into typed overrides."""
    types = {f.name: f.type for f in dataclasses.fields(Planted)}
    out = {}
    for item in items or []:
        name, sep, raw = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            raise ParameterError(f"--set {item!r}: expected NAME=VALUE, e.g. --set churn_hazard_ratio_adopted=0.5.")
        if name not in types:
            planted_parameters(**{name: None})  # raises the unknown-name error with a hint
        kind = types[name]
        if kind == "str":
            out[name] = raw.strip()
            continue
        try:
            value = float(raw)
        except ValueError:
            raise ParameterError(f"--set {item!r}: {name} needs a number, got {raw!r}.") from None
        if kind == "int":
            if value != int(value):
                raise ParameterError(f"--set {item!r}: {name} needs a whole number, got {raw!r}.")
            value = int(value)
        out[name] = value
    return out
