"""One replica's engine steps in a finite benchmark: the scheduler replay and the drivers that time it.

perf/serving_load.py draws the benchmark (lengths, arrivals) and turns the replay into
`vllm bench serve`'s metrics; this module replays what each replica's scheduler does with it, one
engine step (or one span of identical decode steps) at a time:

- **Scheduler** (vLLM V1 `Scheduler.schedule`, FCFS, chunked prefill): running requests first, each
  decode takes one token of the step budget (`max_num_batched_tokens`), an unfinished prompt takes
  what is left; then waiting requests are admitted in order while fewer than `max_num_seqs` run,
  budget remains and their first chunk's KV blocks are free.
- **KV cache and preemption**: a request holds ceil(tokens / block) blocks per KV-cache group; when a
  decode needs a block and none is free, the most recently admitted running request is preempted
  (vLLM V1 recompute: its blocks freed, it goes back to the front of the queue and re-prefills its
  prompt and the tokens it had generated).

A replica's replay is a generator (`rank_steps`, a `Rank`): it yields the `Work` of its next step and
is sent the step's seconds, so one driver can time a replica on its own (`alone`) and another the
data-parallel ranks of one engine in lock-step (`lockstep`).
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass

import numpy as np

from autoparallel.errors import InputError, InternalError
from autoparallel.perf.serving_steps import ReplicaShape, micro_batches

SGLANG_CLIP_MAX_NEW_TOKENS = 4096
"""SGLang's cap on the output a request is assumed to still write (`CLIP_MAX_NEW_TOKENS_ESTIMATION`)."""
SGLANG_INIT_NEW_TOKEN_RATIO = 0.7
SGLANG_MIN_NEW_TOKEN_RATIO_FACTOR = 0.14
SGLANG_NEW_TOKEN_RATIO_DECAY_STEPS = 600
SGLANG_DP_ATTENTION_CONSERVATIVENESS = 0.3
"""SGLang multiplies `--schedule-conservativeness` (default 1.0) by 0.3 with `--enable-dp-attention`
(`ServerArgs._handle_data_parallelism`); the scheduler's initial ratio is 0.7 × conservativeness
(capped at 1), its floor the initial ratio × 0.14, reached over 600 decode steps
(`Scheduler.init_new_token_ratio`, `min_new_token_ratio`, `new_token_ratio_decay`)."""


@dataclass(frozen=True)
class ReplicaRun:
    """One replica's replay."""

    first: np.ndarray  # first-token time of each request, s
    finish: np.ndarray  # last-token time of each request, s
    steps: int
    peak: int  # most requests running at once
    mean_batch: float  # running requests averaged over time (idle waits included: Little's law's L)
    preemptions: int
    tail_s: float  # seconds with fewer than half the peak batch running
    gaps: np.ndarray  # inter-token gaps, s
    gap_counts: np.ndarray  # how many tokens came after each
    seconds: np.ndarray  # the whole seconds of the run (from t = 0) in which tokens came out ...
    second_tokens: np.ndarray  # ... and how many (sparse: a run at 10^-9 requests/s lasts 10^12 s)


@dataclass(frozen=True)
class Pool:
    blocks: int
    block_size: int
    groups: float  # blocks per block_size tokens over all KV-cache groups


@dataclass(frozen=True)
class Work:
    """What one replica asks of its next engine step (one micro-batch's share, as `rotation_s` takes
    it), and how many identical decode-only steps it could run in a row."""

    decode_seqs: float
    context_tokens: float
    prefill_tokens: float
    prefill_context: float
    steps: float
    padded_seqs: float | None  # the captured CUDA-graph batch a decode-only step is padded to
    eager: bool  # no CUDA graph: a decode batch above the largest captured one, or a prompt step
    span: int  # identical decode-only steps the replica can run before anything else changes
    prefill_longest: float | None = None  # the longest prompt sequence (context and chunk) in the step
    until_s: float = math.inf  # to the replica's next arrival: a span ends at the first step past it
    idle: bool = False  # nothing to run until then (no GPU work of its own)


