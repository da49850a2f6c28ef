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
import hashlib
import shutil
import sqlite3
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils

from referral_api.config import READY_MIN_FREE_BYTES
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
from referral_api.store.query_args import MAX_SEQ, normalize_filters
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
from referral_api.store.sqlite import queries
from referral_api.store.sqlite.db import (
    DEFAULT_BUSY_TIMEOUT_MS,
    LazyDatabase,
    time_limit,
    write_transaction,
)
from referral_api.store.sqlite.writer import ProcessLock, lock_path_for
from referral_api.store.timestamps import utc_now, utc_timestamp

__all__ = ["SQLiteDecisionLog", "utc_now"]

T = TypeVar("T")

_CHAINS = {
    "decisions": DECISION_COLUMNS,
    "feedback": FEEDBACK_COLUMNS,
    "access_log": ACCESS_COLUMNS,
}


def _dicts(cursor: sqlite3.Cursor) -> list[dict]:
    keys = [d[0] for d in cursor.description]
    return [dict(zip(keys, row, strict=True)) for row in cursor.fetchall()]


def _one(cursor: sqlite3.Cursor) -> dict | None:
    rows = _dicts(cursor)
    return rows[0] if rows else None


def _json_or_none(value: Any) -> str | None:
    return None if value is None else canonical_json(value).decode("utf-8")


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


#: The insert of one decision row (columns in table order).
_INSERT_DECISION = (
    f"INSERT INTO decisions ({', '.join(DECISION_COLUMNS)}) "  # noqa: S608 - module constants
    f"VALUES ({', '.join('?' for _ in DECISION_COLUMNS)})"
)
#: The hashed text of a decision is canonical JSON: keys sorted. The three columns that
#: depend on the chain head go before these keys (``created_at`` < ``decision_id``,
#: ``prev_hash`` < ``region``, ``seq`` < ``urgency``), so the text of every other column is
#: made before the write lock and the head's fields are spliced in under it.
_HEAD_SPLITS = (b',"decision_id":', b',"region":', b',"urgency":')


def _split_hashed_text(fields: dict) -> tuple[bytes, bytes, bytes, bytes]:
    """``canonical_json(fields)`` cut where ``created_at``, ``prev_hash`` and ``seq`` go.

    ``fields`` is flat (scalars only), so a key's quote is the only unescaped ``"`` preceded
    by a comma: each marker occurs exactly once, at its key.
    """
    text = canonical_json(fields)
    cuts = [text.index(marker) for marker in _HEAD_SPLITS]
    return text[: cuts[0]], text[cuts[0]: cuts[1]], text[cuts[1]: cuts[2]], text[cuts[2]:]


@dataclass(slots=True)
class _Prepared:
    """A decision ready to be chained: its row without the head's fields, and their text."""

    new: NewDecision
    fields: dict
    hashed_parts: tuple[bytes, bytes, bytes, bytes]
    #: The decision's time, taken before the lock, and its ``utc_timestamp``.
    at: dt.datetime
    now: str


