"""Parameters: reading the parameters cell, checking values before any kernel
starts, and the messages a user sees (no kernel is started in this file)."""

from __future__ import annotations

import re

import pytest

from workbench.cli import main
from workbench.errors import ParameterError, WorkbenchError
from workbench.reports.errors import NotebookError
from workbench.reports.parameters import bind, declared_parameters, load_parameters_file, parse_parameters_source
from workbench.reports.runner import run_notebook

PARAMS = '''\
dataset: str = "sample"  # dataset folder or built-in name
n_boot: int = 200  # bootstrap draws
alpha: float = 0.05  # significance level
verbose: bool = False  # print details
segments: list[str] = ["a", "b"]  # segments to show
cutoff: str | None = None  # last day (YYYY-MM-DD) or none
'''


@pytest.fixture
def params():
    declared, problems = parse_parameters_source(PARAMS)
    assert problems == []
    return declared


def test_parameters_cell_is_read_with_types_defaults_and_meanings(params):
    got = {p.name: (str(p.type), p.default, p.meaning) for p in params}
    assert got == {
        "dataset": ("str", "sample", "dataset folder or built-in name"),
        "n_boot": ("int", 200, "bootstrap draws"),
        "alpha": ("float", 0.05, "significance level"),
        "verbose": ("bool", False, "print details"),
        "segments": ("list[str]", ["a", "b"], "segments to show"),
        "cutoff": ("str | None", None, "last day (YYYY-MM-DD) or none"),
    }
    assert [p.name for p in params] == ["dataset", "n_boot", "alpha", "verbose", "segments", "cutoff"]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("n: int = 3\n", "has no `# meaning` comment"),
        ("n: int = len('abc')  # length\n", "is not a literal"),
        ("n: tuple = (1, 2)  # pair\n", "type `tuple` is not supported"),
        ("n = 3  # untyped\n", "is not an assignment of the form"),
        ("import os  # no\n", "is not an assignment of the form"),
        ("n: int = 3  # a\nn: int = 4  # b\n", "declared twice"),
        ('n: int = "three"  # a number\n', "does not fit its type int"),
        ("%matplotlib inline\n", "not valid Python"),
    ],
)
def test_parameters_cell_rules_are_enforced(source, expected):
    _, problems = parse_parameters_source(source)
    assert any(expected in p for p in problems), problems


def test_a_notebook_needs_exactly_one_parameters_cell(tmp_path, make_notebook):
    nb = make_notebook(tmp_path / "notebooks" / "ok.ipynb", "n: int = 1  # n", ["print(n)"])
    assert [p.name for p in declared_parameters(nb)] == ["n"]

    import nbformat

    doc = nbformat.read(nb, as_version=4)
    doc.cells[2].metadata["tags"] = ["parameters"]
    nbformat.write(doc, nb)
    with pytest.raises(NotebookError, match="exactly one cell tagged `parameters`; found 2 cells"):
        declared_parameters(nb)
    for c in doc.cells:
        c.metadata["tags"] = []
    nbformat.write(doc, nb)
    with pytest.raises(NotebookError, match="found no cell"):
        declared_parameters(nb)