IDLE_SPAN = 1 << 62
"""An idle replica's span: it waits as many steps of the others as its next arrival takes."""


def _steps_run(work: Work, step_s: float) -> int:
    """Steps of `step_s` seconds a replica runs of `work`: its span, cut at the first step boundary at
    or past its next arrival."""
    if math.isinf(work.until_s):
        return work.span
    return max(1, min(work.span, math.ceil(work.until_s / step_s - 1e-9)))


Rank = Generator[Work, tuple[float, int], ReplicaRun]
"""A replica's replay: yields each step's work, is sent (seconds per step, steps run), returns its run."""


def rank_steps(
    shape: ReplicaShape,
    max_running: int,
    graph_max_batch: int | None,
    graph_sizes: tuple[int, ...],
    policy: str,
    isl: np.ndarray,
    osl: np.ndarray,
    pool: Pool,
    budget: int,
    chunked: bool = True,
    conservativeness: float = 1.0,
    prompt_graphs: str = "piecewise",
    arrive: np.ndarray | None = None,
    *,
    passes: PassBudget,
    loop: tuple[int, float] | None = None,
) -> Rank:
    """One replica's engine steps, as a generator (its step times come from the driver: `alone` or
    `lockstep`); returns (first-token times, finish times, steps, peak batch, mean batch over steps,
    preemptions, seconds with fewer than half the peak batch, ...). Request i joins the queue at
    `arrive[i]` s (in order; None: all at t = 0). Every scheduler pass is charged to `passes`, the
    budget the whole run's replicas share; past it, an InputError.

    `loop` = (clients, delay): a capped client (`vllm bench serve --max-concurrency`, whose
    `limited_request_func` holds a semaphore slot for a request's whole life, its HTTP round and the
    server's per-request time included) keeps `clients` requests out; request k past them is sent
    when the k-th one ends, and reaches the engine `delay` s (the per-request overhead) after that
    finish, no earlier than its own `arrive[k]` (`serving_load._send_times`, the same rule after
    the fact). None: every request joins at its `arrive`."""
    n = len(isl)
    arrive = np.zeros(n) if arrive is None else arrive
    schedule = arrive
    unsent = n  # the first request no finish has released yet (a closed loop's)
    delay = 0.0
    if loop is not None:
        clients, delay = loop
        arrive = schedule.astype(float)  # a copy: the released ones are written in
        arrive[clients:] = np.inf
        unsent = min(clients, n)

    def release(count: int, at: float) -> None:
        """`count` requests ended at `at`: a closed loop's clients send as many more (in order)."""
        nonlocal unsent
        if loop is None or count <= 0:
            return
        upto = min(unsent + count, n)
        arrive[unsent:upto] = np.maximum(schedule[unsent:upto], at + delay)
        unsent = upto

    prompt = isl.astype(np.int64).copy()  # tokens to prefill (grows by the output on preemption)
    done_pf = np.zeros(n, dtype=np.int64)  # prompt tokens already computed
    generated = np.zeros(n, dtype=np.int64)
    held = np.zeros(n, dtype=np.int64)  # KV blocks held
    first = np.full(n, np.nan)
    finish = np.full(n, np.nan)
    last = np.full(n, np.nan)  # time of each request's latest token
    gaps: list[np.ndarray] = []  # distinct inter-token gaps, s ...
    gap_tokens: list[np.ndarray] = []  # ... and how many tokens came after each
    # The last steps' gaps, one per token, folded into distinct values with their counts once they
    # pass GAP_FOLD (a step's decodes mostly share one gap; a float per token kept 1.6 GB for 10^6
    # prompts, and folding every step on its own cost a sort per step).
    pending: list[np.ndarray] = []
    pending_len = 0

    def fold() -> None:
        nonlocal pending_len
        if pending:
            values, tokens = np.unique(np.concatenate(pending), return_counts=True)
            gaps.append(values)
            gap_tokens.append(tokens)
            pending.clear()
            pending_len = 0

    spans: list[tuple[float, int]] = []  # (gap, tokens after it) of decode spans
    out_times: list[float] = []  # when tokens come out, s ...
    out_tokens: list[int] = []  # ... and how many

    def emit(requests: np.ndarray, at: float) -> None:
        """`requests` (each already holding a token) emit one more at `at`."""
        nonlocal pending_len
        if len(requests):  # (an empty one would fold into nothing)
            pending.append(at - last[requests])
            pending_len += len(requests)
            if pending_len > GAP_FOLD:
                fold()
            last[requests] = at
        out_times.append(at)
        out_tokens.append(len(requests))

    waiting: deque[int] = deque()
    sent = 0  # requests that have arrived (they arrive in order)
    running = np.zeros(0, dtype=np.int64)  # admission order
    free = pool.blocks

    def retire(over: np.ndarray) -> np.ndarray:
        """The running requests without those `over` marks finished `now`, whose blocks are freed."""
        nonlocal free
        if not np.count_nonzero(over):
            return running
        gone = running[over]
        finish[gone] = now
        release(len(gone), now)
        free += int(held[gone].sum())
        held[gone] = 0
        return running[~over]

    bs, groups = pool.block_size, pool.groups
    now = 0.0
    steps = preemptions = 0
    times: list[float] = []  # seconds of each span of identical steps
    batches: list[int] = []  # running requests during the span
    counts: list[int] = []  # steps in the span

    def blocks_for(tokens: np.ndarray) -> np.ndarray:
        if groups == 1.0:  # one KV-cache group: integer arithmetic (the replay's hot path)
            return -(-tokens // bs)
        return np.ceil(np.ceil(tokens / bs) * groups).astype(np.int64)

    def block_of(tokens: int) -> int:
        """`blocks_for` of one count, in Python's arithmetic (the same values: exact below 2**53)."""
        if groups == 1.0:
            return -(-tokens // bs)
        return math.ceil(math.ceil(tokens / bs) * groups)

    if block_of(int(prompt.min()) + 1) > pool.blocks:
        raise InputError("the benchmark replay: the KV cache holds no single request")
    _check_replay_work(isl, osl, pool.blocks, blocks_for, max_running, policy)

    def padded(seqs: float, eager: bool) -> float | None:
        """The captured batch a decode-only batch of `seqs` is padded to (None: no padding)."""
        if eager or not graph_sizes:
            return None
        i = bisect.bisect_left(graph_sizes, math.ceil(seqs - 1e-9))
        return float(graph_sizes[i]) if i < len(graph_sizes) else None

    # SGLang's new_token_ratio (`prefill_first` only): from its initial value down to its floor.
    init_ratio = min(SGLANG_INIT_NEW_TOKEN_RATIO * conservativeness, 1.0)
    min_ratio = init_ratio * SGLANG_MIN_NEW_TOKEN_RATIO_FACTOR
    decay = (init_ratio - min_ratio) / SGLANG_NEW_TOKEN_RATIO_DECAY_STEPS
    ratio = init_ratio

    running_owed: float | None = None  # `sglang_fits`' running part, once per pass (reset at its start)

    def sglang_fits(r: int, admitted: list[int], pool_free: int) -> bool:
        """SGLang's `PrefillAdder` budget: waiting request `r`'s remaining prompt and clipped output fit
        the free pool less what the running requests may still write (remaining prompt, remaining
        output times `ratio`) and what this step already admitted (whole). The running part is the same
        for every call of one pass: its running requests and `ratio` change only in a preemption, after
        which the pass admits nothing."""
        nonlocal running_owed
        clip = SGLANG_CLIP_MAX_NEW_TOKENS
        if running_owed is None:
            left_out = np.minimum(np.maximum(osl[running] - generated[running], 0), clip)  # np.clip's values
            running_owed = float((prompt[running] - done_pf[running]).sum()) + float(left_out.sum()) * ratio
        owed = running_owed
        for a in (*admitted, r):
            owed += int(prompt[a] - done_pf[a]) + min(max(int(osl[a] - generated[a]), 0), clip)
        return block_of(math.ceil(owed)) < pool_free

    max_steps = int(n * (int(osl.max()) + 2) + prompt.sum() // max(budget, 1) + 10)
    while (waiting or len(running) or sent < n) and steps < max_steps:
        passes.charge(len(running))
        running_owed = None
        while sent < n and arrive[sent] <= now + 1e-12:
            waiting.append(sent)
            sent += 1
        until = float(arrive[sent]) - now if sent < n else math.inf  # s to the next arrival
        if not waiting and not len(running):
            # Nothing to run until the next request arrives: the engine idles (beside the others' steps
            # when its ranks run in lock-step).
            step, waited = yield Work(
                0.0, 0.0, 0.0, 0.0, 1.0, None, False, IDLE_SPAN, until_s=until, idle=True
            )
            now += step * waited
            times.append(step * waited)
            batches.append(0)
            counts.append(0)
            continue
        # 0. Nothing can change but the decodes: jump to the next request's last token at once.
        run_prompt = prompt[running]
        run_done = done_pf[running]
        span = _decode_span(
            running,
            waiting,
            prompt,
            run_prompt,
            run_done,
            generated,
            osl,
            held,
            free,
            max_running,
            policy,
            budget,
            blocks_for,
            block_of,
        )
        if span > 1 and policy == "prefill_first" and waiting and len(running) < max_running:
            span = 0  # SGLang's admission budget moves with the decaying ratio: step by step
        if span > 1:
            d = len(running)
            k = micro_batches(float(d), shape.pp)
            context = run_prompt + generated[running]
            # The mean as a sum over the count: the same float (integer sums are exact in float64).
            ctx = int(context.sum()) / d + span / 2.0
            eager = graph_max_batch is not None and d / k > graph_max_batch
            step, span = yield Work(
                d / k, ctx, 0.0, 0.0, 1.0, padded(d / k, eager), eager, span, until_s=until
            )
            held_now = held[running]
            grow = np.maximum(blocks_for(context + span) - held_now, 0)
            free -= int(grow.sum())
            held[running] = held_now + grow
            grown = generated[running] + span
            generated[running] = grown
            emit(running, now + step)
            spans.append((step, d * (span - 1)))
            out_times.extend((now + step * np.arange(2, span + 1)).tolist())
            out_tokens.extend([d] * (span - 1))
            last[running] = now + span * step
            now += span * step
            steps += span
            ratio = max(min_ratio, ratio - span * decay)
            times.append(span * step)
            batches.append(d)
            counts.append(span)
            running = retire(grown >= osl[running])
            continue
        # 1. Running requests, in admission order: one decode token or the next prompt chunk, until
        #    the budget is spent; preempt the latest admitted when their KV blocks do not fit.
        rem = run_prompt - run_done
        prefill_only = policy == "prefill_first" and (
            bool(np.count_nonzero(rem > 0))
            or (
                bool(waiting)
                and len(running) < max_running
                and block_of(min(int(prompt[waiting[0]]), budget)) <= free
                and sglang_fits(waiting[0], [], free)
            )
        )
        preempted_now = False
        # A pipeline's scheduler fills each micro-batch in flight with a budget of its own (vLLM V1
        # `EngineCore.step_with_batch_queue`: one `schedule()` per batch while fewer than pp are in
        # flight), and a request's chunk sits in one of them: a rotation carries the budget of each
        # micro-batch its requests fill, a request at most one budget of it.
        rotation = budget * int(micro_batches(float(len(running) + len(waiting)), shape.pp))
        while True:
            # (`run_prompt`, `run_done`, `rem`: the running requests' rows, cut with them below.)
            prefilling = rem > 0
            want = np.where(prefilling, np.minimum(rem, budget), 0 if prefill_only else 1)
            before = np.add.accumulate(want) - want  # np.cumsum's own ufunc
            take = np.minimum(np.maximum(rotation - before, 0), want)
            tokens = np.where(prefilling, run_done + take, run_prompt + generated[running])
            # A request that does not run this step (a decode beside SGLang's prompt-only step, one past
            # the token budget) takes no new block: slots are allocated for the tokens a step writes.
            held_now = held[running]
            need = np.where(take > 0, np.maximum(blocks_for(tokens) - held_now, 0), 0)
            need_blocks = int(need.sum())
            if need_blocks <= free or len(running) <= 1:
                break
            victim = int(running[-1])
            running = running[:-1]
            run_prompt, run_done, rem = run_prompt[:-1], run_done[:-1], rem[:-1]
            free += int(held[victim])
            held[victim] = 0
            prompt[victim] = isl[victim] + generated[victim]
            done_pf[victim] = 0
            waiting.appendleft(victim)
            preemptions += 1
            ratio = init_ratio
            preempted_now = True
        if len(running) and need_blocks > free:
            raise InputError(
                "the benchmark replay: one request outgrows the KV cache "
                "(raise the KV memory or lower max_model_len)"
            )
        free -= need_blocks
        held[running] = held_now + need
        sched = take > 0
        is_decode = (rem <= 0) & sched
        left = rotation - int(take.sum())
        # 2. Waiting requests, first come first served; none in a step that preempted (vLLM V1
        #    `Scheduler.schedule`: "if not preempted_reqs", so a victim is not re-admitted at once).
        new: list[int] = []
        new_take: list[int] = []
        free_before = free  # SGLang sizes a step's admissions against the pool as the step starts
        while waiting and not preempted_now and left > 0 and len(running) + len(new) < max_running:
            r = waiting[0]
            t = min(int(prompt[r] - done_pf[r]), left, budget)
            if not chunked and t < prompt[r] - done_pf[r]:
                break  # no chunking: the prompt waits for a step with room for all of it
            if policy == "prefill_first" and not sglang_fits(r, new, free_before):
                break
            reserve = prompt[r] + osl[r] if policy == "no_evict" else done_pf[r] + t
            nb = block_of(int(reserve))
            if nb > free:
                break
            waiting.popleft()
            new.append(r)
            new_take.append(t)
            free -= nb
            held[r] = nb
            left -= t
        if new:
            running = np.concatenate([running, np.asarray(new, dtype=np.int64)])
            take = np.concatenate([take, np.asarray(new_take, dtype=np.int64)])
            is_decode = np.concatenate([is_decode, np.zeros(len(new), dtype=bool)])
        chunk = np.where(is_decode, 0, take)
        if not is_decode.any() and not chunk.any():
            raise InputError("the benchmark replay: the scheduler can make no progress (KV cache too small)")
        # 3. The step's time: the mixed-step roofline at this step's real work.
        dec = running[is_decode]
        d = len(dec)
        ctx = int((prompt[dec] + generated[dec]).sum()) / d if d else 0.0
        p_tokens = float(chunk.sum())
        if p_tokens:
            passes.charge_prompt()
        chunked_now = chunk > 0
        if p_tokens:
            run_done = done_pf[running]
            p_ctx = float(((run_done + chunk / 2.0) * chunk).sum() / p_tokens)
            p_longest: float | None = float((run_done + chunk)[chunked_now].max())
        else:
            p_ctx, p_longest = 0.0, None
        k = micro_batches(float(max(d, 1)), shape.pp)
        eager = (graph_max_batch is not None and d / k > graph_max_batch) or (
            p_tokens > 0 and prompt_graphs == "eager"
        )
        step, _ = yield Work(
            d / k,
            ctx,
            p_tokens / k,
            p_ctx,
            max(1.0, p_tokens / k / budget),
            # CUDA graphs (and their padding) replay decode-only steps; a step with a prompt chunk
            # runs at its own size.
            padded(d / k, eager) if p_tokens == 0 and d else None,
            eager,
            1,
            p_longest,
        )
        now += step
        steps += 1
        times.append(step)
        batches.append(len(running))
        counts.append(1)
        # 4. Tokens come out: a decode token each; a prompt whose last chunk ran samples its first.
        generated[dec] += 1
        if d:
            ratio = max(min_ratio, ratio - decay)
        emit(dec, now)
        pf = running[chunked_now]
        done_pf[pf] += chunk[chunked_now]
        completed = pf[done_pf[pf] >= prompt[pf]]
        fresh = completed[generated[completed] == 0]
        first[fresh] = now
        last[fresh] = now
        out_times.append(now)
        out_tokens.append(len(fresh))
        emit(completed[generated[completed] > 0], now)  # resumed after a preemption
        generated[completed] = np.minimum(generated[completed] + 1, osl[completed])
        running = retire((generated[running] >= osl[running]) & (done_pf[running] >= prompt[running]))
    if waiting or len(running):
        raise InternalError("the benchmark replay did not finish")
    fold()
    peak = max(batches, default=0)
    tail = float(sum(t for t, b in zip(times, batches, strict=True) if 2 * b < peak))
    # Over time, not over steps: a step-average weighs the many short steps of a small batch as much
    # as the long ones of a large batch (ShareGPT at 45 requests/s: 110 where the time-average is
    # what Little's law and the steady state's running batch mean).
    mean_batch = sum(b * t for b, t in zip(batches, times, strict=True)) / max(sum(times), 1e-12)
    return ReplicaRun(
        first,
        finish,
        steps,
        peak,
        mean_batch,
        preemptions,
        tail,
        np.concatenate([*gaps, np.asarray([g for g, _ in spans], dtype=float)]),
        np.concatenate([*gap_tokens, np.asarray([c for _, c in spans], dtype=np.int64)]),
        *per_second(np.floor(np.asarray(out_times)), np.asarray(out_tokens, dtype=float)),
    )


def per_second(seconds: np.ndarray, tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct whole `seconds` and the `tokens` summed in each."""
    distinct, where = np.unique(seconds, return_inverse=True)
    return distinct, np.bincount(where, weights=tokens, minlength=len(distinct))


GAP_FOLD = 1 << 20
"""Inter-token gaps a replica's replay holds one per token before folding them into distinct values
with counts (8 MiB)."""


MAX_REPLAY_ESTIMATE = 250_000
"""The most scheduler passes `_check_replay_work`'s up-front estimate lets a replay start with. The
estimate steps every KV-bound wave one engine step at a time, where the replay jumps decode spans
between finishes: on the development rows it says 42,000-54,000 for replays that run in under
4,000, so it refuses only what is far past `serving_load.MAX_REPLAY_PASSES` (1,000 prompts of
30,000 output tokens on a pool that holds 4: 7.5 million); `PassBudget` holds the limit itself."""


PASS_REQUEST_WEIGHT = 300
"""Running requests that make a scheduler pass cost twice what an almost empty one costs."""
PROMPT_PASS_UNITS = 1.0
"""What a pass whose step carries prompt tokens costs on top (admission and a mixed step priced anew),
in almost empty passes.

Both come from `benchmarks/replay_speed.py`, which times eight replays and fits a pass's cost as
a + c · running + p · [prompt] on three of them (64 lock-step ranks of 23 requests; one Llama-3.1-8B
engine on L4s admitting a prompt at 98% of its passes; one Qwen3-8B engine of 667 requests) and
checks it on the other five. On this project's 2-core machine, two runs gave about 70 µs + 0.2 µs
per request + 50-90 µs with a prompt: a / c 300-380, p / a 0.7-1.2, charged as 300 and 1. The
checked replays cost up to 1.6x what the fit says (a KV-bound replay's preemptions, Llama-3.1-70B's
dearer steps); the limit's seconds (`serving_load.MAX_REPLAY_PASSES`) are measured per unit on all
eight."""


def lengths_text(isl: np.ndarray, osl: np.ndarray) -> str:
    """`n prompts of i + o tokens` (the means) for a refusal."""
    return f"{len(isl):,} prompts of {float(isl.mean()):,.0f} + {float(osl.mean()):,.0f} tokens"


def _replay_too_long(took: str) -> str:
    return (
        f"the benchmark replay {took}: give fewer prompts or shorter outputs, or no prompt count for "
        "the steady-state model"
    )


@dataclass
class PassBudget:
    """The scheduler passes one benchmark replay may take, shared by every replica it steps, in passes
    at an almost empty batch (a pass costs 1 + running / `PASS_REQUEST_WEIGHT`, and
    `PROMPT_PASS_UNITS` more with a prompt): a bound on its wall time, whatever the replicas and
    however they split the work (64 lock-step ranks of a few requests each step many cheap passes;
    one replica of a thousand requests fewer, dearer ones). `run`: the replay, for the refusal."""

    limit: float
    run: str
    spent: float = 0.0
    passes: int = 0
    requests: int = 0
    """Running requests summed over the passes."""
    prompt_passes: int = 0
    """Passes whose step carried a prompt."""

    def charge(self, running: int) -> None:
        """One pass with `running` requests running.

        Raises:
            InputError: the budget is spent.
        """
        self.passes += 1
        self.requests += running
        self._spend(1.0 + running / PASS_REQUEST_WEIGHT)

    def charge_prompt(self) -> None:
        """The pass's step carries prompt tokens (`PROMPT_PASS_UNITS` more).

        Raises:
            InputError: the budget is spent.
        """
        self.prompt_passes += 1
        self._spend(PROMPT_PASS_UNITS)

    def _spend(self, units: float) -> None:
        self.spent += units
        if self.spent > self.limit:
            raise InputError(
                _replay_too_long(
                    f"ran past its budget of {self.limit:,.0f} scheduler passes ({self.run}; a pass "
                    f"with b requests running counts 1 + b / {PASS_REQUEST_WEIGHT}, and "
                    f"{PROMPT_PASS_UNITS:g} more with a prompt)"
                )
            )


def _check_replay_work(
    isl: np.ndarray,
    osl: np.ndarray,
    pool_blocks: int,
    blocks_for: Callable[[np.ndarray], np.ndarray],
    max_running: int,
    policy: str,
) -> None:
    """Refuse up front a replay whose KV pool, not its running-request cap, limits the batch, when the
    waves that forces, stepped one engine step at a time as a full pool makes them, pass
    `MAX_REPLAY_ESTIMATE`. (Below the cap with room in the pool, decode spans jump to each finish.)
    A request holds its prompt and half its output on average, or all of both where the scheduler
    reserves them at admission (`no_evict`).

    Raises:
        InputError: the estimate is above the limit.
    """
    n = len(isl)
    held = isl + (osl if policy == "no_evict" else osl // 2)
    kv_at_once = pool_blocks // max(1, int(blocks_for(held).mean()))
    if kv_at_once >= min(n, max_running):
        return  # the pool is not what limits the batch: the decode spans jump to each finish
    estimate = math.ceil(n / max(kv_at_once, 1)) * float(osl.mean())
    if estimate > MAX_REPLAY_ESTIMATE:
        raise InputError(
            _replay_too_long(
                f"would take about {estimate:,.0f} scheduler passes ({lengths_text(isl, osl)} a "
                f"replica; at most {MAX_REPLAY_ESTIMATE:,})"
            )
        )


def alone(rank: Rank, price: Callable[[Work], float]) -> ReplicaRun:
    """Drive one replica that steps on its own: each step takes its own work's time; an idle replica
    waits for its next arrival."""
    work = next(rank)
    while True:
        step = work.until_s if work.idle else price(work)
        try:
            work = rank.send((step, _steps_run(work, step)))
        except StopIteration as done:
            return done.value


def _synced(work: Work, prompt_in_step: bool, graphs: str) -> Work:
    """`work` as its rank runs it in a lock-step engine step (see `lockstep`)."""
    if not prompt_in_step or work.prefill_tokens > 0:
        return work
    return dataclasses.replace(work, padded_seqs=None, eager=work.eager or graphs == "eager")


def lockstep(ranks: list[Rank], price: Callable[[Work], float], graphs: str) -> list[ReplicaRun]:
    """Drive the data-parallel ranks of one engine whose forward passes are aligned (the experts'
    all-to-all or all-gather needs every rank in every step): each step lasts as long as its slowest
    rank's, identical decode-only steps run together only as long as every rank can, and a rank that
    carries a prompt chunk takes the others' decode CUDA graphs away (`graphs`: `PROMPT_STEP_GRAPHS`).
    A rank with nothing left, or nothing until its next arrival, runs dummy steps (not timed: the
    busiest rank sets the step); when every rank waits, the engine idles to the first arrival."""
    works: list[Work | None] = [next(rank) for rank in ranks]
    runs: list[ReplicaRun | None] = [None] * len(ranks)
    while True:
        live = [(i, w) for i, w in enumerate(works) if w is not None]
        if not live:
            break
        busy = [w for _, w in live if not w.idle]
        if busy:
            prompt = any(w.prefill_tokens > 0 for w in busy)
            step = max(price(_synced(w, prompt, graphs)) for w in busy)
            n = min(_steps_run(w, step) for _, w in live)
        else:
            step, n = min(w.until_s for _, w in live), 1
        for i, _ in live:
            try:
                works[i] = ranks[i].send((step, n))
            except StopIteration as done:
                works[i], runs[i] = None, done.value
    return [run for run in runs if run is not None]


def _decode_span(
    running: np.ndarray,
    waiting: deque[int],
    prompt: np.ndarray,
    run_prompt: np.ndarray,
    run_done: np.ndarray,
    generated: np.ndarray,
    osl: np.ndarray,
    held: np.ndarray,
    free: int,
    max_running: int,
    policy: str,
    budget: int,
    blocks_for: Callable[[np.ndarray], np.ndarray],
    block_of: Callable[[int], int],
) -> int:
    """Decode-only steps that can run before anything but the decodes changes (0 or 1: step one by
    one): no prompt in flight, no request admissible, until the first finish or the last step before
    the running requests' new KV blocks outgrow the free pool (a preemption). `run_prompt` and `run_done`:
    the running requests' rows of `prompt` and of the prompt tokens done (the caller's, reused)."""
    if not len(running) or len(running) > budget or np.count_nonzero(run_done < run_prompt):
        return 0
    if waiting and len(running) < max_running:
        r = waiting[0]
        first_chunk = int(prompt[r] + osl[r]) if policy == "no_evict" else min(int(prompt[r]), budget)
        if block_of(first_chunk) <= free:
            return 0
    span = int((osl[running] - generated[running]).min())
    if span <= 1:
        return 0
    context = run_prompt + generated[running]
    held_now = held[running]

    def fits(s: int) -> bool:
        return int(np.maximum(blocks_for(context + s) - held_now, 0).sum()) <= free

    if fits(span):
        return span
    if not fits(2):
        return 0
    # The longest span whose new KV blocks still fit (growth is monotone in the span): the steps
    # up to the next preemption run as one span too.
    lo, hi = 0, span
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo
