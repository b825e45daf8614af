"""Page load on a Space (SPACE_ID set, history_scope session): nothing reads a session before the page is identified.

On load the page is bound to its visitor (``lab.ui.session.identify``). Every
load that reads the visitor's runs (History, the Compare list, the banner, the
draft, re-attach) must run after that step, chained on it, not beside it:
beside it, it may run for a page that is not yet anyone's and show nothing
(or, worse, someone else's) until the next refresh. The test holds the
identify request in the browser until the session-free loads have finished,
so the order is forced, never left to luck.
"""

from __future__ import annotations

import json
import urllib.request

import pytest
from playwright.sync_api import Page, Route, expect

from helpers import running_lab

RUN_TIMEOUT_MS = 120_000
LOAD_TIMEOUT_MS = 60_000
# Handlers that read the visitor's session (by their Gradio api_name, without the _N suffix Gradio adds).
SESSION_READERS = ("banner_for", "list_runs", "list_choices", "restore_draft", "reattach")


@pytest.fixture(scope="module")
def space_lab(simulator, tmp_path_factory):
    env = {"SPACE_ID": "someone/veo-prompt-lab", "LAB_SIM_TIME_SCALE": "0.02", "LAB_SPEND_CAP_SESSION_USD": "none",
           "LAB_SPEND_CAP_DAY_USD": "none"}
    with running_lab(simulator.base_url, tmp_path_factory.mktemp("space-data"), env) as (url, services):
        assert services.settings.history_scope == "session"  # what SPACE_ID implies
        config = json.load(urllib.request.urlopen(url + "config", timeout=30))
        names = {d["id"]: str(d.get("api_name") or "") for d in config["dependencies"]}
        yield url, names


def base_name(api_name: str) -> str:
    head, _, tail = api_name.rpartition("_")
    return head if head and tail.isdigit() else api_name


def open_lab(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.locator("#effective-panel")).to_contain_text("pixel size", timeout=LOAD_TIMEOUT_MS)


def generate(page: Page, prompt: str) -> None:
    page.get_by_label("Prompt", exact=True).fill(prompt)
    combo = page.get_by_label("duration (s)", exact=True)
    combo.click()
    page.locator(f"#{combo.get_attribute('aria-controls')}").get_by_role("option", name="4", exact=True).click()
    expect(page.locator("#generate-gate")).to_contain_text("$0.30", timeout=10_000)
    page.get_by_role("button", name="Generate", exact=True).click()
    expect(page.locator("#run-progress")).to_contain_text("done", timeout=RUN_TIMEOUT_MS)


class HeldIdentify:
    """Holds the page's identify request until released, and notes every event the page joins meanwhile."""

    def __init__(self, page: Page, names: dict[int, str]) -> None:
        self.names, self.held, self.joined_while_held = names, [], []
        self.released = False
        page.route("**/gradio_api/queue/join*", self._route)

    def _route(self, route: Route) -> None:
        name = self.names.get((route.request.post_data_json or {}).get("fn_index"), "")
        if name == "identify" and not self.released:
            self.held.append(route)
            return
        if not self.released:
            self.joined_while_held.append(base_name(name))
        route.continue_()

    def release(self) -> None:
        self.released = True
        for route in self.held:
            route.continue_()


def compare_choices(page: Page) -> list[str]:
    page.get_by_role("tab", name="Compare").click()
    page.locator("#compare-runs input").click()
    options = page.get_by_role("option")
    options.first.wait_for(timeout=10_000)
    texts = options.all_inner_texts()
    page.keyboard.press("Escape")
    return texts


def test_every_session_read_on_load_waits_for_identification_so_a_reload_shows_only_this_visitors_runs(
        space_lab, browser) -> None:
    url, names = space_lab
    mine, theirs = browser.new_context(viewport={"width": 1440, "height": 1000}), browser.new_context()
    try:
        page, other = mine.new_page(), theirs.new_page()
        open_lab(page, url)
        generate(page, "a kingfisher on a mossy branch")
        open_lab(other, url)
        generate(other, "a tram crossing a snowy bridge")

        held = HeldIdentify(page, names)
        page.reload()
        # The loads that need no session finish while the page is still unidentified...
        expect(page.locator("#effective-panel")).to_contain_text("pixel size", timeout=LOAD_TIMEOUT_MS)
        assert len(held.held) == 1, "the page never asked to be identified"
        # ...and nothing that reads the session has been sent before identification.
        early = sorted({name for name in held.joined_while_held if name in SESSION_READERS})
        assert early == [], f"sent before the page was identified: {early}"
        held.release()

        choices = compare_choices(page)
        assert any("kingfisher" in c for c in choices) and not any("tram" in c for c in choices), choices
        page.get_by_role("tab", name="History").click()
        table = page.locator("#history-table")
        expect(table).to_contain_text("kingfisher", timeout=LOAD_TIMEOUT_MS)
        expect(table).not_to_contain_text("tram")
    finally:
        mine.close()
        theirs.close()
