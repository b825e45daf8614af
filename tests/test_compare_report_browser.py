"""The standalone report in Debian's Chromium, opened from file:// as a stakeholder would.

Every cell plays together from one control, the scrubber moves every cell, a
frame step is exactly one frame in every cell (read from the frames Chromium
presents, not from currentTime), and the page makes no network request at all.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from compare_runs import Runs, make_runs
from helpers import screenshot
from lab.compare.pipeline import compare_runs
from lab.compare.report import write_report
from lab.store import Store, default_store_path

FRAME = 1 / 24


@pytest.fixture(scope="module")
def runs(tmp_path_factory, simulator, render_cache) -> Runs:
    from lab.simulator.server import SimConfig, SimulatorServer

    with SimulatorServer(SimConfig(time_scale=0.02, render_cache=render_cache, faults={"failed": 1.0})) as failing:
        return make_runs(tmp_path_factory.mktemp("report-data"), simulator, failing)


def _report(runs: Runs, out: Path, ids: list[str]) -> Path:
    with Store(default_store_path(runs.data_dir)) as store:
        return write_report(compare_runs(store, runs.data_dir, ids), out)


@pytest.fixture(scope="module")
def opened(runs: Runs, browser, tmp_path_factory):
    """The report of three runs (16:9, 16:9, 9:16) open in a page that records every request."""
    out = _report(runs, tmp_path_factory.mktemp("report") / "report", [runs.seed1, runs.seed2, runs.portrait])
    # The page's CSP forbids eval, which Playwright's wait_for_function needs; the media rules stay checked below.
    page = browser.new_page(viewport={"width": 1440, "height": 1000}, bypass_csp=True)
    requests, errors = [], []
    page.on("request", lambda request: requests.append(request.url))
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(out.joinpath("index.html").as_uri())
    page.wait_for_function("window.player && window.player.state().cells.every(c => c.ready >= 2 && c.frame >= 0)",
                           timeout=20_000)
    yield page, requests, errors
    screenshot(page, "report-desktop.png", full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "report-mobile.png", full_page=True)
    page.close()


def state(page) -> dict:
    return page.evaluate("window.player.state()")


def times(page) -> list[float]:
    return [cell["time"] for cell in state(page)["cells"]]


def test_play_all_advances_every_video_together(opened) -> None:
    page, _requests, errors = opened
    page.get_by_role("button", name="▶ Play all").click()
    page.wait_for_function("window.player.state().cells.every(c => c.time > 1.0)", timeout=15_000)
    playing = state(page)
    page.get_by_role("button", name="❚❚ Pause all").click()
    assert playing["playing"] and not any(cell["paused"] for cell in playing["cells"])
    spread = max(c["time"] for c in playing["cells"]) - min(c["time"] for c in playing["cells"])
    assert spread <= 2 * FRAME  # re-aligned whenever one drifts more than a frame from the leader
    assert errors == []


def test_the_scrubber_moves_every_cell(opened) -> None:
    page, _requests, _errors = opened
    page.locator(".cp-scrub").fill("2.5")
    page.wait_for_function("window.player.state().cells.every(c => Math.abs(c.time - 2.5) < 0.01 && c.frame === 60)",
                           timeout=10_000)
    assert {cell["frame"] for cell in state(page)["cells"]} == {60}


def test_a_frame_step_moves_every_cell_exactly_one_frame(opened) -> None:
    page, _requests, _errors = opened
    page.locator(".cp-scrub").fill("1.0")
    page.wait_for_function("window.player.state().cells.every(c => c.frame === 24)", timeout=10_000)
    page.locator("#player").focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function("window.player.state().cells.every(c => c.frame !== 24)", timeout=10_000)
    page.wait_for_timeout(300)  # a second, wrong frame would arrive by now
    assert [cell["frame"] for cell in state(page)["cells"]] == [25, 25, 25]
    page.keyboard.press("ArrowLeft")
    page.wait_for_function("window.player.state().cells.every(c => c.frame === 24)", timeout=10_000)


def test_a_portrait_take_beside_landscape_ones_is_not_distorted(opened) -> None:
    page, _requests, _errors = opened
    shapes = page.evaluate("""[...document.querySelectorAll('.cp-media video')].map(v => ({
        fit: getComputedStyle(v).objectFit, natural: v.videoWidth / v.videoHeight}))""")
    assert {shape["fit"] for shape in shapes} == {"contain"}
    assert [round(shape["natural"], 2) for shape in shapes] == [1.78, 1.78, 0.56]


def test_the_report_makes_no_network_request(opened) -> None:
    page, requests, _errors = opened
    page.get_by_role("button", name="▶ Play all").click()
    page.wait_for_timeout(500)
    page.get_by_role("button", name="❚❚ Pause all").click()
    assert requests and all(url.startswith("file://") for url in requests), requests


def test_a_matrix_cell_opens_its_pair_in_a_b_with_three_takes_and_flicker_runs_at_the_chosen_rate(
        runs: Runs, browser, tmp_path: Path) -> None:
    a, b, c = runs.seed1, runs.seed2, runs.portrait
    out = _report(runs, tmp_path / "ab", [a, b, c])
    page = browser.new_page(viewport={"width": 1440, "height": 1000}, bypass_csp=True)
    page.goto(out.joinpath("index.html").as_uri())
    page.wait_for_function("window.player && window.player.state().cells.every(c => c.ready >= 2)", timeout=20_000)
    page.locator(".cp-matrix tbody tr").nth(0).locator("td").nth(2).click()  # row A, column C
    assert page.locator(".cp-mode").input_value() == "wipe"
    page.locator(".cp-wipe").fill("30")
    cell = lambda task: page.locator(f'.cp-cell[data-task="{task}"]')  # noqa: E731
    assert cell(c).locator("video").evaluate("v => v.style.clipPath") == "inset(0px 0px 0px 30%)"
    assert cell(a).locator(".cp-media").bounding_box() == cell(c).locator(".cp-media").bounding_box()  # C over A
    assert not cell(b).is_visible()
    screenshot(page, "report-wipe.png")
    page.locator(".cp-mode").select_option("flicker")
    page.locator(".cp-flicker-rate").select_option("250")
    page.wait_for_function("document.querySelector('.cp-flicker-note').textContent === 'showing A'", timeout=5_000)
    page.wait_for_function("document.querySelector('.cp-flicker-note').textContent === 'showing C'", timeout=5_000)
    page.close()


def test_a_cell_that_reaches_the_end_first_waits_there_instead_of_restarting(opened) -> None:
    page, _requests, errors = opened
    page.locator(".cp-loop").uncheck()  # the leader's end pauses every cell: nothing loops back to 0
    try:
        end = state(page)["cells"][0]["duration"]
        page.locator(".cp-scrub").fill(str(round(end - 0.6, 3)))
        page.wait_for_function(f"window.player.state().cells.every(c => Math.abs(c.time - {end - 0.6}) < 0.05)",
                               timeout=10_000)
        page.get_by_role("button", name="▶ Play all").click()
        # Once playing, one follower a little ahead of the leader, as drift leaves it: it ends first.
        # Every frame, record the earliest follower time while the leader is in its last half second.
        page.evaluate("""() => {
          const p = window.player, leader = p.leader();
          const follower = p.playable().find(c => c !== leader);
          follower.video.currentTime = follower.video.currentTime + 0.2;
          window.earliest = Infinity;
          const watch = () => {
            if (leader.video.currentTime > leader.duration - 0.5)
              p.playable().forEach(c => { if (c !== leader) window.earliest = Math.min(window.earliest, c.video.currentTime); });
            if (p.playing) requestAnimationFrame(watch);
          };
          requestAnimationFrame(watch);
        }""")
        page.wait_for_function("!window.player.state().playing", timeout=15_000)
        earliest = page.evaluate("window.earliest")
        assert earliest > end - 1.0, f"a follower jumped back to {earliest:.2f} s before the leader reached {end:.2f} s"
    finally:
        page.locator(".cp-loop").check()
    assert errors == []
