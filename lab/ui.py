"""The Gradio prompt lab: the only module that imports gradio.

Layout first, events last. Handlers are thin: component values go through
``lab.presentation`` and ``lab.params`` into the runner, and results come back
as component updates. Every UI event is ``api_visibility="private"``; the
public endpoints (``/resolve``, ``/generate``, ``/sweep``) take a request body
as in the vendor's docs and return data (``api_resolve``, ``api_generate``, ``api_sweep``).

The API key never enters a component, a State or a JSON output: the runner
holds it on the server.
"""

from __future__ import annotations

import json
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

from lab import params, presentation as pres, sweeps  # noqa: E402
from lab.errors import LabError, RequestInvalid  # noqa: E402
from lab.presets import Preset, load_presets  # noqa: E402
from lab.settings import Settings, load_settings  # noqa: E402
from lab.ui_services import (  # noqa: E402
    EventPump,
    LabServices,
    RunOutcome,
    SweepOutcome,
    no_path_keys,
    served_media_dirs,
)

CSS = """
.lab-banner {font-size: 0.9em}
.sweep-row {border-bottom: 1px solid var(--border-color-primary); padding-bottom: 6px}
#effective-panel table {font-size: 0.9em}
#effective-panel td:first-child, #effective-panel th {white-space: nowrap}
"""
THUMB_COUNT = 5


def _raise_for_ui(err: LabError) -> None:
    raise gr.Error(str(err)) from err


def _session(request: gr.Request | None) -> str:
    return (getattr(request, "session_hash", None) or "anonymous") if request is not None else "anonymous"


@dataclass
class _Form:
    """The single-run form's components, in ``pres.FORM_FIELDS`` order."""

    components: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str):
        return self.components[name]

    @property
    def inputs(self) -> list:
        return [self.components[name] for name in pres.FORM_FIELDS]


class LabBlocks(gr.Blocks):
    """Blocks whose launch() defaults to the lab's options (run history off, theme, allowed data dir)."""

    lab_settings: Settings | None = None
    lab_services: LabServices | None = None

    def launch(self, *args: Any, **kwargs: Any):
        if self.lab_settings is not None:
            for name, value in launch_options(self.lab_settings).items():
                kwargs.setdefault(name, value)
        return super().launch(*args, **kwargs)


def _resolve_form(values: list) -> tuple[dict | None, params.Resolution | None, str | None]:
    try:
        body = pres.body_from_form(*values)
    except RequestInvalid as err:
        return None, None, str(err)
    return body, params.resolve(body), None


