"""A report notebook's declared parameters, and checking values against them.

A report notebook has exactly one cell tagged ``parameters`` holding only
literal assignments of the form::

    dataset: str = "sample"  # dataset folder or built-in name
    period: str = "month"  # KPI period: week or month
    top_n: int = 10  # how many segments to show

:func:`declared_parameters` reads that cell into :class:`Parameter` objects
(name, type, default, meaning) without running anything; :func:`bind` checks
values given by a user against them before any kernel starts and returns the
full set of values a run uses. Supported types: ``str``, ``int``, ``float``,
``bool``, ``list``, ``list[str]``/``list[int]``/``list[float]``/``list[bool]``,
``dict``, and any of them ``| None``. A comment may also state the allowed
values (``# one of: day, week, month``, ``# >= 1: ...``): see
:mod:`workbench.reports.parameter_rules`.

Values are read strictly: an ``int`` is written in decimal digits (``1_000``
is fine, ``0x10``, ``010`` as octal and ``1:30`` are not), a ``float`` must be
finite (``nan`` and ``inf`` are refused), in a YAML file as on a command line.
"""

from __future__ import annotations

import ast
import datetime as _dt
import difflib
import io
import math
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import yaml

from workbench.errors import ParameterError
from workbench.reports.errors import NotebookError
from workbench.reports.files import read_text
from workbench.reports.parameter_rules import Rule, parse_rule

PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"
_BASES = {"str", "int", "float", "bool", "list", "dict"}
_ITEMS = {"str", "int", "float", "bool"}
_INT_TEXT = re.compile(r"[-+]?[0-9]+(?:_[0-9]+)*")
_FLOAT_TEXT = re.compile(r"[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)(?:[eE][-+]?[0-9]+)?")


class _ValueLoader(yaml.SafeLoader):
    """YAML for parameter values: integers only in decimal digits and floats
    only in decimal notation (YAML 1.1 also reads ``0x10``, ``010`` and
    ``1:30`` as numbers, which a typo should never silently become)."""


_ValueLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_ValueLoader.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(f"^{_INT_TEXT.pattern}$"), list("-+0123456789"))
_ValueLoader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(f"^{_FLOAT_TEXT.pattern}$"), list("-+.0123456789"))
_ValueLoader.add_constructor("tag:yaml.org,2002:int", lambda loader, node: int(loader.construct_scalar(node).replace("_", "")))
_ValueLoader.add_constructor("tag:yaml.org,2002:float", lambda loader, node: float(loader.construct_scalar(node).replace("_", "")))


def load_yaml(text: str):
    """YAML text read with the strict number rules above."""
    return yaml.load(text, Loader=_ValueLoader)  # noqa: S506 - a SafeLoader subclass


# --------------------------------------------------------------------- types
@dataclass(frozen=True)
class ParamType:
    """A parsed annotation: a base type, a list item type, and whether None is allowed."""

    base: str
    item: str | None = None
    nullable: bool = False

    def __str__(self) -> str:
        text = f"{self.base}[{self.item}]" if self.item else self.base
        return f"{text} | None" if self.nullable else text

    @classmethod
    def parse(cls, node: ast.expr) -> ParamType:
        """From an annotation's AST; raises ValueError naming what is not supported."""
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            sides = [node.left, node.right]
            nones = [s for s in sides if isinstance(s, ast.Constant) and s.value is None]
            if len(nones) != 1:
                raise ValueError("a union must be `T | None`")
            inner = cls.parse(sides[0] if sides[1] in nones else sides[1])
            return cls(inner.base, inner.item, True)
        if isinstance(node, ast.Name) and node.id in _BASES:
            return cls(node.id)
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "list":
            if isinstance(node.slice, ast.Name) and node.slice.id in _ITEMS:
                return cls("list", node.slice.id)
        raise ValueError(
            f"type `{ast.unparse(node)}` is not supported (use str, int, float, bool, list, "
            "list[str], list[int], list[float], list[bool], dict, or one of them `| None`)"
        )

    def check(self, value: Any) -> Any:
        """``value`` converted to this type where that is lossless, else ValueError."""
        if value is None:
            if self.nullable:
                return None
            raise ValueError("None is not allowed (the type is not `| None`)")
        return _check_base(self.base, value, self.item)


