"""How often one keystroke reads the reference image: the sweep estimate and the single-run panel.

Counts whole reads of the image file (``image_input._inspect_path``: stat, read and sha256 of every
byte, Pillow's header check) while the Seed sweep tab's estimate handler runs once for a form with
an image and 3 seeds, and while the Single run panel refreshes once. Prints the counts and the time
per call, side by side. ``python bench/bench_image_reads.py``
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402
from PIL import Image  # noqa: E402

from lab import image_input  # noqa: E402
from lab.settings import load_settings  # noqa: E402
from lab.ui import single, sweep  # noqa: E402
from lab.wiring import open_app  # noqa: E402

reads = 0
_inspect_path = image_input._inspect_path


def counting(path):
    global reads
    reads += 1
    return _inspect_path(path)


image_input._inspect_path = counting


def main() -> None:
    global reads
    with tempfile.TemporaryDirectory() as data_dir:
        upload = Path(single.upload_folder()) / "bench-image-reads"
        upload.mkdir(parents=True, exist_ok=True)
        still = upload / "still.png"
        Image.effect_noise((1280, 720), 64).convert("RGB").save(still)  # ~2.7 MB: hashing it is real work
        services = open_app(load_settings({"LAB_DATA_DIR": data_dir}), base_url="http://127.0.0.1:9/v1",
                            api_key="sk-bench-image-reads")
        try:
            with gr.Blocks():
                single_tab = single.build(services.settings.models, [])
                sweep_tab = sweep.build(services.settings.max_sweep)
            values = {"model": services.settings.models[0], "prompt": "a lighthouse at dusk", "seconds": "8",
                      "image": str(still), "raw_mode": False, "raw_body": ""}
            data = {component: values.get(name) for name, component in single_tab.form.fields.items()}
            data.update({sweep_tab.seeds: "1, 2, 3", sweep_tab.random_count: 0, sweep_tab.variants: ""})
            rounds = 20
            results = {}
            for name, call in (
                ("sweep estimate (3 seeds)", lambda: sweep.estimate(services, sweep_tab, single_tab, data)),
                ("single-run panel", lambda: single.refresh_panel(services.access.snippet_base_url, single_tab,
                                                                  data)),
            ):
                call()
                reads = 0
                started = time.perf_counter()
                for _ in range(rounds):
                    call()
                results[name] = (reads / rounds, (time.perf_counter() - started) / rounds * 1000)
        finally:
            services.close()
            for path in upload.iterdir():
                path.unlink()
            upload.rmdir()
    for name, (per_call, ms) in results.items():
        print(f"{name:28s} {per_call:4.1f} image reads per keystroke  {ms:7.1f} ms per keystroke")


if __name__ == "__main__":
    main()