def test_unknown_name_is_refused_with_the_parameter_listing(params):
    with pytest.raises(ParameterError) as info:
        bind(params, {"datset": "x"}, notebook="notebooks/demo.ipynb")
    msg = str(info.value)
    assert "unknown parameter 'datset' (did you mean 'dataset'?)" in msg
    # the listing: every parameter with its type, default and meaning
    for line in ("dataset   str", "n_boot    int", '"sample"', "200", "bootstrap draws", "list[str]", "segments to show"):
        assert line in msg
    assert "nothing was run" in msg
    assert isinstance(info.value, WorkbenchError)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"n_boot": "many"}, "parameter 'n_boot' is int: expected a whole number in decimal digits, got 'many' (str)"),
        ({"n_boot": 2.5}, "parameter 'n_boot' is int: expected a whole number in decimal digits, got 2.5"),
        ({"alpha": float("nan")}, "parameter 'alpha' is float: expected a finite number, got nan"),
        ({"alpha": float("-inf")}, "parameter 'alpha' is float: expected a finite number, got -inf"),
        ({"n_boot": True}, "parameter 'n_boot' is int"),
        ({"alpha": "0.1"}, "parameter 'alpha' is float: expected a number"),
        ({"verbose": "yes"}, "parameter 'verbose' is bool"),
        ({"segments": "a"}, "parameter 'segments' is list[str]: expected a list"),
        ({"segments": ["a", 3]}, "item 1: expected a string"),
        ({"dataset": None}, "None is not allowed"),
        ({"dataset": 7}, "parameter 'dataset' is str: expected a string, got 7 (int)"),
    ],
)
def test_wrong_types_are_refused(params, given, expected):
    with pytest.raises(ParameterError, match=expected.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")):
        bind(params, given)


def test_all_problems_are_reported_at_once(params):
    with pytest.raises(ParameterError) as info:
        bind(params, {"bogus": 1, "n_boot": "x"}, {"alpha": "high"})
    msg = str(info.value)
    assert "unknown parameter 'bogus'" in msg and "'n_boot' is int" in msg and "'alpha' is float" in msg


def test_values_typed_on_a_command_line_are_converted(params):
    values = bind(params, texts={"n_boot": "1_000", "alpha": "1e-3", "verbose": "true", "segments": "x, y", "cutoff": "null", "dataset": "123"})
    assert values == {"dataset": "123", "n_boot": 1000, "alpha": 0.001, "verbose": True, "segments": ["x", "y"], "cutoff": None}
    assert bind(params, texts={"segments": "[p, q]"})["segments"] == ["p", "q"]
    # defaults fill in what is not given, typed values and texts combine (texts win)
    assert bind(params, {"n_boot": 5}, {"n_boot": "6"})["n_boot"] == 6


def test_a_valid_yaml_parameters_file(tmp_path, params):
    f = tmp_path / "params.yaml"
    f.write_text("dataset: cdnow-sample\nn_boot: 50\nalpha: 0.01\nverbose: yes\nsegments: [x]\ncutoff: 1997-09-30\n")
    given = load_parameters_file(f)
    values = bind(params, given)
    # YAML reads 1997-09-30 as a date; a str parameter gets it back as text
    assert values == {"dataset": "cdnow-sample", "n_boot": 50, "alpha": 0.01, "verbose": True, "segments": ["x"], "cutoff": "1997-09-30"}


def test_a_parameters_file_that_is_not_a_mapping_is_refused(tmp_path):
    f = tmp_path / "params.yaml"
    f.write_text("- a\n- b\n")
    with pytest.raises(ParameterError, match="must be a mapping of NAME: VALUE"):
        load_parameters_file(f)
    with pytest.raises(ParameterError, match="does not exist"):
        load_parameters_file(tmp_path / "missing.yaml")


def test_refused_parameters_start_nothing(tmp_path, make_notebook):
    nb = make_notebook(tmp_path / "notebooks" / "demo.ipynb", PARAMS, ["print(dataset)"])
    reports = tmp_path / "reports"
    with pytest.raises(ParameterError, match="unknown parameter 'nboot'"):
        run_notebook(nb, {"nboot": 3}, reports_dir=reports, progress=False)
    with pytest.raises(ParameterError, match="'alpha' is float"):
        run_notebook(nb, texts={"alpha": "abc"}, reports_dir=reports, progress=False)
    assert not reports.exists()  # no run folder was ever made, so no kernel was started


def test_cli_run_help_lists_the_notebooks_parameters(tmp_path, make_notebook, capsys, monkeypatch):
    make_notebook(tmp_path / "notebooks" / "demo.ipynb", PARAMS, ["print(dataset)"])
    monkeypatch.chdir(tmp_path)
    assert main(["run", "demo", "--help"]) == 0
    out = capsys.readouterr().out
    assert "usage: workbench run" in out
    assert "parameters of notebooks/demo.ipynb:" in out
    assert "n_boot" in out and "200" in out and "bootstrap draws" in out and "list[str]" in out


def test_cli_run_refuses_bad_parameters_with_status_2(tmp_path, make_notebook, capsys, monkeypatch):
    make_notebook(tmp_path / "notebooks" / "demo.ipynb", PARAMS, ["print(dataset)"])
    monkeypatch.chdir(tmp_path)
    assert main(["run", "demo", "-p", "n_bot", "3", "-p", "alpha", "x"]) == 2
    err = capsys.readouterr().err
    assert "unknown parameter 'n_bot' (did you mean 'n_boot'?)" in err
    assert "'alpha' is float" in err
    assert "bootstrap draws" in err  # the listing
    assert not (tmp_path / "reports").exists()


def test_cli_run_names_the_available_notebooks_for_a_wrong_name(tmp_path, make_notebook, capsys, monkeypatch):
    make_notebook(tmp_path / "notebooks" / "demo.ipynb", PARAMS, ["print(dataset)"])
    monkeypatch.chdir(tmp_path)
    assert main(["run", "dmeo"]) == 2
    err = capsys.readouterr().err
    assert "notebook 'dmeo' not found" in err and "demo" in err


# ----------------------------------------------------------------- strict reading of numbers
@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        ({"alpha": "nan"}, "'alpha' is float: expected a finite number, got 'nan'"),
        ({"alpha": "inf"}, "'alpha' is float: expected a finite number, got 'inf'"),
        ({"alpha": "-Infinity"}, "'alpha' is float: expected a finite number"),
        ({"n_boot": "0x10"}, "'n_boot' is int: expected a whole number in decimal digits, got '0x10'"),
        ({"n_boot": "0o17"}, "'n_boot' is int: expected a whole number in decimal digits, got '0o17'"),
        ({"n_boot": "1:30"}, "'n_boot' is int: expected a whole number in decimal digits, got '1:30'"),
        ({"n_boot": "1e3"}, "'n_boot' is int: expected a whole number in decimal digits, got '1e3'"),
        ({"alpha": "0x1p-3"}, "'alpha' is float: expected a number, got '0x1p-3'"),
    ],
)
def test_command_line_numbers_are_read_strictly(params, texts, expected):
    with pytest.raises(ParameterError, match=re.escape(expected)):
        bind(params, texts=texts)


