"""Fetching the `config.json` of a hub model that the zoo does not hold, within a total time limit.

The only network access of autoparallel. It happens only for a hub id outside the zoo, never with
`HF_HUB_OFFLINE=1`, and it downloads `config.json` and, where the repository has one, the
`hf_quant_config.json` NVIDIA ModelOpt (0.29 and before) saves beside it, which vLLM 0.32 reads as the
quantization config of a config.json without one (`transformers_utils/config.py` `get_config`:
`file_or_path_exists(model, "hf_quant_config.json", revision)`, locally or on the hub). Both go through
`huggingface_hub` (the hub client transformers itself uses: endpoint `HF_ENDPOINT`, token `HF_TOKEN`,
proxies, the local cache), without importing transformers or torch. The downloads run in one daemon
thread that the caller stops waiting for after `AUTOPARALLEL_HUB_TIMEOUT` seconds (default 20) in all,
so a server or proxy that accepts the connection and never answers costs that long at most; within
`fetch_deadline` (`plan --time-limit`, a limit on the whole command) no longer than that deadline. A
connection that fails outright (refused, a host that does not resolve, a failed TLS handshake), which the
hub client would retry for 23 s, ends the fetch at its first retry, with what failed and where.

The hub client's local cache (`HF_HUB_CACHE`, else `HF_HOME/hub`, else `~/.cache/huggingface/hub`: where
`huggingface-cli download` and vLLM put a model) is read without any request (`cached_config_files`):
with `HF_HUB_OFFLINE=1` it is all that is read, as `hf_hub_download` does offline; online, a hub that
cannot be reached (a failed connection, or no answer within AUTOPARALLEL_HUB_TIMEOUT) falls back to it,
as `hf_hub_download` does, with one note on stderr. A cached config.json without a cached
hf_quant_config.json has none (vLLM's `file_or_path_exists` offline: `try_to_load_from_cache`, then
`file_exists`, False offline).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import socket
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from autoparallel.bounds import clean_text
from autoparallel.errors import InputError

DEFAULT_TIMEOUT_S = 20.0
"""Total seconds a hub fetch may take (connection, redirects, download)."""


def hub_timeout_s() -> float:
    """`AUTOPARALLEL_HUB_TIMEOUT` (seconds, > 0), else DEFAULT_TIMEOUT_S."""
    raw = os.environ.get("AUTOPARALLEL_HUB_TIMEOUT")
    if raw is None:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        raise InputError(f"AUTOPARALLEL_HUB_TIMEOUT={raw[:40]!r} is not a number of seconds") from None
    if not 0 < value <= 3600:
        raise InputError(f"AUTOPARALLEL_HUB_TIMEOUT={value:g}: must be in (0, 3600] seconds")
    return value


_within = threading.local()
"""`deadline`: the `time.perf_counter()` no fetch of this thread may run past (`fetch_deadline`); absent
or None: the hub's time-out alone. Per thread: a command abandoned after a Ctrl-C (its thread still in
`fetch_deadline`) left its deadline on the next command of the process."""


@contextlib.contextmanager
def fetch_deadline(at: float | None) -> Iterator[None]:
    """Within: a fetch gives up at `at` (a `time.perf_counter()`) where that comes before its own time-out.
    `plan --time-limit` bounds the whole command: `plan someone/model --time-limit 2` took 20.8 s on an
    unreachable hub (the hub's 20 s, then the plan's limit). None: no deadline."""
    saved = getattr(_within, "deadline", None)
    _within.deadline = at
    try:
        yield
    finally:
        _within.deadline = saved


def offline() -> bool:
    """Whether the user turned the hub off: `HF_HUB_OFFLINE=1` (or `TRANSFORMERS_OFFLINE=1`, which the hub
    client reads the same way)."""
    return offline_variable() is not None


def offline_variable() -> str | None:
    """The variable that turned the hub off, for messages to name (None: neither is set)."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on"):
            return name
    return None


QUANT_CONFIG_FILE = "hf_quant_config.json"
"""The quantization config NVIDIA ModelOpt 0.29 and before saves beside config.json."""


