"""Finding and opening the files of a dataset folder: the one way the
workbench gets at them, before any engine reads a row.

The folder is listed once. A table is ``<name>.parquet`` or ``<name>.csv``
with exactly that name; a case variant (``Users.csv``, ``dataset.yaml``) is
refused with the rename to make, and every other file is listed in a notice
(hidden files and :data:`~workbench.data.contract.COMPANION_FILES` aside).
Each file is checked before it is read: only regular files are opened (a
FIFO, socket, device or folder could hang or mislead a reader), symbolic links
that loop or lead nowhere are reported, and the first 64 KiB are read to check
what a reader needs: CSV is UTF-8 text whose first line names distinct columns
and whose lines have as many values; Parquet has its magic bytes at both ends
and distinct column names. Problems come back as violations, never as
exceptions.
"""

from __future__ import annotations

import codecs
import csv
import datetime as _dt
import errno
import io
import itertools
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

import ibis
import pandas as pd
import yaml

from workbench.data.contract import COMPANION_FILES, FORMATS, META_FILE, TABLES
from workbench.errors import Violation

HEAD_BYTES = 64 * 1024
_counter = itertools.count()
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


@dataclass
class Folder:
    """What a dataset folder holds."""

    path: Path
    tables: dict[str, Path] = field(default_factory=dict)  # contract tables whose file passed every check
    present: set[str] = field(default_factory=set)  # tables with a file of that name in any form, usable or not
    meta: Path | None = None  # dataset.yml, if present and readable
    unknown: list[str] = field(default_factory=list)  # files the contract does not name
    violations: list[Violation] = field(default_factory=list)
    listed: bool = True  # False: the folder itself could not be listed

    @property
    def notices(self) -> list[str]:
        if not self.unknown:
            return []
        return [f"files that are not part of the dataset contract were not read: {', '.join(self.unknown)}"]


def scan_folder(folder: Path) -> Folder:
    """List ``folder`` once and check every file the contract names."""
    found = Folder(folder)
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        found.violations.append(Violation(str(folder), None, f"the folder cannot be listed: {_reason(exc, folder.name, 'a+rx')}", 0))
        found.listed = False
        return found
    names = {e.name for e in entries}
    exact = {f"{t}.{ext}": t for t in TABLES for ext in FORMATS}
    candidates: dict[str, list[Path]] = {}
    for entry in entries:
        name, path = entry.name, folder / entry.name
        if name in exact:
            candidates.setdefault(exact[name], []).append(path)
        elif name == META_FILE:
            problem = _file_problem(path)
            if problem:
                found.violations.append(Violation(META_FILE, None, problem, 0))
            else:
                found.meta = path
        elif name.lower() in exact or name.lower() in (META_FILE, "dataset.yaml"):
            table = exact.get(name.lower())
            target = name.lower() if table else META_FILE
            also = f", or remove it if {target} is the one to use" if target in names else ""
            found.violations.append(
                Violation(table or META_FILE, None, f"file {name} is not read: file names are exact; rename it to {target}{also}", 0)
            )
            if table:
                found.present.add(table)
        elif not name.startswith(".") and name not in COMPANION_FILES:
            found.unknown.append(name + ("/" if _is_dir(entry) else ""))
    for table, paths in candidates.items():
        found.present.add(table)
        if len(paths) > 1:
            found.violations.append(Violation(table, None, f"both .parquet and .csv given ({table}.parquet, {table}.csv): keep exactly one of the two", 0))
            continue
        problem = _file_problem(paths[0], TABLES[table].required_columns)
        if problem:
            found.violations.append(Violation(table, None, problem, 0))
        else:
            found.tables[table] = paths[0]
    return found


# ------------------------------------------------------------------ one file
def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:  # a link that loops
        return False


def _reason(exc: OSError, name: str, mode: str = "a+r") -> str:
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"permission denied; make it readable for this user (e.g. chmod {mode} {name})"
    return exc.strerror or str(exc)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _stat_problem(path: Path) -> str | None:
    """Why ``path`` is not a regular file that can be opened (None if it is),
    found with ``stat`` alone: nothing is opened."""
    name = path.name
    try:
        st = os.stat(path)
    except OSError as exc:
        if os.path.islink(path):
            if exc.errno == errno.ELOOP:
                return f"{name} is a symbolic link that loops back on itself: replace it with the file, or a link to the file"
            return f"{name} is a symbolic link to {os.readlink(path)}, which does not exist: copy the file here, or fix the link"
        return f"{name} cannot be opened: {_reason(exc, name)}"
    if not stat.S_ISREG(st.st_mode):
        kind = _kind(st.st_mode)
        hint = " (a folder of Parquet parts, as Spark writes, must be written as one file)" if kind == "a folder" and name.endswith(".parquet") else ""
        return f"{name} is {kind}, not a regular file{hint}: only regular files are read; put the file itself here"
    return None


