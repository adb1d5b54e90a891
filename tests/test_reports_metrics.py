"""record(): what is written to metrics.json, so reruns are byte-identical
(no kernel is started in this file)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from workbench.reports import metrics as wm
from workbench.reports.html import format_value
from workbench.reports.metrics import DIGITS, clean_value, record, recorded


@pytest.fixture
def metrics_file(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    monkeypatch.setenv(wm.ENV_VAR, str(path))
    return path


def test_floats_are_rounded_to_six_significant_digits():
    assert DIGITS == 6
    assert clean_value("x", 0.12345678901) == 0.123457
    assert clean_value("x", 98765.4321) == 98765.4
    assert clean_value("x", 123456789.0) == 123457000.0
    assert clean_value("x", -2.500000049e-7) == -2.5e-7
    assert clean_value("x", 1 / 3) == 0.333333


def test_values_that_differ_in_the_last_bits_are_recorded_identically():
    base = 0.7955421199
    for k in range(1, 50):
        assert clean_value("x", base * (1 + k * 1e-12)) == clean_value("x", base)
    assert clean_value("x", 0.1 + 0.2) == clean_value("x", 0.3)


def test_integers_strings_and_bools():
    assert clean_value("n", 12345678901234) == 12345678901234  # integers are exact, never rounded
    assert clean_value("n", np.int64(7)) == 7 and type(clean_value("n", np.int64(7))) is int
    assert clean_value("b", True) == 1 and clean_value("b", False) == 0
    assert clean_value("s", "1997-09-30") == "1997-09-30"
    assert type(clean_value("f", np.float32(0.5))) is float


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), np.nan, np.float64("inf"), None])
def test_non_finite_numbers_are_recorded_as_null(value):
    assert clean_value("x", value) is None
    assert format_value(clean_value("x", value)) == "n/a"


def test_negative_zero_is_zero():
    assert math.copysign(1, clean_value("x", -0.0)) == 1.0
    assert json.dumps(clean_value("x", -1e-300 * 1e-300)) == "0.0"


def test_a_headline_without_metrics_is_recorded():
    """A report that skips its analysis answers in words: no headline metrics."""
    assert clean_value("report.headline_metrics", "") == ""
    assert clean_value("report.headline", "Nothing to fit: no purchases.") == "Nothing to fit: no purchases."


@pytest.mark.parametrize(("name", "value", "error", "match"), [
    ("has space", 1, ValueError, "non-empty dotted name without spaces"),
    ("", 1, ValueError, "non-empty dotted name"),
    ("x", [1, 2], TypeError, "metric 'x': value \\[1, 2\\] \\(list\\) is not a number or a string"),
    ("x", {"a": 1}, TypeError, "is not a number or a string"),
    ("report.headline", "  ", ValueError, "metric 'report.headline' must not be empty"),
])
def test_bad_metrics_are_refused_clearly(name, value, error, match):
    with pytest.raises(error, match=match):
        clean_value(name, value)


def test_record_writes_standard_json_sorted_and_stable(metrics_file):
    record("b.value", 2 / 3)
    record({"a.nan": float("nan"), "c.text": "x", "a.inf": float("-inf")})
    text = metrics_file.read_text()
    assert text == '{\n  "a.inf": null,\n  "a.nan": null,\n  "b.value": 0.666667,\n  "c.text": "x"\n}\n'
    assert json.loads(text) == recorded()
    assert not list(metrics_file.parent.glob("*.part"))
    # recording the same values again gives the same bytes
    record("b.value", 2 / 3 * (1 + 1e-13))
    assert metrics_file.read_text() == text


def test_record_without_a_runner_keeps_values_in_the_session(monkeypatch):
    monkeypatch.delenv(wm.ENV_VAR, raising=False)
    monkeypatch.setattr(wm, "_session", {})
    assert record("x.y", float("nan")) is None
    assert recorded() == {"x.y": None}


def test_the_runner_reads_back_what_record_wrote(tmp_path):
    """The runner re-cleans metrics.json (a notebook may write it by hand) with the same rules."""
    from workbench.reports.runner import _read_metrics

    path = tmp_path / "metrics.json"
    path.write_text('{"a": 0.12345678, "b": NaN, "c": null, "d": "t", "e": 3}')
    assert _read_metrics(path) == ({"a": 0.123457, "b": None, "c": None, "d": "t", "e": 3}, None)
    path.write_text('{"a": [1], "b": 1}')
    kept, problem = _read_metrics(path)
    assert kept == {"b": 1} and "values must be numbers, strings or null: a" in problem
    path.write_text("[1, 2]")
    assert _read_metrics(path)[1] == "metrics.json is list, not a mapping of names to values"
