"""The lab's shell: title, spend banner, the visitor's own key, and one tab per module.

Layout first, events last; each tab module builds its layout (returning a
dataclass of its components) and connects its module-level handlers to the
services passed in (``lab.wiring.AppServices``, built once at start). Every UI event is ``api_visibility="private"``; the public
endpoints are in ``lab.ui.api``.

The API key never enters a component, a State or a JSON output: the services
hold it on the server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from lab.presets import load_presets
from lab.settings import Settings
from lab.ui import api, badges, compare, history, session, single, sweep
from lab.ui.events import PRIVATE, QUIET, bind, caller_of, follow_edits
from lab.waits import StopWaiting
from lab.datadir import DataDir
from lab.wiring import AppServices, served_media_dirs

CSS = """
.lab-banner {font-size: 0.9em}
.sweep-row {border-bottom: 1px solid var(--border-color-primary); padding-bottom: 6px}
#effective-panel table {font-size: 0.9em; width: 100%}
#effective-panel td:first-child, #effective-panel th {white-space: nowrap}
/* Columns size to their content and a cell wraps between words (or after a "." in a field name, where
   <wbr> allows it), never inside one: Gradio's prose tables break words anywhere, letter by letter. */
#effective-panel table, #run-check table {word-break: normal}
#effective-panel :is(td, th, code), #run-check :is(td, th, code) {word-break: normal; overflow-wrap: break-word}
/* An error is shown once, under the label of the field it is about, in the error colour. */
.lab-invalid {border-color: var(--error-border-color) !important; box-shadow: 0 0 0 1px var(--error-border-color)}
.lab-invalid .info-text {color: var(--error-text-color); font-weight: 600}
/* A field the service will ignore (a duration beside a reference image) says so under its label. */
.lab-warning {border-color: var(--color-accent) !important}
.lab-warning .info-text {color: var(--body-text-color); font-weight: 600}
#form-errors {color: var(--error-text-color)}
.lab-note {font-size: 0.85em; color: var(--body-text-color-subdued)}
/* A video's label sits above the picture, not over the prompt burned into its top edge. */
#run-video label[data-testid=block-label], #history-video label[data-testid=block-label]
  {position: static; margin: 0 0 4px 0}
/* A portrait (9:16) result fits the screen: its height is capped and the whole picture is shown
   inside, centred; a landscape one (under the cap) is unchanged. */
#run-video video {max-height: min(540px, 65vh); object-fit: contain}
/* Long choices end in an ellipsis before the caret instead of running under it. */
input[role=combobox] {text-overflow: ellipsis}
/* The compare player's controls and review column stay in reach as the takes scroll (position: sticky).
   Gradio's container hides its overflow, which makes it the scroll box they stick in (it never scrolls, so
   they never stuck); clip cuts off the same overflow without being one, so they stick to the window. */
.gradio-container {overflow: clip !important}
/* The keyboard help is for a keyboard: on a phone it pushed the takes 190 px down. */
@media (max-width: 640px) {#compare-help {display: none}}
@media (max-width: 640px) {
  /* Both tables fit a phone: small type, narrow padding, cells wrap between words, nothing is cut off. */
  #effective-panel table, #run-check table {font-size: 0.78em}
  #effective-panel :is(td, th), #run-check :is(td, th) {white-space: normal !important; padding: 4px}
  /* Generate stays in reach: the action bar is pinned to the bottom of the screen ("sticky" cannot
     work: Gradio's container hides its overflow), and the tab keeps room for it at its end. */
  #run-actions {position: fixed; left: 0; right: 0; bottom: 0; z-index: 20; margin: 0;
                background: var(--background-fill-primary); padding: 6px 8px; gap: 6px; flex-wrap: nowrap;
                box-shadow: 0 -2px 8px rgba(0, 0, 0, 0.15)}
  #single-tab {padding-bottom: 64px}
  #run-actions button {min-width: 0 !important; padding: 6px 4px; font-size: 0.85em; line-height: 1.2}
}
"""


class LabBlocks(gr.Blocks):
    """Blocks whose launch() defaults to the lab's options (run history off, theme, allowed data dir)."""

    lab_settings: Settings | None = None

    def launch(self, *args: Any, **kwargs: Any):
        if self.lab_settings is not None:
            for name, value in launch_options(self.lab_settings).items():
                kwargs.setdefault(name, value)
        return super().launch(*args, **kwargs)


