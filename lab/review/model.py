"""The review data as data: comments, drawings, status events, the review file and its CSV. No I/O.

A comment belongs to one take (task id) and a time, or a range ``t_in``..``t_out``
(seconds of the take). Its drawing is a list of shapes in 0-1 coordinates of the
video frame (x right, y down), so it lands on the same spot at any size. A status
change is an event (``from`` -> ``to``, who, when); the current status is the latest
event, the default ``needs_review``. Every comment and event has a stable id (a
UUID made where it was written): merging is "insert what is not there yet", so
importing a file twice adds nothing and two reviewers' files merge in either order.

The review file (``docs/review-format.md``)::

    {"schema": "veo-lab-review", "version": 1, "report_id": "...", "reviewer": "...",
     "exported_at": 1733390000.0,
     "comments": [{"id", "task_id", "t_in", "t_out", "text", "author", "created_at",
                   "shapes": [{"kind": "pen"|"arrow"|"rect", "color": "#rrggbb", "points": [[x, y], ...]}]}],
     "status_events": [{"id", "task_id", "from", "to", "author", "at"}],
     "comment_events": [{"id", "comment_id", "task_id", "kind": "edit"|"delete", "text", "author", "at"}]}

A comment is never rewritten in place either: an edit or a deletion is a comment event with an id of
its own. The text shown is the latest edit's (by ``(at, id)``); a deletion is a tombstone that wins
over any edit, in any order. So edits and deletions merge like the rest: twice is once, and two
reviewers' files give the same result in either order. ``comment_events`` is optional (a file
without it is a version 1 file as before).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from lab.errors import LabError

SCHEMA = "veo-lab-review"
VERSION = 1
STATUSES = ("needs_review", "approved", "changes_requested", "rejected")
DEFAULT_STATUS = "needs_review"
STATUS_NAMES = {"needs_review": "Needs review", "approved": "Approved", "changes_requested": "Changes requested",
                "rejected": "Rejected"}
SHAPE_KINDS = ("pen", "arrow", "rect")
COMMENT_EVENT_KINDS = ("edit", "delete")

FILE_MAX_BYTES = 8 * 1024 * 1024
MAX_COMMENTS = 2000  # per file
MAX_EVENTS = 2000  # per file
TEXT_MAX_CHARS = 5000
NAME_MAX_CHARS = 80
MAX_SHAPES = 50  # per comment
MAX_POINTS = 2000  # per shape
TIME_SLACK_S = 0.05  # a time this far past the take's end still names its last frame

_HEX_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,80}$")


class ReviewFileError(LabError):
    """A review file (or a single comment or status) that cannot be taken; the message names the first bad item."""


@dataclass(frozen=True)
class Shape:
    kind: str
    color: str
    points: tuple[tuple[float, float], ...]

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "color": self.color, "points": [list(p) for p in self.points]}


@dataclass(frozen=True)
class Comment:
    id: str
    task_id: str
    t_in: float
    t_out: float | None
    text: str
    author: str
    created_at: float
    shapes: tuple[Shape, ...] = ()
    edited_at: float | None = None  # when the text shown was last edited (None: as written)

    def to_json(self) -> dict[str, Any]:
        out = {"id": self.id, "task_id": self.task_id, "t_in": self.t_in, "t_out": self.t_out, "text": self.text,
               "author": self.author, "created_at": self.created_at, "shapes": [s.to_json() for s in self.shapes]}
        if self.edited_at is not None:
            out["edited_at"] = self.edited_at
        return out


@dataclass(frozen=True)
class CommentEvent:
    """An edit (new text) or a deletion (a tombstone) of one comment."""

    id: str
    comment_id: str
    task_id: str
    kind: str
    text: str
    author: str
    at: float

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "comment_id": self.comment_id, "task_id": self.task_id, "kind": self.kind,
                "text": self.text, "author": self.author, "at": self.at}


@dataclass(frozen=True)
class StatusEvent:
    id: str
    task_id: str
    status_from: str
    status_to: str
    author: str
    at: float

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "task_id": self.task_id, "from": self.status_from, "to": self.status_to,
                "author": self.author, "at": self.at}


@dataclass(frozen=True)
class ReviewFile:
    report_id: str | None
    reviewer: str
    exported_at: float | None
    comments: tuple[Comment, ...] = ()
    status_events: tuple[StatusEvent, ...] = ()
    comment_events: tuple[CommentEvent, ...] = ()

    @property
    def task_ids(self) -> set[str]:
        return ({c.task_id for c in self.comments} | {e.task_id for e in self.status_events}
                | {e.task_id for e in self.comment_events})

    @property
    def items(self) -> int:
        return len(self.comments) + len(self.status_events) + len(self.comment_events)

    def only(self, task_ids: Iterable[str]) -> "ReviewFile":
        keep = set(task_ids)
        return ReviewFile(self.report_id, self.reviewer, self.exported_at,
                          tuple(c for c in self.comments if c.task_id in keep),
                          tuple(e for e in self.status_events if e.task_id in keep),
                          tuple(e for e in self.comment_events if e.task_id in keep))

    def to_json(self) -> dict[str, Any]:
        out = {"schema": SCHEMA, "version": VERSION, "report_id": self.report_id, "reviewer": self.reviewer,
               "exported_at": self.exported_at, "comments": [c.to_json() for c in self.comments],
               "status_events": [e.to_json() for e in self.status_events]}
        if self.comment_events:
            out["comment_events"] = [e.to_json() for e in self.comment_events]
        return out


@dataclass(frozen=True)
class TakeReview:
    """One take's review as the journal has it: current status, its history, its comments (by time)."""

    task_id: str
    status: str = DEFAULT_STATUS
    history: tuple[StatusEvent, ...] = ()
    comments: tuple[Comment, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "status_history": [e.to_json() for e in self.history],
                "comments": [c.to_json() for c in self.comments]}


