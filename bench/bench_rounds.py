"""Resources over time: 6 rounds of 20 visitors sweeping at once; the app's RSS and Gradio's temp size after each.

Run: .venv/bin/python bench/bench_rounds.py [--rounds 6] [--visitors 20] [--seeds 3] [--malloc-arena-max N]

`python app.py` runs in its own process (on an open simulator process, see
bench_load.py) with its own GRADIO_TEMP_DIR. After each round of concurrent
/sweep calls it prints the app's RSS, the size of Gradio's temp directory and
of the data directory's exports. What to look for: the temp directory stays
flat (videos, thumbnails and ZIPs are served from the data directory, not
copied), and RSS levels off instead of growing round after round.
``--malloc-arena-max`` runs the app with glibc's MALLOC_ARENA_MAX (how many
malloc arenas worker threads may spread over), for comparing RSS. Without it
app.py caps the arenas at 2 itself; ``--malloc-arena-max 16`` (glibc's default
on 2 cores) shows the creep that cap removes.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gradio_client import Client

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_load import free_port, proc_status, start_app, start_simulator, sweep_body  # noqa: E402


def tree_mb(path: Path) -> float:
    if not path.exists():
        return 0.0
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--visitors", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--time-scale", type=float, default=0.05)
    parser.add_argument("--malloc-arena-max", type=int, default=None)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="lab-rounds-") as name:
        tmp = Path(name)
        gradio_tmp = tmp / "gradio"
        os.environ["GRADIO_TEMP_DIR"] = str(gradio_tmp)  # start_app passes the environment on
        if args.malloc_arena_max:
            os.environ["MALLOC_ARENA_MAX"] = str(args.malloc_arena_max)
        sim_port, port = free_port(), free_port()
        sim = start_simulator(sim_port, args.time_scale, tmp / "renders")
        app = start_app(port, tmp / "data", args.time_scale, sim_port)
        url = f"http://127.0.0.1:{port}/"
        seeds = list(range(1, args.seeds + 1))
        failures = 0
        try:
            time.sleep(1.0)
            idle = proc_status(app.pid)["VmRSS"] / 1024
            print(f"{args.visitors} visitors x {args.seeds} seeds per round, time scale {args.time_scale}"
                  + (f", MALLOC_ARENA_MAX={args.malloc_arena_max}" if args.malloc_arena_max else ""))
            print(f"idle          RSS {idle:6.0f} MB   gradio temp {tree_mb(gradio_tmp):6.1f} MB")
            # One client per visitor for all rounds, as a visitor keeps one page open.
            clients = [Client(url, verbose=False, download_files=False, httpx_kwargs={"timeout": 120})
                       for _ in range(args.visitors)]

            def visit(client) -> bool:
                try:
                    _sheet, _zip, summary = client.predict(sweep_body(-1), ",".join(map(str, seeds)), 0, "",
                                                           api_name="/sweep")
                    return bool(summary.get("ok"))
                except Exception as exc:  # counted, and the round goes on
                    print(f"  a visitor's sweep failed: {type(exc).__name__}: {exc}"[:200])
                    return False

            for round_ in range(1, args.rounds + 1):
                started = time.monotonic()
                with ThreadPoolExecutor(max_workers=args.visitors) as pool:
                    oks = list(pool.map(visit, clients))
                failures += oks.count(False)
                time.sleep(1.0)
                rss = proc_status(app.pid)["VmRSS"] / 1024
                print(f"after round {round_} RSS {rss:6.0f} MB   gradio temp {tree_mb(gradio_tmp):6.1f} MB   "
                      f"exports {tree_mb(tmp / 'data' / 'exports'):6.1f} MB   ({time.monotonic() - started:.1f} s)")
            for client in clients:
                client.close()
        finally:
            sim.terminate()
            sim.wait(timeout=20)
            app.terminate()
            app.wait(timeout=20)
    print("RESULT:", "every sweep saved" if failures == 0 else f"{failures} sweeps not fully saved")
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
