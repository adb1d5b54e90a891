"""Referrals: who brought whom, across every chunk of users drawn so far.

A :class:`ReferralBook` keeps three whole-second times per user (signup,
churn, first feedback; 12 bytes a user) for every user drawn so far, so a
new user's referrer can be any earlier user, not only one of the same chunk.
"""

from __future__ import annotations

import numpy as np

from workbench.data.simulator.draws import bass_cdf
from workbench.data.simulator.parameters import Planted

SECONDS_PER_DAY = 86_400
NEVER = np.iinfo(np.int32).max  # a time after any observation end
MAX_ROUNDS = 2000  # rejection rounds before a designated referral is left unattributed


def whole_seconds(days: np.ndarray) -> np.ndarray:
    """Days after start -> whole seconds after start (int32; inf -> NEVER)."""
    return np.minimum(np.floor(days * SECONDS_PER_DAY), NEVER).astype(np.int32)


class ReferralBook:
    """Signup, churn and first-feedback seconds of every user drawn so far."""

    def __init__(self, n: int, p: Planted):
        self.p = p
        self.signup = np.empty(n, np.int32)
        self.death = np.empty(n, np.int32)
        self.cocreator = np.empty(n, np.int32)
        self.unattributed = 0

    def attribute(self, rng, lo: int, weeks, signup_days, death_days, first_feedback_days) -> np.ndarray:
        """Record users ``lo, lo+1, ...`` (times in days after start) and draw
        their referrers: the global index of the referrer, or -1.

        A user signing up at week t is a tracked referral with probability
        ``referrals_tracked_share * q F(t) / (p + q F(t))``; the referrer is drawn
        among users who signed up strictly earlier (whole seconds) and are
        alive then, with weight 1, or ``referrals_rate_ratio_cocreator`` from
        their first feedback on (rejection sampling).
        """
        p, k = self.p, weeks.size
        hi = lo + k
        s_sec = whole_seconds(signup_days)
        self.signup[lo:hi] = s_sec
        self.death[lo:hi] = whole_seconds(death_days)
        self.cocreator[lo:hi] = whole_seconds(first_feedback_days)
        F = bass_cdf(weeks, p.bass_p, p.bass_q)
        imitation = p.bass_q * F / (p.bass_p + p.bass_q * F)
        designated = rng.random(k) < p.referrals_tracked_share * imitation
        n_earlier = np.searchsorted(self.signup[:hi], s_sec, side="left")
        pending = np.flatnonzero(designated & (n_earlier > 0))
        referrer = np.full(k, -1, dtype=np.int64)
        rr = p.referrals_rate_ratio_cocreator
        rr_max = max(1.0, rr)
        for _ in range(MAX_ROUNDS):
            if pending.size == 0:
                break
            ne = n_earlier[pending]
            j = np.minimum((rng.random(pending.size) * ne).astype(np.int64), ne - 1)
            tau = s_sec[pending]
            weight = np.where(self.cocreator[j] <= tau, rr, 1.0) * (tau < self.death[j])
            accept = rng.random(pending.size) * rr_max < weight
            referrer[pending[accept]] = j[accept]
            pending = pending[~accept]
        self.unattributed += int(designated.sum() - (referrer >= 0).sum())
        return referrer
