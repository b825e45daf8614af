"""Sessions: who a visitor is, and that no query shows one session another's runs (history_scope: session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab import params
from lab.errors import NotYours
from lab.sessions import Identities, JournalView, RunningWork, new_browser_session, session_identity
from lab.store import Store


@pytest.fixture
def store(journal_url) -> Store:
    with Store(journal_url) as opened:
        yield opened


def body(seed: int, prompt: str = "a heron in reeds") -> dict:
    return {"model": params.FAST_MODEL, "prompt": prompt, "duration": "4", "metadata": {"seed": seed}}


def journal(store: Store, task_id: str, session: str, *, seed: int = 1, status: str = "saved", sweep_id=None,
            label=None, prompt: str = "a heron in reeds"):
    request = body(seed, prompt)
    return store.record_submitted(task_id, params.resolve(request), request, sweep_id, variant_label=label,
                                  status=status, session=session)


# ---------------------------------------------------------------- identity


def test_a_browser_without_a_session_gets_a_new_one_and_keeps_it():
    identity, keep = session_identity(None)
    assert identity == keep and keep.startswith("b-")
    assert session_identity(keep) == (keep, keep)
    assert session_identity(None)[0] != identity


@pytest.mark.parametrize("forged", ["hf:alice", "default", "anonymous", "b-short", "", 42, {"id": "b-x"}])
def test_a_stored_value_we_did_not_make_is_replaced(forged):
    identity, keep = session_identity(forged)
    assert identity != forged and keep.startswith("b-")


def test_the_signed_in_hugging_face_user_is_the_identity():
    browser = new_browser_session()
    assert session_identity(browser, "alice") == ("hf:alice", browser)
    assert session_identity(None, "alice")[0] == "hf:alice"  # another browser, same person


# ---------------------------------------------------------------- the ownership check


def test_check_owner_refuses_another_sessions_run_and_sweep_in_the_words_of_a_missing_one(store):
    journal(store, "task_mine", "b-mine")
    journal(store, "task_theirs", "b-theirs")
    store.record_sweep("sweep_theirs", 1, session="b-theirs", plan=[])
    view = JournalView(store, "session")
    view.check_owner("b-mine", task_ids=["task_mine"])
    with pytest.raises(NotYours) as theirs:
        view.check_owner("b-mine", task_ids=["task_mine", "task_theirs"])
    with pytest.raises(NotYours) as missing:
        view.check_owner("b-mine", task_ids=["task_nobody"])
    assert str(theirs.value) == "No run 'task_theirs' in the journal."
    assert str(missing.value) == "No run 'task_nobody' in the journal."
    with pytest.raises(NotYours):
        view.check_owner("b-mine", sweep_ids=["sweep_theirs"])
    assert not view.may_see("b-mine", None) and not view.may_see("b-mine", ["task_mine"])  # type: ignore[arg-type]


def test_with_all_scope_the_ownership_check_lets_everyone_see_every_run(store):
    journal(store, "task_theirs", "b-theirs")
    view = JournalView(store, "all")
    view.check_owner("b-mine", task_ids=["task_theirs"])
    assert view.visible_ids("b-mine") is None
    assert JournalView(store, "session").visible_ids("b-theirs") == {"task_theirs"}


# ---------------------------------------------------------------- scope


def test_with_session_scope_no_query_returns_another_sessions_runs(store):
    journal(store, "task_mine", "b-mine", prompt="my fox")
    journal(store, "task_theirs", "b-theirs", prompt="their fox")
    store.record_sweep("sweep_theirs", 1, session="b-theirs", plan=[{"label": "seed 1", "body": body(1)}])
    journal(store, "task_their_cell", "b-theirs", sweep_id="sweep_theirs", label="seed 1")
    view = JournalView(store, "session")
    assert [r.task_id for r in view.runs("b-mine")] == ["task_mine"]
    assert view.runs("b-mine", "fox") == view.runs("b-mine")
    assert view.run("b-mine", "task_theirs") is None
    assert view.run("b-mine", "task_mine").task_id == "task_mine"
    assert view.sweeps("b-mine") == [] and view.sweep("b-mine", "sweep_theirs") is None
    assert view.sweep("b-theirs", "sweep_theirs") is not None


def test_with_all_scope_everyone_sees_every_run(store):
    journal(store, "task_a", "b-a")
    journal(store, "task_b", "b-b")
    view = JournalView(store, "all")
    assert {r.task_id for r in view.runs("b-a")} == {"task_a", "task_b"}
    assert view.run("b-a", "task_b") is not None


def test_a_session_may_see_its_own_run_and_neither_anothers_nor_a_missing_one(store):
    journal(store, "task_mine", "b-mine")
    journal(store, "task_theirs", "b-theirs")
    view = JournalView(store, "session")
    assert view.may_see("b-mine", "task_mine")
    assert not view.may_see("b-mine", "task_theirs") and not view.may_see("b-mine", "task_nope")


def test_with_all_scope_a_session_may_see_any_run_that_exists(store):
    journal(store, "task_theirs", "b-theirs")
    view = JournalView(store, "all")
    assert view.may_see("b-mine", "task_theirs") and not view.may_see("b-mine", "task_nope")


# ---------------------------------------------------------------- sweeps from the journal


def test_a_sweep_comes_back_with_unsubmitted_cells_and_retries_only_what_is_safe(store):
    plan = [{"label": f"seed {n}", "body": body(n)} for n in (1, 2, 3, 4)]
    store.record_sweep("sweep_1", 4, session="b-me", plan=plan)
    journal(store, "t1", "b-me", seed=1, sweep_id="sweep_1", label="seed 1", status="saved")
    journal(store, "t2", "b-me", seed=2, sweep_id="sweep_1", label="seed 2", status="failed")
    journal(store, "t3", "b-me", seed=3, sweep_id="sweep_1", label="seed 3", status="in_progress")
    running = RunningWork()
    view = JournalView(store, "session", running)
    running.start_sweep("b-me", "sweep_1")
    state = view.sweep("b-me", "sweep_1")
    assert [c.record.task_id if c.record else None for c in state.cells] == ["t1", "t2", "t3", None]
    assert state.running and state.retry_cells() == []  # nothing is retried while it still runs
    running.end_sweep("sweep_1")
    state = view.sweep("b-me", "sweep_1")
    # failed (not billed) and never submitted: yes; in progress (may still bill): no
    assert [(c.index, c.body["metadata"]["seed"]) for c in state.retry_cells()] == [(1, 2), (3, 4)]
    assert state.open_cells == 1
    journal(store, "t2b", "b-me", seed=2, sweep_id="sweep_1", label="seed 2", status="saved")  # the retry
    assert view.sweep("b-me", "sweep_1").cells[1].record.task_id == "t2b"


def test_a_sweep_row_whose_submit_made_no_task_says_why_and_is_retried_only_if_nothing_can_exist(store):
    from lab.presentation import sweep_row

    plan = [{"label": f"seed {n}", "body": body(n)} for n in (1, 2, 3)]
    store.record_sweep("sweep_1", 3, session="b-me", plan=plan)
    journal(store, "t1", "b-me", seed=1, sweep_id="sweep_1", label="seed 1", status="saved")
    for request_id, label, state, error in (("r2", "seed 2", "unknown", "HTTP 502 after the body was sent"),
                                           ("r3", "seed 3", "refused", "HTTP 400: prompt refused")):
        store.record_intent(request_id, "{}", {}, backend="simulator", sweep_id="sweep_1", variant_label=label,
                            session="b-me")
        store.close_intent(request_id, state, error=error)
    state = JournalView(store, "session", RunningWork()).sweep("b-me", "sweep_1")
    unknown, refused = state.cells[1], state.cells[2]
    assert unknown.outcome_unknown and refused.problem == "HTTP 400: prompt refused"
    assert [c.index for c in state.retry_cells()] == [2]  # the unknown one may have created (and billed) a task
    shown = [sweep_row(c.index, c.label, c.record, running=False, problem=c.problem,
                       outcome_unknown=c.outcome_unknown).label for c in state.cells[1:]]
    assert "outcome unknown" in shown[0] and "failed: HTTP 400: prompt refused" in shown[1]


def test_a_reloaded_page_finds_the_sessions_own_latest_work(store):
    running = RunningWork()
    view = JournalView(store, "all", running)
    journal(store, "single_other", "b-other", status="in_progress")
    journal(store, "single_mine", "b-me", status="in_progress")
    assert view.active("b-me", lambda record: record.task_id == "single_mine").ref == "single_mine"
    assert view.active("b-me", lambda record: False) is None  # nobody waits on it any more: nothing in flight
    store.record_sweep("sweep_mine", 2, session="b-me", plan=[])
    running.start_sweep("b-me", "sweep_mine")
    active = view.active("b-me", lambda record: True)
    assert (active.kind, active.ref) == ("sweep", "sweep_mine")
    assert view.active("b-other", lambda record: False) is None
    assert view.latest_sweep("b-me") == "sweep_mine" and view.latest_sweep("b-other") is None
    assert view.latest_single("b-me").task_id == "single_mine"


def test_a_page_is_its_sessions_until_forgotten_and_then_only_its_own():
    pages = Identities(limit=2)
    pages.bind("page-1", "b-alice")
    assert pages.of("page-1") == "b-alice" and pages.of("page-2") == "page-2"
    pages.bind("page-2", "b-bob")
    pages.bind("page-3", "b-carol")
    assert pages.of("page-1") == "page-1"  # forgotten: its own hash, never another visitor's session


def test_a_cli_sweep_journals_its_plan_and_session(simulator, tmp_path, journal_url):
    from lab.client import VideosClient
    from lab.runner import Runner

    with Store(journal_url) as journal_store, VideosClient.scaled(simulator.base_url, "sk-x",
                                                                              time_scale=0.02) as client:
        runner = Runner(client, journal_store, tmp_path, thumbs=0, session="cli")
        result = runner.run_sweep(runner.plan_sweep(body(1), seeds=[1, 2]))
        state = JournalView(journal_store, "session").sweep("cli", result.sweep_id)
    assert [(c.label, c.body["metadata"]["seed"], c.record.status) for c in state.cells] == [
        ("seed 1", 1, "saved"), ("seed 2", 2, "saved")]


def test_a_sweep_another_process_runs_is_running_here_until_its_lease_expires(store):
    view = JournalView(store, "session")  # this process runs nothing
    store.record_sweep("sweep_x", 2, session="b-me", plan=[])
    store.lease_sweep("sweep_x", "other-host:1:abc", lease_s=60)
    active = view.active("b-me", lambda record: False)
    assert (active.kind, active.ref) == ("sweep", "sweep_x") and view.sweep("b-me", "sweep_x").running
    assert view.active("b-other", lambda record: False) is None
    store.lease_sweep("sweep_x", "other-host:1:abc", lease_s=-1)  # what a killed replica's lease becomes
    assert view.active("b-me", lambda record: False) is None and not view.sweep("b-me", "sweep_x").running
