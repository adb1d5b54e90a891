"""Writing a simulated dataset folder: Parquet tables row group by row group,
``dataset.yml`` and ``truth.json``, into a hidden sibling folder renamed into
place only when complete.

Row groups hold about :data:`ROW_GROUP_ROWS` rows and never split a user:
each is cut at the first user boundary at or after that many rows, so the
layout depends on the rows only, not on how many users were drawn at a time.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from workbench.errors import ParameterError

#: Every analysis table scans events.parquet; LZ4 decodes about twice as fast
#: as ZSTD (DuckDB's scan of a 1M-user events file: 0.19 s against 0.33 s)
#: for files about a quarter larger. pyarrow writes it as LZ4_RAW, which
#: pyarrow, pandas, DuckDB and Spark 3.5 or later read.
PARQUET_CODEC = "lz4"
#: About DuckDB's own row-group size. Engines read a Parquet file in parallel by row
#: group, so a 1M-user users table in one row group of 2^20 rows was read on one core:
#: validating a 1M-user dataset took 1.08 s with row groups of 2^20 rows, 0.86-0.90 s
#: with 2^17 (benchmarks/bench_validate.py), and the tables cost no more.
ROW_GROUP_ROWS = 1 << 17
TABLE_NAMES = ("users", "events", "assignments", "kpis")


class TableWriter:
    """One Parquet file written in row groups of about ``ROW_GROUP_ROWS`` rows,
    cut only between users; rows arrive in user order, a chunk at a time."""

    def __init__(self, path: Path, schema: pa.Schema, row_group_rows: int | None = None):
        # Dictionary pages for the string columns only: timestamps and amounts rarely repeat, and
        # trying (then falling back) costs about twice the writing time. Categorical columns arrive
        # as Arrow dictionaries (written as they are, no hashing); without the Arrow schema stored
        # in the file they read back as the plain strings of the contract.
        strings = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_dictionary(f.type)]
        self.writer = pq.ParquetWriter(
            path, schema, compression=PARQUET_CODEC, use_dictionary=strings, store_schema=False
        )
        self.target = row_group_rows or ROW_GROUP_ROWS
        self.tables: list[pa.Table] = []
        self.users: list[np.ndarray] = []
        self.rows = 0

    def add(self, table: pa.Table, users: np.ndarray) -> None:
        self.tables.append(table)
        self.users.append(np.asarray(users))
        self.rows += table.num_rows
        while self.rows > self.target:
            u = np.concatenate(self.users) if len(self.users) > 1 else self.users[0]
            cut = int(np.searchsorted(u, u[self.target - 1], side="right"))  # users are sorted: the next user's first row
            if cut == self.rows:
                break  # one user runs past the target: wait for the next user
            self._flush(cut, u)

    def _flush(self, cut: int, u: np.ndarray) -> None:
        table = pa.concat_tables(self.tables) if len(self.tables) > 1 else self.tables[0]
        self.writer.write_table(table.slice(0, cut), row_group_size=cut)
        rest = table.slice(cut)
        self.tables, self.users = ([rest], [u[cut:]]) if rest.num_rows else ([], [])
        self.rows = rest.num_rows

    def close(self) -> None:
        if self.rows:
            self._flush(self.rows, np.concatenate(self.users))
        self.writer.close()


def check_out(out: Path, force: bool) -> None:
    """Refuse a path that is a file, or a non-empty folder without ``force``."""
    if out.exists():
        if not out.is_dir():
            raise ParameterError(f"write: {out} exists and is not a folder; choose another --out path.")
        if any(out.iterdir()) and not force:
            raise ParameterError(
                f"write: {out} already exists and is not empty; refusing to overwrite it. "
                "Choose another --out path, or pass --force (force=True) to replace it."
            )


@contextlib.contextmanager
def staged_folder(out, *, force: bool):
    """Yield a hidden temporary sibling of ``out`` to write into; on success
    rename it to ``out`` (replacing an existing ``out`` whole), on any error
    remove it and leave ``out`` as it was."""
    out = Path(out)
    check_out(out, force)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ParameterError(f"write: cannot create the parent folder of {out} ({exc}).") from exc
    token = f"{os.getpid()}-{secrets.token_hex(4)}"
    tmp = out.parent / f".{out.name}.tmp-{token}"
    try:
        tmp.mkdir()
        yield tmp
        if out.exists():
            old = out.parent / f".{out.name}.old-{token}"
            os.replace(out, old)
            try:
                os.replace(tmp, out)
            except BaseException:
                os.replace(old, out)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ParameterError(f"write: could not write the dataset to {out} ({exc}).") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


class FolderSink:
    """Receives a dataset's tables a chunk at a time and writes them into ``folder``."""

    def __init__(self, folder: Path, schemas: dict):
        self.folder, self.schemas = folder, schemas
        self.writers: dict[str, TableWriter] = {}

    def add(self, name: str, table: pa.Table, users: np.ndarray | None = None) -> None:
        if name not in self.writers:
            self.writers[name] = TableWriter(self.folder / f"{name}.parquet", self.schemas[name])
        if users is None:  # a table without users (kpis): one piece
            users = np.arange(table.num_rows)
        self.writers[name].add(table, users)

    def finish(self, metadata: dict, truth: dict) -> None:
        for w in self.writers.values():
            w.close()
        with open(self.folder / "dataset.yml", "w", encoding="utf-8") as fh:
            yaml.safe_dump(metadata, fh, sort_keys=False, allow_unicode=True, width=100)
        with open(self.folder / "truth.json", "w", encoding="utf-8") as fh:
            json.dump(truth, fh, indent=2, allow_nan=False)
            fh.write("\n")

    def abort(self) -> None:
        for w in self.writers.values():
            with contextlib.suppress(Exception):
                w.writer.close()


class MemorySink:
    """Keeps a dataset's tables in memory, as the chunks that a :class:`FolderSink` would write."""

    def __init__(self):
        self.parts: dict[str, list[tuple[pa.Table, np.ndarray | None]]] = {}

    def add(self, name: str, table: pa.Table, users: np.ndarray | None = None) -> None:
        self.parts.setdefault(name, []).append((table, users))

    def table(self, name: str, schema: pa.Schema) -> pa.Table:
        """The whole table, in ``schema`` (the contract's: categories as plain strings)."""
        return pa.concat_tables([t for t, _ in self.parts[name]]).cast(schema)

    def replay(self, sink: FolderSink) -> None:
        for name in TABLE_NAMES:
            for table, users in self.parts.get(name, []):
                sink.add(name, table, users)
