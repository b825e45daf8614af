"""The simulator's HTTP surface: ``/v1/videos...`` as APIYI (new-api) serves it, plus ``/_sim/ledger``.

Envelopes follow the gateway's three shapes (contract §2.2): auth and routing
errors ``{"error":{"message","type":"new_api_error","code"}}``; task relay errors
``{"code","message","data":null}``; ``/content`` errors ``{"error":{"message","type"}}``.

Submit checks run in the gateway's order: key; JSON decoding into Go types
(``parse_request_failed``); model (an unknown or missing model answers **503**
"No available channel", as new-api's distributor does); blank prompt
(``invalid_request``); duration not 4/6/8 (``invalid_request``); then what Google
rejects (``generateAudio``, 1080p/4k without 8 s, bad seed, enums, size), relayed
as 400 ``fail_to_fetch_task`` whose message is Google's ``INVALID_ARGUMENT`` body.
Validation is ``lab.params.resolve``: the simulator and the lab cannot drift.
Nothing here blocks the event loop: renders run in the renderer's threads.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import secrets
import time
from typing import Any, Callable

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from lab.params import (
    BODY_MAX_BYTES,
    FAST_MODEL,
    SEED_MAX,
    OversizedNumber,
    json_float,
    json_int,
    parse_size,
    printable,
    resolve,
)
from lab.simulator import config as cfg
from lab.simulator.config import SimConfig
from lab.simulator.faults import FAULT_HEADER, FaultInjector, parse_fault_header
from lab.simulator.image_form import read_image_form
from lab.simulator.render import Renderer, RenderSpec
from lab.simulator.render_image import ImageRenderer, ImageRenderSpec
from lab.simulator.tasks import FAILURE, PROGRESS, PUBLIC_STATUS, SUCCESS, Task, TaskStore, new_task_id

log = logging.getLogger(__name__)

SUBMIT_ROUTE = "POST /v1/videos"
POLL_ROUTE = "GET /v1/videos/{id}"
CONTENT_ROUTE = "GET /v1/videos/{id}/content"
LEDGER_ROUTE = "GET /_sim/ledger"
SATURATED = "当前分组上游负载已饱和，请稍后再试"
NGINX_500 = (
    "<html>\r\n<head><title>500 Internal Server Error</title></head>\r\n<body>\r\n"
    "<center><h1>500 Internal Server Error</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
# TaskSubmitReq's typed fields (Go): a JSON value of another type fails to decode.
GO_STRING_FIELDS = ("prompt", "model", "mode", "image", "size", "duration", "seconds", "input_reference")
# Bodies past the lab's own limit are refused unread (413); up to this much is drained so the client sees it.
DRAIN_MAX_BYTES = 64 * 1024 * 1024
# What the lab's checks refuse beyond Go's decoder: the simulator answers them as a bad request, before a task exists.
STRICT_CODES = ("invalid_text", "not_finite", "out_of_range", "too_deep", "too_large", "invalid_type", "internal")
GO_FIELD_TYPES = {**{name: "string" for name in GO_STRING_FIELDS}, "images": "[]string", "metadata": "map[string]interface {}"}


class Simulator:
    """The state behind one app: tasks, ledger, renderer, faults."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.store = TaskStore()
        self.renderer = Renderer(config.cache_dir, workers=config.render_workers)
        self.image_renderer = ImageRenderer(config.cache_dir, workers=config.render_workers)
        self.faults = FaultInjector(config.faults, config.fault_seed)

    def ledger(self) -> dict[str, Any]:
        return {**self.store.ledger(), "renders": self.renderer.renders + self.image_renderer.renders}

    def close(self) -> None:
        self.renderer.close()
        self.image_renderer.close()

    def scaled(self, seconds: float) -> float:
        return seconds * self.config.time_scale

    def schedule(self, effective: dict[str, Any], faults: frozenset[str], now: float) -> tuple[float, float | None]:
        """(queue_end, scheduled_end) for a new task; scheduled_end None means never."""
        rng = self.faults.rng("timing")
        if self.config.fixed_generation_s is not None:
            queue_s, total_s = 0.0, self.config.fixed_generation_s
        else:
            queue_s = rng.uniform(*cfg.QUEUE_S)
            generation_s = rng.uniform(*cfg.FAST_720P_GENERATION_S)
            if effective["model"] != FAST_MODEL:
                generation_s *= cfg.STANDARD_FACTOR
            generation_s *= rng.uniform(*cfg.RESOLUTION_FACTOR[effective["resolution"]])
            total_s = queue_s + generation_s
        if "slow" in faults:
            queue_s, total_s = queue_s * cfg.SLOW_FACTOR, total_s * cfg.SLOW_FACTOR
        queue_end = now + self.scaled(queue_s)
        if "stuck" in faults:
            return queue_end, None
        return queue_end, now + self.scaled(total_s)


