"""The decision log on PostgreSQL: one hash chain per table, shared by every app host.

Same public methods, records, errors and hashes as the SQLite log (the same tests run on
both). What differs is how a chain append is serialised across hosts:

**Chain lock.** Every append to a chain first takes a transaction-level advisory lock
(``pg_advisory_xact_lock(<schema>, <chain>)``), then reads the head (last ``seq`` and
``hash``, one backward step on the primary key), inserts, and commits; the lock is released
by the commit, after the commit record is flushed (``synchronous_commit = on``). Under READ
COMMITTED each statement takes a fresh snapshot, so the head read *after* the lock is
granted sees the previous holder's committed row. Why an advisory lock rather than a locked
chain-head row: it needs no privilege (row locks and ``LOCK TABLE`` need UPDATE, which the
application role must not have on log tables), writes nothing (a head row would be updated,
WAL-logged and vacuumed at every decision), and measured the same or better (see
docs/performance.md). Correctness does not depend on everyone taking it: ``seq`` is the
primary key, so two writers that read the same head cannot both commit (no fork), and
``seq`` comes from the head, never from a sequence object, so a rollback leaves no gap.

**Group commit.** ``append_many`` writes many decisions in one transaction and one WAL
flush; the in-process :class:`~referral_api.store.sqlite.writer.GroupCommitWriter` feeds it
(several gthread requests of one process share a commit). Across hosts, commits that hold
the chain lock are serial by construction: each decision's hash depends on the previous
one, so the next append can read the head only once the previous commit is visible.

Every psycopg error (server down, connection lost, lock or statement timeout) rolls the
transaction back and surfaces as :class:`LogUnavailable`: never a partial row, never a
decision returned unlogged.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg.rows import dict_row

from referral_api.enums import CHANNELS, FEEDBACK_OUTCOMES
from referral_api.store.canonical import GENESIS_HASH, canonical_json, chain_hash
from referral_api.store.interface import (
    DEFAULT_QUERY_TIMEOUT_MS,
    IDEMPOTENCY_HOURS,
    IdempotencyConflict,
    LogUnavailable,
    NewDecision,
    NewFeedback,
    QueryTimeout,
    StoreHealth,
    UnknownDecision,
)
from referral_api.store.postgres import queries
from referral_api.store.postgres.db import PING_TIMEOUT_S, LazyPool, redact
from referral_api.store.postgres.verify import verify_chain
from referral_api.store.query_args import normalize_filters
from referral_api.store.records import (
    ACCESS_COLUMNS,
    DECISION_COLUMNS,
    FEEDBACK_COLUMNS,
    JTI_RETENTION_SECONDS,
    VERIFY_CHUNK,
    access_entry,
    decision_record,
    feedback_item,
    scenario_id,
)
from referral_api.store.timestamps import utc_now, utc_timestamp

T = TypeVar("T")

#: Advisory lock keys, second half (the first is the schema's hash): one lock per chain.
CHAIN_LOCKS = {"decisions": 1, "feedback": 2, "access_log": 3}
_CHAINS = {
    "decisions": DECISION_COLUMNS,
    "feedback": FEEDBACK_COLUMNS,
    "access_log": ACCESS_COLUMNS,
}
# Column lists come from constants, never from input.
_DECISION_SELECT = "SELECT " + ", ".join(DECISION_COLUMNS) + " FROM decisions"  # noqa: S608
_FEEDBACK_SELECT = "SELECT " + ", ".join(FEEDBACK_COLUMNS) + " FROM feedback"  # noqa: S608
_ACCESS_SELECT = "SELECT " + ", ".join(ACCESS_COLUMNS) + " FROM access_log"  # noqa: S608


def _json_or_none(value: Any) -> str | None:
    return None if value is None else canonical_json(value).decode("utf-8")


def _chain_row(fields: dict) -> dict:
    return {**fields, "hash": chain_hash(fields["prev_hash"], fields)}


def _insert_sql(table: str, columns: Sequence[str]) -> str:
    # Table and column names come from this module's constants, never from input.
    return (f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608
            f"VALUES ({', '.join('%(' + c + ')s' for c in columns)})")


_INSERT_DECISION = _insert_sql("decisions", DECISION_COLUMNS)
_INSERT_FEEDBACK = _insert_sql("feedback", FEEDBACK_COLUMNS)
_INSERT_ACCESS = _insert_sql("access_log", ACCESS_COLUMNS)
_INSERT_IDEMPOTENCY = _insert_sql(
    "idempotency", ("client", "key", "body_sha256", "decision_id", "created_at"))


def lock_chain(conn: psycopg.Connection, chain: str) -> None:
    """Take the chain's advisory lock until the end of the current transaction."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(current_schema()), %s)",
                 [CHAIN_LOCKS[chain]])


