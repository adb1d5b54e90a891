"""A synthetic product's user base with planted truth.

``simulate(users=20_000, seed=0)`` draws a whole simulated world -- Bass
signups, two segments, daily activity, ideas and their adoption, churn,
conversion, BG/NBD repeat purchases with Gamma-Gamma spend, referrals, a
randomized co-creation invitation and a market KPI panel -- and returns a
:class:`SimulatedDataset` holding the contract tables as pandas frames and a
``truth`` dict with every planted value. ``write`` (or ``out=``) stores it as
a dataset folder (``users``, ``events``, ``assignments``, ``kpis`` Parquet
tables, ``dataset.yml``, ``truth.json``), atomically and byte-for-byte
reproducibly for a given seed and library versions. docs/simulator.md
describes the simulated world and every truth key.

Small pure draws for model tests (BG/NBD, Pareto/NBD, Gamma-Gamma, sBG) are
re-exported here from :mod:`workbench.data._sim_draws`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import json
import numbers
import os
import secrets
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from workbench.data._sim_draws import (
    bass_cdf,
    bass_inverse_cdf,
    bass_peak_time,
    simulate_bgnbd_summary,
    simulate_gamma_gamma_spend,
    simulate_pareto_nbd_summary,
    simulate_sbg_cohorts,
)
from workbench.errors import ParameterError, WorkbenchError

__all__ = [
    "Planted",
    "SimulatedDataset",
    "simulate",
    "write",
    "simulate_bgnbd_summary",
    "simulate_pareto_nbd_summary",
    "simulate_gamma_gamma_spend",
    "simulate_sbg_cohorts",
    "bass_cdf",
    "bass_inverse_cdf",
    "bass_peak_time",
]

SEGMENTS = ("mainstream", "enthusiast")  # code 0, 1
CHANNELS = ("organic", "ads", "referral")  # code 0, 1, 2
ARMS = ("control", "invited")  # code 0, 1
EXPERIMENT = "cocreation_invite"
# alphabetical, so sorting by code sorts by the event_type string
EVENT_TYPES = ("active", "adopted", "cancel", "feedback", "purchase")
_ACTIVE, _ADOPTED, _CANCEL, _FEEDBACK, _PURCHASE = range(5)
_SECONDS_PER_DAY = 86_400
_US = 1_000_000
# the RNG streams, one child SeedSequence each; append new ones at the end only
_STREAMS = (
    "signups", "segments", "attributes", "experiment", "churn", "ideas", "conversion",
    "referrals", "channel", "activity", "purchases", "kpis", "population",
)  # fmt: skip
_N_STAGES = 11  # bar.step() calls in _simulate
TABLE_FILES = ("users.parquet", "events.parquet", "assignments.parquet", "kpis.parquet")
#: Every analysis table scans events.parquet; LZ4 decodes about twice as fast
#: as ZSTD (DuckDB's scan of a 1M-user events file: 0.19 s against 0.33 s)
#: for files about a quarter larger. pyarrow writes it as LZ4_RAW, which
#: pyarrow, pandas, DuckDB and Spark 3.5 or later read.
PARQUET_CODEC = "lz4"

SCHEMAS = {
    "users": pa.schema(
        [
            pa.field("user_id", pa.string(), nullable=False),
            pa.field("signup_at", pa.timestamp("us"), nullable=False),
            pa.field("channel", pa.string()),
            pa.field("segment", pa.string()),
            pa.field("referred_by", pa.string()),
            pa.field("prior_activity", pa.int64()),
        ]
    ),
    "events": pa.schema(
        [
            pa.field("user_id", pa.string(), nullable=False),
            pa.field("event_at", pa.timestamp("us"), nullable=False),
            pa.field("event_type", pa.string(), nullable=False),
            pa.field("amount", pa.float64()),
        ]
    ),
    "assignments": pa.schema(
        [
            pa.field("user_id", pa.string(), nullable=False),
            pa.field("experiment", pa.string(), nullable=False),
            pa.field("arm", pa.string(), nullable=False),
            pa.field("assigned_at", pa.timestamp("us"), nullable=False),
        ]
    ),
    "kpis": pa.schema(
        [
            pa.field("period", pa.date32(), nullable=False),
            pa.field("unit", pa.string()),
            pa.field("users", pa.float64()),
            pa.field("new_users", pa.float64()),
            pa.field("customers", pa.float64()),
            pa.field("revenue", pa.float64()),
        ]
    ),
}


# ====================================================================== parameters
@dataclass(frozen=True)
class Planted:
    """Every planted parameter of the simulated world, with its default.

    Pass any of them to :func:`simulate` as a keyword (``churn_hazard_ratio_adopted=0.5``)
    or to the CLI as ``--set churn_hazard_ratio_adopted=0.5``. Rates and
    hazards are per day unless the name says otherwise.
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
    # daily activity: Poisson rate of `active` events per day alive
    activity_rate_enthusiast: float = 0.12
    activity_rate_mainstream: float = 0.06
    # churn: constant daily hazard per segment, times hazard_ratio_adopted after the first adoption
    churn_hazard_mainstream: float = 0.006
    churn_segment_hazard_ratio: float = 0.5  # enthusiast / mainstream
    churn_hazard_ratio_adopted: float = 0.6
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
    # repeat purchases: BG/NBD in weeks from the first purchase, Gamma-Gamma spend
    bgnbd_r: float = 0.25
    bgnbd_alpha: float = 4.0
    bgnbd_a: float = 0.8
    bgnbd_b: float = 2.5
    gg_p: float = 6.0
    gg_q: float = 4.0
    gg_gamma: float = 15.0
    # referrals
    referrals_rate_ratio_cocreator: float = 2.0
    referrals_tracked_share: float = 0.2  # share of Bass imitation signups recorded as referrals
    # the randomized co-creation invitation
    experiment_invited_share: float = 0.5
    experiment_horizon_days: int = 90
    experiment_population_draws: int = 400_000  # Monte Carlo draws for the population ITT/CACE
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
        where = "simulate"

        def bad(name, need):
            return ParameterError(
                f"{where}: {name}={getattr(self, name)!r} is invalid: it must be {need}. "
                f"Pass a valid value (default {getattr(_DEFAULTS, name, '?')!r})."
            )

        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.type in ("str",):
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
            "referrals_tracked_share", "scaling_ar1_rho",
            "participation_control_enthusiast", "participation_control_mainstream",
            "participation_invited_enthusiast", "participation_invited_mainstream",
        ]  # fmt: skip
        for name in shares:
            if not 0 <= getattr(self, name) <= 1:
                raise bad(name, "between 0 and 1")
        if self.scaling_ar1_rho >= 1:
            raise bad("scaling_ar1_rho", "below 1 (a stationary AR(1))")
        positive = [
            "horizon_weeks", "bass_p", "prior_activity_shape", "churn_hazard_mainstream",
            "churn_segment_hazard_ratio", "churn_hazard_ratio_adopted", "adoption_delay_mean_days",
            "adoption_delay_shape", "conversion_horizon_days", "bgnbd_r", "bgnbd_alpha", "bgnbd_a",
            "bgnbd_b", "gg_p", "gg_q", "gg_gamma", "referrals_rate_ratio_cocreator",
            "experiment_horizon_days", "experiment_population_draws", "kpis_units", "kpis_periods",
            "scaling_c",
        ]  # fmt: skip
        for name in positive:
            if getattr(self, name) <= 0:
                raise bad(name, "> 0")
        non_negative = [
            "bass_q", "prior_activity_mean_enthusiast", "prior_activity_mean_mainstream",
            "activity_rate_enthusiast", "activity_rate_mainstream", "feedback_rate_enthusiast",
            "feedback_rate_mainstream", "conversion_hazard_enthusiast", "conversion_hazard_mainstream",
            "scaling_beta", "scaling_noise_sd",
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

    def seg(self, stem: str) -> np.ndarray:
        """``[mainstream, enthusiast]`` values of a per-segment parameter."""
        return np.array([float(getattr(self, f"{stem}_{s}")) for s in SEGMENTS])

    @property
    def churn_hazards(self) -> np.ndarray:
        h = self.churn_hazard_mainstream
        return np.array([h, h * self.churn_segment_hazard_ratio])

    @property
    def observation_days(self) -> int:
        return int(7 * self.horizon_weeks)

    def overrides(self) -> dict:
        """The parameters that differ from the defaults."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if getattr(self, f.name) != getattr(_DEFAULTS, f.name)}


_DEFAULTS = Planted()
_PARAM_NAMES = tuple(f.name for f in dataclasses.fields(Planted))


def planted_parameters(**overrides) -> Planted:
    """A :class:`Planted` with ``overrides`` applied; unknown names get a clear error."""
    unknown = [k for k in overrides if k not in _PARAM_NAMES]
    if unknown:
        hints = []
        for k in unknown:
            close = difflib.get_close_matches(k, _PARAM_NAMES, n=1)
            hints.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ParameterError(
            f"simulate: unknown planted parameter(s) {', '.join(hints)}. "
            f"Valid names: {', '.join(_PARAM_NAMES)} (see docs/simulator.md)."
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
        try:
            out[name] = raw.strip() if kind == "str" else (int(float(raw)) if kind == "int" else float(raw))
        except ValueError:
            raise ParameterError(f"--set {item!r}: {name} needs a number, got {raw!r}.") from None
    return out


# ====================================================================== the dataset
@dataclass(frozen=True, eq=False)
class SimulatedDataset:
    """A simulated dataset: the contract tables as pandas frames, the planted
    ``truth``, the ``dataset.yml`` ``metadata``, and ``latent`` per-user values
    (segment-level draws, both potential outcomes of the experiment, latent
    churn time, purchase rate...) that are never written to disk."""

    users: pd.DataFrame
    events: pd.DataFrame
    assignments: pd.DataFrame
    kpis: pd.DataFrame
    truth: dict
    metadata: dict
    latent: pd.DataFrame = field(repr=False)

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        return {"users": self.users, "events": self.events, "assignments": self.assignments, "kpis": self.kpis}

    def write(self, out, *, force: bool = False) -> Path:
        """Write the dataset folder; see :func:`write`."""
        return write(self, out, force=force)

    def describe(self) -> str:
        """A few lines saying what was simulated."""
        c = self.truth["counts"]
        ev = c["events"]
        return (
            f"simulated {c['users']:,} users (seed {self.truth['generator']['seed']}), "
            f"{sum(ev.values()):,} events "
            f"({', '.join(f'{k} {v:,}' for k, v in ev.items())}); "
            f"{c['customers']:,} customers, {c['churned']:,} cancelled, {c['referred']:,} referred; "
            f"kpis {len(self.kpis)} rows; observation end {self.metadata['observation_end']}"
        )

    def __repr__(self) -> str:
        return f"SimulatedDataset({self.describe()})"


# ====================================================================== progress
class _Progress:
    """tqdm on stderr, a ``callback(stage, done, total)``, or nothing."""

    def __init__(self, progress, total: int, desc: str):
        self.done, self.total = 0, total
        self._cb = progress if callable(progress) else None
        self._bar = None
        if progress is True:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc=desc, file=sys.stderr, unit="step", leave=False)

    def step(self, stage: str) -> None:
        self.done += 1
        if self._bar is not None:
            self._bar.set_postfix_str(stage)
            self._bar.update(1)
        if self._cb is not None:
            self._cb(stage, self.done, self.total)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


# ====================================================================== helpers
def _group_min(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Per-group minimum of ``values`` laid out in contiguous groups of ``counts`` (inf if empty)."""
    out = np.full(counts.shape[0], np.inf)
    nonempty = counts > 0
    if values.size:
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        out[nonempty] = np.minimum.reduceat(values, starts[nonempty])
    return out


def _decode(codes: np.ndarray, names) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int8)), pa.array(list(names))).dictionary_decode()


