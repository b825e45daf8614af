"""lab.review: the review file's checks, merging by id, status events, time codes and the CSV (no browser)."""

from __future__ import annotations

import csv
import io
import json
import sqlite3

import pytest

from lab import params
from lab.review.journal import ReviewJournal, export_csv
from lab.review.model import (MAX_COMMENTS, NAME_MAX_CHARS, TEXT_MAX_CHARS, CsvTake, ReviewFileError, TakeReview,
                              csv_cell, current_status, parse_review_file, review_csv, timecode, StatusEvent)
from lab.store import Store

A, B = "task_a", "task_b"


@pytest.fixture
def store(journal_url) -> Store:
    with Store(journal_url) as opened:
        for task_id, session in ((A, "s1"), (B, "s2")):
            body = {"model": params.FAST_MODEL, "prompt": "a fox in snow", "duration": "4", "metadata": {"seed": 7}}
            opened.record_submitted(task_id, params.resolve(body), body, session=session)
        yield opened


def comment(cid="c1", task=B, t_in=3.2, t_out=3.9, text="the hand melts", author="Ann", shapes=None, **extra):
    shapes = [{"kind": "arrow", "color": "#e03131", "points": [[0.2, 0.3], [0.55, 0.6]]}] if shapes is None else shapes
    return {"id": cid, "task_id": task, "t_in": t_in, "t_out": t_out, "text": text, "author": author,
            "created_at": 1_700_000_000.0, "shapes": shapes, **extra}


def event(eid="e1", task=A, to="approved", frm="needs_review", author="Ann", at=1_700_000_100.0):
    return {"id": eid, "task_id": task, "from": frm, "to": to, "author": author, "at": at}


def change(eid="x1", cid="c1", task=B, kind="edit", text="the left hand melts", author="Ann", at=1_700_000_300.0):
    return {"id": eid, "comment_id": cid, "task_id": task, "kind": kind, "text": text, "author": author, "at": at}


def review_file(comments=(), events=(), reviewer="Ann", **extra) -> str:
    return json.dumps({"schema": "veo-lab-review", "version": 1, "report_id": "r1", "reviewer": reviewer,
                       "exported_at": 1_700_000_200.0, "comments": list(comments), "status_events": list(events),
                       **extra})


def snapshot(store: Store) -> tuple:
    db = store.database
    return (sorted(tuple(r[k] for k in ("comment_id", "task_id", "t_in", "t_out", "body", "written_by", "shapes"))
                   for r in db.execute("SELECT * FROM review_comments")),
            sorted(tuple(r[k] for k in ("event_id", "task_id", "status_from", "status_to", "written_by", "at"))
                   for r in db.execute("SELECT * FROM review_status_events")))


# ---------------------------------------------------------------- the file's checks (each names the first bad item)

DURATIONS = {A: 4.0, B: 4.0}


@pytest.mark.parametrize("text, says", [
    ("not json {", "not JSON"),
    (review_file(version=2), "version 2"),
    (review_file([comment(task="task_zzz")]), "comment 1 (c1): no take task_zzz"),
    (review_file([comment(), comment("c2", t_in=5.0, t_out=None)]), "comment 2 (c2): time 5 s is outside the take"),
    (review_file([comment(t_in=1.0, t_out=9.0)]), "range ends at 9 s"),
    (review_file([comment(shapes=[{"kind": "rect", "color": "#000000", "points": [[0.1, 0.1], [1.2, 0.5]]}])],
                 ), "shape 1: point 2 (1.2, 0.5) is outside the frame"),
    (review_file([comment(f"c{i}") for i in range(MAX_COMMENTS + 1)]), f"{MAX_COMMENTS + 1} comments"),
    (review_file([comment(text="x" * (TEXT_MAX_CHARS + 1))]), f"at most {TEXT_MAX_CHARS}"),
    (review_file(reviewer="n" * (NAME_MAX_CHARS + 1)), "the reviewer's name is"),
    (review_file([comment(), comment()]), "comment id c1 appears twice"),
    (review_file([], [event(to="great")]), "status change 1 (e1): to must be one of"),
    (review_file(comment_events=[change(kind="rename")]), "comment edit or deletion 1 (x1): kind must be one of"),
])
def test_a_bad_review_file_is_refused_naming_the_first_bad_item(text: str, says: str) -> None:
    with pytest.raises(ReviewFileError, match=None) as refused:
        parse_review_file(text, DURATIONS)
    assert says in str(refused.value)