class HubFiles(NamedTuple):
    """The local paths of a hub model's config files (downloaded or found in the hub cache)."""

    config: Path
    """config.json."""
    quant_config: Path | None
    """hf_quant_config.json; None where the repository has none."""


def fetch_config_files(model_id: str, timeout_s: float | None = None) -> HubFiles:
    """`model_id`'s config.json and its hf_quant_config.json where the repository has one, both within
    one time limit; the hub's "no such file" for the second is its absence, not an error. Offline
    (`HF_HUB_OFFLINE=1`), the local hub cache alone (`cached_config_files`, no request); a hub that
    cannot be reached (a failed connection, no answer within AUTOPARALLEL_HUB_TIMEOUT), the cache with
    a note on stderr, as the hub client falls back to it.

    Raises:
        InputError: offline and not cached; a time-out or a connection that failed (`_connect_what`)
            and not cached; what --time-limit left used up; any other failure of a download; in one line.
    """
    if offline():
        cached = cached_config_files(model_id)
        if cached is None:
            raise InputError(
                f"{offline_variable()} is set, so it was not fetched, and it is not in the local hub "
                f"cache ({hub_cache_dir()})"
            )
        return cached
    limit = hub_timeout_s() if timeout_s is None else timeout_s
    bound = "AUTOPARALLEL_HUB_TIMEOUT" if timeout_s is None else "the time-out given"
    deadline = getattr(_within, "deadline", None)
    if deadline is not None and deadline - time.perf_counter() < limit:
        limit, bound = max(0.0, deadline - time.perf_counter()), _TIME_LIMIT
        if limit <= 0:  # `plan --time-limit 0.001`: "the hub did not answer within 0 s" blamed the hub
            raise InputError(
                "--time-limit was used up before the hub fetch began; pass a local config.json, "
                "or raise --time-limit"
            )
    result: dict[str, Any] = {}

    # Imported here, not in the thread: the import configures the logger quieted below.
    client = _client("could not be fetched")
    hf_hub_download = client.hf_hub_download
    from huggingface_hub.utils import EntryNotFoundError, LocalEntryNotFoundError

    def get(filename: str) -> Path:
        return Path(
            hf_hub_download(
                model_id,
                filename,
                endpoint=os.environ.get("HF_ENDPOINT") or None,
                etag_timeout=min(limit, 10.0),
            )
        )

    over = threading.Event()
    """Set when the download ends, or when the client retries a connection that failed outright."""

    def download() -> None:
        with _RETRIES.lock:
            _RETRIES.watched[threading.get_ident()] = (result, over)
        try:
            config = get("config.json")
            try:
                quant: Path | None = get(QUANT_CONFIG_FILE)
            except EntryNotFoundError as exc:  # the server's 404: absent
                quant = None
                if isinstance(exc, LocalEntryNotFoundError):
                    # the hub did not say (a 5xx, a time-out) and the client's cache has no copy: absent,
                    # as vLLM finds it (`file_or_path_exists`), said in a note
                    result["quant_unknown"] = exc
            result["files"] = HubFiles(config, quant)
        except BaseException as exc:  # reported to the caller below, as one line
            result["error"] = exc
            if isinstance(exc, _GaveUp):
                _RETRIES.close_pending = True
        finally:
            _RETRIES.ended()
            over.set()
            _quiet_logs(-1)  # when the download itself ends, not when its caller stops waiting

    _quiet_logs(+1)
    worker = threading.Thread(target=download, name="autoparallel-hub-fetch", daemon=True)
    try:
        worker.start()
    except BaseException:
        _quiet_logs(-1)
        raise
    # `over`, not the thread's life: the thread still runs its last line after setting it, and a loaded
    # machine once read that as a hub that never answered.
    answered = over.wait(limit)
    failed = result.get("connect") or _connect_failure(result.get("error"))
    if failed is not None:  # the client's own fallback to its cache, which leaving its retries skipped
        return _from_cache(model_id, _connect_what(failed), _connect_advice())
    if not answered:
        silent = f"the hub did not answer within {_seconds(limit)} s"
        if bound == _TIME_LIMIT:  # the command's time is spent: no plan from the cache either
            in_cache = cached_config_files(model_id) is not None
            offline_hint = (
                "set HF_HUB_OFFLINE=1 to plan its copy in the local hub cache, " if in_cache else ""
            )
            raise InputError(
                f"{silent} ({_TIME_LIMIT}; the fetch used all of it); {offline_hint}"
                "pass a local config.json, or raise --time-limit"
            )
        # the client falls back to its cache when its request times out (`etag_timeout`)
        return _from_cache(model_id, f"{silent} ({bound})", "pass a local config.json")
    if "error" in result:
        raise InputError(f"could not be fetched: {_one_line(result['error'])}")
    files: HubFiles = result["files"]
    if "quant_unknown" in result:
        _note(
            f"{clean_text(model_id, 200)}: the hub did not say whether it has an {QUANT_CONFIG_FILE} "
            f"({_one_line(result['quant_unknown'])}), and the local hub cache has none: planned without one"
        )
    return files


