"""Contract datasets with a randomized experiment whose effects are planted,
and the population value of every metric worked out in closed form.

Used by the experiment tests (tests/test_experiment_readout.py), the coverage
run (benchmarks/coverage_experiments.py) and the benchmark at 1,000,000 users
(benchmarks/bench_experiments.py). Vectorised numpy; 1,000,000 users take a
few seconds.

The product, per user (times in days since signup):

- signup uniform over ``signup_days`` from 2024-01-01; observation end
  ``observation_days`` after that; segment ``a``/``b`` and channel at random;
- assignment to an arm by ``arms`` (arm -> share), ``delay`` days after
  signup (0, or uniform up to ``assign_delay_days``);
- cancel (churn) with hazard ``churn_rate`` before assignment and
  ``churn_rate x churn_hr[arm]`` after;
- the first purchase with hazard ``conversion_rate`` (x ``conversion_hr[arm]``
  after assignment) while not cancelled, then repeat purchases at
  ``repeat_rate x g`` per day (g ~ Gamma(2, 1/2), mean 1, per user) until
  cancel; amounts Gamma(2, 25) (mean 50) x ``spend_multiplier[arm]`` after
  assignment (x ``segment_spend[segment]`` too, for heterogeneity);
- ideas (``feedback``) at ``idea_rate`` (x ``idea_hr[arm]`` after assignment)
  per day until cancel; each adopted with probability 0.3 after Exp(7 days);
- ``active`` events at signup and then at ``activity_rate x h`` per day
  (h ~ Gamma(2, 1/2) per user) until cancel.

:func:`truth` gives, for users assigned at signup and churn by cancel
events, each metric's population value per arm at a horizon H (r = churn
hazard, c = first-purchase hazard, f = idea hazard after assignment):
retained e^(-rH); converted c/(c+r) (1 - e^(-(c+r)H)); feedback the same with
f; purchases converted + mu (1 - e^(-rH))/r - mu (1 - e^(-(r+c)H))/(r+c);
revenue 50 x multiplier x purchases; revenue per purchase 50 x multiplier;
RMST of churn (1 - e^(-rH))/r, of the first purchase / idea
H - c/(c+r) (H - (1 - e^(-(c+r)H))/(c+r)); hazard ratio of churn
``churn_hr[arm]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

START = pd.Timestamp("2024-01-01")
DAY_US = 86_400 * 1_000_000
MEAN_AMOUNT = 50.0
EVENT_TYPES = ["active", "purchase", "feedback", "adopted", "cancel"]


@dataclass
class Design:
    """The planted product and experiment (see the module docstring)."""

    experiment: str = "onboarding"
    arms: dict = field(default_factory=lambda: {"control": 1 / 3, "guided": 1 / 3, "checklist": 1 / 3})
    churn_hr: dict = field(default_factory=lambda: {"guided": 0.8, "checklist": 1.0})
    conversion_hr: dict = field(default_factory=lambda: {"guided": 1.3, "checklist": 1.1})
    spend_multiplier: dict = field(default_factory=lambda: {"guided": 1.0, "checklist": 1.2})
    idea_hr: dict = field(default_factory=lambda: {"guided": 1.5, "checklist": 1.0})
    segment_spend: dict = field(default_factory=dict)  # arm -> {segment: extra multiplier}
    signup_days: float = 120.0
    observation_days: float = 180.0
    assign_delay_days: float = 0.0
    churn_rate: float = 1 / 60
    conversion_rate: float = 1 / 40
    repeat_rate: float = 0.05
    idea_rate: float = 0.02
    activity_rate: float = 0.3
    adoption_probability: float = 0.3


def _piecewise_exp(rng, n, rate, delay, hr):
    """Event times with hazard ``rate`` before ``delay`` and ``rate x hr`` after."""
    e = rng.exponential(1.0, n)
    before = e / rate
    after = delay + (e - rate * delay) / (rate * hr)
    return np.where(before < delay, before, after)


def _poisson_times(rng, lo, hi, rate):
    """A Poisson process of ``rate`` per day on (lo, hi) per user: (user index, time)."""
    length = np.clip(hi - lo, 0, None)
    k = rng.poisson(rate * length)
    idx = np.repeat(np.arange(len(lo)), k)
    return idx, lo[idx] + rng.random(len(idx)) * length[idx]


def simulate(n: int, seed: int, design: Design | None = None) -> dict:
    """users, events and assignments (contract columns) for ``n`` users, as
    pyarrow tables (no Python object per event: 1,000,000 users fit easily)."""
    d = design or Design()
    rng = np.random.default_rng(seed)
    arms = list(d.arms)
    arm = rng.choice(len(arms), n, p=np.array([d.arms[a] for a in arms]) / sum(d.arms.values()))
    arm_names = np.array(arms, dtype=object)[arm]

    def per_arm(mapping):
        return np.array([mapping.get(a, 1.0) for a in arms])[arm]

    signup = rng.random(n) * d.signup_days
    end = d.observation_days - signup  # follow-up from signup, days
    delay = rng.random(n) * d.assign_delay_days
    segment = np.where(rng.random(n) < 0.5, "a", "b")
    churn = _piecewise_exp(rng, n, d.churn_rate, delay, per_arm(d.churn_hr))
    alive_until = np.minimum(churn, end)
    first = _piecewise_exp(rng, n, d.conversion_rate, delay, per_arm(d.conversion_hr))
    converted = first < alive_until

    spend = per_arm(d.spend_multiplier)
    seg_mult = np.ones(n)
    for a, by_seg in d.segment_spend.items():
        for s, m in by_seg.items():
            seg_mult[(arm_names == a) & (segment == s)] *= m
    g = rng.gamma(2.0, 0.5, n)
    r_idx, r_t = _poisson_times(rng, np.where(converted, first, alive_until), alive_until, d.repeat_rate * g)
    p_idx = np.r_[np.flatnonzero(converted), r_idx]
    p_t = np.r_[first[converted], r_t]
    post = p_t >= delay[p_idx]
    amount = rng.gamma(2.0, MEAN_AMOUNT / 2, len(p_idx)) * np.where(post, spend[p_idx] * seg_mult[p_idx], 1.0)

    pre_i, pre_t = _poisson_times(rng, np.zeros(n), np.minimum(delay, alive_until), d.idea_rate)
    post_i, post_t = _poisson_times(rng, np.minimum(delay, alive_until), alive_until, d.idea_rate * per_arm(d.idea_hr))
    i_idx, i_t = np.r_[pre_i, post_i], np.r_[pre_t, post_t]
    adopt = rng.random(len(i_idx)) < d.adoption_probability
    a_t = i_t[adopt] + rng.exponential(7.0, int(adopt.sum()))
    a_idx = i_idx[adopt]
    ok = a_t < alive_until[a_idx]
    a_idx, a_t = a_idx[ok], a_t[ok]
    h = rng.gamma(2.0, 0.5, n)
    act_i, act_t = _poisson_times(rng, np.zeros(n), alive_until, d.activity_rate * h)
    act_i, act_t = np.r_[np.arange(n), act_i], np.r_[np.zeros(n), act_t]
    c_idx = np.flatnonzero(churn < end)

    kind = np.r_[np.zeros(len(act_i), np.int8), np.ones(len(p_idx), np.int8), np.full(len(i_idx), 2, np.int8),
                 np.full(len(a_idx), 3, np.int8), np.full(len(c_idx), 4, np.int8)]
    idx = np.r_[act_i, p_idx, i_idx, a_idx, c_idx]
    t = np.r_[act_t, p_t, i_t, a_t, churn[c_idx]]
    amounts = np.r_[np.full(len(act_i), np.nan), amount, np.full(len(i_idx) + len(a_idx) + len(c_idx), np.nan)]
    ids = pa.array([f"u{i:07d}" for i in range(n)], pa.string())
    signup_us = START.value // 1000 + np.round(signup * DAY_US).astype(np.int64)
    event_us = signup_us[idx] + np.floor(t * DAY_US).astype(np.int64)  # whole microseconds, never before signup
    ts = pa.timestamp("us")
    users = pa.table({"user_id": ids, "signup_at": pa.array(signup_us, ts), "segment": pa.array(segment, pa.string()),
                      "channel": pa.array(np.where(rng.random(n) < 0.3, "ads", "organic"), pa.string())})
    events = pa.table({"user_id": pc.take(ids, pa.array(idx)), "event_at": pa.array(event_us, ts),
                       "event_type": pc.take(pa.array(EVENT_TYPES, pa.string()), pa.array(kind)),
                       "amount": pa.array(amounts, pa.float64(), from_pandas=True)})
    assignments = pa.table({"user_id": ids, "experiment": pa.array([d.experiment] * n, pa.string()),
                            "arm": pc.take(pa.array(arms, pa.string()), pa.array(arm)),
                            "assigned_at": pa.array(signup_us + np.round(delay * DAY_US).astype(np.int64), ts)})
    return {"users": users, "events": events, "assignments": assignments}


def frames(tables: dict) -> dict[str, pd.DataFrame]:
    """The tables of :func:`simulate` as pandas frames."""
    return {name: t.to_pandas() for name, t in tables.items()}


def observation_end(design: Design | None = None) -> pd.Timestamp:
    d = design or Design()
    return START + pd.Timedelta(days=d.observation_days)


def write(tables: dict, folder: Path, design: Design | None = None) -> Path:
    """The tables (pyarrow or pandas) as Parquet plus dataset.yml (with the observation end)."""
    import yaml

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, t in tables.items():
        t = t if isinstance(t, pa.Table) else pa.Table.from_pandas(t, preserve_index=False)
        pq.write_table(t, folder / f"{name}.parquet")
    end = observation_end(design)
    (folder / "dataset.yml").write_text(yaml.safe_dump({"name": "experiment-sim", "observation_end": str(end)}))
    return folder


def truth(design: Design | None = None, horizon: float = 30.0) -> dict:
    """Population value of each metric per arm at ``horizon`` (assignment at
    signup, churn = cancel), and the hazard ratio of churn per arm."""
    d = design or Design()
    out = {}
    H = float(horizon)
    for a in d.arms:
        r = d.churn_rate * d.churn_hr.get(a, 1.0)
        c = d.conversion_rate * d.conversion_hr.get(a, 1.0)
        f = d.idea_rate * d.idea_hr.get(a, 1.0)
        m = d.spend_multiplier.get(a, 1.0)
        conv = c / (c + r) * (1 - np.exp(-(c + r) * H))
        purchases = conv + d.repeat_rate * ((1 - np.exp(-r * H)) / r - (1 - np.exp(-(r + c) * H)) / (r + c))

        def rmst_first(k, r=r, H=H):
            return H - k / (k + r) * (H - (1 - np.exp(-(k + r) * H)) / (k + r))

        out[a] = {
            "retained": float(np.exp(-r * H)),
            "converted": float(conv),
            "feedback": float(f / (f + r) * (1 - np.exp(-(f + r) * H))),
            "purchases": float(purchases),
            "revenue": float(MEAN_AMOUNT * m * purchases),
            "revenue_per_purchase": float(MEAN_AMOUNT * m),
            "time_to_churn": float((1 - np.exp(-r * H)) / r),
            "time_to_purchase": float(rmst_first(c)),
            "time_to_idea": float(rmst_first(f)),
            "churn_hazard_ratio": float(d.churn_hr.get(a, 1.0)),
        }
    return out


def effects(design: Design | None = None, horizon: float = 30.0) -> dict:
    """(metric, arm) -> the planted difference arm minus control at ``horizon``."""
    t = truth(design, horizon)
    return {(metric, a): t[a][metric] - t["control"][metric]
            for a in t if a != "control" for metric in t[a] if metric != "churn_hazard_ratio"}
