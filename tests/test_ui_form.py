"""The single-run form's logic through its own handlers, called directly (no browser): the effective panel's
precedence, errors marked under their field, presets, raw mode, the sweep estimate and loading a run back.

The browser tests keep what only a browser shows (layout, CSS, the player's script); these were browser
tests once and assert the same things on what the handlers return.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import gradio as gr
import pytest

from lab import params
from lab.presets import load_presets
from lab.ui import history, single, sweep
from lab.ui.events import PAGES, run_followers
from lab.waits import StopWaiting

PRESETS = load_presets()
WATERCOLOR = "Watercolor northern lights (portrait, 4 s)"


@pytest.fixture(scope="module")
def services(simulator, tmp_path_factory):
    """The app's services on the shared simulator (the sweep estimate asks them; two tests run a task)."""
    from lab.settings import load_settings
    from lab.wiring import open_app

    from helpers import NO_CAPS

    settings = load_settings({"LAB_DATA_DIR": str(tmp_path_factory.mktemp("form-data")), "LAB_SIM_TIME_SCALE": "0.02",
                              "LAB_MAX_SWEEP": "4", "LAB_PRESCREEN": "off", **NO_CAPS})
    started = open_app(settings, base_url=simulator.base_url)
    yield started
    started.close()


@pytest.fixture(scope="module")
def ui(services):
    """The Single run and Seed sweep tabs as the app builds them (events are not needed to call handlers)."""
    with gr.Blocks():
        with gr.Tabs() as tabs:
            with gr.Tab("Single run", id="single"):
                single_tab = single.build(services.settings.models, PRESETS)
            with gr.Tab("Seed sweep"):
                sweep_tab = sweep.build(4)
        key = gr.State(None)
    return SimpleNamespace(single=single_tab, sweep=sweep_tab, tabs=tabs, key=key, services=services)


class Page:
    """What one page holds: every input's value, changed by what the handlers return (as the browser would)."""

    def __init__(self, ui) -> None:
        self.ui, self.form = ui, ui.single.form
        self.data = {c: c.value for c in self.form.components}
        self.data.update({self.form.raw_origin: "", ui.single.randomize: False, ui.single.background: [],
                          ui.key: None, ui.sweep.seeds: "", ui.sweep.random_count: 0, ui.sweep.variants: ""})

    def __getitem__(self, name: str):
        return self.data[self.form.fields[name]]

    def set(self, **values) -> dict:
        """The user changes fields; returns the panel's refresh (as every change triggers)."""
        for name, value in values.items():
            self.data[self.form.fields[name]] = value
        return self.panel()

    def apply(self, out: dict) -> dict:
        for component, value in out.items():
            if isinstance(value, dict) and value.get("__type__") == "update":
                if "value" in value and component in self.data:
                    self.data[component] = value["value"]
            elif component in self.data:
                self.data[component] = value
        return out

    def panel(self) -> dict:
        return single.refresh_panel("http://127.0.0.1:7860", self.ui.single, self.data)

    def preset(self, name: str) -> dict:
        return self.apply(single.choose_preset(PRESETS, self.form, name))

    def raw(self, on: bool) -> dict:
        """The user ticks (or unticks) raw mode."""
        self.data[self.form.fields["raw_mode"]] = on
        return self.apply(single.toggle_raw(self.form, self.data))

    def estimate(self, **sweep_values) -> dict:
        for name, value in sweep_values.items():
            self.data[getattr(self.ui.sweep, name)] = value
        return sweep.estimate(self.ui.services, self.ui.sweep, self.ui.single, self.data)


def panel_row(panel: dict, ui, setting: str) -> str:
    """The effective panel's table row for ``setting`` (markup removed)."""
    for line in panel[ui.single.effective].splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if cells and cells[0] == setting:
            return re.sub(r"<[^>]+>|`", "", line)
    raise AssertionError(f"no {setting!r} row in {panel[ui.single.effective]!r}")


def interactive(update) -> bool:
    return update["interactive"]


