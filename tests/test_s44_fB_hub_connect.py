"""A hub fetch whose connection fails outright (refused, a host that does not resolve) ends at once with
what failed and where: `HF_ENDPOINT=http://127.0.0.1:9 plan someorg/some-model` waited the whole
AUTOPARALLEL_HUB_TIMEOUT (the hub client retries 5 times over 23 s) and then said "the hub did not answer
within 20 s". A server that accepts and never answers still costs the time-out, with its own text. No
real network: a local port where nothing listens, a local silent server, a patched name lookup."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import huggingface_hub
import huggingface_hub.constants
import pytest

from autoparallel.errors import InputError
from autoparallel.models import hub
from tests.local_server import closed_port


@pytest.fixture
def online(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The hub switched on (the suite runs offline, which the hub client read at its import), no proxy,
    and a fresh client session (it reads the proxy settings when made)."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "AUTOPARALLEL_HUB_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    huggingface_hub.close_session()
    yield
    huggingface_hub.close_session()


def _no_fetch_in_flight(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hub module's fetches in flight start empty: an earlier test's fetch of a server that never
    answers may still wait on its request, and the session closes only once the last fetch ends."""
    monkeypatch.setattr(hub._RETRIES, "watched", {})
    monkeypatch.setattr(hub._RETRIES, "close_pending", False)


def _fetch_error(model_id: str = "someorg/some-model") -> tuple[str, float]:
    start = time.perf_counter()
    with pytest.raises(InputError) as info:
        hub.fetch_config_files(model_id)
    return str(info.value), time.perf_counter() - start


def test_a_refused_connection_fails_at_once(online: None, monkeypatch: pytest.MonkeyPatch) -> None:
    port = closed_port()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AUTOPARALLEL_HUB_TIMEOUT", "2.5")
    message, took = _fetch_error()
    assert took < 1.0, took
    assert message.startswith(f"the hub refused the connection at http://127.0.0.1:{port} (HF_ENDPOINT); ")
    # Not cached: HF_HUB_OFFLINE=1 would refuse it too, so the advice names the cache, not that switch.
    assert "check HF_ENDPOINT and the network" in message and "HF_HUB_OFFLINE" not in message
    assert message.endswith(f"; it is not in the local hub cache ({hub.hub_cache_dir()}) either"), message
    assert "local config.json" in message and "did not answer" not in message
    # Under `plan --time-limit` too: the refusal, not "what --time-limit left".
    with hub.fetch_deadline(time.perf_counter() + 2.0):
        message, took = _fetch_error()
    assert took < 1.0 and message.startswith("the hub refused the connection"), (took, message)


