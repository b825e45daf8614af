"""The data directory has one owner (lab/datadir.py): its layout and the one atomic write."""

from __future__ import annotations

import ast
import os
import stat
from pathlib import Path

import pytest

from lab.datadir import DataDir, atomic_dir, atomic_write, leftovers

LAB = Path(__file__).resolve().parent.parent / "lab"
FOLDERS = ("runs", "thumbs", "previews", "sheets", "proxies", "exports", "images", "similarity", "renders", "reports")


def test_every_file_of_the_lab_has_its_place_under_the_root(tmp_path):
    files = DataDir(tmp_path)
    assert files.journal == tmp_path / "journal.sqlite3"
    assert files.video("task_a") == tmp_path / "runs" / "task_a.mp4"
    assert files.thumb("task_a", 2) == tmp_path / "thumbs" / "task_a_2.jpg"
    assert files.preview("task_a") == tmp_path / "previews" / "task_a.webp"
    assert files.sheet("sweep_1") == tmp_path / "sheets" / "sweep_1.png"
    assert files.proxy("task_a") == tmp_path / "proxies" / "task_a.mp4"
    assert files.export("sweep_1") == tmp_path / "exports" / "sweep_1.zip"
    assert files.image("ab12", "png") == tmp_path / "images" / "ab12.png"
    assert files.similarity_pair("a", "b") == tmp_path / "similarity" / "a__b.json"
    assert files.renders == tmp_path / "renders"
    assert files.report("compare-x") == tmp_path / "reports" / "compare-x"


def test_only_media_folders_are_served_and_they_exist_before_the_first_run(tmp_path):
    served = DataDir(tmp_path).media_dirs()
    assert all(folder.is_dir() for folder in served)
    assert {folder.name for folder in served} == {"runs", "thumbs", "previews", "sheets", "exports", "proxies", "images"}
    assert not any(tmp_path / private in served for private in ("renders", "similarity", "reports"))


def test_a_data_dir_is_a_path_like_its_root(tmp_path):
    assert Path(DataDir(tmp_path)) == tmp_path and os.fspath(DataDir(str(tmp_path))) == str(tmp_path)


def test_atomic_write_puts_the_whole_file_in_place_and_leaves_no_temp(tmp_path):
    target = tmp_path / "deep" / "er" / "file.bin"
    with atomic_write(target) as out:
        out.write(b"new")
        assert not target.exists()  # nothing at the target while it is written
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["file.bin"]


def test_a_failed_atomic_write_leaves_the_old_file_as_it_was(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(target, "w", encoding="utf-8") as out:
        out.write("half of the new")
        raise RuntimeError("the writer broke")
    assert target.read_text() == "old"
    assert leftovers(target) == []


def test_a_tool_writing_by_name_writes_the_file_that_is_renamed(tmp_path):
    target = tmp_path / "video.mp4"
    with atomic_write(target) as out:
        Path(out.name).write_bytes(b"written by ffmpeg")
    assert target.read_bytes() == b"written by ffmpeg"


def test_an_atomically_written_file_gets_the_usual_permissions_not_a_private_temp_files(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "thumb.jpg") as out:
            out.write(b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "thumb.jpg").stat().st_mode) == 0o644


def test_atomic_dir_replaces_a_folder_whole(tmp_path):
    report = tmp_path / "report"
    report.mkdir()
    (report / "old.html").write_text("old")
    with atomic_dir(report) as work:
        (work / "index.html").write_text("new")
        assert (report / "old.html").exists()
    assert [p.name for p in report.iterdir()] == ["index.html"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


def test_a_failed_atomic_dir_leaves_nothing_behind(tmp_path):
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "report") as work:
        (work / "index.html").write_text("half")
        raise RuntimeError("broke")
    assert list(tmp_path.iterdir()) == []


def _layout_joins(tree: ast.AST) -> set[str]:
    """``something / "runs"``: a folder (or the journal) of the data directory spelled in place."""
    return {node.right.value for node in ast.walk(tree)
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and isinstance(node.right, ast.Constant)
            and node.right.value in {*FOLDERS, "journal.sqlite3"}}


def _renames(tree: ast.AST) -> set[str]:
    """``os.replace(a, b)``, ``path.replace(b)``, ``path.rename(b)``, ``tempfile.mkstemp()``: a file put in place by hand."""
    found = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        name, owner = node.func.attr, node.func.value
        module = owner.id if isinstance(owner, ast.Name) else None
        if module in ("os", "tempfile") and name in ("replace", "rename", "mkstemp", "mkdtemp"):
            found.add(f"{module}.{name}")
        elif name in ("replace", "rename") and module not in ("os", "dataclasses") and len(node.args) == 1 and not node.keywords:
            found.add(f"Path.{name}")
    return found


def test_no_other_module_spells_the_layout_or_renames_files_into_place():
    offenders = []
    for path in sorted(LAB.rglob("*.py")):
        if path.name == "datadir.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found = _layout_joins(tree) | _renames(tree)
        if path.relative_to(LAB).as_posix() == "simulator/config.py":
            found -= {"renders"}  # the standalone simulator's cache in ~/.cache, not a data directory
        if found:
            offenders.append(f"{path.relative_to(LAB.parent)}: {sorted(found)}")
    assert offenders == []
