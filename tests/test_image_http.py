"""Image-to-video over real multipart HTTP: the simulator's rules, and the client's streamed upload."""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from image_helpers import picture, ssim_of_frame
from PIL import Image

from lab import frames, image_input, params
from lab.client import RetryPolicy, VideosClient, video_path_for
from lab.errors import RequestInvalid
from lab.multipart import CHUNK_BYTES, MultipartBody

KEY = "sk-image-http-test-4242"
AUTH = {"Authorization": f"Bearer {KEY}"}
TIME_SCALE = 0.02


def form_post(sim, fields: dict, files=None, headers=None) -> requests.Response:
    return requests.post(f"{sim.base_url}/videos", data=fields, files=files, headers=headers or AUTH, timeout=30)


def wait_completed(sim, task_id: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = requests.get(f"{sim.base_url}/videos/{task_id}", headers=AUTH, timeout=10).json()["status"]
        if status in ("completed", "failed"):
            assert status == "completed"
            return
        time.sleep(0.05)
    raise AssertionError("task did not finish")


def fetch(sim, task_id: str, dest: Path) -> Path:
    wait_completed(sim, task_id)
    client = VideosClient.scaled(sim.base_url, KEY, time_scale=TIME_SCALE)
    return client.download(task_id, dest, verify=False)


FIELDS = {"model": params.FAST_MODEL, "prompt": "the camera pushes in on the product"}


# --- the simulator speaks the multipart contract -----------------------------------------


def test_an_upload_renders_a_clip_that_starts_on_the_image(simulator, tmp_path):
    image = picture(tmp_path / "shot.png")
    with open(image, "rb") as handle:
        answer = form_post(simulator, {**FIELDS, "seconds": "4"}, {"input_reference": ("shot.png", handle, "image/png")})
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "queued"
    video = fetch(simulator, answer.json()["task_id"], tmp_path / "out.mp4")
    info = frames.probe(video)
    assert (info.width, info.height, round(info.duration)) == (1280, 720, 4)
    fitted = tmp_path / "fitted.png"
    image_input.fit(str(image), "1280x720").save(fitted)
    assert ssim_of_frame(video, fitted, 0) > 0.95


def test_duration_alone_is_ignored_and_the_clip_is_4_seconds(simulator, tmp_path):
    image = picture(tmp_path / "shot.jpg", fmt="JPEG")
    with open(image, "rb") as handle:
        answer = form_post(simulator, {**FIELDS, "duration": "8"}, {"input_reference": ("shot.jpg", handle, "image/jpeg")})
    assert answer.status_code == 200, answer.text
    video = fetch(simulator, answer.json()["task_id"], tmp_path / "out.mp4")
    assert round(frames.probe(video).duration) == 4


def test_1080p_needs_seconds_8_in_google_s_envelope(simulator, tmp_path):
    image = picture(tmp_path / "shot.png")
    with open(image, "rb") as handle:
        refused = form_post(simulator, {**FIELDS, "duration": "8", "resolution": "1080p"},
                            {"input_reference": ("a.png", handle, "image/png")})
    assert refused.status_code == 400
    assert refused.json()["code"] == "fail_to_fetch_task" and "INVALID_ARGUMENT" in refused.json()["message"]
    with open(image, "rb") as handle:
        accepted = form_post(simulator, {**FIELDS, "seconds": "8", "resolution": "1080p", "seed": "3"},
                             {"input_reference": ("a.png", handle, "image/png")},
                             headers={**AUTH, "X-Sim-Fault": "stuck"})  # accepted is enough: no render
    assert accepted.status_code == 200, accepted.text


def test_seconds_outside_4_6_8_is_invalid_request(simulator, tmp_path):
    image = picture(tmp_path / "shot.png")
    with open(image, "rb") as handle:
        answer = form_post(simulator, {**FIELDS, "seconds": "5"}, {"input_reference": ("a.png", handle, "image/png")})
    assert answer.status_code == 400
    assert answer.json() == {"code": "invalid_request", "message": "Veo duration must be 4, 6, or 8 seconds", "data": None}


def test_a_gif_is_refused_by_its_content_whatever_it_is_called(simulator, tmp_path):
    gif = tmp_path / "frame.png"
    Image.new("RGB", (64, 64)).save(gif, format="GIF")
    with open(gif, "rb") as handle:
        answer = form_post(simulator, FIELDS, {"input_reference": ("frame.png", handle, "image/png")})
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid_request" and "JPEG, PNG or WebP" in answer.json()["message"]


def test_a_url_in_input_reference_is_refused(simulator):
    answer = form_post(simulator, FIELDS, {"input_reference": (None, "https://example.com/a.png")})
    assert answer.status_code == 400 and "remote URLs" in answer.json()["message"]


def test_base64_text_is_accepted_as_a_data_uri_or_bare(simulator, tmp_path):
    image = picture(tmp_path / "shot.webp", fmt="WEBP")
    encoded = base64.b64encode(image.read_bytes()).decode()
    for value in (f"data:image/webp;base64,{encoded}", encoded):
        answer = form_post(simulator, FIELDS, {"input_reference": (None, value)}, headers={**AUTH, "X-Sim-Fault": "stuck"})
        assert answer.status_code == 200, answer.text


def test_only_the_first_of_several_images_is_kept(simulator, tmp_path):
    first = picture(tmp_path / "first.png", ground=(200, 200, 30))
    second = picture(tmp_path / "second.png", ground=(10, 10, 10))
    with open(first, "rb") as one, open(second, "rb") as two:
        answer = form_post(simulator, {**FIELDS, "seconds": "4"},
                           [("input_reference", ("1.png", one, "image/png")), ("input_reference", ("2.png", two, "image/png"))])
    assert answer.status_code == 200, answer.text
    video = fetch(simulator, answer.json()["task_id"], tmp_path / "out.mp4")
    fitted = tmp_path / "fitted.png"
    image_input.fit(str(first), "1280x720").save(fitted)
    assert ssim_of_frame(video, fitted, 0) > 0.95


def test_an_image_over_20_mb_is_413_and_nothing_is_created(make_simulator, tmp_path):
    sim = make_simulator()
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(params.IMAGE_MAX_BYTES))
    with open(big, "rb") as handle:
        answer = form_post(sim, FIELDS, {"input_reference": ("big.png", handle, "image/png")})
    assert answer.status_code == 413 and "20 MB" in answer.json()["message"]
    assert sim.ledger()["submits"] == 0


