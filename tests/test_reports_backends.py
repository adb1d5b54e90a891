"""Every report runs end to end on PostgreSQL and on Spark, with recorded
metrics equal to DuckDB's; no file a run writes (report.html, the executed
notebook, manifest.json, metrics.json, kernel.log, the index) and nothing it
prints holds the database password.

The repository's notebooks run through ``workbench.reports.run_notebook``
with only the ``dataset`` parameter changed: a folder whose dataset.yml names
the backend. The DuckDB runs are the ones tests/test_notebooks.py makes (the
session's ``report_runs``), on the same 2,000 simulated users.
"""

from __future__ import annotations

import math
import shutil

import pytest
import yaml
from postgres_server import PASSWORD_ENV, postgres_folder
from test_notebooks import SMALL
from test_parity import _why_no_spark

from workbench.cli import main
from workbench.reports.runner import run_notebook

from conftest import REPO

NOTEBOOKS = ("data_overview", "users_to_revenue", "customer_lifetime_value", "cocreation_retention")


def same_metrics(a: dict, b: dict) -> list[str]:
    """Keys whose values differ beyond floating-point tolerance."""
    diff = sorted(set(a) ^ set(b))
    for k in set(a) & set(b):
        x, y = a[k], b[k]
        if isinstance(x, (int, float)) and isinstance(y, (int, float)):
            if not math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-9):
                diff.append(f"{k}: {x!r} != {y!r}")
        elif x != y:
            diff.append(f"{k}: {x!r} != {y!r}")
    return diff


def files_holding(folder, secret: str) -> list[str]:
    return [str(p) for p in folder.rglob("*") if p.is_file() and secret in p.read_bytes().decode("utf-8", "replace")]


@pytest.fixture(scope="module")
def on_postgres(postgres, tiny_dataset, tmp_path_factory):
    return postgres_folder(postgres, "tiny_reports", tiny_dataset, tmp_path_factory.mktemp("pg") / "tiny")


@pytest.fixture(scope="module")
def on_spark(tiny_dataset, tmp_path_factory):
    reason = _why_no_spark()
    if reason:
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("spark") / "tiny"
    shutil.copytree(tiny_dataset, folder)
    meta = yaml.safe_load((folder / "dataset.yml").read_text())
    meta["backend"] = {"spark": "local[2]", "config": {"spark.ui.enabled": "false"}}
    (folder / "dataset.yml").write_text(yaml.safe_dump(meta))
    return folder


@pytest.fixture(scope="module")
def pg_reports(tmp_path_factory):
    return tmp_path_factory.mktemp("pg-reports")


def params(notebook: str, dataset) -> dict:
    return {**SMALL.get(notebook, {}), "dataset": str(dataset)}


@pytest.mark.postgres
@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_every_report_on_postgres_equals_duckdb(notebook, on_postgres, pg_reports, report_runs, tiny_dataset, postgres):
    duck = report_runs(notebook, **params(notebook, tiny_dataset))
    assert duck.ok, duck.error
    run = run_notebook(REPO / "notebooks" / f"{notebook}.ipynb", params(notebook, on_postgres), reports_dir=pg_reports, progress=False)
    assert run.ok, f"{run.error}; see {run.report}"
    assert same_metrics(duck.metrics, run.metrics) == []
    assert len(run.metrics) > 5
    assert files_holding(run.run_dir, postgres.password) == []


@pytest.mark.spark
@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_every_report_on_spark_equals_duckdb(notebook, on_spark, report_runs, tiny_dataset, tmp_path_factory):
    duck = report_runs(notebook, **params(notebook, tiny_dataset))
    run = run_notebook(REPO / "notebooks" / f"{notebook}.ipynb", params(notebook, on_spark),
                       reports_dir=tmp_path_factory.mktemp("spark-reports"), progress=False)
    assert run.ok, f"{run.error}; see {run.report}"
    assert same_metrics(duck.metrics, run.metrics) == []


