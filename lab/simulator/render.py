"""Real MP4s for simulated tasks: H.264 + AAC, 24 fps, exact size and duration, cached.

The picture follows from the request: the seed picks the gradient colours, its
motion and the tone; the prompt and seed are written on every frame beside
"SIMULATED" and a running clock, so frames differ over time and nobody takes
the clip for Veo output. Same prompt, seed and parameters give byte-identical
files (bitexact flags, no metadata, one x264 thread). Markers in the prompt plant
faults at known times (a freeze, a black start, silence, no audio, a cut, flicker):
see ``lab.simulator.planted``.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile
import textwrap
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from lab.datadir import atomic_write
from lab.simulator.planted import audio_filters, background_filters, has_audio, parse_markers, picture_filters

FPS = 24
AUDIO_RATE = 48000
# Bump when the picture or encoding changes, so old cache entries are not served.
RENDER_VERSION = 4
# Constant quality by resolution: the picture is smooth gradients and text, so 4k stays small and fast.
CRF_BY_RESOLUTION = {"720p": 30, "1080p": 32, "4k": 36}
# AAC as Veo delivers it, with the "fast" coder rather than the default two-loop search: the track is a
# beep. The audio was a quarter of a 4 s 720p clip's CPU (0.12 of 0.47 s); the fast coder makes it 0.39 s.
AUDIO_CODEC = ("-c:a", "aac", "-aac_coder", "fast", "-b:a", "96k", "-ar", str(AUDIO_RATE), "-ac", "2",
               "-flags:a", "+bitexact")
FONT_NAME = "pillow-default-font.ttf"
# The running clock in the bottom-right corner (drawtext's pts:hms) at its widest.
CLOCK_SAMPLE = "00:00:00.000"


class RenderError(RuntimeError):
    """ffmpeg could not produce the clip."""


@dataclass(frozen=True)
class RenderSpec:
    """Everything that decides a clip's bytes."""

    prompt: str
    seed: int
    model: str
    resolution: str
    aspect_ratio: str
    duration: int
    width: int
    height: int

    def key(self) -> str:
        """Cache key: a hash of every field (and the renderer version)."""
        text = json.dumps({**asdict(self), "v": RENDER_VERSION}, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _seed_colour(seed: int, index: int) -> str:
    digest = hashlib.sha256(f"{seed}:{index}".encode()).digest()
    return "0x" + digest[:3].hex()


def _escape_path(path: Path) -> str:
    """A path as a filtergraph option value (our cache paths, quoted for : and ')."""
    return "'" + str(path).replace("\\", "/").replace("'", "'\\''") + "'"


def _wrap(text: str, width: int, max_lines: int) -> str:
    lines = textwrap.wrap(" ".join(text.split()), width=width) or [""]
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][: max(0, width - 3)] + "..."
    return "\n".join(lines)


