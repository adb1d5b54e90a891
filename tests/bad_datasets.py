"""Hostile dataset folders: small cases, each built in an empty folder by a
function, with what validation must say about it.

``errors``: exactly these violations, no more (one cause, one violation),
as (table, column, words in the rule); table "*" matches any table, column
None matches any column. ``notes``: words that must each appear in a notice.
A case with neither is a valid dataset that must load without a notice.
Used by tests/test_bad_datasets.py (library and ``workbench validate``).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


@dataclass(frozen=True)
class Case:
    build: Callable[[Path], Path | None]  # fills the folder; returns the path to validate if not the folder
    errors: tuple[tuple[str, str | None, str], ...] = ()
    notes: tuple[str, ...] = ()


CASES: dict[str, Case] = {}


def case(*errors, notes=()):
    def register(build):
        CASES[build.__name__] = Case(build, tuple(errors), tuple(notes))
        return build

    return register


# ------------------------------------------------------------------ a valid base
def users() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": ["u1", "u2", "u3"],
            "signup_at": ["2024-01-01 00:00:00", "2024-01-02 08:00:00", "2024-01-03 12:00:00"],
            "segment": ["a", "b", "b"],
            "referred_by": [None, "u1", None],
        }
    )


def events() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u2", "u3"],
            "event_at": ["2024-01-01 10:00:00", "2024-01-05 00:00:00", "2024-01-03 00:00:00", "2024-01-04 00:00:00"],
            "event_type": ["active", "purchase", "feedback", "cancel"],
            "amount": [None, 12.5, None, None],
        }
    )


def assignments() -> pd.DataFrame:
    return pd.DataFrame(
        {"user_id": ["u1", "u2"], "experiment": ["x", "x"], "arm": ["control", "invite"], "assigned_at": ["2024-01-02", "2024-01-03"]}
    )


def kpis() -> pd.DataFrame:
    return pd.DataFrame({"period": ["2024-01-01", "2024-02-01"], "users": [10.0, 20.0], "revenue": [5.0, 9.0]})


def csv(folder: Path, name: str, df: pd.DataFrame) -> None:
    df.to_csv(folder / f"{name}.csv", index=False)


def parquet(folder: Path, name: str, df: pd.DataFrame) -> None:
    df.to_parquet(folder / f"{name}.parquet", index=False)


def base(folder: Path, *, skip: tuple[str, ...] = (), **frames) -> None:
    """users and events as CSV, with any frame replaced (or left out)."""
    tables = {"users": users(), "events": events(), **frames}
    for name, df in tables.items():
        if name not in skip and df is not None:
            csv(folder, name, df)


def text(folder: Path, name: str, content: str | bytes) -> None:
    data = content.encode() if isinstance(content, str) else content
    (folder / name).write_bytes(data)


def meta(folder: Path, content: str | bytes) -> None:
    base(folder)
    text(folder, "dataset.yml", content)


def many_events(n: int) -> pd.DataFrame:
    """n valid events (enough rows to pass the first 64 KiB of a CSV file)."""
    return pd.DataFrame(
        {
            "user_id": ["u1"] * n,
            "event_at": pd.date_range("2024-01-02", periods=n, freq="min").strftime("%Y-%m-%d %H:%M:%S"),
            "event_type": ["active"] * n,
            "amount": [None] * n,
        }
    )


# ------------------------------------------------------------------ the folder itself
@case(("*", None, "no dataset folder"))
def no_folder(folder):
    return folder / "nope"


@case(("*", None, "no dataset folder"))
def folder_is_a_file(folder):
    text(folder, "file.txt", "hello")
    return folder / "file.txt"


@case(("*", None, "no dataset folder"))
def folder_is_a_link_loop(folder):
    os.symlink("loop", folder / "loop")
    return folder / "loop"


@case(("users", None, "required table missing"))
def empty_folder(folder):
    pass


@case(("users", None, "required table missing"), notes=("notes.txt",))
def only_unknown_files(folder):
    text(folder, "notes.txt", "hello")


# ------------------------------------------------------------------ files that are not regular files
@case(("users", None, "users.csv is a named pipe (FIFO), not a regular file"))
def users_fifo(folder):
    base(folder, skip=("users",))
    os.mkfifo(folder / "users.csv")


@case(("events", None, "events.parquet is a named pipe (FIFO)"))
def events_fifo(folder):
    base(folder, skip=("events",))
    os.mkfifo(folder / "events.parquet")


@case(("dataset.yml", None, "dataset.yml is a named pipe (FIFO)"))
def meta_fifo(folder):
    base(folder)
    os.mkfifo(folder / "dataset.yml")


@case(("users", None, "users.csv is a folder, not a regular file"))
def users_folder(folder):
    base(folder, skip=("users",))
    (folder / "users.csv").mkdir()


@case(("events", None, "a folder of Parquet parts"))
def events_parquet_folder(folder):
    base(folder, skip=("events",))
    (folder / "events.parquet").mkdir()
    parquet(folder / "events.parquet", "part-0", events())


@case(("users", None, "symbolic link that loops back on itself"))
def users_link_loop(folder):
    base(folder, skip=("users",))
    os.symlink("users.csv", folder / "users.csv")


@case(("users", None, "symbolic link that loops back on itself"), notes=("other.csv",))
def users_link_cycle(folder):
    base(folder, skip=("users",))
    os.symlink("other.csv", folder / "users.csv")
    os.symlink("users.csv", folder / "other.csv")


@case(("users", None, "symbolic link to gone.csv, which does not exist"))
def users_dangling_link(folder):
    base(folder, skip=("users",))
    os.symlink("gone.csv", folder / "users.csv")


@case()
def users_link_to_a_file_elsewhere(folder):
    elsewhere = folder.parent / f"{folder.name}-elsewhere"
    elsewhere.mkdir()
    csv(elsewhere, "users", users())
    base(folder, skip=("users",))
    os.symlink(elsewhere / "users.csv", folder / "users.csv")


@case(("users", None, "users.csv is a device, not a regular file"))
def users_link_to_dev_zero(folder):
    base(folder, skip=("users",))
    os.symlink("/dev/zero", folder / "users.csv")


@case(("users", None, "users.csv is a socket, not a regular file"))
def users_socket(folder):
    base(folder, skip=("users",))
    here = os.getcwd()
    os.chdir(folder)  # a socket's path must be short
    try:
        s = socket.socket(socket.AF_UNIX)
        s.bind("users.csv")
        s.close()
    finally:
        os.chdir(here)


# ------------------------------------------------------------------ file names
@case(("users", None, "both .parquet and .csv given"))
def users_in_both_formats(folder):
    base(folder)
    parquet(folder, "users", users())


@case(("users", None, "file Users.csv is not read: file names are exact; rename it to users.csv"))
def case_variant_of_a_table(folder):
    base(folder, skip=("users",))
    users().to_csv(folder / "Users.csv", index=False)


@case(("users", None, "rename it to users.csv"))
def case_variant_all_capitals(folder):
    base(folder, skip=("users",))
    users().to_csv(folder / "USERS.CSV", index=False)


@case(("users", None, "rename it to users.csv"))
def case_variant_of_the_extension(folder):
    base(folder, skip=("users",))
    users().to_csv(folder / "users.CSV", index=False)


@case(("events", None, "rename it to events.parquet"))
def case_variant_of_parquet(folder):
    base(folder, skip=("events",))
    events().to_parquet(folder / "Events.parquet", index=False)


@case(("assignments", None, "rename it to assignments.csv"))
def case_variant_of_an_optional_table(folder):
    base(folder)
    assignments().to_csv(folder / "Assignments.csv", index=False)


@case(("users", None, "or remove it if users.csv is the one to use"))
def case_variant_beside_the_table(folder):
    base(folder)
    users().to_csv(folder / "Users.csv", index=False)


@case(("dataset.yml", None, "rename it to dataset.yml"))
def meta_named_yaml(folder):
    base(folder)
    text(folder, "dataset.yaml", "observation_end: 2024-01-10\n")


@case(("dataset.yml", None, "rename it to dataset.yml"))
def meta_case_variant(folder):
    base(folder)
    text(folder, "Dataset.yml", "observation_end: 2024-01-10\n")


@case(notes=("notes.txt", "archive/", "old_users.csv"))
def unknown_files_are_listed(folder):
    base(folder)
    text(folder, "notes.txt", "hello")
    csv(folder, "old_users", users())
    (folder / "archive").mkdir()


@case(("users", None, "users.tsv is there, but only users.parquet or users.csv is read"), notes=("users.tsv",))
def users_as_tsv(folder):
    base(folder, skip=("users",))
    users().to_csv(folder / "users.tsv", index=False, sep="\t")


@case(("users", None, "users.csv.gz is there"), notes=("users.csv.gz",))
def users_compressed(folder):
    base(folder, skip=("users",))
    users().to_csv(folder / "users.csv.gz", index=False)


@case()
def hidden_and_companion_files_are_fine(folder):
    base(folder)
    text(folder, ".DS_Store", b"\x00\x01")
    text(folder, "truth.json", "{}")
    text(folder, "README.md", "# notes")


# ------------------------------------------------------------------ file contents
@case(("users", None, "users.csv is empty (0 bytes)"))
def users_empty_file(folder):
    base(folder, skip=("users",))
    text(folder, "users.csv", "")


@case(("users", None, "users.csv is blank"))
def users_blank_lines(folder):
    base(folder, skip=("users",))
    text(folder, "users.csv", "\n\n  \n")


@case(("events", None, "events.csv is empty (0 bytes)"))
def events_empty_file(folder):
    base(folder, skip=("events",))
    text(folder, "events.csv", "")


@case(("users", None, "users.csv has no rows: a dataset needs at least one user"))
def zero_users(folder):
    base(folder, users=users().iloc[:0])


@case(("users", None, "users.parquet has no rows"))
def zero_users_parquet(folder):
    base(folder, skip=("users",))
    parquet(folder, "users", users().iloc[:0].astype({"signup_at": "datetime64[us]"}))


@case(("users", None, "has no rows"))
def zero_users_zero_events(folder):
    base(folder, users=users().iloc[:0], events=events().iloc[:0])


@case(("kpis", None, "kpis.csv has no rows: a KPI-only dataset needs at least one period"))
def kpi_only_without_rows(folder):
    csv(folder, "kpis", kpis().iloc[:0])


@case(("users", None, "users.csv is not UTF-8 text (byte 0xe9 on line 2): save the file as UTF-8"))
def users_latin1(folder):
    base(folder, skip=("users",))
    text(folder, "users.csv", "user_id,signup_at,segment\nu1,2024-01-01,caf\xe9\n".encode("latin-1"))


@case(("users", None, "users.csv is UTF-16 text"))
def users_utf16(folder):
    base(folder, skip=("users",))
    text(folder, "users.csv", users().to_csv(index=False).encode("utf-16"))


@case(("events", None, "events.csv is not UTF-8 text"))
def events_latin1_after_64_kib(folder):
    base(folder, skip=("events",))
    body = pd.concat([events(), many_events(3000)]).to_csv(index=False).encode()
    assert len(body) > 70_000
    text(folder, "events.csv", body + "u1,2024-02-01 00:00:00,activ\xe9,\n".encode("latin-1"))


@case()
def users_with_a_utf8_byte_order_mark(folder):
    base(folder, skip=("users",))
    text(folder, "users.csv", "\ufeff" + users().to_csv(index=False))


@case(("users", None, "users.csv is not UTF-8 text (byte 0x89 on line 1)"))
def users_binary(folder):
    base(folder, skip=("users",))
    text(folder, "users.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")


@case(("users", None, "users.csv holds NUL bytes"))
def users_with_nul_bytes(folder):
    base(folder, skip=("users",))
    text(folder, "users.csv", "user_id,signup_at\nu1\x00,2024-01-01\n")


@case(("users", None, "users.parquet is not a Parquet file: it does not start with the bytes PAR1 (it looks like text: is it CSV?"))
def parquet_that_is_csv(folder):
    base(folder, skip=("users",))
    text(folder, "users.parquet", users().to_csv(index=False))


@case(("users", None, "users.parquet is cut short"))
def parquet_truncated(folder):
    base(folder, skip=("users",))
    parquet(folder, "users", users())
    data = (folder / "users.parquet").read_bytes()
    text(folder, "users.parquet", data[: len(data) // 2])


@case(("users", None, "users.parquet cannot be read as Parquet"))
def parquet_with_a_broken_footer(folder):
    base(folder, skip=("users",))
    text(folder, "users.parquet", b"PAR1" + b"\x07" * 64 + b"\x10\x00\x00\x00PAR1")


@case(("events", None, "events.csv line 4 has 5 values but the header names 4 columns"))
def csv_row_with_an_extra_value(folder):
    base(folder, skip=("events",))
    lines = events().to_csv(index=False).splitlines()
    lines[3] += ",oops"
    text(folder, "events.csv", "\n".join(lines) + "\n")


@case(("events", None, "events.csv cannot be read"))
def csv_row_with_an_extra_value_after_64_kib(folder):
    base(folder, skip=("events",))
    body = pd.concat([events(), many_events(3000)]).to_csv(index=False)
    text(folder, "events.csv", body + "u1,2024-02-01 00:00:00,active,,oops\n")


@case(("users", None, "quote that is opened and never closed"))
def csv_unclosed_quote(folder):
    base(folder, skip=("users",))
    text(folder, "users.csv", 'user_id,signup_at\nu1,2024-01-01\n"u2,2024-01-02\n')


@case(("users", None, "users.csv separates values with ';'"))
def csv_with_semicolons(folder):
    base(folder, skip=("users",))
    users().to_csv(folder / "users.csv", index=False, sep=";")


@case(("users", None, "none of the required columns user_id, signup_at is in users.csv"))
def csv_without_a_header(folder):
    base(folder, skip=("users",))
    users().to_csv(folder / "users.csv", index=False, header=False)


@case(("users", None, "column 1 (counting from 1) has no name"))
def csv_with_an_unnamed_index_column(folder):
    base(folder, skip=("users",))
    users().to_csv(folder / "users.csv")


@case(("users", None, "users.csv: column name user_id appears more than once"))
def csv_with_a_column_twice(folder):
    base(folder, skip=("users",))
    text(folder, "users.csv", "user_id,signup_at,user_id\nu1,2024-01-01,u9\nu2,2024-01-02,u8\nu3,2024-01-03,u7\n")


@case(("events", None, "events.csv: column name amount appears more than once"))
def csv_with_a_second_negative_amount(folder):
    base(folder, skip=("events",))
    ev = events()
    ev["amount2"] = [None, -50.0, None, None]
    text(folder, "events.csv", ev.to_csv(index=False).replace("amount,amount2", "amount,amount"))


@case(("users", None, "users.parquet: column name user_id appears more than once"))
def parquet_with_a_column_twice(folder):
    base(folder, skip=("users",))
    t = pa.table([pa.array(["u1", "u2", "u3"]), pa.array(pd.to_datetime(users().signup_at)), pa.array(["x", "y", "z"])],
                 names=["user_id", "signup_at", "user_id"])
    pq.write_table(t, folder / "users.parquet")


@case(("users", "user_id", "users.csv has 'User_ID'; rename it to user_id"))
def column_name_in_other_case(folder):
    base(folder, users=users().rename(columns={"user_id": "User_ID"}))


@case(("users", "user_id", "has ' user_id'; rename it to user_id"))
def column_name_with_a_space_in_parquet(folder):
    base(folder, skip=("users",))
    parquet(folder, "users", users().rename(columns={"user_id": " user_id"}))


@case(("users", None, "users.csv: column name user_id appears more than once"))
def csv_column_twice_but_for_a_space(folder):
    base(folder, skip=("users",))
    text(folder, "users.csv", "user_id,signup_at, user_id\nu1,2024-01-01,u9\nu2,2024-01-02,u8\nu3,2024-01-03,u7\n")


@case(("users", "signup_at", "required column missing (columns found: user_id, segment, referred_by)"))
def column_missing(folder):
    base(folder, users=users().drop(columns="signup_at"))


# ------------------------------------------------------------------ dataset.yml
@case(("dataset.yml", None, "is not UTF-8 text (byte 0xe9 on line 2): save the file as UTF-8"))
def meta_latin1(folder):
    meta(folder, "name: x\ndescription: caf\xe9\n".encode("latin-1"))


@case(("dataset.yml", None, "not valid YAML"))
def meta_invalid_yaml(folder):
    meta(folder, "name: [unclosed\n")


@case(("dataset.yml", None, "must be a mapping of keys to values (name: ..., observation_end: ...), found a list"))
def meta_a_list(folder):
    meta(folder, "- a\n- b\n")


@case(("dataset.yml", None, "found a str"))
def meta_plain_text(folder):
    meta(folder, "just some words\n")


@case(("dataset.yml", None, "dataset.yml is a folder"))
def meta_folder(folder):
    base(folder)
    (folder / "dataset.yml").mkdir()


@case(("dataset.yml", None, "symbolic link to nowhere.yml, which does not exist"))
def meta_dangling_link(folder):
    base(folder)
    os.symlink("nowhere.yml", folder / "dataset.yml")


@case(("dataset.yml", None, "loops back on itself"))
def meta_link_loop(folder):
    base(folder)
    os.symlink("dataset.yml", folder / "dataset.yml")


@case()
def meta_empty(folder):
    meta(folder, "")


@case(("dataset.yml", "observation_end", "'not-a-date' is not a date"))
def end_not_a_date(folder):
    meta(folder, "observation_end: not-a-date\n")


@case(("dataset.yml", "observation_end", "is 12345, a number, not a date"))
def end_a_number(folder):
    meta(folder, "observation_end: 12345\n")


@case(("dataset.yml", "observation_end", "a number, not a date"))
def end_a_float(folder):
    meta(folder, "observation_end: 1.5\n")


@case(("dataset.yml", "observation_end", "is True, not a date"))
def end_a_boolean(folder):
    meta(folder, "observation_end: yes\n")


@case(("dataset.yml", "observation_end", "is '12345', a number, not a date"))
def end_a_quoted_number(folder):
    meta(folder, "observation_end: '12345'\n")


@case(("dataset.yml", "observation_end", "is a list, not a date"))
def end_a_list(folder):
    meta(folder, "observation_end: [2024-01-10]\n")


@case(("dataset.yml", None, "not valid YAML: month must be in 1..12 (is a date in it not a real date?)"))
def end_month_13(folder):
    meta(folder, "observation_end: 2024-13-45\n")


@case(("dataset.yml", "observation_end", "'2024-02-30' is not a date"))
def end_february_30_quoted(folder):
    meta(folder, "observation_end: '2024-02-30'\n")


@case(("dataset.yml", "observation_end", "2023-06-30 00:00:00 is before every signup (the first is 2024-01-01 00:00:00)"))
def end_before_every_signup(folder):
    meta(folder, "observation_end: 2023-06-30\n")


@case(notes=("events: 2 events after observation_end 2024-01-03 12:00:00 (dataset.yml; the last at 2024-01-05 00:00:00) are left out",))
def end_before_some_events(folder):
    meta(folder, "observation_end: 2024-01-03 12:00:00\n")


@case(notes=("users: 1 signup after observation_end 2024-01-02 12:00:00", "events: 3 events after"))
def end_before_a_signup(folder):
    meta(folder, "observation_end: 2024-01-02 12:00:00\n")


@case(notes=("assignments: 1 assignment after observation_end 2024-01-05 00:00:00",))
def end_before_an_assignment(folder):
    base(folder, assignments=assignments().assign(assigned_at=["2024-01-02", "2024-01-06"]))
    text(folder, "dataset.yml", "observation_end: 2024-01-05\n")


# ------------------------------------------------------------------ values
def _amounts(*values):
    ev = events()
    ev["amount"] = list(values)
    return ev


@case(("events", "amount", "must be a finite number"))
def amount_nan_in_csv(folder):
    base(folder, events=_amounts(None, "NaN", None, None))


@case(("events", "amount", "must be a finite number"))
def amount_inf_in_csv(folder):
    base(folder, events=_amounts(None, "inf", None, None))


@case(("events", "amount", "must be a finite number"))
def amount_minus_inf_in_csv(folder):
    base(folder, events=_amounts(None, "-inf", None, None))


@case(("events", "amount", "must be a finite number"))
def amount_1e309_in_csv(folder):
    base(folder, events=_amounts(None, "1e309", None, None))


def _parquet_amounts(folder, values):
    ev = events()
    table = pa.table({
        "user_id": ev.user_id, "event_at": pa.array(pd.to_datetime(ev.event_at)), "event_type": ev.event_type,
        "amount": pa.array(values, type=pa.float64(), from_pandas=False),
    })
    base(folder, skip=("events",))
    pq.write_table(table, folder / "events.parquet")


@case(("events", "amount", "must be a finite number"))
def amount_nan_in_parquet(folder):
    _parquet_amounts(folder, [None, float("nan"), None, None])


@case(("events", "amount", "must be a finite number"))
def amount_inf_in_parquet(folder):
    _parquet_amounts(folder, [None, float("inf"), None, None])


@case(("events", "amount", "must be a finite number"))
def amount_nan_on_a_cancel_in_parquet(folder):
    _parquet_amounts(folder, [None, 12.5, None, float("nan")])


@case(("kpis", "users", "must be a finite number"))
def kpi_users_infinite(folder):
    csv(folder, "kpis", kpis().assign(users=[10.0, float("inf")]))


@case(("kpis", "revenue", "must be a finite number"))
def kpi_revenue_nan(folder):
    csv(folder, "kpis", kpis().assign(revenue=["NaN", "9"]))


@case(("kpis", "new_users", "must be a finite number"))
def kpi_new_users_minus_inf(folder):
    csv(folder, "kpis", kpis().assign(new_users=["-inf", "3"]))


@case(("kpis", "users", "must be a finite number"))
def kpi_users_1e400(folder):
    csv(folder, "kpis", kpis().assign(users=["1e400", "3"]))


@case(("events", "amount", "must be a finite number"))
def amounts_inf_and_minus_inf_in_parquet(folder):
    """Both infinities: their sum is NaN, not infinity."""
    _parquet_amounts(folder, [None, float("inf"), None, None])
    ev = pq.read_table(folder / "events.parquet").to_pandas()
    ev.loc[3, ["event_type", "amount"]] = ["purchase", float("-inf")]
    pq.write_table(pa.Table.from_pandas(ev, preserve_index=False), folder / "events.parquet")


@case()
def amounts_whose_sum_is_too_large_for_a_float(folder):
    """Finite amounts whose total overflows: valid (the probe's sum is only a suspicion)."""
    _parquet_amounts(folder, [None, 1.5e308, None, None])
    ev = pq.read_table(folder / "events.parquet").to_pandas()
    ev.loc[3, ["event_type", "amount"]] = ["purchase", 1.5e308]
    pq.write_table(pa.Table.from_pandas(ev, preserve_index=False), folder / "events.parquet")


@case()
def kpis_whose_sum_is_too_large_for_a_float(folder):
    base(folder, kpis=kpis().assign(revenue=["1.7e308", "1.7e308"]))


@case(("events", "amount", "values that do not parse as a float"))
def amount_text_on_a_purchase(folder):
    base(folder, events=_amounts(None, "twelve", None, None))


@case(("events", "amount", "purchase without an amount"))
def amount_blank_on_a_purchase(folder):
    base(folder, events=_amounts(None, "  ", None, None))


@case(("events", "event_at", "values that do not parse as a timestamp"))
def event_at_that_does_not_parse(folder):
    base(folder, events=events().assign(event_at=["2024-01-01 10:00:00", "soon", "2024-01-03", "2024-01-04"]))


@case(("users", "signup_at", "values that do not parse as a timestamp"))
def signup_that_does_not_parse(folder):
    base(folder, users=users().assign(signup_at=["2024-01-01", "yesterday", "2024-01-03 12:00:00"]))


@case(("users", "signup_at", "must be a timestamp, found a column of type int64"))
def signup_of_the_wrong_type(folder):
    base(folder, skip=("users",))
    parquet(folder, "users", users().assign(signup_at=[1, 2, 3]))


@case(("events", "amount", "must be a float, found a column of type boolean"))
def amount_of_the_wrong_type(folder):
    base(folder, skip=("events",))
    parquet(folder, "events", events().assign(amount=[False, True, False, False], event_at=pd.to_datetime(events().event_at)))


@case(("events", "event_type", "event_type must be one of"))
def event_type_in_capitals_with_an_amount(folder):
    base(folder, events=events().assign(event_type=["active", "Purchase", "feedback", "cancel"]))


@case(("events", "event_type", "must not be null"))
def event_type_missing_with_an_amount(folder):
    base(folder, events=events().assign(event_type=["active", None, "feedback", "cancel"]))


@case(("events", "user_id", "must not be null"))
def event_without_a_user(folder):
    base(folder, events=events().assign(user_id=["u1", None, "u2", "u3"]))


@case(("events", "amount", "amount given on a non-purchase event"))
def negative_amount_on_an_active_event(folder):
    base(folder, events=_amounts(-3.0, 12.5, None, None))


@case(("events", "amount", "must be >= 0"))
def negative_purchase(folder):
    base(folder, events=_amounts(None, -3.0, None, None))


@case(("users", "user_id", "must be unique"))
def duplicate_users_with_events(folder):
    base(folder, users=users().assign(user_id=["u1", "u1", "u3"], referred_by=[None, None, None]),
         events=events().assign(user_id=["u1", "u1", "u1", "u3"]))


@case(("events", "user_id", "user_id not found in users"))
def event_of_an_unknown_user(folder):
    base(folder, events=events().assign(user_id=["u1", "u1", "ghost", "u3"]))


@case(("users", "user_id", "must not be null"))
def empty_user_id_in_parquet(folder):
    base(folder, skip=("users",))
    parquet(folder, "users", users().assign(user_id=["u1", "", "u3"], referred_by=[None, None, None]))


@case(("users", "churned", "attribute name churned is used by the analysis tables for their own columns: rename it in users (e.g. churned to user_churned)"))
def attribute_named_churned(folder):
    base(folder, users=users().assign(churned=[0, 1, 0]))


@case(("users", "duration, exposed, arm", "attribute names duration, exposed, arm are used by the analysis tables"))
def attributes_named_like_table_columns(folder):
    base(folder, users=users().assign(duration=1.0, exposed=0, arm="a"))


@case(("users", "wb_score", "any name starting with wb_"))
def attribute_with_the_internal_prefix(folder):
    base(folder, users=users().assign(wb_score=1.0))


@case(("events", "event_at", "before the user's signup_at"))
def event_before_signup(folder):
    base(folder, events=events().assign(event_at=["2023-12-31", "2024-01-05", "2024-01-03", "2024-01-04"]))


@case()
def numeric_user_ids(folder):
    base(folder, users=users().assign(user_id=[1, 2, 3], referred_by=[None, "1", None]),
         events=events().assign(user_id=[1, 1, 2, 3]))


@case(("events", "amount", "purchase events but no amount column: add amount"))
def purchases_without_an_amount_column(folder):
    base(folder, events=events().drop(columns="amount"))


@case(("assignments", "arm", "must not be null"))
def assignment_without_an_arm(folder):
    base(folder, assignments=assignments().assign(arm=["control", None]))


@case(("assignments", "experiment", "must not be null"))
def assignment_without_an_experiment(folder):
    base(folder, assignments=assignments().assign(experiment=["x", None], arm=["control", "control"]))


@case(("kpis", "users", "must not be null"))
def kpi_without_users(folder):
    csv(folder, "kpis", kpis().assign(users=[10.0, None]))


@case(("assignments", "experiment, user_id", "must be unique"))
def user_assigned_twice(folder):
    base(folder, assignments=assignments().assign(user_id=["u1", "u1"]))



@case(("events", "event_type", "must be a string, found a column of type boolean"))
def event_type_of_the_wrong_type(folder):
    base(folder, skip=("events",))
    parquet(folder, "events", events().assign(event_type=[True, False, True, True], event_at=pd.to_datetime(events().event_at)))


@case(("users", None, "named pipe (FIFO)"), ("events", "event_at", "values that do not parse as a timestamp"), ("events", "user_id", "must not be null"))
def events_checked_on_their_own_when_users_cannot_be_read(folder):
    base(folder, skip=("users",), events=events().assign(event_at=["2024-01-01", "soon", "2024-01-03", "2024-01-04"], user_id=["u1", None, "u2", "u3"]))
    os.mkfifo(folder / "users.csv")


@case(("kpis", "revenue", "must be a finite number"))
def kpi_revenue_nan_in_parquet(folder):
    """Parquet statistics leave NaN out of a column's minimum and maximum."""
    table = pa.table({"period": pa.array(pd.to_datetime(kpis().period).dt.date), "users": kpis().users,
                      "revenue": pa.array([5.0, float("nan")], from_pandas=False)})
    pq.write_table(table, folder / "kpis.parquet")


@case(("events", "event_type", "must be a string"), ("events", "amount", "must be a finite number"))
def amount_nan_when_event_types_cannot_be_read(folder):
    _parquet_amounts(folder, [None, float("nan"), None, None])
    table = pq.read_table(folder / "events.parquet")
    table = table.set_column(table.schema.get_field_index("event_type"), "event_type", pa.array([True, False, True, True]))
    pq.write_table(table, folder / "events.parquet")

