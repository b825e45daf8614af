"""The one sweep pipeline: seeds and prompt variants in, checked sweep items out. Pure; no I/O.

The UI, the ``/sweep`` endpoint and ``python -m lab sweep`` all call ``prepare``:

1. the texts are bounded by length (``SEEDS_TEXT_MAX_CHARS``, ``VARIANTS_TEXT_MAX_CHARS``),
2. variants are counted, then seeds are read until the task count would pass
   ``max_sweep`` (so a 20,000-seed list or ``--count 100000000`` is refused after
   reading at most ``max_sweep + 1`` seeds, and nothing large is ever allocated),
3. only then is each item planned and resolved with ``params.resolve``.

Everything here is linear in its input and raises ``RequestInvalid`` with a
sentence for people; the runner takes the resulting ``SweepItem`` list as is.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from lab import params
from lab.errors import RequestInvalid

# Seeds are read lazily and refused past max_sweep, so this only bounds what a caller may hand in:
# a million characters (some 90,000 ten-digit seeds) still gets the clearer "too many tasks" answer.
# The most tasks one sweep may run unless the settings say otherwise (LAB_MAX_SWEEP).
DEFAULT_MAX_SWEEP = 8
SEEDS_TEXT_MAX_CHARS = 1_000_000
# Each variant is a prompt (at most PROMPT_MAX_CHARS); this bounds the text before any line is split.
VARIANTS_TEXT_MAX_CHARS = 1_000_000
SEED_DIGITS_MAX = len(str(params.SEED_MAX))
# The short form of a variant shown in row labels and contact-sheet titles.
LABEL_TEXT_CHARS = 28

_SEED_TOKEN = re.compile(r"[^\s,;]+")
_SEED_DIGITS = re.compile(r"[0-9]+", re.ASCII)
_LINE = re.compile(r"[^\r\n]+")


@dataclass(frozen=True)
class SweepItem:
    """One cell of a sweep: its row, its label, the raw body to send, its seed and prompt variant.

    ``variant`` is the variant's number (1-based) and ``variant_text`` its full prompt;
    both are None when the sweep runs the form's own prompt over seeds.
    """

    index: int
    label: str
    body: dict[str, Any]
    seed: int
    variant: int | None = None
    variant_text: str | None = None
    parent_task_id: str | None = None  # a retried cell: the failed task it is a new attempt of


@dataclass(frozen=True)
class SweepPlan:
    """Items that passed every check, with their resolutions (same order) and the worst-case cost."""

    items: tuple[SweepItem, ...]
    resolutions: tuple[params.Resolution, ...]

    @property
    def price_usd(self) -> float:
        return round(sum(r.price_usd or 0.0 for r in self.resolutions), 2)


class TooManyTasks(RequestInvalid):
    """The sweep asks for more tasks than ``max_sweep``; raised before any item is planned."""


def _too_many(count_text: str, max_sweep: int, variants: int) -> TooManyTasks:
    per = f" ({variants} prompt variants × each seed)" if variants > 1 else ""
    return TooManyTasks(
        f"This sweep asks for {count_text} tasks{per}: more than this lab allows at once ({max_sweep}). "
        "Use fewer seeds or variants."
    )


def parse_variants(text: str | None, *, max_count: int | None = None) -> list[str]:
    """Prompt variants, one per non-blank line; more than ``max_count`` is refused without reading on."""
    text = text or ""
    if len(text) > VARIANTS_TEXT_MAX_CHARS:
        raise RequestInvalid(
            f"The prompt variants are {len(text):,} characters; keep them under {VARIANTS_TEXT_MAX_CHARS:,}."
        )
    variants: list[str] = []
    for match in _LINE.finditer(text):
        line = match.group().strip()
        if not line:
            continue
        variants.append(line)
        if max_count is not None and len(variants) > max_count:
            raise _too_many(f"more than {max_count}", max_count, 1)
    return variants


def random_count_of(value: Any) -> int:
    """How many random seeds were asked for: a whole number >= 0 (a UI number may be a float, NaN or None)."""
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise RequestInvalid("The number of random seeds must be a whole number, not true/false.")
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise RequestInvalid(f"The number of random seeds must be a whole number, not {value}.")
        value = int(value)
    if not isinstance(value, int):
        raise RequestInvalid("The number of random seeds must be a whole number.")
    if value < 0:
        raise RequestInvalid(f"The number of random seeds cannot be negative ({value}).")
    return value


def iter_seed_tokens(text: str | None) -> Iterable[str]:
    """The seed tokens of "1, 2 3;4", lazily (so a caller can stop early)."""
    text = text or ""
    if len(text) > SEEDS_TEXT_MAX_CHARS:
        raise RequestInvalid(f"The seed list is {len(text):,} characters; keep it under {SEEDS_TEXT_MAX_CHARS:,}.")
    return (match.group() for match in _SEED_TOKEN.finditer(text))


def seed_of(token: str) -> int:
    """One seed token as an int in 0..SEED_MAX, or RequestInvalid (never int() of a huge string)."""
    if not _SEED_DIGITS.fullmatch(token):
        shown = token if len(token) <= 20 else token[:17] + "..."
        raise RequestInvalid(
            f"Seeds are whole numbers from 0 to {params.SEED_MAX}, separated by commas or spaces; "
            f"{_printable(shown)!r} is not one."
        )
    digits = token.lstrip("0") or "0"
    if len(digits) > SEED_DIGITS_MAX or int(digits) > params.SEED_MAX:
        shown = digits if len(digits) <= 20 else digits[:17] + "..."
        raise RequestInvalid(f"Seed {shown} is out of range: seeds go from 0 to {params.SEED_MAX}.")
    return int(digits)


def parse_seeds(
    text: str | None,
    random_count: Any = 0,
    rng: random.Random | None = None,
    *,
    max_count: int | None = None,
    max_sweep: int | None = None,
    variants: int = 1,
) -> list[int]:
    """Seeds from "1, 2 3;2" (commas, semicolons or whitespace), plus ``random_count`` random ones.

    Duplicates are removed (first one kept). With ``max_count``, the list is refused as soon
    as it would pass it, before the random seeds are drawn: the refusal says how many
    tasks that is against ``max_sweep`` (default ``max_count``) with ``variants`` variants.
    """
    extra = random_count_of(random_count)
    limit_sweep = max_sweep if max_sweep is not None else max_count
    seen: set[int] = set()
    seeds: list[int] = []
    for token in iter_seed_tokens(text):
        seed = seed_of(token)
        if seed in seen:
            continue
        seen.add(seed)
        seeds.append(seed)
        if max_count is not None and len(seeds) > max_count:
            raise _too_many(f"more than {max_count * variants:,}", limit_sweep or max_count, variants)
    if max_count is not None and len(seeds) + extra > max_count:
        raise _too_many(f"{(len(seeds) + extra) * variants:,}", limit_sweep or max_count, variants)
    draw = rng or random.SystemRandom()
    while extra > 0:
        seed = params.random_seed(draw)
        if seed not in seen:
            seen.add(seed)
            seeds.append(seed)
            extra -= 1
    return seeds


def count_tasks(seeds_text: str | None, random_count: Any, variants_text: str | None, *, max_sweep: int) -> int:
    """How many tasks the texts ask for, for the estimate shown before a run (RequestInvalid if unreadable).

    Bounded like ``prepare``: a count past ``max_sweep`` is reported as ``max_sweep + 1``
    ("more than allowed") without reading the rest.
    """
    try:
        variants = max(1, len(parse_variants(variants_text, max_count=max_sweep)))
        seeds = parse_seeds(seeds_text, 0, max_count=max_sweep // variants, max_sweep=max_sweep, variants=variants)
        extra = random_count_of(random_count)
    except TooManyTasks:
        return max_sweep + 1
    return min(max_sweep + 1, (len(seeds) + extra) * variants)


def short_text(text: str, limit: int = LABEL_TEXT_CHARS) -> str:
    """The start of a prompt for a label: whole words up to ``limit`` characters, then "…"."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit + 1]
    space = cut.rfind(" ")
    head = cut[:space] if space >= limit // 2 else flat[:limit]
    return head.rstrip(" ,;:.-") + "…"


