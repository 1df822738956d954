"""Scenarios as data: one what-if is a model on a cluster under a workload, an objective and an engine.

A sweep is a list of scenarios, built as a grid (every model × cluster × workload × objective ×
engine) from keyword lists or command-line flags, or read from a file:

    YAML  `grid:` {models, clusters, workloads, objectives, engines, disagg} and/or `scenarios:` [rows]
          (a bare list is the same as `scenarios:`)
    CSV   one scenario per row; the columns are the keys of a row (`SCENARIO_COLUMNS`)

A workload is a serving preset name (chatbot, batch, rag, long-context, reasoning, sharegpt) or a mapping:
serving fields (`preset` or `workload_file`, `isl`, `osl`, `concurrency`, `request_rate`,
`ttft_ms`, `tpot_ms`, `max_model_len`, `name`) or training fields (`seq_len`, `global_batch`,
`tokens`, `precision`, and Megatron's `grad_reduce_in_bf16`, `plan --train --grad-reduce-in-bf16`;
`seq_len` and `global_batch` required, as `plan --train` requires them).
A `workload_file` (written by `autoparallel profile`) is read when the scenario is made and its
workload travels inside the scenario (`file_workload`, part of the id, not a table column), so
remote workers need no copy of the file and a changed file is a new scenario.
A serving scenario may carry `disagg` (auto, on, off): its row is then `plan --disagg`'s comparison of
aggregated and prefill/decode disaggregated deployments of the whole cluster (execute.py).
From Python a scenario may also be built from objects: a Serving travels whole (as a workload file's
content does) and a Training as its fields; a ModelSpec or a Cluster whose name or spec string does
not load back to it (a config dict, an edited spec, custom GPUs or prices) travels as JSON
(`model_json`, `cluster_json`), so a worker plans what the caller passed, never a namesake.
A scenario's `id` hashes its inputs and the package version, so results computed by another release
are not mistaken for this one's, and a local model's config content, so results of an edited config are
not mistaken for the new one's; its `label` is for people.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import hashlib
import io
import itertools
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from autoparallel.bounds import first_error, revalidated
from autoparallel.errors import InputError
from autoparallel.hardware import GPU, Cluster
from autoparallel.hardware.cluster import lookup_gpu, parse_prices
from autoparallel.models import ModelSpec
from autoparallel.objectives import DEPLOYMENT, canonical
from autoparallel.user_file import read_capped
from autoparallel.workload import PRESETS, Serving, Training, one_token_outputs
from autoparallel.yaml_file import read_yaml

if TYPE_CHECKING:
    from autoparallel.solvers.training.space import TrainingOptions

SERVING_FIELDS = ("isl", "osl", "concurrency", "request_rate", "ttft_ms", "tpot_ms", "max_model_len")
"""Serving workload fields a scenario may set (besides `preset`, `workload_file` and `name`)."""
FILE_FIELD, FILE_CONTENT = "workload_file", "file_workload"
"""A serving scenario's workload file (path, a table column) and the workload read from it (JSON)."""
GRAD_REDUCE = "grad_reduce_in_bf16"
"""A training scenario's Megatron option `TrainingOptions.grad_reduce_in_bf16` (`plan --train
--grad-reduce-in-bf16`): ZeRO 0-3 (Megatron-FSDP, the non-distributed optimizer) are planned only with
it. Given beside the workload fields, kept in the scenario's workload only when true (false is the
planner's default: that scenario's id, label and row are the ones without it), passed to the planner
as that option (`Scenario.training_options`), never to `Training`."""
TRAINING_FIELDS = ("seq_len", "global_batch", "tokens", "precision", GRAD_REDUCE)
"""Training workload fields a scenario may set (`GRAD_REDUCE` a planner option among them)."""
REQUIRED_TRAINING = ("seq_len", "global_batch")
"""Training fields every training scenario sets, as `plan --train` needs --seq-len and --global-batch
(a `Training` object has them always; a row or mapping that leaves one out is refused, never planned
with `Training`'s defaults)."""
MAX_SCENARIOS = 100_000
"""Most scenarios one sweep holds: building them is not free (a 3,000 x 3,000 `--isl` / `--osl`
grid, 9 million scenarios, ran for minutes without a word), and 1,000 take 71-356 s serial."""
MAX_SCENARIO_FILE_BYTES = 64 << 20
"""Largest scenario file `load_scenarios` reads (a million-row sweep is about 100 MiB of CSV: split
it)."""
SCENARIO_COLUMNS = (
    "model",
    "cluster",
    "objective",
    "engine",
    "disagg",
    "kind",
    "workload",
    "preset",
    FILE_FIELD,
    "name",
    *SERVING_FIELDS,
    *TRAINING_FIELDS,
)
"""The keys a scenario row (CSV column, YAML mapping) may have."""
DISAGG_MODES = ("auto", "on", "off")
"""`disagg` values of a serving scenario (`plan --disagg`)."""
ENGINES = {"serving": ("vllm", "sglang", "trtllm", "auto"), "training": ("megatron", "deepspeed")}
"""Engines per kind whose behaviour the cost model covers (serving: vLLM, SGLang or TensorRT-LLM, each
with its memory rule and speed, or auto: the planner picks among the three; training: Megatron, or
DeepSpeed, whose plans keep to the ZeRO stages its engine initializes, `TrainingOptions.framework`)."""


def serving_base(fields: Iterable[str]) -> dict[str, str]:
    """The base of serving workload fields that name neither a preset nor a workload file, as `plan`
    reads its flags (`plan_cmd._serving_workload`): a request shape of the user's own (`isl` / `osl`
    among `fields`) starts from no service-level limits ({}); other fields (a request rate, a
    concurrency, SLOs) adjust the chatbot preset, whose limits they keep ({"preset": "chatbot"}). One
    rule for a scenario row, a grid's workload mapping and `sweep`'s flags."""
    return {} if {"isl", "osl"} & set(fields) else {"preset": "chatbot"}


