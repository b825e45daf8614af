"""The lab in a real Chromium: the effective panel reacts, a run plays, a sweep fills its grid.

Uses Debian's chromium (CHROMIUM_PATH overrides /usr/bin/chromium); scripts/test.sh
installs it. A missing browser is a failure, not a skip.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from helpers import NO_CAPS, WHOLE_FRAME_JS, running_lab, screenshot, words_broken_mid_word

RUN_TIMEOUT_MS = 60_000



@pytest.fixture(scope="module")
def lab_url(simulator, tmp_path_factory):
    env = {"LAB_SIM_TIME_SCALE": "0.02", "LAB_MAX_SWEEP": "4", **NO_CAPS}
    with running_lab(simulator.base_url, tmp_path_factory.mktemp("lab-data"), env) as (url, _services):
        yield url


@pytest.fixture
def slow_lab_url(make_simulator, tmp_path):
    """A lab whose every task takes 6 s: time to move a wait to the background, and to see it end."""
    simulator = make_simulator(fixed_generation_s=300)
    with running_lab(simulator.base_url, tmp_path / "slow-lab", {"LAB_SIM_TIME_SCALE": "0.02", **NO_CAPS}) as (url, _):
        yield url


def open_lab(pg: Page, url: str) -> Page:
    """The lab in ``pg`` (a new visitor's page), ready to type into."""
    pg.goto(url)
    pg.wait_for_load_state("load")
    # The panel is filled by demo.load: wait for it so it cannot overwrite what we type next.
    expect(pg.locator("#effective-panel")).to_contain_text("pixel size", timeout=60_000)
    return pg


@pytest.fixture
def page(visit, lab_url) -> Page:
    """A new visitor for each test: no test depends on what another one did."""
    return open_lab(visit(), lab_url)


@pytest.fixture
def phone(visit, lab_url) -> Page:
    return open_lab(visit(390, 844), lab_url)


def shot(page: Page, name: str) -> None:
    size = page.viewport_size or {"width": 0}
    screenshot(page, f"{name}-{size['width']}.png", full_page=True)


def describe(page: Page, prompt: str) -> None:
    page.get_by_label("Prompt", exact=True).fill(prompt)
    expect(page.locator("#generate-gate")).to_contain_text("Ready", timeout=10_000)


def choose(page: Page, label: str, option: str) -> None:
    """Pick an option of a dropdown (scoped to its own list: several may be in the page)."""
    combo = page.get_by_label(label, exact=True)
    combo.click()
    options = page.locator(f"#{combo.get_attribute('aria-controls')}")
    options.get_by_role("option", name=option, exact=True).click()


def panel_row(page: Page, setting: str):
    return page.locator("#effective-panel tr").filter(has=page.locator("td", has_text=re.compile(f"^{setting}$")))


LABELS = ("Model", "duration (s)", "size", "metadata.resolution", "metadata.aspectRatio")


def assert_labels_fit(page: Page) -> None:
    for label in LABELS:
        info = page.locator("[data-testid=block-info]").filter(has_text=re.compile(f"^{re.escape(label)}$")).first
        fits = info.evaluate("el => { const box = el.closest('.block').getBoundingClientRect();"
                            " return el.getBoundingClientRect().right <= box.right + 1 && el.scrollWidth <= el.clientWidth + 1; }")
        assert fits, f"the label {label!r} is cut off"
    # The chosen model's name is not cut off or run under the dropdown's caret.
    model = page.get_by_label("Model", exact=True)
    assert model.evaluate("el => el.scrollWidth <= el.clientWidth + 1"), "the model name runs under the caret"


def test_on_a_phone_labels_and_the_effective_table_fit_and_generate_stays_on_the_first_screen(phone: Page):
    assert_labels_fit(phone)
    panel = phone.locator("#effective-panel")
    header = panel.locator("th").filter(has_text="overrode")
    expect(header).to_be_visible()
    width = phone.viewport_size["width"]
    assert header.evaluate("el => el.getBoundingClientRect().right") <= width
    for cell in panel.locator("td, th").all():  # nothing cut off: every cell's text fits its cell
        assert cell.evaluate("el => el.scrollWidth <= el.clientWidth + 1"), cell.inner_text()
    shot(phone, "phone-form")

    generate = phone.get_by_role("button", name="Generate", exact=True)
    height = phone.viewport_size["height"]
    box = generate.bounding_box()
    assert box and box["y"] >= 0 and box["y"] + box["height"] <= height
    phone.get_by_label("Prompt", exact=True).fill("a kite over the dunes")  # scrolls the form
    phone.mouse.wheel(0, 1200)
    expect(phone.locator("#effective-panel")).to_be_in_viewport(timeout=10_000)
    box = generate.bounding_box()
    assert box and box["y"] >= 0 and box["y"] + box["height"] <= height
    expect(generate).to_be_enabled(timeout=10_000)
    shot(phone, "phone-generate")


def test_the_request_tables_wrap_between_words_never_inside_one(visit, lab_url):
    # On a phone Gradio's prose tables broke "model" into "m/od/el" and "metadata.resolution" into
    # "metadata.resolutio/n". A model name may wrap after a "-"; a field name after a "." (a <wbr>).
    # One run, its tables checked at desktop width and again with the page narrowed to a phone's.
    page = open_lab(visit(1440, 1000), lab_url)
    describe(page, "a lighthouse at dusk, waves on the rocks")
    choose(page, "size", "720x1280")
    choose(page, "metadata.aspectRatio", "16:9")
    expect(panel_row(page, "aspect ratio")).to_contain_text("size=720x1280", timeout=10_000)
    generate(page)
    expect(page.locator("#run-check")).to_contain_text("Prediction vs result", timeout=10_000)
    for width, height in ((1440, 1000), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        for table in ("#effective-panel", "#run-check"):
            broken = words_broken_mid_word(page.locator(table))
            assert not broken, (width, table, broken)
            right = page.locator(f"{table} table").evaluate("el => el.getBoundingClientRect().right")
            assert right <= width, f"{table} runs off a {width} px screen"
        scroll_width = page.evaluate("document.scrollingElement.scrollWidth")
        assert scroll_width <= width, f"the page scrolls sideways at {width} px"
        for table in ("effective-panel", "run-check"):
            screenshot(page.locator(f"#{table}"), f"{table}-{width}.png")


def test_the_form_labels_fit_a_field_error_shows_in_the_error_colour_and_raw_mode_replaces_it(page: Page):
    assert_labels_fit(page)
    # What the error says, once, and that it blocks Generate: tests/test_ui_form.py (the handler).
    describe(page, "a lighthouse at dusk")
    choose(page, "metadata.resolution", "1080p")
    choose(page, "duration (s)", "4")
    field = page.locator(".lab-invalid").filter(has=page.get_by_label("duration (s)", exact=True))
    expect(field.locator(".info-text")).to_contain_text('needs a duration of "8"', timeout=10_000)
    color = field.locator(".info-text").evaluate("el => getComputedStyle(el).color")
    assert color != field.locator("[data-testid=block-info]").evaluate("el => getComputedStyle(el).color")
    expect(page.get_by_role("button", name="Generate", exact=True)).to_be_disabled()
    shot(page, "invalid")

    # Raw body mode replaces the form, starting from it.
    choose(page, "Preset", "Watercolor northern lights (portrait, 4 s)")
    expect(page.get_by_label("Prompt", exact=True)).to_have_value(re.compile("Watercolor"), timeout=10_000)
    expect(page.locator("#generate-gate")).to_contain_text("Ready", timeout=10_000)  # the preset is valid
    turn_on_raw_mode(page)
    editor = page.locator("#raw-body .cm-content")
    expect(editor).to_contain_text("Watercolor northern lights", timeout=10_000)  # started from the form
    type_raw(page, '{"model": "veo-3.1-fast-generate-preview", "prompt": "p", "duration": 8}')
    expect(page.locator("#form-errors")).to_contain_text("must be a string", timeout=10_000)
    expect(page.get_by_role("button", name="Generate", exact=True)).to_be_disabled()


def generate(page: Page) -> None:
    page.get_by_role("button", name="Generate", exact=True).click()
    expect(page.locator("#run-progress")).to_contain_text("done", timeout=RUN_TIMEOUT_MS)
    expect(page.locator("#run-video video")).to_have_attribute("src", re.compile(r"\.mp4"), timeout=10_000)


def test_generate_plays_the_video_with_thumbnails_and_a_click_on_one_seeks_there(page: Page):
    describe(page, "a paper boat on a puddle")
    choose(page, "duration (s)", "4")
    page.get_by_label("Seed (metadata.seed)", exact=True).fill("8")
    generate(page)
    expect(page.locator("#run-thumbs img")).to_have_count(5, timeout=10_000)
    expect(page.locator("#run-summary")).to_contain_text("$0.30")
    # The "Video" label sits above the picture, not over its top edge (where the prompt is burned in).
    label = page.locator("#run-video [data-testid=block-label]").bounding_box()
    picture = page.locator("#run-video video").bounding_box()
    assert label["y"] + label["height"] <= picture["y"] + 1
    shot(page, "generate")

    thumbs = page.locator("#run-thumbs button.thumbnail-item, #run-thumbs .thumbnail-item")
    expect(thumbs).to_have_count(5, timeout=10_000)
    thumbs.nth(3).click()
    expect(page.locator(".preview")).to_have_count(0)  # no tiny preview opens
    page.wait_for_function("() => { const v = document.querySelector('#run-video video');"
                           " return v && v.currentTime > 2.0 && v.currentTime < 4.0; }", timeout=10_000)
    assert page.locator("#run-video video").evaluate("v => v.paused")


def test_continue_in_background_then_shows_the_video_when_it_completes(visit, slow_lab_url):
    page = open_lab(visit(), slow_lab_url)
    # With nothing running, it says so instead of claiming a task was submitted.
    page.get_by_role("button", name="Continue in background", exact=True).click()
    expect(page.locator("#run-progress")).to_contain_text("Nothing is running", timeout=10_000)
    describe(page, "a slow glacier calving into the sea")
    choose(page, "duration (s)", "4")
    page.get_by_role("button", name="Generate", exact=True).click()
    progress = page.locator("#run-progress")
    expect(progress).to_contain_text("task_", timeout=RUN_TIMEOUT_MS)
    page.get_by_role("button", name="Continue in background", exact=True).click()
    expect(progress).to_contain_text("may still complete and be billed", timeout=10_000)
    expect(progress).to_contain_text("journal")
    expect(progress).to_contain_text("task_")  # which task may still bill
    expect(page.get_by_role("button", name="Generate", exact=True)).to_be_enabled()
    shot(page, "background")
    # Nobody presses anything: the page shows the video once the task completes.
    expect(progress).to_contain_text("Finished in the background", timeout=RUN_TIMEOUT_MS)
    expect(page.locator("#run-video video")).to_have_attribute("src", re.compile(r"\.mp4"), timeout=10_000)
    # The same panels a waited-for run shows: its thumbnails, the server's answer, the prediction check.
    expect(page.locator("#run-thumbs img")).to_have_count(5, timeout=10_000)
    expect(page.locator("#server-answer")).to_contain_text("completed")
    check = page.locator("#run-check")
    for setting in ("model", "pixel size", "duration"):
        expect(check.locator("tr").filter(has_text=setting)).to_contain_text("same")
    expect(check).not_to_contain_text("not reported")
    # Gradio's cancels= put an "Error" badge on every output; moving a wait to the background is no error.
    expect(page.locator(".error").filter(has_text="Error")).to_have_count(0)
    shot(page, "background-done")


@pytest.fixture(scope="module")
def three_seeds(browser, lab_url) -> Page:
    """A page that ran a sweep of seeds 1, 2, 3 (made once for the tests that look at it)."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = open_lab(context.new_page(), lab_url)
    run_three_seed_sweep(page, "a red kite circling")
    yield page
    context.close()


def test_sweep_of_three_seeds_fills_three_rows(three_seeds: Page):
    page = three_seeds
    page.get_by_role("tab", name="Seed sweep").click()
    for row in range(3):
        cells = page.locator(f"#sweep-row-{row}")
        expect(cells).to_be_visible()
        expect(cells.locator("video")).to_have_attribute("src", re.compile(r"\.mp4"), timeout=10_000)
        expect(cells.locator("img")).to_have_count(5, timeout=10_000)
        expect(page.locator(f"#sweep-label-{row}")).to_contain_text(f"seed {row + 1}")
    expect(page.locator("#sweep-row-3")).to_be_hidden()
    shot(page, "sweep")

    # "Use this seed" carries the seed back into the single-run form.
    page.locator("#use-seed-1").click()
    expect(page.get_by_label("Seed (metadata.seed)", exact=True)).to_have_value("2", timeout=10_000)


def test_compare_these_opens_the_finished_sweep_in_the_compare_tab(three_seeds: Page):
    page = three_seeds
    page.get_by_role("tab", name="Seed sweep").click()
    page.locator("#sweep-compare").click()
    expect(page.locator("#compare-status")).to_contain_text("3 runs, 3 with a video", timeout=RUN_TIMEOUT_MS)
    expect(page.locator("#compare-player .cp-cell")).to_have_count(3)
    expect(page.locator("#compare-player .cp-label").first).to_contain_text("seed 1")


def run_three_seed_sweep(page: Page, prompt: str) -> None:
    describe(page, prompt)
    choose(page, "duration (s)", "4")
    page.get_by_role("tab", name="Seed sweep").click()
    page.get_by_label("Seeds", exact=True).fill("1, 2, 3")
    expect(page.locator("#sweep-estimate")).to_contain_text("3 tasks", timeout=10_000)
    page.get_by_role("button", name="Run sweep", exact=True).click()
    expect(page.locator("#sweep-status")).to_contain_text("3 of 3 saved", timeout=RUN_TIMEOUT_MS)


def turn_on_raw_mode(page: Page) -> None:
    page.get_by_text("Advanced: other duration fields, raw JSON body").click()
    page.get_by_label("Raw body mode: send the JSON below instead of the form").check()
    expect(page.get_by_label("Prompt", exact=True)).to_be_hidden(timeout=10_000)


def type_raw(page: Page, text: str) -> None:
    editor = page.locator("#raw-body .cm-content")
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(text)


def test_a_portrait_run_shows_whole_thumbnails_with_nothing_over_them(page: Page):
    describe(page, "a tall waterfall in a narrow canyon")
    choose(page, "duration (s)", "4")
    choose(page, "size", "720x1280")
    generate(page)
    images = page.locator("#run-thumbs img")
    expect(images).to_have_count(5, timeout=10_000)
    page.wait_for_function("() => [...document.querySelectorAll('#run-thumbs img')]"
                           ".every(img => img.complete && img.naturalWidth > 0)", timeout=10_000)
    for k in range(5):
        shown = images.nth(k).evaluate(WHOLE_FRAME_JS)
        assert shown["loaded"] and shown["natural"] == pytest.approx(9 / 16, rel=0.02), shown
        assert shown["keepsAspect"] and shown["inside"], f"thumbnail {k} is cropped: {shown}"
    # The hint is there, above the pictures, not on top of them.
    expect(page.locator("#run-thumbs-hint")).to_contain_text("click one to jump the video there")
    first = images.first.bounding_box()
    for badge in page.locator("#run-thumbs [data-testid=block-label], #run-thumbs-hint").filter(visible=True).all():
        box = badge.bounding_box()
        overlaps = not (box["y"] + box["height"] <= first["y"] + 1 or box["x"] >= first["x"] + first["width"])
        assert not overlaps, "a label sits over the first thumbnail"
    # The 9:16 video fits the screen (with room for the bar above it), whole and at its own aspect.
    block = page.locator("#run-video").bounding_box()
    video = page.locator("#run-video video")
    box = video.bounding_box()
    assert block["height"] <= 0.75 * 1000 and box["height"] <= 0.75 * 1000, (block, box)
    assert video.evaluate("v => getComputedStyle(v).objectFit") == "contain"
    shot(page, "portrait-run")
    page.set_viewport_size({"width": 390, "height": 844})
    box = page.locator("#run-video video").bounding_box()
    assert box["height"] <= 0.75 * 844 and box["width"] <= 390, box
    shot(page, "portrait-run")
