"""The "History" tab: the journal as a table and a gallery; a run loads back into the form or runs again."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from lab import presentation as pres
from lab.errors import LabError
from lab.ui.badges import legend_markdown
from lab.ui.events import PRIVATE, bind, progress_on, raise_for_ui, session_of
from lab.ui.single import PARENT, SingleTab, generate_event
from lab.waits import StopWaiting
from lab.wiring import AppServices

NOTHING_SELECTED = "Select a run above."
FILTER_DEBOUNCE_MS = 300

CSS = """
/* Small tiles (whole frames, from the sweep tab's "whole-frames"), the caption under the picture
   in full: short lines that wrap instead of one line cut with an ellipsis over the image. */
#history-gallery .caption-label {position: static !important; max-width: none !important; opacity: 1 !important;
  white-space: pre-line !important; overflow: visible !important; text-overflow: clip !important;
  border: none !important; border-radius: 0 !important; background: none !important;
  font-size: 0.75em; line-height: 1.3; padding: 2px 4px !important; text-align: left}
"""

DISMISS_LABEL = "I checked my APIYI account: stop listing these"
# Filter as the user types: the listing runs once typing pauses (a click on Refresh), not per keystroke.
FILTER_AS_YOU_TYPE_JS = f"""
() => {{
  clearTimeout(window.labHistoryFilterTimer);
  window.labHistoryFilterTimer = setTimeout(
    () => document.getElementById('history-refresh')?.click(), {FILTER_DEBOUNCE_MS});
}}
"""


# when, prompt, status, cost, took, model, res., aspect, dur., seed, review, pre-screen, task id: 1210 px,
# all of it on a desktop (1216 px). "when" and the prompt together fit a phone's 326 px; the task id wraps once.
# review: 110 px, so "✎ Changes requested" breaks between its words (at 90 px "requested" broke mid-word).
HISTORY_COLUMN_WIDTHS = ["90px", "200px", "90px", "65px", "55px", "70px", "60px", "70px", "50px", "100px",
                         "110px", "105px", "145px"]


@dataclass
class HistoryTab:
    filter: Any
    refresh: Any
    gallery: Any
    table: Any
    selected: Any
    video: Any
    load: Any
    rerun: Any
    ids: Any  # State: {"table": [task ids], "gallery": [task ids], "sweeps": [sweep ids]}
    choice: Any  # State: the selected task id
    sweeps: Any = None  # the sweeps, one group per row
    open_sweep: Any = None  # "Open in sweep grid"
    sweep_choice: Any = None  # State: the selected sweep id
    empty: Any = None  # "No runs match …" when the filter leaves nothing
    attention: Any = None  # submits whose outcome is unknown (may be billed)
    dismiss: Any = None  # "I checked my account": stop listing those submits
    attention_ids: Any = None  # State: the request ids the notice lists (what dismiss dismisses)
    review_filter: Any = None  # only takes with this review status ("all": any)
    issues_only: Any = None  # "Only takes with no issues found" (the pre-screen's)
    badges: Any = None  # the selected take's pre-screen badges (a click seeks its video)
    lineage: Any = None  # where the selected run came from and what came from it
    compare_parent: Any = None  # "Compare with parent"

    @property
    def filters(self) -> list:
        """What every listing reads (list_runs' query, review_status and issues_only), in that order."""
        return [self.filter, self.review_filter, self.issues_only]

    @property
    def listing(self) -> set:
        return {self.table, self.gallery, self.ids, self.sweeps, self.empty, self.attention, self.dismiss,
                self.attention_ids}


def build(prescreen: bool = True) -> HistoryTab:
    """The tab's layout (call inside ``gr.Tab``); ``prescreen``: the lab's setting (the filter's note)."""
    with gr.Row():
        query = gr.Textbox(label="Filter by prompt text", scale=3, elem_id="history-filter",
                           placeholder="Type to filter, e.g. lighthouse")
        review_filter = gr.Dropdown([("Any review status", "all"), ("Needs review", "needs_review"),
                                     ("Approved", "approved"), ("Changes requested", "changes_requested"),
                                     ("Rejected", "rejected")], value="all", label="Review status", scale=2,
                                    min_width=160, elem_id="history-review-filter")
        issues_only = gr.Checkbox(label=pres.NO_ISSUES_LABEL, info=pres.no_issues_info(prescreen), value=False,
                                  scale=1, min_width=160, elem_id="history-no-issues")
        refresh = gr.Button("Refresh", scale=1, elem_id="history-refresh")
    attention = gr.Markdown(elem_id="history-attention")
    dismiss = gr.Button(DISMISS_LABEL, size="sm", visible=False, elem_id="history-dismiss")
    empty = gr.Markdown(elem_id="history-empty")
    # No label badge: it would cover the first tile (the captions say what each tile is).
    gallery = gr.Gallery(label="Runs, newest first", show_label=False, columns=8, fit_columns=False,
                         allow_preview=False, interactive=False, object_fit="contain", buttons=[],
                         elem_id="history-gallery",
                         elem_classes=["whole-frames"])
    table = gr.Dataframe(
        headers=pres.HISTORY_HEADERS,
        # Fixed pixel widths that add up to a desktop container (1190 px of its 1216): every column shows
        # there, the prompt wraps between words, and a phone scrolls the table sideways rather than
        # squeezing the prompt into a sliver (percentages did: 84 px at 390 px, words broken mid-word).
        column_widths=HISTORY_COLUMN_WIDTHS,
        interactive=False, wrap=True, label="Journal", elem_id="history-table",
    )
    with gr.Row():
        # Wider minimums than a phone's column holds: there the video goes under the details, full width.
        with gr.Column(min_width=320):
            selected = gr.Markdown(NOTHING_SELECTED, elem_id="history-detail")
            lineage = gr.Markdown(elem_id="history-lineage")
        with gr.Column(min_width=320):
            video = gr.Video(label="Selected run", interactive=False, height=240, elem_id="history-video")
            badges = gr.HTML("", elem_id="history-badges")
    with gr.Row():
        load = gr.Button("Load into form")
        rerun = gr.Button("Re-run")
        compare_parent = gr.Button("Compare with parent", visible=False, elem_id="history-compare-parent")
    with gr.Accordion("What the pre-screen badges mean", open=False):
        gr.Markdown(legend_markdown())
    with gr.Row():
        sweeps_table = gr.Dataframe(headers=pres.SWEEP_HEADERS, interactive=False, label="Sweeps (select one)",
                                    elem_id="history-sweeps", scale=4)
        open_sweep = gr.Button("Open in sweep grid", scale=1, elem_id="history-open-sweep")
    return HistoryTab(query, refresh, gallery, table, selected, video, load, rerun, gr.State({}), gr.State(None),
                      sweeps_table, open_sweep, gr.State(None), empty, attention, dismiss, gr.State([]), review_filter,
                      issues_only, badges, lineage, compare_parent)


# ---------------------------------------------------------------- handlers


def list_runs(services: AppServices, tab: HistoryTab, query: str | None, request: gr.Request,
              review_status: str | None = None, issues_only: bool | None = None) -> dict:
    session = session_of(request)
    records = services.journal.runs(session, query, review_status=review_status if review_status != "all" else None,
                                    no_issues=bool(issues_only))
    view = pres.history_view(records, services.journal.reviews(records), services.journal.take_reviews(records),
                             services.journal.screens(records), prescreen=services.settings.prescreen)
    groups = services.journal.sweeps(session)
    unknown = services.journal.unknown_outcomes(session)
    return {tab.table: view.rows, tab.gallery: view.gallery, tab.sweeps: pres.sweep_rows(groups),
            tab.ids: {"table": view.table_ids, "gallery": view.gallery_ids, "sweeps": [g.sweep_id for g in groups]},
            tab.empty: pres.history_empty_text(query, len(view.rows), issues_only=bool(issues_only),
                                               prescreen=services.settings.prescreen),
            tab.attention: pres.unknown_outcomes_text(unknown), tab.dismiss: gr.update(visible=bool(unknown)),
            tab.attention_ids: [intent.request_id for intent in unknown]}


def dismiss_unknown(services: AppServices, tab: HistoryTab, request_ids: list[str], query: str | None,
                    request: gr.Request, review_status: str | None = None, issues_only: bool | None = None) -> dict:
    """Only the submits the notice listed when clicked: one that turned unknown since stays listed."""
    services.journal.dismiss_unknown(session_of(request), request_ids or [])
    return list_runs(services, tab, query, request, review_status, issues_only)


def select_sweep(ids: dict, evt: gr.SelectData) -> str | None:
    index = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
    chosen = (ids or {}).get("sweeps", [])
    return chosen[index] if index is not None and index < len(chosen) else None


def select_run(services: AppServices, tab: HistoryTab, which: str, ids: dict, evt: gr.SelectData,
               request: gr.Request) -> dict:
    """A click in the table or the gallery selects that run."""
    index = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
    chosen = (ids or {}).get(which, [])
    if index is None or index >= len(chosen):
        return {tab.choice: None, tab.selected: NOTHING_SELECTED, tab.video: None, tab.badges: "", tab.lineage: "",
                tab.compare_parent: gr.update(visible=False)}
    task_id = chosen[index]
    try:
        session = session_of(request)
        record = services.journal.require(session, task_id)
        take = services.journal.take_reviews([record]).get(task_id)
        parents = services.journal.ancestors(session, task_id)
        children = services.journal.children(session, task_id)
        screen = services.journal.screens([record]).get(task_id)
        saved = record.status == "saved"
        return {tab.choice: task_id, tab.selected: pres.history_detail(record) + pres.review_detail(take),
                tab.video: services.journal.video(session, task_id),
                tab.badges: pres.badges_html(screen, "#history-video video", prescreen=services.settings.prescreen)
                if saved else "",
                tab.lineage: pres.lineage_markdown(record, parents, children),
                tab.compare_parent: gr.update(visible=bool(saved and parents and parents[0].status == "saved"))}
    except LabError as err:
        raise_for_ui(err)


def to_form(services: AppServices, single: SingleTab, tabs: Any, task_id: str | None, request: gr.Request) -> dict:
    """The selected run's body as the user wrote it, back in the single-run form."""
    if not task_id:
        raise gr.Error("Select a run in the history first.", print_exception=False)
    try:
        body = services.journal.body(session_of(request), task_id)
    except LabError as err:
        raise_for_ui(err)
    # The next Generate journals this run as its parent, with the fields the user changed.
    return {**single.form.updates({**pres.form_from_body(body), PARENT: task_id}), tabs: gr.Tabs(selected="single")}


# ---------------------------------------------------------------- events


def connect(tab: HistoryTab, single: SingleTab, services: AppServices, stops: StopWaiting,
            visitor_key: Any, tabs: Any) -> Any:
    """The tab's events; returns the Re-run's generate event (the shell refreshes the banner after it)."""
    listing = bind(list_runs, services, tab)
    filters = tab.filters
    tab.refresh.click(listing, filters, tab.listing, trigger_mode="always_last", **PRIVATE)
    tab.review_filter.change(listing, filters, tab.listing, trigger_mode="always_last", **PRIVATE)
    tab.issues_only.change(listing, filters, tab.listing, trigger_mode="always_last", **PRIVATE)
    tab.sweeps.select(select_sweep, tab.ids, tab.sweep_choice, **PRIVATE)
    tab.filter.submit(listing, filters, tab.listing, **PRIVATE)
    tab.dismiss.click(bind(dismiss_unknown, services, tab), [tab.attention_ids, *filters], tab.listing, **PRIVATE)
    # change, not input: a paste or autofill filters too (nothing else writes to the box).
    tab.filter.change(None, None, None, js=FILTER_AS_YOU_TYPE_JS, **PRIVATE)
    for which, source in (("table", tab.table), ("gallery", tab.gallery)):
        source.select(bind(select_run, services, tab, which), tab.ids,
                      {tab.choice, tab.selected, tab.video, tab.badges, tab.lineage, tab.compare_parent}, **PRIVATE)
    form_outputs = {*single.form.outputs, tabs}
    to_form_event = {"inputs": tab.choice, "outputs": form_outputs, **progress_on(form_outputs), **PRIVATE}
    tab.load.click(bind(to_form, services, single, tabs), **to_form_event)
    loaded = tab.rerun.click(bind(to_form, services, single, tabs), **to_form_event)
    return generate_event(loaded.then, services, stops, single, visitor_key)