@functools.cache
def package_version() -> str:
    """The installed autoparallel version (part of every scenario id; read once: the metadata lookup
    took 2.3 ms, and a 10,000-row sweep asks for it per id, five times a row)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("autoparallel")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0+unknown"


class Scenario(BaseModel):
    """One what-if. `workload` holds only the fields the user set (a preset is expanded on use)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["serving", "training"]
    model: str
    cluster: str
    workload: tuple[tuple[str, Any], ...]
    """(field, value) pairs, sorted; serving: `preset` plus overrides; training: its fields."""
    objective: str = "throughput"
    engine: str = "vllm"
    disagg: Literal["auto", "on", "off"] | None = None
    """Serving: compare aggregated with prefill/decode disaggregated deployments of the whole cluster
    (`plan --disagg`); None: the single-engine plan only."""
    model_json: str | None = None
    """A ModelSpec the caller passed that its name does not load back (a config dict, an edited
    spec), as JSON: workers rebuild it from here, never from the name. Part of the id."""
    cluster_json: str | None = None
    """A Cluster the caller passed that its spec string does not parse back to (custom GPUs, prices),
    as JSON. Part of the id."""
    model_path: str | None = None
    """A local model that `model` names by a relative or `~` path: that path made absolute where the
    scenario was made (`local_model_path`), which `load_model` reads, so that a worker in another
    folder (a Dask worker started elsewhere) reads the same files on a shared filesystem, where it
    read `./mm/qwen` from its own folder ("no such file or directory"). `model` stays as written
    (the table, the label); not part of the id."""

    @property
    def inputs(self) -> dict[str, Any]:
        """Every input as one flat mapping (the table's input columns; `disagg` only when set, so
        that the ids of scenarios without it do not change; `gpu_prices` only for a cluster that travels
        as JSON, the prices its GPUs were given, which its spec string does not say)."""
        return {
            "kind": self.kind,
            "model": self.model,
            "cluster": self.cluster,
            **({"gpu_prices": gpu_prices(self.load_cluster())} if self.cluster_json else {}),
            **{k: v for k, v in self.workload if k != FILE_CONTENT},
            "objective": self.objective,
            "engine": self.engine,
            **({"disagg": self.disagg} if self.disagg is not None else {}),
        }

    @property
    def id(self) -> str:
        """Stable id: 16 hex digits of SHA-256 over the inputs and the package version. Values are
        normalised first, so that one scenario written two ways has one id: a whole number is an
        integer (`request_rate` 5.0 in YAML, 5 in CSV), a cluster is its canonical spec (`2x8xh100`,
        `16xH100` and `2x8xH100-SXM` are one cluster), an objective its registry name (`Throughput`).
        A local model (a folder or a config file) adds its files' content (`local_model_files`): an
        edited config.json is a new scenario; a zoo or hub id hashes as it always did."""
        content = {k: v for k, v in self.workload if k == FILE_CONTENT}  # the file's workload, not its name
        objects: dict[str, Any] = {
            k: v for k, v in (("model_json", self.model_json), ("cluster_json", self.cluster_json)) if v
        }
        inputs = {k: _same_number(v) for k, v in self.inputs.items()}
        if self.cluster_json is None:
            inputs["cluster"] = _cluster_key(self.cluster)
        inputs["objective"] = _objective_key(self.objective, self.kind, self.disagg is not None)
        if self.model_json is None and (files := self._model_files()) is not None:
            objects["model_files"] = files  # a local model: its config's content, as a workload file's
        text = json.dumps(
            {**inputs, **content, **objects, "version": package_version()}, sort_keys=True, default=str
        )
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def _model_files(self) -> dict[str, str] | None:
        """The digests of a local model's files (`local_model_files`), read once per scenario: the
        first `id` keeps them (in the instance, outside the fields, so equality and the hash are the
        fields'), and a scenario pickled to a worker carries them, so the worker's row has the id the
        sweep asked for even if the file changed meanwhile (or is not on the worker's machine)."""
        memo = self.__dict__.get("_model_files_memo")
        if memo is None or memo[0] != self.model:
            memo = (self.model, local_model_files(self.model))
            self.__dict__["_model_files_memo"] = memo  # a frozen model: not through __setattr__
        return memo[1]

    @property
    def given_limits(self) -> frozenset[str]:
        """The service limits (`ttft_ms`, `tpot_ms`) the scenario's row wrote over its preset or workload
        file, which a nearest fix does not credit to them (`remedies.GIVEN_LIMITS`, as `plan --ttft-ms`
        over a preset). A workload passed as a `Serving` object (`FILE_CONTENT` without a
        `FILE_FIELD`, `make_workload`) wrote none: its limit fields are shown copies of the object's
        own, which `autoparallel.solve` reads as the workload's (Serving.preset("chatbot")'s are the
        preset's, and the fix says the preset imposes them)."""
        w = dict(self.workload)
        if self.kind != "serving" or (FILE_CONTENT in w and FILE_FIELD not in w):
            return frozenset()
        return frozenset({"ttft_ms", "tpot_ms"} & set(w))

    @property
    def workload_label(self) -> str:
        """The workload in a few words: `chatbot`, `chatbot isl=4096`, `train seq=4096 gb=1024`."""
        w = dict(self.workload)

        def fmt(k: str) -> str:
            if w[k] is True:  # `grad_reduce_in_bf16`, kept only when true
                return k
            return f"{k}={w[k]:g}" if isinstance(w[k], float) else f"{k}={w[k]}"

        if self.kind == "training":
            return "train " + " ".join(fmt(k) for k in TRAINING_FIELDS if k in w)
        from_file = json.loads(w[FILE_CONTENT]).get("name") if FILE_CONTENT in w else None
        head = str(w.get("name") or w.get("preset") or from_file or "custom")
        # A TPOT limit on one-token outputs is dropped (`Serving.tpot_ms`): not named as if it held. The
        # output shape is the file's or the preset's, scaled to the row's osl (`one_token_outputs`).
        preset = PRESETS.get(str(w.get("preset")))
        base = json.loads(w[FILE_CONTENT]) if FILE_CONTENT in w else preset.model_dump() if preset else {}
        shape = {**base, **w}
        one_token = one_token_outputs(shape.get("osl"), shape.get("osl_cv"), shape.get("osl_quantiles"))
        shown = [k for k in SERVING_FIELDS if k in w and not (one_token and k == "tpot_ms")]
        return f"{head} {' '.join(fmt(k) for k in shown)}".strip()

    @property
    def label(self) -> str:
        """Readable one-line description."""
        engine = "" if self.engine == ENGINES[self.kind][0] else f" [{self.engine}]"
        mode = f" [disagg {self.disagg}]" if self.disagg is not None else ""
        return f"{self.model} on {self.cluster} | {self.workload_label} | {self.objective}{engine}{mode}"

    def training_options(self) -> TrainingOptions | None:
        """A training scenario's planner options: the framework (DeepSpeed keeps to the ZeRO stages it
        runs) and `grad_reduce_in_bf16` where the scenario sets it (Megatron's ZeRO 0-3, as `plan --train
        --grad-reduce-in-bf16` plans them); None for the planner's defaults (Megatron), and for serving.

        Raises:
            ValidationError: `grad_reduce_in_bf16` with DeepSpeed (`make_scenario` refuses it first).
        """
        if self.kind != "training":
            return None
        from autoparallel.solvers.training.space import TrainingOptions

        given: dict[str, Any] = {"framework": "deepspeed"} if self.engine == "deepspeed" else {}
        if dict(self.workload).get(GRAD_REDUCE):
            given[GRAD_REDUCE] = True
        return TrainingOptions(**given) if given else None

    def load_model(self) -> ModelSpec:
        """The model to plan: the caller's spec when it travelled as JSON, else loaded by name (once
        per process)."""
        if self.model_json:
            return _spec_from_json(self.model_json)
        name = self.model_path or self.model
        files = local_model_files(name)  # cached by the files' mtimes: an edited config loads again
        return _load_model(name, None if files is None else tuple(sorted(files.items())))

    def load_cluster(self) -> Cluster:
        """The cluster to plan on."""
        return (
            Cluster.model_validate_json(self.cluster_json)
            if self.cluster_json
            else Cluster.parse(self.cluster)
        )

    def to_workload(self) -> Serving | Training:
        """The workload object `autoparallel.solve` takes.

        Raises:
            InputError: a training workload without `seq_len` or `global_batch` (`REQUIRED_TRAINING`).
        """
        w = dict(self.workload)
        if self.kind == "training":
            w.pop(GRAD_REDUCE, None)  # the planner's option, not the workload's (`training_options`)
            missing = [k for k in REQUIRED_TRAINING if k not in w]
            if missing:
                # `Training(**w)` filled its API defaults (4096 / 1024) in silently: a row of `precision:
                # fp8` alone planned a job the user never described, where `plan --train` refuses it.
                raise InputError(
                    f"training workload {w}: missing {' and '.join(missing)} (a training scenario needs "
                    "both, as `plan --train` needs --seq-len and --global-batch)"
                )
            return Training(**w)
        preset = w.pop("preset", None)
        w.pop(FILE_FIELD, None)
        content = w.pop(FILE_CONTENT, None)
        if preset is None and content is None:  # made by hand: `make_workload` sets the base already
            preset = serving_base(k for k in w if k != "name").get("preset")
        if content is not None:
            base = Serving.model_validate(json.loads(content))
        else:
            base = Serving.preset(preset) if preset else Serving()
        name = w.pop("name", None) or (preset if preset and not w else None)
        if name is None:
            name = base.name if content is not None and not w else self.workload_label
        return base.with_updates({**w, "name": name})


