"""Image upload memory: the lab's streamed multipart body against requests' files=, side by side.

Run: .venv/bin/python bench/bench_upload.py [--mb 20]

Both POST the same image-sized file (default 20 MB, the API's limit) as
multipart/form-data to a local server that reads and discards the body.
Prints the peak Python memory of each (tracemalloc, all threads) and the ratio:
files= reads the file and builds the whole body in memory; lab.multipart reads
64 KiB at a time.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
import tracemalloc
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lab.multipart import MultipartBody  # noqa: E402

FIELDS = [("model", "veo-3.1-fast-generate-preview"), ("prompt", "a slow push-in"), ("seconds", "8")]


class Sink(BaseHTTPRequestHandler):
    received = 0

    def do_POST(self):  # noqa: N802 (http.server's naming)
        left = int(self.headers["Content-Length"])
        while left:
            chunk = self.rfile.read(min(left, 1 << 16))
            if not chunk:
                break
            left -= len(chunk)
            Sink.received += len(chunk)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def measure(send) -> tuple[float, float]:
    """(peak MiB, seconds) of one upload."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    started = time.perf_counter()
    send()
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=20.0, help="file size in MB (default 20)")
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/v1/videos"
    with tempfile.TemporaryDirectory() as work:
        image = Path(work) / "image.png"
        image.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(int(args.mb * 2**20)))

        def with_files() -> None:
            with open(image, "rb") as handle:
                requests.post(url, data=dict(FIELDS), files={"input_reference": ("image.png", handle, "image/png")},
                              timeout=60).raise_for_status()

        def streamed() -> None:
            with MultipartBody(FIELDS, "input_reference", image, "image.png", "image/png") as body:
                requests.post(url, data=body, headers={"Content-Type": body.content_type},
                              timeout=60).raise_for_status()

        files_peak, files_s = measure(with_files)
        stream_peak, stream_s = measure(streamed)
    server.shutdown()
    print(f"upload of a {args.mb:g} MB image as multipart/form-data ({Sink.received / 2**20:.1f} MiB received over both uploads)")
    print(f"  requests files=   peak {files_peak:7.2f} MiB  {files_s:6.3f} s")
    print(f"  lab.multipart     peak {stream_peak:7.2f} MiB  {stream_s:6.3f} s")
    print(f"  peak memory ratio files= / streamed: {files_peak / max(stream_peak, 1e-6):.0f}x "
          f"(files= holds {files_peak / args.mb:.1f}x the image)")


if __name__ == "__main__":
    main()
