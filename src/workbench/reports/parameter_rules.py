"""Allowed values declared in a parameter's comment, checked before any kernel starts.

A parameter's ``# meaning`` comment may state a rule, either at its start
(then ``:`` and the meaning) or as a clause of its own after ``;``::

    period: str = "month"  # one of: day, week, month: period of the KPI trends
    calibration_end: str = ""  # date (YYYY-MM-DD) or empty: last day of calibration
    n_boot: int = 200  # >= 1: bootstrap draws
    alpha: float = 0.05  # significance level; between 0 and 1
    horizon: float = 52.0  # > 0 and <= 520: weeks ahead

Rules: ``one of: A, B, C`` (the colon is required; ``or`` may join the last
item; the item ``empty`` allows ""), ``date (YYYY-MM-DD)`` or ``date``
(optionally ``or empty``), ``>= N``, ``> N``, ``<= N``, ``< N`` (or in words:
``at least N``, ``above N``, ``at most N``, ``below N``), a lower and an upper
bound joined by ``and`` (``> 0 and <= 1``), and ``between A and B`` (both ends
included). A rule applies to a ``str``, ``int`` or ``float``
parameter and to each item of a list; ``None`` (for a ``| None`` type) always
passes. A clause that starts like a rule (``one of a, b``, ``<``, ``>``) but does
not parse is an error in the notebook, so a typo never silently drops a rule.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import re
from dataclasses import dataclass
from typing import Any

_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_REST = r"\s*(?::\s*(?P<rest>.*))?$"
_ONE_OF = re.compile(r"(?P<rule>one\s+of\s*:\s*(?P<items>[^:]+?))" + _REST, re.S | re.I)
_DATE = re.compile(r"(?P<rule>date(?:\s*\(\s*YYYY-MM-DD\s*\))?(?P<empty>\s+or\s+empty)?)" + _REST, re.S | re.I)
_OP = r">=|>|<=|<|at\s+least\b|at\s+most\b|above\b|below\b"
_BOUNDS = re.compile(rf"(?P<rule>(?P<op1>{_OP})\s*(?P<v1>{_NUM})(?:\s+and\s+(?P<op2>{_OP})\s*(?P<v2>{_NUM}))?)" + _REST, re.S | re.I)
#: the bounds in words, as comments are often written
_WORDS = {"at least": ">=", "at most": "<=", "above": ">", "below": "<"}
_BETWEEN = re.compile(rf"(?P<rule>between\s+(?P<lo>{_NUM})\s+and\s+(?P<hi>{_NUM}))" + _REST, re.S | re.I)
#: a clause like these is a rule with a typo (`one of day, week`), not a meaning
_LOOKS_LIKE_A_RULE = re.compile(r"(one\s+of\s*[^\s:,]+\s*,|[<>])", re.I)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class Rule:
    """Allowed values of one parameter, as written in its comment (``text``)."""

    text: str
    kind: str  # "choices", "date" or "range"
    choices: tuple = ()
    allow_empty: bool = False
    low: float | None = None
    low_inclusive: bool = True
    high: float | None = None
    high_inclusive: bool = True

    def applies_to(self, base: str, item: str | None) -> bool:
        t = item if base == "list" else base
        if self.kind == "date":
            return t == "str"
        if self.kind == "range":
            return t in ("int", "float")
        return t in ("str", "int", "float")

    def typed(self, base: str, item: str | None) -> Rule:
        """This rule with its choices converted to the parameter's type (ValueError if one does not fit)."""
        if self.kind != "choices":
            return self
        t = item if base == "list" else base
        convert = {"str": str, "int": int, "float": float}[t]
        try:
            return Rule(self.text, self.kind, tuple(convert(c) for c in self.choices), self.allow_empty)
        except ValueError:
            raise ValueError(f"rule `{self.text}`: the choices must be {t} values") from None

    def check(self, value: Any) -> None:
        """ValueError saying what is allowed if ``value`` breaks the rule (lists: each item)."""
        if isinstance(value, list):
            for i, v in enumerate(value):
                try:
                    self.check(v)
                except ValueError as exc:
                    raise ValueError(f"item {i}: {exc}") from None
            return
        if value is None or (value == "" and self.allow_empty):
            return
        if self.kind == "choices":
            if value not in self.choices:
                close = difflib.get_close_matches(str(value), [str(c) for c in self.choices], n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(f"must be {self.describe()}, got {value!r}{hint}")
        elif self.kind == "date":
            ok = isinstance(value, str) and _ISO_DATE.fullmatch(value)
            if ok:
                try:
                    _dt.date.fromisoformat(value)
                except ValueError:
                    ok = False
            if not ok:
                raise ValueError(f"must be {self.describe()}, got {value!r}")
        else:
            low_ok = self.low is None or (value >= self.low if self.low_inclusive else value > self.low)
            high_ok = self.high is None or (value <= self.high if self.high_inclusive else value < self.high)
            if not (low_ok and high_ok):
                raise ValueError(f"must be {self.describe()}, got {value!r}")

    def describe(self) -> str:
        if self.kind == "choices":
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        elif self.kind == "date":
            text = "a date written YYYY-MM-DD"
        else:
            text = self.text
        return text + (' or "" (empty)' if self.allow_empty else "")


def _bound(rule: Rule, op: str, value: float) -> Rule | None:
    """``rule`` with one more bound; None if the bound clashes with one already set."""
    if op.startswith(">"):
        if rule.low is not None:
            return None
        return Rule(rule.text, "range", low=value, low_inclusive=op == ">=", high=rule.high, high_inclusive=rule.high_inclusive)
    if rule.high is not None:
        return None
    return Rule(rule.text, "range", low=rule.low, low_inclusive=rule.low_inclusive, high=value, high_inclusive=op == "<=")


def _op(text: str) -> str:
    """``>=``, ``>``, ``<=`` or ``<`` for an operator as written (``at least`` is ``>=``)."""
    return _WORDS.get(" ".join(text.lower().split()), text)


def _parse_clause(clause: str) -> tuple[Rule | None, str | None]:
    """(rule, problem) for one clause of a comment: (None, None) if it is plain text."""
    m = _ONE_OF.match(clause)
    if m:
        items = [i.strip().strip("'\"") for i in re.split(r"\s*,\s*(?:or\s+)?|\s+or\s+", m["items"].strip()) if i.strip()]
        allow_empty = "empty" in items
        items = [i for i in items if i != "empty"]
        text = m["rule"].strip()
        if not items:
            return None, f"`{clause}` lists no values after `one of:`"
        return Rule(text, "choices", tuple(items), allow_empty), None
    m = _DATE.match(clause)
    if m:
        text = m["rule"].strip()
        return Rule(text, "date", allow_empty=bool(m["empty"])), None
    m = _BETWEEN.match(clause)
    if m:
        lo, hi = float(m["lo"]), float(m["hi"])
        if lo > hi:
            return None, f"`{clause}`: the lower end is above the upper end"
        text = m["rule"].strip()
        return Rule(text, "range", low=lo, high=hi), None
    m = _BOUNDS.match(clause)
    if m:
        text = m["rule"].strip()
        rule = _bound(Rule(text, "range"), _op(m["op1"]), float(m["v1"]))
        if m["op2"]:
            rule = _bound(rule, _op(m["op2"]), float(m["v2"]))
        if rule is None:
            return None, f"`{clause}`: give one lower and one upper bound, e.g. `> 0 and <= 1`"
        if rule.low is not None and rule.high is not None and rule.low > rule.high:
            return None, f"`{clause}`: the lower bound is above the upper bound"
        return rule, None
    if _LOOKS_LIKE_A_RULE.match(clause):
        return None, (f"`{clause}` starts like a rule but is not one; write `one of: a, b, c`, `>= 1`, "
                      "`> 0 and <= 1`, `between 0 and 1` or `date (YYYY-MM-DD)` (see docs/reports.md)")
    return None, None


def parse_rule(comment: str) -> tuple[Rule | None, list[str]]:
    """The rule stated in a parameter's comment (or None) and the problems found in it."""
    rules, problems = [], []
    for clause in (c.strip() for c in comment.split(";")):
        if not clause:
            continue
        rule, problem = _parse_clause(clause)
        if problem:
            problems.append(problem)
        if rule is not None:
            rules.append(rule)
    if len(rules) > 1:
        problems.append(f"states {len(rules)} rules ({'; '.join(r.text for r in rules)}); keep one")
        return None, problems
    return (rules[0] if rules else None), problems


__all__ = ["Rule", "parse_rule"]
