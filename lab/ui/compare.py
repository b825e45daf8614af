"""The "Compare" tab: 2-12 runs from any sweeps or days in one synchronized player, reviewed and shared.

The player is ``lab/static/compare_player.js`` + ``.css``, put in the page's
head by the ``gr.HTML`` component and mounted on its element; the report
inlines the same two files. Opening a set makes the proxies and shows the
player at once; the similarity figures follow from a chained event, so
measuring never blocks playback (the player updates in place, videos keep
playing). Rating, note and pick are private events; ``/compare`` is the
public endpoint (ids in, the report's compare.json and ZIP out).
"""

from __future__ import annotations

import functools
import html
import json
import re
from pathlib import Path
from urllib.parse import unquote
from dataclasses import dataclass
from typing import Any, Callable

import gradio as gr

from lab.compare.report import load_static
from lab.compare.service import Opened, rating_choice
from lab.compare.set import CompareError, split_ids
from lab.errors import LabError
from lab.review.journal import ReviewJournal
from lab.review.model import STATUS_NAMES, ReviewFileError
from lab.ui.api import IDENTITY_NOTE
from lab.ui.events import PRIVATE, QUIET, bind, caller_of, progress_on, raise_for_ui, session_of
from lab.wiring import AppServices

EMPTY = "Choose 2 to 12 runs (from History, or task / sweep ids) and press **Compare**."

PLAYER_HEAD = (f"<style>{load_static('compare_player.css')}\n{load_static('compare_modes.css')}\n"
               f"{load_static('compare_review.css')}</style>\n"
               f"<script>{load_static('compare_player.js')}</script>\n"
               f"<script>{load_static('compare_modes.js')}</script>\n"
               f"<script>{load_static('compare_review.js')}</script>")
# On page load the page's address goes to the server as the event's input: a link
# #compare=ids&take=B&t=3.250 opens that set in this tab (the review layer then seeks to the moment).
LINK_JS = "(ignored) => location.hash || ''"
# The review layer's changes (a comment, a status) go to the hidden action box and its send button: a
# Gradio event like any other, so the handler knows the visitor's session.
# Runs inside the gr.HTML element; `props.value` is the player's data as JSON text. An offset typed
# into a cell comes back as the element's submit event, carrying {set_key, offsets}.
PLAYER_JS = """
element.addEventListener('cp-offsets', (event) => trigger('submit', event.detail));
function setText(selector, value) {
  const box = document.querySelector(selector);
  if (!box) return false;
  const proto = box.tagName === 'TEXTAREA' ? HTMLTextAreaElement.prototype : HTMLInputElement.prototype;
  Object.getOwnPropertyDescriptor(proto, 'value').set.call(box, value);
  box.dispatchEvent(new Event('input', {bubbles: true}));
  return true;
}
function render() {
  const host = element.querySelector('.cmp-host');
  if (!host || !window.ComparePlayer) return;
  window.ComparePlayer.reviewSink = function (action) {
    if (setText('#compare-review-action textarea', JSON.stringify(action))) {
      setTimeout(function () { const send = document.querySelector('#compare-review-send'); if (send) send.click(); }, 0);
    }
  };
  if (!props.value) { host.innerHTML = '<p class="cmp-empty">No comparison open yet.</p>'; return; }
  window.ComparePlayer.mount(host, JSON.parse(props.value));
}
render();
watch('value', render);
"""


@dataclass
class CompareTab:
    runs: Any  # multiselect of saved runs from History
    ids: Any  # free text: task or sweep ids
    refresh: Any
    open: Any
    status: Any
    player: Any
    cell: Any
    rating: Any
    note: Any
    picked: Any
    save: Any
    review_status: Any
    download: Any
    report: Any
    current: Any  # State: the ids of the open set
    api_ids: Any
    api_json: Any
    api_zip: Any
    api_button: Any
    review_action: Any  # hidden: the review layer's change as JSON
    review_send: Any
    review_import: Any  # review files from a report
    review_said: Any
    report_status: Any = None  # what became of "Download report" when there is no ZIP to show

    @property
    def opened(self) -> set:
        return {self.status, self.player, self.current, self.cell}


