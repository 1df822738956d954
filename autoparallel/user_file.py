"""Reading a file the user named, whatever it turns out to be: a bounded number of bytes, or one line;
and, before a long run, whether a file the user names for output can be written at all.

`stat().st_size` cannot bound a read: a device (`/dev/zero`, `/dev/urandom`) or a pipe reports 0
bytes and never ends, so a size check then `read_bytes()` filled memory or hung. The read itself is
bounded here. A pipe is read (`autoparallel profile <(zcat log.gz)`); a named pipe nobody writes to
is opened without waiting for a writer, so it reads as empty instead of hanging.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from autoparallel.bounds import clean_text
from autoparallel.errors import InputError


def read_capped(path: Path, what: str, max_bytes: int) -> bytes:
    """The bytes of the file at `path` (`what`: how messages name it, e.g. "fleet file").

    Raises:
        InputError: missing, a directory, unreadable (the system's reason), or more than `max_bytes`.
    """
    name = f"{what} {clean_text(str(path), 200)!r}"
    try:
        # O_NONBLOCK only for the open (a FIFO without a writer), then blocking reads; a system without
        # it (Windows) has no named pipes to wait on either.
        nonblock = getattr(os, "O_NONBLOCK", 0)
        fd = os.open(path, os.O_RDONLY | nonblock | getattr(os, "O_BINARY", 0))
        try:
            if nonblock:
                os.set_blocking(fd, True)
            with os.fdopen(fd, "rb", closefd=False) as fh:
                data = fh.read(max_bytes + 1)
        finally:
            os.close(fd)
    except OSError as exc:
        raise InputError(f"cannot read {name}: {exc.strerror or exc.__class__.__name__}") from None
    if len(data) > max_bytes:
        raise InputError(f"{name} is larger than {_size(max_bytes)}, the most autoparallel reads of one")
    return data


def _size(n: int) -> str:
    return f"{n >> 30} GiB" if n >= 1 << 30 and n % (1 << 30) == 0 else f"{n >> 20} MiB"


def writable_folder_problem(path: Path) -> str | None:
    """Why a file cannot be written at `path`, checked before a run that takes minutes (None: it can):
    a folder of that name, a folder that does not exist, or one where no file can be created (the
    system's reason). Creating a nameless temporary file there is the test: permission bits say
    nothing for root, and a folder such as /proc takes no new file whatever they say. A path through
    a file (`run.jsonl/plan.yaml`, `run.jsonl` a file) names that file: it exists, and is not a folder."""
    if path.is_dir():
        return "it is a folder"
    folder = path.parent
    if not folder.is_dir():
        for above in (folder, *folder.parents):  # the nearest that exists (a dangling link does not)
            if os.path.exists(above):
                if not os.path.isdir(above):
                    return f"{clean_text(str(above), 200)!r} is a file, not a folder"
                break
        return f"folder {clean_text(str(folder), 200)!r} not found"
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        return f"folder {clean_text(str(folder), 200)!r} takes no new file ({reason})"
    return None
