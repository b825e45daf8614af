"""Review that comes back, in Debian's Chromium: the report from file:// as a stakeholder's review form, the
lab's Compare tab importing it, History showing it, and a rebuilt report drawing it on the same frame pixel.

A stakeholder opens the report, types their name, puts a ranged comment with an arrow on take B at 3.2 s
and approves take A, then exports the review; the lab imports the file in the Compare tab; History shows
the status and the comment; a report built again shows both, and the arrow's tip lands on the same
point of the video frame (within 1 % of it) at two cell sizes and enlarged. HTML typed into a comment or
a name is shown as text and never runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from compare_runs import Runs, make_runs
from helpers import running_lab
from lab.compare.pipeline import compare_runs
from lab.compare.report import write_report
from lab.review.journal import ReviewJournal
from lab.review.view import report_review
from lab.store import Store, default_store_path

NAME = "Ann <b>Lee</b>"
TEXT = "the hand melts <img src=x onerror=\"window.pwned=1\">"
START, TIP = (0.2, 0.3), (0.55, 0.6)
PLAYER = "document.querySelector('#compare-player .cmp-host')?.comparePlayer"

# Where a point of the video frame is on screen, measured from the <video> element itself (object-fit:
# contain letterboxes the picture inside its box), and where the arrow's tip is drawn: both in CSS px.
TIP_ON_FRAME_JS = """(taskId) => {
  const cell = document.querySelector(`.cp-cell[data-task="${taskId}"]`);
  const v = cell.querySelector('video'), r = v.getBoundingClientRect();
  const s = Math.min(r.width / v.videoWidth, r.height / v.videoHeight);
  const w = v.videoWidth * s, h = v.videoHeight * s, x0 = r.left + (r.width - w) / 2, y0 = r.top + (r.height - h) / 2;
  const line = cell.querySelector('.cr-layer g[data-kind="arrow"] line');
  if (!line) return null;
  const p = line.ownerSVGElement.createSVGPoint();
  p.x = +line.getAttribute('x2'); p.y = +line.getAttribute('y2');
  const tip = p.matrixTransform(line.getScreenCTM());
  return {x: (tip.x - x0) / w, y: (tip.y - y0) / h, frame: [x0, y0, w, h]};
}"""
FRAME_RECT_JS = TIP_ON_FRAME_JS.replace("const line", "return {frame: [x0, y0, w, h]}; const line")
# The drawing layer sits exactly on the picture again (it follows a resize on a ResizeObserver callback).
LAYER_ON_FRAME_JS = TIP_ON_FRAME_JS.replace(
    "const line", "const l = cell.querySelector('.cr-layer').getBoundingClientRect(); "
    "return Math.abs(l.left - x0) < 1 && Math.abs(l.width - w) < 1 && Math.abs(l.top - y0) < 1; const line")


@pytest.fixture(scope="module")
def runs(tmp_path_factory, simulator, render_cache) -> Runs:
    from lab.simulator.server import SimConfig, SimulatorServer

    with SimulatorServer(SimConfig(time_scale=0.02, render_cache=render_cache, faults={"failed": 1.0})) as failing:
        return make_runs(tmp_path_factory.mktemp("review-data"), simulator, failing)


def takes(runs: Runs) -> list[str]:
    return [runs.seed1, runs.seed2, runs.portrait]  # A, B, C (a 9:16 take letterboxed beside 16:9 ones)


def build_report(runs: Runs, out: Path) -> Path:
    with Store(default_store_path(runs.data_dir)) as store:
        review, review_csv = report_review(store, takes(runs))
        comparison = compare_runs(store, runs.data_dir, takes(runs))
    return write_report(comparison, out, review=review, review_csv=review_csv)


def open_report(browser, report: Path, width: int = 1440, height: int = 1000) -> Page:
    page = browser.new_page(viewport={"width": width, "height": height}, bypass_csp=True, accept_downloads=True)
    page.goto(report.joinpath("index.html").as_uri())
    page.wait_for_function("window.player && window.player.state().cells.every(c => c.ready >= 2 && c.duration > 0)",
                           timeout=30_000)
    return page


def drag_arrow(page: Page, task_id: str) -> None:
    x0, y0, w, h = page.evaluate(FRAME_RECT_JS, task_id)["frame"]
    page.mouse.move(x0 + START[0] * w, y0 + START[1] * h)
    page.mouse.down()
    page.mouse.move(x0 + (START[0] + TIP[0]) / 2 * w, y0 + (START[1] + TIP[1]) / 2 * h)
    page.mouse.move(x0 + TIP[0] * w, y0 + TIP[1] * h)
    page.mouse.up()


@pytest.fixture(scope="module")
def exported(runs: Runs, browser, tmp_path_factory) -> dict:
    """The stakeholder's review, made in the report from file:// and exported (the page reloaded in between)."""
    work = tmp_path_factory.mktemp("review-report")
    report = build_report(runs, work / "report")
    page = open_report(browser, report)
    a, b, _c = takes(runs)
    page.locator(".cr-name").fill(NAME)
    page.locator(".cr-name").evaluate("box => box.blur()")  # I and O are keys of the page, not of the name box
    page.evaluate("window.player.seek(3.2)")
    page.keyboard.press("i")
    page.evaluate("window.player.seek(3.6)")
    page.keyboard.press("o")
    page.locator(".cr-take").select_option(b)
    drag_arrow(page, b)
    page.locator(".cr-text").fill(TEXT)
    page.get_by_role("button", name="Comment", exact=True).click()
    page.locator(f'.cp-cell[data-task="{a}"] .cr-status').select_option("approved")
    # A second comment of theirs, edited, then deleted (each an event of its own in the file).
    page.locator(".cr-take").select_option(a)
    page.locator(".cr-text").fill("sky too dark")
    page.get_by_role("button", name="Comment", exact=True).click()
    page.locator(".cr-item", has_text="sky too dark").locator(".cr-edit").click()
    page.locator(".cr-edit-text").fill("sky is right")
    page.locator(".cr-save").click()
    expect(page.locator(".cr-item", has_text="sky is right")).to_contain_text("edited")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(".cr-item", has_text="sky is right").locator(".cr-delete").click()
    expect(page.locator(".cr-item")).to_have_count(1)
    page.reload()  # closing the tab loses nothing: the work is in the browser's storage under the report id
    page.wait_for_function("window.player && window.player.review && window.player.review.state().comments.length === 1")
    with page.expect_download() as download:
        page.get_by_role("button", name="Export review").click()
    path = work / download.value.suggested_filename
    download.value.save_as(path)
    pwned = page.evaluate("window.pwned === undefined")
    page.close()
    return {"path": path, "report": report, "data": json.loads(path.read_text()), "not_run": pwned}


