"""The PostgreSQL log: migrations, privileges, one chain across hosts, shared state."""

from __future__ import annotations

import multiprocessing
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from psycopg import sql

from referral_api.store.interface import (
    IdempotencyConflict,
    LogUnavailable,
    NewFeedback,
    QueryTimeout,
)
from referral_api.store.postgres.db import connect, is_postgres_url, redact
from referral_api.store.postgres.log import PostgresDecisionLog
from referral_api.store.postgres.migrations import (
    available,
    create_roles_sql,
    migrate,
    pending,
    roles_sql,
    schema_version,
)
from tests.factories import make_new

PROCESSES = 4
PER_PROCESS = 25


def test_backend_is_chosen_by_url_form() -> None:
    assert is_postgres_url("postgresql://app@db:5432/referral")
    assert is_postgres_url("postgres://db/referral")
    assert not is_postgres_url("db/decisions.sqlite")
    assert not is_postgres_url("/var/lib/referral/postgresql.sqlite")
    assert redact("postgresql://app:s3cret@db/x") == "postgresql://app:***@db/x"


def test_migrations_are_versioned_and_idempotent(pg_url: str) -> None:
    with connect(pg_url) as conn:
        assert schema_version(conn) == 0
        assert pending(conn) == [name for _, name, _ in available()]
        applied = migrate(conn)
        assert applied[:2] == ["0001_initial", "0002_audit_stats"]  # SQLite's numbers
        assert migrate(conn) == []
        versions = [r[0] for r in conn.execute(
            "SELECT version FROM schema_migrations ORDER BY version")]
        assert versions == [v for v, _, _ in available()]
        stored = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        assert stored == (str(versions[-1]),)


def test_concurrent_migrations_apply_each_file_once(pg_url: str) -> None:
    results: list[list[str]] = []

    def run() -> None:
        with connect(pg_url) as conn:
            results.append(migrate(conn))

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(len(r) for r in results) == [0, 0, len(available())]


def test_triggers_refuse_update_delete_truncate_even_for_the_owner(pg_log, pg_migrated_url):
    pg_log.append(make_new())
    pg_log.record_access("auditor", "query", {})
    for statement in ("UPDATE decisions SET client = 'x'", "DELETE FROM decisions",
                      "TRUNCATE decisions CASCADE", "UPDATE access_log SET actor = 'x'"):
        with connect(pg_migrated_url) as conn, pytest.raises(psycopg.Error) as caught:
            conn.execute(statement)
        assert "append-only" in str(caught.value) or caught.value.sqlstate == "42501"
    assert pg_log.verify()["decisions"]["checked"] == 1
    assert pg_log.verify()["access_log"]["checked"] == 1


@pytest.fixture
def app_role(pg_server, pg_migrated_url):
    """A uniquely named login role with the application's grants on this test's schema;
    yields its URL; the role is dropped afterwards (roles are global to the server)."""
    role = f"referral_app_{uuid.uuid4().hex[:10]}"
    schema = pg_migrated_url.split("search_path%3D", 1)[1]
    with connect(pg_server.url, autocommit=True) as conn:
        conn.execute(create_roles_sql(role).encode())
        conn.execute(roles_sql(role, schema=schema).encode())
    url = pg_migrated_url.replace("://", f"://{role}@", 1) if "@" not in pg_migrated_url \
        else pg_migrated_url.replace(pg_migrated_url.split("://")[1].split("@")[0], role, 1)
    try:
        yield url
    finally:
        with connect(pg_server.url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_app_role_appends_but_cannot_update_delete_or_truncate(app_role: str) -> None:
    log = PostgresDecisionLog(app_role)
    try:
        record, created = log.append(make_new(idempotency_key="k1", body_sha256="b1"))
        assert created
        log.append_feedback(record["decision_id"], NewFeedback("accepted"), "c")
        log.record_access("auditor", "get_decision", {"id": record["decision_id"]})
        assert log.seen_jti("iss", "jti-1", 2**40) is False
        assert log.get(record["decision_id"])["feedback"][0]["outcome"] == "accepted"
        assert all(r["ok"] for r in log.verify().values())
    finally:
        log.close()
    for statement in ("UPDATE decisions SET client = 'x'", "DELETE FROM decisions",
                      "TRUNCATE decisions", "UPDATE feedback SET client = 'x'",
                      "DELETE FROM access_log", "UPDATE api_keys SET revoked_at = 'x'"):
        with connect(app_role) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)


