"""The words of the co-creation and retention report: every direction
("lower", "higher", "keeps falling"), every "significant" and every choice
of which estimate answers the question is decided here, from the numbers,
and tested on both sides of each branch (tests/test_analyses_cocreation.py)."""

from __future__ import annotations

import math

import numpy as np

from workbench.analyses import format as fmt
from workbench.analyses.wording import estimable

ESTIMATE_NAMES = {
    "naive_ever": "naive: ever co-created (biased)",
    "time_varying": "time-varying Cox, unadjusted",
    "adjusted": "time-varying Cox, adjusted",
    "discrete_time": "discrete-time, aggregated risk sets",
    "landmark": "landmark, unweighted",
    "weighted": "landmark, weighted (IPW)",
}
RULE_WORDS = {
    "cancel": "churn is a cancel event at its time; users without one count as retained to the observation end",
    "inactivity": "churn is a silence of {days} days before the observation end, dated at the last activity",
    "cancel_or_inactivity": "churn is a cancel event or a silence of {days} days before the observation end, whichever comes first",
}


def change(ratio: float, low: float, high: float) -> str | None:
    """"40% lower" or "39% higher" when the interval of a hazard or rate
    ratio excludes 1; None when it includes 1 (no clear difference)."""
    if high < 1:
        return f"{fmt.percent(1 - ratio, 0)} lower"
    if low > 1:
        return f"{fmt.percent(ratio - 1, 0)} higher"
    return None


def headline(hr: float, lo: float, hi: float, exposed_word: str) -> str:
    """The answer in one sentence: protective, harmful, or no clear difference."""
    est = f"hazard ratio {fmt.with_interval(hr, lo, hi)}"
    if not estimable(hr, lo, hi):
        return "Whether co-creation keeps users cannot be estimated on this dataset (the hazard ratio's interval is undefined)."
    c = change(hr, lo, hi)
    if c is None:
        return (f"Not clearly: once users have {exposed_word}, their churn rate is not clearly different from that of users who "
                f"have not (yet) ({est}; the interval includes no effect).")
    if hi < 1:
        return f"Yes: once users have {exposed_word}, they churn at a rate {c} than users who have not (yet) ({est})."
    return f"No, the opposite: once users have {exposed_word}, they churn at a rate {c} than users who have not (yet) ({est})."


def which_estimate(name: str, adjust: list[str], n_users: int | None, *, aggregated: bool = False) -> str:
    """Why this estimate answers the question (``aggregated``: the
    piecewise-exponential model on aggregated risk sets stood in for the Cox model)."""
    who = f" on {fmt.plural(n_users, 'user')}" if n_users else ""
    if aggregated and name in ("adjusted", "time_varying"):
        how = f"adjusted for {fmt.listing(adjust)}" if name == "adjusted" and adjust else "without adjustment"
        return (f"This is the time-varying piecewise-exponential model ({how}){who}, fitted on risk sets aggregated per tenure bin "
                "in the engine: like the Cox model it compares users at the same tenure and counts each user as a co-creator only "
                "from the moment they co-create.")
    if name == "adjusted":
        return (f"This is the time-varying Cox model adjusted for {fmt.listing(adjust)}{who}: it compares users at the same "
                "tenure, counts each user as a co-creator only from the moment they co-create, and removes the differences "
                "those attributes explain.")
    if name == "time_varying":
        return (f"This is the time-varying Cox model{who}, without adjustment (no adjustment attributes were available): it "
                "compares users at the same tenure and counts each user as a co-creator only from the moment they co-create, "
                "but users who co-create may differ in other ways.")
    return ("This is the discrete-time model on aggregated risk sets: the same comparison at equal tenure, computed from counts "
            "per tenure bin.")


def naive_contrast(naive_hr: float, best_hr: float) -> str:
    """How far the naive 'ever co-created' estimate is from the answer, and why."""
    if not (estimable(naive_hr) and estimable(best_hr)) or naive_hr <= 0 or best_hr <= 0:
        return "The naive comparison of users who ever co-created with those who never did could not be estimated."
    gap = math.log(naive_hr) - math.log(best_hr)
    if abs(gap) < 0.05:
        how = "here it happens to land close to the answer"
    elif gap < 0:
        how = "so it makes co-creation look more protective than it is"
    else:
        how = "so it makes co-creation look less protective than it is"
    return (f"The naive comparison of users who ever co-created with those who never did says {fmt.ratio(naive_hr)}: it credits "
            f"co-creators with the time they had to survive before they could co-create (immortal time), {how}.")