def font_sizes(width: int, height: int) -> tuple[int, int]:
    """(big, small): the SIMULATED word's size and the labels' size, from the frame's short side."""
    short = min(width, height)
    return max(12, short // 10), max(10, short // 30)


def write_labels(prompt: str, label: str, width: int, height: int, font: Path, work_dir: Path) -> tuple[Path, Path]:
    """The prompt (top) and label (bottom) text files, wrapped to the frame as drawtext will draw them."""
    small = font_sizes(width, height)[1]
    chars = max(20, int(width / (small * 0.55)) - 4)
    prompt_file, label_file = work_dir / "prompt.txt", work_dir / "label.txt"
    prompt_file.write_text(_wrap(prompt, chars, 4), encoding="utf-8")
    label_file.write_text(wrap_label(label, font, width, small), encoding="utf-8")
    return prompt_file, label_file


def label_room(font: Path, width: int, small: int) -> float:
    """How wide a bottom-label line may be: both boxes' margins and padding, and the clock, leave the rest."""
    from PIL import ImageFont

    clock = ImageFont.truetype(str(font), small).getlength(CLOCK_SAMPLE)
    return width - clock - 4 * small


def wrap_label(label: str, font: Path, width: int, small: int) -> str:
    """``label``'s fields (separated by two spaces) on as few lines as keep each clear of the running clock.

    Measured with the font drawtext uses, so a portrait frame's label goes onto a second line
    instead of running under the clock.
    """
    from PIL import ImageFont

    face = ImageFont.truetype(str(font), small)
    room = label_room(font, width, small)
    lines: list[str] = []
    for field in label.split("  "):
        joined = f"{lines[-1]}  {field}" if lines else field
        if lines and face.getlength(joined) <= room:
            lines[-1] = joined
        else:
            lines.append(field)
    return "\n".join(lines)


def ffmpeg_command(spec: RenderSpec, out: Path, font: Path, prompt_file: Path, label_file: Path) -> list[str]:
    """The ffmpeg invocation that renders ``spec`` to ``out``."""
    seed = spec.seed
    small_w, small_h = (320, 180) if spec.width >= spec.height else (180, 320)
    colours = ":".join(f"c{i}={_seed_colour(seed, i)}" for i in range(4))
    speed = 0.01 + (seed % 97) / 97 * 0.04
    # A small seeded gradient, scaled up: cheap to draw and cheap to encode even at 4k.
    video_src = (
        f"gradients=s={small_w}x{small_h}:r={FPS}:d={spec.duration}:{colours}:nb_colors=4"
        f":seed={seed % 2147483647}:speed={speed:.4f}"
    )
    big, small = font_sizes(spec.width, spec.height)
    font_opt = f"fontfile={_escape_path(font)}"
    # The big word drifts across the frame so motion is visible even in the picture alone.
    drift_y = f"(h-th)/2+sin(t*1.3+{seed % 628}/100)*h/6"
    planted = parse_markers(spec.prompt, spec.duration)
    background = f"format=yuv420p,scale={spec.width}:{spec.height}:flags=fast_bilinear"
    filters = [
        f"drawtext={font_opt}:text=SIMULATED:fontsize={big}:fontcolor=white@0.85:borderw={max(1, big // 20)}"
        f":bordercolor=black@0.6:x=(w-tw)/2+sin(t*0.9)*w/8:y={drift_y}",
        f"drawtext={font_opt}:textfile={_escape_path(prompt_file)}:expansion=none:fontsize={small}"
        f":fontcolor=white:line_spacing={small // 4}:box=1:boxcolor=black@0.55:boxborderw={small // 2}"
        f":x={small}:y={small}",
        f"drawtext={font_opt}:textfile={_escape_path(label_file)}:expansion=none:fontsize={small}"
        f":fontcolor=white:box=1:boxcolor=black@0.55:boxborderw={small // 2}:x={small}:y=h-th-{small}",
        f"drawtext={font_opt}:text='%{{pts\\:hms}}':fontsize={small}:fontcolor=white:box=1"
        f":boxcolor=black@0.55:boxborderw={small // 2}:x=w-tw-{small}:y=h-th-{small}",
    ]
    # Planted faults (lab.simulator.planted): a cut changes the picture under the text,
    # the others act on the finished frame, so a freeze stops the clock too.
    graph = [f"[0:v]{background}[bg]", *background_filters(planted, "bg", "shot"),
             f"[shot]{','.join(filters)}[pic]", *picture_filters(planted, FPS, "pic", "v")]
    tone = 220 + seed % 440
    audio_src = f"sine=f={tone}:beep_factor=2:r={AUDIO_RATE}:d={spec.duration}"
    inputs = ["-f", "lavfi", "-i", video_src]
    maps = ["-map", "[v]"]
    audio_codec: list[str] = []
    if has_audio(planted):
        graph.append(f"[1:a]{','.join(['aformat=channel_layouts=stereo', *audio_filters(planted)])}[a]")
        inputs += ["-f", "lavfi", "-i", audio_src]
        maps += ["-map", "[a]"]
        audio_codec = [*AUDIO_CODEC]
    return [
        _ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        *inputs,
        "-filter_complex", ";".join(graph),
        *maps,
        "-t", str(spec.duration),
        "-c:v", "libx264", "-preset", "ultrafast", "-crf", str(CRF_BY_RESOLUTION.get(spec.resolution, 30)), "-pix_fmt", "yuv420p",
        "-threads", "1", "-g", str(FPS * 2),
        *audio_codec,
        "-fflags", "+bitexact", "-flags:v", "+bitexact",
        "-map_metadata", "-1", "-movflags", "+faststart",
        "-f", "mp4", str(out),
    ]


class Renderer:
    """Renders specs to the cache directory off the caller's thread; identical specs render once."""

    def __init__(self, cache_dir: Path, workers: int = 2) -> None:
        self.cache_dir = Path(cache_dir)
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="sim-render")
        self._lock = threading.Lock()
        self._pending: dict[str, Future] = {}
        self.renders = 0  # ffmpeg runs so far (cache hits and shared renders not counted)

    def path_for(self, spec: RenderSpec) -> Path:
        return self.cache_dir / f"{spec.key()}.mp4"

    def submit(self, spec: RenderSpec) -> "Future[Path]":
        """A future for the clip's path; a cached clip gives a finished future at once."""
        path = self.path_for(spec)
        with self._lock:
            pending = self._pending.get(spec.key())
            if pending is not None:
                return pending
            future: Future = Future()
            if path.exists():
                future.set_result(path)
                return future
            self._pending[spec.key()] = future
        self._pool.submit(self._run, spec, future)
        return future

    def render(self, spec: RenderSpec) -> Path:
        """Render (or find) ``spec`` and wait for it."""
        return self.submit(spec).result()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self, spec: RenderSpec, future: Future) -> None:
        try:
            future.set_result(self._render_now(spec))
        except BaseException as exc:  # the future carries it to whoever waits
            future.set_exception(exc)
        finally:
            with self._lock:
                self._pending.pop(spec.key(), None)

    def _render_now(self, spec: RenderSpec) -> Path:
        path = self.path_for(spec)
        if path.exists():
            return path
        with self._lock:
            self.renders += 1
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        font = ensure_font(self.cache_dir)
        with tempfile.TemporaryDirectory(prefix=".render-", dir=self.cache_dir) as work:
            work_dir = Path(work)
            label = f"SIMULATED  seed {spec.seed}  {spec.model}  {spec.resolution} {spec.aspect_ratio}  {spec.duration}s"
            prompt_file, label_file = write_labels(spec.prompt, label, spec.width, spec.height, font, work_dir)
            # atomic: readers (other workers sharing the cache) see a whole file or none
            with atomic_write(path) as out:
                partial = Path(out.name)
                command = ffmpeg_command(spec, partial, font, prompt_file, label_file)
                result = subprocess.run(command, capture_output=True, text=True, errors="replace")
                if result.returncode != 0 or partial.stat().st_size == 0:
                    raise RenderError(f"ffmpeg failed ({result.returncode}): {result.stderr.strip()[-800:]}")
        return path


def ensure_font(directory: Path) -> Path:
    """The TrueType font Pillow embeds, written once beside the renders (no system fonts needed)."""
    font = directory / FONT_NAME
    if font.exists():
        return font
    from PIL import ImageFont

    loaded = ImageFont.load_default(size=20)
    source = getattr(loaded, "path", None)
    data = source.getvalue() if hasattr(source, "getvalue") else Path(source).read_bytes()
    with atomic_write(font) as handle:
        handle.write(data)
    return font
