"""`python -m lab generate | sweep | resume`: videos from the command line, journalled.

With neither ``--api-key``/``APIYI_API_KEY`` nor ``--base-url`` the embedded
simulator is started and used: ``lab.wiring`` builds the back end, as for the app. Progress goes to stderr (a line per event, or
one rewritten status line on a terminal); the LAST stdout line is a JSON
summary: ``{ok, tasks: [{task_id, status, video, thumbnails, preview,
cost_usd, error}], contact_sheet, cost_usd}``. An invalid request exits 2
before any HTTP call. The key is never printed or journalled.
"""

from __future__ import annotations

import argparse
import functools
import shutil
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from lab.cli import usage
from lab.cli.usage import EXIT_FAILED, EXIT_OK, finite_positive, int_between, json_line

# The summary's fields when nothing ran (a failure before any task): a script reads one shape.
NOTHING_RAN = {"tasks": [], "contact_sheet": None, "cost_usd": 0.0}
fail = functools.partial(usage.fail, **NOTHING_RAN)


def _add_shared(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("backend and files")
    group.add_argument("--base-url", help="API base URL, e.g. https://api.apiyi.com/v1 (default: live with a key, else the embedded simulator)")
    group.add_argument("--api-key", help="API key (default: $APIYI_API_KEY); never printed or stored")
    group.add_argument("--backend", choices=("simulator", "live"),
                       help="what --base-url is (default: $LAB_BACKEND, else live with a key, the simulator without); "
                            "journalled with each task: a live task the server does not know is never written off")
    group.add_argument("--data-dir", help="where the journal, videos and thumbnails go (default: $LAB_DATA_DIR or ./data)")
    group.add_argument("--out", help="also copy the video(s) (and contact sheet) here: a directory, or a .mp4 path for generate")
    group.add_argument("--sim-time-scale", type=finite_positive, help="simulator speed (default: $LAB_SIM_TIME_SCALE or 1.0)")
    group.add_argument("--thumbs", type=int_between(0, 50), default=5, help="thumbnails per video (default 5; 0 for none)")


def _add_preview(parser: argparse.ArgumentParser) -> None:
    # Not for resume: a preview is made only when asked for, by the command that asked.
    parser.add_argument("--preview", action="store_true",
                        help="also write an animated WebP of each saved video (DATA_DIR/previews/TASK.webp)")


def _add_request(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("request (flags override --body)")
    group.add_argument("--body", help="a raw request body as JSON, or - to read it from stdin")
    group.add_argument("--model", help="veo-3.1-fast-generate-preview (default) or veo-3.1-generate-preview")
    group.add_argument("--prompt")
    group.add_argument("--negative-prompt", help="metadata.negativePrompt")
    group.add_argument("--duration", help='"4", "6" or "8" (sent as a string)')
    group.add_argument("--seconds", help="the lower-precedence duration field")
    group.add_argument("--size", help="e.g. 1280x720")
    group.add_argument("--resolution", help="metadata.resolution: 720p, 1080p or 4k")
    group.add_argument("--aspect-ratio", help="metadata.aspectRatio: 16:9 or 9:16")
    group.add_argument("--seed", type=int_between(-(10**12), 10**12), help="metadata.seed")
    group.add_argument("--duration-seconds", type=int_between(-999, 999), help="metadata.durationSeconds (highest precedence)")
    group.add_argument("--person-generation", help="metadata.personGeneration")
    group.add_argument("--image", action="append", metavar="PATH",
                       help="image-to-video: the reference image (JPEG, PNG or WebP, at most 20 MB), sent as "
                            "input_reference in a multipart body; only --seconds sets the length then (default 4)")


def json_usage_errors(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Make a usage error (``--seed abc``) end with the JSON summary line too, exit 2, like any invalid request."""
    return usage.json_usage_errors(parser, **NOTHING_RAN)


def register(subparsers: argparse._SubParsersAction) -> None:
    generate = subparsers.add_parser("generate", help="generate one video (journalled; resumable)")
    _add_request(generate)
    _add_shared(generate)
    _add_preview(generate)
    generate.add_argument("--parent", metavar="TASK",
                          help="the run this one starts from (a report's take, a History run): journalled as its "
                               "parent with the fields that changed")
    generate.set_defaults(func=run_generate)
    json_usage_errors(generate)

    sweep = subparsers.add_parser("sweep", help="one request over many seeds (and prompt variants), plus a contact sheet")
    _add_request(sweep)
    sweep.add_argument("--seeds", help="comma-separated seeds, e.g. 1,2,3,4")
    sweep.add_argument("--count", type=int_between(-(10**12), 10**12), help="this many random seeds")
    sweep.add_argument("--prompts-file", help="prompt variants, one per line (each runs with every seed)")
    sweep.add_argument("--concurrency", type=int_between(1, 64), default=4, help="tasks running at once (default 4)")
    _add_shared(sweep)
    _add_preview(sweep)
    sweep.set_defaults(func=run_sweep)
    json_usage_errors(sweep)

    resume = subparsers.add_parser("resume", help="finish every unfinished task in the journal")
    resume.add_argument("--concurrency", type=int_between(1, 64), default=4)
    resume.add_argument("--checked", nargs="+", metavar="REQUEST_ID", default=[],
                        help="submits of unknown outcome you looked up in the account: no longer listed, and their "
                             "price no longer held against the spend caps")
    _add_shared(resume)
    resume.set_defaults(func=run_resume)
    json_usage_errors(resume)


# ---------------------------------------------------------------- output


def _summary(ok: bool, results: list, *, contact_sheet: Path | None = None, **extra: Any) -> int:
    tasks = [r.to_json() for r in results]
    print(json_line({
        "ok": ok,
        "tasks": tasks,
        "contact_sheet": str(contact_sheet) if contact_sheet else None,
        "cost_usd": round(sum(t["cost_usd"] for t in tasks), 2),
        **extra,
    }))
    return EXIT_OK if ok else EXIT_FAILED


class Progress:
    """Prints runner events to stderr: one line each, or a rewritten line on a terminal."""

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.lock = threading.Lock()  # events arrive from worker threads

    def __call__(self, event) -> None:
        task = event.task_id or "-"
        line = f"[{event.index}] {event.elapsed_s:6.1f}s {event.kind:<11} {task} {event.message}"
        with self.lock:
            if self.tty and event.kind in ("status", "downloading"):
                self.stream.write("\r\x1b[2K" + line[:150])
            else:
                self.stream.write(("\r\x1b[2K" if self.tty else "") + line + "\n")
            self.stream.flush()


# ---------------------------------------------------------------- plumbing


def _body_from_args(args: argparse.Namespace) -> dict:
    from lab import params

    from lab.cli.resolve import read_body

    body: dict = {}
    if args.body:
        body, problem = params.parse_json(read_body(args.body))
        if problem is not None:
            raise ValueError(f"--body: {problem.message}")
        if not isinstance(body, dict):
            raise ValueError("--body must be a JSON object")
    flags = params.build_body(
        model=args.model,
        prompt=args.prompt,
        duration=args.duration,
        seconds=args.seconds,
        size=args.size,
        resolution=args.resolution,
        aspect_ratio=args.aspect_ratio,
        seed=args.seed,
        negative_prompt=args.negative_prompt,
        duration_seconds=args.duration_seconds,
        person_generation=args.person_generation,
    )
    if args.image:
        if len(args.image) > 1:
            raise ValueError(f"--image takes one reference image; {len(args.image)} were given "
                             "(the API keeps only the first)")
        flags["input_reference"] = args.image[0]
    flag_metadata = flags.pop("metadata", {})
    body.update(flags)
    if flag_metadata:
        existing = body.get("metadata")
        body["metadata"] = {**existing, **flag_metadata} if isinstance(existing, dict) else flag_metadata
    body.setdefault("model", params.FAST_MODEL)
    return body


def _settings(args: argparse.Namespace):
    """Settings with this command's flags on top (settings decide "auto" = live with a key, once)."""
    from lab.settings import load_settings

    return load_settings(flags={"base_url": args.base_url, "api_key": args.api_key, "backend": args.backend,
                                "data_dir": args.data_dir, "sim_time_scale": args.sim_time_scale})


def _open_runner(args: argparse.Namespace, stack: ExitStack, settings=None):
    """The runner ``lab.wiring`` builds for the CLI (the app's back end; the private simulator without a key or URL)."""
    from lab.wiring import open_cli

    settings = settings or _settings(args)
    wiring = open_cli(settings, thumbs=max(0, args.thumbs), preview=getattr(args, "preview", False))
    # Saved takes are pre-screened in the background while the command runs; it waits for them
    # before it exits (the screener closes before the journal).
    stack.callback(wiring.close, wait_for_screens=True)
    if wiring.simulator is not None:
        print(f"using the embedded simulator at {wiring.base_url} (time scale {settings.sim_time_scale:g})",
              file=sys.stderr)
    return wiring.runner


def _copy_out(out: str | None, paths: list[Path], *, single: bool) -> dict:
    """Copy to ``--out``; ``{}`` when done, else ``{"out_error": ...}`` (the videos stay in the data dir)."""
    if not out:
        return {}
    target = Path(out).expanduser()
    try:
        if single and target.suffix.lower() == ".mp4" and paths:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(paths[0], target)
            return {}
        target.mkdir(parents=True, exist_ok=True)
        for path in paths:
            shutil.copyfile(path, target / path.name)
    except OSError as exc:
        message = f"could not copy to --out {out}: {exc.strerror or exc}; the videos are saved in the data directory"
        print(f"error: {message}", file=sys.stderr)
        return {"out_error": message}
    return {}


def _validate(body: dict):
    from lab import image_input

    resolution = image_input.resolve(body)
    for warning in resolution.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return resolution


# ---------------------------------------------------------------- commands


def run_generate(args: argparse.Namespace) -> int:
    from lab.errors import LabError, RequestInvalid, SettingsError

    try:
        body = _body_from_args(args)
    except ValueError as exc:
        return fail(str(exc))
    resolution = _validate(body)
    if not resolution.ok:
        return fail(f"invalid request: {resolution.error_text()}", errors=[e.to_dict() for e in resolution.errors])
    runner = None
    with ExitStack() as stack:
        try:
            runner = _open_runner(args, stack)
        except LabError as exc:  # settings, or a journal that cannot be opened (named, no password): nothing sent
            return fail(str(exc))
        try:
            result = runner.run_one(body, on_event=Progress(), image=resolution.image,  # the image read once
                                    parent_task_id=args.parent)
        except (RequestInvalid, SettingsError) as exc:
            return fail(str(exc))
        except LabError as exc:
            return fail(str(exc), code=EXIT_FAILED, **_submit_outcome(runner, exc))
    if result.ok and result.video_path:
        extra = _copy_out(args.out, [result.video_path], single=True)
        return _summary(result.ok and not extra, [result], **extra)
    return _summary(result.ok, [result])


def _submit_outcome(runner, exc) -> dict:
    """For a failed submit: its intent's id and, when the request may have reached the server, that warning."""
    from lab.store import INTENT_OPEN_STATES, UNKNOWN_OUTCOME

    request_id = getattr(exc, "lab_request_id", None)
    intent = runner.store.intent(request_id) if runner is not None and request_id else None
    if intent is None:
        return {}
    extra = {"request_id": request_id}
    if intent.state in INTENT_OPEN_STATES:
        extra["outcome"] = UNKNOWN_OUTCOME
        print(f"warning: request {request_id}: {UNKNOWN_OUTCOME}", file=sys.stderr)
    return extra


def _unknown_outcomes(runner) -> list[dict]:
    """Journalled submits that may have created a task the lab never heard of (listed, never re-sent)."""
    found = []
    for intent in runner.unknown_outcomes():
        sent = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(intent.created_at))
        print(f"attention: request {intent.request_id} ({intent.backend}, sent {sent}, prompt "
              f"{(intent.prompt or '')[:60]!r}): {intent.to_json()['outcome']}. Once looked up: "
              f"python -m lab resume --checked {intent.request_id}", file=sys.stderr)
        found.append({
            "request_id": intent.request_id,
            "sent_at": intent.created_at,
            "backend": intent.backend,
            "prompt": intent.prompt,
            "sweep_id": intent.sweep_id,
            "label": intent.variant_label,
            "gateway_request_id": intent.gateway_request_id,
            "error": intent.error,
            "outcome": intent.to_json()["outcome"],
        })
    return found


def _sweep_inputs(args: argparse.Namespace) -> dict:
    """The sweep's seeds and variants as the runner plans them (``Runner.plan_sweep``); ValueError if unusable."""
    from lab import sweeps

    if args.count is not None and args.count < 1:
        raise ValueError(f"--count must be at least 1, not {args.count}")
    if not args.seeds and not args.count:
        raise ValueError("give --seeds 1,2,3 or --count N")
    if args.concurrency < 1:
        raise ValueError("--concurrency must be at least 1")
    variants_text = None
    if args.prompts_file:
        limit = sweeps.VARIANTS_TEXT_MAX_CHARS * 4  # UTF-8: at most 4 bytes a character
        try:
            with open(args.prompts_file, "rb") as handle:  # a bounded read: /dev/zero or a FIFO must not hang
                data = handle.read(limit + 1)
        except OSError as exc:
            raise ValueError(f"--prompts-file {args.prompts_file}: {exc.strerror or exc}") from None
        if len(data) > limit:
            raise ValueError(f"--prompts-file {args.prompts_file} is too large for a list of prompt variants")
        try:
            variants_text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"--prompts-file {args.prompts_file} is not UTF-8 text (byte {exc.start})") from None
    return {"seeds_text": args.seeds, "random_count": args.count, "variants_text": variants_text}


def run_sweep(args: argparse.Namespace) -> int:
    from lab.errors import LabError, RequestInvalid, SettingsError

    try:
        settings = _settings(args)
        body = _body_from_args(args)
        inputs = _sweep_inputs(args)
    except (ValueError, OSError, SettingsError) as exc:
        return fail(str(exc))
    with ExitStack() as stack:
        try:
            runner = _open_runner(args, stack, settings)
        except LabError as exc:  # settings, or a journal that cannot be opened (named, no password): nothing sent
            return fail(str(exc))
        try:
            # The runner plans it under the lab's limit (max_sweep), before any HTTP call.
            plan = runner.plan_sweep(body, **inputs)
        except RequestInvalid as exc:
            return fail(f"invalid request: {exc}", errors=exc.errors or [])
        for warning in dict.fromkeys(w for r in plan.resolutions for w in r.warnings):
            print(f"warning: {warning}", file=sys.stderr)
        try:
            result = runner.run_sweep(plan, concurrency=args.concurrency, on_event=Progress())
        except (RequestInvalid, SettingsError) as exc:
            return fail(str(exc))
        except LabError as exc:
            return fail(str(exc), code=EXIT_FAILED)
    videos = [r.video_path for r in result.results if r.ok and r.video_path]
    extra = _copy_out(args.out, videos + ([result.contact_sheet] if result.contact_sheet else []), single=False)
    return _summary(result.ok and not extra, list(result.results), contact_sheet=result.contact_sheet,
                    sweep_id=result.sweep_id, **extra)


def run_resume(args: argparse.Namespace) -> int:
    from lab.errors import LabError, SettingsError

    with ExitStack() as stack:
        try:
            runner = _open_runner(args, stack)
        except LabError as exc:  # settings, or a journal that cannot be opened (named, no password): nothing sent
            return fail(str(exc))
        try:
            if args.checked:
                dismissed = runner.store.mark_intents_checked(args.checked)
                print(f"marked {dismissed} submit(s) of unknown outcome as checked: no longer listed, and their "
                      "price no longer held against the spend caps", file=sys.stderr)
            skipped: list[str] = []
            results = runner.resume(on_event=Progress(), concurrency=max(1, args.concurrency),
                                    on_skip=lambda record: skipped.append(record.task_id))
            unknown = _unknown_outcomes(runner)
        except SettingsError as exc:
            return fail(str(exc))
        except LabError as exc:
            return fail(str(exc), code=EXIT_FAILED)
    if skipped:
        print(f"skipped {len(skipped)} task(s) another process is finishing right now: {', '.join(skipped)}",
              file=sys.stderr)
    elif not results:
        print("nothing to resume: every journalled task is saved or failed", file=sys.stderr)
    extra = _copy_out(args.out, [r.video_path for r in results if r.ok and r.video_path], single=False)
    return _summary(all(r.ok for r in results) and not extra, results, unknown_outcome=unknown, skipped=skipped,
                    **extra)