def test_yaml_file_numbers_are_read_strictly(tmp_path, params):
    f = tmp_path / "p.yaml"
    f.write_text("n_boot: 010\nalpha: 1e-2\n")
    assert bind(params, load_parameters_file(f))["n_boot"] == 10  # decimal, not octal 8
    assert bind(params, load_parameters_file(f))["alpha"] == 0.01
    for text, expected in (("n_boot: 0x10\n", "got '0x10'"), ("n_boot: 1:30\n", "got '1:30'"), ("alpha: .nan\n", "finite number"),
                           ("alpha: -.inf\n", "finite number")):
        f.write_text(text)
        with pytest.raises(ParameterError, match=re.escape(expected)):
            bind(params, load_parameters_file(f))


# ----------------------------------------------------------------- rules in the comments
RULES = """\
period: str = "month"  # one of: day, week, month: period of the KPI trends
calibration_end: str = ""  # date (YYYY-MM-DD) or empty: last day of calibration
n_boot: int = 200  # >= 1: bootstrap draws
alpha: float = 0.05  # significance level; between 0 and 1
horizon: float = 52.0  # > 0 and <= 520: weeks ahead
sizes: list[int] = [1, 2]  # one of: 1, 2, 4 or 8: group sizes
floor: float | None = None  # > 0: optional floor
note: str = "free text"  # any text, with a colon: fine
"""


@pytest.fixture
def ruled():
    declared, problems = parse_parameters_source(RULES)
    assert problems == []
    return declared


