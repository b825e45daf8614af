"""The key never leaves the server: not in anything the browser receives or keeps, not on disk, not in logs.

The lab runs as deployed (app.create_app: FastAPI + Gradio under uvicorn) with an
operator key, talking to a simulator that accepts only that key and one visitor
key. A real Chromium uses the page as a person would, including pasting the
visitor's own key. Then everything is searched for both keys:
- every byte the server sent to the browser (recorded at the ASGI edge, so
  streamed queue messages and file downloads are included),
- the browser's localStorage, sessionStorage, cookies and IndexedDB names,
- every file under the data directory and Gradio's cache (ZIP members unpacked),
- every log record the process emitted.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
import zipfile
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Page, expect
from helpers import free_port, lab_settings

OPERATOR_KEY = "sk-operator-canary-7f3a9c2e51d84b60aa"
VISITOR_KEY = "sk-visitor-canary-0c6e2d9b47a1f358bb"
KEYS = (OPERATOR_KEY, VISITOR_KEY)
RUN_TIMEOUT_MS = 60_000



def leaked(blob: bytes | str) -> list[str]:
    data = blob.encode("utf-8", "replace") if isinstance(blob, str) else blob
    # Also the part after "sk-": a redaction that only strips the prefix is still a leak.
    return [key for key in KEYS if key.encode() in data or key[3:].encode() in data]


class RecordSentBytes:
    """ASGI middleware keeping every response header and body chunk the server sends."""

    def __init__(self, app) -> None:
        self.app = app
        self.sent: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")

        async def recording_send(message):
            if message["type"] == "http.response.start":
                headers = b"\n".join(k + b": " + v for k, v in message.get("headers", []))
                with self.lock:
                    self.sent.append((path, headers))
            elif message["type"] == "http.response.body":
                with self.lock:
                    self.sent.append((path, message.get("body", b"")))
            await send(message)

        await self.app(scope, receive, recording_send)

    def everything(self) -> dict[str, bytes]:
        by_path: dict[str, bytearray] = {}
        with self.lock:
            for path, chunk in self.sent:
                by_path.setdefault(path, bytearray()).extend(chunk)
        return {path: bytes(data) for path, data in by_path.items()}


class KeepLogs(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # a record that cannot format is not evidence either way
            self.lines.append(repr(record.msg))


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, render_cache):
    import uvicorn

    import app as app_module
    from lab.simulator.server import SimConfig, SimulatorServer

    logs = KeepLogs()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(logs)
    root.setLevel(logging.DEBUG)
    data_dir = tmp_path_factory.mktemp("key-safety-data")
    gradio_tmp = tmp_path_factory.mktemp("key-safety-gradio")
    old_gradio_tmp = os.environ.get("GRADIO_TEMP_DIR")
    os.environ["GRADIO_TEMP_DIR"] = str(gradio_tmp)

    simulator = SimulatorServer(SimConfig(time_scale=0.02, keys=KEYS, render_cache=render_cache)).start()
    settings = lab_settings({
        "APIYI_API_KEY": OPERATOR_KEY,
        "LAB_BASE_URL": simulator.base_url,
        "LAB_DATA_DIR": str(data_dir),
        "LAB_ALLOW_VISITOR_KEY": "true",
        "LAB_SPEND_CAP_SESSION_USD": "none",
        "LAB_SPEND_CAP_DAY_USD": "none",
        "LAB_MAX_SWEEP": "3",
    })
    port = free_port()
    server_app, services = app_module.create_app(settings)
    recorder = RecordSentBytes(server_app)
    server = uvicorn.Server(uvicorn.Config(recorder, host="127.0.0.1", port=port, log_level="debug"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(url + "gradio_api/info", timeout=2).ok:
                break
        except requests.RequestException:
            time.sleep(0.2)
    else:
        pytest.fail("the app never became ready: every key-safety check below would pass vacuously")
    yield {"url": url, "data_dir": data_dir, "gradio_tmp": gradio_tmp, "recorder": recorder, "logs": logs,
           "services": services, "simulator": simulator}
    server.should_exit = True
    thread.join(timeout=10)
    services.close()
    simulator.stop()
    root.removeHandler(logs)
    root.setLevel(old_level)
    if old_gradio_tmp is None:
        os.environ.pop("GRADIO_TEMP_DIR", None)
    else:
        os.environ["GRADIO_TEMP_DIR"] = old_gradio_tmp


@pytest.fixture(scope="module")
def browser_session(deployment, browser):
    """A person's visit: a run on the operator's key, then their own key for a run and a sweep."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        page.goto(deployment["url"])
        expect(page.locator("#effective-panel")).to_contain_text("pixel size", timeout=60_000)
        page.get_by_label("Prompt", exact=True).fill("key safety: a paper lantern drifting over a lake")
        combo = page.get_by_label("duration (s)", exact=True)  # 4 s clips: half the renders of the default 8 s
        combo.click()
        page.locator(f"#{combo.get_attribute('aria-controls')}").get_by_role("option", name="4", exact=True).click()
        expect(page.locator("#generate-gate")).to_contain_text("Ready", timeout=10_000)
        page.get_by_label("Seed (metadata.seed)", exact=True).fill("11")
        generate(page)

        page.get_by_text("Use your own APIYI key").click()
        page.get_by_label("Your APIYI key", exact=True).fill(VISITOR_KEY)
        page.get_by_role("button", name="Use my key", exact=True).click()
        expect(page.locator("#visitor-key-note")).to_contain_text("Using your key", timeout=10_000)
        expect(page.get_by_label("Your APIYI key", exact=True)).to_have_value("")
        page.get_by_label("Seed (metadata.seed)", exact=True).fill("12")
        generate(page)

        page.get_by_role("tab", name="Seed sweep").click()
        page.get_by_label("Seeds", exact=True).fill("21, 22")
        page.get_by_role("button", name="Run sweep", exact=True).click()
        expect(page.locator("#sweep-status")).to_contain_text("2 of 2 saved", timeout=RUN_TIMEOUT_MS)
        page.get_by_role("tab", name="History").click()
        page.get_by_role("button", name="Refresh", exact=True).click()
        expect(page.locator("#history-table")).to_contain_text("paper lantern", timeout=10_000)

        kept = {
            "page html": page.content(),
            "localStorage": page.evaluate("JSON.stringify(Object.assign({}, window.localStorage))"),
            "sessionStorage": page.evaluate("JSON.stringify(Object.assign({}, window.sessionStorage))"),
            "cookies": repr(context.cookies()),
            "indexedDB": page.evaluate("indexedDB.databases().then(d => JSON.stringify(d))"),
        }
    finally:
        context.close()
    return kept


