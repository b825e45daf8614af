"""The lab's back end as the UI sees it: one object wiring client, journal, runner and budget.

Gradio-free, so it can be read and tested alone. ``LabServices`` holds the API
key (inside its ``VideosClient``) on the server; nothing it returns to the UI
contains it. Outcomes are plain values (``RunOutcome``, ``SweepOutcome``,
``SweepCell``) with the paths and texts the components need.
"""

from __future__ import annotations

import datetime as dt
import json
import queue
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from lab import params
from lab.budget import Budget
from lab.client import VideosClient
from lab.errors import (
    ApiError,
    AuthError,
    BudgetExceeded,
    LabError,
    RateLimited,
    RequestInvalid,
    RequestRejected,
    Timeout,
)
from lab.export import export_zip
from lab.presentation import format_seconds
from lab.runner import Event, RunResult, Runner, SweepResult, guess_backend
from lab.settings import Settings
from lab.slots import TaskSlots
from lab.store import Store, TaskRecord, default_store_path

HISTORY_LIMIT = 200
# The only folders of the data directory the page may fetch from: media the lab wrote.
# The journal (every visitor's prompts) and the simulator's render cache stay private.
MEDIA_DIRS = ("runs", "thumbs", "previews", "sheets", "exports", "proxies")


def served_media_dirs(data_dir: Path) -> list[str]:
    """The data directory's media folders (created, so Gradio can allow them before the first run)."""
    folders = [Path(data_dir) / name for name in MEDIA_DIRS]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    return [str(folder) for folder in folders]
# Journal backend kind of tasks sent with a visitor's key: only that visitor's key can fetch them.
VISITOR_BACKEND = "visitor"


