"""What every analysis shares: loading the dataset once, checking a report's
parameters with a clear :class:`~workbench.errors.ParameterError` (the same
checks whether the analysis runs in a report or in a notebook)."""

from __future__ import annotations

import math
import numbers
import warnings

import pandas as pd

from workbench.errors import ModelError, ParameterError, WorkbenchWarning


class Notes:
    """Notes per section (why a part is skipped or what to keep in mind), kept
    by an analysis and shown by the section they belong to."""

    #: the errors of a fit that become a note instead of stopping the report
    FIT_ERRORS: tuple = (ModelError,)

    def _note(self, key: str, text: str) -> None:
        self.notes.setdefault(key, []).append(text)

    def _fit(self, key: str, fn, *, prefix: str = ""):
        """Run a fit: an error of :attr:`FIT_ERRORS` becomes a note of section
        ``key`` (after ``prefix``), as does each WorkbenchWarning it raises."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", WorkbenchWarning)
            try:
                result = fn()
            except self.FIT_ERRORS as exc:
                self._note(key, prefix + str(exc))
                result = None
        for w in caught:
            if issubclass(w.category, WorkbenchWarning):
                self._note(key, str(w.message))
        return result


def load(dataset):
    """A :class:`~workbench.data.Dataset` as is, or a dataset folder or name loaded and validated."""
    from workbench.data import Dataset, load_dataset

    return dataset if isinstance(dataset, Dataset) else load_dataset(dataset)


def check_choice(name: str, value, choices) -> str:
    if value not in choices:
        raise ParameterError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def check_whole(name: str, value, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ParameterError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


def check_number(name: str, value, *, low: float | None = None, high: float | None = None, open_low: bool = False) -> float:
    """A finite number within [low, high] (``open_low``: strictly above low)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value))
    if ok and low is not None:
        ok = value > low if open_low else value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        bounds = []
        if low is not None:
            bounds.append(f"{'>' if open_low else '>='} {low:g}")
        if high is not None:
            bounds.append(f"<= {high:g}")
        raise ParameterError(f"{name} must be a finite number{' ' + ' and '.join(bounds) if bounds else ''}, got {value!r}")
    return float(value)


def check_date(name: str, value, *, allow_empty: bool = True) -> pd.Timestamp | None:
    """A date given as text (``1997-09-30``); empty means None when allowed."""
    if value in ("", None) and allow_empty:
        return None
    try:
        ts = pd.Timestamp(value) if isinstance(value, str) else None
    except (TypeError, ValueError):
        ts = None
    if ts is None or pd.isna(ts):
        raise ParameterError(f"{name} must be a date like '1997-09-30'{' or empty' if allow_empty else ''}, got {value!r}")
    return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts


def check_names(name: str, value) -> list[str]:
    if isinstance(value, str) or not all(isinstance(v, str) for v in value):
        raise ParameterError(f"{name} must be a list of column names, got {value!r}")
    return list(value)
