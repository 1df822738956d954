"""Fuzz the `autoparallel` command line in-process: generated argv lists, counted by outcome.

Run: `uv run python benchmarks/fuzz.py [--inputs 10000] [--seed 0] [--jobs 2]`.

Each input is an argv list built from a vocabulary of valid, odd and hostile pieces (zoo ids, junk ids,
hostile config, workload and request-log files written to a temporary folder, cluster strings, flags
with in-range, boundary and absurd values, flags of the other mode; training fronts, `pareto --train`,
with a few points and a short limit, since each query has the whole limit). It runs through
`autoparallel.cli.main` in this process, with HF_HUB_OFFLINE=1, and is classified:

    exit 0 / 1 / 2 / 130    the documented outcomes (2 includes argparse usage errors)
    exit 3                  an internal error (a bug, reported as one line)
    traceback               an exception escaping `main`, or "Traceback" on stderr
    slow                    wall time over 10 s (a hang counts here: the input is abandoned after 60 s)
    rejected                exit 0, but the output fails the package's own checks: strict JSON, the
                            validation layer (`serving_problems` / `training_problems`), Megatron's
                            consistency check on the emitted arguments, DeepSpeed's batch identity

The acceptance bar (issue 13): 0 tracebacks, 0 slow, 0 rejected, over >= 10,000 inputs.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

os.environ["HF_HUB_OFFLINE"] = "1"

SLOW_S = 10.0
"""An input slower than this is counted as slow (the bar is none)."""
ABANDON_S = 60.0
"""An input still running after this is abandoned (a hang)."""

ZOO = (
    "meta-llama/Llama-3.2-1B",
    "meta-llama/Llama-3.1-8B-Instruct",
    "Qwen/Qwen3-30B-A3B",
    "mistralai/Mixtral-8x7B-v0.1",
    "google/gemma-2-9b",
    "deepseek-ai/DeepSeek-V3.2",
)
JUNK_IDS = ("", " ", "x" * 5000, "no-such/model", "../../etc/passwd", "llama🚀", "-", "a/b/c/d", "\x1b[2J")
CLUSTERS = (
    "1xH100",
    "1x2xH100",
    "1x8xH100",
    "2x8xH100",
    "3x8xH100",
    "1x8xA100",
    "1x4xL4",
    "1xL40S",
    "4x8xH200",
    "16xH200,ib=400",
    "2x8xH100,ib=100,nvlink=300",
    "0xH100",
    "-1x8xH100",
    "1x0xH100",
    "1x8xFOO",
    "",
    "x",
    "1x8xH100,ib=nan",
    "1x8xH100,ib=0",
    "1x8xH100,ib=1e-300",
    "1x8xH100,nvlink=1e-12",
    "99999999x8xH100",
    "1x8xH100,foo=1",
    "1x8xH100;2x8xA100",
    "1x8xH100🚀",
    "512x8xH100",
    "4x8xH100+4x8xA100-80G",
    "32x8xH100+32x8xH200",
)
NUMBERS = (
    "1",
    "2",
    "3",
    "4",
    "8",
    "0",
    "-5",
    "7",
    "64",
    "1000",
    "1e300",
    "nan",
    "inf",
    "abc",
    "",
    "99999999999999999999",
    "4095",
    "4096",
    "131072",
    "1000000000",
    "0.5",
    "1.5",
)
SERVING_FLAGS = ("--isl", "--osl", "--concurrency", "--request-rate", "--ttft-ms", "--tpot-ms")
TRAINING_FLAGS = ("--seq-len", "--global-batch", "--tokens")
PLAN_ONLY = ("--top", "--time-limit", "--workers", "--seed", "--max-model-len")
REPLAY_FLAGS = ("--num-prompts", "--burstiness")
EVAL_FLAGS = (
    "--tp",
    "--pp",
    "--dp",
    "--cp",
    "--ep",
    "--vp",
    "--micro-batch",
    "--max-num-seqs",
    "--max-model-len",
    "--max-num-batched-tokens",
    "--gpu-memory-utilization",
)
CHOICES: dict[str, tuple[str, ...]] = {
    "--workload": ("chatbot", "batch", "rag", "long-context", "reasoning", "nope"),
    "--objective": ("throughput", "ttft", "tpot", "cost", "headroom", "mfu"),
    "--precision": ("bf16", "fp8", "fp4"),
    "--zero": ("0", "1", "2", "3", "dist"),
    "--recompute": ("none", "selective", "full"),
    "--kv-cache-dtype": ("auto", "fp8", "int2", "auto,fp8"),
    "--quantization": ("fp8", "none", "awq", "bogus"),
    "--objectives": (
        "throughput,tpot",
        "ttft,cost",
        "throughput",
        "throughput,headroom",
        "a,b,c",
        "memory,throughput",
        "mfu,cost",
        "throughput,mfu,headroom",
    ),
    "--engine": ("vllm", "sglang", "trtllm", "auto", "megatron", "deepspeed"),
    "--nsa-prefill-backend": ("fa3", "flashmla_auto", "tilelang"),
    "--nsa-decode-backend": ("flashmla_kv", "flashmla_auto", "fa3"),
    "--cp-comm-type": ("p2p", "a2a"),
}
SWITCHES = ("--json", "--train", "--enable-expert-parallel", "--enforce-eager", "--grad-reduce-in-bf16")
"""Flags that take no value."""


def hostile_configs(folder: Path) -> list[str]:
    """Config files a hostile or careless user might pass, written under `folder`; their paths."""
    from autoparallel.models.zoo import find_entry

    base: dict[str, Any] = dict(find_entry("meta-llama/Llama-3.2-1B").config)  # type: ignore[union-attr]
    texts: dict[str, bytes] = {
        "ok": json.dumps(base).encode(),
        "nan": json.dumps({**base, "hidden_size": float("nan")}).encode(),
        "inf": json.dumps({**base, "rope_theta": float("inf")}).encode(),
        "bigint": (json.dumps(base)[:-1] + ', "vocab_size": ' + "9" * 5000 + "}").encode(),
        "deep": ("[" * 100_000 + "]" * 100_000).encode(),
        "utf16": json.dumps(base).encode("utf-16"),
        "latin1": json.dumps({**base, "_name_or_path": "café"}, ensure_ascii=False).encode("latin-1"),
        "layers": json.dumps({**base, "num_hidden_layers": 1_000_000_000}).encode(),
        "kvheads": json.dumps({**base, "num_key_value_heads": 64}).encode(),
        "kvdivide": json.dumps({**base, "num_key_value_heads": 5}).encode(),
        "escape": json.dumps({**base, "_name_or_path": "evil\x1b[2J\x1b]0;x\x07"}).encode(),
        "empty": b"",
        "list": b"[1, 2]",
        "noise": bytes(range(256)),
        "strings": json.dumps({k: "x" for k in base}).encode(),
        "negative": json.dumps({**base, "intermediate_size": -8192}).encode(),
        "zero_heads": json.dumps({**base, "num_attention_heads": 0}).encode(),
        "moe_topk": json.dumps(
            {**base, "model_type": "mixtral", "num_local_experts": 8, "num_experts_per_tok": 100}
        ).encode(),
        # workload files (`--workload-file`) and request logs (`profile`)
        "workload": json.dumps(
            {"serving": {"isl": 220, "osl": 200, "num_prompts": 300, "osl_quantiles": [4, 50, 180, 900]}}
        ).encode(),
        "workload_decreasing": json.dumps(
            {"serving": {"isl": 220, "osl": 200, "isl_quantiles": [9, 3]}}
        ).encode(),
        "workload_huge": json.dumps(
            {"serving": {"isl": 220, "osl": 200, "osl_quantiles": [1] * 200_000}}
        ).encode(),
        "workload_types": json.dumps({"serving": {"isl": "many", "osl_quantiles": "short"}}).encode(),
        "workload_both": json.dumps({"serving": {"osl_cv": 1.0, "osl_quantiles": [1, 2]}}).encode(),
        "workload_bool": json.dumps({"serving": {"isl": True, "osl": 200, "num_prompts": False}}).encode(),
        "log": "\n".join(
            json.dumps({"timestamp": 0.1 * i, "prompt_tokens": 100 + i, "completion_tokens": 1 + i % 50})
            for i in range(400)
        ).encode(),
        "log_mixed": b'{"prompt_tokens": 5, "completion_tokens": 3}\n\xff\xfe\n{"isl": -1}\n[]\n{"t": "x"}\n',
        "log_units": b'{"prompt_tokens": 5, "output_tokens": 3, "ts": 1733400000123}\n'
        b'{"prompt_tokens": 5, "output_tokens": 3, "ts": "inf"}\n'
        b'{"prompt_tokens": 5, "output_tokens": 3, "ts": 1733400000623}\n',
        # YAML files (`--fleet`, `--gpus-file`): booleans where numbers go (YAML's yes / on), nesting
        # past the parser's stack, an alias bomb
        "bool_yaml": (
            b"models:\n  - model: meta-llama/Llama-3.2-1B\n    request_rate: yes\n"
            b"gpus:\n  - name: XG\n    base: H100\n    memory_gib: on\n"
        ),
        # a fleet of large models for large and mixed clusters (every planner's tables count in
        # --time-limit), two of them under a concurrency cap
        "fleet_large_yaml": (
            b"models:\n  - {model: deepseek-ai/DeepSeek-V3, request_rate: 20, isl: 2048, osl: 512}\n"
            b"  - {model: Qwen/Qwen3-235B-A22B, request_rate: 30}\n"
            b"  - {model: meta-llama/Llama-3.1-70B, request_rate: 50, isl: 1024, osl: 256}\n"
            b"  - {model: Qwen/Qwen3-30B-A3B, request_rate: 100, concurrency: 256}\n"
            b"  - {model: meta-llama/Llama-3.2-1B, concurrency: 3}\n"
        ),
        "deep_yaml": ("models: " + "[" * 5000 + "]" * 5000).encode(),
        "alias_yaml": (
            "a0: &a0 [x, x, x, x, x, x, x, x, x]\n"
            + "".join(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]\n" for i in range(1, 20))
            + "models: *a19\ngpus: *a19\n"
        ).encode(),
    }
    paths = []
    for name, data in texts.items():
        path = folder / f"{name}.json"
        path.write_bytes(data)
        paths.append(str(path))
    # Files that are not files: a device that never ends (stat() says 0 bytes), a named pipe nobody
    # writes to, a directory.
    if Path("/dev/zero").exists():
        paths.append("/dev/zero")
    if hasattr(os, "mkfifo"):
        if not (folder / "fifo.json").exists():  # every process of a run writes the same folder
            os.mkfifo(folder / "fifo.json")
        paths.append(str(folder / "fifo.json"))
    paths.append(str(folder))
    return paths


def _output(rng: random.Random, configs: list[str], suffix: str) -> str:
    """An output path: a fresh file, a directory of that name, a missing folder or a full disk."""
    folder = Path(configs[0]).parent
    taken = folder / f"taken{suffix}"
    taken.mkdir(exist_ok=True)
    return str(
        rng.choice(
            (
                folder / f"out{rng.randint(0, 9)}{suffix}",
                taken,
                folder / "missing" / f"x{suffix}",
                Path("/dev/full"),
            )
        )
    )


def generate(rng: random.Random, configs: list[str]) -> list[str]:
    """One argv list."""
    command = rng.choices(
        ("plan", "evaluate", "pareto", "sweep", "memory", "model", "models", "gpus", "junk", "profile"),
        weights=(30, 30, 4, 2, 12, 10, 1, 1, 2, 3),
    )[0]
    model = rng.choice(ZOO) if rng.random() < 0.7 else rng.choice((*JUNK_IDS, *configs))
    if command == "junk":
        return [rng.choice(("", "plan", "--help-me", "\x00", "évaluer")), *rng.sample(NUMBERS, 2)]
    if command == "profile":
        out = ["-o", _output(rng, configs, ".json")] if rng.random() < 0.3 else []
        return ["profile", rng.choice(configs), *out, *(["--json"] if rng.random() < 0.5 else [])]
    if command in ("models", "gpus"):
        return [command, *(["--json"] if rng.random() < 0.5 else [])]
    if command == "model":
        return ["model", model, *(["--json"] if rng.random() < 0.5 else [])]
    if command == "memory":
        argv = ["memory", model, "--gpu", rng.choice(("H100", "A100", "L4", "NOPE", ""))]
        for flag in rng.sample(
            ("--tp", "--pp", "--dp", "--max-model-len", "--max-num-seqs", "--gpu-memory-utilization"),
            rng.randint(0, 3),
        ):
            argv += [flag, rng.choice(NUMBERS)]
        return [*argv, *(["--json"] if rng.random() < 0.5 else [])]
    if command == "sweep":
        return [
            "sweep",
            "--models",
            ",".join(rng.sample(ZOO, 2)),
            "--clusters",
            rng.choice(CLUSTERS[:6]),
            "--workloads",
            rng.choice(("chatbot", "chatbot,batch", "nope", "")),
        ]
    cluster = rng.choice(CLUSTERS) if rng.random() < 0.3 else rng.choice(CLUSTERS[:7])
    if command == "plan" and rng.random() < 0.03:  # a fleet of large models on a large or mixed cluster
        fleet = next(c for c in configs if c.endswith("fleet_large_yaml.json"))
        engine = rng.choice(CHOICES["--engine"])
        return [
            "plan",
            "--fleet",
            fleet,
            "--cluster",
            rng.choice(CLUSTERS[-3:]),
            "--engine",
            engine,
            "--time-limit",
            rng.choice(("1", "5")),
            *(["--json"] if rng.random() < 0.5 else []),
        ]
    argv = [command, model, "--cluster", cluster]
    train = rng.random() < 0.4
    if train:
        argv += [
            "--train",
            "--seq-len",
            rng.choice(("2048", "4096", "4095", "8192")),
            "--global-batch",
            rng.choice(("8", "64", "48", "256")),
        ]
    pool = [*SERVING_FLAGS, *TRAINING_FLAGS, "--workload", "--precision"]
    if command == "plan":
        pool += [*PLAN_ONLY, *REPLAY_FLAGS, "--objective", "--engine", "--grad-reduce-in-bf16"]
    elif command == "evaluate":
        pool += [*EVAL_FLAGS, *REPLAY_FLAGS, "--zero", "--recompute", "--kv-cache-dtype", "--engine"]
        pool += ["--cp-comm-type"]
        pool += ["--nsa-prefill-backend", "--nsa-decode-backend"]
    elif train:  # a training front: mostly valid, so that its queries run
        pool = [*TRAINING_FLAGS, "--precision", "--objectives", "--engine", "--grad-reduce-in-bf16"]
    else:
        pool += ["--objectives"]
    for flag in rng.sample(pool, min(len(pool), rng.choice((0, 0, 1, 1, 2, 3)))):
        if flag in ("--train", "--seq-len", "--global-batch") and train:
            continue
        if flag in SWITCHES:
            argv.append(flag)
            continue
        argv += [flag, rng.choice(CHOICES[flag]) if flag in CHOICES else _number(rng, flag)]
    if rng.random() < 0.1:
        argv += ["--workload-file", rng.choice(configs)]
    if command == "plan" and rng.random() < 0.05:
        argv += [rng.choice(("--gpus-file", "--fleet")), rng.choice(configs)]
    if command == "plan" and rng.random() < 0.05:
        argv += ["--plan-file", _output(rng, configs, ".yaml")]
    if command == "pareto" and train:  # a training front's queries: a few points of a short limit each
        argv += ["--points", rng.choice(("1", "3", "5", "0")), "--time-limit", rng.choice(("1", "2"))]
    if command == "pareto" and rng.random() < 0.3:
        flag, suffix = rng.choice((("--out", ".csv"), ("--out", ".parquet"), ("--plot", ".png")))
        argv += [flag, _output(rng, configs, suffix)]
    if command == "plan" and "--time-limit" not in argv:
        argv += ["--time-limit", "5"]
    if rng.random() < 0.8:
        argv.append("--json")
    return argv


def _number(rng: random.Random, flag: str) -> str:
    """Mostly sensible values for the flag, sometimes hostile ones."""
    sensible = {
        "--tp": ("1", "2", "4", "8"),
        "--pp": ("1", "2"),
        "--dp": ("1", "2", "8"),
        "--cp": ("1", "2"),
        "--ep": ("1", "2", "8"),
        "--top": ("1", "2", "3"),
        "--time-limit": ("2", "5"),
        "--workers": ("1", "2"),
        "--seed": ("0", "1", "42"),
        "--isl": ("128", "1024", "4096"),
        "--osl": ("64", "256"),
        "--max-model-len": ("2048", "8192"),
        "--num-prompts": ("10", "200", "1000"),
        "--burstiness": ("0.5", "1", "2"),
        "--request-rate": ("0.5", "5", "50"),
    }
    if flag in sensible and rng.random() < 0.6:
        return rng.choice(sensible[flag])
    return rng.choice(NUMBERS)


# ----- running and checking ----------------------------------------------------------------------------
class _Abandoned(BaseException):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise _Abandoned


def run_one(argv: list[str]) -> tuple[str, float, str]:
    """(outcome, seconds, detail) of one input through `autoparallel.cli.main`."""
    from autoparallel.cli import main

    out, err = io.StringIO(), io.StringIO()
    start = time.perf_counter()
    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, ABANDON_S)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc: Any = main(argv)
            except SystemExit as exc:
                rc = exc.code if isinstance(exc.code, int) else 2
    except _Abandoned:
        return "slow", time.perf_counter() - start, "abandoned after 60 s"
    except BaseException as exc:
        return "traceback", time.perf_counter() - start, f"{type(exc).__name__}: {exc}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    wall = time.perf_counter() - start
    if "Traceback" in err.getvalue():
        return "traceback", wall, err.getvalue()[-300:]
    if wall > SLOW_S:
        return "slow", wall, f"{wall:.1f} s"
    if rc == 0:
        try:
            problems = check_output(argv, out.getvalue())
        except Exception as exc:  # the output does not even rebuild into the package's own types
            problems = [f"checker could not rebuild the output: {type(exc).__name__}: {exc}"]
        if problems:
            return "rejected", wall, "; ".join(problems)
    detail = err.getvalue().strip().splitlines()[0] if err.getvalue().strip() else ""
    return f"exit {rc}", wall, detail


def check_output(argv: list[str], stdout: str) -> list[str]:
    """Why an exit-0 output fails the package's own checks (empty: it passes)."""
    if "--json" not in argv:
        return [] if stdout.strip() or argv[0] in ("models", "gpus") else ["empty output"]
    try:
        data = json.loads(stdout, parse_constant=lambda name: (_ for _ in ()).throw(ValueError(name)))
    except ValueError as exc:
        return [f"not strict JSON: {exc}"]
    if argv[0] not in ("plan", "evaluate") or not isinstance(data, dict):
        return []
    if "config" not in data and "deployment" in data:  # a fleet or a mixed-pool cluster
        return _check_deployment(data)
    plans = [data, *data.get("alternatives", [])]
    return [p for plan in plans for p in _check_plan(argv, plan)]


