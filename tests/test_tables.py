"""Analysis tables on a hand-made dataset whose right answers are worked out
by hand in the comments (and on CDNOW for the published repeat-purchase
figures). The DuckDB/PySpark parity test reuses ``write_handmade``."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import yaml

from workbench import tables as wt
from workbench.data import load_dataset
from workbench.errors import DataError, ParameterError, WorkbenchError

OBS_END = "2024-03-31"


def handmade_tables() -> dict[str, pd.DataFrame]:
    """Seven users, observation end 2024-03-31 00:00 (2024 is a leap year).
    With churn_after_days=30, users without a cancel who were active in the
    last 30 days are censored at end - 30 days = 2024-03-01 00:00 (never
    before their signup).

    u1 (a) signup Jan 1 00:00: feedback day 2, purchases Jan 5 (10 + 5, one
       day), adopted x2 day 9, purchase Jan 20 (20), adopted day 31, purchase
       Mar 1 (30), active Mar 25 -> censored at Mar 1, day 60 (at day 90 with
       cancels only). Active Apr 5 is after the observation end (ignored).
    u2 (b) signup Jan 1 12:00, referred by u1: purchase Jan 2 10:00 (8),
       cancel Jan 15 12:00 -> churned at day 14; an active event after the
       cancel is ignored for survival.
    u3 (a) signup Jan 10, referred by u1: feedback day 2.25, active Feb 1
       (day 22), then 59 days silent -> churned at day 22.
    u4 (b) signup Feb 5: purchase Mar 10 (50, day 34), feedback Mar 15
       (day 39) -> censored at Mar 1, day 25 (the feedback comes after that).
    u5 (a) signup Mar 20, referred by u4, no events -> signed up after Mar 1:
       censored at signup, day 0 (at day 11 with cancels only).
    u7 (b) signup Jan 15, referred by u3, no events -> churned at day 0.
    u6 (a) signup Apr 10, after the observation end, referred by u2 -> left out.
    """
    ts = pd.Timestamp
    users = pd.DataFrame(
        {
            "user_id": ["u1", "u2", "u3", "u4", "u5", "u6", "u7"],
            "signup_at": [ts("2024-01-01"), ts("2024-01-01 12:00"), ts("2024-01-10"), ts("2024-02-05"),
                          ts("2024-03-20"), ts("2024-04-10"), ts("2024-01-15")],
            "channel": ["organic", "referral", "referral", "ads", "referral", "referral", "referral"],
            "segment": ["a", "b", "a", "b", "a", "a", "b"],
            "referred_by": [None, "u1", "u1", None, "u4", "u2", "u3"],
            "age_years": [30.0, 41.0, 25.0, 52.0, 33.0, 28.0, 60.0],
        }
    )
    rows = [
        ("u1", "2024-01-01 00:00", "active", None),
        ("u1", "2024-01-03 00:00", "feedback", None),
        ("u1", "2024-01-05 00:00", "purchase", 10.0),
        ("u1", "2024-01-05 18:00", "purchase", 5.0),
        ("u1", "2024-01-10 00:00", "adopted", None),
        ("u1", "2024-01-10 00:00", "adopted", None),
        ("u1", "2024-01-20 00:00", "purchase", 20.0),
        ("u1", "2024-02-01 00:00", "adopted", None),
        ("u1", "2024-03-01 00:00", "purchase", 30.0),
        ("u1", "2024-03-25 00:00", "active", None),
        ("u1", "2024-04-05 00:00", "active", None),
        ("u2", "2024-01-01 12:00", "active", None),
        ("u2", "2024-01-02 10:00", "purchase", 8.0),
        ("u2", "2024-01-15 12:00", "cancel", None),
        ("u2", "2024-01-20 00:00", "active", None),
        ("u3", "2024-01-12 06:00", "feedback", None),
        ("u3", "2024-02-01 00:00", "active", None),
        ("u4", "2024-03-10 00:00", "purchase", 50.0),
        ("u4", "2024-03-15 00:00", "feedback", None),
    ]
    events = pd.DataFrame(rows, columns=["user_id", "event_at", "event_type", "amount"])
    events["event_at"] = pd.to_datetime(events["event_at"]).astype("datetime64[us]")
    events["amount"] = events["amount"].astype("float64")
    users["signup_at"] = users["signup_at"].astype("datetime64[us]")
    assignments = pd.DataFrame(
        {
            "user_id": ["u1", "u3", "u4", "u5", "u2"],
            "experiment": ["cocreation_invite"] * 4 + ["pricing"],
            "arm": ["control", "invite", "invite", "control", "control"],
            "assigned_at": pd.to_datetime(
                ["2024-01-04", "2024-01-10", "2024-03-12", "2024-03-20", "2024-01-02"]
            ).astype("datetime64[us]"),
        }
    )
    return {"users": users, "events": events, "assignments": assignments}


def write_handmade(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, df in handmade_tables().items():
        df.to_parquet(folder / f"{name}.parquet", index=False)
    (folder / "dataset.yml").write_text(yaml.safe_dump({"name": "handmade", "observation_end": OBS_END}))
    return folder


def random_tables(n_users: int = 300, seed: int = 7) -> dict[str, pd.DataFrame]:
    """A messier contract dataset: sub-second timestamps, every event type,
    same-second and same-day events, null segments, referrals, an experiment."""
    import numpy as np

    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2024-01-01").value // 1000  # microseconds
    span = 180 * 86_400 * 1_000_000
    ids = [f"r{i:04d}" for i in range(n_users)]
    signup = np.sort(start + rng.integers(0, span, n_users))
    users = pd.DataFrame(
        {
            "user_id": ids,
            "signup_at": pd.to_datetime(signup, unit="us"),
            "channel": rng.choice(["organic", "referral", "ads"], n_users),
            "segment": rng.choice(np.array(["a", "b", None], dtype=object), n_users, p=[0.45, 0.45, 0.1]),
            "referred_by": [
                ids[rng.integers(0, i)] if i > 0 and rng.random() < 0.3 else None for i in range(n_users)
            ],
            "age_years": rng.integers(18, 70, n_users).astype(float),
        }
    )
    rows = []
    types = np.array(["active", "purchase", "feedback", "adopted", "cancel"])
    for uid, s in zip(ids, signup):
        n = int(rng.integers(0, 14))
        # a quarter of events land on whole days after signup, so ties and bin edges happen
        offsets = rng.integers(0, 200 * 86_400 * 1_000_000, n)
        whole = rng.random(n) < 0.25
        offsets[whole] = (offsets[whole] // (86_400 * 1_000_000)) * 86_400 * 1_000_000
        kinds = rng.choice(types, n, p=[0.45, 0.25, 0.14, 0.1, 0.06])
        for off, kind in zip(offsets, kinds):
            amount = round(float(rng.gamma(2.0, 15.0)), 2) if kind == "purchase" else None
            rows.append((uid, s + int(off), kind, amount))
            if kind == "adopted" and rng.random() < 0.3:  # a second adoption at the same instant
                rows.append((uid, s + int(off), kind, None))
            if kind == "purchase" and rng.random() < 0.2:  # a second purchase the same day
                rows.append((uid, s + int(off) + 3_600_000_000, kind, 9.99))
    events = pd.DataFrame(rows, columns=["user_id", "event_at", "event_type", "amount"])
    events["event_at"] = pd.to_datetime(events["event_at"], unit="us")
    events["amount"] = events["amount"].astype("float64")
    pick = rng.random(n_users) < 0.5
    assignments = pd.DataFrame(
        {
            "user_id": np.array(ids)[pick],
            "experiment": "cocreation_invite",
            "arm": rng.choice(["control", "invite"], int(pick.sum())),
            "assigned_at": pd.to_datetime(signup[pick] + rng.integers(0, 30 * 86_400 * 1_000_000, int(pick.sum())), unit="us"),
        }
    )
    return {"users": users, "events": events, "assignments": assignments}


def write_random(folder: Path, n_users: int = 300, seed: int = 7) -> Path:
    """The random dataset as Parquet; observation end 2024-07-15 (some events fall after it)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, df in random_tables(n_users, seed).items():
        df.to_parquet(folder / f"{name}.parquet", index=False)
    (folder / "dataset.yml").write_text(yaml.safe_dump({"name": "random", "observation_end": "2024-07-15 12:34:56"}))
    return folder


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def hm(tmp_path_factory):
    return load_dataset(write_handmade(tmp_path_factory.mktemp("handmade")))


