"""A three-objective trade-off: throughput vs time to first token vs $ per million tokens,
for Llama-3.1-8B on 4 x H100 under a chat workload; the front's table, its knee and a plot.

    uv run python examples/pareto_front.py      # writes front.png and front.csv

The same from the command line:
    autoparallel pareto meta-llama/Llama-3.1-8B --cluster 1x4xH100 --workload chatbot \\
        --objectives throughput,ttft,cost --plot front.png --out front.csv --weights throughput=1,ttft=1
"""

import autoparallel as ap


def main() -> None:
    front = ap.pareto(
        "meta-llama/Llama-3.1-8B", "1x4xH100", ("throughput", "ttft", "cost"), workload="chatbot"
    )
    print(f"{len(front)} non-dominated plans; complete: {front.complete} (CP-SAT proved no other exists)")

    table = front.to_pandas()
    cols = ["label", "objective_throughput", "objective_ttft", "objective_cost", "gpus", "knee"]
    print(table[cols].to_string(index=False))

    knee = front.knee()
    print(f"\nknee (nearest the ideal point, objectives scaled to the front's range): {table.label[knee]}")
    for normalize in ("range", "max"):
        i = front.pick({"throughput": 1, "ttft": 1}, normalize)
        print(
            f"equal weights on throughput and TTFT, normalised by {normalize!r}: point {i} ({table.label[i]})"
        )

    front.plot("front.png")
    front.write("front.csv")
    print("\nwrote front.png and front.csv")


if __name__ == "__main__":
    main()
