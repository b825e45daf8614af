"""`python -m lab history`: the journal as a product (list, full-text search, show), as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from lab import params
from lab.store import UNKNOWN_OUTCOME, Store

REPO = Path(__file__).resolve().parent.parent


def lab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lab", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=60, env=dict(os.environ))


def last_json(proc: subprocess.CompletedProcess) -> dict:
    return json.loads(proc.stdout.strip().splitlines()[-1])


def journal(data_dir: Path) -> None:
    with Store(data_dir / "journal.sqlite3") as store:
        for task_id, prompt in (("task_heron", "A grey heron standing in the reeds at dawn"),
                                ("task_fox", "a red fox in fresh snow"),
                                ("task_reeds", "Wind through reeds, no heron")):
            body = {"model": params.FAST_MODEL, "prompt": prompt, "duration": "4"}
            store.record_submitted(task_id, params.resolve(body), body, base_url_kind="simulator")
        store.update("task_fox", status="saved", cost_usd=0.3)
        store.record_intent("req_lost", '{"prompt": "a lost boat"}', {"prompt": "a lost boat"}, backend="live",
                            prompt="a lost boat")
        store.close_intent("req_lost", "unknown", error="submit: read timed out")


def test_history_lists_newest_first_and_flags_unknown_outcomes(isolated_env: Path) -> None:
    journal(isolated_env)
    proc = lab("history")
    assert proc.returncode == 0, proc.stderr
    summary = last_json(proc)
    assert [t["task_id"] for t in summary["tasks"]] == ["task_reeds", "task_fox", "task_heron"]
    assert "task_fox" in proc.stdout and "$0.30" in proc.stdout
    (unknown,) = summary["unknown_outcome"]
    assert unknown["request_id"] == "req_lost" and unknown["outcome"] == UNKNOWN_OUTCOME
    assert "req_lost" in proc.stderr


def test_history_searches_prompts_by_words_in_any_order_and_filters_by_status(isolated_env: Path) -> None:
    journal(isolated_env)
    assert [t["task_id"] for t in last_json(lab("history", "-q", "reeds heron"))["tasks"]] == ["task_reeds", "task_heron"]
    assert [t["task_id"] for t in last_json(lab("history", "-q", "FOX"))["tasks"]] == ["task_fox"]
    assert last_json(lab("history", "-q", 'heron" OR "fox'))["tasks"] == []  # words, never FTS syntax
    assert [t["task_id"] for t in last_json(lab("history", "--status", "saved"))["tasks"]] == ["task_fox"]


def test_history_q_finds_what_the_history_tab_finds_for_the_same_words(isolated_env: Path) -> None:
    from lab.sessions import JournalView

    journal(isolated_env)
    with Store(isolated_env / "journal.sqlite3") as store:
        tab = {q: [r.task_id for r in JournalView(store, "all").runs("b-anyone", q)] for q in ("hero ree", "sno")}
    assert tab == {"hero ree": ["task_reeds", "task_heron"], "sno": ["task_fox"]}
    for words, found in tab.items():
        assert [t["task_id"] for t in last_json(lab("history", "-q", words))["tasks"]] == found


def test_history_show_prints_one_run_or_one_submit_as_json(isolated_env: Path) -> None:
    journal(isolated_env)
    run = last_json(lab("history", "show", "task_heron"))
    assert run["task_id"] == "task_heron" and run["wire"]["duration"] == "4" and run["status"] == "queued"
    submit = last_json(lab("history", "show", "req_lost"))
    assert submit["state"] == "unknown" and submit["outcome"] == UNKNOWN_OUTCOME
    missing = lab("history", "show", "task_nope")
    assert missing.returncode == 2 and last_json(missing)["ok"] is False
