"""Every report notebook in notebooks/: follows the notebook rules, and runs
through the report runner on a tiny dataset with small parameters."""

from __future__ import annotations

import json

import nbformat
import pytest

from workbench.reports.notebooks import check_notebook
from workbench.reports.parameters import declared_parameters

from conftest import REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))

#: parameters that keep each notebook quick on the tiny dataset (besides
#: ``dataset``, which always points at it); notebooks not listed use defaults
SMALL = {
    "data_overview": {"period": "month", "max_cohorts": 6, "max_periods": 6},
}


def test_there_are_report_notebooks():
    assert "data_overview" in {p.stem for p in NOTEBOOKS}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_follows_the_rules(path):
    """Exactly one `parameters` cell of `name: type = literal  # meaning`
    lines, and stored without outputs (run `nbstripout notebooks/*.ipynb`)."""
    assert check_notebook(path) == []
    nb = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"


#: the most code a report notebook may hold outside its parameters cell:
#: notebooks narrate and call the analysis layer (workbench.analyses)
MAX_CODE_LINES = 80


def code_lines(path) -> int:
    """Non-blank, non-comment code lines outside the parameters cell."""
    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code" and "parameters" not in c.get("metadata", {}).get("tags", [])]
    return sum(1 for c in cells for line in c.source.splitlines() if line.strip() and not line.strip().startswith("#"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_thin(path):
    """Statistics, branching and wording live in workbench.analyses; a
    notebook holds its parameters and one short call per section."""
    n = code_lines(path)
    assert n <= MAX_CODE_LINES, f"{path.name} holds {n} code lines (limit {MAX_CODE_LINES}): move logic into workbench.analyses"
    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code" and "parameters" not in c.get("metadata", {}).get("tags", [])]
    code = "\n".join(line for c in cells for line in c.source.splitlines() if not line.strip().startswith("#"))
    for word in ("try:", "except", "if ", "for ", "Markdown(", "f\""):
        assert word not in code, f"{path.name}: notebooks do not branch, loop, catch or word findings ({word!r} found)"


def test_the_line_count_sees_code_and_ignores_comments_and_parameters(tmp_path, make_notebook):
    path = make_notebook(tmp_path / "notebooks" / "x.ipynb", "n: int = 1  # n", ["a = 1\n\n# a comment\nb = 2", "print(a)"])
    assert code_lines(path) == 3


def test_the_rules_check_catches_outputs_and_a_missing_parameters_cell(tmp_path, make_notebook):
    path = make_notebook(tmp_path / "notebooks" / "x.ipynb", "n: int = 1  # n", ["print(n)"])
    assert check_notebook(path) == []
    nb = nbformat.read(path, as_version=4)
    nb.cells[2].outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    nb.cells[2].execution_count = 1
    nb.cells[1].metadata["tags"] = []
    nbformat.write(nb, path)
    problems = check_notebook(path)
    assert any("exactly one cell tagged `parameters`" in p for p in problems)
    assert any("stored with outputs or execution counts in cell(s) 3" in p and "nbstripout" in p for p in problems)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_on_a_tiny_dataset(path, report_runs, tiny_dataset):
    names = {p.name for p in declared_parameters(path)}
    params = {k: v for k, v in SMALL.get(path.stem, {}).items() if k in names}
    if "dataset" in names:
        params["dataset"] = str(tiny_dataset)
    result = report_runs(path.stem, **params)
    assert result.ok, f"{path.stem} failed: {result.error}\nsee {result.report}"
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    assert metrics, f"{path.stem} recorded no metrics (use workbench.reports.record)"
    assert all(isinstance(v, (int, float, str)) and not isinstance(v, bool) for v in metrics.values())
    html = result.report.read_text()
    assert "<script" not in html.lower() and "data:image/png;base64," in html


def test_data_overview_reports_what_the_dataset_holds(report_runs, tiny_dataset):
    result = report_runs("data_overview", **{**SMALL["data_overview"], "dataset": str(tiny_dataset)})
    assert result.ok, result.error
    m = result.metrics
    truth = json.loads((tiny_dataset / "truth.json").read_text())
    assert m["data.users"] == truth["generator"]["users"] == 2000
    assert m["data.events"] > m["data.purchases"] > 0 and 0 < m["data.customers"] <= m["data.users"]
    assert m["conversion.customer_share"] == pytest.approx(m["data.customers"] / m["data.users"], abs=1e-6)
    assert 0 < m["retention.period_3"] < m["retention.period_1"] <= 1
    assert 0 < m["purchases.repeat_customer_share"] < 1 and m["purchases.amount_mean"] > 0
    assert m["data.analyses_supported"] == 8
    html = result.report.read_text()
    # six or more figures (segments, KPIs, reported KPIs, cohorts, activity, purchases, amounts)
    assert html.count("class=\"wb-figure\"") >= 6
    # numbers in the prose come from code: the user count appears formatted
    assert f"{m['data.users']:,} users" in html
