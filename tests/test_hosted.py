"""A hosted demo limits each person, not each page: ``python app.py`` with SPACE_ID set, the simulator, gradio_client.

A person is the Hugging Face account of a token an API caller passes, else the client's address; their
daily cap and submit rate hold across every Client() they make. What was billed is read from the
simulator's ledger, never from the lab.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from conftest import TEST_TIME_SCALE
from helpers import fake_hub, free_port, lab_client
from lab import params

REPO = Path(__file__).resolve().parent.parent
ALICE = "hf_" + "alice" * 7
BOB = "hf_" + "bob" * 11
CAROL = "hf_" + "carol" * 7
ERIN = "hf_" + "erin" * 9
DROPPED = ("APIYI_", "LAB_", "GRADIO_SERVER_", "SPACE_ID", "OAUTH_", "HF_TOKEN")


def body(seed: int = 1, prompt: str = "a red fox trotting through fresh snow") -> str:
    return json.dumps({"model": params.FAST_MODEL, "prompt": prompt, "duration": "4", "metadata": {"seed": seed}})


class App:
    """``python app.py`` on a free port against a simulator: the entry point a Space runs."""

    def __init__(self, tmp_path: Path, sim_url: str, **settings: str) -> None:
        port = free_port()
        env = {name: value for name, value in os.environ.items() if not name.startswith(DROPPED)}
        env.update({"GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
                    "GRADIO_ANALYTICS_ENABLED": "False", "GRADIO_TEMP_DIR": str(tmp_path / "gradio"),
                    "LAB_DATA_DIR": str(tmp_path / "data"), "LAB_BASE_URL": sim_url,
                    "LAB_SIM_TIME_SCALE": str(TEST_TIME_SCALE), "LAB_SPEND_CAP_SESSION_USD": "none",
                    "LAB_SPEND_CAP_DAY_USD": "none", "LAB_SPEND_CAP_PERSON_USD": "none",
                    "LAB_SUBMITS_PER_MINUTE_PERSON": "none", "LAB_PRESCREEN": "off", **settings})
        self.url = f"http://127.0.0.1:{port}/"
        self.data_dir = tmp_path / "data"
        self.log_path = tmp_path / "app.log"
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env=env, stdout=self._log,
                                        stderr=subprocess.STDOUT)

    def wait_started(self, timeout: float = 240.0) -> "App":
        deadline = time.monotonic() + timeout  # a loaded 2-core machine took ~60 s to import and build the lab
        while True:
            assert self.process.poll() is None, self.log_path.read_text()
            try:
                if requests.get(self.url + "config", timeout=10).ok:
                    return self
            except requests.RequestException:  # not listening yet, or too busy starting to answer
                pass
            assert time.monotonic() < deadline, "app.py did not start"
            time.sleep(0.3)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self._log.close()


@pytest.fixture(scope="module")
def sim(render_cache):
    from lab.simulator.server import SimConfig, SimulatorServer

    with SimulatorServer(SimConfig(time_scale=TEST_TIME_SCALE, render_cache=render_cache)) as server:
        yield server


def settled(sim, timeout: float = 180.0) -> dict:
    """The simulator's ledger once no task is queued or running."""
    deadline = time.monotonic() + timeout
    while True:
        ledger = requests.get(sim.root_url + "/_sim/ledger", timeout=5).json()
        if all(n == 0 for status, n in ledger["tasks"].items() if status not in ("completed", "failed")):
            return ledger
        assert time.monotonic() < deadline, ledger
        time.sleep(0.1)


def client(url: str, tmp_path: Path, **kwargs):
    # A long read timeout: on a loaded 2-core machine a queued call can wait minutes for its answer.
    return lab_client(url, tmp_path / "downloads", httpx_kwargs={"timeout": 600}, **kwargs)


def outcomes(calls) -> tuple[list, list[str]]:
    """(results, refusal messages) of calls made at once."""
    from gradio_client.exceptions import AppError

    def one(call):
        try:
            return call(), None
        except AppError as err:
            return None, str(err)

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        done = list(pool.map(one, calls))
    return [result for result, _ in done if result is not None], [error for _, error in done if error is not None]


@pytest.fixture(scope="module")
def labs(sim, tmp_path_factory):
    """Three labs started at once (each takes a while to start): ``space`` as a Space runs it (SPACE_ID set,
    $0.60 a day per person, a Hub that knows four tokens), ``burst`` (a Space, 5 runs a minute per person)
    and ``home`` (no SPACE_ID: no proxy in front, $0.60 a day per person)."""
    with fake_hub({ALICE: "alice", BOB: "bob", CAROL: "carol", ERIN: "erin"}) as hub:
        apps = {
            "space": App(tmp_path_factory.mktemp("space"), sim.base_url, SPACE_ID="owner/veo-lab",
                         LAB_SPEND_CAP_PERSON_USD="0.60", LAB_HF_ENDPOINT=hub),
            "burst": App(tmp_path_factory.mktemp("burst"), sim.base_url, SPACE_ID="owner/veo-lab",
                         LAB_SUBMITS_PER_MINUTE_PERSON="5"),
            "home": App(tmp_path_factory.mktemp("home"), sim.base_url, LAB_SPEND_CAP_PERSON_USD="0.60"),
        }
        try:
            yield {name: app.wait_started() for name, app in apps.items()}
        finally:
            for app in apps.values():
                app.stop()


