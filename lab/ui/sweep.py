"""The "Seed sweep" tab: the single-run request × seeds (× prompt variants), a row per task."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from lab import params, presentation as pres, sweeps
from lab.errors import LabError, RequestInvalid
from lab.orchestrator import Orchestrator, new_sweep_id
from lab.sessions import SweepState
from lab.sweeps import SweepPlan
from lab.ui.events import (PRIVATE, QUIET, EditFollower, bind, caller_of, generation, progress_on, raise_for_ui,
                            session_of)
from lab.ui.single import PARENT, THUMB_COUNT, SingleTab, resolve_form, stop_waiting
from lab.waits import EventPump, StopWaiting
from lab.wiring import AppServices

STOP_KEY = "sweep"

CSS = """
.sweep-prompt p {font-size: 0.85em; color: var(--body-text-color); max-height: 9em; overflow-y: auto}
.sweep-row .task-id code {font-size: 0.85em}
.copy-task-id {font-size: 0.8em; padding: 0 6px; border: 1px solid var(--border-color-primary);
  border-radius: var(--radius-sm); background: var(--background-fill-secondary); cursor: pointer}
/* Whole frames at their aspect: the tile takes the image's shape instead of cropping it to a square,
   a portrait frame is kept whole within a bounded height, and the gallery is as tall as its tiles. */
.whole-frames .grid-wrap {min-height: 0 !important; height: auto !important; max-height: 480px}
.whole-frames .grid-container {grid-template-rows: none !important; grid-auto-rows: auto !important;
  align-items: start}
.whole-frames .thumbnail-item {aspect-ratio: auto !important; height: auto !important}
.whole-frames .thumbnail-item > img {height: auto !important; max-height: 180px; object-fit: contain !important}
@media (max-width: 640px) {
  .whole-frames .grid-container {grid-template-columns: repeat(3, minmax(0, 1fr)) !important}
}
"""

# Copies the full id behind a row's short one (the button carries it); a textarea for pages without the API.
COPY_TASK_ID_JS = """
element.addEventListener('click', async (event) => {
  const button = event.target.closest('button[data-task-id]');
  if (!button) return;
  const id = button.dataset.taskId;
  try {
    await navigator.clipboard.writeText(id);
  } catch (err) {
    const area = document.createElement('textarea');
    area.value = id;
    document.body.appendChild(area);
    area.select();
    document.execCommand('copy');
    area.remove();
  }
  button.textContent = 'Copied';
  setTimeout(() => { button.textContent = 'Copy id'; }, 1500);
});
"""

# Phones do not preload videos: without a poster a row is a blank box. The row's first thumbnail
# (5 % in: generated clips often open on black) becomes the poster as soon as it is there.
POSTER_JS = """
() => {
  if (window.labSweepPosters) return;
  window.labSweepPosters = true;
  let queued = false;
  const apply = () => {
    queued = false;
    document.querySelectorAll('.sweep-row').forEach((row) => {
      const video = row.querySelector('video');
      const first = row.querySelector('.sweep-thumbs img');
      if (video && first && first.src && video.getAttribute('poster') !== first.src) {
        video.setAttribute('poster', first.src);
      }
    });
  };
  new MutationObserver(() => {
    if (!queued) { queued = true; requestAnimationFrame(apply); }
  }).observe(document.body, {subtree: true, childList: true, attributes: true, attributeFilter: ['src']});
  apply();
}
"""

# How often the sweep on screen looks for its takes' pre-screens (a journal read) until all are in.
SCREEN_CHECK_S = 2.0


@dataclass
class SweepRow:
    """One task's row: label, its prompt variant, short task id, video, thumbnails and "Use this seed"."""

    row: Any
    label: Any
    prompt: Any
    task: Any
    video: Any
    gallery: Any
    use_seed: Any
    badges: Any = None  # the take's pre-screen badges (a click seeks this row's video)


