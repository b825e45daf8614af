"""The simulator speaks the APIYI /v1/videos contract: auth, strict parsing, task lifecycle, content, billing.

Every test talks raw HTTP to a running simulator; nothing is mocked.
"""

from __future__ import annotations

import re
import time

import pytest
import requests

from lab.params import FAST_MODEL, STANDARD_MODEL

KEY = "sk-test"
AUTH = {"Authorization": f"Bearer {KEY}"}
TASK_ID = re.compile(r"^task_[A-Za-z0-9]{16,}$")


def body(**fields) -> dict:
    """A small valid request (4 s 720p, fixed seed) with ``fields`` merged in."""
    request = {"model": FAST_MODEL, "prompt": "contract test: a red kite over hills", "duration": "4",
               "metadata": {"seed": 11}}
    request.update(fields)
    return request


def submit(sim, request: dict | None = None, headers: dict | None = None) -> requests.Response:
    return requests.post(f"{sim.base_url}/videos", json=request or body(), headers={**AUTH, **(headers or {})}, timeout=10)


def poll(sim, task_id: str, headers: dict | None = None) -> requests.Response:
    return requests.get(f"{sim.base_url}/videos/{task_id}", headers=headers or AUTH, timeout=10)


def wait_done(sim, task_id: str, headers: dict | None = None, limit_s: float = 60) -> list[dict]:
    """Poll until completed or failed; returns every poll answer."""
    seen = []
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        answer = poll(sim, task_id, headers)
        assert answer.status_code == 200, answer.text
        seen.append(answer.json())
        if seen[-1]["status"] in ("completed", "failed"):
            return seen
        time.sleep(0.05)
    raise AssertionError(f"task {task_id} did not finish: {seen[-1]}")


def content(sim, task_id: str, headers: dict | None = None) -> requests.Response:
    return requests.get(f"{sim.base_url}/videos/{task_id}/content", headers=headers or AUTH, timeout=30)


# ---------------------------------------------------------------- auth


def test_missing_key_is_401_in_the_gateway_envelope(simulator):
    answer = requests.post(f"{simulator.base_url}/videos", json=body(), timeout=10)
    assert answer.status_code == 401
    error = answer.json()["error"]
    assert error["type"] == "new_api_error"
    assert error["code"] == ""
    assert re.search(r"\(request id: \w+\)$", error["message"])


def test_unknown_key_is_401(make_simulator):
    sim = make_simulator(keys=("sk-a",))
    answer = submit(sim, headers={"Authorization": "Bearer sk-b"})
    assert answer.status_code == 401
    assert answer.json()["error"]["type"] == "new_api_error"


def test_key_is_accepted_with_or_without_bearer(make_simulator):
    sim = make_simulator(keys=("sk-a",))
    assert submit(sim, headers={"Authorization": "Bearer sk-a"}).status_code == 200
    assert submit(sim, headers={"Authorization": "sk-a"}).status_code == 200


def test_every_endpoint_requires_the_key(simulator):
    task_id = submit(simulator).json()["task_id"]
    assert requests.get(f"{simulator.base_url}/videos/{task_id}", timeout=10).status_code == 401
    assert requests.get(f"{simulator.base_url}/videos/{task_id}/content", timeout=10).status_code == 401


# ---------------------------------------------------------------- strict parsing and validation


def test_malformed_json_is_parse_request_failed_with_a_go_message(simulator):
    answer = requests.post(f"{simulator.base_url}/videos", data="{model: 1}",
                           headers={**AUTH, "Content-Type": "application/json"}, timeout=10)
    assert answer.status_code == 400
    assert answer.json() == {
        "code": "parse_request_failed",
        "message": "invalid character 'm' looking for beginning of object key string",
        "data": None,
    }


