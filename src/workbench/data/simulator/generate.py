"""``simulate()``: draw the world a chunk of users at a time and stream it to a
dataset folder (or keep it in memory), and ``write()``; the progress bar."""

from __future__ import annotations

import numbers
import shutil
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa

from workbench.data.simulator.chunks import CHUNK_SCHEMAS, SCHEMAS, STREAMS, World
from workbench.data.simulator.files import FolderSink, MemorySink, check_out, staged_folder
from workbench.data.simulator.kpis import draw_kpis
from workbench.data.simulator.parameters import AA_TEST, ONBOARDING, Planted, planted_parameters
from workbench.data.simulator.population import whole_population, window_experiment
from workbench.data.simulator.simulated import SimulatedDataset
from workbench.data.simulator.truth import build_metadata, build_truth
from workbench.errors import ParameterError

#: users drawn (and held in memory) at a time; part of what fixes the files' bytes
CHUNK_USERS = 1 << 15
MAX_USERS = 100_000_000


class Progress:
    """tqdm on stderr (users done), a ``callback(stage, users_done, users_total)``, or nothing."""

    def __init__(self, progress, total: int, desc: str):
        self.done, self.total = 0, total
        self._cb = progress if callable(progress) else None
        self._bar = None
        if progress is True:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc=desc, file=sys.stderr, unit="user", unit_scale=True, leave=False)

    def stage(self, stage: str, users: int = 0) -> None:
        self.done += users
        if self._bar is not None:
            self._bar.set_postfix_str(stage, refresh=False)
            self._bar.update(users)
        if self._cb is not None:
            self._cb(stage, self.done, self.total)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _check_int(name: str, value, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not lo <= value <= hi:
        raise ParameterError(f"simulate: {name} must be an integer between {lo:,} and {hi:,}, got {value!r}.")
    return int(value)


def simulate(
    users: int = 20_000,
    seed: int = 0,
    out=None,
    *,
    force: bool = False,
    progress: bool | Callable[[str, int, int], None] = True,
    chunk_users: int = CHUNK_USERS,
    **planted,
) -> SimulatedDataset:
    """Simulate a product's user base with planted truth.

    Users are drawn ``chunk_users`` at a time. With ``out``, each chunk is
    written to the dataset folder as it is drawn (memory stays bounded at any
    size) and the returned dataset reads its tables from the folder when asked;
    without, the tables (and the per-user ``latent`` values) stay in memory.

    Parameters
    ----------
    users : number of users (the Bass market size m).
    seed : non-negative integer; the same seed, users and chunk_users (and
        library versions) give the same tables and files byte for byte.
    out : if given, stream the dataset folder there (see :func:`write`).
    force : allow replacing a non-empty ``out`` folder.
    progress : ``True`` for a tqdm bar on stderr, ``False`` for silence, or a
        callable ``(stage, users_done, users_total)``.
    chunk_users : users drawn at a time (memory grows with it, not with users).
    **planted : overrides of any :class:`Planted` parameter, e.g.
        ``churn_hazard_ratio_adopted=0.5``.
    """
    n = _check_int("users", users, 1, MAX_USERS)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ParameterError(f"simulate: seed must be a non-negative integer, got {seed!r}.")
    chunk_users = _check_int("chunk_users", chunk_users, 1, MAX_USERS)
    p = planted_parameters(**planted)
    if out is not None:
        check_out(Path(out), force)  # fail before the work, not after
    bar = Progress(progress, total=n, desc=f"simulate {n:,} users")
    try:
        if out is None:
            sink = MemorySink()
            truth, metadata, latent = _run(n, int(seed), p, chunk_users, sink, bar, keep_latent=True)
            return SimulatedDataset(truth, metadata, memory=sink, latent=latent)
        with staged_folder(out, force=force) as tmp:
            sink = FolderSink(tmp, CHUNK_SCHEMAS)
            try:
                truth, metadata, _ = _run(n, int(seed), p, chunk_users, sink, bar, keep_latent=False)
                sink.finish(metadata, truth)
            except BaseException:
                sink.abort()
                raise
        return SimulatedDataset(truth, metadata, path=Path(out))
    finally:
        bar.close()


def _run(n: int, seed: int, p: Planted, chunk_users: int, sink, bar: Progress, *, keep_latent: bool):
    """Draw the population truths, then the users chunk by chunk into ``sink``, then the KPI panel."""
    rngs = dict(zip(STREAMS, (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(len(STREAMS)))))
    bar.stage("population truth")
    whole = whole_population(rngs["population"], p)
    probs = (whole["cancel_probability"]["paying"], whole["cancel_probability"]["non_paying"])
    windows = {name: window_experiment(rngs["population"], p, name, probs) for name in (ONBOARDING, AA_TEST)}
    world = World(n, seed, p, probs, rngs)
    latent = []
    while world.done < n:
        k = min(chunk_users, n - world.done)
        chunk = world.chunk(k, keep_latent=keep_latent)
        for name, table in chunk.tables.items():
            sink.add(name, table, chunk.users[name])
        if keep_latent:
            latent.append(chunk.latent)
        del chunk
        bar.stage("users", k)
    kpis, kpis_detail = draw_kpis(rngs["kpis"], p)
    sink.add("kpis", pa.Table.from_pandas(kpis, schema=SCHEMAS["kpis"], preserve_index=False).replace_schema_metadata(None))
    truth = build_truth(world, seed, chunk_users, whole, windows, kpis_detail)
    bar.stage("truth")
    return truth, build_metadata(truth, p), (pd.concat(latent, ignore_index=True) if keep_latent else None)


def write(dataset: SimulatedDataset, out, *, force: bool = False) -> Path:
    """Write ``dataset`` as a dataset folder at ``out`` and return its path.

    Files: users/events/assignments/kpis ``.parquet``, ``dataset.yml`` and
    ``truth.json``, the same bytes :func:`simulate` streams. The folder is
    written into a temporary sibling and renamed into place, so readers never
    see half a dataset. An existing non-empty ``out`` is refused unless
    ``force=True`` (then it is replaced whole).
    """
    if not isinstance(dataset, SimulatedDataset):
        raise ParameterError(f"write: expected a SimulatedDataset (from simulate()), got {type(dataset).__name__}.")
    out = Path(out)
    if dataset.path is not None and dataset.path.resolve() == out.resolve():
        raise ParameterError(f"write: the dataset is already at {out}; choose another path.")
    with staged_folder(out, force=force) as tmp:
        if dataset.path is not None:  # streamed: copy its files
            for f in sorted(dataset.path.iterdir()):
                shutil.copyfile(f, tmp / f.name)
        else:
            sink = FolderSink(tmp, CHUNK_SCHEMAS)
            try:
                dataset.memory.replay(sink)
                sink.finish(dataset.metadata, dataset.truth)
            except BaseException:
                sink.abort()
                raise
    return out