# ---------------------------------------------------------------- ids, time codes, ordering


def new_id() -> str:
    return str(uuid.uuid4())


def timecode(seconds: float) -> str:
    """``HH:MM:SS.fff`` (milliseconds rounded)."""
    ms = max(0, int(round(float(seconds) * 1000)))
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{ms:03d}"


def event_order(event: StatusEvent) -> tuple[float, str]:
    """Status events in the order they happened; equal times are ordered by id so every journal agrees."""
    return (event.at, event.id)


def current_status(events: Iterable[StatusEvent]) -> str:
    """The latest event's status, or needs review when there is none."""
    latest = max(events, key=event_order, default=None)
    return latest.status_to if latest else DEFAULT_STATUS


def comment_order(comment: Comment) -> tuple[float, float, str]:
    return (comment.t_in, comment.created_at, comment.id)


def apply_comment_events(comments: Iterable[Comment], events: Iterable[CommentEvent]) -> tuple[Comment, ...]:
    """The comments as they stand: a deleted one gone, an edited one with its latest edit's text (time order)."""
    deleted: set[str] = set()
    latest: dict[str, CommentEvent] = {}
    for e in events:
        if e.kind == "delete":
            deleted.add(e.comment_id)
        elif e.comment_id not in latest or (e.at, e.id) > (latest[e.comment_id].at, latest[e.comment_id].id):
            latest[e.comment_id] = e
    out = []
    for c in comments:
        if c.id in deleted:
            continue
        edit = latest.get(c.id)
        out.append(c if edit is None else dataclasses.replace(c, text=edit.text, edited_at=edit.at))
    return tuple(sorted(out, key=comment_order))


# ---------------------------------------------------------------- validation


def _where(kind: str, index: int, item: Any) -> str:
    ident = item.get("id") if isinstance(item, dict) else None
    return f"{kind} {index + 1}" + (f" ({str(ident)[:40]})" if isinstance(ident, str) and ident else "")


def _text(value: Any, what: str, limit: int, *, blank_ok: bool = False) -> str:
    if not isinstance(value, str):
        raise ReviewFileError(f"{what} must be text")
    if "\x00" in value or any(0xD800 <= ord(ch) <= 0xDFFF for ch in value):
        raise ReviewFileError(f"{what} holds a character that is not text")
    value = value.strip()
    if not value and not blank_ok:
        raise ReviewFileError(f"{what} is empty")
    if len(value) > limit:
        raise ReviewFileError(f"{what} is {len(value)} characters long; at most {limit} are allowed")
    return value


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        raise ReviewFileError(f"{what} must be a finite number")
    return float(value)


