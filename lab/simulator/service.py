"""The simulated service behind the routes: its tasks, keys, faults, scheduling and renders.

Each method answers one step of a request the way APIYI (new-api in front of Google)
does; ``lab.simulator.app`` only maps HTTP routes onto them.
"""

from __future__ import annotations

import logging
import math
import random
import time
from typing import Any, Callable

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from lab.params import FAST_MODEL, SEED_MAX, parse_size
from lab.simulator import config as cfg
from lab.simulator.config import SimConfig
from lab.simulator.connection_drop import DropConnection
from lab.simulator.envelopes import NGINX_500, SATURATED, content_error, gateway_error, task_error
from lab.simulator.faults import FAULT_HEADER, FaultInjector, parse_fault_header
from lab.simulator.render import Renderer, RenderSpec
from lab.simulator.render_image import ImageRenderer, ImageRenderSpec
from lab.simulator.tasks import FAILURE, PROGRESS, PUBLIC_STATUS, SUCCESS, Task, TaskStore, new_task_id

log = logging.getLogger(__name__)


def bearer_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "").strip()
    if header.lower().startswith("bearer "):
        header = header[7:].strip()
    return header or None


def normal_key(key: str) -> str:
    return key[3:] if key.startswith("sk-") else key


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

    # ------------------------------------------------------------ every request

    def authenticate(self, request: Request) -> tuple[str | None, Response | None]:
        key = bearer_key(request)
        if key is None:
            return None, gateway_error(401, "Token not provided")
        if self.config.keys is not None and normal_key(key) not in {normal_key(k) for k in self.config.keys}:
            return None, gateway_error(401, "Invalid token")
        return normal_key(key), None

    def admit(self, route: str, request: Request, bad_header: Callable[[str], Response]):
        """Every /v1 route starts alike: count it, check the key, read X-Sim-Fault.

        Returns (owner, forced faults, None), or (None, empty, the refusal to send).
        """
        self.store.count_request(route)
        owner, denied = self.authenticate(request)
        if denied is not None:
            return None, frozenset(), denied
        try:
            return owner, parse_fault_header(request.headers.get(FAULT_HEADER)), None
        except ValueError as exc:
            return None, frozenset(), bad_header(str(exc))

    def transport_fault(self, route: str, allowed: tuple[str, ...], forced: frozenset[str]) -> Response | None:
        """A fault of the route's transport (429, 500, a dropped connection), if one is due."""
        name = self.faults.for_request(route, allowed, forced)
        if name is None:
            return None
        form = self.faults.rng(f"form:{name}")
        if name == "rate_429":
            retry_after = str(max(0, round(cfg.RETRY_AFTER_S * self.config.time_scale)))
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

    # ------------------------------------------------------------ tasks

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

    def accept(self, owner: str, effective: dict[str, Any], forced: frozenset[str], image=None) -> Response:
        """Create the task for a valid body and start its render; answer its first video object."""
        now = time.time()
        faults = self.faults.for_task(forced)
        effective = dict(effective)
        if effective["seed"] is None:
            effective["seed"] = random.SystemRandom().randint(0, SEED_MAX)  # the service picks one
        queue_end, scheduled_end = self.schedule(effective, faults, now)
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
        self.store.add(task)
        if task.needs_render:
            self._render(task, effective, image)
        return JSONResponse(self.video_object(task, now))

    def _render(self, task: Task, effective: dict[str, Any], image) -> None:
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
        renderer = self.renderer
        spec = RenderSpec(**spec_fields)
        if image is not None:  # the clip starts on the uploaded image
            renderer = self.image_renderer
            spec = ImageRenderSpec(**spec_fields, image_path=image.path, image_sha256=image.sha256)

        def finished(future) -> None:
            error = future.exception()
            if error is not None:
                log.warning("simulated task %s failed: render error: %s", task.task_id, error)
            self.store.render_finished(task, None if error else future.result(), repr(error) if error else None)

        renderer.submit(spec).add_done_callback(finished)

    def video_object(self, task: Task, now: float) -> dict[str, Any]:
        status = self.store.observe(task, now)
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

    def content_fault(self, task: Task, now: float) -> Response | None:
        """The documented quirks right after completion, per the task's faults."""
        calls = task.extra.setdefault("content_calls", {"not_ready": 0, "502": 0})
        if "content_not_ready" in task.faults:
            lag = max(self.scaled(self.config.content_lag_s), cfg.CONTENT_NOT_READY_MIN_S)
            if now < (task.completed_at or now) + lag or calls["not_ready"] < cfg.CONTENT_NOT_READY_MIN_CALLS:
                calls["not_ready"] += 1
                return content_error(400, "Task is not completed yet, current status: IN_PROGRESS")
        if "content_502" in task.faults and calls["502"] < cfg.CONTENT_502_CALLS:
            calls["502"] += 1
            return content_error(502, "Upstream service returned status 404", "server_error")
        return None