def test_a_malformed_multipart_body_is_400_not_500(simulator):
    answer = requests.post(f"{simulator.base_url}/videos", data=b"--x\r\nnonsense", timeout=10,
                           headers={**AUTH, "Content-Type": "multipart/form-data; boundary=x"})
    assert answer.status_code == 400
    assert answer.json()["code"] == "parse_request_failed"


def test_the_openai_sdk_form_without_an_image_is_a_text_request_read_by_seconds(simulator, tmp_path):
    # openai's videos.create always sends multipart: model, prompt, seconds, size (and no image here).
    sdk_form = {name: (None, value) for name, value in {**FIELDS, "seconds": "6", "size": "720x1280"}.items()}
    answer = form_post(simulator, {}, sdk_form)
    assert answer.status_code == 200, answer.text
    video = fetch(simulator, answer.json()["task_id"], tmp_path / "out.mp4")
    info = frames.probe(video)
    assert (info.width, info.height, round(info.duration)) == (720, 1280, 6)


# --- the client's upload -----------------------------------------------------------------


def test_the_client_sends_an_image_request_as_multipart_and_gets_the_video(simulator, tmp_path):
    image = image_input.keep(str(picture(tmp_path / "in" / "shot.png", size=(1280, 720))), tmp_path / "data")
    resolution = image_input.resolve({**FIELDS, "input_reference": image.path, "seconds": "4", "metadata": {"seed": 5}})
    assert resolution.ok and resolution.transport == "multipart"
    client = VideosClient.scaled(simulator.base_url, KEY, time_scale=TIME_SCALE)
    submitted = client.submit(resolution.wire)
    assert client.wait(submitted.task_id).status == "completed"
    video = client.download(submitted.task_id, video_path_for(tmp_path, submitted.task_id),
                            expected_size="1280x720", expected_duration="4")
    assert ssim_of_frame(video, Path(image.path), 0) > 0.95


def test_a_missing_image_file_is_refused_before_anything_is_sent(make_simulator, tmp_path):
    sim = make_simulator()
    kept = image_input.keep(str(picture(tmp_path / "shot.png")), tmp_path / "data")
    wire = image_input.resolve({**FIELDS, "input_reference": kept.path}).wire
    Path(kept.path).unlink()
    client = VideosClient.scaled(sim.base_url, KEY, time_scale=TIME_SCALE)
    with pytest.raises(RequestInvalid, match="nothing was sent"):
        client.submit(wire)
    assert sim.ledger()["requests"].get("POST /v1/videos", 0) == 0


