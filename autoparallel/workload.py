"""What the user wants to run: an inference profile or a training job.

Serving presets are typical request shapes, named after the common benchmarks; each can be
overridden field by field (`Serving.preset("chatbot").model_copy(update={"isl": 4096})`).
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Mapping
from itertools import pairwise
from statistics import NormalDist
from typing import Any

import numpy as np
from pydantic import ConfigDict, Field, field_validator, model_validator

from autoparallel.bounds import BOUNDS, UserInput
from autoparallel.configs import PRECISION_RULE, TrainingPrecision, precision_problem
from autoparallel.errors import InputError

MAX_QUANTILES = 1001
"""Most points a length distribution may give (per-mille resolution)."""


_RATE = BOUNDS["request_rate"]
_BURST = BOUNDS["burstiness"]


LENGTH_CAP = 8.0
"""Drawn lengths are capped at this multiple of their mean (benchmarks drop pathological samples)."""


def lengths_at(
    probs: np.ndarray, mean: float, cv: float, quantiles: tuple[float, ...] | None = None
) -> np.ndarray:
    """Lengths ≥ 1 at probabilities `probs` of the length distribution `draw_lengths` draws from (the
    `quantiles` shape interpolated, else a log-normal of spread `cv` cut at LENGTH_CAP × the mean),
    scaled so that their mean is `mean`."""
    if quantiles is not None:
        raw = np.interp(probs, np.linspace(0.0, 1.0, len(quantiles)), np.asarray(quantiles, dtype=float))
    else:
        sigma = math.sqrt(math.log1p(cv * cv))
        z = np.asarray([NormalDist().inv_cdf(float(x)) for x in probs])
        raw = np.minimum(np.exp(sigma * z - sigma * sigma / 2.0), LENGTH_CAP)
    raw = raw * (mean / raw.mean())  # the shape's scale is the workload's mean
    return np.maximum(np.rint(raw), 1.0)


_STRATA = (np.arange(1000) + 0.5) / 1000
"""Probabilities at which a length shape is read for its extremes (`Serving._p99_len`,
`one_token_outputs`): the 1,000 strata of a 1,000-prompt replay (`draw_lengths`)."""


def one_token_outputs(osl: object, cv: object, quantiles: object) -> bool:
    """Whether every output of a workload of mean `osl`, spread `cv` and shape `quantiles` (the
    `Serving` fields, unvalidated) is one token: its lengths as the replay draws them (`lengths_at`,
    the shape scaled to the mean `osl`) are all 1. False for values that fail validation."""
    if isinstance(osl, bool) or osl != 1:  # a mean of 2 or more has a length of 2 or more
        return False
    try:
        spread = 0.0 if cv is None else float(cv)  # type: ignore[arg-type]
        shape = None if quantiles is None else tuple(float(x) for x in quantiles)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        return False
    if not 0.0 <= spread <= BOUNDS["length_cv"].hi:  # NaN too
        return False
    if shape is not None and (spread > 0 or len(shape) < 2 or not all(1.0 <= x < math.inf for x in shape)):
        return False
    return bool((lengths_at(_STRATA, 1.0, spread, shape) == 1.0).all())


class Serving(UserInput):
    """An inference workload: request shape, load, and service-level limits."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(default="custom", min_length=1, max_length=100)
    """Preset name or `custom`: printable text on one line (a workload file's name is printed in every
    report; an escape sequence in it cleared the terminal, a newline forged a line of the plan)."""
    isl: int = Field(default=1024, ge=1, le=BOUNDS["isl"].hi)
    """Input (prompt) tokens per request."""
    osl: int = Field(default=256, ge=1, le=BOUNDS["osl"].hi)
    """Output tokens per request."""
    concurrency: int | None = Field(default=None, ge=1, le=BOUNDS["concurrency"].hi)
    """Requests in flight over the whole deployment (None: as many as fit, i.e. max throughput). A cap
    of at least `num_prompts` caps nothing (`vllm bench serve --max-concurrency 4096 --num-prompts
    200` sends the 200 at once): it is dropped, so that the benchmark is priced as the burst it is."""
    request_rate: float | None = Field(default=None, ge=_RATE.lo, le=_RATE.hi, allow_inf_nan=False)
    """Arriving requests per second (None: not rate-limited)."""
    max_model_len: int | None = Field(default=None, ge=1, le=BOUNDS["max_model_len"].hi)
    """Context the deployment must accept (None: isl + osl rounded up to a power of two)."""
    ttft_ms: float | None = Field(default=None, gt=0, le=BOUNDS["ttft_ms"].hi, allow_inf_nan=False)
    """Service-level limit on time to first token, ms."""
    tpot_ms: float | None = Field(default=None, gt=0, le=BOUNDS["tpot_ms"].hi, allow_inf_nan=False)
    """Service-level limit on time per output token, ms. None where every output is one token:
    TPOT has no second token to time (`vllm bench serve` reports it only for outputs longer than
    one token), so a preset's or a user's limit is dropped there."""
    burstiness: float = Field(default=1.0, ge=_BURST.lo, le=_BURST.hi, allow_inf_nan=False)
    """Shape of the gamma distribution of the gaps between arrivals at `request_rate` (`vllm bench
    serve --burstiness`): 1 is a Poisson process, below 1 burstier, above 1 more even. Only the
    finite-benchmark replay draws arrivals; the steady-state model uses the mean rate."""
    num_prompts: int | None = Field(default=None, ge=1, le=BOUNDS["num_prompts"].hi)
    """A finite benchmark: this many prompts, sent at once (`vllm bench serve --request-rate inf`,
    offline batch runs) or at `request_rate`. None: an endless steady stream."""
    isl_cv: float = Field(default=0.0, ge=0, le=BOUNDS["length_cv"].hi, allow_inf_nan=False)
    """Coefficient of variation (std / mean) of prompt lengths; 0: every prompt is `isl` tokens."""
    osl_cv: float = Field(default=0.0, ge=0, le=BOUNDS["length_cv"].hi, allow_inf_nan=False)
    """Coefficient of variation of output lengths; 0: every output is `osl` tokens."""
    isl_quantiles: tuple[float, ...] | None = None
    """A measured prompt-length distribution (`autoparallel profile` writes it): the lengths at
    probabilities 0, 1/(k − 1), …, 1, read piecewise linearly. The finite-benchmark replay draws from
    this shape, scaled to the mean `isl`, instead of a log-normal of spread `isl_cv` (give one or the
    other). `profile` writes the sample's percentiles with the last value set so that the shape's mean
    is the sample's (`mean_carrying_quantiles`): the end of the top percent's segment, not the longest
    request; a file written before keeps the longest there, and the replay's rescale to `isl`."""
    osl_quantiles: tuple[float, ...] | None = None
    """The same for output lengths, scaled to the mean `osl`: the short-output share that sets a
    burst's mean TPOT is kept as measured."""

    @model_validator(mode="before")
    @classmethod
    def _a_cap_above_the_prompts_caps_nothing(cls, data: Any) -> Any:
        """`concurrency` ≥ `num_prompts` is no cap (the field's doc); it was priced as an endless closed
        loop, TTFT 29.6 s where the burst's replay measures 12.5 (Qwen3-8B, 200 prompts, cap 200)."""
        if isinstance(data, dict):
            cap, prompts = data.get("concurrency"), data.get("num_prompts")
            if type(cap) is int and type(prompts) is int and cap >= prompts:
                return {**data, "concurrency": None}
        return data

    @model_validator(mode="before")
    @classmethod
    def _no_tpot_of_one_token(cls, data: Any) -> Any:
        """Drop `tpot_ms` where every output is one token (`one_token_outputs`): a measured shape scaled
        to osl 1 (a log of one-token outputs, or a file of 100-token outputs planned at --osl 1) has no
        TPOT either; its limit was kept and the plan exited 1 on tpot_slo."""
        if not isinstance(data, dict) or data.get("tpot_ms") is None:
            return data
        one = one_token_outputs(data.get("osl"), data.get("osl_cv"), data.get("osl_quantiles"))
        return {**data, "tpot_ms": None} if one else data

    @field_validator("name")
    @classmethod
    def _printable_name(cls, name: str) -> str:
        if not name.isprintable():
            raise ValueError("must be printable text on one line (no control characters)")
        return name

    @model_validator(mode="after")
    def _quantiles_are_a_distribution(self) -> Serving:
        for name, q, cv in (
            ("isl", self.isl_quantiles, self.isl_cv),
            ("osl", self.osl_quantiles, self.osl_cv),
        ):
            if q is None:
                continue
            if cv > 0:
                raise ValueError(f"give {name}_cv or {name}_quantiles, not both (one length distribution)")
            if not 2 <= len(q) <= MAX_QUANTILES:
                raise ValueError(f"{name}_quantiles holds {len(q)} values; give 2 to {MAX_QUANTILES}")
            hi = BOUNDS[name].hi
            if not all(1 <= x <= hi for x in q):  # NaN fails both comparisons
                raise ValueError(f"{name}_quantiles must be lengths from 1 to {hi:,} tokens")
            if any(b < a for a, b in pairwise(q)):
                raise ValueError(f"{name}_quantiles must not decrease (lengths at rising probabilities)")
        return self

    @model_validator(mode="after")
    def _burstiness_needs_a_rate(self) -> Serving:
        if self.burstiness != 1.0 and self.request_rate is None:
            raise ValueError(
                "burstiness shapes the gaps between arrivals at request_rate: give a request_rate"
            )
        return self

    @model_validator(mode="after")
    def _context_holds_request(self) -> Serving:
        if self.max_model_len is not None and self.max_model_len < self.isl + self.osl:
            raise ValueError(
                f"max_model_len {self.max_model_len} is below isl + osl = {self.isl} + {self.osl} = "
                f"{self.isl + self.osl}: every request would be rejected (max_model_len_ge_request)"
            )
        return self

    def with_updates(self, update: Mapping[str, Any]) -> Serving:
        """This workload with `update`'s fields, validated. A new `isl` or `osl` without a new
        `max_model_len` drops a `max_model_len` that no longer holds the new shape's `held_len` (a
        profiled file's is sized for its own lengths: its p99 prompt + p99 output): the default for the
        new shape applies instead. A file profiled at 1,059 / 258 tokens (max_model_len 2,464) planned
        at --isl 2000 kept 2,464, which its rescaled shape's p99 request (4,215 tokens) and about 45 %
        of its requests exceed: vLLM would reject them.

        Raises:
            pydantic.ValidationError: an updated field is out of range or contradicts another.
        """
        fields = {**self.model_dump(), **update}
        context = fields["max_model_len"]
        if context is not None and "max_model_len" not in update and {"isl", "osl"} & set(update):
            fresh = Serving.model_validate({**fields, "max_model_len": None})
            if context < fresh.held_len:
                return fresh
        return Serving.model_validate(fields)

    @property
    def in_flight(self) -> int | None:
        """The most requests ever in flight: the client's `concurrency`, and at most `num_prompts` (a
        finite benchmark has no more to send: 1,000 prompts at once never run 4,096 at a time). None:
        unbounded (an endless stream at full load)."""
        caps = [c for c in (self.concurrency, self.num_prompts) if c is not None]
        return min(caps) if caps else None

    @property
    def slot_rated(self) -> bool:
        """An open loop at a rate with a TTFT limit and no client cap: the deployment planner rates an
        aggregated engine at the rate whose wait for a free slot fits the limit
        (`solvers.deployment.space.rated_milli_tps`), not at its full load."""
        return self.request_rate is not None and self.ttft_ms is not None and self.concurrency is None

    @property
    def closed_loop(self) -> int | None:
        """The requests a closed-loop client keeps out (its `concurrency`, at most its prompts,
        without a `request_rate`): those the engines do not run wait in the server's queue, each for
        as long (`perf.client_queue_s`). None with an arrival rate (an open loop's requests wait only
        for a free slot, `perf.rate_slot_wait_s`) and for prompts sent at once without a cap (nothing
        replaces a finished request: that queue drains)."""
        return self.in_flight if self.request_rate is None and self.concurrency is not None else None

    @property
    def prompt_spread(self) -> float:
        """E[isl²] / isl² − 1, the squared coefficient of variation of prompt lengths: from the
        measured shape (`isl_quantiles`, its quantile function integrated by trapezoids) when there
        is one, else `isl_cv`² (0: every prompt is `isl` tokens). It sizes how unevenly the prompt
        tokens arriving in an engine step vary (`perf.serving_steps.replica_step_times`)."""
        return _spread(self.isl_cv, self.isl_quantiles)

    @property
    def output_spread(self) -> float:
        """E[osl²] / osl² − 1, the squared coefficient of variation of output lengths (from
        `osl_quantiles` when measured, else `osl_cv`²), as `prompt_spread` for prompts."""
        return _spread(self.osl_cv, self.osl_quantiles)

    @property
    def running_context(self) -> float:
        """Tokens the average running request holds (prompt plus the output so far). A request runs
        for its osl steps, so the running set samples requests in proportion to their output length
        (the inspection paradox), each halfway through: E[o · (i + o/2)] / E[o] = isl + osl · (1 +
        output_spread) / 2 for independent lengths. Fixed lengths give isl + osl/2; ShareGPT's
        outputs (spread 1.0) 480 tokens where isl + osl/2 gave 339, as the replay's running set
        holds (`perf/serving_load.py`)."""
        return self.isl + self.osl * (1.0 + self.output_spread) / 2.0

    @property
    def required_len(self) -> int:
        """Tokens one request must fit: `max_model_len` when given, else isl + osl."""
        if self.max_model_len is not None:
            return self.max_model_len
        return self.isl + self.osl

    @property
    def context_len(self) -> int:
        """The max_model_len to deploy by default: `max_model_len` when given, else `held_len` (isl +
        osl, or where lengths spread the 99th percentile prompt plus the 99th percentile output)
        rounded up to a power of two (callers cap it at the model's own limit when isl + osl still fits
        under it). The mean alone left long requests out: 1,024 / 1,024 tokens at a spread of 1.5
        deployed 2,048, which about a quarter of the requests exceed."""
        if self.max_model_len is not None:
            return self.max_model_len
        return 1 << (self.held_len - 1).bit_length()

    @property
    def held_len(self) -> int:
        """Tokens a max_model_len must hold for this request shape (whatever `max_model_len` says):
        isl + osl, or where lengths spread the 99th percentile prompt plus the 99th percentile output
        (`profile`'s rule for a log's max_model_len). `context_len` rounds it up; `with_updates` drops
        a `max_model_len` below a new shape's."""
        return max(self.isl + self.osl, self._p99_len)

    @property
    def _p99_len(self) -> int:
        """The 99th percentile prompt plus the 99th percentile output, of the length shapes the replay
        draws (`lengths_at`); isl + osl where lengths do not spread."""
        spread = self.isl_cv > 0 or self.osl_cv > 0 or self.isl_quantiles or self.osl_quantiles
        if not spread:
            return self.isl + self.osl
        isl = lengths_at(_STRATA, self.isl, self.isl_cv, self.isl_quantiles)[989]
        osl = lengths_at(_STRATA, self.osl, self.osl_cv, self.osl_quantiles)[989]
        return int(isl + osl)

    def deploy_len(self, model_limit: int) -> int:
        """The default max_model_len for a model allowing `model_limit` tokens: `context_len`, capped
        at the model's limit when the request itself fits under it."""
        return max(self.required_len, min(self.context_len, model_limit))

    @classmethod
    def preset(cls, name: str) -> Serving:
        """A named profile: chatbot, batch, rag, long-context, reasoning, sharegpt."""
        if not isinstance(name, str):
            raise InputError(f"a workload preset is named by a string, not {type(name).__name__}")
        try:
            return PRESETS[name.lower()]
        except KeyError:
            raise InputError(f"unknown workload {name!r}; choose one of: {', '.join(PRESETS)}") from None


