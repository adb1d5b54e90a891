"""Rendered pages in a real headless Chromium (Debian's ``chromium``, driven by
Playwright): figures displayed, no request beyond the page's own file, no
console errors, code toggle working, and text from a dataset shown as text
with no script running. Screenshots go to each test's temporary folder.

Needs the ``chromium`` package: ``sudo apt-get install -y chromium``
(Playwright's own browser download is not used).
"""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import REPO, XSS_IMG, XSS_NAME, XSS_SCRIPT

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    executable = shutil.which("chromium")
    if executable is None:
        pytest.skip("no chromium on PATH: install Debian's chromium (sudo apt-get install -y chromium) to run the browser tests")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is missing: pip install -e '.[test]'")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Visit:
    """A page opened from disk, with everything it requested and logged."""

    def __init__(self, browser, path):
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.url = path.resolve().as_uri()
        self.requests, self.console_errors, self.page_errors, self.dialogs = [], [], [], []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.page_errors.append(str(e)))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.goto(self.url, wait_until="load")

    def check_clean(self):
        assert self.requests == [self.url], f"requests beyond the page's own file: {self.requests}"
        assert self.console_errors == [], self.console_errors
        assert self.page_errors == [] and self.dialogs == []

    def figures(self):
        """(naturalWidth, rendered width, rendered height, visible) of every figure."""
        return self.page.eval_on_selector_all(
            "img.wb-figure",
            "els => els.map(e => { const r = e.getBoundingClientRect(); const s = getComputedStyle(e);"
            " return [e.naturalWidth, r.width, r.height, s.display !== 'none' && s.visibility !== 'hidden']; })",
        )

    def close(self):
        self.context.close()


def test_report_page_displays_its_figures_offline(browser, report_runs, tiny_dataset, tmp_path):
    run = report_runs("data_overview", dataset=str(tiny_dataset), max_cohorts=6, max_periods=6, period="month")
    assert run.ok, run.error
    v = Visit(browser, run.report)
    try:
        figures = v.figures()
        assert len(figures) >= 6
        assert all(nw > 0 and w > 100 and h > 50 and shown for nw, w, h, shown in figures), figures
        assert v.page.title() == "Data overview"
        assert v.page.is_visible("text=This run failed") is False
        v.check_clean()
        v.page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        assert (tmp_path / "report.png").stat().st_size > 10_000
    finally:
        v.close()


def test_show_code_toggle_works_without_network(browser, report_runs, tiny_dataset, tmp_path):
    run = report_runs("data_overview", dataset=str(tiny_dataset), max_cohorts=6, max_periods=6, period="month")
    v = Visit(browser, run.report)
    try:
        code = v.page.locator(".jp-CodeCell .jp-Cell-inputWrapper")
        assert code.count() > 3
        assert not any(code.nth(i).is_visible() for i in range(code.count()))
        assert v.page.is_visible("label[for=wb-show-code] >> text=Show code")
        v.page.click("label[for=wb-show-code]")
        assert all(code.nth(i).is_visible() for i in range(code.count()))
        assert v.page.is_visible("label[for=wb-show-code] >> text=Hide code")
        assert v.page.is_visible("text=Overview(dataset")
        v.page.screenshot(path=str(tmp_path / "report-with-code.png"))
        v.page.click("label[for=wb-show-code]")
        assert not code.first.is_visible()
        v.check_clean()
    finally:
        v.close()


def test_index_page_lists_runs_and_links_to_reports(browser, report_runs, tiny_dataset, tmp_path):
    from workbench.reports.index import build_index

    run = report_runs("data_overview", dataset=str(tiny_dataset), max_cohorts=6, max_periods=6, period="month")
    index = build_index(report_runs.reports_dir)
    v = Visit(browser, index)
    try:
        assert v.page.title() == "Report runs"
        link = v.page.locator(f'a[href="./data_overview/{run.run_id}/report.html"]').first
        assert link.is_visible()
        assert v.page.locator("tbody tr").count() >= 1
        assert v.page.is_visible("text=succeeded")
        v.check_clean()
        v.page.screenshot(path=str(tmp_path / "index.png"), full_page=True)
        link.click()
        v.page.wait_for_load_state("load")
        assert v.page.url == run.report.resolve().as_uri()
        assert v.page.title() == "Data overview"
        # the index and then the report: each only its own file
        assert v.requests == [v.url, run.report.resolve().as_uri()]
        assert v.console_errors == [] and v.page_errors == []
    finally:
        v.close()


