"""A visitor's session across reloads: identity, the draft form, re-attaching to work in flight, live history.

On load the page's visitor is identified (``lab.sessions.session_identity``:
the signed-in Hugging Face user, else the id this browser keeps in
``gr.BrowserState``) and bound to the page, so every handler's
``session_of(request)`` names the same session after a reload. Then the draft
form comes back, and the session's sweep or single run is shown again: while
it is in flight a ``gr.Timer`` keeps filling it from the journal, without a
click. History refreshes when its tab is opened and when a run of this
session finishes; any sweep reopens in the sweep grid; a finished sweep's
failed and unsent rows can be retried into the same grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from lab import presentation as pres
from lab.errors import LabError
from lab.sessions import SweepState, session_identity
from lab.store import FINISHED_STATUSES
from lab.settings import Settings
from lab.ui import history as history_tab
from lab.ui.events import INSTANT, PAGES, PRIVATE, bind, caller_of, generation, raise_for_ui, session_of
from lab.ui.history import HistoryTab
from lab.ui.single import SingleTab
from lab.ui.sweep import SweepTab
from lab.waits import EventPump
from lab.wiring import AppServices

# Not a secret: gr.BrowserState encrypts in the page with a key the page holds. It only keeps
# the stored value stable across restarts; the id itself is checked (lab.sessions).
BROWSER_STATE_SECRET = "veo-prompt-lab-session"
TICK_S = 1.0


@dataclass
class SessionParts:
    browser_id: Any  # BrowserState: this browser's session id
    draft: Any  # BrowserState: the form as the visitor left it
    ticker: Any  # Timer: fills re-attached work from the journal
    attached: Any  # State: {"kind": "sweep"|"single", "ref": id} being filled, or None
    seen: Any  # State: what each sweep row last showed (only changes are sent)
    login: Any = None  # LoginButton where the Space enables Hugging Face sign-in


def build(settings: Settings) -> SessionParts:
    """The session's invisible parts (and the sign-in button on a Space with ``hf_oauth: true``)."""
    login = gr.LoginButton(size="sm") if settings.hf_oauth else None
    return SessionParts(
        browser_id=gr.BrowserState(None, storage_key="veo-lab-session", secret=BROWSER_STATE_SECRET),
        draft=gr.BrowserState(None, storage_key="veo-lab-draft", secret=BROWSER_STATE_SECRET),
        ticker=gr.Timer(TICK_S, active=False),
        attached=gr.State(None),
        seen=gr.State({}),
        login=login,
    )


# ---------------------------------------------------------------- identity and draft


def identify(stored: Any, profile: gr.OAuthProfile | None, request: gr.Request) -> str:
    """Bind this page to its visitor; returns the id the browser keeps (new for a new browser)."""
    username = getattr(profile, "username", None) if profile is not None else None
    identity, keep = session_identity(stored, username)
    if request is not None and request.session_hash:
        PAGES.bind(request.session_hash, identity)
    return keep


def draft_fields(single: SingleTab, sweep: SweepTab) -> dict[str, Any]:
    """The components a draft keeps, by name: the request form and the sweep's seeds and variants."""
    return {**single.form.fields, "sweep_seeds": sweep.seeds, "sweep_random": sweep.random_count,
            "sweep_variants": sweep.variants}


def save_draft(fields: dict[str, Any], data: dict) -> dict:
    return {name: data[component] for name, component in fields.items()}


def restore_draft(fields: dict[str, Any], single: SingleTab, draft: Any) -> dict:
    """The form as the visitor left it (nothing when this browser has no draft)."""
    if not isinstance(draft, dict):
        return {single.form.group: gr.skip()}  # (an empty dict would read as one output value)
    out = {component: draft[name] for name, component in fields.items() if name in draft}
    if "raw_mode" in draft:
        out[single.form.group] = gr.update(visible=not draft["raw_mode"])
        out[single.form.fields["raw_body"]] = gr.update(visible=bool(draft["raw_mode"]),
                                                        value=draft.get("raw_body") or "")
        # A hidden editor's text is not what the visitor last worked on: raw mode rebuilds it from the form.
        out[single.form.raw_origin] = "" if draft["raw_mode"] else (draft.get("raw_body") or "")
    return out


