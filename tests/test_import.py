"""`workbench import`: a realistic export in a foreign shape (tests/export_fixture.py:
customer, ts, type, revenue; US-format New York times; refunds as negative
revenue; mail events to drop; no users table) becomes a validated dataset in
two commands, and every report runs on it. A proposal that does not validate
writes nothing.
"""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from export_fixture import MAPPING, write_export
from test_mapping import snapshot

from workbench.cli import main
from workbench.data import load_dataset
from workbench.data.importer import contract_type

NOTEBOOKS = ("data_overview", "users_to_revenue", "customer_lifetime_value", "cocreation_retention")


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """The two commands: import, then validate."""
    root = tmp_path_factory.mktemp("import")
    export = write_export(root / "downloads" / "export.csv")
    out = root / "data" / "acme"
    assert main(["import", str(export), "--out", str(out), "--timezone", "America/New_York", "--currency", "USD"]) == 0
    assert main(["validate", str(out)]) == 0
    return out


def test_import_proposes_the_mapping_an_analyst_would_write(imported, capsys):
    meta = yaml.safe_load((imported / "dataset.yml").read_text())
    assert meta["name"] == "acme" and meta["currency"] == "USD"
    assert meta["source"] == MAPPING  # columns, event types, US format, New York time, refunds netted, users derived
    text = (imported / "dataset.yml").read_text()
    mails = pd.read_csv(imported / "export.csv", dtype=str).type.value_counts()[["newsletter_open", "email_sent"]].sort_values(ascending=False)
    assert "# dropped: " + ", ".join(f"{t} ({n} rows)" for t, n in mails.items()) in text
    assert "negative amount (refunds)" in text and "each user's signup is their first event" in text
    assert sorted(p.name for p in imported.iterdir()) == ["dataset.yml", "export.csv"]


def test_import_prints_the_proposal_and_what_the_dataset_holds(tmp_path, capsys):
    export = write_export(tmp_path / "export.csv", users=60, seed=2)
    assert main(["import", str(export), "--out", str(tmp_path / "acme"), "--refunds", "drop"]) == 0
    out = capsys.readouterr().out
    assert "refunds: drop" in out and "dataset " in out and ": valid (on DuckDB in-process)" in out
    assert "clock times without a UTC offset are read as UTC" in out  # no --timezone: the proposal says so
    assert f"users: derived from the events, {pd.read_csv(export, dtype=str).customer.nunique()} users" in out


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_every_report_runs_on_the_imported_export(imported, notebook, report_runs):
    run = report_runs(notebook, dataset=str(imported))
    assert run.ok, f"{run.error}; see {run.report}"
    assert run.metrics
    ds = load_dataset(imported)
    if notebook == "data_overview":
        customers = pd.read_csv(imported / "export.csv", dtype=str).customer.nunique()
        assert run.metrics["data.users"] == customers > 200 and run.metrics["data.purchases"] == ds.event_counts()["purchase"]


def test_a_proposal_that_does_not_validate_writes_nothing(tmp_path, capsys):
    export = write_export(tmp_path / "in" / "export.csv", users=40)
    df = pd.read_csv(export, dtype=str)
    df.loc[df.type == "login", "revenue"] = "-1.00"  # nonsense amounts everywhere
    df.loc[5, "customer"] = None  # an event without a user
    df.to_csv(export, index=False)
    before = snapshot(tmp_path)
    assert main(["import", str(export), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "the proposed dataset.yml (not written)" in err and "events.user_id: must not be null" in err
    assert snapshot(tmp_path) == before and not (tmp_path / "out").exists()


def test_import_refuses_what_it_cannot_map(tmp_path, capsys):
    export = write_export(tmp_path / "export.csv", users=30)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x.txt").write_text("keep me")
    assert main(["import", str(export), "--out", str(tmp_path / "busy")]) == 2
    assert "already holds files" in capsys.readouterr().err and (tmp_path / "busy" / "x.txt").read_text() == "keep me"
    odd = tmp_path / "odd.csv"
    pd.read_csv(export, dtype=str).rename(columns={"customer": "ref"}).to_csv(odd, index=False)
    assert main(["import", str(odd), "--out", str(tmp_path / "o1")]) == 2
    assert "no column of odd.csv looks like the contract's user_id" in capsys.readouterr().err
    assert main(["import", str(odd), "--out", str(tmp_path / "o1"), "--column", "user_id=ref", "--format", "%d/%m/%Y %H:%M"]) == 2
    err = capsys.readouterr().err
    assert "'%d/%m/%Y %H:%M' does not parse 'ts'" in err and "'%m/%d/%Y %H:%M' parses all" in err
    assert main(["import", str(odd), "--out", str(tmp_path / "o1"), "--column", "user_id=ref"]) == 0
    assert not (tmp_path / "o2").exists() and sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_event_type_words():
    assert [contract_type(t) for t in ("login", "order", "idea_submitted", "idea_shipped", "unsubscribe", "email_sent", "purchase")] == \
        ["active", "purchase", "feedback", "adopted", "cancel", None, "purchase"]
    assert contract_type("Subscription Cancelled") == "cancel" and contract_type("Bug Report") == "feedback"


def test_a_parquet_export_with_zoned_times_and_a_users_table(tmp_path, capsys):
    """Typed columns need no format; a time zone in the column is honoured; a users table is mapped, not derived."""
    frame = pd.read_csv(write_export(tmp_path / "e.csv", users=50, seed=4), dtype=str)
    local = pd.to_datetime(frame.ts, format="%m/%d/%Y %H:%M").dt.tz_localize("America/New_York", ambiguous=False, nonexistent="shift_forward")
    frame = frame.assign(ts=local, revenue=pd.to_numeric(frame.revenue)).rename(columns={"customer": "client_id", "type": "action"})
    frame.to_parquet(tmp_path / "export.parquet", index=False)
    first = frame.groupby("client_id").ts.min()
    pd.DataFrame({"id": first.index, "created_at": first.values, "plan": "free"}).to_csv(tmp_path / "customers.csv", index=False)
    out = tmp_path / "acme"
    assert main(["import", str(tmp_path / "export.parquet"), "--users", str(tmp_path / "customers.csv"), "--out", str(out), "--refunds", "drop"]) == 0
    meta = yaml.safe_load((out / "dataset.yml").read_text())
    events, users = meta["source"]["events"], meta["source"]["users"]
    assert events["columns"] == {"user_id": "client_id", "event_at": "ts", "event_type": "action", "amount": "revenue"}
    assert "timestamps" not in events and events["refunds"] == "drop"
    assert users == {"file": "customers.csv", "columns": {"user_id": "id", "signup_at": "created_at"}}
    ds = load_dataset(out)
    assert list(ds.users.columns) == ["user_id", "signup_at", "plan"]
    got = ds.events.event_at.max().execute()
    assert got == frame.ts.max().tz_convert("UTC").tz_localize(None)
