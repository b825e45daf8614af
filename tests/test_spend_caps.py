"""Spend caps hold over what the simulator really bills: slow tasks, the app beside the CLI, several CLIs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab import params
from lab.budget import Budget
from lab.client import VideosClient
from lab.errors import BudgetExceeded
from lab.runner import Runner
from lab.store import Store
from helpers import free_port, lab_client

REPO = Path(__file__).resolve().parent.parent
TIME_SCALE = 0.02
FAST = {"model": params.FAST_MODEL, "prompt": "a heron in reeds", "duration": "4"}
# $1.20 a task, as a 4k one: the slow tasks of real life, without two 4k renders in the test.
STANDARD_8S = {"model": params.STANDARD_MODEL, "prompt": "a heron in reeds at dawn", "duration": "8",
               "metadata": {"resolution": "720p"}}


def billed_when_settled(sim, expected_tasks: int, timeout: float = 240.0) -> float:
    """What the simulator billed once no task it accepted is still queued or running.

    A wait for a condition, not a speed goal: renders in parallel take long on a loaded 2-core box.
    """
    deadline = time.monotonic() + timeout
    while True:
        ledger = sim.ledger()
        tasks = ledger["tasks"]
        running = sum(count for status, count in tasks.items() if status not in ("completed", "failed"))
        if ledger["submits"] >= expected_tasks and running == 0:
            return ledger["total_usd"]
        assert time.monotonic() < deadline, f"tasks still running: {tasks}"
        time.sleep(0.05)


def test_slow_tasks_that_outlive_their_deadline_keep_holding_the_day_cap(make_simulator, tmp_path):
    # Each task takes 2 s of wall time; the runner gives up after 0.3 s, as a too-short deadline would.
    sim = make_simulator(fixed_generation_s=100.0)
    with Store(tmp_path / "journal.sqlite3") as store, VideosClient.scaled(sim.base_url, "sk-any",
                                                                            time_scale=TIME_SCALE) as client:
        budget = Budget(store, day_cap_usd=2.40)
        runner = Runner(client, store, tmp_path, budget=budget, thumbs=0, deadlines_s={"720p": 0.3})
        outcomes = []
        for seed in range(1, 5):
            try:
                outcomes.append(runner.run_one(params.with_seed(STANDARD_8S, seed)).status)
            except BudgetExceeded:
                outcomes.append("refused")
        assert set(outcomes[:2]) <= {"queued", "in_progress"}  # given up on, not finished
        assert outcomes[2:] == ["refused", "refused"]
        billed = billed_when_settled(sim, 2)
    assert billed == 2.40  # the service billed both abandoned tasks; nothing beyond the cap


def _lab_settings(data_dir: Path, **extra: str):
    from lab.settings import load_settings

    return load_settings(environ={"LAB_DATA_DIR": str(data_dir), "LAB_SIM_TIME_SCALE": str(TIME_SCALE),
                                  "LAB_MAX_SWEEP": "4", "LAB_PRESCREEN": "off", **extra})


@pytest.fixture
def app_on(make_simulator, tmp_path):
    """Start the lab (gradio_client) on a data directory against a simulator; closed after the test."""
    from lab.wiring import open_app
    from lab.ui import build_demo

    started = []

    def start(sim, data_dir: Path, **settings: str):
        services = open_app(_lab_settings(data_dir, **settings), base_url=sim.base_url, api_key="sk-app")
        demo = build_demo(services)
        _, url, _ = demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
        client = lab_client(url, tmp_path / "downloads")
        started.append((demo, services, client))
        return client

    yield start
    for demo, services, client in started:
        client.close()
        demo.close()
        services.close()


def cli(*args: str, data_dir: Path, day_cap: str) -> subprocess.Popen:
    env = {**os.environ, "LAB_DATA_DIR": str(data_dir), "LAB_SPEND_CAP_DAY_USD": day_cap}
    return subprocess.Popen([sys.executable, "-m", "lab", *args, "--thumbs", "0", "--sim-time-scale", str(TIME_SCALE)],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def last_json(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=120)
    assert out.strip(), err
    return json.loads(out.strip().splitlines()[-1])


def test_the_app_and_the_cli_on_one_data_dir_share_one_day_cap(make_simulator, app_on, tmp_path):
    sim = make_simulator(fixed_generation_s=60.0)
    data_dir = tmp_path / "data"
    app = app_on(sim, data_dir, LAB_SPEND_CAP_DAY_USD="0.90")
    fast = json.dumps(FAST)
    app_job = app.submit(fast, "1, 2", 0, "", api_name="/sweep")  # $0.60
    proc = cli("sweep", "--prompt", "a heron in reeds", "--duration", "4", "--seeds", "3,4",  # another $0.60
               "--base-url", sim.base_url, data_dir=data_dir, day_cap="0.90")
    cli_result = last_json(proc)
    try:
        app_ok = bool(app_job.result(timeout=120)[2]["ok"])
    except Exception as exc:  # gradio_client's AppError carries the refusal
        assert "cap" in str(exc)
        app_ok = False
    assert (app_ok, cli_result["ok"]).count(True) == 1  # one of the two was refused before any HTTP call
    billed = billed_when_settled(sim, 2)
    assert billed == 0.60 <= 0.90


def test_concurrent_gradio_client_calls_stop_at_the_day_cap(make_simulator, app_on, tmp_path):
    sim = make_simulator(fixed_generation_s=40.0)
    app = app_on(sim, tmp_path / "data", LAB_SPEND_CAP_DAY_USD="0.60")
    jobs = [app.submit(json.dumps(params.with_seed(FAST, seed)), api_name="/generate") for seed in range(1, 5)]
    saved, refused = 0, 0
    for job in jobs:
        try:
            saved += job.result(timeout=120)[1]["ok"]
        except Exception as exc:
            assert "Daily cap of this lab reached" in str(exc), exc
            refused += 1
    # Exactly two fit: a price is never counted twice while it moves from a run's reservation to its task.
    assert (saved, refused) == (2, 2)
    assert billed_when_settled(sim, 2) == 0.60


def test_several_cli_processes_on_one_data_dir_stop_at_the_day_cap(make_simulator, tmp_path):
    sim = make_simulator(fixed_generation_s=60.0)
    data_dir = tmp_path / "data"
    procs = [cli("generate", "--prompt", "a heron in reeds", "--duration", "4", "--seed", str(n),
                 "--base-url", sim.base_url, data_dir=data_dir, day_cap="0.60") for n in range(4)]
    results = [last_json(proc) for proc in procs]
    assert sum(result["ok"] for result in results) == 2
    assert all("cap" in result["error"] for result in results if not result["ok"])
    assert billed_when_settled(sim, 2) == 0.60