def _same_number(value: Any) -> Any:
    """A whole float as the integer it equals (5.0 -> 5), so that a scenario id does not depend on how
    a number was written; anything else as it is."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return value


@functools.lru_cache(maxsize=1024)
def _cluster_key(text: str) -> str:
    """A cluster spec as `Cluster.parse` writes it back (the spec as given where it does not parse)."""
    try:
        return Cluster.parse(text).spec
    except InputError:
        return text


def _objective_key(name: str, kind: Literal["serving", "training"], disagg: bool = False) -> str:
    """An objective's registry name (aliases and case folded; the name as given where it is unknown)."""
    try:
        return scenario_objective(name, kind, disagg)
    except InputError:
        return name


def scenario_objective(name: object, kind: Literal["serving", "training"], disagg: bool = False) -> str:
    """The registry name of a scenario's objective: one of its kind's, or, for a `disagg` row, a
    deployment objective too (`objectives.DEPLOYMENT`: goodput, gpus, cost_per_mtok). A disagg row is
    `plan --disagg`'s comparison (`execute.disagg_columns`), which plans deployments: as `plan --disagg
    on --objective gpus` does, it takes the deployment planner's objectives, and a serving one as
    `objectives.deployment_objective` maps it (a serving name first: `cost` is $/hour at a rate).

    Raises:
        InputError: neither (the message lists the kind's objectives, and a disagg row's others).
    """
    try:
        return canonical(name, kind)
    except InputError as exc:
        if not disagg:
            raise
        try:
            return canonical(name, "deployment")
        except InputError:
            raise InputError(
                f"{exc}; a disagg scenario also takes a deployment objective ({', '.join(DEPLOYMENT)})"
            ) from None


@functools.lru_cache(maxsize=64)
def _load_model(name: str, files: tuple[tuple[str, str], ...] | None) -> ModelSpec:
    """`name` loaded once per process and per content of its local files (`files`, `local_model_files`;
    None for a zoo or hub id): a config edited between two sweeps of one Python session was planned
    from the copy cached before the edit."""
    from autoparallel.models import load_model

    return load_model(name)


@functools.lru_cache(maxsize=16)
def _spec_from_json(text: str) -> ModelSpec:
    return ModelSpec.model_validate_json(text)


