"""The sweep ZIP: videos, contact sheet and a manifest of each exact request, never the key."""

from __future__ import annotations

import json
import time
from dataclasses import replace
import zipfile
from pathlib import Path

import pytest

from lab import params
from lab.export import ExportError, export_zip
from lab.store import TaskRecord


def record(tmp_path: Path, task_id: str, seed: int, *, video: bool = True, prompt: str = "a fox") -> TaskRecord:
    body = params.with_seed({"model": params.FAST_MODEL, "prompt": prompt, "duration": "4"}, seed)
    resolution = params.resolve(body)
    path = None
    if video:
        path = tmp_path / f"{task_id}.mp4"
        path.write_bytes(b"\x00\x00\x00\x18ftypmp42 fake")
    now = time.time()
    return TaskRecord(task_id=task_id, created_at=now, updated_at=now, status="saved" if video else "failed",
                      model=params.FAST_MODEL, prompt=prompt, request=body, effective=resolution.effective,
                      wire=resolution.wire, seed=seed, video_path=str(path) if path else None,
                      cost_usd=0.30 if video else None, error=None if video else "blocked")


def test_zip_holds_videos_sheet_and_a_manifest_of_each_exact_request(tmp_path):
    sheet = tmp_path / "sheet.png"
    sheet.write_bytes(b"\x89PNG\r\n\x1a\n")
    records = [("seed 1", record(tmp_path, "task_a", 1)), ("seed 2", record(tmp_path, "task_b", 2, video=False))]
    out = export_zip(records, tmp_path / "out" / "sweep.zip", contact_sheet=sheet, sweep_id="sweep_x")
    with zipfile.ZipFile(out) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("manifest.json"))
    assert names == {"manifest.json", "contact_sheet.png", "videos/01_task_a.mp4"}
    assert [t["task_id"] for t in manifest["tasks"]] == ["task_a", "task_b"]
    assert manifest["tasks"][0]["wire"]["metadata"]["seed"] == 1 and manifest["tasks"][0]["video"] == "videos/01_task_a.mp4"
    assert manifest["tasks"][1]["status"] == "failed" and manifest["tasks"][1]["video"] is None
    assert manifest["total_cost_usd"] == pytest.approx(0.30)
    assert not list((tmp_path / "out").glob("*.part"))


def test_export_refuses_to_write_a_secret(tmp_path):
    leaky = record(tmp_path, "task_a", 1, prompt="sk-secret-123 in a prompt")
    with pytest.raises(ExportError, match="API key"):
        export_zip([(None, leaky)], tmp_path / "x.zip", secrets=["sk-secret-123"])
    assert not (tmp_path / "x.zip").exists()


def test_every_zip_entry_unpacks_as_rw_r_r_like_the_manifest(tmp_path):
    sheet = tmp_path / "sheet.png"
    sheet.write_bytes(b"\x89PNG\r\n\x1a\n")
    sheet.chmod(0o600)  # a private source file still unpacks readable, like the rest
    records = [("seed 1", record(tmp_path, "task_a", 1))]
    out = export_zip(records, tmp_path / "sweep.zip", contact_sheet=sheet)
    with zipfile.ZipFile(out) as archive:
        modes = {info.filename: (info.external_attr >> 16) & 0o777 for info in archive.infolist()}
        assert archive.read("contact_sheet.png") == b"\x89PNG\r\n\x1a\n"
        assert archive.read("videos/01_task_a.mp4").startswith(b"\x00\x00\x00\x18ftyp")
    assert modes == {"manifest.json": 0o644, "contact_sheet.png": 0o644, "videos/01_task_a.mp4": 0o644}


def test_a_sweep_over_one_reference_image_packs_the_image_once_and_names_it_per_task(tmp_path):
    image = tmp_path / "images" / "ab12cd.png"
    image.parent.mkdir()
    image.write_bytes(b"\x89PNG\r\n\x1a\n reference")
    records = []
    for number, seed in enumerate((1, 2), start=1):
        taken = record(tmp_path, f"task_{number}", seed)
        records.append((f"seed {seed}", replace(taken, image_path=str(image), image_sha256="ab12cd")))
    records.append(("text only", record(tmp_path, "task_3", 3)))
    out = export_zip(records, tmp_path / "sweep.zip")
    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
        manifest = json.loads(archive.read("manifest.json"))
        assert archive.read("images/ab12cd.png") == image.read_bytes()
    assert names.count("images/ab12cd.png") == 1
    assert [t["reference_image"] for t in manifest["tasks"]] == ["images/ab12cd.png", "images/ab12cd.png", None]
    assert [t["image_sha256"] for t in manifest["tasks"]] == ["ab12cd", "ab12cd", None]
