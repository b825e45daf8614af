"""The request core: one body in, one resolved request out. Pure; imports nothing of the lab.

``resolve(body)`` turns whatever a user wrote (form values, CLI flags or a raw
JSON body exactly as in the vendor's docs) into a ``Resolution``: the
effective values, which field won and what it overrode, errors and warnings
in plain words, the wire body that will be POSTed, and the price. The UI, the
CLI, the client and the simulator all use this one result, so the precedence
is applied in exactly one place.
"""

from __future__ import annotations

import json
import pprint
import random
import re
import shlex
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

FAST_MODEL = "veo-3.1-fast-generate-preview"
STANDARD_MODEL = "veo-3.1-generate-preview"
MODEL_PRICES_USD: dict[str, float] = {FAST_MODEL: 0.30, STANDARD_MODEL: 1.20}
MODELS: tuple[str, ...] = tuple(MODEL_PRICES_USD)

DURATIONS: tuple[str, ...] = ("4", "6", "8")
DEFAULT_DURATION = "8"
RESOLUTIONS: tuple[str, ...] = ("720p", "1080p", "4k")
DEFAULT_RESOLUTION = "720p"
ASPECT_RATIOS: tuple[str, ...] = ("16:9", "9:16")
DEFAULT_ASPECT_RATIO = "16:9"
PIXEL_SIZES: dict[tuple[str, str], str] = {
    ("720p", "16:9"): "1280x720",
    ("720p", "9:16"): "720x1280",
    ("1080p", "16:9"): "1920x1080",
    ("1080p", "9:16"): "1080x1920",
    ("4k", "16:9"): "3840x2160",
    ("4k", "9:16"): "2160x3840",
}
SIZES: tuple[str, ...] = tuple(PIXEL_SIZES.values())
EIGHT_SECONDS_ONLY: frozenset[str] = frozenset({"1080p", "4k"})
PERSON_GENERATION: tuple[str, ...] = ("allow_adult", "dont_allow", "allow_all")
SEED_MAX = 4_294_967_295
# Veo caps prompts at about 1,024 tokens; 4,000 characters is beyond any real prompt.
PROMPT_MAX_CHARS = 4000
DEFAULT_BASE_URL = "https://api.apiyi.com/v1"

KNOWN_TOP_LEVEL = ("model", "prompt", "duration", "seconds", "size", "metadata")
AUDIO_FIELDS = ("generateAudio", "generate_audio")
# Metadata keys with a fixed place in the wire body; any other key passes through after them.
METADATA_ORDER = ("resolution", "aspectRatio", "seed", "negativePrompt", "personGeneration")


# Image-to-video (the i2v page, later revision): multipart, one image in `input_reference`.
IMAGE_FIELD = "input_reference"
IMAGE_MIME_TYPES: tuple[str, ...] = ("image/jpeg", "image/png", "image/webp")
# new-api's ExtractMultipartImage caps the upload at 20 MB; APIYI states no limit of its own.
IMAGE_MAX_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class ImageFacts:
    """What the request core needs to know about a reference image (read by ``lab.image_input``).

    ``error``/``error_code`` say why the image cannot be sent; then the other facts may be None.
    ``path`` is the file that would be uploaded (None until there is one, e.g. a data: URI not kept).
    """

    source: str
    path: str | None = None
    mime: str | None = None
    width: int | None = None
    height: int | None = None
    size_bytes: int | None = None
    sha256: str | None = None
    error_code: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def extension(self) -> str | None:
        return {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}.get(self.mime or "")

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "path": self.path,
            "mime": self.mime,
            "width": self.width,
            "height": self.height,
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "error": self.error,
        }


@dataclass(frozen=True)
class Issue:
    """One validation error: the field it concerns, a stable code, a sentence for people."""

    field: str
    code: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "code": self.code, "message": self.message}


@dataclass(frozen=True)
class Override:
    """A lower-precedence field that was present but lost to ``winner``."""

    setting: str  # "duration", "resolution" or "aspect_ratio"
    field: str
    value: Any
    winner: str


