"""Spend caps under pressure: what the simulator billed against the cap, in the three ways they were broken.

Run: .venv/bin/python bench/bench_caps.py [--time-scale 0.02]

1. Concurrent 4k standard runs with slow tasks: 4 workers each start 2 runs
   whose tasks outlive the poll deadline (the ``slow`` fault), day cap $2.40.
2. The app (driven through gradio_client) and the CLI on one data directory
   at once, day cap $1.50: 5 concurrent /generate calls beside a 4-seed CLI sweep.
3. 4 concurrent `python -m lab generate` processes on one data directory,
   day cap $0.60.

Each scenario waits until the simulator has no task queued or running, then
prints billed vs cap. Before the journal-backed caps the issue measured
$4.80 / $2.70 / $1.20.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from lab import params  # noqa: E402
from lab.budget import Budget  # noqa: E402
from lab.client import VideosClient  # noqa: E402
from lab.errors import BudgetExceeded  # noqa: E402
from lab.runner import Runner  # noqa: E402
from lab.simulator.server import SimConfig, SimulatorServer  # noqa: E402
from lab.store import Store  # noqa: E402

PROMPT = "a heron in reeds, morning mist"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def settled_bill(sim: SimulatorServer, timeout: float = 600.0) -> tuple[float, int]:
    """(dollars billed, tasks submitted) once no task is queued or running."""
    deadline = time.monotonic() + timeout
    while True:
        ledger = sim.ledger()
        running = sum(n for status, n in ledger["tasks"].items() if status not in ("completed", "failed"))
        if running == 0 or time.monotonic() > deadline:
            return ledger["total_usd"], ledger["submits"]
        time.sleep(0.1)


def report(name: str, billed: float, submits: int, cap: float, before: float) -> bool:
    ok = billed <= cap + 1e-9
    print(f"{name:<44} billed ${billed:5.2f} vs cap ${cap:.2f}  ({submits} tasks; the issue measured ${before:.2f})  "
          f"{'OK' if ok else 'OVER THE CAP'}")
    return ok


def slow_4k(time_scale: float, cache: Path, tmp: Path) -> bool:
    cap = 2.40
    body = {"model": params.STANDARD_MODEL, "prompt": PROMPT, "duration": "8", "metadata": {"resolution": "4k"}}
    with SimulatorServer(SimConfig(time_scale=time_scale, render_cache=cache, faults={"slow": 1.0})) as sim, \
            Store(tmp / "slow" / "journal.sqlite3") as store, \
            VideosClient.scaled(sim.base_url, "sk-bench", time_scale=time_scale) as client:
        budget = Budget(store, day_cap_usd=cap)
        # The deadline ends the wait long before the slowed tasks complete (and bill).
        runner = Runner(client, store, tmp / "slow", budget=budget, thumbs=0, deadlines_s={"4k": 30 * time_scale})

        def worker(n: int) -> None:
            for round_ in range(2):
                try:
                    runner.run_one(params.with_seed(body, 10 * n + round_))
                except BudgetExceeded:
                    pass

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(worker, range(4)))
        billed, submits = settled_bill(sim)
    return report("1. concurrent 4k standard, slow tasks", billed, submits, cap, 4.80)


def cli(sim_url: str, data_dir: Path, cap: float, time_scale: float, *args: str) -> subprocess.Popen:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("APIYI_", "LAB_"))},
           "LAB_DATA_DIR": str(data_dir), "LAB_SPEND_CAP_DAY_USD": str(cap)}
    return subprocess.Popen([sys.executable, "-m", "lab", *args, "--prompt", PROMPT, "--duration", "4", "--thumbs", "0",
                             "--base-url", sim_url, "--sim-time-scale", str(time_scale)],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def app_and_cli(time_scale: float, cache: Path, tmp: Path) -> bool:
    from gradio_client import Client

    from lab.settings import load_settings
    from lab.wiring import open_app
    from lab.ui import build_demo

    cap = 1.50
    data_dir = tmp / "app-cli"
    with SimulatorServer(SimConfig(time_scale=time_scale, render_cache=cache, fixed_generation_s=60.0)) as sim:
        settings = load_settings(environ={"LAB_DATA_DIR": str(data_dir), "LAB_SIM_TIME_SCALE": str(time_scale),
                                          "LAB_SPEND_CAP_DAY_USD": str(cap), "LAB_MAX_SWEEP": "8"})
        services = open_app(settings, base_url=sim.base_url, api_key="sk-bench")
        demo = build_demo(services)
        _, url, _ = demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
        client = Client(url, verbose=False, download_files=False)
        try:
            jobs = [client.submit(json.dumps({"model": params.FAST_MODEL, "prompt": PROMPT, "duration": "4",
                                              "metadata": {"seed": seed}}), api_name="/generate")
                    for seed in range(1, 6)]
            proc = cli(sim.base_url, data_dir, cap, time_scale, "sweep", "--seeds", "11,12,13,14")
            proc.wait(timeout=600)
            for job in jobs:
                try:
                    job.result(timeout=600)
                except Exception:  # a refusal over the cap
                    pass
            billed, submits = settled_bill(sim)
        finally:
            client.close()
            demo.close()
            services.close()
    return report("2. app + CLI on one data dir", billed, submits, cap, 2.70)


def several_clis(time_scale: float, cache: Path, tmp: Path) -> bool:
    cap = 0.60
    with SimulatorServer(SimConfig(time_scale=time_scale, render_cache=cache, fixed_generation_s=60.0)) as sim:
        procs = [cli(sim.base_url, tmp / "clis", cap, time_scale, "generate", "--seed", str(n)) for n in range(4)]
        for proc in procs:
            proc.wait(timeout=600)
        billed, submits = settled_bill(sim)
    return report("3. 4 concurrent CLI generate processes", billed, submits, cap, 1.20)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-scale", type=float, default=0.02)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lab-caps-") as name:
        tmp = Path(name)
        cache = tmp / "renders"
        results = [slow_4k(args.time_scale, cache, tmp), app_and_cli(args.time_scale, cache, tmp),
                   several_clis(args.time_scale, cache, tmp)]
    print("RESULT:", "every scenario at or under its cap" if all(results) else "FAILED")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
