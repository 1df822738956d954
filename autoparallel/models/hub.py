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
`fetch_deadline` (`plan --time-limit`, a limit on the whole command) no longer than that deadline.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

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
    one time limit; the hub's "no such file" for the second is its absence, not an error.

    Raises:
        InputError: offline mode, a time-out, or any other failure of a download, in one line.
    """
    if offline():
        raise InputError(f"{offline_variable()} is set, so it was not fetched")
    limit, bound = (hub_timeout_s() if timeout_s is None else timeout_s), "AUTOPARALLEL_HUB_TIMEOUT"
    deadline = getattr(_within, "deadline", None)
    if deadline is not None and deadline - time.perf_counter() < limit:
        limit, bound = max(0.0, deadline - time.perf_counter()), "what --time-limit left"
    result: dict[str, Any] = {}

    # Imported here, not in the thread: the import configures the logger quieted below. Its lazy
    # loader prints a failed submodule import to stdout ("Error importing huggingface_hub.file_download:
    # Invalid IPv6 URL" under HF_ENDPOINT="http://[::1"), which broke `--json` output and the one-line
    # error: that print is kept off stdout, and the failure is the error below.
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            from huggingface_hub import hf_hub_download
            from huggingface_hub.utils import EntryNotFoundError, LocalEntryNotFoundError
    except Exception as exc:  # not installed, or its environment unreadable
        raise InputError(f"could not be fetched: {_one_line(exc)}") from None

    def get(filename: str) -> Path:
        return Path(
            hf_hub_download(
                model_id,
                filename,
                endpoint=os.environ.get("HF_ENDPOINT") or None,
                etag_timeout=min(limit, 10.0),
            )
        )

    def download() -> None:
        try:
            config = get("config.json")
            try:
                quant: Path | None = get(QUANT_CONFIG_FILE)
            except EntryNotFoundError as exc:  # the server's 404; a cache miss offline is an error
                if isinstance(exc, LocalEntryNotFoundError):
                    raise
                quant = None
            result["files"] = HubFiles(config, quant)
        except BaseException as exc:  # reported to the caller below, as one line
            result["error"] = exc

    # The hub client logs each retry of a failed request ("... thrown while requesting HEAD ...",
    # "Retrying in 4s"); the caller's one-line error says what happened, so only its errors are let
    # through while the fetch runs. Left so when the fetch is abandoned (its thread may still retry).
    hub_log = logging.getLogger("huggingface_hub")
    level = hub_log.level
    hub_log.setLevel(max(level, logging.ERROR))
    worker = threading.Thread(target=download, name="autoparallel-hub-fetch", daemon=True)
    worker.start()
    worker.join(limit)
    if not worker.is_alive():
        hub_log.setLevel(level)
    if worker.is_alive():
        raise InputError(
            f"the hub did not answer within {limit:.3g} s ({bound}); set HF_HUB_OFFLINE=1 "
            "to stay offline, or pass a local config.json"
        )
    if "error" in result:
        raise InputError(f"could not be fetched: {_one_line(result['error'])}")
    files: HubFiles = result["files"]
    return files


def _one_line(exc: BaseException) -> str:
    """`Type: first line of the message` (the type alone for an empty message)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"{type(exc).__name__}: {text}"
