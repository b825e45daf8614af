"""How alike two takes are: SSIM from ffmpeg's own ``ssim`` filter, per frame, per second, overall.

Measured on the proxies (the originals may be 4k; the figure does not need
it), both scaled to one analysis size per pair: half the smaller proxy's
sides, 480x270 for two 16:9 runs. SSIM is meant to be taken at a viewing
scale, not at full resolution, and a quarter of the pixels makes all 66
pairs of twelve cells affordable. Two takes of different aspect are stretched
to the same frame; their figure says "very different", which is the truth.

All pairs of a set go through ONE ffmpeg process: each proxy is decoded
once and split to every pair it belongs to, each pair's ``ssim`` filter writes
its per-frame stats file. Results are cached per pair of task ids in
``<data_dir>/similarity/`` (a saved run's video never changes).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from lab.datadir import DataDir, atomic_write
from lab.errors import MediaError
from lab.frames import VideoInfo, ffmpeg_error_line, probe, run_ffmpeg

# Bump when the measurement changes, so old cached figures are not served.
METHOD_VERSION = 1
MIN_ANALYSIS_SIDE = 32

_STATS_LINE = re.compile(r"n:(\d+)\s.*?All:([0-9.]+|inf|nan)")


@dataclass(frozen=True)
class PairSimilarity:
    """SSIM of two runs: mean and minimum over frames, and the mean of each second."""

    a: str  # task id
    b: str
    ssim_mean: float
    ssim_min: float
    timeline: tuple[float, ...]  # timeline[k]: mean SSIM of the frames shown in second k
    frames: int

    def to_json(self) -> dict:
        return {"a": self.a, "b": self.b, "ssim_mean": self.ssim_mean, "ssim_min": self.ssim_min,
                "timeline": list(self.timeline)}


def parse_stats(text: str) -> list[float]:
    """Per-frame ``All`` values from an ``ssim`` stats file, in frame order."""
    values: dict[int, float] = {}
    for line in text.splitlines():
        match = _STATS_LINE.search(line)
        if match:
            value = float(match.group(2))
            values[int(match.group(1))] = 1.0 if math.isinf(value) else value
    return [values[n] for n in sorted(values)]


def summarize(a: str, b: str, per_frame: Sequence[float], fps: float) -> PairSimilarity:
    """Mean, minimum and per-second means of per-frame SSIM values."""
    if not per_frame:
        raise MediaError(f"ffmpeg measured no common frames of {a} and {b}")
    fps = fps if fps and fps > 0 else 24.0
    seconds: dict[int, list[float]] = {}
    for n, value in enumerate(per_frame):
        seconds.setdefault(int(n / fps + 1e-9), []).append(value)
    timeline = tuple(round(sum(v) / len(v), 4) for _, v in sorted(seconds.items()))
    return PairSimilarity(
        a=a, b=b,
        ssim_mean=round(sum(per_frame) / len(per_frame), 4),
        ssim_min=round(min(per_frame), 4),
        timeline=timeline,
        frames=len(per_frame),
    )


def analysis_size(first: VideoInfo, second: VideoInfo) -> tuple[int, int]:
    """The frame both videos of a pair are scaled to: half the smaller sides, even."""
    def side(x: int, y: int) -> int:
        return max(MIN_ANALYSIS_SIDE, min(x, y) // 4 * 2)
    return side(first.width, second.width), side(first.height, second.height)


def measure_pairs(
    videos: Mapping[str, str | os.PathLike],
    pairs: Sequence[tuple[str, str]],
    *,
    timeout: float | None = None,
) -> list[PairSimilarity]:
    """SSIM of each (task_id, task_id) pair, from ``videos`` (task id -> proxy), in one ffmpeg run."""
    if not pairs:
        return []
    ids = sorted({t for pair in pairs for t in pair})
    missing = [t for t in ids if t not in videos]
    if missing:
        raise ValueError(f"no video given for {', '.join(missing)}")
    infos = {t: probe(videos[t]) for t in ids}
    uses = {t: sum(t in pair for pair in pairs) for t in ids}
    chains, inputs = [], []
    branch = {t: 0 for t in ids}
    for number, task_id in enumerate(ids):
        inputs += ["-i", str(Path(videos[task_id]).resolve())]
        labels = "".join(f"[s{number}_{k}]" for k in range(uses[task_id]))
        chains.append(f"[{number}:v:0]setpts=PTS-STARTPTS,split={uses[task_id]}{labels}")
    index = {t: n for n, t in enumerate(ids)}
    for k, (a, b) in enumerate(pairs):
        width, height = analysis_size(infos[a], infos[b])
        for side, task_id in (("a", a), ("b", b)):
            chains.append(f"[s{index[task_id]}_{branch[task_id]}]scale={width}:{height}:flags=area,setsar=1,"
                          f"format=yuv420p[p{k}{side}]")
            branch[task_id] += 1
        # Every pair's output must be consumed; the last one feeds the null muxer ffmpeg needs.
        sink = "[out]" if k == len(pairs) - 1 else ",nullsink"
        chains.append(f"[p{k}a][p{k}b]ssim=stats_file=pair{k}.txt:shortest=1{sink}")
    longest = max(info.duration for info in infos.values())
    if timeout is None:
        timeout = 60.0 + 2.0 * longest * len(pairs) ** 0.5 * len(ids)
    with tempfile.TemporaryDirectory(prefix="lab-ssim-") as work:
        # Stats files are named relative to the working directory: no path escaping in the graph.
        proc = run_ffmpeg(
            ["-v", "error", *inputs, "-filter_complex", ";".join(chains), "-map", "[out]", "-f", "null", "-"],
            path=Path(videos[ids[0]]), timeout=timeout, cwd=work,
        )
        if proc.returncode != 0:
            stderr = proc.stderr.decode("utf-8", "replace")
            raise MediaError(f"ffmpeg could not measure similarity: {ffmpeg_error_line(stderr)}")
        results = []
        for k, (a, b) in enumerate(pairs):
            stats = Path(work, f"pair{k}.txt")
            text = stats.read_text(encoding="ascii", errors="replace") if stats.is_file() else ""
            results.append(summarize(a, b, parse_stats(text), infos[a].fps))
    return results


def _cache_file(data_dir: Path, a: str, b: str) -> Path:
    return DataDir(data_dir).similarity_pair(a, b)


def _read_cached(path: Path, a: str, b: str) -> PairSimilarity | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("version") != METHOD_VERSION:
            return None
        return PairSimilarity(a=a, b=b, ssim_mean=float(data["ssim_mean"]), ssim_min=float(data["ssim_min"]),
                              timeline=tuple(float(v) for v in data["timeline"]), frames=int(data["frames"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_cached(path: Path, result: PairSimilarity) -> None:
    with atomic_write(path, "w", encoding="utf-8") as handle:
        json.dump({**asdict(result), "version": METHOD_VERSION}, handle)


def all_pairs(task_ids: Iterable[str]) -> list[tuple[str, str]]:
    """Every unordered pair of distinct ids, each in canonical order."""
    unique = sorted(set(task_ids))
    return list(itertools.combinations(unique, 2))


def similarity_matrix(
    data_dir: str | os.PathLike,
    videos: Mapping[str, str | os.PathLike],
    *,
    timeout: float | None = None,
    cached_only: bool = False,
) -> list[PairSimilarity]:
    """Every pair of ``videos`` (task id -> proxy): cached pairs read, the rest measured in one run.

    ``cached_only``: the cached pairs alone, nothing measured (for a quick refresh).
    """
    data_dir = Path(data_dir)
    results, todo = {}, []
    for a, b in all_pairs(videos):
        cached = _read_cached(_cache_file(data_dir, a, b), a, b)
        if cached is None:
            todo.append((a, b))
        else:
            results[(a, b)] = cached
    for result in ([] if cached_only else measure_pairs(videos, todo, timeout=timeout)):
        try:
            _write_cached(_cache_file(data_dir, result.a, result.b), result)
        except OSError:
            pass  # a read-only data dir only costs a re-measure next time
        results[(result.a, result.b)] = result
    return [results[pair] for pair in all_pairs(videos) if pair in results]