@pytest.fixture(scope="module")
def rnd_folder(tmp_path_factory):
    return write_random(tmp_path_factory.mktemp("random"))


@pytest.fixture(scope="module")
def rnd(rnd_folder):
    return load_dataset(rnd_folder)


def by(df: pd.DataFrame, *keys) -> dict:
    """Rows keyed by the given columns, as plain dicts."""
    return {tuple(r[k] for k in keys) if len(keys) > 1 else r[keys[0]]: r for r in df.to_dict("records")}


# ------------------------------------------------------------------ shape
def test_every_table_is_a_lazy_ibis_expression_on_the_dataset_backend(hm):
    import ibis

    for name, fn in wt.TABLE_FUNCTIONS.items():
        expr = fn(hm, "cocreation_invite") if name == "experiment_outcomes" else fn(hm)
        assert isinstance(expr, ibis.Table), name
        assert expr.get_backend() is hm.con, name


def test_duckdb_returns_the_column_types_each_table_declares(rnd):
    """DuckDB's own result types equal each table's declared schema: no DECIMAL
    or INTEGER where the table says float64 or int64 (bare numeric literals and
    DuckDB's 128-bit integer sums give them). Ibis converts them back, but
    slowly: a DECIMAL column reaches pandas as Python Decimal objects."""
    from workbench.tables import repeat_tracking, subscription_survivors

    functions = {**wt.TABLE_FUNCTIONS, "repeat_tracking": repeat_tracking, "subscription_survivors": subscription_survivors}
    cases = [(name, {}) for name in functions if name != "experiment_outcomes"] + [
        ("experiment_outcomes", {"experiment": "cocreation_invite"}),
        ("repeat_summary", {"calibration_end": "2024-05-01"}),  # with a holdout
        ("repeat_summary_compressed", {"calibration_end": "2024-05-01"}),
        ("referrals", {"period_days": 7}),
    ]
    for name, options in cases:
        expr = functions[name](rnd, **options)
        arrow = rnd.con._to_duckdb_relation(expr).to_arrow_table()  # DuckDB's own types, before ibis converts them
        declared = expr.schema().to_pyarrow()
        got = {f.name: "string" if pa.types.is_large_string(f.type) else str(f.type) for f in arrow.schema}  # text: large by design (backends._duckdb)
        want = {f.name: str(f.type) for f in declared}
        assert got == want, (name, options, {c: (got[c], want[c]) for c in got if got[c] != want.get(c)})


# ------------------------------------------------------------------ survival
def test_survival_by_hand(hm):
    s = by(wt.survival(hm).to_pandas(), "user_id")
    assert set(s) == {"u1", "u2", "u3", "u4", "u5", "u7"}  # u6 signs up after the observation end
    expected = {  # duration (days), churned
        # last activity Mar 25, 6 days before the end: not judged yet, censored at
        # end - 30 days = Mar 1 (Jan 1 -> Mar 1 = 31 + 29 days), not at the end (day 90)
        "u1": (60.0, 0),
        "u2": (14.0, 1),  # cancel Jan 15 12:00, 14 days after signup at Jan 1 12:00
        "u3": (22.0, 1),  # last activity Feb 1, 59 days before the end
        "u4": (25.0, 0),  # last activity Mar 15: censored at Mar 1 (Feb 5 -> Mar 1 = 25 days)
        "u5": (0.0, 0),  # signed up Mar 20, after Mar 1: censored at signup
        "u7": (0.0, 1),  # silent for 76 days: churned at signup
    }
    assert {u: (r["duration"], r["churned"]) for u, r in s.items()} == expected
    assert s["u2"]["end_at"] == pd.Timestamp("2024-01-15 12:00")
    assert s["u3"]["end_at"] == pd.Timestamp("2024-02-01")
    assert s["u1"]["end_at"] == s["u4"]["end_at"] == pd.Timestamp("2024-03-01")
    assert s["u5"]["end_at"] == pd.Timestamp("2024-03-20")
    assert s["u4"]["segment"] == "b" and s["u4"]["age_years"] == 52.0 and s["u4"]["channel"] == "ads"
    assert {u: r["churn_cause"] if isinstance(r["churn_cause"], str) else None for u, r in s.items()} == {
        "u1": None, "u2": "cancel", "u3": "inactivity", "u4": None, "u5": None, "u7": "inactivity"}
    assert list(wt.survival(hm).columns) == [
        "user_id", "signup_at", "end_at", "duration", "churned", "churn_cause", "channel", "segment", "age_years"]


def test_the_three_churn_rules_by_hand(hm):
    """u2 cancels Jan 15 12:00 and is active again Jan 20 (then silent): a
    cancel under the cancel rules, inactivity at Jan 20 under the other."""
    def got(churn):
        s = by(wt.survival(hm, churn=churn).to_pandas(), "user_id")
        return {u: (r["duration"], r["churned"], r["churn_cause"] if isinstance(r["churn_cause"], str) else None)
                for u, r in s.items()}

    assert got("cancel") == {
        "u1": (90.0, 0, None), "u2": (14.0, 1, "cancel"), "u3": (81.0, 0, None),
        "u4": (55.0, 0, None), "u5": (11.0, 0, None), "u7": (76.0, 0, None)}
    assert got("inactivity") == {
        "u1": (60.0, 0, None), "u2": (18.5, 1, "inactivity"), "u3": (22.0, 1, "inactivity"),
        "u4": (25.0, 0, None), "u5": (0.0, 0, None), "u7": (0.0, 1, "inactivity")}
    assert got("cancel_or_inactivity") == {
        "u1": (60.0, 0, None), "u2": (14.0, 1, "cancel"), "u3": (22.0, 1, "inactivity"),
        "u4": (25.0, 0, None), "u5": (0.0, 0, None), "u7": (0.0, 1, "inactivity")}
    causes = wt.churn_causes(hm).to_pandas()
    assert dict(zip(causes.churn_cause, causes.users)) == {"cancel": 1, "inactivity": 2, "censored": 3}
    causes = wt.churn_causes(hm, churn="cancel").to_pandas()
    assert dict(zip(causes.churn_cause, causes.users)) == {"cancel": 1, "censored": 5}


