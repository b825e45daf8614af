"""The simulator a lab process embeds when it has no API key: private to that process.

It is not mounted on the visitor-facing app. It listens on a loopback port of
its own (only processes on this machine can connect) and accepts one key,
drawn at random when the process starts and held only in this process, so
nobody can submit renders outside the lab's caps and slots, or fetch another
visitor's video, through it. ``python -m lab simulator`` is the open one, for
tests and local use.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from lab.simulator.server import SimConfig, SimulatorServer

LOOPBACK = "127.0.0.1"


def new_key() -> str:
    """A key nobody else knows: 192 random bits, fresh for each process."""
    return "sk-sim-" + secrets.token_urlsafe(24)


def start_private_simulator(time_scale: float, render_cache: Path | None) -> tuple[SimulatorServer, str]:
    """Start a loopback-only simulator that accepts only a new random key; returns it with the key."""
    key = new_key()
    server = SimulatorServer(SimConfig(time_scale=time_scale, keys=(key,), render_cache=render_cache), host=LOOPBACK)
    return server.start(), key
