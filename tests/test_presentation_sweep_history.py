"""What sweep rows and History tiles say: captions, empty states, short task ids, prompts shown as typed."""

from __future__ import annotations

import datetime as dt

from lab import params, presentation as pres
from lab.store import TaskRecord


def record(**changes) -> TaskRecord:
    now = dt.datetime(2026, 12, 1, 10, 48).timestamp()
    base = dict(task_id="task_uTT3C30xOHBky5hQNpuPbC", created_at=now, updated_at=now, status="saved",
                model=params.FAST_MODEL, prompt="a lighthouse at dusk", seed=7, cost_usd=0.30)
    base.update(changes)
    return TaskRecord(**base)


def test_history_caption_states_status_cost_seed_and_date_in_short_lines():
    assert pres.history_caption(record()) == "saved · $0.30\nseed 7\n12-01 10:48"


def test_history_caption_of_a_failed_run_without_a_seed_says_so():
    caption = pres.history_caption(record(status="failed", cost_usd=None, seed=None))
    assert caption.splitlines()[:2] == ["failed · —", "service seed"]


def test_history_caption_lines_stay_short_for_the_largest_seed():
    caption = pres.history_caption(record(seed=params.SEED_MAX, cost_usd=1.2, status="unfinished"))
    assert max(len(line) for line in caption.splitlines()) <= 20


def test_history_says_no_runs_match_the_filter_only_when_nothing_does():
    assert pres.history_empty_text("zebra", 0) == ("**No runs match “zebra”.** Clear the filter to see every run.")
    assert pres.history_empty_text("zebra", 3) == ""
    assert "No runs yet" in pres.history_empty_text("  ", 0)


def test_the_empty_state_shows_the_filter_as_typed():
    assert "“\\*fox\\_”" in pres.history_empty_text("*fox_", 0)


def test_short_task_id_keeps_its_head_and_tail():
    assert pres.short_task_id("task_uTT3C30xOHBky5hQNpuPbC") == "task_uTT3…uPbC"
    assert pres.short_task_id("task_abc") == "task_abc"


def test_task_id_html_escapes_what_the_server_sent_and_carries_the_full_id():
    html = pres.task_id_html('task_<img src=x onerror=alert(1)>"')
    assert "<img" not in html and 'data-task-id="task_&lt;img src=x onerror=alert(1)&gt;&quot;"' in html
    assert pres.task_id_html(None) == ""


def test_a_variant_prompt_is_shown_as_typed_not_as_markdown():
    assert pres.literal_markdown("a *bold* fox # 2 [link](x) $5") == r"a \*bold\* fox \# 2 \[link\]\(x\) \$5"


def test_sweep_rows_are_headed_by_variant_and_seed():
    assert pres.sweep_row_heading(7, None) == "seed 7"
    assert pres.sweep_row_heading(7, 2) == "variant 2 · seed 7"


def test_history_gallery_captions_come_from_history_caption(tmp_path):
    thumb = tmp_path / "task_a_3_4.00s.jpg"
    thumb.write_bytes(b"jpg")
    run = record(task_id="task_a", thumbs=[{"path": str(thumb), "t": None}])
    assert pres.history_view([run], prescreen=True).gallery == [(str(thumb), "saved · $0.30\nseed 7\n12-01 10:48")]


def test_a_seed_the_service_picked_has_one_name_everywhere():
    # It was "random seed" on a History tile, "seed random" in Compare and "picked by the service" elsewhere.
    from lab.compare import set as compare
    from lab.compare.service import CompareService

    unseeded = record(seed=None)
    assert pres.SERVICE_SEED == "seed picked by the service" and pres.SERVICE_SEED_SHORT == "service seed"
    assert pres.history_caption(unseeded).splitlines()[1] == "service seed"
    assert "seed picked by the service" in pres.history_detail(unseeded)
    assert " · seed picked by the service · " in CompareService.choice_label(unseeded)
    assert compare.field_text("seed", None) == "service seed" and compare.field_text("seed", 7) == "seed 7"
    for text in (pres.history_caption(unseeded), pres.history_detail(unseeded), CompareService.choice_label(unseeded),
                 compare.field_text("seed", None)):
        assert "random" not in text, text


def test_sorting_a_sweep_by_its_pre_screen_puts_takes_with_no_issues_first():
    frozen = {"ok": True, "badges": [{"kind": "frozen", "text": "frozen 1.0–2.2 s", "at": 1.0}]}
    two = {"ok": True, "badges": [{"kind": "cut", "text": "1 cut", "at": 1.5}, {"kind": "silent", "text": "silent"}]}
    cells = [(0, record(task_id="t_frozen")), (1, record(task_id="t_two")), (2, record(task_id="t_failed", status="failed")),
             (3, record(task_id="t_pending")), (4, record(task_id="t_clean"))]
    found = pres.sweep_screen(cells, {"t_frozen": frozen, "t_two": two, "t_clean": {"ok": True, "badges": []}},
                              prescreen=True)
    assert found.order == [4, 0, 1, 3, 2] and found.waiting
    assert 'data-video="#sweep-video-0 video"' in found.badges[0] and found.badges[2] == ""
    assert "1 of 4" in found.summary and "1 still being screened" in found.summary
    assert pres.sweep_order_css(found.order).startswith("<style>#sweep-grid > #sweep-row-4 {order: 0}")
