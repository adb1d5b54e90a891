"""Checking a dataset folder against the contract: every rule of
:mod:`workbench.data.contract`, every violation at once.

Cost: the rules of one table are counted in one aggregate query (a
``count(where=...)`` per rule), the rules that need the users (user exists,
not before signup) in one more over a join, uniqueness in a group-by; example
rows are fetched only for the rules that fail.

One cause, one violation: a column of the wrong type skips every rule that
reads it; a value that does not parse is not also "null"; an amount is judged
only on rows whose event type is valid; rows of an event with no user_id are
not also "user not found"; a dataset without users is not checked against
its users. Events, signups and assignments after ``observation_end`` are not
violations: they are counted into a notice (the analysis tables leave them
out), so nothing is cut silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import ibis
import pandas as pd

from workbench.data.contract import CONTROL_ARM, EVENT_TYPES, META_FILE, RESERVED_ATTRIBUTES, RESERVED_PREFIX, TABLES, reserved
from workbench.data.files import observation_end_of, read_meta, read_table, scan_folder
from workbench.errors import Violation

_TYPES = {"string": "string", "timestamp": "timestamp", "date": "date", "float": "float64"}
_NOT_PURCHASE = tuple(t for t in EVENT_TYPES if t != "purchase")


@dataclass
class Checked:
    """What checking a folder found: typed tables, dataset.yml, violations, notices."""

    tables: dict[str, ibis.Table] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    violations: list[Violation] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)


def check_folder(folder: Path, con, *, check: bool = True) -> Checked:
    """Find, open, type and (``check``) validate every table of ``folder`` on
    ``con``. Without ``check`` only what costs no scan of the rows is checked:
    files, dataset.yml, required tables and columns, column names and types."""
    found = scan_folder(folder)
    meta, meta_problems = read_meta(found.meta)
    out = Checked(meta=meta, violations=[*found.violations, *meta_problems], notices=list(found.notices))
    out.violations += _missing_tables(found.present, found.unknown)
    prepared = {}
    for name, path in found.tables.items():
        t = _prepare(con, name, path, out.violations)
        if t is not None:
            prepared[name] = t
    out.tables = {n: t.typed for n, t in prepared.items()}
    if check:
        end = None if meta_problems else observation_end_of(meta)
        _validate(prepared, end, out)
    return out


# ------------------------------------------------------------------ tables and columns
def _missing_tables(present: set[str], unknown: list[str]) -> list[Violation]:
    def near(table):
        like = [u for u in unknown if u.lower().startswith(table)]
        return f"; {', '.join(like)} {'is' if len(like) == 1 else 'are'} there, but only {table}.parquet or {table}.csv is read" if like else ""

    problems = []
    if "users" not in present and not ("kpis" in present and "events" not in present):
        problems.append(Violation("users", None, f"required table missing: add users.parquet or users.csv (or give a KPI-only dataset: kpis alone){near('users')}", 0))
    if "events" not in present and "kpis" not in present and "users" in present:
        problems.append(Violation("events", None, f"required table missing: add events.parquet or events.csv (only a KPI-only dataset may omit it){near('events')}", 0))
    return problems


@dataclass
class _Table:
    """One table as read: raw columns, typed columns, and what is known about them."""

    name: str
    file: str
    typed: ibis.Table  # contract columns cast to their types, blank text as null
    rel: ibis.Table  # raw columns plus wb_t_<column>, the typed values: what single-table rules count on
    missing: dict[str, ibis.Value]  # per contract column: null, or blank text
    unparsed: dict[str, ibis.Value]  # per text column that must parse: given but does not parse
    broken: set[str]  # contract columns of a type that cannot hold their values
    failed: bool = False  # the engine could not read it: nothing more is checked

    def ok(self, *columns: str) -> bool:
        return not self.failed and all(c in self.typed.columns and c not in self.broken for c in columns)

    def value(self, column: str) -> ibis.Value:
        return self.rel[f"wb_t_{column}"]


def _kind(dtype) -> str:
    if dtype.is_null() or (dtype.is_unknown() and "NULL" in str(dtype)):  # DuckDB reads Parquet's null type as unknown NULL
        return "null"
    if dtype.is_string():
        return "string"
    if dtype.is_timestamp():
        return "timestamp"
    if dtype.is_date():
        return "date"
    if dtype.is_numeric():
        return "number"
    return str(dtype)


def _cast(c: ibis.Value, kind: str, dtype: str) -> ibis.Value | None:
    """``c`` as the contract's ``dtype`` (text is tried, and may give nulls),
    or None if a column of this kind cannot hold such values."""
    if kind == "null":  # a column without a single value (pandas writes all-None columns so)
        return ibis.null(_TYPES[dtype])
    if dtype == "string":
        return c if kind == "string" else c.cast("string") if kind in ("number", "timestamp", "date") else None
    if dtype == "timestamp":
        if kind == "timestamp":
            return c.cast("timestamp") if c.type().timezone else c
        return c.try_cast("timestamp") if kind in ("string", "date") else None
    if dtype == "date":
        return c if kind == "date" else c.date() if kind == "timestamp" else c.try_cast("date") if kind == "string" else None
    return c.cast("float64") if kind == "number" else c.try_cast("float64") if kind == "string" else None


def _prepare(con, name: str, path: Path, violations: list[Violation]) -> _Table | None:
    """Open one table and type its contract columns; None if it cannot be
    used at all (unreadable, required columns missing)."""
    spec = TABLES[name]
    try:
        raw = read_table(con, path)
    except Exception as exc:
        if not _engine_error(exc):
            raise
        violations.append(Violation(name, None, _unreadable(path.name, exc), 0))
        return None
    missing = [c for c in spec.required_columns if c not in raw.columns]
    if missing:
        violations += _missing_columns(name, path, missing, list(raw.columns))
        return None
    if name == "users":
        violations += _reserved_attributes(list(raw.columns))
    casts, broken = {}, set()
    for col in spec.columns:
        if col.name not in raw.columns:
            continue
        c = raw[col.name]
        typed = _cast(c, _kind(c.type()), col.dtype)
        if typed is None:
            violations.append(Violation(name, col.name, f"must be a {col.dtype}, found a column of type {c.type()}: write it as {_TYPES[col.dtype]}", 0))
            broken.add(col.name)
            typed = ibis.null(_TYPES[col.dtype])
        elif c.type().is_string() and col.dtype != "string":
            typed = (c.strip() == "").ifelse(ibis.null(typed.type()), typed)
        casts[col.name] = typed
    rel = raw.mutate(**{f"wb_t_{k}": v for k, v in casts.items()})
    missing_value, unparsed = {}, {}
    for col in spec.columns:
        if col.name not in casts or col.name in broken:
            continue
        c = rel[col.name]
        if c.type().is_string() and col.dtype != "string":  # text to parse: blank is missing
            missing_value[col.name] = c.isnull() | (c.strip() == "")
            unparsed[col.name] = ~missing_value[col.name] & rel[f"wb_t_{col.name}"].isnull()
        elif c.type().is_string():  # a string: empty is missing (trimming every id would cost a scan's worth)
            missing_value[col.name] = c.isnull() | (c == "")
        else:
            missing_value[col.name] = c.isnull()
    return _Table(name, path.name, raw.mutate(**casts), rel, missing_value, unparsed, broken)


def _reserved_attributes(columns: list[str]) -> list[Violation]:
    clash = reserved(c for c in columns if TABLES["users"].column(c) is None)
    if not clash:
        return []
    many = len(clash) > 1
    rule = (
        f"attribute name{'s' if many else ''} {', '.join(clash)} {'are' if many else 'is'} used by the analysis tables for "
        f"their own columns: rename {'them' if many else 'it'} in users (e.g. {clash[0]} to user_{clash[0]}). "
        f"Reserved: {', '.join(sorted(RESERVED_ATTRIBUTES))}, and any name starting with {RESERVED_PREFIX}"
    )
    return [Violation("users", ", ".join(clash), rule, 0)]


def _missing_columns(name: str, path: Path, missing: list[str], found: list[str]) -> list[Violation]:
    columns = ", ".join(found) or "none"
    out = []
    for c in missing:
        near = next((f for f in found if f.strip().lower() == c), None)
        if near is not None:
            out.append(Violation(name, c, f"required column missing: {path.name} has {near!r}; rename it to {c} (column names are exact)", 0))
        else:
            out.append(Violation(name, c, f"required column missing (columns found: {columns})", 0))
    return out


# ------------------------------------------------------------------ running checks
@dataclass
class _Check:
    metric: ibis.Scalar  # the check applies when this is > 0
    report: Callable[[int], None] | None  # called with the metric's value; None: the value is only read


def _engine_error(exc: Exception) -> bool:
    """An error of the engine reading the data (not a bug in the checks)."""
    from ibis.common.exceptions import IbisError

    return not isinstance(exc, (IbisError, TypeError, AttributeError, NameError, KeyError, IndexError, AssertionError))


def _unreadable(file: str, exc: Exception) -> str:
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    text = "; ".join(lines[:3])[:400] or type(exc).__name__
    if "unicode" in text.lower() or "utf-8" in text.lower():
        return f"{file} is not UTF-8 text ({text}); save the file as UTF-8"
    return f"{file} cannot be read: {text}"


def _examples(expr: ibis.Table, columns: list[str]) -> list[dict]:
    cols = [c for c in dict.fromkeys(columns) if c in expr.columns]
    df = expr.select(cols).limit(3).to_pandas()
    return [{k: (None if pd.isna(v) else str(v)) for k, v in row.items()} for row in df.to_dict("records")]


def _run(rel: ibis.Table, checks: dict[str, _Check], t: _Table | None, out: Checked) -> dict | None:
    """Compute every check on ``rel`` in one query and report those that
    apply; the values by name, or None if the engine could not read the data."""
    if not checks:
        return {}
    try:
        row = rel.aggregate(**{k: c.metric for k, c in checks.items()}).to_pandas().iloc[0]
        values = {k: (0 if row[k] is None or pd.isna(row[k]) else int(row[k])) for k in checks}  # an empty sum is NULL
        for k, c in checks.items():
            if c.report is not None and values[k] > 0:
                c.report(values[k])
    except Exception as exc:
        if not _engine_error(exc) or t is None:
            raise
        out.violations.append(Violation(t.name, None, _unreadable(t.file, exc), 0))
        t.failed = True
        return None
    return values


def _count(rel: ibis.Table, bad: ibis.Value, table: str, column: str | None, rule: str, show: list[str], out: Checked) -> _Check:
    def report(n):
        out.violations.append(Violation(table, column, rule, n, _examples(rel.filter(bad), show)))

    return _Check(rel.count(where=bad), report)


def _basic(t: _Table, show: list[str], out: Checked, *, minimum_where=None) -> dict[str, _Check]:
    """Not null, parses, finite, minimum: the rules of each column on its own."""
    checks, rel = {}, t.rel
    for col in TABLES[t.name].columns:
        name = col.name
        if not t.ok(name):
            continue
        if col.not_null:
            checks[f"null_{name}"] = _count(rel, t.missing[name], t.name, name, "must not be null", show, out)
        if name in t.unparsed:
            rule = f"values that do not parse as a {col.dtype}"
            checks[f"parse_{name}"] = _count(rel, t.unparsed[name], t.name, name, rule, [*show, name], out)
        if col.dtype == "float":
            v = t.value(name)
            rule = "must be a finite number: NaN, infinity and numbers too large for a float (e.g. 1e309) are not values; leave the cell empty where there is none"
            checks[f"finite_{name}"] = _count(rel, v.isnan() | v.isinf(), t.name, name, rule, [*show, name], out)
            if col.minimum is not None:
                below = (v < col.minimum) & ~v.isinf()
                if minimum_where is not None:
                    below = below & minimum_where
                checks[f"min_{name}"] = _count(rel, below, t.name, name, f"must be >= {col.minimum:g}", [*show, name], out)
    return checks


def _after_end(t: _Table, column: str, end: pd.Timestamp | None, what: tuple[str, str], out: Checked) -> dict[str, _Check]:
    """A notice counting rows after the observation end (the tables leave them out)."""
    if end is None or not t.ok(column):
        return {}
    v = t.value(column)
    late = v > ibis.literal(end.to_pydatetime(), type="timestamp")

    def report(n):
        last = pd.Timestamp(t.rel.filter(late)[f"wb_t_{column}"].max().execute())
        one, many = what
        out.notices.append(
            f"{t.name}: {n:,} {one if n == 1 else many} after observation_end {end} ({META_FILE}; the last at {last}) "
            f"{'is' if n == 1 else 'are'} left out of every analysis; to include {'it' if n == 1 else 'them'}, "
            f"set observation_end to {last} or later"
        )

    return {f"late_{column}": _Check(t.rel.count(where=late), report)}


def _unique(t: _Table, keys: list[str], out: Checked) -> None:
    if not t.ok(*keys):
        return
    typed = t.typed
    rows = typed.filter([typed[k].notnull() for k in keys])
    groups = rows.group_by(keys).aggregate(n=rows.count())
    dup = groups.filter(groups.n > 1)
    rule = f"({', '.join(keys)}) must be unique"

    def report(n):
        out.violations.append(Violation(t.name, ", ".join(keys), rule, n, _examples(dup, [*keys, "n"])))

    _run(groups, {"dup": _Check(groups.n.sum(where=groups.n > 1), report)}, t, out)


# ------------------------------------------------------------------ the rules
def _validate(tables: dict[str, _Table], end: pd.Timestamp | None, out: Checked) -> None:
    users = tables.get("users")
    keys = _users(users, end, out) if users is not None else None
    if "events" in tables:
        _events(tables["events"], keys, end, out)
    if "assignments" in tables:
        _assignments(tables["assignments"], keys, end, out)
    if "kpis" in tables:
        _kpis(tables["kpis"], users is None, out)


@dataclass
class _Users:
    """The users other tables are checked against."""

    keys: ibis.Table  # one row per user_id (as wb_uid), with signup_at
    complete: bool  # every user has a user_id: an id not among them is unknown, not a follow-on


def _users(u: _Table, end, out: Checked) -> _Users | None:
    """Check users; the users to check other tables against, or None if they
    cannot be (no rows, unreadable)."""
    show = ["user_id", "signup_at", "channel", "segment"]
    checks = _basic(u, show, out)
    checks["rows"] = _Check(u.rel.count(), None)
    checks |= _after_end(u, "signup_at", end, ("signup", "signups"), out)
    if end is not None and u.ok("signup_at"):
        checks["observed"] = _Check(u.rel.count(where=u.value("signup_at") <= ibis.literal(end.to_pydatetime(), type="timestamp")), None)
    values = _run(u.rel, checks, u, out)
    if values is None:
        return None
    if values["rows"] == 0:
        out.violations.append(Violation("users", None, f"{u.file} has no rows: a dataset needs at least one user (one row per person who used the product)", 0))
        return None
    if "observed" in values and values["observed"] == 0 and not any(v.table == "users" and v.column == "signup_at" for v in out.violations):
        first = pd.Timestamp(u.typed.signup_at.min().execute())
        out.violations.append(Violation(META_FILE, "observation_end", f"{end} is before every signup (the first is {first}), so nothing is observed: set a later observation_end", 0))
    before = len(out.violations)
    _unique(u, ["user_id"], out)
    duplicates = len(out.violations) > before
    typed = u.typed
    if u.ok("user_id", "referred_by"):
        refs = typed.filter(typed.referred_by.notnull()).select("user_id", "referred_by")
        ids = typed.select(wb_ref=typed.user_id).distinct() if duplicates else typed.select(wb_ref=typed.user_id)
        j = refs.left_join(ids, refs.referred_by == ids.wb_ref)
        _run(j, {"ref": _count(j, j.wb_ref.isnull(), "users", "referred_by", "referred_by names no existing user_id", ["user_id", "referred_by"], out)}, u, out)
    if u.failed or not u.ok("user_id"):
        return None
    signup = typed.signup_at if u.ok("signup_at") else ibis.null("timestamp")
    keys = typed.filter(typed.user_id.notnull()).select(wb_uid=typed.user_id, signup_at=signup)
    if duplicates:  # one row per user, so counts over a join are not multiplied
        keys = keys.group_by("wb_uid").aggregate(signup_at=keys.signup_at.min())
    return _Users(keys, values.get("null_user_id", 0) == 0)


def _against_users(t: _Table, users: _Users | None, column: str, out: Checked) -> None:
    """user_id exists in users; ``column`` not before the user's signup."""
    if users is None or t.failed or not t.ok("user_id"):
        return
    keys = users.keys
    cols = ["user_id", column] if t.ok(column) else ["user_id"]
    j = t.typed.select(*cols).left_join(keys, t.typed.user_id == keys.wb_uid)
    checks = {}
    if users.complete:
        checks["unknown"] = _count(j, j.user_id.notnull() & j.wb_uid.isnull(), t.name, "user_id", "user_id not found in users", cols, out)
    if t.ok(column):
        rule = f"{column} before the user's signup_at"
        checks["early"] = _count(j, j[column] < j.signup_at, t.name, column, rule, ["user_id", column, "signup_at"], out)
    _run(j, checks, t, out)


