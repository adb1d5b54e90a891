"""Who the users are: Bass signup times (drawn in signup order, one chunk of
users at a time), segments, attributes (prior activity, age, country) and
the experiment arms each user is assigned at signup."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workbench.data.simulator.draws import bass_cdf, bass_inverse_cdf
from workbench.data.simulator.parameters import AGE_MIN, Planted

#: ISO 3166 country codes in order of frequency: a long tail of rare levels
COUNTRIES = (
    "US", "IN", "DE", "GB", "BR", "FR", "ID", "JP", "MX", "CA", "IT", "ES", "PL", "NL", "TR", "KR", "AU", "PH",
    "VN", "NG", "AR", "SE", "CO", "EG", "ZA", "BE", "CH", "AT", "PT", "CZ", "RO", "CL", "PE", "MY", "TH", "PK",
    "BD", "UA", "GR", "HU", "DK", "FI", "NO", "IE", "NZ", "SG", "IL", "KE", "MA", "IS", "LU", "MT", "EE", "UY",
    "CY",
)  # fmt: skip
#: frequency of the k-th country is proportional to (k + 1) ** -COUNTRY_ZIPF
COUNTRY_ZIPF = 1.6
#: enthusiasts are this much more frequent in these countries (a mild link to the segment)
COUNTRY_ENTHUSIAST_TILT = {"DE": 1.6, "JP": 1.6, "KR": 1.6, "PL": 1.6, "SE": 1.6, "FI": 1.6}
AGE_SHAPE = 4.0  # gamma shape of age - AGE_MIN


def country_probabilities() -> np.ndarray:
    """``[mainstream, enthusiast] x COUNTRIES`` probabilities (before missing values)."""
    base = (np.arange(len(COUNTRIES)) + 1.0) ** -COUNTRY_ZIPF
    tilt = np.array([COUNTRY_ENTHUSIAST_TILT.get(c, 1.0) for c in COUNTRIES])
    probs = np.vstack([base, base * tilt])
    return probs / probs.sum(axis=1, keepdims=True)


class Signups:
    """Bass signup times, in weeks after start, drawn in signup order a chunk at a time.

    The n signups are the sorted draws of n uniforms on (0, F(horizon)) mapped
    through the inverse Bass CDF. They are drawn exactly in order: the last
    draw of the next chunk of k out of m remaining is ``a + (F - a) *
    Beta(k, m - k + 1)`` given the previous last draw ``a``, and the k - 1
    before it are sorted uniforms between the two.
    """

    def __init__(self, rng: np.random.Generator, n: int, p: Planted):
        self.rng, self.remaining, self.p = rng, int(n), p
        self.share_in = float(bass_cdf(p.horizon_weeks, p.bass_p, p.bass_q))
        self.last = 0.0

    def next(self, k: int) -> np.ndarray:
        rng, top = self.rng, self.share_in
        end = self.last + (top - self.last) * rng.beta(k, self.remaining - k + 1)
        inner = np.sort(self.last + rng.random(k - 1) * (end - self.last))
        u = np.append(inner, end)
        self.last, self.remaining = end, self.remaining - k
        return bass_inverse_cdf(u, self.p.bass_p, self.p.bass_q)


@dataclass
class People:
    """Per-user values drawn at signup (one chunk of users)."""

    weeks: np.ndarray  # signup, weeks after start
    seg: np.ndarray  # 0 mainstream, 1 enthusiast
    prior: np.ndarray  # prior_activity (int)
    age: np.ndarray  # float, NaN where missing
    country: np.ndarray  # index into COUNTRIES, -1 where missing
    invited: np.ndarray  # bool: cocreation_invite arm
    u_part: np.ndarray  # the uniform behind participation (common to both invitation arms)
    onboarding: np.ndarray  # -1 not in the experiment, else index into ONBOARDING_ARMS
    aa_test: np.ndarray  # -1 not in the experiment, else index into AA_ARMS

    @property
    def n(self) -> int:
        return self.seg.size


def in_window(weeks: np.ndarray, first_week: float, n_weeks: float) -> np.ndarray:
    return (weeks >= first_week) & (weeks < first_week + n_weeks)


def draw_arm(u: np.ndarray, shares) -> np.ndarray:
    """Arm index for uniforms ``u`` given the arms' shares (summing to 1)."""
    cut = np.cumsum(shares)[:-1]
    return np.searchsorted(cut, u, side="right").astype(np.int8)


def draw_people(rngs: dict, weeks: np.ndarray, p: Planted) -> People:
    """Segments, attributes and experiment arms of users who sign up at ``weeks``."""
    n = weeks.size
    seg = (rngs["segments"].random(n) < p.enthusiast_share).astype(np.int64)
    r = rngs["attributes"]
    mean_prior = np.array([p.prior_activity_mean_mainstream, p.prior_activity_mean_enthusiast])[seg]
    prior = r.poisson(r.gamma(p.prior_activity_shape, mean_prior / p.prior_activity_shape)).astype(np.int64)
    r = rngs["age"]
    excess = p.seg("age_mean")[seg] - AGE_MIN
    age = np.round(AGE_MIN + r.gamma(AGE_SHAPE, excess / AGE_SHAPE))
    age[r.random(n) < p.age_missing_share] = np.nan
    r = rngs["country"]
    cdf = np.cumsum(country_probabilities(), axis=1)
    u = r.random(n)
    country = np.where(seg == 1, np.searchsorted(cdf[1], u * cdf[1, -1]), np.searchsorted(cdf[0], u * cdf[0, -1]))
    country = np.minimum(country, len(COUNTRIES) - 1).astype(np.int16)
    country[r.random(n) < p.country_missing_share] = -1
    r = rngs["experiment"]
    invited = r.random(n) < p.experiment_invited_share
    u_part = r.random(n)
    onboarding = np.where(
        in_window(weeks, p.onboarding_start_week, p.onboarding_weeks), draw_arm(rngs["onboarding"].random(n), p.onboarding_shares), -1
    ).astype(np.int8)
    aa = np.where(
        in_window(weeks, p.aa_test_start_week, p.aa_test_weeks),
        (rngs["aa_test"].random(n) < p.aa_test_treatment_share).astype(np.int8),
        -1,
    ).astype(np.int8)
    return People(weeks, seg, prior, age, country, invited, u_part, onboarding, aa)


def participation(people: People, p: Planted) -> tuple[np.ndarray, np.ndarray]:
    """Whether each user participates in co-creation in the control and in the invited world."""
    return people.u_part < p.seg("participation_control")[people.seg], people.u_part < p.seg("participation_invited")[people.seg]
