"""The customer-lifetime-value report notebook: stored clean, runs through the
report runner on CDNOW (published values reproduced in the report), on a
simulated product (sBG section included), and gives a clear note, not a
crash, on datasets that cannot support the analysis."""

from __future__ import annotations

import shutil

import nbformat
import pandas as pd
import pytest
import yaml

from workbench.reports.notebooks import check_notebook
from workbench.reports.parameters import declared_parameters

NOTEBOOK = "customer_lifetime_value"
REQUIRED = [
    "clv.bgnbd.r", "clv.bgnbd.alpha", "clv.bgnbd.a", "clv.bgnbd.b", "clv.bgnbd.loglik",
    "clv.pareto_nbd.r", "clv.pareto_nbd.alpha", "clv.pareto_nbd.s", "clv.pareto_nbd.beta", "clv.pareto_nbd.loglik",
    "clv.gamma_gamma.p", "clv.gamma_gamma.q", "clv.gamma_gamma.gamma", "clv.mean_clv",
]


def test_notebook_is_stored_without_outputs_with_one_parameters_cell(repo_root):
    path = repo_root / "notebooks" / f"{NOTEBOOK}.ipynb"
    assert check_notebook(path) == []
    nb = nbformat.read(path, as_version=4)
    assert sum("parameters" in c.metadata.get("tags", []) for c in nb.cells) == 1
    params = {p.name: p for p in declared_parameters(path)}
    for name, typ in (("dataset", "str"), ("time_unit", "str"), ("calibration_end", "str"), ("horizon", "float"), ("discount_rate", "float")):
        assert str(params[name].type) == typ
    assert params["dataset"].default == "sample"
    assert params["calibration_end"].default == ""


def _html(run) -> str:
    return run.report.read_text()


def test_cdnow_run_reproduces_the_published_values(report_runs):
    run = report_runs(NOTEBOOK, dataset="cdnow-sample", time_unit="week", calibration_end="1997-09-30", horizon=26.0)
    assert run.ok, run.error
    m = run.metrics
    for name in REQUIRED:
        assert isinstance(m[name], float), name
    assert m["clv.published.matches"] == m["clv.published.total"] == 13
    assert round(m["clv.bgnbd.r"], 3) == 0.243 and round(m["clv.pareto_nbd.loglik"], 1) == -9595.0
    assert m["clv.customers"] == 2357 and m["clv.repeat_transactions"] == 2457
    assert m["clv.holdout.bgnbd.actual_total"] == 1882
    assert m["clv.horizon"] == 26.0 and m["clv.mean_clv"] > 0
    html = _html(run)
    assert "Published values on the CDNOW sample" in html and "13 of 13 published values" in html
    assert "not a subscription" in html  # CDNOW has no cancels: sBG is skipped with a note


def test_simulated_product_run_includes_subscription_retention(report_runs, tiny_dataset):
    run = report_runs(NOTEBOOK, dataset=str(tiny_dataset), horizon=26.0)
    assert run.ok, run.error
    m = run.metrics
    for name in REQUIRED + ["clv.sbg.alpha", "clv.sbg.beta", "clv.sbg.loglik"]:
        assert isinstance(m[name], float), name
    assert m["clv.status"] == "ok"
    assert "clv.published.matches" not in m  # only for CDNOW
    assert "Subscription retention" in _html(run)


@pytest.fixture(scope="module")
def kpi_only_dataset(tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("clvdata") / "kpi-only"
    out.mkdir()
    shutil.copy(tiny_dataset / "kpis.parquet", out / "kpis.parquet")
    (out / "dataset.yml").write_text(yaml.safe_dump({"name": "kpi-only", "observation_end": "2025-12-29"}))
    return out


@pytest.fixture(scope="module")
def one_purchase_dataset(tmp_path_factory):
    """Every customer bought exactly once: no repeat buyers."""
    out = tmp_path_factory.mktemp("clvdata") / "one-purchase"
    out.mkdir()
    ids = [f"u{i:03d}" for i in range(60)]
    signup = pd.Timestamp("2024-01-01") + pd.to_timedelta(range(60), unit="D")
    pd.DataFrame({"user_id": ids, "signup_at": signup}).to_parquet(out / "users.parquet", index=False)
    pd.DataFrame({"user_id": ids, "event_at": signup + pd.Timedelta(hours=5), "event_type": "purchase", "amount": 20.0}).to_parquet(
        out / "events.parquet", index=False
    )
    (out / "dataset.yml").write_text(yaml.safe_dump({"name": "one-purchase", "observation_end": "2024-06-30"}))
    return out


def test_kpi_only_dataset_gets_notes_not_a_crash(report_runs, kpi_only_dataset):
    run = report_runs(NOTEBOOK, dataset=str(kpi_only_dataset))
    assert run.ok, run.error
    assert run.metrics["clv.status"].startswith("skipped: dataset kpi-only cannot support the repeat-purchase analysis: no purchase events")
    html = _html(run)
    assert "cannot support the repeat-purchase analysis" in html
    assert "not a subscription" in html
    assert "clv.bgnbd.r" not in run.metrics


def test_no_repeat_buyers_gets_a_note(report_runs, one_purchase_dataset):
    run = report_runs(NOTEBOOK, dataset=str(one_purchase_dataset))
    assert run.ok, run.error
    assert run.metrics["clv.customers"] == 60 and run.metrics["clv.repeat_customers"] == 0
    assert "no customer bought again" in run.metrics["clv.status"]
    assert "no customer bought again" in _html(run)


def test_a_subscription_product_without_purchases_gets_notes_not_a_crash(report_runs, tiny_dataset, tmp_path):
    """Cancels but no purchase: no purchase model and no sBG cohort (it used
    to fail with "max() arg is an empty sequence")."""
    out = tmp_path / "no_purchases"
    shutil.copytree(tiny_dataset, out)
    events = pd.read_parquet(out / "events.parquet")
    events[events.event_type != "purchase"].to_parquet(out / "events.parquet", index=False)
    run = report_runs(NOTEBOOK, dataset=str(out))
    assert run.ok, run.error
    assert "no subscription cohorts" in _html(run)


def test_calibration_date_outside_the_data_fails_with_a_clear_message(report_runs):
    run = report_runs(NOTEBOOK, dataset="cdnow-sample", calibration_end="1990-01-01")
    assert not run.ok
    assert "calibration_end 1990-01-01 is outside the purchases" in (run.error or "")
    assert "1997-01-01" in run.error and "1998-06-30" in run.error
