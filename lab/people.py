"""Who pays for a run: the person behind a session, for the per-person cap and submit rate. Gradio-free.

A *session* is what a browser keeps (or a signed-in user); one person can open
as many as they like (a new browser, cleared storage, a new API client), so
caps that count sessions protect nothing on a public Space. A *person* is:

- ``hf:<username>``: the signed-in Hugging Face user (the browser's sign-in),
  or the account of the Hugging Face token an API caller passes
  (``gradio_client.Client(url, oauth_token=...)`` or ``token=``), resolved to
  a username by ``HubAccounts`` (huggingface_hub's ``whoami`` by default, cached);
- else ``ip:<address>``: the client's address. Behind a proxy (a Space, or
  ``trusted_proxy`` set) that is the address the nearest trusted proxy saw,
  read from ``X-Forwarded-For`` counting proxies from the right (a client
  cannot move it by sending its own header: a proxy appends after it);
  elsewhere the socket's peer, whatever the headers say. An IPv6 address
  counts by its /64 network, which one subscriber holds whole.

The token itself is never stored or logged: the cache is keyed by its SHA-256.
"""

from __future__ import annotations

import hashlib
import ipaddress
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Mapping

HF_PREFIX = "hf:"
ADDRESS_PREFIX = "ip:"
UNKNOWN_ADDRESS = "unknown"
# What a Hugging Face user token looks like (hf_ and letters/digits); anything else is not asked about.
_TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")
TOKEN_MAX_CHARS = 512

Whoami = Callable[[str], "str | None"]


@dataclass(frozen=True)
class Caller:
    """Who an event comes from: its session (whose runs it sees) and its person (whose caps it spends)."""

    session: str
    person: str | None = None  # None: no per-person limits (the CLI, the operator's own tools)

    @property
    def person_text(self) -> str:
        """The person as a refusal names them ("Hugging Face user alice", "address 203.0.113.7")."""
        return describe_person(self.person)


def describe_person(person: str | None) -> str:
    if not person:
        return "you"
    if person.startswith(HF_PREFIX):
        return f"Hugging Face user {person[len(HF_PREFIX):]}"
    if person.startswith(ADDRESS_PREFIX):
        return f"address {person[len(ADDRESS_PREFIX):]}"
    return person


# ---------------------------------------------------------------- addresses