def ms_over(value_ms: float, limit_ms: float, digits: int) -> str:
    """`value_ms`, which breaks the limit `limit_ms`, with `digits` decimals or as many more as it
    takes to show it above the limit: "5.03", not "5.0", against 5 ms (3 always do: the solvers'
    tables are in µs)."""
    for d in range(digits, 3):
        if round(value_ms, d) > limit_ms:
            return f"{value_ms:.{d}f}"
    return f"{value_ms:.3f}"


def histogram_quantiles(cumulative: tuple[tuple[int, int], ...], points: int = 101) -> tuple[float, ...]:
    """Lengths at `points` evenly spaced probabilities 0…1 of a length histogram given as cumulative
    counts at bucket upper edges (`(edge, count of lengths <= edge)`, the Prometheus form; the first
    edge's count is taken as the lower bound's). Within a bucket the length rises geometrically."""
    total = cumulative[-1][1]
    out: list[float] = []
    for i in range(points):
        p = i / (points - 1) * total
        for (lo, below), (hi, upto) in pairwise(cumulative):
            if p <= upto or hi == cumulative[-1][0]:
                share = 0.0 if upto == below else min(max((p - below) / (upto - below), 0.0), 1.0)
                out.append(lo * (hi / lo) ** share)
                break
    return tuple(out)