@dataclass(frozen=True)
class Resolution:
    """The resolved request. ``wire`` is None when the request is invalid."""

    ok: bool
    effective: dict[str, Any]
    source: dict[str, str]
    errors: tuple[Issue, ...]
    warnings: tuple[str, ...]
    wire: dict[str, Any] | None
    price_usd: float | None
    overrides: tuple[Override, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        """The object ``python -m lab resolve`` prints (see design.md, Interfaces)."""
        return {
            "ok": self.ok,
            "effective": dict(self.effective),
            "source": dict(self.source),
            "errors": [issue.to_dict() for issue in self.errors],
            "warnings": list(self.warnings),
            "wire": self.wire,
            "price_usd": self.price_usd,
        }

    def error_text(self) -> str:
        """All errors as one readable paragraph (for CLI output and UI messages)."""
        return "; ".join(f"{issue.field}: {issue.message}" for issue in self.errors)


def pixel_size(resolution: str, aspect_ratio: str) -> str:
    """The frame size the service renders for a resolution and aspect, e.g. 1280x720."""
    return PIXEL_SIZES[(resolution, aspect_ratio)]


def parse_size(size: str) -> tuple[int, int] | None:
    """``"1280x720"`` -> (1280, 720); None when it is not WIDTHxHEIGHT."""
    parts = size.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        return None
    return int(parts[0]), int(parts[1])


def size_to_resolution(size: str) -> str:
    """The gateway's rule: long side >= 3840 is 4k, >= 1920 is 1080p, else 720p."""
    dims = parse_size(size)
    if dims is None:
        return DEFAULT_RESOLUTION
    long_side = max(dims)
    if long_side >= 3840:
        return "4k"
    if long_side >= 1920:
        return "1080p"
    return "720p"


def size_to_aspect_ratio(size: str) -> str:
    """Portrait (9:16) when height > width, else 16:9."""
    dims = parse_size(size)
    if dims is None:
        return DEFAULT_ASPECT_RATIO
    width, height = dims
    return "9:16" if height > width else "16:9"


def price_usd(model: str) -> float | None:
    """Price of one completed request; None for an unknown model."""
    return MODEL_PRICES_USD.get(model)


def sweep_price_usd(model: str, count: int) -> float | None:
    """Estimate for ``count`` tasks (only completed ones are billed, so this is the ceiling)."""
    unit = price_usd(model)
    return None if unit is None else round(unit * max(0, count), 2)


def random_seed(rng: random.Random | None = None) -> int:
    """A seed in the API's range 0..4294967295."""
    return (rng or random.SystemRandom()).randint(0, SEED_MAX)


_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\ud800-\udfff]")


def printable(text: str) -> str:
    """``text`` safe to show and to encode as UTF-8: lone surrogates and control characters become \\uXXXX."""
    return _UNPRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _describe(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if _is_number(value):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


class _Collector:
    def __init__(self) -> None:
        self.errors: list[Issue] = []
        self.warnings: list[str] = []
        self.overrides: list[Override] = []

    def error(self, field_name: str, code: str, message: str) -> None:
        self.errors.append(Issue(field_name, code, message))

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)


def _duration_candidate(name: str, value: Any, out: _Collector) -> str | None:
    """Normalise one duration field to "4"/"6"/"8"-like text, or record why it can't be read.

    ``duration`` and ``seconds`` are Go strings upstream: a JSON number there fails to
    parse before anything else happens. ``metadata.durationSeconds`` is an integer upstream.
    """
    if name == "metadata.durationSeconds":
        if _is_number(value) and float(value).is_integer():
            return str(int(value))
        if isinstance(value, str) and value.strip().isdigit():
            out.warn(
                f'metadata.durationSeconds is the string "{value}"; the API expects an integer '
                f"({int(value.strip())}). It is sent as an integer."
            )
            return str(int(value.strip()))
        out.error(name, "invalid_type", f"metadata.durationSeconds must be an integer 4, 6 or 8, not {_describe(value)}.")
        return None
    if _is_number(value):
        shown = int(value) if float(value).is_integer() else value
        out.error(
            name,
            "parse_request_failed",
            f'{name} must be a string such as "{shown}", not the number {shown}: the API rejects numbers '
            f"here with parse_request_failed (cannot unmarshal number into Go struct field ... {name} of type string).",
        )
        return None
    if not isinstance(value, str):
        out.error(name, "parse_request_failed", f'{name} must be a string "4", "6" or "8", not {_json_type(value)}.')
        return None
    return value.strip()