# ---------------------------------------------------------------- the sweep grid from the journal


def _grid(sweep: SweepTab, state: SweepState, seen: dict | None) -> tuple[dict, dict]:
    """Updates for the rows that changed since ``seen`` (None: all), and what they show now."""
    seen = dict(seen or {})
    out: dict = {}
    prompts = {str(c.body.get("prompt")) for c in state.cells}  # several: a variant sweep shows each row's text
    for i, row in enumerate(sweep.rows):
        if i >= len(state.cells):
            if seen.get(str(i)) != "hidden":
                out.update({row.row: gr.update(visible=False), row.label: "", row.prompt: "", row.task: "",
                            row.video: None, row.gallery: None})
                seen[str(i)] = "hidden"
            continue
        cell = state.cells[i]
        shown = pres.journal_sweep_cell(i, cell.label, cell.record, running=state.running)
        signature = f"{shown.label}|{shown.video}|{len(shown.thumbnails or [])}"
        if seen.get(str(i)) == signature:
            continue
        seen[str(i)] = signature
        prompt = cell.body.get("prompt") if len(prompts) > 1 else None
        out.update({row.row: gr.update(visible=True), row.label: shown.label, row.video: shown.video,
                    row.gallery: shown.thumbnails, row.task: pres.task_id_html(shown.task_id),
                    row.prompt: pres.literal_markdown(prompt) if isinstance(prompt, str) else ""})
    return out, seen


def _sweep_view(services: AppServices, sweep: SweepTab, state: SweepState, seen: dict | None) -> tuple[dict, dict]:
    """The whole sweep tab for ``state``: status, rows, and once it is over the sheet, ZIP and Retry."""
    out, seen = _grid(sweep, state, seen)
    done = sum(1 for c in state.cells if c.finished)
    out.update({sweep.shown: state.sweep_id, sweep.row_requests: [dict(c.body) for c in state.cells]})
    if state.running:
        out[sweep.status] = (f"Re-attached to sweep `{state.sweep_id}`: {done}/{len(state.cells)} finished; "
                             "rows fill in from the journal.")
        out[sweep.retry] = gr.update(visible=False)
        return out, seen
    saved = sum(1 for c in state.cells if c.record is not None and c.record.status == "saved")
    cost = sum((c.record.cost_usd or 0.0) for c in state.cells if c.record is not None)
    out[sweep.status] = (f"**Sweep** `{state.sweep_id}`: {saved} of {len(state.cells)} saved · "
                         f"**cost** {pres.money(cost)}" + (f" · {state.open_cells} still unfinished"
                                                           if state.open_cells else ""))
    zip_path = services.runs.sweep_zip(state.sweep_id)
    sheet = state.contact_sheet if state.contact_sheet and Path(state.contact_sheet).is_file() else None
    out.update({
        sweep.sheet_image: sheet,
        sweep.sheet_download: gr.update(value=sheet, visible=sheet is not None),
        sweep.zip_download: gr.update(value=str(zip_path) if zip_path else None, visible=zip_path is not None),
        sweep.retry: gr.update(visible=bool(state.retry_cells())),
    })
    return out, seen


def _single_view(single: SingleTab, record: Any, *, in_flight: bool) -> dict:
    if in_flight:
        stage = pres.stage_for_event("status", record.status) or "rendering"
        return {single.progress: pres.stage_markdown(stage, 0, None, record.task_id,
                                                     "Re-attached: it fills in from the journal.")}
    outcome = {single.progress: pres.history_detail(record).split("\n\n")[0], single.summary: ""}
    if record.status == "saved":
        outcome.update({single.video: record.video_path, single.thumbs: pres.thumbnails(record)})
    return outcome


# ---------------------------------------------------------------- re-attach on load, and the timer


