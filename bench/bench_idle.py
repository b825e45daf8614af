"""Idle: the CPU a running lab takes with nobody on it, with Gradio's queue polling as shipped and as the lab sets it.

Run: .venv/bin/python bench/bench_idle.py [--seconds 10] [--rounds 2]

Starts the simulator and the lab in this process (nothing else runs here), lets
it settle, then measures this process's CPU over a quiet interval: once with the
queue's polling at Gradio's own intervals (1 ms for events, 10 ms for progress)
and once at the lab's (lab.ui.app.QUEUE_POLL_S, PROGRESS_POLL_S), alternating,
in one run. Prints each interval and the ratio of the medians.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

GRADIO_DEFAULTS = (0.001, 0.01)  # gradio 6.31 Queue: sleep_when_free, progress_update_sleep_when_free (Linux)


def idle_cpu(base_url: str, data_dir: str, polls: tuple[float, float], seconds: float) -> float:
    """CPU seconds this process spends while a lab with ``polls`` sits idle for ``seconds``."""
    from lab.settings import load_settings
    from lab.ui import build_demo
    from lab.wiring import open_app

    services = open_app(load_settings({"LAB_DATA_DIR": data_dir, "LAB_PRESCREEN": "off"}), base_url=base_url)
    demo = build_demo(services)
    demo._queue.sleep_when_free, demo._queue.progress_update_sleep_when_free = polls
    try:
        demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
        time.sleep(2.0)  # startup done
        start = time.process_time()
        time.sleep(seconds)
        return time.process_time() - start
    finally:
        demo.close()
        services.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    from lab.simulator.server import SimConfig, SimulatorServer
    from lab.ui.app import PROGRESS_POLL_S, QUEUE_POLL_S

    variants = {"gradio's polling": GRADIO_DEFAULTS, "the lab's polling": (QUEUE_POLL_S, PROGRESS_POLL_S)}
    taken: dict[str, list[float]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as scratch, \
            SimulatorServer(SimConfig(render_cache=Path(scratch) / "renders")) as simulator:
        for round_ in range(args.rounds):
            for name, polls in variants.items():
                cpu = idle_cpu(simulator.base_url, str(Path(scratch) / f"data-{round_}"), polls, args.seconds)
                taken[name].append(cpu)
                print(f"round {round_ + 1}  {name:18s}  {cpu:5.2f} s of CPU in {args.seconds:.0f} s idle "
                      f"({100 * cpu / args.seconds:.1f}% of a core)", flush=True)
    default, ours = (statistics.median(taken[name]) for name in variants)
    print(f"median idle CPU: gradio's {default:.2f} s, the lab's {ours:.2f} s; ratio {default / max(ours, 1e-6):.1f}x")


if __name__ == "__main__":
    main()
