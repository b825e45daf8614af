"""lab.runner against a real simulator: journal first, never lose a paid video, failures are data."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from PIL import Image

from helpers import lab_settings
from lab import params
from lab.budget import Budget
from lab.client import VideosClient
from lab.errors import BudgetExceeded, RequestInvalid
from lab.runner import EVENT_KINDS, Event, Runner
from lab.sweeps import checked, plan as plan_seeds
from lab.store import Store

TIME_SCALE = 0.02
KEY = "sk-runner-test-secret-42"
SUBMIT = "POST /v1/videos"


def body(**changes) -> dict:
    base = {"model": params.FAST_MODEL, "prompt": "a red fox in fresh snow", "duration": "4", "metadata": {"seed": 5}}
    base.update(changes)
    return base


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def store(data_dir: Path) -> Store:
    with Store(data_dir / "journal.sqlite3") as opened:
        yield opened


def make_runner(server, store: Store, data_dir: Path, **kw) -> Runner:
    client = VideosClient.scaled(server.base_url, KEY, time_scale=TIME_SCALE)
    kw.setdefault("thumbs", 3)
    kw.setdefault("backend", "simulator")
    return Runner(client, store, data_dir, **kw)


class Recorder:
    """A thread-safe on_event callback that keeps every event."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self.lock:
            self.events.append(event)

    def kinds(self, index: int = 0) -> list[str]:
        return [e.kind for e in self.events if e.index == index]


def charged_ids(server) -> list[str]:
    return [charge["task_id"] for charge in server.ledger()["charges"]]


# ---------------------------------------------------------------- one run


def test_one_run_saves_the_video_and_thumbnails_and_journals_them(simulator, store, data_dir) -> None:
    result = make_runner(simulator, store, data_dir).run_one(body())
    assert result.ok and result.status == "saved"
    assert result.video_path.is_file() and result.video_path.parent == data_dir.resolve() / "runs"
    assert len(result.thumbs) == 3 and all(p.is_file() for p in result.thumbs)
    record = store.get(result.task_id)
    assert record == result.record
    assert (record.status, record.cost_usd, record.seed, record.size) == ("saved", 0.30, 5, "1280x720")
    assert record.base_url_kind == "simulator" and record.elapsed_s > 0


def test_a_saved_run_makes_no_animated_preview_unless_asked(simulator, store, data_dir) -> None:
    plain = make_runner(simulator, store, data_dir).run_one(body())
    assert plain.preview_path is None and not (data_dir / "previews").exists()
    asked = make_runner(simulator, store, data_dir, preview=True).run_one(body())
    assert asked.preview_path == data_dir.resolve() / "previews" / f"{asked.task_id}.webp" and asked.preview_path.is_file()


def test_the_thumbnails_journal_what_the_saved_video_is(simulator, store, data_dir) -> None:
    result = make_runner(simulator, store, data_dir).run_one(body())
    assert store.get(result.task_id).delivered == {"size": "1280x720", "duration_s": 4.0}


def test_events_arrive_in_order_from_submitted_to_done(simulator, store, data_dir) -> None:
    recorder = Recorder()
    make_runner(simulator, store, data_dir).run_one(body(), on_event=recorder)
    kinds = recorder.kinds()
    assert kinds[0] == "submitted" and kinds[-1] == "done"
    for before, after in (("submitted", "downloading"), ("downloading", "saved"), ("saved", "thumbnails")):
        assert kinds.index(before) < kinds.index(after)
    assert set(kinds) <= set(EVENT_KINDS)
    assert [e.status for e in recorder.events if e.kind == "status"][-1] == "completed"


def test_the_task_is_journalled_before_the_first_poll(make_simulator, store, data_dir) -> None:
    sim = make_simulator()
    seen = {}

    def on_event(event: Event) -> None:
        if event.kind == "submitted":
            seen["record"] = store.get(event.task_id)
            seen["polls"] = sim.ledger()["requests"].get("GET /v1/videos/{id}", 0)

    make_runner(sim, store, data_dir).run_one(body(), on_event=on_event)
    assert seen["record"] is not None and seen["record"].status == "queued"
    assert seen["polls"] == 0


