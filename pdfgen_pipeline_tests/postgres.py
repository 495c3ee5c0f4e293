"""A throw-away PostgreSQL server for tests: a temporary cluster (initdb) started with pg_ctl on a free
loopback port, with a database and a password-protected user; stopped and removed on exit (also on failure).

    with temporary_postgres() as pg:   # PostgresUnavailable when no server binaries are installed
        pg.host, pg.port, pg.user, pg.password, pg.db, pg.env()   # env(): the DAGSTER_PG_* variables

`postgres_or_skip()` is the pytest flavour: it skips when PostgreSQL is not installed, but FAILS when
the `CI` environment variable is set (a CI job must never silently skip the Postgres tests).

Running as root (containers, CI): PostgreSQL refuses to run as root, so initdb, pg_ctl and postgres run
as the `postgres` OS user (runuser, else su) on a data directory owned by that user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shlex
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pdfgen_pipeline_tests.ci import in_ci

SUPERUSER = "postgres"  # the cluster's bootstrap superuser (initdb -U), reachable only through the unix socket
OS_USER = "postgres"  # who runs the server when we are root
START_TIMEOUT = 60


class PostgresUnavailable(RuntimeError):
    """PostgreSQL server binaries (or a user to run them as) are missing on this machine."""


def _has_server(bindir: Path) -> bool:
    return all((bindir / exe).is_file() and os.access(bindir / exe, os.X_OK) for exe in ("initdb", "pg_ctl",
                                                                                       "postgres"))


def find_bindir() -> Path:
    """The directory holding initdb, pg_ctl and postgres: `$PG_BINDIR`, `pg_config --bindir`,
    /usr/lib/postgresql/<newest>/bin, /usr/pgsql-*/bin, Homebrew, then PATH."""
    candidates: list[Path] = []
    if os.environ.get("PG_BINDIR"):
        candidates.append(Path(os.environ["PG_BINDIR"]))
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True)
            candidates.append(Path(out.stdout.strip()))

    def version(path: str) -> tuple[int, ...]:
        digits = "".join(c if c.isdigit() else " " for c in path).split()
        return tuple(int(d) for d in digits)

    for pattern in ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/opt/homebrew/opt/postgresql*/bin",
                    "/usr/local/opt/postgresql*/bin"):
        candidates.extend(Path(p) for p in sorted(glob.glob(pattern), key=version, reverse=True))
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    candidates = list(dict.fromkeys(candidates))
    for bindir in candidates:
        if _has_server(bindir):
            return bindir
    raise PostgresUnavailable(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found: looked at $PG_BINDIR, `pg_config "
        "--bindir`, /usr/lib/postgresql/*/bin, /usr/pgsql-*/bin, Homebrew and PATH "
        f"({', '.join(str(c) for c in candidates) or 'no candidate'}). Install the PostgreSQL server "
        "(e.g. `apt-get install postgresql`) or set PG_BINDIR.")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PostgresServer:
    """Connection settings of a running temporary server (TCP on loopback, password authentication)."""

    host: str
    port: int
    user: str
    password: str
    db: str
    bindir: Path
    root: Path
    socket_dir: Path
    log: Path
    databases: list[str] = field(default_factory=list)

    def env(self, db: str | None = None) -> dict[str, str]:
        """The variables the production dagster.yaml reads."""
        return {"DAGSTER_PG_HOST": self.host, "DAGSTER_PG_PORT": str(self.port), "DAGSTER_PG_USER": self.user,
                "DAGSTER_PG_PASSWORD": self.password, "DAGSTER_PG_DB": db or self.db}

    def url(self, db: str | None = None) -> str:
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{db or self.db}"

    def superuser_connection(self, db: str = "postgres"):
        """A psycopg2 connection as the bootstrap superuser, through the unix socket (autocommit)."""
        import psycopg2

        conn = psycopg2.connect(host=str(self.socket_dir), port=self.port, user=SUPERUSER, dbname=db,
                                connect_timeout=10)
        conn.autocommit = True
        return conn

    def create_database(self, name: str | None = None) -> str:
        """A new empty database owned by the user (e.g. one per test); returns its name."""
        from psycopg2 import sql

        name = name or f"db_{secrets.token_hex(4)}"
        with contextlib.closing(self.superuser_connection()) as conn, conn.cursor() as cur:
            cur.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(self.user)))
        self.databases.append(name)
        return name

    def tail_log(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text("utf-8", "replace").splitlines()[-lines:])
        except OSError as exc:
            return f"(no server log: {exc})"


def _as_server_user(cmd: list[str], uid: int | None) -> list[str]:
    """`cmd` run as the postgres OS user when we are root (PostgreSQL refuses to run as root)."""
    if uid is None:
        return cmd
    if shutil.which("runuser"):
        return ["runuser", "-u", OS_USER, "--", *cmd]
    return ["su", OS_USER, "-s", "/bin/sh", "-c", shlex.join(cmd)]


def _run(cmd: list[str], timeout: float, what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "LC_ALL": "C", "LANG": "C"}, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed ({proc.returncode}): {shlex.join(cmd)}\n{proc.stdout}\n{proc.stderr}")


def _server_os_user() -> tuple[int, int] | None:
    """(uid, gid) of the OS user to run PostgreSQL as when we are root, else None (run as ourselves)."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(OS_USER)
    except KeyError:
        raise PostgresUnavailable(f"running as root and there is no {OS_USER!r} OS user to run PostgreSQL "
                                  "as") from None
    if not (shutil.which("runuser") or shutil.which("su")):
        raise PostgresUnavailable("running as root, but neither runuser nor su is available to run PostgreSQL "
                                  f"as the {OS_USER!r} user")
    return entry.pw_uid, entry.pw_gid


