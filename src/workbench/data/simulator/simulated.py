"""The result of ``simulate()``: the contract tables (in memory, or read from
the folder the simulator streamed them to), the planted ``truth``, the
``dataset.yml`` metadata and, for in-memory datasets, per-user latent values."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import pandas as pd

from workbench.data.simulator.chunks import SCHEMAS
from workbench.data.simulator.files import TABLE_NAMES, MemorySink
from workbench.errors import ParameterError


class SimulatedDataset:
    """A simulated dataset.

    ``users``, ``events``, ``assignments``, ``kpis``: the contract tables as
    pandas frames (read from ``path`` on first use when the dataset was
    streamed to a folder -- mind the size). ``truth``: every planted value (as
    in ``truth.json``). ``metadata``: ``dataset.yml``. ``latent``: per-user
    latent values (churn time, potential outcomes, purchase rate, ...), kept
    only by ``simulate(out=None)``.
    """

    def __init__(self, truth: dict, metadata: dict, *, path: Path | None = None, memory: MemorySink | None = None,
                 latent: pd.DataFrame | None = None):  # fmt: skip
        self.truth, self.metadata, self.path, self.memory = truth, metadata, path, memory
        self._latent = latent

    def _frame(self, name: str) -> pd.DataFrame:
        if self.memory is not None:
            return self.memory.table(name, SCHEMAS[name]).to_pandas()
        return pd.read_parquet(self.path / f"{name}.parquet")

    @cached_property
    def users(self) -> pd.DataFrame:
        return self._frame("users")

    @cached_property
    def events(self) -> pd.DataFrame:
        return self._frame("events")

    @cached_property
    def assignments(self) -> pd.DataFrame:
        return self._frame("assignments")

    @cached_property
    def kpis(self) -> pd.DataFrame:
        return self._frame("kpis")

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        return {name: getattr(self, name) for name in TABLE_NAMES}

    @property
    def latent(self) -> pd.DataFrame:
        if self._latent is None:
            raise ParameterError(
                "SimulatedDataset.latent: per-user latent values are kept only in memory, by simulate(out=None); "
                "this dataset was streamed to a folder. Simulate without out= (then .write(folder)) to keep them."
            )
        return self._latent

    def write(self, out, *, force: bool = False) -> Path:
        """Write the dataset folder; see :func:`workbench.data.simulate.write`."""
        from workbench.data.simulator.generate import write

        return write(self, out, force=force)

    def describe(self) -> str:
        """A few lines saying what was simulated."""
        c = self.truth["counts"]
        ev = c["events"]
        return (
            f"simulated {c['users']:,} users (seed {self.truth['generator']['seed']}), "
            f"{sum(ev.values()):,} events ({', '.join(f'{k} {v:,}' for k, v in ev.items())}); "
            f"{c['customers']:,} customers, {c['cancelled']:,} cancelled and {c['silent']:,} went silent, "
            f"{c['referred']:,} referred; kpis {self.truth['kpis']['periods'] * len(self.truth['kpis']['units'])} rows; "
            f"observation end {self.metadata['observation_end']}"
        )

    def __repr__(self) -> str:
        return f"SimulatedDataset({self.describe()})"
