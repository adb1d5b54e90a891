"""Checking a dataset folder against the contract: every rule of
:mod:`workbench.data.contract`, every violation at once.

Cost: each table is read once for a probe, one aggregate query of cheap
values (counts of values, minima, maxima, sums of numbers, whose NaN or
infinity shows a value that is not finite; events grouped by type,
assignments by experiment) from which every rule of its own columns is
judged; the rules against users (user exists, not before signup) take one
join, which probes the columns it reads too. Rows are counted, and example
rows fetched, only for the rules the probe shows may be broken. So a valid
dataset costs two passes over events, reading each column once: event_type
and amount grouped by type, user_id and event_at in the join.

One cause, one violation: a column of the wrong type skips every rule that
reads it; a value that does not parse is not also "null"; an amount is judged
only on rows whose event type is valid; an event without a user_id is not
also "user not found"; a dataset without users (or with users without ids)
is not checked for unknown users. Events, signups and assignments after
``observation_end`` are not violations: a notice counts them (the analysis
tables leave them out), so nothing is cut silently.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import ibis
import numpy as np
import pandas as pd

from workbench.data import parsing
from workbench.data.columns import OpenTable, engine_error, open_table, unreadable
from workbench.data.contract import CONTROL_ARM, EVENT_TYPES, META_FILE, TABLES
from workbench.data.credentials import LOCAL_CONFIG
from workbench.data.files import observation_end_of, read_meta, scan_folder
from workbench.errors import Violation

_NOT_PURCHASE = tuple(t for t in EVENT_TYPES if t != "purchase")
_LIKE = {"timestamp": "2024-06-30 14:05:00", "date": "2024-06-30", "float": "12.5", "string": "text"}


@dataclass
class Checked:
    """What checking a folder found: typed tables, dataset.yml, violations, notices."""

    tables: dict[str, ibis.Table] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    violations: list[Violation] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)


def check_folder(folder: Path, con, *, check: bool = True, meta: tuple[dict, list[Violation]] | None = None,
                 mapped: dict[str, tuple[ibis.Table, str]] | None = None, read_files: bool = True, used: tuple[str, ...] = ()) -> Checked:
    """Find, open, type and (``check``) validate every table of ``folder`` on
    ``con``. Without ``check`` only what costs no scan of the rows is checked:
    files, dataset.yml, required tables and columns, column names and types.

    The hook for data that are not contract files: ``mapped`` gives tables
    already on ``con`` in contract column names, each with the name messages
    use for it (a mapped export, a database table); they take the place of
    files of the same name and are typed and checked exactly as files are.
    ``read_files=False`` (a backend that cannot read files) leaves the
    folder's table files unread, with a notice; files named in ``used`` (what
    a mapping reads) are not listed as unread. ``meta`` is dataset.yml as
    already read (:func:`~workbench.data.files.read_meta`)."""
    mapped = mapped or {}
    found = scan_folder(folder)
    meta, meta_problems = meta if meta is not None else read_meta(found.meta)
    found.unknown = [u for u in found.unknown if u not in used and u != LOCAL_CONFIG]
    out = Checked(meta=meta, violations=[*found.violations, *meta_problems], notices=list(found.notices))
    if found.listed:
        out.violations += _missing_tables((found.present if read_files else set()) | set(mapped), found.unknown)
    prepared = {}
    for name, path in found.tables.items():
        if name in mapped:
            out.notices.append(f"{path.name} was not read: {name} is {mapped[name][1]} (remove one of the two)")
        elif not read_files:
            out.notices.append(f"{path.name} was not read: the backend ({getattr(con, 'name', con)}) reads tables, not files; "
                               f"{name} comes from its table {name} or from {META_FILE}'s source section")
        elif (t := open_table(con, name, path, out.violations)) is not None:
            prepared[name] = t
    for name, (raw, label) in mapped.items():
        t = open_table(con, name, None, out.violations, raw=raw, label=label)
        if t is not None:
            prepared[name] = t
    prepared = {n: prepared[n] for n in TABLES if n in prepared}
    out.tables = {n: t.typed for n, t in prepared.items()}
    if check:
        end = None if meta_problems else observation_end_of(meta)
        _validate(prepared, end, out)
    return out


# ------------------------------------------------------------------ tables
def _missing_tables(present: set[str], unknown: list[str]) -> list[Violation]:
    def near(table):
        like = [u for u in unknown if u.lower().startswith(table)]
        return f"; {', '.join(like)} {'is' if len(like) == 1 else 'are'} there, but only {table}.parquet or {table}.csv is read" if like else ""

    problems = []
    if "users" not in present and not ("kpis" in present and "events" not in present):
        rule = f"required table missing: add users.parquet or users.csv (or give a KPI-only dataset: kpis alone){near('users')}"
        problems.append(Violation("users", None, rule, 0))
    if "events" not in present and "kpis" not in present and "users" in present:
        rule = f"required table missing: add events.parquet or events.csv (only a KPI-only dataset may omit it){near('events')}"
        problems.append(Violation("events", None, rule, 0))
    return problems


# ------------------------------------------------------------------ running checks
@dataclass
class _Rule:
    """One rule on the rows of a relation: ``bad`` marks the rows that break
    it. With ``suspect``, the rule is judged from cheap aggregates (counts,
    minima, maxima: the probe) and its rows are counted only if the probe
    says some may break it; without, they are counted in the probe query."""

    table: str
    column: str | None
    text: str
    bad: ibis.Value
    show: list[str]
    suspect: Callable[[pd.DataFrame], bool] | None = None
    notice: Callable[[int], str] | None = None  # a notice, not a violation: its text for n rows
    rel: ibis.Table | None = None  # the relation ``bad`` is on, if not the probed one (suspected rules only)
    more: Callable[[], str] | None = None  # more to say once the rule is found broken (costs a query)


def _examples(expr: ibis.Table, columns: list[str]) -> list[dict]:
    cols = [c for c in dict.fromkeys(columns) if c in expr.columns]
    df = expr.select(cols).limit(3).to_pandas()
    return [{k: (None if pd.isna(v) else str(v)) for k, v in row.items()} for row in df.to_dict("records")]


def _guarded(t: OpenTable, out: Checked, run: Callable[[], object]):
    """``run()``, with an engine error reading ``t`` reported as a violation
    (and ``t`` marked failed, so nothing more is checked on it): None then."""
    try:
        return run()
    except Exception as exc:
        if not engine_error(exc):
            raise
        out.violations.append(Violation(t.name, None, unreadable(t.file, exc), 0))
        t.failed = True
        return None


def _check(rel: ibis.Table, probe: dict, rules: list[_Rule], t: OpenTable, out: Checked, by: str | None = None) -> pd.DataFrame | None:
    """One query over ``rel`` (grouped ``by`` a column with few values, if
    given) computing the ``probe`` and the rows of the rules without a
    ``suspect``; then the suspected rules' rows; report every rule broken.
    The probe's values (one row per group), or None if the engine failed."""
    exact = {f"wb_rule_{i}": rel.count(where=r.bad) for i, r in enumerate(rules) if r.suspect is None}
    metrics = {"wb_n": rel.count(), **probe, **exact}

    def run():
        q = rel.group_by(by).aggregate(**metrics) if by else rel.aggregate(**metrics)
        values = q.to_pandas()
        for i, r in enumerate(rules):
            on = rel if r.rel is None else r.rel
            if r.suspect is None:
                n = _total(values, f"wb_rule_{i}")
            else:
                n = int(on.count(where=r.bad).execute()) if r.suspect(values) else 0
            if n and r.notice is not None:
                out.notices.append(r.notice(n))
            elif n:
                text = r.text + (r.more() if r.more is not None else "")
                out.violations.append(Violation(r.table, r.column, text, n, _examples(on.filter(r.bad), r.show)))
        return values

    return _guarded(t, out, run)