def build_demo(settings: Settings | None = None, *, base_url: str | None = None, api_key: str | None = None) -> gr.Blocks:
    """The whole lab as one Blocks. ``base_url``/``api_key`` override settings (tests point it at a simulator)."""
    settings = settings or load_settings()
    services = LabServices.create(settings, base_url=base_url, api_key=api_key)
    presets = load_presets()
    max_rows = settings.max_sweep
    snippet_base = services.snippet_base_url

    with LabBlocks(title="Veo Prompt Lab", delete_cache=(3600, 86400)) as demo:
        # ------------------------------------------------------------------ layout
        gr.Markdown("# Veo Prompt Lab")
        banner = gr.Markdown(services.banner("anonymous"), elem_classes=["lab-banner"])
        # A visitor's own key: moved from the box into server-side session state on "Use",
        # and the box cleared, so the page keeps no copy (run history is off, events private).
        visitor_key = gr.State(None)
        with gr.Accordion("Use your own APIYI key", open=False, visible=settings.allow_visitor_key):
            with gr.Row():
                visitor_key_box = gr.Textbox(
                    label="Your APIYI key", type="password", max_lines=1, scale=4, elem_id="visitor-key",
                    placeholder="sk-… (kept for this browser session only; never stored or logged)",
                )
                visitor_use_btn = gr.Button("Use my key", scale=1)
                visitor_forget_btn = gr.Button("Forget my key", scale=1)
            visitor_note = gr.Markdown(elem_id="visitor-key-note")
        with gr.Tabs() as tabs:
            with gr.Tab("Single run", id="single"):
                with gr.Row():
                    with gr.Column(scale=5):
                        preset = gr.Dropdown(
                            choices=[p.name for p in presets], value=None, label="Preset",
                            info="Fills the form with a named prompt and parameters.",
                        )
                        form = _Form()
                        with gr.Group(visible=True) as form_group:
                            form.components["model"] = gr.Dropdown(
                                choices=pres.model_choices(settings.models), value=settings.models[0], label="Model",
                            )
                            form.components["prompt"] = gr.Textbox(
                                label="Prompt", lines=4, max_lines=12,
                                placeholder="Scene, subject, action, camera, lighting, sound…",
                            )
                            form.components["negative_prompt"] = gr.Textbox(
                                label="Negative prompt (metadata.negativePrompt)", lines=1,
                            )
                            with gr.Row():
                                form.components["duration"] = gr.Dropdown(
                                    choices=pres.choices_with_not_set(params.DURATIONS), value="8", label="duration (s)",
                                )
                                form.components["size"] = gr.Dropdown(
                                    choices=pres.choices_with_not_set(params.SIZES), value=pres.NOT_SET, label="size",
                                )
                            # Two per row: four in one row cut "metadata.aspectRatio" off at common widths.
                            with gr.Row():
                                form.components["resolution"] = gr.Dropdown(
                                    choices=pres.choices_with_not_set(params.RESOLUTIONS), value=pres.NOT_SET,
                                    label="metadata.resolution",
                                )
                                form.components["aspect_ratio"] = gr.Dropdown(
                                    choices=pres.choices_with_not_set(params.ASPECT_RATIOS), value=pres.NOT_SET,
                                    label="metadata.aspectRatio",
                                )
                            with gr.Row():
                                form.components["seed"] = gr.Textbox(
                                    label="Seed (metadata.seed)", value="", max_lines=1,
                                    placeholder="empty: the service picks one",
                                )
                                with gr.Column():
                                    randomize = gr.Checkbox(label="New random seed on each run", value=False)
                                    new_seed = gr.Button("Random seed", size="sm")
                        with gr.Accordion("Advanced: other duration fields, raw JSON body", open=False):
                            with gr.Row():
                                form.components["duration_seconds"] = gr.Dropdown(
                                    choices=pres.choices_with_not_set(params.DURATIONS), value=pres.NOT_SET,
                                    label="metadata.durationSeconds (integer)",
                                )
                                form.components["seconds"] = gr.Dropdown(
                                    choices=pres.choices_with_not_set(params.DURATIONS), value=pres.NOT_SET,
                                    label="seconds",
                                )
                            form.components["raw_mode"] = gr.Checkbox(
                                label="Raw body mode: send the JSON below instead of the form", value=False,
                            )
                            form.components["raw_body"] = gr.Code(
                                language="json", label="Raw request body", lines=10, interactive=True, visible=False,
                                elem_id="raw-body",
                            )
                    with gr.Column(scale=4):
                        gr.Markdown("### Effective request")
                        effective_md = gr.Markdown(elem_id="effective-panel")
                        gate_md = gr.Markdown(elem_id="generate-gate")
                        with gr.Tabs():
                            with gr.Tab("JSON body"):
                                wire_code = gr.Code(language="json", label="Body that will be sent", interactive=False)
                            with gr.Tab("curl"):
                                curl_code = gr.Code(language="shell", label="curl (key redacted)", interactive=False)
                            with gr.Tab("Python"):
                                python_code = gr.Code(language="python", label="Python (key redacted)", interactive=False)
                with gr.Row():
                    generate_btn = gr.Button("Generate", variant="primary", interactive=False)
                    stop_btn = gr.Button("Stop waiting", variant="stop")
                    fetch_btn = gr.Button("Fetch unfinished")
                progress_md = gr.Markdown(elem_id="run-progress")
                with gr.Row():
                    video = gr.Video(label="Video", interactive=False, buttons=["download"], elem_id="run-video")
                    thumbs = gr.Gallery(label="Thumbnails", columns=THUMB_COUNT, height=220, interactive=False,
                                        elem_id="run-thumbs")
                with gr.Row():
                    sent_code = gr.Code(language="json", label="Request sent", interactive=False)
                    answer_json = gr.JSON(label="Server answered")
                run_summary_md = gr.Markdown(elem_id="run-summary")

            with gr.Tab("Seed sweep", id="sweep"):
                gr.Markdown(
                    "The request from **Single run** × each seed, or × each prompt variant (one per line) × each seed. "
                    "Tasks run at the same time; rows fill in as each one finishes."
                )
                with gr.Row():
                    sweep_seeds = gr.Textbox(label="Seeds", value="1, 2, 3", placeholder="1, 2, 3")
                    sweep_random = gr.Number(label="…plus N random seeds", value=0, precision=0, minimum=0,
                                             maximum=max_rows)
                sweep_variants = gr.Textbox(label="Prompt variants (one per line; empty: the form's prompt)", lines=3)
                sweep_estimate = gr.Markdown(elem_id="sweep-estimate")
                with gr.Row():
                    sweep_btn = gr.Button("Run sweep", variant="primary")
                    sweep_stop_btn = gr.Button("Stop waiting", variant="stop", elem_id="sweep-stop")
                sweep_status = gr.Markdown(elem_id="sweep-status")
                sweep_rows, sweep_labels, sweep_videos, sweep_galleries, use_seed_btns = [], [], [], [], []
                for i in range(max_rows):
                    with gr.Row(visible=False, elem_classes=["sweep-row"], elem_id=f"sweep-row-{i}") as row:
                        with gr.Column(scale=1, min_width=160):
                            sweep_labels.append(gr.Markdown(elem_id=f"sweep-label-{i}"))
                            use_seed_btns.append(gr.Button("Use this seed", size="sm", elem_id=f"use-seed-{i}"))
                        sweep_videos.append(gr.Video(label=f"Row {i + 1}", interactive=False, height=200,
                                                     scale=2, buttons=["download"]))
                        sweep_galleries.append(gr.Gallery(label="Thumbnails", columns=THUMB_COUNT, height=200,
                                                          scale=5, interactive=False))
                    sweep_rows.append(row)
                with gr.Row():
                    sheet_image = gr.Image(label="Contact sheet", type="filepath", interactive=False, height=300)
                    with gr.Column():
                        sheet_download = gr.DownloadButton("Download contact sheet (PNG)", visible=False)
                        zip_download = gr.DownloadButton("Download ZIP (videos, sheet, manifest)", visible=False)
                sweep_seed_state = gr.State([])

            with gr.Tab("History", id="history"):
                with gr.Row():
                    history_filter = gr.Textbox(label="Filter by prompt text", scale=3)
                    history_refresh = gr.Button("Refresh", scale=1)
                history_gallery = gr.Gallery(label="Runs, newest first", columns=8, height=200, allow_preview=False,
                                             interactive=False)
                history_table = gr.Dataframe(
                    headers=["when", "prompt", "status", "cost", "took", "model", "res.", "aspect", "dur.", "seed",
                             "task id"],
                    # Short headers and fixed widths: the prompt gets the room, nothing breaks mid-word.
                    column_widths=["105px", "28%", "80px", "65px", "60px", "85px", "65px", "75px", "55px", "105px",
                                   "22%"],
                    interactive=False, wrap=True, label="Journal", elem_id="history-table",
                )
                with gr.Row():
                    history_selected = gr.Markdown("Select a run above.", elem_id="history-detail")
                    history_video = gr.Video(label="Selected run", interactive=False, height=240)
                with gr.Row():
                    history_load = gr.Button("Load into form")
                    history_rerun = gr.Button("Re-run")
                history_ids = gr.State({})
                history_choice = gr.State(None)

        # Data-in, data-out endpoints for gradio_client; hidden from the page.
        with gr.Column(visible=False):
            api_body = gr.Textbox(label="body")
            api_seeds = gr.Textbox(label="seeds")
            api_random = gr.Number(label="random_seeds", precision=0)
            api_variants = gr.Textbox(label="variants")
            api_resolution = gr.JSON(label="resolution")
            api_video = gr.Video(label="video")
            api_summary = gr.JSON(label="summary")
            api_sheet = gr.File(label="contact_sheet")
            api_zip = gr.File(label="zip")
            api_sweep_summary = gr.JSON(label="sweep_summary")
            api_resolve_btn = gr.Button("resolve")
            api_generate_btn = gr.Button("generate")
            api_sweep_btn = gr.Button("sweep")

        # ------------------------------------------------------------------ handlers
        # "Stop waiting" is cooperative: the running handler sees the request on its next tick,
        # says so and returns (the task goes on in the background). Gradio's ``cancels=`` would
        # instead mark every output of the cancelled event with an "Error" badge.
        stop_lock = threading.Lock()
        stop_requests: dict[tuple[str, str], float] = {}  # (session, "single"|"sweep") -> when pressed
        running: dict[tuple[str, str], int] = {}

        def _stop_requested(key: tuple[str, str], started: float) -> bool:
            with stop_lock:
                return stop_requests.get(key, float("-inf")) >= started

        @contextmanager
        def _running(key: tuple[str, str]):
            with stop_lock:
                running[key] = running.get(key, 0) + 1
            try:
                yield
            finally:
                with stop_lock:
                    running[key] -= 1
                    if not running[key]:
                        del running[key]

        def refresh_panel(*values):
            body, resolution, problem = _resolve_form(list(values))
            gate = pres.generate_gate(resolution, problem)
            if resolution is None:
                panel = f"**Cannot read the request:** {problem}"
                wire = curl = python = ""
            else:
                panel = pres.effective_markdown(resolution)
                if resolution.wire is not None:
                    wire = params.wire_json(resolution.wire)
                    curl = params.curl_snippet(resolution.wire, snippet_base)
                    python = params.python_snippet(resolution.wire, snippet_base)
                else:
                    wire = json.dumps(body, ensure_ascii=False, indent=2)
                    curl = python = "# The request is invalid; fix the errors to get a snippet."
            return (
                panel,
                gate.reason,
                wire,
                curl,
                python,
                gr.update(interactive=gate.ok),
            )

        panel_outputs = [effective_md, gate_md, wire_code, curl_code, python_code, generate_btn]

        def toggle_raw(raw_mode, *values):
            values = list(values)
            raw_text = values[pres.FORM_FIELDS.index("raw_body")]
            if raw_mode and not (raw_text or "").strip():
                form_values = values[:]
                form_values[pres.FORM_FIELDS.index("raw_mode")] = False
                try:
                    raw_text = json.dumps(pres.body_from_form(*form_values), ensure_ascii=False, indent=2)
                except RequestInvalid:
                    raw_text = "{}"
            return gr.update(visible=not raw_mode), gr.update(visible=raw_mode, value=raw_text)

        def apply_body(body: dict) -> list:
            values = pres.form_from_body(body)
            return [values[name] for name in pres.FORM_FIELDS]

        def choose_preset(name):
            if not name:
                return [gr.skip()] * len(pres.FORM_FIELDS) + [gr.skip()]
            chosen: Preset = next(p for p in presets if p.name == name)
            values = apply_body(dict(chosen.body))
            raw_mode = values[pres.FORM_FIELDS.index("raw_mode")]
            return values + [gr.update(visible=not raw_mode)]

        def roll_seed():
            return str(params.random_seed())

        def banner_for(key: str | None, request: gr.Request):
            return services.banner(_session(request), visitor_key=bool(key))

        def use_visitor_key(typed: str, request: gr.Request):
            typed = (typed or "").strip()
            problem = services.visitor_key_problem(typed)
            if problem:
                return gr.skip(), "", f"**Not used:** {problem}", gr.skip()
            note = ("Using **your key** for runs from this tab, against the live APIYI service. It is held on the "
                    "server for this browser session only: not in the page, the browser's storage, logs, the "
                    "journal or exports. Completed videos are billed to your account.")
            return typed, "", note, services.banner(_session(request), visitor_key=True)

        def forget_visitor_key(request: gr.Request):
            return None, "", "Your key is forgotten.", services.banner(_session(request))

        # Handlers spell out the form's fields (in pres.FORM_FIELDS order): Gradio injects
        # gr.Request only into a named parameter, never after *args.
        def run_generate(model, prompt, negative_prompt, duration, size, resolution_field, aspect_field, seed,
                         duration_seconds, seconds, raw_mode, raw_body, randomize_on, key, request: gr.Request):
            values = [model, prompt, negative_prompt, duration, size, resolution_field, aspect_field, seed,
                      duration_seconds, seconds, raw_mode, raw_body]
            session = _session(request)
            body, resolved, problem = _resolve_form(list(values))
            if problem:
                raise gr.Error(problem)
            if randomize_on:
                body = params.with_seed(body, params.random_seed())
                resolved = params.resolve(body)
            if not resolved.ok:
                raise gr.Error("The request is invalid: " + resolved.error_text())
            seed_out = resolved.effective["seed"]
            median = services.median_elapsed(resolved)
            started = time.monotonic()
            with _running((session, "single")):
                yield from _generate(body, resolved, seed_out, median, started, session, key)

        def _generate(body, resolved, seed_out, median, started, session, key):
            stage, task_id = "queued", None
            sent = params.wire_json(resolved.wire)
            yield (pres.stage_markdown("queued", 0, median, None, "Submitting…"), None, None, sent, None, "",
                   str(seed_out) if seed_out is not None else gr.skip())
            pump = EventPump(lambda on_event: services.run_one(body, session=session, on_event=on_event,
                                                                visitor_key=key))
            for event in pump:
                if event is not None:
                    task_id = event.task_id or task_id
                    stage = pres.stage_for_event(event.kind, event.status) or stage
                if _stop_requested((session, "single"), started):
                    yield (pres.stopped_waiting_text(task_id), gr.skip(), gr.skip(), gr.skip(), gr.skip(),
                           gr.skip(), gr.skip())
                    return
                yield (pres.stage_markdown(stage, time.monotonic() - started, median, task_id),
                       gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip())
            if isinstance(pump.error, LabError):
                note = services.failure_note(pump.error)
                yield (f"**Not generated.** {note}", None, None, sent, None, "", gr.skip())
                raise gr.Error(note)
            if pump.error is not None:
                raise pump.error
            outcome: RunOutcome = pump.result
            if not outcome.ok:
                yield (f"**Failed.** {outcome.message}", None, None, sent, no_path_keys(outcome.answer),
                       outcome.summary_markdown(), gr.skip())
                return
            yield (
                pres.stage_markdown("done", outcome.elapsed_s or (time.monotonic() - started), median, outcome.task_id),
                outcome.video,
                [(p, c) for p, c in outcome.thumbnails],
                sent,
                no_path_keys(outcome.answer),
                outcome.summary_markdown(),
                gr.skip(),
            )

        def stop_waiting(which: str):
            def handler(request: gr.Request):
                key = (_session(request), which)
                with stop_lock:
                    if not running.get(key):
                        return pres.NOTHING_TO_STOP
                    stop_requests[key] = time.monotonic()
                return gr.skip()  # the running handler writes the message on its next tick
            return handler

        def fetch_unfinished(request: gr.Request):
            try:
                return services.resume_text()
            except LabError as err:
                _raise_for_ui(err)

        def sweep_estimate_for(seeds_text, random_count, variants_text, *values):
            # The model the sweep will use: the form's, or the raw body's in raw mode.
            _, resolved, _ = _resolve_form(list(values))
            model = resolved.effective.get("model") if resolved is not None else None
            try:
                count = sweeps.count_tasks(seeds_text, random_count, variants_text, max_sweep=max_rows)
            except RequestInvalid as err:
                return f"**Cannot run:** {err}"
            return pres.sweep_estimate_text(model, count, max_rows, settings.max_concurrent_per_session)

        def _empty_grid() -> list:
            updates = []
            for _ in range(max_rows):
                updates += [gr.update(visible=False), "", None, None]
            return updates

        def run_sweep(model, prompt, negative_prompt, duration, size, resolution_field, aspect_field, seed,
                      duration_seconds, seconds, raw_mode, raw_body, seeds_text, random_count, variants_text,
                      key, request: gr.Request):
            values = [model, prompt, negative_prompt, duration, size, resolution_field, aspect_field, seed,
                      duration_seconds, seconds, raw_mode, raw_body]
            session = _session(request)
            body, resolved, problem = _resolve_form(list(values))
            if problem:
                raise gr.Error(problem)
            try:
                plan = sweeps.prepare(body, max_sweep=max_rows, seeds_text=seeds_text, random_count=random_count,
                                      variants_text=variants_text)
            except RequestInvalid as err:
                _raise_for_ui(err)
            with _running((session, "sweep")):
                yield from _sweep(plan, resolved, session, key)

        def _sweep(plan, resolved, session, key):
            items = plan.items
            labels = [item.label for item in items]
            grid = _empty_grid()
            for item in items:
                grid[4 * item.index: 4 * item.index + 4] = [gr.update(visible=True), f"**{item.label}** · waiting…",
                                                          None, None]
            started = time.monotonic()
            estimate = params.sweep_price_usd(resolved.effective["model"], len(items))
            head = f"Running {len(items)} tasks (up to ${estimate:.2f})." if estimate is not None else ""
            seeds_state = [item.seed for item in items]
            no_downloads = [None, gr.update(visible=False), gr.update(visible=False)]
            yield [head] + grid + no_downloads + [seeds_state]
            pump = EventPump(lambda on_event: services.run_sweep(plan, session=session, on_event=on_event,
                                                                  visitor_key=key))
            done_count = 0
            for event in pump:
                updates = [gr.skip()] * (4 * max_rows)
                if event is not None and getattr(event, "index", None) is not None and event.index < len(items):
                    i = event.index
                    cell = services.sweep_cell(event, labels[i])
                    if cell is not None:
                        if cell.finished:
                            done_count += 1
                        updates[4 * i + 1] = cell.label
                        if cell.video:
                            updates[4 * i + 2] = cell.video
                        if cell.thumbnails:
                            updates[4 * i + 3] = cell.thumbnails
                status = f"{head} {done_count}/{len(items)} finished · elapsed {pres.format_seconds(time.monotonic() - started)}"
                if _stop_requested((session, "sweep"), started):
                    yield [pres.stopped_waiting_text(None, sweep=True)] + updates + [gr.skip()] * 3 + [gr.skip()]
                    return
                yield [status] + updates + [gr.skip()] * 3 + [gr.skip()]
            if isinstance(pump.error, LabError):
                note = services.failure_note(pump.error)
                yield [f"**Not run.** {note}"] + _empty_grid() + no_downloads + [[]]
                raise gr.Error(note)
            if pump.error is not None:
                raise pump.error
            outcome: SweepOutcome = pump.result
            final = [gr.skip()] * (4 * max_rows)
            for cell in outcome.cells:
                final[4 * cell.index + 1] = cell.label
                final[4 * cell.index + 2] = cell.video
                final[4 * cell.index + 3] = cell.thumbnails
            yield ([outcome.summary_markdown()] + final
                   + [outcome.contact_sheet,
                      gr.update(value=outcome.contact_sheet, visible=outcome.contact_sheet is not None),
                      gr.update(value=outcome.zip_path, visible=outcome.zip_path is not None)]
                   + [seeds_state])

        def use_seed(index: int):
            def handler(seeds):
                if index >= len(seeds or []):
                    return gr.skip(), gr.skip()
                return str(seeds[index]), gr.Tabs(selected="single")
            return handler

        def load_history(query):
            rows, gallery, ids = services.history(query)
            return rows, gallery, ids

        def select_history(which: str):
            def handler(ids, evt: gr.SelectData):
                index = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
                chosen = (ids or {}).get(which, [])
                if index is None or index >= len(chosen):
                    return None, "Select a run above.", None
                task_id = chosen[index]
                try:
                    return task_id, services.history_detail(task_id), services.history_video(task_id)
                except LabError as err:
                    _raise_for_ui(err)
            return handler

        def history_to_form(task_id):
            if not task_id:
                raise gr.Error("Select a run in the history first.")
            body = services.history_body(task_id)
            values = apply_body(body)
            raw_mode = values[pres.FORM_FIELDS.index("raw_mode")]
            return values + [gr.update(visible=not raw_mode), gr.Tabs(selected="single")]

        # Public endpoints: a body as in the docs in, data out.
        def api_resolve(body_text: str) -> dict:
            try:
                body = json.loads(body_text) if isinstance(body_text, str) else body_text
            except json.JSONDecodeError as exc:
                raise gr.Error(f"The body is not valid JSON: {exc.msg}") from exc
            return no_path_keys(params.resolve(body).to_json())

        def api_generate(body_text: str, request: gr.Request):
            body = _api_body(body_text)
            try:
                outcome: RunOutcome = services.run_one(body, session=_session(request), on_event=None)
            except LabError as err:
                raise gr.Error(services.failure_note(err)) from err
            # A failed task is data: no video, and the summary says why.
            return outcome.video, no_path_keys(outcome.summary())

        def api_sweep(body_text: str, seeds_text: str, random_count: float | None, variants_text: str,
                      request: gr.Request):
            body = _api_body(body_text)
            try:
                plan = sweeps.prepare(body, max_sweep=max_rows, seeds_text=seeds_text, random_count=random_count,
                                      variants_text=variants_text)
                outcome: SweepOutcome = services.run_sweep(plan, session=_session(request), on_event=None)
            except LabError as err:
                _raise_for_ui(err)
            return outcome.contact_sheet, outcome.zip_path, no_path_keys(outcome.summary())

        def _api_body(body_text: Any) -> dict:
            try:
                body = json.loads(body_text) if isinstance(body_text, str) else body_text
            except json.JSONDecodeError as exc:
                raise gr.Error(f"The body is not valid JSON: {exc.msg}") from exc
            resolution = params.resolve(body)
            if not resolution.ok:
                raise gr.Error("The request is invalid: " + resolution.error_text())
            return body

        # ------------------------------------------------------------------ events
        private = {"api_visibility": "private"}
        # Instant, pure handlers skip the queue: typing must never wait behind a generation.
        instant = {"api_visibility": "private", "queue": False, "show_progress": "hidden"}
        for name in pres.FORM_FIELDS:
            component = form[name]
            component.change(refresh_panel, form.inputs, panel_outputs, trigger_mode="always_last", **instant)
        form["raw_mode"].change(toggle_raw, [form["raw_mode"], *form.inputs], [form_group, form["raw_body"]], **instant)
        preset.change(choose_preset, preset, form.inputs + [form_group], **instant)
        new_seed.click(roll_seed, None, form["seed"], **instant)
        demo.load(refresh_panel, form.inputs, panel_outputs, show_progress="hidden", **private)
        demo.load(banner_for, visitor_key, banner, show_progress="hidden", **private)

        generation = {"concurrency_id": "video_generation", "concurrency_limit": settings.max_concurrent_total}
        visitor_use_btn.click(use_visitor_key, visitor_key_box, [visitor_key, visitor_key_box, visitor_note, banner],
                              **private)
        visitor_key_box.submit(use_visitor_key, visitor_key_box, [visitor_key, visitor_key_box, visitor_note, banner],
                               **private)
        visitor_forget_btn.click(forget_visitor_key, None, [visitor_key, visitor_key_box, visitor_note, banner],
                                 **private)
        generate_event = generate_btn.click(
            run_generate, [*form.inputs, randomize, visitor_key],
            [progress_md, video, thumbs, sent_code, answer_json, run_summary_md, form["seed"]],
            show_progress="minimal", **generation, **private,
        )
        generate_event.then(banner_for, visitor_key, banner, show_progress="hidden", **private)
        history_rerun.click(
            history_to_form, history_choice, form.inputs + [form_group, tabs], **private,
        ).then(
            run_generate, [*form.inputs, randomize, visitor_key],
            [progress_md, video, thumbs, sent_code, answer_json, run_summary_md, form["seed"]],
            show_progress="minimal", **generation, **private,
        )
        stop_btn.click(stop_waiting("single"), None, progress_md, queue=False, show_progress="hidden", **private)
        fetch_btn.click(fetch_unfinished, None, progress_md, **private)

        sweep_inputs = [sweep_seeds, sweep_random, sweep_variants, *form.inputs]
        for component in sweep_inputs:
            component.change(sweep_estimate_for, sweep_inputs, sweep_estimate, **instant)
        demo.load(sweep_estimate_for, sweep_inputs, sweep_estimate, show_progress="hidden", **private)
        grid_outputs = []
        for i in range(max_rows):
            grid_outputs += [sweep_rows[i], sweep_labels[i], sweep_videos[i], sweep_galleries[i]]
        sweep_event = sweep_btn.click(
            run_sweep, [*form.inputs, sweep_seeds, sweep_random, sweep_variants, visitor_key],
            [sweep_status, *grid_outputs, sheet_image, sheet_download, zip_download, sweep_seed_state],
            show_progress="minimal", **generation, **private,
        )
        sweep_event.then(banner_for, visitor_key, banner, show_progress="hidden", **private)
        sweep_stop_btn.click(stop_waiting("sweep"), None, sweep_status, queue=False, show_progress="hidden",
                             **private)
        for i, button in enumerate(use_seed_btns):
            button.click(use_seed(i), sweep_seed_state, [form["seed"], tabs], **private)

        history_refresh.click(load_history, history_filter, [history_table, history_gallery, history_ids], **private)
        history_filter.submit(load_history, history_filter, [history_table, history_gallery, history_ids], **private)
        history_table.select(select_history("table"), history_ids, [history_choice, history_selected, history_video],
                             **private)
        history_gallery.select(select_history("gallery"), history_ids,
                               [history_choice, history_selected, history_video], **private)
        history_load.click(history_to_form, history_choice, form.inputs + [form_group, tabs], **private)
        demo.load(load_history, history_filter, [history_table, history_gallery, history_ids], **private)

        api_resolve_btn.click(api_resolve, api_body, api_resolution, api_name="resolve")
        api_generate_btn.click(api_generate, api_body, [api_video, api_summary], api_name="generate", **generation)
        api_sweep_btn.click(api_sweep, [api_body, api_seeds, api_random, api_variants],
                            [api_sheet, api_zip, api_sweep_summary], api_name="sweep", **generation)

    demo.queue(default_concurrency_limit=8, max_size=64)
    demo.lab_settings = settings
    demo.lab_services = services  # for app.py and tests: the simulator URL, data dir, shutdown
    return demo


def launch_options(settings: Settings) -> dict[str, Any]:
    """The launch()/mount_gradio_app() options the lab always uses (run history off: it stores inputs)."""
    return {
        "run_history": False,
        "footer_links": ["api", "gradio"],
        "theme": gr.themes.Soft(),
        "css": CSS,
        "ssr_mode": False,
        "allowed_paths": served_media_dirs(settings.data_dir),
        "max_file_size": "1mb",
    }


def mount(app, demo: gr.Blocks, settings: Settings, path: str = "/"):
    """Mount the lab on a FastAPI app with ``launch_options``; returns the app."""
    options = launch_options(settings)
    return gr.mount_gradio_app(app, demo, path=path, **options)
