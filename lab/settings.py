"""The one place that reads the environment and space.yaml, into one typed ``Settings``.

Precedence: a command-line flag (``flags``, the CLI's) > environment variable >
space.yaml > built-in default. A bad value raises ``SettingsError`` naming the
setting, the value and where it came from. "auto" becomes live with a key and
the simulator without, here and nowhere else.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

from lab.datadir import DataDir
from lab.db import parse_location, redact_url
from lab.errors import SettingsError
from lab.params import DEFAULT_BASE_URL, MODELS
from lab.prescreen.findings import Thresholds

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SPACE_YAML = REPO_ROOT / "space.yaml"
BACKENDS = ("auto", "simulator", "live")
HISTORY_SCOPES = ("session", "all")
# Any non-empty key works against the simulator; this one marks requests as ours in its logs.
SIMULATOR_KEY = "sk-lab-simulator"


@dataclass(frozen=True)
class Settings:
    """Everything configurable. ``api_key`` is kept out of repr so it never reaches a log."""

    backend: str  # "simulator" or "live" once resolved
    base_url: str | None  # None with the simulator: it is embedded and its URL known at start
    api_key: str | None = field(repr=False)
    data_dir: Path
    models: tuple[str, ...]
    max_sweep: int
    max_concurrent_per_session: int
    max_concurrent_total: int
    spend_cap_session_usd: float | None
    spend_cap_day_usd: float | None
    allow_visitor_key: bool
    sim_time_scale: float
    download_max_bytes: int
    server_name: str
    server_port: int | None
    # "session": each visitor sees only their own runs (the default on a Space); "all": one user's lab.
    history_scope: str = "all"
    # The Space enables Hugging Face sign-in (README ``hf_oauth: true``): the signed-in user is the identity.
    hf_oauth: bool = False
    lease_s: float = 30.0
    # None: the embedded SQLite journal in the data directory; else sqlite:///… or postgresql://… (may hold a
    # password: kept out of repr, shown only through ``database_display``).
    database_url: str | None = field(default=None, repr=False)
    # When the pre-screen's findings become badges (settings screen_*, see lab.prescreen.findings).
    screen: Thresholds = field(default_factory=Thresholds)
    # Whether each saved take is screened in the background (one ffmpeg run per take). Off, takes stay
    # unscreened ("not screened (pre-screen off)", never "pending": presentation.screen_state) until
    # `python -m lab screen TASK`; the test suite turns it off
    # where no test looks at it.
    prescreen: bool = True
    # Per person (a Hugging Face user, else a client address) across all their sessions and API clients:
    # dollars a day (None: no cap) and runs started a minute (None: no limit).
    spend_cap_person_usd: float | None = None
    submits_per_minute_person: int | None = None
    # Proxies in front that append the client's address to X-Forwarded-For (0: trust no header).
    trusted_proxy: int = 0
    # Where a Hugging Face token is resolved to its user (None: the Hub, or huggingface_hub's HF_ENDPOINT).
    hf_endpoint: str | None = None
    sources: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def has_key(self) -> bool:
        return bool(self.api_key)

    @property
    def is_simulator(self) -> bool:
        return self.backend == "simulator"

    @property
    def database_display(self) -> str:
        """The journal's location as logs and messages may show it (no password)."""
        return redact_url(self.database_url) if self.database_url else str(DataDir(self.data_dir).journal)

    def key_for_requests(self) -> str:
        """The key the client sends: the real one live, a placeholder for the simulator."""
        return self.api_key if self.api_key else SIMULATOR_KEY


@dataclass(frozen=True)
class _Spec:
    name: str
    env: str
    parse: Callable[[Any], Any]
    default: Any


def _parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _parse_positive_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected a whole number")
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ValueError("expected a whole number") from None
    if number < 1:
        raise ValueError("must be at least 1")
    return number


def _parse_cap(value: Any) -> float | None:
    if value is None or str(value).strip().lower() in ("", "none", "null", "off"):
        return None
    number = float(str(value).strip().lstrip("$"))
    # nan compares false with everything and inf never trips: either would mean no cap at all.
    if not math.isfinite(number):
        raise ValueError("must be a finite number of dollars (or null for no cap)")
    if number < 0:
        raise ValueError("must not be negative")
    return number