def test_a_refused_import_writes_nothing(store: Store) -> None:
    text = review_file([comment(), comment("c2", t_in=99.0, t_out=None)], [event()])
    with pytest.raises(ReviewFileError, match="comment 2"):
        ReviewJournal(store).import_text(text, session=None)
    assert snapshot(store) == ([], [])


def test_an_unknown_task_id_refuses_the_whole_file(store: Store) -> None:
    with pytest.raises(ReviewFileError, match="no take task_nope"):
        ReviewJournal(store).import_text(review_file([comment()], [event(task="task_nope")]), session=None)
    assert snapshot(store) == ([], [])


# ---------------------------------------------------------------- merging


def test_importing_the_same_file_twice_changes_nothing(store: Store) -> None:
    journal = ReviewJournal(store)
    text = review_file([comment()], [event()])
    first = journal.import_text(text, session=None)
    after_first = snapshot(store)
    second = journal.import_text(text, session=None)
    assert (first.comments_added, first.events_added) == (1, 1)
    assert (second.comments_added, second.events_added, second.comments_known, second.events_known) == (0, 0, 1, 1)
    assert snapshot(store) == after_first


def test_two_reviewers_files_give_the_same_journal_in_either_order(journal_url, tmp_path) -> None:
    ann = review_file([comment("c-ann")], [event("e-ann", to="approved", at=100.0)], reviewer="Ann")
    bob = review_file([comment("c-bob", task=A, t_in=1.0, t_out=None, author="Bob")],
                      [event("e-bob", to="rejected", at=200.0, author="Bob")], reviewer="Bob")
    results = []
    for order in ((ann, bob), (bob, ann)):
        with Store(journal_url if not results else tmp_path / "other.sqlite3") as store:
            for task_id in (A, B):
                body = {"model": params.FAST_MODEL, "prompt": "p", "duration": "4"}
                store.record_submitted(task_id, params.resolve(body), body)
            for text in order:
                ReviewJournal(store).import_text(text, session=None)
            results.append((snapshot(store), ReviewJournal(store).takes([A])[A].status))
    assert results[0] == results[1]


def test_a_deleted_comment_is_gone_from_the_take_and_the_csv_and_deleting_twice_changes_nothing(store: Store) -> None:
    journal = ReviewJournal(store)
    journal.import_text(review_file([comment(), comment("c2", t_in=1.0, t_out=None, text="keep me")]), session=None)
    deletion = review_file(comment_events=[change("x-del", kind="delete", text="")])
    first = journal.import_text(deletion, session=None)
    second = journal.import_text(deletion, session=None)
    assert (first.changes_added, second.changes_added, second.changes_known) == (1, 0, 1)
    assert [c.id for c in journal.takes([B])[B].comments] == ["c2"]
    assert "the hand melts" not in export_csv(store, [B]) and "keep me" in export_csv(store, [B])


def test_edits_from_two_reviewers_in_either_order_show_the_later_text_and_a_deletion_wins(journal_url, tmp_path) -> None:
    ann = review_file([comment()], comment_events=[change("x-ann", text="Ann's words", at=100.0)])
    bob = review_file(comment_events=[change("x-bob", text="Bob's words", author="Bob", at=200.0)], reviewer="Bob")
    gone = review_file(comment_events=[change("x-gone", kind="delete", text="", at=50.0)])
    shown = []
    for n, order in enumerate(((ann, bob), (bob, ann), (ann, gone, bob))):
        with Store(journal_url if n == 0 else tmp_path / f"j{n}.sqlite3") as store:
            body = {"model": params.FAST_MODEL, "prompt": "p", "duration": "4"}
            store.record_submitted(B, params.resolve(body), body)
            for text in order:
                ReviewJournal(store).import_text(text, session=None)
            shown.append([(c.text, c.edited_at) for c in ReviewJournal(store).takes([B])[B].comments])
    assert shown == [[("Bob's words", 200.0)], [("Bob's words", 200.0)], []]


