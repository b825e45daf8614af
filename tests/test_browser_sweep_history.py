"""Sweep rows in a real Chromium, as a user sees them at desktop and phone size.

Whole frames at their aspect, each variant's prompt, "Use this seed" carrying the row's exact
request, short task ids that copy in full, and a poster frame where a phone shows no video frame.
One sweep (2 prompt variants × 2 seeds) is run once; each test sets the viewport and tab it needs.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from helpers import NO_CAPS, WHOLE_FRAME_JS, running_lab, screenshot, select_tab, words_broken_mid_word

RUN_TIMEOUT_MS = 120_000
DESKTOP = {"width": 1440, "height": 1000}
PHONE = {"width": 390, "height": 844}
VARIANTS = (
    "a lighthouse at dusk, waves crashing on the rocks below, cinematic",
    "a red fox running through deep snow in a birch forest at dawn, low golden sun",
)

@pytest.fixture(scope="module")
def lab(simulator, tmp_path_factory):
    # Polls at 0.1 of real time: the simulator (0.02) finishes long before a deadline on a loaded machine.
    env = {"LAB_SIM_TIME_SCALE": "0.1", "LAB_MAX_SWEEP": "4", **NO_CAPS}
    with running_lab(simulator.base_url, tmp_path_factory.mktemp("lab-data"), env) as started:
        yield started


CLIPBOARD = ("clipboard-read", "clipboard-write")


def open_lab(page: Page, url: str) -> Page:
    page.goto(url)
    expect(page.locator("#effective-panel")).to_contain_text("pixel size", timeout=60_000)
    return page


def four_seconds(page: Page) -> None:
    """4 s clips, half the renders' work of the default 8 s: no test here looks at the length."""
    combo = page.get_by_label("duration (s)", exact=True)
    combo.click()
    page.locator(f"#{combo.get_attribute('aria-controls')}").get_by_role("option", name="4", exact=True).click()


def run_sweep(page: Page, seeds: str, variants: str, tasks: int) -> None:
    four_seconds(page)
    page.get_by_role("tab", name="Seed sweep").click()
    page.get_by_label("Seeds", exact=True).fill(seeds)
    page.get_by_label("Prompt variants (one per line; empty: the form's prompt)", exact=True).fill(variants)
    expect(page.locator("#sweep-estimate")).to_contain_text(f"{tasks} task", timeout=10_000)
    page.get_by_role("button", name="Run sweep", exact=True).click()
    expect(page.locator("#sweep-status")).to_contain_text(f"{tasks} of {tasks} saved", timeout=RUN_TIMEOUT_MS)
    for row in range(tasks):
        expect(page.locator(f"#sweep-thumbs-{row} img")).to_have_count(5, timeout=10_000)


@pytest.fixture(scope="module")
def swept(browser, lab) -> Page:
    """A page that ran 2 prompt variants × seeds 1, 2 (16:9)."""
    url, _ = lab
    page = open_lab(browser.new_context(viewport=DESKTOP, permissions=list(CLIPBOARD)).new_page(), url)
    page.get_by_label("Prompt", exact=True).fill("the form's own prompt, not a variant")
    run_sweep(page, "1, 2", "\n".join(VARIANTS), 4)
    yield page
    page.context.close()


def at(page: Page, viewport: dict) -> Page:
    page.set_viewport_size(viewport)
    select_tab(page, "Seed sweep")
    expect(page.locator("#sweep-row-0")).to_be_visible()
    return page


def assert_whole_frames(page: Page, row: int, aspect: float) -> None:
    images = page.locator(f"#sweep-thumbs-{row} img")
    expect(images).to_have_count(5)
    for k in range(5):
        images.nth(k).scroll_into_view_if_needed()
        expect(images.nth(k)).to_have_js_property("complete", True)
        shown = images.nth(k).evaluate(WHOLE_FRAME_JS)
        assert shown["loaded"] and shown["natural"] == pytest.approx(aspect, rel=0.02), shown
        assert shown["keepsAspect"] and shown["inside"], f"row {row} thumbnail {k} is cropped: {shown}"


