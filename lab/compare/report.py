"""The standalone comparison report: ``DIR/index.html`` + ``DIR/media/`` + ``DIR/compare.json``.

It opens from ``file://`` in any browser with no server and no network: the
player's script and style (the same files the app serves) are inlined, the
data is embedded as JSON, the videos are the proxies beside it (and the
originals, only when asked for). ``compare.json`` holds exactly::

    {"cells": [{"task_id", "label", "effective", "wire", "differs", "proxy", "original",
                "rating", "note", "picked", "screen", "parent", "offset_frames"}],
     "similarity": [{"a", "b", "ssim_mean", "ssim_min", "timeline"}]}

``screen`` is the take's pre-screen (badges, stretches) or null, ``parent`` the run it
was started from (``task_id``, ``in_set``, ``changes``) or null, ``offset_frames`` the
offset the set keeps for it.

An existing directory is never merged into: refused, or replaced as a whole
with ``force``. The report is built in a hidden sibling directory and renamed
into place, so a failure leaves nothing half-written. Journal records never
hold the API key; ``secrets`` is a last check that none of the given strings
was written anyway.
"""

from __future__ import annotations

import html
import json
import shutil
import time
import zipfile
from pathlib import Path
from typing import Any, Iterable

from lab.compare.pipeline import Comparison
from lab.compare.set import player_data
from lab.datadir import atomic_dir, atomic_write
from lab.errors import LabError
from lab.lineage import describe_changes

STATIC_DIR = Path(__file__).parent.parent / "static"
PLAYER_JS = STATIC_DIR / "compare_player.js"
PLAYER_CSS = STATIC_DIR / "compare_player.css"
# Compare modes past the wipe (flip, difference, offsets, solo) and the pre-screen badges: a second
# file on the player's extension point, inlined beside it.
MODES_JS = STATIC_DIR / "compare_modes.js"
MODES_CSS = STATIC_DIR / "compare_modes.css"
REVIEW_JS = STATIC_DIR / "compare_review.js"
REVIEW_CSS = STATIC_DIR / "compare_review.css"
CELL_KEYS = ("task_id", "label", "effective", "wire", "differs", "proxy", "original", "rating", "note", "picked",
             "screen", "parent", "offset_frames")


class ReportError(LabError):
    """The report could not be written (directory exists, disk, or a secret would have been written)."""


def load_static(name_or_path: str | Path) -> str:
    path = Path(name_or_path)
    return (path if path.is_absolute() else STATIC_DIR / path).read_text(encoding="utf-8")


def compare_json(comparison: Comparison, media: dict[str, tuple[str | None, str | None]]) -> dict[str, Any]:
    """The compare.json object (exactly the documented keys)."""
    cells = []
    in_set = set(comparison.compare_set.task_ids)
    for cell in comparison.compare_set.cells:
        proxy, original = media.get(cell.task_id, (None, None))
        parent = None
        if cell.parent_task_id:
            parent = {"task_id": cell.parent_task_id, "in_set": cell.parent_task_id in in_set,
                      "changes": list(cell.parent_changes)}
        cells.append({
            "task_id": cell.task_id,
            "label": cell.label,
            "effective": cell.effective,
            "wire": cell.wire,
            "differs": list(cell.differs),
            "proxy": proxy,
            "original": original,
            "rating": cell.review.rating,
            "note": cell.review.note,
            "picked": cell.review.picked,
            "screen": cell.screen,
            "parent": parent,
            "offset_frames": cell.offset_frames,
        })
    return {"cells": cells, "similarity": [s.to_json() for s in comparison.similarity]}


def _script_json(value: Any) -> str:
    """JSON safe inside a <script> element (no "</" can close it early)."""
    return json.dumps(value, ensure_ascii=False).replace("</", "<\\/").replace("<!--", "<\\!--")


def report_html(comparison: Comparison, media: dict[str, tuple[str | None, str | None]], *, title: str | None = None,
                review: dict[str, Any] | None = None, prescreen: bool = True) -> str:
    """index.html: the player (inlined), the data, and each cell's exact wire body.

    ``review`` (``lab.review.view.review_payload``, mode "report") turns the page into an
    offline review form: comments, drawings and statuses kept in the browser, exported as a file.
    """
    cset = comparison.compare_set
    data = player_data(cset, media, comparison.similarity, problems=comparison.problems,
                       similarity_note=None if comparison.similarity else "No similarity figures: fewer than two videos.",
                       prescreen=prescreen)
    if review is not None:
        data["review"] = review
    title = title or cset.title
    created = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    letters = {cell.task_id: chr(65 + n) for n, cell in enumerate(cset.cells)}

    def lineage(cell) -> str:
        if cell.parent_task_id not in letters:
            return ""
        return (f" · from {letters[cell.parent_task_id]} ({html.escape(describe_changes(list(cell.parent_changes)))})")

    wires = "\n".join(
        f"<details><summary>{chr(65 + n)} · {html.escape(cell.label)} · <code>{html.escape(cell.task_id)}</code>"
        f"{lineage(cell)}</summary>"
        f"<pre>{html.escape(json.dumps(cell.wire, ensure_ascii=False, indent=2))}</pre></details>"
        for n, cell in enumerate(cset.cells)
    )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; media-src 'self' file: blob:; img-src 'self' data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>{html.escape(title)}</title>
