"""Faults planted in a simulated clip's picture and sound, chosen by markers in the prompt.

A real model's takes freeze, start on black, lose their sound, cut or flicker;
the lab's pre-screen (``lab.prescreen``) looks for exactly these. So tests and
benchmarks can choose them, a prompt may carry markers, each at a known time
(seconds from the start of the clip, decimals allowed):

==========================  =====================================================
marker                      what the clip gets
==========================  =====================================================
``[sim:freeze@2-3.5]``      the whole frame (clock included) stops from 2 s to 3.5 s
``[sim:black@0-0.5]``       a black frame from 0 s to 0.5 s (a black start)
``[sim:silence@1-2]``       the sound muted from 1 s to 2 s
``[sim:silent]``            the whole sound track muted (the stream is still there)
``[sim:noaudio]``           no audio stream at all
``[sim:cut@2]``             a hard cut at 2 s to a different picture (several cuts alternate)
``[sim:flicker@1-2]``       the brightness jumps up and down every frame from 1 s to 2 s
==========================  =====================================================

Markers are case-insensitive and may appear anywhere in the prompt (they are
also drawn on the frame with the rest of it). A malformed one (``[sim:freeze@x]``,
an unknown name, an end before its start) is plain text: it plants nothing.
Times past the clip's end are clipped to it. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

KINDS = ("freeze", "black", "silence", "silent", "noaudio", "cut", "flicker")
_RANGE_KINDS = ("freeze", "black", "silence", "flicker")
_NUMBER = r"\d+(?:\.\d+)?"
_MARKER = re.compile(
    rf"\[sim:(?P<kind>[a-z]+)(?:@(?P<start>{_NUMBER})(?:-(?P<end>{_NUMBER}))?)?\]", re.IGNORECASE)
# How strongly a flickering stretch changes brightness each frame (eq's brightness, -1..1):
# visible, but below what the cut detector takes for a new shot.
FLICKER_AMPLITUDE = 0.05


@dataclass(frozen=True)
class Planted:
    """One fault planted in a clip: ``kind`` from ``KINDS``; ``end`` is None for a cut and whole-track kinds."""

    kind: str
    start: float = 0.0
    end: float | None = None


def parse_markers(prompt: str, duration: float) -> tuple[Planted, ...]:
    """The faults ``prompt`` plants in a clip of ``duration`` seconds, in the order written."""
    planted = []
    for match in _MARKER.finditer(prompt or ""):
        kind = match["kind"].lower()
        start = float(match["start"]) if match["start"] else None
        end = float(match["end"]) if match["end"] else None
        if kind in _RANGE_KINDS:
            if start is None or end is None or end <= start or start >= duration:
                continue
            planted.append(Planted(kind, start, min(end, float(duration))))
        elif kind == "cut":
            if start is None or end is not None or not 0 < start < duration:
                continue
            planted.append(Planted(kind, start))
        elif kind in ("silent", "noaudio") and start is None:
            planted.append(Planted(kind))
    return tuple(planted)


def has_audio(planted: tuple[Planted, ...]) -> bool:
    return not any(p.kind == "noaudio" for p in planted)


def _window(p: Planted) -> str:
    return f"gte(t\\,{p.start:g})*lt(t\\,{p.end:g})"


def background_filters(planted: tuple[Planted, ...], base: str, out: str) -> list[str]:
    """filter_complex chains that turn the gradient ``[base]`` into ``[out]``: hard cuts, before the text.

    A cut switches to the same gradient mirrored and negated (a different picture in
    every pixel); each further cut switches back.
    """
    cuts = [p.start for p in planted if p.kind == "cut"]
    if not cuts:
        return [f"[{base}]null[{out}]"]
    switched = "+".join(f"gte(t\\,{t:g})" for t in sorted(cuts))
    return [
        f"[{base}]split[{base}_a][{base}_b]",
        f"[{base}_b]hflip,vflip,negate[{base}_other]",
        f"[{base}_a][{base}_other]overlay=enable='mod({switched}\\,2)'[{out}]",
    ]


def picture_filters(planted: tuple[Planted, ...], fps: int, source: str, out: str) -> list[str]:
    """filter_complex chains from the finished frame ``[source]`` to ``[out]``: black, flicker, then freezes."""
    chain = []
    for p in planted:
        if p.kind == "black":
            chain.append(f"drawbox=x=0:y=0:w=iw:h=ih:color=black:t=fill:enable='{_window(p)}'")
        elif p.kind == "flicker":
            chain.append(f"eq=brightness='{FLICKER_AMPLITUDE}*(2*mod(n\\,2)-1)*{_window(p)}':eval=frame")
    chains = [f"[{source}]{','.join(chain) or 'null'}[{source}_f0]"]
    current = f"{source}_f0"
    for number, p in enumerate(x for x in planted if x.kind == "freeze"):
        first = round(p.start * fps)
        last = max(first, round(p.end * fps) - 1)
        # Frames first..last all show the frame just before the freeze (or the first one).
        nxt = f"{source}_f{number + 1}"
        chains += [f"[{current}]split[{current}_a][{current}_b]",
                   f"[{current}_a][{current}_b]freezeframes=first={first}:last={last}:replace={max(0, first - 1)}[{nxt}]"]
        current = nxt
    chains.append(f"[{current}]null[{out}]")
    return chains


def audio_filters(planted: tuple[Planted, ...]) -> list[str]:
    """Audio filters (comma-joined into the sound's chain) that mute the planted stretches."""
    muted = []
    for p in planted:
        if p.kind == "silent":
            muted.append("volume=0")
        elif p.kind == "silence":
            muted.append(f"volume=0:enable='{_window(p)}'")
    return muted