def test_a_cancel_after_inactivity_can_no_longer_be_judged_is_censored_there(tmp_path):
    """Under cancel_or_inactivity every user is followed to end - window: a
    cancel after that point would only be counted for users who cancel, so
    it is censored there like everyone else (it counts under "cancel")."""
    folder = write_handmade(tmp_path / "late")
    events = pd.read_parquet(folder / "events.parquet")
    late = pd.DataFrame({"user_id": ["u4"], "event_at": [pd.Timestamp("2024-03-20")], "event_type": ["cancel"], "amount": [None]})
    events = pd.concat([events, late.astype(events.dtypes.to_dict())], ignore_index=True)
    events.to_parquet(folder / "events.parquet", index=False)
    ds = load_dataset(folder)
    s = by(wt.survival(ds).to_pandas(), "user_id")
    assert (s["u4"]["duration"], s["u4"]["churned"]) == (25.0, 0)  # censored at Mar 1
    s = by(wt.survival(ds, churn="cancel").to_pandas(), "user_id")
    assert (s["u4"]["duration"], s["u4"]["churned"], s["u4"]["churn_cause"]) == (44.0, 1, "cancel")


def test_survival_cancels_only_and_other_inactivity_windows(hm):
    s = by(wt.survival(hm, churn="cancel").to_pandas(), "user_id")
    assert {u: (r["duration"], r["churned"]) for u, r in s.items()} == {
        "u1": (90.0, 0), "u2": (14.0, 1), "u3": (81.0, 0), "u4": (55.0, 0), "u5": (11.0, 0), "u7": (76.0, 0),
    }
    s = by(wt.survival(hm, churn_after_days=5).to_pandas(), "user_id")
    assert (s["u1"]["churned"], s["u1"]["duration"]) == (1, 84.0)  # Mar 25 is 6 days before the end
    assert (s["u5"]["churned"], s["u5"]["duration"]) == (1, 0.0)
    s = by(wt.survival(hm, churn_after_days=10).to_pandas(), "user_id")
    assert {u: (r["duration"], r["churned"]) for u, r in s.items()} == {
        "u1": (80.0, 0),  # active Mar 25, 6 days before the end: censored at Mar 21 (end - 10 days)
        "u2": (14.0, 1),  # cancel: exact time
        "u3": (22.0, 1),
        "u4": (39.0, 1),  # silent since Mar 15 (16 days)
        "u5": (0.0, 1),  # silent 11 days since signup
        "u7": (0.0, 1),
    }
    s = by(wt.survival(hm, churn_after_days=12.5).to_pandas(), "user_id")
    # end - 12.5 days = Mar 18 12:00: u1 censored there; u5 (signup Mar 20, silent 11 days) at its signup
    assert (s["u1"]["duration"], s["u1"]["churned"], s["u1"]["end_at"]) == (77.5, 0, pd.Timestamp("2024-03-18 12:00"))
    assert (s["u5"]["duration"], s["u5"]["churned"], s["u5"]["end_at"]) == (0.0, 0, pd.Timestamp("2024-03-20"))


def _reference_survival(tables, end, churn, churn_after_days):
    """Event by event, in plain Python."""
    users, events = tables["users"], tables["events"]
    window = pd.Timedelta(days=churn_after_days)
    censor = end if churn == "cancel" else end.floor("s") - window
    out = {}
    for u in users.itertuples():
        if u.signup_at > end:
            continue
        ev = events[(events.user_id == u.user_id) & (events.event_at <= end)]
        cancels = ev[ev.event_type == "cancel"].event_at
        last = ev.event_at.max() if len(ev) else u.signup_at
        if churn != "inactivity" and len(cancels) and cancels.min() <= censor:
            stop, churned, cause = cancels.min(), 1, "cancel"
        elif churn != "cancel" and (end.floor("s") - last.floor("s")) >= window:
            stop, churned, cause = last, 1, "inactivity"
        else:  # not (yet) judged: censored, but not before signup
            stop, churned, cause = max(censor, u.signup_at), 0, None
        out[u.user_id] = (max(0.0, (stop.floor("s") - u.signup_at.floor("s")).total_seconds() / 86400), churned, cause)
    return out


@pytest.mark.parametrize("churn,churn_after_days", [("cancel_or_inactivity", 30), ("cancel_or_inactivity", 12.5),
                                                    ("inactivity", 30), ("cancel", 30)])
def test_survival_matches_a_plain_python_reference_on_messy_data(rnd, churn, churn_after_days):
    got = wt.survival(rnd, churn=churn, churn_after_days=churn_after_days).to_pandas()
    ref = _reference_survival(random_tables(), pd.Timestamp("2024-07-15 12:34:56"), churn, churn_after_days)
    assert len(got) == len(ref) > 250
    for r in got.itertuples():
        assert (r.duration, r.churned) == pytest.approx(ref[r.user_id][:2], abs=1e-9), r.user_id
        assert (r.churn_cause if isinstance(r.churn_cause, str) else None) == ref[r.user_id][2], r.user_id
    assert 0 < got.churned.mean() < 1


# ------------------------------------------------------------------ episodes and risk sets
def test_episodes_by_hand(hm):
    e = wt.episodes(hm, exposure="adopted").to_pandas()
    rows = [(r.user_id, r.start, r.stop, r.exposed, r.dose, r.churned) for r in e.itertuples()]
    assert rows == [
        ("u1", 0.0, 9.0, 0, 0, 0),
        ("u1", 9.0, 31.0, 1, 2, 0),  # two adoptions at the same instant: one split, dose 2
        ("u1", 31.0, 60.0, 1, 3, 0),  # censored at Mar 1 (end - 30 days)
        ("u2", 0.0, 14.0, 0, 0, 1),
        ("u3", 0.0, 22.0, 0, 0, 1),
        ("u4", 0.0, 25.0, 0, 0, 0),
    ]  # u7 churned at signup, u5 censored at signup: zero length, dropped
    f = wt.episodes(hm, exposure="feedback").to_pandas()
    rows = [(r.user_id, r.start, r.stop, r.exposed, r.dose, r.churned) for r in f.itertuples()]
    assert rows[:2] == [("u1", 0.0, 2.0, 0, 0, 0), ("u1", 2.0, 60.0, 1, 1, 0)]
    assert ("u3", 2.25, 22.0, 1, 1, 1) in rows  # exposed at day 2.25 and churned in that state
    assert [x for x in rows if x[0] == "u4"] == [("u4", 0.0, 25.0, 0, 0, 0)]  # feedback on day 39, after its censoring
    assert ("u4", 39.0, 55.0, 1, 1, 0) in [  # cancels only: censored at the end
        (r.user_id, r.start, r.stop, r.exposed, r.dose, r.churned)
        for r in wt.episodes(hm, exposure="feedback", churn="cancel").to_pandas().itertuples()]
    assert f.segment.tolist()[:2] == ["a", "a"]


