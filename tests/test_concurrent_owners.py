"""One owner per task: a sweep and resumes on one data directory never collide (real processes, real simulator)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from lab import frames, params
from lab.client import VideosClient
from lab.runner import Runner
from lab.store import Store

REPO = Path(__file__).resolve().parent.parent
TIME_SCALE = "0.02"


def start_lab(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "lab", *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})


def finish(proc: subprocess.Popen) -> tuple[dict, str]:
    out, err = proc.communicate(timeout=240)
    assert "Traceback" not in err, err
    assert proc.returncode in (0, 1), err
    return json.loads(out.strip().splitlines()[-1]), err


def wait_for(condition, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_a_sweep_and_two_resumes_at_once_save_every_billed_task_exactly_once(make_simulator, isolated_env: Path) -> None:
    # Once, not three times over: eight tasks under three owners already meet in every order the
    # leases allow (claim, renew, skip, take over), and each repetition was the same behaviour.
    sim = make_simulator(fixed_generation_s=60.0)  # 1.2 s each: the resumes start while the sweep waits
    journal = isolated_env / "journal.sqlite3"
    # Eight real renders on a busy machine (two render workers): the client's scale gives them a 108 s deadline.
    common = ["--base-url", sim.base_url, "--sim-time-scale", "0.3", "--thumbs", "2"]
    sweep = start_lab("sweep", "--prompt", "A heron in reeds", "--duration", "4", "--seeds", "1,2,3,4,5,6,7,8",
                      "--concurrency", "8", *common, env={"LAB_MAX_SWEEP": "8"})

    def some_journalled() -> bool:
        if not journal.exists():
            return False
        with Store(journal) as store:
            return bool(store.list_runs())

    wait_for(some_journalled, "the sweep never journalled a task")
    resumes = [start_lab("resume", *common) for _ in range(2)]
    sweep_summary, _ = finish(sweep)
    resume_summaries = [finish(proc)[0] for proc in resumes]

    with Store(journal) as store:
        records = {r.task_id: r for r in store.list_runs(limit=100)}
    charged = [c["task_id"] for c in sim.ledger()["charges"]]
    assert len(records) == 8, records
    assert sorted(charged) == sorted(records), [(r.status, r.error) for r in records.values()]  # billed once each
    for record in records.values():
        assert record.status == "saved" and record.error is None, record
        assert frames.probe(record.video_path).duration == pytest.approx(4, abs=0.5)  # playable
        assert record.lease_owner is None
    runs = sorted(p.name for p in (isolated_env / "runs").iterdir())
    assert runs == sorted(f"{task_id}.mp4" for task_id in records)  # saved once each, no stray .part files
    # Every summary says of each task what the journal says.
    for summary in [sweep_summary, *resume_summaries]:
        for task in summary["tasks"]:
            assert task["status"] == records[task["task_id"]].status, (task, summary)
    assert sweep_summary["ok"] and {t["task_id"] for t in sweep_summary["tasks"]} == set(records)
    assert Path(sweep_summary["contact_sheet"]).is_file()


class StallingProxy:
    """Passes everything through, except that a video download stops after its first 16 KiB."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.port = self.listener.getsockname()[1]
        self.sockets = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            self.sockets += [client, upstream]
            state = {"content": False}
            threading.Thread(target=self._requests, args=(client, upstream, state), daemon=True).start()
            threading.Thread(target=self._answers, args=(upstream, client, state), daemon=True).start()

    @staticmethod
    def _requests(client: socket.socket, upstream: socket.socket, state: dict) -> None:
        try:
            while data := client.recv(65536):
                if data.startswith(b"GET ") and b"/content" in data.split(b"\r\n", 1)[0]:
                    state["content"] = True
                upstream.sendall(data)
        except OSError:
            pass

    @staticmethod
    def _answers(upstream: socket.socket, client: socket.socket, state: dict) -> None:
        sent = 0
        try:
            while data := upstream.recv(65536):
                if state["content"]:
                    if sent >= 16384:
                        continue  # the rest of the video is held back: the download hangs mid-body
                    data = data[: 16384 - sent]
                    sent += len(data)
                client.sendall(data)
        except OSError:
            pass

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


