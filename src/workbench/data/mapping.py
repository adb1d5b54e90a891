"""The ``source`` section of dataset.yml: an analyst's own tables mapped onto
the dataset contract (docs/dataset-contract.md, "Mapping an export").

::

    source:
      events:
        file: export.csv                 # or  table: analytics.events  on the backend
        columns: {user_id: customer, event_at: ts, event_type: type, amount: revenue}
        event_types: {active: [login], purchase: [order], feedback: [idea_submitted],
                      adopted: [idea_shipped], cancel: [unsubscribe]}
        timestamps: {format: "%m/%d/%Y %H:%M", timezone: America/New_York}
        refunds: net                     # or drop
      users:
        derive: first_event              # no users table: signup = each user's first event

:func:`parse_source` checks the section without reading data;
:func:`map_tables` turns it into raw Ibis tables in the contract's column
names (timestamps already in UTC, event types mapped, refunds applied), which
then go through the contract's typing and validation unchanged. Each broken
rule is one error naming the rule (``source.events.columns.user_id``) and
what to do.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

import ibis

from workbench.data import parsing
from workbench.data.backends import read_file, read_table, reads_files
from workbench.data.contract import EVENT_TYPES, TABLES
from workbench.errors import Violation

TABLE_KEYS = ("file", "table", "columns", "event_types", "timestamps", "refunds", "derive")
REFUNDS = ("net", "drop")
DERIVE = ("first_event",)


@dataclass(frozen=True)
class TableSource:
    """Where one contract table comes from and how it is mapped."""

    name: str
    file: Path | None = None
    table: str | None = None
    columns: dict = field(default_factory=dict)  # contract column -> source column
    event_types: dict | None = None  # source value -> contract event type
    format: str | None = None
    timezone: str | None = None
    refunds: str | None = None
    derive: str | None = None

    def describe(self) -> str:
        if self.derive:
            return "derived from each user's first event"
        return self.file.name if self.file is not None else f"table {self.table}"


@dataclass(frozen=True)
class SourceMapping:
    """The parsed ``source`` section: one :class:`TableSource` per mapped table."""

    tables: dict
    folder: Path


# ------------------------------------------------------------------ parsing the section
def _as_list(value) -> list | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (str, int)) for v in value):
        return [str(v) for v in value]
    return None


def _folder_file(folder: Path, name: str) -> Path | None:
    found = [folder / f"{name}.{ext}" for ext in ("parquet", "csv") if (folder / f"{name}.{ext}").is_file()]
    return found[0] if found else None


def parse_source(section: dict, folder: Path) -> tuple[SourceMapping, list[Violation]]:
    """The ``source`` section checked without reading any data: every
    broken rule is returned (the mapping is only usable if there is none)."""
    problems: list[Violation] = []
    tables: dict[str, TableSource] = {}

    def bad(table, key, rule):
        problems.append(Violation(f"source.{table}", key, rule, 0))

    for name, spec in section.items():
        if name not in TABLES:
            bad(name, None, f"not a contract table (map one of: {', '.join(TABLES)})")
            continue
        if not isinstance(spec, dict):
            bad(name, None, "must be a mapping (file: or table:, columns:, ...)")
            continue
        for key in spec:
            if key not in TABLE_KEYS:
                bad(name, key, f"unknown key (known: {', '.join(TABLE_KEYS)})")
        for key, only in (("event_types", "events"), ("refunds", "events"), ("derive", "users")):
            if key in spec and name != only:
                bad(name, key, f"only the {only} table takes {key}")
        where = [k for k in ("file", "table", "derive") if spec.get(k) is not None]
        if len(where) != 1:
            bad(name, None, "give exactly one of file: (a CSV/Parquet file in the dataset folder), table: (a table on the backend)"
                + (" or derive: first_event" if name == "users" else "") + (f"; found {', '.join(where)}" if where else ""))
        file = None
        if spec.get("file") is not None:
            file = folder / str(spec["file"])
            if file.suffix not in (".csv", ".parquet"):
                bad(name, "file", f"{spec['file']} must be a .csv or .parquet file")
            elif not file.is_file():
                bad(name, "file", f"no file {spec['file']} in {folder}: copy the export there or give its path relative to the folder")
        table = spec.get("table")
        if table is not None and (not isinstance(table, str) or not table.strip()):
            bad(name, "table", "must name a table on the backend, e.g. analytics.events")
        derive = spec.get("derive")
        if derive is not None:
            if derive not in DERIVE:
                bad(name, "derive", f"must be {' or '.join(DERIVE)} (signup = each user's first event), got {derive!r}")
            clash = _folder_file(folder, "users")
            if clash is not None:
                bad(name, "derive", f"the folder also holds {clash.name}: remove it, or map it instead of deriving users")
        columns = spec.get("columns") or {}
        if not isinstance(columns, dict) or not all(isinstance(k, str) and isinstance(v, (str, int)) for k, v in columns.items()):
            bad(name, "columns", "must map contract columns to the source's columns, e.g. {user_id: customer, event_at: ts}")
            columns = {}
        columns = {k: str(v) for k, v in columns.items()}
        contract = [c.name for c in TABLES[name].columns]
        if name != "users":  # users may rename any attribute; other tables hold only contract columns
            for k in columns:
                if k not in contract:
                    close = difflib.get_close_matches(k, contract, n=1)
                    bad(name, f"columns.{k}", f"not a column of the contract's {name} table ({', '.join(contract)})"
                        + (f"; did you mean {close[0]}?" if close else ""))
        if derive is not None and columns:
            bad(name, "columns", "derived users take no columns (user_id and signup_at come from the events)")
        event_types = None
        if spec.get("event_types") is not None:
            event_types = {}
            raw = spec["event_types"]
            if not isinstance(raw, dict):
                bad(name, "event_types", "must map contract event types to the source's, e.g. {purchase: [order], active: [login]}")
                raw = {}
            for contract_type, values in raw.items():
                if contract_type not in EVENT_TYPES:
                    bad(name, f"event_types.{contract_type}", f"not a contract event type ({', '.join(EVENT_TYPES)})")
                    continue
                listed = _as_list(values)
                if listed is None:
                    bad(name, f"event_types.{contract_type}", "must be a source event type or a list of them")
                    continue
                for v in listed:
                    if v in event_types and event_types[v] != contract_type:
                        bad(name, "event_types", f"source event type {v!r} is mapped twice (to {event_types[v]} and to "
                                                 f"{contract_type}); map each source type to one contract type")
                    event_types.setdefault(v, contract_type)
        fmt = tz = None
        stamps = spec.get("timestamps")
        if stamps is not None:
            if not isinstance(stamps, dict) or any(k not in ("format", "timezone") for k in stamps):
                bad(name, "timestamps", "must be a mapping with format: (strftime, e.g. '%m/%d/%Y %H:%M') and/or timezone: (e.g. America/New_York)")
            else:
                fmt, tz = stamps.get("format"), stamps.get("timezone")
                if fmt is not None and (why := parsing.check_format(fmt)):
                    bad(name, "timestamps.format", f"{fmt!r} {why}")
                if tz is not None and (why := parsing.check_timezone(tz)):
                    bad(name, "timestamps.timezone", why)
        refunds = spec.get("refunds")
        if refunds is not None and refunds not in REFUNDS:
            bad(name, "refunds", f"must be net (subtract each refund from the user's latest earlier purchase) or drop, got {refunds!r}")
        tables[name] = TableSource(name, file=file, table=table, columns=columns, event_types=event_types,
                                   format=fmt, timezone=tz, refunds=refunds, derive=derive)
    users = tables.get("users")
    if users is not None and users.derive and "events" not in tables:
        events_file = _folder_file(folder, "events")
        tables["events"] = TableSource("events", file=events_file, table=None if events_file else "events")
    return SourceMapping(tables, folder), problems


# ------------------------------------------------------------------ applying it
def _count(expr) -> int:
    value = expr.execute()
    return 0 if value is None or value != value else int(value)


def _read(src: TableSource, con, problems) -> ibis.Table | None:
    what = f"file {src.file.name}" if src.file is not None else f"table {src.table}"
    try:
        if src.file is not None:
            return read_file(con, src.file)
        return read_table(con, src.table)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        hint = "" if src.file is not None or not reads_files(con) else " (a table needs a backend that holds it: backend: url: ...)"
        problems.append(Violation(f"source.{src.name}", "file" if src.file is not None else "table", f"{what} cannot be read: {first}{hint}", 0))
        return None


def _renamed(raw: ibis.Table, src: TableSource, problems) -> ibis.Table | None:
    """Source columns under their contract names (users keep other columns as attributes)."""
    spec = TABLES[src.name]
    found = list(raw.columns)
    ok = True
    for target, column in src.columns.items():
        if column not in found:
            close = difflib.get_close_matches(column, found, n=1)
            problems.append(Violation(
                f"source.{src.name}", f"columns.{target}",
                f"column {column!r} is not in {src.describe()} (its columns: {', '.join(found)})"
                + (f"; did you mean {close[0]!r}?" if close else ""), 0))
            ok = False
    if not ok:
        return None
    select = {target: raw[column] for target, column in src.columns.items()}
    used = set(src.columns.values())
    for col in spec.columns:  # a contract column the source already names as such
        if col.name not in select and col.name in found and col.name not in used:
            select[col.name] = raw[col.name]
    if src.name == "users":
        for column in found:
            if column not in used and column not in select:
                select[column] = raw[column]
    missing = [c for c in spec.required_columns if c not in select]
    for c in missing:
        problems.append(Violation(f"source.{src.name}", f"columns.{c}",
                                  f"the contract's {c} is not mapped: add it to columns (e.g. {c}: <a column of {src.describe()}>); "
                                  f"columns found: {', '.join(found)}", 0))
    if missing:
        return None
    typed = {}
    for name, value in select.items():
        col = spec.column(name)
        typed[name] = value.cast("string") if col is not None and col.dtype == "string" and not value.type().is_string() else value
    return raw.select(**typed)


def _timestamps(t: ibis.Table, src: TableSource, problems, check: bool) -> ibis.Table | None:
    """Timestamp columns parsed to naive UTC; unparseable text is one error with a format that would parse it."""
    spec = TABLES[src.name]
    out = {}
    for col in spec.columns:
        if col.dtype != "timestamp" or col.name not in t.columns:
            continue
        c = t[col.name]
        parsed = parsing.to_utc(c, format=src.format, timezone=src.timezone)
        if parsed is None:
            problems.append(Violation(f"source.{src.name}", f"columns.{col.name}",
                                      f"source column {src.columns.get(col.name, col.name)!r} has type {c.type()}, which cannot hold a timestamp", 0))
            return None
        if check and c.type().is_string():
            failed = t.filter(c.notnull() & (c.strip() != "") & parsed.isnull())
            n = _count(failed.count())
            if n:
                sample = parsing.sample_values(t, c, parsed)
                stated = f"format {src.format!r}" if src.format else "ISO 8601 (no format given)"
                examples = failed.select(value=c).limit(3).to_pandas().to_dict("records")
                problems.append(Violation(
                    f"source.{src.name}", "timestamps.format",
                    f"{n:,} value(s) of {src.columns.get(col.name, col.name)!r} do not parse as {stated}; "
                    + parsing.format_hint(sample, tried=src.format), n, examples))
                return None
        out[col.name] = parsed
    return t.mutate(**out) if out else t


def _event_types(t: ibis.Table, src: TableSource) -> ibis.Table:
    if src.event_types is None:
        return t
    source_type = t.event_type.cast("string") if not t.event_type.type().is_string() else t.event_type
    by_type: dict[str, list[str]] = {}
    for value, contract_type in src.event_types.items():
        by_type.setdefault(contract_type, []).append(value)
    mapped = ibis.cases(*[(source_type.isin(values), contract_type) for contract_type, values in by_type.items()], else_=ibis.null("string"))
    return t.mutate(event_type=mapped, wb_source_type=source_type)


def _net(e: ibis.Table) -> ibis.Table:
    """Each refund subtracted from the user's latest purchase at or before
    it (ties: purchases first, then by amount); a purchase refunded in full
    is dropped, and a refund with no earlier purchase is dropped."""
    is_p = (e.event_type == "purchase").fill_null(False)
    others = e.filter(~is_p)
    p = e.filter(is_p)
    p = p.mutate(wb_refund=(p.amount < 0).fill_null(False).cast("int32").cast("int64"))  # PostgreSQL: no boolean -> bigint
    w = ibis.window(group_by="user_id", order_by=[p.event_at, p.wb_refund, p.amount], preceding=None, following=0)
    p = p.mutate(wb_seq=(1 - p.wb_refund).sum().over(w))
    r = p.filter(p.wb_refund == 1)
    back = r.group_by(["user_id", "wb_seq"]).aggregate(wb_back=(-r.amount).sum())
    buys = p.filter(p.wb_refund == 0)
    j = buys.left_join(back, ["user_id", "wb_seq"])
    j = j.mutate(amount=j.amount - ibis.coalesce(j.wb_back, 0.0), wb_refunded=j.wb_back.notnull())
    kept = j.filter(~j.wb_refunded | (j.amount > 0))
    cols = list(e.columns)
    return ibis.union(others.select(cols), kept.select(cols))


def _amounts(t: ibis.Table, src: TableSource, problems, notes, check: bool) -> ibis.Table | None:
    if "amount" not in t.columns:
        return t
    amount = parsing.to_number(t.amount)
    if amount is None:
        problems.append(Violation(f"source.{src.name}", "columns.amount", f"source column {src.columns.get('amount', 'amount')!r} has type {t.amount.type()}, "
                                  "which cannot hold a number", 0))
        return None
    source = src.columns.get("amount", "amount")
    if check and t.amount.type().is_string():
        text = t.amount.strip()
        bad = t.filter(text.notnull() & (text != "") & amount.isnull())
        n = _count(bad.count())
        if n:
            examples = bad.select(value=t.amount).limit(3).to_pandas().to_dict("records")
            problems.append(Violation(f"source.{src.name}", "columns.amount", f"{n:,} value(s) of {source!r} are not numbers "
                                      "(write amounts as 12.50 or -3, no currency signs or thousands separators)", n, examples))
            return None
    is_p = t.event_type == "purchase"
    t = t.mutate(amount=is_p.ifelse(amount, ibis.null("float64")), wb_other_amount=~is_p & amount.notnull() & (amount != 0))
    if check:
        stats = t.aggregate(refunds=t.count(where=t.amount < 0), other=t.count(where=t.wb_other_amount)).to_pandas().iloc[0]
        refunds, other = int(stats["refunds"] or 0), int(stats["other"] or 0)
        if other:
            notes.append(f"events: {other:,} non-purchase row(s) carry a non-zero amount; amounts are kept on purchases only")
        if refunds and src.refunds is None:
            problems.append(Violation(f"source.{src.name}", "refunds",
                                      f"{refunds:,} purchase row(s) have a negative amount (refunds); state how to treat them: "
                                      "refunds: net (subtract each from the user's latest earlier purchase) or refunds: drop", refunds))
            return None
        if refunds and src.refunds == "drop":
            notes.append(f"events: {refunds:,} refund(s) (negative purchase amounts) dropped")
    t = t.drop("wb_other_amount")
    if src.refunds == "drop":
        return t.filter(~(t.amount < 0).fill_null(False))
    if src.refunds == "net":
        netted = _net(t)
        if check:
            _note_netting(t, netted, notes)
        return netted
    return t


def _note_netting(before: ibis.Table, after: ibis.Table, notes) -> None:
    p0 = before.filter(before.event_type == "purchase")
    p1 = after.filter(after.event_type == "purchase")
    s0 = p0.aggregate(refunds=p0.count(where=p0.amount < 0), buys=p0.count(where=~(p0.amount < 0).fill_null(False))).to_pandas().iloc[0]
    refunds, buys = int(s0["refunds"] or 0), int(s0["buys"] or 0)
    if not refunds:
        return
    kept = _count(p1.count())
    notes.append(f"events: {refunds:,} refund(s) (negative purchase amounts) netted against each user's latest earlier purchase; "
                 f"{buys - kept:,} purchase(s) refunded in full were dropped")


def _derived_users(events: ibis.Table, notes, check: bool) -> ibis.Table:
    e = events.filter(events.user_id.notnull() & events.event_at.notnull())
    users = e.group_by("user_id").aggregate(signup_at=e.event_at.min())
    if check:
        notes.append(f"users: derived from the events, {_count(users.count()):,} users; signup_at is each user's first event "
                     "(no users table, so no user attributes)")
    return users


def map_tables(mapping: SourceMapping, con, *, check: bool = True) -> tuple[dict, list[Violation], list[str]]:
    """The mapped tables as raw Ibis tables in contract column names, every
    broken mapping rule, and notes on what the mapping dropped or derived
    (counts only when ``check``)."""
    problems: list[Violation] = []
    notes: list[str] = []
    out: dict[str, ibis.Table] = {}
    for name, src in mapping.tables.items():
        if src.derive:
            continue
        raw = _read(src, con, problems)
        if raw is None:
            continue
        t = _renamed(raw, src, problems)
        if t is None:
            continue
        if name == "events":
            t = _event_types(t, src)
            if check and src.event_types is not None:
                _note_event_types(t, src, notes)
            if src.event_types is not None:
                t = t.filter(t.event_type.notnull()).drop("wb_source_type")
        t = _timestamps(t, src, problems, check)
        if t is None:
            continue
        if name == "events":
            t = _amounts(t, src, problems, notes, check)
            if t is None:
                continue
        out[name] = t
    users = mapping.tables.get("users")
    if users is not None and users.derive and "events" in out and not problems:
        out["users"] = _derived_users(out["events"], notes, check)
    return out, problems, notes


def _note_event_types(t: ibis.Table, src: TableSource, notes) -> None:
    counts = t.group_by("wb_source_type").aggregate(n=t.count()).to_pandas()
    dropped = counts[~counts["wb_source_type"].isin(list(src.event_types))]
    kept = int(counts["n"].sum() - dropped["n"].sum())
    text = f"events: {kept:,} row(s) of {src.describe()} kept under the contract's event types"
    if len(dropped):
        parts = ", ".join(f"{'(empty)' if v is None else v} {int(n):,}" for v, n in
                          sorted(zip(dropped["wb_source_type"], dropped["n"]), key=lambda x: (-x[1], str(x[0]))))
        text += f"; {int(dropped['n'].sum()):,} dropped, of types not mapped: {parts}"
    notes.append(text)


__all__ = ["DERIVE", "REFUNDS", "SourceMapping", "TableSource", "map_tables", "parse_source"]