def _total(values: pd.DataFrame, column: str) -> int:
    return int(pd.to_numeric(values[column]).fillna(0).sum())


def _probe(t: OpenTable, by: str | None = None, smallest: tuple[str, ...] = (), skip: tuple[str, ...] = ()) -> dict:
    """Cheap aggregates that tell whether a column's rules may be broken:
    counts of values (raw and typed), minima of numbers, maxima of
    timestamps, and minima of the columns in ``smallest`` (an empty string is
    the smallest string). Columns in ``skip`` are probed elsewhere. On
    Parquet an engine may answer them from the file's statistics."""
    probe = {}
    for col in TABLES[t.name].columns:
        name = col.name
        if not t.ok(name) or name == by or name in skip:
            continue
        v = t.value(name)
        if col.not_null or col.dtype == "float" or name in smallest:  # the columns whose rules read it
            probe[f"nv_{name}"] = v.count()
        if name in t.unparsed:
            probe[f"nr_{name}"] = t.rel[name].count()
        if col.dtype == "float" or name in smallest:
            probe[f"min_{name}"] = v.min()
        if col.dtype == "float":  # NaN or infinity make the sum so (never answered from statistics)
            probe[f"sum_{name}"] = v.sum()
        if col.dtype == "timestamp":
            probe[f"max_{name}"] = v.max()
    return probe