def test_the_report_exports_a_ranged_comment_with_an_arrow_and_a_status(runs: Runs, exported: dict) -> None:
    data = exported["data"]
    report_id = json.loads((exported["report"] / "compare.json").read_text())["review"]["report_id"]
    assert exported["path"].name == f"review-{report_id}-Ann-b-Lee-b.json"
    comment, second = data["comments"]
    assert [(e["comment_id"], e["kind"], e["text"]) for e in data["comment_events"]] == [
        (second["id"], "edit", "sky is right"), (second["id"], "delete", "")]
    assert comment["task_id"] == runs.seed2 and (comment["t_in"], comment["t_out"]) == (3.2, 3.6)
    assert comment["text"] == TEXT and comment["author"] == NAME
    (arrow,) = comment["shapes"]
    assert arrow["kind"] == "arrow"
    for got, want in zip(arrow["points"], (START, TIP)):
        assert abs(got[0] - want[0]) < 0.01 and abs(got[1] - want[1]) < 0.01
    (event,) = data["status_events"]
    assert (event["task_id"], event["from"], event["to"], event["author"]) == (runs.seed1, "needs_review", "approved", NAME)


@pytest.fixture(scope="module")
def imported(runs: Runs, exported: dict, simulator, browser):
    """The review file uploaded in the lab's Compare tab (opened by a link), then History listed."""
    with running_lab(simulator.base_url, runs.data_dir, {"LAB_SIM_TIME_SCALE": "0.02"}) as (url, _services):
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.goto(url + "#compare=" + ",".join(takes(runs)) + "&take=C&t=1.000")
        page.wait_for_function(f"{PLAYER} && {PLAYER}.state().cells.length === 3 && "
                               f"{PLAYER}.state().cells.every(c => c.ready >= 2)", timeout=60_000)
        page.locator("#compare-review-import input[type=file]").set_input_files(str(exported["path"]))
        expect(page.locator("#compare-review-said")).to_contain_text(
            "Imported 2 new comments, 1 new status change, 2 comment edits or deletions",
                                                                     timeout=30_000)
        page.wait_for_function(f"{PLAYER}.review.state().comments.length === 1")
        shown = page.evaluate(f"""({{statuses: {PLAYER}.review.state().statuses,
            badge: document.querySelector('.cp-cell[data-task="{runs.seed1}"] .cr-badge').textContent,
            item: document.querySelector('.cr-item .cr-body').textContent,
            time: {PLAYER}.time()}})""")
        # A status set in the tab goes to the journal as this session's event.
        page.locator(".cr-name").fill("Lab user")
        page.locator(f'.cp-cell[data-task="{runs.portrait}"] .cr-status').select_option("rejected")
        expect(page.locator("#compare-review-said")).to_contain_text("Rejected", timeout=30_000)
        page.get_by_role("tab", name="History").click()
        table = page.locator("#history-table")
        expect(table).to_contain_text("✓ Approved", timeout=30_000)
        history = table.inner_text()
        page.close()
    with Store(default_store_path(runs.data_dir)) as store:
        journal = ReviewJournal(store).takes(takes(runs))
    return {"shown": shown, "history": history, "journal": journal}


