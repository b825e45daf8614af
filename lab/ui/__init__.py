"""The Gradio prompt lab: the only package that imports gradio.

``app`` is the shell (banner, visitor key, tabs, launch options); ``single``,
``sweep`` and ``history`` are one tab each; ``api`` holds the public endpoints;
``events`` what their handlers share. Handlers are thin: component values go
through ``lab.presentation`` and ``lab.params`` into ``lab.orchestrator``.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from lab.ui.app import LabBlocks, build_demo, launch_options, mount  # noqa: E402

__all__ = ["LabBlocks", "build_demo", "launch_options", "mount"]
