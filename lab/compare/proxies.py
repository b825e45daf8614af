"""Light playback copies of saved runs: H.264, long side at most 960 px, faststart.

A comparison grid plays up to twelve videos at once; twelve 4k originals would
stall any laptop's decoder and download hundreds of megabytes. A proxy is made
once per run with the ffmpeg that imageio-ffmpeg ships and cached at
``<data_dir>/proxies/<task_id>.mp4``; the original stays where it is, one
click away.

The proxy keeps the original's frame rate and timing (no ``fps`` filter), so a
frame step in the player and a frame index in the similarity figures mean the
same frame as in the original. A keyframe every second keeps seeking (scrubbing,
frame steps) cheap for the browser. Written through ``datadir.atomic_write``,
so a reader sees a whole proxy or none.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from lab.client import safe_task_id
from lab.datadir import DataDir, atomic_write
from lab.errors import LabError, MediaError
from lab.frames import check_video_file, ffmpeg_error_line, run_ffmpeg

MAX_SIDE = 960
# Visually clean for a review grid at a tenth of the bytes of a typical 4k download.
CRF = 26
KEYFRAME_INTERVAL_S = 1.0
AUDIO_BITRATE = "64k"

SCALE = (f"scale='if(gte(iw,ih),min({MAX_SIDE},iw),-2)':'if(gte(iw,ih),-2,min({MAX_SIDE},ih))'"
         ":flags=bicubic,setsar=1")
# The proxy's codecs, shared with the pre-screen (lab.prescreen), which writes the same proxy
# from the decode its detectors ride on.
ENCODE_ARGS = (
    "-c:v", "libx264", "-preset", "veryfast", "-crf", str(CRF), "-pix_fmt", "yuv420p",
    "-force_key_frames", f"expr:gte(t,n_forced*{KEYFRAME_INTERVAL_S})",
    "-c:a", "aac", "-b:a", AUDIO_BITRATE, "-ac", "2",
    "-movflags", "+faststart",
)

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def proxy_path(data_dir: str | os.PathLike, task_id: str) -> Path:
    """Where the proxy of ``task_id`` lives (the id is checked to be a safe file name)."""
    try:
        name = safe_task_id(task_id)
    except LabError as exc:
        raise MediaError(str(exc)) from exc
    return DataDir(data_dir).proxy(name)


def proxy_args(source: str | os.PathLike, dest: str | os.PathLike) -> list[str]:
    """The ffmpeg arguments (after the binary) that turn ``source`` into a proxy at ``dest``.

    The scale expression never enlarges and keeps the aspect ratio with even
    sides, and keyframes are forced by time, so no probe is needed: the proxy
    costs one ffmpeg run.
    """
    return [
        "-v", "error", "-y", "-i", str(source),
        "-map", "0:v:0", "-map", "0:a:0?", "-sn", "-dn", "-map_metadata", "-1",
        "-vf", SCALE, *ENCODE_ARGS, "-f", "mp4", str(dest),
    ]


def make_proxy(source: str | os.PathLike, dest: str | os.PathLike, *, timeout: float | None = None) -> Path:
    """Encode a proxy of ``source`` at ``dest`` (replacing it atomically). Raises MediaError."""
    source = check_video_file(source)
    dest = Path(dest)
    if timeout is None:
        # Decoding 4k runs faster than real time on 2 cores, but a shared box can be far slower;
        # the limit only stops a hung encode, so it is generous (10 s per MB, 2 min at least).
        timeout = 120.0 + 10.0 * source.stat().st_size / 1e6
    try:
        with atomic_write(dest) as out:
            part = Path(out.name)  # ffmpeg writes by name; atomic_write syncs and renames the same file
            proc = run_ffmpeg(proxy_args(source, part), path=source, timeout=timeout)
            if proc.returncode != 0 or part.stat().st_size == 0:
                stderr = proc.stderr.decode("utf-8", "replace")
                raise MediaError(f"could not make a proxy of {source.name}: {ffmpeg_error_line(stderr)}")
    except OSError as exc:
        raise MediaError(f"could not write the proxy {dest}: {exc}") from exc
    return dest


def proxy_lock(key: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


def ensure_proxy(data_dir: str | os.PathLike, task_id: str, source: str | os.PathLike) -> Path:
    """The cached proxy of a run, made now if missing or older than the original.

    Threads asking for the same run wait for one encode; another process doing
    the same at once only costs a second encode (the rename is atomic).
    """
    dest = proxy_path(data_dir, task_id)
    source = check_video_file(source)
    with proxy_lock(str(dest)):
        try:
            if dest.is_file() and dest.stat().st_size > 0 and dest.stat().st_mtime >= source.stat().st_mtime:
                return dest
        except OSError:
            pass
        return make_proxy(source, dest)