def no_contrast_reason(exposed_events, unexposed_events, any_exposed: bool, any_unexposed: bool) -> str | None:
    """Why co-creators and others cannot be compared (not identified), or None if they can."""
    if not any_exposed:
        return "nobody co-created while at risk, so there is no one to compare with the others"
    if not any_unexposed:
        return "everybody co-created from the start, so there is no one who had not to compare with"
    if exposed_events == 0 or unexposed_events == 0:
        who = "co-creators" if exposed_events == 0 else "users who had not co-created"
        return f"no churn was observed among {who}, so the hazard ratio is not identified"
    return None


def experiment_headline(diff: float, lo: float, hi: float, horizon: int, srm_mismatch: bool) -> str:
    if srm_mismatch:
        return ("The randomized invitation experiment cannot be trusted yet: its arm sizes do not match the intended split "
                "(sample ratio mismatch).")
    if not estimable(diff, lo, hi) or not hi > lo:  # e.g. nobody retained in either arm: no spread, no estimate
        return f"The invitation experiment's effect on retention {horizon} days after assignment is not estimable (the outcome does not vary)."
    est = f"{fmt.points(diff)}, {fmt.interval(lo, hi, fmt.points)}"
    if lo > 0:
        return f"The randomized invitation to co-create raised retention {horizon} days after assignment ({est})."
    if hi < 0:
        return f"The randomized invitation to co-create lowered retention {horizon} days after assignment ({est})."
    return f"The randomized invitation to co-create had no clear effect on retention {horizon} days after assignment ({est})."


def referral_headline(rr: float, lo: float, hi: float) -> str:
    if lo > 1:
        return f"Co-creators bring in more new users: {fmt.ratio(rr)} times as many referrals per day as others ({fmt.interval(lo, hi)})."
    if hi < 1:
        return f"Co-creators bring in fewer new users: {fmt.ratio(rr)} times as many referrals per day as others ({fmt.interval(lo, hi)})."
    return f"Co-creators do not clearly bring in more new users (referral rate ratio {fmt.with_interval(rr, lo, hi)})."


def data_sentence(name, users, events: dict, churn, days, n_cancel, n_inactive, exposed_word, exposure, adjust) -> str:
    counts = ", ".join(f"{fmt.count(n)} {k}" for k, n in sorted(events.items()))
    rule = RULE_WORDS[churn].format(days=days)
    causes = f"{fmt.plural(n_cancel, 'user')} churned by cancelling and {fmt.count(n_inactive)} by going silent"
    return (f"Dataset {name}: {fmt.plural(users, 'user')}, {counts}. Churn rule ({churn}): {rule}; {causes}. "
            f"A user counts as a co-creator from the moment they first {exposed_word} ({exposure}). "
            + (f"Adjusting for: {fmt.listing(adjust)}." if adjust else "No adjustment attributes are available."))


def curves_sentence(km, surv) -> str:
    med = km.medians["median"]
    if km.group:
        parts = [f"half of {g} users are gone after {fmt.count(m)} days" if np.isfinite(m) else
                 f"over half of {g} users are still retained at the end" for g, m in med.items()]
        return (f"Retention differs by segment ({'; '.join(parts)}; log-rank {fmt.p_is(km.logrank.p_value)}). "
                "Segments that co-create more and churn less confound any comparison of co-creators with others.") \
            if km.logrank.p_value < 0.05 else (f"Retention does not clearly differ by segment ({'; '.join(parts)}; log-rank {fmt.p_is(km.logrank.p_value)}).")
    m = med.iloc[0]
    return (f"{fmt.percent(surv['churned'].mean(), 0)} of {fmt.count(len(surv))} users churned during follow-up; "
            + (f"half were gone after {fmt.count(m)} days." if np.isfinite(m) else "over half were still retained at the end."))


def landmark_sentence(curves: dict, lm_data, horizon: int) -> str:
    parts = []
    for d, c in curves.items():
        share = lm_data.loc[lm_data["landmark"] == d, "exposed"].mean()
        h = min(horizon, float(c.curves["time"].max()))
        s = c.survival_at(h)["survival"]
        co, other = s.get("1", np.nan), s.get("0", np.nan)
        parts.append(f"at day {d:g}, {fmt.percent(share, 0)} of active users had co-created; {h:g} days later "
                     f"{fmt.percent(co, 0)} of them were still retained against {fmt.percent(other, 0)} of the others")
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


def cox_finding(hr, lo, hi, adjust: list[str], naive_hr) -> str:
    what = f"adjusted for {fmt.listing(adjust)}" if adjust else "unadjusted"
    c = change(hr, lo, hi)
    head = (f"While exposed, users churn at a hazard {c} than users who have not (yet) co-created" if c else
            "While exposed, users do not churn at a clearly different hazard than users who have not (yet) co-created")
    text = f"{head} (hazard ratio {fmt.with_interval(hr, lo, hi)}; time-varying, {what})."
    if naive_hr is not None:
        text += " " + naive_contrast(naive_hr, hr)
    return text