@dataclass
class SweepTab:
    seeds: Any
    random_count: Any
    variants: Any
    estimate: Any
    run: Any
    stop: Any
    status: Any
    rows: list[SweepRow]
    sheet_image: Any
    sheet_download: Any
    zip_download: Any
    row_requests: Any  # State: each row's exact request body, for "Use this seed"
    compare: Any  # "Compare these": the finished sweep in the Compare tab
    sweep_ids: Any  # State: [the finished sweep's id]
    retry: Any = None  # "Retry failed": shown when the sweep on screen is over with failed/unsent rows
    shown: Any = None  # State: the id of the sweep on screen (run here, re-attached or reopened)
    screen: Any = None  # the pre-screen's summary, and the rows' order when sorted by it
    screen_watch: Any = None  # Timer: refills the badges until every saved take of the sweep is screened
    sort_best: Any = None  # "Takes with no issues found first": the grid's rows in pre-screen order

    @property
    def outputs(self) -> set:
        grid = {c for r in self.rows for c in (r.row, r.label, r.prompt, r.task, r.video, r.gallery, r.use_seed)}
        return grid | {self.status, self.sheet_image, self.sheet_download, self.zip_download, self.row_requests,
                       self.compare, self.sweep_ids, self.retry, self.shown}


def build(max_rows: int) -> SweepTab:
    """The tab's layout (call inside ``gr.Tab``)."""
    gr.Markdown(
        "The request from **Single run** × each seed, or × each prompt variant (one per line) × each seed. "
        "Tasks run at the same time; rows fill in as each one finishes."
    )
    with gr.Row():
        seeds = gr.Textbox(label="Seeds", value="1, 2, 3", placeholder="1, 2, 3")
        random_count = gr.Number(label="…plus N random seeds", value=0, precision=0, minimum=0, maximum=max_rows)
    variants = gr.Textbox(label="Prompt variants (one per line; empty: the form's prompt)", lines=3)
    estimate = gr.Markdown(elem_id="sweep-estimate")
    with gr.Row():
        run = gr.Button("Run sweep", variant="primary")
        stop = gr.Button(pres.BACKGROUND_BUTTON, variant="stop", elem_id="sweep-stop")
        retry = gr.Button("Retry failed", visible=False, elem_id="sweep-retry")
    status = gr.Markdown(elem_id="sweep-status")
    screen = gr.HTML("", elem_id="sweep-screen")
    sort_best = gr.Checkbox(label="Takes with no issues found first", value=False,
                            elem_id="sweep-sort-best", container=False)
    rows = []
    # One flex column of rows: "no issues first" reorders them with CSS order (lab.presentation.sweep_order_css).
    with gr.Column(elem_id="sweep-grid"):
        for i in range(max_rows):
            with gr.Row(visible=False, elem_classes=["sweep-row"], elem_id=f"sweep-row-{i}") as row:
                with gr.Column(scale=1, min_width=160):
                    label = gr.Markdown(elem_id=f"sweep-label-{i}")
                    prompt = gr.Markdown(elem_id=f"sweep-prompt-{i}", elem_classes=["sweep-prompt"])
                    task = gr.HTML(elem_id=f"sweep-task-{i}", js_on_load=COPY_TASK_ID_JS)
                    use_seed = gr.Button("Use this seed", size="sm", elem_id=f"use-seed-{i}")
                    badges = gr.HTML("", elem_id=f"sweep-badges-{i}")
                # No badge: it would cover the prompt burned into the frame's top edge (the heading names the row).
                video = gr.Video(label=f"Row {i + 1}", show_label=False, interactive=False, height=200, scale=2,
                                 buttons=["download"], elem_id=f"sweep-video-{i}")
                gallery = gr.Gallery(label="Thumbnails", show_label=False, columns=THUMB_COUNT, scale=5,
                                     interactive=False, object_fit="contain", buttons=[], elem_id=f"sweep-thumbs-{i}",
                                     elem_classes=["sweep-thumbs", "whole-frames"])
            rows.append(SweepRow(row, label, prompt, task, video, gallery, use_seed, badges))
    with gr.Row():
        # No label badge: it would cover the sheet's own title.
        sheet_image = gr.Image(label="Contact sheet", show_label=False, type="filepath", interactive=False, height=300)
        with gr.Column():
            sheet_download = gr.DownloadButton("Download contact sheet (PNG)", visible=False)
            zip_download = gr.DownloadButton("Download ZIP (videos, sheet, manifest)", visible=False)
            compare = gr.Button("Compare these", visible=False, elem_id="sweep-compare")
    return SweepTab(seeds, random_count, variants, estimate, run, stop, status, rows, sheet_image, sheet_download,
                    zip_download, gr.State([]), compare, gr.State([]), retry, gr.State(None), screen,
                    gr.Timer(SCREEN_CHECK_S, active=False), sort_best)


