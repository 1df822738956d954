"""Sweep results as tables: a `SweepResult` (rows → pandas), and the results file a sweep resumes from.

A results file is Parquet, CSV or JSON lines (by its suffix) with one row per scenario: every input
column (`scenario_id`, `label`, `kind`, model, cluster, workload fields, `grad_reduce_in_bf16` where a
training row sets it, objective, engine), then the outcome (`status`, `message`, plan shape incl.
EP, `gpus`, throughput, TTFT, TPOT, $/h, $/M tokens, headroom, solver status and wall times; with a
request rate, `batch_at_rate`, `ttft_ms_at_rate` and `tpot_ms_at_rate`, the steady state at that
rate; a deployment row (`disagg`, or cost at a rate) with a request rate, `goodput_tok_s` and
`usd_per_million_tokens_at_rate`, the tokens/s it serves of the rate and its $/hour over them (as
`plan` prints them; `throughput_tok_s` and `usd_per_million_tokens` are at capacity in every row);
with a finite benchmark (`num_prompts`: the batch preset, a profiled file), `bench_output_tok_s`,
`bench_duration_s`, `bench_mean_ttft_ms`, `bench_mean_tpot_ms`, `bench_p99_ttft_ms` and
`bench_preemptions`, its replay as `plan` shows it).
Columns a row does not have (training fields in a serving row) are empty.

Safety: while a sweep runs, each finished row is appended (and flushed) to a journal beside the file,
`<out>.journal.jsonl`; at the end the file is rewritten atomically (temporary file, then rename) with
its old rows plus the new ones, and the journal removed. A run that is killed leaves the file as it
was and the journal with what it finished; the next run reads both and solves only the remainder.
The results file itself is never appended to, so a CSV row with fewer or more cells than the header
is damage (a copy cut short, an edit): the file is refused, naming the line, as a JSON lines file's
broken line is; only the journal's last line may be cut short (a killed run's write), and that row is
not taken as finished (its scenario runs again).
One sweep at a time writes a results file: a sweep holds an exclusive lock on `.<out>.lock` beside
it (`filelock`: `flock` on POSIX, which the system drops when the process ends, so a killed sweep's
lock never blocks a rerun) from reading the file to rewriting it; a second sweep on the same file is
refused at once (two sweeps each rewrote the file with their own rows, and one sweep's were lost).
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autoparallel.bounds import json_safe
from autoparallel.errors import InputError
from autoparallel.user_file import writable_folder_problem

if TYPE_CHECKING:
    import pandas as pd

FORMATS = (".parquet", ".csv", ".jsonl")
"""Results file formats, by suffix."""
LEADING = (
    "scenario_id",
    "label",
    "kind",
    "model",
    "cluster",
    "gpu_prices",
    "workload",
    "preset",
    "name",
    "isl",
    "osl",
    "concurrency",
    "request_rate",
    "ttft_ms_slo",
    "tpot_ms_slo",
    "max_model_len_req",
    "seq_len",
    "global_batch",
    "tokens",
    "precision",
    "grad_reduce_in_bf16",
    "objective",
    "engine",
    "status",
    "message",
)
"""Column order of a results table (the rest follow in first-seen order)."""
_RENAMED = {"ttft_ms": "ttft_ms_slo", "tpot_ms": "tpot_ms_slo", "max_model_len": "max_model_len_req"}
"""Workload inputs whose names collide with output columns get a suffix in rows."""
NEEDED = ("scenario_id", "status")
"""Columns every row of a results file a sweep resumes from has (the resume matches `scenario_id`,
`SweepResult.counts` reads `status`)."""
SHOWN = ("model", "cluster", "workload", "objective")
"""Columns every row a sweep returns has (`SweepResult.table`), besides `NEEDED`."""
SHOWN_OK = ("gpus", "throughput_tok_s")
"""Columns an `ok` row a sweep returns has, besides its shape: `mode` for a deployment row (`engines`),
`tp`, `pp`, `dp` for the others."""

_TEXT = (
    *("scenario_id", "label", "kind", "model", "cluster", "gpu_prices", "workload", "preset", "name"),
    "workload_file",
    *("precision", "objective", "engine", "disagg", "status", "message", "version", "solver_status"),
    *("plan_engine", "mode", "pd_ratio", "engines", "prefill_engines", "decode_engines", "disagg_why"),
    *("framework", "kv_cache_dtype", "quantization", "cp_comm", "zero", "recompute", "stage_recompute"),
    "layers_per_stage",  # `13/13/13/9`; zero is "0".."3" or "dist"
)
_COUNTS = (
    *("isl", "osl", "concurrency", "max_model_len_req", "seq_len", "global_batch", "tp", "pp", "dp"),
    *("cp", "ep", "etp", "vp", "micro_batch", "max_num_seqs", "max_model_len", "max_num_batched_tokens"),
    *("gpus", "bench_preemptions", "point"),
)
_FLAGS = (
    *("grad_reduce_in_bf16", "enable_expert_parallel", "enforce_eager", "sequence_parallel"),
    "offload_optimizer",
    *("offload_params", "ep_overlap", "knee"),
)
_FIGURES = (
    *("request_rate", "ttft_ms_slo", "tpot_ms_slo", "tokens", "gpu_memory_utilization"),
    *("moe_capacity_factor", "throughput_tok_s", "throughput_tok_s_per_gpu", "goodput_tok_s"),
    *("requests_per_s", "ttft_ms", "tpot_ms", "usd_per_million_tokens", "usd_per_hour"),
    "usd_per_million_tokens_at_rate",
    *("kv_headroom_gib", "headroom_gib", "batch_at_rate", "ttft_ms_at_rate", "tpot_ms_at_rate"),
    *("bench_output_tok_s", "bench_duration_s", "bench_mean_ttft_ms", "bench_mean_tpot_ms"),
    *("bench_p99_ttft_ms", "step_time_s", "mfu", "usd_to_train", "hours_to_train"),
    *("agg_tok_s_per_gpu", "disagg_tok_s_per_gpu", "solver_wall_s", "wall_s"),
)
COLUMN_TYPES: dict[str, str] = {
    **dict.fromkeys(_TEXT, "text"),
    **dict.fromkeys(_COUNTS, "count"),
    **dict.fromkeys(_FLAGS, "flag"),
    **dict.fromkeys(_FIGURES, "figure"),
}
"""The type of every column a sweep row or a front row has, by its meaning, never by its values: text
(ids, names, `13/13/13/9`, ZeRO `3` or `dist`), count (an integer; empty where a row has none), flag
(true/false) or figure (a float, whole or not: $3.00/h is 3.0). `objective_<name>` columns are
figures. Every reader and writer goes through it (`frame`, `read_rows`, `Front.to_pandas`), so a
resumed CSV gives back what was written (`0608875769752169` keeps its zero) and results files of
different sweeps read together (a request rate of 10 in one and 2.5 in another are both floats)."""
DTYPES = {"text": "string", "count": "Int64", "flag": "boolean", "figure": "float64"}
"""pandas dtype per column type (nullable, so a failed row's empty cells keep a count a count)."""


def column_type(name: str, values: Sequence[Any] = ()) -> str:
    """The type of column `name` (see `COLUMN_TYPES`). A column outside the table (one a user added) is
    typed from all its non-empty `values` together: flags if all are booleans or `true`/`false`,
    counts if all are whole numbers, figures if all are numbers, else text."""
    if name in COLUMN_TYPES:
        return COLUMN_TYPES[name]
    if name.startswith("objective_"):
        return "figure"
    present = [v for v in (_native(v) for v in values) if v is not None]
    if not present:
        return "text"
    if all(isinstance(v, bool) or str(v).strip().lower() in ("true", "false") for v in present):
        return "flag"
    for kind in ("count", "figure"):
        try:
            for v in present:
                cast_value(kind, v)
        except ValueError:
            continue
        return kind
    return "text"


def cast_value(kind: str, value: Any) -> Any:
    """`value` as a Python value of column type `kind` (None for an empty cell).

    Raises:
        ValueError: a value that is not of that type (`abc` in a count, 2.5 in a count).
    """
    value = _native(value)
    if value is None or (isinstance(value, str) and kind != "text" and not value.strip()):
        return None
    if kind == "text":
        return value if isinstance(value, str) else str(value)
    if kind == "flag":
        text = str(value).strip().lower()
        if isinstance(value, bool) or value in (0, 1) or text in ("true", "false"):
            return text == "true" if isinstance(value, str) else bool(value)
        raise ValueError(f"{value!r} is not true or false")
    if kind == "count":
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
            try:
                value = float(value)
            except ValueError:
                raise ValueError(f"{value!r} is not a whole number") from None
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ValueError(f"{value!r} is not a whole number")
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a number") from None


def _column_types(rows: Sequence[dict[str, Any]]) -> dict[str, str]:
    """Every column of `rows`, in first-seen order, with its type."""
    names = list(dict.fromkeys(k for r in rows for k in r))
    return {n: column_type(n, [r[n] for r in rows if n in r]) for n in names}


def _cast_row(row: dict[str, Any], kinds: dict[str, str]) -> dict[str, Any]:
    out = {}
    for k, v in row.items():
        try:
            out[k] = cast_value(kinds[k], v)
        except ValueError as exc:
            raise ValueError(f"column {k!r}: {exc}") from None
    return out


def typed_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with every value cast to its column's type, empty cells dropped.

    Raises:
        ValueError: a value not of its column's type, naming the column.
    """
    kinds = _column_types(rows)
    return [{k: v for k, v in _cast_row(r, kinds).items() if v is not None} for r in rows]


def input_columns(inputs: dict[str, Any]) -> dict[str, Any]:
    """A scenario's inputs as row columns (SLO fields renamed away from the measured ones)."""
    return {_RENAMED.get(k, k): v for k, v in inputs.items()}


def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise InputError(f"results file {str(path)!r}: use one of {', '.join(FORMATS)}")
    return suffix


def _native(value: Any) -> Any:
    """numpy scalars → Python; NaN / None → None."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)) or type(value).__name__ == "NAType":
        return None  # pandas' NA is an empty cell too
    return value


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a results file (empty cells dropped).

    Raises:
        InputError: not a results file of a known format, unreadable, without a scenario_id column, or
            damaged (a CSV row whose cells are not the header's, a JSON lines line that is not JSON).
    """
    p = Path(path)
    kind = _format(p)
    try:
        if kind == ".jsonl":
            records = _read_jsonl(p, tolerate_torn_tail=False)
        elif kind == ".csv":
            records = _read_csv(p)
        else:
            import pandas as pd

            df = pd.read_parquet(p)
            if "scenario_id" not in df.columns:
                raise InputError(f"results file {str(p)!r} has no scenario_id column: not a sweep's results")
            df = df.astype(object).where(df.notna(), None)
            records = [{str(k): v for k, v in r.items()} for r in df.to_dict("records")]
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"cannot read results file {str(p)!r}: {str(exc).splitlines()[0]}") from None
    try:
        return typed_rows(records)
    except ValueError as exc:
        raise InputError(f"results file {str(p)!r}: {exc}") from None


