"""Tasks in flight are capped per session and overall; waiting tasks queue, none is lost."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from lab import params
from lab.client import VideosClient
from lab.runner import Runner
from lab.slots import TaskSlots
from lab.store import Store

TIME_SCALE = 0.02


def test_one_session_never_exceeds_its_slots_while_others_proceed():
    slots = TaskSlots(total=3, per_session=2)
    active: dict[str, int] = {"a": 0, "b": 0}
    peaks: dict[str, int] = {"a": 0, "b": 0}
    lock = threading.Lock()

    def task(session: str) -> None:
        with slots.hold(session):
            with lock:
                active[session] += 1
                peaks[session] = max(peaks[session], active[session])
            time.sleep(0.02)
            with lock:
                active[session] -= 1

    threads = [threading.Thread(target=task, args=(s,)) for s in "aaaaaabbbbbb"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peaks["a"] <= 2 and peaks["b"] <= 2
    assert slots.peak_in_flight <= 3
    assert slots.in_flight == 0


def test_slot_counts_must_be_positive():
    with pytest.raises(ValueError):
        TaskSlots(total=0, per_session=1)


def test_a_sweep_wider_than_the_global_cap_queues_and_saves_every_video(simulator, tmp_path: Path):
    slots = TaskSlots(total=2, per_session=4)
    with Store(tmp_path / "journal.sqlite3") as store:
        client = VideosClient.scaled(simulator.base_url, "sk-slots", time_scale=TIME_SCALE)
        runner = Runner(client, store, tmp_path, slots=slots, thumbs=1, preview=False)
        body = {"model": params.FAST_MODEL, "prompt": "slots: a paper boat on a pond", "duration": "4"}
        result = runner.run_sweep(runner.plan_sweep(body, seeds=[1, 2, 3, 4, 5]), concurrency=5)
    assert [r.status for r in result.results] == ["saved"] * 5
    assert slots.peak_in_flight == 2
