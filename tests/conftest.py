"""Shared fixtures: an isolated environment for every test, and real simulator servers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

# Tests run the simulator fast; 0.02 turns a ~40 s fast 720p task into under a second.
TEST_TIME_SCALE = 0.02
LAB_ENV_PREFIXES = ("APIYI_", "LAB_", "GRADIO_SERVER_")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own data directory and none of the developer's keys or settings."""
    for name in list(os.environ):
        if name.startswith(LAB_ENV_PREFIXES):
            monkeypatch.delenv(name, raising=False)
    data_dir = tmp_path / "data"
    monkeypatch.setenv("LAB_DATA_DIR", str(data_dir))
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    return data_dir


@pytest.fixture(scope="session")
def render_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One render cache for the whole run: identical requests render once."""
    return tmp_path_factory.mktemp("render-cache")


@pytest.fixture(scope="session")
def simulator(render_cache: Path):
    """A running simulator (no faults, any key accepted), shared by the session."""
    from lab.simulator.server import SimConfig, SimulatorServer

    with SimulatorServer(SimConfig(time_scale=TEST_TIME_SCALE, render_cache=render_cache)) as server:
        yield server


@pytest.fixture
def make_simulator(render_cache: Path):
    """Start simulators with their own config (faults, keys, timing); stopped after the test."""
    from lab.simulator.server import SimConfig, SimulatorServer

    servers: list = []

    def start(**config) -> "SimulatorServer":
        config.setdefault("time_scale", TEST_TIME_SCALE)
        config.setdefault("render_cache", render_cache)
        server = SimulatorServer(SimConfig(**config)).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium (scripts/test.sh installs it), one per test module; a missing browser fails, never skips."""
    from playwright.sync_api import sync_playwright

    from helpers import CHROMIUM, CHROMIUM_ARGS

    assert os.path.exists(CHROMIUM), f"no chromium at {CHROMIUM}: install Debian's chromium (scripts/test.sh does)"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
