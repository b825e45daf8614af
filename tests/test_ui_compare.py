"""The Compare tab in a real Chromium, and the public /compare endpoint through gradio_client.

A person picks runs from History (a sweep's and a separate run, different
days alike), plays them together, rates one; the lab restarts on the same data
directory and the rating is still there.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from compare_runs import Runs, make_runs
from helpers import lab_client, lab_port, lab_settings, screenshot, select_tab, words_broken_mid_word

PLAYER = "document.querySelector('#compare-player .cmp-host').comparePlayer"


@pytest.fixture(scope="module")
def runs(tmp_path_factory, simulator, render_cache) -> Runs:
    from lab.simulator.server import SimConfig, SimulatorServer

    with SimulatorServer(SimConfig(time_scale=0.02, render_cache=render_cache, faults={"failed": 1.0})) as failing:
        return make_runs(tmp_path_factory.mktemp("ui-compare-data"), simulator, failing)


class Lab:
    """The app on a data directory; start() again after stop() is a restart."""

    def __init__(self, data_dir: Path, base_url: str) -> None:
        self.data_dir, self.base_url = data_dir, base_url
        self.demo = self.services = None
        self.url = ""

    def start(self) -> "Lab":
        from lab.ui import build_demo
        from lab.wiring import open_app

        settings = lab_settings({"LAB_DATA_DIR": str(self.data_dir), "LAB_SIM_TIME_SCALE": "0.02"})
        self.services = open_app(settings, base_url=self.base_url)
        self.demo = build_demo(self.services)
        _, self.url, _ = self.demo.launch(server_name="127.0.0.1", server_port=lab_port(), prevent_thread_lock=True,
                                          quiet=True)
        return self

    def stop(self) -> None:
        self.demo.close()
        self.services.close()


@pytest.fixture(scope="module")
def lab(runs: Runs, simulator):
    started = Lab(runs.data_dir, simulator.base_url).start()
    yield started
    started.stop()


def open_compare_tab(page: Page, url: str) -> Page:
    page.goto(url)
    expect(page.get_by_role("tablist").first).to_be_visible(timeout=60_000)
    select_tab(page, "Compare")
    return page


def pick(page: Page, task_ids: list[str]) -> None:
    """Choose runs in the History multi-select by what its labels end with (the task id's tail)."""
    box = page.locator("#compare-runs input")
    for task_id in task_ids:
        box.fill(task_id[-6:])
        page.get_by_role("option").filter(has_text=task_id[-6:]).first.click()


def compare(page: Page, cells: int) -> None:
    page.get_by_role("button", name="Compare", exact=True).click()
    page.wait_for_function(f"{PLAYER} && {PLAYER}.state().cells.length === {cells} && "
                           f"{PLAYER}.state().cells.every(c => c.ready >= 2)", timeout=60_000)


def assert_desktop_layout(page: Page) -> None:
    """Each control has its room on a desktop, with three takes compared."""
    for name in ("Compare", "Refresh list"):  # buttons, not slabs stretched to the multi-select's height
        assert page.get_by_role("button", name=name, exact=True).bounding_box()["height"] <= 60, name
    # Review is on the takes: each cell's status and comment button, and 👍, 👎 and Pick on one row, all inside
    # the cell; the comments beside the grid.
    for cell in page.locator(".cp-cell").all():
        verdict = [cell.locator(sel).bounding_box() for sel in (".cr-up", ".cr-down", ".cr-pick")]
        assert len({round(box["y"] + box["height"] / 2) for box in verdict}) == 1, verdict
        inside = cell.bounding_box()
        boxes = verdict + [cell.locator(sel).bounding_box() for sel in (".cr-status", ".cr-count")]
        assert all(box["x"] + box["width"] <= inside["x"] + inside["width"] + 1 for box in boxes), boxes
    grid, aside = page.locator(".cp-grid").bounding_box(), page.locator(".cp-aside").bounding_box()
    assert aside["x"] >= grid["x"] + grid["width"], (grid, aside)
    screenshot(page, "compare-layout-desktop.png", full_page=True)


def test_select_from_history_play_rate_and_the_rating_survives_a_restart(lab: Lab, runs: Runs, visit, browser
                                                                         ) -> None:
    page = open_compare_tab(visit(), lab.url)
    # A set that cannot be compared says why in the status.
    ids = page.locator("#compare-ids input, #compare-ids textarea").first
    ids.fill(f"{runs.seed1} task_noSuchRun")
    page.get_by_role("button", name="Compare", exact=True).click()
    expect(page.locator("#compare-status")).to_contain_text("Cannot compare", timeout=15_000)
    expect(page.locator("#compare-status")).to_contain_text("task_noSuchRun")
    ids.fill("")

    pick(page, [runs.seed1, runs.seed2, runs.portrait])
    compare(page, 3)
    expect(page.locator("#compare-status")).to_contain_text("3 runs, 3 with a video")
    assert_desktop_layout(page)
    page.get_by_role("button", name="▶ Play all").click()
    page.wait_for_function(f"{PLAYER}.state().cells.every(c => c.time > 0.5 && !c.paused)", timeout=15_000)
    page.get_by_role("button", name="❚❚ Pause all").click()
    expect(page.locator(".cp-heat").first).to_be_visible(timeout=60_000)  # similarity arrived meanwhile

    b = page.locator(f'.cp-cell[data-task="{runs.seed2}"]')  # the verdict is given on the take itself
    b.locator(".cr-up").click()
    expect(page.locator("#compare-review-said")).to_contain_text("👍 saved", timeout=15_000)
    b.locator(".cr-pick").click()
    expect(b.locator(".cp-review")).to_contain_text("picked", timeout=15_000)
    expect(b.locator(".cr-up")).to_have_class(re.compile("cr-active"))
    page.get_by_role("button", name="Download report (ZIP)").click()
    expect(page.locator("#compare-report")).to_contain_text(".zip", timeout=60_000)
    (archive,) = Path(runs.data_dir, "exports").glob("compare-*.zip")
    with zipfile.ZipFile(archive) as zipped:
        data = json.loads(zipped.read(next(n for n in zipped.namelist() if n.endswith("compare.json"))))
    rated = next(cell for cell in data["cells"] if cell["task_id"] == runs.seed2)
    assert (rated["rating"], rated["picked"]) == (1, True)
    screenshot(page, "compare-tab-desktop.png", full_page=True)
    page.close()

    lab.stop()
    lab.start()
    # Another visitor after the restart, in a browser of its own.
    page = open_compare_tab(browser.new_page(viewport={"width": 390, "height": 844}), lab.url)
    pick(page, [runs.seed1, runs.seed2])
    compare(page, 2)
    b = page.locator(f'.cp-cell[data-task="{runs.seed2}"]')
    expect(b.locator(".cp-review")).to_contain_text("picked")
    expect(b.locator(".cr-up")).to_have_class(re.compile("cr-active"))
    expect(b.locator(".cr-pick")).to_have_text("★ Picked")
    screenshot(page, "compare-tab-mobile.png", full_page=True)
    page.close()

    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    page.goto(lab.url)
    page.get_by_role("tab", name="History").click()
    expect(page.locator("#history-table")).to_contain_text("👍 ★ picked", timeout=30_000)
    page.close()


def test_the_public_compare_endpoint_returns_compare_json_and_the_zip(lab: Lab, runs: Runs, tmp_path: Path) -> None:
    client = lab_client(lab.url, tmp_path)
    try:
        named = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
        data, archive = client.predict(runs.sweep_id, api_name="/compare")
    finally:
        client.close()
    assert "/compare" in named and not any("review" in name for name in named)
    assert set(data) == {"cells", "similarity", "review"} and len(data["cells"]) == 2
    with zipfile.ZipFile(archive) as zipped:
        names = zipped.namelist()
    assert any(n.endswith("/index.html") for n in names) and any(n.endswith("/compare.json") for n in names)


# At 390 px: the page's sideways overflow, the player against its column, what sticks out of the column
# (the matrix's own scroll box counts, not the table inside it), cut-off cell names, the chart's text.
PHONE_FIT_JS = """() => {
  const column = document.querySelector('#compare-player').getBoundingClientRect();
  const host = document.querySelector('#compare-player .cmp-host');
  const outside = [...host.querySelectorAll('*')]
    .filter(e => e.getBoundingClientRect().width > 0)
    .filter(e => !e.closest('.cp-matrix-wrap') || e.matches('.cp-matrix-wrap'))
    .filter(e => e.getBoundingClientRect().right > column.right + 1 || e.getBoundingClientRect().left < column.left - 1)
    .map(e => `${e.tagName}.${e.className.baseVal ?? e.className}`);
  const wrap = host.querySelector('.cp-matrix-wrap') || host.querySelector('.cp-matrix');
  return {page: document.scrollingElement.scrollWidth, column: column.width,
          player: host.getBoundingClientRect().width, outside,
          matrixScrolls: wrap.scrollWidth > wrap.clientWidth + 1,
          cutLabels: [...host.querySelectorAll('.cp-label')].filter(l => l.scrollWidth > l.clientWidth + 1)
            .map(l => l.textContent),
          narrowestVideo: Math.min(...[...host.querySelectorAll('.cp-media')].map(m => m.getBoundingClientRect().width)),
          // one line of its text: its height is at most that of the 👍 button beside it
          pickWraps: [...host.querySelectorAll('.cr-pick')].some(b =>
            b.getBoundingClientRect().height > b.parentNode.querySelector('.cr-up').getBoundingClientRect().height + 1),
          axisText: Math.min(...[...host.querySelectorAll('.cp-plot text')].map(t => t.getBoundingClientRect().height))};
}"""


def test_on_a_phone_the_player_fits_its_column_and_stays_readable(lab: Lab, runs: Runs, simulator, visit) -> None:
    from lab.client import VideosClient
    from lab.runner import Runner
    from lab.store import Store, default_store_path

    from compare_runs import BODY

    # A run whose seed the service picked has the longest cell name: it widened the matrix past the column.
    store = Store(default_store_path(runs.data_dir))
    try:
        client = VideosClient.scaled(simulator.base_url, "sk-test-compare", time_scale=0.02)
        unseeded = Runner(client, store, runs.data_dir, thumbs=0, preview=False).run_one(dict(BODY))
    finally:
        store.close()
    assert unseeded.ok
    page = open_compare_tab(visit(390, 844), lab.url)
    page.locator("#compare-ids input, #compare-ids textarea").first.fill(
        f"{unseeded.task_id} {runs.seed1} {runs.portrait}")
    compare(page, 3)
    expect(page.locator(".cp-heat").first).to_be_visible(timeout=60_000)
    shown = page.evaluate(PHONE_FIT_JS)
    assert shown["page"] <= 390, f"the page scrolls sideways: {shown}"
    assert shown["player"] <= shown["column"] + 1 and not shown["outside"], shown
    assert not shown["matrixScrolls"], f"three cells' similarity matrix fits a phone whole: {shown}"
    assert not shown["cutLabels"], f"cell names cut to an ellipsis: {shown}"
    assert shown["axisText"] >= 10, f"the chart's labels are too small to read: {shown}"
    assert shown["narrowestVideo"] >= 280, f"a take is too small to judge on a phone (was 130 px): {shown}"
    assert not shown["pickWraps"], f"'Pick' wraps: {shown}"
    broken = words_broken_mid_word(page.locator("#compare-player .cp-grid"))
    assert not broken, broken
    screenshot(page.locator("#compare-player"), "compare-player-390.png")
    page.close()
