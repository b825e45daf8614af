"""Presets: every shipped one loads, resolves cleanly, and covers what the lab promises."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab import params
from lab.presets import PresetError, load_presets

PRESETS = load_presets()


def test_presets_are_shipped():
    assert len(PRESETS) >= 7


@pytest.mark.parametrize("preset", PRESETS, ids=[p.key for p in PRESETS])
def test_every_preset_resolves_ok(preset):
    resolution = params.resolve(preset.body)
    assert resolution.ok, resolution.error_text()


@pytest.mark.parametrize("preset", PRESETS, ids=[p.key for p in PRESETS])
def test_every_preset_states_its_fields_consistently(preset):
    # A preset demonstrates settings, not precedence puzzles: size and metadata agree.
    resolution = params.resolve(preset.body)
    assert not [w for w in resolution.warnings if "overridden" in w]


def test_vendor_examples_are_there():
    lighthouse = preset_by_name(PRESETS, "Lighthouse at dusk")
    assert params.resolve(lighthouse.body).effective["seed"] == 20260521
    assert "golden retriever" in preset_by_name(PRESETS, "Golden retriever on the beach").body["prompt"]
    watercolor = params.resolve(preset_by_name(PRESETS, "Watercolor northern lights (portrait, 4 s)").body)
    assert (watercolor.effective["duration"], watercolor.effective["aspect_ratio"]) == ("4", "9:16")


def test_demo_presets_cover_the_settings_people_ask_for():
    effective = [params.resolve(p.body).effective for p in PRESETS]
    combos = {(e["model"], e["resolution"], e["aspect_ratio"], e["duration"]) for e in effective}
    assert (params.STANDARD_MODEL, "1080p", "16:9", "8") in combos
    assert (params.STANDARD_MODEL, "4k", "16:9", "8") in combos
    assert (params.FAST_MODEL, "720p", "16:9", "4") in combos
    assert any(aspect == "9:16" and duration == "8" for _, _, aspect, duration in combos)


def test_aspect_ratios_survive_yaml_as_text():
    # Unquoted 16:9 is a base-60 integer in YAML 1.1; every preset must quote it.
    for preset in PRESETS:
        assert isinstance(preset.body.get("metadata", {}).get("aspectRatio", ""), str)
        assert isinstance(preset.body.get("duration", ""), str)


def test_a_broken_preset_names_its_file(tmp_path: Path):
    (tmp_path / "bad.yaml").write_text("name: x\nbody: [1, 2]\n", encoding="utf-8")
    with pytest.raises(PresetError, match="bad.yaml"):
        load_presets(tmp_path)


def preset_by_name(presets, name: str):
    (preset,) = [p for p in presets if p.name == name]
    return preset
