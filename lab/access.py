"""Whose key a run uses and what the visitor is told about it: the visitor-key policy and the spend banner.

Gradio-free. Built once at start by ``lab.wiring.open_app``; it knows whether the
server has a key, never the key itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from lab import presentation as pres
from lab.budget import Budget
from lab.people import describe_person


def visitor_key_problem(key: str, allowed: bool) -> str | None:
    """Why a pasted key cannot be used, or None. Says nothing about the key's value."""
    if not allowed:
        return "This lab does not accept visitors' own keys."
    if not key or any(ch.isspace() for ch in key) or len(key) < 8 or len(key) > 512:
        return "That does not look like an API key (no spaces; APIYI keys start with sk-)."
    return None


@dataclass(frozen=True)
class Access:
    """The backend as a visitor sees it: which one, whether the server holds a key, their own key, their spend."""

    budget: Budget
    backend: str
    has_server_key: bool
    allow_visitor_key: bool
    # Snippets are for copying: they name the live service even when the lab runs on the simulator.
    snippet_base_url: str

    def key_problem(self, key: str) -> str | None:
        return visitor_key_problem(key, self.allow_visitor_key)

    def banner(self, session: str, *, visitor_key: bool = False, person: str | None = None) -> str:
        """The line above the tabs: backend, whose key, what this session, this person (``lab.people``) and the
        day spent against the caps."""
        return pres.banner_text(self.budget.view(session, person), backend=self.backend,
                                has_server_key=self.has_server_key, visitor_key=visitor_key,
                                session_cap=self.budget.session_cap_usd, day_cap=self.budget.day_cap_usd,
                                person_cap=self.budget.person_cap_usd,
                                person=describe_person(person) if person else None)
