"""Does review slow the Compare player down? 12 takes, 200 comments, in a real Chromium.

Side by side in one run, on the same page server and the same 12 proxies as bench_playback.py:

  no comments      the player with the review layer and an empty review
  200 comments     the same with 200 comments (with drawings) spread over the 12 takes, and one more
                   comment added (the list, the markers and the cell counts redrawn) while all 12 play

For each it prints the spread between the takes while they play (latest minus earliest cell, in frames
at 24 fps: median, 95th percentile, worst), as bench_playback.py does; then how long the comment list
takes to render with 200 comments (the median of 20 renders, in ms, against a frame's 41.7 ms).
Run: .venv/bin/python bench/bench_review.py [--seconds S] [--cells N] [--comments N]
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import random
import statistics
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

from bench_playback import FPS, OUT, QuietHandler, make_proxies, measure  # noqa: E402
from helpers import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

STATIC = ROOT / "lab" / "static"
CLIP_S = 8


def comments(count: int, takes: list[str]) -> dict:
    rng = random.Random(7)
    by_take: dict = {t: {"status": "needs_review", "status_history": [], "comments": []} for t in takes}
    for n in range(count):
        task = takes[n % len(takes)]
        t_in = round(rng.uniform(0, CLIP_S - 1), 3)
        by_take[task]["comments"].append({
            "id": f"c{n:04d}", "task_id": task, "t_in": t_in, "t_out": round(t_in + 0.5, 3) if n % 3 == 0 else None,
            "text": f"note {n}: the light flickers on the left " * (1 + n % 3), "author": f"reviewer {n % 5}",
            "created_at": 1_764_900_000 + n,
            "shapes": [{"kind": "arrow", "color": "#e03131", "points": [[0.2, 0.3], [0.5, 0.6]]}] if n % 2 else []})
    return {"mode": "report", "report_id": f"bench{count}", "link_extra": "", "takes": by_take}


def write_page(name: str, names: list[str], review: dict) -> None:
    cells = [{"task_id": f"task_{i:02d}", "label": f"seed {i + 1}", "fields": {}, "field_names": {}, "differs": [],
              "proxy": n, "original": n, "width": 1280, "height": 720, "status": "saved"} for i, n in enumerate(names)]
    data = {"fps": FPS, "cells": cells, "similarity": [], "review": review}
    css = (STATIC / "compare_player.css").read_text() + (STATIC / "compare_review.css").read_text()
    page = ("<!doctype html><meta charset=utf-8><style>" + css + "</style><script>" +
            (STATIC / "compare_player.js").read_text() + "</script><script>" + (STATIC / "compare_review.js").read_text()
            + "</script><div id=host></div>"
            f"<script>window.player = ComparePlayer.mount(document.getElementById('host'), {json.dumps(data)});</script>")
    (OUT / name).write_text(page)


ADD_ONE_JS = """() => setTimeout(() => {
  const r = window.player.review;
  r.nameInput.value = 'bench';
  r.text.value = 'one more while playing';
  r.submit();
}, 1500)"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=7.5)
    parser.add_argument("--cells", type=int, default=12)
    parser.add_argument("--comments", type=int, default=200)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    names = make_proxies(args.cells)
    takes = [f"task_{i:02d}" for i in range(len(names))]
    write_page("review-empty.html", names, comments(0, takes))
    write_page("review-full.html", names, comments(args.comments, takes))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(OUT)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    from playwright.sync_api import sync_playwright

    results, renders = {}, []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        for label, page_name in (("no comments", "review-empty.html"), (f"{args.comments} comments", "review-full.html")):
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            if page_name == "review-full.html":
                page.add_init_script("window.addEventListener('load', () => document.querySelector('.cp-play')"
                                     ".addEventListener('click', () => (" + ADD_ONE_JS + ")()))")
            results[label] = measure(page, f"{base}/{page_name}", ".cp-play", args.seconds)
            if page_name == "review-full.html":
                added = page.evaluate("window.player.review.state().comments.length")
                page.evaluate("window.player.pause()")
                for _ in range(20):
                    renders.append(page.evaluate("(() => { window.player.review.renderList(); "
                                                 "return window.player.review.lastRenderMs; })()"))
            page.close()
        browser.close()
    server.shutdown()
    print(f"{args.cells} cells, 720p proxies, one pass (up to {args.seconds:.1f} s) each, spread in frames at {FPS} fps")
    print(f"{'':14}{'samples':>8}{'median':>8}{'p95':>8}{'worst':>8}{'dropped':>9}{'paused':>8}")
    for name, r in results.items():
        print(f"{name:14}{r['samples']:>8}{r['median']:>8.2f}{r['p95']:>8.2f}{r['worst']:>8.2f}{r['dropped']:>9}"
              f"{r['paused']:>8}")
    full, empty = results[f"{args.comments} comments"], results["no comments"]
    print(f"comments shown after adding one while playing: {added} (of {args.comments} + 1)")
    if empty["p95"] > 0:
        print(f"p95 spread with {args.comments} comments / with none: {full['p95'] / empty['p95']:.2f}x")
    renders.sort()
    print(f"comment list of {added} rendered in {statistics.median(renders):.2f} ms median, "
          f"{renders[-1]:.2f} ms worst of {len(renders)} (a frame is {1000 / FPS:.1f} ms)")


if __name__ == "__main__":
    main()
