"""Shared fixtures: an isolated environment for every test, and real simulator servers."""

from __future__ import annotations

import os
import subprocess
import tempfile
import uuid
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

# Tests run the simulator fast; 0.02 turns a ~40 s fast 720p task into under a second.
TEST_TIME_SCALE = 0.02
LAB_ENV_PREFIXES = ("APIYI_", "LAB_", "GRADIO_SERVER_")
# The harness's own variables (scripts/test.sh), which the lab never reads: kept for every worker.
HARNESS_PREFIX = "LAB_TEST_"
TEST_DATABASE_URL = os.environ.get("LAB_TEST_DATABASE_URL", "").strip()
REPO = Path(__file__).resolve().parent.parent
# What every test starts from: none of the developer's keys or settings, and no background pre-screen (an
# ffmpeg run per saved take, in every CLI process and app) where no test looks at it; a test about it sets
# LAB_PRESCREEN=on or passes it in its settings (test_ui_lineage). Set once for the process, not removed and
# put back around every test: a thread still running from an earlier test (a gradio_client heartbeat) reads
# os.environ while it changes, and a key removed under it raised KeyError there.
for _name in list(os.environ):
    if _name.startswith(LAB_ENV_PREFIXES) and not _name.startswith(HARNESS_PREFIX):
        del os.environ[_name]
os.environ["LAB_PRESCREEN"] = "off"
os.environ["LAB_DATA_DIR"] = str(Path(tempfile.gettempdir()) / "lab-tests-outside-a-test")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own data directory and the process's clean settings (a test's own are undone)."""
    data_dir = tmp_path / "data"
    monkeypatch.setenv("LAB_DATA_DIR", str(data_dir))
    return data_dir


def _run_root(factory: pytest.TempPathFactory) -> Path:
    """The run's temp root, shared by its xdist workers (each worker's own base dir is inside it)."""
    base = factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    # Gradio caches served files under one temp dir by content hash; workers serving the same video
    # must not write one file at once, so each worker has its own.
    factory = getattr(config, "_tmp_path_factory", None)
    if factory is not None and "GRADIO_TEMP_DIR" not in os.environ:
        os.environ["GRADIO_TEMP_DIR"] = str(factory.getbasetemp() / "gradio")


# The modules that take longest, longest first (wall seconds of one run with 3 workers on the 2-core machine):
# each worker starts on one of these, so none is left running a long module alone at the end. Every other
# module that drives Chromium comes next, then the rest. scripts/test.sh passes --no-loadscope-reorder:
# without it xdist orders files by how many tests they hold, and the browser modules, few tests each, ran last.
LONGEST_MODULES = (
    "test_ui_browser.py",  # 124 s
    "test_hosted.py",  # 85 s
    "test_ui_sessions_browser.py",  # 77 s
    "test_ui_compare.py",  # 75 s
    "test_cli_generate.py",  # 72 s
    "test_browser_sweep_history.py",  # 63 s
    "test_runner.py",  # 49 s
    "test_ui_api.py",  # 45 s
    "test_review_browser.py",  # 23 s
    "test_concurrent_owners.py",  # 23 s
    "test_ui_load_order_browser.py",  # 22 s
    "test_spend_caps.py",  # 22 s
    "test_hostile_input.py",  # 22 s
    "test_key_safety.py",  # 20 s
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest modules first (``LONGEST_MODULES``), then the other browser modules, then the rest."""
    browser_modules = {item.path for item in items if "playwright_driver" in getattr(item, "fixturenames", ())}

    def rank(item: pytest.Item) -> tuple[int, int]:
        if item.path.name in LONGEST_MODULES:
            return 0, LONGEST_MODULES.index(item.path.name)
        return (1 if item.path in browser_modules else 2), 0

    items.sort(key=rank)


@pytest.fixture(scope="session")
def render_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One render cache for the whole run, shared by the workers: identical requests render once.

    Safe across processes: a clip is rendered to a scratch name and renamed into place.
    """
    cache = _run_root(tmp_path_factory) / "render-cache"
    cache.mkdir(exist_ok=True)
    return cache


@pytest.fixture(scope="session")
def simulator(render_cache: Path):
    """A running simulator (no faults, any key accepted), shared by the session."""
    from lab.simulator.server import SimConfig, SimulatorServer

    with SimulatorServer(SimConfig(time_scale=TEST_TIME_SCALE, render_cache=render_cache)) as server:
        yield server


@pytest.fixture
def make_simulator(render_cache: Path):
    """Start simulators with their own config (faults, keys, timing); stopped after the test."""
    from lab.simulator.server import SimConfig, SimulatorServer

    servers: list = []

    def start(**config) -> "SimulatorServer":
        config.setdefault("time_scale", TEST_TIME_SCALE)
        config.setdefault("render_cache", render_cache)
        server = SimulatorServer(SimConfig(**config)).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def playwright_driver():
    """The worker's one Playwright driver, for its Chromium and its warm profile."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


