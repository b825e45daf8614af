"""The request core: one body in, one resolved request out. Pure: no I/O, imports nothing of the lab.

``resolve(body)`` turns whatever a user wrote (form values, CLI flags or a raw
JSON body exactly as in the vendor's docs) into a ``Resolution``: the
effective values, which field won and what it overrode, errors and warnings
in plain words, the wire body that will be POSTed, and the price. The UI, the
CLI, the client and the simulator all use this one result, so the precedence
is applied in exactly one place. A reference image is read by the caller
(``lab.image_input.resolve`` reads it and passes its ``ImageFacts`` here); this
module never opens a file.
"""

from __future__ import annotations

import json
import logging
import math
import pprint
import random
import re
import shlex
import sys
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
log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.apiyi.com/v1"
# Limits on any body, checked before it is parsed or resolved (see design.md, Limits).
BODY_MAX_BYTES = 256 * 1024
MAX_DEPTH = 32
MAX_VALUES = 20_000
# Numbers must fit a float64 (what a JSON decoder upstream reads them into).
NUMBER_MAX_ABS = int(sys.float_info.max)

KNOWN_TOP_LEVEL = ("model", "prompt", "duration", "seconds", "size", "metadata")
AUDIO_FIELDS = ("generateAudio", "generate_audio")
# Metadata keys with a fixed place in the wire body; any other key passes through after them.
METADATA_ORDER = ("resolution", "aspectRatio", "seed", "negativePrompt", "personGeneration")


# Image-to-video (the i2v page, later revision): multipart, one image in `input_reference`.
IMAGE_FIELD = "input_reference"
IMAGE_MIME_TYPES: tuple[str, ...] = ("image/jpeg", "image/png", "image/webp")
# new-api's ExtractMultipartImage caps the upload at 20 MB; APIYI states no limit of its own.
IMAGE_MAX_BYTES = 20 * 1024 * 1024
# With an image only `seconds` sets the length; without it the video falls back to 4 s.
IMAGE_DEFAULT_SECONDS = "4"
# Metadata keys that stay text when a multipart form's numeric text is read as numbers.
_TEXT_METADATA = frozenset({"resolution", "aspectRatio", "negativePrompt", "personGeneration"})
_FORM_INT = re.compile(r"-?\d+")
_FORM_FLOAT = re.compile(r"-?(\d+\.\d*|\.\d+)([eE][-+]?\d+)?")


