"""The simulated world: the contract, and planted truth recovered from the raw
frames by simple, independent computations (files, streaming, memory and the
CLI are in test_simulate_files.py).

The module dataset is drawn in chunks of 4,096 users, so every check below
also covers what crosses chunks (signup order, referrals, tallies)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, special, stats

from workbench.data.simulate import (
    bass_cdf,
    bass_inverse_cdf,
    simulate,
    simulate_bgnbd_summary,
    simulate_gamma_gamma_spend,
    simulate_pareto_nbd_summary,
    simulate_sbg_cohorts,
)

N = 20_000
SEED = 11
CHUNK = 4_096
DAY = pd.Timedelta(days=1)


def within(estimate, truth, se, k=4.0):
    return abs(estimate - truth) <= k * se


@pytest.fixture(scope="module")
def ds():
    return simulate(users=N, seed=SEED, progress=False, chunk_users=CHUNK)


@pytest.fixture(scope="module")
def per_user(ds):
    """One row per user: signup, segment, invitation arm, first time of each
    event type, and the latent churn time (``churn_at``, NaT if alive at the end)."""
    u = ds.users.set_index("user_id")
    first = ds.events.groupby(["user_id", "event_type"]).event_at.min().unstack()
    df = pd.DataFrame({"s": u.signup_at, "seg": u.segment})
    for t in ("cancel", "adopted", "feedback", "purchase"):
        df[t] = first[t].reindex(df.index)
    a = ds.assignments
    df["arm"] = a[a.experiment == "cocreation_invite"].set_index("user_id").arm.reindex(df.index)
    lat = ds.latent.set_index("user_id").reindex(df.index)
    start = pd.Timestamp(ds.truth["time"]["start"])
    end = pd.Timestamp(ds.metadata["observation_end"])
    churn_s = np.floor((lat.signup_day + lat.churn_day).where(lat.churn_day < lat.observed_days) * 86_400)
    df["churn_at"] = (start + pd.to_timedelta(churn_s, unit="s")).astype(df.s.dtype)
    df["stop"] = df["churn_at"].fillna(end)
    df["dead"] = df["churn_at"].notna()
    df["last"] = ds.events.groupby("user_id").event_at.max().reindex(df.index)
    return df


def seconds(x) -> np.ndarray:
    return pd.DatetimeIndex(x).as_unit("s").asi8


# ====================================================================== contract
def test_contract_rules_hold_directly(ds):
    u, ev, a, k = ds.users, ds.events, ds.assignments, ds.kpis
    end = pd.Timestamp(ds.metadata["observation_end"])
    assert u.user_id.is_unique and u.user_id.notna().all()
    assert list(u.user_id) == sorted(u.user_id) and u.signup_at.is_monotonic_increasing  # ids in signup order
    assert set(ev.event_type.unique()) == {"active", "purchase", "feedback", "adopted", "cancel"}
    is_buy = ev.event_type == "purchase"
    assert ev.amount[is_buy].notna().all() and (ev.amount[is_buy] >= 0).all()
    assert ev.amount[~is_buy].isna().all()
    signup = ev.user_id.map(u.set_index("user_id").signup_at)
    assert (ev.event_at >= signup).all()
    assert (ev.event_at < end).all() and (u.signup_at < end).all()
    # sorted by (user_id, event_at, event_type)
    key = ev[["user_id", "event_at", "event_type"]]
    assert key.equals(key.sort_values(["user_id", "event_at", "event_type"], kind="stable").reset_index(drop=True))
    # one cancel at most, and no usage after it (purchases may continue)
    cancels = ev[ev.event_type == "cancel"].set_index("user_id").event_at
    assert cancels.index.is_unique
    usage = ev[ev.event_type.isin(["active", "feedback", "adopted"])]
    assert not (usage.event_at > usage.user_id.map(cancels)).any()
    # purchases on distinct days per customer
    buys = ev[is_buy]
    assert not buys.assign(d=buys.event_at.dt.floor("D")).duplicated(["user_id", "d"]).any()
    # assignments: each experiment at most once per user, at signup, sorted by (user_id, experiment)
    assert not a.duplicated(["experiment", "user_id"]).any()
    assert a[["user_id", "experiment"]].equals(a[["user_id", "experiment"]].sort_values(["user_id", "experiment"]).reset_index(drop=True))
    assert (a.assigned_at.values == a.user_id.map(u.set_index("user_id").signup_at).values).all()
    arms = a.groupby("experiment").arm.unique().map(set).to_dict()
    assert arms == {"cocreation_invite": {"control", "invited"}, "onboarding": {"control", "guided", "checklist"},
                    "aa_test": {"control", "treatment"}}  # fmt: skip
    assert (a.experiment == "cocreation_invite").sum() == N
    # kpis
    assert not k.duplicated(["unit", "period"]).any()
    assert (k[["users", "new_users", "customers", "revenue"]] >= 0).all().all()


def test_window_experiments_assign_exactly_their_windows(ds):
    start = pd.Timestamp(ds.truth["time"]["start"])
    weeks = (ds.users.set_index("user_id").signup_at - start) / DAY / 7
    a = ds.assignments
    for name, (lo, hi) in {"onboarding": (8, 12), "aa_test": (4, 8)}.items():
        t = ds.truth["experiments"][name]
        assert t["window"]["first_week"] == lo and t["window"]["weeks"] == hi - lo
        assert pd.Timestamp(t["window"]["start"]) == start + pd.Timedelta(weeks=lo)
        who = set(a.user_id[a.experiment == name])
        assert who == set(weeks.index[(weeks >= lo) & (weeks < hi)])
        counts = a[a.experiment == name].arm.value_counts().to_dict()
        assert counts == t["assigned"]
        n = len(who)
        for arm, share in t["shares"].items():
            assert within(counts[arm] / n, share, np.sqrt(share * (1 - share) / n))


def test_silent_churners_leave_no_events_after_churning(ds, per_user):
    lat = ds.latent.set_index("user_id")
    churned = lat.churn_day < lat.observed_days
    silent = churned & ~lat.churn_cancels
    df = per_user
    assert df.cancel.notna().sum() == (churned & lat.churn_cancels).sum() == ds.truth["counts"]["cancelled"]
    assert silent.sum() == ds.truth["counts"]["silent"] > 0
    assert df.cancel[silent].isna().all()
    after = df["last"] > df["churn_at"]
    assert not after[silent].any()  # nothing at all after a silent churn, purchases included
    # a cancel is at the churn time (to the second)
    cancelled = df.cancel.notna()
    assert (df.cancel[cancelled] == df.churn_at[cancelled]).all()


# ====================================================================== attributes
def test_messy_attributes(ds):
    u, t = ds.users, ds.truth["attributes"]
    age, country, seg = u.age, u.country, u.segment
    assert within(age.isna().mean(), t["age"]["missing_share"], np.sqrt(0.04 * 0.96 / N))
    assert age.isna().mean() == pytest.approx(t["age"]["missing_share_sample"])
    assert (age.dropna() >= 16).all() and (age.dropna() == age.dropna().round()).all()
    for s in ("mainstream", "enthusiast"):
        a = age[seg == s].dropna()
        assert within(a.mean(), t["age"]["mean"][s], a.std() / np.sqrt(len(a)))
    assert age[seg == "enthusiast"].mean() < age[seg == "mainstream"].mean() - 3  # mildly related to the segment
    assert within(country.isna().mean(), t["country"]["missing_share"], np.sqrt(0.03 * 0.97 / N))
    counts = country.value_counts()
    assert len(counts) >= 45 and (counts / counts.sum() < 0.002).sum() >= 10  # a long tail of rare levels
    assert set(counts.index) <= set(t["country"]["levels"])
    for s in ("mainstream", "enthusiast"):  # the distribution per segment is the documented one
        obs = country[seg == s].value_counts().reindex(t["country"]["levels"], fill_value=0)
        expected = pd.Series(t["country"]["probabilities"][s]) * obs.sum()
        small = expected < 5  # pooled into one cell
        o = obs[~small].tolist() + ([obs[small].sum()] if small.any() else [])
        e = expected[~small].tolist() + ([expected[small].sum()] if small.any() else [])
        assert stats.chisquare(o, e).pvalue > 1e-3
    # no effect of their own: within a segment, the latent churn time does not depend on them
    lat = ds.latent.set_index("user_id").reindex(u.user_id)
    main = (seg == "mainstream").values & age.notna().values
    rho = stats.spearmanr(age.values[main], lat.churn_day.values[main])
    assert abs(rho.statistic) < 4 / np.sqrt(main.sum())


# ====================================================================== signups
def test_enthusiast_share(ds):
    share = (ds.users.segment == "enthusiast").mean()
    assert within(share, 0.25, np.sqrt(0.25 * 0.75 / N))
    assert share == pytest.approx(ds.truth["segments"]["enthusiast_share_sample"])


def test_bass_signup_curve(ds):
    b = ds.truth["bass"]
    weeks = (ds.users.signup_at - pd.Timestamp(ds.truth["time"]["start"])) / DAY / 7
    counts = np.bincount(weeks.astype(int))
    assert abs(counts.argmax() + 0.5 - b["peak_week"]) <= 2
    # the whole distribution matches the truncated Bass CDF (drawn in order, chunk by chunk)
    ks = stats.kstest(weeks.values, lambda t: bass_cdf(t, b["p"], b["q"]) / b["share_within_horizon"])
    assert ks.pvalue > 1e-3
    assert b["m"] == N and b["m_effective"] == pytest.approx(N / b["share_within_horizon"])


def test_bass_truncation_is_recorded_and_respected():
    # slow diffusion: only part of the market adopts within the horizon
    d = simulate(users=4_000, seed=3, progress=False, bass_p=0.002, bass_q=0.05, experiment_population_draws=1_000,
                 chunk_users=1_000)  # fmt: skip
    b = d.truth["bass"]
    share = bass_cdf(104, 0.002, 0.05)
    assert b["share_within_horizon"] == pytest.approx(share) and share < 0.9
    assert b["m_effective"] == pytest.approx(4_000 / share)
    weeks = (d.users.signup_at - pd.Timestamp("2024-01-01")) / DAY / 7
    ks = stats.kstest(weeks.values, lambda t: bass_cdf(t, 0.002, 0.05) / share)
    assert ks.pvalue > 1e-3
    assert bass_inverse_cdf(bass_cdf(17.0, 0.01, 0.3), 0.01, 0.3) == pytest.approx(17.0)


# ====================================================================== churn
def piecewise_rates(df):
    """Churns and days at risk before / after the first adoption, per segment."""
    a = df.adopted.where(df.adopted < df.stop)
    pre = (a.fillna(df.stop) - df.s) / DAY
    post = ((df.stop - a) / DAY).fillna(0.0)
    out = {}
    for seg, i in df.groupby("seg").groups.items():
        d_pre = (df.dead & a.isna())[i].sum()
        d_post = (df.dead & a.notna())[i].sum()
        out[seg] = (d_pre, pre[i].sum(), d_post, post[i].sum())
    return out


def test_churn_hazards_and_hazard_ratio_recoverable(ds, per_user):
    truth = ds.truth["churn"]
    outside = ~per_user.index.isin(ds.assignments.user_id[ds.assignments.arm.isin(["guided"])])  # guided churn less
    rates = piecewise_rates(per_user[outside])
    logs, ws = [], []
    for seg, (d0, e0, d1, e1) in rates.items():
        h0 = d0 / e0
        assert within(np.log(h0), np.log(truth["baseline_daily_hazard"][seg]), np.sqrt(1 / d0))
        lhr, se = np.log((d1 / e1) / h0), np.sqrt(1 / d0 + 1 / d1)
        assert within(lhr, np.log(truth["hazard_ratio_adopted"]), se)
        logs.append(lhr)
        ws.append(1 / se**2)
    pooled = np.average(logs, weights=ws)
    assert within(pooled, np.log(0.6), np.sqrt(1 / sum(ws)))
    seg_hr = (rates["enthusiast"][0] / rates["enthusiast"][1]) / (rates["mainstream"][0] / rates["mainstream"][1])
    se = np.sqrt(1 / rates["enthusiast"][0] + 1 / rates["mainstream"][0])
    assert within(np.log(seg_hr), np.log(truth["segment_hazard_ratio"]), se)


def test_naive_comparisons_are_biased_the_documented_way(per_user):
    df = per_user
    followed = (df.stop - df.s) / DAY
    ever = df.adopted.notna()
    naive = (df.dead[ever].sum() / followed[ever].sum()) / (df.dead[~ever].sum() / followed[~ever].sum())
    assert naive < 0.6 * 0.75  # immortal time makes "ever adopted" look far more protective
    # pooling segments without adjustment: confounded toward "more protective" too
    tot = np.array(list(piecewise_rates(df.assign(seg="all")).values())[0])
    crude = (tot[2] / tot[3]) / (tot[0] / tot[1])
    assert crude < 0.6 * 0.9


def test_cancel_share_and_who_cancels(ds, per_user):
    t = ds.truth["churn"]
    df = per_user
    n_churn = df.dead.sum()
    cancelled = df.cancel.notna()
    assert t["causes"] == {"cancel": cancelled.sum(), "silent": (df.dead & ~cancelled).sum(), "alive": N - n_churn}
    share = cancelled.sum() / n_churn
    assert share == pytest.approx(t["cancel_share_sample"])
    assert within(share, t["cancel_share"], np.sqrt(0.6 * 0.4 / n_churn))
    # paying customers cancel first: with the defaults every churner who has paid cancels
    paid = df.purchase < df.churn_at
    assert t["cancel_probability"]["paying"] == 1.0 and cancelled[df.dead & paid].all()
    assert within(paid[df.dead].mean(), t["paying_share_of_churners"], np.sqrt(0.25 / n_churn))
    p_free = t["cancel_probability"]["non_paying"]
    assert p_free == pytest.approx((t["cancel_share"] - t["paying_share_of_churners"]) / (1 - t["paying_share_of_churners"]))
    free = df.dead & ~paid
    assert within(cancelled[free].mean(), p_free, np.sqrt(p_free * (1 - p_free) / free.sum()))


@pytest.mark.parametrize("share", [0.0, 0.2, 1.0])
def test_cancel_share_over_its_whole_range(share):
    """Below the paying share of churners some paying customers go silent too,
    and their purchases stop at churn; 0 means no cancel at all, 1 no silence."""
    d = simulate(users=6_000, seed=9, progress=False, churn_cancel_share=share, experiment_population_draws=20_000,
                 chunk_users=2_000)  # fmt: skip
    t = d.truth["churn"]
    paying, free = t["cancel_probability"]["paying"], t["cancel_probability"]["non_paying"]
    lat = d.latent.set_index("user_id")
    churned = lat.churn_day < lat.observed_days
    n = churned.sum()
    assert within(t["cancel_share_sample"], share, np.sqrt(max(share * (1 - share), 0.01) / n))
    assert d.truth["counts"]["cancelled"] == (d.events.event_type == "cancel").sum()
    if share == 0.0:
        assert paying == free == 0 and d.truth["counts"]["cancelled"] == 0
    elif share == 1.0:
        assert paying == free == 1 and d.truth["counts"]["silent"] == 0
    else:
        assert free == 0 and paying == pytest.approx(share / t["paying_share_of_churners"])
    assert d.truth["bgnbd"]["independent_of_churn"] is (paying == 1.0)
    # nobody silent has an event after churning, purchases included
    start = pd.Timestamp(d.truth["time"]["start"])
    churn_at = start + pd.to_timedelta(np.floor((lat.signup_day + lat.churn_day) * 86_400).where(churned), unit="s")
    silent = churned & ~lat.churn_cancels
    last = d.events.groupby("user_id").event_at.max().reindex(lat.index)
    assert not (last[silent] > churn_at[silent]).any()
    first_buy = d.events[d.events.event_type == "purchase"].groupby("user_id").event_at.min().reindex(lat.index)
    paying_silent = (silent & (first_buy < churn_at)).sum()
    assert paying_silent > 0 if paying < 1 else paying_silent == 0  # customers go silent only below the paying share


def test_default_rule_classification_recorded_exactly(ds, per_user):
    """The counts truth.json gives for the default churn rule, recomputed from
    the events in pandas (cancel by end - 30 days; else 30 days of silence)."""
    r = ds.truth["churn"]["default_rule"]
    assert (r["churn"], r["churn_after_days"]) == ("cancel_or_inactivity", 30)
    df = per_user
    end = pd.Timestamp(ds.metadata["observation_end"])
    window = pd.Timedelta(days=30)
    last = df["last"].fillna(df.s).combine(df.s, max)
    cancelled = df.cancel.notna() & (df.cancel <= end - window)
    inactive = (end - last) >= window
    rule = np.where(cancelled, "cancel", np.where(inactive, "inactivity", "censored"))
    planted = np.where(df.cancel.notna(), "cancel", np.where(df.dead, "silent", "alive"))
    table = pd.crosstab(planted, rule)
    for pc, row in r["by_planted_cause"].items():
        for rc, count in row.items():
            assert table.get(rc, pd.Series(dtype=int)).get(pc, 0) == count, (pc, rc)
    assert r["causes"] == pd.Series(rule).value_counts().reindex(["cancel", "inactivity", "censored"], fill_value=0).to_dict()
    judged = ~df.dead & (df.s <= end - window)
    assert r["alive_judged"] == judged.sum() and r["alive_misclassified"] == (judged & inactive).sum()
    assert r["alive_misclassified_share"] < 0.01  # habitual use: alive users are rarely silent for 30 days
    assert r["by_planted_cause"]["silent"]["inactivity"] / ds.truth["counts"]["silent"] > 0.98


def test_adjusted_hazard_ratio_under_the_default_rule_covers_the_truth(tmp_path, ds):
    """The brief's check on one dataset: episodes under the default churn rule
    (60% of churners cancel, 40% go silent), Cox adjusted for segment."""
    from workbench import tables
    from workbench.data import load_dataset
    from workbench.models import survival as sv

    ds.write(tmp_path / "d")
    data = load_dataset(tmp_path / "d", validate=False)
    ep = tables.episodes(data, exposure="adopted").to_pandas()
    hr, lo, hi = sv.cox_time_varying(ep, adjust_for=["segment"], keep_residuals=False).hazard_ratio()
    assert lo < ds.truth["churn"]["hazard_ratio_adopted"] < hi
    causes = tables.churn_causes(data).to_pandas().set_index("churn_cause").users.to_dict()
    assert causes == {k: v for k, v in ds.truth["churn"]["default_rule"]["causes"].items() if v}


# ====================================================================== conversion
def test_conversion_shares_and_hazards(ds, per_user):
    truth = ds.truth["conversion"]
    df = per_user[per_user.index.isin(ds.assignments.user_id[ds.assignments.experiment == "onboarding"]) == False]  # noqa: E712
    end = pd.Timestamp(ds.metadata["observation_end"])
    H = truth["horizon_days"] * DAY
    full = (end - df.s) >= H
    conv = (df.purchase - df.s) <= H
    for seg in ("mainstream", "enthusiast"):
        x = df[df.seg == seg]
        # hazard: first purchases per day at risk (until purchase, churn or end)
        stop = pd.concat([x.purchase.fillna(end), x.stop], axis=1).min(axis=1)
        d = x.purchase.notna().sum()
        rate = d / ((stop - x.s) / DAY).sum()
        assert within(np.log(rate), np.log(truth["daily_hazard"][seg]), np.sqrt(1 / d))
        # no purchase after a churn without a prior conversion
        assert not (x.purchase > x.churn_at).any()
        assert truth["share_by_horizon"][seg] < truth["share_by_horizon_without_churn"][seg]
    # exact in-sample shares (whole-second rounding aside), over every user with a full horizon
    df = per_user
    full = (end - df.s) >= H
    conv = (df.purchase - df.s) <= H
    for seg in ("mainstream", "enthusiast"):
        m = full & (df.seg == seg)
        assert conv[m].mean() == pytest.approx(truth["share_by_horizon"][seg], abs=2 / m.sum())
    assert conv[full].mean() == pytest.approx(truth["share_by_horizon"]["overall"], abs=2 / full.sum())


# ====================================================================== experiments
def test_invitation_balanced_and_truth_consistent(ds, per_user):
    df = per_user
    truth = ds.truth["experiment"]
    inv = df.arm == "invited"
    assert within(inv.mean(), 0.5, np.sqrt(0.25 / N))
    end = pd.Timestamp(ds.metadata["observation_end"])
    H = truth["horizon_days"] * DAY
    full = (end - df.s) >= H
    y = ~(df.dead & ((df.churn_at - df.s) <= H))
    took = (df.feedback - df.s) <= H
    # observed outcomes are the potential outcomes of the assigned arm
    lat = ds.latent.set_index("user_id").reindex(df.index)
    y_pot = np.where(inv, lat.retained_invited, lat.retained_control)
    d_pot = np.where(inv, lat.took_part_invited, lat.took_part_control)
    assert (y[full].values != y_pot[full.values]).sum() <= 2
    assert (took[full].values != d_pot[full.values]).sum() <= 2
    # the invited arm co-creates more; ITT and first stage estimate the truth
    first_stage = took[full & inv].mean() - took[full & ~inv].mean()
    assert first_stage > 0.2
    s = truth["sample"]
    se_fs = np.sqrt(took[full & inv].var() / (full & inv).sum() + took[full & ~inv].var() / (full & ~inv).sum())
    assert within(first_stage, s["complier_share"], se_fs)
    itt = y[full & inv].mean() - y[full & ~inv].mean()
    se = np.sqrt(y[full & inv].var() / (full & inv).sum() + y[full & ~inv].var() / (full & ~inv).sum())
    assert within(itt, s["itt_retention"], se)
    # exclusion restriction holds exactly: ITT = complier share x CACE
    assert s["itt_retention"] == pytest.approx(s["complier_share"] * s["cace_retention"])
    assert s["itt_retention"] > 0 and s["complier_share"] + s["always_taker_share"] + s["never_taker_share"] == pytest.approx(1)
    p = truth["population"]
    assert within(s["itt_retention"], p["itt_retention"], np.sqrt(2 * 0.25 / N) / 2 + p["itt_retention_mc_std_err"])
    assert within(s["complier_share"], p["complier_share"], np.sqrt(0.25 / N))


def test_no_effect_when_adoption_does_not_protect():
    d = simulate(users=3_000, seed=2, progress=False, churn_hazard_ratio_adopted=1.0, experiment_population_draws=20_000)
    s = d.truth["experiment"]["sample"]
    assert s["itt_retention"] == 0.0 and s["cace_retention"] == 0.0
    assert s["complier_share"] > 0.2  # the invitation still works on participation
    assert d.truth["experiment"]["population"]["itt_retention"] == 0.0


def window_outcomes(ds, per_user, name: str) -> pd.DataFrame:
    """Per assigned user: arm and the five outcomes at the experiment's horizon, from the frames."""
    t = ds.truth["experiments"][name]
    H = t["horizon_days"] * DAY
    a = ds.assignments[ds.assignments.experiment == name].set_index("user_id")
    ev = ds.events[ds.events.user_id.isin(a.index) & (ds.events.event_type == "purchase")]
    ev = ev[ev.event_at <= ev.user_id.map(a.assigned_at) + H]
    df = per_user.reindex(a.index)
    churn_days = ((df.churn_at - df.s) / DAY).fillna(np.inf)
    return pd.DataFrame(
        {
            "arm": a.arm,
            "converted": ((df.purchase - df.s) <= H).astype(float),
            "purchases": ev.groupby("user_id").size().reindex(a.index, fill_value=0).astype(float),
            "revenue": ev.groupby("user_id").amount.sum().reindex(a.index, fill_value=0.0),
            "retained": (churn_days > t["horizon_days"]).astype(float),
            "rmst_days": np.minimum(churn_days, t["horizon_days"]),
        }
    )