def _check_plan(argv: list[str], plan: dict[str, Any]) -> list[str]:
    from autoparallel.configs import ServingConfig, TrainingConfig
    from autoparallel.frameworks.megatron import check_megatron_consistency
    from autoparallel.hardware import Cluster
    from autoparallel.models import load_model
    from autoparallel.validation import serving_problems, training_problems
    from autoparallel.workload import Serving

    model = load_model(argv[1])
    cluster = Cluster.parse(argv[argv.index("--cluster") + 1])
    if "--train" in argv:
        fields = {k: v for k, v in plan["config"].items() if k in TrainingConfig.model_fields}
        config = TrainingConfig(**fields)
        problems = training_problems(model, cluster, config)
        args = plan["megatron"]["args"]
        if isinstance(args, list):
            problems += check_megatron_consistency(args, model, cluster, world_size=config.world_size)
        ds = plan["deepspeed"]["config"]
        if "deepspeed" in argv and "unavailable" in ds:
            problems.append(f"a DeepSpeed plan DeepSpeed cannot run: {ds['unavailable']}")
        if isinstance(ds, dict) and "train_batch_size" in ds:
            identity = ds["train_micro_batch_size_per_gpu"] * ds["gradient_accumulation_steps"] * config.dp
            if identity != ds["train_batch_size"] or ds["train_batch_size"] != config.global_batch:
                problems.append(f"DeepSpeed batch identity broken: {ds}")
        return problems
    serving = ServingConfig(**{k: v for k, v in plan["config"].items() if k in ServingConfig.model_fields})
    workload = Serving(**plan["workload"])
    problems = serving_problems(model, cluster, serving, workload)
    if "vllm" not in plan:  # an SGLang / TensorRT-LLM evaluation: its launch line, no vLLM arguments
        return problems
    vargs = plan["vllm"]["args"]
    if vargs["max_model_len"] < workload.isl + workload.osl:
        problems.append(f"vllm max_model_len {vargs['max_model_len']} below the request")
    return problems


