"""The composition root: the one place that builds the lab from Settings, for the app and the CLI.

``wire`` builds the back end (client, journal, budget, slots, runner; the private
simulator when no base URL is set); ``open_app`` adds what the UI is handed, one
``AppServices`` built at start and closed at exit; ``open_cli`` is the CLI's. A
visitor's own key gets a runner of its own for one call (``Wiring.runner_with_key``)
sharing the journal, budget and slots, so their tasks count against the same caps.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from lab import params
from lab.access import Access
from lab.budget import Budget
from lab.people import HubAccounts, People, Whoami
from lab.client import VideosClient
from lab.compare.service import CompareService
from lab.orchestrator import Orchestrator
from lab.datadir import DataDir
from lab.prescreen.background import Screener
from lab.runner import Runner
from lab.sessions import JournalView
from lab.settings import Settings
from lab.slots import TaskSlots
from lab.store import Store, journal_location

# Journal backend kind of tasks sent with a visitor's key: only that visitor's key can fetch them.
VISITOR_BACKEND = "visitor"

log = logging.getLogger(__name__)


def served_media_dirs(data_dir: Path) -> list[str]:
    """The data directory's media folders (``DataDir.media_dirs``), created, as strings for Gradio."""
    return [str(folder) for folder in DataDir(data_dir).media_dirs()]


@dataclass
class Wiring:
    """The lab's shared back end for one process. Holds the key (inside ``client``) on the server."""

    settings: Settings
    base_url: str
    backend: str
    client: VideosClient
    store: Store
    budget: Budget
    slots: TaskSlots | None
    runner: Runner
    screener: Screener | None = None
    simulator: Any = None
    _secret: str = field(default="", repr=False)

    @property
    def data_dir(self) -> Path:
        return Path(self.settings.data_dir)

    @property
    def files(self) -> DataDir:
        """Where each kind of file lives in the data directory."""
        return DataDir(self.settings.data_dir)

    @property
    def has_server_key(self) -> bool:
        """Whether the operator configured a real key (the simulator accepts any)."""
        return bool(self.settings.api_key) or (self.backend == "live" and bool(self._secret))

    @property
    def secrets(self) -> list[str]:
        """Strings no export may contain."""
        return [self._secret] if self._secret else []

    @property
    def visitor_base_url(self) -> str:
        """Visitors' keys are for the live service, even when the lab itself runs on the simulator."""
        return self.settings.base_url or params.DEFAULT_BASE_URL

    @property
    def snippet_base_url(self) -> str:
        """Snippets are for copying: they name the live service even when the lab runs on the simulator."""
        return self.base_url if self.backend == "live" else params.DEFAULT_BASE_URL

    @contextmanager
    def runner_with_key(self, key: str) -> Iterator[tuple[Runner, VideosClient]]:
        """A runner on the live service with a visitor's key, closed after the call.

        Its tasks are journalled with the backend kind "visitor", so the lab's own resume
        never asks for them with another key.
        """
        client = VideosClient(self.visitor_base_url, key)
        try:
            yield build_runner(self.settings, client, self.store, self.data_dir, backend=VISITOR_BACKEND,
                               budget=self.budget, slots=self.slots, screener=self.screener), client
        finally:
            client.close()

    def close(self, *, wait_for_screens: bool = False) -> None:
        """``wait_for_screens``: finish the pre-screens under way first (the CLI's; the app drops them)."""
        if self.screener is not None:
            self.screener.close(wait=wait_for_screens)
        self.client.close()
        self.store.close()
        if self.simulator is not None:
            self.simulator.stop()


def build_runner(settings: Settings, client: VideosClient, store: Store, data_dir: Path, *, backend: str,
                 budget: Budget | None, slots: TaskSlots | None = None, thumbs: int = 5,
                 screener: Screener | None = None, preview: bool = False) -> Runner:
    """The one place a Runner is built (the app, a visitor's key, the CLI): same limits (download size, sweep
    size) and lease everywhere.

    ``preview``: also an animated WebP per saved run (the CLI's ``--preview``; no page shows one).
    """
    return Runner(client, store, data_dir, budget=budget, slots=slots, thumbs=thumbs, preview=preview, backend=backend,
                  download_max_bytes=settings.download_max_bytes, lease_s=settings.lease_s, screener=screener,
                  max_sweep=settings.max_sweep)


