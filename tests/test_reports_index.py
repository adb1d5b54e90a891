"""The run index and run comparison, on run folders written by hand (no kernel)."""

from __future__ import annotations

import json
import re

import pytest

from workbench.cli import main
from workbench.reports.compare import compare_runs
from workbench.reports.errors import RunNotFoundError
from workbench.reports.index import build_index, find_run, list_runs, scan_runs


def fake_run(reports, notebook, run_id, *, status="succeeded", params=None, defaults=None, metrics=None, started=None):
    d = reports / notebook / run_id
    d.mkdir(parents=True)
    manifest = {
        "notebook": notebook, "notebook_file": f"{notebook}.ipynb", "run_id": run_id, "status": status,
        "title": notebook.replace("_", " ").title(), "parameters": params or {}, "defaults": defaults or {},
        "dataset": (params or {}).get("dataset"), "started_at": started or f"2026-11-{run_id[6:8]}T{run_id[9:11]}:00:00+00:00",
        "duration_s": 12.5,
        "error": {"ename": "ValueError", "evalue": "boom <b>"} if status == "failed" else None,
    }
    (d / "manifest.json").write_text(json.dumps(manifest))
    (d / "metrics.json").write_text(json.dumps(metrics or {}))
    (d / "report.html").write_text("<html></html>")
    return d


@pytest.fixture
def reports(tmp_path):
    r = tmp_path / "reports"
    fake_run(r, "data_overview", "20261120T090000Z-aaaa1111", params={"dataset": "sample", "period": "month"},
             defaults={"dataset": "sample", "period": "month"},
             metrics={"data.users": 2000, "retention.period_1": 0.8, "data.name": "x"})
    fake_run(r, "data_overview", "20261121T090000Z-bbbb2222", params={"dataset": "cdnow-sample", "period": "week"},
             defaults={"dataset": "sample", "period": "month"}, metrics={"data.users": 2357, "retention.period_1": 0.6, "data.new": 1})
    fake_run(r, "customer_lifetime_value", "20261122T090000Z-cccc3333", status="failed",
             params={"dataset": "<script>alert(1)</script>"}, metrics={})
    (r / "data_overview" / ".tmp-20261122T100000Z-dddd4444").mkdir()  # an unfinished run
    return r


def test_runs_are_listed_newest_first_and_unfinished_ones_ignored(reports):
    runs = list_runs(reports)
    assert [r.run_id for r in runs] == ["20261122T090000Z-cccc3333", "20261121T090000Z-bbbb2222", "20261120T090000Z-aaaa1111"]


def test_index_lists_every_run_with_status_parameters_metrics_and_links(reports):
    path = build_index(reports)
    assert path == reports / "index.html"
    html = path.read_text()
    assert "<script" not in html.lower() and "Content-Security-Policy" in html
    assert 'font-family: var(--wb-font)' in html and '"Segoe UI"' in html  # the stylesheet is inlined as CSS, not escaped
    for rid in ("20261120T090000Z-aaaa1111", "20261121T090000Z-bbbb2222", "20261122T090000Z-cccc3333"):
        assert rid in html
    for nb, rid in (("data_overview", "20261120T090000Z-aaaa1111"), ("customer_lifetime_value", "20261122T090000Z-cccc3333")):
        assert f'href="./{nb}/{rid}/report.html"' in html and f'href="./{nb}/{rid}/metrics.json"' in html
    assert "dddd4444" not in html and "1 unfinished run folder" in html
    # summary: 3 runs, 2 notebooks, 1 failed
    assert re.search(r"<b>3</b>runs", html) and re.search(r"<b>2</b>notebooks", html) and re.search(r"<b>1</b>failed", html)
    assert 'wb-badge-failed">failed' in html and 'wb-badge-succeeded">succeeded' in html
    # non-default parameters are marked
    assert 'wb-chip wb-chip-changed" title="differs from the default">period=&#39;week&#39;' in html
    assert 'wb-chip" title="default">period=&#39;month&#39;' in html
    # parameters at their defaults are collapsed under one line, the changed ones shown
    row = next(r for r in html.split("<tr>") if "aaaa1111" in r)
    assert re.search(r"<details><summary>1 at the default</summary><span class=\"wb-chip\" title=\"default\">period=", row)
    row = next(r for r in html.split("<tr>") if "bbbb2222" in r)
    assert "<details>" not in row and "wb-chip-changed" in row
    # text from runs is escaped
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "boom &lt;b&gt;" in html
    # grouped by notebook, with a section per notebook
    assert 'id="nb-data_overview"' in html and 'id="nb-customer_lifetime_value"' in html


def test_index_is_rebuilt_from_manifests_not_edited(reports):
    first = build_index(reports).read_text()
    (reports / "index.html").write_text("edited by hand")
    assert build_index(reports).read_text() == first
    fake_run(reports, "data_overview", "20261123T090000Z-eeee5555", params={"dataset": "sample"})
    assert "eeee5555" in build_index(reports).read_text()


