"""A 1,000-scenario what-if, notebook style: which GPUs serve which models cheapest, and at what latency.

    uv run python examples/what_if_sweep.py                  # local processes, one per core
    uv run python examples/what_if_sweep.py dask://host:8786 # or a Dask cluster

Results go to whatif.parquet; run it again (or after a crash) and only the missing scenarios are solved.
A scenario file does the same from the command line:
    autoparallel sweep examples/scenarios.yaml --out r.parquet
"""

import sys
from typing import Any

import autoparallel as ap


def main() -> None:
    # --- 1. the scenarios: 5 models x 10 clusters x 10 workloads x 2 objectives = 1,000
    models = [
        "meta-llama/Llama-3.2-1B",
        "meta-llama/Llama-3.2-3B",
        "meta-llama/Llama-3.1-8B",
        "Qwen/Qwen3-8B",
        "mistralai/Mistral-7B-v0.3",
    ]
    clusters = [
        "1xH100",
        "1x2xH100",
        "1x4xH100",
        "1x8xH100",
        "1xA100-80G",
        "1x4xA100-80G",
        "1xL40S",
        "1x4xL40S",
        "1xH200",
        "1x8xH200",
    ]
    workloads: list[str | dict[str, Any]] = [
        "chatbot",
        "batch",
        "rag",
        "reasoning",
        {"isl": 512, "osl": 128},
        {"isl": 2048, "osl": 512},
        {"isl": 4096, "osl": 256, "ttft_ms": 1500},
        {"isl": 8192, "osl": 1024},
        {"isl": 1024, "osl": 256, "request_rate": 20},
        {"isl": 2048, "osl": 256, "concurrency": 64, "tpot_ms": 40},
    ]
    executor = sys.argv[1] if len(sys.argv) > 1 else None

    # --- 2. run (resumable: finished scenarios are read back from whatif.parquet)
    result = ap.sweep(
        models=models,
        clusters=clusters,
        workloads=workloads,
        objectives=["throughput", "cost"],
        executor=executor,
        out="whatif.parquet",
        progress=True,
    )
    df = result.to_pandas()
    print(f"{len(df)} scenarios: {result.counts()}  ({result.skipped} read back from whatif.parquet)\n")

    # --- 3. what fits where: feasible share per cluster
    ok = df[df.status == "ok"]
    print("share of scenarios each cluster can serve:")
    print(
        df.assign(ok=df.status == "ok").groupby("cluster").ok.mean().sort_values(ascending=False).to_string()
    )

    # --- 4. the cheapest deployment per model and workload ($ per million output tokens, cost objective).
    # A row with a request rate is planned by the deployment planner, as `plan --objective cost
    # --request-rate` plans it: the fewest $/hour that carry the rate, which may be a few engines on part
    # of the cluster (`mode` and `engines`, e.g. `aggregated: 2x tp1` on 2 of 8 GPUs; it has no tp, pp,
    # dp or max_num_seqs of one engine), and its cost is the $ per million tokens at that rate.
    cost = ok[ok.objective == "cost"]
    at_rate = cost.get("usd_per_million_tokens_at_rate")  # absent when no row has a rate
    if at_rate is None:
        at_rate = cost.usd_per_million_tokens.where(False)
    cheap = cost.assign(
        plan=[plan_text(r) for r in cost.to_dict("records")],
        usd_per_mtok=at_rate.fillna(cost.usd_per_million_tokens),
        at=at_rate.isna().map({True: "full load", False: "the rate"}),
    )
    # stable: of equal costs, the first listed cluster (the smallest of a kind) stays first
    cheap = cheap.sort_values("usd_per_mtok", kind="stable")
    best = cheap.groupby(["model", "workload"]).head(1)
    cols = ["model", "workload", "cluster", "plan", "gpus", "usd_per_mtok", "at", "tpot_ms"]
    print("\ncheapest deployment per model and workload:")
    print(best[cols].sort_values(["model", "workload"]).to_string(index=False))

    # --- 5. why scenarios failed (first words of the message)
    failed = df[df.status != "ok"]
    if len(failed):
        print("\nmost common reasons a scenario has no plan:")
        print(failed.message.str.split(":").str[0].str[:80].value_counts().head(5).to_string())


def plan_text(row: dict[str, Any]) -> str:
    """What a row planned: one engine's shape (`tp=1 pp=1 dp=8 seqs=192`), or a deployment's engines
    (`aggregated: 2x tp1`), as the sweep's own table (`SweepResult.table`) shows them."""
    engines = row.get("engines")
    if isinstance(engines, str) and engines:
        return f"{row['mode']}: {engines}"
    return f"tp={row['tp']} pp={row['pp']} dp={row['dp']} seqs={row['max_num_seqs']}"


if __name__ == "__main__":
    main()