@pytest.mark.parametrize("name", ["onboarding", "aa_test"])
def test_window_experiment_effects_match_the_population_truth(ds, per_user, name):
    t = ds.truth["experiments"][name]
    arms = t["arms"]
    assert arms[0] == "control" and t["horizon_days"] == 30
    pop = t["population"]
    out = window_outcomes(ds, per_user, name)
    for o in t["outcomes"]:
        c = out[out.arm == "control"][o]
        for arm in arms[1:]:
            x = out[out.arm == arm][o]
            diff, se = x.mean() - c.mean(), np.sqrt(x.var() / len(x) + c.var() / len(c))
            e = pop["effects"][arm][o]
            assert within(diff, e["difference"], se + e["difference_mc_std_err"]), (name, arm, o, diff, e)
            by = pop["by_arm"]
            assert e["difference"] == pytest.approx(by[arm][o] - by["control"][o], abs=1e-9)
            if by["control"][o]:
                assert e["relative"] == pytest.approx(by[arm][o] / by["control"][o] - 1, abs=1e-9)
    if name == "aa_test":  # no effect at all, by construction
        assert all(v["difference"] == 0 and v["relative"] == 0 for v in pop["effects"]["treatment"].values())
        assert all(p == {"conversion_hazard_ratio": 1.0, "churn_hazard_ratio": 1.0, "spend_ratio": 1.0} for p in t["arm_parameters"].values())
    else:  # the planted effects show up in the population truth the way the parameters say
        g, c = pop["effects"]["guided"], pop["effects"]["checklist"]
        # a conversion hazard ratio of 1.3 lifts conversion within 30 days by a little less than 30%
        assert 0.2 < g["converted"]["relative"] < 0.3 + 4 * g["converted"]["relative_mc_std_err"]
        assert g["retained"]["difference"] > 0 and g["rmst_days"]["difference"] > 0
        assert c["revenue"]["relative"] == pytest.approx(0.1, abs=0.002) and c["converted"]["difference"] == 0
        assert t["arm_parameters"]["guided"] == {"conversion_hazard_ratio": 1.3, "churn_hazard_ratio": 0.85, "spend_ratio": 1.0}