def test_runs_are_found_by_folder_id_prefix_and_notebook(reports):
    assert find_run(reports / "data_overview" / "20261120T090000Z-aaaa1111").run_id.endswith("aaaa1111")
    assert find_run("20261121T090000Z-bbbb2222", reports).run_id.endswith("bbbb2222")
    assert find_run("20261121", reports).run_id.endswith("bbbb2222")
    assert find_run("data_overview/20261120", reports).run_id.endswith("aaaa1111")
    assert find_run("data_overview", reports).run_id.endswith("bbbb2222")  # latest
    assert find_run("data_overview~1", reports).run_id.endswith("aaaa1111")
    with pytest.raises(RunNotFoundError, match="matches 3 runs"):
        find_run("2026112", reports)
    with pytest.raises(RunNotFoundError, match="has only 2 run"):
        find_run("data_overview~2", reports)
    with pytest.raises(RunNotFoundError, match="notebooks with runs: customer_lifetime_value, data_overview"):
        find_run("nothing-like-this", reports)


def test_compare_shows_changed_added_and_removed_metrics(reports):
    cmp = compare_runs("data_overview~1", "data_overview", reports)
    t = cmp.table
    assert t.loc["data.users", "status"] == "changed"
    assert t.loc["data.users", "change"] == 357
    assert t.loc["data.users", "pct_change"] == pytest.approx(17.85)
    assert t.loc["retention.period_1", "change"] == pytest.approx(-0.2)
    assert t.loc["data.new", "status"] == "added" and t.loc["data.name", "status"] == "removed"
    assert set(cmp.parameters.index) == {"dataset", "period"}
    text = cmp.to_text()
    assert "dataset: 'sample' -> 'cdnow-sample'" in text
    assert re.search(r"data\.users\s+2,000\s+2,357\s+\+357\s+\+17\.9%", text)
    assert re.search(r"data\.new\s+-\s+1\s+added", text)


def test_compare_of_a_run_with_itself_says_identical(reports):
    cmp = compare_runs("data_overview", "data_overview", reports)
    assert (cmp.table.status == "same").all()
    assert "all 3 metrics are identical" in cmp.to_text()