def _ident(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _ID.match(value):
        raise ReviewFileError(f"{what} must be an id (letters, digits, - _ . :), not {str(value)[:40]!r}")
    return value


def check_name(value: Any, what: str = "the name") -> str:
    return _text(value, what, NAME_MAX_CHARS)


def check_shape(raw: Any, what: str) -> Shape:
    if not isinstance(raw, dict):
        raise ReviewFileError(f"{what} must be an object")
    kind = raw.get("kind")
    if kind not in SHAPE_KINDS:
        raise ReviewFileError(f"{what}: kind must be one of {', '.join(SHAPE_KINDS)}")
    color = raw.get("color")
    if not isinstance(color, str) or not _HEX_COLOR.match(color):
        raise ReviewFileError(f"{what}: color must be #rrggbb")
    points = raw.get("points")
    need = 1 if kind == "pen" else 2
    if not isinstance(points, list) or not need <= len(points) <= (MAX_POINTS if kind == "pen" else 2):
        raise ReviewFileError(f"{what}: a {kind} needs {'1 to ' + str(MAX_POINTS) if kind == 'pen' else 'exactly 2'} points")
    out = []
    for k, point in enumerate(points):
        if not isinstance(point, list) or len(point) != 2:
            raise ReviewFileError(f"{what}: point {k + 1} must be [x, y]")
        x, y = (_number(v, f"{what}: point {k + 1}") for v in point)
        if not (0 <= x <= 1 and 0 <= y <= 1):
            raise ReviewFileError(f"{what}: point {k + 1} ({x:g}, {y:g}) is outside the frame (coordinates run 0 to 1)")
        out.append((round(x, 5), round(y, 5)))
    return Shape(kind, color.lower(), tuple(out))


def check_comment(raw: Any, what: str, durations: Mapping[str, float] | None = None) -> Comment:
    """One comment, or ReviewFileError naming ``what``. ``durations``: known takes' lengths (seconds)."""
    if not isinstance(raw, dict):
        raise ReviewFileError(f"{what} must be an object")
    ident = _ident(raw.get("id"), f"{what}: id")
    task_id = _ident(raw.get("task_id"), f"{what}: task_id")
    if durations is not None and task_id not in durations:
        raise ReviewFileError(f"{what}: no take {task_id} in this journal")
    t_in = _number(raw.get("t_in"), f"{what}: t_in")
    t_out = None if raw.get("t_out") is None else _number(raw.get("t_out"), f"{what}: t_out")
    length = durations.get(task_id) if durations else None
    end = (length + TIME_SLACK_S) if length else math.inf
    if not 0 <= t_in <= end:
        raise ReviewFileError(f"{what}: time {t_in:g} s is outside the take (0 to {length or 0:g} s)")
    if t_out is not None and not t_in <= t_out <= end:
        raise ReviewFileError(f"{what}: the range ends at {t_out:g} s, outside {t_in:g} to {length or 0:g} s")
    text = _text(raw.get("text"), f"{what}: text", TEXT_MAX_CHARS, blank_ok=True)
    shapes_raw = raw.get("shapes") or []
    if not isinstance(shapes_raw, list) or len(shapes_raw) > MAX_SHAPES:
        raise ReviewFileError(f"{what}: shapes must be a list of at most {MAX_SHAPES}")
    shapes = tuple(check_shape(s, f"{what}: shape {k + 1}") for k, s in enumerate(shapes_raw))
    if not text and not shapes:
        raise ReviewFileError(f"{what}: a comment needs text or a drawing")
    author = check_name(raw.get("author"), f"{what}: author")
    created = _number(raw.get("created_at"), f"{what}: created_at")
    return Comment(ident, task_id, round(t_in, 3), None if t_out is None else round(t_out, 3), text, author, created,
                   shapes)


def check_event(raw: Any, what: str, known: Mapping[str, Any] | None = None) -> StatusEvent:
    if not isinstance(raw, dict):
        raise ReviewFileError(f"{what} must be an object")
    ident = _ident(raw.get("id"), f"{what}: id")
    task_id = _ident(raw.get("task_id"), f"{what}: task_id")
    if known is not None and task_id not in known:
        raise ReviewFileError(f"{what}: no take {task_id} in this journal")
    for key in ("from", "to"):
        if raw.get(key) not in STATUSES:
            raise ReviewFileError(f"{what}: {key} must be one of {', '.join(STATUSES)}")
    author = check_name(raw.get("author"), f"{what}: author")
    at = _number(raw.get("at"), f"{what}: at")
    return StatusEvent(ident, task_id, raw["from"], raw["to"], author, at)


def check_comment_event(raw: Any, what: str, known: Mapping[str, Any] | None = None) -> CommentEvent:
    """An edit or a deletion. The comment it names need not be known yet (another reviewer's file may bring it)."""
    if not isinstance(raw, dict):
        raise ReviewFileError(f"{what} must be an object")
    ident = _ident(raw.get("id"), f"{what}: id")
    comment_id = _ident(raw.get("comment_id"), f"{what}: comment_id")
    task_id = _ident(raw.get("task_id"), f"{what}: task_id")
    if known is not None and task_id not in known:
        raise ReviewFileError(f"{what}: no take {task_id} in this journal")
    kind = raw.get("kind")
    if kind not in COMMENT_EVENT_KINDS:
        raise ReviewFileError(f"{what}: kind must be one of {', '.join(COMMENT_EVENT_KINDS)}")
    text = _text(raw.get("text"), f"{what}: text", TEXT_MAX_CHARS) if kind == "edit" else ""
    author = check_name(raw.get("author"), f"{what}: author")
    at = _number(raw.get("at"), f"{what}: at")
    return CommentEvent(ident, comment_id, task_id, kind, text, author, at)


def parse_review_file(data: str | bytes, durations: Mapping[str, float] | None = None) -> ReviewFile:
    """A review file's text, checked whole; ReviewFileError names the first bad item. Nothing is written here.

    ``durations`` maps every take of the journal the file may name to its length in
    seconds; a take outside it is refused (None: not checked).
    """
    size = len(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data)
    if size > FILE_MAX_BYTES:
        raise ReviewFileError(f"the file is {size:,} bytes; a review file is at most {FILE_MAX_BYTES:,}")
    try:
        raw = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise ReviewFileError(f"not a review file: it is not JSON ({exc})") from None
    if not isinstance(raw, dict) or raw.get("schema") != SCHEMA:
        raise ReviewFileError(f"not a review file: \"schema\" must be {SCHEMA!r}")
    if raw.get("version") != VERSION:
        raise ReviewFileError(f"review file version {str(raw.get('version'))[:20]} is not known "
                              f"(this lab reads version {VERSION})")
    comments_raw = raw.get("comments") or []
    events_raw = raw.get("status_events") or []
    changes_raw = raw.get("comment_events") or []
    if not all(isinstance(items, list) for items in (comments_raw, events_raw, changes_raw)):
        raise ReviewFileError("comments, status_events and comment_events must be lists")
    if len(comments_raw) > MAX_COMMENTS:
        raise ReviewFileError(f"the file holds {len(comments_raw)} comments; at most {MAX_COMMENTS} are taken at once")
    if len(events_raw) > MAX_EVENTS:
        raise ReviewFileError(f"the file holds {len(events_raw)} status changes; at most {MAX_EVENTS} are taken at once")
    if len(changes_raw) > MAX_EVENTS:
        raise ReviewFileError(f"the file holds {len(changes_raw)} comment edits and deletions; at most {MAX_EVENTS} "
                              "are taken at once")
    reviewer = check_name(raw.get("reviewer"), "the reviewer's name")
    report_id = raw.get("report_id")
    if report_id is not None:
        report_id = _ident(report_id, "report_id")
    exported = raw.get("exported_at")
    exported = None if exported is None else _number(exported, "exported_at")
    comments = tuple(check_comment(c, _where("comment", i, c), durations) for i, c in enumerate(comments_raw))
    events = tuple(check_event(e, _where("status change", i, e), durations) for i, e in enumerate(events_raw))
    changes = tuple(check_comment_event(e, _where("comment edit or deletion", i, e), durations)
                    for i, e in enumerate(changes_raw))
    for kind, items in (("comment", comments), ("status change", events), ("comment edit or deletion", changes)):
        seen: set[str] = set()
        for item in items:
            if item.id in seen:
                raise ReviewFileError(f"{kind} id {item.id} appears twice in the file")
            seen.add(item.id)
    return ReviewFile(report_id, reviewer, exported, comments, events, changes)


# ---------------------------------------------------------------- CSV


def csv_cell(value: Any) -> str:
    """A spreadsheet-safe cell: text starting with = + - @ (or tab / CR) gets a leading ' so it is never a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


CSV_COLUMNS = ("take", "task_id", "prompt", "seed", "status", "time_in", "time_out", "author", "comment",
               "drawing", "created")


@dataclass(frozen=True)
class CsvTake:
    letter: str
    task_id: str
    prompt: str
    seed: int | None
    review: TakeReview = field(default_factory=lambda: TakeReview(""))


def review_csv(takes: Sequence[CsvTake]) -> str:
    """One row per comment (time-ordered), one row for a take with none; every cell escaped."""
    import datetime as dt

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for take in takes:
        base = [take.letter, take.task_id, take.prompt, "" if take.seed is None else take.seed,
                STATUS_NAMES.get(take.review.status, take.review.status)]
        comments = sorted(take.review.comments, key=comment_order)
        if not comments:
            writer.writerow([csv_cell(v) for v in base + ["", "", "", "", "", ""]])
        for c in comments:
            drawn = ", ".join(s.kind for s in c.shapes)
            created = dt.datetime.fromtimestamp(c.created_at, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
            writer.writerow([csv_cell(v) for v in base + [timecode(c.t_in), "" if c.t_out is None else timecode(c.t_out),
                                                          c.author, c.text, drawn, created]])
    return out.getvalue()
