"""What the lab shows, without gradio: form <-> body, the effective panel, sweeps, progress."""

from __future__ import annotations

import pytest

from lab import params
from lab import presentation as pres
from lab.errors import RequestInvalid


def form(**values):
    defaults = {name: pres.NOT_SET for name in pres.FORM_FIELDS}
    defaults.update(model=params.FAST_MODEL, prompt="a fox", negative_prompt="", seed="", raw_mode=False, raw_body="")
    defaults.update(values)
    return [defaults[name] for name in pres.FORM_FIELDS]


def test_not_set_fields_are_left_out_of_the_body():
    assert pres.body_from_form(*form()) == {"model": params.FAST_MODEL, "prompt": "a fox"}


def test_form_fields_land_where_the_docs_put_them():
    body = pres.body_from_form(*form(duration="8", size="720x1280", aspect_ratio="16:9", seed="42",
                                     duration_seconds="6", seconds="4", negative_prompt="blur"))
    assert body == {"model": params.FAST_MODEL, "prompt": "a fox", "duration": "8", "seconds": "4", "size": "720x1280",
                    "metadata": {"aspectRatio": "16:9", "seed": 42, "negativePrompt": "blur", "durationSeconds": 6}}


def test_raw_mode_replaces_the_form():
    body = pres.body_from_form(*form(raw_mode=True, raw_body='{"model": "x", "duration": 8}'))
    assert body == {"model": "x", "duration": 8}


def test_raw_mode_with_broken_json_says_where():
    with pytest.raises(RequestInvalid, match="line 1, column"):
        pres.body_from_form(*form(raw_mode=True, raw_body="{oops"))


@pytest.mark.parametrize("body", [
    {"model": params.FAST_MODEL, "prompt": "p", "duration": "8", "size": "1280x720",
     "metadata": {"resolution": "720p", "aspectRatio": "16:9", "seed": 3, "negativePrompt": "n", "durationSeconds": 6}},
    {"model": params.STANDARD_MODEL, "prompt": "p", "seconds": "4"},
])
def test_a_body_the_form_can_show_round_trips(body):
    values = pres.form_from_body(body)
    assert values["raw_mode"] is False
    assert pres.body_from_form(*[values[name] for name in pres.FORM_FIELDS]) == body


@pytest.mark.parametrize("body", [
    {"model": params.FAST_MODEL, "prompt": "p", "duration": 8},  # the number pitfall must survive
    {"model": params.FAST_MODEL, "prompt": "p", "metadata": {"generateAudio": True}},
    {"model": params.FAST_MODEL, "prompt": "p", "size": "640x480"},
])
def test_a_body_the_form_cannot_show_switches_to_raw_mode(body):
    values = pres.form_from_body(body)
    assert values["raw_mode"] is True
    assert pres.body_from_form(*[values[name] for name in pres.FORM_FIELDS]) == body


def test_panel_names_the_winner_and_what_it_overrode():
    resolution = params.resolve({"model": params.FAST_MODEL, "prompt": "p", "size": "720x1280",
                                 "metadata": {"aspectRatio": "16:9"}})
    text = pres.effective_markdown(resolution)
    row = next(line for line in text.splitlines() if line.startswith("| aspect ratio")).replace("<wbr>", "")
    assert "`16:9`" in row and "metadata.aspectRatio" in row and "size</code>=`720x1280`" in row
    assert "$0.30" in text


def test_panel_shows_no_override_when_size_agrees_with_resolution_and_aspect():
    # A preset's size 1280x720 with 720p and 16:9 (issue 13 #2): nothing was overridden.
    resolution = params.resolve({"model": params.FAST_MODEL, "prompt": "p", "size": "1280x720",
                                 "metadata": {"resolution": "720p", "aspectRatio": "16:9"}})
    text = pres.effective_markdown(resolution)
    assert "size=" not in text


def test_gate_gives_the_first_error_as_the_reason():
    resolution = params.resolve({"model": params.FAST_MODEL, "prompt": "p", "duration": "4",
                                 "metadata": {"resolution": "4k"}})
    gate = pres.generate_gate(resolution)
    assert not gate.ok and 'needs a duration of "8"' in gate.reason


def test_sweep_estimate_is_shown_before_running():
    assert "$0.90" in pres.sweep_estimate_text(params.FAST_MODEL, 3, 8, 4)
    assert "more than this lab allows" in pres.sweep_estimate_text(params.FAST_MODEL, 9, 8, 4)


