"""The pre-screen, measured side by side in one run.

  cost       lab.prescreen.run.screen_file writing the proxy AND running the detectors from one
             decode vs the bare ffmpeg proxy encode of the same take (target <= 1.2x), on
             720p 8 s and 4k 8 s simulator takes (interleaved, median of --repeats)
  faults     simulator clips with planted faults (each kind at several times and lengths,
             mixed with clean takes): every planted fault found at its time within 0.25 s,
             and no badge on a clean take; prints the table
  bad input  not a video, a zero-length file, a file with no video stream, a 4k 8 s take:
             what the pre-screen records (it never raises)

Clips are rendered once into bench/out/prescreen/. Run: .venv/bin/python bench/bench_prescreen.py [--repeats N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lab import frames  # noqa: E402
from lab.compare import proxies  # noqa: E402
from lab.prescreen.run import screen_file  # noqa: E402
from lab.simulator.planted import parse_markers  # noqa: E402
from lab.simulator.render import Renderer, RenderSpec  # noqa: E402

OUT = ROOT / "bench" / "out" / "prescreen"
WITHIN_S = 0.25
# (prompt markers, duration): each kind at several times and lengths, and clean takes between them.
FAULT_CLIPS = [
    ("", 4), ("", 8), ("", 6),
    ("[sim:freeze@1-2]", 4), ("[sim:freeze@2.5-4.5]", 8), ("[sim:freeze@0.5-1.5]", 4), ("[sim:freeze@5-7.6]", 8),
    ("[sim:black@0-0.5]", 4), ("[sim:black@0-1.25]", 8), ("[sim:black@3-3.5]", 6),
    ("[sim:silence@1-2]", 4), ("[sim:silence@4.5-6]", 8), ("[sim:silent]", 4), ("[sim:noaudio]", 6),
    ("[sim:cut@1.5]", 4), ("[sim:cut@2] [sim:cut@5.5]", 8), ("[sim:cut@3.2]", 6),
    ("[sim:flicker@1-2]", 4), ("[sim:flicker@5-6]", 8), ("[sim:flicker@2-3]", 6),
    ("", 8), ("[sim:black@0-0.5] [sim:freeze@2-3] [sim:cut@5]", 8),
]


def render(renderer: Renderer, prompt: str, duration: int, seed: int, size=(1280, 720), resolution="720p") -> Path:
    return renderer.render(RenderSpec(prompt=prompt, seed=seed, model="veo-3.1-fast-generate-preview",
                                      resolution=resolution, aspect_ratio="16:9", duration=duration,
                                      width=size[0], height=size[1]))


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def bench_cost(clip: Path, repeats: int, work: Path) -> tuple[float, float]:
    combined, bare = [], []
    for _ in range(repeats):
        bare_cmd = [frames._ffmpeg_exe(), "-hide_banner", "-nostdin", *proxies.proxy_args(clip, work / "bare.mp4")]
        bare.append(timed(lambda: subprocess.run(bare_cmd, check=True, capture_output=True)))
        combined.append(timed(lambda: screen_file(clip, proxy=work / "screened.mp4")))
    return statistics.median(combined), statistics.median(bare)


def expected_hits(planted, screen) -> list[tuple[str, float, float | None, bool]]:
    """(kind, planted time, found time, within) for every planted fault."""
    rows = []
    for p in planted:
        if p.kind == "freeze":
            found = min((s.start for s in screen.frozen), key=lambda t: abs(t - p.start), default=None)
        elif p.kind == "black":
            found = min((s.start for s in screen.black), key=lambda t: abs(t - p.start), default=None)
        elif p.kind == "silence":
            found = min((s.start for s in screen.silent), key=lambda t: abs(t - p.start), default=None)
        elif p.kind == "silent":
            found = 0.0 if screen.whole_take_silent() else None
        elif p.kind == "noaudio":
            found = 0.0 if screen.has_audio is False else None
        elif p.kind == "cut":
            found = min(screen.cuts, key=lambda t: abs(t - p.start), default=None)
        elif p.kind == "flicker":
            # Flicker is told per second: the second the stretch starts in.
            found = float(screen.flicker_high[0]) if screen.flicker_high else None
            rows.append((p.kind, p.start, found, found is not None and int(p.start) in screen.flicker_high))
            continue
        else:
            continue
        start = 0.0 if p.kind in ("silent", "noaudio") else p.start
        rows.append((p.kind, start, found, found is not None and abs(found - start) <= WITHIN_S))
    return rows


def bench_faults(renderer: Renderer) -> bool:
    print(f"\n{'clip':<52} {'planted':<24} {'found (badges)':<56} ok")
    all_ok = True
    for number, (markers, duration) in enumerate(FAULT_CLIPS):
        prompt = f"a heron in the reeds, take {number} {markers}".strip()
        clip = render(renderer, prompt, duration, seed=100 + number)
        screen = screen_file(clip)
        planted = parse_markers(prompt, duration)
        hits = expected_hits(planted, screen)
        badges = [b.text for b in screen.badges()]
        # Every planted fault found at its time, and no badge beyond what was planted.
        kinds = {"freeze": "frozen", "black": "black", "silence": "silent", "silent": "silent",
                 "noaudio": "no_audio", "cut": "cut", "flicker": "flicker"}
        extra = [b.text for b in screen.badges() if b.kind not in {kinds[p.kind] for p in planted}]
        ok = all(h[3] for h in hits) and not extra and screen.ok
        all_ok &= ok
        planted_text = ", ".join(f"{h[0]}@{h[1]:g}" for h in hits) or "clean"
        print(f"{prompt[-50:]:<52} {planted_text:<24} {', '.join(badges) or 'no issues found':<56} "
              f"{'yes' if ok else 'NO'}")
    print(f"\nfaults: {len(FAULT_CLIPS)} clips, every planted fault found within {WITHIN_S} s and no badge on "
          f"a clean take: {'yes' if all_ok else 'NO'}")
    return all_ok


def bench_bad_input(work: Path, four_k: Path) -> None:
    not_video = work / "notes.mp4"
    not_video.write_text("not a video\n" * 100)
    empty = work / "empty.mp4"
    empty.write_bytes(b"")
    sound = work / "sound-only.mp4"
    subprocess.run([frames._ffmpeg_exe(), "-y", "-v", "error", "-f", "lavfi", "-i", "sine=d=2", "-c:a", "aac",
                    str(sound)], check=True)
    print("\nbad input (each returns, never raises):")
    for name, path in (("not a video", not_video), ("zero-length", empty), ("no video stream", sound),
                       ("4k 8 s", four_k)):
        started = time.perf_counter()
        screen = screen_file(path, proxy=work / "bad-proxy.mp4")
        print(f"  {name:<16} {time.perf_counter() - started:6.2f} s  "
              f"{screen.error or screen.summary()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    renderer = Renderer(OUT / "renders", workers=1)
    try:
        take_720 = render(renderer, "a lighthouse at dusk", 8, seed=3)
        take_4k = render(renderer, "a lighthouse at dusk", 8, seed=3, size=(3840, 2160), resolution="4k")
        with tempfile.TemporaryDirectory(prefix="bench-prescreen-") as tmp:
            work = Path(tmp)
            print("cost: proxy + pre-screen in one run vs the bare proxy encode (median of "
                  f"{args.repeats}, interleaved)")
            for name, clip in (("720p 8 s", take_720), ("4k 8 s", take_4k)):
                combined, bare = bench_cost(clip, args.repeats, work)
                print(f"  {name:<9} combined {combined:6.2f} s   bare proxy {bare:6.2f} s   "
                      f"ratio {combined / bare:.2f}x (target <= 1.2x)")
            bench_faults(renderer)
            bench_bad_input(work, take_4k)
    finally:
        renderer.close()


if __name__ == "__main__":
    main()
