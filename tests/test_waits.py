"""Who waits for what, without gradio: stop-waiting requests, tasks held by a wait, the event pump."""

from __future__ import annotations

import threading

from lab.waits import EventPump, InFlight, StopWaiting


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_stop_with_nothing_running_says_there_is_nothing_to_stop():
    stops = StopWaiting()
    assert stops.request_stop(("s1", "single")) is False


def test_stop_reaches_the_running_wait_of_that_session_and_tab_only():
    clock = Clock()
    stops = StopWaiting(clock)
    with stops.running(("s1", "single")) as started:
        clock.now += 1
        assert stops.request_stop(("s1", "single")) is True
        assert stops.stop_requested(("s1", "single"), started)
        assert not stops.stop_requested(("s2", "single"), started)
        assert not stops.stop_requested(("s1", "sweep"), started)


def test_a_stop_never_stops_the_next_run():
    clock = Clock()
    stops = StopWaiting(clock)
    with stops.running(("s1", "single")):
        clock.now += 1
        stops.request_stop(("s1", "single"))
    clock.now += 1
    with stops.running(("s1", "single")) as started:
        assert not stops.stop_requested(("s1", "single"), started)
    assert stops.request_stop(("s1", "single")) is False  # the run is over


def test_a_task_is_held_from_submitted_until_done():
    in_flight = InFlight()
    with in_flight.run() as track:
        track("task_a", True)
        assert in_flight.holds("task_a")
        track("task_a", False)
    assert not in_flight.holds("task_a")


def test_a_task_created_while_a_run_is_submitting_is_held_before_its_event_arrives():
    clock = Clock()
    in_flight = InFlight(clock)
    assert not in_flight.holds("task_old", created_at=clock.now)
    with in_flight.run():
        clock.now += 1
        assert in_flight.holds("task_new", created_at=clock.now)  # journalled, "submitted" not yet seen
        assert not in_flight.holds("task_old", created_at=clock.now - 5)  # from before: not this run's
    assert not in_flight.holds("task_new", created_at=clock.now)


def test_claimed_tasks_are_held_until_released():
    in_flight = InFlight()
    in_flight.claim(["task_a", "task_b"])
    assert in_flight.task_ids() == {"task_a", "task_b"}
    in_flight.release(["task_a"])
    assert not in_flight.holds("task_a") and in_flight.holds("task_b")


def test_event_pump_yields_events_then_keeps_the_result():
    gate = threading.Event()

    def work(on_event):
        on_event("one")
        gate.wait(5)
        on_event("two")
        return 42

    pump = EventPump(work, tick=0.01)
    seen = []
    for event in pump:
        if event is None:
            gate.set()  # a tick while the work waits: the page stays live
        else:
            seen.append(event)
    assert seen == ["one", "two"] and pump.result == 42 and pump.error is None


def test_event_pump_hands_over_the_error():
    def work(on_event):
        raise ValueError("boom")

    pump = EventPump(work, tick=0.01)
    assert list(pump) == []
    assert isinstance(pump.error, ValueError)
