"""What the prompt lab shows, as pure functions and view-models: no gradio, testable alone.

``lab.ui`` turns component values into calls of these and their results back
into component updates. Form values become a raw body (``body_from_form``),
which goes through ``params.resolve`` like any pasted body; the resolution is
described in plain words (``effective_markdown``); a body becomes form values
again for presets and history (``form_from_body``).
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from lab import params
from lab.budget import BudgetView
from lab.errors import (
    ApiError,
    AuthError,
    BudgetExceeded,
    LabError,
    RateLimited,
    RequestInvalid,
    RequestRejected,
    Timeout,
)
from lab.lineage import describe_changes
from lab.store import IntentRecord, Review, TaskRecord

if TYPE_CHECKING:  # the HTTP client's stack (requests) is no part of the read-only commands' start
    from lab.runner import RunResult

NOT_SET = "(not set)"
# A run whose seed the service chose (none was sent) is named this everywhere; the short form where
# space is tight (gallery captions, the compare grid's field chips).
SERVICE_SEED = "seed picked by the service"
SERVICE_SEED_SHORT = "service seed"

# The single-run form, in the order the UI passes its components.
FORM_FIELDS: tuple[str, ...] = (
    "model",
    "prompt",
    "negative_prompt",
    "duration",
    "size",
    "resolution",
    "aspect_ratio",
    "seed",
    "duration_seconds",
    "seconds",
    "raw_mode",
    "raw_body",
    "image",
)

STAGES = ("queued", "rendering", "downloading", "thumbnails", "done")


def model_prices(models: Iterable[str]) -> str:
    """"Per completed video: fast $0.30, standard $1.20": the prices beside the choice.

    The choices themselves are the bare model ids, which fit a phone's width.
    """
    prices = [f"{model_short(m)} ${params.price_usd(m):.2f}" for m in models if params.price_usd(m) is not None]
    return "Per completed video: " + ", ".join(prices) if prices else ""


def choices_with_not_set(options: Iterable[str]) -> list[str]:
    return [NOT_SET, *options]


def _given(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip()) and value != NOT_SET
    return True


def _seed_value(seed: Any) -> Any:
    """A Number box gives floats; a whole float becomes an int, anything else is left for resolve to judge."""
    if not _given(seed):
        return None
    if isinstance(seed, float) and seed.is_integer():
        return int(seed)
    if isinstance(seed, str):
        text = seed.strip()
        # ASCII digits only, and never int() of thousands of digits: resolve judges the range.
        return int(text) if re.fullmatch(r"-?[0-9]{1,30}", text, re.ASCII) else text
    return seed


def _duration_seconds_value(value: Any) -> Any:
    if not _given(value):
        return None
    text = str(value).strip()
    return int(text) if re.fullmatch(r"[0-9]{1,6}", text, re.ASCII) else text


def body_from_form(
    model: Any = None,
    prompt: Any = None,
    negative_prompt: Any = None,
    duration: Any = None,
    size: Any = None,
    resolution: Any = None,
    aspect_ratio: Any = None,
    seed: Any = None,
    duration_seconds: Any = None,
    seconds: Any = None,
    raw_mode: bool = False,
    raw_body: str | None = None,
    image: Any = None,
) -> dict[str, Any]:
    """The raw request body the form describes; in raw mode, the pasted JSON replaces the form.

    Raises RequestInvalid when the pasted text is not JSON. Nothing is resolved here.
    """
    if raw_mode:
        text = (raw_body or "").strip()
        if not text:
            raise RequestInvalid("Raw body mode is on but the body is empty: paste a JSON object as in the docs.")
        body, problem = params.parse_json(text)
        if problem is not None:
            raise RequestInvalid(problem.message.replace("The body", "The raw body", 1), errors=[problem.to_dict()])
        return body
    return params.build_body(
        model=model if _given(model) else None,
        prompt=prompt if _given(prompt) else None,
        duration=duration if _given(duration) else None,
        seconds=seconds if _given(seconds) else None,
        size=size if _given(size) else None,
        resolution=resolution if _given(resolution) else None,
        aspect_ratio=aspect_ratio if _given(aspect_ratio) else None,
        seed=_seed_value(seed),
        negative_prompt=negative_prompt if _given(negative_prompt) else None,
        duration_seconds=_duration_seconds_value(duration_seconds),
        input_reference=image if _given(image) else None,
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def form_from_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """Form values that reproduce ``body`` (presets, history).

    When the form cannot show the body exactly (a number where the API wants a string,
    a value outside the choices, extra fields), raw mode is switched on with the body as written.
    """
    metadata = body.get("metadata") if isinstance(body.get("metadata"), Mapping) else {}
    needs_raw = not isinstance(body.get("metadata", {}), Mapping)
    known_meta = {"resolution", "aspectRatio", "seed", "negativePrompt", "durationSeconds"}
    shown_top = (*params.KNOWN_TOP_LEVEL, params.IMAGE_FIELD)
    needs_raw |= any(k not in shown_top for k in body) or any(k not in known_meta for k in metadata)
    image = body.get(params.IMAGE_FIELD)
    if image is not None and not isinstance(image, str):
        needs_raw = True

    def choice(value: Any, options: Iterable[str]) -> str:
        nonlocal needs_raw
        if value is None:
            return NOT_SET
        if isinstance(value, str) and value in options:
            return value
        needs_raw = True
        return NOT_SET

    def text(value: Any) -> str:
        nonlocal needs_raw
        if value is None:
            return ""
        if isinstance(value, str):
            return value
        needs_raw = True
        return ""

    seed = metadata.get("seed")
    if seed is not None and not _is_int(seed):
        needs_raw = True
    duration_seconds = metadata.get("durationSeconds")
    if duration_seconds is not None and not (_is_int(duration_seconds) and str(duration_seconds) in params.DURATIONS):
        needs_raw = True
    model = body.get("model")
    if model is not None and model not in params.MODELS:
        needs_raw = True
    values = {
        "model": model if model in params.MODELS else None,
        "prompt": text(body.get("prompt")),
        "negative_prompt": text(metadata.get("negativePrompt")),
        "duration": choice(body.get("duration"), params.DURATIONS),
        "size": choice(body.get("size"), params.SIZES),
        "resolution": choice(metadata.get("resolution"), params.RESOLUTIONS),
        "aspect_ratio": choice(metadata.get("aspectRatio"), params.ASPECT_RATIOS),
        "seed": str(seed) if _is_int(seed) else "",
        "duration_seconds": str(duration_seconds) if _is_int(duration_seconds) and str(duration_seconds) in params.DURATIONS else NOT_SET,
        "seconds": choice(body.get("seconds"), params.DURATIONS),
        "image": image if isinstance(image, str) else None,
    }
    values["raw_mode"] = needs_raw
    values["raw_body"] = json.dumps(body, ensure_ascii=False, indent=2)
    return values


# ---------------------------------------------------------------- the effective-request panel


def _shown(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return f"`{value}`" if value else '`""`'
    return f"`{json.dumps(value)}`"


def _escape_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _field_name(name: str) -> str:
    """A field name as code that may wrap after each "." (``metadata.<wbr>aspectRatio``) and nowhere else."""
    return "<code>" + ".<wbr>".join(html.escape(part) for part in name.split(".")) + "</code>"


def effective_markdown(resolution: params.Resolution, *, errors: bool = True) -> str:
    """Each effective value, the field it came from, what it overrode; errors, warnings, price.

    ``errors=False`` leaves the errors out, for a page that shows each next to its field.
    """
    eff = resolution.effective
    overridden: dict[str, list[str]] = {}
    for override in resolution.overrides:
        overridden.setdefault(override.setting, []).append(f"{_field_name(override.field)}={_shown(override.value)}")
    rows = [
        ("model", eff.get("model"), "model", ""),
        ("duration", eff.get("duration"), resolution.source.get("duration", "default"), "duration"),
        ("resolution", eff.get("resolution"), resolution.source.get("resolution", "default"), "resolution"),
        ("aspect ratio", eff.get("aspect_ratio"), resolution.source.get("aspect_ratio", "default"), "aspect_ratio"),
        ("pixel size", eff.get("size"), "resolution × aspect ratio", ""),
        ("seed", eff.get("seed"), "metadata.seed" if eff.get("seed") is not None else "picked by the service", ""),
    ]
    multipart = resolution.transport == "multipart"
    lines = ["| setting | effective | from | overrode |", "|---|---|---|---|"]
    for label, value, source, setting in rows:
        source_text = source if source in ("default", "picked by the service") else _field_name(source)
        if multipart and setting == "duration" and source == "default":
            source_text = "default for an image request"
        beaten = ", ".join(overridden.get(setting, [])) if setting else ""
        lines.append(f"| {label} | {_escape_cell(_shown(value))} | {_escape_cell(source_text)} | {_escape_cell(beaten)} |")
    out = ["\n".join(lines)]
    if multipart:
        out.insert(0, "**Sent as multipart/form-data, with `input_reference`** (image-to-video). "
                      "The length comes from `seconds` only: `duration` is ignored, and without `seconds` "
                      f"the video is {params.IMAGE_DEFAULT_SECONDS} s.")
    price = resolution.price_usd
    if resolution.ok:
        out.append(f"**Price:** ${price:.2f} if it completes (failed tasks are not billed).")
    elif price is not None:
        out.append(f"**Price:** ${price:.2f} per completed video.")
    if resolution.errors and errors:
        out.append("**Cannot send, fix these first:**\n" + "\n".join(f"- **{i.field}**: {i.message}" for i in resolution.errors))
    if resolution.warnings:
        out.append("**Warnings:**\n" + "\n".join(f"- {w}" for w in resolution.warnings))
    return "\n\n".join(out)


def image_summary(facts: params.ImageFacts | None) -> str:
    """One line about the reference image: format, pixel size, bytes; or why it cannot be sent."""
    if facts is None:
        return ""
    if not facts.ok:
        return f"**Image cannot be sent:** {facts.error}"
    kind = (facts.mime or "").split("/")[-1].upper()
    size = facts.size_bytes or 0
    amount = f"{size / 2**20:.1f} MB" if size >= 2**20 else f"{size / 1024:.0f} KB"
    return f"Reference image: {kind} · {facts.width}×{facts.height} px · {amount}"


@dataclass(frozen=True)
class Gate:
    """Whether Generate may be pressed, and the sentence that says why not."""

    ok: bool
    reason: str


# The form field that shows a request field's error (the rest are shown under the form).
FORM_FIELD_OF = {
    "model": "model", "prompt": "prompt", "duration": "duration", "seconds": "seconds", "size": "size",
    "metadata.durationSeconds": "duration_seconds", "metadata.resolution": "resolution",
    "metadata.aspectRatio": "aspect_ratio", "metadata.seed": "seed", "metadata.negativePrompt": "negative_prompt",
}
FIELD_ERRORS_MARKED = "Generate is disabled: fix what is marked in red."


def field_errors(resolution: params.Resolution) -> tuple[dict[str, str], list[str]]:
    """Each error once: by the form field it belongs to, and those no single field shows.

    A duration that needs 8 s is marked on the field the effective duration came from. A field
    that is only missing (``required``) is no mistake to mark in red: the Generate gate says it.
    """
    by_field: dict[str, list[str]] = {}
    general: list[str] = []
    for issue in resolution.errors:
        if issue.code == "required":
            continue
        field = issue.field
        if issue.code == "duration_requires_8" and resolution.source.get("duration") not in (None, "default"):
            field = resolution.source["duration"]
        name = FORM_FIELD_OF.get(field)
        if name is None:
            general.append(f"**{issue.field}**: {issue.message}")
        else:
            by_field.setdefault(name, []).append(issue.message)
    return {name: " ".join(messages) for name, messages in by_field.items()}, general


def field_warnings(resolution: params.Resolution | None) -> dict[str, str]:
    """Form fields the service will ignore, said under the field itself (not only in the panel).

    With a reference image the API reads the length only from ``seconds``: a duration typed in
    ``duration`` or ``metadata.durationSeconds`` silently loses, so the user is told where they typed it.
    """
    if resolution is None or resolution.image is None or resolution.effective is None:
        return {}
    length = resolution.effective.get("duration")
    out = {}
    for override in resolution.overrides:
        name = FORM_FIELD_OF.get(override.field)
        if override.setting == "duration" and name in ("duration", "duration_seconds"):
            out[name] = (f"Ignored with a reference image: the length comes only from seconds (under Advanced), "
                         f"so this video will be {length} s.")
    return out


def generate_gate(resolution: params.Resolution | None, problem: str | None = None) -> Gate:
    if problem:
        return Gate(False, f"Generate is disabled: {problem}")
    if resolution is None or not resolution.ok:
        count = len(resolution.errors) if resolution else 0
        first = resolution.errors[0].message if resolution and resolution.errors else "the request is invalid."
        more = f" (and {count - 1} more)" if count > 1 else ""
        return Gate(False, f"Generate is disabled: {first}{more}")
    return Gate(True, f"Ready: one {resolution.effective['model']} video, ${resolution.price_usd:.2f} if it completes.")


# ---------------------------------------------------------------- sweeps


def sweep_estimate_text(model: str | None, count: int, max_sweep: int, concurrency: int) -> str:
    """The cost shown before a sweep runs."""
    if count == 0:
        return "Enter seeds (or a number of random seeds) to see the estimate."
    if count > max_sweep:
        # sweeps.count_tasks stops counting past the limit, so the exact number is not known here.
        return (f"**More than {max_sweep} tasks: more than this lab allows at once ({max_sweep}).** "
                "Use fewer seeds or variants.")
    cost = params.sweep_price_usd(model or "", count)
    cost_text = f"up to **${cost:.2f}**" if cost is not None else "an unknown cost (pick a model)"
    return f"{count} task{'s' if count != 1 else ''}, {cost_text} if all complete; {min(count, concurrency)} run at once."


# ---------------------------------------------------------------- progress


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = max(0, int(round(seconds)))
    minutes, secs = divmod(seconds, 60)
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def eta_text(elapsed_s: float, median_s: float | None) -> str:
    """"about 40s left" from this lab's past runs of the same model/resolution/duration."""
    if median_s is None:
        return "no estimate yet (no finished run with these settings in this lab)"
    left = median_s - elapsed_s
    if left <= 0:
        return f"taking longer than usual (typical: {format_seconds(median_s)})"
    return f"about {format_seconds(left)} left (typical: {format_seconds(median_s)})"