def generate(page: Page) -> None:
    before = page.locator("#run-summary").inner_text()
    page.get_by_role("button", name="Generate", exact=True).click()
    expect(page.locator("#run-progress")).to_contain_text("done", timeout=RUN_TIMEOUT_MS)
    expect(page.locator("#run-summary")).not_to_have_text(before or "\u0000", timeout=RUN_TIMEOUT_MS)


def test_the_visitors_key_was_really_used_for_their_runs(browser_session, deployment):
    from lab.store import Store, default_store_path

    with Store(default_store_path(deployment["data_dir"])) as store:
        kinds = [record.base_url_kind for record in store.iter_all()]
    assert kinds.count("visitor") == 3  # one run and a two-seed sweep
    assert len(kinds) == 4


def test_nothing_the_server_sent_the_browser_holds_a_key(browser_session, deployment):
    sent = deployment["recorder"].everything()
    streamed = b"".join(data for path, data in sent.items() if path.startswith("/gradio_api/queue/data"))
    assert b"paper lantern" in streamed  # the streamed results were recorded
    assert any(path.endswith(".mp4") for path in sent)  # and the videos the page played
    leaks = {path: leaked(data) for path, data in sent.items() if leaked(data)}
    assert leaks == {}


def test_the_browser_keeps_no_key_in_its_storage_or_page(browser_session):
    leaks = {where: leaked(text) for where, text in browser_session.items() if leaked(text)}
    assert leaks == {}