def test_an_invalid_request_raises_before_any_http_call(make_simulator, store, data_dir) -> None:
    sim = make_simulator()
    with pytest.raises(RequestInvalid) as caught:
        make_runner(sim, store, data_dir).run_one(body(duration=8))
    assert "duration" in str(caught.value)
    assert sim.ledger()["requests"].get(SUBMIT, 0) == 0
    assert store.list_runs() == []


def test_a_sweep_with_one_invalid_body_sends_nothing(make_simulator, store, data_dir) -> None:
    sim = make_simulator()
    with pytest.raises(RequestInvalid):
        make_runner(sim, store, data_dir).run_sweep(checked(plan_seeds(body(), [1], ["a fox", " "]), max_sweep=8))
    assert sim.ledger()["requests"].get(SUBMIT, 0) == 0


def test_the_runner_refuses_a_plan_past_its_max_sweep_before_any_http_call(make_simulator, store, data_dir) -> None:
    sim = make_simulator()
    planned_elsewhere = checked(plan_seeds(body(), [1, 2, 3]), max_sweep=8)  # a caller with a looser limit
    with pytest.raises(RequestInvalid, match="more than this lab allows at once"):
        make_runner(sim, store, data_dir, max_sweep=2).run_sweep(planned_elsewhere)
    assert sim.ledger()["requests"].get(SUBMIT, 0) == 0
    assert store.list_runs() == []


def test_the_runner_refuses_a_plan_with_an_unchecked_invalid_row(make_simulator, store, data_dir) -> None:
    from lab.sweeps import SweepPlan

    sim = make_simulator()
    items = plan_seeds(body(), [1], ["a fox", " "])
    unchecked = SweepPlan(tuple(items), tuple(params.resolve(item.body) for item in items))
    with pytest.raises(RequestInvalid):
        make_runner(sim, store, data_dir).run_sweep(unchecked)
    assert sim.ledger()["requests"].get(SUBMIT, 0) == 0


def test_a_budget_refusal_raises_before_any_http_call(make_simulator, store, data_dir) -> None:
    sim = make_simulator()
    runner = make_runner(sim, store, data_dir, budget=Budget(store, session_cap_usd=0.50))
    with pytest.raises(BudgetExceeded):
        runner.run_sweep(checked(plan_seeds(body(), [1, 2]), max_sweep=8))
    assert sim.ledger()["requests"].get(SUBMIT, 0) == 0


def test_the_budget_is_charged_only_for_completed_tasks(make_simulator, store, data_dir) -> None:
    budget = Budget(store, session_cap_usd=1.0)
    failing = make_simulator(faults={"failed": 1.0})
    assert not make_runner(failing, store, data_dir, budget=budget).run_one(body()).ok
    assert (budget.view().session_spent_usd, budget.view().session_reserved_usd) == (0.0, 0.0)
    working = make_simulator()
    assert make_runner(working, store, data_dir, budget=budget).run_one(body()).ok
    assert (budget.view().session_spent_usd, budget.view().session_reserved_usd) == (0.30, 0.0)


def test_a_failed_task_is_data_recorded_as_failed_and_not_billed(make_simulator, store, data_dir) -> None:
    sim = make_simulator(faults={"failed": 1.0})
    recorder = Recorder()
    result = make_runner(sim, store, data_dir).run_one(body(), on_event=recorder)
    assert (result.ok, result.status, result.cost_usd) == (False, "failed", 0.0)
    assert "failed" in recorder.kinds()
    assert store.get(result.task_id).status == "failed"
    assert store.unfinished() == []
    assert sim.ledger()["total_usd"] == 0


def test_a_task_past_its_deadline_stays_unfinished_for_resume(make_simulator, store, data_dir) -> None:
    sim = make_simulator(faults={"stuck": 1.0})
    result = make_runner(sim, store, data_dir, deadlines_s={"720p": 0.3}).run_one(body())
    assert not result.ok
    assert "resume" in result.error
    assert [r.task_id for r in store.unfinished()] == [result.task_id]


# ---------------------------------------------------------------- sweeps


