"""Spend caps that are hard ceilings, counted from the journal every process shares.

What counts against a cap, all read inside the one ``BEGIN IMMEDIATE``
transaction that grants a new reservation (so the app, the CLI and several
workers on one data directory cannot race past a cap):

- **spent**: tasks the journal records as billed (``cost_usd``; today's by
  ``completed_at`` for the day cap, all of a session's for its cap);
- **held by tasks**: the price of every journalled task whose outcome the
  journal does not know yet (neither billed, saved nor failed). A task that
  outlives its poll deadline, was left by "Stop waiting", a reload or a killed
  process keeps holding its price until it is saved, failed, or resolved by
  ``resume``: the service may still bill it;
- **held by submits of unknown outcome**: a POST that failed after it was sent
  may have created and billed a task the journal never heard of. Its price stays
  held (``Budget.hold_unknown``, a ``spend_reservations`` row no process owns)
  until the user looks it up in their account and dismisses it;
- **reserved**: money held for a run or sweep whose tasks are not journalled
  yet (a row in ``spend_reservations``). As each task is journalled its price
  moves from the reservation to the task (``Reservation.attach``, inside the
  transaction that writes the task row, so no reader ever counts it twice and a
  burst of runs under a cap is granted exactly as many as fit); whatever is
  left is released when the run ends. A killed process's rows are reaped.

Three caps: a **session**'s (all its time), the **day**'s (the whole lab,
since 00:00 UTC) and a **person**'s (``lab.people``: a Hugging Face user or a
client address, across all their sessions and API clients, since 00:00 UTC).
In the same transaction a person's **submit rate** is counted: the tasks they
started in the last minute (``submit_starts``), so several processes or
replicas share one limit and a script cannot queue hundreds of paid runs.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import socket
import sqlite3
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from lab.errors import BudgetExceeded, StoreError
from lab.params import MODEL_PRICES_USD
from lab.people import describe_person
from lab.store import FINISHED_STATUSES, UNKNOWN_HOLD_OWNER, Store, unknown_hold_id

CENT = 1e-9  # float slack when comparing dollar sums
RATE_WINDOW_S = 60.0  # the submit rate is counted over the last minute
RATE_KEEP_S = 3600.0  # starts older than this are deleted as new ones are written
# A task of a model this lab does not price holds the dearest price: too much, never too little.
_PRICE_SQL = (
    "CASE model " + " ".join(f"WHEN '{model}' THEN {price!r}" for model, price in MODEL_PRICES_USD.items())
    + f" ELSE {max(MODEL_PRICES_USD.values())!r} END"
)
_OPEN_TASK = f"status NOT IN ({', '.join(repr(s) for s in FINISHED_STATUSES)}) AND cost_usd IS NULL"
_HOST = socket.gethostname()


def start_of_day_utc(now: float) -> float:
    day = dt.datetime.fromtimestamp(now, dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return day.timestamp()


@dataclass(frozen=True)
class Spend:
    """Dollars against one cap: billed, held by tasks still open, reserved for runs starting."""

    spent_usd: float
    held_usd: float
    reserved_usd: float

    @property
    def used_usd(self) -> float:
        return self.spent_usd + self.held_usd + self.reserved_usd


@dataclass(frozen=True)
class BudgetView:
    """What a person sees: spent, held by running tasks, and what is left (None = no cap)."""

    session_spent_usd: float
    session_reserved_usd: float
    session_remaining_usd: float | None
    day_spent_usd: float
    day_reserved_usd: float
    day_remaining_usd: float | None
    # The person's own (today, across their sessions and API clients); None: no person (the CLI).
    person_spent_usd: float | None = None
    person_reserved_usd: float = 0.0
    person_remaining_usd: float | None = None

    def describe(self) -> str:
        parts = [f"session ${self.session_spent_usd:.2f} spent"]
        if self.session_reserved_usd > 0:
            parts.append(f"${self.session_reserved_usd:.2f} held by running tasks")
        if self.session_remaining_usd is not None:
            parts.append(f"${self.session_remaining_usd:.2f} left")
        if self.person_spent_usd is not None:
            parts.append(f"you today ${self.person_spent_usd:.2f}")
            if self.person_remaining_usd is not None:
                parts.append(f"${self.person_remaining_usd:.2f} left of your daily cap")
        parts.append(f"today ${self.day_spent_usd:.2f}")
        if self.day_remaining_usd is not None:
            parts.append(f"${self.day_remaining_usd:.2f} left of the daily cap")
        return ", ".join(parts)


def resets_text(now: float) -> str:
    """When a daily cap resets, as a person reads it: "at 00:00 UTC, in 3 h 05 min"."""
    left = max(0, int(start_of_day_utc(now) + 86400 - now))
    hours, minutes = divmod((left + 59) // 60, 60)
    return f"at 00:00 UTC, in {hours} h {minutes:02d} min" if hours else f"at 00:00 UTC, in {minutes} min"


def refusal(usd: float, session: Spend, day: Spend, session_cap: float | None, day_cap: float | None, *,
            person: Spend | None = None, person_cap: float | None = None, who: str = "you",
            now: float | None = None) -> str | None:
    """Why ``usd`` more would break a cap (the message a person reads: which cap, when it resets), or None.

    Pure. ``who`` names the person ("Hugging Face user alice", "address 203.0.113.7").
    """
    now = time.time() if now is None else now
    if session_cap is not None and session.used_usd + usd > session_cap + CENT:
        left = max(0.0, session_cap - session.used_usd)
        return (f"Session cap reached: this would cost up to ${usd:.2f}, but this session has ${left:.2f} left of "
                f"its ${session_cap:.2f} cap{_held_note(session)}. A session's cap does not reset"
                f"{'; your daily cap is counted across all your sessions' if person_cap is not None else ''}. "
                "Nothing was sent.")
    if person is not None and person_cap is not None and person.used_usd + usd > person_cap + CENT:
        left = max(0.0, person_cap - person.used_usd)
        return (f"Daily per-person cap reached: this would cost up to ${usd:.2f}, but {who} has ${left:.2f} left "
                f"of today's ${person_cap:.2f} per-person cap, counted across all their sessions and API clients"
                f"{_held_note(person)}. It resets {resets_text(now)}. Nothing was sent.")
    if day_cap is not None and day.used_usd + usd > day_cap + CENT:
        left = max(0.0, day_cap - day.used_usd)
        return (f"Daily cap of this lab reached: this would cost up to ${usd:.2f}, but only ${left:.2f} is left of "
                f"today's ${day_cap:.2f} cap for everyone{_held_note(day)}. It resets {resets_text(now)}. "
                "Nothing was sent.")
    return None


def rate_refusal(tasks: int, starts: list[tuple[float, int]], limit: int | None, now: float, *,
                 who: str = "you") -> str | None:
    """Why starting ``tasks`` more would pass ``limit`` tasks a minute, or None. ``starts``: (time, tasks)
    of the person's starts in the last minute, oldest first. Pure."""
    if limit is None:
        return None
    recent = sum(count for _, count in starts)
    if recent + tasks <= limit:
        return None
    if tasks > limit:
        return (f"Too many runs at once: this would start {tasks} tasks, more than the {limit} a minute each person "
                "may start. Start fewer at a time. Nothing was sent.")
    # Wait until enough of the minute's starts have aged out to make room.
    freed, wait = recent, RATE_WINDOW_S
    for started, count in starts:
        freed -= count
        if freed + tasks <= limit:
            wait = started + RATE_WINDOW_S - now
            break
    return (f"Submit rate limit reached: {who} started {recent} task{'s' if recent != 1 else ''} in the last minute, "
            f"and each person may start {limit} a minute. Try again in {max(1, math.ceil(wait))} s. Nothing was sent.")