def model_ref(model: str | ModelSpec) -> tuple[str, str | None]:
    """(name, JSON or None) of a scenario's model: a ModelSpec travels by name when the zoo gives the
    same spec for it (no network: a name outside the zoo always travels with its JSON).

    Raises:
        InputError: neither a string nor a ModelSpec.
    """
    if isinstance(model, str):
        return model.strip(), None
    if not isinstance(model, ModelSpec):
        raise InputError(f"a model must be an id, a path or a ModelSpec, got {type(model).__name__}")
    from autoparallel.models.zoo import find_entry

    if find_entry(model.name) is not None and _load_model(model.name, None) == model:
        return model.name, None
    return model.name, model.model_dump_json()


def local_model_files(model: str) -> dict[str, str] | None:
    """{file name: SHA-256} of the files `models.load_model` reads for `model` where it is a local path
    (a folder: its `config.json`, and the ModelOpt `hf_quant_config.json` beside it; a config file:
    that file and the quant file in its folder), else None (a zoo or hub id: its id unchanged).

    A scenario id hashes them, as it hashes a workload file's content: an edited config.json (28 ->
    112 layers) was the same scenario, and a resume gave back the old plan. A file that is missing or
    unreadable, or is not a regular file (a pipe, a device: never read here), counts by that state,
    so it becomes a new scenario once it is there. The same rule as `models.loader._load_str`: an
    existing path wins over a zoo entry of that name."""
    from autoparallel.models.hub import QUANT_CONFIG_FILE

    text = model.strip()
    if not text or len(text) > 4096 or "\0" in text:
        return None
    path = Path(text).expanduser()
    try:
        if not path.exists():
            return None
        folder = path.is_dir()
    except (OSError, ValueError):  # a name too long for a path
        return None
    config = path / "config.json" if folder else path
    quant = (path if folder else path.parent) / QUANT_CONFIG_FILE
    out = {"config": _file_digest(config)}
    if (digest := _file_digest(quant)) != "missing":
        out[QUANT_CONFIG_FILE] = digest
    return out