# ---------------------------------------------------------------- handlers


NEEDS_PROMPT = "Add a prompt on **Single run** first (or prompt variants here)."


def sweep_plan(runs: Orchestrator, tab: SweepTab, data: dict, form: tuple) -> tuple[SweepPlan | None, str | None]:
    """(the sweep's checked plan, None), or (None, why it cannot run, said once), for the form as resolved
    (``form``: ``resolve_form``'s answer, so its image is read once per event) and the sweep fields."""
    body, resolved, problem = form
    if problem:
        return None, problem
    try:
        if not sweeps.parse_variants(data[tab.variants], max_count=runs.max_sweep) and any(
                e.field == "prompt" and e.code == "required" for e in resolved.errors):
            return None, NEEDS_PROMPT
        return runs.plan_sweep(body, seeds_text=data[tab.seeds], random_count=data[tab.random_count],
                               variants_text=data[tab.variants], image=resolved.image), None
    except RequestInvalid as err:
        return None, str(err)


def estimate(services: AppServices, tab: SweepTab, single: SingleTab, data: dict) -> dict:
    """The sweep's size and worst-case cost, priced with the model the sweep will use (raw body's in raw mode).

    Run sweep is enabled only when the sweep can run; otherwise the estimate says why, once.
    """
    form = resolve_form(single.form.values(data))
    resolved = form[1]
    model = resolved.effective.get("model") if resolved is not None else None
    runs = services.runs
    try:
        count = runs.count_sweep(data[tab.seeds], data[tab.random_count], data[tab.variants])
    except RequestInvalid as err:
        return {tab.estimate: f"**Cannot run:** {err}", tab.run: gr.update(interactive=False)}
    why = sweep_plan(runs, tab, data, form)[1] if 0 < count <= runs.max_sweep else None
    if why:
        return {tab.estimate: f"**Cannot run:** {why}", tab.run: gr.update(interactive=False)}
    text = pres.sweep_estimate_text(model, count, runs.max_sweep, services.settings.max_concurrent_per_session)
    return {tab.estimate: text, tab.run: gr.update(interactive=0 < count <= runs.max_sweep)}


def _empty_grid(tab: SweepTab) -> dict:
    out: dict = {}
    for r in tab.rows:
        out.update({r.row: gr.update(visible=False), r.label: "", r.prompt: "", r.task: "",
                    r.video: gr.update(value=None, visible=True), r.gallery: gr.update(value=None, visible=True)})
    return out


def _media(row: SweepRow, view: pres.RowView) -> dict:
    """The row's player and thumbnails, hidden once its task is over without a video: empty, they were two
    blank boxes (about 460 px a row on a phone) under a row that says why it has none."""
    shown = view.video is not None or not view.finished
    return {row.video: gr.update(value=view.video, visible=shown),
            row.gallery: gr.update(value=view.thumbnails, visible=shown)}


