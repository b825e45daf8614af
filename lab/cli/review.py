"""`python -m lab review import FILE...` and `python -m lab review export --csv [ID...] [--out FILE]`.

``import`` takes review files exported from a report (``review-<report id>-<name>.json``,
``docs/review-format.md``): each file is checked whole and written in one
transaction, or refused with a message naming its first bad item and nothing of
it written. Importing a file again adds nothing. The last stdout line is JSON
``{ok, files: [{file, ok, error | comments_added, events_added, ...}]}``; exit 0,
or 2 when a file was refused (the others are still imported) or the flags are bad.

``export --csv`` writes one row per comment (take, prompt, seed, status, time
codes ``HH:MM:SS.fff``, author, text), one row for a take with none; ID is a task
or sweep id (default: every take with a review). Without ``--out`` the CSV goes
to stdout and the summary to stderr; with it, the JSON summary is the last stdout line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lab.cli.usage import EXIT_INVALID, EXIT_OK, fail


def register(subparsers: argparse._SubParsersAction) -> None:
    from lab.cli.usage import json_usage_errors

    parser = subparsers.add_parser("review", help="import review files from a report; export the reviews as CSV")
    actions = parser.add_subparsers(dest="action", required=True)
    imp = actions.add_parser("import", help="merge review files (review-*.json) into the journal")
    imp.add_argument("files", nargs="+", metavar="FILE")
    imp.add_argument("--data-dir", help="the data directory (default: $LAB_DATA_DIR or ./data)")
    imp.set_defaults(func=run_import)
    exp = actions.add_parser("export", help="the reviews as CSV (for people who do not open the lab)")
    exp.add_argument("ids", nargs="*", metavar="ID", help="task or sweep ids (default: every reviewed take)")
    exp.add_argument("--csv", action="store_true", required=True, help="CSV (the one format so far)")
    exp.add_argument("--out", help="write the CSV to this file instead of stdout")
    exp.add_argument("--data-dir", help="the data directory (default: $LAB_DATA_DIR or ./data)")
    exp.set_defaults(func=run_export)
    for p in (parser, imp, exp):
        json_usage_errors(p)


def _store(args: argparse.Namespace):
    from lab.settings import load_settings
    from lab.store import Store, journal_location

    settings = load_settings()
    data_dir = Path(args.data_dir).expanduser() if args.data_dir else settings.data_dir
    return Store(journal_location(settings.database_url, data_dir))


def run_import(args: argparse.Namespace) -> int:
    from lab.errors import LabError
    from lab.review.journal import ReviewJournal

    results = []
    try:
        with _store(args) as store:
            journal = ReviewJournal(store)
            for name in args.files:
                try:
                    data = Path(name).expanduser().read_bytes()
                except OSError as exc:
                    results.append({"file": name, "ok": False, "error": f"cannot read it: {exc.strerror or exc}"})
                    continue
                try:
                    done = journal.import_text(data, session=None)
                except LabError as exc:
                    results.append({"file": name, "ok": False, "error": str(exc)})
                    continue
                results.append({"file": name, "ok": True, **done.to_json(), "message": done.message()})
    except LabError as exc:
        return fail(str(exc))
    for result in results:
        said = result["message"] if result["ok"] else f"refused, nothing written: {result['error']}"
        print(f"{result['file']}: {said}", file=sys.stderr)
    ok = all(r["ok"] for r in results)
    print(json.dumps({"ok": ok, "files": results}, ensure_ascii=False))
    return EXIT_OK if ok else EXIT_INVALID


def run_export(args: argparse.Namespace) -> int:
    from lab.errors import LabError
    from lab.review.journal import export_csv, reviewed_task_ids

    try:
        with _store(args) as store:
            if args.ids:
                ids: list[str] = []
                for ident in args.ids:
                    sweep = store.list_sweep(ident) if ident.startswith("sweep") else []
                    if sweep:
                        ids.extend(r.task_id for r in sweep)
                    elif store.get(ident) is not None:
                        ids.append(ident)
                    else:
                        return fail(f"no run or sweep {ident!r} in the journal")
            else:
                ids = reviewed_task_ids(store)
            text = export_csv(store, ids)
    except LabError as exc:
        return fail(str(exc))
    summary = {"ok": True, "takes": len(ids), "rows": max(0, text.count("\r\n") - 1), "out": args.out}
    if args.out:
        try:
            Path(args.out).expanduser().write_text(text, encoding="utf-8", newline="")
        except OSError as exc:
            return fail(f"cannot write {args.out}: {exc.strerror or exc}")
        print(json.dumps(summary, ensure_ascii=False))
    else:
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except BrokenPipeError:  # `| head`: end quietly
            return EXIT_OK
        print(json.dumps(summary, ensure_ascii=False), file=sys.stderr)
    return EXIT_OK
