"""The public endpoints for gradio_client: ``/resolve``, ``/generate``, ``/sweep``. A body as in the docs in, data out.

Their parameters are positional on purpose: they are the endpoints' documented signature.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from lab import image_input, params, presentation as pres
from lab.errors import LabError
from lab.ui.events import bind, caller_of, generation, raise_for_ui
from lab.wiring import AppServices


@dataclass
class ApiComponents:
    """Hidden components that carry the endpoints' data."""

    body: Any
    seeds: Any
    random_count: Any
    variants: Any
    resolution: Any
    video: Any
    summary: Any
    sheet: Any
    zip: Any
    sweep_summary: Any
    resolve: Any
    generate: Any
    sweep: Any


def build() -> ApiComponents:
    with gr.Column(visible=False):
        return ApiComponents(
            body=gr.Textbox(label="body"), seeds=gr.Textbox(label="seeds"),
            random_count=gr.Number(label="random_seeds", precision=0), variants=gr.Textbox(label="variants"),
            resolution=gr.JSON(label="resolution"), video=gr.Video(label="video"), summary=gr.JSON(label="summary"),
            sheet=gr.File(label="contact_sheet"), zip=gr.File(label="zip"),
            sweep_summary=gr.JSON(label="sweep_summary"),
            resolve=gr.Button("resolve"), generate=gr.Button("generate"), sweep=gr.Button("sweep"),
        )


def _parse(body_text: Any) -> Any:
    # Size first, then strict JSON: a huge or hostile body is refused before it is parsed.
    body = body_text
    if isinstance(body_text, (str, bytes)):
        body, problem = params.parse_json(body_text)
        if problem is not None:
            raise gr.Error(problem.message, print_exception=False)
    try:
        # An API caller sends the image as a data: URI; no path on this server is read for them.
        image_input.check_confined(body, [])
    except LabError as err:
        raise gr.Error(str(err), print_exception=False) from err
    return body


def _valid_body(body_text: Any) -> tuple[dict, params.Resolution]:
    """The body and its resolution (its image read once, here); gr.Error when it is invalid."""
    body = _parse(body_text)
    resolution = image_input.resolve(body)
    if not resolution.ok:
        raise gr.Error("The request is invalid: " + resolution.error_text(), print_exception=False)
    return body, resolution


def api_resolve(body_text: str) -> dict:
    return pres.no_path_keys(image_input.resolve(_parse(body_text)).to_json())


# What view_api and the API page say about who a caller is (README "API"): the same words everywhere.
IDENTITY_NOTE = (
    "Who you are: pass your Hugging Face token, Client(url, oauth_token=HF_TOKEN) (or token=HF_TOKEN off a "
    "Space), and every Client() you make is the same person: your runs, /compare of them, and one daily "
    "per-person spend cap and submit rate. Without a token each Client() is a new session that sees none "
    "of your earlier runs, and your spend and rate are counted by your address."
)
GENERATE_DOC = ("Generate one video from a JSON body (the APIYI /v1/videos fields): returns the video and a "
                "summary (task_id, status, cost). Refused before anything is sent when the request is invalid, "
                "a spend cap is reached or you start runs too fast. " + IDENTITY_NOTE)
SWEEP_DOC = ("Run one body over seeds (and prompt variants, one per line): returns the contact sheet, a ZIP of "
             "the videos and a summary (sweep_id, each task). " + IDENTITY_NOTE)


def api_generate(services: AppServices, body_text: str, request: gr.Request, oauth_token: gr.OAuthToken | None):
    body, resolution = _valid_body(body_text)
    caller = caller_of(services, request, oauth_token)
    try:
        outcome = services.runs.run_one(body, session=caller.session, person=caller.person, on_event=None,
                                        image=resolution.image)
    except LabError as err:
        raise gr.Error(pres.failure_note(err), print_exception=False) from err
    # A failed task is data: no video, and the summary says why.
    return outcome.video, pres.no_path_keys(outcome.summary())


def api_sweep(services: AppServices, body_text: str, seeds_text: str, random_count: float | None, variants_text: str,
              request: gr.Request, oauth_token: gr.OAuthToken | None):
    body, resolution = _valid_body(body_text)
    caller = caller_of(services, request, oauth_token)
    try:
        plan = services.runs.plan_sweep(body, seeds_text=seeds_text, random_count=random_count,
                                        variants_text=variants_text, image=resolution.image)
        outcome = services.runs.run_sweep(plan, session=caller.session, person=caller.person, on_event=None)
    except LabError as err:
        raise_for_ui(err)
    return outcome.contact_sheet, outcome.zip_path, pres.no_path_keys(outcome.summary())


def connect(api: ApiComponents, services: AppServices) -> None:
    busy = generation(services.settings.max_concurrent_total)
    api.resolve.click(api_resolve, api.body, api.resolution, api_name="resolve")
    api.generate.click(bind(api_generate, services), api.body, [api.video, api.summary], api_name="generate",
                       api_description=GENERATE_DOC, **busy)
    api.sweep.click(bind(api_sweep, services), [api.body, api.seeds, api.random_count, api.variants],
                    [api.sheet, api.zip, api.sweep_summary], api_name="sweep", api_description=SWEEP_DOC, **busy)