def chain_head(conn: psycopg.Connection, table: str) -> tuple[int, str]:
    """``(seq, hash)`` of a chained table's last row, or ``(0, GENESIS_HASH)`` when empty."""
    row = conn.execute(
        f"SELECT seq, hash FROM {table} ORDER BY seq DESC LIMIT 1"  # noqa: S608
    ).fetchone()
    return (row[0], row[1]) if row else (0, GENESIS_HASH)


class PostgresDecisionLog:
    """:class:`~referral_api.store.interface.DecisionLog` on a PostgreSQL database given by
    URL; one connection pool per process.

    ``query_timeout_ms`` bounds every audit read (``SET LOCAL statement_timeout``): a read
    stopped by it raises :class:`QueryTimeout`. ``clock`` gives the times recorded in the
    chains (tests pass a fake one).
    """

    def __init__(
        self,
        url: str,
        *,
        pool_max: int = 4,
        query_timeout_ms: int = DEFAULT_QUERY_TIMEOUT_MS,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        self.url = url
        self.pool = LazyPool(url, max_size=pool_max)
        self.query_timeout_ms = query_timeout_ms
        self.clock = clock

    def __repr__(self) -> str:
        return f"PostgresDecisionLog({redact(self.url)!r})"

    # -- connection handling --------------------------------------------------------------

    def close(self) -> None:
        """Close this process's pool."""
        self.pool.close()

    def _unavailable(self, exc: BaseException, what: str) -> LogUnavailable:
        # psycopg messages name the server's condition (connection refused, terminating
        # connection, canceling statement due to statement timeout): no patient data, as
        # every value is sent as a parameter, never inside the SQL text.
        sqlstate = getattr(exc, "sqlstate", None)
        return LogUnavailable(f"{what}: {type(exc).__name__}"
                              + (f" [{sqlstate}]" if sqlstate else ""))

    def _write(self, what: str, fn: Callable[[psycopg.Connection], T]) -> T:
        """Run ``fn`` in one transaction on a pooled connection; LogUnavailable on any
        database error (the transaction is rolled back)."""
        try:
            with self.pool.connection() as conn, conn.transaction():
                return fn(conn)
        except psycopg.Error as exc:
            raise self._unavailable(exc, what) from exc

    def _read(self, what: str, fn: Callable[..., T], *args: Any,
              timeout_ms: int | None = None, wait_s: float | None = None) -> T:
        """Run ``fn(conn, *args)`` in one read transaction (one snapshot), each statement
        bounded by ``timeout_ms`` (:class:`QueryTimeout` when exceeded); ``wait_s`` bounds
        the wait for a connection."""
        try:
            with self.pool.connection(wait_s) as conn, conn.transaction():
                if timeout_ms is not None:
                    # SET LOCAL ends with the transaction, so a pooled connection never keeps
                    # the limit. It takes no parameters: the value is an int formatted here.
                    # 0 means "no time at all" (as on SQLite), never PostgreSQL's "no limit".
                    conn.execute(f"SET LOCAL statement_timeout = {max(1, int(timeout_ms))}")
                return fn(conn, *args)
        except psycopg.errors.QueryCanceled as exc:
            if timeout_ms is None:
                raise self._unavailable(exc, what) from exc
            raise QueryTimeout(int(timeout_ms)) from None
        except psycopg.Error as exc:
            raise self._unavailable(exc, what) from exc

    def _audit(self, fn: Callable[..., T], *args: Any) -> T:
        """An audit read under the store's time limit."""
        return self._read("the decision log cannot be read", fn, *args,
                          timeout_ms=self.query_timeout_ms)

    # -- decisions ------------------------------------------------------------------------

    def append(self, new: NewDecision) -> tuple[dict, bool]:
        """Append one decision; return ``(record, created)`` (see ``append_many``)."""
        return self.append_many([new])[0]

    def append_many(self, news: Sequence[NewDecision]) -> list[tuple[dict, bool]]:
        """Append several decisions in ONE durable transaction (group commit).

        ``created`` is False when the decision already existed (same idempotency key and
        body within 24 h, or same ``hook_instance`` + ``order_ref``), whichever host
        recorded it. All or nothing: an :class:`IdempotencyConflict` on any item rolls back
        the batch. Raises :class:`LogUnavailable` when it cannot be committed.
        """
        for new in news:
            if new.channel not in CHANNELS:
                raise ValueError(f"channel must be one of {CHANNELS}")
            if new.idempotency_key is not None and not new.body_sha256:
                raise ValueError("an idempotency key needs body_sha256")
        if not news:
            return []
        return self._write("the decision could not be recorded",
                           lambda conn: self._append_in_tx(conn, news))

    def _append_in_tx(
        self, conn: psycopg.Connection, news: Sequence[NewDecision]
    ) -> list[tuple[dict, bool]]:
        lock_chain(conn, "decisions")
        head = conn.execute(
            "SELECT seq, hash, created_at FROM decisions ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        seq, prev_hash, last_created = head if head else (0, GENESIS_HASH, "")
        now = self.clock()
        # created_at never goes backwards along the chain, whatever the hosts' clocks say.
        created_at = max(utc_timestamp(now), last_created)
        if any(new.idempotency_key is not None for new in news):
            cutoff = utc_timestamp(now - dt.timedelta(hours=IDEMPOTENCY_HOURS))
            conn.execute("DELETE FROM idempotency WHERE created_at < %s", [cutoff])
        results: list[tuple[dict, bool]] = []
        rows: list[dict] = []
        keys: list[dict] = []
        for new in news:
            existing = self._existing_in_tx(conn, new, rows, keys)
            if existing is not None:
                results.append((existing, False))
                continue
            seq += 1
            row = _chain_row({
                "seq": seq,
                "decision_id": str(uuid.uuid4()),
                "created_at": created_at,
                "channel": new.channel,
                "client": new.client,
                "ordering_clinician": new.ordering_clinician,
                "patient_hash": new.patient_hash,
                "region": new.output.get("region", new.input.get("region")),
                "appropriateness": new.output.get("appropriateness"),
                "urgency": new.output.get("urgency"),
                "scenario": scenario_id(new.output),
                "ruleset_version": new.ruleset_version,
                "ruleset_sha256": new.ruleset_sha256,
                "engine_version": new.engine_version,
                "latency_ms": round(float(new.latency_ms), 3),
                "hook_instance": new.hook_instance,
                "order_ref": new.order_ref,
                "input_json": canonical_json(new.input).decode("utf-8"),
                "output_json": canonical_json(new.output).decode("utf-8"),
                "prev_hash": prev_hash,
            })
            rows.append(row)
            prev_hash = row["hash"]
            if new.idempotency_key is not None:
                key = {"client": new.idempotency_owner, "key": new.idempotency_key,
                       "body_sha256": new.body_sha256, "decision_id": row["decision_id"],
                       "created_at": created_at}
                keys.append(key)
            results.append((decision_record(row, parsed=(new.input, new.output)), True))
        with conn.cursor() as cur:
            if rows:
                cur.executemany(_INSERT_DECISION, rows)
            if keys:
                cur.executemany(_INSERT_IDEMPOTENCY, keys)
        return results

    def _existing_in_tx(self, conn: psycopg.Connection, new: NewDecision,
                        batch_rows: list[dict], batch_keys: list[dict]) -> dict | None:
        """The decision this one repeats, if any: stored, or earlier in the same batch
        (rows of a batch are inserted together at its end, so they are looked up here)."""
        if new.idempotency_key is not None:
            owner, key = new.idempotency_owner, new.idempotency_key
            stored = next(({"body_sha256": k["body_sha256"], "decision_id": k["decision_id"]}
                           for k in batch_keys if k["client"] == owner and k["key"] == key),
                          None)
            if stored is None:
                found = conn.execute(
                    "SELECT body_sha256, decision_id FROM idempotency "
                    "WHERE client = %s AND key = %s", [owner, key]).fetchone()
                stored = ({"body_sha256": found[0], "decision_id": found[1]}
                          if found else None)
            if stored is not None:
                if stored["body_sha256"] != new.body_sha256:
                    raise IdempotencyConflict(
                        "this Idempotency-Key was already used with a different body")
                in_batch = next((r for r in batch_rows
                                 if r["decision_id"] == stored["decision_id"]), None)
                if in_batch is not None:
                    return decision_record(in_batch)
                return self._get(conn, stored["decision_id"])
        if new.hook_instance is not None and new.order_ref is not None:
            in_batch = next((r for r in batch_rows if r["hook_instance"] == new.hook_instance
                             and r["order_ref"] == new.order_ref), None)
            if in_batch is not None:
                return decision_record(in_batch)
            return self._find_order(conn, new.hook_instance, new.order_ref)
        return None

    @staticmethod
    def _with_feedback(conn: psycopg.Connection, row: dict) -> dict:
        with conn.cursor(row_factory=dict_row) as cur:
            feedback = cur.execute(_FEEDBACK_SELECT + " WHERE decision_id = %s ORDER BY seq",
                                   [row["decision_id"]]).fetchall()
        return decision_record(row, feedback)

    def _get(self, conn: psycopg.Connection, decision_id: str) -> dict | None:
        with conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(_DECISION_SELECT + " WHERE decision_id = %s",
                              [decision_id]).fetchone()
        return None if row is None else self._with_feedback(conn, row)

    def _find_order(self, conn: psycopg.Connection, hook_instance: str,
                    order_ref: str) -> dict | None:
        with conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(_DECISION_SELECT + " WHERE hook_instance = %s AND order_ref = %s",
                              [hook_instance, order_ref]).fetchone()
        return None if row is None else self._with_feedback(conn, row)

    def get(self, decision_id: str) -> dict | None:
        """The full record (feedback oldest first, chain), or None."""
        return self._audit(self._get, decision_id)

    def find_by_order(self, hook_instance: str, order_ref: str) -> dict | None:
        """The decision already made for this CDS Hooks ``hookInstance`` and ServiceRequest."""
        return self._audit(self._find_order, hook_instance, order_ref)

    def head(self) -> dict:
        """The anchor an auditor saves: ``{"count": n, "head": hash}`` of the decision chain."""

        def read(conn: psycopg.Connection) -> dict:
            count, head = chain_head(conn, "decisions")
            return {"count": count, "head": head}

        return self._audit(read)

    # -- feedback -------------------------------------------------------------------------

    def append_feedback(self, decision_id: str, feedback: NewFeedback, client: str) -> dict:
        """Append feedback to a decision; return the stored entry.

        :class:`UnknownDecision` for an unknown decision, ValueError for a bad outcome,
        LogUnavailable when it cannot be committed.
        """
        outcome = feedback.outcome
        if outcome not in FEEDBACK_OUTCOMES:
            raise ValueError(f"outcome must be one of {FEEDBACK_OUTCOMES}")

        def write(conn: psycopg.Connection) -> dict:
            known = conn.execute("SELECT seq, created_at FROM decisions WHERE decision_id = %s",
                                 [decision_id]).fetchone()
            if known is None:
                raise UnknownDecision(decision_id)
            lock_chain(conn, "feedback")
            seq, prev_hash = chain_head(conn, "feedback")
            row = _chain_row({
                "seq": seq + 1,
                "decision_id": decision_id,
                "outcome": outcome,
                "override_reason_json": _json_or_none(feedback.override_reason),
                "accepted_suggestions_json": _json_or_none(feedback.accepted_suggestions),
                "outcome_timestamp": feedback.outcome_timestamp,
                "received_at": utc_timestamp(self.clock()),
                "client": client,
                "prev_hash": prev_hash,
            })
            conn.execute(_INSERT_FEEDBACK, row)
            conn.execute(
                "INSERT INTO feedback_latest (decision_seq, created_at, outcome) "
                "VALUES (%s, %s, %s) ON CONFLICT (decision_seq) DO UPDATE SET outcome = "
                "excluded.outcome", [known[0], known[1], outcome])
            return row

        row = self._write("the feedback could not be recorded", write)
        return feedback_item(row)

    # -- access log, JWT replay, failed authentications, readiness ------------------------

    def record_access(self, actor: str, action: str, target: Mapping[str, Any]) -> None:
        """Append who read what (``target``: ids or the query) to the access-log chain."""

        def write(conn: psycopg.Connection) -> None:
            lock_chain(conn, "access_log")
            seq, prev_hash = chain_head(conn, "access_log")
            conn.execute(_INSERT_ACCESS, _chain_row({
                "seq": seq + 1,
                "at": utc_timestamp(self.clock()),
                "actor": actor,
                "action": action,
                "target_json": canonical_json(dict(target)).decode("utf-8"),
                "prev_hash": prev_hash,
            }))

        self._write("the access could not be recorded", write)

    def access_log(self, limit: int = 100, before_seq: int | None = None) -> list[dict]:
        """Access-log entries, newest first (keyset on seq)."""

        def read(conn: psycopg.Connection) -> list[dict]:
            with conn.cursor(row_factory=dict_row) as cur:
                rows = cur.execute(
                    _ACCESS_SELECT + " WHERE seq < %s ORDER BY seq DESC LIMIT %s",
                    [before_seq if before_seq is not None else 2**63 - 1, limit],
                ).fetchall()
            return [access_entry(r) for r in rows]

        return self._audit(read)

    def seen_jti(self, iss: str, jti: str, exp: int) -> bool:
        """Record a JWT ``jti``; True when it was already recorded (a replay), by any host.

        ``INSERT … ON CONFLICT DO NOTHING`` on the primary key is atomic across sessions: of
        two hosts presenting the same token at once, exactly one inserts the row.
        """

        def write(conn: psycopg.Connection) -> bool:
            conn.execute("DELETE FROM jwt_seen WHERE exp < %s",
                         [int(self.clock().timestamp()) - JTI_RETENTION_SECONDS])
            cur = conn.execute(
                "INSERT INTO jwt_seen (iss, jti, exp) VALUES (%s, %s, %s) "
                "ON CONFLICT DO NOTHING", [iss, jti, int(exp)])
            return cur.rowcount == 0

        return self._write("the token could not be recorded", write)

    def register_failure(self, client: str, now: float, window_s: float,
                         limit: int) -> int | None:
        """The throttle's question, answered for every host at once: count one failure of
        ``client`` at ``now`` unless it already has ``limit`` in the window; then return the
        whole seconds until the oldest leaves it (see ``AuthFailureCounter``).

        Serialised per client by a transaction-level advisory lock, so two hosts cannot both
        count the limit-th failure. ``synchronous_commit`` is off for this transaction only:
        a lost count after a crash only ever errs towards letting a client in.
        """

        def write(conn: psycopg.Connection) -> int | None:
            conn.execute("SET LOCAL synchronous_commit = off")
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(current_schema() || "
                         "':auth'), hashtext(%s))", [client])
            since = now - window_s
            count, oldest = conn.execute(
                "SELECT count(*), min(at) FROM auth_failures WHERE client = %s AND at > %s",
                [client, since]).fetchone() or (0, None)
            if count >= limit and oldest is not None:
                return max(1, math.ceil(oldest + window_s - now))
            conn.execute("INSERT INTO auth_failures (client, at) VALUES (%s, %s)", [client, now])
            conn.execute("DELETE FROM auth_failures WHERE at <= %s", [since])
            return None

        return self._write("the failed authentication could not be recorded", write)

    def failures(self, client: str, now: float, window_s: float) -> int:
        """How many failures of ``client`` lie in the window ending at ``now``."""

        def read(conn: psycopg.Connection) -> int:
            row = conn.execute("SELECT count(*) FROM auth_failures WHERE client = %s AND at > %s",
                               [client, now - window_s]).fetchone()
            return int(row[0]) if row else 0

        return self._read("the failed authentications cannot be read", read)

    def ping(self) -> None:
        """Raise :class:`LogUnavailable` unless the schema exists and the server accepts a
        write transaction (not a read-only standby, not in recovery). Writes nothing."""

        def check(conn: psycopg.Connection) -> None:
            version = conn.execute(
                "SELECT to_regclass('meta') IS NOT NULL, pg_is_in_recovery(), "
                "current_setting('transaction_read_only')").fetchone()
            if version is None or not version[0]:
                raise LogUnavailable("the database is not initialised (run init-db)")
            if version[1] or version[2] == "on":
                raise LogUnavailable("the database is read-only (a standby?)")
            found = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'"
                                 ).fetchone()
            if found is None:
                raise LogUnavailable("the database is not initialised (run init-db)")

        self._read("the database is not reachable", check, wait_s=PING_TIMEOUT_S)

    def health(self) -> StoreHealth:
        """``database``: writable | unavailable (:meth:`ping`). Disk room is the database
        server's concern (its own monitoring), not something an app host can see."""
        try:
            self.ping()
        except LogUnavailable:
            return StoreHealth(ready=False, checks={"database": "unavailable"})
        return StoreHealth(ready=True, checks={"database": "writable"})

    # -- audit reads (see referral_api/store/postgres/queries.py) -------------------------

    def query(
        self, filters: Mapping[str, Any] | None, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[dict], str | None]:
        """A page of records, newest first, and the next cursor (None on the last page).

        ValueError for invalid filters, limit or cursor (before any connection is taken).
        """
        prepared = queries.prepare_query(filters, limit, cursor)
        return self._audit(queries.query, prepared)

    def iter_records(self, filters: Mapping[str, Any] | None) -> Iterator[dict]:
        """Every matching record, oldest first; constant memory, one short read per chunk,
        each under the time limit. Filters are validated before this returns (ValueError).
        """
        return self._iter_records(normalize_filters(filters))

    def _iter_records(self, normalized: dict) -> Iterator[dict]:
        last_seq = 0
        while True:
            records = self._audit(queries.export_chunk, normalized, last_seq)
            yield from records
            if len(records) < queries.EXPORT_CHUNK:
                return
            last_seq = records[-1]["chain"]["seq"]

    def stats(self, filters: Mapping[str, Any] | None, group_by: Sequence[str]) -> dict:
        """Counts and override rates grouped by ``group_by`` (as the SQLite log)."""
        prepared = queries.prepare_stats(filters, group_by)
        return self._audit(queries.stats, prepared)

    # -- verification ---------------------------------------------------------------------

    def _iter_rows(self, table: str, chunk: int = VERIFY_CHUNK) -> Iterator[dict]:
        columns = ", ".join(_CHAINS[table])
        last = 0
        while True:
            rows = self._read(
                "the decision log cannot be read",
                lambda conn, after: conn.cursor(row_factory=dict_row).execute(
                    f"SELECT {columns} FROM {table} WHERE seq > %s "  # noqa: S608
                    "ORDER BY seq LIMIT %s", [after, chunk]).fetchall(),
                last)
            yield from rows
            if len(rows) < chunk:
                return
            last = rows[-1]["seq"]

    def verify(self, expect_head: str | None = None, expect_count: int | None = None) -> dict:
        """Walk every chain, exactly as the SQLite log does (same report shape)."""
        return {
            "decisions": verify_chain("decisions", self._iter_rows("decisions"),
                                      expect_head, expect_count),
            "feedback": verify_chain("feedback", self._iter_rows("feedback")),
            "access_log": verify_chain("access_log", self._iter_rows("access_log")),
        }
