"""Reference images for image-to-video: read, check, fingerprint, keep a copy, crop & scale.

A source is a file path or a ``data:`` URI (Base64), as the API accepts a file
upload or Base64 and never a remote URL. The type is read from the content
(magic bytes, then Pillow), never from the file name. Checks run before any
HTTP call and answer in plain words: a remote URL, an unreadable file, a file
over 20 MB, something that is not a JPEG/PNG/WebP image.

``inspect`` never raises (problems come back in ``ImageFacts.error``);
``load``/``keep`` raise ``ImageInputError``. ``resolve`` is
``params.resolve`` for a body that may name an image: it reads the image here,
once (``facts_for``), and passes its facts down, so ``params`` stays pure; a
caller that resolves the same image again (each row of a sweep, the kept copy)
passes the facts it has instead of reading again. No gradio, no HTTP.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import logging
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

from lab import params
from lab.datadir import DataDir, atomic_write
from lab.errors import RequestInvalid
from lab.params import IMAGE_FIELD, IMAGE_MAX_BYTES, ImageFacts

# Pillow's format names for the three types the API takes.
_PILLOW_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
# Other things people upload, named so the message says what the file is.
_OTHER_MAGIC = (
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"BM", "a BMP image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"%PDF", "a PDF document"),
    (b"\x00\x00\x01\x00", "an ICO icon"),
    (b"8BPS", "a Photoshop document"),
    (b"PK\x03\x04", "a ZIP archive"),
)
_HASH_CHUNK = 1 << 20
log = logging.getLogger(__name__)


class ImageInputError(RequestInvalid):
    """The reference image cannot be used; nothing was sent."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message, errors=[{"field": IMAGE_FIELD, "code": code, "message": message}])
        self.code = code


# ---------------------------------------------------------------- pure helpers


def source_kind(source: str) -> str:
    """"data" for a data: URI, "url" for anything with a scheme (http://, s3://, file://...), else "path"."""
    text = source.strip()
    if text[:5].lower() == "data:":
        return "data"
    if _URL.match(text):
        return "url"
    return "path"


def short_source(source: str) -> str:
    """The source as it can be shown and journalled: a data: URI shortened to its header and length."""
    text = source.strip()
    if source_kind(text) == "data":
        header = text.split(",", 1)[0][:60]
        return f"{header},... ({len(text):,} characters)"
    return text


def sniff(head: bytes) -> str | None:
    """The MIME type of a JPEG, PNG or WebP by its first bytes; None for anything else."""
    if head[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def describe_other(head: bytes) -> str:
    """What a file that is not a JPEG/PNG/WebP seems to be, for the error message."""
    for magic, name in _OTHER_MAGIC:
        if head.startswith(magic):
            return name
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"heic", b"heix", b"mif1", b"msf1", b"hevc"):
            return "a HEIC/HEIF image"
        if brand in (b"avif", b"avis"):
            return "an AVIF image"
        return "a video or other ISO media file"
    if head.lstrip()[:1] in (b"<", b"{", b"[") or (head and all(32 <= b < 127 or b in b"\r\n\t" for b in head)):
        return "text, not an image"
    return "not a JPEG, PNG or WebP image"


def _too_large_message(size: int) -> str:
    return (
        f"The image is {size / 2**20:.1f} MB; the limit is {IMAGE_MAX_BYTES // 2**20} MB. "
        "Save it smaller (e.g. as a JPEG at the video's size) and try again."
    )


def _facts_error(source: str, code: str, message: str, **known: Any) -> ImageFacts:
    return ImageFacts(source=short_source(source), error_code=code, error=message, **known)