def stage_markdown(stage: str, elapsed_s: float, median_s: float | None, task_id: str | None = None, note: str = "") -> str:
    """A staged progress line: queued → rendering → downloading → thumbnails, with the current one bold."""
    steps = []
    reached = STAGES.index(stage) if stage in STAGES else -1
    for i, name in enumerate(STAGES[:-1]):
        if i < reached:
            steps.append(f"~~{name}~~ ✓")
        elif i == reached:
            steps.append(f"**{name}…**")
        else:
            steps.append(name)
    head = " → ".join(steps) if stage != "done" else "**done** ✓"
    parts = [head, f"elapsed {format_seconds(elapsed_s)}"]
    if stage in ("queued", "rendering"):
        parts.append(eta_text(elapsed_s, median_s))
    if task_id:
        parts.append(f"task `{task_id}`")
    text = " · ".join(parts)
    return f"{text}\n\n{note}" if note else text


STATUS_TO_STAGE = {"queued": "queued", "in_progress": "rendering", "unknown": "rendering"}


def stage_for_event(kind: str, status: str | None) -> str | None:
    """Map a runner event to a progress stage (None: no change)."""
    if kind == "submitted":
        return "queued"
    if kind == "status":
        return STATUS_TO_STAGE.get(status or "", None if status in ("completed", "failed") else "rendering")
    if kind == "downloading":
        return "downloading"
    if kind in ("saved", "thumbnails"):
        return "thumbnails"
    if kind == "done":
        return "done"
    return None