def _read_csv(p: Path) -> list[dict[str, Any]]:
    """A CSV results file's rows: every cell as the text it is (no guessing: `0608875769752169` is an
    id, not a number), only an empty cell empty (the column types turn them back into values).

    Raises:
        InputError: no scenario_id column, a column named twice, a row with fewer or more cells than
            the header (pandas padded a row cut short with empty cells: a finished `ok` row with its
            numbers cut), or broken quoting; naming the line.
    """
    shown = repr(str(p))
    with p.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh, strict=True)
        try:
            header = next(reader, None) or []
            if not header and not any(reader):  # an empty sweep's (`frame([])` writes one line end)
                return []
            if "scenario_id" not in header:
                raise InputError(f"results file {shown} has no scenario_id column: not a sweep's results")
            twice = sorted({h for h in header if header.count(h) > 1})
            if twice:
                raise InputError(f"results file {shown}: column {twice[0]!r} appears twice in the header")
            rows = []
            for cells in reader:
                if not cells:
                    continue  # a blank line
                if len(cells) != len(header):
                    many = f"{len(cells)} cell{'s' * (len(cells) != 1)}"
                    raise InputError(
                        f"results file {shown}: line {reader.line_num} has {many}, the header "
                        f"{len(header)}: the file is damaged (cut short or edited); restore it, or delete "
                        "that line to solve its scenario again"
                    )
                rows.append({h: (c if c != "" else None) for h, c in zip(header, cells, strict=True)})
        except csv.Error as exc:
            raise InputError(f"results file {shown}: line {reader.line_num}: {exc}") from None
    return rows


