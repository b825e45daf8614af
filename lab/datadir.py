"""The data directory: where each kind of file lives in it, and the one way a file is written there.

Every module asks ``DataDir`` for a path instead of spelling the layout itself::

    <root>/journal.sqlite3     the journal (SQLite; private)
           runs/<task>.mp4     saved videos
           thumbs/<task>_<n>.jpg, previews/<task>.webp, sheets/<sweep>.png
           proxies/<task>.mp4  playback proxies (Compare), similarity/<a>__<b>.json (SSIM cache)
           exports/<name>.zip  sweep and comparison ZIPs; reports/<name>/ the CLI's compare reports
           images/<sha256>.<ext> kept reference images; renders/ the private simulator's cache

``atomic_write(path)`` is pip's ``adjacent_tmp_file``: a file of this call's own beside the
target, flushed and fsynced, then ``os.replace``d onto it, so a reader (or a second process
writing the same file) sees the whole old file or the whole new one, never half of one.
No lab imports: this module is a leaf every other one may use.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

JOURNAL_NAME = "journal.sqlite3"
# The only folders the page may fetch from: media the lab wrote. The journal (every
# visitor's prompts), the SSIM cache, reports and the simulator's render cache stay private.
MEDIA_FOLDERS = ("runs", "thumbs", "previews", "sheets", "exports", "proxies", "images")
# What the temp files of atomic_write end with: an owner that takes over a dead one's work
# (runner._download) removes its leftovers by this.
PART_SUFFIX = ".part"


class DataDir(os.PathLike):
    """The layout of one data directory. Path arithmetic only: nothing is created until written.

    Ids are used as given: callers check them first (``client.safe_task_id``).
    """

    __slots__ = ("root",)

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def __fspath__(self) -> str:
        return os.fspath(self.root)

    def __repr__(self) -> str:
        return f"DataDir({str(self.root)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DataDir) and other.root == self.root

    def __hash__(self) -> int:
        return hash(self.root)

    # ------------------------------------------------------------ folders

    @property
    def journal(self) -> Path:
        return self.root / JOURNAL_NAME

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def thumbs(self) -> Path:
        return self.root / "thumbs"

    @property
    def previews(self) -> Path:
        return self.root / "previews"

    @property
    def sheets(self) -> Path:
        return self.root / "sheets"

    @property
    def proxies(self) -> Path:
        return self.root / "proxies"

    @property
    def exports(self) -> Path:
        return self.root / "exports"

    @property
    def images(self) -> Path:
        return self.root / "images"

    @property
    def similarity(self) -> Path:
        return self.root / "similarity"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def renders(self) -> Path:
        return self.root / "renders"

    # ------------------------------------------------------------ files

    def video(self, task_id: str) -> Path:
        return self.runs / f"{task_id}.mp4"

    def thumb(self, task_id: str, number: int) -> Path:
        return self.thumbs / f"{task_id}_{number}.jpg"

    def preview(self, task_id: str) -> Path:
        return self.previews / f"{task_id}.webp"

    def sheet(self, sweep_id: str) -> Path:
        return self.sheets / f"{sweep_id}.png"

    def proxy(self, task_id: str) -> Path:
        return self.proxies / f"{task_id}.mp4"

    def export(self, name: str) -> Path:
        """``exports/<name>.zip``: a sweep's ZIP is named by its sweep id."""
        return self.exports / f"{name}.zip"

    def image(self, sha256: str, extension: str) -> Path:
        return self.images / f"{sha256}.{extension}"

    def similarity_pair(self, a: str, b: str) -> Path:
        return self.similarity / f"{a}__{b}.json"

    def report(self, stamp: str | None = None) -> Path:
        """A new comparison report's folder: ``reports/compare-<date>-<time>``."""
        return self.reports / (stamp or time.strftime("compare-%Y%m%d-%H%M%S"))

    def media_dirs(self) -> list[Path]:
        """The folders a page may fetch files from, created so a server can allow them before the first run."""
        folders = [self.root / name for name in MEDIA_FOLDERS]
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
        return folders


def part_name(path: Path) -> Path:
    """A temp name of this call's own beside ``path`` (hidden, ends in ``.part``)."""
    return path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}{PART_SUFFIX}")


def leftovers(path: Path) -> list[Path]:
    """Temp files ``atomic_write`` left beside ``path`` (a process killed mid-write)."""
    return list(path.parent.glob(f".{path.name}.*{PART_SUFFIX}"))


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", *, encoding: str | None = None) -> Iterator[IO]:
    """Write ``path`` whole or not at all: yields an open temp file beside it (parents created).

    When the block ends normally the file is flushed, fsynced and renamed onto ``path``; when
    it raises, the temp file is removed and ``path`` is left as it was. A tool that writes by
    file name (ffmpeg) writes to ``Path(handle.name)``; the same file is then synced and renamed.
    """
    if "w" not in mode:
        raise ValueError("atomic_write opens for writing: mode 'w' or 'wb'")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = part_name(path)
    # "x": a new file, created with the usual permissions (umask), not mkstemp's 0600.
    handle = open(temp, mode.replace("w", "x"), encoding=encoding)  # noqa: SIM115 (closed below)
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """A folder filled in full, then put in place at ``path`` (replacing a folder there).

    Yields an empty temp folder beside ``path``; removed if the block raises.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    work = part_name(path)
    work.mkdir()
    try:
        yield work
        work.chmod(0o755)
        if path.exists():
            # A folder cannot be renamed onto a non-empty one: move the old aside first.
            trash = path.with_name(f".{path.name}.old-{time.time_ns()}")
            path.rename(trash)
            work.rename(path)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            work.rename(path)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