def build() -> CompareTab:
    """The tab's layout (call inside ``gr.Tab``)."""
    gr.Markdown(
        "Play takes side by side from one control: **space** plays or pauses, **← / →** step one frame, the "
        "scrubber moves every cell; **1–9** show one take full size (again for the grid), **D** the difference of "
        "two, **S** or **Shift+1–9** hear one take alone. The badges under a take are its pre-screen (click one to "
        "go there). The grid plays light playback copies (≤ 960 px); each cell links its original.",
        elem_id="compare-help",
    )
    # Not equal_height: that stretched the two buttons into 118 px slabs beside a tall multi-select.
    with gr.Row():
        runs = gr.Dropdown(label="Runs from History (any sweeps, any days)", multiselect=True, max_choices=12,
                           choices=[], scale=5, min_width=300, elem_id="compare-runs")
        ids = gr.Textbox(label="…or task / sweep ids", placeholder="sweep_… or task_… task_…", scale=3,
                         min_width=240, elem_id="compare-ids")
        with gr.Column(scale=1, min_width=140):
            open_button = gr.Button("Compare", variant="primary", elem_id="compare-open")
            refresh = gr.Button("Refresh list", size="sm")
    status = gr.Markdown(EMPTY, elem_id="compare-status")
    player = gr.HTML(value="", html_template='<div class="cmp-host"></div>', js_on_load=PLAYER_JS,
                     head=PLAYER_HEAD, apply_default_css=False, elem_id="compare-player")
    # Review is on the takes (status, 👍/👎, pick, comments beside each cell and in the column beside the
    # grid); below the player only what concerns the whole set: the report out, review files back in.
    with gr.Row():
        with gr.Column(scale=2, min_width=260):
            download = gr.Button("Download report (ZIP)", elem_id="compare-download")
            report = gr.File(label="Standalone report: open index.html, review offline, export the review",
                             interactive=False, visible=False, elem_id="compare-report")
            report_status = gr.Markdown(elem_id="compare-report-status")
            review_status = gr.Markdown(elem_id="compare-review-status")
        with gr.Column(scale=3, min_width=260):
            review_import = gr.File(label="Import review files (.json)", file_count="multiple",
                                    file_types=[".json"], height=110, elem_id="compare-review-import")
            review_said = gr.Markdown(elem_id="compare-review-said")
    # The one-take-at-a-time form the cells replaced: kept (hidden) for the events that still fill it.
    with gr.Column(visible=False):
        cell = gr.Dropdown(label="Cell", choices=[], elem_id="compare-cell")
        rating = gr.Radio([("👍 up", "👍"), ("👎 down", "👎"), ("none", "none")], value="none", label="Rating",
                          elem_id="compare-rating")
        picked = gr.Checkbox(label="Pick this take", elem_id="compare-picked")
        note = gr.Textbox(label="Note", max_lines=3, max_length=2000, elem_id="compare-note")
        save = gr.Button("Save review", elem_id="compare-save")
    # Not visible=False: the page's script must reach them (they are hidden by CSS).
    review_action = gr.Textbox(visible="hidden", elem_id="compare-review-action")
    review_send = gr.Button("send review", visible="hidden", elem_id="compare-review-send")
    with gr.Column(visible=False):
        api_ids = gr.Textbox(label="ids")
        api_json = gr.JSON(label="compare_json")
        api_zip = gr.File(label="report_zip")
        api_button = gr.Button("compare")
    return CompareTab(runs, ids, refresh, open_button, status, player, cell, rating, note, picked, save,
                      review_status, download, report, gr.State([]), api_ids, api_json, api_zip, api_button,
                      review_action, review_send, review_import, review_said,
                      report_status=report_status)


# ---------------------------------------------------------------- handlers


def _may_see(services: AppServices, request: gr.Request | None) -> Callable[[str], bool]:
    """Whether this visitor may compare a run: the journal view asks its scope about one id at a time."""
    return functools.partial(services.journal.may_see, session_of(request))


def list_choices(services: AppServices, tab: CompareTab, request: gr.Request) -> dict:
    records = services.journal.runs(session_of(request))
    return {tab.runs: gr.update(choices=services.compare.choices(records))}


def _wanted(runs: list[str] | None, ids_text: str | None) -> list[str]:
    return split_ids([*(runs or []), ids_text or ""])


def open_set(services: AppServices, tab: CompareTab, runs: list[str] | None, ids_text: str | None,
             request: gr.Request) -> dict:
    wanted = _wanted(runs, ids_text)
    try:
        opened = services.compare.open(wanted, may_see=_may_see(services, request))
    except LabError as err:
        # Said in the status line, not as an error badge on every output: nothing was changed.
        return {tab.status: f"**Cannot compare:** {html.escape(str(err))}"}
    return _show(tab, opened, wanted)