@dataclass
class Shell:
    banner: Any
    visitor_key: Any  # State: the visitor's own key, server-side for this browser session
    key_box: Any
    use_key: Any
    forget_key: Any
    key_note: Any
    tabs: Any = None


def banner_for(services: AppServices, key: str | None, request: gr.Request) -> str:
    caller = caller_of(services, request)
    return services.access.banner(caller.session, visitor_key=bool(key), person=caller.person)


def use_visitor_key(services: AppServices, shell: Shell, typed: str, request: gr.Request) -> dict:
    """Move a pasted key into session state and clear the box, so the page keeps no copy."""
    typed = (typed or "").strip()
    problem = services.access.key_problem(typed)
    if problem:
        return {shell.key_box: "", shell.key_note: f"**Not used:** {problem}"}
    note = ("Using **your key** for runs from this tab, against the live APIYI service. It is held on the "
            "server for this browser session only: not in the page, the browser's storage, logs, the "
            "journal or exports. Completed videos are billed to your account.")
    return {shell.visitor_key: typed, shell.key_box: "", shell.key_note: note,
            shell.banner: banner_for(services, typed, request)}


def forget_visitor_key(services: AppServices, shell: Shell, request: gr.Request) -> dict:
    return {shell.visitor_key: None, shell.key_box: "", shell.key_note: "Your key is forgotten.",
            shell.banner: banner_for(services, None, request)}


def _build_shell(services: AppServices) -> Shell:
    gr.Markdown("# Veo Prompt Lab")
    banner_md = gr.Markdown(services.access.banner("anonymous"), elem_classes=["lab-banner"], elem_id="lab-banner")
    # A visitor's own key: moved from the box into server-side session state on "Use",
    # and the box cleared, so the page keeps no copy (run history is off, events private).
    visitor_key = gr.State(None)
    with gr.Accordion("Use your own APIYI key", open=False, visible=services.access.allow_visitor_key):
        with gr.Row():
            key_box = gr.Textbox(
                label="Your APIYI key", type="password", max_lines=1, scale=4, elem_id="visitor-key",
                placeholder="sk-… (kept for this browser session only; never stored or logged)",
            )
            use_key = gr.Button("Use my key", scale=1)
            forget_key = gr.Button("Forget my key", scale=1)
        key_note = gr.Markdown(elem_id="visitor-key-note")
    return Shell(banner_md, visitor_key, key_box, use_key, forget_key, key_note)