def _read_jsonl(p: Path, *, tolerate_torn_tail: bool) -> list[dict[str, Any]]:
    rows = []
    # utf-8-sig: a byte order mark (an editor's or PowerShell's) is not line 1's text, as `_read_csv` reads
    lines = p.read_text(encoding="utf-8-sig").splitlines()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if tolerate_torn_tail and n == len(lines):
                break  # the last line of a killed run's journal may be cut short
            raise InputError(f"results file {str(p)!r}: line {n} is not JSON") from None
        if not isinstance(row, dict) or "scenario_id" not in row:
            raise InputError(f"results file {str(p)!r}: line {n} is not a sweep result row")
        rows.append(row)
    return rows


def frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Rows as a DataFrame, input columns first, each column of its type (`COLUMN_TYPES`)."""
    names = list(dict.fromkeys(k for r in rows for k in r))
    first = [c for c in LEADING if c in names]
    return typed_frame(rows, first + [c for c in names if c not in first])


def typed_frame(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Rows as a DataFrame with `columns` (default: in first-seen order), each of its column's dtype
    (`DTYPES`: string, nullable Int64 and boolean, float64), whatever the values of these rows.

    Raises:
        ValueError: a value not of its column's type, naming the column.
    """
    import pandas as pd

    kinds = _column_types(rows)
    typed = [_cast_row(r, kinds) for r in rows]
    names = list(columns) if columns is not None else list(kinds)
    data = {
        n: pd.Series([r.get(n) for r in typed], dtype=DTYPES[kinds.get(n, "text")], name=n) for n in names
    }
    return pd.DataFrame(data, index=pd.RangeIndex(len(typed)))


