"""pytest plugin: a PostgreSQL server for the tests, and the ``backend`` fixture.

Where the server comes from, in this order:

1. ``REFERRAL_API_TEST_POSTGRES`` (a ``postgresql://`` URL of a role that may create
   databases);
2. a server on ``127.0.0.1:5432`` accepting the current user without a password
   (trust), database ``test``;
3. a private throw-away cluster made with the installed binaries (``initdb``/``pg_ctl``
   found on ``PATH`` or under ``/usr/lib/postgresql/*/bin``) in a temporary directory,
   run as the unprivileged user ``nobody`` when the tests run as root (PostgreSQL refuses
   to run as root), listening on loopback only, removed at the end of the session.

When none is possible, PostgreSQL tests are skipped with a message naming what is missing;
with ``CI=true`` they fail instead (a CI run must not pass by skipping them).

Isolation: other test runs may share the server. This session creates its own database
(``referral_test_<pid>_<random>``) and drops it at the end; each test gets its own fresh
schema in it (``search_path`` set in the URL), so nothing shared is ever dropped. Roles,
which are global to a server, are only created with unique names and dropped by the test
that made them.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import pytest

ENV_URL = "REFERRAL_API_TEST_POSTGRES"
LOCAL_URL = "postgresql://127.0.0.1:5432/test"
BACKENDS = ("sqlite", "postgresql")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _reachable(url: str) -> str | None:
    """None when ``url`` accepts a connection, else the reason."""
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"
    return None


def postgres_binaries() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``, or None."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(os.path.realpath(found)).parent
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    return None


@dataclass
class PrivateCluster:
    """A throw-away PostgreSQL cluster in a temporary directory, on 127.0.0.1 only."""

    bindir: Path
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="referral-pg-")))
    port: int = field(default_factory=_free_port)
    user: str | None = None  # OS user running the server (``nobody`` when we are root)

    def __post_init__(self) -> None:
        if self.user is None and os.geteuid() == 0:
            self.user = "nobody"

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        kwargs: dict = {}
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            kwargs = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        return subprocess.run(list(args), check=check, capture_output=True, text=True,
                              timeout=120, cwd=self.root, **kwargs)

    def init(self) -> None:
        """``initdb`` (trust authentication, loopback only, fsync on)."""
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self.root.chmod(0o700)
        self._run(str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", "postgres",
                  "--auth=trust", "-E", "UTF8", "--locale=C", "--no-instructions")

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 "
                   f"-c unix_socket_directories={self.root} -c max_connections=60 "
                   "-c synchronous_commit=on -c fsync=on")
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-l",
                  str(self.root / "server.log"), "-o", options, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``immediate`` = as after a crash: recovery on next start)."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w",
                  "stop", check=False)

    def restart(self, mode: str = "fast") -> None:
        """Stop, then start again on the same port."""
        self.stop(mode)
        self.start()

    def destroy(self) -> None:
        """Stop the server and remove its files."""
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def start_private_cluster() -> PrivateCluster:
    """A new, started private cluster; RuntimeError naming what is missing otherwise."""
    bindir = postgres_binaries()
    if bindir is None:
        raise RuntimeError("no PostgreSQL server binaries (initdb, pg_ctl) on PATH or under "
                           "/usr/lib/postgresql/*/bin; install the postgresql package")
    cluster = PrivateCluster(bindir)
    if cluster.user is not None:
        try:
            pwd.getpwnam(cluster.user)
        except KeyError:
            raise RuntimeError(f"running as root and no unprivileged user "
                               f"{cluster.user!r} to run PostgreSQL as") from None
    try:
        cluster.init()
        cluster.start()
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, "stderr", "") or ""
        cluster.destroy()
        raise RuntimeError(f"could not start a private PostgreSQL cluster: {exc} {detail}"
                           ) from exc
    return cluster


def with_database(url: str, dbname: str) -> str:
    """``url`` pointing at database ``dbname``."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + dbname))


def with_schema(url: str, schema: str) -> str:
    """``url`` whose connections use ``schema`` (``options=-csearch_path=…``)."""
    parts = urlsplit(url)
    query = "&".join(q for q in parts.query.split("&") if q and not q.startswith("options="))
    option = "options=" + quote(f"-csearch_path={schema}", safe="")
    return urlunsplit(parts._replace(query="&".join(q for q in (query, option) if q)))