SHAREGPT_PROMPT_HISTOGRAM = (
    (2, 0), (5, 22), (10, 191), (20, 511), (50, 825), (100, 997), (200, 1182), (500, 1748), (1000, 2102),
    (2000, 2104),
)  # fmt: skip
"""Prompt lengths of a ShareGPT serving benchmark as SGLang's metrics counted them: 2,104 requests,
mean 238 tokens (`sglang:request_prompt_tokens` in SGLang's docs, "Production Metrics", the example
output; google/gemma-2-9b-it, SGLang's `bench_serving` ShareGPT sampler, which keeps prompts of 2 to
1,024 tokens and prompt + output up to 2,048, as `vllm bench serve` does from 4)."""
SHAREGPT_OUTPUT_HISTOGRAM = (
    (2, 0), (5, 49), (10, 202), (20, 448), (50, 814), (100, 979), (200, 1266), (500, 1883), (1000, 2095),
    (2000, 2104),
)  # fmt: skip
"""Output lengths of the same run (`sglang:request_generation_tokens`, mean 202 tokens): 21 % of the
outputs are 20 tokens or fewer and the median is near 120, where a log-normal of the same mean and
spread 1 puts 1 % under 20. A burst's mean TPOT (a mean over requests) is set by those short ones."""
SHAREGPT_ISL_QUANTILES = histogram_quantiles(SHAREGPT_PROMPT_HISTOGRAM)
"""The ShareGPT prompt-length shape (`Serving.isl_quantiles`), scaled to a workload's mean by the replay."""
SHAREGPT_OSL_QUANTILES = histogram_quantiles(SHAREGPT_OUTPUT_HISTOGRAM)
"""The ShareGPT output-length shape (`Serving.osl_quantiles`)."""


