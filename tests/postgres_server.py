"""A throwaway PostgreSQL server for the tests (Debian's ``postgresql`` package).

``PostgresServer.start()`` runs ``initdb`` into a fresh temporary folder
(password authentication, a random password) and ``pg_ctl start`` on a free
localhost port; ``stop()`` stops it and deletes the folder. As root the
server runs as the ``postgres`` system user (via ``runuser``), because
PostgreSQL refuses to run as root. :func:`why_no_postgres` says why a server
cannot be started here (binaries or driver missing), for a clear skip.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

USER = "workbench"
DATABASE = "postgres"
#: the environment variable the tests' dataset.yml files name for the password
PASSWORD_ENV = "WORKBENCH_TEST_PG_PASSWORD"


def _bindir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    return Path(versions[-1]).parent if versions else None


def why_no_postgres() -> str | None:
    """Why no test server can be started here, or None if one can."""
    if _bindir() is None:
        return "PostgreSQL server binaries not found (apt-get install postgresql; initdb and pg_ctl are looked up on PATH and in /usr/lib/postgresql/*/bin)"
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run the server as (PostgreSQL refuses root)"
        if not shutil.which("runuser"):
            return "running as root without runuser to start the server as the 'postgres' user"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "the PostgreSQL driver is not installed (pip install -e '.[postgres]')"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """A running server: ``url`` (no password), ``password``, ``port``, ``connect()``."""

    def __init__(self):
        self.bindir = _bindir()
        self.root = Path(tempfile.mkdtemp(prefix="wb-pg-"))
        self.port = _free_port()
        self.password = "pw-" + secrets.token_hex(12)
        self.url = f"postgresql://{USER}@127.0.0.1:{self.port}/{DATABASE}"
        self._as_root = os.geteuid() == 0

    def _run(self, *args, check=True):
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self._as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=120)

    def start(self) -> PostgresServer:
        self.root.chmod(0o755)
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self._as_root:
            shutil.chown(self.root, "postgres")
            shutil.chown(pwfile, "postgres")
        data = self.root / "data"
        try:
            self._run("initdb", "-D", str(data), "-U", USER, "--auth=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8", "--no-locale")
            pwfile.unlink()
            opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c synchronous_commit=off"
            self._run("pg_ctl", "-D", str(data), "-l", str(self.root / "server.log"), "-o", opts, "-w", "-t", "60", "start")
        except subprocess.CalledProcessError as exc:
            log = (self.root / "server.log").read_text() if (self.root / "server.log").exists() else ""
            self.stop()
            raise RuntimeError(f"could not start PostgreSQL: {exc.stderr or exc.stdout}\n{log}") from None
        return self

    def stop(self) -> None:
        if (self.root / "data" / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "fast", "-w", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def connect(self):
        import ibis

        return ibis.postgres.connect(host="127.0.0.1", port=self.port, user=USER, password=self.password, database=DATABASE)


def load_folder(con, folder: Path, schema: str, *, text: bool = False) -> list[str]:
    """Copy every table file of a dataset folder into ``schema`` (created);
    ``text=True`` keeps every CSV value as text, as an export lands in a
    warehouse. Returns the table names."""
    import pandas as pd

    con.raw_sql(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    names = []
    for path in sorted(Path(folder).iterdir()):
        if path.suffix == ".parquet":
            df = pd.read_parquet(path)
        elif path.suffix == ".csv":
            df = pd.read_csv(path, dtype=str) if text else pd.read_csv(path)
        else:
            continue
        con.create_table(path.stem, df, database=schema, overwrite=True)
        names.append(path.stem)
    return names


def postgres_folder(pg, name: str, folder: Path, out: Path) -> Path:
    """A dataset folder holding a dataset.yml that names the test server
    (password from :data:`PASSWORD_ENV`) and the dataset's tables, copied into
    a schema of their own (an export's CSV as text, the way a raw export lands
    in a warehouse), plus the folder's other files (truth.json)."""
    import yaml

    con = pg.connect()
    schema = f"wb_{name.replace('-', '_')}"
    names = load_folder(con, folder, schema, text=True)
    meta = yaml.safe_load((folder / "dataset.yml").read_text()) if (folder / "dataset.yml").exists() else {}
    mapping = meta.get("source") if isinstance(meta.get("source"), dict) else {}
    source = {}
    for table, entry in mapping.items():
        entry = dict(entry)
        if "file" in entry:
            entry["table"] = f"{schema}.{entry.pop('file').rsplit('.', 1)[0]}"
        source[table] = entry
    for table in names:
        if table in ("users", "events", "assignments", "kpis") and table not in source:
            source[table] = {"table": f"{schema}.{table}"}
    meta.update(backend={"url": pg.url, "password_env": PASSWORD_ENV}, source=source)
    out.mkdir(parents=True, exist_ok=True)
    for path in folder.iterdir():
        if path.is_file() and path.suffix not in (".csv", ".parquet") and path.name != "dataset.yml":
            shutil.copy2(path, out / path.name)
    (out / "dataset.yml").write_text(yaml.safe_dump(meta, sort_keys=False))
    return out
