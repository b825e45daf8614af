"""The simulator a keyless lab embeds answers only that lab: loopback only, a random key per process."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import requests

from helpers import lab_settings
from lab import params
from lab.settings import SIMULATOR_KEY

REPO = Path(__file__).resolve().parent.parent
SUBMIT = {"model": params.FAST_MODEL, "prompt": "a fox in the snow", "duration": "4"}


def keyless_services(data_dir: Path):
    from lab.wiring import open_app

    settings = lab_settings({"LAB_DATA_DIR": str(data_dir), "LAB_SIM_TIME_SCALE": "0.02"})
    return open_app(settings).runs


def test_the_embedded_simulator_listens_on_loopback_only(tmp_path):
    services = keyless_services(tmp_path)
    try:
        assert services.wiring.simulator.host == "127.0.0.1"
        assert services.wiring.base_url.startswith("http://127.0.0.1:")
    finally:
        services.close()


def test_it_refuses_any_key_but_the_labs_own_random_one(tmp_path):
    first, second = keyless_services(tmp_path / "a"), keyless_services(tmp_path / "b")
    try:
        assert first.wiring._secret != second.wiring._secret  # drawn per process (here: per lab), never a constant
        assert SIMULATOR_KEY not in (first.wiring._secret, second.wiring._secret)
        for key in (SIMULATOR_KEY, "sk-x", second.wiring._secret):
            answer = requests.post(f"{first.wiring.base_url}/videos", json=SUBMIT, timeout=10,
                                   headers={"Authorization": f"Bearer {key}"})
            assert answer.status_code == 401
        assert first.wiring.simulator.ledger()["submits"] == 0
        # The lab's own calls go through.
        outcome = first.run_one({**SUBMIT, "metadata": {"seed": 3}}, session="s", on_event=None)
        assert outcome.ok and first.wiring.simulator.ledger()["submits"] == 1
    finally:
        first.close()
        second.close()


def test_the_random_key_is_in_no_source_file(tmp_path):
    services = keyless_services(tmp_path)
    try:
        key = services.wiring._secret
        for path in [*REPO.glob("lab/**/*.py"), REPO / "app.py", REPO / "space.yaml"]:
            assert key not in path.read_text(encoding="utf-8")
    finally:
        services.close()


def test_a_task_of_the_embedded_simulator_cannot_be_fetched_with_another_key(tmp_path):
    services = keyless_services(tmp_path)
    try:
        outcome = services.run_one({**SUBMIT, "metadata": {"seed": 4}}, session="s", on_event=None)
        for path in (f"/videos/{outcome.task_id}", f"/videos/{outcome.task_id}/content"):
            answer = requests.get(services.wiring.base_url + path, timeout=10,
                                  headers={"Authorization": f"Bearer {SIMULATOR_KEY}"})
            assert answer.status_code == 401 and b"ftyp" not in answer.content
    finally:
        services.close()


def test_the_cli_simulator_command_keeps_its_open_routes(tmp_path):
    from helpers import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "lab", "simulator", "--port", str(port), "--time-scale", "0.02",
                             "--render-cache", str(tmp_path / "r")], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "the simulator did not start"
            try:
                ledger = requests.get(url + "/_sim/ledger", timeout=2)
                break
            except requests.ConnectionError:
                time.sleep(0.05)
        assert ledger.status_code == 200
        answer = requests.post(url + "/v1/videos", json=SUBMIT, timeout=10, headers={"Authorization": "Bearer sk-any"})
        assert answer.status_code == 200 and answer.json()["id"]
    finally:
        proc.terminate()
        proc.wait(timeout=20)
