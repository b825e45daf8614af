"""Named prompt + parameter bundles from ``presets/*.yaml``, one file each.

A preset file holds ``name``, an optional ``description`` and ``body``: a raw
request body exactly as the vendor's docs write it. The body goes through
``params.resolve`` like anything a user types, so a preset can never bypass
validation; ``tests/test_presets.py`` checks that every shipped one resolves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from lab.errors import LabError

PRESETS_DIR = Path(__file__).resolve().parent.parent / "presets"


class PresetError(LabError):
    """A preset file is missing, not YAML, or not shaped like a preset."""


@dataclass(frozen=True)
class Preset:
    """One preset: ``key`` is the file name without ``.yaml``; ``body`` a raw request body."""

    key: str
    name: str
    description: str
    body: Mapping[str, Any] = field(repr=False)


def _parse(path: Path) -> Preset:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PresetError(f"Preset {path.name} cannot be read: {exc}") from exc
    if not isinstance(data, dict):
        raise PresetError(f"Preset {path.name} must be a mapping with name and body")
    name, body = data.get("name"), data.get("body")
    if not isinstance(name, str) or not name.strip():
        raise PresetError(f"Preset {path.name} needs a 'name'")
    if not isinstance(body, dict):
        raise PresetError(f"Preset {path.name} needs a 'body' mapping (a request body as in the docs)")
    unknown = sorted(set(data) - {"name", "description", "body"})
    if unknown:
        raise PresetError(f"Preset {path.name}: unknown key {', '.join(unknown)}")
    return Preset(key=path.stem, name=name.strip(), description=str(data.get("description") or "").strip(), body=body)


def load_presets(directory: str | Path | None = None) -> list[Preset]:
    """Every ``*.yaml`` preset in ``directory`` (default: the repo's presets/), sorted by file name."""
    folder = Path(directory) if directory is not None else PRESETS_DIR
    if not folder.is_dir():
        return []
    presets = [_parse(path) for path in sorted(folder.glob("*.yaml"))]
    names = [p.name for p in presets]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise PresetError(f"Duplicate preset name {', '.join(duplicates)} in {folder}")
    return presets

