"""The lab in a real Chromium: the effective panel reacts, a run plays, a sweep fills its grid.

Uses Debian's chromium (CHROMIUM_PATH overrides /usr/bin/chromium); scripts/test.sh
installs it. A missing browser is a failure, not a skip.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from helpers import NO_CAPS, WHOLE_FRAME_JS, running_lab, words_broken_mid_word

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


def open_lab(browser, url: str, width: int = 1440, height: int = 1000):
    """A fresh visitor's page (its own browser context), ready to type into."""
    context = browser.new_context(viewport={"width": width, "height": height})
    pg = context.new_page()
    pg.goto(url)
    pg.wait_for_load_state("load")
    # The panel is filled by demo.load: wait for it so it cannot overwrite what we type next.
    expect(pg.locator("#effective-panel")).to_contain_text("pixel size", timeout=20_000)
    return context, pg


@pytest.fixture
def page(browser, lab_url) -> Page:
    """A fresh page for each test: no test depends on what another one did."""
    context, pg = open_lab(browser, lab_url)
    yield pg
    context.close()


@pytest.fixture
def phone(browser, lab_url) -> Page:
    context, pg = open_lab(browser, lab_url, 390, 844)
    yield pg
    context.close()


ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


def shot(page: Page, name: str) -> None:
    """A screenshot to look at (tests/artifacts is kept out of git)."""
    ARTIFACTS.mkdir(exist_ok=True)
    size = page.viewport_size or {"width": 0}
    page.screenshot(path=str(ARTIFACTS / f"{name}-{size['width']}.png"), full_page=True)


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


def test_effective_panel_follows_precedence(page: Page):
    describe(page, "a lighthouse at dusk, waves on the rocks")
    choose(page, "size", "720x1280")
    aspect = panel_row(page, "aspect ratio")
    expect(aspect).to_contain_text("9:16", timeout=10_000)
    expect(aspect).to_contain_text("size")

    choose(page, "metadata.aspectRatio", "16:9")
    expect(aspect).to_contain_text("16:9", timeout=10_000)
    expect(aspect).to_contain_text("metadata.aspectRatio")
    expect(aspect).to_contain_text("size=720x1280")  # what it overrode
    expect(page.locator("#effective-panel")).to_contain_text("is overridden by metadata.aspectRatio=16:9")
    shot(page, "precedence")


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


def test_parameter_labels_are_not_cut_off(page: Page):
    assert_labels_fit(page)


def test_on_a_phone_labels_and_the_effective_table_fit(phone: Page):
    assert_labels_fit(phone)
    panel = phone.locator("#effective-panel")
    header = panel.locator("th").filter(has_text="overrode")
    expect(header).to_be_visible()
    width = phone.viewport_size["width"]
    assert header.evaluate("el => el.getBoundingClientRect().right") <= width
    for cell in panel.locator("td, th").all():  # nothing cut off: every cell's text fits its cell
        assert cell.evaluate("el => el.scrollWidth <= el.clientWidth + 1"), cell.inner_text()
    shot(phone, "phone-form")


@pytest.mark.parametrize("width", [1440, 390], ids=["desktop", "phone"])
def test_the_request_tables_wrap_between_words_never_inside_one(browser, lab_url, width: int):
    # On a phone Gradio's prose tables broke "model" into "m/od/el" and "metadata.resolution" into
    # "metadata.resolutio/n". A model name may wrap after a "-"; a field name after a "." (a <wbr>).
    context, page = open_lab(browser, lab_url, width, 844 if width < 1000 else 1000)
    describe(page, "a lighthouse at dusk, waves on the rocks")
    choose(page, "size", "720x1280")
    choose(page, "metadata.aspectRatio", "16:9")
    expect(panel_row(page, "aspect ratio")).to_contain_text("size=720x1280", timeout=10_000)
    generate(page)
    expect(page.locator("#run-check")).to_contain_text("Prediction vs result", timeout=10_000)
    for table in ("#effective-panel", "#run-check"):
        assert not words_broken_mid_word(page.locator(table)), (table, words_broken_mid_word(page.locator(table)))
        right = page.locator(f"{table} table").evaluate("el => el.getBoundingClientRect().right")
        assert right <= width, f"{table} runs off the screen"
    assert page.evaluate("document.scrollingElement.scrollWidth") <= width, "the page scrolls sideways"
    ARTIFACTS.mkdir(exist_ok=True)
    for table in ("effective-panel", "run-check"):
        page.locator(f"#{table}").screenshot(path=str(ARTIFACTS / f"{table}-{width}.png"))
    context.close()


