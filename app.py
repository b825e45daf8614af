"""Veo Prompt Lab: build the Gradio app and serve it. ``python app.py``

Honours GRADIO_SERVER_NAME, GRADIO_SERVER_PORT (default 7860) and LAB_DATA_DIR
(see lab/settings.py). Without APIYI_API_KEY the lab embeds a private simulator
(lab/private_simulator.py): its own loopback-only server with a random key,
never mounted on this app, so visitors reach the lab and nothing else.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from fastapi import FastAPI  # noqa: E402

from lab import ui  # noqa: E402
from lab.orchestrator import Orchestrator  # noqa: E402
from lab.settings import Settings, load_settings  # noqa: E402

DEFAULT_PORT = 7860


def create_app(settings: Settings | None = None) -> tuple[FastAPI, Orchestrator]:
    """The server app (the lab at /) and the services it runs on (the caller closes them).

    Without a key the services start the lab's private simulator.
    """
    settings = settings or load_settings()
    app = FastAPI(title="Veo Prompt Lab", docs_url=None, redoc_url=None, openapi_url=None)
    services = Orchestrator.create(settings, base_url=settings.base_url)
    ui.mount(app, ui.build_demo(services), settings, path="/")
    return app, services


def launch(settings: Settings | None = None) -> None:
    """Serve until interrupted."""
    import uvicorn

    settings = settings or load_settings()
    port = settings.server_port or DEFAULT_PORT
    app, services = create_app(settings)
    print(f"Veo Prompt Lab on http://{settings.server_name}:{port}/ "
          f"({'private embedded simulator' if settings.is_simulator and not settings.base_url else 'live API'})")
    try:
        # Open streams (queue events) would hold a shutdown for long.
        uvicorn.run(app, host=settings.server_name, port=port, log_level="warning", timeout_graceful_shutdown=2)
    finally:
        services.close()


if __name__ == "__main__":
    launch()