# ====================================================================== referrals
def test_referrals_point_to_earlier_living_users_across_chunks(ds, per_user):
    u = ds.users.set_index("user_id")
    ref = u[u.referred_by.notna()]
    assert len(ref) == ds.truth["referrals"]["referred_users"] > 0
    assert ref.referred_by.isin(u.index).all()
    assert (u.signup_at.reindex(ref.referred_by).values < ref.signup_at.values).all()
    assert ((u.channel == "referral") == u.referred_by.notna()).all()
    referrer_churn = per_user.churn_at.reindex(ref.referred_by).values
    assert not (referrer_churn <= ref.signup_at.values).any()  # alive when the referral signed up
    # referrers come from earlier chunks too, not only the referral's own
    pos = pd.Series(np.arange(N), index=u.index)
    chunk_of_referral = pos[ref.index].values // 4_096
    chunk_of_referrer = pos[ref.referred_by].values // 4_096
    assert (chunk_of_referrer < chunk_of_referral).mean() > 0.5
    # the number of referrals matches the designation probability (minus unattributed)
    b = ds.truth["bass"]
    F = bass_cdf((u.signup_at - pd.Timestamp(ds.truth["time"]["start"])) / DAY / 7, b["p"], b["q"])
    prob = ds.truth["referrals"]["tracked_share_of_imitation"] * b["q"] * F / (b["p"] + b["q"] * F)
    expected = prob.sum() - ds.truth["referrals"]["unattributed"]
    assert within(len(ref), expected, np.sqrt((prob * (1 - prob)).sum()))


