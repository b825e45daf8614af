"""The simulator's image-to-video: a real MP4 that starts on the reference image, then moves."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from image_helpers import picture, ssim_of_frame

from lab import frames, image_input
from lab.params import FAST_MODEL
from lab.simulator.render_image import ImageRenderer, ImageRenderSpec, work_size


def spec_for(image: Path, sha: str = "ab" * 32, **changes) -> ImageRenderSpec:
    fields = dict(prompt="the camera pushes in slowly", seed=7, model=FAST_MODEL, resolution="720p",
                  aspect_ratio="16:9", duration=4, width=1280, height=720, image_path=str(image), image_sha256=sha)
    fields.update(changes)
    return ImageRenderSpec(**fields)


def test_the_first_frame_is_the_image_cropped_and_scaled_then_it_moves(tmp_path):
    source = picture(tmp_path / "in.png")
    renderer = ImageRenderer(tmp_path / "cache", workers=1)
    try:
        video = renderer.render(spec_for(source))
    finally:
        renderer.close()
    info = frames.probe(video)
    assert (info.width, info.height, info.fps, info.has_audio) == (1280, 720, 24.0, True)
    assert abs(info.duration - 4.0) < 0.1
    fitted = tmp_path / "fitted.png"
    image_input.fit(str(source), "1280x720").save(fitted)
    first = ssim_of_frame(video, fitted, 0)
    later = ssim_of_frame(video, fitted, 90)
    assert first > 0.97, first
    assert later < first - 0.05, (first, later)  # zoomed in, with the SIMULATED labels drawn


def test_renders_are_cached_by_image_content_not_its_path(tmp_path):
    source = picture(tmp_path / "a" / "in.png")
    moved = tmp_path / "b" / "same.png"
    moved.parent.mkdir()
    shutil.copyfile(source, moved)
    renderer = ImageRenderer(tmp_path / "cache", workers=1)
    try:
        first = renderer.render(spec_for(source, duration=4))
        second = renderer.render(spec_for(moved, duration=4))
        assert first == second and renderer.renders == 1
        assert spec_for(source).key() != spec_for(source, sha="cd" * 32).key()
    finally:
        renderer.close()


def test_a_portrait_clip_from_a_landscape_image(tmp_path):
    source = picture(tmp_path / "in.png", size=(1200, 700))
    renderer = ImageRenderer(tmp_path / "cache", workers=1)
    try:
        video = renderer.render(spec_for(source, aspect_ratio="9:16", width=720, height=1280))
    finally:
        renderer.close()
    info = frames.probe(video)
    assert (info.width, info.height) == (720, 1280)


def test_zoom_works_on_a_smaller_copy_above_1080p():
    assert work_size(1280, 720) == (1280, 720)
    assert work_size(3840, 2160) == (1920, 1080)
    assert work_size(2160, 3840) == (1080, 1920)


def test_an_unreadable_image_fails_the_render_not_the_server(tmp_path):
    from lab.simulator.render import RenderError

    renderer = ImageRenderer(tmp_path / "cache", workers=1)
    try:
        with pytest.raises(RenderError, match="reference image"):
            renderer.render(spec_for(tmp_path / "gone.png"))
    finally:
        renderer.close()
