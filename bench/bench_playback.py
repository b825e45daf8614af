"""How closely the Compare grid keeps 12 takes together while they play, in a real Chromium.

Side by side in one run, on the same page server, the same 12 proxies (simulator renders,
720p, 8 s, made by lab.compare.proxies as the app makes them):

  player     lab/static/compare_player.js: one control, the longest take leads, a cell more than
             about a frame away is put back on the leader's time
  naive      12 plain <video> elements started by one loop of play() calls, nothing keeping them together

Every 100 ms while playing it samples each cell's currentTime and prints the spread (latest minus
earliest cell, in frames at 24 fps): median, 95th percentile and worst, then frames decoded and
dropped (getVideoPlaybackQuality) and how many cell-samples found a cell paused (stalled). Headless Chromium decodes in software: on a busy 2-core
machine both sides slow down alike; the ratio is what to read.
Run: .venv/bin/python bench/bench_playback.py [--seconds S] [--cells N]
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import statistics
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from helpers import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from lab.compare import proxies  # noqa: E402
from lab.simulator.render import Renderer, RenderSpec  # noqa: E402

OUT = ROOT / "bench" / "out" / "playback"
FPS = 24
CLIP_S = 8
END_S = CLIP_S - 0.5
STATIC = ROOT / "lab" / "static"

SAMPLE_JS = """() => [...document.querySelectorAll('video')].map(v => {
  const q = v.getVideoPlaybackQuality();
  return {t: v.currentTime, paused: v.paused, ended: v.ended, decoded: q.totalVideoFrames, dropped: q.droppedVideoFrames};
})"""


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # the figures are the output
        pass


def make_proxies(cells: int) -> list[str]:
    renderer = Renderer(OUT / "renders", workers=1)
    names = []
    try:
        for seed in range(1, cells + 1):
            spec = RenderSpec(f"a lighthouse at dusk, take {seed}", seed, "veo-3.1-fast-generate-preview", "720p",
                              "16:9", CLIP_S, 1280, 720)
            clip = renderer.submit(spec).result()
            name = f"p{seed:02d}.mp4"
            if not (OUT / name).exists():
                proxies.make_proxy(clip, OUT / name)
            names.append(name)
    finally:
        renderer.close()
    return names


def write_pages(names: list[str]) -> None:
    cells = [{"task_id": f"task_{i:02d}", "label": f"seed {i + 1}", "fields": {}, "field_names": {}, "differs": [],
              "proxy": name, "original": name, "width": 1280, "height": 720, "status": "saved"}
             for i, name in enumerate(names)]
    data = {"fps": FPS, "cells": cells, "similarity": []}
    player = ("<!doctype html><meta charset=utf-8><style>" + (STATIC / "compare_player.css").read_text() +
              "</style><script>" + (STATIC / "compare_player.js").read_text() + "</script><div id=host></div>"
              f"<script>window.player = ComparePlayer.mount(document.getElementById('host'), {json.dumps(data)});"
              "</script>")
    videos = "".join(f'<video src="{name}" muted preload=auto style="width:24%"></video>' for name in names)
    naive = ("<!doctype html><meta charset=utf-8><button id=start>Play all</button>" + videos +
             "<script>document.getElementById('start').onclick ="
             " () => document.querySelectorAll('video').forEach(v => v.play());</script>")
    (OUT / "player.html").write_text(player)
    (OUT / "naive.html").write_text(naive)


def measure(page, url: str, start: str, seconds: float) -> dict:
    page.goto(url)
    page.wait_for_function("[...document.querySelectorAll('video')].every(v => v.readyState >= 3)", timeout=120_000)
    page.evaluate("() => document.querySelectorAll('video').forEach(v => { v.muted = true; })")
    before = page.evaluate(SAMPLE_JS)
    page.locator(start).first.click()  # a user's click, as in the app: no autoplay rules apply
    spreads, paused = [], 0
    for _ in range(int(seconds * 10)):
        page.wait_for_timeout(100)
        sample = page.evaluate(SAMPLE_JS)
        times = [s["t"] for s in sample]
        paused += sum(s["paused"] and not s["ended"] for s in sample)
        spreads.append((max(times) - min(times)) * FPS)
        if max(times) >= END_S:  # one pass: the loop back to 0 is not drift
            break
    after = page.evaluate(SAMPLE_JS)
    decoded = sum(a["decoded"] - b["decoded"] for a, b in zip(after, before))
    dropped = sum(a["dropped"] - b["dropped"] for a, b in zip(after, before))
    spreads.sort()
    return {"samples": len(spreads), "paused": paused, "median": statistics.median(spreads) if spreads else float("nan"),
            "p95": spreads[int(0.95 * (len(spreads) - 1))] if spreads else float("nan"),
            "worst": spreads[-1] if spreads else float("nan"), "decoded": decoded, "dropped": dropped}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=7.5, help="how long each side plays at most (one pass of an 8 s clip)")
    parser.add_argument("--cells", type=int, default=12)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    write_pages(make_proxies(args.cells))
    handler = functools.partial(QuietHandler, directory=str(OUT))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    from playwright.sync_api import sync_playwright

    results = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        for name, page_name, start in (("player", "player.html", ".cp-play"), ("naive", "naive.html", "#start")):
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            results[name] = measure(page, f"{base}/{page_name}", start, args.seconds)
            page.close()
        browser.close()
    server.shutdown()
    print(f"{args.cells} cells, 720p proxies, one pass (up to {args.seconds:.1f} s) each, spread in frames at {FPS} fps")
    print(f"{'':8}{'samples':>8}{'median':>8}{'p95':>8}{'worst':>8}{'decoded':>9}{'dropped':>9}{'paused':>8}")
    for name, r in results.items():
        print(f"{name:8}{r['samples']:>8}{r['median']:>8.2f}{r['p95']:>8.2f}{r['worst']:>8.2f}{r['decoded']:>9}"
              f"{r['dropped']:>9}{r['paused']:>8}")
    p, n = results["player"], results["naive"]
    if n["p95"] > 0:
        print(f"p95 spread player / naive: {p['p95'] / n['p95']:.2f}x")


if __name__ == "__main__":
    main()
