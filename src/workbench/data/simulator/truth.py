"""``truth.json`` and ``dataset.yml``: every planted value, the sample truths
tallied over the chunks, and the population truths from Monte Carlo.
docs/simulator.md documents every key."""

from __future__ import annotations

import datetime as dt
import math
import numbers

import numpy as np

from workbench.data.simulator.chunks import DEFAULT_RULE, World
from workbench.data.simulator.draws import bass_cdf, bass_peak_time
from workbench.data.simulator.parameters import (
    AA_ARMS,
    AA_TEST,
    AGE_MIN,
    EVENT_TYPES,
    INVITE,
    INVITE_ARMS,
    ONBOARDING,
    ONBOARDING_ARMS,
    SEGMENTS,
    Planted,
)
from workbench.data.simulator.people import AGE_SHAPE, COUNTRIES, country_probabilities

GENERATOR = "workbench.data.simulate"


def plain(obj):
    """numpy scalars -> Python, for JSON; NaN/inf -> None."""
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, numbers.Integral):
        return int(obj)
    if isinstance(obj, numbers.Real):
        v = float(obj)
        return v if np.isfinite(v) else None
    return obj


def _seg_dict(values) -> dict:
    return {name: float(values[i]) for i, name in enumerate(SEGMENTS)}


def _share(num, den):
    return num / den if den else None


def _window(p: Planted, name: str) -> dict:
    start = dt.datetime.fromisoformat(p.start)
    first, weeks = getattr(p, f"{name}_start_week"), getattr(p, f"{name}_weeks")
    return {
        "first_week": first,
        "weeks": weeks,
        "start": (start + dt.timedelta(weeks=first)).isoformat(),
        "end": (start + dt.timedelta(weeks=first + weeks)).isoformat(),
    }


OUTCOME_DEFINITIONS = {
    "converted": "a first purchase within the horizon after assigned_at (and before churn)",
    "purchases": "purchase events within the horizon after assigned_at (first and repeat), per assigned user",
    "revenue": "sum of purchase amounts within the horizon after assigned_at, per assigned user (0 if none)",
    "retained": "latent churn time beyond the horizon (churned by either cause within it counts as not retained)",
    "rmst_days": "restricted mean time to churn up to the horizon: mean of min(churn time, horizon), in days",
}


def _window_experiment(p: Planted, name: str, t: dict, population: dict) -> dict:
    arms = ONBOARDING_ARMS if name == ONBOARDING else AA_ARMS
    if name == ONBOARDING:
        shares = dict(zip(arms, p.onboarding_shares))
        params = {
            arm: {
                "conversion_hazard_ratio": p.onboarding_effects("conversion_hr")[i],
                "churn_hazard_ratio": p.onboarding_effects("churn_hr")[i],
                "spend_ratio": p.onboarding_effects("spend_ratio")[i],
            }
            for i, arm in enumerate(arms)
        }
        effect = "each arm multiplies the first-purchase hazard, the churn hazard and every purchase amount by its parameters (control: 1)"
    else:
        shares = {"control": 1 - p.aa_test_treatment_share, "treatment": p.aa_test_treatment_share}
        params = {arm: {"conversion_hazard_ratio": 1.0, "churn_hazard_ratio": 1.0, "spend_ratio": 1.0} for arm in arms}
        effect = "none: both arms are the same world, so every true effect is exactly 0"
    w = _window(p, name)
    horizon = getattr(p, f"{name}_horizon_days")
    return {
        "arms": list(arms),
        "shares": shares,
        "window": w,
        "assignment": f"users signing up in weeks [{w['first_week']}, {w['first_week'] + w['weeks']}) after start "
        f"({w['start']} to {w['end']}) are assigned at signup (assigned_at = signup_at), each to an arm at random "
        "with its share, independently of every other experiment; other users are not in the experiment",
        "assigned": {arm: int(t[f"{name}.{arm}"]) for arm in arms},
        "arm_parameters": params,
        "effect": effect,
        "horizon_days": horizon,
        "outcomes": OUTCOME_DEFINITIONS,
        "population": population,
    }


