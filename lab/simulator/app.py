"""The simulator's HTTP surface: ``/v1/videos...`` as APIYI (new-api) serves it, plus ``/_sim/ledger``.

Submit checks run in the gateway's order: key; JSON decoding into Go types
(``parse_request_failed``); model (an unknown or missing model answers **503**
"No available channel", as new-api's distributor does); blank prompt
(``invalid_request``); duration not 4/6/8 (``invalid_request``); then what Google
rejects (``generateAudio``, 1080p/4k without 8 s, bad seed, enums, size), relayed
as 400 ``fail_to_fetch_task`` whose message is Google's ``INVALID_ARGUMENT`` body.
Validation is ``lab.params.resolve``: the simulator and the lab cannot drift.
Nothing here blocks the event loop: renders run in the renderer's threads.

The routes only order the steps; the envelopes are ``envelopes``, body decoding is
``decode`` and the service's state and behaviour are ``service.Simulator``.
"""

from __future__ import annotations

import logging
import time

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from lab.image_input import resolve as resolve_reading_image
from lab.params import BODY_MAX_BYTES, resolve
from lab.simulator.config import SimConfig
from lab.simulator.decode import decode_submit, read_body_limited
from lab.simulator.envelopes import content_error, rejection, task_error
from lab.simulator.image_form import read_image_form
from lab.simulator.service import Simulator
from lab.simulator.tasks import SUCCESS

log = logging.getLogger(__name__)

SUBMIT_ROUTE = "POST /v1/videos"
POLL_ROUTE = "GET /v1/videos/{id}"
CONTENT_ROUTE = "GET /v1/videos/{id}/content"
LEDGER_ROUTE = "GET /_sim/ledger"


def _bad_task_header(message: str) -> Response:
    return task_error(400, "invalid_request", message)


def _bad_content_header(message: str) -> Response:
    return content_error(400, message)


def create_app(config: SimConfig | None = None) -> FastAPI:
    """The simulator as an ASGI app; mount it anywhere (its routes are ``/v1/videos...`` and ``/_sim/ledger``).

    ``app.state.sim.ledger()`` reads the ledger without HTTP; call ``app.state.sim.close()``
    when done with a mounted app (it stops the render threads; ``SimulatorServer`` does this).
    """
    sim = Simulator(config or SimConfig())
    app = FastAPI(title="Veo Prompt Lab simulator", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.sim = sim

    @app.post("/v1/videos")
    async def submit(request: Request) -> Response:
        owner, forced, refusal = sim.admit(SUBMIT_ROUTE, request, _bad_task_header)
        if refusal is not None:
            return refusal
        fault = sim.transport_fault(SUBMIT_ROUTE, ("rate_429", "server_500"), forced)
        if fault is not None:
            return fault  # refused before a task exists: nothing created, nothing billed
        if request.headers.get("content-type", "").lower().startswith("multipart/"):
            # Image-to-video (or the openai SDK's form): the later i2v page's rules, one image kept.
            form = await read_image_form(request, sim.config.cache_dir / "uploads")
            if form.message is not None:
                return task_error(form.status or 400, form.code, form.message)
            resolution = resolve(form.body, image=form.image, multipart=True)
            if not resolution.ok:
                return rejection(resolution, form.body)
            return sim.accept(owner, resolution.effective, forced, image=resolution.image)
        raw = await read_body_limited(request, BODY_MAX_BYTES)
        if raw is None:
            return task_error(413, "invalid_request", f"request body too large: at most {BODY_MAX_BYTES} bytes")
        body, problem = decode_submit(raw)
        if problem is not None:
            return task_error(400, "parse_request_failed", problem)
        try:
            # A JSON body naming an image: read it as the lab does (params reads nothing itself).
            resolution = resolve_reading_image(body)
            if not resolution.ok:
                return rejection(resolution, body)
        except Exception:  # noqa: BLE001 - a bug in reading a body is still no reason for a 5xx
            log.exception("simulator could not judge a submitted body")
            return task_error(400, "invalid_request", "the request body could not be read")
        return sim.accept(owner, resolution.effective, forced)

    @app.get("/v1/videos/{task_id}")
    async def poll(task_id: str, request: Request) -> Response:
        owner, forced, refusal = sim.admit(POLL_ROUTE, request, _bad_task_header)
        if refusal is not None:
            return refusal
        fault = sim.transport_fault(POLL_ROUTE, ("rate_429", "server_500", "drop_connection"), forced)
        if fault is not None:
            return fault
        task = sim.store.get(task_id, owner)
        if task is None:
            return task_error(400, "task_not_exist", "task_not_exist")
        return JSONResponse(sim.video_object(task, time.time()))

    @app.get("/v1/videos/{task_id}/content")
    async def content(task_id: str, request: Request) -> Response:
        owner, forced, refusal = sim.admit(CONTENT_ROUTE, request, _bad_content_header)
        if refusal is not None:
            return refusal
        task = sim.store.get(task_id, owner)
        if task is None:
            return content_error(404, "Task not found")
        fault = sim.transport_fault(CONTENT_ROUTE, ("drop_connection",), forced)
        if fault is not None:
            return fault
        now = time.time()
        status = sim.store.observe(task, now)
        if status != SUCCESS:
            return content_error(400, f"Task is not completed yet, current status: {status}")
        refused = sim.content_fault(task, now)
        if refused is not None:
            return refused
        return FileResponse(
            task.render_path,
            media_type="video/mp4",
            headers={"Cache-Control": "public, max-age=86400"},
            content_disposition_type="inline",
        )

    @app.get("/_sim/ledger")
    async def ledger() -> Response:
        sim.store.count_request(LEDGER_ROUTE)
        return JSONResponse(sim.ledger())

    return app
