"""The ``drop_connection`` fault: a response that closes the TCP connection without a byte."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi.responses import Response


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
