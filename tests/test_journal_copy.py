"""python -m lab journal copy: a lab's SQLite journal moves into PostgreSQL, once, in order, counted per table."""

from __future__ import annotations

import json
import time
from pathlib import Path

from lab import params
from lab.__main__ import main
from lab.store import Store, default_store_path


def _journal_with_history(data_dir: Path) -> None:
    with Store(default_store_path(data_dir)) as store:
        for n, prompt in enumerate(["a red fox in snow", "a lighthouse at dusk", "a red barn"]):
            body = {"model": params.FAST_MODEL, "prompt": prompt, "duration": "4"}
            store.record_submitted(f"task_{n}", params.resolve(body), body, sweep_id="sweep_1", session="b-x")
            time.sleep(0.002)
        store.update("task_0", status="saved", video_path=str(data_dir / "runs" / "task_0.mp4"), cost_usd=0.3,
                     completed_at=time.time())
        store.record_sweep("sweep_1", 3, session="b-x")
        store.set_review("task_0", rating=1, note="keep")


def test_copy_moves_every_row_in_order_and_a_second_copy_adds_nothing(isolated_env, postgres_journal, capsys):
    _journal_with_history(isolated_env)
    assert main(["journal", "copy", "--to", postgres_journal]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(lines[-1])
    assert summary["tables"]["tasks"] == {"copied": 3, "already_there": 0}
    assert summary["tables"]["sweeps"]["copied"] == 1 and summary["tables"]["reviews"]["copied"] == 1
    assert any(line.startswith("tasks ") and " 3 copied" in line for line in lines)

    assert main(["journal", "copy", "--to", postgres_journal]) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again["tables"]["tasks"] == {"copied": 0, "already_there": 3}

    with Store(default_store_path(isolated_env)) as source, Store(postgres_journal) as target:
        assert target.list_runs() == source.list_runs()
        assert [r.task_id for r in target.search("red")] == ["task_2", "task_0"]
        assert target.reviews(["task_0"])["task_0"].note == "keep"
        assert target.sweeps()[0].saved == 1


def test_copy_to_a_server_that_is_down_names_it_without_the_password(isolated_env, capsys):
    _journal_with_history(isolated_env)
    code = main(["journal", "copy", "--to", "postgresql://lab:hunter2@127.0.0.1:9/lab"])
    out = capsys.readouterr()
    assert code == 2 and "127.0.0.1:9" in out.err and "hunter2" not in out.err + out.out