def test_cli_index_and_compare(reports, capsys):
    assert main(["index", "--reports", str(reports)]) == 0
    out = capsys.readouterr().out
    assert "3 run(s), 1 failed" in out and "1 unfinished run folder" in out
    assert main(["index", "--reports", str(reports), "--prune"]) == 0
    out = capsys.readouterr().out
    assert "removed unfinished run folder" in out and not (reports / "data_overview" / ".tmp-20261122T100000Z-dddd4444").exists()
    assert main(["compare", "data_overview~1", "data_overview", "--reports", str(reports)]) == 0
    out = capsys.readouterr().out
    assert "data.users" in out and "+357" in out and "retention.period_1" in out
    assert main(["compare", "data_overview~1", "data_overview", "--reports", str(reports), "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert {r["metric"]: r["status"] for r in records} == {"data.name": "removed", "data.new": "added", "data.users": "changed",
                                                           "retention.period_1": "changed"}
    assert main(["compare", "nope", "data_overview", "--reports", str(reports)]) == 2
    assert "no finished run matches 'nope'" in capsys.readouterr().err


# ----------------------------------------------------------------- headlines
def test_index_shows_each_runs_headline_and_nothing_arbitrary(tmp_path):
    r = tmp_path / "reports"
    fake_run(r, "nb", "20261120T090000Z-aaaa1111", metrics={
        "a.first": 987, "retention.period_1": 0.81234, "data.users": 20000, "x.null": None,
        "report.headline": "Most users <b>stay</b>: 81% come back.",
        "report.headline_metrics": "retention.period_1, data.users, x.null, data.gone"})
    fake_run(r, "nb", "20261121T090000Z-bbbb2222", metrics={"a.first": 222, "b.second": 3})
    fake_run(r, "nb", "20261122T090000Z-cccc3333", status="failed", metrics={"a.first": 333})
    html = build_index(r).read_text()
    rows = html.split('<tr>')[1:]
    by_id = {rid: next(row for row in rows if rid in row) for rid in ("aaaa1111", "bbbb2222", "cccc3333")}
    # the headline sentence (escaped) and its metrics, in the order named, formatted
    assert '<p class="wb-headline">Most users &lt;b&gt;stay&lt;/b&gt;: 81% come back.</p>' in by_id["aaaa1111"]
    shown = re.findall(r"<li><span>([^<]+)</span> ([^<]+)</li>", by_id["aaaa1111"])
    assert shown == [("retention.period_1", "0.8123"), ("data.users", "20,000"), ("x.null", "n/a"), ("data.gone", "not recorded")]
    # no run shows metrics it did not name as its headline
    assert "a.first" not in html and "987" not in html and "b.second" not in html
    assert "no headline recorded" in by_id["bbbb2222"] and "<li>" not in by_id["bbbb2222"]
    assert 'wb-badge-failed">failed' in by_id["cccc3333"] and "<li>" not in by_id["cccc3333"]
    assert "metrics (6)" in by_id["aaaa1111"] and "metrics (2)" in by_id["bbbb2222"]


def test_index_shows_the_headline_a_report_records_through_the_analysis_layer(tmp_path, make_notebook):
    """End to end: ``show(Answer(...))`` of workbench.analyses in a run records
    the headline (rounded like every metric) and the index shows it."""
    from workbench.reports.runner import run_notebook

    nb = make_notebook(tmp_path / "proj" / "notebooks" / "answered.ipynb", "n: int = 3  # how many",
                       ["from workbench.analyses.section import Answer\nfrom workbench.reports import show",
                        "show(Answer('Does it work?', ['It works <b>well</b>: 2 of 3 pass.', 'Second sentence.', 'Third.'],"
                        " {'t.share': 2 / 3, 't.users': 12345, 't.none': float('nan')}))"])
    reports = tmp_path / "proj" / "reports"
    run = run_notebook(nb, {"n": 4}, reports_dir=reports, progress=False)
    assert run.ok, run.error
    assert run.metrics["report.headline"] == "It works <b>well</b>: 2 of 3 pass."
    assert run.metrics["report.headline_metrics"] == "t.share,t.users,t.none"
    html = build_index(reports).read_text()
    assert '<p class="wb-headline">It works &lt;b&gt;well&lt;/b&gt;: 2 of 3 pass.</p>' in html
    assert "Second sentence" not in html  # the headline is the first sentence only
    shown = re.findall(r"<li><span>([^<]+)</span> ([^<]+)</li>", html)
    assert shown == [("t.share", "0.6667"), ("t.users", "12,345"), ("t.none", "n/a")]
    assert 'wb-chip wb-chip-changed" title="differs from the default">n=4' in html


def test_index_links_never_carry_a_scheme(tmp_path):
    r = tmp_path / "reports"
    fake_run(r, "javascript:alert(1)", "20261120T090000Z-aaaa1111")
    html = build_index(r).read_text()
    assert not re.search(r"""href=["']?\s*(javascript|data|vbscript):""", html, re.I)
    assert 'href="./javascript%3Aalert%281%29/20261120T090000Z-aaaa1111/report.html"' in html
    assert 'href="./javascript%3Aalert%281%29/20261120T090000Z-aaaa1111/javascript%3Aalert%281%29.ipynb"' in html


# ----------------------------------------------------------------- broken run folders
BAD_MANIFESTS = {
    "list": ("[]", "is list (a JSON list), not a mapping"),
    "started_at_number": ('{"started_at": 123}', "`started_at` is 123, not a string"),
    "no_fields": ("{}", "has no `notebook`"),
    "not_json": ("{not json", "manifest.json is not valid JSON"),
    "bad_date": ('{"notebook": "nb", "run_id": "x", "status": "succeeded", "started_at": "yesterday", "parameters": {}}', "not an ISO date"),
    "params_list": ('{"notebook": "nb", "run_id": "x", "status": "succeeded", "started_at": "2026-11-20T09:00:00+00:00", "parameters": []}',
                    "`parameters` is [], not a mapping"),
}


@pytest.fixture
def with_bad_runs(reports):
    for i, (name, (text, _)) in enumerate(BAD_MANIFESTS.items()):
        d = reports / "data_overview" / f"20261101T00000{i}Z-{name}"
        d.mkdir()
        (d / "manifest.json").write_text(text)
    d = reports / "data_overview" / "20261101T000009Z-latin1"
    d.mkdir()
    (d / "manifest.json").write_bytes('{"notebook": "caf\xe9"}'.encode("latin-1"))
    good = fake_run(reports, "data_overview", "20261101T000010Z-badmetrics")
    (good / "metrics.json").write_text('{"a": [1, 2]}')
    return reports


def test_a_broken_manifest_is_reported_and_skipped_never_fatal(with_bad_runs, capsys):
    reports = with_bad_runs
    runs, skipped = scan_runs(reports)
    assert len(runs) == 3 and len(skipped) == len(BAD_MANIFESTS) + 2
    reasons = dict((p.name.split("-", 1)[1], why) for p, why in skipped)
    for name, (_, expected) in BAD_MANIFESTS.items():
        assert expected in reasons[name], (name, reasons[name])
    assert "not UTF-8" in reasons["latin1"] and "values must be numbers, strings or null: a" in reasons["badmetrics"]
    html = build_index(reports).read_text()
    assert f"{len(skipped)} run folder(s) skipped" in html and "data_overview/20261101T000000Z-list" in html
    assert main(["index", "--reports", str(reports)]) == 0
    captured = capsys.readouterr()
    assert "3 run(s), 1 failed" in captured.out and captured.err.count("skipped ") == len(skipped)
    # comparison and lookup still work; the broken folder itself is named with its problem
    assert main(["compare", "data_overview~1", "data_overview", "--reports", str(reports)]) == 0
    capsys.readouterr()
    with pytest.raises(RunNotFoundError, match="is not a usable run: .*not a run manifest: it is list"):
        find_run(reports / "data_overview" / "20261101T000000Z-list", reports)
