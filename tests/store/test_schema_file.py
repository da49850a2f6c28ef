"""db/schema.sql is the schema the migrations build: reviewers read it, this keeps it true."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from referral_api.config import PROJECT_ROOT

SCHEMA_FILE = PROJECT_ROOT / "db" / "schema.sql"


def dump_schema(path: Path) -> str:
    """The schema of a database as SQL, in a stable order (tables, then their indexes …)."""
    conn = sqlite3.connect(str(path))
    rows = conn.execute(
        "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' "
        "ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1 ELSE 2 END, tbl_name, name"
    ).fetchall()
    conn.close()
    header = ("-- The decision database schema, as `referral-api init-db` builds it from\n"
              "-- referral_api/store/sqlite/migrations.py. Generated: do not edit (tests/store/"
              "test_schema_file.py;\n-- regenerate with `python -m tests.store."
              "test_schema_file`).\n\n")
    return header + "".join(f"{sql};\n\n" for (sql,) in rows)


def test_schema_file_matches_the_migrations(db_path: Path) -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == dump_schema(db_path), (
        "db/schema.sql is out of date: run `python -m tests.store.test_schema_file`")


if __name__ == "__main__":
    import tempfile

    from referral_api.store.sqlite.db import connect
    from referral_api.store.sqlite.migrations import migrate

    with tempfile.TemporaryDirectory() as tmp:
        database = Path(tmp) / "schema.sqlite"
        db = connect(database)
        migrate(db)
        db.close()
        SCHEMA_FILE.write_text(dump_schema(database), encoding="utf-8")
    print(f"wrote {SCHEMA_FILE}")
