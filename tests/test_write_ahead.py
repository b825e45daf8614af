"""Write-ahead: every submit is journalled before its POST, so a reply that never arrives leaves a trace.

Real processes and a real simulator; a tiny TCP proxy in between holds the server's reply back.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from lab import params
from lab.client import RetryPolicy, VideosClient
from lab.errors import AuthError, ConnectError, NeverSent, ServerError
from lab.runner import Runner
from lab.store import UNKNOWN_OUTCOME, Store

REPO = Path(__file__).resolve().parent.parent
TIME_SCALE = "0.02"
SUBMIT = "POST /v1/videos"
BASIC = ["--prompt", "a paper boat on a puddle", "--duration", "4", "--seed", "9"]


def body() -> dict:
    return {"model": params.FAST_MODEL, "prompt": "a paper boat on a puddle", "duration": "4", "metadata": {"seed": 9}}


class HoldingProxy:
    """Forwards every request to ``upstream_port`` and never passes the answer back."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            self.sockets += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._swallow, args=(upstream,), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass

    @staticmethod
    def _swallow(upstream: socket.socket) -> None:
        try:
            while upstream.recv(65536):
                pass  # the server's answer, held back for good
        except OSError:
            pass

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


@pytest.fixture
def proxy_to(request):
    proxies: list[HoldingProxy] = []

    def start(server) -> HoldingProxy:
        proxy = HoldingProxy(server.port)
        proxies.append(proxy)
        return proxy

    yield start
    for proxy in proxies:
        proxy.close()