def check_available() -> Path:
    """The server binaries' directory; PostgresUnavailable if a temporary server cannot be run here."""
    bindir = find_bindir()
    _server_os_user()
    return bindir


def _temp_root(as_other_user: bool) -> Path:
    """A fresh directory the server's OS user can reach (pytest's tmp_path is private to root: 0700)."""
    base = Path(tempfile.gettempdir())
    if as_other_user and not all(os.stat(p).st_mode & stat.S_IXOTH for p in [base, *base.parents]):
        base = Path("/tmp")
    return Path(tempfile.mkdtemp(prefix="pdfgen-pg-", dir=base))


@contextlib.contextmanager
def temporary_postgres(*, user: str = "pdfgen", db: str = "dagster", password: str | None = None,
                       bindir: Path | None = None) -> Iterator[PostgresServer]:
    """Start a temporary PostgreSQL server; yields its PostgresServer; stops it and deletes its files at exit.
    PostgresUnavailable (before anything is created) when the binaries or the postgres OS user are missing."""
    bindir = Path(bindir) if bindir else find_bindir()
    ids = _server_os_user()
    uid, gid = ids if ids else (None, None)
    password = password or secrets.token_urlsafe(16)
    root = _temp_root(uid is not None)
    data, socket_dir, log = root / "data", root / "sock", root / "server.log"
    started = False
    try:
        socket_dir.mkdir()
        pwfile = root / "superuser.pw"
        pwfile.write_text(secrets.token_urlsafe(16) + "\n")
        if uid is not None:
            for path in (root, socket_dir, pwfile):
                os.chown(path, uid, gid)
        # Local (unix socket) connections trusted: only the superuser uses them, to create the user and the
        # databases; TCP (what Dagster uses) requires the user's password (scram-sha-256).
        _run(_as_server_user([str(bindir / "initdb"), "-D", str(data), "-U", SUPERUSER, f"--pwfile={pwfile}",
                              "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-locale",
                              "--no-sync"], uid), 120, "initdb")
        port, last_error = None, None
        for _attempt in range(3):  # a free port can be taken between the probe and the server's bind
            port = free_port()
            opts = (f"-c listen_addresses=127.0.0.1 -p {port} -k {socket_dir} -c fsync=off "
                    "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
            try:
                _run(_as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", opts,
                                      "-w", "-t", str(START_TIMEOUT), "start"], uid), START_TIMEOUT + 30,
                     "pg_ctl start")
                started = True
                break
            except RuntimeError as exc:
                last_error = exc
                _stop(bindir, data, uid)  # pg_ctl may have given up waiting on a server that did start
        if not started:
            tail = log.read_text("utf-8", "replace")[-3000:] if log.exists() else ""
            raise RuntimeError(f"PostgreSQL did not start: {last_error}\n{tail}")
        server = PostgresServer(host="127.0.0.1", port=port, user=user, password=password, db=db,
                                bindir=bindir, root=root, socket_dir=socket_dir, log=log)
        _wait_ready(server)
        from psycopg2 import sql

        with contextlib.closing(server.superuser_connection()) as conn, conn.cursor() as cur:
            cur.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD %s").format(sql.Identifier(user)), [password])
        server.create_database(db)
        yield server
    finally:
        stop_error = None
        if started:
            stop_error = _stop(bindir, data, uid)
        shutil.rmtree(root, ignore_errors=True)
        if stop_error is not None and sys.exc_info()[1] is None:  # never hide the body's own failure
            raise stop_error


def _stop(bindir: Path, data: Path, uid: int | None) -> Exception | None:
    """Stop the server (fast shutdown, then immediate); the error if it could not be stopped."""
    error = None
    for mode in ("fast", "immediate"):
        try:
            _run(_as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", mode, "-w", "-t", "60", "stop"],
                                 uid), 90, f"pg_ctl stop -m {mode}")
            return None
        except (RuntimeError, subprocess.SubprocessError) as exc:
            error = exc
    return error


def _wait_ready(server: PostgresServer, timeout: float = START_TIMEOUT) -> None:
    import psycopg2

    deadline = time.monotonic() + timeout
    while True:
        try:
            server.superuser_connection().close()
            return
        except psycopg2.OperationalError as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL not accepting connections: {exc}\n{server.tail_log()}") from exc
            time.sleep(0.2)


@contextlib.contextmanager
def postgres_or_skip(**kwargs) -> Iterator[PostgresServer]:
    """`temporary_postgres` for pytest: skip when PostgreSQL is not installed, FAIL instead when `CI` is set.
    Only unavailability is turned into a skip: a server that is installed but fails to start is an error."""
    import pytest

    try:
        bindir = check_available()
    except PostgresUnavailable as exc:
        if in_ci():
            pytest.fail(f"CI is set and PostgreSQL is unavailable: {exc}", pytrace=False)
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    with temporary_postgres(bindir=bindir, **kwargs) as server:
        yield server