def test_a_resume_skips_a_task_its_owner_is_downloading_and_takes_it_over_once_the_owner_is_killed(
        make_simulator, isolated_env: Path) -> None:
    sim = make_simulator()
    proxy = StallingProxy(sim.port)
    journal = isolated_env / "journal.sqlite3"
    lease = {"LAB_LEASE_S": "2"}
    try:
        owner = start_lab("generate", "--prompt", "a paper boat on a puddle", "--duration", "4", "--seed", "9",
                          "--base-url", proxy.base_url, "--sim-time-scale", TIME_SCALE, env=lease)
        runs = isolated_env / "runs"
        wait_for(lambda: runs.is_dir() and any(p.name.endswith(".part") for p in runs.iterdir()),
                 "the download never started")
        with Store(journal) as store:
            (task,) = store.unfinished()
        assert task.status == "completed" and task.lease_owner is not None
        common = ["--base-url", sim.base_url, "--sim-time-scale", TIME_SCALE]
        # The owner is alive (its download hangs) and renews its lease: a resume leaves the task alone,
        # however long it has been (longer than the lease by now).
        time.sleep(2.5)
        early, err = finish(start_lab("resume", *common, env=lease))
        assert early["tasks"] == [] and early["skipped"] == [task.task_id] and "another process" in err
        owner.send_signal(signal.SIGKILL)
        owner.communicate(timeout=10)
        # Killed mid-download: its lease is no one's now, and the next resume finishes the task.
        late, _ = finish(start_lab("resume", *common, env=lease))
        (resumed,) = late["tasks"]
        assert (resumed["task_id"], resumed["status"]) == (task.task_id, "saved")
        assert frames.probe(resumed["video"]).duration == pytest.approx(4, abs=0.5)
        assert sorted(p.name for p in runs.iterdir()) == [f"{task.task_id}.mp4"]  # the dead owner's .part is gone
        assert [c["task_id"] for c in sim.ledger()["charges"]] == [task.task_id]
    finally:
        proxy.close()


def test_a_lease_held_from_another_host_is_waited_out_then_taken_over(simulator, tmp_path: Path) -> None:
    body = {"model": params.FAST_MODEL, "prompt": "a lighthouse at dusk", "duration": "4"}
    with Store(tmp_path / "journal.sqlite3") as store:
        client = VideosClient.scaled(simulator.base_url, "sk-x", time_scale=float(TIME_SCALE))
        submitted = client.submit(params.resolve(body).wire)
        store.record_submitted(submitted.task_id, params.resolve(body), body, base_url_kind="simulator",
                               lease_owner="some-other-host:4242:abcd", lease_s=60)
        skipped = []
        runner = Runner(client, store, tmp_path, thumbs=0, backend="simulator")
        assert runner.resume(on_skip=skipped.append) == [] and [r.task_id for r in skipped] == [submitted.task_id]
        store.update(submitted.task_id, lease_expires=time.time() - 1)  # its owner stopped renewing
        (result,) = runner.resume()
        assert result.ok and result.task_id == submitted.task_id
        assert store.get(submitted.task_id).lease_owner is None


def test_resume_makes_the_thumbnails_and_contact_sheet_a_killed_sweep_never_made(simulator, tmp_path: Path) -> None:
    body = {"model": params.FAST_MODEL, "prompt": "a red fox in fresh snow", "duration": "4"}
    with Store(tmp_path / "journal.sqlite3") as store:
        client = VideosClient.scaled(simulator.base_url, "sk-x", time_scale=float(TIME_SCALE))
        # What a kill right after the saves leaves: videos saved, no thumbnails, no previews, no sheet.
        runner = Runner(client, store, tmp_path, thumbs=0)
        swept = runner.run_sweep(runner.plan_sweep(body, seeds=[1, 2]), contact_sheet=False)
        assert swept.ok and swept.contact_sheet is None
        results = Runner(client, store, tmp_path, thumbs=3).resume()
        assert sorted(r.task_id for r in results) == sorted(r.task_id for r in swept.results)
        for result in results:
            record = store.get(result.task_id)
            assert len(record.thumbs) == 3 and all(Path(p).is_file() for p in record.thumb_paths)
            assert all(t is not None and 0 < t < 4 for t in record.thumb_times)  # frame times as data
            assert record.preview_path is None  # no page shows one: resume makes none either
        (sweep,) = store.sweeps()
        assert sweep.contact_sheet and Path(sweep.contact_sheet).is_file()
        assert Runner(client, store, tmp_path, thumbs=3).resume() == []  # nothing left half-done
