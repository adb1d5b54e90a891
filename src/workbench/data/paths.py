"""Where things live: the project root and the built-in dataset names."""

from __future__ import annotations

import os
from pathlib import Path

from workbench.errors import DataError, Violation

#: built-in dataset names and their folders relative to the project root
BUILTIN = {
    "sample": "data/sample",
    "cdnow": "data/processed/cdnow",
    "cdnow-sample": "data/processed/cdnow-sample",
}


def project_root(start=None) -> Path:
    """The project root: ``$WORKBENCH_ROOT`` (when no ``start`` is given),
    else the nearest folder at or above ``start`` (default: the current
    folder) that holds ``notebooks/`` or ``data/raw``, else ``start`` itself."""
    env = os.environ.get("WORKBENCH_ROOT")
    if env and start is None:
        return Path(env).resolve()
    here = Path(start or Path.cwd()).resolve()
    if here.is_file():
        here = here.parent
    for folder in (here, *here.parents):
        if (folder / "notebooks").is_dir() or (folder / "data" / "raw").is_dir():
            return folder
    return here


def resolve_dataset(path) -> Path:
    """A dataset folder from a path or a built-in name; builds CDNOW on demand."""
    text = str(path)
    if text in BUILTIN and not Path(text).is_dir():
        folder = project_root() / BUILTIN[text]
        if text.startswith("cdnow") and not folder.is_dir():
            from workbench.data.cdnow import convert_cdnow

            convert_cdnow(sample=(text == "cdnow-sample"), out=folder)
        if not folder.is_dir():
            raise DataError([Violation(text, None, f"built-in dataset not built yet at {folder}: run `workbench simulate --out {BUILTIN[text]}` (or `make run`)", 0)])
        return folder
    folder = Path(text).expanduser()
    if not folder.is_dir():
        names = ", ".join(BUILTIN)
        raise DataError([Violation(text, None, f"no dataset folder at {folder.absolute()} (give a folder, or one of: {names})", 0)])
    return folder
