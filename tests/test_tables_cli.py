"""`workbench tables`: writes any analysis table to Parquet or CSV,
atomically, and refuses what it cannot do with a message that says why."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from workbench.cli import main

from test_tables import write_handmade


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_handmade(tmp_path_factory.mktemp("handmade"))


def test_writes_parquet_with_the_options_given(folder, tmp_path, capsys):
    out = tmp_path / "deep" / "summary.parquet"
    rc = main(["tables", "repeat_summary", str(folder), "--out", str(out),
               "--time-unit", "day", "--calibration-end", "2024-02-15"])
    assert rc == 0
    df = pd.read_parquet(out)
    assert df.user_id.tolist() == ["u1", "u2"] and df["T"].tolist() == [41.0, 44.0]
    printed = capsys.readouterr()
    assert "wrote repeat_summary: 2 rows x 9 columns" in printed.out
    # the hand-made data has rows after its observation end: a note, not a Python warning
    assert "note: dataset" in printed.err and "left out of every analysis" in printed.err and "Warning" not in printed.err
    assert [p.name for p in out.parent.iterdir()] == ["summary.parquet"]  # no temporary file left behind


def test_writes_csv_and_list_options(folder, tmp_path):
    out = tmp_path / "rs.csv"
    rc = main(["tables", "risk_sets", str(folder), "--out", str(out), "--exposure", "feedback",
               "--bin-days", "7", "--strata", "segment,channel", "--churn", "cancel"])
    assert rc == 0
    df = pd.read_csv(out)
    assert list(df.columns) == ["tenure_bin", "exposed", "segment", "channel", "at_risk", "events", "exposure_days"]
    assert df.events.sum() == 1  # cancels only: u2
    out2 = tmp_path / "exp.csv"
    assert main(["tables", "experiment_outcomes", str(folder), "--experiment", "pricing", "--out", str(out2)]) == 0
    assert pd.read_csv(out2).user_id.tolist() == ["u2"]
    out4 = tmp_path / "ref.csv"
    assert main(["tables", "referrals", str(folder), "--period-days", "10", "--out", str(out4)]) == 0
    assert pd.read_csv(out4).period.max() == 5
    out3 = tmp_path / "nostrata.csv"
    assert main(["tables", "risk_sets", str(folder), "--out", str(out3), "--strata", "none"]) == 0
    assert "segment" not in pd.read_csv(out3).columns


def test_unknown_table_lists_the_available_ones_and_writes_nothing(folder, tmp_path, capsys):
    out = tmp_path / "x.csv"
    assert main(["tables", "survivl", str(folder), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "unknown table 'survivl'" in err and "survival" in err and "repeat_summary_compressed" in err
    assert not out.exists()


@pytest.mark.parametrize(
    "argv,message",
    [
        (["survival", "--period", "week"], "--period does not apply to table 'survival' (it takes: --churn, --churn-after-days)"),
        (["experiment_outcomes"], "table 'experiment_outcomes' needs --experiment"),
        (["kpis", "--period", "month", "--out-format"], None),
    ],
)
def test_options_that_do_not_apply_are_refused(folder, tmp_path, capsys, argv, message):
    out = tmp_path / "t.parquet"
    if message is None:  # an option argparse does not know: usage error
        with pytest.raises(SystemExit) as exc:
            main(["tables", argv[0], str(folder), "--out", str(out), *argv[1:]])
        assert exc.value.code == 2
    else:
        assert main(["tables", argv[0], str(folder), "--out", str(out), *argv[1:]]) == 1
        assert message in capsys.readouterr().err
    assert not out.exists()


def test_bad_output_type_and_bad_values(folder, tmp_path, capsys):
    assert main(["tables", "kpis", str(folder), "--out", str(tmp_path / "k.xlsx")]) == 1
    assert "end the name with .parquet or .csv" in capsys.readouterr().err
    assert main(["tables", "repeat_summary", str(folder), "--out", str(tmp_path / "r.csv"), "--calibration-end", "soon"]) == 1
    assert "calibration_end='soon' is not a date" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: exit 2 with the usage line
        main(["tables", "landmark_users", str(folder), "--coarsen", "age", "--out", str(tmp_path / "l.csv")])
    assert "expected COLUMN=WIDTH pairs" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_existing_file_is_replaced_only_when_the_new_one_is_complete(folder, tmp_path):
    out = tmp_path / "k.csv"
    out.write_text("old contents\n")
    assert main(["tables", "kpis", str(folder), "--out", str(out), "--strata", "segment"]) == 1  # refused
    assert out.read_text() == "old contents\n"
    assert main(["tables", "kpis", str(folder), "--out", str(out), "--period", "month"]) == 0
    assert pd.read_csv(out).period.tolist() == ["2024-01-01", "2024-02-01", "2024-03-01"]


def test_help_lists_every_table_and_its_options():
    proc = subprocess.run([sys.executable, "-m", "workbench.cli", "tables", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    from workbench.tables import TABLE_FUNCTIONS

    for name in TABLE_FUNCTIONS:
        assert f"\n  {name} " in proc.stdout
    assert "experiment_outcomes --experiment X" in proc.stdout and "example: workbench tables" in proc.stdout
    listed = subprocess.run([sys.executable, "-m", "workbench.cli", "tables", "--list"], capture_output=True, text=True)
    assert listed.returncode == 0 and "risk_sets [--exposure] [--churn] [--churn-after-days] [--bin-days] [--strata]" in listed.stdout


def test_every_table_option_has_a_command_line_flag():
    from workbench.tables import TABLE_FUNCTIONS
    from workbench.tables.export import table_options

    proc = subprocess.run([sys.executable, "-m", "workbench.cli", "tables", "--help"], capture_output=True, text=True)
    usage = proc.stdout.split("\n\n")[0]  # the usage block, before the description
    for name in TABLE_FUNCTIONS:
        for option in table_options(name):
            assert f"[--{option.replace('_', '-')} " in usage, (name, option)
