"""Population truths by Monte Carlo over fresh users drawn from the same
generative model: the co-creation invitation's effects, the paying share of
churners (which sets who cancels), and each window experiment's effects
at its horizon, with Monte Carlo standard errors.

Arms are compared with common random numbers: every fresh user is followed
in each arm's world with the same draws, so differences between arms have
small Monte Carlo errors.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from workbench.data.simulator.draws import bass_cdf, bass_inverse_cdf
from workbench.data.simulator.lives import (
    cancel_probabilities,
    churn_hazard,
    conversion_hazard,
    draw_ideas,
    leaves_cancel,
    lives,
)
from workbench.data.simulator.parameters import AA_ARMS, ONBOARDING_ARMS, SEGMENTS, Planted
from workbench.data.simulator.people import draw_people, participation
from workbench.data.simulator.purchases import spend_ratio

SECONDS_PER_DAY = 86_400
OUTCOMES = ("converted", "purchases", "revenue", "retained", "rmst_days")


def fresh_people(rng, m: int, p: Planted, first_week: float, last_week: float):
    """``m`` fresh users signing up (Bass) between two weeks, with everything drawn at signup."""
    lo, hi = (float(bass_cdf(w, p.bass_p, p.bass_q)) for w in (first_week, last_week))
    weeks = bass_inverse_cdf(lo + rng.random(m) * (hi - lo), p.bass_p, p.bass_q)
    return draw_people({k: rng for k in ("segments", "attributes", "age", "country", "experiment", "onboarding", "aa_test")}, weeks, p)


def _mean_se(x) -> tuple[float, float]:
    x = np.asarray(x, dtype=float)
    return float(x.mean()), float(x.std(ddof=1) / np.sqrt(x.size)) if x.size > 1 else float("nan")


# ------------------------------------------------------------------ whole population
def whole_population(rng, p: Planted) -> dict:
    """Users over the whole signup horizon: the paying share of churners within
    observation, the resulting cancel probabilities, and the invitation's
    population effects among users observed for its full horizon."""
    m = int(p.experiment_population_draws)
    obs = float(p.observation_days)
    people = fresh_people(rng, m, p, 0.0, float(p.horizon_weeks))
    s = people.weeks * 7.0
    rem = obs - s
    eng0, eng1 = participation(people, p)
    ethr = rng.exponential(1.0, m)
    h = churn_hazard(people.seg, people.onboarding, p)
    ideas = draw_ideas(rng, people.seg, rem, ethr, h, eng1, p)
    hr = p.churn_hazard_ratio_adopted
    T0, _, F0 = lives(h, ethr, hr, eng0, ideas)
    T1, _, F1 = lives(h, ethr, hr, eng1, ideas)
    T = np.where(people.invited, T1, T0)
    with np.errstate(divide="ignore"):
        C = rng.exponential(1.0, m) / conversion_hazard(people.seg, people.onboarding, p)
    churned = T < rem
    paid = C < T
    paying_share = float(paid[churned].mean()) if churned.any() else 0.0
    probs = cancel_probabilities(p.churn_cancel_share, paying_share)

    Hx = float(p.experiment_horizon_days)
    full = rem >= Hx
    y0, y1 = T0[full] > Hx, T1[full] > Hx
    y = y1.astype(float) - y0.astype(float)
    complier = (F1[full] <= Hx) & ~(F0[full] <= Hx)
    return {
        "paying_share_of_churners": paying_share,
        "paying_share_draws": int(churned.sum()),
        "cancel_probability": {"paying": probs[0], "non_paying": probs[1]},
        "invite": {
            "draws": int(full.sum()),
            "itt_retention": float(y.mean()),
            "itt_retention_mc_std_err": float(y.std(ddof=1) / np.sqrt(y.size)),
            "complier_share": float(complier.mean()),
            "cace_retention": float(y[complier].mean()) if complier.any() else float("nan"),
            "cace_retention_mc_std_err": float(y[complier].std(ddof=1) / np.sqrt(complier.sum())) if complier.sum() > 1 else float("nan"),
            "retention_control": float(y0.mean()),
            "retention_invited": float(y1.mean()),
        },
    }


# ------------------------------------------------------------------ window experiments
def _arm_outcomes(people, s, ethr, ideas, e_conv, u_type, buy, probs, spend_ratio, H: float, p: Planted) -> dict:
    """Per-user outcomes within ``H`` days of signup (= assignment) in one arm's world."""
    eng0, eng1 = participation(people, p)
    h = churn_hazard(people.seg, people.onboarding, p)
    T = lives(h, ethr, p.churn_hazard_ratio_adopted, np.where(people.invited, eng1, eng0), ideas)[0]
    with np.errstate(divide="ignore"):
        C = e_conv / conversion_hazard(people.seg, people.onboarding, p)
    converted = C < np.minimum(T, H)
    obs = float(p.observation_days)
    silent = (T < obs - s) & ~leaves_cancel(u_type, C < T, probs)
    stop = np.where(silent, s + T, np.inf)
    purchases = converted.astype(float)
    revenue = np.zeros(s.size)
    idx = buy["users"]  # users who could convert within H in some arm
    ratio = spend_ratio[idx]
    first = converted[idx]
    revenue[idx] = np.where(first, np.round(buy["gamma"][:, 0] / buy["nu"] * ratio, 2), 0.0)
    day0 = np.floor(s[idx] + C[idx])
    rep_day = day0[:, None] + np.cumsum(buy["gaps"], axis=1)
    rep_t = rep_day + buy["frac"]
    k = np.arange(1, rep_day.shape[1] + 1)[None, :]
    ok = first[:, None] & (k <= buy["dies_after"][:, None]) & (rep_day < obs) & (rep_t <= s[idx, None] + H) & (rep_t < stop[idx, None])
    purchases[idx] += ok.sum(axis=1)
    revenue[idx] += (np.round(buy["gamma"][:, 1:] / buy["nu"][:, None] * ratio[:, None], 2) * ok).sum(axis=1)
    return {"converted": converted, "purchases": purchases, "revenue": revenue, "retained": T > H, "rmst_days": np.minimum(T, H)}


