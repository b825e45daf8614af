"""Sessions through the UI's own handlers, called directly: with history_scope "session" none returns another
session's runs; a page is its browser's session; a reload re-attaches; Retry failed re-runs only what failed."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pytest

from lab import params, sweeps
from lab.sessions import session_identity
from lab.ui import history, session, single, sweep
from lab.ui.events import PAGES, session_of
from lab.waits import StopWaiting
from lab.wiring import open_app

FAST = {"model": params.FAST_MODEL, "prompt": "a heron in reeds", "duration": "4"}


def settings_for(data_dir: Path, scope: str):
    from lab.settings import load_settings

    return load_settings({"LAB_DATA_DIR": str(data_dir), "LAB_SIM_TIME_SCALE": "0.02", "LAB_MAX_SWEEP": "4",
                          "LAB_HISTORY_SCOPE": scope, "LAB_PRESCREEN": "off"})


def page_of(visitor: str) -> SimpleNamespace:
    """A request from a page bound to ``visitor`` (as identify() does on load)."""
    page = f"page-{visitor}-{id(object())}"
    PAGES.bind(page, visitor)
    return SimpleNamespace(session_hash=page)


@pytest.fixture(scope="module")
def lab(render_cache, tmp_path_factory):
    """Services with Alice's and Bob's runs (Bob: a single run and a sweep with a failed row), and the tabs.

    Made once per history scope for the module: the tests read it, and what one adds (a run of a new
    session, a retried row) is in no other test's view.
    """
    from lab.simulator.server import SimConfig, SimulatorServer

    servers: list = []

    def start(scope: str):
        sim = SimulatorServer(SimConfig(time_scale=0.02, render_cache=render_cache, faults={"failed": 0.5},
                                        fault_seed=3)).start()
        servers.append(sim)
        data_dir = tmp_path_factory.mktemp(f"sessions-{scope}")
        services = open_app(settings_for(data_dir, scope), base_url=sim.base_url, api_key="sk-t")
        alice, bob = session_identity(None)[0], session_identity(None)[0]
        runs = {alice: [services.runs.run_one(params.with_seed({**FAST, "prompt": "alice's fox"}, 1), session=alice,
                                         on_event=None)]}
        runs[bob] = [services.runs.run_one(params.with_seed({**FAST, "prompt": "bob's heron"}, 2), session=bob,
                                      on_event=None)]
        plan = sweeps.prepare({**FAST, "prompt": "bob's sweep"}, max_sweep=4, seeds_text="1, 2, 3, 4")
        bob_sweep = services.runs.run_sweep(plan, session=bob, on_event=None)
        with gr.Blocks():
            with gr.Tabs() as tabs:
                with gr.Tab("s"):
                    single_tab = single.build(services.settings.models, [])
                with gr.Tab("w"):
                    sweep_tab = sweep.build(4)
                with gr.Tab("h"):
                    history_tab = history.build()
            parts = session.build(services.settings)
            key = gr.State(None)
        return SimpleNamespace(services=services, alice=alice, bob=bob, runs=runs, bob_sweep=bob_sweep, tabs=tabs,
                               single=single_tab, sweep=sweep_tab, history=history_tab, parts=parts, key=key)

    started: dict[str, SimpleNamespace] = {}
    yield lambda scope: started.get(scope) or started.setdefault(scope, start(scope))
    for item in started.values():
        item.services.close()
    for server in servers:
        server.stop()


def text_of(value) -> str:
    """Everything a handler returned, as text (its outputs are keyed by component)."""
    return json.dumps(list(value.values()) if isinstance(value, dict) else value, default=str)


def bobs_ids(t) -> list[str]:
    return [r.task_id for r in t.runs[t.bob]] + [r.task_id for r in t.bob_sweep.results if r.task_id] + [
        t.bob_sweep.sweep_id]


def test_with_session_scope_no_handler_returns_another_sessions_runs(lab):
    t = lab("session")
    alice = page_of(t.alice)
    listing = history.list_runs(t.services, t.history, None, alice)
    assert [row[-1] for row in listing[t.history.table]] == [t.runs[t.alice][0].task_id]
    for needle in bobs_ids(t) + ["bob's"]:
        assert needle not in text_of(listing)
    assert history.list_runs(t.services, t.history, "bob", alice)[t.history.table] == []
    # Asking for Bob's run or sweep by id: as unknown as a missing one.
    forged_ids = {"table": [t.runs[t.bob][0].task_id], "gallery": [], "sweeps": [t.bob_sweep.sweep_id]}
    with pytest.raises(gr.Error, match="No run"):
        history.select_run(t.services, t.history, "table", forged_ids,
                           SimpleNamespace(index=[0, 0]), alice)
    with pytest.raises(gr.Error, match="No run"):
        history.to_form(t.services, t.single, t.tabs, t.runs[t.bob][0].task_id, alice)
    with pytest.raises(gr.Error, match="No sweep"):
        session.open_sweep(t.services, t.parts, t.sweep, t.tabs, t.bob_sweep.sweep_id, alice)
    with pytest.raises(gr.Error, match="No sweep"):
        list(sweep.retry_failed(t.services, StopWaiting(), t.sweep, t.key,
                                {t.sweep.shown: t.bob_sweep.sweep_id, t.key: None}, alice))
    reattached = session.reattach(t.services, t.parts, t.single, t.sweep, t.tabs, alice)
    for needle in bobs_ids(t) + ["bob's"]:
        assert needle not in text_of(reattached)
    # Bob's own page sees his.
    bob_listing = history.list_runs(t.services, t.history, None, page_of(t.bob))
    assert t.bob_sweep.sweep_id in text_of(bob_listing)


def test_review_and_background_handlers_check_the_owner_themselves_not_the_pages_choices(lab):
    from lab.ui import compare

    t = lab("session")
    alice = page_of(t.alice)
    bobs_run = t.runs[t.bob][0].task_id
    t.services.runs.store.set_review(bobs_run, rating=1, note="bob's note", picked=False)
    with gr.Blocks():
        tab = compare.build()
    # Called as a script would call them: no dropdown stands in the way here, only the handler's own check.
    with pytest.raises(gr.Error, match="No run"):
        compare.load_review(t.services, tab, bobs_run, alice)
    refused = compare.save_review(t.services, tab, [bobs_run, t.runs[t.alice][0].task_id], bobs_run, "👎",
                                  "mine now", True, alice)
    assert refused[tab.review_status].startswith("**Not saved:**")
    review = t.services.runs.store.reviews([bobs_run])[bobs_run]
    assert (review.rating, review.note, review.picked) == (1, "bob's note", False)
    shown = single.check_background(t.services, t.single, [bobs_run], alice)
    assert shown[t.single.background] == [] and "bob's" not in text_of(shown)
    assert bobs_run not in single.fetch_unfinished(t.services, alice)


def test_with_all_scope_a_lab_used_alone_shows_every_run(lab):
    t = lab("all")
    listing = history.list_runs(t.services, t.history, None, page_of(t.alice))
    assert all(task_id in text_of(listing) for task_id in bobs_ids(t)[:1])


def test_every_history_listing_the_page_makes_reads_the_review_status_filter_it_shows(lab):
    """On load, on opening the tab, after a run and when re-attached work ends: the dropdown's value counts."""
    from lab.ui import build_demo

    t = lab("all")
    demo = build_demo(t.services)
    listings = [f for f in demo.fns.values() if getattr(f.fn, "__name__", "") in ("list_runs", "tick")]
    assert len(listings) >= 4
    for f in listings:
        assert any(getattr(c, "elem_id", None) == "history-review-filter" for c in f.inputs), f.fn.__name__
    ended = session.tick(t.services, t.parts, t.single, t.sweep, t.history,
                         {t.parts.attached: None, t.parts.seen: None, t.history.filter: "",
                          t.history.review_filter: "approved"}, page_of(t.alice))
    assert ended[t.history.table] == []  # nothing is approved yet