def test_the_panel_says_which_field_set_each_value_and_what_it_overrode(ui):
    page = Page(ui)
    page.set(prompt="a lighthouse at dusk, waves on the rocks")
    out = page.set(size="720x1280")
    assert "9:16" in panel_row(out, ui, "aspect ratio") and "| size |" in panel_row(out, ui, "aspect ratio")
    out = page.set(aspect_ratio="16:9")
    row = panel_row(out, ui, "aspect ratio")
    assert "16:9" in row and "metadata.aspectRatio" in row
    assert "size=720x1280" in row  # what it overrode
    assert "is overridden by metadata.aspectRatio=16:9" in out[ui.single.effective]


def test_an_invalid_combination_is_marked_once_under_its_field_and_blocks_generate(ui):
    page = Page(ui)
    page.set(prompt="a lighthouse at dusk", resolution="1080p")
    out = page.set(duration="4")
    message = 'needs a duration of "8"'
    duration = out[ui.single.form.fields["duration"]]
    assert message in duration["info"] and duration["elem_classes"] == ["lab-invalid"]
    assert sum(str(value).count(message) for value in out.values()) == 1  # once, not repeated elsewhere
    assert "marked in red" in out[ui.single.gate]
    assert not interactive(out[ui.single.generate])
    out = page.set(resolution="(not set)")
    assert interactive(out[ui.single.generate])
    assert not any(isinstance(u, dict) and "lab-invalid" in (u.get("elem_classes") or []) for u in out.values())


def test_a_preset_fills_the_form(ui):
    page = Page(ui)
    page.preset(WATERCOLOR)
    assert page["prompt"].startswith("Watercolor northern lights")
    out = page.panel()
    assert "4" in panel_row(out, ui, "duration")
    assert "9:16" in panel_row(out, ui, "aspect ratio")


def test_raw_mode_hides_the_form_and_starts_from_it(ui):
    page = Page(ui)
    page.preset(WATERCOLOR)
    out = page.raw(True)
    assert out[ui.single.form.group]["visible"] is False  # the prompt and the fields are in this group
    assert out[ui.single.form.fields["raw_body"]]["visible"] is True
    assert "Watercolor northern lights" in page["raw_body"]
    out = page.set(raw_body='{"model": "veo-3.1-fast-generate-preview", "prompt": "p", "duration": 8}')
    assert "must be a string" in out[ui.single.form_errors]
    assert not interactive(out[ui.single.generate])


def test_raw_mode_starts_from_the_form_as_edited_not_the_loaded_preset(ui):
    page = Page(ui)
    page.preset("Lighthouse at dusk")
    assert "lighthouse" in page["prompt"].lower()
    page.set(prompt="a red fox crossing a snowy field", duration="4")
    page.raw(True)
    # What raw mode would send is the form as the user left it, not the preset as it was loaded.
    assert "red fox" in page["raw_body"] and "lighthouse" not in page["raw_body"].lower()
    assert '"duration": "4"' in page["raw_body"]
    # Text the user typed into the editor is theirs: switching raw mode off and on again keeps it.
    own = '{"model": "veo-3.1-fast-generate-preview", "prompt": "my own raw text", "duration": "6"}'
    assert "Ready" in page.set(raw_body=own)[ui.single.gate]
    assert page.raw(False)[ui.single.form.group]["visible"] is True
    assert page.raw(True)[ui.single.form.group]["visible"] is False
    assert page["raw_body"] == own


def test_raw_mode_says_the_body_goes_out_exactly_as_written(ui):
    page = Page(ui)
    assert "canonical body" in page.set(prompt="two herons")[ui.single.wire_note]
    page.raw(True)
    out = page.set(raw_body='{"model": "veo-3.1-fast-generate-preview", "prompt": "two herons", "duration": "8", '
                            '"seconds": "4", "size": "720x1280", "metadata": {"aspectRatio": "16:9", "seed": 5}}')
    assert "exactly as written" in out[ui.single.wire_note]
    assert "Ready" in out[ui.single.gate]