def _show(tab: CompareTab, opened: Opened, wanted: list[str]) -> dict:
    choices = opened.cell_choices()
    return {tab.status: opened.message, tab.player: opened.player, tab.current: wanted,
            tab.cell: gr.update(choices=choices, value=choices[0][1] if choices else None)}


def measure_set(services: AppServices, tab: CompareTab, current: list[str], request: gr.Request) -> dict:
    """The similarity figures, after the player is already up (the player updates in place)."""
    if not current:
        return {tab.status: gr.skip()}  # nothing open (an empty dict would read as one missing output value)
    try:
        return {tab.player: services.compare.measure(current, may_see=_may_see(services, request)).player}
    except LabError as err:
        return {tab.status: f"Similarity could not be measured: {html.escape(str(err))}"}


def load_review(services: AppServices, tab: CompareTab, task_id: str | None, request: gr.Request) -> dict:
    if not task_id:
        return {tab.rating: "none", tab.note: "", tab.picked: False, tab.review_status: ""}
    try:  # the cell picker offers only the open set's cells, but a caller may send any id
        services.journal.check_owner(session_of(request), task_ids=[task_id])
    except LabError as err:
        raise_for_ui(err)
    review = services.compare.review_of(task_id)
    return {tab.rating: rating_choice(review.rating), tab.note: review.note, tab.picked: review.picked,
            tab.review_status: ""}


def save_review(services: AppServices, tab: CompareTab, current: list[str], task_id: str | None, rating: str,
                note: str, picked: bool, request: gr.Request) -> dict:
    # Every refusal is said beside the button: nothing was saved, and the page has no error to show.
    if not task_id or not current:
        return {tab.review_status: "**Not saved:** open a comparison and choose a cell first."}
    may_see = _may_see(services, request)
    if not may_see(task_id):
        return {tab.review_status: "**Not saved:** that run is not yours to review."}
    service = services.compare
    try:
        review = service.review(task_id, rating=rating, note=note or "", picked=picked)
    except (LabError, ValueError) as err:
        return {tab.review_status: f"**Not saved:** {html.escape(str(err))}"}
    try:
        # Cached figures only: a review must not wait for (or start) a measurement.
        opened = service.measure(current, may_see=may_see, cached_only=True)
    except LabError:
        opened = None  # saved all the same; the player shows it when the set is next drawn
    saved = " · ".join(x for x in (rating_choice(review.rating), "picked" if review.picked else "") if x and x != "none")
    return {tab.player: opened.player if opened is not None else gr.skip(),
            tab.review_status: f"Saved {saved}".strip()}


def save_offsets(services: AppServices, tab: CompareTab, current: list[str], event: gr.EventData,
                 request: gr.Request) -> dict:
    """A cell's offset changed in the player: keep the set's offsets (carried into its report)."""
    detail = getattr(event, "_data", None) or {}
    if not current or not isinstance(detail, dict) or "offsets" not in detail:
        return {tab.review_status: gr.skip()}  # (an empty dict would read as one missing output value)
    try:
        kept = services.compare.save_offsets(current, detail["offsets"], may_see=_may_see(services, request))
    except (LabError, ValueError) as err:
        return {tab.review_status: f"Offsets not saved: {html.escape(str(err))}"}
    shown = ", ".join(f"{frames:+d}" for frames in kept.values() if frames) or "none"
    return {tab.review_status: f"Offsets saved ({shown} frames)"}


def _review_visible(services: AppServices, session: str):
    """May this session write a review of this run? (JournalView: their own, when history is scoped.)"""
    return lambda record: services.journal.run(session, record.task_id) is not None


def _take_name(current: list[str], record) -> str:
    """A take as the player names it ("Take D · seed 4"), not by the tail of an id a reviewer never sees."""
    name = f"Take {chr(ord('A') + current.index(record.task_id))}" if record.task_id in current else "The take"
    return name + (f" · seed {record.seed}" if record.seed is not None else "")