@pytest.fixture(scope="module")
def space(labs) -> tuple[str, Path]:
    return labs["space"].url, labs["space"].data_dir


def test_ten_clients_from_one_address_are_one_person_held_to_one_cap(space, sim, tmp_path):
    url, _ = space
    before = settled(sim)["total_usd"]
    clients = [client(url, tmp_path) for _ in range(10)]
    calls = [lambda c=c, n=n: c.predict(body(seed=n), api_name="/generate") for c in clients for n in range(3)]
    made, refused = outcomes(calls)
    billed = round(settled(sim)["total_usd"] - before, 2)
    assert billed <= 0.60 and len(made) == 2  # was $6.00: ten sessions at $0.60 each
    assert len(refused) == 28
    assert all(m.startswith("Daily per-person cap reached") and "address 127.0.0.1 has $0.00 left" in m
               and "resets at 00:00 UTC" in m and m.endswith("Nothing was sent.") for m in refused), refused[:3]


def test_two_hugging_face_accounts_are_each_held_to_their_own_cap(space, sim, tmp_path):
    url, _ = space
    before = settled(sim)["total_usd"]
    # Two Client() instances each, one account passing oauth_token=, the other token= (X-HF-Authorization).
    alices = [client(url, tmp_path, oauth_token=ALICE) for _ in range(2)]
    bobs = [client(url, tmp_path, token=BOB) for _ in range(2)]
    calls = [lambda c=c, n=n: c.predict(body(seed=n), api_name="/generate") for c in alices + bobs for n in range(3)]
    made, refused = outcomes(calls)
    billed = round(settled(sim)["total_usd"] - before, 2)
    assert billed == 1.20 and len(made) == 4
    assert sorted(m.split(" has ")[0].rsplit(" ", 1)[-1] for m in refused) == ["alice"] * 4 + ["bob"] * 4


def test_an_api_caller_with_a_token_compares_its_runs_from_a_new_client(space, tmp_path):
    from gradio_client.exceptions import AppError

    url, _ = space
    first = client(url, tmp_path, oauth_token=CAROL)
    ids = [first.predict(body(seed=n), api_name="/generate")[1]["task_id"] for n in (41, 42)]
    data, archive = client(url, tmp_path, oauth_token=CAROL).predict(" ".join(ids), api_name="/compare")
    assert [cell["task_id"] for cell in data["cells"]] == sorted(ids, key=ids.index) or len(data["cells"]) == 2
    assert Path(archive).is_file()
    with pytest.raises(AppError, match="(?i)no such task or sweep"):  # without the token: someone else
        client(url, tmp_path).predict(" ".join(ids), api_name="/compare")


def test_the_api_docs_tell_a_script_to_pass_its_token(space, tmp_path):
    api = client(space[0], tmp_path).view_api(print_info=False, return_format="dict")
    for name in ("/generate", "/sweep", "/compare"):
        description = api["named_endpoints"][name]["description"]
        assert "oauth_token=HF_TOKEN" in description and "Without a token each Client() is a new session" in description


def test_a_burst_of_50_submits_from_one_person_is_cut_at_the_rate_and_sends_nothing_more(labs, sim, tmp_path):
    url = labs["burst"].url
    before = settled(sim)["submits"]
    clients = [client(url, tmp_path) for _ in range(5)]
    started = time.monotonic()
    jobs = [c.submit(body(seed=100 + n), api_name="/generate") for n in range(10) for c in clients]
    burst_s = time.monotonic() - started
    made, refused = outcomes([job.result for job in jobs])
    sent = settled(sim)["submits"] - before
    assert len(made) == 5 and sent == 5, (burst_s, refused[:2])  # nothing sent for the 45 refused
    assert len(refused) == 45 and all(m.startswith("Submit rate limit reached: address 127.0.0.1 started 5 tasks")
                                      and m.endswith("Nothing was sent.") for m in refused), refused[:3]


def test_a_spoofed_x_forwarded_for_off_a_space_changes_nothing(labs, sim, tmp_path):
    url = labs["home"].url
    before = settled(sim)["total_usd"]
    clients = [client(url, tmp_path, headers={"X-Forwarded-For": f"203.0.113.{n}"}) for n in range(1, 4)]
    made, refused = outcomes([lambda c=c, n=n: c.predict(body(seed=200 + n), api_name="/generate")
                              for c in clients for n in range(2)])
    assert round(settled(sim)["total_usd"] - before, 2) == 0.60 and len(made) == 2
    assert len(refused) == 4 and all("address 127.0.0.1 has $0.00 left" in m for m in refused), refused