def _file_digest(path: Path) -> str:
    """SHA-256 of a regular file's bytes (up to one past the loader's cap, `MAX_CONFIG_BYTES`), or the
    reason there is none: `missing`, `not a file`, `unreadable: <reason>`. Cached by the file's
    identity and modification time (a 10,000-row sweep asks five times a row)."""
    import os
    import stat

    try:
        st = path.stat()
    except FileNotFoundError:
        return "missing"
    except (OSError, ValueError) as exc:
        return f"unreadable: {getattr(exc, 'strerror', None) or type(exc).__name__}"
    if not stat.S_ISREG(st.st_mode):
        return "not a file"
    return _regular_file_digest(os.fspath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _regular_file_digest(path: str, dev: int, ino: int, size: int, mtime_ns: int) -> str:
    from autoparallel.models.config_file import MAX_CONFIG_BYTES

    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        return f"unreadable: {exc.strerror or type(exc).__name__}"
    return hashlib.sha256(data).hexdigest()


def local_model_path(model: str) -> str | None:
    """The absolute path of a model named by a relative or `~` path that exists here (a local path wins
    over a zoo or hub id of the same text, as `models.loader._load_str` loads it), read from the
    current folder; None for an absolute path, a zoo or hub id, or a path that does not exist (its
    row says so wherever it runs). `Path.cwd() / path`, not normalised: `..` is the filesystem's."""
    text = model.strip()
    if not text or len(text) > 4096 or "\0" in text:
        return None
    path = Path(text).expanduser()
    try:
        if (path.is_absolute() and not text.startswith("~")) or not path.exists():
            return None
        return str(Path.cwd() / path)
    except (OSError, ValueError):  # a name too long for a path; a current folder that is gone
        return None


def cluster_ref(cluster: str | Cluster) -> tuple[str, str | None]:
    """(spec, JSON or None) of a scenario's cluster: a Cluster travels as its spec string when that
    parses back to it, else with its JSON too (custom GPUs, prices).

    Raises:
        InputError: neither a string nor a Cluster, or a string that does not parse.
    """
    if isinstance(cluster, str):
        text = cluster.strip()
        Cluster.parse(text)
        return text, None
    if not isinstance(cluster, Cluster):
        raise InputError(
            f"a cluster must be a spec string like '2x8xH100' or a Cluster, got {type(cluster).__name__}"
        )
    cluster = revalidated(cluster, "cluster")  # a pool copied to 9 H100s per node: an input error row
    try:
        same = Cluster.parse(cluster.spec) == cluster
    except InputError:  # a custom GPU the catalog does not know
        same = False
    return cluster.spec, None if same else cluster.model_dump_json()


_TEXT_SETTINGS = ("model", "cluster", "objective", "engine", "disagg")
TEXT_FIELDS = frozenset((*_TEXT_SETTINGS, "workload", "preset", FILE_FIELD, "name", "precision"))
"""Scenario keys whose values are text (names, paths, modes): a CSV cell of digits is kept as written and
a YAML number is its text (`_clean`). `name` 2024 was read as a number and refused ("Input should be a
valid string"); a `workload_file` cell 1.50 or 007 was read as the file 1.5 or 7; an engine 2024 was
"got int". (`kind` is checked as given: no number is a kind.)"""


def _text(value: Any) -> Any:
    """A text field's value: a YAML number as its text (`str`), anything else as it is."""
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


def _clean(value: Any, key: str = "") -> Any:
    """Blank CSV cells are unset; numeric text becomes a number, but in a text field (`TEXT_FIELDS`,
    where `key` is one) it stays the text it is and a number becomes its text."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if key in TEXT_FIELDS:
        value = _text(value)
        return value.strip() if isinstance(value, str) else value
    if isinstance(value, str):
        text = value.strip()
        for kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                pass
        return text
    return value


def make_workload(
    spec: str | Mapping[str, Any] | Serving | Training,
) -> tuple[Literal["serving", "training"], dict[str, Any]]:
    """(kind, fields) of a workload given as a preset name, a mapping, or a Serving / Training object
    (a Serving travels whole, as a workload file's content does, with its shape and SLO fields shown).

    Raises:
        InputError: unknown preset or field, serving and training fields mixed, a serving mapping that
            sets only `name`, or a bad value.
    """
    if isinstance(spec, str):
        if spec.lower() not in PRESETS:
            raise InputError(f"unknown workload {spec!r}; choose one of: {', '.join(PRESETS)}")
        return "serving", {"preset": spec.lower()}
    if isinstance(spec, Training):
        return "training", spec.model_dump(mode="json", exclude_none=True)
    if isinstance(spec, Serving):
        shown = {k: getattr(spec, k) for k in SERVING_FIELDS if getattr(spec, k) is not None}
        content = spec.model_dump(mode="json", exclude_defaults=True)
        text = json.dumps(content, sort_keys=True, separators=(",", ":"))
        return "serving", {**shown, "name": spec.name, FILE_CONTENT: text}
    if not isinstance(spec, Mapping):
        raise InputError(
            "a workload must be a preset name, a mapping of workload fields, Serving or Training, got "
            f"{type(spec).__name__}"
        )
    cleaned = {str(k): _clean(v, str(k)) for k, v in spec.items()}
    fields = {k: v for k, v in cleaned.items() if v is not None}
    nested = fields.pop("workload", None)
    if isinstance(nested, Serving | Training):
        if fields:
            raise InputError(
                f"a `workload:` object and workload fields beside it ({sorted(fields)[0]!r}): give one"
            )
        return make_workload(nested)
    if isinstance(nested, Mapping):
        # A scenario row's `workload: {isl: 4096, osl: 512}`, the grid's form, is its fields.
        if isinstance(nested.get("workload"), Mapping):
            raise InputError("a `workload:` mapping holds another `workload:` mapping; give its fields once")
        inner = make_workload(nested)[1]
        # Its file's content is read again below, from the `workload_file` it keeps: the internal
        # field was refused as an unknown one ("unknown workload field 'file_workload'").
        inner.pop(FILE_CONTENT, None)
        twice = sorted(set(inner) & set(fields))
        if twice:
            raise InputError(f"workload field {twice[0]!r} is given both inside `workload:` and beside it")
        fields.update(inner)
    elif nested is not None:
        fields["preset"] = nested
    allowed = {"preset", FILE_FIELD, "name", *SERVING_FIELDS, *TRAINING_FIELDS}
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise InputError(f"unknown workload field {unknown[0]!r}; known: {', '.join(sorted(allowed))}")
    training = sorted(set(fields) & set(TRAINING_FIELDS))
    serving = sorted(set(fields) & {"preset", FILE_FIELD, *SERVING_FIELDS})
    if training and serving:
        raise InputError(f"a workload mixes training fields {training} with serving fields {serving}")
    kind: Literal["serving", "training"] = "training" if training else "serving"
    name = str(fields.get("name", "")).lower()
    if kind == "serving" and name in PRESETS and "preset" not in fields and FILE_FIELD not in fields:
        # A preset's name names the preset, the row's fields over it, as `--workload rag --isl 1024`:
        # `{name: rag, isl: 1024}` planned 1024 / 256 tokens without rag's TTFT limit as "rag isl=1024".
        fields["preset"] = name
    if kind == "training":
        fields.pop("name", None)
        if GRAD_REDUCE in fields and not grad_reduce_in_bf16(fields[GRAD_REDUCE]):
            del fields[GRAD_REDUCE]  # the default: the same scenario as without it
        elif GRAD_REDUCE in fields:
            fields[GRAD_REDUCE] = True
    elif set(fields) == {"name"}:
        # A name labels a workload; alone it gave the unnamed defaults (no SLOs) under a preset-like
        # label, where a row without workload fields plans chatbot.
        raise InputError(
            f"workload {fields['name']!r} sets only a name; give it a preset (e.g. chatbot), a "
            "workload_file or serving fields"
        )
    elif "preset" in fields:
        fields["preset"] = str(fields["preset"]).lower()
        if fields["preset"] not in PRESETS:
            raise InputError(f"unknown workload {fields['preset']!r}; choose one of: {', '.join(PRESETS)}")
    elif FILE_FIELD not in fields:
        # `request_rate: 2` alone was a bare custom workload without chatbot's SLOs, where `plan
        # --request-rate 2` and `sweep --request-rate 2` keep them
        fields.update(serving_base(fields))
    if FILE_FIELD in fields:
        if "preset" in fields:
            raise InputError("a workload is a preset or a workload file, not both")
        from autoparallel.workload_profile import load_workload_file

        fields[FILE_FIELD] = str(fields[FILE_FIELD])
        served = load_workload_file(fields[FILE_FIELD])
        fields[FILE_CONTENT] = json.dumps(
            served.model_dump(mode="json", exclude_defaults=True), sort_keys=True, separators=(",", ":")
        )
    return kind, fields


def grad_reduce_in_bf16(value: object) -> bool:
    """A scenario's `grad_reduce_in_bf16` as `TrainingOptions` reads the option (true / false, yes / no,
    1 / 0: a CSV cell or a YAML boolean).

    Raises:
        InputError: a value that is no boolean.
    """
    from autoparallel.solvers.training.space import TrainingOptions

    try:
        return TrainingOptions(grad_reduce_in_bf16=value).grad_reduce_in_bf16
    except ValidationError as exc:
        raise InputError(first_error(exc)) from None


def make_scenario(
    model: str | ModelSpec,
    cluster: str | Cluster,
    workload: str | Mapping[str, Any] | Serving | Training = "chatbot",
    objective: str = "throughput",
    engine: str | None = None,
    disagg: str | bool | None = None,
) -> Scenario:
    """A validated scenario (cluster parsed, workload built, objective, engine and disagg checked); a
    ModelSpec or Cluster object travels with the scenario (`model_ref`, `cluster_ref`).

    Raises:
        InputError: anything the planner would refuse before solving.
    """
    kind, fields = make_workload(workload)
    model_name, model_json = model_ref(model)
    model_path = None if model_json else local_model_path(model_name)
    cluster, cluster_json = cluster_ref(cluster)
    # InputError naming the kind's objectives (and the other kinds'); a disagg row also takes the
    # deployment planner's (checked again below where the row is no comparison after all)
    objective = scenario_objective(objective, kind, disagg is not None and kind == "serving")
    if engine is not None and not isinstance(engine, str):
        raise InputError(f"an engine must be a name like 'vllm', got {type(engine).__name__}")
    engine = (engine or ENGINES[kind][0]).lower()
    if engine not in ENGINES[kind]:
        raise InputError(
            f"engine {engine!r} is not modelled for {kind}; choose from {', '.join(ENGINES[kind])}"
        )
    # YAML 1.1 reads a bare on / off as a boolean
    if isinstance(disagg, bool):
        disagg = "on" if disagg else "off"
    mode = None if disagg is None else str(disagg).strip().lower()
    if mode is not None and mode not in DISAGG_MODES:
        raise InputError(f"disagg {disagg!r}: expected one of {', '.join(DISAGG_MODES)}")
    if mode is not None and kind != "serving":
        raise InputError("disagg compares serving deployments; it does not apply to a training workload")
    if mode == "off" and engine != "vllm":
        mode = None  # no comparison asked for: the engine's own plan, as `plan --disagg off` gives it
    if mode is not None and engine != "vllm":
        raise InputError(
            f"disagg plans vLLM prefill/decode deployments; engine {engine!r} does not apply to it"
        )
    if mode is None:
        canonical(objective, kind)  # `disagg: off` under another engine: that engine's own plan
    scenario = Scenario(
        kind=kind,
        model=model_name,
        cluster=cluster,
        workload=tuple(sorted(fields.items())),
        objective=objective,
        engine=engine,
        disagg=mode,
        model_json=model_json,
        model_path=model_path,
        cluster_json=cluster_json,
    )
    try:
        scenario.to_workload()
    except ValidationError as exc:
        shown = {k: v for k, v in fields.items() if k != FILE_CONTENT}
        raise InputError(f"workload {shown}: {first_error(exc)}") from None
    if GRAD_REDUCE in fields:
        try:  # the options the row is planned with, refused as `plan` refuses them (DeepSpeed's)
            scenario.training_options()
        except ValidationError as exc:
            raise InputError(first_error(exc)) from None
    return scenario


def grid(
    models: Sequence[str | ModelSpec],
    clusters: Sequence[str | Cluster],
    workloads: Sequence[str | Mapping[str, Any] | Serving | Training] = ("chatbot",),
    objectives: Sequence[str] = ("throughput",),
    engines: Sequence[str | None] = (None,),
    disaggs: Sequence[str | bool | None] = (None,),
) -> list[Scenario]:
    """Every combination, in that nesting order (disagg modes innermost); engines of the other kind are
    skipped for a workload (so vllm and megatron can share one grid), and so are disagg modes for
    training workloads and, where the grid has Megatron too, DeepSpeed for a training workload with
    `grad_reduce_in_bf16` (Megatron's option; DeepSpeed reduces bf16 gradients already).

    Raises:
        InputError: an engine that is no kind's (`ENGINES`), disagg on an all-training grid, an empty
            or oversized grid, or an invalid scenario.
    """
    check_sweep_size(
        math.prod(map(len, (models, clusters, workloads, objectives, engines, disaggs))), "the grid"
    )
    kinds = {make_workload(w)[0] for w in workloads}
    if kinds == {"training"} and any(d is not None for d in disaggs):
        # `plan --train --disagg` and `pareto --train --disagg` refuse it too; a mixed grid skips it
        # for its training workloads.
        raise InputError("disagg applies to serving workloads; every workload of this sweep is training")
    out: list[Scenario] = []
    for m, c, w, o, e, d in itertools.product(models, clusters, workloads, objectives, engines, disaggs):
        kind, fields = make_workload(w)
        if d is not None and kind == "training":
            if None in disaggs or d != disaggs[0]:
                continue  # a training scenario once, without disagg
            d = None
        if e is not None and not isinstance(e, str):
            raise InputError(f"an engine must be a name like 'vllm', got {type(e).__name__}")
        if e is not None and not any(e.lower() in names for names in ENGINES.values()):
            raise InputError(
                f"unknown engine {e!r}; choose from {', '.join(n for v in ENGINES.values() for n in v)}"
            )
        if (
            e is not None
            and e.lower() not in ENGINES[kind]
            and any(isinstance(x, str) and x.lower() in ENGINES[kind] for x in engines)
        ):
            continue
        if (
            fields.get(GRAD_REDUCE)
            and (e or "").lower() == "deepspeed"
            and any(x is None or (isinstance(x, str) and x.lower() == "megatron") for x in engines)
        ):
            continue  # Megatron's option: its DeepSpeed row is the one without it
        out.append(make_scenario(m, c, w, o, e, d))
    if not out:
        raise InputError("the sweep is empty: give at least one model, cluster and workload")
    return out


def check_sweep_size(count: int, what: str) -> None:
    """Refuse a sweep of more than `MAX_SCENARIOS` scenarios before building them.

    Raises:
        InputError: `count` is above the limit.
    """
    if count > MAX_SCENARIOS:
        raise InputError(
            f"{what}: {count:,} scenarios; a sweep holds at most {MAX_SCENARIOS:,} "
            "(split it over several results files)"
        )


@dataclasses.dataclass(frozen=True)
class Hardware:
    """Custom GPU types and per-GPU prices that cluster specs are read with (`sweep --gpus-file`,
    `--price`, as `plan` takes them); a spec is read only when one is given, so a plain sweep's
    clusters stay strings (and its scenario ids unchanged)."""

    gpus: tuple[GPU, ...] = ()
    prices: Mapping[str, float] | None = None

    def cluster(self, spec: str) -> str | Cluster:
        """`spec` as a Cluster with these GPUs and the prices of its own GPUs (a sweep's clusters
        differ; `unpriced` names a price no cluster takes), or the spec itself when there are none.

        Raises:
            InputError: the spec does not parse, or a price names an unknown GPU."""
        if not self.gpus and not self.prices:
            return spec
        cluster = Cluster.parse(spec.strip(), gpus=self.gpus)
        ours = {
            n: v for n, v in (self.prices or {}).items() if self._gpu(n, cluster) in cluster_gpus(cluster)
        }
        return cluster.with_prices(ours, self.gpus) if ours else cluster

    @classmethod
    def of(
        cls, gpus: Iterable[GPU] | str | Path = (), prices: Mapping[str, float] | str | None = None
    ) -> Hardware:
        """From `sweep`'s arguments: custom GPUs (GPU objects or a GPU file's path) and prices (a mapping
        or "H100=2.49,A100=1.2").

        Raises:
            InputError: an unreadable GPU file, a malformed price or a GPU that is not a GPU."""
        made = GPU.from_file(gpus) if isinstance(gpus, (str, Path)) else tuple(gpus)
        if any(not isinstance(g, GPU) for g in made):
            raise InputError("gpus must be GPU objects or a GPU file's path")
        if isinstance(prices, str):
            prices = parse_prices(prices)
        elif prices is not None and not isinstance(prices, Mapping):
            raise InputError(f"prices must be a mapping or 'GPU=USD,...', got {type(prices).__name__}")
        return cls(made, dict(prices) if prices is not None else None)

    def check_used(self, scenarios: Iterable[Scenario]) -> None:
        """Refuse a price that names a GPU no scenario's cluster has (a typo, or a GPU swept nowhere).

        Raises:
            InputError: naming the first such price."""
        if not self.prices:
            return
        names = {g for s in scenarios for g in cluster_gpus(s.load_cluster())}
        unused = [n for n in self.prices if self._gpu(n, None) not in names]
        if unused:
            raise InputError(f"price {unused[0]}: no cluster of the sweep has that GPU")

    def _gpu(self, name: str, cluster: Cluster | None) -> str:
        extra = (*self.gpus, *(p.gpu for p in cluster.pools)) if cluster is not None else self.gpus
        return lookup_gpu(name, extra).name


def gpu_prices(cluster: Cluster) -> str:
    """US$ per GPU-hour of a cluster's GPUs, `H100-SXM=5;A100-SXM-80G=1.2` (a results row's
    `gpu_prices`: two sweeps at two prices give rows otherwise alike)."""
    prices = {pool.gpu.name: pool.gpu.usd_per_hour for pool in cluster.pools}
    return ";".join(f"{name}={price:g}" for name, price in prices.items())


def cluster_gpus(cluster: Cluster) -> set[str]:
    """The GPU names of a cluster's pools."""
    return {pool.gpu.name for pool in cluster.pools}


