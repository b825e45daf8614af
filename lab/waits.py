"""Who is waiting for what: tasks this process still waits on, waits a visitor asked to stop, runs in a thread.

Gradio-free. ``InFlight`` lets "Fetch unfinished" leave alone the tasks some
thread of this process is already waiting on (polling them twice would race
the download). ``StopWaiting`` is the cooperative "stop waiting" switch: the
running handler checks it on each tick and returns, while the task goes on in
the background. ``EventPump`` runs a blocking call in a thread and yields its
events (or ``None`` each tick) so a generator handler can keep the page live.
"""

from __future__ import annotations

import queue
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Hashable, Iterable, Iterator


class InFlight:
    """Task ids some wait of this process holds, and runs whose task id may not be known yet.

    A task is journalled a moment before its "submitted" event reaches us, so a run that
    is still submitting may own an unfinished task we have not heard of: ``holds`` treats
    every task created after the oldest such run started as held.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._tasks: set[str] = set()
        self._submitting: dict[int, float] = {}  # run token -> when it started (wall clock, like created_at)
        self._next_token = 0

    @contextmanager
    def run(self) -> Iterator[Callable[[str, bool], None]]:
        """For one run (or sweep): yields ``track(task_id, waiting)`` to report each task's wait."""
        with self._lock:
            token = self._next_token
            self._next_token += 1
            self._submitting[token] = self._clock()

        def track(task_id: str, waiting: bool) -> None:
            with self._lock:
                if waiting:
                    self._tasks.add(task_id)
                else:
                    self._tasks.discard(task_id)

        try:
            yield track
        finally:
            with self._lock:
                self._submitting.pop(token, None)

    def claim(self, task_ids: Iterable[str]) -> None:
        """Mark tasks held (a resume is about to wait on them)."""
        with self._lock:
            self._tasks.update(task_ids)

    def release(self, task_ids: Iterable[str]) -> None:
        with self._lock:
            self._tasks.difference_update(task_ids)

    def holds(self, task_id: str, created_at: float | None = None) -> bool:
        """Whether a wait in this process holds (or may hold) the task."""
        with self._lock:
            if task_id in self._tasks:
                return True
            if created_at is None or not self._submitting:
                return False
            return created_at >= min(self._submitting.values())

    def task_ids(self) -> set[str]:
        with self._lock:
            return set(self._tasks)


class StopWaiting:
    """Per (session, tab): whether a wait is running, and whether the visitor asked to stop it.

    A stop applies to the waits that started before it was pressed, so a late press never
    stops the next run.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._stops: dict[Hashable, float] = {}
        self._running: dict[Hashable, int] = {}

    def now(self) -> float:
        return self._clock()

    @contextmanager
    def running(self, key: Hashable) -> Iterator[float]:
        """Mark a wait under ``key`` as running; yields its start time for ``stop_requested``."""
        with self._lock:
            self._running[key] = self._running.get(key, 0) + 1
            started = self._clock()
        try:
            yield started
        finally:
            with self._lock:
                self._running[key] -= 1
                if not self._running[key]:
                    del self._running[key]

    def request_stop(self, key: Hashable) -> bool:
        """Ask the waits under ``key`` to stop; False when none is running (nothing to stop)."""
        with self._lock:
            if not self._running.get(key):
                return False
            self._stops[key] = self._clock()
            return True

    def stop_requested(self, key: Hashable, started: float) -> bool:
        with self._lock:
            return self._stops.get(key, float("-inf")) >= started


class EventPump:
    """Run ``fn(on_event=...)`` in a thread and yield its events (or None each tick) as they arrive."""

    def __init__(self, fn: Callable[..., Any], tick: float = 1.0) -> None:
        self._fn = fn
        self._tick = tick
        self._queue: queue.Queue = queue.Queue()
        self.result: Any = None
        self.error: BaseException | None = None

    def __iter__(self) -> Iterator[Any]:
        def work() -> None:
            try:
                self.result = self._fn(on_event=lambda event: self._queue.put(("event", event)))
            except BaseException as exc:  # handed to the caller's thread below
                self.error = exc
            finally:
                self._queue.put(("end", None))

        threading.Thread(target=work, name="lab-ui-run", daemon=True).start()
        while True:
            try:
                kind, event = self._queue.get(timeout=self._tick)
            except queue.Empty:
                yield None
                continue
            if kind == "end":
                return
            yield event