def _resolve_duration(body: Mapping, metadata: Mapping, out: _Collector) -> tuple[str | None, str]:
    candidates = [
        ("metadata.durationSeconds", metadata.get("durationSeconds"), "metadata.durationSeconds"),
        ("duration", body.get("duration"), "duration"),
        ("seconds", body.get("seconds"), "seconds"),
    ]
    present = [(name, value, source) for name, value, source in candidates if value is not None]
    parsed = [(name, _duration_candidate(name, value, out), value, source) for name, value, source in present]
    if not parsed:
        return DEFAULT_DURATION, "default"
    winner_name, winner_text, _, winner_source = parsed[0]
    for name, text, raw, _ in parsed[1:]:
        out.overrides.append(Override("duration", name, raw, winner_name))
        if text is not None and text != winner_text:
            if text in DURATIONS:
                out.warn(f"{name}={_describe(raw)} is overridden by {winner_name}={_describe(parsed[0][2])}.")
            else:
                out.warn(f"{name}={_describe(raw)} is not a valid duration and is ignored: {winner_name} wins.")
    if winner_text is None:
        return None, winner_source
    if winner_text not in DURATIONS:
        out.error(winner_name, "invalid_value", f'{winner_name} must be "4", "6" or "8" seconds, not {_describe(parsed[0][2])}.')
        return None, winner_source
    return winner_text, winner_source


def _read_size(body: Mapping, out: _Collector) -> str | None:
    size = body.get("size")
    if size is None:
        return None
    if not isinstance(size, str):
        out.error("size", "invalid_type", f"size must be a string such as \"1280x720\", not {_json_type(size)}.")
        return None
    normalized = size.strip().lower().replace("×", "x")
    if normalized not in SIZES:
        out.error("size", "invalid_value", f"size {_describe(size)} is not offered; choose one of {', '.join(SIZES)}.")
        return None
    return normalized


def _read_enum(metadata: Mapping, key: str, allowed: tuple[str, ...], out: _Collector) -> str | None:
    value = metadata.get(key)
    if value is None:
        return None
    name = f"metadata.{key}"
    if not isinstance(value, str):
        out.error(name, "invalid_type", f"{name} must be one of {', '.join(allowed)}, not {_json_type(value)}.")
        return None
    normalized = value.strip()
    lowered = {option.lower(): option for option in allowed}
    if normalized.lower() in lowered:
        canonical = lowered[normalized.lower()]
        if canonical != value:
            out.warn(f"{name} {_describe(value)} is read as {_describe(canonical)}.")
        return canonical
    out.error(name, "invalid_value", f"{name} {_describe(value)} is not one of {', '.join(allowed)}.")
    return None


def _resolve_from_size(
    metadata: Mapping,
    key: str,
    allowed: tuple[str, ...],
    setting: str,
    infer: Callable[[str], str],
    default: str,
    size: str | None,
    has_size: bool,
    out: _Collector,
) -> tuple[str | None, str]:
    """Resolution and aspect share one rule: explicit metadata > inferred from ``size`` > default."""
    name = f"metadata.{key}"
    explicit = _read_enum(metadata, key, allowed, out)
    if metadata.get(key) is not None:
        if has_size:
            out.overrides.append(Override(setting, "size", size, name))
            if explicit and size and infer(size) != explicit:
                out.warn(f"size {size} ({infer(size)}) is overridden by {name}={explicit}.")
        return explicit, name
    if has_size:
        return (infer(size) if size else None), "size"
    return default, "default"


def _read_seed(metadata: Mapping, out: _Collector) -> int | None:
    seed = metadata.get("seed")
    if seed is None:
        out.warn("No seed is set: the service picks one, so this run cannot be compared seed-for-seed.")
        return None
    if isinstance(seed, bool) or not _is_number(seed) or not float(seed).is_integer():
        out.error("metadata.seed", "invalid_type", f"metadata.seed must be a whole number from 0 to {SEED_MAX}, not {_describe(seed)}.")
        return None
    seed = int(seed)
    if not 0 <= seed <= SEED_MAX:
        out.error("metadata.seed", "out_of_range", f"metadata.seed must be from 0 to {SEED_MAX}; {seed} is out of range.")
        return None
    return seed


def _read_model(body: Mapping, out: _Collector) -> str | None:
    model = body.get("model")
    choices = " or ".join(f"{name} (${price:.2f})" for name, price in MODEL_PRICES_USD.items())
    if model is None or (isinstance(model, str) and not model.strip()):
        out.error("model", "required", f"model is required: {choices}.")
        return None
    if not isinstance(model, str) or model.strip() not in MODEL_PRICES_USD:
        out.error("model", "invalid_value", f"model {_describe(model)} is not available; choose {choices}.")
        return None
    return model.strip()


