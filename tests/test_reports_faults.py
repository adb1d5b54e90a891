"""Faults in a batch: a worker killed mid-batch fails only its own job; an
interrupted batch (SIGINT) stops every worker and kernel at once, prints its
summary and rebuilds the index; a batch killed outright (SIGKILL) takes its
workers and kernels with it and starts no queued job. Small notebooks written
by the tests, never the real reports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from workbench.reports.batch import run_batch
from workbench.reports.index import incomplete_runs, list_runs

PARAMS = '''\
tag: str = ""  # job tag
markers: str = ""  # folder for the marker files
sleep: float = 0.0  # seconds to sleep, > 0 to be caught mid-run
'''
CELLS = [
    "import json, os, pathlib, time\nfrom workbench.reports import record",
    "pathlib.Path(markers, tag + '.json').write_text(json.dumps({'kernel': os.getpid(), 'worker': os.getppid()}))\ntime.sleep(sleep)",
    "record('job.tag', tag)",
]


@pytest.fixture
def project(tmp_path, make_notebook):
    make_notebook(tmp_path / "notebooks" / "sleeper.ipynb", PARAMS, CELLS, title="Sleeper")
    (tmp_path / "batches").mkdir()
    (tmp_path / "markers").mkdir()
    return tmp_path


def write_batch(project, jobs: dict[str, float]) -> Path:
    path = project / "batches" / "faults.yml"
    path.write_text(yaml.safe_dump({"name": "faults", "jobs": [
        {"notebook": "sleeper", "parameters": {"tag": tag, "markers": str(project / "markers"), "sleep": sleep}} for tag, sleep in jobs.items()
    ]}, sort_keys=False))
    return path


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def marker(project, tag) -> dict | None:
    path = project / "markers" / f"{tag}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def gone(pid: int) -> bool:
    """The process has ended (a zombie waiting for a parent to reap it counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError):
        return True


def test_a_killed_worker_fails_only_its_own_job(project):
    """kill -9 on one worker mid-batch: exactly that job fails, as a failed
    run naming the signal; the healthy worker's jobs and the queued ones succeed."""
    write_batch(project, {"victim": 600, "a": 0, "b": 0, "c": 0})
    killed = {}

    def kill_victim():
        m = wait_for(lambda: marker(project, "victim"), 120, "the victim job to start")
        killed.update(m)
        os.kill(m["worker"], signal.SIGKILL)

    killer = threading.Thread(target=kill_victim, daemon=True)
    killer.start()
    t0 = time.monotonic()
    result = run_batch("faults", workers=2, root=project, progress=False)
    killer.join(5)
    assert killed, "the victim was never killed"
    assert time.monotonic() - t0 < 300  # nobody waited for the victim's sleep
    by_tag = {o.job.parameters["tag"]: o for o in result.outcomes}
    assert sorted(by_tag) == ["a", "b", "c", "victim"]
    assert [t for t, o in by_tag.items() if not o.ok] == ["victim"]
    victim = by_tag["victim"]
    assert f"the worker process (pid {killed['worker']}) was killed by SIGKILL" in victim.problem
    assert victim.status == "failed" and victim.result is not None
    m = victim.result.manifest
    assert m["status"] == "failed" and m["error"]["ename"] == "WorkerDied" and "SIGKILL" in m["error"]["evalue"]
    runs = list_runs(project / "reports")
    assert sorted((r.parameters["tag"], r.status) for r in runs) == [("a", "succeeded"), ("b", "succeeded"), ("c", "succeeded"), ("victim", "failed")]
    assert incomplete_runs(project / "reports") == []
    wait_for(lambda: gone(killed["kernel"]), 10, "the victim's kernel to end")
    assert "1 failed" in result.summary() and "killed by SIGKILL" in result.summary()


def _start_batch(project, jobs: dict[str, float]) -> subprocess.Popen:
    write_batch(project, jobs)
    cmd = [sys.executable, "-m", "workbench.cli", "batch", "faults", "--workers", "2", "--quiet"]
    return subprocess.Popen(cmd, cwd=project, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _cleanup(proc: subprocess.Popen, pids: list[int]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    for pid in pids:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def test_an_interrupted_batch_stops_at_once_with_summary_and_index(project):
    proc = _start_batch(project, {"one": 600, "two": 600, "three": 600})
    pids: list[int] = []
    try:
        running = wait_for(lambda: [m for m in (marker(project, "one"), marker(project, "two")) if m] if all(
            marker(project, t) for t in ("one", "two")) else None, 180, "both workers to be mid-run")
        pids = [m["worker"] for m in running] + [m["kernel"] for m in running]
        t0 = time.monotonic()
        os.kill(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        took = time.monotonic() - t0
        assert proc.returncode == 130, err
        assert took < 10, f"the interrupted batch took {took:.1f} s to end"
        assert "Traceback" not in err and "Traceback" not in out
        assert "batch faults INTERRUPTED (SIGINT): 3 run(s), 0 succeeded, 0 failed, 2 interrupted, 1 not started" in out
        assert "not started: the batch was interrupted" in out and "run index: reports/index.html" in out
        assert (project / "reports" / "index.html").stat().st_mtime > time.time() - took - 1  # rebuilt just now
        assert "2 unfinished run folder(s)" in (project / "reports" / "index.html").read_text()
        for pid in pids:  # every worker and every kernel has ended
            wait_for(lambda pid=pid: gone(pid), 5, f"process {pid} to end")
        assert marker(project, "three") is None  # the queued job never started
        left = incomplete_runs(project / "reports")
        assert len(left) == 2 and all(json.loads((p / "manifest.json").read_text())["status"] == "interrupted" for p in left)
    finally:
        _cleanup(proc, pids)


def test_a_killed_batch_takes_its_workers_and_kernels_with_it(project):
    proc = _start_batch(project, {"one": 600, "two": 600, "three": 0})
    pids: list[int] = []
    try:
        running = wait_for(lambda: [marker(project, t) for t in ("one", "two")] if all(
            marker(project, t) for t in ("one", "two")) else None, 180, "both workers to be mid-run")
        pids = [m["worker"] for m in running] + [m["kernel"] for m in running]
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=10)
        for pid in pids:
            wait_for(lambda pid=pid: gone(pid), 10, f"process {pid} to end")
        time.sleep(3)
        assert marker(project, "three") is None  # no orphan starts a queued job
    finally:
        _cleanup(proc, pids)
