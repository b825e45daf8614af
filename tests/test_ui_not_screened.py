"""With the lab's pre-screen off, the tabs' handlers (called directly, as test_ui_lineage does) never promise a
screen that is not coming: a saved take reads "not screened (pre-screen off)", no watch timer starts for it,
and a sweep counts no take as still being screened. A take screened earlier keeps its badges.
"""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr
import pytest

from helpers import lab_settings
from lab import params, sweeps
from lab.prescreen.background import Screener
from lab.sessions import session_identity
from lab.ui import history, single, sweep
from lab.ui.events import PAGES
from lab.waits import StopWaiting
from lab.wiring import open_app

FAST = {"model": params.FAST_MODEL, "prompt": "a heron in reeds", "duration": "4"}
NOT_SCREENED = "not screened (pre-screen off)"


@pytest.fixture
def lab(make_simulator, tmp_path):
    """The tabs' handlers over a lab whose pre-screen is off (lab_settings' default)."""
    sim = make_simulator()
    services = open_app(lab_settings({"LAB_DATA_DIR": str(tmp_path / "data"), "LAB_SIM_TIME_SCALE": "0.02",
                                      "LAB_MAX_SWEEP": "4", "LAB_HISTORY_SCOPE": "session"}),
                        base_url=sim.base_url, api_key="sk-t")
    assert services.settings.prescreen is False
    visitor = session_identity(None)[0]
    page = f"page-{id(object())}"
    PAGES.bind(page, visitor)
    with gr.Blocks():
        with gr.Tabs():
            with gr.Tab("s"):
                single_tab = single.build(services.settings.models, [])
            with gr.Tab("w"):
                sweep_tab = sweep.build(4)
            with gr.Tab("h"):
                history_tab = history.build(services.settings.prescreen)
        key = gr.State(None)
    yield SimpleNamespace(services=services, visitor=visitor, request=SimpleNamespace(session_hash=page), key=key,
                          single=single_tab, sweep=sweep_tab, history=history_tab)
    services.close()


def generated(t, **values) -> dict:
    """Generate through the Single run tab's own handler; its last update (the result)."""
    form = t.single.form
    data = {c: c.value for c in form.components}
    data.update({form.raw_origin: "", t.single.randomize: False, t.single.background: [], t.key: None})
    for name, value in values.items():
        data[form.fields[name]] = value
    return list(single.run_generate(t.services, StopWaiting(), t.single, t.key, data, t.request))[-1]


def run(t, seed: int):
    outcome = t.services.runs.run_one(params.with_seed(FAST, seed), session=t.visitor, on_event=None)
    assert outcome.ok, outcome.message
    return outcome


def test_with_the_pre_screen_off_a_saved_single_run_reads_not_screened_never_pending(lab) -> None:
    done = generated(lab, prompt=FAST["prompt"], model=FAST["model"], duration=FAST["duration"])
    assert str(done[lab.single.video]).endswith(".mp4")
    assert NOT_SCREENED in done[lab.single.badges] and "pending" not in done[lab.single.badges]


def test_with_the_pre_screen_off_a_saved_single_run_starts_no_screen_watch(lab) -> None:
    done = generated(lab, prompt=FAST["prompt"], model=FAST["model"], duration=FAST["duration"])
    assert done[lab.single.screen_task] and done[lab.single.screen_watch].active is False


def test_with_the_pre_screen_off_a_screen_watch_still_ticking_stops_and_says_not_screened(lab) -> None:
    # A page from before a restart with the pre-screen turned off may still have its timer running.
    take = run(lab, 1)
    out = single.check_screen(lab.services, lab.single, take.task_id, lab.request)
    assert out[lab.single.screen_watch].active is False and NOT_SCREENED in out[lab.single.badges]


def test_with_the_pre_screen_off_history_reads_not_screened_in_its_column_and_under_the_video(lab) -> None:
    take = run(lab, 2)
    listing = history.list_runs(lab.services, lab.history, None, lab.request)
    assert {row[-1]: row[-2] for row in listing[lab.history.table]}[take.task_id] == "not screened (off)"
    shown = history.select_run(lab.services, lab.history, "table", {"table": [take.task_id]},
                               SimpleNamespace(index=[0, 0]), lab.request)
    assert NOT_SCREENED in shown[lab.history.badges] and "pending" not in shown[lab.history.badges]


def test_a_take_screened_earlier_keeps_its_badges_in_history_with_the_pre_screen_now_off(lab) -> None:
    take = run(lab, 3)
    record = lab.services.journal.run(lab.visitor, take.task_id)
    screener = Screener(lab.services.runs.store, lab.services.settings.data_dir, lab.services.settings.screen)
    try:
        screener.screen_now(take.task_id, record.video_path)  # as `python -m lab screen TASK` does
    finally:
        screener.close()
    listing = history.list_runs(lab.services, lab.history, None, lab.request)
    column = {row[-1]: row[-2] for row in listing[lab.history.table]}[take.task_id]
    assert column and "not screened" not in column and column != "pending"


def test_the_history_no_issues_checkbox_is_one_of_the_filters_every_listing_reads(lab) -> None:
    # Its change event (and every listing the page makes) passes tab.filters to list_runs.
    assert lab.history.filters == [lab.history.filter, lab.history.review_filter, lab.history.issues_only]


def test_with_the_pre_screen_off_the_no_issues_filter_leaves_unscreened_takes_out_and_says_why(lab) -> None:
    run(lab, 4)
    listing = history.list_runs(lab.services, lab.history, None, lab.request, issues_only=True)
    assert listing[lab.history.table] == [] and "pre-screen is off" in listing[lab.history.empty]


def test_with_the_pre_screen_off_a_finished_sweep_counts_no_take_still_being_screened(lab) -> None:
    swept = lab.services.runs.run_sweep(sweeps.prepare(FAST, max_sweep=4, seeds_text="1, 2"), session=lab.visitor,
                                        on_event=None)
    out = sweep.show_screens(lab.services, lab.sweep, swept.sweep_id, False, lab.request)
    assert "still being screened" not in out[lab.sweep.screen] and "2 not screened" in out[lab.sweep.screen]
    assert out[lab.sweep.screen_watch].active is False
