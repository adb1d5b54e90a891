"""Benchmark the experiment readout at 1,000,000 assigned users: the
workbench (engine tables in Ibis on DuckDB, then the estimates) against the
same metrics computed with pandas from the same Parquet files (then the same
estimates), in one run, printed as a table.

    .venv/bin/python benchmarks/bench_experiments.py                   # 1,000,000 users
    .venv/bin/python benchmarks/bench_experiments.py --users 100000    # a quicker look

The dataset (three arms, planted effects: benchmarks/experiment_sim.py, seed 1)
is written once to data/interim/experiment-<N> (git-ignored). Each side runs
in a fresh child process so its peak resident memory (read with wait4) is its
own. Both sides compute, for the experiment ``onboarding`` with a 30-day
horizon, the default churn rule (cancel or 30 days of inactivity), values
capped at the 99th percentile and effects by segment: the per-arm sufficient
statistics of every fixed-horizon metric, the same cumulative by day, the
time-to-event counts and the per-segment statistics, then the readout (Holm,
CUPED, always-valid intervals by day, RMST, hazard ratios, heterogeneity)
from those tables with the same model code. The timed span starts before the
Parquet files are opened and ends when the readout exists (imports excluded);
the aggregate tables of the two sides must agree (1e-9), or the benchmark fails.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KW = dict(horizon_days=30, cap_percentile=99, segment_by="segment")

WORKBENCH = r"""
import json, sys, time
from pathlib import Path
folder, out = Path(sys.argv[1]), Path(sys.argv[2])
from workbench.data import load_dataset
from workbench.models.experiments import experiment_data, readout
import ibis.backends.duckdb, statsmodels.api, scipy.stats  # imported lazily; imports are not timed on either side

t0, c0 = time.perf_counter(), time.process_time()
ds = load_dataset(folder, validate=False)
data = experiment_data(ds, "onboarding", horizon_days=30, cap_percentile=99, segment_by="segment")
t1 = time.perf_counter()
res = readout(data, correction="holm", sequential=True)
seconds, cpu, tables = time.perf_counter() - t0, time.process_time() - c0, t1 - t0
for name in ("arm_stats", "daily", "time_to_event", "segment_stats"):
    getattr(data, name).to_parquet(out / f"{name}.parquet")
res.effects.to_parquet(out / "effects.parquet")
print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "tables_seconds": tables, "effects": len(res.effects)}))
"""

PANDAS = r"""
import json, sys, time
from pathlib import Path
folder, out = Path(sys.argv[1]), Path(sys.argv[2])
import numpy as np
import pandas as pd
import pyarrow.parquet, yaml
from workbench.models.experiments import ExperimentData, readout
from workbench.tables.experiments import METRICS, FIXED_HORIZON_METRICS, TIME_TO_EVENT_METRICS, CAPPABLE
import statsmodels.api, scipy.stats

DAY, H, C, Q = 86_400, 30 * 86_400, 30 * 86_400, 99.0
PAIRS = ("yy", "dd", "xx", "vv", "yd", "yx", "yv", "dx", "dv", "xv")


def secs(ts):
    return ts.to_numpy().astype("datetime64[us]").astype("int64") // 1_000_000


