"""How close lab.frames gets to the speed limit for 5 thumbnails (width 320).

Compares, in one run, on clips generated into bench/out/:
  lab        lab.frames.thumbnails (packet scan + one ffmpeg pass, all in)
  cli        the bare ffmpeg command doing the same select+scale pass with the
             frame indices already known: the practical limit
  decode_all imageio_ffmpeg.read_frames over every full-size frame, picking and
             resizing the same frames in Python: the naive way
Plus a 60 s 720p clip with a keyframe every 2 s, where lab.frames seeks
instead of decoding once (auto vs a forced single pass).

Targets on 4K: lab <= 1.15x cli, lab >= 4x faster than decode_all.
Run: .venv/bin/python bench/bench_thumbs.py [--repeats N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import imageio_ffmpeg  # noqa: E402
from PIL import Image  # noqa: E402

from lab import frames  # noqa: E402

OUT = ROOT / "bench" / "out"
COUNT, WIDTH = 5, 320


def make_clip(name: str, size: str, seconds: int, gop: int | None = None) -> Path:
    """testsrc2 + libx264 ultrafast; default GOP (250) means a single keyframe for 8 s."""
    path = OUT / name
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        gop_args = ["-g", str(gop)] if gop else []
        subprocess.run(
            [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-v", "error",
             "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=24:duration={seconds}",
             "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
             "-c:v", "libx264", "-preset", "ultrafast", *gop_args, "-pix_fmt", "yuv420p",
             "-c:a", "aac", "-shortest", str(path)],
            check=True, timeout=600,
        )
    return path


def wanted_indices(path: Path) -> tuple[list[int], tuple[int, int]]:
    info = frames._scan(path).info
    n = info.nframes
    idx = sorted({frames.frame_index(f * n / info.fps, info.fps, n) for f in frames.DEFAULT_FRACTIONS})
    return idx, frames._thumb_size(info, WIDTH)


def run_lab(path: Path) -> list[Image.Image]:
    return list(frames.thumbnails(path, count=COUNT, width=WIDTH).images)


def run_lab_single_pass(path: Path) -> list[Image.Image]:
    return frames.extract_at(path, fractions=frames.DEFAULT_FRACTIONS, width=WIDTH, strategy="single_pass")


def run_cli(path: Path, indices: list[int], size: tuple[int, int]) -> bytes:
    expr = "+".join(f"eq(n\\,{i})" for i in indices)
    proc = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-nostdin", "-i", str(path), "-an",
         "-vf", f"select='{expr}',scale={size[0]}:{size[1]}", "-fps_mode", "passthrough",
         "-frames:v", str(len(indices)), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True, check=True,
    )
    assert len(proc.stdout) == len(indices) * size[0] * size[1] * 3
    return proc.stdout


def run_decode_all(path: Path, indices: list[int], size: tuple[int, int]) -> list[Image.Image]:
    gen = imageio_ffmpeg.read_frames(str(path))
    meta = next(gen)
    wanted, picked = set(indices), []
    try:
        for n, raw in enumerate(gen):
            if n in wanted:
                picked.append(Image.frombytes("RGB", meta["size"], raw).resize(size, Image.Resampling.BICUBIC))
    finally:
        gen.close()
    assert len(picked) == len(indices)
    return picked


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median_time(fn, repeats: int) -> float:
    return statistics.median(timed(fn) for _ in range(repeats))


def interleaved(fns: dict[str, object], repeats: int) -> dict[str, list[float]]:
    """Run every method once per round, rotating the order, for ``repeats`` rounds.

    The box is shared and noisy; rounds put all methods under the same load, and
    ratios are taken per round before the median.
    """
    names = list(fns)
    times: dict[str, list[float]] = {name: [] for name in names}
    for k in range(repeats):
        for name in names[k % len(names):] + names[: k % len(names)]:
            times[name].append(timed(fns[name]))
    return times


def median_ratio(times: dict[str, list[float]], a: str, b: str) -> float:
    return statistics.median(x / y for x, y in zip(times[a], times[b], strict=True))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    clips = {
        "4K 8 s (1 keyframe)": make_clip("4k_8s.mp4", "3840x2160", 8),
        "720p 8 s (1 keyframe)": make_clip("720p_8s.mp4", "1280x720", 8),
    }
    long_clip = make_clip("720p_60s_g48.mp4", "1280x720", 60, gop=48)

    print(f"5 thumbnails, width {WIDTH}; {args.repeats} interleaved rounds; times are medians, "
          "ratios are medians of per-round ratios")
    print(f"{'clip':24} {'lab s':>8} {'cli s':>8} {'decode_all s':>13} {'lab/cli':>8} {'decode_all/lab':>15}"
          f" {'decode_all/cli':>15}")
    results = {}
    for label, path in clips.items():
        indices, size = wanted_indices(path)
        run_lab(path), run_cli(path, indices, size)  # warm the page cache and imports
        times = interleaved({
            "lab": lambda: run_lab(path),
            "cli": lambda: run_cli(path, indices, size),
            "decode_all": lambda: run_decode_all(path, indices, size),
        }, args.repeats)
        lab, cli, naive = (statistics.median(times[k]) for k in ("lab", "cli", "decode_all"))
        lab_per_cli, naive_per_lab = median_ratio(times, "lab", "cli"), median_ratio(times, "decode_all", "lab")
        naive_per_cli = median_ratio(times, "decode_all", "cli")  # the most any method could gain
        results[label] = (lab_per_cli, naive_per_lab)
        print(f"{label:24} {lab:8.3f} {cli:8.3f} {naive:13.3f} {lab_per_cli:7.2f}x {naive_per_lab:14.1f}x"
              f" {naive_per_cli:14.1f}x")

    run_lab(long_clip)
    auto = median_time(lambda: run_lab(long_clip), args.repeats)
    single = median_time(lambda: run_lab_single_pass(long_clip), 3)
    print(f"\n720p 60 s, keyframe every 2 s: lab auto (seeks) {auto:.3f} s, forced single pass {single:.3f} s, "
          f"single/auto {single / auto:.1f}x")

    lab_per_cli, naive_per_lab = results["4K 8 s (1 keyframe)"]
    ok_cli, ok_naive = lab_per_cli <= 1.15, naive_per_lab >= 4
    print(f"\n4K targets: lab/cli {lab_per_cli:.2f}x (<= 1.15x: {'PASS' if ok_cli else 'FAIL'}), "
          f"decode_all/lab {naive_per_lab:.1f}x (>= 4x: {'PASS' if ok_naive else 'FAIL'})")
    return 0 if ok_cli and ok_naive else 1


if __name__ == "__main__":
    sys.exit(main())