def test_a_comment_change_in_the_lab_is_journalled_as_an_event_of_that_take(store: Store) -> None:
    journal = ReviewJournal(store)
    record = store.get(B)
    journal.add_comment(record, comment(), session="s2")
    journal.change_comment(record, change(), session="s2")
    (shown,) = journal.takes([B])[B].comments
    assert (shown.text, shown.edited_at, shown.to_json()["edited_at"]) == ("the left hand melts", 1_700_000_300.0,
                                                                         1_700_000_300.0)
    with pytest.raises(ReviewFileError, match="no take"):
        journal.change_comment(store.get(A), change(task=B), session="s1")  # the event must name the checked take


def test_the_later_status_event_wins_and_both_stay_in_the_history(store: Store) -> None:
    journal = ReviewJournal(store)
    journal.import_text(review_file([], [event("late", to="rejected", at=200.0, author="Bob")]), session=None)
    journal.import_text(review_file([], [event("early", to="approved", at=100.0)]), session=None)
    take = journal.takes([A])[A]
    assert take.status == "rejected"
    assert [e.id for e in take.history] == ["early", "late"]


def test_a_status_change_in_the_lab_is_an_event_from_the_current_status(store: Store) -> None:
    journal = ReviewJournal(store)
    record = store.get(A)
    journal.set_status(record, "approved", author="Ann", session="s1", at=10.0)
    journal.set_status(record, "changes_requested", author="Bob", session="s1", at=20.0)
    history = journal.takes([A])[A].history
    assert [(e.status_from, e.status_to, e.author) for e in history] == [
        ("needs_review", "approved", "Ann"), ("approved", "changes_requested", "Bob")]


def test_equal_times_are_ordered_by_id_so_every_journal_agrees() -> None:
    events = [StatusEvent("b", A, "needs_review", "rejected", "x", 5.0),
              StatusEvent("a", A, "needs_review", "approved", "y", 5.0)]
    assert current_status(events) == current_status(list(reversed(events))) == "rejected"


def test_a_file_naming_other_sessions_takes_writes_nothing_for_them_and_counts_them(store: Store) -> None:
    text = review_file([comment(task=A, t_in=1.0, t_out=None), comment("c2", task=B)], [event(task=B)])
    result = ReviewJournal(store).import_text(text, session="s1", visible=lambda r: r.session == "s1")
    comments, events = snapshot(store)
    assert [c[1] for c in comments] == [A] and events == []
    assert (result.skipped_takes, result.skipped_items) == (1, 2)
    assert "skipped 2 items on 1 take that are not yours" in result.message()


def test_history_filters_by_the_current_review_status(store: Store) -> None:
    ReviewJournal(store).import_text(review_file([], [event(to="approved")]), session=None)
    assert [r.task_id for r in store.list_runs(review_status="approved")] == [A]
    assert [r.task_id for r in store.list_runs(review_status="needs_review")] == [B]
    assert [r.task_id for r in store.search("fox", review_status="approved")] == [A]


# ---------------------------------------------------------------- time codes and CSV


def test_time_codes_are_hours_minutes_seconds_and_milliseconds() -> None:
    assert timecode(3.2) == "00:00:03.200"
    assert timecode(3725.0456) == "01:02:05.046"


@pytest.mark.parametrize("text", ["=HYPERLINK(\"x\")", "+1", "-2", "@SUM(A1)"])
def test_a_csv_cell_that_a_spreadsheet_would_run_is_escaped(text: str) -> None:
    assert csv_cell(text) == "'" + text


def test_the_csv_has_a_row_per_comment_with_time_codes_and_html_as_text() -> None:
    c = parse_review_file(review_file([comment(text="<b>=1+1</b>", author="=cmd|'/c calc'!A1")]), DURATIONS).comments[0]
    rows = list(csv.reader(io.StringIO(review_csv([
        CsvTake("A", A, "a fox", 7, TakeReview(A, "approved")),
        CsvTake("B", B, "-a fox", None, TakeReview(B, "needs_review", (), (c,)))]))))
    assert rows[0][:5] == ["take", "task_id", "prompt", "seed", "status"]
    assert rows[1][:5] == ["A", A, "a fox", "7", "Approved"]
    assert rows[2][2] == "'-a fox"
    assert rows[2][5:9] == ["00:00:03.200", "00:00:03.900", "'=cmd|'/c calc'!A1", "<b>=1+1</b>"]
    assert rows[2][9] == "arrow"
