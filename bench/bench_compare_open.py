"""First Compare of 8 takes saved earlier, and flip / offset in sync, in a real Chromium. Side by side in one run.

  open       8 journalled takes (simulator renders, 720p, 8 s). "before": no proxies yet (what a first
             Compare met before the pre-screen: it encodes 8 proxies while the user waits); "after": the
             background pre-screen already made each proxy (lab.prescreen.background.Screener, run
             when the takes were saved, not timed here). Measured: CompareService.open (the tab's back
             end) + the player page until every cell can play (readyState >= 3), as bench_playback.py waits.
  flip       the 8 takes playing, flipping through them with keys 1-8 every 300 ms: the spread of the
             cells (latest minus earliest, in frames) sampled every 100 ms
  offset     takes 2 and 3 shifted by +6 and -4 frames, playing: the spread once each cell's offset is
             taken off (0 = every cell on the frame its offset asks for)

Run: .venv/bin/python bench/bench_compare_open.py [--cells N]
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from helpers import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from lab import params  # noqa: E402
from lab.compare.service import CompareService  # noqa: E402
from lab.compare.set import player_data  # noqa: E402
from lab.prescreen.background import Screener  # noqa: E402
from lab.simulator.render import Renderer, RenderSpec  # noqa: E402
from lab.store import Store  # noqa: E402

OUT = ROOT / "bench" / "out" / "compare_open"
STATIC = ROOT / "lab" / "static"
FPS = 24


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves byte ranges, as the app's file route does: without them Chromium cannot seek a video
    past what it has buffered (a cell shifted by an offset then sat at 0)."""

    def log_message(self, *args) -> None:
        pass

    def send_head(self):
        wanted = self.headers.get("Range", "")
        path = Path(self.translate_path(self.path))
        if not wanted.startswith("bytes=") or not path.is_file():
            return super().send_head()
        size = path.stat().st_size
        first, _, last = wanted[6:].partition("-")
        start = int(first or 0)
        end = min(int(last) if last else size - 1, size - 1)
        handle = path.open("rb")
        handle.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self._remaining = end - start + 1
        return handle

    def copyfile(self, source, outputfile):
        remaining = getattr(self, "_remaining", None)
        if remaining is None:
            return super().copyfile(source, outputfile)
        while remaining > 0:
            chunk = source.read(min(65536, remaining))
            if not chunk:
                break
            outputfile.write(chunk)
            remaining -= len(chunk)


def journal(data_dir: Path, cells: int) -> list[str]:
    """``cells`` saved takes in a fresh journal (their videos copied in, as a saved run leaves them)."""
    renderer = Renderer(OUT / "renders", workers=1)
    ids = []
    try:
        with Store(data_dir / "journal.sqlite3") as store:
            for seed in range(1, cells + 1):
                body = {"model": params.FAST_MODEL, "prompt": f"a lighthouse at dusk, take {seed}", "duration": "8",
                        "metadata": {"seed": seed}}
                clip = renderer.render(RenderSpec(body["prompt"], seed, params.FAST_MODEL, "720p", "16:9", 8, 1280, 720))
                task_id = f"task_bench{seed:02d}"
                (data_dir / "runs").mkdir(parents=True, exist_ok=True)
                video = data_dir / "runs" / f"{task_id}.mp4"
                shutil.copyfile(clip, video)
                store.record_submitted(task_id, params.resolve(body), body, base_url_kind="simulator")
                store.update(task_id, status="saved", video_path=str(video))
                ids.append(task_id)
    finally:
        renderer.close()
    return ids


def page_for(data_dir: Path, opened) -> str:
    """The player page the tab shows, its media served relative to the data directory."""
    media = {c.task_id: (f"proxies/{c.task_id}.mp4", None) for c in opened.comparison.compare_set.cells}
    data = player_data(opened.comparison.compare_set, media)
    name = f"page-{time.time_ns()}.html"
    (data_dir / name).write_text(
        "<!doctype html><meta charset=utf-8><style>" + (STATIC / "compare_player.css").read_text()
        + (STATIC / "compare_modes.css").read_text() + "</style><script>" + (STATIC / "compare_player.js").read_text()
        + "</script><script>" + (STATIC / "compare_modes.js").read_text() + "</script><div id=host></div>"
        f"<script>window.player = ComparePlayer.mount(document.getElementById('host'), {json.dumps(data)});</script>")
    return name


