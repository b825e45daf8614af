"""The Seed sweep tab's estimate through its handler: the form is resolved once per keystroke, so its
reference image is read once however many seeds the sweep has, and the limit is the lab's."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pytest
from PIL import Image

from lab import image_input
from lab.settings import load_settings
from lab.ui import single, sweep
from lab.wiring import open_app


@pytest.fixture
def form(tmp_path):
    """The services (no HTTP needed), the two tabs, and an event's data: an image request and 3 seeds."""
    upload = Path(single.upload_folder()) / f"estimate-{tmp_path.name}"
    upload.mkdir(parents=True, exist_ok=True)
    still = upload / "still.png"
    Image.new("RGB", (1280, 720), (20, 90, 160)).save(still)
    services = open_app(load_settings({"LAB_DATA_DIR": str(tmp_path), "LAB_MAX_SWEEP": "4"}),
                        base_url="http://127.0.0.1:9/v1", api_key="sk-estimate-test")
    with gr.Blocks():
        single_tab = single.build(services.settings.models, [])
        sweep_tab = sweep.build(services.settings.max_sweep)
    values = {"model": services.settings.models[0], "prompt": "a lighthouse at dusk", "seconds": "8",
              "image": str(still), "raw_mode": False, "raw_body": ""}
    data = {component: values.get(name) for name, component in single_tab.form.fields.items()}
    data.update({sweep_tab.seeds: "1, 2, 3", sweep_tab.random_count: 0, sweep_tab.variants: ""})
    yield services, single_tab, sweep_tab, data
    services.close()
    still.unlink()
    upload.rmdir()


def test_the_sweep_estimate_reads_the_reference_image_once_per_keystroke(form, monkeypatch):
    services, single_tab, sweep_tab, data = form
    reads = []
    read = image_input._inspect_path
    monkeypatch.setattr(image_input, "_inspect_path", lambda path: reads.append(path) or read(path))
    shown = sweep.estimate(services, sweep_tab, single_tab, data)
    assert "3 tasks" in shown[sweep_tab.estimate] and shown[sweep_tab.run]["interactive"] is True
    assert len(reads) == 1


def test_the_sweep_estimate_refuses_past_the_labs_limit_not_the_pages(form):
    services, single_tab, sweep_tab, data = form
    shown = sweep.estimate(services, sweep_tab, single_tab, {**data, sweep_tab.seeds: "1, 2, 3, 4, 5"})
    assert "more than this lab allows at once (4)" in shown[sweep_tab.estimate]
    assert shown[sweep_tab.run]["interactive"] is False