def test_config_and_api_info_hold_no_key(deployment):
    for path in ("config", "gradio_api/info"):
        response = requests.get(deployment["url"] + path, timeout=10)
        assert response.ok
        assert leaked(response.content) == []


def test_no_file_written_to_disk_holds_a_key(browser_session, deployment):
    checked, leaks = 0, {}
    for root in (deployment["data_dir"], deployment["gradio_tmp"]):
        for path in Path(root).rglob("*"):
            if not path.is_file():
                continue
            checked += 1
            found = leaked(path.read_bytes())
            if path.suffix == ".zip":
                with zipfile.ZipFile(path) as archive:
                    for member in archive.namelist():
                        found += leaked(archive.read(member))
            if found:
                leaks[str(path)] = found
    assert checked > 10  # journal, videos, thumbnails, previews, sheet, ZIP, Gradio's copies
    assert any(p.suffix == ".zip" for p in Path(deployment["data_dir"]).rglob("*"))
    assert leaks == {}


def test_no_log_line_holds_a_key(browser_session, deployment):
    lines = deployment["logs"].lines
    assert lines  # the capture works (uvicorn and urllib3 log at debug level)
    assert [line for line in lines if leaked(line)] == []


def test_a_key_that_does_not_look_like_one_is_refused_without_echoing_it(deployment):
    services = deployment["services"]
    problem = services.access.key_problem("not a key")
    assert problem and "not a key" not in problem


@pytest.mark.parametrize("typed", ["sk-with space", ""])
def test_visitor_keys_are_refused_when_the_lab_does_not_allow_them(typed, tmp_path):
    from lab.settings import load_settings
    from lab.wiring import open_app

    settings = load_settings({"LAB_DATA_DIR": str(tmp_path), "LAB_ALLOW_VISITOR_KEY": "false",
                              "LAB_BASE_URL": "http://127.0.0.1:9/v1"})
    services = open_app(settings, api_key="sk-lab-simulator")
    try:
        assert re.search("does not accept", services.access.key_problem(typed) or "")
    finally:
        services.close()


def test_only_media_is_served_from_the_data_directory(browser_session, deployment):
    data_dir = Path(deployment["data_dir"])
    video = next(data_dir.glob("runs/*.mp4"))
    fetch = lambda path: requests.get(f"{deployment['url']}gradio_api/file={path}", timeout=10)  # noqa: E731
    assert fetch(video).status_code == 200
    for private in ("journal.sqlite3", "journal.sqlite3-wal", "renders"):
        assert fetch(data_dir / private).status_code in (403, 404)


def test_no_comparison_report_zip_or_compare_json_holds_a_key(browser_session, deployment, tmp_path):
    from lab.compare.pipeline import compare_runs
    from lab.compare.report import write_report, zip_report
    from lab.store import Store, default_store_path

    data_dir = Path(deployment["data_dir"])
    with Store(default_store_path(data_dir)) as store:
        ids = [record.task_id for record in store.iter_all() if record.status == "saved"]
        # No secrets= here: the report must be clean by construction, not by the last-line check.
        report = write_report(compare_runs(store, data_dir, ids), tmp_path / "report", with_originals=True)
    archive = zip_report(report, tmp_path / "report.zip")
    assert len(ids) == 4 and (report / "compare.json").is_file()
    leaks = {str(path): leaked(path.read_bytes()) for path in report.rglob("*") if path.is_file() and leaked(path.read_bytes())}
    with zipfile.ZipFile(archive) as zipped:
        leaks.update({name: leaked(zipped.read(name)) for name in zipped.namelist() if leaked(zipped.read(name))})
    assert leaks == {}
