"""The durable, hash-chained, append-only decision log (and its sibling chains).

:class:`DecisionLog` is the narrow interface the web layer uses; :class:`SQLiteDecisionLog`
implements it on SQLite (a PostgreSQL implementation can follow the same protocol).

Guarantees:
- a decision is returned only after its row is committed with ``synchronous=FULL``;
- seq, created_at, prev_hash and hash are assigned inside one ``BEGIN IMMEDIATE``
  transaction, so concurrent workers (processes or threads) cannot fork the chain;
- any SQLite failure rolls the whole transaction back and surfaces as
  :class:`LogUnavailable` (the caller answers 503): never a partial row;
- decisions, feedback and the access log each carry their own chain (see ``db/README.md``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import sqlite_utils

from referral_api.enums import CHANNELS, FEEDBACK_OUTCOMES
from referral_api.store.canonical import GENESIS_HASH, canonical_json, chain_hash
from referral_api.store.sqlite.db import (
    DEFAULT_BUSY_TIMEOUT_MS,
    LazyDatabase,
    utc_timestamp,
    write_transaction,
)

IDEMPOTENCY_HOURS = 24
# jti rows are kept this long after their token's exp, so a token still accepted within the
# JWT library's clock leeway cannot be replayed once its row is purged.
JTI_RETENTION_SECONDS = 600
VERIFY_CHUNK = 1000

# Stored columns, in table order.  The chain hash covers every one of them except `hash`.
DECISION_COLUMNS = (
    "seq", "decision_id", "created_at", "channel", "client", "ordering_clinician",
    "patient_hash", "region", "appropriateness", "urgency", "scenario", "ruleset_version",
    "ruleset_sha256", "engine_version", "latency_ms", "hook_instance", "order_ref",
    "input_json", "output_json", "prev_hash", "hash",
)  # fmt: skip
FEEDBACK_COLUMNS = (
    "seq", "decision_id", "outcome", "override_reason_json", "accepted_suggestions_json",
    "outcome_timestamp", "received_at", "client", "prev_hash", "hash",
)  # fmt: skip
ACCESS_COLUMNS = ("seq", "at", "actor", "action", "target_json", "prev_hash", "hash")

_CHAINS = {
    "decisions": DECISION_COLUMNS,
    "feedback": FEEDBACK_COLUMNS,
    "access_log": ACCESS_COLUMNS,
}


class LogUnavailable(Exception):
    """The log could not be read or durably written; nothing was committed (answer 503)."""


class IdempotencyConflict(Exception):
    """The idempotency key was already used by this client with a different body (422)."""


@dataclass(frozen=True)
class NewDecision:
    """A decision to append.  ``output`` is the engine result (the response body fields)."""

    channel: str
    client: str
    ordering_clinician: str | None
    patient_hash: str | None
    input: dict
    output: dict
    ruleset_version: str
    ruleset_sha256: str
    engine_version: str
    latency_ms: float
    hook_instance: str | None = None
    order_ref: str | None = None
    idempotency_key: str | None = None
    body_sha256: str | None = None
    #: Whose keys these are: the credential (API key id) that sent the request. Two keys
    #: that share a label must not see each other's decisions; defaults to ``client``.
    idempotency_scope: str | None = None

    @property
    def idempotency_owner(self) -> str:
        """The namespace of ``idempotency_key``."""
        return self.idempotency_scope or self.client


class DecisionLog(Protocol):
    """Storage interface of the decision log (see :class:`SQLiteDecisionLog` for semantics)."""

    def append(self, new: NewDecision) -> tuple[dict, bool]: ...
    def append_many(self, news: Sequence[NewDecision]) -> list[tuple[dict, bool]]: ...
    def get(self, decision_id: str) -> dict | None: ...
    def find_by_order(self, hook_instance: str, order_ref: str) -> dict | None: ...
    def find_idempotent(
        self, client: str, key: str, max_age_hours: float = IDEMPOTENCY_HOURS
    ) -> tuple[str, dict] | None: ...
    def append_feedback(self, decision_id: str, feedback: dict, client: str) -> dict: ...
    def verify(self, expect_head: str | None = None, expect_count: int | None = None) -> dict: ...
    def record_access(self, actor: str, action: str, target: dict) -> None: ...
    def seen_jti(self, iss: str, jti: str, exp: int) -> bool: ...
    def ping(self) -> None: ...


def _dicts(cursor: sqlite3.Cursor) -> list[dict]:
    keys = [d[0] for d in cursor.description]
    return [dict(zip(keys, row, strict=True)) for row in cursor.fetchall()]


def _one(cursor: sqlite3.Cursor) -> dict | None:
    rows = _dicts(cursor)
    return rows[0] if rows else None


def _json_or_none(value: Any) -> str | None:
    return None if value is None else canonical_json(value).decode("utf-8")


def _load_or_none(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _insert(conn: sqlite3.Connection, table: str, row: dict) -> None:
    columns = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    # Table and column names come from this module's constants, never from input.
    sql = f"INSERT INTO {table} ({columns}) VALUES ({marks})"  # noqa: S608
    conn.execute(sql, list(row.values()))


def _chain_head(conn: sqlite3.Connection, table: str) -> tuple[int, str]:
    """``(seq, hash)`` of a chained table's last row, or ``(0, GENESIS_HASH)`` when empty."""
    # Table names come from this module's constants, never from input.
    row = conn.execute(f"SELECT seq, hash FROM {table} ORDER BY seq DESC LIMIT 1").fetchone()  # noqa: S608
    return (row[0], row[1]) if row else (0, GENESIS_HASH)


