"""Run the simulator app with uvicorn in a background thread: ``with SimulatorServer(cfg) as sim: sim.base_url``."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import requests
import uvicorn

from lab.simulator.app import create_app
from lab.simulator.config import FAULT_NAMES, SimConfig

__all__ = ["FAULT_NAMES", "SimConfig", "SimulatorServer"]


class SimulatorServer:
    """A real HTTP simulator on ``host:port`` (port 0 picks a free one)."""

    def __init__(self, config: SimConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config or SimConfig()
        self.host = host
        self.app = create_app(self.config)
        self._socket = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.port = self._socket.getsockname()[1]
        self._server = uvicorn.Server(
            uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=1)
        )
        self._thread: threading.Thread | None = None

    @property
    def root_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What a client uses as its API base: POST f"{base_url}/videos"."""
        return f"{self.root_url}/v1"

    def start(self, timeout: float = 15.0) -> "SimulatorServer":
        """Serve in a daemon thread; returns once the server answers."""
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name=f"simulator-{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._server.started:
                try:
                    requests.get(f"{self.root_url}/_sim/ledger", timeout=1).raise_for_status()
                    return self
                except requests.RequestException:
                    pass
            if not self._thread.is_alive():
                break
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"simulator did not start on {self.root_url}")

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.app.state.sim.close()
        try:
            self._socket.close()
        except OSError:
            pass

    def ledger(self) -> dict[str, Any]:
        """Same as GET /_sim/ledger."""
        return self.app.state.sim.ledger()

    def __enter__(self) -> "SimulatorServer":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
