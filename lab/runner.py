"""One task end to end, sweeps of many, and resume: the journal never loses a paid video.

``Runner.run_one(body)``: resolve (invalid: RequestInvalid, no HTTP) → reserve
budget (BudgetExceeded: no HTTP) → submit → journal at once → poll → download
and verify → thumbnails and an animated preview → journal. Cost is recorded
only when the server reports ``completed`` (only completed tasks are billed).

Once a task id exists, anything that goes wrong is *data*: the RunResult says
``ok=False`` with the error and the journal keeps the task; if it is not
``failed`` on the server it stays unfinished, and ``resume()`` picks it up.

Events: ``on_event(Event)`` is called as things happen, **from worker threads**
in a sweep (several at once). A callback must be thread-safe and quick (e.g.
put the event on a ``queue.Queue``); an exception it raises is logged and
ignored, never allowed to abandon a paid task.
"""

from __future__ import annotations

import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Collection, Mapping, Sequence
from urllib.parse import urlparse

from lab import image_input, params, sweeps
from lab.client import TaskStatus, VideosClient, safe_task_id, video_path_for
from lab.errors import LabError, RequestInvalid, TaskNotFound
from lab.slots import TaskSlots
from lab.store import Store, TaskRecord
from lab.sweeps import SweepItem, SweepPlan

log = logging.getLogger(__name__)

EVENT_KINDS = ("submitted", "status", "downloading", "saved", "thumbnails", "failed", "done")


@dataclass(frozen=True)
class Event:
    """Something that happened to one task. ``index`` is its place in a sweep (0 for one run)."""

    kind: str  # one of EVENT_KINDS
    index: int
    task_id: str | None
    status: str | None  # the journal status at that moment
    message: str
    elapsed_s: float  # since this run started
    record: TaskRecord | None = None


@dataclass(frozen=True)
class RunResult:
    """The outcome of one task. ``ok`` means the video is saved and verified."""

    ok: bool
    task_id: str | None
    status: str  # journal status: saved, failed, or an unfinished one (resume later)
    record: TaskRecord | None
    video_path: Path | None = None
    thumbs: tuple[Path, ...] = ()
    preview_path: Path | None = None
    cost_usd: float = 0.0
    error: str | None = None
    label: str | None = None
    index: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "status": self.status,
            "label": self.label,
            "video": str(self.video_path) if self.video_path else None,
            "thumbnails": [str(p) for p in self.thumbs],
            "preview": str(self.preview_path) if self.preview_path else None,
            "cost_usd": round(self.cost_usd, 2),
            "error": self.error,
            # image-to-video: the kept copy of the reference image and its hash (None for text)
            "image": ({"path": self.record.image_path, "sha256": self.record.image_sha256}
                      if self.record is not None and getattr(self.record, "image_path", None) else None),
        }


@dataclass(frozen=True)
class SweepResult:
    """All runs of a sweep in submission order, the contact sheet and the total billed."""

    sweep_id: str
    results: tuple[RunResult, ...]
    contact_sheet: Path | None
    cost_usd: float
    elapsed_s: float

    @property
    def ok(self) -> bool:
        return bool(self.results) and all(r.ok for r in self.results)


def guess_backend(base_url: str) -> str:
    """"simulator" for a loopback base URL, else "live" (recorded with each task)."""
    host = (urlparse(base_url).hostname or "").lower()
    return "simulator" if host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.") else "live"


