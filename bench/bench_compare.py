"""What the comparison grid costs, on 8 s 4k clips, measured side by side in one run.

  proxy      lab.compare.proxies.make_proxy (probe + encode + atomic rename) vs the bare ffmpeg
             command doing the same scale + encode (target <= 1.15x)
  bytes      what the grid loads (the proxies) vs the originals (target <= 15 %)
  ssim       every pair of 8 cells (28 pairs): lab.compare.similarity (one ffmpeg, each proxy
             decoded once) vs one ffmpeg process per pair

Clips: eight simulator renders (4k, 8 s, seeds 1-8; the simulator's picture is
smooth gradients, so its originals are small), and one detailed 4k clip
(testsrc2 + light film grain at 40 Mbit/s, a usual 4k delivery rate) for the bytes of a
busier picture. Everything is cached in bench/out/.
Run: .venv/bin/python bench/bench_compare.py [--repeats N]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lab import frames  # noqa: E402
from lab.compare import proxies, similarity  # noqa: E402
from lab.simulator.render import Renderer, RenderSpec  # noqa: E402

OUT = ROOT / "bench" / "out" / "compare"
CELLS = 8


def simulator_clips() -> list[Path]:
    renderer = Renderer(OUT / "renders", workers=1)
    specs = [RenderSpec(f"a lighthouse at dusk, take {seed}", seed, "veo-3.1-generate-preview", "4k", "16:9", 8,
                        3840, 2160) for seed in range(1, CELLS + 1)]
    try:
        return [renderer.render(spec) for spec in specs]
    finally:
        renderer.close()


def detailed_clip() -> Path:
    path = OUT / "detailed-4k-8s.mp4"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [frames._ffmpeg_exe(), "-y", "-v", "error",
             "-f", "lavfi", "-i", "testsrc2=size=3840x2160:rate=24:duration=8",
             "-f", "lavfi", "-i", "sine=frequency=440:duration=8",
             "-vf", "noise=alls=4:allf=t", "-c:v", "libx264", "-preset", "veryfast",
             "-b:v", "40M", "-maxrate", "40M", "-bufsize", "80M",
             "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path)],
            check=True, timeout=900,
        )
    return path


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def bench_proxy(clips: list[Path], repeats: int, work: Path) -> tuple[float, float]:
    lab_times, bare_times = [], []
    for _ in range(repeats):
        for clip in clips:
            bare_out = work / "bare.mp4"
            bare = [frames._ffmpeg_exe(), "-hide_banner", "-nostdin", *proxies.proxy_args(clip, bare_out)]
            # Interleaved, so both see the same machine load.
            bare_times.append(timed(lambda: subprocess.run(bare, check=True, capture_output=True)))
            lab_times.append(timed(lambda: proxies.make_proxy(clip, work / "lab.mp4")))
    return statistics.median(lab_times), statistics.median(bare_times)


def ssim_per_pair(videos: dict[str, Path]) -> None:
    for a, b in similarity.all_pairs(videos):
        similarity.measure_pairs({a: videos[a], b: videos[b]}, [(a, b)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    print("preparing clips (cached in bench/out/compare) ...", flush=True)
    clips = simulator_clips()
    detailed = detailed_clip()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        lab_s, bare_s = bench_proxy([clips[0], detailed], args.repeats, work)
        print(f"proxy of an 8 s 4k clip: lab {lab_s:.2f} s, bare ffmpeg {bare_s:.2f} s, ratio {lab_s / bare_s:.3f}x "
              f"(target <= 1.15x; median of {args.repeats * 2})")

        made = {f"cell{n}": proxies.make_proxy(clip, work / "proxies" / f"cell{n}.mp4") for n, clip in enumerate(clips)}
        originals = sum(c.stat().st_size for c in clips)
        loaded = sum(p.stat().st_size for p in made.values())
        print(f"grid bytes, 8 simulator 4k cells: proxies {loaded / 1e6:.2f} MB vs originals {originals / 1e6:.2f} MB "
              f"= {100 * loaded / originals:.1f} % (target <= 15 %)")
        detailed_proxy = proxies.make_proxy(detailed, work / "detailed.mp4")
        size, proxy_size = detailed.stat().st_size, detailed_proxy.stat().st_size
        print(f"grid bytes, detailed 4k clip: proxy {proxy_size / 1e6:.2f} MB vs original {size / 1e6:.2f} MB "
              f"= {100 * proxy_size / size:.1f} %")

        pairs = len(list(itertools.combinations(made, 2)))
        one_run = timed(lambda: similarity.measure_pairs(made, similarity.all_pairs(made)))
        per_pair = timed(lambda: ssim_per_pair(made))
        print(f"SSIM of all {pairs} pairs of {CELLS} cells: one ffmpeg {one_run:.1f} s, "
              f"one ffmpeg per pair {per_pair:.1f} s ({per_pair / one_run:.1f}x slower)")


if __name__ == "__main__":
    main()
