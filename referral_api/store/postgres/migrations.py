"""PostgreSQL schema: versioned SQL files, applied once each, recorded with their version.

``migrations/NNNN_name.sql`` are applied in number order, each in the transaction that
records it in ``schema_migrations``; ``meta.schema_version`` holds the highest number
applied. Numbers mean the same schema as the SQLite migrations of the same number
(``0001_initial``, ``0002_audit_stats``, ``0003_operations``). A
published file is never edited: changes are new files.

:func:`migrate` holds a transaction-level advisory lock, so two concurrent ``init-db`` runs
(two hosts starting at once) apply each migration once: the second waits, then finds
nothing pending.

:func:`roles_sql` is the SQL that gives the service its own role with INSERT and SELECT
only on the log tables (append-only by privilege, not only by trigger).
"""

from __future__ import annotations

import re
from importlib import resources

import psycopg
from psycopg import sql

# Any constant works; it only has to be the same for every host running init-db.
_MIGRATE_LOCK = 0x5245_4641  # "REFA"
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

#: Tables the application role may only read and append to.
APPEND_ONLY_TABLES = ("decisions", "feedback", "access_log")


def available() -> list[tuple[int, str, str]]:
    """``(version, name, sql)`` of every migration file, in version order."""
    found = []
    for entry in resources.files(__package__).joinpath("migrations").iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name[:-4], entry.read_text("utf-8")))
    found.sort()
    return found


def _applied(conn: psycopg.Connection) -> set[int]:
    exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return set()
    return {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}


def schema_version(conn: psycopg.Connection) -> int:
    """Highest migration version applied (0 for an empty schema)."""
    return max(_applied(conn), default=0)


def pending(conn: psycopg.Connection) -> list[str]:
    """Names of the migrations not yet applied."""
    done = _applied(conn)
    return [name for version, name, _ in available() if version not in done]


def migrate(conn: psycopg.Connection) -> list[str]:
    """Apply pending migrations in one transaction; return the names applied now.

    Idempotent and safe against a concurrent run (advisory lock, per schema). ``conn`` must
    not be inside a transaction; it is committed on success and rolled back on error.
    """
    with conn.transaction():
        conn.execute(
            "SELECT pg_advisory_xact_lock(%s, hashtext(current_schema()))", [_MIGRATE_LOCK]
        )
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
            " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        done = _applied(conn)
        applied = []
        for version, name, text in available():
            if version in done:
                continue
            conn.execute(text.encode("utf-8"))  # several statements: simple query protocol
            conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", [version, name]
            )
            applied.append(name)
        if applied:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', %s) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [str(max(_applied(conn)))],
            )
    return applied


def roles_sql(app_role: str, owner_role: str | None = None, schema: str = "public") -> str:
    """SQL granting ``app_role`` what the service needs and nothing more.

    - log tables (decisions, feedback, access_log): SELECT and INSERT only, so UPDATE,
      DELETE and TRUNCATE fail on privilege before any trigger runs;
    - idempotency, jwt_seen, auth_failures: also DELETE (expired rows are purged);
    - feedback_latest: also UPDATE (derived, not evidence: the latest outcome is upserted);
    - api_keys, meta, schema_migrations, secret_keys: SELECT (keys are managed by the owner
      through the CLI).

    With ``owner_role``, the tables are handed to it first (run as a superuser or as the
    current owner): the owner runs ``init-db`` and key commands, the service runs as
    ``app_role``. The roles themselves are created by :func:`create_roles_sql`.
    """
    ident = sql.Identifier
    statements: list[sql.Composable] = []
    tables = ("decisions", "feedback", "access_log", "idempotency", "jwt_seen",
              "auth_failures", "feedback_latest", "api_keys", "meta", "schema_migrations",
              "secret_keys")
    if owner_role:
        statements.append(sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(
            ident(schema), ident(owner_role)))
        for table in tables:
            statements.append(sql.SQL("ALTER TABLE {}.{} OWNER TO {}").format(
                ident(schema), ident(table), ident(owner_role)))
        statements.append(sql.SQL("ALTER FUNCTION {}.refuse_change() OWNER TO {}").format(
            ident(schema), ident(owner_role)))
    statements.append(sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA {} FROM {}").format(
        ident(schema), ident(app_role)))
    statements.append(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(
        ident(schema), ident(app_role)))

    def grant(privileges: str, names: tuple[str, ...]) -> None:
        targets = sql.SQL(", ").join(sql.SQL("{}.{}").format(ident(schema), ident(n))
                                     for n in names)
        statements.append(sql.SQL("GRANT " + privileges + " ON {} TO {}").format(
            targets, ident(app_role)))

    grant("SELECT, INSERT", APPEND_ONLY_TABLES)
    grant("SELECT, INSERT, DELETE", ("idempotency", "jwt_seen", "auth_failures"))
    grant("SELECT, INSERT, UPDATE", ("feedback_latest",))
    grant("SELECT", ("api_keys", "meta", "schema_migrations", "secret_keys"))
    return ";\n".join(s.as_string(None) for s in statements) + ";\n"


def create_roles_sql(app_role: str, owner_role: str | None = None,
                     app_password: str | None = None) -> str:
    """Statements creating the owner role (NOLOGIN) and the application role (LOGIN) when
    they do not exist yet; idempotent. With ``app_password`` the application role's password
    is (re)set as well."""

    def ensure(role: str, options: str) -> str:
        create = sql.SQL("CREATE ROLE {} " + options).format(sql.Identifier(role))
        return ("DO $referral$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = "
                + sql.Literal(role).as_string(None) + ") THEN "
                + create.as_string(None) + "; END IF; END $referral$")

    parts = []
    if owner_role:
        parts.append(ensure(owner_role, "NOLOGIN"))
    parts.append(ensure(app_role, "LOGIN"))
    if app_password is not None:
        parts.append(sql.SQL("ALTER ROLE {} PASSWORD {}").format(
            sql.Identifier(app_role), sql.Literal(app_password)).as_string(None))
    return ";\n".join(parts) + ";\n"
