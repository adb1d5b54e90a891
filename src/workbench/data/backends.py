"""Connections to the engines a dataset runs on.

A dataset runs on DuckDB in-process unless its ``dataset.yml`` names a
``backend`` (see docs/backends.md):

- ``url: duckdb://warehouse.duckdb`` -- a DuckDB database file (opened
  read-only; a relative path is relative to the dataset folder);
- ``url: postgresql://analyst@db.example.com:5432/warehouse`` -- PostgreSQL;
- ``spark: local[2]`` or ``spark: spark://master:7077`` -- a PySpark session
  (local mode or a cluster master);
- ``url:`` any other Ibis URL (``snowflake://``, ``trino://``, ...).

``config:`` holds engine settings: Spark's (``spark.executor.memory: 4g``) or
DuckDB's (``memory_limit: 8GB``, ``threads: 2``). DuckDB spills what does not
fit its memory limit to ``temp_directory``, by default a folder in the
system's temporary directory (DuckDB's own default, ``.tmp`` in the working
directory, would put gigabytes beside a notebook).

Every session runs in UTC. A password never sits in a URL or in
``dataset.yml``: it comes from the environment variable named by
``password_env`` or from a git-ignored ``dataset.local.yml`` beside
``dataset.yml`` (see :mod:`workbench.data.credentials`, which also hides
credentials in any text the workbench shows or writes).
"""

from __future__ import annotations

import os
import re
import subprocess
import urllib.parse
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import ibis

from workbench.data.credentials import LOCAL_CONFIG, redact, remember_secret, url_credentials
from workbench.errors import DataError, Violation, WorkbenchError, WorkbenchWarning

BACKEND_KEYS = ("url", "spark", "config", "password_env")


class BackendError(WorkbenchError):
    """A backend cannot be reached or used (connection refused, driver missing, ...)."""


def refuse_credentials(text: str, where: str) -> None:
    """Raise BackendError if ``text`` holds a password or token (shown redacted)."""
    if url_credentials(text):
        raise BackendError(
            f"{where} holds a credential ({redact(text)}); the workbench never takes a password from a URL or a "
            "parameter, so that it cannot end up in a report, manifest or log. Remove it from the URL and give it "
            f"through the environment: in dataset.yml, backend: password_env: NAME (then export NAME=...), or put "
            f"backend: password: ... in a git-ignored {LOCAL_CONFIG} beside dataset.yml "
            "(for PostgreSQL, PGPASSWORD or ~/.pgpass also work)."
        )


# ------------------------------------------------------------------ backend spec
@dataclass(frozen=True)
class BackendSpec:
    """The ``backend`` section of a dataset.yml (merged with dataset.local.yml)."""

    url: str | None = None
    spark: str | None = None
    config: dict = field(default_factory=dict)
    password_env: str | None = None
    password: str | None = field(default=None, repr=False)
    folder: Path | None = None

    @property
    def is_default(self) -> bool:
        return self.url is None and self.spark is None

    def describe(self) -> str:
        """Where the dataset runs, for people (never a credential)."""
        if self.spark:
            return f"Spark ({self.spark})"
        if self.url:
            return redact(self.url)
        return "DuckDB in-process"

    def resolve_password(self) -> str | None:
        """The password from the environment or dataset.local.yml (None if none is configured)."""
        if self.password is not None:
            remember_secret(self.password)
            return self.password
        if self.password_env:
            value = os.environ.get(self.password_env)
            if value is None:
                raise DataError([Violation(
                    "backend", "password_env",
                    f"environment variable {self.password_env} is not set; it must hold the database password: "
                    f"export {self.password_env}=... before running (or put backend: password: ... in a git-ignored "
                    f"{LOCAL_CONFIG} beside dataset.yml)", 0)], str(self.folder) if self.folder else None)
            remember_secret(value)
            return value
        return None

    def secrets(self) -> list[str]:
        """The credentials this backend would use, where they can be read (never raises)."""
        try:
            pw = self.resolve_password()
        except WorkbenchError:
            return []
        return [pw] if pw else []

    def connect(self):
        """A connected Ibis backend (UTC session)."""
        if self.spark:
            return spark_backend(self.spark, self.config)
        if self.url:
            return connect_url(self.url, password=self.resolve_password(), folder=self.folder, config=self.config)
        return connect(config=self.config)