PRESETS: dict[str, Serving] = {
    "chatbot": Serving(name="chatbot", isl=1024, osl=256, tpot_ms=50.0, ttft_ms=2000.0),
    "batch": Serving(name="batch", isl=1024, osl=1024, num_prompts=1000),
    "rag": Serving(name="rag", isl=8192, osl=256, ttft_ms=5000.0),
    "long-context": Serving(name="long-context", isl=130048, osl=1024, concurrency=8),
    "reasoning": Serving(name="reasoning", isl=1024, osl=8192, tpot_ms=50.0),
    "sharegpt": Serving(
        name="sharegpt",
        isl=238,
        osl=202,
        num_prompts=1000,
        max_model_len=2048,
        isl_quantiles=SHAREGPT_ISL_QUANTILES,
        osl_quantiles=SHAREGPT_OSL_QUANTILES,
    ),
}
"""Serving presets. Shapes follow common serving benchmarks (ShareGPT-like chat 1k/256,
offline batch 1k/1k, RAG 8k/256, reasoning 1k/8k); SLOs are typical interactive targets.

long-context fills a 128k-token model: prompt and output together are 131,072 tokens (130,048 in,
1,024 out), the whole context of the zoo's 128k models (Llama 3.1-3.3, gemma-3, gpt-oss, GLM-4.5,
Kimi-K2, Qwen2.5, ...); a 131,072-token prompt with its output would not fit their `max_model_len`.

sharegpt is `vllm bench serve --dataset-name sharegpt --num-prompts 1000` (request rate inf): 1,000
prompts at once drawn from ShareGPT's published length histograms (`SHAREGPT_*`, means 238 / 202
tokens as SGLang's docs count them; other tokenizers give 219-230 / 197-203), requests of up to 2,048
tokens as the benchmark's sampler keeps them.

SLOs each preset imposes: chatbot TTFT ≤ 2 s and TPOT ≤ 50 ms; rag TTFT ≤ 5 s; reasoning TPOT ≤ 50 ms;
batch and sharegpt (1,000 prompts sent at once, finite benchmarks) and long-context (8 concurrent)
impose none."""


