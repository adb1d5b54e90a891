"""Shared fixtures: small datasets built once per session, notebooks written
on the fly, and report runs shared between test files.

- ``tiny_dataset``: a simulated dataset (2,000 users, seed 1), contract-shaped.
- ``hostile_dataset``: the same with names that are HTML and script
  (segments, channels, experiment, KPI units, the dataset's name).
- ``make_notebook``: write a report notebook from a parameters source and cells.
- ``report_runs``: run a notebook through the report runner once per session
  for given parameters (later calls with the same arguments reuse the run).

In CI (environment variable ``CI=true``), a test marked ``browser``, ``spark``
or ``postgres`` that skips (no chromium, no Java, no PostgreSQL server, a
missing Python package) fails instead: CI installs all of them (``.ci/run``),
so a skip there means the service is missing and the test did not run.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]

#: names that would run script if a page put them in as HTML
XSS_SCRIPT = "<script>window.__xss = 'script'</script>mainstream"
XSS_IMG = '<img src=x onerror="window.__xss = \'img\'">organic'
XSS_NAME = "<script>window.__xss = 'name'</script>Evil dataset"


#: markers of tests that need a service CI installs; in CI they must not skip
REQUIRED_IN_CI = ("browser", "spark", "postgres")


def plot_title(ax) -> str:
    """An axes' title wherever the house style put it (left-aligned once plots.style.apply has run)."""
    return ax.get_title(loc="left") or ax.get_title()


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """With ``CI=true``, a skip of a test marked with a service in
    :data:`REQUIRED_IN_CI` becomes a failure that says why."""
    outcome = yield
    report = outcome.get_result()
    if not (report.skipped and in_ci()) or hasattr(report, "wasxfail"):
        return
    needs = [m for m in REQUIRED_IN_CI if item.get_closest_marker(m) is not None]
    if needs:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = (f"CI=true and this {'/'.join(needs)} test skipped: {reason}\n"
                           "CI must run it: install what it needs as .ci/run and the README's Tests section say.")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """A small valid dataset folder (users, events, assignments, kpis)."""
    from workbench.data.simulate import simulate

    out = tmp_path_factory.mktemp("data") / "tiny"
    simulate(users=2000, seed=1, out=out, progress=False)
    return out


@pytest.fixture(scope="session")
def hostile_dataset(tiny_dataset, tmp_path_factory) -> Path:
    """``tiny_dataset`` with HTML and script in every name a report shows."""
    out = tmp_path_factory.mktemp("data") / "hostile"
    shutil.copytree(tiny_dataset, out)
    users = pd.read_parquet(out / "users.parquet")
    users["segment"] = users["segment"].replace({"mainstream": XSS_SCRIPT})
    users["channel"] = users["channel"].replace({"organic": XSS_IMG})
    users.to_parquet(out / "users.parquet", index=False)
    assignments = pd.read_parquet(out / "assignments.parquet")
    assignments["experiment"] = assignments["experiment"].replace({"cocreation_invite": XSS_IMG})
    assignments.to_parquet(out / "assignments.parquet", index=False)
    kpis = pd.read_parquet(out / "kpis.parquet")
    if "unit" in kpis.columns:
        kpis["unit"] = kpis["unit"].astype(str) + XSS_SCRIPT
        kpis.to_parquet(out / "kpis.parquet", index=False)
    meta = yaml.safe_load((out / "dataset.yml").read_text())
    meta.update(name=XSS_NAME, description=XSS_IMG + " description", source=XSS_SCRIPT)
    (out / "dataset.yml").write_text(yaml.safe_dump(meta))
    return out


def write_notebook(path: Path, parameters: str, cells: list, *, title: str | None = "Test report", metadata: dict | None = None) -> Path:
    """A report notebook: an optional ``# title`` cell, the ``parameters`` cell,
    then ``cells`` (strings are code; ``("md", text)`` is Markdown)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata.update(metadata or {})
    if title:
        nb.cells.append(nbformat.v4.new_markdown_cell(f"# {title}"))
    p = nbformat.v4.new_code_cell(parameters)
    p.metadata["tags"] = ["parameters"]
    nb.cells.append(p)
    for c in cells:
        if isinstance(c, tuple) and c[0] == "md":
            nb.cells.append(nbformat.v4.new_markdown_cell(c[1]))
        else:
            nb.cells.append(nbformat.v4.new_code_cell(c))
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


@pytest.fixture
def make_notebook():
    return write_notebook


@pytest.fixture(scope="session")
def report_runs(tmp_path_factory):
    """``run(notebook, **parameters)``: a report run of a repository notebook
    into a session reports folder, done once per distinct arguments."""
    from workbench.reports.runner import run_notebook

    reports = tmp_path_factory.mktemp("reports")
    done = {}

    def run(notebook: str, **parameters):
        key = (notebook, tuple(sorted((k, str(v)) for k, v in parameters.items())))
        if key not in done:
            done[key] = run_notebook(REPO / "notebooks" / f"{notebook}.ipynb", parameters, reports_dir=reports, progress=False)
        return done[key]

    run.reports_dir = reports
    return run


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL server for the session (tests/postgres_server.py),
    its password in the environment variable the tests' dataset.yml files
    name; skips with the reason when the server binaries or the driver are missing."""
    import os

    from postgres_server import PASSWORD_ENV, PostgresServer, why_no_postgres

    reason = why_no_postgres()
    if reason:
        pytest.skip(reason)
    server = PostgresServer().start()
    os.environ[PASSWORD_ENV] = server.password
    yield server
    os.environ.pop(PASSWORD_ENV, None)
    server.stop()