def _check_with_pillow(opener: Any, sniffed: str) -> tuple[int, int, str | None]:
    """(width, height, problem) from Pillow; ``opener()`` gives a fresh file object."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(opener()) as image:
            width, height = image.size
            mime = _PILLOW_FORMATS.get(image.format or "")
            image.verify()  # structure and checksums (PNG CRCs), without decoding every pixel
    except Image.DecompressionBombError:
        return 0, 0, "The image has too many pixels to be a sensible reference frame; scale it down first."
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        return 0, 0, f"The file starts like {sniffed.split('/')[1].upper()} but cannot be read as an image ({exc})."
    if mime != sniffed:
        return width, height, f"The file's content does not decode as {sniffed}."
    if width < 1 or height < 1:
        return width, height, "The image has no pixels."
    return width, height, None


def inspect_bytes(data: bytes, source: str = "upload", *, path: str | None = None) -> ImageFacts:
    """Facts about image bytes (an upload, a decoded data: URI). Never raises."""
    size = len(data)
    if size > IMAGE_MAX_BYTES:
        return _facts_error(source, "too_large", _too_large_message(size), size_bytes=size)
    if size == 0:
        return _facts_error(source, "unreadable", "The image is empty (0 bytes).", size_bytes=0)
    mime = sniff(data[:16])
    if mime is None:
        what = describe_other(data[:16])
        return _facts_error(
            source, "unsupported_type",
            f"The image must be a JPEG, PNG or WebP (checked by its content); this is {what}.",
            size_bytes=size,
        )
    width, height, problem = _check_with_pillow(lambda: io.BytesIO(data), mime)
    if problem:
        return _facts_error(source, "not_an_image", problem, size_bytes=size, mime=mime)
    return ImageFacts(
        source=short_source(source), path=path, mime=mime, width=width, height=height,
        size_bytes=size, sha256=hashlib.sha256(data).hexdigest(),
    )


def decode_data_uri(source: str) -> bytes:
    """The bytes of a ``data:[type];base64,...`` URI. Raises ImageInputError."""
    text = source.strip()
    header, sep, payload = text.partition(",")
    if not sep:
        raise ImageInputError("The data: URI has no comma before its data (expected data:image/png;base64,...).", "bad_data_uri")
    if ";base64" not in header.lower():
        raise ImageInputError("Only Base64 data: URIs are accepted (data:image/png;base64,...).", "bad_data_uri")
    payload = re.sub(r"\s+", "", payload)
    # Refuse by length before decoding: Base64 is 4 characters per 3 bytes.
    if len(payload) * 3 // 4 > IMAGE_MAX_BYTES + 3:
        raise ImageInputError(_too_large_message(len(payload) * 3 // 4), "too_large")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ImageInputError("The data: URI's Base64 data is not valid Base64.", "bad_data_uri") from None


def inspect(source: Any) -> ImageFacts:
    """Facts about a path or data: URI. Never raises; a remote URL or a bad file gives ``error``."""
    if not isinstance(source, str) or not source.strip():
        shown = "" if not isinstance(source, str) else source
        return ImageFacts(source=shown, error_code="invalid_type",
                          error="input_reference must be a file path or a data: URI (Base64).")
    kind = source_kind(source)
    if kind == "url":
        return _facts_error(
            source, "remote_url",
            "Remote URLs are not accepted: the API takes a file upload or Base64 only. "
            "Download the image and give its path.",
        )
    if kind == "data":
        try:
            data = decode_data_uri(source)
        except ImageInputError as exc:
            return _facts_error(source, exc.code, exc.message)
        return inspect_bytes(data, source)
    return _inspect_path(Path(source.strip()).expanduser())


def _inspect_path(path: Path) -> ImageFacts:
    source = str(path)
    try:
        stat = path.stat()
    except FileNotFoundError:
        return _facts_error(source, "unreadable", f"No such file: {path}")
    except OSError as exc:
        return _facts_error(source, "unreadable", f"Cannot read {path}: {exc.strerror or exc}")
    if not path.is_file():
        return _facts_error(source, "unreadable", f"{path} is not a file.")
    if stat.st_size > IMAGE_MAX_BYTES:
        return _facts_error(source, "too_large", _too_large_message(stat.st_size), size_bytes=stat.st_size)
    if stat.st_size == 0:
        return _facts_error(source, "unreadable", f"{path} is empty (0 bytes).", size_bytes=0)
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
            digest.update(head)
            for chunk in iter(lambda: handle.read(_HASH_CHUNK), b""):
                digest.update(chunk)
    except OSError as exc:
        return _facts_error(source, "unreadable", f"Cannot read {path}: {exc.strerror or exc}")
    mime = sniff(head)
    if mime is None:
        return _facts_error(
            source, "unsupported_type",
            f"The image must be a JPEG, PNG or WebP (checked by its content, not its name); "
            f"{path.name} is {describe_other(head)}.",
            size_bytes=stat.st_size,
        )
    width, height, problem = _check_with_pillow(lambda: open(path, "rb"), mime)
    if problem:
        return _facts_error(source, "not_an_image", problem, size_bytes=stat.st_size, mime=mime)
    return ImageFacts(
        source=source, path=str(path.resolve()), mime=mime, width=width, height=height,
        size_bytes=stat.st_size, sha256=digest.hexdigest(),
    )


def facts_for(body: Any) -> ImageFacts | None:
    """What ``body``'s reference image is (one read), or None when it names none (or several: params says so)."""
    if not isinstance(body, Mapping) or IMAGE_FIELD not in body:
        return None
    value = body[IMAGE_FIELD]
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            return None
        value = value[0]
    if isinstance(value, Mapping):  # a wire body's file part: the file it names
        value = value.get("path")
    return inspect(value)