def _append_from_host(url: str, count: int, tag: str, queue) -> None:  # child process
    log = PostgresDecisionLog(url)
    try:
        ids = []
        for i in range(count):
            record, _ = log.append(make_new(client=f"{tag}-{i}"))
            ids.append(record["decision_id"])
        queue.put(ids)
    finally:
        log.close()


def test_hosts_appending_at_once_keep_one_gap_free_chain(pg_migrated_url: str) -> None:
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_append_from_host,
                         args=(pg_migrated_url, PER_PROCESS, f"host{n}", queue))
             for n in range(PROCESSES)]
    for p in procs:
        p.start()
    answered = [decision_id for _ in procs for decision_id in queue.get(timeout=120)]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    log = PostgresDecisionLog(pg_migrated_url)
    try:
        report = log.verify()
        assert report["decisions"] == {"ok": True, "checked": PROCESSES * PER_PROCESS,
                                       "head": log.head()["head"]}
        stored = [r["decision_id"] for r in log.iter_records({})]
    finally:
        log.close()
    assert sorted(stored) == sorted(answered)  # each answered decision exactly once
    with connect(pg_migrated_url) as conn:
        seqs = [r[0] for r in conn.execute("SELECT seq FROM decisions ORDER BY seq")]
    assert seqs == list(range(1, PROCESSES * PER_PROCESS + 1))


def test_idempotency_key_replayed_on_another_host(open_host) -> None:
    host_a, host_b = open_host(), open_host()
    first, created = host_a.append(make_new(idempotency_key="key-1", body_sha256="s1"))
    again, created_again = host_b.append(make_new(idempotency_key="key-1", body_sha256="s1"))
    assert created and not created_again
    assert again["decision_id"] == first["decision_id"]
    with pytest.raises(IdempotencyConflict):
        host_b.append(make_new(idempotency_key="key-1", body_sha256="other"))


def test_same_key_sent_to_several_hosts_at_once_makes_one_decision(open_host) -> None:
    hosts = [open_host() for _ in range(4)]
    with ThreadPoolExecutor(len(hosts)) as pool:
        results = list(pool.map(
            lambda log: log.append(make_new(idempotency_key="race", body_sha256="s")), hosts))
    assert len({r["decision_id"] for r, _ in results}) == 1
    assert sorted(created for _, created in results) == [False, False, False, True]


def test_hook_instance_repeated_on_another_host(open_host) -> None:
    host_a, host_b = open_host(), open_host()
    first, _ = host_a.append(make_new(channel="cds-hooks", hook_instance="h-1",
                                      order_ref="ServiceRequest/1"))
    again, created = host_b.append(make_new(channel="cds-hooks", hook_instance="h-1",
                                            order_ref="ServiceRequest/1"))
    assert not created and again["decision_id"] == first["decision_id"]
    assert host_b.find_by_order("h-1", "ServiceRequest/1")["decision_id"] == first["decision_id"]


def test_jti_used_on_one_host_is_refused_on_every_other(open_host) -> None:
    hosts = [open_host() for _ in range(3)]
    with ThreadPoolExecutor(3) as pool:
        replays = list(pool.map(lambda log: log.seen_jti("https://ehr", "jti-9", 2**40), hosts))
    assert sorted(replays) == [False, True, True]
    assert hosts[0].seen_jti("https://ehr", "jti-9", 2**40) is True