NOTHING_TO_STOP = "Nothing is running in this tab, so there is nothing to move to the background."
BACKGROUND_BUTTON = "Continue in background"


def stopped_waiting_text(task_id: str | None, *, sweep: bool = False) -> str:
    """What "Continue in background" says: the task(s) may still complete and bill, and stay in the journal."""
    if sweep:
        return ("Continuing in the background: this page no longer waits for this sweep, but tasks already "
                "submitted may still complete and be billed. "
                "They stay in the journal: this lab keeps checking in the background and saves each to "
                "**History** when it completes; after a restart, press **Fetch unfinished** to download them. "
                "This sweep gets no contact sheet or ZIP.")
    text = ("Continuing in the background: this page no longer waits, but the task was already submitted and "
            "may still complete and be billed. It stays in the journal; the lab keeps checking and **shows the "
            "video here when it completes** (it is also saved to **History**). After a restart, press "
            "**Fetch unfinished** to download it.")
    if task_id:
        text += f" (task `{task_id}`)"
    return text


def background_done_text(record: TaskRecord) -> str:
    """What the page says when a task it stopped waiting for has finished."""
    if record.status == "saved":
        return (f"**Finished in the background:** task `{record.task_id}` completed and was saved "
                f"({money(record.cost_usd)}). Its video is below and in **History**.")
    return (f"**Finished in the background:** task `{record.task_id}` ended as {record.status}"
            + (f": {record.error}" if record.error else "") + ". See **History**.")




# ---------------------------------------------------------------- view-models of runs, sweeps and history


