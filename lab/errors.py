"""The lab's one error tree: callers catch what they can act on.

Every error carries the message a person should read and, where one exists,
the task id it concerns. Errors from requests, ffmpeg, sqlite3 and YAML are
translated into these where they enter the lab, raised ``from`` the original.
"""

from __future__ import annotations


class LabError(Exception):
    """Root of everything the lab raises on purpose."""

    def __init__(self, message: str, *, task_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.task_id = task_id

    def __str__(self) -> str:
        if self.task_id:
            return f"{self.message} (task {self.task_id})"
        return self.message


class RequestInvalid(LabError):
    """Our own validation refused the request; no HTTP call was made."""

    def __init__(self, message: str, errors: list | None = None) -> None:
        super().__init__(message)
        self.errors = list(errors or [])


class SettingsError(LabError):
    """A setting (env var or space.yaml) has a bad value; says which and where."""


class BudgetExceeded(LabError):
    """A spend cap would be overshot; refused before any HTTP call."""


class NotYours(LabError):
    """A run, sweep or review the caller may not see: worded exactly as a missing one, so ids cannot be probed."""


class MediaError(LabError):
    """A file is not a usable video (missing, empty, truncated, not a video)."""


class StoreError(LabError):
    """The journal database could not be read or written."""


class StoreUnavailable(StoreError):
    """The journal's database cannot be reached now (a server restart, a lost connection): try the write again."""


class ApiError(LabError):
    """The video API (live or simulated) answered with an error."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        task_id: str | None = None,
        gateway_request_id: str | None = None,
    ) -> None:
        super().__init__(message, task_id=task_id)
        self.status = status
        self.code = code
        # The gateway's X-Oneapi-Request-Id: what its support asks for about this call.
        self.gateway_request_id = gateway_request_id
        # The lab's own id of the submit this error ended (its intent in the journal), if any.
        self.lab_request_id: str | None = None


class AuthError(ApiError):
    """401/403: the key is missing, unknown, disabled or out of quota."""


class RequestRejected(ApiError):
    """400-class answer to a submit: the server refused the request body."""


class RateLimited(ApiError):
    """429 after retries were exhausted."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ServerError(ApiError):
    """5xx, a dropped connection or an unreadable answer, after retries."""


class UnsafeTaskId(ServerError):
    """A task id that is not safe in a URL or a file name (only [A-Za-z0-9_-] are)."""


class TransportError(ServerError):
    """The HTTP exchange itself failed (no usable answer). ``may_have_arrived`` says whether
    the server may have received the request: for a POST, whether a task may exist."""

    may_have_arrived = True


class NeverSent(TransportError):
    """Nothing reached the server: safe to send again."""

    may_have_arrived = False


class ConnectError(NeverSent):
    """The connection was never made (refused, DNS failure, TLS handshake)."""


class ConnectTimeout(ConnectError):
    """Connecting took longer than the connect timeout."""


class LocalProtocolError(NeverSent):
    """The request could not be built (a header or URL that HTTP cannot carry); nothing was sent."""


class ReadError(TransportError):
    """The connection broke after the request was sent: the server may have acted on it."""


class ReadTimeout(ReadError):
    """No answer within the read timeout after the request was sent."""


class TaskNotFound(ApiError):
    """The server does not know the task (400 task_not_exist / 404)."""


class ContentNotReady(ApiError):
    """/content still answered "not completed yet" (or 502) after retries."""


class Timeout(ApiError):
    """The task did not finish before the deadline; it may still complete and bill."""
