"""Hostile input is refused before work: seed lists, random counts, and /resolve while a huge sweep is refused.

Run: .venv/bin/python bench/bench_hostile.py [--rounds 30] 2>/dev/null   (Gradio logs each refused call on stderr)

1. A 20,000- and a 40,000-seed list against max_sweep 8: ``sweeps.prepare`` (reads
   at most 9 seeds, then refuses) beside the former parser (every seed parsed and
   deduplicated with a list, before the limit was looked at), in one run.
2. ``--count 100000000``: time and peak memory (tracemalloc) of the refusal.
3. The app over HTTP (gradio_client, the app in its own process): the app's CPU
   time per call (from /proc) for a small /resolve, a refused 40,000-seed /sweep
   and a refused 1 MB body; then /resolve latency alone and while another
   process keeps sending those (wall time; noisy on a shared machine).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
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


SERVER = """
import sys, tempfile
from pathlib import Path
from lab.wiring import open_app
from lab.settings import load_settings
from lab.simulator.server import SimConfig, SimulatorServer
from lab.ui import build_demo
data_dir = Path(tempfile.mkdtemp(prefix="bench-hostile-"))
sim = SimulatorServer(SimConfig(time_scale=0.02, render_cache=data_dir / "renders")).start()
settings = load_settings(environ={"LAB_DATA_DIR": str(data_dir), "LAB_MAX_SWEEP": "8",
                                  "LAB_SPEND_CAP_SESSION_USD": "none", "LAB_SPEND_CAP_DAY_USD": "none"})
services = open_app(settings, base_url=sim.base_url, api_key="sk-bench-hostile")
build_demo(services).launch(server_name="127.0.0.1", server_port=int(sys.argv[1]), quiet=True)
"""

ATTACK = """
import json, sys
from gradio_client import Client
client = Client(sys.argv[1], verbose=False)
body = json.dumps({"model": "veo-3.1-fast-generate-preview", "prompt": "a heron", "duration": "4"})
seeds = ", ".join(str(n) for n in range(40_000))
huge = json.dumps({"model": "veo-3.1-fast-generate-preview", "prompt": "a heron", "metadata": {"pad": "x" * 1_000_000}})
while True:
    try:
        if sys.argv[2] == "sweep":
            client.predict(body, seeds, 0, "", api_name="/sweep")
        else:
            client.predict(huge, api_name="/resolve")
    except Exception:
        print("refused", flush=True)
"""


def latency_part(rounds: int) -> None:
    """The lab and each attacker in their own process (as in production), the measuring client here."""
    import socket
    import subprocess

    from gradio_client import Client

    print("3. /resolve latency over HTTP while hostile requests are refused (server, attacker: own processes)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)], env=env, cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                client = Client(url, verbose=False)
                break
            except Exception:  # noqa: BLE001 - not up yet
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        small = json.dumps({**BODY, "metadata": {"seed": 7}})

        def latencies() -> list[float]:
            samples = []
            for _ in range(rounds):
                started = time.perf_counter()
                client.predict(small, api_name="/resolve")
                samples.append(time.perf_counter() - started)
            return samples

        def server_cpu_s() -> float:
            with open(f"/proc/{server.pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

        seeds_40k = ", ".join(str(n) for n in range(40_000))
        huge_body = json.dumps({**BODY, "metadata": {"pad": "x" * 1_000_000}})
        calls = {
            "a small /resolve": lambda: client.predict(small, api_name="/resolve"),
            "a refused 40,000-seed /sweep": lambda: client.predict(small, seeds_40k, 0, "", api_name="/sweep"),
            "a refused 1 MB /resolve body": lambda: client.predict(huge_body, api_name="/resolve"),
        }
        for name, call in calls.items():
            before = server_cpu_s()
            for _ in range(rounds):
                try:
                    call()
                except Exception:  # noqa: BLE001 - the refused ones raise: that is the point
                    pass
            print(f"   server CPU per call, {name}: {(server_cpu_s() - before) / rounds * 1e3:.0f} ms")

        latencies()  # warm up
        idle = latencies()
        print(f"   alone: median {statistics.median(idle) * 1e3:.0f} ms, max {max(idle) * 1e3:.0f} ms ({rounds} calls)")
        for kind, name in (("sweep", "40,000-seed /sweep requests"), ("resolve", "1 MB /resolve bodies")):
            attacker = subprocess.Popen([sys.executable, "-c", ATTACK, url, kind], env=env, cwd=REPO,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            time.sleep(5)  # its client connects and starts sending
            busy = latencies()
            attacker.kill()
            refused = attacker.communicate()[0].count("refused")
            print(f"   beside {refused} refused {name}: median {statistics.median(busy) * 1e3:.0f} ms, "
                  f"max {max(busy) * 1e3:.0f} ms; median ratio to alone {statistics.median(busy) / statistics.median(idle):.2f}")
        client.close()
    finally:
        server.kill()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    seeds_part(args.rounds)
    count_part()
    latency_part(args.rounds)


if __name__ == "__main__":
    main()
