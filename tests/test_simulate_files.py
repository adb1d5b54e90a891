"""The simulator's files: streaming a chunk of users at a time, row groups,
the same bytes for the same seed, bounded memory, atomic writes, clear
errors, progress, the CLI, and docs that name every truth key and parameter."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from workbench.cli import main
from workbench.data.simulate import (
    Planted,
    SimulatedDataset,
    parse_assignments,
    simulate,
    simulate_bgnbd_summary,
    simulate_sbg_cohorts,
    write,
)
from workbench.errors import ParameterError, WorkbenchError

N = 6_000
SEED = 5
CHUNK = 1_500
SMALL = {"experiment_population_draws": 2_000}  # keep the Monte Carlo truths cheap
DOCS = Path(__file__).resolve().parents[1] / "docs" / "simulator.md"
TABLES = ["users.parquet", "events.parquet", "assignments.parquet", "kpis.parquet"]


def sha(path: Path) -> dict[str, str]:
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(path.iterdir())}


@pytest.fixture(scope="module")
def in_memory():
    return simulate(users=N, seed=SEED, progress=False, chunk_users=CHUNK, **SMALL)


@pytest.fixture(scope="module")
def streamed(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim") / "streamed"
    return simulate(users=N, seed=SEED, out=out, progress=False, chunk_users=CHUNK, **SMALL), out


# ====================================================================== files
def test_writes_the_tables_dataset_yml_and_truth(streamed, in_memory):
    ds, out = streamed
    assert sorted(p.name for p in out.iterdir()) == sorted(TABLES + ["dataset.yml", "truth.json"])
    assert json.loads((out / "truth.json").read_text()) == ds.truth == in_memory.truth
    assert ds.truth["generator"]["chunk_users"] == CHUNK
    meta = yaml.safe_load((out / "dataset.yml").read_text())
    assert meta == ds.metadata and meta["source"] == f"workbench simulator, seed {SEED}"
    assert {"name", "description", "currency", "observation_end", "notes"} <= set(meta)
    assert pd.Timestamp(meta["observation_end"]) == pd.Timestamp(ds.truth["time"]["observation_end"])
    # the streamed dataset reads its frames from the folder; they equal the in-memory ones
    for name in ("users", "events", "assignments", "kpis"):
        pd.testing.assert_frame_equal(getattr(ds, name), getattr(in_memory, name))
    schema = pq.read_schema(out / "events.parquet")
    assert [str(t) for t in schema.types] == ["string", "timestamp[us]", "string", "double"]
    assert pq.read_schema(out / "users.parquet").names == ["user_id", "signup_at", "channel", "segment", "referred_by",
                                                           "prior_activity", "age", "country"]  # fmt: skip
    assert all(pq.ParquetFile(out / f).metadata.row_group(0).column(0).compression.startswith("LZ4") for f in TABLES)
    assert not list(out.parent.glob(".streamed.*")), "temporary folders left behind"


def test_validate_dataset_accepts_it(streamed):
    from workbench.data import validate_dataset

    report = validate_dataset(streamed[1])
    assert report.rows["users"] == N
    assert all(why is None for why in report.supports.values()), report.supports


def test_row_groups_hold_whole_users_in_order(tmp_path, monkeypatch):
    """Row groups of about ROW_GROUP_ROWS rows (here 5,000), cut only between
    users; within each, rows sorted by (user_id, event_at)."""
    import workbench.data.simulator.files as files

    monkeypatch.setattr(files, "ROW_GROUP_ROWS", 5_000)
    simulate(users=3_000, seed=1, out=tmp_path / "d", progress=False, chunk_users=700, **SMALL)
    f = pq.ParquetFile(tmp_path / "d" / "events.parquet")
    sizes = [f.metadata.row_group(i).num_rows for i in range(f.num_row_groups)]
    assert f.num_row_groups > 5 and all(s >= 5_000 for s in sizes[:-1]) and max(sizes) < 5_000 + 2_000
    seen = set()
    for i in range(f.num_row_groups):
        rg = f.read_row_group(i).to_pandas()
        assert rg[["user_id", "event_at"]].equals(rg[["user_id", "event_at"]].sort_values(["user_id", "event_at"]).reset_index(drop=True))
        users = set(rg.user_id)
        assert not users & seen, "a user's events are split across row groups"
        seen |= users
    a = pq.ParquetFile(tmp_path / "d" / "assignments.parquet")
    groups = [set(a.read_row_group(i).column("user_id").to_pylist()) for i in range(a.num_row_groups)]
    assert all(not (x & y) for x, y in itertools.combinations(groups, 2))


# ====================================================================== determinism
def test_streamed_and_in_memory_write_the_same_bytes(streamed, in_memory, tmp_path):
    _, out = streamed
    in_memory.write(tmp_path / "from-memory")
    assert sha(tmp_path / "from-memory") == sha(out)


def test_same_seed_same_bytes_and_other_seed_differs(streamed, tmp_path):
    _, out = streamed
    simulate(users=N, seed=SEED, out=tmp_path / "again", progress=False, chunk_users=CHUNK, **SMALL)
    assert sha(tmp_path / "again") == sha(out)
    other = simulate(users=N, seed=SEED + 1, out=tmp_path / "other", progress=False, chunk_users=CHUNK, **SMALL)
    assert other.truth["generator"]["seed"] == SEED + 1
    assert all(sha(tmp_path / "other")[f] != sha(out)[f] for f in ("users.parquet", "events.parquet", "truth.json"))


def test_changing_one_parameter_leaves_other_streams_alone():
    a = simulate(users=3_000, seed=5, progress=False, chunk_users=1_000, **SMALL)
    b = simulate(users=3_000, seed=5, progress=False, chunk_users=1_000, gg_p=3.0, **SMALL)
    pd.testing.assert_series_equal(a.users.signup_at, b.users.signup_at)
    pd.testing.assert_series_equal(a.users.segment, b.users.segment)
    buy = lambda d: d.events[d.events.event_type == "purchase"]  # noqa: E731
    assert buy(a).event_at.tolist() == buy(b).event_at.tolist()  # same purchase times ...
    assert buy(a).amount.mean() > 1.5 * buy(b).amount.mean()  # ... half the planted spend shape


# ====================================================================== memory
PEAK = r"""
import json, re, sys
from pathlib import Path
import workbench.data.simulator.files as files
from workbench.data.simulate import simulate
files.ROW_GROUP_ROWS = 100_000  # reached by both sizes: the row-group buffer is at its bound in both
users, mode, out = int(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
kw = dict(seed=3, progress=False, chunk_users=2_000, experiment_population_draws=20_000)
if mode == "streamed":
    simulate(users=users, out=out, **kw)
else:
    simulate(users=users, **kw).write(out)
# VmHWM: this process's own peak (ru_maxrss would also count the parent's memory at fork time)
print(json.dumps(int(re.search(r"VmHWM:\s+(\d+) kB", Path("/proc/self/status").read_text()).group(1)) / 1024))
"""


def peak_rss_mb(users: int, mode: str, out: Path) -> float:
    proc = subprocess.run([sys.executable, "-c", PEAK, str(users), mode, str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_memory_does_not_grow_with_users(tmp_path):
    """Streamed at a fixed chunk size (and row-group size), four times the users
    raise the peak memory of a fresh process by about 20 MB (the referral book,
    12 bytes a user, plus allocator noise that moves by a few MB from run to
    run); kept in memory, by about 180 MB -- so the measurement can see growth."""
    sizes = (40_000, 160_000)
    streamed = [peak_rss_mb(n, "streamed", tmp_path / f"s{n}") for n in sizes]
    held = [peak_rss_mb(n, "memory", tmp_path / f"m{n}") for n in sizes]
    print(f"peak RSS MB at {sizes} users, streamed: {streamed}, in memory: {held}")
    grew, held_grew = streamed[1] - streamed[0], held[1] - held[0]
    assert held_grew > 100
    assert grew < 50 and grew < held_grew / 4


# ====================================================================== writing and errors
def test_refuses_to_overwrite_unless_forced(tmp_path, in_memory):
    ds = in_memory
    out = tmp_path / "x"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ParameterError, match="not empty.*--force"):
        write(ds, out)
    with pytest.raises(ParameterError, match="not empty"):
        simulate(users=10, seed=0, out=out, progress=False)  # refused before the work
    assert (out / "keep.txt").read_text() == "mine"
    write(ds, out, force=True)
    assert not (out / "keep.txt").exists() and (out / "truth.json").exists()
    simulate(users=300, seed=0, out=out, force=True, progress=False, **SMALL)  # streaming replaces it whole
    assert json.loads((out / "truth.json").read_text())["generator"]["users"] == 300
    empty = tmp_path / "empty"
    empty.mkdir()
    write(ds, empty)  # an empty folder is fine
    (tmp_path / "file").write_text("")
    with pytest.raises(ParameterError, match="not a folder"):
        write(ds, tmp_path / "file")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("how", ["write", "stream"])
def test_failed_write_leaves_nothing(tmp_path, in_memory, monkeypatch, how):
    """A disk error half way (the third row group) leaves no folder, no temporary
    folder, and an existing dataset at ``out`` untouched."""
    import workbench.data.simulator.files as files

    calls = []
    original = files.pq.ParquetWriter.write_table

    def boom(self, table, *args, **kw):
        calls.append(1)
        if len(calls) == 3:
            raise OSError("disk full")
        return original(self, table, *args, **kw)

    monkeypatch.setattr(files.pq.ParquetWriter, "write_table", boom)
    monkeypatch.setattr(files, "ROW_GROUP_ROWS", 20_000)
    with pytest.raises(ParameterError, match="disk full"):
        if how == "write":
            write(in_memory, tmp_path / "out")
        else:
            simulate(users=N, seed=SEED, out=tmp_path / "out", progress=False, chunk_users=CHUNK, **SMALL)
    assert list(tmp_path.iterdir()) == []
    # replacing an existing dataset: the old one survives the failure
    monkeypatch.setattr(files.pq.ParquetWriter, "write_table", original)
    write(in_memory, tmp_path / "keep")
    before = sha(tmp_path / "keep")
    calls.clear()
    monkeypatch.setattr(files.pq.ParquetWriter, "write_table", boom)
    with pytest.raises(ParameterError, match="disk full"):
        simulate(users=N, seed=SEED + 1, out=tmp_path / "keep", force=True, progress=False, chunk_users=CHUNK, **SMALL)
    assert sha(tmp_path / "keep") == before and [p.name for p in tmp_path.iterdir()] == ["keep"]


def test_bad_arguments_get_clear_errors():
    with pytest.raises(ParameterError, match="users must be an integer"):
        simulate(users=0, progress=False)
    with pytest.raises(ParameterError, match="chunk_users must be an integer"):
        simulate(users=10, chunk_users=0, progress=False)
    with pytest.raises(ParameterError, match="seed"):
        simulate(users=10, seed=-1, progress=False)
    with pytest.raises(ParameterError, match="did you mean 'churn_hazard_ratio_adopted'"):
        simulate(users=10, churn_hazard_ratio_adoptd=0.5, progress=False)
    with pytest.raises(ParameterError, match="participation_invited_mainstream"):
        simulate(users=10, participation_invited_mainstream=0.01, progress=False)
    with pytest.raises(ParameterError, match="ISO date"):
        simulate(users=10, start="January", progress=False)
    with pytest.raises(ParameterError, match="bgnbd_a.*> 0"):
        simulate(users=10, bgnbd_a=0, progress=False)
    with pytest.raises(ParameterError, match="churn_cancel_share.*between 0 and 1"):
        simulate(users=10, churn_cancel_share=1.5, progress=False)
    with pytest.raises(ParameterError, match="bgnbd_rate_ratio_enthusiast.*> 0"):
        simulate(users=10, bgnbd_rate_ratio_enthusiast=0, progress=False)
    with pytest.raises(ParameterError, match="onboarding_share_checklist.*<= 1 - onboarding_share_guided"):
        simulate(users=10, onboarding_share_guided=0.6, onboarding_share_checklist=0.5, progress=False)
    with pytest.raises(ParameterError, match="onboarding_horizon_days.*observed"):
        simulate(users=10, onboarding_start_week=100, progress=False)
    with pytest.raises(ParameterError, match="age_mean_enthusiast.*> 16"):
        simulate(users=10, age_mean_enthusiast=12, progress=False)
    with pytest.raises(ParameterError, match="activity_gap_shape.*> 0"):
        simulate(users=10, activity_gap_shape=0, progress=False)
    with pytest.raises(ParameterError, match="length n"):
        simulate_bgnbd_summary(5, 0.2, 4, 0.8, 2.5, T=[1.0, 2.0], seed=0)
    with pytest.raises(ParameterError, match="alpha"):
        simulate_sbg_cohorts(-1, 1, 10, 3, seed=0)
    with pytest.raises(ParameterError, match="SimulatedDataset"):
        write(pd.DataFrame(), "nowhere")
    assert issubclass(ParameterError, WorkbenchError)


def test_parse_assignments_types_and_errors():
    got = parse_assignments(["churn_cancel_share=0.4", "onboarding-weeks=6", "currency=EUR", "kpis_start=2022-01-01"])
    assert got == {"churn_cancel_share": 0.4, "onboarding_weeks": 6, "currency": "EUR", "kpis_start": "2022-01-01"}
    assert isinstance(got["onboarding_weeks"], int)
    with pytest.raises(ParameterError, match="whole number"):
        parse_assignments(["onboarding_weeks=2.5"])
    with pytest.raises(ParameterError, match="needs a number"):
        parse_assignments(["churn_cancel_share=most"])
    with pytest.raises(ParameterError, match="NAME=VALUE"):
        parse_assignments(["churn_cancel_share"])
    with pytest.raises(ParameterError, match="did you mean 'churn_cancel_share'"):
        parse_assignments(["churn_cancel_shar=0.5"])


def test_progress_callback_and_quiet(capsys):
    seen = []
    simulate(users=2_500, seed=0, progress=lambda stage, done, total: seen.append((stage, done, total)), chunk_users=1_000, **SMALL)
    assert [s for s, _, _ in seen] == ["population truth", "users", "users", "users", "truth"]
    assert [d for _, d, _ in seen] == [0, 1_000, 2_000, 2_500, 2_500] and {t for _, _, t in seen} == {2_500}
    simulate(users=500, seed=0, progress=False, **SMALL)
    assert capsys.readouterr().err == ""


def test_repr_and_latent(in_memory, streamed):
    ds = in_memory
    assert isinstance(ds, SimulatedDataset)
    assert f"{N:,} users" in repr(ds) and "went silent" in repr(ds)
    lat = ds.latent
    assert len(lat) == N and lat.user_id.equals(ds.users.user_id)
    cust = lat.purchase_rate_weekly.notna()
    assert cust.sum() == ds.truth["counts"]["customers"]
    with pytest.raises(ParameterError, match="latent.*in memory"):
        _ = streamed[0].latent


# ====================================================================== docs
def test_truth_keys_are_documented(in_memory):
    text = DOCS.read_text()
    missing = []
    for section, body in in_memory.truth.items():
        for key, value in body.items():
            name = f"{section}.{key}"
            if section == "experiments":
                missing += [f"experiments.*.{k}" for k in value if f"experiments.*.{k}" not in text]
                missing += [f"experiments.*.population.{k}" for k in value["population"] if f"experiments.*.population.{k}" not in text]
            if name not in text:
                missing.append(name)
            if section == "experiment" and isinstance(value, dict):
                missing += [f"{name}.{k}" for k in value if f"{name}.{k}" not in text]
    assert not missing, f"truth keys missing from docs/simulator.md: {missing}"


def test_planted_parameters_are_documented():
    text = DOCS.read_text()
    named = set(re.findall(r"`([a-z0-9_]+)`", text))
    for pattern in re.findall(r"`([a-z0-9_{},]+)`", text):  # expand e.g. participation_{control,invited}_{a,b}
        parts = re.split(r"\{([a-z0-9_,]+)\}", pattern)
        options = [p.split(",") if i % 2 else [p] for i, p in enumerate(parts)]
        named |= {"".join(c) for c in itertools.product(*options)}
    missing = [f.name for f in dataclasses.fields(Planted) if f.name not in named]
    assert not missing, f"parameters missing from docs/simulator.md: {missing}"


# ====================================================================== CLI
def test_cli_help_and_run(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["simulate", "--help"])
    assert exc.value.code == 0
    help_text = capsys.readouterr().out
    for flag in ("--users", "--seed", "--force", "--chunk-users", "--set", "20000"):
        assert flag in help_text
    out = tmp_path / "cli"
    assert main(["simulate", "--users", "800", "--seed", "3", "--out", str(out), "--quiet", "--chunk-users", "300",
                 "--set", "churn_hazard_ratio_adopted=0.5", "--set", "churn_cancel_share=1",
                 "--set", "experiment_population_draws=2000"]) == 0  # fmt: skip
    truth = json.loads((out / "truth.json").read_text())
    assert truth["churn"]["hazard_ratio_adopted"] == 0.5 and truth["generator"]["users"] == 800
    assert truth["generator"]["chunk_users"] == 300 and truth["counts"]["silent"] == 0
    assert truth["generator"]["overrides"] == {"churn_hazard_ratio_adopted": 0.5, "churn_cancel_share": 1.0,
                                               "experiment_population_draws": 2000}  # fmt: skip
    assert "800 users" in capsys.readouterr().out
    assert main(["simulate", "--users", "800", "--out", str(out), "--quiet"]) == 1
    assert "--force" in capsys.readouterr().err
    assert main(["simulate", "--users", "800", "--out", str(out), "--quiet", "--set", "bass_pp=1"]) == 1
    assert "did you mean 'bass_p'" in capsys.readouterr().err
    assert main(["simulate", "--users", "800", "--out", str(out), "--quiet", "--set", "churn_cancel_share=2"]) == 1
    assert "between 0 and 1" in capsys.readouterr().err
    assert main(["simulate", "--users", "800", "--out", str(out), "--quiet", "--force", "--set", "experiment_population_draws=2000"]) == 0