def _column_rules(t: OpenTable, show: list[str], end, *, by: str | None = None, minimum_where=None, late=None) -> list[_Rule]:
    """Not null, parses, finite, minimum, after the observation end: the
    rules of each contract column on its own, judged from :func:`_probe`."""
    rules = []
    for col in TABLES[t.name].columns:
        name = col.name
        if not t.ok(name):
            continue
        if col.not_null:
            if name == by:  # the grouping key: its groups say it
                suspect = lambda d, k=name: bool(d[k].isna().any() or (d[k] == "").any())  # noqa: E731
            else:  # fewer values than rows, or an empty string (where the probe has the minimum)
                suspect = lambda d, k=name: _total(d, f"nv_{k}") < _total(d, "wb_n") or _empty(d, k)  # noqa: E731
            rules.append(_Rule(t.name, name, "must not be null: fill it in, or drop the rows", t.missing[name], show, suspect))
        if name in t.unparsed:
            rule = f"values that do not parse as a {col.dtype}: write them like {_LIKE[col.dtype]}"
            suspect = lambda d, k=name: _total(d, f"nr_{k}") > _total(d, f"nv_{k}")  # noqa: E731
            more = (lambda k=name: _format_hint(t, k)) if col.dtype == "timestamp" else None
            rules.append(_Rule(t.name, name, rule, t.unparsed[name], [*show, name], suspect, more=more))
        if col.dtype == "float":
            v = t.value(name)
            rule = (
                "must be a finite number: NaN, infinity and numbers too large for a float (e.g. 1e309) "
                "are not values; leave the cell empty where there is none"
            )
            # suspected from the sum, not the minimum or maximum: Parquet statistics, which an engine may
            # answer those from, leave NaN out; a sum past the largest float (finite values) is counted too
            suspect = lambda d, k=name: not np.isfinite(pd.to_numeric(d.loc[_given(d, k), f"sum_{k}"])).all()  # noqa: E731
            rules.append(_Rule(t.name, name, rule, v.isnan() | _infinite(v), [*show, name], suspect))
            if col.minimum is not None:
                below = (v < col.minimum) & ~_infinite(v)
                below = below if minimum_where is None else below & minimum_where
                suspect = lambda d, k=name, m=col.minimum: bool((_given(d, k) & (d[f"min_{k}"] < m)).any())  # noqa: E731
                rules.append(_Rule(t.name, name, f"must be >= {col.minimum:g}: correct the values, or drop the rows", below, [*show, name], suspect))
        if late and name == late[0] and end is not None:
            rules.append(_after_end(t, name, end, late[1]))
    return rules


def _format_hint(t: OpenTable, column: str) -> str:
    """Timestamps that do not parse: a format that would parse them (guessed
    from a sample of the values), and where to state it."""
    advice = f'map the table in {META_FILE}: source: {t.name}: timestamps: format: "{{fmt}}" (docs/dataset-contract.md)'
    values = parsing.sample_values(t.rel, t.rel[column], t.value(column))
    return f" (or ISO 8601, with or without a UTC offset; {parsing.format_hint(values, advice=advice)})"