def test_progress_shows_stage_elapsed_and_learned_eta():
    text = pres.stage_markdown("rendering", 12, 40, "task_x")
    assert "**rendering…**" in text and "elapsed 12s" in text and "about 28s left" in text
    assert "no estimate yet" in pres.stage_markdown("queued", 1, None)


def test_a_runs_review_shows_in_its_history_row():
    from lab.store import Review, TaskRecord

    rated = TaskRecord(task_id="task_a", created_at=0.0, updated_at=0.0, status="saved", prompt="a fox", seed=1)
    plain = TaskRecord(task_id="task_b", created_at=0.0, updated_at=0.0, status="saved", prompt="a fox", seed=2)
    view = pres.history_view([rated, plain], {"task_a": Review("task_a", rating=1, note="best  fur", picked=True)},
                             prescreen=True)
    review = pres.HISTORY_HEADERS.index("review")
    assert view.rows[0][review] == "👍 ★ picked · best fur" and view.rows[1][review] == ""
    assert len(view.rows[0]) == len(pres.HISTORY_HEADERS)


def test_a_submit_whose_outcome_is_unknown_is_never_called_unsent() -> None:
    from lab.presentation import result_message
    from lab.runner import RunResult

    message = result_message(RunResult(ok=False, task_id=None, status="outcome_unknown", record=None,
                                       error="submit: server error (HTTP 500)", request_id="req_1"))
    assert "may have been created and billed" in message and "Not submitted" not in message


def test_simulator_spend_is_labelled_simulated_with_held_money_apart():
    from lab.budget import BudgetView

    view = BudgetView(session_spent_usd=0.30, session_reserved_usd=1.20, session_remaining_usd=8.50,
                      day_spent_usd=3.60, day_reserved_usd=1.20, day_remaining_usd=25.20)
    text = pres.banner_text(view, backend="simulator", has_server_key=False, session_cap=10.0, day_cap=30.0)
    assert "Simulated spend" in text and "nothing is billed" in text.split("Simulated spend")[1]
    assert "$1.20 held for tasks still running" in text  # what makes "left" smaller than cap - spent
    assert "$8.50 left of the $10.00 cap" in text and "$25.20 left of the $30.00 cap" in text
    live = pres.banner_text(view, backend="live", has_server_key=True, session_cap=10.0, day_cap=30.0)
    assert "Simulated" not in live and "nothing is billed" not in live


def test_an_error_is_placed_once_on_the_field_it_came_from():
    resolution = params.resolve({"model": params.FAST_MODEL, "prompt": "p", "seconds": "4",
                                 "metadata": {"resolution": "1080p"}})
    marked, general = pres.field_errors(resolution)
    assert list(marked) == ["seconds"] and 'needs a duration of "8"' in marked["seconds"] and general == []
    assert "Cannot send" not in pres.effective_markdown(resolution, errors=False)


def test_a_missing_prompt_is_not_marked_as_a_mistake():
    marked, general = pres.field_errors(params.resolve({"model": params.FAST_MODEL, "prompt": ""}))
    assert marked == {} and general == []


def test_prediction_is_set_beside_what_the_service_gave():
    predicted = {"model": params.FAST_MODEL, "size": "1280x720", "duration": "8"}
    text = pres.prediction_check(predicted, {"model": params.FAST_MODEL},
                                 {"size": "720x1280", "duration_s": 8.0})
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| ")}
    assert "same" in rows["model"] and "differs" in rows["pixel size"] and "same" in rows["duration"]


def test_a_thumbnails_time_comes_from_its_caption():
    assert pres.thumb_time("4.0 s", "/x/task_1_3.jpg") == 4.0
    assert pres.thumb_time(None, "/x/task_3_2.21s.jpg") == 2.21
    assert pres.thumb_time("", "/x/thumb.jpg") is None


def test_a_duration_an_image_request_ignores_is_said_under_its_field():
    from lab.image_input import ImageFacts

    facts = ImageFacts(source="upload", mime="image/png", width=1280, height=720, size_bytes=10, sha256="a" * 64)
    body = {"model": params.FAST_MODEL, "prompt": "a kite", "duration": "8", "input_reference": "(uploaded)",
            "metadata": {"durationSeconds": 6}}
    warned = pres.field_warnings(params.resolve(body, image=facts))
    assert set(warned) == {"duration", "duration_seconds"}
    assert all("this video will be 4 s" in text for text in warned.values())
    body["seconds"] = "8"
    assert "this video will be 8 s" in pres.field_warnings(params.resolve(body, image=facts))["duration"]
    assert pres.field_warnings(params.resolve({"model": params.FAST_MODEL, "prompt": "a kite", "duration": "8"})) == {}