def test_risk_sets_by_hand(hm):
    r = by(wt.risk_sets(hm, exposure="feedback", bin_days=7).to_pandas(), "tenure_bin", "exposed", "segment")
    # bin 0 = (0, 7]: u1 (0, 2], u3 (0, 2.25] unexposed; u1 and u3 also exposed in the same bin;
    # u5 (signed up 11 days before the end) is censored at signup and never at risk
    assert (r[0, 0, "a"]["at_risk"], r[0, 0, "a"]["events"], r[0, 0, "a"]["exposure_days"]) == (2, 0, 4.25)
    assert (r[0, 1, "a"]["at_risk"], r[0, 1, "a"]["events"], r[0, 1, "a"]["exposure_days"]) == (2, 0, 9.75)
    # u2 cancels at exactly day 14: the right-closed bin (7, 14] holds it
    assert (r[1, 0, "b"]["at_risk"], r[1, 0, "b"]["events"], r[1, 0, "b"]["exposure_days"]) == (2, 1, 14.0)
    assert (2, 0, "b") in r and r[2, 0, "b"]["at_risk"] == 1  # only u4 left
    # u4 is censored at day 25 (Mar 1), before its feedback: unexposed to the end, 4 days in (21, 28]
    assert (r[3, 0, "b"]["at_risk"], r[3, 0, "b"]["events"], r[3, 0, "b"]["exposure_days"]) == (1, 0, 4.0)
    assert (4, 0, "b") not in r and not any(k[1] == 1 and k[2] == "b" for k in r)
    # u3 churns exposed at day 22, bin (21, 28]; u1 is there too
    assert (r[3, 1, "a"]["at_risk"], r[3, 1, "a"]["events"], r[3, 1, "a"]["exposure_days"]) == (2, 1, 8.0)
    # u1 is censored at day 60: its last bin (56, 63] holds 4 days
    assert r[8, 1, "a"]["exposure_days"] == 4.0 and max(k[0] for k in r) == 8
    df = wt.risk_sets(hm, exposure="feedback", strata=()).to_pandas()
    assert list(df.columns) == ["tenure_bin", "exposed", "at_risk", "events", "exposure_days"]
    assert df.events.sum() == 2  # u2, u3 (u7 churned at signup: never at risk)
    assert df.exposure_days.sum() == pytest.approx(60 + 14 + 22 + 25)


