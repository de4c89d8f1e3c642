"""Wrong admin tokens are slowed, then locked out, per client; every one is logged, never the token.

A client is its browser session and, where Streamlit tells it (`st.context.ip_address`), its address: a
wrong token counts against both, and either one being held back holds the attempt back, so a new tab (a new
session from the same address) does not start afresh, and one address never locks out another. The counts
live in this server process (several app servers each keep their own). The numbers are declared once,
below; docs/deploy.md says what they mean for a user.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import NamedTuple

log = logging.getLogger(__name__)

# After the n-th wrong token in a row the next try waits DELAYS[n-1] seconds (the last one beyond)...
DELAYS = (1, 2, 4, 8)
# ...and the LOCK_AFTER-th locks the client out for LOCKOUT seconds; a right token, the end of a lock-out or
# FORGET_AFTER seconds without a wrong token start the count afresh.
LOCK_AFTER = 5
LOCKOUT = 15 * 60
FORGET_AFTER = 60 * 60


# Behind a reverse proxy every connection comes from the proxy: one address for every client, so one guesser
# would lock everyone out. Set this to 1 there (the proxy must set X-Forwarded-For, docs/deploy.md): the client's
# address is then the header's last entry, the one the proxy itself added.
TRUST_FORWARDED_FOR = "DIGITS_TRUST_FORWARDED_FOR"


def client_address(peer: str | None, headers, trust_forwarded: bool) -> str | None:
    """The address a wrong token counts against: the connection's, or behind a trusted proxy the one it saw."""
    if trust_forwarded:
        forwarded = [part.strip() for part in (headers.get("X-Forwarded-For") or "").split(",") if part.strip()]
        return forwarded[-1] if forwarded else None
    return peer


def _now() -> float:
    return time.time()


class Attempt(NamedTuple):
    """What became of one try: unlocked, or why not (said to the user as it is)."""

    unlocked: bool
    message: str | None = None


class _Record:
    def __init__(self):
        self.wrong = 0
        self.last_wrong = 0.0
        self.not_before = 0.0  # the next try is taken from then
        self.locked_until = 0.0


class TokenGuard:
    """Counts wrong admin tokens per client key (thread-safe: one per server process, shared by sessions)."""

    def __init__(self):
        self._records: dict[str, _Record] = {}
        self._lock = threading.Lock()

    def attempt(self, session: str, address: str | None, is_right) -> Attempt:
        """Try a token: `is_right()` compares it (constant-time), and is not even called while the client is
        held back. The log names the session and the address, never the token."""
        keys = [f"session {session}"] + ([f"address {address}"] if address else [])
        now = _now()
        with self._lock:
            records = [self._fresh(key, now) for key in keys]
            locked_until = max(record.locked_until for record in records)
            if locked_until > now:
                return Attempt(False, f"Locked out after {LOCK_AFTER} wrong admin tokens: try again after "
                                      f"{time.strftime('%H:%M:%S UTC', time.gmtime(locked_until))} "
                                      f"(in {_duration(locked_until - now)}).")
            not_before = max(record.not_before for record in records)
            if not_before > now:
                return Attempt(False, f"Too soon after a wrong admin token: wait {_duration(not_before - now)} "
                                      "and enter it again.")
            if is_right():
                for key in keys:
                    self._records.pop(key, None)
                return Attempt(True)
            wrong = max(record.wrong for record in records) + 1
            for record in records:
                record.wrong, record.last_wrong = wrong, now
                record.not_before = now + DELAYS[min(wrong, len(DELAYS)) - 1]
                if wrong >= LOCK_AFTER:
                    record.locked_until = now + LOCKOUT
        client = f"session {session}, address {address or 'unknown'}"
        if wrong >= LOCK_AFTER:
            log.warning("Admin tools locked for %s after %d wrong tokens, for %d minutes", client, wrong,
                        LOCKOUT // 60)
            return Attempt(False, f"That admin token is not right. After {LOCK_AFTER} wrong tokens the admin tools "
                                  f"are locked for {LOCKOUT // 60} minutes.")
        log.warning("Wrong admin token from %s (%d in a row)", client, wrong)
        return Attempt(False, f"That admin token is not right ({wrong} of {LOCK_AFTER} before a "
                              f"{LOCKOUT // 60}-minute lock-out). The next try is taken in "
                              f"{_duration(DELAYS[min(wrong, len(DELAYS)) - 1])}.")

    def _fresh(self, key: str, now: float) -> _Record:
        """The key's record, started afresh when its lock-out ended or its last wrong token is long past."""
        record = self._records.get(key)
        if record is None or (record.locked_until and record.locked_until <= now) or (
                not record.locked_until and now - record.last_wrong > FORGET_AFTER):
            record = self._records[key] = _Record()
        return record


def _duration(seconds: float) -> str:
    seconds = max(1, round(seconds))
    return f"{seconds} s" if seconds < 90 else f"{round(seconds / 60)} min"
