"""Thumbnails, contact sheets and animated previews of MP4 files (ffmpeg + Pillow).

Everything goes through the ffmpeg binary bundled with imageio-ffmpeg; there is
no ffprobe, so facts about a file come from ``ffmpeg -i`` (stream header) and a
stream-copy packet scan (exact frame count and keyframes, no decoding). A file's
scan is remembered by its identity (device, inode, size, mtime), which a rename
keeps: a download verified by ``inspect`` as a temp file is not scanned again for
its thumbnails once it is in place.

Thumbnails are frame-exact: a time ``t`` means frame ``ceil(t*fps - 1e-6)``,
clamped to the last frame. Frames are selected and scaled inside ffmpeg, in
one process, so Python only ever sees the small images.

Two extraction strategies, picked per call from the keyframe layout:

* ``single_pass``: decode once up to the last wanted frame, ``select`` the wanted
  indices, ``scale``. Generated clips (Veo: 4-8 s, often a single keyframe) always
  land here, since seeking would re-decode from frame 0 for every timestamp.
* ``seek``: one ffmpeg process with one ``-ss T -i file`` input per timestamp;
  each input decodes only from the keyframe before its frame. Chosen when the
  summed GOP decodes plus a per-input overhead cost under half of the single
  pass, i.e. long videos with regular keyframes (a 60 s clip with a keyframe every
  few seconds). Measured on 2 cores: single pass wins 3-5x on 8 s clips, seeking
  wins on long files; bench/bench_thumbs.py measures both.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import os
import re
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont
from PIL.PngImagePlugin import PngInfo

from lab.datadir import atomic_write
from lab.errors import MediaError

__all__ = [
    "DEFAULT_FRACTIONS",
    "SheetHeader",
    "SheetRow",
    "Thumbnails",
    "VideoInfo",
    "animated_preview",
    "check_video_file",
    "contact_sheet",
    "extract_at",
    "ffmpeg_error_line",
    "frame_index",
    "inspect",
    "probe",
    "run_ffmpeg",
    "save_contact_sheet",
    "thumbnail_fractions",
    "thumbnails",
]

# Skip the first frame: generated clips often fade in from black.
DEFAULT_FRACTIONS: tuple[float, ...] = (0.05, 0.275, 0.5, 0.725, 0.95)

# A seek input costs a process-internal open + seek + decoder start-up; in decoded
# pixels that is about 40 ms of decoding at ~250 Mpx/s on one core of this box.
_SEEK_OVERHEAD_PIXELS = 10_000_000
# Seeking must win clearly: its cost model is rougher than the single pass's.
_SEEK_ADVANTAGE = 0.5
_PROBE_TIMEOUT_S = 30.0
# Scans kept per process: a take's scan is reused within moments (verify, then thumbnails), so a few
# hundred cover every take a sweep or a compare touches at once.
_SCAN_CACHE_SIZE = 256

_PKT_FLAG_KEY = 0x1
_PKT_FLAG_CORRUPT = 0x2
_PKT_FLAG_DISCARD = 0x4


@dataclass(frozen=True)
class VideoInfo:
    """What a caller needs to know about a video file, read without decoding it."""

    width: int  # display width (after rotation and sample aspect ratio)
    height: int
    fps: float
    duration: float  # seconds (container duration)
    nframes: int  # estimate from probe(); exact when it comes from a packet scan
    has_audio: bool
    codec: str
    rotation: int = 0  # degrees the player rotates by; width/height already account for it


@dataclass(frozen=True)
class _Scan:
    """A stream-copy pass over the video packets: exact count, timing and keyframes."""

    info: VideoInfo
    pts: tuple[float, ...]  # presentation times of the frames, sorted, seconds from file start
    keyframes: tuple[int, ...]  # presentation indices of keyframes, sorted


@functools.cache
def _ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _run_ffmpeg(args: list[str], *, path: Path, timeout: float, cwd: str | None = None) -> subprocess.CompletedProcess:
    """Run ffmpeg with a hard timeout (the child is killed); errors become MediaError."""
    cmd = [_ffmpeg_exe(), "-hide_banner", "-nostdin", *args]
    try:
        return subprocess.run(
            cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False, cwd=cwd
        )
    except subprocess.TimeoutExpired as exc:
        raise MediaError(f"ffmpeg took longer than {timeout:.0f} s on {path}; gave up") from exc
    except OSError as exc:
        raise MediaError(f"could not run ffmpeg on {path}: {exc}") from exc


def _check_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError as exc:
        raise MediaError(f"no such video file: {path}") from exc
    except OSError as exc:
        raise MediaError(f"cannot read video file {path}: {exc}") from exc
    if not path.is_file():
        raise MediaError(f"not a regular file: {path}")
    if size == 0:
        raise MediaError(f"video file is empty (0 bytes): {path}")
    return path


def _ffmpeg_error_line(stderr: str) -> str:
    if "moov atom not found" in stderr:
        return "moov atom not found: truncated download or not an MP4"
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if "rror" in ln or "Invalid" in ln or "not found" in ln:
            return re.sub(r"^\[[^\]]*\]\s*", "", ln)
    return lines[-1] if lines else "ffmpeg failed"


_DURATION_RE = re.compile(r"Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)")
_START_RE = re.compile(r"start:\s*(-?\d+(?:\.\d+)?)")
_VIDEO_RE = re.compile(r"Stream #\d+:\d+\S*:\s*Video:\s*(\w+)(.*)")
_SIZE_RE = re.compile(r",\s*(\d{2,5})x(\d{2,5})")
_SAR_RE = re.compile(r"SAR (\d+):(\d+)")
_FPS_RE = re.compile(r"(\d+(?:\.\d+)?)(k?) (fps|tbr)")
_ROTATION_RE = re.compile(r"rotation of (-?\d+(?:\.\d+)?) degrees")
# ffmpeg prints NTSC rates rounded; snap them back to the exact rational.
_NTSC = {23.98: 24000 / 1001, 29.97: 30000 / 1001, 59.94: 60000 / 1001, 119.88: 120000 / 1001}


# Public names for the other ffmpeg users of the lab (proxies, similarity).
run_ffmpeg = _run_ffmpeg
check_video_file = _check_file
ffmpeg_error_line = _ffmpeg_error_line


def _parse_header(stderr: str, path: Path) -> tuple[VideoInfo, float]:
    """Parse ``ffmpeg -i`` output into a VideoInfo and the container start time."""
    if "Input #0" not in stderr:
        raise MediaError(f"not a readable video file: {path} ({_ffmpeg_error_line(stderr)})")
    lines = stderr.splitlines()
    video_at = next((i for i, ln in enumerate(lines) if _VIDEO_RE.search(ln)), None)
    if video_at is None:
        raise MediaError(f"no video stream in {path}")
    m = _VIDEO_RE.search(lines[video_at])
    codec, rest = m.group(1), m.group(2)
    size = _SIZE_RE.search(rest)
    if size is None:
        raise MediaError(f"video stream of {path} has no frame size")
    width, height = int(size.group(1)), int(size.group(2))
    fps = 0.0
    for value, kilo, _unit in _FPS_RE.findall(rest):  # "fps" comes before "tbr"
        fps = float(value) * (1000 if kilo else 1)
        break
    fps = _NTSC.get(round(fps, 2), fps)
    sar = _SAR_RE.search(rest)
    if sar and int(sar.group(1)) > 0 and int(sar.group(2)) > 0:
        width = max(2, round(width * int(sar.group(1)) / int(sar.group(2))))
    # Side data of this stream (indented lines until the next stream) may rotate it.
    rotation = 0
    for ln in lines[video_at + 1 :]:
        if "Stream #" in ln:
            break
        rot = _ROTATION_RE.search(ln)
        if rot:
            rotation = int(round(float(rot.group(1)))) % 360
    if rotation in (90, 270):
        width, height = height, width
    dur = _DURATION_RE.search(stderr)
    duration = int(dur.group(1)) * 3600 + int(dur.group(2)) * 60 + float(dur.group(3)) if dur else 0.0
    start = _START_RE.search(stderr)
    info = VideoInfo(
        width=width,
        height=height,
        fps=fps,
        duration=duration,
        nframes=max(1, round(duration * fps)) if fps and duration else 0,
        has_audio=bool(re.search(r"Stream #\d+:\d+\S*:\s*Audio:", stderr)),
        codec=codec,
        rotation=rotation,
    )
    return info, float(start.group(1)) if start else 0.0


def probe(path: str | os.PathLike) -> VideoInfo:
    """Read size, fps, duration, codec and audio presence from the header (no decoding).

    ``nframes`` is an estimate (duration x fps). Raises MediaError for anything
    that is not a readable video.
    """
    path = _check_file(path)
    proc = _run_ffmpeg(["-i", str(path)], path=path, timeout=_PROBE_TIMEOUT_S)
    info, _start = _parse_header(proc.stderr.decode("utf-8", "replace"), path)
    return info


def inspect(path: str | os.PathLike) -> VideoInfo:
    """Like ``probe``, from a walk over every video packet: the exact frame count, and a file cut short
    anywhere is refused (``probe`` reads the header, which a faststart MP4 carries before its frames).

    Raises MediaError for anything that is not a whole, readable video.
    """
    return _scan(_check_file(path)).info


# Scans by file identity: a changed file has a new size or mtime, a replaced one a new inode, so a stale scan
# is never returned; a rename keeps all four, so the scan follows the file into place. Oldest out first.
_scans: dict[tuple[int, int, int, int], _Scan] = {}
_scans_lock = threading.Lock()


def _scan(path: Path) -> _Scan:
    """Header plus a stream-copy walk over the video packets (demux only, no decode), once per file."""
    try:
        st = path.stat()
    except OSError as exc:
        raise MediaError(f"cannot read video file {path}: {exc}") from exc
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    with _scans_lock:
        scan = _scans.get(key)
    if scan is None:
        scan = _scan_now(path, st.st_size)
        with _scans_lock:
            _scans[key] = scan
            while len(_scans) > _SCAN_CACHE_SIZE:
                del _scans[next(iter(_scans))]
    return scan


def _scan_now(path: Path, size: int) -> _Scan:
    size_mb = size / 1e6
    proc = _run_ffmpeg(
        ["-i", str(path), "-map", "0:v:0", "-c", "copy", "-copyts", "-f", "framecrc", "-"],
        path=path,
        timeout=_PROBE_TIMEOUT_S + size_mb / 50,  # demuxing runs far above 50 MB/s
    )
    stderr = proc.stderr.decode("utf-8", "replace")
    info, start = _parse_header(stderr, path)
    timebase = Fraction(1)
    pts: list[float] = []
    keys: list[float] = []
    last_flags = 0
    for line in proc.stdout.decode("ascii", "replace").splitlines():
        if line.startswith("#tb 0:"):
            timebase = Fraction(line.split(":", 1)[1].strip())
            continue
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 6 or parts[0] != "0":
            continue
        flags = _PKT_FLAG_KEY  # framecrc omits the flags when they are exactly "key"
        if len(parts) > 6 and parts[6].startswith("F="):
            flags = int(parts[6][2:], 16)
        last_flags = flags
        if flags & _PKT_FLAG_DISCARD:
            continue
        t = float(int(parts[2]) * timebase) - start
        pts.append(t)
        if flags & _PKT_FLAG_KEY:
            keys.append(t)
    if not pts:
        raise MediaError(f"no decodable video frames in {path} ({_ffmpeg_error_line(stderr)})")
    if last_flags & _PKT_FLAG_CORRUPT or "partial file" in stderr:
        raise MediaError(f"video file is truncated: {path} (data ends at {max(pts):.2f} s)")
    pts.sort()
    position = {t: i for i, t in enumerate(pts)}
    keyframes = tuple(sorted(position[t] for t in keys)) or (0,)
    fps = info.fps
    if len(pts) >= 2 and pts[-1] > pts[0]:
        fps = (len(pts) - 1) / (pts[-1] - pts[0])
        # Keep the header's (snapped) rate when it agrees: it is the rational one.
        if info.fps and abs(fps - info.fps) / info.fps < 0.002:
            fps = info.fps
    elif not fps:
        fps = 1.0
    info = VideoInfo(
        width=info.width,
        height=info.height,
        fps=fps,
        duration=info.duration or len(pts) / fps,
        nframes=len(pts),
        has_audio=info.has_audio,
        codec=info.codec,
        rotation=info.rotation,
    )
    return _Scan(info=info, pts=tuple(pts), keyframes=keyframes)


def frame_index(t: float, fps: float, nframes: int) -> int:
    """The frame shown at time ``t``: ``ceil(t*fps - 1e-6)`` clamped to [0, nframes-1]."""
    return min(max(0, math.ceil(t * fps - 1e-6)), nframes - 1)


def _thumb_size(info: VideoInfo, width: int) -> tuple[int, int]:
    width = max(2, int(width) // 2 * 2)
    height = max(2, round(width * info.height / info.width / 2) * 2)
    return width, height


def _keyframe_before(keyframes: Sequence[int], index: int) -> int:
    import bisect

    at = bisect.bisect_right(keyframes, index) - 1
    return keyframes[at] if at >= 0 else 0


def _choose_strategy(scan: _Scan, indices: Sequence[int]) -> str:
    """Cheaper of one decode up to the last frame vs one GOP decode per frame."""
    pixels = scan.info.width * scan.info.height
    first_key = _keyframe_before(scan.keyframes, min(indices))
    single = (max(indices) - first_key + 1) * pixels
    seek = sum(
        (i - _keyframe_before(scan.keyframes, i) + 1) * pixels + _SEEK_OVERHEAD_PIXELS
        for i in indices
    )
    return "seek" if seek < _SEEK_ADVANTAGE * single else "single_pass"


def _decode_timeout(scan: _Scan) -> float:
    # Decoding runs several times faster than real time even for 4K on 2 cores;
    # the timeout only exists so that a pathological file cannot hang a request.
    return 60.0 + 2.0 * scan.info.duration


def _raw_frames(data: bytes, size: tuple[int, int]) -> list[Image.Image]:
    frame_bytes = size[0] * size[1] * 3
    return [
        Image.frombytes("RGB", size, data[o : o + frame_bytes])
        for o in range(0, len(data) - frame_bytes + 1, frame_bytes)
    ]


def _extract_single_pass(path: Path, scan: _Scan, indices: list[int], size: tuple[int, int]):
    # Start at the keyframe before the first wanted frame; n then counts from there.
    first_key = _keyframe_before(scan.keyframes, indices[0])
    seek: list[str] = []
    offset = 0
    if first_key > 0:
        seek = ["-ss", f"{_seek_time(scan, first_key):.6f}"]
        offset = first_key
    expr = "+".join(f"eq(n\\,{i - offset})" for i in indices)
    proc = _run_ffmpeg(
        [
            "-v", "error", *seek, "-i", str(path), "-map", "0:v:0", "-an", "-sn", "-dn",
            "-vf", f"select='{expr}',scale={size[0]}:{size[1]},setsar=1",
            "-fps_mode", "passthrough", "-frames:v", str(len(indices)),
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-",
        ],
        path=path,
        timeout=_decode_timeout(scan),
    )
    return _raw_frames(proc.stdout, size), proc


def _seek_time(scan: _Scan, index: int) -> float:
    """An input -ss position that makes ``index`` the first frame ffmpeg keeps."""
    gap = scan.pts[index] - scan.pts[index - 1] if index > 0 else 1.0 / scan.info.fps
    return max(0.0, scan.pts[index] - min(gap, 1.0 / scan.info.fps) / 2)


def _extract_seek(path: Path, scan: _Scan, indices: list[int], size: tuple[int, int]):
    inputs: list[str] = []
    chains: list[str] = []
    for k, index in enumerate(indices):
        # -t bounds what each input reads to about one frame; trim makes it exact.
        inputs += ["-ss", f"{_seek_time(scan, index):.6f}", "-t", f"{1.5 / scan.info.fps:.6f}",
                   "-i", str(path)]
        chains.append(f"[{k}:v:0]trim=end_frame=1,scale={size[0]}:{size[1]},setsar=1,format=rgb24[v{k}]")
    graph = ";".join(chains) + ";" + "".join(f"[v{k}]" for k in range(len(indices)))
    graph += f"concat=n={len(indices)}:v=1:a=0[out]"
    proc = _run_ffmpeg(
        ["-v", "error", *inputs, "-filter_complex", graph, "-map", "[out]",
         "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        path=path,
        timeout=_decode_timeout(scan),
    )
    return _raw_frames(proc.stdout, size), proc


def extract_at(
    path: str | os.PathLike,
    fractions: Sequence[float] | None = None,
    timestamps: Sequence[float] | None = None,
    width: int = 320,
    *,
    strategy: str = "auto",
) -> list[Image.Image]:
    """One RGB image per requested point, in request order, ``width`` px wide.

    Give ``fractions`` of the duration (0..1) or ``timestamps`` in seconds, not
    both; neither means DEFAULT_FRACTIONS. Points past the end show the last
    frame. ``strategy`` is "auto", "single_pass" or "seek" (for tests and benches).
    """
    return _extract(path, fractions, timestamps, width, strategy).images


@dataclass(frozen=True)
class Thumbnails:
    """Thumbnails with the presentation time (s) of each frame and the video's facts."""

    images: tuple[Image.Image, ...]
    times: tuple[float, ...]
    info: VideoInfo


