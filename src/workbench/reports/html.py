"""Rendering an executed notebook as a self-contained ``report.html``.

The page is nbconvert's ``lab`` template with every script and remote asset
removed (no require.js, MathJax, mermaid or widget CDN references), a
Content-Security-Policy that forbids any script and any request except
``data:`` images, figures embedded as PNG, and a header, parameters table,
error box and metrics table rendered by Jinja2 with autoescaping (so text from
a dataset shows as text). Code is hidden by default; a "Show code" button
(a label for a checkbox, pure CSS) shows it.

Behind the CSP, as defence in depth: notebook HTML is sanitised with bleach
(tags, attributes and inline styles from an allow-list); a ``<style>`` element
in a notebook output keeps only allowed properties and only applies inside the
notebook's rendered outputs (so it cannot hide the error box or restyle the
page); links made from file names are relative paths (``./<quoted name>``),
never a scheme such as ``javascript:``.
"""

from __future__ import annotations

import copy
import datetime as _dt
import math
import re
from pathlib import Path
from urllib.parse import quote

import jinja2
import nbformat

TEMPLATES = Path(__file__).parent / "templates"
REPORT_TEMPLATE = "workbench-report"
#: no script may run and nothing may be fetched: images and fonts only as data: URIs
CSP = "default-src 'none'; img-src data:; font-src data:; style-src 'unsafe-inline'; script-src 'none'; base-uri 'none'; form-action 'none'"

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=False,
)
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


# ------------------------------------------------------------------ sanitizing
_TAGS = frozenset(
    "a abbr b blockquote br caption cite code col colgroup dd del details div dl dt em figcaption figure "
    "h1 h2 h3 h4 h5 h6 hr i img ins kbd li mark ol p pre q s samp small span strong style sub summary sup "
    "table tbody td tfoot th thead tr u ul var".split()
)
_ATTRS = frozenset("class id title align valign colspan rowspan scope width height alt border style start open lang dir".split())
_CSS_EXTRA = (
    "margin margin-top margin-bottom margin-left margin-right padding padding-top padding-bottom padding-left "
    "padding-right border border-top border-bottom border-left border-right border-width border-style "
    "border-radius max-width min-width max-height text-transform opacity font-variant-numeric"
).split()


def _allow_attribute(tag: str, name: str, value: str) -> bool:
    if name in _ATTRS:
        return True
    if tag == "a" and name == "href":
        v = value.strip().lower()
        return v.startswith(("http://", "https://", "mailto:", "#")) or (":" not in v.split("/")[0])
    if tag == "img" and name == "src":  # only embedded images: nothing is fetched
        return value.strip().lower().startswith("data:image/")
    return False


#: a notebook's own <style> rules apply only inside its rendered outputs and Markdown
STYLE_SCOPE = ".jp-RenderedHTMLCommon"
_STYLE_ELEMENT = re.compile(r"(<style\b[^>]*>)(.*?)(</style>)", re.S | re.I)


def _css_sanitizer():
    from bleach.css_sanitizer import ALLOWED_CSS_PROPERTIES, CSSSanitizer

    return CSSSanitizer(allowed_css_properties=frozenset(ALLOWED_CSS_PROPERTIES) | frozenset(_CSS_EXTRA))


def sanitize_style(css_text: str) -> str:
    """The rules of a notebook's ``<style>`` element that are safe to keep:
    at-rules (``@import``, ``@font-face``, ``@media``...) dropped, each
    selector prefixed with :data:`STYLE_SCOPE`, each declaration list
    filtered by the same allow-list as ``style`` attributes."""
    import tinycss2

    sanitizer = _css_sanitizer()
    out = []
    for rule in tinycss2.parse_stylesheet(css_text, skip_comments=True, skip_whitespace=True):
        if rule.type != "qualified-rule":
            continue
        selectors = [s.strip() for s in tinycss2.serialize(rule.prelude).split(",") if s.strip()]
        body = re.sub(r"\s*;", ";", sanitizer.sanitize_css(tinycss2.serialize(rule.content))).strip()
        if selectors and body:
            out.append(", ".join(f"{STYLE_SCOPE} {s}" for s in selectors) + " { " + body + " }")
    return "\n".join(out)