def no_path_keys(value: Any) -> Any:
    """gradio_client treats any dict with a "path" string as a file: rename such keys in JSON outputs."""
    if isinstance(value, dict):
        return {("path_" if k == "path" else k): no_path_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [no_path_keys(v) for v in value]
    return value


class EventPump:
    """Run ``fn(on_event=...)`` in a thread and yield its events (or None each tick) as they arrive."""

    def __init__(self, fn: Callable[..., Any], tick: float = 1.0) -> None:
        self._fn = fn
        self._tick = tick
        self._queue: queue.Queue = queue.Queue()
        self.result: Any = None
        self.error: BaseException | None = None

    def __iter__(self) -> Iterator[Any]:
        def work() -> None:
            try:
                self.result = self._fn(on_event=lambda event: self._queue.put(("event", event)))
            except BaseException as exc:  # handed to the caller's thread below
                self.error = exc
            finally:
                self._queue.put(("end", None))

        threading.Thread(target=work, name="lab-ui-run", daemon=True).start()
        while True:
            try:
                kind, event = self._queue.get(timeout=self._tick)
            except queue.Empty:
                yield None
                continue
            if kind == "end":
                return
            yield event


def thumb_caption(path: str | Path) -> str:
    """``task_3_4.00s.jpg`` -> ``4.0 s`` (the runner writes the frame time into the name)."""
    try:
        return f"{float(Path(path).stem.rsplit('_', 1)[1].rstrip('s')):.1f} s"
    except (IndexError, ValueError):
        return ""


def _thumbs(record: TaskRecord | None) -> list[tuple[str, str]]:
    if record is None:
        return []
    return [(str(p), thumb_caption(p)) for p in record.thumbs if Path(p).is_file()]


def _model_short(model: str | None) -> str:
    """"fast" / "standard" for the history table (the full id is in the run's details)."""
    if not model:
        return ""
    return "fast" if model == params.FAST_MODEL else "standard" if model == params.STANDARD_MODEL else model


def _money(usd: float | None) -> str:
    return "—" if usd is None else f"${usd:.2f}"


@dataclass(frozen=True)
class RunOutcome:
    """One finished (or given-up) single run, ready for the components."""

    ok: bool
    task_id: str | None
    status: str
    message: str
    video: str | None
    thumbnails: list[tuple[str, str]]
    wire: dict[str, Any] | None
    answer: dict[str, Any] | None
    cost_usd: float
    elapsed_s: float | None
    seed: int | None
    backend: str

    def summary(self) -> dict[str, Any]:
        """The JSON the /generate endpoint returns: no key, no "path" fields."""
        return {
            "ok": self.ok,
            "task_id": self.task_id,
            "status": self.status,
            "message": self.message,
            "seed": self.seed,
            "cost_usd": round(self.cost_usd, 2),
            "elapsed_s": self.elapsed_s,
            "video_file": Path(self.video).name if self.video else None,
            "thumbnail_count": len(self.thumbnails),
            "request": self.wire,
            "answer": self.answer,
            "backend": self.backend,
        }

    def summary_markdown(self) -> str:
        cost = f"**Cost:** {_money(self.cost_usd)}" + ("" if self.ok else " (not billed unless it completes)")
        parts = [cost, f"**Task:** `{self.task_id or '—'}`", f"**Status:** {self.status}"]
        if self.elapsed_s is not None:
            parts.append(f"**Time taken:** {format_seconds(self.elapsed_s)}")
        if self.seed is not None:
            parts.append(f"**Seed:** {self.seed}")
        return " · ".join(parts)


@dataclass(frozen=True)
class SweepCell:
    """What one sweep row shows now."""

    index: int
    label: str
    video: str | None = None
    thumbnails: list[tuple[str, str]] | None = None
    finished: bool = False


@dataclass(frozen=True)
class SweepOutcome:
    cells: list[SweepCell]
    results: tuple[RunResult, ...]
    contact_sheet: str | None
    zip_path: str | None
    cost_usd: float
    elapsed_s: float
    sweep_id: str

    def summary(self) -> dict[str, Any]:
        """The JSON the /sweep endpoint returns: one entry per task, in row order."""
        return {
            "sweep_id": self.sweep_id,
            "ok": bool(self.results) and all(r.ok for r in self.results),
            "cost_usd": self.cost_usd,
            "elapsed_s": self.elapsed_s,
            "contact_sheet_file": Path(self.contact_sheet).name if self.contact_sheet else None,
            "zip_file": Path(self.zip_path).name if self.zip_path else None,
            "results": [
                {
                    "label": r.label,
                    "task_id": r.task_id,
                    "status": r.status,
                    "ok": r.ok,
                    "seed": r.record.seed if r.record else None,
                    "cost_usd": round(r.cost_usd, 2),
                    "video_file": r.video_path.name if r.video_path else None,
                    "thumbnail_count": len(r.thumbs),
                    "error": r.error,
                }
                for r in self.results
            ],
        }

    def summary_markdown(self) -> str:
        saved = sum(1 for r in self.results if r.ok)
        failed = len(self.results) - saved
        text = (f"**Done:** {saved} of {len(self.results)} saved"
                + (f", {failed} without a video" if failed else "")
                + f" · **cost** {_money(self.cost_usd)} · {format_seconds(self.elapsed_s)}")
        return text


def failure_note(err: LabError) -> str:
    """A LabError in plain words, saying whether anything was sent or billed."""
    if isinstance(err, RequestInvalid):
        return f"The request is invalid, nothing was sent: {err}"
    if isinstance(err, BudgetExceeded):
        return str(err)
    if isinstance(err, AuthError):
        return f"The service refused the API key, nothing was generated: {err}"
    if isinstance(err, RateLimited):
        wait = f" Try again in {err.retry_after:.0f} s." if err.retry_after else " Try again in a minute."
        return f"The service is rate limiting requests, nothing was generated.{wait} ({err})"
    if isinstance(err, RequestRejected):
        return f"The service rejected the request, nothing was generated or billed: {err}"
    if isinstance(err, Timeout):
        return (f"Gave up waiting: {err}. The task may still complete and be billed; it is in the journal, "
                "so **Fetch unfinished** can download it later.")
    if isinstance(err, ApiError):
        return f"The service answered with an error: {err}"
    return str(err)


def _result_message(result: RunResult) -> str:
    if result.ok:
        return "Saved and verified."
    if result.status == "failed":
        return f"The service reported the task failed (failed tasks are not billed): {result.error or 'no detail given'}"
    if result.status == "not_submitted":
        return f"Not submitted: {result.error}"
    return (f"Unfinished ({result.status}): {result.error or 'no detail'}. The task may still complete and be billed; "
            "it stays in the journal, so **Fetch unfinished** can download it later.")


class LabServices:
    """Client, journal, runner and budget for one running app (shared by all sessions)."""

    def __init__(self, settings: Settings, base_url: str, api_key: str, *, simulator: Any = None) -> None:
        self.settings = settings
        self.base_url = base_url
        self.backend = guess_backend(base_url)
        self._has_real_key = bool(settings.api_key) or (self.backend == "live" and bool(api_key))
        self.simulator = simulator
        self.data_dir = Path(settings.data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store(default_store_path(self.data_dir))
        scale = settings.sim_time_scale if self.backend == "simulator" else 1.0
        self.client = VideosClient.scaled(base_url, api_key, time_scale=scale)
        self.budget = Budget(self.store, settings.spend_cap_session_usd, settings.spend_cap_day_usd)
        # Gradio's concurrency limit counts events, but a sweep event runs several tasks:
        # the slots cap tasks in flight per session and for the whole lab.
        self.slots = TaskSlots(settings.max_concurrent_total, settings.max_concurrent_per_session)
        self.runner = Runner(self.client, self.store, self.data_dir, budget=self.budget,
                             download_max_bytes=settings.download_max_bytes, backend=self.backend, slots=self.slots)
        self._secret = api_key
        self._resume_lock = threading.Lock()
        # Tasks some thread of this process is still waiting on (also after "Stop waiting":
        # the wait goes on in the background, so the video still lands in the journal).
        self._in_flight: set[str] = set()
        self._in_flight_lock = threading.Lock()

    @classmethod
    def create(cls, settings: Settings, *, base_url: str | None = None, api_key: str | None = None) -> "LabServices":
        """Services on ``base_url`` (default: settings); with neither, a simulator on a loopback port."""
        base_url = base_url or settings.base_url
        simulator = None
        if base_url is None:
            from lab.private_simulator import start_private_simulator

            simulator, api_key = start_private_simulator(settings.sim_time_scale, Path(settings.data_dir) / "renders")
            base_url = simulator.base_url
        return cls(settings, base_url, api_key or settings.key_for_requests(), simulator=simulator)

    def close(self) -> None:
        self.client.close()
        self.store.close()
        if self.simulator is not None:
            self.simulator.stop()

    # ------------------------------------------------------------ what the page shows around the runs

    @property
    def snippet_base_url(self) -> str:
        """Snippets are for copying: they name the live service even when the lab runs on the simulator."""
        return self.base_url if self.backend == "live" else params.DEFAULT_BASE_URL

    def banner(self, session: str, *, visitor_key: bool = False) -> str:
        view = self.budget.view(session)
        if visitor_key:
            return ("**Backend:** live APIYI with **your own key**, held for this browser session only "
                    f"(completed videos are billed to you) · **Spend:** {view.describe()}")
        if self.backend == "simulator":
            backend = "**Backend:** embedded simulator (real HTTP, real MP4s, nothing is billed)"
        else:
            backend = "**Backend:** live APIYI (completed videos are billed)"
        key = "**API key:** set on the server" if self._has_real_key else "**API key:** not set"
        return f"{backend} · {key} · **Spend:** {view.describe()}"

    def median_elapsed(self, resolution: params.Resolution) -> float | None:
        eff = resolution.effective
        if not (eff.get("model") and eff.get("resolution") and eff.get("duration")):
            return None
        return self.store.median_elapsed(eff["model"], eff["resolution"], eff["duration"])

    failure_note = staticmethod(failure_note)

    # ------------------------------------------------------------ runs

    def _answer(self, task_id: str | None, client: VideosClient) -> dict[str, Any] | None:
        """What the server says about the task now (one GET), for "sent vs answered"."""
        if not task_id:
            return None
        try:
            return dict(client.get(task_id).raw)
        except LabError as exc:
            return {"error": client.redact(str(exc))}

    def _tracking(self, on_event: Callable[[Event], None] | None) -> Callable[[Event], None]:
        def track(event: Event) -> None:
            if event.task_id:
                with self._in_flight_lock:
                    if event.kind == "done":
                        self._in_flight.discard(event.task_id)
                    elif event.kind == "submitted":
                        self._in_flight.add(event.task_id)
            if on_event is not None:
                on_event(event)
        return track

    def in_flight(self) -> set[str]:
        with self._in_flight_lock:
            return set(self._in_flight)

    def visitor_key_problem(self, key: str) -> str | None:
        """Why a pasted key cannot be used, or None. Says nothing about the key's value."""
        if not self.settings.allow_visitor_key:
            return "This lab does not accept visitors' own keys."
        if not key or any(ch.isspace() for ch in key) or len(key) < 8 or len(key) > 512:
            return "That does not look like an API key (no spaces; APIYI keys start with sk-)."
        return None

    @contextmanager
    def _runner_for(self, visitor_key: str | None) -> Iterator[tuple[Runner, VideosClient]]:
        """The shared runner, or for a visitor's own key a runner built for this call and closed after it.

        The visitor's key lives only in their session state and in this client while it runs:
        it goes to the live service (``visitor_base_url``), and its tasks are journalled with
        the backend kind "visitor", so the lab's own resume never asks for them with another key.
        """
        if not visitor_key:
            yield self.runner, self.client
            return
        problem = self.visitor_key_problem(visitor_key)
        if problem:
            raise RequestInvalid(problem)
        client = VideosClient(self.visitor_base_url, visitor_key)
        try:
            yield Runner(client, self.store, self.data_dir, budget=self.budget, slots=self.slots,
                         download_max_bytes=self.settings.download_max_bytes, backend=VISITOR_BACKEND), client
        finally:
            client.close()

    @property
    def visitor_base_url(self) -> str:
        """Visitors' keys are for the live service, even when the lab itself runs on the simulator."""
        return self.settings.base_url or params.DEFAULT_BASE_URL

    def run_one(self, body: dict, *, session: str, on_event: Callable[[Event], None] | None,
                visitor_key: str | None = None) -> RunOutcome:
        """Generate one video; raises LabError only when no task was created."""
        with self._runner_for(visitor_key) as (runner, client):
            result = runner.run_one(body, on_event=self._tracking(on_event), session=session)
            answer = self._answer(result.task_id, client)
        record = result.record
        return RunOutcome(
            ok=result.ok,
            task_id=result.task_id,
            status=result.status,
            message=_result_message(result),
            video=str(result.video_path) if result.ok and result.video_path else None,
            thumbnails=_thumbs(record),
            wire=record.wire if record else None,
            answer=answer,
            cost_usd=result.cost_usd,
            elapsed_s=record.elapsed_s if record else None,
            seed=record.seed if record else None,
            backend=self.backend,
        )

    def sweep_cell(self, event: Event, label: str) -> SweepCell | None:
        """The row update one runner event brings."""
        record = event.record
        task = f" · `{event.task_id}`" if event.task_id else ""
        if event.kind == "submitted":
            return SweepCell(event.index, f"**{label}** · queued{task}")
        if event.kind == "status":
            state = "rendering" if event.status in ("in_progress", "unknown") else (event.status or "")
            return SweepCell(event.index, f"**{label}** · {state}{task}")
        if event.kind == "downloading":
            return SweepCell(event.index, f"**{label}** · downloading{task}")
        if event.kind == "saved":
            video = record.video_path if record else None
            return SweepCell(event.index, f"**{label}** · thumbnails…{task}", video=video)
        if event.kind == "thumbnails":
            return SweepCell(event.index, f"**{label}** · saved{task}", thumbnails=_thumbs(record) or None)
        if event.kind == "failed":
            return SweepCell(event.index, f"**{label}** · failed: {event.message}{task}")
        if event.kind == "done":
            if record is not None and record.status == "saved":
                cost = _money(record.cost_usd)
                return SweepCell(event.index, f"**{label}** · saved · {cost} · {format_seconds(event.elapsed_s)}{task}",
                                 video=record.video_path, thumbnails=_thumbs(record) or None, finished=True)
            return SweepCell(event.index, f"**{label}** · failed: {event.message}{task}", finished=True)
        return None

    def run_sweep(self, items: Sequence[Any], *, session: str, on_event: Callable[[Event], None] | None,
                  visitor_key: str | None = None) -> SweepOutcome:
        """Run the sweep, then write its contact sheet and ZIP."""
        with self._runner_for(visitor_key) as (runner, _client):
            result: SweepResult = runner.run_sweep(
                items, concurrency=self.settings.max_concurrent_per_session, on_event=self._tracking(on_event),
                session=session,
            )
        zip_path = None
        records = [(r.label, r.record) for r in result.results if r.record is not None]
        if records:
            zip_path = export_zip(records, self.data_dir / "exports" / f"{result.sweep_id}.zip",
                                  contact_sheet=result.contact_sheet, sweep_id=result.sweep_id,
                                  secrets=[self._secret, *([visitor_key] if visitor_key else [])])
        cells = []
        for r in result.results:
            if r.ok:
                label = f"**{r.label}** · saved · {_money(r.cost_usd)}" + (f" · `{r.task_id}`" if r.task_id else "")
            else:
                label = f"**{r.label}** · failed: {_result_message(r)}"
            cells.append(SweepCell(r.index, label, video=str(r.video_path) if r.ok and r.video_path else None,
                                   thumbnails=_thumbs(r.record), finished=True))
        return SweepOutcome(
            cells=cells,
            results=result.results,
            contact_sheet=str(result.contact_sheet) if result.contact_sheet else None,
            zip_path=str(zip_path) if zip_path else None,
            cost_usd=result.cost_usd,
            elapsed_s=result.elapsed_s,
            sweep_id=result.sweep_id,
        )

    def resume_text(self) -> str:
        """Finish unfinished journal tasks (one resume at a time) and say what happened."""
        if not self._resume_lock.acquire(blocking=False):
            return "A fetch of unfinished tasks is already running."
        try:
            unfinished = {r.task_id for r in self.store.unfinished()}
            if not unfinished:
                return "Nothing unfinished in the journal."
            waiting = unfinished & self.in_flight()
            if waiting == unfinished:
                # Runner.resume would poll them a second time and race the download.
                return (f"{len(waiting)} unfinished task(s) are still being waited on in the background; "
                        "each is saved to the journal (see **History**) as soon as it completes.")
            results = self.runner.resume(concurrency=self.settings.max_concurrent_per_session)
        finally:
            self._resume_lock.release()
        saved = [r for r in results if r.ok]
        failed = [r for r in results if r.status == "failed"]
        waiting = len(results) - len(saved) - len(failed)
        lines = [f"Fetched unfinished tasks: {len(saved)} saved, {len(failed)} failed, {waiting} still unfinished."]
        lines += [f"- `{r.task_id}`: {_result_message(r)}" for r in results]
        lines.append("See the **History** tab.")
        return "\n".join(lines)

    # ------------------------------------------------------------ history

    def history(self, query: str | None) -> tuple[list[list[Any]], list[tuple[str, str]], dict[str, list[str]]]:
        """Table rows, gallery items and the task ids behind each (newest first)."""
        records = self.store.list_runs(limit=HISTORY_LIMIT, query=(query or "").strip() or None)
        rows, gallery, table_ids, gallery_ids = [], [], [], []
        for record in records:
            when = dt.datetime.fromtimestamp(record.created_at).strftime("%m-%d %H:%M:%S")
            prompt = (record.prompt or "").replace("\n", " ")
            rows.append([
                when, prompt[:120] + ("…" if len(prompt) > 120 else ""), record.status, _money(record.cost_usd),
                format_seconds(record.elapsed_s) if record.elapsed_s else "", _model_short(record.model),
                record.resolution or "", record.aspect_ratio or "", record.duration or "",
                "" if record.seed is None else str(record.seed), record.task_id,
            ])
            table_ids.append(record.task_id)
            thumbs = _thumbs(record)
            if thumbs:
                middle = thumbs[len(thumbs) // 2][0]
                gallery.append((middle, f"{record.status} · {_money(record.cost_usd)} · {prompt[:40]}"))
                gallery_ids.append(record.task_id)
        return rows, gallery, {"table": table_ids, "gallery": gallery_ids}

    def _record(self, task_id: str) -> TaskRecord:
        record = self.store.get(task_id)
        if record is None:
            raise LabError(f"No run {task_id!r} in the journal.")
        return record

    def history_detail(self, task_id: str) -> str:
        record = self._record(task_id)
        lines = [
            f"**Task** `{record.task_id}` · **{record.status}** · {_money(record.cost_usd)}"
            + (f" · {format_seconds(record.elapsed_s)}" if record.elapsed_s else ""),
            f"{record.model} · {record.resolution} · {record.aspect_ratio} · {record.duration} s · seed "
            f"{record.seed if record.seed is not None else 'picked by the service'}",
        ]
        if record.error:
            lines.append(f"**Error:** {record.error}")
        lines.append("```json\n" + json.dumps(record.wire or record.request, ensure_ascii=False, indent=2) + "\n```")
        return "\n\n".join(lines)

    def history_body(self, task_id: str) -> dict[str, Any]:
        """The body as the user wrote it (so the precedence they explored comes back too)."""
        record = self._record(task_id)
        return dict(record.request or record.wire)

    def history_video(self, task_id: str) -> str | None:
        record = self._record(task_id)
        return record.video_path if record.video_path and Path(record.video_path).is_file() else None
