"""`python app.py` stopped as a process manager stops it: the journal is closed on the way out."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from helpers import free_port

REPO = Path(__file__).resolve().parent.parent


def test_sigterm_closes_the_journal_and_leaves_no_wal_or_shm_files(tmp_path: Path, isolated_env: Path) -> None:
    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
           "GRADIO_TEMP_DIR": str(tmp_path / "gradio")}
    log_path = tmp_path / "app.log"
    with log_path.open("w") as log:
        process = subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 120
            while True:  # wait until it serves (the journal is open and migrated by then)
                assert process.poll() is None, log_path.read_text()
                try:
                    if requests.get(f"http://127.0.0.1:{port}/config", timeout=2).ok:
                        break
                except requests.ConnectionError:
                    pass
                assert time.monotonic() < deadline, "app.py did not start"
                time.sleep(0.3)
            journal = isolated_env / "journal.sqlite3"
            assert Path(f"{journal}-wal").exists()  # open in WAL mode while it serves
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=60) == 0, log_path.read_text()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert journal.is_file()
    assert not Path(f"{journal}-wal").exists() and not Path(f"{journal}-shm").exists(), log_path.read_text()
    assert "Traceback" not in log_path.read_text()