def _check_deployment(data: dict[str, Any]) -> list[str]:
    """A deployment's engines: each replica's configuration valid for its model on its pool, no GPU
    given twice, the GPUs used as counted. A disaggregated winner (`Comparison.deployment_dict`) lists
    no `engines` but `prefill` and `decode` engines: their GPUs and placements count alike (their JSON
    carries no full ServingConfig, so their configurations are not rebuilt)."""
    from autoparallel.configs import ServingConfig
    from autoparallel.hardware import Cluster
    from autoparallel.models import load_model
    from autoparallel.validation import serving_problems

    cluster = Cluster.parse(data["cluster"])
    problems: list[str] = []
    taken: set[tuple[int, int, int]] = set()
    used = 0
    deployment = data["deployment"]
    roles = [e for role in ("prefill", "decode") for e in deployment.get(role, [])]
    for e in [*deployment["engines"], *roles]:
        if "role" not in e:
            fields = {k: v for k, v in e.items() if k in ServingConfig.model_fields and k != "replicas"}
            config = ServingConfig(**fields, enable_expert_parallel=e["ep"] > 1)
            problems += serving_problems(load_model(e["model"]), cluster.pool_cluster(e["pool"]), config)
        if len(e["placement"]) != e["replicas"]:
            problems.append(f"{e['replicas']} replicas placed {len(e['placement'])} times")
        for place in e["placement"]:
            for node in place["nodes"]:
                for gpu in place["gpu_ids"]:
                    if (e["pool"], node, gpu) in taken:
                        problems.append(f"pool {e['pool']} node {node} GPU {gpu} given twice")
                    taken.add((e["pool"], node, gpu))
        used += e["gpus_per_replica"] * e["replicas"]  # an EP engine's data ranks included
    if used != deployment["gpus_used"] or len(taken) != used:
        problems.append(f"GPUs used {deployment['gpus_used']}, engines take {used}, placed {len(taken)}")
    return problems