def table_target(path: str | Path) -> tuple[Path, str]:
    """A results file to write: its path (a symbolic link's target) and format, checked to be writable
    before the run (`user_file.writable_folder_problem`).

    Raises:
        InputError: an unknown suffix, or a path that cannot be written.
    """
    p = Path(path)
    if p.is_symlink():  # the file behind it (a dangling link: the file it names): the rename replaced the
        p = Path(os.path.realpath(p))  # link, the target kept its old rows, and each had its own lock
    kind = _format(p)
    if (problem := writable_folder_problem(p)) is not None:
        raise InputError(f"cannot write results file {str(p)!r}: {problem}")
    return p, kind


def write_rows(path: str | Path, rows: Sequence[dict[str, Any]]) -> None:
    """Write rows to `path` atomically (a temporary file renamed over it).

    Raises:
        InputError: an unknown suffix, a folder that does not exist, or the write fails (a directory
            of that name, no permission, a full disk).
    """
    p, kind = table_target(path)
    tmp = p.with_name(f".{p.name}.tmp-{os.getpid()}")
    try:
        if kind == ".jsonl":
            with tmp.open("w") as fh:
                for r in rows:  # strict JSON Lines: a non-finite figure (an unbounded TTFT) is null
                    fh.write(json.dumps(json_safe(r)[0], default=str, allow_nan=False) + "\n")
        elif kind == ".csv":
            frame(rows).to_csv(tmp, index=False)
        else:
            frame(rows).to_parquet(tmp, index=False)
        os.replace(tmp, p)
    except OSError as exc:
        raise InputError.cannot_write("results file", p, exc) from None
    except (ValueError, TypeError, ImportError) as exc:  # a value not of its column's type; pyarrow's
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"cannot write results file {str(p)!r}: {first}") from None
    finally:
        tmp.unlink(missing_ok=True)


class _StoredRow(dict[str, Any]):
    """A row read back from a results file or its journal: which file, and the columns that file has
    (so that a row the sweep returns without a column the table reads is refused naming the file,
    `SweepResult`)."""

    __slots__ = ("columns", "source")

    def __init__(self, row: dict[str, Any], source: Path, columns: frozenset[str]) -> None:
        super().__init__(row)
        self.source = source
        self.columns = columns


