"""Leases: one owner per journalled task or submit at a time, kept alive by one thread.

An owner (a Runner) marks what it works on in the journal with its id and an
expiry (``Store.claim``, ``Store.record_intent``). While it holds anything, a
``LeaseKeeper`` thread renews all of its leases every third of the lease; when
the process dies the renewals stop and the leases expire, so another process
(``resume``) can take the work over. A live lease means "someone is on it",
unless its owner is a process of this host that no longer exists
(``owner_may_be_alive``): then it is taken over at once.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from contextlib import contextmanager
from typing import Iterator, Protocol

from lab.errors import LabError

log = logging.getLogger(__name__)

DEFAULT_LEASE_S = 30.0


class _Renews(Protocol):
    def renew_leases(self, owner: str, lease_s: float) -> None: ...


def new_owner_id() -> str:
    """Unique per owner, and says which process holds a lease (host and pid) for a person reading the journal."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_may_be_alive(owner: str) -> bool:
    """False only when ``owner`` names a process on this host that no longer exists (killed):
    its lease need not be waited out. Anything else (another host, a live pid) may be alive."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return True
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, under another user
        return True
    return True


def live_lease(lease_owner: str | None, lease_expires: float | None, now: float | None = None) -> bool:
    """Someone (this process, another one, a replica on another machine) holds it until its lease expires."""
    return bool(lease_owner) and (lease_expires or 0.0) > (time.time() if now is None else now)


class LeaseKeeper:
    """Renews every lease ``owner`` holds in ``store`` while at least one ``hold()`` is open."""

    def __init__(self, store: _Renews, owner: str, lease_s: float = DEFAULT_LEASE_S) -> None:
        if lease_s <= 0:
            raise ValueError("lease_s must be positive")
        self.store = store
        self.owner = owner
        self.lease_s = float(lease_s)
        self._held = 0
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Keep the leases renewed for the duration of the block."""
        with self._cond:
            self._held += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)
                self._thread.start()
        try:
            yield
        finally:
            with self._cond:
                self._held -= 1
                self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._held == 0:
                    self._thread = None
                    return
                self._cond.wait(self.lease_s / 3)
                if self._held == 0:
                    self._thread = None
                    return
            try:
                self.store.renew_leases(self.owner, self.lease_s)
            except LabError as exc:  # a busy journal: the next renewal may succeed before expiry
                log.warning("could not renew the leases of %s: %s", self.owner, exc)
