"""Screen each saved take in the background, journal what was found, leave the proxy for Compare.

The runner hands a take over the moment its video and thumbnails are saved and
goes on: the run's result never waits for the pre-screen. One worker thread
(the machine's cores belong to the visitors' runs first) takes the takes in
order; each costs one ffmpeg run that also writes the grid's proxy at
``<data_dir>/proxies/<task_id>.mp4``, so a later Compare opens on it at once.
Nothing here raises past ``submit``/``screen_now``: a take that cannot be
screened is journalled with the reason.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from lab.compare.proxies import proxy_lock, proxy_path
from lab.errors import LabError
from lab.prescreen.findings import Screen, Thresholds
from lab.prescreen.run import screen_file
from lab.store import Store

log = logging.getLogger(__name__)


def _proxy_is_fresh(proxy: Path, source: Path) -> bool:
    try:
        return proxy.is_file() and proxy.stat().st_size > 0 and proxy.stat().st_mtime >= source.stat().st_mtime
    except OSError:
        return False


class Screener:
    """The background pre-screen of one data directory's saved takes."""

    def __init__(self, store: Store, data_dir: str | Path, thresholds: Thresholds | None = None, *,
                 workers: int = 1) -> None:
        self.store = store
        self.data_dir = Path(data_dir)
        self.thresholds = thresholds or Thresholds()
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="lab-prescreen")
        self._pending: dict[str, Future] = {}
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, task_id: str, video: str | Path) -> "Future[dict[str, Any]] | None":
        """Queue a take (once: a take already queued is not queued again); None after ``close``."""
        with self._lock:
            if self._closed:
                return None
            pending = self._pending.get(task_id)
            if pending is not None:
                return pending
            future = self._pool.submit(self._run, task_id, Path(video))
            self._pending[task_id] = future
        return future

    def _run(self, task_id: str, video: Path) -> dict[str, Any]:
        try:
            return self.screen_now(task_id, video)
        finally:
            with self._lock:
                self._pending.pop(task_id, None)

    def screen_now(self, task_id: str, video: str | Path) -> dict[str, Any]:
        """Screen one take on this thread, write its proxy if it has none, journal it; returns the screen's JSON."""
        video = Path(video)
        try:
            proxy = proxy_path(self.data_dir, task_id)
        except LabError as exc:
            screen = Screen(error=str(exc), thresholds=self.thresholds)
        else:
            # Compare's ensure_proxy takes the same lock, so it waits for this proxy instead of encoding its own.
            with proxy_lock(str(proxy)):
                fresh = _proxy_is_fresh(proxy, video)
                screen = screen_file(video, self.thresholds, proxy=None if fresh else proxy)
        result = screen.to_json()
        try:
            self.store.record_screen(task_id, result)
        except LabError as exc:
            log.warning("pre-screen of %s not journalled: %s", task_id, exc)
        if screen.error:
            log.info("pre-screen of %s could not run: %s", task_id, screen.error)
        return result

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def drain(self, timeout: float | None = None) -> None:
        """Wait for the takes queued so far (the CLI, before it exits)."""
        with self._lock:
            futures = list(self._pending.values())
        for future in futures:
            try:
                future.result(timeout=timeout)
            except Exception:  # noqa: BLE001 - screen_now journals its own failures
                pass

    def close(self, *, wait: bool = False) -> None:
        with self._lock:
            self._closed = True
        self._pool.shutdown(wait=wait, cancel_futures=not wait)
