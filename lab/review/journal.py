"""Comments, status events and comment edits/deletions in the journal (migrations 014 and 019), and the one
import transaction.

Writes are "insert what is not there yet" by the id made where the review was
written (``ON CONFLICT DO NOTHING``, the same statement on SQLite and
PostgreSQL), so importing a file twice adds nothing and two reviewers' files
give the same journal in either order. A status is never overwritten: every
change is an event and the current status is the latest one
(``model.current_status``). Who may write is decided by the caller's
``visible`` check (``JournalView``): another session's take is skipped, never
written, and counted.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping

from lab.review.model import (DEFAULT_STATUS, FILE_MAX_BYTES, Comment, CommentEvent, ReviewFile, ReviewFileError, Shape,
                              StatusEvent, TakeReview, apply_comment_events, check_comment, check_comment_event,
                              check_event, current_status, event_order, new_id, parse_review_file)
from lab.store import Store, TaskRecord

_CHUNK = 500  # bound parameters per IN (...), under SQLite's limit


@dataclass(frozen=True)
class ImportResult:
    comments_added: int
    comments_known: int
    events_added: int
    events_known: int
    skipped_takes: int  # takes of other sessions named in the file: nothing written for them
    skipped_items: int
    changes_added: int = 0  # comment edits and deletions
    changes_known: int = 0

    def message(self) -> str:
        parts = [f"{self.comments_added} new comment{'s' * (self.comments_added != 1)}",
                 f"{self.events_added} new status change{'s' * (self.events_added != 1)}"]
        if self.changes_added:
            parts.append(f"{self.changes_added} comment edit{'s' * (self.changes_added != 1)} or deletion"
                         f"{'s' * (self.changes_added != 1)}")
        known = self.comments_known + self.events_known + self.changes_known
        if known:
            parts.append(f"{known} already here")
        text = "Imported " + ", ".join(parts)
        if self.skipped_takes:
            text += (f"; skipped {self.skipped_items} item{'s' * (self.skipped_items != 1)} on "
                     f"{self.skipped_takes} take{'s' * (self.skipped_takes != 1)} that are not yours")
        return text + "."

    def to_json(self) -> dict:
        return {"comments_added": self.comments_added, "comments_known": self.comments_known,
                "events_added": self.events_added, "events_known": self.events_known,
                "skipped_takes": self.skipped_takes, "skipped_items": self.skipped_items,
                "changes_added": self.changes_added, "changes_known": self.changes_known}


def take_length(record: TaskRecord) -> float:
    """The take's length in seconds as journalled (its effective duration); 0 when unknown."""
    for value in (record.effective.get("duration") if record.effective else None, record.duration):
        try:
            length = float(value)
        except (TypeError, ValueError):
            continue
        if length > 0:
            return length
    return 0.0


def _comment_from_row(row: Mapping) -> Comment:
    shapes = tuple(Shape(s["kind"], s["color"], tuple(tuple(p) for p in s["points"]))
                   for s in json.loads(row["shapes"] or "[]"))
    return Comment(row["comment_id"], row["task_id"], row["t_in"], row["t_out"], row["body"], row["written_by"],
                   row["created_at"], shapes)


def _event_from_row(row: Mapping) -> StatusEvent:
    return StatusEvent(row["event_id"], row["task_id"], row["status_from"], row["status_to"], row["written_by"], row["at"])


def _change_from_row(row: Mapping) -> CommentEvent:
    return CommentEvent(row["event_id"], row["comment_id"], row["task_id"], row["kind"], row["body"], row["written_by"],
                        row["at"])


_INSERT_CHANGE = ("INSERT INTO review_comment_events (event_id, comment_id, task_id, kind, body, written_by, at, session, "
                  "recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING")
_INSERT_COMMENT = ("INSERT INTO review_comments (comment_id, task_id, t_in, t_out, body, written_by, created_at, shapes, "
                   "session, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (comment_id) DO NOTHING")