def _chain_row(fields: dict) -> dict:
    """Return ``fields`` plus its ``hash`` (``fields`` already holds ``prev_hash``)."""
    return {**fields, "hash": chain_hash(fields["prev_hash"], fields)}


def decision_record(
    row: dict,
    feedback_rows: Sequence[dict] = (),
    *,
    parsed: tuple[dict, dict] | None = None,
) -> dict:
    """The API shape of a decision (api-v1.md "Decision records") from its stored row.

    ``parsed`` = ``(input, output)`` when the caller already holds the objects the row's JSON
    columns were serialised from (the append path), so they need not be parsed back.
    """
    if parsed is None:
        input_obj, record = json.loads(row["input_json"]), json.loads(row["output_json"])
    else:
        input_obj, record = parsed[0], dict(parsed[1])
    record.update(
        decision_id=row["decision_id"],
        created_at=row["created_at"],
        channel=row["channel"],
        input=input_obj,
        client=row["client"],
        ordering_clinician=row["ordering_clinician"],
        engine_version=row["engine_version"],
        latency_ms=row["latency_ms"],
        hook_instance=row["hook_instance"],
        feedback=[feedback_item(f) for f in feedback_rows],
        chain={"seq": row["seq"], "prev_hash": row["prev_hash"], "hash": row["hash"]},
    )
    return record


def feedback_item(row: dict) -> dict:
    """The API shape of one feedback entry from its stored row."""
    return {
        "outcome": row["outcome"],
        "override_reason": _load_or_none(row["override_reason_json"]),
        "accepted_suggestions": _load_or_none(row["accepted_suggestions_json"]),
        "outcome_timestamp": row["outcome_timestamp"],
        "received_at": row["received_at"],
        "client": row["client"],
        "chain": {"seq": row["seq"], "prev_hash": row["prev_hash"], "hash": row["hash"]},
    }


def _scenario_id(output: dict) -> str | None:
    scenario = output.get("scenario")
    if isinstance(scenario, dict):
        return scenario.get("id")
    return scenario if isinstance(scenario, str) else None


def _feedback_field(feedback: dict, camel: str, snake: str) -> Any:
    return feedback.get(camel, feedback.get(snake))


