"""The experiment engine's tables: every metric by hand on the hand-made
dataset (see test_tables.handmade_tables for its story), the aggregates
equal to sums over the per-user table (caps, segments, days, time to event),
declared types, clear errors, and DuckDB/PySpark parity."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from test_parity import spark  # noqa: F401  (the session-wide SparkSession fixture)

from workbench.data import load_dataset
from workbench.errors import DataError, ParameterError
from workbench.tables import experiments as te

from test_tables import write_handmade, write_random

H = 30


@pytest.fixture(scope="module")
def hm(tmp_path_factory):
    return load_dataset(write_handmade(tmp_path_factory.mktemp("handmade")))


@pytest.fixture(scope="module")
def rnd(tmp_path_factory):
    return load_dataset(write_random(tmp_path_factory.mktemp("random")))


def users_by_id(ds, **kw):
    return te.experiment_users(ds, "cocreation_invite", **kw).to_pandas().set_index("user_id")


# ------------------------------------------------------------------ by hand
def test_every_metric_by_hand(hm):
    """Observation end Mar 31; horizon 30 days; default churn rule (30 days of inactivity).

    u1 (control) assigned Jan 4: window [Jan 4, Feb 3): purchases Jan 5 00:00 (10), Jan 5 18:00 (5), Jan 20 (20);
       adopted Jan 10 (x2) and Feb 1; active days since assignment: 1, 6, 16, 28 -> 4. Pre-window [Dec 5, Jan 4):
       active Jan 1 and feedback Jan 3 -> 2 active days. First purchase ever Jan 5: converted after 1 day.
       Censored at Mar 1 (end - 30 days): not churned within 30 days; window + 30 days ends Mar 4 <= Mar 31.
    u3 (invite) assigned Jan 10 at signup: feedback at 2.25 days, active Feb 1 (day 22), then silent -> churned at
       day 22: not retained; no purchase in 30 days (follow-up 81 days).
    u4 (invite) assigned Mar 12, bought Mar 10 (a customer at assignment: no conversion value), window not over:
       every window value null; feedback Mar 15 is an idea after 3 days (time to event needs no full window);
       censored at Mar 1, before assignment: time to churn 0, censored.
    u5 (control) assigned Mar 20 at signup, no events: followed 11 days: purchase and idea censored at 11 days.
    """
    u = users_by_id(hm, horizon_days=H)
    assert list(u.index) == ["u1", "u3", "u4", "u5"]
    u1, u3, u4, u5 = (u.loc[k] for k in ("u1", "u3", "u4", "u5"))
    assert (u1.observed, u1.retained_observed, u1.customer_at_assignment, u1.followup_days) == (1, 1, 0, 87.0)
    assert (u1.retained, u1.converted, u1.feedback, u1.adopted) == (1, 1, 0, 1)
    assert (u1.purchases, u1.revenue, u1.active_days) == (3, 35.0, 4)
    assert (u1.pre_active, u1.pre_feedback, u1.pre_adopted, u1.pre_purchases, u1.pre_revenue, u1.pre_active_days) == (1, 1, 0, 0, 0.0, 2)
    assert (u1.churn_days, u1.churn_event, u1.purchase_days, u1.purchase_event, u1.idea_days, u1.idea_event) == (30.0, 0, 1.0, 1, 30.0, 0)
    assert (u3.retained, u3.converted, u3.feedback, u3.purchases, u3.active_days) == (0, 0, 1, 0, 2)
    assert (u3.churn_days, u3.churn_event, u3.idea_days, u3.idea_event, u3.purchase_days) == (22.0, 1, 2.25, 1, 30.0)
    assert (u4.observed, u4.customer_at_assignment) == (0, 1)
    assert u4[["retained", "converted", "feedback", "adopted", "purchases", "revenue", "active_days"]].isna().all()
    assert (u4.pre_purchases, u4.pre_revenue, u4.pre_active_days) == (1, 50.0, 1)
    assert (u4.idea_days, u4.idea_event, u4.churn_days, u4.churn_event) == (3.0, 1, 0.0, 0)
    assert pd.isna(u4.purchase_days) and pd.isna(u4.purchase_event)
    assert (u5.observed, u5.purchase_days, u5.purchase_event, u5.idea_days, u5.churn_days) == (0, 11.0, 0, 11.0, 0.0)
    assert list(u.columns[-3:]) == ["channel", "segment", "age_years"]


def test_window_edges_by_hand(hm):
    """u2 in 'pricing', assigned Jan 2 00:00 (signup Jan 1 12:00): active Jan 1 12:00 is before assignment
    (pre-window), the purchase of 8 at Jan 2 10:00 is in the first 24 hours (active day 0, first purchase
    after 10 hours), the cancel Jan 15 12:00 on day 13 (churned after 13.5 days), active Jan 20 on day 18.
    u1 with a 2-day horizon: pre-window [Jan 2, Jan 4) holds the feedback of Jan 3, not the activity of Jan 1;
    the window [Jan 4, Jan 6) both purchases of Jan 5 (one active day)."""
    u2 = te.experiment_users(hm, "pricing", horizon_days=H).to_pandas().set_index("user_id").loc["u2"]
    assert (u2.active_days, u2.purchases, u2.revenue, u2.converted) == (3, 1, 8.0, 1)
    assert u2.purchase_days == pytest.approx(10 / 24) and u2.purchase_event == 1
    assert (u2.retained, u2.churn_event, u2.churn_days) == (0, 1, 13.5)
    assert (u2.pre_active, u2.pre_active_days, u2.customer_at_assignment) == (1, 1, 0)
    u1 = users_by_id(hm, horizon_days=2).loc["u1"]
    assert (u1.pre_active_days, u1.pre_feedback, u1.pre_active) == (1, 1, 1)
    assert (u1.purchases, u1.revenue, u1.active_days, u1.adopted) == (2, 15.0, 1, 0)


def test_retention_needs_the_horizon_plus_the_inactivity_window(hm):
    """With a 50-day horizon u1's window ends Feb 23 (observed) but churn by then is
    only known 30 days later, Mar 24 <= Mar 31; with 60 days it would be Apr 3: not known.
    Under the cancel rule only the horizon itself must be over."""
    u = users_by_id(hm, horizon_days=60)
    assert (u.loc["u1", "observed"], u.loc["u1", "retained_observed"]) == (1, 0) and pd.isna(u.loc["u1", "retained"])
    c = users_by_id(hm, horizon_days=60, churn="cancel")
    assert (c.loc["u1", "retained_observed"], c.loc["u1", "retained"]) == (1, 1)
    # under the cancel rule u3 never churns (no cancel): retained, censored at the horizon
    assert (c.loc["u3", "retained"], c.loc["u3", "churn_event"], c.loc["u3", "churn_days"]) == (1, 0, 60.0)


def test_arms_table(hm):
    a = te.experiment_arms(hm, "cocreation_invite", horizon_days=H).to_pandas().set_index("arm")
    assert a.loc["control"].tolist() == [2, 1, 1, 0, 87.0]
    assert a.loc["invite"].tolist() == [2, 1, 1, 1, 81.0]


# ------------------------------------------------------------------ aggregates = sums over users
def components(u: pd.DataFrame, metric: str):
    m = te.METRICS[metric]
    y = u[m.column].astype(float)
    keep = y.notna()
    d = u[m.denominator].astype(float) if m.denominator else pd.Series(1.0, index=u.index)
    x = u[m.pre].astype(float) if m.pre else pd.Series(0.0, index=u.index)
    v = u[m.pre_denominator].astype(float) if m.pre_denominator else pd.Series(1.0, index=u.index)
    return y[keep], d[keep], x[keep], v[keep]


def expected_sums(u: pd.DataFrame, metric: str) -> dict:
    y, d, x, v = components(u, metric)
    c = {"y": y, "d": d, "x": x, "v": v}
    out = {"n": len(y)}
    for k in "ydxv":
        out[f"sum_{k}"] = c[k].sum()
    for a, b in ("yy", "dd", "xx", "vv", "yd", "yx", "yv", "dx", "dv", "xv"):
        out[f"sum_{a}{b}"] = (c[a] * c[b]).sum()
    return out


def capped(u: pd.DataFrame, q: float) -> pd.DataFrame:
    u = u.copy()
    obs = u["observed"] == 1
    for c in te.CAPPABLE:
        cap = np.percentile(u.loc[obs, c].dropna().astype(float), q)  # linear interpolation, as quantile_cont
        u[c] = np.minimum(u[c].astype(float), cap).where(u[c].notna())
    return u


@pytest.mark.parametrize("cap", [None, 90])
def test_arm_stats_are_the_sums_over_users(rnd, cap):
    u = te.experiment_users(rnd, "cocreation_invite", horizon_days=H).to_pandas()
    stats = te.experiment_arm_stats(rnd, "cocreation_invite", horizon_days=H, cap_percentile=cap).to_pandas()
    assert set(stats["metric"]) == set(te.FIXED_HORIZON_METRICS)
    source = capped(u, cap) if cap else u
    for _, r in stats.iterrows():
        exp = expected_sums(source[source["arm"] == r["arm"]], r["metric"])
        for k, v in exp.items():
            assert r[k] == pytest.approx(v, rel=1e-12, abs=1e-9), (r["arm"], r["metric"], k)
        if cap:
            col = te.METRICS[r["metric"]].column
            want = np.percentile(u.loc[u.observed == 1, col].astype(float), cap) if col in te.CAPPABLE else np.nan
            assert (np.isnan(want) and np.isnan(r["cap_y"])) or r["cap_y"] == pytest.approx(want)
    assert stats.loc[stats.metric == "revenue", "n"].sum() == (u.observed == 1).sum()
    assert stats.loc[stats.metric == "converted", "n"].sum() == ((u.observed == 1) & (u.customer_at_assignment == 0)).sum()
    if cap:  # the cap binds: capped revenue sums below the raw one
        raw = te.experiment_arm_stats(rnd, "cocreation_invite", horizon_days=H, metrics=["revenue"]).to_pandas()
        assert stats.loc[stats.metric == "revenue", "sum_y"].sum() < raw["sum_y"].sum()


def test_segment_stats_split_the_arm_stats(rnd):
    stats = te.experiment_arm_stats(rnd, "cocreation_invite", horizon_days=H, segment_by="segment").to_pandas()
    whole = te.experiment_arm_stats(rnd, "cocreation_invite", horizon_days=H).to_pandas()
    assert stats["segment"].isna().any()  # users without a segment are their own group
    summed = stats.groupby(["arm", "metric"])[["n", "sum_y", "sum_yy", "sum_yd"]].sum().sort_index()
    pd.testing.assert_frame_equal(summed, whole.set_index(["arm", "metric"])[["n", "sum_y", "sum_yy", "sum_yd"]].sort_index(),
                                  check_dtype=False, rtol=1e-12)


def test_daily_sums_are_cumulative_and_end_at_the_arm_stats(rnd):
    u = te.experiment_users(rnd, "cocreation_invite", horizon_days=H).to_pandas()
    daily = te.experiment_daily(rnd, "cocreation_invite", horizon_days=H, metrics=["retained", "revenue"]).to_pandas()
    stats = te.experiment_arm_stats(rnd, "cocreation_invite", horizon_days=H, metrics=["retained", "revenue"]).to_pandas()
    last = daily.sort_values("day").groupby(["arm", "metric"]).tail(1).set_index(["arm", "metric"]).sort_index()
    pd.testing.assert_frame_equal(last[["n", *te.SUMS]], stats.set_index(["arm", "metric"]).sort_index()[["n", *te.SUMS]],
                                  check_dtype=False, rtol=1e-12)
    for _, g in daily.groupby(["arm", "metric"]):
        assert g["day"].is_monotonic_increasing and g["n"].is_monotonic_increasing
    # a user counts from the day his value is known: ceil((assigned + horizon (+ 30 days for retention) - start) / 1 day)
    start = u["assigned_at"].min()
    known = (u["assigned_at"] + pd.Timedelta(days=H) - start) / pd.Timedelta(days=1)
    day = np.ceil(known).astype(int)
    first = daily[(daily.metric == "revenue")].groupby("arm")["day"].min()
    for arm, d in first.items():
        assert d == day[(u.arm == arm) & (u.observed == 1)].min()
    n_by_day = daily[(daily.metric == "retained") & (daily.arm == "control")].set_index("day")["n"]
    known_r = np.ceil((u["assigned_at"] + pd.Timedelta(days=H + 30) - start) / pd.Timedelta(days=1)).astype(int)
    ctrl = (u.arm == "control") & (u.retained_observed == 1)
    for d, n in n_by_day.items():
        assert n == int((known_r[ctrl] <= d).sum())


def test_time_to_event_counts_match_the_users(rnd):
    u = te.experiment_users(rnd, "cocreation_invite", horizon_days=H).to_pandas()
    tte = te.experiment_time_to_event(rnd, "cocreation_invite", horizon_days=H).to_pandas()
    for metric in te.TIME_TO_EVENT_METRICS:
        m = te.METRICS[metric]
        rows = u[u[m.event].notna()]
        hours = np.ceil(np.round(rows[m.column] * 86_400) / 3600)
        want = rows.assign(days=hours / 24, event=rows[m.event].astype(int)).groupby(["arm", "days", "event"]).size()
        got = tte[tte.metric == metric].set_index(["arm", "days", "event"])["users"]
        pd.testing.assert_series_equal(got.sort_index(), want.sort_index(), check_names=False, check_dtype=False)
    # censored at the horizon at most, never counted as events after it
    assert tte["days"].max() <= H and (tte.loc[tte.event == 1, "days"] <= H).all()


def test_experiment_tables_build_everything_from_one_cached_table(rnd):
    t = te.experiment_tables(rnd, "cocreation_invite", horizon_days=H, cap_percentile=95, segment_by="channel")
    one = te.experiment_arm_stats(rnd, "cocreation_invite", horizon_days=H, cap_percentile=95).to_pandas()
    pd.testing.assert_frame_equal(t.arm_stats.to_pandas(), one)
    assert set(t.time_to_event.to_pandas()["metric"]) == set(te.TIME_TO_EVENT_METRICS)
    assert "channel" in t.segment_stats.columns and len(t.users.to_pandas()) == len(te.experiment_users(rnd, "cocreation_invite").to_pandas())
    assert t.daily is not None and t.arms.to_pandas()["users"].sum() > 0


def test_types_are_the_declared_ones(rnd):
    u = te.experiment_users(rnd, "cocreation_invite", horizon_days=H)
    schema = u.schema()
    for c in ("observed", "retained_observed", "customer_at_assignment", "retained", "converted", "purchases",
              "active_days", "pre_purchases", "churn_event", "idea_event"):
        assert schema[c].is_integer(), c
    for c in ("revenue", "pre_revenue", "followup_days", "churn_days", "purchase_days", "idea_days"):
        assert schema[c].is_floating(), c
    df = u.to_pandas()
    assert str(df["revenue"].dtype) == "float64" and str(df["observed"].dtype) == "int64"
    stats = te.experiment_arm_stats(rnd, "cocreation_invite", cap_percentile=99).to_pandas()
    assert str(stats["n"].dtype) == "int64" and all(str(stats[c].dtype) == "float64" for c in te.SUMS + te.CAPS)
    tte = te.experiment_time_to_event(rnd, "cocreation_invite").to_pandas()
    assert [str(tte[c].dtype) for c in ("days", "event", "users")] == ["float64", "int64", "int64"]


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    "call,message",
    [
        (lambda ds: te.experiment_users(ds, "nope"), r"experiment 'nope' not in dataset 'handmade'; its assignments hold: 'cocreation_invite', 'pricing'"),
        (lambda ds: te.experiment_arm_stats(ds, "pricing", segment_by="region"),
         r"segment_by='region' is not a user attribute of dataset 'handmade' \(attributes: channel, segment, age_years\)"),
        (lambda ds: te.experiment_arm_stats(ds, "pricing", metrics=["revenue", "reveune"]), r"unknown metric\(s\) 'reveune'; the metrics are: retained"),
        (lambda ds: te.experiment_arm_stats(ds, "pricing", metrics=["time_to_churn"]), r"'time_to_churn' cannot go in this table"),
        (lambda ds: te.experiment_time_to_event(ds, "pricing", metrics="revenue"), r"'revenue' cannot go in this table \(it takes: time_to_churn"),
        (lambda ds: te.experiment_arm_stats(ds, "pricing", cap_percentile=100), r"cap_percentile must be a percentile in \[50, 100\)"),
        (lambda ds: te.experiment_daily(ds, "pricing", horizon_days=0), r"horizon_days must be a positive number"),
        (lambda ds: te.experiment_users(ds, "pricing", churn="silence"), r"churn='silence' is not one of"),
    ],
)
def test_bad_arguments_are_clear_errors(hm, call, message):
    with pytest.raises(ParameterError, match=message):
        call(hm)


# ------------------------------------------------------------------ DuckDB and PySpark
@pytest.mark.spark
def test_duckdb_and_pyspark_give_the_same_experiment_tables(tmp_path, spark_con):
    from test_parity import normalised

    folder = write_random(tmp_path / "random", n_users=250, seed=11)
    duck, spark = load_dataset(folder), load_dataset(folder, backend=spark_con)  # noqa: F811
    # one metric of each kind and construct (Spark plans the 150-column aggregates of every metric slowly)
    kw = {"horizon_days": 20, "churn_after_days": 12.5, "cap_percentile": 90, "segment_by": "segment",
          "metrics": ["retained", "converted", "revenue_per_active_day", "time_to_churn", "time_to_purchase"]}
    # one per-user table per backend (cached in the engine), every aggregate from it
    a, b = te.experiment_tables(duck, "cocreation_invite", **kw), te.experiment_tables(spark, "cocreation_invite", **kw)
    for name in ("users", "arms", "arm_stats", "daily", "time_to_event", "segment_stats"):
        x, y = normalised(getattr(a, name).to_pandas()), normalised(getattr(b, name).to_pandas())
        pd.testing.assert_frame_equal(x, y, check_exact=False, rtol=1e-9, atol=1e-9, obj=name)


@pytest.fixture(scope="module")
def spark_con(spark):  # noqa: F811
    import ibis

    return ibis.pyspark.connect(spark)


def test_metric_registry_is_documented():
    """Every metric has a kind the models know and a description for the docs."""
    kinds = {m.kind for m in te.METRICS.values()}
    assert kinds == {"binary", "mean", "ratio", "time_to_event"}
    assert all(m.description for m in te.METRICS.values())
    assert math.isclose(len(te.FIXED_HORIZON_METRICS) + len(te.TIME_TO_EVENT_METRICS), len(te.METRICS))


def test_an_attribute_named_like_a_metric_is_refused(tmp_path):
    import yaml

    from test_tables import handmade_tables

    tables = handmade_tables()
    tables["users"] = tables["users"].rename(columns={"age_years": "revenue"})
    for name, df in tables.items():
        df.to_parquet(tmp_path / f"{name}.parquet", index=False)
    (tmp_path / "dataset.yml").write_text(yaml.safe_dump({"name": "clash", "observation_end": "2024-03-31"}))
    with pytest.raises(DataError, match=r"users.revenue: attribute name revenue is used by the analysis tables .* rename it"):
        load_dataset(tmp_path)  # refused when the dataset is loaded (docs/dataset-contract.md), before any table
