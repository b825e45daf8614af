"""Spend caps: refused before any HTTP call, counted from the journal every process shares, never overshot."""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path

import pytest

from lab import params
from lab.budget import Budget
from lab.errors import BudgetExceeded
from lab.store import Store

FAST = {"model": params.FAST_MODEL, "prompt": "a heron in reeds", "duration": "4"}
STANDARD_4K = {"model": params.STANDARD_MODEL, "prompt": "a heron in reeds", "duration": "8",
               "metadata": {"resolution": "4k"}}


@pytest.fixture
def store(journal_url) -> Store:
    with Store(journal_url) as opened:
        yield opened


def journal_task(store: Store, task_id: str, body: dict = FAST, *, session: str = "a", status: str = "in_progress"):
    return store.record_submitted(task_id, params.resolve(body), body, status=status, session=session)


def test_a_reservation_within_the_cap_is_granted_and_shown(store):
    budget = Budget(store, session_cap_usd=1.00)
    budget.reserve(0.60, session="a")
    view = budget.view("a")
    assert view.session_reserved_usd == 0.60
    assert view.session_remaining_usd == 0.40


def test_over_the_session_cap_is_refused_with_what_is_left(store):
    budget = Budget(store, session_cap_usd=1.00)
    budget.reserve(0.90, session="a")
    with pytest.raises(BudgetExceeded, match=r"\$0\.10 left"):
        budget.reserve(0.30, session="a")


def test_sessions_have_their_own_caps_but_share_the_daily_cap(store):
    budget = Budget(store, session_cap_usd=1.00, day_cap_usd=1.50)
    budget.reserve(0.90, session="a")
    budget.reserve(0.60, session="b")
    with pytest.raises(BudgetExceeded, match="today"):
        budget.reserve(0.30, session="c")


def test_a_journalled_task_holds_its_price_until_the_journal_knows_its_outcome(store):
    budget = Budget(store, session_cap_usd=1.20)
    with budget.reserve(1.20, session="a") as reservation:  # a 4-seed fast sweep
        for n in range(2):
            journal_task(store, f"task_{n}")
            reservation.attach(f"task_{n}", 0.30)
    # The run ended (its deadline passed, Stop waiting, a reload): the two tasks may still bill.
    view = budget.view("a")
    assert (view.session_spent_usd, view.session_reserved_usd, view.session_remaining_usd) == (0.0, 0.60, 0.60)
    store.update("task_0", status="completed", cost_usd=0.30, completed_at=time.time())
    store.update("task_1", status="failed")
    view = budget.view("a")
    assert (view.session_spent_usd, view.session_reserved_usd, view.session_remaining_usd) == (0.30, 0.0, 0.90)


def test_a_task_left_running_by_another_process_blocks_the_cap(store, journal_url):
    journal_task(store, "slow_4k", STANDARD_4K, session="cli")  # journalled by a process that gave up waiting
    other_process = Store(journal_url)
    try:
        budget = Budget(other_process, day_cap_usd=2.40)
        budget.reserve(1.20, session="app")
        with pytest.raises(BudgetExceeded, match=r"\$2\.40 .*held by tasks that may still bill"):
            budget.reserve(1.20, session="app")
    finally:
        other_process.close()


def test_the_session_cap_counts_what_the_session_was_billed_before_this_process(store):
    journal_task(store, "old", session="visitor-1", status="saved")
    store.update("old", cost_usd=0.30, completed_at=time.time())
    budget = Budget(store, session_cap_usd=0.50)  # e.g. the app restarted, or the page reloaded
    with pytest.raises(BudgetExceeded, match=r"\$0\.20 left"):
        budget.reserve(0.30, session="visitor-1")
    budget.reserve(0.30, session="visitor-2")


def test_yesterdays_bills_do_not_count_for_todays_cap(store):
    journal_task(store, "yesterday", status="saved")
    store.update("yesterday", cost_usd=1.20, completed_at=time.time() - 86400 * 1.5)
    budget = Budget(store, day_cap_usd=1.20)
    budget.reserve(1.20)
    assert budget.view().day_spent_usd == 0.0


def test_no_caps_means_anything_goes(store):
    budget = Budget(store)
    budget.reserve(1000.0)
    assert budget.view().session_remaining_usd is None


@pytest.mark.parametrize("amount", [float("nan"), -0.30])
def test_a_reservation_must_be_a_non_negative_number(store, amount):
    with pytest.raises(ValueError):
        Budget(store, day_cap_usd=1.0).reserve(amount)


def test_concurrent_reservations_never_overshoot_the_cap(store):
    budget = Budget(store, session_cap_usd=3.00, day_cap_usd=3.00)
    granted: list[float] = []
    start = threading.Barrier(20)

    def visitor(n: int) -> None:
        start.wait()
        for _ in range(10):
            try:
                budget.reserve(0.30, session=f"s{n % 3}")
                granted.append(0.30)
            except BudgetExceeded:
                pass

    threads = [threading.Thread(target=visitor, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(granted) == 10  # exactly $3.00 worth of fast tasks, never more
    assert budget.view().day_remaining_usd == 0.0


def _reserve_in_a_process(path: str, start, granted, cap: float) -> None:
    with Store(path) as store:
        budget = Budget(store, day_cap_usd=cap)
        start.wait()
        for _ in range(6):
            try:
                budget.reserve(0.30, session="cli")
                granted.put(0.30)
            except BudgetExceeded:
                pass


def test_reservations_from_several_processes_on_one_journal_end_at_the_cap(store, journal_url):
    context = multiprocessing.get_context("spawn")
    start, granted = context.Barrier(4), context.Queue()
    workers = [context.Process(target=_reserve_in_a_process, args=(str(journal_url), start, granted, 1.50))
               for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    amounts = []
    while not granted.empty():
        amounts.append(granted.get())
    assert round(sum(amounts), 2) == 1.50  # 5 of the 24 attempts, whichever processes won them


def _reserve_and_die(path: str) -> None:
    import os

    with Store(path) as store:
        Budget(store).reserve(1.20, session="killed")
    os._exit(0)  # no release: as if killed


def test_a_dead_process_reservation_is_given_back(store, journal_url):
    context = multiprocessing.get_context("spawn")
    worker = context.Process(target=_reserve_and_die, args=(str(journal_url),))
    worker.start()
    worker.join(60)
    assert worker.exitcode == 0
    budget = Budget(store, day_cap_usd=1.20)
    assert budget.view(session="killed").session_reserved_usd == 1.20  # it did reserve, and never released
    budget.reserve(1.20)  # the dead process's $1.20 no longer counts