def variant_labels(variants: Sequence[str]) -> list[str]:
    """A short quoted form per variant, numbered only where two would read the same."""
    shorts = [f"“{_printable(short_text(text))}”" for text in variants]
    repeated = {s for s in shorts if shorts.count(s) > 1} if len(set(shorts)) < len(shorts) else set()
    return [f"{n}. {s}" if s in repeated else s for n, s in enumerate(shorts, start=1)]


def plan(body: Mapping[str, Any], seeds: Sequence[int], variants: Sequence[str] = ()) -> list[SweepItem]:
    """Variants × seeds (or just seeds): one raw body per task, in row order. No limits: see ``prepare``."""
    items: list[SweepItem] = []
    prompts: list[tuple[int | None, str | None, Mapping[str, Any], str | None]]
    if variants:
        labels = variant_labels(variants)
        prompts = [(n, text, params.with_prompt(body, text), labels[n - 1]) for n, text in enumerate(variants, start=1)]
    else:
        prompts = [(None, None, body, None)]
    for number, text, variant_body, head in prompts:
        for seed in seeds:
            label = f"seed {seed}" if head is None else f"{head} · seed {seed}"
            items.append(SweepItem(len(items), label, params.with_seed(variant_body, int(seed)), int(seed), number, text))
    return items


