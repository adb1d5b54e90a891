"""dataset.yml's ``source`` mapping, the timestamp parser, backends and
credentials (on DuckDB; tests/test_parity.py runs the same mappings on
PySpark and PostgreSQL, tests/test_postgres.py the server paths).

Every mapping rule has a bad-input test: one clear error naming the rule
(``source.events.columns.user_id``) and what to do, and nothing written.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import yaml
from export_fixture import MAPPING, write_mapped_export

from workbench.data import load_dataset, parsing, validate_dataset
from workbench.data.backends import BackendError, connect, connect_url
from workbench.data.credentials import redact, url_credentials
from workbench.data.paths import locate_dataset, project_root
from workbench.errors import DataError, WorkbenchError

from conftest import REPO


def snapshot(folder: Path) -> dict:
    """Every file under ``folder`` with its size and modification time."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


def write(folder: Path, files: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        if isinstance(content, pd.DataFrame):
            content.to_csv(folder / name, index=False) if name.endswith(".csv") else content.to_parquet(folder / name, index=False)
        elif isinstance(content, dict):
            (folder / name).write_text(yaml.safe_dump(content, sort_keys=False))
        else:
            (folder / name).write_text(textwrap.dedent(content))
    return folder


def refused(folder, *, match: str) -> str:
    """Load ``folder``; it must fail with one DataError matching ``match``, writing nothing."""
    before = snapshot(folder)
    with pytest.raises(DataError) as info:
        load_dataset(folder)
    assert snapshot(folder) == before, "a refused dataset must leave its folder as it was"
    text = str(info.value)
    assert len(info.value.violations) == 1, text
    assert re.search(match, text, flags=re.DOTALL), text
    return text


@pytest.fixture(scope="module")
def acme(tmp_path_factory):
    return write_mapped_export(tmp_path_factory.mktemp("acme") / "acme")


def mapped(tmp_path, rows, **events) -> Path:
    """A folder with a small export (rows of customer, ts, type, revenue) and a mapping."""
    df = pd.DataFrame(rows, columns=["customer", "ts", "type", "revenue"])
    entry = {"file": "export.csv", "columns": {"user_id": "customer", "event_at": "ts", "event_type": "type", "amount": "revenue"},
             "event_types": {"active": ["login"], "purchase": ["order"]}}
    entry.update(events)
    return write(tmp_path / "ds", {"export.csv": df, "dataset.yml": {"name": "t", "source": {"events": entry, "users": {"derive": "first_event"}}}})


# ------------------------------------------------------------------ the export, mapped
def test_the_export_maps_onto_the_contract(acme):
    ds = load_dataset(acme)
    raw = pd.read_csv(acme / "export.csv", dtype=str)
    users, events = ds.users.to_pandas(), ds.events.to_pandas()
    n = raw.customer.nunique()  # the simulated users with at least one event
    assert len(users) == n and n > 200
    assert set(events.event_type) == {"active", "purchase", "feedback", "adopted", "cancel"}
    kept = raw[raw.type.isin(["login", "order", "idea_submitted", "idea_shipped", "unsubscribe"])]
    refunds = kept[(kept.type == "order") & kept.revenue.str.startswith("-", na=False)]
    assert (events.event_type != "purchase").sum() == (kept.type != "order").sum()
    assert len(refunds) > 10 and (events.amount.dropna() > 0).all()
    assert events.loc[events.event_type != "purchase", "amount"].isna().all()  # 0.00 on logins is not an amount
    assert ds.notes[0].startswith(f"events: {len(kept):,} row(s) of export.csv kept") and "email_sent" in ds.notes[0]
    assert "netted" in ds.notes[1] and f"derived from the events, {n} users" in ds.notes[2]
    # signup is each user's first event
    first = events.groupby("user_id").event_at.min()
    assert (users.set_index("user_id").signup_at.sort_index() == first.sort_index()).all()
    assert validate_dataset(acme).describe().count("mapped from the source") == 1


def test_us_local_times_become_utc_with_one_rule_for_daylight_saving(tmp_path):
    rows = [("a", "07/04/2024 23:59", "login", ""), ("a", "01/15/2024 09:00", "login", ""),
            ("a", "03/10/2024 02:30", "login", ""),   # skipped by the spring change
            ("a", "11/03/2024 01:30", "login", "")]   # repeated by the autumn change: standard time
    ds = load_dataset(mapped(tmp_path, rows, timestamps={"format": "%m/%d/%Y %H:%M", "timezone": "America/New_York"}))
    got = sorted(ds.events.event_at.to_pandas())
    assert got == [pd.Timestamp(t) for t in ("2024-01-15 14:00", "2024-03-10 07:30", "2024-07-05 03:59", "2024-11-03 06:30")]


def test_refunds_net_against_the_latest_earlier_purchase(tmp_path):
    rows = [
        ("u1", "2024-01-01 10:00", "order", "100"), ("u1", "2024-01-02 10:00", "order", "50"), ("u1", "2024-01-03 10:00", "order", "-30"),
        ("u2", "2024-01-01 09:00", "order", "-10"),  # before any purchase: dropped
        ("u2", "2024-01-02 10:00", "order", "40"), ("u2", "2024-01-05 10:00", "order", "-40"),  # refunded in full: dropped
        ("u3", "2024-01-01 10:00", "order", "-10"), ("u3", "2024-01-01 10:00", "order", "10"),  # same second: purchase first
        ("u4", "2024-01-01 10:00", "order", "20"), ("u4", "2024-01-01 10:00", "order", "30"), ("u4", "2024-01-01 10:00", "order", "-5"),
        ("u4", "2024-01-01 11:00", "login", "0"),
    ]
    ds = load_dataset(mapped(tmp_path, rows, refunds="net"))
    p = ds.events.filter(ds.events.event_type == "purchase").to_pandas()
    got = sorted(zip(p.user_id, p.amount))
    assert got == [("u1", 20.0), ("u1", 100.0), ("u4", 20.0), ("u4", 25.0)]
    assert "5 refund(s)" in ds.notes[1] and "2 purchase(s) refunded in full were dropped" in ds.notes[1]
    # drop: every refund row goes, every purchase stays as it was
    ds = load_dataset(mapped(tmp_path / "drop", rows, refunds="drop"))
    p = ds.events.filter(ds.events.event_type == "purchase").to_pandas()
    assert sorted(p.amount) == [10.0, 20.0, 30.0, 40.0, 50.0, 100.0]
    assert "5 refund(s) (negative purchase amounts) dropped" in ds.notes[1]


def test_several_source_types_map_to_one_and_the_rest_are_counted(tmp_path):
    rows = [("a", "2024-01-01", "login", ""), ("a", "2024-01-02", "app_open", ""), ("a", "2024-01-03", "order", "5"),
            ("a", "2024-01-04", "email_sent", ""), ("a", "2024-01-05", "email_sent", "")]
    ds = load_dataset(mapped(tmp_path, rows, event_types={"active": ["login", "app_open"], "purchase": "order"}))
    assert ds.event_counts() == {"active": 2, "purchase": 1}
    assert ds.notes[0] == "events: 3 row(s) of export.csv kept under the contract's event types; 2 dropped, of types not mapped: email_sent 2"


def test_a_users_table_is_renamed_and_keeps_its_attributes(tmp_path):
    users = pd.DataFrame({"id": ["a", "b"], "created": ["2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"], "plan": ["pro", "free"]})
    events = pd.DataFrame({"who": ["a", "b"], "when": ["2024-01-05", "2024-01-06"], "what": ["active", "active"]})
    folder = write(tmp_path / "ds", {"customers.csv": users, "log.parquet": events, "dataset.yml": {"source": {
        "users": {"file": "customers.csv", "columns": {"user_id": "id", "signup_at": "created", "tier": "plan"}},
        "events": {"file": "log.parquet", "columns": {"user_id": "who", "event_at": "when", "event_type": "what"}}}}})
    ds = load_dataset(folder)
    assert list(ds.users.columns) == ["user_id", "signup_at", "tier"]
    assert ds.users.to_pandas().tier.tolist() == ["pro", "free"] and ds.notes == []


# ------------------------------------------------------------------ timestamps
OFFSETS = ["2024-01-02T00:00:00+14:00", "2024-01-01T02:00:00-08:00", "2024-01-01T10:00:00Z", "2024-01-01 10:00:00"]


def test_csv_offsets_convert_to_utc_exactly_as_parquet_does(tmp_path):
    """+14:00 and -08:00 name the same instant, 2024-01-01 10:00 UTC, in CSV
    text and in Parquet timestamp columns stored in either zone."""
    users = pd.DataFrame({"user_id": ["a", "b", "c", "d"], "signup_at": ["2023-12-01T00:00:00+00:00"] * 4})
    events = pd.DataFrame({"user_id": list("abcd"), "event_at": OFFSETS, "event_type": "active"})
    loaded = [load_dataset(write(tmp_path / "csv", {"users.csv": users, "events.csv": events}))]
    instants = pd.Series([pd.Timestamp(t) if pd.Timestamp(t).tzinfo else pd.Timestamp(t, tz="UTC") for t in OFFSETS]).map(lambda t: t.tz_convert("UTC"))
    for zone in ("Etc/GMT-14", "Etc/GMT+8"):  # UTC+14:00 and UTC-08:00 (POSIX signs are reversed)
        stored = events.assign(event_at=pd.to_datetime(instants).dt.tz_convert(zone))
        folder = write(tmp_path / zone.replace("/", "_"), {"users.parquet": users.assign(signup_at=pd.Timestamp("2023-12-01", tz="UTC").tz_convert(zone)),
                                                          "events.parquet": stored})
        assert str(pd.read_parquet(folder / "events.parquet").event_at.dt.tz) == zone
        loaded.append(load_dataset(folder))
    frames = [ds.events.order_by("user_id").to_pandas() for ds in loaded]
    for f in frames:
        assert f.event_at.tolist() == [pd.Timestamp("2024-01-01 10:00")] * 4 and f.event_at.dt.tz is None
    assert all(ds.users.signup_at.to_pandas().eq(pd.Timestamp("2023-12-01")).all() for ds in loaded)


def test_text_without_an_offset_is_local_time_in_the_stated_zone(tmp_path):
    rows = [("a", "2024-01-01T12:00:00", "login", ""), ("a", "2024-01-01T12:00:00+00:00", "login", "")]
    ds = load_dataset(mapped(tmp_path, rows, timestamps={"timezone": "Europe/Berlin"}))
    assert sorted(ds.events.event_at.to_pandas()) == [pd.Timestamp("2024-01-01 11:00"), pd.Timestamp("2024-01-01 12:00")]


def test_guessing_a_format():
    assert parsing.guess_formats(["03/17/2024 05:33", "1/5/2024 9:03"])[0] == "%m/%d/%Y %H:%M"
    assert parsing.guess_formats(["2024-01-01T00:00:00+14:00"]) [0] is None  # ISO 8601: no format needed
    hint = parsing.format_hint(["01/02/2024", "03/04/2024"])
    assert "'%m/%d/%Y'" in hint and "'%d/%m/%Y'" in hint and "month or day first" in hint
    assert parsing.check_format("%m/%d/%Y %z") and parsing.check_format("%H:%M") and parsing.check_format("%m/%d/%Y") is None
    assert parsing.check_timezone("Mars/Olympus") and parsing.check_timezone("America/New_York") is None


def test_a_contract_csv_in_us_dates_is_one_error_naming_the_format(tmp_path):
    users = pd.DataFrame({"user_id": ["a", "b"], "signup_at": ["01/31/2024 10:00", "02/01/2024 11:30"]})
    events = pd.DataFrame({"user_id": ["a", "b"], "event_at": ["2024-02-01", "2024-02-02"], "event_type": "active"})
    text = refused(write(tmp_path / "ds", {"users.csv": users, "events.csv": events}),
                   match=r"users\.signup_at: values that do not parse.*'%m/%d/%Y %H:%M'.*source: users: timestamps: format")
    assert "must not be null" not in text


# ------------------------------------------------------------------ bad input: one error per rule, nothing written
def test_an_unknown_source_column(acme, tmp_path):
    folder = write_mapped_export(tmp_path / "a", users=40)
    meta = yaml.safe_load((folder / "dataset.yml").read_text())
    meta["source"]["events"]["columns"]["user_id"] = "custmer"
    write(folder, {"dataset.yml": meta})
    refused(folder, match=r"source\.events\.columns\.user_id: column 'custmer' is not in export\.csv.*did you mean 'customer'")


def test_an_event_type_mapped_twice(tmp_path):
    folder = mapped(tmp_path, [("a", "2024-01-01", "login", "")], event_types={"active": ["login", "visit"], "feedback": ["visit"]})
    refused(folder, match=r"source\.events\.event_types: source event type 'visit' is mapped twice \(to active and to feedback\).*map each")


def test_an_unparseable_timestamp_format_names_one_that_parses(tmp_path):
    folder = write_mapped_export(tmp_path / "a", users=40)
    meta = yaml.safe_load((folder / "dataset.yml").read_text())
    meta["source"]["events"]["timestamps"]["format"] = "%d/%m/%Y %H:%M"
    write(folder, {"dataset.yml": meta})
    text = refused(folder, match=r"source\.events\.timestamps\.format: [\d,]+ value\(s\) of 'ts' do not parse as format '%d/%m/%Y %H:%M'; "
                                 r"format '%m/%d/%Y %H:%M' parses all")
    assert "must not be null" not in text and "before the user" not in text  # no cascade from the one cause


def test_a_missing_credential_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("ACME_DB_PASSWORD", raising=False)
    folder = write(tmp_path / "ds", {"dataset.yml": {"backend": {"url": "postgresql://analyst@db.example.com:5432/warehouse",
                                                                 "password_env": "ACME_DB_PASSWORD"}}})
    refused(folder, match=r"backend\.password_env: environment variable ACME_DB_PASSWORD is not set.*export ACME_DB_PASSWORD=")


@pytest.mark.parametrize(
    "change,match",
    [
        (
            lambda m: m["source"]["events"]["columns"].update(userid="customer"),
            r"source\.events\.columns\.userid: not a column of the contract's events table.*did you mean user_id",
        ),
        (lambda m: m["source"]["events"]["event_types"].update(refund=["r"]), r"source\.events\.event_types\.refund: not a contract event type"),
        (
            lambda m: m["source"]["events"]["timestamps"].update(timezone="New York"),
            r"source\.events\.timestamps\.timezone: 'New York' is not a known time zone",
        ),
        (lambda m: m["source"]["events"]["timestamps"].update(format="%m/%d/%Y %H:%M %z"), r"source\.events\.timestamps\.format: .*UTC offset"),
        (lambda m: m["source"]["events"].update(refunds="keep"), r"source\.events\.refunds: must be net .* or drop, got 'keep'"),
        (
            lambda m: m["source"]["events"].pop("refunds"),
            r"source\.events\.refunds: \d+ purchase row\(s\) have a negative amount.*refunds: net .* refunds: drop",
        ),
        (lambda m: m["source"]["events"].update(file="nope.csv"), r"source\.events\.file: no file nope\.csv in"),
        (lambda m: m["source"]["events"].update(table="x.y"), r"source\.events: give exactly one of file: .* found file, table"),
        (lambda m: m["source"]["events"]["columns"].pop("event_at"), r"source\.events\.columns\.event_at: the contract's event_at is not mapped"),
        (lambda m: m["source"].update(visits={"file": "export.csv"}), r"source\.visits: not a contract table"),
        (lambda m: m["source"]["users"].update(derive="signup_form"), r"source\.users\.derive: must be first_event"),
        (lambda m: m.update(backend={"url": "postgresql://analyst:hunter22@db/wh"}), r"backend\.url: holds a credential \(postgresql://analyst:\*\*\*@db/wh\)"),
        (
            lambda m: m.update(backend={"url": "postgresql://analyst@db/wh", "password": "hunter22"}),
            r"backend\.password: a password must not be written in dataset\.yml",
        ),
        (
            lambda m: m.update(backend={"url": "postgresql://analyst@db/wh", "password_env": "not a name"}),
            r"backend\.password_env: must be the name of an environment variable",
        ),
        (lambda m: m.update(backend={"spark": "local[1]", "url": "duckdb://"}), r"backend: give either url or spark, not both"),
    ],
)
def test_every_mapping_rule_is_one_clear_error(tmp_path, change, match):
    folder = write_mapped_export(tmp_path / "a", users=30)
    meta = yaml.safe_load((folder / "dataset.yml").read_text())
    change(meta)
    write(folder, {"dataset.yml": meta})
    text = refused(folder, match=match)
    assert "hunter22" not in text


def test_an_amount_that_is_not_a_number(tmp_path):
    rows = [("a", "2024-01-01", "order", "$12.50"), ("a", "2024-01-02", "login", "n/a"), ("a", "2024-01-03", "order", "3")]
    refused(mapped(tmp_path, rows), match=r"source\.events\.columns\.amount: 2 value\(s\) of 'revenue' are not numbers.*\$12\.50")


def test_derived_users_beside_a_users_file_is_refused(tmp_path):
    folder = write_mapped_export(tmp_path / "a", users=30)
    (folder / "users.csv").write_text("user_id,signup_at\ncust-000000,2024-01-01\n")
    refused(folder, match=r"source\.users\.derive: the folder also holds users\.csv")


# ------------------------------------------------------------------ backends and credentials
def test_a_duckdb_file_backend_with_a_table(tmp_path):
    import duckdb

    folder = tmp_path / "wh"
    folder.mkdir()
    raw = pd.read_csv(write_mapped_export(tmp_path / "src", users=30) / "export.csv", dtype=str)
    con = duckdb.connect(str(folder / "warehouse.duckdb"))
    con.execute("CREATE SCHEMA analytics")
    con.register("raw", raw)
    con.execute("CREATE TABLE analytics.events AS SELECT * FROM raw")
    con.close()
    source = {**MAPPING, "events": {**{k: v for k, v in MAPPING["events"].items() if k != "file"}, "table": "analytics.events"}}
    write(folder, {"dataset.yml": {"name": "wh", "backend": {"url": "duckdb://warehouse.duckdb"}, "source": source}})
    file_based = load_dataset(write_mapped_export(tmp_path / "src2", users=30))
    ds = load_dataset(folder)
    assert ds.backend == "duckdb://warehouse.duckdb"
    assert ds.events.count().execute() == file_based.events.count().execute() > 500


def test_urls_with_passwords_are_refused_and_never_shown(tmp_path):
    with pytest.raises(BackendError) as info:
        connect("postgresql://analyst:s3cret-pw@db.example.com/wh")
    assert "s3cret-pw" not in str(info.value) and "postgresql://analyst:***@db.example.com/wh" in str(info.value)
    with pytest.raises(DataError) as info:
        load_dataset("postgresql://analyst:s3cret-pw@db.example.com/wh")
    assert "s3cret-pw" not in str(info.value) and "a connection URL is not a dataset" in str(info.value)
    assert redact("x postgresql://u:p%40ss@h:5432/db?sslmode=require&password=abc y") == "x postgresql://u:***@h:5432/db?sslmode=require&password=*** y"
    assert redact("snowflake://u:pw@acct/db/schema?token=t0k3n") == "snowflake://u:***@acct/db/schema?token=***"
    assert redact("postgresql://analyst@db/wh") == "postgresql://analyst@db/wh" and url_credentials("postgresql://analyst@db/wh") == []
    assert redact("the password is hunter22!", ["hunter22!"]) == "the password is ***"


def test_a_connection_that_fails_says_where_without_the_password(tmp_path, monkeypatch):
    monkeypatch.setenv("WB_TEST_PW", "pl4nted-pw")
    folder = write(tmp_path / "ds", {"dataset.yml": {"backend": {"url": "postgresql://analyst@127.0.0.1:1/wh", "password_env": "WB_TEST_PW"}}})
    with pytest.raises(WorkbenchError) as info:
        load_dataset(folder)
    assert "cannot connect to postgresql://analyst@127.0.0.1:1/wh" in str(info.value) and "pl4nted-pw" not in str(info.value)


def test_a_local_config_holds_the_password_and_git_ignores_it(tmp_path):
    assert "dataset.local.yml" in (REPO / ".gitignore").read_text()
    folder = write(tmp_path / "ds", {"dataset.yml": {"backend": {"url": "postgresql://analyst@127.0.0.1:1/wh"}},
                                     "dataset.local.yml": {"backend": {"password": "fr0m-local-file"}}})
    from workbench.data.config import dataset_secrets

    assert dataset_secrets(folder) == ["fr0m-local-file"]


# ------------------------------------------------------------------ paths
def test_builtin_names_and_notebooks_resolve_from_any_folder(tmp_path, monkeypatch):
    from workbench.reports.notebooks import resolve_notebook

    monkeypatch.delenv("WORKBENCH_ROOT", raising=False)
    monkeypatch.chdir(tmp_path)
    assert project_root() == REPO
    assert resolve_notebook("data_overview") == REPO / "notebooks" / "data_overview.ipynb"
    try:
        assert locate_dataset("sample").folder == REPO / "data" / "sample"
    except DataError as exc:  # not built in this checkout: the message points at the project, not the cwd
        assert str(REPO / "data" / "sample") in str(exc)
    monkeypatch.setenv("WORKBENCH_ROOT", str(tmp_path))
    assert project_root() == tmp_path


def test_a_dataset_yml_names_its_dataset(acme):
    assert locate_dataset(acme / "dataset.yml").folder == acme
    assert load_dataset(acme / "dataset.yml").name == "acme"


def test_only_days_the_calendar_has_parse(tmp_path):
    rows = [("a", "02/29/2024 10:00", "login", ""), ("a", "02/29/2023 10:00", "login", ""), ("a", "04/31/2024 10:00", "login", "")]
    text = refused(mapped(tmp_path, rows, timestamps={"format": "%m/%d/%Y %H:%M"}), match=r"2 value\(s\) of 'ts' do not parse")
    assert "02/29/2023 10:00" in text and "04/31/2024 10:00" in text
    assert parsing.parses_all(None, ["2024-02-29"]) and not parsing.parses_all(None, ["2023-02-29"])


def test_duckdb_settings_from_dataset_yml_and_spills_outside_the_working_folder(tmp_path, monkeypatch):
    """``backend: config:`` sets DuckDB's options; what does not fit its memory
    limit is written to the spill folder in the system's temporary directory,
    never to DuckDB's default ``.tmp`` in the working directory."""
    from workbench.data.backends import spill_directory

    folder = write_mapped_export(tmp_path / "a", users=30)
    meta = yaml.safe_load((folder / "dataset.yml").read_text())
    write(folder, {"dataset.yml": {**meta, "backend": {"config": {"memory_limit": "20MB", "threads": 1}}}})
    monkeypatch.chdir(tmp_path)
    ds = load_dataset(folder)
    raw = ds.con.con
    settings = dict(raw.sql("SELECT name, value FROM duckdb_settings() WHERE name IN ('memory_limit', 'threads', 'temp_directory')").fetchall())
    assert settings == {"memory_limit": "19.0 MiB", "threads": "1", "temp_directory": str(spill_directory())}
    raw.execute("CREATE TEMP TABLE big AS SELECT (range * 7919) % 2000003 AS k FROM range(6000000)")  # 48 MB > 20 MB
    spilled = [p for (p, _) in raw.sql("SELECT path, size FROM duckdb_temporary_files()").fetchall()]
    assert spilled and all(Path(p).parent == spill_directory() for p in spilled)
    assert raw.sql("SELECT count(*) FROM big").fetchall() == [(6_000_000,)]
    assert not (tmp_path / ".tmp").exists()
    default = load_dataset(write_mapped_export(tmp_path / "b", users=30)).con.con  # no config: the spill folder all the same
    assert default.sql("SELECT value FROM duckdb_settings() WHERE name = 'temp_directory'").fetchall() == [(str(spill_directory()),)]


@pytest.mark.parametrize("config, error, match", [
    ({"no_such_setting": 1}, BackendError, r"DuckDB setting no_such_setting: .*unrecognized configuration parameter"),
    ({"memory limit": "8GB"}, DataError, r"backend\.config: 'memory limit' is not a setting name"),
    ({"memory_limit": ["8GB"]}, DataError, r"backend\.config: memory_limit: give one value"),
])
def test_a_bad_engine_setting_is_one_clear_error(tmp_path, config, error, match):
    folder = write_mapped_export(tmp_path / "a", users=30)
    meta = yaml.safe_load((folder / "dataset.yml").read_text())
    write(folder, {"dataset.yml": {**meta, "backend": {"config": config}}})
    with pytest.raises(error, match=match):
        load_dataset(folder)


def test_engine_settings_for_a_server_are_refused():
    with pytest.raises(BackendError, match="settings are for DuckDB and Spark, not postgresql"):
        connect_url("postgresql://analyst@db.example.com/wh", config={"work_mem": "64MB"})
