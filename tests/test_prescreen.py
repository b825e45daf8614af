"""The pre-screen (lab.prescreen) on real MP4s the simulator renders with planted faults, and its CLI.

Clips are 3 s at 320x180 (the renderer takes any size; the API's sizes are not
needed to test the detectors), so each costs a fraction of a second.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab import params
from lab.frames import probe
from lab.prescreen.background import Screener
from lab.prescreen.findings import Screen, Thresholds
from lab.prescreen.run import screen_file
from lab.simulator.planted import Planted, parse_markers
from lab.simulator.render import Renderer, RenderSpec
from lab.store import Store

REPO = Path(__file__).resolve().parent.parent
# Every planted fault is found within this of its time (the bench holds the same bound on more clips).
WITHIN_S = 0.25


@pytest.fixture(scope="module")
def clip(render_cache: Path):
    renderer = Renderer(render_cache, workers=1)

    def render(prompt: str, seed: int = 11, duration: int = 3) -> Path:
        return renderer.render(RenderSpec(prompt=prompt, seed=seed, model=params.FAST_MODEL, resolution="720p",
                                          aspect_ratio="16:9", duration=duration, width=320, height=180))

    yield render
    renderer.close()


def near(value: float, expected: float) -> bool:
    return abs(value - expected) <= WITHIN_S


def test_a_clean_clip_gets_no_badge(clip) -> None:
    screen = screen_file(clip("a heron in the reeds"))
    assert screen.ok and screen.badges() == [] and screen.summary() == "no issues found"


def test_a_frozen_stretch_is_found_at_its_time(clip) -> None:
    screen = screen_file(clip("a heron [sim:freeze@1-2.2]"))
    [frozen] = screen.frozen
    assert near(frozen.start, 1.0) and near(frozen.end, 2.2)
    assert [b.kind for b in screen.badges()] == ["frozen"]


def test_image_to_video_clips_carry_the_prompts_faults_too(tmp_path: Path) -> None:
    from image_helpers import picture

    from lab.simulator.render_image import ImageRenderer, ImageRenderSpec

    image = picture(tmp_path / "start.png", size=(640, 360))
    renderer = ImageRenderer(tmp_path / "cache", workers=1)
    try:
        def render(prompt: str) -> Path:
            return renderer.render(ImageRenderSpec(prompt=prompt, seed=11, model=params.FAST_MODEL, resolution="720p",
                                                   aspect_ratio="16:9", duration=3, width=320, height=180,
                                                   image_path=str(image), image_sha256="ab" * 32))

        assert screen_file(render("the camera pushes in")).badges() == []
        screen = screen_file(render("the camera pushes in [sim:freeze@1-2.2] [sim:noaudio]"))
    finally:
        renderer.close()
    [frozen] = screen.frozen
    assert near(frozen.start, 1.0) and near(frozen.end, 2.2)
    assert [b.kind for b in screen.badges()] == ["frozen", "no_audio"]


def test_a_black_start_is_one_black_badge_not_also_a_freeze_and_a_cut(clip) -> None:
    screen = screen_file(clip("a heron [sim:black@0-0.5]"))
    [black] = screen.black
    assert near(black.start, 0.0) and near(black.end, 0.5)
    assert [b.text for b in screen.badges()] == ["black 0.0–0.5 s"]


def test_a_silent_stretch_is_found_at_its_time(clip) -> None:
    screen = screen_file(clip("a heron [sim:silence@1-2]"))
    [silent] = screen.silent
    assert near(silent.start, 1.0) and near(silent.end, 2.0)
    assert [b.text for b in screen.badges()] == ["silent 1.0–2.0 s"]


def test_a_muted_track_is_silent(clip) -> None:
    assert [b.text for b in screen_file(clip("a heron [sim:silent]")).badges()] == ["silent"]


def test_a_take_without_an_audio_stream_says_no_audio(clip) -> None:
    screen = screen_file(clip("a heron [sim:noaudio]"))
    assert screen.has_audio is False and [b.text for b in screen.badges()] == ["no audio"]


def test_hard_cuts_are_counted_at_their_times(clip) -> None:
    screen = screen_file(clip("a heron [sim:cut@1] [sim:cut@2]"))
    assert len(screen.cuts) == 2 and near(screen.cuts[0], 1.0) and near(screen.cuts[1], 2.0)
    [badge] = screen.badges()
    assert badge.text == "2 cuts" and near(badge.at, 1.0)


def test_flicker_is_high_in_the_second_it_happens(clip) -> None:
    screen = screen_file(clip("a heron [sim:flicker@1-2]"))
    assert screen.flicker_high[0] == 1
    [badge] = screen.badges()
    assert badge.text == "flicker high at 1 s" and badge.at == 1.0


def test_thresholds_decide_what_becomes_a_badge(clip) -> None:
    lenient = Thresholds(flicker_mad=100.0)
    assert screen_file(clip("a heron [sim:flicker@1-2]"), lenient).badges() == []


def test_the_same_run_writes_the_grids_proxy(clip, tmp_path: Path) -> None:
    proxy = tmp_path / "proxies" / "task_x.mp4"
    screen = screen_file(clip("a heron [sim:freeze@1-2.2]"), proxy=proxy)
    info = probe(proxy)
    assert screen.frozen and info.has_audio and abs(info.duration - 3.0) < 0.1
    assert [p.name for p in proxy.parent.iterdir()] == ["task_x.mp4"]  # no scratch file left


@pytest.mark.parametrize("content", [b"", b"not a video at all\n" * 50], ids=["zero_length", "not_a_video"])
def test_a_bad_file_records_why_and_never_raises(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "take.mp4"
    bad.write_bytes(content)
    proxy = tmp_path / "proxies" / "take.mp4"
    screen = screen_file(bad, proxy=proxy)
    assert not screen.ok and screen.error and not proxy.exists()
    assert [b.text for b in screen.badges()] == ["not screened"]


def test_a_file_with_no_video_stream_says_so(tmp_path: Path) -> None:
    from lab.frames import run_ffmpeg

    sound = tmp_path / "sound.mp4"
    run_ffmpeg(["-f", "lavfi", "-i", "sine=d=1", "-c:a", "aac", str(sound)], path=sound, timeout=60)
    assert screen_file(sound).error == "no video stream in sound.mp4"


def test_a_screen_survives_the_journal_round_trip(clip) -> None:
    screen = screen_file(clip("a heron [sim:cut@1.5] [sim:noaudio]"))
    again = Screen.from_json(json.loads(screen.to_text()))
    assert again.badges() == screen.badges()


def test_a_malformed_marker_plants_nothing() -> None:
    assert parse_markers("[sim:freeze@x] [sim:black@2-1] [sim:nope@1] [sim:cut@9]", 4) == ()
    assert parse_markers("[SIM:Freeze@1-9]", 4) == (Planted("freeze", 1.0, 4.0),)


def test_thresholds_are_settings_from_the_environment() -> None:
    from lab.settings import load_settings

    settings = load_settings({"LAB_SCREEN_FREEZE_MIN_S": "1.5", "LAB_SCREEN_CUT_SCORE": "20"})
    assert settings.screen.freeze_min_s == 1.5 and settings.screen.cut_score == 20
    assert settings.screen.black_min_s == Thresholds().black_min_s


# ---------------------------------------------------------------- the background screen and the journal


def journal_saved(store: Store, task_id: str, video: Path) -> None:
    body = {"model": params.FAST_MODEL, "prompt": "a heron", "duration": "4"}
    store.record_submitted(task_id, params.resolve(body), body, base_url_kind="simulator")
    store.update(task_id, status="saved", video_path=str(video))


def test_a_saved_take_is_screened_in_the_background_journalled_and_its_proxy_left_for_compare(
        clip, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with Store(data_dir / "journal.sqlite3") as store:
        journal_saved(store, "task_frozen", clip("a heron [sim:freeze@1-2.2]"))
        journal_saved(store, "task_clean", clip("a heron in the reeds"))
        screener = Screener(store, data_dir)
        for task_id in ("task_frozen", "task_clean"):
            screener.submit(task_id, store.get(task_id).video_path)
        screener.drain(timeout=120)
        screens = store.screens(["task_frozen", "task_clean"])
        assert screens["task_frozen"]["issues"] == 1 and screens["task_clean"]["issues"] == 0
        assert [r.task_id for r in store.list_runs(no_issues=True)] == ["task_clean"]
        assert store.saved_without_screen() == []
        assert (data_dir / "proxies" / "task_frozen.mp4").is_file()
        screener.close()


# ---------------------------------------------------------------- python -m lab screen


def lab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lab", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120, env=dict(os.environ))


def test_cli_screen_prints_the_findings_of_a_file_as_json(clip) -> None:
    proc = lab("screen", str(clip("a heron [sim:black@0-0.5]")))
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert proc.returncode == 0 and result["ok"] and [b["text"] for b in result["badges"]] == ["black 0.0–0.5 s"]
    assert "black 0.0–0.5 s" in proc.stderr


def test_cli_screen_of_a_bad_file_exits_2_with_a_json_line(tmp_path: Path) -> None:
    bad = tmp_path / "take.mp4"
    bad.write_text("hello")
    proc = lab("screen", str(bad))
    assert proc.returncode == 2 and json.loads(proc.stdout.strip().splitlines()[-1])["ok"] is False


def test_cli_screen_of_a_task_journals_it(clip, isolated_env: Path) -> None:
    with Store(isolated_env / "journal.sqlite3") as store:
        journal_saved(store, "task_cut", clip("a heron [sim:cut@1.5]"))
    proc = lab("screen", "task_cut")
    assert proc.returncode == 0 and json.loads(proc.stdout.strip().splitlines()[-1])["task_id"] == "task_cut"
    with Store(isolated_env / "journal.sqlite3") as store:
        assert store.screens(["task_cut"])["task_cut"]["badges"][0]["text"] == "1 cut"


def test_cli_screen_of_an_unknown_task_exits_2(isolated_env: Path) -> None:
    Store(isolated_env / "journal.sqlite3").close()
    proc = lab("screen", "task_nobody")
    assert proc.returncode == 2 and "neither a file nor a task" in proc.stdout


def test_cli_history_shows_each_takes_badges_filters_on_them_and_shows_its_lineage(clip, isolated_env: Path) -> None:
    with Store(isolated_env / "journal.sqlite3") as store:
        journal_saved(store, "task_first", clip("a heron [sim:cut@1.5]"))
        body = {"model": params.FAST_MODEL, "prompt": "a heron", "duration": "4", "metadata": {"seed": 9}}
        store.record_submitted("task_second", params.resolve(body), body, parent_task_id="task_first",
                               parent_changes=["seed"])
        store.update("task_second", status="saved", video_path=str(clip("a heron in the reeds")))
        screener = Screener(store, isolated_env)
        for task_id in ("task_first", "task_second"):
            screener.screen_now(task_id, store.get(task_id).video_path)
        screener.close()
    listed = lab("history")
    assert "1 cut" in listed.stdout and "no issues found" in listed.stdout and "pre-screen" in listed.stdout
    only_clean = [json.loads(line) for line in lab("history", "--no-issues", "--json").stdout.splitlines()]
    assert [t["task_id"] for t in only_clean] == ["task_second"] and only_clean[0]["parent_task_id"] == "task_first"
    shown = lab("history", "show", "task_first")
    lineage = json.loads(shown.stdout.strip().splitlines()[-1])["lineage"]
    assert lineage["children"] == [{"task_id": "task_second", "status": "saved", "seed": 9, "changes": ["seed"]}]
    assert "started from it: task_second (changed seed)" in shown.stderr