def test_on_a_phone_generate_is_on_the_first_screen_and_stays_there(phone: Page):
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


def test_an_invalid_combination_is_marked_once_next_to_its_field(page: Page):
    describe(page, "a lighthouse at dusk")
    choose(page, "metadata.resolution", "1080p")
    choose(page, "duration (s)", "4")
    message = 'needs a duration of "8"'
    field = page.locator(".lab-invalid").filter(has=page.get_by_label("duration (s)", exact=True))
    expect(field.locator(".info-text")).to_contain_text(message, timeout=10_000)
    expect(page.get_by_text(re.compile(re.escape(message)))).to_have_count(1)  # once, not repeated
    color = field.locator(".info-text").evaluate("el => getComputedStyle(el).color")
    assert color != field.locator("[data-testid=block-info]").evaluate("el => getComputedStyle(el).color")
    expect(page.locator("#generate-gate")).to_contain_text("marked in red")
    expect(page.get_by_role("button", name="Generate", exact=True)).to_be_disabled()
    shot(page, "invalid")
    choose(page, "metadata.resolution", "(not set)")
    expect(page.get_by_role("button", name="Generate", exact=True)).to_be_enabled(timeout=10_000)
    expect(page.locator(".lab-invalid")).to_have_count(0)


def generate(page: Page) -> None:
    page.get_by_role("button", name="Generate", exact=True).click()
    expect(page.locator("#run-progress")).to_contain_text("done", timeout=RUN_TIMEOUT_MS)
    expect(page.locator("#run-video video")).to_have_attribute("src", re.compile(r"\.mp4"), timeout=10_000)


def test_generate_plays_the_video_with_thumbnails(page: Page):
    describe(page, "a lighthouse at dusk, waves on the rocks")
    page.get_by_label("Seed (metadata.seed)", exact=True).fill("7")
    generate(page)
    expect(page.locator("#run-thumbs img")).to_have_count(5, timeout=10_000)
    expect(page.locator("#run-summary")).to_contain_text("$0.30")
    # The "Video" label sits above the picture, not over its top edge (where the prompt is burned in).
    label = page.locator("#run-video [data-testid=block-label]").bounding_box()
    picture = page.locator("#run-video video").bounding_box()
    assert label["y"] + label["height"] <= picture["y"] + 1
    shot(page, "generate")


def test_clicking_a_thumbnail_seeks_the_video_there(page: Page):
    describe(page, "a paper boat on a puddle")
    choose(page, "duration (s)", "4")
    page.get_by_label("Seed (metadata.seed)", exact=True).fill("8")
    generate(page)
    thumbs = page.locator("#run-thumbs button.thumbnail-item, #run-thumbs .thumbnail-item")
    expect(thumbs).to_have_count(5, timeout=10_000)
    thumbs.nth(3).click()
    expect(page.locator(".preview")).to_have_count(0)  # no tiny preview opens
    page.wait_for_function("() => { const v = document.querySelector('#run-video video');"
                           " return v && v.currentTime > 2.0 && v.currentTime < 4.0; }", timeout=10_000)
    assert page.locator("#run-video video").evaluate("v => v.paused")


def test_continue_in_background_then_shows_the_video_when_it_completes(browser, slow_lab_url):
    context, page = open_lab(browser, slow_lab_url)
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
    context.close()