def test_referral_rate_ratio_recoverable_within_calendar_time(ds, per_user):
    """Conditional logit over each referral's risk set (users alive at that moment)."""
    df = per_user
    u = ds.users
    ref = u[u.referred_by.notna()]
    tau = seconds(ref.signup_at)
    s_sorted = np.sort(seconds(df.s))
    d_sorted = np.sort(seconds(df.churn_at.dropna()))
    f_sorted = np.sort(seconds(df.feedback.dropna()))
    fd_sorted = np.sort(seconds(df.churn_at[df.feedback.notna() & df.churn_at.notna()]))
    n_alive = np.searchsorted(s_sorted, tau, "left") - np.searchsorted(d_sorted, tau, "right")
    n1 = np.searchsorted(f_sorted, tau, "right") - np.searchsorted(fd_sorted, tau, "right")
    n0 = n_alive - n1
    fb = df.feedback.reindex(ref.referred_by)
    is_co = (fb.notna() & (fb.values <= ref.signup_at.values)).values

    def score(lr):
        r = np.exp(lr)
        return (is_co - r * n1 / (r * n1 + n0)).sum()

    lr = optimize.brentq(score, -5, 5)
    r = np.exp(lr)
    se = 1 / np.sqrt((r * n1 * n0 / (r * n1 + n0) ** 2).sum())
    assert within(lr, np.log(ds.truth["referrals"]["rate_ratio_cocreator"]), se)


