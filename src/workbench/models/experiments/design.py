"""Design checks and power: is the split what was intended, and how large
an effect can an experiment of a given size detect?

- :func:`sample_ratio_mismatch`: chi-square test of users per arm against the
  intended split (any number of arms; default equal shares).
- :func:`power_mde`: minimum detectable difference in a proportion
  (statsmodels ``NormalIndPower`` on Cohen's h).
- :func:`power_mde_mean`: minimum detectable difference in a mean, from the
  metric's standard deviation (e.g. the control arm's observed one).
- :func:`events_needed` and :func:`mde_hazard_ratio`: Schoenfeld's formula
  for time-to-event outcomes: the events a log-rank / Cox test needs to
  detect a hazard ratio, and the hazard ratio a given number of events
  detects.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from workbench.errors import ModelError, ParameterError
from workbench.models.experiments.arms import check_control, check_outcome_arms
from workbench.models.inputs import numeric as _numeric
from workbench.models.inputs import require_columns as _require_columns
from workbench.models.results import Result, summary_frame


# ===================================================================== SRM
@dataclass(frozen=True)
class SRMResult(Result):
    """Sample-ratio-mismatch check: arm counts against the intended allocation."""

    counts: pd.DataFrame
    chi2: float
    df: int
    p_value: float
    threshold: float

    @property
    def mismatch(self) -> bool:
        return bool(self.p_value < self.threshold)

    def summary(self) -> pd.DataFrame:
        return self.counts

    def to_metrics(self, prefix: str = "experiment") -> dict:
        return {f"{prefix}.srm_p_value": self.p_value, f"{prefix}.srm_chi2": self.chi2}

    def _repr_html_(self) -> str:
        verdict = ("<b>sample ratio mismatch: do not trust the effect estimates</b>" if self.mismatch
                   else "no sample ratio mismatch")
        return (f"<strong>Sample ratio check</strong>: chi2 = {self.chi2:.2f} ({self.df} df), p = {self.p_value:.3g}: {verdict}"
                + self.counts.to_html(float_format=lambda v: f"{v:,.4g}"))


def sample_ratio_mismatch(outcomes: pd.DataFrame, *, allocation: dict | None = None, threshold: float = 0.001) -> SRMResult:
    """Chi-square goodness-of-fit test of users per arm (all assigned users,
    observed or not) against ``allocation`` (arm -> intended share; default
    equal shares), for any number of arms. ``outcomes`` is one row per
    assigned user (``arm``), or one row per arm with its count in ``users``
    (``workbench.tables.experiment_arms``). A p-value below ``threshold``
    (default 0.001, the usual SRM alarm level) flags a mismatch."""
    where = "sample_ratio_mismatch"
    _require_columns(outcomes, ["arm"], where, "Give one row per assigned user, or one row per arm with a users column.")
    per_arm = "users" in outcomes.columns and outcomes["arm"].is_unique
    if per_arm:
        counts = pd.Series(_numeric(outcomes, "users", where), index=outcomes["arm"].astype(str)).sort_index()
        counts = counts[counts > 0]
        check_control(counts.index, where)
    else:
        check_outcome_arms(outcomes, where)
        counts = outcomes["arm"].astype(str).value_counts().sort_index()
    arms = list(counts.index)
    if allocation is None:
        shares = pd.Series(1.0 / len(arms), index=arms)
    else:
        if not isinstance(allocation, dict) or not allocation:
            raise ParameterError(f"{where}: allocation must be a dict arm -> intended share, e.g. {{'control': 0.5, 'invited': 0.5}}")
        unknown = sorted(set(allocation) - set(arms))
        missing = sorted(set(arms) - set(allocation))
        if missing:
            raise ParameterError(f"{where}: allocation gives no share for arm(s) {', '.join(missing)} (arms: {', '.join(arms)}).")
        if unknown:
            raise ModelError(f"{where}: arm(s) {', '.join(unknown)} are in the allocation but no user was assigned to them: "
                             "that is itself a sample ratio mismatch (or a misspelt arm).")
        shares = pd.Series({a: float(allocation[a]) for a in arms})
        if (shares <= 0).any() or abs(shares.sum() - 1) > 1e-6:
            raise ParameterError(f"{where}: allocation shares must be positive and sum to 1, got {dict(shares)}")
    expected = shares * counts.sum()
    chi2, p = stats.chisquare(counts.to_numpy(dtype=float), expected.to_numpy())
    table = pd.DataFrame({"users": counts, "expected": expected, "share": counts / counts.sum(), "intended_share": shares})
    table.index.name = "arm"
    return SRMResult(counts=table, chi2=float(chi2), df=len(arms) - 1, p_value=float(p), threshold=threshold)



# ===================================================================== power
@dataclass(frozen=True)
class PowerResult(Result):
    """Minimum detectable effect for a planned two-arm retention experiment."""

    n_per_arm: int
    baseline_rate: float
    alpha: float
    power: float
    ratio: float
    effect_size: float
    mde: float
    curve: pd.DataFrame = field(repr=False)

    @property
    def mde_relative(self) -> float:
        return self.mde / self.baseline_rate

    def summary(self) -> pd.DataFrame:
        return summary_frame(["mde", "mde_relative", "cohens_h"], [self.mde, self.mde_relative, self.effect_size])

    def to_metrics(self, prefix: str = "experiment") -> dict:
        return {f"{prefix}.mde": self.mde, f"{prefix}.mde_relative": self.mde_relative}

    def _repr_html_(self) -> str:
        return (f"<strong>Power</strong>: with {self.n_per_arm:,} users in control and {self.ratio * self.n_per_arm:,.0f} invited, "
                f"baseline retention {self.baseline_rate:.1%}, alpha {self.alpha}, power {self.power:.0%}: minimum detectable "
                f"difference {self.mde:+.2%} ({self.mde_relative:+.1%} relative)")


def _h_to_rate(p0: float, h: float) -> float:
    return float(np.sin(np.arcsin(np.sqrt(p0)) + h / 2) ** 2)


def power_mde(*, n_per_arm: int, baseline_rate: float, alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0,
              alternative: str = "two-sided") -> PowerResult:
    """Minimum detectable increase in retention for ``n_per_arm`` control
    users (and ``ratio`` times as many invited) at the given ``alpha`` and
    ``power``: statsmodels ``NormalIndPower`` solves for Cohen's h, turned
    back into a retention difference above ``baseline_rate``. ``curve`` holds
    the MDE for a range of sample sizes."""
    from statsmodels.stats.power import NormalIndPower

    where = "power_mde"
    if isinstance(n_per_arm, bool) or not isinstance(n_per_arm, numbers.Integral) or n_per_arm < 2:
        raise ParameterError(f"{where}: n_per_arm must be an integer >= 2, got {n_per_arm!r}")
    if not 0 < baseline_rate < 1:
        raise ParameterError(f"{where}: baseline_rate must be strictly between 0 and 1, got {baseline_rate!r}")
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ParameterError(f"{where}: alpha and power must be strictly between 0 and 1, got {alpha!r}, {power!r}")
    if ratio <= 0:
        raise ParameterError(f"{where}: ratio must be > 0, got {ratio!r}")
    if alternative not in ("two-sided", "larger"):
        raise ParameterError(f"{where}: alternative must be 'two-sided' or 'larger', got {alternative!r}")
    pw = NormalIndPower()

    def solve(n):
        return float(pw.solve_power(effect_size=None, nobs1=n, alpha=alpha, power=power, ratio=ratio, alternative=alternative))

    h = solve(n_per_arm)
    top = np.pi / 2 - np.arcsin(np.sqrt(baseline_rate))
    if h / 2 >= top:
        raise ModelError(f"{where}: with {n_per_arm} users per arm no increase from {baseline_rate:.1%} is detectable "
                         "(it would pass 100%); plan more users.")
    mde = _h_to_rate(baseline_rate, h) - baseline_rate
    ns = np.unique(np.round(n_per_arm * np.geomspace(0.125, 8, 25)).astype(int))
    ns = ns[ns >= 2]
    curve = pd.DataFrame({"n_per_arm": ns, "mde": [_h_to_rate(baseline_rate, min(solve(n), 2 * top)) - baseline_rate for n in ns]})
    return PowerResult(n_per_arm=int(n_per_arm), baseline_rate=float(baseline_rate), alpha=float(alpha), power=float(power),
                       ratio=float(ratio), effect_size=h, mde=float(mde), curve=curve)


def _check_design(where, alpha, power, ratio, alternative):
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ParameterError(f"{where}: alpha and power must be strictly between 0 and 1, got {alpha!r}, {power!r}")
    if isinstance(ratio, bool) or not isinstance(ratio, numbers.Real) or ratio <= 0:
        raise ParameterError(f"{where}: ratio must be > 0, got {ratio!r}")
    if alternative not in ("two-sided", "larger"):
        raise ParameterError(f"{where}: alternative must be 'two-sided' or 'larger', got {alternative!r}")


def _check_n(where, n_per_arm):
    if isinstance(n_per_arm, bool) or not isinstance(n_per_arm, numbers.Integral) or n_per_arm < 2:
        raise ParameterError(f"{where}: n_per_arm must be an integer >= 2, got {n_per_arm!r}")


@dataclass(frozen=True)
class MeanPowerResult(Result):
    """Minimum detectable difference in a mean for a planned two-arm design."""

    n_per_arm: int
    std_dev: float
    alpha: float
    power: float
    ratio: float
    effect_size: float
    mde: float
    baseline_mean: float | None = None
    curve: pd.DataFrame = field(default=None, repr=False)

    @property
    def mde_relative(self) -> float:
        return self.mde / self.baseline_mean if self.baseline_mean else np.nan

    def summary(self) -> pd.DataFrame:
        return summary_frame(["mde", "mde_relative", "cohens_d"], [self.mde, self.mde_relative, self.effect_size])

    def to_metrics(self, prefix: str = "experiment") -> dict:
        out = {f"{prefix}.mde": self.mde}
        if np.isfinite(self.mde_relative):
            out[f"{prefix}.mde_relative"] = self.mde_relative
        return out

    def _repr_html_(self) -> str:
        rel = f" ({self.mde_relative:+.1%} of the baseline mean)" if np.isfinite(self.mde_relative) else ""
        return (f"<strong>Power (mean)</strong>: with {self.n_per_arm:,} users in control and {self.ratio * self.n_per_arm:,.0f} "
                f"in the other arm, standard deviation {self.std_dev:,.4g}, alpha {self.alpha}, power {self.power:.0%}: "
                f"minimum detectable difference {self.mde:,.4g}{rel}")


def power_mde_mean(*, n_per_arm: int, std_dev: float, baseline_mean: float | None = None, alpha: float = 0.05,
                   power: float = 0.8, ratio: float = 1.0, alternative: str = "two-sided") -> MeanPowerResult:
    """Minimum detectable difference in a mean for ``n_per_arm`` control users
    (and ``ratio`` times as many in the other arm) when the metric's standard
    deviation is ``std_dev`` in both arms (e.g. the control arm's observed
    one): statsmodels ``NormalIndPower`` solves for Cohen's d, times
    ``std_dev``. ``baseline_mean`` adds the MDE relative to it."""
    from statsmodels.stats.power import NormalIndPower

    where = "power_mde_mean"
    _check_n(where, n_per_arm)
    _check_design(where, alpha, power, ratio, alternative)
    if isinstance(std_dev, bool) or not isinstance(std_dev, numbers.Real) or not np.isfinite(std_dev) or std_dev <= 0:
        raise ParameterError(f"{where}: std_dev must be a positive number, got {std_dev!r} (a metric that never varies "
                             "cannot show an effect)")
    pw = NormalIndPower()

    def solve(n):
        return float(pw.solve_power(effect_size=None, nobs1=n, alpha=alpha, power=power, ratio=ratio, alternative=alternative))

    d = solve(n_per_arm)
    ns = np.unique(np.round(n_per_arm * np.geomspace(0.125, 8, 25)).astype(int))
    ns = ns[ns >= 2]
    curve = pd.DataFrame({"n_per_arm": ns, "mde": [solve(n) * std_dev for n in ns]})
    return MeanPowerResult(n_per_arm=int(n_per_arm), std_dev=float(std_dev), alpha=float(alpha), power=float(power),
                           ratio=float(ratio), effect_size=d, mde=d * float(std_dev),
                           baseline_mean=None if baseline_mean is None else float(baseline_mean), curve=curve)


# ===================================================================== time to event
@dataclass(frozen=True)
class EventsPowerResult(Result):
    """Schoenfeld's events / hazard-ratio calculation for a two-arm time-to-event outcome."""

    hazard_ratio: float
    events: float
    alpha: float
    power: float
    allocation: float
    event_probability: float | None = None

    @property
    def users(self) -> float:
        """Users needed in both arms together, if the share of users with an event is known."""
        return self.events / self.event_probability if self.event_probability else np.nan

    def summary(self) -> pd.DataFrame:
        return summary_frame(["events", "hazard_ratio", "users"], [self.events, self.hazard_ratio, self.users])

    def to_metrics(self, prefix: str = "experiment") -> dict:
        out = {f"{prefix}.events_needed": self.events, f"{prefix}.mde_hazard_ratio": self.hazard_ratio}
        if np.isfinite(self.users):
            out[f"{prefix}.users_needed"] = self.users
        return out

    def _repr_html_(self) -> str:
        users = f" ({self.users:,.0f} users at an event share of {self.event_probability:.1%})" if np.isfinite(self.users) else ""
        return (f"<strong>Power (time to event, Schoenfeld)</strong>: a hazard ratio of {self.hazard_ratio:.3g} needs "
                f"{self.events:,.0f} events{users} for power {self.power:.0%} at alpha {self.alpha} "
                f"({self.allocation:.0%} of users in the treatment arm)")