def check(items: Sequence[SweepItem], *, max_sweep: int | None = None,
          image: params.ImageFacts | None = None) -> list[params.Resolution]:
    """Resolve every item; RequestInvalid stating each distinct reason once, with the rows it concerns.

    ``image``: the facts of the reference image the sweep's body names (every row names the same
    one; read once by the caller, ``lab.image_input.facts_for``).
    """
    if not items:
        raise RequestInvalid("A sweep needs at least one request.")
    if max_sweep is not None and len(items) > max_sweep:
        raise _too_many(f"{len(items):,}", max_sweep, 1)
    resolutions = [params.resolve(item.body, image=image) for item in items]
    rows_of: dict[str, list[str]] = {}
    errors = []
    for item, resolution in zip(items, resolutions):
        if not resolution.ok:
            rows_of.setdefault(resolution.error_text(), []).append(item.label)
            errors += [e.to_dict() for e in resolution.errors]
    if rows_of:
        # One line per reason: the same missing prompt on 8 seeds is one problem, not 8.
        raise RequestInvalid("\n".join(f"{_rows_text(rows)}: {reason}" for reason, rows in rows_of.items()),
                             errors=errors)
    return resolutions


def checked(items: Sequence[SweepItem], *, max_sweep: int, image: params.ImageFacts | None = None) -> SweepPlan:
    """Rows planned before (``plan``, or a sweep's rows from the journal) as a checked plan. Raises RequestInvalid."""
    return SweepPlan(tuple(items), tuple(check(items, max_sweep=max_sweep, image=image)))


def check_plan(sweep: SweepPlan, *, max_sweep: int) -> None:
    """RequestInvalid unless ``sweep`` is one the runner may send: 1..max_sweep rows, each resolved and valid."""
    if not sweep.items:
        raise RequestInvalid("A sweep needs at least one request.")
    if len(sweep.items) > max_sweep:
        raise _too_many(f"{len(sweep.items):,}", max_sweep, 1)
    if len(sweep.resolutions) != len(sweep.items) or not all(r.ok for r in sweep.resolutions):
        raise RequestInvalid("A sweep plan must hold one valid resolution per row (make it with sweeps.prepare).")


def _rows_text(labels: Sequence[str], shown: int = 3) -> str:
    more = len(labels) - shown
    return ", ".join(labels[:shown]) + (f" and {more} more" if more > 0 else "")


def prepare(
    body: Mapping[str, Any],
    *,
    max_sweep: int,
    seeds_text: str | None = None,
    seeds: Sequence[int] = (),
    random_count: Any = 0,
    variants_text: str | None = None,
    variants: Sequence[str] = (),
    rng: random.Random | None = None,
    image: params.ImageFacts | None = None,
) -> SweepPlan:
    """Every sweep goes through here: limits first (linear, before any per-item work), then each item resolved.

    Seeds come from ``seeds_text`` and/or ``seeds``, plus ``random_count`` random ones;
    variants from ``variants_text`` and/or ``variants``. ``image``: the facts of the body's
    reference image (``lab.image_input.facts_for``), used for every row. Raises RequestInvalid.
    """
    variant_list = list(variants) + parse_variants(variants_text, max_count=max(0, max_sweep - len(variants)))
    if len(variant_list) > max_sweep:
        raise _too_many(f"{len(variant_list):,}", max_sweep, 1)
    per_variant = max(1, len(variant_list))
    max_seeds = max_sweep // per_variant
    given = list(seeds)
    if len(given) > max_seeds:
        raise _too_many(f"{len(given) * per_variant:,}", max_sweep, per_variant)
    text = " ".join(str(int(s)) for s in given) + " " + (seeds_text or "") if given else seeds_text
    seed_list = parse_seeds(text, random_count, rng, max_count=max_seeds, max_sweep=max_sweep, variants=per_variant)
    if not seed_list:
        raise RequestInvalid("A sweep needs at least one seed: list them (1, 2, 3) or ask for random ones.")
    items = plan(body, seed_list, variant_list)
    return checked(items, max_sweep=max_sweep, image=image)


def _printable(text: str) -> str:
    """``text`` safe to show and encode: lone surrogates and control characters as \\uXXXX escapes."""
    return params.printable(text)
