"""`python -m lab generate | sweep | resume` as a user runs them: real processes, real simulators."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab import params
from lab.store import Store

REPO = Path(__file__).resolve().parent.parent
TIME_SCALE = "0.02"
SUBMIT = "POST /v1/videos"
BASIC = ["--prompt", "a paper boat on a puddle", "--duration", "4", "--seed", "9"]


def lab(*args: str, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lab", *args],
        cwd=REPO, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})},
    )


def summary(proc: subprocess.CompletedProcess) -> dict:
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_generate_without_key_or_url_uses_the_embedded_simulator(isolated_env: Path) -> None:
    proc = lab("generate", *BASIC, "--sim-time-scale", TIME_SCALE)
    assert proc.returncode == 0, proc.stderr
    result = summary(proc)
    (task,) = result["tasks"]
    assert result["ok"] and task["status"] == "saved" and result["cost_usd"] == 0.3
    assert Path(task["video"]).is_file() and Path(task["video"]).is_relative_to(isolated_env)
    assert len(task["thumbnails"]) == 5 and task["preview"] is None  # no animated preview unless asked
    assert "embedded simulator" in proc.stderr


def test_generate_with_preview_also_writes_an_animated_webp(make_simulator, isolated_env: Path) -> None:
    sim = make_simulator()
    proc = lab("generate", *BASIC, "--preview", "--thumbs", "1", "--base-url", sim.base_url, "--sim-time-scale", TIME_SCALE)
    assert proc.returncode == 0, proc.stderr
    (task,) = summary(proc)["tasks"]
    assert Path(task["preview"]) == isolated_env / "previews" / f"{task['task_id']}.webp"
    assert Path(task["preview"]).read_bytes()[8:12] == b"WEBP"


def test_generate_prints_one_progress_line_per_event_on_stderr(make_simulator) -> None:
    sim = make_simulator()
    proc = lab("generate", *BASIC, "--base-url", sim.base_url, "--sim-time-scale", TIME_SCALE)
    kinds = [line.split()[2] for line in proc.stderr.splitlines() if line.startswith("[0]")]
    assert kinds[0] == "submitted" and kinds[-1] == "done" and "saved" in kinds


def test_a_progress_line_says_its_event_and_task_once(make_simulator) -> None:
    sim = make_simulator()
    proc = lab("generate", *BASIC, "--base-url", sim.base_url, "--sim-time-scale", TIME_SCALE)
    lines = [line.split()[2:] for line in proc.stderr.splitlines() if line.startswith("[0]")]
    assert lines and all(words.count(words[0]) == 1 and words.count(words[1]) == 1 for words in lines), proc.stderr


def test_an_invalid_request_exits_2_with_the_messages_and_sends_nothing(make_simulator) -> None:
    sim = make_simulator()
    proc = lab("generate", "--prompt", "x", "--resolution", "4k", "--duration", "4", "--base-url", sim.base_url)
    assert proc.returncode == 2
    assert "4k needs a duration of" in proc.stderr
    assert summary(proc)["ok"] is False and summary(proc)["errors"]
    assert sim.ledger()["requests"].get(SUBMIT, 0) == 0


def test_a_body_json_is_accepted_and_flags_override_it(make_simulator, isolated_env: Path) -> None:
    sim = make_simulator()
    raw = {"model": params.FAST_MODEL, "prompt": "from the body", "duration": "8", "metadata": {"seed": 1, "aspectRatio": "9:16"}}
    proc = lab("generate", "--body", json.dumps(raw), "--duration", "4", "--base-url", sim.base_url, "--sim-time-scale", TIME_SCALE)
    assert proc.returncode == 0, proc.stderr
    with Store(isolated_env / "journal.sqlite3") as store:
        record = store.get(summary(proc)["tasks"][0]["task_id"])
    assert (record.prompt, record.duration, record.size, record.seed) == ("from the body", "4", "720x1280", 1)


def test_the_api_key_is_never_printed_or_journalled(make_simulator, isolated_env: Path) -> None:
    key = "sk-cli-secret-777777"
    sim = make_simulator(keys=(key,))
    proc = lab("generate", *BASIC, "--base-url", sim.base_url, "--api-key", key, "--sim-time-scale", TIME_SCALE)
    assert proc.returncode == 0, proc.stderr
    assert "cli-secret" not in proc.stdout + proc.stderr
    for path in isolated_env.glob("journal.sqlite3*"):
        assert b"cli-secret" not in path.read_bytes()


def test_a_refused_key_exits_1_with_the_servers_message(make_simulator) -> None:
    sim = make_simulator(keys=("sk-right",))
    proc = lab("generate", *BASIC, "--base-url", sim.base_url, "--api-key", "sk-wrong-one")
    assert proc.returncode == 1
    assert "Invalid token" in summary(proc)["error"] and "wrong-one" not in proc.stdout + proc.stderr


def test_sweep_runs_every_seed_and_writes_a_contact_sheet(make_simulator, tmp_path: Path) -> None:
    sim = make_simulator()
    out = tmp_path / "out"
    proc = lab("sweep", *BASIC[:4], "--seeds", "1,2,3", "--concurrency", "3", "--base-url", sim.base_url,
               "--sim-time-scale", TIME_SCALE, "--thumbs", "3", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    result = summary(proc)
    assert [t["status"] for t in result["tasks"]] == ["saved"] * 3
    assert [t["label"] for t in result["tasks"]] == ["seed 1", "seed 2", "seed 3"]
    assert Path(result["contact_sheet"]).is_file() and result["cost_usd"] == pytest.approx(0.9)
    assert len(list(out.glob("*.mp4"))) == 3 and len(list(out.glob("*.png"))) == 1


def test_sweep_with_prompt_variants_runs_variants_times_seeds(make_simulator, tmp_path: Path) -> None:
    sim = make_simulator()
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a fox\n\na hare\n", encoding="utf-8")
    proc = lab("sweep", "--duration", "4", "--seeds", "1,2", "--prompts-file", str(prompts), "--base-url", sim.base_url,
               "--sim-time-scale", TIME_SCALE, "--thumbs", "1")
    assert proc.returncode == 0, proc.stderr
    assert len(summary(proc)["tasks"]) == 4


def test_sweep_without_seeds_exits_2(make_simulator) -> None:
    sim = make_simulator()
    proc = lab("sweep", *BASIC[:4], "--base-url", sim.base_url)
    assert proc.returncode == 2 and "--seeds" in summary(proc)["error"]


def test_resume_with_nothing_unfinished_succeeds_with_no_tasks(make_simulator) -> None:
    sim = make_simulator()
    proc = lab("resume", "--base-url", sim.base_url)
    assert proc.returncode == 0 and summary(proc)["tasks"] == []


def test_a_generate_killed_after_submit_is_finished_by_resume(make_simulator, isolated_env: Path) -> None:
    sim = make_simulator(fixed_generation_s=300.0)  # 6 s at the test time scale: time to kill the process
    child = subprocess.Popen(
        [sys.executable, "-m", "lab", "generate", *BASIC, "--base-url", sim.base_url, "--sim-time-scale", TIME_SCALE],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    journal = isolated_env / "journal.sqlite3"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if journal.exists():
                with Store(journal) as store:
                    if store.unfinished():
                        break
            time.sleep(0.05)
        else:
            pytest.fail("the generate process never journalled its task")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    with Store(journal) as store:
        (pending,) = store.unfinished()
    proc = lab("resume", "--base-url", sim.base_url, "--sim-time-scale", TIME_SCALE)
    assert proc.returncode == 0, proc.stderr
    (task,) = summary(proc)["tasks"]
    assert (task["task_id"], task["status"]) == (pending.task_id, "saved")
    assert Path(task["video"]).is_file()
    with Store(journal) as store:
        assert store.unfinished() == []
    assert [c["task_id"] for c in sim.ledger()["charges"]] == [pending.task_id]


@pytest.mark.parametrize("args", [
    ["generate", "--prompt", "x", "--seed", "abc"],
    ["sweep", "--prompt", "x", "--concurrency", "many"],
    ["resume", "--no-such-flag"],
])
def test_a_usage_error_exits_2_with_a_json_summary_last(args: list[str]) -> None:
    proc = lab(*args)
    assert proc.returncode == 2
    result = summary(proc)
    assert result["ok"] is False and result["tasks"] == [] and result["error"]
    assert "usage:" in proc.stderr


@pytest.mark.parametrize(("flags", "expected"), [
    (["--seeds", "1,two,3"], "'two' is not one"),
    (["--count", "-3"], "--count must be at least 1"),
    (["--count", "100000000"], "100,000,000 tasks: more than this lab allows"),
    (["--seeds", ",".join(str(n) for n in range(20_000))], "more than 8 tasks: more than this lab allows"),
    (["--seeds", "1,-2"], "'-2' is not one"),
    (["--seeds", "1,2,1"] + ["--count", "7"], "9 tasks: more than this lab allows"),
])
def test_bad_seeds_or_count_exit_2_with_a_readable_message(make_simulator, flags: list[str], expected: str) -> None:
    sim = make_simulator()
    proc = lab("sweep", "--prompt", "x", "--duration", "4", *flags, "--base-url", sim.base_url)
    assert proc.returncode == 2
    assert expected in summary(proc)["error"]
    assert "invalid literal" not in proc.stderr
    assert sim.ledger()["requests"].get(SUBMIT, 0) == 0


def test_an_out_path_that_cannot_be_written_still_ends_with_the_summary(make_simulator, tmp_path: Path) -> None:
    sim = make_simulator()
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    proc = lab("generate", *BASIC, "--base-url", sim.base_url, "--sim-time-scale", TIME_SCALE,
               "--out", str(blocker / "clip.mp4"))
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    result = summary(proc)
    assert result["ok"] is False and "could not copy to --out" in result["out_error"]
    (task,) = result["tasks"]
    assert task["status"] == "saved" and Path(task["video"]).is_file()  # the paid video is kept
