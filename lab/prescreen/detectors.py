"""The detectors' filtergraph and the reading of what they print. Pure: arguments in, findings out.

One ffmpeg run decodes the take once: its frames are scaled as the grid's proxy
wants them (``lab.compare.proxies``), then split: one branch is encoded as the
proxy, the other feeds ``freezedetect``, ``blackdetect``, ``scdet`` and
``signalstats`` (whose ``YDIF`` is the mean absolute luma difference from the
previous frame: VBench's temporal-flicker measure, printed per frame by
``metadata=print``); the sound goes to the proxy and through ``silencedetect``.
The detectors log to stderr at ``info``; ``parse`` reads that text back.
"""

from __future__ import annotations

import re
import statistics
from collections import defaultdict

from lab.compare.proxies import SCALE
from lab.prescreen.findings import Screen, Stretch, Thresholds

# A cut within this of a black or frozen stretch's edge is the picture coming out of (or
# going into) it, already told by that badge.
EDGE_S = 0.1


# The detectors look at a small copy of the proxy's frames: a freeze, a black frame, a cut or
# flicker shows as well at 320 px, and 9x fewer pixels keep them cheap beside the proxy's encode.
DETECT_WIDTH = 320


def video_detectors(t: Thresholds) -> str:
    return ",".join([
        f"scale={DETECT_WIDTH}:-2:flags=area",
        f"freezedetect=n={t.freeze_noise_db:g}dB:d={t.freeze_min_s:g}",
        f"blackdetect=d={t.black_min_s:g}:pix_th={t.black_pixel:g}:pic_th={t.black_ratio:g}",
        f"scdet=threshold={t.cut_score:g}",
        "signalstats",
        "metadata=mode=print:key=lavfi.signalstats.YDIF",
    ])


def audio_detectors(t: Thresholds) -> str:
    return f"silencedetect=n={t.silence_db:g}dB:d={t.silence_min_s:g}"


def screen_args(source: str, thresholds: Thresholds, *, proxy: str | None, proxy_encode: list[str]) -> list[str]:
    """ffmpeg arguments (after the binary) for one run: the detectors, and the proxy at ``proxy`` if given.

    ``proxy_encode`` is the proxy's codec arguments (``lab.compare.proxies.ENCODE_ARGS``), so a
    proxy made here is the proxy Compare would make. ``0:a:0?`` keeps a take without sound working.
    """
    args = ["-nostats", "-v", "info", "-y", "-i", source]
    if proxy is None:
        args += ["-filter_complex", f"[0:v:0]{SCALE},{video_detectors(thresholds)}[detect]"]
    else:
        args += ["-filter_complex", f"[0:v:0]{SCALE},split[proxy][scan];[scan]{video_detectors(thresholds)}[detect]",
                 "-map", "[proxy]", "-map", "0:a:0?", "-sn", "-dn", "-map_metadata", "-1",
                 *proxy_encode, "-f", "mp4", proxy]
    args += ["-map", "[detect]", "-map", "0:a:0?", "-af", audio_detectors(thresholds), "-f", "null", "-"]
    return args


_NUM = r"(-?\d+(?:\.\d+)?(?:e-?\d+)?)"
_DURATION = re.compile(r"Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)")
_AUDIO = re.compile(r"Stream #0:\d+\S*:\s*Audio:")
_FREEZE_START = re.compile(rf"freezedetect\.freeze_start:\s*{_NUM}")
_FREEZE_END = re.compile(rf"freezedetect\.freeze_end:\s*{_NUM}")
_BLACK = re.compile(rf"black_start:\s*{_NUM}\s+black_end:\s*{_NUM}")
_SILENCE_START = re.compile(rf"silence_start:\s*{_NUM}")
_SILENCE_END = re.compile(rf"silence_end:\s*{_NUM}")
_CUT = re.compile(rf"lavfi\.scd\.score:\s*{_NUM},\s*lavfi\.scd\.time:\s*{_NUM}")
_FRAME = re.compile(rf"\bframe:\s*\d+\s+pts:\s*\S+\s+pts_time:\s*{_NUM}")
_YDIF = re.compile(rf"lavfi\.signalstats\.YDIF={_NUM}")


