"""The Compare tab's back end, gradio-free: open a set, measure it, review it, package it.

The page gets the proxies (and originals) by URL from the served media folders
(``proxies/``, ``runs/``), never a path to the journal. Opening a set makes the
proxies; the similarity figures are a separate, slower call the UI runs after
the player is already showing, so measuring never blocks playback. Every call
takes the ids the caller's session may see, so a visitor never opens another's
runs by guessing an id.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import quote

from lab.compare.pipeline import Comparison, Measure, compare_runs
from lab.compare.report import write_report, zip_report
from lab.compare.set import CompareSet, load_set, player_data
from lab.datadir import DataDir
from lab.review.view import report_review, review_payload
from lab.presentation import SERVICE_SEED
from lab.store import Review, Store, TaskRecord

# Ten seconds at 24 fps either way: more is another take, not the same action started late.
MAX_OFFSET_FRAMES = 240
MEASURING = "Measuring similarity in the background…"
FEWER_THAN_TWO = "Fewer than two videos: nothing to measure."
RATINGS = {"👍": 1, "👎": -1, "none": None}


def media_url(path: str | Path | None) -> str | None:
    """A served file's URL relative to the app's page (Gradio's file route)."""
    if path is None:
        return None
    return "gradio_api/file=" + quote(str(Path(path).resolve()), safe="/")


def rating_value(choice: str | None) -> int | None:
    """The journal's rating for a radio choice ("👍", "👎", "none")."""
    if choice not in RATINGS and choice not in (None, ""):
        raise ValueError(f"unknown rating {choice!r}")
    return RATINGS.get(choice or "none")


def rating_choice(value: int | None) -> str:
    return {1: "👍", -1: "👎"}.get(value, "none")


def origin_text(record: TaskRecord) -> str:
    """Which sweep (and variant) a run came from, or "single run"."""
    if not record.sweep_id:
        return "single run"
    origin = f"sweep …{record.sweep_id[-6:]}"
    variant = (record.variant_label or "").rsplit(" · seed ", 1)[0]
    if variant and not variant.startswith("seed "):
        origin += f" {variant}"
    return origin


def review_marks(review: Review | None) -> str:
    """A review in a few marks ("👍 ★ ✎"), empty when the run has none."""
    if review is None:
        return ""
    marks = [rating_choice(review.rating) if review.rating in (1, -1) else "", "★" if review.picked else "",
             "✎" if (review.note or "").strip() else ""]
    return " ".join(mark for mark in marks if mark)


@dataclass(frozen=True)
class Opened:
    """A set ready for the page: the player's data (JSON text) and what to tell the user."""

    comparison: Comparison
    player: str
    message: str

    @property
    def compare_set(self) -> CompareSet:
        return self.comparison.compare_set

    def cell_choices(self) -> list[tuple[str, str]]:
        """(letter · label, task id) for the review picker."""
        return [(f"{chr(65 + n)} · {cell.label}", cell.task_id) for n, cell in enumerate(self.compare_set.cells)]


class CompareService:
    """Comparisons over one journal and data directory; ``secrets`` are never written to a report."""

    def __init__(self, store: Store, data_dir: str | Path, secrets: Iterable[str] = (), *,
                 prescreen: bool = True) -> None:
        self.store = store
        self.prescreen = prescreen  # the lab's setting: takes without a screen are pending, or not screened
        self.data_dir = Path(data_dir)
        self.secrets = [s for s in secrets if s]

    # ------------------------------------------------------------ choosing runs

    @staticmethod
    def choice_label(record: TaskRecord, review: Review | None = None) -> str:
        """One run in the multi-select: when, seed, size, prompt, where it came from, its review, its id's tail."""
        when = dt.datetime.fromtimestamp(record.created_at).strftime("%m-%d %H:%M")
        prompt = " ".join((record.prompt or "").split())
        prompt = prompt[:48] + ("…" if len(prompt) > 48 else "")
        seed = SERVICE_SEED if record.seed is None else f"seed {record.seed}"
        parts = [when, seed, f"{record.resolution or ''} {record.aspect_ratio or ''}".strip(), prompt,
                 origin_text(record)]
        reviewed = review_marks(review)
        if reviewed:
            parts.append(f"reviewed {reviewed}")
        return " · ".join(part for part in parts if part) + f" · {record.task_id[-6:]}"

    def choices(self, records: Iterable[TaskRecord]) -> list[tuple[str, str]]:
        """Saved runs (newest first as given) as (label, task id) for a multi-select."""
        saved = [r for r in records if r.status == "saved"]
        reviews = self.store.reviews([r.task_id for r in saved]) if saved else {}
        return [(self.choice_label(r, reviews.get(r.task_id)), r.task_id) for r in saved]

    # ------------------------------------------------------------ opening and measuring

    def _media(self, comparison: Comparison) -> dict[str, tuple[str | None, str | None]]:
        return {
            cell.task_id: (media_url(comparison.proxies.get(cell.task_id)),
                           media_url(cell.video) if cell.task_id in comparison.proxies else None)
            for cell in comparison.compare_set.cells
        }

    def _player(self, comparison: Comparison, note: str | None) -> str:
        data = player_data(comparison.compare_set, self._media(comparison), comparison.similarity,
                           problems=comparison.problems, similarity_note=note, prescreen=self.prescreen)
        ids = comparison.compare_set.task_ids
        # A copied link names the set, so the tab can open it again (compare=ids&take=B&t=3.250).
        data["review"] = review_payload(self.store, ids, mode="lab", link_extra="compare=" + ",".join(ids) + "&")
        return json.dumps(data, ensure_ascii=False)

    def review_player(self, ids: Any, *, may_see: Callable[[str], bool] | None = None) -> str:
        """The player's data again after a review change (cached similarity only: nothing is measured)."""
        return self.measure(ids, may_see=may_see, cached_only=True).player

    def open(self, ids: Any, *, may_see: Callable[[str], bool] | None = None) -> Opened:
        """Load the set and make its proxies; no similarity yet. Raises CompareError."""
        comparison = compare_runs(self.store, self.data_dir, ids, measure=Measure.NONE, may_see=may_see)
        cset = comparison.compare_set
        playable = len(comparison.proxies)
        message = f"**{len(cset.cells)} runs**, {playable} with a video"
        if cset.differing:
            message += " · differing: " + ", ".join(cset.differing).replace("_", " ")
        problems = list(dict.fromkeys([*cset.problems, *comparison.problems]))
        if problems:
            message += "\n\n" + "\n".join(f"- {p}" for p in problems)
        note = MEASURING if playable >= 2 else FEWER_THAN_TWO
        return Opened(comparison, self._player(comparison, note), message)

    def measure(self, ids: Any, *, may_see: Callable[[str], bool] | None = None, cached_only: bool = False) -> Opened:
        """The same set with every pair's SSIM (cached pairs are instant; ``cached_only`` measures nothing)."""
        comparison = compare_runs(self.store, self.data_dir, ids,
                                  measure=Measure.CACHED if cached_only else Measure.ALL, may_see=may_see)
        pairs = comparison.similarity
        if len(comparison.proxies) < 2:
            note = FEWER_THAN_TWO
        else:
            # Nothing cached yet while the figures are still being measured (a review saved meanwhile).
            note = MEASURING if cached_only else None
        if pairs:
            closest = max(pairs, key=lambda s: s.ssim_mean)
            cells = comparison.compare_set
            name = lambda t: next(f"{chr(65 + n)} ({c.label})" for n, c in enumerate(cells.cells) if c.task_id == t)  # noqa: E731
            note = f"Most alike: {name(closest.a)} and {name(closest.b)} ({closest.ssim_mean:.3f} on average)."
        return Opened(comparison, self._player(comparison, note), "")

    # ------------------------------------------------------------ reviews

    def review(self, task_id: str, *, rating: str | None, note: str, picked: bool) -> Review:
        """Save a cell's rating ("👍", "👎", "none"), note and pick. Raises ValueError or StoreError."""
        return self.store.set_review(task_id, rating=rating_value(rating), note=note, picked=bool(picked))

    def save_offsets(self, ids: Any, offsets: Any, *, may_see: Callable[[str], bool] | None = None) -> dict[str, int]:
        """Keep the per-take offsets (frames, -240..240) of the set ``ids`` names; returns what was kept.

        Only the set's own takes count (anything else is ignored); raises CompareError for a set that
        cannot be loaded, ValueError for offsets that are not a mapping of whole numbers.
        """
        cset = load_set(self.store, ids, may_see=may_see)
        if not isinstance(offsets, dict):
            raise ValueError("offsets must map task ids to frames")
        kept: dict[str, int] = {}
        for task_id in cset.task_ids:
            if task_id in offsets:
                value = offsets[task_id]
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
                    raise ValueError(f"the offset of {task_id} is not a number of frames")
                kept[task_id] = max(-MAX_OFFSET_FRAMES, min(MAX_OFFSET_FRAMES, int(round(value))))
        self.store.set_offsets(cset.key, kept)
        return kept

    def review_of(self, task_id: str) -> Review:
        return self.store.reviews([task_id]).get(task_id) or Review(task_id)

    # ------------------------------------------------------------ the report

    def report_zip(self, ids: Any, *, may_see: Callable[[str], bool] | None = None, with_originals: bool = False) -> tuple[Path, dict]:
        """The standalone report as a ZIP in the served exports folder, and its compare.json."""
        comparison = compare_runs(self.store, self.data_dir, ids, measure=Measure.ALL, may_see=may_see)
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        name = f"compare-{stamp}-{uuid.uuid4().hex[:6]}"
        with tempfile.TemporaryDirectory(prefix="lab-report-") as work:
            review, review_csv = report_review(self.store, comparison.compare_set.task_ids)
            report = write_report(comparison, Path(work) / name, with_originals=with_originals, secrets=self.secrets,
                                  review=review, review_csv=review_csv, prescreen=self.prescreen)
            data = json.loads((report / "compare.json").read_text(encoding="utf-8"))
            archive = zip_report(report, DataDir(self.data_dir).export(name))
        return archive, data
