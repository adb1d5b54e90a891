"""report.html rendering from an executed notebook built by hand (no kernel):
nothing runs, nothing is fetched, text from data stays text."""

from __future__ import annotations

import base64
import re

import nbformat
import pytest

from workbench.reports import escape
from workbench.reports.html import format_duration, format_value, render_report, sanitize_html
from workbench.reports.parameters import parse_parameters_source

PNG = base64.b64encode(
    bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                  "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")
).decode()


def executed_notebook(*, failed=False):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# A title\nIntro <script>window.x=1</script> and <img src=x onerror=alert(1)>."),
        nbformat.v4.new_code_cell("n: int = 1  # n", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("# Parameters\nn = 2\n", metadata={"tags": ["injected-parameters"]}),
        nbformat.v4.new_code_cell("show()", execution_count=1, outputs=[
            nbformat.v4.new_output("display_data", {"text/html": '<b>bold</b><script>alert(2)</script><img src="https://e.com/t.png"><a href="javascript:alert(3)">x</a>'}),
            nbformat.v4.new_output("display_data", {"application/javascript": "alert(4)"}),
            nbformat.v4.new_output("display_data", {"text/markdown": "**md** <iframe src='https://e.com'></iframe>"}),
            nbformat.v4.new_output("display_data", {"image/png": PNG, "text/plain": "<Figure size 640x480 with 1 Axes>"}),
            nbformat.v4.new_output("display_data", {"text/html": '<style scoped>.dataframe td {color: red}</style><table class="dataframe"><tr><td>&lt;seg&gt;</td></tr></table>'}),
        ]),
    ]
    if failed:
        cell = nbformat.v4.new_code_cell("raise ValueError('x')", execution_count=2, outputs=[
            nbformat.v4.new_output("error", ename="ValueError", evalue="bad <thing>", traceback=["\x1b[31mValueError\x1b[0m: bad <thing>"])])
        cell.metadata["papermill"] = {"exception": True}
        nb.cells.append(cell)
        nb.cells.append(nbformat.v4.new_code_cell("after()"))
    return nb


def manifest(**kw):
    m = {"notebook": "demo", "notebook_file": "demo.ipynb", "notebook_path": "notebooks/demo.ipynb", "run_id": "20260101T000000Z-abcdef12",
         "status": "succeeded", "parameters": {"n": 2}, "dataset": None, "started_at": "2026-01-01T00:00:00+00:00", "duration_s": 75.0,
         "workbench_version": "9.9.9", "git": {"commit_short": "abc1234def", "dirty": True}, "error": None}
    m.update(kw)
    return m


@pytest.fixture
def declared():
    return parse_parameters_source("n: int = 1  # how many\n")[0]


def test_page_has_no_script_and_fetches_nothing(declared):
    html = render_report(executed_notebook(), manifest(), {"a.b": 1.23456, "a.n": 12345}, declared)
    assert "<script" not in html.lower() and "<iframe" not in html.lower()
    assert not re.search(r"<[^>]*\son\w+\s*=", html, re.I)  # no event-handler attribute on any tag
    assert not re.search(r"<[^>]*javascript:", html, re.I)
    assert not re.search(r"<[^>]*(src|href)=[\"']?https?://", html)  # the remote image and frame fetch nothing
    assert "&lt;iframe src=\"https://e.com\"&gt;" in html  # a tag that is not allowed shows as text
    assert "alert(4)" not in html  # a JavaScript output is not put on the page
    # what is left of the HTML outputs still renders
    assert "<b>bold</b>" in html and "<strong>md</strong>" in html
    assert '<table class="dataframe">' in html and "&lt;seg&gt;" in html and ".dataframe td {color: red}" in html
    assert re.search(r'<img [^>]*alt="&lt;Figure size 640x480 with 1 Axes&gt;"', html)
    assert f"data:image/png;base64,{PNG}" in html
    csp = re.search(r'<meta content="([^"]+)" http-equiv="Content-Security-Policy"', html).group(1)
    assert "default-src 'none'" in csp and "script-src 'none'" in csp and "img-src data:" in csp


def test_header_parameters_and_metrics(declared):
    html = render_report(executed_notebook(), manifest(), {"a.b": 1.23456, "a.n": 12345}, declared)
    assert "<title>A title</title>" in html and '<h1 class="wb-title">A title' in html
    assert "abc1234def" in html and "uncommitted changes" in html and "workbench 9.9.9" in html
    assert "1 min 15 s" in html and "2026-01-01 00:00 UTC" in html
    # the injected cell is replaced by the parameters table; the defaults cell is not shown
    assert "# Parameters" not in html and "n: int = 1" not in html
    assert '<tr class="wb-changed"><td><code>n</code></td><td class="wb-value"><code>2</code></td><td><code>int</code></td><td><code class="wb-dim">1</code></td><td>how many</td></tr>' in html
    assert "<code>a.b</code></td><td class=\"wb-num\">1.235</td>" in html
    assert "<code>a.n</code></td><td class=\"wb-num\">12,345</td>" in html
    # the heading moved into the header: only once as an h1
    assert html.count(">A title") == 2  # <title> and the header h1


def test_failed_page_shows_the_error_and_the_failing_cell(declared):
    html = render_report(executed_notebook(failed=True), manifest(status="failed", error={"ename": "ValueError", "evalue": "bad <thing>"}), {}, declared)
    assert 'wb-badge-failed">failed' in html
    box = html[html.index('class="wb-error"'):]
    box = box[: box.index("</section>")]
    assert "This run failed" in box and "ValueError" in box and "bad &lt;thing&gt;" in box
    assert "stopped at cell In [2]" in box and 'href="#wb-failed-cell"' in box
    assert 'id="wb-failed-cell"' in html and "celltag_wb-failed" in html
    assert "This run recorded no metrics." in html


def test_sanitizer_escapes_what_it_does_not_allow():
    out = sanitize_html('<p onclick="x()">hi</p><script>evil()</script><form><input></form><img src="data:image/png;base64,AA" alt="a">')
    assert out.startswith("<p>hi</p>&lt;script&gt;evil()&lt;/script&gt;&lt;form&gt;")
    assert '<img src="data:image/png;base64,AA" alt="a">' in out


def test_escape_makes_data_show_as_written_in_markdown():
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    name = "<img src=x onerror='alert(1)'> *bold* [link](javascript:x) $x$ a_b & #1 \"q\""
    html = markdown2html_mistune(f"Name: **{escape(name)}**")
    assert "<img" not in html and "<em>" not in html and "<a " not in html
    assert "<strong>&lt;img src=x onerror='alert(1)'&gt; *bold* [link](javascript:x) $x$ a_b &amp; #1 &quot;q&quot;</strong>" in html


def test_money_shows_two_decimals_and_an_escaped_currency():
    from workbench.reports import money

    assert money(1234.5, "USD") == "1,234.50 USD"
    assert money(0.125, "") == "0.12" and money(-3, "") == "-3.00"
    assert money(2, "<b>$</b>") == "2.00 &lt;b&gt;\\$&lt;/b&gt;"


@pytest.mark.parametrize(("value", "text"), [(12345, "12,345"), (0.123456, "0.1235"), (1234.5, "1,234.5"), (2.5e7, "25,000,000"), (0.0, "0"), ("x", "x"), (True, "true")])
def test_format_value(value, text):
    assert format_value(value) == text


def test_format_duration():
    assert [format_duration(s) for s in (3.24, 75, 3725, None)] == ["3.2 s", "1 min 15 s", "1 h 02 min", "-"]