@pytest.mark.spark
def test_the_cocreation_report_at_scale_on_spark_equals_duckdb(on_spark, report_runs, tiny_dataset, tmp_path_factory):
    """The at-scale paths (every model on engine-aggregated tables, chosen
    here by limits of 0) run on Spark as on DuckDB, with the same metrics."""
    at_scale = {"max_episodes": 0, "max_referral_rows": 0}
    duck = report_runs("cocreation_retention", **params("cocreation_retention", tiny_dataset), **at_scale)
    assert duck.ok, duck.error
    assert (duck.metrics["retention.path"], duck.metrics["referrals.method"]) == ("aggregated", "cells")
    run = run_notebook(REPO / "notebooks" / "cocreation_retention.ipynb", {**params("cocreation_retention", on_spark), **at_scale},
                       reports_dir=tmp_path_factory.mktemp("spark-scale"), progress=False)
    assert run.ok, f"{run.error}; see {run.report}"
    assert same_metrics(duck.metrics, run.metrics) == []


@pytest.mark.postgres
def test_no_written_or_printed_file_holds_the_password(on_postgres, pg_reports, postgres, make_notebook, tmp_path, capsys):
    """A run that tries hard to leak -- prints the password, records it as a
    metric, fails with it in the error -- leaves it nowhere; nor does a
    command-line run, its output, or the index of all runs."""
    secret = postgres.password
    nb = make_notebook(tmp_path / "notebooks" / "leaky.ipynb", 'dataset: str = ""  # dataset folder', [
        "import os\nfrom workbench.data import load_dataset\nfrom workbench.reports import record\n"
        "ds = load_dataset(dataset)\nprint(ds.backend, ds.row_counts())",
        f"pw = os.environ[{PASSWORD_ENV!r}]\nprint('the password is', pw)\nrecord('leak', pw)\n"
        "print(ds.con.con.info.dsn, ds.con.con.info.password)",
        "raise RuntimeError(f'cannot go on with {pw}')",
    ])
    leaky = run_notebook(nb, {"dataset": str(on_postgres)}, reports_dir=pg_reports, progress=False)
    assert not leaky.ok and "cannot go on with ***" in leaky.error
    assert leaky.metrics == {"leak": "***"}
    assert "the password is ***" in leaky.report.read_text()
    code = main(["run", str(REPO / "notebooks" / "data_overview.ipynb"), "-p", "dataset", str(on_postgres), "-p", "period", "month",
                 "-p", "max_cohorts", "6", "-p", "max_periods", "6", "--reports", str(pg_reports)])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert secret not in printed.out + printed.err
    written = list(pg_reports.rglob("*"))
    assert {p.name for p in written} >= {"report.html", "manifest.json", "metrics.json", "index.html", "leaky.ipynb", "data_overview.ipynb"}
    assert files_holding(pg_reports, secret) == []
    # the index, rebuilt from manifests an older version may have written with a URL's password, shows it redacted
    manifest = next(pg_reports.glob("leaky/*/manifest.json"))
    manifest.write_text(manifest.read_text().replace(str(on_postgres), f"postgresql://workbench:{secret}@db/x"))
    assert main(["index", "--reports", str(pg_reports)]) == 0
    assert secret not in (pg_reports / "index.html").read_text() and "postgresql://workbench:***@db/x" in (pg_reports / "index.html").read_text()


@pytest.mark.postgres
def test_a_password_given_as_a_parameter_is_refused_before_anything_runs(on_postgres, postgres, tmp_path, capsys):
    url = postgres.url.replace("workbench@", f"workbench:{postgres.password}@")
    code = main(["run", "data_overview", "-p", "dataset", url, "--reports", str(tmp_path / "reports")])
    err = capsys.readouterr().err
    assert code == 2 and "holds a credential" in err and postgres.password not in err and "workbench:***@" in err
    assert not (tmp_path / "reports").exists() or files_holding(tmp_path / "reports", postgres.password) == []