def no_path_keys(value: Any) -> Any:
    """gradio_client treats any dict with a "path" string as a file: rename such keys in JSON outputs."""
    if isinstance(value, dict):
        return {("path_" if k == "path" else k): no_path_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [no_path_keys(v) for v in value]
    return value


def money(usd: float | None) -> str:
    return "—" if usd is None else f"${usd:.2f}"


def thumb_caption(path: str | Path) -> str:
    """``task_3_4.00s.jpg`` -> ``4.0 s``: only for journal rows from before frame times were journalled."""
    try:
        return f"{float(Path(path).stem.rsplit('_', 1)[1].rstrip('s')):.1f} s"
    except (IndexError, ValueError):
        return ""


def thumb_time(caption: str | None, path: str | Path = "") -> float | None:
    """A gallery thumbnail's frame time in seconds: from its caption ("4.0 s"), else its old-style name."""
    for text in ((caption or "").removesuffix(" s"), Path(path).stem.rsplit("_", 1)[-1].rstrip("s")):
        try:
            return float(text)
        except ValueError:
            continue
    return None


def thumbnails(record: TaskRecord | None) -> list[tuple[str, str]]:
    """(path, caption) of a run's thumbnails that are on disk; the caption is the journalled frame time."""
    if record is None:
        return []
    return [(path, f"{t:.1f} s" if t is not None else thumb_caption(path))
            for path, t in zip(record.thumb_paths, record.thumb_times) if Path(path).is_file()]


def model_short(model: str | None) -> str:
    """"fast" / "standard" for the history table (the full id is in the run's details)."""
    if not model:
        return ""
    return "fast" if model == params.FAST_MODEL else "standard" if model == params.STANDARD_MODEL else model


def _spend_part(spent: float, held: float, remaining: float | None, cap: float | None) -> str:
    text = f"**${spent:.2f}** spent"
    if held > 0:
        text += f", ${held:.2f} held for tasks still running"
    if remaining is not None and cap is not None:
        text += f", ${remaining:.2f} left of the ${cap:.2f} cap"
    return text


def spend_text(view: BudgetView, *, simulated: bool, session_cap: float | None = None,
               day_cap: float | None = None, person_cap: float | None = None, person: str | None = None) -> str:
    """Spent and held apart, each against its cap: "left" is the cap minus both.

    With a person (``lab.people``), their own spend today across all their sessions and API
    clients stands beside the session's (``person`` names them, e.g. "Hugging Face user alice").
    """
    head = "**Simulated spend** (simulator prices, nothing is billed)" if simulated else "**Spend**"
    session = _spend_part(view.session_spent_usd, view.session_reserved_usd, view.session_remaining_usd, session_cap)
    day = _spend_part(view.day_spent_usd, view.day_reserved_usd, view.day_remaining_usd, day_cap)
    mine = ""
    if view.person_spent_usd is not None:
        whom = f" ({person})" if person else ""
        mine = (f" · you today{whom}, all your sessions: "
                + _spend_part(view.person_spent_usd, view.person_reserved_usd, view.person_remaining_usd, person_cap))
    return f"{head}: this session {session}{mine} · today, all visitors: {day}"


def banner_text(view: BudgetView, *, backend: str, has_server_key: bool, visitor_key: bool = False,
                session_cap: float | None = None, day_cap: float | None = None, person_cap: float | None = None,
                person: str | None = None) -> str:
    """The line above the tabs: which backend, whose key, what was spent (and held) against the caps."""
    caps = {"session_cap": session_cap, "day_cap": day_cap, "person_cap": person_cap, "person": person}
    if visitor_key:
        spend = spend_text(view, simulated=False, **caps)
        return ("**Backend:** live APIYI with **your own key**, held for this browser session only "
                f"(completed videos are billed to you) · {spend}")
    simulated = backend == "simulator"
    if simulated:
        text = "**Backend:** embedded simulator (real HTTP, real MP4s)"
    else:
        text = "**Backend:** live APIYI (completed videos are billed)"
    key = "**API key:** set on the server" if has_server_key else "**API key:** not set"
    return f"{text} · {key}  \n{spend_text(view, simulated=simulated, **caps)}"


def failure_note(err: LabError) -> str:
    """A LabError in plain words, saying whether anything was sent or billed."""
    if isinstance(err, RequestInvalid):
        return f"The request is invalid, nothing was sent: {err}"
    if isinstance(err, BudgetExceeded):
        return str(err)
    if isinstance(err, AuthError):
        return f"The service refused the API key, nothing was generated: {err}"
    if isinstance(err, RateLimited):
        wait = f" Try again in {err.retry_after:.0f} s." if err.retry_after else " Try again in a minute."
        return f"The service is rate limiting requests, nothing was generated.{wait} ({err})"
    if isinstance(err, RequestRejected):
        return f"The service rejected the request, nothing was generated or billed: {err}"
    if isinstance(err, Timeout):
        return (f"Gave up waiting: {err}. The task may still complete and be billed; it is in the journal, "
                "so **Fetch unfinished** can download it later.")
    if isinstance(err, ApiError):
        return f"The service answered with an error: {err}"
    return str(err)


def result_message(result: RunResult) -> str:
    """One task's outcome in plain words."""
    if result.ok:
        return "Saved and verified."
    if result.status == "failed":
        return f"The service reported the task failed (failed tasks are not billed): {result.error or 'no detail given'}"
    if result.status == "not_submitted":
        return f"Not submitted: {result.error}"
    if result.status == "outcome_unknown":
        return (f"Sent, outcome unknown: may have been created and billed ({result.error or 'no answer'}). "
                "Check the account's task list; the lab never sends it again by itself.")
    return (f"Unfinished ({result.status}): {result.error or 'no detail'}. The task may still complete and be billed; "
            "it stays in the journal, so **Fetch unfinished** can download it later.")


@dataclass(frozen=True)
class RunOutcome:
    """One finished (or given-up) single run, ready for the components."""

    ok: bool
    task_id: str | None
    status: str
    message: str
    video: str | None
    thumbnails: list[tuple[str, str]]
    wire: dict[str, Any] | None
    answer: dict[str, Any] | None
    cost_usd: float
    elapsed_s: float | None
    seed: int | None
    backend: str
    predicted: dict[str, Any] | None = None  # the lab's effective values
    delivered: dict[str, Any] | None = None  # what the saved video is: {"size": "1280x720", "duration_s": 8.0}

    @classmethod
    def of(cls, result: RunResult, *, backend: str, delivered: dict[str, Any] | None = None) -> "RunOutcome":
        """A run this page waited for. Its answer is the journal's (``final_answer``), as for a re-attached run."""
        record = result.record
        return cls(
            ok=result.ok,
            task_id=result.task_id,
            status=result.status,
            message=result_message(result),
            video=str(result.video_path) if result.ok and result.video_path else None,
            thumbnails=thumbnails(record),
            wire=record.wire if record else None,
            answer=(dict(record.final_answer or {}) or None) if record else None,
            cost_usd=result.cost_usd,
            elapsed_s=record.elapsed_s if record else None,
            seed=record.seed if record else None,
            backend=backend,
            predicted=dict(record.effective) if record else None,
            delivered=delivered,
        )

    @classmethod
    def of_record(cls, record: TaskRecord, *, backend: str,
                  delivered: dict[str, Any] | None = None) -> "RunOutcome":
        """A run the journal knows has ended (one the page stopped waiting for).

        Its answer is the one the journal kept from when the task ended (``final_answer``).
        """
        ok = record.status == "saved"
        return cls(
            ok=ok, task_id=record.task_id, status=record.status,
            message="Saved and verified." if ok else (record.error or record.status),
            video=record.video_path if ok and record.video_path and Path(record.video_path).is_file() else None,
            thumbnails=thumbnails(record), wire=record.wire or None, answer=dict(record.final_answer or {}) or None,
            cost_usd=record.cost_usd or 0.0, elapsed_s=record.elapsed_s, seed=record.seed, backend=backend,
            predicted=dict(record.effective), delivered=delivered,
        )

    def summary(self) -> dict[str, Any]:
        """The JSON the /generate endpoint returns: no key, no "path" fields."""
        return {
            "ok": self.ok,
            "task_id": self.task_id,
            "status": self.status,
            "message": self.message,
            "seed": self.seed,
            "cost_usd": round(self.cost_usd, 2),
            "elapsed_s": self.elapsed_s,
            "video_file": Path(self.video).name if self.video else None,
            "thumbnail_count": len(self.thumbnails),
            "request": self.wire,
            "answer": self.answer,
            "backend": self.backend,
        }

    def summary_markdown(self) -> str:
        cost = f"**Cost:** {money(self.cost_usd)}" + ("" if self.ok else " (not billed unless it completes)")
        parts = [cost, f"**Task:** `{self.task_id or '—'}`", f"**Status:** {self.status}"]
        if self.elapsed_s is not None:
            parts.append(f"**Time taken:** {format_seconds(self.elapsed_s)}")
        if self.seed is not None:
            parts.append(f"**Seed:** {self.seed}")
        return " · ".join(parts)


def prediction_check(predicted: Mapping[str, Any] | None, answer: Mapping[str, Any] | None,
                     delivered: Mapping[str, Any] | None) -> str:
    """The lab's prediction beside what the service answered and delivered, row by row."""
    if not predicted:
        return ""
    answer = answer or {}
    delivered = delivered or {}
    rows = [("model", predicted.get("model"), answer.get("model"))]
    rows.append(("pixel size", predicted.get("size"), delivered.get("size")))
    duration = delivered.get("duration_s")
    rows.append(("duration", f"{predicted.get('duration')} s" if predicted.get("duration") else None,
                 f"{duration:.1f} s" if isinstance(duration, (int, float)) else None))
    lines = ["| | lab predicted | service gave | |", "|---|---|---|---|"]
    for label, lab_value, service_value in rows:
        if service_value is None:
            verdict = "not reported"
        elif label == "duration":
            verdict = "✓ same" if abs(float(service_value.split()[0]) - float(lab_value.split()[0])) < 0.5 else "**differs**"
        else:
            verdict = "✓ same" if str(service_value) == str(lab_value) else "**differs**"
        lines.append(f"| {label} | {_escape_cell(_shown(lab_value))} | {_escape_cell(_shown(service_value))} | {verdict} |")
    return "**Prediction vs result**\n\n" + "\n".join(lines)


@dataclass(frozen=True)
class RowView:
    """What one sweep row shows (the task id apart: the row shows it short, with a copy button)."""

    index: int
    label: str
    video: str | None = None
    thumbnails: list[tuple[str, str]] | None = None
    finished: bool = False
    task_id: str | None = None


def sweep_row(index: int, heading: str, record: TaskRecord | None, *, running: bool,
              problem: str | None = None, outcome_unknown: bool = False) -> RowView:
    """One sweep row from the journal's record of its task, read the same while the sweep runs, when it ends
    and after a reload.

    ``record``: the row's latest task (None: not submitted); ``running``: the row's task is still
    being waited on; ``problem``: why a row without a task has none (its submit failed);
    ``outcome_unknown``: its submit was sent and never answered, so a task may exist (and bill).
    """
    head = f"**{heading}**"
    if record is None:
        if running:
            return RowView(index, f"{head} · waiting…")
        if outcome_unknown:
            return RowView(index, f"{head} · sent, outcome unknown: it may have been created and billed. "
                                  "Check your account's task list; the lab never sends it again by itself",
                           finished=True)
        return RowView(index, f"{head} · " + (f"failed: {problem}" if problem else "not submitted"), finished=True)
    task = record.task_id
    if record.status == "saved":
        shown = thumbnails(record) or None
        if running and shown is None:
            return RowView(index, f"{head} · saved · making thumbnails…", video=record.video_path, task_id=task)
        took = f" · {format_seconds(record.elapsed_s)}" if record.elapsed_s else ""
        return RowView(index, f"{head} · saved · {money(record.cost_usd)}{took}", video=record.video_path,
                       thumbnails=shown, finished=True, task_id=task)
    if record.status == "failed":
        return RowView(index, f"{head} · failed: {record.error or 'no detail given'}", finished=True, task_id=task)
    if running:
        state = {"queued": "queued", "completed": "downloading"}.get(record.status, "rendering")
        return RowView(index, f"{head} · {state}", task_id=task)
    return RowView(index, f"{head} · unfinished ({record.status}): it may still complete and bill; "
                          "**Fetch unfinished** saves it", finished=True, task_id=task)


def sweep_row_heading(seed: int, variant: int | None) -> str:
    """A row's heading: its seed, and its variant's number when the sweep has variants (the text is shown below)."""
    return f"seed {seed}" if variant is None else f"variant {variant} · seed {seed}"


def sweep_headings(rows: Sequence[tuple[str, Mapping[str, Any]]]) -> list[tuple[str, str | None]]:
    """Each row's (heading, its variant's prompt or None) from its plan label and request, in row order.

    The heading is ``seed 7``, or ``variant 2 · seed 7`` in a sweep of prompt variants (the
    variant's text goes under it): the same for a sweep being run, finished or reloaded.
    """
    variants: list[str] = []
    shown: list[tuple[str, str | None]] = []
    for label, body in rows:
        metadata = body.get("metadata") if isinstance(body, Mapping) else None
        seed = metadata.get("seed") if isinstance(metadata, Mapping) else None
        label = str(label)
        if not isinstance(seed, int) or isinstance(seed, bool):
            shown.append((label, None))
            continue
        if label.startswith("seed "):  # sweeps.plan labels a row without a variant "seed N"
            shown.append((sweep_row_heading(seed, None), None))
            continue
        variant = label.rsplit(" · seed ", 1)[0]  # the variant's quoted start (numbered when two read alike)
        if variant not in variants:
            variants.append(variant)
        prompt = body.get("prompt")
        shown.append((sweep_row_heading(seed, variants.index(variant) + 1), prompt if isinstance(prompt, str) else None))
    return shown


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~<>$])")


