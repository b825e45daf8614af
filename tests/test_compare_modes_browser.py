"""Compare modes past the wipe, in Debian's Chromium, on a standalone report opened from file://.

Three journalled takes made through the runner with the background pre-screen:
A (clean), B (frozen from 1 s to 2.5 s, planted by the simulator) and C, started
from A with another seed. One test walks through what a person choosing a take
does: the badges (a click goes there), flip (keys 1-9), the difference of two
takes, a per-take offset, and solo from the keyboard.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lab.client import VideosClient
from lab.compare.pipeline import compare_runs
from lab.compare.report import write_report
from lab.prescreen.background import Screener
from lab.runner import Runner
from lab.store import Store, default_store_path

ARTIFACTS = Path(__file__).parent / "artifacts"
FRAME = 1 / 24
# Read at import: the autouse fixture clears LAB_* variables before each test.
SHOTS = bool(os.environ.get("LAB_SCREENSHOTS"))
BODY = {"model": "veo-3.1-fast-generate-preview", "prompt": "a heron in the reeds", "duration": "4",
        "metadata": {"resolution": "720p", "seed": 1}}


@pytest.fixture(scope="module")
def report(tmp_path_factory, simulator) -> Path:
    data_dir = tmp_path_factory.mktemp("modes-data")
    with Store(default_store_path(data_dir)) as store:
        screener = Screener(store, data_dir)
        client = VideosClient.scaled(simulator.base_url, "sk-test-modes", time_scale=0.02)
        runner = Runner(client, store, data_dir, thumbs=0, preview=False, screener=screener, backend="simulator")
        clean = runner.run_one(BODY)
        frozen = runner.run_one({**BODY, "prompt": "a heron in the reeds [sim:freeze@1-2.5]",
                                 "metadata": {"resolution": "720p", "seed": 2}})
        child = runner.run_one({**BODY, "metadata": {"resolution": "720p", "seed": 3}}, parent_task_id=clean.task_id)
        assert clean.ok and frozen.ok and child.ok
        screener.drain(timeout=120)
        screener.close()
        out = write_report(compare_runs(store, data_dir, [clean.task_id, frozen.task_id, child.task_id]),
                           tmp_path_factory.mktemp("modes-report") / "report")
    return out / "index.html"


def state(page) -> dict:
    return page.evaluate("window.player.state()")


def spread(page) -> float:
    """How far apart the cells are, each measured against the clock its offset puts it on."""
    cells = state(page)["cells"]
    shown = [c["time"] - c["offset_frames"] * FRAME for c in cells]
    return max(shown) - min(shown)


def settled(page, expression: str) -> None:
    page.wait_for_function(expression, timeout=15_000)


def test_badges_flip_difference_offset_and_solo_keep_the_takes_together(report: Path, browser) -> None:
    page = browser.new_page(viewport={"width": 1440, "height": 1000}, bypass_csp=True)
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(report.as_uri())
    settled(page, "window.player && window.player.state().cells.every(c => c.ready >= 2 && c.frame >= 0)")
    shots = SHOTS

    # Badges: B's freeze is named with its time; a click puts every take there.
    badge = page.locator(".cp-cell").nth(1).locator("button.cpm-frozen")
    assert badge.inner_text().startswith("frozen 1.")
    assert page.locator(".cp-cell").nth(0).locator(".cpm-clean").inner_text() == "no issues found"
    assert "from A" in page.locator(".cp-cell").nth(2).locator(".cpm-parent").inner_text()
    badge.click()
    at = float(badge.get_attribute("data-at"))
    settled(page, f"window.player.state().cells.every(c => Math.abs(c.time - {at}) < {FRAME})")

    # Flip: key 2 shows B alone, the others hidden in place and still on the same frame; 2 again, the grid.
    page.locator(".cp-root").focus()
    page.keyboard.press("2")
    assert page.evaluate("window.player.modes.state().flipped") == "B"
    hidden = page.evaluate("[...document.querySelectorAll('.cp-cell')].map(c => getComputedStyle(c).visibility)")
    assert hidden == ["hidden", "visible", "hidden"]
    page.keyboard.press(" ")
    settled(page, "window.player.state().cells.every(c => c.time > 2.6)")
    page.keyboard.press("3")
    page.keyboard.press(" ")
    settled(page, "!window.player.state().playing")
    assert spread(page) <= FRAME
    if shots:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "modes-flip-desktop.png"), full_page=True)
    page.keyboard.press("3")
    assert page.evaluate("window.player.modes.state().flipped") is None

    # Difference: B blended over A by difference, brightened by the gain.
    page.keyboard.press("d")
    blend = page.evaluate("getComputedStyle(document.querySelector('.cpm-diff-b .cp-media')).mixBlendMode")
    brightness = page.evaluate("getComputedStyle(document.querySelector('.cpm-diff .cp-grid')).filter")
    assert blend == "difference" and brightness.startswith("brightness(4")
    page.locator(".cpm-gain").fill("8")
    assert page.evaluate("getComputedStyle(document.querySelector('.cpm-diff .cp-grid')).filter") == "brightness(8)"
    if shots:
        page.screenshot(path=str(ARTIFACTS / "modes-difference-desktop.png"), full_page=True)
    page.keyboard.press("Escape")

    # Offset: A shows 12 frames later than the shared clock, and stays there while playing.
    offset = page.locator(".cp-cell").nth(0).locator("input.cpm-offset")
    offset.fill("12")
    offset.press("Enter")
    page.locator(".cp-root").focus()
    page.locator(".cp-scrub").fill("1")
    settled(page, "Math.abs(window.player.state().cells[0].time - 1.5) < 0.03")
    page.keyboard.press(" ")
    settled(page, "window.player.state().cells.every(c => c.time > 2.2)")
    page.keyboard.press(" ")
    settled(page, "!window.player.state().playing")
    assert state(page)["cells"][0]["offset_frames"] == 12 and spread(page) <= FRAME

    # Solo: Shift+3 hears C alone; S moves on (past the last take: all muted).
    page.keyboard.press("Shift+Digit3")
    assert [c["muted"] for c in state(page)["cells"]] == [True, True, False]
    page.keyboard.press("s")
    assert all(c["muted"] for c in state(page)["cells"])
    if shots:
        page.set_viewport_size({"width": 390, "height": 844})
        page.screenshot(path=str(ARTIFACTS / "modes-mobile.png"), full_page=True)
    assert errors == []
    page.close()