t0, c0 = time.perf_counter(), time.process_time()
meta = yaml.safe_load((folder / "dataset.yml").read_text()) or {}
users = pd.read_parquet(folder / "users.parquet")
events = pd.read_parquet(folder / "events.parquet", columns=["user_id", "event_at", "event_type", "amount"])
asg = pd.read_parquet(folder / "assignments.parquet")
end = pd.Timestamp(meta["observation_end"])
end_s = int(end.value // 1_000_000_000)
events = events[events["event_at"] <= end]
asg = asg[asg["experiment"] == "onboarding"]
asg = asg.assign(asg_s=secs(asg["assigned_at"]))
asg = asg[asg["asg_s"] <= end_s]

# lifetimes, rule cancel_or_inactivity: first cancel up to end - 30 days, else 30 days silent, else censored there
users = users[users["signup_at"] <= end].set_index("user_id")
ev_s = secs(events["event_at"])
events = events.assign(ev_s=ev_s)
last_s = events.groupby("user_id")["ev_s"].max()
cancel_s = events[events["event_type"] == "cancel"].groupby("user_id")["ev_s"].min()
life = pd.DataFrame({"signup_s": secs(users["signup_at"])}, index=users.index).join(last_s.rename("last_s")).join(cancel_s.rename("cancel_s"))
censor = end_s - C
last_act = life["last_s"].fillna(life["signup_s"])
cancelled = life["cancel_s"].notna() & (life["cancel_s"] <= censor)
inactive = (end_s - last_act) >= C
life["end_s"] = np.where(cancelled, life["cancel_s"], np.where(inactive, last_act, np.maximum(censor, life["signup_s"])))
life["churned"] = (cancelled | inactive).astype("int64")

u = asg.merge(life[["end_s", "churned"]], left_on="user_id", right_index=True).merge(
    users[["segment"]], left_on="user_id", right_index=True).set_index("user_id")
e = events.merge(asg[["user_id", "asg_s"]], on="user_id")
rel = e["ev_s"].to_numpy() - e["asg_s"].to_numpy()
kind = e["event_type"].to_numpy()
post, pre = (rel >= 0) & (rel < H), (rel < 0) & (rel >= -H)
purchase, feedback, adopted = kind == "purchase", kind == "feedback", kind == "adopted"
amount = e["amount"].fillna(0.0).to_numpy()
flags = pd.DataFrame({
    "w_purchases": post & purchase, "w_revenue": np.where(post & purchase, amount, 0.0),
    "w_feedback": post & feedback, "w_adopted": post & adopted, "p_events": pre,
    "p_purchases": pre & purchase, "p_revenue": np.where(pre & purchase, amount, 0.0),
    "p_feedback": pre & feedback, "p_adopted": pre & adopted, "user_id": e["user_id"].to_numpy()})
agg = flags.groupby("user_id").sum()
first_purchase = e.loc[purchase, ["user_id", "ev_s"]].groupby("user_id")["ev_s"].min()
idea = e.loc[feedback & (rel >= 0), ["user_id", "ev_s"]].groupby("user_id")["ev_s"].min()
keep = post | pre
dkey = np.where(rel >= 0, rel // DAY, -1 - (rel + H) // DAY)
days = pd.DataFrame({"user_id": e["user_id"].to_numpy()[keep], "d": dkey[keep]}).drop_duplicates()
days = days.assign(w=days["d"] >= 0, p=days["d"] < 0).groupby("user_id")[["w", "p"]].sum()
u = u.join(agg).join(first_purchase.rename("fp_s")).join(idea.rename("idea_s")).join(days)
for c in [*agg.columns, "w", "p"]:
    u[c] = u[c].fillna(0)

a_s = u["asg_s"].to_numpy()
observed = a_s + H <= end_s
r_observed = a_s + H + C <= end_s
fp = u["fp_s"].to_numpy()
customer = ~np.isnan(fp) & (fp < a_s)
t_churn = u["end_s"].to_numpy() - a_s
churned = u["churned"].to_numpy() == 1
buy = ~np.isnan(fp) & (fp - a_s < H)
ide = u["idea_s"].to_numpy()
idea_ev = ~np.isnan(ide) & (ide - a_s < H)
follow = np.minimum(H, end_s - a_s)
nan = np.nan
v = pd.DataFrame(index=u.index)
v["arm"], v["segment"] = u["arm"], u["segment"]
v["retained"] = np.where(r_observed, (~(churned & (t_churn < H))).astype(float), nan)
v["converted"] = np.where(observed & ~customer, buy.astype(float), nan)
v["feedback"] = np.where(observed, (u["w_feedback"] > 0).astype(float), nan)
v["adopted"] = np.where(observed, (u["w_adopted"] > 0).astype(float), nan)
v["purchases"] = np.where(observed, u["w_purchases"], nan)
v["revenue"] = np.where(observed, u["w_revenue"], nan)
v["active_days"] = np.where(observed, u["w"], nan)
v["pre_active"] = (u["p_events"] > 0).astype(float)
v["pre_feedback"] = (u["p_feedback"] > 0).astype(float)
v["pre_adopted"] = (u["p_adopted"] > 0).astype(float)
v["pre_purchases"], v["pre_revenue"], v["pre_active_days"] = u["p_purchases"].astype(float), u["p_revenue"], u["p"].astype(float)
v["churn_days"], v["churn_event"] = np.maximum(0, np.minimum(t_churn, H)) / DAY, (churned & (t_churn < H)).astype(float)
v["purchase_days"] = np.where(~customer, np.where(buy, fp - a_s, follow), nan) / DAY
v["purchase_event"] = np.where(~customer, buy.astype(float), nan)
v["idea_days"], v["idea_event"] = np.where(idea_ev, ide - a_s, follow) / DAY, idea_ev.astype(float)

caps = {c: np.percentile(v.loc[observed, c].to_numpy(float), Q) for c in CAPPABLE}  # linear, as quantile_cont
for c, cap in caps.items():
    v[c] = np.minimum(v[c], cap)


def components(metric):
    m = METRICS[metric]
    y = v[m.column]
    d = v[m.denominator] if m.denominator else 1.0
    x = v[m.pre] if m.pre else 0.0
    w = v[m.pre_denominator] if m.pre_denominator else 1.0
    return pd.DataFrame({"y": y, "d": d, "x": x, "v": w}, index=v.index)[y.notna()]


def sums(frame, keys):
    c = frame
    cols = {"n": c["y"].notna().astype("int64")}
    for k in "ydxv":
        cols[f"sum_{k}"] = c[k]
    for p in PAIRS:
        cols[f"sum_{p}"] = c[p[0]] * c[p[1]]
    return pd.DataFrame(cols).assign(**{k: frame[k] for k in keys}).groupby(keys, dropna=False).sum().reset_index()


def capcols(metric):
    m = METRICS[metric]
    return {"cap_y": caps.get(m.column, nan), "cap_d": caps.get(m.denominator, nan),
            "cap_x": caps.get(m.pre, nan), "cap_v": caps.get(m.pre_denominator, nan)}


def stats(keys):
    parts = []
    for metric in FIXED_HORIZON_METRICS:
        f = components(metric).join(v[["arm", "segment"]])
        parts.append(sums(f, keys).assign(metric=metric, **capcols(metric)))
    return pd.concat(parts, ignore_index=True)


arm_stats = stats(["arm"])
segment_stats = stats(["arm", "segment"])
start = a_s.min()
parts = []
for metric in FIXED_HORIZON_METRICS:
    known = a_s + H + (C if metric == "retained" else 0)
    f = components(metric).join(v[["arm"]])
    f["day"] = pd.Series((known - start + DAY - 1) // DAY, index=v.index)
    g = sums(f, ["arm", "day"]).sort_values(["arm", "day"])
    cum = g.groupby("arm")[[c for c in g.columns if c not in ("arm", "day")]].cumsum()
    parts.append(pd.concat([g[["arm", "day"]], cum], axis=1).assign(metric=metric, **capcols(metric)))
daily = pd.concat(parts, ignore_index=True)
tte = []
for metric in TIME_TO_EVENT_METRICS:
    m = METRICS[metric]
    f = v.loc[v[m.event].notna(), ["arm", m.column, m.event]]
    hours = np.ceil(np.round(f[m.column].to_numpy() * DAY) / 3600)
    g = pd.DataFrame({"arm": f["arm"].to_numpy(), "days": hours / 24, "event": f[m.event].to_numpy().astype("int64")})
    tte.append(g.groupby(["arm", "days", "event"]).size().rename("users").reset_index().assign(metric=metric))
tte = pd.concat(tte, ignore_index=True)
arms = pd.DataFrame({"users": v.groupby("arm").size(), "observed": pd.Series(observed, index=v.index).groupby(v["arm"]).sum(),
                     "retained_observed": pd.Series(r_observed, index=v.index).groupby(v["arm"]).sum(),
                     "customers_at_assignment": pd.Series(customer, index=v.index).groupby(v["arm"]).sum(),
                     "max_followup_days": pd.Series((end_s - a_s) / DAY, index=v.index).groupby(v["arm"]).max()}).reset_index()
data = ExperimentData(experiment="onboarding", horizon_days=30.0, churn="cancel_or_inactivity", churn_after_days=30.0,
                      cap_percentile=99, segment_by="segment", metrics=tuple(METRICS), unsupported={}, arms=arms,
                      arm_stats=arm_stats, daily=daily, time_to_event=tte, segment_stats=segment_stats)
res = readout(data, correction="holm", sequential=True)
seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
for name, frame in (("arm_stats", arm_stats), ("daily", daily), ("time_to_event", tte), ("segment_stats", segment_stats)):
    frame.to_parquet(out / f"{name}.parquet")
res.effects.to_parquet(out / "effects.parquet")
print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "effects": len(res.effects)}))
"""


def run_child(code: str, *argv: str) -> dict:
    """Run ``code`` in a fresh interpreter; its JSON line plus wall time and peak RSS (MB)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", code, *argv], stdout=out, stderr=err, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        code_ = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    if code_ != 0:
        sys.exit(f"benchmark child failed (exit {code_}):\n{stderr[-4000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result["wall_seconds"] = wall
    result["peak_mb"] = usage.ru_maxrss / 1024
    return result


def ensure_dataset(users: int, seed: int) -> Path:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import experiment_sim

    label = f"{users // 1_000_000}m" if users % 1_000_000 == 0 else f"{users // 1000}k"
    folder = ROOT / "data" / "interim" / f"experiment-{label}-seed{seed}"
    if not (folder / "dataset.yml").exists():
        print(f"writing {users:,} users with a three-arm experiment to {folder.relative_to(ROOT)} (once; cached) ...", flush=True)
        experiment_sim.write(experiment_sim.simulate(users, seed), folder)
    return folder


def compare(a: Path, b: Path) -> list[str]:
    """Differences between the two sides' tables and effects (empty when equal)."""
    import numpy as np
    import pandas as pd

    keys = {"arm_stats": ["arm", "metric"], "daily": ["metric", "arm", "day"], "time_to_event": ["metric", "arm", "days", "event"],
            "segment_stats": ["arm", "segment", "metric"], "effects": ["metric", "arm"]}
    problems = []
    for name, key in keys.items():
        x = pd.read_parquet(a / f"{name}.parquet")
        y = pd.read_parquet(b / f"{name}.parquet")
        cols = [c for c in x.columns if c in y.columns]
        x = x[cols].sort_values(key).reset_index(drop=True)
        y = y[cols].sort_values(key).reset_index(drop=True)
        try:
            for c in cols:
                if x[c].dtype.kind in "fiu" or y[c].dtype.kind in "fiu":
                    np.testing.assert_allclose(x[c].astype(float), y[c].astype(float), rtol=1e-9, atol=1e-9, equal_nan=True, err_msg=f"{name}.{c}")
                else:
                    assert (x[c].astype(str) == y[c].astype(str)).all(), f"{name}.{c}"
        except AssertionError as exc:
            problems.append(str(exc).splitlines()[0:6])
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.splitlines()[2:]))
    ap.add_argument("--users", type=int, default=1_000_000, help="assigned users (default 1,000,000)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=1, help="runs per side; the fastest is reported")
    args = ap.parse_args()
    folder = ensure_dataset(args.users, args.seed)
    events_mb = (folder / "events.parquet").stat().st_size / 1e6
    print(f"dataset {folder.relative_to(ROOT)}: events.parquet {events_mb:,.0f} MB; {os.cpu_count()} CPU(s)", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        wb_dir, pd_dir = Path(tmp, "workbench"), Path(tmp, "pandas")
        wb_dir.mkdir(), pd_dir.mkdir()
        wb_runs, pd_runs = [], []
        for i in range(args.repeat):  # alternate, so both sides see the same machine load
            wb_runs.append(run_child(WORKBENCH, str(folder), str(wb_dir)))
            print(f"  run {i + 1}: workbench {wb_runs[-1]['seconds']:.1f} s", flush=True)
            pd_runs.append(run_child(PANDAS, str(folder), str(pd_dir)))
            print(f"  run {i + 1}: pandas    {pd_runs[-1]['seconds']:.1f} s", flush=True)
        problems = compare(wb_dir, pd_dir)
    wb = min(wb_runs, key=lambda r: r["seconds"])
    pdr = min(pd_runs, key=lambda r: r["seconds"])
    print()
    print(f"experiment readout, {args.users:,} assigned users, 3 arms, 12 metrics (30-day horizon, cap 99th percentile, "
          f"CUPED, Holm, always-valid by day, RMST + hazard ratios, by segment); {wb['effects']} effects")
    print(f"{'':<34}{'time (s)':>10}{'CPU (s)':>10}{'peak RSS (MB)':>15}")
    print(f"{'workbench (Ibis + DuckDB tables)':<34}{wb['seconds']:>10.1f}{wb['cpu_seconds']:>10.1f}{wb['peak_mb']:>15,.0f}"
          f"   (tables {wb['tables_seconds']:.1f} s, estimates {wb['seconds'] - wb['tables_seconds']:.1f} s)")
    print(f"{'pandas tables, same estimates':<34}{pdr['seconds']:>10.1f}{pdr['cpu_seconds']:>10.1f}{pdr['peak_mb']:>15,.0f}")
    print(f"{'pandas / workbench':<34}{pdr['seconds'] / wb['seconds']:>9.1f}x{pdr['cpu_seconds'] / wb['cpu_seconds']:>9.1f}x"
          f"{pdr['peak_mb'] / wb['peak_mb']:>14.1f}x")
    if problems:
        print("RESULTS DIFFER between the workbench and pandas:\n  " + "\n  ".join(map(str, problems)))
        return 1
    print("results equal: yes (per-arm, per-day, per-segment sums, time-to-event counts and every effect, to 1e-9)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