def reattach(services: AppServices, parts: SessionParts, single: SingleTab, sweep: SweepTab, tabs: Any,
             request: gr.Request) -> dict:
    """Show the session's sweep and single run again; in flight, select its tab and start filling it."""
    session = session_of(request)
    journal = services.journal
    active = journal.active(session, services.runs.waited_on)
    out: dict = {parts.attached: None, parts.ticker: gr.Timer(active=False), parts.seen: {}}
    sweep_id = active.ref if active is not None and active.kind == "sweep" else journal.latest_sweep(session)
    state = journal.sweep(session, sweep_id) if sweep_id else None
    if state is not None:
        grid, seen = _sweep_view(services, sweep, state, None)
        out.update(grid)
        out[parts.seen] = seen
    latest = journal.latest_single(session)
    if latest is not None:
        out.update(_single_view(single, latest, in_flight=active is not None and active.kind == "single"))
    if active is not None:
        out.update({parts.attached: {"kind": active.kind, "ref": active.ref}, parts.ticker: gr.Timer(active=True),
                    tabs: gr.Tabs(selected=active.kind)})
    return out


def tick(services: AppServices, parts: SessionParts, single: SingleTab, sweep: SweepTab, history: HistoryTab,
         data: dict, request: gr.Request) -> dict:
    """One step of filling re-attached work from the journal; when it is over, the timer stops and History
    is listed again (it has a new run)."""
    attached, seen = data[parts.attached], data[parts.seen]

    def stop() -> dict:  # listed only once it is over: a listing each second would be heavy
        return {parts.attached: None, parts.ticker: gr.Timer(active=False),
                **history_tab.list_runs(services, history, data[history.filter], request,
                                       data.get(history.review_filter), data.get(history.issues_only))}

    if not isinstance(attached, dict):
        return stop()
    session = session_of(request)
    if attached.get("kind") == "sweep":
        state = services.journal.sweep(session, attached.get("ref"))
        if state is None:
            return stop()
        out, seen = _sweep_view(services, sweep, state, seen)
        out[parts.seen] = seen
        return out if state.running else {**out, **stop()}
    record = services.journal.run(session, attached.get("ref"))
    if record is None:
        return stop()
    in_flight = record.status not in FINISHED_STATUSES and services.runs.waited_on(record)
    out = _single_view(single, record, in_flight=in_flight)
    return out if in_flight else {**out, **stop()}


def open_sweep(services: AppServices, parts: SessionParts, sweep: SweepTab, tabs: Any, sweep_id: str | None,
               request: gr.Request) -> dict:
    """A sweep from History back in the grid (and filled on, if it still runs)."""
    if not sweep_id:
        raise gr.Error("Select a sweep in the list first.")
    state = services.journal.sweep(session_of(request), sweep_id)
    if state is None:
        raise gr.Error(f"No sweep {sweep_id!r} in the journal.")
    out, seen = _sweep_view(services, sweep, state, None)
    out.update({parts.seen: seen, tabs: gr.Tabs(selected="sweep")})
    if state.running:
        out.update({parts.attached: {"kind": "sweep", "ref": sweep_id}, parts.ticker: gr.Timer(active=True)})
    return out


