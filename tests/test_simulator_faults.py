"""Faults on demand: each named fault does what the vendor's service is known to do, repeatably.

``X-Sim-Fault: NAME`` forces a task fault on the task a POST creates, or a
transport fault on the request that carries it; ``faults={NAME: p}`` draws them
with a seeded RNG.
"""

from __future__ import annotations

import time

import pytest
import requests

from lab.params import FAST_MODEL
from lab.simulator.config import FAULT_NAMES
from lab.simulator.server import SimConfig

AUTH = {"Authorization": "Bearer sk-faults"}
BODY = {"model": FAST_MODEL, "prompt": "fault test: a quiet harbour", "duration": "4", "metadata": {"seed": 3}}


def submit(sim, fault: str | None = None) -> requests.Response:
    headers = {**AUTH, **({"X-Sim-Fault": fault} if fault else {})}
    return requests.post(f"{sim.base_url}/videos", json=BODY, headers=headers, timeout=10)


def poll(sim, task_id: str, fault: str | None = None) -> requests.Response:
    headers = {**AUTH, **({"X-Sim-Fault": fault} if fault else {})}
    return requests.get(f"{sim.base_url}/videos/{task_id}", headers=headers, timeout=10)


def content(sim, task_id: str, fault: str | None = None) -> requests.Response:
    headers = {**AUTH, **({"X-Sim-Fault": fault} if fault else {})}
    return requests.get(f"{sim.base_url}/videos/{task_id}/content", headers=headers, timeout=30)


def final_status(sim, task_id: str, limit_s: float = 60) -> str:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        status = poll(sim, task_id).json()["status"]
        if status in ("completed", "failed"):
            return status
        time.sleep(0.05)
    raise AssertionError(f"task {task_id} did not finish")


def content_answers_until_ok(sim, task_id: str, limit: int = 200) -> list[int]:
    codes = []
    for _ in range(limit):
        codes.append(content(sim, task_id).status_code)
        if codes[-1] == 200:
            return codes
        time.sleep(0.02)
    raise AssertionError(f"content never became available: {codes[-5:]}")


# ---------------------------------------------------------------- configuration


def test_parse_faults_reads_names_and_probabilities():
    assert SimConfig.parse_faults("content_not_ready=0.5, rate_429=0.1") == {"content_not_ready": 0.5, "rate_429": 0.1}


def test_parse_faults_rejects_an_unknown_name_and_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown fault 'rate_428'.*rate_429"):
        SimConfig.parse_faults("rate_428=0.1")


def test_parse_faults_rejects_a_probability_outside_0_to_1():
    with pytest.raises(ValueError, match="between 0 and 1"):
        SimConfig.parse_faults("failed=1.5")


def test_config_rejects_unknown_faults_too():
    with pytest.raises(ValueError, match="unknown fault"):
        SimConfig(faults={"explode": 1.0})


def test_unknown_fault_header_is_400(simulator):
    assert submit(simulator, "explode").status_code == 400


def test_every_fault_has_a_name_a_test_can_force():
    assert set(FAULT_NAMES) == {
        "content_not_ready", "content_502", "failed", "rate_429", "server_500", "drop_connection", "stuck", "slow"
    }


# ---------------------------------------------------------------- task faults


def test_content_not_ready_answers_400_in_progress_after_completion_then_serves(simulator):
    task_id = submit(simulator, "content_not_ready").json()["task_id"]
    assert final_status(simulator, task_id) == "completed"
    first = content(simulator, task_id)
    assert first.status_code == 400
    assert first.json() == {
        "error": {"message": "Task is not completed yet, current status: IN_PROGRESS", "type": "invalid_request_error"}
    }
    codes = content_answers_until_ok(simulator, task_id)
    assert set(codes[:-1]) <= {400}


def test_content_502_answers_upstream_404_right_after_completion_then_serves(simulator):
    task_id = submit(simulator, "content_502").json()["task_id"]
    assert final_status(simulator, task_id) == "completed"
    first = content(simulator, task_id)
    assert first.status_code == 502
    assert first.json() == {"error": {"message": "Upstream service returned status 404", "type": "server_error"}}
    assert content_answers_until_ok(simulator, task_id)[-1] == 200