def cached_config_files(model_id: str) -> HubFiles | None:
    """`model_id`'s config.json and hf_quant_config.json from the hub client's local cache alone, without
    any request: the files of the snapshot its `refs/main` names, as `hf_hub_download` returns them
    offline (`try_to_load_from_cache`). None where config.json is not cached (an id the client would
    refuse is not cached either); an hf_quant_config.json not cached, or cached as absent (`.no_exist`),
    is absent (vLLM's `file_or_path_exists` offline).

    Raises:
        InputError: the hub client cannot be imported, or the cache cannot be read.
    """
    look_up = _client("could not be read from the local hub cache").try_to_load_from_cache

    def cached(filename: str) -> Path | None:
        try:
            found = look_up(model_id, filename)
        except ValueError:  # not a valid hub id (HFValidationError): nothing of it is cached
            return None
        except OSError as exc:
            raise InputError(
                f"the local hub cache ({hub_cache_dir()}) could not be read: {_one_line(exc)}"
            ) from None
        return Path(found) if isinstance(found, str) else None

    config = cached("config.json")
    if config is None:
        return None
    return HubFiles(config, cached(QUANT_CONFIG_FILE))


def hub_cache_dir() -> str:
    """The hub client's cache folder, for messages (`HF_HUB_CACHE`, else `HF_HOME/hub`, else
    `~/.cache/huggingface/hub`, as the client read them at its import)."""
    try:
        return clean_text(str(_client("").constants.HF_HUB_CACHE), 200)
    except InputError:  # its import failed: the error that says so comes first
        return "the hub client's cache"


def _client(failed: str) -> Any:
    """The `huggingface_hub` module, its download and cache functions loaded. Its lazy loader prints a
    failed submodule import to stdout ("Error importing huggingface_hub.file_download: Invalid IPv6 URL"
    under HF_ENDPOINT="http://[::1"), which broke `--json` output and the one-line error: that print is
    kept off stdout, and the failure is an InputError, `failed: Type: message`."""
    try:
        # one thread at a time: `redirect_stdout` swaps the process's stdout, and two fetches at once
        # restored each other's StringIO (every later print lost)
        with _IMPORTING, contextlib.redirect_stdout(io.StringIO()):
            import huggingface_hub
            from huggingface_hub import hf_hub_download, try_to_load_from_cache  # noqa: F401
            from huggingface_hub.utils import EntryNotFoundError, LocalEntryNotFoundError  # noqa: F401
    except Exception as exc:  # not installed, or its environment unreadable
        raise InputError(f"{failed}: {_one_line(exc)}") from None
    return huggingface_hub