# ====================================================================== purchases
def bgnbd_loglik(params, x, tx, T):
    """BG/NBD individual log-likelihood (Fader, Hardie & Lee 2005, eq. 6)."""
    r, alpha, a, b = np.exp(params)
    A1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    A2 = special.betaln(a, b + x) - special.betaln(a, b)
    A3 = -(r + x) * np.log(alpha + T)
    A4 = np.where(x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + tx), -np.inf)
    return A1 + A2 + np.logaddexp(A3, A4)


def fit_bgnbd(x, tx, T):
    res = optimize.minimize(lambda p: -bgnbd_loglik(p, x, tx, T).sum(), np.log([0.5, 5, 1, 1]), method="L-BFGS-B")
    assert res.success, res.message
    return np.exp(res.x)


def bgnbd_expected(t, r, alpha, a, b):
    """E[X(t)] (FHL 2005, eq. 9)."""
    z = t / (alpha + t)
    return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * special.hyp2f1(r, b, a + b - 1, z))


def customer_summary(d) -> pd.DataFrame:
    """x, t_x, T (weeks) per customer, with the segment."""
    end = pd.Timestamp(d.metadata["observation_end"])
    g = d.events[d.events.event_type == "purchase"].groupby("user_id").event_at
    first, last, n = g.min(), g.max(), g.size()
    seg = d.users.set_index("user_id").segment.reindex(first.index)
    return pd.DataFrame({"x": n - 1, "tx": (last - first) / DAY / 7, "T": (end - first) / DAY / 7, "seg": seg})


