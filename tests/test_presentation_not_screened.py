"""A saved take's pre-screen state as the presentation layer words it, with the lab's pre-screen on or off.

With the pre-screen off (LAB_PRESCREEN=off) no screen is coming: a take without one reads "not screened",
never "pending", and nothing counts it as "still being screened". A take screened earlier keeps its badges.
"""

from __future__ import annotations

from lab import presentation as pres
from lab.compare.set import screen_for_player
from lab.store import TaskRecord

FROZEN = {"ok": True, "issues": 1, "badges": [{"kind": "frozen", "text": "frozen 1.0–2.5 s", "at": 1.0,
                                                 "title": "The picture does not change."}]}


def saved(task_id: str = "task_a") -> TaskRecord:
    return TaskRecord(task_id=task_id, status="saved", created_at=1_764_586_080.0, updated_at=1_764_586_080.0,
                      prompt="a heron")


def test_with_the_pre_screen_off_a_saved_take_reads_not_screened_never_pending() -> None:
    assert pres.screen_summary(saved(), None, prescreen=False) == "not screened (pre-screen off)"
    badge = pres.badges_html(None, "#run-video video", prescreen=False)
    assert "not screened (pre-screen off)" in badge and "pending" not in badge


def test_the_not_screened_badge_says_how_to_turn_the_pre_screen_on_in_its_title() -> None:
    assert 'title="The pre-screen is off' in pres.badges_html(None, "#run-video video", prescreen=False)
    assert "LAB_PRESCREEN=on" in pres.badges_html(None, "#run-video video", prescreen=False)


def test_with_the_pre_screen_on_a_take_without_a_screen_still_reads_pending() -> None:
    assert pres.screen_summary(saved(), None, prescreen=True) == pres.SCREEN_PENDING
    assert "pre-screen pending" in pres.badges_html(None, "#run-video video", prescreen=True)


def test_a_take_screened_earlier_shows_its_badges_with_the_pre_screen_now_off() -> None:
    assert pres.screen_summary(saved(), FROZEN, prescreen=False) == "frozen 1.0–2.5 s"
    badge = pres.badges_html(FROZEN, "#run-video video", prescreen=False)
    assert 'data-seek="1.000"' in badge and "not screened" not in badge


def test_a_run_without_a_saved_video_has_no_pre_screen_words_either_way() -> None:
    failed = TaskRecord(task_id="task_f", status="failed", created_at=1_764_586_080.0, updated_at=1_764_586_080.0)
    assert pres.screen_summary(failed, None, prescreen=False) == pres.screen_summary(failed, None, prescreen=True) == ""


def test_with_the_pre_screen_off_history_shows_not_screened_in_the_pre_screen_column() -> None:
    view = pres.history_view([saved()], prescreen=False)
    assert view.rows[0][pres.HISTORY_HEADERS.index("pre-screen")] == "not screened (off)"


def test_with_the_pre_screen_off_a_sweep_counts_no_take_still_being_screened_and_waits_for_none() -> None:
    cells = [(0, saved("t_0")), (1, saved("t_1")), (2, None)]
    found = pres.sweep_screen(cells, {"t_0": FROZEN}, prescreen=False)
    assert "still being screened" not in found.summary and "1 not screened" in found.summary
    assert found.waiting is False
    assert "not screened (pre-screen off)" in found.badges[1]


def test_with_the_pre_screen_on_a_sweep_still_waits_for_its_unscreened_takes() -> None:
    found = pres.sweep_screen([(0, saved("t_0"))], {}, prescreen=True)
    assert "1 still being screened" in found.summary and found.waiting is True


def test_with_the_pre_screen_off_the_compare_player_marks_a_take_off_not_pending() -> None:
    assert screen_for_player(None, prescreen=False) == {"state": "off", "badges": []}
    assert screen_for_player(None, prescreen=True)["state"] == "pending"
    assert screen_for_player(FROZEN, prescreen=False)["state"] == "done"


def test_the_no_issues_filter_says_it_leaves_unscreened_takes_out_only_when_the_pre_screen_is_off() -> None:
    assert "not screened are left out" in pres.no_issues_info(False)
    assert pres.no_issues_info(True) is None


def test_an_empty_no_issues_listing_with_the_pre_screen_off_says_why_rather_than_no_runs_yet() -> None:
    text = pres.history_empty_text(None, 0, issues_only=True, prescreen=False)
    assert "No runs yet" not in text and "pre-screen is off" in text