# ---------------------------------------------------------------- envelopes


def request_id() -> str:
    """new-api style: a timestamp, nanoseconds and random letters."""
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return time.strftime("%Y%m%d%H%M%S") + f"{time.time_ns() % 10**9:09d}" + "".join(secrets.choice(alphabet) for _ in range(8))


def gateway_error(status: int, message: str, code: str = "") -> JSONResponse:
    rid = request_id()
    return JSONResponse(
        {"error": {"message": f"{message} (request id: {rid})", "type": "new_api_error", "code": code}},
        status_code=status,
        headers={"X-Oneapi-Request-Id": rid},
    )


def task_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, "data": None}, status_code=status, headers=headers)


def content_error(status: int, message: str, kind: str = "invalid_request_error") -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind}}, status_code=status)


def upstream_invalid_argument(message: str) -> JSONResponse:
    """Google's 400 relayed by the gateway: its raw body becomes the message."""
    google = json.dumps({"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}}, ensure_ascii=False)
    return task_error(400, "fail_to_fetch_task", google)


# ---------------------------------------------------------------- request parsing


def _go_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float, OversizedNumber)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


class _GoRefusedConstant(ValueError):
    """NaN/Infinity: Python's decoder reads them, Go's (and JSON) does not."""


def _refuse_constant(name: str) -> Any:
    raise _GoRefusedConstant(name)


def decode_submit(raw: bytes) -> tuple[Any, str | None]:
    """``raw`` as Go's encoding/json reads a TaskSubmitReq: (body, None), or (None, what Go would say).

    Invalid UTF-8 becomes U+FFFD as in Go. Numbers too large for a float64 come back as
    ``OversizedNumber`` (``resolve`` names their field); NaN/Infinity and nesting past
    Go's limit are decode errors. Never raises.
    """
    text = raw.decode("utf-8", errors="replace")
    if not text.strip():
        return None, "unexpected end of JSON input"
    try:
        body = json.loads(text, parse_int=json_int, parse_float=json_float, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip()):
            return None, "unexpected end of JSON input"
        char = text[exc.pos]
        if exc.msg.startswith("Extra data"):
            return None, f"invalid character {char!r} after top-level value"
        if exc.msg.startswith("Expecting property name"):
            return None, f"invalid character {char!r} looking for beginning of object key string"
        if exc.msg.startswith("Expecting ':'"):
            return None, f"invalid character {char!r} after object key"
        if exc.msg.startswith("Expecting ',' delimiter"):
            return None, f"invalid character {char!r} after object key:value pair"
        return None, f"invalid character {char!r} looking for beginning of value"
    except _GoRefusedConstant as exc:
        return None, f"invalid character {str(exc).lstrip('-')[0]!r} looking for beginning of value"
    except RecursionError:
        return None, "exceeded max depth"
    except ValueError as exc:  # anything else the decoder refuses: still the client's body, never a 500
        return None, f"invalid JSON: {printable(str(exc))[:200]}"
    if not isinstance(body, dict):
        return None, f"json: cannot unmarshal {_go_type(body)} into Go value of type common.TaskSubmitReq"
    for key, value in body.items():
        go_type = GO_FIELD_TYPES.get(key)
        if go_type is None or value is None:
            continue
        expected = {"string": str, "[]string": list, "map[string]interface {}": dict}[go_type]
        if not isinstance(value, expected):
            return None, f"json: cannot unmarshal {_go_type(value)} into Go struct field TaskSubmitReq.{key} of type {go_type}"
        if go_type == "[]string" and any(not isinstance(item, str) for item in value if item is not None):
            bad = next(item for item in value if item is not None and not isinstance(item, str))
            return None, f"json: cannot unmarshal {_go_type(bad)} into Go struct field TaskSubmitReq.{key} of type string"
    return body, None


async def read_body_limited(request: Request, limit: int) -> bytes | None:
    """The request body, or None when it is longer than ``limit`` (the rest is drained, not kept).

    Draining (up to DRAIN_MAX_BYTES) lets a client that writes its whole body before
    reading still read the 413; past that the connection is simply closed.
    """
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and len(declared) < 20 and int(declared) > DRAIN_MAX_BYTES:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > DRAIN_MAX_BYTES:
            return None
        if size <= limit:
            chunks.append(chunk)
    return b"".join(chunks) if size <= limit else None


def _bearer_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "").strip()
    if header.lower().startswith("bearer "):
        header = header[7:].strip()
    return header or None


