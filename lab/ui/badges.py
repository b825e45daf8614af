"""The pre-screen's badges in the page: their look, and a click that seeks the take's video there.

The badges themselves are HTML from ``lab.presentation.badges_html`` (a ``gr.HTML`` beside each video);
one listener on the document, installed on load, handles every badge of every tab: a badge with
``data-seek`` pauses the video its ``data-video`` selector names and puts it at that second.
"""

from __future__ import annotations

import gradio as gr

from lab.prescreen.findings import MEANINGS
from lab.ui.events import PRIVATE

CSS = """
.lab-badges {display: flex; flex-wrap: wrap; gap: 4px; margin: 2px 0}
.lab-badge {font: 600 12px/1.5 system-ui, sans-serif; border-radius: 10px; padding: 0 8px; border: 1px solid transparent;
  background: #fde2e1; color: #8a1c14; white-space: nowrap}
button.lab-badge {cursor: pointer}
button.lab-badge:hover {text-decoration: underline}
.lab-badge-cut, .lab-badge-flicker {background: #fff0c2; color: #6d4a00}
.lab-badge-silent, .lab-badge-no_audio {background: #e6e9ff; color: #2b3a99}
.lab-badge-error, .lab-badge-pending, .lab-badge-off {background: #ececf0; color: #44444f; font-weight: 500}
.lab-badge-clean {background: #e3f4e4; color: #1f5f23; font-weight: 500}
"""

CLICK_JS = """
() => {
  if (window.labBadgesInstalled) return [];
  window.labBadgesInstalled = true;
  document.addEventListener('click', (event) => {
    const badge = event.target.closest && event.target.closest('.lab-badge[data-seek]');
    if (!badge) return;
    const video = document.querySelector(badge.dataset.video);
    if (!video) return;
    video.pause();
    video.currentTime = parseFloat(badge.dataset.seek);
  });
  return [];
}
"""

NAMES = {"frozen": "frozen 2.1–3.4 s", "black": "black 0.0–0.5 s", "silent": "silent", "no_audio": "no audio",
         "cut": "2 cuts", "flicker": "flicker high at 5 s", "error": "not screened"}


def legend_markdown() -> str:
    """What each badge means, for the page (the report's player has the same list)."""
    lines = ["**Pre-screen badges** (every saved take is checked in the background with ffmpeg's own filters; "
             "click a badge to go to that moment):"]
    lines += [f"- `{NAMES[kind]}`: {MEANINGS[kind]}" for kind in NAMES]
    return "\n".join(lines)


def install(demo: gr.Blocks) -> None:
    demo.load(None, None, None, js=CLICK_JS, **PRIVATE)
