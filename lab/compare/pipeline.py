"""Opening a set to compare: the runs (``set``), their proxies, and when asked every pair's SSIM.

What the Compare tab, the report and ``python -m lab compare`` all start from;
a run without a video, a proxy or a measurement that fails become problems in
the result, never an exception past here (except CompareError for a set that
cannot be compared at all).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Callable, Sequence

from lab.compare.proxies import ensure_proxy
from lab.compare.set import Cell, CompareSet, load_set
from lab.compare.similarity import PairSimilarity, similarity_matrix
from lab.errors import LabError
from lab.store import Store


class Measure(Enum):
    """How much similarity to take when opening a set."""

    NONE = "none"  # proxies only: the player can start
    CACHED = "cached"  # the figures already measured, nothing new (instant)
    ALL = "all"  # every pair, measuring the ones not cached yet


@dataclass(frozen=True)
class Comparison:
    """A loaded set with its proxies and similarity figures: what the tab and the report show."""

    compare_set: CompareSet
    proxies: dict[str, Path]
    similarity: tuple[PairSimilarity, ...]
    problems: tuple[str, ...] = field(default=())

    @property
    def complete(self) -> bool:
        """Every cell has a video to play."""
        return all(c.task_id in self.proxies for c in self.compare_set.cells)


def compare_runs(store: Store, data_dir: str | Path, ids: Sequence[str] | str, *, measure: Measure = Measure.ALL,
                 may_see: Callable[[str], bool] | None = None) -> Comparison:
    """Load the set, make (or reuse) proxies and every pair's SSIM as ``measure`` says.

    ``may_see`` (task id -> bool), when given, says which runs the caller may
    see; any other run counts as unknown.

    Raises CompareError for a set that cannot be compared; a run without a
    video, a proxy or a measurement that fails become problems in the result.
    """
    compare_set = load_set(store, ids, may_see=may_see)
    proxies, problems = ensure_proxies(data_dir, compare_set)
    similarity: list[PairSimilarity] = []
    if measure is not Measure.NONE and len(proxies) >= 2:
        try:
            similarity = similarity_matrix(data_dir, proxies, cached_only=measure is Measure.CACHED)
        except LabError as exc:
            problems.append(f"similarity could not be measured: {exc}")
    if measure is not Measure.NONE:
        # Measuring takes seconds: a review saved meanwhile must not be undone by the figures arriving.
        compare_set = compare_set.with_reviews(store.reviews(compare_set.task_ids))
    return Comparison(compare_set, proxies, tuple(similarity), tuple(problems))


def ensure_proxies(data_dir: str | Path, compare_set: CompareSet, *, workers: int = 2) -> tuple[dict[str, Path], list[str]]:
    """Proxies of the playable cells (cached ones reused): task id -> proxy, and problems met."""
    cells = compare_set.playable

    def one(cell: Cell) -> tuple[str, Path | None, str | None]:
        try:
            return cell.task_id, ensure_proxy(data_dir, cell.task_id, cell.video), None
        except LabError as exc:
            return cell.task_id, None, f"{cell.task_id}: no proxy could be made ({exc})"

    proxies, problems = {}, []
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="lab-proxy") as pool:
        for task_id, proxy, problem in pool.map(one, cells):
            if proxy is not None:
                proxies[task_id] = proxy
            if problem:
                problems.append(problem)
    return proxies, problems