def _row_update(row: SweepRow, view: pres.RowView) -> dict:
    """What a row shows of ``view`` while its task moves (nothing it already shows is taken away)."""
    update: dict = {row.label: view.label}
    if view.task_id:
        update[row.task] = pres.task_id_html(view.task_id)
    if view.video:
        update[row.video] = gr.update(value=view.video, visible=True)
    if view.thumbnails:
        update[row.gallery] = gr.update(value=view.thumbnails, visible=True)
    if view.finished and not view.video:
        update.update(_media(row, view))
    return update


# ---------------------------------------------------------------- the grid from the journal


def _grid(tab: SweepTab, state: SweepState, seen: dict | None, takes: dict | None = None) -> tuple[dict, dict]:
    """Updates for the rows that changed since ``seen`` (None: all), and what they show now.

    ``takes``: the rows' reviews (task id -> lab.review TakeReview): a reviewed take's status goes on a line
    under its row's heading ("✓ Approved · 1 comment"), as on its Compare cell and History tile."""
    seen = dict(seen or {})
    out: dict = {}
    shown = pres.sweep_headings([(c.label, c.body) for c in state.cells])
    for i, row in enumerate(tab.rows):
        if i >= len(state.cells):
            if seen.get(str(i)) != "hidden":
                out.update({row.row: gr.update(visible=False), row.label: "", row.prompt: "", row.task: "",
                            row.video: None, row.gallery: None})
                seen[str(i)] = "hidden"
            continue
        heading, variant_text = shown[i]
        cell = state.cells[i]
        record = cell.record
        view = pres.sweep_row(i, heading, record, running=state.running, problem=cell.problem,
                              outcome_unknown=cell.outcome_unknown)
        review = pres.review_status_text((takes or {}).get(record.task_id)) if record is not None else ""
        label = f"{view.label}  \n{review}" if review else view.label  # (a Markdown line break)
        signature = f"{label}|{view.video}|{len(view.thumbnails or [])}"
        if seen.get(str(i)) == signature:
            continue
        seen[str(i)] = signature
        out.update({row.row: gr.update(visible=True), row.label: label, **_media(row, view),
                    row.task: pres.task_id_html(view.task_id),
                    row.prompt: pres.literal_markdown(variant_text) if variant_text else "",
                    row.use_seed: gr.update(value="Use this prompt + seed" if variant_text else "Use this seed")})
    return out, seen


def show_sweep(services: AppServices, tab: SweepTab, state: SweepState, seen: dict | None) -> tuple[dict, dict]:
    """The whole tab for a sweep as the journal has it: status, the rows that changed since ``seen`` (None: all),
    and once it is over its sheet, ZIP and Retry failed. The one way a sweep is shown when its run or retry
    ends, when a reloaded page re-attaches to it and when History reopens it."""
    takes = services.journal.take_reviews([c.record for c in state.cells if c.record is not None])
    out, seen = _grid(tab, state, seen, takes)
    done = sum(1 for c in state.cells if c.finished)
    out.update({tab.shown: state.sweep_id, tab.row_requests: [dict(c.body) for c in state.cells]})
    if state.running:
        out[tab.status] = (f"Re-attached to sweep `{state.sweep_id}`: {done}/{len(state.cells)} finished; "
                           "rows fill in from the journal.")
        out[tab.retry] = gr.update(visible=False)
        return out, seen
    saved = sum(1 for c in state.cells if c.record is not None and c.record.status == "saved")
    cost = sum((c.record.cost_usd or 0.0) for c in state.cells if c.record is not None)
    out[tab.status] = (f"**Sweep** `{state.sweep_id}`: {saved} of {len(state.cells)} saved · "
                       f"**cost** {pres.money(cost)}" + (f" · {state.open_cells} still unfinished"
                                                         if state.open_cells else ""))
    zip_path = services.runs.sweep_zip(state.sweep_id)
    sheet = state.contact_sheet if state.contact_sheet and Path(state.contact_sheet).is_file() else None
    out.update({
        tab.sheet_image: sheet,
        tab.sheet_download: gr.update(value=sheet, visible=sheet is not None),
        tab.zip_download: gr.update(value=str(zip_path) if zip_path else None, visible=zip_path is not None),
        tab.retry: gr.update(visible=bool(state.retry_cells())),
    })
    return out, seen


