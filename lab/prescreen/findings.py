"""What a pre-screen found in a take, and the short badges that say it. Pure: no I/O.

A ``Screen`` holds the stretches and moments each detector reported (seconds
from the start of the take) after the thresholds were applied, the flicker
measure per second, and whether the take has sound. ``badges()`` turns it into
what the page, the report and the CLI show ("frozen 2.1–3.4 s", "no audio",
"2 cuts", "flicker high at 5 s"), each with the time a click seeks to.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Mapping

# Badge kinds, in the order badges are shown.
KINDS = ("error", "black", "frozen", "cut", "flicker", "silent", "no_audio")

# What each badge means, for the page's legend and the report (keyed by kind).
MEANINGS = {
    "frozen": "The picture stops (every frame the same) for the stretch shown.",
    "black": "The frame is black (or nearly) for the stretch shown; a black start is common.",
    "silent": "The sound track is silent: the whole take (silent) or the stretch shown.",
    "no_audio": "The take has no sound track at all.",
    "cut": "A hard cut: the picture jumps to a different shot between two frames.",
    "flicker": "The brightness jumps from frame to frame: the mean frame-to-frame luma change "
               "(VBench's temporal-flicker measure) is high in the second shown.",
    "error": "The pre-screen could not read this take; the reason is in the badge's tooltip.",
}


@dataclass(frozen=True)
class Thresholds:
    """When a detector's finding becomes a badge. Settings ``screen_*`` (space.yaml, ``LAB_SCREEN_*``)."""

    # freezedetect: frames within noise_db of each other for at least min_s. An encoder's
    # keyframe re-codes a still picture with fresh noise (-60 to -50 dB), which ffmpeg's -60 dB
    # default takes for motion; -45 dB still sees a slow pan as moving.
    freeze_min_s: float = 0.8
    freeze_noise_db: float = -45.0
    # blackdetect: a pixel is black under black_pixel (0..1 of the range), a frame when
    # black_ratio of its pixels are; a stretch of black_min_s or more.
    black_min_s: float = 0.2
    black_pixel: float = 0.10
    black_ratio: float = 0.98
    # silencedetect: below silence_db for silence_min_s or more.
    silence_min_s: float = 0.5
    silence_db: float = -50.0
    # scdet: a scene-change score (0..100) at or above cut_score is a hard cut.
    cut_score: float = 10.0
    # Flicker: a second whose mean frame-to-frame luma change (0..255) is at least flicker_mad
    # and at least flicker_ratio times the take's calmest second (steady fast motion is not flicker).
    flicker_mad: float = 6.0
    flicker_ratio: float = 3.0

    def to_json(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> "Thresholds":
        known = {f.name for f in fields(cls)}
        return cls(**{k: float(v) for k, v in (data or {}).items() if k in known})


@dataclass(frozen=True)
class Stretch:
    start: float
    end: float

    @property
    def length(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Badge:
    """One short label on a take: ``at`` is where a click seeks (None: nowhere in particular)."""

    kind: str
    text: str
    at: float | None
    title: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def seconds(t: float) -> str:
    return f"{t:.1f}"


def span(stretch: Stretch) -> str:
    return f"{seconds(stretch.start)}–{seconds(stretch.end)} s"


@dataclass(frozen=True)
class Screen:
    """A take's pre-screen. ``error`` set means it could not run (the rest is empty)."""

    error: str | None = None
    duration: float | None = None
    has_audio: bool | None = None
    frozen: tuple[Stretch, ...] = ()
    black: tuple[Stretch, ...] = ()
    silent: tuple[Stretch, ...] = ()
    cuts: tuple[float, ...] = ()
    flicker: tuple[float, ...] = ()  # mean luma change (0..255) of each second
    flicker_high: tuple[int, ...] = ()  # seconds over the thresholds, worst first
    thresholds: Thresholds = field(default_factory=Thresholds)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def flicker_worst(self) -> int | None:
        if not self.flicker:
            return None
        return max(range(len(self.flicker)), key=lambda k: self.flicker[k])

    def whole_take_silent(self) -> bool:
        """Silence covering the whole take (within a frame or two at either end)."""
        if not self.silent or not self.duration:
            return False
        covered = sum(s.length for s in self.silent)
        return covered >= self.duration - 0.1

    def badges(self) -> list[Badge]:
        if self.error is not None:
            return [Badge("error", "not screened", None, f"The pre-screen could not run: {self.error}")]
        found: list[Badge] = []
        for s in self.black:
            found.append(Badge("black", f"black {span(s)}", s.start, MEANINGS["black"]))
        for s in self.frozen:
            found.append(Badge("frozen", f"frozen {span(s)}", s.start, MEANINGS["frozen"]))
        if self.cuts:
            times = ", ".join(f"{seconds(t)} s" for t in self.cuts)
            text = "1 cut" if len(self.cuts) == 1 else f"{len(self.cuts)} cuts"
            found.append(Badge("cut", text, self.cuts[0], f"Hard cut at {times}. {MEANINGS['cut']}"))
        if self.flicker_high:
            worst = self.flicker_high[0]
            found.append(Badge("flicker", f"flicker high at {worst} s", float(worst),
                               f"{MEANINGS['flicker']} Second {worst}: {self.flicker[worst]:.1f} (of 255)."))
        if self.has_audio is False:
            found.append(Badge("no_audio", "no audio", None, MEANINGS["no_audio"]))
        elif self.whole_take_silent():
            found.append(Badge("silent", "silent", 0.0, MEANINGS["silent"]))
        else:
            for s in self.silent:
                found.append(Badge("silent", f"silent {span(s)}", s.start, MEANINGS["silent"]))
        return found

    @property
    def issues(self) -> int:
        """How many badges a screened take has (0: no issues found); None-like -1 when not screened."""
        return -1 if self.error is not None else len(self.badges())

    def summary(self) -> str:
        """One line for a table: the badges' texts, or 'no issues found'."""
        badges = self.badges()
        return ", ".join(b.text for b in badges) if badges else "no issues found"

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "error": self.error,
            "duration": self.duration,
            "has_audio": self.has_audio,
            "frozen": [[s.start, s.end] for s in self.frozen],
            "black": [[s.start, s.end] for s in self.black],
            "silent": [[s.start, s.end] for s in self.silent],
            "cuts": list(self.cuts),
            "flicker": [round(v, 3) for v in self.flicker],
            "flicker_high": list(self.flicker_high),
            "issues": self.issues,
            "badges": [b.to_json() for b in self.badges()],
            "thresholds": self.thresholds.to_json(),
        }

    def to_text(self) -> str:
        return json.dumps(self.to_json(), ensure_ascii=False, allow_nan=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | str | None) -> "Screen | None":
        """A journalled screen (``to_json``'s dict or its text); None for nothing or what cannot be read."""
        if data is None or data == "":
            return None
        try:
            if isinstance(data, str):
                data = json.loads(data)
            stretches = lambda key: tuple(Stretch(float(a), float(b)) for a, b in data.get(key) or ())  # noqa: E731
            return cls(
                error=data.get("error"),
                duration=data.get("duration"),
                has_audio=data.get("has_audio"),
                frozen=stretches("frozen"),
                black=stretches("black"),
                silent=stretches("silent"),
                cuts=tuple(float(t) for t in data.get("cuts") or ()),
                flicker=tuple(float(v) for v in data.get("flicker") or ()),
                flicker_high=tuple(int(k) for k in data.get("flicker_high") or ()),
                thresholds=Thresholds.from_json(data.get("thresholds")),
            )
        except (TypeError, ValueError, AttributeError):
            return None
