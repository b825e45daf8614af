"""Copy a journal into another (a lab that started on one machine's SQLite moving to a team's PostgreSQL).

Both journals are opened as ``Store`` first, so both are migrated to the same
numbered schema. Each table is copied in one transaction of the target, row by
row with ``ON CONFLICT DO NOTHING``: a row whose key is already there is left as
it is, so copying twice (or after the target has run) adds nothing twice. Rows
keep the source's order (SQLite's rowid becomes PostgreSQL's ``lab_rowid``).
Not copied: ``_migrations`` (each journal keeps its own) and money held by
processes that are running now (``spend_reservations``: a reservation belongs to
a live process of the source's machine, and the copy is made with the lab stopped).
"""

from __future__ import annotations

from dataclasses import dataclass

from lab.store import Store

NOT_COPIED = ("_migrations", "spend_reservations")


@dataclass(frozen=True)
class TableCopy:
    table: str
    source_rows: int
    copied: int  # rows new to the target

    @property
    def already_there(self) -> int:
        return self.source_rows - self.copied


def copy_journal(source: Store, target: Store) -> list[TableCopy]:
    """Copy every journal table of ``source`` into ``target``; one transaction per table."""
    source_db, target_db = source.database, target.database
    target_tables = set(target_db.tables())
    copies = []
    for table in source_db.tables():
        if table in NOT_COPIED or table not in target_tables:
            continue
        wanted = set(target_db.columns(table))
        columns = [column for column in source_db.columns(table) if column in wanted]
        rows = source_db.execute(f"SELECT rowid AS source_rowid, {', '.join(columns)} FROM {table} ORDER BY rowid")
        # On PostgreSQL the source's order becomes lab_rowid; a SQLite target numbers its own rows.
        keep_order = target_db.dialect == "postgresql" and source_db.dialect == "sqlite"
        names = (["rowid"] if keep_order else []) + columns
        insert = (f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)}) "
                  "ON CONFLICT DO NOTHING")
        copied = 0
        with target_db.immediate() as db:
            for row in rows:
                values = list(row) if keep_order else list(row)[1:]
                copied += max(0, db.execute(insert, values).rowcount)
            if keep_order:
                db.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'lab_rowid'), "
                           f"GREATEST((SELECT MAX(rowid) FROM {table}), 1))")
        copies.append(TableCopy(table, len(rows), copied))
    return copies
