"""The gateway's answers: its three error envelopes, and which one a refused body gets.

Envelopes follow the gateway's three shapes (contract §2.2): auth and routing
errors ``{"error":{"message","type":"new_api_error","code"}}``; task relay errors
``{"code","message","data":null}``; ``/content`` errors ``{"error":{"message","type"}}``.
"""

from __future__ import annotations

import json
import secrets
import time

from fastapi.responses import JSONResponse

from lab.params import Resolution, printable

SATURATED = "当前分组上游负载已饱和，请稍后再试"
NGINX_500 = (
    "<html>\r\n<head><title>500 Internal Server Error</title></head>\r\n<body>\r\n"
    "<center><h1>500 Internal Server Error</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
# What the lab's checks refuse beyond Go's decoder: the simulator answers them as a bad request, before a task exists.
STRICT_CODES = ("invalid_text", "not_finite", "out_of_range", "too_deep", "too_large", "invalid_type", "internal")


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


def rejection(resolution: Resolution, body: dict) -> JSONResponse:
    """How the gateway refuses a body ``resolve`` found invalid, in its order of checks."""
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
