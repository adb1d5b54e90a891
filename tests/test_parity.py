"""The same table functions give the same results on DuckDB, PySpark (local
mode) and PostgreSQL: every analysis table, on the hand-made dataset, on a
messy random one (sub-second times, ties, nulls), on a simulator-written
one, on the CDNOW sample and on a mapped export (US-format local times,
refunds netted, users derived from first events).

Each engine is reached the way an analyst reaches it: Spark by ``backend=``
a session, PostgreSQL by a dataset.yml that names the server (password from
an environment variable) and the tables the test copied into it, as a
warehouse holds them. Skips with the reason when pyspark/Java or the
PostgreSQL binaries are missing (``pip install -e '.[dev]'``; Debian's
``postgresql`` package). One SparkSession and one server for the session.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil

import pandas as pd
import pytest
from export_fixture import write_mapped_export
from postgres_server import postgres_folder

from workbench import tables as wt
from workbench.data import load_dataset
from workbench.data.paths import locate_dataset
from workbench.data.simulate import simulate
from workbench.errors import ParameterError, WorkbenchError

from test_tables import write_handmade, write_random


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
        "export": write_mapped_export(tmp_path_factory.mktemp("export") / "acme"),
        "offsets": write_offsets(tmp_path_factory.mktemp("offsets") / "offsets"),
    }


def write_offsets(folder):
    """A contract CSV dataset whose timestamps carry UTC offsets both ways, or none."""
    folder.mkdir(parents=True)
    stamps = ["2024-01-02T00:00:00+14:00", "2024-01-01T02:00:00-08:00", "2024-01-01T10:00:00Z", "2024-01-01 10:00:00",
              "2024-03-10T02:30:00-05:00", "2024-11-03T01:30:00-04:00", "2024-02-29 23:59:59.5+01:00", "2024-06-30"]
    pd.DataFrame({"user_id": ["a", "b"], "signup_at": ["2023-12-31T20:00:00-05:00", "2024-01-01 00:00:00"]}).to_csv(folder / "users.csv", index=False)
    pd.DataFrame({"user_id": ["a", "b"] * 4, "event_at": stamps, "event_type": "active"}).to_csv(folder / "events.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def engines(folders, request, tmp_path_factory):
    """``get(engine, name)``: the dataset on DuckDB, PySpark or PostgreSQL, loaded once."""
    cache = {}

    def get(engine, name):
        key = (engine, name)
        if key not in cache:
            path = folders.get(name) or locate_dataset(name).folder
            try:
                if engine == "duckdb":
                    cache[key] = load_dataset(path)
                elif engine == "pyspark":
                    cache[key] = load_dataset(path, backend=request.getfixturevalue("spark_con"))
                else:
                    pg = request.getfixturevalue("postgres")
                    cache[key] = load_dataset(postgres_folder(pg, name, path, tmp_path_factory.mktemp("pg") / name))
            except WorkbenchError as exc:  # pragma: no cover - CDNOW ships with the repository
                pytest.skip(f"dataset {name} not available: {exc}")
        return cache[key]

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
    # the mapped export: every table it supports (no segments, referrals or experiments)
    *[("export", name, {}) for name in wt.TABLE_FUNCTIONS
      if name not in ("experiment_outcomes", "referrals", "referral_counts", "risk_sets", "conversion_risk_sets", "dose_risk_sets",
                      "landmark_risk_sets", "landmark_users")],
    ("export", "dose_risk_sets", {"strata": ()}),
    *[("export", name, {"covariates": ()}) for name in ("landmark_risk_sets", "landmark_users")],
    ("export", "risk_sets", {"strata": (), "exposure": "feedback"}),
    ("export", "conversion_risk_sets", {"strata": ()}),
    ("export", "repeat_summary", {"calibration_end": "2025-01-31", "time_unit": "day"}),
    ("export", "survival", {"churn": "cancel"}),
]
ENGINES = (pytest.param("pyspark", marks=pytest.mark.spark), pytest.param("postgres", marks=pytest.mark.postgres))


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("dataset,table,options", CASES, ids=[f"{d}-{t}-{i}" for i, (d, t, _) in enumerate(CASES)])
def test_duckdb_and_other_engines_agree(engines, engine, dataset, table, options):
    duck, other = engines("duckdb", dataset), engines(engine, dataset)
    fn = wt.TABLE_FUNCTIONS[table]
    a = normalised(fn(duck, **options).to_pandas())
    b = normalised(fn(other, **options).to_pandas())
    assert len(a) > 0, "an empty table proves nothing"
    assert list(a.columns) == list(b.columns)
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("engine", ENGINES)
def test_cluster_score_products_agree(engines, engine):
    """The one engine pass of the cluster-robust variances (an in-memory table of
    cell coefficients joined to per-user rows) gives the same sums on every engine."""
    import numpy as np

    from workbench.tables.influence import cluster_score_products

    duck, other = engines("duckdb", "random"), engines(engine, "random")
    keys = ["period", "exposed"]
    cells = wt.referrals(duck, period_days=7).to_pandas()[keys].drop_duplicates().reset_index(drop=True)
    rng = np.random.default_rng(2)
    for k in range(2):
        cells[f"a{k}"], cells[f"b{k}"], cells[f"c{k}"] = rng.normal(size=(3, len(cells)))
    cells["rate"] = rng.uniform(0.1, 1.0, len(cells))
    out = [cluster_score_products(wt.referrals(ds, period_days=7), cells, keys, outcome="referrals", exposure="exposure_days",
                                  rate="rate").to_pandas() for ds in (duck, other)]
    assert out[0]["clusters"].iloc[0] > 100
    pd.testing.assert_frame_equal(normalised(out[0]), normalised(out[1]), check_exact=False, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("engine", ENGINES)
def test_csv_offsets_read_alike(engines, engine):
    """CSV text with +14:00, -08:00, Z or no offset is the same UTC instant on every engine."""
    a, b = engines("duckdb", "offsets"), engines(engine, "offsets")
    x = a.events.order_by(["user_id", "event_at"]).to_pandas()
    y = b.events.order_by(["user_id", "event_at"]).to_pandas()
    assert (x.event_at == pd.Timestamp("2024-01-01 10:00")).sum() == 4  # the first four stamps name one instant
    pd.testing.assert_frame_equal(normalised(x), normalised(y))
    pd.testing.assert_frame_equal(normalised(a.users.to_pandas()), normalised(b.users.to_pandas()))


@pytest.mark.parametrize("engine", ENGINES)
def test_the_mapped_export_reads_alike(engines, engine, folders):
    """The mapping itself -- US-format New York times (including the hours
    daylight saving skips and repeats), refunds netted, users derived -- gives
    the same rows on every engine."""
    a, b = engines("duckdb", "export"), engines(engine, "export")
    customers = pd.read_csv(folders["export"] / "export.csv", dtype=str).customer.nunique()
    for name in ("users", "events"):
        x = normalised(getattr(a, name).to_pandas())
        y = normalised(getattr(b, name).to_pandas())
        assert len(x) > 1000 if name == "events" else len(x) == customers > 200
        pd.testing.assert_frame_equal(x, y, check_exact=False, rtol=1e-12, atol=1e-9)
    same = [n.replace("table wb_export.export", "export.csv") for n in b.notes]  # the source's name differs
    assert a.notes == same and len(a.notes) == 3


@pytest.mark.parametrize("engine", ENGINES)
def test_cdnow_figures_on_every_engine(engines, engine):
    spark_ds = engines(engine, "cdnow-sample")
    r = wt.repeat_summary(spark_ds, calibration_end="1997-09-30").to_pandas()
    assert (len(r), int((r.frequency > 0).sum()), int(r.frequency.sum())) == (2357, 946, 2457)


@pytest.mark.spark
def test_a_spark_session_not_in_utc_is_refused(engines, spark):
    spark_ds = engines("pyspark", "handmade")
    spark.conf.set("spark.sql.session.timeZone", "America/New_York")
    try:
        with pytest.raises(ParameterError, match="time zone is 'America/New_York'.*spark.sql.session.timeZone"):
            wt.survival(spark_ds)
    finally:
        spark.conf.set("spark.sql.session.timeZone", "UTC")
