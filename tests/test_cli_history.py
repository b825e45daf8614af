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


def json_lines(proc: subprocess.CompletedProcess) -> list[dict]:
    """stdout of ``history --json``: every line one run."""
    return [json.loads(line) for line in proc.stdout.splitlines()]


def ids(*args: str) -> list[str]:
    proc = lab("history", "--json", *args)
    assert proc.returncode == 0, proc.stderr
    return [run["task_id"] for run in json_lines(proc)]


def into_a_closed_pipe(*args: str) -> subprocess.CompletedProcess:
    """Run ``python -m lab ARGS`` with stdout a pipe whose reader is already gone (``| head`` that has quit)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run([sys.executable, "-m", "lab", *args], cwd=REPO, stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=60, env=dict(os.environ))
    finally:
        os.close(write_end)


def journal(data_dir: Path) -> None:
    with Store(data_dir / "journal.sqlite3") as store:
        for task_id, prompt in (("task_heron", "A grey heron standing in the reeds at dawn"),
                                ("task_fox", "a red fox in fresh snow"),
                                ("task_reeds", "Wind through reeds, no heron")):
            body = {"model": params.FAST_MODEL, "prompt": prompt, "duration": "4"}
            store.record_submitted(task_id, params.resolve(body), body, base_url_kind="simulator",
                                   sweep_id="sweep_20261205_reeds" if task_id == "task_reeds" else None)
        store.update("task_fox", status="saved", cost_usd=0.3)
        store.record_intent("req_lost", '{"prompt": "a lost boat"}', {"prompt": "a lost boat"}, backend="live",
                            prompt="a lost boat")
        store.close_intent("req_lost", "unknown", error="submit: read timed out")


def test_history_prints_a_table_of_runs_newest_first_with_their_sweep_and_flags_unknown_outcomes(isolated_env: Path) -> None:
    journal(isolated_env)
    proc = lab("history")
    assert proc.returncode == 0, proc.stderr
    header, *rows = proc.stdout.splitlines()
    assert header.split()[:5] == ["created", "(UTC)", "task", "sweep", "status"]
    assert [row.split()[2] for row in rows] == ["task_reeds", "task_fox", "task_heron"]
    assert rows[0].split()[3] == "sweep_20261205_reeds" and rows[1].split()[3] == "-"  # the id compare takes
    assert "$0.30" in rows[1]
    assert "req_lost" in proc.stderr and "req_lost" not in proc.stdout  # messages on stderr, data on stdout


def test_history_json_prints_one_object_per_run_and_nothing_else(isolated_env: Path) -> None:
    journal(isolated_env)
    proc = lab("history", "--json")
    assert proc.returncode == 0, proc.stderr
    runs = json_lines(proc)
    assert [r["task_id"] for r in runs] == ["task_reeds", "task_fox", "task_heron"]
    assert runs[0]["sweep_id"] == "sweep_20261205_reeds" and runs[1]["cost_usd"] == 0.3
    assert f"attention: request req_lost: {UNKNOWN_OUTCOME}" in proc.stderr


def test_history_searches_prompts_by_words_in_any_order_and_filters_by_status(isolated_env: Path) -> None:
    journal(isolated_env)
    assert ids("-q", "reeds heron") == ["task_reeds", "task_heron"]
    assert ids("-q", "FOX") == ["task_fox"]
    assert ids("-q", 'heron" OR "fox') == []  # words, never FTS syntax
    assert ids("--status", "saved") == ["task_fox"]


def test_a_closed_pipe_ends_history_quietly(isolated_env: Path) -> None:
    journal(isolated_env)
    for args in (["history", "--limit", "3"], ["history", "show", "task_heron"], ["history", "--json"]):
        proc = into_a_closed_pipe(*args)
        assert proc.returncode == 141, proc.stderr  # what a shell reports for a tool a closed pipe stopped
        assert "Traceback" not in proc.stderr and "resume" not in proc.stderr


def test_history_q_finds_what_the_history_tab_finds_for_the_same_words(isolated_env: Path) -> None:
    from lab.sessions import JournalView

    journal(isolated_env)
    with Store(isolated_env / "journal.sqlite3") as store:
        tab = {q: [r.task_id for r in JournalView(store, "all").runs("b-anyone", q)] for q in ("hero ree", "sno")}
    assert tab == {"hero ree": ["task_reeds", "task_heron"], "sno": ["task_fox"]}
    for words, found in tab.items():
        assert ids("-q", words) == found


def test_history_show_prints_one_run_or_one_submit_as_json(isolated_env: Path) -> None:
    journal(isolated_env)
    run = last_json(lab("history", "show", "task_heron"))
    assert run["task_id"] == "task_heron" and run["wire"]["duration"] == "4" and run["status"] == "queued"
    submit = last_json(lab("history", "show", "req_lost"))
    assert submit["state"] == "unknown" and submit["outcome"] == UNKNOWN_OUTCOME
    missing = lab("history", "show", "task_nope")
    assert missing.returncode == 2 and last_json(missing)["ok"] is False