@dataclass(frozen=True)
class ImageFacts:
    """What the request core needs to know about a reference image (read by ``lab.image_input``, passed in).

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
    # Image-to-video: the reference image read for this request, and how the body is sent.
    image: ImageFacts | None = None
    transport: str = "json"  # "json", or "multipart" (multipart/form-data, with or without an image)

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
            "transport": self.transport,
            "image": self.image.to_json() if self.image is not None else None,
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
    if len(parts) != 2 or not all(_SMALL_UINT.fullmatch(p.strip()) for p in parts):
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
    """A short, printable rendering of a value for messages (never raises, never leaks bad text)."""
    if value is _REPORTED:
        return "(an invalid value)"
    if isinstance(value, str) and len(value) > 200:
        value = value[:200]
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=True)
    except Exception:  # noqa: BLE001 - a huge int, a cycle, a foreign object: describe its kind instead
        text = _json_type(value)
    text = printable(text)
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


class _Reported:
    """Stands in for a field whose value already has an error (so no second error is made of it)."""

    def __repr__(self) -> str:
        return "<invalid value>"


_REPORTED = _Reported()
_SMALL_UINT = re.compile(r"[0-9]{1,6}", re.ASCII)
_BAD_TEXT = re.compile(r"[\x00\ud800-\udfff]")


@dataclass(frozen=True)
class OversizedNumber:
    """A JSON number too large for a float64 (``parse_json`` keeps it so ``resolve`` can name its field)."""

    text: str  # its first characters, for messages
    digits: int  # 0 for a float such as 1e400

    def describe(self) -> str:
        if self.digits:
            return f"a {self.digits:,}-digit number ({self.text}...)"
        return f"the number {self.text}"


def _text_problem(text: str) -> str | None:
    match = _BAD_TEXT.search(text)
    if match is None:
        return None
    char = match.group()
    if char == "\x00":
        return "contains a NUL character (\\u0000); remove it"
    return (f"contains a lone surrogate (\\u{ord(char):04x}), which is not valid Unicode text; "
            "write the character itself or remove it")


def _field_name(parent: str, key: Any) -> str:
    name = printable(key if len(key) <= 40 else key[:37] + "...") or '""'  # an empty key still names a field
    return f"{parent}.{name}" if parent else name


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
    if value is _REPORTED:
        return None
    if name == "metadata.durationSeconds":
        if _is_number(value) and float(value).is_integer():
            return str(int(value))
        if isinstance(value, str) and _SMALL_UINT.fullmatch(value.strip()):
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
        # Only a different value is overridden: duration "8" under durationSeconds 8 agrees.
        if text != winner_text and raw is not _REPORTED:
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
    if size is None or size is _REPORTED:
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
    if value is None or value is _REPORTED:
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
        # size 1280x720 with 720p and 16:9 agrees: an override only where the values differ.
        if explicit and size and infer(size) != explicit:
            out.overrides.append(Override(setting, "size", size, name))
            out.warn(f"size {size} ({infer(size)}) is overridden by {name}={explicit}.")
        return explicit, name
    if has_size:
        return (infer(size) if size else None), "size"
    return default, "default"


def _read_seed(metadata: Mapping, out: _Collector) -> int | None:
    seed = metadata.get("seed")
    if seed is _REPORTED:
        return None
    if seed is None:
        out.warn("No seed is set: the service picks one, so this run cannot be compared seed-for-seed.")
        return None
    if isinstance(seed, bool) or not _is_number(seed) or not float(seed).is_integer():
        out.error("metadata.seed", "invalid_type", f"metadata.seed must be a whole number from 0 to {SEED_MAX}, not {_describe(seed)}.")
        return None
    if not 0 <= seed <= SEED_MAX:
        out.error("metadata.seed", "out_of_range", f"metadata.seed must be from 0 to {SEED_MAX}; {_describe(seed)} is out of range.")
        return None
    return int(seed)


def _read_model(body: Mapping, out: _Collector) -> str | None:
    model = body.get("model")
    if model is _REPORTED:
        return None
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
    if prompt is _REPORTED:
        return None
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
    if value is None or value is _REPORTED:
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


def _scan(body: Mapping, out: _Collector) -> tuple[set[tuple[str, ...]], bool]:
    """Check every value of ``body`` (iteratively, in linear time) against what JSON on the wire allows.

    Text must be valid Unicode without NUL, numbers finite and within float64, nesting at
    most MAX_DEPTH, at most MAX_VALUES values and BODY_MAX_BYTES characters of text. Each
    problem is an error naming its field. Returns the fields (``("prompt",)``,
    ``("metadata", "seed")``) holding a problem, and whether the body is too large to go on.
    """
    bad: set[tuple[str, ...]] = set()
    stack: list[tuple[Any, str, int, tuple[str, ...]]] = []
    values = chars = 0

    def push_children(container: Any, path: str, depth: int, root: tuple[str, ...] | None) -> None:
        nonlocal chars
        if isinstance(container, Mapping):
            children = []
            for key, child in container.items():
                if not isinstance(key, str):
                    out.error(path or "body", "invalid_type", f"{path or 'body'} has a key that is not text ({_describe(key)}).")
                    bad.add(root or ("body",))
                    continue
                chars += len(key)
                name = _field_name(path, key)
                problem = _text_problem(key)
                if problem:
                    out.error(name, "invalid_text", f"The key of {name} {problem}.")
                    bad.add(root or (key,))
                child_root = root
                if root is None:
                    child_root = (key,)
                elif root == ("metadata",) and depth == 2:
                    child_root = ("metadata", key)
                children.append((child, name, depth + 1, child_root))
        else:
            children = [(child, f"{path}[{i}]", depth + 1, root) for i, child in enumerate(container)]
        stack.extend(reversed(children))

    push_children(body, "", 1, None)
    while stack:
        value, path, depth, root = stack.pop()
        values += 1
        if values > MAX_VALUES or chars > BODY_MAX_BYTES:
            out.error("body", "too_large", f"The body holds more than {MAX_VALUES:,} values or {BODY_MAX_BYTES:,} "
                      "characters of text; a video request is far smaller.")
            return bad, True
        if isinstance(value, str):
            chars += len(value)
            problem = _text_problem(value)
            if problem:
                out.error(path, "invalid_text", f"{path} {problem}.")
                bad.add(root)
        elif value is None or isinstance(value, bool):
            continue
        elif isinstance(value, int):
            if abs(value) > NUMBER_MAX_ABS:
                out.error(path, "out_of_range", f"{path} is a number too large for JSON readers (beyond 1.8e308).")
                bad.add(root)
        elif isinstance(value, float):
            if not math.isfinite(value):
                shown = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
                out.error(path, "not_finite", f"{path} is {shown}; JSON numbers must be finite (no NaN or Infinity).")
                bad.add(root)
        elif isinstance(value, OversizedNumber):
            out.error(path, "out_of_range", f"{path} is {value.describe()}, too large for JSON readers "
                      "(beyond 1.8e308).")
            bad.add(root)
        elif isinstance(value, (Mapping, list, tuple)):
            if depth >= MAX_DEPTH:
                out.error(path, "too_deep", f"{path} is nested more than {MAX_DEPTH} levels deep; "
                          "a video request needs a few.")
                bad.add(root)
                continue
            push_children(value, path, depth, root)
        else:
            out.error(path, "invalid_type", f"{path} is not a JSON value ({type(value).__name__}).")
            bad.add(root)
    return bad, False


def _without(container: Mapping, bad: set[tuple[str, ...]], prefix: tuple[str, ...]) -> dict:
    """A copy of ``container`` whose fields with a reported problem hold ``_REPORTED``."""
    return {key: (_REPORTED if (*prefix, key) in bad else value) for key, value in container.items()}


def resolve(body: Any, *, image: ImageFacts | None = None, multipart: bool | None = None) -> Resolution:
    """Resolve a request body with the documented precedence. Never raises.

    Any JSON value is accepted (and any Python value): what cannot be sent becomes an
    error naming its field; the result's ``to_json()`` is always strict JSON.

    A body with ``input_reference`` (a path or a data: URI) is an image-to-video request,
    sent as multipart: only ``seconds`` sets its length (``duration`` is ignored and the
    video falls back to 4 s). ``image`` is what the caller read of that image
    (``lab.image_input.resolve`` reads it once and passes it; nothing is read here); a body
    naming an image without it is refused (``not_read``). ``multipart=True`` reads a body
    by the multipart rules without an image (how the openai SDK sends one).
    """
    try:
        return _resolve(body, image, multipart)
    except Exception:  # noqa: BLE001 - a bug must not become a traceback for the caller
        log.exception("resolve failed on a body")
        out = _Collector()
        out.error("body", "internal", "The lab could not read this body (an internal error); it was not sent.")
        return _finish(out, {}, {}, {}, None)


def _resolve(body: Any, image: ImageFacts | None, multipart: bool | None) -> Resolution:
    out = _Collector()
    if not isinstance(body, Mapping):
        out.error("body", "not_object", f"The request body must be a JSON object, not {_json_type(body)}.")
        return _finish(out, {}, {}, {}, None)
    bad, too_large = _scan(body, out)
    if too_large:
        return _finish(out, {}, {}, {}, None)
    if bad:
        body = _without(body, bad, ())
    if multipart is None:
        multipart = image is not None or IMAGE_FIELD in body
    metadata = body.get("metadata")
    if bad and isinstance(metadata, Mapping):
        metadata = _without(metadata, bad, ("metadata",))
    if metadata is None or metadata is _REPORTED:
        metadata = {}
    elif not isinstance(metadata, Mapping):
        out.error("metadata", "invalid_type", f"metadata must be an object, not {_json_type(metadata)}.")
        metadata = {}
    if multipart:
        metadata = _multipart_metadata(body, metadata)
        image = _read_image(body, image, out)

    _check_audio(body, metadata, out)
    for key in body:
        if key not in KNOWN_TOP_LEVEL and key not in AUDIO_FIELDS and not multipart:
            out.warn(f"Top-level field {_describe(key)} is not part of this API and is not sent; "
                     "put extra generation parameters in metadata.")

    model = _read_model(body, out)
    prompt = _read_prompt(body, out)
    if multipart:
        duration, duration_source = _resolve_seconds(body, metadata, out)
    else:
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
        if multipart:
            why = "" if duration_source == "seconds" else " (the default for an image request: only seconds sets the length)"
            out.error("seconds", "duration_requires_8",
                      f'{resolution} needs seconds "8"; the length would be {duration} s{why}. Send seconds="8".')
        else:
            out.error(
                duration_source if duration_source != "default" else "duration",
                "duration_requires_8",
                f'{resolution} needs a duration of "8" seconds; {duration} s is only available at 720p.',
            )
    if image is not None and resolution and aspect:
        _warn_image_size(image, pixel_size(resolution, aspect), out)

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
    return _finish(out, effective, source, metadata, model, image=image, multipart=multipart)


def _finish(out: _Collector, effective: dict, source: dict, metadata: Mapping, model: str | None, *,
            image: ImageFacts | None = None, multipart: bool = False) -> Resolution:
    ok = not out.errors
    if not effective:
        effective = {k: None for k in ("model", "prompt", "duration", "resolution", "aspect_ratio", "size", "seed", "negative_prompt")}
        source = {"duration": "default", "resolution": "default", "aspect_ratio": "default"}
    wire = None
    if ok:
        wire = _multipart_wire(effective, metadata, image) if multipart else _wire_body(effective, metadata)
    return Resolution(
        ok=ok,
        effective=effective,
        source=source,
        errors=tuple(out.errors),
        warnings=tuple(out.warnings),
        wire=wire,
        price_usd=price_usd(model) if model else None,
        overrides=tuple(out.overrides),
        image=image,
        transport="multipart" if multipart else "json",
    )


# ---------------------------------------------------------------- image-to-video (multipart)


def _form_value(key: str, value: Any) -> Any:
    """Numeric form text as a number, as the gateway converts unknown multipart fields into metadata."""
    if key in _TEXT_METADATA or not isinstance(value, str):
        return value
    text = value.strip()
    if _FORM_INT.fullmatch(text):
        return int(text)
    if _FORM_FLOAT.fullmatch(text):
        return float(text)
    return value


def _multipart_metadata(body: Mapping, metadata: Mapping) -> dict[str, Any]:
    """The gateway's multipart reading: a field it does not know goes into metadata (explicit metadata wins)."""
    moved = {key: value for key, value in body.items()
             if isinstance(key, str) and key not in KNOWN_TOP_LEVEL and key not in AUDIO_FIELDS and key != IMAGE_FIELD}
    merged = {**moved, **metadata}
    return {key: _form_value(key, value) for key, value in merged.items()}