def test_a_sweep_saves_every_seed_and_writes_a_contact_sheet_row_each(simulator, store, data_dir) -> None:
    recorder = Recorder()
    result = make_runner(simulator, store, data_dir).run_sweep(checked(plan_seeds(body(), [1, 2, 3, 4]), max_sweep=8), concurrency=4, on_event=recorder)
    assert result.ok and len(result.results) == 4
    assert [r.label for r in result.results] == ["seed 1", "seed 2", "seed 3", "seed 4"]
    assert [store.get(r.task_id).seed for r in result.results] == [1, 2, 3, 4]
    assert result.cost_usd == pytest.approx(1.20)
    with Image.open(result.contact_sheet) as sheet:
        assert sheet.format == "PNG"
    assert [r.task_id for r in store.list_sweep(result.sweep_id)] and store.sweeps()[0].contact_sheet == str(result.contact_sheet)
    assert {e.index for e in recorder.events if e.kind == "done"} == {0, 1, 2, 3}


def test_a_variant_sweeps_contact_sheet_is_titled_with_every_variant_model_and_size(simulator, store, data_dir) -> None:
    items = plan_seeds(body(), [1], ["a lighthouse at dusk", "a red fox running through deep snow at dawn"])
    result = make_runner(simulator, store, data_dir).run_sweep(checked(items, max_sweep=8), concurrency=2)
    assert result.ok
    with Image.open(result.contact_sheet) as sheet:
        title, description = sheet.text["Title"], sheet.text["Description"].splitlines()
    assert title == "2 prompt variants"
    assert description[:2] == ["1. a lighthouse at dusk", "2. a red fox running through deep snow at dawn"]
    assert description[2].startswith(f"{params.FAST_MODEL} · 1280x720 (720p) · ")
    assert description[2].endswith(" UTC")


def test_prompt_variants_times_seeds_make_one_task_each() -> None:
    items = plan_seeds(body(), [1, 2], ["a fox", "a hare"])
    assert [(i.body["prompt"], i.body["metadata"]["seed"]) for i in items] == [
        ("a fox", 1), ("a fox", 2), ("a hare", 1), ("a hare", 2)]
    assert items[3].label == "“a hare” · seed 2"
    assert (items[3].variant, items[3].variant_text, items[3].seed) == (2, "a hare", 2)


def test_a_sweep_of_one_body_takes_seeds_directly(simulator, store, data_dir) -> None:
    runner = make_runner(simulator, store, data_dir, thumbs=1)
    result = runner.run_sweep(runner.plan_sweep(body(), seeds=[8, 9]), concurrency=2)
    assert [(r.label, r.status) for r in result.results] == [("seed 8", "saved"), ("seed 9", "saved")]


def test_a_sweep_carries_on_past_failed_tasks(make_simulator, store, data_dir) -> None:
    sim = make_simulator(faults={"failed": 0.5}, fault_seed=4)
    result = make_runner(sim, store, data_dir).run_sweep(checked(plan_seeds(body(), [1, 2, 3, 4, 5, 6]), max_sweep=8), concurrency=3)
    statuses = [r.status for r in result.results]
    assert set(statuses) <= {"saved", "failed"} and "failed" in statuses and "saved" in statuses
    assert not result.ok
    assert sorted(charged_ids(sim)) == sorted(r.task_id for r in result.results if r.status == "saved")


@pytest.mark.parametrize(
    "fault", ["content_not_ready", "content_502", "failed", "rate_429", "server_500", "drop_connection", "slow"]
)
def test_every_fault_ends_saved_or_clearly_failed_never_charged_twice_or_left_behind(make_simulator, store, data_dir, fault) -> None:
    sim = make_simulator(faults={fault: 0.5}, fault_seed=7)
    result = make_runner(sim, store, data_dir).run_sweep(checked(plan_seeds(body(), [1, 2, 3, 4]), max_sweep=8), concurrency=4)
    for run in result.results:
        # A submit answered 5xx (or cut off) may have created a task: "outcome_unknown", not "not_submitted".
        assert run.status in ("saved", "failed", "not_submitted", "outcome_unknown"), run
        assert run.ok == (run.status == "saved")
        if not run.ok:
            assert run.error
        if run.ok:
            assert run.video_path.is_file()
    assert store.unfinished() == []
    # ...and such a submit stays in the journal as an intent for a person to check, never re-sent.
    unknown = {r.request_id for r in result.results if r.status == "outcome_unknown"}
    assert unknown == {i.request_id for i in store.unresolved_intents()}
    assert sim.ledger()["submits"] <= 4
    charges = charged_ids(sim)
    assert len(charges) == len(set(charges))
    assert set(charges) == {r.task_id for r in result.results if r.status == "saved"}
    assert sum(r.cost_usd for r in result.results) == pytest.approx(sim.ledger()["total_usd"])