def _read_prompt(body: Mapping, out: _Collector) -> str | None:
    prompt = body.get("prompt")
    if prompt is None or (isinstance(prompt, str) and not prompt.strip()):
        out.error("prompt", "required", "prompt is required: describe the scene, subject, action, camera, lighting and sound.")
        return None
    if not isinstance(prompt, str):
        out.error("prompt", "invalid_type", f"prompt must be text, not {_json_type(prompt)}.")
        return None
    if len(prompt) > PROMPT_MAX_CHARS:
        out.error("prompt", "too_long", f"prompt is {len(prompt):,} characters; keep it under {PROMPT_MAX_CHARS:,}.")
        return None
    return prompt


def _read_optional_text(metadata: Mapping, key: str, out: _Collector) -> str | None:
    value = metadata.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        out.error(f"metadata.{key}", "invalid_type", f"metadata.{key} must be text, not {_json_type(value)}.")
        return None
    return value


def _check_audio(body: Mapping, metadata: Mapping, out: _Collector) -> None:
    for key in AUDIO_FIELDS:
        for where, container in (("", body), ("metadata.", metadata)):
            if key in container:
                out.error(
                    f"{where}{key}",
                    "INVALID_ARGUMENT",
                    f"Remove {where}{key}: Veo 3.1 always generates audio and the API rejects this field with "
                    "INVALID_ARGUMENT. Describe the sound in the prompt instead (e.g. \"waves, distant seabirds\").",
                )


def _wire_body(effective: Mapping, metadata: Mapping) -> dict[str, Any]:
    """The canonical body: effective values made explicit, in a stable order, nothing the API refuses."""
    wire_metadata: dict[str, Any] = {
        "resolution": effective["resolution"],
        "aspectRatio": effective["aspect_ratio"],
    }
    if effective["seed"] is not None:
        wire_metadata["seed"] = effective["seed"]
    if effective["negative_prompt"] is not None:
        wire_metadata["negativePrompt"] = effective["negative_prompt"]
    if metadata.get("personGeneration") is not None:
        wire_metadata["personGeneration"] = metadata["personGeneration"]
    # durationSeconds is folded into `duration`; the audio keys are errors by now.
    skipped = set(METADATA_ORDER) | {"durationSeconds", *AUDIO_FIELDS}
    for key in sorted(k for k in metadata if isinstance(k, str) and k not in skipped):
        wire_metadata[key] = metadata[key]
    return {
        "model": effective["model"],
        "prompt": effective["prompt"],
        "duration": effective["duration"],
        "size": effective["size"],
        "metadata": wire_metadata,
    }


def resolve(body: Any) -> Resolution:
    """Resolve a request body with the documented precedence. Never raises."""
    out = _Collector()
    if not isinstance(body, Mapping):
        out.error("body", "not_object", f"The request body must be a JSON object, not {_json_type(body)}.")
        return _finish(out, {}, {}, {}, None)
    metadata = body.get("metadata")
    if metadata is None:
        metadata = {}
    elif not isinstance(metadata, Mapping):
        out.error("metadata", "invalid_type", f"metadata must be an object, not {_json_type(metadata)}.")
        metadata = {}

    _check_audio(body, metadata, out)
    for key in body:
        if key not in KNOWN_TOP_LEVEL and key not in AUDIO_FIELDS:
            out.warn(f"Top-level field {_describe(key)} is not part of this API and is not sent; "
                     "put extra generation parameters in metadata.")

    model = _read_model(body, out)
    prompt = _read_prompt(body, out)
    duration, duration_source = _resolve_duration(body, metadata, out)
    size = _read_size(body, out)
    has_size = body.get("size") is not None
    resolution, resolution_source = _resolve_from_size(
        metadata, "resolution", RESOLUTIONS, "resolution", size_to_resolution, DEFAULT_RESOLUTION, size, has_size, out
    )
    aspect, aspect_source = _resolve_from_size(
        metadata, "aspectRatio", ASPECT_RATIOS, "aspect_ratio", size_to_aspect_ratio, DEFAULT_ASPECT_RATIO, size,
        has_size, out,
    )
    seed = _read_seed(metadata, out)
    negative_prompt = _read_optional_text(metadata, "negativePrompt", out)
    person = _read_enum(metadata, "personGeneration", PERSON_GENERATION, out)
    if person is not None:
        metadata = {**metadata, "personGeneration": person}

    if resolution in EIGHT_SECONDS_ONLY and duration is not None and duration != "8":
        out.error(
            duration_source if duration_source != "default" else "duration",
            "duration_requires_8",
            f'{resolution} needs a duration of "8" seconds; {duration} s is only available at 720p.',
        )

    effective = {
        "model": model,
        "prompt": prompt,
        "duration": duration,
        "resolution": resolution,
        "aspect_ratio": aspect,
        "size": pixel_size(resolution, aspect) if resolution and aspect else None,
        "seed": seed,
        "negative_prompt": negative_prompt,
    }
    source = {"duration": duration_source, "resolution": resolution_source, "aspect_ratio": aspect_source}
    return _finish(out, effective, source, metadata, model)


