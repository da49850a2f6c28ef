"""Chain verification over rows streamed in ``seq`` order (the same report as SQLite's)."""

from __future__ import annotations

from collections.abc import Iterable

from referral_api.store.canonical import GENESIS_HASH, chain_hash
from referral_api.store.records import ACCESS_COLUMNS, DECISION_COLUMNS, FEEDBACK_COLUMNS

_CHAINS = {
    "decisions": DECISION_COLUMNS,
    "feedback": FEEDBACK_COLUMNS,
    "access_log": ACCESS_COLUMNS,
}


def verify_chain(
    table: str,
    rows: Iterable[dict],
    expect_head: str | None = None,
    expect_count: int | None = None,
) -> dict:
    """``{"ok": True, "checked", "head"}`` or ``{"ok": False, "first_bad", "first_bad_seq",
    "reason", "checked"}`` for one chain; the anchor applies when given."""
    columns = _CHAINS[table]

    def name(row: dict) -> str | int:
        return row["decision_id"] if table == "decisions" else row["seq"]

    def bad(first_bad: str | int, seq: int, reason: str, checked: int) -> dict:
        return {"ok": False, "first_bad": first_bad, "first_bad_seq": seq, "reason": reason,
                "checked": checked}

    checked = 0
    prev_hash = GENESIS_HASH
    anchor_found = expect_head is None
    for row in rows:
        expected_seq = checked + 1
        if row["seq"] != expected_seq:
            return bad(name(row), row["seq"],
                       f"sequence gap: expected seq {expected_seq}, found {row['seq']} "
                       "(records removed)", checked)
        if row["prev_hash"] != prev_hash:
            return bad(name(row), row["seq"],
                       "prev_hash does not match the previous record's hash", checked)
        if set(row) != set(columns):
            return bad(name(row), row["seq"], "unexpected stored columns", checked)
        fields = {c: row[c] for c in columns if c != "hash"}
        if chain_hash(row["prev_hash"], fields) != row["hash"]:
            return bad(name(row), row["seq"],
                       "hash does not match the record's content (record altered)", checked)
        if expect_head is not None and row["hash"] == expect_head:
            if expect_count is not None and row["seq"] != expect_count:
                return bad(name(row), row["seq"],
                           f"anchored head found at seq {row['seq']}, expected at "
                           f"{expect_count}", checked)
            anchor_found = True
        if (expect_head is not None and expect_count is not None
                and row["seq"] == expect_count and row["hash"] != expect_head):
            return bad(name(row), row["seq"],
                       "the record at the anchored count does not carry the anchored "
                       "head (history rewritten)", checked)
        prev_hash = row["hash"]
        checked += 1
    if expect_count is not None and checked < expect_count:
        return bad(str(checked + 1), checked + 1,
                   f"records removed from the end: the anchor expects {expect_count}, "
                   f"the chain has {checked}", checked)
    if not anchor_found:
        return bad(str(checked + 1), checked + 1,
                   "the anchored head is not in the chain (records removed or rewritten)",
                   checked)
    return {"ok": True, "checked": checked, "head": prev_hash}
