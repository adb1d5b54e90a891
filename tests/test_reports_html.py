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
            nbformat.v4.new_output("display_data", {"text/html": '<b>bold</b><script>alert(2)</script><img src="https://e.com/t.png">'
                                                                 '<a href="javascript:alert(3)">x</a>'}),
            nbformat.v4.new_output("display_data", {"application/javascript": "alert(4)"}),
            nbformat.v4.new_output("display_data", {"text/markdown": "**md** <iframe src='https://e.com'></iframe>"}),
            nbformat.v4.new_output("display_data", {"image/png": PNG, "text/plain": "<Figure size 640x480 with 1 Axes>"}),
            nbformat.v4.new_output("display_data", {"text/html": '<style scoped>.dataframe td {color: red}</style>'
                                                                 '<table class="dataframe"><tr><td>&lt;seg&gt;</td></tr></table>'}),
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
    assert '<table class="dataframe">' in html and "&lt;seg&gt;" in html
    assert ".jp-RenderedHTMLCommon .dataframe td { color: red; }" in html  # a notebook's style stays inside its outputs
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
    assert ('<tr class="wb-changed"><td><code>n</code></td><td class="wb-value"><code>2</code></td><td><code>int</code></td>'
            '<td><code class="wb-dim">1</code></td><td>how many</td></tr>') in html
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
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    assert markdown2html_mistune(money(2, "<b>$</b>")) == "<p>2.00 &lt;b&gt;$&lt;/b&gt;</p>\n"


@pytest.mark.parametrize(("value", "text"), [
    (12345, "12,345"), (0.123456, "0.1235"), (1234.5, "1,234.5"), (2.5e7, "25,000,000"), (0.0, "0"), ("x", "x"), (True, "true"),
    (None, "n/a"), (float("nan"), "n/a"), (float("inf"), "n/a"), (-float("inf"), "n/a"),
])
def test_format_value(value, text):
    assert format_value(value) == text


def test_format_duration():
    assert [format_duration(s) for s in (3.24, 75, 3725, None)] == ["3.2 s", "1 min 15 s", "1 h 02 min", "-"]


# ----------------------------------------------------------------- defence in depth behind the CSP
def test_urls_in_data_stay_text_without_stray_backslashes():
    """A URL (or an e-mail address) from a dataset is shown as written, not as a live link."""
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    for name in ("https://evil.example/login?next=a.b", "<https://evil.example>", "www.evil.example", "me@evil.example"):
        html = markdown2html_mistune(f"Segment **{escape(name)}** is the largest.")
        assert "<a " not in html and "href" not in html, (name, html)
        assert "\\" not in html, (name, html)
        text = re.sub(r"<[^>]+>", "", html)
        import html as _html

        assert _html.unescape(text).strip() == f"Segment {name} is the largest.", (name, html)


def test_line_breaks_in_data_cannot_start_markdown_blocks():
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    html = markdown2html_mistune(f"Name: {escape('x' + chr(10) * 2 + '    code block' + chr(10) + '# heading' + chr(10) + '- item')}")
    assert "<pre" not in html and "<h1" not in html and "<li" not in html and html.count("<p>") == 1


HOSTILE_STYLE = (
    "<style>@import url(https://e.com/x.css); .wb-error { display: none } body, .wb-header { visibility: hidden }"
    " .x { position: fixed; top: 0; z-index: 99; background-image: url(https://e.com/t.png); color: red }"
    " @media screen { .wb-main { display: none } } @font-face { font-family: f; src: url(https://e.com/f.woff) }</style>"
)


def test_style_in_notebook_output_is_sanitised_and_scoped():
    nb = executed_notebook(failed=True)
    nb.cells[3].outputs.append(nbformat.v4.new_output("display_data", {"text/html": HOSTILE_STYLE}))
    nb.cells.insert(1, nbformat.v4.new_markdown_cell(HOSTILE_STYLE))
    html = render_report(nb, manifest(status="failed", error={"ename": "ValueError", "evalue": "bad"}), {}, parse_parameters_source("n: int = 1  # n\n")[0])
    body = html[html.index("<body"):]
    styles = re.findall(r"<style[^>]*>(.*?)</style>", body, re.S)
    assert len(styles) >= 3  # the dataframe's, the output's and the Markdown cell's
    for css in styles:
        assert "@import" not in css and "@media" not in css and "@font-face" not in css and "url(" not in css
        assert "position" not in css and "z-index" not in css
        for rule in re.findall(r"([^{}]+)\{", css):
            for selector in rule.split(","):
                assert selector.strip().startswith(".jp-RenderedHTMLCommon "), selector
    assert ".jp-RenderedHTMLCommon .wb-error { display: none; }" in body  # scoped: it matches nothing outside the outputs
    assert ".jp-RenderedHTMLCommon .x { color: red; }" in body
    assert 'class="wb-error" role="alert"' in html


def test_links_made_from_file_names_never_carry_a_scheme():
    m = manifest(notebook="javascript:alert(1)", notebook_file="javascript:alert(1).ipynb")
    html = render_report(executed_notebook(), m, {}, parse_parameters_source("n: int = 1  # n\n")[0])
    assert not re.search(r"""href=["']?\s*javascript:""", html, re.I)
    assert 'href="./javascript%3Aalert%281%29.ipynb"' in html
