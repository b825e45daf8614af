"""Small helpers shared by the server and browser tests (imported as ``helpers``)."""

from __future__ import annotations

import os
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

# Debian's chromium (scripts/test.sh installs it); never a browser Playwright downloads.
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
# Without the background-networking flags Chromium keeps dialling out on this closed network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


# Screenshots to look at, only when asked (LAB_SCREENSHOTS=1): read at import, before the autouse
# fixture clears every LAB_ variable. tests/artifacts is kept out of git.
SCREENSHOTS = bool(os.environ.get("LAB_SCREENSHOTS"))
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


def screenshot(target, name: str, **options) -> None:
    """Save a screenshot of ``target`` (a page or a locator) as tests/artifacts/``name`` when LAB_SCREENSHOTS is set."""
    if not SCREENSHOTS:
        return
    ARTIFACTS.mkdir(exist_ok=True)
    target.screenshot(path=str(ARTIFACTS / name), **options)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Below the ephemeral range (32768+), one per xdist worker.
LAB_PORT_BASE = 17860


def lab_port() -> int:
    """The worker's own port for a lab a browser loads, when it is free, else any free port.

    Chromium keeps compiled scripts and cached responses per origin: a page of a lab on a port the worker's
    warm profile has seen loads in about a third of the browser's CPU of one on a new port (0.8 vs 2.6 s),
    and the lab serves none of Gradio's scripts again. Labs of one worker run one after the other, so most
    get this port; one started while another runs gets a free one."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    port = LAB_PORT_BASE + (int(worker) if worker.isdigit() else 0)
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Gradio binds it
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return free_port()
    return port


def lab_client(url: str, downloads: "str | Path", **kwargs):
    """A gradio_client ``Client`` of a lab at a loopback ``http://`` URL, saving files under ``downloads``.

    ``ssl_verify=False``: over plain http there is no certificate to check, and gradio_client opens a new httpx
    client for nearly every request (a call, its stream, the heartbeat, each download), each loading the
    system's CA bundle first: 33 ms of CPU, 14 % of the test workers' CPU in the API tests."""
    from gradio_client import Client

    assert url.startswith("http://127.0.0.1"), url
    return Client(url, verbose=False, download_files=str(downloads), ssl_verify=False, **kwargs)


# Spend caps off: a test that is not about caps must not be stopped by one.
NO_CAPS = {"LAB_SPEND_CAP_SESSION_USD": "none", "LAB_SPEND_CAP_DAY_USD": "none", "LAB_SPEND_CAP_PERSON_USD": "none",
           "LAB_SUBMITS_PER_MINUTE_PERSON": "none"}


def lab_settings(environ: dict[str, str], space_yaml: Path | None = None):
    """The lab's settings read from ``environ`` alone, with the background pre-screen off unless ``environ`` sets
    LAB_PRESCREEN, as in every test process (tests/conftest.py): no ffmpeg screen of a take no test looks at."""
    from lab.settings import load_settings

    return load_settings({"LAB_PRESCREEN": "off", **environ}, space_yaml)


@contextmanager
def running_lab(base_url: str, data_dir: str | Path, env: dict[str, str], api_key: str | None = None
                ) -> Iterator[tuple[str, object]]:
    """The app on the worker's loopback port (``lab_port``) against ``base_url`` (a simulator): yields (url, services).

    The background pre-screen is off unless ``env`` sets LAB_PRESCREEN (no page test here looks at badges).
    """
    from lab.ui import build_demo
    from lab.wiring import open_app

    services = open_app(lab_settings({"LAB_DATA_DIR": str(data_dir), **env}), base_url=base_url, api_key=api_key)
    try:
        demo = build_demo(services)
        _, url, _ = demo.launch(server_name="127.0.0.1", server_port=lab_port(), prevent_thread_lock=True, quiet=True)
        try:
            yield url, services
        finally:
            demo.close()
    finally:
        services.close()


# For each word (a run of non-space characters in one text node) under an element that the layout
# splits over several lines: the word and the text before each break. A <wbr> ends a text node, so a
# break it allows is never reported.
BROKEN_WORDS_JS = """root => {
  const lineTops = (node, start, end) => {
    const range = document.createRange();
    range.setStart(node, start);
    range.setEnd(node, end);
    return [...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top));
  };
  const broken = [];
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (const match of node.data.matchAll(/\\S+/g)) {
      const word = match[0], start = match.index;
      if (new Set(lineTops(node, start, start + word.length)).size < 2) continue;
      const before = [];
      let line = null;
      for (let i = 0; i < word.length; i++) {
        const [top] = lineTops(node, start + i, start + i + 1);
        if (top === undefined) continue;
        if (line !== null && top > line + 1) before.push(word.slice(0, i));
        line = top;
      }
      broken.push({word, before});
    }
  }
  return broken;
}"""


def words_broken_mid_word(locator, allowed_after: str = "-") -> list[dict]:
    """Words under ``locator`` split across lines anywhere but right after one of ``allowed_after``."""
    return [split for split in locator.evaluate(BROKEN_WORDS_JS)
            if any(not before or before[-1] not in allowed_after for before in split["before"])]


# Whether an image shows its whole frame at its own aspect, inside its tile (as in the sweep and History).
WHOLE_FRAME_JS = """img => {
  const box = img.getBoundingClientRect();
  const tile = img.closest('button, .thumbnail-item') || img.parentElement;
  const clip = tile.getBoundingClientRect();
  const fit = getComputedStyle(img).objectFit;
  const natural = img.naturalWidth / img.naturalHeight;
  const shown = box.width / box.height;
  const keepsAspect = fit === 'contain' || fit === 'scale-down' || Math.abs(shown - natural) / natural < 0.02;
  const inside = box.left >= clip.left - 1 && box.right <= clip.right + 1 && box.top >= clip.top - 1
    && box.bottom <= clip.bottom + 1;
  return {natural, keepsAspect, inside, loaded: img.complete && img.naturalWidth > 0};
}"""


@contextmanager
def fake_hub(accounts: dict[str, str]) -> Iterator[str]:
    """A stand-in for the Hugging Face Hub's ``/api/whoami-v2`` on a loopback port: a token in ``accounts``
    is that user, any other is refused with 401 (as the Hub does). Yields its base URL (``hf_endpoint``)."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Hub(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            token = (self.headers.get("authorization") or "").removeprefix("Bearer ").strip()
            name = accounts.get(token) if self.path.startswith("/api/whoami-v2") else None
            body = json.dumps({"type": "user", "name": name} if name else {"error": "Invalid credentials"}).encode()
            self.send_response(200 if name else 401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def select_tab(page, name: str, attempts: int = 4) -> None:
    """Select a tab as a visitor would, and wait until it is the selected one.

    Gradio lays the tab bar out again after the page loads and after a resize, folding the tabs that do not
    fit into "More tabs": a click aimed at the layout before that lands on a neighbour or on a tab that has
    just been hidden (a test's race; a hand is slower). So: click whichever way the tab is reachable now,
    check, and try again."""
    from playwright.sync_api import Error, expect

    tab = page.get_by_role("tab", name=name)
    for _ in range(attempts):
        try:
            if tab.is_visible():
                tab.click(timeout=5_000)
            else:
                page.get_by_role("button", name="More tabs").click(timeout=5_000)
                page.get_by_text(name, exact=True).last.click(timeout=5_000)
            expect(tab).to_have_attribute("aria-selected", "true", timeout=5_000)
            return
        except (AssertionError, Error):
            continue
    expect(tab).to_have_attribute("aria-selected", "true")