<style>
body {{ margin: 0 auto; max-width: 1600px; padding: 16px 20px 40px; background: #fafafc; }}
.report-head h1 {{ font: 600 20px/1.3 system-ui, sans-serif; margin: 0 0 4px; }}
.report-head p, .wires {{ font: 13px/1.4 system-ui, sans-serif; color: #55555f; margin: 0 0 8px; }}
.wires pre {{ background: #f1f1f6; padding: 8px; border-radius: 6px; overflow: auto; font-size: 12px; }}
.wires summary {{ cursor: pointer; padding: 2px 0; }}
</style>
<style>
{load_static(PLAYER_CSS)}
{load_static(MODES_CSS)}
{load_static(REVIEW_CSS)}
</style>
</head>
<body>
<header class="report-head">
<h1>{html.escape(title)}</h1>
<p>Made {created} by Veo Prompt Lab. Play, scrub and step (← / →) all cells together; the grid plays light playback copies
(long side ≤ 960 px). Marked fields (≠) differ between the cells. Badges are the lab's pre-screen of each take
(click one to go there). Keys 1–9 show one take full size, D the difference of two, S or Shift+1–9 hear one take alone.
Offline: this page loads nothing from the network.</p>
</header>
<main id="player"></main>
<section class="wires">
<h2 style="font-size:15px" title="the wire bodies, exactly as POSTed to /v1/videos">Exact requests sent (for developers)</h2>
{wires}
</section>
<script type="application/json" id="compare-data">{_script_json(data)}</script>
<script>
{load_static(PLAYER_JS)}
</script>
<script>
{load_static(MODES_JS)}
</script>
<script>
{load_static(REVIEW_JS)}
</script>
<script>
window.player = ComparePlayer.mount(document.getElementById("player"),
  JSON.parse(document.getElementById("compare-data").textContent));
</script>
</body>
</html>
"""


def _check_secrets(texts: Iterable[str], secrets: Iterable[str | None]) -> None:
    for secret in secrets:
        if secret and any(secret in text for text in texts):
            raise ReportError("Refusing to write the report: it would contain the API key.")


def write_report(
    comparison: Comparison,
    out_dir: str | Path,
    *,
    with_originals: bool = False,
    force: bool = False,
    secrets: Iterable[str | None] = (),
    review: dict[str, Any] | None = None,
    review_csv: str | None = None,
    prescreen: bool = True,
) -> Path:
    """Write the report directory; returns it. Raises ReportError. ``prescreen``: the lab's setting (a take
    without a screen reads "pending" with it on, "not screened" with it off).

    With ``review`` the page is a review form (its ``report_id`` keys the reviewer's work in
    their browser) and compare.json carries it; ``review_csv`` is written as review.csv.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not force:
        raise ReportError(f"{out_dir} already exists; choose another directory or use --force to replace it")
    if out_dir.exists() and not out_dir.is_dir():
        raise ReportError(f"{out_dir} exists and is not a directory")
    media: dict[str, tuple[str | None, str | None]] = {}
    try:
        with atomic_dir(out_dir) as work:
            (work / "media").mkdir()
            for cell in comparison.compare_set.cells:
                proxy = comparison.proxies.get(cell.task_id)
                proxy_ref = original_ref = None
                if proxy is not None:
                    proxy_ref = f"media/{cell.task_id}.mp4"
                    shutil.copyfile(proxy, work / proxy_ref)
                    if with_originals and cell.video is not None:
                        original_ref = f"media/originals/{cell.task_id}.mp4"
                        (work / "media" / "originals").mkdir(exist_ok=True)
                        shutil.copyfile(cell.video, work / original_ref)
                media[cell.task_id] = (proxy_ref, original_ref)
            data = compare_json(comparison, media)
            if review is not None:
                data["review"] = review
            data_text = json.dumps(data, ensure_ascii=False, indent=2)
            page = report_html(comparison, media, review=review, prescreen=prescreen)
            _check_secrets([data_text, page, review_csv or ""], secrets)
            (work / "compare.json").write_text(data_text, encoding="utf-8")
            if review_csv is not None:
                (work / "review.csv").write_text(review_csv, encoding="utf-8", newline="")
            (work / "index.html").write_text(page, encoding="utf-8")
    except OSError as exc:
        raise ReportError(f"could not write the report {out_dir}: {exc.strerror or exc}") from exc
    return out_dir


def zip_report(report_dir: str | Path, zip_path: str | Path) -> Path:
    """The report directory as one ZIP (videos stored, text deflated), written atomically."""
    report_dir, zip_path = Path(report_dir), Path(zip_path)
    try:
        with atomic_write(zip_path) as out, zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(report_dir.rglob("*")):
                if path.is_file():
                    name = f"{report_dir.name}/{path.relative_to(report_dir).as_posix()}"
                    stored = zipfile.ZIP_STORED if path.suffix == ".mp4" else zipfile.ZIP_DEFLATED
                    archive.write(path, name, compress_type=stored)
    except OSError as exc:
        raise ReportError(f"could not write {zip_path.name}: {exc.strerror or exc}") from exc
    return zip_path
