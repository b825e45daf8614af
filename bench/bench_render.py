"""How fast the simulator renders its MP4s: render time / playback time for 8 s clips.

    .venv/bin/python bench/bench_render.py [--runs 3] [--sizes 720p,1080p,4k]

Each run renders into a fresh, empty cache (no cache hits), one render at a
time, exactly as a simulated task does. Prints the median per size; the ratio
that matters is render/playback (below 1 means faster than real time);
CPU seconds of ffmpeg are printed too, since wall time varies on a shared machine.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lab.params import FAST_MODEL, PIXEL_SIZES, parse_size  # noqa: E402
from lab.simulator.render import Renderer, RenderSpec  # noqa: E402

DURATION_S = 8
PROMPT = ("A coastal lighthouse at dusk, slow push-in, waves lapping the rocks, distant seabirds, "
          "cinematic lighting, steady camera")


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def render_seconds(resolution: str, seed: int) -> tuple[float, float, int]:
    """(wall seconds, ffmpeg CPU seconds, file bytes) for one fresh render."""
    width, height = parse_size(PIXEL_SIZES[(resolution, "16:9")])
    spec = RenderSpec(PROMPT, seed, FAST_MODEL, resolution, "16:9", DURATION_S, width, height)
    with tempfile.TemporaryDirectory(prefix="bench-render-") as cache:
        renderer = Renderer(Path(cache), workers=1)
        try:
            cpu_before, started = _children_cpu_s(), time.perf_counter()
            path = renderer.render(spec)
            elapsed = time.perf_counter() - started
            return elapsed, _children_cpu_s() - cpu_before, path.stat().st_size
        finally:
            renderer.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sizes", default="720p,1080p,4k")
    args = parser.parse_args(argv)
    render_seconds("720p", 0)  # warm-up: page in ffmpeg and the font
    # Wall time is what a task waits; CPU time is the cost, and steadier on a busy machine.
    print(f"{'size':>6} {'wall s':>7} {'render/playback':>16} {'cpu s':>6} {'cpu/playback':>13} {'MB':>5}   wall runs")
    for resolution in args.sizes.split(","):
        results = [render_seconds(resolution, seed) for seed in range(1, args.runs + 1)]
        wall = statistics.median(r[0] for r in results)
        cpu = statistics.median(r[1] for r in results)
        megabytes = statistics.median(r[2] for r in results) / 1e6
        runs = " ".join(f"{r[0]:.2f}" for r in results)
        print(f"{resolution:>6} {wall:7.2f} {wall / DURATION_S:16.3f} {cpu:6.2f} {cpu / DURATION_S:13.3f} {megabytes:5.1f}   {runs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