def test_duration_as_a_number_is_the_documented_parse_error(simulator):
    answer = submit(simulator, body(duration=8))
    assert answer.status_code == 400
    assert answer.json() == {
        "code": "parse_request_failed",
        "message": "json: cannot unmarshal number into Go struct field TaskSubmitReq.duration of type string",
        "data": None,
    }


@pytest.mark.parametrize("where", ["top level", "metadata"])
def test_generate_audio_anywhere_is_invalid_argument(simulator, where):
    request = body(generateAudio=True) if where == "top level" else body(metadata={"seed": 1, "generateAudio": False})
    answer = submit(simulator, request)
    assert answer.status_code == 400
    assert "INVALID_ARGUMENT" in answer.text


def test_blank_prompt_is_invalid_request(simulator):
    answer = submit(simulator, body(prompt="   "))
    assert answer.status_code == 400
    assert answer.json() == {"code": "invalid_request", "message": "prompt is required", "data": None}


@pytest.mark.parametrize(
    "request_fields",
    [
        {"size": "800x600"},
        {"duration": "5"},
        {"metadata": {"resolution": "2k"}},
        {"metadata": {"aspectRatio": "4:3"}},
        {"metadata": {"seed": -1}},
        {"metadata": {"seed": 4_294_967_296}},
        {"metadata": {"seed": 1.5}},
    ],
    ids=["size", "duration", "resolution", "aspect", "negative-seed", "seed-too-big", "fractional-seed"],
)
def test_bad_values_are_400(simulator, request_fields):
    assert submit(simulator, body(**request_fields)).status_code == 400


@pytest.mark.parametrize(
    "request_fields",
    [{"size": "1920x1080"}, {"metadata": {"resolution": "4k"}}, {"duration": "6", "size": "1080x1920"}],
    ids=["1080p-by-size", "4k-by-metadata", "portrait-1080p"],
)
def test_1080p_and_4k_need_an_effective_duration_of_8(simulator, request_fields):
    answer = submit(simulator, body(**request_fields))
    assert answer.status_code == 400
    assert "INVALID_ARGUMENT" in answer.text


def test_metadata_duration_seconds_wins_so_1080p_with_duration_4_is_accepted(simulator):
    request = body(duration="4", size="1920x1080", metadata={"seed": 1, "durationSeconds": 8})
    assert submit(simulator, request).status_code == 200


def test_unknown_model_is_503_no_available_channel(simulator):
    answer = submit(simulator, body(model="veo-9"))
    assert answer.status_code == 503
    error = answer.json()["error"]
    assert error["type"] == "new_api_error"
    assert "No available channel for model veo-9" in error["message"]


# ---------------------------------------------------------------- submit and poll


def test_submit_answers_a_queued_video_object(simulator):
    answer = submit(simulator)
    assert answer.status_code == 200
    video = answer.json()
    assert TASK_ID.match(video["task_id"])
    assert video["id"] == video["task_id"]
    assert video["object"] == "video"
    assert video["model"] == FAST_MODEL
    assert video["status"] == "queued"
    assert video["progress"] == 0
    assert isinstance(video["created_at"], int)


def test_task_ids_are_unique(simulator):
    ids = {submit(simulator).json()["task_id"] for _ in range(3)}
    assert len(ids) == 3


def test_status_moves_queued_in_progress_completed_with_progress_0_50_100(simulator):
    task_id = submit(simulator).json()["task_id"]
    seen = wait_done(simulator, task_id)
    order = ["queued", "in_progress", "completed"]
    statuses = [answer["status"] for answer in seen]
    assert statuses[-1] == "completed"
    assert [order.index(s) for s in statuses] == sorted(order.index(s) for s in statuses)
    for answer in seen:
        assert answer["progress"] == {"queued": 0, "in_progress": 50, "completed": 100}[answer["status"]]


def test_poll_answers_echo_the_task(simulator):
    task_id = submit(simulator, body(model=STANDARD_MODEL)).json()["task_id"]
    video = poll(simulator, task_id).json()
    assert video["id"] == video["task_id"] == task_id
    assert video["model"] == STANDARD_MODEL
    assert video["object"] == "video"


