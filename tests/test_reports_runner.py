"""Runs: papermill execution into a run folder, the manifest, metrics.json,
report.html, failures, interruption and determinism."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from workbench.cli import main
from workbench.reports.index import incomplete_runs, list_runs, prune_incomplete
from workbench.reports.runner import _reserve, make_run_id, run_notebook

TOY_PARAMS = '''\
n: int = 3  # how many points
label: str = "toy"  # a label shown in the text
fail: bool = False  # raise on purpose in the middle
'''

TOY_CELLS = [
    ("md", "Intro text of the toy report."),
    "import os, sys\nimport matplotlib.pyplot as plt\nfrom IPython.display import Markdown\nfrom workbench.reports import escape, record",
    "record('toy.n', n)\nrecord({'toy.ratio': n / 7, 'toy.label': label, 'toy.cwd': os.getcwd(), 'toy.python': sys.executable})",
    "fig, ax = plt.subplots()\nax.plot(range(n))\nplt.show()",
    "Markdown(f'The label is **{escape(label)}** and n is {n:,}.')",
    "if fail:\n    raise ValueError('boom: ' + label)",
    "record('toy.after', 1)\nprint('after the failure point')",
    ("md", "## Closing section"),
]


@pytest.fixture
def toy(tmp_path, make_notebook):
    return make_notebook(tmp_path / "proj" / "notebooks" / "toy.ipynb", TOY_PARAMS, TOY_CELLS, title="Toy report")


def test_run_id_sorts_by_time_and_hashes_the_parameters():
    import datetime as dt

    t1 = dt.datetime(2026, 11, 22, 10, 15, 0, tzinfo=dt.timezone.utc)
    t2 = dt.datetime(2026, 11, 22, 10, 16, 0, tzinfo=dt.timezone.utc)
    a, b = make_run_id("nb", {"x": 1}, t1), make_run_id("nb", {"x": 1}, t2)
    assert re.fullmatch(r"20261122T101500Z-[0-9a-f]{8}", a)
    assert sorted([b, a]) == [a, b]
    assert a.split("-")[1] == b.split("-")[1]  # same parameters, same hash
    assert make_run_id("nb", {"x": 2}, t1) != a


def test_reserving_the_same_run_id_twice_gives_distinct_folders(tmp_path):
    id1, tmp1 = _reserve(tmp_path / "nb", "20260101T000000Z-abcdef12")
    id2, tmp2 = _reserve(tmp_path / "nb", "20260101T000000Z-abcdef12")
    assert id1 != id2 and tmp1 != tmp2 and tmp1.is_dir() and tmp2.is_dir()
    assert tmp1.name.startswith(".tmp-") and id2.endswith("-2")


def test_a_run_writes_notebook_report_metrics_and_manifest(toy, tmp_path):
    reports = tmp_path / "reports"
    result = run_notebook(toy, {"n": 5}, reports_dir=reports, progress=False)
    assert result.ok, result.error
    run_dir = result.run_dir
    assert run_dir.parent == reports / "toy" and run_dir.name == result.run_id
    assert sorted(p.name for p in run_dir.iterdir() if p.name != "kernel.log") == ["manifest.json", "metrics.json", "report.html", "toy.ipynb"]
    assert not incomplete_runs(reports)

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["toy.n"] == 5 and metrics["toy.ratio"] == 0.714286 and metrics["toy.label"] == "toy"  # 6 significant digits
    assert all(isinstance(v, (int, float, str)) for v in metrics.values())
    # the kernel ran on this Python, in the project root
    assert metrics["toy.python"] == sys.executable
    assert Path(metrics["toy.cwd"]) == toy.parent.parent.resolve()

    m = json.loads((run_dir / "manifest.json").read_text())
    assert m["status"] == "succeeded" and m["error"] is None
    assert m["notebook"] == "toy" and m["run_id"] == result.run_id and m["title"] == "Toy report"
    assert m["parameters"] == {"n": 5, "label": "toy", "fail": False}
    assert m["parameters_given"] == {"n": 5}
    assert m["duration_s"] > 0 and m["finished_at"] >= m["started_at"]
    assert m["pid"] == os.getpid() and m["host"]
    assert {"parameter_check_s", "kernel_start_s", "execute_s", "render_s"} <= set(m["timings"])
    assert m["timings"]["kernel_start_s"] > 0
    assert m["workbench_version"] and "commit" in m["git"]

    executed = nbformat.read(run_dir / "toy.ipynb", as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "n = 5" in injected[0].source
    assert (reports / "index.html").is_file()


def test_report_html_is_self_contained_with_a_header_and_parameter_table(toy, tmp_path):
    result = run_notebook(toy, {"n": 4, "label": "ok"}, reports_dir=tmp_path / "reports", progress=False)
    html = result.report.read_text()
    # no script at all, and no reference to any other host
    assert "<script" not in html.lower()
    assert not re.search(r"""<(link|script|img|iframe)[^>]+(src|href)=["']?(https?:)?//""", html, re.I)
    assert "cdn" not in html.lower() and "mathjax" not in html.lower() and "require.js" not in html.lower()
    assert "Content-Security-Policy" in html and "script-src 'none'" in html
    # the figure is embedded
    assert re.search(r"<img [^>]*src=\"data:image/png;base64,[A-Za-z0-9+/]{100,}", html)
    # header: title, status, parameters that differ, version, run id
    assert '<h1 class="wb-title">Toy report' in html and "succeeded" in html
    assert "<code>n=4</code>" in html and result.run_id in html
    # the injected-parameters cell became a table; its code is not on the page
    assert 'id="wb-parameters"' in html
    assert "<code>n</code></td><td class=\"wb-value\"><code>4</code>" in html
    assert "# Parameters" not in html and "injected-parameters" not in html
    # code is hidden by default with a pure-CSS toggle, and the metrics table is there
    assert 'id="wb-show-code"' in html and 'for="wb-show-code"' in html
    assert "#wb-show-code:not(:checked) ~ main .jp-CodeCell .jp-Cell-inputWrapper" in html
    assert "toy.ratio" in html and "0.5714" in html
    assert "The label is <strong>ok</strong> and n is 4." in html