def _empty(d: pd.DataFrame, column: str) -> bool:
    smallest = d.get(f"min_{column}")
    return smallest is not None and pd.api.types.is_string_dtype(smallest) and bool((smallest == "").any())


def _infinite(v: ibis.Value) -> ibis.Value:
    """+-infinity, written so every backend gets it right (ibis 12 compiles
    ``isinf()`` to FALSE on PySpark)."""
    return v.abs() > sys.float_info.max


def _given(d: pd.DataFrame, column: str) -> pd.Series:
    return pd.to_numeric(d[f"nv_{column}"]).fillna(0) > 0


def _after_end(t: OpenTable, column: str, end: pd.Timestamp, what: tuple[str, str]) -> _Rule:
    """A notice counting rows after the observation end (the tables leave them out)."""
    end_lit = ibis.literal(end.to_pydatetime(), type="timestamp")
    late = t.value(column) > end_lit

    def notice(n):
        last = pd.Timestamp(t.rel.filter(late)[f"wb_t_{column}"].max().execute())
        one, many = what
        return (
            f"{t.name}: {n:,} {one if n == 1 else many} after observation_end {end} ({META_FILE}; the last at {last}) "
            f"{'is' if n == 1 else 'are'} left out of every analysis; to include {'it' if n == 1 else 'them'}, "
            f"set observation_end to {last} or later"
        )

    def suspect(d):
        latest = pd.to_datetime(d[f"max_{column}"]).max()
        return not pd.isna(latest) and pd.Timestamp(latest) > end

    return _Rule(t.name, column, "", late, [], suspect, notice)


def _unique(t: OpenTable, keys: list[str], out: Checked) -> None:
    """(keys) unique, counted exactly with a group-by: the rows of repeated keys."""
    typed = t.typed
    rows = typed.filter([typed[k].notnull() for k in keys])
    groups = rows.group_by(keys).aggregate(n=rows.count())
    dup = groups.filter(groups.n > 1)

    def run():
        n = dup.n.sum().execute()
        if n is not None and not pd.isna(n) and int(n):  # an empty sum is NULL
            rule = f"({', '.join(keys)}) must be unique: keep one row for each"
            out.violations.append(Violation(t.name, ", ".join(keys), rule, int(n), _examples(dup, [*keys, "n"])))

    _guarded(t, out, run)


# ------------------------------------------------------------------ the rules
def _validate(tables: dict[str, OpenTable], end: pd.Timestamp | None, out: Checked) -> None:
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


def _users(u: OpenTable, end, out: Checked) -> _Users | None:
    """Check users; the users to check other tables against, or None if they
    cannot be (no rows, unreadable)."""
    show = ["user_id", "signup_at", "channel", "segment"]
    probe = _probe(u, smallest=("user_id", "signup_at"))
    if u.ok("user_id"):
        probe["ids"] = u.rel.user_id.nunique()
    rules = _column_rules(u, show, end, late=("signup_at", ("signup", "signups")))
    values = _check(u.rel, probe, rules, u, out)
    if values is None:
        return None
    if _total(values, "wb_n") == 0:
        out.violations.append(Violation("users", None, f"{u.file} has no rows: a dataset needs at least one user (one row per person who used the product)", 0))
        return None
    first = pd.to_datetime(values["min_signup_at"]).iloc[0] if "min_signup_at" in values else None
    if end is not None and first is not None and not pd.isna(first) and pd.Timestamp(first) > end:
        rule = f"{end} is before every signup (the first is {pd.Timestamp(first)}), so nothing is observed: set a later observation_end"
        out.violations.append(Violation(META_FILE, "observation_end", rule, 0))
    duplicates = u.ok("user_id") and _total(values, "ids") < _total(values, "nv_user_id")
    if duplicates:
        _unique(u, ["user_id"], out)
    typed = u.typed
    if u.ok("user_id", "referred_by"):
        refs = typed.filter(typed.referred_by.notnull()).select("user_id", "referred_by")
        ids = typed.select(wb_ref=typed.user_id).distinct() if duplicates else typed.select(wb_ref=typed.user_id)
        j = refs.left_join(ids, refs.referred_by == ids.wb_ref)
        rule = "referred_by names no existing user_id: leave it empty, or add the referrer to users"
        _check(j, {}, [_Rule("users", "referred_by", rule, j.wb_ref.isnull(), ["user_id", "referred_by"])], u, out)
    if u.failed or not u.ok("user_id"):
        return None
    signup = typed.signup_at if u.ok("signup_at") else ibis.null("timestamp")
    keys = typed.filter(typed.user_id.notnull()).select(wb_uid=typed.user_id, signup_at=signup)
    if duplicates:  # one row per user, so counts over a join are not multiplied
        keys = keys.group_by("wb_uid").aggregate(signup_at=keys.signup_at.min())
    complete = _total(values, "nv_user_id") == _total(values, "wb_n") and not _empty(values, "user_id")
    return _Users(keys, complete)