class ResultStore:
    """The results file of a sweep and its journal (see the module docstring). Making one takes the
    file's lock, which `commit` (or `close`) gives back.

    Raises:
        InputError: an unknown suffix, a path that cannot be written, or another sweep writes the file.
    """

    def __init__(self, path: str | Path) -> None:
        self.path, _ = table_target(path)
        self.journal = self.path.with_name(self.path.name + ".journal.jsonl")
        self._rows: dict[str, dict[str, Any]] = {}
        self._new = 0
        self._lock = _take_lock(self.path)

    def load(self) -> list[dict[str, Any]]:
        """Rows already finished: the file's, then the journal's (a later row of the same id wins).

        Raises:
            InputError: the file or the journal is damaged, or a row lacks a column every row has
                (`NEEDED`); the lock is given back.
        """
        try:
            rows = self._stored(read_rows(self.path), self.path) if self.path.exists() else []
            if self.journal.exists():
                # its last line may be cut short (a killed run's write): that row is not finished
                rows += self._stored(_read_jsonl(self.journal, tolerate_torn_tail=True), self.journal)
                self._new += 1  # rewrite the file even if nothing else finishes
        except BaseException:
            self.close()
            raise
        self._rows = {r["scenario_id"]: r for r in rows}
        return list(self._rows.values())

    @staticmethod
    def _stored(rows: list[dict[str, Any]], source: Path) -> list[dict[str, Any]]:
        columns = frozenset(k for r in rows for k in r)
        for name in NEEDED:
            if rows and name not in columns:
                raise InputError(
                    f"results file {str(source)!r} has no {name!r} column, which every row of a sweep's "
                    "results has: restore it, or give another results file"
                )
            for r in rows:
                if name not in r:
                    raise InputError(
                        f"results file {str(source)!r}: the row of scenario {r.get('scenario_id')!r} has no "
                        f"{name!r}: restore it, or delete that row to solve its scenario again"
                    )
        return [_StoredRow(r, source, columns) for r in rows]

    def close(self) -> None:
        """Give the file's lock back (another sweep may write the file from now on)."""
        self._lock.release(force=True)

    def append(self, row: dict[str, Any]) -> None:
        """Record one finished row in the journal (flushed at once)."""
        with self.journal.open("a") as fh:
            fh.write(json.dumps(row, default=str) + "\n")
            fh.flush()
        self._rows[row["scenario_id"]] = row
        self._new += 1

    def commit(self, order: Sequence[str] = ()) -> None:
        """Rewrite the results file with every row, then drop the journal: rows whose scenario ids are
        not in `order` (other sweeps') first, as the file had them, then those of `order` in that order
        (a sweep's scenario order, whichever executor finished them first)."""
        try:
            if not self._new:
                return
            rank = {sid: n for n, sid in enumerate(order)}
            rows = sorted(self._rows.values(), key=lambda r: rank.get(r["scenario_id"], -1))
            write_rows(self.path, rows)
            self.journal.unlink(missing_ok=True)
            self._new = 0
        finally:
            self.close()


def _take_lock(path: Path) -> Any:
    """The exclusive lock of results file `path` (`.<name>.lock` beside it), taken without waiting.

    Raises:
        InputError: another sweep holds it, or the lock file cannot be made.
    """
    from filelock import FileLock, Timeout

    lock = FileLock(path.with_name(f".{path.name}.lock"), timeout=0, thread_local=False)
    try:
        lock.acquire()
    except Timeout:  # an OSError too: first
        raise InputError(
            f"results file {str(path)!r}: another sweep is writing it now; wait for it to finish, or give "
            "another results file"
        ) from None
    except OSError as exc:
        raise InputError.cannot_write("the lock of results file", path, exc) from None
    return lock


