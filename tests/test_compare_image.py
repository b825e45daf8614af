"""Compare marks the reference image as a difference when the runs' images differ."""

from __future__ import annotations

from image_helpers import picture

from lab import image_input, params
from lab.compare import set as compare
from lab.store import Store


def journal(store: Store, task_id: str, body: dict) -> None:
    store.record_submitted(task_id, image_input.resolve(body), body, "sweep_images")


def test_runs_from_different_images_differ_on_image_and_text_runs_say_no_image(tmp_path):
    data = tmp_path / "data"
    first = image_input.keep(str(picture(tmp_path / "a.png", ground=(10, 10, 10))), data)
    second = image_input.keep(str(picture(tmp_path / "b.png", ground=(200, 200, 10))), data)
    base = {"model": params.FAST_MODEL, "prompt": "a slow push-in", "seconds": "4", "metadata": {"seed": 1}}
    with Store(data / "journal.sqlite3") as store:
        journal(store, "task_imageA", {**base, "input_reference": first.path})
        journal(store, "task_imageB", {**base, "input_reference": second.path})
        journal(store, "task_imageA2", {**base, "input_reference": first.path})
        images = compare.load_set(store, ["task_imageA", "task_imageB"])
        same = compare.load_set(store, ["task_imageA", "task_imageA2"])
    assert "image" in images.cells[0].differs
    assert images.cells[0].fields["image"] == first.sha256
    assert "image" not in same.cells[0].differs
    shown = compare.player_data(images, {})["cells"][1]["fields"]["image"]
    assert shown == f"image {second.sha256[:8]}"
    assert compare.field_text("image", None) == "no image"


def test_history_detail_names_the_image_by_hash_not_by_server_path(tmp_path):
    from lab import presentation as pres

    data = tmp_path / "data"
    kept = image_input.keep(str(picture(tmp_path / "a.png")), data)
    body = {"model": params.FAST_MODEL, "prompt": "p", "seconds": "4", "input_reference": kept.path}
    with Store(data / "journal.sqlite3") as store:
        journal(store, "task_history", body)
        text = pres.history_detail(store.get("task_history"))
    assert f"`{kept.sha256[:12]}…`" in text
    assert kept.path not in text and str(data) not in text
