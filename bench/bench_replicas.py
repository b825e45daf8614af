"""Several replicas on one PostgreSQL journal and one shared data directory: nothing lost, caps held, and throughput.

Run: .venv/bin/python bench/bench_replicas.py [--time-scale 0.02] [--database-url postgresql://…]

Without --database-url a throwaway cluster is started (scripts/pg_cluster.sh) and removed.

1. Chaos: 3 app replicas (``python app.py``, separate processes on their own ports) and 2
   ``python -m lab resume`` loops, all on one PostgreSQL journal and one data directory, the
   simulator injecting faults (content not ready, content 502, failed tasks, 429, 500, dropped
   connections). 4 visitors, each one session on every replica, send 8 single runs each, round
   robin over the replicas, against a $1.50 session cap and a $4.50 day cap, while replica 1 and
   then replica 2 are killed (SIGKILL) and started again. Then the resume loops finish what the
   killed replicas left. Counted: tasks the simulator billed that the journal has not saved (lost),
   tasks billed twice, tracebacks in any process's output, billed vs each cap, and every saved
   video verified playable (ffprobe).
2. Throughput: the same 40-task workload (8 visitors at once, no faults, no caps) on 3 replicas
   on PostgreSQL, 1 replica on PostgreSQL, and 1 replica on SQLite, side by side: the three are
   started together and their rounds interleaved, so a busy machine weighs on each alike; medians. On this 2-core
   machine the work is CPU-bound (download, verify, thumbnails): the point is that 3 replicas
   share it without breaking, not that they triple it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from lab import params  # noqa: E402
from lab.client import verify_video  # noqa: E402
from lab.errors import LabError  # noqa: E402
from lab.simulator.server import SimConfig, SimulatorServer  # noqa: E402
from lab.store import Store  # noqa: E402

PG_SCRIPT = REPO / "scripts" / "pg_cluster.sh"
PROMPT = "a heron in reeds, morning mist"
FAULTS = {"content_not_ready": 0.2, "content_502": 0.1, "failed": 0.1, "rate_429": 0.05, "server_500": 0.05,
          "drop_connection": 0.05}
SESSION_CAP, DAY_CAP = 1.50, 4.50
LEASE_S = 3.0


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def body(seed: int) -> dict:
    return {"model": params.FAST_MODEL, "prompt": PROMPT, "duration": "4", "metadata": {"seed": seed}}


# ---------------------------------------------------------------- processes


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APIYI_", "LAB_", "GRADIO_SERVER_"))}
    env.update(GRADIO_ANALYTICS_ENABLED="False", LAB_LEASE_S=str(LEASE_S), **extra)
    return env


@dataclass
class Replica:
    """One ``python app.py`` process; killed and started again on the same port."""

    name: str
    env: dict[str, str]
    logs: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> None:
        self.starts += 1
        log = open(self.logs / f"{self.name}-{self.starts}.log", "wb")
        self.process = subprocess.Popen([sys.executable, "app.py"], cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                        env={**self.env, "GRADIO_SERVER_PORT": str(self.port)})

    def wait_ready(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {self.logs}")
            try:
                if requests.get(self.url, timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not answer within {timeout:.0f} s")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


class ResumeLoop:
    """``python -m lab resume`` run again and again until stopped (finishing what killed replicas left)."""

    def __init__(self, name: str, env: dict[str, str], sim_url: str, time_scale: float, logs: Path) -> None:
        self.name, self.env, self.sim_url, self.time_scale, self.logs = name, env, sim_url, time_scale, logs
        self.stopping = threading.Event()
        self.runs = 0
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self.stopping.is_set():
            self.runs += 1
            with open(self.logs / f"{self.name}-{self.runs}.log", "wb") as log:
                subprocess.run([sys.executable, "-m", "lab", "resume", "--base-url", self.sim_url,
                                "--sim-time-scale", str(self.time_scale), "--thumbs", "2"],
                               cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT)
            self.stopping.wait(1.0)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(600)


CHAINED = ("The above exception was the direct cause", "During handling of the above exception")


# Not errors of the lab: Gradio logs every gr.Error it shows a visitor (a refusal over a cap), and uvicorn
# cancels the streams still open when SIGTERM's grace period (app.py: 2 s) ends.
EXPECTED = ("gradio.exceptions.Error", "asyncio.exceptions.CancelledError: Task cancelled, timeout graceful shutdown")


def tracebacks(logs: Path) -> tuple[int, int]:
    """(tracebacks, of which expected: Gradio logging a refusal it shows, uvicorn cancelling streams at SIGTERM).

    A chained traceback (``raise gr.Error(...) from err``) is one: it is judged by its last exception.
    """
    total = shown = 0
    for path in logs.glob("*.log"):
        blocks = path.read_text(errors="replace").split("Traceback (most recent call last):")[1:]
        for number, block in enumerate(blocks):
            if number + 1 < len(blocks) and any(phrase in block for phrase in CHAINED):
                continue  # the next block ends this chain
            total += 1
            ending = next((line for line in block.splitlines()[1:] if line and not line.startswith(" ")), "")
            shown += ending.startswith(EXPECTED)
    return total, shown


# ---------------------------------------------------------------- the database


class Postgres:
    """A server for the bench: the given URL, or a throwaway cluster. ``journal()`` is a fresh schema on it."""

    def __init__(self, url: str | None) -> None:
        self.directory = None
        if url is None:
            self.directory = tempfile.mkdtemp(prefix="lab-bench-pg-")
            url = subprocess.run(["bash", str(PG_SCRIPT), "start", self.directory], check=True, capture_output=True,
                                 text=True).stdout.strip()
        self.url = url

    def journal(self) -> str:
        import psycopg

        schema = f"bench_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url, autocommit=True) as admin:
            admin.execute(f"CREATE SCHEMA {schema}")
        return f"{self.url}{'&' if '?' in self.url else '?'}options={quote(f'-csearch_path={schema}')}"

    def close(self) -> None:
        if self.directory:
            subprocess.run(["bash", str(PG_SCRIPT), "stop", self.directory], capture_output=True)


# ---------------------------------------------------------------- driving the replicas


class Visitor:
    """One session (one gradio session hash) on every replica: a reload on another replica is the same visitor."""

    def __init__(self, replicas: list[Replica]) -> None:
        self.session_hash = str(uuid.uuid4())
        self.replicas = replicas
        self._clients: dict[str, object] = {}
        self._lock = threading.Lock()
        self.errors: list[str] = []

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    def generate(self, replica: Replica, request: dict) -> str:
        """'ok', 'refused' (a cap), or 'error' (the replica died under the call, or the run failed)."""
        from gradio_client import Client

        try:
            with self._lock:
                client = self._clients.get(replica.name)
                if client is None:
                    client = Client(replica.url, verbose=False, download_files=False)
                    client.session_hash = self.session_hash
                    self._clients[replica.name] = client
            client.predict(json.dumps(request), api_name="/generate")
            return "ok"
        except Exception as exc:  # a refusal is a gr.Error; a killed replica drops the call
            self._clients.pop(replica.name, None)
            if "cap" in str(exc):
                return "refused"
            self.errors.append(f"{type(exc).__name__}: {str(exc)[:160]}")
            return "error"


def wait_until_settled(sim: SimulatorServer, journal: str, timeout: float = 900.0) -> float:
    """Seconds until the simulator runs nothing and the journal has nothing unfinished or unthumbnailed."""
    started = time.monotonic()
    with Store(journal) as store:
        while time.monotonic() - started < timeout:
            tasks = sim.ledger()["tasks"]
            running = sum(n for status, n in tasks.items() if status not in ("completed", "failed"))
            try:
                left = len(store.unfinished()) + len(store.saved_without_thumbnails())
            except LabError:
                left = 1
            if running == 0 and left == 0:
                break
            time.sleep(0.5)
    return time.monotonic() - started


# ---------------------------------------------------------------- 1. chaos


def chaos(pg: Postgres, time_scale: float, cache: Path, tmp: Path) -> bool:
    journal, data_dir, logs = pg.journal(), tmp / "chaos-data", tmp / "chaos-logs"
    logs.mkdir(parents=True)
    config = SimConfig(time_scale=time_scale, render_cache=cache, faults=FAULTS, fault_seed=23,
                       fixed_generation_s=60.0)
    with SimulatorServer(config) as sim:
        env = child_env(LAB_DATABASE_URL=journal, LAB_DATA_DIR=str(data_dir), LAB_BASE_URL=sim.base_url,
                        LAB_SIM_TIME_SCALE=str(time_scale), LAB_SPEND_CAP_SESSION_USD=str(SESSION_CAP),
                        LAB_SPEND_CAP_DAY_USD=str(DAY_CAP), LAB_HISTORY_SCOPE="session")
        replicas = [Replica(f"replica{n}", env, logs) for n in range(3)]
        resumes = [ResumeLoop(f"resume{n}", env, sim.base_url, time_scale, logs) for n in range(2)]
        outcomes: list[str] = []
        try:
            for replica in replicas:
                replica.start()
            for replica in replicas:
                replica.wait_ready()
            for loop in resumes:
                loop.start()
            visitors = [Visitor(replicas) for _ in range(4)]
            attempts = [(visitor, n) for n in range(8) for visitor in visitors]
            lock = threading.Lock()

            def send(item: tuple[Visitor, int]) -> None:
                visitor, n = item
                replica = replicas[(visitors.index(visitor) + n) % len(replicas)]
                outcome = visitor.generate(replica, body(100 * visitors.index(visitor) + n))
                with lock:
                    outcomes.append(outcome)

            def killer() -> None:
                # Kill replica 1 once a quarter of the calls have ended, replica 2 at 60 %; each comes back.
                for victim, share in ((replicas[1], 0.25), (replicas[2], 0.6)):
                    while len(outcomes) < share * len(attempts):
                        time.sleep(0.1)
                    victim.kill()
                    time.sleep(1.0)
                    victim.start()
                    victim.wait_ready()

            kills = threading.Thread(target=killer)
            kills.start()
            with ThreadPoolExecutor(6) as pool:
                list(pool.map(send, attempts))
            kills.join(600)
            settle_s = wait_until_settled(sim, journal)
            for visitor in visitors:  # their open streams would hold a replica's shutdown past its grace period
                visitor.close()
        finally:
            for loop in resumes:
                loop.stop()
            for replica in replicas:
                replica.stop()
        ledger = sim.ledger()

    charged = [charge["task_id"] for charge in ledger["charges"]]
    with Store(journal) as store:
        records = {record.task_id: record for record in store.iter_all()}
        unknown = store.unresolved_intents(include_in_flight=False)
    saved = [r for r in records.values() if r.status == "saved"]
    lost = [task for task in set(charged) if not (task in records and records[task].status == "saved"
                                                   and records[task].video_path
                                                   and Path(records[task].video_path).is_file())]
    unplayable = 0
    for record in saved:
        try:
            verify_video(Path(record.video_path), expected_size=record.size, expected_duration=record.duration,
                         task_id=record.task_id)
        except LabError:
            unplayable += 1
    videos_on_disk = len(list((data_dir / "runs").glob("*.mp4")))
    by_session: dict[str, float] = {}
    for record in records.values():
        by_session[record.session or "?"] = by_session.get(record.session or "?", 0.0) + (record.cost_usd or 0.0)
    double = len(charged) - len(set(charged))
    traces, refusals_logged = tracebacks(logs)
    traces -= refusals_logged
    # A replica killed between its POST and journalling the answer leaves an intent of unknown outcome: listed
    # to the visitor and `resume` ("may have been created and billed"), never re-sent. Not lost: told.
    unexplained = len(lost) - min(len(lost), len(unknown))
    worst_session = max(by_session.values(), default=0.0)
    print(f"1. chaos: 3 replicas + 2 resume loops on PostgreSQL, faults {','.join(FAULTS)}, "
          f"replica1 and replica2 killed and restarted")
    print(f"   attempts {len(outcomes)}: {outcomes.count('ok')} ok, {outcomes.count('refused')} refused by a cap, "
          f"{outcomes.count('error')} failed or cut by a kill; {ledger['submits']} submits, "
          f"{len(set(charged))} billed; settled {settle_s:.1f} s after the last call; "
          f"resume runs {sum(loop.runs for loop in resumes)}")
    print(f"   lost {unexplained}   double-charged {double}   tracebacks {traces} (besides {refusals_logged} "
          f"expected: refusals Gradio logs as gr.Error, streams cancelled at SIGTERM)   billed but not saved {len(lost)}, each listed as an unknown outcome "
          f"({len(unknown)} listed: a replica killed between its POST and the answer)")
    print(f"   billed ${ledger['total_usd']:.2f} vs day cap ${DAY_CAP:.2f};  largest session ${worst_session:.2f} "
          f"vs session cap ${SESSION_CAP:.2f}")
    print(f"   saved {len(saved)}, video files {videos_on_disk}, unplayable {unplayable}")
    return (not unexplained and not double and not traces and not unplayable and ledger["total_usd"] <= DAY_CAP + 1e-9
            and worst_session <= SESSION_CAP + 1e-9 and len(saved) == videos_on_disk)


# ---------------------------------------------------------------- 2. throughput


class Setup:
    """Replicas of one kind (count, database) with a simulator of their own, started once for every round."""

    def __init__(self, label: str, journal: str, replica_count: int, time_scale: float, cache: Path, tmp: Path):
        name = label.replace(" ", "-").replace(",", "")
        self.label, self.logs = label, tmp / f"{name}-logs"
        self.logs.mkdir(parents=True)
        self.sim = SimulatorServer(SimConfig(time_scale=time_scale, render_cache=cache, fixed_generation_s=60.0)).start()
        env = child_env(LAB_DATA_DIR=str(tmp / f"{name}-data"), LAB_BASE_URL=self.sim.base_url,
                        LAB_SIM_TIME_SCALE=str(time_scale), LAB_SPEND_CAP_SESSION_USD="none",
                        LAB_SPEND_CAP_DAY_USD="none", LAB_MAX_CONCURRENT_TOTAL="16",
                        **({"LAB_DATABASE_URL": journal} if journal else {}))
        self.replicas = [Replica(f"{name}{n}", env, self.logs) for n in range(replica_count)]
        self.times: list[float] = []
        self.saved = 0
        self.errors: set[str] = set()
        for replica in self.replicas:
            replica.start()

    def round(self) -> None:
        """40 single runs from 8 visitors at once, spread round robin over the replicas."""
        visitors = [Visitor(self.replicas) for _ in range(8)]
        order = itertools.count()
        outcomes: list[str] = []

        def send(n: int) -> None:
            visitor = visitors[n % len(visitors)]
            replica = self.replicas[next(order) % len(self.replicas)]
            outcomes.append(visitor.generate(replica, body(1 + n % 8)))

        started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(send, range(40)))
        self.times.append(time.monotonic() - started)
        self.saved += outcomes.count("ok")
        for visitor in visitors:
            self.errors.update(visitor.errors)
            visitor.close()
        print(f"   {self.label:<24} round {len(self.times)}: {outcomes.count('ok'):>2}/40 in {self.times[-1]:6.1f} s"
              f"  (load {os.getloadavg()[0]:.0f})")

    @property
    def median_s(self) -> float:
        return statistics.median(self.times)

    def stop(self) -> None:
        for replica in self.replicas:
            replica.stop()
        self.sim.stop()


def throughput(pg: Postgres, time_scale: float, cache: Path, tmp: Path, rounds: int) -> None:
    """The three setups side by side: started together, their rounds interleaved so load hits each alike."""
    setups = [Setup("3 replicas, PostgreSQL", pg.journal(), 3, time_scale, cache, tmp),
              Setup("1 replica, PostgreSQL", pg.journal(), 1, time_scale, cache, tmp),
              Setup("1 replica, SQLite", "", 1, time_scale, cache, tmp)]
    try:
        for setup in setups:
            for replica in setup.replicas:
                replica.wait_ready()
        setups[2].round()  # warm-up: renders the 8 clips once into the shared cache; not counted
        setups[2].times.clear()
        setups[2].saved = 0
        for _ in range(rounds):
            for setup in setups:
                setup.round()
    finally:
        for setup in setups:
            setup.stop()
    for setup in setups:
        traces, expected = tracebacks(setup.logs)
        print(f"   {setup.label:<24} median {setup.median_s:6.1f} s for 40 ({60 * 40 / setup.median_s:5.1f} tasks/min), "
              f"{setup.saved}/{40 * rounds} saved by their call, tracebacks {traces - expected}")
        for error in sorted(setup.errors):
            print(f"      a call that did not return its video: {error}")
    three, one_pg, one_sqlite = (setup.median_s for setup in setups)
    print(f"   3 replicas vs 1 on PostgreSQL: x{one_pg / three:.2f} the throughput;  "
          f"1 on PostgreSQL vs 1 on SQLite: x{one_sqlite / one_pg:.2f}")


def main() -> int:
    # gradio_client's reader threads raise when their replica is killed under them: the client's noise, not the lab's.
    threading.excepthook = lambda args: None
    sys.stdout.reconfigure(line_buffering=True)  # each figure as soon as it is measured
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-scale", type=float, default=0.02)
    parser.add_argument("--database-url", help="a PostgreSQL server to use (default: a throwaway cluster)")
    parser.add_argument("--skip-chaos", action="store_true")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of 40 tasks per setup (default 3)")
    args = parser.parse_args()
    pg = Postgres(args.database_url)
    try:
        with tempfile.TemporaryDirectory(prefix="lab-replicas-") as name:
            tmp = Path(name)
            cache = tmp / "renders"
            ok = True if args.skip_chaos else chaos(pg, args.time_scale, cache, tmp)
            print(f"2. throughput: 40 single runs from 8 visitors at once, {args.rounds} interleaved rounds per setup "
                  "(after a warm-up round that fills the render cache):")
            throughput(pg, args.time_scale, cache, tmp, args.rounds)
    finally:
        pg.close()
    print("RESULT:", "nothing lost, nothing billed twice, caps held" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
