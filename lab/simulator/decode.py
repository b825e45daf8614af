"""Reading a submitted body as the gateway does: size-limited, then decoded into Go's types."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from lab.params import OversizedNumber, json_float, json_int, printable

# TaskSubmitReq's typed fields (Go): a JSON value of another type fails to decode.
GO_STRING_FIELDS = ("prompt", "model", "mode", "image", "size", "duration", "seconds", "input_reference")
GO_FIELD_TYPES = {**{name: "string" for name in GO_STRING_FIELDS}, "images": "[]string", "metadata": "map[string]interface {}"}
# Bodies past the lab's own limit are refused unread (413); up to this much is drained so the client sees it.
DRAIN_MAX_BYTES = 64 * 1024 * 1024


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
