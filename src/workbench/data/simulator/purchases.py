"""Purchases of customers: the first at conversion, repeats by BG/NBD on a
daily grid (enthusiasts with their own alpha and b), amounts by Gamma-Gamma
times the onboarding arm's spend ratio."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workbench.data.simulator.parameters import Planted

SECONDS_PER_DAY = 86_400


@dataclass
class Purchases:
    owner: np.ndarray  # per purchase: customer index (0..nc-1); first purchases first, in customer order
    t: np.ndarray  # per purchase: days after start
    amount: np.ndarray  # per purchase, rounded to cents
    rate: np.ndarray  # per customer: lambda, purchases per week
    dropout: np.ndarray  # per customer: p
    nu: np.ndarray  # per customer: Gamma-Gamma nu
    repeats: int  # repeat purchases kept


def spend_ratio(onboarding: np.ndarray, p: Planted) -> np.ndarray:
    """Multiplier of every purchase amount: the onboarding arm's spend ratio (1 outside the experiment)."""
    return np.where(onboarding >= 0, p.onboarding_effects("spend_ratio")[np.maximum(onboarding, 0)], 1.0)


def draw_purchases(rng_buy, rng_spend, seg, first_abs, stop_abs, spend_ratio, p: Planted) -> Purchases:
    """Purchases of ``seg.size`` customers whose first purchase is at
    ``first_abs`` (days after start).

    Each later day a living customer buys with probability lambda/7 (so
    purchases fall on distinct days and there are lambda a week on average)
    and drops out with probability p right after each repeat purchase.
    Purchases stop at observation end, and at ``stop_abs`` (a silent churn;
    inf for everyone else).
    """
    nc = seg.size
    obs_days = int(p.observation_days)
    lam = rng_buy.gamma(p.bgnbd_r, 1.0 / p.bgnbd_alphas[seg])  # per week
    drop = rng_buy.beta(p.bgnbd_a, p.bgnbd_bs[seg])
    dies_after = rng_buy.geometric(np.clip(drop, 1e-300, 1.0))
    p_day = np.clip(lam / 7.0, 1e-12, 1.0)
    day = np.floor(first_abs).astype(np.int64)
    n_rep = np.zeros(nc, dtype=np.int64)
    rep_c, rep_day = [], []
    idx = np.arange(nc)
    while idx.size:
        nxt = day[idx] + rng_buy.geometric(p_day[idx])
        ok = nxt < obs_days
        idx, nxt = idx[ok], nxt[ok]
        rep_c.append(idx)
        rep_day.append(nxt)
        day[idx] = nxt
        n_rep[idx] += 1
        idx = idx[n_rep[idx] < dies_after[idx]]
    rep_c = np.concatenate(rep_c) if rep_c else np.zeros(0, np.int64)
    rep_day = np.concatenate(rep_day) if rep_day else np.zeros(0, np.int64)
    rep_t = rep_day + rng_buy.integers(0, SECONDS_PER_DAY, rep_c.size) / SECONDS_PER_DAY
    keep = rep_t < stop_abs[rep_c]
    rep_c, rep_t = rep_c[keep], rep_t[keep]
    nu = rng_spend.gamma(p.gg_q, 1.0 / p.gg_gamma, nc)
    owner = np.concatenate([np.arange(nc), rep_c])
    t = np.concatenate([first_abs, rep_t])
    amount = np.round(rng_spend.gamma(p.gg_p, 1.0 / nu[owner]) * spend_ratio[owner], 2)
    return Purchases(owner, t, amount, lam, drop, nu, int(rep_c.size))