def test_unknown_task_poll_is_400_task_not_exist(simulator):
    answer = poll(simulator, "task_doesnotexist0000000")
    assert answer.status_code == 400
    assert answer.json() == {"code": "task_not_exist", "message": "task_not_exist", "data": None}


def test_another_keys_task_does_not_exist_for_you(simulator):
    task_id = submit(simulator).json()["task_id"]
    other = {"Authorization": "Bearer sk-someone-else"}
    assert poll(simulator, task_id, other).json()["code"] == "task_not_exist"
    assert content(simulator, task_id, other).status_code == 404


def test_failed_task_reports_progress_100_and_no_error_detail(simulator):
    task_id = submit(simulator, headers={"X-Sim-Fault": "failed"}).json()["task_id"]
    final = wait_done(simulator, task_id)[-1]
    assert final["status"] == "failed"
    assert final["progress"] == 100
    assert "error" not in final


# ---------------------------------------------------------------- content


def test_content_before_completion_is_400_with_the_internal_status(make_simulator):
    sim = make_simulator(time_scale=1.0)  # a real 1-3 s queue
    task_id = submit(sim).json()["task_id"]
    answer = content(sim, task_id)
    assert answer.status_code == 400
    assert answer.json() == {
        "error": {"message": "Task is not completed yet, current status: QUEUED", "type": "invalid_request_error"}
    }


def test_content_of_a_running_task_names_in_progress(simulator):
    task_id = submit(simulator, headers={"X-Sim-Fault": "stuck"}).json()["task_id"]
    while poll(simulator, task_id).json()["status"] == "queued":
        time.sleep(0.02)
    assert content(simulator, task_id).json()["error"]["message"] == (
        "Task is not completed yet, current status: IN_PROGRESS"
    )


def test_content_of_a_failed_task_names_failure(simulator):
    task_id = submit(simulator, headers={"X-Sim-Fault": "failed"}).json()["task_id"]
    wait_done(simulator, task_id)
    assert content(simulator, task_id).json()["error"]["message"].endswith("current status: FAILURE")


def test_content_of_an_unknown_task_is_404(simulator):
    answer = content(simulator, "task_doesnotexist0000000")
    assert answer.status_code == 404
    assert answer.json() == {"error": {"message": "Task not found", "type": "invalid_request_error"}}


def test_completed_content_is_an_mp4_with_length_and_cache_headers(simulator):
    task_id = submit(simulator).json()["task_id"]
    wait_done(simulator, task_id)
    answer = content(simulator, task_id)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "video/mp4"
    assert int(answer.headers["Content-Length"]) == len(answer.content) > 0
    assert "max-age" in answer.headers["Cache-Control"]
    assert answer.content[4:8] == b"ftyp"


def test_content_is_downloadable_as_soon_as_the_task_completes(make_simulator, tmp_path):
    # Zero scheduled time and an empty cache: only the render decides when the task completes.
    sim = make_simulator(fixed_generation_s=0.0, render_cache=tmp_path / "cache")
    task_id = submit(sim).json()["task_id"]
    wait_done(sim, task_id)
    assert content(sim, task_id).status_code == 200