def test_raw_mode_sends_the_body_as_written_and_sets_the_prediction_beside_the_result(page: Page):
    expect(page.locator("#wire-note")).to_contain_text("canonical body")
    page.get_by_text("Advanced: other duration fields, raw JSON body").click()
    page.get_by_label("Raw body mode: send the JSON below instead of the form").check()
    expect(page.get_by_label("Prompt", exact=True)).to_be_hidden(timeout=10_000)
    raw = ('{"model": "veo-3.1-fast-generate-preview", "prompt": "two herons", "duration": "8", '
           '"seconds": "4", "size": "720x1280", "metadata": {"aspectRatio": "16:9", "seed": 5}}')
    editor = page.locator("#raw-body .cm-content")
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(raw)
    expect(page.locator("#wire-note")).to_contain_text("exactly as written", timeout=10_000)
    expect(page.locator("#generate-gate")).to_contain_text("Ready", timeout=10_000)
    generate(page)
    sent = page.locator("#request-sent")
    expect(sent).to_contain_text('"seconds": "4"')  # not folded into duration
    expect(sent).to_contain_text('"size": "720x1280"')  # not rewritten to the effective size
    check = page.locator("#run-check")
    expect(check).to_contain_text("Prediction vs result")
    expect(check.locator("tr").filter(has_text="pixel size")).to_contain_text("same")
    shot(page, "raw-mode")


def test_sweep_of_three_seeds_fills_three_rows(page: Page):
    run_three_seed_sweep(page, "a red kite circling")
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


def run_three_seed_sweep(page: Page, prompt: str) -> None:
    describe(page, prompt)
    choose(page, "duration (s)", "4")
    page.get_by_role("tab", name="Seed sweep").click()
    page.get_by_label("Seeds", exact=True).fill("1, 2, 3")
    expect(page.locator("#sweep-estimate")).to_contain_text("3 tasks", timeout=10_000)
    page.get_by_role("button", name="Run sweep", exact=True).click()
    expect(page.locator("#sweep-status")).to_contain_text("3 of 3 saved", timeout=RUN_TIMEOUT_MS)


def test_a_sweep_without_a_prompt_says_why_once_and_cannot_start(page: Page):
    # It used to price "2 tasks, up to $0.60" and, on a click, pop "prompt is required" once per seed.
    page.get_by_role("tab", name="Seed sweep").click()
    page.get_by_label("Seeds", exact=True).fill("5, 6")
    estimate = page.locator("#sweep-estimate")
    run = page.get_by_role("button", name="Run sweep", exact=True)
    expect(estimate).to_contain_text("Add a prompt on Single run first (or prompt variants here)", timeout=10_000)
    expect(estimate).not_to_contain_text("$")
    expect(run).to_be_disabled()
    # Variants bring their own prompts: with them the empty form prompt is fine.
    variants = page.get_by_label("Prompt variants (one per line; empty: the form's prompt)", exact=True)
    variants.fill("a heron at dawn\na heron at dusk")
    expect(estimate).to_contain_text("4 tasks", timeout=10_000)
    expect(run).to_be_enabled()
    shot(page, "sweep-variants-no-prompt")
    variants.fill("")
    expect(estimate).to_contain_text("Add a prompt", timeout=10_000)
    expect(run).to_be_disabled()
    shot(page, "sweep-no-prompt")


def test_compare_these_opens_the_finished_sweep_in_the_compare_tab(page: Page):
    run_three_seed_sweep(page, "a red kite circling, to compare")
    page.locator("#sweep-compare").click()
    expect(page.locator("#compare-status")).to_contain_text("3 runs, 3 with a video", timeout=RUN_TIMEOUT_MS)
    expect(page.locator("#compare-player .cp-cell")).to_have_count(3)
    expect(page.locator("#compare-player .cp-label").first).to_contain_text("seed 1")


def test_history_lists_runs_and_loads_one_into_the_form(page: Page):
    describe(page, "a lighthouse in the history, foam on the rocks")
    choose(page, "duration (s)", "4")
    generate(page)
    page.get_by_role("tab", name="History").click()
    page.get_by_label("Filter by prompt text", exact=True).fill("lighthouse in the history")
    page.get_by_role("button", name="Refresh", exact=True).click()
    table = page.locator("#history-table")
    expect(table).to_contain_text("lighthouse in the history", timeout=10_000)
    expect(table).to_contain_text("saved")
    table.locator("[role=gridcell]").filter(has_text="lighthouse in the history").filter(visible=True).first.click()
    expect(page.locator("#history-detail")).to_contain_text("task_", timeout=10_000)
    page.get_by_role("tab", name="Single run").click()
    page.get_by_label("Prompt", exact=True).fill("something else")  # about to be refilled from the journal
    page.get_by_role("tab", name="History").click()
    page.get_by_role("button", name="Load into form", exact=True).click()
    expect(page.get_by_label("Prompt", exact=True)).to_have_value(re.compile("lighthouse in the history"),
                                                                  timeout=10_000)