def _risk_sets_from_episodes(ep: pd.DataFrame, bin_days: float, strata: list[str]) -> pd.DataFrame:
    """The documented rule applied to the episodes table, bin by bin in Python."""
    spells = ep.groupby(["user_id", "exposed", *strata], dropna=False).agg(
        start=("start", "min"), stop=("stop", "max"), churned=("churned", "max")).reset_index()
    cells: dict = {}
    for s in spells.itertuples():
        b = int(s.start // bin_days)
        while b * bin_days < s.stop:
            lo, hi = b * bin_days, (b + 1) * bin_days
            overlap = min(s.stop, hi) - max(s.start, lo)
            if overlap > 0:
                key = (b, s.exposed, *[getattr(s, c) for c in strata])
                cell = cells.setdefault(key, [0, 0, 0.0])
                cell[0] += 1
                cell[1] += int(s.churned == 1 and lo < s.stop <= hi)
                cell[2] += overlap
            b += 1
    return pd.DataFrame(
        [(*k, *v) for k, v in cells.items()], columns=["tenure_bin", "exposed", *strata, "at_risk", "events", "exposure_days"]
    )


@pytest.mark.parametrize("exposure,bin_days,strata", [("adopted", 7, ["segment"]), ("feedback", 3.5, ["segment", "channel"]), ("feedback", 30, [])])
def test_risk_sets_equal_the_rule_applied_to_episodes(rnd, exposure, bin_days, strata):
    got = wt.risk_sets(rnd, exposure=exposure, bin_days=bin_days, strata=strata).to_pandas()
    ep = wt.episodes(rnd, exposure=exposure).to_pandas()
    ref = _risk_sets_from_episodes(ep, bin_days, strata)
    keys = ["tenure_bin", "exposed", *strata]
    got = got.sort_values(keys, na_position="first").reset_index(drop=True)
    ref = ref.sort_values(keys, na_position="first").reset_index(drop=True)
    pd.testing.assert_frame_equal(got, ref, check_dtype=False, rtol=1e-9)
    assert (got.events <= got.at_risk).all()
    surv = wt.survival(rnd).to_pandas()
    assert got.events.sum() == ((surv.churned == 1) & (surv.duration > 0)).sum()
    assert got.exposure_days.sum() == pytest.approx(surv.duration.sum())
    assert got.exposed.nunique() == 2


def test_episodes_cover_each_users_time_exactly_once(rnd):
    ep = wt.episodes(rnd, exposure="feedback").to_pandas()
    surv = by(wt.survival(rnd).to_pandas(), "user_id")
    for uid, g in ep.groupby("user_id"):
        assert g.start.iloc[0] == 0 and g.stop.iloc[-1] == pytest.approx(surv[uid]["duration"])
        assert (g.start.iloc[1:].to_numpy() == g.stop.iloc[:-1].to_numpy()).all()  # contiguous
        assert (g.stop > g.start).all() and g.dose.is_monotonic_increasing
        assert g.churned.iloc[:-1].sum() == 0 and g.churned.iloc[-1] == surv[uid]["churned"]
    assert {u for u, r in surv.items() if r["duration"] > 0} == set(ep.user_id)


# ------------------------------------------------------------------ repeat purchases
def test_repeat_summary_by_hand_with_a_holdout(hm):
    r = by(wt.repeat_summary(hm, time_unit="day", calibration_end="2024-02-15", holdout_end="2024-03-31").to_pandas(), "user_id")
    assert set(r) == {"u1", "u2"}  # u4 first buys in the holdout: not a calibration customer
    u1, u2 = r["u1"], r["u2"]
    # u1: Jan 5 (10 + 5 on one day), Jan 20 (20) in calibration; Mar 1 (30) in the holdout
    assert (u1["frequency"], u1["recency"], u1["T"], u1["monetary_value"]) == (1, 15.0, 41.0, 20.0)
    assert (u1["frequency_holdout"], u1["monetary_holdout"], u1["duration_holdout"]) == (1, 30.0, 45.0)
    assert u1["first_purchase_at"] == pd.Timestamp("2024-01-05")
    # u2: one purchase Jan 2 at 10:00; T counts calendar days
    assert (u2["frequency"], u2["recency"], u2["T"]) == (0, 0.0, 44.0)
    assert math.isnan(u2["monetary_value"]) and (u2["frequency_holdout"], u2["monetary_holdout"]) == (0, 0.0)
    assert u2["first_purchase_at"] == pd.Timestamp("2024-01-02 10:00")

    w = by(wt.repeat_summary(hm, calibration_end="2024-02-15").to_pandas(), "user_id")  # weeks
    assert w["u1"]["recency"] == pytest.approx(15 / 7) and w["u1"]["T"] == pytest.approx(41 / 7)
    assert w["u1"]["duration_holdout"] == pytest.approx(45 / 7)


def test_repeat_summary_defaults_to_the_observation_end_without_holdout(hm):
    r = by(wt.repeat_summary(hm, time_unit="day").to_pandas(), "user_id")
    assert set(r) == {"u1", "u2", "u4"}
    assert (r["u1"]["frequency"], r["u1"]["recency"], r["u1"]["T"], r["u1"]["monetary_value"]) == (2, 56.0, 86.0, 25.0)
    assert (r["u4"]["frequency"], r["u4"]["T"]) == (0, 21.0)
    assert {x["duration_holdout"] for x in r.values()} == {0.0}
    assert {x["frequency_holdout"] for x in r.values()} == {0}


def _reference_repeat(tables, cal, hold):
    ev = tables["events"]
    p = ev[ev.event_type == "purchase"].assign(day=lambda d: d.event_at.dt.floor("D"))
    out = {}
    for uid, g in p.groupby("user_id"):
        spend = g.groupby("day").amount.sum()
        c = spend[spend.index <= cal]
        h = spend[(spend.index > cal) & (spend.index <= hold)]
        if c.empty:
            continue
        f = len(c) - 1
        out[uid] = (f, (c.index[-1] - c.index[0]).days, (cal - c.index[0]).days,
                    (c.iloc[1:].sum() / f) if f else None, len(h), h.sum())
    return out


def test_repeat_summary_matches_a_plain_reference_and_compresses_exactly(rnd):
    cal, hold = pd.Timestamp("2024-04-30"), pd.Timestamp("2024-07-15")
    got = wt.repeat_summary(rnd, time_unit="day", calibration_end=cal, holdout_end=hold).to_pandas()
    ref = _reference_repeat(random_tables(), cal, hold)
    assert len(got) == len(ref) > 50 and (got.frequency > 0).sum() > 10
    for r in got.itertuples():
        f, rec, T, m, fh, mh = ref[r.user_id]
        assert (r.frequency, r.recency, r.T, r.frequency_holdout) == (f, rec, T, fh), r.user_id
        assert (math.isnan(r.monetary_value) if m is None else r.monetary_value == pytest.approx(m)), r.user_id
        assert r.monetary_holdout == pytest.approx(mh)

    comp = wt.repeat_summary_compressed(rnd, time_unit="day", calibration_end=cal, holdout_end=hold).to_pandas()
    expect = (got.assign(sq=got.frequency_holdout**2).groupby(["frequency", "recency", "T"])
              .agg(n=("user_id", "size"), frequency_holdout_sum=("frequency_holdout", "sum"), frequency_holdout_sq_sum=("sq", "sum")).reset_index())
    assert expect.frequency_holdout_sq_sum.gt(expect.frequency_holdout_sum).any()  # the squares are not the sums
    pd.testing.assert_frame_equal(comp, expect, check_dtype=False)
    assert comp.n.sum() == len(got) and len(comp) < len(got)


def test_cdnow_sample_gives_the_published_946_and_2457():
    try:
        ds = load_dataset("cdnow-sample")
    except WorkbenchError as exc:  # pragma: no cover - the raw file ships with the repository
        pytest.skip(f"CDNOW sample not available: {exc}")
    r = wt.repeat_summary(ds, time_unit="week", calibration_end="1997-09-30").to_pandas()
    assert len(r) == 2357
    assert (r.frequency > 0).sum() == 946
    assert r.frequency.sum() == 2457
    jan1 = r[r.first_purchase_at == pd.Timestamp("1997-01-01")]
    assert len(jan1) > 0 and jan1["T"].tolist() == pytest.approx([272 / 7] * len(jan1))
    assert r.duration_holdout.iloc[0] == pytest.approx(39.0)  # 1997-10-01 .. 1998-06-30
    comp = wt.repeat_summary_compressed(ds, time_unit="week", calibration_end="1997-09-30").to_pandas()
    assert comp.n.sum() == 2357 and (comp.frequency * comp.n).sum() == 2457
    assert comp.frequency_holdout_sum.sum() == r.frequency_holdout.sum() > 0


def _handmade_with_late_purchases(folder: Path, observation_end: str = OBS_END):
    """The hand-made dataset plus purchases after its observation end: u1 on
    the end's own day (Mar 31 18:00, after 00:00) and u5 on Apr 2."""
    write_handmade(folder)
    ev = pd.read_parquet(folder / "events.parquet")
    late = pd.DataFrame({"user_id": ["u1", "u5"], "event_at": pd.to_datetime(["2024-03-31 18:00", "2024-04-02 00:00"]).astype("datetime64[us]"),
                         "event_type": ["purchase", "purchase"], "amount": [7.0, 9.0]})
    pd.concat([ev, late], ignore_index=True).to_parquet(folder / "events.parquet", index=False)
    (folder / "dataset.yml").write_text(yaml.safe_dump({"name": "handmade", "observation_end": observation_end}))
    return load_dataset(folder)


def test_repeat_tracking_ignores_purchases_after_the_observation_end(tmp_path):
    ds = _handmade_with_late_purchases(tmp_path / "late")
    t = wt.repeat_tracking(ds).to_pandas()
    # purchase days by hand: u2 Jan 2 (new), u1 Jan 5 (new, two purchases), Jan 20 and Mar 1 (repeats),
    # u4 Mar 10 (new); u1's Mar 31 18:00 purchase is after the end (Mar 31 00:00), u5's Apr 2 too
    rows = [(str(pd.Timestamp(r.date).date()), r.new_customers, r.repeat_purchases) for r in t.itertuples()]
    assert rows == [("2024-01-02", 1, 0), ("2024-01-05", 1, 0), ("2024-01-20", 0, 1), ("2024-03-01", 0, 1), ("2024-03-10", 1, 0)]
    t = wt.repeat_tracking(ds, calibration_end="2024-02-15", holdout_end="2024-03-31").to_pandas()
    assert t.new_customers.sum() == 2 and t.repeat_purchases.sum() == 2  # u4 is not a calibration customer
    w = wt.calibration_window(ds)
    assert (w["first_purchase"], w["observation_end"], w["holdout_end"]) == (pd.Timestamp("2024-01-02"), pd.Timestamp(OBS_END), pd.Timestamp(OBS_END))


def test_calibration_window_ignores_purchases_after_the_observation_end(tmp_path):
    # observation end Jan 1 23:00: every purchase comes later, so there is nothing to split
    ds = _handmade_with_late_purchases(tmp_path / "early", observation_end="2024-01-01 23:00")
    with pytest.raises(ParameterError, match="no purchase events on or before its observation end"):
        wt.calibration_window(ds)
    ds = _handmade_with_late_purchases(tmp_path / "jan10", observation_end="2024-01-10 12:00")
    w = wt.calibration_window(ds)  # purchases Jan 2 and Jan 5 only: halfway between Jan 2 and Jan 10 is Jan 6
    assert (w["first_purchase"], w["calibration_end"]) == (pd.Timestamp("2024-01-02"), pd.Timestamp("2024-01-06"))


# ------------------------------------------------------------------ KPIs and cohorts
def test_kpis_by_week_by_hand(hm):
    k = wt.kpis(hm).to_pandas()
    assert k.period.tolist() == list(pd.date_range("2024-01-01", "2024-03-25", freq="7D"))  # Mondays, no gaps, to the end's week
    w = by(k, "period")
    d = pd.Timestamp
    first = w[d("2024-01-01")]
    assert (first["active_users"], first["new_users"], first["customers"], first["first_time_customers"], first["revenue"], first["purchases"]) == (
        2,
        2,
        2,
        2,
        23.0,
        3,
    )
    third = w[d("2024-01-15")]  # u1 buys again, u2 cancels, u7 signs up
    assert (third["active_users"], third["new_users"], third["customers"], third["first_time_customers"], third["revenue"]) == (2, 1, 1, 0, 20.0)
    assert tuple(w[d("2024-01-22")][c] for c in ("active_users", "new_users", "revenue")) == (0, 0, 0.0)  # an empty week is a zero row
    assert (w[d("2024-03-04")]["first_time_customers"], w[d("2024-03-04")]["revenue"]) == (1, 50.0)
    assert k.new_users.sum() == 6  # u6 signs up after the observation end
    assert k.revenue.sum() == 123.0
    # the observation end is 2024-03-31 00:00: the week of Mar 25 is cut short, the week of Mar 18 ended on Mar 25
    assert k.complete.tolist() == [True] * 12 + [False] and k.complete.dtype == bool


@pytest.mark.parametrize("zoned", ["2024-03-31T00:00:00Z", "2024-03-31T02:00:00+02:00"])
def test_an_observation_end_with_a_time_zone_is_the_same_instant_in_utc(tmp_path, hm, zoned):
    folder = write_handmade(tmp_path / "zoned")
    (folder / "dataset.yml").write_text(yaml.safe_dump({"name": "zoned", "observation_end": zoned}))
    ds = load_dataset(folder)
    assert ds.observation_end == pd.Timestamp("2024-03-31") and ds.observation_end.tzinfo is None
    for fn in (wt.kpis, wt.survival, wt.repeat_summary):
        pd.testing.assert_frame_equal(fn(ds).to_pandas(), fn(hm).to_pandas())


def test_kpis_by_month_and_day_agree(hm):
    m = wt.kpis(hm, period="month").to_pandas()
    assert [(r.active_users, r.new_users, r.customers, r.first_time_customers, r.revenue, r.purchases) for r in m.itertuples()] == [
        (3, 4, 2, 2, 43.0, 4), (2, 1, 0, 0, 0.0, 0), (2, 1, 2, 1, 80.0, 2)]
    day = wt.kpis(hm, period="day").to_pandas()
    assert len(day) == 91 and day.revenue.sum() == m.revenue.sum() and day.new_users.sum() == m.new_users.sum()
    assert day.first_time_customers.sum() == m.first_time_customers.sum() == 3
    assert m.complete.tolist() == [True, True, False]  # March ends after the end (Mar 31 00:00)
    assert day.complete.sum() == 90 and not day.complete.iloc[-1]  # Mar 30 ended exactly at the end; Mar 31 did not


def test_events_per_user_by_hand(hm):
    k = wt.events_per_user(hm).to_pandas()
    # u3 and u4 2 events, u2 4, u1 10 (its Apr 5 event is after the observation end)
    assert list(zip(k.n, k.users)) == [(2, 2), (4, 1), (10, 1)]
    p = wt.events_per_user(hm, event_type="purchase").to_pandas()
    assert list(zip(p.n, p.users)) == [(1, 2), (4, 1)]  # u2 and u4 once, u1 four times


def test_purchase_amounts_by_hand(hm):
    b = wt.purchase_amounts(hm, bins_per_decade=1).to_pandas()
    # amounts 5 and 8 in [1, 10); 10, 20, 30 and 50 in [10, 100): 10 is exactly on the edge
    assert list(zip(b["bin"], b.low, b.high, b.purchases)) == [(0, 1.0, 10.0, 2), (1, 10.0, 100.0, 4)]
    b8 = wt.purchase_amounts(hm).to_pandas()
    assert b8.purchases.sum() == 6 and b8.loc[b8["bin"] == 8, "purchases"].item() == 1  # 10 -> 8 x log10(10) = 8
    assert (b8.low < b8.high).all() and b8["bin"].is_monotonic_increasing


def test_cohort_retention_by_hand(hm):
    c = wt.cohort_retention(hm).to_pandas()
    rows = [(str(r.cohort.date()), r.period_index, r.cohort_size, r.active, r.share) for r in c.itertuples()]
    assert rows == [
        ("2024-01-01", 0, 4, 3, 0.75), ("2024-01-01", 1, 4, 2, 0.5), ("2024-01-01", 2, 4, 1, 0.25),
        ("2024-02-01", 0, 1, 0, 0.0), ("2024-02-01", 1, 1, 1, 1.0),
        ("2024-03-01", 0, 1, 0, 0.0),
    ]
    w = wt.cohort_retention(hm, period="week").to_pandas()
    jan1 = w[w.cohort == pd.Timestamp("2024-01-01")]
    assert jan1.period_index.tolist() == list(range(13)) and jan1.cohort_size.iloc[0] == 2
    assert jan1.active.tolist()[:5] == [2, 1, 2, 0, 1]  # u1+u2, u1 (adopted), u1+u2 (after cancel), -, u1


def test_cohort_retention_reconciles_with_events(rnd):
    c = wt.cohort_retention(rnd, period="week").to_pandas()
    s = wt.survival(rnd).to_pandas()
    assert c.groupby("cohort").cohort_size.first().sum() == len(s)
    assert (c.active <= c.cohort_size).all() and c.share.between(0, 1).all()
    assert c.groupby("cohort").period_index.apply(lambda x: list(x) == list(range(len(x)))).all()


# ------------------------------------------------------------------ conversion
def test_conversion_by_hand(hm):
    c = by(wt.conversion(hm).to_pandas(), "user_id")
    assert set(c) == {"u1", "u2", "u3", "u4", "u5", "u7"}
    got = {u: (r["converted"], r["days_to_convert"], r["observed_days"], r["cocreated_before_conversion"]) for u, r in c.items()}
    assert got["u1"] == (1, 4.0, 90.0, 1)  # feedback on day 2, first purchase day 4
    assert got["u2"][0] == 1 and got["u2"][1] == pytest.approx(22 / 24) and got["u2"][2:] == (89.5, 0)
    assert got["u3"][0] == 0 and math.isnan(got["u3"][1]) and got["u3"][2:] == (81.0, 1)  # co-created, never bought
    assert got["u4"] == (1, 34.0, 55.0, 0)  # feedback came after the purchase
    assert got["u7"][0] == 0 and got["u7"][2:] == (76.0, 0)


def test_conversion_risk_sets_by_hand(hm):
    r = by(wt.conversion_risk_sets(hm).to_pandas(), "tenure_bin", "exposed", "segment")
    # bin 0: u1 unexposed (0, 2] then exposed (2, 4] and buys; u3 (0, 2.25] then exposed; u5 unexposed (0, 7]
    assert (r[0, 0, "a"]["at_risk"], r[0, 0, "a"]["events"], r[0, 0, "a"]["exposure_days"]) == (3, 0, 11.25)
    assert (r[0, 1, "a"]["at_risk"], r[0, 1, "a"]["events"], r[0, 1, "a"]["exposure_days"]) == (2, 1, 6.75)
    # u2 buys 22 hours after signup; u4 buys on day 34 (bin (28, 35]) and its later feedback does not count
    assert (r[0, 0, "b"]["at_risk"], r[0, 0, "b"]["events"]) == (3, 1)
    assert r[0, 0, "b"]["exposure_days"] == pytest.approx(22 / 24 + 7 + 7)
    assert (r[4, 0, "b"]["at_risk"], r[4, 0, "b"]["events"], r[4, 0, "b"]["exposure_days"]) == (2, 1, 13.0)
    df = wt.conversion_risk_sets(hm).to_pandas()
    assert df.events.sum() == 3 and (df.events <= df.at_risk).all()


def test_conversion_risk_sets_totals_match_conversion(rnd):
    conv = wt.conversion(rnd).to_pandas()
    rs = wt.conversion_risk_sets(rnd, bin_days=5, strata=("channel",)).to_pandas()
    time_at_risk = conv.days_to_convert.fillna(conv.observed_days)
    assert rs.events.sum() == ((conv.converted == 1) & (conv.days_to_convert > 0)).sum()
    assert rs.exposure_days.sum() == pytest.approx(time_at_risk.sum())


# ------------------------------------------------------------------ experiments and referrals
def test_experiment_outcomes_by_hand(hm):
    e = by(wt.experiment_outcomes(hm, "cocreation_invite", horizon_days=30).to_pandas(), "user_id")
    got = {u: (r["arm"], r["took_part"], r["retained"], r["observed"], r["pre_activity"]) for u, r in e.items()}
    assert got == {
        "u1": ("control", 0, 1, 1, 2),  # its feedback (Jan 3) came before assignment (Jan 4); 2 events in the 28 days before
        "u3": ("invite", 1, 0, 1, 0),  # feedback 2 days after assignment; churned at day 22 < 30
        "u4": ("invite", 1, 1, 0, 1),  # Mar 12 + 30 days is after the observation end; bought Mar 10
        "u5": ("control", 0, 1, 0, 0),
    }
    assert e["u4"]["segment"] == "b" and e["u4"]["assigned_at"] == pd.Timestamp("2024-03-12")
    other = wt.experiment_outcomes(hm, "pricing").to_pandas()
    assert other.user_id.tolist() == ["u2"] and other.retained.tolist() == [0]


def test_experiment_outcomes_observed_only_once_churn_by_the_horizon_can_be_judged(hm):
    def got(**kw):
        e = wt.experiment_outcomes(hm, "cocreation_invite", horizon_days=60, **kw).to_pandas()
        return {r.user_id: (r.retained, r.observed) for r in e.itertuples()}

    # u1: Jan 4 + 60 days = Mar 4, on or before the end, but it was active Mar 25 and whether it
    # then went quiet is not known until Mar 4 + 30 days = Apr 3 > Mar 31: not observed.
    # u3: Jan 10 + 60 = Mar 10; Mar 10 + 30 = Apr 9 > Mar 31: not observed either.
    assert got() == {"u1": (1, 0), "u3": (0, 0), "u4": (1, 0), "u5": (1, 0)}
    # a 20-day window: Mar 4 + 20 = Mar 24 and Mar 10 + 20 = Mar 30 are judged
    assert got(churn_after_days=20) == {"u1": (1, 1), "u3": (0, 1), "u4": (1, 0), "u5": (1, 0)}
    # cancels only: the horizon alone decides (u3 never cancels: retained)
    assert got(churn="cancel") == {"u1": (1, 1), "u3": (1, 1), "u4": (1, 0), "u5": (1, 0)}


def test_referrals_by_hand(hm):
    r = wt.referrals(hm).to_pandas()
    rows = [(x.user_id, x.exposed, x.exposure_days, x.referrals) for x in r.itertuples()]
    assert rows == [
        ("u1", 0, 2.0, 1),  # u2 signed up 12 hours in, before u1's first feedback (day 2)
        ("u1", 1, 58.0, 1),  # u3 signed up on day 9; u1 censored at day 60
        ("u2", 0, 14.0, 0),  # u6 signed up after u2 cancelled (and after the observation end)
        ("u3", 0, 2.25, 0),
        ("u3", 1, 19.75, 1),  # u7
        ("u4", 0, 25.0, 0),  # censored at day 25: its feedback (day 39) and u5's signup (day 44) come later
    ]  # u5 censored at signup: no observed time, no rows
    r = wt.referrals(hm, churn="cancel").to_pandas()  # cancels only: censored at the end
    rows = [(x.user_id, x.exposed, x.exposure_days, x.referrals) for x in r.itertuples()]
    assert ("u4", 1, 16.0, 1) in rows and ("u1", 1, 88.0, 1) in rows and ("u5", 0, 11.0, 0) in rows
    assert r.columns.tolist() == ["user_id", "exposed", "exposure_days", "referrals", "channel", "segment", "age_years"]


def test_referrals_by_calendar_period_by_hand(hm):
    """Periods of 10 days from the first observed signup (u1, Jan 1 00:00)."""
    r = wt.referrals(hm, period_days=10).to_pandas()
    got = {(x.user_id, x.exposed, x.period): (round(x.exposure_days, 9), x.referrals) for x in r.itertuples()}
    assert got == {
        ("u1", 0, 0): (2.0, 1),  # u2 at day 0.5
        ("u1", 1, 0): (8.0, 1),  # u3 at day 9
        **{("u1", 1, p): (10.0, 0) for p in (1, 2, 3, 4, 5)},  # censored at day 60
        ("u2", 0, 0): (9.5, 0),  # signed up at day 0.5, cancelled at day 14.5
        ("u2", 0, 1): (4.5, 0),
        ("u3", 0, 0): (1.0, 0),  # signed up on day 9, feedback at day 11.25
        ("u3", 0, 1): (1.25, 0),
        ("u3", 1, 1): (8.75, 1),  # u7 at day 14
        ("u3", 1, 2): (10.0, 0),
        ("u3", 1, 3): (1.0, 0),  # churned at day 31
        ("u4", 0, 3): (5.0, 0),  # signed up on day 35, censored at day 60
        ("u4", 0, 4): (10.0, 0),
        ("u4", 0, 5): (10.0, 0),
    }
    assert r.columns.tolist() == ["user_id", "exposed", "period", "exposure_days", "referrals", "channel", "segment", "age_years"]


@pytest.mark.parametrize("exposure,period_days,churn", [("feedback", 28, "cancel_or_inactivity"), ("adopted", 1, "cancel"), ("feedback", 0.5, "inactivity")])
def test_referrals_by_period_sum_to_the_unsplit_table(rnd, exposure, period_days, churn):
    flat = wt.referrals(rnd, exposure=exposure, churn=churn).to_pandas()
    split = wt.referrals(rnd, exposure=exposure, churn=churn, period_days=period_days).to_pandas()
    assert (split.exposure_days > 0).all() and split.period.min() >= 0
    assert not split.duplicated(["user_id", "exposed", "period"]).any()
    summed = split.groupby(["user_id", "exposed"])[["exposure_days", "referrals"]].sum()
    flat = flat.set_index(["user_id", "exposed"])[["exposure_days", "referrals"]]
    assert summed.index.equals(flat.index)
    np.testing.assert_allclose(summed.exposure_days, flat.exposure_days, rtol=1e-12)
    assert (summed.referrals == flat.referrals).all()  # no referral lost at a period edge
    assert len(split) > len(flat)


def test_referrals_refuse_an_attribute_named_like_their_own_columns(tmp_path):
    folder = write_handmade(tmp_path / "clash")
    users = pd.read_parquet(folder / "users.parquet").rename(columns={"age_years": "period"})
    users.to_parquet(folder / "users.parquet", index=False)
    with pytest.raises(DataError, match=r"users.period: attribute name period is used by the analysis tables .* rename it"):
        load_dataset(folder)  # refused when the dataset is loaded (docs/dataset-contract.md), before any table


def test_referrals_totals_on_messy_data(rnd):
    r = wt.referrals(rnd, exposure="adopted").to_pandas()
    surv = wt.survival(rnd).to_pandas()
    assert r.exposure_days.sum() == pytest.approx(surv.duration.sum())
    assert (r.exposure_days > 0).all() and r.referrals.sum() > 0
    users = random_tables()["users"]
    assert r.referrals.sum() <= users.referred_by.notna().sum()


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "call,match",
    [
        (lambda ds: wt.kpis(ds, period="year"), r"period='year' is not one of 'day', 'week', 'month'"),
        (lambda ds: wt.cohort_retention(ds, period="quarter"), "period='quarter'"),
        (lambda ds: wt.repeat_summary(ds, time_unit="month"), "time_unit='month'"),
        (lambda ds: wt.repeat_summary(ds, calibration_end="2025-01-01"), "after the observation end 2024-03-31"),
        (lambda ds: wt.repeat_summary(ds, calibration_end="2024-03-01", holdout_end="2024-02-01"), "holdout_end 2024-02-01 is before calibration_end"),
        (lambda ds: wt.repeat_summary(ds, calibration_end="not a date"), "calibration_end='not a date' is not a date"),
        (lambda ds: wt.episodes(ds, exposure="purchase"), "exposure='purchase' is not one of 'feedback', 'adopted'"),
        (lambda ds: wt.risk_sets(ds, strata=("segment", "height")), r"strata 'height' not among the user attributes .*channel, segment, age_years"),
        (lambda ds: wt.risk_sets(ds, bin_days=0), "bin_days must be a positive number"),
        (lambda ds: wt.referrals(ds, period_days=0), "period_days must be a positive number"),
        (lambda ds: wt.events_per_user(ds, event_type="buy"), "event_type='buy' is not one of 'active', 'purchase'"),
        (lambda ds: wt.purchase_amounts(ds, bins_per_decade=2.5), "bins_per_decade must be a whole number >= 1, got 2.5"),
        (lambda ds: wt.purchase_amounts(ds, bins_per_decade=0), "bins_per_decade must be a whole number >= 1"),
        (lambda ds: wt.survival(ds, churn_after_days=-3), "churn_after_days must be a positive number of days, got -3"),
        (lambda ds: wt.survival(ds, churn_after_days=None), "churn_after_days must be a positive number of days, got None"),
        (lambda ds: wt.survival(ds, churn="silence"), "churn='silence' is not one of 'cancel', 'inactivity', 'cancel_or_inactivity'"),
        (lambda ds: wt.survival(ds, churn_after_days="30"), "churn_after_days must be a positive number"),
        (lambda ds: wt.experiment_outcomes(ds, "nope"), r"experiment 'nope' not in dataset 'handmade'; its assignments hold: 'cocreation_invite', 'pricing'"),
        (lambda ds: wt.experiment_outcomes(ds, "pricing", horizon_days=0), "horizon_days must be a positive number"),
    ],
)
def test_bad_arguments_are_refused_with_a_clear_parameter_error(hm, call, match):
    with pytest.raises(ParameterError, match=match):
        call(hm)


