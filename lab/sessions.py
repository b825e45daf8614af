"""Who a visitor is, and what of the journal they may see. Gradio-free.

A visitor's identity is the Hugging Face user they signed in as (where the
Space enables sign-in), else a random id their browser keeps
(``gr.BrowserState``), so a reload is the same session: for its spend, its
runs and its draft. The id is only ever generated here; a stored value that
does not look like one is replaced, so nobody can pose as ``hf:someone`` or
as the CLI's session by editing their browser storage.

``JournalView`` is the journal as one session may see it: History, the
Compare list, reopened sweeps and re-attached runs read through it. With
``history_scope: session`` every query is filtered by the session, and a task
or sweep of another session is as unknown as a missing one. (The run and
compare services read the journal themselves, for the runs this view handed
the page.) ``SweepState`` is a sweep's rows as the journal knows them,
``RunningWork`` the sweeps a thread of this process is running, and
``Identities`` which session each open page belongs to.

**The ownership check** every handler makes before it reads or writes a run,
a review, a sweep or a report is ``JournalView.check_owner(session,
task_ids=..., sweep_ids=...)``: it raises ``NotYours`` (a ``LabError`` worded
like a missing id) unless each one is the session's own (or the scope is
"all"). ``JournalView.may_see`` is the same as a bool. Handlers call it with
the ids they were given, whatever the page offered: a dropdown refusing a
value is not a check, and an API caller sends any value it likes.
"""

from __future__ import annotations

import re
import secrets
import threading
from dataclasses import dataclass
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Sequence

from lab.errors import NotYours
from lab.store import FINISHED_STATUSES, INTENT_OPEN_STATES, IntentRecord, Review, Store, SweepRecord, TaskRecord

HISTORY_LIMIT = 200
BROWSER_PREFIX = "b-"
HF_PREFIX = "hf:"
_BROWSER_ID = re.compile(r"b-[A-Za-z0-9_-]{24,64}")
_HF_USER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}")


def new_browser_session() -> str:
    """A fresh session id for a browser that has none (144 random bits)."""
    return BROWSER_PREFIX + secrets.token_urlsafe(18)


def valid_browser_session(value: Any) -> bool:
    return isinstance(value, str) and _BROWSER_ID.fullmatch(value) is not None


def session_identity(stored: Any, hf_username: str | None = None) -> tuple[str, str]:
    """(the session's identity, the browser id to keep in the browser).

    The signed-in Hugging Face user wins; otherwise the browser's id, or a new one
    when it has none (a new browser, cleared storage, or a value we did not make).
    """
    browser_id = stored if valid_browser_session(stored) else new_browser_session()
    if hf_username and _HF_USER.fullmatch(hf_username):
        return HF_PREFIX + hf_username, browser_id
    return browser_id, browser_id


@dataclass(frozen=True)
class SweepCell:
    """One row of a sweep as the journal knows it: its request and its latest task (None: not submitted)."""

    index: int
    label: str
    body: dict
    record: TaskRecord | None
    # No task, but a submit that may have created (and billed) one: never sent again by itself.
    outcome_unknown: bool = False
    # Why the row's latest submit named no task (not sent, refused: the journalled error).
    problem: str | None = None

    @property
    def finished(self) -> bool:
        return self.record is not None and self.record.status in FINISHED_STATUSES

    @property
    def retryable(self) -> bool:
        """Failed (not billed) or never submitted: safe to send again. An unfinished task may still bill, and so
        may a submit whose outcome is unknown."""
        if self.record is None:
            return not self.outcome_unknown
        return self.record.status == "failed"


@dataclass(frozen=True)
class SweepState:
    """A sweep's rows as the journal knows them, and whether a thread of this process still runs it."""

    sweep_id: str
    cells: tuple[SweepCell, ...]
    running: bool
    contact_sheet: str | None = None

    @property
    def open_cells(self) -> int:
        """Cells with a task the journal has no outcome for yet (it may still bill)."""
        return sum(1 for cell in self.cells if cell.record is not None and not cell.finished)

    def retry_cells(self) -> list[SweepCell]:
        """The cells "Retry failed" re-runs: only once the sweep is over, only failed or never-submitted ones."""
        if self.running:
            return []
        return [cell for cell in self.cells if cell.retryable]


@dataclass(frozen=True)
class ActiveWork:
    """What a session has in flight: ``kind`` is "sweep" (``ref`` a sweep id) or "single" (a task id)."""

    kind: str
    ref: str