@dataclass
class PostgresServer:
    """The server this session uses: an admin URL and this session's own database."""

    admin_url: str
    source: str
    cluster: PrivateCluster | None = None
    dbname: str = field(default_factory=lambda: f"referral_test_{os.getpid()}_"
                        f"{uuid.uuid4().hex[:8]}")

    @property
    def url(self) -> str:
        """URL of this session's database."""
        return with_database(self.admin_url, self.dbname)

    def admin(self):
        """An autocommit connection to the admin database."""
        import psycopg

        return psycopg.connect(self.admin_url, autocommit=True, connect_timeout=5)

    def create_database(self) -> None:
        from psycopg import sql

        with self.admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.dbname)))

    def drop_database(self) -> None:
        from psycopg import sql

        with self.admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(self.dbname)))

    @contextlib.contextmanager
    def fresh_schema(self) -> Iterator[str]:
        """A new empty schema in this session's database; yields a URL using it."""
        import psycopg
        from psycopg import sql

        schema = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        try:
            yield with_schema(self.url, schema)
        finally:
            with psycopg.connect(self.url, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def find_server() -> tuple[PostgresServer | None, str]:
    """The server to use and where it came from, or None and every reason why not."""
    reasons = []
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return None, "psycopg is not installed (make install)"
    given = os.environ.get(ENV_URL)
    if given:
        problem = _reachable(given)
        if problem is None:
            return PostgresServer(given, f"{ENV_URL}"), ""
        reasons.append(f"{ENV_URL} is set but not reachable ({problem})")
    problem = _reachable(LOCAL_URL)
    if problem is None:
        return PostgresServer(LOCAL_URL, "127.0.0.1:5432"), ""
    reasons.append(f"nothing accepts {LOCAL_URL} ({problem})")
    try:
        cluster = start_private_cluster()
    except RuntimeError as exc:
        reasons.append(str(exc))
        return None, "; ".join(reasons)
    return PostgresServer(cluster.url, "private cluster", cluster), ""


def _unavailable(message: str) -> None:
    text = f"PostgreSQL tests need a server: {message}"
    if os.environ.get("CI") == "true":
        pytest.fail(text, pytrace=False)
    pytest.skip(text)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """The PostgreSQL server of this session, with a database of its own (dropped after)."""
    server, reason = find_server()
    if server is None:
        _unavailable(reason)
        return
    try:
        server.create_database()
    except Exception as exc:  # any failure here means "no usable server"
        if server.cluster is not None:
            server.cluster.destroy()
        _unavailable(f"could not create a test database on {server.source}: {exc}")
        return
    try:
        yield server
    finally:
        with contextlib.suppress(Exception):
            server.drop_database()
        if server.cluster is not None:
            server.cluster.destroy()


@pytest.fixture
def pg_url(pg_server: PostgresServer) -> Iterator[str]:
    """URL of a fresh, empty schema (not migrated) for this test alone."""
    with pg_server.fresh_schema() as url:
        yield url


@pytest.fixture
def pg_migrated_url(pg_url: str) -> str:
    """``pg_url`` with every migration applied."""
    from referral_api.store.postgres.db import connect
    from referral_api.store.postgres.migrations import migrate

    with connect(pg_url) as conn:
        migrate(conn)
    return pg_url


#: Suites whose tests run on both backends (a behaviour difference is a failing test).
PARAMETRISED_SUITES = ("store", "audit", "api", "cds", "cli")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sqlite_only: the test is about SQLite itself (its file, pragmas, locks)")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every test of :data:`PARAMETRISED_SUITES` that reaches the ``backend`` fixture
    (through ``app``, ``decision_log``, ``database`` …) once per backend, except tests that
    use the SQLite file itself (``db_path``) or are marked ``sqlite_only``."""
    if "backend" not in metafunc.fixturenames:
        return
    suite = Path(str(metafunc.definition.path)).parent.name
    if (suite not in PARAMETRISED_SUITES or "db_path" in metafunc.fixturenames
            or metafunc.definition.get_closest_marker("sqlite_only")):
        return
    metafunc.parametrize("backend", BACKENDS, indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """``"sqlite"`` or ``"postgresql"``: SQLite unless the test is parametrised (above)."""
    return getattr(request, "param", "sqlite")


def _open_log(database: str | Path, **kwargs: Any):
    """The decision log at ``database``: a PostgreSQL URL or a SQLite path."""
    if isinstance(database, str) and database.startswith("postgresql://"):
        from referral_api.store.postgres.log import PostgresDecisionLog

        return PostgresDecisionLog(database, **kwargs)
    from referral_api.store.sqlite.log import SQLiteDecisionLog

    return SQLiteDecisionLog(Path(database), **kwargs)


@pytest.fixture
def new_pg_database(pg_server: PostgresServer) -> Iterator[Any]:
    """``new_pg_database()`` → the URL of another fresh, migrated schema (several apps in one
    test each get their own, as each gets its own SQLite file); all dropped afterwards."""
    from referral_api.store.postgres.db import connect
    from referral_api.store.postgres.migrations import migrate

    with contextlib.ExitStack() as stack:

        def make() -> str:
            url = stack.enter_context(pg_server.fresh_schema())
            with connect(url) as conn:
                migrate(conn)
            return url

        yield make


@pytest.fixture
def open_log() -> Any:
    """``open_log(database, **kwargs)``: the decision log at a path or URL (``database``)."""
    return _open_log


@pytest.fixture
def database(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A migrated, empty log on ``backend``: a file path (SQLite) or a URL (PostgreSQL)."""
    if backend == "sqlite":
        from referral_api.store.sqlite.db import connect
        from referral_api.store.sqlite.migrations import migrate

        path = tmp_path / "decisions.sqlite"
        db = connect(path)
        migrate(db)
        db.close()
        return str(path)
    return request.getfixturevalue("pg_migrated_url")


def wait_until(predicate, timeout_s: float = 30.0, interval_s: float = 0.1) -> bool:
    """Poll ``predicate`` until true or ``timeout_s`` passes (harnesses, not assertions)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return bool(predicate())
