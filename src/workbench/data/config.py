"""A dataset's ``dataset.yml``: metadata, the ``backend`` it runs on and the
``source`` mapping from an export or warehouse onto the contract.

:func:`read_config` reads and checks all three without touching any data;
every problem is reported at once as one :class:`~workbench.errors.DataError`.
:func:`dataset_secrets` names the credentials a dataset would use, so the
report runner can keep them out of everything it writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from workbench.data.backends import BackendSpec, parse_backend, read_local_config
from workbench.data.files import read_meta
from workbench.data.mapping import SourceMapping, parse_source
from workbench.data.paths import DatasetLocation, locate_dataset
from workbench.errors import DataError, Violation, WorkbenchError


@dataclass(frozen=True)
class DatasetConfig:
    """What a dataset.yml says: metadata, backend and source mapping."""

    location: DatasetLocation
    meta: dict = field(default_factory=dict)
    backend: BackendSpec = field(default_factory=BackendSpec)
    source: SourceMapping | None = None
    problems: tuple = ()  # why dataset.yml could not be read (with strict=False)

    @property
    def folder(self) -> Path:
        return self.location.folder


def read_config(location, *, strict: bool = True) -> DatasetConfig:
    """The checked configuration of a dataset (a :class:`DatasetLocation`, or
    anything :func:`~workbench.data.paths.locate_dataset` takes). A
    dataset.yml that cannot be read (not UTF-8, not YAML, a bad
    observation_end) raises with ``strict``; without, it gives an empty
    configuration whose ``problems`` say why (validation reports them with
    every other violation). A broken ``backend`` or ``source`` section always
    raises: nothing can be read without them."""
    loc = location if isinstance(location, DatasetLocation) else locate_dataset(location)
    data, unreadable = read_meta(loc.config)
    if unreadable:
        if strict:
            raise DataError(unreadable, str(loc.config or loc.folder))
        return DatasetConfig(loc, problems=tuple(unreadable))
    problems: list[Violation] = []
    backend, bad = parse_backend(data.get("backend"), read_local_config(loc.folder), loc.folder)
    problems += bad
    source = None
    if isinstance(data.get("source"), dict):  # a line of text is provenance (metadata); a mapping maps tables
        source, bad = parse_source(data["source"], loc.folder)
        problems += bad
    if problems:
        raise DataError(problems, str(loc.config or loc.folder))
    meta = {k: v for k, v in data.items() if k not in ("backend",) and not (k == "source" and isinstance(v, dict))}
    return DatasetConfig(loc, meta, backend, source)


def dataset_secrets(value) -> list[str]:
    """The credentials the dataset named by ``value`` would use (empty if
    none, or if it cannot be read); never raises."""
    try:
        return read_config(value).backend.secrets()
    except (WorkbenchError, OSError):
        return []


__all__ = ["DatasetConfig", "dataset_secrets", "read_config"]