def test_an_unresolvable_host_fails_at_once(online: None, monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo

    def lookup(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "no-such-host.invalid":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    monkeypatch.setenv("HF_ENDPOINT", "http://no-such-host.invalid")
    monkeypatch.setenv("AUTOPARALLEL_HUB_TIMEOUT", "2.5")
    message, took = _fetch_error()
    assert took < 1.0, took
    assert message.startswith(
        "the hub at http://no-such-host.invalid (HF_ENDPOINT) could not be reached: "
        "its host 'no-such-host.invalid' does not resolve (DNS); check HF_ENDPOINT and the network"
    ), message


def test_a_refusing_proxy_is_named_no_password(online: None, monkeypatch: pytest.MonkeyPatch) -> None:
    port = closed_port()
    monkeypatch.setenv("HF_ENDPOINT", "http://hub.example.test")
    for name in ("HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(name, f"http://user:secret@127.0.0.1:{port}")
    monkeypatch.setenv("AUTOPARALLEL_HUB_TIMEOUT", "2.5")
    message, took = _fetch_error()
    assert took < 1.0, took
    assert message.startswith(
        "the hub refused the connection at http://hub.example.test (HF_ENDPOINT) through the proxy "
        f"http://127.0.0.1:{port}; check HF_ENDPOINT, the proxy settings and the network"
    ), message
    assert "secret" not in message


def test_a_silent_server_still_costs_the_hub_timeout(
    online: None, silent_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{silent_port}")
    monkeypatch.setenv("AUTOPARALLEL_HUB_TIMEOUT", "0.5")
    message, took = _fetch_error()
    assert 0.5 <= took < 1.5, took
    assert message == (
        "the hub did not answer within 0.5 s (AUTOPARALLEL_HUB_TIMEOUT); pass a local config.json; "
        f"it is not in the local hub cache ({hub.hub_cache_dir()}) either"
    )


def test_a_silent_server_cut_by_the_time_limit_says_the_fetch_used_it(
    online: None, silent_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{silent_port}")
    monkeypatch.setenv("AUTOPARALLEL_HUB_TIMEOUT", "20")
    with hub.fetch_deadline(time.perf_counter() + 0.4):
        message, took = _fetch_error()
    assert 0.3 <= took < 1.5, took
    assert message.startswith("the hub did not answer within 0.")
    assert "s (what --time-limit left; the fetch used all of it); " in message
    assert message.endswith("pass a local config.json, or raise --time-limit")
    # Nothing left of the limit: the hub was never asked, so it is not blamed.
    with hub.fetch_deadline(time.perf_counter() - 1.0):
        message, took = _fetch_error()
    assert took < 0.2 and message.startswith("--time-limit was used up before the hub fetch began"), message
    # The hub's own time-out when it is the shorter one.
    monkeypatch.setenv("AUTOPARALLEL_HUB_TIMEOUT", "0.3")
    with hub.fetch_deadline(time.perf_counter() + 5.0):
        message, _ = _fetch_error()
    assert message.startswith("the hub did not answer within 0.3 s (AUTOPARALLEL_HUB_TIMEOUT); "), message


def test_a_long_hub_timeout_is_whole_seconds() -> None:
    assert hub._seconds(3600.0) == "3600" and hub._seconds(2.994) == "2.99" and hub._seconds(20.0) == "20"


def _hub_logs() -> tuple[int, int, int]:
    import logging

    request_log = logging.getLogger(hub._REQUEST_LOG)
    return logging.getLogger("huggingface_hub").level, request_log.level, len(request_log.filters)


def test_two_refused_fetches_at_once_leave_stdout_and_the_logs_as_they_were(
    online: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refused fetch left the hub client's loggers raised and its filter on for good (the restore waited
    for a thread still retrying), and two fetches at once left `sys.stdout` a StringIO (each restored the
    other's redirect): every later print vanished."""
    import sys

    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("AUTOPARALLEL_HUB_TIMEOUT", "2.5")
    before, stdout = _hub_logs(), sys.stdout
    messages: list[str] = []
    threads = [threading.Thread(target=lambda: messages.append(_fetch_error()[0])) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert len(messages) == 2 and all(m.startswith("the hub refused the connection") for m in messages)
    assert sys.stdout is stdout
    deadline = time.perf_counter() + 2.0  # the download threads end at their first retry
    while _hub_logs() != before and time.perf_counter() < deadline:
        time.sleep(0.02)
    assert _hub_logs() == before


def test_a_refused_fetch_closes_the_hub_clients_session(
    online: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hub client closes its shared HTTP client after logging a ConnectError; leaving its retry loop
    from that log line (`_GaveUp`) skipped it, so a long-lived process kept the failed session."""
    calls: list[int] = []
    monkeypatch.setattr(huggingface_hub, "close_session", lambda: calls.append(1))
    _no_fetch_in_flight(monkeypatch)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("AUTOPARALLEL_HUB_TIMEOUT", "2.5")
    message, _ = _fetch_error()
    deadline = time.perf_counter() + 2.0  # closed by the fetch thread as it ends, after its caller is told
    while not calls and time.perf_counter() < deadline:
        time.sleep(0.01)
    assert message.startswith("the hub refused the connection") and calls == [1]


def test_two_fetches_close_the_session_once_the_last_ends(
    online: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two fetches at once, one refused: closing the hub client's shared session as the refused one gave up
    set it to None under the other, whose `get_session` could then return None ("'NoneType' object has no
    attribute 'request'" for its answer, seen under three test workers). The close now waits for the last
    fetch in flight (`_RetryWatch.ended`)."""
    calls: list[int] = []
    monkeypatch.setattr(huggingface_hub, "close_session", lambda: calls.append(1))
    _no_fetch_in_flight(monkeypatch)
    other = threading.get_ident() + 1  # a second fetch still in flight
    hub._RETRIES.watched[other] = ({}, threading.Event())
    try:
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
        monkeypatch.setenv("AUTOPARALLEL_HUB_TIMEOUT", "2.5")
        message, _ = _fetch_error()
        time.sleep(0.3)  # the refused fetch's thread has ended
        assert message.startswith("the hub refused the connection") and calls == []
    finally:
        hub._RETRIES.watched.pop(other, None)
    hub._RETRIES.watched[threading.get_ident()] = ({}, threading.Event())  # the other one ends
    hub._RETRIES.ended()
    assert calls == [1] and not hub._RETRIES.close_pending
