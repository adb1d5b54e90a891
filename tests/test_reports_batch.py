"""Batches: config checking, grid expansion, parallel runs with isolated
failures, and the repository's default batch."""

from __future__ import annotations

import re

import pytest
import yaml

from workbench.cli import main
from workbench.reports.batch import load_batch
from workbench.reports.errors import BatchConfigError
from workbench.reports.index import list_runs

PARAMS = '''\
n: int = 1  # a number
mode: str = "ok"  # ok or raise
'''
CELLS = [
    "from workbench.reports import record\nrecord('job.n', n)",
    "if mode == 'raise':\n    raise RuntimeError(f'job {n} failed on purpose')",
    "record('job.done', 1)",
]


@pytest.fixture
def project(tmp_path, make_notebook):
    make_notebook(tmp_path / "notebooks" / "job.ipynb", PARAMS, CELLS, title="Job")
    make_notebook(tmp_path / "notebooks" / "other.ipynb", "x: float = 0.5  # a share", ["print(x)"], title="Other")
    (tmp_path / "batches").mkdir()
    return tmp_path


def write_config(project, name, data):
    path = project / "batches" / f"{name}.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_grid_expands_to_one_job_per_combination(project):
    path = write_config(project, "grid", {"jobs": [
        {"notebook": "job", "parameters": {"mode": "ok"}, "grid": {"n": [1, 2, 3]}},
        {"notebook": "notebooks/other.ipynb", "grid": {"x": [0.1, 0.2]}},
    ]})
    batch = load_batch(path)
    assert batch.name == "grid" and batch.root == project.resolve()
    assert [(j.name, j.parameters) for j in batch.jobs] == [
        ("job", {"mode": "ok", "n": 1}), ("job", {"mode": "ok", "n": 2}), ("job", {"mode": "ok", "n": 3}),
        ("other", {"x": 0.1}), ("other", {"x": 0.2}),
    ]
    assert [j.number for j in batch.jobs] == [1, 2, 3, 4, 5]
    # a bare name finds batches/NAME.yml from the project
    assert len(load_batch("grid", root=project).jobs) == 5


def test_config_problems_are_all_reported_before_anything_runs(project):
    path = write_config(project, "bad", {"jobs": [
        {"notebook": "missing_notebook"},
        {"notebook": "job", "parameters": {"nn": 1}},
        {"notebook": "job", "parameters": {"n": "two"}},
        {"notebook": "job", "paramters": {"n": 1}},
        {"notebook": "job", "parameters": {"n": 1}, "grid": {"n": [1, 2]}},
        {"notebook": "job", "grid": {"n": []}},
    ], "workers": 3})
    with pytest.raises(BatchConfigError) as info:
        load_batch(path)
    msg = str(info.value)
    assert "has 7 problem(s); nothing was run" in msg
    assert "unknown key(s) workers" in msg
    assert "job 1 (missing_notebook): notebook 'missing_notebook' not found" in msg and "notebooks in" in msg and "job, other" in msg
    assert "unknown parameter 'nn' (did you mean 'n'?)" in msg and "job 2" in msg
    assert "parameter 'n' is int: expected a whole number in decimal digits, got 'two'" in msg
    assert "job 4 (job): unknown key(s) paramters" in msg
    assert "job 5 (job): n given both in `parameters` and in `grid`" in msg
    assert "job 6 (job): `grid` must map each parameter name to a non-empty list" in msg
    assert not (project / "reports").exists()


def test_a_failing_job_does_not_stop_the_others(project, capsys, monkeypatch):
    write_config(project, "mixed", {"name": "mixed", "jobs": [
        {"notebook": "job", "grid": {"n": [1, 2, 3], "mode": ["ok"]}},
        {"notebook": "job", "parameters": {"n": 9, "mode": "raise"}},
    ]})
    monkeypatch.chdir(project)
    status = main(["batch", "mixed", "--workers", "2", "--quiet"])
    out = capsys.readouterr().out
    assert status == 1
    # the summary table: one row per job, the failure named with its error
    assert "batch mixed: 4 run(s), 3 succeeded, 1 failed" in out and "with 2 worker(s)" in out
    # (safe_dump writes keys sorted, so parameters read back as mode, n)
    assert re.search(r"4\s+job\s+mode=raise, n=9\s+FAILED", out)
    assert len(re.findall(r"\bjob\s+mode=ok, n=\d\s+succeeded", out)) == 3
    assert "4. job [mode=raise, n=9]: RuntimeError: job 9 failed on purpose" in out
    assert "run index: reports/index.html" in out

    runs = list_runs(project / "reports")
    assert sorted((r.parameters["n"], r.status) for r in runs) == [(1, "succeeded"), (2, "succeeded"), (3, "succeeded"), (9, "failed")]
    assert all(r.manifest["batch"] == "mixed" for r in runs)
    failed = next(r for r in runs if r.status == "failed")
    # the failed run keeps its partial notebook and an HTML page with the error
    assert failed.metrics == {"job.n": 9}
    html = (failed.run_dir / "report.html").read_text()
    assert "This run failed" in html and "job 9 failed on purpose" in html
    assert (failed.run_dir / "job.ipynb").is_file()
    for r in runs:
        if r.status == "succeeded":
            assert r.metrics == {"job.n": r.parameters["n"], "job.done": 1}
    index = (project / "reports" / "index.html").read_text()
    assert index.count('wb-badge-succeeded">succeeded') == 3 and index.count('wb-badge-failed">failed') == 1


def test_dry_run_lists_the_jobs(project, capsys, monkeypatch):
    write_config(project, "default", {"jobs": [{"notebook": "job", "grid": {"n": [1, 2]}}]})
    monkeypatch.chdir(project)
    assert main(["batch", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "batch default" in out and "2 run(s), all parameters checked" in out
    assert re.search(r"1\s+job\s+n=1", out) and re.search(r"2\s+job\s+n=2", out)
    assert not (project / "reports").exists()


def test_the_default_batch_names_existing_notebooks_with_valid_parameters(repo_root):
    """batches/default.yml is what `make run` runs: every notebook it lists
    must exist and accept its parameters."""
    batch = load_batch(repo_root / "batches" / "default.yml")
    jobs = {(j.name, tuple(sorted(j.parameters.items()))) for j in batch.jobs}
    assert ("data_overview", (("dataset", "sample"),)) in jobs
    assert ("customer_lifetime_value", (("calibration_end", "1997-09-30"), ("dataset", "cdnow-sample"), ("time_unit", "week"))) in jobs
    assert {j.name for j in batch.jobs} >= {"data_overview", "users_to_revenue", "cocreation_retention", "customer_lifetime_value"}


def test_each_batch_runs_with_the_callers_environment_and_folder(tmp_path, make_notebook, monkeypatch):
    """Workers are forked from a fork server started by the first batch of a
    process; each batch must still see the environment and folder of its caller."""
    from workbench.reports.batch import run_batch

    make_notebook(tmp_path / "notebooks" / "env.ipynb", "n: int = 1  # n",
                  ["import os\nfrom workbench.reports import record\nrecord('env.x', os.environ.get('WB_TEST_X', '-'))"])
    (tmp_path / "batches").mkdir()
    (tmp_path / "batches" / "env.yml").write_text("jobs:\n  - notebook: env\n")
    seen = []
    for value in ("first", "second"):
        monkeypatch.setenv("WB_TEST_X", value)
        result = run_batch("env", root=tmp_path, reports_dir=tmp_path / f"reports-{value}", progress=False)
        assert result.ok, result.summary()
        seen.append(result.outcomes[0].result.metrics["env.x"])
    assert seen == ["first", "second"]