def _read_image(body: Mapping, image: ImageFacts | None, out: _Collector) -> ImageFacts | None:
    if IMAGE_FIELD not in body:
        return image
    value = body.get(IMAGE_FIELD)
    if value is _REPORTED:
        return None
    if isinstance(value, (list, tuple)):
        if len(value) > 1:
            out.error(IMAGE_FIELD, "too_many_images",
                      f"Only one reference image is accepted; {len(value)} were given (the API would keep only the "
                      "first). Remove the others.")
            return None
        if not value:
            out.error(IMAGE_FIELD, "required", "input_reference is empty: give one image (a file path or a data: URI).")
            return None
    if image is None:  # the caller reads the image (lab.image_input.resolve); nothing is opened here
        out.error(IMAGE_FIELD, "not_read", "The reference image was not read before the request was checked, "
                  "so it cannot be sent (a bug in the lab: read it with lab.image_input.resolve).")
        return None
    if not image.ok:
        out.error(IMAGE_FIELD, image.error_code or "invalid_value", image.error or "The image cannot be used.")
        return None
    return image


def _resolve_seconds(body: Mapping, metadata: Mapping, out: _Collector) -> tuple[str | None, str]:
    """The later i2v page: only `seconds` sets the length; `duration` is silently ignored (4 s then)."""
    raw = body.get("seconds")
    if raw is None:
        effective, source = IMAGE_DEFAULT_SECONDS, "default"
    else:
        source = "seconds"
        effective = _duration_candidate("seconds", raw, out)
        if effective is not None and effective not in DURATIONS:
            out.error("seconds", "invalid_value", f'seconds must be "4", "6" or "8", not {_describe(raw)}.')
            effective = None
    for name, ignored in (("duration", body.get("duration")), ("metadata.durationSeconds", metadata.get("durationSeconds"))):
        if ignored is None or ignored is _REPORTED:
            continue
        out.overrides.append(Override("duration", name, ignored, source))
        length = f"{effective} s" + (" (the default)" if source == "default" else "") if effective else "set by seconds"
        out.warn(
            f"{name}={_describe(ignored)} is ignored in an image request: the API reads the length only from "
            f"`seconds`, so the video will be {length}. Send seconds instead of {name.split('.')[-1]}."
        )
    return effective, source