def parse_backend(section, local: dict | None, folder: Path | None) -> tuple[BackendSpec, list[Violation]]:
    """A :class:`BackendSpec` from dataset.yml's ``backend`` section and the
    ``backend`` section of dataset.local.yml, and every rule they break."""
    problems: list[Violation] = []

    def bad(key, rule):
        problems.append(Violation("backend", key, rule, 0))

    if section is None:
        section = {}
    if not isinstance(section, dict):
        bad(None, "must be a mapping (url: ..., or spark: ...); see docs/backends.md")
        return BackendSpec(folder=folder), problems
    if "password" in section:
        bad("password", f"a password must not be written in dataset.yml (it would be shared and committed): "
                        f"use password_env: NAME, or move it to a git-ignored {LOCAL_CONFIG} beside dataset.yml")
    for key in section:
        if key not in BACKEND_KEYS and key != "password":
            bad(key, f"unknown key (known: {', '.join(BACKEND_KEYS)})")
    merged = {k: v for k, v in section.items() if k != "password"}
    local = local or {}
    if not isinstance(local, dict):
        bad(None, f"{LOCAL_CONFIG}: backend must be a mapping")
        local = {}
    for key in local:
        if key not in (*BACKEND_KEYS, "password"):
            bad(key, f"{LOCAL_CONFIG}: unknown key (known: {', '.join((*BACKEND_KEYS, 'password'))})")
    merged.update(local)
    url, spark = merged.get("url"), merged.get("spark")
    if url is not None and not isinstance(url, str):
        bad("url", "must be a connection URL such as postgresql://analyst@host:5432/warehouse")
        url = None
    if spark is not None and not isinstance(spark, str):
        bad("spark", "must be a Spark master such as local[2] or spark://host:7077")
        spark = None
    if url and spark:
        bad(None, "give either url or spark, not both")
    if url and url_credentials(url):
        bad("url", f"holds a credential ({redact(url)}): remove it from the URL and use password_env: NAME "
                   f"(or backend: password: in a git-ignored {LOCAL_CONFIG})")
    config = merged.get("config") or {}
    if not isinstance(config, dict):
        bad("config", "must be a mapping of engine settings (spark.executor.memory: 4g, or DuckDB's memory_limit: 8GB)")
        config = {}
    for key, value in config.items():
        if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", key):
            bad("config", f"{key!r} is not a setting name (letters, digits, _ and .)")
        elif not isinstance(value, (str, int, float, bool)):
            bad("config", f"{key}: give one value (a word, number or size such as 8GB), not {type(value).__name__}")
    if problems:
        config = {}
    env = merged.get("password_env")
    if env is not None and (not isinstance(env, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", env)):
        bad("password_env", f"must be the name of an environment variable (e.g. ACME_DB_PASSWORD), got {env!r}")
        env = None
    password = merged.get("password")
    if password is not None:
        password = str(password)
        remember_secret(password)
    return BackendSpec(url=url, spark=spark, config=dict(config), password_env=env, password=password, folder=folder), problems


def read_local_config(folder: Path) -> dict:
    """The ``backend`` section of dataset.local.yml beside dataset.yml ({} if
    there is none); warns if the file is in a git work tree but not ignored."""
    import yaml

    path = folder / LOCAL_CONFIG
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError:  # never echo the file: it holds a password
        raise DataError([Violation(LOCAL_CONFIG, None, "not valid YAML (a mapping with backend: password: ...)", 0)], str(folder)) from None
    if not isinstance(data, dict) or not isinstance(data.get("backend", {}), dict):
        raise DataError([Violation(LOCAL_CONFIG, None, "must be a mapping with one key, backend: {password: ...}", 0)], str(folder))
    if _tracked_by_git(path):
        warnings.warn(f"{path} holds credentials but git does not ignore it: add {LOCAL_CONFIG} to .gitignore", WorkbenchWarning, stacklevel=3)
    return data.get("backend") or {}


def _tracked_by_git(path: Path) -> bool:
    """Whether ``path`` is inside a git work tree and not ignored there."""
    try:
        inside = subprocess.run(["git", "-C", str(path.parent), "rev-parse", "--is-inside-work-tree"], capture_output=True, text=True, timeout=10)
        if inside.returncode != 0 or inside.stdout.strip() != "true":
            return False
        ignored = subprocess.run(["git", "-C", str(path.parent), "check-ignore", "-q", path.name], capture_output=True, timeout=10)
        return ignored.returncode != 0
    except (OSError, subprocess.SubprocessError):
        return False


# ------------------------------------------------------------------ connecting
def spill_directory() -> Path:
    """Where DuckDB writes what does not fit its memory limit (removed by DuckDB as it goes)."""
    import tempfile

    return Path(tempfile.gettempdir()) / "workbench-duckdb"


_DUCKDB_CLASS = None


def duckdb_backend():
    """Ibis's DuckDB backend class with one change, made once: a result
    reaches pandas column by column from Arrow, and a table is assembled
    once. Ibis turns every column that holds a null into a Python list
    first (``to_pylist``) and copies the whole frame three times (two
    conversion passes, each building a new frame); at 10M users that is
    gigabytes of fresh memory. benchmarks/bench_frames.py times both; the
    frames are the same as Ibis's own (``tests/test_frames.py`` compares
    them on every analysis table and every type)."""
    global _DUCKDB_CLASS
    if _DUCKDB_CLASS is None:
        import ibis.expr.types as ir
        import pandas as pd
        import pyarrow.types as pat
        from ibis.backends.duckdb import Backend
        from ibis.backends.duckdb.converter import DuckDBPandasData
        from ibis.formats.pandas import PandasData

        def direct(t) -> bool:  # types whose nulls Arrow's own conversion gives as Ibis's does (checked by the test)
            return (pat.is_integer(t) or pat.is_floating(t) or pat.is_boolean(t) or pat.is_string(t) or pat.is_large_string(t)
                    or pat.is_timestamp(t) or pat.is_date(t) or pat.is_decimal(t) or pat.is_null(t))

        def series(col):  # Ibis's rule, but for the types above, whose nulls need no Python list
            if pat.is_nested(col.type) or pat.is_dictionary(col.type) or (
                    col.null_count and (col.null_count == len(col) or not direct(col.type))):  # all null: pandas reads Nones its own way
                return pd.DataFrame({0: col.to_pylist()})[0].rename(None)  # a list read as Ibis's frame reads it (an empty one as float64)
            return col.to_pandas()

        class DuckDBBackend(Backend):
            def execute(self, expr, /, *, params=None, limit=None, **kwargs):
                schema = expr.as_table().schema()
                if any(t.is_geospatial() for t in schema.types):  # a GeoDataFrame: Ibis's own way
                    return super().execute(expr, params=params, limit=limit, **kwargs)
                table = self._to_duckdb_relation(expr, params=params, limit=limit, **kwargs).to_arrow_table()
                if table.column_names != list(schema.names):
                    raise ValueError(f"DuckDB returned columns {table.column_names}, expected {list(schema.names)}")
                columns = {name: DuckDBPandasData.convert_column(series(col), dtype)
                           for (name, dtype), col in zip(schema.items(), table.columns)}
                if isinstance(expr, ir.Table):  # Ibis's second pass (Table.__pandas_result__), column by column, one frame
                    return pd.DataFrame({name: PandasData.convert_column(s, schema[name]) for name, s in columns.items()})
                return expr.__pandas_result__(pd.DataFrame(columns))

        _DUCKDB_CLASS = DuckDBBackend
    return _DUCKDB_CLASS


def _duckdb(con, config: dict | None = None):
    """``con`` in UTC, spilling to :func:`spill_directory`, with ``config``'s
    DuckDB settings. Results reach Arrow with 64-bit offsets
    (``arrow_large_buffer_size``: large strings, binaries and lists): pandas 3
    keeps text as Arrow large strings, so the 32-bit form would be copied into
    that one once more. ``config: {arrow_large_buffer_size: false}`` turns it off."""
    settings = {"temp_directory": str(spill_directory()), "arrow_large_buffer_size": True, **(config or {})}
    for key, value in settings.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        try:
            con.raw_sql(f"SET {key} = '{text.replace(chr(39), chr(39) * 2)}'")
        except Exception as exc:
            raise BackendError(f"DuckDB setting {key}: {redact(str(exc).strip().splitlines()[0])} (backend config in dataset.yml)") from None
    return _utc(con)


def _utc(con):
    if con.name == "duckdb":  # timestamps without a zone are UTC
        con.raw_sql("SET TimeZone = 'UTC'")
    elif con.name == "pyspark":
        con._session.conf.set("spark.sql.session.timeZone", "UTC")
    elif con.name == "postgres":
        con.raw_sql("SET TIME ZONE 'UTC'")
    return con


def connect(backend=None, *, config: dict | None = None):
    """An Ibis backend in UTC: DuckDB in-process (None; ``config`` its
    settings), a URL such as ``"duckdb:///file.duckdb"``,
    ``"postgresql://user@host/db"`` or ``"pyspark://"`` (a local Spark
    session), a :class:`BackendSpec`, or a backend object as is. A URL may
    not hold a password (see :func:`refuse_credentials`)."""
    if backend is None:
        return _duckdb(duckdb_backend()().connect(), config)
    if isinstance(backend, BackendSpec):
        return backend.connect()
    if isinstance(backend, str):
        refuse_credentials(backend, "the backend URL")
        return connect_url(backend)
    return backend


def connect_url(url: str, *, password: str | None = None, folder: Path | None = None, config: dict | None = None):
    """Connect to an Ibis URL, with ``password`` given apart from it; a DuckDB
    file is opened read-only, relative to ``folder``; ``config``: DuckDB or
    Spark settings. Errors are shown redacted."""
    parsed = urllib.parse.urlparse(url)
    scheme = parsed.scheme.lower()
    shown = redact(url, [password] if password else [])
    try:
        if scheme == "duckdb":
            path = (parsed.netloc + parsed.path) or ":memory:"
            if path != ":memory:":
                file = Path(path).expanduser()
                if not file.is_absolute() and folder is not None:
                    file = folder / file
                if not file.exists():
                    raise BackendError(f"DuckDB database {file} does not exist (backend url {shown})")
                return _duckdb(duckdb_backend()().connect(str(file), read_only=True), config)
            return _duckdb(duckdb_backend()().connect(), config)
        if scheme in ("pyspark", "spark"):
            master = "local[*]" if scheme == "pyspark" else url
            return spark_backend(master, config)
        if config:
            raise BackendError(f"backend config: settings are for DuckDB and Spark, not {scheme} ({shown}); "
                               "set the server's own options on the server")
        kwargs = {"password": password} if password is not None else {}
        return _utc(ibis.connect(url, **kwargs))
    except BackendError:
        raise
    except ImportError as exc:
        raise BackendError(f"cannot connect to {shown}: the driver is not installed ({redact(exc)}); "
                           "pip install 'workbench[postgres]' for PostgreSQL, 'workbench[spark]' for Spark, "
                           "or the ibis-framework extra for your backend") from None
    except Exception as exc:
        first = redact(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, [password] if password else [])
        raise BackendError(f"cannot connect to {shown}: {first}") from None


def spark_backend(master: str, config: dict | None = None):
    """An Ibis backend on a PySpark session for ``master`` (``local[2]``,
    ``spark://host:7077``, ``yarn``...), in UTC. An active session is reused."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise BackendError("Spark backend: pyspark is not installed (pip install 'workbench[spark]'; it needs Java 17)") from None
    builder = SparkSession.builder.master(master).appName("workbench")
    settings = {"spark.sql.session.timeZone": "UTC", "spark.ui.showConsoleProgress": "false"}
    local = re.fullmatch(r"local(\[(\d+|\*)\])?", master)
    if local:  # Spark's 200 shuffle partitions make small local queries slow: one per core
        cores = local.group(2)
        settings["spark.sql.shuffle.partitions"] = "1" if cores is None else str(os.cpu_count() or 2) if cores == "*" else cores
    settings.update(config or {})
    for key, value in settings.items():
        builder = builder.config(key, str(value))
    try:
        session = builder.getOrCreate()
    except Exception as exc:
        raise BackendError(f"cannot start a Spark session on {master}: {redact(str(exc).strip().splitlines()[0] if str(exc).strip() else exc)}") from None
    session.conf.set("spark.sql.session.timeZone", "UTC")
    return ibis.pyspark.connect(session)


# ------------------------------------------------------------------ reading
def reads_files(con) -> bool:
    """Whether the backend can read a dataset folder's files itself."""
    return getattr(con, "name", None) in ("duckdb", "pyspark")




def read_file(con, path: Path) -> ibis.Table:
    """A CSV (every value as text) or Parquet file as a table on ``con``
    (:func:`workbench.data.files.read_table`, the one file reader)."""
    from workbench.data.files import read_table as read_data_file

    if not reads_files(con):
        raise BackendError(f"{getattr(con, 'name', 'this backend')} cannot read files such as {path.name}: "
                           "load the table into the database and name it with table: schema.name in dataset.yml's source section, "
                           "or run the dataset on DuckDB or Spark")
    return read_data_file(con, Path(path))


def read_table(con, name: str) -> ibis.Table:
    """A table on the backend by name: ``events``, ``schema.events`` or ``catalog.schema.events``."""
    parts = name.split(".")
    if len(parts) == 1:
        return con.table(parts[0])
    database = parts[0] if len(parts) == 2 else tuple(parts[:-1])
    return con.table(parts[-1], database=database)


__all__ = ["BackendError", "BackendSpec", "connect", "connect_url", "parse_backend", "read_file", "read_local_config",
           "read_table", "reads_files", "refuse_credentials", "spark_backend"]