_INSERT_EVENT = ("INSERT INTO review_status_events (event_id, task_id, status_from, status_to, written_by, at, session, "
                 "recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING")


def _comment_args(c: Comment, session: str | None, now: float) -> tuple:
    return (c.id, c.task_id, c.t_in, c.t_out, c.text, c.author, c.created_at,
            json.dumps([s.to_json() for s in c.shapes]), session, now)


def _event_args(e: StatusEvent, session: str | None, now: float) -> tuple:
    return (e.id, e.task_id, e.status_from, e.status_to, e.author, e.at, session, now)


def _change_args(e: CommentEvent, session: str | None, now: float) -> tuple:
    return (e.id, e.comment_id, e.task_id, e.kind, e.text, e.author, e.at, session, now)


class ReviewJournal:
    """The review tables of one journal."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # ------------------------------------------------------------ reads

    def _rows(self, table: str, task_ids: Iterable[str], order: str) -> list[Mapping]:
        ids = list(dict.fromkeys(task_ids))
        rows: list[Mapping] = []
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start:start + _CHUNK]
            marks = ", ".join("?" for _ in chunk)
            rows.extend(self.store.database.execute(
                f"SELECT * FROM {table} WHERE task_id IN ({marks}) ORDER BY {order}", chunk))
        return rows

    def takes(self, task_ids: Iterable[str]) -> dict[str, TakeReview]:
        """Every given take's review (a take nobody reviewed: needs review, no comments)."""
        ids = list(dict.fromkeys(task_ids))
        comments: dict[str, list[Comment]] = {t: [] for t in ids}
        events: dict[str, list[StatusEvent]] = {t: [] for t in ids}
        changes: dict[str, list[CommentEvent]] = {t: [] for t in ids}
        for row in self._rows("review_comments", ids, "t_in, created_at, comment_id"):
            comments[row["task_id"]].append(_comment_from_row(row))
        for row in self._rows("review_status_events", ids, "at, event_id"):
            events[row["task_id"]].append(_event_from_row(row))
        for row in self._rows("review_comment_events", ids, "at, event_id"):
            changes[row["task_id"]].append(_change_from_row(row))
        return {t: TakeReview(t, current_status(events[t]), tuple(sorted(events[t], key=event_order)),
                              apply_comment_events(comments[t], changes[t])) for t in ids}

    def statuses(self, task_ids: Iterable[str]) -> dict[str, str]:
        return {t: review.status for t, review in self.takes(task_ids).items()}

    # ------------------------------------------------------------ writes from the lab

    def add_comment(self, record: TaskRecord, raw: dict, *, session: str | None) -> Comment:
        """Check and journal one comment written in the lab (the page made its id). Raises ReviewFileError."""
        comment = check_comment(raw, "the comment", {record.task_id: take_length(record)})
        with self.store.immediate() as db:
            db.execute(_INSERT_COMMENT, _comment_args(comment, session, time.time()))
        return comment

    def change_comment(self, record: TaskRecord, raw: dict, *, session: str | None) -> CommentEvent:
        """Journal an edit or a deletion of a comment on this take (the page made its id). Raises ReviewFileError."""
        change = check_comment_event(raw, "the comment change", {record.task_id: 0})
        with self.store.immediate() as db:
            db.execute(_INSERT_CHANGE, _change_args(change, session, time.time()))
        return change

    def set_status(self, record: TaskRecord, status: str, *, author: str, session: str | None,
                   event_id: str | None = None, at: float | None = None) -> StatusEvent:
        """Journal a status change from the take's current status (read in the same transaction)."""
        with self.store.immediate() as db:
            rows = db.execute("SELECT * FROM review_status_events WHERE task_id = ?", (record.task_id,)).fetchall()
            before = current_status(_event_from_row(r) for r in rows)
            event = check_event({"id": event_id or new_id(), "task_id": record.task_id, "from": before, "to": status,
                                 "author": author, "at": time.time() if at is None else at}, "the status change")
            db.execute(_INSERT_EVENT, _event_args(event, session, time.time()))
        return event

    # ------------------------------------------------------------ import

    def import_text(self, text: str | bytes, *, session: str | None,
                    visible: Callable[[TaskRecord], bool] | None = None) -> ImportResult:
        """Check a review file whole, then write it in one transaction (or nothing). Raises ReviewFileError.

        A take missing from the journal refuses the file; a take ``visible`` says is not
        the caller's is skipped (nothing written for it) and counted.
        """
        size = len(text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text)
        if size > FILE_MAX_BYTES:
            raise ReviewFileError(f"the file is {size:,} bytes; a review file is at most {FILE_MAX_BYTES:,}")
        ids = _named_ids(text)
        records = {t: self.store.get(t) for t in ids}
        known = {t: take_length(r) for t, r in records.items() if r is not None}
        review = parse_review_file(text, durations=known)
        allowed = {t for t, r in records.items() if r is not None and (visible is None or visible(r))}
        kept = review.only(allowed)
        skipped_takes = len(review.task_ids - allowed)
        skipped_items = review.items - kept.items
        return self._write(kept, session, skipped_takes, skipped_items)

    def _write(self, review: ReviewFile, session: str | None, skipped_takes: int, skipped_items: int) -> ImportResult:
        now = time.time()
        added_c = added_e = added_x = 0
        with self.store.immediate() as db:
            for comment in review.comments:
                added_c += db.execute(_INSERT_COMMENT, _comment_args(comment, session, now)).rowcount
            for event in review.status_events:
                added_e += db.execute(_INSERT_EVENT, _event_args(event, session, now)).rowcount
            for change in review.comment_events:
                added_x += db.execute(_INSERT_CHANGE, _change_args(change, session, now)).rowcount
        return ImportResult(added_c, len(review.comments) - added_c, added_e, len(review.status_events) - added_e,
                            skipped_takes, skipped_items, added_x, len(review.comment_events) - added_x)