def _ratio_text(width: int, height: int) -> str:
    from math import gcd

    divisor = gcd(width, height) or 1
    return f"{width // divisor}:{height // divisor}"


def _warn_image_size(image: ImageFacts, size: str, out: _Collector) -> None:
    """Warn (not refuse: Veo's page does not say it must match) when the image is not the output size."""
    if image.width is None or image.height is None:
        return
    width, height = parse_size(size) or (0, 0)
    if (image.width, image.height) == (width, height):
        return
    if abs(image.width * height - image.height * width) <= max(width, height):
        out.warn(f"The image is {image.width}x{image.height}, the video {size} (same aspect): it will be scaled. "
                 f"Scale it to {size} first to see exactly what is sent.")
        return
    out.warn(f"The image is {image.width}x{image.height} ({_ratio_text(image.width, image.height)}), the video {size} "
             f"({_ratio_text(width, height)}): Veo may crop or pad it. Crop & scale it to {size} first.")


def _form_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _multipart_wire(effective: Mapping, metadata: Mapping, image: ImageFacts | None) -> dict[str, Any]:
    """The form as sent: text fields in a stable order (metadata flattened), then the file part."""
    fields: dict[str, Any] = {
        "model": effective["model"],
        "prompt": effective["prompt"],
        "seconds": effective["duration"],
        "size": effective["size"],
    }
    for key, value in _wire_body(effective, metadata)["metadata"].items():
        fields[key] = _form_text(value)
    if image is not None:
        fields[IMAGE_FIELD] = {
            "path": image.path,
            "filename": f"{(image.sha256 or 'image')[:16]}.{image.extension or 'bin'}",
            "content_type": image.mime,
            "size_bytes": image.size_bytes,
            "sha256": image.sha256,
        }
    return fields