def _timestamps(days: np.ndarray, start_us: int) -> pa.Array:
    """Days after start -> timestamp[us], floored to whole seconds."""
    secs = np.floor(days * _SECONDS_PER_DAY).astype(np.int64)
    return pa.array(start_us + secs * _US, type=pa.timestamp("us"))


def _sorted_events(parts, amount, n: int, obs_days: int):
    """Concatenate (user, time in days, type code) parts and sort by (user, second, type).

    The three keys are packed into one int64 (user | second | type) and sorted
    once, far faster than a 3-key lexsort; purchase amounts follow their own
    (unique) keys. Rows with equal keys are identical, so the order is exact.
    """
    user = np.concatenate([u for u, _, _ in parts]).astype(np.int64)
    sec = np.floor(np.concatenate([t for _, t, _ in parts]) * _SECONDS_PER_DAY).astype(np.int64)
    code = np.concatenate([np.full(u.size, c, np.int64) for u, _, c in parts])
    sec_bits = int(obs_days * _SECONDS_PER_DAY).bit_length()
    user_bits = max(1, int(n).bit_length())
    if user_bits + sec_bits + 3 > 62:  # pragma: no cover - beyond ~100M users x decades
        order = np.lexsort((code, sec, user))
        amt = np.where(code == _PURCHASE, 0.0, np.nan)
        amt[code == _PURCHASE] = amount
        return user[order], sec[order], code[order].astype(np.int8), amt[order]
    key = (((user << sec_bits) | sec) << 3) | code
    del user, sec, code
    buy_key = key[-amount.size :] if amount.size else key[:0]  # purchases are the last part
    amount = amount[np.argsort(buy_key, kind="stable")]
    key.sort()
    ev_type = (key & 7).astype(np.int8)
    ev_sec = (key >> 3) & ((1 << sec_bits) - 1)
    ev_user = key >> (sec_bits + 3)
    del key
    ev_amount = np.full(ev_type.size, np.nan)
    ev_amount[ev_type == _PURCHASE] = amount
    return ev_user, ev_sec, ev_type, ev_amount