def _schoenfeld_z(alpha, power, alternative):
    za = stats.norm.ppf(1 - alpha / 2) if alternative == "two-sided" else stats.norm.ppf(1 - alpha)
    return za + stats.norm.ppf(power)


def _check_share(where, name, value, *, open_=True):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value < 1:
        raise ParameterError(f"{where}: {name} must be strictly between 0 and 1, got {value!r}")
    return float(value)


def events_needed(*, hazard_ratio: float, alpha: float = 0.05, power: float = 0.8, allocation: float = 0.5,
                  event_probability: float | None = None, alternative: str = "two-sided") -> EventsPowerResult:
    """Events (both arms together) that a log-rank or Cox test needs to detect
    ``hazard_ratio`` (Schoenfeld 1983): ``(z_alpha + z_power)^2 / (p (1 - p)
    log(HR)^2)`` with ``p`` = ``allocation``, the treatment arm's share of
    users. With ``event_probability`` (the share of users expected to have
    the event within the follow-up) the result also gives users needed."""
    where = "events_needed"
    _check_design(where, alpha, power, 1.0, alternative)
    _check_share(where, "allocation", allocation)
    _check_share(where, "event_probability", event_probability)
    if isinstance(hazard_ratio, bool) or not isinstance(hazard_ratio, numbers.Real) or hazard_ratio <= 0 or hazard_ratio == 1:
        raise ParameterError(f"{where}: hazard_ratio must be a positive number other than 1, got {hazard_ratio!r}")
    z = _schoenfeld_z(alpha, power, alternative)
    d = z**2 / (allocation * (1 - allocation) * np.log(hazard_ratio) ** 2)
    return EventsPowerResult(hazard_ratio=float(hazard_ratio), events=float(d), alpha=float(alpha), power=float(power),
                             allocation=float(allocation), event_probability=event_probability)


def mde_hazard_ratio(*, events: float, alpha: float = 0.05, power: float = 0.8, allocation: float = 0.5,
                     alternative: str = "two-sided") -> EventsPowerResult:
    """The hazard ratio below 1 that ``events`` events detect (Schoenfeld's
    formula solved for HR; the ratio above 1 is its reciprocal)."""
    where = "mde_hazard_ratio"
    _check_design(where, alpha, power, 1.0, alternative)
    _check_share(where, "allocation", allocation)
    if isinstance(events, bool) or not isinstance(events, numbers.Real) or not events > 0:
        raise ParameterError(f"{where}: events must be a positive number, got {events!r}")
    z = _schoenfeld_z(alpha, power, alternative)
    hr = float(np.exp(-z / np.sqrt(allocation * (1 - allocation) * events)))
    return EventsPowerResult(hazard_ratio=hr, events=float(events), alpha=float(alpha), power=float(power),
                             allocation=float(allocation))


__all__ = ["EventsPowerResult", "MeanPowerResult", "PowerResult", "SRMResult", "events_needed", "mde_hazard_ratio",
           "power_mde", "power_mde_mean", "sample_ratio_mismatch"]