def test_a_failing_notebook_keeps_its_partial_run_and_shows_the_error(toy, tmp_path):
    reports = tmp_path / "reports"
    result = run_notebook(toy, {"fail": True, "label": "<b>x</b>"}, reports_dir=reports, progress=False)
    assert not result.ok and result.status == "failed"
    assert result.error.startswith("ValueError: boom: <b>x</b>")
    m = result.manifest
    assert m["status"] == "failed" and m["error"]["ename"] == "ValueError"
    assert m["error"]["evalue"] == "boom: <b>x</b>"
    assert "\x1b[" not in m["error"]["detail"]  # tracebacks are stored without terminal colours
    # the partial notebook: cells before the failure have outputs, the one after never ran
    nb = nbformat.read(result.executed_notebook, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert any(o.get("output_type") == "error" for o in code[-2].outputs)
    assert code[-1].outputs == [] and code[-1].execution_count is None
    assert result.metrics == {k: v for k, v in result.metrics.items() if k != "toy.after"}
    assert "toy.n" in result.metrics and "toy.after" not in result.metrics
    # the page shows the error prominently, with the failing cell's code visible
    html = result.report.read_text()
    assert 'class="wb-error" role="alert"' in html and "This run failed" in html
    assert "boom: &lt;b&gt;x&lt;/b&gt;" in html
    assert 'href="#wb-failed-cell"' in html and 'id="wb-failed-cell"' in html
    assert "celltag_wb-failed" in html
    assert "failed" in html and "<script" not in html.lower()
    # it is a finished run: listed, not hidden
    assert [r.run_id for r in list_runs(reports)] == [result.run_id]


def test_cli_run_exits_non_zero_for_a_failing_notebook(toy, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(toy.parent.parent)
    assert main(["run", "toy", "-p", "fail", "true", "--quiet"]) == 1
    captured = capsys.readouterr()
    out = captured.out.strip()
    assert out.endswith("report.html") and Path(out).is_file()
    # --quiet hides the progress, not why the run failed
    assert captured.err.strip() == "FAILED: ValueError: boom: toy"
    params = tmp_path / "params.yaml"
    params.write_text("n: 2\nlabel: from yaml\n")
    assert main(["run", "toy", "-f", str(params), "--quiet"]) == 0
    out = capsys.readouterr().out.strip()
    metrics = json.loads((Path(out).parent / "metrics.json").read_text())
    assert metrics["toy.n"] == 2 and metrics["toy.label"] == "from yaml"


SLOW_PARAMS = '''\
marker: str = ""  # file to write once the notebook is under way
'''
SLOW_CELLS = [
    "import os, time, pathlib\nfrom workbench.reports import record\nrecord('slow.started', 1)",
    "pathlib.Path(marker).write_text(str(os.getpid()))\ntime.sleep(600)",
    "record('slow.finished', 1)",
]


def test_an_interrupted_run_leaves_nothing_that_looks_finished(tmp_path, make_notebook):
    nb = make_notebook(tmp_path / "proj" / "notebooks" / "slow.ipynb", SLOW_PARAMS, SLOW_CELLS)
    reports = tmp_path / "reports"
    marker = tmp_path / "kernel.pid"
    cmd = [sys.executable, "-m", "workbench.cli", "run", str(nb), "-p", "marker", str(marker), "--reports", str(reports), "--quiet"]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while not marker.exists():  # wait until the notebook is mid-way
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.2)
        kernel_pid = int(marker.read_text())
        os.killpg(proc.pid, signal.SIGKILL)  # no chance to clean up
        proc.wait()
        try:
            os.kill(kernel_pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    left = incomplete_runs(reports)
    assert len(left) == 1 and left[0].name.startswith(".tmp-")
    assert json.loads((left[0] / "manifest.json").read_text())["status"] == "running"
    # nothing that looks finished: no visible run folder, nothing in the index
    assert [p.name for p in (reports / "slow").iterdir()] == [left[0].name]
    assert list_runs(reports) == []
    from workbench.reports.index import build_index

    index = build_index(reports).read_text()
    assert "1 unfinished run folder" in index and left[0].name not in index
    assert prune_incomplete(reports) == left and not left[0].exists()


def test_same_notebook_same_parameters_same_data_gives_identical_metrics(report_runs, repo_root, tiny_dataset, tmp_path):
    first = report_runs("data_overview", dataset=str(tiny_dataset))
    assert first.ok, first.error
    again = run_notebook(repo_root / "notebooks" / "data_overview.ipynb", {"dataset": str(tiny_dataset)},
                         reports_dir=tmp_path / "reports", progress=False)
    assert again.ok, again.error
    assert again.run_id != first.run_id and again.run_id.split("-")[1] == first.run_id.split("-")[1]
    a = (first.run_dir / "metrics.json").read_bytes()
    b = (again.run_dir / "metrics.json").read_bytes()
    assert len(json.loads(a)) >= 10
    assert a == b


# ----------------------------------------------------------------- a kernel that dies
DEAD_PARAMS = 'how: str = "exit"  # one of: exit, segv, kill: how the kernel dies\n'
DEAD_CELLS = [
    "import os, signal, time\nfrom workbench.reports import record\nrecord('before', 1)",
    "# the fatal cell\nif how == 'exit':\n    os._exit(3)\nos.kill(os.getpid(), getattr(signal, 'SIG' + how.upper()))\ntime.sleep(30)",
    "record('after', 1)",
]


@pytest.mark.parametrize(("how", "expected"), [("exit", "the kernel process exited with code 3"),
                                                ("segv", "the kernel process was killed by SIGSEGV (a crash in compiled code"),
                                                ("kill", "the kernel process was killed by SIGKILL (often the system's out-of-memory killer")])
def test_a_dead_kernel_is_reported_with_its_cell_and_exit(tmp_path, make_notebook, how, expected):
    nb = make_notebook(tmp_path / "proj" / "notebooks" / "dead.ipynb", DEAD_PARAMS, DEAD_CELLS)
    result = run_notebook(nb, {"how": how}, reports_dir=tmp_path / "reports", progress=False)
    assert result.status == "failed"
    err = result.manifest["error"]
    assert err["ename"] == "KernelDied" and err["evalue"].startswith(expected), err
    # the cell that was running: its place and its first line
    assert err["cell_index"] == 4 and "(`# the fatal cell`)" in err["evalue"]
    assert (err["exit_code"], err["signal"]) == ((3, None) if how == "exit" else (None, "SIG" + how.upper()))
    assert "Traceback" not in json.dumps(err) and "runner.py" not in json.dumps(err)  # no runner internals
    assert result.metrics == {"before": 1}
    html = result.report.read_text()
    assert "This run failed" in html and "KernelDied" in html and expected.split(" (")[0] in html
    assert 'id="wb-failed-cell"' in html  # the page marks the cell that was running


def test_a_cell_timeout_names_the_cell(tmp_path, make_notebook):
    nb = make_notebook(tmp_path / "proj" / "notebooks" / "slowcell.ipynb", "n: int = 1  # n", ["import time", "time.sleep(60)"])
    result = run_notebook(nb, reports_dir=tmp_path / "reports", progress=False, cell_timeout=2)
    err = result.manifest["error"]
    assert err["ename"] == "CellTimeout" and "(`time.sleep(60)`) ran longer than the cell timeout of 2 s" in err["evalue"]


@pytest.mark.parametrize("bad", [0, -5, float("nan")])
def test_a_cell_timeout_must_be_positive(toy, tmp_path, bad):
    from workbench.errors import ParameterError

    with pytest.raises(ParameterError, match="cell_timeout must be a positive number of seconds"):
        run_notebook(toy, reports_dir=tmp_path / "reports", progress=False, cell_timeout=bad)
    assert not (tmp_path / "reports").exists()


# ----------------------------------------------------------------- relative dataset paths
DATASET_PARAMS = 'dataset: str = "sample"  # dataset folder or built-in name\n'
DATASET_CELLS = ["from workbench.reports import record\nrecord('seen', dataset)"]


def test_a_relative_dataset_path_means_what_validate_means(tmp_path, make_notebook, monkeypatch, capsys):
    """Resolved against the caller's working folder before the kernel starts
    (the kernel runs in the project root); built-in names and URLs stay as given."""
    from workbench.reports.runner import dataset_argument

    nb = make_notebook(tmp_path / "proj" / "notebooks" / "ds.ipynb", DATASET_PARAMS, DATASET_CELLS)
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "data" / "mine").mkdir(parents=True)
    monkeypatch.chdir(elsewhere)
    assert main(["run", str(nb), "-p", "dataset", "data/mine", "--reports", str(tmp_path / "reports"), "--quiet"]) == 0
    run_dir = Path(capsys.readouterr().out.strip()).parent
    assert json.loads((run_dir / "metrics.json").read_text())["seen"] == str(elsewhere / "data" / "mine")
    m = json.loads((run_dir / "manifest.json").read_text())
    assert m["parameters"]["dataset"] == str(elsewhere / "data" / "mine") and m["parameters_given"]["dataset"] == "data/mine"
    # what validate would do, without a kernel
    assert dataset_argument("sample", elsewhere) == "sample"
    assert dataset_argument("cdnow-sample", elsewhere) == "cdnow-sample"
    assert dataset_argument("postgres://u@h/db", elsewhere) == "postgres://u@h/db"
    assert dataset_argument("../x/./y", elsewhere) == str(tmp_path / "x" / "y")
    assert dataset_argument("/abs/path", elsewhere) == "/abs/path"
    (elsewhere / "sample").mkdir()  # a folder named like a built-in wins, as in resolve_dataset
    assert dataset_argument("sample", elsewhere) == str(elsewhere / "sample")


def test_a_relative_dataset_path_in_a_batch_is_relative_to_the_project(tmp_path, make_notebook, monkeypatch):
    from workbench.reports.batch import load_batch

    project = tmp_path / "proj"
    make_notebook(project / "notebooks" / "ds.ipynb", DATASET_PARAMS, DATASET_CELLS)
    (project / "batches").mkdir()
    (project / "batches" / "b.yml").write_text("jobs:\n  - notebook: ds\n    grid: {dataset: [data/mine, sample]}\n")
    monkeypatch.chdir(tmp_path)
    batch = load_batch(project / "batches" / "b.yml")
    assert [j.parameters["dataset"] for j in batch.jobs] == [str(project.resolve() / "data" / "mine"), "sample"]


# ----------------------------------------------------------------- a full disk
def _full_disk(monkeypatch, when=lambda data: True):
    """Make the reports' low-level write fail with ENOSPC (after writing a part of the data) when ``when(data)``."""
    import errno

    from workbench.reports import files

    real = files._write

    def write(fd, data):
        if when(bytes(data)):
            real(fd, bytes(data)[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data)

    monkeypatch.setattr(files, "_write", write)


def test_a_full_disk_while_writing_a_run_keeps_nothing_half_written(toy, tmp_path, monkeypatch, capsys):
    reports = tmp_path / "reports"
    _full_disk(monkeypatch, when=lambda data: data.startswith(b"<!DOCTYPE html>"))  # the report page, after the kernel ran
    monkeypatch.chdir(toy.parent.parent)
    assert main(["run", "toy", "--reports", str(reports), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: cannot write ") and "report.html: no space left on the disk" in err
    assert "not kept" in err and "Traceback" not in err
    assert list((reports / "toy").iterdir()) == []  # no run folder, no hidden folder, no part file
    assert list_runs(reports) == []


def test_a_full_disk_while_writing_the_index_leaves_the_old_one(tmp_path, monkeypatch, capsys):
    from workbench.reports.index import build_index

    reports = tmp_path / "reports"
    old = build_index(reports).read_bytes()
    _full_disk(monkeypatch)
    assert main(["index", "--reports", str(reports)]) == 2
    err = capsys.readouterr().err
    assert err.strip().startswith("error: cannot write ") and err.strip().endswith("index.html: no space left on the disk: free some space and run again")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert sorted(p.name for p in reports.iterdir()) == ["index.html"] and (reports / "index.html").read_bytes() == old


# ----------------------------------------------------------------- prune never takes a starting run
def test_prune_never_removes_a_run_that_is_starting(tmp_path):
    """A run's hidden folder appears with its manifest in it, so a prune
    running at the same moment sees a live process and leaves it."""
    import threading

    reports = tmp_path / "reports"
    made, stop = [], threading.Event()

    def prune():
        while not stop.is_set():
            prune_incomplete(reports)

    pruner = threading.Thread(target=prune)
    pruner.start()
    try:
        for i in range(150):
            made.append(_reserve(reports / "nb", f"20260101T000000Z-{i:08x}", {"pid": os.getpid(), "status": "running"})[1])
    finally:
        stop.set()
        pruner.join()
    assert all(p.is_dir() and (p / "manifest.json").is_file() for p in made)
    assert not list((reports / "nb").glob(".new-*"))


def test_prune_removes_leftovers_of_dead_processes_only(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    nb = tmp_path / "reports" / "nb"
    _, live = _reserve(nb, "20260101T000000Z-live0000", {"pid": os.getpid()})
    _, gone = _reserve(nb, "20260101T000000Z-gone0000", {"pid": int(dead)})
    _, other = _reserve(nb, "20260101T000000Z-othr0000", {"pid": int(dead), "host": "another-host"})
    staging = nb / f".new-{dead}-abcd1234"
    staging.mkdir()
    assert sorted(prune_incomplete(tmp_path / "reports")) == sorted([gone, staging])
    assert live.is_dir() and other.is_dir()


# ----------------------------------------------------------------- reruns are byte-identical
NOISY_CELLS = [
    "import random\nfrom workbench.reports import record\nnoise = 1 + random.uniform(-1, 1) * 1e-12  # differs in the last bits per run",
    "record({'a': 0.1234567891 * noise, 'b': 98765.4321 * noise, 'c': -2.5e-7 * noise, 'zero': -0.0 * noise, 'n': 7,\n"
    "        'nan': float('nan') * noise, 'inf': float('inf'), 'text': 'same'})",
]


def test_reruns_that_differ_in_the_last_bits_give_byte_identical_metrics(tmp_path, make_notebook):
    nb = make_notebook(tmp_path / "proj" / "notebooks" / "noisy.ipynb", "n: int = 1  # n", NOISY_CELLS)
    runs = [run_notebook(nb, reports_dir=tmp_path / "reports", progress=False) for _ in range(2)]
    a, b = ((r.run_dir / "metrics.json").read_bytes() for r in runs)
    assert a == b
    assert json.loads(a) == {"a": 0.123457, "b": 98765.4, "c": -2.5e-07, "zero": 0.0, "n": 7, "nan": None, "inf": None, "text": "same"}
    assert b"NaN" not in a and b"Infinity" not in a