def literal_markdown(text: str) -> str:
    """``text`` escaped so Markdown shows it as typed (a prompt with *, _, # or $ stays a prompt)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def short_task_id(task_id: str, head: int = 9, tail: int = 4) -> str:
    """``task_uTT3C30xOHBky5hQ`` -> ``task_uTT3…y5hQ``: enough to tell rows apart; the full id is copied."""
    return task_id if len(task_id) <= head + tail + 1 else f"{task_id[:head]}…{task_id[-tail:]}"


def task_id_html(task_id: str | None) -> str:
    """A row's task id: short, with the full id in a tooltip and a copy button (the page copies it)."""
    if not task_id:
        return ""
    full = html.escape(task_id, quote=True)
    return (f'<span class="task-id"><code title="{full}">{html.escape(short_task_id(task_id))}</code> '
            f'<button type="button" class="copy-task-id" data-task-id="{full}" '
            f'aria-label="Copy task id {full}">Copy id</button></span>')


@dataclass(frozen=True)
class SweepOutcome:
    """A sweep once its run is over, as the journal has it: every row's latest task, its sheet and ZIP."""

    results: tuple[RunResult, ...]
    contact_sheet: str | None
    zip_path: str | None
    cost_usd: float
    elapsed_s: float
    sweep_id: str

    def summary(self) -> dict[str, Any]:
        """The JSON the /sweep endpoint returns: one entry per task, in row order."""
        return {
            "sweep_id": self.sweep_id,
            "ok": bool(self.results) and all(r.ok for r in self.results),
            "cost_usd": self.cost_usd,
            "elapsed_s": self.elapsed_s,
            "contact_sheet_file": Path(self.contact_sheet).name if self.contact_sheet else None,
            "zip_file": Path(self.zip_path).name if self.zip_path else None,
            "results": [
                {
                    "label": r.label,
                    "task_id": r.task_id,
                    "status": r.status,
                    "ok": r.ok,
                    "seed": r.record.seed if r.record else None,
                    "cost_usd": round(r.cost_usd, 2),
                    "video_file": r.video_path.name if r.video_path else None,
                    "thumbnail_count": len(r.thumbs),
                    "error": r.error,
                }
                for r in self.results
            ],
        }

    def summary_markdown(self) -> str:
        saved = sum(1 for r in self.results if r.ok)
        failed = len(self.results) - saved
        return (f"**Done:** {saved} of {len(self.results)} saved"
                + (f", {failed} without a video" if failed else "")
                + f" · **cost** {money(self.cost_usd)} · {format_seconds(self.elapsed_s)}")


