"""The DuckDB backend's frames (``workbench.data.backends.duckdb_backend``)
equal Ibis's own conversion exactly -- dtypes, values, nulls -- on every
analysis table and on a column of every type (with nulls, without, all null,
and with no rows): Ibis's ``execute`` is the oracle, called on the same
connection."""

from __future__ import annotations

import itertools

import pandas as pd
import pyarrow as pa
import pytest
from ibis.backends.duckdb import Backend as IbisDuckDB
from test_parity import CASES, engines, folders  # noqa: F401  (fixtures)

from workbench import tables as wt
from workbench.data.backends import connect, duckdb_backend

_names = itertools.count()


def both(con, expr):
    """Ibis's frame and ours, for one materialised copy of ``expr`` (floats summed in parallel may
    differ in the last bit between two runs of a query, and rows without an order may come in another)."""
    name = f"wb_frames_{next(_names)}"
    fixed = con.create_table(name, expr, temp=True)
    try:
        return IbisDuckDB.execute(con, fixed), con.execute(fixed)
    finally:
        con.drop_table(name, force=True)


def test_datasets_load_on_the_workbench_backend(engines):  # noqa: F811
    con = engines("duckdb", "random").con
    assert isinstance(con, duckdb_backend()) and type(con).execute is not IbisDuckDB.execute


@pytest.mark.parametrize("dataset,table,options", CASES, ids=[f"{d}-{t}-{i}" for i, (d, t, _) in enumerate(CASES)])
def test_every_table_reaches_pandas_as_ibis_would(engines, dataset, table, options):  # noqa: F811
    ds = engines("duckdb", dataset)
    ibis_df, ours = both(ds.con, wt.TABLE_FUNCTIONS[table](ds, **options))
    assert len(ours) > 0
    pd.testing.assert_frame_equal(ours, ibis_df, check_exact=True)


def test_every_type_with_and_without_nulls():
    con = connect()
    values = {
        "i": "1::BIGINT", "i8": "1::TINYINT", "u": "1::UINTEGER", "f": "1.5::DOUBLE", "nan": "'nan'::DOUBLE", "b": "true",
        "s": "'x'", "d": "DATE '2024-01-02'", "ts": "TIMESTAMP '2024-01-02 03:04:05.123456'",
        "tz": "TIMESTAMPTZ '2024-01-02 03:04:05+00'", "dec": "1.25::DECIMAL(10,2)", "big": "9007199254740993::BIGINT",
        "iv": "INTERVAL 3 DAY", "lst": "[1, 2]", "js": "{'a': 1}", "uuid": "'0b7f1d3e-0000-4000-8000-000000000000'::UUID",
    }
    cols = ", ".join(f"CASE WHEN range % 3 = 0 THEN NULL ELSE {v} END AS {k}_null, {v} AS {k}, "
                     f"CASE WHEN range < 0 THEN {v} END AS {k}_all_null" for k, v in values.items())
    con.con.execute(f"CREATE TEMP TABLE every_type AS SELECT range AS r, NULL AS only_null, {cols} FROM range(7)")
    t = con.table("every_type")
    ibis_df, ours = both(con, t)
    pd.testing.assert_frame_equal(ours, ibis_df, check_exact=True)
    for empty in (t.limit(0), t.select("lst", "js", "i").limit(0)):  # no rows: pandas infers the dtypes of empty lists
        pd.testing.assert_frame_equal(*reversed(both(con, empty)), check_exact=True)
    assert IbisDuckDB.execute(con, t.limit(0).lst).dtype == con.execute(t.limit(0).lst).dtype
    assert ours["i_null"].isna().sum() == 3 and ours["s_null"].isna().sum() == 3  # the nulls are there
    scalar = t.i_null.sum()
    assert IbisDuckDB.execute(con, scalar) == con.execute(scalar) == 4 * 1


def test_text_reaches_arrow_as_large_strings_which_pandas_keeps_without_a_copy():
    con = connect()
    assert con.con.sql("SELECT current_setting('arrow_large_buffer_size')").fetchall() == [(True,)]
    assert pa.types.is_large_string(con.con.sql("SELECT 'x' AS s").to_arrow_table().schema.field("s").type)
    off = connect(config={"arrow_large_buffer_size": False})  # dataset.yml's backend config overrides the default
    assert pa.types.is_string(off.con.sql("SELECT 'x' AS s").to_arrow_table().schema.field("s").type)
    for c in (con, off):
        c.con.execute("CREATE TEMP TABLE words AS SELECT 'x' AS s UNION ALL SELECT NULL")
    assert off.execute(off.table("words")).equals(con.execute(con.table("words")))  # the same frame either way