def test_repeat_purchases_follow_the_planted_bgnbd_per_segment(ds):
    t = ds.truth["bgnbd"]
    assert t["baseline_segment"] == "mainstream" and [t[k] for k in "r alpha a b".split()] == [0.25, 4.0, 0.8, 2.5]
    cov = t["covariates"]["segment=enthusiast"]
    assert cov == pytest.approx({"g_rate": np.log(1.5), "g_a": 0.0, "g_b": np.log(2.0)})
    assert t["by_segment"]["enthusiast"] == pytest.approx({"r": 0.25, "alpha": 4.0 * np.exp(-cov["g_rate"]), "a": 0.8, "b": 2.5 * np.exp(cov["g_b"])})
    assert t["independent_of_churn"] is True
    cs = customer_summary(ds)
    assert len(cs) == ds.truth["counts"]["customers"]
    for seg, p in t["by_segment"].items():
        c = cs[cs.seg == seg]
        x, T = c.x.values, c["T"].values
        exp_x = bgnbd_expected(T, p["r"], p["alpha"], p["a"], p["b"])
        assert within(x.mean(), exp_x.mean(), x.std() / np.sqrt(len(x)))
        p0 = ((p["alpha"] / (p["alpha"] + T)) ** p["r"]).mean()
        assert within((x == 0).mean(), p0, np.sqrt(p0 * (1 - p0) / len(x)))
    # spend: mean amount per customer outside the checklist arm vs p*gamma/(q-1)
    checklist = ds.assignments.user_id[ds.assignments.arm == "checklist"]
    buys = ds.events[(ds.events.event_type == "purchase") & ~ds.events.user_id.isin(checklist)]
    spend = buys.groupby("user_id").amount.mean()
    assert within(spend.mean(), ds.truth["gamma_gamma"]["mean_amount"], spend.std() / np.sqrt(len(spend)))