def test_failed_report_shows_the_error_prominently(browser, tmp_path, make_notebook):
    from workbench.reports.runner import run_notebook

    nb = make_notebook(tmp_path / "proj" / "notebooks" / "broken.ipynb", "n: int = 1  # n",
                       ["import matplotlib.pyplot as plt\nplt.plot([1, 2]); plt.show()", "raise KeyError('no such column')", "print('never')"])
    run = run_notebook(nb, reports_dir=tmp_path / "reports", progress=False)
    assert not run.ok
    v = Visit(browser, run.report)
    try:
        box = v.page.locator(".wb-error")
        assert box.is_visible() and "This run failed" in box.inner_text() and "KeyError" in box.inner_text()
        assert box.bounding_box()["y"] < 600  # near the top, above the content
        # the failing cell's code and traceback are shown even with code hidden
        assert v.page.is_visible(".celltag_wb-failed .jp-Cell-inputWrapper")
        assert v.page.is_visible("text=raise KeyError('no such column')")
        assert all(nw > 0 and shown for nw, _, _, shown in v.figures())
        v.check_clean()
        v.page.screenshot(path=str(tmp_path / "failed.png"), full_page=True)
    finally:
        v.close()


def test_html_and_script_in_dataset_names_show_as_text_and_never_run(browser, report_runs, hostile_dataset, tmp_path):
    run = report_runs("data_overview", dataset=str(hostile_dataset), max_cohorts=6, max_periods=6, period="month")
    assert run.ok, run.error
    v = Visit(browser, run.report)
    try:
        assert v.page.evaluate("typeof window.__xss") == "undefined"
        text = v.page.inner_text("body")
        for payload in (XSS_NAME, XSS_IMG, XSS_SCRIPT):
            assert payload in text, f"{payload!r} is not shown as text"
        # exactly as written, also inside the report's own sentences
        assert f"{XSS_NAME}: {XSS_IMG} description" in text
        assert f"the largest segment is {XSS_SCRIPT} with" in text
        assert f"the largest channel is {XSS_IMG} with" in text
        assert v.page.locator("script").count() == 0
        assert v.page.locator("img:not(.wb-figure)").count() == 0  # no <img> made from data
        assert all(nw > 0 and shown for nw, _, _, shown in v.figures())
        v.check_clean()
        v.page.screenshot(path=str(tmp_path / "hostile.png"), full_page=True)
    finally:
        v.close()

    from workbench.reports.index import build_index

    hostile_index = tmp_path / "index-reports"
    copy = shutil.copytree(run.run_dir, hostile_index / "data_overview" / run.run_id)
    metrics = json.loads((copy / "metrics.json").read_text())
    metrics.update({"report.headline": f"{XSS_IMG} is the answer", "report.headline_metrics": "data.name"})
    (copy / "metrics.json").write_text(json.dumps(metrics))
    v = Visit(browser, build_index(hostile_index))
    try:
        assert v.page.evaluate("typeof window.__xss") == "undefined"
        body = v.page.locator("body").text_content()
        assert f"{XSS_IMG} is the answer" in body and XSS_NAME in body  # the headline and its data.name metric, as text
        assert v.page.locator("script").count() == 0
        v.check_clean()
    finally:
        v.close()


#: every report, with small parameters for the tiny dataset
REPORTS = {
    "data_overview": {"max_cohorts": 6, "max_periods": 6, "period": "month"},
    "users_to_revenue": {},
    "cocreation_retention": {},
    "customer_lifetime_value": {},
    "experiment_readout": {},
}
#: what a table a person reads must never show
RAW = ("nan", "NaN", "e+0", "e-0", "Result", "None", "inf")
#: the first screen of a report page (the viewport of Visit)
FIRST_SCREEN = 900


