"""Guessing the admin token (issue 34): wrong tokens are slowed, then locked out, per session and address;
every one is logged, never the token."""

import logging

import pytest

from services import admin_guard
from services.admin_guard import DELAYS, LOCK_AFTER, LOCKOUT, TokenGuard

TOKEN = "s3cret-token"


@pytest.fixture
def clock(monkeypatch):
    now = [1_800_000_000.0]
    monkeypatch.setattr(admin_guard, "_now", lambda: now[0])
    return now


def _try(guard, entered, session="tab-1", address="203.0.113.7"):
    return guard.attempt(session, address, lambda: entered == TOKEN)


def _lock_out(guard, clock, **client):
    """LOCK_AFTER wrong tokens, each after the wait the one before it asked for."""
    for wrong in range(1, LOCK_AFTER + 1):
        if wrong > 1:
            clock[0] += DELAYS[min(wrong - 1, len(DELAYS)) - 1]
        attempt = _try(guard, f"guess-{wrong}", **client)
        assert not attempt.unlocked
    return attempt


def test_wrong_tokens_are_slowed_then_locked_out(clock):
    guard = TokenGuard()
    first = _try(guard, "guess")
    assert not first.unlocked and "not right" in first.message and f"1 of {LOCK_AFTER}" in first.message
    too_soon = _try(guard, TOKEN)  # even the right token waits: the try is not taken at all
    assert not too_soon.unlocked and "Too soon" in too_soon.message
    clock[0] += DELAYS[0]
    second = _try(guard, "guess-2")
    assert "2 of" in second.message and f"in {DELAYS[1]} s" in second.message  # a growing wait
    clock[0] += DELAYS[1] - 0.5
    assert "Too soon" in _try(guard, TOKEN).message

    guard, clock[0] = TokenGuard(), clock[0] + 3600
    last = _lock_out(guard, clock)
    assert f"locked for {LOCKOUT // 60} minutes" in last.message
    locked = _try(guard, TOKEN)  # the right token, during the lock-out
    assert not locked.unlocked and "Locked out" in locked.message and "try again after" in locked.message


def test_a_new_session_from_the_same_address_is_still_locked(clock):
    guard = TokenGuard()
    _lock_out(guard, clock, session="tab-1")
    new_tab = _try(guard, TOKEN, session="tab-2")
    assert not new_tab.unlocked and "Locked out" in new_tab.message


def test_a_session_whose_address_is_unknown_is_still_held_by_its_session(clock):
    guard = TokenGuard()
    _lock_out(guard, clock, address=None)
    assert "Locked out" in _try(guard, TOKEN, address=None).message


def test_another_address_is_not_locked(clock):
    guard = TokenGuard()
    _lock_out(guard, clock, session="attacker", address="198.51.100.9")
    assert _try(guard, TOKEN, session="admin", address="203.0.113.7").unlocked


def test_the_right_token_works_once_the_lock_ends(clock):
    guard = TokenGuard()
    _lock_out(guard, clock)
    clock[0] += LOCKOUT - 1
    assert not _try(guard, TOKEN).unlocked
    clock[0] += 1
    assert _try(guard, TOKEN).unlocked
    assert "1 of" in _try(guard, "guess").message  # and the count starts afresh


def test_every_wrong_token_and_lock_out_is_logged_without_the_token(clock, caplog):
    guard = TokenGuard()
    with caplog.at_level(logging.WARNING, logger="services.admin_guard"):
        _lock_out(guard, clock, session="tab-1", address="203.0.113.7")
        _try(guard, TOKEN)
    lines = [record.getMessage() for record in caplog.records]
    assert len([line for line in lines if line.startswith("Wrong admin token from session tab-1, address "
                                                          "203.0.113.7")]) == LOCK_AFTER - 1
    assert [line for line in lines if line.startswith("Admin tools locked for session tab-1, address 203.0.113.7")]
    assert not [line for line in lines if "guess" in line or TOKEN in line]


def test_the_app_slows_and_locks_out_wrong_tokens_and_a_new_session_stays_locked(monkeypatch, clock):
    """The wiring: each entered token is one try (not one per rerun), and a new session from the same address
    (AppTest gives none: the session alone) is held back by its own count."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from tests.test_app import APP

    monkeypatch.setenv("ADMIN_TOKEN", TOKEN)
    monkeypatch.setattr("streamlit.runtime.context.ContextProxy.ip_address", property(lambda self: "203.0.113.7"))
    st.cache_resource.clear()
    at = AppTest.from_file(APP, default_timeout=60).run()
    for wrong in range(1, LOCK_AFTER + 1):
        at.sidebar.text_input(key="admin_token").set_value(f"guess-{wrong}").run()
        at.run()  # a rerun is not another try
        clock[0] += DELAYS[min(wrong, len(DELAYS)) - 1]
    assert any("locked for" in e.value for e in at.sidebar.error)
    at.sidebar.text_input(key="admin_token").set_value(TOKEN).run()
    assert any("Locked out" in e.value for e in at.sidebar.error)
    assert not [b for b in at.sidebar.button if b.key == "train_start"]

    other_tab = AppTest.from_file(APP, default_timeout=60).run()  # same address, a new session
    other_tab.sidebar.text_input(key="admin_token").set_value(TOKEN).run()
    assert any("Locked out" in e.value for e in other_tab.sidebar.error)

    clock[0] += LOCKOUT
    other_tab.sidebar.text_input(key="admin_token").set_value("").run()
    other_tab.sidebar.text_input(key="admin_token").set_value(TOKEN).run()
    assert other_tab.sidebar.button(key="train_start") is not None
    st.cache_resource.clear()


def test_behind_a_trusted_proxy_the_address_is_the_one_the_proxy_saw():
    """Every connection comes from the proxy: counting against its address would lock every client out."""
    from services.admin_guard import client_address

    headers = {"X-Forwarded-For": "198.51.100.9, 203.0.113.7"}  # a client may forge the first; the proxy adds the last
    assert client_address("10.0.0.2", headers, trust_forwarded=True) == "203.0.113.7"
    assert client_address("10.0.0.2", headers, trust_forwarded=False) == "10.0.0.2"
    assert client_address("10.0.0.2", {}, trust_forwarded=True) is None  # the session alone, then