# ---------------------------------------------------------------- resume and the journal


def test_resume_finishes_a_task_left_unfinished_and_saves_it(make_simulator, store, data_dir) -> None:
    sim = make_simulator(fixed_generation_s=60.0)  # 1.2 s at the test time scale
    first = make_runner(sim, store, data_dir, deadlines_s={"720p": 0.1}).run_one(body())
    assert not first.ok and store.unfinished()
    results = make_runner(sim, store, data_dir).resume()
    assert [(r.task_id, r.status) for r in results] == [(first.task_id, "saved")]
    assert results[0].video_path.is_file()
    assert store.unfinished() == []
    assert charged_ids(sim) == [first.task_id]


def test_resume_closes_a_task_the_server_no_longer_knows(make_simulator, store, data_dir) -> None:
    sim = make_simulator()
    store.record_submitted("task_unknowntothesim", params.resolve(body()), body(), base_url_kind="simulator")
    (result,) = make_runner(sim, store, data_dir).resume()
    assert result.status == "failed" and "does not know" in result.error
    assert store.unfinished() == []


def test_resume_leaves_tasks_of_another_backend_alone(make_simulator, store, data_dir) -> None:
    sim = make_simulator()
    store.record_submitted("task_livetask0001", params.resolve(body()), body(), base_url_kind="live")
    assert make_runner(sim, store, data_dir).resume() == []
    assert [r.task_id for r in store.unfinished()] == ["task_livetask0001"]


def test_the_api_key_never_lands_in_the_journal(simulator, store, data_dir) -> None:
    make_runner(simulator, store, data_dir).run_one(body())
    store.close()
    for path in data_dir.glob("journal.sqlite3*"):
        content = path.read_bytes()
        assert KEY.encode() not in content and b"runner-test-secret" not in content


def test_resume_with_another_accounts_key_keeps_a_live_task_unfinished(make_simulator, store, data_dir) -> None:
    # The service answers task_not_exist for another account's task: that must not close a paid task.
    sim = make_simulator(fixed_generation_s=30.0)
    owner = VideosClient.scaled(sim.base_url, "sk-owner-key-111111", time_scale=TIME_SCALE)
    submitted = owner.submit(params.resolve(body()).wire)
    store.record_submitted(submitted.task_id, params.resolve(body()), body(), base_url_kind="live")
    other = VideosClient.scaled(sim.base_url, "sk-other-key-222222", time_scale=TIME_SCALE)
    (result,) = Runner(other, store, data_dir, thumbs=0, backend="live").resume()
    assert not result.ok and "another API key" in result.error
    assert [r.task_id for r in store.unfinished()] == [submitted.task_id]
    (result,) = Runner(owner, store, data_dir, thumbs=0, backend="live").resume()
    assert result.ok and result.status == "saved"
    assert charged_ids(sim) == [submitted.task_id]


def test_the_servers_final_answer_is_journalled_when_the_task_ends(simulator, store, data_dir) -> None:
    result = make_runner(simulator, store, data_dir, thumbs=0).run_one(body())
    answer = store.get(result.task_id).final_answer
    assert answer["status"] == "completed" and (answer.get("id") or answer.get("task_id")) == result.task_id


def test_a_live_backend_on_a_loopback_url_keeps_a_task_the_server_does_not_know_unfinished(make_simulator, tmp_path) -> None:
    # A local proxy in front of the live service: the URL is loopback, the backend is still live (a setting).
    from lab.wiring import wire

    sim = make_simulator()
    settings = lab_settings({"APIYI_API_KEY": "sk-live-behind-proxy-123", "LAB_BASE_URL": sim.base_url,
                             "LAB_DATA_DIR": str(tmp_path / "data")})
    wiring = wire(settings)
    try:
        assert wiring.backend == "live" and wiring.runner.backend == "live"
        wiring.store.record_submitted("task_paidbutunknown", params.resolve(body()), body(), base_url_kind="live")
        (result,) = wiring.runner.resume()
        assert not result.ok and "does not know" in result.error
        assert [r.task_id for r in wiring.store.unfinished()] == ["task_paidbutunknown"]
    finally:
        wiring.close()
