"""Veo Prompt Lab: build the Gradio app and serve it. ``python app.py``

Honours GRADIO_SERVER_NAME, GRADIO_SERVER_PORT (default 7860) and LAB_DATA_DIR
(see lab/settings.py). Without APIYI_API_KEY the simulator is embedded: its
FastAPI app is mounted at /sim in the same uvicorn server as the lab, and the
lab talks to it over loopback HTTP (http://127.0.0.1:PORT/sim/v1).
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from fastapi import FastAPI  # noqa: E402

from lab import ui  # noqa: E402
from lab.settings import Settings, load_settings  # noqa: E402

DEFAULT_PORT = 7860
SIM_PATH = "/sim"


def _loopback(server_name: str) -> str:
    """Where this process can reach its own server (0.0.0.0 and :: listen on loopback too)."""
    return "127.0.0.1" if server_name in ("0.0.0.0", "::", "", "localhost") else server_name


def create_app(settings: Settings | None = None, port: int | None = None) -> tuple[FastAPI, object]:
    """The server app (lab at /, simulator at /sim when embedded) and the Blocks."""
    settings = settings or load_settings()
    port = port or settings.server_port or DEFAULT_PORT
    app = FastAPI(title="Veo Prompt Lab", docs_url=None, redoc_url=None, openapi_url=None)
    base_url = settings.base_url
    if settings.is_simulator and base_url is None:
        from lab.simulator.app import create_app as create_simulator_app
        from lab.simulator.server import SimConfig

        app.mount(SIM_PATH, create_simulator_app(
            SimConfig(time_scale=settings.sim_time_scale, render_cache=settings.data_dir / "renders")
        ))
        base_url = f"http://{_loopback(settings.server_name)}:{port}{SIM_PATH}/v1"
    demo = ui.build_demo(settings, base_url=base_url)
    ui.mount(app, demo, settings, path="/")
    return app, demo


def launch(settings: Settings | None = None) -> None:
    """Serve until interrupted."""
    import uvicorn

    settings = settings or load_settings()
    port = settings.server_port or DEFAULT_PORT
    app, demo = create_app(settings, port)
    print(f"Veo Prompt Lab on http://{settings.server_name}:{port}/ "
          f"({'embedded simulator at ' + SIM_PATH if settings.is_simulator and not settings.base_url else 'live API'})")
    try:
        # Open streams (queue events, keep-alive polls to /sim) would hold a shutdown for long.
        uvicorn.run(app, host=settings.server_name, port=port, log_level="warning", timeout_graceful_shutdown=2)
    finally:
        demo.lab_services.close()


if __name__ == "__main__":
    launch()
