"""The orchestrator against a real simulator: "Fetch unfinished" never waits twice for one task."""

from __future__ import annotations

import threading

import pytest
import requests

from helpers import lab_settings
from lab import params
from lab.client import VideosClient
from lab.wiring import open_app

CONTENT = "GET /v1/videos/{id}/content"
BODY = {"model": params.FAST_MODEL, "prompt": "a heron lifting off a misty pond", "duration": "4"}


def downloads(sim) -> int:
    ledger = requests.get(sim.base_url.removesuffix("/v1") + "/_sim/ledger", timeout=10).json()
    return ledger["requests"].get(CONTENT, 0)


@pytest.fixture
def sim(make_simulator):
    # Every task takes the same (scaled) time: long enough to press "Fetch unfinished" meanwhile.
    return make_simulator(fixed_generation_s=150)


@pytest.fixture
def services(sim, tmp_path):
    settings = lab_settings({"LAB_DATA_DIR": str(tmp_path / "data"), "LAB_SIM_TIME_SCALE": "0.02",
                             "LAB_SPEND_CAP_SESSION_USD": "none", "LAB_SPEND_CAP_DAY_USD": "none"})
    orchestrator = open_app(settings, base_url=sim.base_url, api_key="sk-orchestrator-test").runs
    yield orchestrator
    orchestrator.close()


def journal_left_by_an_earlier_process(services, sim) -> str:
    """A task submitted and journalled by a process that then stopped (nobody here waits on it)."""
    resolution = params.resolve({**BODY, "metadata": {"seed": 1}})
    with VideosClient(sim.base_url, "sk-orchestrator-test") as client:
        submitted = client.submit(resolution.wire)
    services.store.record_submitted(submitted.task_id, resolution, resolution.wire, base_url_kind=services.backend)
    return submitted.task_id


def start_a_run(services):
    """A run in a thread (as after "Stop waiting"); returns its task id once submitted, and the thread."""
    submitted = threading.Event()
    task: dict = {}

    def on_event(event):
        if event.kind == "submitted":
            task["id"] = event.task_id
            submitted.set()

    thread = threading.Thread(target=lambda: task.update(outcome=services.run_one(
        {**BODY, "metadata": {"seed": 2}}, session="s1", on_event=on_event)))
    thread.start()
    assert submitted.wait(30)
    return task, thread


def test_fetch_unfinished_leaves_a_task_being_waited_on_to_its_wait(services, sim):
    task, thread = start_a_run(services)
    report = services.resume()
    thread.join(60)
    assert report.results == [] and report.held == [task["id"]]
    assert task["outcome"].ok
    assert downloads(sim) == 1


def test_fetch_unfinished_resumes_only_the_tasks_no_wait_holds(services, sim):
    earlier = journal_left_by_an_earlier_process(services, sim)
    task, thread = start_a_run(services)
    report = services.resume()
    thread.join(60)
    assert [r.task_id for r in report.results] == [earlier] and report.results[0].ok
    assert report.held == [task["id"]]
    assert task["outcome"].ok
    assert services.store.get(earlier).status == "saved" and services.store.get(task["id"]).status == "saved"
    assert downloads(sim) == 2  # one per task: the run's task was not downloaded a second time


def test_once_the_wait_is_over_nothing_is_held(services, sim):
    task, thread = start_a_run(services)
    thread.join(60)
    assert services.in_flight.task_ids() == set()
    assert services.resume().held == []


def test_a_run_left_to_the_background_ends_with_all_a_waited_for_run_shows(services, sim):
    held_when_saved = []

    def on_event(event):
        if event.kind == "saved":  # the journal says saved; the thumbnails are not made yet
            held_when_saved.append(services.waited_on(event.record))

    outcome = services.run_one({**BODY, "metadata": {"seed": 3}}, session="s1", on_event=on_event)
    # A page watching the journal must not show the run at "saved": its run still holds it.
    assert held_when_saved == [True]
    record = services.store.get(outcome.task_id)
    assert not services.waited_on(record)
    ended = services.ended_outcome(record)
    assert ended.ok and len(ended.thumbnails) == len(outcome.thumbnails) > 0
    assert ended.answer["status"] == "completed" and ended.answer["model"] == params.FAST_MODEL
    assert ended.delivered == outcome.delivered == {"size": "1280x720", "duration_s": ended.delivered["duration_s"]}
    assert abs(ended.delivered["duration_s"] - 4.0) < 0.5
