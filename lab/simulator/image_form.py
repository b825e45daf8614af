"""Reading a multipart ``POST /v1/videos`` as the gateway does (image-to-video, or the openai SDK's form).

new-api's multipart path (contract §0, §1.3): ``model``, ``prompt``, ``seconds``,
``size`` are read as the request's own fields; ``duration`` is a known field
and dropped (the later i2v page: "silently ignored"); a ``metadata`` field may
hold a JSON object; any other field goes into metadata. ``input_reference`` is
a file upload or Base64 text (a data: URI or bare Base64), never a URL; of
several, only the first is kept; over 20 MB is refused. The image's type is
read from its bytes with ``lab.image_input`` (the lab's own check, so the two
cannot drift). The upload is kept by content under ``<cache>/uploads`` for the
renderer.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request

from lab import image_input
from lab.datadir import atomic_write
from lab.params import IMAGE_FIELD, IMAGE_MAX_BYTES, ImageFacts

MAX_FIELDS = 64
MAX_FILES = 8
# Headers and text fields on top of the image: a body over this is refused before it is read.
FORM_OVERHEAD_BYTES = 1 << 20


@dataclass
class ImageForm:
    """A read form: the body to resolve and the image, or why the gateway refuses it (``status``, ``message``)."""

    body: dict[str, Any] = field(default_factory=dict)
    image: ImageFacts | None = None
    status: int | None = None
    code: str = "invalid_request"
    message: str | None = None


def _refuse(status: int, message: str, code: str = "invalid_request") -> ImageForm:
    return ImageForm(status=status, code=code, message=message)


def _keep_upload(data: bytes, facts: ImageFacts, upload_dir: Path) -> ImageFacts:
    target = upload_dir / f"{facts.sha256}.{facts.extension}"
    if not target.exists():
        with atomic_write(target) as handle:
            handle.write(data)
    return ImageFacts(source="upload", path=str(target), mime=facts.mime, width=facts.width, height=facts.height,
                      size_bytes=facts.size_bytes, sha256=facts.sha256)


def _text_image(value: str) -> bytes | ImageForm:
    """Base64 text in input_reference: a data: URI or bare Base64. A URL is refused."""
    text = value.strip()
    kind = image_input.source_kind(text)
    if kind == "url":
        return _refuse(400, "input_reference: remote URLs are not supported; upload the file or send it as Base64")
    if kind == "data":
        try:
            return image_input.decode_data_uri(text)
        except image_input.ImageInputError as exc:
            return _refuse(413 if exc.code == "too_large" else 400, f"input_reference: {exc.message}")
    compact = "".join(text.split())
    if len(compact) * 3 // 4 > IMAGE_MAX_BYTES + 3:
        return _refuse(413, f"input_reference: image exceeds the {IMAGE_MAX_BYTES // 2**20} MB limit")
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        return _refuse(400, "input_reference: not a file upload, and not valid Base64")


async def _upload_bytes(upload: UploadFile) -> bytes | ImageForm:
    data = await upload.read(IMAGE_MAX_BYTES + 1)
    if len(data) > IMAGE_MAX_BYTES:
        return _refuse(413, f"input_reference: image exceeds the {IMAGE_MAX_BYTES // 2**20} MB limit")
    return data


async def read_image_form(request: Request, upload_dir: Path) -> ImageForm:
    """Parse and check the form; never raises for anything a client can send."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > IMAGE_MAX_BYTES + FORM_OVERHEAD_BYTES:
        return _refuse(413, f"request body too large: input_reference is limited to {IMAGE_MAX_BYTES // 2**20} MB")
    try:
        form = await request.form(max_files=MAX_FILES, max_fields=MAX_FIELDS)
    except Exception as exc:  # starlette: MultiPartException or HTTPException(400) for a malformed body
        detail = getattr(exc, "detail", None) or getattr(exc, "message", None) or str(exc) or type(exc).__name__
        return _refuse(400, f"malformed multipart/form-data body: {detail}", "parse_request_failed")
    try:
        if not form.multi_items():
            # Go's ParseMultipartForm fails on a body with no readable part; python-multipart shrugs.
            return _refuse(400, "malformed multipart/form-data body: no form field could be read", "parse_request_failed")
        body: dict[str, Any] = {}
        metadata: dict[str, Any] = {}
        for key, value in form.multi_items():
            if key == IMAGE_FIELD or key in body:
                continue  # a repeated field keeps its first value, as Go's FormValue does
            if isinstance(value, UploadFile):
                continue  # a file in a text field is not read
            if key == "metadata":
                try:
                    parsed = json.loads(value)
                except json.JSONDecodeError as exc:
                    return _refuse(400, f"metadata is not a JSON object: {exc.msg}", "parse_request_failed")
                if not isinstance(parsed, dict):
                    return _refuse(400, "metadata is not a JSON object", "parse_request_failed")
                metadata = parsed
                continue
            body[key] = value
        if metadata:
            body["metadata"] = metadata
        images = form.getlist(IMAGE_FIELD)
        if not images:
            return ImageForm(body=body)  # the openai SDK's form without an image
        first = images[0]  # "Multi-image submissions only keep the first"
        data = await _upload_bytes(first) if isinstance(first, UploadFile) else _text_image(first)
        if isinstance(data, ImageForm):
            return data
        facts = image_input.inspect_bytes(data, "upload")
        if not facts.ok:
            status = 413 if facts.error_code == "too_large" else 400
            return _refuse(status, f"input_reference: {facts.error}")
        body[IMAGE_FIELD] = "(uploaded)"
        return ImageForm(body=body, image=_keep_upload(data, facts, upload_dir))
    finally:
        await form.close()
