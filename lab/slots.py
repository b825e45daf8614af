"""Caps on tasks in flight, per session and overall, so many visitors cannot exhaust the server.

A task holds one slot of its session and one of the whole lab from submit to
saved. Waiting for a slot queues the task (nothing is sent while it waits);
the per-session slot is taken first so one busy visitor cannot hold global
slots while queued behind their own work.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator


class TaskSlots:
    """Bounded semaphores: ``per_session`` for each session, ``total`` shared by all."""

    def __init__(self, total: int, per_session: int) -> None:
        if total < 1 or per_session < 1:
            raise ValueError("slot counts must be at least 1")
        self.total = total
        self.per_session = per_session
        self._global = threading.BoundedSemaphore(total)
        self._sessions: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()
        self._in_flight = 0
        self.peak_in_flight = 0

    def _session_semaphore(self, session: str) -> threading.BoundedSemaphore:
        with self._lock:
            semaphore = self._sessions.get(session)
            if semaphore is None:
                semaphore = self._sessions[session] = threading.BoundedSemaphore(self.per_session)
            return semaphore

    @contextmanager
    def hold(self, session: str) -> Iterator[None]:
        """Block until this session and the lab each have a free slot; free both on exit."""
        session_semaphore = self._session_semaphore(session)
        with session_semaphore, self._global:
            with self._lock:
                self._in_flight += 1
                self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
            try:
                yield
            finally:
                with self._lock:
                    self._in_flight -= 1

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight
