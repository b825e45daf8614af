"""The "Single run" tab: the form, the effective-request panel, Generate and its result."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import gradio as gr

from lab import image_input, params, presentation as pres
from lab.errors import LabError, RequestInvalid
from lab.presets import Preset
from lab.store import FINISHED_STATUSES
from lab.ui.events import (INSTANT, PRIVATE, QUIET, EditFollower, bind, caller_of, generation, progress_on,
                            raise_for_ui, session_of)
from lab.waits import EventPump, StopWaiting
from lab.wiring import AppServices

THUMB_COUNT = 5
STOP_KEY = "single"
PAIR_MIN_WIDTH = 200  # two side by side from 400 px up; one per row on a phone
BACKGROUND_CHECK_S = 2.0
# The fields that can show an error under their label.
MARKABLE = frozenset(pres.FORM_FIELD_OF.values())

# Form.updates key (not a field) naming the run the form was loaded from.
PARENT = "_parent"
# How often a finished run's page looks for its pre-screen (a journal read) until it is in.
SCREEN_CHECK_S = 1.5


@dataclass
class Form:
    """The request form: one component per ``pres.FORM_FIELDS`` name; ``group`` hides in raw mode."""

    fields: dict[str, Any]
    group: Any
    infos: dict[str, str]  # each field's own info line, shown when it has no error
    # The raw editor's text as the lab last wrote it: text still equal to it was not edited by the user.
    raw_origin: Any
    # The run the form was loaded from (History, "Use this seed"): journalled as the next run's parent.
    parent: Any = None

    @property
    def components(self) -> set:
        return set(self.fields.values())

    @property
    def outputs(self) -> set:
        """What ``updates`` may change: the fields, the group, the raw editor's origin and the parent run."""
        return self.components | {self.group, self.raw_origin, self.parent}

    def values(self, data: Mapping[Any, Any]) -> dict[str, Any]:
        """The form's values by field name, from an event's input dict."""
        return {name: data[component] for name, component in self.fields.items()}

    def updates(self, values: Mapping[str, Any]) -> dict[Any, Any]:
        """``{component: value}`` for the named fields, and the group shown unless raw mode is on.

        Raw text written here is the lab's, not the user's (``raw_origin``), so switching raw mode on
        later rebuilds it from the form as it is then.
        """
        out = {self.fields[name]: value for name, value in values.items() if name != PARENT}
        if PARENT in values:
            out[self.parent] = values[PARENT]
        if "raw_mode" in values:
            out[self.group] = gr.update(visible=not values["raw_mode"])
        if "raw_body" in values:
            out[self.fields["raw_body"]] = gr.update(value=values["raw_body"],
                                                     **({"visible": bool(values["raw_mode"])}
                                                        if "raw_mode" in values else {}))
            out[self.raw_origin] = values["raw_body"]
        return out


@dataclass
class SingleTab:
    form: Form
    preset: Any
    randomize: Any
    new_seed: Any
    effective: Any
    gate: Any
    wire_note: Any
    form_errors: Any
    wire_code: Any
    curl_code: Any
    python_code: Any
    generate: Any
    stop: Any
    image_info: Any
    crop: Any
    fetch: Any
    progress: Any
    video: Any
    thumbs: Any
    check: Any
    sent: Any
    answer: Any
    summary: Any
    background: Any
    watch: Any
    seek_to: Any
    badges: Any = None  # the take's pre-screen badges under the video (a click seeks it)
    screen_task: Any = None  # State: the task whose pre-screen ``badges`` waits for
    screen_watch: Any = None  # Timer: looks for that pre-screen until it is journalled

    @property
    def result_outputs(self) -> set:
        return {self.progress, self.video, self.thumbs, self.check, self.sent, self.answer, self.summary,
                self.badges, self.screen_task, self.screen_watch}

    @property
    def run_outputs(self) -> set:
        return self.result_outputs | {self.form.fields["seed"], self.background, self.watch}


def build(settings_models: Sequence[str], presets: Sequence[Preset]) -> SingleTab:
    """The tab's layout (call inside ``gr.Tab``)."""
    with gr.Row():
        with gr.Column(scale=5):
            preset = gr.Dropdown(
                choices=[p.name for p in presets], value=None, label="Preset",
                info="Fills the form with a named prompt and parameters.",
            )
            fields: dict[str, Any] = {}
            with gr.Group(visible=True) as group:
                fields["model"] = gr.Dropdown(
                    choices=list(settings_models), value=settings_models[0], label="Model",
                    info=pres.model_prices(settings_models),
                )
                fields["prompt"] = gr.Textbox(
                    label="Prompt", lines=4, max_lines=12, placeholder="Scene, subject, action, camera, lighting, sound…",
                )
                fields["negative_prompt"] = gr.Textbox(label="Negative prompt (metadata.negativePrompt)", lines=1)
                # Image-to-video: one JPEG/PNG/WebP as the starting frame (sent as multipart).
                fields["image"] = gr.Image(
                    label="Reference image (image-to-video)", type="filepath",
                    sources=["upload", "clipboard"], format="png", height=200, elem_id="reference-image",
                )
                image_info = gr.Markdown(elem_id="image-info")
                crop = gr.Button("Crop & scale", size="sm", visible=False, elem_id="crop-image")
                with gr.Row():
                    fields["duration"] = gr.Dropdown(
                        choices=pres.choices_with_not_set(params.DURATIONS), value="8", label="duration (s)",
                        min_width=PAIR_MIN_WIDTH,
                    )
                    fields["size"] = gr.Dropdown(
                        choices=pres.choices_with_not_set(params.SIZES), value=pres.NOT_SET, label="size",
                        min_width=PAIR_MIN_WIDTH,
                    )
                # Two per row (four cut "metadata.aspectRatio" off); one per row on a phone (PAIR_MIN_WIDTH).
                with gr.Row():
                    fields["resolution"] = gr.Dropdown(
                        choices=pres.choices_with_not_set(params.RESOLUTIONS), value=pres.NOT_SET,
                        label="metadata.resolution", min_width=PAIR_MIN_WIDTH,
                    )
                    fields["aspect_ratio"] = gr.Dropdown(
                        choices=pres.choices_with_not_set(params.ASPECT_RATIOS), value=pres.NOT_SET,
                        label="metadata.aspectRatio", min_width=PAIR_MIN_WIDTH,
                    )
                with gr.Row():
                    fields["seed"] = gr.Textbox(
                        label="Seed (metadata.seed)", value="", max_lines=1, placeholder="empty: the service picks one",
                        min_width=PAIR_MIN_WIDTH,
                    )
                    with gr.Column():
                        randomize = gr.Checkbox(label="New random seed on each run", value=False)
                        new_seed = gr.Button("Random seed", size="sm")
            with gr.Accordion("Advanced: other duration fields, raw JSON body", open=False):
                with gr.Row():
                    fields["duration_seconds"] = gr.Dropdown(
                        choices=pres.choices_with_not_set(params.DURATIONS), value=pres.NOT_SET,
                        label="metadata.durationSeconds (integer)",
                    )
                    fields["seconds"] = gr.Dropdown(
                        choices=pres.choices_with_not_set(params.DURATIONS), value=pres.NOT_SET, label="seconds",
                    )
                fields["raw_mode"] = gr.Checkbox(label="Raw body mode: send the JSON below instead of the form",
                                                 value=False)
                fields["raw_body"] = gr.Code(
                    language="json", label="Raw request body", lines=10, interactive=True, visible=False,
                    elem_id="raw-body",
                )
            # Errors no single field can show (all of them in raw mode), right under the form.
            form_errors = gr.Markdown(elem_id="form-errors", elem_classes=["lab-errors"])
        with gr.Column(scale=4):
            gr.Markdown("### Effective request")
            effective = gr.Markdown(elem_id="effective-panel")
            gate = gr.Markdown(elem_id="generate-gate")
            wire_note = gr.Markdown(elem_id="wire-note", elem_classes=["lab-note"])
            with gr.Tabs():
                with gr.Tab("JSON body"):
                    wire_code = gr.Code(language="json", label="Body that will be sent", interactive=False)
                with gr.Tab("curl"):
                    curl_code = gr.Code(language="shell", label="curl (key redacted)", interactive=False)
                with gr.Tab("Python"):
                    python_code = gr.Code(language="python", label="Python (key redacted)", interactive=False)
    # On a phone this bar sticks to the bottom of the screen (CSS), so Generate is always in reach.
    with gr.Row(elem_id="run-actions"):
        generate = gr.Button("Generate", variant="primary", interactive=False, min_width=100)
        stop = gr.Button(pres.BACKGROUND_BUTTON, variant="stop", min_width=100)
        fetch = gr.Button("Fetch unfinished", min_width=100)
    progress = gr.Markdown(elem_id="run-progress")
    with gr.Row():
        with gr.Column(scale=1, min_width=320):
            video = gr.Video(label="Video", interactive=False, buttons=["download"], elem_id="run-video")
            badges = gr.HTML("", elem_id="run-badges")
        with gr.Column():
            # The hint above the pictures: Gradio's label badge would sit over the first thumbnails.
            gr.Markdown("**Thumbnails:** click one to jump the video there", elem_id="run-thumbs-hint",
                        elem_classes=["lab-note"])
            # No preview: a click seeks the video to that frame instead (seek_to_thumb). Whole frames
            # at their own aspect, as in the sweep and History (a 9:16 frame is not cropped square).
            thumbs = gr.Gallery(label="Thumbnails", show_label=False, columns=THUMB_COUNT, interactive=False,
                                allow_preview=False, object_fit="contain", buttons=[], elem_id="run-thumbs",
                                elem_classes=["whole-frames"])
    check = gr.Markdown(elem_id="run-check")
    with gr.Row():
        sent = gr.Code(language="json", label="Request sent", interactive=False, elem_id="request-sent")
        answer = gr.JSON(label="Server answered", elem_id="server-answer")
    summary = gr.Markdown(elem_id="run-summary")
    # Tasks this page stopped waiting for; the timer looks them up until each has ended.
    background = gr.State([])
    watch = gr.Timer(BACKGROUND_CHECK_S, active=False)
    # Not a State: the page's script reads it, and States stay on the server.
    seek_to = gr.Number(visible=False)
    raw_origin = gr.State("")
    return SingleTab(
        form=Form(fields, group, {"model": pres.model_prices(settings_models)}, raw_origin, gr.State(None)),
        preset=preset,
        randomize=randomize, new_seed=new_seed, effective=effective,
        gate=gate, wire_note=wire_note, form_errors=form_errors, wire_code=wire_code, curl_code=curl_code,
        python_code=python_code, generate=generate, stop=stop, image_info=image_info, crop=crop, fetch=fetch, progress=progress, video=video,
        thumbs=thumbs, check=check, sent=sent, answer=answer, summary=summary, background=background, watch=watch,
        seek_to=seek_to, badges=badges, screen_task=gr.State(None), screen_watch=gr.Timer(SCREEN_CHECK_S, active=False),
    )


# ---------------------------------------------------------------- handlers


def resolve_form(values: Mapping[str, Any]) -> tuple[dict | None, params.Resolution | None, str | None]:
    """(raw body, its resolution, None) or (None, None, why the form cannot be read).

    The form's image is read here, once per event; its facts travel on in ``resolution.image``.
    """
    try:
        body = pres.body_from_form(**values)
        # The image input hands over a path in Gradio's upload folder; a path typed into the
        # raw body must not make the server read (or probe) any other file.
        image_input.check_confined(body, [upload_folder()])
    except RequestInvalid as err:
        return None, None, str(err)
    return body, image_input.resolve(body), None


def upload_folder() -> str:
    """Where Gradio keeps this server's uploads (and images the lab hands back to the page)."""
    from gradio.utils import get_upload_folder

    return get_upload_folder()


def page_wire(wire: Mapping[str, Any]) -> dict[str, Any]:
    """The wire as the page shows it: an image part names its file, not a path on the server."""
    part = params.image_part(wire)
    if part is None:
        return dict(wire)
    return {**wire, params.IMAGE_FIELD: {**part, "path": part.get("filename")}}


def wire_text(wire: Mapping[str, Any]) -> str:
    """JSON for a JSON body; the form's fields, one per line, for a multipart one."""
    return params.form_preview(wire) if params.is_multipart(wire) else params.wire_json(wire)


def image_offer(image: str | None, resolution: params.Resolution | None) -> tuple[str, dict]:
    """(the image's info line, the crop button's update): offered when the image is not the output size."""
    if not image:
        return "", gr.update(visible=False)
    facts = resolution.image if resolution is not None and resolution.image is not None else image_input.inspect(image)
    size = resolution.effective.get("size") if resolution is not None else None
    if not facts.ok or not size or image_input.matches_size(facts, size):
        return pres.image_summary(facts), gr.update(visible=False)
    return pres.image_summary(facts), gr.update(visible=True, value=f"Crop & scale to {size}")


CANONICAL_NOTE = ("The lab sends a **canonical body**: only the effective values, with the duration as a string, "
                  "the pixel size in `size` and resolution and aspect ratio explicit, so the service cannot read "
                  "your fields differently from this panel. To see what the service itself does with conflicting "
                  "fields, turn on raw body mode (under Advanced).")
RAW_NOTE = ("**Raw mode:** this body is sent **exactly as written**. The table is the lab's prediction of how "
            "the service resolves it; after the run, *Prediction vs result* sets it beside what the service gave.")


def _field_updates(form: Form, marked: Mapping[str, str], warned: Mapping[str, str] | None = None) -> dict:
    """Each field's error (or, failing one, its warning) under its label, styled as such; the others cleared."""
    out = {}
    warned = warned or {}
    for name, component in form.fields.items():
        if name not in MARKABLE:
            continue
        message = marked.get(name)
        warning = None if message else warned.get(name)
        style = ["lab-invalid"] if message else ["lab-warning"] if warning else []
        out[component] = gr.update(info=message or warning or form.infos.get(name), elem_classes=style)
    return out


def refresh_panel(snippet_base: str, tab: SingleTab, data: dict) -> dict:
    values = tab.form.values(data)
    raw_mode = bool(values["raw_mode"])
    body, resolution, problem = resolve_form(values)
    gate = pres.generate_gate(resolution, problem)
    marked: dict[str, str] = {}
    general: list[str] = []
    if resolution is None:
        panel = ""
        general = [problem or ""]
        wire = curl = python = ""
    else:
        if not raw_mode:
            marked, general = pres.field_errors(resolution)
        else:
            general = [f"**{i.field}**: {i.message}" for i in resolution.errors]
        panel = pres.effective_markdown(resolution, errors=False)
        sent = body if raw_mode else resolution.wire
        if resolution.wire is not None:
            shown = page_wire(sent)
            wire = wire_text(shown)
            curl = params.curl_snippet(shown, snippet_base)
            python = params.python_snippet(shown, snippet_base)
        else:
            wire = params.shown_json(body)
            curl = python = "# The request is invalid; fix the errors to get a snippet."
    if not gate.ok and (marked or general):
        gate = pres.Gate(False, pres.FIELD_ERRORS_MARKED)
    errors = "\n".join(f"- {line}" for line in general)
    out = {tab.effective: panel, tab.gate: gate.reason, tab.wire_code: wire, tab.curl_code: curl,
           tab.python_code: python, tab.generate: gr.update(interactive=gate.ok),
           tab.form_errors: f"**Cannot send:**\n{errors}" if errors else "",
           tab.wire_note: RAW_NOTE if raw_mode else CANONICAL_NOTE}
    out.update(_field_updates(tab.form, marked, {} if raw_mode else pres.field_warnings(resolution)))
    out[tab.image_info], out[tab.crop] = image_offer(None if raw_mode else values["image"], resolution)
    return out


def crop_image(tab: SingleTab, data: dict) -> dict:
    """Centre-crop and scale the image to the effective output size; the image input shows the result."""
    values = tab.form.values(data)
    _, resolution, problem = resolve_form(values)
    size = resolution.effective.get("size") if resolution is not None else None
    if problem or not values["image"] or not size:
        raise gr.Error(problem or "Choose an image and a valid size first.", print_exception=False)
    try:
        fitted = image_input.fit(values["image"], size)
    except LabError as err:
        raise_for_ui(err)
    return {tab.form.fields["image"]: fitted,
            tab.image_info: f"Cropped & scaled to {size}: this is the image that will be sent."}


def toggle_raw(form: Form, data: dict) -> dict:
    """The user switched raw mode: show the JSON editor and hide the form, or the reverse.

    Switching it on starts the editor from the form as it is now, so what raw mode sends is what
    the user sees, never a body loaded earlier (a preset, a History run) and edited in the form
    since. Only text the user typed into the editor themselves (it differs from what the lab last
    wrote there) is kept, so switching raw mode off and on again loses none of their work.
    """
    values = form.values(data)
    raw_mode, raw_text = bool(values["raw_mode"]), values["raw_body"] or ""
    out = {form.group: gr.update(visible=not raw_mode), form.fields["raw_body"]: gr.update(visible=raw_mode)}
    if raw_mode and (not raw_text.strip() or raw_text.strip() == (data[form.raw_origin] or "").strip()):
        try:
            raw_text = json.dumps(pres.body_from_form(**{**values, "raw_mode": False}), ensure_ascii=False, indent=2)
        except RequestInvalid:
            raw_text = "{}"
        out[form.fields["raw_body"]] = gr.update(visible=True, value=raw_text)
        out[form.raw_origin] = raw_text
    return out


def choose_preset(presets: Sequence[Preset], form: Form, name: str | None) -> dict:
    if not name:
        return {}
    chosen = next(p for p in presets if p.name == name)
    # A preset is a fresh start: the next run comes from no earlier run.
    return form.updates({**pres.form_from_body(dict(chosen.body)), PARENT: None})


def roll_seed() -> str:
    return str(params.random_seed())


def run_generate(services: AppServices, stops: StopWaiting, tab: SingleTab, key: Any, data: dict,
                 request: gr.Request):
    """Generate one video, streaming its stages; stops waiting (not the task) when asked."""
    caller = caller_of(services, request)
    session = caller.session
    values = tab.form.values(data)
    body, resolved, problem = resolve_form(values)
    if problem:
        raise gr.Error(problem, print_exception=False)
    if data[tab.randomize]:
        body = params.with_seed(body, params.random_seed())
        resolved = params.resolve(body, image=resolved.image)  # the same image: not read again
    if not resolved.ok:
        raise gr.Error("The request is invalid: " + resolved.error_text(), print_exception=False)
    # Raw mode sends the JSON as written; a multipart (image) body always goes out as the lab builds it.
    as_written = bool(values["raw_mode"]) and not params.is_multipart(resolved.wire)
    seed_out = resolved.effective["seed"]
    median = services.runs.median_elapsed(resolved)
    visitor_key = data[key]
    sent = wire_text(page_wire(body if as_written else resolved.wire))
    with stops.running((session, STOP_KEY)) as started:
        stage, task_id = "queued", None
        yield {tab.progress: pres.stage_markdown("queued", 0, median, None, "Submitting…"), tab.video: None,
               tab.thumbs: None, tab.check: "", tab.badges: "", tab.screen_watch: gr.Timer(active=False),
               tab.sent: sent, tab.answer: None, tab.summary: "",
               **({tab.form.fields["seed"]: str(seed_out)} if seed_out is not None else {})}
        parent = data.get(tab.form.parent)
        pump = EventPump(lambda on_event: services.runs.run_one(body, session=session, person=caller.person,
                                                                 on_event=on_event, visitor_key=visitor_key,
                                                                 as_written=as_written, image=resolved.image,
                                                                 parent_task_id=parent))
        for event in pump:
            if event is not None:
                task_id = event.task_id or task_id
                stage = pres.stage_for_event(event.kind, event.status) or stage
            if stops.stop_requested((session, STOP_KEY), started):
                update = {tab.progress: pres.stopped_waiting_text(task_id)}
                if task_id:  # watch it, so the page shows the video when it completes
                    update.update({tab.background: [*(data[tab.background] or []), task_id],
                                   tab.watch: gr.Timer(active=True)})
                yield update
                return
            yield {tab.progress: pres.stage_markdown(stage, stops.now() - started, median, task_id)}
    if isinstance(pump.error, LabError):
        note = pres.failure_note(pump.error)
        yield {tab.progress: f"**Not generated.** {note}", tab.video: None, tab.thumbs: None, tab.sent: sent,
               tab.answer: None, tab.summary: ""}
        raise gr.Error(note, print_exception=False)
    if pump.error is not None:
        raise pump.error
    outcome: pres.RunOutcome = pump.result
    if not outcome.ok:
        yield {tab.progress: f"**Failed.** {outcome.message}", tab.video: None, tab.thumbs: None, tab.sent: sent,
               tab.answer: pres.no_path_keys(outcome.answer), tab.summary: outcome.summary_markdown()}
        return
    yield {
        tab.progress: pres.stage_markdown("done", outcome.elapsed_s or (stops.now() - started), median,
                                          outcome.task_id),
        **_result(tab, outcome, services.settings.prescreen),
        tab.sent: sent,
    }


def _result(tab: SingleTab, outcome: pres.RunOutcome, prescreen: bool) -> dict:
    saved = bool(outcome.ok and outcome.video)
    # The pre-screen runs after the result: "pending" until the timer finds it journalled; with the
    # pre-screen off (setting prescreen) the take reads "not screened" and no timer waits for it.
    coming = saved and pres.screen_state(None, prescreen=prescreen) == pres.SCREEN_PENDING
    return {
        tab.badges: pres.badges_html(None, "#run-video video", prescreen=prescreen) if saved else "",
        tab.screen_task: outcome.task_id if saved else None,
        tab.screen_watch: gr.Timer(active=coming),
        tab.video: outcome.video,
        tab.thumbs: list(outcome.thumbnails),
        tab.check: pres.prediction_check(outcome.predicted, outcome.answer, outcome.delivered),
        tab.answer: pres.no_path_keys(outcome.answer),
        tab.summary: outcome.summary_markdown(),
    }


def check_background(services: AppServices, tab: SingleTab, waiting: list, request: gr.Request) -> dict:
    """Show a task the page stopped waiting for once it has ended; stop the timer when none is left.

    "Ended" is when its run lets go of it (``waited_on``), not when the journal first says saved:
    the thumbnails are made after that, and a page shown then would keep an empty gallery.
    """
    still, done = [], []
    for task_id in waiting or []:
        record = services.journal.run(session_of(request), task_id)
        if record is None:
            continue  # not in this journal (or not this session's): nothing to show
        if record.status in FINISHED_STATUSES and not services.runs.waited_on(record):
            done.append(record)
        else:
            still.append(task_id)
    out: dict = {tab.background: still, tab.watch: gr.Timer(active=bool(still))}
    if done:
        latest = done[-1]
        outcome = services.runs.ended_outcome(latest)
        out.update(_result(tab, outcome, services.settings.prescreen))
        out[tab.progress] = pres.background_done_text(latest)
        out[tab.sent] = wire_text(page_wire(latest.wire)) if latest.wire else None
    return out


def check_screen(services: AppServices, tab: SingleTab, task_id: str | None, request: gr.Request) -> dict:
    """The shown take's badges once its pre-screen is journalled (then the timer stops)."""
    record = services.journal.run(session_of(request), task_id) if task_id else None
    if record is None:
        return {tab.screen_watch: gr.Timer(active=False)}
    screen = services.journal.screens([record]).get(task_id)
    prescreen = services.settings.prescreen
    if pres.screen_state(screen, prescreen=prescreen) == pres.SCREEN_PENDING:
        return {tab.screen_watch: gr.Timer(active=True)}
    return {tab.badges: pres.badges_html(screen, "#run-video video", prescreen=prescreen),
            tab.screen_watch: gr.Timer(active=False)}


def thumb_seek_time(thumbs: list | None, evt: gr.SelectData) -> float | None:
    """The time of the clicked thumbnail (the page's script then seeks the video there)."""
    index = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
    if index is None or not thumbs or index >= len(thumbs):
        return None
    item = thumbs[index]
    path, caption = (item[0], item[1] if len(item) > 1 else None) if isinstance(item, (list, tuple)) else (item, None)
    return pres.thumb_time(caption, str(path))


# Runs in the page: seek (and pause on) the frame the clicked thumbnail shows.
SEEK_JS = """(t) => {
  const video = document.querySelector('#run-video video');
  if (video && t !== null && t !== undefined) { video.pause(); video.currentTime = t; }
  return [];
}"""


def stop_waiting(stops: StopWaiting, which: str, request: gr.Request):
    """Ask the running wait of this session's tab to stop; the running handler says so on its next tick."""
    if not stops.request_stop((session_of(request), which)):
        return pres.NOTHING_TO_STOP
    return gr.skip()


def fetch_unfinished(services: AppServices, request: gr.Request) -> str:
    try:
        report = services.runs.resume(session=session_of(request))
    except LabError as err:
        raise_for_ui(err)
    if report.busy:
        return "A fetch of unfinished tasks is already running."
    return pres.resume_text(report.results, report.held)


# ---------------------------------------------------------------- events


def panel_outputs(tab: SingleTab) -> set:
    """What ``refresh_panel`` changes: the request panel, the gate, the snippets and the marked fields."""
    return {tab.effective, tab.gate, tab.wire_note, tab.form_errors, tab.wire_code, tab.curl_code,
            tab.python_code, tab.generate, tab.image_info, tab.crop,
            *(c for name, c in tab.form.fields.items() if name in MARKABLE)}


def edit_follower(tab: SingleTab, services: AppServices) -> EditFollower:
    """The request panel follows every edit of the form."""
    return EditFollower(bind(refresh_panel, services.access.snippet_base_url, tab), frozenset(tab.form.components),
                        frozenset(tab.form.components), frozenset(panel_outputs(tab)))


def generate_event(trigger: Any, services: AppServices, stops: StopWaiting, tab: SingleTab, visitor_key: Any):
    """Attach Generate to ``trigger`` (a listener such as ``button.click`` or ``dependency.then``)."""
    return trigger(
        bind(run_generate, services, stops, tab, visitor_key),
        inputs={*tab.form.components, tab.form.parent, tab.randomize, tab.background, visitor_key},
        outputs=tab.run_outputs,
        show_progress="minimal", **progress_on(tab.run_outputs), **generation(services.settings.max_concurrent_total),
        **PRIVATE,
    )


def connect(demo: gr.Blocks, tab: SingleTab, services: AppServices, stops: StopWaiting, presets: Sequence[Preset],
            visitor_key: Any) -> list:
    """The tab's events; returns those that may change what was spent (the shell refreshes the banner)."""
    refresh = bind(refresh_panel, services.access.snippet_base_url, tab)
    # .input: only the user's click; a loaded body that needs raw mode shows itself (Form.updates).
    tab.form.fields["raw_mode"].input(bind(toggle_raw, tab.form), {*tab.form.components, tab.form.raw_origin},
                                      {tab.form.group, tab.form.fields["raw_body"], tab.form.raw_origin}, **INSTANT)
    tab.preset.change(bind(choose_preset, presets, tab.form), tab.preset, tab.form.outputs, **INSTANT)
    tab.new_seed.click(roll_seed, None, tab.form.fields["seed"], **INSTANT)
    tab.crop.click(bind(crop_image, tab), tab.form.components, {tab.form.fields["image"], tab.image_info}, **PRIVATE)
    demo.load(refresh, tab.form.components, panel_outputs(tab), **QUIET)
    generated = generate_event(tab.generate.click, services, stops, tab, visitor_key)
    tab.stop.click(bind(stop_waiting, stops, STOP_KEY), None, tab.progress, queue=False, **QUIET)
    tab.fetch.click(bind(fetch_unfinished, services), None, tab.progress, **PRIVATE)
    finished = tab.watch.tick(bind(check_background, services, tab), tab.background,
                              {*tab.result_outputs, tab.sent, tab.background, tab.watch}, **QUIET)
    tab.screen_watch.tick(bind(check_screen, services, tab), tab.screen_task, {tab.badges, tab.screen_watch}, **QUIET)
    tab.thumbs.select(thumb_seek_time, tab.thumbs, tab.seek_to, **QUIET).then(None, tab.seek_to, None, js=SEEK_JS,
                                                                              **QUIET)
    return [generated, finished]
