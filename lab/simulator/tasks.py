"""Simulated tasks: their schedule, their state at any moment, and the billing ledger.

State is computed from the clock when asked (no ticking thread): a task is
queued until ``queue_end``, in progress until ``done_at`` and then completed or
failed. ``done_at`` of a task that renders is the later of its schedule and the
moment its MP4 was ready. Completed tasks are charged once, when first seen
completed by anyone (a poll, a download or the ledger).
"""

from __future__ import annotations

import secrets
import string
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.params import MODEL_PRICES_USD

QUEUED, IN_PROGRESS, SUCCESS, FAILURE = "QUEUED", "IN_PROGRESS", "SUCCESS", "FAILURE"
PUBLIC_STATUS = {QUEUED: "queued", IN_PROGRESS: "in_progress", SUCCESS: "completed", FAILURE: "failed"}
PROGRESS = {QUEUED: 0, IN_PROGRESS: 50, SUCCESS: 100, FAILURE: 100}
_ID_ALPHABET = string.ascii_letters + string.digits


def new_task_id() -> str:
    """``task_`` and 24 letters or digits."""
    return "task_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(24))


@dataclass
class Task:
    task_id: str
    owner: str
    model: str
    effective: dict[str, Any]
    faults: frozenset[str]
    created_at: float
    queue_end: float
    scheduled_end: float | None  # None: never finishes (stuck)
    render_path: Path | None = None
    render_ready_at: float | None = None
    render_error: str | None = None
    needs_render: bool = True
    charged: bool = False
    completed_at: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def status(self, now: float) -> str:
        """The internal status (QUEUED, IN_PROGRESS, SUCCESS, FAILURE) at ``now``."""
        if now < self.queue_end:
            return QUEUED
        if self.scheduled_end is None or now < self.scheduled_end:
            return IN_PROGRESS
        if "failed" in self.faults or self.render_error is not None:
            return FAILURE
        if self.needs_render and (self.render_ready_at is None or now < self.render_ready_at):
            return IN_PROGRESS
        return SUCCESS

    def done_at(self) -> float | None:
        """When the task finished (or will, if known)."""
        if self.scheduled_end is None:
            return None
        if self.needs_render and self.render_error is None and "failed" not in self.faults:
            if self.render_ready_at is None:
                return None
            return max(self.scheduled_end, self.render_ready_at)
        return self.scheduled_end


class TaskStore:
    """All tasks of one simulator, and the ledger derived from them."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._tasks: dict[str, Task] = {}
        self._charges: list[dict[str, Any]] = []
        self._requests: Counter[str] = Counter()
        self.submits = 0

    def count_request(self, route: str) -> None:
        with self._lock:
            self._requests[route] += 1

    def add(self, task: Task) -> None:
        with self._lock:
            self._tasks[task.task_id] = task
            self.submits += 1

    def get(self, task_id: str, owner: str) -> Task | None:
        """The owner's task, or None (another key's task is as unknown as a missing one)."""
        with self._lock:
            task = self._tasks.get(task_id)
            return task if task is not None and task.owner == owner else None

    def render_finished(self, task: Task, path: Path | None, error: str | None) -> None:
        with self._lock:
            task.render_path = path
            task.render_error = error
            task.render_ready_at = time.time()

    def observe(self, task: Task, now: float | None = None) -> str:
        """The task's status now; charges it the first time it is seen completed."""
        now = time.time() if now is None else now
        with self._lock:
            status = task.status(now)
            if status in (SUCCESS, FAILURE) and task.completed_at is None:
                task.completed_at = task.done_at() or now
            if status == SUCCESS and not task.charged:
                task.charged = True
                self._charges.append(
                    {
                        "task_id": task.task_id,
                        "model": task.model,
                        "usd": MODEL_PRICES_USD[task.model],
                        "at": task.completed_at,
                    }
                )
            return status

    def ledger(self) -> dict[str, Any]:
        """Charges, task status counts, submits and request counts per route."""
        with self._lock:
            counts: Counter[str] = Counter()
            for task in self._tasks.values():
                counts[PUBLIC_STATUS[self.observe(task)]] += 1
            charges = sorted(self._charges, key=lambda charge: (charge["at"], charge["task_id"]))
            return {
                "total_usd": round(sum(charge["usd"] for charge in charges), 2),
                "charges": [dict(charge) for charge in charges],
                "tasks": {name: counts.get(name, 0) for name in PUBLIC_STATUS.values()},
                "submits": self.submits,
                "requests": dict(sorted(self._requests.items())),
            }