def not_the_preset(workload: Serving) -> tuple[str, str] | None:
    """(the preset, the fields that differ from it, as text) where `workload` is named like a preset (case
    aside, as `Serving.preset` reads names) but is not it; None where its name is no preset's or its
    fields are the preset's. A workload file's name is printed as the workload's ("workload rag: 1024 in
    / 256 out") and a remedy credits a limit to the preset of that name ("the chatbot preset imposes
    it"): a file named rag that held only the name planned the defaults, 1024 / 256 without rag's TTFT
    limit, under the preset's name."""
    preset = PRESETS.get(workload.name.lower())
    if preset is None:
        return None

    def shown(value: object) -> str:
        if value is None:
            return "unset"
        if isinstance(value, tuple):
            return f"a {len(value)}-point shape"
        if isinstance(value, float):
            return f"{value:,g}"
        return f"{value:,}" if isinstance(value, int) else str(value)

    mine, theirs = workload.model_dump(), preset.model_dump()
    differ = [
        f"{k} {shown(v)} ({preset.name}: {shown(theirs[k])})"
        for k, v in mine.items()
        if k != "name" and v != theirs[k]
    ]
    return (preset.name, ", ".join(differ)) if differ else None


_TOKENS = BOUNDS["tokens"]


class Training(UserInput):
    """A training job: sequence length, global batch and (optionally) a token budget."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seq_len: int = Field(default=4096, ge=1, le=BOUNDS["seq_len"].hi)
    """Tokens per sequence."""
    global_batch: int = Field(default=1024, ge=1, le=BOUNDS["global_batch"].hi)
    """Sequences per optimizer step."""
    tokens: float | None = Field(default=None, ge=_TOKENS.lo, le=_TOKENS.hi, allow_inf_nan=False)
    """Training token budget, for time and cost to train (None: report per step only)."""
    precision: TrainingPrecision = "bf16"
    """`bf16`, `fp8` or `fp16` (`configs.TrainingPrecision`: what each runs as)."""

    @field_validator("precision", mode="before")
    @classmethod
    def _known_precision(cls, value: object) -> object:
        """The rule's one text (`configs.PRECISION_RULE`), as the API words it for a TrainingConfig."""
        if precision_problem(value) is not None:
            raise ValueError(PRECISION_RULE)
        return value