def test_missing_tables_and_columns_are_named(tmp_path):
    tables = handmade_tables()
    folder = tmp_path / "no-assignments"
    folder.mkdir()
    users = tables["users"].drop(columns=["referred_by"])
    users.to_parquet(folder / "users.parquet", index=False)
    tables["events"].to_parquet(folder / "events.parquet", index=False)
    ds = load_dataset(folder)
    with pytest.raises(ParameterError, match=r"experiment_outcomes\(\) needs the 'assignments' table.*add assignments.parquet"):
        wt.experiment_outcomes(ds, "cocreation_invite")
    with pytest.raises(ParameterError, match="has no users.referred_by column"):
        wt.referrals(ds)
    s = by(wt.survival(ds).to_pandas(), "user_id")  # no dataset.yml: the observation end is the last event, Apr 5
    # u1 active on Apr 5 itself: censored at Apr 5 - 30 days = Mar 6 (Jan 1 -> Mar 6 = 65 days)
    assert "u6" not in s and s["u1"]["duration"] == 65.0 and s["u1"]["churned"] == 0


def test_benchmark_sides_agree_on_messy_data(rnd_folder):
    """benchmarks/bench_tables.py exits 1 if its plain-pandas version and the
    workbench disagree; run it on the small messy dataset (no timing checked)."""
    import subprocess
    import sys

    bench = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_tables.py"
    proc = subprocess.run([sys.executable, str(bench), "--dataset", str(rnd_folder), "--no-validated"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "results equal: yes" in proc.stdout and "peak RSS (MB)" in proc.stdout
