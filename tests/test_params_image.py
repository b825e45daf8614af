"""The request core for image-to-video: the later i2v page's rules, each checked before any HTTP call."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from PIL import Image

from lab import params
# The image is read by the caller (image_input.resolve reads it once); params itself opens nothing.
from lab.image_input import resolve
from lab.params import FAST_MODEL, IMAGE_FIELD, ImageFacts

PROMPT = "The lighthouse lamp turns on as the camera rises"


@pytest.fixture
def still(tmp_path: Path) -> Path:
    path = tmp_path / "still.png"
    Image.new("RGB", (1280, 720), (20, 90, 160)).save(path)
    return path


def image_body(image, **fields):
    body = {"model": FAST_MODEL, "prompt": PROMPT, IMAGE_FIELD: str(image)}
    metadata = fields.pop("metadata", None)
    body.update(fields)
    if metadata is not None:
        body["metadata"] = metadata
    return body


def codes(resolution):
    return {(issue.field, issue.code) for issue in resolution.errors}


# --- the length: only `seconds` counts ---------------------------------------------------


def test_seconds_sets_the_length_of_an_image_request(still):
    result = resolve(image_body(still, seconds="8"))
    assert result.ok, result.errors
    assert result.effective["duration"] == "8"
    assert result.source["duration"] == "seconds"
    assert result.wire["seconds"] == "8" and "duration" not in result.wire


def test_without_seconds_an_image_request_is_4_seconds(still):
    result = resolve(image_body(still))
    assert result.effective["duration"] == "4"
    assert result.source["duration"] == "default"


def test_duration_alone_is_ignored_with_an_image_and_the_video_is_4_seconds(still):
    result = resolve(image_body(still, duration="8"))
    assert result.ok
    assert result.effective["duration"] == "4"
    assert result.wire["seconds"] == "4"
    warning = next(w for w in result.warnings if w.startswith('duration="8"'))
    assert "ignored in an image request" in warning and "4 s (the default)" in warning
    assert ("duration", "duration", "default") in {(o.setting, o.field, o.winner) for o in result.overrides}


def test_seconds_wins_and_duration_is_still_reported_as_ignored(still):
    result = resolve(image_body(still, duration="4", seconds="6"))
    assert result.effective["duration"] == "6"
    assert any(w.startswith('duration="4" is ignored') and "6 s" in w for w in result.warnings)


def test_metadata_duration_seconds_is_ignored_too(still):
    result = resolve(image_body(still, seconds="6", metadata={"durationSeconds": 8}))
    assert result.effective["duration"] == "6"
    assert any(w.startswith("metadata.durationSeconds=8 is ignored") for w in result.warnings)
    assert "durationSeconds" not in result.wire


def test_seconds_as_a_number_fails_like_the_api(still):
    result = resolve(image_body(still, seconds=8))
    assert ("seconds", "parse_request_failed") in codes(result)
    assert result.wire is None


def test_seconds_outside_4_6_8_is_refused(still):
    assert ("seconds", "invalid_value") in codes(resolve(image_body(still, seconds="5")))


@pytest.mark.parametrize("resolution", ["1080p", "4k"])
def test_1080p_and_4k_need_seconds_8(still, resolution):
    assert resolve(image_body(still, seconds="8", metadata={"resolution": resolution})).ok
    short = resolve(image_body(still, seconds="6", metadata={"resolution": resolution}))
    assert ("seconds", "duration_requires_8") in codes(short)


def test_the_trap_duration_8_at_1080p_with_an_image_is_an_error_naming_seconds(still):
    result = resolve(image_body(still, duration="8", metadata={"resolution": "1080p"}))
    assert ("seconds", "duration_requires_8") in codes(result)
    assert "only seconds sets the length" in result.error_text()


# --- the image itself -------------------------------------------------------------------


@pytest.mark.parametrize("url", ["https://example.com/still.png", "http://cdn/x.jpg"])
def test_a_remote_url_is_refused(url):
    result = resolve(image_body(url))
    assert (IMAGE_FIELD, "remote_url") in codes(result)


def test_a_second_image_is_refused_one_in_a_list_is_fine(still):
    assert (IMAGE_FIELD, "too_many_images") in codes(resolve(image_body(still) | {IMAGE_FIELD: [str(still)] * 2}))
    assert resolve(image_body(still) | {IMAGE_FIELD: [str(still)]}).ok


def test_a_gif_or_a_missing_file_is_refused(tmp_path):
    gif = tmp_path / "x.png"
    Image.new("RGB", (8, 8)).save(gif, format="GIF")
    assert (IMAGE_FIELD, "unsupported_type") in codes(resolve(image_body(gif)))
    assert (IMAGE_FIELD, "unreadable") in codes(resolve(image_body(tmp_path / "none.jpg")))


def test_a_data_uri_is_accepted(still):
    import base64

    uri = "data:image/png;base64," + base64.b64encode(still.read_bytes()).decode()
    result = resolve(image_body(uri))
    assert result.ok and result.image.width == 1280


def test_an_image_of_another_aspect_is_warned_with_the_crop_offer(tmp_path):
    square = tmp_path / "square.jpg"
    Image.new("RGB", (1024, 1024)).save(square)
    result = resolve(image_body(square))
    assert result.ok  # Veo's page does not say the size must match: warn, do not refuse
    assert any("1024x1024 (1:1)" in w and "Crop & scale it to 1280x720" in w for w in result.warnings)


def test_an_image_of_the_output_size_draws_no_size_warning(still):
    assert not any("Crop & scale" in w or "scaled" in w for w in resolve(image_body(still, metadata={"seed": 1})).warnings)


def test_the_same_aspect_at_another_size_is_only_scaled(tmp_path):
    small = tmp_path / "small.png"
    Image.new("RGB", (640, 360)).save(small)
    assert any("same aspect" in w for w in resolve(image_body(small)).warnings)


# --- the multipart wire ------------------------------------------------------------------


def test_the_wire_is_the_form_in_order_with_the_file_part(still):
    result = resolve(image_body(still, seconds="8", metadata={"seed": 7, "negativePrompt": "fog"}))
    assert result.transport == "multipart"
    assert list(result.wire) == ["model", "prompt", "seconds", "size", "resolution", "aspectRatio", "seed",
                                 "negativePrompt", IMAGE_FIELD]
    assert result.wire["seed"] == "7"  # form fields are text
    part = params.image_part(result.wire)
    assert part["path"] == str(still.resolve()) and part["content_type"] == "image/png"
    assert part["sha256"] == result.image.sha256
    assert params.is_multipart(result.wire)
    assert result.to_json()["transport"] == "multipart" and result.to_json()["image"]["width"] == 1280


def test_form_fields_the_gateway_does_not_know_go_into_metadata_as_numbers(still):
    result = resolve(image_body(still, seconds="8", resolution="1080p", seed="42"))
    assert result.ok
    assert result.effective["resolution"] == "1080p" and result.effective["seed"] == 42
    assert not any("Top-level field" in w for w in result.warnings)


def test_the_wire_resolves_again_to_the_same_request(still):
    first = resolve(image_body(still, seconds="6", metadata={"seed": 3, "aspectRatio": "9:16"}))
    again = resolve(first.wire)
    assert again.ok and again.effective == first.effective and again.wire == first.wire


def test_facts_from_the_caller_are_used_without_reading_anything():
    facts = ImageFacts(source="upload", mime="image/webp", width=720, height=1280, size_bytes=10, sha256="f" * 64)
    result = resolve({"model": FAST_MODEL, "prompt": PROMPT, IMAGE_FIELD: "(uploaded)"}, image=facts)
    assert result.ok and result.image is facts
    assert params.image_part(result.wire)["filename"] == "ffffffffffffffff.webp"


def test_multipart_without_an_image_reads_seconds_like_the_sdk_sends_it():
    result = resolve({"model": FAST_MODEL, "prompt": PROMPT, "seconds": "6", "duration": "8"}, multipart=True)
    assert result.effective["duration"] == "6" and result.transport == "multipart"
    assert IMAGE_FIELD not in result.wire


def test_a_text_request_is_unchanged_json(still):
    result = resolve({"model": FAST_MODEL, "prompt": PROMPT, "duration": "6"})
    assert result.transport == "json" and result.image is None
    assert result.effective["duration"] == "6" and result.to_json()["image"] is None


def test_build_body_takes_the_image(still):
    body = params.build_body(model=FAST_MODEL, prompt=PROMPT, seconds="8", input_reference=str(still))
    assert body[IMAGE_FIELD] == str(still) and resolve(body).ok


# --- copyable snippets -------------------------------------------------------------------


def test_curl_snippet_sends_a_form_with_the_file_and_no_key(still):
    wire = resolve(image_body(still, seconds="8", metadata={"seed": 1})).wire
    text = params.curl_snippet(wire, "http://127.0.0.1:9/v1")
    assert f"--form {shlex.quote(f'input_reference=@{still.resolve()};type=image/png')}" in text
    assert "--form-string seconds=8" in text  # text fields literally: a prompt starting with @ is not a file
    assert '"Authorization: Bearer $APIYI_API_KEY"' in text
    assert "application/json" not in text and "sk-" not in text
    assert shlex.split(text.replace("\\\n", " "))[0] == "curl"


def test_python_snippet_uses_files_and_reads_the_key_from_the_environment(still):
    wire = resolve(image_body(still, seconds="8")).wire
    text = params.python_snippet(wire)
    compile(text, "<snippet>", "exec")
    assert "files={\"input_reference\"" in text and "data=fields" in text
    assert "os.environ['APIYI_API_KEY']" in text and "json=" not in text


def test_form_preview_lists_the_fields_and_the_file(still):
    wire = resolve(image_body(still, seconds="8")).wire
    preview = params.form_preview(wire)
    assert preview.splitlines()[0] == "multipart/form-data"
    assert "  seconds=8" in preview and "input_reference=@" in preview and "image/png" in preview


def test_params_opens_no_file_a_body_naming_an_image_needs_the_facts_its_caller_read(still):
    result = params.resolve(image_body(still, seconds="8"))
    assert not result.ok and (IMAGE_FIELD, "not_read") in codes(result) and result.wire is None


def test_params_imports_nothing_of_the_lab():
    import ast

    tree = ast.parse(Path(params.__file__).read_text(encoding="utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not any(name == "lab" or name.startswith("lab.") for name in imported)