class Runner:
    """Runs tasks through ``client``, journalling into ``store``, files under ``data_dir``."""

    def __init__(
        self,
        client: VideosClient,
        store: Store,
        data_dir: Path,
        *,
        budget: Any = None,
        thumbs: int = 5,
        thumb_width: int = 320,
        preview: bool = True,
        deadlines_s: Mapping[str, float] | None = None,
        download_max_bytes: int | None = None,
        backend: str | None = None,
        session: str = "default",
        slots: TaskSlots | None = None,
    ) -> None:
        self.client = client
        self.store = store
        self.data_dir = Path(data_dir).resolve()
        self.budget = budget
        self.thumbs = thumbs
        self.thumb_width = thumb_width
        self.preview = preview
        self.deadlines_s = dict(deadlines_s) if deadlines_s else None
        self.download_max_bytes = download_max_bytes or 1024 * 1024 * 1024
        self.backend = backend or guess_backend(client.base_url)
        self.session = session
        self.slots = slots

    # ------------------------------------------------------------ helpers

    def _emit(self, on_event, kind, index, task_id, status, message, started, record=None) -> None:
        if on_event is None:
            return
        try:
            on_event(Event(kind, index, task_id, status, message, round(time.monotonic() - started, 3), record))
        except Exception:  # a UI callback must never abandon a paid task
            log.exception("on_event callback failed for %s event of %s", kind, task_id)

    def _deadline(self, resolution: str | None) -> float:
        if self.deadlines_s and resolution in self.deadlines_s:
            return self.deadlines_s[resolution]
        return self.client.poll.deadline_for(resolution)

    def _resolve(self, body: Mapping[str, Any]) -> params.Resolution:
        resolution = params.resolve(body)
        if not resolution.ok:
            raise RequestInvalid(resolution.error_text(), errors=[e.to_dict() for e in resolution.errors])
        return resolution

    def _with_kept_image(self, body: Mapping[str, Any], resolution: params.Resolution):
        """An image request uploads, and journals, the lab's copy under ``<data_dir>/images``.

        So history, re-run and compare still find the image when the original moves or was
        a data: URI. Raises ImageInputError (RequestInvalid: nothing sent) if it cannot be kept.
        """
        if resolution.image is None:
            return body, resolution
        kept = image_input.with_kept_image(body, self.data_dir)
        return (body, resolution) if kept is body else (kept, self._resolve(kept))

    def _result(self, record: TaskRecord | None, *, ok: bool, error: str | None = None, label=None, index=0) -> RunResult:
        if record is None:
            return RunResult(ok=False, task_id=None, status="not_submitted", record=None, error=error, label=label, index=index)
        return RunResult(
            ok=ok,
            task_id=record.task_id,
            status=record.status,
            record=record,
            video_path=Path(record.video_path) if record.video_path else None,
            thumbs=tuple(Path(p) for p in record.thumbs),
            preview_path=Path(record.preview_path) if record.preview_path else None,
            cost_usd=record.cost_usd or 0.0,
            error=error if error is not None else (record.error if not ok else None),
            label=label if label is not None else record.variant_label,
            index=index,
        )

    # ------------------------------------------------------------ one task

    def run_one(
        self,
        body: Mapping[str, Any],
        *,
        on_event: Callable[[Event], None] | None = None,
        sweep_id: str | None = None,
        label: str | None = None,
        index: int = 0,
        session: str | None = None,
    ) -> RunResult:
        """Generate one video. Raises only before a task exists (RequestInvalid, BudgetExceeded, submit errors)."""
        resolution = self._resolve(body)
        reservation = self.budget.reserve(resolution.price_usd or 0.0, session or self.session) if self.budget else None
        try:
            return self._submit_and_finish(body, resolution, reservation, on_event, sweep_id, label, index,
                                           session=session or self.session)
        finally:
            if reservation is not None:
                reservation.release()

    def _submit_and_finish(self, body, resolution, reservation, on_event, sweep_id, label, index, headers=None,
                           session: str | None = None) -> RunResult:
        session = session or self.session
        if self.slots is None:
            return self._submit_and_finish_now(body, resolution, reservation, on_event, sweep_id, label, index, headers,
                                               session)
        with self.slots.hold(session):
            return self._submit_and_finish_now(body, resolution, reservation, on_event, sweep_id, label, index, headers,
                                               session)

    def _submit_and_finish_now(self, body, resolution, reservation, on_event, sweep_id, label, index, headers=None,
                               session: str | None = None) -> RunResult:
        started = time.monotonic()
        body, resolution = self._with_kept_image(body, resolution)
        submitted = self.client.submit(resolution.wire, headers=headers)
        # The task exists (and may be billed): journal it before anything else can fail.
        record = self.store.record_submitted(
            submitted.task_id,
            resolution,
            body,
            sweep_id,
            variant_label=label,
            status=submitted.status if submitted.status in ("queued", "in_progress") else "queued",
            base_url_kind=self.backend,
            session=session or self.session,
        )
        if reservation is not None:
            # The journalled task now holds its own price until its outcome is known (lab.budget).
            reservation.attach(record.task_id, resolution.price_usd)
        self._emit(on_event, "submitted", index, record.task_id, record.status, f"submitted {record.task_id}", started, record)
        return self._finish(record, on_event=on_event, reservation=reservation, index=index, started=started, label=label)

    def _finish(self, record: TaskRecord, *, on_event, reservation, index: int, started: float, label=None) -> RunResult:
        """Poll (unless known completed), download, thumbnail; every outcome lands in the journal."""
        task_id = record.task_id
        try:
            if record.status != "completed":
                record = self._poll(record, on_event=on_event, reservation=reservation, index=index, started=started)
                if record.status == "failed":
                    self._emit(on_event, "failed", index, task_id, "failed", record.error or "failed", started, record)
                    self._emit(on_event, "done", index, task_id, "failed", "failed (not billed)", started, record)
                    return self._result(record, ok=False, label=label, index=index)
            record = self._download(record, on_event=on_event, index=index, started=started)
        except TaskNotFound as exc:
            message = self.client.redact(str(exc))
            if self.backend != "simulator":
                # The live service answers task_not_exist for another account's task too, so a
                # resume with a different key must not close (and so lose) a task that may be
                # paid for: it stays unfinished for a resume with the key that submitted it.
                message += "; if it was submitted with another API key, resume with that key"
                record = self.store.update(task_id, error=message)
                self._emit(on_event, "failed", index, task_id, record.status, message, started, record)
                self._emit(on_event, "done", index, task_id, record.status, "unfinished: run resume later", started, record)
                return self._result(record, ok=False, error=message, label=label, index=index)
            # A simulator that has since stopped forgets its tasks: nothing left to fetch, so
            # the task is closed as failed.
            record = self.store.update(task_id, status="failed", error=message)
            self._emit(on_event, "failed", index, task_id, "failed", message, started, record)
            self._emit(on_event, "done", index, task_id, "failed", message, started, record)
            return self._result(record, ok=False, error=message, label=label, index=index)
        except LabError as exc:
            message = self.client.redact(str(exc))
            record = self.store.update(task_id, error=message)
            self._emit(on_event, "failed", index, task_id, record.status, message, started, record)
            self._emit(on_event, "done", index, task_id, record.status, "unfinished: run resume later", started, record)
            return self._result(record, ok=False, error=message, label=label, index=index)
        record = self._thumbnails(record, on_event=on_event, index=index, started=started)
        self._emit(on_event, "done", index, task_id, record.status, f"saved {record.video_path}", started, record)
        return self._result(record, ok=True, label=label, index=index)

    def _poll(self, record: TaskRecord, *, on_event, reservation, index: int, started: float) -> TaskRecord:
        task_id = record.task_id
        last = {"status": record.status}

        def on_status(status: TaskStatus) -> None:
            if status.status != last["status"] and status.status not in ("completed", "failed"):
                last["status"] = status.status
                updated = self.store.update(task_id, status=status.status)
                self._emit(on_event, "status", index, task_id, status.status, status.status, started, updated)

        expected = None
        if record.model and record.resolution and record.duration:
            expected = self.store.median_elapsed(record.model, record.resolution, record.duration)
        # A resumed task counts the time since it was submitted against its deadline.
        already = max(0.0, time.time() - (record.submitted_at or time.time()))
        final = self.client.wait(
            task_id,
            deadline_s=self._deadline(record.resolution),
            on_status=on_status,
            expected_s=expected,
            started_at=time.monotonic() - already,
        )
        now = time.time()
        if final.status == "failed":
            reason = final.error_message or "the server reported the task failed (no detail given)"
            record = self.store.update(task_id, status="failed", error=self.client.redact(reason), completed_at=now)
            return record
        price = params.price_usd(record.model or "") or 0.0
        record = self.store.update(task_id, status="completed", cost_usd=price, completed_at=now, error=None)
        if reservation is not None:
            reservation.charge(price)
        self._emit(on_event, "status", index, task_id, "completed", "completed", started, record)
        return record

    def _download(self, record: TaskRecord, *, on_event, index: int, started: float) -> TaskRecord:
        task_id = record.task_id
        dest = video_path_for(self.data_dir, task_id)
        self._emit(on_event, "downloading", index, task_id, record.status, f"downloading to {dest.name}", started, record)
        self.client.download(
            task_id,
            dest,
            expected_size=record.size,
            expected_duration=record.duration,
            max_bytes=self.download_max_bytes,
        )
        now = time.time()
        record = self.store.update(
            task_id,
            status="saved",
            video_path=str(dest),
            saved_at=now,
            elapsed_s=round(now - (record.submitted_at or now), 3),
            error=None,
        )
        self._emit(on_event, "saved", index, task_id, "saved", str(dest), started, record)
        return record

    def _thumbnails(self, record: TaskRecord, *, on_event, index: int, started: float) -> TaskRecord:
        """Thumbnails and a preview; a failure here is noted, the saved video stays good."""
        if self.thumbs <= 0 or not record.video_path:
            return record
        from lab import frames  # lazy: ffmpeg and Pillow only when needed

        task_id = safe_task_id(record.task_id)
        thumbs_dir = self.data_dir / "thumbs"
        thumbs_dir.mkdir(parents=True, exist_ok=True)
        try:
            shots = frames.thumbnails(record.video_path, count=self.thumbs, width=self.thumb_width)
            paths = []
            for number, (image, at) in enumerate(zip(shots.images, shots.times), start=1):
                path = thumbs_dir / f"{task_id}_{number}_{at:.2f}s.jpg"
                image.convert("RGB").save(path, format="JPEG", quality=85)
                paths.append(str(path))
            preview = None
            if self.preview:
                preview = str(frames.animated_preview(record.video_path, self.data_dir / "previews" / f"{task_id}.webp"))
            record = self.store.update(task_id, thumbs=paths, preview_path=preview)
            self._emit(on_event, "thumbnails", index, task_id, record.status, f"{len(paths)} thumbnails", started, record)
        except (LabError, OSError, ValueError) as exc:
            log.warning("thumbnails of %s failed: %s", task_id, exc)
            self._emit(on_event, "thumbnails", index, task_id, record.status, f"no thumbnails: {exc}", started, record)
        return record

    # ------------------------------------------------------------ sweeps

    def run_sweep(
        self,
        items: Sequence[SweepItem] | SweepPlan | Mapping[str, Any],
        *,
        seeds: Sequence[int] | None = None,
        prompts: Sequence[str] = (),
        concurrency: int = 4,
        on_event: Callable[[Event], None] | None = None,
        sweep_id: str | None = None,
        session: str | None = None,
        contact_sheet: bool = True,
    ) -> SweepResult:
        """Run many tasks at once (≤ ``concurrency``); a failed one is recorded and the rest carry on.

        ``items``: a ``SweepPlan`` from ``sweeps.prepare`` (already checked against the
        limits), ``SweepItem``s from ``sweeps.plan``, or one body with ``seeds=`` (and
        optional ``prompts=`` variants). Every item is valid before anything is sent: one
        invalid body raises RequestInvalid before any HTTP call; so does a budget refusal.
        """
        started = time.monotonic()
        if isinstance(items, Mapping):
            if not seeds:
                raise RequestInvalid("A sweep of one request needs seeds: run_sweep(body, seeds=[1, 2, 3]).")
            items = sweeps.plan(items, seeds, prompts)
        if isinstance(items, SweepPlan):
            planned, resolutions = list(items.items), list(items.resolutions)
        else:
            planned = list(items)
            resolutions = sweeps.check(planned)
        pairs = [(item.body, item.label) for item in planned]
        total = sum(r.price_usd or 0.0 for r in resolutions)
        reservation = self.budget.reserve(total, session or self.session) if self.budget else None
        sweep_id = sweep_id or f"sweep_{time.strftime('%Y%m%d_%H%M%S')}_{uuid.uuid4().hex[:6]}"
        # Whose sweep it is and each cell's request: a reloaded page shows rows not submitted yet,
        # and "Retry failed" sends a cell's exact request again.
        self.store.record_sweep(sweep_id, len(pairs), session=session or self.session,
                                plan=[{"label": label, "body": dict(body)} for body, label in pairs])

        def run(number: int) -> RunResult:
            body, label = pairs[number]
            label = label or self._default_label(resolutions[number], number)
            try:
                return self._submit_and_finish(body, resolutions[number], reservation, on_event, sweep_id, label, number,
                                               session=session or self.session)
            except Exception as exc:  # a cell that could not run is data too; the sweep carries on
                if not isinstance(exc, LabError):
                    log.exception("sweep item %d failed unexpectedly", number)
                message = self.client.redact(str(exc))
                self._emit(on_event, "failed", number, None, "not_submitted", message, started)
                self._emit(on_event, "done", number, None, "not_submitted", message, started)
                return self._result(None, ok=False, error=message, label=label, index=number)

        try:
            with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(pairs))), thread_name_prefix="sweep") as pool:
                results = tuple(pool.map(run, range(len(pairs))))
        finally:
            if reservation is not None:
                reservation.release()
        sheet = self._write_contact_sheet(sweep_id, results) if contact_sheet else None
        if sheet is not None:
            self.store.record_sweep(sweep_id, len(pairs), contact_sheet=sheet)
        return SweepResult(
            sweep_id=sweep_id,
            results=results,
            contact_sheet=sheet,
            cost_usd=round(sum(r.cost_usd for r in results), 2),
            elapsed_s=round(time.monotonic() - started, 3),
        )

    @staticmethod
    def _default_label(resolution: params.Resolution, number: int) -> str:
        seed = resolution.effective.get("seed")
        return f"seed {seed}" if seed is not None else f"run {number + 1}"

    def _write_contact_sheet(self, sweep_id: str, results: Sequence[RunResult]) -> Path | None:
        """One row per run (failed runs get a row with the reason); None if nothing was saved."""
        from PIL import Image

        from lab import frames

        rows = []
        for result in results:
            record = result.record
            meta = []
            if record is not None:
                meta = [record.model or "", f"{record.size} · {record.duration} s"]
            images, stamps = [], []
            for path in result.thumbs:
                try:
                    with Image.open(path) as image:
                        images.append(image.convert("RGB"))
                    stamps.append(_time_from_thumb_name(path))
                except OSError:
                    continue
            if not result.ok:
                meta.append(f"no video: {(result.error or result.status)[:60]}")
            rows.append(frames.SheetRow(title=result.label or (result.task_id or "?"), images=images, times=stamps, meta=meta))
        if not any(row.images for row in rows):
            return None
        out = self.data_dir / "sheets" / f"{safe_task_id(sweep_id)}.png"
        try:
            return frames.save_contact_sheet(rows, out)
        except (OSError, ValueError) as exc:
            log.warning("contact sheet for %s failed: %s", sweep_id, exc)
            return None

    # ------------------------------------------------------------ resume

    def resume(self, on_event: Callable[[Event], None] | None = None, *, concurrency: int = 4,
               only: Collection[str] | None = None) -> list[RunResult]:
        """Finish every unfinished task in the journal (poll, then download). Never loses a paid one.

        Only tasks submitted to this kind of backend are resumed (a live task is not asked
        of the simulator, nor the reverse); the others stay unfinished for a later resume.
        ``only`` narrows it to these task ids (a server leaves alone the tasks it is still waiting on).
        """
        pending = [r for r in self.store.unfinished()
                   if r.base_url_kind in (None, self.backend) and (only is None or r.task_id in only)]
        if not pending:
            return []

        def finish(number: int) -> RunResult:
            record = pending[number]
            started = time.monotonic()
            try:
                safe_task_id(record.task_id)
            except LabError as exc:
                message = str(exc)
                self.store.update(record.task_id, status="failed", error=message)
                return self._result(self.store.get(record.task_id), ok=False, error=message, index=number)
            self._emit(on_event, "submitted", number, record.task_id, record.status, f"resuming {record.task_id}", started, record)
            return self._finish(record, on_event=on_event, reservation=None, index=number, started=started, label=record.variant_label)

        with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(pending))), thread_name_prefix="resume") as pool:
            return list(pool.map(finish, range(len(pending))))


def _time_from_thumb_name(path: Path) -> float:
    """The frame time written into a thumbnail's file name (``<task>_<n>_<t>s.jpg``)."""
    try:
        return float(Path(path).stem.rsplit("_", 1)[1].rstrip("s"))
    except (IndexError, ValueError):
        return 0.0
