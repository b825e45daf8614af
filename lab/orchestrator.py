"""Runs, sweeps and resume for the UI and the API: the runner plus what sits around it in a server.

Gradio-free; built by ``lab.wiring.open_app`` (the UI gets it as ``AppServices.runs``).
Around ``Runner`` it adds: a visitor's own key (a runner for one call), the set of
tasks this process is still waiting on (``InFlight``, so "Fetch unfinished" never
polls a task twice), and a sweep's contact sheet and ZIP. Outcomes are read from the
journal (view-models from ``lab.presentation``): a waited-for run, a re-attached one
and a sweep after its run or its retry all show what the journal has. The API key
stays inside the wiring.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from lab import params, sweeps
from lab.access import visitor_key_problem
from lab.client import VideosClient
from lab.errors import LabError, RequestInvalid
from lab.export import export_zip
from lab.leases import live_lease
from lab.presentation import RunOutcome, SweepOutcome
from lab.runner import Event, RunResult, Runner
from lab.store import Store, TaskRecord
from lab.sessions import JournalView, RunningWork, SweepCell
from lab.sweeps import SweepItem, SweepPlan
from lab.waits import InFlight

if TYPE_CHECKING:  # wiring builds the orchestrator: only the type comes from there
    from lab.wiring import Wiring


@dataclass(frozen=True)
class ResumeReport:
    """What one "Fetch unfinished" did: tasks it finished, tasks it left to the waits holding them."""

    results: list[RunResult]
    held: list[str]
    busy: bool = False  # another fetch was already running


class Orchestrator:
    """The lab's verbs for one process, shared by all sessions."""

    def __init__(self, wiring: "Wiring") -> None:
        self.wiring = wiring
        self.in_flight = InFlight()
        self._resume_lock = threading.Lock()
        # Sweeps a thread here is still working through (a reload re-attaches to them), and the
        # journal as each session may see it (history_scope).
        self.running = RunningWork()
        self.journal = JournalView(wiring.store, wiring.settings.history_scope, self.running)

    @property
    def store(self) -> Store:
        return self.wiring.store

    @property
    def backend(self) -> str:
        return self.wiring.backend

    def close(self) -> None:
        self.wiring.close()

    # ------------------------------------------------------------ around the runs

    def median_elapsed(self, resolution: params.Resolution) -> float | None:
        eff = resolution.effective
        if not (eff.get("model") and eff.get("resolution") and eff.get("duration")):
            return None
        return self.store.median_elapsed(eff["model"], eff["resolution"], eff["duration"])

    def sweep_zip(self, sweep_id: str) -> Path | None:
        """The sweep's ZIP export, when it has been written."""
        path = self.wiring.files.export(sweep_id)
        return path if path.is_file() else None

    @contextmanager
    def _runner_for(self, visitor_key: str | None) -> Iterator[tuple[Runner, VideosClient]]:
        if not visitor_key:
            yield self.wiring.runner, self.wiring.client
            return
        problem = visitor_key_problem(visitor_key, self.wiring.settings.allow_visitor_key)
        if problem:
            raise RequestInvalid(problem)
        with self.wiring.runner_with_key(visitor_key) as pair:
            yield pair

    @contextmanager
    def _tracked(self, on_event: Callable[[Event], None] | None) -> Iterator[Callable[[Event], None]]:
        """An on_event that also records which tasks this run is waiting on."""
        with self.in_flight.run() as track:
            def tracking(event: Event) -> None:
                if event.task_id and event.kind in ("submitted", "done"):
                    track(event.task_id, event.kind == "submitted")
                if on_event is not None:
                    on_event(event)
            yield tracking

    # ------------------------------------------------------------ runs

    def run_one(self, body: dict, *, session: str, on_event: Callable[[Event], None] | None,
                visitor_key: str | None = None, as_written: bool = False,
                image: params.ImageFacts | None = None, person: str | None = None,
                parent_task_id: str | None = None) -> RunOutcome:
        """Generate one video; raises LabError only when no task was created.

        ``as_written`` sends the body itself, not its canonical form (raw mode). ``image``: the
        body's reference image as the caller already read it (not read again). ``person``
        (``lab.people``): whose daily cap and submit rate it counts against. ``parent_task_id``:
        the run it was started from (journalled with what changed), when it is the session's to see.
        """
        if parent_task_id and not self.journal.may_see(session, parent_task_id):
            parent_task_id = None
        with self._runner_for(visitor_key) as (runner, _client), self._tracked(on_event) as tracking:
            result = runner.run_one(body, on_event=tracking, session=session, as_written=as_written, image=image,
                                    person=person, parent_task_id=parent_task_id)
        delivered = result.record.delivered if result.ok and result.record is not None else None
        return RunOutcome.of(result, backend=self.backend, delivered=delivered)

    def ended_outcome(self, record: TaskRecord) -> RunOutcome:
        """A journalled run that has ended (one a page stopped waiting for), as a waited-for run shows it."""
        saved = record.status == "saved" and record.video_path and Path(record.video_path).is_file()
        return RunOutcome.of_record(record, backend=self.backend, delivered=record.delivered if saved else None)

    # ------------------------------------------------------------ sweeps: the limit is the runner's

    @property
    def max_sweep(self) -> int:
        return self.wiring.runner.max_sweep

    def count_sweep(self, seeds_text: str | None, random_count: Any, variants_text: str | None) -> int:
        """How many tasks these fields ask for (``max_sweep + 1`` for anything past the limit). RequestInvalid."""
        return sweeps.count_tasks(seeds_text, random_count, variants_text, max_sweep=self.max_sweep)

    def plan_sweep(self, body: dict, *, seeds_text: str | None = None, random_count: Any = 0,
                   variants_text: str | None = None, image: params.ImageFacts | None = None) -> SweepPlan:
        """The checked plan of a sweep under the lab's limit (``image``: already read). Raises RequestInvalid."""
        return self.wiring.runner.plan_sweep(body, image=image, seeds_text=seeds_text, random_count=random_count,
                                             variants_text=variants_text)

    def run_sweep(self, plan: SweepPlan, *, session: str, on_event: Callable[[Event], None] | None,
                  visitor_key: str | None = None, sweep_id: str | None = None,
                  person: str | None = None) -> SweepOutcome:
        """Run a checked plan (``plan_sweep``; ``retry_plan`` with its sweep's id), then write the whole sweep's
        contact sheet and ZIP from each row's latest task in the journal.

        ``sweep_id`` (default: a new one): an existing sweep's id runs ``plan``'s rows into that sweep
        (a retry). While it runs, a reloaded page of ``session`` re-attaches to it.
        """
        sweep_id = sweep_id or new_sweep_id()
        started = time.monotonic()
        outcome: list[SweepOutcome] = []

        def finish(results: tuple[RunResult, ...]) -> None:
            # Each result at its row (a retry runs only some rows of its sweep).
            ran = {item.index: dataclasses.replace(r, index=item.index) for item, r in zip(plan.items, results)}
            outcome.append(self._sweep_outcome(sweep_id, session, ran, plan.resolutions[0].effective, visitor_key,
                                               time.monotonic() - started))

        self.running.start_sweep(session, sweep_id)
        try:
            with self._runner_for(visitor_key) as (runner, _client), self._tracked(on_event) as tracking:
                # The sheet and ZIP are written while the sweep is leased (finish): another replica's page
                # shows it running until they exist.
                runner.run_sweep(plan, concurrency=self.wiring.settings.max_concurrent_per_session,
                                 on_event=tracking, session=session, sweep_id=sweep_id, person=person,
                                 contact_sheet=False, finish=finish)
            return outcome[0]
        finally:
            self.running.end_sweep(sweep_id)

    def _sweep_outcome(self, sweep_id: str, session: str, ran: dict[int, RunResult], effective: dict,
                       visitor_key: str | None, elapsed_s: float) -> SweepOutcome:
        """The sweep as the journal has it now: every row's latest task, one contact sheet and one ZIP of them."""
        state = self.journal.sweep(session, sweep_id)
        cells = state.cells if state is not None else ()
        results = tuple(ran.get(cell.index) or _result_of(cell) for cell in cells) or tuple(ran.values())
        prompts = [cell.body.get("prompt") for cell in cells] or [r.record.prompt if r.record else None
                                                                 for r in results]
        sheet = self.wiring.runner.write_contact_sheet(sweep_id, results, prompts, effective)
        if sheet is not None:
            self.store.record_sweep(sweep_id, len(results), contact_sheet=sheet)
        records = [(r.label, r.record) for r in results if r.record is not None]
        zip_path = export_zip(records, self.wiring.files.export(sweep_id), contact_sheet=sheet,
                              sweep_id=sweep_id,
                              secrets=[*self.wiring.secrets, *([visitor_key] if visitor_key else [])]) if records else None
        return SweepOutcome(results=results, contact_sheet=str(sheet) if sheet else None,
                            zip_path=str(zip_path) if zip_path else None,
                            cost_usd=round(sum(r.cost_usd for r in results), 2), elapsed_s=round(elapsed_s, 3),
                            sweep_id=sweep_id)

    def resume(self, session: str | None = None) -> ResumeReport:
        """Finish the journal's unfinished tasks that no wait of this process holds (one resume at a time).

        With ``session``, only the tasks that session may see (a visitor's Fetch unfinished neither
        touches nor names another's runs). A task some run here is still waiting on (also after
        "Stop waiting") is left to that wait: polling it a second time would race its download.
        """
        if not self._resume_lock.acquire(blocking=False):
            return ResumeReport([], [], busy=True)
        try:
            mine = [r for r in self.store.unfinished() if r.base_url_kind in (None, self.backend)
                    and (session is None or self.journal.may_see(session, r.task_id))]
            held = [r.task_id for r in mine if self.in_flight.holds(r.task_id, r.created_at)]
            todo = [r.task_id for r in mine if r.task_id not in held]
            if not todo:
                return ResumeReport([], held)
            self.in_flight.claim(todo)
            try:
                results = self.wiring.runner.resume(concurrency=self.wiring.settings.max_concurrent_per_session,
                                                    only=set(todo))
            finally:
                self.in_flight.release(todo)
            return ResumeReport(results, held)
        finally:
            self._resume_lock.release()

    def retry_plan(self, sweep_id: str, session: str) -> SweepPlan | None:
        """A finished sweep's failed and never-submitted rows as a plan, with their exact requests (None: none).

        Run it with ``run_sweep(plan, sweep_id=sweep_id)``: into the same rows, then the whole sweep's sheet and ZIP.
        """
        state = self.journal.sweep(session, sweep_id)
        if state is None:
            raise LabError(f"No sweep {sweep_id!r} in the journal.")
        items = [SweepItem(cell.index, cell.label, cell.body, _seed_of(cell.body),
                           parent_task_id=cell.record.task_id if cell.record is not None else None)
                 for cell in state.retry_cells()]
        return self.wiring.runner.plan_rows(items) if items else None

    def waited_on(self, record: TaskRecord) -> bool:
        """Whether a wait still holds the task (it will land in the journal by itself): one of this process,
        or another process's live lease as ``record`` (read from the journal) shows it (a replica, a resume)."""
        if self.in_flight.holds(record.task_id, record.created_at):
            return True
        return live_lease(record.lease_owner, record.lease_expires)


def new_sweep_id() -> str:
    return f"sweep_{time.strftime('%Y%m%d_%H%M%S')}_{uuid.uuid4().hex[:6]}"


def _result_of(cell: SweepCell) -> RunResult:
    """A row this run did not send (a retry sends only some), as the journal has it."""
    record = cell.record
    if record is None:
        return RunResult(ok=False, task_id=None, status="not_submitted", record=None, label=cell.label,
                         index=cell.index, error="not submitted")
    return RunResult(ok=record.status == "saved", task_id=record.task_id, status=record.status, record=record,
                     video_path=Path(record.video_path) if record.video_path else None,
                     thumbs=tuple(Path(p) for p in record.thumb_paths), cost_usd=record.cost_usd or 0.0,
                     error=record.error, label=cell.label, index=cell.index)


def _seed_of(body: dict) -> int:
    metadata = body.get("metadata") if isinstance(body, dict) else None
    seed = metadata.get("seed") if isinstance(metadata, dict) else None
    return seed if isinstance(seed, int) else 0