def test_a_preset_fills_the_form(page: Page):
    choose(page, "Preset", "Watercolor northern lights (portrait, 4 s)")
    expect(page.get_by_label("Prompt", exact=True)).to_have_value(re.compile("Watercolor northern lights"),
                                                                  timeout=10_000)
    expect(panel_row(page, "duration")).to_contain_text("4", timeout=10_000)
    expect(panel_row(page, "aspect ratio")).to_contain_text("9:16")


def turn_on_raw_mode(page: Page) -> None:
    page.get_by_text("Advanced: other duration fields, raw JSON body").click()
    page.get_by_label("Raw body mode: send the JSON below instead of the form").check()
    expect(page.get_by_label("Prompt", exact=True)).to_be_hidden(timeout=10_000)


def type_raw(page: Page, text: str) -> None:
    editor = page.locator("#raw-body .cm-content")
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(text)


def test_raw_body_mode_replaces_the_form(page: Page):
    choose(page, "Preset", "Watercolor northern lights (portrait, 4 s)")
    expect(page.get_by_label("Prompt", exact=True)).to_have_value(re.compile("Watercolor"), timeout=10_000)
    turn_on_raw_mode(page)
    editor = page.locator("#raw-body .cm-content")
    expect(editor).to_contain_text("Watercolor northern lights", timeout=10_000)  # started from the form
    type_raw(page, '{"model": "veo-3.1-fast-generate-preview", "prompt": "p", "duration": 8}')
    expect(page.locator("#form-errors")).to_contain_text("must be a string", timeout=10_000)
    expect(page.get_by_role("button", name="Generate", exact=True)).to_be_disabled()


def test_sweep_estimate_prices_the_raw_body_model(page: Page):
    # In raw mode the estimate must use the raw body's model, not the hidden dropdown's.
    turn_on_raw_mode(page)
    type_raw(page, '{"model": "veo-3.1-generate-preview", "prompt": "p", "duration": "8"}')
    expect(page.locator("#generate-gate")).to_contain_text("$1.20", timeout=10_000)
    page.get_by_role("tab", name="Seed sweep").click()
    page.get_by_label("Seeds", exact=True).fill("1, 2, 3")
    expect(page.locator("#sweep-estimate")).to_contain_text("$3.60", timeout=10_000)


def test_raw_mode_starts_from_the_form_as_edited_not_the_loaded_preset(page: Page):
    choose(page, "Preset", "Lighthouse at dusk")
    expect(page.get_by_label("Prompt", exact=True)).to_have_value(re.compile("lighthouse"), timeout=10_000)
    describe(page, "a red fox crossing a snowy field")
    choose(page, "duration (s)", "4")
    expect(panel_row(page, "duration")).to_contain_text("4", timeout=10_000)
    turn_on_raw_mode(page)
    editor = page.locator("#raw-body .cm-content")
    # What raw mode would send is the form as the user left it, not the preset as it was loaded.
    expect(editor).to_contain_text("red fox", timeout=10_000)
    expect(editor).not_to_contain_text("lighthouse")
    expect(editor).to_contain_text('"duration": "4"')
    shot(page, "raw-from-form")
    # Text the user typed into the editor is theirs: switching raw mode off and on again keeps it.
    type_raw(page, '{"model": "veo-3.1-fast-generate-preview", "prompt": "my own raw text", "duration": "6"}')
    expect(page.locator("#generate-gate")).to_contain_text("Ready", timeout=10_000)
    raw_box = page.get_by_label("Raw body mode: send the JSON below instead of the form")
    raw_box.uncheck()
    expect(page.get_by_label("Prompt", exact=True)).to_be_visible(timeout=10_000)
    raw_box.check()
    expect(page.get_by_label("Prompt", exact=True)).to_be_hidden(timeout=10_000)
    expect(editor).to_contain_text("my own raw text", timeout=10_000)


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
