"""Reference images: type by content, clear refusals, a content hash, the kept copy, crop & scale."""

from __future__ import annotations

import base64
import hashlib
import io
from pathlib import Path

import pytest
from PIL import Image

from lab import image_input
from lab.errors import RequestInvalid
from lab.image_input import ImageInputError
from lab.params import IMAGE_MAX_BYTES


def make_image(path: Path, size=(640, 480), fmt="PNG", colour=(200, 40, 40)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, format=fmt)
    return path


def data_uri(path: Path, mime="image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode()


@pytest.mark.parametrize("fmt, mime", [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp")])
def test_the_three_accepted_types_are_read_with_pixel_size_and_hash(tmp_path, fmt, mime):
    path = make_image(tmp_path / f"shot.{fmt.lower()}", size=(800, 450), fmt=fmt)
    facts = image_input.inspect(str(path))
    assert facts.ok, facts.error
    assert (facts.mime, facts.width, facts.height) == (mime, 800, 450)
    assert facts.size_bytes == path.stat().st_size
    assert facts.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert facts.path == str(path.resolve())


def test_type_comes_from_the_content_not_the_name(tmp_path):
    png_named_jpg = make_image(tmp_path / "photo.jpg", fmt="PNG")
    assert image_input.inspect(str(png_named_jpg)).mime == "image/png"

    gif_named_png = tmp_path / "anim.png"
    Image.new("RGB", (10, 10)).save(gif_named_png, format="GIF")
    facts = image_input.inspect(str(gif_named_png))
    assert facts.error_code == "unsupported_type"
    assert "GIF" in facts.error and "JPEG, PNG or WebP" in facts.error


def test_a_text_file_named_like_an_image_is_refused(tmp_path):
    fake = tmp_path / "frame.jpg"
    fake.write_text("not really a picture\n")
    facts = image_input.inspect(str(fake))
    assert facts.error_code == "unsupported_type"
    assert "text, not an image" in facts.error


def test_a_truncated_png_is_refused_before_any_upload(tmp_path):
    whole = make_image(tmp_path / "whole.png", size=(300, 300))
    Image.effect_noise((300, 300), 60).convert("RGB").save(whole)  # noise: big enough to cut in half
    cut = tmp_path / "cut.png"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    facts = image_input.inspect(str(cut))
    assert not facts.ok
    assert facts.error_code == "not_an_image"


@pytest.mark.parametrize("url", ["https://example.com/a.png", "http://x/y.jpg", "s3://bucket/key.png", "file:///tmp/a.png"])
def test_remote_urls_are_refused_with_the_reason(url):
    facts = image_input.inspect(url)
    assert facts.error_code == "remote_url"
    assert "Remote URLs are not accepted" in facts.error


def test_missing_and_directory_sources_say_what_is_wrong(tmp_path):
    missing = image_input.inspect(str(tmp_path / "nope.png"))
    assert missing.error_code == "unreadable" and "No such file" in missing.error
    folder = image_input.inspect(str(tmp_path))
    assert folder.error_code == "unreadable" and "not a file" in folder.error


def test_an_over_large_file_is_refused_without_reading_it(tmp_path):
    big = tmp_path / "huge.png"
    with open(big, "wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n")
        handle.truncate(IMAGE_MAX_BYTES + 1)  # sparse: nothing to read, only its size
    facts = image_input.inspect(str(big))
    assert facts.error_code == "too_large"
    assert "20 MB" in facts.error
    assert facts.size_bytes == IMAGE_MAX_BYTES + 1


def test_a_data_uri_is_decoded_and_checked_like_a_file(tmp_path):
    path = make_image(tmp_path / "a.png", size=(64, 36))
    facts = image_input.inspect(data_uri(path))
    assert facts.ok and (facts.width, facts.height, facts.mime) == (64, 36, "image/png")
    assert facts.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert facts.path is None  # nothing on disk until it is kept
    assert facts.source.startswith("data:image/png;base64,...") and "characters" in facts.source


@pytest.mark.parametrize(
    "uri, code",
    [
        ("data:image/png;base64,@@@not-base64@@@", "bad_data_uri"),
        ("data:image/png,rawbytes", "bad_data_uri"),
        ("data:image/png;base64", "bad_data_uri"),
        ("data:image/png;base64," + base64.b64encode(b"hello there").decode(), "unsupported_type"),
    ],
)
def test_bad_data_uris_are_refused(uri, code):
    assert image_input.inspect(uri).error_code == code


def test_an_over_large_data_uri_is_refused_before_decoding():
    uri = "data:image/png;base64," + "A" * (IMAGE_MAX_BYTES * 4 // 3 + 100)
    facts = image_input.inspect(uri)
    assert facts.error_code == "too_large"


def test_load_raises_a_request_error_naming_the_field(tmp_path):
    with pytest.raises(ImageInputError) as caught:
        image_input.load(str(tmp_path / "missing.webp"))
    assert isinstance(caught.value, RequestInvalid)
    assert caught.value.errors[0]["field"] == "input_reference"
    assert caught.value.code == "unreadable"


def test_keep_copies_once_per_content_under_images_with_the_real_extension(tmp_path):
    data_dir = tmp_path / "data"
    first = make_image(tmp_path / "in" / "one.jpg", fmt="PNG")  # a PNG despite the name
    second = tmp_path / "in" / "two.png"
    second.write_bytes(first.read_bytes())
    kept = image_input.keep(str(first), data_dir)
    again = image_input.keep(str(second), data_dir)
    assert kept.path == again.path
    assert Path(kept.path) == (data_dir / "images" / f"{kept.sha256}.png").resolve()
    assert Path(kept.path).read_bytes() == first.read_bytes()
    assert sorted(p.name for p in (data_dir / "images").iterdir()) == [f"{kept.sha256}.png"]


def test_keep_writes_a_data_uri_to_disk(tmp_path):
    path = make_image(tmp_path / "a.webp", fmt="WEBP")
    kept = image_input.keep(data_uri(path, "image/webp"), tmp_path / "data")
    assert kept.path.endswith(".webp")
    assert Path(kept.path).read_bytes() == path.read_bytes()


def test_fit_centre_crops_to_the_output_aspect_then_scales_exactly(tmp_path):
    square = Image.new("RGB", (1000, 1000), (0, 0, 255))
    square.paste((255, 0, 0), (0, 0, 1000, 200))  # a red band on top
    square.paste((0, 255, 0), (0, 800, 1000, 1000))  # a green band at the bottom
    path = tmp_path / "square.png"
    square.save(path)
    fitted = image_input.fit(str(path), "1280x720")
    assert fitted.size == (1280, 720)
    # The 16:9 centre of a square keeps rows 219..781: neither band survives.
    colours = {colour for _, colour in fitted.getcolors(1 << 16)}
    assert max(r for r, g, b in colours) < 10 and max(g for r, g, b in colours) < 10


def test_fit_flattens_transparency_onto_white(tmp_path):
    path = tmp_path / "clear.png"
    Image.new("RGBA", (160, 90), (0, 0, 0, 0)).save(path)
    fitted = image_input.fit(str(path), (320, 180))
    assert fitted.mode == "RGB" and fitted.getpixel((10, 10)) == (255, 255, 255)


def test_sniff_and_source_kind_are_pure():
    assert image_input.sniff(b"\xff\xd8\xff\xe0") == "image/jpeg"
    assert image_input.sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert image_input.sniff(b"GIF89a") is None
    assert image_input.source_kind("data:image/png;base64,AAAA") == "data"
    assert image_input.source_kind("C:\\pictures\\a.png") == "path"
    assert image_input.source_kind("HTTPS://x/a.png") == "url"
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, format="PNG")
    assert image_input.inspect_bytes(buffer.getvalue()).width == 4