def resolve(body: Any, *, image: ImageFacts | None = None, multipart: bool | None = None) -> params.Resolution:
    """``params.resolve`` with the body's image read here, once (``image``: already read, not read again).

    Never raises.
    """
    if image is None:
        try:
            image = facts_for(body)
        except Exception:  # noqa: BLE001 - inspect never raises; a bug must not either (params reports the body)
            log.exception("could not read the reference image of a body")
    return params.resolve(body, image=image, multipart=multipart)


def load(source: Any) -> ImageFacts:
    """Like ``inspect``, but raises ImageInputError when the image cannot be used."""
    facts = inspect(source)
    if not facts.ok:
        raise ImageInputError(facts.error or "The image cannot be used.", facts.error_code or "invalid")
    return facts


# ---------------------------------------------------------------- the kept copy


def keep(source: Any, data_dir: Path, facts: ImageFacts | None = None) -> ImageFacts:
    """Copy the image to ``<data_dir>/images/<sha256>.<ext>`` (once per content); facts name the copy.

    History, re-run and compare use the copy, so they still work when the original moves
    or was a data: URI. ``facts``: what was already read of ``source`` (then a copy in place
    is not read again, and a new copy is checked against its sha256 as it is written).
    Raises ImageInputError.
    """
    facts = facts if facts is not None and facts.ok and facts.sha256 else load(source)
    target = DataDir(data_dir).image(facts.sha256, facts.extension)
    try:
        if not target.exists():
            if source_kind(source) == "data":
                data = decode_data_uri(source)
                if hashlib.sha256(data).hexdigest() != facts.sha256:
                    raise ImageInputError("The image changed while the lab read it; try again.", "unreadable")
                with atomic_write(target) as handle:
                    handle.write(data)
            else:
                with open(facts.path or source, "rb") as original, atomic_write(target) as handle:
                    _copy_checked(original, handle, facts.sha256)
    except OSError as exc:
        raise ImageInputError(f"Cannot keep a copy of the image in {target.parent}: {exc.strerror or exc}", "unwritable") from exc
    return ImageFacts(
        source=facts.source, path=str(target.resolve()), mime=facts.mime, width=facts.width,
        height=facts.height, size_bytes=facts.size_bytes, sha256=facts.sha256,
    )


def _copy_checked(source, target, sha256: str | None) -> None:
    """Copy while hashing: a file that changed since it was read is not kept under the old hash."""
    digest = hashlib.sha256()
    for chunk in iter(lambda: source.read(_HASH_CHUNK), b""):
        digest.update(chunk)
        target.write(chunk)
    if sha256 is not None and digest.hexdigest() != sha256:
        raise ImageInputError("The image changed while the lab read it; try again.", "unreadable")


