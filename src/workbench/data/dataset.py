"""Load and validate a dataset (see docs/dataset-contract.md).

``load_dataset(path)`` returns a :class:`Dataset` of typed Ibis tables on the
backend its ``dataset.yml`` names (DuckDB in-process by default; see
docs/backends.md), after mapping an export onto the contract where
``dataset.yml`` has a ``source`` section (:mod:`workbench.data.mapping`) and
checking every rule of the contract (:mod:`workbench.data.files` finds and
opens the files, :mod:`workbench.data.checks` checks them). ``validate_dataset(path)`` checks
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

from workbench.data.backends import connect, read_table, reads_files
from workbench.data.checks import check_folder
from workbench.data.config import read_config
from workbench.data.contract import TABLES
from workbench.data.credentials import redact
from workbench.data.files import observation_end_of
from workbench.data.mapping import map_tables
from workbench.errors import DataError, DataWarning, WorkbenchError


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
    backend: str = "DuckDB in-process"  # where it runs, for people (credentials redacted)
    notes: list = field(default_factory=list)  # what a source mapping dropped or derived

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


def _database_tables(con, skip) -> dict:
    """The contract tables a database holds under their own names."""
    out = {}
    for name in TABLES:
        if name in skip:
            continue
        try:
            out[name] = (read_table(con, name), f"table {name}")
        except Exception:  # no such table
            continue
    return out


def load_dataset(path, backend=None, *, validate: bool = True) -> Dataset:
    """Load a dataset -- a folder, its dataset.yml, or a built-in name
    (``sample``, ``cdnow``, ``cdnow-sample``) -- as typed Ibis tables on the
    backend its dataset.yml names (``backend=`` an Ibis backend object or URL
    overrides it); raises DataError listing every contract violation (a
    broken ``source`` mapping rule first, alone: one cause, one error).
    ``validate=False`` skips the rules that scan rows (for data already
    validated); files, dataset.yml, missing tables and columns, column names
    and types are still checked. Notices (rows after the observation end,
    files not read) are kept in ``Dataset.notices`` and issued as one
    :class:`~workbench.errors.DataWarning`; what the mapping dropped or
    derived is in ``Dataset.notes``."""
    config = read_config(path, strict=False)
    folder = config.folder
    if backend is not None:
        con = connect(backend)
        where = redact(backend) if isinstance(backend, str) else getattr(con, "name", type(con).__name__)
    else:
        con = config.backend.connect()
        where = config.backend.describe()
    mapped, notes, used = {}, [], ()
    if config.source is not None:
        tables, problems, notes = map_tables(config.source, con, check=validate)
        if problems:  # a mapping rule broken: one error per cause, before any contract check
            raise DataError(problems, str(config.location.config or folder))
        sources = config.source.tables
        mapped = {n: (t, f"{sources[n].describe()} (mapped)") for n, t in tables.items()}
        used = tuple(s.file.name for s in sources.values() if s.file is not None and s.file.parent == folder)
    if config.location.config is not None and config.location.config.parent == folder:
        used = (*used, config.location.config.name)
    files = reads_files(con)
    if not files or (backend is None and config.backend.url is not None):
        mapped = {**_database_tables(con, set(mapped)), **mapped}
    checked = check_folder(folder, con, check=validate, meta=(config.meta, list(config.problems)), mapped=mapped,
                           read_files=files, used=used)
    if checked.violations:
        raise DataError(checked.violations, str(folder), notes=checked.notices)
    if checked.notices:
        warnings.warn(DataWarning(f"dataset {folder}: " + "; ".join(checked.notices)), stacklevel=2)
    return Dataset(path=folder, con=con, meta=checked.meta, notices=tuple(checked.notices), backend=where, notes=notes,
                   **checked.tables)


@dataclass(frozen=True)
class ValidationReport:
    """What a valid dataset holds and which analyses it supports."""

    path: Path
    rows: dict
    events: dict
    supports: dict
    observation_end: pd.Timestamp | None
    notices: tuple[str, ...] = ()
    backend: str = "DuckDB in-process"
    notes: tuple = ()

    def describe(self) -> str:
        lines = [f"dataset {self.path}: valid (on {self.backend})"]
        lines += [f"  {n}: {r:,} rows" for n, r in self.rows.items()]
        if self.events:
            lines.append("  events by type: " + ", ".join(f"{k} {v:,}" for k, v in sorted(self.events.items())))
        if self.observation_end is not None:
            lines.append(f"  observation end: {self.observation_end}")
        if self.notes:
            lines.append("mapped from the source (dataset.yml):")
            lines += [f"  {n}" for n in self.notes]
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
    return ValidationReport(ds.path, ds.row_counts(), ds.event_counts(), ds.supports(), ds.observation_end, ds.notices, ds.backend, tuple(ds.notes))


__all__ = ["Dataset", "ValidationReport", "connect", "load_dataset", "validate_dataset", "WorkbenchError"]
