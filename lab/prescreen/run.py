"""One ffmpeg run over a take: the detectors, and the grid's proxy from the same decode.

``screen_file`` never raises: a file that is not a video, an empty one or one
without a picture gives a ``Screen`` whose ``error`` says why.
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from pathlib import Path

from lab.compare.proxies import ENCODE_ARGS
from lab.datadir import atomic_write
from lab.errors import LabError, MediaError
from lab.frames import check_video_file, ffmpeg_error_line, run_ffmpeg
from lab.prescreen.detectors import parse, screen_args
from lab.prescreen.findings import Screen, Thresholds


def _timeout(source: Path) -> float:
    # Like the proxy's: only stops a hung run (a 4k take decodes in seconds on 2 cores).
    return 120.0 + 10.0 * source.stat().st_size / 1e6


def _why(stderr: str, source: Path) -> str:
    if "matches no streams" in stderr or "Stream specifier ':v:0'" in stderr:
        return f"no video stream in {source.name}"
    if "Input #0" not in stderr:
        return f"not a readable video: {ffmpeg_error_line(stderr)}"
    return ffmpeg_error_line(stderr)


def screen_file(source: str | os.PathLike, thresholds: Thresholds | None = None, *,
                proxy: str | os.PathLike | None = None, timeout: float | None = None) -> Screen:
    """Pre-screen ``source``; with ``proxy``, also write the grid's proxy there (atomically).

    A failed run leaves no proxy behind and returns the reason in ``Screen.error``.
    """
    thresholds = thresholds or Thresholds()
    try:
        source = check_video_file(source)
        with ExitStack() as stack:
            # ffmpeg writes the proxy by name; atomic_write syncs and renames that file, or drops it on an error.
            part = Path(stack.enter_context(atomic_write(proxy)).name) if proxy is not None else None
            args = screen_args(str(source), thresholds, proxy=str(part) if part else None,
                               proxy_encode=list(ENCODE_ARGS))
            proc = run_ffmpeg(args, path=source, timeout=timeout or _timeout(source))
            stderr = proc.stderr.decode("utf-8", "replace")
            if proc.returncode != 0:
                raise MediaError(_why(stderr, source))
            if part is not None and part.stat().st_size == 0:
                raise MediaError("ffmpeg wrote no proxy")
        return parse(stderr, thresholds)
    except LabError as exc:
        return Screen(error=str(exc), thresholds=thresholds)
    except OSError as exc:
        return Screen(error=f"could not write the proxy: {exc.strerror or exc}", thresholds=thresholds)