def _chromium_options() -> dict:
    """How every Chromium here starts: Debian's (scripts/test.sh installs it); a missing one fails, never skips."""
    from helpers import CHROMIUM, CHROMIUM_ARGS

    assert os.path.exists(CHROMIUM), f"no chromium at {CHROMIUM}: install Debian's chromium (scripts/test.sh does)"
    return {"executable_path": CHROMIUM, "headless": True, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def chromium(playwright_driver):
    """The worker's one launched Chromium."""
    launched = playwright_driver.chromium.launch(**_chromium_options())
    yield launched
    launched.close()


@pytest.fixture(scope="module")
def browser(chromium):
    """The worker's one Chromium; every test opens a context of its own (``new_context``/``new_page``), and the
    contexts a module opened are closed when it ends, so no page, cookie or storage reaches the next module."""
    yield chromium
    for context in list(chromium.contexts):
        context.close()


@pytest.fixture(scope="session")
def warm_profile(playwright_driver, tmp_path_factory: pytest.TempPathFactory):
    """A second Chromium whose profile lives for the worker's run: its HTTP and compiled-script caches.

    Each load of the lab's page fetches Gradio's ~120 scripts; with these caches warm they are neither served
    (and brotli-compressed) by the lab again nor compiled again: test_ui_browser's 13 tests took 59.0 s of
    Chromium CPU instead of 71.4 s. ``visit`` clears everything else a test leaves.
    """
    context = playwright_driver.chromium.launch_persistent_context(
        str(tmp_path_factory.mktemp("chromium-profile")), accept_downloads=True, **_chromium_options())
    yield context
    context.close()


@pytest.fixture
def visit(warm_profile):
    """Open pages as one new visitor: ``visit(width, height, permissions=[...])`` -> a page in the warm profile.

    The visitor is new: when the test ends its pages are closed and every origin they reached loses its
    cookies, local and session storage, IndexedDB, service workers and granted permissions; only the
    caches stay. Two visitors at once need two contexts: the second one is ``browser.new_context()``.
    """
    pages: list = []
    urls: set[str] = set()

    def open_page(width: int = 1440, height: int = 1000, permissions: tuple[str, ...] = ()):
        if permissions:
            warm_profile.grant_permissions(list(permissions))
        page = warm_profile.new_page()
        page.set_viewport_size({"width": width, "height": height})
        page.on("framenavigated", lambda frame: urls.add(frame.url))
        pages.append(page)
        return page

    yield open_page
    for page in pages:
        urls.add(page.url)
        page.close()
    origins = {f"{part.scheme}://{part.netloc}" for part in map(urlsplit, urls) if part.scheme in ("http", "https")}
    blank = warm_profile.new_page()
    try:
        cdp = warm_profile.new_cdp_session(blank)
        for origin in sorted(origins):
            # "all" leaves the HTTP cache alone: it is not one of the storage types.
            cdp.send("Storage.clearDataForOrigin", {"origin": origin, "storageTypes": "all"})
    finally:
        blank.close()
    warm_profile.clear_cookies()
    warm_profile.clear_permissions()


# ---------------------------------------------------------------- the journal on both databases


def with_schema(url: str, schema: str) -> str:
    """``url`` whose connections work in ``schema`` (libpq's options=-csearch_path=…)."""
    return f"{url}{'&' if '?' in url else '?'}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """A real PostgreSQL server: LAB_TEST_DATABASE_URL (scripts/test.sh starts one), else a throwaway
    cluster started here from Debian's packages (scripts/pg_cluster.sh). In CI the URL must be set."""
    if TEST_DATABASE_URL:
        yield TEST_DATABASE_URL
        return
    if os.environ.get("CI") == "true":
        pytest.fail("LAB_TEST_DATABASE_URL is not set: scripts/test.sh starts a PostgreSQL cluster and sets it")
    directory = tempfile.mkdtemp(prefix="lab-pg-")  # not under pytest's tmp: the postgres user must reach it
    script = str(REPO / "scripts" / "pg_cluster.sh")
    started = subprocess.run(["bash", script, "start", directory], capture_output=True, text=True)
    if started.returncode != 0:
        subprocess.run(["bash", script, "stop", directory], capture_output=True)
        pytest.fail(f"could not start a PostgreSQL cluster: {started.stderr.strip()[-2000:]}")
    try:
        yield started.stdout.strip()
    finally:
        subprocess.run(["bash", script, "stop", directory], capture_output=True)


@pytest.fixture
def postgres_journal(postgres_url: str) -> str:
    """A journal URL of its own on the test server: a fresh schema, dropped after the test."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    yield with_schema(postgres_url, schema)
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", "postgresql"])
def journal_url(request: pytest.FixtureRequest, tmp_path: Path) -> "str | Path":
    """Where a test's journal lives, once per backend: a SQLite file, and a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        return tmp_path / "journal.sqlite3"
    return request.getfixturevalue("postgres_journal")
