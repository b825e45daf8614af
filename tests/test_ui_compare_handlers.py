"""The Compare tab's handlers, called directly (no browser): every path answers in the page, reviews survive
the similarity figures arriving, the run list says where each run came from and whether it is reviewed."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pytest

from compare_runs import Runs, make_runs
from helpers import lab_settings
from lab.compare.set import set_key
from lab.ui import compare
from lab.ui.events import PAGES
from lab.wiring import open_app


@pytest.fixture(scope="module")
def runs(tmp_path_factory, simulator, render_cache) -> Runs:
    from lab.simulator.server import SimConfig, SimulatorServer

    with SimulatorServer(SimConfig(time_scale=0.02, render_cache=render_cache, faults={"failed": 1.0})) as failing:
        return make_runs(tmp_path_factory.mktemp("compare-handlers"), simulator, failing)


def services_for(runs: Runs, base_url: str, scope: str):
    return open_app(lab_settings({"LAB_DATA_DIR": str(runs.data_dir), "LAB_SIM_TIME_SCALE": "0.02",
                                  "LAB_HISTORY_SCOPE": scope}), base_url=base_url)


@pytest.fixture(scope="module")
def lab(runs: Runs, simulator):
    """Services that let every page see every run (history_scope all), and the tab's components."""
    services = services_for(runs, simulator.base_url, "all")
    with gr.Blocks():
        with gr.Tabs() as tabs:
            with gr.Tab("Compare", id="compare"):
                tab = compare.build()
    yield SimpleNamespace(services=services, tab=tab, tabs=tabs)
    services.close()


def page_of(visitor: str) -> SimpleNamespace:
    page = f"page-{visitor}-{id(object())}"
    PAGES.bind(page, visitor)
    return SimpleNamespace(session_hash=page)


def skipped(value) -> bool:
    return isinstance(value, dict) and value.get("__type__") == "update" and len(value) == 1


# ---------------------------------------------------------------- every path answers in the page


def test_a_page_loaded_without_a_compare_link_changes_nothing_and_still_answers_one_output(lab) -> None:
    answer = compare.open_from_link(lab.services, lab.tab, lab.tabs, "", page_of("nobody"))
    assert list(answer) == [lab.tab.status] and skipped(answer[lab.tab.status])


def test_compare_with_nothing_chosen_says_so_and_the_measuring_step_has_one_output(lab) -> None:
    request = page_of("b-nobody")
    shown = compare.open_set(lab.services, lab.tab, [], "", request)
    assert "Cannot compare" in shown[lab.tab.status] and "at least two" in shown[lab.tab.status]
    # What Gradio reported as "measure_set didn't return enough output values": an empty dict.
    measured = compare.measure_set(lab.services, lab.tab, [], request)
    assert measured and all(skipped(value) for value in measured.values())


def test_a_typo_in_the_ids_is_named_in_the_status(lab, runs: Runs) -> None:
    shown = compare.open_set(lab.services, lab.tab, [], f"{runs.seed1} task_tpyo", page_of("b-nobody"))
    assert set(shown) == {lab.tab.status} and "task_tpyo" in shown[lab.tab.status]


def test_someone_elses_runs_are_as_unknown_as_a_typo(runs: Runs, simulator) -> None:
    services = services_for(runs, simulator.base_url, "session")
    try:
        with gr.Blocks():
            tab = compare.build()
        shown = compare.open_set(services, tab, [runs.seed1, runs.seed2], "", page_of("b-stranger"))
    finally:
        services.close()
    assert "Cannot compare" in shown[tab.status] and runs.seed1 in shown[tab.status]
    assert tab.player not in shown


def test_saving_a_review_or_a_report_with_nothing_open_says_so_beside_the_button(lab) -> None:
    request = page_of("b-nobody")
    saved = compare.save_review(lab.services, lab.tab, [], None, "👍", "", False, request)
    assert "open a comparison" in saved[lab.tab.review_status]
    report = compare.download_report(lab.services, lab.tab, [], request)
    assert "Open a comparison first" in report[lab.tab.report_status]


