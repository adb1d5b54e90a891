"""Parameters: reading the parameters cell, checking values before any kernel
starts, and the messages a user sees (no kernel is started in this file)."""

from __future__ import annotations

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
        ({"n_boot": "many"}, "parameter 'n_boot' is int: expected a whole number, got 'many' (str)"),
        ({"n_boot": 2.5}, "parameter 'n_boot' is int: expected a whole number, got 2.5"),
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
    assert main(["run", "dmeo"]) == 1
    err = capsys.readouterr().err
    assert "notebook 'dmeo' not found" in err and "demo" in err