def build_truth(world: World, seed: int, chunk_users: int, whole: dict, windows: dict, kpis_detail: dict) -> dict:
    p, t, n = world.p, world.tally, world.n
    start = dt.datetime.fromisoformat(p.start)
    obs = float(p.observation_days)
    end = start + dt.timedelta(days=obs)
    H = float(p.horizon_weeks)
    share_in = float(bass_cdf(H, p.bass_p, p.bass_q))
    Hc, Hx = float(p.conversion_horizon_days), float(p.experiment_horizon_days)
    gg_mean = p.gg_p * p.gg_gamma / (p.gg_q - 1) if p.gg_q > 1 else None
    probs = whole["cancel_probability"]
    nf = t["invite.full"]
    conv_full = {name: t[f"conversion.full.{name}"] for name in SEGMENTS}
    conv_share = {name: _share(t[f"conversion.converted.{name}"], conv_full[name]) for name in SEGMENTS}
    conv_share["overall"] = _share(sum(t[f"conversion.converted.{s}"] for s in SEGMENTS), sum(conv_full.values()))
    rule_by = {
        pc: {rc: int(t[f"rule.{pc}.{rc}"]) for rc in ("cancel", "inactivity", "censored")} for pc in ("cancel", "silent", "alive")
    }
    rule_counts = {rc: sum(rule_by[pc][rc] for pc in rule_by) for rc in ("cancel", "inactivity", "censored")}
    probs_country = country_probabilities()
    truth = {
        "generator": {"name": GENERATOR, "seed": seed, "users": n, "chunk_users": chunk_users, "overrides": p.overrides()},
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
        "segments": {"enthusiast_share": p.enthusiast_share, "enthusiast_share_sample": t["enthusiasts"] / n, "names": list(SEGMENTS)},
        "attributes": {
            "prior_activity": {
                "mean": _seg_dict([p.prior_activity_mean_mainstream, p.prior_activity_mean_enthusiast]),
                "gamma_shape": p.prior_activity_shape,
                "definition": "pre-signup activity count, negative binomial by segment; it has no effect of its own "
                "beyond the segment it signals (a noisy proxy for the confounder)",
            },
            "channel": {
                "ads_share_of_non_referred": p.ads_share,
                "definition": "referral if referred_by is set; else ads or organic at random; no effect of its own",
            },
            "age": {
                "mean": _seg_dict(p.seg("age_mean")),
                "minimum": AGE_MIN,
                "gamma_shape": AGE_SHAPE,
                "missing_share": p.age_missing_share,
                "missing_share_sample": t["age_missing"] / n,
                "definition": f"age in whole years, {AGE_MIN} + a gamma draw (shape {AGE_SHAPE:g}) with the segment's "
                "mean, rounded; missing (null) at random with missing_share; mildly related to the segment (enthusiasts "
                "are younger) and with no effect of its own",
            },
            "country": {
                "levels": list(COUNTRIES),
                "probabilities": {name: dict(zip(COUNTRIES, probs_country[i])) for i, name in enumerate(SEGMENTS)},
                "missing_share": p.country_missing_share,
                "missing_share_sample": t["country_missing"] / n,
                "definition": "ISO 3166 alpha-2 code drawn from a long-tailed (Zipf-like) distribution, a little more "
                "often some countries for enthusiasts (probabilities per segment); missing (null) at random with "
                "missing_share; no effect of its own",
            },
        },
        "activity": {
            "daily_rate": _seg_dict(p.seg("activity_rate")),
            "gap_shape": p.activity_gap_shape,
            "definition": "active events form a renewal process from signup while the user is alive: gaps between "
            "sessions are gamma distributed with mean 1/daily_rate and shape gap_shape (1 would be Poisson; larger is "
            "more regular, habitual use)",
        },
        "churn": {
            "baseline_daily_hazard": _seg_dict(p.churn_hazards),
            "segment_hazard_ratio": p.churn_segment_hazard_ratio,
            "hazard_ratio_adopted": p.churn_hazard_ratio_adopted,
            "cancel_share": p.churn_cancel_share,
            "paying_share_of_churners": whole["paying_share_of_churners"],
            "cancel_probability": probs,
            "cancel_share_sample": _share(t["churned.cancel"], t["churned"]),
            "causes": {"cancel": int(t["churned.cancel"]), "silent": int(t["churned.silent"]), "alive": int(n - t["churned"])},
            "default_rule": {
                **DEFAULT_RULE,
                "causes": rule_counts,
                "by_planted_cause": rule_by,
                "alive_judged": int(t["rule.alive_judged"]),
                "alive_misclassified": int(t["rule.alive_inactive"]),
                "alive_misclassified_share": _share(t["rule.alive_inactive"], t["rule.alive_judged"]),
                "definition": "how the workbench's default churn rule (a cancel, or a silence of 30 days before the "
                "observation end) classifies each user (causes: cancel, inactivity, censored), against the planted "
                "cause (cancel, silent, alive at observation end); alive_misclassified_share: among users alive at "
                "observation end who signed up at least 30 days before it, the share the rule calls churned by inactivity",
            },
            "definition": "constant daily hazard per segment (times the onboarding arm's churn hazard ratio), multiplied "
            "by hazard_ratio_adopted from the user's first adopted event on. At the churn time a churner either leaves a "
            "cancel event or goes silent (no events of any kind afterwards); cancel_share of churners cancel: paying "
            "customers first (they close an account), so a churner who has paid cancels with cancel_probability.paying "
            "and one who has not with cancel_probability.non_paying, chosen so the expected share of cancels among "
            "churners within observation is cancel_share (paying_share_of_churners is from the population draws). "
            "Users alive at observation end are censored",
        },
        "cocreation": {
            "participation": {
                "control": _seg_dict(p.seg("participation_control")),
                "invited": _seg_dict(p.seg("participation_invited")),
            },
            "feedback_daily_rate": _seg_dict(p.seg("feedback_rate")),
            "adoption_probability": p.adoption_probability,
            "adoption_delay_days": {"distribution": "gamma", "mean": p.adoption_delay_mean_days, "shape": p.adoption_delay_shape},
            "definition": "participants submit feedback (ideas) as a Poisson process while alive; each idea is "
            "adopted with adoption_probability after a gamma delay, recorded only if the user is still alive then; "
            "non-participants never submit feedback",
        },
        "conversion": {
            "daily_hazard": _seg_dict(p.seg("conversion_hazard")),
            "horizon_days": Hc,
            "share_by_horizon": conv_share,
            "share_by_horizon_without_churn": {name: float(1 - np.exp(-Hc * v)) for name, v in _seg_dict(p.seg("conversion_hazard")).items()},
            "users_full_horizon": int(sum(conv_full.values())),
            "definition": f"first purchase at a constant daily hazard from signup (times the onboarding arm's conversion "
            f"hazard ratio), only while alive (a user who churns first never converts) and before observation end. "
            f"share_by_horizon: share of users with at least {int(Hc)} days of observation whose first purchase came "
            f"within {int(Hc)} days of signup and before churn (exact for this sample); share_by_horizon_without_churn: "
            f"1 - exp(-{int(Hc)} * hazard), the share had nobody churned",
        },
        "bgnbd": {
            "r": p.bgnbd_r,
            "alpha": p.bgnbd_alpha,
            "a": p.bgnbd_a,
            "b": p.bgnbd_b,
            "baseline_segment": "mainstream",
            "covariates": {
                "segment=enthusiast": {"g_rate": math.log(p.bgnbd_rate_ratio_enthusiast), "g_a": 0.0, "g_b": math.log(p.bgnbd_b_ratio_enthusiast)}
            },
            "covariate_form": "Fader-Hardie: alpha_i = alpha * exp(-g_rate * x), a_i = a * exp(g_a * x), "
            "b_i = b * exp(g_b * x), with x = 1 for enthusiasts and 0 for mainstream (r is common)",
            "by_segment": {
                name: {"r": p.bgnbd_r, "alpha": p.bgnbd_alphas[i], "a": p.bgnbd_a, "b": p.bgnbd_bs[i]} for i, name in enumerate(SEGMENTS)
            },
            "time_unit": "week",
            "time_grid": "daily: a living customer buys on each later day with probability lambda/7 (clipped at 1), "
            "so purchases fall on distinct days and the expected purchases per week equal lambda; dropout with "
            "probability p right after each repeat purchase",
            "starts": "at the first purchase (conversion); repeat purchases are the later purchase days",
            "independent_of_churn": probs["paying"] >= 1.0,
            "lambda_clipped_share": _share(t["lambda_clipped"], t["customers"]) or 0.0,
        },
        "gamma_gamma": {
            "p": p.gg_p,
            "q": p.gg_q,
            "gamma": p.gg_gamma,
            "mean_amount": gg_mean,
            "definition": "per customer nu ~ Gamma(q, rate gamma); every purchase (first and repeat) has amount "
            "~ Gamma(p, rate nu) times the onboarding arm's spend ratio (1 outside the experiment's treatment arms), "
            "rounded to cents",
        },
        "referrals": {
            "rate_ratio_cocreator": p.referrals_rate_ratio_cocreator,
            "tracked_share_of_imitation": p.referrals_tracked_share,
            "referred_users": int(t["referred"]),
            "unattributed": world.book.unattributed,
            "definition": "a user signing up at time t (weeks) is a tracked referral with probability "
            "tracked_share_of_imitation * q F(t) / (p + q F(t)) (the tracked part of Bass imitation); the referrer is "
            "drawn among users who signed up earlier and are alive (not churned) at t, each weighted 1, or "
            "rate_ratio_cocreator from their first feedback event on. So at any calendar time a user's referral rate "
            "per day alive is rate_ratio_cocreator times higher after their first feedback; the base rate itself "
            "varies with calendar time (estimate it within calendar time, e.g. stratified by week)",
        },
        "experiment": {
            "name": INVITE,
            "arms": list(INVITE_ARMS),
            "invited_share": p.experiment_invited_share,
            "assigned_at": "signup_at, every user",
            "horizon_days": Hx,
            "outcome": f"retained: latent churn time beyond {int(Hx)} days after assigned_at (no cancel and not gone "
            "silent by then; users with a full horizon)",
            "took_part": f"at least one feedback event within {int(Hx)} days after assigned_at",
            "complier": "would take part if invited and would not in control",
            "mechanism": "the invitation turns some non-participants into participants (participation shares by arm "
            "in cocreation.participation); it acts on retention only through adopted ideas, so the exclusion "
            "restriction and monotonicity hold exactly",
            "sample": {
                "users_full_horizon": int(nf),
                "retention_control": _share(t["invite.retained_control"], nf),
                "retention_invited": _share(t["invite.retained_invited"], nf),
                "itt_retention": _share(t["invite.effect"], nf),
                "took_part_control": _share(t["invite.took_part_control"], nf),
                "took_part_invited": _share(t["invite.took_part_invited"], nf),
                "complier_share": _share(t["invite.compliers"], nf),
                "always_taker_share": _share(t["invite.always"], nf),
                "never_taker_share": _share(t["invite.never"], nf),
                "cace_retention": _share(t["invite.effect_compliers"], t["invite.compliers"]),
                "compliers": int(t["invite.compliers"]),
            },
            "population": whole["invite"],
        },
        "experiments": {
            ONBOARDING: _window_experiment(p, ONBOARDING, t, windows[ONBOARDING]),
            AA_TEST: _window_experiment(p, AA_TEST, t, windows[AA_TEST]),
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
            "events": {name: int(t[f"events.{name}"]) for name in EVENT_TYPES},
            "customers": int(t["customers"]),
            "repeat_purchases": int(t["repeat_purchases"]),
            "churned": int(t["churned"]),
            "cancelled": int(t["churned.cancel"]),
            "silent": int(t["churned.silent"]),
            "participants": int(t["participants"]),
            "adopters": int(t["adopters"]),
            "referred": int(t["referred"]),
            "invited": int(t["invited"]),
        },
    }
    return plain(truth)


def build_metadata(truth: dict, p: Planted) -> dict:
    n, seed = truth["generator"]["users"], truth["generator"]["seed"]
    end = dt.datetime.fromisoformat(truth["time"]["observation_end"])
    kp = truth["kpis"]
    return {
        "name": f"workbench-simulated-seed{seed}",
        "description": f"A simulated product's user base ({n:,} users) with planted truth: Bass signups, two segments, "
        "activity, ideas and adoption, churn (cancelled or silent), conversion, BG/NBD repeat purchases, referrals, a "
        "randomized co-creation invitation, an onboarding experiment and an A/A test.",
        "source": f"workbench simulator, seed {seed}",
        "currency": p.currency,
        "observation_end": end.strftime("%Y-%m-%d %H:%M:%S"),
        "notes": "Every planted value is in truth.json beside the tables (documented in docs/simulator.md). "
        f"The kpis table is a separate market panel ({len(kp['units'])} markets x {kp['periods']} months) for the "
        "revenue scaling law; it is not aggregated from users/events. Some churners leave a cancel event, the others "
        "go silent; purchases continue after a cancel (repeat buying is independent of the membership). No event "
        "falls on or after observation_end. Tables are sorted by user_id (events then by event_at).",
    }