class RunningWork:
    """Sweeps and runs a thread of this process is working on, per session (a reload does not stop them)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sweeps: dict[str, str] = {}  # sweep_id -> session

    def start_sweep(self, session: str, sweep_id: str) -> None:
        with self._lock:
            self._sweeps[sweep_id] = session

    def end_sweep(self, sweep_id: str) -> None:
        with self._lock:
            self._sweeps.pop(sweep_id, None)

    def sweep_running(self, sweep_id: str) -> bool:
        with self._lock:
            return sweep_id in self._sweeps

    def sweeps_of(self, session: str) -> list[str]:
        with self._lock:
            return [sweep for sweep, owner in self._sweeps.items() if owner == session]


class JournalView:
    """The journal as one session may see it (``scope`` "session": only its own; "all": everything)."""

    def __init__(self, store: Store, scope: str, running: RunningWork | None = None) -> None:
        if scope not in ("session", "all"):
            raise ValueError(f"history scope must be 'session' or 'all', not {scope!r}")
        self.store = store
        self.scope = scope
        self.running = running or RunningWork()

    def _filter(self, session: str) -> str | None:
        return session if self.scope == "session" else None

    def _may_see(self, owner: str | None, session: str) -> bool:
        return self.scope == "all" or owner == session

    # ------------------------------------------------------------ the ownership check

    def may_see(self, session: str, task_id: str | None = None, *, sweep_id: str | None = None) -> bool:
        """Whether ``session`` may see the run ``task_id`` (or the sweep ``sweep_id``): False for a missing one."""
        if task_id is None and sweep_id is None:
            return False
        if task_id is not None:
            record = self.store.get(task_id) if isinstance(task_id, str) else None
            if record is None or not self._may_see(record.session, session):
                return False
        if sweep_id is not None:
            row = self.store.sweep_row(sweep_id) if isinstance(sweep_id, str) else None
            if row is None or not self._may_see(row["session"], session):
                return False
        return True

    def check_owner(self, session: str, *, task_ids: Sequence[str] = (), sweep_ids: Sequence[str] = ()) -> None:
        """Raise ``NotYours`` unless every run and sweep named is ``session``'s own (or the scope is "all").

        The one check for every handler that reads or writes a run, review, sweep or report.
        Another session's id gets the same words as a missing one: nobody learns which ids exist.
        """
        for task_id in task_ids:
            if not self.may_see(session, task_id):
                raise NotYours(f"No run {_shown(task_id)} in the journal.")
        for sweep_id in sweep_ids:
            if not self.may_see(session, sweep_id=sweep_id):
                raise NotYours(f"No sweep {_shown(sweep_id)} in the journal.")

    def visible_ids(self, session: str) -> set[str] | None:
        """Every task id ``session`` may see (None: every one, ``history_scope: all``)."""
        if self.scope == "all":
            return None
        return self.store.task_ids(session)

    def runs(self, session: str, query: str | None = None, *, limit: int = HISTORY_LIMIT,
             review_status: str | None = None, no_issues: bool = False) -> list[TaskRecord]:
        """The runs this session may see, newest first; ``query``: prompt words (``Store.search``);
        ``review_status``: only takes whose current review status is that one; ``no_issues``: only
        takes whose pre-screen found nothing."""
        return self.store.search(query, session=self._filter(session), limit=limit,
                                 review_status=review_status or None, no_issues=no_issues)

    def run(self, session: str, task_id: str) -> TaskRecord | None:
        record = self.store.get(task_id)
        return record if record is not None and self._may_see(record.session, session) else None

    def require(self, session: str, task_id: str) -> TaskRecord:
        """The run, or LabError: another session's run is as unknown as a missing one."""
        self.check_owner(session, task_ids=[task_id])
        return self.store.get(task_id)

    def body(self, session: str, task_id: str) -> dict[str, Any]:
        """The run's body as the user wrote it (so the precedence they explored comes back too)."""
        record = self.require(session, task_id)
        return dict(record.request or record.wire)

    def video(self, session: str, task_id: str) -> str | None:
        """The run's saved video, when it is on disk."""
        record = self.require(session, task_id)
        return record.video_path if record.video_path and Path(record.video_path).is_file() else None

    def reviews(self, records: Sequence[TaskRecord]) -> dict[str, Review]:
        """The reviews of runs this session was shown."""
        return self.store.reviews(r.task_id for r in records)

    def take_reviews(self, records: Sequence[TaskRecord]) -> dict[str, Any]:
        """Status, status history and comments (lab.review) of runs this session was shown."""
        from lab.review.journal import ReviewJournal

        return ReviewJournal(self.store).takes(r.task_id for r in records)

    def screens(self, records: Sequence[TaskRecord]) -> dict[str, dict[str, Any]]:
        """The pre-screens of runs this session was shown (task id -> the screen's JSON)."""
        return self.store.screens(r.task_id for r in records)

    def ancestors(self, session: str, task_id: str) -> list[TaskRecord]:
        """Where a run came from, nearest first, as far as this session may see."""
        self.require(session, task_id)
        chain = []
        for record in self.store.lineage(task_id):
            if not self._may_see(record.session, session):
                break
            chain.append(record)
        return chain

    def children(self, session: str, task_id: str) -> list[TaskRecord]:
        """Runs started from this one that this session may see, oldest first."""
        return [r for r in self.store.children(task_id) if self._may_see(r.session, session)]

    def sweeps(self, session: str, *, limit: int = 50) -> list[SweepRecord]:
        return self.store.sweeps(limit=limit, session=self._filter(session))

    def unknown_outcomes(self, session: str) -> list[IntentRecord]:
        """Submits that may have created (and billed) a task the journal never heard of."""
        return [intent for intent in self.store.unresolved_intents(include_in_flight=False)
                if self._may_see(intent.session, session)]

    def dismiss_unknown(self, session: str, request_ids: Sequence[str]) -> int:
        """The user looked these submits up in their account: stop listing them (this session's own only)."""
        mine = {intent.request_id for intent in self.unknown_outcomes(session)}
        return self.store.mark_intents_checked([rid for rid in request_ids if rid in mine])

    def sweep(self, session: str, sweep_id: str) -> SweepState | None:
        """A sweep's rows from the journal: its plan, each cell's latest task, whether it still runs."""
        row = self.store.sweep_row(sweep_id)
        if row is None or not self._may_see(row["session"], session):
            return None
        plan, tasks = row["plan"], self.store.list_sweep(sweep_id)
        latest: dict[str, TaskRecord] = {}
        for record in tasks:  # oldest first: a retry's task replaces the failed one
            latest[record.variant_label or record.task_id] = record
        if not plan:  # a sweep journalled before plans were kept: its tasks are its rows
            plan = [{"label": label, "body": record.request} for label, record in latest.items()]
        unknown: set[str | None] = set()
        problems: dict[str | None, str] = {}
        for intent in self.store.sweep_submits_without_task(sweep_id):  # oldest first: the latest says why
            if intent.state in INTENT_OPEN_STATES:
                unknown.add(intent.variant_label)
            problems[intent.variant_label] = intent.error or f"not sent ({intent.state})"
        cells = tuple(SweepCell(index, str(item.get("label")), dict(item.get("body") or {}),
                                latest.get(str(item.get("label"))), str(item.get("label")) in unknown,
                                problems.get(str(item.get("label"))))
                      for index, item in enumerate(plan))
        # Running here, or leased by another process (a replica behind the same load balancer, a CLI sweep).
        running = self.running.sweep_running(sweep_id) or row["leased"]
        return SweepState(sweep_id, cells, running, row["contact_sheet"])

    def latest_sweep(self, session: str) -> str | None:
        """The session's newest sweep (its own, whatever the scope): a reloaded page shows it again."""
        running = self.running.sweeps_of(session) or self.store.leased_sweeps(session)
        if running:
            return running[-1] if self.running.sweeps_of(session) else running[0]
        own = self.store.sweeps(limit=1, session=session)
        return own[0].sweep_id if own else None

    def latest_single(self, session: str) -> TaskRecord | None:
        """The session's newest single run (not part of a sweep)."""
        for record in self.store.list_runs(limit=50, session=session):
            if not record.sweep_id:
                return record
        return None

    def active(self, session: str, waited_on: Callable[[TaskRecord], bool]) -> ActiveWork | None:
        """The session's run or sweep still in flight, here or in another process or replica (``waited_on``:
        a wait holds the task)."""
        running = self.running.sweeps_of(session)
        if running:
            return ActiveWork("sweep", running[-1])
        elsewhere = self.store.leased_sweeps(session)
        if elsewhere:
            return ActiveWork("sweep", elsewhere[0])
        single = self.latest_single(session)
        if single is not None and single.status not in FINISHED_STATUSES and waited_on(single):
            return ActiveWork("single", single.task_id)
        return None


def _shown(value: Any) -> str:
    """An id as a message quotes it: repr (no markup, no control characters), cut when long."""
    text = value if isinstance(value, str) else str(type(value).__name__)
    return repr(text if len(text) <= 80 else text[:77] + "...")


class Identities:
    """Which session each page (Gradio's per-page ``session_hash``) belongs to, set when the page loads.

    Bounded: the oldest pages are forgotten first (a forgotten page falls back to its own hash,
    i.e. a session of its own, never someone else's).
    """

    def __init__(self, limit: int = 20000) -> None:
        self._lock = threading.Lock()
        self._pages: OrderedDict[str, str] = OrderedDict()
        self._limit = limit

    def bind(self, page: str, session: str) -> None:
        with self._lock:
            self._pages[page] = session
            self._pages.move_to_end(page)
            while len(self._pages) > self._limit:
                self._pages.popitem(last=False)

    def bound(self, page: str) -> str | None:
        """The session a loaded page was bound to; None for a page never loaded (an API client)."""
        with self._lock:
            return self._pages.get(page)

    def of(self, page: str) -> str:
        with self._lock:
            return self._pages.get(page, page)