def _events(e: _Table, keys, end, out: Checked) -> None:
    show = ["user_id", "event_at", "event_type", "amount"]
    rel, typed = e.rel, e.typed
    is_purchase = rel.event_type == "purchase" if e.ok("event_type") else None
    checks = _basic(e, show, out, minimum_where=is_purchase)
    if e.ok("event_type"):
        bad = ~e.missing["event_type"] & ~rel.event_type.isin(EVENT_TYPES)
        checks["type"] = _count(rel, bad, "events", "event_type", f"event_type must be one of {', '.join(EVENT_TYPES)}", show, out)
        if "amount" not in typed.columns:
            checks["no_amount_column"] = _count(rel, is_purchase, "events", "amount", "purchase events but no amount column: add amount", show, out)
        elif e.ok("amount"):
            amount = e.value("amount")
            given = amount.notnull() & ~amount.isnan() & ~amount.isinf()
            checks["no_amount"] = _count(rel, is_purchase & e.missing["amount"], "events", "amount", "purchase without an amount", show, out)
            rule = "amount given on a non-purchase event (must be null)"
            checks["stray_amount"] = _count(rel, rel.event_type.isin(_NOT_PURCHASE) & given, "events", "amount", rule, show, out)
    checks |= _after_end(e, "event_at", end, ("event", "events"), out)
    if _run(rel, checks, e, out) is not None:
        _against_users(e, keys, "event_at", out)


