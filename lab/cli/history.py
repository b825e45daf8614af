"""`python -m lab history [-q WORDS] [--status S] [--review-status R] [--no-issues] [--limit N] [--json]`
and `history show ID`.

The journal, queried, like ``llm logs`` and with Unix manners: stdout carries
the data in one format, a table (a header, then one line per run, newest first,
with its sweep id, which ``compare`` takes, and its review status) or, with
``--json``, one JSON object per run per line (``history --json | jq``). Messages
go to stderr: how many runs were shown, and a warning for each submit whose
outcome is unknown. ``show`` prints one run (a task id, with its review: current
status, status history, comments) or one submit (a ``req_`` request id) as one
JSON object. Exit 0, or 2 for an unknown id or bad flags (``error: ...`` on
stderr; ``show`` and ``--json`` also print ``{"ok": false, "error": ...}`` on
stdout). Nothing here sends a request.

Each run's pre-screen is its last table column (its badges, "no issues found",
"pending", or "not screened (pre-screen off)" when LAB_PRESCREEN is off and none is
coming; ``screen`` and ``badges`` in JSON); ``--no-issues`` lists only takes whose
pre-screen ran and found nothing (a take never screened is left out). ``show`` of a task also prints its ``screen`` and its
``lineage`` (``parents`` nearest first, ``changed_from_parent``, ``children``), and
names its parent and children on stderr.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from lab.cli.usage import EXIT_INVALID, EXIT_OK, fail, json_line, json_usage_errors

COLUMNS = ("created (UTC)", "task", "sweep", "status", "review", "cost", "pre-screen", "prompt")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("history", help="list, search (full text over prompts) and show journalled runs")
    parser.add_argument("action", nargs="?", choices=("list", "show"), default="list")
    parser.add_argument("id", nargs="?", help="with show: a task id, or a request id (req_...) of a submit")
    parser.add_argument("-q", "--query", help="only runs whose prompt has all these words, any order "
                        "(a word also matches the start of a longer one; the History tab's search)")
    parser.add_argument("--status", help="only runs with this journal status (saved, failed, completed, ...)")
    parser.add_argument("--review-status", choices=("needs_review", "approved", "changes_requested", "rejected"),
                        help="only takes whose current review status is this one (needs_review: nobody set one)")
    parser.add_argument("--no-issues", action="store_true",
                        help="only takes whose pre-screen found nothing (no frozen, black, silent, cut or flicker)")
    parser.add_argument("--limit", type=int, default=20, help="at most this many runs (default 20)")
    parser.add_argument("--json", action="store_true", help="one JSON object per run per line instead of the table")
    parser.add_argument("--data-dir", help="the data directory (default: $LAB_DATA_DIR or ./data)")
    parser.set_defaults(func=run)
    json_usage_errors(parser)


def _row(record, review: str, screen: str) -> tuple[str, ...]:
    when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(record.created_at))
    cost = f"${record.cost_usd:.2f}" if record.cost_usd is not None else "-"
    prompt = " ".join((record.prompt or "").split())
    return when, record.task_id, record.sweep_id or "-", record.status, review, cost, screen or "-", prompt[:60]


def _table(records, reviews: dict[str, str], screens: dict[str, str]) -> list[str]:
    """The header and one line per run, each column as wide as its widest cell (the prompt last, unpadded)."""
    rows = [COLUMNS, *(_row(r, reviews[r.task_id], screens[r.task_id]) for r in records)]
    widths = [max(len(row[n]) for row in rows) for n in range(len(COLUMNS) - 1)]
    return ["  ".join([*(cell.ljust(width) for cell, width in zip(row, widths)), row[-1]]).rstrip() for row in rows]


def _run_json(record, review: str, screen: str, found: dict | None) -> dict:
    return {"task_id": record.task_id, "sweep_id": record.sweep_id, "status": record.status,
            "review_status": review, "created_at": record.created_at, "cost_usd": record.cost_usd,
            "prompt": record.prompt, "video": record.video_path, "screen": screen or None,
            "badges": [b.get("text") for b in (found or {}).get("badges") or []],
            "parent_task_id": record.parent_task_id}


def _lineage(store, record) -> dict:
    """Where a run came from (nearest first) and the runs started from it."""
    return {
        "parents": [{"task_id": r.task_id, "status": r.status, "seed": r.seed} for r in store.lineage(record.task_id)],
        "changed_from_parent": list(record.parent_changes or []),
        "children": [{"task_id": r.task_id, "status": r.status, "seed": r.seed, "changes": list(r.parent_changes or [])}
                     for r in store.children(record.task_id)],
    }


def run(args: argparse.Namespace) -> int:
    from lab.errors import LabError
    from lab.lineage import describe_changes
    from lab.presentation import screen_summary
    from lab.review.journal import ReviewJournal
    from lab.settings import load_settings
    from lab.store import Store, journal_location

    def refuse(message: str) -> int:
        # The table's readers get the message on stderr only; JSON readers also get it in their format.
        if args.json or args.action == "show":
            return fail(message)
        print(f"error: {message}", file=sys.stderr)
        return EXIT_INVALID

    if not 1 <= args.limit <= 10_000:
        return refuse("--limit must be between 1 and 10000")
    try:
        settings = load_settings()
        data_dir = Path(args.data_dir).expanduser() if args.data_dir else settings.data_dir
        with Store(journal_location(settings.database_url, data_dir)) as store:
            if args.action == "show":
                if not args.id:
                    return refuse("history show needs a task id or a request id")
                found = store.intent(args.id) if args.id.startswith("req_") else store.get(args.id)
                if found is None:
                    return refuse(f"no run or request {args.id!r} in the journal")
                shown = found.to_json()
                if not args.id.startswith("req_"):
                    # The take's review: current status, every status change, every comment (by time).
                    shown["review"] = ReviewJournal(store).takes([args.id])[args.id].to_json()
                    shown["screen"] = store.screens([args.id]).get(args.id)
                    shown["lineage"] = _lineage(store, found)
                    for parent in shown["lineage"]["parents"][:1]:
                        print(f"from {parent['task_id']} ({describe_changes(found.parent_changes)})", file=sys.stderr)
                    for child in shown["lineage"]["children"]:
                        print(f"started from it: {child['task_id']} ({describe_changes(child['changes'])})",
                              file=sys.stderr)
                print(json_line(shown))
                return EXIT_OK
            records = store.search(args.query, status=args.status, review_status=args.review_status,
                                   limit=args.limit, no_issues=args.no_issues)
            found_screens = store.screens(r.task_id for r in records)
            screens = {r.task_id: screen_summary(r, found_screens.get(r.task_id), prescreen=settings.prescreen)
                       for r in records}
            statuses = ReviewJournal(store).statuses(r.task_id for r in records)
            reviews = {r.task_id: statuses.get(r.task_id) or "needs_review" for r in records}
            unknown = store.unresolved_intents(include_in_flight=False)
    except LabError as exc:
        return refuse(str(exc))
    if args.json:
        for record in records:
            print(json_line(_run_json(record, reviews[record.task_id], screens[record.task_id],
                                      found_screens.get(record.task_id))))
    elif records:
        print("\n".join(_table(records, reviews, screens)))
    for intent in unknown:
        print(f"attention: request {intent.request_id}: {intent.to_json()['outcome']}", file=sys.stderr)
    more = " (--limit for more)" if len(records) == args.limit else ""
    print(f"{len(records)} run{'s' if len(records) != 1 else ''}, newest first{more}", file=sys.stderr)
    return EXIT_OK
