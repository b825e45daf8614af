"""Peak memory while downloading a 4k video: the lab's streamed download vs reading the body whole.

A real 4k 8 s clip from the simulator (3840x2160, H.264 + AAC) is padded with an
MP4 ``free`` box to a realistic size (default 256 MiB; players and ffmpeg skip
the box), then served by a separate process (``python -m http.server``) so the
server's memory is not counted. In this process, RSS is sampled every 5 ms
in a thread (VmRSS from /proc/self/status, and VmHWM reset per phase through
/proc/self/clear_refs where the kernel allows it):

1. idle: everything imported, the client made, nothing downloading;
2. ``VideosClient.download`` (1 MiB chunks to a .part file, verify, rename);
3. the naive ``requests.get(url).content`` for contrast.

Target: phase 2 peak within ~30 MB of idle, whatever the file size.

    .venv/bin/python bench/bench_download.py [--pad-mib 256]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lab import params  # noqa: E402
from lab.client import VideosClient  # noqa: E402
from lab.simulator.server import SimConfig, SimulatorServer  # noqa: E402

KEY = "sk-bench"
TASK = "task_bench4k"


def status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class RssSampler:
    """Samples VmRSS every ``interval`` s in a thread; ``peak_kib`` is the highest seen."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, status_kib("VmRSS"))
            time.sleep(self.interval)

    def __enter__(self) -> "RssSampler":
        self.peak_kib = status_kib("VmRSS")
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_kib = max(self.peak_kib, status_kib("VmRSS"))


def render_4k(work: Path) -> Path:
    """A real 4k 8 s clip from the simulator (fast model, 16:9)."""
    body = {"model": params.FAST_MODEL, "prompt": "bench: 4k download", "duration": "8", "metadata": {"resolution": "4k", "seed": 4}}
    with SimulatorServer(SimConfig(time_scale=1.0, fixed_generation_s=0.0, render_cache=work / "cache")) as sim:
        client = VideosClient(sim.base_url, KEY)
        task = client.submit(params.resolve(body).wire)
        client.wait(task.task_id, deadline_s=600)
        return client.download(task.task_id, work / "clip4k.mp4", expected_size="3840x2160", expected_duration="8")


def pad(clip: Path, out: Path, pad_mib: int) -> None:
    """``clip`` followed by a top-level MP4 ``free`` box of ``pad_mib`` MiB (written in 1 MiB blocks)."""
    size = pad_mib * 1024 * 1024
    block = bytes(1024 * 1024)
    with open(out, "wb") as f, open(clip, "rb") as src:
        while chunk := src.read(1024 * 1024):
            f.write(chunk)
        f.write((size + 8).to_bytes(4, "big") + b"free")
        for _ in range(pad_mib):
            f.write(block)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pad-mib", type=int, default=256, help="padding added to the clip (default 256 MiB)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-download-"))
    print("rendering a 4k 8 s clip with the simulator...", flush=True)
    clip = render_4k(work)
    served = work / "root" / "v1" / "videos" / TASK / "content"
    served.parent.mkdir(parents=True)
    pad(clip, served, args.pad_mib)
    size_mib = served.stat().st_size / 2**20
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(work / "root")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        base_url = f"http://127.0.0.1:{port}/v1"
        for _ in range(100):
            try:
                requests.head(f"{base_url}/videos/{TASK}/content", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.05)
        client = VideosClient(base_url, KEY)
        dest = work / "out" / f"{TASK}.mp4"

        # Warm up: imports, connection pool, a first verify (ffmpeg is a child process).
        client.download(TASK, dest, expected_size="3840x2160", expected_duration="8")
        dest.unlink()

        reset_peak()
        with RssSampler() as idle:
            time.sleep(0.5)
        idle_mib = idle.peak_kib / 1024

        can_reset = reset_peak()
        t0 = time.monotonic()
        with RssSampler() as streamed:
            client.download(TASK, dest, expected_size="3840x2160", expected_duration="8", max_bytes=2 * 1024**3)
        stream_s = time.monotonic() - t0
        hwm_stream = status_kib("VmHWM") / 1024 if can_reset else None
        assert dest.stat().st_size == served.stat().st_size

        reset_peak()
        with RssSampler() as naive:
            data = requests.get(f"{base_url}/videos/{TASK}/content", headers={"Authorization": f"Bearer {KEY}"}, timeout=180).content
            assert len(data) == served.stat().st_size
            del data

        print(f"\nfile: 3840x2160, 8 s, {size_mib:.0f} MiB ({clip.stat().st_size / 2**20:.1f} MiB of clip + padding)")
        print(f"idle RSS                     {idle_mib:7.1f} MiB")
        print(f"lab download (streamed) peak {streamed.peak_kib / 1024:7.1f} MiB   (+{streamed.peak_kib / 1024 - idle_mib:.1f} MiB over idle, "
              f"{stream_s:.1f} s incl. verify)" + (f"; VmHWM {hwm_stream:.1f} MiB" if hwm_stream else ""))
        print(f"naive .content peak          {naive.peak_kib / 1024:7.1f} MiB   (+{naive.peak_kib / 1024 - idle_mib:.1f} MiB over idle)")
        growth = streamed.peak_kib / 1024 - idle_mib
        print(f"ratio of growth naive/lab    {(naive.peak_kib / 1024 - idle_mib) / max(growth, 0.1):7.1f}x")
        print("PASS (flat: within 30 MB of idle)" if growth <= 30 else "MISSED: download grew memory by more than 30 MB")
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
