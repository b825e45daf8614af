"""The journal: every task recorded the moment it has a task id, and history to query.

One row per task in ``tasks``; sweeps in ``sweeps``. The schema evolves only
through the numbered ``MIGRATIONS`` below (append, never edit), each applied
once and recorded in ``_migrations``; a database is migrated wherever it is
opened. Videos and thumbnails stay on disk; the journal holds their paths.
The API key is never stored: nothing here has a column for it.

The database is SQLite (a file in the data directory, the default) or
PostgreSQL (several replicas on one server), opened from a path or URL by
``lab.db``: the statements here are SQLite's, written portably, and ``lab.db``
translates them; what differs in kind (the write lock, prompt search) is behind
its ``Database``. Thread-safe: one connection guarded by a lock.
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from lab import params
from lab.datadir import DataDir
from lab.db import Database, Transaction, connect
from lab.errors import StoreError

# Journal statuses. "queued"/"in_progress"/"unknown" mirror the server; "completed" means
# the server finished (and billed) but the video is not saved yet; "saved" is the end of
# a good run; "failed" is the end of a failed one (not billed).
FINISHED_STATUSES = ("saved", "failed")

_JSON_FIELDS = ("request", "effective", "wire", "thumbs", "final_answer", "parent_changes")
# JSON columns that hold a list (the others hold an object).
_LIST_FIELDS = ("thumbs", "parent_changes")
_REAL_FIELDS = ("created_at", "updated_at", "cost_usd", "submitted_at", "completed_at", "saved_at", "elapsed_s",
                "lease_expires")
# A take's current review status: its latest status event (ties by event id, as lab.review orders them).
_REVIEW_STATUS_IS = ("COALESCE((SELECT e.status_to FROM review_status_events e WHERE e.task_id = {table}.task_id "
                     "ORDER BY e.at DESC, e.event_id DESC LIMIT 1), 'needs_review') = ?")
# Status only moves forward: a writer with a stale view never turns "saved" back, nor reopens an end.
_STATUS_RANK = {"queued": 0, "in_progress": 0, "unknown": 0, "completed": 1, "saved": 2, "failed": 2}


# ---------------------------------------------------------------- migrations


def _m001_tasks(db: Transaction) -> None:
    db.execute(
        """
        CREATE TABLE tasks (
            task_id TEXT PRIMARY KEY,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            status TEXT NOT NULL,
            model TEXT,
            prompt TEXT,
            request TEXT,
            effective TEXT,
            wire TEXT,
            seed INTEGER,
            resolution TEXT,
            aspect_ratio TEXT,
            duration TEXT,
            size TEXT,
            sweep_id TEXT,
            variant_label TEXT,
            video_path TEXT,
            thumbs TEXT NOT NULL DEFAULT '[]',
            preview_path TEXT,
            cost_usd REAL,
            error TEXT,
            submitted_at REAL,
            completed_at REAL,
            saved_at REAL,
            elapsed_s REAL,
            base_url_kind TEXT
        )
        """
    )
    db.execute("CREATE INDEX tasks_created ON tasks (created_at)")
    db.execute("CREATE INDEX tasks_status ON tasks (status)")
    db.execute("CREATE INDEX tasks_sweep ON tasks (sweep_id)")


def _m002_sweeps(db: Transaction) -> None:
    db.execute(
        """
        CREATE TABLE sweeps (
            sweep_id TEXT PRIMARY KEY,
            created_at REAL NOT NULL,
            task_count INTEGER NOT NULL DEFAULT 0,
            contact_sheet TEXT,
            note TEXT
        )
        """
    )


def _m003_sessions_and_reservations(db: Transaction) -> None:
    # Whose run a task or sweep is (history scope, session caps), and money held for runs not yet
    # journalled as tasks: shared by every process on the data directory (lab.budget).
    db.execute("ALTER TABLE tasks ADD COLUMN session TEXT")
    db.execute("CREATE INDEX tasks_session ON tasks (session, created_at)")
    db.execute("ALTER TABLE sweeps ADD COLUMN session TEXT")
    db.execute("ALTER TABLE sweeps ADD COLUMN plan TEXT")
    db.execute(
        """
        CREATE TABLE spend_reservations (
            reservation_id TEXT PRIMARY KEY,
            session TEXT NOT NULL,
            held_usd REAL NOT NULL,
            created_at REAL NOT NULL,
            owner TEXT NOT NULL
        )
        """
    )


def _m004_reviews(db: Transaction) -> None:
    # A person's verdict on a run, apart from the task row the runner writes.
    db.execute(
        """
        CREATE TABLE reviews (
            task_id TEXT PRIMARY KEY,
            rating INTEGER CHECK (rating IN (-1, 1)),
            note TEXT NOT NULL DEFAULT '',
            picked INTEGER NOT NULL DEFAULT 0,
            updated_at REAL NOT NULL
        )
        """
    )


def _m005_reference_images(db: Transaction) -> None:
    # Image-to-video: the kept copy of the reference image (<data_dir>/images/<sha256>.<ext>) and
    # its hash, so history, re-run and compare find and reuse the same image.
    db.execute("ALTER TABLE tasks ADD COLUMN image_path TEXT")
    db.execute("ALTER TABLE tasks ADD COLUMN image_sha256 TEXT")


def _m006_intents(db: Transaction) -> None:
    # Write-ahead: a row per submit, written before the POST, so a request whose answer never
    # arrived (a kill, a dropped connection) is still known. ``body`` is the exact wire text.
    db.execute(
        """
        CREATE TABLE intents (
            request_id TEXT PRIMARY KEY,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            state TEXT NOT NULL,
            backend TEXT,
            body TEXT NOT NULL,
            request TEXT,
            prompt TEXT,
            sweep_id TEXT,
            variant_label TEXT,
            task_id TEXT,
            gateway_request_id TEXT,
            error TEXT,
            lease_owner TEXT,
            lease_expires REAL
        )
        """
    )
    db.execute("CREATE INDEX intents_state ON intents (state)")
    db.execute("ALTER TABLE tasks ADD COLUMN request_id TEXT")
    db.execute("ALTER TABLE tasks ADD COLUMN gateway_request_id TEXT")


def _m007_task_leases(db: Transaction) -> None:
    # One owner per task at a time: whoever polls, downloads or thumbnails a task holds its lease
    # (lab.leases); another process skips it until the lease expires (its owner died).
    db.execute("ALTER TABLE tasks ADD COLUMN lease_owner TEXT")
    db.execute("ALTER TABLE tasks ADD COLUMN lease_expires REAL")


def _m008_final_answer(db: Transaction) -> None:
    # The server's own last word on the task (GET /videos/{id} when completed or failed), kept so
    # history shows what the server said without asking it again.
    db.execute("ALTER TABLE tasks ADD COLUMN final_answer TEXT")


def _m009_prompt_search(db: Transaction) -> None:
    # Full-text search over prompts (python -m lab history -q), in the database's own terms
    # (SQLite: an FTS5 index kept by triggers; PostgreSQL: a GIN index over to_tsvector).
    db.database.create_prompt_search(db)


def _m010_intent_session(db: Transaction) -> None:
    # Whose submit it was, so History shows a visitor only their own unknown outcomes.
    db.execute("ALTER TABLE intents ADD COLUMN session TEXT")


def _m011_screens(db: Transaction) -> None:
    # The pre-screen of each saved take (lab.prescreen): what it found as JSON, and how many
    # badges (0: no issues found, -1: it could not run) so History can filter on it.
    db.execute(
        """
        CREATE TABLE screens (
            task_id TEXT PRIMARY KEY,
            screened_at REAL NOT NULL,
            issues INTEGER NOT NULL,
            result TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX screens_issues ON screens (issues)")


def _m012_lineage(db: Transaction) -> None:
    # Take lineage: the run a new run was started from (History's load/re-run, Use this seed,
    # Retry failed, a report's re-run) and which effective fields it changed (JSON list).
    db.execute("ALTER TABLE tasks ADD COLUMN parent_task_id TEXT")
    db.execute("ALTER TABLE tasks ADD COLUMN parent_changes TEXT")
    db.execute("CREATE INDEX tasks_parent ON tasks (parent_task_id)")


def _m013_sweep_lease(db: Transaction) -> None:
    # Which process runs a sweep now (renewed like a task's lease): a page reloaded on another replica,
    # or beside a CLI sweep, sees it is still running and fills it from the journal.
    db.execute("ALTER TABLE sweeps ADD COLUMN lease_owner TEXT")
    db.execute("ALTER TABLE sweeps ADD COLUMN lease_expires REAL")


def _m014_review_comments_and_status(db: Transaction) -> None:
    # Review that comes back (lab.review): comments pinned to a take and a time or range, with their
    # drawing as JSON shapes in 0-1 frame coordinates, and status changes as events that are never
    # overwritten (the current status is the latest). Ids are UUIDs made where the review was written,
    # so an import inserts what is not there yet and importing twice adds nothing.
    db.execute(
        """
        CREATE TABLE review_comments (
            comment_id TEXT PRIMARY KEY,
            task_id TEXT NOT NULL,
            t_in REAL NOT NULL,
            t_out REAL,
            body TEXT NOT NULL,
            written_by TEXT NOT NULL,
            created_at REAL NOT NULL,
            shapes TEXT NOT NULL,
            session TEXT,
            recorded_at REAL NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX review_comments_task ON review_comments (task_id, t_in)")
    db.execute(
        """
        CREATE TABLE review_status_events (
            event_id TEXT PRIMARY KEY,
            task_id TEXT NOT NULL,
            status_from TEXT NOT NULL,
            status_to TEXT NOT NULL,
            written_by TEXT NOT NULL,
            at REAL NOT NULL,
            session TEXT,
            recorded_at REAL NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX review_status_task ON review_status_events (task_id, at)")


def _m015_delivered_video(db: Transaction) -> None:
    # What the saved video is (pixel size, seconds), read once by the thumbnails' scan and shown beside
    # the lab's prediction; before this, every finished run probed its video again with ffmpeg.
    db.execute("ALTER TABLE tasks ADD COLUMN video_size TEXT")
    db.execute("ALTER TABLE tasks ADD COLUMN video_duration_s REAL")


def _m016_thumbs_with_times(db: Transaction) -> None:
    # Thumbnails journalled before their frame times were (bare paths) get the one shape,
    # {"path", "t": null}, so readers need not know both. A data migration: a few old rows, rewritten once.
    rows = db.execute("SELECT task_id, thumbs FROM tasks WHERE thumbs LIKE ?", ('["%',)).fetchall()
    for row in rows:
        try:
            thumbs = json.loads(row["thumbs"])
        except ValueError:
            continue
        shaped = [t if isinstance(t, dict) else {"path": str(t), "t": None} for t in thumbs]
        db.execute("UPDATE tasks SET thumbs = ? WHERE task_id = ?", (json.dumps(shaped), row["task_id"]))


def _m017_compare_offsets(db: Transaction) -> None:
    # Per-take offsets (in frames) of a comparison, so takes whose action starts at different
    # moments line up; kept per set of runs (its task ids, sorted and joined) and carried into reports.
    db.execute(
        """
        CREATE TABLE compare_offsets (
            set_ids TEXT NOT NULL,
            task_id TEXT NOT NULL,
            frames INTEGER NOT NULL,
            updated_at REAL NOT NULL,
            PRIMARY KEY (set_ids, task_id)
        )
        """
    )


def _m018_people(db: Transaction) -> None:
    # The person behind a task or a reservation (a Hugging Face user or a client address, lab.people):
    # the per-person cap sums them across sessions. submit_starts: each start of a person's run or sweep
    # and its task count, for the per-person submit rate, counted in the caps' transaction.
    db.execute("ALTER TABLE tasks ADD COLUMN person TEXT")
    db.execute("CREATE INDEX tasks_person ON tasks (person, completed_at)")
    db.execute("ALTER TABLE spend_reservations ADD COLUMN person TEXT")
    db.execute(
        """
        CREATE TABLE submit_starts (
            start_id TEXT PRIMARY KEY,
            person TEXT NOT NULL,
            started_at REAL NOT NULL,
            tasks INTEGER NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX submit_starts_person ON submit_starts (person, started_at)")


def _m019_review_comment_events(db: Transaction) -> None:
    # A comment's edits and deletions (lab.review): events with ids of their own, never an UPDATE or a
    # DELETE of the comment, so they merge like comments (twice is once, any order). kind "edit" carries
    # the new text; "delete" is a tombstone.
    db.execute(
        """
        CREATE TABLE review_comment_events (
            event_id TEXT PRIMARY KEY,
            comment_id TEXT NOT NULL,
            task_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            body TEXT NOT NULL,
            written_by TEXT NOT NULL,
            at REAL NOT NULL,
            session TEXT,
            recorded_at REAL NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX review_comment_events_task ON review_comment_events (task_id)")


# Append only. Each function runs once per database, in order, inside a transaction.
MIGRATIONS: list[Callable[[Transaction], None]] = [
    _m001_tasks, _m002_sweeps, _m003_sessions_and_reservations, _m004_reviews, _m005_reference_images,
    _m006_intents, _m007_task_leases, _m008_final_answer, _m009_prompt_search,
    _m010_intent_session, _m011_screens, _m012_lineage, _m013_sweep_lease,
    _m014_review_comments_and_status, _m015_delivered_video, _m016_thumbs_with_times,
    _m017_compare_offsets, _m018_people, _m019_review_comment_events,
]


def migrate(database: Database) -> list[str]:
    """Apply the migrations this database has not seen; returns their names.

    All in one write transaction that takes the journal's write lock up front
    (``Database.immediate``), so two processes or replicas opening a new journal at
    once cannot both run the same migration: the second finds them done.
    """
    with database.immediate() as db:
        db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
        done = {row[0] for row in db.execute("SELECT name FROM _migrations")}
        applied = []
        for migration in MIGRATIONS:
            name = migration.__name__.lstrip("_")
            if name in done:
                continue
            migration(db)
            db.execute("INSERT INTO _migrations (name, applied_at) VALUES (?, ?)", (name, time.time()))
            applied.append(name)
    return applied


# ---------------------------------------------------------------- records


@dataclass(frozen=True)
class TaskRecord:
    """One journalled task. Times are Unix seconds (float). Never holds the API key."""

    task_id: str
    created_at: float
    updated_at: float
    status: str
    model: str | None = None
    prompt: str | None = None
    request: dict = field(default_factory=dict)  # the raw body as the user wrote it
    effective: dict = field(default_factory=dict)  # params.resolve(...).effective
    wire: dict = field(default_factory=dict)  # what was POSTed
    seed: int | None = None
    resolution: str | None = None
    aspect_ratio: str | None = None
    duration: str | None = None
    size: str | None = None
    sweep_id: str | None = None
    variant_label: str | None = None
    video_path: str | None = None
    thumbs: list = field(default_factory=list)
    preview_path: str | None = None
    cost_usd: float | None = None
    error: str | None = None
    submitted_at: float | None = None
    completed_at: float | None = None
    saved_at: float | None = None
    elapsed_s: float | None = None
    base_url_kind: str | None = None  # "simulator", "live" or "visitor"
    session: str | None = None  # the visitor (browser session or signed-in user) who ran it
    image_path: str | None = None  # image-to-video: the kept copy of the reference image
    image_sha256: str | None = None
    request_id: str | None = None  # the intent this task came from (client-side id)
    gateway_request_id: str | None = None  # the gateway's X-Oneapi-Request-Id for the submit
    lease_owner: str | None = None  # the process working on it now (lab.leases), if any
    lease_expires: float | None = None
    final_answer: dict = field(default_factory=dict)  # the server's answer when the task completed or failed
    parent_task_id: str | None = None  # the run this one was started from (lineage), if any
    parent_changes: list = field(default_factory=list)  # effective fields that differ from the parent's
    video_size: str | None = None  # what the saved video is ("1280x720"), from the thumbnails' scan
    video_duration_s: float | None = None
    person: str | None = None  # who pays (lab.people: "hf:<user>" or "ip:<address>"); None: the CLI

    @property
    def thumb_paths(self) -> list[str]:
        """Thumbnail files in order (``thumbs`` holds ``{"path", "t"}``)."""
        return [str(t["path"]) for t in self.thumbs]

    @property
    def thumb_times(self) -> list[float | None]:
        """Each thumbnail's frame time in seconds, as journalled (None for rows that predate it: migration 016)."""
        return [None if t.get("t") is None else float(t["t"]) for t in self.thumbs]

    @property
    def delivered(self) -> dict[str, Any] | None:
        """The saved video's pixel size and length, to set beside the prediction (None until its thumbnails are made)."""
        if self.video_size is None:
            return None
        return {"size": self.video_size, "duration_s": self.video_duration_s}

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# Intent states. "sending": journalled, POST under way (or the process died during it);
# "created": the answer named a task (task_id set); "not_sent": nothing reached the server;
# "refused": the server answered an error, no task exists; "unknown": the request may have
# reached the server but no answer named a task: it may have been created and billed;
# "checked": such a submit the user looked up in their account and dismissed (no longer listed).
INTENT_OPEN_STATES = ("sending", "unknown")
UNKNOWN_OUTCOME = (
    "sent, outcome unknown: may have been created and billed. Check the task list of the account "
    "that sent it; the lab never re-sends it by itself"
)
# A submit of unknown outcome keeps holding its price against the spend caps (lab.budget) in a
# spend_reservations row of this id and owner, until the user dismisses it (``mark_intents_checked``).
UNKNOWN_HOLD_OWNER = "unknown-outcome"


def unknown_hold_id(request_id: str) -> str:
    return f"unknown:{request_id}"


@dataclass(frozen=True)
class IntentRecord:
    """One submit, journalled before its POST. ``body`` is the exact JSON text sent."""

    request_id: str
    created_at: float
    updated_at: float
    state: str
    backend: str | None
    body: str
    request: dict
    prompt: str | None
    sweep_id: str | None
    variant_label: str | None
    task_id: str | None
    gateway_request_id: str | None
    error: str | None
    lease_owner: str | None
    lease_expires: float | None
    session: str | None = None

    def in_flight(self, now: float | None = None) -> bool:
        """Still being sent by a live process (its lease is held), so not yet an unknown outcome."""
        return self.state == "sending" and (self.lease_expires or 0.0) > (time.time() if now is None else now)

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["outcome"] = "in_flight" if self.in_flight() else (UNKNOWN_OUTCOME if self.state in INTENT_OPEN_STATES else self.state)
        return data


_INTENT_COLUMNS = tuple(f.name for f in fields(IntentRecord))


def _intent_from_row(row: Any) -> IntentRecord:
    values = {name: row[name] for name in _INTENT_COLUMNS}
    values["request"] = json.loads(values["request"]) if values["request"] else {}
    return IntentRecord(**values)


@dataclass(frozen=True)
class SweepRecord:
    sweep_id: str
    created_at: float
    task_count: int
    contact_sheet: str | None
    note: str | None
    saved: int
    failed: int
    cost_usd: float


@dataclass(frozen=True)
class Review:
    """A person's verdict on one run: rating +1 (👍), -1 (👎) or None, a note, picked or not."""

    task_id: str
    rating: int | None = None
    note: str = ""
    picked: bool = False
    updated_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"rating": self.rating, "note": self.note, "picked": self.picked}


REVIEW_NOTE_MAX_CHARS = 2000
_UNSET: Any = object()


COLUMNS = tuple(f.name for f in fields(TaskRecord))
UPDATABLE = frozenset(COLUMNS) - {"task_id", "created_at"}


def _to_row(name: str, value: Any) -> Any:
    if name in _JSON_FIELDS:
        return json.dumps(value if value is not None else ([] if name in _LIST_FIELDS else {}))
    if isinstance(value, Path):
        return str(value)
    return value


def _from_row(row: Any) -> TaskRecord:
    values = {}
    for name in COLUMNS:
        value = row[name]
        if name in _JSON_FIELDS:
            value = json.loads(value) if value else ([] if name in _LIST_FIELDS else {})
        elif name in _REAL_FIELDS and value is not None:
            value = float(value)
        values[name] = value
    return TaskRecord(**values)


def _forward_only(current: str, changes: dict[str, Any]) -> dict[str, Any]:
    """``changes`` minus what would move a task's status back or attach an error to a saved video."""
    new = changes.get("status")
    if new is not None and new != current:
        if current in FINISHED_STATUSES or _STATUS_RANK.get(new, 0) < _STATUS_RANK.get(current, 0):
            return {}
    if (new or current) == "saved" and changes.get("error") is not None:
        changes = {name: value for name, value in changes.items() if name != "error"}
    return changes


def _start_of_today_utc() -> float:
    today = dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return today.timestamp()


# ---------------------------------------------------------------- the store


class Store:
    """The journal at ``location`` (created and migrated on open): a SQLite file's path, or a database URL.

    ``path`` is the SQLite file (None on PostgreSQL); ``location`` names the journal in messages
    (a PostgreSQL URL without its password).
    """

    def __init__(self, location: str | Path) -> None:
        self._db = connect(location)
        self.path = self._db.path
        self.location = self._db.display
        self.dialect = self._db.dialect
        self._lock = self._db._lock
        try:
            migrate(self._db)
        except BaseException:
            self._db.close()
            raise

    def __repr__(self) -> str:
        return f"Store({self.location!r})"

    @property
    def database(self) -> Database:
        return self._db

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _execute(self, sql: str, args: tuple | list = ()) -> list[Any]:
        return self._db.execute(sql, args)

    @contextmanager
    def immediate(self) -> Iterator[Transaction]:
        """One write transaction that every process on this journal serialises on (SQLite's BEGIN
        IMMEDIATE; PostgreSQL's advisory lock of this journal, taken first).

        For counters shared across processes and replicas (the spend caps, leases): read and write inside it.
        """
        with self._db.immediate() as db:
            yield db

    def migrations(self) -> list[str]:
        """Names of the migrations applied to this database, in order."""
        return [row["name"] for row in self._execute("SELECT name FROM _migrations ORDER BY rowid")]

    # ------------------------------------------------------------ writes

    def record_intent(
        self,
        request_id: str,
        body: str,
        request: Mapping[str, Any],
        *,
        backend: str | None,
        prompt: str | None = None,
        sweep_id: str | None = None,
        variant_label: str | None = None,
        lease_owner: str | None = None,
        lease_s: float = 0.0,
        session: str | None = None,
    ) -> IntentRecord:
        """Journal a submit before its POST: ``body`` is the exact JSON text that will be sent."""
        now = time.time()
        self._execute(
            "INSERT INTO intents (request_id, created_at, updated_at, state, backend, body, request, prompt, sweep_id, "
            "variant_label, lease_owner, lease_expires, session) VALUES (?, ?, ?, 'sending', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (request_id, now, now, backend, body, json.dumps(dict(request)), prompt, sweep_id,
             variant_label, lease_owner, now + lease_s if lease_owner else None, session),
        )
        intent = self.intent(request_id)
        assert intent is not None
        return intent

    def close_intent(self, request_id: str, state: str, *, error: str | None = None,
                     gateway_request_id: str | None = None) -> None:
        """A submit that named no task ended: "not_sent", "refused" or "unknown" (may exist)."""
        if state not in ("not_sent", "refused", "unknown"):
            raise ValueError(f"not a closing intent state: {state}")
        self._execute(
            "UPDATE intents SET state = ?, error = ?, gateway_request_id = COALESCE(?, gateway_request_id), "
            "updated_at = ?, lease_owner = NULL, lease_expires = NULL WHERE request_id = ? AND task_id IS NULL",
            (state, error, gateway_request_id, time.time(), request_id),
        )

    def mark_intents_checked(self, request_ids: Sequence[str]) -> int:
        """Dismiss submits of unknown outcome the user has looked up in their account; returns how many.

        Only open intents with no task change: one that meanwhile named a task keeps it. A dismissed
        submit stops holding its price against the spend caps, in the same transaction.
        """
        ids = list(dict.fromkeys(request_ids))
        if not ids:
            return 0
        marks = ", ".join("?" for _ in ids)
        states = ", ".join("?" for _ in INTENT_OPEN_STATES)
        with self.immediate() as db:
            cursor = db.execute(
                f"UPDATE intents SET state = 'checked', updated_at = ?, lease_owner = NULL, lease_expires = NULL "
                f"WHERE request_id IN ({marks}) AND task_id IS NULL AND state IN ({states})",
                (time.time(), *ids, *INTENT_OPEN_STATES),
            )
            dismissed = cursor.rowcount
            # Holds exist only for submits of unknown outcome, which the update above has just dismissed.
            db.execute(f"DELETE FROM spend_reservations WHERE owner = ? AND reservation_id IN ({marks})",
                       (UNKNOWN_HOLD_OWNER, *map(unknown_hold_id, ids)))
            return dismissed

    def intent(self, request_id: str) -> IntentRecord | None:
        rows = self._execute("SELECT * FROM intents WHERE request_id = ?", (request_id,))
        return _intent_from_row(rows[0]) if rows else None

    def unresolved_intents(self, *, include_in_flight: bool = True) -> list[IntentRecord]:
        """Submits with no task id whose outcome is not known to be "nothing created", oldest first.

        Those not ``in_flight()`` were sent and may have created (and billed) a task.
        """
        marks = ", ".join("?" for _ in INTENT_OPEN_STATES)
        rows = self._execute(
            f"SELECT * FROM intents WHERE task_id IS NULL AND state IN ({marks}) ORDER BY created_at, rowid",
            INTENT_OPEN_STATES,
        )
        intents = [_intent_from_row(row) for row in rows]
        return intents if include_in_flight else [i for i in intents if not i.in_flight()]

    def sweep_submits_without_task(self, sweep_id: str) -> list[IntentRecord]:
        """A sweep's submits that named no task (still sending, outcome unknown, not sent, refused), oldest first."""
        rows = self._execute(
            "SELECT * FROM intents WHERE state IN ('sending', 'unknown', 'not_sent', 'refused') AND task_id IS NULL "
            "AND sweep_id = ? ORDER BY created_at, rowid", (sweep_id,))
        return [_intent_from_row(row) for row in rows]

    def renew_leases(self, owner: str, lease_s: float) -> None:
        """Extend every lease ``owner`` holds by ``lease_s`` seconds from now."""
        expires = time.time() + lease_s
        self._execute("UPDATE intents SET lease_expires = ? WHERE lease_owner = ? AND state = 'sending'", (expires, owner))
        self._execute("UPDATE tasks SET lease_expires = ? WHERE lease_owner = ?", (expires, owner))
        self._execute("UPDATE sweeps SET lease_expires = ? WHERE lease_owner = ?", (expires, owner))

    def record_submitted(
        self,
        task_id: str,
        resolution: params.Resolution,
        request: Mapping[str, Any],
        sweep_id: str | None = None,
        *,
        variant_label: str | None = None,
        status: str = "queued",
        base_url_kind: str | None = None,
        submitted_at: float | None = None,
        session: str | None = None,
        request_id: str | None = None,
        gateway_request_id: str | None = None,
        lease_owner: str | None = None,
        lease_s: float = 0.0,
        parent_task_id: str | None = None,
        parent_changes: Sequence[str] = (),
        person: str | None = None,
        also: Callable[[Transaction], None] | None = None,
    ) -> TaskRecord:
        """Journal a task the moment its id is known; with ``request_id``, its intent gets the id too, atomically.

        ``also(db)`` runs in the same transaction: what must change exactly when the task row appears (its
        reservation's price moving to it, ``lab.budget``).
        """
        now = time.time()
        effective = dict(resolution.effective or {})
        image = resolution.image
        record = TaskRecord(
            task_id=task_id,
            created_at=now,
            updated_at=now,
            status=status,
            model=effective.get("model"),
            prompt=effective.get("prompt"),
            request=json.loads(json.dumps(dict(request))),
            effective=effective,
            wire=dict(resolution.wire or {}),
            seed=effective.get("seed"),
            resolution=effective.get("resolution"),
            aspect_ratio=effective.get("aspect_ratio"),
            duration=effective.get("duration"),
            size=effective.get("size"),
            sweep_id=sweep_id,
            variant_label=variant_label,
            submitted_at=submitted_at if submitted_at is not None else now,
            base_url_kind=base_url_kind,
            session=session,
            image_path=image.path if image is not None else None,
            image_sha256=image.sha256 if image is not None else None,
            request_id=request_id,
            gateway_request_id=gateway_request_id,
            lease_owner=lease_owner,
            lease_expires=now + lease_s if lease_owner else None,
            parent_task_id=parent_task_id,
            parent_changes=list(parent_changes),
            person=person,
        )
        columns = ", ".join(COLUMNS)
        marks = ", ".join("?" for _ in COLUMNS)
        with self.immediate() as db:
            db.execute(
                f"INSERT INTO tasks ({columns}) VALUES ({marks})",
                [_to_row(name, getattr(record, name)) for name in COLUMNS],
            )
            if request_id is not None:
                db.execute(
                    "UPDATE intents SET state = 'created', task_id = ?, "
                    "gateway_request_id = COALESCE(?, gateway_request_id), error = NULL, updated_at = ?, "
                    "lease_owner = NULL, lease_expires = NULL WHERE request_id = ?",
                    (task_id, gateway_request_id, now, request_id),
                )
            if also is not None:
                also(db)
        return record

    def update(self, task_id: str, **changes: Any) -> TaskRecord:
        """Set the given fields (and updated_at); returns the record as it now stands.

        Status only moves forward (queued/in_progress -> completed -> saved; failed ends it):
        a change that would move it back, or away from saved/failed, is dropped whole, since it
        came from a stale view (another process got further). A saved video never gets an error.
        """
        unknown = set(changes) - UPDATABLE
        if unknown:
            raise ValueError(f"unknown TaskRecord fields: {', '.join(sorted(unknown))}")
        with self.immediate() as db:
            row = db.execute("SELECT status FROM tasks WHERE task_id = ?", (task_id,)).fetchone()
            if row is None:
                raise StoreError(f"no task {task_id} in the journal {self.location}")
            changes = _forward_only(row["status"], changes)
            changes["updated_at"] = time.time()
            assignments = ", ".join(f"{name} = ?" for name in changes)
            rows = db.execute(
                f"UPDATE tasks SET {assignments} WHERE task_id = ? RETURNING *",
                [_to_row(name, value) for name, value in changes.items()] + [task_id],
            ).fetchall()
        return _from_row(rows[0])

    # ------------------------------------------------------------ leases

    def claim(self, task_id: str, owner: str, lease_s: float,
              owner_alive: Callable[[str], bool] | None = None) -> TaskRecord | None:
        """Take the task for ``owner`` for ``lease_s`` s; None if someone holds a live lease on it (or it is gone).

        ``owner_alive(holder)`` False lets a lease whose holder is known dead go before it expires.
        """
        now = time.time()
        with self.immediate() as db:
            row = db.execute("SELECT lease_owner, lease_expires FROM tasks WHERE task_id = ?", (task_id,)).fetchone()
            if row is None:
                return None
            held = row["lease_expires"] is not None and row["lease_expires"] > now
            if held and (owner_alive is None or owner_alive(row["lease_owner"] or "")):
                return None
            rows = db.execute(
                "UPDATE tasks SET lease_owner = ?, lease_expires = ? WHERE task_id = ? RETURNING *",
                (owner, now + lease_s, task_id),
            ).fetchall()
        return _from_row(rows[0])

    def release(self, task_id: str, owner: str) -> None:
        """Give the task's lease back (only if ``owner`` still holds it)."""
        self._execute("UPDATE tasks SET lease_owner = NULL, lease_expires = NULL WHERE task_id = ? AND lease_owner = ?",
                      (task_id, owner))

    def record_sweep(self, sweep_id: str, task_count: int, *, contact_sheet: str | Path | None = None, note: str | None = None,
                     session: str | None = None, plan: list[dict] | None = None) -> None:
        """Create or update a sweep's row (its size and contact sheet; whose it is and its cells' requests).

        ``plan``: one ``{"label", "body"}`` per cell in row order, so a reloaded page can show cells not
        submitted yet and "Retry failed" can send a cell's exact request again.
        """
        self._execute(
            "INSERT INTO sweeps (sweep_id, created_at, task_count, contact_sheet, note, session, plan) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(sweep_id) DO UPDATE SET task_count = MAX(excluded.task_count, sweeps.task_count), "
            "contact_sheet = COALESCE(excluded.contact_sheet, sweeps.contact_sheet), note = COALESCE(excluded.note, sweeps.note), "
            "session = COALESCE(sweeps.session, excluded.session), plan = COALESCE(sweeps.plan, excluded.plan)",
            (sweep_id, time.time(), task_count, str(contact_sheet) if contact_sheet else None, note, session,
             json.dumps(plan, ensure_ascii=False) if plan is not None else None),
        )

    def set_review(self, task_id: str, *, rating: Any = _UNSET, note: Any = _UNSET, picked: Any = _UNSET) -> Review:
        """Change the given parts of a run's review (the others stay); returns the whole review."""
        if rating is not _UNSET and rating not in (None, 1, -1):
            raise ValueError("rating must be 1 (thumbs up), -1 (thumbs down) or None")
        if note is not _UNSET:
            note = str(note or "").strip()
            if len(note) > REVIEW_NOTE_MAX_CHARS:
                raise ValueError(f"a note holds at most {REVIEW_NOTE_MAX_CHARS} characters")
        with self._lock:
            if self.get(task_id) is None:
                raise StoreError(f"no task {task_id} in the journal {self.location}")
            old = self.reviews([task_id]).get(task_id) or Review(task_id)
            new = Review(
                task_id,
                rating=old.rating if rating is _UNSET else rating,
                note=old.note if note is _UNSET else note,
                picked=old.picked if picked is _UNSET else bool(picked),
                updated_at=time.time(),
            )
            self._execute(
                "INSERT INTO reviews (task_id, rating, note, picked, updated_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(task_id) DO UPDATE SET rating = excluded.rating, note = excluded.note, "
                "picked = excluded.picked, updated_at = excluded.updated_at",
                (task_id, new.rating, new.note, int(new.picked), new.updated_at),
            )
        return new

    # ------------------------------------------------------------ pre-screens and lineage

    def record_screen(self, task_id: str, result: Mapping[str, Any], *, screened_at: float | None = None) -> None:
        """Journal a take's pre-screen (``lab.prescreen.findings.Screen.to_json()``), replacing an older one."""
        self._execute(
            "INSERT INTO screens (task_id, screened_at, issues, result) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(task_id) DO UPDATE SET screened_at = excluded.screened_at, issues = excluded.issues, "
            "result = excluded.result",
            (task_id, screened_at if screened_at is not None else time.time(), int(result.get("issues", -1)),
             json.dumps(dict(result), ensure_ascii=False, allow_nan=False)),
        )

    def screens(self, task_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The journalled pre-screens of these tasks (task id -> the screen's JSON); unscreened ones are absent."""
        ids = list(dict.fromkeys(task_ids))
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ", ".join("?" for _ in chunk)
            for row in self._execute(f"SELECT task_id, result FROM screens WHERE task_id IN ({marks})", chunk):
                try:
                    found[row["task_id"]] = json.loads(row["result"])
                except ValueError:
                    continue
        return found

    def saved_without_screen(self) -> list[TaskRecord]:
        """Saved videos never pre-screened (made before the pre-screen, or a kill before it ran), oldest first."""
        rows = self._execute("SELECT t.* FROM tasks t LEFT JOIN screens s ON s.task_id = t.task_id "
                             "WHERE t.status = 'saved' AND t.video_path IS NOT NULL AND s.task_id IS NULL "
                             "ORDER BY t.created_at")
        return [_from_row(row) for row in rows]

    def set_offsets(self, set_ids: str, offsets: Mapping[str, int]) -> None:
        """Keep a comparison's per-take offsets in frames (0 removes a take's offset)."""
        now = time.time()
        with self.immediate() as db:
            for task_id, frames in offsets.items():
                if int(frames) == 0:
                    db.execute("DELETE FROM compare_offsets WHERE set_ids = ? AND task_id = ?", (set_ids, task_id))
                else:
                    db.execute(
                        "INSERT INTO compare_offsets (set_ids, task_id, frames, updated_at) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT(set_ids, task_id) DO UPDATE SET frames = excluded.frames, "
                        "updated_at = excluded.updated_at",
                        (set_ids, task_id, int(frames), now),
                    )

    def offsets(self, set_ids: str) -> dict[str, int]:
        """A comparison's per-take offsets in frames (takes without one are absent)."""
        rows = self._execute("SELECT task_id, frames FROM compare_offsets WHERE set_ids = ?", (set_ids,))
        return {row["task_id"]: int(row["frames"]) for row in rows}

    def children(self, task_id: str) -> list[TaskRecord]:
        """Runs started from this one, oldest first."""
        rows = self._execute("SELECT * FROM tasks WHERE parent_task_id = ? ORDER BY created_at, rowid", (task_id,))
        return [_from_row(row) for row in rows]

    def lineage(self, task_id: str, *, limit: int = 50) -> list[TaskRecord]:
        """This run's ancestors, nearest first (the parent, its parent, ...); stops at a loop or ``limit``."""
        chain: list[TaskRecord] = []
        seen = {task_id}
        record = self.get(task_id)
        while record is not None and record.parent_task_id and len(chain) < limit:
            if record.parent_task_id in seen:
                break
            seen.add(record.parent_task_id)
            record = self.get(record.parent_task_id)
            if record is not None:
                chain.append(record)
        return chain

    def sweep_row(self, sweep_id: str) -> dict[str, Any] | None:
        """A sweep's ``session``, ``plan`` (cells' ``{"label", "body"}``, [] if not kept), ``contact_sheet``
        and ``leased`` (some process, here or on another replica, runs it now)."""
        rows = self._execute("SELECT session, plan, contact_sheet, lease_expires FROM sweeps WHERE sweep_id = ?",
                             (sweep_id,))
        if not rows:
            return None
        return {"session": rows[0]["session"], "plan": json.loads(rows[0]["plan"]) if rows[0]["plan"] else [],
                "contact_sheet": rows[0]["contact_sheet"], "leased": (rows[0]["lease_expires"] or 0.0) > time.time()}

    def lease_sweep(self, sweep_id: str, owner: str, lease_s: float) -> None:
        """Mark the sweep as run by ``owner`` (renewed with its other leases, ``renew_leases``)."""
        self._execute("UPDATE sweeps SET lease_owner = ?, lease_expires = ? WHERE sweep_id = ?",
                      (owner, time.time() + lease_s, sweep_id))

    def release_sweep(self, sweep_id: str, owner: str) -> None:
        self._execute("UPDATE sweeps SET lease_owner = NULL, lease_expires = NULL WHERE sweep_id = ? AND lease_owner = ?",
                      (sweep_id, owner))

    def leased_sweeps(self, session: str) -> list[str]:
        """The session's sweeps some process runs now (a live lease), newest first."""
        rows = self._execute("SELECT sweep_id FROM sweeps WHERE session = ? AND lease_expires > ? "
                             "ORDER BY created_at DESC", (session, time.time()))
        return [row["sweep_id"] for row in rows]

    # ------------------------------------------------------------ reads

    def reviews(self, task_ids: Iterable[str]) -> dict[str, Review]:
        """The reviews of the given runs that have one."""
        ids = list(dict.fromkeys(task_ids))
        found: dict[str, Review] = {}
        for start in range(0, len(ids), 500):  # stay under SQLite's bound-parameter limit
            chunk = ids[start:start + 500]
            marks = ", ".join("?" for _ in chunk)
            for row in self._execute(f"SELECT * FROM reviews WHERE task_id IN ({marks})", chunk):
                found[row["task_id"]] = Review(row["task_id"], row["rating"], row["note"], bool(row["picked"]),
                                               row["updated_at"])
        return found

    def get(self, task_id: str) -> TaskRecord | None:
        rows = self._execute("SELECT * FROM tasks WHERE task_id = ?", (task_id,))
        return _from_row(rows[0]) if rows else None

    def list_runs(self, limit: int = 50, status: str | None = None, offset: int = 0,
                  session: str | None = None, no_issues: bool = False,
                  review_status: str | None = None) -> list[TaskRecord]:
        """Newest first; ``status`` and ``session`` match exactly. (To filter by prompt words: ``search``.)

        ``no_issues``: only takes whose pre-screen found nothing. ``review_status``: only takes whose
        current review status (lab.review) is this one.
        """
        where, args = [], []
        if review_status:
            where.append(_REVIEW_STATUS_IS.format(table="tasks"))
            args.append(review_status)
        if no_issues:
            where.append("task_id IN (SELECT task_id FROM screens WHERE issues = 0)")
        if session is not None:
            where.append("session = ?")
            args.append(session)
        if status:
            where.append("status = ?")
            args.append(status)
        sql = "SELECT * FROM tasks"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?"
        return [_from_row(row) for row in self._execute(sql, [*args, int(limit), int(offset)])]

    def task_ids(self, session: str) -> set[str]:
        """Every task id journalled for ``session`` (what it may open by id)."""
        return {row["task_id"] for row in self._execute("SELECT task_id FROM tasks WHERE session = ?", (session,))}

    def search(self, words: str | None, *, session: str | None = None, status: str | None = None,
               no_issues: bool = False, review_status: str | None = None, limit: int = 50,
               offset: int = 0) -> list[TaskRecord]:
        """Runs whose prompt has all these words, in any order, newest first: THE prompt search (History, CLI).

        Words are runs of letters and digits (punctuation is ignored, so nothing typed is read as
        query syntax); each also matches as the start of a longer one ("lightho" finds
        "lighthouse"), so a filter typed a letter at a time narrows as it goes; case is ignored.
        Blank ``words``: every run; text with no word in it: none. ``session``, ``status``,
        ``no_issues`` and ``review_status`` filter as in ``list_runs``. The full-text dialect
        (FTS5 or PostgreSQL's) is ``Database.prompt_search``.
        """
        match = self._db.prompt_search(words or "", "t")
        if match is None:
            return self.list_runs(limit=limit, status=status, offset=offset, session=session, no_issues=no_issues,
                                  review_status=review_status)
        join, condition, match_args = match
        where, args = [condition], list(match_args)
        if review_status:
            where.append(_REVIEW_STATUS_IS.format(table="t"))
            args.append(review_status)
        if no_issues:
            where.append("t.task_id IN (SELECT task_id FROM screens WHERE issues = 0)")
        if session is not None:
            where.append("t.session = ?")
            args.append(session)
        if status:
            where.append("t.status = ?")
            args.append(status)
        sql = (f"SELECT t.* FROM tasks t {join} WHERE " + " AND ".join(where)
               + " ORDER BY t.created_at DESC, t.rowid DESC LIMIT ? OFFSET ?")
        return [_from_row(row) for row in self._execute(sql, [*args, int(limit), int(offset)])]

    def iter_all(self) -> Iterator[TaskRecord]:
        for row in self._execute("SELECT * FROM tasks ORDER BY created_at"):
            yield _from_row(row)

    def unfinished(self) -> list[TaskRecord]:
        """Submitted but neither saved nor failed, oldest first: what ``resume`` must finish."""
        marks = ", ".join("?" for _ in FINISHED_STATUSES)
        rows = self._execute(f"SELECT * FROM tasks WHERE status NOT IN ({marks}) ORDER BY created_at", FINISHED_STATUSES)
        return [_from_row(row) for row in rows]

    def saved_without_thumbnails(self) -> list[TaskRecord]:
        """Saved videos whose thumbnails were never made (a kill after the save), oldest first."""
        rows = self._execute("SELECT * FROM tasks WHERE status = 'saved' AND video_path IS NOT NULL "
                             "AND (thumbs IS NULL OR thumbs = '[]') ORDER BY created_at")
        return [_from_row(row) for row in rows]

    def sweeps_without_sheet(self) -> list[str]:
        """Sweeps with every task finished, at least one saved, and no contact sheet yet."""
        rows = self._execute(
            "SELECT s.sweep_id FROM sweeps s JOIN tasks t ON t.sweep_id = s.sweep_id WHERE s.contact_sheet IS NULL "
            "GROUP BY s.sweep_id HAVING SUM(CASE WHEN t.status = 'saved' THEN 1 ELSE 0 END) > 0 "
            "AND SUM(CASE WHEN t.status NOT IN ('saved', 'failed') THEN 1 ELSE 0 END) = 0"
        )
        return [row["sweep_id"] for row in rows]

    def list_sweep(self, sweep_id: str) -> list[TaskRecord]:
        """A sweep's tasks in the order they were submitted."""
        rows = self._execute("SELECT * FROM tasks WHERE sweep_id = ? ORDER BY created_at, rowid", (sweep_id,))
        return [_from_row(row) for row in rows]

    def sweeps(self, limit: int = 50, session: str | None = None) -> list[SweepRecord]:
        """Sweeps newest first (only ``session``'s when given): how many rows are saved or failed now and the cost.

        A row counts by its latest task (a retried row's failed attempt no longer counts as failed, as the
        sweep grid shows it: ``JournalView.sweep``); the cost is every task's.
        """
        latest = ("NOT EXISTS (SELECT 1 FROM tasks n WHERE n.sweep_id = t.sweep_id "
                  "AND n.variant_label = t.variant_label AND n.created_at > t.created_at)")
        rows = self._execute(
            f"""
            SELECT s.sweep_id, s.created_at, s.task_count, s.contact_sheet, s.note,
                   COALESCE(SUM(CASE WHEN t.status = 'saved' AND {latest} THEN 1 ELSE 0 END), 0) AS saved,
                   COALESCE(SUM(CASE WHEN t.status = 'failed' AND {latest} THEN 1 ELSE 0 END), 0) AS failed,
                   COALESCE(SUM(t.cost_usd), 0.0) AS cost_usd
            FROM sweeps s LEFT JOIN tasks t ON t.sweep_id = s.sweep_id
            {"WHERE s.session = ?" if session is not None else ""}
            GROUP BY s.sweep_id ORDER BY s.created_at DESC LIMIT ?
            """,
            ((session,) if session is not None else ()) + (int(limit),),
        )
        return [SweepRecord(**dict(row)) for row in rows]

    def median_elapsed(self, model: str, resolution: str, duration: str | int, *, last: int = 20) -> float | None:
        """Median submit-to-saved seconds of the last ``last`` saved runs like this one (None: no data)."""
        rows = self._execute(
            "SELECT elapsed_s FROM tasks WHERE status = 'saved' AND elapsed_s IS NOT NULL "
            "AND model = ? AND resolution = ? AND duration = ? ORDER BY saved_at DESC LIMIT ?",
            (model, resolution, str(duration), int(last)),
        )
        values = [row["elapsed_s"] for row in rows]
        return statistics.median(values) if values else None

    def spent_today_usd(self) -> float:
        """Dollars billed today (UTC): completed tasks, by the time they completed."""
        rows = self._execute(
            "SELECT COALESCE(SUM(cost_usd), 0.0) AS total FROM tasks WHERE cost_usd IS NOT NULL AND completed_at >= ?",
            (_start_of_today_utc(),),
        )
        return round(float(rows[0]["total"]), 6)


def default_store_path(data_dir: Path) -> Path:
    """Where the embedded (SQLite) journal lives inside a data directory."""
    return DataDir(data_dir).journal


def journal_location(database_url: str | None, data_dir: Path) -> str | Path:
    """The journal a lab opens: ``database_url`` (Settings) when set, else the SQLite file in the data directory."""
    return database_url or default_store_path(data_dir)