def test_the_sweep_estimate_prices_the_raw_body_model(ui):
    # In raw mode the estimate must use the raw body's model, not the hidden dropdown's.
    page = Page(ui)
    page.raw(True)
    out = page.set(raw_body='{"model": "veo-3.1-generate-preview", "prompt": "p", "duration": "8"}')
    assert "$1.20" in out[ui.single.gate]
    assert "$3.60" in page.estimate(seeds="1, 2, 3")[ui.sweep.estimate]


def test_one_edit_answers_the_panel_and_the_sweep_estimate_together(ui):
    # The page sends one event per keystroke (lab.ui.events.follow_edits); its answer holds what each tab
    # shows for the same values: the panel's gate and the sweep's price agree on the same request.
    page = Page(ui)
    page.data[ui.sweep.seeds] = "1, 2, 3"
    page.data[ui.single.form.fields["prompt"]] = "a kite over the dunes"
    out = run_followers((single.edit_follower(ui.single, ui.services),
                         sweep.edit_follower(ui.sweep, ui.single, ui.services)), page.data)
    assert "Ready" in out[ui.single.gate] and "$0.30" in out[ui.single.gate]
    assert "3 tasks" in out[ui.sweep.estimate] and "$0.90" in out[ui.sweep.estimate]
    assert interactive(out[ui.sweep.run])


def test_a_sweep_without_a_prompt_says_why_once_and_cannot_start(ui):
    # It used to price "2 tasks, up to $0.60" and, on a click, pop "prompt is required" once per seed.
    page = Page(ui)
    out = page.estimate(seeds="5, 6")
    assert "Add a prompt on **Single run** first (or prompt variants here)" in out[ui.sweep.estimate]
    assert "$" not in out[ui.sweep.estimate] and not interactive(out[ui.sweep.run])
    # Variants bring their own prompts: with them the empty form prompt is fine.
    out = page.estimate(variants="a heron at dawn\na heron at dusk")
    assert "4 tasks" in out[ui.sweep.estimate] and interactive(out[ui.sweep.run])
    out = page.estimate(variants="")
    assert "Add a prompt" in out[ui.sweep.estimate] and not interactive(out[ui.sweep.run])


# ---------------------------------------------------------------- a task run through the handlers


def request_of(visitor: str) -> SimpleNamespace:
    page = f"page-{visitor}"
    PAGES.bind(page, visitor)
    return SimpleNamespace(session_hash=page)


def test_raw_mode_sends_the_body_as_written_and_sets_the_prediction_beside_the_result(ui, services):
    page = Page(ui)
    page.raw(True)
    page.set(raw_body='{"model": "veo-3.1-fast-generate-preview", "prompt": "two herons", "duration": "8", '
                      '"seconds": "4", "size": "720x1280", "metadata": {"aspectRatio": "16:9", "seed": 5}}')
    updates = list(single.run_generate(services, StopWaiting(), ui.single, ui.key, page.data, request_of("raw")))
    done = updates[-1]
    assert "done" in done[ui.single.progress] and str(done[ui.single.video]).endswith(".mp4")
    sent = done[ui.single.sent]
    assert '"seconds": "4"' in sent  # not folded into duration
    assert '"size": "720x1280"' in sent  # not rewritten to the effective size
    check = done[ui.single.check]
    assert "Prediction vs result" in check
    assert "same" in next(line for line in check.splitlines() if "pixel size" in line)


def test_loading_a_run_into_the_form_brings_back_its_body_and_the_single_run_tab(ui, services):
    visitor = request_of("loader")
    body = {"model": params.FAST_MODEL, "prompt": "a lighthouse in the history, foam on the rocks", "duration": "4"}
    outcome = services.runs.run_one(params.with_seed(body, 3), session=PAGES.of(visitor.session_hash), on_event=None)
    assert outcome.ok, outcome.message
    page = Page(ui)
    page.set(prompt="something else")  # about to be refilled from the journal
    out = page.apply(history.to_form(services, ui.single, ui.tabs, outcome.task_id, visitor))
    assert page["prompt"] == body["prompt"] and page["duration"] == "4" and page["seed"] == "3"
    assert out[ui.tabs].selected == "single"