# ---------------------------------------------------------------- crop & scale


def _size_tuple(size: str | tuple[int, int]) -> tuple[int, int]:
    if isinstance(size, str):
        parsed = params.parse_size(size)
        if parsed is None:
            raise ValueError(f"not a WIDTHxHEIGHT size: {size!r}")
        return parsed
    width, height = size
    return int(width), int(height)


def matches_size(facts: ImageFacts, size: str | tuple[int, int]) -> bool:
    """True when the image already has exactly the output's pixel size."""
    return (facts.width, facts.height) == _size_tuple(size)


def open_image(source: Any):
    """The image as a loaded Pillow image (first frame; EXIF orientation applied). Raises ImageInputError."""
    from PIL import Image, ImageOps

    facts = load(source)
    try:
        if source_kind(source) == "data":
            handle = io.BytesIO(decode_data_uri(source))
        else:
            handle = open(facts.path or source, "rb")
        with handle, Image.open(handle) as image:
            image.load()
            return ImageOps.exif_transpose(image)
    except OSError as exc:
        raise ImageInputError(f"Cannot decode the image: {exc}", "not_an_image") from exc


def fit(source: Any, size: str | tuple[int, int]):
    """Centre-crop to the output's aspect, then scale to exactly ``size`` (Pillow, Lanczos), as RGB.

    The same picture the simulator starts its video from, and what the UI offers to send.
    """
    from PIL import ImageOps

    width, height = _size_tuple(size)
    image = open_image(source)
    if image.mode not in ("RGB", "L"):
        # Transparent pixels become white rather than black: a product shot on a transparent
        # background should stay a product shot on white.
        from PIL import Image

        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        image = flat
    return ImageOps.fit(image.convert("RGB"), (width, height), method=3, centering=(0.5, 0.5))  # 3 = LANCZOS


def with_kept_image(body: Mapping[str, Any], data_dir: Path,
                    facts: ImageFacts | None = None) -> tuple[Mapping[str, Any], ImageFacts | None]:
    """``body`` naming the lab's own copy of its image (``keep``), so the journal and re-runs can rely on it,
    and the copy's facts.

    ``facts``: what was already read of the body's image (not read again). Returns ``body``
    itself (and ``facts``) when it names no usable image or already names its kept copy (an
    unusable one is for ``params.resolve`` to report). Raises ImageInputError when the copy
    cannot be written.
    """
    if not isinstance(body, Mapping) or IMAGE_FIELD not in body:
        return body, facts
    value = body[IMAGE_FIELD]
    if isinstance(value, (list, tuple)) and len(value) == 1:
        value = value[0]
    if not isinstance(value, str):
        return body, facts
    facts = facts if facts is not None else inspect(value)
    if not facts.ok:
        return body, facts
    kept = keep(value, data_dir, facts)
    if value == kept.path:
        return body, kept
    return {**body, IMAGE_FIELD: kept.path}, kept


def check_confined(body: Any, roots: Sequence[str | Path]) -> None:
    """Raise ImageInputError when ``body`` names an image file outside ``roots``.

    A web visitor may name only files the lab handed them (their uploads); a path
    anywhere else on the server must not be read, uploaded or even probed for existence.
    data: URIs are always fine. Nothing is opened here.
    """
    if not isinstance(body, Mapping) or IMAGE_FIELD not in body:
        return
    value = body[IMAGE_FIELD]
    for item in value if isinstance(value, (list, tuple)) else [value]:
        if not isinstance(item, str) or source_kind(item) != "path":
            continue
        try:
            real = Path(item.strip()).expanduser().resolve()
        except (OSError, RuntimeError, ValueError):
            real = None
        if real is None or not any(real.is_relative_to(Path(root).resolve()) for root in roots):
            raise ImageInputError(
                "Give the reference image with the image input or as a data: URI; "
                "a file path on the server is not accepted here.",
                "path_not_allowed",
            )