def ph_finding(p: float, rho: float, method: str = "schoenfeld") -> str:
    """The proportional-hazards check in words: Schoenfeld slope test (exact
    Cox) or ``method="tenure_interaction"`` (aggregated fit)."""
    if method == "tenure_interaction":
        if p >= 0.01:
            return (f"Tenure-interaction test {fmt.p_is(p)}: no evidence that the co-creation hazard ratio changes with tenure.")
        return (f"Tenure-interaction test {fmt.p_is(p)}: the co-creation hazard ratio changes with tenure (see its value per tenure "
                "band in the figure): read the single hazard ratio as an average over tenure.")
    if p >= 0.01:
        return f"Slope test {fmt.p_is(p)}: no evidence that the co-creation hazard ratio drifts with tenure."
    return (f"Slope test {fmt.p_is(p)}: the co-creation hazard ratio drifts with tenure (correlation {rho:+.2f} with "
            f"time, {'weakening' if rho > 0 else 'strengthening'} the effect as tenure grows if it is protective): read the single "
            "hazard ratio as an average over tenure.")


def discrete_finding(hr_lo_hi, n_rows: int, bin_days: int, diff, ref_rows, *, aggregated_ref: bool = False) -> str:
    text = (f"On {fmt.plural(n_rows, 'aggregated row')} (bins of {bin_days} days), the hazard ratio is "
            f"{fmt.estimate(*hr_lo_hi)}")
    if diff is not None and aggregated_ref:
        text += f", {fmt.signed_percent(diff)} from the piecewise-exponential model on the same risk sets"
    elif diff is not None:
        text += f", {fmt.signed_percent(diff)} from the Cox model on {fmt.plural(ref_rows, 'episode')}"
    return text + "."


def ipw_finding(covariates, smd, hw, lw, uw, hu, evalue_sentence, rare) -> str:
    c = change(hw, lw, uw)
    effect = (f"goes with a churn hazard {c}" if c else "goes with no clearly different churn hazard")
    balance = ("the groups are alike on them (the largest standardized difference is "
               f"{fmt.fixed(smd, 3)})" if smd < 0.1 else f"the groups still differ (largest standardized difference {fmt.fixed(smd, 3)})")
    return (f"Propensity from {fmt.listing(covariates)}; after weighting, {balance}. Having co-created by the landmark {effect} "
            f"(weighted hazard ratio {fmt.with_interval(hw, lw, uw)}; unweighted {fmt.ratio(hu)}). E-value "
            f"({'rare' if rare else 'common'}-outcome conversion): {evalue_sentence}.")


def comparison_finding(naive, best, lo, hi, adjust, planted) -> str:
    model = f"adjusted for {fmt.listing(adjust)}" if adjust else "without adjustment"
    text = (f"The naive comparison puts the hazard ratio at {fmt.ratio(naive)}; the time-varying model {model} puts it at "
            f"{fmt.estimate(best, lo, hi)}.")
    if naive < 1 and best < 1 and naive < best:
        text += (f" On the log scale the naive number overstates the protective effect by a factor of "
                 f"{fmt.fixed(math.log(naive) / math.log(best), 1)}.")
    elif naive > best and best < 1:
        text += " The naive number understates the protective effect."
    if planted is not None:
        inside = lo <= planted <= hi
        text += f" The planted truth of this simulated dataset is {planted:g}, {'inside' if inside else 'outside'} the interval."
    return text


def dose_label(key: str) -> str:
    """``dose=1`` -> ``1``, ``dose>=3`` -> ``3 or more``."""
    k = str(key)
    if ">=" in k:
        return k.split(">=")[1] + " or more"
    return k.split("=")[-1]


def trend_words(hrs: list[float], los: list[float], his: list[float]) -> str:
    """What the dose levels show, from their direction and intervals: "keeps
    falling" only when every step falls, "keeps rising" only when every step
    rises, "alike" when every interval overlaps the first level's."""
    h = np.asarray(hrs, dtype=float)
    if len(h) < 2 or not np.isfinite(h).all():
        return "one level"
    steps = np.diff(h)
    overlap = all(lo <= his[0] and hi >= los[0] for lo, hi in zip(los[1:], his[1:]))
    if overlap:
        return "alike"
    if (steps < 0).all():
        return "keeps falling"
    if (steps > 0).all():
        return "keeps rising"
    return "no steady trend"