def lab(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lab", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})


def test_a_generate_killed_while_the_reply_is_held_back_leaves_an_intent_that_resume_shows(
        make_simulator, proxy_to, isolated_env: Path) -> None:
    sim = make_simulator()
    proxy = proxy_to(sim)
    env = {**os.environ, "LAB_LEASE_S": "1"}
    child = subprocess.Popen(
        [sys.executable, "-m", "lab", "generate", *BASIC, "--base-url", proxy.base_url, "--sim-time-scale", TIME_SCALE],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )
    journal = isolated_env / "journal.sqlite3"
    try:
        deadline = time.monotonic() + 60
        while sim.ledger()["submits"] < 1:  # the server has created (and will bill) the task
            assert time.monotonic() < deadline, "the POST never reached the simulator"
            time.sleep(0.05)
        with Store(journal) as store:
            (intent,) = store.unresolved_intents()
            # The exact wire body, before any answer: the POST is still waiting for its reply.
            assert json.loads(intent.body) == params.resolve(body()).wire
            assert intent.state == "sending" and intent.task_id is None and intent.backend == "simulator"
            time.sleep(1.5)  # longer than the lease: the live process keeps renewing it
            assert store.unresolved_intents(include_in_flight=False) == []
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    time.sleep(1.5)  # the killed process's lease runs out
    proc = lab("resume", "--base-url", sim.base_url, "--sim-time-scale", TIME_SCALE, env={"LAB_LEASE_S": "1"})
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["tasks"] == []
    (unknown,) = result["unknown_outcome"]
    assert unknown["request_id"] == intent.request_id
    assert unknown["outcome"] == UNKNOWN_OUTCOME and "may have been created and billed" in unknown["outcome"]
    assert intent.request_id in proc.stderr and "check the task list" in proc.stderr.lower()
    # Never re-sent, by the killed process or by resume.
    assert sim.ledger()["requests"][SUBMIT] == 1
    with Store(journal) as store:
        assert [i.request_id for i in store.unresolved_intents()] == [intent.request_id]
    # Looked up in the account: dismissed, it is no longer listed.
    assert f"resume --checked {intent.request_id}" in proc.stderr
    proc = lab("resume", "--checked", intent.request_id, "--base-url", sim.base_url, "--sim-time-scale", TIME_SCALE)
    assert proc.returncode == 0 and "marked 1 submit(s)" in proc.stderr, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["unknown_outcome"] == []


def test_a_submit_that_never_connected_is_journalled_as_not_sent(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    with Store(tmp_path / "journal.sqlite3") as store:
        client = VideosClient(f"http://127.0.0.1:{closed}/v1", "sk-x", retry=RetryPolicy(post_connect_retries=0))
        with pytest.raises(ConnectError) as caught:
            Runner(client, store, tmp_path, thumbs=0, backend="simulator").run_one(body())
        assert "may have created" not in str(caught.value)
        intent = store.intent(caught.value.lab_request_id)
        assert intent.state == "not_sent" and intent.task_id is None
        assert store.unresolved_intents() == []


def test_a_refused_submit_keeps_the_gateways_request_id_and_is_not_an_unknown_outcome(make_simulator, tmp_path: Path) -> None:
    sim = make_simulator(keys=("sk-good",))
    with Store(tmp_path / "journal.sqlite3") as store:
        client = VideosClient.scaled(sim.base_url, "sk-wrong", time_scale=float(TIME_SCALE))
        with pytest.raises(AuthError) as caught:
            Runner(client, store, tmp_path, thumbs=0).run_one(body())
        assert caught.value.gateway_request_id
        intent = store.intent(caught.value.lab_request_id)
        assert (intent.state, intent.gateway_request_id) == ("refused", caught.value.gateway_request_id)
        assert store.unresolved_intents() == []


def test_a_submit_answered_5xx_is_an_unknown_outcome_and_never_resent(make_simulator, tmp_path: Path) -> None:
    sim = make_simulator(faults={"server_500": 1.0})
    with Store(tmp_path / "journal.sqlite3") as store:
        client = VideosClient.scaled(sim.base_url, "sk-x", time_scale=float(TIME_SCALE))
        with pytest.raises(ServerError) as caught:
            Runner(client, store, tmp_path, thumbs=0).run_one(body())
        (intent,) = store.unresolved_intents()
        assert intent.request_id == caught.value.lab_request_id and intent.state == "unknown"
        assert "may have created" in intent.error
        # The user looked it up in their account: no longer listed, still journalled.
        assert store.mark_intents_checked([intent.request_id, intent.request_id]) == 1
        assert store.unresolved_intents() == [] and store.intent(intent.request_id).state == "checked"
    assert sim.ledger()["requests"][SUBMIT] == 1


def test_a_task_is_journalled_with_its_intent_and_the_gateways_answer(simulator, tmp_path: Path) -> None:
    with Store(tmp_path / "journal.sqlite3") as store:
        client = VideosClient.scaled(simulator.base_url, "sk-x", time_scale=float(TIME_SCALE))
        result = Runner(client, store, tmp_path, thumbs=0).run_one(body())
        assert result.ok
        intent = store.intent(result.request_id)
        assert (intent.state, intent.task_id) == ("created", result.task_id)
        assert store.get(result.task_id).request_id == intent.request_id
        assert store.unresolved_intents() == []
        # Dismissing after a look in the account never touches a submit that named its task.
        assert store.mark_intents_checked([result.request_id]) == 0
        assert store.intent(result.request_id).state == "created"


def test_a_header_that_http_cannot_carry_is_not_sent_and_never_called_possibly_created(simulator) -> None:
    client = VideosClient.scaled(simulator.base_url, "sk-x", time_scale=float(TIME_SCALE))
    before = simulator.ledger()["requests"].get(SUBMIT, 0)
    with pytest.raises(NeverSent) as caught:
        client.submit(params.resolve(body()).wire, headers={"X-Note": "two\nlines"})
    assert "may have created" not in str(caught.value) and "nothing reached the server" in str(caught.value)
    assert simulator.ledger()["requests"].get(SUBMIT, 0) == before


def test_a_submit_of_unknown_outcome_holds_its_price_against_the_caps_until_it_is_dismissed(
        make_simulator, journal_url, tmp_path: Path) -> None:
    # It may have been created and billed: released at once, it let a person past their daily cap by its price.
    from lab.budget import Budget
    from lab.errors import BudgetExceeded

    sim = make_simulator(faults={"server_500": 1.0})
    with Store(journal_url) as store:
        budget = Budget(store, session_cap_usd=0.60, person_cap_usd=0.30)
        runner = Runner(VideosClient.scaled(sim.base_url, "sk-x", time_scale=float(TIME_SCALE)), store, tmp_path,
                        thumbs=0, budget=budget)
        with pytest.raises(ServerError) as caught:
            runner.run_one(body(), session="s1", person="hf:bob")
        assert store.intent(caught.value.lab_request_id).state == "unknown"
        with pytest.raises(BudgetExceeded, match="held by tasks that may still bill"):
            budget.reserve(0.30, "s2", person="hf:bob")  # another session of the same person
        view = budget.view("s1", person="hf:bob")
        assert (view.session_reserved_usd, view.person_remaining_usd) == (0.30, 0.0)
        with Store(journal_url) as other_process:  # no process owns the hold: none reaps it
            with pytest.raises(BudgetExceeded):
                Budget(other_process, person_cap_usd=0.30).reserve(0.30, "s3", person="hf:bob")

        # The user looked it up in their account and dismissed it: the price is free again.
        assert store.mark_intents_checked([caught.value.lab_request_id]) == 1
        budget.reserve(0.30, "s2", person="hf:bob").release()
        assert budget.view("s1", person="hf:bob").session_reserved_usd == 0.0
    assert sim.ledger()["requests"][SUBMIT] == 1