def test_product_purchases_fit_bgnbd_per_segment():
    """The daily-grid purchases give (x, t_x, T) whose BG/NBD fit per segment
    lands near each segment's planted values (enthusiasts: alpha / 1.5, b x 2).
    With many customers most churners have paid, more than a 0.6 cancel share
    allows, so every churner cancels here: buying then never stops at churn."""
    d = simulate(users=60_000, seed=4, progress=False, conversion_hazard_mainstream=0.02, churn_cancel_share=1.0,
                 conversion_hazard_enthusiast=0.02, enthusiast_share=0.5, experiment_population_draws=1_000)  # fmt: skip
    assert d.truth["bgnbd"]["independent_of_churn"] is True
    cs = customer_summary(d)
    for seg, t in d.truth["bgnbd"]["by_segment"].items():
        c = cs[cs.seg == seg]
        est = fit_bgnbd(c.x.values, c.tx.values, c["T"].values)
        assert est[0] == pytest.approx(t["r"], rel=0.2) and est[1] == pytest.approx(t["alpha"], rel=0.3), seg
        assert est[2] == pytest.approx(t["a"], rel=0.4) and est[3] == pytest.approx(t["b"], rel=0.4), seg


# ====================================================================== kpis
def test_kpis_scaling_law_recoverable(ds):
    import statsmodels.api as sm

    k = ds.kpis
    assert len(k) == 5 * 36 and k.unit.nunique() == 5
    assert k[["unit", "period"]].equals(k[["unit", "period"]].sort_values(["unit", "period"]).reset_index(drop=True))
    fit = sm.OLS(np.log(k.revenue), sm.add_constant(np.log(k.users))).fit(
        cov_type="cluster", cov_kwds={"groups": k.unit.astype("category").cat.codes}
    )
    beta, se = fit.params.iloc[1], fit.bse.iloc[1]
    assert abs(beta - ds.truth["scaling"]["beta"]) < max(4 * se, 0.05)
    assert np.exp(fit.params.iloc[0]) == pytest.approx(ds.truth["scaling"]["c"], rel=0.5)
    # AR(1) noise: residuals are autocorrelated within a unit
    resid = pd.Series(fit.resid.values, index=k.index).groupby(k.unit)
    lag1 = np.mean([np.corrcoef(r.values[:-1], r.values[1:])[0, 1] for _, r in resid])
    assert lag1 > 0.2


# ====================================================================== pure draws
def test_bgnbd_summary_matches_closed_forms_and_likelihood():
    r, alpha, a, b = 0.25, 4.0, 0.8, 2.5
    T = np.random.default_rng(0).uniform(20, 60, 30_000)
    s = simulate_bgnbd_summary(30_000, r, alpha, a, b, T, seed=1)
    assert list(s.columns[:3]) == ["frequency", "recency", "T"]
    assert ((s.recency == 0) == (s.frequency == 0)).all() and (s.recency <= s["T"]).all()
    ex = bgnbd_expected(T, r, alpha, a, b)
    assert within(s.frequency.mean(), ex.mean(), s.frequency.std() / np.sqrt(len(s)))
    p0 = ((alpha / (alpha + T)) ** r).mean()
    assert within((s.frequency == 0).mean(), p0, np.sqrt(p0 * (1 - p0) / len(s)))
    # maximum likelihood on the published likelihood recovers the planted values
    est = fit_bgnbd(s.frequency.values, s.recency.values, s["T"].values)
    assert est == pytest.approx([r, alpha, a, b], rel=0.25)
    again = simulate_bgnbd_summary(30_000, r, alpha, a, b, T, seed=1)
    pd.testing.assert_frame_equal(s, again)