def _normal_key(key: str) -> str:
    return key[3:] if key.startswith("sk-") else key


# ---------------------------------------------------------------- dropped connections


def _find_transport(*callables: Any, depth: int = 8) -> Any:
    """The server's asyncio transport behind ASGI ``receive``/``send``, looking through middleware closures.

    uvicorn passes bound methods of its request cycle, which holds the transport;
    middlewares (e.g. when the simulator is mounted in the Gradio app) wrap them in closures.
    """
    seen: set[int] = set()
    frontier = list(callables)
    for _ in range(depth):
        next_frontier = []
        for item in frontier:
            if item is None or id(item) in seen:
                continue
            seen.add(id(item))
            owner = getattr(item, "__self__", None)
            transport = getattr(owner, "transport", None)
            if transport is not None and hasattr(transport, "abort"):
                return transport
            for name in ("_receive", "receive", "_send", "send", "app"):
                value = getattr(owner, name, None) if owner is not None else None
                if callable(value):
                    next_frontier.append(value)
            for cell in getattr(item, "__closure__", None) or ():
                try:
                    value = cell.cell_contents
                except ValueError:  # an empty cell
                    continue
                if callable(value):
                    next_frontier.append(value)
        frontier = next_frontier
    return None


class DropConnection(Response):
    """Closes the TCP connection without sending a byte (uvicorn), else sends a truncated answer."""

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[override]
        transport = _find_transport(receive, send)
        if transport is not None:
            transport.abort()
            await asyncio.sleep(0.01)  # let the server notice the disconnect
            # Answer into the void: uvicorn discards sends on a closed connection, and
            # middlewares in front of a mounted simulator still see a complete response.
            await super().__call__(scope, receive, send)
            return
        # No transport in reach: promise a body and stop short, which closes the connection too.
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1024")]})
        raise ConnectionAbortedError("simulated drop_connection")


# ---------------------------------------------------------------- the app