def _parse_history_scope(value: Any) -> str:
    text = str(value).strip().lower()
    if text not in HISTORY_SCOPES:
        raise ValueError(f"expected one of {', '.join(HISTORY_SCOPES)}")
    return text


def _parse_scale(value: Any) -> float:
    number = float(str(value).strip())
    if not 0 < number <= 100:
        raise ValueError("must be greater than 0 and at most 100")
    return number


def _parse_optional_positive_int(value: Any) -> int | None:
    if value is None or str(value).strip().lower() in ("", "none", "null", "off"):
        return None
    return _parse_positive_int(value)


def _parse_trusted_proxy(value: Any) -> int | None:
    """How many proxies in front append to X-Forwarded-For: true is one, false none, or a count."""
    if value is None or str(value).strip() == "":
        return None
    if isinstance(value, bool) or str(value).strip().lower() in ("true", "false", "yes", "no", "on", "off"):
        return int(_parse_bool(value))
    if isinstance(value, float) or not str(value).strip().isdigit():
        raise ValueError("expected true, false or a number of proxies (0..8)")
    number = int(str(value).strip())
    if number > 8:
        raise ValueError("expected true, false or a number of proxies (0..8)")
    return number


def _parse_endpoint(value: Any) -> str | None:
    text = _parse_optional_text(value)
    if text is not None:
        check_base_url(text, "hf_endpoint")
    return text.rstrip("/") if text else None


def _parse_backend(value: Any) -> str:
    text = str(value).strip().lower()
    if text not in BACKENDS:
        raise ValueError(f"expected one of {', '.join(BACKENDS)}")
    return text