def _assignments(a: _Table, keys, end, out: Checked) -> None:
    show = ["user_id", "experiment", "arm", "assigned_at"]
    checks = _basic(a, show, out) | _after_end(a, "assigned_at", end, ("assignment", "assignments"), out)
    if _run(a.rel, checks, a, out) is None:
        return
    _against_users(a, keys, "assigned_at", out)
    _unique(a, ["experiment", "user_id"], out)
    if a.ok("experiment", "arm") and not a.failed:
        t = a.typed
        arms = t.filter(t.experiment.notnull()).group_by("experiment").aggregate(has_control=(t.arm == CONTROL_ARM).any())
        rule = f"experiment has no arm named '{CONTROL_ARM}'"
        _run(arms, {"control": _count(arms, ~arms.has_control, "assignments", "arm", rule, ["experiment"], out)}, a, out)


def _kpis(k: _Table, kpi_only: bool, out: Checked) -> None:
    checks = _basic(k, list(k.typed.columns)[:4], out)
    checks["rows"] = _Check(k.rel.count(), None)
    values = _run(k.rel, checks, k, out)
    if values is None:
        return
    if kpi_only and values["rows"] == 0:
        out.violations.append(Violation("kpis", None, f"{k.file} has no rows: a KPI-only dataset needs at least one period", 0))
    _unique(k, ["unit", "period"] if "unit" in k.typed.columns else ["period"], out)
