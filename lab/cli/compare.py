"""`python -m lab compare ID... [--data-dir D] [--out DIR] [--with-originals] [--force]`: a standalone report.

ID is a task id or a sweep id from the journal (2 to 12 runs in all). Writes
``DIR/index.html`` (opens from file://, offline), ``DIR/media/`` (proxies;
originals too with ``--with-originals``) and ``DIR/compare.json``. The LAST
stdout line is a JSON summary. Exit 0; 1 when a run of the set has no saved
video (shown as such, the rest compared); 2 for an unknown id, a set that
cannot be compared, an existing DIR without ``--force`` or bad flags (nothing
written, a one-line error on stderr).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path
from typing import Any

from lab.cli import usage
from lab.cli.usage import EXIT_OK

EXIT_INCOMPLETE = 1  # a run of the set has no saved video: shown as such, the rest compared
NOTHING_WRITTEN = {"report": None, "cells": [], "similarity": []}
fail = functools.partial(usage.fail, **NOTHING_WRITTEN)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("compare", help="a synchronized comparison report of 2-12 runs (task or sweep ids)")
    parser.add_argument("ids", nargs="+", metavar="ID", help="task ids and/or sweep ids from the journal")
    parser.add_argument("--data-dir", help="the lab's data directory (default: $LAB_DATA_DIR or ./data)")
    parser.add_argument("--out", help="report directory to create (default: DATA_DIR/reports/compare-TIME)")
    parser.add_argument("--with-originals", action="store_true", help="also copy the original videos into the report")
    parser.add_argument("--force", action="store_true", help="replace --out if it already exists")
    parser.set_defaults(func=run)
    usage.json_usage_errors(parser, **NOTHING_WRITTEN)


def run(args: argparse.Namespace) -> int:
    from lab.compare.pipeline import compare_runs
    from lab.compare.report import write_report
    from lab.compare.set import CompareError, load_set
    from lab.datadir import DataDir
    from lab.errors import LabError
    from lab.review.view import report_review
    from lab.settings import load_settings
    from lab.store import Store, journal_location

    try:
        settings = load_settings()
    except LabError as exc:
        return fail(str(exc))
    data_dir = Path(args.data_dir).expanduser().resolve() if args.data_dir else settings.data_dir
    journal = journal_location(settings.database_url, data_dir)
    if isinstance(journal, Path) and not journal.is_file():
        return fail(f"no journal at {journal}: is --data-dir the lab's data directory?")
    out = Path(args.out).expanduser() if args.out else DataDir(data_dir).report()
    if out.exists() and not args.force:
        return fail(f"{out} already exists; choose another --out or add --force to replace it")
    try:
        with Store(journal) as store:
            try:
                checked = load_set(store, args.ids)
            except CompareError as exc:
                return fail(str(exc))
            if checked.unknown:
                return fail("unknown id(s), not a task or sweep in the journal: " + ", ".join(checked.unknown))
            print(f"comparing {len(checked.cells)} runs: making proxies and measuring similarity", file=sys.stderr)
            comparison = compare_runs(store, data_dir, args.ids)
            review, review_csv = report_review(store, comparison.compare_set.task_ids)
        report = write_report(comparison, out, with_originals=args.with_originals, force=args.force,
                              secrets=[settings.api_key], review=review, review_csv=review_csv,
                              prescreen=settings.prescreen)
    except LabError as exc:
        return fail(str(exc), code=EXIT_INCOMPLETE)
    for problem in comparison.problems + comparison.compare_set.problems:
        print(f"note: {problem}", file=sys.stderr)
    summary: dict[str, Any] = {
        "ok": comparison.complete,
        "report": str(report),
        "index": str(report / "index.html"),
        "cells": [
            {"task_id": c.task_id, "label": c.label, "status": c.status,
             "proxy": f"media/{c.task_id}.mp4" if c.task_id in comparison.proxies else None, "problem": c.problem}
            for c in comparison.compare_set.cells
        ],
        "similarity": [{"a": s.a, "b": s.b, "ssim_mean": s.ssim_mean, "ssim_min": s.ssim_min}
                       for s in comparison.similarity],
        "problems": list(dict.fromkeys([*comparison.compare_set.problems, *comparison.problems])),
    }
    print(json.dumps(summary, ensure_ascii=False))
    return EXIT_OK if comparison.complete else EXIT_INCOMPLETE