def _against_users(t: OpenTable, users: _Users | None, column: str, rules: list[_Rule], out: Checked) -> None:
    """user_id exists in users; ``column`` not before the user's signup. One
    join, which also probes user_id and ``column`` for their own ``rules``
    (it reads them anyway); unknown ids show as fewer ids found than given."""
    if users is None or t.failed or not t.ok("user_id"):
        return
    keys, typed = users.keys, t.value("user_id")
    cols = {"user_id": typed}
    if t.ok(column):
        cols |= {column: t.rel[column], f"wb_t_{column}": t.value(column)}
    side = t.rel.select(**cols)
    j = side.left_join(keys, side.user_id == keys.wb_uid)
    probe = {"nv_user_id": j.user_id.count(), "found": j.wb_uid.count()}
    if t.ok(column):
        v = j[f"wb_t_{column}"]
        probe |= {f"nv_{column}": v.count(), f"max_{column}": v.max()}
        if column in t.unparsed:
            probe[f"nr_{column}"] = j[column].count()
    own = [dataclasses.replace(r, rel=t.rel) for r in rules]
    if users.complete:
        unknown = j.user_id.notnull() & j.wb_uid.isnull()
        suspect = lambda d: _total(d, "found") < _total(d, "nv_user_id")  # noqa: E731
        own.append(_Rule(t.name, "user_id", "user_id not found in users: add the users, or drop their rows", unknown, list(cols)[:2], suspect))
    if t.ok(column):
        early = j[f"wb_t_{column}"] < j.signup_at
        rule = f"{column} before the user's signup_at: correct the time, or the user's signup_at"
        own.append(_Rule(t.name, column, rule, early, ["user_id", column, "signup_at"]))
    _check(j, probe, own, t, out)


def _per_row(t: OpenTable, users: _Users | None, column: str, rules: list[_Rule]) -> tuple[tuple[str, ...], list[_Rule], list[_Rule]]:
    """The columns probed in the join with users (if there is one), and the
    rules split into those judged by the table's own probe and by the join's."""
    if users is None or not t.ok("user_id"):
        return (), rules, []
    joined = ("user_id", column)
    return joined, [r for r in rules if r.column not in joined], [r for r in rules if r.column in joined]