def resume_text(results: Sequence[RunResult], held: Sequence[str]) -> str:
    """What "Fetch unfinished" says: what it fetched, and what it left to the waits already running."""
    waited = (f"{len(held)} unfinished task(s) are still being waited on in the background; each is saved to "
              "the journal (see **History**) as soon as it completes.")
    if not results:
        return waited if held else ("Nothing unfinished in the journal: every task is saved or failed. "
                                    "Finished videos are in **History**.")
    saved = [r for r in results if r.ok]
    failed = [r for r in results if r.status == "failed"]
    unfinished = len(results) - len(saved) - len(failed)
    lines = [f"Fetched unfinished tasks: {len(saved)} saved, {len(failed)} failed, {unfinished} still unfinished."]
    lines += [f"- `{r.task_id}`: {result_message(r)}" for r in results]
    if held:
        lines.append(waited)
    lines.append("See the **History** tab.")
    return "\n".join(lines)


HISTORY_HEADERS = ["when", "prompt", "status", "cost", "took", "model", "res.", "aspect", "dur.", "seed", "review",
                   "pre-screen", "task id"]


@dataclass(frozen=True)
class HistoryView:
    """Table rows, gallery items and the task id behind each (newest first)."""

    rows: list[list[Any]]
    gallery: list[tuple[str, str]]
    table_ids: list[str]
    gallery_ids: list[str]


REVIEW_STATUS_MARKS = {"approved": "✓ Approved", "changes_requested": "✎ Changes requested", "rejected": "✗ Rejected",
                       "needs_review": "Needs review"}


def review_status_text(take: Any) -> str:
    """A take's review status and comment count ("✓ Approved · 2 comments"); nothing for a take nobody reviewed."""
    if take is None or (not take.history and not take.comments):
        return ""
    count = len(take.comments)
    text = REVIEW_STATUS_MARKS.get(take.status, take.status)
    return text + (f" · {count} comment{'s' * (count != 1)}" if count else "")


def review_text(review: Review | None, take: Any = None) -> str:
    """A run's review in a table cell: "✓ Approved · 1 comment · 👍 ★ picked · the note"."""
    status = review_status_text(take)
    if review is None:
        return status
    parts = [{1: "👍", -1: "👎"}.get(review.rating, ""), "★ picked" if review.picked else ""]
    text = " · ".join(p for p in (status, " ".join(p for p in parts if p)) if p)
    note = " ".join((review.note or "").split())
    if note:
        text += (" · " if text else "") + (note[:60] + ("…" if len(note) > 60 else ""))
    return text


# Where a saved take's pre-screen stands (screen_state decides it, nowhere else).
SCREENED = "screened"  # its screen is journalled: badges or "no issues found", whatever the setting says now
SCREEN_PENDING = "pending"  # the lab's pre-screen is on and will journal one
SCREEN_OFF = "off"  # the lab's pre-screen is off (setting prescreen): none is coming
NOT_SCREENED = "not screened (pre-screen off)"
NOT_SCREENED_SHORT = "not screened (off)"  # under History's "pre-screen" header, in a 96 px column
NOT_SCREENED_TITLE = ("The pre-screen is off in this lab, so this take was not checked for frozen, black, silent, "
                      "cut or flickering stretches. Set LAB_PRESCREEN=on to screen each saved take "
                      "(or python -m lab screen TASK for one).")


def screen_state(screen: Mapping[str, Any] | None, *, prescreen: bool) -> str:
    """A saved take's pre-screen: SCREENED, SCREEN_PENDING (one is coming) or SCREEN_OFF (none is coming).

    ``prescreen`` is the lab's setting: only with it on does a take without a screen wait for one (a take
    never screened is "not screened", never "no issues found").
    """
    if screen:
        return SCREENED
    return SCREEN_PENDING if prescreen else SCREEN_OFF


def screen_summary(record: TaskRecord, screen: Mapping[str, Any] | None, *, prescreen: bool,
                   short: bool = False) -> str:
    """A take's pre-screen in a few words: its badges, 'no issues found', 'pending', 'not screened
    (pre-screen off)' ('not screened (off)' when ``short``), or '' (no video)."""
    if record.status != "saved":
        return ""
    state = screen_state(screen, prescreen=prescreen)
    if state != SCREENED:
        return SCREEN_PENDING if state == SCREEN_PENDING else NOT_SCREENED_SHORT if short else NOT_SCREENED
    badges = [b.get("text", "") for b in screen.get("badges") or []]
    return ", ".join(badges) if badges else "no issues found"


def screen_caption(record: TaskRecord, screen: Mapping[str, Any] | None) -> str:
    """The tile's pre-screen line: '✓ no issues', '⚠ frozen 1.0–2.2 s +1', or '' when not screened (yet)."""
    if record.status != "saved" or not screen:
        return ""
    badges = [b.get("text", "") for b in screen.get("badges") or []]
    if not badges:
        return "✓ no issues"
    more = f" +{len(badges) - 1}" if len(badges) > 1 else ""
    return f"⚠ {badges[0]}{more}"