def test_sweep_thumbnails_are_whole_landscape_frames(swept: Page):
    page = at(swept, DESKTOP)
    for row in range(4):
        assert_whole_frames(page, row, 16 / 9)
        # Nothing sits over the video's top edge, where the prompt is burned in.
        picture = page.locator(f"#sweep-video-{row} video").bounding_box()
        for badge in page.locator(f"#sweep-video-{row} [data-testid=block-label]").filter(visible=True).all():
            box = badge.bounding_box()
            assert box["y"] + box["height"] <= picture["y"] + 1, f"row {row}'s label covers its video"
    # The button says what happens, as on the single-run tab (no "Stop waiting" jargon).
    expect(page.locator("#sweep-stop")).to_have_text("Continue in background")
    screenshot(page, "sweep-variants-1440.png", full_page=True)


def test_sweep_thumbnails_are_whole_portrait_frames(visit, lab):
    url, _ = lab
    page = open_lab(visit(DESKTOP["width"], DESKTOP["height"], permissions=CLIPBOARD), url)
    page.get_by_label("Prompt", exact=True).fill("a waterfall in a narrow canyon, vertical framing")
    combo = page.get_by_label("metadata.aspectRatio", exact=True)
    combo.click()
    page.locator(f"#{combo.get_attribute('aria-controls')}").get_by_role("option", name="9:16", exact=True).click()
    run_sweep(page, "3", "", 1)
    assert_whole_frames(page, 0, 9 / 16)
    screenshot(page, "sweep-portrait-1440.png", full_page=True)


def test_variant_rows_show_their_prompt_in_full(swept: Page):
    page = at(swept, DESKTOP)
    for row, (variant, seed) in enumerate([(1, 1), (1, 2), (2, 1), (2, 2)]):
        expect(page.locator(f"#sweep-label-{row}")).to_contain_text(f"variant {variant} · seed {seed}")
        expect(page.locator(f"#sweep-prompt-{row}")).to_have_text(VARIANTS[variant - 1])


def test_use_this_seed_on_a_variant_row_carries_its_prompt_and_seed(swept: Page):
    page = at(swept, DESKTOP)
    page.locator("#use-seed-3").click()
    expect(page.get_by_label("Seed (metadata.seed)", exact=True)).to_have_value("2", timeout=10_000)
    expect(page.get_by_label("Prompt", exact=True)).to_have_value(VARIANTS[1])


def test_rows_show_a_short_task_id_that_copies_in_full(swept: Page, lab):
    _, services = lab
    page = at(swept, DESKTOP)
    for row in range(4):
        code = page.locator(f"#sweep-task-{row} code")
        full = code.get_attribute("title")
        assert services.runs.store.get(full) is not None, f"{full!r} is not a journalled task id"
        shown = code.inner_text()
        assert len(shown) < len(full) and shown.startswith(full[:5]) and shown.endswith(full[-4:])
        for selector in (f"#sweep-task-{row} code", f"#sweep-label-{row} p"):
            clipped = page.locator(selector).first.evaluate("el => el.scrollWidth > el.clientWidth + 1")
            assert not clipped, f"{selector} is cut off"
    button = page.locator("#sweep-task-2").get_by_role("button", name=re.compile("Copy task id"))
    button.click()
    expect(button).to_have_text("Copied")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == page.locator("#sweep-task-2 code").get_attribute("title")


def test_phone_rows_show_the_first_thumbnail_as_poster(swept: Page):
    page = at(swept, PHONE)
    for row in range(4):
        video = page.locator(f"#sweep-video-{row} video")
        first = page.locator(f"#sweep-thumbs-{row} img").first
        expect(video).to_have_attribute("poster", first.get_attribute("src"), timeout=10_000)
        size = video.evaluate("""async v => { const im = new Image(); im.src = v.poster; await im.decode();
                                              return [im.naturalWidth, im.naturalHeight]; }""")
        assert size[0] / size[1] == pytest.approx(16 / 9, rel=0.02)
    screenshot(page, "sweep-variants-390.png", full_page=True)


# ---------------------------------------------------------------- History


def at_history(page: Page, viewport: dict) -> Page:
    """The History tab with an empty filter, listing the sweep's runs."""
    page.set_viewport_size(viewport)
    select_tab(page, "History")
    filter_box(page).fill("")
    page.get_by_role("button", name="Refresh", exact=True).click()
    expect(page.locator("#history-table")).to_contain_text(VARIANTS[1], timeout=15_000)
    expect(page.locator("#history-table")).to_contain_text(VARIANTS[0])
    return page


