"""The lab in a real Chromium: the effective panel reacts, a run plays, a sweep fills its grid.

Uses Debian's chromium (CHROMIUM_PATH overrides /usr/bin/chromium); scripts/test.sh
installs it. A missing browser is a failure, not a skip.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright
from helpers import CHROMIUM, CHROMIUM_ARGS, free_port

RUN_TIMEOUT_MS = 60_000



@pytest.fixture(scope="module")
def lab_url(simulator, tmp_path_factory):
    from lab.orchestrator import Orchestrator
    from lab.settings import load_settings
    from lab.ui import build_demo

    settings = load_settings(environ={
        "LAB_DATA_DIR": str(tmp_path_factory.mktemp("lab-data")),
        "LAB_SIM_TIME_SCALE": "0.02",
        "LAB_SPEND_CAP_SESSION_USD": "none",
        "LAB_SPEND_CAP_DAY_USD": "none",
        "LAB_MAX_SWEEP": "4",
    })
    services = Orchestrator.create(settings, base_url=simulator.base_url)
    demo = build_demo(services)
    _, url, _ = demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    yield url
    demo.close()
    services.close()


@pytest.fixture(scope="module")
def browser():
    assert os.path.exists(CHROMIUM), f"no chromium at {CHROMIUM}: install Debian's chromium (scripts/test.sh does)"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def page(browser, lab_url) -> Page:
    """One page for the whole module: the steps build on each other like a person's session."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.goto(lab_url)
    pg.wait_for_load_state("load")
    # The panel is filled by demo.load: wait for it so it cannot overwrite what we type next.
    expect(pg.locator("#effective-panel")).to_contain_text("pixel size", timeout=20_000)
    yield pg
    context.close()


def choose(page: Page, label: str, option: str) -> None:
    """Pick an option of a dropdown (scoped to its own list: several may be in the page)."""
    combo = page.get_by_label(label, exact=True)
    combo.click()
    options = page.locator(f"#{combo.get_attribute('aria-controls')}")
    options.get_by_role("option", name=option, exact=True).click()


def panel_row(page: Page, setting: str):
    return page.locator("#effective-panel tr").filter(has=page.locator("td", has_text=re.compile(f"^{setting}$")))


def test_effective_panel_follows_precedence(page: Page, tmp_path: Path):
    prompt = page.get_by_label("Prompt", exact=True)
    prompt.fill("a lighthouse at dusk, waves on the rocks")
    expect(page.locator("#generate-gate")).to_contain_text("Ready", timeout=10_000)

    choose(page, "size", "720x1280")
    aspect = panel_row(page, "aspect ratio")
    expect(aspect).to_contain_text("9:16", timeout=10_000)
    expect(aspect).to_contain_text("size")

    choose(page, "metadata.aspectRatio", "16:9")
    expect(aspect).to_contain_text("16:9", timeout=10_000)
    expect(aspect).to_contain_text("metadata.aspectRatio")
    expect(aspect).to_contain_text("size=720x1280")  # what it overrode
    expect(page.locator("#effective-panel")).to_contain_text("is overridden by metadata.aspectRatio=16:9")
    page.screenshot(path=str(tmp_path / "precedence.png"), full_page=True)


def test_parameter_labels_are_not_cut_off(page: Page):
    for label in ("duration (s)", "size", "metadata.resolution", "metadata.aspectRatio"):
        info = page.locator("[data-testid=block-info]").filter(has_text=re.compile(f"^{re.escape(label)}$")).first
        fits = info.evaluate("el => { const box = el.closest('.block').getBoundingClientRect();"
                            " return el.getBoundingClientRect().right <= box.right + 1 && el.scrollWidth <= el.clientWidth + 1; }")
        assert fits, f"the label {label!r} is cut off"


def test_invalid_request_disables_generate_with_the_reason(page: Page):
    choose(page, "metadata.resolution", "1080p")
    choose(page, "duration (s)", "4")
    expect(page.locator("#generate-gate")).to_contain_text('needs a duration of "8"', timeout=10_000)
    expect(page.get_by_role("button", name="Generate", exact=True)).to_be_disabled()
    choose(page, "metadata.resolution", "(not set)")
    expect(page.get_by_role("button", name="Generate", exact=True)).to_be_enabled(timeout=10_000)


def test_generate_plays_the_video_with_thumbnails(page: Page, tmp_path: Path):
    page.get_by_label("Seed (metadata.seed)", exact=True).fill("7")
    page.get_by_role("button", name="Generate", exact=True).click()
    expect(page.locator("#run-progress")).to_contain_text("done", timeout=RUN_TIMEOUT_MS)
    expect(page.locator("#run-video video")).to_have_attribute("src", re.compile(r"\.mp4"), timeout=10_000)
    expect(page.locator("#run-thumbs img")).to_have_count(5, timeout=10_000)
    expect(page.locator("#run-summary")).to_contain_text("$0.30")
    page.screenshot(path=str(tmp_path / "generate.png"), full_page=True)