def test_a_reloaded_page_is_the_same_session(lab):
    t = lab("session")
    stored = session.identify(None, None, SimpleNamespace(session_hash="first-page"))
    assert session.identify(stored, None, SimpleNamespace(session_hash="reloaded-page")) == stored
    first, reloaded = SimpleNamespace(session_hash="first-page"), SimpleNamespace(session_hash="reloaded-page")
    t.services.runs.run_one(params.with_seed(FAST, 9), session=session_of(first), on_event=None)
    assert len(history.list_runs(t.services, t.history, None, reloaded)[t.history.table]) == 1
    signed_in = session.identify(stored, SimpleNamespace(username="alice"), SimpleNamespace(session_hash="p3"))
    assert signed_in == stored  # the browser keeps its id; the identity is the Hugging Face user
    assert history.list_runs(t.services, t.history, None, SimpleNamespace(session_hash="p3"))[t.history.table] == []


def test_a_reopened_sweep_row_shows_its_takes_review_status(lab):
    from lab.review.journal import ReviewJournal

    t = lab("session")
    saved = next(r for r in t.bob_sweep.results if r.status == "saved")
    ReviewJournal(t.services.runs.store).set_status(t.services.runs.store.get(saved.task_id), "approved", author="Bob",
                                                    session=t.bob)
    shown = session.open_sweep(t.services, t.parts, t.sweep, t.tabs, t.bob_sweep.sweep_id, page_of(t.bob))
    labels = [shown[row.label] for row in t.sweep.rows[:len(t.bob_sweep.results)]]
    assert labels[saved.index].endswith("\n✓ Approved")
    assert sum("Approved" in label for label in labels) == 1  # the others were never reviewed: no badge