def review_action(services: AppServices, tab: CompareTab, current: list[str], action_text: str,
                  request: gr.Request) -> dict:
    """A comment or a status change from the review layer, journalled; the player gets the review back."""
    session = session_of(request)
    if not current:
        return {}
    try:
        action = json.loads(action_text or "{}")
        item = action.get("item") or {}
        record = services.journal.run(session, str(item.get("task_id") or ""))
        if record is None:
            raise ReviewFileError("That take is not in your history.")
        journal = ReviewJournal(services.compare.store)
        if action.get("op") == "comment":
            journal.add_comment(record, item, session=session)
            said = f"Comment on {_take_name(current, record)} saved."
        elif action.get("op") == "comment_event":
            change = journal.change_comment(record, item, session=session)
            said = f"Comment on {_take_name(current, record)} {'deleted' if change.kind == 'delete' else 'edited'}."
        elif action.get("op") == "status":
            event = journal.set_status(record, str(item.get("to")), author=str(item.get("author") or ""),
                                       session=session, event_id=item.get("id"))
            said = f"{_take_name(current, record)}: {STATUS_NAMES[event.status_to]}."
        elif action.get("op") == "rating":
            rating = item.get("rating")
            services.compare.store.set_review(record.task_id, rating=rating if rating in (1, -1) else None)
            said = {1: "👍 saved.", -1: "👎 saved."}.get(rating, "Rating cleared.")
        elif action.get("op") == "pick":
            services.compare.store.set_review(record.task_id, picked=bool(item.get("picked")))
            said = "Picked." if item.get("picked") else "No longer picked."
        else:
            raise ReviewFileError("unknown review action")
    except (ValueError, AttributeError, LabError) as err:
        gr.Warning(f"Not saved: {err}")
        said = f"Not saved: {html.escape(str(err))}"
    try:
        player = services.compare.review_player(current, may_see=_may_see(services, request))
    except LabError:
        return {tab.review_said: said}
    return {tab.player: player, tab.review_said: said}


def import_reviews(services: AppServices, tab: CompareTab, current: list[str], files: list[Any] | None,
                   request: gr.Request) -> dict:
    """Review files exported from a report: each merged whole in one transaction, or refused naming why."""
    session = session_of(request)
    journal = ReviewJournal(services.compare.store)
    lines = []
    for file in files or []:
        path = Path(getattr(file, "name", None) or str(file))
        name = html.escape(path.name)
        try:
            result = journal.import_text(path.read_bytes(), session=session, visible=_review_visible(services, session))
        except OSError as err:
            lines.append(f"- **{name}**: cannot read it ({html.escape(err.strerror or str(err))})")
            continue
        except LabError as err:
            lines.append(f"- **{name}**: refused, nothing written: {html.escape(str(err))}")
            continue
        lines.append(f"- **{name}**: {html.escape(result.message())}")
    out: dict = {tab.review_said: "\n".join(lines), tab.review_import: None}
    if current:
        try:
            out[tab.player] = services.compare.review_player(current, may_see=_may_see(services, request))
        except LabError:
            pass
    return out


def download_report(services: AppServices, tab: CompareTab, current: list[str], request: gr.Request) -> dict:
    if not current:
        return {tab.report: gr.update(visible=False), tab.report_status: "Open a comparison first."}
    try:
        archive, _data = services.compare.report_zip(current, may_see=_may_see(services, request))
    except LabError as err:
        return {tab.report: gr.update(visible=False),
                tab.report_status: f"**No report:** {html.escape(str(err))}"}
    return {tab.report: gr.update(value=str(archive), visible=True), tab.report_status: ""}


def api_compare(services: AppServices, ids: str, request: gr.Request,
                oauth_token: gr.OAuthToken | None) -> tuple[dict, str]:
    """Public: task or sweep ids (comma or space separated) -> (compare.json, the report as a ZIP)."""
    session = caller_of(services, request, oauth_token).session  # a token's account: its runs of any Client()
    try:
        archive, data = services.compare.report_zip(
            split_ids(ids or ""), may_see=functools.partial(services.journal.may_see, session))
    except CompareError as err:
        raise gr.Error(str(err), print_exception=False) from err
    except LabError as err:
        raise_for_ui(err)
    return data, str(archive)


COMPARE_DOC = ("Compare 2 to 12 of your runs (task or sweep ids, comma or space separated): returns compare.json "
               "(each run's effective request, what differs, reviews, SSIM of every pair) and the standalone report "
               "as a ZIP. Only your own runs: " + IDENTITY_NOTE)


# ---------------------------------------------------------------- events