def test_stop_waiting_says_it_may_still_bill_without_error_badges(page: Page, tmp_path: Path):
    # With nothing running, it says so instead of claiming a task was submitted.
    page.get_by_role("button", name="Stop waiting", exact=True).click()
    expect(page.locator("#run-progress")).to_contain_text("Nothing is running", timeout=10_000)
    # A slow run (standard model, 4k) so there is time to stop waiting.
    choose(page, "Model", "veo-3.1-generate-preview · $1.20 per video")
    choose(page, "size", "3840x2160")
    choose(page, "duration (s)", "8")
    expect(page.locator("#generate-gate")).to_contain_text("$1.20", timeout=10_000)
    page.get_by_role("button", name="Generate", exact=True).click()
    expect(page.locator("#run-progress")).to_contain_text("task_", timeout=RUN_TIMEOUT_MS)
    page.get_by_role("button", name="Stop waiting", exact=True).click()
    progress = page.locator("#run-progress")
    expect(progress).to_contain_text("may still complete and be billed", timeout=10_000)
    expect(progress).to_contain_text("journal")
    expect(progress).to_contain_text("task_")  # which task may still bill
    page.wait_for_timeout(1500)
    # Gradio's cancels= put an "Error" badge on every output; stopping is not an error.
    expect(page.locator(".error").filter(has_text="Error")).to_have_count(0)
    expect(page.get_by_role("button", name="Generate", exact=True)).to_be_enabled()
    page.screenshot(path=str(tmp_path / "stopped.png"), full_page=True)
    choose(page, "Model", "veo-3.1-fast-generate-preview · $0.30 per video")
    choose(page, "size", "(not set)")
    choose(page, "duration (s)", "4")
    expect(page.locator("#generate-gate")).to_contain_text("$0.30", timeout=10_000)


def test_sweep_of_three_seeds_fills_three_rows(page: Page, tmp_path: Path):
    page.get_by_role("tab", name="Seed sweep").click()
    expect(page.locator("#sweep-estimate")).to_contain_text("3 tasks", timeout=10_000)
    page.get_by_role("button", name="Run sweep", exact=True).click()
    expect(page.locator("#sweep-status")).to_contain_text("3 of 3 saved", timeout=RUN_TIMEOUT_MS)
    for row in range(3):
        cells = page.locator(f"#sweep-row-{row}")
        expect(cells).to_be_visible()
        expect(cells.locator("video")).to_have_attribute("src", re.compile(r"\.mp4"), timeout=10_000)
        expect(cells.locator("img")).to_have_count(5, timeout=10_000)
        expect(page.locator(f"#sweep-label-{row}")).to_contain_text(f"seed {row + 1}")
    expect(page.locator("#sweep-row-3")).to_be_hidden()
    page.screenshot(path=str(tmp_path / "sweep.png"), full_page=True)

    # "Use this seed" carries the seed back into the single-run form.
    page.locator("#use-seed-1").click()
    expect(page.get_by_label("Seed (metadata.seed)", exact=True)).to_have_value("2", timeout=10_000)


def test_compare_these_opens_the_finished_sweep_in_the_compare_tab(page: Page):
    page.get_by_role("tab", name="Seed sweep").click()
    page.locator("#sweep-compare").click()
    expect(page.locator("#compare-status")).to_contain_text("3 runs, 3 with a video", timeout=RUN_TIMEOUT_MS)
    expect(page.locator("#compare-player .cp-cell")).to_have_count(3)
    expect(page.locator("#compare-player .cp-label").first).to_contain_text("seed 1")


def test_history_lists_runs_and_loads_one_into_the_form(page: Page):
    page.get_by_role("tab", name="History").click()
    page.get_by_label("Filter by prompt text", exact=True).fill("lighthouse")
    page.get_by_role("button", name="Refresh", exact=True).click()
    table = page.locator("#history-table")
    expect(table).to_contain_text("lighthouse at dusk", timeout=10_000)
    expect(table).to_contain_text("saved")
    table.locator("[role=gridcell]").filter(has_text="lighthouse at dusk").filter(visible=True).first.click()
    expect(page.locator("#history-detail")).to_contain_text("task_", timeout=10_000)
    page.get_by_role("tab", name="Single run").click()
    page.get_by_label("Prompt", exact=True).fill("something else")  # about to be refilled from the journal
    page.get_by_role("tab", name="History").click()
    page.get_by_role("button", name="Load into form", exact=True).click()
    expect(page.get_by_label("Prompt", exact=True)).to_have_value(re.compile("lighthouse at dusk"), timeout=10_000)


def test_a_preset_fills_the_form(page: Page):
    page.get_by_role("tab", name="Single run").click()
    choose(page, "Preset", "Watercolor northern lights (portrait, 4 s)")
    expect(page.get_by_label("Prompt", exact=True)).to_have_value(re.compile("Watercolor northern lights"),
                                                                  timeout=10_000)
    expect(panel_row(page, "duration")).to_contain_text("4", timeout=10_000)
    expect(panel_row(page, "aspect ratio")).to_contain_text("9:16")


def test_raw_body_mode_replaces_the_form(page: Page):
    page.get_by_text("Advanced: other duration fields, raw JSON body").click()
    page.get_by_label("Raw body mode: send the JSON below instead of the form").check()
    expect(page.get_by_label("Prompt", exact=True)).to_be_hidden(timeout=10_000)
    editor = page.locator("#raw-body .cm-content")
    expect(editor).to_contain_text("Watercolor northern lights", timeout=10_000)  # started from the form
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.type('{"model": "veo-3.1-fast-generate-preview", "prompt": "p", "duration": 8}')
    expect(page.locator("#generate-gate")).to_contain_text("must be a string", timeout=10_000)
    expect(page.get_by_role("button", name="Generate", exact=True)).to_be_disabled()


def test_sweep_estimate_prices_the_raw_body_model(page: Page):
    # Raw mode is on (previous test): the estimate must use the raw body's model, not the hidden dropdown's.
    editor = page.locator("#raw-body .cm-content")
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.type('{"model": "veo-3.1-generate-preview", "prompt": "p", "duration": "8"}')
    expect(page.locator("#generate-gate")).to_contain_text("$1.20", timeout=10_000)
    page.get_by_role("tab", name="Seed sweep").click()
    page.get_by_label("Seeds", exact=True).fill("1, 2, 3")
    expect(page.locator("#sweep-estimate")).to_contain_text("$3.60", timeout=10_000)
