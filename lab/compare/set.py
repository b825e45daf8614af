"""A set of runs to compare (2 to 12), from task ids or sweep ids, with what differs between them.

Each cell's label fields come from the run's effective request as
``lab.params.resolve`` computes it from the journalled body, not from the
columns a runner happened to write, so a cell says exactly what was asked
for. An id that is neither a task nor a sweep in the journal, and a run with
no saved video, are reported in plain words; the other cells are still
compared.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from lab import image_input, params
from lab.presentation import NOT_SCREENED, NOT_SCREENED_TITLE, SCREENED, SERVICE_SEED, SERVICE_SEED_SHORT, screen_state
from lab.errors import LabError
from lab.lineage import describe_changes
from lab.prescreen.findings import MEANINGS
from lab.store import Review, Store, TaskRecord

MIN_CELLS = 2
MAX_CELLS = 12
# What a cell's label shows, in order; each is marked when the cells disagree on it.
LABEL_FIELDS = ("seed", "prompt", "negative_prompt", "model", "resolution", "aspect_ratio", "duration", "size",
                "image", "cost_usd", "status")
_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


class CompareError(LabError):
    """The ids do not make a set that can be compared (too few, too many, none given)."""


@dataclass(frozen=True)
class Cell:
    """One run in the grid."""

    task_id: str
    label: str
    status: str
    effective: dict[str, Any]
    wire: dict[str, Any]
    fields: dict[str, Any]  # LABEL_FIELDS -> value shown
    differs: tuple[str, ...]  # the LABEL_FIELDS on which this cell differs from the others (marked on it)
    video: Path | None  # the saved original, None when there is none (problem says why)
    review: Review
    problem: str | None = None
    sweep_id: str | None = None
    created_at: float = 0.0
    screen: dict[str, Any] | None = None  # the journalled pre-screen (lab.prescreen), None if not screened yet
    parent_task_id: str | None = None  # lineage: the run this one was started from
    parent_changes: tuple[str, ...] = ()
    offset_frames: int = 0  # shown this many frames later (positive) or earlier, to line up the action

    @property
    def playable(self) -> bool:
        return self.video is not None


@dataclass(frozen=True)
class CompareSet:
    cells: tuple[Cell, ...]
    unknown: tuple[str, ...] = ()  # ids found neither as a task nor as a sweep
    problems: tuple[str, ...] = field(default=())  # every message a person should read
    differing: tuple[str, ...] = ()  # the LABEL_FIELDS on which the cells disagree at all

    @property
    def playable(self) -> tuple[Cell, ...]:
        return tuple(c for c in self.cells if c.playable)

    @property
    def task_ids(self) -> list[str]:
        return [c.task_id for c in self.cells]

    def cell(self, task_id: str) -> Cell:
        return next(c for c in self.cells if c.task_id == task_id)

    @property
    def key(self) -> str:
        return set_key(self.task_ids)

    def with_reviews(self, reviews: dict[str, Review]) -> "CompareSet":
        """The same set showing ``reviews`` (task id -> Review) instead of those read when it was loaded."""
        cells = tuple(dataclasses.replace(c, review=reviews.get(c.task_id, c.review)) for c in self.cells)
        return dataclasses.replace(self, cells=cells)

    @property
    def title(self) -> str:
        """What the set is called (the report's title): its one prompt, else its one sweep, else its size."""
        prompts = list(dict.fromkeys(" ".join(str(c.fields.get("prompt") or "").split()) for c in self.cells))
        sweeps = {c.sweep_id for c in self.cells}
        count = len(self.cells)
        if len(prompts) == 1 and prompts[0]:
            return f"{count} takes of “{_shorten(prompts[0], 90)}”"
        if len(sweeps) == 1 and None not in sweeps:
            return f"{next(iter(sweeps))}: {count} runs, {len(prompts)} prompts"
        return f"Comparison of {count} runs ({len(prompts)} prompts)"


def set_key(task_ids: Iterable[str]) -> str:
    """The journal's name of a set of runs (its offsets are kept under it): whatever order they were given in."""
    return ",".join(sorted(set(task_ids)))


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip(" ,;:.-") + "…"


def odd_fields(shown: Sequence[dict[str, Any]]) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """(the fields the cells disagree on, and per cell the fields on which it differs from the others).

    A cell differs on a field when its value is not the one most cells share; when no value is
    shared by more cells than any other (all seeds distinct, two cells, a 2-2 split), every cell
    differs. So one odd prompt among three marks that cell only, not all three.
    """
    differing: list[str] = []
    per_cell: list[list[str]] = [[] for _ in shown]
    for name in LABEL_FIELDS:
        values = [repr(values[name]) for values in shown]
        counts = Counter(values)
        if len(counts) < 2:
            continue
        differing.append(name)
        top = max(counts.values())
        leaders = [value for value, count in counts.items() if count == top]
        majority = leaders[0] if len(leaders) == 1 and top > 1 else None
        for index, value in enumerate(values):
            if value != majority:
                per_cell[index].append(name)
    return tuple(differing), [tuple(fields) for fields in per_cell]


def split_ids(values: Iterable[str] | str) -> list[str]:
    """Ids from arguments or a text box: commas and whitespace separate; duplicates dropped, order kept."""
    if isinstance(values, str):
        values = [values]
    ids: list[str] = []
    for value in values:
        ids += [part for part in re.split(r"[\s,]+", str(value or "")) if part]
    return list(dict.fromkeys(ids))


def effective_request(record: TaskRecord) -> tuple[dict[str, Any], dict[str, Any]]:
    """(effective values, wire body) of a journalled run, as params.resolve computes them (its image read here)."""
    for body in (record.request, record.wire):
        if body:
            resolution = image_input.resolve(body)
            if resolution.ok:
                return dict(resolution.effective), dict(resolution.wire or record.wire or {})
    return dict(record.effective or {}), dict(record.wire or {})


def _label_fields(record: TaskRecord, effective: dict[str, Any]) -> dict[str, Any]:
    values = {name: effective.get(name) for name in LABEL_FIELDS if name in effective}
    values.setdefault("negative_prompt", effective.get("negative_prompt"))
    values["image"] = getattr(record, "image_sha256", None)  # image-to-video: the reference image's hash
    values["cost_usd"] = record.cost_usd
    values["status"] = record.status
    return {name: values.get(name) for name in LABEL_FIELDS}


def _problem(record: TaskRecord) -> tuple[Path | None, str | None]:
    if record.status == "failed":
        return None, f"{record.task_id}: the task failed, there is no video ({record.error or 'no detail given'})"
    if record.status != "saved":
        return None, f"{record.task_id}: no saved video yet (status {record.status}); fetch unfinished runs first"
    if not record.video_path or not Path(record.video_path).is_file():
        return None, f"{record.task_id}: the saved video is missing from the data directory"
    return Path(record.video_path), None


def _base_label(record: TaskRecord, effective: dict[str, Any]) -> str:
    if record.variant_label:
        return record.variant_label
    seed = effective.get("seed")
    return f"seed {seed}" if seed is not None else SERVICE_SEED


def _sweep_order(record: TaskRecord) -> tuple:
    # A sweep's tasks are submitted concurrently, so their journal order is a race: show them
    # by prompt, then seed, the same every time.
    return (record.prompt or "", record.seed is None, record.seed or 0, record.created_at)


def load_set(store: Store, ids: Sequence[str] | str, *, may_see: Callable[[str], bool] | None = None) -> CompareSet:
    """The runs named by ``ids`` (task ids or sweep ids, expanded in order), ready to compare.

    ``may_see`` (task id -> bool), when given, says whether the caller may see a
    run; any other run counts as unknown (a session never learns of another's runs).
    Raises CompareError when fewer than 2 or more than 12 runs are found.
    """
    wanted = split_ids(ids)
    if not wanted:
        raise CompareError("Give at least two task ids or a sweep id to compare.")
    records: list[TaskRecord] = []
    unknown: list[str] = []
    for item in wanted:
        found: list[TaskRecord] = []
        if _ID_PATTERN.match(item):
            record = store.get(item)
            found = [record] if record is not None else sorted(store.list_sweep(item), key=_sweep_order)
        if may_see is not None:
            found = [r for r in found if may_see(r.task_id)]
        if not found:
            unknown.append(item)
        records += [r for r in found if r.task_id not in {s.task_id for s in records}]
    problems = [f"{item}: no such task or sweep in the journal" for item in unknown]
    if len(records) > MAX_CELLS:
        raise CompareError(f"{len(records)} runs selected; compare at most {MAX_CELLS} at once.")
    if len(records) < MIN_CELLS:
        found_text = "only one run" if records else "no runs"
        # An id that names nothing is the likelier mistake than too few ids: say it first.
        lead = f"No such task or sweep in the journal: {', '.join(unknown)}. " if unknown else ""
        raise CompareError(f"{lead}Found {found_text} to compare; give at least {MIN_CELLS}.")

    reviews = store.reviews([r.task_id for r in records])
    screens = store.screens([r.task_id for r in records])
    offsets = store.offsets(set_key(r.task_id for r in records))
    resolved = [(record, *effective_request(record)) for record in records]
    shown = [_label_fields(record, effective) for record, effective, _wire in resolved]
    differing, odd = odd_fields(shown)
    labels = [_base_label(record, effective) for record, effective, _wire in resolved]
    cells = []
    for (record, effective, wire), fields_shown, label, differs in zip(resolved, shown, labels, odd):
        if labels.count(label) > 1:
            label = f"{label} · {record.task_id[-6:]}"
        video, problem = _problem(record)
        if problem:
            problems.append(problem)
        cells.append(Cell(
            task_id=record.task_id, label=label, status=record.status, effective=effective, wire=wire,
            fields=fields_shown, differs=differs, video=video, review=reviews.get(record.task_id, Review(record.task_id)),
            problem=problem, sweep_id=record.sweep_id, created_at=record.created_at,
            screen=screens.get(record.task_id), parent_task_id=record.parent_task_id,
            parent_changes=tuple(record.parent_changes or ()), offset_frames=offsets.get(record.task_id, 0),
        ))
    return CompareSet(cells=tuple(cells), unknown=tuple(unknown), problems=tuple(problems), differing=differing)


def screen_for_player(screen: dict[str, Any] | None, *, prescreen: bool) -> dict[str, Any]:
    """A cell's pre-screen as the player shows it: its badges, that it is still being screened ("pending"),
    or that it was not screened because the lab's pre-screen (``prescreen``) is off ("off")."""
    state = screen_state(screen, prescreen=prescreen)
    if state != SCREENED:
        return {"state": state, "badges": []}
    return {"state": "done" if screen.get("ok") else "failed", "badges": list(screen.get("badges") or []),
            "issues": screen.get("issues")}


def parent_for_player(cell: Cell, letters: dict[str, str]) -> dict[str, Any] | None:
    """The run a cell was started from: its letter when it is in the set, and what changed."""
    if not cell.parent_task_id:
        return None
    return {"task_id": cell.parent_task_id, "letter": letters.get(cell.parent_task_id),
            "changes": describe_changes(list(cell.parent_changes))}


def field_text(name: str, value: Any) -> str:
    """A label field as the grid shows it (a seed as "seed 7": the chip needs no other label)."""
    if value is None:
        return {"seed": SERVICE_SEED_SHORT, "negative_prompt": "none", "cost_usd": "—",
                "image": "no image"}.get(name, "—")
    if name == "seed":
        return f"seed {value}"
    if name == "cost_usd":
        return f"${float(value):.2f}"
    if name == "duration":
        return f"{value} s"
    if name == "image":
        return f"image {str(value)[:8]}"
    if name == "model":
        return "fast" if value == params.FAST_MODEL else "standard" if value == params.STANDARD_MODEL else str(value)
    return str(value)


FIELD_NAMES = {"seed": "seed", "prompt": "prompt", "negative_prompt": "negative prompt", "model": "model",
               "resolution": "resolution", "aspect_ratio": "aspect", "duration": "duration", "size": "pixel size",
               "image": "reference image", "cost_usd": "cost", "status": "status"}


def _frame_size(cell: Cell) -> tuple[int, int]:
    size = params.parse_size(str(cell.effective.get("size") or "")) if cell.effective.get("size") else None
    return size or (16, 9)


def player_data(
    compare_set: CompareSet,
    media: dict[str, tuple[str | None, str | None]],
    similarity: Sequence[Any] = (),
    *,
    problems: Sequence[str] = (),
    similarity_note: str | None = None,
    prescreen: bool = True,
) -> dict[str, Any]:
    """What the player script reads: ``media`` maps task id -> (proxy URL, original URL); ``prescreen`` (the
    lab's setting) says whether a take without a screen is pending or not screened."""
    cells = []
    letters = {cell.task_id: chr(65 + n) for n, cell in enumerate(compare_set.cells)}
    for cell in compare_set.cells:
        proxy, original = media.get(cell.task_id, (None, None))
        width, height = _frame_size(cell)
        cells.append({
            "task_id": cell.task_id,
            "label": cell.label,
            "fields": {name: field_text(name, cell.fields.get(name)) for name in LABEL_FIELDS},
            "field_names": FIELD_NAMES,
            "differs": list(cell.differs),
            "proxy": proxy,
            "original": original,
            "width": width,
            "height": height,
            "status": cell.status,
            "problem": cell.problem if proxy is None else None,
            "rating": cell.review.rating,
            "note": cell.review.note,
            "picked": cell.review.picked,
            "screen": screen_for_player(cell.screen, prescreen=prescreen),
            "parent": parent_for_player(cell, letters),
            "offset_frames": cell.offset_frames,
        })
    return {
        "fps": 24,
        "set_key": compare_set.key,
        "badge_meanings": MEANINGS,
        "not_screened": {"text": NOT_SCREENED, "title": NOT_SCREENED_TITLE},
        "cells": cells,
        "similarity": [s.to_json() if hasattr(s, "to_json") else dict(s) for s in similarity],
        "similarity_note": similarity_note,
        "problems": list(dict.fromkeys([*compare_set.problems, *problems])),
    }
