"""What every tab's events share: binding module-level handlers to services, event options, sessions, errors."""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

import gradio as gr

from lab.errors import LabError
from lab.people import Caller
from lab.sessions import Identities

if TYPE_CHECKING:
    from lab.wiring import AppServices

# Every UI event is private: the public endpoints are the data-in, data-out ones in lab/ui/api.py.
PRIVATE: dict[str, Any] = {"api_visibility": "private"}
# An event that shows no progress registers none either (show_progress_on=[]; None means every output).
# Gradio 6's page re-reads, for every status message of every event, each component that was ever a
# registered progress target (its whole subtree for a layout block such as the tab strip): with all outputs
# registered, one keystroke in the prompt cost the browser about 0.7 s of CPU.
QUIET: dict[str, Any] = {"api_visibility": "private", "show_progress": "hidden", "show_progress_on": []}
# Instant, pure handlers skip the queue: typing must never wait behind a generation.
INSTANT: dict[str, Any] = {**QUIET, "queue": False}


def progress_on(outputs: Any) -> dict[str, Any]:
    """Show progress on ``outputs`` but their layout blocks (tab strip, rows, groups): a layout block's
    progress is its whole subtree re-read on every status message of every later event (see QUIET)."""
    return {"show_progress_on": [c for c in outputs if not isinstance(c, gr.blocks.BlockContext)]}


def generation(max_concurrent_total: int) -> dict[str, Any]:
    """Options of the events that generate: one concurrency group for the whole lab."""
    return {"concurrency_id": "video_generation", "concurrency_limit": max_concurrent_total}


def bind(fn: Callable[..., Any], *bound: Any) -> Callable[..., Any]:
    """``fn`` with its first parameters fixed, keeping what Gradio reads from a handler.

    Gradio finds ``gr.Request``/``gr.SelectData`` parameters by signature and type hints, and
    streams only from generator functions; ``functools.partial`` hides the hints, so this
    returns a real (generator) function with the remaining signature and annotations.
    """
    signature = inspect.signature(fn)
    rest = list(signature.parameters.values())[len(bound):]
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def call(*args: Any, **kwargs: Any) -> Any:
            return (yield from fn(*bound, *args, **kwargs))
    else:
        @functools.wraps(fn)
        def call(*args: Any, **kwargs: Any) -> Any:
            return fn(*bound, *args, **kwargs)
    names = {p.name for p in rest} | {"return"}
    call.__signature__ = signature.replace(parameters=rest)  # type: ignore[attr-defined]
    call.__annotations__ = {k: v for k, v in getattr(fn, "__annotations__", {}).items() if k in names}
    return call


@dataclass(frozen=True)
class EditFollower:
    """A pure handler that follows the visitor's edits: after any of ``triggers`` changes, ``fn(data)`` reads
    ``inputs`` and returns ``{component: update}`` for ``outputs``."""

    fn: Callable[[dict], dict]
    triggers: frozenset
    inputs: frozenset
    outputs: frozenset


def follow_edits(followers: Sequence[EditFollower]) -> None:
    """One event for every edit, whoever follows it.

    One event: each is a round trip and, in the page, a pass over every progress target (the request panel,
    the sweep estimate and the draft had one each, three per keystroke). And one listener for all fields:
    with ``always_last`` an edit made while the last one is answered waits and runs after it, so an answer
    computed from older values never lands last (two listeners answer in any order).
    """
    triggers = sorted(set().union(*(f.triggers for f in followers)), key=lambda block: block._id)
    gr.on([component.change for component in triggers], bind(run_followers, tuple(followers)),
          set().union(*(f.inputs for f in followers)), set().union(*(f.outputs for f in followers)),
          trigger_mode="always_last", **INSTANT)


def run_followers(followers: tuple[EditFollower, ...], data: dict) -> dict:
    """What the followers of an edit change (their outputs do not overlap)."""
    out: dict = {}
    for follower in followers:
        out.update(follower.fn(data))
    return out


# Which visitor each page belongs to: set when the page loads (lab.ui.session.identify) from the
# browser's kept id or the signed-in Hugging Face user. A page never identified (an API client)
# is a session of its own.
PAGES = Identities()


def session_of(request: gr.Request | None) -> str:
    """The session a request comes from: its page's visitor ("anonymous" outside a page)."""
    page = getattr(request, "session_hash", None) if request is not None else None
    return PAGES.of(page) if page else "anonymous"


def caller_of(services: AppServices, request: gr.Request | None, oauth_token: gr.OAuthToken | None = None) -> Caller:
    """Who an event comes from: the session whose runs it sees and the person whose caps it spends.

    A loaded page is its visitor's session (``identify``); an API client is the account of the Hugging
    Face token it passed (``oauth_token=`` on a public endpoint, or ``token=``'s X-HF-Authorization),
    the same across Client() instances, else a session of its own. The person is that account, or the
    client's address (``lab.people``: X-Forwarded-For only behind a trusted proxy).
    """
    page = getattr(request, "session_hash", None) if request is not None else None
    client = getattr(request, "client", None) if request is not None else None
    # Starlette's Headers as they are: .items() keeps a header sent twice (X-Forwarded-For lines).
    headers = getattr(request, "headers", None) if request is not None else None
    return services.people.caller(session=PAGES.bound(page) if page else None, page=page,
                                  peer=getattr(client, "host", None), headers=headers or {},
                                  token=getattr(oauth_token, "token", None))


def raise_for_ui(err: LabError) -> None:
    # Refusals (here and at every gr.Error in lab/ui) are answers to the user, not bugs: Gradio would log a
    # traceback for each, burying the real ones (10 in one bench_replicas run).
    raise gr.Error(str(err), print_exception=False) from err
