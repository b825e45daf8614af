"""A sweep (or any set of journalled runs) as one ZIP: videos, reference images, contact sheet, manifest.

The manifest records, per task, the exact request (the raw body and the wire
body that was POSTed), the task id and the result. It is built from journal
records, which never hold the API key; ``secrets`` is a last check that none
of the given strings appears anywhere in what is written.
"""

from __future__ import annotations

import json
import shutil
import time
import zipfile
from pathlib import Path
from typing import Any, Iterable, Sequence

from lab.datadir import atomic_write
from lab.errors import LabError
from lab.store import TaskRecord

MANIFEST_NAME = "manifest.json"
# Every entry unpacks as an ordinary readable file (rw-r--r--), whatever the mode of its source
# on disk; ``writestr`` alone would give the manifest 0600.
ENTRY_MODE = 0o644


class ExportError(LabError):
    """The ZIP could not be written, or would have contained a secret."""


def manifest_entry(record: TaskRecord, label: str | None = None, video_name: str | None = None,
                   image_name: str | None = None) -> dict[str, Any]:
    """One task in the manifest: what was asked (its reference image too), what was sent, what came back."""
    return {
        "label": label or record.variant_label,
        "task_id": record.task_id,
        "status": record.status,
        "request": record.request,
        "wire": record.wire,
        "effective": record.effective,
        "cost_usd": record.cost_usd,
        "elapsed_s": record.elapsed_s,
        "error": record.error,
        "video": video_name,
        "reference_image": image_name,
        "image_sha256": record.image_sha256,
        "backend": record.base_url_kind,
    }


def build_manifest(
    records: Sequence[tuple[str | None, TaskRecord]],
    *,
    contact_sheet_name: str | None = None,
    sweep_id: str | None = None,
) -> tuple[dict[str, Any], list[tuple[Path, str]]]:
    """The manifest and the (file, name in the zip) pairs of the videos and reference images that exist.

    A reference image shared by several tasks (a sweep over one image) is packed once, by its hash.
    """
    files: list[tuple[Path, str]] = []
    images: dict[str, str] = {}
    entries = []
    for number, (label, record) in enumerate(records, start=1):
        video_name = None
        if record.video_path and Path(record.video_path).is_file():
            video_name = f"videos/{number:02d}_{record.task_id}.mp4"
            files.append((Path(record.video_path), video_name))
        image_name = None
        if record.image_path and Path(record.image_path).is_file():
            source = Path(record.image_path)
            image_name = images.get(str(source))
            if image_name is None:
                image_name = images[str(source)] = f"images/{source.name}"
                files.append((source, image_name))
        entries.append(manifest_entry(record, label, video_name, image_name))
    manifest = {
        "sweep_id": sweep_id,
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "contact_sheet": contact_sheet_name,
        "total_cost_usd": round(sum(r.cost_usd or 0.0 for _, r in records), 2),
        "tasks": entries,
    }
    return manifest, files


def _entry(name: str, source: Path | None = None, compress_type: int = zipfile.ZIP_DEFLATED) -> zipfile.ZipInfo:
    """A regular-file entry with mode ``ENTRY_MODE`` (and the source's time, when there is one)."""
    info = zipfile.ZipInfo.from_file(source, name) if source is not None else zipfile.ZipInfo(
        name, time.localtime(time.time())[:6])
    info.external_attr = (0o100000 | ENTRY_MODE) << 16  # S_IFREG | rw-r--r--
    info.compress_type = compress_type
    return info


def export_zip(
    records: Iterable[tuple[str | None, TaskRecord]],
    out_path: str | Path,
    *,
    contact_sheet: str | Path | None = None,
    sweep_id: str | None = None,
    secrets: Iterable[str | None] = (),
) -> Path:
    """Write the ZIP at ``out_path``; ``records`` are (label, record) pairs in row order."""
    records = list(records)
    sheet = Path(contact_sheet) if contact_sheet and Path(contact_sheet).is_file() else None
    sheet_name = f"contact_sheet{sheet.suffix}" if sheet else None
    manifest, files = build_manifest(records, contact_sheet_name=sheet_name, sweep_id=sweep_id)
    text = json.dumps(manifest, ensure_ascii=False, indent=2)
    for secret in secrets:
        if secret and secret in text:
            raise ExportError("Refusing to export: the manifest would contain the API key.")
    out_path = Path(out_path)
    try:
        with atomic_write(out_path) as out, zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(_entry(MANIFEST_NAME), text)
            # PNG, JPEG, WebP and MP4 are already compressed: store them.
            for path, name in ([(sheet, sheet_name)] if sheet is not None else []) + files:
                with path.open("rb") as source, archive.open(_entry(name, path, zipfile.ZIP_STORED), "w") as target:
                    shutil.copyfileobj(source, target, 1 << 20)
    except OSError as exc:
        raise ExportError(f"Could not write {out_path.name}: {exc}") from exc
    return out_path
