"""Spend caps: refused before any HTTP call, and atomic under concurrent sweeps."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from lab.budget import Budget
from lab.errors import BudgetExceeded


def test_a_reservation_within_the_cap_is_granted_and_shown():
    budget = Budget(session_cap_usd=1.00)
    budget.reserve(0.60, session="a")
    view = budget.view("a")
    assert view.session_reserved_usd == 0.60
    assert view.session_remaining_usd == 0.40


def test_over_the_session_cap_is_refused_with_what_is_left():
    budget = Budget(session_cap_usd=1.00)
    budget.reserve(0.90, session="a")
    with pytest.raises(BudgetExceeded, match=r"\$0\.10 left"):
        budget.reserve(0.30, session="a")


def test_sessions_have_their_own_caps_but_share_the_daily_cap():
    budget = Budget(session_cap_usd=1.00, day_cap_usd=1.50)
    budget.reserve(0.90, session="a")
    budget.reserve(0.60, session="b")
    with pytest.raises(BudgetExceeded, match="today"):
        budget.reserve(0.30, session="c")


def test_only_charged_money_stays_spent_after_release():
    budget = Budget(session_cap_usd=1.20)
    with budget.reserve(1.20, session="a") as reservation:  # a 4-seed fast sweep
        reservation.charge(0.30)
        reservation.charge(0.30)
    view = budget.view("a")
    assert view.session_spent_usd == 0.60
    assert view.session_reserved_usd == 0.0
    assert view.session_remaining_usd == 0.60


def test_the_daily_cap_starts_from_what_the_journal_says_was_spent_today():
    budget = Budget(day_cap_usd=2.00, spent_today_usd=lambda: 1.80)
    with pytest.raises(BudgetExceeded):
        budget.reserve(0.30)
    assert budget.view().day_remaining_usd == 0.20


def test_a_new_day_resets_the_daily_cap():
    days = iter([dt.date(2026, 11, 24), dt.date(2026, 11, 24), dt.date(2026, 11, 25)])
    budget = Budget(day_cap_usd=0.30, today=lambda: next(days))
    budget.reserve(0.30).charge(0.30)
    budget.reserve(0.30)  # the next day


def test_no_caps_means_anything_goes():
    budget = Budget()
    budget.reserve(1000.0)
    assert budget.view().session_remaining_usd is None


def test_concurrent_reservations_never_overshoot_the_cap():
    budget = Budget(session_cap_usd=3.00, day_cap_usd=3.00)
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