def test_failed_task_is_not_billed(make_simulator):
    sim = make_simulator()
    task_id = submit(sim, "failed").json()["task_id"]
    assert final_status(sim, task_id) == "failed"
    assert sim.ledger()["total_usd"] == 0


def test_stuck_task_stays_in_progress(make_simulator):
    sim = make_simulator(fixed_generation_s=0.0)
    stuck = submit(sim, "stuck").json()["task_id"]
    normal = submit(sim).json()["task_id"]
    assert final_status(sim, normal) == "completed"
    time.sleep(0.2)
    assert poll(sim, stuck).json()["status"] == "in_progress"


def test_slow_task_finishes_after_its_normal_twin(make_simulator):
    sim = make_simulator(time_scale=1.0, fixed_generation_s=1.0)
    slow = submit(sim, "slow").json()["task_id"]
    normal = submit(sim).json()["task_id"]
    assert final_status(sim, normal) == "completed"
    assert poll(sim, slow).json()["status"] == "in_progress"
    assert final_status(sim, slow) == "completed"


# ---------------------------------------------------------------- transport faults


def test_rate_429_on_submit_creates_no_task(make_simulator):
    sim = make_simulator()
    answer = submit(sim, "rate_429")
    assert answer.status_code == 429
    assert sim.ledger()["submits"] == 0


def test_rate_429_comes_with_retry_after_or_as_the_empty_body_form(make_simulator):
    sim = make_simulator(faults={"rate_429": 1.0}, fault_seed=1)
    answers = [submit(sim) for _ in range(12)]
    assert {answer.status_code for answer in answers} == {429}
    assert any("Retry-After" in answer.headers for answer in answers)
    assert any(answer.content == b"" for answer in answers)
    assert any(answer.content and answer.json()["data"] is None for answer in answers)


def test_rate_429_hits_polls_too(simulator):
    task_id = submit(simulator).json()["task_id"]
    assert poll(simulator, task_id, "rate_429").status_code == 429


def test_server_500_on_submit_creates_no_task(make_simulator):
    sim = make_simulator()
    assert submit(sim, "server_500").status_code == 500
    assert sim.ledger()["submits"] == 0


def test_server_500_on_poll_sometimes_has_a_proxy_html_body(make_simulator):
    sim = make_simulator(fault_seed=1)
    task_id = submit(sim).json()["task_id"]
    answers = [poll(sim, task_id, "server_500") for _ in range(10)]
    assert {answer.status_code for answer in answers} == {500}
    assert any(answer.headers["Content-Type"].startswith("text/html") and "<html>" in answer.text for answer in answers)


def test_drop_connection_closes_a_get_without_a_response(simulator):
    task_id = submit(simulator).json()["task_id"]
    with pytest.raises(requests.ConnectionError):
        poll(simulator, task_id, "drop_connection")
    with pytest.raises(requests.ConnectionError):
        content(simulator, task_id, "drop_connection")


def test_drop_connection_never_hits_a_submit(make_simulator):
    sim = make_simulator(faults={"drop_connection": 1.0})
    assert submit(sim, "drop_connection").status_code == 200


def test_server_keeps_serving_after_a_dropped_connection(simulator):
    task_id = submit(simulator).json()["task_id"]
    with pytest.raises(requests.ConnectionError):
        poll(simulator, task_id, "drop_connection")
    assert poll(simulator, task_id).status_code == 200


# ---------------------------------------------------------------- determinism


def _failure_pattern(sim, count: int = 8) -> list[str]:
    ids = [submit(sim).json()["task_id"] for _ in range(count)]
    return [final_status(sim, task_id) for task_id in ids]


def test_same_fault_seed_gives_the_same_faults(make_simulator):
    config = {"faults": {"failed": 0.5}, "fault_seed": 7, "fixed_generation_s": 0.0}
    first = _failure_pattern(make_simulator(**config))
    second = _failure_pattern(make_simulator(**config))
    assert first == second
    assert set(first) == {"completed", "failed"}


def test_probability_zero_never_fires_and_one_always_does(make_simulator):
    never = make_simulator(faults={"failed": 0.0}, fixed_generation_s=0.0)
    always = make_simulator(faults={"failed": 1.0}, fixed_generation_s=0.0)
    assert set(_failure_pattern(never, 3)) == {"completed"}
    assert set(_failure_pattern(always, 3)) == {"failed"}