def sanitize_html(html: str) -> str:
    """HTML from a notebook (Markdown, ``text/html`` outputs, highlighted code)
    with everything that could run or fetch removed: scripts, event handlers,
    frames, forms, ``javascript:`` links and non-embedded images; ``<style>``
    elements pass through :func:`sanitize_style`. Tags that are not allowed
    are escaped, so they show as text."""
    import bleach

    html = html.decode() if isinstance(html, bytes) else str(html)
    cleaned = bleach.clean(
        html,
        tags=_TAGS,
        attributes=_allow_attribute,
        protocols={"http", "https", "mailto", "data"},
        css_sanitizer=_css_sanitizer(),
        strip=False,
        strip_comments=True,
    )
    return _STYLE_ELEMENT.sub(lambda m: m.group(1) + sanitize_style(m.group(2)) + m.group(3), cleaned)


def relative_href(*parts: str) -> str:
    """A link to a file below the page's folder: ``./`` and each part
    percent-quoted, so a name such as ``javascript:x`` stays a file name."""
    return "./" + "/".join(quote(str(p), safe="/") for p in parts)


def css() -> str:
    """The workbench page stylesheet (inlined into every page)."""
    return (TEMPLATES / "workbench.css").read_text()


def template(name: str) -> jinja2.Template:
    return _env.get_template(name)


# --------------------------------------------------------------------- formatting
#: how a missing number (a metric recorded as null, e.g. NaN) is shown
NOT_AVAILABLE = "n/a"


def format_value(value) -> str:
    """A metric or parameter value for people: thousands separators, 4 significant
    digits; null and non-finite numbers (recorded as null) show as ``n/a``."""
    if value is None:
        return NOT_AVAILABLE
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return NOT_AVAILABLE
        if value == 0:
            return "0"
        if abs(value) >= 1000:
            return f"{value:,.1f}" if abs(value) < 1e6 else f"{value:,.0f}"
        return f"{value:.4g}"
    return str(value)


def format_literal(value) -> str:
    """A parameter value as it would be written in the notebook."""
    return repr(value)


def format_duration(seconds) -> str:
    if seconds is None:
        return "-"
    s = float(seconds)
    if s < 60:
        return f"{s:.1f} s"
    m, s = divmod(int(round(s)), 60)
    if m < 60:
        return f"{m} min {s:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min"


def format_when(iso: str | None) -> str:
    if not iso:
        return "-"
    try:
        t = _dt.datetime.fromisoformat(iso)
    except ValueError:
        return iso
    return t.astimezone(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text or "")


# --------------------------------------------------------------------- notebook
def title_of(nb) -> str | None:
    """The text of the notebook's first level-1 Markdown heading, if any."""
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for line in cell.source.splitlines():
            if line.startswith("# "):
                return line[2:].strip()
            if line.strip():
                break
    return None