# ---------------------------------------------------------------- running a plan: a sweep, or a retry of its rows


def _follow(services: AppServices, stops: StopWaiting, tab: SweepTab, plan: SweepPlan, headings: dict[int, str], *,
            session: str, person: str | None, sweep_id: str, visitor_key: str | None, head: str):
    """Run ``plan`` into ``sweep_id``, each row (``plan``'s items name their rows) read from its task's journal
    record as it moves. Yields updates; returns the pump, or None when the page stopped waiting.

    ``person`` (``lab.people``): whose daily cap and submit rate the run counts against."""
    items = plan.items
    with stops.running((session, STOP_KEY)) as started:
        pump = EventPump(lambda on_event: services.runs.run_sweep(plan, session=session, person=person,
                                                                   on_event=on_event, visitor_key=visitor_key,
                                                                   sweep_id=sweep_id))
        finished = 0
        for event in pump:
            update: dict = {}
            if event is not None and getattr(event, "index", None) is not None and event.index < len(items):
                row = items[event.index].index
                done = event.kind == "done"  # the row's wait is over
                finished += done
                view = pres.sweep_row(row, headings[row], event.record, running=not done,
                                      problem=event.message if done and event.record is None else None)
                update = _row_update(tab.rows[row], view)
            if stops.stop_requested((session, STOP_KEY), started):
                yield {**update, tab.status: pres.stopped_waiting_text(None, sweep=True)}
                return None
            elapsed = pres.format_seconds(stops.now() - started)
            yield {**update, tab.status: f"{head} {finished}/{len(items)} finished · elapsed {elapsed}"}
    return pump


def _ended(services: AppServices, tab: SweepTab, session: str, outcome: pres.SweepOutcome, status: str) -> dict:
    """The tab once a run or a retry is over: the journal's view of the whole sweep, and Compare these."""
    state = services.journal.sweep(session, outcome.sweep_id)
    out, _ = show_sweep(services, tab, state, None) if state is not None else ({}, {})
    out.update({tab.status: status, tab.compare: gr.update(visible=len(outcome.results) >= 2),
                tab.sweep_ids: [outcome.sweep_id]})
    return out


def run_sweep(services: AppServices, stops: StopWaiting, tab: SweepTab, single: SingleTab, key: Any, data: dict,
              request: gr.Request):
    """Run the sweep, filling each row as its task moves; stops waiting (not the tasks) when asked."""
    caller = caller_of(services, request)
    session = caller.session
    # Run sweep is disabled while the estimate names a problem; a click that gets here anyway is told the
    # same one sentence in the status, not a popup per seed.
    plan, why = sweep_plan(services.runs, tab, data, resolve_form(single.form.values(data)))
    if why:
        yield {tab.status: f"**Cannot run:** {why}"}
        return
    items = plan.items
    hidden_downloads = {tab.sheet_image: None, tab.sheet_download: gr.update(visible=False),
                        tab.zip_download: gr.update(visible=False), tab.compare: gr.update(visible=False)}
    shown = pres.sweep_headings([(item.label, item.body) for item in items])
    grid = _empty_grid(tab)
    for item, (heading, variant_text) in zip(items, shown):
        row = tab.rows[item.index]
        grid.update({
            row.row: gr.update(visible=True), row.label: pres.sweep_row(item.index, heading, None, running=True).label,
            row.prompt: pres.literal_markdown(variant_text) if variant_text else "",
            row.use_seed: gr.update(value="Use this prompt + seed" if variant_text else "Use this seed"),
        })
    cost = params.sweep_price_usd(plan.resolutions[0].effective["model"], len(items))
    head = f"Running {len(items)} tasks (up to ${cost:.2f})." if cost is not None else ""
    sweep_id = new_sweep_id()  # known before it runs: a reloaded page re-attaches to it
    yield {tab.status: head, **grid, **hidden_downloads, tab.row_requests: [dict(item.body) for item in items],
           tab.shown: sweep_id, tab.retry: gr.update(visible=False)}
    pump = yield from _follow(services, stops, tab, plan, {item.index: h for item, (h, _) in zip(items, shown)},
                              session=session, person=caller.person, sweep_id=sweep_id, visitor_key=data[key],
                              head=head)
    if pump is None:
        return
    if isinstance(pump.error, LabError):
        note = pres.failure_note(pump.error)
        yield {tab.status: f"**Not run.** {note}", **_empty_grid(tab), **hidden_downloads, tab.row_requests: []}
        raise gr.Error(note, print_exception=False)
    if pump.error is not None:
        raise pump.error
    outcome: pres.SweepOutcome = pump.result
    yield _ended(services, tab, session, outcome, outcome.summary_markdown())