def read_head(path: Path, size: int = HEAD_BYTES) -> tuple[bytes, bool]:
    """The first ``size`` bytes of a regular file and whether that is all of
    it. Opened without blocking and checked again after opening (a file
    swapped for a FIFO in between is refused, not waited on); raises OSError."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as f:
            head = f.read(size)
            return head, len(head) < size or not f.read(1)
    finally:
        os.close(fd)


def _file_problem(path: Path, required: list[str] = ()) -> str | None:
    """Everything wrong with a table file (with ``required`` columns) or
    dataset.yml before an engine reads it."""
    problem = _stat_problem(path)
    if problem:
        return problem
    try:
        head, at_end = read_head(path)
    except OSError as exc:
        return f"{path.name} cannot be read: {_reason(exc, path.name)}"
    if path.suffix == ".csv":
        return _csv_problem(path.name, head, at_end, required)
    if path.suffix == ".parquet":
        return _parquet_problem(path, head, required)
    return None


def _not_utf8(name: str, head: bytes) -> str | None:
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return f"{name} is UTF-32 text: save it as UTF-8"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return f"{name} is UTF-16 text: save it as UTF-8 (in Excel: CSV UTF-8)"
    return None


def _csv_problem(name: str, head: bytes, at_end: bool, required) -> str | None:
    """A CSV file's first 64 KiB: UTF-8, a header, as many values on every line."""
    if not head.strip():
        what = "empty (0 bytes)" if not head else "blank"
        return f"{name} is {what}: its first line must be a header naming the columns, then one line per row"
    problem = _not_utf8(name, head)
    if problem:
        return problem
    try:
        text = codecs.getincrementaldecoder("utf-8-sig")().decode(head, final=at_end)
    except UnicodeDecodeError as exc:
        line = head[: exc.start].count(b"\n") + 1
        return f"{name} is not UTF-8 text (byte 0x{head[exc.start]:02x} on line {line}): save the file as UTF-8"
    if "\x00" in text:
        return f"{name} holds NUL bytes, so it is not a text file: write the table as CSV text (or as {Path(name).stem}.parquet)"
    if not at_end and "\n" in text:
        text = text[: text.rindex("\n") + 1]  # whole lines only; the rest is checked when the engine reads it
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[tuple[int, list[str]]] = []
    try:
        for row in reader:
            rows.append((reader.line_num, row))
    except csv.Error as exc:
        if at_end:
            return f"{name} line {reader.line_num}: {exc} (a quote that is opened and never closed?)"
    if not at_end and rows:
        rows.pop()  # may be a record cut at 64 KiB
    header = rows[0][1] if rows else []
    if not any(h.strip() for h in header):
        return f"{name}: the first line is blank; it must be a header naming the columns"
    if len(header) == 1:
        sep = next((s for s in (";", "\t", "|") if s in header[0]), None)
        if sep:
            return f"{name} separates values with {sep!r}: the contract's CSV uses commas (first line: {header[0][:120]})"
    problem = names_problem(name, header, required)
    if problem:
        return problem
    for line, row in rows[1:]:
        if row and len(row) != len(header):
            return (
                f"{name} line {line} has {len(row)} value{'s' if len(row) != 1 else ''} but the header names "
                f"{len(header)} column{'s' if len(header) != 1 else ''}: every line needs one value per column "
                "(quote values that hold commas)"
            )
    return None


def _parquet_problem(path: Path, head: bytes, required) -> str | None:
    import pyarrow.parquet as pq

    name = path.name
    if head[:4] != b"PAR1":
        looks = " (it looks like text: is it CSV? then name it " + f"{path.stem}.csv)" if _texty(head) else ""
        return f"{name} is not a Parquet file: it does not start with the bytes PAR1{looks}"
    try:
        with open(path, "rb") as f:
            f.seek(max(os.fstat(f.fileno()).st_size - 4, 0))
            tail = f.read(4)
    except OSError as exc:
        return f"{name} cannot be read: {_reason(exc, name)}"
    if tail != b"PAR1":
        return f"{name} is cut short: a Parquet file ends with the bytes PAR1 (copy or write it again)"
    try:
        names = pq.read_schema(path).names
    except Exception as exc:  # pyarrow's errors for a broken footer are of several kinds
        return f"{name} cannot be read as Parquet: {_first_line(exc)}"
    return names_problem(name, names, required)


