"""lab.store: the journal's schema, writes, queries and thread safety."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from lab import params
from lab.db import connect
from lab.errors import StoreError
from lab.store import MIGRATIONS, Store, migrate


def _resolution(prompt: str = "a lighthouse at dusk", **extra) -> params.Resolution:
    body = {"model": params.FAST_MODEL, "prompt": prompt, "duration": "4", "metadata": {"seed": 7}, **extra}
    return params.resolve(body)


@pytest.fixture
def store(journal_url) -> Store:
    with Store(journal_url) as opened:
        yield opened


def _submit(store: Store, task_id: str, prompt: str = "a lighthouse at dusk", **kw):
    resolution = _resolution(prompt)
    return store.record_submitted(task_id, resolution, {"model": params.FAST_MODEL, "prompt": prompt}, **kw)


def test_every_migration_is_applied_once_and_recorded(journal_url) -> None:
    Store(journal_url).close()
    with Store(journal_url) as reopened:
        assert reopened.migrations() == [m.__name__.lstrip("_") for m in MIGRATIONS]
    with connect(journal_url) as db:
        assert migrate(db) == []


def test_thumbnails_journalled_as_bare_paths_are_migrated_once_to_path_and_time(journal_url, monkeypatch) -> None:
    import lab.store as store_module

    # A journal that never ran migration 016 (its thumbs are bare paths) but has every column added since,
    # so the rows can be written by today's Store; 016 then runs when it is opened again.
    without = [m for m in MIGRATIONS if m is not store_module._m016_thumbs_with_times]
    monkeypatch.setattr(store_module, "MIGRATIONS", without)
    with Store(journal_url) as old:
        _submit(old, "task_a")
        old.update("task_a", status="saved", thumbs=["/x/task_a_1.jpg", "/x/task_a_2.jpg"])
        _submit(old, "task_b")
        old.update("task_b", status="saved", thumbs=[{"path": "/x/task_b_1.jpg", "t": 0.2}])
    monkeypatch.undo()
    with Store(journal_url) as migrated:
        assert migrated.get("task_a").thumbs == [{"path": "/x/task_a_1.jpg", "t": None},
                                                 {"path": "/x/task_a_2.jpg", "t": None}]
        assert migrated.get("task_a").thumb_paths == ["/x/task_a_1.jpg", "/x/task_a_2.jpg"]
        assert migrated.get("task_b").thumbs == [{"path": "/x/task_b_1.jpg", "t": 0.2}]  # already in shape


def test_a_sqlite_journal_uses_wal_mode(tmp_path: Path) -> None:
    Store(tmp_path / "journal.sqlite3").close()
    mode = sqlite3.connect(tmp_path / "journal.sqlite3").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_submitted_task_is_journalled_with_its_effective_request(store: Store) -> None:
    record = _submit(store, "task_a", sweep_id="sweep_1", variant_label="seed 7", base_url_kind="simulator")
    again = store.get("task_a")
    assert again == record
    assert (again.status, again.model, again.seed, again.duration, again.size) == ("queued", params.FAST_MODEL, 7, "4", "1280x720")
    assert again.wire["duration"] == "4"
    assert (again.sweep_id, again.variant_label, again.base_url_kind) == ("sweep_1", "seed 7", "simulator")


def test_update_changes_only_the_given_fields(store: Store) -> None:
    _submit(store, "task_a")
    thumbs = [{"path": "/x/1.jpg", "t": 0.2}]
    updated = store.update("task_a", status="saved", video_path="/x/task_a.mp4", thumbs=thumbs, cost_usd=0.3)
    assert (updated.status, updated.video_path, updated.thumbs, updated.cost_usd) == ("saved", "/x/task_a.mp4", thumbs, 0.3)
    assert updated.prompt == "a lighthouse at dusk"


def test_update_of_an_unknown_field_is_refused(store: Store) -> None:
    _submit(store, "task_a")
    with pytest.raises(ValueError):
        store.update("task_a", api_key="sk-secret")


def test_update_of_an_unknown_task_is_a_store_error(store: Store) -> None:
    with pytest.raises(StoreError):
        store.update("task_missing", status="saved")


def test_duplicate_task_id_is_a_store_error(store: Store) -> None:
    _submit(store, "task_a")
    with pytest.raises(StoreError):
        _submit(store, "task_a")


def test_the_journal_has_no_place_for_an_api_key(store: Store) -> None:
    columns = [column for table in store.database.tables() for column in store.database.columns(table)]
    assert "prompt" in columns
    assert not any("key" in column or "auth" in column for column in columns)


def test_list_runs_is_newest_first_and_search_filters_by_prompt_words(store: Store) -> None:
    _submit(store, "task_a", prompt="A lighthouse at dusk")
    time.sleep(0.01)
    _submit(store, "task_b", prompt="a red fox in snow")
    time.sleep(0.01)
    _submit(store, "task_c", prompt="Lighthouse keeper, 100% rain")
    assert [r.task_id for r in store.list_runs()] == ["task_c", "task_b", "task_a"]
    assert [r.task_id for r in store.search("LIGHTHOUSE")] == ["task_c", "task_a"]
    assert [r.task_id for r in store.search("100%")] == ["task_c"]
    assert [r.task_id for r in store.list_runs(limit=1)] == ["task_c"]


def test_search_wants_every_word_in_any_order_and_a_word_may_be_a_prefix(store: Store) -> None:
    _submit(store, "task_a", prompt="A lighthouse at dusk")
    _submit(store, "task_b", prompt="dusk over a lighthouse, crème sky")
    _submit(store, "task_c", prompt="a lighthouse at noon")
    assert {r.task_id for r in store.search("dusk lighthouse")} == {"task_a", "task_b"}
    assert {r.task_id for r in store.search("lightho du")} == {"task_a", "task_b"}  # typed a letter at a time
    assert [r.task_id for r in store.search("SKY")] == ["task_b"]  # case ignored
    assert store.search("dusk noon") == []


@pytest.mark.parametrize(("typed", "found"), [
    ('lighthouse" OR "fox', []), ("lighthouse OR fox", []), ("NEAR(lighthouse fox)", []), ("prompt:fox", []),
    ("-fox", ["task_b"]), ("fox*", ["task_b"]), ("^fox", ["task_b"]), ('"', []), ("(", []), ("%", []),
])
def test_search_reads_words_and_no_query_syntax_from_what_was_typed(store: Store, typed: str, found: list) -> None:
    _submit(store, "task_a", prompt="a lighthouse at dusk")
    _submit(store, "task_b", prompt="a red fox in snow")
    assert [r.task_id for r in store.search(typed)] == found


def test_search_filters_by_session_and_status_as_well_as_words(store: Store) -> None:
    _submit(store, "task_mine", prompt="a red fox", session="b-mine")
    _submit(store, "task_theirs", prompt="a red fox", session="b-theirs")
    _submit(store, "task_failed", prompt="a red fox", session="b-mine")
    store.update("task_failed", status="failed")
    assert {r.task_id for r in store.search("fox", session="b-mine")} == {"task_mine", "task_failed"}
    assert [r.task_id for r in store.search("fox", session="b-mine", status="failed")] == ["task_failed"]
    assert [r.task_id for r in store.search("", session="b-theirs")] == ["task_theirs"]


def test_list_runs_filters_by_status(store: Store) -> None:
    _submit(store, "task_a")
    _submit(store, "task_b")
    store.update("task_b", status="failed")
    assert [r.task_id for r in store.list_runs(status="failed")] == ["task_b"]


def test_unfinished_is_everything_neither_saved_nor_failed(store: Store) -> None:
    for task_id, status in (("task_q", "queued"), ("task_p", "in_progress"), ("task_c", "completed"),
                            ("task_s", "saved"), ("task_f", "failed")):
        _submit(store, task_id)
        store.update(task_id, status=status)
    assert {r.task_id for r in store.unfinished()} == {"task_q", "task_p", "task_c"}


def test_sweep_lists_its_tasks_in_submission_order_with_counts(store: Store) -> None:
    store.record_sweep("sweep_1", 3)
    for task_id in ("task_1", "task_2", "task_3"):
        _submit(store, task_id, sweep_id="sweep_1")
    store.update("task_1", status="saved", cost_usd=0.3)
    store.update("task_2", status="failed")
    store.record_sweep("sweep_1", 3, contact_sheet="/x/sheet.png")
    assert [r.task_id for r in store.list_sweep("sweep_1")] == ["task_1", "task_2", "task_3"]
    (summary,) = store.sweeps()
    assert (summary.task_count, summary.saved, summary.failed, summary.cost_usd, summary.contact_sheet) == (
        3, 1, 1, 0.3, "/x/sheet.png")


def test_a_sweep_row_counts_as_saved_or_failed_by_its_latest_task(store: Store) -> None:
    store.record_sweep("sweep_1", 2)
    for task_id, label, status, cost in (("task_1", "seed 1", "failed", None), ("task_2", "seed 2", "failed", None),
                                         ("task_1b", "seed 1", "saved", 0.3)):  # seed 1 retried and saved
        _submit(store, task_id, sweep_id="sweep_1", variant_label=label)
        store.update(task_id, status=status, cost_usd=cost)
    (summary,) = store.sweeps()
    assert (summary.task_count, summary.saved, summary.failed, summary.cost_usd) == (2, 1, 1, 0.3)


def test_median_elapsed_learns_from_saved_runs_with_the_same_settings(store: Store) -> None:
    assert store.median_elapsed(params.FAST_MODEL, "720p", "4") is None
    for task_id, elapsed in (("task_1", 30.0), ("task_2", 50.0), ("task_3", 40.0)):
        _submit(store, task_id)
        store.update(task_id, status="saved", elapsed_s=elapsed, saved_at=time.time())
    _submit(store, "task_4")
    store.update("task_4", status="failed", elapsed_s=999.0)
    assert store.median_elapsed(params.FAST_MODEL, "720p", "4") == 40.0
    assert store.median_elapsed(params.FAST_MODEL, "1080p", "8") is None


def test_spent_today_counts_only_completed_tasks_billed_today(store: Store) -> None:
    _submit(store, "task_1")
    store.update("task_1", status="saved", cost_usd=0.3, completed_at=time.time())
    _submit(store, "task_2")
    store.update("task_2", status="saved", cost_usd=1.2, completed_at=time.time() - 3 * 86400)
    _submit(store, "task_3")
    store.update("task_3", status="failed", completed_at=time.time())
    assert store.spent_today_usd() == pytest.approx(0.3)


def test_concurrent_writers_from_threads_all_land(store: Store) -> None:
    def write(n: int) -> None:
        _submit(store, f"task_{n}")
        store.update(f"task_{n}", status="saved")

    threads = [threading.Thread(target=write, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(store.list_runs(status="saved", limit=100)) == 16


def test_two_stores_on_one_journal_see_each_others_writes(journal_url) -> None:
    with Store(journal_url) as first, Store(journal_url) as second:
        _submit(first, "task_a")
        assert second.get("task_a") is not None


def test_an_unopenable_journal_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "dir.sqlite3").mkdir()
    with pytest.raises(StoreError):
        Store(tmp_path / "dir.sqlite3")


def test_stores_opening_a_new_journal_at_once_migrate_it_once(journal_url) -> None:
    path = journal_url
    errors: list[Exception] = []

    def open_it() -> None:
        try:
            Store(path).close()
        except Exception as exc:  # noqa: BLE001 - the test reports any failure
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with Store(path) as store:
        assert store.migrations() == [m.__name__.lstrip("_") for m in MIGRATIONS]


def test_status_only_moves_forward_and_a_saved_video_never_gets_an_error(store: Store) -> None:
    _submit(store, "task_a")
    store.update("task_a", status="saved", video_path="/x/task_a.mp4")
    # A writer with a stale view (a poll, a second owner) cannot turn it back or mark it broken.
    assert store.update("task_a", status="in_progress").status == "saved"
    assert store.update("task_a", status="completed", cost_usd=0.3).status == "saved"
    assert store.update("task_a", status="failed", error="gone").status == "saved"
    again = store.update("task_a", error="downloaded file is not a playable video")
    assert (again.status, again.error, again.video_path) == ("saved", None, "/x/task_a.mp4")
    _submit(store, "task_b")
    store.update("task_b", status="failed", error="policy")
    assert store.update("task_b", status="saved").status == "failed"


def test_a_task_has_one_owner_until_its_lease_expires(store: Store) -> None:
    _submit(store, "task_a")
    first = store.claim("task_a", "owner-1", lease_s=60)
    assert first is not None and first.lease_owner == "owner-1"
    assert store.claim("task_a", "owner-2", lease_s=60) is None  # held: skipped
    store.update("task_a", lease_expires=time.time() - 1)  # what a killed owner's lease becomes
    taken = store.claim("task_a", "owner-2", lease_s=60)
    assert taken is not None and taken.lease_owner == "owner-2"
    store.release("task_a", "owner-1")  # the old owner cannot give away what it lost
    assert store.get("task_a").lease_owner == "owner-2"
    store.release("task_a", "owner-2")
    assert store.claim("task_a", "owner-3", lease_s=60) is not None


def test_prompt_search_finds_every_word_in_any_order_newest_first(store: Store) -> None:
    _submit(store, "task_a", prompt="A red fox runs through deep snow")
    time.sleep(0.01)
    _submit(store, "task_b", prompt="snow falls on a quiet red barn")
    _submit(store, "task_c", prompt="a lighthouse at dusk")
    assert [r.task_id for r in store.search("red snow")] == ["task_b", "task_a"]
    assert [r.task_id for r in store.search("FOX")] == ["task_a"]
    assert store.search("whale") == []
    store.update("task_a", status="saved")
    assert [r.task_id for r in store.search("snow", status="saved")] == ["task_a"]


def test_two_owners_claiming_one_task_at_once_get_it_once(journal_url) -> None:
    with Store(journal_url) as first:
        _submit(first, "task_a")
    winners: list[str] = []

    def claim(owner: str) -> None:
        with Store(journal_url) as mine:
            if mine.claim("task_a", owner, lease_s=60) is not None:
                winners.append(owner)

    threads = [threading.Thread(target=claim, args=(f"owner-{n}",)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1


def test_a_pre_screen_is_kept_per_task_and_no_issues_filters_on_it(store: Store) -> None:
    for task_id in ("task_clean", "task_frozen", "task_unscreened"):
        _submit(store, task_id)
        store.update(task_id, status="saved", video_path=f"/x/{task_id}.mp4")
    store.record_screen("task_clean", {"ok": True, "issues": 0, "badges": []})
    store.record_screen("task_frozen", {"ok": True, "issues": 0, "badges": []})
    store.record_screen("task_frozen", {"ok": True, "issues": 1, "badges": [{"text": "frozen 1.0–2.0 s"}]})
    assert store.screens(["task_frozen", "task_unscreened"]) == {
        "task_frozen": {"ok": True, "issues": 1, "badges": [{"text": "frozen 1.0–2.0 s"}]}}
    assert [r.task_id for r in store.list_runs(no_issues=True)] == ["task_clean"]
    assert [r.task_id for r in store.saved_without_screen()] == ["task_unscreened"]


def test_lineage_journals_the_parent_its_changes_and_lists_the_chain(store: Store) -> None:
    _submit(store, "task_first")
    _submit(store, "task_second", parent_task_id="task_first", parent_changes=["seed"])
    _submit(store, "task_third", parent_task_id="task_second", parent_changes=["prompt", "seed"])
    assert store.get("task_third").parent_changes == ["prompt", "seed"]
    assert [r.task_id for r in store.lineage("task_third")] == ["task_second", "task_first"]
    assert [r.task_id for r in store.children("task_first")] == ["task_second"]


def test_compare_offsets_are_kept_per_set_and_zero_removes_one(store: Store) -> None:
    store.set_offsets("task_a,task_b", {"task_a": 12, "task_b": -3})
    store.set_offsets("task_a,task_b", {"task_b": 0})
    assert store.offsets("task_a,task_b") == {"task_a": 12} and store.offsets("task_a,task_c") == {}
