"""Where things live: the project root, the built-in dataset names, and what
a ``dataset`` argument names.

The project root is the folder holding ``notebooks/`` and ``data/``. It is
found, in this order, from ``$WORKBENCH_ROOT``; from the current folder or
one above it; from the checkout the workbench package is installed from
(``pip install -e .``). So built-in datasets and notebooks resolve from any
working folder; set ``WORKBENCH_ROOT`` to point the workbench at another
project folder.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from workbench.errors import DataError, Violation

#: built-in dataset names and their folders relative to the project root
BUILTIN = {
    "sample": "data/sample",
    "cdnow": "data/processed/cdnow",
    "cdnow-sample": "data/processed/cdnow-sample",
}
CONFIG = "dataset.yml"
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


def _is_project(folder: Path) -> bool:
    return (folder / "notebooks").is_dir() or (folder / "data" / "raw").is_dir()


def package_checkout() -> Path | None:
    """The project the package is installed from (an editable install), if any."""
    here = Path(__file__).resolve()
    for folder in here.parents:
        if (folder / "pyproject.toml").is_file() and _is_project(folder):
            return folder
    return None


def project_root(start=None) -> Path:
    """The project root: ``$WORKBENCH_ROOT`` (when no ``start`` is given),
    else the nearest folder at or above ``start`` (default: the current
    folder) that holds ``notebooks/`` or ``data/raw``, else (no ``start``
    given) the checkout the package is installed from, else ``start`` itself."""
    env = os.environ.get("WORKBENCH_ROOT")
    if env and start is None:
        return Path(env).expanduser().resolve()
    here = Path(start or Path.cwd()).resolve()
    if here.is_file():
        here = here.parent
    for folder in (here, *here.parents):
        if _is_project(folder):
            return folder
    if start is None:
        checkout = package_checkout()
        if checkout is not None:
            return checkout
    return here


@dataclass(frozen=True)
class DatasetLocation:
    """What a ``dataset`` argument names: the folder its files are in and
    the ``dataset.yml`` (or other YAML file) that describes it, if any."""

    folder: Path
    config: Path | None


def _builtin_folder(name: str) -> Path:
    folder = project_root() / BUILTIN[name]
    if name.startswith("cdnow") and not folder.is_dir():
        from workbench.data.cdnow import convert_cdnow

        convert_cdnow(sample=(name == "cdnow-sample"), out=folder)
    if not folder.is_dir():
        rule = f"built-in dataset not built yet at {folder}: run `workbench simulate --out {BUILTIN[name]}` (or `make run`)"
        raise DataError([Violation(name, None, rule, 0)])
    return folder


def locate_dataset(value) -> DatasetLocation:
    """A dataset folder (or a YAML file describing one, or a built-in name:
    ``sample``, ``cdnow``, ``cdnow-sample``); builds CDNOW on demand."""
    text = str(value)
    if _URL.match(text):
        from workbench.data.credentials import redact

        raise DataError([Violation(redact(text), None,
                                   "a connection URL is not a dataset: write a dataset folder whose dataset.yml names it "
                                   "(backend: url: ..., password_env: ...) and its tables (source: events: table: ...), "
                                   "e.g. with `workbench import --backend URL --table SCHEMA.TABLE --out FOLDER`; see docs/backends.md", 0)])
    path = Path(text).expanduser()
    if text in BUILTIN and not path.is_dir():
        folder = _builtin_folder(text)
        return DatasetLocation(folder, folder / CONFIG if (folder / CONFIG).is_file() else None)
    if path.is_file() and path.suffix in (".yml", ".yaml"):
        return DatasetLocation(path.parent, path)
    if path.is_dir():
        return DatasetLocation(path, path / CONFIG if (path / CONFIG).is_file() else None)
    names = ", ".join(BUILTIN)
    raise DataError([Violation(text, None, f"no dataset folder at {path.absolute()} (give a folder, a dataset.yml, or one of: {names})", 0)])


def resolve_dataset(path) -> Path:
    """The folder of a dataset given as a path, a dataset.yml or a built-in name."""
    return locate_dataset(path).folder


__all__ = ["BUILTIN", "CONFIG", "DatasetLocation", "locate_dataset", "package_checkout", "project_root", "resolve_dataset"]
