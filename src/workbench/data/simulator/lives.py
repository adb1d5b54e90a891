"""How long users stay and what they do that changes it: ideas and their
adoption, churn (in both worlds of the co-creation invitation, with common
random numbers), conversion to customer, and whether a churner leaves a
``cancel`` event or goes silent.

Times are in days after the user's signup; ``inf`` means never.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workbench.data.simulator.parameters import Planted


def group_min(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Per-group minimum of ``values`` laid out in contiguous groups of ``counts`` (inf if empty)."""
    out = np.full(counts.shape[0], np.inf)
    nonempty = counts > 0
    if values.size:
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        out[nonempty] = np.minimum.reduceat(values, starts[nonempty])
    return out


def churn_hazard(seg: np.ndarray, onboarding: np.ndarray, p: Planted) -> np.ndarray:
    """Daily churn hazard before any adoption: the segment's, times the onboarding arm's ratio."""
    mult = np.where(onboarding >= 0, p.onboarding_effects("churn_hr")[np.maximum(onboarding, 0)], 1.0)
    return p.churn_hazards[seg] * mult


def conversion_hazard(seg: np.ndarray, onboarding: np.ndarray, p: Planted) -> np.ndarray:
    """Daily first-purchase hazard: the segment's, times the onboarding arm's ratio."""
    mult = np.where(onboarding >= 0, p.onboarding_effects("conversion_hr")[np.maximum(onboarding, 0)], 1.0)
    return p.seg("conversion_hazard")[seg] * mult


@dataclass
class Ideas:
    """Ideas of every potential participant over the longest life they could have."""

    count: np.ndarray  # per user
    owner: np.ndarray  # per idea: user index
    t: np.ndarray  # per idea: submitted, days after signup
    adopt_t: np.ndarray  # per idea: adopted (inf if never)
    first: np.ndarray  # per user: first idea
    first_adopt: np.ndarray  # per user: first adoption among the ideas


def draw_ideas(rng, seg, span, ethr, h, eligible, p: Planted) -> Ideas:
    """Ideas of users ``eligible`` to participate, up to ``span`` days after signup
    or the longest life their churn threshold allows (ideas after a user's
    actual churn are dropped later)."""
    longest = ethr / (h * min(1.0, p.churn_hazard_ratio_adopted))
    span = np.where(eligible, np.minimum(span, longest), 0.0)
    counts = rng.poisson(p.seg("feedback_rate")[seg] * span)
    owner = np.repeat(np.arange(seg.size), counts)
    t = rng.random(owner.size) * span[owner]
    adopted = rng.random(owner.size) < p.adoption_probability
    delay = rng.gamma(p.adoption_delay_shape, p.adoption_delay_mean_days / p.adoption_delay_shape, owner.size)
    adopt_t = np.where(adopted, t + delay, np.inf)
    return Ideas(counts, owner, t, adopt_t, group_min(t, counts), group_min(adopt_t, counts))


def lives(h, ethr, hr, engaged, ideas: Ideas):
    """Churn under a hazard ``h`` that drops to ``h*hr`` at the first adoption.

    ``ethr`` ~ Exp(1) is each user's cumulative-hazard threshold (common to
    both arms of the invitation). Returns the churn time ``T``, the first
    adoption ``A`` and the first feedback ``F`` (inf where none happens
    before churn) of users who participate where ``engaged``.
    """
    cand = np.where(engaged, ideas.first_adopt, np.inf)
    t0 = ethr / h
    adopted = cand < t0
    T = np.where(adopted, cand + (ethr - h * np.where(adopted, cand, 0.0)) / (h * hr), t0)
    A = np.where(adopted, cand, np.inf)
    fi = np.where(engaged, ideas.first, np.inf)
    F = np.where(fi < T, fi, np.inf)
    return T, A, F


def cancel_probabilities(cancel_share: float, paying_share: float) -> tuple[float, float]:
    """``(paying, non_paying)``: the chance that a churner who has / has not paid leaves a cancel.

    Paying customers cancel first (they have an account to close): if the
    planted share of churners who cancel is at least the paying share of
    churners, every paying churner cancels and non-paying ones cancel with the
    probability that brings the total to ``cancel_share``; otherwise no
    non-paying churner cancels and paying ones cancel with probability
    ``cancel_share / paying_share``.
    """
    if paying_share >= 1.0:
        return cancel_share, 0.0
    if cancel_share >= paying_share:
        return 1.0, (cancel_share - paying_share) / (1.0 - paying_share)
    return cancel_share / paying_share, 0.0


def leaves_cancel(u, paid, probabilities) -> np.ndarray:
    """Whether each churner leaves a cancel event, from uniforms ``u``."""
    paying, non_paying = probabilities
    return np.where(paid, u < paying, u < non_paying)