def thumbnails(path: str | os.PathLike, count: int = 5, width: int = 320) -> Thumbnails:
    """``count`` evenly spread thumbnails (5 gives DEFAULT_FRACTIONS: no black first frame), each frame's
    time, and a VideoInfo (exact nframes)."""
    return _extract(path, thumbnail_fractions(count), None, width, "auto")


def thumbnail_fractions(count: int) -> tuple[float, ...]:
    """Evenly spread fractions from 5 % to 95 % (0.5 for a single thumbnail)."""
    if count < 1:
        raise ValueError("count must be at least 1")
    if count == 1:
        return (0.5,)
    return tuple(round(0.05 + 0.9 * k / (count - 1), 6) for k in range(count))


def _extract(path, fractions, timestamps, width, strategy) -> Thumbnails:
    if fractions is not None and timestamps is not None:
        raise ValueError("give fractions or timestamps, not both")
    if strategy not in ("auto", "single_pass", "seek"):
        raise ValueError(f"unknown strategy {strategy!r}")
    path = _check_file(path)
    scan = _scan(path)
    info = scan.info
    if timestamps is None:
        fractions = DEFAULT_FRACTIONS if fractions is None else fractions
        # A fraction of the frame count, so 1.0 is the last frame, not one past it.
        timestamps = [min(max(float(f), 0.0), 1.0) * info.nframes / info.fps for f in fractions]
    points = [float(t) for t in timestamps]
    if any(math.isnan(t) for t in points):
        raise ValueError("timestamps must be numbers")
    if not points:
        return Thumbnails((), (), info)
    wanted = [frame_index(t, info.fps, info.nframes) for t in points]
    indices = sorted(set(wanted))
    size = _thumb_size(info, width)
    chosen = _choose_strategy(scan, indices) if strategy == "auto" else strategy
    if chosen == "seek":
        images, proc = _extract_seek(path, scan, indices, size)
        if len(images) != len(indices) and strategy == "auto":
            chosen = "single_pass"  # an odd file; the single pass is the robust path
    if chosen == "single_pass":
        images, proc = _extract_single_pass(path, scan, indices, size)
    if not images:
        stderr = proc.stderr.decode("utf-8", "replace")
        raise MediaError(f"ffmpeg decoded no frames from {path} ({_ffmpeg_error_line(stderr)})")
    # Fewer frames than packets (undecodable tail): those points show the last good one.
    images += [images[-1]] * (len(indices) - len(images))
    by_index = dict(zip(indices, images, strict=True))
    return Thumbnails(
        images=tuple(by_index[i] for i in wanted),
        times=tuple(round(scan.pts[i], 3) for i in wanted),
        info=info,
    )


