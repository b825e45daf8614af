"""Which faults hit which task or request: seeded draws plus the ``X-Sim-Fault`` header.

Task faults are drawn once per task at submit; transport faults once per
request. Each draw uses its own RNG seeded from (``fault_seed``, what, counter),
so a sequential client sees the same faults in every run with the same seed.

Where each fault acts:

- ``content_not_ready`` (task): after completion ``/content`` answers 400 "Task is not
  completed yet, current status: IN_PROGRESS" for ``content_lag_s`` (scaled, at least
  0.3 s) and for at least the first 2 calls, then serves the file.
- ``content_502`` (task): the first 2 ``/content`` calls after completion answer 502
  ``{"error":{"message":"Upstream service returned status 404","type":"server_error"}}``.
- ``failed`` (task): ends ``failed``, progress 100, no error detail, never billed, no render.
- ``stuck`` (task): stays ``in_progress`` forever; no render.
- ``slow`` (task): the whole schedule takes 3 times as long.
- ``rate_429`` (submit, poll): 429 in one of three forms: the relay's JSON
  (``{"code":"","message":"当前分组上游负载已饱和，请稍后再试","data":null}``) with
  ``Retry-After``; an empty body with ``Retry-After``; an empty body alone.
- ``server_500`` (submit, poll): 500 with nginx's HTML page or the relay's JSON. On a
  submit the task is never created (so a client retry cannot double-bill here; a real
  gateway gives no such promise).
- ``drop_connection`` (poll, content): the TCP connection closes without a response.

``X-Sim-Fault`` on a POST attaches task faults to the task it creates; transport
faults named in it hit only the request that carries it. Task faults named on a GET
are ignored.
"""

from __future__ import annotations

import itertools
import random
import threading
from typing import Iterable, Mapping

from lab.simulator.config import FAULT_NAMES, TASK_FAULTS, TRANSPORT_FAULTS

FAULT_HEADER = "X-Sim-Fault"


def parse_fault_header(value: str | None) -> frozenset[str]:
    """``"failed, rate_429"`` -> names; unknown names raise ValueError."""
    names = frozenset(part.strip() for part in (value or "").split(",") if part.strip())
    unknown = sorted(names - set(FAULT_NAMES))
    if unknown:
        raise ValueError(f"unknown fault {', '.join(unknown)} in {FAULT_HEADER}; known faults: {', '.join(FAULT_NAMES)}")
    return names


class FaultInjector:
    def __init__(self, faults: Mapping[str, float], seed: int | None) -> None:
        self.faults = dict(faults)
        self.seed = seed
        self._counters: dict[str, itertools.count] = {}
        self._lock = threading.Lock()

    def rng(self, what: str) -> random.Random:
        """A fresh RNG for the next draw of kind ``what`` (deterministic with a seed)."""
        with self._lock:
            counter = self._counters.setdefault(what, itertools.count())
            number = next(counter)
        if self.seed is None:
            return random.Random()
        return random.Random(f"{self.seed}:{what}:{number}")

    def _draw(self, names: Iterable[str], rng: random.Random) -> set[str]:
        chosen = set()
        for name in names:  # always draw for every name so the sequence does not shift
            if rng.random() < self.faults.get(name, 0.0):
                chosen.add(name)
        return chosen

    def for_task(self, forced: frozenset[str]) -> frozenset[str]:
        """The task faults of a new task: forced ones plus seeded draws."""
        drawn = self._draw(TASK_FAULTS, self.rng("task"))
        return frozenset((drawn | forced) & set(TASK_FAULTS))

    def for_request(self, route: str, allowed: tuple[str, ...], forced: frozenset[str]) -> str | None:
        """The transport fault (at most one) that hits this request, if any."""
        for name in allowed:
            if name in forced:
                return name
        drawn = self._draw(TRANSPORT_FAULTS, self.rng(f"request:{route}"))
        for name in allowed:
            if name in drawn:
                return name
        return None
