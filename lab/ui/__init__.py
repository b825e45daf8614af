"""The Gradio prompt lab: the only package that imports gradio.

``app`` is the shell (banner, visitor key, tabs, launch options); ``single``,
``sweep``, ``history`` and ``compare`` are one tab each; ``session`` is the
visitor's session across reloads; ``api`` holds the public endpoints; ``events``
what their handlers share. Handlers are thin: component values go through
``lab.presentation`` and ``lab.params`` into the one ``lab.wiring.AppServices``
the app builds at start (runs, journal, compare, access).
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from lab.ui.app import LabBlocks, build_demo, launch_options, mount  # noqa: E402

__all__ = ["LabBlocks", "build_demo", "launch_options", "mount"]