ROW_SETTINGS = ("model", "cluster", "objective", "engine", "kind", "disagg")
"""The keys of a scenario row that are not workload fields."""
KINDS = ("serving", "training")
"""`kind` values of a scenario row."""


def from_rows(
    rows: Iterable[Mapping[str, Any]], where: str, first: int = 1, hardware: Hardware | None = None
) -> list[Scenario]:
    """Scenarios from row mappings (CSV rows, YAML list items); `where` names the source in errors,
    whose scenarios are numbered from `first`. Blank cells are unset; a row without workload fields
    plans chatbot (serving), and one with serving fields but no preset, workload file, `isl` or `osl`
    adjusts chatbot (`serving_base`, as `plan` and `sweep`'s flags read them); `kind`, when set, must
    be the kind its workload fields make.
    `hardware`: custom GPUs and prices a row's cluster spec is read with (`Hardware.cluster`).

    Raises:
        InputError: not a mapping, an unknown column, a list or mapping where one value goes (as the
            grid's `_names` refuses), no model or cluster, an unknown `kind` or one its fields
            contradict, or an invalid scenario.
    """
    out = []
    for n, row in enumerate(rows, first):
        if not isinstance(row, Mapping):
            raise InputError(f"{where}: scenario {n} is not a mapping")
        unknown = [k for k in row if k not in SCENARIO_COLUMNS]
        if unknown:
            raise InputError(
                f"{where}: unknown column {unknown[0]!r} (scenario {n}); known: {', '.join(SCENARIO_COLUMNS)}"
            )
        values = {k: _clean(v, k) for k, v in row.items()}
        for key, value in values.items():
            # `str()` of a list was planned as a model id; only `workload` holds a mapping
            if key != "workload" and isinstance(value, (list, tuple, set, frozenset, Mapping)):
                raise InputError(
                    f"{where}: scenario {n}: {key} holds a {type(value).__name__}; give one value"
                )
        for key in ("model", "cluster"):
            if values.get(key) is None:
                raise InputError(f"{where}: scenario {n} has no {key}")
        kind = values.get("kind")
        if kind is not None:
            if not isinstance(kind, str) or kind.lower() not in KINDS:
                raise InputError(f"{where}: scenario {n}: kind {kind!r}: expected one of {', '.join(KINDS)}")
            kind = kind.lower()
        wl = {k: v for k, v in values.items() if k not in ROW_SETTINGS and v is not None}
        try:
            if not wl:
                if kind == "training":
                    raise InputError(f"kind 'training' needs training fields ({', '.join(TRAINING_FIELDS)})")
                wl = serving_base(wl)
            elif kind is not None:
                made, fields = make_workload(wl)
                if made != kind:
                    theirs = (
                        TRAINING_FIELDS if made == "training" else ("preset", FILE_FIELD, *SERVING_FIELDS)
                    )
                    field = next((k for k in theirs if k in fields), "workload")
                    raise InputError(f"kind {kind!r} contradicts {made} field {field!r}")
            out.append(
                make_scenario(
                    values["model"] if isinstance(values["model"], ModelSpec) else str(values["model"]),
                    values["cluster"]
                    if isinstance(values["cluster"], Cluster)
                    else (hardware or Hardware()).cluster(str(values["cluster"])),
                    wl,
                    str(values.get("objective") or "throughput"),
                    values.get("engine"),
                    values.get("disagg"),
                )
            )
        except InputError as exc:
            raise InputError(f"{where}: scenario {n}: {exc}") from None
    return out


