"""Finding report notebooks and checking them against the notebook rules.

The project root is :func:`workbench.data.paths.project_root`. A notebook is named
either by a path to an ``.ipynb`` file or by its name (``data_overview``),
which is looked up in ``<root>/notebooks/``.

The rules (:func:`check_notebook`): exactly one cell tagged ``parameters``,
holding only ``name: type = literal  # meaning`` lines; stored without outputs
or execution counts (strip them with ``nbstripout notebooks/*.ipynb``).
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat

from workbench.data.paths import project_root as find_project_root  # one notion of the project root
from workbench.reports.errors import NotebookError
from workbench.reports.parameters import declared_parameters


def notebook_root(notebook: Path) -> Path:
    """The project root of a notebook: the parent of its ``notebooks/`` folder,
    else the nearest folder above it holding ``notebooks/``, else the one
    found from the current folder, else the notebook's own folder."""
    nb = Path(notebook).resolve()
    if nb.parent.name == "notebooks":
        return nb.parent.parent
    for folder in nb.parents:
        if (folder / "notebooks").is_dir():
            return folder
    cwd_root = find_project_root()
    return cwd_root if (cwd_root / "notebooks").is_dir() else nb.parent


def list_notebooks(root=None) -> list[Path]:
    """The report notebooks of a project, sorted by name."""
    folder = find_project_root(root) / "notebooks"
    return sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith("."))


def resolve_notebook(ref, root=None) -> Path:
    """A notebook path from a path or a name; NotebookError naming the
    available notebooks if there is none."""
    text = str(ref)
    path = Path(text).expanduser()
    if path.is_file():
        if path.suffix != ".ipynb":
            raise NotebookError(f"{path} is not a notebook (expected an .ipynb file)")
        return path.resolve()
    base = find_project_root(root)
    looked = path
    if len(path.parts) == 1:  # a bare name: look in <root>/notebooks/
        looked = base / "notebooks" / (text if text.endswith(".ipynb") else f"{text}.ipynb")
        if looked.is_file():
            return looked.resolve()
    available = ", ".join(p.stem for p in list_notebooks(base)) or "none"
    raise NotebookError(f"notebook {text!r} not found (looked for {looked}); notebooks in {base / 'notebooks'}: {available}")


def check_notebook(path) -> list[str]:
    """Every way a notebook breaks the report-notebook rules (empty if none)."""
    path = Path(path)
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:
        return [f"cannot be read as a notebook: {exc}"]
    problems = []
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as exc:
        problems.append(f"not a valid notebook: {str(exc).splitlines()[0]}")
    try:
        declared_parameters(nb)
    except NotebookError as exc:
        problems.append(str(exc).replace("notebook: ", "", 1))
    with_outputs = [i + 1 for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count") is not None)]
    if with_outputs:
        shown = ", ".join(map(str, with_outputs[:10])) + (" ..." if len(with_outputs) > 10 else "")
        problems.append(f"stored with outputs or execution counts in cell(s) {shown}: run `nbstripout {path}` before committing")
    return problems


__all__ = ["check_notebook", "describe_notebook", "describe_notebooks", "find_project_root", "list_notebooks", "notebook_root", "resolve_notebook"]


def describe_notebook(ref, root=None) -> str:
    """What ``workbench run NOTEBOOK --help`` prints: the notebook and its parameters."""
    from workbench.reports.parameters import describe_parameters

    path = resolve_notebook(ref, root)
    params = declared_parameters(path)
    shown = os.path.relpath(path) if not os.path.relpath(path).startswith("..") else str(path)
    return describe_parameters(params, f"parameters of {shown}:") + "\nGive them as -p NAME VALUE (repeatable) or in a YAML file of NAME: VALUE lines with -f."


def describe_notebooks(root=None) -> str:
    """Every notebook of the project with its parameters, or the rule it breaks."""
    from workbench.reports.parameters import describe_parameters

    out = []
    for path in list_notebooks(root):
        try:
            out.append(describe_parameters(declared_parameters(path), f"{path.stem}:"))
        except NotebookError as exc:
            out.append(f"{path.stem}: breaks the notebook rules: {exc}")
    return "\n\n".join(out) or "no notebooks found"
