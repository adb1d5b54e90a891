"""Numbers for people (workbench.analyses.format) and the section/answer
blocks every report shows."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from workbench.analyses import Answer, Section
from workbench.analyses import format as fmt


@pytest.mark.parametrize(
    "fn,value,expected",
    [
        (fmt.count, 2357, "2,357"),
        (fmt.count, 2357.0, "2,357"),
        (fmt.count, float("nan"), "n/a"),
        (fmt.number, 19980.0, "20,000"),
        (lambda v: fmt.number(v, 4), 19980.0, "19,980"),
        (fmt.number, 0.012345, "0.0123"),
        (fmt.number, 1.5, "1.5"),
        (fmt.number, 1234567.0, "1,230,000"),
        (fmt.number, 0, "0"),
        (fmt.number, float("inf"), "n/a"),
        (fmt.percent, 0.1234, "12.3%"),
        (fmt.percent, 1.0, "100.0%"),
        (fmt.signed_percent, -0.032, "-3.2%"),
        (fmt.signed_percent, 0.15, "+15.0%"),
        (fmt.points, 0.016, "+1.6 points"),
        (fmt.points, -0.0049, "-0.5 points"),
        (fmt.ratio, 0.6, "0.60"),
        (fmt.ratio, 27.43, "27.4"),
        (fmt.ratio, None, "n/a"),
        (fmt.p_value, 0.0, "< 0.001"),
        (fmt.p_value, 0.00099, "< 0.001"),
        (fmt.p_value, 0.001, "0.001"),
        (fmt.p_value, 0.0344, "0.034"),
        (fmt.p_value, 0.41, "0.41"),
        (fmt.p_value, math.nan, "n/a"),
    ],
)
def test_numbers_are_written_for_people(fn, value, expected):
    assert fn(value) == expected


def test_money_has_its_currency_or_nothing_never_markup():
    assert fmt.money(1234.5, "USD") == "1,234.50 USD"
    assert fmt.money(1234.5, None) == "1,234.50"
    assert fmt.money(1234.5, "") == "1,234.50"
    assert fmt.money(float("nan"), "USD") == "n/a"
    assert "*" not in fmt.money(50.87, None) and "*" not in fmt.money(50.87, "")


def test_intervals_and_estimates():
    assert fmt.interval(0.58, 0.63) == "95% CI 0.58 to 0.63"
    assert fmt.estimate(0.6, 0.58, 0.63) == "0.60 (95% CI 0.58 to 0.63)"
    assert fmt.interval(0.1, 0.2, fmt.percent, level=0.9) == "90% CI 10.0% to 20.0%"
    assert fmt.interval(float("nan"), 1.0) == "95% CI n/a"


def test_dates_plurals_and_lists():
    assert fmt.date("2024-05-06", "month") == "May 2024"
    assert fmt.date("2024-05-06", "week") == "the week of 06 May 2024"
    assert fmt.date("2024-05-06") == "06 May 2024"
    assert fmt.plural(1, "user") == "1 user" and fmt.plural(2357, "user") == "2,357 users"
    assert fmt.plural(1.0, "day") == "1 day" and fmt.plural(0, "day") == "0 days"
    assert fmt.lower_first("The model failed") == "the model failed" and fmt.lower_first("BG/NBD failed") == "BG/NBD failed"
    assert fmt.lower_first("") == "" and fmt.lower_first("A") == "a"
    assert fmt.listing([]) == "" and fmt.listing(["a"]) == "a" and fmt.listing(["a", "b", "c"]) == "a, b and c"


def test_display_table_formats_names_and_drops_empty_columns():
    frame = pd.DataFrame({"n": [2357.0, 10.0], "share": [0.5, 0.25], "p_value": [0.0, 0.2], "empty": [np.nan, np.nan],
                          "internal_name": [1, 2]}, index=["a", "b"])
    out = fmt.display_table(frame, {"n": ("users", "count"), "share": ("share", "percent"), "p_value": ("p-value", "p_value"),
                                    "empty": ("nothing", "number")}, index="group")
    assert list(out.columns) == ["group", "users", "share", "p-value"]
    assert out.iloc[0].tolist() == ["a", "2,357", "50.0%", "< 0.001"]
    money = fmt.display_table(pd.DataFrame({"v": [1.5]}), {"v": ("value", "money")}, currency="EUR")
    assert money.iloc[0, 0] == "1.50 EUR"


def test_a_section_renders_blocks_in_order_escaped_with_its_figures():
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    ax.set_title("a line")
    s = Section("Demo").note("skipped <b>x</b>").figure(fig).table(pd.DataFrame({"a": ["<i>1</i>"]}), "T").finding("up & away")
    s.record({"demo.n": 1})
    html = s._repr_html_()
    assert html.index("Note.") < html.index("<img") < html.index("wb-display-table") < html.index("Finding.")
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "&lt;i&gt;1&lt;/i&gt;" in html and "up &amp; away" in html
    assert 'alt="a line"' in html and "data:image/png;base64," in html
    assert s.findings == ["up & away"] and s.notes == ["skipped <b>x</b>"] and len(s.figures) == 1
    assert s.to_metrics() == {"demo.n": 1}
    assert not plt.fignum_exists(fig.number)  # closed in pyplot: shown once, in the section
    assert "Finding. up & away" in repr(s)


def test_an_answer_records_its_headline_and_headline_metrics_in_order():
    a = Answer("Does it?", ["Yes, by 40%.", "Second."], {"x.hr": 0.6, "x.lo": 0.5})
    m = a.to_metrics()
    assert m["report.headline"] == "Yes, by 40%." and m["report.headline_metrics"] == "x.hr,x.lo" and m["x.hr"] == 0.6
    html = a._repr_html_()
    assert 'class="wb-answer"' in html and "Does it?" in html and "Yes, by 40%. Second." in html
    assert Answer("Q", ["<script>"])._repr_html_().count("&lt;script&gt;") == 1
    # an answer without numbers names no headline metrics (the run records refuse an empty list)
    assert Answer("Q", ["Nothing to fit."]).to_metrics() == {"report.headline": "Nothing to fit."}
    assert Answer("Q", []).to_metrics() == {}
