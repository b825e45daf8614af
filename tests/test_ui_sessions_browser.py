"""Sessions in a real Chromium: a reload is the same session (grid, draft, spend), history is live and private.

Uses Debian's chromium (CHROMIUM_PATH overrides /usr/bin/chromium). Each test opens its own browser
context (its own localStorage: a browser of its own) and waits for conditions, never for fixed times.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from helpers import running_lab, screenshot

RUN_TIMEOUT_MS = 120_000
# The page fills its panel on load: on a busy shared machine that alone took over 20 s.
LOAD_TIMEOUT_MS = 60_000


# A session may spend one fast 4 s run ($0.30): each test's browser makes one, and the cap test a second.
ENV = {"LAB_SIM_TIME_SCALE": "0.02", "LAB_SPEND_CAP_SESSION_USD": "0.30", "LAB_SPEND_CAP_DAY_USD": "none",
       "LAB_MAX_SWEEP": "4", "LAB_HISTORY_SCOPE": "session"}


@pytest.fixture(scope="module")
def lab_url(simulator, tmp_path_factory):
    with running_lab(simulator.base_url, tmp_path_factory.mktemp("lab-data"), ENV) as (url, _services):
        yield url


@pytest.fixture
def slow_lab_url(make_simulator, tmp_path):
    # Every task takes 8 s of wall time: long enough to reload while a sweep runs, even on a busy machine.
    # Only the reload mid-sweep needs it; the other tests' tasks take the usual second.
    sim = make_simulator(fixed_generation_s=400.0)
    with running_lab(sim.base_url, tmp_path / "slow-lab", {**ENV, "LAB_SPEND_CAP_SESSION_USD": "0.60"}) as (url, _):
        yield url


def page_opener(visit, browser, url: str):
    """Open the lab for a new visitor each call, ready to type into: the first in the warm profile, any
    other in a browser context of its own (its own storage), so two can be open at once."""
    contexts: list = []
    opened: list[Page] = []

    def open_page(width: int = 1440, height: int = 1000) -> Page:
        if not opened:
            page = visit(width, height)
        else:
            contexts.append(browser.new_context(viewport={"width": width, "height": height}))
            page = contexts[-1].new_page()
        opened.append(page)
        open_lab(page, url)
        return page

    return open_page, contexts


@pytest.fixture
def new_page(visit, browser, lab_url):
    open_page, contexts = page_opener(visit, browser, lab_url)
    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def new_slow_page(visit, browser, slow_lab_url):
    open_page, contexts = page_opener(visit, browser, slow_lab_url)
    yield open_page
    for context in contexts:
        context.close()


def open_lab(page: Page, url: str) -> None:
    page.goto(url)
    page.wait_for_load_state("load")
    expect(page.locator("#effective-panel")).to_contain_text("pixel size", timeout=LOAD_TIMEOUT_MS)


def reload(page: Page) -> None:
    page.reload()
    page.wait_for_load_state("load")
    expect(page.locator("#effective-panel")).to_contain_text("pixel size", timeout=LOAD_TIMEOUT_MS)


def choose(page: Page, label: str, option: str) -> None:
    combo = page.get_by_label(label, exact=True)
    combo.click()
    page.locator(f"#{combo.get_attribute('aria-controls')}").get_by_role("option", name=option, exact=True).click()


def fill_request(page: Page, prompt: str) -> None:
    page.get_by_label("Prompt", exact=True).fill(prompt)
    choose(page, "duration (s)", "4")
    expect(page.locator("#generate-gate")).to_contain_text("$0.30", timeout=10_000)


def generate(page: Page) -> None:
    page.get_by_role("button", name="Generate", exact=True).click()
    expect(page.locator("#run-progress")).to_contain_text("done", timeout=RUN_TIMEOUT_MS)


def shot(page: Page, name: str) -> None:
    screenshot(page, name, full_page=True)


def test_a_reload_mid_sweep_brings_the_grid_back_and_it_fills(new_slow_page):
    page = new_slow_page()
    fill_request(page, "a heron lifting off the reeds at dawn")
    page.get_by_role("tab", name="Seed sweep").click()
    page.get_by_label("Seeds", exact=True).fill("1, 2")
    expect(page.locator("#sweep-estimate")).to_contain_text("2 tasks", timeout=10_000)
    page.get_by_role("button", name="Run sweep", exact=True).click()
    expect(page.locator("#sweep-label-0")).to_contain_text(re.compile("queued|rendering"), timeout=RUN_TIMEOUT_MS)

    reload(page)
    # The sweep tab is selected again, its rows are back and keep filling from the journal.
    expect(page.locator("#sweep-status")).to_contain_text("Re-attached", timeout=LOAD_TIMEOUT_MS)
    shot(page, "reattached-sweep-1440.png")
    for row in (0, 1):
        expect(page.locator(f"#sweep-label-{row}")).to_contain_text("saved", timeout=RUN_TIMEOUT_MS)
        expect(page.locator(f"#sweep-row-{row} video")).to_have_attribute("src", re.compile(r"\.mp4"),
                                                                          timeout=10_000)
    expect(page.locator("#sweep-status")).to_contain_text("2 of 2 saved", timeout=RUN_TIMEOUT_MS)
    expect(page.locator("#sweep-row-2")).to_be_hidden()
    # The draft form came back as it was.
    page.get_by_role("tab", name="Single run").click()
    expect(page.get_by_label("Prompt", exact=True)).to_have_value("a heron lifting off the reeds at dawn")
    page.get_by_role("tab", name="Seed sweep").click()
    expect(page.get_by_label("Seeds", exact=True)).to_have_value("1, 2")
    shot(page, "reattached-sweep-done-1440.png")
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "reattached-sweep-done-390.png")


def test_history_shows_a_run_made_after_the_page_loaded_and_the_session_cap_holds_across_a_reload(new_page):
    page = new_page()
    page.get_by_role("tab", name="History").click()
    expect(page.locator("#history-table")).not_to_contain_text("lantern")
    page.get_by_role("tab", name="Single run").click()
    fill_request(page, "a lantern on a jetty at night")
    generate(page)  # $0.30: the whole session cap
    page.get_by_role("tab", name="History").click()
    table = page.locator("#history-table")
    expect(table).to_contain_text("lantern on a jetty", timeout=10_000)
    expect(table).to_contain_text("saved")
    # The gallery shows the saved run too.
    expect(page.locator("#history-gallery img, #history-gallery video").first).to_be_visible(timeout=10_000)
    shot(page, "history-live-1440.png")

    page.get_by_role("tab", name="Single run").click()
    reload(page)
    expect(page.locator(".lab-banner").last).to_contain_text("session $0.30 spent", timeout=LOAD_TIMEOUT_MS)
    expect(page.locator(".lab-banner").last).to_contain_text("$0.00 left")
    expect(page.get_by_label("Prompt", exact=True)).to_have_value("a lantern on a jetty at night")
    page.get_by_role("button", name="Generate", exact=True).click()
    expect(page.locator("#run-progress")).to_contain_text("this session has $0.00 left", timeout=LOAD_TIMEOUT_MS)
    shot(page, "session-cap-after-reload-1440.png")


def test_two_browsers_do_not_see_each_others_history(new_page):
    first, second = new_page(), new_page()
    fill_request(first, "an otter floating on its back")
    generate(first)
    fill_request(second, "a snow leopard on a ridge")
    generate(second)
    for page, mine, theirs in ((first, "otter floating", "snow leopard"), (second, "snow leopard", "otter floating")):
        page.get_by_role("tab", name="History").click()
        table = page.locator("#history-table")
        expect(table).to_contain_text(mine, timeout=10_000)
        expect(table).not_to_contain_text(theirs)
        expect(table).not_to_contain_text("lantern")  # nor another test's run (another browser, one lab)
    # Still after a reload.
    reload(second)
    second.get_by_role("tab", name="History").click()
    expect(second.locator("#history-table")).to_contain_text("snow leopard", timeout=10_000)
    expect(second.locator("#history-table")).not_to_contain_text("otter")
    shot(second, "history-private-1440.png")