class SQLiteDecisionLog:
    """:class:`DecisionLog` on one SQLite file, one lazily opened connection per thread."""

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS):
        self.path = Path(path)
        self.connections = LazyDatabase(self.path, busy_timeout_ms=busy_timeout_ms)

    # -- connection handling --------------------------------------------------------------

    def db(self) -> sqlite_utils.Database:
        """This thread's connection (opened on first use). Raises ``sqlite3.Error``."""
        return self.connections.get()

    def _unavailable(self, exc: BaseException, what: str) -> LogUnavailable:
        # After an I/O, full-disk or read-only error the connection may be unusable: drop it
        # so that the next call reopens.  The message names no patient data.
        with contextlib.suppress(sqlite3.Error):
            self.connections.close()
        # The extended code (SQLITE_READONLY_DBMOVED, SQLITE_FULL …) tells operators why.
        code = getattr(exc, "sqlite_errorname", None)
        return LogUnavailable(f"{what}: {type(exc).__name__}: {exc}"
                              + (f" [{code}]" if code else ""))

    def close(self) -> None:
        """Close this thread's connection."""
        self.connections.close()

    # -- decisions ----------------------------------------------------------------------

    def append(self, new: NewDecision) -> tuple[dict, bool]:
        """Append one decision; return ``(record, created)``.

        ``created`` is False when the decision already existed: same idempotency key and
        body from the same client within 24 h, or same ``hook_instance`` + ``order_ref``.
        Raises :class:`IdempotencyConflict` or :class:`LogUnavailable`.
        """
        return self.append_many([new])[0]

    def append_many(self, news: Sequence[NewDecision]) -> list[tuple[dict, bool]]:
        """Append several decisions in ONE durable transaction (group commit).

        All or nothing: an :class:`IdempotencyConflict` on any item rolls back the batch.
        """
        for new in news:
            self._validate(new)
        if not news:
            return []
        try:
            db = self.db()
            conn = db.conn
            with write_transaction(db):
                results = self._append_in_tx(conn, news)
        except IdempotencyConflict:
            raise
        except sqlite3.Error as exc:
            raise self._unavailable(exc, "the decision could not be recorded") from exc
        return results

    @staticmethod
    def _validate(new: NewDecision) -> None:
        if new.channel not in CHANNELS:
            raise ValueError(f"channel must be one of {CHANNELS}")
        if new.idempotency_key is not None and not new.body_sha256:
            raise ValueError("an idempotency key needs body_sha256")

    def _append_in_tx(
        self, conn: sqlite3.Connection, news: Sequence[NewDecision]
    ) -> list[tuple[dict, bool]]:
        head = conn.execute(
            "SELECT seq, hash, created_at FROM decisions ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        seq, prev_hash, last_created = head if head else (0, GENESIS_HASH, "")
        now = dt.datetime.now(dt.UTC)
        # created_at never goes backwards along the chain (clock steps), so time ranges map
        # to seq ranges and "newest first" by seq is also newest first by time.
        created_at = max(utc_timestamp(now), last_created)
        if any(new.idempotency_key is not None for new in news):
            # Expired keys are purged only when keys are in play: the check below then never
            # sees a key older than 24 h, and plain decisions pay nothing for the feature.
            cutoff = utc_timestamp(now - dt.timedelta(hours=IDEMPOTENCY_HOURS))
            conn.execute("DELETE FROM idempotency WHERE created_at < ?", [cutoff])
        results: list[tuple[dict, bool]] = []
        for new in news:
            existing = self._existing_in_tx(conn, new)
            if existing is not None:
                results.append((existing, False))
                continue
            seq += 1
            row = _chain_row(
                {
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
                    "scenario": _scenario_id(new.output),
                    "ruleset_version": new.ruleset_version,
                    "ruleset_sha256": new.ruleset_sha256,
                    "engine_version": new.engine_version,
                    # Rounded so the stored REAL and the hashed JSON number are the same.
                    "latency_ms": round(float(new.latency_ms), 3),
                    "hook_instance": new.hook_instance,
                    "order_ref": new.order_ref,
                    "input_json": canonical_json(new.input).decode("utf-8"),
                    "output_json": canonical_json(new.output).decode("utf-8"),
                    "prev_hash": prev_hash,
                }
            )
            _insert(conn, "decisions", row)
            prev_hash = row["hash"]
            if new.idempotency_key is not None:
                _insert(
                    conn,
                    "idempotency",
                    {
                        "client": new.idempotency_owner,
                        "key": new.idempotency_key,
                        "body_sha256": new.body_sha256,
                        "decision_id": row["decision_id"],
                        "created_at": created_at,
                    },
                )
            results.append((decision_record(row, parsed=(new.input, new.output)), True))
        return results

    def _existing_in_tx(self, conn: sqlite3.Connection, new: NewDecision) -> dict | None:
        """The already recorded decision this one repeats, if any (inside the write lock)."""
        if new.idempotency_key is not None:
            stored = _one(
                conn.execute(
                    "SELECT body_sha256, decision_id FROM idempotency WHERE client = ? AND key = ?",
                    [new.idempotency_owner, new.idempotency_key],
                )
            )
            if stored is not None:
                if stored["body_sha256"] != new.body_sha256:
                    raise IdempotencyConflict(
                        "this Idempotency-Key was already used with a different body"
                    )
                return self._get(conn, stored["decision_id"])
        if new.hook_instance is not None and new.order_ref is not None:
            row = _one(
                conn.execute(
                    "SELECT * FROM decisions WHERE hook_instance = ? AND order_ref = ?",
                    [new.hook_instance, new.order_ref],
                )
            )
            if row is not None:
                return self._with_feedback(conn, row)
        return None

    @staticmethod
    def _with_feedback(conn: sqlite3.Connection, row: dict) -> dict:
        feedback = _dicts(
            conn.execute(
                "SELECT * FROM feedback WHERE decision_id = ? ORDER BY seq", [row["decision_id"]]
            )
        )
        return decision_record(row, feedback)

    def _get(self, conn: sqlite3.Connection, decision_id: str) -> dict | None:
        row = _one(conn.execute("SELECT * FROM decisions WHERE decision_id = ?", [decision_id]))
        return None if row is None else self._with_feedback(conn, row)

    def _read(self, what: str, fn: Any, *args: Any) -> Any:
        try:
            return fn(self.db().conn, *args)
        except sqlite3.Error as exc:
            raise self._unavailable(exc, what) from exc

    def get(self, decision_id: str) -> dict | None:
        """The full record (feedback oldest first, chain), or None."""
        return self._read("the decision log cannot be read", self._get, decision_id)

    def find_by_order(self, hook_instance: str, order_ref: str) -> dict | None:
        """The decision already made for this CDS Hooks ``hookInstance`` and ServiceRequest."""

        def find(conn: sqlite3.Connection) -> dict | None:
            row = _one(
                conn.execute(
                    "SELECT * FROM decisions WHERE hook_instance = ? AND order_ref = ?",
                    [hook_instance, order_ref],
                )
            )
            return None if row is None else self._with_feedback(conn, row)

        return self._read("the decision log cannot be read", find)

    def find_idempotent(
        self, client: str, key: str, max_age_hours: float = IDEMPOTENCY_HOURS
    ) -> tuple[str, dict] | None:
        """``(body_sha256, record)`` stored for this client's key within the window, or None."""
        cutoff = utc_timestamp(dt.datetime.now(dt.UTC) - dt.timedelta(hours=max_age_hours))

        def find(conn: sqlite3.Connection) -> tuple[str, dict] | None:
            stored = _one(
                conn.execute(
                    "SELECT body_sha256, decision_id FROM idempotency "
                    "WHERE client = ? AND key = ? AND created_at >= ?",
                    [client, key, cutoff],
                )
            )
            if stored is None:
                return None
            record = self._get(conn, stored["decision_id"])
            return None if record is None else (stored["body_sha256"], record)

        return self._read("the decision log cannot be read", find)

    def head(self) -> dict:
        """The anchor an auditor saves: ``{"count": n, "head": hash}`` of the decision chain."""

        def read(conn: sqlite3.Connection) -> dict:
            count, head = _chain_head(conn, "decisions")
            return {"count": count, "head": head}

        return self._read("the decision log cannot be read", read)

    # -- feedback -----------------------------------------------------------------------

    def append_feedback(self, decision_id: str, feedback: dict, client: str) -> dict:
        """Append CDS Hooks feedback to a decision; return the stored entry.

        ``feedback`` holds ``outcome`` (accepted | overridden) and optionally
        ``overrideReason``, ``acceptedSuggestions``, ``outcomeTimestamp`` (snake_case
        spellings accepted too).  KeyError for an unknown decision, ValueError for a bad
        outcome, LogUnavailable when it cannot be committed.
        """
        outcome = feedback.get("outcome")
        if outcome not in FEEDBACK_OUTCOMES:
            raise ValueError(f"outcome must be one of {FEEDBACK_OUTCOMES}")
        try:
            db = self.db()
            conn = db.conn
            with write_transaction(db):
                known = conn.execute(
                    "SELECT seq, created_at FROM decisions WHERE decision_id = ?", [decision_id]
                ).fetchone()
                if known is None:
                    raise KeyError(decision_id)
                seq, prev_hash = _chain_head(conn, "feedback")
                row = _chain_row(
                    {
                        "seq": seq + 1,
                        "decision_id": decision_id,
                        "outcome": outcome,
                        "override_reason_json": _json_or_none(
                            _feedback_field(feedback, "overrideReason", "override_reason")
                        ),
                        "accepted_suggestions_json": _json_or_none(
                            _feedback_field(feedback, "acceptedSuggestions", "accepted_suggestions")
                        ),
                        "outcome_timestamp": _feedback_field(
                            feedback, "outcomeTimestamp", "outcome_timestamp"
                        ),
                        "received_at": utc_timestamp(),
                        "client": client,
                        "prev_hash": prev_hash,
                    }
                )
                _insert(conn, "feedback", row)
                # Statistics and the feedback filter read the latest outcome from here, in step
                # with the feedback chain (same transaction).
                conn.execute(
                    "INSERT INTO feedback_latest (decision_seq, created_at, outcome) "
                    "VALUES (?, ?, ?) ON CONFLICT (decision_seq) DO UPDATE SET outcome = "
                    "excluded.outcome",
                    [known[0], known[1], outcome],
                )
        except sqlite3.Error as exc:
            raise self._unavailable(exc, "the feedback could not be recorded") from exc
        return feedback_item(row)

    # -- access log, JWT replay, readiness ----------------------------------------------

    def record_access(self, actor: str, action: str, target: dict) -> None:
        """Append who read what (``target``: ids or the query) to the access-log chain."""
        try:
            db = self.db()
            conn = db.conn
            with write_transaction(db):
                seq, prev_hash = _chain_head(conn, "access_log")
                row = _chain_row(
                    {
                        "seq": seq + 1,
                        "at": utc_timestamp(),
                        "actor": actor,
                        "action": action,
                        "target_json": canonical_json(target).decode("utf-8"),
                        "prev_hash": prev_hash,
                    }
                )
                _insert(conn, "access_log", row)
        except sqlite3.Error as exc:
            raise self._unavailable(exc, "the access could not be recorded") from exc

    def access_log(self, limit: int = 100, before_seq: int | None = None) -> list[dict]:
        """Access-log entries, newest first (keyset on seq)."""

        def read(conn: sqlite3.Connection) -> list[dict]:
            rows = _dicts(
                conn.execute(
                    "SELECT * FROM access_log WHERE seq < ? ORDER BY seq DESC LIMIT ?",
                    [before_seq if before_seq is not None else 2**63 - 1, limit],
                )
            )
            return [
                {
                    "seq": r["seq"],
                    "at": r["at"],
                    "actor": r["actor"],
                    "action": r["action"],
                    "target": json.loads(r["target_json"]),
                    "chain": {"seq": r["seq"], "prev_hash": r["prev_hash"], "hash": r["hash"]},
                }
                for r in rows
            ]

        return self._read("the access log cannot be read", read)

    def seen_jti(self, iss: str, jti: str, exp: int) -> bool:
        """Record a JWT ``jti``; True when it was already recorded (a replay).

        Atomic across every worker (insert-or-ignore under the write lock); rows whose
        ``exp`` is long past are purged in the same transaction.
        """
        try:
            db = self.db()
            conn = db.conn
            with write_transaction(db):
                conn.execute(
                    "DELETE FROM jwt_seen WHERE exp < ?", [int(time.time()) - JTI_RETENTION_SECONDS]
                )
                cursor = conn.execute(
                    "INSERT OR IGNORE INTO jwt_seen (iss, jti, exp) VALUES (?, ?, ?)",
                    [iss, jti, int(exp)],
                )
                replay = cursor.rowcount == 0
        except sqlite3.Error as exc:
            raise self._unavailable(exc, "the token could not be recorded") from exc
        return replay

    def ping(self) -> None:
        """Raise :class:`LogUnavailable` unless the schema exists and a write transaction can
        be opened within ``busy_timeout`` (fails on a read-only file).  Writes nothing."""
        try:
            conn = self.db().conn
            has_meta = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
            ).fetchone()
            version = (
                conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
                if has_meta
                else None
            )
            if version is None:
                raise LogUnavailable("the database is not initialised (run init-db)")
            # BEGIN IMMEDIATE alone succeeds on a read-only WAL file: only a write statement
            # opens the write transaction that fails.  This one changes nothing.
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("DELETE FROM meta WHERE 0")
            finally:
                conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            raise self._unavailable(exc, "the database is not writable") from exc

    # -- audit reads (see referral_api/store/sqlite/queries.py for filters) ------------

    def query(
        self, filters: dict | None, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[dict], str | None]:
        """A page of records, newest first, and the next cursor (None on the last page).

        ValueError for invalid filters, limit or cursor; LogUnavailable on SQLite errors.
        """
        from referral_api.store.sqlite import queries as audit_query

        return self._read(
            "the decision log cannot be read", audit_query.query, filters, limit, cursor
        )

    def iter_records(self, filters: dict | None) -> Iterator[dict]:
        """Every matching record, oldest first; constant memory, short read per chunk.

        Filters are validated before the first record (ValueError).
        """
        from referral_api.store.sqlite import queries as audit_query

        records = audit_query.iter_records(lambda: self.db().conn, filters)
        try:
            # Validate filters now rather than at the first next() of a streamed response.
            audit_query.normalize_filters(filters)
        except ValueError:
            records.close()
            raise
        return self._guarded(records)

    def _guarded(self, records: Iterator[dict]) -> Iterator[dict]:
        try:
            yield from records
        except sqlite3.Error as exc:
            raise self._unavailable(exc, "the decision log cannot be read") from exc

    def stats(self, filters: dict | None, group_by: Sequence[str]) -> dict:
        """Counts and override rates grouped by ``group_by`` (see ``audit_query.stats``)."""
        from referral_api.store.sqlite import queries as audit_query

        return self._read("the decision log cannot be read", audit_query.stats, filters, group_by)

    def chain_heads(self) -> dict[str, int]:
        """The seq of the last record of each chain (0 when empty): one short read each.

        Raises :class:`LogUnavailable`.
        """
        try:
            conn = self.db().conn
            return {table: _chain_head(conn, table)[0] for table in _CHAINS}
        except sqlite3.Error as exc:
            raise self._unavailable(exc, "the decision log cannot be read") from exc

    # -- verification ---------------------------------------------------------------------

    def _iter_rows(self, table: str, chunk: int = VERIFY_CHUNK) -> Iterator[dict]:
        """Stream a chain in seq order; each chunk is one short read (constant memory)."""
        last = 0
        while True:
            rows = _dicts(
                self.db().conn.execute(
                    f"SELECT * FROM {table} WHERE seq > ? ORDER BY seq LIMIT ?",  # noqa: S608
                    [last, chunk],
                )
            )
            yield from rows
            if len(rows) < chunk:
                return
            last = rows[-1]["seq"]

    def _verify_chain(
        self, table: str, expect_head: str | None = None, expect_count: int | None = None
    ) -> dict:
        columns = _CHAINS[table]

        def name(row: dict) -> str | int:
            return row["decision_id"] if table == "decisions" else row["seq"]

        def bad(first_bad: str | int, seq: int, reason: str, checked: int) -> dict:
            return {
                "ok": False,
                "first_bad": first_bad,
                "first_bad_seq": seq,
                "reason": reason,
                "checked": checked,
            }

        checked = 0
        prev_hash = GENESIS_HASH
        anchor_found = expect_head is None
        for row in self._iter_rows(table):
            expected_seq = checked + 1
            if row["seq"] != expected_seq:
                return bad(
                    name(row),
                    row["seq"],
                    f"sequence gap: expected seq {expected_seq}, found {row['seq']} "
                    "(records removed)",
                    checked,
                )
            if row["prev_hash"] != prev_hash:
                return bad(
                    name(row),
                    row["seq"],
                    "prev_hash does not match the previous record's hash",
                    checked,
                )
            if set(row) != set(columns):
                return bad(name(row), row["seq"], "unexpected stored columns", checked)
            fields = {c: row[c] for c in columns if c != "hash"}
            if chain_hash(row["prev_hash"], fields) != row["hash"]:
                return bad(
                    name(row),
                    row["seq"],
                    "hash does not match the record's content (record altered)",
                    checked,
                )
            if expect_head is not None and row["hash"] == expect_head:
                if expect_count is not None and row["seq"] != expect_count:
                    return bad(
                        name(row),
                        row["seq"],
                        f"anchored head found at seq {row['seq']}, expected at {expect_count}",
                        checked,
                    )
                anchor_found = True
            if (
                expect_head is not None
                and expect_count is not None
                and row["seq"] == expect_count
                and row["hash"] != expect_head
            ):
                return bad(
                    name(row),
                    row["seq"],
                    "the record at the anchored count does not carry the anchored "
                    "head (history rewritten)",
                    checked,
                )
            prev_hash = row["hash"]
            checked += 1
        if expect_count is not None and checked < expect_count:
            return bad(
                str(checked + 1),
                checked + 1,
                f"records removed from the end: the anchor expects {expect_count}, "
                f"the chain has {checked}",
                checked,
            )
        if not anchor_found:
            return bad(
                str(checked + 1),
                checked + 1,
                "the anchored head is not in the chain (records removed or rewritten)",
                checked,
            )
        return {"ok": True, "checked": checked, "head": prev_hash}

    def verify(self, expect_head: str | None = None, expect_count: int | None = None) -> dict:
        """Walk every chain; the anchor (``expect_head``/``expect_count``) applies to decisions.

        Returns ``{"decisions": r, "feedback": r, "access_log": r}`` where each ``r`` is
        ``{"ok": True, "checked", "head"}`` or ``{"ok": False, "first_bad", "first_bad_seq",
        "reason", "checked"}``; ``first_bad`` is the decision id (decisions) or the seq.
        """
        try:
            return {
                "decisions": self._verify_chain("decisions", expect_head, expect_count),
                "feedback": self._verify_chain("feedback"),
                "access_log": self._verify_chain("access_log"),
            }
        except sqlite3.Error as exc:
            raise self._unavailable(exc, "the decision log cannot be read") from exc
