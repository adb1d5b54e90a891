"""JupyterLab against the installed package, as `make lab` starts it
(``jupyter lab notebooks/``): a server on loopback with a token lists the
report notebooks through its REST API, and a kernel it starts imports the
package, runs on this Python and finds the project root."""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from conftest import REPO

websocket = pytest.importorskip("websocket", reason="websocket-client (a jupyter_server dependency) is missing")

#: guards against a server or kernel that hangs (not a speed requirement)
HANG_GUARD_S = 600


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    def __init__(self, tmp: Path):
        self.port = free_port()
        self.token = secrets.token_hex(24)
        self.base = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        for var, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"), ("JUPYTER_RUNTIME_DIR", "runtime"), ("IPYTHONDIR", "ipython")):
            env[var] = str(tmp / sub)  # nothing from (or into) the user's own Jupyter setup
        env.pop("WORKBENCH_ROOT", None)
        self.log = open(tmp / "lab.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", str(REPO / "notebooks"), "--no-browser", "--ServerApp.ip=127.0.0.1",
             f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
             *(["--allow-root"] if os.geteuid() == 0 else [])],  # CI containers run as root
            cwd=REPO, env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )

    def api(self, method: str, path: str, body=None):
        req = urllib.request.Request(self.base + path, method=method, headers={"Authorization": f"token {self.token}"},
                                     data=None if body is None else json.dumps(body).encode())
        with urllib.request.urlopen(req, timeout=HANG_GUARD_S) as resp:
            text = resp.read().decode()
            return resp.status, (json.loads(text) if text else None)

    def wait_ready(self):
        deadline = time.monotonic() + HANG_GUARD_S
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"JupyterLab exited with {self.proc.returncode}: {self.output()}"
            try:
                return self.api("GET", "/api/status")
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.3)
        pytest.fail(f"JupyterLab did not answer: {self.output()}")

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")[-3000:]

    def stop(self):
        try:
            if self.proc.poll() is None:
                self.api("POST", "/api/shutdown")
                self.proc.wait(timeout=60)
        except Exception:
            self.proc.kill()
            self.proc.wait()
        finally:
            self.log.close()


def execute(lab: Lab, kernel_id: str, code: str) -> tuple[dict, str]:
    """Run code in a kernel through the server's websocket; (reply, stdout)."""
    ws = websocket.create_connection(f"ws://127.0.0.1:{lab.port}/api/kernels/{kernel_id}/channels?token={lab.token}", timeout=HANG_GUARD_S)
    try:
        msg_id = uuid.uuid4().hex
        ws.send(json.dumps({
            "header": {"msg_id": msg_id, "username": "test", "session": uuid.uuid4().hex, "msg_type": "execute_request",
                       "version": "5.3", "date": dt.datetime.now(dt.timezone.utc).isoformat()},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
        }))
        stdout = []
        while True:
            msg = json.loads(ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
                stdout.append(msg["content"]["text"])
            if msg["msg_type"] == "execute_reply":
                return msg["content"], "".join(stdout)
    finally:
        ws.close()


def test_jupyterlab_lists_the_notebooks_and_starts_a_kernel_with_the_package(tmp_path):
    lab = Lab(tmp_path)
    try:
        status, info = lab.wait_ready()
        assert status == 200 and "started" in info

        # the token is required
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(lab.base + "/api/contents", timeout=HANG_GUARD_S)
        assert denied.value.code == 403

        status, listing = lab.api("GET", "/api/contents")
        names = {item["name"] for item in listing["content"] if item["type"] == "notebook"}
        assert names == {p.name for p in (REPO / "notebooks").glob("*.ipynb")}
        assert "data_overview.ipynb" in names
        status, nb = lab.api("GET", "/api/contents/data_overview.ipynb?content=1")
        assert nb["type"] == "notebook"
        assert any("parameters" in c["metadata"].get("tags", []) for c in nb["content"]["cells"])

        status, specs = lab.api("GET", "/api/kernelspecs")
        assert specs["default"] == "python3" and "python3" in specs["kernelspecs"]

        # open the notebook the way JupyterLab does: a session for its path
        status, session = lab.api("POST", "/api/sessions", {"path": "data_overview.ipynb", "type": "notebook", "name": "", "kernel": {"name": "python3"}})
        assert status == 201
        kernel = session["kernel"]
        reply, out = execute(lab, kernel["id"], (
            "import json, os, sys, workbench\n"
            "from workbench.data import project_root\n"
            "from workbench.reports import record, recorded\n"
            "record('lab.check', 1)\n"
            "print(json.dumps({'file': workbench.__file__, 'python': sys.executable, 'root': str(project_root()),"
            " 'cwd': os.getcwd(), 'recorded': recorded()}))"
        ))
        assert reply["status"] == "ok", reply
        seen = json.loads(out.strip().splitlines()[-1])
        assert Path(seen["python"]).resolve() == Path(sys.executable).resolve()  # the project's environment
        assert Path(seen["file"]).is_file()
        assert Path(seen["cwd"]).resolve() == (REPO / "notebooks").resolve()
        assert Path(seen["root"]).resolve() == REPO.resolve()  # dataset names like `sample` resolve from here
        assert seen["recorded"] == {"lab.check": 1}  # record() works interactively, in memory

        status, _ = lab.api("DELETE", f"/api/sessions/{session['id']}")
        assert status == 204
        assert lab.api("GET", "/api/kernels")[1] == []
    finally:
        lab.stop()
    assert lab.proc.returncode is not None
