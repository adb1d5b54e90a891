"""Load and validate a dataset folder (see docs/dataset-contract.md).

``load_dataset(path)`` returns a :class:`Dataset` of typed Ibis tables on a
backend chosen by one argument (DuckDB in-process by default, any Ibis backend
or connection URL otherwise), after checking every rule of the contract
(:mod:`workbench.data.files` finds and opens the files,
:mod:`workbench.data.checks` checks them). ``validate_dataset(path)`` checks
without keeping the tables. All violations are collected and raised at once as
one :class:`~workbench.errors.DataError`; what is valid but left out or not
read is a notice on the dataset and a :class:`~workbench.errors.DataWarning`.
Nothing is ever written by either.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import ibis
import pandas as pd

from workbench.data.checks import check_folder
from workbench.data.contract import TABLES
from workbench.data.files import observation_end_of
from workbench.data.paths import resolve_dataset
from workbench.errors import DataError, DataWarning, WorkbenchError


# ----------------------------------------------------------------- backends
def connect(backend=None):
    """An Ibis backend: DuckDB in-process (None), a URL such as
    ``"duckdb://file.db"`` or ``"pyspark://"``, or a backend object as is."""
    if backend is None:
        con = ibis.duckdb.connect()
    elif isinstance(backend, str):
        con = ibis.connect(backend)
    else:
        return backend
    if con.name == "duckdb":  # timestamps without a zone are UTC
        con.raw_sql("SET TimeZone = 'UTC'")
    elif con.name == "pyspark":
        con._session.conf.set("spark.sql.session.timeZone", "UTC")
    return con


# ----------------------------------------------------------------- dataset
@dataclass
class Dataset:
    """A validated dataset: typed Ibis tables on one backend, plus metadata."""

    path: Path
    con: object
    users: ibis.Table | None = None
    events: ibis.Table | None = None
    assignments: ibis.Table | None = None
    kpis: ibis.Table | None = None
    meta: dict = field(default_factory=dict)
    #: what validation noticed that is not a violation: rows after the
    #: observation end (left out of every analysis), files it did not read
    notices: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return str(self.meta.get("name") or self.path.name)

    @property
    def tables(self) -> dict[str, ibis.Table]:
        return {n: t for n in TABLES if (t := getattr(self, n)) is not None}

    @property
    def observation_end(self) -> pd.Timestamp | None:
        """``dataset.yml``'s observation_end, else the last event (or signup, or
        KPI period); naive UTC, like every timestamp in a dataset."""
        end = observation_end_of(self.meta)
        if end is not None:
            return end
        for table, col in (("events", "event_at"), ("users", "signup_at"), ("kpis", "period")):
            t = getattr(self, table)
            if t is not None:
                value = t[col].max().execute()
                return None if pd.isna(value) else pd.Timestamp(value)
        return None

    def row_counts(self) -> dict[str, int]:
        return {n: int(t.count().execute()) for n, t in self.tables.items()}

    def event_counts(self) -> dict[str, int]:
        if self.events is None:
            return {}
        df = self.events.group_by("event_type").aggregate(n=self.events.count()).to_pandas()
        return {r.event_type: int(r.n) for r in df.itertuples()}

    def supports(self) -> dict[str, str | None]:
        """Each analysis mapped to None (supported) or the reason it is not."""
        ev = self.event_counts()
        has_users = self.users is not None
        kpi_cols = set(self.kpis.columns) if self.kpis is not None else set()
        referred = has_users and "referred_by" in self.users.columns and int(self.users.referred_by.notnull().sum().execute()) > 0

        def need(ok, why):
            return None if ok else why

        return {
            "growth": need(has_users or "new_users" in kpi_cols, "no users table and no kpis.new_users"),
            "scaling": need(("revenue" in kpi_cols) or ev.get("purchase", 0) > 0, "no revenue: neither kpis.revenue nor purchase events"),
            "conversion": need(has_users and ev.get("purchase", 0) > 0, "no purchase events"),
            "clv": need(ev.get("purchase", 0) > 0, "no purchase events"),
            "retention": need(self.events is not None, "no events table (KPI-only dataset)"),
            "cocreation": need(ev.get("feedback", 0) + ev.get("adopted", 0) > 0, "no feedback or adopted events"),
            "referrals": need(referred, "no users.referred_by values"),
            "experiments": need(self.assignments is not None, "no assignments table"),
        }


def load_dataset(path, backend=None, *, validate: bool = True) -> Dataset:
    """Load a dataset folder (or built-in name: ``sample``, ``cdnow``,
    ``cdnow-sample``) as typed Ibis tables; raises DataError listing every
    contract violation. ``validate=False`` skips the rules that scan rows
    (for data already validated); files, dataset.yml, missing tables and
    columns, column names and types are still checked. Notices (rows after
    the observation end, files not read) are kept in ``Dataset.notices`` and
    issued as one :class:`~workbench.errors.DataWarning`."""
    folder = resolve_dataset(path)
    con = connect(backend)
    checked = check_folder(folder, con, check=validate)
    if checked.violations:
        raise DataError(checked.violations, str(folder), notes=checked.notices)
    if checked.notices:
        warnings.warn(DataWarning(f"dataset {folder}: " + "; ".join(checked.notices)), stacklevel=2)
    return Dataset(path=folder, con=con, meta=checked.meta, notices=tuple(checked.notices), **checked.tables)


@dataclass(frozen=True)
class ValidationReport:
    """What a valid dataset holds and which analyses it supports."""

    path: Path
    rows: dict
    events: dict
    supports: dict
    observation_end: pd.Timestamp | None
    notices: tuple[str, ...] = ()

    def describe(self) -> str:
        lines = [f"dataset {self.path}: valid"]
        lines += [f"  {n}: {r:,} rows" for n, r in self.rows.items()]
        if self.events:
            lines.append("  events by type: " + ", ".join(f"{k} {v:,}" for k, v in sorted(self.events.items())))
        if self.observation_end is not None:
            lines.append(f"  observation end: {self.observation_end}")
        lines.append("analyses:")
        lines += [f"  {k:<12} {'yes' if why is None else 'no: ' + why}" for k, why in self.supports.items()]
        if self.notices:
            lines.append("notes:")
            lines += [f"  - {note}" for note in self.notices]
        return "\n".join(lines)


def validate_dataset(path, backend=None) -> ValidationReport:
    """Check a dataset against the contract; raise DataError with all
    violations. Notices are in the report (and not issued as warnings)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        ds = load_dataset(path, backend)
    return ValidationReport(ds.path, ds.row_counts(), ds.event_counts(), ds.supports(), ds.observation_end, ds.notices)


__all__ = ["Dataset", "ValidationReport", "connect", "load_dataset", "validate_dataset", "WorkbenchError"]