def test_retry_failed_reruns_only_failed_rows_into_the_same_sweep(lab):
    t = lab("session")
    bob = page_of(t.bob)
    failed = [r.index for r in t.bob_sweep.results if r.status == "failed"]
    saved_before = {r.index: r.task_id for r in t.bob_sweep.results if r.status == "saved"}
    assert failed and saved_before  # the seeded faults fail some rows and not others
    list(sweep.retry_failed(t.services, StopWaiting(), t.sweep, t.key, {t.sweep.shown: t.bob_sweep.sweep_id,
                                                                     t.key: None}, bob))
    state = t.services.journal.sweep(t.bob, t.bob_sweep.sweep_id)
    assert len(state.cells) == 4
    for index, task_id in saved_before.items():
        assert state.cells[index].record.task_id == task_id  # saved rows are not sent again
    for index in failed:
        assert state.cells[index].record.task_id not in {r.task_id for r in t.bob_sweep.results}
    submitted = [r for r in t.services.runs.store.list_sweep(t.bob_sweep.sweep_id)]
    assert len(submitted) == 4 + len(failed)


def test_a_reloaded_page_reattaches_to_a_single_run_in_flight_and_fills_it(make_simulator, tmp_path):
    import threading
    import time

    sim = make_simulator(fixed_generation_s=100.0)  # 2 s
    services = open_app(settings_for(tmp_path, "session"), base_url=sim.base_url, api_key="sk-t")
    try:
        me = session_identity(None)[0]
        submitted = threading.Event()
        worker = threading.Thread(target=services.runs.run_one, args=(params.with_seed(FAST, 5),),
                                  kwargs={"session": me, "on_event": lambda e: e.kind == "submitted" and submitted.set()})
        worker.start()
        assert submitted.wait(120)
        with gr.Blocks():
            with gr.Tabs() as tabs:
                with gr.Tab("s"):
                    single_tab = single.build(services.settings.models, [])
                with gr.Tab("w"):
                    sweep_tab = sweep.build(4)
                with gr.Tab("h"):
                    history_tab = history.build()
            parts = session.build(services.settings)
        reloaded = page_of(me)
        shown = session.reattach(services, parts, single_tab, sweep_tab, tabs, reloaded)
        assert shown[parts.attached]["kind"] == "single" and "Re-attached" in shown[single_tab.progress]
        data = {parts.attached: shown[parts.attached], parts.seen: {}, history_tab.filter: "",
                history_tab.review_filter: "all"}
        deadline = time.monotonic() + 120
        while True:
            step = session.tick(services, parts, single_tab, sweep_tab, history_tab, data, reloaded)
            if step.get(parts.attached, data[parts.attached]) is None:
                break
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert step[single_tab.video].endswith(".mp4") and "kingfisher" not in str(step[history_tab.table])
        assert len(step[history_tab.table]) == 1  # History listed again once it ended
    finally:
        worker.join(120)
        services.close()


def test_history_shows_a_sessions_own_unknown_outcome_submits_and_no_one_elses(make_simulator, tmp_path):
    # Every submit gets a 500: the request may have created (and billed) a task the journal never heard of.
    sim = make_simulator(faults={"server_500": 1.0}, fault_seed=1)
    services = open_app(settings_for(tmp_path, "session"), base_url=sim.base_url, api_key="sk-t")
    try:
        bob, alice = session_identity(None)[0], session_identity(None)[0]
        with pytest.raises(Exception):
            services.runs.run_one(params.with_seed({**FAST, "prompt": "bob's lost heron"}, 5), session=bob, on_event=None)
        [intent] = services.runs.store.unresolved_intents()
        assert intent.session == bob
        with gr.Blocks():
            history_tab = history.build()
        bob_view = history.list_runs(services, history_tab, None, page_of(bob))[history_tab.attention]
        assert "outcome unknown: may have been created and billed" in bob_view
        assert intent.request_id in bob_view and "never sends these again" in bob_view
        alice_view = history.list_runs(services, history_tab, None, page_of(alice))
        assert alice_view[history_tab.attention] == ""
        assert intent.request_id not in text_of(alice_view)
        assert alice_view[history_tab.dismiss]["visible"] is False
        # Alice cannot dismiss Bob's; Bob, having looked in his account, can, and it stays in the journal.
        listed = history.list_runs(services, history_tab, None, page_of(bob))
        assert listed[history_tab.dismiss]["visible"] is True
        assert listed[history_tab.attention_ids] == [intent.request_id]
        history.dismiss_unknown(services, history_tab, [intent.request_id], None, page_of(alice))
        assert intent.request_id in history.list_runs(services, history_tab, None, page_of(bob))[history_tab.attention]
        after = history.dismiss_unknown(services, history_tab, listed[history_tab.attention_ids], None, page_of(bob))
        assert after[history_tab.attention] == "" and after[history_tab.dismiss]["visible"] is False
        assert services.runs.store.intent(intent.request_id).state == "checked"
    finally:
        services.close()
