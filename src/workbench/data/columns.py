"""Opening one table of a dataset on the engine and typing its contract
columns: what :mod:`workbench.data.checks` checks the rules on.

A column of the right kind is cast to the contract's type; text (every CSV
value) is parsed, a blank cell being null; a column of a kind that cannot
hold the values (integers for a timestamp) is reported once and marked
broken, so that no rule reads it. Required columns missing and user
attributes with reserved names are reported here too, as neither needs a
scan of the rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import ibis

from workbench.data import parsing
from workbench.data.contract import RESERVED_ATTRIBUTES, RESERVED_INFIX, RESERVED_PREFIXES, TABLES, reserved
from workbench.data.files import read_table
from workbench.errors import Violation

_TYPES = {"string": "string", "timestamp": "timestamp", "date": "date", "float": "float64"}


@dataclass
class OpenTable:
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
    or None if a column of this kind cannot hold such values. Timestamps,
    dates and numbers are read by :mod:`workbench.data.parsing`, alike on
    every engine (a UTC offset in text is honoured as in a zoned column)."""
    if kind == "null":  # a column without a single value (pandas writes all-None columns so)
        return ibis.null(_TYPES[dtype])
    if dtype == "string":
        return c if kind == "string" else c.cast("string") if kind in ("number", "timestamp", "date") else None
    if dtype == "timestamp":
        return parsing.to_utc(c) if kind in ("timestamp", "string", "date") else None
    if dtype == "date":
        return parsing.to_date(c) if kind in ("date", "timestamp", "string") else None
    return parsing.to_number(c) if kind in ("number", "string") else None


def open_table(con, name: str, path: Path | None, violations: list[Violation], *, raw: ibis.Table | None = None,
               label: str | None = None) -> OpenTable | None:
    """Open one table -- the file at ``path``, or ``raw``, a table already on
    ``con`` in contract column names (a mapped export, a database table),
    called ``label`` in messages -- and type its contract columns; None if it
    cannot be used at all (unreadable, required columns missing)."""
    spec = TABLES[name]
    label = label or path.name
    if raw is None:
        try:
            raw = read_table(con, path)
        except Exception as exc:
            if not engine_error(exc):
                raise
            violations.append(Violation(name, None, unreadable(label, exc), 0))
            return None
    missing = [c for c in spec.required_columns if c not in raw.columns]
    if missing:
        violations += _missing_columns(name, label, missing, list(raw.columns))
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
    return OpenTable(name, label, raw.mutate(**casts), rel, missing_value, unparsed, broken)


def _reserved_attributes(columns: list[str]) -> list[Violation]:
    clash = reserved(c for c in columns if TABLES["users"].column(c) is None)
    if not clash:
        return []
    many = len(clash) > 1
    rename = "user_" + re.sub("_{2,}", "_", clash[0])
    rule = (
        f"attribute name{'s' if many else ''} {', '.join(clash)} {'are' if many else 'is'} used by the analysis tables for "
        f"their own columns: rename {'them' if many else 'it'} in users (e.g. {clash[0]} to {rename}). "
        f"Reserved: {', '.join(sorted(RESERVED_ATTRIBUTES))}, any name starting with {', '.join(RESERVED_PREFIXES)} "
        f"and any name holding {RESERVED_INFIX}"
    )
    return [Violation("users", ", ".join(clash), rule, 0)]


def _missing_columns(name: str, label: str, missing: list[str], found: list[str]) -> list[Violation]:
    columns = ", ".join(found) or "none"
    out = []
    for c in missing:
        near = next((f for f in found if f.strip().lower() == c), None)
        if near is not None:
            out.append(Violation(name, c, f"required column missing: {label} has {near!r}; rename it to {c} (column names are exact)", 0))
        else:
            out.append(Violation(name, c, f"required column missing (columns found: {columns})", 0))
    return out


def engine_error(exc: Exception) -> bool:
    """An error of the engine reading the data (not a bug in the checks)."""
    from ibis.common.exceptions import IbisError

    return not isinstance(exc, (IbisError, TypeError, AttributeError, NameError, KeyError, IndexError, AssertionError))


def unreadable(file: str, exc: Exception) -> str:
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    text = "; ".join(lines[:3])[:400] or type(exc).__name__
    if "unicode" in text.lower() or "utf-8" in text.lower():
        return f"{file} is not UTF-8 text ({text}); save the file as UTF-8"
    return f"{file} cannot be read: {text}"