def dose_finding(labels, hrs, los, his, trend, tlo, thi) -> str:
    levels = ", ".join(f"{fmt.ratio(v)} at {lab}" for lab, v in zip(labels, hrs))
    text = (f"Against users with no adopted idea yet, the hazard ratio is {levels} adopted ideas; per additional idea "
            f"{fmt.estimate(trend, tlo, thi)}. ")
    shape = trend_words(hrs, los, his)
    text += {
        "alike": "The levels are alike: the first adopted idea carries the effect; more do not clearly add to it.",
        "keeps falling": "The hazard keeps falling with more adopted ideas.",
        "keeps rising": "The hazard keeps rising with more adopted ideas.",
        "no steady trend": "The hazard does not move steadily with more adopted ideas.",
        "one level": "There is only one level to compare.",
    }[shape]
    return text


def referral_finding(rr, lo, hi, exposure, crude_co, crude_other) -> str:
    c = change(rr, lo, hi)
    head = (f"Within the same calendar period, a co-creator (from their first {exposure} on) refers {fmt.ratio(rr)} times as many "
            f"new users per day alive as a user who has not co-created ({fmt.interval(lo, hi)})"
            + ("." if c else ", an interval that includes no difference."))
    crude_ratio = crude_co / crude_other if crude_other and np.isfinite(crude_co) and np.isfinite(crude_other) else np.nan
    if np.isfinite(crude_ratio):
        agree = (crude_ratio > 1) == (rr > 1)
        head += (f" Pooled over all periods the crude rates are {fmt.fixed(crude_co, 2)} against {fmt.fixed(crude_other, 2)} per "
                 f"1,000 days (a ratio of {fmt.ratio(crude_ratio)}), "
                 + ("which points the same way but mixes calendar periods." if agree else
                    "which points the other way: co-creating time comes later, when referrals are rarer for everyone, so the crude comparison misleads."))
    return head


def experiment_finding(srm_mismatch, srm_p, horizon, arm, rate_t, rate_c, diff, lo, hi, p, users, excluded, cace, cuped, truth) -> str:
    srm = ("The arm sizes do not match the intended split (sample ratio mismatch): do not trust the estimates below until the "
           "assignment is explained. " if srm_mismatch else
           f"Arm sizes match the intended split (SRM {fmt.p_is(srm_p)}). ")
    if not estimable(diff, lo, hi) or not hi > lo:
        return (f"{srm}Retention {horizon} days after assignment is {fmt.percent(rate_t)} in {arm} against {fmt.percent(rate_c)} in "
                "control: the outcome does not vary, so the invitation's effect is not estimable.")
    verdict = "raised" if lo > 0 else "lowered" if hi < 0 else "did not clearly change"
    text = (f"{srm}Retention {horizon} days after assignment is {fmt.percent(rate_t)} in {arm} against {fmt.percent(rate_c)} in "
            f"control: the invitation {verdict} retention by {fmt.points(diff)} ({fmt.interval(lo, hi, fmt.points)}, {fmt.p_is(p)})"
            + (f", among {fmt.count(users)} users observed for the whole horizon ({fmt.count(excluded)} assigned too late are left out)" if excluded else "")
            + ". ")
    if cace is not None:
        tp0, tp1, est, clo, chi = cace
        text += (f"The invitation raised taking part from {fmt.percent(tp0, 0)} to {fmt.percent(tp1, 0)}; for those who took part "
                 f"because they were invited, retention changed by {fmt.points(est)} ({fmt.interval(clo, chi, fmt.points)}). ")
    if cuped is not None:
        covs, narrower, est, clo, chi = cuped
        how = (f"narrows the interval by {fmt.percent(narrower, 0)}" if narrower >= 0.005 else
               "barely changes the interval (the pre-assignment values predict retention poorly)")
        text += f"Using pre-assignment {fmt.listing(covs)} (CUPED) {how}: {fmt.points(est)} ({fmt.interval(clo, chi, fmt.points)})."
    if truth:
        text += f" Planted truth of this simulated dataset: ITT {fmt.points(truth['itt'])}, CACE {fmt.points(truth['cace'])}."
    return text


def power_finding(n, baseline, mde, mde_rel, observed) -> str:
    text = (f"With {fmt.count(n)} users per arm and baseline retention {fmt.percent(baseline)}, an experiment detects (80% power, "
            f"5% two-sided) a change of {fmt.points(mde)} or more ({fmt.signed_percent(mde_rel, 0)} relative)")
    if observed is None:
        return text + "."
    detected = abs(observed) >= mde
    return text + f"; the observed effect of {fmt.points(observed)} would {'be' if detected else 'not reliably be'} detected at that size."