def build_demo(services: AppServices) -> gr.Blocks:
    """The whole lab as one Blocks over ``services`` (the caller owns them and closes them)."""
    settings = services.settings
    presets = load_presets()
    stops = StopWaiting()
    # Videos, thumbnails, sheets and ZIPs are served from the data directory as they are: Gradio
    # would otherwise copy every one it hands out into its temp directory (a ZIP per sweep: ~53 MB
    # per round of 20 visitors in bench/bench_rounds.py, kept until the cache expires).
    # Not images/: a reference image goes back into the form as an input, where a static file would
    # arrive as its server path (refused there) instead of as an upload.
    files = DataDir(settings.data_dir)
    gr.set_static_paths([str(d) for d in files.media_dirs() if d != files.images])
    with LabBlocks(title="Veo Prompt Lab", delete_cache=(3600, 86400)) as demo:
        shell = _build_shell(services)
        session_parts = session.build(settings)
        with gr.Tabs() as shell.tabs:
            with gr.Tab("Single run", id="single", elem_id="single-tab"):
                single_tab = single.build(settings.models, presets)
            with gr.Tab("Seed sweep", id="sweep"):
                sweep_tab = sweep.build(settings.max_sweep)
            with gr.Tab("History", id="history") as history_item:
                history_tab = history.build(settings.prescreen)
            with gr.Tab("Compare", id="compare"):
                compare_tab = compare.build()
        api_components = api.build()

        refresh_banner = bind(banner_for, services)
        # Everything that reads the visitor's session on load (banner, History, the Compare list, draft,
        # re-attach) is chained on this step, never run beside it: beside it, it could run for a page
        # that is not yet anyone's (with history_scope=session: an empty list until the next refresh).
        identified = session.identify_on_load(demo, session_parts)
        key_outputs = {shell.visitor_key, shell.key_box, shell.key_note, shell.banner}
        for trigger in (shell.use_key.click, shell.key_box.submit):
            trigger(bind(use_visitor_key, services, shell), shell.key_box, key_outputs, **PRIVATE)
        shell.forget_key.click(bind(forget_visitor_key, services, shell), None, key_outputs, **PRIVATE)
        runs = [
            *single.connect(demo, single_tab, services, stops, presets, shell.visitor_key),
            *sweep.connect(demo, sweep_tab, single_tab, services, stops, shell.visitor_key, shell.tabs),
            history.connect(history_tab, single_tab, services, stops, shell.visitor_key, shell.tabs),
        ]
        session.connect(identified, session_parts, single_tab, sweep_tab, history_tab, services, shell.tabs,
                        history_item, shell.visitor_key, shell.banner, refresh_banner, list(runs))
        for run in runs:  # what was spent changes after every run
            run.then(refresh_banner, shell.visitor_key, shell.banner, **QUIET)
        # After the tabs' own events: typing is then one event per keystroke, whoever follows it.
        follow_edits([single.edit_follower(single_tab, services), sweep.edit_follower(sweep_tab, single_tab, services),
                      session.draft_follower(session_parts, single_tab, sweep_tab)])
        api.connect(api_components, services)
        compare.connect(identified, compare_tab, services)
        compare.connect_sweep(sweep_tab, compare_tab, services, shell.tabs)
        compare.connect_link(identified, compare_tab, services, shell.tabs)
        compare.connect_history(history_tab, compare_tab, services, shell.tabs)
        badges.install(demo)

    demo.queue(default_concurrency_limit=8, max_size=64)
    calm_idle_queue(demo)
    demo.lab_settings = settings
    return demo


# Gradio's queue looks for a new event every 1 ms and for progress to send every 10 ms, also with nobody on
# the page: an idle lab took 5.8% of a core (bench/bench_idle.py), a Space's whole life between visitors and
# every test that keeps a lab running. At 50 ms and 100 ms, the intervals Gradio itself uses on Windows, it
# takes 1.2%; an event starts at most 50 ms later, against the hundreds of milliseconds of a round trip.
QUEUE_POLL_S = 0.05
PROGRESS_POLL_S = 0.1


def calm_idle_queue(demo: gr.Blocks) -> None:
    """Slow the queue's idle polling (Gradio has no option for it; attributes of gradio 6.31's Queue)."""
    queue = getattr(demo, "_queue", None)
    if hasattr(queue, "sleep_when_free") and hasattr(queue, "progress_update_sleep_when_free"):
        queue.sleep_when_free = QUEUE_POLL_S
        queue.progress_update_sleep_when_free = PROGRESS_POLL_S


def launch_options(settings: Settings) -> dict[str, Any]:
    """The launch()/mount_gradio_app() options the lab always uses (run history off: it stores inputs)."""
    return {
        "run_history": False,
        "footer_links": ["api", "gradio"],
        "theme": gr.themes.Soft(),
        "css": CSS + sweep.CSS + history.CSS + badges.CSS,
        "ssr_mode": False,
        "allowed_paths": served_media_dirs(settings.data_dir),
        # A reference image may be up to 20 MB, the image-to-video API's limit.
        "max_file_size": "20mb",
    }


def mount(app, demo: gr.Blocks, settings: Settings, path: str = "/"):
    """Mount the lab on a FastAPI app with ``launch_options``; returns the app."""
    options = launch_options(settings)
    return gr.mount_gradio_app(app, demo, path=path, **options)
