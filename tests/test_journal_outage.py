"""The journal's PostgreSQL server goes away during a run: no submit is sent without its intent written, and a
run in flight keeps its video and is journalled once the server is back. A server of its own, stopped and started."""

from __future__ import annotations

import logging
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

from lab import params
from lab.client import VideosClient
from lab.errors import StoreError
from lab.runner import Runner
from lab.store import Store

from conftest import REPO, TEST_TIME_SCALE

SCRIPT = str(REPO / "scripts" / "pg_cluster.sh")
BODY = {"model": params.FAST_MODEL, "prompt": "a heron in reeds", "duration": "4"}


@pytest.fixture
def server(postgres_url):  # postgres_url: fails in CI when the cluster the suite needs is missing
    directory = tempfile.mkdtemp(prefix="lab-pg-outage-")
    started = subprocess.run(["bash", SCRIPT, "start", directory], capture_output=True, text=True, check=True)

    def switch(action: str) -> None:
        subprocess.run(["bash", SCRIPT, action, directory], capture_output=True, check=True)

    yield started.stdout.strip(), switch
    subprocess.run(["bash", SCRIPT, "stop", directory], capture_output=True)


@pytest.fixture
def store(server):
    with Store(server[0]) as opened:
        opened.database.reconnect_s = 1.0  # how long one call waits for the server before it says so
        yield opened


def test_no_submit_is_sent_while_the_journal_cannot_be_written(make_simulator, server, store, tmp_path):
    sim = make_simulator()
    server[1]("down")
    with VideosClient.scaled(sim.base_url, "sk-x", time_scale=TEST_TIME_SCALE) as client:
        with pytest.raises(StoreError, match="127.0.0.1"):
            Runner(client, store, tmp_path, thumbs=0).run_one(dict(BODY))
    assert sim.ledger()["submits"] == 0


class _Seen(logging.Handler):
    """Sets ``event`` when the runner says it could not reach the journal (its server is down)."""

    def __init__(self) -> None:
        super().__init__()
        self.event = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "cannot reach the journal database" in record.getMessage():
            self.event.set()


def test_a_run_whose_journal_goes_away_mid_poll_is_saved_and_journalled_once_it_is_back(make_simulator, server,
                                                                                      store, tmp_path):
    sim = make_simulator(fixed_generation_s=60)
    seen = _Seen()
    logging.getLogger("lab.runner").addHandler(seen)
    restarted = threading.Thread(target=lambda: (seen.event.wait(60), server[1]("up")))

    def on_event(event) -> None:
        if event.kind == "submitted":  # journalled: now the server goes away while the task renders
            server[1]("down")
            restarted.start()

    try:
        with VideosClient.scaled(sim.base_url, "sk-x", time_scale=TEST_TIME_SCALE) as client:
            result = Runner(client, store, tmp_path, thumbs=0).run_one(dict(BODY), on_event=on_event)
    finally:
        logging.getLogger("lab.runner").removeHandler(seen)
        restarted.join(120)
    assert seen.event.is_set()  # it really wrote while the server was down
    assert result.ok and Path(result.video_path).is_file()
    record = store.get(result.task_id)
    assert (record.status, record.video_path) == ("saved", str(result.video_path))
    assert record.cost_usd == params.price_usd(params.FAST_MODEL)
    assert [charge["task_id"] for charge in sim.ledger()["charges"]] == [result.task_id]
