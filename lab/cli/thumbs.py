"""`python -m lab thumbs VIDEO`: a one-row contact sheet (PNG) of evenly spread thumbnails.

The last stdout line is a JSON summary; bad input exits 2 with a one-line error
on stderr and ``{"ok": false, "error": ...}`` on stdout.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lab.cli.usage import fail


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("thumbs", help="write a contact sheet of thumbnails of a video")
    parser.add_argument("video", help="an MP4 (or any video ffmpeg reads)")
    parser.add_argument("--count", type=int, default=5, help="thumbnails from 5%% to 95%% of the clip (default 5)")
    parser.add_argument("--width", type=int, default=320, help="thumbnail width in px (default 320)")
    parser.add_argument("--out", help="PNG to write (default: VIDEO with .sheet.png)")
    parser.add_argument("--title", help="row label (default: the file name)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lab.errors import MediaError
    from lab.frames import SheetRow, save_contact_sheet, thumbnails

    if args.count < 1 or args.count > 60:
        return fail("--count must be between 1 and 60")
    if args.width < 16 or args.width > 3840:
        return fail("--width must be between 16 and 3840")
    video = Path(args.video)
    out = Path(args.out) if args.out else video.with_name(video.name + ".sheet.png")
    try:
        thumbs = thumbnails(video, count=args.count, width=args.width)
        info = thumbs.info
        row = SheetRow(
            title=args.title or video.name,
            images=thumbs.images,
            times=thumbs.times,
            meta=(
                f"{info.width}x{info.height} {info.codec}",
                f"{info.duration:.1f} s, {info.fps:.4g} fps",
                "audio" if info.has_audio else "no audio",
            ),
        )
        save_contact_sheet([row], out)
    except MediaError as exc:
        return fail(str(exc))
    except OSError as exc:
        return fail(f"cannot write {out}: {exc.strerror or exc}")
    from PIL import Image

    with Image.open(out) as sheet:
        width, height = sheet.size
    print(json.dumps({
        "ok": True,
        "video": str(video),
        "sheet": str(out),
        "thumbnails": list(thumbs.times),
        "width": width,
        "height": height,
    }))
    return 0
