"""Datasets on a real PostgreSQL server (a throwaway one from the session's
``postgres`` fixture): named in dataset.yml, the password from the
environment or dataset.local.yml, tables mapped from a schema or found by
name, a warehouse table imported, and clear errors that never show the
password. Every table's parity with DuckDB is in tests/test_parity.py; the
reports on PostgreSQL are in tests/test_reports_backends.py.
"""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from export_fixture import write_export
from postgres_server import PASSWORD_ENV, load_folder, postgres_folder

from workbench.cli import main
from workbench.data import load_dataset, validate_dataset
from workbench.data.backends import BackendError
from workbench.errors import DataError

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def tiny_on_postgres(postgres, tiny_dataset, tmp_path_factory):
    return postgres_folder(postgres, "tiny", tiny_dataset, tmp_path_factory.mktemp("pg") / "tiny")


def test_a_dataset_yml_names_the_server_and_its_tables(tiny_on_postgres, tiny_dataset, postgres):
    ds = load_dataset(tiny_on_postgres)
    duck = load_dataset(tiny_dataset)
    assert ds.con.name == "postgres" and ds.backend == postgres.url
    assert ds.row_counts() == duck.row_counts() and ds.event_counts() == duck.event_counts()
    assert ds.observation_end == duck.observation_end
    report = validate_dataset(tiny_on_postgres)
    assert f"valid (on {postgres.url})" in report.describe() and postgres.password not in report.describe()


def test_contract_tables_are_found_by_name_in_the_urls_schema(tiny_on_postgres, tiny_dataset, postgres, tmp_path):
    folder = tmp_path / "by-name"
    folder.mkdir()
    (folder / "dataset.yml").write_text(yaml.safe_dump({"name": "by name", "backend": {"url": f"{postgres.url}/wb_tiny", "password_env": PASSWORD_ENV}}))
    ds = load_dataset(folder)
    assert set(ds.tables) == {"users", "events", "assignments", "kpis"}
    assert ds.row_counts() == load_dataset(tiny_dataset).row_counts()


def test_a_wrong_password_is_a_clear_error_that_never_shows_it(tiny_on_postgres, monkeypatch, capsys):
    monkeypatch.setenv(PASSWORD_ENV, "wr0ng-planted-pw")
    with pytest.raises(BackendError) as info:
        load_dataset(tiny_on_postgres)
    text = str(info.value)
    assert text.startswith("cannot connect to postgresql://workbench@127.0.0.1:") and "password authentication failed" in text
    assert "wr0ng-planted-pw" not in text
    assert main(["validate", str(tiny_on_postgres)]) == 1
    out = capsys.readouterr()
    assert "cannot connect" in out.err and "wr0ng-planted-pw" not in out.err + out.out


def test_the_password_can_come_from_a_git_ignored_local_file(tiny_on_postgres, postgres, monkeypatch, tmp_path):
    monkeypatch.delenv(PASSWORD_ENV)
    folder = tmp_path / "local"
    folder.mkdir()
    meta = yaml.safe_load((tiny_on_postgres / "dataset.yml").read_text())
    meta["backend"].pop("password_env")
    (folder / "dataset.yml").write_text(yaml.safe_dump(meta))
    with pytest.raises(BackendError, match="cannot connect"):  # no password anywhere
        load_dataset(folder)
    (folder / "dataset.local.yml").write_text(yaml.safe_dump({"backend": {"password": postgres.password}}))
    assert load_dataset(folder).con.name == "postgres"


def test_postgres_cannot_read_the_folders_files(postgres, tmp_path):
    folder = tmp_path / "files"
    write_export(folder / "export.csv", users=20)
    (folder / "dataset.yml").write_text(yaml.safe_dump({"backend": {"url": postgres.url, "password_env": PASSWORD_ENV},
                                                       "source": {"events": {"file": "export.csv"}, "users": {"derive": "first_event"}}}))
    with pytest.raises(DataError, match=r"source\.events\.file: file export\.csv cannot be read: postgres cannot read files.*table: schema\.name"):
        load_dataset(folder)


