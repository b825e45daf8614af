"""What the player's review layer reads (``data.review``) and what a report carries, from the journal."""

from __future__ import annotations

from typing import Any, Sequence

from lab.review.journal import ReviewJournal, export_csv
from lab.store import Store


def review_payload(store: Store, task_ids: Sequence[str], *, mode: str, report_id: str | None = None,
                   link_extra: str = "") -> dict[str, Any]:
    """``{mode, report_id, link_extra, takes: {task_id: {status, status_history, comments}}}``.

    ``mode`` "lab": changes go to the journal through the tab; "report": the page keeps them
    in the browser until exported. ``link_extra`` goes before ``take=..&t=..`` in a copied link.
    """
    takes = ReviewJournal(store).takes(task_ids)
    return {"mode": mode, "report_id": report_id, "link_extra": link_extra,
            "takes": {task_id: review.to_json() for task_id, review in takes.items()}}


def report_csv(store: Store, task_ids: Sequence[str]) -> str:
    """review.csv of a report: its takes lettered as the report letters them."""
    letters = {task_id: chr(65 + n) for n, task_id in enumerate(task_ids)}
    return export_csv(store, task_ids, letters)


def report_review(store: Store, task_ids: Sequence[str]) -> tuple[dict[str, Any], str]:
    """A new report's review payload (a fresh report id: the key of its reviewers' work) and its review.csv."""
    import uuid

    report_id = "r" + uuid.uuid4().hex[:12]
    return review_payload(store, task_ids, mode="report", report_id=report_id), report_csv(store, task_ids)