def _lives(h, ethr, hr, engaged, first_idea, first_adopt):
    """Churn under a hazard ``h`` that drops to ``h*hr`` at the first adoption.

    ``ethr`` ~ Exp(1) is each user's cumulative-hazard threshold (common to
    both arms of the experiment); ``first_idea``/``first_adopt`` are the times
    (days after signup) of the first idea and of the first adoption among that
    user's ideas, were the user a participant who never churned. Returns the
    churn time ``T``, the first adoption ``A`` and the first feedback ``F``
    (inf where none happens before churn).
    """
    cand = np.where(engaged, first_adopt, np.inf)
    t0 = ethr / h
    adopted = cand < t0
    T = np.where(adopted, cand + (ethr - h * np.where(adopted, cand, 0.0)) / (h * hr), t0)
    A = np.where(adopted, cand, np.inf)
    fi = np.where(engaged, first_idea, np.inf)
    F = np.where(fi < T, fi, np.inf)
    return T, A, F


def _draw_ideas(rng, seg, s_rel_end, ethr, eligible, p: Planted):
    """Ideas of every potential participant over the longest life they could have.

    Returns per-user counts and per-idea (time after signup, adoption time after
    signup or inf). Ideas after a user's actual churn are dropped later.
    """
    h = p.churn_hazards[seg]
    longest = ethr / (h * min(1.0, p.churn_hazard_ratio_adopted))
    span = np.where(eligible, np.minimum(s_rel_end, longest), 0.0)
    counts = rng.poisson(p.seg("feedback_rate")[seg] * span)
    owner = np.repeat(np.arange(seg.size), counts)
    t = rng.random(owner.size) * span[owner]
    adopted = rng.random(owner.size) < p.adoption_probability
    delay = rng.gamma(p.adoption_delay_shape, p.adoption_delay_mean_days / p.adoption_delay_shape, owner.size)
    adopt_t = np.where(adopted, t + delay, np.inf)
    return counts, owner, t, adopt_t


def _experiment_population(rng, p: Planted) -> dict:
    """Population ITT / complier share / CACE at the horizon, by Monte Carlo
    over fresh users with a full horizon (only the first H days matter)."""
    n = int(p.experiment_population_draws)
    H = float(p.experiment_horizon_days)
    seg = (rng.random(n) < p.enthusiast_share).astype(np.int64)
    u = rng.random(n)
    eng0 = u < p.seg("participation_control")[seg]
    eng1 = u < p.seg("participation_invited")[seg]
    ethr = rng.exponential(1.0, n)
    counts, owner, t, adopt_t = _draw_ideas(rng, seg, np.full(n, H), ethr, eng1, p)
    fi, fa = _group_min(t, counts), _group_min(adopt_t, counts)
    h = p.churn_hazards[seg]
    T0, _, F0 = _lives(h, ethr, p.churn_hazard_ratio_adopted, eng0, fi, fa)
    T1, _, F1 = _lives(h, ethr, p.churn_hazard_ratio_adopted, eng1, fi, fa)
    y = (T1 > H).astype(float) - (T0 > H).astype(float)
    complier = (F1 <= H) & ~(F0 <= H)
    share = complier.mean()
    cace = y[complier].mean() if complier.any() else float("nan")
    return {
        "draws": n,
        "itt_retention": float(y.mean()),
        "itt_retention_mc_std_err": float(y.std(ddof=1) / np.sqrt(n)),
        "complier_share": float(share),
        "cace_retention": float(cace),
        "cace_retention_mc_std_err": float(y[complier].std(ddof=1) / np.sqrt(complier.sum())) if complier.sum() > 1 else float("nan"),
        "retention_control": float((T0 > H).mean()),
        "retention_invited": float((T1 > H).mean()),
    }


