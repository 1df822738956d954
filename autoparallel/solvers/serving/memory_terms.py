"""vLLM's per-GPU memory accounting, term by term, for the serving tables (memoized).

memory/serving.py `_evaluate` sums, per pipeline stage, the weights, the activation peak of the
profile run, non-torch memory and (from vLLM 0.21) CUDA-graph memory, and gives the KV cache the
rest of `total × gpu_memory_utilization`. A full `serving_memory` call costs ~1-3 ms, too slow for
the thousands of table entries a plan needs, so this class calls the same building blocks
(`vllm_profile`, `vllm_kv`, `serving.layer_kv_specs` / `resolve_batch_defaults`) once per distinct
input and sums them the same way. `serving_memory` stays the source of truth: the decoder re-checks
every plan against it, and tests/solvers pin the two against each other.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from autoparallel.memory import vllm_kv, vllm_profile
from autoparallel.memory.serving import (
    engine_weight_layout,
    kv_block_size,
    layer_kv_specs,
    resolve_batch_defaults,
)
from autoparallel.memory.vllm_config import kv_dtype_bytes, load_dtype, loaded_on

if TYPE_CHECKING:
    from autoparallel.hardware import Cluster
    from autoparallel.memory.vllm_versions import VllmRules
    from autoparallel.models.spec import ModelSpec
    from autoparallel.solvers.serving.space import Runtime, Shape
    from autoparallel.workload import Serving


class MemoryTerms:
    """vLLM 0.32's per-stage accounting (memory/serving.py `_evaluate`), term by term, memoized.

    The same building blocks (`vllm_profile`, `vllm_kv`), summed the same way; `serving_memory`
    stays the source of truth and the decoder re-checks every plan against it.
    """

    def __init__(self, space_model: ModelSpec, cluster: Cluster, rules: VllmRules, workload: Serving) -> None:
        self.model, self.gpu, self.rules, self.workload = space_model, cluster.gpu, rules, workload
        self._weights: dict[tuple[int, int, int, str | None, str, str], list[float]] = {}
        self._act: dict[tuple[object, ...], float] = {}
        self._plans: dict[tuple[int, int, str, int, int], tuple[vllm_kv.KvPlan, int, int]] = {}
        self._layer_kv: dict[tuple[int, int, str], tuple[vllm_kv.LayerKv, ...]] = {}
        self._stages: dict[tuple[int, str], tuple[range, ...]] = {}
        self._specs: dict[tuple[str | None, str], ModelSpec] = {}
        self._classes: dict[int, tuple[int, ...]] = {}
        self._checked = False
        self._sigs: dict[object, int] = {}
        self._layer_sig = tuple(self._sigs.setdefault(layer, len(self._sigs)) for layer in space_model.layers)

    def stage_classes(self, pp: int) -> tuple[int, ...]:
        """One stage per class of identical stages of vLLM's split (same layers, same first/last
        role): the others have the same weights, activations, graphs and KV blocks."""
        if pp not in self._classes:
            seen: dict[tuple[object, ...], int] = {}
            for s, layers in enumerate(self.stages(pp)):
                seen.setdefault(self._stage_key(layers, s, pp), s)
            self._classes[pp] = tuple(sorted(seen.values()))
        return self._classes[pp]

    def spec(self, quantization: str | None, engine: str = "vllm") -> ModelSpec:
        """The model as `engine` loads it here (`loaded_on`), one per (quantization, load dtype)."""
        key = (quantization, load_dtype(self.model, self.gpu, engine))
        if key not in self._specs:
            self._specs[key] = loaded_on(self.model, self.gpu, quantization, engine)
        return self._specs[key]

    def weights(self, tp: int, pp: int, ep: int, quant: str | None, engine: str = "vllm") -> list[float]:
        """Weight bytes of one rank of each stage (parameters + RoPE cache) as `engine` loads and holds
        the model (`serving.engine_weight_layout`, as the float model prices it: each engine's MXFP4
        expert padding, SGLang's BF16 upcast of them under expert parallelism), over `engine`'s own
        split of the layers (`stages`); identical stages are computed once."""
        key = (tp, pp, ep, quant, load_dtype(self.model, self.gpu, engine), engine)
        if key not in self._weights:
            spec = self.spec(quant, engine)
            held, align = engine_weight_layout(spec, engine, self.gpu, ep)
            stages = self.stages(pp, engine)
            by_class: dict[tuple[object, ...], float] = {}
            out = []
            # Stages alike in their layers' kinds are alike in weights, unless a quantization rule
            # names layers by index (`QuantSpec.group_layer_mix`): then each stage is its own.
            mixed = held.quantization is not None and bool(held.quantization.group_layer_mix)
            for s, layers in enumerate(stages):
                cls = (self._stage_key(layers, s, pp), tuple(layers) if mixed else ())
                if cls not in by_class:
                    params = vllm_profile.stage_params_per_rank(
                        held, layers, s, pp, tp, ep, mxfp4_align=align
                    )
                    by_class[cls] = held.weight_bytes(params, layers) + vllm_profile.rope_cache_bytes(
                        spec, layers, spec.dtype_bytes
                    )
                out.append(by_class[cls])
            self._weights[key] = out
        return self._weights[key]

    def _stage_key(self, layers: range, stage: int, pp: int) -> tuple[object, ...]:
        return (tuple(sorted(self._layer_sig[i] for i in layers)), stage == 0, stage == pp - 1)

    def activation(
        self, tp: int, pp: int, ep: int, quant: str | None, stage: int, tokens: int, reqs: int
    ) -> float:
        """`vllm_profile.activation_peak_bytes` of one stage.

        On the last stage only the sampler term depends on `reqs`: peak = base + max(forward,
        hidden + c · reqs) with c = sampler copies × vocab × 4 bytes (its docstring), so two calls
        give every `reqs` in closed form; one more call per problem checks the closed form (when it
        does not hold, every value is a direct call).
        """
        if stage != pp - 1:
            return self._activation(tp, pp, ep, quant, stage, tokens, 0)
        key = (tp, pp, ep, quant, stage, tokens, -1)
        if key not in self._act:
            c = self.rules.sampler_fp32_copies * self.model.vocab_size * 4.0
            big = 1 << 20
            at_zero = self._activation(tp, pp, ep, quant, stage, tokens, 0)
            with_sampler = self._activation(tp, pp, ep, quant, stage, tokens, big) - c * big
            closed = self._checked
            if not closed:  # check the closed form once per problem
                probe = self._activation(tp, pp, ep, quant, stage, tokens, 512)
                closed = math.isclose(probe, max(at_zero, with_sampler + c * 512), rel_tol=1e-12)
                self._checked = closed
            self._act[key] = with_sampler if closed else math.nan
            self._act[(*key[:-1], -2)] = at_zero
        with_sampler = self._act[key]
        if math.isnan(with_sampler):
            return self._activation(tp, pp, ep, quant, stage, tokens, reqs)
        c = self.rules.sampler_fp32_copies * self.model.vocab_size * 4.0
        return max(self._act[(*key[:-1], -2)], with_sampler + c * reqs)

    def _activation(
        self, tp: int, pp: int, ep: int, quant: str | None, stage: int, tokens: int, reqs: int
    ) -> float:
        key = (tp, pp, ep, quant, stage, tokens, reqs)
        if key not in self._act:
            spec = self.spec(quant)
            layers = self.stages(pp)[stage]  # vLLM runtimes only
            self._act[key] = vllm_profile.activation_peak_bytes(
                spec,
                layers,
                stage=stage,
                pp=pp,
                tp=tp,
                ep=ep,
                act_bytes=spec.dtype_bytes,
                num_tokens=tokens,
                num_reqs=reqs,
                rules=self.rules,
            )
        return self._act[key]

    def plan(self, tp: int, pp: int, kv: str, mml: int, tokens: int) -> tuple[vllm_kv.KvPlan, int, int]:
        """(KV plan, blocks per average sequence, bytes of one max_model_len request on stage 0)."""
        key = (tp, pp, kv, mml, tokens)
        if key not in self._plans:
            spec = self.spec(None)  # the dtype vLLM loads the model in (`load_dtype`) sizes an `auto` cache
            layer_key = (tp, pp, kv)
            if layer_key not in self._layer_kv:
                # vLLM runtimes only
                kv_bytes = kv_dtype_bytes(
                    spec, kv, engine="vllm", from_checkpoint=self.rules.kv_dtype_from_checkpoint
                )
                self._layer_kv[layer_key] = layer_kv_specs(spec, self.stages(pp), tp, kv_bytes)
            layers = self._layer_kv[layer_key]
            plan = vllm_kv.plan_kv(
                layers,
                [0.0] * pp,
                block_size=kv_block_size(spec, self.gpu, self.rules, kv),
                rules=self.rules,
                max_model_len=mml,
                max_num_batched_tokens=tokens,
                moe=spec.is_moe,
            )
            ctx = math.ceil(self.workload.running_context)
            block = plan.bytes_per_block[0]
            per_seq = vllm_kv.bytes_for_request(plan, 0, ctx, self.rules, tokens, pp) // block
            blocks_mml = vllm_kv.bytes_for_request(plan, 0, mml, self.rules, tokens, pp) // block
            self._plans[key] = (plan, max(int(per_seq), 1), int(blocks_mml))
        return self._plans[key]

    def stages(self, pp: int, engine: str = "vllm") -> tuple[range, ...]:
        """`engine`'s layer ranges of each pipeline stage (`vllm_profile.pp_partition`: vLLM gives
        an uneven split's extra layers to the middle stages, SGLang to the last, TensorRT-LLM to the
        first), memoized."""
        key = (pp, engine)
        if key not in self._stages:
            self._stages[key] = vllm_profile.pp_partition(self.model.num_layers, pp, engine=engine)
        return self._stages[key]

    def terms(
        self, shape: Shape, rt: Runtime, batch: int, mml: int, held: int | None = None
    ) -> tuple[float, float, float, int]:
        """Bytes on the tightest stage: (fixed + KV of the `held` running sequences (default
        max_num_seqs `batch`), fixed + KV of one max_model_len request, fixed), and the step token
        budget. Fixed = weights + activation peak + non-torch + CUDA graphs; both KV terms include
        the null block vLLM holds back."""
        held = batch if held is None else held
        tp, pp, ep = shape.tp, shape.pp, shape.ep_ranks
        seqs, tokens = resolve_batch_defaults(self.rules, self.gpu, mml, batch, None)
        weights = self.weights(tp, pp, ep, rt.quantization)
        non_torch = vllm_profile.non_torch_bytes(self.rules, tp, pp, self.gpu.has_nvlink)
        plan, per_seq, blocks_mml = self.plan(tp, pp, rt.kv_cache_dtype, mml, tokens)
        null = 1 if self.rules.reserves_null_block else 0
        stages = self.stages(pp)
        used = need = fixed_max = 0.0
        for s in self.stage_classes(pp):
            graphs = vllm_profile.cuda_graph_bytes(
                self.rules,
                len(stages[s]),
                seqs,
                tokens,
                enforce_eager=rt.enforce_eager,
                blackwell=self.gpu.arch == "blackwell",
            )
            fixed = (
                weights[s]
                + self.activation(tp, pp, ep, rt.quantization, s, tokens, min(seqs, tokens))
                + non_torch
                + (graphs if self.rules.subtracts_cuda_graphs else 0.0)
            )
            block = plan.bytes_per_block[s]
            used = max(used, fixed + (held * per_seq + null) * block)
            need = max(need, fixed + (blocks_mml + null) * block)
            fixed_max = max(fixed_max, fixed)
        return used, need, fixed_max, tokens