def _prepare(nb, error: dict | None = None) -> tuple[nbformat.NotebookNode, bool]:
    """A copy of the executed notebook arranged for the page: the first heading
    moves to the header, the failing cell (the one with an error output, else
    the one the error names, e.g. where the kernel died) is tagged; returns
    whether the notebook has an injected-parameters cell to hold the
    parameters table."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:  # the title is shown in the header
        if cell.cell_type == "markdown":
            lines = cell.source.splitlines()
            first = next((i for i, line in enumerate(lines) if line.strip()), None)
            if first is not None and lines[first].startswith("# "):
                cell.source = "\n".join(lines[:first] + lines[first + 1 :])
            break
    failed = None
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        pm = cell.get("metadata", {}).get("papermill", {})
        if pm.get("exception") or any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            failed = cell
            break
    index = (error or {}).get("cell_index")
    if failed is None and isinstance(index, int) and 0 <= index < len(nb.cells):
        failed = nb.cells[index]
    if failed is not None:
        tags = failed.setdefault("metadata", {}).setdefault("tags", [])
        if "wb-failed" not in tags:
            tags.append("wb-failed")
    has_injected = any("injected-parameters" in c.get("metadata", {}).get("tags", []) for c in nb.cells)
    return nb, has_injected


def _error_context(nb, error: dict | None) -> dict | None:
    if not error:
        return None
    label = None
    for cell in nb.cells:
        if "wb-failed" in cell.get("metadata", {}).get("tags", []):
            n = cell.get("execution_count")
            label = f"cell In [{n}]" if n is not None else "a cell"
    detail = strip_ansi(error.get("detail", ""))
    return {
        "ename": error.get("ename") or "Error",
        "evalue": strip_ansi(error.get("evalue") or ""),
        "cell_label": label,
        "where": error.get("where"),
        "detail": detail if not label else "",
    }


def render_report(nb, manifest: dict, metrics: dict, parameters=None) -> str:
    """The HTML page of a run.

    ``nb`` is the executed notebook (or, if execution never produced one, the
    parameterized input), ``manifest`` the run's manifest, ``metrics`` its
    recorded metrics and ``parameters`` the notebook's declared
    :class:`~workbench.reports.parameters.Parameter` list.
    """
    from nbconvert import HTMLExporter

    if not isinstance(nb, nbformat.NotebookNode):
        nb = nbformat.read(nb, as_version=4)
    page_nb, has_injected = _prepare(nb, manifest.get("error"))
    title = manifest.get("title") or title_of(nb) or manifest.get("notebook", "Report")
    page_nb.metadata["title"] = title
    values = manifest.get("parameters", {})
    declared = list(parameters or [])
    rows = []
    for p in declared:
        v = values.get(p.name, p.default)
        rows.append({"name": p.name, "value": format_literal(v), "type": str(p.type), "default": p.default_source, "meaning": p.meaning,
                     "changed": v != p.default})
    known = {p.name for p in declared}
    rows += [{"name": k, "value": format_literal(v), "type": type(v).__name__, "default": "", "meaning": "", "changed": True}
             for k, v in values.items() if k not in known]
    status = manifest.get("status", "unknown")
    ctx = {
        "title": title,
        "notebook_file": manifest.get("notebook_file", f"{manifest.get('notebook', 'notebook')}.ipynb"),
        "notebook_href": relative_href(manifest.get("notebook_file", f"{manifest.get('notebook', 'notebook')}.ipynb")),
        "notebook_path": manifest.get("notebook_path", ""),
        "status": status,
        "status_class": status if status in ("succeeded", "failed") else "other",
        "dataset": manifest.get("dataset"),
        "changed": [(r["name"], r["value"]) for r in rows if r["changed"]],
        "when": format_when(manifest.get("started_at")),
        "took": format_duration(manifest.get("duration_s")),
        "version": manifest.get("workbench_version", ""),
        "commit": (manifest.get("git") or {}).get("commit_short"),
        "dirty": (manifest.get("git") or {}).get("dirty"),
        "run_id": manifest.get("run_id", ""),
        "error": _error_context(page_nb, manifest.get("error")),
        "rows": rows,
        "metrics": [(k, format_value(v)) for k, v in sorted(metrics.items())],
    }
    resources = {
        "workbench": {
            "csp": CSP,
            "css": css(),
            "version": ctx["version"],
            "header": template("report_header.html.j2").render(ctx),
            "parameters": template("report_parameters.html.j2").render(ctx),
            "parameters_first": not has_injected,
            "footer": template("report_footer.html.j2").render(ctx),
        },
    }
    exporter = HTMLExporter(
        template_name=REPORT_TEMPLATE,
        extra_template_basedirs=[str(TEMPLATES)],
        embed_images=True,
        sanitize_html=True,
        filters={"clean_html": sanitize_html},
        exclude_input_prompt=False,
        theme="light",
    )
    body, _ = exporter.from_notebook_node(page_nb, resources=resources)
    return body


__all__ = ["CSP", "NOT_AVAILABLE", "css", "format_duration", "format_value", "format_when", "relative_href", "render_report",
           "sanitize_html", "sanitize_style", "title_of"]