def test_content_supports_byte_ranges(simulator):
    task_id = submit(simulator).json()["task_id"]
    wait_done(simulator, task_id)
    whole = content(simulator, task_id).content
    part = content(simulator, task_id, {**AUTH, "Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.headers["Accept-Ranges"] == "bytes"
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(whole)}"
    assert part.content == whole[100:200]


# ---------------------------------------------------------------- billing ledger


def test_only_completed_tasks_are_charged(make_simulator):
    sim = make_simulator()
    done = submit(sim).json()["task_id"]
    failed = submit(sim, headers={"X-Sim-Fault": "failed"}).json()["task_id"]
    submit(sim, headers={"X-Sim-Fault": "stuck"})
    wait_done(sim, done)
    wait_done(sim, failed)
    ledger = requests.get(f"{sim.root_url}/_sim/ledger", timeout=10).json()
    assert [charge["task_id"] for charge in ledger["charges"]] == [done]
    assert ledger["total_usd"] == 0.30
    assert ledger["tasks"] == {"queued": 0, "in_progress": 1, "completed": 1, "failed": 1}
    assert ledger["submits"] == 3


def test_a_task_is_charged_once_however_often_it_is_polled_or_downloaded(make_simulator):
    sim = make_simulator()
    task_id = submit(sim).json()["task_id"]
    wait_done(sim, task_id)
    for _ in range(3):
        poll(sim, task_id)
        content(sim, task_id)
    assert sim.ledger()["charges"] == [
        {"task_id": task_id, "model": FAST_MODEL, "usd": 0.30, "at": sim.ledger()["charges"][0]["at"]}
    ]


def test_standard_model_costs_1_20(make_simulator):
    sim = make_simulator()
    task_id = submit(sim, body(model=STANDARD_MODEL)).json()["task_id"]
    wait_done(sim, task_id)
    assert sim.ledger()["total_usd"] == 1.20


def test_ledger_counts_requests_per_route(make_simulator):
    sim = make_simulator()
    task_id = submit(sim).json()["task_id"]
    poll(sim, task_id)
    poll(sim, task_id)
    content(sim, task_id)
    requests_seen = requests.get(f"{sim.root_url}/_sim/ledger", timeout=10).json()["requests"]
    assert requests_seen["POST /v1/videos"] == 1
    assert requests_seen["GET /v1/videos/{id}"] == 2
    assert requests_seen["GET /v1/videos/{id}/content"] == 1


def test_ledger_endpoint_and_method_agree(simulator):
    over_http = requests.get(f"{simulator.root_url}/_sim/ledger", timeout=10).json()
    direct = simulator.ledger()
    assert over_http["charges"] == direct["charges"]
    assert over_http["submits"] == direct["submits"]


# ---------------------------------------------------------------- mounted in another app


@pytest.fixture
def mounted_simulator(render_cache):
    """The simulator app mounted at /sim inside another FastAPI app behind a middleware, as the Gradio app does."""
    import socket
    import threading

    import uvicorn
    from fastapi import FastAPI
    from starlette.middleware.base import BaseHTTPMiddleware

    from lab.simulator.app import create_app
    from lab.simulator.server import SimConfig

    class PassThrough(BaseHTTPMiddleware):
        async def dispatch(self, request, call_next):
            return await call_next(request)

    parent = FastAPI()
    parent.add_middleware(PassThrough)
    parent.mount("/sim", create_app(SimConfig(time_scale=0.02, render_cache=render_cache)))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(parent, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)

    class Mounted:
        root_url = f"http://127.0.0.1:{listener.getsockname()[1]}/sim"
        base_url = f"{root_url}/v1"

    yield Mounted
    server.should_exit = True
    thread.join(timeout=5)
    parent.routes[-1].app.state.sim.close()


def test_mounted_app_serves_the_contract_under_its_prefix(mounted_simulator):
    task_id = submit(mounted_simulator).json()["task_id"]
    assert wait_done(mounted_simulator, task_id)[-1]["status"] == "completed"
    assert content(mounted_simulator, task_id).status_code == 200
    assert requests.get(f"{mounted_simulator.root_url}/_sim/ledger", timeout=10).json()["total_usd"] == 0.30


def test_mounted_app_still_drops_connections_behind_middleware(mounted_simulator):
    task_id = submit(mounted_simulator).json()["task_id"]
    with pytest.raises(requests.ConnectionError):
        poll(mounted_simulator, task_id, {**AUTH, "X-Sim-Fault": "drop_connection"})
    assert poll(mounted_simulator, task_id).status_code == 200