def input_duration(stderr: str) -> float | None:
    match = _DURATION.search(stderr)
    if not match:
        return None
    return int(match[1]) * 3600 + int(match[2]) * 60 + float(match[3])


def _pairs(stderr: str, start: re.Pattern, end: re.Pattern, duration: float | None) -> list[Stretch]:
    """Start/end lines in order into stretches; a start with no end runs to the end of the take."""
    stretches, opened = [], None
    for line in stderr.splitlines():
        if (m := start.search(line)) is not None:
            opened = float(m[1])
        elif (m := end.search(line)) is not None and opened is not None:
            stretches.append(Stretch(max(0.0, opened), float(m[1])))
            opened = None
    if opened is not None and duration is not None and duration > opened:
        stretches.append(Stretch(max(0.0, opened), duration))
    return stretches


def _frame_changes(stderr: str) -> list[tuple[float, float]]:
    """(frame time, YDIF) of every frame but the first (which has no previous frame)."""
    changes, at = [], None
    for line in stderr.splitlines():
        if (m := _FRAME.search(line)) is not None:
            at = float(m[1])
        elif (m := _YDIF.search(line)) is not None and at is not None:
            changes.append((at, float(m[1])))
    return changes[1:]


def _flicker_per_second(changes: list[tuple[float, float]], skip) -> list[float | None]:
    """Mean YDIF of each whole second, leaving out the frames ``skip(t)`` names (None: no frame left)."""
    by_second: dict[int, list[float]] = defaultdict(list)
    last = -1
    for at, value in changes:
        last = max(last, int(at))
        if not skip(at):
            by_second[int(at)].append(value)
    return [statistics.fmean(by_second[k]) if by_second.get(k) else None for k in range(last + 1)]


def _round(stretch: Stretch) -> Stretch:
    return Stretch(round(stretch.start, 3), round(stretch.end, 3))


def _inside(stretch: Stretch, others: list[Stretch]) -> bool:
    return any(o.start - EDGE_S <= stretch.start and stretch.end <= o.end + EDGE_S for o in others)


def parse(stderr: str, thresholds: Thresholds) -> Screen:
    """The findings in one run's stderr (an ``-v info`` run of ``screen_args``)."""
    duration = input_duration(stderr)
    black = [_round(Stretch(float(m[1]), float(m[2]))) for m in _BLACK.finditer(stderr)]
    # A black stretch is also a frozen one: the black badge already says it.
    frozen = [_round(s) for s in _pairs(stderr, _FREEZE_START, _FREEZE_END, duration) if not _inside(s, black)]
    silent = [_round(s) for s in _pairs(stderr, _SILENCE_START, _SILENCE_END, duration)]
    # Coming out of black or out of a freeze jumps the picture: that is the black or frozen badge, not a cut.
    edges = [t for s in (*black, *frozen) for t in (s.start, s.end)]
    cuts = [round(float(m[2]), 3) for m in _CUT.finditer(stderr)
            if not any(abs(float(m[2]) - e) <= EDGE_S for e in edges)]
    # Flicker is a sustained frame-to-frame change: the one-frame jump of a cut, or out of black
    # or a freeze, is told by its own badge, and a black stretch has no picture to flicker.
    jumps = [*cuts, *edges]

    def skip(t: float) -> bool:
        return any(0 <= t - j < EDGE_S for j in jumps) or any(s.start <= t < s.end for s in black)

    measured = _flicker_per_second(_frame_changes(stderr), skip)
    seconds = [v for v in measured if v is not None]
    high: list[int] = []
    if seconds:
        calmest = min(seconds)
        high = [k for k, v in enumerate(measured) if v is not None
                and v >= thresholds.flicker_mad and v >= thresholds.flicker_ratio * calmest]
        high.sort(key=lambda k: -measured[k])
    flicker = [0.0 if v is None else v for v in measured]
    return Screen(
        duration=duration,
        has_audio=bool(_AUDIO.search(stderr)),
        frozen=tuple(frozen),
        black=tuple(black),
        silent=tuple(silent),
        cuts=tuple(sorted(set(cuts))),
        flicker=tuple(flicker),
        flicker_high=tuple(high),
        thresholds=thresholds,
    )
