"""A synthetic product's user base with planted truth.

``simulate(users=20_000, seed=0)`` draws a whole simulated world -- Bass
signups, two segments, messy user attributes, habitual activity, ideas and
their adoption, churn (a cancel event or silence), conversion, BG/NBD repeat
purchases with Gamma-Gamma spend, referrals, a randomized co-creation
invitation, a three-arm onboarding experiment, an A/A test and a market KPI
panel -- a chunk of users at a time, and returns a :class:`SimulatedDataset`
with a ``truth`` dict holding every planted value. With ``out=`` it streams
the dataset folder (``users``, ``events``, ``assignments``, ``kpis`` Parquet
tables, ``dataset.yml``, ``truth.json``) row group by row group, in bounded
memory, atomically and byte-for-byte reproducibly for a given seed, size and
library versions. docs/simulator.md describes the world and every truth key.

The parts of the world live in :mod:`workbench.data.simulator`; small pure
draws for model tests (BG/NBD, Pareto/NBD, Gamma-Gamma, sBG, Bass) are
re-exported here.
"""

from workbench.data.simulator.chunks import SCHEMAS
from workbench.data.simulator.draws import (
    bass_cdf,
    bass_inverse_cdf,
    bass_peak_time,
    simulate_bgnbd_summary,
    simulate_gamma_gamma_spend,
    simulate_pareto_nbd_summary,
    simulate_sbg_cohorts,
)
from workbench.data.simulator.files import PARQUET_CODEC, ROW_GROUP_ROWS
from workbench.data.simulator.generate import CHUNK_USERS, simulate, write
from workbench.data.simulator.parameters import Planted, parse_assignments, planted_parameters
from workbench.data.simulator.simulated import SimulatedDataset

__all__ = [
    "CHUNK_USERS",
    "PARQUET_CODEC",
    "ROW_GROUP_ROWS",
    "SCHEMAS",
    "Planted",
    "SimulatedDataset",
    "parse_assignments",
    "planted_parameters",
    "simulate",
    "write",
    "simulate_bgnbd_summary",
    "simulate_pareto_nbd_summary",
    "simulate_gamma_gamma_spend",
    "simulate_sbg_cohorts",
    "bass_cdf",
    "bass_inverse_cdf",
    "bass_peak_time",
]