def _default_batch_jobs():
    """(id, notebook, parameters) of every job of batches/default.yml, with the
    simulated ``sample`` replaced by the tiny dataset and the small parameters
    of REPORTS; other datasets (cdnow-sample) as the batch names them."""
    from workbench.reports.batch import load_batch

    jobs = []
    for job in load_batch(REPO / "batches" / "default.yml", root=REPO).jobs:
        params = dict(job.parameters)
        on_sample = params.get("dataset", "sample") == "sample"
        if on_sample:
            params = {**REPORTS.get(job.name, {}), **{k: v for k, v in params.items() if k != "dataset"}}
        jobs.append(pytest.param(job.name, params, on_sample, id=f"{job.name}-{'tiny' if on_sample else params['dataset']}"))
    return jobs


def test_the_answer_first_test_covers_every_report():
    batch = {p.values[0] for p in _default_batch_jobs()}
    assert batch <= set(REPORTS), f"reports in the default batch without small test parameters: {batch - set(REPORTS)}"
    assert set(REPORTS) == {p.stem for p in (REPO / "notebooks").glob("*.ipynb")}


@pytest.mark.parametrize(("notebook", "parameters", "on_sample"), _default_batch_jobs())
def test_each_report_leads_with_its_answer_and_shows_no_raw_values(browser, report_runs, tiny_dataset, notebook, parameters, on_sample,
                                                                   tmp_path):
    run = report_runs(notebook, **({"dataset": str(tiny_dataset)} if on_sample else {}), **parameters)
    assert run.ok, run.error
    v = Visit(browser, run.report)
    try:
        answer = v.page.locator(".wb-answer")
        assert answer.count() == 1 and answer.first.is_visible()
        box = answer.first.bounding_box()
        first_section = v.page.locator(".jp-MarkdownCell h2").first.bounding_box()
        assert box["y"] < first_section["y"], "the answer box must come before the first section"
        # on the first screen: its top, and its question with the first line of the answer
        assert box["y"] + min(box["height"], 100) <= FIRST_SCREEN, f"the answer box starts at {box['y']:.0f} px, below the first screen"
        # the parameters are there, collapsed to one line (the table opens on a click)
        summary = v.page.locator("#wb-parameters summary")
        assert summary.is_visible() and summary.inner_text().startswith("Parameters: ")
        assert not v.page.locator("#wb-parameters table").is_visible()
        summary.click()
        assert v.page.locator("#wb-parameters table").is_visible()
        summary.click()
        assert len(answer.first.inner_text().split(". ")) >= 3  # a few sentences, not a label
        cells = v.page.eval_on_selector_all("table.wb-display-table td, table.wb-display-table th", "els => els.map(e => e.innerText)")
        assert cells, "the report shows display tables"
        bad = [c for c in cells if any(word in c for word in RAW)]
        assert not bad, f"raw values in the report's tables: {bad[:5]}"
        findings = v.page.eval_on_selector_all(".wb-finding, .wb-answer", "els => els.map(e => e.innerText)")
        assert not [f for f in findings if " nan" in f or "inf " in f or "**" in f]
        assert all(nw > 0 and shown for nw, _, _, shown in v.figures())
        v.check_clean()
        v.page.screenshot(path=str(tmp_path / f"{notebook}.png"))
    finally:
        v.close()


def test_a_style_in_a_notebook_output_cannot_hide_the_error_or_the_page(browser, tmp_path, make_notebook):
    """Behind the CSP: a <style> from a notebook output (e.g. built from data)
    only styles the outputs; the error box and the header stay visible."""
    from workbench.reports.runner import run_notebook

    css = ".wb-error, .wb-header, .wb-main { display: none } body { background-color: red }"
    nb = make_notebook(tmp_path / "proj" / "notebooks" / "styled.ipynb", "n: int = 1  # n",
                       [f"from IPython.display import HTML, display\ndisplay(HTML('<style>{css}</style><p class=\"mine\">styled</p>'))",
                        "raise KeyError('no such column')"])
    run = run_notebook(nb, reports_dir=tmp_path / "reports", progress=False)
    assert not run.ok
    v = Visit(browser, run.report)
    try:
        assert v.page.is_visible(".wb-error") and v.page.is_visible(".wb-header") and v.page.is_visible("text=styled")
        assert v.page.evaluate("getComputedStyle(document.body).backgroundColor") != "rgb(255, 0, 0)"
        v.check_clean()
    finally:
        v.close()