def _parse_ip(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not text:
        return None
    text = text.strip().strip('"')
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def client_address(peer: str | None, forwarded_for: str | None, trusted_hops: int) -> str:
    """The client's address: the socket's ``peer``, or with ``trusted_hops`` proxies in front, the entry of
    ``X-Forwarded-For`` the outermost trusted proxy appended (counted from the right)."""
    if trusted_hops > 0 and forwarded_for:
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        if hops:
            # Each trusted proxy appended the address it saw; what a client wrote itself is further left.
            chosen = _parse_ip(hops[-trusted_hops] if len(hops) >= trusted_hops else hops[0])
            if chosen is not None:
                return str(chosen)
    parsed = _parse_ip(peer)
    return str(parsed) if parsed is not None else (peer or UNKNOWN_ADDRESS)


def address_person(address: str) -> str:
    """``ip:<address>``; an IPv6 address as its /64 (one subscriber's whole network)."""
    parsed = _parse_ip(address)
    if isinstance(parsed, ipaddress.IPv6Address):
        return ADDRESS_PREFIX + str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return ADDRESS_PREFIX + (str(parsed) if parsed is not None else address or UNKNOWN_ADDRESS)


# ---------------------------------------------------------------- Hugging Face tokens


def bearer_token(headers: Mapping[str, Any]) -> str | None:
    """The Hugging Face token a client sent as ``X-HF-Authorization`` (gradio_client's ``token=``) or
    ``Authorization``: ``Bearer <token>``."""
    lowered = {str(k).lower(): v for k, v in (headers or {}).items()}
    for name in ("x-hf-authorization", "authorization"):
        value = lowered.get(name)
        if isinstance(value, str) and value[:7].lower() == "bearer ":
            token = value[7:].strip()
            if token:
                return token
    return None


def plausible_token(token: Any) -> bool:
    """Worth asking the Hub about: a short, plain string (a flood of junk costs no lookups)."""
    return (isinstance(token, str) and 8 <= len(token) <= TOKEN_MAX_CHARS
            and all(ch in _TOKEN_CHARS for ch in token))


def hub_whoami(endpoint: str | None = None) -> Whoami:
    """The real lookup: huggingface_hub's ``whoami`` on ``endpoint`` (default: the Hub). Returns the
    account's name, None for a token the Hub refuses; raises when the Hub cannot be asked."""

    def whoami(token: str) -> str | None:
        from huggingface_hub import HfApi
        from huggingface_hub.errors import HfHubHTTPError

        try:
            info = HfApi(endpoint=endpoint).whoami(token=token)
        except HfHubHTTPError as exc:
            status = getattr(getattr(exc, "response", None), "status_code", None)
            if status in (401, 403):
                return None
            raise
        name = info.get("name") if isinstance(info, dict) else None
        return name if isinstance(name, str) and name else None

    return whoami


class HubAccounts:
    """A token's Hugging Face username, asked once per ``ttl_s`` through ``whoami`` (pluggable: tests pass
    their own; the default asks the Hub). A failed lookup is remembered for ``retry_s``; the cache holds
    at most ``limit`` tokens, by their SHA-256."""

    def __init__(self, whoami: Whoami | None = None, *, endpoint: str | None = None, ttl_s: float = 600.0,
                 retry_s: float = 30.0, limit: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._whoami = whoami or hub_whoami(endpoint)
        self._ttl_s, self._retry_s, self._limit, self._clock = ttl_s, retry_s, limit, clock
        self._lock = threading.Lock()
        self._known: OrderedDict[str, tuple[float, str | None]] = OrderedDict()

    def username(self, token: str | None) -> str | None:
        """The account behind ``token``, or None (no token, refused, or the Hub could not be asked)."""
        if not plausible_token(token):
            return None
        key = hashlib.sha256(token.encode("utf-8")).hexdigest()
        now = self._clock()
        with self._lock:
            cached = self._known.get(key)
            if cached is not None and cached[0] > now:
                return cached[1]
        try:
            name, keep = self._whoami(token), self._ttl_s
        except Exception:  # noqa: BLE001 - the Hub unreachable or odd: this caller is their address for now
            name, keep = None, self._retry_s
        if name is not None and not valid_username(name):
            name = None
        with self._lock:
            self._known[key] = (now + keep, name)
            self._known.move_to_end(key)
            while len(self._known) > self._limit:
                self._known.popitem(last=False)
        return name


def valid_username(name: str) -> bool:
    return (isinstance(name, str) and 0 < len(name) <= 96 and name[0].isalnum()
            and all(ch.isalnum() and ch.isascii() or ch in "._-" for ch in name))


# ---------------------------------------------------------------- the resolver


class People:
    """Names the caller of an event from what its request carries (gradio-free: the UI passes the parts)."""

    def __init__(self, trusted_hops: int = 0, accounts: HubAccounts | None = None) -> None:
        self.trusted_hops = max(0, int(trusted_hops))
        self.accounts = accounts or HubAccounts()

    def caller(self, *, session: str | None, page: str | None, peer: str | None, headers: Mapping[str, Any],
               token: str | None = None) -> Caller:
        """``session``: the page's bound session (a browser that loaded the page), None for an API client
        (whose session is its token's account, else its page); ``token``: an OAuth token the call carried."""
        if session is not None and session.startswith(HF_PREFIX):
            return Caller(session, session)
        username = self.accounts.username(token or bearer_token(headers))
        if username is not None:
            person = HF_PREFIX + username
            # An API client with a token is that account across Client() instances; a browser keeps its session.
            return Caller(session if session is not None else person, person)
        address = client_address(peer, _header(headers, "x-forwarded-for"), self.trusted_hops)
        return Caller(session if session is not None else (page or "anonymous"), address_person(address))


def _header(headers: Mapping[str, Any], name: str) -> str | None:
    """Every value of header ``name`` joined by commas (a proxy may add a second header line, not append)."""
    values = [value for key, value in (headers or {}).items() if str(key).lower() == name and isinstance(value, str)]
    return ", ".join(values) if values else None