def retry_failed(services: AppServices, stops: StopWaiting, tab: SweepTab, key: Any, data: dict,
                 request: gr.Request):
    """Run the shown sweep's failed and never-sent rows again, with their exact requests, into the same rows."""
    caller = caller_of(services, request)
    session, sweep_id = caller.session, data[tab.shown]
    if not sweep_id:
        raise gr.Error("No sweep on screen to retry.", print_exception=False)
    try:
        plan = services.runs.retry_plan(sweep_id, session)
        state = services.journal.sweep(session, sweep_id)
    except LabError as err:
        raise_for_ui(err)
    if plan is None or state is None:
        yield {tab.status: "Nothing to retry: every row is saved or still unfinished.",
               tab.retry: gr.update(visible=False)}
        return
    shown = pres.sweep_headings([(c.label, c.body) for c in state.cells])
    headings = {item.index: shown[item.index][0] for item in plan.items}
    waiting: dict = {}
    for row, heading in headings.items():
        view = pres.sweep_row(row, heading, None, running=True)
        waiting.update({tab.rows[row].label: view.label + " (retry)", **_media(tab.rows[row], view)})
    head = f"Retrying {len(plan.items)} row(s) of `{sweep_id}`."
    yield {tab.status: head, **waiting, tab.retry: gr.update(visible=False)}
    pump = yield from _follow(services, stops, tab, plan, headings, session=session, person=caller.person,
                              sweep_id=sweep_id, visitor_key=data[key], head=head)
    if pump is None:
        return
    if isinstance(pump.error, LabError):
        note = pres.failure_note(pump.error)
        yield {tab.status: f"**Not retried.** {note}", tab.retry: gr.update(visible=True)}
        raise gr.Error(note, print_exception=False)
    if pump.error is not None:
        raise pump.error
    outcome: pres.SweepOutcome = pump.result
    yield _ended(services, tab, session, outcome, "Retried. " + outcome.summary_markdown())


def watch_screens(sweep_id: str | None) -> Any:
    """A sweep came on screen: follow its takes' pre-screens."""
    return gr.Timer(active=bool(sweep_id))


def show_screens(services: AppServices, tab: SweepTab, sweep_id: str | None, best_first: bool | None,
                 request: gr.Request) -> dict:
    """Each row's badges and the summary; with ``best_first`` the grid's rows in pre-screen order (a CSS
    order: the players keep playing). The timer stops once the sweep is over and every take is screened."""
    state = services.journal.sweep(session_of(request), sweep_id) if sweep_id else None
    if state is None:
        return {tab.screen: "", tab.screen_watch: gr.Timer(active=False),
                **{row.badges: "" for row in tab.rows}}
    records = [cell.record for cell in state.cells if cell.record is not None]
    found = pres.sweep_screen([(cell.index, cell.record) for cell in state.cells], services.journal.screens(records),
                              prescreen=services.settings.prescreen)
    summary = f'<div class="lab-sweep-screen">{found.summary}</div>' if found.summary else ""
    return {tab.screen: summary + (pres.sweep_order_css(found.order) if best_first else ""),
            tab.screen_watch: gr.Timer(active=found.waiting or state.running),
            **{row.badges: found.badges.get(index, "") for index, row in enumerate(tab.rows)}}


