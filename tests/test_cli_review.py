"""python -m lab review import / export --csv, and history's review status (the real CLI, a real journal)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from lab import params
from lab.store import Store, default_store_path

REPO = Path(__file__).resolve().parents[1]
A, B = "task_cli_a", "task_cli_b"


def lab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lab", *args], cwd=REPO, capture_output=True, text=True, timeout=60)


@pytest.fixture
def journal(isolated_env: Path) -> Path:
    with Store(default_store_path(isolated_env)) as store:
        for task_id, seed in ((A, 1), (B, 2)):
            body = {"model": params.FAST_MODEL, "prompt": "=a fox in snow", "duration": "4", "metadata": {"seed": seed}}
            store.record_submitted(task_id, params.resolve(body), body)
    return isolated_env


def write_review(path: Path, **change) -> Path:
    data = {"schema": "veo-lab-review", "version": 1, "report_id": "r1", "reviewer": "Ann", "exported_at": 1.0,
            "comments": [{"id": "c1", "task_id": B, "t_in": 3.2, "t_out": 3.9, "text": "the hand melts",
                          "author": "Ann", "created_at": 1_700_000_000.0,
                          "shapes": [{"kind": "arrow", "color": "#e03131", "points": [[0.2, 0.3], [0.5, 0.6]]}]}],
            "status_events": [{"id": "e1", "task_id": A, "from": "needs_review", "to": "approved", "author": "Ann",
                               "at": 1_700_000_100.0}], **change}
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_import_then_history_show_and_filter_carry_the_review(journal: Path, tmp_path: Path) -> None:
    file = write_review(tmp_path / "review-r1-Ann.json")
    first, again = lab("review", "import", str(file)), lab("review", "import", str(file))
    assert first.returncode == 0 and json.loads(first.stdout.splitlines()[-1])["files"][0]["comments_added"] == 1
    assert json.loads(again.stdout.splitlines()[-1])["files"][0]["comments_added"] == 0
    approved = [json.loads(line) for line in lab("history", "--json", "--review-status", "approved").stdout.splitlines()]
    assert [(t["task_id"], t["review_status"]) for t in approved] == [(A, "approved")]
    shown = json.loads(lab("history", "show", B).stdout.splitlines()[-1])["review"]
    assert shown["status"] == "needs_review" and shown["comments"][0]["text"] == "the hand melts"
    assert json.loads(lab("history", "show", A).stdout.splitlines()[-1])["review"]["status_history"][0]["to"] == "approved"


def test_a_refused_file_exits_2_names_the_item_and_the_good_file_is_still_imported(journal: Path, tmp_path: Path) -> None:
    bad = write_review(tmp_path / "bad.json", version=9)
    good = write_review(tmp_path / "good.json")
    proc = lab("review", "import", str(bad), str(good))
    result = json.loads(proc.stdout.splitlines()[-1])
    assert proc.returncode == 2
    assert "version 9 is not known" in result["files"][0]["error"] and result["files"][1]["ok"]


def test_export_csv_lists_each_comment_with_its_time_code_and_escapes_formulas(journal: Path, tmp_path: Path) -> None:
    lab("review", "import", str(write_review(tmp_path / "r.json")))
    proc = lab("review", "export", "--csv", A, B)
    rows = list(csv.reader(io.StringIO(proc.stdout)))
    assert proc.returncode == 0
    assert rows[1][:5] == ["seed 1", A, "'=a fox in snow", "1", "Approved"]
    assert rows[2][4:8] == ["Needs review", "00:00:03.200", "00:00:03.900", "Ann"]