def run_range(task: tuple[int, int, int, str]) -> list[tuple[str, float, str, list[str]]]:
    """Inputs start..stop-1 of the run with `seed` (input i is generated from its own seed "seed:i", so
    the inputs do not depend on how the run is split over processes)."""
    start, stop, seed, folder = task
    configs = hostile_configs(Path(folder))
    rows = []
    for i in range(start, stop):
        argv = generate(random.Random(f"{seed}:{i}"), configs)
        outcome, wall, detail = run_one(argv)
        rows.append((outcome, wall, detail, argv))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=1, help="processes (same inputs for any value)")
    parser.add_argument("--show", type=int, default=5, help="examples shown per failing outcome")
    args = parser.parse_args()
    counts: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}
    walls: list[float] = []
    slowest: tuple[float, list[str]] = (0.0, [])
    start = time.perf_counter()
    chunk = 100
    with tempfile.TemporaryDirectory() as tmp:
        tasks = [(i, min(i + chunk, args.inputs), args.seed, tmp) for i in range(0, args.inputs, chunk)]
        if args.jobs > 1:
            import multiprocessing

            pool = multiprocessing.get_context("fork").Pool(args.jobs)
            results = pool.imap_unordered(run_range, tasks)
        else:
            pool, results = None, map(run_range, tasks)
        done = 0
        for rows in results:
            for outcome, wall, detail, argv in rows:
                counts[outcome] += 1
                walls.append(wall)
                slowest = max(slowest, (wall, argv))
                shown = examples.setdefault(outcome, [])
                if outcome in ("traceback", "slow", "rejected", "exit 3") and len(shown) < args.show:
                    shown.append(f"{argv!r:.300} -> {detail[:300]}")
            done += len(rows)
            print(f"  {done} inputs, {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
        if pool is not None:
            pool.close()
            pool.join()
    walls.sort()
    print(
        f"fuzz: {args.inputs} generated inputs through autoparallel.cli.main (seed {args.seed}, "
        f"{args.jobs} process(es)), {time.perf_counter() - start:.0f} s"
    )
    for outcome, n in sorted(counts.items()):
        print(f"  {outcome:<10} {n:6d}")
    for bad in ("traceback", "slow", "rejected", "exit 3"):
        print(f"  {bad}: {counts.get(bad, 0)}")
        for line in examples.get(bad, []):
            print(f"    {line}")
    print(f"  wall per input: median {walls[len(walls) // 2] * 1e3:.0f} ms, max {walls[-1]:.1f} s")
    print(f"  slowest: {slowest[1]!r:.300}")
    return 0 if not any(counts.get(b) for b in ("traceback", "slow", "rejected")) else 1


if __name__ == "__main__":
    sys.exit(main())