def use_seed(services: AppServices, single: SingleTab, tabs: Any, index: int, row_requests: list,
             sweep_id: str | None, request: gr.Request) -> dict:
    """Carry a row's exact request (its prompt variant and seed) back into the single-run form and show it.

    The row's task becomes the form's parent: the next Generate journals where it came from.
    """
    if index >= len(row_requests or []):
        return {}
    state = services.journal.sweep(session_of(request), sweep_id) if sweep_id else None
    cell = state.cells[index] if state is not None and index < len(state.cells) else None
    parent = cell.record.task_id if cell is not None and cell.record is not None else None
    return {**single.form.updates({**pres.form_from_body(row_requests[index]), PARENT: parent}),
            tabs: gr.Tabs(selected="single")}


# ---------------------------------------------------------------- events


def estimate_inputs(tab: SweepTab, single: SingleTab) -> frozenset:
    """What a sweep is planned from: its seeds and variants, and the request form."""
    return frozenset({tab.seeds, tab.random_count, tab.variants, *single.form.components})


def edit_follower(tab: SweepTab, single: SingleTab, services: AppServices) -> EditFollower:
    """The estimate follows every edit of the sweep's fields and of the request form."""
    inputs = estimate_inputs(tab, single)
    return EditFollower(bind(estimate, services, tab, single), inputs, inputs, frozenset({tab.estimate, tab.run}))


def connect(demo: gr.Blocks, tab: SweepTab, single: SingleTab, services: AppServices, stops: StopWaiting,
            visitor_key: Any, tabs: Any) -> list:
    """The tab's events; returns those that spend (Run sweep, Retry failed: the shell refreshes the banner and
    History after them)."""
    planned = estimate_inputs(tab, single)
    demo.load(bind(estimate, services, tab, single), planned, {tab.estimate, tab.run}, **QUIET)
    swept = tab.run.click(
        bind(run_sweep, services, stops, tab, single, visitor_key),
        inputs={*planned, visitor_key}, outputs=tab.outputs, show_progress="minimal", **progress_on(tab.outputs),
        **generation(services.settings.max_concurrent_total), **PRIVATE,
    )
    retried = tab.retry.click(bind(retry_failed, services, stops, tab, visitor_key), {tab.shown, visitor_key},
                              tab.outputs, show_progress="minimal", **progress_on(tab.outputs),
                              **generation(services.settings.max_concurrent_total), **PRIVATE)
    tab.stop.click(bind(stop_waiting, stops, STOP_KEY), None, tab.status, queue=False, **QUIET)
    form_outputs = {*single.form.outputs, tabs}
    for index, row in enumerate(tab.rows):
        row.use_seed.click(bind(use_seed, services, single, tabs, index), [tab.row_requests, tab.shown], form_outputs,
                           **progress_on(form_outputs), **PRIVATE)
    demo.load(None, None, None, js=POSTER_JS, **PRIVATE)
    tab.shown.change(watch_screens, tab.shown, tab.screen_watch, **QUIET)
    screens = bind(show_screens, services, tab)
    screen_outputs = {tab.screen, tab.screen_watch, *(row.badges for row in tab.rows)}
    tab.screen_watch.tick(screens, [tab.shown, tab.sort_best], screen_outputs, **QUIET)
    tab.sort_best.change(screens, [tab.shown, tab.sort_best], screen_outputs, **QUIET)
    return [swept, retried]
