"""The dataset contract: every rule has a test that checks the message names
the rule, the table and the column; several problems come back at once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from workbench.data import load_dataset, validate_dataset
from workbench.errors import DataError


def _valid_tables() -> dict[str, pd.DataFrame]:
    users = pd.DataFrame(
        {
            "user_id": ["u1", "u2", "u3"],
            "signup_at": ["2024-01-01 00:00:00", "2024-01-02 08:00:00", "2024-01-03 12:00:00"],
            "channel": ["organic", "referral", "ads"],
            "segment": ["enthusiast", "mainstream", "mainstream"],
            "referred_by": [None, "u1", None],
            "age_years": [31, 45, 27],
        }
    )
    events = pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u2", "u2", "u3"],
            "event_at": ["2024-01-01 10:00", "2024-01-05", "2024-01-03", "2024-01-04", "2024-01-04"],
            "event_type": ["active", "purchase", "feedback", "adopted", "cancel"],
            "amount": [None, 12.5, None, None, None],
        }
    )
    assignments = pd.DataFrame(
        {
            "user_id": ["u1", "u2", "u3"],
            "experiment": ["invite"] * 3,
            "arm": ["control", "invited", "invited"],
            "assigned_at": ["2024-01-01", "2024-01-02 08:00:00", "2024-01-03 12:00:00"],
        }
    )
    kpis = pd.DataFrame({"period": ["2024-01-01", "2024-02-01"], "unit": ["a", "a"], "users": [10.0, 20.0], "revenue": [5.0, 9.0]})
    return {"users": users, "events": events, "assignments": assignments, "kpis": kpis}


def write(folder: Path, tables: dict[str, pd.DataFrame], fmt: str = "csv") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, df in tables.items():
        if fmt == "csv":
            df.to_csv(folder / f"{name}.csv", index=False)
        else:
            df.to_parquet(folder / f"{name}.parquet", index=False)
    return folder


def violations_of(folder: Path) -> list:
    with pytest.raises(DataError) as info:
        load_dataset(folder)
    return info.value.violations


def assert_violation(folder, table, column, words):
    vs = violations_of(folder)
    hit = [v for v in vs if v.table == table and (column is None or v.column == column) and words in v.rule]
    assert hit, f"no violation {table}.{column} '{words}' in {[str(v) for v in vs]}"
    text = str(DataError(vs))
    assert table in text and words in text and (column is None or column in text)
    return hit[0]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_valid_dataset_loads_with_types(tmp_path, fmt):
    tables = _valid_tables()
    if fmt == "parquet":  # typed parquet, as a warehouse export would be
        for name, col in [("users", "signup_at"), ("events", "event_at"), ("assignments", "assigned_at")]:
            tables[name][col] = pd.to_datetime(tables[name][col], format="mixed")
        tables["kpis"]["period"] = pd.to_datetime(tables["kpis"]["period"]).dt.date
    ds = load_dataset(write(tmp_path / "ds", tables, fmt))
    assert ds.users.signup_at.type().is_timestamp()
    assert ds.events.amount.type().is_floating()
    assert ds.kpis.period.type().is_date()
    assert ds.row_counts() == {"users": 3, "events": 5, "assignments": 3, "kpis": 2}
    assert ds.observation_end == pd.Timestamp("2024-01-05")
    assert ds.supports()["experiments"] is None and ds.supports()["cocreation"] is None


def test_timestamps_with_zone_become_utc(tmp_path):
    tables = _valid_tables()
    tables["users"]["signup_at"] = pd.to_datetime(tables["users"]["signup_at"], format="mixed").dt.tz_localize("Europe/Berlin")
    tables["events"]["event_at"] = pd.to_datetime(tables["events"]["event_at"], format="mixed").dt.tz_localize("UTC") + pd.Timedelta(hours=1)
    ds = load_dataset(write(tmp_path / "ds", tables, "parquet"))
    first = ds.users.order_by("user_id").signup_at.execute().iloc[0]
    assert first == pd.Timestamp("2023-12-31 23:00:00")  # midnight Berlin = 23:00 UTC


def _broken(tmp_path, table, mutate):
    tables = _valid_tables()
    tables[table] = mutate(tables[table].copy())
    return write(tmp_path / "ds", tables)


def test_missing_users_table(tmp_path):
    tables = _valid_tables()
    del tables["users"]
    assert_violation(write(tmp_path / "ds", tables), "users", None, "required table missing")


def test_missing_events_table(tmp_path):
    tables = _valid_tables()
    del tables["events"], tables["kpis"]
    assert_violation(write(tmp_path / "ds", tables), "events", None, "required table missing")


def test_missing_column(tmp_path):
    assert_violation(_broken(tmp_path, "events", lambda d: d.drop(columns="event_type")), "events", "event_type", "required column missing")


def test_both_csv_and_parquet(tmp_path):
    folder = write(tmp_path / "ds", _valid_tables())
    _valid_tables()["kpis"].to_parquet(folder / "kpis.parquet")
    assert_violation(folder, "kpis", None, "both .parquet and .csv")


def test_null_user_id(tmp_path):
    assert_violation(_broken(tmp_path, "users", lambda d: d.assign(user_id=["u1", None, "u3"])), "users", "user_id", "must not be null")


def test_null_signup(tmp_path):
    assert_violation(_broken(tmp_path, "users", lambda d: d.assign(signup_at=["2024-01-01", None, "2024-01-03"])), "users", "signup_at", "must not be null")


def test_duplicate_user_ids(tmp_path):
    v = assert_violation(_broken(tmp_path, "users", lambda d: d.assign(user_id=["u1", "u1", "u3"])), "users", "user_id", "must be unique")
    assert v.rows == 2


def test_timestamp_that_does_not_parse(tmp_path):
    folder = _broken(tmp_path, "events", lambda d: d.assign(event_at=["2024-01-01", "not a date", "2024-01-03", "2024-01-04", "2024-01-04"]))
    v = assert_violation(folder, "events", "event_at", "do not parse")
    assert v.examples[0]["event_at"] == "not a date"


def test_wrong_type_in_parquet(tmp_path):
    tables = _valid_tables()
    tables["users"]["signup_at"] = [1, 2, 3]
    assert_violation(write(tmp_path / "ds", tables, "parquet"), "users", "signup_at", "must be a timestamp")


def test_amount_not_a_number(tmp_path):
    assert_violation(_broken(tmp_path, "events", lambda d: d.assign(amount=[None, "twelve", None, None, None])), "events", "amount", "do not parse as a float")


def test_unknown_event_type(tmp_path):
    folder = _broken(tmp_path, "events", lambda d: d.assign(event_type=["active", "purchase", "login", "adopted", "cancel"]))
    v = assert_violation(folder, "events", "event_type", "must be one of")
    assert v.examples[0]["event_type"] == "login"


def test_purchase_without_amount(tmp_path):
    assert_violation(_broken(tmp_path, "events", lambda d: d.assign(amount=[None, None, None, None, None])), "events", "amount", "purchase without an amount")


def test_negative_amount(tmp_path):
    assert_violation(_broken(tmp_path, "events", lambda d: d.assign(amount=[None, -3.0, None, None, None])), "events", "amount", "must be >= 0")


def test_amount_on_non_purchase(tmp_path):
    assert_violation(_broken(tmp_path, "events", lambda d: d.assign(amount=[1.0, 12.5, None, None, None])), "events", "amount", "non-purchase")


def test_event_before_signup(tmp_path):
    folder = _broken(tmp_path, "events", lambda d: d.assign(event_at=["2023-12-31", "2024-01-05", "2024-01-03", "2024-01-04", "2024-01-04"]))
    v = assert_violation(folder, "events", "event_at", "before the user's signup_at")
    assert v.examples[0]["user_id"] == "u1"


def test_event_of_unknown_user(tmp_path):
    assert_violation(_broken(tmp_path, "events", lambda d: d.assign(user_id=["u1", "u1", "ghost", "u2", "u3"])), "events", "user_id", "not found in users")


def test_referrer_that_does_not_exist(tmp_path):
    assert_violation(_broken(tmp_path, "users", lambda d: d.assign(referred_by=[None, "nobody", None])), "users", "referred_by", "names no existing user_id")


def test_duplicate_assignment(tmp_path):
    folder = _broken(tmp_path, "assignments", lambda d: d.assign(user_id=["u1", "u1", "u3"], assigned_at=["2024-01-01", "2024-01-02", "2024-01-03 12:00:00"]))
    assert_violation(folder, "assignments", "experiment, user_id", "must be unique")


def test_assignment_before_signup(tmp_path):
    folder = _broken(tmp_path, "assignments", lambda d: d.assign(assigned_at=["2024-01-01", "2024-01-01", "2024-01-03 12:00:00"]))
    assert_violation(folder, "assignments", "assigned_at", "before the user's signup_at")


def test_assignment_without_control_arm(tmp_path):
    assert_violation(_broken(tmp_path, "assignments", lambda d: d.assign(arm=["base", "invited", "invited"])), "assignments", "arm", "no arm named 'control'")


def test_assignment_of_unknown_user(tmp_path):
    assert_violation(_broken(tmp_path, "assignments", lambda d: d.assign(user_id=["u1", "u2", "zz"])), "assignments", "user_id", "not found in users")


def test_kpi_duplicate_period(tmp_path):
    assert_violation(_broken(tmp_path, "kpis", lambda d: d.assign(period=["2024-01-01", "2024-01-01"])), "kpis", "unit, period", "must be unique")


def test_kpi_negative_users(tmp_path):
    assert_violation(_broken(tmp_path, "kpis", lambda d: d.assign(users=[-1.0, 3.0])), "kpis", "users", "must be >= 0")


def test_kpi_period_does_not_parse(tmp_path):
    assert_violation(_broken(tmp_path, "kpis", lambda d: d.assign(period=["2024-01-01", "soon"])), "kpis", "period", "do not parse")


def test_kpi_only_dataset_is_valid_and_says_what_it_supports(tmp_path):
    tables = {"kpis": _valid_tables()["kpis"]}
    report = validate_dataset(write(tmp_path / "ds", tables))
    assert report.supports["scaling"] is None
    assert "no events table" in report.supports["retention"]
    assert "no purchase events" in report.supports["clv"]
    assert "retention" in report.describe() and "no: no events table" in report.describe()


def test_several_problems_reported_at_once(tmp_path):
    tables = _valid_tables()
    tables["users"] = tables["users"].assign(user_id=["u1", "u1", "u3"])
    tables["events"] = tables["events"].assign(event_type=["active", "purchase", "login", "adopted", "cancel"], amount=[None, -1.0, None, None, None])
    tables["kpis"] = tables["kpis"].assign(users=[-1.0, 3.0])
    vs = violations_of(write(tmp_path / "ds", tables))
    rules = {(v.table, v.column) for v in vs}
    assert {("users", "user_id"), ("events", "event_type"), ("events", "amount"), ("kpis", "users")} <= rules


def test_no_folder_names_builtins(tmp_path):
    with pytest.raises(DataError, match="sample, cdnow, cdnow-sample"):
        load_dataset(tmp_path / "nope")


def test_validation_writes_nothing(tmp_path):
    folder = _broken(tmp_path, "users", lambda d: d.assign(user_id=["u1", "u1", "u3"]))
    before = sorted(p.name for p in folder.iterdir())
    violations_of(folder)
    assert sorted(p.name for p in folder.iterdir()) == before


def test_cli_validate_exits_2_with_all_violations(tmp_path):
    folder = _broken(tmp_path, "events", lambda d: d.assign(
        event_type=["active", "purchase", "login", "adopted", "cancel"], amount=[None, -3.0, None, None, None]))
    proc = subprocess.run([sys.executable, "-m", "workbench.cli", "validate", str(folder)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "event_type must be one of" in proc.stderr and "must be >= 0" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_validate_valid(tmp_path):
    folder = write(tmp_path / "ds", _valid_tables())
    proc = subprocess.run([sys.executable, "-m", "workbench.cli", "validate", str(folder)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "valid" in proc.stdout and "experiments  yes" in proc.stdout


def test_validate_false_skips_rule_checks_but_not_missing_columns(tmp_path):
    folder = _broken(tmp_path, "users", lambda d: d.assign(user_id=["u1", "u1", "u3"]))
    ds = load_dataset(folder, validate=False)  # duplicate ids not checked
    assert ds.row_counts()["users"] == 3
    missing = _broken(tmp_path / "b", "events", lambda d: d.drop(columns="event_type"))
    with pytest.raises(DataError, match="required column missing"):
        load_dataset(missing, validate=False)


def test_a_missing_folder_is_stated_as_it_is_not_as_a_contract_breach(tmp_path):
    with pytest.raises(DataError) as info:
        load_dataset(tmp_path / "nope")
    text = str(info.value)
    assert text.startswith(f"{tmp_path / 'nope'}: no dataset folder at")
    assert "breaks the contract" not in text and "rows" not in text and "Fix the" not in text