def _check_base(base: str, value: Any, item: str | None = None) -> Any:
    if base == "str":
        if isinstance(value, str):
            return value
        if isinstance(value, (_dt.date, _dt.datetime)):  # YAML turns 1997-09-30 into a date
            return value.isoformat()
        raise ValueError(f"expected a string, got {_kind(value)}")
    if base == "bool":
        if isinstance(value, bool):
            return value
        raise ValueError(f"expected true or false, got {_kind(value)}")
    if base == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ValueError(f"expected a whole number in decimal digits, got {_kind(value)}")
    if base == "float":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ValueError(f"expected a finite number, got {value!r}")
            return float(value)
        if isinstance(value, str) and value.strip().lower().lstrip("+-.") in ("nan", "inf", "infinity"):
            raise ValueError(f"expected a finite number, got {value!r}")
        raise ValueError(f"expected a number, got {_kind(value)}")
    if base == "list":
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"expected a list, got {_kind(value)}")
        if item is None:
            return list(value)
        out = []
        for i, v in enumerate(value):
            try:
                out.append(_check_base(item, v))
            except ValueError as exc:
                raise ValueError(f"item {i}: {exc}") from None
        return out
    if base == "dict":
        if isinstance(value, dict):
            return dict(value)
        raise ValueError(f"expected a mapping, got {_kind(value)}")
    raise ValueError(f"unknown type {base}")  # pragma: no cover - parse() refuses these


def _kind(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


# --------------------------------------------------------------------- parameters
@dataclass(frozen=True)
class Parameter:
    """One declared parameter of a report notebook."""

    name: str
    type: ParamType
    default: Any
    default_source: str
    meaning: str
    rule: Rule | None = None

    def check(self, value: Any) -> Any:
        """``value`` converted to the declared type and checked against the rule, else ValueError."""
        try:
            value = self.type.check(value)
        except ValueError as exc:
            raise ValueError(f"parameter {self.name!r} is {self.type}: {exc}") from None
        if self.rule is not None:
            try:
                self.rule.check(value)
            except ValueError as exc:
                raise ValueError(f"parameter {self.name!r} {exc}") from None
        return value

    def parse_text(self, text: str) -> Any:
        """A value typed on the command line (``-p NAME VALUE``), converted to the type.

        Strings are taken as written; an ``int`` must be decimal digits
        (``1_000`` allowed), a ``float`` a finite decimal number (``1e-3``);
        other types are read as YAML (``true``, ``[a, b]``, ``{k: v}``); a
        list also accepts ``a,b``; ``null`` or ``None`` gives None where the
        type allows it.
        """
        if self.type.nullable and text.strip() in ("null", "None", "~"):
            return None
        base = self.type.base
        if base == "str":
            return self.check(text)
        t = text.strip()
        if base == "int":
            return self.check(int(t.replace("_", "")) if _INT_TEXT.fullmatch(t) else text)
        if base == "float":
            return self.check(float(t.replace("_", "")) if _FLOAT_TEXT.fullmatch(t) else text)
        try:
            value = load_yaml(text)
        except yaml.YAMLError:
            value = text
        if isinstance(value, str) and base == "list":
            value = [load_yaml(p.strip()) if self.type.item != "str" else p.strip() for p in text.split(",") if p.strip()]
        return self.check(value)


def _comments(source: str) -> dict[int, str]:
    out = {}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                out[tok.start[0]] = tok.string.lstrip("#").strip()
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return out


def parse_parameters_source(source: str) -> tuple[list[Parameter], list[str]]:
    """Parameters declared in a parameters cell's source, and every rule it breaks."""
    problems: list[str] = []
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return [], [f"line {exc.lineno}: not valid Python ({exc.msg}); the cell must hold only `name: type = literal  # meaning` lines"]
    comments = _comments(source)
    params: list[Parameter] = []
    seen: set[str] = set()
    for node in tree.body:
        where = f"line {node.lineno}"
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None):
            problems.append(
                f"{where}: `{ast.get_source_segment(source, node)}` is not an assignment of the form "
                "`name: type = literal  # meaning`"
            )
            continue
        name = node.target.id
        if name in seen:
            problems.append(f"{where}: parameter {name!r} is declared twice")
        seen.add(name)
        try:
            ptype = ParamType.parse(node.annotation)
        except ValueError as exc:
            problems.append(f"{where}: parameter {name!r}: {exc}")
            continue
        default_source = ast.get_source_segment(source, node.value) or ast.unparse(node.value)
        try:
            default = ast.literal_eval(node.value)
        except (ValueError, SyntaxError, TypeError):
            problems.append(f"{where}: parameter {name!r}: default `{default_source}` is not a literal (write the value itself)")
            continue
        try:
            default = ptype.check(default)
        except ValueError as exc:
            problems.append(f"{where}: parameter {name!r}: default `{default_source}` does not fit its type {ptype}: {exc}")
            continue
        meaning = next((comments[i] for i in range(node.lineno, (node.end_lineno or node.lineno) + 1) if i in comments), "")
        if not meaning:
            problems.append(f"{where}: parameter {name!r} has no `# meaning` comment after it")
        rule, rule_problems = parse_rule(meaning)
        problems += [f"{where}: parameter {name!r}: the comment {p}" for p in rule_problems]
        if rule is not None:
            if not rule.applies_to(ptype.base, ptype.item):
                problems.append(f"{where}: parameter {name!r}: the rule `{rule.text}` does not apply to type {ptype}")
                continue
            try:
                rule = rule.typed(ptype.base, ptype.item)
                rule.check(default)
            except ValueError as exc:
                problems.append(f"{where}: parameter {name!r}: default `{default_source}` breaks its own rule: {exc}")
                continue
        params.append(Parameter(name, ptype, default, default_source, meaning, rule))
    return params, problems