def test_pareto_nbd_summary_matches_its_mean():
    r, alpha, s_, beta, t = 0.55, 10.6, 0.61, 11.7, 39.0  # CDNOW estimates (Fader et al.)
    d = simulate_pareto_nbd_summary(50_000, r, alpha, s_, beta, t, seed=2)
    expected = r * beta / (alpha * (s_ - 1)) * (1 - (beta / (beta + t)) ** (s_ - 1))
    assert within(d.frequency.mean(), expected, d.frequency.std() / np.sqrt(len(d)))
    assert ((d.recency == 0) == (d.frequency == 0)).all() and (d.recency <= d["T"]).all()


def test_gamma_gamma_spend():
    x = np.random.default_rng(3).integers(0, 8, 40_000)
    m = simulate_gamma_gamma_spend(x, p=6, q=4, gamma=15, seed=4)
    assert m.monetary_value[x == 0].isna().all()
    v = m.monetary_value[x > 0]
    assert within(v.mean(), 6 * 15 / 3, v.std() / np.sqrt(len(v)))
    big = simulate_gamma_gamma_spend(np.full(2_000, 400), p=6, q=4, gamma=15, seed=5)
    assert np.allclose(big.monetary_value, 6 / big.nu, rtol=0.25)  # mean of many draws -> p/nu


def test_sbg_cohorts_match_survival_function():
    alpha, beta = 0.7, 1.2
    c = simulate_sbg_cohorts(alpha, beta, cohort_size=[50_000, 1_000], periods=8, seed=6)
    assert list(c.columns) == ["cohort", "period", "survivors"]
    big = c[c.cohort == 0].survivors.values
    t = np.arange(9)
    surv = np.exp(special.betaln(alpha, beta + t) - special.betaln(alpha, beta))
    assert big[0] == 50_000 and (np.diff(big) <= 0).all()
    assert np.all(np.abs(big / 50_000 - surv) <= 4 * np.sqrt(surv * (1 - surv) / 50_000) + 1e-12)


# ====================================================================== slow: coverage over repeats
@pytest.mark.slow
def test_interval_coverage_over_repeated_simulations():
    """95% Wald intervals from simple estimators on the latent churn times cover
    the planted values about 95% of the time: churn hazard ratio, ITT (population)."""
    reps, hits = 100, {"hr": 0, "itt": 0}
    for rep in range(reps):
        d = simulate(users=4_000, seed=1_000 + rep, progress=False, experiment_population_draws=50_000)
        u = d.users.set_index("user_id")
        lat = d.latent.set_index("user_id").reindex(u.index)
        first = d.events.groupby(["user_id", "event_type"]).event_at.min().unstack()
        end = pd.Timestamp(d.metadata["observation_end"])
        df = pd.DataFrame({"s": u.signup_at, "seg": u.segment, "adopted": first["adopted"].reindex(u.index)})
        dead = lat.churn_day < lat.observed_days
        df["stop"] = (df.s + pd.to_timedelta(lat.churn_day, unit="D")).where(dead, end)
        df["dead"] = dead
        logs, ws = [], []
        for d0, e0, d1, e1 in piecewise_rates(df).values():
            logs.append(np.log((d1 / e1) / (d0 / e0)))
            ws.append(1 / (1 / d0 + 1 / d1))
        est, se = np.average(logs, weights=ws), np.sqrt(1 / sum(ws))
        hits["hr"] += abs(est - np.log(0.6)) <= 1.96 * se
        a = d.assignments[d.assignments.experiment == "cocreation_invite"].set_index("user_id").arm.reindex(u.index)
        inv = a == "invited"
        full = lat.observed_days >= 90
        y = lat.churn_day > 90
        itt = y[inv & full].mean() - y[~inv & full].mean()
        se = np.sqrt(y[inv & full].var() / (inv & full).sum() + y[~inv & full].var() / (~inv & full).sum())
        hits["itt"] += abs(itt - d.truth["experiment"]["population"]["itt_retention"]) <= 1.96 * se
    print({k: v / reps for k, v in hits.items()})
    for name, h in hits.items():
        assert 0.88 <= h / reps <= 0.99, (name, h / reps)


@pytest.mark.slow
def test_adjusted_hazard_ratio_coverage_under_the_default_rule(tmp_path):
    """100 datasets of 3,000 users, 60% of churners cancelling and 40% going
    silent: the adjusted co-creation hazard ratio from episodes under the
    default churn rule covers the planted 0.6 in 90-98% of them."""
    from workbench import tables
    from workbench.data import load_dataset
    from workbench.models import survival as sv

    reps, hits, ests = 100, 0, []
    for rep in range(reps):
        d = simulate(users=3_000, seed=7_000 + rep, out=tmp_path / "d", force=True, progress=False,
                     experiment_population_draws=2_000)  # fmt: skip
        assert d.truth["churn"]["cancel_share"] == 0.6
        ep = tables.episodes(load_dataset(tmp_path / "d", validate=False), exposure="adopted").to_pandas()
        hr, lo, hi = sv.cox_time_varying(ep, adjust_for=["segment"], keep_residuals=False).hazard_ratio()
        hits += lo < 0.6 < hi
        ests.append(np.log(hr))
    print(f"adjusted HR under the default churn rule: coverage {hits / reps:.2f} over {reps} datasets, "
          f"geometric mean {np.exp(np.mean(ests)):.3f} (planted 0.6)")  # fmt: skip
    assert 0.90 <= hits / reps <= 0.98
