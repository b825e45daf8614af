"""`python -m lab journal copy --to URL`: move a lab's journal to another database (SQLite to PostgreSQL).

Copies the data directory's SQLite journal (or ``--from``) into ``--to``: one
transaction per table, rows already there left alone (running it twice copies
nothing twice). Prints a line per table (rows copied, rows already there) and a
JSON summary last. Stop the lab first; then point every replica at ``--to``
with ``LAB_DATABASE_URL``. Videos stay where they are: share the data directory.
Exit 0, or 2 when a journal cannot be opened (named without its password).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lab.cli.usage import EXIT_OK, fail


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("journal", help="move the journal to another database (journal copy --to URL)")
    parser.add_argument("action", choices=("copy",))
    parser.add_argument("--to", required=True, help="the journal to copy into: postgresql://user:password@host:port/db")
    parser.add_argument("--from", dest="source",
                        help="the journal to copy from (default: journal.sqlite3 in the data directory)")
    parser.add_argument("--data-dir", help="the data directory (default: $LAB_DATA_DIR or ./data)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lab.db import parse_location, redact_url
    from lab.errors import LabError
    from lab.journal_copy import copy_journal
    from lab.settings import load_settings
    from lab.store import Store, default_store_path

    try:
        data_dir = Path(args.data_dir).expanduser() if args.data_dir else load_settings().data_dir
        source_location = parse_location(args.source) if args.source else parse_location(default_store_path(data_dir))
        target_location = parse_location(args.to)
    except (LabError, ValueError) as exc:
        return fail(str(exc))
    if source_location.path is not None and not source_location.path.is_file():
        return fail(f"no journal at {source_location.path}: is --data-dir the lab's data directory?")
    if source_location.url == target_location.url:
        return fail("--to names the journal being copied")
    try:
        with Store(source_location.path or source_location.url) as source, \
                Store(target_location.path or target_location.url) as target:
            copies = copy_journal(source, target)
    except LabError as exc:
        return fail(str(exc))
    for copy in copies:
        print(f"{copy.table:<20} {copy.copied:>7} copied {copy.already_there:>7} already there")
    print(json.dumps({"ok": True, "to": redact_url(target_location.url),
                      "tables": {c.table: {"copied": c.copied, "already_there": c.already_there} for c in copies}},
                     ensure_ascii=False))
    return EXIT_OK
