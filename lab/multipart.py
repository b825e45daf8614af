"""A multipart/form-data body that streams its file part from disk.

``requests``' own ``files=`` reads the whole file and builds the whole body in
memory (the image held twice). ``MultipartBody`` is a seekable file-like object
of known length instead: ``requests`` sends it with a Content-Length, reading
64 KiB at a time, and urllib3 can rewind it (``seek``/``tell``) when its retry
policy re-sends a POST that was refused before any task existed (429).
"""

from __future__ import annotations

import io
import os
import secrets
from pathlib import Path
from typing import Iterator, Sequence

CHUNK_BYTES = 64 * 1024


def _quote(value: str) -> str:
    # RFC 7578 names are quoted strings; a quote or line break in them would end the header.
    return value.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


class MultipartBody(io.RawIOBase):
    """Text fields, then one file part read from ``file_path`` as it is sent."""

    def __init__(self, fields: Sequence[tuple[str, str]], file_field: str, file_path: str | os.PathLike,
                 filename: str, content_type: str, *, boundary: str | None = None) -> None:
        super().__init__()
        self.boundary = boundary or "----veo-lab-" + secrets.token_hex(16)
        self.content_type = f"multipart/form-data; boundary={self.boundary}"
        self.file_path = Path(file_path)
        self.file_size = self.file_path.stat().st_size  # OSError here: nothing was sent
        head = bytearray()
        for name, value in fields:
            head += f'--{self.boundary}\r\nContent-Disposition: form-data; name="{_quote(name)}"\r\n\r\n'.encode()
            head += value.encode("utf-8") + b"\r\n"
        head += (
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{_quote(file_field)}"; '
            f'filename="{_quote(filename)}"\r\nContent-Type: {content_type}\r\n\r\n'
        ).encode()
        self._head = bytes(head)
        self._tail = f"\r\n--{self.boundary}--\r\n".encode()
        self._length = len(self._head) + self.file_size + len(self._tail)
        self._position = 0
        self._file = None

    def __len__(self) -> int:
        return self._length

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._length}[whence]
        self._position = max(0, min(self._length, base + offset))
        return self._position

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = self._length - self._position
        out = bytearray()
        while size > 0 and self._position < self._length:
            piece = self._read_at(self._position, size)
            if not piece:
                break
            out += piece
            self._position += len(piece)
            size -= len(piece)
        return bytes(out)

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _read_at(self, position: int, size: int) -> bytes:
        head_end = len(self._head)
        file_end = head_end + self.file_size
        if position < head_end:
            return self._head[position: position + size]
        if position < file_end:
            if self._file is None:
                self._file = open(self.file_path, "rb")
            self._file.seek(position - head_end)
            data = self._file.read(min(size, file_end - position, CHUNK_BYTES))
            if not data:  # the file shrank after the length was promised
                raise OSError(f"{self.file_path} changed while it was being sent")
            return data
        start = position - file_end
        return self._tail[start: start + size]

    def __iter__(self) -> Iterator[bytes]:  # type: ignore[override]
        # requests treats an iterable with a length as a stream with a Content-Length.
        while True:
            chunk = self.read(CHUNK_BYTES)
            if not chunk:
                return
            yield chunk

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        super().close()


def from_wire(wire) -> MultipartBody:
    """The body for a multipart wire body (``params.is_multipart``). Raises RequestInvalid if its file is gone."""
    from lab import params
    from lab.errors import RequestInvalid

    part = params.image_part(wire) or {}
    path = part.get("path")
    if not path:
        raise RequestInvalid("The reference image has no file to upload: keep a copy first (lab.image_input.keep).")
    try:
        return MultipartBody(
            params.multipart_fields(wire), params.IMAGE_FIELD, path,
            str(part.get("filename") or Path(path).name), str(part.get("content_type") or "application/octet-stream"),
        )
    except OSError as exc:
        raise RequestInvalid(f"Cannot read the reference image {path}: {exc.strerror or exc}; nothing was sent.") from exc