def window_experiment(rng, p: Planted, name: str, probs) -> dict:
    """Per-arm outcome means and effects against control at the experiment's
    horizon, for fresh users signing up in its window."""
    m = int(p.experiment_population_draws)
    first, n_weeks, H = (float(getattr(p, f"{name}_{k}")) for k in ("start_week", "weeks", "horizon_days"))
    arms = ONBOARDING_ARMS if name == "onboarding" else AA_ARMS
    people = fresh_people(rng, m, p, first, first + n_weeks)
    s = people.weeks * 7.0
    eng1 = participation(people, p)[1]
    ethr = rng.exponential(1.0, m)
    h_low = churn_hazard(people.seg, np.zeros(m, np.int8), p) * min(1.0, *p.onboarding_effects("churn_hr"))
    ideas = draw_ideas(rng, people.seg, np.full(m, H), ethr, h_low, eng1, p)
    e_conv = rng.exponential(1.0, m)
    u_type = rng.random(m)
    # purchase draws, common to every arm, for users who could convert within H in some arm
    c_max = p.seg("conversion_hazard")[people.seg] * max(1.0, *p.onboarding_effects("conversion_hr"))
    users = np.flatnonzero(e_conv < c_max * H)
    seg = people.seg[users]
    k = int(np.ceil(H)) + 2  # at most this many repeat days within H days of the first purchase
    lam = rng.gamma(p.bgnbd_r, 1.0 / p.bgnbd_alphas[seg])
    p_day = np.clip(lam / 7.0, 1e-12, 1.0)
    buy = {
        "users": users,
        "dies_after": rng.geometric(np.clip(rng.beta(p.bgnbd_a, p.bgnbd_bs[seg]), 1e-300, 1.0)),
        "gaps": rng.geometric(np.repeat(p_day, k)).reshape(users.size, k),
        "frac": rng.integers(0, SECONDS_PER_DAY, (users.size, k)) / SECONDS_PER_DAY,
        "nu": rng.gamma(p.gg_q, 1.0 / p.gg_gamma, users.size),
        "gamma": rng.standard_gamma(p.gg_p, (users.size, k + 1)),
    }
    results = {}
    for a, arm in enumerate(arms):
        # the onboarding arm is forced; the A/A test's arms are the same world
        world = dataclasses.replace(people, onboarding=np.full(m, a, np.int8)) if name == "onboarding" else people
        results[arm] = _arm_outcomes(world, s, ethr, ideas, e_conv, u_type, buy, probs, spend_ratio(world.onboarding, p), H, p)
    by_arm = {}
    for arm in arms:
        by_arm[arm] = {}
        for o in OUTCOMES:
            mean, se = _mean_se(results[arm][o])
            by_arm[arm][o] = mean
            by_arm[arm][f"{o}_mc_std_err"] = se
    effects = {}
    for arm in arms[1:]:
        effects[arm] = {}
        for o in OUTCOMES:
            xa, xc = results[arm][o].astype(float), results[arms[0]][o].astype(float)
            diff, diff_se = _mean_se(xa - xc)
            ma, mc = xa.mean(), xc.mean()
            if mc > 0:
                cov = np.cov(xa, xc)
                var = cov[0, 0] / mc**2 + ma**2 * cov[1, 1] / mc**4 - 2 * ma * cov[0, 1] / mc**3
                rel, rel_se = float(ma / mc - 1.0), float(np.sqrt(max(var, 0.0) / m))
            else:
                rel, rel_se = float("nan"), float("nan")
            effects[arm][o] = {"difference": diff, "difference_mc_std_err": diff_se, "relative": rel, "relative_mc_std_err": rel_se}
    seg_share = float((people.seg == SEGMENTS.index("enthusiast")).mean())
    return {"draws": m, "enthusiast_share": seg_share, "by_arm": by_arm, "effects": effects}
