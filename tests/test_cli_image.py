"""`generate`/`sweep --image` and `resolve` with input_reference, as a user runs them: real processes and simulators."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from image_helpers import picture, ssim_of_frame

from lab import frames, image_input
from lab.store import Store

REPO = Path(__file__).resolve().parent.parent
TIME_SCALE = "0.02"
SUBMIT = "POST /v1/videos"
PROMPT = ["--prompt", "the camera pushes in on the lighthouse"]


def lab(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lab", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ))


def summary(proc: subprocess.CompletedProcess) -> dict:
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_generate_with_an_image_saves_a_video_whose_first_frame_is_the_image(make_simulator, isolated_env, tmp_path):
    sim = make_simulator()
    image = picture(tmp_path / "in" / "storyboard.png", size=(1000, 800))
    proc = lab("generate", *PROMPT, "--image", str(image), "--seconds", "4", "--seed", "5",
               "--base-url", sim.base_url, "--sim-time-scale", TIME_SCALE)
    assert proc.returncode == 0, proc.stderr
    (task,) = summary(proc)["tasks"]
    sha = hashlib.sha256(image.read_bytes()).hexdigest()
    kept = isolated_env / "images" / f"{sha}.png"
    assert task["image"] == {"path": str(kept.resolve()), "sha256": sha}
    assert kept.read_bytes() == image.read_bytes()
    assert "Crop & scale it to 1280x720" in proc.stderr  # 5:4 into 16:9 is warned, not refused
    video = Path(task["video"])
    info = frames.probe(video)
    assert (info.width, info.height, round(info.duration)) == (1280, 720, 4)
    fitted = tmp_path / "fitted.png"
    image_input.fit(str(image), "1280x720").save(fitted)
    assert ssim_of_frame(video, fitted, 0) > 0.95
    with Store(isolated_env / "journal.sqlite3") as store:
        record = store.get(task["task_id"])
    assert (record.image_path, record.image_sha256) == (str(kept.resolve()), sha)
    assert record.request["input_reference"] == str(kept.resolve())  # a re-run from history uses the copy
    assert record.wire["input_reference"]["sha256"] == sha and record.wire["seconds"] == "4"


def test_duration_with_an_image_is_reported_ignored_and_the_video_is_4_seconds(make_simulator, tmp_path):
    sim = make_simulator()
    image = picture(tmp_path / "still.jpg", size=(1280, 720), fmt="JPEG")
    proc = lab("generate", *PROMPT, "--image", str(image), "--duration", "8", "--seed", "2",
               "--base-url", sim.base_url, "--sim-time-scale", TIME_SCALE)
    assert proc.returncode == 0, proc.stderr
    assert 'warning: duration="8" is ignored in an image request' in proc.stderr
    assert round(frames.probe(Path(summary(proc)["tasks"][0]["video"])).duration) == 4


def test_image_requests_refused_before_any_http_call(make_simulator, tmp_path):
    sim = make_simulator()
    image = picture(tmp_path / "still.png")
    gif = tmp_path / "anim.png"
    from PIL import Image

    Image.new("RGB", (8, 8)).save(gif, format="GIF")
    cases = [
        (["--image", str(image), "--resolution", "1080p", "--duration", "8"], 'needs seconds "8"'),
        (["--image", str(image), "--image", str(image)], "--image takes one reference image"),
        (["--image", "https://example.com/a.png"], "Remote URLs are not accepted"),
        (["--image", str(gif)], "JPEG, PNG or WebP"),
        (["--image", str(tmp_path / "missing.png")], "No such file"),
    ]
    for flags, message in cases:
        proc = lab("generate", *PROMPT, *flags, "--base-url", sim.base_url)
        assert proc.returncode == 2, (flags, proc.stderr)
        assert message in proc.stderr, (flags, proc.stderr)
        assert summary(proc)["ok"] is False
    assert sim.ledger()["requests"].get(SUBMIT, 0) == 0


def test_sweep_with_an_image_runs_every_seed_from_the_same_kept_image(make_simulator, isolated_env, tmp_path):
    sim = make_simulator()
    image = picture(tmp_path / "still.png", size=(1280, 720))
    proc = lab("sweep", *PROMPT, "--image", str(image), "--seconds", "4", "--seeds", "1,2",
               "--base-url", sim.base_url, "--sim-time-scale", TIME_SCALE)
    assert proc.returncode == 0, proc.stderr
    result = summary(proc)
    assert [t["status"] for t in result["tasks"]] == ["saved", "saved"]
    assert len({t["image"]["sha256"] for t in result["tasks"]}) == 1
    assert Path(result["contact_sheet"]).is_file()
    assert len(list((isolated_env / "images").iterdir())) == 1


def test_resolve_shows_the_multipart_request(tmp_path):
    image = picture(tmp_path / "still.png", size=(720, 1280))
    body = {"model": "veo-3.1-fast-generate-preview", "prompt": "x", "input_reference": str(image), "duration": "6"}
    proc = lab("resolve", json.dumps(body))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["transport"] == "multipart" and out["image"]["mime"] == "image/png"
    assert out["effective"]["duration"] == "4" and out["wire"]["seconds"] == "4"
    assert any("ignored in an image request" in w for w in out["warnings"])


def test_the_image_upload_path_never_writes_the_key_anywhere(make_simulator, isolated_env, tmp_path):
    key = "sk-image-canary-5d1e9b7c3a"
    sim = make_simulator(keys=(key,))
    image = picture(tmp_path / "still.png", size=(1280, 720))
    proc = lab("generate", *PROMPT, "--image", str(image), "--seconds", "4", "--seed", "1", "--api-key", key,
               "--base-url", sim.base_url, "--sim-time-scale", TIME_SCALE)
    assert proc.returncode == 0, proc.stderr
    assert key not in proc.stdout and key not in proc.stderr
    assert key[3:] not in proc.stdout + proc.stderr
    for path in isolated_env.rglob("*"):
        if path.is_file():
            assert key.encode() not in path.read_bytes(), path