def parameters_cells(nb) -> list[int]:
    """Indexes of the cells tagged ``parameters``."""
    return [i for i, c in enumerate(nb.cells) if PARAMETERS_TAG in c.get("metadata", {}).get("tags", [])]


def _read(notebook) -> tuple[Any, str]:
    if isinstance(notebook, nbformat.NotebookNode):
        return notebook, "notebook"
    path = Path(notebook)
    try:
        return nbformat.read(path, as_version=4), str(path)
    except FileNotFoundError:
        raise NotebookError(f"notebook {path} does not exist") from None
    except Exception as exc:  # nbformat raises several kinds on a broken file
        raise NotebookError(f"notebook {path} cannot be read as a notebook: {exc}") from None


def declared_parameters(notebook) -> list[Parameter]:
    """The parameters a notebook (path or NotebookNode) declares; NotebookError if its
    parameters cell breaks the rules."""
    nb, where = _read(notebook)
    cells = parameters_cells(nb)
    if len(cells) != 1:
        found = "no cell" if not cells else f"{len(cells)} cells (cells {', '.join(str(i + 1) for i in cells)})"
        raise NotebookError(
            f"{where}: a report notebook needs exactly one cell tagged `parameters`; found {found}. "
            "Tag one code cell `parameters` (JupyterLab: property inspector, cell tags)."
        )
    cell = nb.cells[cells[0]]
    if cell.cell_type != "code":
        raise NotebookError(f"{where}: the cell tagged `parameters` (cell {cells[0] + 1}) must be a code cell")
    params, problems = parse_parameters_source(cell.source)
    if problems:
        raise NotebookError(f"{where}: the parameters cell breaks the rules:\n" + "\n".join(f"  - {p}" for p in problems))
    return params


def describe_parameters(params: list[Parameter], title: str | None = None) -> str:
    """A readable, aligned table of parameters: name, type, default and meaning."""
    lines = [title] if title else []
    if not params:
        lines.append("  (this notebook declares no parameters)")
        return "\n".join(lines)
    rows = [(p.name, str(p.type), p.default_source, p.meaning) for p in params]
    widths = [max(len(r[i]) for r in rows + [("name", "type", "default", "")]) for i in range(3)]
    head = ("name", "type", "default", "meaning")
    for r in [head, *rows]:
        lines.append("  " + "  ".join(r[i].ljust(widths[i]) for i in range(3)) + "  " + r[3])
    return "\n".join(lines)


def bind(params: list[Parameter], given: dict | None = None, texts: dict | None = None, *, notebook: str = "the notebook") -> dict:
    """Check values against declared parameters and return every parameter's value.

    ``given`` holds typed values (Python or YAML); ``texts`` holds values as
    typed on a command line (strings; they override ``given``). Every problem
    is reported at once as a :class:`ParameterError` that lists the notebook's
    parameters.
    """
    by_name = {p.name: p for p in params}
    values = {p.name: p.default for p in params}
    problems = []
    for source, items in (("given", given or {}), ("text", texts or {})):
        if not isinstance(items, dict):
            raise ParameterError(f"parameters must be a mapping of names to values, got {type(items).__name__}")
        for name, value in items.items():
            p = by_name.get(name)
            if p is None:
                close = difflib.get_close_matches(str(name), list(by_name), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                problems.append(f"unknown parameter {name!r}{hint}")
                continue
            try:
                values[name] = p.parse_text(value) if source == "text" else p.check(value)
            except ValueError as exc:
                problems.append(str(exc))
    if problems:
        listing = describe_parameters(params, f"{notebook} declares these parameters:")
        raise ParameterError(
            f"{notebook}: parameters refused, nothing was run:\n"
            + "\n".join(f"  - {p}" for p in problems)
            + f"\n{listing}\nGive them as -p NAME VALUE, or in a YAML file of NAME: VALUE lines with -f."
        )
    return values


def load_parameters_file(path) -> dict:
    """A YAML file of ``name: value`` lines, as a dict; ParameterError if it is not one."""
    p = Path(path)
    text = read_text(p, "parameters file", ParameterError)
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        raise ParameterError(f"parameters file {p} is not valid YAML: {' '.join(str(exc).split())}") from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise ParameterError(f"parameters file {p} must be a mapping of NAME: VALUE lines, got {type(data).__name__}")
    return data


__all__ = [
    "INJECTED_TAG",
    "PARAMETERS_TAG",
    "ParamType",
    "Parameter",
    "bind",
    "declared_parameters",
    "describe_parameters",
    "load_parameters_file",
    "load_yaml",
    "parameters_cells",
    "parse_parameters_source",
]
