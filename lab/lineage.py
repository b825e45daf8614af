"""Take lineage, pure: which effective fields a run changed from the run it was started from.

A run started from another (History's "Load into form" then Generate, "Use this
seed", "Use this prompt + seed", "Retry failed", a re-run of a report's take)
journals its parent's task id and these field names (``tasks.parent_task_id``,
``tasks.parent_changes``), so a chain of attempts at one shot can be followed.
"""

from __future__ import annotations

from typing import Any, Mapping

# Effective fields in the order a person reads them; others that differ follow, sorted.
ORDER = ("prompt", "negative_prompt", "model", "duration", "resolution", "aspect_ratio", "size", "seed", "image")


def _value(effective: Mapping[str, Any], name: str) -> Any:
    value = effective.get(name)
    if name == "image" and isinstance(value, Mapping):
        return value.get("sha256") or value.get("path")
    return value


def changed_fields(parent: Mapping[str, Any] | None, child: Mapping[str, Any] | None) -> list[str]:
    """Effective fields whose value differs between ``parent`` and ``child`` ([] when equal)."""
    parent, child = dict(parent or {}), dict(child or {})
    names = [n for n in ORDER if n in parent or n in child]
    names += sorted((set(parent) | set(child)) - set(ORDER))
    return [n for n in names if _value(parent, n) != _value(child, n)]


def describe_changes(changes: list[str] | tuple[str, ...]) -> str:
    """'same request' or 'changed seed, prompt' for a heading."""
    if not changes:
        return "same request"
    return "changed " + ", ".join(name.replace("_", " ") for name in changes)
