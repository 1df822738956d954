"""Training emitters: launch lines per host on GB200 NVL72, ds_config pipeline keys DeepSpeed reads
and the PipelineModule partition that reproduces the priced split, and Megatron's activation flags
for gpt-oss and Gemma's GeGLU."""

from __future__ import annotations

from autoparallel.configs import Recompute, TrainingConfig, ZeroStage, even_split
from autoparallel.frameworks.deepspeed import deepspeed_command, deepspeed_config, deepspeed_notes
from autoparallel.frameworks.megatron import megatron_arg_dict, megatron_notes, torchrun_command
from autoparallel.hardware import Cluster
from autoparallel.models import load_model

LLAMA_70B = "meta-llama/Llama-3.1-70B"
QWEN_235B = "Qwen/Qwen3-235B-A22B"


# ----- GB200 NVL72: 18 hosts of 4 GPUs, not one of 72 ------------------------------------------------
def test_an_nvl72_rack_launches_18_hosts_of_4_gpus() -> None:
    """`plan ... --cluster 1x72xGB200 --train` printed `torchrun --nnodes 1 --nproc-per-node 72` and
    `deepspeed --num_nodes 1 --num_gpus 72`: the rack is one NVLink domain of 18 compute trays."""
    model, cluster = load_model(LLAMA_70B), Cluster.parse("1x72xGB200")
    cfg = TrainingConfig(tp=2, dp=36, global_batch=72, seq_len=8192, zero=ZeroStage.PARAMETERS)
    assert "torchrun --nnodes 18 --nproc-per-node 4 " in torchrun_command(model, cfg, cluster=cluster)
    ds = deepspeed_command(model, cfg, cluster=cluster)
    assert ds.startswith("deepspeed --num_nodes 18 --num_gpus 4 --hostfile hostfile ")
    assert any("slots=4" in n and "18 hosts" in n for n in deepspeed_notes(model, cfg, cluster=cluster))
    two_racks = cfg.model_copy(update={"dp": 72, "global_batch": 144})
    assert "--nnodes 36 --nproc-per-node 4 " in torchrun_command(
        model, two_racks, cluster=Cluster.parse("2x72xGB200")
    )
    # inside one rack, ranks that do not fill whole trays: as many on each tray used
    six = cfg.model_copy(update={"dp": 3, "global_batch": 6})
    assert "--nnodes 2 --nproc-per-node 3 " in torchrun_command(model, six, cluster=cluster)
    # 8-GPU servers: unchanged
    hgx = TrainingConfig(tp=8, dp=2, global_batch=16)
    assert "--nnodes 2 --nproc-per-node 8 " in torchrun_command(model, hgx, cluster=Cluster.parse("2x8xH100"))
    assert any("slots=8" in n for n in deepspeed_notes(model, hgx, cluster=Cluster.parse("2x8xH100")))


# ----- DeepSpeed pipeline: only keys the engine reads; the split is the PipelineModule's ------------------
def _partition_uniform(num_items: int, num_parts: int) -> list[int]:
    """deepspeed/runtime/utils.py `partition_uniform`, ported."""
    if num_items <= num_parts:
        return [min(p, num_items) for p in range(num_parts + 1)]
    chunk, residual = divmod(num_items, num_parts)
    parts = [p * chunk for p in range(num_parts + 1)]
    for i in range(residual):
        parts[i + 1 :] = [x + 1 for x in parts[i + 1 :]]
    return parts


def _partition_balanced(weights: list[int], num_parts: int) -> list[int]:
    """deepspeed/runtime/utils.py `partition_balanced` (the linear-partition dynamic programme), ported:
    least spread between the heaviest and lightest part, ties to the later cut (`>=`)."""
    n, m, inf = len(weights), num_parts, float("inf")
    if n <= m:
        return _partition_uniform(n, m)
    dp_max = [[inf] * (m + 1) for _ in range(n + 1)]
    dp_min = [[inf] * (m + 1) for _ in range(n + 1)]
    dp_cost = [[inf] * (m + 1) for _ in range(n + 1)]
    position = [[0] * (m + 1) for _ in range(n + 1)]
    prefix = [0] * (n + 1)
    for i, w in enumerate(weights):
        prefix[i + 1] = prefix[i] + w
    dp_max[0][0] = dp_cost[0][0] = 0
    for i in range(1, n + 1):
        for j in range(1, min(i, m) + 1):
            for k in range(i):
                hi = max(dp_max[k][j - 1], prefix[i] - prefix[k])
                lo = min(dp_min[k][j - 1], prefix[i] - prefix[k])
                if dp_cost[i][j] >= hi - lo:
                    dp_cost[i][j], dp_max[i][j], dp_min[i][j], position[i][j] = hi - lo, hi, lo, k
    parts = [n]
    for j in reversed(range(1, m + 1)):
        parts.append(position[parts[-1]][j])
    return parts[::-1]