def _as_list(value: Any, key: str, where: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (str, Mapping)):
        return [value]
    if isinstance(value, list):
        return value
    raise InputError(f"{where}: grid.{key} must be a list, got {type(value).__name__}")


def _names(values: list[Any], key: str, where: str) -> list[str]:
    """A grid list of names (models, clusters, objectives, engines): each one a scalar, not a list or a
    mapping (`str()` of a list was planned as a model id)."""
    for v in values:
        if isinstance(v, (list, dict)):
            raise InputError(f"{where}: grid.{key} holds a {type(v).__name__}; give names")
    return [str(v) for v in values]


def _anchored(obj: Any, base: Path) -> Any:
    """`obj` with every relative `workload_file` read from the scenario file's folder (as a fleet
    file's are), not from wherever `sweep` runs, and every model (a row's `model`, the grid's
    `models`) that is a relative path too (`_anchored_model`)."""
    if isinstance(obj, list):
        return [_anchored(v, base) for v in obj]
    if not isinstance(obj, Mapping):
        return obj
    out = {k: _anchored(v, base) for k, v in obj.items()}
    for key in (FILE_FIELD, "model"):  # a YAML number is a path's text (`_text`), read from here too
        if key in out:
            out[key] = _text(out[key])
    value = out.get(FILE_FIELD)
    if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
        out[FILE_FIELD] = str(base / value)
    if isinstance(out.get("model"), str):
        out["model"] = _anchored_model(out["model"], base)
    models = out.get("models")
    if isinstance(models, str):
        out["models"] = _anchored_model(models, base)
    elif isinstance(models, list):
        out["models"] = [_anchored_model(m, base) if isinstance(m, str) else m for m in models]
    return out


