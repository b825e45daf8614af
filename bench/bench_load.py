"""Load: 20 simulated visitors run seed sweeps at once against `python app.py` (on a simulator process).

Run: .venv/bin/python bench/bench_load.py [--visitors 20] [--seeds 3] [--time-scale 0.05]

The app runs in its own process on a loopback port, so its memory and threads
are measured from outside (/proc/PID/status) while visitors drive it through
gradio_client, the way a script or a second browser tab would. Everything is
bounded: a fixed number of visitors and sweeps, and a hard deadline. It prints:
every task completed, none charged twice (the simulator's ledger against the
tasks the visitors saw), peak RSS and threads of the app against idle, and the
wall time of the whole load against one visitor alone (the ratio that shows
the sweeps really ran concurrently).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
DEADLINE_S = 600


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def proc_status(pid: int) -> dict[str, int]:
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "Threads"):
                fields[key] = int(value.split()[0])
    return fields


class Sampler(threading.Thread):
    """Samples the app's RSS and thread count every 50 ms until stopped."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_rss_kb = 0
        self.peak_threads = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                fields = proc_status(self.pid)
            except OSError:
                return
            self.peak_rss_kb = max(self.peak_rss_kb, fields["VmRSS"])
            self.peak_threads = max(self.peak_threads, fields["Threads"])
            time.sleep(0.05)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def start_simulator(port: int, time_scale: float, render_cache: Path) -> subprocess.Popen:
    """The app's own simulator is private (loopback, random key, no ledger for us): use an open one."""
    proc = subprocess.Popen([sys.executable, "-m", "lab", "simulator", "--port", str(port), "--time-scale",
                             str(time_scale), "--render-cache", str(render_cache)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/_sim/ledger", timeout=2).ok:
                return proc
        except requests.RequestException:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("simulator did not start within 60 s")


def start_app(port: int, data_dir: Path, time_scale: float, sim_port: int) -> subprocess.Popen:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("APIYI_", "LAB_"))},
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "LAB_DATA_DIR": str(data_dir),
        "LAB_SIM_TIME_SCALE": str(time_scale),
        "LAB_BASE_URL": f"http://127.0.0.1:{sim_port}/v1",
        "LAB_SPEND_CAP_SESSION_USD": "off",
        "LAB_SPEND_CAP_PERSON_USD": "off",  # 20 visitors from one address: one person
        "LAB_SUBMITS_PER_MINUTE_PERSON": "off",
        "LAB_SPEND_CAP_DAY_USD": "off",
        "LAB_MAX_SWEEP": "8",
    }
    proc = subprocess.Popen([sys.executable, str(REPO / "app.py")], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"app exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/gradio_api/info", timeout=2).ok:
                return proc
        except requests.RequestException:
            pass
        time.sleep(0.3)
    proc.kill()
    raise SystemExit("app did not start within 120 s")


def sweep_body(visitor: int) -> str:
    return json.dumps({
        "model": "veo-3.1-fast-generate-preview",
        "prompt": f"Load test visitor {visitor}: a lighthouse at dusk, slow push-in" if visitor >= 0
        else "Load test: a lighthouse at dusk, slow push-in",
        "duration": "4",
        "size": "1280x720",
    })


def run_visitor(url: str, visitor: int, seeds: list[int]) -> dict:
    from gradio_client import Client

    client = Client(url, verbose=False, download_files=False)
    try:
        started = time.monotonic()
        _sheet, _zip, summary = client.predict(
            sweep_body(visitor), ",".join(map(str, seeds)), 0, "", api_name="/sweep"
        )
        summary["elapsed_s"] = time.monotonic() - started
        return summary
    finally:
        client.close()


def task_rows(summary: dict) -> list[dict]:
    return summary.get("tasks") or summary.get("results") or []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visitors", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=3, help="seeds per visitor's sweep")
    parser.add_argument("--time-scale", type=float, default=0.05)
    parser.add_argument("--distinct-renders", action="store_true",
                        help="give every visitor its own prompt and seeds, so the simulator renders every video "
                             "(by default they share one request, so after the solo run the simulator's render "
                             "cache serves the files and the load measures the lab, as with the real service, "
                             "which renders elsewhere)")
    args = parser.parse_args()

    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    with tempfile.TemporaryDirectory(prefix="lab-load-") as tmp:
        sim_port = free_port()
        sim = start_simulator(sim_port, args.time_scale, Path(tmp) / "renders")
        proc = start_app(port, Path(tmp) / "data", args.time_scale, sim_port)
        try:
            time.sleep(1.0)
            idle = proc_status(proc.pid)
            seeds = list(range(1, args.seeds + 1))

            # One visitor alone first: the baseline the concurrent run is compared with.
            shared = -1 if not args.distinct_renders else 0
            alone = run_visitor(url, shared, seeds)
            after_warmup = proc_status(proc.pid)

            sampler = Sampler(proc.pid)
            sampler.start()
            started = time.monotonic()
            with ThreadPoolExecutor(max_workers=args.visitors) as pool:
                futures = [
                    pool.submit(run_visitor, url, v if args.distinct_renders else shared,
                                [s + 100 * v for s in seeds] if args.distinct_renders else seeds)
                    for v in range(1, args.visitors + 1)
                ]
                summaries = [f.result(timeout=DEADLINE_S) for f in futures]
            wall = time.monotonic() - started
            sampler.stop()
            time.sleep(1.0)
            after = proc_status(proc.pid)
            ledger = requests.get(f"http://127.0.0.1:{sim_port}/_sim/ledger", timeout=10).json()
        finally:
            sim.terminate()
            sim.wait(timeout=20)
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()

    rows = [row for summary in summaries for row in task_rows(summary)]
    statuses = Counter(row.get("status") for row in rows)
    task_ids = [row.get("task_id") for row in rows if row.get("task_id")]
    charges = Counter(charge["task_id"] for charge in ledger["charges"])
    twice = [task for task, n in charges.items() if n > 1]
    expected = args.visitors * args.seeds
    alone_rows = task_rows(alone)

    print(f"visitors {args.visitors} x {args.seeds} seeds = {expected} tasks (fast 720p 4 s, time scale {args.time_scale}, "
          f"{'every video rendered' if args.distinct_renders else 'renders served from the simulator cache'})")
    print(f"tasks seen by visitors : {len(rows)}  statuses {dict(statuses)}")
    print(f"distinct task ids       : {len(set(task_ids))}")
    print(f"simulator submits       : {ledger['submits']} (incl. {len(alone_rows)} from the solo run)")
    print(f"charged tasks           : {len(charges)}  charged twice: {len(twice)}  total ${ledger['total_usd']:.2f}")
    print(f"wall time, one visitor  : {alone['elapsed_s']:.2f} s")
    print(f"wall time, {args.visitors} at once  : {wall:.2f} s  (ratio {wall / alone['elapsed_s']:.2f}x for {args.visitors}x the work; "
          f"{args.visitors * alone['elapsed_s'] / wall:.1f}x faster than one after another)")
    print(f"app RSS idle / warm / peak / after: {idle['VmRSS'] / 1024:.0f} / {after_warmup['VmRSS'] / 1024:.0f} / "
          f"{sampler.peak_rss_kb / 1024:.0f} / {after['VmRSS'] / 1024:.0f} MB")
    print(f"app threads idle / peak / after  : {idle['Threads']} / {sampler.peak_threads} / {after['Threads']}")
    saved = sum(1 for row in rows if row.get("ok"))
    print(f"videos saved            : {saved} of {expected}")
    ok = saved == expected and not twice and len(set(task_ids)) == expected
    print("RESULT:", "every task completed, none charged twice" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