def badges_html(screen: Mapping[str, Any] | None, video_selector: str, *, prescreen: bool) -> str:
    """A take's badges as HTML buttons; a click seeks the video ``video_selector`` names (lab/static/badges.js)."""
    state = screen_state(screen, prescreen=prescreen)
    if state == SCREEN_PENDING:
        return ('<div class="lab-badges"><span class="lab-badge lab-badge-pending" '
                'title="The pre-screen runs in the background after the video is saved">pre-screen pending</span></div>')
    if state == SCREEN_OFF:
        return (f'<div class="lab-badges"><span class="lab-badge lab-badge-off" '
                f'title="{html.escape(NOT_SCREENED_TITLE, quote=True)}">{html.escape(NOT_SCREENED)}</span></div>')
    badges = list(screen.get("badges") or [])
    if not badges:
        return ('<div class="lab-badges"><span class="lab-badge lab-badge-clean" title="No frozen, black, silent, '
                'cut or flickering stretch found">no issues found</span></div>')
    parts = []
    for badge in badges:
        kind = html.escape(str(badge.get("kind", "")), quote=True)
        text = html.escape(str(badge.get("text", "")))
        title = html.escape(str(badge.get("title", "")), quote=True)
        at = badge.get("at")
        if at is None:
            parts.append(f'<span class="lab-badge lab-badge-{kind}" title="{title}">{text}</span>')
        else:
            parts.append(f'<button type="button" class="lab-badge lab-badge-{kind}" data-seek="{float(at):.3f}" '
                         f'data-video="{html.escape(video_selector, quote=True)}" '
                         f'title="{title} Click to go to {float(at):.2f} s.">{text}</button>')
    return '<div class="lab-badges">' + "".join(parts) + "</div>"


def history_view(records: Sequence[TaskRecord], reviews: Mapping[str, Review] | None = None,
                 takes: Mapping[str, Any] | None = None,
                 screens: Mapping[str, Mapping[str, Any]] | None = None, *, prescreen: bool) -> HistoryView:
    """``reviews`` (task id -> Review, from the Compare tab) and ``takes`` (task id -> lab.review TakeReview:
    status and comments) fill the review column; a reviewed take's tile says its status; ``screens``
    (task id -> the pre-screen's JSON) fill the pre-screen column and a line on each tile; ``prescreen``
    (the lab's setting) says whether a take without one is pending or not screened."""
    reviews = reviews or {}
    takes = takes or {}
    screens = screens or {}
    rows, gallery, table_ids, gallery_ids = [], [], [], []
    for record in records:
        when = dt.datetime.fromtimestamp(record.created_at).strftime("%m-%d %H:%M:%S")
        prompt = (record.prompt or "").replace("\n", " ")
        rows.append([
            when, prompt[:120] + ("…" if len(prompt) > 120 else ""), record.status, money(record.cost_usd),
            format_seconds(record.elapsed_s) if record.elapsed_s else "", model_short(record.model),
            record.resolution or "", record.aspect_ratio or "", record.duration or "",
            "" if record.seed is None else str(record.seed),
            review_text(reviews.get(record.task_id), takes.get(record.task_id)),
            screen_summary(record, screens.get(record.task_id), prescreen=prescreen, short=True), record.task_id,
        ])
        table_ids.append(record.task_id)
        thumbs = thumbnails(record)
        # Every saved run is in the gallery: by its middle thumbnail, or by the video itself when
        # its thumbnails were never made (a process killed while making them).
        picture = thumbs[len(thumbs) // 2][0] if thumbs else (
            record.video_path if record.status == "saved" and record.video_path and Path(record.video_path).is_file()
            else None)
        if picture:
            status = review_status_text(takes.get(record.task_id))
            caption = history_caption(record)
            line = screen_caption(record, screens.get(record.task_id))
            lines = [caption] + [extra for extra in (line, status) if extra]
            gallery.append((picture, "\n".join(lines)))
            gallery_ids.append(record.task_id)
    return HistoryView(rows, gallery, table_ids, gallery_ids)


SWEEP_HEADERS = ["when", "tasks", "saved", "failed", "cost", "sweep id"]


def sweep_rows(sweeps: Sequence[Any]) -> list[list[Any]]:
    """The History tab's sweeps, one group per row (``store.SweepRecord``s, newest first)."""
    return [[dt.datetime.fromtimestamp(s.created_at).strftime("%m-%d %H:%M:%S"), s.task_count, s.saved, s.failed,
             money(s.cost_usd), s.sweep_id] for s in sweeps]


def history_caption(record: TaskRecord) -> str:
    """A gallery tile's caption in three short lines (status and cost, seed, date): no line needs cutting."""
    seed = SERVICE_SEED_SHORT if record.seed is None else f"seed {record.seed}"
    when = dt.datetime.fromtimestamp(record.created_at).strftime("%m-%d %H:%M")
    return f"{record.status} · {money(record.cost_usd)}\n{seed}\n{when}"


def history_empty_text(query: str | None, count: int, *, issues_only: bool = False, prescreen: bool = True) -> str:
    """What the History tab says above an empty list (nothing when there are runs to show)."""
    if count:
        return ""
    text = " ".join((query or "").split())
    if text:
        return f"**No runs match “{literal_markdown(text)}”.** Clear the filter to see every run."
    if issues_only:
        why = "" if prescreen else " The pre-screen is off, so new takes are not screened (LAB_PRESCREEN=on)."
        return f"**No screened take with no issues found.**{why} Untick the filter to see every run."
    return "**No runs yet.** Runs from **Single run** and **Seed sweep** appear here."


NO_ISSUES_LABEL = "Only takes with no issues found"
NO_ISSUES_INFO_OFF = "The pre-screen is off: takes not screened are left out."


def no_issues_info(prescreen: bool) -> str | None:
    """The History filter's note: "no issues found" means screened and clean, so a take never screened
    is left out; with the pre-screen off that is every new take, and the filter says so."""
    return None if prescreen else NO_ISSUES_INFO_OFF