def is_multipart(wire: Mapping[str, Any]) -> bool:
    """True for a wire body that goes as multipart/form-data (it carries an image file part)."""
    return isinstance(wire.get(IMAGE_FIELD), Mapping)


def multipart_fields(wire: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The text fields of a multipart wire body, in order (the file part is ``image_part``)."""
    return [(key, _form_text(value)) for key, value in wire.items() if key != IMAGE_FIELD]


def image_part(wire: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The file part of a multipart wire body: path, filename, content_type, size_bytes, sha256."""
    part = wire.get(IMAGE_FIELD)
    return part if isinstance(part, Mapping) else None


def form_preview(wire: Mapping[str, Any]) -> str:
    """A multipart wire body as the form fields it sends, one per line (what the wire preview shows)."""
    lines = ["multipart/form-data"]
    for key, value in multipart_fields(wire):
        lines.append(f"  {key}={value}")
    part = image_part(wire)
    if part is not None:
        size = part.get("size_bytes")
        shown = f"{size / 1024:,.0f} KB" if isinstance(size, int) else "? KB"
        lines.append(f"  {IMAGE_FIELD}=@{part.get('filename')} ({part.get('content_type')}, {shown}, "
                     f"sha256 {str(part.get('sha256'))[:12]}...)")
    return "\n".join(lines)


def json_int(text: str) -> int | OversizedNumber:
    """``json.loads``'s parse_int: an int, or OversizedNumber past float64 (never int() of 4,301 digits)."""
    digits = len(text.lstrip("-"))
    # 310 digits already pass float64's range; int() of thousands of digits raises (and is slow).
    return OversizedNumber(text[:12], digits) if digits > 310 else int(text)


def json_float(text: str) -> float | OversizedNumber:
    """``json.loads``'s parse_float: a finite float, or OversizedNumber (1e400 is not infinity)."""
    value = float(text)
    return value if math.isfinite(value) else OversizedNumber(printable(text[:24]), 0)


def parse_json(text: str | bytes, *, max_bytes: int = BODY_MAX_BYTES) -> tuple[Any, Issue | None]:
    """JSON text (or UTF-8 bytes) to a value, or an Issue saying why not. Never raises.

    The size is checked before anything is parsed. Numbers too large for a float64 come
    back as ``OversizedNumber`` and NaN/Infinity as floats, so that ``resolve`` can name
    their field; nesting past what the decoder takes is an error here.
    """
    if isinstance(text, (bytes, bytearray)):
        if len(text) > max_bytes:
            return None, _too_large_issue(len(text), max_bytes)
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            return None, Issue("body", "invalid_text", f"The body is not UTF-8 text (byte {exc.start} is invalid).")
    elif not isinstance(text, str):
        return None, Issue("body", "invalid_type", f"The body must be JSON text, not {_json_type(text)}.")
    if len(text) > max_bytes or len(text.encode("utf-8", errors="surrogatepass")) > max_bytes:
        return None, _too_large_issue(len(text.encode("utf-8", errors="surrogatepass")), max_bytes)
    if not text.strip():
        return None, Issue("body", "invalid_json", "The body is not valid JSON: it is empty; write a JSON object as in the docs.")
    try:
        return json.loads(text, parse_int=json_int, parse_float=json_float), None
    except json.JSONDecodeError as exc:
        return None, Issue("body", "invalid_json",
                           f"The body is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.")
    except RecursionError:
        return None, Issue("body", "too_deep", f"The body is nested far more than {MAX_DEPTH} levels deep.")
    except ValueError as exc:
        return None, Issue("body", "invalid_json", f"The body is not valid JSON: {printable(str(exc))[:200]}.")


def _too_large_issue(size: int, max_bytes: int) -> Issue:
    return Issue("body", "too_large", f"The body is {size:,} bytes; a request body may be at most {max_bytes:,} bytes.")


def resolve_json(text: str | bytes, *, max_bytes: int = BODY_MAX_BYTES) -> Resolution:
    """``parse_json`` then ``resolve``: one Resolution for any text, never an exception."""
    body, problem = parse_json(text, max_bytes=max_bytes)
    return refusal(problem) if problem is not None else resolve(body)


def refusal(*issues: Issue) -> Resolution:
    """An invalid Resolution carrying ``issues`` (for a body that could not even be read)."""
    out = _Collector()
    out.errors.extend(issues)
    return _finish(out, {}, {}, {}, None)


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
    input_reference: str | None = None,
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
    if given(input_reference):
        body[IMAGE_FIELD] = input_reference
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


def shown_json(value: Any, indent: int | None = 2) -> str:
    """Any parsed body as text to show (never raises): bad text escaped, oversized numbers as written."""

    def fallback(item: Any) -> Any:
        if isinstance(item, OversizedNumber):
            return f"<{item.describe()}>"
        return f"<{type(item).__name__}>"

    try:
        text = printable(json.dumps(value, ensure_ascii=False, indent=indent, default=fallback))
        return text if len(text) <= 20_000 else text[:20_000] + "\n... (cut: the body is too large to show)"
    except (RecursionError, ValueError, TypeError):
        return "(this body is nested too deeply or is too large to show; see the errors)"


REDACTED_KEY = "$APIYI_API_KEY"


def curl_snippet(wire: Mapping[str, Any], base_url: str = DEFAULT_BASE_URL) -> str:
    """A copyable curl command; the key is a shell variable, never a value."""
    url = base_url.rstrip("/") + "/videos"
    if is_multipart(wire):
        # curl writes the multipart Content-Type (with its boundary) itself for --form.
        lines = [f"curl -sS -X POST {shlex.quote(url)}", f'-H "Authorization: Bearer {REDACTED_KEY}"']
        lines += [f"--form-string {shlex.quote(f'{key}={value}')}" for key, value in multipart_fields(wire)]
        part = image_part(wire) or {}
        file_field = f"{IMAGE_FIELD}=@{part.get('path')};type={part.get('content_type')}"
        lines.append(f"--form {shlex.quote(file_field)}")
        return " \\\n  ".join(lines)
    return (
        f"curl -sS -X POST {shlex.quote(url)} \\\n"
        f'  -H "Authorization: Bearer {REDACTED_KEY}" \\\n'
        '  -H "Content-Type: application/json" \\\n'
        f"  -d {shlex.quote(wire_json(wire))}"
    )


def python_snippet(wire: Mapping[str, Any], base_url: str = DEFAULT_BASE_URL) -> str:
    """A copyable requests snippet that reads the key from the environment."""
    if is_multipart(wire):
        part = image_part(wire) or {}
        fields = pprint.pformat(dict(multipart_fields(wire)), sort_dicts=False, width=88)
        return (
            "import os\n"
            "import requests\n\n"
            f"BASE_URL = {base_url.rstrip('/')!r}\n"
            'HEADERS = {"Authorization": f"Bearer {os.environ[\'APIYI_API_KEY\']}"}\n\n'
            f"fields = {fields}\n"
            f"IMAGE = {part.get('path')!r}\n\n"
            "# multipart/form-data: the text fields and one image in input_reference\n"
            'with open(IMAGE, "rb") as image:\n'
            "    resp = requests.post(\n"
            '        f"{BASE_URL}/videos", headers=HEADERS, data=fields,\n'
            f"        files={{\"input_reference\": ({part.get('filename')!r}, image, {part.get('content_type')!r})}},\n"
            "        timeout=60,\n"
            "    )\n"
            "resp.raise_for_status()\n"
            'print(resp.json()["task_id"])\n'
        )
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