def test_an_offset_event_with_nothing_open_changes_nothing_and_still_answers_one_output(lab) -> None:
    event = SimpleNamespace(_data={"offsets": {"task_x": 3}})
    answered = compare.save_offsets(lab.services, lab.tab, [], event, page_of("b-nobody"))
    assert answered and all(skipped(value) for value in answered.values())


def test_offsets_of_someone_elses_set_are_refused_in_the_page(runs: Runs, simulator) -> None:
    services = services_for(runs, simulator.base_url, "session")
    try:
        with gr.Blocks():
            tab = compare.build()
        event = SimpleNamespace(_data={"offsets": {runs.seed2: 5}})
        answered = compare.save_offsets(services, tab, [runs.seed1, runs.seed2], event, page_of("b-stranger"))
        assert "Offsets not saved" in answered[tab.review_status]
        assert services.compare.store.offsets(set_key([runs.seed1, runs.seed2])) == {}
    finally:
        services.close()


def test_compare_these_from_a_sweep_that_cannot_be_compared_opens_the_tab_with_why(lab) -> None:
    shown = compare.compare_from(lab.services, lab.tab, lab.tabs, ["sweep_nope"], page_of("b-nobody"))
    assert "sweep_nope" in shown[lab.tab.status] and lab.tabs in shown


# ---------------------------------------------------------------- reviews while measuring


def measuring_ffmpeg_running() -> bool:
    """Whether a child of this process is ffmpeg measuring SSIM (its filter graph names ``ssim=``)."""
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            try:
                if b"ssim=" in Path(f"/proc/{child}/cmdline").read_bytes():
                    return True
            except OSError:
                continue
    return False


def test_a_rating_saved_while_similarity_is_measured_stays_when_the_figures_arrive(lab, runs: Runs) -> None:
    request = page_of("b-reviewer")
    wanted = [runs.seed1, runs.seed2, runs.portrait, runs.seed1_again]  # 6 pairs, none measured yet
    opened = compare.open_set(lab.services, lab.tab, wanted, "", request)
    current = opened[lab.tab.current]
    measured: dict = {}
    worker = threading.Thread(target=lambda: measured.update(compare.measure_set(lab.services, lab.tab, current,
                                                                                 request)))
    worker.start()
    deadline = time.monotonic() + 60
    while not measuring_ffmpeg_running():
        assert worker.is_alive() and time.monotonic() < deadline, "the measurement was never seen running"
        time.sleep(0.005)
    saved = compare.save_review(lab.services, lab.tab, current, runs.seed2, "👍", "sharpest", False, request)
    worker.join(120)

    during = json.loads(saved[lab.tab.player])
    assert during["similarity_note"] == "Measuring similarity in the background…"
    after = json.loads(measured[lab.tab.player])
    assert after["similarity"], "the figures arrived"
    cell = next(c for c in after["cells"] if c["task_id"] == runs.seed2)
    assert (cell["rating"], cell["note"]) == (1, "sharpest")


# ---------------------------------------------------------------- the run list


def test_the_run_list_says_which_sweep_a_run_came_from_and_whether_it_is_reviewed(lab, runs: Runs) -> None:
    lab.services.compare.review(runs.seed1_again, rating="👎", note="soft", picked=True)
    listed = compare.list_choices(lab.services, lab.tab, page_of("b-nobody"))[lab.tab.runs]
    labels = {task_id: label for label, task_id in listed["choices"]}
    assert f"sweep …{runs.sweep_id[-6:]}" in labels[runs.seed1] and "reviewed" not in labels[runs.seed1]
    assert "single run" in labels[runs.seed1_again] and "reviewed 👎 ★ ✎" in labels[runs.seed1_again]
    assert all(label.endswith(task_id[-6:]) for task_id, label in labels.items())