def _held_note(spend: Spend) -> str:
    held = spend.held_usd + spend.reserved_usd
    return f" (${held:.2f} of it held by tasks that may still bill)" if held > CENT else ""


def _owner_alive(owner: str) -> bool:
    """A reservation's owner process still runs (owners on other hosts are assumed alive)."""
    host, _, pid = owner.rpartition(":")
    if host != _HOST or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. EPERM: it exists, owned by someone else
        return True
    return True


class Reservation:
    """Money held for one run or sweep until its tasks are journalled; release the rest at the end."""

    def __init__(self, budget: "Budget", reservation_id: str | None, session: str, amount_usd: float,
                 person: str | None = None) -> None:
        self._budget = budget
        self.reservation_id = reservation_id  # None: nothing held (a zero reservation)
        self.session = session
        self.person = person  # whose per-person cap and rate it counts against (journalled with its tasks)
        self.held_usd = amount_usd
        self.charged_usd = 0.0

    def attach(self, task_id: str, price_usd: float | None, db: Any) -> None:
        """Task ``task_id`` is journalled and now holds its own price: take it off this reservation.

        ``db``: the transaction that journals the task (``Store.record_submitted``'s ``also``), the only
        place to move it: moved after it, the price counted twice meanwhile and a run starting then was
        refused under the cap.
        """
        self._budget._take_off(self, price_usd or 0.0, db)

    def charge(self, usd: float) -> None:
        """A task completed. The journal holds its cost; this only keeps the run's own tally."""
        self.charged_usd += usd

    def release(self) -> None:
        """Give back what no journalled task took (failed to submit, not submitted)."""
        self._budget._release(self)

    def __enter__(self) -> "Reservation":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class Budget:
    """Per-session and per-day caps in dollars over the journal in ``store``; ``None`` means no cap."""

    def __init__(
        self,
        store: Store,
        session_cap_usd: float | None = None,
        day_cap_usd: float | None = None,
        *,
        person_cap_usd: float | None = None,
        person_submits_per_minute: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.session_cap_usd = session_cap_usd
        self.day_cap_usd = day_cap_usd
        self.person_cap_usd = person_cap_usd
        self.person_submits_per_minute = person_submits_per_minute
        self._clock = clock
        self._owner = f"{_HOST}:{os.getpid()}"

    # ------------------------------------------------------------ reading the journal

    def _person_spend(self, db: Any, person: str) -> Spend:
        """A person's spend today (billed since 00:00 UTC) plus what their open tasks and runs hold."""
        spent = db.execute(
            "SELECT COALESCE(SUM(cost_usd), 0.0) FROM tasks WHERE cost_usd IS NOT NULL AND person = ? "
            "AND completed_at >= ?", (person, start_of_day_utc(self._clock())),
        ).fetchone()[0]
        held = db.execute(
            f"SELECT COALESCE(SUM({_PRICE_SQL}), 0.0) FROM tasks WHERE {_OPEN_TASK} AND person = ?", (person,)
        ).fetchone()[0]
        reserved = db.execute(
            "SELECT COALESCE(SUM(held_usd), 0.0) FROM spend_reservations WHERE person = ?", (person,)
        ).fetchone()[0]
        return Spend(float(spent), float(held), float(reserved))

    def _recent_starts(self, db: Any, person: str, now: float) -> list[tuple[float, int]]:
        rows = db.execute("SELECT started_at, tasks FROM submit_starts WHERE person = ? AND started_at > ? "
                          "ORDER BY started_at", (person, now - RATE_WINDOW_S)).fetchall()
        return [(float(row[0]), int(row[1])) for row in rows]

    def _spend(self, db: sqlite3.Connection, session: str | None) -> Spend:
        """Spend of one session (``session``) or of the whole day (None)."""
        if session is None:
            spent = db.execute(
                "SELECT COALESCE(SUM(cost_usd), 0.0) FROM tasks WHERE cost_usd IS NOT NULL AND completed_at >= ?",
                (start_of_day_utc(self._clock()),),
            ).fetchone()[0]
            held = db.execute(f"SELECT COALESCE(SUM({_PRICE_SQL}), 0.0) FROM tasks WHERE {_OPEN_TASK}").fetchone()[0]
            reserved = db.execute("SELECT COALESCE(SUM(held_usd), 0.0) FROM spend_reservations").fetchone()[0]
        else:
            spent = db.execute(
                "SELECT COALESCE(SUM(cost_usd), 0.0) FROM tasks WHERE cost_usd IS NOT NULL AND session = ?", (session,)
            ).fetchone()[0]
            held = db.execute(
                f"SELECT COALESCE(SUM({_PRICE_SQL}), 0.0) FROM tasks WHERE {_OPEN_TASK} AND session = ?", (session,)
            ).fetchone()[0]
            reserved = db.execute(
                "SELECT COALESCE(SUM(held_usd), 0.0) FROM spend_reservations WHERE session = ?", (session,)
            ).fetchone()[0]
        return Spend(float(spent), float(held), float(reserved))

    def _reap(self, db: sqlite3.Connection) -> None:
        """Drop reservations of processes that died before releasing them (their tasks hold their own)."""
        owners = [row[0] for row in db.execute("SELECT DISTINCT owner FROM spend_reservations WHERE owner != ? "
                                                "AND owner != ?", (self._owner, UNKNOWN_HOLD_OWNER))]
        for owner in owners:
            if not _owner_alive(owner):
                db.execute("DELETE FROM spend_reservations WHERE owner = ?", (owner,))

    # ------------------------------------------------------------ reserving

    def reserve(self, usd: float, session: str = "default", *, person: str | None = None,
                tasks: int = 1) -> Reservation:
        """Hold ``usd`` for a run of ``tasks`` tasks, or raise BudgetExceeded (before any HTTP call).

        With ``person`` (a visitor; the CLI has none) their daily cap and submit rate count too, in the
        same transaction as the session's and the day's caps; a granted start is journalled for the rate.
        """
        who = describe_person(person)
        if not usd >= 0:  # also refuses nan
            raise ValueError("a reservation must be a non-negative number of dollars")
        counts_rate = person is not None and self.person_submits_per_minute is not None
        if usd == 0 and not counts_rate:
            return Reservation(self, None, session, 0.0, person)
        reservation_id = uuid.uuid4().hex if usd > 0 else None
        try:
            with self.store.immediate() as db:
                self._reap(db)
                now = self._clock()
                problem = None
                if person is not None:
                    problem = rate_refusal(tasks, self._recent_starts(db, person, now),
                                           self.person_submits_per_minute, now, who=who)
                if problem is None and usd > 0:
                    problem = refusal(usd, self._spend(db, session), self._spend(db, None),
                                      self.session_cap_usd, self.day_cap_usd,
                                      person=self._person_spend(db, person) if person is not None else None,
                                      person_cap=self.person_cap_usd if person is not None else None,
                                      who=who, now=now)
                if problem is None:
                    if reservation_id is not None:
                        db.execute(
                            "INSERT INTO spend_reservations (reservation_id, session, held_usd, created_at, owner, "
                            "person) VALUES (?, ?, ?, ?, ?, ?)",
                            (reservation_id, session, float(usd), time.time(), self._owner, person),
                        )
                    if person is not None:
                        db.execute("DELETE FROM submit_starts WHERE started_at < ?", (now - RATE_KEEP_S,))
                        db.execute("INSERT INTO submit_starts (start_id, person, started_at, tasks) VALUES (?, ?, ?, ?)",
                                   (uuid.uuid4().hex, person, now, int(tasks)))
        except sqlite3.Error as exc:
            raise StoreError(f"journal {self.store.path}: {exc}") from exc
        if problem is not None:
            raise BudgetExceeded(problem)
        return Reservation(self, reservation_id, session, float(usd), person)

    def _take_off(self, reservation: Reservation, price_usd: float, db: Any) -> None:
        """``price_usd`` now held elsewhere (a task, an unknown submit): off ``reservation``, in ``db``."""
        if reservation.reservation_id is None or price_usd <= 0:
            return
        reservation.held_usd = max(0.0, reservation.held_usd - price_usd)
        db.execute("UPDATE spend_reservations SET held_usd = MAX(0.0, held_usd - ?) WHERE reservation_id = ?",
                   (price_usd, reservation.reservation_id))

    def hold_unknown(self, reservation: Reservation, request_id: str, price_usd: float) -> None:
        """Submit ``request_id`` may have created a task no answer named: its price moves from ``reservation``
        to a hold of its own, on the same session and person, kept until the user dismisses the submit."""
        if price_usd <= 0:
            return
        try:
            with self.store.immediate() as db:
                db.execute(
                    "INSERT INTO spend_reservations (reservation_id, session, held_usd, created_at, owner, person) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (unknown_hold_id(request_id), reservation.session, float(price_usd), time.time(),
                     UNKNOWN_HOLD_OWNER, reservation.person),
                )
                self._take_off(reservation, price_usd, db)
        except sqlite3.Error as exc:
            raise StoreError(f"journal {self.store.path}: {exc}") from exc

    def _release(self, reservation: Reservation) -> None:
        if reservation.reservation_id is None:
            return
        reservation.held_usd = 0.0
        self._write("DELETE FROM spend_reservations WHERE reservation_id = ?", (reservation.reservation_id,))

    def _write(self, sql: str, args: tuple) -> None:
        try:
            with self.store.immediate() as db:
                db.execute(sql, args)
        except sqlite3.Error as exc:
            raise StoreError(f"journal {self.store.path}: {exc}") from exc

    # ------------------------------------------------------------ showing

    def view(self, session: str = "default", person: str | None = None) -> BudgetView:
        try:
            with self.store.immediate() as db:
                mine, day = self._spend(db, session), self._spend(db, None)
                theirs = self._person_spend(db, person) if person is not None else None
        except sqlite3.Error as exc:
            raise StoreError(f"journal {self.store.path}: {exc}") from exc

        def left(cap: float | None, spend: Spend) -> float | None:
            return None if cap is None else round(max(0.0, cap - spend.used_usd), 2)

        return BudgetView(
            session_spent_usd=round(mine.spent_usd, 2),
            session_reserved_usd=round(mine.held_usd + mine.reserved_usd, 2),
            session_remaining_usd=left(self.session_cap_usd, mine),
            day_spent_usd=round(day.spent_usd, 2),
            day_reserved_usd=round(day.held_usd + day.reserved_usd, 2),
            day_remaining_usd=left(self.day_cap_usd, day),
            person_spent_usd=round(theirs.spent_usd, 2) if theirs is not None else None,
            person_reserved_usd=round(theirs.held_usd + theirs.reserved_usd, 2) if theirs is not None else 0.0,
            person_remaining_usd=left(self.person_cap_usd, theirs) if theirs is not None else None,
        )