def filter_box(page: Page):
    return page.get_by_label("Filter by prompt text", exact=True)


def test_history_filters_as_the_user_types_once_typing_pauses(swept: Page):
    page = at_history(swept, DESKTOP)
    typed = "red fox"
    joins: list = []

    def count(request) -> None:  # listings of what is being typed (not a refresh of an empty filter)
        if request.method == "POST" and "/queue/join" in request.url:
            data = (request.post_data_json or {}).get("data", [])
            if any(isinstance(v, str) and v and typed.startswith(v) for v in data):
                joins.append(data)

    page.on("request", count)
    try:
        filter_box(page).press_sequentially(typed, delay=40)  # no Enter, no button
        table = page.locator("#history-table")
        expect(table).not_to_contain_text(VARIANTS[0], timeout=15_000)
        expect(table).to_contain_text(VARIANTS[1])
        expect(page.locator("#history-gallery img")).to_have_count(2)
    finally:
        page.remove_listener("request", count)
    # Seven keystrokes, listed once the typing paused (a stall in a loaded browser may add one).
    assert 1 <= len(joins) <= 2, joins


def test_history_says_no_runs_match_and_recovers_when_cleared(swept: Page):
    page = at_history(swept, DESKTOP)
    filter_box(page).fill("zebra crossing")
    expect(page.locator("#history-empty")).to_contain_text("No runs match “zebra crossing”", timeout=15_000)
    expect(page.locator("#history-gallery img")).to_have_count(0)
    filter_box(page).fill("")
    expect(page.locator("#history-table")).to_contain_text(VARIANTS[0], timeout=15_000)
    expect(page.locator("#history-empty")).not_to_contain_text("No runs match")


@pytest.mark.parametrize("viewport, widest", [(DESKTOP, 200), (PHONE, 130)], ids=["desktop", "phone"])
def test_history_tiles_are_small_whole_frames_with_full_captions(swept: Page, viewport: dict, widest: int):
    page = at_history(swept, viewport)
    tiles = page.locator("#history-gallery .thumbnail-item")
    expect(tiles.first).to_be_visible()
    assert tiles.count() >= 4  # the sweep's four (and any other run this browser made)
    for k in range(tiles.count()):
        tile = tiles.nth(k)
        tile.scroll_into_view_if_needed()
        image = tile.locator("img")
        expect(image).to_have_js_property("complete", True)
        shown = image.evaluate(WHOLE_FRAME_JS)
        assert shown["keepsAspect"] and shown["inside"], f"tile {k} is cropped: {shown}"
        assert tile.bounding_box()["width"] <= widest, "tiles should be small"
        caption = tile.locator(".caption-label")
        assert re.fullmatch(r"saved · \$0\.30\nseed \d+\n\d\d-\d\d \d\d:\d\d(\n(✓ no issues|⚠ .+))?", caption.inner_text().strip())
        fits = caption.evaluate("""el => { const box = el.getBoundingClientRect();
            const tile = el.closest('.thumbnail-item').getBoundingClientRect();
            return el.scrollWidth <= el.clientWidth + 1 && el.scrollHeight <= el.clientHeight + 1
                && box.left >= tile.left - 1 && box.right <= tile.right + 1 && box.bottom <= tile.bottom + 1; }""")
        assert fits, f"caption of tile {k} is cut off"
    name = "history-1440.png" if viewport is DESKTOP else "history-390.png"
    screenshot(page, name, full_page=True)