def test_failed_authentications_count_across_hosts(open_host) -> None:
    host_a, host_b = open_host(), open_host()
    for n in range(3):
        assert host_a.register_failure("203.0.113.9", 1000.0 + n, 60, 4) is None
    assert host_b.register_failure("203.0.113.9", 1010.0, 60, 4) is None
    # The limit is reached on every host; the wait runs until the oldest leaves the window.
    assert host_a.register_failure("203.0.113.9", 1020.0, 60, 4) == 40
    assert host_b.failures("203.0.113.9", 1020.0, 60) == 4
    assert host_b.register_failure("198.51.100.1", 1020.0, 60, 4) is None
    # Expired failures are forgotten (and purged by the next write).
    assert host_b.register_failure("203.0.113.9", 2000.0, 60, 4) is None
    assert host_a.failures("203.0.113.9", 2000.0, 60) == 1


def test_limit_th_failure_is_counted_once_when_hosts_race(open_host) -> None:
    hosts = [open_host() for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:
        waits = list(pool.map(lambda log: log.register_failure("192.0.2.7", 500.0, 60, 2),
                              hosts))
    assert sorted(w is None for w in waits) == [False, False, True, True]
    assert hosts[0].failures("192.0.2.7", 500.0, 60) == 2


def test_batch_with_a_conflict_is_rolled_back_whole(pg_log) -> None:
    pg_log.append(make_new(idempotency_key="k", body_sha256="a"))
    with pytest.raises(IdempotencyConflict):
        pg_log.append_many([make_new(), make_new(idempotency_key="k", body_sha256="b")])
    assert pg_log.head()["count"] == 1


def test_repeats_inside_one_batch_are_the_same_decision(pg_log) -> None:
    results = pg_log.append_many([
        make_new(idempotency_key="k", body_sha256="a"),
        make_new(idempotency_key="k", body_sha256="a"),
        make_new(channel="cds-hooks", hook_instance="h", order_ref="o"),
        make_new(channel="cds-hooks", hook_instance="h", order_ref="o"),
    ])
    assert [created for _, created in results] == [True, False, True, False]
    assert results[0][0]["decision_id"] == results[1][0]["decision_id"]
    assert results[2][0]["decision_id"] == results[3][0]["decision_id"]
    assert pg_log.verify()["decisions"]["checked"] == 2


def test_slow_audit_read_is_stopped_by_statement_timeout(pg_log) -> None:
    pg_log.append(make_new())
    pg_log.query_timeout_ms = 50
    with pytest.raises(QueryTimeout):
        pg_log._audit(lambda conn: conn.execute("SELECT pg_sleep(2)"))
    # The connection went back to the pool in a usable state.
    assert pg_log.head()["count"] == 1


def test_unreachable_server_fails_closed() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once closed
    log = PostgresDecisionLog(f"postgresql://nobody@127.0.0.1:{port}/none")
    log.pool.timeout_s = 1.0
    try:
        with pytest.raises(LogUnavailable):
            log.append(make_new())
        with pytest.raises(LogUnavailable):
            log.ping()
    finally:
        log.close()


def test_unmigrated_schema_is_not_ready(pg_url: str) -> None:
    log = PostgresDecisionLog(pg_url)
    try:
        with pytest.raises(LogUnavailable, match="init-db"):
            log.ping()
    finally:
        log.close()


def test_pool_is_reopened_in_a_forked_child(pg_log) -> None:
    pg_log.append(make_new())
    parent_pool = pg_log.pool.get()
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()

    def child() -> None:
        queue.put((pg_log.pool.get() is parent_pool, pg_log.head()["count"]))

    proc = ctx.Process(target=child)
    proc.start()
    assert queue.get(timeout=30) == (False, 1)
    proc.join(timeout=30)
    assert pg_log.head()["count"] == 1  # the parent's pool still works