def _named_ids(text: str | bytes) -> set[str]:
    """The task ids a file names (before it is checked: to look them up in one pass)."""
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError):
        return set()
    if not isinstance(raw, dict):
        return set()
    ids: set[str] = set()
    for key in ("comments", "status_events", "comment_events"):
        items = raw.get(key)
        if isinstance(items, list):
            ids.update(i["task_id"] for i in items[:10_000] if isinstance(i, dict) and isinstance(i.get("task_id"), str)
                       and len(i["task_id"]) <= 80)
    return ids


__all__ = ["ImportResult", "ReviewJournal", "ReviewFileError", "DEFAULT_STATUS", "take_length"]


def reviewed_task_ids(store: Store) -> list[str]:
    """Every take that has a comment or a status change, oldest first."""
    rows = store.database.execute(
        "SELECT task_id, MIN(t) AS first FROM (SELECT task_id, created_at AS t FROM review_comments "
        "UNION ALL SELECT task_id, at AS t FROM review_status_events) reviewed GROUP BY task_id ORDER BY first, task_id")
    return [row["task_id"] for row in rows]


def export_csv(store: Store, task_ids: Iterable[str], letters: Mapping[str, str] | None = None) -> str:
    """The review CSV of these takes (``model.review_csv``); ``letters`` names them as the comparison does."""
    from lab.review.model import CsvTake, review_csv

    ids = [t for t in dict.fromkeys(task_ids)]
    reviews = ReviewJournal(store).takes(ids)
    takes = []
    for task_id in ids:
        record = store.get(task_id)
        if record is None:
            continue
        name = (letters or {}).get(task_id) or (f"seed {record.seed}" if record.seed is not None else task_id[-6:])
        takes.append(CsvTake(name, task_id, record.prompt or "", record.seed, reviews[task_id]))
    return review_csv(takes)
