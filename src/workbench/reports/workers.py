"""Supervised worker processes for batches: one fresh process per job.

:func:`supervise` runs ``entry(task, report)`` for each task in a worker
process of its own (at most ``workers`` at a time) and hands each task's end to
``on_finish``. Workers are forked from a fork server that has imported the
``preload`` modules once (on POSIX; elsewhere they are spawned), so a fresh
process per job costs milliseconds, not the seconds of importing the runner.
What it guarantees:

- a worker that dies (``kill -9``, a crash) fails only its own task, with how
  it ended (signal or exit code); its kernel is stopped too;
- an interrupted supervisor (Ctrl-C, ``SIGTERM``, ``SIGHUP``) stops every
  worker and its kernel at once, starts no queued task, and returns what was
  running and what never started, so the caller can still print its summary;
- a supervisor killed outright (``kill -9``) takes its workers with it: each
  worker watches its pipe to the supervisor, whose end closes when the
  supervisor ends (checked every half second, and unlike a process id it
  cannot be fooled by a zombie or a reused pid); it also asks the kernel for
  ``SIGTERM`` when its own parent dies (``PR_SET_PDEATHSIG`` on Linux). On
  ``SIGTERM`` a worker kills its kernel's process group and exits. The
  kernel itself also exits when its worker is gone (ipykernel's parent
  poller), and the fork server exits once the supervisor and its workers
  are gone.

Each worker runs in a session and process group of its own, so a Ctrl-C in
the terminal reaches only the supervisor, which then stops the workers in
order (no screens of tracebacks). ``report(kind, value)`` lets the task tell
the supervisor about its run folder (``"run_dir"``) and kernel (``"kernel"``).
"""

from __future__ import annotations

import collections
import contextlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

_STOP_SIGNALS = tuple(s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None)
_PR_SET_PDEATHSIG = 1
#: seconds a worker has to exit after SIGTERM before it is killed
STOP_GRACE_S = 3.0
#: how often a worker checks that its supervisor is alive
PARENT_CHECK_S = 0.5


@dataclass
class Ending:
    """How one task ended: ``result`` from ``entry`` (if it returned), else
    ``problem`` saying why not; ``run_dir`` and ``kernel_pid`` as reported."""

    task: object
    result: object = None
    problem: str | None = None
    run_dir: Path | None = None
    kernel_pid: int | None = None
    worker_pid: int | None = None
    exitcode: int | None = None
    seconds: float = 0.0  # from starting the worker to its end

    @property
    def died(self) -> bool:
        return self.result is None and self.problem is not None and self.exitcode not in (0, None)


@dataclass
class Interrupted:
    """What an interrupted :func:`supervise` left: tasks that were running (as
    :class:`Ending`, stopped) and tasks that never started."""

    running: list
    queued: list
    signal: str = "SIGINT"


# --------------------------------------------------------------------- the worker side
_kernel_pid: int | None = None


def _kill_group(pid: int | None, sig=signal.SIGKILL) -> None:
    if pid:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)


def _on_stop(signum, frame) -> None:  # pragma: no cover - runs in the worker process
    _kill_group(_kernel_pid)
    os._exit(128 + signum)


def _watch_parent(lifeline, parent: int) -> None:  # pragma: no cover - runs in the worker process
    """The supervisor never writes to a worker: its end of the pipe becoming
    readable means it closed, i.e. the supervisor has ended (even as a zombie)."""
    while True:
        if multiprocessing.connection.wait([lifeline], timeout=PARENT_CHECK_S) or os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGTERM)
            return


def die_with_parent(lifeline) -> None:
    """Make this process receive SIGTERM when the supervisor holding the other
    end of ``lifeline`` ends, or when its own parent does (prctl where the
    kernel offers it, and a watcher thread for both)."""
    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    threading.Thread(target=_watch_parent, args=(lifeline, parent), name="parent-watch", daemon=True).start()