def _parse_models(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    models = tuple(str(item).strip() for item in items if str(item).strip())
    unknown = [m for m in models if m not in MODELS]
    if unknown or not models:
        raise ValueError(f"unknown model {', '.join(unknown) or '(none)'}; available: {', '.join(MODELS)}")
    return models


def _parse_text(value: Any) -> str:
    return str(value).strip()


def _parse_optional_text(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def _parse_port(value: Any) -> int | None:
    if value is None or str(value).strip() == "":
        return None
    port = int(str(value).strip())
    if not 0 <= port <= 65535:
        raise ValueError("must be a port number 0..65535")
    return port


def _parse_seconds(value: Any) -> float:
    number = float(str(value).strip())
    if not 0 < number <= 3600:  # also refuses nan
        raise ValueError("must be more than 0 and at most 3600 seconds")
    return number


def _parse_database_url(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    if not text:
        return None
    if "://" not in text:
        raise ValueError("expected a URL: sqlite:///path/to/journal.sqlite3 or postgresql://user:password@host:port/dbname")
    parse_location(text)  # ValueError on an unknown scheme or a URL naming no database
    return text


def _parse_mb(value: Any) -> int:
    number = float(str(value).strip())
    if number <= 0:
        raise ValueError("must be positive")
    return int(number * 1024 * 1024)


def _parse_finite(value: Any) -> float:
    number = float(str(value).strip())
    if not math.isfinite(number):
        raise ValueError("must be a finite number")
    return number


# Pre-screen thresholds: one setting per Thresholds field, e.g. screen_freeze_min_s / LAB_SCREEN_FREEZE_MIN_S.
SCREEN_SPECS: tuple[_Spec, ...] = tuple(
    _Spec(f"screen_{f.name}", f"LAB_SCREEN_{f.name.upper()}", _parse_finite, f.default) for f in fields(Thresholds)
)

SPECS: tuple[_Spec, ...] = (
    _Spec("backend", "LAB_BACKEND", _parse_backend, "auto"),
    _Spec("base_url", "LAB_BASE_URL", _parse_optional_text, None),
    _Spec("data_dir", "LAB_DATA_DIR", _parse_text, "data"),
    _Spec("models", "LAB_MODELS", _parse_models, MODELS),
    _Spec("max_sweep", "LAB_MAX_SWEEP", _parse_positive_int, 8),
    _Spec("max_concurrent_per_session", "LAB_MAX_CONCURRENT_PER_SESSION", _parse_positive_int, 4),
    _Spec("max_concurrent_total", "LAB_MAX_CONCURRENT_TOTAL", _parse_positive_int, 16),
    _Spec("spend_cap_session_usd", "LAB_SPEND_CAP_SESSION_USD", _parse_cap, None),
    _Spec("spend_cap_day_usd", "LAB_SPEND_CAP_DAY_USD", _parse_cap, None),
    # A person: the signed-in Hugging Face user (browser or API token), else the client's address.
    _Spec("spend_cap_person_usd", "LAB_SPEND_CAP_PERSON_USD", _parse_cap, None),
    _Spec("submits_per_minute_person", "LAB_SUBMITS_PER_MINUTE_PERSON", _parse_optional_positive_int, None),
    # None: one proxy on a Hugging Face Space (SPACE_ID is set), none elsewhere.
    _Spec("trusted_proxy", "LAB_TRUSTED_PROXY", _parse_trusted_proxy, None),
    _Spec("hf_endpoint", "LAB_HF_ENDPOINT", _parse_endpoint, None),
    _Spec("allow_visitor_key", "LAB_ALLOW_VISITOR_KEY", _parse_bool, False),
    _Spec("sim_time_scale", "LAB_SIM_TIME_SCALE", _parse_scale, 1.0),
    _Spec("download_max_mb", "LAB_DOWNLOAD_MAX_MB", _parse_mb, 1024 * 1024 * 1024),  # a default is a parsed value: bytes
    # None: "session" on a Hugging Face Space (SPACE_ID is set), "all" elsewhere.
    _Spec("history_scope", "LAB_HISTORY_SCOPE", _parse_history_scope, None),
    # How long a task stays claimed by a process that stopped renewing (killed): then another takes over.
    _Spec("lease_s", "LAB_LEASE_S", _parse_seconds, 30.0),
    _Spec("prescreen", "LAB_PRESCREEN", _parse_bool, True),
    # Where the journal lives: unset, the SQLite file in the data directory; postgresql://… for several replicas.
    _Spec("database_url", "LAB_DATABASE_URL", _parse_database_url, None),
    _Spec("server_name", "GRADIO_SERVER_NAME", _parse_text, "127.0.0.1"),
    _Spec("server_port", "GRADIO_SERVER_PORT", _parse_port, None),
    *SCREEN_SPECS,
)
SPACE_YAML_KEYS = frozenset(spec.name for spec in SPECS) - {"server_name", "server_port"}


def read_space_yaml(path: Path) -> dict[str, Any]:
    """The hosted demo's settings file; a missing file means built-in defaults."""
    import yaml

    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise SettingsError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise SettingsError(f"{path} must hold a mapping of settings, not {type(data).__name__}")
    unknown = sorted(set(data) - SPACE_YAML_KEYS)
    if unknown:
        raise SettingsError(f"{path}: unknown setting {', '.join(unknown)}; known: {', '.join(sorted(SPACE_YAML_KEYS))}")
    return data


def load_settings(environ: Mapping[str, str] | None = None, space_yaml: Path | None = None, *,
                  flags: Mapping[str, Any] | None = None) -> Settings:
    """Read settings from the environment and space.yaml (``LAB_SPACE_YAML`` points elsewhere).

    ``flags``: a command's own values by setting name (``api_key`` too), None where not given;
    they win over everything and errors name them as ``--base-url`` etc.
    """
    env = os.environ if environ is None else environ
    flags = {name: value for name, value in (flags or {}).items() if value is not None}
    yaml_path = Path(space_yaml or env.get("LAB_SPACE_YAML") or DEFAULT_SPACE_YAML)
    from_yaml = read_space_yaml(yaml_path)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for spec in SPECS:
        if spec.name in flags:
            raw, where = flags[spec.name], _flag(spec.name)
        elif env.get(spec.env, "").strip() != "":
            raw, where = env[spec.env], f"environment variable {spec.env}"
        elif spec.name in from_yaml:
            raw, where = from_yaml[spec.name], f"{yaml_path.name} key '{spec.name}'"
        else:
            values[spec.name], sources[spec.name] = spec.default, "default"
            continue
        try:
            values[spec.name] = spec.parse(raw)
        except (TypeError, ValueError) as exc:
            shown = redact_url(str(raw)) if spec.name == "database_url" else raw  # a URL may hold a password
            raise SettingsError(f"Bad value {shown!r} for {spec.name} (from {where}): {exc}") from exc
        sources[spec.name] = where

    key_source = _flag("api_key") if "api_key" in flags else "environment APIYI_API_KEY"
    api_key = (flags["api_key"] if "api_key" in flags else env.get("APIYI_API_KEY") or "").strip() or None
    if api_key:
        check_api_key(api_key, key_source)
    backend = values["backend"]
    if backend == "auto":
        backend = "live" if api_key else "simulator"
    if backend == "live" and not api_key:
        raise SettingsError(
            f"backend is 'live' (from {sources['backend']}) but APIYI_API_KEY is not set; "
            "set the key, or use backend 'simulator'"
        )
    base_url = values["base_url"]
    if backend == "live":
        base_url = base_url or DEFAULT_BASE_URL
    elif not sources["base_url"].startswith(("environment", "--")):
        # The simulator is embedded and its URL known only once it runs; only an explicit
        # LAB_BASE_URL (or --base-url) points the lab at a simulator started elsewhere.
        base_url = None
    if base_url:
        check_base_url(base_url, sources["base_url"])
    data_dir = Path(values["data_dir"]).expanduser()
    if not data_dir.is_absolute():
        data_dir = (Path.cwd() / data_dir).resolve()
    return Settings(
        backend=backend,
        base_url=base_url.rstrip("/") if base_url else None,
        api_key=api_key,
        data_dir=data_dir,
        models=values["models"],
        max_sweep=values["max_sweep"],
        max_concurrent_per_session=values["max_concurrent_per_session"],
        max_concurrent_total=values["max_concurrent_total"],
        spend_cap_session_usd=values["spend_cap_session_usd"],
        spend_cap_day_usd=values["spend_cap_day_usd"],
        allow_visitor_key=values["allow_visitor_key"],
        sim_time_scale=values["sim_time_scale"],
        download_max_bytes=values["download_max_mb"],
        server_name=values["server_name"],
        server_port=values["server_port"],
        history_scope=values["history_scope"] or ("session" if env.get("SPACE_ID") else "all"),
        # Spaces set OAUTH_CLIENT_ID only when the README front matter says hf_oauth: true.
        hf_oauth=bool((env.get("OAUTH_CLIENT_ID") or "").strip()),
        lease_s=values["lease_s"],
        database_url=values["database_url"],
        screen=Thresholds(**{spec.name[len("screen_"):]: values[spec.name] for spec in SCREEN_SPECS}),
        prescreen=values["prescreen"],
        spend_cap_person_usd=values["spend_cap_person_usd"],
        submits_per_minute_person=values["submits_per_minute_person"],
        # A Space is always behind Hugging Face's proxy, which appends the visitor's address.
        trusted_proxy=values["trusted_proxy"] if values["trusted_proxy"] is not None else int(bool(env.get("SPACE_ID"))),
        hf_endpoint=values["hf_endpoint"],
        sources=sources,
    )


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


_KEY_CHARS = re.compile(r"[\x21-\x7e]+", re.ASCII)
_URL_CHARS = re.compile(r"[^\x00-\x20\x7f\ud800-\udfff]+")


def check_api_key(key: str, source: str) -> str:
    """``key`` if it can go in an Authorization header, else SettingsError (which never shows the key)."""
    if not _KEY_CHARS.fullmatch(key):
        raise SettingsError(
            f"The API key from {source} contains a space, a line break, a control or a non-ASCII character; "
            "copy it again from the APIYI console (it looks like sk-...). Nothing was sent."
        )
    return key


def check_base_url(url: str, source: str) -> str:
    """``url`` if it is an http(s) URL with a host (and a valid port), else SettingsError naming ``source``."""
    shown = repr(url if len(url) <= 200 else url[:197] + "...")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - reading it validates it (ValueError when out of range or not a number)
    except ValueError as exc:
        raise SettingsError(f"Bad value {shown} for base_url (from {source}): {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise SettingsError(f"Bad value {shown} for base_url (from {source}): must start with http:// or https://")
    if not parts.hostname:
        raise SettingsError(f"Bad value {shown} for base_url (from {source}): it names no host")
    if not _URL_CHARS.fullmatch(url):
        raise SettingsError(f"Bad value {shown} for base_url (from {source}): spaces and control characters "
                            "are not allowed in a URL")
    return url