def _from_cache(model_id: str, what: str, advice: str) -> HubFiles:
    """The hub could not be reached (`what`): `model_id`'s files from the local hub cache, as the hub
    client falls back to them, with one note on stderr; not cached: the error, `what; advice`, naming
    the cache (HF_HUB_OFFLINE=1 would only refuse it too)."""
    files = cached_config_files(model_id)
    if files is None:
        raise InputError(f"{what}; {advice}; it is not in the local hub cache ({hub_cache_dir()}) either")
    _note(
        f"{what}; read {clean_text(model_id, 200)} from the local hub cache ({hub_cache_dir()}) "
        "instead, as the hub client does"
    )
    return files


def _note(text: str) -> None:
    """One `note:` line on stderr (nowhere where stderr is closed or unwritable)."""
    if sys.stderr is None:
        return
    with contextlib.suppress(OSError, ValueError):
        print(f"note: {clean_text(text, 600)}", file=sys.stderr)


_TIME_LIMIT = "what --time-limit left"
"""The bound of a fetch that `fetch_deadline` cut short of its own time-out."""

_REQUEST_LOG = "huggingface_hub.utils._http"
"""The hub client's logger of each failed request it retries (`_http_backoff_base`), which it calls while
it handles the failure."""


_IMPORTING = threading.Lock()
"""Held while the hub client is imported with stdout redirected (`fetch_config_files`)."""

_QUIET = threading.Lock()
_quiet: list[int] = [0, logging.NOTSET, logging.NOTSET]
"""Downloads running, and the hub client's two loggers' levels before the first of them (`_quiet_logs`)."""


def _quiet_logs(step: int) -> None:
    """Count a download in (+1) or out (-1). The hub client logs each retry of a failed request ("...
    thrown while requesting HEAD ...", "Retrying in 4s"); a fetch's one-line error says what happened,
    so while any download runs only the client's errors are let through and `_RETRIES` watches its
    request logger; the levels come back when the last download ends (a fetch given up on may still be
    retrying: its thread counts itself out when it ends). Counted, so two fetches at once do not restore
    each other's levels."""
    hub_log, request_log = logging.getLogger("huggingface_hub"), logging.getLogger(_REQUEST_LOG)
    with _QUIET:
        if step > 0 and _quiet[0] == 0:
            _quiet[1:] = [hub_log.level, request_log.level]
            hub_log.setLevel(max(hub_log.level, logging.ERROR))
            request_log.setLevel(logging.WARNING)
            request_log.addFilter(_RETRIES)
        _quiet[0] += step
        if step < 0 and _quiet[0] == 0:
            hub_log.setLevel(_quiet[1])
            request_log.setLevel(_quiet[2])
            request_log.removeFilter(_RETRIES)


class _GaveUp(BaseException):
    """Raised by `_RetryWatch` out of the hub client's retry log, to end its retries of a connection that
    failed outright (a BaseException: the client's `except Exception` handlers let it through)."""


def _close_hub_session() -> None:
    """What the hub client does itself after logging a ConnectError, which `_GaveUp` skips: close its
    shared HTTP client ("in case of SSLError it's best to close" it), so the next fetch of a long-lived
    process connects afresh."""
    try:
        from huggingface_hub import close_session

        close_session()
    except Exception:  # a client without it: nothing shared to close
        pass


class _RetryWatch(logging.Filter):
    """On `_REQUEST_LOG` during a fetch: a retry log of a fetch thread, logged while its client handles an
    `httpx2.ConnectError` (refused, a host that does not resolve, a failed TLS handshake: no server
    answered), ends the fetch at once: its caller is told, and the retry loop is left by `_GaveUp` (the
    client would retry 5 times over 23 s, 1+2+4+8+8). Lets only the client's errors through (its retry
    log would break the one-line error)."""

    def __init__(self) -> None:
        super().__init__()
        self.watched: dict[int, tuple[dict[str, Any], threading.Event]] = {}
        """A fetch thread's id -> its result (where "connect" is noted) and the event its caller waits on."""
        self.lock = threading.Lock()
        """Held to add or end a fetch thread (`watched`, `close_pending`)."""
        self.close_pending = False
        """A fetch gave up on a failed connection: the hub client's shared session is closed when the
        last fetch in flight ends (`ended`). Closed at once, another thread's fetch read the client
        between the hub client's check and its return (`get_session`) as None: "'NoneType' object has
        no attribute 'request'" in place of its own answer."""

    def ended(self) -> None:
        """The calling fetch thread is done: the session closed if one gave up and none is left."""
        with self.lock:
            self.watched.pop(threading.get_ident(), None)
            if self.close_pending and not self.watched:
                self.close_pending = False
                _close_hub_session()

    def filter(self, record: logging.LogRecord) -> bool:
        watched = self.watched.get(record.thread or 0)
        failed = _connect_failure(sys.exc_info()[1]) if watched is not None else None
        if watched is not None and failed is not None:
            watched[0].setdefault("connect", failed)
            watched[1].set()
            raise _GaveUp
        return record.levelno >= logging.ERROR


