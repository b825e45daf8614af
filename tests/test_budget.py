"""Spend caps: refused before any HTTP call, counted from the journal every process shares, never overshot."""

from __future__ import annotations

import multiprocessing
import threading
import time
from functools import partial
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
            store.record_submitted(f"task_{n}", params.resolve(FAST), FAST, status="in_progress", session="a",
                                   also=partial(reservation.attach, f"task_{n}", 0.30))
    # The run ended (its deadline passed, Stop waiting, a reload): the two tasks may still bill.
    view = budget.view("a")
    assert (view.session_spent_usd, view.session_reserved_usd, view.session_remaining_usd) == (0.0, 0.60, 0.60)
    store.update("task_0", status="completed", cost_usd=0.30, completed_at=time.time())
    store.update("task_1", status="failed")
    view = budget.view("a")
    assert (view.session_spent_usd, view.session_reserved_usd, view.session_remaining_usd) == (0.30, 0.0, 0.90)


def test_a_task_takes_its_price_off_the_reservation_in_the_transaction_that_journals_it(store):
    # Moved in a later transaction, the price counted twice in between: of four runs started at once under
    # a $0.60 day cap, a loaded machine granted one instead of two (tests/test_spend_caps.py).
    budget = Budget(store, day_cap_usd=0.60)
    first = budget.reserve(0.30, session="a")

    def attach_then_fail(db):
        first.attach("task_0", 0.30, db)
        raise RuntimeError("the journal write failed after the move")

    with pytest.raises(RuntimeError):
        store.record_submitted("task_0", params.resolve(FAST), FAST, session="a", also=attach_then_fail)
    assert store.get("task_0") is None  # neither the row nor the move is kept
    assert budget.view("a").day_reserved_usd == 0.30
    store.record_submitted("task_0", params.resolve(FAST), FAST, session="a",
                           also=lambda db: first.attach("task_0", 0.30, db))
    assert budget.view("a").day_reserved_usd == 0.30  # held by the task now, once
    budget.reserve(0.30, session="b")  # the second run fits
    with pytest.raises(BudgetExceeded, match="today"):
        budget.reserve(0.30, session="c")


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


# ---------------------------------------------------------------- per person: daily cap and submit rate


def journal_person_task(store: Store, task_id: str, *, session: str, person: str, cost: float | None = None):
    store.record_submitted(task_id, params.resolve(FAST), FAST, status="in_progress", session=session, person=person)
    if cost is not None:
        store.update(task_id, status="saved", cost_usd=cost, completed_at=time.time())


def test_the_person_cap_counts_every_session_of_that_person(store):
    budget = Budget(store, session_cap_usd=0.60, person_cap_usd=0.60)
    journal_person_task(store, "t1", session="b-first", person="ip:203.0.113.7", cost=0.30)
    budget.reserve(0.30, session="b-second", person="ip:203.0.113.7")  # held by a run starting now
    with pytest.raises(BudgetExceeded) as refused:
        budget.reserve(0.30, session="b-third", person="ip:203.0.113.7")  # a fresh session: a new browser
    message = str(refused.value)
    assert message.startswith("Daily per-person cap reached") and "address 203.0.113.7 has $0.00 left" in message
    assert "resets at 00:00 UTC, in" in message and "Nothing was sent." in message
    budget.reserve(0.30, session="b-third", person="ip:198.51.100.9")  # another person is not held by it


def test_a_person_sees_their_spend_today_beside_the_sessions(store):
    budget = Budget(store, person_cap_usd=1.00)
    journal_person_task(store, "t1", session="b-first", person="hf:alice", cost=0.30)
    view = budget.view("b-second", "hf:alice")
    assert (view.session_spent_usd, view.person_spent_usd, view.person_remaining_usd) == (0.0, 0.30, 0.70)
    assert budget.view("b-second").person_spent_usd is None  # no person: nothing to show


def test_yesterdays_bills_do_not_count_for_a_persons_cap(store):
    journal_person_task(store, "old", session="b-first", person="hf:alice", cost=0.30)
    store.update("old", completed_at=time.time() - 86400 * 1.5)
    Budget(store, person_cap_usd=0.30).reserve(0.30, session="b-first", person="hf:alice")


def test_the_cli_has_no_person_and_no_person_cap(store):
    budget = Budget(store, person_cap_usd=0.30, person_submits_per_minute=1)
    for _ in range(3):
        budget.reserve(0.30)


def test_submits_past_the_rate_limit_are_refused_and_say_when_to_try_again(store):
    now = [1_000_000.0]
    budget = Budget(store, person_submits_per_minute=3, clock=lambda: now[0])
    budget.reserve(0.30, session="s1", person="ip:203.0.113.7")
    budget.reserve(0.60, session="s2", person="ip:203.0.113.7", tasks=2)  # a sweep of two counts two
    now[0] += 20
    with pytest.raises(BudgetExceeded) as refused:
        budget.reserve(0.30, session="s3", person="ip:203.0.113.7")
    assert str(refused.value) == ("Submit rate limit reached: address 203.0.113.7 started 3 tasks in the last "
                                  "minute, and each person may start 3 a minute. Try again in 40 s. Nothing was sent.")
    budget.reserve(0.30, session="s3", person="hf:alice")  # someone else
    now[0] += 41
    budget.reserve(0.30, session="s3", person="ip:203.0.113.7")


def test_a_refused_start_does_not_count_against_the_rate(store):
    budget = Budget(store, session_cap_usd=0.30, person_submits_per_minute=2)
    budget.reserve(0.30, session="s1", person="ip:203.0.113.7")
    for _ in range(5):
        with pytest.raises(BudgetExceeded, match="Session cap reached"):
            budget.reserve(0.30, session="s1", person="ip:203.0.113.7")
    budget.reserve(0.30, session="s2", person="ip:203.0.113.7")  # the second of two a minute


def test_a_sweep_larger_than_the_rate_says_to_start_fewer(store):
    with pytest.raises(BudgetExceeded, match="more than the 4 a minute"):
        Budget(store, person_submits_per_minute=4).reserve(1.50, session="s", person="hf:alice", tasks=5)


def test_concurrent_submits_of_one_person_never_pass_the_rate(store):
    budget = Budget(store, person_submits_per_minute=5)
    granted: list[int] = []
    start = threading.Barrier(10)

    def client(n: int) -> None:
        start.wait()
        for _ in range(5):
            try:
                budget.reserve(0.30, session=f"client-{n}", person="ip:203.0.113.7")
                granted.append(n)
            except BudgetExceeded:
                pass

    threads = [threading.Thread(target=client, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(granted) == 5