def test_the_tab_imports_the_review_and_history_shows_status_and_comment(runs: Runs, imported: dict) -> None:
    shown = imported["shown"]
    assert shown["statuses"][0] == "approved" and shown["badge"] == "Approved"
    assert shown["item"] == TEXT  # the markup is text
    assert abs(shown["time"] - 1.0) < 0.05  # the link's moment
    assert "✓ Approved" in imported["history"] and "1 comment" in imported["history"]
    rejected = imported["journal"][runs.portrait].history
    assert [(e.status_to, e.author) for e in rejected] == [("rejected", "Lab user")]


def test_a_rebuilt_report_draws_the_arrow_on_the_same_frame_pixel_at_any_size(runs: Runs, imported: dict, browser,
                                                                              tmp_path: Path) -> None:
    report = build_report(runs, tmp_path / "again")
    page = open_report(browser, report)
    expect(page.locator(".cr-item")).to_have_count(1)
    expect(page.locator(".cr-item .cr-author")).to_have_text(NAME)
    expect(page.locator(f'.cp-cell[data-task="{runs.seed1}"] .cr-badge')).to_have_text("Approved")
    page.locator(".cr-item").click()
    tips = {"1440 wide": page.evaluate(TIP_ON_FRAME_JS, runs.seed2)}
    page.set_viewport_size({"width": 900, "height": 1000})
    page.wait_for_function(LAYER_ON_FRAME_JS, arg=runs.seed2)
    tips["900 wide"] = page.evaluate(TIP_ON_FRAME_JS, runs.seed2)
    page.locator(f'.cp-cell[data-task="{runs.seed2}"] .cp-enlarge').click()
    page.wait_for_function(LAYER_ON_FRAME_JS, arg=runs.seed2)
    tips["enlarged"] = page.evaluate(TIP_ON_FRAME_JS, runs.seed2)
    widths = {name: tip["frame"][2] for name, tip in tips.items()}
    assert len({round(w) for w in widths.values()}) == 3, widths  # three different sizes really were measured
    for name, tip in tips.items():
        assert abs(tip["x"] - TIP[0]) < 0.01 and abs(tip["y"] - TIP[1]) < 0.01, (name, tip)
    assert page.evaluate("window.pwned === undefined")
    page.close()


def test_html_in_a_comment_or_a_name_never_runs_in_the_report(exported: dict) -> None:
    assert exported["not_run"]