class SweepResult:
    """The rows of a sweep, in scenario order. `to_pandas()` for analysis, `write(path)` to save."""

    def __init__(self, rows: list[dict[str, Any]], *, skipped: int = 0) -> None:
        """Raises:
        InputError: a row read back from a results file lacks a column every row has (`SHOWN`),
            naming the file (`table` checks an `ok` row's `SHOWN_OK` and shape columns the same way)."""
        for r in rows:
            if isinstance(r, _StoredRow):
                _check_shown(r, SHOWN)
        self.rows = rows
        """One dict per scenario (inputs, status, outcome)."""
        self.skipped = skipped
        """Scenarios not solved again because a results file already had them."""

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.rows[i]

    def to_pandas(self) -> pd.DataFrame:
        """A DataFrame, one row per scenario, input columns first."""
        return frame(self.rows)

    def write(self, path: str | Path) -> None:
        """Save as Parquet, CSV or JSON lines (by suffix)."""
        write_rows(path, self.rows)

    def counts(self) -> dict[str, int]:
        """Scenarios per status."""
        out: dict[str, int] = {}
        for r in self.rows:
            out[r["status"]] = out.get(r["status"], 0) + 1
        return out

    def table(self) -> str:
        """A plain-text summary, one line per scenario (with a `bench tok/s` column, the finite
        benchmark's replay, when a row has one; with `tok/s at rate` and `$/Mtok at rate`, what a
        deployment row serves of its request rate and its $ per million tokens there, as `plan` prints
        them, when a row has them: `tok/s` and `$/Mtok` are at capacity in every row)."""
        from autoparallel.explain import _table

        bench = any(_opt(r, "bench_output_tok_s") != "" for r in self.rows)
        rated = any(_opt(r, "usd_per_million_tokens_at_rate") != "" for r in self.rows)
        lines: list[tuple[Any, ...]] = []
        for r in self.rows:
            if isinstance(r, _StoredRow) and r["status"] == "ok":
                _check_shown(r, (*SHOWN_OK, *(("mode",) if r.get("engines") else ("tp", "pp", "dp"))))
            if r["status"] == "ok":
                shape = (
                    f"{r['mode']}: {r['engines']}"  # a --disagg row: the winning deployment
                    if r.get("engines")
                    else f"tp={r['tp']} pp={r['pp']} dp={r['dp']}"
                    + (f" cp={r['cp']}" if (r.get("cp") or 1) > 1 else "")
                    + (f" ep={r['ep']}" if (r.get("ep") or 1) > 1 else "")
                )
                lines.append(
                    (
                        r["model"],
                        r["cluster"],
                        r["workload"],
                        r["objective"],
                        _engine(r),
                        shape,
                        r["gpus"],
                        float(r["throughput_tok_s"]),
                        *((_rated(r, "goodput_tok_s"),) if rated else ()),
                        *((_opt(r, "bench_output_tok_s"),) if bench else ()),
                        _opt(r, "tpot_ms"),
                        _opt(r, "usd_per_million_tokens"),
                        *((_opt(r, "usd_per_million_tokens_at_rate"),) if rated else ()),
                        "",
                    )
                )
            else:
                lines.append(
                    (
                        r["model"],
                        r["cluster"],
                        r["workload"],
                        r["objective"],
                        _engine(r),
                        r["status"],
                        "",
                        "",
                        *(("",) if rated else ()),
                        *(("",) if bench else ()),
                        "",
                        "",
                        *(("",) if rated else ()),
                        str(r.get("message", ""))[:70],
                    )
                )
        counts = ", ".join(f"{n} {k}" for k, n in sorted(self.counts().items()))
        head = f"{len(self.rows)} scenarios ({counts})" + (
            f"; {self.skipped} from the results file" if self.skipped else ""
        )
        table = _table(
            (
                "model",
                "cluster",
                "workload",
                "objective",
                "engine",
                "plan",
                "GPUs",
                "tok/s",
                *(("tok/s at rate",) if rated else ()),
                *(("bench tok/s",) if bench else ()),
                "TPOT ms",
                "$/Mtok",
                *(("$/Mtok at rate",) if rated else ()),
                "reason",
            ),
            lines,
        )
        return head + "\n" + table

    def to_dicts(self) -> list[dict[str, Any]]:
        """JSON-ready rows."""
        return [dict(r) for r in self.rows]


def _check_shown(row: _StoredRow, needed: Sequence[str]) -> None:
    """Refuse a row of a results file that lacks a column of `needed` that `SweepResult` reads, naming
    the column and the file (a KeyError was an internal error).

    Raises:
        InputError: naming the first such column."""
    for name in needed:
        if name in row:
            continue
        where = f"results file {str(row.source)!r}"
        if name not in row.columns:
            raise InputError(
                f"{where} has no {name!r} column, which a sweep's rows have: restore it, or give another "
                "results file"
            )
        raise InputError(
            f"{where}: the row of scenario {row.get('scenario_id')!r} has no {name!r}: restore it, or "
            "delete that row to solve its scenario again"
        )


def _engine(row: dict[str, Any]) -> str:
    """The row's engine as asked, and the one that won where the scenario asked for `auto`."""
    asked, ran = str(row.get("engine") or ""), row.get("plan_engine")
    return f"{asked} ({ran})" if ran and ran != asked else asked


def _opt(row: dict[str, Any], key: str) -> Any:
    value = row.get(key)
    return float(value) if isinstance(value, (int, float)) else ""


def _rated(row: dict[str, Any], key: str) -> Any:
    """`key` of a row priced at its request rate (`usd_per_million_tokens_at_rate`), else empty: a
    deployment row without a rate has `goodput_tok_s` too, its capacity."""
    return _opt(row, key) if _opt(row, "usd_per_million_tokens_at_rate") != "" else ""