_RETRIES = _RetryWatch()


def _connect_failure(exc: BaseException | None) -> BaseException | None:
    """The `httpx2.ConnectError` (the hub client's "no connection") in `exc`'s chain of causes, if any."""
    try:
        from httpx2 import ConnectError
    except ImportError:  # a hub client on another HTTP library: its failures are reported as they come
        return None
    for cause in _causes(exc):
        if isinstance(cause, ConnectError):
            return cause
    return None


def _causes(exc: BaseException | None) -> Iterator[BaseException]:
    """`exc`, then what it was raised from or while handling, down to the root."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _connect_what(failed: BaseException) -> str:
    """What a failed connection to the hub was, and where."""
    named = bool(os.environ.get("HF_ENDPOINT"))
    endpoint = os.environ.get("HF_ENDPOINT") or _default_endpoint()
    where = f"at {_shown_url(endpoint)}" + (" (HF_ENDPOINT)" if named else "")
    proxy = _proxy_for(endpoint)
    via = f" through the proxy {_shown_url(proxy)}" if proxy else ""
    causes = list(_causes(failed))
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        what = f"the hub refused the connection {where}{via}"
    elif any(isinstance(c, socket.gaierror) for c in causes):
        host = clean_text(urlsplit(proxy or endpoint).hostname or "?", 80)
        reached = f"the proxy {_shown_url(proxy)}" if proxy else f"the hub {where}"
        what = f"{reached} could not be reached: its host {host!r} does not resolve (DNS)"
    else:
        what = f"could not connect to the hub {where}{via}: {_one_line(causes[-1])}"
    return what


def _connect_advice() -> str:
    """What to do about a failed connection to the hub."""
    endpoint = os.environ.get("HF_ENDPOINT") or _default_endpoint()
    check = "HF_ENDPOINT, the proxy settings" if _proxy_for(endpoint) else "HF_ENDPOINT"
    return f"check {check} and the network, or pass a local config.json or its folder"


def _default_endpoint() -> str:
    """The hub client's endpoint where HF_ENDPOINT is not set."""
    try:
        from huggingface_hub.constants import ENDPOINT

        return str(ENDPOINT)
    except Exception:  # its import failed above already, were it to fail
        return "https://huggingface.co"


def _proxy_for(url: str) -> str | None:
    """The proxy from the environment (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, less NO_PROXY) a request to
    `url` goes through, as the hub client's HTTP library reads them; None: a direct connection."""
    try:
        parts = urlsplit(url)
        proxies = urllib.request.getproxies()
        proxy = proxies.get(parts.scheme) or proxies.get("all")
        if not proxy or urllib.request.proxy_bypass(parts.hostname or ""):
            return None
    except ValueError:
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


def _shown_url(url: str) -> str:
    """`url` for a message: without a user and password, safe for a terminal, at most 120 characters."""
    try:
        parts = urlsplit(url)
        if parts.username is not None or parts.password is not None:
            url = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
    except ValueError:
        pass
    return clean_text(url, 120)


def _seconds(value: float) -> str:
    """Seconds for a message: 3 significant digits, whole seconds from 100 s (not `3.6e+03`)."""
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


def _one_line(exc: BaseException) -> str:
    """`Type: first line of the message` (the type alone for an empty message)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"{type(exc).__name__}: {text}"
