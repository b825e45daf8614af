"""Take lineage and the pre-screen through the UI's own handlers, called directly (as test_ui_sessions does).

A run loaded from History (or a sweep row's "Use this seed") and generated again journals its parent and
what changed; History shows the chain and compares a run with its parent; Retry failed journals the
failed task as the new attempt's parent; History lists only the takes whose pre-screen found nothing.
"""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr
import pytest

from helpers import lab_settings
from lab import params, sweeps
from lab.sessions import session_identity
from lab.ui import compare, history, single, sweep
from lab.ui.events import PAGES
from lab.ui.single import PARENT
from lab.wiring import open_app

FAST = {"model": params.FAST_MODEL, "prompt": "a heron in reeds", "duration": "4"}


@pytest.fixture
def lab(make_simulator, tmp_path):
    """The tabs' handlers over a lab that does not screen its takes (no test but the last looks at one)."""
    yield from handlers_over_lab(make_simulator, tmp_path, prescreen="off")


@pytest.fixture
def screening_lab(make_simulator, tmp_path):
    yield from handlers_over_lab(make_simulator, tmp_path, prescreen="on")


def handlers_over_lab(make_simulator, tmp_path, prescreen: str):
    sim = make_simulator()
    settings = lab_settings({"LAB_DATA_DIR": str(tmp_path / "data"), "LAB_SIM_TIME_SCALE": "0.02",
                              "LAB_MAX_SWEEP": "4", "LAB_HISTORY_SCOPE": "session", "LAB_PRESCREEN": prescreen})
    services = open_app(settings, base_url=sim.base_url, api_key="sk-t")
    visitor = session_identity(None)[0]
    page = f"page-{id(object())}"
    PAGES.bind(page, visitor)
    with gr.Blocks():
        with gr.Tabs() as tabs:
            with gr.Tab("s"):
                single_tab = single.build(services.settings.models, [])
            with gr.Tab("w"):
                sweep_tab = sweep.build(4)
            with gr.Tab("h"):
                history_tab = history.build()
            with gr.Tab("c"):
                compare_tab = compare.build()
    yield SimpleNamespace(services=services, visitor=visitor, request=SimpleNamespace(session_hash=page), tabs=tabs,
                          single=single_tab, sweep=sweep_tab, history=history_tab, compare=compare_tab)
    services.close()


def run(t, body, **kw):
    return t.services.runs.run_one(body, session=t.visitor, on_event=None, **kw)


def selected(t, task_id: str) -> dict:
    return history.select_run(t.services, t.history, "table", {"table": [task_id]}, SimpleNamespace(index=[0, 0]),
                              t.request)


def test_a_run_loaded_from_history_is_journalled_with_its_parent_and_history_shows_the_chain(lab) -> None:
    t = lab
    first = run(t, params.with_seed(FAST, 1))
    loaded = history.to_form(t.services, t.single, t.tabs, first.task_id, t.request)
    assert loaded[t.single.form.parent] == first.task_id
    second = run(t, params.with_seed({**FAST, "prompt": "a heron in tall reeds"}, 2),
                 parent_task_id=loaded[t.single.form.parent])
    record = t.services.journal.run(t.visitor, second.task_id)
    assert record.parent_task_id == first.task_id and record.parent_changes == ["prompt", "seed"]
    child_view = selected(t, second.task_id)
    assert first.task_id in child_view[t.history.lineage] and "changed prompt, seed" in child_view[t.history.lineage]
    assert child_view[t.history.compare_parent]["visible"] is True
    assert second.task_id in selected(t, first.task_id)[t.history.lineage]
    opened = compare.compare_with_parent(t.services, t.compare, t.tabs, second.task_id, t.request)
    assert opened[t.compare.current] == [first.task_id, second.task_id]


def test_a_parent_the_session_may_not_see_is_not_journalled(lab) -> None:
    t = lab
    other = t.services.runs.run_one(params.with_seed(FAST, 5), session=session_identity(None)[0], on_event=None)
    mine = run(t, params.with_seed(FAST, 6), parent_task_id=other.task_id)
    assert t.services.journal.run(t.visitor, mine.task_id).parent_task_id is None


def test_retry_failed_journals_the_failed_task_as_the_new_attempts_parent(make_simulator, tmp_path) -> None:
    failing = make_simulator(faults={"failed": 1.0})
    services = open_app(lab_settings({"LAB_DATA_DIR": str(tmp_path / "failing"), "LAB_SIM_TIME_SCALE": "0.02"}),
                        base_url=failing.base_url, api_key="sk-t")
    try:
        visitor = session_identity(None)[0]
        swept = services.runs.run_sweep(sweeps.prepare(FAST, max_sweep=4, seeds_text="1, 2"), session=visitor,
                                        on_event=None)
        retry = services.runs.retry_plan(swept.sweep_id, visitor)
        assert [item.parent_task_id for item in retry.items] == [r.task_id for r in swept.results]
        retried = services.runs.run_sweep(retry, session=visitor, on_event=None, sweep_id=swept.sweep_id)
        parents = {services.journal.run(visitor, r.task_id).parent_task_id for r in retried.results}
        assert parents == {r.task_id for r in swept.results}
    finally:
        services.close()


def test_history_lists_only_takes_whose_pre_screen_found_nothing_when_asked(screening_lab) -> None:
    t = screening_lab
    clean = run(t, params.with_seed(FAST, 1))
    frozen = run(t, params.with_seed({**FAST, "prompt": "a heron [sim:freeze@1-2.5]"}, 2))
    t.services.runs.wiring.screener.drain(timeout=120)
    listing = history.list_runs(t.services, t.history, None, t.request, issues_only=True)
    assert [row[-1] for row in listing[t.history.table]] == [clean.task_id]
    everything = history.list_runs(t.services, t.history, None, t.request)
    shown = {row[-1]: row[-2] for row in everything[t.history.table]}
    assert shown[clean.task_id] == "no issues found" and shown[frozen.task_id].startswith("frozen 1.")
    badges = selected(t, frozen.task_id)[t.history.badges]
    assert 'data-seek="' in badges and 'data-video="#history-video video"' in badges