def first_open(browser, data_dir: Path, base: str, ids: list[str]) -> float:
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    with Store(data_dir / "journal.sqlite3") as store:
        started = time.perf_counter()
        opened = CompareService(store, data_dir).open(ids)
        page.goto(f"{base}/{page_for(data_dir, opened)}")
        page.wait_for_function("window.player && window.player.state().cells.every(c => c.ready >= 3)",
                               timeout=300_000)
        took = time.perf_counter() - started
    page.close()
    return took


def spreads(page, seconds: float, during=None) -> list[float]:
    found = []
    for step in range(int(seconds * 10)):
        if during is not None:
            during(step)
        page.wait_for_timeout(100)
        cells = page.evaluate("window.player.state().cells")
        shown = [c["time"] - c["offset_frames"] / FPS for c in cells]
        if max(c["time"] for c in cells) >= 7.5:
            break
        found.append((max(shown) - min(shown)) * FPS)
    return sorted(found)


def summary(values: list[float]) -> str:
    if not values:
        return "no samples"
    return (f"median {statistics.median(values):.2f}, p95 {values[int(0.95 * (len(values) - 1))]:.2f}, "
            f"worst {values[-1]:.2f} frames ({len(values)} samples)")


def modes(browser, data_dir: Path, base: str, ids: list[str]) -> tuple[list[float], list[float]]:
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    with Store(data_dir / "journal.sqlite3") as store:
        opened = CompareService(store, data_dir).open(ids)
    page.goto(f"{base}/{page_for(data_dir, opened)}")
    page.wait_for_function("window.player && window.player.state().cells.every(c => c.ready >= 3)", timeout=300_000)
    page.locator(".cp-root").focus()
    page.keyboard.press(" ")

    def flip(step: int) -> None:
        if step % 3 == 0:
            page.keyboard.press(str(1 + (step // 3) % len(ids)))

    flipping = spreads(page, 7.0, flip)
    page.keyboard.press(" ")
    page.keyboard.press("0")
    page.evaluate("""() => { const p = window.player; p.setOffset(p.cells[1], 6); p.setOffset(p.cells[2], -4);
                              p.seek(0.5); }""")
    # Every cell on its (shifted) frame and ready to play before the clock starts, as after a user's seek.
    page.wait_for_function("window.player.cells.every(c => !c.video.seeking && c.video.readyState >= 3)",
                           timeout=60_000)
    page.keyboard.press(" ")
    shifted = spreads(page, 6.5)
    page.close()
    return flipping, shifted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=8)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="bench-compare-open-") as tmp:
        before_dir, after_dir = Path(tmp) / "before", Path(tmp) / "after"
        before_ids, after_ids = journal(before_dir, args.cells), journal(after_dir, args.cells)
        with Store(after_dir / "journal.sqlite3") as store:  # what the background pre-screen did at save time
            screener = Screener(store, after_dir)
            started = time.perf_counter()
            for task_id in after_ids:
                screener.screen_now(task_id, after_dir / "runs" / f"{task_id}.mp4")
            screened = time.perf_counter() - started
            screener.close()
        servers, bases = [], {}
        for name, root in (("before", before_dir), ("after", after_dir)):
            server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root)))
            threading.Thread(target=server.serve_forever, daemon=True).start()
            servers.append(server)
            bases[name] = f"http://127.0.0.1:{server.server_port}"
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            before = first_open(browser, before_dir, bases["before"], before_ids)
            after = first_open(browser, after_dir, bases["after"], after_ids)
            flipping, shifted = modes(browser, after_dir, bases["after"], after_ids)
            browser.close()
        for server in servers:
            server.shutdown()
    print(f"first Compare of {args.cells} takes (720p, 8 s) saved earlier, to every cell playable:")
    print(f"  before (proxies made on open)   {before:6.2f} s")
    print(f"  after  (pre-screen made them)   {after:6.2f} s   (target < 2 s; {before / after:.1f}x faster)")
    print(f"  (the background pre-screen of the {args.cells} takes at save time: {screened:.1f} s, off the user's wait)")
    print(f"flip through the takes (keys 1-{args.cells} every 300 ms) while playing: {summary(flipping)}")
    print(f"offsets +6 / -4 frames while playing, spread after the offsets: {summary(shifted)}")


if __name__ == "__main__":
    main()
