"""lab.client against a real simulator (and a tiny hostile server): no HTTP mocking."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from lab import params
from lab.client import (
    PollPolicy,
    RetryPolicy,
    TaskStatus,
    VideosClient,
    parse_error_body,
    safe_task_id,
    video_path_for,
)
from lab.errors import (
    AuthError,
    ContentNotReady,
    MediaError,
    RateLimited,
    RequestRejected,
    ServerError,
    TaskNotFound,
    Timeout,
)

TIME_SCALE = 0.02
KEY = "sk-client-test-0123456789"
SUBMIT = "POST /v1/videos"
POLL = "GET /v1/videos/{id}"
CONTENT = "GET /v1/videos/{id}/content"


def wire(**changes) -> dict:
    body = {"model": params.FAST_MODEL, "prompt": "a lighthouse at dusk", "duration": "4", "metadata": {"seed": 11}}
    body.update(changes)
    return params.resolve(body).wire


def client_for(server, key: str = KEY, **kw) -> VideosClient:
    return VideosClient.scaled(server.base_url, key, time_scale=TIME_SCALE, **kw)


def run_to_file(client: VideosClient, tmp_path: Path, headers=None) -> tuple[TaskStatus, Path]:
    submitted = client.submit(wire(), headers=headers)
    final = client.wait(submitted.task_id)
    assert final.status == "completed"
    dest = video_path_for(tmp_path, submitted.task_id)
    return final, client.download(submitted.task_id, dest, expected_size="1280x720", expected_duration="4")


class TinyServer:
    """A local HTTP server answering fixed responses per path: for answers no honest server gives."""

    def __init__(self, routes: dict[tuple[str, str], tuple[int, dict, bytes]], keep_alive: bool = False) -> None:
        self.routes = routes
        self.seen: list[tuple[str, str, dict]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                outer.seen.append((self.command, self.path, dict(self.headers)))
                status, headers, body = outer.routes.get((self.command, self.path), (404, {}, b""))
                if callable(body):
                    body = body(self)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer
            protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"  # 1.1: connections stay open

            def log_message(self, *args) -> None:
                pass

        class QuietServer(ThreadingHTTPServer):
            def handle_error(self, request, client_address) -> None:
                pass  # a handler that drops the connection on purpose is not news

        self.httpd = QuietServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "TinyServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def json_answer(status: int, data) -> tuple[int, dict, bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps(data).encode()


# ---------------------------------------------------------------- the happy path


def test_submit_answers_a_queued_task_with_its_id(simulator) -> None:
    status = client_for(simulator).submit(wire())
    assert status.status == "queued"
    assert status.task_id.startswith("task_")
    assert status.raw["task_id"] == status.task_id


def test_wait_returns_completed_and_download_saves_a_verified_mp4(simulator, tmp_path: Path) -> None:
    final, path = run_to_file(client_for(simulator), tmp_path)
    assert path == tmp_path.resolve() / "runs" / f"{final.task_id}.mp4"
    assert path.read_bytes()[4:8] == b"ftyp"
    assert not path.with_name(path.name + ".part").exists()


def test_wait_reports_every_poll_and_decides_on_status_only(simulator) -> None:
    client = client_for(simulator)
    seen: list[TaskStatus] = []
    final = client.wait(client.submit(wire()).task_id, on_status=seen.append)
    assert final.status == "completed"
    # completed_at shows up before completion; it must not have ended the wait early.
    assert all(s.status != "completed" for s in seen[:-1])
    assert any(s.completed_at is not None and s.status != "completed" for s in seen)


def test_a_failed_task_is_returned_as_data_not_raised(simulator) -> None:
    client = client_for(simulator)
    submitted = client.submit(wire(), headers={"X-Sim-Fault": "failed"})
    final = client.wait(submitted.task_id)
    assert final.status == "failed"
    assert final.done


def test_a_task_that_never_finishes_raises_timeout_with_its_id(simulator) -> None:
    client = client_for(simulator)
    submitted = client.submit(wire(), headers={"X-Sim-Fault": "stuck"})
    with pytest.raises(Timeout) as caught:
        client.wait(submitted.task_id, deadline_s=0.5)
    assert caught.value.task_id == submitted.task_id
    assert "resume" in str(caught.value)


# ---------------------------------------------------------------- /content quirks and transport faults


def test_content_not_ready_right_after_completion_is_retried_until_saved(simulator, tmp_path: Path) -> None:
    before = simulator.ledger()["requests"].get(CONTENT, 0)
    run_to_file(client_for(simulator), tmp_path, headers={"X-Sim-Fault": "content_not_ready"})
    assert simulator.ledger()["requests"][CONTENT] - before >= 2


def test_content_502_right_after_completion_is_retried_until_saved(simulator, tmp_path: Path) -> None:
    from lab.simulator.config import CONTENT_502_CALLS

    before = simulator.ledger()["requests"].get(CONTENT, 0)
    run_to_file(client_for(simulator), tmp_path, headers={"X-Sim-Fault": "content_502"})
    # The first CONTENT_502_CALLS answers were 502 and the download went on past them.
    assert simulator.ledger()["requests"][CONTENT] - before == CONTENT_502_CALLS + 1


def test_content_that_stays_not_ready_past_the_window_is_content_not_ready(make_simulator, tmp_path: Path) -> None:
    sim = make_simulator(content_lag_s=600.0, time_scale=1.0, fixed_generation_s=0.2)
    client = VideosClient(sim.base_url, KEY, retry=RetryPolicy(content_window_s=0.3, content_backoff_s=0.05))
    submitted = client.submit(wire(), headers={"X-Sim-Fault": "content_not_ready"})
    assert client.wait(submitted.task_id).status == "completed"
    with pytest.raises(ContentNotReady) as caught:
        client.download(submitted.task_id, video_path_for(tmp_path, submitted.task_id))
    assert "Task is not completed yet" in str(caught.value)
    assert not list((tmp_path / "runs").glob("*"))


@pytest.mark.parametrize("fault", ["rate_429", "server_500", "drop_connection"])
def test_polls_and_downloads_ride_out_transport_faults(make_simulator, tmp_path: Path, fault: str) -> None:
    sim = make_simulator(faults={fault: 0.3}, fault_seed=3)
    client = client_for(sim)
    saved = 0
    for _ in range(3):
        try:
            submitted = client.submit(wire())
        except (RateLimited, ServerError):
            continue  # refused at submit: no task exists, nothing to save
        client.wait(submitted.task_id)
        client.download(submitted.task_id, video_path_for(tmp_path, submitted.task_id), expected_size="1280x720")
        saved += 1
    assert saved >= 1
    ledger = sim.ledger()
    assert len({c["task_id"] for c in ledger["charges"]}) == len(ledger["charges"]) == saved


def test_a_submit_answered_with_5xx_is_never_resent(make_simulator) -> None:
    sim = make_simulator()
    with pytest.raises(ServerError) as caught:
        client_for(sim).submit(wire(), headers={"X-Sim-Fault": "server_500"})
    assert caught.value.status == 500
    assert sim.ledger()["requests"][SUBMIT] == 1


def test_a_submit_refused_with_429_is_resent_then_reported_as_rate_limited(make_simulator) -> None:
    sim = make_simulator()
    client = client_for(sim, retry=RetryPolicy(post_429_retries=2, backoff_factor=0.0, backoff_jitter_s=0.0))
    with pytest.raises(RateLimited) as caught:
        client.submit(wire(), headers={"X-Sim-Fault": "rate_429"})
    assert caught.value.status == 429
    assert sim.ledger()["requests"][SUBMIT] == 3
    assert sim.ledger()["submits"] == 0


def test_a_submit_whose_connection_drops_after_sending_is_not_resent() -> None:
    calls = []

    def drop(handler) -> bytes:
        calls.append(1)
        handler.connection.shutdown(socket.SHUT_RDWR)
        raise ConnectionAbortedError

    with TinyServer({("POST", "/v1/videos"): (200, {}, drop)}) as tiny:
        with pytest.raises(ServerError) as caught:
            VideosClient(tiny.base_url, KEY).submit(wire())
    assert len(calls) == 1
    assert "not re-sent" in str(caught.value)


def test_every_submit_goes_over_a_connection_of_its_own_while_polls_reuse_theirs() -> None:
    # A POST on a pooled connection that the server closed at its keep-alive timeout fails after it was sent,
    # and its outcome is then unknown: it happened once in the suite, at the simulator's 5 s timeout.
    ports: dict[str, list[int]] = {"POST": [], "GET": []}

    def task(handler) -> bytes:
        ports[handler.command].append(handler.client_address[1])
        return json.dumps({"task_id": "task_abc123", "status": "queued", "progress": 0}).encode()

    answer = (200, {"Content-Type": "application/json"}, task)
    with TinyServer({("POST", "/v1/videos"): answer, ("GET", "/v1/videos/task_abc123"): answer},
                    keep_alive=True) as tiny:
        client = VideosClient(tiny.base_url, KEY)
        for _ in range(3):
            client.submit(wire())
            client.get("task_abc123")
    assert len(set(ports["POST"])) == 3, ports
    assert len(set(ports["GET"])) == 1, ports  # the server keeps connections open: only the POSTs close theirs


def test_a_submit_that_cannot_connect_is_a_clear_server_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = VideosClient(f"http://127.0.0.1:{port}/v1", KEY, retry=RetryPolicy(post_connect_retries=1, backoff_factor=0.0))
    with pytest.raises(ServerError) as caught:
        client.submit(wire())
    assert "could not connect" in str(caught.value)
    # The reason itself, readable, not urllib3's wrapping (which buried it past the truncation).
    assert "Connection refused" in str(caught.value)
    assert "Max retries exceeded" not in str(caught.value) and "HTTPConnectionPool" not in str(caught.value)


def test_a_submit_to_a_host_that_does_not_resolve_says_it_never_connected() -> None:
    # A DNS failure means nothing was sent: it must not claim the task may have been created.
    client = VideosClient("http://lab-qa-no-such-host.invalid/v1", KEY, retry=RetryPolicy(post_connect_retries=0))
    with pytest.raises(ServerError) as caught:
        client.submit(wire())
    assert "could not connect" in str(caught.value)
    assert "may have created" not in str(caught.value)


# ---------------------------------------------------------------- typed errors with the server's message


def test_a_refused_key_is_an_auth_error_with_the_servers_message(make_simulator) -> None:
    sim = make_simulator(keys=("sk-a",))
    with pytest.raises(AuthError) as caught:
        client_for(sim, key="sk-wrong-secret-key").submit(wire())
    assert caught.value.status == 401
    assert "Invalid token" in str(caught.value)


def test_the_key_never_appears_in_errors_or_reprs() -> None:
    secret = "sk-verysecret-abcdef123456"

    def echo(handler) -> bytes:
        return json.dumps({"error": {"message": f"bad token {handler.headers['Authorization']}", "type": "x"}}).encode()

    with TinyServer({("POST", "/v1/videos"): (401, {"Content-Type": "application/json"}, echo)}) as tiny:
        client = VideosClient(tiny.base_url, secret)
        with pytest.raises(AuthError) as caught:
            client.submit(wire())
    assert tiny.seen[0][2]["Authorization"] == f"Bearer {secret}"  # it was sent...
    for text in (str(caught.value), repr(caught.value), caught.value.message, repr(client)):
        assert secret not in text and "verysecret" not in text  # ...and never shown


def test_a_number_duration_is_rejected_with_parse_request_failed(simulator) -> None:
    with pytest.raises(RequestRejected) as caught:
        client_for(simulator).submit({**wire(), "duration": 8})
    assert caught.value.status == 400
    assert "parse_request_failed" in str(caught.value) or caught.value.code == "parse_request_failed"
    assert "cannot unmarshal number" in str(caught.value)


def test_generate_audio_is_rejected_with_invalid_argument(simulator) -> None:
    with pytest.raises(RequestRejected) as caught:
        client_for(simulator).submit({**wire(), "generateAudio": True})
    assert "INVALID_ARGUMENT" in str(caught.value)


def test_an_unknown_task_is_task_not_found_on_poll_and_download(simulator, tmp_path: Path) -> None:
    client = client_for(simulator)
    with pytest.raises(TaskNotFound):
        client.get("task_doesnotexist0000")
    with pytest.raises(TaskNotFound):
        client.download("task_doesnotexist0000", tmp_path / "x.mp4")


@pytest.mark.parametrize(
    ("body", "content_type", "message", "code"),
    [
        (b'{"error":{"message":"Invalid token (request id: 1)","type":"new_api_error","code":""}}', "application/json",
         "Invalid token (request id: 1)", None),
        (b'{"code":"task_not_exist","message":"task_not_exist","data":null}', "application/json", "task_not_exist", "task_not_exist"),
        (b'{"error":{"code":400,"message":"bad","status":"INVALID_ARGUMENT"}}', "application/json", "bad", "INVALID_ARGUMENT"),
        (b"", "", "HTTP 429 Too Many Requests with an empty body", None),
        (b"<html><head><title>500 Internal Server Error</title></head><body><h1>500</h1><hr>nginx</body></html>",
         "text/html", "HTTP 500 Internal Server Error: 500 Internal Server Error 500 nginx", None),
    ],
)
def test_every_error_envelope_yields_the_servers_message(body: bytes, content_type: str, message: str, code) -> None:
    status = int(message.split()[1]) if message.startswith("HTTP") else 400
    reason = {429: "Too Many Requests", 500: "Internal Server Error"}.get(status, "Bad Request")
    assert parse_error_body(status, reason, content_type, body) == (message, code)


def test_a_long_html_error_page_is_truncated() -> None:
    message, _ = parse_error_body(502, "Bad Gateway", "text/html", b"<p>" + b"x " * 2000 + b"</p>")
    assert len(message) <= 300 and "<p>" not in message


# ---------------------------------------------------------------- hostile or broken answers


@pytest.mark.parametrize("task_id", ["../../x", "task/../../etc", "", "a" * 129, "task_ok\n", "task ok", None, 7])
def test_an_unsafe_task_id_is_refused(task_id) -> None:
    with pytest.raises(ServerError, match="unsafe task id"):
        safe_task_id(task_id)


def test_a_task_id_from_the_server_that_escapes_the_data_dir_is_refused(tmp_path: Path) -> None:
    answer = json_answer(200, {"id": "../../x", "task_id": "../../x", "status": "queued", "progress": 0})
    with TinyServer({("POST", "/v1/videos"): answer}) as tiny:
        with pytest.raises(ServerError, match="unsafe task id"):
            VideosClient(tiny.base_url, KEY).submit(wire())
    with pytest.raises(ServerError):
        video_path_for(tmp_path, "../../x")
    assert list(tmp_path.iterdir()) == []


def test_a_content_answer_that_is_not_an_mp4_is_rejected(tmp_path: Path) -> None:
    routes = {
        ("GET", "/v1/videos/task_html/content"): (200, {"Content-Type": "text/html"}, b"<html>login</html>"),
        ("GET", "/v1/videos/task_bytes/content"): (200, {"Content-Type": "application/octet-stream"}, b"GIF89a" + b"\0" * 100),
    }
    with TinyServer(routes) as tiny:
        client = VideosClient(tiny.base_url, KEY)
        for task_id in ("task_html", "task_bytes"):
            with pytest.raises(MediaError, match="not an MP4"):
                client.download(task_id, video_path_for(tmp_path, task_id))
    assert list((tmp_path / "runs").iterdir()) == []


def test_a_download_over_the_size_cap_is_stopped_and_removed(simulator, tmp_path: Path) -> None:
    client = client_for(simulator)
    submitted = client.submit(wire())
    client.wait(submitted.task_id)
    with pytest.raises(MediaError, match="cap"):
        client.download(submitted.task_id, video_path_for(tmp_path, submitted.task_id), max_bytes=10_000)
    assert list((tmp_path / "runs").iterdir()) == []


def test_a_video_of_the_wrong_size_or_duration_is_not_kept(simulator, tmp_path: Path) -> None:
    client = client_for(simulator)
    submitted = client.submit(wire())
    client.wait(submitted.task_id)
    dest = video_path_for(tmp_path, submitted.task_id)
    with pytest.raises(MediaError, match="expected 1920x1080"):
        client.download(submitted.task_id, dest, expected_size="1920x1080")
    with pytest.raises(MediaError, match="expected 8 s"):
        client.download(submitted.task_id, dest, expected_duration="8")
    assert list((tmp_path / "runs").iterdir()) == []


def test_a_video_cut_short_after_its_header_is_not_kept_even_when_its_length_matches(simulator, tmp_path) -> None:
    # The header of a faststart MP4 comes first: it alone says 4 s of 1280x720 for half a file.
    client = client_for(simulator)
    submitted = client.submit(wire())
    client.wait(submitted.task_id)
    whole = client.download(submitted.task_id, tmp_path / "whole.mp4", expected_size="1280x720",
                            expected_duration="4").read_bytes()
    half = (200, {"Content-Type": "video/mp4"}, whole[: len(whole) // 2])
    with TinyServer({("GET", "/v1/videos/task_half/content"): half}) as tiny:
        with pytest.raises(MediaError, match="not a playable video.*truncated"):
            VideosClient(tiny.base_url, KEY).download("task_half", video_path_for(tmp_path, "task_half"),
                                                      expected_size="1280x720", expected_duration="4")
    assert list((tmp_path / "runs").iterdir()) == []


def test_poll_deadlines_scale_with_resolution_and_keep_a_floor() -> None:
    assert PollPolicy().deadline_for("720p") < PollPolicy().deadline_for("4k")
    assert PollPolicy(time_scale=0.001).deadline_for("4k") == 20.0


def test_a_huge_retry_after_is_honoured_only_up_to_the_cap() -> None:
    assert RetryPolicy().get_retry().retry_after_max <= 60
    assert RetryPolicy().post_retry().retry_after_max <= 60
    busy = (429, {"Content-Type": "application/json", "Retry-After": "3600"}, b'{"code":"","message":"busy","data":null}')
    with TinyServer({("GET", "/v1/videos/task_abc"): busy, ("POST", "/v1/videos"): busy}) as tiny:
        client = VideosClient(tiny.base_url, KEY, retry=RetryPolicy(get_retries=1, post_429_retries=1, retry_after_max_s=0.2))
        started = time.monotonic()
        with pytest.raises(RateLimited):
            client.get("task_abc")
        with pytest.raises(RateLimited):
            client.submit(wire())
        assert time.monotonic() - started < 5
    assert len(tiny.seen) == 4  # each retried once, after a short sleep, not an hour


def test_an_unparseable_retry_after_falls_back_to_backoff_and_stays_a_429() -> None:
    busy = (429, {"Content-Type": "application/json", "Retry-After": "soon"}, b'{"code":"","message":"busy","data":null}')
    with TinyServer({("GET", "/v1/videos/task_abc"): busy, ("POST", "/v1/videos"): busy}) as tiny:
        client = VideosClient(tiny.base_url, KEY, retry=RetryPolicy(get_retries=1, post_429_retries=1, backoff_factor=0.0))
        with pytest.raises(RateLimited) as polled:
            client.get("task_abc")
        with pytest.raises(RateLimited) as submitted:
            client.submit(wire())
    # Not "network error" / "the server may have created the task": it answered 429, nothing was created.
    assert "busy" in str(polled.value) and "may have created" not in str(submitted.value)
    assert len(tiny.seen) == 4
