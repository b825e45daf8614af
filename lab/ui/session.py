"""A visitor's session across reloads: identity, the draft form, re-attaching to work in flight, live history.

On load the page's visitor is identified (``lab.sessions.session_identity``:
the signed-in Hugging Face user, else the id this browser keeps in
``gr.BrowserState``) and bound to the page, so every handler's
``session_of(request)`` names the same session after a reload. Then the draft
form comes back, and the session's sweep or single run is shown again: while
it is in flight a ``gr.Timer`` keeps filling it from the journal, without a
click. History refreshes when its tab is opened and when a run of this
session finishes; any sweep reopens in the sweep grid. A sweep is shown by
the Seed sweep tab's own ``show_sweep`` (from the journal), as at the end of
its run; Retry failed is that tab's too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from lab import presentation as pres
from lab.sessions import session_identity
from lab.store import FINISHED_STATUSES
from lab.settings import Settings
from lab.ui import history as history_tab
from lab.ui import sweep as sweep_tab
from lab.ui.events import PAGES, PRIVATE, QUIET, EditFollower, bind, progress_on, session_of
from lab.ui.history import HistoryTab
from lab.ui.single import SingleTab
from lab.ui.sweep import SweepTab
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


def save_draft(draft: Any, fields: dict[str, Any], data: dict) -> dict:
    return {draft: {name: data[component] for name, component in fields.items()}}


def draft_follower(parts: SessionParts, single: SingleTab, sweep: SweepTab) -> EditFollower:
    """The browser's draft follows every edit of the form and of the sweep's fields."""
    fields = draft_fields(single, sweep)
    kept = frozenset(fields.values())
    return EditFollower(bind(save_draft, parts.draft, fields), kept, kept, frozenset({parts.draft}))


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
        grid, seen = sweep_tab.show_sweep(services, sweep, state, None)
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
        out, seen = sweep_tab.show_sweep(services, sweep, state, seen)
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
        raise gr.Error("Select a sweep in the list first.", print_exception=False)
    state = services.journal.sweep(session_of(request), sweep_id)
    if state is None:
        raise gr.Error(f"No sweep {sweep_id!r} in the journal.", print_exception=False)
    out, seen = sweep_tab.show_sweep(services, sweep, state, None)
    out.update({parts.seen: seen, tabs: gr.Tabs(selected="sweep")})
    if state.running:
        out.update({parts.attached: {"kind": "sweep", "ref": sweep_id}, parts.ticker: gr.Timer(active=True)})
    return out


# ---------------------------------------------------------------- events


def identify_on_load(demo: gr.Blocks, parts: SessionParts) -> Any:
    """The page's first step on load: bind it to its visitor. Whatever reads the session chains on the
    returned event (``.then``), so it never runs for a page that is not yet identified."""
    return demo.load(identify, parts.browser_id, parts.browser_id, **QUIET)


def connect(identified: Any, parts: SessionParts, single: SingleTab, sweep: SweepTab, history: HistoryTab,
            services: AppServices, tabs: Any, history_item: Any, visitor_key: Any, banner: Any, banner_fn: Any,
            runs: list) -> None:
    """The session's events (``runs``: the events after which History is listed again)."""
    fields = draft_fields(single, sweep)
    draft_inputs = set(fields.values())

    listing = bind(history_tab.list_runs, services, history)
    view_outputs = {parts.attached, parts.ticker, parts.seen, tabs, *sweep.outputs, single.progress, single.video,
                    single.thumbs, single.summary}
    # Only once the page is bound to its session: the draft, the spend, the history and the work in flight.
    identified.then(bind(restore_draft, fields, single), parts.draft,
                    {*draft_inputs, single.form.group, single.form.raw_origin}, **QUIET)
    identified.then(banner_fn, visitor_key, banner, **QUIET)
    identified.then(listing, history.filters, history.listing, **QUIET)
    identified.then(bind(reattach, services, parts, single, sweep, tabs), None, view_outputs, **QUIET)

    parts.ticker.tick(bind(tick, services, parts, single, sweep, history), {parts.attached, parts.seen, *history.filters},
                      (view_outputs - {tabs}) | history.listing, **QUIET)
    # Live history: when its tab is opened, after every run of this page, and when re-attached work ends (tick).
    history_item.select(listing, history.filters, history.listing, **QUIET)
    for run in runs:
        run.then(listing, history.filters, history.listing, **QUIET)

    history.open_sweep.click(bind(open_sweep, services, parts, sweep, tabs), history.sweep_choice,
                             view_outputs, **progress_on(view_outputs), **PRIVATE)