def _finish(out: _Collector, effective: dict, source: dict, metadata: Mapping, model: str | None) -> Resolution:
    ok = not out.errors
    if not effective:
        effective = {k: None for k in ("model", "prompt", "duration", "resolution", "aspect_ratio", "size", "seed", "negative_prompt")}
        source = {"duration": "default", "resolution": "default", "aspect_ratio": "default"}
    return Resolution(
        ok=ok,
        effective=effective,
        source=source,
        errors=tuple(out.errors),
        warnings=tuple(out.warnings),
        wire=_wire_body(effective, metadata) if ok else None,
        price_usd=price_usd(model) if model else None,
        overrides=tuple(out.overrides),
    )


def build_body(
    *,
    model: str | None = None,
    prompt: str | None = None,
    duration: str | None = None,
    seconds: str | None = None,
    size: str | None = None,
    resolution: str | None = None,
    aspect_ratio: str | None = None,
    seed: int | None = None,
    negative_prompt: str | None = None,
    duration_seconds: int | str | None = None,
    person_generation: str | None = None,
    extra_metadata: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A raw body from form or CLI values, as a user would write it; blanks are left out.

    Nothing is resolved here: the result goes through ``resolve`` like any pasted body,
    so a form can explore the precedence rules rather than hide them.
    """

    def given(value: Any) -> bool:
        return value is not None and not (isinstance(value, str) and not value.strip())

    body: dict[str, Any] = {}
    for key, value in (("model", model), ("prompt", prompt), ("duration", duration), ("seconds", seconds), ("size", size)):
        if given(value):
            body[key] = value
    metadata: dict[str, Any] = {}
    for key, value in (
        ("resolution", resolution),
        ("aspectRatio", aspect_ratio),
        ("seed", seed),
        ("negativePrompt", negative_prompt),
        ("durationSeconds", duration_seconds),
        ("personGeneration", person_generation),
    ):
        if given(value):
            metadata[key] = value
    for key, value in (extra_metadata or {}).items():
        if given(value):
            metadata[key] = value
    if metadata:
        body["metadata"] = metadata
    return body


def with_seed(body: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """A copy of ``body`` with ``metadata.seed`` set (for sweeps); nested values are shared, not copied."""
    metadata = body.get("metadata")
    return {**body, "metadata": {**(metadata if isinstance(metadata, Mapping) else {}), "seed": seed}}


def with_prompt(body: Mapping[str, Any], prompt: str) -> dict[str, Any]:
    """A copy of ``body`` with another prompt (for prompt-variant sweeps); nested values are shared."""
    return {**body, "prompt": prompt}


def wire_json(wire: Mapping[str, Any], indent: int | None = 2) -> str:
    """The wire body as text, keys in their stable order, so it can be shown and diffed."""
    return json.dumps(wire, ensure_ascii=False, indent=indent)


REDACTED_KEY = "$APIYI_API_KEY"


def curl_snippet(wire: Mapping[str, Any], base_url: str = DEFAULT_BASE_URL) -> str:
    """A copyable curl command; the key is a shell variable, never a value."""
    url = base_url.rstrip("/") + "/videos"
    return (
        f"curl -sS -X POST {shlex.quote(url)} \\\n"
        f'  -H "Authorization: Bearer {REDACTED_KEY}" \\\n'
        '  -H "Content-Type: application/json" \\\n'
        f"  -d {shlex.quote(wire_json(wire))}"
    )


def python_snippet(wire: Mapping[str, Any], base_url: str = DEFAULT_BASE_URL) -> str:
    """A copyable requests snippet that reads the key from the environment."""
    body = pprint.pformat(dict(wire), sort_dicts=False, width=88)
    return (
        "import os\n"
        "import requests\n\n"
        f"BASE_URL = {base_url.rstrip('/')!r}\n"
        'HEADERS = {"Authorization": f"Bearer {os.environ[\'APIYI_API_KEY\']}"}\n\n'
        f"body = {body}\n\n"
        'resp = requests.post(f"{BASE_URL}/videos", headers=HEADERS, json=body, timeout=30)\n'
        "resp.raise_for_status()\n"
        'print(resp.json()["task_id"])\n'
    )
