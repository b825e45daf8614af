"""Veo Prompt Lab: build the Gradio app and serve it. ``python app.py``

Honours GRADIO_SERVER_NAME, GRADIO_SERVER_PORT (default 7860) and LAB_DATA_DIR
(see lab/settings.py). Without APIYI_API_KEY the lab embeds a private simulator
(lab/private_simulator.py): its own loopback-only server with a random key,
never mounted on this app, so visitors reach the lab and nothing else.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from fastapi import FastAPI  # noqa: E402

from lab import ui  # noqa: E402
from lab.settings import Settings, load_settings  # noqa: E402
from lab.wiring import AppServices, open_app  # noqa: E402

DEFAULT_PORT = 7860
MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # glibc's mallopt parameter number


def _fewer_malloc_arenas() -> None:
    """Cap glibc's malloc arenas unless MALLOC_ARENA_MAX is set: the RSS creep under load is arenas, not a leak.

    glibc gives busy worker threads arenas of their own (up to 8 per core) and rarely hands
    their pages back; bench/bench_rounds.py measured 338 -> 380 MB over 6 rounds of 20
    visitors with glibc's default, and 248 -> 255 MB with 2 arenas, at the same throughput.
    """
    if "MALLOC_ARENA_MAX" in os.environ:  # glibc read it at start-up; the operator's choice stands
        return
    try:
        ctypes.CDLL("libc.so.6").mallopt(_M_ARENA_MAX, MALLOC_ARENAS)
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to cap
        pass


def create_app(settings: Settings | None = None) -> tuple[FastAPI, AppServices]:
    """The server app (the lab at /) and the services it runs on (the caller closes them).

    Without a key the services start the lab's private simulator.
    """
    settings = settings or load_settings()
    app = FastAPI(title="Veo Prompt Lab", docs_url=None, redoc_url=None, openapi_url=None)
    services = open_app(settings)
    ui.mount(app, ui.build_demo(services), settings, path="/")
    return app, services


def _stop(signum, frame) -> None:
    raise SystemExit(0)


def launch(settings: Settings | None = None) -> None:
    """Serve until interrupted (Ctrl-C, or SIGTERM from a process manager); the journal is closed either way."""
    import uvicorn

    _fewer_malloc_arenas()
    settings = settings or load_settings()
    port = settings.server_port or DEFAULT_PORT
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again under the handler that was
    # there before it: the default one killed the process before the `finally` below, leaving the
    # journal open (its -wal and -shm files behind). This one unwinds through it instead.
    signal.signal(signal.SIGTERM, _stop)
    app, services = create_app(settings)
    print(f"Veo Prompt Lab on http://{settings.server_name}:{port}/ "
          f"({'private embedded simulator' if settings.is_simulator and not settings.base_url else 'live API'}; "
          f"journal {settings.database_display})")
    try:
        # Open streams (queue events) would hold a shutdown for long.
        # proxy_headers off: uvicorn would take X-Forwarded-For from any client on 127.0.0.1 as its address.
        # Which proxy to believe is the lab's setting (trusted_proxy; on a Space, Hugging Face's), read per
        # request in lab.people, so a header a client wrote never changes who pays.
        uvicorn.run(app, host=settings.server_name, port=port, log_level="warning", timeout_graceful_shutdown=2,
                    proxy_headers=False)
    finally:
        services.close()


def main() -> int:
    """Serve; a bad setting or a journal that cannot be opened (a database that is down) is one line and exit 2."""
    from lab.errors import LabError

    try:
        launch()
    except LabError as exc:  # its message names the setting or the database's host, never a password
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: uvicorn has shut down and the journal is closed; no traceback
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
