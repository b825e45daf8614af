"""`python -m lab history [-q WORDS] [--status S] [--review-status R] [--limit N]` and `history show ID`.

The journal, queried. ``show`` of a task includes its review (current status,
status history, comments).

Like ``llm logs``: the list prints one line per run (newest first) and, for
each submit whose outcome is unknown, a warning; ``show`` prints one run (a
task id) or one submit (a ``req_`` request id) as JSON. The last stdout line is
always JSON: ``{ok, tasks: [...], unknown_outcome: [...]}`` for the list, the
record for ``show``. Exit 0, or 2 when the id is unknown. Nothing here sends a
request.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

EXIT_OK, EXIT_INVALID = 0, 2


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("history", help="list, search (full text over prompts) and show journalled runs")
    parser.add_argument("action", nargs="?", choices=("list", "show"), default="list")
    parser.add_argument("id", nargs="?", help="with show: a task id, or a request id (req_...) of a submit")
    parser.add_argument("-q", "--query", help="only runs whose prompt has all these words, any order "
                        "(a word also matches the start of a longer one; the History tab's search)")
    parser.add_argument("--status", help="only runs with this journal status (saved, failed, completed, ...)")
    parser.add_argument("--review-status", choices=("needs_review", "approved", "changes_requested", "rejected"),
                        help="only takes whose current review status is this one (needs_review: nobody set one)")
    parser.add_argument("--limit", type=int, default=20, help="at most this many runs (default 20)")
    parser.add_argument("--data-dir", help="the data directory (default: $LAB_DATA_DIR or ./data)")
    parser.set_defaults(func=run)


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    print(json.dumps({"ok": False, "error": message}, ensure_ascii=False))
    return EXIT_INVALID


def _line(record, review_status: str | None = None) -> str:
    when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(record.created_at))
    cost = f"${record.cost_usd:.2f}" if record.cost_usd is not None else "-"
    prompt = " ".join((record.prompt or "").split())
    review = review_status or "needs_review"
    return f"{when}  {record.task_id}  {record.status:<11} {review:<17} {cost:>6}  {prompt[:60]}"


def run(args: argparse.Namespace) -> int:
    from lab.errors import LabError
    from lab.settings import load_settings
    from lab.review.journal import ReviewJournal
    from lab.store import Store, journal_location

    if not 1 <= args.limit <= 10_000:
        return _fail("--limit must be between 1 and 10000")
    try:
        settings = load_settings()
        data_dir = Path(args.data_dir).expanduser() if args.data_dir else settings.data_dir
        with Store(journal_location(settings.database_url, data_dir)) as store:
            if args.action == "show":
                if not args.id:
                    return _fail("history show needs a task id or a request id")
                found = store.intent(args.id) if args.id.startswith("req_") else store.get(args.id)
                if found is None:
                    return _fail(f"no run or request {args.id!r} in the journal")
                shown = found.to_json()
                if not args.id.startswith("req_"):
                    # The take's review: current status, every status change, every comment (by time).
                    shown["review"] = ReviewJournal(store).takes([args.id])[args.id].to_json()
                print(json.dumps(shown, ensure_ascii=False))
                return EXIT_OK
            records = store.search(args.query, status=args.status, review_status=args.review_status,
                                   limit=args.limit)
            statuses = ReviewJournal(store).statuses(r.task_id for r in records)
            unknown = store.unresolved_intents(include_in_flight=False)
    except LabError as exc:
        return _fail(str(exc))
    for record in records:
        print(_line(record, statuses.get(record.task_id)))
    for intent in unknown:
        print(f"attention: request {intent.request_id}: {intent.to_json()['outcome']}", file=sys.stderr)
    print(json.dumps({
        "ok": True,
        "tasks": [{"task_id": r.task_id, "status": r.status, "prompt": r.prompt, "created_at": r.created_at,
                   "cost_usd": r.cost_usd, "video": r.video_path, "sweep_id": r.sweep_id,
                   "review_status": statuses.get(r.task_id, "needs_review")} for r in records],
        "unknown_outcome": [{"request_id": i.request_id, "sent_at": i.created_at, "prompt": i.prompt,
                             "outcome": i.to_json()["outcome"]} for i in unknown],
    }, ensure_ascii=False))
    return EXIT_OK
