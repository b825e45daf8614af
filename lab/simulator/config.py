"""The simulator's settings, fault names and timing table: plain values, no I/O.

Default timing (seconds of wall time at ``time_scale=1``; every figure is
multiplied by ``time_scale``, tests use 0.02):

=====================  =============  ===========================================
phase                  duration       notes
=====================  =============  ===========================================
queued                 1 - 3          uniform jitter per task
in_progress, fast 720p 20 - 40        uniform jitter per task
standard model         x 2            of the same resolution's fast time
1080p                  x 1.3          of the 720p time
4k                     x 4 - 6        of the 720p time (jitter per task)
``slow`` fault         x 3            of the whole schedule
=====================  =============  ===========================================

So a fast 720p task completes 21-43 s after submit, a standard 4k one
161-483 s after. ``fixed_generation_s`` replaces all of this with one exact
submit-to-completed time (no queue phase, no jitter) for benchmarks. A task
never completes before its MP4 is rendered: completion is the later of the
schedule and the end of the render.
"""

from __future__ import annotations

import math

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

# Faults decided once per task, at submit.
TASK_FAULTS: tuple[str, ...] = ("content_not_ready", "content_502", "failed", "stuck", "slow")
# Faults decided per request.
TRANSPORT_FAULTS: tuple[str, ...] = ("rate_429", "server_500", "drop_connection")
FAULT_NAMES: tuple[str, ...] = TASK_FAULTS + TRANSPORT_FAULTS

QUEUE_S = (1.0, 3.0)
FAST_720P_GENERATION_S = (20.0, 40.0)
STANDARD_FACTOR = 2.0
RESOLUTION_FACTOR: dict[str, tuple[float, float]] = {
    "720p": (1.0, 1.0),
    "1080p": (1.3, 1.3),
    "4k": (4.0, 6.0),
}
SLOW_FACTOR = 3.0
# content_not_ready lasts at least this long (unscaled) and for at least this many calls,
# so the quirk stays observable at tiny time scales.
CONTENT_NOT_READY_MIN_S = 0.3
CONTENT_NOT_READY_MIN_CALLS = 2
# content_502 answers this many /content calls right after completion.
CONTENT_502_CALLS = 2
# Retry-After on a simulated 429, before scaling.
RETRY_AFTER_S = 2.0


def default_render_cache() -> Path:
    """Where rendered MP4s live when the config names no directory (shared by every run)."""
    return Path.home() / ".cache" / "veo-prompt-lab" / "renders"


@dataclass(frozen=True)
class SimConfig:
    """How one simulator behaves: speed, accepted keys, faults, where renders are cached.

    ``keys``: None accepts any non-empty key; otherwise only these (with or without ``sk-``).
    ``faults``: fault name -> probability 0..1 (see ``FAULT_NAMES``); ``fault_seed`` makes
    the draws repeatable. ``fixed_generation_s``: every task takes exactly this long
    (scaled) from submit to completed, unless its render takes longer.
    """

    time_scale: float = 1.0
    keys: tuple[str, ...] | None = None
    faults: Mapping[str, float] = field(default_factory=dict, hash=False)
    fault_seed: int | None = None
    render_cache: Path | None = None
    content_lag_s: float = 4.0
    fixed_generation_s: float | None = None
    render_workers: int = 2

    def __post_init__(self) -> None:
        if not (math.isfinite(self.time_scale) and self.time_scale > 0):
            raise ValueError(f"time_scale must be a finite number above 0, not {self.time_scale!r}")
        if self.keys is not None:
            object.__setattr__(self, "keys", tuple(self.keys))
        faults = dict(self.faults)
        check_faults(faults)
        object.__setattr__(self, "faults", faults)
        if self.render_cache is not None:
            object.__setattr__(self, "render_cache", Path(self.render_cache))

    @property
    def cache_dir(self) -> Path:
        """The render cache actually used."""
        return self.render_cache if self.render_cache is not None else default_render_cache()

    @staticmethod
    def parse_faults(text: str) -> dict[str, float]:
        """``"content_not_ready=0.5,rate_429=0.1"`` -> dict; a bare name means probability 1."""
        faults: dict[str, float] = {}
        for part in (text or "").split(","):
            part = part.strip()
            if not part:
                continue
            name, sep, value = part.partition("=")
            name = name.strip()
            if sep:
                try:
                    probability = float(value)
                except ValueError:
                    raise ValueError(f"fault {name!r}: probability {value.strip()!r} is not a number") from None
            else:
                probability = 1.0
            faults[name] = probability
        check_faults(faults)
        return faults


def check_faults(faults: Mapping[str, float]) -> None:
    """Raise ValueError naming the problem when a fault name or probability is wrong."""
    for name, probability in faults.items():
        if name not in FAULT_NAMES:
            raise ValueError(f"unknown fault {name!r}; known faults: {', '.join(FAULT_NAMES)}")
        if not isinstance(probability, (int, float)) or not 0.0 <= float(probability) <= 1.0:
            raise ValueError(f"fault {name!r}: probability must be between 0 and 1, not {probability!r}")