def test_rules_are_read_from_the_comments(ruled):
    rules = {p.name: p.rule for p in ruled}
    assert rules["period"].choices == ("day", "week", "month") and rules["period"].text == "one of: day, week, month"
    assert rules["calibration_end"].kind == "date" and rules["calibration_end"].allow_empty
    assert (rules["n_boot"].low, rules["n_boot"].low_inclusive, rules["n_boot"].high) == (1, True, None)
    assert (rules["alpha"].low, rules["alpha"].high) == (0, 1)
    assert (rules["horizon"].low, rules["horizon"].low_inclusive, rules["horizon"].high, rules["horizon"].high_inclusive) == (0, False, 520, True)
    assert rules["sizes"].choices == (1, 2, 4, 8)
    assert rules["note"] is None
    # the meaning shown in parameter tables is the comment as written
    assert next(p for p in ruled if p.name == "n_boot").meaning == ">= 1: bootstrap draws"


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        ({"period": "wek"}, "parameter 'period' must be one of 'day', 'week', 'month', got 'wek' (did you mean 'week'?)"),
        ({"calibration_end": "1997-13-01"}, "parameter 'calibration_end' must be a date written YYYY-MM-DD or \"\" (empty), got '1997-13-01'"),
        ({"calibration_end": "30/09/1997"}, "must be a date written YYYY-MM-DD"),
        ({"n_boot": "0"}, "parameter 'n_boot' must be >= 1, got 0"),
        ({"alpha": "1.5"}, "parameter 'alpha' must be between 0 and 1, got 1.5"),
        ({"alpha": "-0.01"}, "parameter 'alpha' must be between 0 and 1, got -0.01"),
        ({"horizon": "0"}, "parameter 'horizon' must be > 0 and <= 520, got 0.0"),
        ({"horizon": "520.5"}, "parameter 'horizon' must be > 0 and <= 520, got 520.5"),
        ({"sizes": "1,3"}, "parameter 'sizes' item 1: must be one of 1, 2, 4, 8, got 3"),
        ({"floor": "0"}, "parameter 'floor' must be > 0, got 0.0"),
    ],
)
def test_values_outside_a_rule_are_refused(ruled, texts, expected):
    with pytest.raises(ParameterError, match=re.escape(expected)):
        bind(ruled, texts=texts)


def test_values_inside_the_rules_pass(ruled):
    values = bind(ruled, texts={"period": "week", "calibration_end": "1997-09-30", "n_boot": "1", "alpha": "1", "horizon": "520",
                                "sizes": "8,1", "floor": "null"})
    assert values["period"] == "week" and values["calibration_end"] == "1997-09-30" and values["alpha"] == 1.0
    assert values["sizes"] == [8, 1] and values["floor"] is None
    assert bind(ruled, {"calibration_end": ""})["calibration_end"] == ""  # "or empty"
    import datetime as dt

    assert bind(ruled, {"calibration_end": dt.date(1997, 9, 30)})["calibration_end"] == "1997-09-30"  # YAML's date


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('p: str = "a"  # one of day, week: period\n', "starts like a rule but is not one"),
        ('p: str = "x"  # one of: a, b\n', "default `\"x\"` breaks its own rule"),
        ("n: int = 0  # >= 1: draws\n", "default `0` breaks its own rule: must be >= 1, got 0"),
        ("b: bool = True  # >= 1: flag\n", "the rule `>= 1` does not apply to type bool"),
        ('d: str = ""  # date: the day\n', "default `\"\"` breaks its own rule"),
        ("n: int = 3  # > 1 and > 2: n\n", "give one lower and one upper bound"),
        ("n: int = 3  # between 5 and 1: n\n", "the lower end is above the upper end"),
        ("n: int = 3  # one of: a, b: n\n", "the choices must be int values"),
        ("n: int = 3  # >= 1; <= 5\n", "states 2 rules"),
        ("n: int = 3  # >> 1: n\n", "starts like a rule but is not one"),
    ],
)
def test_broken_rules_are_notebook_errors(source, expected):
    _, problems = parse_parameters_source(source)
    assert any(expected in p for p in problems), problems


