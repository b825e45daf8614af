"""Image-to-video in a real Chromium: upload, the multipart panel and the duration trap, crop & scale, generate."""

from __future__ import annotations

import re

import pytest
from helpers import NO_CAPS, running_lab, screenshot
from image_helpers import picture
from playwright.sync_api import Page, expect

RUN_TIMEOUT_MS = 90_000


@pytest.fixture(scope="module")
def lab_url(simulator, tmp_path_factory):
    env = {"LAB_SIM_TIME_SCALE": "0.02", **NO_CAPS}
    with running_lab(simulator.base_url, tmp_path_factory.mktemp("lab-data"), env) as (url, _services):
        yield url


def open_lab(page: Page, url: str) -> Page:
    page.goto(url)
    expect(page.locator("#effective-panel")).to_contain_text("pixel size", timeout=60_000)
    return page


def test_upload_warns_offers_the_crop_fits_a_phone_and_generates_from_the_image(visit, lab_url, tmp_path):
    page = open_lab(visit(), lab_url)
    page.get_by_label("Prompt", exact=True).fill("the camera rises slowly over the storyboard frame")
    image = picture(tmp_path / "storyboard.png", size=(1000, 800))
    page.locator("#reference-image input[type=file]").set_input_files(str(image))

    panel = page.locator("#effective-panel")
    expect(panel).to_contain_text("Sent as multipart/form-data, with input_reference", timeout=20_000)
    # The form's default duration "8" is the trap: ignored with an image, so 4 s.
    expect(panel).to_contain_text('duration="8" is ignored in an image request', timeout=10_000)
    expect(panel).to_contain_text("default for an image request")
    # ...and said under the duration field itself, where the user set 8 s.
    duration = page.locator(".lab-warning").filter(has=page.get_by_label("duration (s)", exact=True))
    expect(duration).to_contain_text("Ignored with a reference image", timeout=10_000)
    expect(duration).to_contain_text("this video will be 4 s")
    expect(page.locator("#image-info")).to_contain_text("PNG · 1000×800 px")
    crop = page.locator("#crop-image")
    expect(crop).to_have_text("Crop & scale to 1280x720", timeout=10_000)
    expect(page.locator("#effective-panel")).to_contain_text("Crop & scale it to 1280x720")
    page.get_by_text("Body that will be sent").first.scroll_into_view_if_needed()
    screenshot(page, "image_warning_1440.png", full_page=True)

    crop.click()
    expect(page.locator("#image-info")).to_contain_text("1280×720", timeout=20_000)
    expect(crop).to_be_hidden(timeout=10_000)
    expect(panel).not_to_contain_text("Crop & scale it to", timeout=10_000)

    page.get_by_role("button", name="Generate", exact=True).click()
    expect(page.locator("#run-progress")).to_contain_text("done", timeout=RUN_TIMEOUT_MS)
    expect(page.locator("#run-video video")).to_have_attribute("src", re.compile(r"\.mp4"), timeout=10_000)
    sent = page.locator("#request-sent")
    expect(sent).to_contain_text("input_reference=@", timeout=10_000)
    expect(sent).to_contain_text("seconds=4")
    expect(sent).not_to_contain_text(str(tmp_path.anchor) + "tmp")  # the file's name, never a server path
    screenshot(page, "image_generated_1440.png", full_page=True)

    # History shows the image by its hash and brings it back into the form for a re-run.
    other = picture(tmp_path / "other.jpg", size=(600, 900), fmt="JPEG")
    page.locator("#reference-image input[type=file]").set_input_files(str(other))
    expect(page.locator("#image-info")).to_contain_text("JPEG · 600×900 px", timeout=20_000)
    # The image input fits a phone's screen: its crop button whole on the page narrowed to 390 px.
    page.set_viewport_size({"width": 390, "height": 844})
    expect(crop).to_be_visible(timeout=10_000)
    box = crop.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    crop.scroll_into_view_if_needed()
    screenshot(page, "image_phone_390.png", full_page=False)
    page.set_viewport_size({"width": 1440, "height": 1000})
    page.get_by_role("tab", name="History").click()
    page.get_by_role("button", name="Refresh", exact=True).click()
    table = page.locator("#history-table")
    expect(table).to_contain_text("storyboard frame", timeout=10_000)
    table.locator("[role=gridcell]").filter(has_text="storyboard frame").filter(visible=True).first.click()
    expect(page.locator("#history-detail")).to_contain_text("Reference image", timeout=10_000)
    page.get_by_role("button", name="Load into form", exact=True).click()
    expect(page.locator("#image-info")).to_contain_text("PNG · 1280×720 px", timeout=20_000)
    expect(page.locator("#effective-panel")).to_contain_text("multipart/form-data")