def _texty(head: bytes) -> bool:
    try:
        head[:512].decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\x00" not in head[:512]


def names_problem(name: str, names: list[str], required=()) -> str | None:
    """Column names a table cannot have: none of the ``required`` ones (no
    header), unnamed columns, names given twice."""
    if len(required) > 1 and not any(n in required for n in names):
        shown = ", ".join(str(n) for n in names[:6]) + (", ..." if len(names) > 6 else "")
        return (
            f"none of the required columns {', '.join(required)} is in {name} (columns found: {shown}); "
            "its first line must be the header naming the columns"
        )
    blank = [str(i + 1) for i, n in enumerate(names) if not str(n).strip()]
    if blank:
        which = ", ".join(blank)
        return (
            f"{name}: column {which} (counting from 1) has no name; name it or drop it "
            "(pandas writes an unnamed index column unless told index=False)"
        )
    seen, twice = set(), []
    for n in (str(n).strip() for n in names):  # readers trim names in a CSV header: ' a' and 'a' are one name
        if n in seen and n not in twice:
            twice.append(n)
        seen.add(n)
    if twice:
        return (
            f"{name}: column name{'s' if len(twice) > 1 else ''} {', '.join(twice)} "
            f"appear{'' if len(twice) > 1 else 's'} more than once; keep one column of each name"
        )
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# ------------------------------------------------------------------ dataset.yml
def read_meta(path: Path | None) -> tuple[dict, list[Violation]]:
    """``dataset.yml`` as a mapping (empty if there is none) and its problems:
    unreadable, not UTF-8, not YAML, not a mapping, an observation_end that is
    not a date."""
    if path is None:
        return {}, []

    def bad(rule, column=None):
        return {}, [Violation(META_FILE, column, rule, 0)]

    try:
        data, _ = read_head(path, 16 * 1024 * 1024)
    except OSError as exc:
        return bad(f"cannot be read: {_reason(exc, META_FILE)}")
    problem = _not_utf8(META_FILE, data)
    if problem:
        return bad(problem)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return bad(f"is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}): save the file as UTF-8")
    try:
        meta = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return bad(f"not valid YAML: {' '.join(str(exc).split())}")
    except (ValueError, TypeError, OverflowError) as exc:  # e.g. a date like 2024-13-45 that YAML reads as a date
        return bad(f"not valid YAML: {exc} (is a date in it not a real date?)")
    if meta is None:
        return {}, []
    if not isinstance(meta, dict):
        return bad(f"must be a mapping of keys to values (name: ..., observation_end: ...), found a {type(meta).__name__}")
    try:
        observation_end_of(meta)
    except ValueError as exc:
        return bad(str(exc), "observation_end")
    return meta, []


def observation_end_of(meta: dict) -> pd.Timestamp | None:
    """``observation_end`` of a dataset.yml mapping as naive UTC, None if not
    given; raises ValueError (saying what to write) for anything that is not a
    date or date and time: a bare number, a boolean, text that does not parse."""
    value = meta.get("observation_end")
    if value is None or value == "":
        return None
    example = "write a date, or a date and time, e.g. 2024-06-30 or '2024-06-30 23:59:59'"
    if isinstance(value, bool):
        raise ValueError(f"is {value!r}, not a date: {example}")
    if isinstance(value, (int, float)) or (isinstance(value, str) and _NUMBER.fullmatch(value.strip())):
        raise ValueError(f"is {value!r}, a number, not a date: {example}")
    if not isinstance(value, (str, _dt.date)):
        raise ValueError(f"is a {type(value).__name__}, not a date: {example}")
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError):
        ts = None
    if ts is None or pd.isna(ts):
        raise ValueError(f"{value!r} is not a date: {example}")
    return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts


# ------------------------------------------------------------------ reading
def read_table(con, path: Path) -> ibis.Table:
    """A checked table file as an Ibis table on ``con`` (lazy: rows are read
    by the queries that use it). CSV on DuckDB is read as text with the
    dialect fixed (comma, double quotes, a header line, nothing skipped), so
    the engine never guesses; values are typed by the contract's rules."""
    name = f"wb_{path.stem}_{next(_counter)}"
    if path.suffix == ".parquet":
        return con.read_parquet(str(path), table_name=name)
    if con.name == "duckdb":
        return con.read_csv(
            str(path), table_name=name, all_varchar=True, header=True, delim=",", quote='"', escape='"',
            skip=0, strict_mode=True, null_padding=False,
        )
    return con.read_csv(str(path), table_name=name, header=True)
