"""The embedded Postgres: the zero-setup warehouse when ``PATAS_DATABASE_URL`` is unset.

The embedded server uses the Postgres binaries bundled in the ``pgserver`` wheel (falling back to
the machine's ``pg_config --bindir``), lives in ``$PATAS_HOME/pgdata`` (git-ignored), listens on
127.0.0.1 on a free port, and keeps running between commands until ``patas db stop``. When the
process runs as root it runs the server as an unprivileged system user (``initdb`` refuses root).
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
import pwd
import shutil
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from python_steps.settings import Settings, load_settings
from python_steps.warehouse import WarehouseError

EMBEDDED_DB = "patas"
EMBEDDED_SYSTEM_USER = "patas-pg"

# Tuned for a batch warehouse on one machine: crash-safe (fsync stays on), but commits do not
# wait for WAL flush and bulk loads into fresh tables skip WAL.
EMBEDDED_SERVER_OPTIONS = {
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "",
    "shared_buffers": "512MB",
    "work_mem": "128MB",
    "maintenance_work_mem": "512MB",
    "synchronous_commit": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "max_wal_size": "4GB",
    "checkpoint_timeout": "30min",
    "max_parallel_workers_per_gather": "2",
    "jit": "off",
    "timezone": "UTC",
    "log_min_messages": "warning",
}


def _bin_dir() -> Path:
    spec = importlib.util.find_spec("pgserver")
    if spec and spec.submodule_search_locations:
        candidate = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
        if (candidate / "pg_ctl").exists():
            return candidate
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=True)
        candidate = Path(out.stdout.strip())
        if (candidate / "pg_ctl").exists():
            return candidate
    raise WarehouseError(
        "No Postgres server binaries found: install the 'pgserver' wheel (a PATAS dependency) "
        "or set PATAS_DATABASE_URL to an existing Postgres."
    )


@dataclass(frozen=True)
class EmbeddedServer:
    pgdata: Path

    @property
    def _run_as(self) -> str | None:
        if os.geteuid() != 0:
            return None
        try:
            pwd.getpwnam(EMBEDDED_SYSTEM_USER)
        except KeyError:
            subprocess.run(
                [
                    "useradd",
                    "--system",
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                    EMBEDDED_SYSTEM_USER,
                ],
                check=True,
                capture_output=True,
            )
        return EMBEDDED_SYSTEM_USER

    def _run(self, args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
        user = self._run_as
        kwargs: dict = {}
        if user:
            pw = pwd.getpwnam(user)
            kwargs = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        return subprocess.run(
            args, capture_output=True, text=True, timeout=timeout, env=env, cwd="/", check=False, **kwargs
        )

    def _prepare_dirs(self) -> None:
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        user = self._run_as
        if not user:
            return
        pw = pwd.getpwnam(user)
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        os.chown(self.pgdata, pw.pw_uid, pw.pw_gid)
        # The server user must be able to reach the data folder and the binaries.
        for target in (self.pgdata, _bin_dir()):
            for parent in target.parents:
                mode = parent.stat().st_mode
                if not mode & stat.S_IXOTH:
                    parent.chmod(mode | stat.S_IXOTH)
        for path in (_bin_dir().parent / "lib", _bin_dir().parent / "share", _bin_dir()):
            if not path.exists():
                continue
            for root, dirs, files in os.walk(path):
                for d in dirs:
                    p = Path(root) / d
                    p.chmod(p.stat().st_mode | 0o055)
                for f in files:
                    p = Path(root) / f
                    p.chmod(
                        p.stat().st_mode
                        | 0o044
                        | ((p.stat().st_mode & 0o100) >> 6)
                        | ((p.stat().st_mode & 0o100) >> 3)
                    )

    @property
    def initialized(self) -> bool:
        return (self.pgdata / "PG_VERSION").exists()

    def port(self) -> int | None:
        pid_file = self.pgdata / "postmaster.pid"
        try:
            lines = pid_file.read_text().splitlines()
        except (FileNotFoundError, PermissionError):
            return None
        if len(lines) < 4:
            return None
        pid = int(lines[0])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return int(lines[3])

    def running(self) -> bool:
        return self.port() is not None and self._ready()

    def _ready(self) -> bool:
        port = self.port()
        if port is None:
            return False
        try:
            with psycopg.connect(
                host="127.0.0.1", port=port, user="postgres", dbname="postgres", connect_timeout=3
            ):
                return True
        except psycopg.OperationalError:
            return False

    def url(self) -> str:
        port = self.port()
        if port is None:
            raise WarehouseError("the embedded Postgres is not running (patas db start)")
        return f"postgresql://postgres@127.0.0.1:{port}/{EMBEDDED_DB}"

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        with open(self.pgdata.parent / "pg.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def start(self) -> str:
        with self._lock():
            if self.running():
                return self.url()
            self._prepare_dirs()
            bindir = _bin_dir()
            if not self.initialized:
                res = self._run(
                    [
                        str(bindir / "initdb"),
                        "-D", str(self.pgdata),
                        "-U", "postgres",
                        "--auth=trust",
                        "--encoding=UTF8",
                        "--locale=C",
                        "--no-sync",
                    ]
                )  # fmt: skip
                if res.returncode != 0:
                    raise WarehouseError(f"initdb failed:\n{res.stdout}\n{res.stderr}")
            port = _free_port()
            opts = " ".join(
                f"-c {k}={v!r}" if v == "" else f"-c {k}={v}" for k, v in EMBEDDED_SERVER_OPTIONS.items()
            )
            res = self._run(
                [
                    str(bindir / "pg_ctl"),
                    "-D", str(self.pgdata),
                    "-l", str(self.pgdata / "server.log"),
                    "-w", "-t", "60",
                    "-o", f"-p {port} {opts}",
                    "start",
                ]
            )  # fmt: skip
            if res.returncode != 0:
                log = ""
                with contextlib.suppress(OSError):
                    log = (self.pgdata / "server.log").read_text()[-3000:]
                raise WarehouseError(
                    f"could not start the embedded Postgres:\n{res.stdout}\n{res.stderr}\n{log}"
                )
            deadline = time.monotonic() + 30
            while not self._ready():
                if time.monotonic() > deadline:
                    raise WarehouseError("the embedded Postgres did not become ready in 30 s")
                time.sleep(0.1)
            port = self.port()
            with psycopg.connect(
                host="127.0.0.1", port=port, user="postgres", dbname="postgres", autocommit=True
            ) as c:
                exists = c.execute("select 1 from pg_database where datname = %s", (EMBEDDED_DB,)).fetchone()
                if not exists:
                    c.execute(f"create database {EMBEDDED_DB} template template0 encoding 'UTF8' locale 'C'")
            return self.url()

    def stop(self) -> bool:
        with self._lock():
            if self.port() is None:
                return False
            res = self._run([str(_bin_dir() / "pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w", "stop"])
            if res.returncode != 0:
                raise WarehouseError(f"pg_ctl stop failed:\n{res.stdout}\n{res.stderr}")
            return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def embedded_server(settings: Settings | None = None) -> EmbeddedServer:
    settings = settings or load_settings()
    return EmbeddedServer(settings.pgdata)


def database_url(settings: Settings | None = None) -> str:
    """The warehouse URL: ``PATAS_DATABASE_URL``, or the embedded server (started if needed)."""
    settings = settings or load_settings()
    if settings.database_url:
        return settings.database_url
    return embedded_server(settings).start()