def create_app(config: SimConfig | None = None) -> FastAPI:
    """The simulator as an ASGI app; mount it anywhere (its routes are ``/v1/videos...`` and ``/_sim/ledger``).

    ``app.state.sim.ledger()`` reads the ledger without HTTP; call ``app.state.sim.close()``
    when done with a mounted app (it stops the render threads; ``SimulatorServer`` does this).
    """
    sim = Simulator(config or SimConfig())
    app = FastAPI(title="Veo Prompt Lab simulator", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.sim = sim

    def authenticate(request: Request) -> tuple[str | None, Response | None]:
        key = _bearer_key(request)
        if key is None:
            return None, gateway_error(401, "Token not provided")
        if sim.config.keys is not None and _normal_key(key) not in {_normal_key(k) for k in sim.config.keys}:
            return None, gateway_error(401, "Invalid token")
        return _normal_key(key), None

    def forced_faults(request: Request) -> frozenset[str]:
        return parse_fault_header(request.headers.get(FAULT_HEADER))

    def admit(route: str, request: Request, bad_header: Callable[[str], Response]):
        """Every /v1 route starts alike: count it, check the key, read X-Sim-Fault.

        Returns (owner, forced faults, None), or (None, empty, the refusal to send).
        """
        sim.store.count_request(route)
        owner, denied = authenticate(request)
        if denied is not None:
            return None, frozenset(), denied
        try:
            return owner, forced_faults(request), None
        except ValueError as exc:
            return None, frozenset(), bad_header(str(exc))

    def transport_fault(route: str, allowed: tuple[str, ...], forced: frozenset[str]) -> Response | None:
        name = sim.faults.for_request(route, allowed, forced)
        if name is None:
            return None
        form = sim.faults.rng(f"form:{name}")
        if name == "rate_429":
            retry_after = str(max(0, round(cfg.RETRY_AFTER_S * sim.config.time_scale)))
            choice = form.randrange(3)
            if choice == 0:
                return task_error(429, "", SATURATED, headers={"Retry-After": retry_after})
            if choice == 1:
                return Response(status_code=429, headers={"Retry-After": retry_after})
            return Response(status_code=429)  # the global IP limiter: no body, no hint
        if name == "server_500":
            if form.random() < 0.5:
                return Response(NGINX_500, status_code=500, media_type="text/html")
            return task_error(500, "do_request_failed", "upstream error: do request failed")
        if name == "drop_connection":
            return DropConnection()
        return None

    @app.post("/v1/videos")
    async def submit(request: Request) -> Response:
        owner, forced, refusal = admit(SUBMIT_ROUTE, request, lambda m: task_error(400, "invalid_request", m))
        if refusal is not None:
            return refusal
        fault = transport_fault(SUBMIT_ROUTE, ("rate_429", "server_500"), forced)
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
            return accept(owner, resolution.effective, forced, image=resolution.image)
        raw = await read_body_limited(request, BODY_MAX_BYTES)
        if raw is None:
            return task_error(413, "invalid_request", f"request body too large: at most {BODY_MAX_BYTES} bytes")
        body, problem = decode_submit(raw)
        if problem is not None:
            return task_error(400, "parse_request_failed", problem)
        try:
            resolution = resolve(body)
            if not resolution.ok:
                return rejection(resolution, body)
        except Exception:  # noqa: BLE001 - a bug in reading a body is still no reason for a 5xx
            log.exception("simulator could not judge a submitted body")
            return task_error(400, "invalid_request", "the request body could not be read")
        return accept(owner, resolution.effective, forced)

    def rejection(resolution, body: dict) -> Response:
        # What the lab's stricter checks catch (bad text, numbers, nesting) is refused first, with the
        # field named: a task must never be created for a body the renderer cannot read.
        strict = [issue for issue in resolution.errors if issue.code in STRICT_CODES]
        if strict:
            return task_error(400, "invalid_request", f"{strict[0].field}: {strict[0].message}")
        by_field = {issue.field: issue for issue in resolution.errors}
        if "model" in by_field:
            model = printable(str(body.get("model") or ""))[:200]
            return gateway_error(503, f"No available channel for model {model} under group default (distributor)", "model_not_found")
        prompt_issue = by_field.get("prompt")
        if prompt_issue is not None and prompt_issue.code == "required":
            return task_error(400, "invalid_request", "prompt is required")
        for issue in resolution.errors:
            if issue.code == "invalid_value" and issue.field in ("duration", "seconds", "metadata.durationSeconds"):
                return task_error(400, "invalid_request", "Veo duration must be 4, 6, or 8 seconds")
        audio = [issue for issue in resolution.errors if issue.code == "INVALID_ARGUMENT"]
        if audio:
            return upstream_invalid_argument("generateAudio parameter is not supported in Gemini API.")
        return upstream_invalid_argument(resolution.errors[0].message)

    def accept(owner: str, effective: dict[str, Any], forced: frozenset[str], image=None) -> Response:
        now = time.time()
        faults = sim.faults.for_task(forced)
        effective = dict(effective)
        if effective["seed"] is None:
            effective["seed"] = random.SystemRandom().randint(0, SEED_MAX)  # the service picks one
        queue_end, scheduled_end = sim.schedule(effective, faults, now)
        task = Task(
            task_id=new_task_id(),
            owner=owner,
            model=effective["model"],
            effective=effective,
            faults=faults,
            created_at=now,
            queue_end=queue_end,
            scheduled_end=scheduled_end,
            needs_render=not ({"failed", "stuck"} & faults),
        )
        sim.store.add(task)
        if task.needs_render:
            width, height = parse_size(effective["size"])
            spec_fields = dict(
                prompt=effective["prompt"],
                seed=int(effective["seed"]),
                model=effective["model"],
                resolution=effective["resolution"],
                aspect_ratio=effective["aspect_ratio"],
                duration=int(effective["duration"]),
                width=width,
                height=height,
            )
            renderer = sim.renderer
            spec = RenderSpec(**spec_fields)
            if image is not None:  # the clip starts on the uploaded image
                renderer = sim.image_renderer
                spec = ImageRenderSpec(**spec_fields, image_path=image.path, image_sha256=image.sha256)

            def finished(future) -> None:
                error = future.exception()
                if error is not None:
                    log.warning("simulated task %s failed: render error: %s", task.task_id, error)
                sim.store.render_finished(task, None if error else future.result(), repr(error) if error else None)

            renderer.submit(spec).add_done_callback(finished)
        return JSONResponse(video_object(task, now))

    def video_object(task: Task, now: float) -> dict[str, Any]:
        status = sim.store.observe(task, now)
        if status in (SUCCESS, FAILURE):
            completed_at = task.completed_at
        else:
            # new-api fills completed_at from the last update while a task runs (contract §2.4).
            completed_at = task.created_at if now < task.queue_end else task.queue_end
        return {
            "id": task.task_id,
            "task_id": task.task_id,
            "object": "video",
            "model": task.model,
            "status": PUBLIC_STATUS[status],
            "progress": PROGRESS[status],
            "created_at": int(task.created_at),
            "completed_at": int(math.ceil(completed_at)),
        }

    @app.get("/v1/videos/{task_id}")
    async def poll(task_id: str, request: Request) -> Response:
        owner, forced, refusal = admit(POLL_ROUTE, request, lambda m: task_error(400, "invalid_request", m))
        if refusal is not None:
            return refusal
        fault = transport_fault(POLL_ROUTE, ("rate_429", "server_500", "drop_connection"), forced)
        if fault is not None:
            return fault
        task = sim.store.get(task_id, owner)
        if task is None:
            return task_error(400, "task_not_exist", "task_not_exist")
        return JSONResponse(video_object(task, time.time()))

    @app.get("/v1/videos/{task_id}/content")
    async def content(task_id: str, request: Request) -> Response:
        owner, forced, refusal = admit(CONTENT_ROUTE, request, lambda m: content_error(400, m))
        if refusal is not None:
            return refusal
        task = sim.store.get(task_id, owner)
        if task is None:
            return content_error(404, "Task not found")
        fault = transport_fault(CONTENT_ROUTE, ("drop_connection",), forced)
        if fault is not None:
            return fault
        now = time.time()
        status = sim.store.observe(task, now)
        if status != SUCCESS:
            return content_error(400, f"Task is not completed yet, current status: {status}")
        refused = content_fault(task, now)
        if refused is not None:
            return refused
        return FileResponse(
            task.render_path,
            media_type="video/mp4",
            headers={"Cache-Control": "public, max-age=86400"},
            content_disposition_type="inline",
        )

    def content_fault(task: Task, now: float) -> Response | None:
        """The documented quirks right after completion, per the task's faults."""
        calls = task.extra.setdefault("content_calls", {"not_ready": 0, "502": 0})
        if "content_not_ready" in task.faults:
            lag = max(sim.scaled(sim.config.content_lag_s), cfg.CONTENT_NOT_READY_MIN_S)
            if now < (task.completed_at or now) + lag or calls["not_ready"] < cfg.CONTENT_NOT_READY_MIN_CALLS:
                calls["not_ready"] += 1
                return content_error(400, "Task is not completed yet, current status: IN_PROGRESS")
        if "content_502" in task.faults and calls["502"] < cfg.CONTENT_502_CALLS:
            calls["502"] += 1
            return content_error(502, "Upstream service returned status 404", "server_error")
        return None

    @app.get("/_sim/ledger")
    async def ledger() -> Response:
        sim.store.count_request(LEDGER_ROUTE)
        return JSONResponse(sim.ledger())

    return app