def test_the_multipart_body_streams_the_file_and_rewinds(tmp_path):
    path = tmp_path / "blob.bin"
    payload = bytes(range(256)) * (CHUNK_BYTES // 64)  # 4 chunks' worth
    path.write_bytes(payload)
    body = MultipartBody([("model", "m"), ("prompt", "héllo")], "input_reference", path, "blob.png", "image/png",
                         boundary="B")
    expected = (b'--B\r\nContent-Disposition: form-data; name="model"\r\n\r\nm\r\n'
                b'--B\r\nContent-Disposition: form-data; name="prompt"\r\n\r\nh\xc3\xa9llo\r\n'
                b'--B\r\nContent-Disposition: form-data; name="input_reference"; filename="blob.png"\r\n'
                b"Content-Type: image/png\r\n\r\n" + payload + b"\r\n--B--\r\n")
    assert len(body) == len(expected)
    pieces = list(body)
    assert max(len(p) for p in pieces) <= CHUNK_BYTES  # never more than one chunk of the file in memory
    assert b"".join(pieces) == expected
    body.seek(0)
    assert body.tell() == 0 and body.read() == expected
    body.close()


class _RateLimitedOnce(BaseHTTPRequestHandler):
    """Answers the first POST 429 (a limiter: nothing created), the next 200; records every body."""

    bodies: list[bytes] = []

    def do_POST(self):  # noqa: N802 (http.server's naming)
        length = int(self.headers["Content-Length"])
        self.bodies.append(self.rfile.read(length))
        if len(self.bodies) == 1:
            self.send_response(429)
            self.send_header("Retry-After", "0")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        answer = json.dumps({"id": "task_abc", "task_id": "task_abc", "status": "queued", "progress": 0}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


def test_a_429_re_sends_the_whole_upload_and_the_key_never_reaches_a_log(tmp_path, caplog):
    _RateLimitedOnce.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RateLimitedOnce)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        kept = image_input.keep(str(picture(tmp_path / "shot.png")), tmp_path / "data")
        wire = image_input.resolve({**FIELDS, "input_reference": kept.path, "seconds": "8"}).wire
        client = VideosClient(f"http://127.0.0.1:{server.server_port}/v1", KEY,
                              retry=RetryPolicy(backoff_factor=0.0, backoff_jitter_s=0.0))
        with caplog.at_level(logging.DEBUG):
            assert client.submit(wire).task_id == "task_abc"
    finally:
        server.shutdown()
        server.server_close()
    first, second = _RateLimitedOnce.bodies
    assert first == second and Path(kept.path).read_bytes() in second
    assert KEY not in caplog.text and KEY.encode() not in first


HOSTILE_FORMS = [
    ("multipart/form-data", b"--x\r\n"),  # no boundary parameter
    ("multipart/form-data; boundary=x", b""),
    ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nveo"),
    ("multipart/form-data; boundary=x",
     b"".join(b'--x\r\nContent-Disposition: form-data; name="f%d"\r\n\r\nv\r\n' % i for i in range(100)) + b"--x--\r\n"),
    ("multipart/form-data; boundary=x",
     b'--x\r\nContent-Disposition: form-data; name="prompt"\r\n\r\n\xff\xfe\x00bad\r\n'
     b'--x\r\nContent-Disposition: form-data; name="model"\r\n\r\nveo-3.1-fast-generate-preview\r\n--x--\r\n'),
    ("multipart/form-data; boundary=x",
     b'--x\r\nContent-Disposition: form-data; name="metadata"\r\n\r\n[1,2]\r\n--x--\r\n'),
    ("multipart/form-data; boundary=x",
     b'--x\r\nContent-Disposition: form-data; name="model"; filename="m.txt"\r\n\r\nveo\r\n'
     b'--x\r\nContent-Disposition: form-data; name="input_reference"\r\n\r\n\r\n--x--\r\n'),
]


@pytest.mark.parametrize("content_type, raw", HOSTILE_FORMS)
def test_hostile_multipart_bodies_get_a_4xx_envelope_never_a_5xx(simulator, content_type, raw):
    answer = requests.post(f"{simulator.base_url}/videos", data=raw, timeout=10,
                           headers={**AUTH, "Content-Type": content_type, "X-Sim-Fault": "stuck"})
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text[:200])
    payload = answer.json()
    assert "message" in payload or "error" in payload
