"""Two replicas on one journal (two Orchestrators, as two app processes behind a load balancer would be):
a page reloaded on the other replica is the same session and sees the run in flight, from the journal."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from helpers import lab_settings
from lab import params, sweeps
from lab.wiring import open_app

BODY = {"model": params.FAST_MODEL, "prompt": "a heron in reeds", "duration": "4"}
SESSION = "b-" + "r" * 24


@pytest.fixture
def replicas(simulator, journal_url, tmp_path: Path):
    url = journal_url if isinstance(journal_url, str) else f"sqlite:///{journal_url}"
    settings = lab_settings({"LAB_DATA_DIR": str(tmp_path / "data"), "LAB_SIM_TIME_SCALE": "0.02",
                             "LAB_DATABASE_URL": url, "LAB_HISTORY_SCOPE": "session",
                             "LAB_SPEND_CAP_SESSION_USD": "none", "LAB_SPEND_CAP_DAY_USD": "none"},
                            tmp_path / "none.yaml")
    first = open_app(settings, base_url=simulator.base_url).runs
    second = open_app(settings, base_url=simulator.base_url).runs
    yield first, second
    first.close()
    second.close()


def test_a_sweep_running_on_one_replica_is_reattached_and_filled_on_the_other(replicas):
    first, second = replicas
    seen_from_second: list = []
    lock = threading.Lock()  # the sweep's cells report from threads of their own

    def on_event(event) -> None:  # the sweep is running on the first replica while this runs
        with lock:
            if event.kind == "submitted" and not seen_from_second:
                active = second.journal.active(SESSION, second.waited_on)
                state = second.journal.sweep(SESSION, active.ref) if active else None
                seen_from_second.append((active.kind if active else None, state.running if state else None))

    plan = sweeps.prepare(BODY, max_sweep=8, seeds=[1, 2])
    outcome = first.run_sweep(plan, session=SESSION, on_event=on_event)
    assert seen_from_second == [("sweep", True)]
    assert second.journal.active(SESSION, second.waited_on) is None  # over: nothing in flight anywhere
    state = second.journal.sweep(SESSION, second.journal.latest_sweep(SESSION))
    assert not state.running
    assert [cell.record.status for cell in state.cells] == ["saved", "saved"]
    assert {cell.record.task_id for cell in state.cells} == {r.task_id for r in outcome.results}


def test_a_single_run_on_one_replica_is_in_flight_for_the_other_until_it_ends(replicas):
    first, second = replicas
    seen_from_second: list = []

    def on_event(event) -> None:
        if event.kind == "submitted":
            active = second.journal.active(SESSION, second.waited_on)
            seen_from_second.append((active.kind, active.ref) if active else None)

    outcome = first.run_one(dict(BODY), session=SESSION, on_event=on_event)
    assert seen_from_second == [("single", outcome.task_id)]
    assert second.journal.active(SESSION, second.waited_on) is None
    assert second.journal.latest_single(SESSION).status == "saved"
