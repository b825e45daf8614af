"""Hostile input is refused before work: seed lists, random counts, and /resolve while a huge sweep is refused.

Run: .venv/bin/python bench/bench_hostile.py [--rounds 30] 2>/dev/null   (Gradio logs each refused call on stderr)

1. A 20,000- and a 40,000-seed list against max_sweep 8: ``sweeps.prepare`` (reads
   at most 9 seeds, then refuses) beside the former parser (every seed parsed and
   deduplicated with a list, before the limit was looked at), in one run.
2. ``--count 100000000``: time and peak memory (tracemalloc) of the refusal.
3. The app over HTTP (gradio_client): /resolve latency alone, then while another
   client keeps sending 40,000-seed /sweep requests and 1 MB /resolve bodies.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from lab import params, sweeps  # noqa: E402
from lab.errors import RequestInvalid  # noqa: E402

BODY = {"model": params.FAST_MODEL, "prompt": "a heron in reeds, morning mist", "duration": "4"}


def former_parse_seeds(text: str) -> list[int]:
    """The parser this replaced: every token parsed, duplicates found by scanning a list (quadratic)."""
    seeds: list[int] = []
    for token in re.split(r"[\s,;]+", text.strip()):
        if token:
            seed = int(token)
            if seed not in seeds:
                seeds.append(seed)
    return seeds


def timed(fn, rounds: int) -> float:
    """Median seconds of ``fn()`` over ``rounds`` calls (a RequestInvalid counts as done)."""
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        try:
            fn()
        except RequestInvalid:
            pass
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def seeds_part(rounds: int) -> None:
    print("1. seed lists against max_sweep 8")
    for count in (20_000, 40_000):
        text = ", ".join(str(n) for n in range(count))
        now = timed(lambda: sweeps.prepare(BODY, max_sweep=8, seeds_text=text), rounds)
        before = timed(lambda: former_parse_seeds(text), 1)
        print(f"   {count:,} seeds: refused in {now * 1e3:.3f} ms; the former parser took {before * 1e3:,.0f} ms "
              f"before the limit was checked; ratio {before / now:,.0f}x")
    ok = timed(lambda: sweeps.prepare(BODY, max_sweep=8, seeds_text="1, 2, 3, 4"), rounds)
    print(f"   a valid 4-seed sweep (planned and resolved): {ok * 1e3:.3f} ms")


def count_part() -> None:
    print("2. --count 100000000")
    tracemalloc.start()
    started = time.perf_counter()
    try:
        sweeps.prepare(BODY, max_sweep=8, random_count=100_000_000)
    except RequestInvalid as exc:
        message = str(exc)
    took = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"   refused in {took * 1e3:.3f} ms, peak {peak / 1024:.1f} KiB allocated: {message[:70]}...")


def latency_part(rounds: int) -> None:
    from gradio_client import Client

    from lab.orchestrator import Orchestrator
    from lab.settings import load_settings
    from lab.simulator.server import SimConfig, SimulatorServer
    from lab.ui import build_demo

    print("3. /resolve latency over HTTP while hostile requests are refused")
    data_dir = Path(tempfile.mkdtemp(prefix="bench-hostile-"))
    small = json.dumps({**BODY, "metadata": {"seed": 7}})
    seeds_40k = ", ".join(str(n) for n in range(40_000))
    huge_body = json.dumps({**BODY, "metadata": {"pad": "x" * 1_000_000}})
    with SimulatorServer(SimConfig(time_scale=0.02, render_cache=data_dir / "renders")) as sim:
        settings = load_settings(environ={"LAB_DATA_DIR": str(data_dir), "LAB_MAX_SWEEP": "8",
                                          "LAB_SPEND_CAP_SESSION_USD": "none", "LAB_SPEND_CAP_DAY_USD": "none"})
        services = Orchestrator.create(settings, base_url=sim.base_url, api_key="sk-bench-hostile")
        demo = build_demo(services)
        _, url, _ = demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
        try:
            client, attacker = Client(url, verbose=False), Client(url, verbose=False)

            def latencies() -> list[float]:
                samples = []
                for _ in range(rounds):
                    started = time.perf_counter()
                    client.predict(small, api_name="/resolve")
                    samples.append(time.perf_counter() - started)
                return samples

            latencies()  # warm up
            idle = latencies()
            print(f"   alone: median {statistics.median(idle) * 1e3:.0f} ms, max {max(idle) * 1e3:.0f} ms ({rounds} calls)")
            attacks = {
                "40,000-seed /sweep requests": lambda: attacker.predict(small, seeds_40k, 0, "", api_name="/sweep"),
                "1 MB /resolve bodies": lambda: attacker.predict(huge_body, api_name="/resolve"),
            }
            for name, call in attacks.items():
                stop = threading.Event()
                refused = [0]

                def attack(call=call, stop=stop, refused=refused) -> None:
                    while not stop.is_set():
                        try:
                            call()
                        except Exception:  # noqa: BLE001 - each one is refused: that is the point
                            refused[0] += 1

                thread = threading.Thread(target=attack, daemon=True)
                thread.start()
                time.sleep(0.5)
                busy = latencies()
                stop.set()
                thread.join(timeout=60)
                print(f"   beside {refused[0]} refused {name}: median {statistics.median(busy) * 1e3:.0f} ms, "
                      f"max {max(busy) * 1e3:.0f} ms; median ratio to alone {statistics.median(busy) / statistics.median(idle):.2f}")
            client.close()
            attacker.close()
        finally:
            demo.close()
            services.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    seeds_part(args.rounds)
    count_part()
    latency_part(args.rounds)


if __name__ == "__main__":
    main()
