"""Spend caps, enforced atomically: concurrent sweeps cannot overshoot.

A run reserves its worst-case cost (N x price) before any HTTP call; the
reservation is charged as tasks complete (only completed tasks are billed) and
the unspent rest is released. Checks and reservations happen under one lock,
so two sweeps racing for the last dollar cannot both get it.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from typing import Callable

from lab.errors import BudgetExceeded

CENT = 1e-9  # float slack when comparing dollar sums


def _today() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


@dataclass(frozen=True)
class BudgetView:
    """What a person sees: spent, held by running tasks, and what is left (None = no cap)."""

    session_spent_usd: float
    session_reserved_usd: float
    session_remaining_usd: float | None
    day_spent_usd: float
    day_reserved_usd: float
    day_remaining_usd: float | None

    def describe(self) -> str:
        parts = [f"session ${self.session_spent_usd:.2f} spent"]
        if self.session_remaining_usd is not None:
            parts.append(f"${self.session_remaining_usd:.2f} left")
        parts.append(f"today ${self.day_spent_usd:.2f}")
        if self.day_remaining_usd is not None:
            parts.append(f"${self.day_remaining_usd:.2f} left of the daily cap")
        return ", ".join(parts)


class Reservation:
    """Money held for one run or sweep. Charge what completes; release the rest."""

    def __init__(self, budget: "Budget", session: str, amount_usd: float, day: dt.date) -> None:
        self._budget = budget
        self.session = session
        self.day = day
        self.held_usd = amount_usd
        self.charged_usd = 0.0

    def charge(self, usd: float) -> None:
        """A task completed: it is billed. Never more than was reserved is counted as held."""
        self._budget._charge(self, usd)

    def release(self) -> None:
        """Give back whatever was not charged (failed, timed out, or not submitted)."""
        self._budget._release(self)

    def __enter__(self) -> "Reservation":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class Budget:
    """Per-session and per-day caps in dollars; ``None`` means no cap."""

    def __init__(
        self,
        session_cap_usd: float | None = None,
        day_cap_usd: float | None = None,
        spent_today_usd: Callable[[], float] | None = None,
        today: Callable[[], dt.date] = _today,
    ) -> None:
        self.session_cap_usd = session_cap_usd
        self.day_cap_usd = day_cap_usd
        self._spent_today_source = spent_today_usd or (lambda: 0.0)
        self._today = today
        self._lock = threading.Lock()
        self._day: dt.date | None = None
        self._day_spent = 0.0
        self._day_reserved = 0.0
        self._session_spent: dict[str, float] = {}
        self._session_reserved: dict[str, float] = {}

    def _roll_day(self) -> dt.date:
        # Called under the lock. A new day starts from what the journal says was spent on it,
        # so a restart does not reset the daily cap.
        today = self._today()
        if self._day != today:
            self._day = today
            self._day_spent = float(self._spent_today_source())
            self._day_reserved = 0.0
        return today

    def reserve(self, usd: float, session: str = "default") -> Reservation:
        """Hold ``usd`` for a run, or raise BudgetExceeded (before any HTTP call)."""
        if usd < 0:
            raise ValueError("a reservation cannot be negative")
        with self._lock:
            day = self._roll_day()
            session_used = self._session_spent.get(session, 0.0) + self._session_reserved.get(session, 0.0)
            if self.session_cap_usd is not None and session_used + usd > self.session_cap_usd + CENT:
                left = max(0.0, self.session_cap_usd - session_used)
                raise BudgetExceeded(
                    f"This would cost up to ${usd:.2f}, but this session has ${left:.2f} left "
                    f"of its ${self.session_cap_usd:.2f} cap. Nothing was sent."
                )
            day_used = self._day_spent + self._day_reserved
            if self.day_cap_usd is not None and day_used + usd > self.day_cap_usd + CENT:
                left = max(0.0, self.day_cap_usd - day_used)
                raise BudgetExceeded(
                    f"This would cost up to ${usd:.2f}, but only ${left:.2f} is left of today's "
                    f"${self.day_cap_usd:.2f} cap. Nothing was sent."
                )
            self._session_reserved[session] = self._session_reserved.get(session, 0.0) + usd
            self._day_reserved += usd
            return Reservation(self, session, usd, day)

    def _charge(self, reservation: Reservation, usd: float) -> None:
        with self._lock:
            self._roll_day()
            from_hold = min(usd, reservation.held_usd)
            reservation.held_usd -= from_hold
            reservation.charged_usd += usd
            self._session_reserved[reservation.session] -= from_hold
            self._session_spent[reservation.session] = self._session_spent.get(reservation.session, 0.0) + usd
            if reservation.day == self._day:
                self._day_reserved -= from_hold
            self._day_spent += usd

    def _release(self, reservation: Reservation) -> None:
        with self._lock:
            self._roll_day()
            held, reservation.held_usd = reservation.held_usd, 0.0
            self._session_reserved[reservation.session] = max(0.0, self._session_reserved.get(reservation.session, 0.0) - held)
            if reservation.day == self._day:
                self._day_reserved = max(0.0, self._day_reserved - held)

    def view(self, session: str = "default") -> BudgetView:
        with self._lock:
            self._roll_day()
            spent = self._session_spent.get(session, 0.0)
            reserved = self._session_reserved.get(session, 0.0)
            return BudgetView(
                session_spent_usd=round(spent, 2),
                session_reserved_usd=round(reserved, 2),
                session_remaining_usd=None
                if self.session_cap_usd is None
                else round(max(0.0, self.session_cap_usd - spent - reserved), 2),
                day_spent_usd=round(self._day_spent, 2),
                day_reserved_usd=round(self._day_reserved, 2),
                day_remaining_usd=None
                if self.day_cap_usd is None
                else round(max(0.0, self.day_cap_usd - self._day_spent - self._day_reserved), 2),
            )