def _decoder_layers(parts: list[int], is_layer: list[int]) -> list[int]:
    return [sum(is_layer[parts[s] : parts[s + 1]]) for s in range(len(parts) - 1)]


def test_type_partition_gives_the_priced_split_where_uniform_does_not() -> None:
    """The notes' 'type:transformer' (Megatron-DeepSpeed's GPTModelPipe: to-half function, embedding,
    decoder layers, final norm, LM head, to-float function) gives `even_split`; 'uniform' does not."""
    for layers, pp in ((94, 4), (80, 3), (61, 8), (126, 16), (32, 5)):
        specs = [0, 0] + [1] * layers + [0, 0, 0]
        split = _decoder_layers(_partition_balanced(specs, pp), specs)
        assert split == list(even_split(layers, pp)), (layers, pp, split)
    specs = [0, 0] + [1] * 94 + [0, 0, 0]
    assert _decoder_layers(_partition_uniform(len(specs), 4), specs) != list(even_split(94, 4))


def test_the_ds_config_drops_pipeline_keys_deepspeed_never_reads() -> None:
    """`"pipeline": {"stages": .., "partition": "uniform"}`: runtime/config.py stores them, pipe/engine.py
    reads neither; the PipelineModule's partition_method decides, which the notes now name."""
    model = load_model(QWEN_235B)
    cfg = TrainingConfig(tp=4, pp=4, dp=2, ep=8, etp=1, global_batch=64, zero=ZeroStage.OPTIMIZER)
    pipe = deepspeed_config(model, cfg)["pipeline"]
    assert pipe == {"pipe_partitioned": False, "grad_partitioned": False}
    notes = " ".join(deepspeed_notes(model, cfg))
    assert "partition_method='type:transformer'" in notes and "[24, 24, 23, 23]" in notes
    assert "activation_checkpoint_interval at 0" in notes
    full = cfg.model_copy(update={"recompute": Recompute.FULL})
    assert deepspeed_config(model, full)["pipeline"]["activation_checkpoint_interval"] == 1  # type: ignore[index]
    dense = TrainingConfig(pp=2, dp=4, global_batch=8, zero=ZeroStage.NONE)
    assert "pipeline" not in deepspeed_config(load_model(LLAMA_70B), dense)


# ----- Megatron activation flags -----------------------------------------------------------------------
def test_gpt_oss_gets_megatrons_own_activation_flags_not_swiglu() -> None:
    """Megatron-LM's examples/gptoss/02_train.sh: --quick-geglu --glu-linear-offset 1.0
    --activation-func-clamp-value 7.0 --softmax-type learnable."""
    cfg = TrainingConfig(tp=8, dp=2, global_batch=16, seq_len=4096)
    args = megatron_arg_dict(load_model("openai/gpt-oss-120b"), cfg)
    assert "--swiglu" not in args
    assert args["--quick-geglu"] is True and args["--glu-linear-offset"] == 1.0
    assert args["--activation-func-clamp-value"] == 7.0 and args["--softmax-type"] == "learnable"


def test_gemma_geglu_keeps_swiglu_with_a_note() -> None:
    cfg = TrainingConfig(tp=8, dp=2, global_batch=16, seq_len=4096)
    gemma = load_model("google/gemma-3-27b-it")
    assert megatron_arg_dict(gemma, cfg)["--swiglu"] is True
    assert any("GeGLU" in n and "--swiglu stands in" in n for n in megatron_notes(gemma, cfg))
    llama = load_model(LLAMA_70B)
    assert not any("GeGLU" in n for n in megatron_notes(llama, cfg))


def test_deepspeed_notes_say_the_tensor_parallel_groups_run_sequence_parallel() -> None:
    cfg = TrainingConfig(tp=8, dp=2, global_batch=16, seq_len=4096)
    assert "--sequence-parallel" in " ".join(deepspeed_notes(load_model(LLAMA_70B), cfg))