def _anchored_model(model: str, base: Path) -> str:
    """A scenario file's model read from the file's folder `base` where it is a relative path: it
    starts with `./` or `../`, or names something that exists in that folder (a local path wins over
    a zoo or hub id, as `models.loader._load_str` loads it). A hub or zoo id, an absolute or `~` path,
    and any model of a file in the current folder stay as written (the scenario id unchanged)."""
    text = model.strip()
    if not text or base == Path(".") or "\0" in text:
        return model
    path = Path(text).expanduser()
    if path.is_absolute() or text.startswith("~"):
        return model
    if text in (".", "..") or text.startswith(("./", "../")):
        return str(base / text)
    try:
        exists = (base / path).exists()
    except (OSError, ValueError):  # a name too long for a path
        exists = False
    return str(base / text) if exists else model


def load_scenarios(path: str | Path, hardware: Hardware | None = None) -> list[Scenario]:
    """Scenarios from a YAML (.yaml/.yml) or CSV (.csv) file; `hardware`: custom GPUs and prices its
    cluster specs are read with (`sweep --gpus-file / --price`).

    Raises:
        InputError: missing or malformed file, unknown key or column, invalid scenario.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".csv":
        data = read_capped(p, "scenario file", MAX_SCENARIO_FILE_BYTES)
        try:
            reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline=""))
            header = reader.fieldnames or []
            rows = list(reader)
        except (UnicodeDecodeError, csv.Error) as exc:
            raise InputError(f"{p}: cannot read CSV: {exc}") from None
        twice = sorted({h for h in header if header.count(h) > 1})
        if twice:
            raise InputError(f"{p}: column {twice[0]!r} appears twice in the header")
        if not rows:
            raise InputError(f"{p}: no scenarios (a header row and one row per scenario)")
        if any(None in r for r in rows):
            raise InputError(f"{p}: a row has more cells than the header")
        check_sweep_size(len(rows), str(p))
        return from_rows(_anchored(rows, p.parent), str(p), hardware=hardware)
    if suffix not in (".yaml", ".yml"):
        raise InputError(f"{p}: scenario files are .yaml, .yml or .csv")
    doc = _anchored(read_yaml(p, "scenario file", MAX_SCENARIO_FILE_BYTES), p.parent)
    if isinstance(doc, list):
        doc = {"scenarios": doc}
    if not isinstance(doc, dict):
        raise InputError(f"{p}: expected a mapping with `grid:` and/or `scenarios:`, or a list of scenarios")
    unknown = sorted(set(doc) - {"grid", "scenarios"})
    if unknown:
        raise InputError(f"{p}: unknown key {unknown[0]!r}; expected `grid:` and/or `scenarios:`")
    out: list[Scenario] = []
    if doc.get("grid") is not None:
        g = doc["grid"]
        if not isinstance(g, dict):
            raise InputError(f"{p}: grid must be a mapping")
        keys = ("models", "clusters", "workloads", "objectives", "engines", "disagg")
        bad = sorted(set(g) - set(keys))
        if bad:
            raise InputError(f"{p}: unknown grid key {bad[0]!r}; known: {', '.join(keys)}")
        lists = {k: _as_list(g.get(k), k, str(p)) for k in keys}
        try:
            out += grid(
                _names(lists["models"], "models", str(p)),
                [(hardware or Hardware()).cluster(c) for c in _names(lists["clusters"], "clusters", str(p))],
                lists["workloads"] or ["chatbot"],
                _names(lists["objectives"], "objectives", str(p)) or ["throughput"],
                list(_names(lists["engines"], "engines", str(p))) or [None],
                lists["disagg"] or [None],
            )
        except InputError as exc:
            raise InputError(f"{p}: grid: {exc}") from None
    if doc.get("scenarios") is not None:
        if not isinstance(doc["scenarios"], list):
            raise InputError(f"{p}: scenarios must be a list")
        check_sweep_size(len(out) + len(doc["scenarios"]), str(p))
        out += from_rows(doc["scenarios"], str(p), hardware=hardware)
    if not out:
        raise InputError(f"{p}: no scenarios")
    return out