def test_plain_meanings_are_not_mistaken_for_rules():
    source = ('a: str = "x"  # one of the segments to show\n'
              'b: str = "y"  # date the calibration ends, e.g. 1997-09-30\n'
              'c: str = "z"  # churn rule: cancel (cancel events only) or inactivity\n'
              'd: float = 0.5  # between-group share\n'
              'e: int = 1  # at least one per user; above the median\n')
    declared, problems = parse_parameters_source(source)
    assert problems == [] and all(p.rule is None for p in declared)


WORDED = """\
draws: int = 1000  # parameter draws behind every band; at least 100
horizon: float = 52.0  # CLV horizon in weeks; above 0
share: float = 0.2  # at least 0 and below 1: market share
cap: int = 5  # at most 10: cap
cut: float = -1.0  # below 0 and at least -5: a cut
"""


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        ({"draws": "99"}, "parameter 'draws' must be at least 100, got 99"),
        ({"horizon": "0"}, "parameter 'horizon' must be above 0, got 0.0"),
        ({"share": "1"}, "parameter 'share' must be at least 0 and below 1, got 1.0"),
        ({"share": "-0.1"}, "parameter 'share' must be at least 0 and below 1, got -0.1"),
        ({"cap": "11"}, "parameter 'cap' must be at most 10, got 11"),
        ({"cut": "0"}, "parameter 'cut' must be below 0 and at least -5, got 0.0"),
        ({"cut": "-5.5"}, "parameter 'cut' must be below 0 and at least -5, got -5.5"),
    ],
)
def test_bounds_written_in_words_are_rules(texts, expected):
    """`at least N`, `above N`, `at most N`, `below N`: the wording of the
    repository's notebooks ("...; at least 1") is checked as written."""
    declared, problems = parse_parameters_source(WORDED)
    assert problems == []
    with pytest.raises(ParameterError, match=re.escape(expected)):
        bind(declared, texts=texts)
    ok = bind(declared, texts={"draws": "100", "horizon": "0.5", "share": "0", "cap": "10", "cut": "-5"})
    assert ok == {"draws": 100, "horizon": 0.5, "share": 0.0, "cap": 10, "cut": -5.0}


def test_the_repository_notebooks_parameters_parse_with_rules(repo_root):
    """Every notebook's comments either state a rule that its default obeys or none."""
    from workbench.reports.notebooks import list_notebooks

    ruled = {}
    for nb in list_notebooks(repo_root):
        ruled[nb.stem] = {p.name for p in declared_parameters(nb) if p.rule}  # raises NotebookError on a broken rule
    # the reports state their rules (`one of: ...`, `at least 1`) in a form that is checked
    assert {"period", "max_cohorts"} <= ruled["data_overview"]
    assert {"churn", "churn_after_days", "planned_users_per_arm"} <= ruled["cocreation_retention"]


def test_cli_refuses_a_value_outside_a_rule_before_any_kernel(tmp_path, make_notebook, capsys, monkeypatch):
    make_notebook(tmp_path / "notebooks" / "demo.ipynb", RULES, ["raise SystemExit('a kernel ran')"])
    monkeypatch.chdir(tmp_path)
    assert main(["run", "demo", "-p", "period", "wek", "-p", "n_boot", "0"]) == 2
    err = capsys.readouterr().err
    assert "parameter 'period' must be one of 'day', 'week', 'month', got 'wek' (did you mean 'week'?)" in err
    assert "parameter 'n_boot' must be >= 1, got 0" in err
    assert "one of: day, week, month: period of the KPI trends" in err  # the notebook's parameter table
    assert not (tmp_path / "reports").exists()  # no run folder, so no kernel
    (tmp_path / "batches").mkdir()
    (tmp_path / "batches" / "b.yml").write_text("jobs:\n  - notebook: demo\n    grid: {period: [day, fortnight]}\n")
    assert main(["batch", "b"]) == 2
    err = capsys.readouterr().err
    assert "must be one of 'day', 'week', 'month', got 'fortnight'" in err and "nothing was run" in err
    assert not (tmp_path / "reports").exists()