def wire(settings: Settings, *, base_url: str | None = None, api_key: str | None = None, thumbs: int = 5,
         limit_in_flight: bool = True, preview: bool = False) -> Wiring:
    """The back end on ``base_url`` (default: settings); with neither, a private simulator (its own random key).

    ``limit_in_flight`` False: no task slots (the CLI's ``--concurrency`` is the user's own limit).
    """
    simulator = None
    base_url = base_url or settings.base_url
    data_dir = Path(settings.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(journal_location(settings.database_url, data_dir))
    try:
        if base_url is None:
            if store.dialect != "sqlite":
                log.warning("the journal is shared (%s) but this process embeds a private simulator that only it "
                            "can ask about its tasks: for several replicas point them at one simulator "
                            "(LAB_BASE_URL) or set the key", store.location)
            # Imported here: the simulator's web stack (FastAPI, uvicorn) was a third of the CPU of every CLI
            # start that names a service (0.20 vs 0.13 s). The app's and the CLI's render cache is one.
            from lab.private_simulator import start_private_simulator

            simulator, api_key = start_private_simulator(settings.sim_time_scale, DataDir(data_dir).renders)
            base_url = simulator.base_url
        secret = api_key or settings.key_for_requests()
        # The backend is a setting (settings decide "auto" once), not a guess from the URL: a live
        # service behind a loopback proxy is live.
        backend = "simulator" if simulator is not None else settings.backend
        scale = settings.sim_time_scale if backend == "simulator" else 1.0
        client = VideosClient.scaled(base_url, secret, time_scale=scale)
    except BaseException:
        store.close()
        if simulator is not None:
            simulator.stop()
        raise
    budget = Budget(store, settings.spend_cap_session_usd, settings.spend_cap_day_usd,
                    person_cap_usd=settings.spend_cap_person_usd,
                    person_submits_per_minute=settings.submits_per_minute_person)
    # Gradio's concurrency limit counts events, but a sweep event runs several tasks:
    # the slots cap tasks in flight per session and for the whole lab.
    slots = TaskSlots(settings.max_concurrent_total, settings.max_concurrent_per_session) if limit_in_flight else None
    screener = Screener(store, data_dir, settings.screen) if settings.prescreen else None
    runner = build_runner(settings, client, store, data_dir, backend=backend, budget=budget, slots=slots,
                          thumbs=thumbs, screener=screener, preview=preview)
    return Wiring(settings=settings, base_url=base_url, backend=backend, client=client, store=store, budget=budget,
                  slots=slots, runner=runner, screener=screener, simulator=simulator, _secret=secret)


def open_cli(settings: Settings, *, thumbs: int = 5, preview: bool = False) -> Wiring:
    """The CLI's back end: the app's, with the command's thumbnail count (and ``--preview``) and no task slots."""
    return wire(settings, thumbs=thumbs, limit_in_flight=False, preview=preview)


@dataclass(frozen=True)
class AppServices:
    """What the UI is handed, built once at start: runs, the journal as each session may see it, one compare
    service, and the key and banner policy. The API key stays inside ``runs``; the caller closes it."""

    settings: Settings
    runs: Orchestrator
    journal: JournalView
    compare: CompareService
    access: Access
    # Who pays for an event: the signed-in user, an API caller's token's account, else the client's address.
    people: People = field(default_factory=People)

    def close(self) -> None:
        self.runs.close()


def open_app(settings: Settings, *, base_url: str | None = None, api_key: str | None = None,
             whoami: Whoami | None = None) -> AppServices:
    """The app's services on ``base_url`` (default: settings); with neither, a private simulator.

    ``whoami`` resolves an API caller's Hugging Face token to a username (default: huggingface_hub's
    ``whoami`` on ``settings.hf_endpoint``).
    """
    wiring = wire(settings, base_url=base_url, api_key=api_key)
    runs = Orchestrator(wiring)
    access = Access(wiring.budget, wiring.backend, wiring.has_server_key, settings.allow_visitor_key,
                    wiring.snippet_base_url)
    people = People(settings.trusted_proxy, HubAccounts(whoami, endpoint=settings.hf_endpoint))
    return AppServices(settings, runs, runs.journal, CompareService(wiring.store, wiring.data_dir, wiring.secrets,
                                                                      prescreen=settings.prescreen),
                       access, people)
