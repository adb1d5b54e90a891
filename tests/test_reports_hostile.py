"""Hostile input to the report commands (fixtures in tests/hostile/): each
ends in one clear error with exit status 2, no traceback and nothing written,
or, for a broken run folder, in a note while everything else goes on."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from workbench.cli import main
from workbench.reports.index import list_runs, scan_runs

HOSTILE = Path(__file__).parent / "hostile"

PARAMS = '''\
n: int = 3  # >= 1: how many points
label: str = "toy"  # a label
horizon: float = 52.0  # weeks ahead
fail: bool = False  # raise on purpose
'''
CELLS = [
    "from workbench.reports import record\nrecord({'toy.n': n, 'toy.label': label, 'report.headline': f'{label} has {n} points', "
    "'report.headline_metrics': 'toy.n'})",
    "if fail:\n    raise ValueError('boom')",
]


@pytest.fixture
def project(tmp_path, make_notebook, monkeypatch):
    make_notebook(tmp_path / "notebooks" / "toy.ipynb", PARAMS, CELLS, title="Toy")
    (tmp_path / "batches").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def refused(capsys, argv, *, one_line=True) -> str:
    """Run the CLI; it must exit 2 with an error on stderr and no traceback."""
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse refuses before the command runs
        status = exc.code
    captured = capsys.readouterr()
    assert status == 2, (argv, captured)
    assert "Traceback" not in captured.err and "Traceback" not in captured.out
    if one_line:
        assert captured.err.count("\n") == 1 or captured.err.strip().splitlines()[-1].startswith("workbench "), captured.err
    return captured.err


@pytest.mark.parametrize(("argv", "expected"), [
    (["run", "toy", "-f", "."], "parameters file . is a folder, not a file"),
    (["run", "toy", "-f", str(HOSTILE / "params_latin1.yaml")], "is not UTF-8 text (byte 15 is 0xe9): save it as UTF-8"),
    (["batch", str(HOSTILE / "batch_latin1.yml")], "batch config " + str(HOSTILE / "batch_latin1.yml") + " is not UTF-8 text"),
    (["run", "toy", "-f", "missing.yaml"], "parameters file missing.yaml does not exist"),
    (["run", "toy", "--cell-timeout", "-5"], "argument --cell-timeout: must be a positive number of seconds, got '-5'"),
    (["run", "toy", "--cell-timeout", "nan"], "argument --cell-timeout: must be a positive number of seconds"),
    (["batch", "--cell-timeout", "0"], "argument --cell-timeout: must be a positive number of seconds"),
    (["batch", "-j", "0"], "argument -j/--workers: must be at least 1"),
    (["compare", "nope", "toy"], "no finished run matches 'nope'"),
    (["run", "nope"], "notebook 'nope' not found"),
])
def test_bad_files_and_options_end_in_one_clear_line(project, capsys, argv, expected):
    err = refused(capsys, argv)
    assert expected in err, err
    assert not (project / "reports").exists()


@pytest.mark.parametrize(("value", "expected"), [
    ("nan", "'horizon' is float: expected a finite number, got 'nan'"),
    ("inf", "'horizon' is float: expected a finite number, got 'inf'"),
    ("Infinity", "'horizon' is float: expected a finite number, got 'Infinity'"),
])
def test_non_finite_numbers_are_refused_before_any_kernel(project, capsys, value, expected):
    err = refused(capsys, ["run", "toy", "-p", "horizon", value], one_line=False)
    assert expected in err and "weeks ahead" in err  # with the notebook's parameter table
    assert not (project / "reports").exists()


@pytest.mark.parametrize("value", ["0x10", "0o20", "1:30", "16.5", "1e1"])
def test_integers_are_decimal_digits_only(project, capsys, value):
    err = refused(capsys, ["run", "toy", "-p", "n", value], one_line=False)
    assert f"'n' is int: expected a whole number in decimal digits, got '{value}'" in err


def test_a_value_outside_a_rule_is_refused(project, capsys):
    err = refused(capsys, ["run", "toy", "-p", "n", "0"], one_line=False)
    assert "parameter 'n' must be >= 1, got 0" in err and ">= 1: how many points" in err
    assert not (project / "reports").exists()


def plant_bad_runs(reports: Path) -> list[Path]:
    """Run folders with the hostile manifests and metrics from tests/hostile/."""
    made = []
    for i, name in enumerate(("manifest_list.json", "manifest_started_at_number.json")):
        d = reports / "toy" / f"20260101T00000{i}Z-bad{i}"
        d.mkdir(parents=True)
        shutil.copy(HOSTILE / name, d / "manifest.json")
        made.append(d)
    d = reports / "toy" / "20260101T000009Z-badmetrics"
    d.mkdir(parents=True)
    shutil.copy(HOSTILE / "manifest_ok.json", d / "manifest.json")
    shutil.copy(HOSTILE / "metrics_list_value.json", d / "metrics.json")
    return [*made, d]


def test_a_bad_manifest_never_stops_index_compare_run_or_batch(project, capsys):
    reports = project / "reports"
    bad = plant_bad_runs(reports)
    # index: built, the bad folders named with the reason
    assert main(["index"]) == 0
    captured = capsys.readouterr()
    assert "0 run(s), 0 failed" in captured.out
    assert f"skipped {bad[0]}: " in captured.err and "it is list (a JSON list), not a mapping" in captured.err
    assert "`started_at` is 123, not a string" in captured.err and "values must be numbers, strings or null: toy.n" in captured.err
    # a run goes on, and its index rebuild too
    assert main(["run", "toy", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["run", "toy", "-p", "n", "5", "--quiet"]) == 0
    capsys.readouterr()
    # compare works on the good runs
    assert main(["compare", "toy~1", "toy"]) == 0
    assert re.search(r"toy\.n\s+3\s+5\s+\+2", capsys.readouterr().out)
    # a batch runs and prints its summary
    (project / "batches" / "default.yml").write_text("jobs:\n  - notebook: toy\n    grid: {n: [7, 8]}\n")
    assert main(["batch", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "batch default: 2 run(s), 2 succeeded, 0 failed" in out and "run index: reports/index.html" in out
    runs, skipped = scan_runs(reports)
    assert len(runs) == 4 and sorted(p for p, _ in skipped) == sorted(bad)
    html = (reports / "index.html").read_text()
    assert "3 run folder(s) skipped" in html and "toy has 8 points" in html  # the headline of a run


def test_a_full_disk_during_a_batch_is_one_failed_job_and_the_summary_still_prints(project, capsys, monkeypatch):
    """The index cannot be written: the batch still reports every job and says why there is no index."""
    import errno

    from workbench.reports import files

    (project / "batches" / "default.yml").write_text("jobs:\n  - notebook: toy\n")

    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    real = files._write

    def write(fd, data):
        is_index = bytes(data[:15]) == b"<!DOCTYPE html>" and b"Report runs" in bytes(data)
        return full(fd, data) if is_index else real(fd, data)

    monkeypatch.setattr(files, "_write", write)
    assert main(["batch", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "1 succeeded" in out and "run index not rebuilt: cannot write " in out and "no space left on the disk" in out
    assert len(list_runs(project / "reports")) == 1
    assert not [p for p in (project / "reports").iterdir() if p.name.endswith(".part")]