# ---------------------------------------------------------------- contact sheets

_BACKGROUND = (255, 255, 255)
_INK = (20, 20, 20)
_MUTED = (95, 95, 95)
_RULE = (215, 215, 215)


@dataclass(frozen=True)
class SheetHeader:
    """The sheet's title block: what was asked (the prompt, or each variant) and with what settings."""

    title: str  # drawn large and wrapped, e.g. the prompt
    lines: Sequence[str] = ()  # drawn smaller, each wrapped, e.g. the variants and "model · size · date"

    def __post_init__(self) -> None:
        object.__setattr__(self, "lines", tuple(self.lines))

    @classmethod
    def for_sweep(
        cls,
        prompts: Sequence[str],
        *,
        model: str,
        resolution: str,
        duration: float | str | None,
        when: dt.datetime,
    ) -> SheetHeader:
        """The prompt as the title (or "N prompt variants" and each one numbered), then the settings and date."""
        distinct = list(dict.fromkeys(" ".join(p.split()) for p in prompts if p and p.strip()))
        settings = [model, resolution]
        if duration not in (None, ""):
            settings.append(f"{float(duration):g} s")
        settings.append(when.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
        facts = " · ".join(s for s in settings if s)
        if len(distinct) <= 1:
            return cls(distinct[0] if distinct else "(no prompt)", (facts,))
        variants = [f"{n}. {text}" for n, text in enumerate(distinct, start=1)]
        return cls(f"{len(distinct)} prompt variants", (*variants, facts))


@dataclass(frozen=True)
class SheetRow:
    """One run in a contact sheet: a title (e.g. "seed 7"), an optional text, meta lines and its frames."""

    title: str
    images: Sequence[Image.Image]
    times: Sequence[float]  # seconds, one per image, shown as column headers
    meta: Sequence[str] = field(default_factory=tuple)  # e.g. ("veo-3.1-fast", "1280x720", "8 s")
    text: str = ""  # wrapped under the title, e.g. the row's prompt variant

    def __post_init__(self) -> None:
        object.__setattr__(self, "images", tuple(self.images))
        object.__setattr__(self, "times", tuple(float(t) for t in self.times))
        object.__setattr__(self, "meta", tuple(self.meta))
        if len(self.images) != len(self.times):
            raise ValueError("SheetRow needs one time per image")

    @classmethod
    def for_run(
        cls,
        images: Sequence[Image.Image],
        times: Sequence[float],
        *,
        seed: int | None,
        model: str,
        resolution: str,
        duration: float | str,
    ) -> SheetRow:
        """The usual label: seed as the title, then model, resolution and duration."""
        title = f"seed {seed}" if seed is not None else "seed: random"
        return cls(title, images, times, (model, resolution, f"{float(duration):g} s"))


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    # Pillow >= 10.1 bundles a FreeType font: no dependency on system fonts.
    return ImageFont.load_default(size=size)


def _fit_text(draw: ImageDraw.ImageDraw, text: str, font, max_width: int) -> str:
    if draw.textlength(text, font=font) <= max_width:
        return text
    while text and draw.textlength(text + "…", font=font) > max_width:
        text = text[:-1]
    return text + "…"


def _wrap(draw: ImageDraw.ImageDraw, text: str, font, max_width: int, max_lines: int) -> list[str]:
    """Whole words per line (a word too long for a line is split); past ``max_lines``, the last ends in "…"."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        while draw.textlength(word, font=font) > max_width:  # split only a word that fits no line
            cut = len(word) - 1
            while cut > 1 and draw.textlength(word[:cut], font=font) > max_width:
                cut -= 1
            if line:
                lines.append(line)
                line = ""
            lines.append(word[:cut])
            word = word[cut:]
        candidate = f"{line} {word}" if line else word
        if draw.textlength(candidate, font=font) <= max_width:
            line = candidate
        else:
            lines.append(line)
            line = word
    if line:
        lines.append(line)
    if len(lines) > max_lines:  # end on a whole word, so what is shown still reads as text
        words = lines[max_lines - 1].split()
        while words and draw.textlength(" ".join(words) + "…", font=font) > max_width:
            words.pop()
        lines = lines[: max_lines - 1] + [" ".join(words).rstrip(" ,;:.-") + "…"]
    return lines


def _time_label(t: float) -> str:
    return f"{t:.1f} s"


_HEADER_TITLE_LINES = 3
_HEADER_LINE_LINES = 2
_ROW_TEXT_LINES = 4


def contact_sheet(rows: Sequence[SheetRow], max_width: int = 1920, header: SheetHeader | None = None) -> Image.Image:
    """One row per run, one column per time, labels on the left, times on top; ``header`` above it all.

    Cells are scaled down so the sheet is at most ``max_width`` px wide (slide
    sized); when rows disagree on times, each cell also gets its own time.
    """
    rows = list(rows)
    if not rows or not any(r.images for r in rows):
        raise ValueError("a contact sheet needs at least one row with images")
    columns = max(len(r.images) for r in rows)
    pad, gap = 24, 8
    label_width = 300
    natural_width = max(im.width for r in rows for im in r.images)
    cell_width = min(natural_width, (max_width - label_width - 2 * pad - gap * (columns - 1)) // columns)
    cell_width = max(32, cell_width)
    cell_height = round(max(im.height * cell_width / im.width for r in rows for im in r.images))

    header_font, title_font, meta_font, cell_font = _font(22), _font(28), _font(20), _font(16)
    text_font, sheet_title_font = _font(18), _font(30)
    header_height = 44
    reference_times = max(rows, key=lambda r: len(r.times)).times
    times_differ = any(
        any(abs(a - b) > 0.05 for a, b in zip(r.times, reference_times, strict=False)) for r in rows
    )
    width = 2 * pad + label_width + columns * cell_width + (columns - 1) * gap
    text_width = label_width - 16
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    row_texts = [_wrap(measure, r.text, text_font, text_width, _ROW_TEXT_LINES) for r in rows]
    meta_lines = max(len(r.meta) for r in rows)
    text_lines = max(len(t) for t in row_texts)
    row_height = max(cell_height, 44 + 24 * text_lines + 28 * meta_lines)
    title_block: list[tuple[str, object, tuple[int, int, int], int]] = []  # (line, font, colour, height)
    if header is not None:
        for line in _wrap(measure, header.title, sheet_title_font, width - 2 * pad, _HEADER_TITLE_LINES):
            title_block.append((line, sheet_title_font, _INK, 38))
        for item in header.lines:
            for line in _wrap(measure, item, meta_font, width - 2 * pad, _HEADER_LINE_LINES):
                title_block.append((line, meta_font, _MUTED, 26))
    title_height = sum(h for *_, h in title_block) + (16 if title_block else 0)
    height = 2 * pad + title_height + header_height + len(rows) * row_height + (len(rows) - 1) * gap

    sheet = Image.new("RGB", (width, height), _BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    y = pad
    for line, font, colour, line_height in title_block:
        draw.text((pad, y), line, font=font, fill=colour)
        y += line_height
    top = pad + title_height
    x0 = pad + label_width
    for c, t in enumerate(reference_times):
        cx = x0 + c * (cell_width + gap) + cell_width // 2
        draw.text((cx, top + header_height // 2), _time_label(t), font=header_font, fill=_INK, anchor="mm")
    draw.line([(pad, top + header_height - 4), (width - pad, top + header_height - 4)], fill=_RULE, width=2)

    for r, row in enumerate(rows):
        y = top + header_height + r * (row_height + gap)
        draw.text((pad, y + 4), _fit_text(draw, row.title, title_font, text_width), font=title_font, fill=_INK)
        for k, line in enumerate(row_texts[r]):
            draw.text((pad, y + 42 + 24 * k), line, font=text_font, fill=_INK)
        meta_top = y + 44 + 24 * len(row_texts[r])
        for m, line in enumerate(row.meta):
            draw.text((pad, meta_top + 28 * m), _fit_text(draw, line, meta_font, text_width), font=meta_font,
                      fill=_MUTED)
        for c, (image, t) in enumerate(zip(row.images, row.times, strict=True)):
            h = max(1, round(image.height * cell_width / image.width))
            thumb = image.convert("RGB").resize((cell_width, h), Image.Resampling.LANCZOS)
            x = x0 + c * (cell_width + gap)
            sheet.paste(thumb, (x, y + (row_height - h) // 2))
            if times_differ:
                draw.text((x + 6, y + (row_height - h) // 2 + 4), _time_label(t), font=cell_font,
                          fill=(255, 255, 255), stroke_width=2, stroke_fill=(0, 0, 0))
    return sheet


def save_contact_sheet(rows: Sequence[SheetRow], out_path: str | os.PathLike, max_width: int = 1920,
                       header: SheetHeader | None = None) -> Path:
    """Render contact_sheet(rows, header=header) and write it as PNG; returns the path.

    The header's text is also stored in the PNG (Title, Description), where viewers and search find it.
    Written whole or not at all (``atomic_write``).
    """
    out_path = Path(out_path)
    text = PngInfo()
    if header is not None:
        text.add_itxt("Title", header.title)
        text.add_itxt("Description", "\n".join(header.lines))
    sheet = contact_sheet(rows, max_width=max_width, header=header)
    with atomic_write(out_path) as out:
        sheet.save(out, format="PNG", optimize=False, pnginfo=text)
    return out_path


# ---------------------------------------------------------------- animated previews


def animated_preview(
    path: str | os.PathLike, out_path: str | os.PathLike, width: int = 320, frames: int = 12, fps: int = 6
) -> Path:
    """A small looping animation of ``frames`` evenly spread frames (WebP, or GIF by suffix).

    For grids where a video player per cell is too heavy. One ffmpeg pass. Written whole or not at all.
    """
    if frames < 1 or fps <= 0:
        raise ValueError("frames must be >= 1 and fps > 0")
    out_path = Path(out_path)
    # Mid-points of equal slices: even spacing, and no black first frame.
    fractions = [(k + 0.5) / frames for k in range(frames)]
    images = extract_at(path, fractions=fractions, width=width)
    fmt = "GIF" if out_path.suffix.lower() == ".gif" else "WEBP"
    extra = {"quality": 70, "method": 4} if fmt == "WEBP" else {"optimize": False}
    with atomic_write(out_path) as out:
        images[0].save(
            out, format=fmt, save_all=True, append_images=images[1:],
            duration=round(1000 / fps), loop=0, **extra,
        )
    return out_path
