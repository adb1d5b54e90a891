"""The same table functions give the same results on DuckDB and on PySpark
(local mode): every analysis table, on the hand-made dataset, on a messy
random one (sub-second times, ties, nulls) and on the CDNOW sample.

Skips with the reason when pyspark or Java is missing; CI has both
(``pip install -e '.[dev]'``). One SparkSession for the whole test session.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil

import pandas as pd
import pytest

from test_tables import write_handmade, write_random
from workbench import tables as wt
from workbench.data import load_dataset
from workbench.data.simulate import simulate
from workbench.errors import ParameterError, WorkbenchError

pytestmark = pytest.mark.spark


def _why_no_spark() -> str | None:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed (pip install -e '.[spark]')"
    java_home = os.environ.get("JAVA_HOME")
    if not shutil.which("java") and not (java_home and os.path.exists(os.path.join(java_home, "bin", "java"))):
        return "Java is not installed (PySpark needs Java 17: apt-get install openjdk-17-jre-headless)"
    return None


@pytest.fixture(scope="session")
def spark():
    reason = _why_no_spark()
    if reason:
        pytest.skip(reason)
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("workbench-parity")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.session.timeZone", "UTC")  # dataset timestamps are UTC
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def spark_con(spark):
    import ibis

    return ibis.pyspark.connect(spark)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    return {
        "handmade": write_handmade(tmp_path_factory.mktemp("handmade")),
        "random": write_random(tmp_path_factory.mktemp("random"), n_users=250, seed=11),
        # as the simulator writes it (LZ4-compressed Parquet): Spark must read that too
        "simulated": simulate(users=400, seed=5, progress=False).write(tmp_path_factory.mktemp("simulated") / "sim"),
    }


@pytest.fixture(scope="module")
def both(folders, spark_con):
    """dataset name -> (DuckDB dataset, PySpark dataset), loaded once each."""
    cache = {}

    def get(name):
        if name not in cache:
            path = folders.get(name, name)
            try:
                cache[name] = (load_dataset(path), load_dataset(path, backend=spark_con))
            except WorkbenchError as exc:  # pragma: no cover - CDNOW ships with the repository
                pytest.skip(f"dataset {name} not available: {exc}")
        return cache[name]

    return get


def normalised(df: pd.DataFrame) -> pd.DataFrame:
    """Same dtypes whichever backend produced the frame, rows in one order."""
    df = df.copy()
    for c in df.columns:
        s = df[c]
        if s.dtype == object and s.map(lambda v: isinstance(v, dt.date)).any():
            s = pd.to_datetime(s)
        if pd.api.types.is_datetime64_any_dtype(s):
            s = s.astype("datetime64[ns]")
        elif pd.api.types.is_integer_dtype(s) or pd.api.types.is_bool_dtype(s):
            s = s.astype("int64")
        elif pd.api.types.is_float_dtype(s):
            s = s.astype("float64")
        else:
            s = s.astype(object).where(s.notna(), None)
        df[c] = s
    keys = [c for c in df.columns if not pd.api.types.is_float_dtype(df[c])]
    return df.sort_values(keys, na_position="first", kind="stable").reset_index(drop=True)


CASES = [
    # every table with its defaults, on both test datasets
    *[(ds, name, {}) for ds in ("handmade", "random") for name in wt.TABLE_FUNCTIONS if name != "experiment_outcomes"],
    ("handmade", "experiment_outcomes", {"experiment": "cocreation_invite", "horizon_days": 30}),
    ("random", "experiment_outcomes", {"experiment": "cocreation_invite"}),
    # the arguments that change the arithmetic
    ("handmade", "kpis", {"period": "month"}),
    ("random", "kpis", {"period": "day"}),
    ("random", "cohort_retention", {"period": "week"}),
    ("handmade", "repeat_summary", {"time_unit": "day", "calibration_end": "2024-02-15", "holdout_end": "2024-03-31"}),
    ("random", "repeat_summary", {"calibration_end": "2024-04-30"}),
    ("random", "survival", {"churn": "cancel"}),
    ("random", "survival", {"churn": "inactivity", "churn_after_days": 12.5}),
    ("random", "churn_causes", {"churn": "inactivity"}),
    ("handmade", "survival", {"churn_after_days": 12.5}),  # censored at end - 12.5 days, and at signup
    ("handmade", "experiment_outcomes", {"experiment": "cocreation_invite", "horizon_days": 60, "churn_after_days": 20}),
    ("random", "episodes", {"exposure": "feedback", "churn_after_days": 12.5}),
    ("random", "risk_sets", {"exposure": "feedback", "bin_days": 3.5, "strata": ("segment", "channel")}),
    ("random", "conversion_risk_sets", {"exposure": "adopted", "strata": ()}),
    ("random", "referrals", {"exposure": "adopted"}),
    ("random", "referrals", {"exposure": "feedback", "period_days": 7}),
    ("handmade", "referrals", {"period_days": 10}),
    ("random", "events_per_user", {"event_type": "purchase"}),
    ("random", "purchase_amounts", {"bins_per_decade": 3}),
    ("random", "repeat_opportunities", {"period": "week", "calibration_end": "2024-05-31"}),
    ("random", "repeat_summary_compressed", {"covariates": ("segment", "exposed"), "exposure": "adopted", "calibration_end": "2024-04-30"}),
    ("cdnow-sample", "repeat_summary", {"calibration_end": "1997-09-30"}),
    ("simulated", "survival", {}),
    ("simulated", "repeat_summary", {}),
    # the tables of the bounded co-creation paths
    ("random", "dose_risk_sets", {"exposure": "feedback", "max_dose": 1, "bin_days": 3.5, "strata": ("channel",)}),
    ("random", "landmark_risk_sets", {"exposure": "feedback", "landmarks": (10, 45.5), "covariates": ("segment", "channel")}),
    ("random", "landmark_users", {"exposure": "feedback", "landmarks": (10, 45.5), "bin_days": 3.5}),
    ("random", "risk_sets", {"exposure": "feedback", "naive_ever": True}),
    ("random", "referral_counts", {"period_days": 7, "strata": ("segment", "channel")}),
    ("simulated", "referral_counts", {"churn": "cancel"}),
    ("simulated", "landmark_risk_sets", {"covariates": ("segment", "prior_activity")}),
]


@pytest.mark.parametrize("dataset,table,options", CASES, ids=[f"{d}-{t}-{i}" for i, (d, t, _) in enumerate(CASES)])
def test_duckdb_and_pyspark_agree(both, dataset, table, options):
    duck, spark_ds = both(dataset)
    fn = wt.TABLE_FUNCTIONS[table]
    a = normalised(fn(duck, **options).to_pandas())
    b = normalised(fn(spark_ds, **options).to_pandas())
    assert len(a) > 0, "an empty table proves nothing"
    assert list(a.columns) == list(b.columns)
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9, atol=1e-9)


def test_cluster_score_products_agree(both):
    """The one engine pass of the cluster-robust variances (an in-memory table of
    cell coefficients joined to per-user rows) gives the same sums on both."""
    import numpy as np

    from workbench.tables.influence import cluster_score_products

    duck, spark_ds = both("random")
    keys = ["period", "exposed"]
    cells = wt.referrals(duck, period_days=7).to_pandas()[keys].drop_duplicates().reset_index(drop=True)
    rng = np.random.default_rng(2)
    for k in range(2):
        cells[f"a{k}"], cells[f"b{k}"], cells[f"c{k}"] = rng.normal(size=(3, len(cells)))
    cells["rate"] = rng.uniform(0.1, 1.0, len(cells))
    out = [cluster_score_products(wt.referrals(ds, period_days=7), cells, keys, outcome="referrals", exposure="exposure_days",
                                  rate="rate").to_pandas() for ds in (duck, spark_ds)]
    assert out[0]["clusters"].iloc[0] > 100
    pd.testing.assert_frame_equal(normalised(out[0]), normalised(out[1]), check_exact=False, rtol=1e-9, atol=1e-9)


def test_cdnow_figures_on_pyspark(both):
    _, spark_ds = both("cdnow-sample")
    r = wt.repeat_summary(spark_ds, calibration_end="1997-09-30").to_pandas()
    assert (len(r), int((r.frequency > 0).sum()), int(r.frequency.sum())) == (2357, 946, 2457)


def test_a_spark_session_not_in_utc_is_refused(both, spark):
    _, spark_ds = both("handmade")
    spark.conf.set("spark.sql.session.timeZone", "America/New_York")
    try:
        with pytest.raises(ParameterError, match="time zone is 'America/New_York'.*spark.sql.session.timeZone"):
            wt.survival(spark_ds)
    finally:
        spark.conf.set("spark.sql.session.timeZone", "UTC")