def test_import_a_warehouse_table(postgres, tmp_path, capsys):
    """`workbench import` on a table of raw text (US dates, New York time, refunds)
    proposes a mapping that names the server but never the password, and validates."""
    raw = tmp_path / "raw"
    write_export(raw / "export.csv", users=120, seed=3)
    load_folder(postgres.connect(), raw, "wb_import", text=True)
    out = tmp_path / "acme-pg"
    code = main(["import", "wb_import.export", "--backend", postgres.url, "--password-env", PASSWORD_ENV, "--out", str(out),
                 "--timezone", "America/New_York", "--name", "acme"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    meta = yaml.safe_load((out / "dataset.yml").read_text())
    assert meta["backend"] == {"url": postgres.url, "password_env": PASSWORD_ENV}
    assert meta["source"]["events"]["table"] == "wb_import.export" and meta["source"]["events"]["timestamps"]["format"] == "%m/%d/%Y %H:%M"
    assert sorted(p.name for p in out.iterdir()) == ["dataset.yml"]  # nothing copied from a warehouse
    assert postgres.password not in (out / "dataset.yml").read_text() + printed.out + printed.err
    assert main(["validate", str(out)]) == 0
    users = load_dataset(out).users.to_pandas()
    assert len(users) == pd.read_csv(raw / "export.csv").customer.nunique()


def test_a_password_in_the_backend_url_is_refused(postgres, tmp_path, capsys):
    url = postgres.url.replace("workbench@", f"workbench:{postgres.password}@")
    code = main(["import", "wb_import.export", "--backend", url, "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 1 and "holds a credential" in err and postgres.password not in err
    assert not (tmp_path / "x").exists()


def test_text_that_does_not_parse_is_one_clear_error_on_postgres_too(postgres, tmp_path):
    """PostgreSQL raises on a bad cast where DuckDB and Spark give null: the
    parser guards every cast, so bad text is counted and reported, never a
    server error in the middle of a query."""
    con = postgres.connect()
    con.raw_sql("CREATE SCHEMA IF NOT EXISTS wb_bad")
    export = pd.DataFrame({"customer": ["a", "a", "b", "b"], "ts": ["01/05/2024 10:00", "13/45/2024 10:00", "garbage", "02/29/2023 09:00"],
                           "type": ["login", "order", "login", "login"], "revenue": [None, "n/a", None, None]})
    con.create_table("export", export, database="wb_bad", overwrite=True)
    folder = tmp_path / "bad"
    folder.mkdir()
    source = {"events": {"table": "wb_bad.export", "columns": {"user_id": "customer", "event_at": "ts", "event_type": "type", "amount": "revenue"},
                         "event_types": {"active": "login", "purchase": "order"}, "timestamps": {"format": "%m/%d/%Y %H:%M"}},
              "users": {"derive": "first_event"}}
    (folder / "dataset.yml").write_text(yaml.safe_dump({"backend": {"url": postgres.url, "password_env": PASSWORD_ENV}, "source": source}))
    with pytest.raises(DataError) as info:
        load_dataset(folder)
    assert len(info.value.violations) == 1 and info.value.violations[0].rows == 3  # 13/45, garbage, and 29 February of a common year
    assert "source.events.timestamps.format: 3 value(s) of 'ts' do not parse as format '%m/%d/%Y %H:%M'" in str(info.value)
    # a contract-shaped text table: ISO text and numbers are guarded the same way
    con.create_table("events", pd.DataFrame({"user_id": ["a", "a"], "event_at": ["2024-01-05T10:00:00+01:00", "2024-02-30"],
                                             "event_type": ["purchase", "purchase"], "amount": ["9.5", "n/a"]}), database="wb_bad", overwrite=True)
    con.create_table("users", pd.DataFrame({"user_id": ["a"], "signup_at": ["2024-01-01"]}), database="wb_bad", overwrite=True)
    (folder / "dataset.yml").write_text(yaml.safe_dump({"backend": {"url": f"{postgres.url}/wb_bad", "password_env": PASSWORD_ENV}}))
    with pytest.raises(DataError) as info:
        load_dataset(folder)
    rules = {(v.table, v.column, v.rule.split(":")[0]) for v in info.value.violations}
    assert ("events", "event_at", "values that do not parse as a timestamp") in rules
    assert ("events", "amount", "values that do not parse as a float") in rules