# ---------------------------------------------------------------- every event checks who owns the run


# The events that read or write a run, a review, a sweep or a report (UI events are private; /compare public).
OWNED_EVENTS = ("open_set", "measure_set", "load_review", "save_review", "download_report", "compare_from",
                "compare", "select_run", "to_form", "open_sweep", "retry_failed", "tick", "reattach",
                "check_background", "dismiss_unknown", "fetch_unfinished", "list_runs", "list_choices",
                "select_sweep")
# Events whose id arrives as typed text or a chosen value (not a server-side State): refused outright.
FREE_ID_EVENTS = ("open_set", "load_review", "save_review", "compare")
VICTIM_PROMPT = "an otter juggling three lanterns on a frozen pond"
VICTIM_NOTE = "erin's private note: the second take"


def raw_call(url: str, fn_index: int, data: list, session_hash: str, event_data: dict | None = None) -> dict:
    """One event over Gradio's HTTP queue, as a script without gradio_client would send it."""
    joined = requests.post(url + "gradio_api/queue/join", timeout=30,
                           json={"data": data, "fn_index": fn_index, "session_hash": session_hash,
                                 "event_data": event_data, "trigger_id": None})
    if joined.status_code != 200:
        return {"joined": joined.status_code, "text": joined.text, "success": False}
    event_id = joined.json()["event_id"]
    messages = []
    with requests.get(url + "gradio_api/queue/data", params={"session_hash": session_hash}, stream=True,
                      timeout=120) as stream:
        for line in stream.iter_lines(decode_unicode=True):
            if not line or not line.startswith("data:"):
                continue
            message = json.loads(line[5:])
            messages.append(message)
            if message.get("msg") == "process_completed" and message.get("event_id") == event_id:
                return {"success": message.get("success"), "text": json.dumps(messages, ensure_ascii=False)}
    return {"success": False, "text": json.dumps(messages, ensure_ascii=False)}


def _value_for(component: dict, ids: list[str], ids_text: str):
    kind, props = component.get("type"), component.get("props", {})
    if kind == "textbox":
        return ids_text
    if kind == "dropdown":
        return ids if props.get("multiselect") else ids[0]
    if kind == "state":
        return ids  # Gradio keeps State on the server: what a caller sends here is ignored
    return {"checkbox": True, "radio": "👍", "number": 0}.get(kind)


def test_raw_http_calls_of_every_owned_event_with_another_sessions_ids_are_refused(space, sim, tmp_path):
    from lab.store import Store

    url, data_dir = space
    victim = client(url, tmp_path, oauth_token=ERIN)
    _, _, summary = victim.predict(json.dumps({"model": params.FAST_MODEL, "prompt": VICTIM_PROMPT, "duration": "4"}),
                                   "1, 2", 0, "", api_name="/sweep")
    ids = [row["task_id"] for row in summary["results"]]
    with Store(data_dir / "journal.sqlite3") as store:
        store.set_review(ids[1], rating=1, note=VICTIM_NOTE, picked=True)
    submits = settled(sim)["submits"]

    config = requests.get(url + "config", timeout=10).json()
    components = {c["id"]: c for c in config["components"]}
    calls = [(index, dep) for index, dep in enumerate(config["dependencies"])
             if str(dep.get("api_name") or "").rstrip("_0123456789") in OWNED_EVENTS]
    assert {str(dep["api_name"]).rstrip("_0123456789") for _, dep in calls} >= set(OWNED_EVENTS) - {"compare_from"}
    outcomes_by_event: dict[str, dict] = {}
    for n, (index, dep) in enumerate(calls):
        data = [_value_for(components.get(i, {}), ids, " ".join([*ids, summary["sweep_id"]])) for i in dep["inputs"]]
        result = raw_call(url, index, data, f"attacker{n}x", event_data={"index": 0, "value": ids[0]})
        name = str(dep["api_name"])
        outcomes_by_event[name] = result
        text = result["text"]
        assert VICTIM_PROMPT not in text and VICTIM_NOTE not in text, name
        assert not any(f"{task_id}{sep}" in text for task_id in ids for sep in (".mp4", "_", "/")), name
    for name, result in outcomes_by_event.items():
        if name.rstrip("_0123456789") in FREE_ID_EVENTS:
            assert result["success"] is False or "Cannot compare" in result["text"], (name, result["text"][:300])
    with Store(data_dir / "journal.sqlite3") as store:
        review = store.reviews([ids[1]])[ids[1]]
    assert (review.rating, review.note, review.picked) == (1, VICTIM_NOTE, True)  # save_review wrote nothing
    assert settled(sim)["submits"] == submits  # nothing was re-run for anyone
