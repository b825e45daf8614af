"""The media work after each saved run, before and after dropping what no page showed.

  before  5 thumbnails + an animated WebP preview (12 frames) + a second probe of the video
          for its size and length (what Runner._thumbnails and Orchestrator._delivered did)
  after   5 thumbnails; the size and length come from the thumbnails' own scan

Both on the same clip, interleaved (before, after, before, ...), so a busy machine slows
both alike. Prints the medians and the time saved per saved run.
Run: .venv/bin/python bench/bench_saved_run.py [--repeats N] [--size 1280x720] [--seconds 8]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_thumbs import make_clip  # noqa: E402
from lab import frames  # noqa: E402
from lab.datadir import atomic_write  # noqa: E402

COUNT, WIDTH = 5, 320


def thumbnails(video: Path, out: Path) -> frames.VideoInfo:
    shots = frames.thumbnails(video, count=COUNT, width=WIDTH)
    for number, image in enumerate(shots.images, start=1):
        with atomic_write(out / f"thumb_{number}.jpg") as handle:
            image.convert("RGB").save(handle, format="JPEG", quality=85)
    return shots.info


def before(video: Path, out: Path) -> None:
    thumbnails(video, out)
    frames.animated_preview(video, out / "preview.webp")
    info = frames.probe(video)
    assert info.width > 0


def after(video: Path, out: Path) -> None:
    info = thumbnails(video, out)
    assert info.width > 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--seconds", type=int, default=8)
    args = parser.parse_args()
    video = make_clip(f"saved_run_{args.size}_{args.seconds}s.mp4", args.size, args.seconds)
    timings: dict[str, list[float]] = {"before": [], "after": []}
    with tempfile.TemporaryDirectory() as work:
        out = Path(work)
        after(video, out)  # warm the file cache and ffmpeg's first start
        for _ in range(args.repeats):
            for name, step in (("before", before), ("after", after)):
                start = time.perf_counter()
                step(video, out)
                timings[name].append(time.perf_counter() - start)
    old, new = statistics.median(timings["before"]), statistics.median(timings["after"])
    print(f"clip: {args.size}, {args.seconds} s, {args.repeats} rounds interleaved")
    print(f"before (thumbs + preview + probe): median {old * 1000:7.0f} ms")
    print(f"after  (thumbs only)             : median {new * 1000:7.0f} ms")
    print(f"saved per saved run              : {(old - new) * 1000:7.0f} ms ({old / new:.2f}x less work after)")


if __name__ == "__main__":
    main()
