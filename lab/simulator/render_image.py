"""Simulated image-to-video: the clip starts on the reference image and slowly zooms in.

Frame 0 is exactly the image centre-cropped and scaled to the output size
(``lab.image_input.fit``, the same crop the lab offers before sending), so a
test or a user can check the starting frame against the image, as Veo treats
the image as the first frame. From frame 1 on the picture zooms in slowly
(ffmpeg ``zoompan``) under the usual SIMULATED labels, the prompt, the seed and
a running clock, so nobody takes the clip for Veo output. Same image, prompt,
seed and parameters give byte-identical files; renders are cached by content.
The prompt's fault markers (``lab.simulator.planted``: freeze, black, silence,
silent, noaudio, cut, flicker) are planted as in a text-to-video clip.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from lab.datadir import atomic_write
from lab.simulator.render import (
    AUDIO_CODEC,
    AUDIO_RATE,
    CRF_BY_RESOLUTION,
    FPS,
    RenderError,
    Renderer,
    RenderSpec,
    _escape_path,
    _ffmpeg_exe,
    ensure_font,
    font_sizes,
    write_labels,
)
from lab.simulator.planted import audio_filters, background_filters, has_audio, parse_markers, picture_filters

IMAGE_RENDER_VERSION = 4
# The zoom reached at the last frame (1.0 = none): slow enough to read as a camera push-in.
ZOOM_END = 1.12
# zoompan resamples every frame at full size; above this long side it works on a smaller
# copy and the result is scaled up (4k clips stay quick; the first frame is then softer).
ZOOM_WORK_MAX_SIDE = 1920


@dataclass(frozen=True)
class ImageRenderSpec(RenderSpec):
    """A RenderSpec plus the uploaded image (its content hash decides the bytes, not its path)."""

    image_path: str = ""
    image_sha256: str = ""

    def key(self) -> str:
        fields = {k: v for k, v in asdict(self).items() if k != "image_path"}
        text = json.dumps({**fields, "image_v": IMAGE_RENDER_VERSION}, sort_keys=True, ensure_ascii=False)
        return "i" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:31]


def work_size(width: int, height: int) -> tuple[int, int]:
    """The size zoompan works at: the output size, or a smaller even size of the same aspect."""
    long_side = max(width, height)
    if long_side <= ZOOM_WORK_MAX_SIDE:
        return width, height
    scale = ZOOM_WORK_MAX_SIDE / long_side
    return int(width * scale) // 2 * 2, int(height * scale) // 2 * 2


def image_ffmpeg_command(spec: ImageRenderSpec, start_frame: Path, out: Path, font: Path, prompt_file: Path,
                         label_file: Path) -> list[str]:
    """The ffmpeg invocation: zoom into ``start_frame`` (already fitted to the output size)."""
    frames = spec.duration * FPS
    work_w, work_h = work_size(spec.width, spec.height)
    rate = (ZOOM_END - 1.0) / max(1, frames - 1)
    big, small = font_sizes(spec.width, spec.height)
    font_opt = f"fontfile={_escape_path(font)}"
    # Labels from frame 1 on: frame 0 is the reference image untouched.
    after_first = r":enable='gte(n\,1)'"
    # One input picture, `frames` output frames; on=0 gives zoom 1 (the whole picture). Zooming
    # in yuv420p, and scaling only when the work size differs, keeps a 720p clip about as
    # cheap as the text renderer's.
    zoom = (f"zoompan=z='1+{rate:.8f}*on':x='iw/2-(iw/zoom/2)':y='ih/2-(ih/zoom/2)':d={frames}"
            f":s={work_w}x{work_h}:fps={FPS}")
    if (work_w, work_h) == (spec.width, spec.height):
        motion = ["format=yuv420p", zoom]
    else:
        motion = [f"scale={work_w}:{work_h}:flags=bicubic", "format=yuv420p", zoom,
                  f"scale={spec.width}:{spec.height}:flags=bicubic"]
    labels = [
        f"drawtext={font_opt}:text=SIMULATED:fontsize={big}:fontcolor=white@0.85:borderw={max(1, big // 20)}"
        f":bordercolor=black@0.6:x=(w-tw)/2+sin(t*0.9)*w/8:y=(h-th)/2+sin(t*1.3)*h/6{after_first}",
        f"drawtext={font_opt}:textfile={_escape_path(prompt_file)}:expansion=none:fontsize={small}"
        f":fontcolor=white:line_spacing={small // 4}:box=1:boxcolor=black@0.55:boxborderw={small // 2}"
        f":x={small}:y={small}{after_first}",
        f"drawtext={font_opt}:textfile={_escape_path(label_file)}:expansion=none:fontsize={small}"
        f":fontcolor=white:box=1:boxcolor=black@0.55:boxborderw={small // 2}:x={small}:y=h-th-{small}{after_first}",
        f"drawtext={font_opt}:text='%{{pts\\:hms}}':fontsize={small}:fontcolor=white:box=1"
        f":boxcolor=black@0.55:boxborderw={small // 2}:x=w-tw-{small}:y=h-th-{small}{after_first}",
    ]
    # Planted faults as the text renderer plants them: a cut changes the zooming picture under the
    # labels, the others act on the finished frame.
    planted = parse_markers(spec.prompt, spec.duration)
    graph = [f"[0:v]{','.join(motion)}[bg]", *background_filters(planted, "bg", "shot"),
             f"[shot]{','.join(labels)}[pic]", *picture_filters(planted, FPS, "pic", "v")]
    tone = 220 + spec.seed % 440
    inputs, maps, audio_codec = ["-i", str(start_frame)], ["-map", "[v]"], []
    if has_audio(planted):
        graph.append(f"[1:a]{','.join(['aformat=channel_layouts=stereo', *audio_filters(planted)])}[a]")
        inputs += ["-f", "lavfi", "-i", f"sine=f={tone}:beep_factor=2:r={AUDIO_RATE}:d={spec.duration}"]
        maps += ["-map", "[a]"]
        audio_codec = [*AUDIO_CODEC]
    return [
        _ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        *inputs,
        "-filter_complex", ";".join(graph),
        *maps,
        "-t", str(spec.duration),
        "-c:v", "libx264", "-preset", "ultrafast", "-crf", str(CRF_BY_RESOLUTION.get(spec.resolution, 30)),
        "-pix_fmt", "yuv420p", "-threads", "1", "-g", str(FPS * 2),
        *audio_codec,
        "-fflags", "+bitexact", "-flags:v", "+bitexact",
        "-map_metadata", "-1", "-movflags", "+faststart",
        "-f", "mp4", str(out),
    ]


class ImageRenderer(Renderer):
    """The Renderer's cache, threads and de-duplication, drawing ``ImageRenderSpec``s."""

    def _render_now(self, spec: ImageRenderSpec) -> Path:  # type: ignore[override]
        from lab import image_input

        path = self.path_for(spec)
        if path.exists():
            return path
        with self._lock:
            self.renders += 1
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        font = ensure_font(self.cache_dir)
        with tempfile.TemporaryDirectory(prefix=".render-", dir=self.cache_dir) as work:
            work_dir = Path(work)
            start_frame = work_dir / "start.png"
            try:
                image_input.fit(spec.image_path, (spec.width, spec.height)).save(start_frame, format="PNG")
            except (image_input.ImageInputError, OSError, ValueError) as exc:
                raise RenderError(f"cannot prepare the reference image: {exc}") from exc
            label = (f"SIMULATED from image {spec.image_sha256[:8]}  seed {spec.seed}  {spec.model}  "
                     f"{spec.resolution} {spec.aspect_ratio}  {spec.duration}s")
            prompt_file, label_file = write_labels(spec.prompt, label, spec.width, spec.height, font, work_dir)
            with atomic_write(path) as out:
                partial = Path(out.name)
                command = image_ffmpeg_command(spec, start_frame, partial, font, prompt_file, label_file)
                result = subprocess.run(command, capture_output=True, text=True, errors="replace")
                if result.returncode != 0 or partial.stat().st_size == 0:
                    raise RenderError(f"ffmpeg failed ({result.returncode}): {result.stderr.strip()[-800:]}")
        return path