# The prompt column of History's table: the narrowest cell's room, the widest word in it, whether
# the table scrolls sideways and where the column ends. Gradio draws the rows as a virtual list of
# <div>s under a header <table>, cells in column order.
PROMPT_COLUMN_JS = """frame => {
  const headers = [...frame.querySelectorAll('thead th')];
  const header = headers.findIndex(th => th.innerText.trim() === 'prompt');
  const cells = [...frame.querySelectorAll('.virtual-row')].map(row => row.children[header]).filter(Boolean);
  const viewport = frame.querySelector('.virtual-table-viewport');
  const out = {header, cells: cells.length, narrowest: Infinity, widestWord: 0,
               scrolls: viewport.scrollWidth > viewport.clientWidth + 1,
               promptRight: headers[header].getBoundingClientRect().right - viewport.getBoundingClientRect().right};
  for (const cell of cells) {
    const style = getComputedStyle(cell);
    out.narrowest = Math.min(out.narrowest,
                             cell.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight));
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const match of node.data.matchAll(/\\S+/g)) {
        const range = document.createRange();
        range.setStart(node, match.index);
        range.setEnd(node, match.index + match[0].length);
        out.widestWord = Math.max(out.widestWord, range.getBoundingClientRect().width);
      }
    }
  }
  return out;
}"""


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_history_table_prompts_wrap_between_words_and_stay_readable(swept: Page, viewport: dict):
    # The History tab hides in the tab overflow menu on a phone: open it wide, then narrow the page.
    page = at_history(swept, DESKTOP)
    page.set_viewport_size(viewport)
    frame = page.locator("#history-table")
    expect(frame).to_contain_text(VARIANTS[0])
    shown = frame.evaluate(PROMPT_COLUMN_JS)
    assert shown["header"] >= 0 and shown["cells"] >= 4, shown
    rows = frame.locator(".virtual-row")
    for row in range(rows.count()):
        cell = rows.nth(row).locator(f":scope > :nth-child({shown['header'] + 1})")
        assert not words_broken_mid_word(cell, allowed_after=""), f"row {row}: a prompt word broken mid-word"
    assert not words_broken_mid_word(frame.locator("thead"), allowed_after=""), "a column name broken mid-word"
    # Room for a few words a line, not one long word and a sliver.
    assert shown["narrowest"] >= 200 and shown["narrowest"] >= 2 * shown["widestWord"], shown
    # A desktop shows every column (the task id included); a phone scrolls the table sideways instead.
    assert shown["scrolls"] == (viewport is PHONE), shown
    assert shown["promptRight"] <= 1, f"the prompt column should be whole before any sideways scroll: {shown}"
    screenshot(page.locator("#history-table"), f"history-table-{viewport['width']}.png")


def test_phone_shows_the_selected_run_full_width_under_its_details(swept: Page):
    page = at_history(swept, DESKTOP)
    page.set_viewport_size(PHONE)
    table = page.locator("#history-table")
    table.locator("[role=gridcell]").filter(has_text=VARIANTS[1]).filter(visible=True).first.click()
    expect(page.locator("#history-detail")).to_contain_text(VARIANTS[1], timeout=10_000)
    video = page.locator("#history-video video")
    expect(video).to_have_attribute("src", re.compile(r"\.mp4"), timeout=10_000)
    video.scroll_into_view_if_needed()
    detail = page.locator("#history-detail").bounding_box()
    player = page.locator("#history-video").bounding_box()
    width = page.evaluate("() => document.querySelector('#history-table').getBoundingClientRect().width")
    # Side by side, each got 160 px of a 326 px column: a postage-stamp video beside a wrapped list.
    assert player["width"] >= 0.9 * width and detail["width"] >= 0.9 * width, (detail, player, width)
    assert player["y"] >= detail["y"] + detail["height"] - 1, "the video goes under the run's details"
    label = page.locator("#history-video [data-testid=block-label]").bounding_box()
    picture = video.bounding_box()
    assert label["y"] + label["height"] <= picture["y"] + 1, "the label covers the prompt burned into the frame"
    screenshot(page, "history-selected-390.png", full_page=True)


def test_load_into_form_brings_the_selected_run_back_to_the_single_run_form(swept: Page):
    # What the loaded form holds is checked on the handler (tests/test_ui_form.py); here, that the button does it.
    page = at_history(swept, DESKTOP)
    page.locator("#history-table [role=gridcell]").filter(has_text=VARIANTS[0]).filter(visible=True).first.click()
    # This run's prompt, not just "task_": the detail of the run an earlier test selected still shows a task
    # id until the select lands, and a click before then loaded that run.
    expect(page.locator("#history-detail")).to_contain_text(VARIANTS[0], timeout=10_000)
    page.get_by_role("button", name="Load into form", exact=True).click()
    expect(page.get_by_label("Prompt", exact=True)).to_have_value(VARIANTS[0], timeout=10_000)
    expect(page.get_by_role("tab", name="Single run")).to_have_attribute("aria-selected", "true")