def _worker_main(conn, entry, task, env: dict, cwd: str) -> None:  # pragma: no cover - runs in the worker process
    global _kernel_pid
    os.setsid()
    os.environ.clear()  # the supervisor's environment and folder now, not the fork server's from its start
    os.environ.update(env)
    os.chdir(cwd)
    signal.signal(signal.SIGTERM, _on_stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, _on_stop)
    die_with_parent(conn)

    def report(kind: str, value) -> None:
        global _kernel_pid
        if kind == "kernel":
            _kernel_pid = value
        conn.send(("event", kind, value))

    try:
        result = entry(task, report)
        conn.send(("result", result))
    except BaseException as exc:  # noqa: BLE001 - everything is reported to the supervisor
        conn.send(("problem", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


# --------------------------------------------------------------------- the supervisor side
class _Worker:
    def __init__(self, task, process, conn):
        self.task, self.process, self.conn = task, process, conn
        self.ending = Ending(task, worker_pid=process.pid)
        self.t0 = time.monotonic()

    def drain(self) -> None:
        """Read every message the worker has sent so far."""
        try:
            while self.conn.poll():
                msg = self.conn.recv()
                if msg[0] == "event":
                    if msg[1] == "run_dir":
                        self.ending.run_dir = Path(msg[2])
                    elif msg[1] == "kernel":
                        self.ending.kernel_pid = int(msg[2])
                elif msg[0] == "result":
                    self.ending.result = msg[1]
                elif msg[0] == "problem":
                    self.ending.problem = msg[1]
        except (EOFError, OSError):
            pass


def describe_exit(pid: int, exitcode: int | None) -> str:
    """How a worker process ended, in words."""
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"the worker process (pid {pid}) was killed by {name}"
    return f"the worker process (pid {pid}) exited with code {exitcode} before finishing its run"


def _start(ctx, entry, task) -> _Worker:
    """A worker for ``task``: it reports on its end of a duplex pipe, and
    watches that pipe for the supervisor's end closing (its lifeline)."""
    ours, theirs = ctx.Pipe(duplex=True)
    process = ctx.Process(target=_worker_main, args=(theirs, entry, task, dict(os.environ), os.getcwd()), name="workbench-worker")
    process.start()
    theirs.close()
    return _Worker(task, process, ours)


def _finish(w: _Worker) -> Ending:
    w.drain()
    w.process.join()
    w.conn.close()
    e = w.ending
    e.exitcode = w.process.exitcode
    e.seconds = time.monotonic() - w.t0
    if e.result is None and e.problem is None:
        e.problem = describe_exit(w.process.pid, e.exitcode)
        _kill_group(e.kernel_pid)  # its kernel must not outlive it
    return e


def _stop(workers: list[_Worker]) -> list[Ending]:
    """Stop running workers and their kernels, at once: SIGTERM, then SIGKILL after a grace period."""
    for w in workers:
        w.drain()
        _kill_group(w.process.pid, signal.SIGTERM)
        _kill_group(w.ending.kernel_pid)
    deadline = time.monotonic() + STOP_GRACE_S
    for w in workers:
        w.process.join(max(0.0, deadline - time.monotonic()))
        if w.process.is_alive():
            _kill_group(w.process.pid)
            w.process.join(1.0)
    endings = []
    for w in workers:
        w.drain()
        w.conn.close()
        w.ending.exitcode = w.process.exitcode
        w.ending.seconds = time.monotonic() - w.t0
        w.ending.problem = w.ending.problem or "interrupted"
        _kill_group(w.ending.kernel_pid)
        endings.append(w.ending)
    return endings


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _context(preload: tuple[str, ...]):
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(list(preload))
        return ctx
    return multiprocessing.get_context("spawn")  # pragma: no cover - not POSIX


def supervise(tasks, workers: int, entry, on_finish, *, preload: tuple[str, ...] = ()) -> Interrupted | None:
    """Run ``entry(task, report)`` for every task in supervised worker
    processes; ``on_finish(ending)`` is called in this process as each task
    ends. Returns None when every task ended, or :class:`Interrupted` if
    SIGINT, SIGTERM or SIGHUP stopped the batch (the workers and their kernels
    are stopped by then). ``entry`` and the tasks must be picklable;
    ``preload`` names modules the fork server imports once for all workers."""
    ctx = _context(preload)
    queue = collections.deque(tasks)
    live: dict[int, _Worker] = {}
    in_main = threading.current_thread() is threading.main_thread()
    previous = {s: signal.getsignal(s) for s in _STOP_SIGNALS} if in_main else {}
    for s, handler in previous.items():
        if handler is not signal.SIG_IGN:  # e.g. SIGHUP under nohup stays ignored
            signal.signal(s, _raise_interrupt)
    try:
        while queue or live:
            while queue and len(live) < workers:
                w = _start(ctx, entry, queue.popleft())
                live[w.process.sentinel] = w
            ready = multiprocessing.connection.wait([w.conn for w in live.values()] + list(live), timeout=1.0)
            for w in live.values():
                if w.conn in ready:
                    w.drain()
            for sentinel in [s for s in live if s in ready]:
                on_finish(_finish(live.pop(sentinel)))
        return None
    except KeyboardInterrupt as exc:
        name = str(exc.args[0]) if exc.args else "SIGINT"
        if in_main:
            for s in _STOP_SIGNALS:
                signal.signal(s, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        running = _stop(list(live.values()))
        return Interrupted(running, list(queue), name)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


__all__ = ["Ending", "Interrupted", "describe_exit", "die_with_parent", "supervise"]
