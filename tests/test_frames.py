"""lab.frames and `python -m lab thumbs`: frame-exact thumbnails, sheets, previews, bad media."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import imageio_ffmpeg
import pytest
from PIL import Image, ImageDraw

from lab import frames
from lab.errors import MediaError

FPS = 24
LEVEL_BASE, LEVEL_STEP, LEVELS = 16, 7, 32  # 16..233: clear of video-range clipping


def _index_frame(index: int, size: tuple[int, int]) -> bytes:
    """A frame whose left half encodes index % 32 and right half index // 32 as grey levels."""
    width, height = size
    image = Image.new("RGB", size)
    low = LEVEL_BASE + (index % LEVELS) * LEVEL_STEP
    high = LEVEL_BASE + (index // LEVELS) * LEVEL_STEP
    image.paste((low,) * 3, (0, 0, width // 2, height))
    image.paste((high,) * 3, (width // 2, 0, width, height))
    return image.tobytes()


def decode_index(image: Image.Image) -> int:
    """Read back the frame index drawn by _index_frame (tolerates codec error of +/-3 levels)."""
    grey = image.convert("L")
    w, h = grey.size

    def level(box):
        region = grey.crop(box)
        return sum(region.getdata()) / (region.width * region.height)

    low = level((w // 8, h // 4, 3 * w // 8, 3 * h // 4))
    high = level((5 * w // 8, h // 4, 7 * w // 8, 3 * h // 4))
    to_digit = lambda v: round((v - LEVEL_BASE) / LEVEL_STEP)  # noqa: E731
    return to_digit(high) * LEVELS + to_digit(low)


def _write_indexed_clip(path: Path, nframes: int, size: tuple[int, int], gop: int) -> Path:
    writer = imageio_ffmpeg.write_frames(
        str(path), size, fps=FPS, quality=None, macro_block_size=1,
        output_params=["-crf", "8", "-g", str(gop), "-preset", "ultrafast"],
    )
    writer.send(None)
    for index in range(nframes):
        writer.send(_index_frame(index, size))
    writer.close()
    return path


def _ffmpeg(*args: str) -> None:
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-v", "error", *args], check=True, timeout=60)


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="module")
def indexed_clip(media_dir: Path) -> Path:
    """3 s, 24 fps, 72 frames, one keyframe (like a generated clip); frame i shows i."""
    return _write_indexed_clip(media_dir / "indexed.mp4", 72, (160, 96), gop=250)


@pytest.fixture(scope="module")
def long_clip(media_dir: Path) -> Path:
    """30 s, 24 fps, a keyframe every second: the shape where seeking pays off."""
    return _write_indexed_clip(media_dir / "long.mp4", 720, (96, 64), gop=24)


@pytest.fixture(scope="module")
def av_clip(media_dir: Path) -> Path:
    """2 s 320x180 h264 + aac, like a Veo download with audio."""
    path = media_dir / "av.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x180:rate=24:duration=2",
            "-f", "lavfi", "-i", "sine=frequency=440:duration=2",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-shortest", str(path))
    return path


# ------------------------------------------------------------------ probe


def test_probe_reads_size_fps_duration_codec_and_audio(av_clip: Path) -> None:
    info = frames.probe(av_clip)
    assert (info.width, info.height, info.codec, info.has_audio) == (320, 180, "h264", True)
    assert info.fps == pytest.approx(24)
    assert info.duration == pytest.approx(2.0, abs=0.1)
    assert info.nframes == pytest.approx(48, abs=2)


def test_probe_reports_no_audio_for_a_silent_clip(indexed_clip: Path) -> None:
    info = frames.probe(indexed_clip)
    assert info.has_audio is False
    assert (info.width, info.height) == (160, 96)


# ------------------------------------------------------------------ frame exactness


def test_timestamp_selects_frame_ceil_t_times_fps(indexed_clip: Path) -> None:
    times = [0.0, 1.0, 1.0 + 1e-9, 1.01, 25.5 / FPS, 2.5]
    images = frames.extract_at(indexed_clip, timestamps=times)
    assert [decode_index(im) for im in images] == [0, 24, 24, 25, 26, 60]


def test_every_frame_is_reachable_exactly(indexed_clip: Path) -> None:
    times = [i / FPS for i in range(72)]
    images = frames.extract_at(indexed_clip, timestamps=times, width=64)
    assert [decode_index(im) for im in images] == list(range(72))


def test_seek_strategy_is_as_exact_as_the_single_pass(long_clip: Path) -> None:
    times = [0.0, 0.5, 7.3, 12.0, 23.99, 29.9]
    expected = [0, 12, 176, 288, 576, 718]
    for strategy in ("single_pass", "seek"):
        images = frames.extract_at(long_clip, timestamps=times, strategy=strategy)
        assert [decode_index(im) for im in images] == expected, strategy


def _scan_shape(seconds: float, keyframe_every: float, size=(1280, 720)) -> frames._Scan:
    n = int(seconds * FPS)
    info = frames.VideoInfo(size[0], size[1], FPS, seconds, n, True, "h264")
    step = max(1, int(keyframe_every * FPS))
    return frames._Scan(info, tuple(i / FPS for i in range(n)), tuple(range(0, n, step)))


def _default_indices(scan: frames._Scan) -> list[int]:
    n = scan.info.nframes
    return sorted({frames.frame_index(f * n / FPS, FPS, n) for f in frames.DEFAULT_FRACTIONS})


def test_single_pass_starting_past_a_keyframe_counts_frames_from_there(long_clip: Path) -> None:
    images = frames.extract_at(long_clip, timestamps=[7.3, 20.0, 29.9], strategy="single_pass")
    assert [decode_index(im) for im in images] == [176, 480, 718]


def test_auto_seeks_in_long_videos_with_regular_keyframes() -> None:
    scan = _scan_shape(60, keyframe_every=2)
    assert frames._choose_strategy(scan, _default_indices(scan)) == "seek"


def test_auto_decodes_once_when_the_clip_has_a_single_keyframe() -> None:
    scan = _scan_shape(60, keyframe_every=1000)
    assert frames._choose_strategy(scan, _default_indices(scan)) == "single_pass"


def test_auto_decodes_once_for_a_short_generated_clip() -> None:
    scan = _scan_shape(8, keyframe_every=2, size=(3840, 2160))
    assert frames._choose_strategy(scan, _default_indices(scan)) == "single_pass"


# ------------------------------------------------------------------ which frames


def test_fractions_past_the_end_clamp_to_the_last_frame(indexed_clip: Path) -> None:
    images = frames.extract_at(indexed_clip, fractions=[1.0, 1.5, -0.2])
    assert [decode_index(im) for im in images] == [71, 71, 0]


def test_timestamps_past_the_end_clamp_to_the_last_frame(indexed_clip: Path) -> None:
    images = frames.extract_at(indexed_clip, timestamps=[99.0, 2.99])
    assert [decode_index(im) for im in images] == [71, 71]


def test_default_fractions_spread_from_5_to_95_percent_skipping_frame_0(indexed_clip: Path) -> None:
    images = frames.extract_at(indexed_clip)
    assert [decode_index(im) for im in images] == [4, 20, 36, 53, 69]


def test_duplicate_points_give_one_image_each_in_request_order(indexed_clip: Path) -> None:
    images = frames.extract_at(indexed_clip, timestamps=[2.0, 0.5, 2.0, 0.5])
    assert [decode_index(im) for im in images] == [48, 12, 48, 12]


def test_thumbnails_are_the_requested_width_and_keep_the_aspect(av_clip: Path) -> None:
    images = frames.thumbnails(av_clip, count=3, width=200).images
    assert [im.size for im in images] == [(200, 112)] * 3


def test_thumbnails_report_the_time_of_each_frame(indexed_clip: Path) -> None:
    thumbs = frames.thumbnails(indexed_clip, count=3)
    assert thumbs.times == pytest.approx([4 / FPS, 36 / FPS, 69 / FPS], abs=1e-3)
    assert thumbs.info.nframes == 72


# ------------------------------------------------------------------ contact sheets


def _row(title: str, n: int = 5, size=(320, 180)) -> frames.SheetRow:
    images = [Image.new("RGB", size, (40 * k, 90, 160)) for k in range(n)]
    return frames.SheetRow.for_run(images, [0.4 + 1.8 * k for k in range(n)],
                                   seed=7, model="veo-3.1-fast", resolution="720p", duration=8)


def test_contact_sheet_has_one_row_per_run_and_fits_a_slide() -> None:
    sheet = frames.contact_sheet([_row("a"), _row("b"), _row("c")])
    one_row = frames.contact_sheet([_row("a")])
    assert sheet.width <= 1920
    assert sheet.height > 2.5 * (one_row.height - 100)


def test_contact_sheet_shrinks_wide_rows_to_the_max_width() -> None:
    sheet = frames.contact_sheet([_row("a", n=8, size=(1280, 720))], max_width=1920)
    assert sheet.width <= 1920


def test_contact_sheet_draws_run_labels_and_column_times() -> None:
    sheet = frames.contact_sheet([_row("a")]).convert("L")
    label_area = sheet.crop((0, 70, 300, sheet.height))
    header = sheet.crop((330, 0, sheet.width, 60))
    assert label_area.getextrema()[0] < 100  # dark text on the white label column
    assert header.getextrema()[0] < 100


def test_contact_sheet_keeps_a_labelled_row_for_a_run_without_images() -> None:
    failed = frames.SheetRow("seed 9", [], [], ("no video: task failed",))
    sheet = frames.contact_sheet([_row("a"), failed])
    assert sheet.height > frames.contact_sheet([_row("a")]).height


def test_save_contact_sheet_writes_a_png(tmp_path: Path) -> None:
    out = frames.save_contact_sheet([_row("a")], tmp_path / "sheet.png")
    with Image.open(out) as image:
        assert image.format == "PNG"


def test_sweep_header_titles_one_prompt_and_states_model_size_and_date() -> None:
    when = dt.datetime(2026, 12, 1, 10, 48, tzinfo=dt.timezone.utc)
    header = frames.SheetHeader.for_sweep(["a fox in snow", "a fox  in snow"], model="veo-3.1-fast-generate-preview",
                                          resolution="1280x720 (720p)", duration="8", when=when)
    assert header.title == "a fox in snow"
    assert header.lines == ("veo-3.1-fast-generate-preview · 1280x720 (720p) · 8 s · 2026-12-01 10:48 UTC",)


def test_sweep_header_lists_every_prompt_variant_in_full() -> None:
    when = dt.datetime(2026, 12, 1, 10, 48, tzinfo=dt.timezone.utc)
    long = "a red fox running through deep snow in a birch forest at dawn, low sun, breath visible"
    header = frames.SheetHeader.for_sweep(["a lighthouse at dusk", long, "a lighthouse at dusk"], model="m",
                                          resolution="720x1280 (720p)", duration=4, when=when)
    assert header.title == "2 prompt variants"
    assert header.lines[:2] == ("1. a lighthouse at dusk", f"2. {long}")
    assert header.lines[2].endswith("2026-12-01 10:48 UTC")


def test_contact_sheet_header_is_drawn_above_the_time_row() -> None:
    header = frames.SheetHeader("a lighthouse at dusk, waves crashing on the rocks below", ("veo · 720p · date",))
    plain = frames.contact_sheet([_row("a")])
    titled = frames.contact_sheet([_row("a")], header=header)
    added = titled.height - plain.height
    assert added >= 60  # a title line and a settings line
    assert titled.convert("L").crop((0, 0, titled.width, added)).getextrema()[0] < 100  # ink in the header band
    # Below the header (and its margin) the sheet is the plain one, shifted down.
    below = titled.crop((0, added + 24, titled.width, titled.height))
    assert list(below.getdata()) == list(plain.crop((0, 24, plain.width, plain.height)).getdata())


def test_contact_sheet_wraps_long_texts_on_word_boundaries() -> None:
    long = " ".join(["lighthouse"] * 80)
    header = frames.SheetHeader(long, ())
    short = frames.contact_sheet([_row("a")], header=frames.SheetHeader("lighthouse", ()))
    wrapped = frames.contact_sheet([_row("a")], header=header)
    assert wrapped.height - short.height == 2 * 38  # three title lines at most, not one cut-off line
    row = frames.SheetRow("seed 1", _row("a").images, _row("a").times, _row("a").meta, text=long)
    assert frames.contact_sheet([row]).height > frames.contact_sheet([_row("a")]).height
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    lines = frames._wrap(draw, long, frames._font(18), 284, 4)
    assert len(lines) == 4 and lines[-1].endswith("lighthouse…")
    assert all(set(line.rstrip("…").split()) == {"lighthouse"} for line in lines)


def test_saved_contact_sheet_carries_its_header_as_png_text(tmp_path: Path) -> None:
    header = frames.SheetHeader("2 prompt variants", ("1. a fox", "2. a hare", "m · 720p · date"))
    out = frames.save_contact_sheet([_row("a")], tmp_path / "sheet.png", header=header)
    with Image.open(out) as image:
        assert image.text["Title"] == "2 prompt variants"
        assert image.text["Description"] == "1. a fox\n2. a hare\nm · 720p · date"


# ------------------------------------------------------------------ animated previews


def test_animated_preview_is_a_looping_webp_with_the_requested_frames(indexed_clip: Path, tmp_path: Path) -> None:
    out = frames.animated_preview(indexed_clip, tmp_path / "p.webp", width=96, frames=6, fps=4)
    with Image.open(out) as image:
        assert image.format == "WEBP"
        assert image.is_animated and image.n_frames == 6
        assert image.info.get("loop") == 0
        assert image.size[0] == 96


# ------------------------------------------------------------------ bad input


@pytest.fixture
def bad_files(tmp_path: Path, indexed_clip: Path, media_dir: Path) -> dict[str, Path]:
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    empty = tmp_path / "empty.mp4"
    empty.touch()
    data = indexed_clip.read_bytes()
    cut = tmp_path / "cut.mp4"  # moov atom at the end: it is gone
    cut.write_bytes(data[: len(data) // 2])
    faststart = media_dir / "faststart.mp4"
    if not faststart.exists():
        _ffmpeg("-i", str(indexed_clip), "-c", "copy", "-movflags", "+faststart", str(faststart))
    fs = faststart.read_bytes()
    cut_faststart = tmp_path / "cut_faststart.mp4"  # index intact, frame data missing
    cut_faststart.write_bytes(fs[: len(fs) // 2])
    audio_only = media_dir / "tone.m4a"
    if not audio_only.exists():
        _ffmpeg("-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac", str(audio_only))
    fifo = tmp_path / "pipe.mp4"  # opening it would block forever
    os.mkfifo(fifo)
    return {"missing": tmp_path / "nope.mp4", "text": text, "empty": empty, "truncated": cut,
            "truncated_faststart": cut_faststart, "audio_only": audio_only, "directory": tmp_path,
            "fifo": fifo}


@pytest.mark.parametrize("kind", ["missing", "text", "empty", "truncated", "truncated_faststart",
                                  "audio_only", "directory", "fifo"])
def test_bad_input_raises_media_error(bad_files: dict[str, Path], kind: str) -> None:
    with pytest.raises(MediaError):
        frames.thumbnails(bad_files[kind])


@pytest.mark.parametrize("kind", ["missing", "text", "truncated"])
def test_probe_of_bad_input_raises_media_error(bad_files: dict[str, Path], kind: str) -> None:
    with pytest.raises(MediaError):
        frames.probe(bad_files[kind])


@pytest.mark.parametrize("kind", ["missing", "text", "empty", "truncated", "truncated_faststart",
                                  "audio_only", "directory", "fifo"])
def test_inspect_of_bad_input_raises_media_error(bad_files: dict[str, Path], kind: str) -> None:
    with pytest.raises(MediaError):
        frames.inspect(bad_files[kind])


def test_inspect_refuses_a_faststart_file_cut_short_whose_header_probe_reads_as_whole(bad_files) -> None:
    # Why a download is verified with inspect: the header of a faststart file comes before its frames.
    cut = bad_files["truncated_faststart"]
    assert frames.probe(cut).nframes == 72
    with pytest.raises(MediaError, match="truncated"):
        frames.inspect(cut)


def test_inspect_follows_a_renamed_file_and_never_answers_for_an_older_one(indexed_clip, av_clip, tmp_path) -> None:
    take = tmp_path / "take.mp4"
    take.write_bytes(indexed_clip.read_bytes())
    first = frames.inspect(take)
    assert (first.nframes, first.width) == (72, 160)
    moved = take.rename(tmp_path / "moved.mp4")  # as a verified download goes into place
    assert frames.inspect(moved) == first
    moved.write_bytes(av_clip.read_bytes())  # the same name, another video
    again = frames.inspect(moved)
    assert (again.width, again.nframes, again.has_audio) == (320, 48, True)
    take.write_bytes(indexed_clip.read_bytes())  # a new file: its own scan, the same facts
    assert frames.inspect(take) == first


# ------------------------------------------------------------------ CLI


def _lab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lab", *args], capture_output=True, text=True,
                          timeout=60, cwd=Path(__file__).resolve().parents[1], env=dict(os.environ))


def test_cli_thumbs_writes_a_png_and_a_json_summary(av_clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "sheet.png"
    proc = _lab("thumbs", str(av_clip), "--count", "4", "--width", "160", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["ok"] is True and summary["sheet"] == str(out)
    assert len(summary["thumbnails"]) == 4
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size == (summary["width"], summary["height"])


def test_cli_thumbs_bad_input_exits_2_with_a_json_error(tmp_path: Path) -> None:
    text = tmp_path / "readme.mp4"
    text.write_text("hello")
    proc = _lab("thumbs", str(text), "--out", str(tmp_path / "s.png"))
    assert proc.returncode == 2
    assert json.loads(proc.stdout.strip().splitlines()[-1])["ok"] is False
    assert len(proc.stderr.strip().splitlines()) == 1