def connect(identified: Any, tab: CompareTab, services: AppServices) -> None:
    """The tab's events; ``identified`` is the page's identify-on-load event (the list is the session's)."""
    listing = bind(list_choices, services, tab)
    identified.then(listing, None, tab.runs, **QUIET)  # only once the page is someone's
    tab.refresh.click(listing, None, tab.runs, **PRIVATE)
    opened = tab.open.click(bind(open_set, services, tab), [tab.runs, tab.ids], tab.opened, **PRIVATE)
    opened.then(bind(measure_set, services, tab), tab.current, {tab.player, tab.status}, **QUIET)
    tab.cell.change(bind(load_review, services, tab), tab.cell, {tab.rating, tab.note, tab.picked, tab.review_status},
                    **QUIET)
    tab.save.click(bind(save_review, services, tab), [tab.current, tab.cell, tab.rating, tab.note, tab.picked],
                   {tab.player, tab.review_status}, **PRIVATE)
    tab.player.submit(bind(save_offsets, services, tab), tab.current, tab.review_status, **QUIET)
    tab.download.click(bind(download_report, services, tab), tab.current, {tab.report, tab.report_status}, **PRIVATE)
    tab.review_send.click(bind(review_action, services, tab), [tab.current, tab.review_action],
                          {tab.player, tab.review_said}, **QUIET)
    tab.review_import.upload(bind(import_reviews, services, tab), [tab.current, tab.review_import],
                             {tab.player, tab.review_said, tab.review_import}, **PRIVATE)
    tab.api_button.click(bind(api_compare, services), tab.api_ids, [tab.api_json, tab.api_zip], api_name="compare",
                          api_description=COMPARE_DOC)


def connect_sweep(sweep: Any, tab: CompareTab, services: AppServices, tabs: Any) -> None:
    """The sweep grid's "Compare these": its finished sweep opens here, similarity after."""
    shown = sweep.compare.click(bind(compare_from, services, tab, tabs), sweep.sweep_ids,
                                {*tab.opened, tab.ids, tabs}, **progress_on(tab.opened), **PRIVATE)
    shown.then(bind(measure_set, services, tab), tab.current, {tab.player, tab.status}, **QUIET)


def connect_link(identified: Any, tab: CompareTab, services: AppServices, tabs: Any) -> None:
    """A copied link (#compare=ids&take=B&t=3.250) opens its set in this tab once the page is someone's."""
    shown = identified.then(bind(open_from_link, services, tab, tabs), tab.review_action,
                            {*tab.opened, tab.ids, tabs}, js=LINK_JS, **QUIET)
    shown.then(bind(measure_set, services, tab), tab.current, {tab.player, tab.status}, **QUIET)


def open_from_link(services: AppServices, tab: CompareTab, tabs: Any, location_hash: str | None,
                   request: gr.Request) -> dict:
    found = re.search(r"(?:^#|&)compare=([^&]+)", location_hash or "")
    if not found:  # most page loads: an empty dict would read as one missing output value (a logged ValueError)
        return {tab.status: gr.skip()}
    wanted = split_ids(unquote(found.group(1)).replace(",", " "))[:12]
    try:
        opened = services.compare.open(wanted, may_see=_may_see(services, request))
    except LabError as err:
        return {tab.status: f"**Cannot open the linked comparison:** {html.escape(str(err))}", tabs: gr.Tabs(selected="compare")}
    return {**_show(tab, opened, wanted), tab.ids: " ".join(wanted), tabs: gr.Tabs(selected="compare")}


def connect_history(history: Any, tab: CompareTab, services: AppServices, tabs: Any) -> None:
    """History's "Compare with parent": the selected run beside the run it was started from."""
    shown = history.compare_parent.click(bind(compare_with_parent, services, tab, tabs), history.choice,
                                         {*tab.opened, tab.ids, tabs}, **progress_on(tab.opened), **PRIVATE)
    shown.then(bind(measure_set, services, tab), tab.current, {tab.player, tab.status}, **QUIET)


def compare_with_parent(services: AppServices, tab: CompareTab, tabs: Any, task_id: str | None,
                        request: gr.Request) -> dict:
    record = services.journal.run(session_of(request), task_id) if task_id else None
    if record is None or not record.parent_task_id:
        raise gr.Error("Select a run that was started from another one.", print_exception=False)
    return compare_from(services, tab, tabs, [record.parent_task_id, record.task_id], request)


def compare_from(services: AppServices, tab: CompareTab, tabs: Any, ids: list[str] | str | None,
                 request: gr.Request) -> dict:
    """"Compare these" elsewhere (the sweep grid): open those ids here and show the tab."""
    wanted = split_ids(ids or [])
    try:
        opened = services.compare.open(wanted, may_see=_may_see(services, request))
    except LabError as err:
        return {tab.status: f"**Cannot compare:** {html.escape(str(err))}", tab.ids: " ".join(wanted),
                tabs: gr.Tabs(selected="compare")}
    return {**_show(tab, opened, wanted), tab.ids: " ".join(wanted), tabs: gr.Tabs(selected="compare")}