def retry_failed(services: AppServices, sweep: SweepTab, key: Any, data: dict, request: gr.Request):
    """Run the shown sweep's failed and never-sent rows again, with their exact requests, into the same rows."""
    caller = caller_of(services, request)
    session, sweep_id, visitor_key = caller.session, data[sweep.shown], data[key]
    if not sweep_id:
        raise gr.Error("No sweep on screen to retry.")
    try:
        plan = services.runs.retry_cells(sweep_id, session)
    except LabError as err:
        raise_for_ui(err)
    items = plan.items if plan is not None else ()
    if not items:
        yield {sweep.status: "Nothing to retry: every row is saved or still unfinished.",
               sweep.retry: gr.update(visible=False)}
        return
    waiting = {sweep.rows[item.index].label: f"**{item.label}** · waiting… (retry)" for item in items}
    yield {sweep.status: f"Retrying {len(items)} row(s) of `{sweep_id}`.", **waiting,
           sweep.retry: gr.update(visible=False)}
    pump = EventPump(lambda on_event: services.runs.run_sweep(plan, session=session, person=caller.person,
                                                              on_event=on_event,
                                                          visitor_key=visitor_key, sweep_id=sweep_id))
    for event in pump:
        if event is None or getattr(event, "index", None) is None or event.index >= len(items):
            continue
        item = items[event.index]
        cell = pres.sweep_cell(event, item.label)
        if cell is None:
            continue
        row = sweep.rows[item.index]
        update = {row.label: cell.label}
        if cell.task_id:
            update[row.task] = pres.task_id_html(cell.task_id)
        if cell.video:
            update[row.video] = cell.video
        if cell.thumbnails:
            update[row.gallery] = cell.thumbnails
        yield update
    if isinstance(pump.error, LabError):
        note = pres.failure_note(pump.error)
        yield {sweep.status: f"**Not retried.** {note}", sweep.retry: gr.update(visible=True)}
        raise gr.Error(note)
    if pump.error is not None:
        raise pump.error
    outcome = services.runs.finish_retry(sweep_id, session, visitor_key)
    state = services.journal.sweep(session, sweep_id)
    out, _ = _sweep_view(services, sweep, state, None) if state is not None else ({}, {})
    if outcome is not None:
        out[sweep.status] = "Retried. " + outcome.summary_markdown()
    yield out


# ---------------------------------------------------------------- events


def identify_on_load(demo: gr.Blocks, parts: SessionParts) -> Any:
    """The page's first step on load: bind it to its visitor. Whatever reads the session chains on the
    returned event (``.then``), so it never runs for a page that is not yet identified."""
    return demo.load(identify, parts.browser_id, parts.browser_id, show_progress="hidden", **PRIVATE)


def connect(identified: Any, parts: SessionParts, single: SingleTab, sweep: SweepTab, history: HistoryTab,
            services: AppServices, tabs: Any, history_item: Any, visitor_key: Any, banner: Any, banner_fn: Any,
            runs: list) -> Any:
    """The session's events; returns the Retry failed event (the shell refreshes the banner after it)."""
    fields = draft_fields(single, sweep)
    draft_inputs = set(fields.values())
    for component in draft_inputs:
        component.change(bind(save_draft, fields), draft_inputs, parts.draft, trigger_mode="always_last", **INSTANT)

    listing = bind(history_tab.list_runs, services, history)
    view_outputs = {parts.attached, parts.ticker, parts.seen, tabs, *sweep.outputs, single.progress, single.video,
                    single.thumbs, single.summary}
    # Only once the page is bound to its session: the draft, the spend, the history and the work in flight.
    identified.then(bind(restore_draft, fields, single), parts.draft,
                    {*draft_inputs, single.form.group, single.form.raw_origin}, show_progress="hidden", **PRIVATE)
    identified.then(banner_fn, visitor_key, banner, show_progress="hidden", **PRIVATE)
    identified.then(listing, history.filters, history.listing, show_progress="hidden", **PRIVATE)
    identified.then(bind(reattach, services, parts, single, sweep, tabs), None, view_outputs,
                    show_progress="hidden", **PRIVATE)

    parts.ticker.tick(bind(tick, services, parts, single, sweep, history), {parts.attached, parts.seen, *history.filters},
                      (view_outputs - {tabs}) | history.listing, show_progress="hidden", **PRIVATE)
    # Live history: when its tab is opened, after every run of this page, and when re-attached work ends (tick).
    history_item.select(listing, history.filters, history.listing, show_progress="hidden", **PRIVATE)
    for run in runs:
        run.then(listing, history.filters, history.listing, show_progress="hidden", **PRIVATE)

    history.open_sweep.click(bind(open_sweep, services, parts, sweep, tabs), history.sweep_choice,
                             view_outputs, **PRIVATE)
    retried = sweep.retry.click(bind(retry_failed, services, sweep, visitor_key), {sweep.shown, visitor_key},
                                sweep.outputs, show_progress="minimal",
                                **generation(services.settings.max_concurrent_total), **PRIVATE)
    retried.then(listing, history.filters, history.listing, show_progress="hidden", **PRIVATE)
    return retried