def unknown_outcomes_text(intents: Sequence[IntentRecord]) -> str:
    """The History notice for submits whose answer never came (empty when there are none)."""
    if not intents:
        return ""
    lines = [f"**⚠ {len(intents)} request(s) sent, outcome unknown: may have been created and billed.** "
             "The answer never reached the lab (a crash, a dropped connection or a server error). "
             "Check the task list of your APIYI account; the lab never sends these again by itself."]
    for intent in intents:
        when = dt.datetime.fromtimestamp(intent.created_at).strftime("%m-%d %H:%M:%S")
        prompt = " ".join((intent.prompt or "").split())
        prompt = prompt[:60] + ("…" if len(prompt) > 60 else "")
        gateway = f" · gateway request `{intent.gateway_request_id}`" if intent.gateway_request_id else ""
        lines.append(f"- {when} · “{literal_markdown(prompt)}” · lab request `{intent.request_id}`{gateway}")
    return "\n".join(lines)


def review_detail(take: Any) -> str:
    """The selected take's review under its details: status, every status change, every comment by time."""
    if take is None or (not take.history and not take.comments):
        return ""
    from lab.review.model import STATUS_NAMES, timecode

    def when(t: float) -> str:
        return dt.datetime.fromtimestamp(t).strftime("%m-%d %H:%M")

    lines = ["", f"**Review:** {REVIEW_STATUS_MARKS.get(take.status, take.status)}"]
    for e in take.history:
        lines.append(f"- {when(e.at)} · {literal_markdown(html.escape(e.author))}: "
                     f"{STATUS_NAMES.get(e.status_from, e.status_from)} → {STATUS_NAMES.get(e.status_to, e.status_to)}")
    for c in take.comments:
        at = timecode(c.t_in) + (f"–{timecode(c.t_out)}" if c.t_out is not None else "")
        drawn = " ✎" if c.shapes else ""
        lines.append(f"- `{at}`{drawn} **{literal_markdown(html.escape(c.author))}**: {literal_markdown(html.escape(c.text))}")
    return "\n".join(lines)


def history_detail(record: TaskRecord) -> str:
    lines = [
        f"**Task** `{record.task_id}` · **{record.status}** · {money(record.cost_usd)}"
        + (f" · {format_seconds(record.elapsed_s)}" if record.elapsed_s else ""),
        f"{record.model} · {record.resolution} · {record.aspect_ratio} · {record.duration} s · "
        f"{SERVICE_SEED if record.seed is None else f'seed {record.seed}'}",
    ]
    if record.error:
        lines.append(f"**Error:** {record.error}")
    wire = dict(record.wire or record.request or {})
    part = params.image_part(wire)
    if part is not None:
        # The kept copy's name, not its path on the server; Load into form brings the image back.
        wire[params.IMAGE_FIELD] = {**part, "path": part.get("filename")}
    sha = getattr(record, "image_sha256", None)
    if sha:
        lines.append(f"**Reference image** `{sha[:12]}…` (the first frame; Load into form reuses it)")
    lines.append("```json\n" + json.dumps(wire, ensure_ascii=False, indent=2) + "\n```")
    return "\n\n".join(lines)


def _run_line(record: TaskRecord) -> str:
    when = dt.datetime.fromtimestamp(record.created_at).strftime("%m-%d %H:%M")
    seed = SERVICE_SEED_SHORT if record.seed is None else f"seed {record.seed}"
    return f"`{record.task_id}` · {when} · {seed} · {record.status}"


def lineage_markdown(record: TaskRecord, ancestors: Sequence[TaskRecord], children: Sequence[TaskRecord]) -> str:
    """Where a run came from (its parent and theirs) and the runs started from it; '' when it has neither."""
    if not ancestors and not children and not record.parent_task_id:
        return ""
    lines = ["**Lineage**"]
    if record.parent_task_id and not ancestors:
        lines.append(f"- started from `{record.parent_task_id}` (not in this history) · "
                     f"{describe_changes(record.parent_changes)}")
    changes = [record.parent_changes, *[a.parent_changes for a in ancestors]]
    for depth, (ancestor, changed) in enumerate(zip(ancestors, changes)):
        label = "parent" if depth == 0 else "its parent" if depth == 1 else "earlier"
        lines.append(f"- {label}: {_run_line(ancestor)} · this {'run' if depth == 0 else 'one'} "
                     f"{describe_changes(changed)}")
    for child in children:
        lines.append(f"- started from it: {_run_line(child)} · {describe_changes(child.parent_changes)}")
    return "\n".join(lines)


@dataclass(frozen=True)
class SweepScreen:
    """A sweep's takes as the pre-screen sees them: each row's badges, the rows best first, a summary."""

    badges: dict[int, str]  # row index -> its badges' HTML ("" for a row with no saved take)
    order: list[int]  # row indexes, no issues first, then fewest badges, then not screened, then no take
    summary: str  # HTML
    waiting: bool  # a saved take still waits for a screen that is coming (never with the pre-screen off)


def sweep_screen(cells: Sequence[tuple[int, TaskRecord | None]], screens: Mapping[str, Mapping[str, Any]],
                 *, prescreen: bool) -> SweepScreen:
    """Each row's badges (seeking that row's video) and the order "best first" puts the rows in."""
    badges, ranks = {}, []
    clean = saved = unscreened = 0
    for index, record in cells:
        if record is None or record.status != "saved":
            badges[index] = ""
            ranks.append(((4, 0), index))
            continue
        saved += 1
        screen = screens.get(record.task_id)
        unscreened += screen is None
        badges[index] = badges_html(screen, f"#sweep-video-{index} video", prescreen=prescreen)
        if screen is None:
            rank = (3, 0)
        elif not screen.get("ok"):
            rank = (2, 0)
        else:
            found = len(screen.get("badges") or [])
            clean += found == 0
            rank = (0 if found == 0 else 1, found)
        ranks.append((rank, index))
    order = [index for _rank, index in sorted(ranks)]
    waiting = bool(unscreened) and screen_state(None, prescreen=prescreen) == SCREEN_PENDING
    if not saved:
        summary = ""
    else:
        summary = f"Pre-screen: <strong>{clean} of {saved}</strong> saved takes with no issues found"
        if unscreened and waiting:
            summary += f" ({unscreened} still being screened)"
        elif unscreened:
            summary += (f' (<span title="{html.escape(NOT_SCREENED_TITLE, quote=True)}">{unscreened} not screened: '
                        f'the pre-screen is off</span>)')
    return SweepScreen(badges, order, summary, waiting)


def sweep_order_css(order: Sequence[int]) -> str:
    """CSS that lays the grid's rows out in ``order`` (flex order: the rows and their players stay as they are)."""
    rules = " ".join(f"#sweep-grid > #sweep-row-{index} {{order: {place}}}" for place, index in enumerate(order))
    return f"<style>{rules}</style>" if rules else ""