def _kpis(rng, p: Planted) -> tuple[pd.DataFrame, dict]:
    """The market panel: Bass-like adoption per market, revenue = c * users**beta * exp(AR(1) noise)."""
    k, n_t = int(p.kpis_units), int(p.kpis_periods)
    units = [f"market_{i + 1:02d}" for i in range(k)]
    size = 10 ** rng.uniform(5.5, 6.7, k)  # 0.3M - 5M potential users
    bp, bq = rng.uniform(0.005, 0.02, k), rng.uniform(0.1, 0.3, k)  # monthly Bass
    launched = rng.integers(1, 13, k)  # months before the panel starts
    active_share = rng.uniform(0.4, 0.7, k)
    customer_share = rng.uniform(0.05, 0.15, k)
    t = np.arange(n_t)[None, :] + launched[:, None]
    adopters = size[:, None] * bass_cdf(t + 1, bp[:, None], bq[:, None])
    new = adopters - size[:, None] * bass_cdf(t, bp[:, None], bq[:, None])
    users = adopters * active_share[:, None] * np.exp(rng.normal(0, 0.03, (k, n_t)))
    customers = users * customer_share[:, None] * np.exp(rng.normal(0, 0.05, (k, n_t)))
    rho, sd = p.scaling_ar1_rho, p.scaling_noise_sd
    eps = np.empty((k, n_t))
    eps[:, 0] = rng.normal(0, sd, k)
    innov = rng.normal(0, sd * np.sqrt(1 - rho**2), (k, n_t))
    for j in range(1, n_t):
        eps[:, j] = rho * eps[:, j - 1] + innov[:, j]
    revenue = p.scaling_c * users**p.scaling_beta * np.exp(eps)
    y0, m0 = dt.date.fromisoformat(p.kpis_start).year, dt.date.fromisoformat(p.kpis_start).month
    periods = [dt.date(y0 + (m0 - 1 + j) // 12, (m0 - 1 + j) % 12 + 1, 1) for j in range(n_t)]
    frame = pd.DataFrame(
        {
            "period": np.tile(np.array(periods, dtype=object), k),
            "unit": np.repeat(units, n_t),
            "users": users.ravel(),
            "new_users": new.ravel(),
            "customers": customers.ravel(),
            "revenue": revenue.ravel(),
        }
    )
    detail = {
        "units": units,
        "periods": n_t,
        "start": periods[0].isoformat(),
        "period_unit": "month",
        "market_size": {u: float(v) for u, v in zip(units, size)},
        "bass_p_monthly": {u: float(v) for u, v in zip(units, bp)},
        "bass_q_monthly": {u: float(v) for u, v in zip(units, bq)},
        "months_since_launch_at_start": {u: int(v) for u, v in zip(units, launched)},
        "active_share": {u: float(v) for u, v in zip(units, active_share)},
        "customer_share": {u: float(v) for u, v in zip(units, customer_share)},
    }
    return frame, detail


def _plain(obj):
    """numpy scalars -> Python, for JSON; NaN/inf -> None."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, numbers.Integral):
        return int(obj)
    if isinstance(obj, numbers.Real):
        v = float(obj)
        return v if np.isfinite(v) else None
    return obj


# ====================================================================== the world
def simulate(
    users: int = 20_000,
    seed: int = 0,
    out=None,
    *,
    force: bool = False,
    progress: bool | Callable[[str, int, int], None] = True,
    **planted,
) -> SimulatedDataset:
    """Simulate a product's user base with planted truth.

    Parameters
    ----------
    users : number of users (the Bass market size m).
    seed : non-negative integer; the same seed (and library versions) gives
        the same tables and files byte for byte.
    out : if given, also write the dataset folder there (see :func:`write`).
    force : allow replacing a non-empty ``out`` folder.
    progress : ``True`` for a tqdm bar on stderr, ``False`` for silence, or a
        callable ``(stage, done, total)``.
    **planted : overrides of any :class:`Planted` parameter, e.g.
        ``churn_hazard_ratio_adopted=0.5``.
    """
    if isinstance(users, bool) or not isinstance(users, numbers.Integral) or not 1 <= users <= 100_000_000:
        raise ParameterError(f"simulate: users must be an integer between 1 and 100,000,000, got {users!r}.")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ParameterError(f"simulate: seed must be a non-negative integer, got {seed!r}.")
    p = planted_parameters(**planted)
    n, seed = int(users), int(seed)
    if out is not None:
        _check_out(Path(out), force)  # fail before the work, not after
    bar = _Progress(progress, total=_N_STAGES + (out is not None) * len(TABLE_FILES), desc=f"simulate {n:,} users")
    try:
        ds = _simulate(n, seed, p, bar)
        if out is not None:
            write(ds, out, force=force, _bar=bar)
    finally:
        bar.close()
    return ds


def _simulate(n: int, seed: int, p: Planted, bar: _Progress) -> SimulatedDataset:
    rngs = dict(zip(_STREAMS, (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(len(_STREAMS)))))
    start = dt.datetime.fromisoformat(p.start)
    start_us = int((start - dt.datetime(1970, 1, 1)).total_seconds()) * _US
    obs = float(p.observation_days)
    end = start + dt.timedelta(days=obs)

    # --- signups: Bass (weeks), conditioned on adopting within the horizon
    H = float(p.horizon_weeks)
    share_in = float(bass_cdf(H, p.bass_p, p.bass_q))
    weeks = np.sort(bass_inverse_cdf(rngs["signups"].random(n) * share_in, p.bass_p, p.bass_q))
    s = weeks * 7.0  # signup, days after start
    s_sec = np.floor(s * _SECONDS_PER_DAY).astype(np.int64)
    rem = obs - s  # days of observation after signup
    width = max(6, len(str(n - 1)))
    user_ids = pa.array([f"u{i:0{width}d}" for i in range(n)], type=pa.string())
    bar.step("signups")

    # --- segments, attributes, experiment arm, participation type
    seg = (rngs["segments"].random(n) < p.enthusiast_share).astype(np.int64)
    r_attr = rngs["attributes"]
    mean_prior = np.array([p.prior_activity_mean_mainstream, p.prior_activity_mean_enthusiast])[seg]
    prior = r_attr.poisson(r_attr.gamma(p.prior_activity_shape, mean_prior / p.prior_activity_shape)).astype(np.int64)
    r_exp = rngs["experiment"]
    invited = r_exp.random(n) < p.experiment_invited_share
    u_part = r_exp.random(n)
    eng0 = u_part < p.seg("participation_control")[seg]
    eng1 = u_part < p.seg("participation_invited")[seg]
    engaged = np.where(invited, eng1, eng0)
    bar.step("users")

    # --- ideas, adoption and churn, in both arms with common random numbers
    h = p.churn_hazards[seg]
    hr = p.churn_hazard_ratio_adopted
    ethr = rngs["churn"].exponential(1.0, n)
    counts, owner, idea_t, adopt_t = _draw_ideas(rngs["ideas"], seg, rem, ethr, eng1, p)
    first_idea, first_adopt = _group_min(idea_t, counts), _group_min(adopt_t, counts)
    T0, A0, F0 = _lives(h, ethr, hr, eng0, first_idea, first_adopt)
    T1, A1, F1 = _lives(h, ethr, hr, eng1, first_idea, first_adopt)
    T, A, F = (np.where(invited, w1, w0) for w0, w1 in ((T0, T1), (A0, A1), (F0, F1)))
    alive_end = np.minimum(T, rem)  # days after signup the user is observed alive
    churned = T < rem
    bar.step("churn")

    # --- experiment truth: both potential outcomes for every user
    Hx = float(p.experiment_horizon_days)
    full = rem >= Hx
    y0, y1 = T0 > Hx, T1 > Hx
    d0, d1 = F0 <= Hx, F1 <= Hx
    complier = d1 & ~d0
    always, never = d0 & d1, ~d1
    if np.any(d0 & ~d1):  # pragma: no cover - guaranteed by construction
        raise WorkbenchError("simulate: internal error, the invitation removed a participant (monotonicity broken).")
    if np.any((y1 != y0) & ~complier):  # pragma: no cover - guaranteed by construction
        raise WorkbenchError("simulate: internal error, the invitation changed retention of a non-complier.")
    nf = int(full.sum())

    def fmean(x, mask=full):
        return float(x[mask].mean()) if mask.any() else float("nan")

    effect = y1.astype(float) - y0.astype(float)
    experiment_sample = {
        "users_full_horizon": nf,
        "retention_control": fmean(y0),
        "retention_invited": fmean(y1),
        "itt_retention": fmean(effect),
        "took_part_control": fmean(d0),
        "took_part_invited": fmean(d1),
        "complier_share": fmean(complier),
        "always_taker_share": fmean(always),
        "never_taker_share": fmean(never),
        "cace_retention": fmean(effect, full & complier),
        "compliers": int((full & complier).sum()),
    }
    experiment_population = _experiment_population(rngs["population"], p)
    bar.step("experiment truth")

    # --- conversion (first purchase): competes with churn, stops at observation end
    c = p.seg("conversion_hazard")[seg]
    with np.errstate(divide="ignore"):
        C = rngs["conversion"].exponential(1.0, n) / c  # inf where the hazard is 0
    converted = C < alive_end
    Hc = float(p.conversion_horizon_days)
    full_c = rem >= Hc
    conv_by = C < np.minimum(T, Hc)
    bar.step("conversion")

    # --- referrals: tracked imitation signups, referrer drawn among users alive then
    r_ref = rngs["referrals"]
    F_bass = bass_cdf(weeks, p.bass_p, p.bass_q)
    imitation = p.bass_q * F_bass / (p.bass_p + p.bass_q * F_bass)
    designated = r_ref.random(n) < p.referrals_tracked_share * imitation
    n_earlier = np.searchsorted(s_sec, s_sec, side="left")  # users who signed up strictly earlier (whole seconds)
    pending = np.flatnonzero(designated & (n_earlier > 0))
    referrer = np.full(n, -1, dtype=np.int64)
    rr = p.referrals_rate_ratio_cocreator
    rr_max = max(1.0, rr)
    death_abs, co_abs = s + T, s + F
    for _ in range(2000):
        if pending.size == 0:
            break
        j = np.minimum((r_ref.random(pending.size) * n_earlier[pending]).astype(np.int64), n_earlier[pending] - 1)
        tau = s[pending]
        alive = tau < death_abs[j]
        weight = np.where(co_abs[j] <= tau, rr, 1.0) * alive
        accept = r_ref.random(pending.size) * rr_max < weight
        referrer[pending[accept]] = j[accept]
        pending = pending[~accept]
    unattributed = int(designated.sum() - (referrer >= 0).sum())
    referred = referrer >= 0
    channel = np.where(referred, 2, (rngs["channel"].random(n) < p.ads_share).astype(np.int64))
    bar.step("referrals")

    # --- events: activity, feedback, adoption, cancel
    r_act = rngs["activity"]
    n_act = r_act.poisson(p.seg("activity_rate")[seg] * alive_end)
    act_user = np.repeat(np.arange(n, dtype=np.int64), n_act)
    act_t = s[act_user] + r_act.random(act_user.size) * alive_end[act_user]
    keep_idea = engaged[owner] & (idea_t < alive_end[owner])
    fb_user, fb_t = owner[keep_idea], s[owner[keep_idea]] + idea_t[keep_idea]
    keep_adopt = engaged[owner] & (adopt_t < alive_end[owner])
    ad_user, ad_t = owner[keep_adopt], s[owner[keep_adopt]] + adopt_t[keep_adopt]
    cancel_user = np.flatnonzero(churned)
    cancel_t = s[cancel_user] + T[cancel_user]
    del keep_idea, keep_adopt
    bar.step("activity")

    # --- purchases: first at conversion; repeats BG/NBD on a daily grid; Gamma-Gamma amounts
    r_buy = rngs["purchases"]
    cust = np.flatnonzero(converted)
    nc = cust.size
    lam = r_buy.gamma(p.bgnbd_r, 1.0 / p.bgnbd_alpha, nc)  # per week
    drop = r_buy.beta(p.bgnbd_a, p.bgnbd_b, nc)
    nu = r_buy.gamma(p.gg_q, 1.0 / p.gg_gamma, nc)
    dies_after = r_buy.geometric(np.clip(drop, 1e-300, 1.0))
    p_day = np.clip(lam / 7.0, 1e-12, 1.0)
    first_abs = s[cust] + C[cust]
    day = np.floor(first_abs).astype(np.int64)
    n_rep = np.zeros(nc, dtype=np.int64)
    rep_c, rep_day = [], []
    idx = np.arange(nc)
    obs_days = int(p.observation_days)
    while idx.size:
        nxt = day[idx] + r_buy.geometric(p_day[idx])
        ok = nxt < obs_days
        idx, nxt = idx[ok], nxt[ok]
        rep_c.append(idx)
        rep_day.append(nxt)
        day[idx] = nxt
        n_rep[idx] += 1
        idx = idx[n_rep[idx] < dies_after[idx]]
    rep_c = np.concatenate(rep_c) if rep_c else np.zeros(0, np.int64)
    rep_day = np.concatenate(rep_day) if rep_day else np.zeros(0, np.int64)
    rep_t = rep_day + r_buy.integers(0, _SECONDS_PER_DAY, rep_c.size) / _SECONDS_PER_DAY
    buy_c = np.concatenate([np.arange(nc), rep_c])
    buy_t = np.concatenate([first_abs, rep_t])
    amount = np.round(r_buy.gamma(p.gg_p, 1.0 / nu[buy_c]), 2)
    bar.step("purchases")

    # --- kpis market panel
    kpis, kpis_detail = _kpis(rngs["kpis"], p)
    bar.step("kpis")

    # --- assemble and sort events by (user_id, event_at, event_type)
    parts = [
        (act_user, act_t, _ACTIVE),
        (fb_user, fb_t, _FEEDBACK),
        (ad_user, ad_t, _ADOPTED),
        (cancel_user, cancel_t, _CANCEL),
        (cust[buy_c], buy_t, _PURCHASE),
    ]
    ev_user, ev_sec, ev_type, ev_amount = _sorted_events(parts, amount, n, obs_days)
    del parts, act_user, act_t, fb_user, fb_t, ad_user, ad_t
    type_counts = np.bincount(ev_type, minlength=len(EVENT_TYPES))
    events = pa.table(
        {
            "user_id": user_ids.take(pa.array(ev_user)),
            "event_at": pa.array(start_us + ev_sec * _US, type=pa.timestamp("us")),
            "event_type": _decode(ev_type, EVENT_TYPES),
            "amount": pa.array(ev_amount, from_pandas=True),
        },
        schema=SCHEMAS["events"],
    )
    del ev_user, ev_sec, ev_type, ev_amount
    bar.step("events")

    signup_at = _timestamps(s, start_us)
    users_t = pa.table(
        {
            "user_id": user_ids,
            "signup_at": signup_at,
            "channel": _decode(channel, CHANNELS),
            "segment": _decode(seg, SEGMENTS),
            "referred_by": user_ids.take(pa.array(referrer, mask=~referred)),
            "prior_activity": pa.array(prior),
        },
        schema=SCHEMAS["users"],
    )
    assignments = pa.table(
        {
            "user_id": user_ids,
            "experiment": _decode(np.zeros(n, np.int8), (EXPERIMENT,)),
            "arm": _decode(invited.astype(np.int8), ARMS),
            "assigned_at": signup_at,
        },
        schema=SCHEMAS["assignments"],
    )

    # --- latent per-user values (memory only)
    lam_u, drop_u, nu_u = (np.full(n, np.nan) for _ in range(3))
    lam_u[cust], drop_u[cust], nu_u[cust] = lam, drop, nu
    latent = pd.DataFrame(
        {
            "user_id": user_ids.to_pandas(),
            "segment": pd.Categorical.from_codes(seg, SEGMENTS),
            "arm": pd.Categorical.from_codes(invited.astype(np.int8), ARMS),
            "signup_day": s,
            "observed_days": rem,
            "participant_control": eng0,
            "participant_invited": eng1,
            "churn_day": T,  # latent churn time after signup, even beyond observation
            "churn_day_control": T0,
            "churn_day_invited": T1,
            "first_feedback_day": F,
            "first_adoption_day": A,
            "conversion_day": C,  # latent, may fall after churn or observation end
            "retained_control": y0,
            "retained_invited": y1,
            "took_part_control": d0,
            "took_part_invited": d1,
            "purchase_rate_weekly": lam_u,
            "dropout_probability": drop_u,
            "spend_nu": nu_u,
        }
    )

    # --- truth
    seg_dict = lambda arr: {name: float(arr[i]) for i, name in enumerate(SEGMENTS)}  # noqa: E731

    def by_seg(mask_num, mask_den):
        outd = {}
        for i, name in enumerate(SEGMENTS):
            den = mask_den & (seg == i)
            outd[name] = float(mask_num[den].mean()) if den.any() else None
        outd["overall"] = float(mask_num[mask_den].mean()) if mask_den.any() else None
        return outd

    gg_mean = p.gg_p * p.gg_gamma / (p.gg_q - 1) if p.gg_q > 1 else None
    truth = {
        "generator": {
            "name": "workbench.data.simulate",
            "seed": seed,
            "users": n,
            "overrides": p.overrides(),
        },
        "time": {
            "start": start.isoformat(),
            "observation_end": end.isoformat(),
            "observation_days": obs,
            "events_before": "observation_end (strictly)",
            "timestamps": "naive UTC, whole seconds",
        },
        "bass": {
            "p": p.bass_p,
            "q": p.bass_q,
            "m": n,
            "time_unit": "week",
            "horizon_weeks": H,
            "share_within_horizon": share_in,
            "m_effective": n / share_in,
            "peak_week": bass_peak_time(p.bass_p, p.bass_q),
            "definition": "each user's signup time t (weeks after start) is drawn from the Bass CDF F(t) conditioned "
            "on t <= horizon_weeks; the N users are the share F(horizon) of a market of m_effective = N / F(horizon), "
            "which is what a Bass fit on the weekly signups estimates as m",
        },
        "segments": {
            "enthusiast_share": p.enthusiast_share,
            "enthusiast_share_sample": float(seg.mean()),
            "names": list(SEGMENTS),
        },
        "attributes": {
            "prior_activity": {
                "mean": seg_dict([p.prior_activity_mean_mainstream, p.prior_activity_mean_enthusiast]),
                "gamma_shape": p.prior_activity_shape,
                "definition": "pre-signup activity count, negative binomial by segment; it has no effect of its own "
                "beyond the segment it signals (a noisy proxy for the confounder)",
            },
            "channel": {
                "ads_share_of_non_referred": p.ads_share,
                "definition": "referral if referred_by is set; else ads or organic at random; no effect of its own",
            },
        },
        "activity": {"daily_rate": seg_dict(p.seg("activity_rate")), "definition": "Poisson active events per day alive"},
        "churn": {
            "baseline_daily_hazard": seg_dict(p.churn_hazards),
            "segment_hazard_ratio": p.churn_segment_hazard_ratio,
            "hazard_ratio_adopted": hr,
            "definition": "constant daily hazard per segment, multiplied by hazard_ratio_adopted from the time of the "
            "user's first adopted event on; churn is a cancel event at the exact churn time; users alive at "
            "observation end are censored",
        },
        "cocreation": {
            "participation": {
                "control": seg_dict(p.seg("participation_control")),
                "invited": seg_dict(p.seg("participation_invited")),
            },
            "feedback_daily_rate": seg_dict(p.seg("feedback_rate")),
            "adoption_probability": p.adoption_probability,
            "adoption_delay_days": {"distribution": "gamma", "mean": p.adoption_delay_mean_days, "shape": p.adoption_delay_shape},
            "definition": "participants submit feedback (ideas) as a Poisson process while alive; each idea is "
            "adopted with adoption_probability after a gamma delay, recorded only if the user is still alive then; "
            "non-participants never submit feedback",
        },
        "conversion": {
            "daily_hazard": seg_dict(p.seg("conversion_hazard")),
            "horizon_days": Hc,
            "share_by_horizon": by_seg(conv_by, full_c),
            "share_by_horizon_without_churn": {
                name: float(1 - np.exp(-Hc * v)) for name, v in seg_dict(p.seg("conversion_hazard")).items()
            },
            "users_full_horizon": int(full_c.sum()),
            "definition": f"first purchase at a constant daily hazard from signup, only while alive (a user who "
            f"cancels first never converts) and before observation end. share_by_horizon: share of users with at "
            f"least {int(Hc)} days of observation whose first purchase came within {int(Hc)} days of signup and "
            f"before churn (exact for this sample); share_by_horizon_without_churn: 1 - exp(-{int(Hc)} * hazard), "
            "the share had nobody churned",
        },
        "bgnbd": {
            "r": p.bgnbd_r,
            "alpha": p.bgnbd_alpha,
            "a": p.bgnbd_a,
            "b": p.bgnbd_b,
            "time_unit": "week",
            "time_grid": "daily: a living customer buys on each later day with probability lambda/7 (clipped at 1), "
            "so purchases fall on distinct days and the expected purchases per week equal lambda; dropout with "
            "probability p right after each repeat purchase",
            "starts": "at the first purchase (conversion); repeat purchases are the later purchase days",
            "independent_of_churn": True,
            "lambda_clipped_share": float((lam > 7.0).mean()) if nc else 0.0,
        },
        "gamma_gamma": {
            "p": p.gg_p,
            "q": p.gg_q,
            "gamma": p.gg_gamma,
            "mean_amount": gg_mean,
            "definition": "per customer nu ~ Gamma(q, rate gamma); every purchase (first and repeat) has amount "
            "~ Gamma(p, rate nu), rounded to cents",
        },
        "referrals": {
            "rate_ratio_cocreator": rr,
            "tracked_share_of_imitation": p.referrals_tracked_share,
            "referred_users": int(referred.sum()),
            "unattributed": unattributed,
            "definition": "a user signing up at time t (weeks) is a tracked referral with probability "
            "tracked_share_of_imitation * q F(t) / (p + q F(t)) (the tracked part of Bass imitation); the referrer is "
            "drawn among users who signed up earlier and are alive (not cancelled) at t, each weighted 1, or "
            "rate_ratio_cocreator from their first feedback event on. So at any calendar time a user's referral rate "
            "per day alive is rate_ratio_cocreator times higher after their first feedback; the base rate itself "
            "varies with calendar time (estimate it within calendar time, e.g. stratified by week)",
        },
        "experiment": {
            "name": EXPERIMENT,
            "arms": list(ARMS),
            "invited_share": p.experiment_invited_share,
            "assigned_at": "signup_at, every user",
            "horizon_days": Hx,
            "outcome": f"retained: no cancel within {int(Hx)} days after assigned_at (users with a full horizon)",
            "took_part": f"at least one feedback event within {int(Hx)} days after assigned_at",
            "complier": "would take part if invited and would not in control",
            "mechanism": "the invitation turns some non-participants into participants (participation shares by arm "
            "in cocreation.participation); it acts on retention only through adopted ideas, so the exclusion "
            "restriction and monotonicity hold exactly",
            "sample": experiment_sample,
            "population": experiment_population,
        },
        "scaling": {
            "beta": p.scaling_beta,
            "c": p.scaling_c,
            "noise_sd": p.scaling_noise_sd,
            "ar1_rho": p.scaling_ar1_rho,
            "definition": "kpis revenue = c * users**beta * exp(e), e an AR(1) over months within each unit with "
            "coefficient ar1_rho and stationary sd noise_sd",
        },
        "kpis": kpis_detail,
        "counts": {
            "users": n,
            "events": {name: int(type_counts[i]) for i, name in enumerate(EVENT_TYPES)},
            "customers": int(nc),
            "repeat_purchases": int(rep_c.size),
            "churned": int(churned.sum()),
            "participants": int(engaged.sum()),
            "adopters": int((A < rem).sum()),
            "referred": int(referred.sum()),
            "invited": int(invited.sum()),
        },
    }
    truth = _plain(truth)
    metadata = {
        "name": f"workbench-simulated-seed{seed}",
        "description": f"A simulated product's user base ({n:,} users) with planted truth: Bass signups, two segments, "
        "activity, ideas and adoption, churn, conversion, BG/NBD repeat purchases, referrals and a randomized "
        "co-creation invitation.",
        "source": f"workbench simulator, seed {seed}",
        "currency": p.currency,
        "observation_end": end.strftime("%Y-%m-%d %H:%M:%S"),
        "notes": "Every planted value is in truth.json beside the tables (documented in docs/simulator.md). "
        f"The kpis table is a separate market panel ({len(kpis_detail['units'])} markets x {kpis_detail['periods']} "
        "months) for the revenue scaling law; it is not aggregated from users/events. Purchases continue after a "
        "cancel (repeat buying is independent of the membership). No event falls on or after observation_end.",
    }
    ds = SimulatedDataset(
        users=users_t.to_pandas(),
        events=events.to_pandas(),
        assignments=assignments.to_pandas(),
        kpis=kpis,
        truth=truth,
        metadata=metadata,
        latent=latent,
    )
    bar.step("frames")
    return ds


# ====================================================================== writing
def _arrow(name: str, frame: pd.DataFrame) -> pa.Table:
    schema = SCHEMAS[name]
    try:
        table = pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)
    except (KeyError, pa.ArrowException) as exc:
        raise ParameterError(f"write: the {name} frame does not fit the dataset contract ({exc}).") from exc
    return table.replace_schema_metadata(None).combine_chunks()


def _check_out(out: Path, force: bool) -> None:
    if out.exists():
        if not out.is_dir():
            raise ParameterError(f"write: {out} exists and is not a folder; choose another --out path.")
        if any(out.iterdir()) and not force:
            raise ParameterError(
                f"write: {out} already exists and is not empty; refusing to overwrite it. "
                "Choose another --out path, or pass --force (force=True) to replace it."
            )


def write(dataset: SimulatedDataset, out, *, force: bool = False, _bar: _Progress | None = None) -> Path:
    """Write ``dataset`` as a dataset folder at ``out`` and return its path.

    Files: users/events/assignments/kpis ``.parquet``, ``dataset.yml`` and
    ``truth.json``. The folder is written into a temporary sibling and renamed
    into place, so readers never see half a dataset. An existing non-empty
    ``out`` is refused unless ``force=True`` (then it is replaced whole).
    """
    if not isinstance(dataset, SimulatedDataset):
        raise ParameterError(f"write: expected a SimulatedDataset (from simulate()), got {type(dataset).__name__}.")
    out = Path(out)
    _check_out(out, force)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ParameterError(f"write: cannot create the parent folder of {out} ({exc}).") from exc
    token = f"{os.getpid()}-{secrets.token_hex(4)}"
    tmp = out.parent / f".{out.name}.tmp-{token}"
    try:
        tmp.mkdir()
        for name, frame in dataset.tables.items():
            pq.write_table(_arrow(name, frame), tmp / f"{name}.parquet", compression=PARQUET_CODEC, row_group_size=1 << 20)
            if _bar is not None:
                _bar.step(f"write {name}")
        with open(tmp / "dataset.yml", "w", encoding="utf-8") as fh:
            yaml.safe_dump(dataset.metadata, fh, sort_keys=False, allow_unicode=True, width=100)
        with open(tmp / "truth.json", "w", encoding="utf-8") as fh:
            json.dump(dataset.truth, fh, indent=2, allow_nan=False)
            fh.write("\n")
        if out.exists():
            old = out.parent / f".{out.name}.old-{token}"
            os.replace(out, old)
            try:
                os.replace(tmp, out)
            except BaseException:
                os.replace(old, out)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ParameterError(f"write: could not write the dataset to {out} ({exc}).") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
