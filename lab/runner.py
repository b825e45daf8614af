"""One task end to end, sweeps of many, and resume: the journal never loses a paid video.

``Runner.run_one(body)``: resolve (invalid: RequestInvalid, no HTTP) → reserve
budget (BudgetExceeded: no HTTP) → submit → journal at once → poll → download
and verify → thumbnails (the video's size and length from the same scan) → journal. Cost is recorded
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

import dataclasses
import datetime
import json
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, Collection, Mapping, Sequence

from lab import image_input, params, sweeps
from lab.client import (
    TaskStatus,
    VideosClient,
    encode_wire,
    may_have_created_task,
    safe_task_id,
    verify_video,
    video_path_for,
)
from lab.datadir import DataDir, atomic_write, leftovers
from lab.errors import ApiError, LabError, NeverSent, RequestInvalid, StoreUnavailable, TaskNotFound
from lab.leases import DEFAULT_LEASE_S, LeaseKeeper, new_owner_id, owner_may_be_alive
from lab.lineage import changed_fields
from lab.slots import TaskSlots
from lab.store import INTENT_OPEN_STATES, IntentRecord, Store, TaskRecord
from lab.sweeps import SweepItem, SweepPlan

log = logging.getLogger(__name__)

EVENT_KINDS = ("submitted", "status", "downloading", "saved", "thumbnails", "failed", "done")
# How long the journal write of a task that exists (created, billed, saved) keeps being tried while the
# journal's database cannot be reached (a PostgreSQL restart): a paid task must land in the journal.
JOURNAL_RETRY_S = 180.0


@dataclass(frozen=True)
class Event:
    """Something that happened to one task. ``index`` is its place in a sweep (0 for one run)."""

    kind: str  # one of EVENT_KINDS
    index: int
    task_id: str | None
    status: str | None  # the journal status at that moment
    message: str  # what kind and task id do not already say ("" when nothing more)
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
    request_id: str | None = None  # the lab's id of the submit (its intent in the journal)

    def to_json(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "request_id": self.request_id,
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


@dataclass
class _Cell:
    """What the steps of one task share: its place in the run, its listener, its money, its ids."""

    index: int
    label: str | None
    sweep_id: str | None
    session: str
    reservation: Any
    on_event: Callable[[Event], None] | None
    started: float = field(default_factory=time.monotonic)
    person: str | None = None  # who pays (lab.people), journalled with the task
    request_id: str | None = None  # the intent, once journalled
    task_id: str | None = None  # once the server named the task
    parent_task_id: str | None = None  # the run this one was started from (lineage)

    def emit(self, kind: str, status: str | None, message: str, record: TaskRecord | None = None) -> None:
        if self.on_event is None:
            return
        event = Event(kind, self.index, self.task_id, status, message, round(time.monotonic() - self.started, 3), record)
        try:
            self.on_event(event)
        except Exception:  # a UI callback must never abandon a paid task
            log.exception("on_event callback failed for %s event of %s", kind, self.task_id)


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
        preview: bool = False,
        deadlines_s: Mapping[str, float] | None = None,
        download_max_bytes: int | None = None,
        backend: str = "live",
        session: str = "default",
        slots: TaskSlots | None = None,
        lease_s: float = DEFAULT_LEASE_S,
        screener: Any = None,
        max_sweep: int = sweeps.DEFAULT_MAX_SWEEP,
    ) -> None:
        self.client = client
        self.store = store
        self.data_dir = Path(data_dir).resolve()
        self.files = DataDir(self.data_dir)
        self.budget = budget
        self.thumbs = thumbs
        self.thumb_width = thumb_width
        self.preview = preview
        self.deadlines_s = dict(deadlines_s) if deadlines_s else None
        self.download_max_bytes = download_max_bytes or 1024 * 1024 * 1024
        # Recorded with each task; decides what resume may conclude about it. "live" unless told:
        # a live task the server does not know stays unfinished, never written off.
        self.backend = backend
        self.session = session
        self.slots = slots
        self.owner = new_owner_id()
        self.lease_s = float(lease_s)
        self.journal_retry_s = JOURNAL_RETRY_S
        self.leases = LeaseKeeper(store, self.owner, self.lease_s)
        # lab.prescreen.background.Screener: each saved take is screened after the run, never before its result.
        self.screener = screener
        # The most tasks one sweep may run: checked here, where the work is done, whoever planned it.
        self.max_sweep = max_sweep

    # ------------------------------------------------------------ helpers

    def _deadline(self, resolution: str | None) -> float:
        if self.deadlines_s and resolution in self.deadlines_s:
            return self.deadlines_s[resolution]
        return self.client.poll.deadline_for(resolution)

    def _resolve(self, body: Mapping[str, Any], image: params.ImageFacts | None = None) -> params.Resolution:
        """``body`` resolved (its image read once, unless ``image`` is what was already read); RequestInvalid if not ok."""
        resolution = params.resolve(body, image=image) if image is not None else image_input.resolve(body)
        if not resolution.ok:
            raise RequestInvalid(resolution.error_text(), errors=[e.to_dict() for e in resolution.errors])
        encode_wire(resolution.wire)  # text that cannot go on the wire is refused here, before any journal or HTTP
        return resolution

    def _with_kept_image(self, body: Mapping[str, Any], resolution: params.Resolution):
        """An image request uploads, and journals, the lab's copy under ``<data_dir>/images``.

        So history, re-run and compare still find the image when the original moves or was
        a data: URI. Raises ImageInputError (RequestInvalid: nothing sent) if it cannot be kept.
        """
        if resolution.image is None:
            return body, resolution
        kept, facts = image_input.with_kept_image(body, self.data_dir, resolution.image)
        return (body, resolution) if kept is body else (kept, self._resolve(kept, facts))

    def _result(self, cell: _Cell, record: TaskRecord | None, *, ok: bool, error: str | None = None) -> RunResult:
        if record is None:
            intent = self.store.intent(cell.request_id) if cell.request_id else None
            status = "outcome_unknown" if intent is not None and intent.state in INTENT_OPEN_STATES else "not_submitted"
            return RunResult(ok=False, task_id=None, status=status, record=None, error=error, label=cell.label,
                             index=cell.index, request_id=cell.request_id)
        return RunResult(
            ok=ok,
            task_id=record.task_id,
            status=record.status,
            record=record,
            video_path=Path(record.video_path) if record.video_path else None,
            thumbs=tuple(Path(p) for p in record.thumb_paths),
            preview_path=Path(record.preview_path) if record.preview_path else None,
            cost_usd=record.cost_usd or 0.0,
            error=error if error is not None else (record.error if not ok else None),
            label=cell.label if cell.label is not None else record.variant_label,
            index=cell.index,
            request_id=record.request_id,
        )

    def _fail(self, cell: _Cell, record: TaskRecord | None, message: str, *, done: str | None = None) -> RunResult:
        """The one way a task's run ends badly: a "failed" then a "done" event, and its result."""
        status = record.status if record is not None else "not_submitted"
        if done is None:
            if record is None or status == "failed":
                done = message if record is None else "failed (not billed)"
            else:
                done = "unfinished: run resume later"
        cell.emit("failed", status, message, record)
        cell.emit("done", status, done, record)
        return self._result(cell, record, ok=False, error=message)

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
        as_written: bool = False,
        parent_task_id: str | None = None,
        image: params.ImageFacts | None = None,
        person: str | None = None,
    ) -> RunResult:
        """Generate one video. Raises only before a task exists (RequestInvalid, BudgetExceeded, submit errors).

        ``as_written`` sends ``body`` itself instead of the canonical wire body (the UI's raw mode,
        for seeing how the service resolves conflicting fields); it must still pass every check.
        A submit error that may have created a task carries ``lab_request_id``: its intent in
        the journal (``store.intent``), shown by ``resume`` as an unknown outcome.
        ``parent_task_id``: the run this one was started from; journalled with the effective
        fields that differ from it (take lineage). ``image``: the facts of the body's reference
        image when the caller has read it already (it is not read again). ``person`` (a visitor,
        ``lab.people``): their daily cap and submit rate count too.
        """
        resolution = self._resolve(body, image)
        if as_written:
            # The journal's wire stays "what was POSTed"; the effective values stay the lab's prediction.
            resolution = dataclasses.replace(resolution, wire=json.loads(json.dumps(dict(body))))
        session = session or self.session
        reservation = (self.budget.reserve(resolution.price_usd or 0.0, session, person=person)
                       if self.budget else None)
        cell = _Cell(index=index, label=label, sweep_id=sweep_id, session=session, reservation=reservation,
                     on_event=on_event, parent_task_id=parent_task_id, person=person)
        try:
            return self._run_cell(cell, body, resolution)
        finally:
            if reservation is not None:
                reservation.release()

    def _run_cell(self, cell: _Cell, body: Mapping[str, Any], resolution: params.Resolution) -> RunResult:
        if self.slots is None:
            return self._submit_and_finish(cell, body, resolution)
        with self.slots.hold(cell.session):
            return self._submit_and_finish(cell, body, resolution)

    def _submit_and_finish(self, cell: _Cell, body: Mapping[str, Any], resolution: params.Resolution) -> RunResult:
        # The task is born leased to this runner (record_submitted), renewed until it is released.
        with self.leases.hold():
            record = self._submit(cell, body, resolution)
            try:
                result = self._finish(cell, record)
            finally:
                self._release(record.task_id)
        return self._from_journal(result)

    def _journalled(self, task_id: str, write: Callable[[], TaskRecord]) -> TaskRecord:
        """``write()``, tried again while the journal's database cannot be reached (for up to ``journal_retry_s``).

        For what a task that exists must not lose: its id, its bill, its saved video. Each write is safe to
        repeat (an update sets fields; the submit's write first looks for the row an earlier try committed).
        """
        deadline = time.monotonic() + self.journal_retry_s
        delay = 0.5
        while True:
            try:
                return write()
            except StoreUnavailable as exc:
                if time.monotonic() + delay > deadline:
                    log.error("task %s exists but could not be journalled: %s", task_id, exc)
                    raise
                log.warning("journal unreachable, task %s not journalled yet (trying again): %s", task_id, exc)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _release_sweep(self, sweep_id: str) -> None:
        try:
            self.store.release_sweep(sweep_id, self.owner)
        except LabError as exc:  # the lease then simply expires
            log.warning("could not release the lease on %s: %s", sweep_id, exc)

    def _release(self, task_id: str) -> None:
        try:
            self.store.release(task_id, self.owner)
        except LabError as exc:  # the lease then simply expires
            log.warning("could not release the lease on %s: %s", task_id, exc)

    def _submit(self, cell: _Cell, body: Mapping[str, Any], resolution: params.Resolution) -> TaskRecord:
        """Journal the intent, POST once, journal the task: a kill at any point leaves a trace."""
        body, resolution = self._with_kept_image(body, resolution)
        wire = encode_wire(resolution.wire)
        cell.started = time.monotonic()
        cell.request_id = f"req_{uuid.uuid4().hex}"
        with self.leases.hold():
            self.store.record_intent(
                cell.request_id, wire.decode("utf-8"), body, backend=self.backend,
                prompt=resolution.effective.get("prompt"), sweep_id=cell.sweep_id, variant_label=cell.label,
                lease_owner=self.owner, lease_s=self.lease_s, session=cell.session,
            )
            try:
                # JSON goes as the exact journalled bytes; a multipart body is built from the wire (file streamed).
                submitted = self.client.submit(resolution.wire if params.is_multipart(resolution.wire) else wire)
            except ApiError as exc:
                if may_have_created_task(exc):
                    state = "unknown"
                else:
                    state = "not_sent" if isinstance(exc, NeverSent) else "refused"
                self.store.close_intent(cell.request_id, state, error=self.client.redact(str(exc)),
                                        gateway_request_id=exc.gateway_request_id)
                if state == "unknown" and cell.reservation is not None:
                    # It may bill: its price stays counted against the caps until the user dismisses it.
                    try:
                        self.budget.hold_unknown(cell.reservation, cell.request_id, resolution.price_usd or 0.0)
                    except LabError as held:  # the journal is gone: no run can reserve past the cap either
                        log.warning("could not hold the price of submit %s: %s", cell.request_id, held)
                exc.lab_request_id = cell.request_id
                raise
            # The task exists (and may be billed): journal it before anything else can fail.
            def journal_task() -> TaskRecord:  # an earlier try may have committed before its answer was lost
                return self.store.get(submitted.task_id) or self.store.record_submitted(
                    submitted.task_id,
                    resolution,
                    body,
                    cell.sweep_id,
                    variant_label=cell.label,
                    status=submitted.status if submitted.status in ("queued", "in_progress") else "queued",
                    base_url_kind=self.backend,
                    session=cell.session,
                    person=cell.person,
                    request_id=cell.request_id,
                    gateway_request_id=submitted.gateway_request_id,
                    lease_owner=self.owner,
                    lease_s=self.lease_s,
                    # The journalled task holds its own price until its outcome is known (lab.budget).
                    also=(partial(cell.reservation.attach, submitted.task_id, resolution.price_usd)
                          if cell.reservation is not None else None),
                    **self._lineage(cell.parent_task_id, resolution),
                )

            record = self._journalled(submitted.task_id, journal_task)
        cell.task_id = record.task_id
        cell.emit("submitted", record.status, "", record)
        return record

    def _lineage(self, parent_task_id: str | None, resolution: params.Resolution) -> dict[str, Any]:
        """The parent's id and the fields this run changes from it (a parent the journal lacks is not named)."""
        if not parent_task_id:
            return {}
        try:
            parent = self.store.get(parent_task_id)
        except LabError:
            parent = None
        if parent is None:
            return {}
        return {"parent_task_id": parent.task_id,
                "parent_changes": changed_fields(parent.effective, resolution.effective)}

    def prescreen(self, record: TaskRecord) -> None:
        """Queue a saved take for the background pre-screen (nothing happens without a screener)."""
        if self.screener is None or record.status != "saved" or not record.video_path:
            return
        try:
            self.screener.submit(record.task_id, record.video_path)
        except Exception:  # the pre-screen never costs a run its result
            log.exception("could not queue the pre-screen of %s", record.task_id)

    def _finish(self, cell: _Cell, record: TaskRecord) -> RunResult:
        """Poll (unless known completed), download, thumbnail; every outcome lands in the journal."""
        task_id = cell.task_id = record.task_id
        try:
            if record.status != "completed":
                record = self._poll(cell, record)
                if record.status == "failed":
                    return self._fail(cell, record, record.error or "failed")
            record = self._download(cell, record)
        except TaskNotFound as exc:
            message = self.client.redact(str(exc))
            if self.backend != "simulator":
                # The live service answers task_not_exist for another account's task too, so a
                # resume with a different key must not close (and so lose) a task that may be
                # paid for: it stays unfinished for a resume with the key that submitted it.
                message += "; if it was submitted with another API key, resume with that key"
                return self._fail(cell, self.store.update(task_id, error=message), message)
            # A simulator that has since stopped forgets its tasks: nothing left to fetch, so
            # the task is closed as failed.
            record = self.store.update(task_id, status="failed", error=message)
            return self._fail(cell, record, message, done=message)
        except LabError as exc:
            message = self.client.redact(str(exc))
            return self._fail(cell, self.store.update(task_id, error=message), message)
        record = self._thumbnails(cell, record)
        self.prescreen(record)
        cell.emit("done", record.status, f"saved {record.video_path}", record)
        return self._result(cell, record, ok=True)

    def _poll(self, cell: _Cell, record: TaskRecord) -> TaskRecord:
        task_id = record.task_id
        last = {"status": record.status}

        def on_status(status: TaskStatus) -> None:
            if status.status != last["status"] and status.status not in ("completed", "failed"):
                last["status"] = status.status
                try:
                    updated = self.store.update(task_id, status=status.status)
                except StoreUnavailable as exc:  # a passing status: the poll goes on, the end is journalled
                    log.warning("status %s of %s not journalled: %s", status.status, task_id, exc)
                    return
                cell.emit("status", status.status, status.status, updated)

        expected = None
        if record.model and record.resolution and record.duration:
            try:
                expected = self.store.median_elapsed(record.model, record.resolution, record.duration)
            except StoreUnavailable as exc:  # only a hint for the progress: the poll goes on without it
                log.warning("expected time of %s not read: %s", task_id, exc)
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
            return self._journalled(task_id, lambda: self.store.update(
                task_id, status="failed", error=self.client.redact(reason), completed_at=now, final_answer=final.raw))
        price = params.price_usd(record.model or "") or 0.0
        record = self._journalled(task_id, lambda: self.store.update(
            task_id, status="completed", cost_usd=price, completed_at=now, error=None, final_answer=final.raw))
        if cell.reservation is not None:
            cell.reservation.charge(price)
        cell.emit("status", "completed", "completed", record)
        return record

    def _download(self, cell: _Cell, record: TaskRecord) -> TaskRecord:
        """Fetch the video into place (a name of this owner's own, verified, renamed), unless already saved."""
        task_id = record.task_id
        dest = video_path_for(self.data_dir, task_id)
        if record.status == "saved" and record.video_path and Path(record.video_path).is_file():
            return record  # another owner saved it while this one waited: that is success
        if not self._already_there(dest, record):
            # Half-written files of owners whose lease ran out (killed mid-download): this owner holds it now.
            for stale in leftovers(dest):
                stale.unlink(missing_ok=True)
            cell.emit("downloading", record.status, f"to {dest.name}", record)
            self.client.download(
                task_id,
                dest,
                expected_size=record.size,
                expected_duration=record.duration,
                max_bytes=self.download_max_bytes,
            )
        now = time.time()
        elapsed = round(now - (record.submitted_at or now), 3)
        record = self._journalled(task_id, lambda: self.store.update(
            task_id, status="saved", video_path=str(dest), saved_at=now, elapsed_s=elapsed, error=None))
        cell.emit("saved", "saved", str(dest), record)
        return record

    @staticmethod
    def _already_there(dest: Path, record: TaskRecord) -> bool:
        """The video is in place and verifies (saved by an owner that died before journalling it)."""
        if not dest.is_file():
            return False
        try:
            verify_video(dest, expected_size=record.size, expected_duration=record.duration, task_id=record.task_id)
        except LabError:
            return False
        return True

    def _thumbnails(self, cell: _Cell, record: TaskRecord) -> TaskRecord:
        """Thumbnails (and, with ``preview``, an animated preview), journalled as ``{path, t}`` with the video's
        size and length; a failure here is noted, the saved video stays good.

        Each file is written whole or not at all (``atomic_write``), so two owners never leave a
        half-written image.
        """
        if self.thumbs <= 0 or not record.video_path:
            return record
        from lab import frames  # lazy: ffmpeg and Pillow only when needed

        task_id = safe_task_id(record.task_id)
        try:
            shots = frames.thumbnails(record.video_path, count=self.thumbs, width=self.thumb_width)
            thumbs = []
            for number, (image, at) in enumerate(zip(shots.images, shots.times), start=1):
                path = self.files.thumb(task_id, number)
                with atomic_write(path) as out:
                    image.convert("RGB").save(out, format="JPEG", quality=85)
                thumbs.append({"path": str(path), "t": round(float(at), 3)})
            preview = None
            if self.preview:
                preview = str(frames.animated_preview(record.video_path, self.files.preview(task_id)))
            info = shots.info  # the scan read the video's size and length: journalled, never probed again
            record = self.store.update(task_id, thumbs=thumbs, preview_path=preview,
                                       video_size=f"{info.width}x{info.height}",
                                       video_duration_s=round(info.duration, 2))
            cell.emit("thumbnails", record.status, f"{len(thumbs)} made", record)
        except (LabError, OSError, ValueError) as exc:
            log.warning("thumbnails of %s failed: %s", task_id, exc)
            cell.emit("thumbnails", record.status, f"none: {exc}", record)
        return record

    # ------------------------------------------------------------ sweeps

    def plan_sweep(self, body: Mapping[str, Any], *, image: params.ImageFacts | None = None,
                   **inputs: Any) -> SweepPlan:
        """``sweeps.prepare`` under this runner's ``max_sweep`` (``inputs``: seeds_text, seeds, random_count,
        variants_text, variants). The body's image is read once for every row, unless ``image`` is what
        the caller already read. Raises RequestInvalid."""
        if image is None:
            image = image_input.facts_for(body)
        return sweeps.prepare(body, max_sweep=self.max_sweep, image=image, **inputs)

    def plan_rows(self, items: Sequence[SweepItem]) -> SweepPlan:
        """Rows planned before (a sweep's failed rows, run again) checked as a plan; their image read once."""
        return sweeps.checked(items, max_sweep=self.max_sweep, image=image_input.facts_for(items[0].body) if items else None)

    def run_sweep(
        self,
        plan: SweepPlan,
        *,
        concurrency: int = 4,
        on_event: Callable[[Event], None] | None = None,
        sweep_id: str | None = None,
        session: str | None = None,
        contact_sheet: bool = True,
        person: str | None = None,
        finish: Callable[[tuple[RunResult, ...]], None] | None = None,
    ) -> SweepResult:
        """Run a checked plan (``plan_sweep``, ``plan_rows`` or ``sweeps.prepare``), ≤ ``concurrency`` tasks at
        once; a failed one is recorded and the rest carry on.

        ``finish``: what the caller still makes of the results (the orchestrator's whole-sweep sheet and
        ZIP), called while the sweep is still leased, so a page on another replica shows it running until then.

        A plan past ``max_sweep``, or with an invalid row, raises RequestInvalid before any HTTP
        call; so does a budget refusal.
        """
        started = time.monotonic()
        if not isinstance(plan, SweepPlan):
            raise TypeError(f"run_sweep takes a SweepPlan (Runner.plan_sweep), not {type(plan).__name__}")
        sweeps.check_plan(plan, max_sweep=self.max_sweep)
        planned, resolutions = list(plan.items), list(plan.resolutions)
        pairs = [(item.body, item.label) for item in planned]
        total = sum(r.price_usd or 0.0 for r in resolutions)
        reservation = (self.budget.reserve(total, session or self.session, person=person, tasks=len(pairs))
                       if self.budget else None)
        sweep_id = sweep_id or f"sweep_{time.strftime('%Y%m%d_%H%M%S')}_{uuid.uuid4().hex[:6]}"
        # Whose sweep it is and each cell's request: a reloaded page shows rows not submitted yet,
        # and "Retry failed" sends a cell's exact request again.
        self.store.record_sweep(sweep_id, len(pairs), session=session or self.session,
                                plan=[{"label": label, "body": dict(body)} for body, label in pairs])

        def run(number: int) -> RunResult:
            body, label = pairs[number]
            cell = _Cell(index=number, label=label or self._default_label(resolutions[number], number),
                         sweep_id=sweep_id, session=session or self.session, reservation=reservation, on_event=on_event,
                         person=person, parent_task_id=getattr(planned[number], "parent_task_id", None))
            try:
                return self._run_cell(cell, body, resolutions[number])
            except Exception as exc:  # a cell that could not run is data too; the sweep carries on
                if not isinstance(exc, LabError):
                    log.exception("sweep item %d failed unexpectedly", number)
                message = self.client.redact(str(exc))
                record = self.store.get(cell.task_id) if cell.task_id else None
                return self._fail(cell, record, message)

        # Leased while it runs, contact sheet included: a page on another replica re-attaches to it.
        with self.leases.hold():
            self.store.lease_sweep(sweep_id, self.owner, self.lease_s)
            try:
                try:
                    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(pairs))),
                                            thread_name_prefix="sweep") as pool:
                        results = tuple(self._from_journal(r) for r in pool.map(run, range(len(pairs))))
                finally:
                    if reservation is not None:
                        reservation.release()
                sheet = self.write_contact_sheet(sweep_id, results, [body.get("prompt") for body, _ in pairs],
                                                  resolutions[0].effective) if contact_sheet else None
                if sheet is not None:
                    self.store.record_sweep(sweep_id, len(pairs), contact_sheet=sheet)
                if finish is not None:
                    finish(results)
            finally:
                self._release_sweep(sweep_id)
        return SweepResult(
            sweep_id=sweep_id,
            results=results,
            contact_sheet=sheet,
            cost_usd=round(sum(r.cost_usd for r in results), 2),
            elapsed_s=round(time.monotonic() - started, 3),
        )

    def _from_journal(self, result: RunResult) -> RunResult:
        """``result`` as the journal now has it: another process may have got further with the task."""
        record = self.store.get(result.task_id) if result.task_id else None
        if record is None or record == result.record:
            return result
        ok = record.status == "saved" and bool(record.video_path) and Path(record.video_path).is_file()
        cell = _Cell(result.index, result.label, record.sweep_id, self.session, None, None)
        return self._result(cell, record, ok=ok, error=None if ok else result.error)

    @staticmethod
    def _default_label(resolution: params.Resolution, number: int) -> str:
        seed = resolution.effective.get("seed")
        return f"seed {seed}" if seed is not None else f"run {number + 1}"

    def write_contact_sheet(self, sweep_id: str, results: Sequence[RunResult], prompts: Sequence[Any],
                             effective: Mapping[str, Any]) -> Path | None:
        """A header (prompt or variants, model, size, date), then one row per run (failed runs say why).

        None if nothing was saved. With prompt variants, each row shows its variant's text in full.
        """
        from PIL import Image

        from lab import frames

        texts = [" ".join(str(p or "").split()) for p in prompts]
        variants = list(dict.fromkeys(t for t in texts if t))
        header = frames.SheetHeader.for_sweep(
            variants, model=str(effective.get("model") or ""),
            resolution=f"{effective.get('size') or '?'} ({effective.get('resolution') or '?'})",
            duration=effective.get("duration"), when=datetime.datetime.now(datetime.timezone.utc))
        rows = []
        for number, result in enumerate(results):
            record = result.record
            images, stamps = [], []
            times = record.thumb_times if record is not None else []
            for path, at in zip(result.thumbs, times):
                try:
                    with Image.open(path) as image:
                        images.append(image.convert("RGB"))
                    stamps.append(at or 0.0)
                except OSError:
                    continue
            meta = [] if result.ok else [f"no video: {(result.error or result.status)[:60]}"]
            title, text = result.label or (result.task_id or "?"), ""
            if len(variants) > 1 and number < len(texts) and texts[number]:
                seed = record.seed if record is not None else None
                title = f"seed {seed}" if seed is not None else title
                text = f"{variants.index(texts[number]) + 1}. {texts[number]}"
            rows.append(frames.SheetRow(title=title, images=images, times=stamps, meta=meta, text=text))
        if not any(row.images for row in rows):
            return None
        try:
            return frames.save_contact_sheet(rows, self.files.sheet(safe_task_id(sweep_id)), header=header)
        except (OSError, ValueError) as exc:
            log.warning("contact sheet for %s failed: %s", sweep_id, exc)
            return None

    # ------------------------------------------------------------ resume

    def resume(self, on_event: Callable[[Event], None] | None = None, *, concurrency: int = 4,
               only: Collection[str] | None = None,
               on_skip: Callable[[TaskRecord], None] | None = None) -> list[RunResult]:
        """Finish every unfinished task in the journal (poll, then download). Never loses a paid one.

        Only tasks submitted to this kind of backend are resumed (a live task is not asked
        of the simulator, nor the reverse); the others stay unfinished for a later resume.
        ``only`` narrows it to these task ids (a server leaves alone the tasks it is still waiting on).
        A task another process holds a live lease on is skipped (``on_skip`` hears of it); one
        whose owner died (lease expired) is taken over. Saved videos that a killed process left
        without thumbnails get them, and finished sweeps without a contact sheet get one.
        """
        pending = [r for r in self.store.unfinished()
                   if r.base_url_kind in (None, self.backend) and (only is None or r.task_id in only)]
        if self.thumbs > 0:
            pending += [r for r in self.store.saved_without_thumbnails() if only is None or r.task_id in only]
        results: list[RunResult] = []
        if pending:
            with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(pending))), thread_name_prefix="resume") as pool:
                finished = list(pool.map(lambda n: self._resume_one(n, pending[n], on_event, on_skip), range(len(pending))))
            results = [self._from_journal(r) for r in finished if r is not None]
        if only is None:
            self._complete_contact_sheets()
            if self.screener is not None:
                for record in self.store.saved_without_screen():
                    self.prescreen(record)
        return results

    def _resume_one(self, number: int, record: TaskRecord, on_event, on_skip) -> RunResult | None:
        """Claim one task and finish it; None if it is not this owner's to do (held, or already done)."""
        cell = _Cell(index=number, label=record.variant_label, sweep_id=record.sweep_id, session=self.session,
                     reservation=None, on_event=on_event, task_id=record.task_id)
        try:
            safe_task_id(record.task_id)
        except LabError as exc:
            message = str(exc)
            return self._result(cell, self.store.update(record.task_id, status="failed", error=message), ok=False,
                                error=message)
        claimed = self.store.claim(record.task_id, self.owner, self.lease_s, owner_alive=owner_may_be_alive)
        if claimed is None:
            if on_skip is not None:
                on_skip(record)
            return None
        with self.leases.hold():
            try:
                if claimed.status == "failed":
                    return None  # finished by another owner between the listing and the claim
                if claimed.status == "saved":
                    if claimed.thumbs or self.thumbs <= 0:
                        return None
                    cell.emit("submitted", claimed.status, "saved earlier: making its thumbnails", claimed)
                    record = self._thumbnails(cell, claimed)
                    cell.emit("done", record.status, f"saved {record.video_path}", record)
                    return self._result(cell, record, ok=True)
                cell.emit("submitted", claimed.status, "resuming", claimed)
                return self._finish(cell, claimed)
            finally:
                self._release(claimed.task_id)

    def _complete_contact_sheets(self) -> None:
        """Contact sheets a killed sweep never wrote, from the journal (finished sweeps only)."""
        for sweep_id in self.store.sweeps_without_sheet():
            records = self.store.list_sweep(sweep_id)
            cells = [self._result(_Cell(n, r.variant_label, sweep_id, self.session, None, None), r,
                                  ok=r.status == "saved") for n, r in enumerate(records)]
            try:
                sheet = self.write_contact_sheet(sweep_id, cells, [r.prompt for r in records],
                                                 records[0].effective if records else {})
                if sheet is not None:
                    self.store.record_sweep(sweep_id, len(records), contact_sheet=sheet)
            except LabError as exc:
                log.warning("contact sheet for %s failed: %s", sweep_id, exc)

    def unknown_outcomes(self) -> list[IntentRecord]:
        """Submits that were sent but never named a task, and no live process is still sending:
        each may have created (and billed) a task. Never re-sent; a person checks the account."""
        return self.store.unresolved_intents(include_in_flight=False)
