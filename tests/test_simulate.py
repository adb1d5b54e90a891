"""The simulator: files, determinism, the contract, and planted truth recovered
from the raw frames by simple, independent computations."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import optimize, special, stats

from workbench.cli import main
from workbench.data.simulate import (
    Planted,
    SimulatedDataset,
    bass_cdf,
    bass_inverse_cdf,
    simulate,
    simulate_bgnbd_summary,
    simulate_gamma_gamma_spend,
    simulate_pareto_nbd_summary,
    simulate_sbg_cohorts,
    write,
)
from workbench.errors import ParameterError, WorkbenchError

N = 20_000
SEED = 11
DAY = pd.Timedelta(days=1)
DOCS = Path(__file__).resolve().parents[1] / "docs" / "simulator.md"


def within(estimate, truth, se, k=4.0):
    return abs(estimate - truth) <= k * se


def sha(path: Path) -> dict[str, str]:
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(path.iterdir())}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim") / "ds"
    ds = simulate(users=N, seed=SEED, out=out, progress=False)
    return ds, out


@pytest.fixture(scope="module")
def ds(written):
    return written[0]


@pytest.fixture(scope="module")
def per_user(ds):
    """One row per user: signup, segment, arm, first time of each event type."""
    u = ds.users.set_index("user_id")
    first = ds.events.groupby(["user_id", "event_type"]).event_at.min().unstack()
    df = pd.DataFrame({"s": u.signup_at, "seg": u.segment})
    for t in ("cancel", "adopted", "feedback", "purchase"):
        df[t] = first[t].reindex(df.index)
    df["arm"] = ds.assignments.set_index("user_id").arm.reindex(df.index)
    end = pd.Timestamp(ds.metadata["observation_end"])
    df["stop"] = df["cancel"].fillna(end)
    df["dead"] = df["cancel"].notna()
    return df


def seconds(x) -> np.ndarray:
    return pd.DatetimeIndex(x).as_unit("s").asi8


# ====================================================================== files
def test_writes_the_tables_dataset_yml_and_truth(written):
    ds, out = written
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["users.parquet", "events.parquet", "assignments.parquet", "kpis.parquet", "dataset.yml", "truth.json"]
    )
    assert json.loads((out / "truth.json").read_text()) == ds.truth
    meta = yaml.safe_load((out / "dataset.yml").read_text())
    assert meta["source"] == f"workbench simulator, seed {SEED}"
    assert {"name", "description", "currency", "observation_end", "notes"} <= set(meta)
    assert "separate market panel" in meta["notes"]
    assert pd.Timestamp(meta["observation_end"]) == pd.Timestamp(ds.truth["time"]["observation_end"])
    # the files read back equal the frames held in memory
    back = pd.read_parquet(out / "events.parquet")
    pd.testing.assert_frame_equal(back, ds.events)
    pd.testing.assert_frame_equal(pd.read_parquet(out / "users.parquet"), ds.users)
    assert not list(out.parent.glob(".ds.*")), "temporary folders left behind"


def test_truth_keys_are_documented(ds):
    text = DOCS.read_text()
    missing = []
    for section, body in ds.truth.items():
        for key, value in body.items():
            name = f"{section}.{key}"
            if name not in text:
                missing.append(name)
            if section == "experiment" and isinstance(value, dict):
                missing += [f"{name}.{k}" for k in value if f"{name}.{k}" not in text]
    assert not missing, f"truth keys missing from docs/simulator.md: {missing}"


def test_planted_parameters_are_documented():
    import dataclasses
    import itertools
    import re

    text = DOCS.read_text()
    named = set(re.findall(r"`([a-z0-9_]+)`", text))
    for pattern in re.findall(r"`([a-z0-9_{},]+)`", text):  # expand e.g. participation_{control,invited}_{a,b}
        parts = re.split(r"\{([a-z0-9_,]+)\}", pattern)
        options = [p.split(",") if i % 2 else [p] for i, p in enumerate(parts)]
        named |= {"".join(c) for c in itertools.product(*options)}
    missing = [f.name for f in dataclasses.fields(Planted) if f.name not in named]
    assert not missing, f"parameters missing from docs/simulator.md: {missing}"


# ====================================================================== determinism
def test_same_seed_same_bytes_and_other_seed_differs(written, tmp_path):
    _, out = written
    again = simulate(users=N, seed=SEED, progress=False)
    write(again, tmp_path / "again")
    assert sha(tmp_path / "again") == sha(out)
    other = simulate(users=2_000, seed=SEED + 1, progress=False, out=tmp_path / "other")
    assert other.truth["generator"]["seed"] == SEED + 1
    assert sha(tmp_path / "other")["users.parquet"] != sha(out)["users.parquet"]


def test_changing_one_parameter_leaves_other_streams_alone():
    a = simulate(users=3_000, seed=5, progress=False, experiment_population_draws=1_000)
    b = simulate(users=3_000, seed=5, progress=False, experiment_population_draws=1_000, gg_p=3.0)
    pd.testing.assert_series_equal(a.users.signup_at, b.users.signup_at)
    pd.testing.assert_series_equal(a.users.segment, b.users.segment)
    buy = lambda d: d.events[d.events.event_type == "purchase"]  # noqa: E731
    assert buy(a).event_at.tolist() == buy(b).event_at.tolist()  # same purchase times ...
    assert buy(a).amount.mean() > 1.5 * buy(b).amount.mean()  # ... half the planted spend shape


# ====================================================================== contract
def test_validate_dataset_accepts_it(written):
    from workbench.data import validate_dataset

    report = validate_dataset(written[1])
    assert report.rows["users"] == N
    assert all(why is None for why in report.supports.values()), report.supports


def test_contract_rules_hold_directly(ds, written):
    import pyarrow.parquet as pq

    u, ev, a, k = ds.users, ds.events, ds.assignments, ds.kpis
    end = pd.Timestamp(ds.metadata["observation_end"])
    schema = pq.read_schema(written[1] / "events.parquet")
    assert str(schema.field("event_at").type) == "timestamp[us]"
    assert schema.metadata is None or b"pandas" not in schema.metadata
    assert u.user_id.is_unique and u.user_id.notna().all()
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
    after = usage.event_at > usage.user_id.map(cancels)
    assert not after.any()
    # purchases on distinct days per customer
    buys = ev[is_buy]
    assert not buys.assign(d=buys.event_at.dt.floor("D")).duplicated(["user_id", "d"]).any()
    # assignments: every user once, at signup, arms named as documented
    assert len(a) == N and a.user_id.is_unique
    assert set(a.arm) == {"control", "invited"} and set(a.experiment) == {"cocreation_invite"}
    assert (a.assigned_at.values == u.signup_at.values).all()
    # kpis
    assert not k.duplicated(["unit", "period"]).any()
    assert (k[["users", "new_users", "customers", "revenue"]] >= 0).all().all()


# ====================================================================== planted truth
def test_enthusiast_share(ds):
    share = (ds.users.segment == "enthusiast").mean()
    assert within(share, 0.25, np.sqrt(0.25 * 0.75 / N))
    assert share == pytest.approx(ds.truth["segments"]["enthusiast_share_sample"])


def test_bass_signup_curve(ds):
    b = ds.truth["bass"]
    weeks = (ds.users.signup_at - pd.Timestamp(ds.truth["time"]["start"])) / DAY / 7
    counts = np.bincount(weeks.astype(int))
    assert abs(counts.argmax() + 0.5 - b["peak_week"]) <= 2
    # the whole distribution matches the truncated Bass CDF
    ks = stats.kstest(weeks.values, lambda t: bass_cdf(t, b["p"], b["q"]) / b["share_within_horizon"])
    assert ks.pvalue > 1e-3
    assert b["m"] == N and b["m_effective"] == pytest.approx(N / b["share_within_horizon"])


def test_bass_truncation_is_recorded_and_respected():
    # slow diffusion: only part of the market adopts within the horizon
    d = simulate(users=4_000, seed=3, progress=False, bass_p=0.002, bass_q=0.05, experiment_population_draws=1_000)
    b = d.truth["bass"]
    share = bass_cdf(104, 0.002, 0.05)
    assert b["share_within_horizon"] == pytest.approx(share) and share < 0.9
    assert b["m_effective"] == pytest.approx(4_000 / share)
    weeks = (d.users.signup_at - pd.Timestamp("2024-01-01")) / DAY / 7
    ks = stats.kstest(weeks.values, lambda t: bass_cdf(t, 0.002, 0.05) / share)
    assert ks.pvalue > 1e-3
    assert bass_inverse_cdf(bass_cdf(17.0, 0.01, 0.3), 0.01, 0.3) == pytest.approx(17.0)


def piecewise_rates(df):
    """Cancels and days at risk before / after the first adoption, per segment."""
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
    rates = piecewise_rates(per_user)
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


def test_conversion_shares_and_hazards(ds, per_user):
    truth = ds.truth["conversion"]
    df = per_user
    end = pd.Timestamp(ds.metadata["observation_end"])
    H = truth["horizon_days"] * DAY
    full = (end - df.s) >= H
    conv = (df.purchase - df.s) <= H
    for seg in ("mainstream", "enthusiast"):
        m = full & (df.seg == seg)
        # exact in-sample share (whole-second rounding aside)
        assert conv[m].mean() == pytest.approx(truth["share_by_horizon"][seg], abs=2 / m.sum())
        assert truth["share_by_horizon"][seg] < truth["share_by_horizon_without_churn"][seg]
        # hazard: first purchases per day at risk (until purchase, cancel or end)
        x = df[df.seg == seg]
        stop = pd.concat([x.purchase.fillna(end), x.stop], axis=1).min(axis=1)
        d = x.purchase.notna().sum()
        rate = d / ((stop - x.s) / DAY).sum()
        assert within(np.log(rate), np.log(truth["daily_hazard"][seg]), np.sqrt(1 / d))
        # no purchase after a cancel without a prior conversion
        assert not (x.purchase > x.cancel).any()
    assert conv[full].mean() == pytest.approx(truth["share_by_horizon"]["overall"], abs=2 / full.sum())


def test_experiment_balanced_and_truth_consistent(ds, per_user):
    df = per_user
    truth = ds.truth["experiment"]
    inv = df.arm == "invited"
    assert within(inv.mean(), 0.5, np.sqrt(0.25 / N))
    end = pd.Timestamp(ds.metadata["observation_end"])
    H = truth["horizon_days"] * DAY
    full = (end - df.s) >= H
    y = ~(df.dead & ((df.cancel - df.s) <= H))
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


def test_referrals_point_to_earlier_living_users(ds, per_user):
    u = ds.users.set_index("user_id")
    ref = u[u.referred_by.notna()]
    assert len(ref) == ds.truth["referrals"]["referred_users"] > 0
    assert ref.referred_by.isin(u.index).all()
    assert (u.signup_at.reindex(ref.referred_by).values < ref.signup_at.values).all()
    assert ((u.channel == "referral") == u.referred_by.notna()).all()
    referrer_cancel = per_user.cancel.reindex(ref.referred_by).values
    assert not (referrer_cancel < ref.signup_at.values).any()  # alive when the referral signed up
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
    d_sorted = np.sort(seconds(df.cancel.dropna()))
    f_sorted = np.sort(seconds(df.feedback.dropna()))
    fd_sorted = np.sort(seconds(df.cancel[df.feedback.notna() & df.cancel.notna()]))
    n_alive = np.searchsorted(s_sorted, tau, "left") - np.searchsorted(d_sorted, tau, "left")
    n1 = np.searchsorted(f_sorted, tau, "right") - np.searchsorted(fd_sorted, tau, "left")
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


def test_repeat_purchases_follow_the_planted_bgnbd(ds):
    t = ds.truth["bgnbd"]
    end = pd.Timestamp(ds.metadata["observation_end"])
    buys = ds.events[ds.events.event_type == "purchase"]
    g = buys.groupby("user_id").event_at
    first, n = g.min(), g.size()
    x = (n - 1).values
    T = ((end - first) / DAY / 7).values
    assert len(first) == ds.truth["counts"]["customers"]
    # sufficient statistics vs the model's closed forms, per customer horizon
    exp_x = bgnbd_expected(T, t["r"], t["alpha"], t["a"], t["b"])
    assert within(x.mean(), exp_x.mean(), x.std() / np.sqrt(len(x)))
    p0 = ((t["alpha"] / (t["alpha"] + T)) ** t["r"]).mean()
    assert within((x == 0).mean(), p0, np.sqrt(p0 * (1 - p0) / len(x)))
    # spend: mean amount per customer vs p*gamma/(q-1)
    spend = buys.groupby("user_id").amount.mean()
    assert within(spend.mean(), ds.truth["gamma_gamma"]["mean_amount"], spend.std() / np.sqrt(len(spend)))


# ====================================================================== kpis
def test_kpis_scaling_law_recoverable(ds):
    import statsmodels.api as sm

    k = ds.kpis
    assert len(k) == 5 * 36 and k.unit.nunique() == 5
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


def test_product_purchases_fit_bgnbd_like_the_pure_draw():
    """The daily-grid purchases give (x, t_x, T) whose BG/NBD fit lands near the truth."""
    d = simulate(users=60_000, seed=4, progress=False, conversion_hazard_mainstream=0.02,
                 conversion_hazard_enthusiast=0.02, experiment_population_draws=1_000)  # fmt: skip
    end = pd.Timestamp(d.metadata["observation_end"])
    g = d.events[d.events.event_type == "purchase"].groupby("user_id").event_at
    first, last, n = g.min(), g.max(), g.size()
    est = fit_bgnbd((n - 1).values, ((last - first) / DAY / 7).values, ((end - first) / DAY / 7).values)
    t = d.truth["bgnbd"]
    assert est[0] == pytest.approx(t["r"], rel=0.2) and est[1] == pytest.approx(t["alpha"], rel=0.3)
    assert est[2] == pytest.approx(t["a"], rel=0.4) and est[3] == pytest.approx(t["b"], rel=0.4)


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


# ====================================================================== writing and errors
def test_refuses_to_overwrite_unless_forced(tmp_path, written):
    ds = written[0]
    out = tmp_path / "x"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ParameterError, match="not empty.*--force"):
        write(ds, out)
    with pytest.raises(ParameterError, match="not empty"):
        simulate(users=10, seed=0, out=out, progress=False)  # refused before the work
    assert (out / "keep.txt").read_text() == "mine"
    write(ds, out, force=True)
    assert not (out / "keep.txt").exists() and (out / "truth.json").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    write(ds, empty)  # an empty folder is fine
    (tmp_path / "file").write_text("")
    with pytest.raises(ParameterError, match="not a folder"):
        write(ds, tmp_path / "file")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_failed_write_leaves_nothing(tmp_path, written, monkeypatch):
    import workbench.data.simulate as sim

    calls = []

    def boom(table, path, **kw):
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full")
        return original(table, path, **kw)

    original = sim.pq.write_table
    monkeypatch.setattr(sim.pq, "write_table", boom)
    with pytest.raises(ParameterError, match="disk full"):
        write(written[0], tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_bad_arguments_get_clear_errors():
    with pytest.raises(ParameterError, match="users must be an integer"):
        simulate(users=0, progress=False)
    with pytest.raises(ParameterError, match="seed"):
        simulate(users=10, seed=-1, progress=False)
    with pytest.raises(ParameterError, match="did you mean 'churn_hazard_ratio_adopted'"):
        simulate(users=10, churn_hazard_ratio_adoptd=0.5, progress=False)
    with pytest.raises(ParameterError, match="participation_invited_mainstream"):
        simulate(users=10, participation_invited_mainstream=0.01, progress=False)
    with pytest.raises(ParameterError, match="ISO date"):
        simulate(users=10, start="January", progress=False)
    with pytest.raises(ParameterError, match="bgnbd_a.*> 0"):
        simulate(users=10, bgnbd_a=0, progress=False)
    with pytest.raises(ParameterError, match="length n"):
        simulate_bgnbd_summary(5, 0.2, 4, 0.8, 2.5, T=[1.0, 2.0], seed=0)
    with pytest.raises(ParameterError, match="alpha"):
        simulate_sbg_cohorts(-1, 1, 10, 3, seed=0)
    with pytest.raises(ParameterError, match="SimulatedDataset"):
        write(pd.DataFrame(), "nowhere")
    assert issubclass(ParameterError, WorkbenchError)


def test_progress_callback_and_quiet(capsys):
    seen = []
    simulate(users=500, seed=0, progress=lambda stage, done, total: seen.append((stage, done, total)),
             experiment_population_draws=1_000)  # fmt: skip
    assert seen and seen[-1][1] == seen[-1][2] and [d for _, d, _ in seen] == list(range(1, len(seen) + 1))
    simulate(users=500, seed=0, progress=False, experiment_population_draws=1_000)
    assert capsys.readouterr().err == ""


def test_repr_and_latent(ds):
    assert isinstance(ds, SimulatedDataset)
    assert f"{N:,} users" in repr(ds)
    lat = ds.latent
    assert len(lat) == N and lat.user_id.equals(ds.users.user_id)
    cust = lat.purchase_rate_weekly.notna()
    assert cust.sum() == ds.truth["counts"]["customers"]
    assert within(lat.purchase_rate_weekly[cust].mean(), 0.25 / 4.0, lat.purchase_rate_weekly[cust].std() / np.sqrt(cust.sum()))


# ====================================================================== CLI
def test_cli_help_and_run(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["simulate", "--help"])
    assert exc.value.code == 0
    help_text = capsys.readouterr().out
    assert "--users" in help_text and "--seed" in help_text and "--force" in help_text and "20000" in help_text
    out = tmp_path / "cli"
    assert main(["simulate", "--users", "800", "--seed", "3", "--out", str(out), "--quiet",
                 "--set", "churn_hazard_ratio_adopted=0.5"]) == 0  # fmt: skip
    truth = json.loads((out / "truth.json").read_text())
    assert truth["churn"]["hazard_ratio_adopted"] == 0.5 and truth["generator"]["users"] == 800
    assert truth["generator"]["overrides"] == {"churn_hazard_ratio_adopted": 0.5}
    assert "800 users" in capsys.readouterr().out
    assert main(["simulate", "--users", "800", "--out", str(out), "--quiet"]) == 1
    assert "--force" in capsys.readouterr().err
    assert main(["simulate", "--users", "800", "--out", str(out), "--quiet", "--set", "bass_pp=1"]) == 1
    assert "did you mean 'bass_p'" in capsys.readouterr().err
    assert main(["simulate", "--users", "800", "--out", str(out), "--quiet", "--force"]) == 0


# ====================================================================== coverage over repeats
def test_interval_coverage_over_repeated_simulations():
    """95% Wald intervals from simple estimators cover the planted values about
    95% of the time: churn hazard ratio, ITT (population), referral rate ratio."""
    reps, hits = 100, {"hr": 0, "itt": 0}
    for rep in range(reps):
        d = simulate(users=4_000, seed=1_000 + rep, progress=False, experiment_population_draws=50_000)
        u = d.users.set_index("user_id")
        first = d.events.groupby(["user_id", "event_type"]).event_at.min().unstack()
        end = pd.Timestamp(d.metadata["observation_end"])
        df = pd.DataFrame({"s": u.signup_at, "seg": u.segment})
        for t in ("cancel", "adopted", "feedback"):
            df[t] = first[t].reindex(df.index)
        df["stop"], df["dead"] = df.cancel.fillna(end), df.cancel.notna()
        logs, ws = [], []
        for d0, e0, d1, e1 in piecewise_rates(df).values():
            logs.append(np.log((d1 / e1) / (d0 / e0)))
            ws.append(1 / (1 / d0 + 1 / d1))
        est, se = np.average(logs, weights=ws), np.sqrt(1 / sum(ws))
        hits["hr"] += abs(est - np.log(0.6)) <= 1.96 * se
        inv = (d.assignments.set_index("user_id").arm == "invited").reindex(df.index)
        y = ~(df.dead & ((df.cancel - df.s) <= 90 * DAY))
        itt = y[inv].mean() - y[~inv].mean()
        se = np.sqrt(y[inv].var() / inv.sum() + y[~inv].var() / (~inv).sum())
        hits["itt"] += abs(itt - d.truth["experiment"]["population"]["itt_retention"]) <= 1.96 * se
    print({k: v / reps for k, v in hits.items()})
    for name, h in hits.items():
        assert 0.88 <= h / reps <= 0.99, (name, h / reps)
