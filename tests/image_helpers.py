"""Helpers for the image-to-video tests (imported as ``image_helpers``): test pictures and a first-frame SSIM."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from PIL import Image, ImageDraw

from lab import frames


def picture(path: Path, size=(1000, 800), ground=(30, 60, 120), fmt="PNG") -> Path:
    """Shapes on a flat ground: a picture SSIM can tell apart from its zoomed-in self."""
    image = Image.new("RGB", size, ground)
    draw = ImageDraw.Draw(image)
    for i in range(8):
        draw.ellipse((i * 110, 100 + i * 50, i * 110 + 200, 300 + i * 50), fill=(40 + i * 25, 200 - i * 20, 90))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format=fmt)
    return path


def ssim_of_frame(video: Path, reference: Path, frame: int) -> float:
    """ffmpeg's ssim filter between frame ``frame`` of ``video`` and a still of the same size."""
    result = subprocess.run(
        [frames._ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(video), "-i", str(reference), "-lavfi",
         f"[0:v]trim=start_frame={frame}:end_frame={frame + 1},format=yuv420p[a];[1:v]format=yuv420p[b];[a][b]ssim",
         "-f", "null", "-"],
        capture_output=True, text=True,
    )
    found = re.findall(r"All:([0-9.]+)", result.stderr)
    assert found, result.stderr[-500:]
    return float(found[-1])