def _events(e: OpenTable, users, end, out: Checked) -> None:
    """One query grouped by event type (a handful of groups: the type rules
    and the per-type amount rules are read off the groups), then the join,
    which also judges user_id and event_at on their own."""
    show = ["user_id", "event_at", "event_type", "amount"]
    rel = e.rel
    by = "event_type" if e.ok("event_type") else None
    is_purchase = rel.event_type == "purchase" if by else None
    rules = _column_rules(e, show, end, by=by, minimum_where=is_purchase, late=("event_at", ("event", "events")))
    skip, rules, in_join = _per_row(e, users, "event_at", rules)
    probe = _probe(e, by, skip=skip)
    if by:
        keys = lambda d: set(d["event_type"].dropna()) - {""}  # noqa: E731
        bad = ~e.missing["event_type"] & ~rel.event_type.isin(EVENT_TYPES)
        rule = f"event_type must be one of {', '.join(EVENT_TYPES)} (exactly so): map other names onto these"
        rules.append(_Rule("events", "event_type", rule, bad, show, lambda d: bool(keys(d) - set(EVENT_TYPES))))
        if "amount" not in e.typed.columns:
            rules.append(_Rule("events", "amount", "purchase events but no amount column: add amount", is_purchase, show, lambda d: "purchase" in keys(d)))
        elif e.ok("amount"):
            amount = e.value("amount")
            purchases = lambda d: d[d["event_type"] == "purchase"]  # noqa: E731
            others = lambda d: d[d["event_type"].isin(_NOT_PURCHASE)]  # noqa: E731
            missing = lambda d: _total(purchases(d), "nv_amount") < _total(purchases(d), "wb_n")  # noqa: E731
            rule = "purchase without an amount: give one (0 for a free purchase)"
            rules.append(_Rule("events", "amount", rule, is_purchase & e.missing["amount"], show, missing))
            given = amount.notnull() & ~amount.isnan() & ~_infinite(amount)
            stray = rel.event_type.isin(_NOT_PURCHASE) & given
            rule = "amount given on a non-purchase event (must be null)"
            rules.append(_Rule("events", "amount", rule, stray, show, lambda d: _total(others(d), "nv_amount") > 0))
    if _check(rel, probe, rules, e, out, by=by) is not None:
        _against_users(e, users, "event_at", in_join, out)


def _assignments(a: OpenTable, users, end, out: Checked) -> None:
    """One query grouped by experiment (repeats of a user and the control arm
    are read off the groups), then the join."""
    show = ["user_id", "experiment", "arm", "assigned_at"]
    rel = a.rel
    by = "experiment" if a.ok("experiment") else None
    rules = _column_rules(a, show, end, by=by, late=("assigned_at", ("assignment", "assignments")))
    skip, rules, in_join = _per_row(a, users, "assigned_at", rules)
    probe = _probe(a, by, skip=skip)
    if by and a.ok("user_id"):
        probe |= {"ids": rel.user_id.nunique(), "given": rel.user_id.count()}
    if by and a.ok("arm"):
        probe["controls"] = rel.count(where=rel.arm == CONTROL_ARM)
    values = _check(rel, probe, rules, a, out, by=by)
    if values is None:
        return
    _against_users(a, users, "assigned_at", in_join, out)
    if "ids" in values and (pd.to_numeric(values["ids"]) < pd.to_numeric(values["given"])).any():
        _unique(a, ["experiment", "user_id"], out)
    if "controls" in values:
        named = values[values["experiment"].notna()]
        lacking = named[pd.to_numeric(named["controls"]) == 0]
        if len(lacking):
            examples = [{"experiment": str(x)} for x in lacking["experiment"][:3]]
            rule = f"experiment has no arm named '{CONTROL_ARM}': name its control arm so"
            out.violations.append(Violation("assignments", "arm", rule, len(lacking), examples))


def _kpis(k: OpenTable, kpi_only: bool, out: Checked) -> None:
    keys = ["unit", "period"] if "unit" in k.typed.columns else ["period"]
    probe = _probe(k)
    if k.ok(*keys):  # distinct keys, as text (two keys that read alike are checked exactly)
        period = k.value("period").cast("string")
        key = period if keys == ["period"] else k.value("unit").fill_null("") + "\x1f" + period
        probe["keys"] = key.nunique()
    values = _check(k.rel, probe, _column_rules(k, list(k.typed.columns)[:4], None), k, out)
    if values is None:
        return
    if kpi_only and _total(values, "wb_n") == 0:
        out.violations.append(Violation("kpis", None, f"{k.file} has no rows: a KPI-only dataset needs at least one period", 0))
    if "keys" in values and _total(values, "keys") < _total(values, "nv_period"):
        _unique(k, keys, out)
