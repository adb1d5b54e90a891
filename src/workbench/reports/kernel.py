"""The kernel a run executes on: an IPython kernel started on this Python,
its process watched, and, when execution stops early, an error that names the
cell that was running and how the kernel ended (exit code or signal), or
which cell ran past the cell timeout, without runner internals."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import nbformat


class KernelWatch:
    """What the runner knows about the kernel: its process and the cell it was last asked to run."""

    def __init__(self, on_event=None):
        self.process = None
        self.cell_index: int | None = None
        self.on_event = on_event

    def started(self, process) -> None:
        self.process = process
        if self.on_event is not None and process is not None:
            self.on_event("kernel", process.pid)

    def exit_status(self) -> int | None:
        """The kernel's return code (negative: killed by that signal), if it has ended."""
        if self.process is None:
            return None
        try:
            return self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return None


def kernel_manager_class(extra_env: dict, log=None, watch: KernelWatch | None = None):
    """A kernel manager that starts an IPython kernel on *this* Python (whatever
    kernelspecs are installed) with ``extra_env`` added to its environment,
    the kernel process's own messages going to the open file ``log``, the
    connection encrypted where ZeroMQ supports it, and its process handed to
    ``watch``."""
    import zmq
    from ipykernel.kernelspec import RESOURCES, get_kernel_dict, make_ipkernel_cmd
    from jupyter_client.kernelspec import KernelSpec
    from jupyter_client.manager import AsyncKernelManager

    class WorkbenchKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            if zmq.has("curve"):
                self.transport_encryption = "auto"

        @property
        def kernel_spec(self):
            if self._kernel_spec is None:
                self._kernel_spec = KernelSpec(
                    argv=make_ipkernel_cmd(executable=sys.executable),
                    display_name="Python 3 (ipykernel)",
                    language="python",
                    resource_dir=RESOURCES,
                    metadata=dict(get_kernel_dict()["metadata"]),
                )
            return self._kernel_spec

        async def _async_pre_start_kernel(self, **kw):
            env = dict(kw.pop("env", None) or os.environ)
            env.update(extra_env)
            kw["env"] = env
            if log is not None:
                kw.setdefault("stdout", log)
                kw.setdefault("stderr", log)
            return await super()._async_pre_start_kernel(**kw)

        async def _async_launch_kernel(self, kernel_cmd, **kw):
            await super()._async_launch_kernel(kernel_cmd, **kw)
            if watch is not None:
                watch.started(getattr(self.provisioner, "process", None))

    return WorkbenchKernelManager


def describe_exit(code: int | None) -> str:
    if code is None:
        return "the kernel stopped answering"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = {
            "SIGKILL": " (often the system's out-of-memory killer: check free memory)",
            "SIGSEGV": " (a crash in compiled code, e.g. a C extension)",
            "SIGABRT": " (aborted by compiled code)",
            "SIGBUS": " (a crash in compiled code or a truncated memory-mapped file)",
        }.get(name, "")
        return f"the kernel process was killed by {name}{hint}"
    return f"the kernel process exited with code {code}"


def _cell_label(nb, index: int | None) -> str:
    if index is None or nb is None or index >= len(nb.cells):
        return "before any cell ran" if index is None else f"cell {index + 1}"
    n = nb.cells[index].get("execution_count")
    return f"cell In [{n}]" if n is not None else f"cell {index + 1}"


def _first_line(cell) -> str:
    lines = [line for line in (cell.source if cell is not None else "").splitlines() if line.strip()]
    return lines[0].strip()[:120] if lines else ""


def execution_error(exc: BaseException, watch: KernelWatch, executed: Path, cell_timeout) -> dict:
    """The manifest's ``error`` for an execution that did not get to the end."""
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    nb = None
    with contextlib.suppress(Exception):
        nb = nbformat.read(executed, as_version=4)
    index = watch.cell_index
    cell = nb.cells[index] if nb is not None and index is not None and index < len(nb.cells) else None
    label = _cell_label(nb, index)
    code = f" (`{_first_line(cell)}`)" if cell is not None and _first_line(cell) else ""
    base = {"cell_index": index, "execution_count": cell.get("execution_count") if cell is not None else None}
    if isinstance(exc, DeadKernelError):
        status = watch.exit_status()
        what = describe_exit(status)
        return {**base, "ename": "KernelDied", "evalue": f"{what} while running {label}{code}",
                "where": f"{what} while running {label}{code}; the cells after it did not run",
                "exit_code": status if status is not None and status >= 0 else None,
                "signal": signal.Signals(-status).name if status is not None and status < 0 and -status in signal.Signals._value2member_map_ else None,
                "detail": ""}
    if isinstance(exc, CellTimeoutError):
        return {**base, "ename": "CellTimeout", "evalue": f"{label}{code} ran longer than the cell timeout of {cell_timeout:g} s",
                "where": f"{label}{code} was stopped after {cell_timeout:g} s (--cell-timeout)", "detail": ""}
    text = str(exc).strip()
    return {**base, "ename": type(exc).__name__, "evalue": text.splitlines()[0] if text else "",
            "where": f"the notebook did not finish ({label}): {text or type(exc).__name__}", "detail": ""}


__all__ = ["KernelWatch", "describe_exit", "execution_error", "kernel_manager_class"]
