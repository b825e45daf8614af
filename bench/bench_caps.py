"""Spend caps under pressure: what the simulator billed against the cap, in the three ways they were broken.

Run: .venv/bin/python bench/bench_caps.py [--time-scale 0.02]

1. Concurrent 4k standard runs with slow tasks: 4 workers each start 2 runs
   whose tasks outlive the poll deadline (the ``slow`` fault), day cap $2.40.
2. The app (driven through gradio_client) and the CLI on one data directory
   at once, day cap $1.50: 5 concurrent /generate calls beside a 4-seed CLI sweep.
3. 4 concurrent `python -m lab generate` processes on one data directory,
   day cap $0.60.

4. A hosted demo (`python app.py` with SPACE_ID set): ten gradio_client
   Clients from one address, three /generate each, with a $0.60 cap per person,
   beside the same lab with only a $0.60 cap per session (what issue 22 measured).
5. A burst of 50 /generate from one person within about a second against a
   Space lab allowing 5 submits a minute per person: tasks the simulator received.

Each scenario waits until the simulator has no task queued or running, then
prints billed vs cap. Before the journal-backed caps the issue measured
$4.80 / $2.70 / $1.20; before the per-person cap, $6.00 for scenario 4.
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


def app_py(sim_url: str, data_dir: Path, time_scale: float, **settings: str) -> tuple[subprocess.Popen, str]:
    """``python app.py`` as a Space runs it, on a free port; returns (process, url) once it answers."""
    import requests

    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("APIYI_", "LAB_", "SPACE_ID"))},
           "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False",
           "LAB_DATA_DIR": str(data_dir), "LAB_BASE_URL": sim_url, "LAB_SIM_TIME_SCALE": str(time_scale),
           "LAB_SPEND_CAP_SESSION_USD": "none", "LAB_SPEND_CAP_DAY_USD": "none", "LAB_SPEND_CAP_PERSON_USD": "none",
           "LAB_SUBMITS_PER_MINUTE_PERSON": "none", "SPACE_ID": "owner/veo-lab", **settings}
    proc = subprocess.Popen([sys.executable, str(REPO / "app.py")], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if requests.get(url + "config", timeout=10).ok:
                return proc, url
        except requests.RequestException:
            pass
        time.sleep(0.5)
    proc.terminate()
    raise SystemExit("app.py did not start")


def _calls_at_once(calls) -> tuple[int, int]:
    """(succeeded, refused) of calls made at once."""
    def one(call) -> bool:
        try:
            call()
            return True
        except Exception:  # noqa: BLE001 - a refusal (gradio_client's AppError)
            return False

    with ThreadPoolExecutor(len(calls)) as pool:
        done = list(pool.map(one, calls))
    return sum(done), len(done) - sum(done)


def ten_clients(time_scale: float, cache: Path, tmp: Path) -> bool:
    from gradio_client import Client

    cap = 0.60
    rows = []
    for name, settings in (("per session only", {"LAB_SPEND_CAP_SESSION_USD": str(cap)}),
                           ("per person", {"LAB_SPEND_CAP_PERSON_USD": str(cap)})):
        with SimulatorServer(SimConfig(time_scale=time_scale, render_cache=cache)) as sim:
            proc, url = app_py(sim.base_url, tmp / f"ten-{name.replace(' ', '-')}", time_scale, **settings)
            try:
                clients = [Client(url, verbose=False, download_files=False) for _ in range(10)]
                body = lambda n: json.dumps({"model": params.FAST_MODEL, "prompt": PROMPT, "duration": "4",  # noqa: E731
                                             "metadata": {"seed": n}})
                made, refused = _calls_at_once([lambda c=c, n=n: c.predict(body(n), api_name="/generate")
                                                for c in clients for n in range(3)])
                billed, submits = settled_bill(sim)
            finally:
                proc.terminate()
                proc.wait(timeout=30)
        rows.append((name, billed, submits, made, refused))
        print(f"4. ten clients x 3 /generate, one address, cap ${cap:.2f} {name:<17} billed ${billed:5.2f} "
              f"({submits} tasks, {refused} refused)")
    (_, before, *_), (_, after, *_) = rows
    print(f"   billed per person vs per session only: ${after:.2f} vs ${before:.2f} "
          f"({before / after if after else float('inf'):.0f}x less)")
    return after <= cap + 1e-9


def burst(time_scale: float, cache: Path, tmp: Path) -> bool:
    from gradio_client import Client

    limit = 5
    with SimulatorServer(SimConfig(time_scale=time_scale, render_cache=cache)) as sim:
        proc, url = app_py(sim.base_url, tmp / "burst", time_scale, LAB_SUBMITS_PER_MINUTE_PERSON=str(limit))
        try:
            clients = [Client(url, verbose=False, download_files=False) for _ in range(5)]
            started = time.monotonic()
            jobs = [c.submit(json.dumps({"model": params.FAST_MODEL, "prompt": PROMPT, "duration": "4",
                                         "metadata": {"seed": 100 + n}}), api_name="/generate")
                    for n in range(10) for c in clients]
            queued_s = time.monotonic() - started
            made, refused = _calls_at_once([job.result for job in jobs])
            answered_s = time.monotonic() - started
            _, submits = settled_bill(sim)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(f"5. burst of 50 /generate from one person (queued in {queued_s:.1f} s, all answered in {answered_s:.1f} s), "
          f"{limit}/min allowed: {submits} tasks sent, {made} made, {refused} refused")
    return submits <= limit


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-scale", type=float, default=0.02)
    parser.add_argument("--only", default="1,2,3,4,5", help="scenarios to run, e.g. 4,5")
    args = parser.parse_args()
    scenarios = {"1": slow_4k, "2": app_and_cli, "3": several_clis, "4": ten_clients, "5": burst}
    with tempfile.TemporaryDirectory(prefix="lab-caps-") as name:
        tmp = Path(name)
        cache = tmp / "renders"
        results = [scenarios[key](args.time_scale, cache, tmp) for key in args.only.split(",") if key in scenarios]
    print("RESULT:", "every scenario at or under its cap" if all(results) else "FAILED")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
