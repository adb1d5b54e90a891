"""Find, load and validate a dataset folder (see docs/dataset-contract.md).

``load_dataset(path)`` returns a :class:`Dataset` of typed Ibis tables on the
backend its ``dataset.yml`` names (DuckDB in-process by default; see
docs/backends.md), after mapping an export onto the contract where
``dataset.yml`` has a ``source`` section and checking every rule of the
contract. ``validate_dataset(path)`` checks without keeping the tables. All
violations are collected and raised at once as one
:class:`~workbench.errors.DataError`. Nothing is ever written by either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import ibis
import pandas as pd

from workbench.data import parsing
from workbench.data.backends import connect, read_file, read_table, reads_files
from workbench.data.credentials import redact
from workbench.data.config import read_config
from workbench.data.contract import CONTROL_ARM, EVENT_TYPES, TABLES, TableSpec
from workbench.data.mapping import map_tables
from workbench.errors import DataError, Violation, WorkbenchError


def _read(con, path: Path) -> ibis.Table:
    return read_file(con, path)


def find_tables(folder: Path) -> tuple[dict[str, Path], list[Violation]]:
    """The contract tables present in ``folder`` and problems with the files."""
    found, problems = {}, []
    for name in TABLES:
        files = [folder / f"{name}.{ext}" for ext in ("parquet", "csv") if (folder / f"{name}.{ext}").exists()]
        if len(files) > 1:
            problems.append(Violation(name, None, "both .parquet and .csv given; keep exactly one", 0, [f.name for f in files]))
        elif files:
            found[name] = files[0]
    return found, problems


# ----------------------------------------------------------------- typing
def _kind(dtype) -> str:
    if dtype.is_string():
        return "string"
    if dtype.is_timestamp():
        return "timestamp"
    if dtype.is_date():
        return "date"
    if dtype.is_numeric():
        return "number"
    return str(dtype)


def _typed(raw: ibis.Table, spec: TableSpec, violations: list[Violation], check: bool = True) -> ibis.Table:
    """Cast the contract's columns to their types, recording values that do
    not parse and columns of a type that cannot hold them."""
    casts = {}
    for col in spec.columns:
        if col.name not in raw.columns:
            continue
        c = raw[col.name]
        kind = _kind(c.type())
        if col.dtype == "string":
            casts[col.name] = c if kind == "string" else c.cast("string")
            continue
        typed = {"timestamp": parsing.to_utc, "date": parsing.to_date, "float": parsing.to_number}[col.dtype](c)
        if typed is None:
            what = {"timestamp": "a timestamp", "date": "a date", "float": "a number"}[col.dtype]
            violations.append(Violation(spec.name, col.name, f"must be {what}, found type {c.type()}", raw.count().execute()))
            casts[col.name] = ibis.null("float64" if col.dtype == "float" else col.dtype)  # reported once; keeps later checks from failing
            continue
        if kind == "string":
            if check:
                bad = raw.filter(c.notnull() & (c.strip() != "") & typed.isnull())
                n = len(violations)
                _add(violations, bad, spec.name, col.name, f"values that do not parse as a {col.dtype}", [col.name])
                if col.dtype == "timestamp" and len(violations) > n:  # one error, naming a format that would parse them
                    v = violations[-1]
                    advice = f'map the table in dataset.yml with source: {spec.name}: timestamps: format: "{{fmt}}"'
                    hint = parsing.format_hint(parsing.sample_values(raw, c, typed), advice=advice)
                    violations[-1] = Violation(v.table, v.column, f"{v.rule} (ISO 8601 expected; {hint})", v.rows, v.examples)
            typed = (c.strip() == "").ifelse(ibis.null(typed.type()), typed)
        casts[col.name] = typed
    return raw.mutate(**casts)


# ----------------------------------------------------------------- checks
def _examples(expr: ibis.Table, columns: list[str]) -> list[dict]:
    cols = [c for c in columns if c in expr.columns]
    df = expr.select(cols).limit(3).to_pandas()
    return [{k: (None if pd.isna(v) else str(v)) for k, v in row.items()} for row in df.to_dict("records")]


def _add(violations, bad: ibis.Table, table: str, column: str | None, rule: str, columns: list[str]) -> None:
    n = int(bad.count().execute())
    if n:
        violations.append(Violation(table, column, rule, n, _examples(bad, columns)))


def _check_not_null(t, spec, violations):
    wrong_type = {v.column for v in violations if v.table == spec.name and ("found type" in v.rule or "do not parse" in v.rule)}
    for col in spec.columns:
        if col.not_null and col.name in t.columns and col.name not in wrong_type:
            _add(violations, t.filter(t[col.name].isnull()), spec.name, col.name, "must not be null", [c.name for c in spec.columns[:3]])


def _check_minimum(t, spec, violations, where=None):
    for col in spec.columns:
        if col.minimum is not None and col.name in t.columns and t[col.name].type().is_numeric():
            cond = t[col.name] < col.minimum
            if where is not None:
                cond = cond & where
            _add(violations, t.filter(cond), spec.name, col.name, f"must be >= {col.minimum:g}", list(t.columns)[:4])


def _check_unique(t, keys, table, violations):
    if not all(k in t.columns for k in keys):
        return
    dup = t.group_by(keys).aggregate(n=t.count()).filter(lambda d: d.n > 1)
    n = dup.n.sum().execute()
    n = 0 if n is None or pd.isna(n) else int(n)  # an empty sum is NULL (NaN on PySpark)
    if n:
        violations.append(Violation(table, ", ".join(keys), f"({', '.join(keys)}) must be unique", n, _examples(dup, keys + ["n"])))


def _check_users_exist(t, users, table, violations):
    if users is None or "user_id" not in t.columns:
        return
    unknown = t.anti_join(users.select("user_id"), "user_id")
    _add(violations, unknown, table, "user_id", "user_id not found in users", list(t.columns)[:4])


def _check_after_signup(t, users, table, column, violations):
    if users is None or column not in t.columns or "signup_at" not in users.columns:
        return
    j = t.join(users.select("user_id", "signup_at"), "user_id")
    _add(violations, j.filter(j[column] < j.signup_at), table, column, f"{column} before the user's signup_at", ["user_id", column, "signup_at"])


def _check_missing_columns(raw, spec, violations) -> bool:
    missing = [c for c in spec.required_columns if c not in raw.columns]
    for c in missing:
        violations.append(Violation(spec.name, c, f"required column missing (columns found: {', '.join(raw.columns)})", 0))
    return not missing


def _validate(folder: Path, con, check: bool = True, mapped: dict | None = None) -> tuple[dict[str, ibis.Table], list[Violation]]:
    """Type and check a dataset's tables: those in ``mapped`` (raw Ibis tables
    in contract column names, from a source mapping or a database) and the
    other contract tables found as files in ``folder``."""
    mapped = mapped or {}
    files, violations = find_tables(folder) if reads_files(con) else ({}, [])
    files = {n: p for n, p in files.items() if n not in mapped}
    present = set(files) | set(mapped)
    if "users" not in present and not ("kpis" in present and "events" not in present):
        what = "users.parquet or users.csv" if "events" in present or not present else "users"
        violations.append(Violation("users", None, f"required table missing: add {what} (or give a KPI-only dataset with kpis only)", 0))
    if "events" not in present and "kpis" not in present and "users" in present:
        violations.append(Violation("events", None, "required table missing: add events.parquet or events.csv (only a KPI-only dataset may omit it)", 0))

    tables: dict[str, ibis.Table] = {}
    for name, raw in mapped.items():
        if _check_missing_columns(raw, TABLES[name], violations):
            tables[name] = _typed(raw, TABLES[name], violations, check)
    for name, path in files.items():
        spec = TABLES[name]
        try:
            raw = _read(con, path)
        except Exception as exc:  # unreadable file: report, don't crash
            violations.append(Violation(name, None, f"file {path.name} cannot be read: {str(exc).splitlines()[0]}", 0))
            continue
        if _check_missing_columns(raw, spec, violations):
            tables[name] = _typed(raw, spec, violations, check)
    if not check:
        return tables, violations

    users = tables.get("users")
    if users is not None:
        _check_not_null(users, TABLES["users"], violations)
        _check_unique(users.filter(users.user_id.notnull()), ["user_id"], "users", violations)
        if "referred_by" in users.columns:
            refs = users.filter(users.referred_by.notnull())
            ids = users.select(ref_id=users.user_id)
            unknown = refs.anti_join(ids, refs.referred_by == ids.ref_id)
            _add(violations, unknown, "users", "referred_by", "referred_by names no existing user_id", ["user_id", "referred_by"])

    events = tables.get("events")
    if events is not None:
        _check_not_null(events, TABLES["events"], violations)
        _check_users_exist(events, users, "events", violations)
        bad_type = events.filter(events.event_type.notnull() & ~events.event_type.isin(EVENT_TYPES))
        _add(violations, bad_type, "events", "event_type", f"event_type must be one of {', '.join(EVENT_TYPES)}", ["user_id", "event_at", "event_type"])
        purchase = events.event_type == "purchase"
        if "amount" in events.columns:
            _add(violations, events.filter(purchase & events.amount.isnull()), "events", "amount", "purchase without an amount", ["user_id", "event_at", "event_type", "amount"])
            _check_minimum(events, TABLES["events"], violations)
            _add(violations, events.filter(~purchase & events.amount.notnull()), "events", "amount", "amount given on a non-purchase event (must be null)", ["user_id", "event_at", "event_type", "amount"])
        else:
            _add(violations, events.filter(purchase), "events", "amount", "purchase events but no amount column", ["user_id", "event_at", "event_type"])
        _check_after_signup(events, users, "events", "event_at", violations)

    assignments = tables.get("assignments")
    if assignments is not None:
        a = assignments
        _check_not_null(a, TABLES["assignments"], violations)
        _check_users_exist(a, users, "assignments", violations)
        _check_after_signup(a, users, "assignments", "assigned_at", violations)
        _check_unique(a, ["experiment", "user_id"], "assignments", violations)
        arms = a.filter(a.experiment.notnull()).group_by("experiment").aggregate(has_control=(a.arm == CONTROL_ARM).any())
        _add(violations, arms.filter(~arms.has_control), "assignments", "arm", f"experiment has no arm named '{CONTROL_ARM}'", ["experiment"])

    kpis = tables.get("kpis")
    if kpis is not None:
        _check_not_null(kpis, TABLES["kpis"], violations)
        _check_minimum(kpis, TABLES["kpis"], violations)
        keys = ["unit", "period"] if "unit" in kpis.columns else ["period"]
        _check_unique(kpis, keys, "kpis", violations)
    return tables, violations


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
        if self.meta.get("observation_end"):
            end = pd.Timestamp(self.meta["observation_end"])
            return end.tz_convert("UTC").tz_localize(None) if end.tzinfo is not None else end
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
            out[name] = read_table(con, name)
        except Exception:  # no such table
            continue
    return out


def load_dataset(path, backend=None, *, validate: bool = True) -> Dataset:
    """Load a dataset -- a folder, its dataset.yml, or a built-in name
    (``sample``, ``cdnow``, ``cdnow-sample``) -- as typed Ibis tables on the
    backend its dataset.yml names (``backend=`` an Ibis backend object or URL
    overrides it); raises DataError listing every contract violation.
    ``validate=False`` skips the rule checks (for data already validated;
    missing tables or columns are still refused)."""
    config = read_config(path)
    folder = config.folder
    if backend is not None:
        con = connect(backend)
        where = redact(backend) if isinstance(backend, str) else getattr(con, "name", type(con).__name__)
    else:
        con = config.backend.connect()
        where = config.backend.describe()
    mapped, notes = {}, []
    if config.source is not None:
        mapped, problems, notes = map_tables(config.source, con, check=validate)
        if problems:  # a mapping rule broken: one error per cause, before any contract check
            raise DataError(problems, str(config.location.config or folder))
    if not reads_files(con) or (backend is None and config.backend.url is not None):
        on_disk = set(find_tables(folder)[0]) if reads_files(con) else set()
        mapped = {**_database_tables(con, set(mapped) | on_disk), **mapped}
    tables, violations = _validate(folder, con, check=validate, mapped=mapped)
    if violations:
        raise DataError(violations, str(folder))
    return Dataset(path=folder, con=con, meta=config.meta, backend=where, notes=notes, **tables)


@dataclass(frozen=True)
class ValidationReport:
    """What a valid dataset holds and which analyses it supports."""

    path: Path
    rows: dict
    events: dict
    supports: dict
    observation_end: pd.Timestamp | None
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
        return "\n".join(lines)


def validate_dataset(path, backend=None) -> ValidationReport:
    """Check a dataset against the contract; raise DataError with all violations."""
    ds = load_dataset(path, backend)
    return ValidationReport(ds.path, ds.row_counts(), ds.event_counts(), ds.supports(), ds.observation_end, ds.backend, tuple(ds.notes))


__all__ = ["Dataset", "ValidationReport", "connect", "find_tables", "load_dataset", "validate_dataset", "WorkbenchError"]
