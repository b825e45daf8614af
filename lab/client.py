"""HTTP for the videos API: submit, poll, download, with retries and typed errors.

``VideosClient`` speaks the APIYI ``/v1/videos`` contract (live or simulator;
it cannot tell them apart). Three verbs map to the three endpoints, and
``wait`` is a helper built on ``get``:

- ``submit(wire)`` POSTs once. It is re-sent only when the connection was
  refused or timed out while connecting (the request provably never reached
  the server) or on a 429 (a rate limiter refused it before any task existed);
  never after a read timeout, a dropped connection or a 5xx, because a second
  POST can create a second billed task.
- ``get(task_id)`` is a GET: retried on 429 (honouring Retry-After), 5xx and
  connection errors, with exponential backoff and jitter (urllib3 ``Retry``).
- ``download(task_id, dest)`` streams ``/content`` to a temp file beside ``dest`` in 1 MiB
  chunks (constant memory, size cap), refuses anything that is not an MP4,
  verifies the file decodes with the expected size and duration, then renames
  it into place atomically. "Not completed yet" (400) and 502 right after
  completion are retried under ``RetryPolicy``'s content window.

Every error is a ``lab.errors.ApiError`` carrying the server's own message,
whatever envelope it came in. The API key never appears in an error, a repr
or a log line: messages are passed through ``redact`` on the way out.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable, Mapping

import requests
from requests.adapters import HTTPAdapter
from urllib3 import exceptions as urllib3_exceptions
from urllib3.exceptions import InvalidHeader
from urllib3.util.retry import Retry

from lab import multipart, params
from lab.datadir import DataDir, atomic_write
from lab.errors import (
    ApiError,
    AuthError,
    ConnectError,
    ConnectTimeout,
    ContentNotReady,
    LabError,
    LocalProtocolError,
    MediaError,
    NeverSent,
    RateLimited,
    ReadError,
    ReadTimeout,
    RequestInvalid,
    RequestRejected,
    ServerError,
    SettingsError,
    TaskNotFound,
    Timeout,
    TransportError,
    UnsafeTaskId,
)

log = logging.getLogger(__name__)

TERMINAL_STATUSES = frozenset({"completed", "failed"})
CHUNK_BYTES = 1 << 20  # 1 MiB: the most a download holds in memory at once
DEFAULT_MAX_BYTES = 1024 * 1024 * 1024
TASK_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,128}")
_HEADER_SAFE_KEY = re.compile(r"[\x21-\x7e]+", re.ASCII)
MP4_CONTENT_TYPES = ("video/mp4", "application/octet-stream", "application/binary", "binary/octet-stream")
DURATION_TOLERANCE_S = 0.5
_MESSAGE_MAX_CHARS = 300


# ---------------------------------------------------------------- policies


@dataclass(frozen=True)
class Timeouts:
    """Seconds to connect, and to wait for the next bytes of an answer."""

    connect: float = 10.0
    read: float = 60.0
    download_read: float = 180.0


class _Retry(Retry):
    """urllib3's Retry, but an unparseable Retry-After ("soon") means "use the backoff", not an error."""

    def get_retry_after(self, response):  # type: ignore[override]
        try:
            return super().get_retry_after(response)
        except InvalidHeader:
            return None


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to retry. GETs: urllib3 backoff; POST: connect errors only; /content: a window."""

    get_retries: int = 5
    backoff_factor: float = 0.5  # sleeps 0, 1, 2, 4 ... s (urllib3: factor * 2**(n-1))
    backoff_max_s: float = 8.0
    backoff_jitter_s: float = 0.3
    post_connect_retries: int = 3
    post_429_retries: int = 3
    # A Retry-After is honoured up to this many seconds (urllib3 alone would sleep up to 6 h,
    # so one "Retry-After: 3600" froze a poll far past its deadline).
    retry_after_max_s: float = 30.0
    # /content "not completed yet" (400) and 502 after completion: retried for this long.
    content_window_s: float = 60.0
    content_backoff_s: float = 0.5
    content_backoff_max_s: float = 4.0
    # A download cut off mid-body is restarted at most this many times.
    download_attempts: int = 3

    def get_retry(self) -> Retry:
        return _Retry(
            total=self.get_retries,
            connect=self.get_retries,
            read=self.get_retries,
            status=self.get_retries,
            other=0,
            allowed_methods=frozenset({"GET"}),
            status_forcelist=frozenset({429, 500, 502, 503, 504}),
            respect_retry_after_header=True,
            retry_after_max=self.retry_after_max_s,
            backoff_factor=self.backoff_factor,
            backoff_max=self.backoff_max_s,
            backoff_jitter=self.backoff_jitter_s,
            raise_on_status=False,
            raise_on_redirect=False,
        )

    def post_retry(self) -> Retry:
        # Connect errors: the request never left this machine. 429: the server refused it
        # before creating a task (a rate limiter), so re-sending cannot make a second task.
        # read=0 with status 429 only: a read error, a timeout after sending or a 5xx is final.
        return _Retry(
            total=self.post_connect_retries + self.post_429_retries,
            connect=self.post_connect_retries,
            read=0,
            status=self.post_429_retries,
            other=0,
            allowed_methods=frozenset({"POST"}),
            status_forcelist=frozenset({429}),
            respect_retry_after_header=True,
            retry_after_max=self.retry_after_max_s,
            backoff_factor=self.backoff_factor,
            backoff_max=self.backoff_max_s,
            backoff_jitter=self.backoff_jitter_s,
            raise_on_status=False,
            raise_on_redirect=False,
        )

    def content_sleep(self, attempt: int) -> float:
        """Backoff with jitter before /content attempt ``attempt`` (1-based)."""
        base = min(self.content_backoff_max_s, self.content_backoff_s * (2 ** max(0, attempt - 1)))
        return base * random.uniform(0.75, 1.0)


@dataclass(frozen=True)
class PollPolicy:
    """Adaptive polling: short intervals first, doubling to ``max_interval_s``.

    Near the expected finish (``near_fraction`` of a learned typical time) the
    interval drops to ``near_interval_s`` so a completed task is noticed fast.
    ``time_scale`` scales every interval and deadline (the simulator runs faster).
    Deadlines keep a margin over the vendor's "up to ~3 min (720p/1080p),
    ~10 min (4k)".
    """

    initial_interval_s: float = 0.25
    max_interval_s: float = 4.0
    factor: float = 2.0
    near_interval_s: float = 0.5
    near_fraction: float = 0.8
    deadlines_s: Mapping[str, float] = field(
        default_factory=lambda: {"720p": 360.0, "1080p": 360.0, "4k": 900.0}
    )
    time_scale: float = 1.0
    # Scaled deadlines never drop below this: rendering a real MP4 takes real time.
    min_deadline_s: float = 20.0

    def deadline_for(self, resolution: str | None) -> float:
        deadline = self.deadlines_s.get(resolution or "", max(self.deadlines_s.values())) * self.time_scale
        return max(deadline, min(self.min_deadline_s, max(self.deadlines_s.values())))


# ---------------------------------------------------------------- values


@dataclass(frozen=True)
class TaskStatus:
    """One answer of POST /videos or GET /videos/{id}. Decide on ``status`` only."""

    task_id: str
    status: str
    progress: int | None
    model: str | None
    created_at: int | None
    completed_at: int | None  # may appear before completion: never use it to decide
    raw: dict = field(repr=False, compare=False)
    gateway_request_id: str | None = field(default=None, compare=False)  # the gateway's X-Oneapi-Request-Id

    @property
    def done(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def error_message(self) -> str | None:
        """The failure detail when the server gives one (often it does not)."""
        error = self.raw.get("error")
        if isinstance(error, Mapping):
            return str(error.get("message") or error.get("code") or "") or None
        return str(error) if error else None


def safe_task_id(task_id: Any) -> str:
    """The task id if it is safe in a URL path and a file name ([A-Za-z0-9_-], ≤128 chars)."""
    if isinstance(task_id, str) and TASK_ID_PATTERN.fullmatch(task_id):
        return task_id
    shown = repr(task_id)[:80]
    raise UnsafeTaskId(
        f"Refusing unsafe task id {shown}: only letters, digits, '_' and '-' are allowed",
        code="unsafe_task_id",
    )


def video_path_for(data_dir: Path, task_id: str) -> Path:
    """``<data_dir>/runs/<task_id>.mp4``, refused unless it resolves inside ``data_dir``."""
    name = safe_task_id(task_id)
    root = Path(data_dir).resolve()
    path = DataDir(root).video(name).resolve()
    if not path.is_relative_to(root):
        raise UnsafeTaskId(f"Refusing to write outside the data directory: {path}", code="unsafe_task_id")
    return path


# ---------------------------------------------------------------- error translation


def _strip_html(text: str) -> str:
    text = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", text)
    text = re.sub(r"(?s)<[^>]+>", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def _truncate(text: str, limit: int = _MESSAGE_MAX_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_error_body(status: int, reason: str, content_type: str, body: bytes) -> tuple[str, str | None]:
    """(message, code) from any of the envelopes the API uses, or a plain description."""
    text = body.decode("utf-8", "replace").strip()
    if not text:
        return f"HTTP {status} {reason or ''} with an empty body".replace("  ", " "), None
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, Mapping):
        error = data.get("error")
        if isinstance(error, Mapping):
            message = str(error.get("message") or error.get("status") or error.get("type") or "")
            code = error.get("code")
            if not isinstance(code, str) or not code:  # Google: numeric code + status name
                code = error.get("status") or (code if code not in (None, "") else None)
            return _truncate(message or f"HTTP {status}"), (str(code) if code not in (None, "") else None)
        if isinstance(error, str) and error:
            return _truncate(error), None
        if "message" in data or "code" in data:
            message = str(data.get("message") or data.get("code") or "")
            code = data.get("code") or data.get("error_code")
            return _truncate(message or f"HTTP {status}"), (str(code) if code not in (None, "") else None)
        return _truncate(text), None
    if "html" in content_type.lower() or text.startswith("<"):
        stripped = _strip_html(text)
        return _truncate(f"HTTP {status} {reason}: {stripped}" if stripped else f"HTTP {status} {reason} (HTML page)"), None
    return _truncate(text), None


def encode_wire(wire: Mapping[str, Any]) -> bytes:
    """The exact bytes a submit POSTs: strict JSON (no NaN), valid UTF-8, or RequestInvalid."""
    try:
        return json.dumps(dict(wire), ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError, UnicodeEncodeError, RecursionError) as exc:
        raise RequestInvalid(f"the request body cannot be sent as JSON text: {exc}; nothing was sent") from exc


# What requests raised (and, for a ConnectionError, what urllib3 found underneath) -> the lab's
# transport error. First match wins; anything unlisted may have reached the server.
_TRANSPORT_TABLE: tuple[tuple[type[BaseException], type[BaseException] | None, type[TransportError]], ...] = (
    (requests.ConnectTimeout, None, ConnectTimeout),
    (requests.ReadTimeout, None, ReadTimeout),
    (requests.exceptions.InvalidHeader, None, LocalProtocolError),
    (requests.exceptions.InvalidURL, None, LocalProtocolError),
    (requests.exceptions.InvalidSchema, None, LocalProtocolError),
    (requests.exceptions.MissingSchema, None, LocalProtocolError),
    (requests.exceptions.InvalidJSONError, None, LocalProtocolError),
    (requests.ConnectionError, urllib3_exceptions.ConnectTimeoutError, ConnectTimeout),
    (requests.ConnectionError, urllib3_exceptions.NewConnectionError, ConnectError),  # and NameResolutionError
    (requests.ConnectionError, urllib3_exceptions.ReadTimeoutError, ReadTimeout),
    (requests.RequestException, None, ReadError),
)


def _urllib3_reason(exc: requests.RequestException) -> BaseException | None:
    """What urllib3 raised under a requests ConnectionError (MaxRetryError's ``reason``, or itself)."""
    inner = exc.args[0] if exc.args else None
    reason = getattr(inner, "reason", inner)
    return reason if isinstance(reason, BaseException) else None


def classify_transport(exc: requests.RequestException) -> tuple[type[TransportError], str]:
    """The lab's error class for a requests exception, and the readable reason under it."""
    reason = _urllib3_reason(exc)
    for raised, underneath, ours in _TRANSPORT_TABLE:
        if isinstance(exc, raised) and (underneath is None or isinstance(reason, underneath)):
            break
    detail = str(reason if reason is not None else exc)
    # urllib3 prefixes "HTTPConnection(host=..., port=...): "; the reason is what follows.
    if detail.startswith(("HTTPConnection(", "HTTPSConnection(")) and "): " in detail:
        detail = detail.split("): ", 1)[1]
    return ours, detail or type(exc).__name__


def may_have_created_task(exc: ApiError) -> bool:
    """Whether a submit that raised ``exc`` may still have created (and so billed) a task."""
    if isinstance(exc, TransportError):
        return exc.may_have_arrived
    if isinstance(exc, (AuthError, RateLimited, RequestRejected)):
        return False  # refused before any task existed
    # A 5xx, or a 2xx whose answer was unusable (no task id, an unsafe one): the server got it.
    return exc.status is None or exc.status >= 500 or exc.status < 400


def _request_id(response: requests.Response) -> str | None:
    value = response.headers.get("X-Oneapi-Request-Id")
    return _truncate(value, 128) if value else None


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


# ---------------------------------------------------------------- the client


class VideosClient:
    """Submit, poll and download videos. Thread-safe for concurrent calls (one Session, pooled)."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        session: requests.Session | None = None,
        post_session: requests.Session | None = None,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        poll: PollPolicy | None = None,
        pool_size: int = 16,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        if not _HEADER_SAFE_KEY.fullmatch(api_key or "x"):
            # requests would refuse the header only at send time, which reads like a failed POST.
            raise SettingsError("The API key contains a space, a line break, a control or a non-ASCII character; "
                                "copy it again from the APIYI console. Nothing was sent.")
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.retry = retry or RetryPolicy()
        self.timeouts = timeouts or Timeouts()
        self.poll = poll or PollPolicy()
        self._get_session = session or requests.Session()
        self._get_session.mount("http://", HTTPAdapter(max_retries=self.retry.get_retry(), pool_maxsize=pool_size))
        self._get_session.mount("https://", HTTPAdapter(max_retries=self.retry.get_retry(), pool_maxsize=pool_size))
        # POSTs get their own session: a different retry rule, and no connection shared with a streaming
        # download (each POST also closes its own connection: ``submit``).
        self._post_session = post_session or requests.Session()
        self._post_session.mount("http://", HTTPAdapter(max_retries=self.retry.post_retry(), pool_maxsize=pool_size))
        self._post_session.mount("https://", HTTPAdapter(max_retries=self.retry.post_retry(), pool_maxsize=pool_size))
        self._headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}

    def __repr__(self) -> str:
        return f"VideosClient(base_url={self.base_url!r}, api_key='***')"

    @classmethod
    def scaled(cls, base_url: str, api_key: str, *, time_scale: float = 1.0, **kw: Any) -> "VideosClient":
        """A client whose polling and backoff run ``time_scale`` times as long (simulator speed)."""
        scale = max(float(time_scale), 0.0)
        retry = RetryPolicy(
            backoff_factor=0.5 * scale,
            backoff_max_s=max(8.0 * scale, 0.05),
            backoff_jitter_s=0.3 * scale,
            content_backoff_s=max(0.5 * scale, 0.01),
            content_backoff_max_s=max(4.0 * scale, 0.05),
        )
        return cls(base_url, api_key, retry=kw.pop("retry", retry), poll=kw.pop("poll", PollPolicy(time_scale=scale)), **kw)

    def close(self) -> None:
        self._get_session.close()
        self._post_session.close()

    def __enter__(self) -> "VideosClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ redaction

    def redact(self, text: str) -> str:
        """``text`` with the API key (and any Bearer token) replaced by ***."""
        text = str(text)
        key = self._api_key or ""
        if key:
            text = text.replace(key, "***")
            bare = key[3:] if key.startswith("sk-") else ""
            if len(bare) >= 6:
                text = text.replace(bare, "***")
        return re.sub(r"(?i)(bearer\s+)[^\s'\",}]+", r"\1***", text)

    def _error(self, cls: type[ApiError], message: str, **kw: Any) -> ApiError:
        return cls(self.redact(message), **kw)

    # ------------------------------------------------------------ transport

    def _url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def _transport_error(self, exc: requests.RequestException, what: str, *, posted: bool, task_id: str | None = None) -> ApiError:
        """A requests exception as the lab's TransportError, saying whether a POST may have been received."""
        cls, detail = classify_transport(exc)
        detail = _truncate(self.redact(detail), 240)
        if issubclass(cls, LocalProtocolError):
            message = f"{what}: the request could not be sent ({detail}); nothing reached the server"
        elif issubclass(cls, NeverSent):
            message = f"{what}: could not connect to {self.base_url} ({detail})"
        elif posted:
            message = (
                f"{what}: the connection failed after the request was sent ({detail}). The server may "
                "have created the task; it was not re-sent, to avoid a second billed task. Check the history."
            )
        else:
            message = f"{what}: network error after retries ({detail})"
        return self._error(cls, message, task_id=task_id)

    def _raise_for_answer(self, response: requests.Response, *, verb: str, task_id: str | None = None) -> None:
        """Raise the typed error for a non-2xx answer (the body is read here, capped)."""
        status = response.status_code
        if status < 400:
            return
        body = b""
        try:
            for chunk in response.iter_content(64 * 1024):
                body += chunk
                if len(body) >= 64 * 1024:
                    break
        except requests.RequestException:
            pass
        message, code = parse_error_body(status, response.reason or "", response.headers.get("Content-Type", ""), body)
        message = self.redact(message)
        kw = {"status": status, "code": code, "task_id": task_id, "gateway_request_id": _request_id(response)}
        if status in (401, 403):
            raise AuthError(f"{verb}: the API key was refused (HTTP {status}): {message}", **kw)
        if status == 429:
            raise RateLimited(f"{verb}: rate limited (HTTP 429) after retries: {message}", retry_after=_retry_after(response), **kw)
        if status == 404 or code == "task_not_exist" or "task_not_exist" in message:
            raise TaskNotFound(f"{verb}: the server does not know this task (HTTP {status}): {message}", **kw)
        if status >= 500:
            if verb == "submit":
                raise ServerError(
                    f"submit: server error (HTTP {status}): {message}. The server may have created the task; "
                    "it was not re-sent, to avoid a second billed task. Check the history.", **kw)
            raise ServerError(f"{verb}: server error (HTTP {status}): {message}", **kw)
        if verb == "submit":
            raise RequestRejected(f"submit: the server refused the request (HTTP {status}): {message}", **kw)
        raise ApiError(f"{verb}: HTTP {status}: {message}", **kw)

    # ------------------------------------------------------------ verbs

    def submit(self, wire: Mapping[str, Any] | bytes, *, headers: Mapping[str, str] | None = None) -> TaskStatus:
        """POST /videos once (re-sent only if the connection was never made, or on a 429).

        ``wire`` is the body, or its exact JSON bytes from ``encode_wire`` (what the journal
        holds). A wire body with an image (``params.is_multipart``) goes as multipart/form-data,
        its file streamed from disk under the same never-re-send rule; any other as JSON. A body
        that cannot be sent raises RequestInvalid before anything is sent.
        """
        # A connection of its own, closed after the answer: a pooled one the server closed at its keep-alive
        # timeout fails only after the POST went out, and that submit's outcome is then unknown.
        send_headers = {**self._headers, **(headers or {}), "Connection": "close"}
        with ExitStack() as stack:
            if not isinstance(wire, bytes) and params.is_multipart(wire):
                form = stack.enter_context(multipart.from_wire(wire))  # RequestInvalid: nothing sent
                payload: dict[str, Any] = {"data": form}
                send_headers["Content-Type"] = form.content_type
            else:
                payload = {"data": wire if isinstance(wire, bytes) else encode_wire(wire)}
                send_headers["Content-Type"] = "application/json"
            try:
                response = self._post_session.post(
                    self._url("/videos"),
                    headers=send_headers,
                    timeout=(self.timeouts.connect, self.timeouts.read),
                    **payload,
                )
            except requests.RequestException as exc:
                raise self._transport_error(exc, "submit", posted=True) from None
        with response:
            self._raise_for_answer(response, verb="submit")
            status = self._parse_status(response, verb="submit")
        return status

    def get(self, task_id: str) -> TaskStatus:
        """GET /videos/{task_id} (retried on 429, 5xx and connection errors)."""
        task_id = safe_task_id(task_id)
        try:
            response = self._get_session.get(
                self._url(f"/videos/{task_id}"),
                headers=self._headers,
                timeout=(self.timeouts.connect, self.timeouts.read),
            )
        except requests.RequestException as exc:
            raise self._transport_error(exc, "poll", posted=False, task_id=task_id) from None
        with response:
            self._raise_for_answer(response, verb="poll", task_id=task_id)
            return self._parse_status(response, verb="poll", task_id=task_id)

    def _parse_status(self, response: requests.Response, *, verb: str, task_id: str | None = None) -> TaskStatus:
        try:
            data = response.json()
        except ValueError:
            snippet = _truncate(_strip_html(response.text), 120)
            raise self._error(ServerError, f"{verb}: the answer is not JSON: {snippet!r}", status=response.status_code,
                              task_id=task_id, gateway_request_id=_request_id(response)) from None
        if not isinstance(data, Mapping):
            raise self._error(ServerError, f"{verb}: the answer is not a JSON object", status=response.status_code,
                              task_id=task_id, gateway_request_id=_request_id(response))
        raw_id = data.get("task_id") or data.get("id")
        if raw_id is None:
            raise self._error(ServerError, f"{verb}: the answer has no task_id: {_truncate(json.dumps(data), 200)}",
                              task_id=task_id, gateway_request_id=_request_id(response))
        found = safe_task_id(raw_id)
        if task_id is not None and found != task_id:
            raise self._error(ServerError, f"{verb}: asked for task {task_id}, the server answered about {found}", task_id=task_id)
        progress = data.get("progress")
        return TaskStatus(
            task_id=found,
            status=str(data.get("status") or "unknown"),
            progress=int(progress) if isinstance(progress, (int, float)) and not isinstance(progress, bool) else None,
            model=data.get("model"),
            created_at=data.get("created_at"),
            completed_at=data.get("completed_at"),
            raw=dict(data),
            gateway_request_id=_request_id(response),
        )

    def wait(
        self,
        task_id: str,
        *,
        deadline_s: float | None = None,
        on_status: Callable[[TaskStatus], None] | None = None,
        resolution: str | None = None,
        expected_s: float | None = None,
        started_at: float | None = None,
    ) -> TaskStatus:
        """Poll until completed or failed (a failed status is returned, not raised).

        ``on_status`` is called after every poll. Transient poll errors (5xx,
        429, network) are ridden out until the deadline; Timeout is raised past it
        (the task may still complete, and then it is billed). ``expected_s`` (a
        typical duration learned from past runs) makes polling tighter near the end.
        ``started_at`` (time.monotonic()) counts time already spent on the task.
        """
        policy = self.poll
        if deadline_s is None:
            deadline_s = policy.deadline_for(resolution)
        start = time.monotonic() if started_at is None else started_at
        deadline = start + deadline_s
        interval = policy.initial_interval_s * policy.time_scale
        last_error: LabError | None = None
        while True:
            try:
                status = self.get(task_id)
                last_error = None
            except (ServerError, RateLimited) as exc:
                status, last_error = None, exc
                log.info("poll of %s failed, will retry: %s", task_id, exc)
            if status is not None:
                if on_status is not None:
                    on_status(status)
                if status.done:
                    return status
            now = time.monotonic()
            if now >= deadline:
                note = f" (last error: {last_error.message})" if last_error else ""
                raise Timeout(
                    f"not finished after {deadline_s:.0f} s; it may still complete (and be billed): "
                    f"run `python -m lab resume` later{note}",
                    task_id=task_id,
                )
            sleep = interval
            if expected_s is not None:
                near_start = start + policy.near_fraction * expected_s
                near = policy.near_interval_s * policy.time_scale
                # Wake up when the near window opens, then poll at the near interval.
                sleep = min(sleep, near) if now >= near_start else min(sleep, max(near_start - now, near))
            time.sleep(max(0.0, min(sleep, deadline - now)))
            interval = min(interval * policy.factor, policy.max_interval_s * policy.time_scale)

    def download(
        self,
        task_id: str,
        dest: Path,
        *,
        expected_size: str | None = None,
        expected_duration: str | float | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        verify: bool = True,
    ) -> Path:
        """Stream /content to ``dest`` (via ``datadir.atomic_write``), verify it, rename it into place.

        Raises ContentNotReady when /content stays "not completed" (or 502) for the
        whole content window, MediaError when the answer is not a usable MP4 of
        the expected size and duration (nothing is left at ``dest``).
        """
        task_id = safe_task_id(task_id)
        dest = Path(dest)
        window_end = time.monotonic() + self.retry.content_window_s
        not_ready = 0
        cut_off = 0
        try:
            # A temp file of this call's own: two processes fetching one task never share one.
            with atomic_write(dest) as out:
                while True:
                    try:
                        self._download_once(task_id, out, max_bytes=max_bytes)
                        break
                    except ContentNotReady as exc:
                        not_ready += 1
                        pause = self.retry.content_sleep(not_ready)
                        if time.monotonic() + pause > window_end:
                            raise ContentNotReady(
                                f"{exc.message}; still not downloadable after {self.retry.content_window_s:.0f} s. "
                                "The task is completed (and billed): run `python -m lab resume` to fetch it later",
                                status=exc.status, code=exc.code, task_id=task_id,
                            ) from None
                        log.info("content of %s not ready (%s); retrying in %.2f s", task_id, exc.message, pause)
                        time.sleep(pause)
                    except ServerError as exc:
                        # status None: the connection broke (or the body was cut off); start again.
                        cut_off += 1
                        if exc.status is not None or cut_off >= self.retry.download_attempts:
                            raise
                        log.info("download of %s broke off (%s); restarting", task_id, exc.message)
                if verify:
                    out.flush()
                    verify_video(Path(out.name), expected_size=expected_size, expected_duration=expected_duration,
                                 task_id=task_id)
        except OSError as exc:  # a full disk, the temp file removed under us: the video stays on the server
            raise MediaError(f"download: cannot move the video into place at {dest}: {exc.strerror or exc}",
                             task_id=task_id) from exc
        return dest

    def _download_once(self, task_id: str, out: BinaryIO, *, max_bytes: int) -> None:
        """One GET of /content into ``out`` (emptied first: a broken-off attempt starts again)."""
        try:
            response = self._get_session.get(
                self._url(f"/videos/{task_id}/content"),
                headers={**self._headers, "Accept": "video/mp4, application/octet-stream"},
                timeout=(self.timeouts.connect, self.timeouts.download_read),
                stream=True,
            )
        except requests.RequestException as exc:
            raise self._transport_error(exc, "download", posted=False, task_id=task_id) from None
        with response:
            if response.status_code == 400:
                body = response.raw.read(64 * 1024, decode_content=True) or b""
                message, code = parse_error_body(400, response.reason or "", response.headers.get("Content-Type", ""), body)
                if "not completed" in message.lower() or "not ready" in message.lower():
                    raise ContentNotReady(self.redact(f"download: {message}"), status=400, code=code, task_id=task_id)
                raise self._error(ApiError, f"download: HTTP 400: {message}", status=400, code=code, task_id=task_id)
            if response.status_code == 502 or response.status_code >= 500:
                try:
                    self._raise_for_answer(response, verb="download", task_id=task_id)
                except ServerError as exc:
                    if response.status_code == 502:
                        raise ContentNotReady(exc.message, status=502, code=exc.code, task_id=task_id) from None
                    raise
            self._raise_for_answer(response, verb="download", task_id=task_id)
            content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if content_type and not (content_type in MP4_CONTENT_TYPES or content_type.startswith("video/")):
                raise MediaError(f"download: the server sent {content_type!r}, not an MP4 video", task_id=task_id)
            length = response.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > max_bytes:
                raise MediaError(
                    f"download: the video is {int(length) / 2**20:.0f} MiB, over the {max_bytes / 2**20:.0f} MiB cap",
                    task_id=task_id,
                )
            received = 0
            head = b""
            out.seek(0)
            out.truncate()
            try:
                for chunk in response.iter_content(CHUNK_BYTES):
                    if not chunk:
                        continue
                    if len(head) < 12:
                        head += chunk[: 12 - len(head)]
                        if len(head) >= 12 and head[4:8] != b"ftyp":
                            raise MediaError(
                                "download: the answer is not an MP4 (no 'ftyp' box at the start)", task_id=task_id
                            )
                    received += len(chunk)
                    if received > max_bytes:
                        raise MediaError(
                            f"download: more than the {max_bytes / 2**20:.0f} MiB cap; stopped", task_id=task_id
                        )
                    out.write(chunk)
            except requests.RequestException as exc:
                raise self._transport_error(exc, "download", posted=False, task_id=task_id) from None
            except OSError as exc:  # disk full, permissions: the video stays on the server
                raise MediaError(f"download: cannot write {out.name}: {exc.strerror or exc}", task_id=task_id) from exc
            if len(head) < 12 or head[4:8] != b"ftyp":
                raise MediaError(f"download: the answer is not an MP4 ({received} bytes, no 'ftyp' box)", task_id=task_id)
            if length and length.isdigit() and received != int(length):
                raise self._error(
                    ServerError, f"download: cut off after {received} of {length} bytes", task_id=task_id
                )


def verify_video(
    path: Path,
    *,
    expected_size: str | None = None,
    expected_duration: str | float | None = None,
    task_id: str | None = None,
) -> None:
    """Raise MediaError unless ``path`` is a whole video of that WxH and duration (±0.5 s).

    Every packet is walked (``frames.inspect``), not only the header: a file cut short after its header is
    refused. The walk is remembered, so the thumbnails of the file, once in place, do not repeat it."""
    from lab import frames  # lazy: ffmpeg only when a file is verified

    try:
        info = frames.inspect(path)
    except MediaError as exc:
        raise MediaError(f"downloaded file is not a playable video: {exc.message}", task_id=task_id) from exc
    if expected_size:
        got = f"{info.width}x{info.height}"
        if got != expected_size:
            raise MediaError(f"downloaded video is {got}, expected {expected_size}", task_id=task_id)
    if expected_duration not in (None, ""):
        want = float(expected_duration)
        if abs(info.duration - want) > DURATION_TOLERANCE_S:
            raise MediaError(
                f"downloaded video lasts {info.duration:.2f} s, expected {want:g} s", task_id=task_id
            )
