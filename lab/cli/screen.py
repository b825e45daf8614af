"""`python -m lab screen FILE|TASK [--data-dir D]`: pre-screen a video for frozen, black, silent, cut and flickering stretches.

FILE is any video ffmpeg reads: it is screened and nothing is written. TASK is
a task id from the journal: its saved video is screened, the result journalled
(History and Compare show it) and the grid's proxy written if it has none. The
last stdout line is JSON: the screen (``badges``, ``issues``: 0 when nothing
was found, the stretches in seconds, ``flicker`` per second); the badges also
go to stderr, one per line. Exit 0 when the take was screened (whatever it
found); 2 with ``{"ok": false, "error": ...}`` for a file that is not a video,
an unknown task, or bad flags.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lab.cli.usage import EXIT_OK, fail


def register(subparsers: argparse._SubParsersAction) -> None:
    from lab.cli.usage import json_usage_errors

    parser = subparsers.add_parser("screen", help="pre-screen a video (a file or a journalled task) for visible faults")
    parser.add_argument("target", metavar="FILE|TASK", help="a video file, or a task id from the journal")
    parser.add_argument("--data-dir", help="with a task id: the lab's data directory (default: $LAB_DATA_DIR or ./data)")
    parser.set_defaults(func=run)
    json_usage_errors(parser)


def _show(result: dict, **extra) -> int:
    if not result.get("ok"):
        return fail(f"could not screen: {result.get('error')}", **extra)
    for badge in result["badges"]:
        at = "" if badge["at"] is None else f"  (at {badge['at']:.2f} s)"
        print(f"{badge['text']}{at}", file=sys.stderr)
    if not result["badges"]:
        print("no issues found", file=sys.stderr)
    print(json.dumps({**result, **extra}, ensure_ascii=False))
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    from lab.errors import LabError
    from lab.prescreen.run import screen_file
    from lab.settings import load_settings

    try:
        settings = load_settings()
    except LabError as exc:
        return fail(str(exc))
    target = Path(args.target).expanduser()
    if target.exists() or "/" in args.target or target.suffix:
        return _show(screen_file(target, settings.screen).to_json(), video=str(target))
    return _screen_task(args.target, args, settings)


def _screen_task(task_id: str, args: argparse.Namespace, settings) -> int:
    from lab.errors import LabError
    from lab.prescreen.background import Screener
    from lab.store import Store, default_store_path

    data_dir = Path(args.data_dir).expanduser().resolve() if args.data_dir else settings.data_dir
    journal = default_store_path(data_dir)
    if not journal.is_file():
        return fail(f"{task_id!r} is not a file, and there is no journal at {journal} to find it as a task")
    try:
        with Store(journal) as store:
            record = store.get(task_id)
            if record is None:
                return fail(f"{task_id!r} is neither a file nor a task in the journal {journal}")
            if record.status != "saved" or not record.video_path:
                return fail(f"task {task_id} has no saved video (status {record.status})", task_id=task_id)
            screener = Screener(store, data_dir, settings.screen)
            try:
                result = screener.screen_now(task_id, record.video_path)
            finally:
                screener.close()
    except LabError as exc:
        return fail(str(exc))
    return _show(result, task_id=task_id, video=record.video_path)