class SQLiteDecisionLog:
    """:class:`~referral_api.store.interface.DecisionLog` on one SQLite file, one lazily opened
    connection per thread.

    ``query_timeout_ms`` bounds every audit read (:class:`QueryTimeout`); ``clock`` gives the
    times recorded in the chains (tests pass a fake one instead of sleeping).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        query_timeout_ms: int = DEFAULT_QUERY_TIMEOUT_MS,
        clock: Callable[[], dt.datetime] = utc_now,
        write_lock_path: str | Path | None = None,
        use_write_lock: bool = True,
    ) -> None:
        self.path = Path(path)
        self.connections = LazyDatabase(self.path, busy_timeout_ms=busy_timeout_ms)
        self.query_timeout_ms = query_timeout_ms
        self.clock = clock
        # Decision appends of every process and thread queue on this lock (see .writer);
        # ``write_lock_path`` defaults to ``<db>.write-lock``.
        self._write_lock = ProcessLock(
            (write_lock_path or lock_path_for(self.path)) if use_write_lock else None)

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
        """Close this thread's connection and this process's write-lock descriptor."""
        self.connections.close()
        self._write_lock.close()

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
        The decision write lock (:mod:`.writer`) is held around the write transaction only:
        everything that does not depend on the chain head (identifiers, canonical JSON of
        input and output, the hashed text around the head's fields) is prepared before it,
        and the records returned are built after it.
        """
        if not news:
            return []
        prepared = [self._prepare(new) for new in news]
        try:
            db = self.db()
            conn = db.conn
            with self._write_lock.held(), write_transaction(db):
                outcomes = self._append_in_tx(conn, prepared)
        except IdempotencyConflict:
            raise
        except sqlite3.Error as exc:
            raise self._unavailable(exc, "the decision could not be recorded") from exc
        return [
            (decision_record(found, parsed=(p.new.input, p.new.output)), True)
            if created else (found, False)
            for p, (found, created) in zip(prepared, outcomes, strict=True)
        ]

    def _prepare(self, new: NewDecision) -> _Prepared:
        """Everything of a decision's row that does not depend on the chain head."""
        if new.channel not in CHANNELS:
            raise ValueError(f"channel must be one of {CHANNELS}")
        if new.idempotency_key is not None and not new.body_sha256:
            raise ValueError("an idempotency key needs body_sha256")
        output = new.output
        fields = {
            "channel": new.channel,
            "client": new.client,
            "decision_id": str(uuid.uuid4()),
            "engine_version": new.engine_version,
            "hook_instance": new.hook_instance,
            "input_json": canonical_json(new.input).decode("utf-8"),
            # Rounded so the stored REAL and the hashed JSON number are the same.
            "latency_ms": round(float(new.latency_ms), 3),
            "order_ref": new.order_ref,
            "ordering_clinician": new.ordering_clinician,
            "output_json": canonical_json(output).decode("utf-8"),
            "patient_hash": new.patient_hash,
            "region": output.get("region", new.input.get("region")),
            "ruleset_sha256": new.ruleset_sha256,
            "ruleset_version": new.ruleset_version,
            "scenario": scenario_id(output),
            "urgency": output.get("urgency"),
            "appropriateness": output.get("appropriateness"),
        }
        at = self.clock()
        return _Prepared(new, fields, _split_hashed_text(fields), at, utc_timestamp(at))

    def _append_in_tx(
        self, conn: sqlite3.Connection, prepared: Sequence[_Prepared]
    ) -> list[tuple[dict, bool]]:
        """Inside the write lock: read the head, hash, insert. Returns ``(row, True)`` per new
        decision and ``(record, False)`` per repeat."""
        head = conn.execute(
            "SELECT seq, hash, created_at FROM decisions ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        seq, prev_hash, last_created = head if head else (0, GENESIS_HASH, "")
        # created_at never goes backwards along the chain (clock steps), so time ranges map
        # to seq ranges and "newest first" by seq is also newest first by time. One time for
        # the whole transaction: the latest of the batch's, taken before the lock.
        created_at = max(max(p.now for p in prepared), last_created)
        if any(p.new.idempotency_key is not None for p in prepared):
            # Expired keys are purged only when keys are in play: the check below then never
            # sees a key older than 24 h, and plain decisions pay nothing for the feature.
            now = max(p.at for p in prepared)
            cutoff = utc_timestamp(now - dt.timedelta(hours=IDEMPOTENCY_HOURS))
            conn.execute("DELETE FROM idempotency WHERE created_at < ?", [cutoff])
        created_json = canonical_json(created_at)
        outcomes: list[tuple[dict, bool]] = []
        for p in prepared:
            new = p.new
            existing = self._existing_in_tx(conn, new)
            if existing is not None:
                outcomes.append((existing, False))
                continue
            seq += 1
            before, middle, after, tail = p.hashed_parts
            digest = hashlib.sha256(prev_hash.encode("ascii"))
            digest.update(before + b',"created_at":' + created_json + middle
                          + b',"prev_hash":' + canonical_json(prev_hash) + after
                          + b',"seq":' + str(seq).encode("ascii") + tail)
            row = {**p.fields, "seq": seq, "created_at": created_at, "prev_hash": prev_hash,
                   "hash": digest.hexdigest()}
            conn.execute(_INSERT_DECISION, [row[c] for c in DECISION_COLUMNS])
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
            outcomes.append((row, True))
        return outcomes

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

    def _audit(self, fn: Callable[..., T], *args: Any) -> T:
        """Run the read ``fn(conn, *args)`` under the time limit; map SQLite errors."""
        try:
            conn = self.db().conn
            with time_limit(conn, self.query_timeout_ms) as limit:
                try:
                    return fn(conn, *args)
                except sqlite3.Error:
                    if not limit.tripped:
                        raise
                    # Stopped by the limit, not broken: keep the connection, end the snapshot.
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise QueryTimeout(self.query_timeout_ms) from None
        except sqlite3.Error as exc:
            raise self._unavailable(exc, "the decision log cannot be read") from exc

    def get(self, decision_id: str) -> dict | None:
        """The full record (feedback oldest first, chain), or None."""
        return self._audit(self._get, decision_id)

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

        return self._audit(find)

    def head(self) -> dict:
        """The anchor an auditor saves: ``{"count": n, "head": hash}`` of the decision chain."""

        def read(conn: sqlite3.Connection) -> dict:
            count, head = _chain_head(conn, "decisions")
            return {"count": count, "head": head}

        return self._audit(read)

    # -- feedback -----------------------------------------------------------------------

    def append_feedback(self, decision_id: str, feedback: NewFeedback, client: str) -> dict:
        """Append feedback to a decision; return the stored entry.

        :class:`UnknownDecision` for an unknown decision, ValueError for a bad outcome,
        LogUnavailable when it cannot be committed.
        """
        if feedback.outcome not in FEEDBACK_OUTCOMES:
            raise ValueError(f"outcome must be one of {FEEDBACK_OUTCOMES}")
        try:
            db = self.db()
            conn = db.conn
            with write_transaction(db):
                known = conn.execute(
                    "SELECT seq, created_at FROM decisions WHERE decision_id = ?", [decision_id]
                ).fetchone()
                if known is None:
                    raise UnknownDecision(decision_id)
                seq, prev_hash = _chain_head(conn, "feedback")
                row = _chain_row(
                    {
                        "seq": seq + 1,
                        "decision_id": decision_id,
                        "outcome": feedback.outcome,
                        "override_reason_json": _json_or_none(feedback.override_reason),
                        "accepted_suggestions_json": _json_or_none(feedback.accepted_suggestions),
                        "outcome_timestamp": feedback.outcome_timestamp,
                        "received_at": utc_timestamp(self.clock()),
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
                    [known[0], known[1], feedback.outcome],
                )
        except sqlite3.Error as exc:
            raise self._unavailable(exc, "the feedback could not be recorded") from exc
        return feedback_item(row)

    # -- access log, JWT replay, readiness ----------------------------------------------

    def record_access(self, actor: str, action: str, target: Mapping[str, Any]) -> None:
        """Append who read what (``target``: ids or the query) to the access-log chain."""
        try:
            db = self.db()
            conn = db.conn
            with write_transaction(db):
                seq, prev_hash = _chain_head(conn, "access_log")
                row = _chain_row(
                    {
                        "seq": seq + 1,
                        "at": utc_timestamp(self.clock()),
                        "actor": actor,
                        "action": action,
                        "target_json": canonical_json(dict(target)).decode("utf-8"),
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
                    [before_seq if before_seq is not None else MAX_SEQ, limit],
                )
            )
            return [access_entry(r) for r in rows]

        return self._audit(read)

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
                    "DELETE FROM jwt_seen WHERE exp < ?",
                    [int(self.clock().timestamp()) - JTI_RETENTION_SECONDS],
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

    def health(self) -> StoreHealth:
        """``database``: writable | unavailable (:meth:`ping`); ``disk``: ok | full |
        unavailable (free space next to the file, at least ``READY_MIN_FREE_BYTES``)."""
        checks: dict[str, str] = {}
        try:
            self.ping()
            checks["database"] = "writable"
        except LogUnavailable:
            checks["database"] = "unavailable"
        try:
            free = shutil.disk_usage(self.path.parent).free
            checks["disk"] = "ok" if free >= READY_MIN_FREE_BYTES else "full"
        except OSError:
            checks["disk"] = "unavailable"
        ready = checks["database"] == "writable" and checks["disk"] == "ok"
        return StoreHealth(ready=ready, checks=checks)

    # -- audit reads (see referral_api/store/sqlite/queries.py) ----------------------------

    def query(
        self, filters: Mapping[str, Any] | None, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[dict], str | None]:
        """A page of records, newest first, and the next cursor (None on the last page).

        ValueError for invalid filters, limit or cursor; LogUnavailable on SQLite errors,
        QueryTimeout past the time limit.
        """
        return self._audit(queries.query, filters, limit, cursor)

    def iter_records(self, filters: Mapping[str, Any] | None) -> Iterator[dict]:
        """Every matching record, oldest first; constant memory, one short read per chunk
        (each under the time limit).

        Filters are validated before the first record (ValueError).
        """
        # Validate filters now rather than at the first next() of a streamed response.
        normalize_filters(filters)
        return queries.iter_records(lambda chunk: self._audit(chunk), filters)

    def stats(self, filters: Mapping[str, Any] | None, group_by: Sequence[str]) -> dict:
        """Counts and override rates grouped by ``group_by`` (see ``queries.stats``)."""
        return self._audit(queries.stats, filters, group_by)

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