def mean_carrying_quantiles(quantiles: tuple[float, ...], mean: float, hi: float) -> tuple[float, ...]:
    """`quantiles` (lengths at evenly spaced probabilities 0…1, read piecewise linearly as the replay
    and `_spread` read them) with the last value moved so that the quantile function's integral is
    `mean`, the sample's mean: the top segment then carries the mean of the requests it stands for.

    A measured sample's quantiles end at its longest request, and the straight line from the p99 to a
    max far above it (a log-normal's 0.01 % at 30 times the median, a few 100,000-token prompts among
    1,000-token ones) counted the top percent at the midpoint of the two: 1,029 tokens for a log of
    mean 922, which the replay then scaled down to 0.896 of every prompt, body included. Every value
    but the last is kept; the last stays at least the one before it (a body above the mean cannot be
    offset there, and the replay's rescale to the mean stays the correction) and at most `hi`."""
    if len(quantiles) < 2 or not mean > 0:
        return quantiles
    step = 1.0 / (len(quantiles) - 1)
    body = sum((a + b) / 2.0 for a, b in pairwise(quantiles[:-1])) * step
    below = quantiles[-2]
    top = 2.0 * (mean - body) / step - below  # the top segment's mean is (below + top) / 2
    return (*quantiles[:-1], round(min(max(top, below), hi), 1))


def _spread(cv: float, quantiles: tuple[float, ...] | None) -> float:
    """E[x²] / E[x]² − 1 of a length distribution: from its measured quantile function, integrated by
    trapezoids (piecewise linear between the quantiles), when there is one, else cv²."""
    if quantiles is None:
        return cv**2
    step = 1.0 / (len(quantiles) - 1)
    mean = sum((a + b) / 2.0 for a, b in pairwise(quantiles)) * step
    square = sum((a * a + a * b + b * b) / 3.0 for a, b in pairwise(quantiles)) * step
    return max(square / (mean * mean) - 1.0, 0.0)


def rps_text(value: float, *, up: bool = False, digits: int = 2) -> str:
    """A rate (requests/s) for text: two decimals, or three significant digits below 1 req/s (an engine at
    osl 100,000 carries 0.0005 req/s, which two decimals print as 0.00), rounded down, as JSON's
    `capacity_rps` is (`plan.round_floats`): a capacity is the most a plan carries, and one printed
    rounded up (14.8092 as 14.81) fed back as a request rate left 0.0007 req/s unmet. `up` rounds up,
    for an unmet rate: a shortfall never prints smaller than it is, nor as 0.00. `digits`: decimals from
    1 req/s up (more where a shortfall hides in the second: 16.7152942 /s against 16.7152945)."""
    if not math.isfinite(value):
        return f"{value:.3g}"
    exact = decimal.Decimal(repr(value))  # repr: 14.81 stays 14.81, not 14.8099999...
    step = (
        decimal.Decimal(1).scaleb(-digits)
        if abs(value) >= 1 or value == 0
        else decimal.Decimal(1).scaleb(exact.adjusted() - 2)
    )
    rounding = decimal.ROUND_CEILING if up else decimal.ROUND_FLOOR
    shown = exact.quantize(step, context=decimal.Context(prec=400, rounding=rounding))  # 1.8e308 fits
    return f"{float(shown):.{digits}f}" if abs(shown) >= 1 else f"{float(shown):.3g}"
