"""Typing and one run in the page: the browser's CPU with every output a progress target (Gradio's default)
and with the progress targets the lab registers (lab.ui.events.QUIET, progress_on).

Run: .venv/bin/python bench/bench_typing.py [--edits 5] [--rounds 2]

Gradio 6's page, for each status message of each event, re-reads every component that was ever a progress
target of an event it ran (a layout block with its whole subtree). Starts the simulator and two labs in this
process, one with every event's ``show_progress_on`` put back to Gradio's default (every output), and drives
each in turn in one Chromium (Debian's): load the page, type ``--edits`` prompts (each waits until the
Generate gate says Ready), then one Generate until its video is shown. Measures the CPU of this Chromium's
processes (read from /proc) for the typing and for the run, counts the requests one keystroke sends, and
prints the medians and their ratio.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from helpers import CHROMIUM, CHROMIUM_ARGS, NO_CAPS, free_port, lab_settings  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def tree_cpu(root: int) -> float:
    """CPU seconds of ``root``'s live descendants (Playwright's driver and its Chromium), their reaped children
    included."""
    children: dict[int, list[tuple[int, int]]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        children.setdefault(int(fields[1]), []).append((int(name), sum(int(x) for x in fields[11:15])))
    total, stack = 0, [root]
    while stack:
        for pid, ticks in children.get(stack.pop(), []):
            total += ticks
            stack.append(pid)
    return total / TICKS


def start_lab(base_url: str, data_dir: str, gradio_default: bool):
    from lab.ui import build_demo
    from lab.wiring import open_app

    services = open_app(lab_settings({"LAB_DATA_DIR": data_dir, "LAB_SIM_TIME_SCALE": "0.02", **NO_CAPS}),
                        base_url=base_url)
    demo = build_demo(services)
    if gradio_default:
        for fn in demo.fns.values():
            fn.show_progress_on = None
    _, url, _ = demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    return demo, services, url


def drive(page, url: str, edits: int, round_: int) -> tuple[float, float, float]:
    """(CPU of the typing, requests per keystroke, CPU of one run) in a freshly loaded page."""
    from playwright.sync_api import expect

    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(url)
    expect(page.locator("#effective-panel")).to_contain_text("pixel size", timeout=60_000)
    time.sleep(1.0)  # the page's load events are over
    me = os.getpid()
    before, sent = tree_cpu(me), len(requests)
    for n in range(edits):
        page.get_by_label("Prompt", exact=True).fill(f"a lighthouse at dusk, round {round_}, take {n}")
        expect(page.locator("#generate-gate")).to_contain_text("Ready", timeout=10_000)
    time.sleep(0.5)
    typing, per_key = tree_cpu(me) - before, (len(requests) - sent) / edits
    before = tree_cpu(me)
    page.get_by_role("button", name="Generate", exact=True).click()
    expect(page.locator("#run-progress")).to_contain_text("done", timeout=120_000)
    expect(page.locator("#run-video video")).to_have_attribute("src", re.compile(r"\.mp4"), timeout=10_000)
    time.sleep(0.5)
    return typing, per_key, tree_cpu(me) - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    from lab.simulator.server import SimConfig, SimulatorServer

    variants = {"every output a target": True, "the lab's targets": False}
    taken: dict[str, dict[str, list[float]]] = {name: {"typing": [], "run": []} for name in variants}
    with tempfile.TemporaryDirectory() as scratch, \
            SimulatorServer(SimConfig(time_scale=0.02, render_cache=Path(scratch) / "renders")) as simulator, \
            sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        labs = {name: start_lab(simulator.base_url, str(Path(scratch) / f"data-{n}"), default)
                for n, (name, default) in enumerate(variants.items())}
        try:
            for round_ in range(args.rounds):
                for name, (_, _, url) in labs.items():
                    page = browser.new_page(viewport={"width": 1440, "height": 1000})
                    typing, per_key, run = drive(page, url, args.edits, round_)
                    page.close()
                    taken[name]["typing"].append(typing)
                    taken[name]["run"].append(run)
                    print(f"round {round_ + 1}  {name:22s}  typing {typing:5.2f} s of browser CPU for {args.edits} "
                          f"edits ({per_key:.1f} requests a keystroke), one run {run:5.2f} s", flush=True)
        finally:
            for demo, services, _ in labs.values():
                demo.close()
                services.close()
            browser.close()
    (default, ours) = (taken[name] for name in variants)
    for what in ("typing", "run"):
        before, after = statistics.median(default[what]), statistics.median(ours[what])
        print(f"median browser CPU, {what}: every output a target {before:.2f} s, the lab's targets {after:.2f} s; "
              f"ratio {before / max(after, 1e-6):.1f}x")


if __name__ == "__main__":
    main()
